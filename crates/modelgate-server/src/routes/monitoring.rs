//! Monitoring after deployment (issue 13): production batches compared with the reference the policy
//! names (drift per feature and for the dataset, computed by the server), KPI observations checked
//! against their bounds, and the policy's action on a breach — notify, mark the approval `review_due`,
//! or suspend the version — recorded with the observation in one transaction.

use super::datasets::{dataset_error, load_table};
use super::models::maintained_model;
use crate::auth::Caller;
use crate::convert::{Wire, format_time};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use modelgate_api as api;
use modelgate_core::{Digest, ModelName, Stage, Timestamp, VersionNumber};
use modelgate_eval::dataset::DatasetSchema;
use modelgate_eval::drift::Reference;
use modelgate_policy::{Breach, BreachAction, Monitoring};
use modelgate_store::{BatchRecord, BreachEffect, KpiRecord, NewBatch, NewKpi, StoredBreach};
use sha2::{Digest as _, Sha256};

/// Batches listed by `GET …/monitoring`.
const BATCHES_SHOWN: u32 = 20;

pub(crate) fn breach_wire(breach: &StoredBreach) -> api::MonitoringBreach {
    api::MonitoringBreach {
        kind: breach.kind.clone(),
        action: breach.action.clone(),
        reason: breach.reason.clone(),
    }
}

fn batch_wire(record: &BatchRecord) -> Result<api::MonitoringBatch, ApiError> {
    Ok(api::MonitoringBatch {
        id: record.id,
        model: record.model.clone(),
        version: record.version,
        digest: record.digest.clone(),
        reference: record.reference.clone(),
        reference_digest: record.reference_digest.clone(),
        rows: record.rows,
        label_column: record.label_column.clone(),
        row_id_column: record.row_id_column.clone(),
        score_column: record.score_column.clone(),
        judged: record.judged,
        report: serde_json::from_str(&record.report_json)
            .map_err(|error| ApiError::internal(&error))?,
        report_digest: record.report_digest.clone(),
        breaches: record.breaches.iter().map(breach_wire).collect(),
        created_at: format_time(record.created_at),
        created_by: record.created_by.clone(),
    })
}

fn kpi_wire(record: &KpiRecord, monitoring: Option<&Monitoring>) -> api::KpiObservation {
    let limit = monitoring.and_then(|monitoring| {
        monitoring
            .kpis
            .iter()
            .find(|limit| limit.name == record.name)
    });
    api::KpiObservation {
        id: record.id,
        model: record.model.clone(),
        version: record.version,
        name: record.name.clone(),
        value: record.value,
        observed_at: format_time(record.observed_at),
        min: limit.and_then(|limit| limit.min),
        max: limit.and_then(|limit| limit.max),
        breaches: record.breaches.iter().map(breach_wire).collect(),
        recorded_by: record.recorded_by.clone(),
    }
}

fn record_model(record: &KpiRecord) -> Result<ModelName, ApiError> {
    ModelName::parse(&record.model).map_err(|error| ApiError::internal(&error))
}

pub(crate) fn stored(breaches: &[Breach]) -> Vec<StoredBreach> {
    breaches
        .iter()
        .map(|breach| StoredBreach {
            kind: breach.kind.to_owned(),
            action: breach.action.as_str().to_owned(),
            reason: breach.reason.clone(),
        })
        .collect()
}

/// What the breaches do together: the strongest action wins; every reason is kept.
pub(crate) fn effect_of(breaches: &[Breach]) -> BreachEffect {
    let reasons = |action: BreachAction| -> Option<String> {
        let matching: Vec<&str> = breaches
            .iter()
            .filter(|breach| breach.action == action)
            .map(|breach| breach.reason.as_str())
            .collect();
        (!matching.is_empty()).then(|| format!("by monitoring: {}", matching.join("; ")))
    };
    BreachEffect {
        suspend: reasons(BreachAction::Suspend).map(|reason| format!("suspended {reason}")),
        review: reasons(BreachAction::Review).map(|reason| format!("review due {reason}")),
    }
}

