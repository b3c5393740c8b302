//! `/api/v1/artifacts`: streaming, content-addressed upload, and downloads with HTTP `Range`.

use crate::auth::Caller;
use crate::convert::format_time;
use crate::error::{ApiError, ErrorCode, InternalError};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use modelgate_api as api;
use modelgate_core::{ArtifactRecord, Digest};
use std::ops::Range;

#[utoipa::path(post, path = "/api/v1/artifacts", tag = "artifacts",
    params(api::UploadArtifactQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The artifact's bytes, streamed"),
    responses(
        (status = 201, body = api::Artifact, description = "Stored"),
        (status = 200, body = api::Artifact, description = "Identical content was already stored"),
        (status = 400, body = api::ErrorBody, description = "`digest_mismatch`: the content does not hash to `expected_digest`"),
        (status = 413, body = api::ErrorBody)))]
/// Upload an artifact
///
/// Streams the bytes into content-addressed storage, hashing them on the way; with `expected_digest` a
/// mismatch is refused and nothing is kept. The same bytes uploaded again are stored once. The artifact
/// scanner reads the content (without executing anything) before the answer, which carries its verdict.
/// Register a version with the returned digest.
pub async fn upload_artifact(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<api::UploadArtifactQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<api::Artifact>), ApiError> {
    let expected_text = query.expected_digest.or_else(|| {
        headers
            .get("x-expected-digest")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    });
    let expected = expected_text
        .as_deref()
        .map(|text| {
            Digest::parse(text).map_err(|mut invalid| {
                invalid.field = "expected_digest";
                invalid
            })
        })
        .transpose()?;
    let limits = state.upload_limits();
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limits.max_bytes) {
        return Err(modelgate_store::UploadError::TooLarge {
            limit: limits.max_bytes,
        }
        .into());
    }
    let body = until_shutdown(body.into_data_stream(), state.shutdown().clone());
    let stored = state.artifacts().upload(body, expected, limits).await?;
    let (record, newly_stored) = state
        .store()
        .record_artifact(
            &caller.attribution(state.now()),
            &stored.digest,
            stored.size_bytes,
        )
        .await?;
    // Scanned before the answer, so the version registered next has its scan report in its evidence
    // (the sweeper catches what a crash here leaves unscanned).
    let scan = crate::scanning::ensure_scanned(
        &state,
        &modelgate_store::Attribution::system("artifact scan", state.now()),
        &record,
    )
    .await?;
    tracing::info!(digest = %record.digest, size = record.size_bytes, newly_stored, verdict = %scan.verdict, "artifact uploaded");
    let status = if newly_stored {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(api::Artifact {
            digest: record.digest.to_string(),
            size_bytes: record.size_bytes,
            created_at: format_time(record.created_at),
            newly_stored,
            scan_verdict: crate::convert::Wire::to_wire(scan.verdict),
        }),
    ))
}

/// Ends the body with an error when the server shuts down, so that an upload in progress is discarded
/// instead of keeping shutdown waiting (or, worse, being stored truncated).
fn until_shutdown(
    body: impl Stream<Item = Result<Bytes, axum::Error>> + Send + 'static,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>> {
    let start = Some((body.boxed(), shutdown));
    Box::pin(futures::stream::unfold(start, |state| async move {
        let (mut body, shutdown) = state?;
        tokio::select! {
            biased;
            () = shutdown.cancelled() => Some((
                Err("the server is shutting down; retry the upload".to_owned()),
                None,
            )),
            chunk = body.next() => {
                let chunk = chunk?.map_err(|error| error.to_string());
                Some((chunk, Some((body, shutdown))))
            }
        }
    }))
}

#[utoipa::path(get, path = "/api/v1/artifacts/{digest}", tag = "artifacts",
    params(("digest" = String, Path, description = "`sha256:<hex>`"),
           ("Range" = Option<String>, Header, description = "`bytes=START-END`, `bytes=START-` or `bytes=-SUFFIX`")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
              (status = 206, content_type = "application/octet-stream", body = Vec<u8>),
              (status = 404, body = api::ErrorBody), (status = 416, body = api::ErrorBody)))]
