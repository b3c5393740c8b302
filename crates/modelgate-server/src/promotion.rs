//! The server's side of governed promotion: the policy in force (cached by digest), a version's typed
//! evidence (read from the store), and the terms a gate sets for a request.

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use modelgate_core::promotion::{GateTerms, RoleQuota, SeparationRules};
use modelgate_core::{EvaluationMode, Model, Stage, Timestamp, Version};
use modelgate_eval::evaluate::StoredResults;
use modelgate_policy::{
    CardEvidence, CheckOutcome, CheckStatus, EvaluationEvidence, Evidence, Policy, ScanEvidence,
    evaluate_checks,
};
use std::sync::Arc;

/// The policy in force and where it came from.
#[derive(Debug, Clone)]
pub struct PolicyInForce {
    pub policy: Arc<Policy>,
    /// 0 for the built-in default.
    pub revision: i64,
    pub applied_by: Option<String>,
    pub applied_at: Option<Timestamp>,
}

/// Reads the policy in force: the latest applied revision, else the built-in default. Parsed policies
/// are cached by digest, so a request costs one small query.
pub async fn policy_in_force(state: &AppState) -> Result<PolicyInForce, ApiError> {
    let stored = state.store().policy_in_force().await?;
    let (digest, text, revision, applied_by, applied_at) = match stored {
        Some(revision) => (
            revision.digest,
            Some(revision.text),
            revision.revision,
            Some(revision.applied_by),
            Some(revision.applied_at),
        ),
        None => (state.default_policy().digest.clone(), None, 0, None, None),
    };
    let policy = match text {
        None => state.default_policy(),
        Some(text) => state.cached_policy(&digest, &text)?,
    };
    Ok(PolicyInForce {
        policy,
        revision,
        applied_by,
        applied_at,
    })
}

/// An internal failure described in words (stored evidence that no longer reads, a statement that cannot
/// be signed): logged in full through `ApiError::internal`, a plain 500 to the client.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unreadable(pub(crate) String);

/// Reads a version's evidence: the current card revision (checked for completeness against the tier's
/// requirements) and every evaluation, with typed results. Read the version (and so its evidence
/// revision) before calling this, so that a write landing in between shows as a changed revision.
/// Stored results that no longer parse are an error, never skipped.
pub async fn version_evidence(
    state: &AppState,
    model: &Model,
    version: &Version,
    policy: &Policy,
) -> Result<Evidence, ApiError> {
    let card = match state
        .store()
        .latest_card(&version.model_name, version.number)
        .await?
    {
        Some(revision) => {
            let card = modelgate_card::parse(&revision.content).map_err(|problems| {
                ApiError::internal(&Unreadable(format!(
                    "stored card revision {} of {}/{} no longer parses: {}",
                    revision.revision, version.model_name, version.number, problems[0].message
                )))
            })?;
            let required = policy
                .card_requirements
                .get(&model.risk_tier)
                .cloned()
                .unwrap_or_default();
            Some(CardEvidence {
                revision: revision.revision,
                digest: revision.digest,
                missing: modelgate_card::missing(&card, &required),
            })
        }
        None => None,
    };
    let evaluations = state
        .store()
        .evaluations_for_version(&version.model_name, version.number)
        .await?
        .iter()
        // Evaluations set aside (exploratory, superseded) stay on record but are not evidence.
        .filter(|record| record.status == modelgate_api::EvaluationStatus::Counted.as_str())
        .map(evaluation_evidence)
        .collect::<Result<Vec<_>, _>>()?;
    let scan = match state.store().scan_of(&version.digest).await? {
        Some(record) => Some(ScanEvidence {
            report: crate::scanning::parse_stored(&record)?,
            digest: record.report_digest,
        }),
        None => None,
    };
    Ok(Evidence::new(
        model,
        version,
        card,
        evaluations,
        scan,
        &policy.digest,
    ))
}