/// The policy's monitoring for a model's tier, or why there is none.
pub(crate) async fn monitoring_for(
    state: &AppState,
    tier: modelgate_core::RiskTier,
) -> Result<Option<Monitoring>, ApiError> {
    let in_force = crate::promotion::policy_in_force(state).await?;
    Ok(in_force.policy.monitoring.get(&tier).cloned())
}

pub(crate) fn parse_target(
    name: &str,
    number: &str,
) -> Result<(ModelName, VersionNumber), ApiError> {
    let name = ModelName::parse(name).map_err(|mut invalid| {
        invalid.field = "name";
        invalid
    })?;
    let number = VersionNumber::parse(number).map_err(|mut invalid| {
        invalid.field = "version";
        invalid
    })?;
    Ok((name, number))
}

#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/monitoring/batches", tag = "monitoring",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    request_body = api::PushMonitoringBatch,
    responses((status = 201, body = api::MonitoringBatch), (status = 400, body = api::ErrorBody),
              (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody),
              (status = 409, body = api::ErrorBody, description = "The version is not deployed, the policy does not monitor its tier, or there is no reference")))]
/// Push a batch of production inputs
///
/// The server compares the uploaded batch with the reference (the request's, the policy's, or the dataset
/// of the version's latest verified evaluation): PSI, Jensen–Shannon, normed Wasserstein and KS per numeric
/// feature, PSI, Jensen–Shannon and chi-square per categorical one, and dataset drift. A batch below the
/// policy's `min_batch_rows` is stored but not judged; a breach acts as the policy says, in the same
/// transaction (`notify`, `review`, `suspend`).
pub async fn push_batch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<api::PushMonitoringBatch>,
) -> Result<(StatusCode, Json<api::MonitoringBatch>), ApiError> {
    let (name, number, model, monitoring) =
        watched_target(&state, &caller, &name, &number, "monitoring.batch").await?;
    let digest = Digest::parse(&request.digest).map_err(|mut invalid| {
        invalid.field = "digest";
        invalid
    })?;
    let reference_name = match request.reference.clone().or(monitoring.reference.clone()) {
        Some(reference) => reference,
        None => latest_evaluation_dataset(&state, &name, number)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::FailedPrecondition,
                    format!(
                        "no reference to compare with: version {number} of {name} has no verified evaluation and the policy names no reference; pass --reference DATASET"
                    ),
                )
            })?,
    };
    let reference = state
        .store()
        .get_dataset(&reference_name)
        .await
        .map_err(|_| {
            ApiError::invalid(
                "reference",
                format!("reference: no dataset named {reference_name:?} is registered; `modelgate dataset list` shows them"),
            )
        })?;
    let schema: DatasetSchema =
        serde_json::from_str(&reference.schema_json).map_err(|error| ApiError::internal(&error))?;
    // The model's inputs and the sensitive attributes: a shift in who is scored matters as much.
    let mut compared: Vec<String> = schema.features.clone();
    for attribute in &schema.sensitive {
        if !compared.contains(attribute) {
            compared.push(attribute.clone());
        }
    }
    if compared.is_empty() {
        return Err(ApiError::invalid(
            "reference",
            format!(
                "reference: dataset {reference_name} declares no feature or sensitive columns to compare; register it with --features"
            ),
        ));
    }
    let reference_digest =
        Digest::parse(&reference.digest).map_err(|error| ApiError::internal(&error))?;
    let features: Vec<&str> = compared.iter().map(String::as_str).collect();
    let mut wanted = features.clone();
    let score_wanted = request
        .score_column
        .clone()
        .unwrap_or_else(|| super::outcomes::DEFAULT_SCORE_COLUMN.to_owned());
    for optional in [&request.label_column, &request.row_id_column]
        .into_iter()
        .flatten()
        .chain(std::iter::once(&score_wanted))
    {
        if !wanted.contains(&optional.as_str()) {
            wanted.push(optional);
        }
    }
    let batch = load_table(&state, &digest, "digest", Some(&wanted)).await?;
    let key = format!("{reference_digest}|{}", compared.join(","));
    let profiled = match state.cached_drift_reference(&key) {
        Some(profiled) => profiled,
        None => {
            let reference_table =
                load_table(&state, &reference_digest, "reference", Some(&features)).await?;
            let feature_names = compared.clone();
            let profiled = tokio::task::spawn_blocking(move || {
                Reference::new(&reference_table, &feature_names)
            })
            .await
            .map_err(|error| ApiError::internal(&error))?
            .map_err(|error| ApiError::invalid("reference", format!("reference: {error}")))?;
            let profiled = std::sync::Arc::new(profiled);
            state.keep_drift_reference(key, profiled.clone());
            profiled
        }
    };
    for (field, column) in [
        ("label_column", &request.label_column),
        ("row_id_column", &request.row_id_column),
        ("score_column", &request.score_column),
    ] {
        if let Some(column) = column
            && !batch.has_column(column)
        {
            return Err(ApiError::invalid(
                field,
                format!(
                    "{field}: the batch has no column {column:?}; it has {}",
                    batch.column_names().join(", ")
                ),
            ));
        }
    }
    // The scores are kept for outcomes joined later (when the batch has row ids) and needed now when it
    // has labels.
    let score_column = batch
        .has_column(&score_wanted)
        .then_some(score_wanted)
        .filter(|_| request.label_column.is_some() || request.row_id_column.is_some());
    if let Some(label) = &request.label_column
        && (score_column.as_ref() == Some(label)
            || request.row_id_column.as_ref() == Some(label)
            || compared.contains(label))
    {
        return Err(ApiError::invalid(
            "label_column",
            format!(
                "label_column: {label:?} is also the score, row id, feature or sensitive column; the labels are a column of their own"
            ),
        ));
    }
    if request.label_column.is_some() && score_column.is_none() {
        return Err(ApiError::invalid(
            "score_column",
            format!(
                "score_column: a batch with labels needs the model's scores to judge them, and it has no column {:?}; name the score column (--score-column)",
                super::outcomes::DEFAULT_SCORE_COLUMN
            ),
        ));
    }
    let batch = std::sync::Arc::new(batch);
    let settings = monitoring.drift;
    let compared_batch = batch.clone();
    let report = tokio::task::spawn_blocking(move || {
        profiled
            .compare(&compared_batch, &settings)
            .map(|report| (report, compared_batch.row_count()))
    })
    .await
    .map_err(|error| ApiError::internal(&error))?;
    let (report, rows) = report.map_err(|error| match error {
        modelgate_eval::drift::DriftError::Dataset(error) => dataset_error("digest", error),
        other => ApiError::invalid("reference", format!("reference: {other}")),
    })?;
    let rows = u64::try_from(rows).unwrap_or(u64::MAX);
    let mut judgment = monitoring.judge_drift(&report, rows);
    let mut report = serde_json::to_value(&report).map_err(|error| ApiError::internal(&error))?;
    if let (Some(label_column), Some(score_column)) = (&request.label_column, &score_column) {
        let baseline = super::outcomes::approving_baseline(&state, &name, number).await?;
        let (section, labelled) = super::outcomes::assess_off_runtime(
            baseline,
            monitoring.clone(),
            batch,
            label_column.clone(),
            score_column.clone(),
            "digest",
        )
        .await?;
        judgment.breaches.extend(labelled.breaches);
        if let Some(report) = report.as_object_mut() {
            report.insert("performance".to_owned(), section);
        }
    }
    let report_json =
        serde_json_canonicalizer::to_string(&report).map_err(|error| ApiError::internal(&error))?;
    let effect = effect_of(&judgment.breaches);
    let record = state
        .store()
        .record_monitoring_batch(
            &caller.attribution(state.now()),
            &NewBatch {
                model: name,
                version: number,
                digest,
                reference: reference_name,
                reference_digest,
                rows,
                label_column: request.label_column,
                row_id_column: request.row_id_column,
                score_column,
                judged: judgment.judged,
                report_digest: format!("sha256:{}", hex::encode(Sha256::digest(&report_json))),
                report_json,
                breaches: stored(&judgment.breaches),
            },
            &effect,
        )
        .await?;
    if effect.suspend.is_some() {
        reopen_after_suspension(
            &state,
            &model.name,
            number,
            &record.breaches,
            &format!("batch {}", record.id),
        )
        .await;
    }
    Ok((StatusCode::CREATED, Json(batch_wire(&record)?)))
}

