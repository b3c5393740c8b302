//! `/models` (the inventory: filtered, sorted, paged), `/models/{name}` (versions, stage history, open
//! requests) and `/models/{name}/versions/{n}` (lineage, approval, card with revisions and diffs,
//! evaluations, attestations, and the form that opens a promotion request).

use super::errors::{UiError, rendered};
use super::extract::{PageForm, PagePath, PageQuery};
use super::format::{self, Nav};
use super::session::Viewer;
use crate::convert::{ApprovalContext, approval_status_of};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::promotion::policy_in_force;
use crate::routes::promotion as api_routes;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use modelgate_core::promotion::{RequestState, StageOccupant, approval_status};
use modelgate_core::{
    ModelName, PageRequest, RiskTier, Stage, TagKey, Username, VersionFilter, VersionNumber,
};
use modelgate_store::{
    ApprovalStanding, InventoryFilter, InventorySort, RequestFilter, StageVersion,
};

const PAGE_SIZE: u32 = 50;
/// The longest search text (the form says the same); a longer one is refused, not sent to the database.
const MAX_SEARCH_CHARS: usize = 200;

#[derive(Debug, Default, serde::Deserialize)]
pub struct InventoryQuery {
    q: Option<String>,
    tier: Option<String>,
    stage: Option<String>,
    owner: Option<String>,
    tag: Option<String>,
    approval: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    page: Option<u32>,
}

pub struct InventoryView {
    pub name: String,
    pub owner: String,
    pub tier: String,
    pub description: String,
    pub staging: String,
    pub production: String,
    pub status: String,
    pub expiry: String,
}

/// A filter's current value and the choices it offers.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "models.html")]
struct ModelsPage {
    nav: Nav,
    rows: Vec<InventoryView>,
    total: u64,
    q: String,
    owner: String,
    tag: String,
    tiers: Vec<Choice>,
    stages: Vec<Choice>,
    approvals: Vec<Choice>,
    sorts: Vec<Choice>,
    descending: bool,
    first: u64,
    last: u64,
    previous: Option<String>,
    next: Option<String>,
    error: Option<String>,
}

fn choices(options: &[(&str, &str)], current: Option<&str>) -> Vec<Choice> {
    options
        .iter()
        .map(|(value, label)| Choice {
            value: (*value).to_owned(),
            label: (*label).to_owned(),
            selected: current == Some(*value),
        })
        .collect()
}

/// The approval standing of a stage's version, by the gate's own rule.
fn standing_text(
    version: &StageVersion,
    context: &ApprovalContext,
    stage: Stage,
) -> (String, String) {
    match (version.approved_for, version.not_after) {
        (Some(approved), Some(not_after)) if approved == stage => {
            let occupant = StageOccupant {
                version: version.number,
                digest: String::new(),
                approved_for: Some(approved),
                not_after: Some(not_after),
                suspended: version.suspended.clone(),
                evidence_changed: version.review_flag.clone(),
            };
            (
                approval_status(&occupant, context.now, context.review_due_days)
                    .as_str()
                    .to_owned(),
                format::time(not_after),
            )
        }
        _ => ("unapproved".to_owned(), String::new()),
    }
}

