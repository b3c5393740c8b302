//! Policy as code: the policy file (TOML), validated into a [`Policy`] with errors that carry line and
//! column, the built-in default policy, and the CEL checks a gate runs over a version's evidence.
//! No I/O: callers hand in the text and the evidence.

mod checks;
pub mod evidence;
pub mod monitoring;
mod parse;

pub use checks::{CheckOutcome, CheckStatus, evaluate_checks, sample_evidence};
pub use evidence::{
    CardEvidence, EvaluationEvidence, Evidence, ScanEvidence, named_evaluation_outcomes,
};
pub use monitoring::{
    Breach, BreachAction, FairnessLimit, Judgment, KpiLimit, Monitoring, PerformanceLimit,
};
pub use parse::{Check, Gate, GateEvaluation, NotRegranted, Policy, PolicyError};

/// The text of the built-in default policy (`policies/default.toml` in the repository).
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../../policies/default.toml");

/// The built-in default policy.
pub fn default_policy() -> Result<Policy, Vec<PolicyError>> {
    Policy::parse(DEFAULT_POLICY_TOML)
}
