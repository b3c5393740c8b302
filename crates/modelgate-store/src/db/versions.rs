//! Versions and the artifact records they point at.

use super::audit::{self, AuditRecord};
use super::models::{
    TagTable, delete_tag, fetch_model, model_target, tagged_page, tags_from_joined_rows, upsert_tag,
};
use super::rows::{self, BindValue, SqlBuilder, version_from_row, version_snapshot};
use super::{Attribution, Store};
use crate::StoreError;
use modelgate_core::{
    ArtifactRecord, Digest, ModelName, NewVersion, Page, PageRequest, Stage, TagKey, Timestamp,
    Version, VersionFilter, VersionNumber,
};
use serde_json::json;
use sqlx::{Any, AssertSqlSafe, Executor, Transaction};

const VERSION_COLUMNS: &str = "v.id, m.name AS model_name, v.number, v.digest, v.size_bytes, v.format, \
     v.media_type, v.code_repository, v.code_commit, v.training_data_uri, v.training_data_digest, \
     v.parameters_json, v.metadata_json, v.description, v.stage, v.created_by, v.created_at, \
     v.approved_at, v.not_after, v.approval_request_id, v.approved_stage, v.suspension_reason, \
     v.evidence_revision, v.last_evidence_change, v.evidence_changed_after_approval, \
     v.approval_review_reason";

