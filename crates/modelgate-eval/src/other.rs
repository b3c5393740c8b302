//! Multiclass and regression metrics with scikit-learn's definitions.

use crate::Value;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ClassMetrics {
    pub precision: Value,
    pub recall: Value,
    pub f1: Value,
    pub support: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct MulticlassMetrics {
    pub accuracy: Value,
    pub macro_f1: Value,
    pub weighted_f1: Value,
    pub per_class: BTreeMap<String, ClassMetrics>,
    pub log_loss: Value,
}

impl MulticlassMetrics {
    /// Every overall metric that is defined, by its name in the report.
    pub fn defined(&self) -> Vec<(&'static str, f64)> {
        crate::defined([
            ("accuracy", &self.accuracy),
            ("macro_f1", &self.macro_f1),
            ("weighted_f1", &self.weighted_f1),
            ("log_loss", &self.log_loss),
        ])
    }
}

/// `classes` orders the columns of `probabilities` (one row per example, summing to one); labels and
/// predictions are class names.
pub fn multiclass_metrics(
    labels: &[String],
    predicted: &[String],
    classes: &[String],
    probabilities: Option<&[Vec<f64>]>,
) -> MulticlassMetrics {
    let n = labels.len();
    let correct = labels.iter().zip(predicted).filter(|(a, b)| a == b).count();
    let mut per_class = BTreeMap::new();
    let (mut f1_sum, mut weighted_sum, mut defined) = (0.0, 0.0, 0usize);
    for class in classes {
        let tp = labels
            .iter()
            .zip(predicted)
            .filter(|(l, p)| *l == class && *p == class)
            .count() as f64;
        let predicted_count = predicted.iter().filter(|p| *p == class).count() as f64;
        let support = labels.iter().filter(|l| *l == class).count();
        // scikit-learn's zero_division default gives 0.0 for an undefined precision or recall.
        let precision = if predicted_count > 0.0 {
            tp / predicted_count
        } else {
            0.0
        };
        let recall = if support > 0 {
            tp / support as f64
        } else {
            0.0
        };
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        f1_sum += f1;
        weighted_sum += f1 * support as f64;
        defined += 1;
        per_class.insert(
            class.clone(),
            ClassMetrics {
                precision: if predicted_count > 0.0 {
                    Value::defined(precision)
                } else {
                    Value::undefined("the class is never predicted")
                },
                recall: if support > 0 {
                    Value::defined(recall)
                } else {
                    Value::undefined("the class never occurs")
                },
                f1: Value::defined(f1),
                support,
            },
        );
    }
    let log_loss = match probabilities {
        Some(rows) if n > 0 => {
            let epsilon = f64::EPSILON;
            let mut total = 0.0;
            let mut ok = true;
            for (label, row) in labels.iter().zip(rows) {
                match classes.iter().position(|class| class == label) {
                    Some(column) => total -= row[column].clamp(epsilon, 1.0 - epsilon).ln(),
                    None => ok = false,
                }
            }
            if ok {
                Value::defined(total / n as f64)
            } else {
                Value::undefined("a label is not among the classes")
            }
        }
        _ => Value::undefined("no probabilities"),
    };
    MulticlassMetrics {
        accuracy: Value::ratio(correct as f64, n as f64, "no rows"),
        macro_f1: Value::ratio(f1_sum, defined as f64, "no classes"),
        weighted_f1: Value::ratio(weighted_sum, n as f64, "no rows"),
        per_class,
        log_loss,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RegressionMetrics {
    pub mae: Value,
    pub rmse: Value,
    pub r2: Value,
    pub mape: Value,
}

impl RegressionMetrics {
    /// Every metric that is defined, by its name in the report.
    pub fn defined(&self) -> Vec<(&'static str, f64)> {
        crate::defined([
            ("mae", &self.mae),
            ("rmse", &self.rmse),
            ("r2", &self.r2),
            ("mape", &self.mape),
        ])
    }
}

pub fn regression_metrics(truth: &[f64], predicted: &[f64]) -> RegressionMetrics {
    let n = truth.len() as f64;
    if truth.is_empty() {
        let none = || Value::undefined("no rows");
        return RegressionMetrics {
            mae: none(),
            rmse: none(),
            r2: none(),
            mape: none(),
        };
    }
    let pairs = || truth.iter().zip(predicted);
    let mae = pairs().map(|(y, p)| (y - p).abs()).sum::<f64>() / n;
    let mse = pairs().map(|(y, p)| (y - p).powi(2)).sum::<f64>() / n;
    let mean = truth.iter().sum::<f64>() / n;
    let total = truth.iter().map(|y| (y - mean).powi(2)).sum::<f64>();
    let residual = mse * n;
    // scikit-learn divides by max(|y|, machine epsilon).
    let mape = pairs()
        .map(|(y, p)| (y - p).abs() / y.abs().max(f64::EPSILON))
        .sum::<f64>()
        / n;
    RegressionMetrics {
        mae: Value::defined(mae),
        rmse: Value::defined(mse.sqrt()),
        r2: if total == 0.0 {
            Value::undefined("the truth is constant")
        } else {
            Value::defined(1.0 - residual / total)
        },
        mape: Value::defined(mape),
    }
}
