//! The server's side of governed promotion: the policy in force (cached by digest), a version's evidence
//! and its digest, the terms a gate sets for a request, and the signed record of a sign-off.

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use modelgate_core::promotion::{GateTerms, RoleQuota};
use modelgate_core::{Model, Stage, Timestamp, Version};
use modelgate_policy::{CheckOutcome, CheckStatus, Policy, evaluate_checks};
use serde_json::json;
use sha2::{Digest as _, Sha256};
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

/// The inputs of a version's evidence that live outside the version record.
#[derive(Debug, Clone, Default)]
pub struct EvidenceInputs {
    /// The current card revision and the card parsed from it.
    pub card: Option<(modelgate_store::CardRevision, modelgate_card::ModelCard)>,
    /// The version's evaluations (all computed by the server, so verified).
    pub evaluations: Vec<modelgate_store::EvaluationRecord>,
}

/// Reads what a version's evidence needs beyond the version itself.
pub async fn evidence_inputs(
    state: &AppState,
    version: &Version,
) -> Result<EvidenceInputs, ApiError> {
    let card = match state
        .store()
        .latest_card(&version.model_name, version.number)
        .await?
    {
        Some(revision) => {
            let card = modelgate_card::parse(&revision.content).map_err(|problems| {
                ApiError::new(
                    ErrorCode::Internal,
                    format!(
                        "stored card revision {} no longer parses: {}",
                        revision.revision, problems[0].message
                    ),
                )
            })?;
            Some((revision, card))
        }
        None => None,
    };
    let evaluations = state
        .store()
        .evaluations_for_version(&version.model_name, version.number)
        .await?;
    Ok(EvidenceInputs { card, evaluations })
}

/// What a version offers the checks. Sections that do not exist yet (no card revision, no evaluations)
/// are absent, so the checks that read them come out `missing`.
pub fn evidence(
    model: &Model,
    version: &Version,
    inputs: &EvidenceInputs,
    policy: &Policy,
) -> serde_json::Value {
    let tags = |tags: &std::collections::BTreeMap<modelgate_core::TagKey, String>| {
        tags.iter()
            .map(|(key, value)| (key.to_string(), json!(value)))
            .collect::<serde_json::Map<_, _>>()
    };
    let lineage = &version.lineage;
    let mut document = json!({
        "model": {
            "name": model.name.as_str(),
            "owner": model.owner.as_str(),
            "risk_tier": model.risk_tier.as_str(),
            "tags": tags(&model.tags),
        },
        "version": {
            "number": version.number.get(),
            "digest": version.digest.to_string(),
            "format": version.format,
            "size_bytes": version.size_bytes,
            "stage": version.stage.as_str(),
            "tags": tags(&version.tags),
            "lineage": {
                "code_repository": lineage.code_repository.clone().unwrap_or_default(),
                "code_commit": lineage.code_commit.clone().unwrap_or_default(),
                "training_data_uri": lineage.training_data_uri.clone().unwrap_or_default(),
                "training_data_digest": lineage.training_data_digest.map(|d| d.to_string()).unwrap_or_default(),
                "parameters": lineage.parameters,
            },
        },
    });
    if !inputs.evaluations.is_empty()
        && let Some(sections) = document.as_object_mut()
    {
        // `eval.<dataset>.<metric>`: the latest evaluation on each dataset, overall defined values.
        let mut by_dataset = serde_json::Map::new();
        let mut attributes = 0;
        let mut four_fifths = true;
        let mut worst_flip_rate: Option<f64> = None;
        for evaluation in &inputs.evaluations {
            let Ok(results) = serde_json::from_str::<serde_json::Value>(&evaluation.results_json)
            else {
                continue;
            };
            let defined =
                |section: &serde_json::Value| -> serde_json::Map<String, serde_json::Value> {
                    section
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter_map(|(metric, value)| {
                            let number = value
                                .get("value")
                                .and_then(serde_json::Value::as_f64)
                                .or_else(|| value.as_f64())?;
                            Some((metric.clone(), json!(number)))
                        })
                        .collect()
                };
            // eval.<dataset>.<metric>, eval.<dataset>.groups.<attribute>.<group>.<metric>,
            // eval.<dataset>.fairness.<attribute>.<metric>
            let mut metrics = defined(&results["overall"]);
            let mut groups = serde_json::Map::new();
            for (attribute, segments) in results["by_group"].as_object().into_iter().flatten() {
                let by_group: serde_json::Map<String, serde_json::Value> = segments
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|segment| {
                        let name = segment["group"].as_str()?.to_owned();
                        Some((
                            name,
                            serde_json::Value::Object(defined(&segment["metrics"])),
                        ))
                    })
                    .collect();
                groups.insert(attribute.clone(), serde_json::Value::Object(by_group));
            }
            let mut fairness_by_attribute = serde_json::Map::new();
            for (attribute, fairness) in results["fairness"].as_object().into_iter().flatten() {
                let mut values = defined(fairness);
                if let Some(holds) = fairness["four_fifths_holds"].as_bool() {
                    values.insert("four_fifths_holds".to_owned(), json!(holds));
                }
                fairness_by_attribute.insert(attribute.clone(), serde_json::Value::Object(values));
            }
            // eval.<dataset>.robustness.max_noise_flip_rate, model mode only.
            if let Some(flip_rate) = results["robustness"]["max_noise_flip_rate"].as_f64() {
                metrics.insert(
                    "robustness".to_owned(),
                    json!({ "max_noise_flip_rate": flip_rate }),
                );
                worst_flip_rate = Some(worst_flip_rate.unwrap_or(0.0_f64).max(flip_rate));
            }
            metrics.insert("groups".to_owned(), serde_json::Value::Object(groups));
            metrics.insert(
                "fairness".to_owned(),
                serde_json::Value::Object(fairness_by_attribute),
            );
            by_dataset.insert(
                evaluation.dataset.clone(),
                serde_json::Value::Object(metrics),
            );
            for fairness in results["fairness"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, metrics)| metrics)
            {
                attributes += 1;
                four_fifths &= fairness["four_fifths_holds"].as_bool().unwrap_or(false);
            }
        }
        sections.insert(
            "evaluations".to_owned(),
            json!({ "verified_count": inputs.evaluations.len(), "claimed_count": 0 }),
        );
        sections.insert("eval".to_owned(), serde_json::Value::Object(by_dataset));
        // `robustness.*`: present once the server has run the model under perturbation (model mode).
        if let Some(flip_rate) = worst_flip_rate {
            sections.insert(
                "robustness".to_owned(),
                json!({ "evaluated": true, "max_noise_flip_rate": flip_rate }),
            );
        }
        if attributes > 0 {
            sections.insert(
                "fairness".to_owned(),
                json!({ "four_fifths_holds": four_fifths, "attributes_evaluated": attributes }),
            );
        }
    }
    if let Some((revision, card)) = &inputs.card
        && let Some(sections) = document.as_object_mut()
    {
        let required = policy
            .card_requirements
            .get(&model.risk_tier)
            .cloned()
            .unwrap_or_default();
        let missing = modelgate_card::missing(card, &required);
        sections.insert(
            "card".to_owned(),
            json!({
                "complete": missing.is_empty(),
                "missing": missing,
                "revision": revision.revision,
                "digest": revision.digest,
            }),
        );
    }
    document
}