/// The same query string with one parameter changed (for paging and sorting links).
fn with_page(query: &InventoryQuery, page: u32) -> String {
    let mut parts = Vec::new();
    let pairs = [
        ("q", &query.q),
        ("tier", &query.tier),
        ("stage", &query.stage),
        ("owner", &query.owner),
        ("tag", &query.tag),
        ("approval", &query.approval),
        ("sort", &query.sort),
        ("order", &query.order),
    ];
    for (name, value) in pairs {
        if let Some(value) = value.as_deref().filter(|value| !value.is_empty()) {
            parts.push(format!("{name}={}", format::url_encode(value)));
        }
    }
    parts.push(format!("page={page}"));
    format!("/models?{}", parts.join("&"))
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    PageQuery(query): PageQuery<InventoryQuery>,
) -> Result<Response, UiError> {
    let blank = |value: &Option<String>| {
        value
            .as_deref()
            .filter(|value| !value.trim().is_empty())
            .map(str::trim)
            .map(str::to_owned)
    };
    let mut problems = Vec::new();
    let text = blank(&query.q).filter(|text| {
        let fits = text.chars().count() <= MAX_SEARCH_CHARS;
        if !fits {
            problems.push(format!(
                "search: at most {MAX_SEARCH_CHARS} characters (got {})",
                text.chars().count()
            ));
        }
        fits
    });
    let risk_tier = blank(&query.tier).and_then(|tier| {
        RiskTier::parse(&tier)
            .map_err(|error| problems.push(error.to_string()))
            .ok()
    });
    let stage = blank(&query.stage).and_then(|stage| {
        Stage::parse(&stage)
            .map_err(|error| problems.push(error.to_string()))
            .ok()
    });
    let owner = blank(&query.owner).and_then(|owner| {
        Username::parse(&owner)
            .map_err(|error| problems.push(format!("owner: {error}")))
            .ok()
    });
    let tag = blank(&query.tag).and_then(|tag| {
        let (key, value) = match tag.split_once('=') {
            Some((key, value)) => (key.to_owned(), Some(value.to_owned())),
            None => (tag.clone(), None),
        };
        TagKey::parse(&key)
            .map(|key| (key, value))
            .map_err(|error| problems.push(format!("tag: {error}")))
            .ok()
    });
    let approval = blank(&query.approval).and_then(|approval| {
        let parsed = ApprovalStanding::parse(&approval);
        if parsed.is_none() {
            problems.push(format!(
                "approval: {approval:?} is not one of active, review_due, expired, suspended, unapproved"
            ));
        }
        parsed
    });
    let sort = blank(&query.sort)
        .and_then(|sort| InventorySort::parse(&sort))
        .unwrap_or_default();
    let descending = query.order.as_deref() == Some("desc");
    let page = query.page.unwrap_or(1).clamp(1, 100_000);
    let in_force = policy_in_force(&state).await?;
    let now = state.now();
    let inventory = state
        .store()
        .model_inventory(
            &InventoryFilter {
                text,
                risk_tier,
                stage,
                owner,
                tag,
                approval,
                sort,
                descending,
                offset: (page - 1) * PAGE_SIZE,
                limit: PAGE_SIZE,
            },
            now,
            in_force.policy.review_due_days,
        )
        .await?;
    let context = ApprovalContext {
        now,
        review_due_days: in_force.policy.review_due_days,
    };
    let rows: Vec<InventoryView> = inventory
        .rows
        .iter()
        .map(|row| {
            let (status, expiry) = row
                .production
                .as_ref()
                .map(|version| standing_text(version, &context, Stage::Production))
                .unwrap_or_else(|| ("unapproved".to_owned(), String::new()));
            InventoryView {
                name: row.name.to_string(),
                owner: row.owner.to_string(),
                tier: row.risk_tier.to_string(),
                description: row.description.chars().take(160).collect(),
                staging: row
                    .staging
                    .as_ref()
                    .map(|version| format!("v{}", version.number))
                    .unwrap_or_default(),
                production: row
                    .production
                    .as_ref()
                    .map(|version| format!("v{}", version.number))
                    .unwrap_or_default(),
                status,
                expiry,
            }
        })
        .collect();
    let first = u64::from((page - 1) * PAGE_SIZE) + 1;
    let last = u64::from((page - 1) * PAGE_SIZE) + rows.len() as u64;
    let page_view = ModelsPage {
        nav: Nav::for_viewer(&viewer, "models", None),
        total: inventory.total,
        q: query.q.clone().unwrap_or_default(),
        owner: query.owner.clone().unwrap_or_default(),
        tag: query.tag.clone().unwrap_or_default(),
        tiers: choices(
            &[
                ("", "any tier"),
                ("low", "low"),
                ("medium", "medium"),
                ("high", "high"),
                ("critical", "critical"),
            ],
            Some(query.tier.as_deref().unwrap_or("")),
        ),
        stages: choices(
            &[
                ("", "any stage"),
                ("development", "development"),
                ("staging", "staging"),
                ("production", "production"),
                ("archived", "archived"),
            ],
            Some(query.stage.as_deref().unwrap_or("")),
        ),
        approvals: choices(
            &[
                ("", "any approval"),
                ("active", "active"),
                ("review_due", "review due"),
                ("expired", "expired"),
                ("suspended", "suspended"),
                ("unapproved", "no approval"),
            ],
            Some(query.approval.as_deref().unwrap_or("")),
        ),
        sorts: choices(
            &[
                ("name", "name"),
                ("tier", "risk tier"),
                ("owner", "owner"),
                ("updated", "last change"),
            ],
            Some(query.sort.as_deref().unwrap_or("name")),
        ),
        descending,
        first: if rows.is_empty() { 0 } else { first },
        last,
        previous: (page > 1).then(|| with_page(&query, page - 1)),
        next: (last < inventory.total).then(|| with_page(&query, page + 1)),
        rows,
        error: (!problems.is_empty()).then(|| problems.join("; ")),
    };
    let status = if page_view.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((status, rendered(&page_view)).into_response())
}

