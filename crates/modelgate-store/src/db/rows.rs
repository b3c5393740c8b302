//! Decoding rows into domain records, and the JSON snapshots of records that audit events carry.

use crate::StoreError;
use modelgate_core::{
    Digest, Lineage, Model, ModelName, RiskTier, Role, Stage, TagKey, Timestamp, TokenName,
    TokenRecord, User, Username, Version, VersionApproval, VersionNumber,
};
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

pub(crate) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    Ok(row.try_get::<T, _>(column)?)
}

pub(crate) fn timestamp(row: &AnyRow, column: &str) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_unix_millis(get::<i64>(row, column)?))
}

pub(crate) fn optional_timestamp(
    row: &AnyRow,
    column: &str,
) -> Result<Option<Timestamp>, StoreError> {
    Ok(get::<Option<i64>>(row, column)?.map(Timestamp::from_unix_millis))
}

/// Parses a stored value back into its domain type; a failure means the database was edited by hand.
pub(crate) fn parsed<T, E: std::fmt::Display>(
    column: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
    text: &str,
) -> Result<T, StoreError> {
    parse(text).map_err(|error| StoreError::corrupt(format!("{column} {text:?}: {error}")))
}

/// Reads a text column and parses it into its domain type, naming the column when it does not parse.
pub(crate) fn parsed_column<T, E: std::fmt::Display>(
    row: &AnyRow,
    column: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, StoreError> {
    parsed(column, parse, &get::<String>(row, column)?)
}

pub(crate) fn user_from_row(row: &AnyRow, roles: Vec<Role>) -> Result<User, StoreError> {
    Ok(User {
        id: get(row, "user_id")?,
        username: parsed_column(row, "username", Username::parse)?,
        printed_name: get(row, "printed_name")?,
        email: get(row, "email")?,
        roles,
        active: optional_timestamp(row, "deactivated_at")?.is_none(),
        has_password: get::<Option<String>>(row, "password_hash")?.is_some(),
        created_at: timestamp(row, "user_created_at")?,
    })
}

pub(crate) fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: get(row, "token_id")?,
        user_id: get(row, "user_id")?,
        username: parsed_column(row, "username", Username::parse)?,
        name: parsed_column(row, "token_name", TokenName::parse)?,
        created_at: timestamp(row, "token_created_at")?,
        expires_at: optional_timestamp(row, "expires_at")?,
        last_used_at: optional_timestamp(row, "last_used_at")?,
        revoked_at: optional_timestamp(row, "revoked_at")?,
    })
}

pub(crate) fn model_from_row(
    row: &AnyRow,
    tags: BTreeMap<TagKey, String>,
) -> Result<Model, StoreError> {
    Ok(Model {
        id: get(row, "id")?,
        name: parsed_column(row, "name", ModelName::parse)?,
        owner: parsed_column(row, "owner", Username::parse)?,
        risk_tier: parsed_column(row, "risk_tier", RiskTier::parse)?,
        description: get(row, "description")?,
        intended_use: get(row, "intended_use")?,
        tags,
        created_by: get(row, "created_by")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
        archived_at: optional_timestamp(row, "archived_at")?,
        version_count: u32::try_from(get::<i64>(row, "version_count")?)
            .map_err(|_| StoreError::corrupt("version_count out of range"))?,
    })
}

pub(crate) fn version_from_row(
    row: &AnyRow,
    tags: BTreeMap<TagKey, String>,
) -> Result<Version, StoreError> {
    let parameters_json: String = get(row, "parameters_json")?;
    let parameters: BTreeMap<String, String> = serde_json::from_str(&parameters_json)
        .map_err(|error| StoreError::corrupt(format!("parameters_json: {error}")))?;
    let training_data_digest = get::<Option<String>>(row, "training_data_digest")?
        .map(|text| parsed("training_data_digest", Digest::parse, &text))
        .transpose()?;
    Ok(Version {
        id: get(row, "id")?,
        model_name: parsed_column(row, "model_name", ModelName::parse)?,
        number: parsed(
            "number",
            |n: &str| VersionNumber::parse(n),
            &get::<i64>(row, "number")?.to_string(),
        )?,
        digest: parsed_column(row, "digest", Digest::parse)?,
        size_bytes: u64::try_from(get::<i64>(row, "size_bytes")?)
            .map_err(|_| StoreError::corrupt("negative size_bytes"))?,
        format: get(row, "format")?,
        media_type: get(row, "media_type")?,
        lineage: Lineage {
            code_repository: get(row, "code_repository")?,
            code_commit: get(row, "code_commit")?,
            training_data_uri: get(row, "training_data_uri")?,
            training_data_digest,
            parameters,
            metadata_json: get(row, "metadata_json")?,
        },
        description: get(row, "description")?,
        tags,
        stage: parsed_column(row, "stage", Stage::parse)?,
        created_by: get(row, "created_by")?,
        created_at: timestamp(row, "created_at")?,
        approval: match (
            optional_timestamp(row, "approved_at")?,
            optional_timestamp(row, "not_after")?,
            get::<Option<i64>>(row, "approval_request_id")?,
            get::<Option<String>>(row, "approved_stage")?,
        ) {
            (Some(approved_at), Some(not_after), Some(request_id), Some(stage)) => {
                Some(VersionApproval {
                    stage: parsed("approved_stage", Stage::parse, &stage)?,
                    approved_at,
                    not_after,
                    request_id,
                })
            }
            _ => None,
        },
        suspension: get(row, "suspension_reason")?,
        evidence_revision: get(row, "evidence_revision")?,
        last_evidence_change: get(row, "last_evidence_change")?,
        evidence_changed_after_approval: get(row, "evidence_changed_after_approval")?,
        approval_review_reason: get(row, "approval_review_reason")?,
    })
}

