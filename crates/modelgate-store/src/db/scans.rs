//! Artifact scan reports: what the scanner found in each stored artifact, one report per digest. The
//! store keeps the report as the scanner made it (canonical JSON) and never interprets it beyond its
//! verdict; the server builds the evidence from it.
//!
//! *Invariant*: a report that differs from the one on record bumps the evidence revision of every version
//! bound to the artifact (decisions prepared on the old report are conflicts), and flags an approval in
//! force `review_due` when the verdict changed: new scanner rules may find what the old ones missed.

use super::audit::{self, AuditRecord};
use super::rows;
use super::{Attribution, Store};
use crate::StoreError;
use modelgate_core::{Digest, Timestamp};
use serde_json::json;
use sqlx::{Any, Executor};

/// A scan report to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewScan {
    pub artifact_digest: Digest,
    pub engine: String,
    /// The engine's place in the order of engines (`modelgate_scan::engine_rank`): a report is never
    /// replaced by one of a lower rank.
    pub engine_rank: i64,
    pub verdict: String,
    /// The report, as canonical JSON.
    pub report_json: String,
    /// `sha256:` of `report_json`.
    pub report_digest: String,
}

/// A scan report on record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRecord {
    pub artifact_digest: Digest,
    pub engine: String,
    pub engine_rank: i64,
    pub verdict: String,
    pub report_json: String,
    pub report_digest: String,
    pub scanned_at: Timestamp,
}

/// What recording a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanRecorded {
    /// The first report for the artifact.
    New,
    /// It replaced a different report (another engine, other findings).
    Replaced,
    /// The same report was already on record: nothing was written.
    Unchanged,
    /// A report by a newer engine is on record (another replica runs a newer scanner): it is kept and
    /// nothing was written.
    KeptNewer,
}

const SCAN_COLUMNS: &str =
    "artifact_digest, engine, engine_rank, verdict, report_json, report_digest, scanned_at";

impl Store {
    /// Records the report of a scan of a stored artifact, replacing an earlier one, audited as
    /// `artifact.scan`. The same report recorded twice (two replicas scanning at once) writes once; a
    /// report by an engine of lower rank than the one on record is not written (`KeptNewer`), also when
    /// two replicas race (the upsert restates the rank).
    pub async fn record_scan(
        &self,
        attribution: &Attribution,
        scan: &NewScan,
    ) -> Result<ScanRecorded, StoreError> {
        let mut transaction = self.begin_write().await?;
        let before = fetch_scan(&mut *transaction, &scan.artifact_digest).await?;
        if before
            .as_ref()
            .is_some_and(|before| before.report_digest == scan.report_digest)
        {
            return Ok(ScanRecorded::Unchanged);
        }
        if before
            .as_ref()
            .is_some_and(|before| before.engine_rank > scan.engine_rank)
        {
            return Ok(ScanRecorded::KeptNewer);
        }
        let digest = scan.artifact_digest.to_string();
        let written = sqlx::query(
            "INSERT INTO artifact_scans (artifact_digest, engine, engine_rank, verdict, report_json, report_digest, scanned_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (artifact_digest) DO UPDATE SET engine = excluded.engine,
                 engine_rank = excluded.engine_rank,
                 verdict = excluded.verdict, report_json = excluded.report_json,
                 report_digest = excluded.report_digest, scanned_at = excluded.scanned_at
             WHERE artifact_scans.engine_rank <= excluded.engine_rank",
        )
        .bind(&digest)
        .bind(&scan.engine)
        .bind(scan.engine_rank)
        .bind(&scan.verdict)
        .bind(&scan.report_json)
        .bind(&scan.report_digest)
        .bind(attribution.at.unix_millis())
        .execute(&mut *transaction)
        .await?;
        if written.rows_affected() == 0 {
            // A newer engine's report landed between the read and the upsert (PostgreSQL replicas).
            return Ok(ScanRecorded::KeptNewer);
        }
        let verdict_changed = before
            .as_ref()
            .is_some_and(|before| before.verdict != scan.verdict);
        // Versions on this artifact: their evidence changed. An approval in force is flagged when the
        // verdict moved (a rescan under new rules), never refused: the server's own finding is recorded
        // even for frozen stages.
        sqlx::query(
            "UPDATE versions SET evidence_revision = evidence_revision + 1,
                    last_evidence_change = 'artifact.scan',
                    evidence_changed_after_approval = CASE
                        WHEN $1 AND approved_stage IS NOT NULL THEN 'artifact.scan'
                        ELSE evidence_changed_after_approval END
             WHERE digest = $2",
        )
        .bind(verdict_changed)
        .bind(&digest)
        .execute(&mut *transaction)
        .await?;
        let snapshot = |engine: &str, verdict: &str, report_digest: &str| json!({ "engine": engine, "verdict": verdict, "report_digest": report_digest });
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "artifact.scan",
                target: format!("artifact/{digest}"),
                before: before
                    .as_ref()
                    .map(|before| snapshot(&before.engine, &before.verdict, &before.report_digest)),
                after: Some(snapshot(&scan.engine, &scan.verdict, &scan.report_digest)),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(if before.is_some() {
            ScanRecorded::Replaced
        } else {
            ScanRecorded::New
        })
    }

    /// The report on record for an artifact, if it was scanned.
    pub async fn scan_of(&self, digest: &Digest) -> Result<Option<ScanRecord>, StoreError> {
        fetch_scan(&self.reader, digest).await
    }

    /// Up to `limit` stored artifacts that have no report by `engine` (never scanned, or by other rules)
    /// and none by a newer engine than `engine_rank`, in digest order after `after`.
    pub async fn artifacts_to_scan(
        &self,
        engine: &str,
        engine_rank: i64,
        after: Option<&Digest>,
        limit: u32,
    ) -> Result<Vec<modelgate_core::ArtifactRecord>, StoreError> {
        sqlx::query(
            "SELECT a.digest, a.size_bytes, a.created_at FROM artifacts a
             LEFT JOIN artifact_scans s ON s.artifact_digest = a.digest
             WHERE (s.engine IS NULL OR (s.engine <> $1 AND s.engine_rank <= $2)) AND a.digest > $3
             ORDER BY a.digest LIMIT $4",
        )
        .bind(engine)
        .bind(engine_rank)
        .bind(after.map(Digest::to_string).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(super::versions::artifact_from_row)
        .collect()
    }
}

async fn fetch_scan<'c, E>(executor: E, digest: &Digest) -> Result<Option<ScanRecord>, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SCAN_COLUMNS} FROM artifact_scans WHERE artifact_digest = $1"
    )))
    .bind(digest.to_string())
    .fetch_optional(executor)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(ScanRecord {
        artifact_digest: rows::parsed_column(&row, "artifact_digest", Digest::parse)?,
        engine: rows::get(&row, "engine")?,
        engine_rank: rows::get(&row, "engine_rank")?,
        verdict: rows::get(&row, "verdict")?,
        report_json: rows::get(&row, "report_json")?,
        report_digest: rows::get(&row, "report_digest")?,
        scanned_at: Timestamp::from_unix_millis(rows::get(&row, "scanned_at")?),
    }))
}