pub struct VersionRow {
    pub number: u32,
    pub stage: String,
    pub approval: String,
    pub expiry: String,
    pub created: String,
    pub created_by: String,
    pub digest: String,
}

/// A deployed or watched version's monitoring, for the model page.
pub struct MonitoredVersion {
    pub number: u32,
    pub stage: String,
    /// `batch 17 at …: 300 rows against holdout, drift share 0.33 (dataset drifted)`, or `no batch yet`.
    pub last_batch: String,
    pub features: Vec<FeatureDrift>,
    pub last_outcomes: Option<String>,
    /// Source, action, when, why.
    pub breaches: Vec<(String, String, String, String)>,
}

pub struct FeatureDrift {
    pub name: String,
    pub kind: String,
    pub psi: String,
    pub jensen_shannon: String,
    pub wasserstein: String,
    pub p_value: String,
    pub drifted: bool,
}

pub struct KpiRow {
    pub name: String,
    pub value: String,
    pub bounds: String,
    pub at: String,
    pub breached: bool,
}

/// An API time (RFC 3339) as the pages show times.
fn shown_time(text: &str) -> String {
    modelgate_core::Timestamp::parse_rfc3339(text).map_or_else(|_| text.to_owned(), format::time)
}

/// A drift statistic of a report (`{"value": …}`), `-` when undefined.
fn statistic(value: &serde_json::Value) -> String {
    value["value"]
        .as_f64()
        .map_or_else(|| "-".to_owned(), |number| format!("{number:.4}"))
}

fn monitored_version(
    number: u32,
    stage: String,
    monitoring: &modelgate_api::VersionMonitoring,
) -> MonitoredVersion {
    let (last_batch, features) = match &monitoring.latest_batch {
        None => ("no batch yet".to_owned(), Vec::new()),
        Some(batch) => {
            let dataset = &batch.report["dataset"];
            let verdict = if !batch.judged {
                "not judged: below min_batch_rows"
            } else if dataset["drifted"].as_bool() == Some(true) {
                "dataset drifted"
            } else {
                "no dataset drift"
            };
            let summary = format!(
                "batch {} at {}: {} rows against {}, drift share {} ({verdict})",
                batch.id,
                shown_time(&batch.created_at),
                batch.rows,
                batch.reference,
                statistic(&dataset["drift_share"]),
            );
            let features = batch.report["features"]
                .as_object()
                .map(|features| {
                    features
                        .iter()
                        .map(|(name, drift)| FeatureDrift {
                            name: name.clone(),
                            kind: drift["kind"].as_str().unwrap_or("-").to_owned(),
                            psi: statistic(&drift["psi"]),
                            jensen_shannon: statistic(&drift["jensen_shannon"]),
                            wasserstein: statistic(&drift["wasserstein_normed"]),
                            p_value: if drift["kind"] == "categorical" {
                                statistic(&drift["chi2_pvalue"])
                            } else {
                                statistic(&drift["ks_pvalue"])
                            },
                            drifted: drift["drifted"].as_bool() == Some(true),
                        })
                        .collect()
                })
                .unwrap_or_default();
            (summary, features)
        }
    };
    MonitoredVersion {
        number,
        stage,
        last_batch,
        features,
        last_outcomes: monitoring.latest_outcomes.as_ref().map(|outcomes| {
            format!(
                "outcomes {} at {}: {} of {} rows joined, {} unknown row ids{}",
                outcomes.id,
                shown_time(&outcomes.created_at),
                outcomes.matched,
                outcomes.rows,
                outcomes.unknown,
                if outcomes.judged { "" } else { " (not judged)" }
            )
        }),
        breaches: monitoring
            .breaches
            .iter()
            .map(|sourced| {
                (
                    sourced.source.clone(),
                    sourced.breach.action.clone(),
                    shown_time(&sourced.at),
                    sourced.breach.reason.clone(),
                )
            })
            .collect(),
    }
}

