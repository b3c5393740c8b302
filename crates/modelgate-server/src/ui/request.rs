//! `/requests/{id}`: everything a signature on the request is bound to, on one page — the gate (checks
//! and sign-offs), the evidence (artifact, lineage, card, verified evaluations), what changed since the
//! version now in the target stage, the discussion, and the sign-off panel. Its forms call the API's own
//! handlers in-process, so a refusal is exactly the API's (and recorded the same way).

use super::api_body;
use super::errors::{UiError, rendered};
use super::extract::{PageForm, PagePath};
use super::format::{self, Nav};
use super::session::Viewer;
use super::svg;
use crate::extract::{ApiJson, ApiPath};
use crate::promotion::{gate_terms, policy_in_force, version_evidence};
use crate::routes::promotion as api_routes;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use modelgate_core::promotion::{
    CountedApproval, GateTerms, RequestState, ReviewDecision, SeparationRules, Standing,
    check_stage_step, counting, outstanding, standing,
};
use modelgate_eval::evaluate::{Report, Robustness};
use modelgate_policy::{CheckStatus, Evidence};
use std::collections::BTreeMap;

/// One finding of the artifact scanner, as the evidence section lists it.
pub struct ScanFindingRow {
    pub severity: &'static str,
    pub kind: String,
    pub what: String,
    pub path: String,
    pub offset: u64,
    pub detail: String,
}

/// The scanner findings a request page lists; the rest are counted.
const SCAN_FINDINGS_SHOWN: usize = 50;

pub struct CheckRow {
    pub name: String,
    pub expression: String,
    pub description: String,
    /// `passed`, `failed` or `missing`.
    pub status: &'static str,
    pub detail: String,
}

pub struct SignoffRow {
    pub role: String,
    pub required: u32,
    pub given: usize,
    pub eligible: String,
}

pub struct FieldRow {
    pub path: String,
    pub value: String,
    pub required: bool,
    pub missing: bool,
}

pub struct MetricRow {
    pub name: String,
    pub value: String,
    pub interval: String,
}

pub struct GroupTable {
    pub attribute: String,
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<String>)>,
}

pub struct FairnessRow {
    pub attribute: String,
    pub parity_ratio: String,
    pub odds_difference: String,
    pub verdict: &'static str,
    pub holds: bool,
}

pub struct EvaluationView {
    pub id: i64,
    pub dataset: String,
    pub mode: String,
    pub how: &'static str,
    pub digest: String,
    pub task: String,
    pub metrics: Vec<MetricRow>,
    pub groups: Vec<GroupTable>,
    pub fairness: Vec<FairnessRow>,
    pub robustness: Vec<(String, String)>,
    pub reliability_svg: Option<String>,
    pub roc_svg: Option<String>,
}

pub struct ChangeRow {
    pub what: String,
    pub before: String,
    pub after: String,
}

pub struct EventRow {
    pub at: String,
    pub who: String,
    pub kind: &'static str,
    pub text: String,
}

pub struct SignatureRow {
    pub printed_name: String,
    pub username: String,
    pub at: String,
    pub role: String,
    pub meaning: String,
    pub evidence_digest: String,
    pub counts: bool,
}

/// What the viewer last sent, with the problem found, to show next to the field.
#[derive(Default)]
pub struct Feedback {
    pub comment_error: Option<String>,
    pub comment_body: String,
    pub signoff_error: Option<String>,
    /// The field the sign-off error is about (`password`, `comment`, `role`), or none for the form.
    pub signoff_field: Option<String>,
    pub signoff_comment: String,
    pub signoff_meaning: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    nav: Nav,
    id: i64,
    model: String,
    version: u32,
    from_stage: String,
    target_stage: String,
    tier: String,
    kind: String,
    requester: String,
    justification: String,
    opened: String,
    age: String,
    state: String,
    decision_reason: Option<String>,
    step_problem: Option<String>,
    checks: Vec<CheckRow>,
    checks_pass: bool,
    signoffs: Vec<SignoffRow>,
    artifact: Vec<(String, String)>,
    scan_verdict: &'static str,
    scan_findings: Vec<ScanFindingRow>,
    scan_findings_hidden: usize,
    card_revision: String,
    card: Vec<FieldRow>,
    evaluations: Vec<EvaluationView>,
    compared_with: Option<String>,
    card_changes: Vec<ChangeRow>,
    metric_changes: Vec<ChangeRow>,
    lineage_changes: Vec<ChangeRow>,
    timeline: Vec<EventRow>,
    signatures: Vec<SignatureRow>,
    sign_roles: Vec<String>,
    cannot_sign: Option<String>,
    meaning: String,
    meaning_hint: String,
    evidence_digest: String,
    gate_problem: Option<String>,
    statement: Vec<(String, String)>,
    may_withdraw: bool,
    feedback: Feedback,
}

