//! Seeded bootstrap intervals (percentile method) for the headline metrics: ROC AUC, accuracy, and each
//! sensitive attribute's demographic parity and equalized odds differences. The generator is ChaCha8 seeded
//! from the recorded seed, whose stream is fixed across platforms and versions, so a re-run reproduces the
//! intervals exactly.

use crate::{ConfusionMatrix, Groups, Ranked, fairness_from_confusion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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

/// The headline values of one resample (`drawn[rank]`: how often the row at that rank was drawn).
fn resample_values(
    ranked: &Ranked,
    attributes: &[(String, Groups)],
    threshold: f64,
    drawn: &[f64],
    found: &mut Vec<(String, f64)>,
) {
    let metrics = ranked.headline_metrics_weighted(drawn, threshold);
    for (name, value) in [
        ("roc_auc", metrics.roc_auc.value),
        ("accuracy", metrics.accuracy.value),
    ] {
        if let Some(value) = value {
            found.push((name.to_owned(), value));
        }
    }
    for (attribute, groups) in attributes {
        let mut matrices = vec![ConfusionMatrix::default(); groups.names.len()];
        for (rank, &code) in groups.codes.iter().enumerate() {
            let w = drawn[rank];
            if w != 0.0 {
                matrices[code as usize].add(
                    ranked.labels[rank],
                    ranked.scores[rank] >= threshold,
                    w,
                );
            }
        }
        let fairness = fairness_from_confusion(&groups.names, &matrices);
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
                found.push((format!("{attribute}.{name}"), value));
            }
        }
    }
}

/// 95 % intervals from `resamples` resamples with replacement. A resample is a multiset of rows, so its
/// metrics are the metrics with each row weighted by how often it was drawn: every resample is then one
/// pass over the already ranked rows instead of a new sort. Resample `r` draws from its own ChaCha8 stream
/// (`seed`, stream `r`), so resamples run on every core and the intervals do not depend on how many there
/// are. `attributes` hold group codes in rank order. `progress` hears how many resamples are done and
/// answers whether to go on.
pub fn bootstrap_intervals(
    ranked: &Ranked,
    attributes: &[(String, Groups)],
    threshold: f64,
    resamples: usize,
    seed: u64,
    progress: &(dyn Fn(usize) -> bool + Sync),
) -> BTreeMap<String, Interval> {
    let workers = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    intervals_on(
        ranked, attributes, threshold, resamples, seed, progress, workers,
    )
}

fn intervals_on(
    ranked: &Ranked,
    attributes: &[(String, Groups)],
    threshold: f64,
    resamples: usize,
    seed: u64,
    progress: &(dyn Fn(usize) -> bool + Sync),
    workers: usize,
) -> BTreeMap<String, Interval> {
    let n = ranked.labels.len();
    if n == 0 || resamples == 0 {
        return BTreeMap::new();
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let per_worker: Vec<Vec<(String, f64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.min(resamples))
            .map(|_| {
                scope.spawn(|| {
                    let mut found = Vec::new();
                    let mut drawn = vec![0f64; n];
                    loop {
                        let resample = next.fetch_add(1, Ordering::Relaxed);
                        if resample >= resamples || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if !progress(resample) {
                            stop.store(true, Ordering::Relaxed);
                            break;
                        }
                        let mut rng = ChaCha8Rng::seed_from_u64(seed);
                        rng.set_stream(resample as u64);
                        drawn.fill(0.0);
                        for _ in 0..n {
                            drawn[rng.random_range(0..n)] += 1.0;
                        }
                        // A drawn row counts with its own weight as many times as it was drawn.
                        if let Some(weights) = &ranked.weights {
                            for (count, weight) in drawn.iter_mut().zip(weights) {
                                *count *= weight;
                            }
                        }
                        resample_values(ranked, attributes, threshold, &drawn, &mut found);
                    }
                    found
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (name, value) in per_worker.into_iter().flatten() {
        samples.entry(name).or_default().push(value);
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
        let ranked = Ranked::new(&labels, &scores, None);
        let groups = Groups::from_values(&groups);
        let attributes = [(
            "sex".to_owned(),
            Groups {
                codes: ranked.gather(&groups.codes),
                names: groups.names,
            },
        )];
        let run = |seed| bootstrap_intervals(&ranked, &attributes, 0.5, 200, seed, &|_| true);
        let (first, again, other_seed) = (run(42), run(42), run(43));
        assert_eq!(first, again, "same seed, same intervals");
        for workers in [1, 3] {
            let on = intervals_on(&ranked, &attributes, 0.5, 200, 42, &|_| true, workers);
            assert_eq!(on, first, "{workers} workers draw the same resamples");
        }
        assert_ne!(first, other_seed);
        let estimate = crate::binary_metrics(&labels, &scores, None, 0.5, 10)
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