pub struct HistoryRow {
    pub at: String,
    pub who: String,
    pub what: String,
    pub request: Option<i64>,
}

pub struct RequestRow {
    pub id: i64,
    pub version: u32,
    pub step: String,
    pub requester: String,
    pub age: String,
}

#[derive(Template)]
#[template(path = "model.html")]
struct ModelPage {
    nav: Nav,
    name: String,
    owner: String,
    tier: String,
    description: String,
    intended_use: String,
    tags: Vec<(String, String)>,
    versions: Vec<VersionRow>,
    history: Vec<HistoryRow>,
    open_requests: Vec<RequestRow>,
    monitoring: Vec<MonitoredVersion>,
    kpis: Vec<KpiRow>,
}

fn parse_name(name: &str) -> Result<ModelName, UiError> {
    ModelName::parse(name).map_err(|_| UiError::not_found(format!("There is no model {name:?}.")))
}

pub async fn model(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(name): PagePath<String>,
) -> Result<Response, UiError> {
    let name = parse_name(&name)?;
    let model = state.store().get_model(&name).await?;
    let in_force = policy_in_force(&state).await?;
    let context = ApprovalContext {
        now: state.now(),
        review_due_days: in_force.policy.review_due_days,
    };
    let versions = state
        .store()
        .list_versions(
            &name,
            &VersionFilter::default(),
            &PageRequest {
                after: None,
                limit: PageRequest::<VersionNumber>::MAX_LIMIT,
            },
        )
        .await?;
    let mut monitoring = Vec::new();
    let mut kpis = Vec::new();
    // Deployed versions only: the page stays a few queries per version in service.
    for version in versions
        .items
        .iter()
        .rev()
        .filter(|version| matches!(version.stage, Stage::Staging | Stage::Production))
    {
        if let Some(watched) = crate::routes::monitoring::version_monitoring(
            &state,
            &name,
            version.number,
            version.stage,
            model.risk_tier,
        )
        .await?
        {
            if kpis.is_empty() {
                kpis = watched
                    .kpis
                    .iter()
                    .map(|kpi| KpiRow {
                        name: kpi.name.clone(),
                        value: kpi.value.to_string(),
                        bounds: match (kpi.min, kpi.max) {
                            (None, None) => "none".to_owned(),
                            (min, max) => format!(
                                "{} to {}",
                                min.map_or_else(|| "-".to_owned(), |b| b.to_string()),
                                max.map_or_else(|| "-".to_owned(), |b| b.to_string())
                            ),
                        },
                        at: shown_time(&kpi.observed_at),
                        breached: !kpi.breaches.is_empty(),
                    })
                    .collect();
            }
            monitoring.push(monitored_version(
                version.number.get(),
                version.stage.to_string(),
                &watched,
            ));
        }
    }
    let versions = versions
        .items
        .iter()
        .rev()
        .map(|version| {
            let (approval, expiry) = match &version.approval {
                Some(approval) => (
                    format!(
                        "{} ({})",
                        approval_status_of(version, approval, &context).as_str(),
                        approval.stage
                    ),
                    format::time(approval.not_after),
                ),
                None => ("none".to_owned(), String::new()),
            };
            VersionRow {
                number: version.number.get(),
                stage: version.stage.to_string(),
                approval,
                expiry,
                created: format::time(version.created_at),
                created_by: version.created_by.clone(),
                digest: version.digest.to_string(),
            }
        })
        .collect();
    let events = state
        .store()
        .list_audit_events(&modelgate_store::AuditFilter {
            target: Some(format!("model/{name}")),
            // Filtered in the query: comments and refused attempts must not push the history out.
            actions: STAGE_HISTORY_ACTIONS
                .iter()
                .map(|action| (*action).to_owned())
                .collect(),
            outcome: Some("ok".to_owned()),
            newest_first: true,
            limit: 200,
            ..modelgate_store::AuditFilter::default()
        })
        .await?;
    let history = events
        .iter()
        .filter_map(|(_, leaf)| serde_json::from_str::<modelgate_audit::AuditEvent>(leaf).ok())
        .map(|event| HistoryRow {
            at: modelgate_core::Timestamp::parse_rfc3339(&event.time)
                .map(format::time)
                .unwrap_or(event.time.clone()),
            who: event.actor.clone(),
            what: describe_event(&event),
            request: event
                .after
                .as_ref()
                .and_then(|after| after.get("request"))
                .and_then(serde_json::Value::as_i64),
        })
        .collect();
    let now = state.now();
    let open_requests = state
        .store()
        .list_requests(&RequestFilter {
            state: Some(RequestState::Open),
            model: Some(name.clone()),
            limit: 200,
            ..RequestFilter::default()
        })
        .await?
        .iter()
        .map(|request| RequestRow {
            id: request.id,
            version: request.version.get(),
            step: format!("{} → {}", request.from_stage, request.target_stage),
            requester: request.requester.to_string(),
            age: format::age(request.created_at, now),
        })
        .collect();
    let page = ModelPage {
        nav: Nav::for_viewer(&viewer, "models", None),
        name: model.name.to_string(),
        owner: model.owner.to_string(),
        tier: model.risk_tier.to_string(),
        description: model.description.clone(),
        intended_use: model.intended_use.clone(),
        tags: model
            .tags
            .iter()
            .map(|(key, value)| (key.to_string(), value.clone()))
            .collect(),
        versions,
        history,
        open_requests,
        monitoring,
        kpis,
    };
    Ok(rendered(&page).into_response())
}

