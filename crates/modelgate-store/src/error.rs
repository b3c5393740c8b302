//! The errors the store reports, phrased in the domain's terms; driver details stay inside `Database`.

use modelgate_core::InvalidInput;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {key:?} not found")]
    NotFound { kind: &'static str, key: String },
    #[error("{kind} {key:?} already exists")]
    AlreadyExists { kind: &'static str, key: String },
    /// The request is well-formed but the state does not allow it (an artifact not uploaded yet, an
    /// archived model).
    #[error("{0}")]
    FailedPrecondition(String),
    /// What a decision was prepared on changed before it could be applied (the version moved, its
    /// evidence or the policy changed); nothing was written.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// A stored value no longer parses: the database was edited outside modelgate.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error("cannot open the database: {0}")]
    Configuration(String),
}

impl StoreError {
    pub(crate) fn not_found(kind: &'static str, key: impl ToString) -> Self {
        Self::NotFound {
            kind,
            key: key.to_string(),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Self::Corrupt(what.into())
    }

    /// Maps a unique-constraint violation to `AlreadyExists`, leaving every other error as it is.
    pub(crate) fn on_unique_violation(
        kind: &'static str,
        key: impl ToString,
    ) -> impl FnOnce(sqlx::Error) -> Self {
        move |error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::AlreadyExists {
                kind,
                key: key.to_string(),
            },
            _ => Self::Database(error),
        }
    }
}
