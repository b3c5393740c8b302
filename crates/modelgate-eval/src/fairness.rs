//! Per-group metrics and fairlearn's fairness metrics over one sensitive attribute.

use crate::Value;
use crate::binary::{BinaryMetrics, binary_metrics, confusion};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GroupMetrics {
    pub group: String,
    pub count: usize,
    /// True when the group has fewer rows than the minimum for trustworthy numbers.
    pub small: bool,
    pub metrics: BinaryMetrics,
}

/// Every binary metric per group of the attribute, groups in sorted order.
pub fn per_group(
    labels: &[bool],
    scores: &[f64],
    groups: &[String],
    threshold: f64,
    bins: usize,
    minimum_size: usize,
) -> Vec<GroupMetrics> {
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, group) in groups.iter().enumerate() {
        members.entry(group.as_str()).or_default().push(index);
    }
    members
        .into_iter()
        .map(|(group, rows)| {
            let group_labels: Vec<bool> = rows.iter().map(|&i| labels[i]).collect();
            let group_scores: Vec<f64> = rows.iter().map(|&i| scores[i]).collect();
            GroupMetrics {
                group: group.to_owned(),
                count: rows.len(),
                small: rows.len() < minimum_size,
                metrics: binary_metrics(&group_labels, &group_scores, None, threshold, bins),
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FairnessMetrics {
    pub selection_rate: BTreeMap<String, f64>,
    pub demographic_parity_difference: Value,
    pub demographic_parity_ratio: Value,
    pub equalized_odds_difference: Value,
    pub equalized_odds_ratio: Value,
    pub equal_opportunity_difference: Value,
    pub equal_opportunity_ratio: Value,
    /// The four-fifths rule: the lowest selection rate is at least 80 % of the highest.
    pub four_fifths_holds: Option<bool>,
}

fn spread(values: &[f64]) -> (Value, Value) {
    let Some(max) = values.iter().copied().reduce(f64::max) else {
        return (Value::undefined("no groups"), Value::undefined("no groups"));
    };
    let min = values.iter().copied().reduce(f64::min).unwrap_or(max);
    (
        Value::defined(max - min),
        Value::ratio(min, max, "the largest rate is zero"),
    )
}

/// fairlearn's between-groups metrics for predictions `score >= threshold`.
pub fn fairness_metrics(
    labels: &[bool],
    scores: &[f64],
    groups: &[String],
    threshold: f64,
) -> FairnessMetrics {
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, group) in groups.iter().enumerate() {
        members.entry(group.as_str()).or_default().push(index);
    }
    let mut selection_rate = BTreeMap::new();
    let (mut true_positive_rates, mut false_positive_rates) = (Vec::new(), Vec::new());
    let mut rates_defined = true;
    for (group, rows) in &members {
        let group_labels: Vec<bool> = rows.iter().map(|&i| labels[i]).collect();
        let group_scores: Vec<f64> = rows.iter().map(|&i| scores[i]).collect();
        let matrix = confusion(&group_labels, &group_scores, None, threshold);
        let total = rows.len() as f64;
        selection_rate.insert(
            (*group).to_owned(),
            (matrix.true_positives + matrix.false_positives) / total,
        );
        let positives = matrix.true_positives + matrix.false_negatives;
        let negatives = matrix.false_positives + matrix.true_negatives;
        if positives > 0.0 && negatives > 0.0 {
            true_positive_rates.push(matrix.true_positives / positives);
            false_positive_rates.push(matrix.false_positives / negatives);
        } else {
            rates_defined = false;
        }
    }
    let rates: Vec<f64> = selection_rate.values().copied().collect();
    let (demographic_parity_difference, demographic_parity_ratio) = spread(&rates);
    let (tpr_difference, tpr_ratio) = spread(&true_positive_rates);
    let (fpr_difference, fpr_ratio) = spread(&false_positive_rates);
    let undefined = || Value::undefined("a group lacks positive or negative labels");
    let worst = |a: &Value, b: &Value, pick: fn(f64, f64) -> f64| match (a.value, b.value) {
        (Some(x), Some(y)) => Value::defined(pick(x, y)),
        _ => undefined(),
    };
    FairnessMetrics {
        four_fifths_holds: demographic_parity_ratio.value.map(|ratio| ratio >= 0.8),
        selection_rate,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference: if rates_defined {
            worst(&tpr_difference, &fpr_difference, f64::max)
        } else {
            undefined()
        },
        equalized_odds_ratio: if rates_defined {
            worst(&tpr_ratio, &fpr_ratio, f64::min)
        } else {
            undefined()
        },
        equal_opportunity_difference: if rates_defined {
            tpr_difference
        } else {
            undefined()
        },
        equal_opportunity_ratio: if rates_defined {
            tpr_ratio
        } else {
            undefined()
        },
    }
}
