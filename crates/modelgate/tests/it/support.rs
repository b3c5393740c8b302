//! `spawn_app()`: a real server on 127.0.0.1:0 with a fresh data directory (and, on request, a fresh
//! PostgreSQL schema), plus typed helpers for the calls the tests make.

use modelgate_server::{DEFAULT_MAX_UPLOAD_BYTES, PreparedServer, ServeOptions};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub struct TestApp {
    pub address: SocketAddr,
    pub admin_token: String,
    /// Set when the server runs on PostgreSQL.
    pub database_url: Option<String>,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub struct AppOptions {
    pub max_upload_bytes: u64,
    pub max_dataset_bytes: u64,
    pub dataset_limits: modelgate_server::DatasetLimits,
    pub postgres: bool,
    /// Milliseconds added to the system clock; tests move time by storing into it.
    pub clock_offset: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
    pub webhooks: modelgate_server::webhooks::WebhookSettings,
    /// Another replica's database (and its signing key): this server joins it instead of starting fresh.
    pub join: Option<(String, PathBuf)>,
    pub schedule_interval: std::time::Duration,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_dataset_bytes: modelgate_server::DEFAULT_MAX_DATASET_BYTES,
            dataset_limits: modelgate_server::DatasetLimits::DEFAULT,
            postgres: false,
            clock_offset: None,
            webhooks: modelgate_server::webhooks::WebhookSettings::default(),
            join: None,
            schedule_interval: modelgate_server::DEFAULT_SCHEDULE_INTERVAL,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

/// A fresh schema in the test PostgreSQL database, as a URL whose connections use it.
pub async fn fresh_postgres_schema() -> String {
    let base = std::env::var("MODELGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "MODELGATE_TEST_POSTGRES_URL is not set: run the tests through scripts/test, which starts \
             PostgreSQL and sets it"
        )
    });
    let schema = format!("it_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = match (&options.join, options.postgres) {
        (Some((url, _)), _) => Some(url.clone()),
        (None, true) => Some(fresh_postgres_schema().await),
        (None, false) => None,
    };
    let clock: Option<modelgate_server::Clock> = options.clock_offset.clone().map(|offset| {
        let clock: modelgate_server::Clock = std::sync::Arc::new(move || {
            let now = modelgate_server::system_now().unix_millis();
            modelgate_core::Timestamp::from_unix_millis(
                now + offset.load(std::sync::atomic::Ordering::SeqCst),
            )
        });
        clock
    });
    let serve_options = ServeOptions {
        max_upload_bytes: options.max_upload_bytes,
        max_dataset_bytes: options.max_dataset_bytes,
        dataset_limits: options.dataset_limits,
        clock,
        webhooks: options.webhooks.clone(),
        schedule_interval: options.schedule_interval,
        signing_key: options.join.as_ref().map(|(_, key)| key.clone()),
        database_url: database_url.clone(),
        ..ServeOptions::new(data_dir.path().to_path_buf(), "127.0.0.1:0".to_owned())
    };
    let server = PreparedServer::prepare(&serve_options).await.unwrap();
    let address = server.local_addr().unwrap();
    let admin_token = match &options.join {
        // A replica joining a store finds its admin there; the first replica's token works on it.
        Some(_) => String::new(),
        None => server
            .bootstrap_token()
            .expect("a fresh store bootstraps an admin")
            .to_owned(),
    };
    let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        server
            .run(async {
                let _ = receiver.await;
            })
            .await
            .unwrap();
    });
    TestApp {
        address,
        admin_token,
        database_url,
        data_dir,
        http: reqwest::Client::new(),
        shutdown: Some(sender),
        server: Some(handle),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    pub fn artifacts_dir(&self) -> PathBuf {
        self.data_dir.path().join("artifacts")
    }

    /// Stops the server gracefully and waits until it has stopped.
    pub async fn stop(mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
        if let Some(handle) = self.server.take() {
            handle.await.unwrap();
        }
    }

    /// Creates a user through the API as admin and returns a token for them.
    pub async fn user_with_token(&self, username: &str, roles: &[&str]) -> String {
        let response = self
            .request(Method::POST, "/api/v1/users", &self.admin_token)
            .json(&json!({
                "username": username,
                "printed_name": format!("{username} Example"),
                "roles": roles,
                "password": "a long enough password",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
        let response = self
            .request(Method::POST, "/api/v1/tokens", &self.admin_token)
            .json(&json!({ "name": "test", "username": username }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Applies the current policy with the first `from` replaced by `to`, as the admin; the text must change
    /// and the server must accept it.
    pub async fn edit_policy(&self, from: &str, to: &str) {
        let policy: Value = self
            .request(Method::GET, "/api/v1/policy", &self.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let current = policy["text"].as_str().unwrap();
        let text = current.replacen(from, to, 1);
        assert_ne!(text, current, "the policy has no {from:?}");
        let applied = self
            .request(Method::PUT, "/api/v1/policy", &self.admin_token)
            .json(&json!({ "text": text }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            applied.status(),
            StatusCode::OK,
            "{}",
            applied.text().await.unwrap()
        );
    }

    pub async fn create_model(&self, token: &str, name: &str, tier: &str) -> Response {
        self.request(Method::POST, "/api/v1/models", token)
            .json(&json!({ "name": name, "risk_tier": tier, "description": "test model" }))
            .send()
            .await
            .unwrap()
    }

    pub async fn upload(&self, token: &str, bytes: Vec<u8>, expected: Option<&str>) -> Response {
        let mut request = self
            .request(Method::POST, "/api/v1/artifacts", token)
            .header("content-type", "application/octet-stream")
            .body(bytes);
        if let Some(expected) = expected {
            request = request.query(&[("expected_digest", expected)]);
        }
        request.send().await.unwrap()
    }

    /// Uploads bytes and registers them as the model's next version; returns the version's JSON.
    pub async fn push_version(&self, token: &str, model: &str, bytes: Vec<u8>) -> Value {
        let uploaded = self.upload(token, bytes, None).await;
        assert!(uploaded.status().is_success());
        let digest = uploaded.json::<Value>().await.unwrap()["digest"].clone();
        let response = self
            .request(
                Method::POST,
                &format!("/api/v1/models/{model}/versions"),
                token,
            )
            .json(&json!({
                "digest": digest,
                "format": "onnx",
                "lineage": { "code_commit": "abc123", "parameters": { "depth": "6" } },
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }
}

/// Sends a request as `token`, with a JSON body when given.
pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Response {
    let mut request = app.request(method, path, token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// Sends a request as `token` and reads a successful response's JSON body.
pub async fn call_json(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Value {
    let response = call(app, method, path, token, body).await;
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("the body is JSON")
}

/// Reads an error response and checks its shape: `{"error": {"code", "message", ...}}`.
pub async fn error_of(response: Response) -> (StatusCode, String, Value) {
    let status = response.status();
    assert!(
        response.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
    let body: Value = response.json().await.expect("errors are JSON");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    (status, code, body)
}

pub fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Every regular file below `folder`, relative paths, sorted.
pub fn files_under(folder: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(folder).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Waits (bounded) until `condition` holds; for effects the server completes after answering.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..400 {
        if condition() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|index| (index * 7 % 253) as u8).collect()
}
