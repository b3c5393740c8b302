//! Governed promotion over HTTP: the policy (`/api/v1/policy`), the gate's dry run
//! (`…/versions/{v}/explain`), promotion requests with reviews and comments (`/api/v1/requests`),
//! suspension, the deployment gate (`/api/v1/gate`) and the server's key (`/api/v1/keys`).

use super::models::maintained_model;
use crate::auth::Caller;
use crate::convert::{Wire, format_time};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::promotion::{check_wire, gate_terms, policy_in_force, quota_wire, version_evidence};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use modelgate_api as api;
use modelgate_core::access::{may_suspend, may_withdraw, require_admin};
use modelgate_core::promotion::{
    CountedApproval, GateTerms, NewReview, PromotionRequest, Refusal, RequestKind, RequestParties,
    RequestState, ReviewDecision, RoleQuota, check_reviewer, check_stage_step, counting,
    gate_decision, outstanding,
};
use modelgate_core::{ModelName, Role, Stage, Username, VersionNumber};
use modelgate_policy::NotRegranted;
use modelgate_policy::Policy;
use modelgate_store::{
    ConsequenceAction, HeldApprovalRecord, PolicyConsequence, RequestDetail, RequestFilter,
};
use serde_json::json;
use std::collections::BTreeMap;

fn policy_wire(in_force: &crate::promotion::PolicyInForce) -> api::PolicyInForce {
    api::PolicyInForce {
        revision: in_force.revision,
        digest: in_force.policy.digest.clone(),
        source: if in_force.revision == 0 {
            "built-in"
        } else {
            "applied"
        }
        .to_owned(),
        applied_by: in_force.applied_by.clone(),
        applied_at: in_force.applied_at.map(format_time),
        text: in_force.policy.text.clone(),
    }
}

#[utoipa::path(get, path = "/api/v1/policy", tag = "promotion", responses((status = 200, body = api::PolicyInForce)))]
/// The policy in force
///
/// Its text (TOML), digest and revision; revision 0 is the built-in default.
pub async fn get_policy(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<api::PolicyInForce>, ApiError> {
    Ok(Json(policy_wire(&policy_in_force(&state).await?)))
}

#[utoipa::path(put, path = "/api/v1/policy", tag = "promotion", request_body = api::ApplyPolicyRequest,
    responses((status = 200, body = api::PolicyApplied, description = "The policy in force afterwards, and the approvals in force that the new policy would not grant, with what happened to them (nothing, with `dry_run`)"),
              (status = 400, body = api::ErrorBody, description = "The policy is invalid: `details.problems` lists each with line and column; the old policy stays in force"),
              (status = 403, body = api::ErrorBody)))]
/// Apply a policy
///
/// Validates the policy (problems give line and column; the old one stays in force) and lists the approvals
/// in force it would not grant; unless `dry_run`, makes it the policy in force and applies its
/// `approvals_not_regranted` to them. Admins only.
pub async fn apply_policy(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::ApplyPolicyRequest>,
) -> Result<Json<api::PolicyApplied>, ApiError> {
    state
        .authorize(
            &caller,
            "policy.apply",
            "policy",
            require_admin(caller.user()),
        )
        .await?;
    crate::text::check_length("text", &request.text, crate::text::POLICY)?;
    let policy = Policy::parse(&request.text).map_err(|problems| {
        let listed: Vec<api::PolicyProblem> = problems
            .iter()
            .map(|problem| api::PolicyProblem {
                line: problem.line,
                column: problem.column,
                message: problem.message.clone(),
            })
            .collect();
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!(
                "the policy is invalid ({} problems; the first: {}); the old policy stays in force",
                problems.len(),
                problems[0]
            ),
        )
        .with_details(json!({ "field": "text", "problems": listed }))
    })?;
    let registered: std::collections::BTreeSet<String> = state
        .store()
        .list_datasets()
        .await?
        .into_iter()
        .map(|dataset| dataset.name)
        .collect();
    let warnings: Vec<String> = policy
        .gates()
        .flat_map(|gate| {
            gate.evaluations
                .iter()
                .filter(|evaluation| !registered.contains(&evaluation.dataset))
                .map(move |evaluation| {
                    format!(
                        "gate {} → {}: the evaluation on dataset {:?} cannot run, no such dataset is \
                         registered (`modelgate dataset register`); requests for this gate show it failed \
                         until it is",
                        gate.tier, gate.stage, evaluation.dataset
                    )
                })
        })
        .collect();
    let (judged, not_regranted) = approvals_not_regranted(&state, &policy).await?;
    let action = policy.approvals_not_regranted;
    let listed = not_regranted
        .iter()
        .map(|(held, reasons)| api::ApprovalNotRegranted {
            model: held.model.to_string(),
            version: held.version.get(),
            stage: held.stage.to_wire(),
            action: action.to_wire(),
            reasons: reasons.clone(),
        })
        .collect();
    if !request.dry_run {
        let consequence_action = match action {
            NotRegranted::Keep => None,
            NotRegranted::ReviewDue => Some(ConsequenceAction::ReviewDue),
            NotRegranted::Suspend => Some(ConsequenceAction::Suspend),
        };
        let consequences: Vec<PolicyConsequence> = consequence_action
            .map(|action| {
                not_regranted
                    .into_iter()
                    .map(|(held, reasons)| PolicyConsequence {
                        model: held.model,
                        version: held.version,
                        version_id: held.version_id,
                        approval_request_id: held.approval_request_id,
                        action,
                        reasons,
                    })
                    .collect()
            })
            .unwrap_or_default();
        state
            .store()
            .apply_policy(
                &caller.attribution(state.now()),
                &policy.digest,
                &policy.text,
                &consequences,
                &judged,
            )
            .await?;
    }
    Ok(Json(api::PolicyApplied {
        policy: policy_wire(&policy_in_force(&state).await?),
        dry_run: request.dry_run,
        digest: policy.digest.clone(),
        approvals_not_regranted: listed,
        warnings,
    }))
}

