//! The server's side of the audit log: the Ed25519 key that signs checkpoints (kept in a file, created
//! on first start), and checkpoints made on demand and on a timer whenever the log has grown.

use modelgate_audit::{Checkpoint, NoteSigner};
use modelgate_core::Timestamp;
use modelgate_store::{Store, StoreError, StoredCheckpoint};
use rand::RngCore;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Reads the 32-byte signing seed (64 hex digits) from `path`, creating the file with a random seed and
/// owner-only permissions when it does not exist.
pub fn load_or_create_signing_key(path: &Path) -> std::io::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_seed(&text).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} must hold 64 hex digits (an Ed25519 seed)",
                    path.display()
                ),
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(path) {
                Ok(mut file) => {
                    file.write_all(format!("{}\n", hex::encode(seed)).as_bytes())?;
                    file.sync_all()?;
                    tracing::info!(path = %path.display(), "created the audit signing key");
                    Ok(seed)
                }
                // Another process created it first: use theirs.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    load_or_create_signing_key(path)
                }
                Err(error) => Err(error),
            }
        }
        Err(error) => Err(error),
    }
}

fn parse_seed(text: &str) -> Option<[u8; 32]> {
    hex::decode(text.trim()).ok()?.try_into().ok()
}

/// The signer for a seed, named by `origin` or by the default name derived from the key.
pub fn signer_for(
    seed: &[u8; 32],
    origin: Option<&str>,
) -> Result<NoteSigner, modelgate_audit::CheckpointError> {
    let name = origin.map_or_else(|| NoteSigner::default_name(seed), str::to_owned);
    NoteSigner::from_seed(&name, seed)
}

/// The latest checkpoint, after signing a new one if the log has grown since.
pub async fn checkpoint_now(
    store: &Store,
    signer: &NoteSigner,
    now: Timestamp,
) -> Result<StoredCheckpoint, StoreError> {
    let (size, root) = store.audit_tree_head().await?;
    if let Some(latest) = store.latest_checkpoint().await?
        && latest.size >= size
    {
        return Ok(latest);
    }
    let note = signer.sign(&Checkpoint {
        origin: signer.name().to_owned(),
        size,
        root,
    });
    let checkpoint = StoredCheckpoint {
        size,
        root,
        note,
        created_at: now,
    };
    store.save_checkpoint(&checkpoint).await?;
    Ok(checkpoint)
}

/// Signs a checkpoint every `interval` while the log grows, until shutdown.
pub async fn run_checkpointer(
    store: Store,
    signer: std::sync::Arc<NoteSigner>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {
                if let Err(error) = checkpoint_now(&store, &signer, crate::system_now()).await {
                    tracing::warn!(%error, "could not sign an audit checkpoint");
                }
            }
        }
    }
}
