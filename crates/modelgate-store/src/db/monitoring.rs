//! Monitoring after deployment (issue 13): batches of production inputs with their drift reports, and KPI
//! observations. The server judges them against the policy; the store records the observation, every
//! breach (audited as `monitoring.breach`) and the breach's effect — a suspension or an approval marked
//! `review_due` — in one transaction, so no breach is recorded without its effect or the other way round.

use super::audit::{self, AuditRecord};
use super::rows;
use super::{Attribution, Store};
use crate::StoreError;
use modelgate_core::{Digest, ModelName, Timestamp, VersionNumber};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

/// A limit crossed: its kind (`drift`, `kpi`), the action the policy names and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBreach {
    pub kind: String,
    pub action: String,
    pub reason: String,
}

/// What the breaches do to the version, applied with the observation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreachEffect {
    /// Suspend the version with this reason (unless it is suspended already).
    pub suspend: Option<String>,
    /// Mark its approval in force `review_due` with this reason.
    pub review: Option<String>,
}

impl BreachEffect {
    /// The effect with the observation that caused it named at the end of each reason.
    fn naming(&self, source: &str) -> Self {
        Self {
            suspend: self
                .suspend
                .as_ref()
                .map(|reason| format!("{reason}, {source}")),
            review: self
                .review
                .as_ref()
                .map(|reason| format!("{reason}, {source}")),
        }
    }
}

/// A batch to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    pub model: ModelName,
    pub version: VersionNumber,
    pub digest: Digest,
    pub reference: String,
    pub reference_digest: Digest,
    pub rows: u64,
    pub label_column: Option<String>,
    pub row_id_column: Option<String>,
    /// The column holding the model's score, for outcomes joined later.
    pub score_column: Option<String>,
    pub judged: bool,
    /// The drift report as canonical JSON, and its `sha256:` digest.
    pub report_json: String,
    pub report_digest: String,
    pub breaches: Vec<StoredBreach>,
}

/// A batch on record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    pub id: i64,
    pub model: String,
    pub version: i64,
    pub digest: String,
    pub reference: String,
    pub reference_digest: String,
    pub rows: u64,
    pub label_column: Option<String>,
    pub row_id_column: Option<String>,
    pub score_column: Option<String>,
    pub judged: bool,
    pub report_json: String,
    pub report_digest: String,
    pub breaches: Vec<StoredBreach>,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// Outcomes joined onto a version's batches, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutcomes {
    pub model: ModelName,
    pub version: VersionNumber,
    pub digest: Digest,
    pub row_id_column: String,
    pub label_column: String,
    pub rows: u64,
    pub matched: u64,
    pub unknown: u64,
    pub duplicate: u64,
    pub judged: bool,
    /// The performance report as canonical JSON, and its `sha256:` digest.
    pub report_json: String,
    pub report_digest: String,
    pub breaches: Vec<StoredBreach>,
}

/// Outcomes on record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomesRecord {
    pub id: i64,
    pub model: String,
    pub version: i64,
    pub digest: String,
    pub row_id_column: String,
    pub label_column: String,
    pub rows: u64,
    pub matched: u64,
    pub unknown: u64,
    pub duplicate: u64,
    pub judged: bool,
    pub report_json: String,
    pub report_digest: String,
    pub breaches: Vec<StoredBreach>,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// A KPI observation to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewKpi {
    pub model: ModelName,
    pub version: Option<VersionNumber>,
    pub name: String,
    pub value: f64,
    pub observed_at: Timestamp,
    pub breaches: Vec<StoredBreach>,
}

/// A KPI observation on record.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiRecord {
    pub id: i64,
    pub model: String,
    pub version: Option<i64>,
    pub name: String,
    pub value: f64,
    pub observed_at: Timestamp,
    pub breaches: Vec<StoredBreach>,
    pub recorded_at: Timestamp,
    pub recorded_by: String,
}

const BATCH_COLUMNS: &str = "id, model_name, version_number, digest, reference, reference_digest, row_count, label_column, row_id_column, score_column, judged, report_json, report_digest, breaches_json, created_at, created_by";
const OUTCOME_COLUMNS: &str = "id, model_name, version_number, digest, row_id_column, label_column, row_count, matched, unknown, duplicate, judged, report_json, report_digest, breaches_json, created_at, created_by";
const KPI_COLUMNS: &str = "id, model_name, version_number, name, value, observed_at, breaches_json, recorded_at, recorded_by";