/// The approvals in force that `policy` would not grant, each with why: its gate's checks on the version's
/// evidence as judged by the new policy, and its sign-offs against those the approval was given with.
/// Also returns every approval judged, as read (the store refuses to apply consequences to others).
async fn approvals_not_regranted(
    state: &AppState,
    policy: &Policy,
) -> Result<
    (
        Vec<HeldApprovalRecord>,
        Vec<(HeldApprovalRecord, Vec<String>)>,
    ),
    ApiError,
> {
    let mut found = Vec::new();
    let judged = state.store().held_approvals().await?;
    for held in judged.iter().cloned() {
        let model = state.store().get_model(&held.model).await?;
        let version = state.store().get_version(&held.model, held.version).await?;
        let Some(gate) = policy.gate(model.risk_tier, held.stage) else {
            let reason = format!(
                "the new policy has no gate for a {} model into {}",
                model.risk_tier, held.stage
            );
            found.push((held, vec![reason]));
            continue;
        };
        let mut reasons = Vec::new();
        let evidence = version_evidence(state, &model, &version, policy).await?;
        for outcome in modelgate_policy::evaluate_checks(&gate.checks, &evidence.document()) {
            if outcome.status != modelgate_policy::CheckStatus::Passed {
                let wire = check_wire(&outcome);
                reasons.push(format!(
                    "check {} is {}{}",
                    wire.name,
                    wire.status,
                    wire.detail
                        .map(|detail| format!(": {detail}"))
                        .unwrap_or_default()
                ));
            }
        }
        let detail = state.store().get_request(held.approval_request_id).await?;
        let exempt = detail.request.kind == RequestKind::Rollback && gate.rollback_without_signoffs;
        if !exempt {
            let given = current_approvals(&detail, final_evidence(&detail).unwrap_or_default());
            for quota in outstanding(&gate.signoffs, &given) {
                reasons.push(format!(
                    "the approval has {} fewer {} sign-off(s) than the new policy asks",
                    quota.count, quota.role
                ));
            }
        }
        if !reasons.is_empty() {
            found.push((held, reasons));
        }
    }
    Ok((judged, found))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// The stage to explain promotion into.
    pub stage: api::Stage,
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/explain", tag = "promotion",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"), ExplainQuery),
    responses((status = 200, body = api::Explanation), (status = 404, body = api::ErrorBody)))]
