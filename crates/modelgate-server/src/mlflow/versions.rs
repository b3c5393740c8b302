//! The changing `model-versions/*` calls and aliases. Free aliases (`champion`, `challenger` …) are
//! kept as the model's tags `mlflow.alias.<alias>` (so setting one is the audited `model.tag.set`); the
//! reserved aliases `staging` and `production` are modelgate's: they point at the version the gate lets
//! run in that stage, and cannot be set or deleted through MLflow. `transition-stage` to Staging or
//! Production opens a promotion request, whose id the version carries as the tag `modelgate.request`.

use super::auth::MlflowCaller;
use super::error::{MlflowError, PERMISSION_DENIED, RESOURCE_DOES_NOT_EXIST};
use super::params::Params;
use super::registered_models::{all_versions, visible_model, visible_version};
use super::wire::{self, ALIAS_TAG_PREFIX};
use crate::extract::{ApiJson, ApiPath};
use crate::routes::{models as v1_models, promotion as v1_promotion, versions as v1};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use modelgate_api as api;
use serde_json::{Value, json};

type Answer = Result<Json<Value>, MlflowError>;

/// The aliases modelgate keeps: the stage names.
const RESERVED_ALIASES: [&str; 2] = ["staging", "production"];

async fn version_json(state: &AppState, name: &str, number: &str) -> Answer {
    let (model, version) = visible_version(state, name, number).await?;
    Ok(Json(
        json!({ "model_version": wire::model_version_of(&model, &version, state.now()) }),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    MlflowCaller(caller): MlflowCaller,
    params: Params,
) -> Answer {
    let (name, number) = (params.required("name")?, params.required("version")?);
    let (model, version) = visible_version(&state, &name, &number).await?;
    if let Some(description) = params.text("description")? {
        let _updated = v1::update_version(
            State(state.clone()),
            caller,
            ApiPath((model.name.to_string(), version.number.to_string())),
            ApiJson(api::UpdateVersionRequest {
                description: Some(description),
            }),
        )
        .await
        .map_err(MlflowError::from)?;
    }
    version_json(&state, &name, &number).await
}

pub async fn set_tag(
    State(state): State<AppState>,
    MlflowCaller(caller): MlflowCaller,
    params: Params,
) -> Answer {
    let (model, version) = visible_version(
        &state,
        &params.required("name")?,
        &params.required("version")?,
    )
    .await?;
    let key = params.required("key")?;
    let value = params.text("value")?.unwrap_or_default();
    let _tagged = v1::set_version_tag(
        State(state),
        caller,
        ApiPath((model.name.to_string(), version.number.to_string(), key)),
        ApiJson(api::SetTagRequest { value }),
    )
    .await
    .map_err(MlflowError::from)?;
    Ok(Json(json!({})))
}

pub async fn delete_tag(
    State(state): State<AppState>,
    MlflowCaller(caller): MlflowCaller,
    params: Params,
) -> Answer {
    let (model, version) = visible_version(
        &state,
        &params.required("name")?,
        &params.required("version")?,
    )
    .await?;
    let key = params.required("key")?;
    let _untagged = v1::delete_version_tag(
        State(state),
        caller,
        ApiPath((model.name.to_string(), version.number.to_string(), key)),
    )
    .await
    .map_err(MlflowError::from)?;
    Ok(Json(json!({})))
}

/// Deleting a version archives it (`Archived` from then on); nothing is erased.
pub async fn delete(
    State(state): State<AppState>,
    MlflowCaller(caller): MlflowCaller,
    params: Params,
) -> Answer {
    let (model, version) = visible_version(
        &state,
        &params.required("name")?,
        &params.required("version")?,
    )
    .await?;
    let _archived = v1::archive_version(
        State(state),
        caller,
        ApiPath((model.name.to_string(), version.number.to_string())),
    )
    .await
    .map_err(MlflowError::from)?;
    Ok(Json(json!({})))
}

/// `Staging` and `Production` open a promotion request (approved at once only when the policy says
/// so); `Archived` archives; there is no way back to `None`.
pub async fn transition_stage(
    State(state): State<AppState>,
    MlflowCaller(caller): MlflowCaller,
    params: Params,
) -> Answer {
    let (name, number) = (params.required("name")?, params.required("version")?);
    let (model, version) = visible_version(&state, &name, &number).await?;
    let stage = params.required("stage")?;
    let target = match stage.to_ascii_lowercase().as_str() {
        "staging" => api::Stage::Staging,
        "production" => api::Stage::Production,
        "archived" => {
            let _archived = v1::archive_version(
                State(state.clone()),
                caller,
                ApiPath((model.name.to_string(), version.number.to_string())),
            )
            .await
            .map_err(MlflowError::from)?;
            return version_json(&state, &name, &number).await;
        }
        "none" => {
            return Err(MlflowError::invalid(
                "a version does not go back to None (development); register a new version instead",
            ));
        }
        _ => {
            return Err(MlflowError::invalid(format!(
                "Invalid Model Version stage: {stage}; one of None, Staging, Production, Archived"
            )));
        }
    };
    let (_, Json(request)) = v1_promotion::open_request(
        State(state.clone()),
        caller.clone(),
        ApiJson(api::OpenRequest {
            model: model.name.to_string(),
            version: version.number.get(),
            stage: target,
            justification: "requested through MLflow's transition-stage".to_owned(),
        }),
    )
    .await
    .map_err(MlflowError::from)?;
    let _tagged = v1::set_version_tag(
        State(state.clone()),
        caller,
        ApiPath((
            model.name.to_string(),
            version.number.to_string(),
            "modelgate.request".to_owned(),
        )),
        ApiJson(api::SetTagRequest {
            value: request.id.to_string(),
        }),
    )
    .await
    .map_err(MlflowError::from)?;
    version_json(&state, &name, &number).await
}

/// MLflow's alias rule: letters, digits, `_` and `-`; not `latest`, not `v<number>`.
fn check_alias(alias: &str) -> Result<(), MlflowError> {
    let shaped = !alias.is_empty()
        && alias.len() <= 100
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    let lower = alias.to_ascii_lowercase();
    let versionlike = lower
        .strip_prefix('v')
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()));
    if !shaped || lower == "latest" || versionlike {
        return Err(MlflowError::invalid(format!(
            "Invalid alias {alias:?}: 1 to 100 letters, digits, _ or -, and not 'latest' or v<number>"
        )));
    }
    Ok(())
}

