//! Server-side evaluation: datasets and predictions files read from CSV or Parquet bytes into a columnar
//! table (`dataset`), and the metric kernels — binary classification with scikit-learn's definitions (ties
//! in ROC AUC and average precision handled as scikit-learn does), calibration, per-group segments and
//! intersections, fairlearn's fairness metrics, seeded bootstrap intervals, multiclass and regression
//! metrics, robustness summaries, and data drift of production batches against a reference (`drift`:
//! Evidently 0.7's PSI, Jensen–Shannon and normed Wasserstein, scipy's KS and chi-square tests). Written
//! here rather than bound from Python: the server must compute verified numbers itself, and the fixtures in
//! `fixtures/` (made once with scikit-learn, fairlearn, Evidently and scipy by `fixtures/make_fixtures.py`
//! and `fixtures/make_drift_fixtures.py`) hold them to 1e-9. An undefined metric is `None` with a reason,
//! never NaN. No files, no network: callers hand in bytes.

mod binary;
pub mod bootstrap;
pub mod dataset;
pub mod drift;
pub mod evaluate;
mod fairness;
pub mod other;
pub mod outcomes;
pub mod robustness;

pub use binary::{BinaryMetrics, ConfusionMatrix, Ranked, ReliabilityBin, binary_metrics};
pub use fairness::{
    FairnessMetrics, GroupMetrics, Groups, fairness_from_confusion, fairness_metrics, per_group,
    segments,
};

/// A metric that may be undefined on the data (a one-class group has no ROC AUC).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Value {
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The defined values among named metrics, in the order given.
fn defined<'a>(
    named: impl IntoIterator<Item = (&'static str, &'a Value)>,
) -> Vec<(&'static str, f64)> {
    named
        .into_iter()
        .filter_map(|(name, value)| value.value.map(|number| (name, number)))
        .collect()
}

impl Value {
    pub fn defined(value: f64) -> Self {
        Self {
            value: Some(value),
            reason: None,
        }
    }

    pub fn undefined(reason: impl Into<String>) -> Self {
        Self {
            value: None,
            reason: Some(reason.into()),
        }
    }

    /// `numerator / denominator`, undefined (with `reason`) when the denominator is zero.
    pub fn ratio(numerator: f64, denominator: f64, reason: &str) -> Self {
        if denominator == 0.0 {
            Self::undefined(reason)
        } else {
            Self::defined(numerator / denominator)
        }
    }
}