/// Explain a gate
///
/// A dry run of promotion into a stage: which checks pass or fail and why, which sign-offs are missing and
/// who may give them, the evidence digest and the evaluations it holds.
pub async fn explain_promotion(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ExplainQuery>,
) -> Result<Json<api::Explanation>, ApiError> {
    let name = ModelName::parse(&name)?;
    let number = VersionNumber::parse(&number)?;
    let target = Stage::from_wire(query.stage);
    let in_force = policy_in_force(&state).await?;
    let model = state.store().get_model(&name).await?;
    let version = state.store().get_version(&name, number).await?;
    let evidence = version_evidence(&state, &model, &version, &in_force.policy).await?;
    let (terms, outcomes) = gate_terms(&in_force, &model, &version, &evidence, target)?;
    let step = check_stage_step(&in_force.policy.stages, version.stage, target);
    let open = state
        .store()
        .list_requests(&RequestFilter {
            state: Some(RequestState::Open),
            model: Some(name.clone()),
            limit: 500,
            ..RequestFilter::default()
        })
        .await?
        .into_iter()
        .find(|request| request.version == number && request.target_stage == target);
    let (counted, parties) = match &open {
        Some(request) => {
            let parties = state.store().parties_of_request(request).await?;
            let given = state
                .store()
                .counted_approvals(
                    request.id,
                    &terms.evidence_digest,
                    terms.rules.admins_may_approve,
                )
                .await?;
            (counting(&given, &parties, terms.rules), parties)
        }
        None => (
            Vec::new(),
            RequestParties {
                version_creator: version.created_by.clone(),
                requester: Username::parse(&version.created_by)
                    .unwrap_or_else(|_| model.owner.clone()),
                model_owner: model.owner.clone(),
                owner_at_open: None,
            },
        ),
    };
    let missing = outstanding(&terms.signoffs, &counted);
    let eligible = eligible_reviewers(&state, &missing, &parties, &terms, &counted).await?;
    let monitoring = super::monitoring::version_monitoring(
        &state,
        &name,
        number,
        version.stage,
        model.risk_tier,
    )
    .await?;
    Ok(Json(api::Explanation {
        suspension: version.suspension.clone(),
        monitoring,
        model: name.to_string(),
        version: number.get(),
        risk_tier: model.risk_tier.to_wire(),
        current_stage: version.stage.to_wire(),
        target_stage: target.to_wire(),
        policy_digest: terms.policy_digest.clone(),
        evidence_digest: terms.evidence_digest.clone(),
        step_allowed: step.is_ok(),
        step_problem: step.err().map(|denied| denied.0),
        checks_pass: terms.checks_pass,
        checks: outcomes.iter().map(check_wire).collect(),
        signoffs_required: terms.signoffs.iter().map(quota_wire).collect(),
        signoffs_outstanding: missing.iter().map(quota_wire).collect(),
        eligible_reviewers: eligible,
        valid_for_days: terms.valid_for_days,
        open_request: open.map(|request| request.id),
        evaluations: evidence
            .evaluations
            .iter()
            .map(|evaluation| api::EvidenceEvaluation {
                id: evaluation.id,
                dataset: evaluation.dataset.clone(),
                mode: evaluation.mode.to_wire(),
                digest: evaluation.digest.clone(),
            })
            .collect(),
    }))
}

/// Who could give each outstanding sign-off now: active holders of the role whom separation of duties
/// lets approve (the rule the review itself applies).
pub(crate) async fn eligible_reviewers(
    state: &AppState,
    missing: &[RoleQuota],
    parties: &RequestParties,
    terms: &GateTerms,
    counted: &[CountedApproval],
) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let mut eligible = BTreeMap::new();
    for quota in missing {
        let holders = state.store().users_with_role(&quota.role).await?;
        let names: Vec<String> = holders
            .iter()
            .filter(|user| {
                check_reviewer(
                    user,
                    &quota.role,
                    ReviewDecision::Approve,
                    parties,
                    terms.rules,
                    &terms.signoffs,
                    counted,
                )
                .is_ok()
            })
            .map(|user| user.username.to_string())
            .collect();
        eligible.insert(quota.role.to_string(), names);
    }
    Ok(eligible)
}

/// The approvals a request was given on some evidence, as recorded (for judging a decided approval
/// against a new policy, or showing a decided request; what counts now is `Store::counted_approvals`).
pub(crate) fn current_approvals(
    detail: &RequestDetail,
    evidence_digest: &str,
) -> Vec<CountedApproval> {
    detail
        .reviews
        .iter()
        .filter(|review| {
            review.decision == ReviewDecision::Approve && review.evidence_digest == evidence_digest
        })
        .map(|review| CountedApproval {
            reviewer: review.reviewer.clone(),
            role: review.role.clone(),
        })
        .collect()
}

/// A request with its reviews and comments. `current_evidence` is the version's evidence digest now, for
/// an open request: a review counts if it was given for it. For a decided request, the approvals that
/// counted are those given for the evidence of the final approval; a rejected or withdrawn request has
/// none that count.
/// The evidence digest the request's last approval was given for: on an approved request, the evidence it
/// was approved on.
pub(crate) fn final_evidence(detail: &RequestDetail) -> Option<&str> {
    detail
        .reviews
        .iter()
        .rev()
        .find(|review| review.decision == ReviewDecision::Approve)
        .map(|review| review.evidence_digest.as_str())
}

fn request_wire(detail: &RequestDetail, current_evidence: Option<&str>) -> api::PromotionRequest {
    let request = &detail.request;
    let final_evidence = final_evidence(detail);
    let counts =
        |review: &modelgate_core::promotion::Review| match (request.state, current_evidence) {
            (RequestState::Open, Some(digest)) => digest == review.evidence_digest,
            (RequestState::Approved, _) => final_evidence == Some(review.evidence_digest.as_str()),
            _ => false,
        };
    let mut wire = request_summary(request);
    wire.reviews = detail
        .reviews
        .iter()
        .map(|review| api::ReviewRecord {
            id: review.id,
            reviewer: review.reviewer.to_string(),
            printed_name: review.printed_name.clone(),
            role: review.role.to_string(),
            decision: review.decision.to_wire(),
            comment: review.comment.clone(),
            meaning: review.meaning.clone(),
            evidence_digest: review.evidence_digest.clone(),
            current: counts(review),
            signed_at: format_time(review.created_at),
            signed_record: review.signed_record.clone(),
            signature: review.signature.clone(),
        })
        .collect();
    wire.comments = detail
        .comments
        .iter()
        .map(|comment| api::CommentRecord {
            id: comment.id,
            author: comment.author.to_string(),
            body: comment.body.clone(),
            created_at: format_time(comment.created_at),
        })
        .collect();
    wire
}

