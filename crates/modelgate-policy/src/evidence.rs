//! A version's evidence, typed: what reviewers judge and what the checks read. Built once from the version,
//! its model, the current card revision and the typed results of its evaluations; the CEL document
//! ([`Evidence::document`]), the complete sample a policy is validated against ([`Evidence::sample`]) and the
//! evidence digest a sign-off is bound to ([`Evidence::digest`]) all derive from it, so the schema exists
//! once.
//!
//! The document a check sees (absent sections make the checks that read them `missing`):
//! `model` {name, owner, risk_tier, tags}, `version` {number, digest, format, size_bytes, stage, tags,
//! lineage {code_repository, code_commit, training_data_uri, training_data_digest, parameters}},
//! `card` {complete, missing, revision, digest}, `evaluations` {verified_count, claimed_count,
//! model_run_count}, `eval` (by dataset: the latest evaluation's defined metrics, its `mode`, `groups`,
//! `fairness` and, in model mode, `robustness.max_noise_flip_rate`), `claimed` (client-reported metrics,
//! none yet), `fairness` {four_fifths_holds, attributes_evaluated}, `robustness` {evaluated,
//! max_noise_flip_rate}, `artifact` {scan {verdict, findings, engine, outdated}} — always present: an
//! artifact not scanned yet has the verdict `unscanned` and no findings.

use modelgate_core::{EvaluationMode, Model, TagKey, Version};
use modelgate_eval::evaluate::StoredResults;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// The current card revision as the checks see it.
#[derive(Debug, Clone, PartialEq)]
pub struct CardEvidence {
    pub revision: i64,
    pub digest: String,
    /// Required fields (for the model's tier) that the card leaves empty.
    pub missing: Vec<String>,
}

/// One evaluation the server computed, with its typed results.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationEvidence {
    pub id: i64,
    pub dataset: String,
    pub mode: EvaluationMode,
    pub digest: String,
    pub results: StoredResults,
}

/// The artifact scanner's report on the version's artifact, with the digest of its canonical JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanEvidence {
    pub report: modelgate_scan::ScanReport,
    pub digest: String,
}

/// Everything a version offers its gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub model: ModelFacts,
    pub version: VersionFacts,
    pub card: Option<CardEvidence>,
    /// Oldest first.
    pub evaluations: Vec<EvaluationEvidence>,
    /// `None` until the artifact has been scanned.
    pub scan: Option<ScanEvidence>,
    pub policy_digest: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelFacts {
    pub name: String,
    pub owner: String,
    pub risk_tier: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VersionFacts {
    pub number: u32,
    pub digest: String,
    pub format: String,
    pub size_bytes: u64,
    pub stage: String,
    pub tags: BTreeMap<String, String>,
    pub code_repository: String,
    pub code_commit: String,
    pub training_data_uri: String,
    pub training_data_digest: String,
    pub parameters: BTreeMap<String, String>,
}

/// The sample's stored report (`Evidence::sample`).
const SAMPLE_REPORT: &str = r#"{"task":"binary","overall":{"count":2,"accuracy":{"value":1.0},
            "balanced_accuracy":{"value":1.0},"precision":{"value":1.0},"recall":{"value":1.0},
            "specificity":{"value":1.0},"f1":{"value":1.0},"roc_auc":{"value":1.0},
            "average_precision":{"value":1.0},"log_loss":{"value":0.1},"brier_score":{"value":0.1},
            "selection_rate":{"value":0.5},"expected_calibration_error":{"value":0.1},
            "confusion_matrix":{"true_positives":1,"false_positives":0,"true_negatives":1,"false_negatives":0},
            "reliability":[]},"by_group":{},"intervals":{},"warnings":[],
            "fairness":{"sample":{"selection_rate":{},"demographic_parity_difference":{"value":0.0},
            "demographic_parity_ratio":{"value":1.0},"equalized_odds_difference":{"value":0.0},
            "equalized_odds_ratio":{"value":1.0},"equal_opportunity_difference":{"value":0.0},
            "equal_opportunity_ratio":{"value":1.0},"four_fifths_holds":true}},
            "robustness":{"noise":[],"feature_ablation":[],"max_noise_flip_rate":0.0}}"#;

