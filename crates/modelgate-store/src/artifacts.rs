//! The content-addressed artifact store: bytes live under their SHA-256 digest in an `object_store`
//! backend (a local folder by default; S3, GCS or Azure by URL), written through a temporary object so
//! that nothing becomes visible under a digest before its content has been hashed and checked.
//!
//! *Invariant*: object paths are built only from a parsed [`Digest`] (hex digits) or a server-made upload
//! id, never from a name a client chose, so no request can address a file outside the store.

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use modelgate_core::{ArtifactRecord, Digest};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest as _, Sha256};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Parts are written in chunks of this size (S3 needs at least 5 MiB per part) with at most
/// `MAX_PARTS_IN_FLIGHT` being written at once: peak memory per upload stays near 24 MiB.
const CHUNK_BYTES: usize = 8 * 1024 * 1024;
const MAX_PARTS_IN_FLIGHT: usize = 2;
const UPLOADS_PREFIX: &str = "uploads";
const BLOBS_PREFIX: &str = "sha256";

#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub max_bytes: u64,
}

/// What an upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    pub digest: Digest,
    pub size_bytes: u64,
}

/// A byte range of an artifact, `start..end` (end exclusive), already checked against its size.
pub type ByteRange = Range<u64>;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the content's digest is {actual}, not the expected {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("the artifact is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error("artifact storage: {0}")]
    Storage(#[from] object_store::Error),
}

/// The result of re-hashing every stored artifact.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: usize,
    pub bytes: u64,
    /// Artifacts whose bytes no longer hash to their digest, with what was found.
    pub problems: Vec<(Digest, String)>,
}

#[derive(Clone)]
pub struct ArtifactStore {
    objects: Arc<dyn ObjectStore>,
    description: String,
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("location", &self.description)
            .finish()
    }
}

