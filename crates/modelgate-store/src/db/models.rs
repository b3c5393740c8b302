//! Models: create, read, list with filters and cursor pagination, update, tag and archive.

use super::audit::{self, AuditRecord};
use super::rows::{self, BindValue, SqlBuilder, model_from_row, model_snapshot, tags_by_owner};
use super::{Attribution, Store};
use crate::StoreError;
use modelgate_core::{
    InvalidInput, Model, ModelFilter, ModelName, NewModel, Page, PageRequest, RiskTier, TagKey,
    Username,
};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor, Transaction};

/// Changes to a model's mutable fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelUpdate {
    pub description: Option<String>,
    pub intended_use: Option<String>,
    pub owner: Option<Username>,
    pub risk_tier: Option<RiskTier>,
}

const MODEL_COLUMNS: &str = "m.id, m.name, o.username AS owner, m.risk_tier, m.description, \
     m.intended_use, m.created_by, m.created_at, m.updated_at, m.archived_at, m.version_count";

impl Store {
    pub async fn create_model(
        &self,
        attribution: &Attribution,
        new_model: &NewModel,
    ) -> Result<Model, StoreError> {
        let mut transaction = self.begin_write().await?;
        let owner_id = user_id_of(&mut transaction, &new_model.owner, "owner").await?;
        let id: i64 = rows::get(
            &sqlx::query(
                "INSERT INTO models
                    (name, owner_id, risk_tier, description, intended_use, created_by, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
            )
            .bind(new_model.name.as_str())
            .bind(owner_id)
            .bind(new_model.risk_tier.as_str())
            .bind(new_model.description.as_str())
            .bind(new_model.intended_use.as_str())
            .bind(attribution.actor.display_name().to_owned())
            .bind(attribution.at.unix_millis())
            .fetch_one(&mut *transaction)
            .await
            .map_err(StoreError::on_unique_violation("model", &new_model.name))?,
            "id",
        )?;
        for (key, value) in &new_model.tags {
            upsert_tag(&mut transaction, TagTable::Model, id, key, value).await?;
        }
        let model = fetch_model(&mut *transaction, &new_model.name).await?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "model.create",
                target: model_target(&model.name),
                before: None,
                after: Some(model_snapshot(&model)),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(model)
    }

    pub async fn get_model(&self, name: &ModelName) -> Result<Model, StoreError> {
        fetch_model(&self.reader, name).await
    }

    /// One page of models in name order, after `page.after`.
    pub async fn list_models(
        &self,
        filter: &ModelFilter,
        page: &PageRequest<ModelName>,
    ) -> Result<Page<Model, ModelName>, StoreError> {
        let mut sql = SqlBuilder::new(&format!(
            "SELECT {MODEL_COLUMNS} FROM models m JOIN users o ON o.id = m.owner_id WHERE 1 = 1"
        ));
        if !filter.include_archived {
            sql.push(" AND m.archived_at IS NULL");
        }
        if let Some(prefix) = &filter.name_prefix {
            // Names hold only [a-z0-9._-], so a range scan is an exact prefix match without LIKE escaping.
            sql.push(" AND m.name >= ")
                .push_bind(BindValue::Text(prefix.clone()))
                .push(" AND m.name < ")
                .push_bind(BindValue::Text(format!("{prefix}\u{7f}")));
        }
        if let Some(owner) = &filter.owner {
            sql.push(" AND o.username = ")
                .push_bind(BindValue::Text(owner.to_string()));
        }
        if let Some(tier) = filter.risk_tier {
            sql.push(" AND m.risk_tier = ")
                .push_bind(BindValue::Text(tier.as_str().to_owned()));
        }
        if let Some(stage) = filter.stage {
            sql.push(
                " AND EXISTS (SELECT 1 FROM versions v WHERE v.model_id = m.id AND v.stage = ",
            )
            .push_bind(BindValue::Text(stage.as_str().to_owned()))
            .push(")");
        }
        if let Some((key, value)) = &filter.tag {
            sql.push(
                " AND EXISTS (SELECT 1 FROM model_tags t WHERE t.model_id = m.id AND t.key = ",
            )
            .push_bind(BindValue::Text(key.to_string()));
            if let Some(value) = value {
                sql.push(" AND t.value = ")
                    .push_bind(BindValue::Text(value.clone()));
            }
            sql.push(")");
        }
        if let Some(after) = &page.after {
            sql.push(" AND m.name > ")
                .push_bind(BindValue::Text(after.to_string()));
        }
        sql.push(" ORDER BY m.name LIMIT ")
            .push_bind(BindValue::Integer(i64::from(page.limit) + 1));
        let mut connection = self.reader.acquire().await?;
        let model_rows = sql.build().fetch_all(&mut *connection).await?;
        tagged_page(
            &mut connection,
            model_rows,
            TagTable::Model,
            page.limit,
            model_from_row,
            |model: &Model| model.name.clone(),
        )
        .await
    }

    pub async fn update_model(
        &self,
        attribution: &Attribution,
        name: &ModelName,
        update: &ModelUpdate,
    ) -> Result<Model, StoreError> {
        let (mut transaction, model) = self.begin_model_change(name).await?;
        {
            let owner_id = match &update.owner {
                Some(owner) => Some(user_id_of(&mut transaction, owner, "owner").await?),
                None => None,
            };
            sqlx::query(
                "UPDATE models SET
                    description = COALESCE($1, description),
                    intended_use = COALESCE($2, intended_use),
                    owner_id = COALESCE($3, owner_id),
                    risk_tier = COALESCE($4, risk_tier),
                    updated_at = $5
                 WHERE id = $6",
            )
            .bind(update.description.clone())
            .bind(update.intended_use.clone())
            .bind(owner_id)
            .bind(update.risk_tier.map(|tier| tier.as_str().to_owned()))
            .bind(attribution.at.unix_millis())
            .bind(model.id)
            .execute(&mut *transaction)
            .await?;
        }
        self.finish_model_change(transaction, attribution, "model.update", model)
            .await
    }

    pub async fn set_model_tag(
        &self,
        attribution: &Attribution,
        name: &ModelName,
        key: &TagKey,
        value: &str,
    ) -> Result<Model, StoreError> {
        let (mut transaction, model) = self.begin_model_change(name).await?;
        upsert_tag(&mut transaction, TagTable::Model, model.id, key, value).await?;
        touch_model(&mut transaction, model.id, attribution).await?;
        self.finish_model_change(transaction, attribution, "model.tag.set", model)
            .await
    }

    pub async fn delete_model_tag(
        &self,
        attribution: &Attribution,
        name: &ModelName,
        key: &TagKey,
    ) -> Result<Model, StoreError> {
        let (mut transaction, model) = self.begin_model_change(name).await?;
        if !model.tags.contains_key(key) {
            return Err(StoreError::not_found("tag", key));
        }
        delete_tag(&mut transaction, TagTable::Model, model.id, key).await?;
        touch_model(&mut transaction, model.id, attribution).await?;
        self.finish_model_change(transaction, attribution, "model.tag.delete", model)
            .await
    }

    /// Archives a model: it leaves default listings and accepts no new versions; its records stay.
    pub async fn archive_model(
        &self,
        attribution: &Attribution,
        name: &ModelName,
    ) -> Result<Model, StoreError> {
        let (mut transaction, model) = self.begin_model_change(name).await?;
        if model.archived_at.is_some() {
            return Err(StoreError::FailedPrecondition(format!(
                "model {name:?} is already archived"
            )));
        }
        sqlx::query("UPDATE models SET archived_at = $1, updated_at = $1 WHERE id = $2")
            .bind(attribution.at.unix_millis())
            .bind(model.id)
            .execute(&mut *transaction)
            .await?;
        self.withdraw_open_requests(
            &mut transaction,
            attribution,
            model.id,
            None,
            &format!("model {name} was archived"),
        )
        .await?;
        self.finish_model_change(transaction, attribution, "model.archive", model)
            .await
    }

    /// Opens a write transaction on a model and reads its state before the change.
    async fn begin_model_change(
        &self,
        name: &ModelName,
    ) -> Result<(Transaction<'static, Any>, Model), StoreError> {
        let mut transaction = self.begin_write().await?;
        let before = fetch_model(&mut *transaction, name).await?;
        Ok((transaction, before))
    }

    /// Records the change from `before` to the model's current state and commits.
    async fn finish_model_change(
        &self,
        mut transaction: Transaction<'static, Any>,
        attribution: &Attribution,
        action: &'static str,
        before: Model,
    ) -> Result<Model, StoreError> {
        // The model's facts (tier, owner, tags) are read by the checks of its versions' gates: a decision
        // prepared before this change must not be applied after it.
        sqlx::query(
            "UPDATE versions SET evidence_revision = evidence_revision + 1, last_evidence_change = $1
             WHERE model_id = $2",
        )
        .bind(action)
        .bind(before.id)
        .execute(&mut *transaction)
        .await?;
        let after = fetch_model(&mut *transaction, &before.name).await?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action,
                target: model_target(&before.name),
                before: Some(model_snapshot(&before)),
                after: Some(model_snapshot(&after)),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(after)
    }
}

pub(crate) fn model_target(name: &ModelName) -> String {
    format!("model/{name}")
}

/// Reads one model with its tags in a single query.
pub(crate) async fn fetch_model<'c, E>(executor: E, name: &ModelName) -> Result<Model, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MODEL_COLUMNS}, t.key AS tag_key, t.value AS tag_value
         FROM models m JOIN users o ON o.id = m.owner_id
         LEFT JOIN model_tags t ON t.model_id = m.id
         WHERE m.name = $1"
    )))
    .bind(name.as_str())
    .fetch_all(executor)
    .await?;
    let first = rows
        .first()
        .ok_or_else(|| StoreError::not_found("model", name))?;
    model_from_row(first, tags_from_joined_rows(&rows)?)
}

