//! `registered-models/*` and the reading `model-versions/*` calls. Changes go through the `/api/v1`
//! handlers (`routes::models`), so MLflow and modelgate's own API are one set of rules.

use super::RISK_TIER_TAG;
use super::auth::MlflowCaller;
use super::error::{MlflowError, RESOURCE_DOES_NOT_EXIST};
use super::filter::{self, Clause, Comparator, Key, Searched};
use super::params::Params;
use super::wire;
use crate::convert::Wire as _;
use crate::extract::{ApiJson, ApiPath};
use crate::routes::models as v1;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use modelgate_api as api;
use modelgate_core::{
    Model, ModelFilter, ModelName, PageRequest, RiskTier, Version, VersionFilter, VersionNumber,
};
use serde_json::{Value, json};

type Answer = Result<Json<Value>, MlflowError>;

/// A registered model as MLflow sees it: archived ones are deleted.
pub(super) async fn visible_model(state: &AppState, name: &str) -> Result<Model, MlflowError> {
    let not_found = || {
        MlflowError::new(
            RESOURCE_DOES_NOT_EXIST,
            format!("Registered Model with name={name} not found"),
        )
    };
    let parsed = ModelName::parse(name).map_err(|_| not_found())?;
    match state.store().get_model(&parsed).await {
        Ok(model) if model.archived_at.is_none() => Ok(model),
        Ok(_) => Err(not_found()),
        Err(modelgate_store::StoreError::NotFound { .. }) => Err(not_found()),
        Err(error) => Err(error.into()),
    }
}

/// Every version of a model, oldest first.
pub(super) async fn all_versions(
    state: &AppState,
    name: &ModelName,
) -> Result<Vec<Version>, MlflowError> {
    let mut versions = Vec::new();
    let mut page = PageRequest::first(PageRequest::<VersionNumber>::MAX_LIMIT);
    loop {
        let result = state
            .store()
            .list_versions(name, &VersionFilter::default(), &page)
            .await?;
        versions.extend(result.items);
        match result.next_after {
            Some(after) => page.after = Some(after),
            None => return Ok(versions),
        }
    }
}

async fn registered_model_json(state: &AppState, model: &Model) -> Result<Value, MlflowError> {
    let versions = all_versions(state, &model.name).await?;
    Ok(wire::registered_model(model, &versions, state.now()))
}

pub async fn create(
    State(state): State<AppState>,
    MlflowCaller(caller): MlflowCaller,
    params: Params,
) -> Answer {
    let name = params.required("name")?;
    let mut tags = std::collections::BTreeMap::new();
    let mut risk_tier = state.mlflow_settings().default_risk_tier;
    for (key, value) in params.tags()? {
        if key == RISK_TIER_TAG {
            risk_tier = RiskTier::parse(&value).map_err(|_| {
                MlflowError::invalid(format!(
                    "tag {RISK_TIER_TAG} must be low, medium, high or critical (got {value:?})"
                ))
            })?;
        }
        tags.insert(key, value);
    }
    let request = api::CreateModelRequest {
        name,
        owner: None,
        risk_tier: risk_tier.to_wire(),
        description: params.text("description")?.unwrap_or_default(),
        intended_use: String::new(),
        tags,
    };
    let (_, Json(created)) = v1::create_model(State(state.clone()), caller, ApiJson(request))
        .await
        .map_err(MlflowError::from)?;
    let model = visible_model(&state, &created.name).await?;
    Ok(Json(
        json!({ "registered_model": registered_model_json(&state, &model).await? }),
    ))
}