/// The audit actions that make a model's stage history.
const STAGE_HISTORY_ACTIONS: [&str; 7] = [
    "version.create",
    "version.promote",
    "version.rollback",
    "version.archive",
    "version.suspend",
    "version.reinstate",
    "model.create",
];

/// A stage-history line: what the event did, in words.
fn describe_event(event: &modelgate_audit::AuditEvent) -> String {
    let version = event
        .target
        .rsplit_once("/version/")
        .map(|(_, number)| format!("version {number}"))
        .unwrap_or_default();
    let stage = |side: &Option<serde_json::Value>| {
        side.as_ref()
            .and_then(|value| value.get("stage"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    match event.action.as_str() {
        "version.create" => format!("{version} registered (development)"),
        "version.promote" => format!(
            "{version} promoted {} → {}",
            stage(&event.before),
            stage(&event.after)
        ),
        "version.rollback" => format!("{version} rolled back into {}", stage(&event.after)),
        "version.archive" => format!("{version} archived"),
        "version.suspend" => format!("{version} suspended"),
        "version.reinstate" => format!("{version} reinstated"),
        "model.create" => "model registered".to_owned(),
        other => other.to_owned(),
    }
}

pub struct RevisionRow {
    pub revision: i64,
    pub author: String,
    pub at: String,
    pub message: String,
    pub digest: String,
}

pub struct EvaluationRow {
    pub id: i64,
    pub dataset: String,
    pub mode: String,
    pub status: String,
    pub at: String,
    pub headline: String,
}

pub struct AttestationLink {
    pub stage: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "version.html")]
struct VersionPage {
    nav: Nav,
    model: String,
    number: u32,
    facts: Vec<(String, String)>,
    stage: String,
    approval: Option<String>,
    suspension: Option<String>,
    card: Vec<(String, String)>,
    revisions: Vec<RevisionRow>,
    diff_title: Option<String>,
    diff: Vec<(String, String, String)>,
    evaluations: Vec<EvaluationRow>,
    attestations: Vec<AttestationLink>,
    next_stage: Option<String>,
    open_request: Option<i64>,
    error: Option<String>,
    justification: String,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct VersionQuery {
    /// Two card revisions to compare: `2..3`.
    diff: Option<String>,
}

fn parse_number(number: &str) -> Result<VersionNumber, UiError> {
    VersionNumber::parse(number).map_err(|_| {
        UiError::not_found(format!(
            "There is no version {number:?}: versions are numbered from 1."
        ))
    })
}

async fn version_page(
    state: &AppState,
    viewer: &Viewer,
    name: &ModelName,
    number: VersionNumber,
    diff: Option<&str>,
    error: Option<String>,
    justification: String,
) -> Result<VersionPage, UiError> {
    let model = state.store().get_model(name).await?;
    let version = state.store().get_version(name, number).await?;
    let in_force = policy_in_force(state).await?;
    let context = ApprovalContext {
        now: state.now(),
        review_due_days: in_force.policy.review_due_days,
    };
    let lineage = &version.lineage;
    let facts = vec![
        (
            "model".to_owned(),
            format!(
                "{} ({} tier, owner {})",
                model.name, model.risk_tier, model.owner
            ),
        ),
        ("artifact digest".to_owned(), version.digest.to_string()),
        ("size".to_owned(), format::bytes(version.size_bytes)),
        (
            "format".to_owned(),
            format!("{} ({})", version.format, version.media_type),
        ),
        (
            "code repository".to_owned(),
            lineage
                .code_repository
                .clone()
                .unwrap_or_else(|| "not given".to_owned()),
        ),
        (
            "code commit".to_owned(),
            lineage
                .code_commit
                .clone()
                .unwrap_or_else(|| "not given".to_owned()),
        ),
        (
            "training data".to_owned(),
            lineage
                .training_data_uri
                .clone()
                .unwrap_or_else(|| "not given".to_owned()),
        ),
        (
            "training data digest".to_owned(),
            lineage
                .training_data_digest
                .map(|digest| digest.to_string())
                .unwrap_or_else(|| "not given".to_owned()),
        ),
        (
            "registered".to_owned(),
            format!(
                "{} by {}",
                format::time(version.created_at),
                version.created_by
            ),
        ),
        ("description".to_owned(), version.description.clone()),
    ];
    let approval = version.approval.as_ref().map(|approval| {
        format!(
            "{} for {}, approved {} through request #{}, until {}",
            approval_status_of(&version, approval, &context).as_str(),
            approval.stage,
            format::time(approval.approved_at),
            approval.request_id,
            format::time(approval.not_after)
        )
    });
    let revisions = state.store().card_revisions(name, number).await?;
    let card = revisions
        .last()
        .and_then(|revision| modelgate_card::parse(&revision.content).ok())
        .map(|card| {
            modelgate_card::fields(&card)
                .into_iter()
                .map(|(path, value)| {
                    let text = match value {
                        serde_json::Value::String(text) => text,
                        other => other.to_string(),
                    };
                    (path, text)
                })
                .collect()
        })
        .unwrap_or_default();
    let (diff_title, diff) = match diff.and_then(|range| range.split_once("..")) {
        Some((from, to)) => {
            let find = |wanted: &str| {
                wanted
                    .parse::<i64>()
                    .ok()
                    .and_then(|wanted| {
                        revisions
                            .iter()
                            .find(|revision| revision.revision == wanted)
                    })
                    .and_then(|revision| modelgate_card::parse(&revision.content).ok())
            };
            match (find(from), find(to)) {
                (Some(before), Some(after)) => (
                    Some(format!("Card revision {from} → {to}")),
                    modelgate_card::diff(&before, &after)
                        .into_iter()
                        .map(|change| {
                            let text = |value: Option<serde_json::Value>| match value {
                                Some(serde_json::Value::String(text)) => text,
                                Some(other) => other.to_string(),
                                None => String::new(),
                            };
                            (change.path, text(change.before), text(change.after))
                        })
                        .collect(),
                ),
                _ => (
                    Some(format!(
                        "There are no card revisions {from} and {to} to compare."
                    )),
                    Vec::new(),
                ),
            }
        }
        None => (None, Vec::new()),
    };
    let revisions = revisions
        .iter()
        .rev()
        .map(|revision| RevisionRow {
            revision: revision.revision,
            author: revision.author.clone(),
            at: format::time(revision.created_at),
            message: revision.message.clone().unwrap_or_default(),
            digest: revision.digest.clone(),
        })
        .collect();
    let evaluations = state
        .store()
        .evaluations_for_version(name, number)
        .await?
        .iter()
        .rev()
        .map(|evaluation| {
            let headline = modelgate_eval::evaluate::StoredResults::parse(&evaluation.results_json)
                .map(|results| {
                    results
                        .overall()
                        .into_iter()
                        .filter(|(name, _)| *name != "count")
                        .take(4)
                        .map(|(name, value)| format!("{name} {}", format::number(value)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|_| "results unreadable".to_owned());
            EvaluationRow {
                id: evaluation.id,
                dataset: evaluation.dataset.clone(),
                mode: evaluation.mode.clone(),
                status: match &evaluation.status_reason {
                    Some(reason) => format!("{}: {reason}", evaluation.status),
                    None => evaluation.status.clone(),
                },
                at: format::time(evaluation.created_at),
                headline,
            }
        })
        .collect();
    let attestations = version
        .approval
        .iter()
        .map(|approval| AttestationLink {
            stage: approval.stage.to_string(),
            href: format!(
                "/models/{name}/versions/{number}/attestation?stage={}",
                approval.stage
            ),
        })
        .collect();
    let next_stage = in_force
        .policy
        .next_stage(version.stage)
        .filter(|stage| *stage != Stage::Archived);
    let open_request = state
        .store()
        .list_requests(&RequestFilter {
            state: Some(RequestState::Open),
            model: Some(name.clone()),
            limit: 500,
            ..RequestFilter::default()
        })
        .await?
        .into_iter()
        .find(|request| request.version == number)
        .map(|request| request.id);
    Ok(VersionPage {
        nav: Nav::for_viewer(viewer, "models", None),
        model: name.to_string(),
        number: number.get(),
        facts,
        stage: version.stage.to_string(),
        approval,
        suspension: version.suspension.clone(),
        card,
        revisions,
        diff_title,
        diff,
        evaluations,
        attestations,
        next_stage: next_stage.map(|stage| stage.to_string()),
        open_request,
        error,
        justification,
    })
}

pub async fn version(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath((name, number)): PagePath<(String, String)>,
    PageQuery(query): PageQuery<VersionQuery>,
) -> Result<Response, UiError> {
    let name = parse_name(&name)?;
    let number = parse_number(&number)?;
    let page = version_page(
        &state,
        &viewer,
        &name,
        number,
        query.diff.as_deref(),
        None,
        String::new(),
    )
    .await?;
    Ok(rendered(&page).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct OpenForm {
    csrf_token: Option<String>,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    justification: String,
}

/// Opens a promotion request through the API's own handler.
pub async fn open_request(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath((name, number)): PagePath<(String, String)>,
    headers: HeaderMap,
    PageForm(form): PageForm<OpenForm>,
) -> Result<Response, UiError> {
    let name = parse_name(&name)?;
    let number = parse_number(&number)?;
    viewer.check_form(&state, &headers, form.csrf_token.as_deref())?;
    let body = super::api_body(serde_json::json!({
        "model": name.as_str(),
        "version": number.get(),
        "stage": form.stage,
        "justification": form.justification,
    }))?;
    match api_routes::open_request(State(state.clone()), viewer.caller.clone(), ApiJson(body)).await
    {
        Ok((_, axum::Json(request))) => Ok((
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/requests/{}", request.id))],
        )
            .into_response()),
        Err(error) if error.code == crate::error::ErrorCode::InvalidArgument => {
            let (_, status) = error.code.describe();
            let page = version_page(
                &state,
                &viewer,
                &name,
                number,
                None,
                Some(error.message),
                form.justification,
            )
            .await?;
            Ok((status, rendered(&page)).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct AttestationQuery {
    stage: String,
}

/// The signed attestation of an approval, as a file to download (the API's own handler).
pub async fn attestation(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath((name, number)): PagePath<(String, String)>,
    PageQuery(query): PageQuery<AttestationQuery>,
) -> Result<Response, UiError> {
    let explain = super::api_body(serde_json::json!({ "stage": query.stage }))?;
    let axum::Json(envelope) = api_routes::get_attestation(
        State(state.clone()),
        viewer.caller.clone(),
        ApiPath((name.clone(), number.clone())),
        ApiQuery(explain),
    )
    .await?;
    let body = serde_json::to_vec_pretty(&envelope)
        .map_err(|error| crate::error::ApiError::internal(&error))?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-v{}-{}.attestation.json\"",
        parse_name(&name)?.as_str(),
        parse_number(&number)?.get(),
        Stage::parse(&query.stage)
            .map(|stage| stage.to_string())
            .unwrap_or_default()
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
