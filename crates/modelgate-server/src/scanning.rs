//! Artifact scanning (issue 15): every stored artifact is scanned by `modelgate-scan` before anyone is
//! asked to approve it. An upload scans its artifact before it answers; a background sweeper that every
//! replica runs scans whatever has no report by the current engine — artifacts stored before scanning
//! existed, uploads interrupted by a crash between storing and scanning, and every artifact again after
//! the scanner's rules changed (the engine version includes a digest of the rules). Reports are
//! content-addressed: the canonical JSON's SHA-256 is part of the evidence of every version on the
//! artifact.
//!
//! The scanner reads synchronously (`Read + Seek`) and skips payload bytes by seeking, so it runs on a
//! blocking thread over [`StoredArtifactReader`], which fetches byte ranges from the artifact store (range
//! requests on S3): a 2 GiB model of tensors is scanned by reading its opcodes, not its weights.

use crate::error::{ApiError, InternalError};
use crate::state::AppState;
use bytes::Bytes;
use futures::TryStreamExt;
use modelgate_core::{ArtifactRecord, Digest};
use modelgate_scan::{ENGINE_VERSION, ScanReport};
use modelgate_store::{ArtifactStore, Attribution, NewScan};
use sha2::{Digest as _, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

/// Bytes fetched from the artifact store per read that misses the buffer.
const READ_CHUNK: u64 = 1 << 20;
/// Artifacts the sweeper takes per round.
const SWEEP_BATCH: u32 = 16;
/// How often the sweeper looks for artifacts without a current report.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// A stored artifact as `Read + Seek`, for a blocking thread inside the server's runtime.
pub struct StoredArtifactReader {
    artifacts: ArtifactStore,
    digest: Digest,
    size: u64,
    position: u64,
    buffer: Bytes,
    buffer_start: u64,
    runtime: tokio::runtime::Handle,
}

impl StoredArtifactReader {
    pub fn new(artifacts: ArtifactStore, record: &ArtifactRecord) -> Self {
        Self {
            artifacts,
            digest: record.digest,
            size: record.size_bytes,
            position: 0,
            buffer: Bytes::new(),
            buffer_start: 0,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let end = self.size.min(self.position.saturating_add(READ_CHUNK));
        let range = self.position..end;
        let artifacts = self.artifacts.clone();
        let digest = self.digest;
        let chunks: Vec<Bytes> = self
            .runtime
            .block_on(async move {
                artifacts
                    .read(&digest, Some(range))
                    .await?
                    .try_collect()
                    .await
            })
            .map_err(std::io::Error::other)?;
        self.buffer = if chunks.len() == 1 {
            chunks.into_iter().next().unwrap_or_default()
        } else {
            Bytes::from(chunks.concat())
        };
        self.buffer_start = self.position;
        Ok(())
    }
}

impl Read for StoredArtifactReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.size || out.is_empty() {
            return Ok(0);
        }
        let buffered = self.buffer_start..self.buffer_start + self.buffer.len() as u64;
        if !buffered.contains(&self.position) {
            self.fill()?;
            if self.buffer.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "artifact {} ended at {} bytes; its record says {}",
                        self.digest, self.position, self.size
                    ),
                ));
            }
        }
        let from = usize::try_from(self.position - self.buffer_start).unwrap_or(usize::MAX);
        let available = &self.buffer[from.min(self.buffer.len())..];
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl Seek for StoredArtifactReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        let Some(target) = target else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start of the artifact",
            ));
        };
        self.position = target;
        Ok(target)
    }
}

/// A report as it is stored: canonical JSON and its digest.
pub fn stored_form(artifact: &Digest, report: &ScanReport) -> Result<NewScan, ApiError> {
    let report_json =
        serde_json_canonicalizer::to_string(report).map_err(|error| ApiError::internal(&error))?;
    Ok(NewScan {
        artifact_digest: *artifact,
        engine: report.engine.clone(),
        engine_rank: i64::try_from(modelgate_scan::engine_rank(&report.engine)).unwrap_or(0),
        verdict: report.verdict.as_str().to_owned(),
        report_digest: format!("sha256:{}", hex::encode(Sha256::digest(&report_json))),
        report_json,
    })
}

