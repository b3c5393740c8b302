//! The policy's `monitoring` section (issue 13): per risk tier, what a production batch is compared with,
//! the limits that make a breach, and what a breach does. Judging is pure: [`Monitoring::judge_drift`]
//! and [`Monitoring::judge_kpi`] take a report or an observation and name every breach with its action.

use modelgate_eval::drift::{
    CategoricalMethod, DriftReport, DriftSettings, FeatureDrift, NumericMethod,
};
use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

/// What a breach does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BreachAction {
    /// An event (`monitoring.breach`) goes out; nothing else changes.
    Notify,
    /// The approval in force is marked `review_due` (the gate still says yes).
    Review,
    /// The version is suspended: the gate says no until it is reinstated.
    Suspend,
}

impl BreachAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notify => "notify",
            Self::Review => "review",
            Self::Suspend => "suspend",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Notify, Self::Review, Self::Suspend]
            .into_iter()
            .find(|action| action.as_str() == text)
    }
}

/// A named KPI's bounds (either may be absent) and what crossing one does.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiLimit {
    pub name: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub action: BreachAction,
}

/// How far a metric on labelled production rows may fall behind the approving evaluation's.
#[derive(Debug, Clone, PartialEq)]
pub struct PerformanceLimit {
    /// A metric of the evaluation report (`roc_auc`, `f1`, `rmse`, …).
    pub metric: String,
    /// The largest tolerated worsening: a drop for metrics where higher is better, a rise for errors
    /// (`log_loss`, `brier_score`, `expected_calibration_error`, `mae`, `rmse`, `mape`).
    pub max_drop: f64,
    pub action: BreachAction,
}

/// What fairness on labelled production rows must keep.
#[derive(Debug, Clone, PartialEq)]
pub struct FairnessLimit {
    /// The four-fifths rule must hold for every sensitive attribute (binary tasks).
    pub four_fifths: bool,
    pub action: BreachAction,
}

/// Metrics where lower is better: their worsening is a rise.
const LOWER_IS_BETTER: [&str; 6] = [
    "log_loss",
    "brier_score",
    "expected_calibration_error",
    "mae",
    "rmse",
    "mape",
];

/// The metrics a performance limit may name: every task's overall metrics, except counts and rates that
/// are not a quality (`count`, `selection_rate`).
const PERFORMANCE_METRICS: [&str; 17] = [
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "specificity",
    "f1",
    "roc_auc",
    "average_precision",
    "macro_f1",
    "weighted_f1",
    "r2",
    "log_loss",
    "brier_score",
    "expected_calibration_error",
    "mae",
    "rmse",
    "mape",
];

/// One tier's monitoring.
#[derive(Debug, Clone, PartialEq)]
pub struct Monitoring {
    /// The reference dataset's name; absent: the dataset of the version's latest verified evaluation
    /// (the evidence its approval was signed on).
    pub reference: Option<String>,
    /// A batch with fewer rows is stored but not judged.
    pub min_batch_rows: u64,
    pub drift: DriftSettings,
    /// What dataset drift (the share of drifted features at or above `drift.drift_share`) does.
    pub on_drift: BreachAction,
    pub kpis: Vec<KpiLimit>,
    /// Limits on labelled rows (a batch with its labels, or outcomes sent later) against the approving
    /// evaluation.
    pub performance: Vec<PerformanceLimit>,
    pub fairness: Option<FairnessLimit>,
    /// The approval must be re-validated this often (days).
    pub revalidate_every_days: Option<u32>,
    /// The re-approval request opens this long before the approval expires (days).
    pub reapproval_lead_days: Option<u32>,
    /// A production version without a batch for this long is reported (days).
    pub stale_after_days: Option<u32>,
}

/// A limit crossed, and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    /// `drift`, `kpi`, `performance` or `fairness`.
    pub kind: &'static str,
    pub action: BreachAction,
    /// For people: `psi(income) = 0.312 >= 0.2; psi(age) = 0.25 >= 0.2 (2 of 3 features drifted, share 0.667 >= 0.5)`.
    pub reason: String,
}