/// Groups `(owner id, key, value)` tag rows by owner id.
pub(crate) fn tags_by_owner(
    rows: &[AnyRow],
) -> Result<BTreeMap<i64, BTreeMap<TagKey, String>>, StoreError> {
    let mut grouped: BTreeMap<i64, BTreeMap<TagKey, String>> = BTreeMap::new();
    for row in rows {
        let owner: i64 = get(row, "owner_id")?;
        let key = parsed_column(row, "key", TagKey::parse)?;
        grouped
            .entry(owner)
            .or_default()
            .insert(key, get(row, "value")?);
    }
    Ok(grouped)
}

pub(crate) fn tags_json(tags: &BTreeMap<TagKey, String>) -> serde_json::Value {
    tags.iter()
        .map(|(key, value)| (key.to_string(), json!(value)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub(crate) fn model_snapshot(model: &Model) -> serde_json::Value {
    json!({
        "name": model.name.as_str(),
        "owner": model.owner.as_str(),
        "risk_tier": model.risk_tier.as_str(),
        "description": model.description,
        "intended_use": model.intended_use,
        "tags": tags_json(&model.tags),
        "archived_at": model.archived_at.map(Timestamp::unix_millis),
    })
}

pub(crate) fn version_snapshot(version: &Version) -> serde_json::Value {
    json!({
        "model": version.model_name.as_str(),
        "version": version.number.get(),
        "digest": version.digest.to_string(),
        "size_bytes": version.size_bytes,
        "format": version.format,
        "media_type": version.media_type,
        "code_repository": version.lineage.code_repository,
        "code_commit": version.lineage.code_commit,
        "training_data_uri": version.lineage.training_data_uri,
        "training_data_digest": version.lineage.training_data_digest.map(|d| d.to_string()),
        "parameters": version.lineage.parameters,
        "description": version.description,
        "tags": tags_json(&version.tags),
        "stage": version.stage.as_str(),
        "not_after": version.approval.as_ref().map(|approval| approval.not_after.unix_millis()),
        "suspension": version.suspension,
    })
}

pub(crate) fn user_snapshot(user: &User) -> serde_json::Value {
    json!({
        "username": user.username.as_str(),
        "printed_name": user.printed_name,
        "email": user.email,
        "roles": user.roles.iter().map(Role::as_str).collect::<Vec<_>>(),
        "active": user.active,
        "has_password": user.has_password,
    })
}

/// A value bound to a placeholder of a [`SqlBuilder`] query.
pub(crate) enum BindValue {
    Text(String),
    Integer(i64),
}

/// Builds SQL with numbered placeholders as arguments are added, for queries whose shape depends on filters.
pub(crate) struct SqlBuilder {
    sql: String,
    binds: Vec<BindValue>,
}

impl SqlBuilder {
    pub fn new(start: &str) -> Self {
        Self {
            sql: start.to_owned(),
            binds: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.sql.push_str(text);
        self
    }

    /// Appends the placeholder of a new argument (`$3`) and remembers its value.
    pub fn push_bind(&mut self, value: BindValue) -> &mut Self {
        self.binds.push(value);
        self.sql.push_str(&format!("${}", self.binds.len()));
        self
    }

    pub fn build(self) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql));
        for value in self.binds {
            query = match value {
                BindValue::Text(text) => query.bind(text),
                BindValue::Integer(number) => query.bind(number),
            };
        }
        query
    }
}
