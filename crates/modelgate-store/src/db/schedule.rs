//! Scheduled work (issue 13): the scheduler's lease, the approvals it watches, and scheduled events that
//! happen exactly once across replicas and restarts — each has a key, inserted in the transaction that
//! appends its audit event; a key already there means the event happened and nothing is written.

use super::audit::{self, AuditRecord};
use super::rows;
use super::{Attribution, Store};
use crate::StoreError;
use modelgate_core::{ModelName, RiskTier, Stage, Timestamp, VersionNumber};

/// A version's approval in force, with what the scheduler needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalInForce {
    pub model: ModelName,
    pub risk_tier: RiskTier,
    pub version: VersionNumber,
    pub stage: Stage,
    /// The request whose approval this is: the key of everything scheduled about it.
    pub approval_request_id: i64,
    pub approved_at: Timestamp,
    pub not_after: Timestamp,
    pub suspended: bool,
    /// The latest judged monitoring batch of the version, if any (id, time): a batch too small to judge
    /// does not count as watching.
    pub last_batch: Option<(i64, Timestamp)>,
}

impl Store {
    /// Takes or renews the scheduler's lease for `owner` until `until`; false when another replica holds it.
    pub async fn take_scheduler_lease(
        &self,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "UPDATE scheduler_lease SET owner = $1, lease_until = $2
             WHERE id = 1 AND (owner IS NULL OR owner = $1 OR lease_until < $3)",
        )
        .bind(owner)
        .bind(until.unix_millis())
        .bind(now.unix_millis())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    /// Gives the lease up (at shutdown).
    pub async fn release_scheduler_lease(&self, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE scheduler_lease SET owner = NULL, lease_until = 0 WHERE id = 1 AND owner = $1",
        )
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Every approval in force: versions in the stage their approval is for, of models not archived.
    pub async fn approvals_in_force(&self) -> Result<Vec<ApprovalInForce>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.name, m.risk_tier, v.number, v.stage, v.approval_request_id, v.approved_at, v.not_after,
                    v.suspension_reason,
                    (SELECT MAX(b.id) FROM monitoring_batches b
                      WHERE b.model_name = m.name AND b.version_number = v.number AND b.judged = 1) AS last_batch_id,
                    (SELECT MAX(b.created_at) FROM monitoring_batches b
                      WHERE b.model_name = m.name AND b.version_number = v.number AND b.judged = 1) AS last_batch_at
             FROM versions v JOIN models m ON m.id = v.model_id
             WHERE v.approved_stage IS NOT NULL AND v.stage = v.approved_stage AND v.not_after IS NOT NULL
               AND v.approval_request_id IS NOT NULL AND v.approved_at IS NOT NULL AND m.archived_at IS NULL
             ORDER BY m.name, v.number",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let suspension: Option<String> = rows::get(row, "suspension_reason")?;
                let last_id: Option<i64> = rows::get(row, "last_batch_id")?;
                let last_at: Option<i64> = rows::get(row, "last_batch_at")?;
                Ok(ApprovalInForce {
                    model: rows::parsed_column(row, "name", ModelName::parse)?,
                    risk_tier: rows::parsed_column(row, "risk_tier", RiskTier::parse)?,
                    version: VersionNumber::new(rows::get(row, "number")?)?,
                    stage: rows::parsed_column(row, "stage", Stage::parse)?,
                    approval_request_id: rows::get(row, "approval_request_id")?,
                    approved_at: rows::timestamp(row, "approved_at")?,
                    not_after: rows::timestamp(row, "not_after")?,
                    suspended: suspension.is_some(),
                    last_batch: last_id.zip(last_at.map(Timestamp::from_unix_millis)),
                })
            })
            .collect()
    }

    /// Records a scheduled event once: its key and its audit event in one transaction. Returns false (and
    /// writes nothing) when the event with this key already happened.
    pub async fn record_scheduled_event(
        &self,
        attribution: &Attribution,
        kind: &'static str,
        key: &str,
        target: String,
        after: serde_json::Value,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO scheduled_events (kind, event_key, happened_at) VALUES ($1, $2, $3)
             ON CONFLICT (kind, event_key) DO NOTHING",
        )
        .bind(kind)
        .bind(key)
        .bind(attribution.at.unix_millis())
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: kind,
                target,
                before: None,
                after: Some(after),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(true)
    }

    /// Whether a scheduled event with this key happened.
    pub async fn scheduled_event_happened(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT 1 AS found FROM scheduled_events WHERE kind = $1 AND event_key = $2",
        )
        .bind(kind)
        .bind(key)
        .fetch_optional(&self.reader)
        .await?
        .is_some())
    }
}
