//! The modelgate HTTP server: locks its SQLite data directory, binds its port, opens the store and the
//! artifact store, bootstraps the first admin, and serves the JSON API (with its OpenAPI document and
//! Swagger UI) until it is told to stop.

pub mod audit_log;
pub mod auth;
pub(crate) mod convert;
pub mod data_lock;
pub mod error;
mod evaluation;
mod extract;
mod http;
pub mod mlflow;
mod openapi;
pub mod promotion;
mod refusals;
pub mod routes;
pub mod scanning;
mod scheduler;
mod state;
pub mod text;
pub mod ui;
pub mod webhooks;

pub use modelgate_eval::dataset::DatasetLimits;
pub use state::AppState;

use modelgate_core::{NewUser, Role, Timestamp, TokenName, Username};
use modelgate_store::{ArtifactStore, Attribution, Store, StoreError, UploadLimits};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The default limit on one artifact: 20 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 20 * 1024 * 1024 * 1024;

/// The clock the server reads; tests inject one to move time.
pub type Clock = std::sync::Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Where the server keeps its data and where it listens.
#[derive(Clone)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub listen: String,
    /// `postgres://…`; SQLite in `data_dir` when absent.
    pub database_url: Option<String>,
    /// `s3://bucket/prefix` and the like; `data_dir/artifacts` when absent.
    pub artifact_store: Option<String>,
    pub max_upload_bytes: u64,
    /// Datasets and predictions files larger than this are not evaluated (they are parsed in memory).
    pub max_dataset_bytes: u64,
    /// What a dataset or predictions file may hold once read; its `max_decoded_bytes` is replaced by
    /// [`PARQUET_EXPANSION`] × `max_dataset_bytes`.
    pub dataset_limits: DatasetLimits,
    /// The file holding the audit signing key; `data_dir/audit-signing.key` when absent (created on first
    /// start). Replicas sharing one database must share this key.
    pub signing_key: Option<PathBuf>,
    /// The audit log's origin (and key name); derived from the key when absent.
    pub audit_origin: Option<String>,
    /// How often a checkpoint is signed while the log grows.
    pub checkpoint_interval: std::time::Duration,
    /// The clock for records and approvals; the system clock when absent.
    pub clock: Option<Clock>,
    /// The ONNX Runtime library for model-mode evaluations; else `ORT_DYLIB_PATH`, else next to the binary.
    pub onnxruntime_library: Option<PathBuf>,
    /// The longest lifetime, in days, of a token made through the API (`token create`, login).
    pub max_token_days: u32,
    /// Web UI sessions: idle and absolute expiry, the public URL.
    pub sessions: ui::SessionSettings,
    /// Webhook delivery: allow-listed private hosts, timeout, retries.
    pub webhooks: webhooks::WebhookSettings,
    /// How often the scheduler looks at approvals (expiry, re-approval, re-validation, stale monitoring).
    pub schedule_interval: std::time::Duration,
    /// The MLflow registry routes (`/api/2.0/mlflow/…`).
    pub mlflow: mlflow::MlflowSettings,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field(
                "database_url",
                &self
                    .database_url
                    .as_deref()
                    .map(modelgate_store::redact_url),
            )
            .field("artifact_store", &self.artifact_store)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("max_dataset_bytes", &self.max_dataset_bytes)
            .field("dataset_limits", &self.dataset_limits)
            .field("signing_key", &self.signing_key)
            .field("audit_origin", &self.audit_origin)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("clock", &self.clock.as_ref().map(|_| "injected"))
            .field("onnxruntime_library", &self.onnxruntime_library)
            .field("max_token_days", &self.max_token_days)
            .field("sessions", &self.sessions)
            .field("webhooks", &self.webhooks)
            .field("schedule_interval", &self.schedule_interval)
            .field("mlflow", &self.mlflow)
            .finish()
    }
}