/// The judgment of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgment {
    /// False when the batch is below `min_batch_rows`: stored, not judged.
    pub judged: bool,
    /// Why it was not judged.
    pub note: Option<String>,
    pub breaches: Vec<Breach>,
}

fn number(value: &modelgate_eval::Value) -> Option<f64> {
    value.value
}

impl Monitoring {
    /// Judges a drift report of a batch of `rows` rows.
    pub fn judge_drift(&self, report: &DriftReport, rows: u64) -> Judgment {
        if rows < self.min_batch_rows {
            return Judgment {
                judged: false,
                note: Some(format!(
                    "{rows} rows, fewer than the policy's min_batch_rows of {}: stored, not judged",
                    self.min_batch_rows
                )),
                breaches: Vec::new(),
            };
        }
        let mut breaches = Vec::new();
        if report.dataset.drifted {
            let mut reasons: Vec<String> = report
                .features
                .iter()
                .filter(|(_, drift)| drift.drifted())
                .map(|(name, drift)| feature_reason(name, drift))
                .collect();
            reasons.truncate(10);
            let share = number(&report.dataset.drift_share).unwrap_or(f64::NAN);
            breaches.push(Breach {
                kind: "drift",
                action: self.on_drift,
                reason: format!(
                    "{} ({} of {} features drifted, share {share:.3} >= {})",
                    reasons.join("; "),
                    report.dataset.drifted_features,
                    report.dataset.features,
                    self.drift.drift_share
                ),
            });
        }
        Judgment {
            judged: true,
            note: None,
            breaches,
        }
    }

    /// Judges labelled production rows: each performance limit against the approving evaluation's
    /// `baseline` metrics, and fairness per sensitive attribute. A metric either side lacks is named in
    /// the note, not a breach; fewer than `min_batch_rows` labelled rows are not judged.
    pub fn judge_outcomes(
        &self,
        baseline: &[(&str, f64)],
        current: &[(&str, f64)],
        fairness: Option<&std::collections::BTreeMap<String, modelgate_eval::FairnessMetrics>>,
        rows: u64,
    ) -> Judgment {
        if rows < self.min_batch_rows {
            return Judgment {
                judged: false,
                note: Some(format!(
                    "{rows} labelled rows, fewer than the policy's min_batch_rows of {}: stored, not judged",
                    self.min_batch_rows
                )),
                breaches: Vec::new(),
            };
        }
        let find = |metrics: &[(&str, f64)], name: &str| {
            metrics
                .iter()
                .find(|(metric, _)| *metric == name)
                .map(|(_, value)| *value)
        };
        let mut breaches = Vec::new();
        let mut undefined = Vec::new();
        for limit in &self.performance {
            let (Some(approved), Some(now)) =
                (find(baseline, &limit.metric), find(current, &limit.metric))
            else {
                undefined.push(limit.metric.as_str());
                continue;
            };
            let lower_is_better = LOWER_IS_BETTER.contains(&limit.metric.as_str());
            let worsening = if lower_is_better {
                now - approved
            } else {
                approved - now
            };
            if worsening > limit.max_drop {
                let direction = if lower_is_better { "above" } else { "below" };
                breaches.push(Breach {
                    kind: "performance",
                    action: limit.action,
                    reason: format!(
                        "{} = {now:.3}, {worsening:.3} {direction} the approving evaluation's {approved:.3} (max_drop {})",
                        limit.metric, limit.max_drop
                    ),
                });
            }
        }
        if let (Some(limit), Some(fairness)) = (&self.fairness, fairness)
            && limit.four_fifths
        {
            for (attribute, metrics) in fairness {
                if metrics.four_fifths_holds == Some(false) {
                    let ratio = metrics
                        .demographic_parity_ratio
                        .value
                        .map_or_else(|| "undefined".to_owned(), |ratio| format!("{ratio:.3}"));
                    let rates: Vec<String> = metrics
                        .selection_rate
                        .iter()
                        .map(|(group, rate)| format!("{group} {rate:.3}"))
                        .collect();
                    breaches.push(Breach {
                        kind: "fairness",
                        action: limit.action,
                        reason: format!(
                            "four-fifths rule fails for {attribute}: selection rates {} (ratio {ratio} < 0.8)",
                            rates.join(", ")
                        ),
                    });
                }
            }
        }
        Judgment {
            judged: true,
            note: (!undefined.is_empty()).then(|| {
                format!(
                    "not compared (undefined on the batch or the approving evaluation): {}",
                    undefined.join(", ")
                )
            }),
            breaches,
        }
    }