pub async fn get(State(state): State<AppState>, _caller: MlflowCaller, params: Params) -> Answer {
    let model = visible_model(&state, &params.required("name")?).await?;
    Ok(Json(
        json!({ "registered_model": registered_model_json(&state, &model).await? }),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    MlflowCaller(caller): MlflowCaller,
    params: Params,
) -> Answer {
    let model = visible_model(&state, &params.required("name")?).await?;
    if let Some(description) = params.text("description")? {
        let request = api::UpdateModelRequest {
            description: Some(description),
            ..api::UpdateModelRequest::default()
        };
        let _updated = v1::update_model(
            State(state.clone()),
            caller,
            ApiPath(model.name.to_string()),
            ApiJson(request),
        )
        .await
        .map_err(MlflowError::from)?;
    }
    let model = visible_model(&state, model.name.as_str()).await?;
    Ok(Json(
        json!({ "registered_model": registered_model_json(&state, &model).await? }),
    ))
}

/// MLflow's delete is an archive: hidden from MLflow afterwards, the records stay.
pub async fn delete(
    State(state): State<AppState>,
    MlflowCaller(caller): MlflowCaller,
    params: Params,
) -> Answer {
    let model = visible_model(&state, &params.required("name")?).await?;
    let _archived = v1::archive_model(State(state), caller, ApiPath(model.name.to_string()))
        .await
        .map_err(MlflowError::from)?;
    Ok(Json(json!({})))
}

pub async fn set_tag(
    State(state): State<AppState>,
    MlflowCaller(caller): MlflowCaller,
    params: Params,
) -> Answer {
    let model = visible_model(&state, &params.required("name")?).await?;
    let key = params.required("key")?;
    if key == RISK_TIER_TAG {
        return Err(MlflowError::invalid(format!(
            "{RISK_TIER_TAG} is read when the model is registered; an admin changes the risk tier with `modelgate model update {} --risk-tier TIER`",
            model.name
        )));
    }
    let value = params.text("value")?.unwrap_or_default();
    let _tagged = v1::set_model_tag(
        State(state.clone()),
        caller,
        ApiPath((model.name.to_string(), key)),
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
    let model = visible_model(&state, &params.required("name")?).await?;
    let key = params.required("key")?;
    let _untagged = v1::delete_model_tag(
        State(state.clone()),
        caller,
        ApiPath((model.name.to_string(), key)),
    )
    .await
    .map_err(MlflowError::from)?;
    Ok(Json(json!({})))
}

/// An offset into a search's results, as an opaque token.
fn page_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn page_offset(params: &Params) -> Result<usize, MlflowError> {
    let Some(token) = params.text("page_token")?.filter(|token| !token.is_empty()) else {
        return Ok(0);
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("offset:")?.parse().ok())
        .ok_or_else(|| MlflowError::invalid("Invalid page token: not one this server returned"))
}

/// Every model that is not archived, by name.
async fn all_models(state: &AppState) -> Result<Vec<Model>, MlflowError> {
    let mut models = Vec::new();
    let mut page = PageRequest::first(PageRequest::<ModelName>::MAX_LIMIT);
    loop {
        let result = state
            .store()
            .list_models(&ModelFilter::default(), &page)
            .await?;
        models.extend(result.items);
        match result.next_after {
            Some(after) => page.after = Some(after),
            None => return Ok(models),
        }
    }
}

fn model_matches(model: &Model, clauses: &[Clause]) -> bool {
    clauses.iter().all(|clause| match &clause.key {
        Key::Name => filter::text_matches(model.name.as_str(), clause),
        Key::Tag(key) => filter::tag_matches(
            key,
            model
                .tags
                .iter()
                .find(|(tag, _)| tag.as_str() == key)
                .map(|(_, value)| value.as_str()),
            clause,
        ),
        _ => false,
    })
}

/// `order_by` of a search: `(key, descending)` pairs from texts such as `name DESC`.
fn order(params: &Params, allowed: &[&str]) -> Result<Vec<(String, bool)>, MlflowError> {
    params
        .texts("order_by")?
        .iter()
        .map(|text| {
            let mut words = text.split_whitespace();
            let key = words.next().unwrap_or_default().to_ascii_lowercase();
            let key = key.strip_prefix("attributes.").unwrap_or(&key).to_owned();
            let descending = match words.next().map(str::to_ascii_uppercase).as_deref() {
                None | Some("ASC") => false,
                Some("DESC") => true,
                Some(other) => {
                    return Err(MlflowError::invalid(format!(
                        "Invalid order_by clause '{text}': the direction is ASC or DESC, not {other}"
                    )));
                }
            };
            if !allowed.contains(&key.as_str()) || words.next().is_some() {
                return Err(MlflowError::invalid(format!(
                    "Invalid order_by clause '{text}': order by one of {}, optionally ASC or DESC",
                    allowed.join(", ")
                )));
            }
            Ok((key, descending))
        })
        .collect()
}

/// The first difference by the `order_by` keys in turn, each reversed when descending.
fn ordered_by(
    ordering: &[(String, bool)],
    compare: impl Fn(&str) -> std::cmp::Ordering,
) -> std::cmp::Ordering {
    ordering
        .iter()
        .map(|(key, descending)| {
            let ordered = compare(key);
            if *descending {
                ordered.reverse()
            } else {
                ordered
            }
        })
        .find(|ordered| ordered.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

pub async fn search(
    State(state): State<AppState>,
    _caller: MlflowCaller,
    params: Params,
) -> Answer {
    let clauses = filter::parse(
        &params.text("filter")?.unwrap_or_default(),
        Searched::RegisteredModels,
    )?;
    let max_results = params.count("max_results", 100, 1000)? as usize;
    let ordering = order(
        &params,
        &[
            "name",
            "timestamp",
            "last_updated_timestamp",
            "creation_timestamp",
        ],
    )?;
    let offset = page_offset(&params)?;
    let mut models: Vec<Model> = all_models(&state)
        .await?
        .into_iter()
        .filter(|model| model_matches(model, &clauses))
        .collect();
    models.sort_by(|a, b| {
        ordered_by(&ordering, |key| match key {
            "name" => a.name.cmp(&b.name),
            "creation_timestamp" => a.created_at.cmp(&b.created_at),
            _ => a.updated_at.cmp(&b.updated_at),
        })
        .then_with(|| a.name.cmp(&b.name))
    });
    let page: Vec<&Model> = models.iter().skip(offset).take(max_results).collect();
    let mut registered = Vec::with_capacity(page.len());
    for model in &page {
        registered.push(registered_model_json(&state, model).await?);
    }
    let mut answer = json!({ "registered_models": registered });
    if offset + page.len() < models.len() {
        answer["next_page_token"] = json!(page_token(offset + page.len()));
    }
    Ok(Json(answer))
}

pub async fn latest_versions(
    State(state): State<AppState>,
    _caller: MlflowCaller,
    params: Params,
) -> Answer {
    let model = visible_model(&state, &params.required("name")?).await?;
    let stages: Vec<String> = params
        .texts("stages")?
        .iter()
        .map(|stage| stage.to_ascii_lowercase())
        .collect();
    let now = state.now();
    let versions = all_versions(&state, &model.name).await?;
    let latest = wire::registered_model(&model, &versions, now)["latest_versions"].clone();
    let chosen: Vec<Value> = latest
        .as_array()
        .into_iter()
        .flatten()
        .filter(|version| {
            stages.is_empty()
                || version["current_stage"]
                    .as_str()
                    .is_some_and(|stage| stages.contains(&stage.to_ascii_lowercase()))
        })
        .cloned()
        .collect();
    Ok(Json(json!({ "model_versions": chosen })))
}

pub(super) async fn visible_version(
    state: &AppState,
    name: &str,
    number: &str,
) -> Result<(Model, Version), MlflowError> {
    let model = visible_model(state, name).await?;
    let not_found = || {
        MlflowError::new(
            RESOURCE_DOES_NOT_EXIST,
            format!("Model Version (name={name}, version={number}) not found"),
        )
    };
    let parsed = VersionNumber::parse(number).map_err(|_| {
        MlflowError::invalid(format!(
            "Parameter 'version' must be a version number such as 1 (got {number:?})"
        ))
    })?;
    match state.store().get_version(&model.name, parsed).await {
        Ok(version) => Ok((model, version)),
        Err(modelgate_store::StoreError::NotFound { .. }) => Err(not_found()),
        Err(error) => Err(error.into()),
    }
}

pub async fn get_version(
    State(state): State<AppState>,
    _caller: MlflowCaller,
    params: Params,
) -> Answer {
    let (_, version) = visible_version(
        &state,
        &params.required("name")?,
        &params.required("version")?,
    )
    .await?;
    Ok(Json(
        json!({ "model_version": wire::model_version(&version, state.now()) }),
    ))
}

fn version_matches(version: &Version, json: &Value, clauses: &[Clause]) -> bool {
    clauses.iter().all(|clause| match &clause.key {
        Key::Name => filter::text_matches(version.model_name.as_str(), clause),
        Key::RunId => filter::text_matches(json["run_id"].as_str().unwrap_or_default(), clause),
        Key::SourcePath => {
            filter::text_matches(json["source"].as_str().unwrap_or_default(), clause)
        }
        Key::VersionNumber => filter::number_matches(
            u64::from(version.number.get()),
            clause.comparator,
            &clause.value,
        ),
        Key::Tag(key) => filter::tag_matches(
            key,
            version
                .tags
                .iter()
                .find(|(tag, _)| tag.as_str() == key)
                .map(|(_, value)| value.as_str()),
            clause,
        ),
    })
}

pub async fn search_versions(
    State(state): State<AppState>,
    _caller: MlflowCaller,
    params: Params,
) -> Answer {
    let clauses = filter::parse(
        &params.text("filter")?.unwrap_or_default(),
        Searched::ModelVersions,
    )?;
    let max_results = params.count("max_results", 10_000, 200_000)? as usize;
    let ordering = order(
        &params,
        &[
            "name",
            "version_number",
            "timestamp",
            "last_updated_timestamp",
            "creation_timestamp",
        ],
    )?;
    let offset = page_offset(&params)?;
    // A filter naming one model (the usual `name = '…'`) reads only that model's versions.
    let named: Option<&str> = clauses
        .iter()
        .find(|clause| clause.key == Key::Name && clause.comparator == Comparator::Equal)
        .map(|clause| clause.value.as_str());
    let models = match named {
        Some(name) => match visible_model(&state, name).await {
            Ok(model) => vec![model],
            Err(error) if error.code == RESOURCE_DOES_NOT_EXIST => Vec::new(),
            Err(error) => return Err(error),
        },
        None => all_models(&state).await?,
    };
    let now = state.now();
    let mut found: Vec<(Version, Value)> = Vec::new();
    for model in &models {
        for version in all_versions(&state, &model.name).await? {
            let json = wire::model_version_of(model, &version, now);
            if version_matches(&version, &json, &clauses) {
                found.push((version, json));
            }
        }
    }
    found.sort_by(|(a, _), (b, _)| {
        ordered_by(&ordering, |key| match key {
            "name" => a.model_name.cmp(&b.model_name),
            "version_number" => a.number.cmp(&b.number),
            _ => a.created_at.cmp(&b.created_at),
        })
        // MLflow's default: newest first.
        .then_with(|| b.created_at.cmp(&a.created_at))
        .then_with(|| a.model_name.cmp(&b.model_name))
        .then_with(|| b.number.cmp(&a.number))
    });
    let total = found.len();
    let page: Vec<Value> = found
        .into_iter()
        .skip(offset)
        .take(max_results)
        .map(|(_, json)| json)
        .collect();
    let shown = page.len();
    let mut answer = json!({ "model_versions": page });
    if offset + shown < total {
        answer["next_page_token"] = json!(page_token(offset + shown));
    }
    Ok(Json(answer))
}
