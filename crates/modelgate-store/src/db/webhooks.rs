//! Webhook subscriptions, their deliveries and every delivery attempt (issue 13).
//!
//! *The outbox is the audit log.* Every change appends its audit event inside its own transaction, so no
//! change exists without its event and no event without its change. A subscription holds a cursor into
//! the log (`next_seq`); fanning out turns the events past the cursor that the subscription wants into
//! delivery rows and moves the cursor, in one transaction, so an event becomes a delivery exactly once.
//!
//! *One worker per subscription.* A replica works a subscription only while it holds its lease
//! (`lease_owner`, `lease_until`); leases are taken and renewed with a conditional `UPDATE`, so two replicas
//! never fan out or deliver the same subscription at once in normal operation. A replica that dies stops
//! renewing and another takes over when the lease runs out; a delivery it made but had not recorded yet is
//! made again, with the same event id (receivers de-duplicate on `webhook-id`).
//!
//! Recording attempts never appends an audit event: a delivery of an event must not make another event.
//! Only changes to subscriptions (create, delete, rotate, disable on 410, test) are audited.

use super::audit::{self, AuditRecord, to_i64, to_u64};
use super::rows;
use super::{Attribution, Store};
use crate::StoreError;
use modelgate_core::Timestamp;
use serde_json::json;
use sqlx::any::AnyRow;
use std::collections::HashMap;

/// A subscription to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    /// Event types (`version.promoted`, …) or `*`.
    pub events: Vec<String>,
    pub model: Option<String>,
    /// `whsec_<base64>`.
    pub secret: String,
}

/// A subscription on record. `secret` and `previous_secret` are for signing only, never for answers.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub model: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub created_by: String,
    pub disabled_at: Option<Timestamp>,
    pub disabled_reason: Option<String>,
    /// The first audit event not fanned out yet.
    pub next_seq: u64,
}

impl std::fmt::Debug for WebhookRecord {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WebhookRecord")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("model", &self.model)
            .field("secret", &"<redacted>")
            .field("disabled_at", &self.disabled_at)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

/// An audit event as fan-out sees it: what it is about, with the model (and version) of a request's
/// events looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub seq: u64,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub model: Option<String>,
    pub version: Option<i64>,
}

/// A delivery fan-out makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub event_seq: u64,
    pub event_type: String,
    /// Order is kept within a lane: the event's model, `""` for events of no model.
    pub lane: String,
    pub subject: String,
}

/// A delivery on record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub subscription_id: i64,
    pub event_seq: u64,
    pub event_type: String,
    pub lane: String,
    pub subject: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub created_at: Timestamp,
    pub next_attempt_at: Timestamp,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<u64>,
    pub finished_at: Option<Timestamp>,
}

/// One attempt on record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub attempted_at: Timestamp,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryNext {
    Delivered,
    RetryAt(Timestamp),
    /// Given up: a status that is not retried, or retries ran out.
    Failed,
    /// The receiver said 410 Gone: the delivery failed and the subscription is disabled.
    Disable(String),
}

/// The result of one attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub event_seq: u64,
    pub attempted_at: Timestamp,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
    pub next: DeliveryNext,
}

const WEBHOOK_COLUMNS: &str = "id, url, events, model, secret, previous_secret, previous_secret_until, created_at, created_by, disabled_at, disabled_reason, next_seq";
const DELIVERY_COLUMNS: &str = "subscription_id, event_seq, event_type, lane, subject, state, attempts, created_at, next_attempt_at, last_status, last_error, last_latency_ms, finished_at";

fn webhook_target(id: i64) -> String {
    format!("webhook/{id}")
}

fn webhook_from_row(row: &AnyRow) -> Result<WebhookRecord, StoreError> {
    let events: String = rows::get(row, "events")?;
    Ok(WebhookRecord {
        id: rows::get(row, "id")?,
        url: rows::get(row, "url")?,
        events: events
            .split(',')
            .filter(|event| !event.is_empty())
            .map(str::to_owned)
            .collect(),
        model: rows::get(row, "model")?,
        secret: rows::get(row, "secret")?,
        previous_secret: rows::get(row, "previous_secret")?,
        previous_secret_until: rows::optional_timestamp(row, "previous_secret_until")?,
        created_at: rows::timestamp(row, "created_at")?,
        created_by: rows::get(row, "created_by")?,
        disabled_at: rows::optional_timestamp(row, "disabled_at")?,
        disabled_reason: rows::get(row, "disabled_reason")?,
        next_seq: to_u64(rows::get(row, "next_seq")?, "next_seq")?,
    })
}

