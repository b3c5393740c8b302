//! Robustness of a model on a dataset: how its decisions and headline metrics move when the inputs get
//! seeded Gaussian noise (scaled by each feature's standard deviation), and when each feature in turn is
//! replaced by its median. The model runs elsewhere; this module makes the perturbed inputs and summarises.

use crate::binary_metrics;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// How one perturbation changed the model's behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Shift {
    /// Share of rows whose decision (`score >= threshold`) changed.
    pub flip_rate: f64,
    pub accuracy_delta: Option<f64>,
    pub roc_auc_delta: Option<f64>,
}

/// Per-column standard deviation and median of row-major `rows` with `features` columns.
pub fn column_statistics(rows: &[f32], features: usize) -> (Vec<f64>, Vec<f64>) {
    let count = rows.len() / features.max(1);
    let mut stds = Vec::with_capacity(features);
    let mut medians = Vec::with_capacity(features);
    for column in 0..features {
        let mut values: Vec<f64> = (0..count)
            .map(|row| f64::from(rows[row * features + column]))
            .collect();
        let mean = values.iter().sum::<f64>() / count.max(1) as f64;
        let variance =
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count.max(2) - 1) as f64;
        stds.push(variance.sqrt());
        values.sort_by(f64::total_cmp);
        let median = if count == 0 {
            0.0
        } else if count % 2 == 1 {
            values[count / 2]
        } else {
            (values[count / 2 - 1] + values[count / 2]) / 2.0
        };
        medians.push(median);
    }
    (stds, medians)
}

/// The rows with Gaussian noise of `level` × each column's standard deviation added, from `seed`.
pub fn with_noise(rows: &[f32], features: usize, stds: &[f64], level: f64, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rows.iter()
        .enumerate()
        .map(|(index, value)| {
            let sigma = level * stds[index % features];
            (f64::from(*value) + sigma * standard_normal(&mut rng)) as f32
        })
        .collect()
}

/// A standard normal draw (Box–Muller), so the noise depends only on the seeded ChaCha stream.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    use rand::Rng;
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The rows with column `column` set to `value` everywhere.
pub fn with_column_set(rows: &[f32], features: usize, column: usize, value: f64) -> Vec<f32> {
    rows.iter()
        .enumerate()
        .map(|(index, original)| {
            if index % features == column {
                value as f32
            } else {
                *original
            }
        })
        .collect()
}

pub fn shift(labels: &[bool], baseline: &[f64], perturbed: &[f64], threshold: f64) -> Shift {
    let flips = baseline
        .iter()
        .zip(perturbed)
        .filter(|(a, b)| (**a >= threshold) != (**b >= threshold))
        .count();
    let before = binary_metrics(labels, baseline, None, threshold, 10);
    let after = binary_metrics(labels, perturbed, None, threshold, 10);
    let delta = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
    Shift {
        flip_rate: flips as f64 / baseline.len().max(1) as f64,
        accuracy_delta: delta(before.accuracy.value, after.accuracy.value),
        roc_auc_delta: delta(before.roc_auc.value, after.roc_auc.value),
    }
}

/// Noise levels, as multiples of each feature's standard deviation, at which robustness is measured.
pub const NOISE_LEVELS: [f64; 3] = [0.05, 0.1, 0.2];

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct NoiseShift<S = Shift> {
    pub level: f64,
    #[serde(flatten)]
    pub shift: S,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AblationShift<S = Shift> {
    pub feature: String,
    #[serde(flatten)]
    pub shift: S,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RobustnessReport<S = Shift> {
    pub noise: Vec<NoiseShift<S>>,
    pub feature_ablation: Vec<AblationShift<S>>,
    /// The worst share of changed decisions under noise (classifiers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_noise_flip_rate: Option<f64>,
}

/// How a multiclass classifier moved under one perturbation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ClassShift {
    /// Share of rows whose predicted class changed.
    pub flip_rate: f64,
    pub accuracy_delta: Option<f64>,
    pub macro_f1_delta: Option<f64>,
}

/// How a regressor moved under one perturbation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ValueShift {
    /// Mean absolute change of the prediction.
    pub mean_absolute_change: f64,
    pub mae_delta: Option<f64>,
    pub rmse_delta: Option<f64>,
    pub r2_delta: Option<f64>,
}