fn tag_map(tags: &BTreeMap<TagKey, String>) -> BTreeMap<String, String> {
    tags.iter()
        .map(|(key, value)| (key.to_string(), value.clone()))
        .collect()
}

fn numbers(values: &[(&str, f64)]) -> Map<String, Value> {
    values
        .iter()
        .map(|(name, number)| ((*name).to_owned(), json!(number)))
        .collect()
}

impl Evidence {
    pub fn new(
        model: &Model,
        version: &Version,
        card: Option<CardEvidence>,
        evaluations: Vec<EvaluationEvidence>,
        scan: Option<ScanEvidence>,
        policy_digest: &str,
    ) -> Self {
        let lineage = &version.lineage;
        Self {
            model: ModelFacts {
                name: model.name.to_string(),
                owner: model.owner.to_string(),
                risk_tier: model.risk_tier.to_string(),
                tags: tag_map(&model.tags),
            },
            version: VersionFacts {
                number: version.number.get(),
                digest: version.digest.to_string(),
                format: version.format.clone(),
                size_bytes: version.size_bytes,
                stage: version.stage.to_string(),
                tags: tag_map(&version.tags),
                code_repository: lineage.code_repository.clone().unwrap_or_default(),
                code_commit: lineage.code_commit.clone().unwrap_or_default(),
                training_data_uri: lineage.training_data_uri.clone().unwrap_or_default(),
                training_data_digest: lineage
                    .training_data_digest
                    .map(|digest| digest.to_string())
                    .unwrap_or_default(),
                parameters: lineage.parameters.clone(),
            },
            card,
            evaluations,
            scan,
            policy_digest: policy_digest.to_owned(),
        }
    }

    /// A complete binary report with robustness, as an evaluation stores it: the sample's results.
    pub fn sample_report() -> String {
        SAMPLE_REPORT.to_owned()
    }

    /// Evidence with every section present, for validating a policy's checks: a misspelt field is one the
    /// sample does not have.
    pub fn sample() -> Self {
        let report = SAMPLE_REPORT;
        // Parsed rather than built field by field; `the_sample_has_every_section` holds it complete.
        let results = StoredResults::parse(report).ok();
        Self {
            model: ModelFacts {
                name: "sample".to_owned(),
                owner: "owner".to_owned(),
                risk_tier: "high".to_owned(),
                tags: BTreeMap::new(),
            },
            version: VersionFacts {
                number: 1,
                digest: "sha256:00".to_owned(),
                format: "onnx".to_owned(),
                size_bytes: 1,
                stage: "staging".to_owned(),
                tags: BTreeMap::new(),
                code_repository: String::new(),
                code_commit: String::new(),
                training_data_uri: String::new(),
                training_data_digest: String::new(),
                parameters: BTreeMap::new(),
            },
            card: Some(CardEvidence {
                revision: 1,
                digest: "sha256:00".to_owned(),
                missing: Vec::new(),
            }),
            evaluations: results
                .into_iter()
                .map(|results| EvaluationEvidence {
                    id: 1,
                    dataset: "sample".to_owned(),
                    mode: EvaluationMode::Model,
                    digest: "sha256:00".to_owned(),
                    results,
                })
                .collect(),
            scan: Some(ScanEvidence {
                report: modelgate_scan::ScanReport {
                    verdict: modelgate_scan::Verdict::Clean,
                    findings: Vec::new(),
                    formats: vec![modelgate_scan::Format::Onnx],
                    engine: modelgate_scan::ENGINE_VERSION.to_owned(),
                    bytes_scanned: 1,
                    bytes_read: 1,
                },
                digest: "sha256:00".to_owned(),
            }),
            policy_digest: "sha256:00".to_owned(),
        }
    }

    /// How many evaluations ran the version's own artifact on the server.
    pub fn model_run_count(&self) -> usize {
        self.evaluations
            .iter()
            .filter(|evaluation| evaluation.mode == EvaluationMode::Model)
            .count()
    }

    /// The latest evaluation on each dataset.
    pub fn latest_by_dataset(&self) -> BTreeMap<&str, &EvaluationEvidence> {
        let mut latest = BTreeMap::new();
        for evaluation in &self.evaluations {
            latest.insert(evaluation.dataset.as_str(), evaluation);
        }
        latest
    }

