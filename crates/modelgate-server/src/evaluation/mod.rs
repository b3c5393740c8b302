//! Evaluations as background jobs: the request checked before its job is queued, the runner (one
//! evaluation at a time per process, a heartbeat with the progress, exactly one outcome), the evaluation
//! itself (read the dataset and the predictions, or run the model; compute; record the digests of every
//! input), and failing the jobs whose server stopped.

pub(crate) mod model_mode;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::routes::datasets::{dataset_error, load_table};
use crate::routes::models::maintained_model;
use crate::state::AppState;
use model_mode::{
    MODEL_PREDICTION_COLUMN, MODEL_PROBABILITY_PREFIX, MODEL_SCORE_COLUMN, run_model,
    run_other_model,
};
use modelgate_api as api;
use modelgate_core::{Digest, ModelName, Timestamp, VersionNumber};
use modelgate_eval::dataset::{DatasetSchema, Task};
use modelgate_eval::evaluate::{ENGINE_VERSION, Settings, evaluate};
use modelgate_store::{DatasetRecord, EvaluationRecord, JobRecord, JobState, NewEvaluation};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How long a queued or running job may go without a heartbeat before it counts as abandoned (its server
/// stopped). Heartbeats come every [`HEARTBEAT`].
const ABANDONED_AFTER_MILLIS: i64 = 30_000;
const HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(500);

/// A running job's progress, shared between the work (which sets it) and the heartbeat (which stores it
/// and brings back a stop request made through any replica).
pub(crate) struct JobProgress {
    share_bits: AtomicU64,
    phase: Mutex<&'static str>,
    running: AtomicBool,
    cancelled: AtomicBool,
}

impl JobProgress {
    pub(crate) fn new() -> Self {
        Self {
            share_bits: AtomicU64::new(0f64.to_bits()),
            phase: Mutex::new("queued"),
            running: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
        }
    }

    /// Moves the share done forward (never back: bootstrap workers report out of order) and names the phase.
    pub(crate) fn set(&self, share: f64, phase: &'static str) {
        // Non-negative floats order as their bits do.
        self.share_bits
            .fetch_max(share.max(0.0).to_bits(), Ordering::Relaxed);
        if let Ok(mut current) = self.phase.lock() {
            *current = phase;
        }
    }

    /// The share done and the phase, as last set.
    pub(crate) fn snapshot(&self) -> (f64, &'static str) {
        let share = f64::from_bits(self.share_bits.load(Ordering::Relaxed));
        let phase = self.phase.lock().map(|phase| *phase).unwrap_or("running");
        (share, phase)
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Stops the work between steps when someone asked it to.
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        if self.is_cancelled() {
            Err(cancelled_error())
        } else {
            Ok(())
        }
    }
}

pub(crate) fn cancelled_error() -> ApiError {
    ApiError::new(
        ErrorCode::FailedPrecondition,
        "the evaluation was cancelled; nothing of it was saved",
    )
}

/// Everything an evaluation needs, checked before its job is queued, so that mistakes in the request are
/// answered at once and only the work itself runs in the background.
pub(crate) struct PreparedEvaluation {
    pub(crate) name: ModelName,
    pub(crate) number: VersionNumber,
    version: modelgate_core::Version,
    pub(crate) dataset: DatasetRecord,
    schema: DatasetSchema,
    settings: Settings,
    predictions: Option<Digest>,
}

pub(crate) async fn prepare_evaluation(
    state: &AppState,
    caller: &Caller,
    request: &api::RunEvaluation,
) -> Result<PreparedEvaluation, ApiError> {
    let target = evaluation_target(state, caller, &request.model, request.version).await?;
    let dataset = state.store().get_dataset(&request.dataset).await?;
    prepare_on(state, target, dataset, request).await
}

/// The version an evaluation is of, once the caller may record evaluations of its model.
#[derive(Clone)]
pub(crate) struct EvaluationTarget {
    name: ModelName,
    number: VersionNumber,
    version: modelgate_core::Version,
}

/// Checks that `caller` may evaluate version `number` of `model`, and reads the version.
pub(crate) async fn evaluation_target(
    state: &AppState,
    caller: &Caller,
    model: &str,
    number: u32,
) -> Result<EvaluationTarget, ApiError> {
    let name = ModelName::parse(model).map_err(|mut invalid| {
        invalid.field = "model";
        invalid
    })?;
    let number = VersionNumber::new(i64::from(number))?;
    maintained_model(state, caller, &name, "evaluation.record").await?;
    let version = state.store().get_version(&name, number).await?;
    Ok(EvaluationTarget {
        name,
        number,
        version,
    })
}

/// Checks `request`'s settings against `dataset` for `target` (already checked by [`evaluation_target`],
/// so that a gate naming many evaluations of one version reads the version once).
pub(crate) async fn prepare_on(
    state: &AppState,
    target: EvaluationTarget,
    dataset: DatasetRecord,
    request: &api::RunEvaluation,
) -> Result<PreparedEvaluation, ApiError> {
    let EvaluationTarget {
        name,
        number,
        version,
    } = target;
    let schema: DatasetSchema =
        serde_json::from_str(&dataset.schema_json).map_err(|error| ApiError::internal(&error))?;
    if request.predictions_digest.is_none() && schema.features.is_empty() {
        return Err(ApiError::invalid(
            "dataset",
            format!(
                "dataset: model mode runs the version on the dataset's feature columns, and {} declares none; register it with --features, or evaluate uploaded predictions (--predictions)",
                dataset.name
            ),
        ));
    }
    let settings = Settings {
        score_column: match &request.predictions_digest {
            Some(_) if schema.task == Task::Multiclass => {
                request.score_column.clone().unwrap_or_default()
            }
            Some(_) => request.score_column.clone().ok_or_else(|| {
                ApiError::invalid(
                    "score_column",
                    "score_column: name the column of the predictions file that holds the score",
                )
            })?,
            None if schema.task == Task::Multiclass => MODEL_PROBABILITY_PREFIX.to_owned(),
            None => MODEL_SCORE_COLUMN.to_owned(),
        },
        threshold: request.threshold.unwrap_or(0.5),
        bins: request.bins.unwrap_or(10),
        minimum_group_size: request.minimum_group_size.unwrap_or(30),
        bootstrap_resamples: request.bootstrap_resamples.unwrap_or(200),
        seed: request.seed.unwrap_or(0),
        prediction_column: match schema.task {
            Task::Multiclass if request.predictions_digest.is_none() => {
                Some(MODEL_PREDICTION_COLUMN.to_owned())
            }
            Task::Multiclass => Some(request.prediction_column.clone().ok_or_else(|| {
                ApiError::invalid(
                    "prediction_column",
                    format!("prediction_column: dataset {} is multiclass; name the predictions file's column of predicted classes (--prediction-column)", dataset.name),
                )
            })?),
            _ => None,
        },
        intersections: request
            .intersections
            .iter()
            .map(|[first, second]| (first.clone(), second.clone()))
            .collect(),
    };
    settings.check(&schema).map_err(|error| {
        ApiError::invalid(error.field, format!("{}: {}", error.field, error.message))
    })?;
    let predictions = match &request.predictions_digest {
        Some(text) => {
            let digest = Digest::parse(text).map_err(|mut invalid| {
                invalid.field = "predictions_digest";
                invalid
            })?;
            state.store().get_artifact_record(&digest).await.map_err(|_| {
                ApiError::invalid("predictions_digest", format!("predictions_digest: {digest} has not been uploaded; upload the file first (POST /api/v1/artifacts)"))
            })?;
            Some(digest)
        }
        None => None,
    };
    Ok(PreparedEvaluation {
        name,
        number,
        version,
        dataset,
        schema,
        settings,
        predictions,
    })
}

/// Runs a queued job to its end: one evaluation at a time per server (the work uses both cores), a
/// heartbeat with the progress every half second, and exactly one outcome — the evaluation and the job's
/// success in one transaction, or the job failed or cancelled with nothing saved.
pub(crate) async fn run_job(
    state: AppState,
    caller: Caller,
    job: i64,
    prepared: PreparedEvaluation,
) -> Result<EvaluationRecord, ApiError> {
    let progress = Arc::new(JobProgress::new());
    let heartbeat = tokio::spawn({
        let state = state.clone();
        let progress = progress.clone();
        async move {
            let mut ticks = tokio::time::interval(HEARTBEAT);
            loop {
                ticks.tick().await;
                let (share, phase) = progress.snapshot();
                let running = progress.running.load(Ordering::Relaxed);
                match state
                    .store()
                    .job_heartbeat(job, running, share, phase, state.now())
                    .await
                {
                    Ok(true) => progress.cancelled.store(true, Ordering::Relaxed),
                    Ok(false) => {}
                    Err(error) => tracing::warn!(job, %error, "could not record a job's progress"),
                }
            }
        }
    });
    let outcome = async {
        // Wait for the slot, but notice a cancel request while queued.
        let _slot = loop {
            progress.check()?;
            if let Ok(slot) =
                tokio::time::timeout(HEARTBEAT, state.evaluation_slots().acquire()).await
            {
                break slot.map_err(|error| ApiError::internal(&error))?;
            }
        };
        progress.check()?;
        progress.running.store(true, Ordering::Relaxed);
        let evaluation = compute_evaluation(&state, &prepared, &progress).await?;
        progress.check()?;
        progress.set(0.99, "saving");
        let frozen = crate::promotion::frozen_evidence_stages(&state).await?;
        let record = state
            .store()
            .create_evaluation(
                &caller.attribution(state.now()),
                &prepared.name,
                prepared.number,
                &evaluation,
                Some(job),
                &frozen,
            )
            .await?;
        crate::promotion::recheck_open_requests(&state, &prepared.name, prepared.number).await;
        Ok::<_, ApiError>(record)
    }
    .await;
    heartbeat.abort();
    state.track_evaluation_job(job, false);
    if let Err(error) = &outcome {
        let cancelled = progress.is_cancelled()
            || state
                .store()
                .get_job(job)
                .await
                .is_ok_and(|record| record.cancel_requested);
        let (wire_code, _) = error.code.describe();
        let error_json =
            json!({ "code": wire_code, "message": error.message, "details": error.details });
        let (job_state, message) = if cancelled {
            (
                JobState::Cancelled,
                "cancelled on request; nothing was saved".to_owned(),
            )
        } else {
            (JobState::Failed, error.message.clone())
        };
        if let Err(store_error) = state
            .store()
            .finish_job(
                job,
                job_state,
                &message,
                (!cancelled).then(|| error_json.to_string()).as_deref(),
                state.now(),
            )
            .await
        {
            tracing::error!(job, error = %store_error, "could not record a job's end");
        }
    }
    outcome
}

/// The evaluation itself: reads the dataset (and the predictions, or runs the model), computes every
/// metric, and assembles the record with the digests of every input.
async fn compute_evaluation(
    state: &AppState,
    prepared: &PreparedEvaluation,
    progress: &Arc<JobProgress>,
) -> Result<NewEvaluation, ApiError> {
    let PreparedEvaluation {
        version,
        dataset,
        schema,
        settings,
        predictions,
        ..
    } = prepared;
    progress.set(0.0, "loading data");
    let dataset_digest =
        Digest::parse(&dataset.digest).map_err(|error| ApiError::internal(&error))?;
    let dataset_columns: Vec<&str> = std::iter::once(schema.label.as_str())
        .chain(schema.sensitive.iter().map(String::as_str))
        .chain(schema.weight.as_deref())
        .chain(
            schema
                .features
                .iter()
                .map(String::as_str)
                .filter(|_| predictions.is_none()),
        )
        .collect();
    let mut table = load_table(state, &dataset_digest, "dataset", Some(&dataset_columns)).await?;
    progress.check()?;
    let mut model_robustness = None;
    let (mode, inputs, metrics_from) = match predictions {
        Some(predictions_digest) => {
            // A multiclass file's probability columns are named after classes: read every column.
            let wanted = [schema.label.as_str(), settings.score_column.as_str()];
            let predictions = load_table(
                state,
                predictions_digest,
                "predictions",
                (schema.task != Task::Multiclass).then_some(&wanted[..]),
            )
            .await?;
            let copied: Vec<&str> = match &settings.prediction_column {
                Some(prediction_column) => std::iter::once(prediction_column.as_str())
                    .chain(
                        predictions
                            .column_names()
                            .iter()
                            .map(String::as_str)
                            .filter(|name| {
                                !settings.score_column.is_empty()
                                    && name.starts_with(settings.score_column.as_str())
                            }),
                    )
                    .collect(),
                None => vec![settings.score_column.as_str()],
            };
            table
                .join_prediction_columns(&predictions, &schema.label, &copied)
                .map_err(|error| dataset_error("predictions", error))?;
            let inputs = json!({
                "artifact_digest": version.digest.to_string(),
                "dataset_digest": dataset.digest,
                "predictions_digest": predictions_digest.to_string(),
            });
            ("predictions", inputs, 0.05)
        }
        None => {
            if schema.task == Task::Binary {
                let robustness = run_model(
                    state,
                    version,
                    &mut table,
                    schema,
                    settings.threshold,
                    settings.seed,
                    progress,
                )
                .await?;
                model_robustness = Some(robustness);
            } else {
                let robustness =
                    run_other_model(state, version, &mut table, schema, settings.seed, progress)
                        .await?;
                model_robustness = Some(robustness);
            }
            let inputs = json!({
                "artifact_digest": version.digest.to_string(),
                "dataset_digest": dataset.digest,
                "runtime": modelgate_onnx::runtime_description()
                    .unwrap_or_else(|| "onnxruntime (not loaded)".to_owned()),
            });
            ("model", inputs, 0.5)
        }
    };
    progress.set(metrics_from, "metrics");
    let result = {
        let (schema, settings, progress) = (schema.clone(), settings.clone(), progress.clone());
        tokio::task::spawn_blocking(move || {
            let report = |done: f64| {
                let share = metrics_from + (0.99 - metrics_from) * done;
                progress.set(share, if done < 0.2 { "metrics" } else { "bootstrap" });
                !progress.is_cancelled()
            };
            evaluate(&table, &schema, &settings, &report)
        })
        .await
        .map_err(|error| ApiError::internal(&error))?
        .map_err(|error| dataset_error(mode, error))?
    };
    progress.check()?;
    let mut results = result;
    if let Some(robustness) = model_robustness {
        results["robustness"] = robustness;
    }
    let settings_value =
        serde_json::to_value(settings).map_err(|error| ApiError::internal(&error))?;
    let canonical = serde_json_canonicalizer::to_vec(&json!({
        "inputs": inputs, "settings": settings_value, "engine": ENGINE_VERSION, "results": results,
    }))
    .map_err(|error| ApiError::internal(&error))?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(canonical)));
    Ok(NewEvaluation {
        dataset: dataset.name.clone(),
        mode: mode.to_owned(),
        inputs_json: inputs.to_string(),
        settings_json: settings_value.to_string(),
        engine: ENGINE_VERSION.to_owned(),
        results_json: results.to_string(),
        digest,
    })
}