/// The version an observation is about, once the caller may maintain its model (`action` is what a
/// denial records), it is deployed, and the policy watches its tier.
pub(crate) async fn watched_target(
    state: &AppState,
    caller: &Caller,
    name: &str,
    number: &str,
    action: &str,
) -> Result<(ModelName, VersionNumber, modelgate_core::Model, Monitoring), ApiError> {
    let (name, number) = parse_target(name, number)?;
    let model = maintained_model(state, caller, &name, action).await?;
    require_deployed(state, &name, number).await?;
    let monitoring = monitoring_for(state, model.risk_tier)
        .await?
        .ok_or_else(|| unmonitored(model.risk_tier))?;
    Ok((name, number, model, monitoring))
}

/// Monitoring is for deployed versions: refuses one in development or archived.
pub(crate) async fn require_deployed(
    state: &AppState,
    name: &ModelName,
    number: VersionNumber,
) -> Result<(), ApiError> {
    let version = state.store().get_version(name, number).await?;
    if !matches!(version.stage, Stage::Staging | Stage::Production) {
        return Err(ApiError::new(
            ErrorCode::FailedPrecondition,
            format!(
                "version {number} of {name} is in {}; monitoring is for deployed versions (staging or production)",
                version.stage
            ),
        ));
    }
    Ok(())
}

