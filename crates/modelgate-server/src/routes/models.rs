//! `/api/v1/models`: register, read, list, update, tag and archive models.

use crate::auth::Caller;
use crate::convert::{self, Wire, decode_cursor, encode_cursor, parse_tag_filter, parse_tags};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::text;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use modelgate_api as api;
use modelgate_core::access::{may_change_governance, may_maintain_model};
use modelgate_core::{
    InvalidInput, Model, ModelFilter, ModelName, NewModel, PageRequest, RiskTier, Stage, TagKey,
    Username,
};
use modelgate_store::ModelUpdate;

/// Reads a model and checks that the caller may maintain it; a denial of `action` is recorded.
pub(crate) async fn maintained_model(
    state: &AppState,
    caller: &Caller,
    name: &ModelName,
    action: &str,
) -> Result<Model, ApiError> {
    let model = state.store().get_model(name).await?;
    let decision = may_maintain_model(caller.user(), &model);
    state
        .authorize(caller, action, &format!("model/{name}"), decision)
        .await?;
    Ok(model)
}

/// A username given as a model's owner; errors name the `owner` field.
fn parse_owner(text: &str) -> Result<Username, InvalidInput> {
    Username::parse(text).map_err(|mut invalid| {
        invalid.field = "owner";
        invalid
    })
}

#[utoipa::path(post, path = "/api/v1/models", tag = "models",
    request_body = api::CreateModelRequest,
    responses((status = 201, body = api::Model), (status = 400, body = api::ErrorBody), (status = 409, body = api::ErrorBody)))]
/// Register a model
///
/// A named, owned model with a risk tier; the tier decides which gates its versions pass through.
pub async fn create_model(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::CreateModelRequest>,
) -> Result<(StatusCode, Json<api::Model>), ApiError> {
    let owner = match &request.owner {
        Some(owner) => parse_owner(owner)?,
        None => caller.user().username.clone(),
    };
    text::check_length("description", &request.description, text::DESCRIPTION)?;
    text::check_length("intended_use", &request.intended_use, text::DESCRIPTION)?;
    let new_model = NewModel {
        name: ModelName::parse(&request.name)?,
        owner,
        risk_tier: RiskTier::from_wire(request.risk_tier),
        description: request.description,
        intended_use: request.intended_use,
        tags: parse_tags(&request.tags)?,
    };
    let model = state
        .store()
        .create_model(&caller.attribution(state.now()), &new_model)
        .await?;
    Ok((StatusCode::CREATED, Json(convert::model(&model))))
}

#[utoipa::path(get, path = "/api/v1/models/{name}", tag = "models",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, body = api::Model), (status = 404, body = api::ErrorBody)))]
/// A model
///
/// Its owner, risk tier, description, tags and version count.
pub async fn get_model(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<api::Model>, ApiError> {
    let model = state.store().get_model(&ModelName::parse(&name)?).await?;
    Ok(Json(convert::model(&model)))
}

#[utoipa::path(get, path = "/api/v1/models", tag = "models", params(api::ListModelsQuery),
    responses((status = 200, body = api::ModelList)))]
/// List models
///
/// Filtered by name prefix, owner, risk tier, stage held and tag, paged by `cursor`.
pub async fn list_models(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<api::ListModelsQuery>,
) -> Result<Json<api::ModelList>, ApiError> {
    let filter = ModelFilter {
        name_prefix: query.name_prefix,
        owner: query.owner.as_deref().map(Username::parse).transpose()?,
        risk_tier: query.risk_tier.map(RiskTier::from_wire),
        stage: query.stage.map(Stage::from_wire),
        tag: query.tag.as_deref().map(parse_tag_filter).transpose()?,
        include_archived: query.include_archived.unwrap_or(false),
    };
    let mut page = PageRequest::first(
        query
            .limit
            .unwrap_or(PageRequest::<ModelName>::DEFAULT_LIMIT),
    );
    if let Some(cursor) = &query.cursor {
        page.after = Some(ModelName::parse(&decode_cursor(cursor)?).map_err(|_| {
            ApiError::invalid("cursor", "cursor: not a cursor this server returned")
        })?);
    }
    let result = state.store().list_models(&filter, &page).await?;
    Ok(Json(api::ModelList {
        models: result.items.iter().map(convert::model).collect(),
        next_cursor: result.next_after.map(|name| encode_cursor(name.as_str())),
    }))
}