fn request_summary(request: &PromotionRequest) -> api::PromotionRequest {
    api::PromotionRequest {
        id: request.id,
        model: request.model_name.to_string(),
        version: request.version.get(),
        digest: request.digest.clone(),
        from_stage: request.from_stage.to_wire(),
        target_stage: request.target_stage.to_wire(),
        kind: request.kind.to_wire(),
        requester: request.requester.to_string(),
        justification: request.justification.clone(),
        state: request.state.to_wire(),
        policy_digest: request.policy_digest.clone(),
        evidence_digest: request.evidence_digest.clone(),
        created_at: format_time(request.created_at),
        decided_at: request.decided_at.map(format_time),
        decision_reason: request.decision_reason.clone(),
        reviews: Vec::new(),
        comments: Vec::new(),
        evaluations: Vec::new(),
    }
}

#[utoipa::path(post, path = "/api/v1/requests", tag = "promotion", request_body = api::OpenRequest,
    responses((status = 201, body = api::PromotionRequest), (status = 403, body = api::ErrorBody), (status = 409, body = api::ErrorBody)))]
/// Request a promotion
///
/// Asks to move a version one stage forward with a justification; a gate that needs no sign-offs approves
/// at once when its checks pass.
pub async fn open_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::OpenRequest>,
) -> Result<(StatusCode, Json<api::PromotionRequest>), ApiError> {
    let name = ModelName::parse(&request.model).map_err(|mut invalid| {
        invalid.field = "model";
        invalid
    })?;
    let number = VersionNumber::new(i64::from(request.version))?;
    let target = Stage::from_wire(request.stage);
    crate::text::check_length("justification", &request.justification, crate::text::PROSE)?;
    if request.justification.trim().is_empty() {
        return Err(ApiError::invalid(
            "justification",
            "justification: say why this version should move",
        ));
    }
    let model = maintained_model(&state, &caller, &name, "request.open").await?;
    let version = state.store().get_version(&name, number).await?;
    let in_force = policy_in_force(&state).await?;
    let target_label = format!("model/{name}/version/{number}");
    // Asking for the stage a version is in already re-validates it there (renews its approval, lifts a
    // suspension once signed off).
    let kind = if version.stage == target && in_force.policy.stages[1..].contains(&target) {
        RequestKind::Revalidation
    } else {
        RequestKind::Promotion
    };
    if kind == RequestKind::Promotion {
        let step = check_stage_step(&in_force.policy.stages, version.stage, target);
        state
            .authorize(&caller, "request.open", &target_label, step)
            .await?;
    }
    let evidence = version_evidence(&state, &model, &version, &in_force.policy).await?;
    let (terms, _) = gate_terms(&in_force, &model, &version, &evidence, target)?;
    let opened = state
        .store()
        .open_request(
            &caller.attribution(state.now()),
            caller.user(),
            &name,
            number,
            target,
            kind,
            request.justification.trim(),
            &terms,
        )
        .await?;
    let opened = refused(&state, &caller, "request.open", &target_label, opened).await?;
    let gate_evaluations = in_force
        .policy
        .gate(model.risk_tier, target)
        .map(|gate| gate.evaluations.clone())
        .unwrap_or_default();
    let evaluations = if opened.state == RequestState::Open && !gate_evaluations.is_empty() {
        super::evaluations::queue_gate_evaluations(
            &state,
            &caller,
            &name,
            number,
            &gate_evaluations,
        )
        .await
    } else {
        Vec::new()
    };
    let detail = state.store().get_request(opened.id).await?;
    let mut wire = request_wire(&detail, Some(&terms.evidence_digest));
    wire.evaluations = evaluations;
    Ok((StatusCode::CREATED, Json(wire)))
}

#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "promotion",
    params(("id" = i64, Path, description = "Request id")),
    responses((status = 200, body = api::PromotionRequest), (status = 404, body = api::ErrorBody)))]
