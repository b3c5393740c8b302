//! Model-card revisions: each edit of a version's card is a new, immutable revision with its digest,
//! author, time and message.

use super::audit::{self, AuditRecord};
use super::rows;
use super::versions::version_target;
use super::{Attribution, Store};
use crate::StoreError;
use modelgate_core::{ModelName, Stage, Timestamp, VersionNumber};
use serde_json::json;
use sqlx::any::AnyRow;

/// One stored revision of a version's card. `content` is the card's canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRevision {
    pub revision: i64,
    pub digest: String,
    pub content: String,
    pub author: String,
    pub message: Option<String>,
    pub created_at: Timestamp,
}

fn revision_from_row(row: &AnyRow) -> Result<CardRevision, StoreError> {
    Ok(CardRevision {
        revision: rows::get(row, "revision")?,
        digest: rows::get(row, "digest")?,
        content: rows::get(row, "content")?,
        author: rows::get(row, "author")?,
        message: rows::get(row, "message")?,
        created_at: rows::timestamp(row, "created_at")?,
    })
}

const REVISION_QUERY: &str =
    "SELECT c.revision, c.digest, c.content, c.author, c.message, c.created_at
     FROM card_revisions c JOIN versions v ON v.id = c.version_id JOIN models m ON m.id = v.model_id
     WHERE m.name = $1 AND v.number = $2";

impl Store {
    /// Records a new revision of a version's card (validated by the caller); `frozen_stages` are the
    /// stages whose approvals freeze the evidence (from the policy in force).
    #[allow(clippy::too_many_arguments)]
    pub async fn set_card(
        &self,
        attribution: &Attribution,
        model_name: &ModelName,
        number: VersionNumber,
        digest: &str,
        content: &str,
        message: Option<&str>,
        frozen_stages: &[Stage],
    ) -> Result<CardRevision, StoreError> {
        let (mut transaction, version) = self.begin_version_change(model_name, number).await?;
        // Write transactions are serialised (the audit tree's lock, taken first on PostgreSQL), so the
        // next revision number read here is still free at the insert.
        let previous =
            sqlx::query("SELECT MAX(revision) AS latest FROM card_revisions WHERE version_id = $1")
                .bind(version.id)
                .fetch_one(&mut *transaction)
                .await?;
        let revision = rows::get::<Option<i64>>(&previous, "latest")?.unwrap_or(0) + 1;
        let after_approval = self
            .record_evidence_change(
                &mut transaction,
                version.id,
                &format!("card revision {revision}"),
                frozen_stages,
            )
            .await?;
        sqlx::query(
            "INSERT INTO card_revisions (version_id, revision, digest, content, author, message, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(version.id)
        .bind(revision)
        .bind(digest)
        .bind(content)
        .bind(attribution.actor.display_name().to_owned())
        .bind(message.map(str::to_owned))
        .bind(attribution.at.unix_millis())
        .execute(&mut *transaction)
        .await?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "card.set",
                target: version_target(model_name, number),
                before: None,
                after: Some(json!({
                    "revision": revision, "digest": digest, "message": message,
                    "after_approval": after_approval,
                })),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(CardRevision {
            revision,
            digest: digest.to_owned(),
            content: content.to_owned(),
            author: attribution.actor.display_name().to_owned(),
            message: message.map(str::to_owned),
            created_at: attribution.at,
        })
    }

    /// Every revision of a version's card, oldest first.
    pub async fn card_revisions(
        &self,
        model_name: &ModelName,
        number: VersionNumber,
    ) -> Result<Vec<CardRevision>, StoreError> {
        self.get_version(model_name, number).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{REVISION_QUERY} ORDER BY c.revision"
        )))
        .bind(model_name.as_str())
        .bind(i64::from(number.get()))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(revision_from_row)
        .collect()
    }

    /// The current revision of a version's card, if it has one.
    pub async fn latest_card(
        &self,
        model_name: &ModelName,
        number: VersionNumber,
    ) -> Result<Option<CardRevision>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{REVISION_QUERY} ORDER BY c.revision DESC LIMIT 1"
        )))
        .bind(model_name.as_str())
        .bind(i64::from(number.get()))
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(revision_from_row)
        .transpose()
    }
}