fn delta(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    before.zip(after).map(|(before, after)| after - before)
}

/// A multiclass classifier's shift: `labels` are the true classes, `baseline` and `perturbed` its
/// predictions before and after.
pub fn class_shift(
    labels: &[String],
    classes: &[String],
    baseline: &[String],
    perturbed: &[String],
) -> ClassShift {
    let flips = baseline
        .iter()
        .zip(perturbed)
        .filter(|(a, b)| a != b)
        .count();
    let before = crate::other::multiclass_metrics(labels, baseline, classes, None);
    let after = crate::other::multiclass_metrics(labels, perturbed, classes, None);
    ClassShift {
        flip_rate: flips as f64 / baseline.len().max(1) as f64,
        accuracy_delta: delta(before.accuracy.value, after.accuracy.value),
        macro_f1_delta: delta(before.macro_f1.value, after.macro_f1.value),
    }
}

/// A regressor's shift: `truth` the true values, `baseline` and `perturbed` its predictions.
pub fn value_shift(truth: &[f64], baseline: &[f64], perturbed: &[f64]) -> ValueShift {
    let change = baseline
        .iter()
        .zip(perturbed)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        / baseline.len().max(1) as f64;
    let before = crate::other::regression_metrics(truth, baseline);
    let after = crate::other::regression_metrics(truth, perturbed);
    ValueShift {
        mean_absolute_change: change,
        mae_delta: delta(before.mae.value, after.mae.value),
        rmse_delta: delta(before.rmse.value, after.rmse.value),
        r2_delta: delta(before.r2.value, after.r2.value),
    }
}

/// Reruns a model on perturbed inputs: seeded Gaussian noise on every feature (one draw scaled per level,
/// so the levels differ only in size), then each feature in turn replaced by its median (a crude
/// importance: what the model loses without it). `measure` runs the model on row-major rows and says how
/// it moved; `flip_rate` reads the share of changed decisions from that, when the task has decisions.
pub fn perturbation_report<S, E>(
    rows: &[f32],
    feature_names: &[String],
    seed: u64,
    mut measure: impl FnMut(&[f32]) -> Result<S, E>,
    flip_rate: impl Fn(&S) -> Option<f64>,
) -> Result<RobustnessReport<S>, E> {
    let features = feature_names.len();
    let (stds, medians) = column_statistics(rows, features);
    let mut noise = Vec::with_capacity(NOISE_LEVELS.len());
    for level in NOISE_LEVELS {
        let shift = measure(&with_noise(rows, features, &stds, level, seed))?;
        noise.push(NoiseShift { level, shift });
    }
    let mut feature_ablation = Vec::with_capacity(features);
    for (column, name) in feature_names.iter().enumerate() {
        let shift = measure(&with_column_set(rows, features, column, medians[column]))?;
        feature_ablation.push(AblationShift {
            feature: name.clone(),
            shift,
        });
    }
    let max_noise_flip_rate = noise
        .iter()
        .map(|entry| flip_rate(&entry.shift))
        .reduce(|a, b| a.zip(b).map(|(a, b)| a.max(b)))
        .flatten();
    Ok(RobustnessReport {
        noise,
        feature_ablation,
        max_noise_flip_rate,
    })
}