/// A promotion request
///
/// Its state, reviews (with which count for the current evidence) and comments.
pub async fn get_request(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<api::PromotionRequest>, ApiError> {
    let detail = state.store().get_request(id).await?;
    let evidence = current_evidence(&state, &detail.request).await?;
    let mut wire = request_wire(&detail, evidence.as_deref());
    if detail.request.state == RequestState::Open {
        let request = &detail.request;
        let model = state.store().get_model(&request.model_name).await?;
        let in_force = policy_in_force(&state).await?;
        if let Some(gate) = in_force.policy.gate(model.risk_tier, request.target_stage) {
            wire.evaluations = super::evaluations::gate_evaluation_states(
                &state,
                &request.model_name,
                request.version,
                &gate.evaluations,
            )
            .await?;
        }
    }
    Ok(Json(wire))
}

/// The evidence digest a request's version has now (for open requests; decided ones keep theirs).
async fn current_evidence(
    state: &AppState,
    request: &PromotionRequest,
) -> Result<Option<String>, ApiError> {
    if request.state != RequestState::Open {
        return Ok(None);
    }
    let in_force = policy_in_force(state).await?;
    let model = state.store().get_model(&request.model_name).await?;
    let version = state
        .store()
        .get_version(&request.model_name, request.version)
        .await?;
    let evidence = version_evidence(state, &model, &version, &in_force.policy).await?;
    Ok(Some(evidence.digest()))
}

/// Turns a decision's refusal into the error to answer with: a denial is recorded in the audit log (403),
/// a conflict (the situation changed; nothing was written) is a 409.
async fn refused<T>(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
    outcome: Result<T, Refusal>,
) -> Result<T, ApiError> {
    match outcome {
        Ok(value) => Ok(value),
        Err(Refusal::Denied(denied)) => Err(state
            .refuse(
                caller.attribution(state.now()),
                action,
                target,
                denied.into(),
            )
            .await),
        Err(Refusal::Conflict(message)) => Err(ApiError::new(ErrorCode::Conflict, message)),
    }
}

#[utoipa::path(get, path = "/api/v1/requests", tag = "promotion", params(api::ListRequestsQuery),
    responses((status = 200, body = api::RequestList)))]
/// List promotion requests
///
/// Newest first, filtered by state, model and requester.
pub async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<api::ListRequestsQuery>,
) -> Result<Json<api::RequestList>, ApiError> {
    let filter = RequestFilter {
        state: query.state.map(RequestState::from_wire),
        requester: query
            .mine
            .unwrap_or(false)
            .then(|| caller.user().username.clone()),
        model: query
            .model
            .as_deref()
            .map(|model| {
                ModelName::parse(model).map_err(|mut invalid| {
                    invalid.field = "model";
                    invalid
                })
            })
            .transpose()?,
        limit: query.limit.unwrap_or(100).clamp(1, 500),
    };
    let requests = state.store().list_requests(&filter).await?;
    Ok(Json(api::RequestList {
        requests: requests.iter().map(request_summary).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/withdraw", tag = "promotion",
    params(("id" = i64, Path, description = "Request id")), request_body = api::WithdrawRequest,
    responses((status = 200, body = api::PromotionRequest), (status = 403, body = api::ErrorBody), (status = 409, body = api::ErrorBody)))]
/// Withdraw a request
///
/// By its requester or an admin; only open requests.
pub async fn withdraw_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    body: axum::body::Bytes,
) -> Result<Json<api::PromotionRequest>, ApiError> {
    // The body is optional: empty, or `{"reason": "..."}`.
    let body: api::WithdrawRequest = if body.iter().all(u8::is_ascii_whitespace) {
        api::WithdrawRequest::default()
    } else {
        crate::extract::json_body(&body)?
    };
    crate::text::check_optional_length("reason", body.reason.as_deref(), crate::text::PROSE)?;
    let detail = state.store().get_request(id).await?;
    let may = may_withdraw(caller.user(), &detail.request.requester, id);
    state
        .authorize(&caller, "request.withdraw", &format!("request/{id}"), may)
        .await?;
    let reason = body
        .reason
        .unwrap_or_else(|| format!("withdrawn by {}", caller.user().username));
    state
        .store()
        .withdraw_request(&caller.attribution(state.now()), id, &reason)
        .await?;
    let detail = state.store().get_request(id).await?;
    Ok(Json(request_wire(&detail, None)))
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/comments", tag = "promotion",
    params(("id" = i64, Path, description = "Request id")), request_body = api::SubmitComment,
    responses((status = 201, body = api::CommentRecord), (status = 404, body = api::ErrorBody)))]
/// Comment on a request
///
/// Anyone may discuss a request; comments are kept and audited.
pub async fn comment_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<api::SubmitComment>,
) -> Result<(StatusCode, Json<api::CommentRecord>), ApiError> {
    crate::text::check_length("body", &request.body, crate::text::PROSE)?;
    if request.body.trim().is_empty() {
        return Err(ApiError::invalid("body", "body: a comment needs text"));
    }
    let comment = state
        .store()
        .comment_request(
            &caller.attribution(state.now()),
            id,
            caller.user(),
            request.body.trim(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(api::CommentRecord {
            id: comment.id,
            author: comment.author.to_string(),
            body: comment.body,
            created_at: format_time(comment.created_at),
        }),
    ))
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/reviews", tag = "promotion",
    params(("id" = i64, Path, description = "Request id")), request_body = api::SubmitReview,
    responses((status = 200, body = api::PromotionRequest),
              (status = 401, body = api::ErrorBody, description = "Wrong password at signing"),
              (status = 403, body = api::ErrorBody, description = "Separation of duties, or a role not held or not asked for"),
              (status = 409, body = api::ErrorBody), (status = 429, body = api::ErrorBody)))]
