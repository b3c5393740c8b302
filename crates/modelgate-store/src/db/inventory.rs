//! The model inventory as the web UI lists it: filtered (text, tier, stage, owner, tag, the production
//! approval's standing), sorted, counted and paged by offset, with each model's staging and production
//! versions in the same query.

use super::Store;
use super::rows::{self, BindValue, SqlBuilder};
use crate::StoreError;
use modelgate_core::{ModelName, RiskTier, Stage, TagKey, Timestamp, Username, VersionNumber};

/// The standing of a model's production approval, as the inventory filters it (the gate's
/// `approval_status`, evaluated in SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStanding {
    Active,
    ReviewDue,
    Expired,
    Suspended,
    /// No version is in production by an approval.
    Unapproved,
}

impl ApprovalStanding {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "active" => Self::Active,
            "review_due" => Self::ReviewDue,
            "expired" => Self::Expired,
            "suspended" => Self::Suspended,
            "unapproved" => Self::Unapproved,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InventorySort {
    #[default]
    Name,
    Tier,
    Owner,
    Updated,
}

impl InventorySort {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "name" => Self::Name,
            "tier" => Self::Tier,
            "owner" => Self::Owner,
            "updated" => Self::Updated,
            _ => return None,
        })
    }

    fn column(self) -> &'static str {
        match self {
            Self::Name => "m.name",
            // Tiers sort by severity, not alphabetically.
            Self::Tier => {
                "CASE m.risk_tier WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2 ELSE 3 END"
            }
            Self::Owner => "o.username",
            Self::Updated => "m.updated_at",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryFilter {
    /// Matched anywhere in the name or description, case-insensitively.
    pub text: Option<String>,
    pub risk_tier: Option<RiskTier>,
    /// Models with a version in this stage.
    pub stage: Option<Stage>,
    pub owner: Option<Username>,
    pub tag: Option<(TagKey, Option<String>)>,
    pub approval: Option<ApprovalStanding>,
    pub sort: InventorySort,
    pub descending: bool,
    pub offset: u32,
    pub limit: u32,
}

/// The latest version of a model in a stage, with its approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageVersion {
    pub number: VersionNumber,
    pub approved_for: Option<Stage>,
    pub not_after: Option<Timestamp>,
    pub suspended: Option<String>,
    /// Why the approval is due for review before its expiry.
    pub review_flag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryRow {
    pub name: ModelName,
    pub owner: Username,
    pub risk_tier: RiskTier,
    pub description: String,
    pub updated_at: Timestamp,
    pub staging: Option<StageVersion>,
    pub production: Option<StageVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryPage {
    pub rows: Vec<InventoryRow>,
    /// How many models match the filter in all.
    pub total: u64,
}

/// `%text%` for `LIKE … ESCAPE '\'`, with the wildcards in `text` taken literally.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for character in text.chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

/// The models with their owners; `STAGE_VERSIONS` joins each model's latest staging and production versions.
const MODELS: &str = " FROM models m JOIN users o ON o.id = m.owner_id";
const STAGE_VERSIONS: &str = " \
     LEFT JOIN versions s ON s.id = (SELECT MAX(x.id) FROM versions x WHERE x.model_id = m.id AND x.stage = 'staging') \
     LEFT JOIN versions p ON p.id = (SELECT MAX(y.id) FROM versions y WHERE y.model_id = m.id AND y.stage = 'production')";
const ACTIVE: &str = " WHERE m.archived_at IS NULL";

fn push_filters(sql: &mut SqlBuilder, filter: &InventoryFilter, now: Timestamp, due_millis: i64) {
    if let Some(text) = filter
        .text
        .as_deref()
        .filter(|text| !text.trim().is_empty())
    {
        let pattern = like_pattern(text.trim());
        // Both sides through the database's own LOWER, so each backend folds case alike on both
        // (SQLite only for ASCII letters; PostgreSQL for all).
        sql.push(" AND (LOWER(m.name) LIKE LOWER(")
            .push_bind(BindValue::Text(pattern.clone()))
            .push(") ESCAPE '\\' OR LOWER(m.description) LIKE LOWER(")
            .push_bind(BindValue::Text(pattern))
            .push(") ESCAPE '\\')");
    }
    if let Some(tier) = filter.risk_tier {
        sql.push(" AND m.risk_tier = ")
            .push_bind(BindValue::Text(tier.as_str().to_owned()));
    }
    if let Some(owner) = &filter.owner {
        sql.push(" AND o.username = ")
            .push_bind(BindValue::Text(owner.to_string()));
    }
    if let Some(stage) = filter.stage {
        sql.push(" AND EXISTS (SELECT 1 FROM versions z WHERE z.model_id = m.id AND z.stage = ")
            .push_bind(BindValue::Text(stage.as_str().to_owned()))
            .push(")");
    }
    if let Some((key, value)) = &filter.tag {
        sql.push(" AND EXISTS (SELECT 1 FROM model_tags t WHERE t.model_id = m.id AND t.key = ")
            .push_bind(BindValue::Text(key.to_string()));
        if let Some(value) = value {
            sql.push(" AND t.value = ")
                .push_bind(BindValue::Text(value.clone()));
        }
        sql.push(")");
    }
    if let Some(standing) = filter.approval {
        let now = now.unix_millis();
        let review_from = now.saturating_add(due_millis);
        let approved = " AND p.approved_stage = 'production' AND p.not_after IS NOT NULL";
        let flagged = "(p.evidence_changed_after_approval IS NOT NULL OR p.approval_review_reason IS NOT NULL)";
        match standing {
            ApprovalStanding::Unapproved => {
                sql.push(
                    " AND (p.id IS NULL OR p.approved_stage IS NULL OR p.approved_stage <> 'production' \
                     OR p.not_after IS NULL)",
                );
            }
            ApprovalStanding::Suspended => {
                sql.push(approved).push(" AND p.suspended_at IS NOT NULL");
            }
            ApprovalStanding::Expired => {
                sql.push(approved)
                    .push(" AND p.suspended_at IS NULL AND p.not_after <= ")
                    .push_bind(BindValue::Integer(now));
            }
            ApprovalStanding::ReviewDue => {
                sql.push(approved)
                    .push(" AND p.suspended_at IS NULL AND p.not_after > ")
                    .push_bind(BindValue::Integer(now))
                    .push(&format!(" AND ({flagged} OR p.not_after <= "))
                    .push_bind(BindValue::Integer(review_from))
                    .push(")");
            }
            ApprovalStanding::Active => {
                sql.push(approved)
                    .push(&format!(
                        " AND p.suspended_at IS NULL AND NOT {flagged} AND p.not_after > "
                    ))
                    .push_bind(BindValue::Integer(review_from));
            }
        }
    }
}

fn stage_version(
    row: &sqlx::any::AnyRow,
    prefix: &str,
) -> Result<Option<StageVersion>, StoreError> {
    let Some(number) = rows::get::<Option<i64>>(row, &format!("{prefix}_number"))? else {
        return Ok(None);
    };
    Ok(Some(StageVersion {
        number: VersionNumber::new(number)?,
        approved_for: rows::get::<Option<String>>(row, &format!("{prefix}_approved_stage"))?
            .map(|stage| rows::parsed("approved_stage", Stage::parse, &stage))
            .transpose()?,
        not_after: rows::optional_timestamp(row, &format!("{prefix}_not_after"))?,
        suspended: rows::get(row, &format!("{prefix}_suspension"))?,
        review_flag: rows::get(row, &format!("{prefix}_flag"))?,
    }))
}

impl Store {
    /// One page of the inventory and the number of models matching in all. `review_due_days` is the
    /// policy's: an approval that ends within it is due for review.
    pub async fn model_inventory(
        &self,
        filter: &InventoryFilter,
        now: Timestamp,
        review_due_days: u32,
    ) -> Result<InventoryPage, StoreError> {
        let due_millis = i64::from(review_due_days) * 86_400_000;
        // Only the approval filter reads the stage versions; without it the models are counted, sorted
        // and paged alone, and only the page's rows look up their versions (joining them for every model
        // made each page cost a lookup pair per model in the registry).
        let filter_from = if filter.approval.is_some() {
            format!("{MODELS}{STAGE_VERSIONS}{ACTIVE}")
        } else {
            format!("{MODELS}{ACTIVE}")
        };
        let mut count = SqlBuilder::new(&format!("SELECT COUNT(*) AS total{filter_from}"));
        push_filters(&mut count, filter, now, due_millis);
        let columns = |prefix: &str, table: &str| {
            format!(
                "{table}.number AS {prefix}_number, {table}.approved_stage AS {prefix}_approved_stage, \
                 {table}.not_after AS {prefix}_not_after, {table}.suspension_reason AS {prefix}_suspension, \
                 COALESCE({table}.evidence_changed_after_approval, {table}.approval_review_reason) AS {prefix}_flag"
            )
        };
        let direction = if filter.descending { "DESC" } else { "ASC" };
        let order = format!(
            " ORDER BY {} {direction}, m.name {direction}",
            filter.sort.column()
        );
        let mut page = SqlBuilder::new(&format!(
            "SELECT m.name, o.username AS owner, m.risk_tier, m.description, m.updated_at, {}, {}\
             {MODELS}{STAGE_VERSIONS} WHERE m.id IN (SELECT m.id{filter_from}",
            columns("s", "s"),
            columns("p", "p")
        ));
        push_filters(&mut page, filter, now, due_millis);
        page.push(&format!("{order} LIMIT "))
            .push_bind(BindValue::Integer(i64::from(filter.limit.clamp(1, 500))))
            .push(" OFFSET ")
            .push_bind(BindValue::Integer(i64::from(filter.offset)))
            .push(&format!("){order}"));
        let mut connection = self.reader.acquire().await?;
        let total: i64 = rows::get(&count.build().fetch_one(&mut *connection).await?, "total")?;
        let rows = page
            .build()
            .fetch_all(&mut *connection)
            .await?
            .iter()
            .map(|row| {
                Ok(InventoryRow {
                    name: rows::parsed_column(row, "name", ModelName::parse)?,
                    owner: rows::parsed_column(row, "owner", Username::parse)?,
                    risk_tier: rows::parsed_column(row, "risk_tier", RiskTier::parse)?,
                    description: rows::get(row, "description")?,
                    updated_at: rows::timestamp(row, "updated_at")?,
                    staging: stage_version(row, "s")?,
                    production: stage_version(row, "p")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(InventoryPage {
            rows,
            total: u64::try_from(total).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn wildcards_in_search_text_are_literal() {
        assert_eq!(like_pattern("Credit"), "%Credit%");
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