/// The binary classifier's report: decision flips at `threshold` and the change in accuracy and ROC AUC.
/// `score` runs the model on row-major rows and gives the positive-class probability.
pub fn robustness_report<E>(
    rows: &[f32],
    feature_names: &[String],
    labels: &[bool],
    baseline: &[f64],
    threshold: f64,
    seed: u64,
    mut score: impl FnMut(&[f32]) -> Result<Vec<f64>, E>,
) -> Result<RobustnessReport, E> {
    perturbation_report(
        rows,
        feature_names,
        seed,
        |rows| Ok(shift(labels, baseline, &score(rows)?, threshold)),
        |shift| Some(shift.flip_rate),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_finds_the_feature_the_model_reads() {
        // A "model" that reads only the first of two features.
        let rows: Vec<f32> = (0..40).flat_map(|i| [i as f32, (i % 3) as f32]).collect();
        let labels: Vec<bool> = (0..40).map(|i| i >= 20).collect();
        let model = |rows: &[f32]| -> Result<Vec<f64>, ()> {
            Ok(rows.chunks(2).map(|row| f64::from(row[0]) / 40.0).collect())
        };
        let baseline = model(&rows).unwrap();
        let names = ["reads".to_owned(), "ignored".to_owned()];
        let report = robustness_report(&rows, &names, &labels, &baseline, 0.5, 3, model).unwrap();
        assert_eq!(report.noise.len(), NOISE_LEVELS.len());
        assert_eq!(report.feature_ablation[0].feature, "reads");
        assert!(
            report.feature_ablation[0].shift.flip_rate > 0.4,
            "{report:?}"
        );
        assert_eq!(report.feature_ablation[1].shift.flip_rate, 0.0);
        assert_eq!(report.feature_ablation[1].shift.accuracy_delta, Some(0.0));
        assert_eq!(
            report.max_noise_flip_rate,
            Some(
                report
                    .noise
                    .iter()
                    .map(|n| n.shift.flip_rate)
                    .fold(0.0, f64::max)
            )
        );
        let failing = robustness_report(&rows, &names, &labels, &baseline, 0.5, 3, |_| Err("boom"));
        assert_eq!(failing.unwrap_err(), "boom");
    }

    #[test]
    fn perturbations_are_seeded_and_summaries_count_flips() {
        let rows = [1.0f32, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0];
        let (stds, medians) = column_statistics(&rows, 2);
        assert!((stds[0] - 1.2909944487358056).abs() < 1e-12);
        assert_eq!(medians, [2.5, 25.0]);
        let noisy = with_noise(&rows, 2, &stds, 0.1, 9);
        assert_eq!(
            noisy,
            with_noise(&rows, 2, &stds, 0.1, 9),
            "same seed, same noise"
        );
        assert_ne!(noisy, rows.to_vec());
        assert_eq!(
            with_column_set(&rows, 2, 1, 25.0),
            [1.0, 25.0, 2.0, 25.0, 3.0, 25.0, 4.0, 25.0]
        );
        let labels = [true, false, true, false];
        let summary = shift(&labels, &[0.9, 0.1, 0.8, 0.2], &[0.9, 0.6, 0.3, 0.2], 0.5);
        assert_eq!(summary.flip_rate, 0.5);
        assert_eq!(summary.accuracy_delta, Some(-0.5));
    }

    #[test]
    fn multiclass_and_regression_shifts_compare_predictions_before_and_after() {
        let classes = ["a".to_owned(), "b".to_owned()];
        let labels = ["a", "b", "a", "b"].map(str::to_owned);
        let baseline = ["a", "b", "a", "a"].map(str::to_owned);
        let perturbed = ["a", "a", "a", "a"].map(str::to_owned);
        let shift = class_shift(&labels, &classes, &baseline, &perturbed);
        assert_eq!(shift.flip_rate, 0.25);
        assert_eq!(shift.accuracy_delta, Some(-0.25));
        let values = value_shift(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.5], &[1.5, 2.0, 3.5]);
        assert!((values.mean_absolute_change - 0.5 / 3.0).abs() < 1e-12);
        assert!((values.mae_delta.unwrap() - 0.5 / 3.0).abs() < 1e-12);
        // A regressor has no decisions: its report has no flip rate.
        let rows: Vec<f32> = (0..20).flat_map(|i| [i as f32, 1.0]).collect();
        let names = ["x".to_owned(), "constant".to_owned()];
        let truth: Vec<f64> = (0..20).map(f64::from).collect();
        let report = perturbation_report(
            &rows,
            &names,
            5,
            |rows| {
                let predicted: Vec<f64> = rows.chunks(2).map(|row| f64::from(row[0])).collect();
                Ok::<_, ()>(value_shift(&truth, &truth, &predicted))
            },
            |_| None,
        )
        .unwrap();
        assert_eq!(report.max_noise_flip_rate, None);
        assert!(report.feature_ablation[0].shift.mean_absolute_change > 1.0);
        assert_eq!(report.feature_ablation[1].shift.mean_absolute_change, 0.0);
    }
}