fn breaches_json(breaches: &[StoredBreach]) -> String {
    serde_json::Value::Array(
        breaches
            .iter()
            .map(|breach| json!({ "kind": breach.kind, "action": breach.action, "reason": breach.reason }))
            .collect(),
    )
    .to_string()
}

fn breaches_from(row: &AnyRow) -> Result<Vec<StoredBreach>, StoreError> {
    let text: String = rows::get(row, "breaches_json")?;
    let corrupt = || StoreError::Corrupt(format!("breaches_json does not parse: {text}"));
    let parsed: serde_json::Value = serde_json::from_str(&text).map_err(|_| corrupt())?;
    let field = |breach: &serde_json::Value, name: &str| -> Result<String, StoreError> {
        breach[name].as_str().map(str::to_owned).ok_or_else(corrupt)
    };
    parsed
        .as_array()
        .ok_or_else(corrupt)?
        .iter()
        .map(|breach| {
            Ok(StoredBreach {
                kind: field(breach, "kind")?,
                action: field(breach, "action")?,
                reason: field(breach, "reason")?,
            })
        })
        .collect()
}

fn batch_from_row(row: &AnyRow) -> Result<BatchRecord, StoreError> {
    let rows_count: i64 = rows::get(row, "row_count")?;
    let judged: i64 = rows::get(row, "judged")?;
    Ok(BatchRecord {
        id: rows::get(row, "id")?,
        model: rows::get(row, "model_name")?,
        version: rows::get(row, "version_number")?,
        digest: rows::get(row, "digest")?,
        reference: rows::get(row, "reference")?,
        reference_digest: rows::get(row, "reference_digest")?,
        rows: u64::try_from(rows_count).unwrap_or(0),
        label_column: rows::get(row, "label_column")?,
        row_id_column: rows::get(row, "row_id_column")?,
        score_column: rows::get(row, "score_column")?,
        judged: judged != 0,
        report_json: rows::get(row, "report_json")?,
        report_digest: rows::get(row, "report_digest")?,
        breaches: breaches_from(row)?,
        created_at: rows::timestamp(row, "created_at")?,
        created_by: rows::get(row, "created_by")?,
    })
}

fn outcomes_from_row(row: &AnyRow) -> Result<OutcomesRecord, StoreError> {
    let count = |name: &str| -> Result<u64, StoreError> {
        let value: i64 = rows::get(row, name)?;
        Ok(u64::try_from(value).unwrap_or(0))
    };
    let judged: i64 = rows::get(row, "judged")?;
    Ok(OutcomesRecord {
        id: rows::get(row, "id")?,
        model: rows::get(row, "model_name")?,
        version: rows::get(row, "version_number")?,
        digest: rows::get(row, "digest")?,
        row_id_column: rows::get(row, "row_id_column")?,
        label_column: rows::get(row, "label_column")?,
        rows: count("row_count")?,
        matched: count("matched")?,
        unknown: count("unknown")?,
        duplicate: count("duplicate")?,
        judged: judged != 0,
        report_json: rows::get(row, "report_json")?,
        report_digest: rows::get(row, "report_digest")?,
        breaches: breaches_from(row)?,
        created_at: rows::timestamp(row, "created_at")?,
        created_by: rows::get(row, "created_by")?,
    })
}

fn kpi_from_row(row: &AnyRow) -> Result<KpiRecord, StoreError> {
    Ok(KpiRecord {
        id: rows::get(row, "id")?,
        model: rows::get(row, "model_name")?,
        version: rows::get(row, "version_number")?,
        name: rows::get(row, "name")?,
        value: rows::get(row, "value")?,
        observed_at: rows::timestamp(row, "observed_at")?,
        breaches: breaches_from(row)?,
        recorded_at: rows::timestamp(row, "recorded_at")?,
        recorded_by: rows::get(row, "recorded_by")?,
    })
}

