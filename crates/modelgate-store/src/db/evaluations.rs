//! Registered datasets and the evaluations computed on them.

use super::audit::{self, AuditRecord};
use super::rows;
use super::versions::version_target;
use super::{Attribution, Store};
use crate::StoreError;
use modelgate_core::{Digest, ModelName, Stage, Timestamp, VersionNumber};
use serde_json::json;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRecord {
    pub name: String,
    pub digest: String,
    pub format: String,
    pub schema_json: String,
    /// `None` in listings, which leave the profile out.
    pub profile_json: Option<String>,
    pub row_count: i64,
    pub created_by: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationRecord {
    pub id: i64,
    pub model_name: String,
    pub version: i64,
    pub dataset: String,
    pub mode: String,
    pub inputs_json: String,
    pub settings_json: String,
    pub engine: String,
    pub results_json: String,
    pub digest: String,
    pub created_by: String,
    pub created_at: Timestamp,
    /// `counted` (the policy reads it), `exploratory` or `superseded` (set aside, with the reason).
    pub status: String,
    pub status_reason: Option<String>,
}

/// An evaluation to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvaluation {
    pub dataset: String,
    pub mode: String,
    pub inputs_json: String,
    pub settings_json: String,
    pub engine: String,
    pub results_json: String,
    pub digest: String,
}

