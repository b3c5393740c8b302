//! Datasets and evaluations over HTTP: register a dataset (validated and profiled), run an evaluation in
//! predictions mode, and read them back. Verified numbers are computed here, never taken from the client.

use super::models::maintained_model;
use crate::auth::Caller;
use crate::convert::format_time;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use modelgate_api as api;
use modelgate_core::{Digest, ModelName, Timestamp, VersionNumber};
use modelgate_eval::dataset::{
    DatasetError, DatasetSchema, Table, Task, profile, read_table_within, validate,
};
use modelgate_eval::evaluate::{ENGINE_VERSION, Settings, evaluate};
use modelgate_eval::robustness::{
    class_shift, perturbation_report, robustness_report, value_shift,
};
use modelgate_store::{
    DatasetRecord, EvaluationRecord, JobRecord, JobState, NewEvaluation, NewJob,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Model artifacts larger than this are not loaded for evaluation.
pub const MAX_MODEL_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// How much larger than the file limit a Parquet file's columns may be once decoded.
const PARQUET_EXPANSION: u64 = 4;

/// The column model mode adds to the dataset for the model's positive-class probability.
const MODEL_SCORE_COLUMN: &str = "__model_score";
/// Model mode, multiclass: the predicted class, and the prefix of the per-class probability columns.
const MODEL_PREDICTION_COLUMN: &str = "__model_prediction";
const MODEL_PROBABILITY_PREFIX: &str = "__model_proba_";

/// The model's inputs: the dataset's feature columns as a row-major matrix (in the declared order), their
/// count, and the version's artifact.
async fn model_inputs(
    state: &AppState,
    version: &modelgate_core::Version,
    table: &Table,
    schema: &DatasetSchema,
) -> Result<(Vec<f32>, usize, Vec<u8>), ApiError> {
    if schema.features.is_empty() {
        return Err(ApiError::invalid(
            "dataset",
            "dataset: model mode needs the dataset's feature columns; register it with --features",
        ));
    }
    let rows = table
        .feature_matrix(&schema.features)
        .map_err(|error| dataset_error("dataset", error))?;
    let model_bytes = state
        .artifacts()
        .read_to_vec(&version.digest, MAX_MODEL_BYTES)
        .await
        .map_err(|error| ApiError::internal(&error))?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the model artifact is too large to evaluate",
            )
        })?;
    Ok((rows, schema.features.len(), model_bytes))
}

/// A model that would not load or run, as the API reports it.
fn model_error(
    error: modelgate_onnx::OnnxError,
    task: Task,
    features: usize,
    progress: &JobProgress,
) -> ApiError {
    match error {
        _ if progress.is_cancelled() => cancelled_error(),
        modelgate_onnx::OnnxError::RuntimeMissing(_) => {
            ApiError::new(ErrorCode::Unavailable, error.to_string())
        }
        other => {
            let kind = match task {
                Task::Binary | Task::Multiclass => "classifier",
                Task::Regression => "regressor",
            };
            ApiError::new(
                ErrorCode::InvalidArgument,
                format!("the version's artifact cannot be run as an ONNX {kind} on the dataset's {features} features: {other}"),
            )
            .with_details(json!({ "field": "model" }))
        }
    }
}

/// Before each run of the model (once on the dataset, then once per perturbation): stops when the job was
/// cancelled, and moves the progress through the model's half of the job.
fn model_run_steps(
    progress: Arc<JobProgress>,
    features: usize,
) -> impl FnMut() -> Result<(), modelgate_onnx::OnnxError> {
    let runs = (1 + modelgate_eval::robustness::NOISE_LEVELS.len() + features) as f64;
    let mut done = 0.0;
    move || {
        if progress.is_cancelled() {
            return Err(modelgate_onnx::OnnxError::Run("cancelled".to_owned()));
        }
        let phase = if done == 0.0 {
            "running the model"
        } else {
            "robustness"
        };
        progress.set(0.05 + 0.45 * done / runs, phase);
        done += 1.0;
        Ok(())
    }
}

