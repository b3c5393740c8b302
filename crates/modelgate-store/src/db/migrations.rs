//! Schema migrations, one history per backend, applied in order at start-up and by `modelgate migrate`.
//!
//! Hand-rolled rather than `sqlx::migrate!`: the workspace builds sqlx without its `macros` and `migrate`
//! features (a lighter build, and `migrate!` would tie both backends' histories to sqlx's own table), and
//! concurrent replicas starting against one PostgreSQL database serialise on an advisory lock instead of
//! racing. What `sqlx::migrate!` would add is kept: every applied migration's SHA-256 is recorded
//! (`schema_migration_checksums`), and a migration whose text changed after it was applied stops the
//! start with the version named, instead of leaving two databases that claim the same version but differ.

use super::{Backend, Store};
use crate::StoreError;
use sha2::{Digest as _, Sha256};
use sqlx::{AssertSqlSafe, Row};

async fn record_checksum(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    version: i64,
    checksum: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO schema_migration_checksums (version, sha256) VALUES ($1, $2)")
        .bind(version)
        .bind(checksum)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "registry",
        sql: include_str!("../../migrations/sqlite/0001_registry.sql"),
    },
    Migration {
        version: 2,
        name: "promotion",
        sql: include_str!("../../migrations/sqlite/0002_promotion.sql"),
    },
    Migration {
        version: 3,
        name: "model_cards",
        sql: include_str!("../../migrations/sqlite/0003_model_cards.sql"),
    },
    Migration {
        version: 4,
        name: "evaluations",
        sql: include_str!("../../migrations/sqlite/0004_evaluations.sql"),
    },
    Migration {
        version: 5,
        name: "evaluation_jobs",
        sql: include_str!("../../migrations/sqlite/0005_evaluation_jobs.sql"),
    },
    Migration {
        version: 6,
        name: "decisions",
        sql: include_str!("../../migrations/sqlite/0006_decisions.sql"),
    },
    Migration {
        version: 7,
        name: "sign_in_hardening",
        sql: include_str!("../../migrations/sqlite/0007_sign_in_hardening.sql"),
    },
    Migration {
        version: 8,
        name: "sessions",
        sql: include_str!("../../migrations/sqlite/0008_sessions.sql"),
    },
    Migration {
        version: 9,
        name: "ui_indexes",
        sql: include_str!("../../migrations/sqlite/0009_ui_indexes.sql"),
    },
    Migration {
        version: 10,
        name: "review_evidence_revision",
        sql: include_str!("../../migrations/sqlite/0010_review_evidence_revision.sql"),
    },
    Migration {
        version: 11,
        name: "artifact_scans",
        sql: include_str!("../../migrations/sqlite/0011_artifact_scans.sql"),
    },
    Migration {
        version: 12,
        name: "scan_engine_rank",
        sql: include_str!("../../migrations/sqlite/0012_scan_engine_rank.sql"),
    },
    Migration {
        version: 13,
        name: "webhooks",
        sql: include_str!("../../migrations/sqlite/0013_webhooks.sql"),
    },
    Migration {
        version: 14,
        name: "monitoring",
        sql: include_str!("../../migrations/sqlite/0014_monitoring.sql"),
    },
    Migration {
        version: 15,
        name: "scheduler",
        sql: include_str!("../../migrations/sqlite/0015_scheduler.sql"),
    },
    Migration {
        version: 16,
        name: "suspension_source",
        sql: include_str!("../../migrations/sqlite/0016_suspension_source.sql"),
    },
    Migration {
        version: 17,
        name: "monitoring_outcomes",
        sql: include_str!("../../migrations/sqlite/0017_monitoring_outcomes.sql"),
    },
];

