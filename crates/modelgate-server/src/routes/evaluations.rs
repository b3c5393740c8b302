//! Evaluations over HTTP: run one (checked, then queued as a background job), follow or cancel its job, and
//! read evaluations back. Verified numbers are computed by the server, never taken from the client.

use super::models::maintained_model;
use crate::auth::Caller;
use crate::convert::{Wire, format_time, stored_evaluation_mode, stored_evaluation_status};
use crate::error::{ApiError, ErrorCode};
use crate::evaluation::{current_job, evaluation_target, prepare_evaluation, prepare_on, run_job};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use modelgate_api as api;
use modelgate_core::{ModelName, VersionNumber};
use modelgate_store::{DatasetRecord, EvaluationRecord, JobRecord, JobState, NewJob};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

pub fn evaluation_wire(record: &EvaluationRecord) -> Result<api::Evaluation, ApiError> {
    let parse = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text).map_err(|error| ApiError::internal(&error))
    };
    Ok(api::Evaluation {
        id: record.id,
        model: record.model_name.clone(),
        version: record.version,
        dataset: record.dataset.clone(),
        mode: stored_evaluation_mode(&record.mode)?,
        verified: true,
        inputs: parse(&record.inputs_json)?,
        settings: parse(&record.settings_json)?,
        engine: record.engine.clone(),
        results: parse(&record.results_json)?,
        digest: record.digest.clone(),
        created_by: record.created_by.clone(),
        created_at: format_time(record.created_at),
        status: stored_evaluation_status(&record.status)?,
        status_reason: record.status_reason.clone(),
    })
}

#[utoipa::path(post, path = "/api/v1/evaluations/{id}/status", tag = "evaluation",
    params(("id" = i64, Path, description = "Evaluation id")), request_body = api::MarkEvaluation,
    responses((status = 200, body = api::Evaluation, description = "The evaluation with its new status; the version's evidence changed (sign-offs given before no longer count)"),
        (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody),
        (status = 409, body = api::ErrorBody, description = "Already so, or the version's approval freezes its evidence")))]
/// Count an evaluation, or set it aside
///
/// Marks an evaluation `exploratory` or `superseded` (the policy then no longer reads it) or `counted`
/// again, with the reason; audited, and a change of the version's evidence.
pub async fn mark_evaluation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<api::MarkEvaluation>,
) -> Result<Json<api::Evaluation>, ApiError> {
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid(
            "reason",
            "reason: say why the evaluation is (or is no longer) set aside; it stays on record",
        ));
    }
    crate::text::check_length("reason", reason, crate::text::PROSE)?;
    let reason = Some(reason);
    let record = state.store().get_evaluation(id).await?;
    let name = ModelName::parse(&record.model_name)?;
    maintained_model(&state, &caller, &name, "evaluation.mark").await?;
    let frozen = crate::promotion::frozen_evidence_stages(&state).await?;
    let marked = state
        .store()
        .mark_evaluation(
            &caller.attribution(state.now()),
            id,
            request.status.as_str(),
            reason,
            &frozen,
        )
        .await?;
    Ok(Json(evaluation_wire(&marked)?))
}

#[utoipa::path(post, path = "/api/v1/evaluations", tag = "evaluation", request_body = api::RunEvaluation,
    responses((status = 202, body = api::EvaluationJob, description = "Queued; follow it at /api/v1/evaluation-jobs/{id}"),
        (status = 201, body = api::Evaluation, description = "With `wait`: the finished evaluation"),
        (status = 400, body = api::ErrorBody), (status = 404, body = api::ErrorBody)))]