impl RequestPage {
    fn field_error(&self, field: &str) -> Option<&str> {
        match (&self.feedback.signoff_field, &self.feedback.signoff_error) {
            (Some(name), Some(error)) if name == field => Some(error),
            _ => None,
        }
    }

    fn form_error(&self) -> Option<&str> {
        match (&self.feedback.signoff_field, &self.feedback.signoff_error) {
            (None, Some(error)) => Some(error),
            _ => None,
        }
    }
}

fn text_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn status_of(status: &CheckStatus) -> (&'static str, String) {
    match status {
        CheckStatus::Passed => ("passed", String::new()),
        CheckStatus::Failed(detail) => ("failed", detail.clone()),
        CheckStatus::Missing(detail) => ("missing", detail.clone()),
        CheckStatus::Error(detail) => ("failed", detail.clone()),
    }
}

fn evaluation_view(evaluation: &modelgate_policy::EvaluationEvidence) -> EvaluationView {
    let results = &evaluation.results;
    let intervals = match &results.report {
        Report::Binary(report) => report.intervals.clone(),
        _ => BTreeMap::new(),
    };
    let metrics = results
        .overall()
        .into_iter()
        .map(|(name, value)| MetricRow {
            name: name.to_owned(),
            value: format::number(value),
            interval: intervals
                .get(name)
                .map(|interval| {
                    format!(
                        "{} – {}",
                        format::number(interval.low),
                        format::number(interval.high)
                    )
                })
                .unwrap_or_default(),
        })
        .collect();
    let groups = results
        .groups()
        .into_iter()
        .map(|(attribute, groups)| {
            let mut columns: Vec<String> = Vec::new();
            for (_, values) in &groups {
                for (name, _) in values {
                    if !columns.iter().any(|column| column == name) && columns.len() < 6 {
                        columns.push((*name).to_owned());
                    }
                }
            }
            let rows = groups
                .iter()
                .map(|(group, values)| {
                    let cells = columns
                        .iter()
                        .map(|column| {
                            values
                                .iter()
                                .find(|(name, _)| name == column)
                                .map(|(_, value)| format::number(*value))
                                .unwrap_or_else(|| "—".to_owned())
                        })
                        .collect();
                    ((*group).to_owned(), cells)
                })
                .collect();
            GroupTable {
                attribute: attribute.to_owned(),
                columns,
                rows,
            }
        })
        .collect();
    let roc_svg = match &results.report {
        Report::Binary(report) => svg::roc_curve(&report.roc_curve),
        _ => None,
    };
    let (fairness, reliability_svg) = match &results.report {
        Report::Binary(report) => (
            report
                .fairness
                .iter()
                .map(|(attribute, metrics)| FairnessRow {
                    attribute: attribute.clone(),
                    parity_ratio: metrics
                        .demographic_parity_ratio
                        .value
                        .map(format::number)
                        .unwrap_or_else(|| "undefined".to_owned()),
                    odds_difference: metrics
                        .equalized_odds_difference
                        .value
                        .map(format::number)
                        .unwrap_or_else(|| "undefined".to_owned()),
                    verdict: match metrics.four_fifths_holds {
                        Some(true) => "holds",
                        Some(false) => "fails",
                        None => "undefined",
                    },
                    holds: metrics.four_fifths_holds == Some(true),
                })
                .collect(),
            svg::reliability_diagram(&report.overall.reliability),
        ),
        _ => (Vec::new(), None),
    };
    let robustness = match &results.robustness {
        None => Vec::new(),
        Some(robustness) => robustness_rows(robustness),
    };
    EvaluationView {
        id: evaluation.id,
        dataset: evaluation.dataset.clone(),
        mode: evaluation.mode.as_str().to_owned(),
        how: match evaluation.mode {
            modelgate_core::EvaluationMode::Model => {
                "the server ran this version's own artifact on the registered dataset"
            }
            modelgate_core::EvaluationMode::Predictions => {
                "the server computed the metrics from scores a client supplied for the registered dataset"
            }
        },
        digest: evaluation.digest.clone(),
        task: results.task().as_str().to_owned(),
        metrics,
        groups,
        fairness,
        robustness,
        reliability_svg,
        roc_svg,
    }
}

