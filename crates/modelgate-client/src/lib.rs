//! A typed client of the modelgate HTTP API, used by the CLI and by tests. Uploads and downloads stream
//! and hash as they go: an upload is checked against the digest the server computed, a download against
//! the version's digest before it is moved into place.

use futures::TryStreamExt;
use modelgate_api as api;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Called with the number of bytes moved since the last call.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with the API's error shape.
    #[error("{code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        details: Option<serde_json::Value>,
    },
    /// Nothing answered at the server's address; `reason` is the innermost cause (`connection refused`).
    #[error("cannot reach the server at {server} ({reason}): is `modelgate serve` running there?")]
    Connect { server: String, reason: String },
    /// The server's address is not a URL the client can use.
    #[error(
        "the server address {server:?} is not usable ({reason}); write it as a URL, e.g. http://127.0.0.1:8080"
    )]
    InvalidServer { server: String, reason: String },
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(
        "downloaded bytes hash to {actual}, not to the version's digest {expected}; nothing was written"
    )]
    DownloadDigestMismatch { expected: String, actual: String },
    #[error("the server stored the upload as {server} but the file hashes to {local}")]
    UploadDigestMismatch { local: String, server: String },
    #[error("unexpected response from the server ({status}): {body}")]
    UnexpectedResponse { status: u16, body: String },
}

impl ClientError {
    /// The API error code, when the server gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// A code for every error, in the API's vocabulary where it has one: the server's own code, else what
    /// went wrong on this side (`unreachable`, `invalid_server`, `transport`, `io`, `digest_mismatch`,
    /// `unexpected_response`).
    pub fn error_code(&self) -> &str {
        match self {
            Self::Api { code, .. } => code,
            Self::Connect { .. } => "unreachable",
            Self::InvalidServer { .. } => "invalid_server",
            Self::Transport(_) => "transport",
            Self::Io { .. } => "io",
            Self::DownloadDigestMismatch { .. } | Self::UploadDigestMismatch { .. } => {
                "digest_mismatch"
            }
            Self::UnexpectedResponse { .. } => "unexpected_response",
        }
    }

    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "REDACTED"))
            .finish()
    }
}

/// Escapes one path segment (model names and tag keys are validated server-side, but a typo must
/// still produce a clean `invalid_argument`, not a different URL).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The server's base URL without a trailing slash; `HOST:PORT` gets `http://`, other schemes are refused.
fn server_url(server: &str) -> Result<String, ClientError> {
    let trimmed = server.trim().trim_end_matches('/');
    let invalid = |reason: String| ClientError::InvalidServer {
        server: server.to_owned(),
        reason,
    };
    if trimmed.is_empty() {
        return Err(invalid("it is empty".to_owned()));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|error| invalid(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "the scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none() {
        return Err(invalid("it names no host".to_owned()));
    }
    Ok(with_scheme)
}

/// The innermost cause of a failed connection, in a few words (`connection refused`, `dns error: …`).
fn connect_reason(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => return "connection refused".to_owned(),
            std::io::ErrorKind::TimedOut => return "timed out".to_owned(),
            _ => {}
        }
    }
    let text = cause.to_string();
    text.split(" (os error")
        .next()
        .unwrap_or(&text)
        .to_ascii_lowercase()
}