/// The refusal when the policy does not watch a tier.
pub(crate) fn unmonitored(tier: modelgate_core::RiskTier) -> ApiError {
    ApiError::new(
        ErrorCode::FailedPrecondition,
        format!(
            "the policy in force does not monitor tier {tier} (no [monitoring.{tier}] section); add one with `modelgate policy apply`"
        ),
    )
}

/// After a breach suspended a version: a re-validation request for its stage, whose approval (by the
/// tier's sign-offs) reinstates it. A failure to open one is logged; the suspension stands either way.
pub(crate) async fn reopen_after_suspension(
    state: &AppState,
    name: &ModelName,
    number: VersionNumber,
    breaches: &[StoredBreach],
    source: &str,
) {
    let reasons: Vec<&str> = breaches
        .iter()
        .filter(|breach| breach.action == BreachAction::Suspend.as_str())
        .map(|breach| breach.reason.as_str())
        .collect();
    let justification = format!(
        "re-validation after monitoring suspended the version ({source}): {}",
        reasons.join("; ")
    );
    let justification: String = justification.chars().take(crate::text::PROSE).collect();
    let attribution = modelgate_store::Attribution::system("monitoring", state.now());
    if let Err(error) =
        crate::promotion::open_revalidation(state, &attribution, name, number, &justification).await
    {
        tracing::warn!(model = %name, version = %number, error = %error.message, "could not open a re-validation request");
    }
}

/// The dataset of the version's latest counted evaluation: the evidence its approval was signed on.
async fn latest_evaluation_dataset(
    state: &AppState,
    name: &ModelName,
    number: VersionNumber,
) -> Result<Option<String>, ApiError> {
    let evaluations = state.store().evaluations_for_version(name, number).await?;
    Ok(evaluations
        .iter()
        .filter(|evaluation| evaluation.status == "counted")
        .max_by_key(|evaluation| evaluation.id)
        .map(|evaluation| evaluation.dataset.clone()))
}

