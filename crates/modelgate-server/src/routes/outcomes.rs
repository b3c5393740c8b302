//! Labelled production rows (issue 13): a batch pushed with its labels, or outcomes sent later and joined
//! by row id onto the version's batches. Either way the server evaluates the rows with the kernels and
//! settings of the evaluation the approval was signed on, and the policy's performance and fairness
//! limits judge the result against that evaluation.

use super::datasets::{dataset_error, load_table};
use super::monitoring::{effect_of, reopen_after_suspension, stored, watched_target};
use crate::auth::Caller;
use crate::convert::format_time;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use modelgate_api as api;
use modelgate_core::{Digest, ModelName, VersionNumber};
use modelgate_eval::dataset::{DatasetSchema, Table, Task};
use modelgate_eval::evaluate::{Settings, StoredResults};
use modelgate_eval::outcomes::{JoinBatch, join_outcomes};
use modelgate_policy::{Judgment, Monitoring};
use modelgate_store::{NewOutcomes, OutcomesRecord};
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// The batches outcomes may join onto: the version's newest ones with row ids.
const JOINED_BATCHES: u32 = 50;

/// Rows of batches held in memory for one join; older batches past it are not joined onto.
const JOINED_ROWS: usize = 2_000_000;

/// The most rows an outcomes file may hold.
const OUTCOME_ROWS: usize = 5_000_000;

/// The score column a batch is read with when the push names none.
pub(crate) const DEFAULT_SCORE_COLUMN: &str = "score";