async fn touch_model(
    transaction: &mut Transaction<'static, Any>,
    model_id: i64,
    attribution: &Attribution,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE models SET updated_at = $1 WHERE id = $2")
        .bind(attribution.at.unix_millis())
        .bind(model_id)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// The id of a user named in a request, or an `invalid_argument` naming the field.
pub(crate) async fn user_id_of(
    transaction: &mut Transaction<'static, Any>,
    username: &Username,
    field: &'static str,
) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT id FROM users WHERE username = $1")
        .bind(username.as_str())
        .fetch_optional(&mut **transaction)
        .await?;
    match row {
        Some(row) => rows::get(&row, "id"),
        None => Err(StoreError::Invalid(InvalidInput::new(
            field,
            format!("there is no user named {username:?}; create the user first"),
        ))),
    }
}

/// The two tag tables share one shape: `(owner id, key, value)`.
#[derive(Clone, Copy)]
pub(crate) enum TagTable {
    Model,
    Version,
}

impl TagTable {
    fn table_and_owner(self) -> (&'static str, &'static str) {
        match self {
            Self::Model => ("model_tags", "model_id"),
            Self::Version => ("version_tags", "version_id"),
        }
    }
}

pub(crate) async fn upsert_tag(
    transaction: &mut Transaction<'static, Any>,
    table: TagTable,
    owner_id: i64,
    key: &TagKey,
    value: &str,
) -> Result<(), StoreError> {
    let (table, owner) = table.table_and_owner();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} ({owner}, key, value) VALUES ($1, $2, $3)
         ON CONFLICT ({owner}, key) DO UPDATE SET value = excluded.value"
    )))
    .bind(owner_id)
    .bind(key.as_str())
    .bind(value)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