impl Client {
    /// A client of the server at `server`: a URL, or `HOST:PORT` (then `http://` is assumed).
    pub fn new(server: &str, token: Option<String>) -> Result<Self, ClientError> {
        let server = server_url(server)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("modelgate-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            server,
            token,
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.server));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send(&self, builder: RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let response = builder.send().await.map_err(|source| {
            if source.is_connect() {
                ClientError::Connect {
                    server: self.server.clone(),
                    reason: connect_reason(&source),
                }
            } else {
                ClientError::Transport(source)
            }
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        match serde_json::from_str::<api::ErrorBody>(&body) {
            Ok(error) => Err(ClientError::Api {
                status,
                code: error.error.code,
                message: error.error.message,
                details: error.error.details,
            }),
            Err(_) => Err(ClientError::UnexpectedResponse { status, body }),
        }
    }

    async fn json<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T, ClientError> {
        let response = self.send(builder).await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        serde_json::from_str(&body).map_err(|error| ClientError::UnexpectedResponse {
            status,
            body: format!("{error}: {body}"),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.json(self.request(Method::GET, path)).await
    }

    async fn with_body<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.json(self.request(method, path).json(body)).await
    }

    pub async fn whoami(&self) -> Result<api::WhoAmI, ClientError> {
        self.get("/api/v1/whoami").await
    }

    pub async fn login(
        &self,
        request: &api::LoginRequest,
    ) -> Result<api::CreatedToken, ClientError> {
        self.with_body(Method::POST, "/api/v1/auth/login", request)
            .await
    }

    pub async fn create_model(
        &self,
        request: &api::CreateModelRequest,
    ) -> Result<api::Model, ClientError> {
        self.with_body(Method::POST, "/api/v1/models", request)
            .await
    }

    pub async fn get_model(&self, name: &str) -> Result<api::Model, ClientError> {
        self.get(&format!("/api/v1/models/{}", segment(name))).await
    }

    pub async fn list_models(
        &self,
        query: &api::ListModelsQuery,
    ) -> Result<api::ModelList, ClientError> {
        self.json(self.request(Method::GET, "/api/v1/models").query(query))
            .await
    }

    pub async fn update_model(
        &self,
        name: &str,
        request: &api::UpdateModelRequest,
    ) -> Result<api::Model, ClientError> {
        self.with_body(
            Method::PATCH,
            &format!("/api/v1/models/{}", segment(name)),
            request,
        )
        .await
    }

    pub async fn set_model_tag(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<api::Model, ClientError> {
        let path = format!("/api/v1/models/{}/tags/{}", segment(name), segment(key));
        let body = api::SetTagRequest {
            value: value.to_owned(),
        };
        self.with_body(Method::PUT, &path, &body).await
    }

    pub async fn delete_model_tag(&self, name: &str, key: &str) -> Result<api::Model, ClientError> {
        let path = format!("/api/v1/models/{}/tags/{}", segment(name), segment(key));
        self.json(self.request(Method::DELETE, &path)).await
    }

    pub async fn archive_model(&self, name: &str) -> Result<api::Model, ClientError> {
        let path = format!("/api/v1/models/{}/archive", segment(name));
        self.json(self.request(Method::POST, &path)).await
    }

    /// Streams a file to the server, hashing it on the way; fails if the server's digest differs from
    /// the local one. `expected_digest` makes the server reject content that hashes otherwise.
    pub async fn upload_artifact(
        &self,
        file: &Path,
        expected_digest: Option<&str>,
        progress: Option<Progress>,
    ) -> Result<(api::Artifact, u64), ClientError> {
        let opened = tokio::fs::File::open(file)
            .await
            .map_err(ClientError::io(format!("cannot open {}", file.display())))?;
        let size = opened
            .metadata()
            .await
            .map_err(ClientError::io(format!("cannot read {}", file.display())))?
            .len();
        let hasher = Arc::new(std::sync::Mutex::new(Sha256::new()));
        let stream_hasher = hasher.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(opened, 256 * 1024).inspect_ok(
            move |chunk| {
                if let Ok(mut hasher) = stream_hasher.lock() {
                    hasher.update(chunk);
                }
                if let Some(progress) = &progress {
                    progress(chunk.len() as u64);
                }
            },
        );
        let mut builder = self
            .request(Method::POST, "/api/v1/artifacts")
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(stream));
        if let Some(expected) = expected_digest {
            builder = builder.query(&[("expected_digest", expected)]);
        }
        let artifact: api::Artifact = self.json(builder).await?;
        let local = hasher
            .lock()
            .map(|hasher| format!("sha256:{}", hex::encode(hasher.clone().finalize())))
            .unwrap_or_default();
        if local != artifact.digest {
            return Err(ClientError::UploadDigestMismatch {
                local,
                server: artifact.digest,
            });
        }
        Ok((artifact, size))
    }

    pub async fn create_version(
        &self,
        model: &str,
        request: &api::CreateVersionRequest,
    ) -> Result<api::Version, ClientError> {
        let path = format!("/api/v1/models/{}/versions", segment(model));
        self.with_body(Method::POST, &path, request).await
    }

    pub async fn get_version(
        &self,
        model: &str,
        version: &str,
    ) -> Result<api::Version, ClientError> {
        self.get(&format!(
            "/api/v1/models/{}/versions/{}",
            segment(model),
            segment(version)
        ))
        .await
    }

    /// What the artifact scanner found in a version's artifact.
    pub async fn get_version_scan(
        &self,
        model: &str,
        version: &str,
    ) -> Result<api::ScanReport, ClientError> {
        self.get(&format!(
            "/api/v1/models/{}/versions/{}/scan",
            segment(model),
            segment(version)
        ))
        .await
    }

    pub async fn list_versions(
        &self,
        model: &str,
        query: &api::ListVersionsQuery,
    ) -> Result<api::VersionList, ClientError> {
        let path = format!("/api/v1/models/{}/versions", segment(model));
        self.json(self.request(Method::GET, &path).query(query))
            .await
    }

    pub async fn archive_version(
        &self,
        model: &str,
        version: &str,
    ) -> Result<api::Version, ClientError> {
        let path = format!(
            "/api/v1/models/{}/versions/{}/archive",
            segment(model),
            segment(version)
        );
        self.json(self.request(Method::POST, &path)).await
    }

    pub async fn set_version_tag(
        &self,
        model: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<api::Version, ClientError> {
        let path = format!(
            "/api/v1/models/{}/versions/{}/tags/{}",
            segment(model),
            segment(version),
            segment(key)
        );
        let body = api::SetTagRequest {
            value: value.to_owned(),
        };
        self.with_body(Method::PUT, &path, &body).await
    }

    /// Downloads a version's artifact to `out`, verifying its digest before the file appears there: the
    /// bytes go to `out.partial` first and are renamed only when they hash to the version's digest.
    pub async fn download_version(
        &self,
        model: &str,
        version: &str,
        out: &Path,
        progress: Option<Progress>,
    ) -> Result<api::Version, ClientError> {
        let described = self.get_version(model, version).await?;
        let path = format!(
            "/api/v1/models/{}/versions/{}/artifact",
            segment(model),
            segment(version)
        );
        let response = self.send(self.request(Method::GET, &path)).await?;
        if response.status() != StatusCode::OK {
            return Err(ClientError::UnexpectedResponse {
                status: response.status().as_u16(),
                body: "expected the whole artifact".to_owned(),
            });
        }
        let mut partial_name = out.as_os_str().to_owned();
        partial_name.push(".partial");
        let partial = std::path::PathBuf::from(partial_name);
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(ClientError::io(format!(
                "cannot create {}",
                partial.display()
            )))?;
        let mut hasher = Sha256::new();
        let mut stream = response.bytes_stream();
        let outcome: Result<(), ClientError> = async {
            while let Some(chunk) = stream.try_next().await? {
                hasher.update(&chunk);
                file.write_all(&chunk)
                    .await
                    .map_err(ClientError::io(format!(
                        "cannot write {}",
                        partial.display()
                    )))?;
                if let Some(progress) = &progress {
                    progress(chunk.len() as u64);
                }
            }
            file.flush().await.map_err(ClientError::io(format!(
                "cannot write {}",
                partial.display()
            )))?;
            file.sync_all().await.map_err(ClientError::io(format!(
                "cannot write {}",
                partial.display()
            )))?;
            Ok(())
        }
        .await;
        drop(file);
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        let verdict = outcome.and_then(|()| {
            if actual == described.digest {
                Ok(())
            } else {
                Err(ClientError::DownloadDigestMismatch {
                    expected: described.digest.clone(),
                    actual,
                })
            }
        });
        if let Err(error) = verdict {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(error);
        }
        tokio::fs::rename(&partial, out)
            .await
            .map_err(ClientError::io(format!(
                "cannot move the download to {}",
                out.display()
            )))?;
        Ok(described)
    }

    pub async fn create_user(
        &self,
        request: &api::CreateUserRequest,
    ) -> Result<api::User, ClientError> {
        self.with_body(Method::POST, "/api/v1/users", request).await
    }

    pub async fn list_users(&self) -> Result<api::UserList, ClientError> {
        self.get("/api/v1/users").await
    }

    pub async fn get_user(&self, username: &str) -> Result<api::User, ClientError> {
        self.get(&format!("/api/v1/users/{}", segment(username)))
            .await
    }

    pub async fn update_user(
        &self,
        username: &str,
        request: &api::UpdateUserRequest,
    ) -> Result<api::User, ClientError> {
        self.with_body(
            Method::PATCH,
            &format!("/api/v1/users/{}", segment(username)),
            request,
        )
        .await
    }

    pub async fn create_token(
        &self,
        request: &api::CreateTokenRequest,
    ) -> Result<api::CreatedToken, ClientError> {
        self.with_body(Method::POST, "/api/v1/tokens", request)
            .await
    }

    pub async fn list_tokens(&self, all: bool) -> Result<api::TokenList, ClientError> {
        let query = api::ListTokensQuery { all: Some(all) };
        self.json(self.request(Method::GET, "/api/v1/tokens").query(&query))
            .await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<api::Token, ClientError> {
        let path = format!("/api/v1/tokens/{}/revoke", segment(id));
        self.json(self.request(Method::POST, &path)).await
    }

    pub async fn push_monitoring_batch(
        &self,
        model: &str,
        version: u32,
        request: &api::PushMonitoringBatch,
    ) -> Result<api::MonitoringBatch, ClientError> {
        let path = format!(
            "/api/v1/models/{}/versions/{version}/monitoring/batches",
            segment(model)
        );
        self.with_body(Method::POST, &path, request).await
    }

    pub async fn record_outcomes(
        &self,
        model: &str,
        version: u32,
        request: &api::RecordOutcomes,
    ) -> Result<api::MonitoringOutcomes, ClientError> {
        let path = format!(
            "/api/v1/models/{}/versions/{version}/monitoring/outcomes",
            segment(model)
        );
        self.with_body(Method::POST, &path, request).await
    }

    pub async fn monitoring(
        &self,
        model: &str,
        version: Option<u32>,
    ) -> Result<api::MonitoringState, ClientError> {
        let mut path = format!("/api/v1/models/{}/monitoring", segment(model));
        if let Some(version) = version {
            path.push_str(&format!("?version={version}"));
        }
        self.get(&path).await
    }

    pub async fn record_kpi(
        &self,
        model: &str,
        request: &api::RecordKpi,
    ) -> Result<api::KpiObservation, ClientError> {
        let path = format!("/api/v1/models/{}/kpis", segment(model));
        self.with_body(Method::POST, &path, request).await
    }

    pub async fn create_webhook(
        &self,
        request: &api::CreateWebhookRequest,
    ) -> Result<api::CreatedWebhook, ClientError> {
        self.with_body(Method::POST, "/api/v1/webhooks", request)
            .await
    }

    pub async fn list_webhooks(&self) -> Result<api::WebhookList, ClientError> {
        self.get("/api/v1/webhooks").await
    }

    pub async fn webhook_event_types(&self) -> Result<api::WebhookEventTypes, ClientError> {
        self.get("/api/v1/webhooks/event-types").await
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<(), ClientError> {
        let path = format!("/api/v1/webhooks/{}", segment(id));
        self.send(self.request(Method::DELETE, &path)).await?;
        Ok(())
    }

    pub async fn rotate_webhook_secret(
        &self,
        id: &str,
        request: &api::RotateWebhookSecretRequest,
    ) -> Result<api::CreatedWebhook, ClientError> {
        let path = format!("/api/v1/webhooks/{}/rotate", segment(id));
        self.with_body(Method::POST, &path, request).await
    }

    pub async fn test_webhook(&self, id: &str) -> Result<api::WebhookTest, ClientError> {
        let path = format!("/api/v1/webhooks/{}/test", segment(id));
        self.json(self.request(Method::POST, &path)).await
    }

    pub async fn webhook_deliveries(
        &self,
        id: &str,
    ) -> Result<api::WebhookDeliveryList, ClientError> {
        let path = format!("/api/v1/webhooks/{}/deliveries", segment(id));
        self.get(&path).await
    }

    async fn text(&self, path: &str) -> Result<String, ClientError> {
        let response = self.send(self.request(Method::GET, path)).await?;
        Ok(response.text().await?)
    }

    /// The latest signed checkpoint (a C2SP signed note).
    pub async fn audit_checkpoint(&self) -> Result<String, ClientError> {
        self.text("/api/v1/audit/checkpoint").await
    }

    /// The server's checkpoint verifier key, as it claims it (pin your own copy).
    pub async fn audit_public_key(&self) -> Result<String, ClientError> {
        Ok(self
            .text("/api/v1/audit/public-key")
            .await?
            .trim()
            .to_owned())
    }

    /// Entries `start..end` as their exact leaf bytes, one per line.
    pub async fn audit_entries(&self, start: u64, end: u64) -> Result<Vec<String>, ClientError> {
        let body = self
            .text(&format!("/api/v1/audit/entries?start={start}&end={end}"))
            .await?;
        Ok(body.lines().map(str::to_owned).collect())
    }

    pub async fn audit_inclusion_proof(
        &self,
        index: u64,
        tree_size: u64,
    ) -> Result<api::InclusionProof, ClientError> {
        self.get(&format!(
            "/api/v1/audit/proofs/inclusion?index={index}&tree_size={tree_size}"
        ))
        .await
    }

    pub async fn audit_consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<api::ConsistencyProof, ClientError> {
        self.get(&format!(
            "/api/v1/audit/proofs/consistency?first={first}&second={second}"
        ))
        .await
    }

    pub async fn audit_events(
        &self,
        query: &api::AuditEventsQuery,
    ) -> Result<api::AuditEventList, ClientError> {
        self.json(
            self.request(Method::GET, "/api/v1/audit/events")
                .query(query),
        )
        .await
    }

    pub async fn get_policy(&self) -> Result<api::PolicyInForce, ClientError> {
        self.get("/api/v1/policy").await
    }

    pub async fn apply_policy(
        &self,
        text: &str,
        dry_run: bool,
    ) -> Result<api::PolicyApplied, ClientError> {
        let body = api::ApplyPolicyRequest {
            text: text.to_owned(),
            dry_run,
        };
        self.with_body(Method::PUT, "/api/v1/policy", &body).await
    }

    pub async fn explain(
        &self,
        model: &str,
        version: &str,
        stage: api::Stage,
    ) -> Result<api::Explanation, ClientError> {
        let path = format!(
            "/api/v1/models/{}/versions/{}/explain",
            segment(model),
            segment(version)
        );
        self.json(
            self.request(Method::GET, &path)
                .query(&[("stage", stage.as_str())]),
        )
        .await
    }

    pub async fn open_request(
        &self,
        request: &api::OpenRequest,
    ) -> Result<api::PromotionRequest, ClientError> {
        self.with_body(Method::POST, "/api/v1/requests", request)
            .await
    }

    pub async fn get_request(&self, id: i64) -> Result<api::PromotionRequest, ClientError> {
        self.get(&format!("/api/v1/requests/{id}")).await
    }

    pub async fn list_requests(
        &self,
        query: &api::ListRequestsQuery,
    ) -> Result<api::RequestList, ClientError> {
        self.json(self.request(Method::GET, "/api/v1/requests").query(query))
            .await
    }

    pub async fn withdraw_request(
        &self,
        id: i64,
        reason: Option<String>,
    ) -> Result<api::PromotionRequest, ClientError> {
        let body = api::WithdrawRequest { reason };
        self.with_body(
            Method::POST,
            &format!("/api/v1/requests/{id}/withdraw"),
            &body,
        )
        .await
    }

    pub async fn comment_request(
        &self,
        id: i64,
        body: &str,
    ) -> Result<api::CommentRecord, ClientError> {
        let body = api::SubmitComment {
            body: body.to_owned(),
        };
        self.with_body(
            Method::POST,
            &format!("/api/v1/requests/{id}/comments"),
            &body,
        )
        .await
    }

    pub async fn review_request(
        &self,
        id: i64,
        review: &api::SubmitReview,
    ) -> Result<api::PromotionRequest, ClientError> {
        self.with_body(
            Method::POST,
            &format!("/api/v1/requests/{id}/reviews"),
            review,
        )
        .await
    }

    pub async fn set_suspension(
        &self,
        model: &str,
        version: &str,
        reason: Option<&str>,
    ) -> Result<api::Version, ClientError> {
        let base = format!(
            "/api/v1/models/{}/versions/{}",
            segment(model),
            segment(version)
        );
        match reason {
            Some(reason) => {
                let body = api::SuspendVersion {
                    reason: reason.to_owned(),
                };
                self.with_body(Method::POST, &format!("{base}/suspend"), &body)
                    .await
            }
            None => {
                self.json(self.request(Method::POST, &format!("{base}/reinstate")))
                    .await
            }
        }
    }

    pub async fn gate(
        &self,
        model: &str,
        stage: api::Stage,
        digest: &str,
    ) -> Result<api::GateAnswer, ClientError> {
        let query = [
            ("model", model),
            ("stage", stage.as_str()),
            ("digest", digest),
        ];
        self.json(self.request(Method::GET, "/api/v1/gate").query(&query))
            .await
    }

    pub async fn keys(&self) -> Result<api::ServerKeys, ClientError> {
        self.get("/api/v1/keys").await
    }

    /// The signed attestation (a DSSE envelope, as JSON text) of a version's approval for a stage.
    pub async fn attestation(
        &self,
        model: &str,
        version: &str,
        stage: api::Stage,
    ) -> Result<String, ClientError> {
        let path = format!(
            "/api/v1/models/{}/versions/{}/attestation",
            segment(model),
            segment(version)
        );
        let response = self
            .send(
                self.request(Method::GET, &path)
                    .query(&[("stage", stage.as_str())]),
            )
            .await?;
        Ok(response.text().await?)
    }

    pub async fn rollback(
        &self,
        model: &str,
        stage: api::Stage,
        justification: &str,
    ) -> Result<api::PromotionRequest, ClientError> {
        let body = api::RollbackRequest {
            stage,
            justification: justification.to_owned(),
        };
        self.with_body(
            Method::POST,
            &format!("/api/v1/models/{}/rollback", segment(model)),
            &body,
        )
        .await
    }

    pub async fn get_card(
        &self,
        model: &str,
        version: &str,
    ) -> Result<api::ModelCardRevision, ClientError> {
        self.get(&format!(
            "/api/v1/models/{}/versions/{}/card",
            segment(model),
            segment(version)
        ))
        .await
    }

    pub async fn set_card(
        &self,
        model: &str,
        version: &str,
        request: &api::SetModelCard,
    ) -> Result<api::ModelCardRevision, ClientError> {
        let path = format!(
            "/api/v1/models/{}/versions/{}/card",
            segment(model),
            segment(version)
        );
        self.with_body(Method::PUT, &path, request).await
    }

    pub async fn diff_card(
        &self,
        model: &str,
        version: &str,
        against: Option<&str>,
    ) -> Result<api::CardDiff, ClientError> {
        let path = format!(
            "/api/v1/models/{}/versions/{}/card/diff",
            segment(model),
            segment(version)
        );
        let query = api::CardDiffQuery {
            against: against.map(str::to_owned),
        };
        self.json(self.request(Method::GET, &path).query(&query))
            .await
    }

    pub async fn import_card(
        &self,
        model: &str,
        version: &str,
        format: &str,
        document: String,
    ) -> Result<api::CardImport, ClientError> {
        let path = format!(
            "/api/v1/models/{}/versions/{}/card/import",
            segment(model),
            segment(version)
        );
        self.json(
            self.request(Method::POST, &path)
                .query(&[("format", format)])
                .body(document),
        )
        .await
    }

    pub async fn export_card(
        &self,
        model: &str,
        version: &str,
        format: &str,
    ) -> Result<String, ClientError> {
        let path = format!(
            "/api/v1/models/{}/versions/{}/card/export",
            segment(model),
            segment(version)
        );
        let response = self
            .send(
                self.request(Method::GET, &path)
                    .query(&[("format", format)]),
            )
            .await?;
        Ok(response.text().await?)
    }

    pub async fn register_dataset(
        &self,
        request: &api::RegisterDataset,
    ) -> Result<api::Dataset, ClientError> {
        self.with_body(Method::POST, "/api/v1/datasets", request)
            .await
    }

    pub async fn get_dataset(&self, name: &str) -> Result<api::Dataset, ClientError> {
        self.get(&format!("/api/v1/datasets/{}", segment(name)))
            .await
    }

    pub async fn list_datasets(&self) -> Result<api::DatasetList, ClientError> {
        self.get("/api/v1/datasets").await
    }

    /// Queues an evaluation (the request's `wait` must be false) and returns its job.
    pub async fn start_evaluation(
        &self,
        request: &api::RunEvaluation,
    ) -> Result<api::EvaluationJob, ClientError> {
        self.with_body(Method::POST, "/api/v1/evaluations", request)
            .await
    }

    /// Evaluation jobs, newest first.
    pub async fn list_evaluation_jobs(
        &self,
        query: &api::JobListQuery,
    ) -> Result<api::EvaluationJobList, ClientError> {
        self.json(
            self.request(Method::GET, "/api/v1/evaluation-jobs")
                .query(query),
        )
        .await
    }

    pub async fn get_evaluation_job(&self, id: i64) -> Result<api::EvaluationJob, ClientError> {
        self.get(&format!("/api/v1/evaluation-jobs/{id}")).await
    }

    pub async fn cancel_evaluation_job(&self, id: i64) -> Result<api::EvaluationJob, ClientError> {
        self.with_body(
            Method::POST,
            &format!("/api/v1/evaluation-jobs/{id}/cancel"),
            &serde_json::json!({}),
        )
        .await
    }

    /// A version's evaluations, oldest first.
    pub async fn list_evaluations(
        &self,
        model: &str,
        version: u32,
    ) -> Result<api::EvaluationList, ClientError> {
        self.get(&format!(
            "/api/v1/models/{}/versions/{version}/evaluations",
            segment(model)
        ))
        .await
    }

    pub async fn get_evaluation(&self, id: i64) -> Result<api::Evaluation, ClientError> {
        self.get(&format!("/api/v1/evaluations/{id}")).await
    }

    pub async fn mark_evaluation(
        &self,
        id: i64,
        body: &api::MarkEvaluation,
    ) -> Result<api::Evaluation, ClientError> {
        self.with_body(
            Method::POST,
            &format!("/api/v1/evaluations/{id}/status"),
            body,
        )
        .await
    }
}