/// What labelled rows are judged against: the approving evaluation's dataset schema (task, positive
/// label, sensitive attributes), its settings (threshold, bins, minimum group size) and its overall
/// metrics.
pub(crate) struct Baseline {
    evaluation: i64,
    schema: DatasetSchema,
    settings: Settings,
    overall: Vec<(&'static str, f64)>,
}

/// The evaluation the version's approval was signed on, as a baseline: its newest counted evaluation
/// made no later than the approval (so an evaluation run after the approval cannot lower the bar); the
/// newest counted one for a version without an approval. `None` when there is none.
pub(crate) async fn approving_baseline(
    state: &AppState,
    name: &ModelName,
    number: VersionNumber,
) -> Result<Option<Baseline>, ApiError> {
    let version = state.store().get_version(name, number).await?;
    let approved_at = version
        .approval
        .as_ref()
        .map(|approval| approval.approved_at);
    let evaluations = state.store().evaluations_for_version(name, number).await?;
    let Some(evaluation) = evaluations
        .iter()
        .filter(|evaluation| evaluation.status == "counted")
        .filter(|evaluation| approved_at.is_none_or(|at| evaluation.created_at <= at))
        .max_by_key(|evaluation| evaluation.id)
    else {
        return Ok(None);
    };
    let results = crate::promotion::evaluation_evidence(evaluation)?.results;
    let settings: Settings = serde_json::from_str(&evaluation.settings_json)
        .map_err(|error| ApiError::internal(&error))?;
    let dataset = state.store().get_dataset(&evaluation.dataset).await?;
    let schema: DatasetSchema =
        serde_json::from_str(&dataset.schema_json).map_err(|error| ApiError::internal(&error))?;
    Ok(Some(Baseline {
        evaluation: evaluation.id,
        schema,
        settings,
        overall: results.overall(),
    }))
}

/// Evaluates labelled rows (`label_column` and `score_column` of `table`, with whichever of the
/// baseline's sensitive attributes the table has) and judges them. Returns the report section stored
/// with the observation and the judgment; `field` names the request field errors in the data belong to.
pub(crate) fn assess(
    baseline: &Baseline,
    monitoring: &Monitoring,
    table: &Table,
    label_column: &str,
    score_column: &str,
    field: &str,
) -> Result<(serde_json::Value, Judgment), ApiError> {
    let rows = u64::try_from(table.row_count()).unwrap_or(u64::MAX);
    if baseline.schema.task == Task::Multiclass {
        let note = "multiclass labels are not compared after deployment yet: the rows are stored, not judged";
        let section = json!({ "evaluation": baseline.evaluation, "note": note });
        return Ok((
            section,
            Judgment {
                judged: false,
                note: Some(note.to_owned()),
                breaches: Vec::new(),
            },
        ));
    }
    let sensitive: Vec<String> = baseline
        .schema
        .sensitive
        .iter()
        .filter(|attribute| table.has_column(attribute))
        .cloned()
        .collect();
    let schema = DatasetSchema {
        label: label_column.to_owned(),
        sensitive: sensitive.clone(),
        weight: None,
        ..baseline.schema.clone()
    };
    let settings = Settings {
        score_column: score_column.to_owned(),
        bootstrap_resamples: 0,
        intersections: baseline
            .settings
            .intersections
            .iter()
            .filter(|(first, second)| sensitive.contains(first) && sensitive.contains(second))
            .cloned()
            .collect(),
        ..baseline.settings.clone()
    };
    let report = modelgate_eval::evaluate::evaluate(table, &schema, &settings, &|_| true)
        .map_err(|error| dataset_error(field, error))?;
    let current = StoredResults::parse(&report.to_string())
        .map_err(|error| ApiError::internal(&crate::promotion::Unreadable(error)))?;
    let judgment = monitoring.judge_outcomes(
        &baseline.overall,
        &current.overall(),
        current.fairness(),
        rows,
    );
    let baseline_metrics: serde_json::Map<String, serde_json::Value> = baseline
        .overall
        .iter()
        .map(|(metric, value)| ((*metric).to_owned(), json!(value)))
        .collect();
    let section = json!({
        "evaluation": baseline.evaluation,
        "baseline": baseline_metrics,
        "report": report,
        "settings": { "score_column": score_column, "label_column": label_column,
            "threshold": settings.threshold, "bins": settings.bins,
            "minimum_group_size": settings.minimum_group_size },
        "note": judgment.note,
    });
    Ok((section, judgment))
}

/// The report section and judgment of labelled rows, computed off the async runtime; without a
/// baseline, a note saying there is nothing to compare with.
pub(crate) async fn assess_off_runtime(
    baseline: Option<Baseline>,
    monitoring: Monitoring,
    table: std::sync::Arc<Table>,
    label_column: String,
    score_column: String,
    field: &'static str,
) -> Result<(serde_json::Value, Judgment), ApiError> {
    let Some(baseline) = baseline else {
        let note = "the version has no counted evaluation from before its approval to compare labelled rows with: stored, not judged";
        return Ok((
            json!({ "note": note }),
            Judgment {
                judged: false,
                note: Some(note.to_owned()),
                breaches: Vec::new(),
            },
        ));
    };
    tokio::task::spawn_blocking(move || {
        assess(
            &baseline,
            &monitoring,
            &table,
            &label_column,
            &score_column,
            field,
        )
    })
    .await
    .map_err(|error| ApiError::internal(&error))?
}

pub(crate) fn outcomes_wire(record: &OutcomesRecord) -> Result<api::MonitoringOutcomes, ApiError> {
    Ok(api::MonitoringOutcomes {
        id: record.id,
        model: record.model.clone(),
        version: record.version,
        digest: record.digest.clone(),
        row_id_column: record.row_id_column.clone(),
        label_column: record.label_column.clone(),
        rows: record.rows,
        matched: record.matched,
        unknown: record.unknown,
        duplicate: record.duplicate,
        judged: record.judged,
        report: serde_json::from_str(&record.report_json)
            .map_err(|error| ApiError::internal(&error))?,
        report_digest: record.report_digest.clone(),
        breaches: record
            .breaches
            .iter()
            .map(super::monitoring::breach_wire)
            .collect(),
        created_at: format_time(record.created_at),
        created_by: record.created_by.clone(),
    })
}

fn column_name(field: &'static str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.chars().count() > 256 || value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field}: a column name is 1 to 256 printable characters"),
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/monitoring/outcomes", tag = "monitoring",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    request_body = api::RecordOutcomes,
    responses((status = 201, body = api::MonitoringOutcomes), (status = 400, body = api::ErrorBody),
              (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody),
              (status = 409, body = api::ErrorBody, description = "The version is not deployed, the policy does not monitor its tier, or no batch of it carries row ids")))]