pub(crate) async fn delete_tag(
    transaction: &mut Transaction<'static, Any>,
    table: TagTable,
    owner_id: i64,
    key: &TagKey,
) -> Result<(), StoreError> {
    let (table, owner) = table.table_and_owner();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE {owner} = $1 AND key = $2"
    )))
    .bind(owner_id)
    .bind(key.as_str())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// The tags of several models or versions, grouped by owner id.
pub(crate) async fn fetch_tags<'c, E>(
    executor: E,
    table: TagTable,
    owner_ids: &[i64],
) -> Result<std::collections::BTreeMap<i64, std::collections::BTreeMap<TagKey, String>>, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    if owner_ids.is_empty() {
        return Ok(Default::default());
    }
    let (table, owner) = table.table_and_owner();
    let mut sql = SqlBuilder::new(&format!(
        "SELECT {owner} AS owner_id, key, value FROM {table} WHERE {owner} IN ("
    ));
    for (index, id) in owner_ids.iter().enumerate() {
        if index > 0 {
            sql.push(", ");
        }
        sql.push_bind(BindValue::Integer(*id));
    }
    sql.push(")");
    let rows = sql.build().fetch_all(executor).await?;
    tags_by_owner(&rows)
}

/// The tags of one record read with `LEFT JOIN …_tags` (columns `tag_key`, `tag_value`).
pub(crate) fn tags_from_joined_rows(
    rows: &[AnyRow],
) -> Result<std::collections::BTreeMap<TagKey, String>, StoreError> {
    let mut tags = std::collections::BTreeMap::new();
    for row in rows {
        if let Some(key) = rows::get::<Option<String>>(row, "tag_key")? {
            tags.insert(
                rows::parsed("tag key", TagKey::parse, &key)?,
                rows::get(row, "tag_value")?,
            );
        }
    }
    Ok(tags)
}

/// Turns the rows of a listing query (which asked for `limit + 1` rows, in key order) into a page:
/// attaches each record's tags and keeps the key of the last item when more rows follow.
pub(crate) async fn tagged_page<T, K>(
    connection: &mut AnyConnection,
    record_rows: Vec<AnyRow>,
    table: TagTable,
    limit: u32,
    decode: impl Fn(&AnyRow, std::collections::BTreeMap<TagKey, String>) -> Result<T, StoreError>,
    key_of: impl Fn(&T) -> K,
) -> Result<Page<T, K>, StoreError> {
    let ids: Vec<i64> = record_rows
        .iter()
        .map(|row| rows::get(row, "id"))
        .collect::<Result<_, _>>()?;
    let mut tags = fetch_tags(&mut *connection, table, &ids).await?;
    let mut items = record_rows
        .iter()
        .zip(&ids)
        .map(|(row, id)| decode(row, tags.remove(id).unwrap_or_default()))
        .collect::<Result<Vec<_>, _>>()?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_after = if items.len() > limit {
        items.truncate(limit);
        items.last().map(key_of)
    } else {
        None
    };
    Ok(Page { items, next_after })
}