    /// Judges one KPI observation; `None` when the KPI is within its bounds or has none.
    pub fn judge_kpi(&self, name: &str, value: f64) -> Option<Breach> {
        let limit = self.kpis.iter().find(|limit| limit.name == name)?;
        let reason = match (limit.min, limit.max) {
            (Some(min), _) if value < min => format!("kpi {name} = {value} < {min}"),
            (_, Some(max)) if value > max => format!("kpi {name} = {value} > {max}"),
            _ => return None,
        };
        Some(Breach {
            kind: "kpi",
            action: limit.action,
            reason,
        })
    }
}

/// `psi(income) = 0.312 >= 0.2`, or `ks_pvalue(age) = 0.001 < 0.05`.
fn feature_reason(name: &str, drift: &FeatureDrift) -> String {
    let (method, threshold, value, pvalue) = match drift {
        FeatureDrift::Numeric(numeric) => {
            let value = match numeric.method {
                NumericMethod::Psi => &numeric.psi,
                NumericMethod::JensenShannon => &numeric.jensen_shannon,
                NumericMethod::WassersteinNormed => &numeric.wasserstein_normed,
                NumericMethod::KsPvalue => &numeric.ks_pvalue,
            };
            (
                numeric_name(numeric.method),
                numeric.threshold,
                value,
                numeric.method == NumericMethod::KsPvalue,
            )
        }
        FeatureDrift::Categorical(categorical) => {
            let value = match categorical.method {
                CategoricalMethod::Psi => &categorical.psi,
                CategoricalMethod::JensenShannon => &categorical.jensen_shannon,
                CategoricalMethod::Chi2Pvalue => &categorical.chi2_pvalue,
            };
            (
                categorical_name(categorical.method),
                categorical.threshold,
                value,
                categorical.method == CategoricalMethod::Chi2Pvalue,
            )
        }
    };
    let shown = number(value).map_or_else(|| "undefined".to_owned(), |value| format!("{value:.3}"));
    let relation = if pvalue { "<" } else { ">=" };
    format!("{method}({name}) = {shown} {relation} {threshold}")
}

fn numeric_name(method: NumericMethod) -> &'static str {
    match method {
        NumericMethod::Psi => "psi",
        NumericMethod::JensenShannon => "jensen_shannon",
        NumericMethod::WassersteinNormed => "wasserstein_normed",
        NumericMethod::KsPvalue => "ks_pvalue",
    }
}

fn categorical_name(method: CategoricalMethod) -> &'static str {
    match method {
        CategoricalMethod::Psi => "psi",
        CategoricalMethod::JensenShannon => "jensen_shannon",
        CategoricalMethod::Chi2Pvalue => "chi2_pvalue",
    }
}