/// Model mode for a binary dataset: runs the version's ONNX artifact on the feature columns, adding the
/// model's probability of the positive class to the table as a score column, and returns the robustness
/// report of the reruns on perturbed inputs.
async fn run_model(
    state: &AppState,
    version: &modelgate_core::Version,
    table: &mut Table,
    schema: &DatasetSchema,
    threshold: f64,
    seed: u64,
    progress: &Arc<JobProgress>,
) -> Result<Value, ApiError> {
    let (rows, features, model_bytes) = model_inputs(state, version, table, schema).await?;
    let labels = table
        .binary_labels(schema)
        .map_err(|error| dataset_error("dataset", error))?;
    let feature_names = schema.features.clone();
    let watched = progress.clone();
    let mut step = model_run_steps(progress.clone(), features);
    let (scores, robustness) = tokio::task::spawn_blocking(move || {
        let model = modelgate_onnx::Model::load(&model_bytes)?;
        let mut score = |rows: &[f32]| {
            step()?;
            model
                .classify(rows, features)
                .map(|predictions| predictions.positive_probability)
        };
        let scores = score(&rows)?;
        let robustness = robustness_report(
            &rows,
            &feature_names,
            &labels,
            &scores,
            threshold,
            seed,
            score,
        )?;
        Ok::<_, modelgate_onnx::OnnxError>((scores, robustness))
    })
    .await
    .map_err(|error| ApiError::internal(&error))?
    .map_err(|error| model_error(error, Task::Binary, features, &watched))?;
    table.set_numbers(MODEL_SCORE_COLUMN, scores);
    serde_json::to_value(robustness).map_err(|error| ApiError::internal(&error))
}

/// Model mode for a multiclass or regression dataset: runs the version's ONNX artifact and adds its
/// predictions to the table — the predicted class (and, when the model gives one probability per class of
/// the dataset, those as `__model_proba_<class>`, in scikit-learn's class order: sorted, numerically when
/// the classes are numbers), or the predicted value — then reruns it on perturbed inputs and returns that
/// report (changed classes and accuracy/macro-F1 deltas; prediction change and MAE/RMSE/R² deltas).
async fn run_other_model(
    state: &AppState,
    version: &modelgate_core::Version,
    table: &mut Table,
    schema: &DatasetSchema,
    seed: u64,
    progress: &Arc<JobProgress>,
) -> Result<Value, ApiError> {
    let (rows, features, model_bytes) = model_inputs(state, version, table, schema).await?;
    let task = schema.task;
    let (truth, mut classes): (Vec<f64>, Vec<String>) = match task {
        Task::Regression => (
            table
                .numbers(&schema.label)
                .map_err(|error| dataset_error("dataset", error))?
                .to_vec(),
            Vec::new(),
        ),
        _ => (
            Vec::new(),
            table
                .class_labels(&schema.label)
                .map_err(|error| dataset_error("dataset", error))?
                .names,
        ),
    };
    let labels = match task {
        Task::Regression => Vec::new(),
        _ => table
            .column(&schema.label)
            .map_err(|error| dataset_error("dataset", error))?,
    };
    let feature_names = schema.features.clone();
    let watched = progress.clone();
    let mut step = model_run_steps(progress.clone(), features);
    let class_names = classes.clone();
    let (outcome, robustness) = tokio::task::spawn_blocking(move || {
        let classes = class_names;
        let model = modelgate_onnx::Model::load(&model_bytes)?;
        if task == Task::Regression {
            step()?;
            let values = model.regress(&rows, features)?;
            let report = perturbation_report(
                &rows,
                &feature_names,
                seed,
                |perturbed| {
                    step()?;
                    Ok(value_shift(
                        &truth,
                        &values,
                        &model.regress(perturbed, features)?,
                    ))
                },
                |_| None,
            )?;
            let report = serde_json::to_value(report)
                .map_err(|error| modelgate_onnx::OnnxError::Outputs(error.to_string()))?;
            return Ok((Err(values), report));
        }
        step()?;
        let predictions = model.classify_classes(&rows, features)?;
        let report = perturbation_report(
            &rows,
            &feature_names,
            seed,
            |perturbed| {
                step()?;
                let moved = model.classify_classes(perturbed, features)?.labels;
                Ok(class_shift(&labels, &classes, &predictions.labels, &moved))
            },
            |shift| Some(shift.flip_rate),
        )?;
        let report = serde_json::to_value(report)
            .map_err(|error| modelgate_onnx::OnnxError::Outputs(error.to_string()))?;
        Ok::<_, modelgate_onnx::OnnxError>((Ok(predictions), report))
    })
    .await
    .map_err(|error| ApiError::internal(&error))?
    .map_err(|error| model_error(error, task, features, &watched))?;
    match outcome {
        Err(values) => table.set_numbers(MODEL_SCORE_COLUMN, values),
        Ok(predictions) => {
            let numeric: Option<Vec<f64>> = classes
                .iter()
                .map(|class| class.parse::<f64>().ok())
                .collect();
            if let Some(numbers) = numeric {
                let mut paired: Vec<(f64, String)> = numbers.into_iter().zip(classes).collect();
                paired.sort_by(|a, b| a.0.total_cmp(&b.0));
                classes = paired.into_iter().map(|(_, class)| class).collect();
            }
            if let Some((probabilities, columns)) = predictions.probabilities
                && columns == classes.len()
            {
                for (column, class) in classes.iter().enumerate() {
                    let values = probabilities
                        .chunks(columns)
                        .map(|row| row[column])
                        .collect();
                    table.set_numbers(&format!("{MODEL_PROBABILITY_PREFIX}{class}"), values);
                }
            }
            table.set_text(MODEL_PREDICTION_COLUMN, predictions.labels);
        }
    }
    Ok(robustness)
}