fn delivery_from_row(row: &AnyRow) -> Result<DeliveryRecord, StoreError> {
    let status: Option<i64> = rows::get(row, "last_status")?;
    let latency: Option<i64> = rows::get(row, "last_latency_ms")?;
    let attempts: i64 = rows::get(row, "attempts")?;
    Ok(DeliveryRecord {
        subscription_id: rows::get(row, "subscription_id")?,
        event_seq: to_u64(rows::get(row, "event_seq")?, "event_seq")?,
        event_type: rows::get(row, "event_type")?,
        lane: rows::get(row, "lane")?,
        subject: rows::get(row, "subject")?,
        state: rows::get(row, "state")?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        created_at: rows::timestamp(row, "created_at")?,
        next_attempt_at: rows::timestamp(row, "next_attempt_at")?,
        last_status: status.and_then(|status| u16::try_from(status).ok()),
        last_error: rows::get(row, "last_error")?,
        last_latency_ms: latency.and_then(|latency| u64::try_from(latency).ok()),
        finished_at: rows::optional_timestamp(row, "finished_at")?,
    })
}

/// What a subscription's audit event shows of it: never the secret, and of the URL only its origin and
/// digest (a receiver's URL often carries a credential in its path or query, and the log is readable by
/// everyone signed in, and goes out to subscribers).
fn public_view(record: &NewWebhook) -> serde_json::Value {
    use sha2::Digest as _;
    let origin = url::Url::parse(&record.url)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default();
    let digest = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(record.url.as_bytes()))
    );
    json!({ "url_origin": origin, "url_digest": digest, "events": record.events, "model": record.model })
}

