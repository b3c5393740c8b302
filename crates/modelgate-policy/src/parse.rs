//! Reading a policy file: TOML into raw documents (keeping the position of every value that a semantic
//! rule may reject), then into a validated [`Policy`].

use crate::checks::{compile_check, validate_check_on_sample};
use modelgate_core::promotion::RoleQuota;
use modelgate_core::{RiskTier, Role, Stage};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use toml::Spanned;

/// One problem in a policy file, where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct PolicyError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Spanned<u32>,
    stages: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    single_occupancy: Vec<Spanned<String>>,
    #[serde(default)]
    frozen_evidence_stages: Vec<Spanned<String>>,
    #[serde(default)]
    approvals_not_regranted: Option<Spanned<String>>,
    roles: Vec<Spanned<String>>,
    #[serde(default)]
    risk_officer_roles: Vec<Spanned<String>>,
    /// Absent: [`DEFAULT_DATASET_REGISTRAR_ROLES`] that the policy declares.
    #[serde(default)]
    dataset_registrar_roles: Option<Vec<Spanned<String>>>,
    #[serde(default = "default_review_due_days")]
    review_due_days: u32,
    #[serde(default = "default_review_within_days")]
    review_within_days: u32,
    #[serde(default)]
    card_requirements: RawCardRequirements,
    #[serde(default)]
    separation_of_duties: RawSeparation,
    #[serde(default)]
    gates: Vec<Spanned<RawGate>>,
    #[serde(default)]
    monitoring: crate::monitoring::RawMonitoringTiers,
}

fn default_review_due_days() -> u32 {
    30
}

fn default_review_within_days() -> u32 {
    5
}

/// Who registers evaluation datasets when a policy does not say: those of these roles it declares.
pub const DEFAULT_DATASET_REGISTRAR_ROLES: [&str; 2] = ["model_developer", "validator"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCardRequirements {
    #[serde(default)]
    low: Vec<Spanned<String>>,
    #[serde(default)]
    medium: Vec<Spanned<String>>,
    #[serde(default)]
    high: Vec<Spanned<String>>,
    #[serde(default)]
    critical: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeparation {
    #[serde(default)]
    owner_may_approve: bool,
    #[serde(default)]
    admins_may_approve: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    tier: Spanned<String>,
    stage: Spanned<String>,
    #[serde(default)]
    signoffs: Vec<Spanned<RawSignoff>>,
    #[serde(default)]
    checks: Vec<Spanned<RawCheck>>,
    valid_for: Spanned<String>,
    #[serde(default)]
    rollback_without_signoffs: bool,
    #[serde(default)]
    evaluations: Vec<Spanned<RawGateEvaluation>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateEvaluation {
    dataset: Spanned<String>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
    #[serde(default)]
    bootstrap: Option<Spanned<i64>>,
    #[serde(default)]
    intersect: Vec<Spanned<String>>,
}

/// The most resamples a gate's evaluation may ask for (as `POST /api/v1/evaluations` allows).
const MAX_GATE_BOOTSTRAP: i64 = 10_000;

/// An evaluation a gate's checks need, which the server runs by itself when a request for the gate
/// opens: the version's own artifact (model mode) on a registered dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateEvaluation {
    pub dataset: String,
    /// Bootstrap resamples (the server's default when absent).
    pub bootstrap: Option<usize>,
    /// Pairs of sensitive attributes whose intersections to report, as `"sex,age_band"`.
    pub intersections: Vec<[String; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignoff {
    role: Spanned<String>,
    count: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: Spanned<String>,
    expr: Spanned<String>,
    #[serde(default)]
    description: String,
}

/// One automated check: a CEL expression over the evidence.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub expression: String,
    pub description: String,
    pub(crate) program: std::sync::Arc<cel::Program>,
}

/// What promoting a version of one risk tier into one stage takes.
#[derive(Debug, Clone)]
pub struct Gate {
    pub tier: RiskTier,
    pub stage: Stage,
    pub checks: Vec<Check>,
    pub signoffs: Vec<RoleQuota>,
    pub valid_for_days: u32,
    pub rollback_without_signoffs: bool,
    /// Evaluations the server runs when a request for this gate opens.
    pub evaluations: Vec<GateEvaluation>,
}

impl Gate {
    /// A gate the server passes on checks alone.
    pub fn needs_no_signoffs(&self) -> bool {
        self.signoffs.is_empty()
    }
}

/// What applying a policy does to an approval in force that it would not grant (its checks fail on the
/// version's evidence, or the approval has fewer sign-offs than it asks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRegranted {
    /// Nothing: the approval stands until it expires.
    Keep,
    /// The approval shows `review_due` (the gate still says yes) until the version is approved again.
    ReviewDue,
    /// The version is suspended: the gate says no until a risk officer reinstates it.
    Suspend,
}

impl NotRegranted {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::ReviewDue => "review_due",
            Self::Suspend => "suspend",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Keep, Self::ReviewDue, Self::Suspend]
            .into_iter()
            .find(|action| action.as_str() == text)
    }
}

