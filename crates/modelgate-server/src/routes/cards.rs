//! Model cards over HTTP: the schema, a version's card (each write a new revision), its revisions, and
//! field-level diffs between revisions or against another version (the one in production, say).

use super::models::maintained_model;
use crate::auth::Caller;
use crate::convert::format_time;
use crate::error::{ApiError, ErrorCode, InternalError};
use crate::extract::{ApiPath, ApiQuery};
use crate::promotion::policy_in_force;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use modelgate_api as api;
use modelgate_core::{ModelName, Stage, VersionNumber};
use modelgate_store::CardRevision;
use serde_json::json;

/// Cards larger than this are refused (a card is prose, not data).
pub const MAX_CARD_BYTES: usize = 1024 * 1024;

#[utoipa::path(get, path = "/api/v1/schemas/model-card.json", tag = "cards", security(()),
    responses((status = 200, description = "The JSON Schema (2020-12) of model cards")))]
/// The model card JSON Schema
///
/// The canonical card schema (JSON Schema 2020-12) that `PUT …/card` validates against.
pub async fn get_card_schema() -> Json<serde_json::Value> {
    Json(modelgate_card::json_schema())
}

fn parse_path(name: &str, number: &str) -> Result<(ModelName, VersionNumber), ApiError> {
    Ok((ModelName::parse(name)?, VersionNumber::parse(number)?))
}

async fn revision_wire(
    state: &AppState,
    name: &ModelName,
    number: VersionNumber,
    revision: &CardRevision,
) -> Result<api::ModelCardRevision, ApiError> {
    let card = modelgate_card::parse(&revision.content).map_err(|problems| {
        ApiError::internal(&InternalError(format!(
            "stored card no longer parses: {}",
            problems[0].message
        )))
    })?;
    let model = state.store().get_model(name).await?;
    let in_force = policy_in_force(state).await?;
    let required = in_force
        .policy
        .card_requirements
        .get(&model.risk_tier)
        .cloned()
        .unwrap_or_default();
    let missing = modelgate_card::missing(&card, &required);
    Ok(api::ModelCardRevision {
        model: name.to_string(),
        version: number.get(),
        revision: revision.revision,
        digest: revision.digest.clone(),
        author: revision.author.clone(),
        created_at: format_time(revision.created_at),
        message: revision.message.clone(),
        card: serde_json::to_value(&card).map_err(|error| ApiError::internal(&error))?,
        complete: missing.is_empty(),
        missing,
    })
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/card", tag = "cards",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, body = api::ModelCardRevision), (status = 404, body = api::ErrorBody)))]
/// A version's current model card
///
/// The latest card revision with its completeness for the model's risk tier: the fields the policy requires
/// that are still missing.
pub async fn get_card(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> Result<Json<api::ModelCardRevision>, ApiError> {
    let (name, number) = parse_path(&name, &number)?;
    state.store().get_version(&name, number).await?;
    let revision = state.store().latest_card(&name, number).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("version {number} of {name} has no model card yet; write one with `modelgate card set`"),
        )
    })?;
    Ok(Json(revision_wire(&state, &name, number, &revision).await?))
}

#[utoipa::path(put, path = "/api/v1/models/{name}/versions/{version}/card", tag = "cards",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    request_body = api::SetModelCard,
    responses((status = 200, body = api::ModelCardRevision),
              (status = 400, body = api::ErrorBody, description = "`details.problems` lists `{path, message}`"),
              (status = 413, body = api::ErrorBody)))]
