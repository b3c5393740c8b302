//! The audit record of each change, appended inside the transaction of the change.
//!
//! *Invariant*: this is the only place that writes `audit_events`, and every public write method of the
//! store calls it before committing; so no change exists without its event and no event without its change.

use super::{Attribution, Backend};
use crate::StoreError;
use modelgate_core::Actor;
use sqlx::{Any, Row, Transaction};

/// What a change did, for its audit event.
pub(crate) struct AuditRecord {
    /// `model.create`, `version.tag.set`, `token.revoke` …
    pub action: &'static str,
    /// The resource changed, as a path: `model/credit-default`, `model/credit-default/version/3`, `user/alice`.
    pub target: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Any fixed number shared by all replicas; serialises the assignment of sequence numbers on PostgreSQL.
const POSTGRES_AUDIT_LOCK: i64 = 0x6d67_6175_6469;

pub(crate) async fn append(
    transaction: &mut Transaction<'static, Any>,
    backend: Backend,
    attribution: &Attribution,
    record: AuditRecord,
) -> Result<i64, StoreError> {
    if backend == Backend::Postgres {
        // Sequence numbers must be gap-free and totally ordered across replicas: take a transaction-scoped
        // lock, then read the maximum. (SQLite already serialises writers.)
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(POSTGRES_AUDIT_LOCK)
            .execute(&mut **transaction)
            .await?;
    }
    let next: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM audit_events")
        .fetch_one(&mut **transaction)
        .await?
        .try_get("next")?;
    let (actor, token_id) = match &attribution.actor {
        Actor::User {
            username, token_id, ..
        } => (username.to_string(), token_id.clone()),
        Actor::System { reason } => (format!("system:{reason}"), None),
    };
    sqlx::query(
        "INSERT INTO audit_events
            (seq, recorded_at, actor, token_id, action, target, outcome, before_json, after_json, request_id, client_addr)
         VALUES ($1, $2, $3, $4, $5, $6, 'ok', $7, $8, $9, $10)",
    )
    .bind(next)
    .bind(attribution.at.unix_millis())
    .bind(actor)
    .bind(token_id)
    .bind(record.action)
    .bind(record.target)
    .bind(record.before.map(|value| value.to_string()))
    .bind(record.after.map(|value| value.to_string()))
    .bind(attribution.request_id.clone())
    .bind(attribution.client_addr.clone())
    .execute(&mut **transaction)
    .await?;
    Ok(next)
}