    /// Every (dataset, attribute, four-fifths ratio) where the four-fifths rule does not hold, for
    /// explanations that name what failed.
    pub fn four_fifths_failures(&self) -> Vec<(String, String, Option<f64>)> {
        let mut failures = Vec::new();
        for evaluation in &self.evaluations {
            for (attribute, fairness) in evaluation.results.fairness().into_iter().flatten() {
                if fairness.four_fifths_holds != Some(true) {
                    failures.push((
                        evaluation.dataset.clone(),
                        attribute.clone(),
                        fairness.demographic_parity_ratio.value,
                    ));
                }
            }
        }
        failures
    }

    /// The JSON document the CEL checks read.
    pub fn document(&self) -> Value {
        let version = &self.version;
        let mut document = json!({
            "model": {
                "name": self.model.name,
                "owner": self.model.owner,
                "risk_tier": self.model.risk_tier,
                "tags": self.model.tags,
            },
            "version": {
                "number": version.number,
                "digest": version.digest,
                "format": version.format,
                "size_bytes": version.size_bytes,
                "stage": version.stage,
                "tags": version.tags,
                "lineage": {
                    "code_repository": version.code_repository,
                    "code_commit": version.code_commit,
                    "training_data_uri": version.training_data_uri,
                    "training_data_digest": version.training_data_digest,
                    "parameters": version.parameters,
                },
            },
        });
        let Some(sections) = document.as_object_mut() else {
            return document;
        };
        sections.insert(
            "artifact".to_owned(),
            json!({ "scan": self.scan_document() }),
        );
        if let Some(card) = &self.card {
            sections.insert(
                "card".to_owned(),
                json!({
                    "complete": card.missing.is_empty(),
                    "missing": card.missing,
                    "revision": card.revision,
                    "digest": card.digest,
                }),
            );
        }
        if self.evaluations.is_empty() {
            return document;
        }
        let mut by_dataset = Map::new();
        for (dataset, evaluation) in self.latest_by_dataset() {
            let results = &evaluation.results;
            let mut metrics = numbers(&results.overall());
            metrics.insert("mode".to_owned(), json!(evaluation.mode.as_str()));
            let groups: Map<String, Value> = results
                .groups()
                .into_iter()
                .map(|(attribute, groups)| {
                    let groups: Map<String, Value> = groups
                        .into_iter()
                        .map(|(group, values)| (group.to_owned(), Value::Object(numbers(&values))))
                        .collect();
                    (attribute.to_owned(), Value::Object(groups))
                })
                .collect();
            metrics.insert("groups".to_owned(), Value::Object(groups));
            let fairness: Map<String, Value> = results
                .fairness()
                .into_iter()
                .flatten()
                .map(|(attribute, fairness)| {
                    let mut values = numbers(&fairness.defined());
                    if let Some(holds) = fairness.four_fifths_holds {
                        values.insert("four_fifths_holds".to_owned(), json!(holds));
                    }
                    (attribute.clone(), Value::Object(values))
                })
                .collect();
            metrics.insert("fairness".to_owned(), Value::Object(fairness));
            if let Some(flip_rate) = results
                .robustness
                .as_ref()
                .and_then(|robustness| robustness.max_noise_flip_rate())
            {
                metrics.insert(
                    "robustness".to_owned(),
                    json!({ "max_noise_flip_rate": flip_rate }),
                );
            }
            by_dataset.insert(dataset.to_owned(), Value::Object(metrics));
        }
        sections.insert(
            "evaluations".to_owned(),
            json!({
                "verified_count": self.evaluations.len(),
                "claimed_count": 0,
                "model_run_count": self.model_run_count(),
            }),
        );
        sections.insert("eval".to_owned(), Value::Object(by_dataset));
        sections.insert("claimed".to_owned(), json!({}));
        // Over every evaluation, not only the latest per dataset: a later run does not erase a failure.
        let attributes: Vec<&modelgate_eval::FairnessMetrics> = self
            .evaluations
            .iter()
            .flat_map(|evaluation| evaluation.results.fairness().into_iter().flatten())
            .map(|(_, fairness)| fairness)
            .collect();
        if !attributes.is_empty() {
            sections.insert(
                "fairness".to_owned(),
                json!({
                    "four_fifths_holds": attributes.iter().all(|fairness| fairness.four_fifths_holds == Some(true)),
                    "attributes_evaluated": attributes.len(),
                }),
            );
        }
        let worst_flip_rate = self
            .evaluations
            .iter()
            .filter_map(|evaluation| evaluation.results.robustness.as_ref())
            .filter_map(|robustness| robustness.max_noise_flip_rate())
            .reduce(f64::max);
        if let Some(flip_rate) = worst_flip_rate {
            sections.insert(
                "robustness".to_owned(),
                json!({ "evaluated": true, "max_noise_flip_rate": flip_rate }),
            );
        }
        document
    }