/// Write a new card revision
///
/// Validates the card (problems name their paths) and records it as a new immutable revision; it changes
/// the version's evidence, so sign-offs given before no longer count. Refused while the version's approval
/// freezes its evidence.
pub async fn set_card(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
    body: axum::body::Body,
) -> Result<Json<api::ModelCardRevision>, ApiError> {
    let (name, number) = parse_path(&name, &number)?;
    // Read at most the limit (plus the JSON wrapper's few bytes); anything longer is refused unread.
    let body = axum::body::to_bytes(body, MAX_CARD_BYTES + 4096)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the card is larger than the limit of {MAX_CARD_BYTES} bytes"),
            )
            .with_details(json!({ "limit_bytes": MAX_CARD_BYTES }))
        })?;
    let request: api::SetModelCard = crate::extract::json_body(&body)?;
    crate::text::check_optional_length("message", request.message.as_deref(), crate::text::SHORT)?;
    maintained_model(&state, &caller, &name, "card.set").await?;
    let card = modelgate_card::parse(&request.card.to_string()).map_err(|problems| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!(
                "the card does not follow the schema ({} problems; the first: {}: {})",
                problems.len(),
                problems[0].path,
                problems[0].message
            ),
        )
        .with_details(json!({ "field": "card", "problems": problems }))
    })?;
    let content =
        serde_json_canonicalizer::to_string(&card).map_err(|error| ApiError::internal(&error))?;
    if content.len() > MAX_CARD_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the card is {} bytes; cards are limited to {MAX_CARD_BYTES} bytes",
                content.len()
            ),
        )
        .with_details(json!({ "limit_bytes": MAX_CARD_BYTES })));
    }
    let frozen = crate::promotion::frozen_evidence_stages(&state).await?;
    let revision = state
        .store()
        .set_card(
            &caller.attribution(state.now()),
            &name,
            number,
            &modelgate_card::digest(&card),
            &content,
            request.message.as_deref(),
            &frozen,
        )
        .await?;
    crate::promotion::recheck_open_requests(&state, &name, number).await;
    Ok(Json(revision_wire(&state, &name, number, &revision).await?))
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/card/revisions", tag = "cards",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, body = api::CardRevisionList)))]
/// A version's card revisions
///
/// Every revision, oldest first, with author, message and digest.
pub async fn list_card_revisions(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> Result<Json<api::CardRevisionList>, ApiError> {
    let (name, number) = parse_path(&name, &number)?;
    let revisions = state.store().card_revisions(&name, number).await?;
    Ok(Json(api::CardRevisionList {
        revisions: revisions
            .iter()
            .map(|revision| api::CardRevisionSummary {
                revision: revision.revision,
                digest: revision.digest.clone(),
                author: revision.author.clone(),
                created_at: format_time(revision.created_at),
                message: revision.message.clone(),
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/card/diff", tag = "cards",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"), api::CardDiffQuery),
    responses((status = 200, body = api::CardDiff), (status = 404, body = api::ErrorBody)))]
/// Compare two card revisions
///
/// Field-level changes between this version's card and another version's (`against` is a version number or
/// a stage).
pub async fn diff_card(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<api::CardDiffQuery>,
) -> Result<Json<api::CardDiff>, ApiError> {
    let (name, number) = parse_path(&name, &number)?;
    let revisions = state.store().card_revisions(&name, number).await?;
    let Some(latest) = revisions.last() else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("version {number} of {name} has no model card yet"),
        ));
    };
    let label = |version: VersionNumber, revision: &CardRevision| {
        format!("{name} v{version} r{}", revision.revision)
    };
    let empty = CardRevision {
        revision: 0,
        digest: String::new(),
        content: "{}".to_owned(),
        author: String::new(),
        message: None,
        created_at: latest.created_at,
    };
    let (base_label, base) = match query.against.as_deref() {
        None => {
            let previous = revisions
                .len()
                .checked_sub(2)
                .map_or(&empty, |index| &revisions[index]);
            (label(number, previous), previous.clone())
        }
        Some(against) => {
            let other = if against == "production" {
                let occupants = state
                    .store()
                    .stage_occupants(&name, Stage::Production)
                    .await?;
                occupants
                    .first()
                    .map(|occupant| occupant.version)
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::NotFound,
                            format!("{name} has no version in production"),
                        )
                    })?
            } else {
                VersionNumber::parse(against).map_err(|mut invalid| {
                    invalid.field = "against";
                    invalid
                })?
            };
            let revision = state
                .store()
                .latest_card(&name, other)
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::NotFound,
                        format!("version {other} of {name} has no model card"),
                    )
                })?;
            (label(other, &revision), revision)
        }
    };
    let parse = |revision: &CardRevision| {
        modelgate_card::parse(&revision.content).map_err(|problems| {
            ApiError::internal(&InternalError(format!(
                "stored card no longer parses: {}",
                problems[0].message
            )))
        })
    };
    let changes = modelgate_card::diff(&parse(&base)?, &parse(latest)?);
    Ok(Json(api::CardDiff {
        from: base_label,
        to: label(number, latest),
        changes: changes
            .into_iter()
            .map(|change| api::CardFieldChange {
                path: change.path,
                before: change.before,
                after: change.after,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/card/import", tag = "cards",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"), api::CardFormatQuery),
    request_body(content = String, description = "A Hugging Face README.md (`hf`) or a Model Card Toolkit JSON document (`mct`)"),
    responses((status = 200, body = api::CardImport), (status = 400, body = api::ErrorBody)))]
/// Import a card from Hugging Face or Model Card Toolkit
///
/// Maps a Hugging Face README (YAML front matter and standard headings) or a Model Card Toolkit JSON to the
/// canonical card, stores it as a new revision and reports what went where.
pub async fn import_card(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<api::CardFormatQuery>,
    body: axum::body::Body,
) -> Result<Json<api::CardImport>, ApiError> {
    let (name, number) = parse_path(&name, &number)?;
    let bytes = axum::body::to_bytes(body, MAX_CARD_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the document is larger than the limit of {MAX_CARD_BYTES} bytes"),
            )
            .with_details(json!({ "limit_bytes": MAX_CARD_BYTES }))
        })?;
    let source = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::invalid("body", "body: the document must be UTF-8 text"))?;
    maintained_model(&state, &caller, &name, "card.set").await?;
    let imported = match query.format.as_str() {
        "hf" => modelgate_card::formats::import_hugging_face(&source),
        "mct" => modelgate_card::formats::import_model_card_toolkit(&source),
        other => {
            return Err(ApiError::invalid(
                "format",
                format!("format: import reads hf or mct, not {other:?}"),
            ));
        }
    }
    .map_err(|error| {
        let position = match (error.line, error.column) {
            (Some(line), Some(column)) => format!("line {line}, column {column}: "),
            _ => String::new(),
        };
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!("{position}{}", error.message),
        )
        .with_details(json!({ "field": "body", "line": error.line, "column": error.column }))
    })?;
    let problems = modelgate_card::validate(&imported.card);
    if !problems.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!(
                "the imported card does not follow the schema: {}: {}",
                problems[0].path, problems[0].message
            ),
        )
        .with_details(json!({ "field": "body", "problems": problems })));
    }
    let content = serde_json_canonicalizer::to_string(&imported.card)
        .map_err(|error| ApiError::internal(&error))?;
    crate::text::check_optional_length("message", query.message.as_deref(), crate::text::SHORT)?;
    let message = query
        .message
        .unwrap_or_else(|| format!("imported from {}", query.format));
    let frozen = crate::promotion::frozen_evidence_stages(&state).await?;
    let revision = state
        .store()
        .set_card(
            &caller.attribution(state.now()),
            &name,
            number,
            &modelgate_card::digest(&imported.card),
            &content,
            Some(&message),
            &frozen,
        )
        .await?;
    crate::promotion::recheck_open_requests(&state, &name, number).await;
    Ok(Json(api::CardImport {
        revision: revision_wire(&state, &name, number, &revision).await?,
        report: imported
            .report
            .into_iter()
            .map(|mapping| api::ImportMapping {
                from: mapping.from,
                to: mapping.to,
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/card/export", tag = "cards",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"), api::CardFormatQuery),
    responses((status = 200, description = "The card as a Hugging Face README, Model Card Toolkit JSON, Markdown or HTML"),
              (status = 404, body = api::ErrorBody)))]
/// Export a card
///
/// As a Hugging Face README, Model Card Toolkit JSON, Markdown or HTML, with the server's verified
/// evaluation numbers (and how they were obtained) next to the claimed ones and the sign-offs.
pub async fn export_card(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<api::CardFormatQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let (name, number) = parse_path(&name, &number)?;
    let version = state.store().get_version(&name, number).await?;
    let revision = state
        .store()
        .latest_card(&name, number)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("version {number} of {name} has no model card yet"),
            )
        })?;
    let card = modelgate_card::parse(&revision.content).map_err(|problems| {
        ApiError::internal(&InternalError(format!(
            "stored card no longer parses: {}",
            problems[0].message
        )))
    })?;
    // The signatures of the approval that put the version in its stage, once it is approved.
    let mut signatures = Vec::new();
    if let Some(approval) = &version.approval {
        let detail = state.store().get_request(approval.request_id).await?;
        for review in detail
            .reviews
            .iter()
            .filter(|review| review.decision == modelgate_core::promotion::ReviewDecision::Approve)
        {
            signatures.push(modelgate_card::formats::Signature {
                printed_name: review.printed_name.clone(),
                role: review.role.to_string(),
                meaning: review.meaning.clone().unwrap_or_default(),
                signed_at: format_time(review.created_at),
            });
        }
    }
    // The metrics the server computed for this version join the card's claimed ones, marked verified.
    let model = state.store().get_model(&name).await?;
    let version = state.store().get_version(&name, number).await?;
    let in_force = crate::promotion::policy_in_force(&state).await?;
    let evidence =
        crate::promotion::version_evidence(&state, &model, &version, &in_force.policy).await?;
    let mut card = card;
    card.metrics.extend(verified_metrics(&evidence));
    let monitoring = super::monitoring::version_monitoring(
        &state,
        &name,
        number,
        version.stage,
        model.risk_tier,
    )
    .await?;
    let extra: Vec<modelgate_card::formats::ExtraSection> = monitoring
        .as_ref()
        .map(|monitoring| monitoring_section(monitoring, &version))
        .into_iter()
        .collect();
    let (content_type, body) = match query.format.as_str() {
        "hf" => (
            "text/markdown; charset=utf-8",
            modelgate_card::formats::export_hugging_face(&card),
        ),
        "mct" => (
            "application/json",
            serde_json::to_string_pretty(&modelgate_card::formats::export_model_card_toolkit(
                &card,
            ))
            .map_err(|error| ApiError::internal(&error))?,
        ),
        "markdown" => (
            "text/markdown; charset=utf-8",
            modelgate_card::formats::render_markdown(&card, &signatures, &extra),
        ),
        "html" => (
            "text/html; charset=utf-8",
            modelgate_card::formats::render_html(&card, &signatures, &extra),
        ),
        other => {
            return Err(ApiError::invalid(
                "format",
                format!("format: export writes hf, mct, markdown or html, not {other:?}"),
            ));
        }
    };
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response())
}