/// Evaluate a version on a dataset
///
/// Queues an evaluation job: with `predictions_digest` the server computes the metrics from a client's
/// scores (predictions mode); without it the server runs the version's ONNX artifact itself (model mode).
/// With `wait` the answer comes when it is done.
pub async fn run_evaluation(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::RunEvaluation>,
) -> Result<Response, ApiError> {
    let (job, runner) = queue_evaluation(&state, &caller, &request).await?;
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

/// Checks an evaluation request and queues its job; the runner's handle answers when it has finished.
pub(crate) async fn queue_evaluation(
    state: &AppState,
    caller: &Caller,
    request: &api::RunEvaluation,
) -> Result<
    (
        JobRecord,
        tokio::task::JoinHandle<Result<modelgate_store::EvaluationRecord, ApiError>>,
    ),
    ApiError,
> {
    let prepared = prepare_evaluation(state, caller, request).await?;
    let job = state
        .store()
        .create_job(
            &caller.attribution(state.now()),
            &NewJob {
                model_name: prepared.name.to_string(),
                version: i64::from(prepared.number.get()),
                dataset: prepared.dataset.name.clone(),
                request_json: serde_json::to_string(request)
                    .map_err(|error| ApiError::internal(&error))?,
            },
        )
        .await?;
    state.track_evaluation_job(job.id, true);
    let runner = tokio::spawn(run_job(state.clone(), caller.clone(), job.id, prepared));
    Ok((job, runner))
}

/// The request `POST /api/v1/evaluations` would get for a gate's evaluation of a version.
fn gate_run(
    model: &ModelName,
    number: VersionNumber,
    evaluation: &modelgate_policy::GateEvaluation,
) -> api::RunEvaluation {
    api::RunEvaluation {
        model: model.to_string(),
        version: number.get(),
        dataset: evaluation.dataset.clone(),
        bootstrap_resamples: evaluation.bootstrap,
        intersections: evaluation.intersections.clone(),
        ..api::RunEvaluation::default()
    }
}

/// The newest job of `jobs` that runs exactly `run` (same version, dataset and settings).
fn job_for<'a>(jobs: &'a [JobRecord], run: &api::RunEvaluation) -> Option<&'a JobRecord> {
    let wanted = serde_json::to_string(run).ok()?;
    jobs.iter()
        .filter(|job| job.version == i64::from(run.version) && job.request_json == wanted)
        .max_by_key(|job| job.id)
}

fn gate_state(dataset: &str, job: Option<&JobRecord>) -> api::GateEvaluationState {
    match job {
        Some(job) => api::GateEvaluationState {
            dataset: dataset.to_owned(),
            job: Some(job.id),
            state: job.state.to_wire(),
            problem: matches!(job.state, JobState::Failed | JobState::Cancelled)
                .then(|| job.message.clone().unwrap_or_default()),
        },
        None => api::GateEvaluationState {
            dataset: dataset.to_owned(),
            job: None,
            state: api::JobState::Failed,
            problem: Some("not queued: the request opened before the gate named it".to_owned()),
        },
    }
}

/// Where the evaluations a gate names stand for a version: each one's newest job.
pub(crate) async fn gate_evaluation_states(
    state: &AppState,
    model: &ModelName,
    number: VersionNumber,
    evaluations: &[modelgate_policy::GateEvaluation],
) -> Result<Vec<api::GateEvaluationState>, ApiError> {
    if evaluations.is_empty() {
        return Ok(Vec::new());
    }
    let jobs = state
        .store()
        .list_jobs(None, Some(model.as_str()), 1000)
        .await?;
    Ok(evaluations
        .iter()
        .map(|evaluation| {
            let run = gate_run(model, number, evaluation);
            gate_state(&evaluation.dataset, job_for(&jobs, &run))
        })
        .collect())
}