    /// `artifact.scan`: the scanner's verdict and findings, `unscanned` when there is no report yet.
    fn scan_document(&self) -> Value {
        match &self.scan {
            Some(scan) => json!({
                "verdict": scan.report.verdict.as_str(),
                "findings": scan.report.findings.iter().map(|finding| json!({
                    "kind": finding.kind,
                    "severity": finding.severity.as_str(),
                    "module": finding.module,
                    "name": finding.name,
                    "path": finding.path,
                    "offset": finding.offset,
                    "detail": finding.detail,
                })).collect::<Vec<_>>(),
                "engine": scan.report.engine,
                "outdated": scan.report.is_outdated(),
            }),
            None => json!({
                "verdict": modelgate_scan::Verdict::Unscanned.as_str(),
                "findings": [],
                "engine": "",
                "outdated": true,
            }),
        }
    }

    /// The digest of what reviewers judge: the artifact and its scan report, the model card revision, the
    /// evaluation results and the policy revision (RFC 8785 canonical JSON, SHA-256). A sign-off counts
    /// only for the digest it saw. The scan report's digest is included once there is one (so evidence
    /// from before scanning existed keeps its digest until its artifact is scanned).
    pub fn digest(&self) -> String {
        let mut document = json!({
            "artifact_digest": self.version.digest,
            "model_card_revision": self.card.as_ref().map(|card| card.digest.clone()),
            "evaluations": self.evaluations.iter().map(|evaluation| evaluation.digest.clone()).collect::<Vec<_>>(),
            "policy_digest": self.policy_digest,
        });
        if let (Some(scan), Some(sections)) = (&self.scan, document.as_object_mut()) {
            sections.insert("artifact_scan".to_owned(), json!(scan.digest));
        }
        // Canonicalising a document of strings cannot fail; an empty input would still be hashed.
        let bytes = serde_json_canonicalizer::to_vec(&document).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }
}