/// Review a request
///
/// Approve (an electronic signature: the password is asked again and the server signs the record), reject
/// or request changes, in one role the reviewer holds and the gate asks for. Separation of duties is
/// enforced here; an approval that completes the gate promotes the version, unless what it was made on
/// changed (409).
pub async fn review_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<api::SubmitReview>,
) -> Result<Json<api::PromotionRequest>, ApiError> {
    let decision = ReviewDecision::from_wire(request.decision);
    let role = Role::parse(&request.role)?;
    crate::text::check_length("comment", &request.comment, crate::text::PROSE)?;
    crate::text::check_optional_length("meaning", request.meaning.as_deref(), crate::text::SHORT)?;
    let detail = state.store().get_request(id).await?;
    let pending = &detail.request;
    let in_force = policy_in_force(&state).await?;
    let model = state.store().get_model(&pending.model_name).await?;
    let version = state
        .store()
        .get_version(&pending.model_name, pending.version)
        .await?;
    let evidence = version_evidence(&state, &model, &version, &in_force.policy).await?;
    let (terms, _) = gate_terms(&in_force, &model, &version, &evidence, pending.target_stage)?;
    if let Some(shown) = request.evidence_digest.as_deref()
        && shown != terms.evidence_digest
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "the evidence changed after it was shown to you ({shown}); it is now {}: look at it \
                 again, then review (nothing was written)",
                terms.evidence_digest
            ),
        )
        .with_details(json!({ "field": "evidence_digest", "current": terms.evidence_digest })));
    }
    let target = format!("request/{id}");
    let action = format!("review.{}", decision.as_str());
    let now = state.now();
    let (comment, meaning, signed_record, signature) = match decision {
        ReviewDecision::Approve => {
            let meaning = request
                .meaning
                .clone()
                .filter(|meaning| !meaning.trim().is_empty())
                .unwrap_or_else(|| format!("approved for {} as {role}", pending.target_stage));
            verify_signature_password(
                &state,
                &caller,
                &action,
                &target,
                request.password.as_deref(),
            )
            .await?;
            let record = json!({
                "type": "modelgate.signoff/v1",
                "request": id,
                "model": pending.model_name.as_str(),
                "version": pending.version.get(),
                "stage": pending.target_stage.as_str(),
                "artifact_digest": version.digest.to_string(),
                "evidence_digest": terms.evidence_digest,
                "policy_digest": terms.policy_digest,
                "username": caller.user().username.as_str(),
                "printed_name": caller.user().printed_name,
                "role": role.as_str(),
                "meaning": meaning,
                "signed_at": now.to_rfc3339(),
            });
            let canonical = serde_json_canonicalizer::to_string(&record)
                .map_err(|error| ApiError::internal(&error))?;
            let signature = BASE64.encode(state.signer().sign_message(canonical.as_bytes()));
            (
                request.comment.clone(),
                Some(meaning),
                Some(canonical),
                Some(signature),
            )
        }
        ReviewDecision::Reject | ReviewDecision::RequestChanges => {
            if request.comment.trim().is_empty() {
                return Err(ApiError::invalid(
                    "comment",
                    "comment: say what is wrong or what must change",
                ));
            }
            (request.comment.clone(), None, None, None)
        }
    };
    let review = NewReview {
        role,
        decision,
        comment,
        meaning,
        signed_record,
        signature,
    };
    let outcome = state
        .store()
        .review_request(&caller.attribution(now), id, caller.user(), &review, &terms)
        .await?;
    refused(&state, &caller, &action, &target, outcome).await?;
    let detail = state.store().get_request(id).await?;
    Ok(Json(request_wire(&detail, Some(&terms.evidence_digest))))
}

/// Approving is an electronic signature: the reviewer's password must be given again in the same call,
/// under the lock-out shared with login, and it must be a password the reviewer set themselves.
async fn verify_signature_password(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
    password: Option<&str>,
) -> Result<(), ApiError> {
    let username = caller.user().username.clone();
    let Some(password) = password.filter(|password| !password.is_empty()) else {
        return Err(ApiError::invalid(
            "password",
            "password: approving is a signature; give your password in this call (the CLI prompts for it)",
        ));
    };
    let error = match state.check_password(&username, password).await? {
        crate::state::PasswordCheck::Matched
            if state.store().password_reset_required(&username).await? =>
        {
            ApiError::new(
                ErrorCode::PermissionDenied,
                "your password was set by an admin, so it cannot sign: set your own first with \
                 `modelgate user passwd` (it asks for the current one), then sign again",
            )
        }
        crate::state::PasswordCheck::Matched => return Ok(()),
        crate::state::PasswordCheck::Mismatched => {
            ApiError::unauthenticated("the password does not match: the signature was not made")
        }
        crate::state::PasswordCheck::Locked { until } => {
            crate::state::PasswordCheck::locked_error(&username, until)
        }
    };
    Err(state
        .refuse(caller.attribution(state.now()), action, target, error)
        .await)
}

