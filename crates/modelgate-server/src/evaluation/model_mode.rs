//! Model mode: the version's ONNX artifact run by the server on the dataset's feature columns — a binary
//! classifier's positive-class probability, a multiclass classifier's classes and probabilities, or a
//! regressor's values — and rerun on perturbed inputs for the robustness report.

use super::{JobProgress, cancelled_error};
use crate::error::{ApiError, ErrorCode};
use crate::routes::datasets::dataset_error;
use crate::state::AppState;
use modelgate_eval::dataset::{DatasetSchema, Table, Task};
use modelgate_eval::robustness::{
    class_shift, perturbation_report, robustness_report, value_shift,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// Model artifacts larger than this are not loaded for evaluation.
pub const MAX_MODEL_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The column model mode adds to the dataset for the model's positive-class probability.
pub(crate) const MODEL_SCORE_COLUMN: &str = "__model_score";
/// Model mode, multiclass: the predicted class, and the prefix of the per-class probability columns.
pub(crate) const MODEL_PREDICTION_COLUMN: &str = "__model_prediction";
pub(crate) const MODEL_PROBABILITY_PREFIX: &str = "__model_proba_";

/// The model's inputs: the dataset's feature columns as a row-major matrix (in the declared order), their
/// count, and the version's artifact. (`prepare_evaluation` refused datasets without feature columns.)
async fn model_inputs(
    state: &AppState,
    version: &modelgate_core::Version,
    table: &Table,
    schema: &DatasetSchema,
) -> Result<(Vec<f32>, usize, Vec<u8>), ApiError> {
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
pub(crate) async fn run_model(
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
pub(crate) async fn run_other_model(
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
