//! `/`: the inbox. What waits for the viewer's signature (a role they hold that the gate still needs, and
//! separation of duties lets them sign), oldest first; what they may not sign, with the reason; their own
//! open requests and what those wait for; their models whose approval needs attention.

use super::errors::{UiError, rendered};
use super::format::{self, Nav};
use super::session::Viewer;
use crate::convert::{ApprovalContext, approval_status_of};
use crate::promotion::policy_in_force;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Html;
use modelgate_core::promotion::{
    ApprovalStatus, CountedApproval, RoleQuota, SeparationRules, Standing, outstanding, standing,
};
use modelgate_core::{ModelFilter, PageRequest, User, VersionFilter};
use modelgate_policy::Policy;
use modelgate_store::QueuedRequest;

/// A request as an inbox row.
pub struct QueueRow {
    pub id: i64,
    pub model: String,
    pub version: u32,
    pub from_stage: String,
    pub target_stage: String,
    pub tier: String,
    pub requester: String,
    pub opened: String,
    pub age: String,
    /// When the policy wants it decided (`review_within_days` after opening), and whether that passed.
    pub due: String,
    pub overdue: bool,
    /// Roles the viewer may sign in, the reason they may not, or what the request waits for.
    pub note: String,
}

pub struct AttentionRow {
    pub model: String,
    pub version: u32,
    pub stage: String,
    pub status: String,
    pub detail: String,
}

/// The most rows a table of the inbox lists (the oldest first); its heading gives the full count. With
/// thousands of open requests a full list would weigh megabytes (issue 11: a page under 150 KB).
pub const INBOX_ROWS: usize = 100;

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    nav: Nav,
    waiting: Vec<QueueRow>,
    waiting_total: usize,
    may_not_sign: Vec<QueueRow>,
    may_not_sign_total: usize,
    mine: Vec<QueueRow>,
    mine_total: usize,
    attention: Vec<AttentionRow>,
    shown: usize,
}

/// The sign-offs a request's gate asks for, and the approvals that count toward them.
fn asked_and_counted(
    policy: &Policy,
    queued: &QueuedRequest,
) -> (Vec<RoleQuota>, Vec<CountedApproval>, SeparationRules) {
    let rules = SeparationRules {
        owner_may_approve: policy.owner_may_approve,
        admins_may_approve: policy.admins_may_approve,
    };
    let required = policy
        .gate(queued.risk_tier, queued.request.target_stage)
        .map(|gate| gate.signoffs.clone())
        .unwrap_or_default();
    let counted = queued
        .approvals
        .iter()
        .filter(|approval| {
            rules.admins_may_approve || !queued.admin_approvers.contains(&approval.reviewer)
        })
        .cloned()
        .collect();
    (required, counted, rules)
}

/// Where the viewer stands on each open request, oldest first.
pub fn standings<'a>(
    policy: &Policy,
    viewer: &User,
    queue: &'a [QueuedRequest],
) -> Vec<(&'a QueuedRequest, Standing, Vec<RoleQuota>)> {
    queue
        .iter()
        .map(|queued| {
            let (required, counted, rules) = asked_and_counted(policy, queued);
            let position = standing(viewer, &queued.parties, rules, &required, &counted);
            (queued, position, outstanding(&required, &counted))
        })
        .collect()
}

fn row(
    queued: &QueuedRequest,
    note: String,
    now: modelgate_core::Timestamp,
    review_within_days: u32,
) -> QueueRow {
    let request = &queued.request;
    let due = request
        .created_at
        .plus_seconds(i64::from(review_within_days) * 86_400);
    QueueRow {
        due: format::time(due),
        overdue: now >= due,
        id: request.id,
        model: request.model_name.to_string(),
        version: request.version.get(),
        from_stage: request.from_stage.to_string(),
        target_stage: request.target_stage.to_string(),
        tier: queued.risk_tier.to_string(),
        requester: request.requester.to_string(),
        opened: format::time(request.created_at),
        age: format::age(request.created_at, now),
        note,
    }
}

