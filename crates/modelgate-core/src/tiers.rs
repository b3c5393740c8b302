//! Risk tiers, lifecycle stages and version numbers.

use crate::InvalidInput;
use std::fmt;

/// How much harm a model can do; the policy scales checks and sign-offs with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RiskTier {
    Low,
    Medium,
    High,
    Critical,
}

impl RiskTier {
    pub const ALL: [RiskTier; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        Self::ALL
            .into_iter()
            .find(|tier| tier.as_str() == text)
            .ok_or_else(|| {
                InvalidInput::new(
                    "risk_tier",
                    format!("must be one of low, medium, high, critical (got {text:?})"),
                )
            })
    }
}

impl fmt::Display for RiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a version stands in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Development,
    Staging,
    Production,
    Archived,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Self::Development,
        Self::Staging,
        Self::Production,
        Self::Archived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Staging => "staging",
            Self::Production => "production",
            Self::Archived => "archived",
        }
    }

    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        Self::ALL
            .into_iter()
            .find(|stage| stage.as_str() == text)
            .ok_or_else(|| {
                InvalidInput::new(
                    "stage",
                    format!(
                        "must be one of development, staging, production, archived (got {text:?})"
                    ),
                )
            })
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A version's number within its model: 1, 2, 3 … never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionNumber(u32);

impl VersionNumber {
    pub const FIRST: VersionNumber = VersionNumber(1);

    pub fn new(number: i64) -> Result<Self, InvalidInput> {
        u32::try_from(number)
            .ok()
            .filter(|n| *n >= 1)
            .map(Self)
            .ok_or_else(|| {
                InvalidInput::new(
                    "version",
                    format!("must be a whole number from 1 (got {number})"),
                )
            })
    }

    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let number: i64 = text.parse().map_err(|_| {
            InvalidInput::new(
                "version",
                format!("must be a whole number from 1 (got {text:?})"),
            )
        })?;
        Self::new(number)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for VersionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_and_stages_round_trip() {
        for tier in RiskTier::ALL {
            assert_eq!(RiskTier::parse(tier.as_str()).unwrap(), tier);
        }
        for stage in Stage::ALL {
            assert_eq!(Stage::parse(stage.as_str()).unwrap(), stage);
        }
        assert!(
            RiskTier::parse("LOW")
                .unwrap_err()
                .rule
                .contains("low, medium")
        );
        assert_eq!(Stage::parse("prod").unwrap_err().field, "stage");
    }

    #[test]
    fn version_numbers_start_at_one() {
        assert!(VersionNumber::parse("0").is_err());
        assert!(VersionNumber::parse("-3").is_err());
        assert!(VersionNumber::parse("x").is_err());
        assert_eq!(VersionNumber::parse("12").unwrap().get(), 12);
    }
}