const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "registry",
        sql: include_str!("../../migrations/postgres/0001_registry.sql"),
    },
    Migration {
        version: 2,
        name: "promotion",
        sql: include_str!("../../migrations/postgres/0002_promotion.sql"),
    },
    Migration {
        version: 3,
        name: "model_cards",
        sql: include_str!("../../migrations/postgres/0003_model_cards.sql"),
    },
    Migration {
        version: 4,
        name: "evaluations",
        sql: include_str!("../../migrations/postgres/0004_evaluations.sql"),
    },
    Migration {
        version: 5,
        name: "evaluation_jobs",
        sql: include_str!("../../migrations/postgres/0005_evaluation_jobs.sql"),
    },
    Migration {
        version: 6,
        name: "decisions",
        sql: include_str!("../../migrations/postgres/0006_decisions.sql"),
    },
    Migration {
        version: 7,
        name: "sign_in_hardening",
        sql: include_str!("../../migrations/postgres/0007_sign_in_hardening.sql"),
    },
    Migration {
        version: 8,
        name: "sessions",
        sql: include_str!("../../migrations/postgres/0008_sessions.sql"),
    },
    Migration {
        version: 9,
        name: "ui_indexes",
        sql: include_str!("../../migrations/postgres/0009_ui_indexes.sql"),
    },
    Migration {
        version: 10,
        name: "review_evidence_revision",
        sql: include_str!("../../migrations/postgres/0010_review_evidence_revision.sql"),
    },
    Migration {
        version: 11,
        name: "write_generation",
        sql: include_str!("../../migrations/postgres/0011_write_generation.sql"),
    },
    Migration {
        version: 12,
        name: "artifact_scans",
        sql: include_str!("../../migrations/postgres/0012_artifact_scans.sql"),
    },
    Migration {
        version: 13,
        name: "scan_engine_rank",
        sql: include_str!("../../migrations/postgres/0013_scan_engine_rank.sql"),
    },
    Migration {
        version: 14,
        name: "webhooks",
        sql: include_str!("../../migrations/postgres/0014_webhooks.sql"),
    },
    Migration {
        version: 15,
        name: "monitoring",
        sql: include_str!("../../migrations/postgres/0015_monitoring.sql"),
    },
    Migration {
        version: 16,
        name: "scheduler",
        sql: include_str!("../../migrations/postgres/0016_scheduler.sql"),
    },
    Migration {
        version: 17,
        name: "suspension_source",
        sql: include_str!("../../migrations/postgres/0017_suspension_source.sql"),
    },
    Migration {
        version: 18,
        name: "monitoring_outcomes",
        sql: include_str!("../../migrations/postgres/0018_monitoring_outcomes.sql"),
    },
];

/// Any fixed number shared by all replicas; only used to serialise migrations.
const POSTGRES_MIGRATION_LOCK: i64 = 0x6d67_6d69_6772;

impl Store {
    /// Applies every migration that has not been applied yet; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let migrations = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let mut transaction = self.begin_schema_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(POSTGRES_MIGRATION_LOCK)
                .execute(&mut *transaction)
                .await?;
        }
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY,
                name TEXT NOT NULL
            )",
        )
        .execute(&mut *transaction)
        .await?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migration_checksums (
                version BIGINT PRIMARY KEY,
                sha256 TEXT NOT NULL
            )",
        )
        .execute(&mut *transaction)
        .await?;
        let recorded: Vec<(i64, String)> =
            sqlx::query("SELECT version, sha256 FROM schema_migration_checksums")
                .fetch_all(&mut *transaction)
                .await?
                .iter()
                .map(|row| Ok((row.try_get::<i64, _>("version")?, row.try_get("sha256")?)))
                .collect::<Result<_, sqlx::Error>>()?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *transaction)
            .await?
            .iter()
            .map(|row| row.try_get::<i64, _>("version"))
            .collect::<Result<_, _>>()?;
        let mut count = 0;
        for migration in migrations {
            let checksum = hex::encode(Sha256::digest(migration.sql.as_bytes()));
            if applied.contains(&migration.version) {
                match recorded
                    .iter()
                    .find(|(version, _)| *version == migration.version)
                {
                    Some((_, stored)) if *stored != checksum => {
                        return Err(StoreError::Configuration(format!(
                            "migration {} ({}) was edited after this database applied it (recorded \
                             sha256 {stored}, the file now {checksum}); restore the applied text and put \
                             the change in a new migration",
                            migration.version, migration.name
                        )));
                    }
                    Some(_) => {}
                    // Applied before checksums were kept: record what this build has.
                    None => record_checksum(&mut transaction, migration.version, &checksum).await?,
                }
                continue;
            }
            sqlx::raw_sql(AssertSqlSafe(migration.sql))
                .execute(&mut *transaction)
                .await
                .map_err(|source| StoreError::Migration {
                    version: migration.version,
                    name: migration.name,
                    source,
                })?;
            sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
                .bind(migration.version)
                .bind(migration.name)
                .execute(&mut *transaction)
                .await?;
            record_checksum(&mut transaction, migration.version, &checksum).await?;
            count += 1;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "applied migration"
            );
        }
        // A migration may change what replicas keep in memory (the review queue): move the generation
        // with it, in the same transaction, so they read again.
        if count > 0 && self.backend == Backend::Postgres {
            sqlx::query("UPDATE write_generation SET value = value + 1 WHERE id = 1")
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(count)
    }
}