#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/suspend", tag = "promotion",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    request_body = api::SuspendVersion,
    responses((status = 200, body = api::Version), (status = 403, body = api::ErrorBody)))]
/// Suspend a version
///
/// By a risk officer, with a reason: the gate says no until the version is reinstated.
pub async fn suspend_version(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<api::SuspendVersion>,
) -> Result<Json<api::Version>, ApiError> {
    crate::text::check_length("reason", &request.reason, crate::text::PROSE)?;
    if request.reason.trim().is_empty() {
        return Err(ApiError::invalid(
            "reason",
            "reason: say why the version is suspended",
        ));
    }
    change_suspension(
        state,
        caller,
        name,
        number,
        Some(request.reason.trim().to_owned()),
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/reinstate", tag = "promotion",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, body = api::Version), (status = 403, body = api::ErrorBody)))]
/// Reinstate a version
///
/// Lifts a suspension; the only way one is lifted.
pub async fn reinstate_version(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> Result<Json<api::Version>, ApiError> {
    change_suspension(state, caller, name, number, None).await
}

async fn change_suspension(
    state: AppState,
    caller: Caller,
    name: String,
    number: String,
    reason: Option<String>,
) -> Result<Json<api::Version>, ApiError> {
    let name = ModelName::parse(&name)?;
    let number = VersionNumber::parse(&number)?;
    let in_force = policy_in_force(&state).await?;
    let roles: Vec<Role> = in_force.policy.risk_officer_roles.iter().cloned().collect();
    let decision = may_suspend(caller.user(), &roles);
    let action = if reason.is_some() {
        "version.suspend"
    } else {
        "version.reinstate"
    };
    state
        .authorize(
            &caller,
            action,
            &format!("model/{name}/version/{number}"),
            decision,
        )
        .await?;
    let version = state
        .store()
        .set_suspension(
            &caller.attribution(state.now()),
            &name,
            number,
            reason.as_deref(),
        )
        .await?;
    Ok(Json(crate::convert::version(
        &version,
        crate::promotion::approval_context(&state).await?,
    )))
}

#[utoipa::path(get, path = "/api/v1/gate", tag = "promotion", params(api::GateQuery),
    responses((status = 200, body = api::GateAnswer, description = "`allowed` says whether the digest may run in the stage now")))]
/// Ask the deployment gate
///
/// May this digest of the model run in the stage now? Yes only if it is the version an approval put there,
/// the approval has not expired and the version is not suspended.
pub async fn check_gate(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<api::GateQuery>,
) -> Result<Json<api::GateAnswer>, ApiError> {
    let name = ModelName::parse(&query.model).map_err(|mut invalid| {
        invalid.field = "model";
        invalid
    })?;
    let stage = Stage::from_wire(query.stage);
    let digest = modelgate_core::Digest::parse(&query.digest)?;
    let occupants = state.store().stage_occupants(&name, stage).await?;
    if occupants.is_empty() {
        // Distinguish an unknown model (404) from an empty stage.
        state.store().get_model(&name).await?;
    }
    let now = state.now();
    let answer = gate_decision(stage, &occupants, &digest.to_string(), now);
    if !answer.allowed {
        // Grouped per (source, reason) and minute like refused logins: a deploy pipeline polling the
        // gate, or a caller asking in a loop, cannot grow the log one event per request.
        let target = format!("model/{name}/stage/{stage}");
        let denial = ApiError::new(ErrorCode::PermissionDenied, answer.reasons.join("; "));
        let _ = state
            .refuse_aggregated(caller.attribution(now), "gate.deny", &target, denial)
            .await;
    }
    Ok(Json(api::GateAnswer {
        allowed: answer.allowed,
        model: name.to_string(),
        version: answer.version.map(VersionNumber::get),
        stage: stage.to_wire(),
        reasons: answer.reasons,
        not_after: answer.not_after.map(format_time),
    }))
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "promotion", responses((status = 200, body = api::ServerKeys)))]
/// The server's signing keys
///
/// The Ed25519 public key and the note verifier key that check attestations and checkpoints.
pub async fn get_keys(State(state): State<AppState>, _caller: Caller) -> Json<api::ServerKeys> {
    Json(api::ServerKeys {
        ed25519_public_key: BASE64.encode(state.signer().public_key()),
        verifier_key: state.signer().verifier_key(),
    })
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/attestation", tag = "promotion",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"), ExplainQuery),
    responses((status = 200, description = "A DSSE envelope holding an in-toto Statement v1 of the approval"),
              (status = 409, body = api::ErrorBody, description = "The version holds no approval for that stage")))]