/// An evaluation record with its results read back typed.
pub fn evaluation_evidence(
    record: &modelgate_store::EvaluationRecord,
) -> Result<EvaluationEvidence, ApiError> {
    let unreadable = |what: String| {
        ApiError::internal(&Unreadable(format!(
            "stored evaluation {} no longer parses: {what}",
            record.id
        )))
    };
    Ok(EvaluationEvidence {
        id: record.id,
        dataset: record.dataset.clone(),
        mode: EvaluationMode::parse(&record.mode).map_err(|invalid| unreadable(invalid.rule))?,
        digest: record.digest.clone(),
        results: StoredResults::parse(&record.results_json).map_err(unreadable)?,
    })
}

/// The gate into `target` for this version: its check results and the terms the store enforces, with
/// what they were computed from (the policy and evidence revisions) so the store can refuse stale terms.
pub fn gate_terms(
    in_force: &PolicyInForce,
    model: &Model,
    version: &Version,
    evidence: &Evidence,
    target: Stage,
) -> Result<(GateTerms, Vec<CheckOutcome>), ApiError> {
    let policy = &in_force.policy;
    let gate = policy.gate(model.risk_tier, target).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!(
                "the policy has no gate for a {} model into {target}; stages are {}",
                model.risk_tier,
                policy
                    .stages
                    .iter()
                    .map(|stage| stage.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let mut outcomes = evaluate_checks(&gate.checks, &evidence.document());
    name_what_failed(&mut outcomes, evidence);
    outcomes.extend(modelgate_policy::named_evaluation_outcomes(gate, evidence));
    let checks_pass = outcomes
        .iter()
        .all(|outcome| outcome.status == CheckStatus::Passed);
    let mut signoffs = gate.signoffs.clone();
    if version.stage == target && signoffs.is_empty() {
        // A re-validation (the version is in the stage already) is looked at by people: on a gate that
        // needs no sign-offs, a risk officer signs it.
        if let Some(role) = policy.risk_officer_roles.iter().next() {
            signoffs.push(RoleQuota {
                role: role.clone(),
                count: 1,
            });
        }
    }
    let terms = GateTerms {
        from_stage: version.stage,
        signoffs,
        rules: SeparationRules {
            owner_may_approve: policy.owner_may_approve,
            admins_may_approve: policy.admins_may_approve,
        },
        checks_pass,
        valid_for_days: gate.valid_for_days,
        single_occupancy: policy.single_occupancy.contains(&target),
        rollback_without_signoffs: gate.rollback_without_signoffs,
        policy_revision: in_force.revision,
        policy_digest: policy.digest.clone(),
        evidence_revision: version.evidence_revision,
        evidence_digest: evidence.digest(),
    };
    Ok((terms, outcomes))
}

/// A failed fairness check says which dataset and attribute failed, and by how much.
fn name_what_failed(outcomes: &mut [CheckOutcome], evidence: &Evidence) {
    for outcome in outcomes {
        if let CheckStatus::Failed(detail) = &mut outcome.status
            && outcome.expression.contains("four_fifths_holds")
        {
            let failures: Vec<String> = evidence
                .four_fifths_failures()
                .into_iter()
                .map(|(dataset, attribute, ratio)| match ratio {
                    Some(ratio) => format!("{attribute} on {dataset}, ratio {ratio:.2}"),
                    None => format!("{attribute} on {dataset}, ratio undefined"),
                })
                .collect();
            if !failures.is_empty() {
                detail.push_str(&format!(
                    "; the four-fifths rule fails for {}",
                    failures.join("; ")
                ));
            }
        }
    }
}

/// The frozen-evidence stages of the policy in force, for evidence writes.
pub async fn frozen_evidence_stages(state: &AppState) -> Result<Vec<Stage>, ApiError> {
    Ok(policy_in_force(state)
        .await?
        .policy
        .frozen_evidence_stages
        .iter()
        .copied()
        .collect())
}

pub fn quota_wire(quota: &RoleQuota) -> modelgate_api::SignoffQuota {
    modelgate_api::SignoffQuota {
        role: quota.role.to_string(),
        count: quota.count,
    }
}

pub fn check_wire(outcome: &CheckOutcome) -> modelgate_api::CheckResult {
    let (status, detail) = crate::convert::check_status(&outcome.status);
    modelgate_api::CheckResult {
        name: outcome.name.clone(),
        expression: outcome.expression.clone(),
        description: outcome.description.clone(),
        status,
        detail,
    }
}

/// The context that a version's approval status is computed in.
pub async fn approval_context(
    state: &AppState,
) -> Result<crate::convert::ApprovalContext, ApiError> {
    let in_force = policy_in_force(state).await?;
    Ok(crate::convert::ApprovalContext {
        now: state.now(),
        review_due_days: in_force.policy.review_due_days,
    })
}

/// Re-checks the open requests of one version after new evidence was stored — a card revision or an
/// evaluation: a request whose checks now pass, with every sign-off it asks for given on this evidence,
/// is approved by the server (`request.approve`, by the system, "new evidence"). What was not settled
/// stays open and shows the new check results when it is read. Runs after the evidence's own commit and
/// never fails the write that called it: a request that changed meanwhile (409) is left for the next
/// evidence or the next review, and errors are logged.
/// Opens a re-validation request for a version in its stage, on behalf of the model's owner (who may then
/// not approve it), unless one is open already. Returns the request opened or found open; `None` when the
/// decision refused to open one (logged).
pub async fn open_revalidation(
    state: &AppState,
    attribution: &modelgate_store::Attribution,
    name: &modelgate_core::ModelName,
    number: modelgate_core::VersionNumber,
    justification: &str,
) -> Result<Option<i64>, ApiError> {
    let open = open_requests_of(state, name, number).await?;
    if let Some(open) = open
        .iter()
        .find(|request| request.kind == modelgate_core::promotion::RequestKind::Revalidation)
    {
        return Ok(Some(open.id));
    }
    let model = state.store().get_model(name).await?;
    let version = state.store().get_version(name, number).await?;
    let owner = state.store().get_user(&model.owner).await?;
    let in_force = policy_in_force(state).await?;
    let evidence = version_evidence(state, &model, &version, &in_force.policy).await?;
    let (terms, _) = gate_terms(&in_force, &model, &version, &evidence, version.stage)?;
    match state
        .store()
        .open_request(
            attribution,
            &owner,
            name,
            number,
            version.stage,
            modelgate_core::promotion::RequestKind::Revalidation,
            justification,
            &terms,
        )
        .await?
    {
        Ok(request) => Ok(Some(request.id)),
        Err(refusal) => {
            tracing::warn!(model = %name, version = %number, ?refusal, "could not open a re-validation request");
            Ok(None)
        }
    }
}

pub async fn recheck_open_requests(
    state: &AppState,
    model: &modelgate_core::ModelName,
    number: modelgate_core::VersionNumber,
) {
    match open_requests_of(state, model, number).await {
        Ok(open) => recheck_each(state, &open).await,
        Err(error) => {
            tracing::warn!(error = %error.message, "could not list open requests to re-check")
        }
    }
}

/// The open requests of one version (among its model's latest 500).
async fn open_requests_of(
    state: &AppState,
    model: &modelgate_core::ModelName,
    number: modelgate_core::VersionNumber,
) -> Result<Vec<modelgate_core::promotion::PromotionRequest>, ApiError> {
    let open = state
        .store()
        .list_requests(&modelgate_store::RequestFilter {
            state: Some(modelgate_core::promotion::RequestState::Open),
            requester: None,
            model: Some(model.clone()),
            limit: 500,
        })
        .await?;
    Ok(open
        .into_iter()
        .filter(|request| request.version == number)
        .collect())
}

/// [`recheck_open_requests`] for every version bound to an artifact whose scan report changed.
pub async fn recheck_requests_on_artifact(state: &AppState, digest: &modelgate_core::Digest) {
    match state.store().open_requests_on_artifact(digest).await {
        Ok(open) => recheck_each(state, &open).await,
        Err(error) => tracing::warn!(%error, "could not list open requests to re-check"),
    }
}

async fn recheck_each(state: &AppState, requests: &[modelgate_core::promotion::PromotionRequest]) {
    for request in requests {
        if let Err(error) = recheck(state, request).await {
            tracing::warn!(request = request.id, error = %error.message, "could not re-check a request");
        }
    }
}

async fn recheck(
    state: &AppState,
    request: &modelgate_core::promotion::PromotionRequest,
) -> Result<(), ApiError> {
    let in_force = policy_in_force(state).await?;
    let model = state.store().get_model(&request.model_name).await?;
    let version = state
        .store()
        .get_version(&request.model_name, request.version)
        .await?;
    let evidence = version_evidence(state, &model, &version, &in_force.policy).await?;
    let (terms, _) = gate_terms(&in_force, &model, &version, &evidence, request.target_stage)?;
    let attribution = modelgate_store::Attribution::system("new evidence", state.now());
    match state
        .store()
        .recheck_request(&attribution, request.id, &terms)
        .await?
    {
        Ok(after) if after.state != request.state => {
            tracing::info!(request = request.id, state = %after.state, "request settled on new evidence");
        }
        Ok(_) => {}
        Err(refusal) => {
            tracing::debug!(
                request = request.id,
                ?refusal,
                "request changed while re-checked"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelgate_policy::CheckOutcome;

    fn record(results_json: &str, mode: &str) -> modelgate_store::EvaluationRecord {
        modelgate_store::EvaluationRecord {
            id: 7,
            model_name: "m".to_owned(),
            version: 1,
            dataset: "holdout-v2".to_owned(),
            mode: mode.to_owned(),
            inputs_json: "{}".to_owned(),
            settings_json: "{}".to_owned(),
            engine: "test".to_owned(),
            results_json: results_json.to_owned(),
            digest: "sha256:00".to_owned(),
            created_by: "dev".to_owned(),
            created_at: Timestamp::from_unix_millis(0),
            status: "counted".to_owned(),
            status_reason: None,
        }
    }

    /// Stored results that no longer parse are an error (a 500 that says nothing), never skipped: a
    /// skipped evaluation would change what the checks see without anyone noticing.
    #[test]
    fn unreadable_evaluations_are_errors() {
        for (results, mode) in [
            ("not json", "model"),
            (r#"{"task": "binary"}"#, "model"),
            (r#"{"task": "ordinal"}"#, "model"),
            (&Evidence::sample_report(), "guesswork"),
        ] {
            let error = evaluation_evidence(&record(results, mode)).unwrap_err();
            assert_eq!(error.code, ErrorCode::Internal, "{results}");
        }
        let fine = evaluation_evidence(&record(&Evidence::sample_report(), "predictions")).unwrap();
        assert_eq!(fine.mode, EvaluationMode::Predictions);
    }

    /// A failed four-fifths check names the dataset, the attribute and the ratio.
    #[test]
    fn a_failed_fairness_check_names_what_failed() {
        let mut evidence = Evidence::sample();
        let report = Evidence::sample_report()
            .replace(
                r#""demographic_parity_ratio":{"value":1.0}"#,
                r#""demographic_parity_ratio":{"value":0.71}"#,
            )
            .replace(
                r#""four_fifths_holds":true"#,
                r#""four_fifths_holds":false"#,
            );
        evidence.evaluations[0].results = StoredResults::parse(&report).unwrap();
        evidence.evaluations[0].dataset = "holdout-v2".to_owned();
        let mut outcomes = vec![CheckOutcome {
            name: "four_fifths_rule".to_owned(),
            expression: "fairness.four_fifths_holds".to_owned(),
            description: String::new(),
            status: CheckStatus::Failed("fairness.four_fifths_holds is false".to_owned()),
        }];
        name_what_failed(&mut outcomes, &evidence);
        let CheckStatus::Failed(detail) = &outcomes[0].status else {
            panic!("{:?}", outcomes[0].status);
        };
        assert!(
            detail.ends_with("the four-fifths rule fails for sample on holdout-v2, ratio 0.71"),
            "{detail}"
        );
    }
}