/// Breaches a version summary lists.
const BREACHES_SHOWN: usize = 10;

/// A version's monitoring at a glance, for `version show`, the UI's model page and the card export;
/// `None` for a version never deployed and never watched.
pub(crate) async fn version_monitoring(
    state: &AppState,
    name: &ModelName,
    number: VersionNumber,
    stage: Stage,
    tier: modelgate_core::RiskTier,
) -> Result<Option<api::VersionMonitoring>, ApiError> {
    let store = state.store();
    let batches = store
        .list_monitoring_batches(name, Some(number), BATCHES_SHOWN)
        .await?;
    let outcomes = store
        .list_monitoring_outcomes(name, Some(number), BATCHES_SHOWN)
        .await?;
    let deployed = matches!(stage, Stage::Staging | Stage::Production);
    if !deployed && batches.is_empty() && outcomes.is_empty() {
        return Ok(None);
    }
    let monitoring = monitoring_for(state, tier).await?;
    let kpis = store.latest_kpis(name).await?;
    let mut breaches: Vec<(modelgate_core::Timestamp, api::SourcedBreach)> = Vec::new();
    let mut add = |source: String, at: modelgate_core::Timestamp, found: &[StoredBreach]| {
        for breach in found {
            breaches.push((
                at,
                api::SourcedBreach {
                    source: source.clone(),
                    at: format_time(at),
                    breach: breach_wire(breach),
                },
            ));
        }
    };
    for batch in &batches {
        add(
            format!("batch {}", batch.id),
            batch.created_at,
            &batch.breaches,
        );
    }
    for record in &outcomes {
        add(
            format!("outcomes {}", record.id),
            record.created_at,
            &record.breaches,
        );
    }
    let number_wire = i64::from(number.get());
    for kpi in &kpis {
        if kpi.version.is_none_or(|version| version == number_wire) {
            add(
                format!("KPI observation {}", kpi.id),
                kpi.recorded_at,
                &kpi.breaches,
            );
        }
    }
    breaches.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    Ok(Some(api::VersionMonitoring {
        monitored: monitoring.is_some(),
        latest_batch: batches.first().map(batch_wire).transpose()?,
        latest_outcomes: outcomes
            .first()
            .map(super::outcomes::outcomes_wire)
            .transpose()?,
        kpis: kpis
            .iter()
            .map(|kpi| kpi_wire(kpi, monitoring.as_ref()))
            .collect(),
        breaches: breaches
            .into_iter()
            .take(BREACHES_SHOWN)
            .map(|(_, breach)| breach)
            .collect(),
    }))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MonitoringQuery {
    /// Only this version's batches.
    #[serde(default)]
    #[param(minimum = 1)]
    pub version: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/models/{name}/monitoring", tag = "monitoring",
    params(("name" = String, Path, description = "Model name"), MonitoringQuery),
    responses((status = 200, body = api::MonitoringState), (status = 404, body = api::ErrorBody)))]