/// A validated policy and the digest of the text it came from.
#[derive(Debug, Clone)]
pub struct Policy {
    pub digest: String,
    pub text: String,
    pub stages: Vec<Stage>,
    pub single_occupancy: BTreeSet<Stage>,
    /// The evidence (card, evaluations) of a version that holds an approval for one of these stages is
    /// frozen: writes are refused. In other stages a write after approval flags the approval `review_due`.
    pub frozen_evidence_stages: BTreeSet<Stage>,
    /// What applying this policy does to approvals in force that it would not grant.
    pub approvals_not_regranted: NotRegranted,
    pub roles: BTreeSet<Role>,
    pub risk_officer_roles: BTreeSet<Role>,
    /// Holders of these roles (and admins) may register evaluation datasets.
    pub dataset_registrar_roles: BTreeSet<Role>,
    pub review_due_days: u32,
    /// A request should be decided within this many days of being opened: its due date in inboxes.
    pub review_within_days: u32,
    pub owner_may_approve: bool,
    /// Whether an account holding `admin` may count as an approver.
    pub admins_may_approve: bool,
    /// Model-card fields each tier requires (dotted paths).
    pub card_requirements: BTreeMap<RiskTier, Vec<String>>,
    /// How production versions of each tier are watched (tiers without a section are not).
    pub monitoring: BTreeMap<RiskTier, crate::monitoring::Monitoring>,
    gates: BTreeMap<(RiskTier, Stage), Gate>,
}

/// Converts a byte offset into 1-based line and column.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |tail| tail.chars().count())
        + 1;
    (line, column)
}

struct Errors<'t> {
    text: &'t str,
    found: Vec<PolicyError>,
}

impl Errors<'_> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = position(self.text, span.start);
        self.found.push(PolicyError {
            line,
            column,
            message: message.into(),
        });
    }
}

/// `"365d"` → 365.
fn parse_days(text: &str) -> Option<u32> {
    text.strip_suffix('d')?
        .parse()
        .ok()
        .filter(|days| *days >= 1)
}