// ---- parsing ---------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMonitoringTiers {
    #[serde(default)]
    pub(crate) low: Option<RawMonitoring>,
    #[serde(default)]
    pub(crate) medium: Option<RawMonitoring>,
    #[serde(default)]
    pub(crate) high: Option<RawMonitoring>,
    #[serde(default)]
    pub(crate) critical: Option<RawMonitoring>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMonitoring {
    #[serde(default)]
    reference: Option<Spanned<String>>,
    #[serde(default)]
    min_batch_rows: Option<Spanned<i64>>,
    #[serde(default)]
    drift: Option<RawDrift>,
    #[serde(default)]
    on_drift: Option<Spanned<String>>,
    #[serde(default)]
    kpis: Vec<RawKpi>,
    #[serde(default)]
    performance: Vec<RawPerformance>,
    #[serde(default)]
    fairness: Option<RawFairness>,
    #[serde(default)]
    revalidate_every: Option<Spanned<String>>,
    #[serde(default)]
    reapproval_lead: Option<Spanned<String>>,
    #[serde(default)]
    stale_after: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrift {
    #[serde(default)]
    method: Option<Spanned<String>>,
    #[serde(default)]
    threshold: Option<Spanned<f64>>,
    #[serde(default)]
    categorical_method: Option<Spanned<String>>,
    #[serde(default)]
    categorical_threshold: Option<Spanned<f64>>,
    #[serde(default)]
    drift_share: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerformance {
    metric: Spanned<String>,
    max_drop: Spanned<f64>,
    #[serde(default)]
    action: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFairness {
    #[serde(default)]
    four_fifths: Option<bool>,
    #[serde(default)]
    action: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKpi {
    name: Spanned<String>,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    action: Option<Spanned<String>>,
}

/// Rows a batch needs to be judged when the policy does not say.
pub const DEFAULT_MIN_BATCH_ROWS: u64 = 100;

/// Validates one tier's section; `problem` records an error at a byte span.
pub(crate) fn validate(
    raw: &RawMonitoring,
    problem: &mut dyn FnMut(std::ops::Range<usize>, String),
    parse_days: fn(&str) -> Option<u32>,
) -> Monitoring {
    let min_batch_rows = match &raw.min_batch_rows {
        Some(rows) if *rows.get_ref() >= 1 => u64::try_from(*rows.get_ref()).unwrap_or(1),
        Some(rows) => {
            problem(
                rows.span(),
                format!("min_batch_rows must be at least 1 (got {})", rows.get_ref()),
            );
            DEFAULT_MIN_BATCH_ROWS
        }
        None => DEFAULT_MIN_BATCH_ROWS,
    };
    let mut drift = DriftSettings::default();
    if let Some(raw_drift) = &raw.drift {
        if let Some(method) = &raw_drift.method {
            match serde_json::from_value::<NumericMethod>(Value::String(method.get_ref().clone())) {
                Ok(parsed) => {
                    drift.numeric_method = parsed;
                    drift.numeric_threshold = parsed.default_threshold();
                }
                Err(_) => problem(
                    method.span(),
                    format!(
                        "drift.method must be \"psi\", \"jensen_shannon\", \"wasserstein_normed\" or \"ks_pvalue\" (got {:?})",
                        method.get_ref()
                    ),
                ),
            }
        }
        if let Some(method) = &raw_drift.categorical_method {
            match serde_json::from_value::<CategoricalMethod>(Value::String(
                method.get_ref().clone(),
            )) {
                Ok(parsed) => {
                    drift.categorical_method = parsed;
                    drift.categorical_threshold = parsed.default_threshold();
                }
                Err(_) => problem(
                    method.span(),
                    format!(
                        "drift.categorical_method must be \"psi\", \"jensen_shannon\" or \"chi2_pvalue\" (got {:?})",
                        method.get_ref()
                    ),
                ),
            }
        }
        if let Some(threshold) = &raw_drift.threshold {
            drift.numeric_threshold = *threshold.get_ref();
        }
        if let Some(threshold) = &raw_drift.categorical_threshold {
            drift.categorical_threshold = *threshold.get_ref();
        }
        if let Some(share) = &raw_drift.drift_share {
            drift.drift_share = *share.get_ref();
        }
        if let Err(error) = drift.check() {
            let span = raw_drift
                .threshold
                .as_ref()
                .map(Spanned::span)
                .or_else(|| raw_drift.drift_share.as_ref().map(Spanned::span))
                .or_else(|| raw_drift.method.as_ref().map(Spanned::span))
                .unwrap_or(0..0);
            problem(span, error.to_string());
        }
    }
    let action = |spanned: &Option<Spanned<String>>,
                  field: &str,
                  problem: &mut dyn FnMut(std::ops::Range<usize>, String)| {
        match spanned {
            None => BreachAction::Notify,
            Some(text) => BreachAction::parse(text.get_ref()).unwrap_or_else(|| {
                problem(
                    text.span(),
                    format!(
                        "{field} must be \"notify\", \"review\" or \"suspend\" (got {:?})",
                        text.get_ref()
                    ),
                );
                BreachAction::Notify
            }),
        }
    };
    let on_drift = action(&raw.on_drift, "on_drift", problem);
    let mut kpis: Vec<KpiLimit> = Vec::new();
    for kpi in &raw.kpis {
        let name = kpi.name.get_ref().trim();
        if name.is_empty() || name.len() > 64 {
            problem(
                kpi.name.span(),
                "a KPI's name must be 1 to 64 characters".to_owned(),
            );
            continue;
        }
        if kpis.iter().any(|known| known.name == name) {
            problem(kpi.name.span(), format!("KPI {name:?} is listed twice"));
            continue;
        }
        if kpi.min.is_none() && kpi.max.is_none() {
            problem(
                kpi.name.span(),
                format!("KPI {name:?} needs min, max or both"),
            );
        }
        if let (Some(min), Some(max)) = (kpi.min, kpi.max)
            && min > max
        {
            problem(
                kpi.name.span(),
                format!("KPI {name:?}: min {min} is above max {max}"),
            );
        }
        if kpi.min.is_some_and(|min| !min.is_finite())
            || kpi.max.is_some_and(|max| !max.is_finite())
        {
            problem(
                kpi.name.span(),
                format!("KPI {name:?}: bounds must be finite numbers"),
            );
        }
        kpis.push(KpiLimit {
            name: name.to_owned(),
            min: kpi.min,
            max: kpi.max,
            action: action(&kpi.action, "a KPI's action", problem),
        });
    }
    let mut performance: Vec<PerformanceLimit> = Vec::new();
    for limit in &raw.performance {
        let metric = limit.metric.get_ref().as_str();
        if !PERFORMANCE_METRICS.contains(&metric) {
            problem(
                limit.metric.span(),
                format!(
                    "performance.metric must be one of {} (got {metric:?})",
                    PERFORMANCE_METRICS.join(", ")
                ),
            );
            continue;
        }
        if performance.iter().any(|known| known.metric == metric) {
            problem(
                limit.metric.span(),
                format!("performance limit on {metric:?} is listed twice"),
            );
            continue;
        }
        let max_drop = *limit.max_drop.get_ref();
        if !max_drop.is_finite() || max_drop < 0.0 {
            problem(
                limit.max_drop.span(),
                format!("max_drop must be a finite number of at least 0 (got {max_drop})"),
            );
        }
        performance.push(PerformanceLimit {
            metric: metric.to_owned(),
            max_drop,
            action: action(&limit.action, "a performance limit's action", problem),
        });
    }
    let fairness = raw.fairness.as_ref().map(|fairness| FairnessLimit {
        four_fifths: fairness.four_fifths.unwrap_or(true),
        action: action(&fairness.action, "fairness.action", problem),
    });
    let mut days = |spanned: &Option<Spanned<String>>, field: &str| -> Option<u32> {
        let text = spanned.as_ref()?;
        let parsed = parse_days(text.get_ref());
        if parsed.is_none() {
            problem(
                text.span(),
                format!(
                    "{field} must be a number of days like \"90d\" (got {:?})",
                    text.get_ref()
                ),
            );
        }
        parsed
    };
    let revalidate_every_days = days(&raw.revalidate_every, "revalidate_every");
    let reapproval_lead_days = days(&raw.reapproval_lead, "reapproval_lead");
    let stale_after_days = days(&raw.stale_after, "stale_after");
    Monitoring {
        reference: raw
            .reference
            .as_ref()
            .map(|reference| reference.get_ref().trim().to_owned())
            .filter(|reference| !reference.is_empty()),
        min_batch_rows,
        drift,
        on_drift,
        kpis,
        performance,
        fairness,
        revalidate_every_days,
        reapproval_lead_days,
        stale_after_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DEFAULT_POLICY_TOML, Policy};
    use modelgate_core::RiskTier;

    fn with(from: &str, to: &str) -> Result<Policy, Vec<crate::PolicyError>> {
        let text = DEFAULT_POLICY_TOML.replacen(from, to, 1);
        assert_ne!(
            text, DEFAULT_POLICY_TOML,
            "the default policy has no {from:?}"
        );
        Policy::parse(&text)
    }

    #[test]
    fn the_default_policy_watches_every_tier() {
        let policy = Policy::parse(DEFAULT_POLICY_TOML).unwrap();
        for tier in RiskTier::ALL {
            assert!(policy.monitoring.contains_key(&tier), "{tier}");
        }
        let high = &policy.monitoring[&RiskTier::High];
        assert_eq!(high.on_drift, BreachAction::Suspend);
        assert_eq!(high.drift.numeric_method, NumericMethod::Psi);
        assert_eq!(high.drift.numeric_threshold, 0.2);
        assert_eq!(high.revalidate_every_days, Some(90));
        assert_eq!(high.reapproval_lead_days, Some(14));
        assert_eq!(
            policy.monitoring[&RiskTier::Low].on_drift,
            BreachAction::Notify
        );
    }

    #[test]
    fn mistakes_are_named_with_line_and_column() {
        let errors = with("on_drift = \"suspend\"", "on_drift = \"explode\"").unwrap_err();
        assert!(
            errors[0]
                .message
                .contains("monitoring.high: on_drift must be"),
            "{errors:?}"
        );
        let line = DEFAULT_POLICY_TOML
            .lines()
            .position(|line| line.starts_with("on_drift = \"suspend\""))
            .unwrap()
            + 1;
        assert_eq!((errors[0].line, errors[0].column), (line, 12));
        for (from, to, expected) in [
            (
                "min_batch_rows = 500",
                "min_batch_rows = 0",
                "min_batch_rows must be at least 1",
            ),
            (
                "revalidate_every = \"90d\"",
                "revalidate_every = \"quarterly\"",
                "revalidate_every must be a number of days",
            ),
            (
                "method = \"psi\", threshold = 0.2",
                "method = \"psy\", threshold = 0.2",
                "drift.method must be",
            ),
            (
                "drift_share = 0.3",
                "drift_share = 1.5",
                "drift_share must be within (0, 1]",
            ),
            (
                "[monitoring.low]\n",
                "[monitoring.low]\nkpis = [{ name = \"rate\", min = 2.0, max = 1.0 }]\n",
                "min 2 is above max 1",
            ),
            (
                "[monitoring.low]\n",
                "[monitoring.low]\nkpis = [{ name = \"rate\" }]\n",
                "needs min, max or both",
            ),
            (
                "[monitoring.low]\n",
                "[monitoring.low]\nwatch = true\n",
                "unknown field `watch`",
            ),
        ] {
            let errors = with(from, to).unwrap_err();
            assert!(
                errors.iter().any(|error| error.message.contains(expected)),
                "{to}: {errors:?}"
            );
        }
    }

    fn report(drifted: &[(&str, f64)], of: usize, share: f64, threshold: f64) -> DriftReport {
        let features = drifted
            .iter()
            .map(|(name, psi)| {
                let value = |value: f64| modelgate_eval::Value {
                    value: Some(value),
                    reason: None,
                };
                let drift: FeatureDrift = serde_json::from_value(serde_json::json!({
                    "kind": "numeric", "method": "psi", "threshold": threshold, "drifted": true,
                    "reference_rows": 100, "current_rows": 100, "reference_missing": 0, "current_missing": 0,
                    "reference_distinct": 100, "bins": 8,
                    "psi": value(*psi), "jensen_shannon": value(0.1), "wasserstein_normed": value(0.1),
                    "ks_statistic": value(0.1), "ks_pvalue": value(0.01),
                }))
                .unwrap();
                ((*name).to_owned(), drift)
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "features": serde_json::to_value::<std::collections::BTreeMap<String, FeatureDrift>>(features).unwrap(),
            "dataset": { "drift_share": { "value": share }, "drifted": share >= 0.5, "drifted_features": drifted.len(),
                "features": of, "undecided_features": 0, "reference_rows": 100, "current_rows": 100 },
            "settings": DriftSettings::default(),
        }))
        .unwrap()
    }

    #[test]
    fn a_drifted_dataset_is_a_breach_that_names_each_statistic() {
        let policy = Policy::parse(DEFAULT_POLICY_TOML).unwrap();
        let high = &policy.monitoring[&RiskTier::High];
        let judged = high.judge_drift(
            &report(&[("income", 0.3125), ("age", 0.25)], 3, 0.667, 0.2),
            1000,
        );
        assert!(judged.judged);
        assert_eq!(judged.breaches.len(), 1);
        let breach = &judged.breaches[0];
        assert_eq!(
            (breach.kind, breach.action),
            ("drift", BreachAction::Suspend)
        );
        assert_eq!(
            breach.reason,
            "psi(age) = 0.250 >= 0.2; psi(income) = 0.312 >= 0.2 (2 of 3 features drifted, share 0.667 >= 0.5)"
        );
        let calm = high.judge_drift(&report(&[("income", 0.3)], 3, 0.333, 0.2), 1000);
        assert!(calm.judged && calm.breaches.is_empty());
        let small = high.judge_drift(&report(&[("income", 0.3), ("age", 0.3)], 2, 1.0, 0.2), 499);
        assert!(!small.judged && small.breaches.is_empty());
        assert!(
            small
                .note
                .unwrap()
                .contains("499 rows, fewer than the policy's min_batch_rows of 500")
        );
    }

    fn fairness(holds: bool) -> modelgate_eval::FairnessMetrics {
        serde_json::from_value(serde_json::json!({
            "selection_rate": { "F": 0.3, "M": if holds { 0.32 } else { 0.5 } },
            "demographic_parity_difference": { "value": 0.2 }, "demographic_parity_ratio": { "value": if holds { 0.9375 } else { 0.6 } },
            "equalized_odds_difference": { "value": 0.1 }, "equalized_odds_ratio": { "value": 0.8 },
            "equal_opportunity_difference": { "value": 0.1 }, "equal_opportunity_ratio": { "value": 0.8 },
            "four_fifths_holds": holds,
        }))
        .unwrap()
    }

    #[test]
    fn labelled_rows_are_judged_against_the_approving_evaluation() {
        let policy = Policy::parse(DEFAULT_POLICY_TOML).unwrap();
        let high = &policy.monitoring[&RiskTier::High];
        let baseline = [("roc_auc", 0.82), ("f1", 0.61), ("accuracy", 0.9)];
        // Within both limits (a drop of exactly max_drop is tolerated).
        let fine = high.judge_outcomes(&baseline, &[("roc_auc", 0.77), ("f1", 0.6)], None, 1000);
        assert!(fine.judged && fine.breaches.is_empty(), "{fine:?}");
        let worse = high.judge_outcomes(&baseline, &[("roc_auc", 0.70), ("f1", 0.5)], None, 1000);
        let found: Vec<(&str, BreachAction, &str)> = worse
            .breaches
            .iter()
            .map(|breach| (breach.kind, breach.action, breach.reason.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "performance",
                    BreachAction::Suspend,
                    "roc_auc = 0.700, 0.120 below the approving evaluation's 0.820 (max_drop 0.05)"
                ),
                (
                    "performance",
                    BreachAction::Review,
                    "f1 = 0.500, 0.110 below the approving evaluation's 0.610 (max_drop 0.05)"
                ),
            ]
        );
        // A metric the batch lacks is named, not guessed.
        let partial = high.judge_outcomes(&baseline, &[("f1", 0.61)], None, 1000);
        assert!(partial.breaches.is_empty());
        assert!(partial.note.unwrap().contains("roc_auc"));
        // Too few labelled rows: not judged however bad.
        let small = high.judge_outcomes(&baseline, &[("roc_auc", 0.1)], None, 10);
        assert!(!small.judged && small.breaches.is_empty());
        // Fairness: the four-fifths rule per attribute.
        let unfair = std::collections::BTreeMap::from([
            ("sex".to_owned(), fairness(false)),
            ("age_band".to_owned(), fairness(true)),
        ]);
        let judged = high.judge_outcomes(&baseline, &baseline, Some(&unfair), 1000);
        assert_eq!(judged.breaches.len(), 1, "{judged:?}");
        assert_eq!(judged.breaches[0].kind, "fairness");
        assert_eq!(judged.breaches[0].action, BreachAction::Review);
        assert_eq!(
            judged.breaches[0].reason,
            "four-fifths rule fails for sex: selection rates F 0.300, M 0.500 (ratio 0.600 < 0.8)"
        );
    }

    #[test]
    fn errors_worsen_upwards() {
        let policy = with(
            "[monitoring.low]\n",
            "[monitoring.low]\nperformance = [{ metric = \"rmse\", max_drop = 0.5, action = \"suspend\" }]\n",
        )
        .unwrap();
        let low = &policy.monitoring[&RiskTier::Low];
        assert!(
            low.judge_outcomes(&[("rmse", 2.0)], &[("rmse", 1.0)], None, 1000)
                .breaches
                .is_empty(),
            "a smaller error is better"
        );
        let worse = low.judge_outcomes(&[("rmse", 2.0)], &[("rmse", 2.6)], None, 1000);
        assert_eq!(
            worse.breaches[0].reason,
            "rmse = 2.600, 0.600 above the approving evaluation's 2.000 (max_drop 0.5)"
        );
        for (to, expected) in [
            (
                "performance = [{ metric = \"auc\", max_drop = 0.1 }]",
                "performance.metric must be one of",
            ),
            (
                "performance = [{ metric = \"f1\", max_drop = -0.1 }]",
                "max_drop must be a finite number of at least 0",
            ),
            (
                "performance = [{ metric = \"f1\", max_drop = 0.1 }, { metric = \"f1\", max_drop = 0.2 }]",
                "listed twice",
            ),
            (
                "fairness = { four_fifths = true, action = \"halt\" }",
                "fairness.action must be",
            ),
        ] {
            let errors =
                with("[monitoring.low]\n", &format!("[monitoring.low]\n{to}\n")).unwrap_err();
            assert!(
                errors.iter().any(|error| error.message.contains(expected)),
                "{to}: {errors:?}"
            );
        }
    }

    #[test]
    fn kpis_outside_their_bounds_breach() {
        let policy = with(
            "[monitoring.low]\n",
            "[monitoring.low]\nkpis = [{ name = \"approval_rate\", min = 0.2, max = 0.8, action = \"review\" }, { name = \"latency\", max = 250.0 }]\n",
        )
        .unwrap();
        let low = &policy.monitoring[&RiskTier::Low];
        assert_eq!(low.judge_kpi("approval_rate", 0.5), None);
        let high = low.judge_kpi("approval_rate", 0.9).unwrap();
        assert_eq!(
            (high.action, high.reason.as_str()),
            (BreachAction::Review, "kpi approval_rate = 0.9 > 0.8")
        );
        assert_eq!(
            low.judge_kpi("approval_rate", 0.1).unwrap().reason,
            "kpi approval_rate = 0.1 < 0.2"
        );
        assert_eq!(
            low.judge_kpi("latency", 300.0).unwrap().action,
            BreachAction::Notify
        );
        assert_eq!(low.judge_kpi("unknown", 1e9), None);
    }
}
