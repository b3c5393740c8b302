//! Binary classification metrics, weighted or not, at a decision threshold on the score.

use crate::Value;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ConfusionMatrix {
    pub true_positives: f64,
    pub false_positives: f64,
    pub true_negatives: f64,
    pub false_negatives: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub count: f64,
    pub mean_score: Option<f64>,
    pub positive_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BinaryMetrics {
    pub count: usize,
    pub accuracy: Value,
    pub balanced_accuracy: Value,
    pub precision: Value,
    pub recall: Value,
    pub specificity: Value,
    pub f1: Value,
    pub roc_auc: Value,
    pub average_precision: Value,
    pub log_loss: Value,
    pub brier_score: Value,
    pub selection_rate: Value,
    pub expected_calibration_error: Value,
    pub confusion_matrix: ConfusionMatrix,
    pub reliability: Vec<ReliabilityBin>,
}

fn weight(weights: Option<&[f64]>, index: usize) -> f64 {
    weights.map_or(1.0, |weights| weights[index])
}

/// The confusion matrix of `score >= threshold` against the labels.
pub fn confusion(
    labels: &[bool],
    scores: &[f64],
    weights: Option<&[f64]>,
    threshold: f64,
) -> ConfusionMatrix {
    let mut matrix = ConfusionMatrix {
        true_positives: 0.0,
        false_positives: 0.0,
        true_negatives: 0.0,
        false_negatives: 0.0,
    };
    for (index, (&label, &score)) in labels.iter().zip(scores).enumerate() {
        let w = weight(weights, index);
        match (label, score >= threshold) {
            (true, true) => matrix.true_positives += w,
            (false, true) => matrix.false_positives += w,
            (false, false) => matrix.true_negatives += w,
            (true, false) => matrix.false_negatives += w,
        }
    }
    matrix
}

/// Points of the ROC or precision-recall curve: cumulative (false positives, true positives) after each
/// distinct score, from the highest down — ties form one step, as in scikit-learn's `_binary_clf_curve`.
fn cumulative_counts(labels: &[bool], scores: &[f64], weights: Option<&[f64]>) -> Vec<(f64, f64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Unstable is enough: rows with equal scores form one step, whatever their order.
    order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut points = Vec::new();
    let (mut false_positives, mut true_positives) = (0.0, 0.0);
    for (position, &index) in order.iter().enumerate() {
        let w = weight(weights, index);
        if labels[index] {
            true_positives += w
        } else {
            false_positives += w
        }
        let last_of_tie = order
            .get(position + 1)
            .is_none_or(|&next| scores[next] != scores[index]);
        if last_of_tie {
            points.push((false_positives, true_positives));
        }
    }
    points
}

/// Area under the ROC curve (trapezoids between distinct thresholds).
pub fn roc_auc(labels: &[bool], scores: &[f64], weights: Option<&[f64]>) -> Value {
    roc_auc_of_curve(&cumulative_counts(labels, scores, weights))
}

fn roc_auc_of_curve(points: &[(f64, f64)]) -> Value {
    let Some(&(negatives, positives)) = points.last() else {
        return Value::undefined("no rows");
    };
    if positives == 0.0 || negatives == 0.0 {
        return Value::undefined("ROC AUC needs both classes; only one is present");
    }
    let mut area = 0.0;
    let (mut previous_fpr, mut previous_tpr) = (0.0, 0.0);
    for &(false_positives, true_positives) in points {
        let (fpr, tpr) = (false_positives / negatives, true_positives / positives);
        area += (fpr - previous_fpr) * (tpr + previous_tpr) / 2.0;
        previous_fpr = fpr;
        previous_tpr = tpr;
    }
    Value::defined(area)
}

/// Average precision: Σ (Rₙ − Rₙ₋₁) Pₙ over distinct thresholds, without interpolation (scikit-learn).
pub fn average_precision(labels: &[bool], scores: &[f64], weights: Option<&[f64]>) -> Value {
    average_precision_of_curve(&cumulative_counts(labels, scores, weights))
}

fn average_precision_of_curve(points: &[(f64, f64)]) -> Value {
    let Some(&(_, positives)) = points.last() else {
        return Value::undefined("no rows");
    };
    if positives == 0.0 {
        return Value::undefined("average precision needs positive labels; there are none");
    }
    let mut total = 0.0;
    let mut previous_recall = 0.0;
    for &(false_positives, true_positives) in points {
        let recall = true_positives / positives;
        let precision = if true_positives + false_positives > 0.0 {
            true_positives / (true_positives + false_positives)
        } else {
            0.0
        };
        total += (recall - previous_recall) * precision;
        previous_recall = recall;
    }
    Value::defined(total)
}

/// All binary metrics at `threshold`; ECE over `bins` equal-width bins of the score.
pub fn binary_metrics(
    labels: &[bool],
    scores: &[f64],
    weights: Option<&[f64]>,
    threshold: f64,
    bins: usize,
) -> BinaryMetrics {
    let matrix = confusion(labels, scores, weights, threshold);
    let ConfusionMatrix {
        true_positives: tp,
        false_positives: fp,
        true_negatives: tn,
        false_negatives: fn_,
    } = matrix;
    let total = tp + fp + tn + fn_;
    let precision = Value::ratio(tp, tp + fp, "no positive predictions");
    let recall = Value::ratio(tp, tp + fn_, "no positive labels");
    let specificity = Value::ratio(tn, tn + fp, "no negative labels");
    let f1 = match (precision.value, recall.value) {
        (Some(p), Some(r)) if p + r > 0.0 => Value::defined(2.0 * p * r / (p + r)),
        (Some(_), Some(_)) => Value::defined(0.0),
        _ => Value::undefined("precision or recall is undefined"),
    };
    let balanced_accuracy = match (recall.value, specificity.value) {
        (Some(r), Some(s)) => Value::defined((r + s) / 2.0),
        _ => Value::undefined("balanced accuracy needs both classes"),
    };
    // scikit-learn clips probabilities to [eps, 1 - eps] with eps the float64 machine epsilon.
    let epsilon = f64::EPSILON;
    let mut log_loss = 0.0;
    let mut brier = 0.0;
    for (index, (&label, &score)) in labels.iter().zip(scores).enumerate() {
        let w = weight(weights, index);
        let p = score.clamp(epsilon, 1.0 - epsilon);
        log_loss -= w * if label { p.ln() } else { (1.0 - p).ln() };
        let y = if label { 1.0 } else { 0.0 };
        brier += w * (score - y) * (score - y);
    }
    // One pass over the rows into equal-width bins [b/bins, (b+1)/bins), the last one closed.
    let edge = |bin: usize| bin as f64 / bins as f64;
    let mut sums = vec![(0.0, 0.0, 0.0); bins];
    for (index, (&label, &score)) in labels.iter().zip(scores).enumerate() {
        if bins == 0 || !(0.0..=1.0).contains(&score) {
            continue;
        }
        // The product can round across an edge; settle the bin with the same comparisons as the edges.
        let mut bin = ((score * bins as f64) as usize).min(bins - 1);
        while bin > 0 && score < edge(bin) {
            bin -= 1;
        }
        while bin + 1 < bins && score >= edge(bin + 1) {
            bin += 1;
        }
        let w = weight(weights, index);
        let (count, score_sum, positive_sum) = &mut sums[bin];
        *count += w;
        *score_sum += w * score;
        *positive_sum += if label { w } else { 0.0 };
    }
    let mut reliability = Vec::with_capacity(bins);
    let mut calibration_error = 0.0;
    for (bin, &(count, score_sum, positive_sum)) in sums.iter().enumerate() {
        let (lower, upper) = (edge(bin), edge(bin + 1));
        let (mean_score, positive_rate) = if count > 0.0 {
            (Some(score_sum / count), Some(positive_sum / count))
        } else {
            (None, None)
        };
        if let (Some(mean), Some(rate)) = (mean_score, positive_rate) {
            calibration_error += count / total * (rate - mean).abs();
        }
        reliability.push(ReliabilityBin {
            lower,
            upper,
            count,
            mean_score,
            positive_rate,
        });
    }
    let curve = cumulative_counts(labels, scores, weights);
    BinaryMetrics {
        count: labels.len(),
        accuracy: Value::ratio(tp + tn, total, "no rows"),
        balanced_accuracy,
        precision,
        recall,
        specificity,
        f1,
        roc_auc: roc_auc_of_curve(&curve),
        average_precision: average_precision_of_curve(&curve),
        log_loss: Value::ratio(log_loss, total, "no rows"),
        brier_score: Value::ratio(brier, total, "no rows"),
        selection_rate: Value::ratio(tp + fp, total, "no rows"),
        expected_calibration_error: if total > 0.0 {
            Value::defined(calibration_error)
        } else {
            Value::undefined("no rows")
        },
        confusion_matrix: matrix,
        reliability,
    }
}
