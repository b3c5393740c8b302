//! The content-addressed artifact store on the local file system.

use bytes::Bytes;
use futures::TryStreamExt;
use modelgate_core::{ArtifactRecord, Digest, Timestamp};
use modelgate_store::{ArtifactStore, UploadError, UploadLimits};
use sha2::{Digest as _, Sha256};
use std::path::Path;

const LIMITS: UploadLimits = UploadLimits {
    max_bytes: 64 * 1024 * 1024,
};

fn sha256(data: &[u8]) -> Digest {
    Digest::from_sha256_bytes(Sha256::digest(data).into())
}

fn chunks(data: &[u8], size: usize) -> impl futures::Stream<Item = Result<Bytes, String>> + Unpin {
    let pieces: Vec<Result<Bytes, String>> = data
        .chunks(size)
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    futures::stream::iter(pieces)
}

/// Every regular file under `folder`, relative to it.
fn files_under(folder: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(folder).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|index| (index * 31 % 251) as u8).collect()
}

async fn read_all(
    store: &ArtifactStore,
    digest: &Digest,
    range: Option<std::ops::Range<u64>>,
) -> Vec<u8> {
    let stream = store.read(digest, range).await.unwrap();
    let parts: Vec<Bytes> = stream.try_collect().await.unwrap();
    parts.concat()
}

#[tokio::test]
async fn stores_content_under_its_digest_once() {
    let folder = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(folder.path()).unwrap();
    let data = payload(20 * 1024 * 1024 + 17);
    let expected = sha256(&data);
    let stored = store
        .upload(chunks(&data, 65_536), Some(expected), LIMITS)
        .await
        .unwrap();
    assert_eq!(stored.digest, expected);
    assert_eq!(stored.size_bytes, data.len() as u64);
    let again = store
        .upload(chunks(&data, 1_000_003), None, LIMITS)
        .await
        .unwrap();
    assert_eq!(again, stored);
    let hex = expected.hex();
    assert_eq!(
        files_under(folder.path()),
        [format!("sha256/{}/{hex}", &hex[..2])],
        "stored once, no temporary left"
    );
    assert_eq!(read_all(&store, &expected, None).await, data);
    assert_eq!(
        read_all(&store, &expected, Some(5..105)).await,
        &data[5..105]
    );
}

#[tokio::test]
async fn a_wrong_expected_digest_keeps_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(folder.path()).unwrap();
    let data = payload(10_000);
    let wrong = sha256(b"something else");
    let error = store
        .upload(chunks(&data, 999), Some(wrong), LIMITS)
        .await
        .unwrap_err();
    match error {
        UploadError::DigestMismatch { expected, actual } => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, sha256(&data));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(files_under(folder.path()).is_empty());
}

#[tokio::test]
async fn an_upload_over_the_limit_keeps_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(folder.path()).unwrap();
    let data = payload(10 * 1024 * 1024);
    let limits = UploadLimits {
        max_bytes: 9 * 1024 * 1024,
    };
    let error = store
        .upload(chunks(&data, 65_536), None, limits)
        .await
        .unwrap_err();
    assert!(matches!(error, UploadError::TooLarge { limit } if limit == limits.max_bytes));
    assert!(files_under(folder.path()).is_empty());
}

#[tokio::test]
async fn an_interrupted_body_keeps_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(folder.path()).unwrap();
    let data = payload(12 * 1024 * 1024);
    let mut pieces: Vec<Result<Bytes, String>> = data
        .chunks(1 << 20)
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    pieces.truncate(10);
    pieces.push(Err("connection reset by peer".to_owned()));
    let error = store
        .upload(futures::stream::iter(pieces), None, LIMITS)
        .await
        .unwrap_err();
    assert!(
        matches!(error, UploadError::Interrupted(ref message) if message.contains("reset")),
        "{error:?}"
    );
    // The staging file of the aborted multipart upload is removed on a blocking thread; wait for it.
    for _ in 0..200 {
        if files_under(folder.path()).is_empty() {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        files_under(folder.path()).is_empty(),
        "{:?}",
        files_under(folder.path())
    );
}

#[tokio::test]
async fn verification_names_changed_and_missing_artifacts() {
    let folder = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(folder.path()).unwrap();
    let mut records = Vec::new();
    for content in [b"alpha".as_slice(), b"bravo", b"charlie"] {
        let stored = store
            .upload(chunks(content, 3), None, LIMITS)
            .await
            .unwrap();
        records.push(ArtifactRecord {
            digest: stored.digest,
            size_bytes: stored.size_bytes,
            created_at: Timestamp::from_unix_millis(0),
        });
    }
    let clean = store.verify(&records, |_, _| {}).await;
    assert_eq!((clean.checked, clean.problems.len()), (3, 0));
    let path_of = |digest: &Digest| {
        let hex = digest.hex();
        folder.path().join("sha256").join(&hex[..2]).join(hex)
    };
    std::fs::write(path_of(&records[0].digest), b"alphA").unwrap();
    std::fs::remove_file(path_of(&records[2].digest)).unwrap();
    let mut reported = Vec::new();
    let report = store
        .verify(&records, |record, problem| {
            reported.push((record.digest, problem.map(str::to_owned)))
        })
        .await;
    assert_eq!(report.checked, 3);
    assert_eq!(report.problems.len(), 2);
    assert_eq!(report.problems[0].0, records[0].digest);
    assert!(report.problems[0].1.contains("content changed"));
    assert_eq!(report.problems[1].0, records[2].digest);
    assert!(report.problems[1].1.contains("missing"));
    assert_eq!(reported.len(), 3);
}
