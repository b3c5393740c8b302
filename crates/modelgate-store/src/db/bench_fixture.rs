//! Benchmarks only: a registry of realistic size written straight into the tables with multi-row
//! inserts, for the web UI's speed benchmark (`modelgate-server/examples/ui_bench.rs`). It bypasses every
//! rule of the store (and writes no audit events: the benchmark loads the log separately with
//! [`Store::bulk_load_audit_for_benchmarks`]), so it is compiled only with the `bench-support` feature.

use super::{Backend, Store};
use crate::StoreError;
use modelgate_core::Timestamp;
use sha2::{Digest as _, Sha256};
use sqlx::{Any, Transaction};

/// What to load. Users are fixed: `admin` (admin), `developer` (model_developer: owns every model,
/// registers every version, opens every request), `validator` and `compliance`.
#[derive(Debug, Clone)]
pub struct RegistryFixture {
    pub models: u32,
    pub versions_per_model: u32,
    /// Open promotion requests, spread over the models (at most one per model).
    pub open_requests: u32,
    /// The digest of the policy in force, recorded on every request.
    pub policy_digest: String,
    /// The argon2 hash given to every user, so that any of them can sign in.
    pub password_hash: String,
    pub now: Timestamp,
    /// The scan report every artifact gets, as the scanner would store it: (engine, verdict, canonical
    /// JSON, digest). A registry in steady state has scanned everything, so the server's sweeper has
    /// nothing to do while pages are measured.
    pub scan: (String, String, String, String),
}

/// What was loaded, for the benchmark to address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedRegistry {
    pub users: u64,
    pub models: u64,
    pub versions: u64,
    pub decided_requests: u64,
    /// Ids of the open requests, oldest first.
    pub open_request_ids: Vec<i64>,
    pub reviews: u64,
}

/// The four risk tiers, by model index.
pub const BENCH_TIERS: [&str; 4] = ["low", "medium", "high", "critical"];

const ROWS_PER_STATEMENT: usize = 500;
const DAY: i64 = 86_400_000;

#[derive(Debug, Clone)]
enum Value {
    Int(i64),
    Text(String),
    Null,
}

fn int(value: impl Into<i64>) -> Value {
    Value::Int(value.into())
}

fn text(value: impl Into<String>) -> Value {
    Value::Text(value.into())
}

fn opt_int(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::Int)
}

fn opt_text(value: Option<String>) -> Value {
    value.map_or(Value::Null, Value::Text)
}

/// Inserts `rows` into `table (columns)` with multi-row `INSERT`s of [`ROWS_PER_STATEMENT`] rows.
async fn insert_rows(
    transaction: &mut Transaction<'static, Any>,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value>],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        let mut position = 0usize;
        for (index, row) in chunk.iter().enumerate() {
            debug_assert_eq!(row.len(), columns.len());
            sql.push_str(if index == 0 { "(" } else { ", (" });
            for (column, value) in row.iter().enumerate() {
                if column > 0 {
                    sql.push_str(", ");
                }
                match value {
                    Value::Null => sql.push_str("NULL"),
                    Value::Int(_) | Value::Text(_) => {
                        position += 1;
                        sql.push_str(&format!("${position}"));
                    }
                }
            }
            sql.push(')');
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in chunk.iter().flatten() {
            query = match value {
                Value::Int(value) => query.bind(*value),
                Value::Text(value) => query.bind(value.clone()),
                Value::Null => query,
            };
        }
        query.execute(&mut **transaction).await?;
    }
    Ok(())
}

fn hex_of(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))
}