/// The digest of what reviewers judge: the artifact, the model card revision, the evaluation results and
/// the policy revision (canonical JSON, SHA-256). A sign-off counts only for the digest it saw.
pub fn evidence_digest(version: &Version, inputs: &EvidenceInputs, policy: &Policy) -> String {
    let document = json!({
        "artifact_digest": version.digest.to_string(),
        "model_card_revision": inputs.card.as_ref().map(|(revision, _)| revision.digest.clone()),
        "evaluations": inputs.evaluations.iter().map(|evaluation| evaluation.digest.clone()).collect::<Vec<_>>(),
        "policy_digest": policy.digest,
    });
    let bytes = serde_json_canonicalizer::to_vec(&document).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The gate into `target` for this version: its check results and the terms the store enforces.
pub fn gate_terms(
    policy: &Policy,
    model: &Model,
    version: &Version,
    inputs: &EvidenceInputs,
    target: Stage,
) -> Result<(GateTerms, Vec<CheckOutcome>), ApiError> {
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
    let outcomes = evaluate_checks(&gate.checks, &evidence(model, version, inputs, policy));
    let checks_pass = outcomes
        .iter()
        .all(|outcome| outcome.status == CheckStatus::Passed);
    let terms = GateTerms {
        signoffs: gate.signoffs.clone(),
        owner_may_approve: policy.owner_may_approve,
        checks_pass,
        valid_for_days: gate.valid_for_days,
        single_occupancy: policy.single_occupancy.contains(&target),
        policy_digest: policy.digest.clone(),
        evidence_digest: evidence_digest(version, inputs, policy),
    };
    Ok((terms, outcomes))
}

pub fn quota_wire(quota: &RoleQuota) -> modelgate_api::SignoffQuota {
    modelgate_api::SignoffQuota {
        role: quota.role.to_string(),
        count: quota.count,
    }
}

pub fn check_wire(outcome: &CheckOutcome) -> modelgate_api::CheckResult {
    let (status, detail) = match &outcome.status {
        CheckStatus::Passed => ("passed", None),
        CheckStatus::Failed(why) => ("failed", Some(why.clone())),
        CheckStatus::Missing(why) => ("missing", Some(why.clone())),
        CheckStatus::Error(why) => ("error", Some(why.clone())),
    };
    modelgate_api::CheckResult {
        name: outcome.name.clone(),
        expression: outcome.expression.clone(),
        description: outcome.description.clone(),
        status: status.to_owned(),
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