impl Policy {
    /// Parses and validates a policy; returns every problem found, each with line and column.
    pub fn parse(text: &str) -> Result<Self, Vec<PolicyError>> {
        let raw: RawPolicy = toml::from_str(text).map_err(|error| {
            let (line, column) = error
                .span()
                .map_or((1, 1), |span| position(text, span.start));
            vec![PolicyError {
                line,
                column,
                message: error.message().trim().to_owned(),
            }]
        })?;
        let mut errors = Errors {
            text,
            found: Vec::new(),
        };
        if *raw.version.get_ref() != 1 {
            errors.at(
                raw.version.span(),
                "unsupported policy version: this server reads version 1",
            );
        }

        let mut stages = Vec::new();
        for stage in raw.stages.get_ref() {
            match Stage::parse(stage.get_ref()) {
                Ok(Stage::Archived) => errors.at(
                    stage.span(),
                    "`archived` is implicit; do not list it in stages",
                ),
                Ok(parsed) if stages.contains(&parsed) => errors.at(
                    stage.span(),
                    format!("stage {:?} is listed twice", stage.get_ref()),
                ),
                Ok(parsed) => stages.push(parsed),
                Err(invalid) => errors.at(stage.span(), format!("unknown stage: {}", invalid.rule)),
            }
        }
        if stages.first() != Some(&Stage::Development) {
            errors.at(
                raw.stages.span(),
                "stages must start with `development`, where every version begins",
            );
        }
        let known_stage = |errors: &mut Errors, spanned: &Spanned<String>| -> Option<Stage> {
            match Stage::parse(spanned.get_ref()) {
                Ok(stage) if stages.contains(&stage) => Some(stage),
                _ => {
                    errors.at(
                        spanned.span(),
                        format!(
                            "unknown stage {:?}: the stages are {}",
                            spanned.get_ref(),
                            stage_list(&stages)
                        ),
                    );
                    None
                }
            }
        };
        let single_occupancy: BTreeSet<Stage> = raw
            .single_occupancy
            .iter()
            .filter_map(|stage| known_stage(&mut errors, stage))
            .collect();
        let frozen_evidence_stages: BTreeSet<Stage> = raw
            .frozen_evidence_stages
            .iter()
            .filter_map(|stage| known_stage(&mut errors, stage))
            .collect();

        let approvals_not_regranted = match &raw.approvals_not_regranted {
            None => NotRegranted::ReviewDue,
            Some(spanned) => match NotRegranted::parse(spanned.get_ref()) {
                Some(action) => action,
                None => {
                    errors.at(
                        spanned.span(),
                        format!(
                            "approvals_not_regranted must be \"keep\", \"review_due\" or \"suspend\" (got {:?})",
                            spanned.get_ref()
                        ),
                    );
                    NotRegranted::ReviewDue
                }
            },
        };

        let mut roles = BTreeSet::new();
        for role in &raw.roles {
            match Role::parse(role.get_ref()) {
                Ok(parsed) if parsed.is_admin() => {
                    errors.at(role.span(), "`admin` is built in; do not list it")
                }
                Ok(parsed) => {
                    roles.insert(parsed);
                }
                Err(invalid) => errors.at(role.span(), invalid.to_string()),
            }
        }
        let known_role = |errors: &mut Errors, spanned: &Spanned<String>| -> Option<Role> {
            match Role::parse(spanned.get_ref()) {
                Ok(role) if roles.contains(&role) => Some(role),
                _ => {
                    errors.at(
                        spanned.span(),
                        format!(
                            "unknown role {:?}: declare it in `roles` first",
                            spanned.get_ref()
                        ),
                    );
                    None
                }
            }
        };
        let risk_officer_roles: BTreeSet<Role> = raw
            .risk_officer_roles
            .iter()
            .filter_map(|role| known_role(&mut errors, role))
            .collect();
        let dataset_registrar_roles: BTreeSet<Role> = match &raw.dataset_registrar_roles {
            Some(listed) => listed
                .iter()
                .filter_map(|role| known_role(&mut errors, role))
                .collect(),
            None => roles
                .iter()
                .filter(|role| DEFAULT_DATASET_REGISTRAR_ROLES.contains(&role.as_str()))
                .cloned()
                .collect(),
        };

        let mut gates = BTreeMap::new();
        for gate in &raw.gates {
            let raw_gate = gate.get_ref();
            let tier = match RiskTier::parse(raw_gate.tier.get_ref()) {
                Ok(tier) => Some(tier),
                Err(invalid) => {
                    errors.at(
                        raw_gate.tier.span(),
                        format!("unknown tier: {}", invalid.rule),
                    );
                    None
                }
            };
            let stage = known_stage(&mut errors, &raw_gate.stage);
            if stage == Some(Stage::Development) {
                errors.at(
                    raw_gate.stage.span(),
                    "versions begin in `development`; no gate leads into it",
                );
            }
            let mut signoffs: Vec<RoleQuota> = Vec::new();
            for signoff in &raw_gate.signoffs {
                let raw_signoff = signoff.get_ref();
                let role = known_role(&mut errors, &raw_signoff.role);
                let count = *raw_signoff.count.get_ref();
                if count < 1 {
                    errors.at(
                        raw_signoff.count.span(),
                        format!("count must be at least 1 (got {count})"),
                    );
                }
                if let Some(role) = role {
                    if signoffs.iter().any(|existing| existing.role == role) {
                        errors.at(
                            raw_signoff.role.span(),
                            format!("role {role} appears twice in this gate"),
                        );
                    } else if count >= 1 {
                        signoffs.push(RoleQuota {
                            role,
                            count: u32::try_from(count).unwrap_or(u32::MAX),
                        });
                    }
                }
            }
            let valid_for_days = parse_days(raw_gate.valid_for.get_ref());
            if valid_for_days.is_none() {
                errors.at(
                    raw_gate.valid_for.span(),
                    format!(
                        "valid_for must be a number of days like \"180d\" (got {:?})",
                        raw_gate.valid_for.get_ref()
                    ),
                );
            }
            let mut checks: Vec<Check> = Vec::new();
            for check in &raw_gate.checks {
                let raw_check = check.get_ref();
                if checks
                    .iter()
                    .any(|existing| &existing.name == raw_check.name.get_ref())
                {
                    errors.at(
                        raw_check.name.span(),
                        format!(
                            "check {:?} appears twice in this gate",
                            raw_check.name.get_ref()
                        ),
                    );
                    continue;
                }
                match compile_check(
                    raw_check.name.get_ref(),
                    raw_check.expr.get_ref(),
                    &raw_check.description,
                )
                .and_then(|compiled| validate_check_on_sample(&compiled).map(|()| compiled))
                {
                    Ok(compiled) => checks.push(compiled),
                    Err(message) => errors.at(
                        raw_check.expr.span(),
                        format!("check {:?}: {message}", raw_check.name.get_ref()),
                    ),
                }
            }
            let mut evaluations: Vec<GateEvaluation> = Vec::new();
            for evaluation in &raw_gate.evaluations {
                let raw_evaluation = evaluation.get_ref();
                if let Some(mode) = &raw_evaluation.mode
                    && mode.get_ref() != "model"
                {
                    errors.at(
                        mode.span(),
                        format!(
                            "mode must be \"model\": the server runs the version's own artifact (got {:?}); \
                             evaluations from predictions files are run with `modelgate eval run`",
                            mode.get_ref()
                        ),
                    );
                }
                let bootstrap = match &raw_evaluation.bootstrap {
                    Some(count) if !(0..=MAX_GATE_BOOTSTRAP).contains(count.get_ref()) => {
                        errors.at(
                            count.span(),
                            format!(
                                "bootstrap must be 0 to {MAX_GATE_BOOTSTRAP} resamples (got {})",
                                count.get_ref()
                            ),
                        );
                        None
                    }
                    Some(count) => usize::try_from(*count.get_ref()).ok(),
                    None => None,
                };
                let mut intersections = Vec::new();
                for pair in &raw_evaluation.intersect {
                    match pair.get_ref().split_once(',') {
                        Some((first, second))
                            if !first.trim().is_empty()
                                && !second.trim().is_empty()
                                && !second.contains(',') =>
                        {
                            intersections.push([first.trim().to_owned(), second.trim().to_owned()]);
                        }
                        _ => errors.at(
                            pair.span(),
                            format!(
                                "intersect entries are two sensitive attributes joined by a comma, \
                                 such as \"sex,age_band\" (got {:?})",
                                pair.get_ref()
                            ),
                        ),
                    }
                }
                let dataset = raw_evaluation.dataset.get_ref().trim();
                if dataset.is_empty() {
                    errors.at(
                        raw_evaluation.dataset.span(),
                        "dataset names a registered dataset; it is empty",
                    );
                    continue;
                }
                let entry = GateEvaluation {
                    dataset: dataset.to_owned(),
                    bootstrap,
                    intersections,
                };
                if evaluations.contains(&entry) {
                    errors.at(
                        evaluation.span(),
                        format!("the evaluation on {dataset:?} appears twice in this gate"),
                    );
                } else {
                    evaluations.push(entry);
                }
            }
            if let (Some(tier), Some(stage), Some(valid_for_days)) = (tier, stage, valid_for_days) {
                match gates.entry((tier, stage)) {
                    std::collections::btree_map::Entry::Occupied(_) => errors.at(
                        gate.span(),
                        format!("a second gate for tier {tier} and stage {stage}"),
                    ),
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(Gate {
                            tier,
                            stage,
                            checks,
                            signoffs,
                            valid_for_days,
                            rollback_without_signoffs: raw_gate.rollback_without_signoffs,
                            evaluations,
                        });
                    }
                }
            }
        }
        let mut card_requirements = BTreeMap::new();
        for (tier, paths) in [
            (RiskTier::Low, &raw.card_requirements.low),
            (RiskTier::Medium, &raw.card_requirements.medium),
            (RiskTier::High, &raw.card_requirements.high),
            (RiskTier::Critical, &raw.card_requirements.critical),
        ] {
            let mut valid = Vec::new();
            for path in paths {
                if modelgate_card::KNOWN_PATHS.contains(&path.get_ref().as_str()) {
                    valid.push(path.get_ref().clone());
                } else {
                    errors.at(
                        path.span(),
                        format!("unknown model-card field {:?}; known fields are listed in docs/policy.md", path.get_ref()),
                    );
                }
            }
            card_requirements.insert(tier, valid);
        }
        let mut monitoring = BTreeMap::new();
        for (tier, section) in [
            (RiskTier::Low, &raw.monitoring.low),
            (RiskTier::Medium, &raw.monitoring.medium),
            (RiskTier::High, &raw.monitoring.high),
            (RiskTier::Critical, &raw.monitoring.critical),
        ] {
            if let Some(section) = section {
                let mut problem = |span: Range<usize>, message: String| {
                    errors.at(span, format!("monitoring.{tier}: {message}"));
                };
                monitoring.insert(
                    tier,
                    crate::monitoring::validate(section, &mut problem, parse_days),
                );
            }
        }
        if errors.found.is_empty() {
            for tier in RiskTier::ALL {
                for stage in stages.iter().skip(1) {
                    if !gates.contains_key(&(tier, *stage)) {
                        errors.at(
                            0..0,
                            format!("no gate for tier {tier} and stage {stage}: every tier needs a gate into every stage after development"),
                        );
                    }
                }
            }
        }
        if !errors.found.is_empty() {
            errors.found.sort_by_key(|error| (error.line, error.column));
            return Err(errors.found);
        }
        Ok(Self {
            digest: format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes()))),
            text: text.to_owned(),
            stages,
            single_occupancy,
            frozen_evidence_stages,
            approvals_not_regranted,
            roles,
            risk_officer_roles,
            dataset_registrar_roles,
            review_due_days: raw.review_due_days,
            review_within_days: raw.review_within_days,
            owner_may_approve: raw.separation_of_duties.owner_may_approve,
            admins_may_approve: raw.separation_of_duties.admins_may_approve,
            card_requirements,
            monitoring,
            gates,
        })
    }

    /// The gate for promoting a version of `tier` into `stage`.
    pub fn gate(&self, tier: RiskTier, stage: Stage) -> Option<&Gate> {
        self.gates.get(&(tier, stage))
    }

    pub fn gates(&self) -> impl Iterator<Item = &Gate> {
        self.gates.values()
    }

    /// The stage after `stage` in the promotion order, if any.
    pub fn next_stage(&self, stage: Stage) -> Option<Stage> {
        let position = self
            .stages
            .iter()
            .position(|candidate| *candidate == stage)?;
        self.stages.get(position + 1).copied()
    }
}