impl Store {
    /// Registers a new version of a model, bound to an artifact that must already be stored. Its number is
    /// the model's next one; numbers are never reused.
    pub async fn create_version(
        &self,
        attribution: &Attribution,
        model_name: &ModelName,
        new_version: &NewVersion,
    ) -> Result<Version, StoreError> {
        let mut transaction = self.begin_write().await?;
        let model = fetch_model(&mut *transaction, model_name).await?;
        if model.archived_at.is_some() {
            return Err(StoreError::FailedPrecondition(format!(
                "model {model_name:?} is archived and accepts no new versions"
            )));
        }
        let artifact = fetch_artifact(&mut *transaction, &new_version.digest)
            .await?
            .ok_or_else(|| {
                StoreError::FailedPrecondition(format!(
                    "artifact {} has not been uploaded; upload it first (POST /api/v1/artifacts)",
                    new_version.digest
                ))
            })?;
        let number: i64 = rows::get(
            &sqlx::query(
                "UPDATE models SET version_count = version_count + 1, updated_at = $1
                 WHERE id = $2 RETURNING version_count",
            )
            .bind(attribution.at.unix_millis())
            .bind(model.id)
            .fetch_one(&mut *transaction)
            .await?,
            "version_count",
        )?;
        let lineage = &new_version.lineage;
        let parameters_json = serde_json::to_string(&lineage.parameters)
            .map_err(|error| StoreError::corrupt(format!("parameters: {error}")))?;
        let id: i64 = rows::get(
            &sqlx::query(
                "INSERT INTO versions
                    (model_id, number, digest, size_bytes, format, media_type, code_repository,
                     code_commit, training_data_uri, training_data_digest, parameters_json,
                     metadata_json, description, stage, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                 RETURNING id",
            )
            .bind(model.id)
            .bind(number)
            .bind(new_version.digest.to_string())
            .bind(i64::try_from(artifact.size_bytes).unwrap_or(i64::MAX))
            .bind(new_version.format.as_str())
            .bind(new_version.media_type.as_str())
            .bind(lineage.code_repository.clone())
            .bind(lineage.code_commit.clone())
            .bind(lineage.training_data_uri.clone())
            .bind(
                lineage
                    .training_data_digest
                    .map(|digest| digest.to_string()),
            )
            .bind(parameters_json)
            .bind(lineage.metadata_json.as_str())
            .bind(new_version.description.as_str())
            .bind(Stage::Development.as_str())
            .bind(attribution.actor.display_name().to_owned())
            .bind(attribution.at.unix_millis())
            .fetch_one(&mut *transaction)
            .await?,
            "id",
        )?;
        for (key, value) in &new_version.tags {
            upsert_tag(&mut transaction, TagTable::Version, id, key, value).await?;
        }
        let number = VersionNumber::new(number)?;
        let version = fetch_version(&mut *transaction, model_name, number).await?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "version.create",
                target: version_target(model_name, number),
                before: None,
                after: Some(version_snapshot(&version)),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(version)
    }

    pub async fn get_version(
        &self,
        model_name: &ModelName,
        number: VersionNumber,
    ) -> Result<Version, StoreError> {
        fetch_version(&self.reader, model_name, number).await
    }

    /// One page of a model's versions in number order, after `page.after`.
    pub async fn list_versions(
        &self,
        model_name: &ModelName,
        filter: &VersionFilter,
        page: &PageRequest<VersionNumber>,
    ) -> Result<Page<Version, VersionNumber>, StoreError> {
        let mut connection = self.reader.acquire().await?;
        // Distinguish "no such model" from "no versions".
        fetch_model(&mut *connection, model_name).await?;
        let mut sql = SqlBuilder::new(&format!(
            "SELECT {VERSION_COLUMNS} FROM versions v JOIN models m ON m.id = v.model_id WHERE m.name = "
        ));
        sql.push_bind(BindValue::Text(model_name.to_string()));
        if let Some(stage) = filter.stage {
            sql.push(" AND v.stage = ")
                .push_bind(BindValue::Text(stage.as_str().to_owned()));
        }
        if let Some((key, value)) = &filter.tag {
            sql.push(
                " AND EXISTS (SELECT 1 FROM version_tags t WHERE t.version_id = v.id AND t.key = ",
            )
            .push_bind(BindValue::Text(key.to_string()));
            if let Some(value) = value {
                sql.push(" AND t.value = ")
                    .push_bind(BindValue::Text(value.clone()));
            }
            sql.push(")");
        }
        if let Some(after) = page.after {
            sql.push(" AND v.number > ")
                .push_bind(BindValue::Integer(i64::from(after.get())));
        }
        sql.push(" ORDER BY v.number LIMIT ")
            .push_bind(BindValue::Integer(i64::from(page.limit) + 1));
        let version_rows = sql.build().fetch_all(&mut *connection).await?;
        tagged_page(
            &mut connection,
            version_rows,
            TagTable::Version,
            page.limit,
            version_from_row,
            |version: &Version| version.number,
        )
        .await
    }

    pub async fn update_version_description(
        &self,
        attribution: &Attribution,
        model_name: &ModelName,
        number: VersionNumber,
        description: &str,
    ) -> Result<Version, StoreError> {
        let (mut transaction, version) = self.begin_version_change(model_name, number).await?;
        sqlx::query("UPDATE versions SET description = $1 WHERE id = $2")
            .bind(description)
            .bind(version.id)
            .execute(&mut *transaction)
            .await?;
        self.finish_version_change(transaction, attribution, "version.update", version)
            .await
    }

    pub async fn set_version_tag(
        &self,
        attribution: &Attribution,
        model_name: &ModelName,
        number: VersionNumber,
        key: &TagKey,
        value: &str,
    ) -> Result<Version, StoreError> {
        let (mut transaction, version) = self.begin_version_change(model_name, number).await?;
        upsert_tag(&mut transaction, TagTable::Version, version.id, key, value).await?;
        self.finish_version_change(transaction, attribution, "version.tag.set", version)
            .await
    }

    pub async fn delete_version_tag(
        &self,
        attribution: &Attribution,
        model_name: &ModelName,
        number: VersionNumber,
        key: &TagKey,
    ) -> Result<Version, StoreError> {
        let (mut transaction, version) = self.begin_version_change(model_name, number).await?;
        if !version.tags.contains_key(key) {
            return Err(StoreError::not_found("tag", key));
        }
        delete_tag(&mut transaction, TagTable::Version, version.id, key).await?;
        self.finish_version_change(transaction, attribution, "version.tag.delete", version)
            .await
    }

    /// Moves a version to `archived`. Its record, number and artifact stay.
    pub async fn archive_version(
        &self,
        attribution: &Attribution,
        model_name: &ModelName,
        number: VersionNumber,
    ) -> Result<Version, StoreError> {
        let (mut transaction, version) = self.begin_version_change(model_name, number).await?;
        if version.stage == Stage::Archived {
            return Err(StoreError::FailedPrecondition(format!(
                "version {number} of {model_name:?} is already archived"
            )));
        }
        // Archived by hand, a version gives up its approval: a rollback never brings it back.
        sqlx::query("UPDATE versions SET stage = $1, approved_stage = NULL WHERE id = $2")
            .bind(Stage::Archived.as_str())
            .bind(version.id)
            .execute(&mut *transaction)
            .await?;
        let model_id: i64 = rows::get(
            &sqlx::query("SELECT model_id FROM versions WHERE id = $1")
                .bind(version.id)
                .fetch_one(&mut *transaction)
                .await?,
            "model_id",
        )?;
        self.withdraw_open_requests(
            &mut transaction,
            attribution,
            model_id,
            Some(version.id),
            &format!("version {number} was archived"),
        )
        .await?;
        self.finish_version_change(transaction, attribution, "version.archive", version)
            .await
    }

    /// Counts a write to a version's evidence (a card revision, an evaluation), inside the write's
    /// transaction: bumps the evidence revision that decisions compare, and — when the version holds an
    /// approval for its stage — refuses the write if the policy freezes that stage's evidence, or flags the
    /// approval `review_due` otherwise. Returns whether the write came after an approval.
    pub(crate) async fn record_evidence_change(
        &self,
        transaction: &mut Transaction<'static, Any>,
        version_id: i64,
        change: &str,
        frozen_stages: &[Stage],
    ) -> Result<bool, StoreError> {
        let lock = if self.backend == super::Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT number, approved_stage FROM versions WHERE id = $1{lock}"
        )))
        .bind(version_id)
        .fetch_one(&mut **transaction)
        .await?;
        // An approval counts here even while its version is archived: a rollback may bring it back.
        let approved_stage = rows::get::<Option<String>>(&row, "approved_stage")?
            .map(|stage| rows::parsed("approved_stage", Stage::parse, &stage))
            .transpose()?;
        let approved = approved_stage.is_some();
        if let Some(stage) = approved_stage.filter(|stage| frozen_stages.contains(stage)) {
            return Err(StoreError::FailedPrecondition(format!(
                "version {} holds an approval for {stage}, and the policy freezes the evidence of {stage} \
                 approvals (frozen_evidence_stages); register a new version for new evidence",
                rows::get::<i64>(&row, "number")?
            )));
        }
        let flag = approved.then(|| change.to_owned());
        sqlx::query(
            "UPDATE versions SET evidence_revision = evidence_revision + 1, last_evidence_change = $1,
                    evidence_changed_after_approval = COALESCE($2, evidence_changed_after_approval)
             WHERE id = $3",
        )
        .bind(change)
        .bind(flag)
        .bind(version_id)
        .execute(&mut **transaction)
        .await?;
        Ok(approved)
    }

    /// Opens a write transaction on a version and reads its state before the change.
    pub(crate) async fn begin_version_change(
        &self,
        model_name: &ModelName,
        number: VersionNumber,
    ) -> Result<(Transaction<'static, Any>, Version), StoreError> {
        let mut transaction = self.begin_write().await?;
        let before = fetch_version(&mut *transaction, model_name, number).await?;
        Ok((transaction, before))
    }

    /// Records the change from `before` to the version's current state and commits.
    pub(crate) async fn finish_version_change(
        &self,
        mut transaction: Transaction<'static, Any>,
        attribution: &Attribution,
        action: &'static str,
        before: Version,
    ) -> Result<Version, StoreError> {
        // Tags and the rest of the version are read by its gate's checks: a decision prepared before this
        // change must not be applied after it.
        sqlx::query(
            "UPDATE versions SET evidence_revision = evidence_revision + 1, last_evidence_change = $1
             WHERE id = $2",
        )
        .bind(action)
        .bind(before.id)
        .execute(&mut *transaction)
        .await?;
        let after = fetch_version(&mut *transaction, &before.model_name, before.number).await?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action,
                target: version_target(&before.model_name, before.number),
                before: Some(version_snapshot(&before)),
                after: Some(version_snapshot(&after)),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(after)
    }

    /// Records that an artifact is stored under its digest. Returns the record and whether it is new
    /// (identical content uploaded again is stored once and recorded once).
    pub async fn record_artifact(
        &self,
        attribution: &Attribution,
        digest: &Digest,
        size_bytes: u64,
    ) -> Result<(ArtifactRecord, bool), StoreError> {
        let mut transaction = self.begin_write().await?;
        if let Some(existing) = fetch_artifact(&mut *transaction, digest).await? {
            return Ok((existing, false));
        }
        sqlx::query("INSERT INTO artifacts (digest, size_bytes, created_at) VALUES ($1, $2, $3)")
            .bind(digest.to_string())
            .bind(i64::try_from(size_bytes).unwrap_or(i64::MAX))
            .bind(attribution.at.unix_millis())
            .execute(&mut *transaction)
            .await?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "artifact.store",
                target: format!("artifact/{digest}"),
                before: None,
                after: Some(json!({ "digest": digest.to_string(), "size_bytes": size_bytes })),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok((
            ArtifactRecord {
                digest: *digest,
                size_bytes,
                created_at: attribution.at,
            },
            true,
        ))
    }

    pub async fn get_artifact_record(&self, digest: &Digest) -> Result<ArtifactRecord, StoreError> {
        fetch_artifact(&self.reader, digest)
            .await?
            .ok_or_else(|| StoreError::not_found("artifact", digest))
    }

    /// Every recorded artifact, in digest order.
    pub async fn list_artifact_records(&self) -> Result<Vec<ArtifactRecord>, StoreError> {
        sqlx::query("SELECT digest, size_bytes, created_at FROM artifacts ORDER BY digest")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(artifact_from_row)
            .collect()
    }
}