/// Scans a stored artifact on a blocking thread.
pub async fn scan_stored(
    artifacts: &ArtifactStore,
    record: &ArtifactRecord,
) -> Result<ScanReport, ApiError> {
    let reader = StoredArtifactReader::new(artifacts.clone(), record);
    let limits = modelgate_scan::Limits::default();
    tokio::task::spawn_blocking(move || modelgate_scan::scan(reader, "", &limits))
        .await
        .map_err(|error| ApiError::internal(&error))
}

/// Scans an artifact and records the report (audited as `artifact.scan`), unless a report by this engine
/// (or a newer one) is already on record. Returns the report on record afterwards.
pub async fn ensure_scanned(
    state: &AppState,
    attribution: &Attribution,
    record: &ArtifactRecord,
) -> Result<ScanReport, ApiError> {
    if let Some(existing) = state.store().scan_of(&record.digest).await?
        && (existing.engine == ENGINE_VERSION || existing.engine_rank > engine_rank())
    {
        return parse_stored(&existing);
    }
    Ok(scan_and_record(state, attribution, record).await?.0)
}

/// Scans a stored artifact, records the report, and re-checks the open requests of the versions on it
/// when the report changed (a new report, or new rules that see otherwise).
async fn scan_and_record(
    state: &AppState,
    attribution: &Attribution,
    record: &ArtifactRecord,
) -> Result<(ScanReport, modelgate_store::ScanRecorded), ApiError> {
    let report = scan_stored(state.artifacts(), record).await?;
    let recorded = state
        .store()
        .record_scan(attribution, &stored_form(&record.digest, &report)?)
        .await?;
    match recorded {
        modelgate_store::ScanRecorded::New | modelgate_store::ScanRecorded::Replaced => {
            crate::promotion::recheck_requests_on_artifact(state, &record.digest).await;
        }
        modelgate_store::ScanRecorded::KeptNewer => {
            // The report on record is the newer engine's; answer with it.
            if let Some(kept) = state.store().scan_of(&record.digest).await? {
                return Ok((parse_stored(&kept)?, recorded));
            }
        }
        modelgate_store::ScanRecorded::Unchanged => {}
    }
    Ok((report, recorded))
}

/// This engine's rank as the store keeps it.
fn engine_rank() -> i64 {
    i64::try_from(modelgate_scan::ENGINE_RANK).unwrap_or(i64::MAX)
}

/// A stored report read back typed; one that no longer parses is an error, never skipped.
pub fn parse_stored(record: &modelgate_store::ScanRecord) -> Result<ScanReport, ApiError> {
    serde_json::from_str(&record.report_json).map_err(|error| {
        ApiError::internal(&InternalError(format!(
            "the stored scan report of artifact {} no longer parses: {error}",
            record.artifact_digest
        )))
    })
}

/// Scans, until shutdown, every artifact without a report by the current engine: at start and then every
/// minute (artifacts stored before scanning existed, a crash between storing and scanning, new rules).
/// Each artifact is scanned at most once per process here, so two replicas of different versions during
/// a rolling upgrade cannot replace each other's reports forever.
pub async fn run_sweeper(state: AppState) {
    let shutdown = state.shutdown().clone();
    let mut scanned_here = std::collections::HashSet::new();
    loop {
        if let Err(error) = sweep(&state, &mut scanned_here).await {
            tracing::warn!(error = %error.message, "artifact scan sweep failed; retrying later");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
    }
}

/// One pass over the artifacts without a current report, in digest order.
async fn sweep(
    state: &AppState,
    scanned_here: &mut std::collections::HashSet<Digest>,
) -> Result<(), ApiError> {
    let mut after = None;
    loop {
        let batch = state
            .store()
            .artifacts_to_scan(ENGINE_VERSION, engine_rank(), after.as_ref(), SWEEP_BATCH)
            .await?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = Some(last.digest);
        for record in &batch {
            if state.shutdown().is_cancelled() {
                return Ok(());
            }
            if !scanned_here.insert(record.digest) {
                continue;
            }
            let attribution = Attribution::system("artifact scan", state.now());
            let (report, recorded) = scan_and_record(state, &attribution, record).await?;
            tracing::info!(digest = %record.digest, verdict = %report.verdict, ?recorded, "artifact scanned");
        }
    }
}