/// The card export's section on the version after deployment: the last batch with its drifted
/// features, the last outcomes, the KPIs against their bounds, the recent breaches and what they did.
fn monitoring_section(
    monitoring: &api::VersionMonitoring,
    version: &modelgate_core::Version,
) -> modelgate_card::formats::ExtraSection {
    let number = |value: &serde_json::Value| {
        value["value"]
            .as_f64()
            .map_or_else(|| "undefined".to_owned(), |number| format!("{number:.4}"))
    };
    let mut items = Vec::new();
    if !monitoring.monitored {
        items.push("The policy in force does not watch this tier.".to_owned());
    }
    // What was done stays at the top, whatever happened since.
    if let Some(reason) = &version.suspension {
        items.push(format!("Suspended: {reason}"));
    }
    if let Some(reason) = &version.approval_review_reason {
        items.push(format!("Approval review due: {reason}"));
    }
    match &monitoring.latest_batch {
        None => items.push("No production batch has been judged yet.".to_owned()),
        Some(batch) => {
            let dataset = &batch.report["dataset"];
            items.push(format!(
                "Last batch {} ({}): {} rows against {} ({}), drift share {}{}",
                batch.id,
                batch.created_at,
                batch.rows,
                batch.reference,
                batch.reference_digest,
                number(&dataset["drift_share"]),
                if !batch.judged {
                    ", not judged (below min_batch_rows)"
                } else if dataset["drifted"].as_bool() == Some(true) {
                    ", dataset drifted"
                } else {
                    ", no dataset drift"
                }
            ));
            if let Some(features) = batch.report["features"].as_object() {
                for (name, drift) in features {
                    items.push(format!(
                        "Feature {name}: PSI {}, Jensen–Shannon {}{}",
                        number(&drift["psi"]),
                        number(&drift["jensen_shannon"]),
                        if drift["drifted"].as_bool() == Some(true) {
                            " — drifted"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
    }
    if let Some(outcomes) = &monitoring.latest_outcomes {
        items.push(format!(
            "Last outcomes {} ({}): {} of {} rows joined, {} unknown row ids{}",
            outcomes.id,
            outcomes.created_at,
            outcomes.matched,
            outcomes.rows,
            outcomes.unknown,
            if outcomes.judged { "" } else { ", not judged" }
        ));
    }
    for kpi in &monitoring.kpis {
        items.push(format!(
            "KPI {} = {} ({}){}",
            kpi.name,
            kpi.value,
            kpi.observed_at,
            if kpi.breaches.is_empty() {
                ""
            } else {
                " — outside its bounds"
            }
        ));
    }
    for sourced in &monitoring.breaches {
        items.push(format!(
            "Breach ({}, {}, {}): {}",
            sourced.source, sourced.breach.action, sourced.at, sourced.breach.reason
        ));
    }
    modelgate_card::formats::ExtraSection {
        heading: "Monitoring after deployment".to_owned(),
        items,
    }
}

/// The headline numbers of a version's latest evaluation on each dataset, as verified card metrics with
/// the mode they were obtained in: the overall metrics (with the bootstrap interval where there is one,
/// and the row count), and each sensitive attribute's fairness differences and ratios (the attribute as
/// the slice).
fn verified_metrics(evidence: &modelgate_policy::Evidence) -> Vec<modelgate_card::Metric> {
    let mut metrics = Vec::new();
    for (dataset, evaluation) in evidence.latest_by_dataset() {
        let results = &evaluation.results;
        let intervals = match &results.report {
            modelgate_eval::evaluate::Report::Binary(report) => Some(&report.intervals),
            _ => None,
        };
        let interval = |name: &str| {
            intervals
                .and_then(|intervals| intervals.get(name))
                .map(|interval| [interval.low, interval.high])
        };
        let overall = results.overall();
        let count = overall
            .iter()
            .find(|(name, _)| *name == "count")
            .map(|(_, count)| *count as u64);
        let metric =
            |name: &str, slice: Option<String>, value: f64, interval| modelgate_card::Metric {
                dataset: dataset.to_owned(),
                metric: name.to_owned(),
                slice,
                value,
                interval,
                sample_size: count,
                verified: true,
                method: Some(evaluation.mode.as_str().to_owned()),
            };
        for (name, value) in overall.iter().filter(|(name, _)| *name != "count") {
            metrics.push(metric(name, None, *value, interval(name)));
        }
        for (attribute, fairness) in results.fairness().into_iter().flatten() {
            for (name, value) in fairness.defined() {
                let interval = interval(&format!("{attribute}.{name}"));
                metrics.push(metric(name, Some(attribute.clone()), value, interval));
            }
        }
    }
    metrics
}