fn robustness_rows(robustness: &Robustness) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    if let Some(rate) = robustness.max_noise_flip_rate() {
        rows.push((
            "largest share of changed decisions under noise".to_owned(),
            format::number(rate),
        ));
    }
    match robustness {
        Robustness::Binary(report) => {
            for shift in &report.noise {
                rows.push((
                    format!("noise {} σ: decisions changed", shift.level),
                    format::number(shift.shift.flip_rate),
                ));
            }
        }
        Robustness::Multiclass(report) => {
            for shift in &report.noise {
                rows.push((
                    format!("noise {} σ: classes changed", shift.level),
                    format::number(shift.shift.flip_rate),
                ));
            }
        }
        Robustness::Regression(report) => {
            for shift in &report.noise {
                rows.push((
                    format!("noise {} σ: mean absolute change", shift.level),
                    format::number(shift.shift.mean_absolute_change),
                ));
            }
        }
    }
    rows
}

/// Overall metrics of this version against the version now in the target stage, per shared dataset.
fn metric_changes(current: &Evidence, occupant: &Evidence) -> Vec<ChangeRow> {
    let mut rows = Vec::new();
    for evaluation in &current.evaluations {
        let Some(before) = occupant
            .evaluations
            .iter()
            .rev()
            .find(|earlier| earlier.dataset == evaluation.dataset)
        else {
            continue;
        };
        let old: BTreeMap<&str, f64> = before.results.overall().into_iter().collect();
        for (name, value) in evaluation.results.overall() {
            if let Some(previous) = old.get(name) {
                let delta = value - previous;
                rows.push(ChangeRow {
                    what: format!("{} on {}", name, evaluation.dataset),
                    before: format::number(*previous),
                    after: format!(
                        "{} ({}{})",
                        format::number(value),
                        if delta >= 0.0 { "+" } else { "" },
                        format::number(delta)
                    ),
                });
            }
        }
    }
    rows
}

fn lineage_changes(current: &Evidence, occupant: &Evidence) -> Vec<ChangeRow> {
    let (now, then) = (&current.version, &occupant.version);
    let pairs = [
        ("artifact digest", &then.digest, &now.digest),
        (
            "code repository",
            &then.code_repository,
            &now.code_repository,
        ),
        ("code commit", &then.code_commit, &now.code_commit),
        (
            "training data",
            &then.training_data_uri,
            &now.training_data_uri,
        ),
        (
            "training data digest",
            &then.training_data_digest,
            &now.training_data_digest,
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, before, after)| before != after)
        .map(|(what, before, after)| ChangeRow {
            what: what.to_owned(),
            before: before.clone(),
            after: after.clone(),
        })
        .collect()
}

