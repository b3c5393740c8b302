//! `/audit`: the audit trail newest first, filtered by actor, target (and what lies under it), action,
//! outcome and time, paged by cursor; the latest signed checkpoint and whether the stored log verifies up
//! to it; the export to download (entries, checkpoint and public key, the files `modelgate audit verify
//! --export` reads).

use super::errors::{UiError, rendered};
use super::extract::PageQuery;
use super::format::{self, Nav};
use super::session::Viewer;
use crate::state::AppState;
use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use modelgate_core::Timestamp;
use modelgate_store::AuditFilter;
use std::sync::{Arc, Mutex};

const PAGE_SIZE: u32 = 50;

/// What the last verification of the stored log found, kept per process: verifying a large log takes
/// seconds, so a page shows the last result and starts a new check in the background when the log has
/// grown past it.
#[derive(Debug, Default)]
pub struct LogCheck {
    state: Mutex<LogCheckState>,
}

#[derive(Debug, Default, Clone)]
struct LogCheckState {
    /// (checkpoint size verified, the outcome in words, whether it verified, when)
    last: Option<(u64, String, bool, Timestamp)>,
    running: bool,
}

impl LogCheck {
    fn snapshot(&self) -> LogCheckState {
        self.state
            .lock()
            .map(|state| state.clone())
            .unwrap_or_default()
    }

    /// Starts a verification unless one runs or the last one covered `size`.
    fn refresh(self: &Arc<Self>, state: &AppState, size: u64) {
        {
            let Ok(mut current) = self.state.lock() else {
                return;
            };
            if current.running || current.last.as_ref().is_some_and(|last| last.0 >= size) {
                return;
            }
            current.running = true;
        }
        let check = self.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let verifier = modelgate_audit::NoteVerifier::parse(&state.signer().verifier_key());
            let outcome = match verifier {
                Err(error) => (
                    0,
                    format!("the server's key does not parse: {error}"),
                    false,
                ),
                Ok(verifier) => match state.store().verify_stored_log(&verifier, |_| {}).await {
                    Ok(Ok(report)) => (
                        report.size,
                        format!(
                            "the stored log verifies: {} entries, {} signed checkpoints, root {}",
                            report.size,
                            report.checkpoints_verified,
                            hex::encode(report.root)
                        ),
                        true,
                    ),
                    Ok(Err(problem)) => (
                        size,
                        format!("the stored log does NOT verify: {problem}"),
                        false,
                    ),
                    Err(error) => (0, format!("the log could not be read: {error}"), false),
                },
            };
            if let Ok(mut current) = check.state.lock() {
                current.running = false;
                current.last = Some((outcome.0, outcome.1, outcome.2, state.now()));
            }
        });
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    target: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<u64>,
}

pub struct EventView {
    pub seq: u64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    actor: String,
    target: String,
    action: String,
    outcome: String,
    since: String,
    until: String,
    events: Vec<EventView>,
    older: Option<String>,
    checkpoint_size: u64,
    checkpoint_root: String,
    checkpoint_note: String,
    verification: String,
    verified: Option<bool>,
    error: Option<String>,
}

