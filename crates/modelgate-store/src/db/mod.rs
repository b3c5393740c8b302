//! The relational store: one interface over SQLite and PostgreSQL (through sqlx's `Any` driver, so each
//! query is written once), migrations per backend, and the audit record written inside every change.
//!
//! Queries use `$1`-style placeholders, which both SQLite and PostgreSQL understand. On SQLite all writes
//! go through a pool of exactly one connection: writers queue in the pool instead of failing with
//! `SQLITE_BUSY`, while readers use their own pool (WAL mode lets them read during a write).

pub mod audit;
#[cfg(feature = "bench-support")]
pub mod bench_fixture;
pub mod cards;
mod credentials;
pub mod evaluations;
pub mod inventory;
mod migrations;
mod models;
pub mod monitoring;
pub mod promotion;
mod rows;
pub mod scans;
pub mod schedule;
mod sessions;
mod tokens;
mod users;
mod versions;
mod views;
pub mod webhooks;

use crate::StoreError;
use modelgate_core::{Actor, Timestamp};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub use credentials::{LockoutRule, PasswordAttempt, PasswordChange};
pub use models::ModelUpdate;
pub use users::UserUpdate;

/// Which database engine is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Who makes a change, when, and from where: every write to the store carries one, and it becomes the
/// audit event of that write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub actor: Actor,
    pub at: Timestamp,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}

impl Attribution {
    /// A change made by the server itself or by an offline admin command.
    pub fn system(reason: &'static str, at: Timestamp) -> Self {
        Self {
            actor: Actor::System { reason },
            at,
            request_id: None,
            client_addr: None,
        }
    }
}

/// The registry's database. Cheap to clone: the pools are shared.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    reader: AnyPool,
    writer: AnyPool,
    /// Present only for SQLite, where this process is the single writer.
    views: Option<std::sync::Arc<views::Views>>,
    /// PostgreSQL: what this replica last read of the review queue, tagged with the database's write
    /// generation at the time (`write_generation`, bumped by every write transaction).
    replica_views: std::sync::Arc<views::GenerationTagged>,
}

const SQLITE_FILE_NAME: &str = "modelgate.db";
const SQLITE_CONNECTION_PRAGMAS: &str =
    "PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

impl Store {
    /// Opens the SQLite database inside `data_dir` (created if missing) in WAL mode.
    pub async fn open_data_dir(data_dir: &Path) -> Result<Self, StoreError> {
        // Private to the server's user: the database holds password and token hashes.
        let folder = crate::data_dir::prepare_data_dir(data_dir)?;
        crate::data_dir::prepare_sqlite_files(&folder.join(SQLITE_FILE_NAME))?;
        let file_url = url::Url::from_file_path(folder.join(SQLITE_FILE_NAME)).map_err(|()| {
            StoreError::Configuration(format!(
                "data directory {} is not a usable path",
                folder.display()
            ))
        })?;
        let url = format!("sqlite{}?mode=rwc", &file_url.as_str()["file".len()..]);
        Self::open(&url).await
    }

    /// Opens a database by URL: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Configuration(format!(
                "unsupported database URL {:?}: use sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB",
                redact_url(url)
            )));
        };
        let options = AnyConnectOptions::from_str(url)
            .map_err(|error| StoreError::Configuration(format!("{}: {error}", redact_url(url))))?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
        match backend {
            Backend::Sqlite => {
                let reader = sqlite_pool_options(4).connect_with(options.clone()).await?;
                let writer = sqlite_pool_options(1)
                    .acquire_timeout(Duration::from_secs(120))
                    .connect_with(options)
                    .await?;
                sqlx::raw_sql("PRAGMA journal_mode = WAL")
                    .execute(&writer)
                    .await?;
                Ok(Self {
                    backend,
                    reader,
                    writer,
                    views: Some(std::sync::Arc::new(views::Views::default())),
                    replica_views: Default::default(),
                })
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(60))
                    .connect_with(options)
                    .await?;
                Ok(Self {
                    backend,
                    reader: pool.clone(),
                    writer: pool,
                    views: None,
                    replica_views: Default::default(),
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Answers whether the database accepts queries (for readiness checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`) so that a
    /// transaction never fails half-way when it upgrades from reading to writing.
    ///
    /// On PostgreSQL every write transaction locks the audit tree's row first. Every audited write holds
    /// that lock from its first event to its commit anyway; taking it first gives all writers one lock
    /// order (audit tree, then rows), so a write that locks a version and then appends cannot deadlock
    /// with one that appends and then locks a version (a promotion archiving the previous occupant).
    /// It then bumps the write generation, which becomes visible with the transaction's changes and
    /// tells every replica that what it keeps in memory may be stale.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let mut transaction = self.begin_schema_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::raw_sql(
                "SELECT size FROM audit_tree WHERE id = 1 FOR UPDATE;
                 UPDATE write_generation SET value = value + 1 WHERE id = 1;",
            )
            .execute(&mut *transaction)
            .await?;
        }
        Ok(transaction)
    }

    /// PostgreSQL's write generation: it moves with every committed write transaction.
    async fn write_generation(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM write_generation WHERE id = 1")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    /// A write transaction that does not touch the audit log (migrations, which may create it).
    async fn begin_schema_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let transaction = match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        };
        Ok(transaction)
    }
}

impl Store {
    /// Commits a write transaction and invalidates the in-memory views.
    async fn commit(&self, transaction: Transaction<'static, Any>) -> Result<(), StoreError> {
        transaction.commit().await?;
        if let Some(views) = &self.views {
            views.invalidate();
        }
        Ok(())
    }
}

fn sqlite_pool_options(connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(connections)
        .min_connections(1)
        .after_connect(|connection, _| {
            Box::pin(async move {
                sqlx::raw_sql(SQLITE_CONNECTION_PRAGMAS)
                    .execute(connection)
                    .await?;
                Ok(())
            })
        })
}

/// The URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