fn reserved(alias: &str) -> Option<&'static str> {
    RESERVED_ALIASES
        .into_iter()
        .find(|reserved| reserved.eq_ignore_ascii_case(alias))
}

fn refuse_reserved(alias: &str) -> MlflowError {
    MlflowError::new(
        PERMISSION_DENIED,
        format!(
            "the alias {alias} is kept by modelgate: it names the version its gate lets run in {alias}. \
             Ask for promotion instead (transition-stage, or `modelgate request open MODEL VERSION --stage {alias}`)"
        ),
    )
}

pub async fn set_alias(
    State(state): State<AppState>,
    MlflowCaller(caller): MlflowCaller,
    params: Params,
) -> Answer {
    let (name, alias) = (params.required("name")?, params.required("alias")?);
    if reserved(&alias).is_some() {
        return Err(refuse_reserved(&alias));
    }
    check_alias(&alias)?;
    let (model, version) = visible_version(&state, &name, &params.required("version")?).await?;
    let _tagged = v1_models::set_model_tag(
        State(state),
        caller,
        ApiPath((model.name.to_string(), format!("{ALIAS_TAG_PREFIX}{alias}"))),
        ApiJson(api::SetTagRequest {
            value: version.number.to_string(),
        }),
    )
    .await
    .map_err(MlflowError::from)?;
    Ok(Json(json!({})))
}

pub async fn delete_alias(
    State(state): State<AppState>,
    MlflowCaller(caller): MlflowCaller,
    params: Params,
) -> Answer {
    let (name, alias) = (params.required("name")?, params.required("alias")?);
    if reserved(&alias).is_some() {
        return Err(refuse_reserved(&alias));
    }
    let model = visible_model(&state, &name).await?;
    let _untagged = v1_models::delete_model_tag(
        State(state),
        caller,
        ApiPath((model.name.to_string(), format!("{ALIAS_TAG_PREFIX}{alias}"))),
    )
    .await
    .map_err(MlflowError::from)?;
    Ok(Json(json!({})))
}

/// The version an alias names: for `staging` and `production`, the version the gate lets run there now
/// (approved for the stage, not expired, not suspended).
pub async fn get_by_alias(
    State(state): State<AppState>,
    _caller: MlflowCaller,
    params: Params,
) -> Answer {
    let (name, alias) = (params.required("name")?, params.required("alias")?);
    let model = visible_model(&state, &name).await?;
    let now = state.now();
    let not_found = || {
        MlflowError::new(
            RESOURCE_DOES_NOT_EXIST,
            format!("Registered model alias {alias} not found."),
        )
    };
    let number = match reserved(&alias) {
        Some(stage_alias) => all_versions(&state, &model.name)
            .await?
            .into_iter()
            .filter(|version| wire::stage_alias(version, now) == Some(stage_alias))
            .max_by_key(|version| version.number)
            .map(|version| version.number.to_string())
            .ok_or_else(not_found)?,
        None => model
            .tags
            .iter()
            .find(|(key, _)| key.as_str() == format!("{ALIAS_TAG_PREFIX}{alias}"))
            .map(|(_, value)| value.clone())
            .ok_or_else(not_found)?,
    };
    version_json(&state, &name, &number).await
}
