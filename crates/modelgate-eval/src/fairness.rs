//! Per-group metrics and fairlearn's fairness metrics over one sensitive attribute.

use crate::Value;
use crate::binary::{BinaryMetrics, ConfusionMatrix, Ranked};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroupMetrics {
    pub group: String,
    pub count: usize,
    /// True when the group has fewer rows than the minimum for trustworthy numbers.
    pub small: bool,
    pub metrics: BinaryMetrics,
}

/// A sensitive attribute's value for every row, as a code into its group names (sorted, so reports list
/// groups in a stable order). Codes keep a 10M-row attribute at 40 MB and make grouping an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    pub names: Vec<String>,
    pub codes: Vec<u32>,
}

impl Groups {
    /// From codes into names in any order: renumbers so that names are sorted.
    pub fn from_codes(names: Vec<String>, codes: Vec<u32>) -> Self {
        let mut by_name: Vec<u32> = (0..names.len() as u32).collect();
        by_name.sort_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        let mut renumber = vec![0u32; names.len()];
        for (new, &old) in by_name.iter().enumerate() {
            renumber[old as usize] = new as u32;
        }
        let mut names = names;
        let sorted_names = by_name
            .iter()
            .map(|&old| std::mem::take(&mut names[old as usize]))
            .collect();
        Self {
            names: sorted_names,
            codes: codes
                .into_iter()
                .map(|code| renumber[code as usize])
                .collect(),
        }
    }

    pub fn from_values(values: &[String]) -> Self {
        let mut index: HashMap<&str, u32> = HashMap::new();
        let mut names = Vec::new();
        let codes = values
            .iter()
            .map(|value| {
                *index.entry(value.as_str()).or_insert_with(|| {
                    names.push(value.clone());
                    (names.len() - 1) as u32
                })
            })
            .collect();
        Self::from_codes(names, codes)
    }

    /// Every combination of this attribute's and `other`'s groups that occurs, named `a & b`.
    pub fn intersect(&self, other: &Groups) -> Groups {
        let width = other.names.len() as u64;
        let mut index: HashMap<u64, u32> = HashMap::new();
        let mut names = Vec::new();
        let codes = self
            .codes
            .iter()
            .zip(&other.codes)
            .map(|(&a, &b)| {
                let key = u64::from(a) * width + u64::from(b);
                *index.entry(key).or_insert_with(|| {
                    names.push(format!(
                        "{} & {}",
                        self.names[a as usize], other.names[b as usize]
                    ));
                    (names.len() - 1) as u32
                })
            })
            .collect();
        Self::from_codes(names, codes)
    }
}

/// Per-group metrics as reported: each group's metrics with its size and the small-group flag.
pub fn segments(
    groups: &Groups,
    metrics: Vec<BinaryMetrics>,
    minimum_size: usize,
) -> Vec<GroupMetrics> {
    groups
        .names
        .iter()
        .zip(metrics)
        .map(|(group, metrics)| GroupMetrics {
            group: group.clone(),
            count: metrics.count,
            small: metrics.count < minimum_size,
            metrics,
        })
        .collect()
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
    let groups = Groups::from_values(groups);
    let ranked = Ranked::new(labels, scores, None);
    let metrics = ranked.grouped_metrics(
        &ranked.gather(&groups.codes),
        groups.names.len(),
        threshold,
        bins,
    );
    segments(&groups, metrics, minimum_size)
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

impl FairnessMetrics {
    /// Every between-group metric that is defined, by its name in the report.
    pub fn defined(&self) -> Vec<(&'static str, f64)> {
        crate::defined([
            (
                "demographic_parity_difference",
                &self.demographic_parity_difference,
            ),
            ("demographic_parity_ratio", &self.demographic_parity_ratio),
            ("equalized_odds_difference", &self.equalized_odds_difference),
            ("equalized_odds_ratio", &self.equalized_odds_ratio),
            (
                "equal_opportunity_difference",
                &self.equal_opportunity_difference,
            ),
            ("equal_opportunity_ratio", &self.equal_opportunity_ratio),
        ])
    }
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

/// fairlearn's between-groups metrics for predictions `score >= threshold`, each row counting with its
/// weight when there are weights.
pub fn fairness_metrics(
    labels: &[bool],
    scores: &[f64],
    groups: &[String],
    weights: Option<&[f64]>,
    threshold: f64,
) -> FairnessMetrics {
    let groups = Groups::from_values(groups);
    let mut matrices = vec![ConfusionMatrix::default(); groups.names.len()];
    for (row, ((&label, &score), &code)) in labels.iter().zip(scores).zip(&groups.codes).enumerate()
    {
        let w = weights.map_or(1.0, |weights| weights[row]);
        matrices[code as usize].add(label, score >= threshold, w);
    }
    fairness_from_confusion(&groups.names, &matrices)
}

/// fairlearn's between-groups metrics from each group's confusion matrix (weighted when the rows are).
pub fn fairness_from_confusion(names: &[String], matrices: &[ConfusionMatrix]) -> FairnessMetrics {
    let mut selection_rate = BTreeMap::new();
    let (mut true_positive_rates, mut false_positive_rates) = (Vec::new(), Vec::new());
    let mut rates_defined = true;
    for (group, matrix) in names.iter().zip(matrices) {
        let total = matrix.true_positives
            + matrix.false_positives
            + matrix.true_negatives
            + matrix.false_negatives;
        if total == 0.0 {
            continue;
        }
        selection_rate.insert(
            group.clone(),
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
