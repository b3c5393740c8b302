//! modelgate's records in MLflow's JSON: `registered_model` and `model_version` as the real server
//! writes them (int64 timestamps in milliseconds as JSON numbers, `version` as a string, stages by their
//! MLflow names, `tags` and `aliases` as lists).

use modelgate_core::{Model, Stage, Timestamp, Version};
use serde_json::{Value, json};

/// The model tags that hold free aliases: `mlflow.alias.champion` = `3`.
pub const ALIAS_TAG_PREFIX: &str = "mlflow.alias.";

/// A model's free aliases (from its tags), `(alias, version)`.
fn free_aliases(model: &Model) -> impl Iterator<Item = (&str, &str)> {
    model.tags.iter().filter_map(|(key, value)| {
        key.as_str()
            .strip_prefix(ALIAS_TAG_PREFIX)
            .map(|alias| (alias, value.as_str()))
    })
}

/// A model's own tags, without the ones holding aliases.
fn plain_tags(model: &Model) -> impl Iterator<Item = (&str, &str)> {
    model
        .tags
        .iter()
        .filter(|(key, _)| !key.as_str().starts_with(ALIAS_TAG_PREFIX))
        .map(|(key, value)| (key.as_str(), value.as_str()))
}

/// A stage by its MLflow name.
pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Development => "None",
        Stage::Staging => "Staging",
        Stage::Production => "Production",
        Stage::Archived => "Archived",
    }
}

fn tags<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Array(
        tags.map(|(key, value)| json!({ "key": key, "value": value }))
            .collect(),
    )
}

/// The reserved alias a version holds: the stage it is in, while the gate lets it run there (an approval
/// for the stage, not expired at `now`, and no suspension).
pub fn stage_alias(version: &Version, now: Timestamp) -> Option<&'static str> {
    let runs = version.suspension.is_none()
        && version
            .approval
            .as_ref()
            .is_some_and(|approval| approval.stage == version.stage && approval.not_after > now);
    match version.stage {
        Stage::Staging if runs => Some("staging"),
        Stage::Production if runs => Some("production"),
        _ => None,
    }
}

/// A version with every alias that names it: the model's free aliases and its stage alias.
pub fn model_version_of(model: &Model, version: &Version, now: Timestamp) -> Value {
    let mut json = model_version(version, now);
    let number = version.number.to_string();
    let mut aliases: Vec<Value> = free_aliases(model)
        .filter(|(_, target)| *target == number)
        .map(|(alias, _)| Value::String(alias.to_owned()))
        .collect();
    if let Some(existing) = json["aliases"].as_array() {
        aliases.extend(existing.iter().cloned());
    }
    json["aliases"] = Value::Array(aliases);
    json
}

/// A version with its stage alias only (callers that hold the model use [`model_version_of`]).
pub fn model_version(version: &Version, now: Timestamp) -> Value {
    let tag = |key: &str| {
        version
            .tags
            .iter()
            .find(|(tag, _)| tag.as_str() == key)
            .map(|(_, value)| value.clone())
    };
    let created = version.created_at.unix_millis();
    json!({
        "name": version.model_name.as_str(),
        "version": version.number.get().to_string(),
        "creation_timestamp": created,
        "last_updated_timestamp": version
            .approval
            .as_ref()
            .map_or(created, |approval| approval.approved_at.unix_millis().max(created)),
        "current_stage": stage_name(version.stage),
        "description": version.description,
        "user_id": version.created_by,
        "source": tag("mlflow.source").unwrap_or_else(|| format!("models:/{}/{}", version.model_name, version.number)),
        "run_id": tag("mlflow.run_id").unwrap_or_default(),
        "status": "READY",
        "tags": tags(version.tags.iter().map(|(key, value)| (key.as_str(), value.as_str()))),
        "aliases": stage_alias(version, now).into_iter().collect::<Vec<_>>(),
    })
}

/// A registered model with its latest version per stage and its stage aliases.
pub fn registered_model(model: &Model, versions: &[Version], now: Timestamp) -> Value {
    let mut latest: Vec<&Version> = Vec::new();
    for stage in [
        Stage::Development,
        Stage::Staging,
        Stage::Production,
        Stage::Archived,
    ] {
        if let Some(version) = versions
            .iter()
            .filter(|version| version.stage == stage)
            .max_by_key(|version| version.number)
        {
            latest.push(version);
        }
    }
    let mut aliases: Vec<Value> = free_aliases(model)
        .map(|(alias, version)| json!({ "alias": alias, "version": version }))
        .collect();
    aliases.extend(versions.iter().filter_map(|version| {
        stage_alias(version, now)
            .map(|alias| json!({ "alias": alias, "version": version.number.get().to_string() }))
    }));
    json!({
        "name": model.name.as_str(),
        "creation_timestamp": model.created_at.unix_millis(),
        "last_updated_timestamp": model.updated_at.unix_millis(),
        "description": model.description,
        "user_id": model.owner.as_str(),
        "latest_versions": latest
            .into_iter()
            .map(|version| model_version_of(model, version, now))
            .collect::<Vec<_>>(),
        "tags": tags(plain_tags(model)),
        "aliases": aliases,
    })
}