/// `2026-12-01` (start of that day, UTC) or an RFC 3339 time.
fn parse_time(field: &str, text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    Timestamp::parse_rfc3339(&full)
        .map_err(|_| format!("{field}: {text:?} is not a date (2026-12-01) or an RFC 3339 time"))
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    PageQuery(query): PageQuery<AuditQuery>,
) -> Result<Response, UiError> {
    let blank = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let mut problems = Vec::new();
    let since = blank(&query.since).and_then(|text| {
        parse_time("since", &text)
            .map_err(|problem| problems.push(problem))
            .ok()
    });
    let until = blank(&query.until).and_then(|text| {
        parse_time("until", &text)
            .map_err(|problem| problems.push(problem))
            .ok()
    });
    let outcome = blank(&query.outcome);
    if let Some(outcome) = &outcome
        && outcome != "ok"
        && outcome != "denied"
    {
        problems.push(format!("outcome: {outcome:?} is not ok or denied"));
    }
    let mut rows = if problems.is_empty() {
        state
            .store()
            .list_audit_events(&AuditFilter {
                target: blank(&query.target),
                actor: blank(&query.actor),
                action: blank(&query.action),
                outcome: outcome.clone(),
                since,
                until,
                before_seq: query.before,
                newest_first: true,
                limit: PAGE_SIZE + 1,
                ..AuditFilter::default()
            })
            .await?
    } else {
        Vec::new()
    };
    let older_than = (rows.len() > PAGE_SIZE as usize)
        .then(|| {
            rows.truncate(PAGE_SIZE as usize);
            rows.last().map(|(seq, _)| *seq)
        })
        .flatten();
    let events = rows
        .iter()
        .filter_map(|(_, leaf)| modelgate_audit::AuditEvent::from_leaf(leaf.as_bytes()).ok())
        .map(|event| EventView {
            seq: event.seq,
            time: Timestamp::parse_rfc3339(&event.time)
                .map(format::time)
                .unwrap_or(event.time.clone()),
            actor: event.actor.clone(),
            action: event.action.clone(),
            target: event.target.clone(),
            outcome: match event.outcome {
                modelgate_audit::Outcome::Ok => "ok".to_owned(),
                modelgate_audit::Outcome::Denied => "denied".to_owned(),
            },
            reason: event.reason.clone().unwrap_or_default(),
        })
        .collect();
    let older = older_than.map(|seq| {
        let mut parts = Vec::new();
        for (name, value) in [
            ("actor", &query.actor),
            ("target", &query.target),
            ("action", &query.action),
            ("outcome", &query.outcome),
            ("since", &query.since),
            ("until", &query.until),
        ] {
            if let Some(value) = value.as_deref().filter(|value| !value.is_empty()) {
                parts.push(format!("{name}={}", format::url_encode(value)));
            }
        }
        parts.push(format!("before={seq}"));
        format!("/audit?{}", parts.join("&"))
    });
    let checkpoint =
        crate::audit_log::checkpoint_now(state.store(), state.signer(), state.now()).await?;
    let check = state.log_check();
    check.refresh(&state, checkpoint.size);
    let snapshot = check.snapshot();
    let (verification, verified) = match (&snapshot.last, snapshot.running) {
        (Some((size, text, ok, at)), running) => (
            format!(
                "Checked at {} up to {size} entries: {text}.{}",
                format::time(*at),
                if running {
                    " A check of the newer entries is running; reload to see it."
                } else {
                    ""
                }
            ),
            Some(*ok),
        ),
        (None, _) => (
            "The stored log is being verified now; reload in a moment to see the result."
                .to_owned(),
            None,
        ),
    };
    let page = AuditPage {
        nav: Nav::for_viewer(&viewer, "audit", None),
        actor: query.actor.clone().unwrap_or_default(),
        target: query.target.clone().unwrap_or_default(),
        action: query.action.clone().unwrap_or_default(),
        outcome: outcome.unwrap_or_default(),
        since: query.since.clone().unwrap_or_default(),
        until: query.until.clone().unwrap_or_default(),
        events,
        older,
        checkpoint_size: checkpoint.size,
        checkpoint_root: hex::encode(checkpoint.root),
        checkpoint_note: checkpoint.note,
        verification,
        verified,
        error: (!problems.is_empty()).then(|| problems.join("; ")),
    };
    let status = if page.error.is_some() {
        axum::http::StatusCode::BAD_REQUEST
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, rendered(&page)).into_response())
}

fn download(body: impl Into<Body>, content_type: &'static str, file: &'static str) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
            .unwrap_or(HeaderValue::from_static("attachment")),
    );
    response
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct ExportQuery {
    /// The checkpoint size the entries must reach (the one the page showed).
    size: Option<u64>,
}

/// Entries `0..size` as JSON Lines (each line exactly the bytes hashed), streamed page by page.
pub async fn export_entries(
    State(state): State<AppState>,
    _viewer: Viewer,
    PageQuery(query): PageQuery<ExportQuery>,
) -> Result<Response, UiError> {
    let (head, _) = state.store().audit_tree_head().await?;
    let size = query.size.unwrap_or(head).min(head);
    const CHUNK: u64 = 5_000;
    let store = state.store().clone();
    let stream = futures::stream::unfold(0u64, move |start| {
        let store = store.clone();
        async move {
            if start >= size {
                return None;
            }
            let end = (start + CHUNK).min(size);
            match store.audit_entries(start, end).await {
                Ok(entries) => {
                    let mut chunk = String::new();
                    for (_, leaf) in &entries {
                        chunk.push_str(leaf);
                        chunk.push('\n');
                    }
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)), end))
                }
                Err(error) => Some((Err(std::io::Error::other(error.to_string())), size)),
            }
        }
    });
    Ok(download(
        Body::from_stream(stream),
        "application/x-ndjson",
        "entries.jsonl",
    ))
}

pub async fn export_checkpoint(
    State(state): State<AppState>,
    _viewer: Viewer,
) -> Result<Response, UiError> {
    let checkpoint =
        crate::audit_log::checkpoint_now(state.store(), state.signer(), state.now()).await?;
    Ok(download(
        checkpoint.note,
        "text/plain; charset=utf-8",
        "checkpoint",
    ))
}

pub async fn export_public_key(State(state): State<AppState>, _viewer: Viewer) -> Response {
    download(
        format!("{}\n", state.signer().verifier_key()),
        "text/plain; charset=utf-8",
        "public-key",
    )
}