async fn build_page(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    feedback: Feedback,
) -> Result<RequestPage, UiError> {
    let detail = state.store().get_request(id).await?;
    let request = &detail.request;
    let in_force = policy_in_force(state).await?;
    let model = state.store().get_model(&request.model_name).await?;
    let version = state
        .store()
        .get_version(&request.model_name, request.version)
        .await?;
    let evidence = version_evidence(state, &model, &version, &in_force.policy).await?;
    let is_open = request.state == RequestState::Open;
    // A policy applied later may have no gate for this step: the page still shows the request (and a
    // decided one its history), and says why it cannot be approved.
    let (terms, outcomes, gate_problem) =
        match gate_terms(&in_force, &model, &version, &evidence, request.target_stage) {
            Ok((terms, outcomes)) => (terms, outcomes, None),
            Err(error) if error.code == crate::error::ErrorCode::InvalidArgument => (
                GateTerms {
                    from_stage: version.stage,
                    signoffs: Vec::new(),
                    rules: SeparationRules {
                        owner_may_approve: in_force.policy.owner_may_approve,
                        admins_may_approve: in_force.policy.admins_may_approve,
                    },
                    checks_pass: false,
                    valid_for_days: 0,
                    single_occupancy: false,
                    rollback_without_signoffs: false,
                    policy_revision: in_force.revision,
                    policy_digest: in_force.policy.digest.clone(),
                    evidence_revision: version.evidence_revision,
                    evidence_digest: evidence.digest(),
                },
                Vec::new(),
                Some(error.message),
            ),
            Err(error) => return Err(error.into()),
        };
    let digest_now = if is_open {
        terms.evidence_digest.clone()
    } else {
        api_routes::final_evidence(&detail)
            .unwrap_or(&request.evidence_digest)
            .to_owned()
    };
    let parties = state.store().parties_of_request(request).await?;
    // What counts: for an open request, the decision's own rule (active reviewers still holding the
    // role, the admin rule, separation of duties); for a decided one, the approvals as they were given.
    let given: Vec<CountedApproval> = if is_open {
        state
            .store()
            .counted_approvals(request.id, &digest_now, terms.rules.admins_may_approve)
            .await?
    } else {
        api_routes::current_approvals(&detail, &digest_now)
    };
    let counted = counting(&given, &parties, terms.rules);
    let missing = outstanding(&terms.signoffs, &counted);
    let eligible =
        api_routes::eligible_reviewers(state, &missing, &parties, &terms, &counted).await?;
    let signoffs = terms
        .signoffs
        .iter()
        .map(|quota| SignoffRow {
            role: quota.role.to_string(),
            required: quota.count,
            given: counted
                .iter()
                .filter(|approval| approval.role == quota.role)
                .count(),
            eligible: eligible
                .get(quota.role.as_str())
                .map(|names| {
                    if names.is_empty() {
                        "nobody can sign this now".to_owned()
                    } else {
                        names.join(", ")
                    }
                })
                .unwrap_or_else(|| "complete".to_owned()),
        })
        .collect();
    let checks = outcomes
        .iter()
        .map(|outcome| {
            let (status, detail) = status_of(&outcome.status);
            CheckRow {
                name: outcome.name.clone(),
                expression: outcome.expression.clone(),
                description: outcome.description.clone(),
                status,
                detail,
            }
        })
        .collect();
    let lineage = &version.lineage;
    let artifact = vec![
        ("artifact digest".to_owned(), version.digest.to_string()),
        ("size".to_owned(), format::bytes(version.size_bytes)),
        (
            "format".to_owned(),
            format!("{} ({})", version.format, version.media_type),
        ),
        (
            "code".to_owned(),
            format!(
                "{} @ {}",
                lineage.code_repository.as_deref().unwrap_or("not given"),
                lineage.code_commit.as_deref().unwrap_or("no commit given")
            ),
        ),
        (
            "training data".to_owned(),
            format!(
                "{} ({})",
                lineage.training_data_uri.as_deref().unwrap_or("not given"),
                lineage
                    .training_data_digest
                    .map(|digest| digest.to_string())
                    .unwrap_or_else(|| "no digest".to_owned())
            ),
        ),
        (
            "registered by".to_owned(),
            format!(
                "{} at {}",
                version.created_by,
                format::time(version.created_at)
            ),
        ),
        (
            "artifact scan".to_owned(),
            match &evidence.scan {
                Some(scan) => format!(
                    "{} ({} findings; {}{})",
                    scan.report.verdict,
                    scan.report.findings.len(),
                    scan.report.engine,
                    if scan.report.is_outdated() {
                        ", outdated: scanned again shortly"
                    } else {
                        ""
                    }
                ),
                None => "unscanned: the server has not scanned this artifact yet".to_owned(),
            },
        ),
        ("evidence digest".to_owned(), terms.evidence_digest.clone()),
        (
            "policy".to_owned(),
            format!("revision {} ({})", in_force.revision, terms.policy_digest),
        ),
    ];
    let required: Vec<String> = in_force
        .policy
        .card_requirements
        .get(&model.risk_tier)
        .cloned()
        .unwrap_or_default();
    let card_revision = state
        .store()
        .latest_card(&request.model_name, request.version)
        .await?;
    let (card, card_revision_text, current_card) = match &card_revision {
        None => (
            required
                .iter()
                .map(|path| FieldRow {
                    path: path.clone(),
                    value: String::new(),
                    required: true,
                    missing: true,
                })
                .collect(),
            "no card yet".to_owned(),
            None,
        ),
        Some(revision) => {
            let card = modelgate_card::parse(&revision.content).ok();
            let fields = card
                .as_ref()
                .map(modelgate_card::fields)
                .unwrap_or_default();
            let missing = card
                .as_ref()
                .map(|card| modelgate_card::missing(card, &required))
                .unwrap_or_else(|| required.clone());
            let mut rows: Vec<FieldRow> = fields
                .iter()
                .map(|(path, value)| FieldRow {
                    path: path.clone(),
                    value: text_of(value),
                    required: required
                        .iter()
                        .any(|required| path.starts_with(required.as_str())),
                    missing: false,
                })
                .collect();
            rows.extend(missing.iter().map(|path| FieldRow {
                path: path.clone(),
                value: String::new(),
                required: true,
                missing: true,
            }));
            (
                rows,
                format!("revision {} ({})", revision.revision, revision.digest),
                card,
            )
        }
    };
    let evaluations = evidence.evaluations.iter().map(evaluation_view).collect();
    // What changed against the version now in the target stage.
    let occupant = state
        .store()
        .stage_occupants(&request.model_name, request.target_stage)
        .await?
        .into_iter()
        .find(|occupant| occupant.version != request.version);
    let (compared_with, card_changes, metric_changes, lineage_changes) = match occupant {
        None => (None, Vec::new(), Vec::new(), Vec::new()),
        Some(occupant) => {
            let other = state
                .store()
                .get_version(&request.model_name, occupant.version)
                .await?;
            let other_evidence = version_evidence(state, &model, &other, &in_force.policy).await?;
            let other_card = state
                .store()
                .latest_card(&request.model_name, occupant.version)
                .await?
                .and_then(|revision| modelgate_card::parse(&revision.content).ok());
            let card_changes = match (&other_card, &current_card) {
                (Some(before), Some(after)) => modelgate_card::diff(before, after)
                    .into_iter()
                    .map(|change| ChangeRow {
                        what: change.path,
                        before: change.before.as_ref().map(text_of).unwrap_or_default(),
                        after: change.after.as_ref().map(text_of).unwrap_or_default(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            (
                Some(format!(
                    "version {} (now in {})",
                    occupant.version, request.target_stage
                )),
                card_changes,
                metric_changes(&evidence, &other_evidence),
                lineage_changes(&evidence, &other_evidence),
            )
        }
    };
    // The discussion: comments, reviews, evidence changes and voided sign-offs on one time line.
    let mut timeline: Vec<(i64, EventRow)> = Vec::new();
    for comment in &detail.comments {
        timeline.push((
            comment.created_at.unix_millis(),
            EventRow {
                at: format::time(comment.created_at),
                who: comment.author.to_string(),
                kind: "comment",
                text: comment.body.clone(),
            },
        ));
    }
    let mut signatures = Vec::new();
    for review in &detail.reviews {
        let voided =
            review.decision == ReviewDecision::Approve && review.evidence_digest != digest_now;
        let (kind, text) = match review.decision {
            ReviewDecision::Approve if voided => (
                "voided",
                format!(
                    "approved as {}; void, the evidence changed after it was signed",
                    review.role
                ),
            ),
            ReviewDecision::Approve => ("approval", format!("approved as {}", review.role)),
            ReviewDecision::Reject => (
                "rejection",
                format!("rejected as {}: {}", review.role, review.comment),
            ),
            ReviewDecision::RequestChanges => (
                "changes",
                format!("asked for changes as {}: {}", review.role, review.comment),
            ),
        };
        timeline.push((
            review.created_at.unix_millis(),
            EventRow {
                at: format::time(review.created_at),
                who: review.reviewer.to_string(),
                kind,
                text,
            },
        ));
        if review.decision == ReviewDecision::Approve {
            signatures.push(SignatureRow {
                printed_name: review.printed_name.clone(),
                username: review.reviewer.to_string(),
                at: format::time(review.created_at),
                role: review.role.to_string(),
                meaning: review.meaning.clone().unwrap_or_default(),
                evidence_digest: review.evidence_digest.clone(),
                counts: !voided,
            });
        }
    }
    let changes = state
        .store()
        .list_audit_events(&modelgate_store::AuditFilter {
            target: Some(format!(
                "model/{}/version/{}",
                request.model_name, request.version
            )),
            since: Some(request.created_at),
            limit: 200,
            ..modelgate_store::AuditFilter::default()
        })
        .await?;
    for (_, leaf) in changes {
        let Ok(event) = serde_json::from_str::<modelgate_audit::AuditEvent>(&leaf) else {
            continue;
        };
        let evidence_change =
            event.action.starts_with("card.") || event.action.starts_with("evaluation.");
        if !evidence_change || event.outcome != modelgate_audit::Outcome::Ok {
            continue;
        }
        let at =
            modelgate_core::Timestamp::parse_rfc3339(&event.time).unwrap_or(request.created_at);
        timeline.push((
            at.unix_millis(),
            EventRow {
                at: format::time(at),
                who: event.actor.clone(),
                kind: "evidence",
                text: format!("evidence changed: {}", event.action),
            },
        ));
    }
    timeline.sort_by_key(|(at, _)| *at);
    let timeline = timeline.into_iter().map(|(_, row)| row).collect();
    let user = viewer.user();
    let (sign_roles, cannot_sign) = if let (true, Some(problem)) = (is_open, &gate_problem) {
        (
            Vec::new(),
            Some(format!(
                "This request cannot be approved under the policy in force: {problem}. Its requester \
                 may withdraw it."
            )),
        )
    } else if !is_open {
        (
            Vec::new(),
            Some(format!(
                "This request is {}; it takes no more sign-offs.",
                request.state
            )),
        )
    } else {
        match standing(user, &parties, terms.rules, &terms.signoffs, &given) {
            Standing::MaySign(roles) => (roles.iter().map(ToString::to_string).collect(), None),
            Standing::MayNotSign(denied) => (Vec::new(), Some(denied.0)),
            Standing::NotAsked => (
                Vec::new(),
                Some(if missing.is_empty() {
                    "Every sign-off this gate asks for has been given.".to_owned()
                } else {
                    format!(
                        "You hold none of the roles this request still needs ({}).",
                        missing
                            .iter()
                            .map(|quota| quota.role.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            ),
        }
    };
    // Left blank unless the viewer wrote one: the server then words it for the role actually chosen.
    let meaning = feedback.signoff_meaning.clone().unwrap_or_default();
    let meaning_hint = format!(
        "approved for {} as {}",
        request.target_stage,
        sign_roles.join(" or ")
    );
    let statement = vec![
        (
            "model".to_owned(),
            format!("{} version {}", request.model_name, request.version),
        ),
        ("into stage".to_owned(), request.target_stage.to_string()),
        ("artifact".to_owned(), version.digest.to_string()),
        ("evidence digest".to_owned(), terms.evidence_digest.clone()),
        ("card".to_owned(), card_revision_text.clone()),
        (
            "evaluations".to_owned(),
            if evidence.evaluations.is_empty() {
                "none".to_owned()
            } else {
                evidence
                    .evaluations
                    .iter()
                    .map(|evaluation| {
                        format!(
                            "#{} on {} ({})",
                            evaluation.id,
                            evaluation.dataset,
                            evaluation.mode.as_str()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ),
        (
            "policy".to_owned(),
            format!("revision {} ({})", in_force.revision, terms.policy_digest),
        ),
        (
            "signed as".to_owned(),
            format!("{} ({})", user.printed_name, user.username),
        ),
    ];
    let may_withdraw =
        is_open && modelgate_core::access::may_withdraw(user, &request.requester, id).is_ok();
    let step_problem = check_stage_step(
        &in_force.policy.stages,
        request.from_stage,
        request.target_stage,
    )
    .err()
    .map(|denied| denied.0);
    let now = state.now();
    Ok(RequestPage {
        // The count of what waits is the inbox's; a request page does not read the whole queue for it.
        nav: Nav::for_viewer(viewer, "inbox", None),
        id,
        model: request.model_name.to_string(),
        version: request.version.get(),
        from_stage: request.from_stage.to_string(),
        target_stage: request.target_stage.to_string(),
        tier: model.risk_tier.to_string(),
        kind: request.kind.as_str().to_owned(),
        requester: request.requester.to_string(),
        justification: request.justification.clone(),
        opened: format::time(request.created_at),
        age: format::age(request.created_at, now),
        state: request.state.to_string(),
        decision_reason: request.decision_reason.clone(),
        step_problem,
        checks,
        checks_pass: terms.checks_pass,
        signoffs,
        artifact,
        scan_verdict: evidence
            .scan
            .as_ref()
            .map_or("unscanned", |scan| scan.report.verdict.as_str()),
        scan_findings: scan_rows(&evidence),
        scan_findings_hidden: evidence.scan.as_ref().map_or(0, |scan| {
            scan.report
                .findings
                .len()
                .saturating_sub(SCAN_FINDINGS_SHOWN)
        }),
        card_revision: card_revision_text,
        card,
        evaluations,
        compared_with,
        card_changes,
        metric_changes,
        lineage_changes,
        timeline,
        signatures,
        sign_roles,
        cannot_sign,
        meaning,
        meaning_hint,
        evidence_digest: terms.evidence_digest.clone(),
        gate_problem,
        statement,
        may_withdraw,
        feedback,
    })
}

fn parse_id(id: &str) -> Result<i64, UiError> {
    id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        UiError::not_found(format!(
            "There is no request {id:?}: request ids are positive numbers."
        ))
    })
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(id): PagePath<String>,
) -> Result<Response, UiError> {
    let id = parse_id(&id)?;
    let page = build_page(&state, &viewer, id, Feedback::default()).await?;
    Ok(rendered(&page).into_response())
}

/// The page again with what went wrong next to the field, answered with the refusal's status.
async fn page_with(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    feedback: Feedback,
) -> Result<Response, UiError> {
    let page = build_page(state, viewer, id, feedback).await?;
    Ok((status, rendered(&page)).into_response())
}

fn back_to(id: i64, anchor: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/requests/{id}#{anchor}"))],
    )
        .into_response()
}

#[derive(Debug, serde::Deserialize)]
pub struct CommentForm {
    csrf_token: Option<String>,
    #[serde(default)]
    body: String,
}

pub async fn comment(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(id): PagePath<String>,
    headers: HeaderMap,
    PageForm(form): PageForm<CommentForm>,
) -> Result<Response, UiError> {
    let id = parse_id(&id)?;
    viewer.check_form(&state, &headers, form.csrf_token.as_deref())?;
    let body = api_body(serde_json::json!({ "body": form.body }))?;
    match api_routes::comment_request(
        State(state.clone()),
        viewer.caller.clone(),
        ApiPath(id),
        ApiJson(body),
    )
    .await
    {
        Ok(_) => Ok(back_to(id, "discussion")),
        Err(error) if error.code == crate::error::ErrorCode::InvalidArgument => {
            let (_, status) = error.code.describe();
            page_with(
                &state,
                &viewer,
                id,
                status,
                Feedback {
                    comment_error: Some(error.message),
                    comment_body: form.body,
                    ..Feedback::default()
                },
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct ReviewForm {
    csrf_token: Option<String>,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    meaning: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    password: String,
    /// The evidence digest the page showed: the API refuses the review when it changed since.
    #[serde(default)]
    evidence_digest: String,
}

pub async fn review(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(id): PagePath<String>,
    headers: HeaderMap,
    PageForm(form): PageForm<ReviewForm>,
) -> Result<Response, UiError> {
    let id = parse_id(&id)?;
    viewer.check_form(&state, &headers, form.csrf_token.as_deref())?;
    let body = api_body(serde_json::json!({
        "decision": form.decision,
        "role": form.role,
        "comment": form.comment,
        "meaning": (!form.meaning.trim().is_empty()).then_some(form.meaning.clone()),
        "password": (form.decision == "approve").then_some(form.password.clone()),
        "evidence_digest": (!form.evidence_digest.is_empty()).then_some(form.evidence_digest.clone()),
    }))?;
    match api_routes::review_request(
        State(state.clone()),
        viewer.caller.clone(),
        ApiPath(id),
        ApiJson(body),
    )
    .await
    {
        Ok(_) => Ok(back_to(
            id,
            if form.decision == "approve" {
                "signatures"
            } else {
                "discussion"
            },
        )),
        Err(error) => {
            use crate::error::ErrorCode;
            let (_, status) = error.code.describe();
            let field = error
                .details
                .as_ref()
                .and_then(|details| details.get("field"))
                .and_then(|field| field.as_str())
                .map(str::to_owned)
                .or_else(|| {
                    (error.code == ErrorCode::Unauthenticated).then(|| "password".to_owned())
                })
                // Only the fields the form shows get their error beside them; the rest (the evidence
                // digest the page held, say) are the form's.
                .filter(|field| {
                    ["role", "comment", "password", "meaning"].contains(&field.as_str())
                });
            if error.code == ErrorCode::PermissionDenied
                && field.is_none()
                && viewer_may_not(&error.message)
            {
                return Err(error.into());
            }
            page_with(
                &state,
                &viewer,
                id,
                status,
                Feedback {
                    signoff_error: Some(error.message),
                    signoff_field: field,
                    signoff_comment: form.comment,
                    signoff_meaning: Some(form.meaning),
                    ..Feedback::default()
                },
            )
            .await
        }
    }
}

/// A refusal that says the viewer may not review at all (separation of duties, a role not held) is
/// shown as a page of its own; other problems go next to the form.
fn viewer_may_not(message: &str) -> bool {
    message.starts_with("separation of duties") || message.contains("does not hold the role")
}

#[derive(Debug, serde::Deserialize)]
pub struct WithdrawForm {
    csrf_token: Option<String>,
    #[serde(default)]
    reason: String,
}

pub async fn withdraw(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(id): PagePath<String>,
    headers: HeaderMap,
    PageForm(form): PageForm<WithdrawForm>,
) -> Result<Response, UiError> {
    let id = parse_id(&id)?;
    viewer.check_form(&state, &headers, form.csrf_token.as_deref())?;
    let reason = form.reason.trim();
    let body = if reason.is_empty() {
        bytes::Bytes::new()
    } else {
        bytes::Bytes::from(serde_json::json!({ "reason": reason }).to_string())
    };
    let _withdrawn = api_routes::withdraw_request(
        State(state.clone()),
        viewer.caller.clone(),
        ApiPath(id),
        body,
    )
    .await?;
    Ok(back_to(id, "top"))
}

/// The scanner's findings worth a reviewer's look (not the per-archive summaries and model facts that are
/// only informative), worst first, at most [`SCAN_FINDINGS_SHOWN`].
fn scan_rows(evidence: &modelgate_policy::Evidence) -> Vec<ScanFindingRow> {
    let Some(scan) = &evidence.scan else {
        return Vec::new();
    };
    let mut findings: Vec<&modelgate_scan::Finding> = scan.report.findings.iter().collect();
    findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
    findings
        .into_iter()
        .take(SCAN_FINDINGS_SHOWN)
        .map(|finding| ScanFindingRow {
            severity: finding.severity.as_str(),
            kind: crate::convert::name_of(&finding.kind),
            what: match (finding.module.as_str(), finding.name.as_str()) {
                ("", name) => name.to_owned(),
                (module, name) => format!("{module}.{name}"),
            },
            path: finding.path.clone(),
            offset: finding.offset,
            detail: finding.detail.clone(),
        })
        .collect()
}