impl Store {
    /// Creates a subscription, audited as `webhook.create` (without its secret). It receives the events
    /// recorded after it.
    pub async fn create_webhook(
        &self,
        attribution: &Attribution,
        webhook: &NewWebhook,
    ) -> Result<WebhookRecord, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut events = webhook.events.clone();
        events.sort();
        events.dedup();
        let id: i64 = rows::get(
            &sqlx::query(
                "INSERT INTO webhook_subscriptions (url, events, model, secret, created_at, created_by, next_seq)
                 VALUES ($1, $2, $3, $4, $5, $6, 0) RETURNING id",
            )
            .bind(&webhook.url)
            .bind(events.join(","))
            .bind(webhook.model.as_deref())
            .bind(&webhook.secret)
            .bind(attribution.at.unix_millis())
            .bind(attribution.actor.display_name().to_owned())
            .fetch_one(&mut *transaction)
            .await?,
            "id",
        )?;
        let seq = audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "webhook.create",
                target: webhook_target(id),
                before: None,
                after: Some(public_view(&NewWebhook {
                    events,
                    ..webhook.clone()
                })),
            },
        )
        .await?;
        sqlx::query("UPDATE webhook_subscriptions SET next_seq = $1 WHERE id = $2")
            .bind(to_i64(seq + 1))
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        self.commit(transaction).await?;
        self.get_webhook(id).await
    }

    /// A subscription that was not deleted.
    pub async fn get_webhook(&self, id: i64) -> Result<WebhookRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhook_subscriptions WHERE id = $1 AND deleted_at IS NULL"
        )))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("webhook", id))?;
        webhook_from_row(&row)
    }

    /// Every subscription that was not deleted, oldest first.
    pub async fn list_webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhook_subscriptions WHERE deleted_at IS NULL ORDER BY id"
        )))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(webhook_from_row)
        .collect()
    }

    /// Deletes a subscription (audited as `webhook.delete`): nothing more is delivered to it, its
    /// pending deliveries fail, and its delivery log stays readable to nobody but the database.
    pub async fn delete_webhook(
        &self,
        attribution: &Attribution,
        id: i64,
    ) -> Result<(), StoreError> {
        let before = self.get_webhook(id).await?;
        let mut transaction = self.begin_write().await?;
        let at = attribution.at.unix_millis();
        let deleted = sqlx::query(
            "UPDATE webhook_subscriptions SET deleted_at = $1, lease_owner = NULL, lease_until = NULL
             WHERE id = $2 AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *transaction)
        .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::not_found("webhook", id));
        }
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'failed', last_error = 'the subscription was deleted', finished_at = $1
             WHERE subscription_id = $2 AND state = 'pending'",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *transaction)
        .await?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "webhook.delete",
                target: webhook_target(id),
                before: Some(public_view(&NewWebhook {
                    url: before.url,
                    events: before.events,
                    model: before.model,
                    secret: String::new(),
                })),
                after: None,
            },
        )
        .await?;
        self.commit(transaction).await
    }

    /// Replaces a subscription's secret (audited as `webhook.rotate`); deliveries carry signatures with
    /// both the new and the old secret until `previous_until`.
    pub async fn rotate_webhook_secret(
        &self,
        attribution: &Attribution,
        id: i64,
        secret: &str,
        previous_until: Timestamp,
    ) -> Result<WebhookRecord, StoreError> {
        let mut transaction = self.begin_write().await?;
        let rotated = sqlx::query(
            "UPDATE webhook_subscriptions SET previous_secret = secret, previous_secret_until = $1, secret = $2
             WHERE id = $3 AND deleted_at IS NULL",
        )
        .bind(previous_until.unix_millis())
        .bind(secret)
        .bind(id)
        .execute(&mut *transaction)
        .await?;
        if rotated.rows_affected() == 0 {
            return Err(StoreError::not_found("webhook", id));
        }
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "webhook.rotate",
                target: webhook_target(id),
                before: None,
                after: Some(json!({ "previous_secret_until": previous_until.unix_millis() })),
            },
        )
        .await?;
        self.commit(transaction).await?;
        self.get_webhook(id).await
    }

    /// Records a test event for one subscription (audited as `webhook.test`; only that subscription
    /// receives it). Returns the event's sequence number.
    pub async fn record_webhook_test(
        &self,
        attribution: &Attribution,
        id: i64,
    ) -> Result<u64, StoreError> {
        self.get_webhook(id).await?;
        let mut transaction = self.begin_write().await?;
        let seq = audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "webhook.test",
                target: webhook_target(id),
                before: None,
                after: Some(json!({ "test": true })),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(seq)
    }

    /// Takes the lease of every enabled subscription that no other live replica holds, and renews those of
    /// `owner` that run out before `renew_before`, until `until`; returns the subscriptions `owner` holds.
    /// A round that needs neither writes nothing (the common case: leases are renewed when half spent).
    pub async fn lease_webhooks(
        &self,
        owner: &str,
        now: Timestamp,
        renew_before: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<WebhookRecord>, StoreError> {
        let stale = sqlx::query(
            "SELECT COUNT(*) AS stale FROM webhook_subscriptions
             WHERE deleted_at IS NULL AND disabled_at IS NULL
               AND (lease_owner IS NULL OR lease_until < $2 OR (lease_owner = $1 AND lease_until < $3))",
        )
        .bind(owner)
        .bind(now.unix_millis())
        .bind(renew_before.unix_millis())
        .fetch_one(&self.reader)
        .await?;
        if rows::get::<i64>(&stale, "stale")? > 0 {
            sqlx::query(
                "UPDATE webhook_subscriptions SET lease_owner = $1, lease_until = $2
                 WHERE deleted_at IS NULL AND disabled_at IS NULL
                   AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $3)",
            )
            .bind(owner)
            .bind(until.unix_millis())
            .bind(now.unix_millis())
            .execute(&self.writer)
            .await?;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhook_subscriptions
             WHERE lease_owner = $1 AND lease_until >= $2 AND deleted_at IS NULL AND disabled_at IS NULL
             ORDER BY id"
        )))
        .bind(owner)
        .bind(now.unix_millis())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(webhook_from_row)
        .collect()
    }

    /// Makes sure `owner` holds one subscription's lease past `renew_before`, renewing it until `until` when
    /// it runs out sooner; false when another replica took it (or the subscription was deleted or disabled
    /// meanwhile).
    pub async fn renew_webhook_lease(
        &self,
        owner: &str,
        id: i64,
        now: Timestamp,
        renew_before: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let held = sqlx::query(
            "SELECT 1 AS held FROM webhook_subscriptions
             WHERE id = $1 AND lease_owner = $2 AND lease_until >= $3
               AND deleted_at IS NULL AND disabled_at IS NULL",
        )
        .bind(id)
        .bind(owner)
        .bind(renew_before.unix_millis())
        .fetch_optional(&self.reader)
        .await?;
        if held.is_some() {
            return Ok(true);
        }
        let renewed = sqlx::query(
            "UPDATE webhook_subscriptions SET lease_owner = $1, lease_until = $2
             WHERE id = $3 AND deleted_at IS NULL AND disabled_at IS NULL
               AND (lease_owner = $1 OR lease_owner IS NULL OR lease_until < $4)",
        )
        .bind(owner)
        .bind(until.unix_millis())
        .bind(id)
        .bind(now.unix_millis())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(renewed == 1)
    }

    /// On SQLite, where one process holds the data directory (its lock), every lease left in the database
    /// is a dead process's (a crash): they are dropped at start, so delivery resumes at once. On PostgreSQL
    /// a crashed replica's leases run out instead. Returns how many were dropped.
    pub async fn drop_leases_of_dead_processes(&self) -> Result<u64, StoreError> {
        if self.backend != super::Backend::Sqlite {
            return Ok(0);
        }
        let webhooks = sqlx::query(
            "UPDATE webhook_subscriptions SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL",
        )
        .execute(&self.writer)
        .await?
        .rows_affected();
        let scheduler = sqlx::query(
            "UPDATE scheduler_lease SET owner = NULL, lease_until = 0 WHERE owner IS NOT NULL",
        )
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(webhooks + scheduler)
    }

    /// Gives up `owner`'s leases (at shutdown), so another replica takes over at once.
    pub async fn release_webhooks(&self, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_subscriptions SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
        )
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Up to `limit` audit events from `from_seq` on, with the model and version of request events.
    pub async fn webhook_events_from(
        &self,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, action, target, outcome FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(to_i64(from_seq))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        let mut requests = Vec::new();
        for row in &rows {
            let target: String = rows::get(row, "target")?;
            let (model, version) = model_of_target(&target);
            if let Some(id) = target
                .strip_prefix("request/")
                .and_then(|id| id.parse::<i64>().ok())
            {
                requests.push(id);
            }
            events.push(WebhookEvent {
                seq: to_u64(rows::get(row, "seq")?, "seq")?,
                action: rows::get(row, "action")?,
                target,
                outcome: rows::get(row, "outcome")?,
                model,
                version,
            });
        }
        if !requests.is_empty() {
            requests.sort_unstable();
            requests.dedup();
            // Integers the database chose: safe to inline.
            let listed = requests
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let mut of_request = HashMap::new();
            for row in sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT r.id, m.name, v.number FROM promotion_requests r
                 JOIN models m ON m.id = r.model_id JOIN versions v ON v.id = r.version_id
                 WHERE r.id IN ({listed})"
            )))
            .fetch_all(&self.reader)
            .await?
            {
                let id: i64 = rows::get(&row, "id")?;
                let name: String = rows::get(&row, "name")?;
                let number: i64 = rows::get(&row, "number")?;
                of_request.insert(id, (name, number));
            }
            for event in &mut events {
                if let Some((name, number)) = event
                    .target
                    .strip_prefix("request/")
                    .and_then(|id| id.parse::<i64>().ok())
                    .and_then(|id| of_request.get(&id))
                {
                    event.model = Some(name.clone());
                    event.version = Some(*number);
                }
            }
        }
        Ok(events)
    }

    /// Fans out for subscription `id`: records `deliveries` and moves its cursor from `from_seq` to
    /// `next_seq`, in one transaction, only while `owner` holds the lease and nobody moved the cursor.
    /// Returns whether it did.
    pub async fn fan_out_webhook(
        &self,
        owner: &str,
        id: i64,
        from_seq: u64,
        next_seq: u64,
        deliveries: &[NewDelivery],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.writer.begin().await?;
        let moved = sqlx::query(
            "UPDATE webhook_subscriptions SET next_seq = $1
             WHERE id = $2 AND lease_owner = $3 AND next_seq = $4 AND deleted_at IS NULL",
        )
        .bind(to_i64(next_seq))
        .bind(id)
        .bind(owner)
        .bind(to_i64(from_seq))
        .execute(&mut *transaction)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        for delivery in deliveries {
            sqlx::query(
                "INSERT INTO webhook_deliveries (subscription_id, event_seq, event_type, lane, subject, state, attempts, created_at, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)
                 ON CONFLICT (subscription_id, event_seq) DO NOTHING",
            )
            .bind(id)
            .bind(to_i64(delivery.event_seq))
            .bind(&delivery.event_type)
            .bind(&delivery.lane)
            .bind(&delivery.subject)
            .bind(now.unix_millis())
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// The earliest `limit` pending deliveries of a subscription, in event order.
    pub async fn pending_deliveries(
        &self,
        id: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
             WHERE subscription_id = $1 AND state = 'pending' ORDER BY event_seq LIMIT $2"
        )))
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(delivery_from_row)
        .collect()
    }

    /// The canonical JSON of audit events and their leaf hashes, by sequence number.
    pub async fn audit_leaves(
        &self,
        seqs: &[u64],
    ) -> Result<HashMap<u64, (String, String)>, StoreError> {
        if seqs.is_empty() {
            return Ok(HashMap::new());
        }
        let listed = seqs
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let mut leaves = HashMap::with_capacity(seqs.len());
        for row in sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT seq, leaf, leaf_hash FROM audit_events WHERE seq IN ({listed})"
        )))
        .fetch_all(&self.reader)
        .await?
        {
            leaves.insert(
                to_u64(rows::get(&row, "seq")?, "seq")?,
                (rows::get(&row, "leaf")?, rows::get(&row, "leaf_hash")?),
            );
        }
        Ok(leaves)
    }

    /// Records attempts of a subscription's deliveries, in one transaction. A 410 disables the
    /// subscription (audited as `webhook.disable`, by the system).
    pub async fn record_webhook_attempts(
        &self,
        id: i64,
        outcomes: &[AttemptOutcome],
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let disable = outcomes.iter().find_map(|outcome| match &outcome.next {
            DeliveryNext::Disable(reason) => Some((reason.clone(), outcome.attempted_at)),
            _ => None,
        });
        // Disabling is a change, audited, so it takes the audited write path; the attempts alone do not.
        let mut transaction = if disable.is_some() {
            self.begin_write().await?
        } else {
            self.writer.begin().await?
        };
        for outcome in outcomes {
            let seq = to_i64(outcome.event_seq);
            // A delivery settled meanwhile (deleted subscription, another replica) is left as it is.
            let Some(updated) = sqlx::query(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $1, last_error = $2,
                         last_latency_ms = $3
                     WHERE subscription_id = $4 AND event_seq = $5 AND state = 'pending' RETURNING attempts",
                )
                .bind(outcome.status.map(i64::from))
                .bind(outcome.error.as_deref())
                .bind(to_i64(outcome.latency_ms))
                .bind(id)
                .bind(seq)
                .fetch_optional(&mut *transaction)
                .await?
            else {
                continue;
            };
            let attempt: i64 = rows::get(&updated, "attempts")?;
            sqlx::query(
                "INSERT INTO webhook_attempts (subscription_id, event_seq, attempt, attempted_at, status, error, latency_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (subscription_id, event_seq, attempt) DO NOTHING",
            )
            .bind(id)
            .bind(seq)
            .bind(attempt)
            .bind(outcome.attempted_at.unix_millis())
            .bind(outcome.status.map(i64::from))
            .bind(outcome.error.as_deref())
            .bind(to_i64(outcome.latency_ms))
            .execute(&mut *transaction)
            .await?;
            let (state, next_at, finished) = match &outcome.next {
                DeliveryNext::Delivered => ("delivered", outcome.attempted_at, true),
                DeliveryNext::RetryAt(at) => ("pending", *at, false),
                DeliveryNext::Failed | DeliveryNext::Disable(_) => {
                    ("failed", outcome.attempted_at, true)
                }
            };
            sqlx::query(
                "UPDATE webhook_deliveries SET state = $1, next_attempt_at = $2, finished_at = $3
                 WHERE subscription_id = $4 AND event_seq = $5 AND state = 'pending'",
            )
            .bind(state)
            .bind(next_at.unix_millis())
            .bind(finished.then(|| outcome.attempted_at.unix_millis()))
            .bind(id)
            .bind(seq)
            .execute(&mut *transaction)
            .await?;
        }
        if let Some((reason, at)) = disable {
            sqlx::query(
                "UPDATE webhook_subscriptions SET disabled_at = $1, disabled_reason = $2, lease_owner = NULL, lease_until = NULL
                 WHERE id = $3 AND disabled_at IS NULL",
            )
            .bind(at.unix_millis())
            .bind(&reason)
            .bind(id)
            .execute(&mut *transaction)
            .await?;
            sqlx::query(
                "UPDATE webhook_deliveries SET state = 'failed', last_error = 'the subscription was disabled', finished_at = $1
                 WHERE subscription_id = $2 AND state = 'pending'",
            )
            .bind(at.unix_millis())
            .bind(id)
            .execute(&mut *transaction)
            .await?;
            audit::append(
                &mut transaction,
                self.backend,
                &Attribution::system("webhook delivery", at),
                AuditRecord {
                    action: "webhook.disable",
                    target: webhook_target(id),
                    before: None,
                    after: Some(json!({ "reason": reason })),
                },
            )
            .await?;
            self.commit(transaction).await?;
        } else {
            transaction.commit().await?;
        }
        Ok(())
    }

    /// A subscription's deliveries, newest event first, each with its attempts (oldest first).
    pub async fn list_webhook_deliveries(
        &self,
        id: i64,
        limit: u32,
    ) -> Result<Vec<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
        self.get_webhook(id).await?;
        let deliveries: Vec<DeliveryRecord> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
             WHERE subscription_id = $1 ORDER BY event_seq DESC LIMIT $2"
        )))
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(delivery_from_row)
        .collect::<Result<_, _>>()?;
        let Some(oldest) = deliveries.last().map(|delivery| delivery.event_seq) else {
            return Ok(Vec::new());
        };
        let mut attempts: HashMap<u64, Vec<AttemptRecord>> = HashMap::new();
        for row in sqlx::query(
            "SELECT event_seq, attempt, attempted_at, status, error, latency_ms FROM webhook_attempts
             WHERE subscription_id = $1 AND event_seq >= $2 ORDER BY event_seq, attempt",
        )
        .bind(id)
        .bind(to_i64(oldest))
        .fetch_all(&self.reader)
        .await?
        {
            let status: Option<i64> = rows::get(&row, "status")?;
            let attempt: i64 = rows::get(&row, "attempt")?;
            let latency: i64 = rows::get(&row, "latency_ms")?;
            attempts
                .entry(to_u64(rows::get(&row, "event_seq")?, "event_seq")?)
                .or_default()
                .push(AttemptRecord {
                    attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                    attempted_at: rows::timestamp(&row, "attempted_at")?,
                    status: status.and_then(|status| u16::try_from(status).ok()),
                    error: rows::get(&row, "error")?,
                    latency_ms: u64::try_from(latency).unwrap_or(0),
                });
        }
        Ok(deliveries
            .into_iter()
            .map(|delivery| {
                let tried = attempts.remove(&delivery.event_seq).unwrap_or_default();
                (delivery, tried)
            })
            .collect())
    }
}

