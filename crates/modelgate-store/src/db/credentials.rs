//! Passwords: setting one (by its owner or by an admin, audited as `user.password_changed`), whether a
//! password may sign, and the lock-out after repeated wrong passwords, kept in the database so that it
//! holds across restarts and is shared by replicas.
//!
//! *Exception to the audit invariant*, stated here: the rows of `password_failures` (one per failed or
//! in-flight password check) are bookkeeping of the lock-out and write no audit event themselves; the
//! refusals they cause are audited by the server through [`Store::record_refusal`] (aggregated for
//! logins). They are deleted once outside the window, so the table holds at most a window's failures.

use super::audit::{self, AuditRecord};
use super::rows;
use super::users::{UserKey, load_user};
use super::{Attribution, Backend, Store};
use crate::StoreError;
use modelgate_core::{Timestamp, User, Username};
use serde_json::json;

/// Who sets a password, which decides whether it may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordChange {
    /// The user sets their own, having given the current one: it may sign.
    OwnChange,
    /// An admin sets someone else's: it logs in but cannot sign until its owner changes it.
    AdminReset,
}

impl PasswordChange {
    fn as_str(self) -> &'static str {
        match self {
            Self::OwnChange => "own_change",
            Self::AdminReset => "admin_reset",
        }
    }
}

/// The lock-out rule: at most `max_failures` failed password checks per username within `window_millis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRule {
    pub max_failures: u32,
    pub window_millis: i64,
}

/// The answer to [`Store::begin_password_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAttempt {
    /// The check may go ahead; it already counts as a failure until [`Store::clear_password_failures`].
    Allowed,
    /// Too many failures in the window: no check until `until`.
    Locked { until: Timestamp },
}

/// Two-key advisory locks (class, key) live apart from the single-key ones used elsewhere.
const POSTGRES_LOCKOUT_LOCK_CLASS: i32 = 0x6d67_6c6b;

impl Store {
    /// Sets a user's password (an argon2id PHC string) and records `user.password_changed` with who did
    /// it and how, never the hash. An admin reset marks the password as unable to sign; the owner's own
    /// change clears that mark.
    pub async fn set_password(
        &self,
        attribution: &Attribution,
        username: &Username,
        password_hash: &str,
        change: PasswordChange,
    ) -> Result<User, StoreError> {
        let mut transaction = self.begin_write().await?;
        let user = load_user(
            &mut transaction,
            "u.username = $1",
            UserKey::Name(username.as_str()),
        )
        .await?;
        let reset_required_at = match change {
            PasswordChange::OwnChange => None,
            PasswordChange::AdminReset => Some(attribution.at.unix_millis()),
        };
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_reset_required_at = $2 WHERE id = $3",
        )
        .bind(password_hash)
        .bind(reset_required_at)
        .bind(user.id)
        .execute(&mut *transaction)
        .await?;
        super::sessions::revoke_sessions_of(&mut transaction, user.id, attribution.at).await?;
        let after = load_user(&mut transaction, "u.id = $1", UserKey::Id(user.id)).await?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "user.password_changed",
                target: format!("user/{username}"),
                before: Some(json!({ "had_password": user.has_password })),
                after: Some(json!({
                    "change": change.as_str(),
                    "self_change": change == PasswordChange::OwnChange,
                    "may_sign": change == PasswordChange::OwnChange,
                })),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(after)
    }

    /// Whether an admin set this user's password and its owner has not changed it since (then it cannot
    /// sign).
    pub async fn password_reset_required(&self, username: &Username) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT password_reset_required_at FROM users WHERE username = $1")
            .bind(username.as_str())
            .fetch_optional(&self.reader)
            .await?;
        match row {
            Some(row) => {
                Ok(rows::get::<Option<i64>>(&row, "password_reset_required_at")?.is_some())
            }
            None => Ok(false),
        }
    }

    /// Starts a password check for `username` (known or not, so that the answer does not tell): refuses
    /// when the user has `max_failures` failures within the window, else records this attempt as a
    /// failure in the same transaction, so concurrent attempts cannot exceed the limit. A check that
    /// succeeds calls [`Store::clear_password_failures`]. Bookkeeping: no audit event (see the module).
    pub async fn begin_password_attempt(
        &self,
        username: &str,
        now: Timestamp,
        rule: LockoutRule,
    ) -> Result<PasswordAttempt, StoreError> {
        let window_start = now.unix_millis() - rule.window_millis;
        let mut transaction = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(POSTGRES_LOCKOUT_LOCK_CLASS)
                .bind(username)
                .execute(&mut *transaction)
                .await?;
        }
        sqlx::query("DELETE FROM password_failures WHERE failed_at <= $1")
            .bind(window_start)
            .execute(&mut *transaction)
            .await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(failed_at) AS oldest FROM password_failures
             WHERE username = $1 AND failed_at > $2",
        )
        .bind(username)
        .bind(window_start)
        .fetch_one(&mut *transaction)
        .await?;
        let failures: i64 = rows::get(&row, "n")?;
        if failures >= i64::from(rule.max_failures) {
            let oldest: Option<i64> = rows::get(&row, "oldest")?;
            transaction.commit().await?;
            let until = oldest.unwrap_or(now.unix_millis()) + rule.window_millis;
            return Ok(PasswordAttempt::Locked {
                until: Timestamp::from_unix_millis(until),
            });
        }
        sqlx::query("INSERT INTO password_failures (username, failed_at) VALUES ($1, $2)")
            .bind(username)
            .bind(now.unix_millis())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(PasswordAttempt::Allowed)
    }

    /// Forgets a user's failed password checks after a successful one. Bookkeeping: no audit event.
    pub async fn clear_password_failures(&self, username: &str) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query("DELETE FROM password_failures WHERE username = $1")
            .bind(username)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }
}