impl ServeOptions {
    /// Options for a server on `listen` with everything else at its default.
    pub fn new(data_dir: PathBuf, listen: String) -> Self {
        Self {
            data_dir,
            listen,
            database_url: None,
            artifact_store: None,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_dataset_bytes: DEFAULT_MAX_DATASET_BYTES,
            dataset_limits: DatasetLimits::DEFAULT,
            signing_key: None,
            audit_origin: None,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            clock: None,
            onnxruntime_library: None,
            max_token_days: DEFAULT_MAX_TOKEN_DAYS,
            sessions: ui::SessionSettings::default(),
            webhooks: webhooks::WebhookSettings::default(),
            schedule_interval: DEFAULT_SCHEDULE_INTERVAL,
            mlflow: mlflow::MlflowSettings::default(),
        }
    }

    pub fn signing_key_path(&self) -> PathBuf {
        self.signing_key
            .clone()
            .unwrap_or_else(|| default_signing_key_path(&self.data_dir))
    }
}

/// The scheduler's round, unless configured otherwise.
pub const DEFAULT_SCHEDULE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Tokens made through the API live at most this many days unless the server is configured otherwise.
pub const DEFAULT_MAX_TOKEN_DAYS: u32 = 365;

/// Datasets and predictions files up to this size are evaluated (in memory).
pub const DEFAULT_MAX_DATASET_BYTES: u64 = 512 * 1024 * 1024;

/// How much larger than the file limit a Parquet file's wanted columns may be once decoded.
pub const PARQUET_EXPANSION: u64 = 4;

/// A checkpoint is signed at least this often while the log grows.
pub const DEFAULT_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the audit signing key lives unless configured otherwise.
pub fn default_signing_key_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("audit-signing.key")
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("artifact store: {0}")]
    Artifacts(#[from] object_store::Error),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("audit signing key {path}: {source}")]
    SigningKey {
        path: String,
        source: std::io::Error,
    },
    #[error("audit signing key: {0}")]
    Signer(#[from] modelgate_audit::CheckpointError),
    #[error("the built-in policy does not parse: {0}")]
    DefaultPolicy(String),
    #[error(transparent)]
    Locked(#[from] data_lock::LockError),
}

/// The built-in default policy, parsed once at start.
fn default_policy() -> Result<std::sync::Arc<modelgate_policy::Policy>, ServeError> {
    modelgate_policy::default_policy()
        .map(std::sync::Arc::new)
        .map_err(|errors| ServeError::DefaultPolicy(errors[0].to_string()))
}

/// Opens the database named by the options (SQLite in `data_dir` unless a URL is given) and migrates it.
pub async fn open_store(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
) -> Result<Store, StoreError> {
    let store = match database_url {
        Some(url) => Store::open(url).await?,
        None => Store::open_data_dir(data_dir).await?,
    };
    store.migrate().await?;
    Ok(store)
}

/// Opens the artifact store named by the options (`data_dir/artifacts` unless a URL is given).
pub fn open_artifact_store(
    data_dir: &std::path::Path,
    artifact_store: Option<&str>,
) -> Result<ArtifactStore, object_store::Error> {
    match artifact_store {
        Some(url) => ArtifactStore::from_url(url),
        None => ArtifactStore::local(&data_dir.join("artifacts")),
    }
}

/// The current time from the system clock: the one place the server reads it.
#[allow(clippy::disallowed_methods)]
pub fn system_now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_millis(millis)
}

/// On an empty store, creates the `admin` user and a token for it, and returns the token's secret (to be
/// shown once). Returns `None` when users exist, including when another replica bootstrapped first.
pub async fn bootstrap_admin(store: &Store, now: Timestamp) -> Result<Option<String>, StoreError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let attribution = Attribution::system("bootstrap", now);
    let new_user = NewUser {
        username: Username::parse("admin")?,
        printed_name: "Administrator".to_owned(),
        email: None,
        roles: vec![Role::admin()],
        password_hash: None,
    };
    let user = match store.create_user(&attribution, &new_user).await {
        Ok(user) => user,
        Err(StoreError::AlreadyExists { .. }) => return Ok(None),
        Err(error) => return Err(error),
    };
    let secret = auth::new_token_secret();
    store
        .create_token(
            &attribution,
            &user,
            &TokenName::parse("bootstrap")?,
            &auth::token_secret_hash(&secret),
            None,
        )
        .await?;
    Ok(Some(secret))
}