/// A job, with an abandoned one (no heartbeat for [`ABANDONED_AFTER_MILLIS`]: its server stopped) marked
/// failed first.
pub(crate) async fn current_job(state: &AppState, id: i64) -> Result<JobRecord, ApiError> {
    let job = state.store().get_job(id).await?;
    let now = state.now();
    if !job.state.is_finished()
        && job.updated_at.unix_millis() < now.unix_millis() - ABANDONED_AFTER_MILLIS
    {
        state
            .store()
            .fail_abandoned_jobs(
                Timestamp::from_unix_millis(now.unix_millis() - ABANDONED_AFTER_MILLIS),
                now,
            )
            .await?;
        return Ok(state.store().get_job(id).await?);
    }
    Ok(job)
}

/// Fails the jobs this server still runs as it stops, so that nobody waits for them.
pub async fn fail_jobs_at_shutdown(state: &AppState) {
    for job in state.evaluation_jobs() {
        if let Err(error) = state
            .store()
            .finish_job(
                job,
                JobState::Failed,
                "the server was stopped while the evaluation ran; nothing of it was saved: run it again",
                None,
                state.now(),
            )
            .await
        {
            tracing::warn!(job, %error, "could not mark an evaluation job failed at shutdown");
        }
    }
}

/// Marks failed the jobs whose server stopped while they ran; called when a server starts.
pub async fn fail_abandoned_jobs(store: &modelgate_store::Store, now: Timestamp) {
    match store
        .fail_abandoned_jobs(
            Timestamp::from_unix_millis(now.unix_millis() - ABANDONED_AFTER_MILLIS),
            now,
        )
        .await
    {
        Ok(0) => {}
        Ok(failed) => tracing::warn!(
            failed,
            "marked evaluation jobs failed: their server stopped while they ran"
        ),
        Err(error) => tracing::warn!(%error, "could not check for abandoned evaluation jobs"),
    }
}