fn quotas_text(quotas: &[RoleQuota]) -> String {
    if quotas.is_empty() {
        return "no sign-offs (checks only)".to_owned();
    }
    quotas
        .iter()
        .map(|quota| format!("{} × {}", quota.count, quota.role))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, UiError> {
    let in_force = policy_in_force(&state).await?;
    let queue = state.store().review_queue().await?;
    let now = state.now();
    let user = viewer.user();
    let within = in_force.policy.review_within_days;
    let (mut waiting, mut may_not_sign, mut mine) = (Vec::new(), Vec::new(), Vec::new());
    let (mut waiting_total, mut may_not_sign_total, mut mine_total) = (0, 0, 0);
    for (queued, position, missing) in standings(&in_force.policy, user, &queue) {
        if queued.request.requester == user.username {
            mine_total += 1;
            if mine.len() < INBOX_ROWS {
                mine.push(row(
                    queued,
                    format!("waits for {}", quotas_text(&missing)),
                    now,
                    within,
                ));
            }
        }
        match position {
            Standing::MaySign(roles) => {
                waiting_total += 1;
                if waiting.len() < INBOX_ROWS {
                    let roles: Vec<String> = roles.iter().map(ToString::to_string).collect();
                    waiting.push(row(
                        queued,
                        format!("sign as {}", roles.join(" or ")),
                        now,
                        within,
                    ));
                }
            }
            Standing::MayNotSign(denied) => {
                may_not_sign_total += 1;
                if may_not_sign.len() < INBOX_ROWS {
                    may_not_sign.push(row(queued, denied.0, now, within));
                }
            }
            Standing::NotAsked => {}
        }
    }
    let attention = attention(&state, user, in_force.policy.review_due_days).await?;
    let page = InboxPage {
        nav: Nav::for_viewer(&viewer, "inbox", Some(waiting_total)),
        waiting,
        waiting_total,
        may_not_sign,
        may_not_sign_total,
        mine,
        mine_total,
        attention,
        shown: INBOX_ROWS,
    };
    Ok(rendered(&page))
}

/// The viewer's models whose versions hold an approval that is due for review, expired or suspended.
async fn attention(
    state: &AppState,
    user: &User,
    review_due_days: u32,
) -> Result<Vec<AttentionRow>, UiError> {
    let models = state
        .store()
        .list_models(
            &ModelFilter {
                owner: Some(user.username.clone()),
                ..ModelFilter::default()
            },
            &PageRequest {
                after: None,
                limit: PageRequest::<modelgate_core::ModelName>::MAX_LIMIT,
            },
        )
        .await?;
    let context = ApprovalContext {
        now: state.now(),
        review_due_days,
    };
    let mut rows = Vec::new();
    for model in &models.items {
        let versions = state
            .store()
            .list_versions(
                &model.name,
                &VersionFilter::default(),
                &PageRequest {
                    after: None,
                    limit: PageRequest::<modelgate_core::VersionNumber>::MAX_LIMIT,
                },
            )
            .await?;
        for version in &versions.items {
            let Some(approval) = &version.approval else {
                continue;
            };
            let status = approval_status_of(version, approval, &context);
            if status == ApprovalStatus::Active || version.stage != approval.stage {
                continue;
            }
            let detail = version
                .suspension
                .clone()
                .or_else(|| version.evidence_changed_after_approval.clone())
                .or_else(|| version.approval_review_reason.clone())
                .unwrap_or_else(|| format!("approval ends {}", format::time(approval.not_after)));
            rows.push(AttentionRow {
                model: model.name.to_string(),
                version: version.number.get(),
                stage: version.stage.to_string(),
                status: status.as_str().to_owned(),
                detail,
            });
        }
    }
    Ok(rows)
}