impl ArtifactStore {
    /// A store in a local folder, created if missing.
    pub fn local(folder: &Path) -> Result<Self, object_store::Error> {
        std::fs::create_dir_all(folder).map_err(|source| object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(source),
        })?;
        let objects = LocalFileSystem::new_with_prefix(folder)?;
        Ok(Self {
            objects: Arc::new(objects),
            description: folder.display().to_string(),
        })
    }

    /// A store given by URL: `file:///path`, `s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix`. Credentials and endpoints come from the provider's usual environment
    /// variables (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`, `AWS_REGION`, `GOOGLE_SERVICE_ACCOUNT`, …).
    pub fn from_url(url: &str) -> Result<Self, object_store::Error> {
        let parsed = url::Url::parse(url).map_err(|error| object_store::Error::Generic {
            store: "url",
            source: format!("artifact store URL {url:?}: {error}").into(),
        })?;
        if parsed.scheme() == "file" {
            let folder = parsed
                .to_file_path()
                .map_err(|()| object_store::Error::Generic {
                    store: "url",
                    source: format!("artifact store URL {url:?} is not an absolute file path")
                        .into(),
                })?;
            return Self::local(&folder);
        }
        let environment = std::env::vars().filter(|(key, _)| {
            ["AWS_", "GOOGLE_", "AZURE_", "OBJECT_STORE_"]
                .iter()
                .any(|prefix| key.starts_with(prefix))
        });
        let environment: Vec<(String, String)> = environment
            .map(|(key, value)| (key.to_ascii_lowercase(), value))
            .collect();
        let (objects, prefix) = object_store::parse_url_opts(&parsed, environment)?;
        Ok(Self {
            objects: Arc::new(PrefixStore::new(objects, prefix)),
            description: url.to_owned(),
        })
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    fn blob_path(digest: &Digest) -> ObjectPath {
        let hex = digest.hex();
        ObjectPath::from_iter([BLOBS_PREFIX, &hex[..2], &hex])
    }

    /// Streams `body` into the store, hashing as it goes, and makes it visible under its digest only once
    /// it is complete, within `limits`, and equal to `expected` when given. On any failure, including the
    /// client going away, nothing stays behind.
    pub async fn upload<S, E>(
        &self,
        body: S,
        expected: Option<Digest>,
        limits: UploadLimits,
    ) -> Result<StoredArtifact, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let temporary =
            ObjectPath::from_iter([UPLOADS_PREFIX, &uuid::Uuid::new_v4().simple().to_string()]);
        let multipart = self.objects.put_multipart(&temporary).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(multipart, CHUNK_BYTES);
        let outcome = copy_hashing(body, &mut writer, limits).await;
        let (digest, size_bytes) = match outcome {
            Ok(done) => done,
            Err(error) => {
                if let Err(abort_error) = writer.abort().await {
                    tracing::warn!(%abort_error, "could not clean up an interrupted upload");
                }
                return Err(error);
            }
        };
        // From here the temporary object exists; the guard deletes it if this future is dropped.
        let guard = TemporaryObject {
            objects: self.objects.clone(),
            path: Some(temporary.clone()),
        };
        writer.finish().await?;
        if let Some(expected) = expected
            && expected != digest
        {
            guard.delete_now().await;
            return Err(UploadError::DigestMismatch {
                expected,
                actual: digest,
            });
        }
        let destination = Self::blob_path(&digest);
        match self.objects.head(&destination).await {
            Ok(_) => guard.delete_now().await,
            Err(object_store::Error::NotFound { .. }) => {
                self.objects.rename(&temporary, &destination).await?;
                guard.disarm();
            }
            Err(error) => {
                guard.delete_now().await;
                return Err(error.into());
            }
        }
        Ok(StoredArtifact { digest, size_bytes })
    }

    /// Streams an artifact's bytes, or the given range of them.
    pub async fn read(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BoxStream<'static, Result<Bytes, object_store::Error>>, object_store::Error> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self
            .objects
            .get_opts(&Self::blob_path(digest), options)
            .await?;
        Ok(result.into_stream())
    }

    /// Reads a whole artifact into memory, refusing ones larger than `max_bytes` (for datasets and
    /// predictions files, which are parsed in memory).
    pub async fn read_to_vec(
        &self,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, object_store::Error> {
        let mut stream = self.read(digest, None).await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.try_next().await? {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Ok(None);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes))
    }

    /// Re-hashes every recorded artifact and reports those whose bytes are missing or changed.
    pub async fn verify(
        &self,
        records: &[ArtifactRecord],
        mut progress: impl FnMut(&ArtifactRecord, Option<&str>),
    ) -> VerifyReport {
        let mut report = VerifyReport::default();
        for record in records {
            let problem = match self.hash_stored(&record.digest).await {
                Ok((actual, size)) if actual == record.digest && size == record.size_bytes => {
                    report.bytes += size;
                    None
                }
                Ok((actual, size)) => Some(format!(
                    "content changed: now {size} bytes hashing to {actual} (recorded {} bytes)",
                    record.size_bytes
                )),
                Err(object_store::Error::NotFound { .. }) => {
                    Some("missing from storage".to_owned())
                }
                Err(error) => Some(format!("unreadable: {error}")),
            };
            report.checked += 1;
            progress(record, problem.as_deref());
            if let Some(problem) = problem {
                report.problems.push((record.digest, problem));
            }
        }
        report
    }

    async fn hash_stored(&self, digest: &Digest) -> Result<(Digest, u64), object_store::Error> {
        let mut stream = self.read(digest, None).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((Digest::from_sha256_bytes(hasher.finalize().into()), size))
    }

    /// Deletes temporary upload objects older than `age`, left by a crash mid-upload. Younger ones may
    /// belong to an upload in progress on another replica.
    pub async fn sweep_abandoned_uploads(
        &self,
        age: Duration,
    ) -> Result<usize, object_store::Error> {
        let cutoff = chrono_cutoff(age);
        let prefix = ObjectPath::from(UPLOADS_PREFIX);
        let stale: Vec<ObjectPath> = self
            .objects
            .list(Some(&prefix))
            .try_filter(|meta| futures::future::ready(meta.last_modified.timestamp() < cutoff))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        for path in &stale {
            self.objects.delete(path).await?;
        }
        Ok(stale.len())
    }
}

// Object stores stamp objects with the wall clock, so the cutoff compares against the wall clock too.
#[allow(clippy::disallowed_methods)]
fn chrono_cutoff(age: Duration) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    i64::try_from(now.saturating_sub(age.as_secs())).unwrap_or(i64::MAX)
}

/// Copies the body into the upload, hashing and counting; stops at the limit.
async fn copy_hashing<S, E>(
    mut body: S,
    writer: &mut WriteMultipart,
    limits: UploadLimits,
) -> Result<(Digest, u64), UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| UploadError::Interrupted(error.to_string()))?;
        size += chunk.len() as u64;
        if size > limits.max_bytes {
            return Err(UploadError::TooLarge {
                limit: limits.max_bytes,
            });
        }
        hasher.update(&chunk);
        writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await?;
        writer.put(chunk);
    }
    Ok((Digest::from_sha256_bytes(hasher.finalize().into()), size))
}

/// A completed temporary object that must not outlive the upload that made it.
struct TemporaryObject {
    objects: Arc<dyn ObjectStore>,
    path: Option<ObjectPath>,
}

impl TemporaryObject {
    async fn delete_now(mut self) {
        if let Some(path) = self.path.take()
            && let Err(error) = self.objects.delete(&path).await
        {
            tracing::warn!(%error, %path, "could not delete a temporary upload");
        }
    }

    fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for TemporaryObject {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let objects = self.objects.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = objects.delete(&path).await;
                });
            }
        }
    }
}