/// One outcome per evaluation the gate names (`evaluations = [...]`): passed once the version has a
/// counted model-mode evaluation on that dataset, missing until then. A gate that names evaluations waits
/// for all of them, whatever its CEL checks read.
pub fn named_evaluation_outcomes(
    gate: &crate::Gate,
    evidence: &Evidence,
) -> Vec<crate::CheckOutcome> {
    let latest = evidence.latest_by_dataset();
    gate.evaluations
        .iter()
        .map(|named| {
            let done = latest
                .get(named.dataset.as_str())
                .is_some_and(|evaluation| evaluation.mode == EvaluationMode::Model);
            crate::CheckOutcome {
                name: format!("evaluation:{}", named.dataset),
                expression: format!("evaluations = [{{ dataset = {:?} }}]", named.dataset),
                description: format!(
                    "the server ran the version on dataset {:?} (the gate's evaluations run by \
                     themselves when a request opens)",
                    named.dataset
                ),
                status: if done {
                    crate::CheckStatus::Passed
                } else {
                    crate::CheckStatus::Missing(format!(
                        "no model-mode evaluation on {:?} yet: it runs when a request for this gate \
                         opens (see the request's evaluations)",
                        named.dataset
                    ))
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_has_every_section() {
        let document = Evidence::sample().document();
        for path in [
            "/model/risk_tier",
            "/version/lineage/code_commit",
            "/card/complete",
            "/card/missing",
            "/evaluations/verified_count",
            "/evaluations/model_run_count",
            "/eval/sample/roc_auc",
            "/eval/sample/mode",
            "/eval/sample/robustness/max_noise_flip_rate",
            "/robustness/evaluated",
            "/fairness/four_fifths_holds",
            "/eval/sample/fairness/sample/four_fifths_holds",
            "/robustness/max_noise_flip_rate",
            "/claimed",
            "/artifact/scan/verdict",
            "/artifact/scan/findings",
        ] {
            assert!(document.pointer(path).is_some(), "the sample lacks {path}");
        }
    }

    /// The default policy keeps what the scanner did not find clean out of high-risk production, and an
    /// artifact not scanned yet counts as not clean.
    #[test]
    fn the_scan_verdict_is_evidence_and_unscanned_is_not_clean() {
        use modelgate_core::{RiskTier, Stage};
        let policy = crate::default_policy().unwrap();
        let gate = policy.gate(RiskTier::High, Stage::Production).unwrap();
        let status_of = |evidence: &Evidence| {
            crate::evaluate_checks(&gate.checks, &evidence.document())
                .into_iter()
                .find(|outcome| outcome.name == "artifact_scan_clean")
                .map(|outcome| outcome.status)
        };
        let mut evidence = Evidence::sample();
        assert_eq!(status_of(&evidence), Some(crate::CheckStatus::Passed));
        let before = evidence.digest();
        if let Some(scan) = evidence.scan.as_mut() {
            scan.report.verdict = modelgate_scan::Verdict::Dangerous;
            scan.digest = "sha256:01".to_owned();
        }
        assert!(matches!(
            status_of(&evidence),
            Some(crate::CheckStatus::Failed(_))
        ));
        assert_ne!(
            evidence.digest(),
            before,
            "the report is bound into the digest"
        );
        evidence.scan = None;
        assert_eq!(
            evidence.document()["artifact"]["scan"]["verdict"],
            "unscanned"
        );
        assert!(matches!(
            status_of(&evidence),
            Some(crate::CheckStatus::Failed(_))
        ));
    }

    /// A predictions file equal to the labels gives perfect numbers; the evidence says they came from
    /// client scores, and the default policy's high-risk production gate wants the server to have run an
    /// ONNX artifact itself.
    #[test]
    fn how_numbers_were_obtained_is_evidence() {
        use modelgate_core::{RiskTier, Stage};
        let policy = crate::default_policy().unwrap();
        let gate = policy.gate(RiskTier::High, Stage::Production).unwrap();
        let status_of = |evidence: &Evidence| {
            crate::evaluate_checks(&gate.checks, &evidence.document())
                .into_iter()
                .find(|outcome| outcome.name == "model_run")
                .map(|outcome| outcome.status)
        };
        let mut evidence = Evidence::sample();
        evidence.evaluations[0].mode = EvaluationMode::Predictions;
        let document = evidence.document();
        assert_eq!(document["evaluations"]["model_run_count"], 0);
        assert_eq!(document["eval"]["sample"]["mode"], "predictions");
        assert!(matches!(
            status_of(&evidence),
            Some(crate::CheckStatus::Failed(_))
        ));
        evidence.evaluations[0].mode = EvaluationMode::Model;
        assert_eq!(status_of(&evidence), Some(crate::CheckStatus::Passed));
        // Not ONNX: nothing for the server to run.
        evidence.evaluations[0].mode = EvaluationMode::Predictions;
        evidence.version.format = "pickle".to_owned();
        assert_eq!(status_of(&evidence), Some(crate::CheckStatus::Passed));
    }

    #[test]
    fn the_digest_covers_the_card_the_evaluations_and_the_policy() {
        let sample = Evidence::sample();
        let base = sample.digest();
        let mut other = sample.clone();
        other.policy_digest = "sha256:11".to_owned();
        assert_ne!(other.digest(), base);
        let mut other = sample.clone();
        other.card = None;
        assert_ne!(other.digest(), base);
        let mut other = sample.clone();
        other.evaluations[0].digest = "sha256:22".to_owned();
        assert_ne!(other.digest(), base);
        assert_eq!(sample.clone().digest(), base);
    }
}
