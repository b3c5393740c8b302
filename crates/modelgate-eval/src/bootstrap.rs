//! Seeded bootstrap intervals (percentile method) for the headline metrics: ROC AUC, accuracy, and each
//! sensitive attribute's demographic parity and equalized odds differences. The generator is ChaCha8 seeded
//! from the recorded seed, whose stream is fixed across platforms and versions, so a re-run reproduces the
//! intervals exactly.

use crate::{binary_metrics, fairness_metrics};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    /// How many resamples gave a defined value.
    pub resamples: usize,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower as f64)
}

/// 95 % intervals from `resamples` resamples with replacement.
pub fn bootstrap_intervals(
    labels: &[bool],
    scores: &[f64],
    attributes: &BTreeMap<String, Vec<String>>,
    threshold: f64,
    resamples: usize,
    seed: u64,
) -> BTreeMap<String, Interval> {
    let n = labels.len();
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    if n == 0 {
        return BTreeMap::new();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picked = vec![0usize; n];
    for _ in 0..resamples {
        for slot in picked.iter_mut() {
            *slot = rng.random_range(0..n);
        }
        let sample_labels: Vec<bool> = picked.iter().map(|&i| labels[i]).collect();
        let sample_scores: Vec<f64> = picked.iter().map(|&i| scores[i]).collect();
        let metrics = binary_metrics(&sample_labels, &sample_scores, None, threshold, 10);
        for (name, value) in [
            ("roc_auc", metrics.roc_auc.value),
            ("accuracy", metrics.accuracy.value),
        ] {
            if let Some(value) = value {
                samples.entry(name.to_owned()).or_default().push(value);
            }
        }
        for (attribute, groups) in attributes {
            let sample_groups: Vec<String> = picked.iter().map(|&i| groups[i].clone()).collect();
            let fairness =
                fairness_metrics(&sample_labels, &sample_scores, &sample_groups, threshold);
            for (name, value) in [
                (
                    "demographic_parity_difference",
                    fairness.demographic_parity_difference.value,
                ),
                (
                    "equalized_odds_difference",
                    fairness.equalized_odds_difference.value,
                ),
            ] {
                if let Some(value) = value {
                    samples
                        .entry(format!("{attribute}.{name}"))
                        .or_default()
                        .push(value);
                }
            }
        }
    }
    samples
        .into_iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(name, mut values)| {
            values.sort_by(f64::total_cmp);
            let interval = Interval {
                low: percentile(&values, 0.025),
                high: percentile(&values, 0.975),
                resamples: values.len(),
            };
            (name, interval)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_reproducible_and_bracket_the_estimate() {
        let labels: Vec<bool> = (0..120).map(|i| i % 3 == 0).collect();
        let scores: Vec<f64> = (0..120)
            .map(|i| if i % 3 == 0 { 0.5 } else { 0.35 } + (i * 37 % 11) as f64 * 0.03)
            .collect();
        let groups: Vec<String> = (0..120)
            .map(|i| {
                if i % 2 == 0 {
                    "a".to_owned()
                } else {
                    "b".to_owned()
                }
            })
            .collect();
        let attributes = BTreeMap::from([("sex".to_owned(), groups)]);
        let first = bootstrap_intervals(&labels, &scores, &attributes, 0.5, 200, 42);
        let again = bootstrap_intervals(&labels, &scores, &attributes, 0.5, 200, 42);
        let other_seed = bootstrap_intervals(&labels, &scores, &attributes, 0.5, 200, 43);
        assert_eq!(first, again, "same seed, same intervals");
        assert_ne!(first, other_seed);
        let estimate = binary_metrics(&labels, &scores, None, 0.5, 10)
            .roc_auc
            .value
            .unwrap();
        let auc = &first["roc_auc"];
        assert!(
            auc.low <= estimate && estimate <= auc.high && auc.low < auc.high,
            "{auc:?} vs {estimate}"
        );
        assert_eq!(auc.resamples, 200);
        assert!(first.contains_key("sex.demographic_parity_difference"));
    }
}
