//! `/api/v1/audit`: the log's signed checkpoint and key, its entries (exact leaf bytes), inclusion and
//! consistency proofs, and filtered events.

use crate::audit_log::checkpoint_now;
use crate::auth::Caller;
use crate::convert::{decode_cursor, encode_cursor};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use modelgate_api as api;
use modelgate_audit::AuditEvent;
use modelgate_core::Timestamp;
use modelgate_store::AuditFilter;

/// Entries per `entries` call at most.
const MAX_ENTRIES_PER_CALL: u64 = 10_000;

fn text(body: String, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, content_type = "text/plain", body = String,
        description = "The latest checkpoint as a C2SP signed note; signed anew when the log has grown")))]
/// The latest signed checkpoint of the audit log
///
/// A C2SP signed note over the log's size and Merkle root, signed by the server's Ed25519 key; auditors pin
/// the key and check consistency between checkpoints.
pub async fn get_checkpoint(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Response, ApiError> {
    let checkpoint = checkpoint_now(state.store(), state.signer(), state.now()).await?;
    Ok(text(checkpoint.note, "text/plain; charset=utf-8"))
}

#[utoipa::path(get, path = "/api/v1/audit/public-key", tag = "audit",
    responses((status = 200, content_type = "text/plain", body = String,
        description = "The verifier key of checkpoints: `<name>+<hex key id>+<base64 key>`; pin it")))]
/// The audit log's verifier key
///
/// The note verifier key (`name+keyid+key`) that checks checkpoints and attestations offline; the same file
/// `modelgate keys show --out` writes.
pub async fn get_public_key(State(state): State<AppState>, _caller: Caller) -> Response {
    text(
        format!("{}\n", state.signer().verifier_key()),
        "text/plain; charset=utf-8",
    )
}

#[utoipa::path(get, path = "/api/v1/audit/entries", tag = "audit", params(api::AuditEntriesQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = String,
        description = "Line i is exactly the bytes of leaf start + i (canonical JSON)")))]
/// Audit log entries by index
///
/// The stored leaves (canonical JSON, exactly as hashed) from `start` up to `end`, so an auditor can
/// recompute every hash; both must lie within the log.
pub async fn get_entries(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<api::AuditEntriesQuery>,
) -> Result<Response, ApiError> {
    let (size, _) = state.store().audit_tree_head().await?;
    let start = query.start.unwrap_or(0);
    let end = query
        .end
        .unwrap_or(start.saturating_add(1000))
        .min(start.saturating_add(MAX_ENTRIES_PER_CALL))
        .min(size);
    if start > size {
        return Err(ApiError::invalid(
            "start",
            format!("start: the log has {size} entries"),
        ));
    }
    let entries = state.store().audit_entries(start, end).await?;
    let mut body = String::new();
    for (_, leaf) in entries {
        body.push_str(&leaf);
        body.push('\n');
    }
    Ok(text(body, "application/x-ndjson"))
}

fn encode_hashes(hashes: &[modelgate_audit::Hash]) -> Vec<String> {
    hashes.iter().map(|hash| BASE64.encode(hash)).collect()
}

#[utoipa::path(get, path = "/api/v1/audit/proofs/inclusion", tag = "audit", params(api::InclusionProofQuery),
    responses((status = 200, body = api::InclusionProof), (status = 409, body = api::ErrorBody)))]
/// Prove that an entry is in the log
///
/// An RFC 9162 inclusion proof of entry `index` in the tree of size `tree_size`, to check against a signed
/// checkpoint's root.
pub async fn get_inclusion_proof(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<api::InclusionProofQuery>,
) -> Result<Json<api::InclusionProof>, ApiError> {
    let (hashes, root) = state
        .store()
        .audit_inclusion_proof(query.index, query.tree_size)
        .await?;
    Ok(Json(api::InclusionProof {
        index: query.index,
        tree_size: query.tree_size,
        root_hash: BASE64.encode(root),
        hashes: encode_hashes(&hashes),
    }))
}

#[utoipa::path(get, path = "/api/v1/audit/proofs/consistency", tag = "audit", params(api::ConsistencyProofQuery),
    responses((status = 200, body = api::ConsistencyProof), (status = 409, body = api::ErrorBody)))]
/// Prove that the log only grew
///
/// An RFC 9162 consistency proof between tree sizes `first` and `second`: the older log is a prefix of the
/// newer one.
pub async fn get_consistency_proof(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<api::ConsistencyProofQuery>,
) -> Result<Json<api::ConsistencyProof>, ApiError> {
    let (hashes, first_root, second_root) = state
        .store()
        .audit_consistency_proof(query.first, query.second)
        .await?;
    Ok(Json(api::ConsistencyProof {
        first: query.first,
        second: query.second,
        first_root_hash: BASE64.encode(first_root),
        second_root_hash: BASE64.encode(second_root),
        hashes: encode_hashes(&hashes),
    }))
}

#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(api::AuditEventsQuery),
    responses((status = 200, body = api::AuditEventList)))]
/// Search the audit log
///
/// Events newest first, filtered by target (a target matches what lies under it; `model/NAME` includes the
/// model's versions, cards, evaluations and requests), actor, action and time, paged by `cursor`.
pub async fn list_audit_events(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<api::AuditEventsQuery>,
) -> Result<Json<api::AuditEventList>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let since = query
        .since
        .as_deref()
        .map(|text| {
            Timestamp::parse_rfc3339(text).map_err(|mut invalid| {
                invalid.field = "since";
                invalid
            })
        })
        .transpose()?;
    let after_seq = match &query.cursor {
        Some(cursor) => Some(decode_cursor(cursor)?.parse::<u64>().map_err(|_| {
            ApiError::invalid("cursor", "cursor: not a cursor this server returned")
        })?),
        None => None,
    };
    let filter = AuditFilter {
        target: query.target,
        actor: query.actor,
        action: query.action,
        since,
        after_seq,
        limit: limit + 1,
        ..AuditFilter::default()
    };
    let mut rows = state.store().list_audit_events(&filter).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|(seq, _)| encode_cursor(&seq.to_string()))
    } else {
        None
    };
    let events = rows
        .iter()
        .map(|(_, leaf)| {
            AuditEvent::from_leaf(leaf.as_bytes())
                .map_err(|error| ApiError::internal(&error))
                .and_then(|event| {
                    serde_json::to_value(event).map_err(|error| ApiError::internal(&error))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(api::AuditEventList {
        events,
        next_cursor,
    }))
}