/// Download an artifact by digest
///
/// Serves the stored bytes with their digest as ETag and `x-content-digest`; `Range` requests give 206. The
/// client should verify the digest before using the file.
pub async fn download_artifact(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(digest): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let digest = Digest::parse(&digest)?;
    let record = state.store().get_artifact_record(&digest).await?;
    let filename = digest.hex();
    serve_artifact(
        &state,
        &record,
        &headers,
        &filename,
        "application/octet-stream",
    )
    .await
}

/// Streams an artifact with the headers a careful client needs: its digest (to verify), its length,
/// and `Range` support (to resume).
pub(crate) async fn serve_artifact(
    state: &AppState,
    record: &ArtifactRecord,
    headers: &HeaderMap,
    filename: &str,
    media_type: &str,
) -> Result<Response, ApiError> {
    let size = record.size_bytes;
    let range = match headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
    {
        Some(text) => parse_range(text, size)?,
        None => None,
    };
    let stream = state
        .artifacts()
        .read(&record.digest, range.clone().filter(|r| !r.is_empty()))
        .await
        .map_err(|error| match error {
            object_store::Error::NotFound { .. } => ApiError::internal(&InternalError(format!(
                "artifact {} is recorded but missing from storage; run `modelgate admin verify-artifacts`",
                record.digest
            ))),
            other => ApiError::internal(&other),
        })?;
    let (status, length) = match &range {
        Some(range) => (StatusCode::PARTIAL_CONTENT, range.end - range.start),
        None => (StatusCode::OK, size),
    };
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Versions recorded before media types were checked may hold one no header can carry.
    let content_type = HeaderValue::from_str(media_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    response_headers.insert(header::CONTENT_TYPE, content_type);
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}\"", record.digest)) {
        response_headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&record.digest.to_string()) {
        response_headers.insert("x-content-digest", value);
    }
    let safe_name: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{safe_name}\"")) {
        response_headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some(range) = &range {
        let end = range.end.saturating_sub(1);
        if let Ok(value) = HeaderValue::from_str(&format!("bytes {}-{end}/{size}", range.start)) {
            response_headers.insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response.into_response())
}

/// Resolves a single-range `Range` header against the artifact's size. Multiple ranges and syntax the
/// server does not understand are ignored (the whole artifact is sent), as RFC 9110 allows; a range that
/// starts past the end is a 416.
fn parse_range(text: &str, size: u64) -> Result<Option<Range<u64>>, ApiError> {
    let Some(spec) = text.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = || {
        ApiError::new(
            ErrorCode::RangeNotSatisfiable,
            format!("range {spec:?} is outside the artifact's {size} bytes"),
        )
        .with_details(serde_json::json!({ "size_bytes": size }))
    };
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let Ok(suffix) = suffix.parse::<u64>() else {
                return Ok(None);
            };
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            size.saturating_sub(suffix)..size
        }
        (start, end) => {
            let Ok(start) = start.parse::<u64>() else {
                return Ok(None);
            };
            let end = if end.is_empty() {
                size
            } else {
                match end.parse::<u64>() {
                    Ok(last) if last >= start => last.saturating_add(1).min(size),
                    _ => return Ok(None),
                }
            };
            if start >= size {
                return Err(unsatisfiable());
            }
            start..end
        }
    };
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_resolve_against_the_size() {
        let cases = [
            ("bytes=0-9", Some(0..10)),
            ("bytes=5-", Some(5..100)),
            ("bytes=-10", Some(90..100)),
            ("bytes=-1000", Some(0..100)),
            ("bytes=90-1000", Some(90..100)),
            ("bytes=0-0", Some(0..1)),
            ("bytes=0-1,5-6", None),
            ("items=0-1", None),
            ("bytes=9-3", None),
            ("bytes=abc", None),
        ];
        for (header, expected) in cases {
            assert_eq!(parse_range(header, 100).unwrap(), expected, "{header}");
        }
        for unsatisfiable in ["bytes=100-", "bytes=150-200", "bytes=-0"] {
            assert!(parse_range(unsatisfiable, 100).is_err(), "{unsatisfiable}");
        }
    }
}