fn stage_list(stages: &[Stage]) -> String {
    stages
        .iter()
        .map(|stage| stage.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_parses_and_matches_the_table() {
        let policy = crate::default_policy().unwrap();
        assert_eq!(
            policy.stages,
            [Stage::Development, Stage::Staging, Stage::Production]
        );
        assert!(policy.digest.starts_with("sha256:"));
        let table = [
            (RiskTier::Low, Stage::Staging, vec![], 0, 365),
            (RiskTier::Low, Stage::Production, vec![], 2, 365),
            (
                RiskTier::Medium,
                Stage::Staging,
                vec![("validator", 1)],
                0,
                365,
            ),
            (
                RiskTier::Medium,
                Stage::Production,
                vec![("validator", 1), ("business_owner", 1)],
                2,
                365,
            ),
            (
                RiskTier::High,
                Stage::Staging,
                vec![("validator", 1)],
                0,
                180,
            ),
            (
                RiskTier::High,
                Stage::Production,
                vec![("validator", 1), ("compliance", 1), ("business_owner", 1)],
                5,
                180,
            ),
            (
                RiskTier::Critical,
                Stage::Staging,
                vec![("validator", 1), ("compliance", 1)],
                0,
                90,
            ),
            (
                RiskTier::Critical,
                Stage::Production,
                vec![
                    ("validator", 1),
                    ("compliance", 1),
                    ("business_owner", 1),
                    ("risk_board", 2),
                ],
                6,
                90,
            ),
        ];
        for (tier, stage, signoffs, checks, days) in table {
            let gate = policy.gate(tier, stage).unwrap();
            let found: Vec<(&str, u32)> = gate
                .signoffs
                .iter()
                .map(|s| (s.role.as_str(), s.count))
                .collect();
            assert_eq!(found, signoffs, "{tier} → {stage}");
            assert_eq!(gate.checks.len(), checks, "{tier} → {stage}");
            assert_eq!(gate.valid_for_days, days);
        }
        assert_eq!(policy.next_stage(Stage::Development), Some(Stage::Staging));
        assert_eq!(policy.next_stage(Stage::Production), None);
        assert!(!policy.admins_may_approve && !policy.owner_may_approve);
        assert_eq!(
            policy.frozen_evidence_stages,
            BTreeSet::from([Stage::Production])
        );
        let registrars: Vec<&str> = policy
            .dataset_registrar_roles
            .iter()
            .map(Role::as_str)
            .collect();
        assert_eq!(registrars, ["model_developer", "validator"]);
    }

    #[test]
    fn dataset_registrars_default_to_the_declared_developer_and_validator_roles() {
        let base = crate::DEFAULT_POLICY_TOML;
        let listed = "dataset_registrar_roles = [\"model_developer\", \"validator\"]\n";
        assert!(base.contains(listed));
        let absent = Policy::parse(&base.replacen(listed, "", 1)).unwrap();
        assert_eq!(absent.dataset_registrar_roles.len(), 2);
        let only = Policy::parse(&base.replacen(
            listed,
            "dataset_registrar_roles = [\"compliance\"]\n",
            1,
        ))
        .unwrap();
        let registrars: Vec<&str> = only
            .dataset_registrar_roles
            .iter()
            .map(Role::as_str)
            .collect();
        assert_eq!(registrars, ["compliance"]);
        let errors =
            errors_of(&base.replacen(listed, "dataset_registrar_roles = [\"data_steward\"]\n", 1));
        assert!(
            errors
                .iter()
                .any(|error| error.message.contains("unknown role \"data_steward\"")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_gate_names_the_evaluations_its_checks_need() {
        let base = crate::DEFAULT_POLICY_TOML;
        let low_production = "tier = \"low\"\nstage = \"production\"\n";
        assert!(base.contains(low_production));
        let with = |evaluations: &str| {
            base.replacen(
                low_production,
                &format!("{low_production}evaluations = [{evaluations}]\n"),
                1,
            )
        };
        let policy = Policy::parse(&with(
            "{ dataset = \"holdout-2026q3\", mode = \"model\", bootstrap = 50, intersect = [\"sex, age_band\"] }, \
             { dataset = \"drift-check\" }",
        ))
        .unwrap();
        let gate = policy.gate(RiskTier::Low, Stage::Production).unwrap();
        assert_eq!(
            gate.evaluations,
            [
                GateEvaluation {
                    dataset: "holdout-2026q3".to_owned(),
                    bootstrap: Some(50),
                    intersections: vec![["sex".to_owned(), "age_band".to_owned()]],
                },
                GateEvaluation {
                    dataset: "drift-check".to_owned(),
                    bootstrap: None,
                    intersections: Vec::new(),
                },
            ]
        );
        let line_of = |text: &str, needle: &str| {
            text.lines().position(|line| line.contains(needle)).unwrap() + 1
        };
        for (evaluations, expected) in [
            (
                "{ dataset = \"h\", mode = \"predictions\" }",
                "mode must be \"model\"",
            ),
            (
                "{ dataset = \"h\", bootstrap = 20000 }",
                "bootstrap must be 0 to 10000",
            ),
            (
                "{ dataset = \"h\", intersect = [\"sex\"] }",
                "two sensitive attributes",
            ),
            ("{ dataset = \"h\" }, { dataset = \"h\" }", "appears twice"),
            ("{ dataset = \"\" }", "it is empty"),
            ("{ dataset = \"h\", seed = 1 }", "unknown field `seed`"),
        ] {
            let text = with(evaluations);
            let errors = errors_of(&text);
            let line = line_of(&text, "evaluations = [");
            assert!(
                errors
                    .iter()
                    .any(|error| error.message.contains(expected) && error.line == line),
                "{evaluations}: expected {expected:?} at line {line}, got {errors:?}"
            );
        }
    }

    fn errors_of(text: &str) -> Vec<PolicyError> {
        Policy::parse(text).unwrap_err()
    }

    #[test]
    fn broken_policies_are_rejected_with_line_and_column() {
        let base = crate::DEFAULT_POLICY_TOML;
        // Each case: the edited text, the message expected, and the text whose line the error must point at.
        let cases: [(String, &str, &str); 7] = [
            (
                base.replacen(
                    "{ role = \"validator\", count = 1 }",
                    "{ role = \"validatr\", count = 1 }",
                    1,
                ),
                "unknown role \"validatr\"",
                "validatr",
            ),
            (
                base.replacen(
                    "{ role = \"validator\", count = 1 }",
                    "{ role = \"validator\", count = 0 }",
                    1,
                ),
                "count must be at least 1",
                "count = 0",
            ),
            (
                base.replacen("stage = \"staging\"", "stage = \"preprod\"", 1),
                "unknown stage \"preprod\"",
                "preprod",
            ),
            (
                base.replacen("valid_for = \"365d\"", "valid_for = \"1 year\"", 1),
                "valid_for must be",
                "1 year",
            ),
            (
                base.replacen("expr = \"card.complete\"", "expr = \"card.compete\"", 1),
                "card.compete",
                "card.compete",
            ),
            (
                base.replacen("expr = \"card.complete\"", "expr = \"card.complete &&\"", 1),
                "card_complete",
                "card.complete &&",
            ),
            (
                base.replacen("version = 1", "version = \"one\"", 1),
                "invalid type",
                "version = \"one\"",
            ),
        ];
        let line_of = |text: &str, needle: &str| {
            text.lines().position(|line| line.contains(needle)).unwrap() + 1
        };
        for (text, expected, needle) in cases {
            let line = line_of(&text, needle);
            let errors = errors_of(&text);
            assert!(
                errors
                    .iter()
                    .any(|error| error.message.contains(expected) && error.line == line),
                "expected {expected:?} at line {line}, got {errors:?}"
            );
            assert!(errors.iter().all(|error| error.column >= 1));
        }
        let unknown_field = base.replacen("\"limitations\"]", "\"limitation\"]", 1);
        assert!(
            errors_of(&unknown_field)
                .iter()
                .any(|error| error.message.contains("unknown model-card field"))
        );
        let syntax = errors_of("version = 1\nstages = [\n");
        assert_eq!((syntax[0].line, syntax[0].column), (2, 11), "{syntax:?}");
        let missing_gate = base.replace(
            "tier = \"critical\"\nstage = \"staging\"",
            "tier = \"critical\"\nstage = \"production\"",
        );
        assert!(
            errors_of(&missing_gate)
                .iter()
                .any(|error| error.message.contains("second gate"))
        );
    }
}