/// The model (and version) an audit target names: `model/NAME`, `model/NAME/version/N`, and what lies
/// under them.
fn model_of_target(target: &str) -> (Option<String>, Option<i64>) {
    let Some(rest) = target.strip_prefix("model/") else {
        return (None, None);
    };
    let mut parts = rest.split('/');
    let model = parts
        .next()
        .filter(|name| !name.is_empty())
        .map(str::to_owned);
    let version = match (parts.next(), parts.next()) {
        (Some("version"), Some(number)) => number.parse().ok(),
        _ => None,
    };
    (model, version)
}

#[cfg(test)]
mod tests {
    use super::model_of_target;

    #[test]
    fn targets_name_their_model_and_version() {
        assert_eq!(
            model_of_target("model/credit/version/3"),
            (Some("credit".to_owned()), Some(3))
        );
        assert_eq!(
            model_of_target("model/credit/version/3/tag/x"),
            (Some("credit".to_owned()), Some(3))
        );
        assert_eq!(
            model_of_target("model/credit"),
            (Some("credit".to_owned()), None)
        );
        assert_eq!(
            model_of_target("model/credit/stage/production"),
            (Some("credit".to_owned()), None)
        );
        assert_eq!(model_of_target("user/alice"), (None, None));
        assert_eq!(model_of_target("request/4"), (None, None));
    }
}
