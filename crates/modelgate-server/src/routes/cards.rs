//! Model cards over HTTP: the schema, a version's card (each write a new revision), its revisions, and
//! field-level diffs between revisions or against another version (the one in production, say).

use super::models::maintained_model;
use crate::auth::Caller;
use crate::convert::format_time;
use crate::error::{ApiError, ErrorCode};
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
        ApiError::new(
            ErrorCode::Internal,
            format!("stored card no longer parses: {}", problems[0].message),
        )
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
    let request: api::SetModelCard = serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!("malformed JSON body: {error}"),
        )
        .with_details(json!({ "field": "body" }))
    })?;
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
    let revision = state
        .store()
        .set_card(
            &caller.attribution(state.now()),
            &name,
            number,
            &modelgate_card::digest(&card),
            &content,
            request.message.as_deref(),
        )
        .await?;
    Ok(Json(revision_wire(&state, &name, number, &revision).await?))
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/card/revisions", tag = "cards",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, body = api::CardRevisionList)))]
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
            ApiError::new(
                ErrorCode::Internal,
                format!("stored card no longer parses: {}", problems[0].message),
            )
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