impl Store {
    /// Records a batch and what its breaches do, audited as `monitoring.batch` and one
    /// `monitoring.breach` per breach (plus `version.suspend` / `version.review_due` for the effect).
    pub async fn record_monitoring_batch(
        &self,
        attribution: &Attribution,
        batch: &NewBatch,
        effect: &BreachEffect,
    ) -> Result<BatchRecord, StoreError> {
        let version = self.get_version(&batch.model, batch.version).await?;
        let mut transaction = self.begin_write().await?;
        let id: i64 = rows::get(
            &sqlx::query(
                "INSERT INTO monitoring_batches (model_name, version_number, digest, reference, reference_digest, row_count,
                     label_column, row_id_column, score_column, judged, report_json, report_digest, breaches_json, created_at, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
            )
            .bind(batch.model.as_str())
            .bind(i64::from(batch.version.get()))
            .bind(batch.digest.to_string())
            .bind(&batch.reference)
            .bind(batch.reference_digest.to_string())
            .bind(i64::try_from(batch.rows).unwrap_or(i64::MAX))
            .bind(batch.label_column.as_deref())
            .bind(batch.row_id_column.as_deref())
            .bind(batch.score_column.as_deref())
            .bind(i64::from(batch.judged))
            .bind(&batch.report_json)
            .bind(&batch.report_digest)
            .bind(breaches_json(&batch.breaches))
            .bind(attribution.at.unix_millis())
            .bind(attribution.actor.display_name().to_owned())
            .fetch_one(&mut *transaction)
            .await?,
            "id",
        )?;
        let target = super::versions::version_target(&batch.model, batch.version);
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "monitoring.batch",
                target: target.clone(),
                before: None,
                after: Some(json!({
                    "batch": id, "digest": batch.digest.to_string(), "rows": batch.rows,
                    "reference": batch.reference, "reference_digest": batch.reference_digest.to_string(),
                    "judged": batch.judged, "report_digest": batch.report_digest,
                    "breaches": batch.breaches.len(),
                })),
            },
        )
        .await?;
        self.apply_breaches(
            &mut transaction,
            attribution,
            version.id,
            &target,
            &batch.breaches,
            json!({ "batch": id }),
            &effect.naming(&format!("batch {id}")),
        )
        .await?;
        self.commit(transaction).await?;
        self.get_monitoring_batch(id).await
    }

    /// Records outcomes joined onto a version's batches and what their breaches do, audited as
    /// `monitoring.outcomes` and one `monitoring.breach` per breach (plus the effect's event).
    pub async fn record_monitoring_outcomes(
        &self,
        attribution: &Attribution,
        outcomes: &NewOutcomes,
        effect: &BreachEffect,
    ) -> Result<OutcomesRecord, StoreError> {
        let version = self.get_version(&outcomes.model, outcomes.version).await?;
        let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let mut transaction = self.begin_write().await?;
        let id: i64 = rows::get(
            &sqlx::query(
                "INSERT INTO monitoring_outcomes (model_name, version_number, digest, row_id_column, label_column, row_count,
                     matched, unknown, duplicate, judged, report_json, report_digest, breaches_json, created_at, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
            )
            .bind(outcomes.model.as_str())
            .bind(i64::from(outcomes.version.get()))
            .bind(outcomes.digest.to_string())
            .bind(&outcomes.row_id_column)
            .bind(&outcomes.label_column)
            .bind(count(outcomes.rows))
            .bind(count(outcomes.matched))
            .bind(count(outcomes.unknown))
            .bind(count(outcomes.duplicate))
            .bind(i64::from(outcomes.judged))
            .bind(&outcomes.report_json)
            .bind(&outcomes.report_digest)
            .bind(breaches_json(&outcomes.breaches))
            .bind(attribution.at.unix_millis())
            .bind(attribution.actor.display_name().to_owned())
            .fetch_one(&mut *transaction)
            .await?,
            "id",
        )?;
        let target = super::versions::version_target(&outcomes.model, outcomes.version);
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "monitoring.outcomes",
                target: target.clone(),
                before: None,
                after: Some(json!({
                    "outcomes": id, "digest": outcomes.digest.to_string(), "rows": outcomes.rows,
                    "matched": outcomes.matched, "unknown": outcomes.unknown,
                    "duplicate": outcomes.duplicate, "judged": outcomes.judged,
                    "report_digest": outcomes.report_digest, "breaches": outcomes.breaches.len(),
                })),
            },
        )
        .await?;
        self.apply_breaches(
            &mut transaction,
            attribution,
            version.id,
            &target,
            &outcomes.breaches,
            json!({ "outcomes": id }),
            &effect.naming(&format!("outcomes {id}")),
        )
        .await?;
        self.commit(transaction).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTCOME_COLUMNS} FROM monitoring_outcomes WHERE id = $1"
        )))
        .bind(id)
        .fetch_one(&self.reader)
        .await?;
        outcomes_from_row(&row)
    }

    /// A model's outcome files (of one version when given), newest first.
    pub async fn list_monitoring_outcomes(
        &self,
        model: &ModelName,
        version: Option<VersionNumber>,
        limit: u32,
    ) -> Result<Vec<OutcomesRecord>, StoreError> {
        self.newest_of(
            "monitoring_outcomes",
            OUTCOME_COLUMNS,
            model,
            version,
            limit,
            outcomes_from_row,
        )
        .await
    }

    /// A model's newest rows of a monitoring table (of one version when given), newest first.
    async fn newest_of<T>(
        &self,
        table: &str,
        columns: &str,
        model: &ModelName,
        version: Option<VersionNumber>,
        limit: u32,
        from_row: fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM {table}
             WHERE model_name = $1 AND ($2 < 0 OR version_number = $2) ORDER BY id DESC LIMIT $3"
        )))
        .bind(model.as_str())
        .bind(version.map_or(-1, |number| i64::from(number.get())))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(from_row)
        .collect()
    }

    /// The version's newest batches that carry row ids (what outcomes can join onto), newest first.
    pub async fn batches_with_row_ids(
        &self,
        model: &ModelName,
        version: VersionNumber,
        limit: u32,
    ) -> Result<Vec<BatchRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BATCH_COLUMNS} FROM monitoring_batches
             WHERE model_name = $1 AND version_number = $2 AND row_id_column IS NOT NULL
             ORDER BY id DESC LIMIT $3"
        )))
        .bind(model.as_str())
        .bind(i64::from(version.get()))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(batch_from_row)
        .collect()
    }

    /// Records a KPI observation and what its breaches do (audited as `kpi.record`, `monitoring.breach`).
    /// The effect applies to `effect_version` (the observation's version, or the one in production).
    pub async fn record_kpi(
        &self,
        attribution: &Attribution,
        kpi: &NewKpi,
        effect_version: Option<VersionNumber>,
        effect: &BreachEffect,
    ) -> Result<KpiRecord, StoreError> {
        let affected = match effect_version {
            Some(number) => Some(self.get_version(&kpi.model, number).await?),
            None => None,
        };
        let mut transaction = self.begin_write().await?;
        let id: i64 = rows::get(
            &sqlx::query(
                "INSERT INTO kpi_observations (model_name, version_number, name, value, observed_at, breaches_json, recorded_at, recorded_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(kpi.model.as_str())
            .bind(kpi.version.map(|number| i64::from(number.get())))
            .bind(&kpi.name)
            .bind(kpi.value)
            .bind(kpi.observed_at.unix_millis())
            .bind(breaches_json(&kpi.breaches))
            .bind(attribution.at.unix_millis())
            .bind(attribution.actor.display_name().to_owned())
            .fetch_one(&mut *transaction)
            .await?,
            "id",
        )?;
        let target = match kpi.version {
            Some(number) => super::versions::version_target(&kpi.model, number),
            None => super::models::model_target(&kpi.model),
        };
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "kpi.record",
                target: target.clone(),
                before: None,
                after: Some(json!({
                    "kpi": id, "name": kpi.name, "value": kpi.value,
                    "observed_at": kpi.observed_at.unix_millis(), "breaches": kpi.breaches.len(),
                })),
            },
        )
        .await?;
        match &affected {
            Some(version) => {
                let version_target = super::versions::version_target(&kpi.model, version.number);
                self.apply_breaches(
                    &mut transaction,
                    attribution,
                    version.id,
                    &version_target,
                    &kpi.breaches,
                    json!({ "kpi": id }),
                    &effect.naming(&format!("KPI observation {id}")),
                )
                .await?;
            }
            None => {
                for breach in &kpi.breaches {
                    audit::append(
                        &mut transaction,
                        self.backend,
                        attribution,
                        AuditRecord {
                            action: "monitoring.breach",
                            target: target.clone(),
                            before: None,
                            after: Some(json!({ "kpi": id, "kind": breach.kind, "action": breach.action, "reason": breach.reason, "applied": false })),
                        },
                    )
                    .await?;
                }
            }
        }
        self.commit(transaction).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KPI_COLUMNS} FROM kpi_observations WHERE id = $1"
        )))
        .bind(id)
        .fetch_one(&self.reader)
        .await?;
        kpi_from_row(&row)
    }

    /// One `monitoring.breach` event per breach, then the effect on the version.
    #[allow(clippy::too_many_arguments)]
    async fn apply_breaches(
        &self,
        transaction: &mut Transaction<'static, Any>,
        attribution: &Attribution,
        version_id: i64,
        target: &str,
        breaches: &[StoredBreach],
        source: serde_json::Value,
        effect: &BreachEffect,
    ) -> Result<(), StoreError> {
        for breach in breaches {
            let mut after =
                json!({ "kind": breach.kind, "action": breach.action, "reason": breach.reason });
            if let (Some(after), Some(source)) = (after.as_object_mut(), source.as_object()) {
                after.extend(source.clone());
            }
            audit::append(
                transaction,
                self.backend,
                attribution,
                AuditRecord {
                    action: "monitoring.breach",
                    target: target.to_owned(),
                    before: None,
                    after: Some(after),
                },
            )
            .await?;
        }
        if let Some(reason) = &effect.suspend {
            let changed = sqlx::query(
                "UPDATE versions SET suspended_at = $1, suspension_reason = $2, suspension_source = 'monitoring'
                 WHERE id = $3 AND suspension_reason IS NULL",
            )
            .bind(attribution.at.unix_millis())
            .bind(reason)
            .bind(version_id)
            .execute(&mut **transaction)
            .await?
            .rows_affected();
            if changed == 1 {
                audit::append(
                    transaction,
                    self.backend,
                    attribution,
                    AuditRecord {
                        action: "version.suspend",
                        target: target.to_owned(),
                        before: None,
                        after: Some(json!({ "reason": reason, "source": "monitoring" })),
                    },
                )
                .await?;
                // Sign-offs given before the breach must not lift the suspension it caused: open
                // re-validations are withdrawn, and the server opens a fresh one.
                let open: Vec<i64> = sqlx::query(
                    "SELECT id FROM promotion_requests
                     WHERE version_id = $1 AND state = 'open' AND kind = 'revalidation' ORDER BY id",
                )
                .bind(version_id)
                .fetch_all(&mut **transaction)
                .await?
                .iter()
                .map(|row| rows::get(row, "id"))
                .collect::<Result<_, _>>()?;
                for id in open {
                    let why = "withdrawn: monitoring suspended the version after this re-validation opened; a new one opens";
                    sqlx::query(
                        "UPDATE promotion_requests SET state = 'withdrawn', decided_at = $1, decision_reason = $2
                         WHERE id = $3 AND state = 'open'",
                    )
                    .bind(attribution.at.unix_millis())
                    .bind(why)
                    .bind(id)
                    .execute(&mut **transaction)
                    .await?;
                    audit::append(
                        transaction,
                        self.backend,
                        attribution,
                        AuditRecord {
                            action: "request.withdraw",
                            target: format!("request/{id}"),
                            before: Some(json!({ "state": "open" })),
                            after: Some(json!({ "state": "withdrawn", "decision_reason": why })),
                        },
                    )
                    .await?;
                }
            }
        }
        if let Some(reason) = &effect.review {
            let changed = sqlx::query(
                "UPDATE versions SET approval_review_reason = $1
                 WHERE id = $2 AND approved_stage IS NOT NULL AND approval_review_reason IS NULL",
            )
            .bind(reason)
            .bind(version_id)
            .execute(&mut **transaction)
            .await?
            .rows_affected();
            if changed == 1 {
                audit::append(
                    transaction,
                    self.backend,
                    attribution,
                    AuditRecord {
                        action: "version.review_due",
                        target: target.to_owned(),
                        before: None,
                        after: Some(json!({ "reason": reason })),
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    pub async fn get_monitoring_batch(&self, id: i64) -> Result<BatchRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BATCH_COLUMNS} FROM monitoring_batches WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("monitoring batch", id))?;
        batch_from_row(&row)
    }

    /// A model's batches (of one version when given), newest first.
    pub async fn list_monitoring_batches(
        &self,
        model: &ModelName,
        version: Option<VersionNumber>,
        limit: u32,
    ) -> Result<Vec<BatchRecord>, StoreError> {
        self.newest_of(
            "monitoring_batches",
            BATCH_COLUMNS,
            model,
            version,
            limit,
            batch_from_row,
        )
        .await
    }

    /// The latest observation of each of a model's KPIs, by name.
    pub async fn latest_kpis(&self, model: &ModelName) -> Result<Vec<KpiRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KPI_COLUMNS} FROM kpi_observations k
             WHERE model_name = $1 AND id = (SELECT MAX(id) FROM kpi_observations l
                 WHERE l.model_name = k.model_name AND l.name = k.name)
             ORDER BY name"
        )))
        .bind(model.as_str())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(kpi_from_row)
        .collect()
    }
}