/// Queues the evaluations the gate names (`evaluations = [...]`) for a request that just opened, except
/// those already queued, running or done for the version with the same settings (a request opened again
/// queues nothing new). A refusal (a dataset that does not exist, a version that is not ONNX) is reported
/// in the answer, not raised: the request stays open and says why.
pub(crate) async fn queue_gate_evaluations(
    state: &AppState,
    caller: &Caller,
    model: &ModelName,
    number: VersionNumber,
    evaluations: &[modelgate_policy::GateEvaluation],
) -> Vec<api::GateEvaluationState> {
    let jobs = match state
        .store()
        .list_jobs(None, Some(model.as_str()), 1000)
        .await
    {
        Ok(jobs) => jobs,
        Err(error) => {
            tracing::warn!(%error, "could not list evaluation jobs");
            Vec::new()
        }
    };
    let failed = |dataset: &str, problem: String| api::GateEvaluationState {
        dataset: dataset.to_owned(),
        job: None,
        state: api::JobState::Failed,
        problem: Some(problem),
    };
    let mut states: Vec<Option<api::GateEvaluationState>> =
        evaluations.iter().map(|_| None).collect();
    // Each one checked as `POST /api/v1/evaluations` checks it, with the version read once and each
    // dataset once (a gate may name a hundred); then all their jobs in one transaction.
    let target = evaluation_target(state, caller, model.as_str(), number.get()).await;
    let mut datasets: HashMap<&str, Result<DatasetRecord, String>> = HashMap::new();
    let mut planned = Vec::new();
    for (index, evaluation) in evaluations.iter().enumerate() {
        let run = gate_run(model, number, evaluation);
        let reusable = job_for(&jobs, &run)
            .filter(|job| !matches!(job.state, JobState::Failed | JobState::Cancelled));
        if let Some(job) = reusable {
            states[index] = Some(gate_state(&evaluation.dataset, Some(job)));
            continue;
        }
        let target = match &target {
            Ok(target) => target.clone(),
            Err(error) => {
                states[index] = Some(failed(&evaluation.dataset, error.message.clone()));
                continue;
            }
        };
        let dataset = match datasets.entry(evaluation.dataset.as_str()) {
            Entry::Occupied(known) => known.get().clone(),
            Entry::Vacant(unread) => unread
                .insert(
                    state
                        .store()
                        .get_dataset(&evaluation.dataset)
                        .await
                        .map_err(|error| ApiError::from(error).message),
                )
                .clone(),
        };
        let prepared = match dataset {
            Ok(dataset) => prepare_on(state, target, dataset, &run)
                .await
                .map_err(|error| error.message),
            Err(problem) => Err(problem),
        };
        match prepared {
            Ok(prepared) => planned.push((index, run, prepared)),
            Err(problem) => states[index] = Some(failed(&evaluation.dataset, problem)),
        }
    }
    let new_jobs: Vec<NewJob> = planned
        .iter()
        .map(|(_, run, prepared)| NewJob {
            model_name: prepared.name.to_string(),
            version: i64::from(prepared.number.get()),
            dataset: prepared.dataset.name.clone(),
            request_json: serde_json::to_string(run).unwrap_or_default(),
        })
        .collect();
    match state
        .store()
        .create_jobs(&caller.attribution(state.now()), &new_jobs)
        .await
    {
        Ok(created) => {
            for ((index, _, prepared), job) in planned.into_iter().zip(created) {
                state.track_evaluation_job(job.id, true);
                states[index] = Some(gate_state(&evaluations[index].dataset, Some(&job)));
                tokio::spawn(run_job(state.clone(), caller.clone(), job.id, prepared));
            }
        }
        Err(error) => {
            tracing::warn!(%error, "could not queue a gate's evaluations");
            for (index, _, _) in planned {
                states[index] = Some(failed(
                    &evaluations[index].dataset,
                    format!("could not be queued: {error}"),
                ));
            }
        }
    }
    states.into_iter().flatten().collect()
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
        state: job.state.to_wire(),
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

#[utoipa::path(get, path = "/api/v1/evaluation-jobs/{id}", tag = "evaluation",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = api::EvaluationJob), (status = 404, body = api::ErrorBody)))]
/// An evaluation job
///
/// Its state, progress and phase; a finished job names its evaluation or its error.
pub async fn get_job(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<api::EvaluationJob>, ApiError> {
    Ok(Json(job_wire(&current_job(&state, id).await?)?))
}

#[utoipa::path(get, path = "/api/v1/evaluation-jobs", tag = "evaluation", params(api::JobListQuery),
    responses((status = 200, body = api::EvaluationJobList), (status = 400, body = api::ErrorBody)))]
/// List evaluation jobs
///
/// Newest first, filtered by state and model.
pub async fn list_jobs(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<api::JobListQuery>,
) -> Result<Json<api::EvaluationJobList>, ApiError> {
    let job_state = query.state.map(JobState::from_wire);
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit: 1 to 500"));
    }
    let jobs = state
        .store()
        .list_jobs(job_state, query.model.as_deref(), limit)
        .await?;
    Ok(Json(api::EvaluationJobList {
        jobs: jobs.iter().map(job_wire).collect::<Result<_, _>>()?,
    }))
}

#[utoipa::path(post, path = "/api/v1/evaluation-jobs/{id}/cancel", tag = "evaluation",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = api::EvaluationJob, description = "Asked to stop; it stops at its next step"),
        (status = 404, body = api::ErrorBody), (status = 409, body = api::ErrorBody, description = "Already finished")))]
/// Cancel an evaluation job
///
/// Asks a queued or running job to stop; nothing of it is saved. Works through any replica.
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
/// An evaluation
///
/// Its results (overall, per group, fairness, intervals, robustness in model mode), inputs, settings, mode
/// and digest.
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
/// A version's evaluations
///
/// Oldest first, with their status (counted or set aside) and mode.
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