/// A signed attestation of an approval
///
/// An in-toto Statement in a DSSE envelope, signed by the server, that a deploy system verifies offline
/// (`modelgate attest verify`).
pub async fn get_attestation(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ExplainQuery>,
) -> Result<Json<modelgate_audit::attestation::Envelope>, ApiError> {
    let name = ModelName::parse(&name)?;
    let number = VersionNumber::parse(&number)?;
    let stage = Stage::from_wire(query.stage);
    let model = state.store().get_model(&name).await?;
    let version = state.store().get_version(&name, number).await?;
    // The version must stand in the stage on an approval for that stage (an archived version holds
    // none for `archived`, whatever it once held).
    let approval = match &version.approval {
        Some(approval) if version.stage == stage && approval.stage == stage => approval.clone(),
        _ => {
            return Err(ApiError::new(
                ErrorCode::FailedPrecondition,
                format!(
                    "version {number} of {name} holds no approval for {stage} (it is in {})",
                    version.stage
                ),
            ));
        }
    };
    let detail = state.store().get_request(approval.request_id).await?;
    let approvals: Vec<&modelgate_core::promotion::Review> = detail
        .reviews
        .iter()
        .filter(|review| review.decision == ReviewDecision::Approve)
        .collect();
    let final_evidence = final_evidence(&detail)
        .unwrap_or(&detail.request.evidence_digest)
        .to_owned();
    let approvers: Vec<serde_json::Value> = approvals
        .iter()
        .filter(|review| review.evidence_digest == final_evidence)
        .map(|review| {
            json!({
                "username": review.reviewer.as_str(),
                "printed_name": review.printed_name,
                "role": review.role.as_str(),
                "meaning": review.meaning,
                "signed_at": format_time(review.created_at),
            })
        })
        .collect();
    let statement = json!({
        "_type": modelgate_audit::attestation::STATEMENT_TYPE,
        "subject": [{
            "name": format!("{name}@{number}"),
            "digest": { "sha256": version.digest.hex() },
        }],
        "predicateType": modelgate_audit::attestation::PREDICATE_TYPE,
        "predicate": {
            "model": name.as_str(),
            "version": number.get(),
            "stage": stage.as_str(),
            "risk_tier": model.risk_tier.as_str(),
            "decision": "approved",
            "conditions": [],
            "approvers": approvers,
            "request": detail.request.id,
            "kind": detail.request.kind.as_str(),
            "policy_digest": detail.request.policy_digest,
            "evidence_digest": final_evidence,
            "approved_at": format_time(approval.approved_at),
            "not_after": format_time(approval.not_after),
            "suspended": version.suspension,
            "issuer": state.signer().name(),
        },
    });
    let envelope = modelgate_audit::attestation::sign_statement(state.signer(), &statement)
        .map_err(|error| ApiError::internal(&crate::promotion::Unreadable(error)))?;
    Ok(Json(envelope))
}

#[utoipa::path(post, path = "/api/v1/models/{name}/rollback", tag = "promotion",
    params(("name" = String, Path, description = "Model name")), request_body = api::RollbackRequest,
    responses((status = 201, body = api::PromotionRequest, description = "A rollback request: approved at once when the policy lets rollbacks skip sign-offs"),
              (status = 409, body = api::ErrorBody, description = "No previous still-valid approved version")))]
/// Roll a stage back
///
/// Returns the newest earlier version whose approval for the stage still holds; without new sign-offs when
/// the gate allows it, keeping that approval's expiry.
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<api::RollbackRequest>,
) -> Result<(StatusCode, Json<api::PromotionRequest>), ApiError> {
    let name = ModelName::parse(&name)?;
    let stage = Stage::from_wire(request.stage);
    let model = maintained_model(&state, &caller, &name, "version.rollback").await?;
    let now = state.now();
    let candidate = state
        .store()
        .rollback_candidate(&name, stage, now)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::FailedPrecondition,
                format!("{name} has no earlier version whose approval for {stage} is still valid"),
            )
        })?;
    let version = state.store().get_version(&name, candidate).await?;
    let in_force = policy_in_force(&state).await?;
    let evidence = version_evidence(&state, &model, &version, &in_force.policy).await?;
    // The rollback exemption (no new sign-offs, the original expiry) is decided by the store's
    // `decide_opening`, on the version's approval as it stands under the lock.
    let (terms, _) = gate_terms(&in_force, &model, &version, &evidence, stage)?;
    crate::text::check_length("justification", &request.justification, crate::text::PROSE)?;
    let justification = if request.justification.trim().is_empty() {
        format!("rollback of {stage} to version {candidate}")
    } else {
        request.justification.trim().to_owned()
    };
    let opened = state
        .store()
        .open_request(
            &caller.attribution(now),
            caller.user(),
            &name,
            candidate,
            stage,
            RequestKind::Rollback,
            &justification,
            &terms,
        )
        .await?;
    let opened = refused(
        &state,
        &caller,
        "version.rollback",
        &format!("model/{name}/version/{candidate}"),
        opened,
    )
    .await?;
    let detail = state.store().get_request(opened.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(request_wire(&detail, Some(&terms.evidence_digest))),
    ))
}