pub(crate) fn version_target(model_name: &ModelName, number: VersionNumber) -> String {
    format!("{}/version/{number}", model_target(model_name))
}

async fn fetch_version<'c, E>(
    executor: E,
    model_name: &ModelName,
    number: VersionNumber,
) -> Result<Version, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS}, t.key AS tag_key, t.value AS tag_value
         FROM versions v JOIN models m ON m.id = v.model_id
         LEFT JOIN version_tags t ON t.version_id = v.id
         WHERE m.name = $1 AND v.number = $2"
    )))
    .bind(model_name.as_str())
    .bind(i64::from(number.get()))
    .fetch_all(executor)
    .await?;
    let first = rows
        .first()
        .ok_or_else(|| StoreError::not_found("version", format!("{model_name}/{number}")))?;
    version_from_row(first, tags_from_joined_rows(&rows)?)
}

async fn fetch_artifact<'c, E>(
    executor: E,
    digest: &Digest,
) -> Result<Option<ArtifactRecord>, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    sqlx::query("SELECT digest, size_bytes, created_at FROM artifacts WHERE digest = $1")
        .bind(digest.to_string())
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(artifact_from_row)
        .transpose()
}

pub(crate) fn artifact_from_row(row: &sqlx::any::AnyRow) -> Result<ArtifactRecord, StoreError> {
    Ok(ArtifactRecord {
        digest: rows::parsed_column(row, "digest", Digest::parse)?,
        size_bytes: u64::try_from(rows::get::<i64>(row, "size_bytes")?)
            .map_err(|_| StoreError::corrupt("negative artifact size"))?,
        created_at: Timestamp::from_unix_millis(rows::get(row, "created_at")?),
    })
}