/// Where an evaluation job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// The state named `text`, if it is one.
    pub fn named(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    fn parse(text: &str) -> Result<Self, String> {
        Self::named(text).ok_or_else(|| "not a job state".to_owned())
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: i64,
    pub model_name: String,
    pub version: i64,
    pub dataset: String,
    pub request_json: String,
    pub state: JobState,
    /// Share done, 0 to 1.
    pub progress: f64,
    pub phase: String,
    pub message: Option<String>,
    /// The error as the API would have answered it (code, message, details), when the job failed.
    pub error_json: Option<String>,
    pub cancel_requested: bool,
    pub evaluation_id: Option<i64>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A job to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub model_name: String,
    pub version: i64,
    pub dataset: String,
    pub request_json: String,
}

fn job_from_row(row: &AnyRow) -> Result<JobRecord, StoreError> {
    Ok(JobRecord {
        id: rows::get(row, "id")?,
        model_name: rows::get(row, "model_name")?,
        version: rows::get(row, "version_number")?,
        dataset: rows::get(row, "dataset")?,
        request_json: rows::get(row, "request_json")?,
        state: rows::parsed_column(row, "state", JobState::parse)?,
        progress: rows::get(row, "progress")?,
        phase: rows::get(row, "phase")?,
        message: rows::get(row, "message")?,
        error_json: rows::get(row, "error_json")?,
        cancel_requested: rows::get::<i64>(row, "cancel_requested")? != 0,
        evaluation_id: rows::get(row, "evaluation_id")?,
        created_by: rows::get(row, "created_by")?,
        created_at: rows::timestamp(row, "created_at")?,
        updated_at: rows::timestamp(row, "updated_at")?,
    })
}

const JOB_COLUMNS: &str = "id, model_name, version_number, dataset, request_json, state, progress, phase, message, \
     error_json, cancel_requested, evaluation_id, created_by, created_at, updated_at";

/// A dataset row; its profile when `with_profile` (the row was selected with [`DATASET_COLUMNS`]).
fn dataset_from_row(row: &AnyRow, with_profile: bool) -> Result<DatasetRecord, StoreError> {
    Ok(DatasetRecord {
        name: rows::get(row, "name")?,
        digest: rows::get(row, "digest")?,
        format: rows::get(row, "format")?,
        schema_json: rows::get(row, "schema_json")?,
        profile_json: if with_profile {
            Some(rows::get(row, "profile_json")?)
        } else {
            None
        },
        row_count: rows::get(row, "row_count")?,
        created_by: rows::get(row, "created_by")?,
        created_at: rows::timestamp(row, "created_at")?,
    })
}

fn evaluation_from_row(row: &AnyRow) -> Result<EvaluationRecord, StoreError> {
    Ok(EvaluationRecord {
        id: rows::get(row, "id")?,
        model_name: rows::get(row, "model_name")?,
        version: rows::get(row, "version_number")?,
        dataset: rows::get(row, "dataset_name")?,
        mode: rows::get(row, "mode")?,
        inputs_json: rows::get(row, "inputs_json")?,
        settings_json: rows::get(row, "settings_json")?,
        engine: rows::get(row, "engine")?,
        results_json: rows::get(row, "results_json")?,
        digest: rows::get(row, "digest")?,
        created_by: rows::get(row, "created_by")?,
        created_at: rows::timestamp(row, "created_at")?,
        status: rows::get(row, "status")?,
        status_reason: rows::get(row, "status_reason")?,
    })
}

const DATASET_COLUMNS: &str =
    "name, digest, format, schema_json, profile_json, row_count, created_by, created_at";
const DATASET_SUMMARY_COLUMNS: &str =
    "name, digest, format, schema_json, row_count, created_by, created_at";
const EVALUATION_QUERY: &str = "SELECT e.id, m.name AS model_name, v.number AS version_number, d.name AS dataset_name, \
     e.mode, e.inputs_json, e.settings_json, e.engine, e.results_json, e.digest, e.created_by, e.created_at, e.status, e.status_reason \
     FROM evaluations e JOIN versions v ON v.id = e.version_id JOIN models m ON m.id = v.model_id \
     JOIN datasets d ON d.id = e.dataset_id";

impl Store {
    /// Registers a dataset (already validated and profiled) stored as the artifact `digest`.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_dataset(
        &self,
        attribution: &Attribution,
        name: &str,
        digest: &Digest,
        format: &str,
        schema_json: &str,
        profile_json: &str,
        row_count: i64,
    ) -> Result<DatasetRecord, StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO datasets (name, digest, format, schema_json, profile_json, row_count, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(name)
        .bind(digest.to_string())
        .bind(format)
        .bind(schema_json)
        .bind(profile_json)
        .bind(row_count)
        .bind(attribution.actor.display_name().to_owned())
        .bind(attribution.at.unix_millis())
        .execute(&mut *transaction)
        .await
        .map_err(StoreError::on_unique_violation("dataset", name))?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "dataset.register",
                target: format!("dataset/{name}"),
                before: None,
                after: Some(json!({ "digest": digest.to_string(), "format": format, "rows": row_count, "schema": schema_json })),
            },
        )
        .await?;
        self.commit(transaction).await?;
        self.get_dataset(name).await
    }

    pub async fn get_dataset(&self, name: &str) -> Result<DatasetRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DATASET_COLUMNS} FROM datasets WHERE name = $1"
        )))
        .bind(name)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("dataset", name))?;
        dataset_from_row(&row, true)
    }

    /// Every dataset, without its profile (a listing must stay small however wide the datasets are).
    pub async fn list_datasets(&self) -> Result<Vec<DatasetRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DATASET_SUMMARY_COLUMNS} FROM datasets ORDER BY name"
        )))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| dataset_from_row(row, false))
        .collect()
    }

    /// Records an evaluation of a version (computed by the server).
    /// When `job` is given, the job is marked succeeded in the same transaction, so an evaluation and its
    /// job's outcome are written together or not at all.
    pub async fn create_evaluation(
        &self,
        attribution: &Attribution,
        model_name: &ModelName,
        number: VersionNumber,
        evaluation: &NewEvaluation,
        job: Option<i64>,
        frozen_stages: &[Stage],
    ) -> Result<EvaluationRecord, StoreError> {
        let (mut transaction, version) = self.begin_version_change(model_name, number).await?;
        let dataset_row = sqlx::query("SELECT id FROM datasets WHERE name = $1")
            .bind(evaluation.dataset.as_str())
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or_else(|| StoreError::not_found("dataset", &evaluation.dataset))?;
        let dataset_id: i64 = rows::get(&dataset_row, "id")?;
        let id: i64 = rows::get(
            &sqlx::query(
                "INSERT INTO evaluations (version_id, dataset_id, mode, inputs_json, settings_json, engine, results_json, digest, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(version.id)
            .bind(dataset_id)
            .bind(evaluation.mode.as_str())
            .bind(evaluation.inputs_json.as_str())
            .bind(evaluation.settings_json.as_str())
            .bind(evaluation.engine.as_str())
            .bind(evaluation.results_json.as_str())
            .bind(evaluation.digest.as_str())
            .bind(attribution.actor.display_name().to_owned())
            .bind(attribution.at.unix_millis())
            .fetch_one(&mut *transaction)
            .await?,
            "id",
        )?;
        let after_approval = self
            .record_evidence_change(
                &mut transaction,
                version.id,
                &format!("evaluation {id} on {}", evaluation.dataset),
                frozen_stages,
            )
            .await?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "evaluation.record",
                target: version_target(model_name, number),
                before: None,
                after: Some(json!({
                    "evaluation": id, "dataset": evaluation.dataset, "mode": evaluation.mode,
                    "digest": evaluation.digest, "after_approval": after_approval,
                })),
            },
        )
        .await?;
        if let Some(job) = job {
            // Only a job still running, and not asked to stop, succeeds; otherwise nothing is saved.
            let done = sqlx::query(
                "UPDATE evaluation_jobs SET state = 'succeeded', progress = 1.0, phase = 'done', evaluation_id = $1, updated_at = $2
                 WHERE id = $3 AND state IN ('queued', 'running') AND cancel_requested = 0",
            )
            .bind(id)
            .bind(attribution.at.unix_millis())
            .bind(job)
            .execute(&mut *transaction)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::FailedPrecondition(format!(
                    "evaluation job {job} was cancelled or has ended meanwhile; its evaluation was not saved"
                )));
            }
        }
        self.commit(transaction).await?;
        self.get_evaluation(id).await
    }

    /// Sets whether the policy reads an evaluation (`counted`) or it is set aside (`exploratory`,
    /// `superseded`). A change to the version's evidence like any other: it bumps the evidence revision
    /// and is refused when the version's approval freezes its evidence.
    pub async fn mark_evaluation(
        &self,
        attribution: &Attribution,
        id: i64,
        status: &str,
        reason: Option<&str>,
        frozen_stages: &[Stage],
    ) -> Result<EvaluationRecord, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query("SELECT version_id, status FROM evaluations WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or_else(|| StoreError::not_found("evaluation", id))?;
        let version_id: i64 = rows::get(&row, "version_id")?;
        let before: String = rows::get(&row, "status")?;
        if before == status {
            return Err(StoreError::FailedPrecondition(format!(
                "evaluation {id} is already {status}"
            )));
        }
        let after_approval = self
            .record_evidence_change(
                &mut transaction,
                version_id,
                &format!("evaluation {id} marked {status}"),
                frozen_stages,
            )
            .await?;
        sqlx::query("UPDATE evaluations SET status = $1, status_reason = $2 WHERE id = $3")
            .bind(status)
            .bind(reason.map(str::to_owned))
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        let record = evaluation_from_row(
            &sqlx::query(sqlx::AssertSqlSafe(format!(
                "{EVALUATION_QUERY} WHERE e.id = $1"
            )))
            .bind(id)
            .fetch_one(&mut *transaction)
            .await?,
        )?;
        let number = VersionNumber::new(record.version)?;
        let model = ModelName::parse(&record.model_name)?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "evaluation.mark",
                target: version_target(&model, number),
                before: Some(json!({ "evaluation": id, "status": before })),
                after: Some(json!({
                    "evaluation": id, "status": status, "reason": reason,
                    "after_approval": after_approval,
                })),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(record)
    }

    pub async fn get_evaluation(&self, id: i64) -> Result<EvaluationRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{EVALUATION_QUERY} WHERE e.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("evaluation", id))?;
        evaluation_from_row(&row)
    }

    /// A version's evaluations, oldest first.
    pub async fn evaluations_for_version(
        &self,
        model_name: &ModelName,
        number: VersionNumber,
    ) -> Result<Vec<EvaluationRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{EVALUATION_QUERY} WHERE m.name = $1 AND v.number = $2 ORDER BY e.id"
        )))
        .bind(model_name.as_str())
        .bind(i64::from(number.get()))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(evaluation_from_row)
        .collect()
    }

    /// Queues an evaluation job.
    pub async fn create_job(
        &self,
        attribution: &Attribution,
        job: &NewJob,
    ) -> Result<JobRecord, StoreError> {
        let mut created = self
            .create_jobs(attribution, std::slice::from_ref(job))
            .await?;
        created
            .pop()
            .ok_or_else(|| StoreError::corrupt("a created job vanished"))
    }

    /// Queues several jobs in one transaction (a gate's evaluations when its request opens), in order.
    pub async fn create_jobs(
        &self,
        attribution: &Attribution,
        jobs: &[NewJob],
    ) -> Result<Vec<JobRecord>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut transaction = self.begin_write().await?;
        let at = attribution.at.unix_millis();
        let mut ids = Vec::with_capacity(jobs.len());
        for job in jobs {
            ids.push(rows::get::<i64>(
                &sqlx::query(
                    "INSERT INTO evaluation_jobs (model_name, version_number, dataset, request_json, state, progress, phase, cancel_requested, created_by, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, 'queued', 0.0, 'queued', 0, $5, $6, $7) RETURNING id",
                )
                .bind(job.model_name.as_str())
                .bind(job.version)
                .bind(job.dataset.as_str())
                .bind(job.request_json.as_str())
                .bind(attribution.actor.display_name().to_owned())
                .bind(at)
                .bind(at)
                .fetch_one(&mut *transaction)
                .await?,
                "id",
            )?);
        }
        self.commit(transaction).await?;
        // Read back in one query (ids are integers the database chose, so the list is safe to inline).
        let listed = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM evaluation_jobs WHERE id IN ({listed})"
        )))
        .fetch_all(&self.reader)
        .await?;
        let mut by_id = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let job = job_from_row(row)?;
            by_id.insert(job.id, job);
        }
        ids.iter()
            .map(|id| {
                by_id
                    .remove(id)
                    .ok_or_else(|| StoreError::not_found("evaluation job", *id))
            })
            .collect()
    }

    pub async fn get_job(&self, id: i64) -> Result<JobRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM evaluation_jobs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("evaluation job", id))?;
        job_from_row(&row)
    }

    /// Jobs newest first, optionally only in one state and of one model.
    pub async fn list_jobs(
        &self,
        state: Option<JobState>,
        model_name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM evaluation_jobs
             WHERE ($1 = '' OR state = $1) AND ($2 = '' OR model_name = $2)
             ORDER BY id DESC LIMIT $3"
        )))
        .bind(state.map_or("", JobState::as_str))
        .bind(model_name.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(job_from_row)
        .collect()
    }

    /// Records a running job's progress (its heartbeat) and answers whether someone asked it to stop.
    /// A finished job is left as it is.
    pub async fn job_heartbeat(
        &self,
        id: i64,
        running: bool,
        progress: f64,
        phase: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE evaluation_jobs SET state = $1, progress = $2, phase = $3, updated_at = $4
             WHERE id = $5 AND state IN ('queued', 'running') RETURNING cancel_requested",
        )
        .bind(if running { "running" } else { "queued" })
        .bind(progress)
        .bind(phase)
        .bind(at.unix_millis())
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(match row {
            Some(row) => rows::get::<i64>(&row, "cancel_requested")? != 0,
            None => true,
        })
    }

    /// Asks a queued or running job to stop; the runner notices at its next heartbeat.
    pub async fn request_job_cancel(
        &self,
        id: i64,
        at: Timestamp,
    ) -> Result<JobRecord, StoreError> {
        let job = self.get_job(id).await?;
        if job.state.is_finished() {
            return Err(StoreError::FailedPrecondition(format!(
                "evaluation job {id} has already {}; there is nothing to cancel",
                job.state.as_str()
            )));
        }
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "UPDATE evaluation_jobs SET cancel_requested = 1, updated_at = $1 WHERE id = $2 AND state IN ('queued', 'running')",
        )
        .bind(at.unix_millis())
        .bind(id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        self.get_job(id).await
    }

    /// Ends a job without an evaluation: failed (with the reason and the API error) or cancelled.
    pub async fn finish_job(
        &self,
        id: i64,
        state: JobState,
        message: &str,
        error_json: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "UPDATE evaluation_jobs SET state = $1, message = $2, error_json = $3, updated_at = $4
             WHERE id = $5 AND state IN ('queued', 'running')",
        )
        .bind(state.as_str())
        .bind(message)
        .bind(error_json)
        .bind(at.unix_millis())
        .bind(id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Marks failed every queued or running job whose heartbeat stopped before `stale_before`: its
    /// server stopped while it ran (nothing of it was saved). Returns how many.
    pub async fn fail_abandoned_jobs(
        &self,
        stale_before: Timestamp,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE evaluation_jobs SET state = 'failed', message = 'the server stopped while the evaluation ran; nothing of it was saved: run it again', updated_at = $1
             WHERE state IN ('queued', 'running') AND updated_at < $2",
        )
        .bind(at.unix_millis())
        .bind(stale_before.unix_millis())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(done.rows_affected())
    }
}