/// Record outcomes that arrived later
///
/// The uploaded file's row ids are joined onto the version's latest batches that carried row ids (the
/// newest batch wins where ids repeat); the joined rows are evaluated with the approving evaluation's
/// settings and judged by the policy's performance and fairness limits, acting as the policy says.
/// Row ids no batch carries are counted and the first few named in the report.
pub async fn record_outcomes(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<api::RecordOutcomes>,
) -> Result<(StatusCode, Json<api::MonitoringOutcomes>), ApiError> {
    let (name, number, model, monitoring) =
        watched_target(&state, &caller, &name, &number, "monitoring.outcomes").await?;
    column_name("row_id_column", &request.row_id_column)?;
    column_name("label_column", &request.label_column)?;
    if request.row_id_column == request.label_column {
        return Err(ApiError::invalid(
            "label_column",
            "label_column: must differ from row_id_column",
        ));
    }
    let digest = Digest::parse(&request.digest).map_err(|mut invalid| {
        invalid.field = "digest";
        invalid
    })?;
    let outcomes = load_table(
        &state,
        &digest,
        "digest",
        Some(&[
            request.row_id_column.as_str(),
            request.label_column.as_str(),
        ]),
    )
    .await?;
    if outcomes.row_count() > OUTCOME_ROWS {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "digest: the outcomes file has {} rows, more than the {OUTCOME_ROWS} one request joins; split it",
                outcomes.row_count()
            ),
        )
        .with_details(json!({ "field": "digest" })));
    }
    for (field, column) in [
        ("row_id_column", &request.row_id_column),
        ("label_column", &request.label_column),
    ] {
        if !outcomes.has_column(column) {
            return Err(ApiError::invalid(
                field,
                format!(
                    "{field}: the outcomes file has no column {column:?}; it has {}",
                    outcomes.column_names().join(", ")
                ),
            ));
        }
    }
    let records = state
        .store()
        .batches_with_row_ids(&name, number, JOINED_BATCHES)
        .await?;
    let scored: Vec<_> = records
        .iter()
        .filter(|record| record.score_column.is_some())
        .collect();
    if scored.is_empty() {
        return Err(ApiError::new(
            ErrorCode::FailedPrecondition,
            format!(
                "no batch of version {number} of {name} carries row ids and scores to join outcomes onto; push batches with --row-id-column and a score column (--score-column, default {DEFAULT_SCORE_COLUMN})"
            ),
        ));
    }
    let baseline = approving_baseline(&state, &name, number).await?;
    let sensitive: Vec<String> = baseline
        .as_ref()
        .map(|baseline| baseline.schema.sensitive.clone())
        .unwrap_or_default();
    // Newest first from the store; held within JOINED_ROWS, then joined oldest first so newer rows win.
    let mut tables: Vec<(i64, Table, String, String)> = Vec::new();
    let mut held = 0usize;
    for record in scored {
        let (Some(row_ids), Some(score)) = (&record.row_id_column, &record.score_column) else {
            continue;
        };
        // The stored row count, before loading: no batch takes the join past its budget (the newest
        // batch always joins, it was judged within the server's dataset limits).
        let rows = usize::try_from(record.rows).unwrap_or(usize::MAX);
        if !tables.is_empty() && held.saturating_add(rows) > JOINED_ROWS {
            break;
        }
        let batch_digest =
            Digest::parse(&record.digest).map_err(|error| ApiError::internal(&error))?;
        let mut wanted: Vec<&str> = vec![row_ids.as_str(), score.as_str()];
        wanted.extend(sensitive.iter().map(String::as_str));
        let table = load_table(&state, &batch_digest, "digest", Some(&wanted)).await?;
        held += table.row_count();
        tables.push((record.id, table, row_ids.clone(), score.clone()));
    }
    // The score joins under the newest batch's name for it; older batches that named it otherwise get
    // a copy under that name.
    let score_column = tables
        .first()
        .map(|(_, _, _, score)| score.clone())
        .unwrap_or_else(|| DEFAULT_SCORE_COLUMN.to_owned());
    if request.label_column == score_column || sensitive.contains(&request.label_column) {
        return Err(ApiError::invalid(
            "label_column",
            format!(
                "label_column: {:?} is also a column the batches carry (their score or a sensitive attribute); rename the outcomes file's label column",
                request.label_column
            ),
        ));
    }
    for (id, table, _, score) in &mut tables {
        if *score != score_column {
            let scores = table
                .numbers(score)
                .map_err(|mut error| {
                    error.message = format!("batch {id}: {}", error.message);
                    dataset_error("digest", error)
                })?
                .to_vec();
            table.set_numbers(&score_column, scores);
        }
    }
    tables.reverse();
    // The sensitive attributes every joined batch carries.
    let carried_sensitive: Vec<&str> = sensitive
        .iter()
        .map(String::as_str)
        .filter(|attribute| {
            tables
                .iter()
                .all(|(_, table, _, _)| table.has_column(attribute))
        })
        .collect();
    let mut carried = vec![score_column.clone()];
    carried.extend(
        carried_sensitive
            .iter()
            .map(|attribute| (*attribute).to_owned()),
    );
    let batch_ids: Vec<i64> = tables.iter().map(|(id, _, _, _)| *id).collect();
    let (row_id_column, label_column) =
        (request.row_id_column.clone(), request.label_column.clone());
    // Hashing millions of ids is CPU work: off the async runtime.
    let joined = tokio::task::spawn_blocking(move || {
        let batches: Vec<JoinBatch<'_>> = tables
            .iter()
            .map(|(_, table, row_ids, _)| JoinBatch {
                table,
                row_id_column: row_ids,
            })
            .collect();
        let carried: Vec<&str> = carried.iter().map(String::as_str).collect();
        join_outcomes(&batches, &outcomes, &row_id_column, &label_column, &carried)
    })
    .await
    .map_err(|error| ApiError::internal(&error))?
    .map_err(|error| dataset_error("digest", error))?;

    let counts = (
        joined.outcome_rows,
        joined.matched,
        joined.unknown,
        joined.duplicate,
    );
    let unknown_ids = joined.unknown_ids.clone();
    let (mut section, judgment) = assess_off_runtime(
        baseline,
        monitoring,
        std::sync::Arc::new(joined.table),
        request.label_column.clone(),
        score_column,
        "digest",
    )
    .await?;
    if let Some(object) = section.as_object_mut() {
        object.insert("batches".to_owned(), json!(batch_ids));
        object.insert("unknown_row_ids".to_owned(), json!(unknown_ids));
    }
    let report_json = serde_json_canonicalizer::to_string(&section)
        .map_err(|error| ApiError::internal(&error))?;
    let effect = effect_of(&judgment.breaches);
    let as_u64 = |count: usize| u64::try_from(count).unwrap_or(u64::MAX);
    let record = state
        .store()
        .record_monitoring_outcomes(
            &caller.attribution(state.now()),
            &NewOutcomes {
                model: name,
                version: number,
                digest,
                row_id_column: request.row_id_column,
                label_column: request.label_column,
                rows: as_u64(counts.0),
                matched: as_u64(counts.1),
                unknown: as_u64(counts.2),
                duplicate: as_u64(counts.3),
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
            &format!("outcomes {}", record.id),
        )
        .await;
    }
    Ok((StatusCode::CREATED, Json(outcomes_wire(&record)?)))
}
