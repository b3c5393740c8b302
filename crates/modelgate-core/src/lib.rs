//! The domain of modelgate: validated names and values, the records of the registry, and the rules that
//! govern them. Nothing here does I/O or reads the clock; time is always a parameter.

pub mod access;
mod digest;
mod names;
pub mod promotion;
mod records;
mod tiers;
mod timestamp;

pub use digest::Digest;
pub use names::{ModelName, Role, TagKey, TokenName, Username};
pub use records::{
    Actor, ArtifactRecord, EvaluationMode, Lineage, Model, ModelFilter, NewModel, NewUser,
    NewVersion, Page, PageRequest, Principal, SessionRecord, TokenRecord, User, Version,
    VersionApproval, VersionFilter,
};
pub use tiers::{RiskTier, Stage, VersionNumber};
pub use timestamp::Timestamp;

/// Why a value given from outside is not acceptable, naming the field and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct InvalidInput {
    /// The name of the field as the user spelt it (`name`, `risk_tier`, `digest` …).
    pub field: &'static str,
    /// What the value must look like, phrased so that the user can fix it.
    pub rule: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self {
            field,
            rule: rule.into(),
        }
    }
}

/// The built-in role that may administer users, tokens and the policy.
pub const ADMIN_ROLE: &str = "admin";