fn dataset_error(field: &str, error: DatasetError) -> ApiError {
    let code = if error.too_large {
        ErrorCode::PayloadTooLarge
    } else {
        ErrorCode::InvalidArgument
    };
    ApiError::new(code, format!("{field}: {error}")).with_details(
        json!({ "field": field, "line": error.line, "row": error.row, "column": error.column }),
    )
}

/// Reads an uploaded dataset or predictions file (CSV or Parquet), only the `wanted` columns when given.
async fn load_table(
    state: &AppState,
    digest: &Digest,
    field: &str,
    wanted: Option<&[&str]>,
) -> Result<Table, ApiError> {
    state.store().get_artifact_record(digest).await.map_err(|_| {
        ApiError::invalid(field, format!("{field}: {digest} has not been uploaded; upload the file first (POST /api/v1/artifacts)"))
    })?;
    let bytes = state
        .artifacts()
        .read_to_vec(digest, state.max_dataset_bytes())
        .await
        .map_err(|error| ApiError::internal(&error))?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "{field}: the file is larger than the server's limit of {} bytes for datasets and predictions; split it or start the server with a larger --max-dataset-bytes",
                    state.max_dataset_bytes()
                ),
            )
            .with_details(json!({ "field": field, "limit_bytes": state.max_dataset_bytes() }))
        })?;
    let wanted: Option<Vec<String>> =
        wanted.map(|columns| columns.iter().map(|column| (*column).to_owned()).collect());
    let field_name = field.to_owned();
    let max_bytes = state.max_dataset_bytes();
    tokio::task::spawn_blocking(move || {
        let wanted: Option<Vec<&str>> = wanted
            .as_ref()
            .map(|columns| columns.iter().map(String::as_str).collect());
        read_table_within(
            bytes::Bytes::from(bytes),
            wanted.as_deref(),
            max_bytes.saturating_mul(PARQUET_EXPANSION),
        )
        .map_err(|error| dataset_error(&field_name, error))
    })
    .await
    .map_err(|error| ApiError::internal(&error))?
}

fn columns_wire(schema: &DatasetSchema) -> api::DatasetColumns {
    api::DatasetColumns {
        task: Some(schema.task.as_str().to_owned()),
        label: schema.label.clone(),
        features: schema.features.clone(),
        sensitive: schema.sensitive.clone(),
        weight: schema.weight.clone(),
        positive_label: schema.positive_label.clone(),
        classes: schema.classes.clone(),
    }
}

fn dataset_wire(record: &DatasetRecord) -> Result<api::Dataset, ApiError> {
    let schema: DatasetSchema =
        serde_json::from_str(&record.schema_json).map_err(|error| ApiError::internal(&error))?;
    Ok(api::Dataset {
        name: record.name.clone(),
        digest: record.digest.clone(),
        format: record.format.clone(),
        schema: columns_wire(&schema),
        rows: record.row_count,
        profile: serde_json::from_str(&record.profile_json)
            .map_err(|error| ApiError::internal(&error))?,
        created_by: record.created_by.clone(),
        created_at: format_time(record.created_at),
    })
}