/// When no active admin can act (none has a usable token or a password), what to run to make a token; a
/// start after a lost bootstrap token says so instead of printing nothing.
pub async fn admin_access_notice(
    store: &Store,
    storage_flag: &str,
    now: Timestamp,
) -> Result<Option<String>, StoreError> {
    let admins: Vec<modelgate_core::User> = store
        .list_users()
        .await?
        .into_iter()
        .filter(|user| user.active && user.is_admin())
        .collect();
    for admin in &admins {
        if admin.has_password {
            return Ok(None);
        }
        let tokens = store.list_tokens(Some(admin)).await?;
        if tokens
            .iter()
            .any(|token| token.revoked_at.is_none() && token.is_usable_at(now))
        {
            return Ok(None);
        }
    }
    Ok(Some(match admins.first() {
        Some(admin) => format!(
            "No admin can sign in: {} has no usable API token and no password. Make a token with:\n  \
             modelgate admin create-token {storage_flag} --username {}",
            admin.username, admin.username
        ),
        None => format!(
            "No active user has the admin role. Create one with:\n  modelgate admin create-user \
             {storage_flag} --username admin --printed-name \"Administrator\" --role admin\n\
             then make its token with:\n  modelgate admin create-token {storage_flag} --username admin"
        ),
    }))
}

/// A server that is bound and ready to run.
pub struct PreparedServer {
    state: AppState,
    listener: TcpListener,
    bootstrap_token: Option<String>,
    admin_notice: Option<String>,
    shutdown: CancellationToken,
    checkpoint_interval: std::time::Duration,
    schedule_interval: std::time::Duration,
    /// Held until the server stops (SQLite only): one server per data directory.
    data_lock: Option<data_lock::DataDirLock>,
}