#[utoipa::path(patch, path = "/api/v1/models/{name}", tag = "models",
    params(("name" = String, Path, description = "Model name")),
    request_body = api::UpdateModelRequest,
    responses((status = 200, body = api::Model), (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)))]
/// Change a model
///
/// Description and intended use by its maintainers; owner and risk tier by an admin only.
pub async fn update_model(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<api::UpdateModelRequest>,
) -> Result<Json<api::Model>, ApiError> {
    let name = ModelName::parse(&name)?;
    maintained_model(&state, &caller, &name, "model.update").await?;
    if request.owner.is_some() || request.risk_tier.is_some() {
        let decision = may_change_governance(caller.user());
        state
            .authorize(&caller, "model.update", &format!("model/{name}"), decision)
            .await?;
    }
    text::check_optional_length(
        "description",
        request.description.as_deref(),
        text::DESCRIPTION,
    )?;
    text::check_optional_length(
        "intended_use",
        request.intended_use.as_deref(),
        text::DESCRIPTION,
    )?;
    let update = ModelUpdate {
        description: request.description,
        intended_use: request.intended_use,
        owner: request.owner.as_deref().map(parse_owner).transpose()?,
        risk_tier: request.risk_tier.map(RiskTier::from_wire),
    };
    let model = state
        .store()
        .update_model(&caller.attribution(state.now()), &name, &update)
        .await?;
    Ok(Json(convert::model(&model)))
}

#[utoipa::path(put, path = "/api/v1/models/{name}/tags/{key}", tag = "models",
    params(("name" = String, Path, description = "Model name"), ("key" = String, Path, description = "Tag key")),
    request_body = api::SetTagRequest,
    responses((status = 200, body = api::Model), (status = 404, body = api::ErrorBody)))]
/// Set a model tag
///
/// Sets or replaces the value of one tag.
pub async fn set_model_tag(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, key)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<api::SetTagRequest>,
) -> Result<Json<api::Model>, ApiError> {
    let name = ModelName::parse(&name)?;
    let key = TagKey::parse(&key)?;
    text::check_length("value", &request.value, text::SHORT)?;
    maintained_model(&state, &caller, &name, "model.tag.set").await?;
    let model = state
        .store()
        .set_model_tag(
            &caller.attribution(state.now()),
            &name,
            &key,
            &request.value,
        )
        .await?;
    Ok(Json(convert::model(&model)))
}

#[utoipa::path(delete, path = "/api/v1/models/{name}/tags/{key}", tag = "models",
    params(("name" = String, Path, description = "Model name"), ("key" = String, Path, description = "Tag key")),
    responses((status = 200, body = api::Model), (status = 404, body = api::ErrorBody)))]
/// Remove a model tag
///
/// Removes one tag; 404 when the model has no such tag.
pub async fn delete_model_tag(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, key)): ApiPath<(String, String)>,
) -> Result<Json<api::Model>, ApiError> {
    let name = ModelName::parse(&name)?;
    let key = TagKey::parse(&key)?;
    maintained_model(&state, &caller, &name, "model.tag.delete").await?;
    let model = state
        .store()
        .delete_model_tag(&caller.attribution(state.now()), &name, &key)
        .await?;
    Ok(Json(convert::model(&model)))
}

#[utoipa::path(post, path = "/api/v1/models/{name}/archive", tag = "models",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, body = api::Model), (status = 409, body = api::ErrorBody)))]
/// Archive a model
///
/// Nothing is deleted: the model accepts no new versions, and its open requests are withdrawn.
pub async fn archive_model(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<api::Model>, ApiError> {
    let name = ModelName::parse(&name)?;
    maintained_model(&state, &caller, &name, "model.archive").await?;
    let model = state
        .store()
        .archive_model(&caller.attribution(state.now()), &name)
        .await?;
    Ok(Json(convert::model(&model)))
}