/// How a model is watched
///
/// The policy's monitoring for its tier, the latest batches (drift per feature, breaches and what was
/// done) and the latest value of each KPI against its bounds.
pub async fn get_monitoring(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<MonitoringQuery>,
) -> Result<Json<api::MonitoringState>, ApiError> {
    let name = ModelName::parse(&name)?;
    let model = state.store().get_model(&name).await?;
    let version = query
        .version
        .map(|number| VersionNumber::new(i64::from(number)))
        .transpose()?;
    let monitoring = monitoring_for(&state, model.risk_tier).await?;
    let batches = state
        .store()
        .list_monitoring_batches(&name, version, BATCHES_SHOWN)
        .await?;
    let outcomes = state
        .store()
        .list_monitoring_outcomes(&name, version, BATCHES_SHOWN)
        .await?;
    let kpis = state.store().latest_kpis(&name).await?;
    Ok(Json(api::MonitoringState {
        model: name.to_string(),
        risk_tier: model.risk_tier.to_wire(),
        monitored: monitoring.is_some(),
        min_batch_rows: monitoring
            .as_ref()
            .map(|monitoring| monitoring.min_batch_rows),
        on_drift: monitoring
            .as_ref()
            .map(|monitoring| monitoring.on_drift.as_str().to_owned()),
        batches: batches.iter().map(batch_wire).collect::<Result<_, _>>()?,
        outcomes: outcomes
            .iter()
            .map(super::outcomes::outcomes_wire)
            .collect::<Result<_, _>>()?,
        kpis: kpis
            .iter()
            .map(|kpi| kpi_wire(kpi, monitoring.as_ref()))
            .collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/models/{name}/kpis", tag = "monitoring",
    params(("name" = String, Path, description = "Model name")), request_body = api::RecordKpi,
    responses((status = 201, body = api::KpiObservation), (status = 400, body = api::ErrorBody),
              (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)))]
/// Record a KPI observation
///
/// Checked against the bounds the policy gives the KPI for the model's tier; a breach acts on the version
/// named, else on the version in production.
pub async fn record_kpi(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<api::RecordKpi>,
) -> Result<(StatusCode, Json<api::KpiObservation>), ApiError> {
    let name = ModelName::parse(&name)?;
    let model = maintained_model(&state, &caller, &name, "kpi.record").await?;
    // As given (the policy's `kpis` names it the same way): no trimming.
    let kpi_name = request.name.clone();
    if kpi_name.is_empty()
        || kpi_name.chars().count() > 64
        || kpi_name.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            "name",
            "name: a KPI's name is 1 to 64 printable characters",
        ));
    }
    if !request.value.is_finite() {
        return Err(ApiError::invalid("value", "value: must be a finite number"));
    }
    let now = state.now();
    let observed_at = match &request.at {
        Some(text) => Timestamp::parse_rfc3339(text).map_err(|mut invalid| {
            invalid.field = "at";
            invalid
        })?,
        None => now,
    };
    let version = request
        .version
        .map(|number| VersionNumber::new(i64::from(number)))
        .transpose()?;
    if let Some(number) = version {
        let known = state
            .store()
            .get_version(&name, number)
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::NotFound,
                    format!("version: {name} has no version {number}"),
                )
                .with_details(serde_json::json!({ "field": "version" }))
            })?;
        if !matches!(known.stage, Stage::Staging | Stage::Production) {
            return Err(ApiError::new(
                ErrorCode::FailedPrecondition,
                format!(
                    "version: version {number} of {name} is in {}; KPIs are about deployed versions (staging or production)",
                    known.stage
                ),
            ));
        }
    }
    let affected = match version {
        Some(number) => Some(number),
        None => state
            .store()
            .stage_occupants(&name, Stage::Production)
            .await?
            .first()
            .map(|occupant| occupant.version),
    };
    let monitoring = monitoring_for(&state, model.risk_tier).await?;
    let breaches: Vec<Breach> = monitoring
        .as_ref()
        .and_then(|monitoring| monitoring.judge_kpi(&kpi_name, request.value))
        .into_iter()
        .collect();
    let effect = effect_of(&breaches);
    let record = state
        .store()
        .record_kpi(
            &caller.attribution(now),
            &NewKpi {
                model: name,
                version,
                name: kpi_name,
                value: request.value,
                observed_at,
                breaches: stored(&breaches),
            },
            affected,
            &effect,
        )
        .await?;
    if let (Some(number), Some(_)) = (affected, &effect.suspend) {
        reopen_after_suspension(
            &state,
            &record_model(&record)?,
            number,
            &record.breaches,
            &format!("KPI observation {}", record.id),
        )
        .await;
    }
    Ok((
        StatusCode::CREATED,
        Json(kpi_wire(&record, monitoring.as_ref())),
    ))
}
