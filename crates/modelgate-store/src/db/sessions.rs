//! Browser sessions of the web UI: only the SHA-256 of the cookie's secret is stored, so that replicas
//! share sessions and a copy of the database cannot be replayed as one. Signing in and out are audited;
//! the last-seen time is bookkeeping.

use super::audit::{self, AuditRecord};
use super::users::{USER_COLUMNS, credential_and_principal};
use super::{Attribution, Store};
use crate::StoreError;
use modelgate_core::{Principal, SessionRecord, Timestamp, User};
use serde_json::json;
use sqlx::{Any, Row, Transaction};

const SESSION_COLUMNS: &str = "s.public_id, s.created_at AS session_created_at, s.last_seen_at, \
     s.expires_at AS session_expires_at, s.revoked_at AS session_revoked_at";

fn session_from_row(row: &sqlx::any::AnyRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        public_id: row.try_get("public_id")?,
        user_id: row.try_get("user_id")?,
        created_at: Timestamp::from_unix_millis(row.try_get("session_created_at")?),
        last_seen_at: Timestamp::from_unix_millis(row.try_get("last_seen_at")?),
        expires_at: Timestamp::from_unix_millis(row.try_get("session_expires_at")?),
        revoked_at: row
            .try_get::<Option<i64>, _>("session_revoked_at")?
            .map(Timestamp::from_unix_millis),
    })
}

impl Store {
    /// Stores a new session for `user` (signing in), ending at `expires_at` at the latest.
    pub async fn create_session(
        &self,
        attribution: &Attribution,
        user: &User,
        secret_hash: &str,
        expires_at: Timestamp,
    ) -> Result<SessionRecord, StoreError> {
        let public_id = format!("ses_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO ui_sessions (public_id, secret_hash, user_id, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(public_id.as_str())
        .bind(secret_hash)
        .bind(user.id)
        .bind(attribution.at.unix_millis())
        .bind(expires_at.unix_millis())
        .execute(&mut *transaction)
        .await
        .map_err(StoreError::on_unique_violation("session", &public_id))?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "session.create",
                target: format!("user/{}", user.username),
                before: None,
                after: Some(json!({
                    "session": public_id,
                    "expires_at": expires_at.unix_millis(),
                })),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(SessionRecord {
            public_id,
            user_id: user.id,
            created_at: attribution.at,
            last_seen_at: attribution.at,
            expires_at,
            revoked_at: None,
        })
    }

    /// The session and user behind a secret's hash, whatever their state; the caller decides whether an
    /// idle, expired or revoked session, or an inactive user, may act.
    pub async fn find_session(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(SessionRecord, Principal)>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS}, {USER_COLUMNS}, r.role
             FROM ui_sessions s JOIN users u ON u.id = s.user_id
             LEFT JOIN user_roles r ON r.user_id = u.id
             WHERE s.secret_hash = $1 ORDER BY r.role"
        )))
        .bind(secret_hash)
        .fetch_all(&self.reader)
        .await?;
        credential_and_principal(
            &rows,
            session_from_row,
            |session| session.public_id.clone(),
            "session",
        )
    }

    /// Records that a session was used at `at` (what its idle expiry counts from).
    pub async fn touch_session(&self, public_id: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "UPDATE ui_sessions SET last_seen_at = $1 WHERE public_id = $2 AND last_seen_at < $1",
        )
        .bind(at.unix_millis())
        .bind(public_id)
        .execute(&mut *transaction)
        .await?;
        self.commit(transaction).await?;
        Ok(())
    }

    /// Ends a session (signing out); audited once, a second sign-out changes nothing.
    pub async fn revoke_session(
        &self,
        attribution: &Attribution,
        public_id: &str,
        username: &str,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE ui_sessions SET revoked_at = $1 WHERE public_id = $2 AND revoked_at IS NULL",
        )
        .bind(attribution.at.unix_millis())
        .bind(public_id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if updated == 1 {
            audit::append(
                &mut transaction,
                self.backend,
                attribution,
                AuditRecord {
                    action: "session.revoke",
                    target: format!("user/{username}"),
                    before: None,
                    after: Some(json!({ "session": public_id })),
                },
            )
            .await?;
        }
        self.commit(transaction).await?;
        Ok(())
    }
}

/// Ends every session of a user, in the transaction of the change that calls for it (a password set or
/// reset, a deactivation): a browser signed in with the old credentials must sign in again.
pub(crate) async fn revoke_sessions_of(
    transaction: &mut Transaction<'static, Any>,
    user_id: i64,
    at: Timestamp,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE ui_sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(at.unix_millis())
    .bind(user_id)
    .execute(&mut **transaction)
    .await?
    .rows_affected())
}