pub fn evaluation_wire(record: &EvaluationRecord) -> Result<api::Evaluation, ApiError> {
    let parse = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text).map_err(|error| ApiError::internal(&error))
    };
    Ok(api::Evaluation {
        id: record.id,
        model: record.model_name.clone(),
        version: record.version,
        dataset: record.dataset.clone(),
        mode: record.mode.clone(),
        verified: true,
        inputs: parse(&record.inputs_json)?,
        settings: parse(&record.settings_json)?,
        engine: record.engine.clone(),
        results: parse(&record.results_json)?,
        digest: record.digest.clone(),
        created_by: record.created_by.clone(),
        created_at: format_time(record.created_at),
    })
}

#[utoipa::path(post, path = "/api/v1/datasets", tag = "evaluation", request_body = api::RegisterDataset,
    responses((status = 201, body = api::Dataset), (status = 400, body = api::ErrorBody, description = "Names the column and the line"), (status = 409, body = api::ErrorBody)))]
pub async fn register_dataset(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::RegisterDataset>,
) -> Result<(StatusCode, Json<api::Dataset>), ApiError> {
    let name = ModelName::parse(&request.name).map_err(|mut invalid| {
        invalid.field = "name";
        invalid
    })?;
    let digest = Digest::parse(&request.digest)?;
    if let Some(format) = &request.format
        && format != "csv"
        && format != "parquet"
    {
        return Err(ApiError::invalid(
            "format",
            format!("format: csv or parquet (got {format:?}); or leave it out to detect it"),
        ));
    }
    let task = match request.schema.task.as_deref() {
        None => Task::Binary,
        Some(text) => Task::parse(text).ok_or_else(|| {
            ApiError::invalid(
                "schema.task",
                format!("schema.task: binary, multiclass or regression (got {text:?})"),
            )
        })?,
    };
    if task == Task::Binary && request.schema.positive_label.trim().is_empty() {
        return Err(ApiError::invalid(
            "schema.positive_label",
            "schema.positive_label: a binary label needs the value that counts as positive (--positive-label)",
        ));
    }
    let schema = DatasetSchema {
        task,
        label: request.schema.label,
        features: request.schema.features,
        sensitive: request.schema.sensitive,
        weight: request.schema.weight,
        positive_label: request.schema.positive_label,
        classes: request.schema.classes,
    };
    let table = load_table(&state, &digest, "dataset", None).await?;
    let format = table.format().as_str().to_owned();
    if let Some(declared) = &request.format
        && declared != &format
    {
        return Err(ApiError::invalid(
            "format",
            format!("format: the file is {format}, not {declared}; leave format out to detect it"),
        ));
    }
    validate(&table, &schema).map_err(|error| dataset_error("dataset", error))?;
    let profile = profile(&table);
    let record = state
        .store()
        .create_dataset(
            &caller.attribution(state.now()),
            name.as_str(),
            &digest,
            &format,
            &serde_json::to_string(&schema).map_err(|error| ApiError::internal(&error))?,
            &serde_json::to_string(&profile).map_err(|error| ApiError::internal(&error))?,
            i64::try_from(profile.rows).unwrap_or(i64::MAX),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(dataset_wire(&record)?)))
}

#[utoipa::path(get, path = "/api/v1/datasets/{name}", tag = "evaluation",
    params(("name" = String, Path, description = "Dataset name")),
    responses((status = 200, body = api::Dataset), (status = 404, body = api::ErrorBody)))]