impl PreparedServer {
    /// Locks the data directory (SQLite), binds the listener, opens storage, migrates, and only then —
    /// once the server can serve — bootstraps the first admin, so that its token is never created by a
    /// start that then fails.
    pub async fn prepare(options: &ServeOptions) -> Result<Self, ServeError> {
        let data_lock = match options.database_url {
            None => {
                let folder = modelgate_store::prepare_data_dir(&options.data_dir)?;
                Some(data_lock::lock_data_dir(&folder)?)
            }
            Some(_) => None,
        };
        let listener =
            TcpListener::bind(&options.listen)
                .await
                .map_err(|source| ServeError::Listen {
                    address: options.listen.clone(),
                    source,
                })?;
        let store = open_store(&options.data_dir, options.database_url.as_deref()).await?;
        let artifacts = open_artifact_store(&options.data_dir, options.artifact_store.as_deref())?;
        match artifacts
            .sweep_abandoned_uploads(std::time::Duration::from_secs(24 * 3600))
            .await
        {
            Ok(0) => {}
            Ok(swept) => tracing::info!(swept, "deleted uploads abandoned by an earlier crash"),
            Err(error) => tracing::warn!(%error, "could not sweep abandoned uploads"),
        }
        let key_path = options.signing_key_path();
        let seed = audit_log::load_or_create_signing_key(&key_path).map_err(|source| {
            ServeError::SigningKey {
                path: key_path.display().to_string(),
                source,
            }
        })?;
        let signer = std::sync::Arc::new(audit_log::signer_for(
            &seed,
            options.audit_origin.as_deref(),
        )?);
        match modelgate_onnx::init(options.onnxruntime_library.as_deref()) {
            Ok(path) => {
                tracing::info!(library = %path.display(), "ONNX Runtime loaded for model-mode evaluations")
            }
            Err(error) => {
                tracing::warn!(%error, "model-mode evaluations are unavailable until ONNX Runtime is found")
            }
        }
        let bootstrap_token = bootstrap_admin(&store, system_now()).await?;
        let admin_notice = match bootstrap_token {
            Some(_) => None,
            None => {
                let storage_flag = match &options.database_url {
                    None => format!("--data-dir {}", options.data_dir.display()),
                    Some(_) => "--database-url \"$MODELGATE_DATABASE_URL\"".to_owned(),
                };
                admin_access_notice(&store, &storage_flag, system_now()).await?
            }
        };
        evaluation::fail_abandoned_jobs(&store, system_now()).await;
        match store.drop_leases_of_dead_processes().await {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, "leases left by a stopped process were dropped"),
            Err(error) => tracing::warn!(%error, "could not drop stale leases"),
        }
        let shutdown = CancellationToken::new();
        let state = AppState::new(
            store,
            artifacts,
            state::Limits {
                upload: UploadLimits {
                    max_bytes: options.max_upload_bytes,
                },
                max_dataset_bytes: options.max_dataset_bytes,
                max_token_days: options.max_token_days,
                sessions: options.sessions.clone(),
                webhooks: options.webhooks.clone(),
                mlflow: options.mlflow.clone(),
                dataset: DatasetLimits {
                    max_decoded_bytes: options.max_dataset_bytes.saturating_mul(PARQUET_EXPANSION),
                    ..options.dataset_limits
                },
            },
            shutdown.clone(),
            signer,
            default_policy()?,
            options
                .clock
                .clone()
                .unwrap_or_else(|| std::sync::Arc::new(system_now)),
        );
        Ok(Self {
            state,
            listener,
            bootstrap_token,
            admin_notice,
            shutdown,
            checkpoint_interval: options.checkpoint_interval,
            schedule_interval: options.schedule_interval,
            data_lock,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, std::io::Error> {
        self.listener.local_addr()
    }

    /// The first admin's token when this start created it: show it once, it is not stored.
    pub fn bootstrap_token(&self) -> Option<&str> {
        self.bootstrap_token.as_deref()
    }

    /// On a start that bootstrapped nothing: how to get admin access back when no admin can act.
    pub fn admin_notice(&self) -> Option<&str> {
        self.admin_notice.as_deref()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` completes, then stops accepting, discards uploads in progress, lets other
    /// requests finish, and closes the database.
    pub async fn run(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let app = routes::router(self.state.clone());
        let checkpointer = tokio::spawn(audit_log::run_checkpointer(
            self.state.store().clone(),
            self.state.signer().clone(),
            self.checkpoint_interval,
            self.shutdown.clone(),
        ));
        let refusal_flusher = tokio::spawn(flush_refusals_periodically(
            self.state.clone(),
            self.shutdown.clone(),
        ));
        let scan_sweeper = tokio::spawn(scanning::run_sweeper(self.state.clone()));
        let webhook_worker = tokio::spawn(webhooks::run_worker(self.state.clone()));
        let scheduler = tokio::spawn(scheduler::run_scheduler(
            self.state.clone(),
            self.schedule_interval,
        ));
        let shutdown = self.shutdown.clone();
        let graceful = async move {
            signal.await;
            tracing::info!("shutting down: finishing requests in flight");
            shutdown.cancel();
        };
        http::serve(self.listener, app, graceful).await;
        evaluation::fail_jobs_at_shutdown(&self.state).await;
        let _ = checkpointer.await;
        let _ = refusal_flusher.await;
        let _ = scan_sweeper.await;
        let _ = webhook_worker.await;
        let _ = scheduler.await;
        // Refusals still counted in memory are written before the final checkpoint covers the log.
        self.state.flush_refusals(true).await;
        // Sign what the log holds at exit, so that the last changes are covered by a checkpoint.
        if let Err(error) =
            audit_log::checkpoint_now(self.state.store(), self.state.signer(), system_now()).await
        {
            tracing::warn!(%error, "could not sign the final audit checkpoint");
        }
        self.state.store().close().await;
        drop(self.data_lock);
        Ok(())
    }
}

/// Writes aggregated refusals whose window has closed, every few seconds until shutdown.
async fn flush_refusals_periodically(state: AppState, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => state.flush_refusals(false).await,
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