impl Store {
    /// Benchmarks only: writes a registry of `fixture`'s size into an empty, migrated store, in one
    /// transaction per table group. Every model has `versions_per_model` versions: the last in
    /// development, the one before in staging and the one before that in production (both approved by a
    /// decided request, with expiries spread from 30 days ago to a year ahead), the older ones archived.
    /// Open requests alternate development → staging (the newest version) and staging → production;
    /// critical-tier ones already carry the compliance officer's approval.
    #[doc(hidden)]
    pub async fn bulk_load_registry_for_benchmarks(
        &self,
        fixture: &RegistryFixture,
    ) -> Result<LoadedRegistry, StoreError> {
        let models = i64::from(fixture.models);
        let per_model = i64::from(fixture.versions_per_model.max(3));
        let now = fixture.now.unix_millis();
        // The registry grew over the last 400 days.
        let start = now - 400 * DAY;
        let step = (400 * DAY) / models.max(1);

        let mut transaction = self.begin_write().await?;
        let users = [
            (1i64, "admin", "Ada Admin", "admin"),
            (2, "developer", "Dana Developer", "model_developer"),
            (3, "validator", "Victor Validator", "validator"),
            (4, "compliance", "Carla Compliance", "compliance"),
        ];
        let user_rows: Vec<Vec<Value>> = users
            .iter()
            .map(|(id, name, printed, _)| {
                vec![
                    int(*id),
                    text(*name),
                    text(*printed),
                    text(format!("{name}@example.com")),
                    text(fixture.password_hash.clone()),
                    int(start),
                ]
            })
            .collect();
        insert_rows(
            &mut transaction,
            "users",
            &[
                "id",
                "username",
                "printed_name",
                "email",
                "password_hash",
                "created_at",
            ],
            &user_rows,
        )
        .await?;
        let role_rows: Vec<Vec<Value>> = users
            .iter()
            .map(|(id, _, _, role)| vec![int(*id), text(*role)])
            .collect();
        insert_rows(
            &mut transaction,
            "user_roles",
            &["user_id", "role"],
            &role_rows,
        )
        .await?;

        let mut model_rows = Vec::with_capacity(fixture.models as usize);
        let mut tag_rows = Vec::with_capacity(fixture.models as usize);
        for index in 0..models {
            let created = start + index * step;
            model_rows.push(vec![
                int(index + 1),
                text(format!("model-{index}")),
                int(2),
                text(BENCH_TIERS[(index % 4) as usize]),
                text(format!(
                    "Benchmark model {index}: scores applications of product line {} for default risk.",
                    index % 37
                )),
                text("Decision support for credit officers; not for automated refusals."),
                text("developer"),
                int(created),
                int(created + (per_model - 1) * step / per_model),
                int(per_model),
            ]);
            tag_rows.push(vec![
                int(index + 1),
                text("team"),
                text(format!("team-{}", index % 20)),
            ]);
        }
        insert_rows(
            &mut transaction,
            "models",
            &[
                "id",
                "name",
                "owner_id",
                "risk_tier",
                "description",
                "intended_use",
                "created_by",
                "created_at",
                "updated_at",
                "version_count",
            ],
            &model_rows,
        )
        .await?;
        drop(model_rows);
        insert_rows(
            &mut transaction,
            "model_tags",
            &["model_id", "key", "value"],
            &tag_rows,
        )
        .await?;
        drop(tag_rows);
        self.commit(transaction).await?;

        // Decided requests: for every model, the approvals of its staging and production versions.
        let decided_id = |model: i64, production: bool| 2 * model + 1 + i64::from(production);
        let decided = 2 * models;
        let expiry = |model: i64, production: bool| {
            now + ((model * 7 + i64::from(production) * 113) % 395 - 30) * DAY
        };
        for first in (0..models).step_by(1000) {
            let last = (first + 1000).min(models);
            let mut transaction = self.begin_write().await?;
            let mut artifact_rows = Vec::new();
            let mut scan_rows = Vec::new();
            let mut version_rows = Vec::new();
            let mut request_rows = Vec::new();
            let mut review_rows = Vec::new();
            for model in first..last {
                let created = start + model * step;
                for number in 1..=per_model {
                    let digest = format!("sha256:{}", hex_of(&format!("model-{model}/{number}")));
                    let at = created + (number - 1) * step / per_model;
                    let size = 1_000_000 + (model * 31 + number) % 50_000_000;
                    artifact_rows.push(vec![text(digest.clone()), int(size), int(at)]);
                    let (engine, verdict, report, report_digest) = &fixture.scan;
                    scan_rows.push(vec![
                        text(digest.clone()),
                        text(engine.clone()),
                        text(verdict.clone()),
                        text(report.clone()),
                        text(report_digest.clone()),
                        int(at),
                    ]);
                    let stage = match per_model - number {
                        0 => "development",
                        1 => "staging",
                        2 => "production",
                        _ => "archived",
                    };
                    let approved = match stage {
                        "staging" => Some(false),
                        "production" => Some(true),
                        _ => None,
                    };
                    version_rows.push(vec![
                        int(model * per_model + number),
                        int(model + 1),
                        int(number),
                        text(digest),
                        int(size),
                        text("onnx"),
                        text("application/octet-stream"),
                        text(format!("https://git.example.com/risk/model-{model}")),
                        text(hex_of(&format!("commit {model} {number}"))[..40].to_owned()),
                        text(format!(
                            "s3://datasets/model-{model}/train-{number}.parquet"
                        )),
                        text(r#"{"learning_rate":"0.05","max_depth":"6"}"#),
                        text("{}"),
                        text(format!("Retrained on the data of month {number}.")),
                        text(stage),
                        text("developer"),
                        int(at),
                        opt_int(approved.map(|_| at + step / (2 * per_model))),
                        opt_int(approved.map(|production| expiry(model, production))),
                        opt_int(approved.map(|production| decided_id(model, production))),
                        opt_text(approved.map(|production| {
                            if production { "production" } else { "staging" }.to_owned()
                        })),
                    ]);
                    if let Some(production) = approved {
                        let id = decided_id(model, production);
                        let (from, to) = if production {
                            ("staging", "production")
                        } else {
                            ("development", "staging")
                        };
                        let evidence = format!("sha256:{}", hex_of(&format!("evidence {id}")));
                        request_rows.push(vec![
                            int(id),
                            int(model + 1),
                            int(model * per_model + number),
                            text(from),
                            text(to),
                            text("promotion"),
                            int(2),
                            text("Validated on the holdout of the quarter."),
                            text("approved"),
                            text(fixture.policy_digest.clone()),
                            text(evidence.clone()),
                            int(at),
                            int(at + step / (2 * per_model)),
                            text("every sign-off given"),
                            int(2),
                        ]);
                        if model % 4 != 0 {
                            review_rows.push(vec![
                                int(id),
                                int(3),
                                text("validator"),
                                text("approve"),
                                text("Metrics and card reviewed."),
                                text("I approve this version for the stage."),
                                text(evidence),
                                int(at + step / (4 * per_model)),
                            ]);
                        }
                    }
                }
            }
            insert_rows(
                &mut transaction,
                "artifacts",
                &["digest", "size_bytes", "created_at"],
                &artifact_rows,
            )
            .await?;
            insert_rows(
                &mut transaction,
                "artifact_scans",
                &[
                    "artifact_digest",
                    "engine",
                    "verdict",
                    "report_json",
                    "report_digest",
                    "scanned_at",
                ],
                &scan_rows,
            )
            .await?;
            insert_rows(
                &mut transaction,
                "versions",
                &[
                    "id",
                    "model_id",
                    "number",
                    "digest",
                    "size_bytes",
                    "format",
                    "media_type",
                    "code_repository",
                    "code_commit",
                    "training_data_uri",
                    "parameters_json",
                    "metadata_json",
                    "description",
                    "stage",
                    "created_by",
                    "created_at",
                    "approved_at",
                    "not_after",
                    "approval_request_id",
                    "approved_stage",
                ],
                &version_rows,
            )
            .await?;
            insert_rows(
                &mut transaction,
                "promotion_requests",
                &[
                    "id",
                    "model_id",
                    "version_id",
                    "from_stage",
                    "target_stage",
                    "kind",
                    "requester_id",
                    "justification",
                    "state",
                    "policy_digest",
                    "evidence_digest",
                    "created_at",
                    "decided_at",
                    "decision_reason",
                    "owner_at_open_id",
                ],
                &request_rows,
            )
            .await?;
            insert_rows(
                &mut transaction,
                "reviews",
                &[
                    "request_id",
                    "reviewer_id",
                    "role",
                    "decision",
                    "comment",
                    "meaning",
                    "evidence_digest",
                    "created_at",
                ],
                &review_rows,
            )
            .await?;
            self.commit(transaction).await?;
        }

        // Open requests, oldest first, spread evenly over the models.
        let open = i64::from(fixture.open_requests).min(models);
        let spacing = (models / open.max(1)).max(1);
        let mut transaction = self.begin_write().await?;
        let mut request_rows = Vec::new();
        let mut review_rows = Vec::new();
        let mut open_request_ids = Vec::new();
        for index in 0..open {
            let model = index * spacing;
            let id = decided + index + 1;
            let to_production = index % 2 == 1;
            let (number, from, to) = if to_production {
                (per_model - 1, "staging", "production")
            } else {
                (per_model, "development", "staging")
            };
            let evidence = format!("sha256:{}", hex_of(&format!("evidence {id}")));
            let opened = now - (open - index) * 600_000;
            request_rows.push(vec![
                int(id),
                int(model + 1),
                int(model * per_model + number),
                text(from),
                text(to),
                text("promotion"),
                int(2),
                text(format!(
                    "Quarterly retrain of model-{model}: AUC up 0.4 points on the holdout."
                )),
                text("open"),
                text(fixture.policy_digest.clone()),
                text(evidence.clone()),
                int(opened),
            ]);
            if BENCH_TIERS[(model % 4) as usize] == "critical" || (to_production && model % 4 == 2)
            {
                review_rows.push(vec![
                    int(id),
                    int(4),
                    text("compliance"),
                    text("approve"),
                    text("Regulatory documentation complete."),
                    text("I approve this version for the stage."),
                    text(evidence),
                    int(opened + 60_000),
                ]);
            }
            open_request_ids.push(id);
        }
        insert_rows(
            &mut transaction,
            "promotion_requests",
            &[
                "id",
                "model_id",
                "version_id",
                "from_stage",
                "target_stage",
                "kind",
                "requester_id",
                "justification",
                "state",
                "policy_digest",
                "evidence_digest",
                "created_at",
            ],
            &request_rows,
        )
        .await?;
        insert_rows(
            &mut transaction,
            "reviews",
            &[
                "request_id",
                "reviewer_id",
                "role",
                "decision",
                "comment",
                "meaning",
                "evidence_digest",
                "created_at",
            ],
            &review_rows,
        )
        .await?;
        if self.backend == Backend::Postgres {
            // Explicit ids do not move identity sequences: move them past the loaded rows.
            for table in [
                "users",
                "models",
                "versions",
                "promotion_requests",
                "reviews",
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
                )))
                .execute(&mut *transaction)
                .await?;
            }
        }
        self.commit(transaction).await?;
        let reviews: i64 = sqlx::query("SELECT COUNT(*) AS n FROM reviews")
            .fetch_one(&self.reader)
            .await
            .map_err(StoreError::from)
            .and_then(|row| super::rows::get(&row, "n"))?;
        Ok(LoadedRegistry {
            users: users.len() as u64,
            models: models as u64,
            versions: (models * per_model) as u64,
            decided_requests: decided as u64,
            open_request_ids,
            reviews: reviews as u64,
        })
    }

    /// Benchmarks only: on PostgreSQL, `ANALYZE` after a bulk load, as autovacuum would soon do on a
    /// database that grew through use. SQLite keeps no statistics unless told to (the server never runs
    /// `ANALYZE`), so nothing is done there: its planner works as it would in production.
    #[doc(hidden)]
    pub async fn analyze_for_benchmarks(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::raw_sql("ANALYZE").execute(&self.writer).await?;
        }
        Ok(())
    }
}