pub async fn get_dataset(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<api::Dataset>, ApiError> {
    Ok(Json(dataset_wire(
        &state.store().get_dataset(&name).await?,
    )?))
}

#[utoipa::path(get, path = "/api/v1/datasets", tag = "evaluation", responses((status = 200, body = api::DatasetList)))]
pub async fn list_datasets(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<api::DatasetList>, ApiError> {
    let datasets = state.store().list_datasets().await?;
    Ok(Json(api::DatasetList {
        datasets: datasets
            .iter()
            .map(dataset_wire)
            .collect::<Result<_, _>>()?,
    }))
}

/// How long a queued or running job may go without a heartbeat before it counts as abandoned (its server
/// stopped). Heartbeats come every [`HEARTBEAT`].
const ABANDONED_AFTER_MILLIS: i64 = 30_000;
const HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(500);

/// A running job's progress, shared between the work (which sets it) and the heartbeat (which stores it
/// and brings back a stop request made through any replica).
struct JobProgress {
    share_bits: AtomicU64,
    phase: Mutex<&'static str>,
    running: AtomicBool,
    cancelled: AtomicBool,
}

impl JobProgress {
    fn new() -> Self {
        Self {
            share_bits: AtomicU64::new(0f64.to_bits()),
            phase: Mutex::new("queued"),
            running: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
        }
    }

    /// Moves the share done forward (never back: bootstrap workers report out of order) and names the phase.
    fn set(&self, share: f64, phase: &'static str) {
        // Non-negative floats order as their bits do.
        self.share_bits
            .fetch_max(share.max(0.0).to_bits(), Ordering::Relaxed);
        if let Ok(mut current) = self.phase.lock() {
            *current = phase;
        }
    }

    /// The share done and the phase, as last set.
    fn snapshot(&self) -> (f64, &'static str) {
        let share = f64::from_bits(self.share_bits.load(Ordering::Relaxed));
        let phase = self.phase.lock().map(|phase| *phase).unwrap_or("running");
        (share, phase)
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Stops the work between steps when someone asked it to.
    fn check(&self) -> Result<(), ApiError> {
        if self.is_cancelled() {
            Err(cancelled_error())
        } else {
            Ok(())
        }
    }
}

fn cancelled_error() -> ApiError {
    ApiError::new(
        ErrorCode::FailedPrecondition,
        "the evaluation was cancelled; nothing of it was saved",
    )
}

/// Everything an evaluation needs, checked before its job is queued, so that mistakes in the request are
/// answered at once and only the work itself runs in the background.
struct PreparedEvaluation {
    name: ModelName,
    number: VersionNumber,
    version: modelgate_core::Version,
    dataset: DatasetRecord,
    schema: DatasetSchema,
    settings: Settings,
    predictions: Option<Digest>,
}

async fn prepare_evaluation(
    state: &AppState,
    caller: &Caller,
    request: &api::RunEvaluation,
) -> Result<PreparedEvaluation, ApiError> {
    let name = ModelName::parse(&request.model).map_err(|mut invalid| {
        invalid.field = "model";
        invalid
    })?;
    let number = VersionNumber::new(i64::from(request.version))?;
    maintained_model(state, caller, &name, "evaluation.record").await?;
    let version = state.store().get_version(&name, number).await?;
    let dataset = state.store().get_dataset(&request.dataset).await?;
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
        bins: request.bins.unwrap_or(10).clamp(2, 100),
        minimum_group_size: request.minimum_group_size.unwrap_or(30),
        bootstrap_resamples: request.bootstrap_resamples.unwrap_or(200).min(10_000),
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
    if !(0.0..=1.0).contains(&settings.threshold) {
        return Err(ApiError::invalid(
            "threshold",
            "threshold: must be between 0 and 1",
        ));
    }
    if let Some(unknown) = settings
        .intersections
        .iter()
        .flat_map(|(first, second)| [first, second])
        .find(|attribute| !schema.sensitive.contains(attribute))
    {
        return Err(ApiError::invalid(
            "intersections",
            format!(
                "intersections: {unknown:?} is not a sensitive attribute of dataset {} (it has: {}); intersect two of those",
                dataset.name,
                schema.sensitive.join(", ")
            ),
        ));
    }
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

#[utoipa::path(post, path = "/api/v1/evaluations", tag = "evaluation", request_body = api::RunEvaluation,
    responses((status = 202, body = api::EvaluationJob, description = "Queued; follow it at /api/v1/evaluation-jobs/{id}"),
        (status = 201, body = api::Evaluation, description = "With `wait`: the finished evaluation"),
        (status = 400, body = api::ErrorBody), (status = 404, body = api::ErrorBody)))]
pub async fn run_evaluation(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::RunEvaluation>,
) -> Result<Response, ApiError> {
    let prepared = prepare_evaluation(&state, &caller, &request).await?;
    let job = state
        .store()
        .create_job(
            &caller.attribution(state.now()),
            &NewJob {
                model_name: prepared.name.to_string(),
                version: i64::from(prepared.number.get()),
                dataset: prepared.dataset.name.clone(),
                request_json: serde_json::to_string(&request)
                    .map_err(|error| ApiError::internal(&error))?,
            },
        )
        .await?;
    state.track_evaluation_job(job.id, true);
    let runner = tokio::spawn(run_job(state.clone(), caller, job.id, prepared));
    if request.wait {
        // A waiting request must not hold up a shutdown: the job is then failed, and the client told so.
        let record = tokio::select! {
            finished = runner => finished.map_err(|error| ApiError::internal(&error))??,
            () = state.shutdown().cancelled() => {
                return Err(ApiError::new(
                    ErrorCode::Unavailable,
                    format!("the server is shutting down; evaluation job {} is stopped with nothing saved: run it again", job.id),
                ));
            }
        };
        return Ok((StatusCode::CREATED, Json(evaluation_wire(&record)?)).into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(job_wire(&job)?)).into_response())
}

/// Runs a queued job to its end: one evaluation at a time per server (the work uses both cores), a
/// heartbeat with the progress every half second, and exactly one outcome — the evaluation and the job's
/// success in one transaction, or the job failed or cancelled with nothing saved.
async fn run_job(
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
        let record = state
            .store()
            .create_evaluation(
                &caller.attribution(state.now()),
                &prepared.name,
                prepared.number,
                &evaluation,
                Some(job),
            )
            .await?;
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
                "runtime": "onnxruntime 1.32 via ort 2.0.0-rc.15",
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

fn job_wire(job: &JobRecord) -> Result<api::EvaluationJob, ApiError> {
    let error = job
        .error_json
        .as_deref()
        .map(serde_json::from_str::<api::ErrorDetail>)
        .transpose()
        .map_err(|error| ApiError::internal(&error))?;
    Ok(api::EvaluationJob {
        id: job.id,
        model: job.model_name.clone(),
        version: job.version,
        dataset: job.dataset.clone(),
        state: job.state.as_str().to_owned(),
        percent: (job.progress * 1000.0).round() / 10.0,
        phase: job.phase.clone(),
        message: job.message.clone(),
        error,
        cancel_requested: job.cancel_requested,
        evaluation_id: job.evaluation_id,
        created_by: job.created_by.clone(),
        created_at: format_time(job.created_at),
        updated_at: format_time(job.updated_at),
    })
}

/// A job, with an abandoned one (no heartbeat for [`ABANDONED_AFTER_MILLIS`]: its server stopped) marked
/// failed first.
async fn current_job(state: &AppState, id: i64) -> Result<JobRecord, ApiError> {
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

#[utoipa::path(get, path = "/api/v1/evaluation-jobs/{id}", tag = "evaluation",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = api::EvaluationJob), (status = 404, body = api::ErrorBody)))]
pub async fn get_job(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<api::EvaluationJob>, ApiError> {
    Ok(Json(job_wire(&current_job(&state, id).await?)?))
}

#[utoipa::path(post, path = "/api/v1/evaluation-jobs/{id}/cancel", tag = "evaluation",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = api::EvaluationJob, description = "Asked to stop; it stops at its next step"),
        (status = 404, body = api::ErrorBody), (status = 409, body = api::ErrorBody, description = "Already finished")))]
pub async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<api::EvaluationJob>, ApiError> {
    let job = current_job(&state, id).await?;
    let name = ModelName::parse(&job.model_name).map_err(|error| ApiError::internal(&error))?;
    maintained_model(&state, &caller, &name, "evaluation.cancel").await?;
    let job = state.store().request_job_cancel(id, state.now()).await?;
    Ok(Json(job_wire(&job)?))
}

#[utoipa::path(get, path = "/api/v1/evaluations/{id}", tag = "evaluation",
    params(("id" = i64, Path, description = "Evaluation id")),
    responses((status = 200, body = api::Evaluation), (status = 404, body = api::ErrorBody)))]
pub async fn get_evaluation(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<api::Evaluation>, ApiError> {
    Ok(Json(evaluation_wire(
        &state.store().get_evaluation(id).await?,
    )?))
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/evaluations", tag = "evaluation",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, body = api::EvaluationList)))]
pub async fn list_version_evaluations(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> Result<Json<api::EvaluationList>, ApiError> {
    let name = ModelName::parse(&name)?;
    let number = VersionNumber::parse(&number)?;
    let records = state.store().evaluations_for_version(&name, number).await?;
    Ok(Json(api::EvaluationList {
        evaluations: records
            .iter()
            .map(evaluation_wire)
            .collect::<Result<_, _>>()?,
    }))
}
