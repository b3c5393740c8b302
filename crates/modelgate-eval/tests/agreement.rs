//! The kernels agree with scikit-learn and fairlearn to 1e-9 relative on the fixtures in `fixtures/`
//! (made by `fixtures/make_fixtures.py`; the tests need no Python).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelgate_eval::{Ranked, Value, binary_metrics, fairness_metrics, per_group};
use serde_json::Value as Json;

fn fixtures() -> Json {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/binary.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn close(name: &str, case: &str, actual: &Value, expected: f64) {
    let value = actual
        .value
        .unwrap_or_else(|| panic!("{case}: {name} undefined: {:?}", actual.reason));
    let tolerance = 1e-9 * expected.abs().max(1e-12);
    assert!(
        (value - expected).abs() <= tolerance,
        "{case}: {name} = {value}, scikit-learn/fairlearn say {expected}"
    );
}

#[test]
fn binary_metrics_match_scikit_learn() {
    let document = fixtures();
    for case in document["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let labels: Vec<bool> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        let scores: Vec<f64> = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let weights: Option<Vec<f64>> = case["weights"]
            .as_array()
            .map(|w| w.iter().map(|v| v.as_f64().unwrap()).collect());
        let metrics = binary_metrics(
            &labels,
            &scores,
            weights.as_deref(),
            case["threshold"].as_f64().unwrap(),
            10,
        );
        let expected = &case["expected"];
        for (metric, actual) in [
            ("accuracy", &metrics.accuracy),
            ("balanced_accuracy", &metrics.balanced_accuracy),
            ("precision", &metrics.precision),
            ("recall", &metrics.recall),
            ("specificity", &metrics.specificity),
            ("f1", &metrics.f1),
            ("roc_auc", &metrics.roc_auc),
            ("average_precision", &metrics.average_precision),
            ("log_loss", &metrics.log_loss),
            ("brier_score", &metrics.brier_score),
        ] {
            close(metric, name, actual, expected[metric].as_f64().unwrap());
        }
    }
}

/// The kept ROC curve runs from (0, 0) to (1, 1), never falls, and its trapezoid area is the ROC AUC:
/// exactly when no point was thinned out, within the thinning's spacing otherwise.
#[test]
fn the_roc_curve_agrees_with_the_roc_auc() {
    let document = fixtures();
    for case in document["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let labels: Vec<bool> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        let scores: Vec<f64> = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let weights: Option<Vec<f64>> = case["weights"]
            .as_array()
            .map(|w| w.iter().map(|v| v.as_f64().unwrap()).collect());
        let Some(auc) = binary_metrics(&labels, &scores, weights.as_deref(), 0.5, 10)
            .roc_auc
            .value
        else {
            assert!(
                Ranked::new(&labels, &scores, weights.as_deref())
                    .roc_curve(100)
                    .is_empty(),
                "{name}"
            );
            continue;
        };
        let ranked = Ranked::new(&labels, &scores, weights.as_deref());
        for (max_points, tolerance) in [(usize::MAX, 1e-12), (20, 1.0 / 20.0)] {
            let curve = ranked.roc_curve(max_points);
            assert_eq!(curve.first(), Some(&[0.0, 0.0]), "{name}");
            assert_eq!(curve.last(), Some(&[1.0, 1.0]), "{name}");
            assert!(
                curve
                    .windows(2)
                    .all(|pair| pair[1][0] >= pair[0][0] && pair[1][1] >= pair[0][1]),
                "{name}"
            );
            let area: f64 = curve
                .windows(2)
                .map(|pair| (pair[1][0] - pair[0][0]) * (pair[1][1] + pair[0][1]) / 2.0)
                .sum();
            assert!(
                (area - auc).abs() <= tolerance,
                "{name} with {max_points} points: area {area}, ROC AUC {auc}"
            );
            if max_points == 20 {
                assert!(curve.len() <= 2 * 20 + 2, "{name}: {} points", curve.len());
            }
        }
    }
}

#[test]
fn fairness_metrics_match_fairlearn() {
    let document = fixtures();
    let mut checked = 0;
    for case in document["cases"].as_array().unwrap() {
        let expected = &case["fairness"];
        if expected.as_object().is_none_or(|fields| fields.is_empty()) {
            continue;
        }
        let name = case["name"].as_str().unwrap();
        let labels: Vec<bool> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        let scores: Vec<f64> = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let groups: Vec<String> = case["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let weights: Option<Vec<f64>> = case["weights"]
            .as_array()
            .map(|w| w.iter().map(|v| v.as_f64().unwrap()).collect());
        let fairness = fairness_metrics(
            &labels,
            &scores,
            &groups,
            weights.as_deref(),
            case["threshold"].as_f64().unwrap(),
        );
        for (group, rate) in expected["selection_rate"].as_object().unwrap() {
            close(
                &format!("selection_rate[{group}]"),
                name,
                &Value::defined(fairness.selection_rate[group]),
                rate.as_f64().unwrap(),
            );
        }
        for (metric, actual) in [
            (
                "demographic_parity_difference",
                &fairness.demographic_parity_difference,
            ),
            (
                "demographic_parity_ratio",
                &fairness.demographic_parity_ratio,
            ),
            (
                "equalized_odds_difference",
                &fairness.equalized_odds_difference,
            ),
            ("equalized_odds_ratio", &fairness.equalized_odds_ratio),
            (
                "equal_opportunity_difference",
                &fairness.equal_opportunity_difference,
            ),
            ("equal_opportunity_ratio", &fairness.equal_opportunity_ratio),
        ] {
            close(metric, name, actual, expected[metric].as_f64().unwrap());
        }
        assert_eq!(
            fairness.four_fifths_holds,
            Some(expected["demographic_parity_ratio"].as_f64().unwrap() >= 0.8)
        );
        checked += 1;
    }
    assert!(
        checked >= 3,
        "the fixtures hold fairness cases, one of them weighted"
    );
}

#[test]
fn undefined_metrics_are_none_with_a_reason_and_small_groups_are_flagged() {
    let labels = [true, true, false, true];
    let scores = [0.9, 0.8, 0.3, 0.7];
    let groups: Vec<String> = ["x", "x", "y", "x"]
        .iter()
        .map(|g| (*g).to_owned())
        .collect();
    let by_group = per_group(&labels, &scores, &groups, 0.5, 10, 30);
    let x = by_group.iter().find(|group| group.group == "x").unwrap();
    assert_eq!(x.count, 3);
    assert!(x.small);
    assert_eq!(x.metrics.roc_auc.value, None);
    assert!(
        x.metrics
            .roc_auc
            .reason
            .as_deref()
            .unwrap()
            .contains("both classes")
    );
    assert_eq!(x.metrics.specificity.value, None);
    let fairness = fairness_metrics(&labels, &scores, &groups, None, 0.5);
    assert_eq!(
        fairness.equalized_odds_difference.value, None,
        "group y has no positives"
    );
    assert!(fairness.demographic_parity_difference.value.is_some());
    let empty = modelgate_eval::binary_metrics(&[], &[], None, 0.5, 10);
    assert_eq!(empty.accuracy.value, None);
    assert!(empty.log_loss.value.is_none() && empty.roc_auc.value.is_none());
}

#[test]
fn calibration_error_by_hand() {
    // Two bins populated: scores 0.15 (labels 1 of 2) and 0.85 (labels 2 of 2).
    let labels = [true, false, true, true];
    let scores = [0.15, 0.15, 0.85, 0.85];
    let metrics = binary_metrics(&labels, &scores, None, 0.5, 10);
    let expected = 0.5 * (0.5f64 - 0.15).abs() + 0.5 * (1.0f64 - 0.85).abs();
    assert!((metrics.expected_calibration_error.value.unwrap() - expected).abs() < 1e-12);
    assert_eq!(
        metrics
            .reliability
            .iter()
            .filter(|bin| bin.count > 0.0)
            .count(),
        2
    );
    assert_eq!(metrics.confusion_matrix.true_positives, 2.0);
}

fn other_fixtures() -> Json {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/other.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn strings(value: &Json) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn numbers(value: &Json) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn multiclass_metrics_match_scikit_learn() {
    let document = other_fixtures();
    for case in document["multiclass"].as_array().unwrap() {
        let classes = strings(&case["classes"]);
        let probabilities: Vec<Vec<f64>> = case["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(numbers)
            .collect();
        let metrics = modelgate_eval::other::multiclass_metrics(
            &strings(&case["labels"]),
            &strings(&case["predicted"]),
            &classes,
            Some(&probabilities),
        );
        let expected = &case["expected"];
        close(
            "accuracy",
            "multiclass",
            &metrics.accuracy,
            expected["accuracy"].as_f64().unwrap(),
        );
        close(
            "macro_f1",
            "multiclass",
            &metrics.macro_f1,
            expected["macro_f1"].as_f64().unwrap(),
        );
        close(
            "weighted_f1",
            "multiclass",
            &metrics.weighted_f1,
            expected["weighted_f1"].as_f64().unwrap(),
        );
        close(
            "log_loss",
            "multiclass",
            &metrics.log_loss,
            expected["log_loss"].as_f64().unwrap(),
        );
        for class in &classes {
            close(
                "precision",
                class,
                &metrics.per_class[class].precision,
                expected["precision"][class].as_f64().unwrap(),
            );
            close(
                "recall",
                class,
                &metrics.per_class[class].recall,
                expected["recall"][class].as_f64().unwrap(),
            );
        }
    }
}

#[test]
fn regression_metrics_match_scikit_learn() {
    let document = other_fixtures();
    for case in document["regression"].as_array().unwrap() {
        let metrics = modelgate_eval::other::regression_metrics(
            &numbers(&case["truth"]),
            &numbers(&case["predicted"]),
        );
        let expected = &case["expected"];
        for (name, actual) in [
            ("mae", &metrics.mae),
            ("rmse", &metrics.rmse),
            ("r2", &metrics.r2),
            ("mape", &metrics.mape),
        ] {
            close(name, "regression", actual, expected[name].as_f64().unwrap());
        }
    }
    let constant = modelgate_eval::other::regression_metrics(&[2.0, 2.0], &[1.0, 3.0]);
    assert_eq!(constant.r2.value, None);
}
