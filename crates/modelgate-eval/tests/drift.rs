//! The drift kernels agree with Evidently 0.7's stat tests (PSI, Jensen–Shannon, normed Wasserstein) and
//! with scipy (ks_2samp, chi2_contingency without correction, kstwo.sf, chi2.sf) on `fixtures/drift.json`,
//! made by `fixtures/make_drift_fixtures.py`; the tests need no Python.
//!
//! Tolerances: statistics to 1e-9 relative (1e-12 absolute near zero). P-values to 1e-9 relative where
//! scipy's value exceeds 1e-300, and 1e-300 absolute below: under that a p-value is a subnormal or zero
//! in both, and its digits say nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelgate_eval::Value;
use modelgate_eval::dataset::{Column, Table};
use modelgate_eval::drift::{DriftSettings, FeatureDrift, Reference};
use serde_json::Value as Json;

fn fixtures() -> Json {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/drift.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The largest relative error seen per kind of number, printed with `--nocapture`.
static WORST: std::sync::Mutex<Vec<(String, f64)>> = std::sync::Mutex::new(Vec::new());

fn record(what: &str, actual: f64, expected: f64) {
    if expected.abs() <= 1e-300 {
        return;
    }
    let error = ((actual - expected) / expected).abs();
    let mut worst = WORST.lock().unwrap();
    match worst.iter_mut().find(|(name, _)| name == what) {
        Some((_, largest)) => *largest = largest.max(error),
        None => worst.push((what.to_owned(), error)),
    }
}

fn print_worst() {
    for (what, error) in WORST.lock().unwrap().iter() {
        eprintln!("largest relative error of {what}: {error:.1e}");
    }
}

fn close(what: &str, actual: f64, expected: f64, pvalue: bool) -> Result<(), String> {
    record(what, actual, expected);
    let tolerance = if pvalue {
        (1e-9 * expected.abs()).max(1e-300)
    } else {
        (1e-9 * expected.abs()).max(1e-12)
    };
    if (actual - expected).abs() <= tolerance && actual.is_finite() {
        Ok(())
    } else {
        Err(format!(
            "{what} = {actual:e}, expected {expected:e} (relative error {:e})",
            ((actual - expected) / expected).abs()
        ))
    }
}

fn defined(value: &Value) -> f64 {
    value
        .value
        .unwrap_or_else(|| panic!("undefined: {:?}", value.reason))
}

fn column(kind: &str, cells: &Json) -> Column {
    let cells = cells.as_array().unwrap();
    match kind {
        "numeric" => Column::Number(
            cells
                .iter()
                .map(|cell| cell.as_f64().unwrap_or(f64::NAN))
                .collect(),
        ),
        _ => Column::from_text(cells.iter().map(|cell| cell.as_str())),
    }
}

fn table(kind: &str, cells: &Json) -> Table {
    Table::from_columns(vec![("feature".to_owned(), column(kind, cells))]).unwrap()
}

#[test]
fn every_case_matches_evidently_and_scipy() {
    let document = fixtures();
    let mut problems = Vec::new();
    for case in document["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let kind = case["kind"].as_str().unwrap();
        let expected = &case["expected"];
        let reference = Reference::new(&table(kind, &case["reference"]), &[]).unwrap();
        let report = reference
            .compare(&table(kind, &case["current"]), &DriftSettings::default())
            .unwrap();
        let mut check = |field: &str, value: &Value, pvalue: bool| {
            if let Err(problem) = close(
                field,
                defined(value),
                expected[field].as_f64().unwrap(),
                pvalue,
            ) {
                problems.push(format!("{name}: {problem}"));
            }
        };
        match &report.features["feature"] {
            FeatureDrift::Numeric(drift) => {
                check("psi", &drift.psi, false);
                check("jensen_shannon", &drift.jensen_shannon, false);
                check("wasserstein_normed", &drift.wasserstein_normed, false);
                check("ks_statistic", &drift.ks_statistic, false);
                check("ks_pvalue", &drift.ks_pvalue, true);
                assert_eq!(
                    drift.reference_distinct as u64,
                    expected["reference_distinct"].as_u64().unwrap(),
                    "{name}"
                );
                let regime = serde_json::to_value(drift.ks_method).unwrap();
                assert_eq!(regime, expected["ks_regime"], "{name}");
            }
            FeatureDrift::Categorical(drift) => {
                check("psi", &drift.psi, false);
                check("jensen_shannon", &drift.jensen_shannon, false);
                check("chi2_statistic", &drift.chi2_statistic, false);
                check("chi2_pvalue", &drift.chi2_pvalue, true);
            }
        }
    }
    print_worst();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The distributions behind the p-values, over all their branches, through the public report: a sample
/// pair whose KS statistic is `d` would be needed otherwise, so these go through `distribution` below.
#[test]
fn distributions_match_scipy() {
    let document = fixtures();
    let mut problems = Vec::new();
    for row in document["kstwo_sf"].as_array().unwrap() {
        let (n, d) = (row["n"].as_u64().unwrap(), row["d"].as_f64().unwrap());
        let actual = modelgate_eval::drift::distributions::kstwo_sf(n, d);
        if let Err(problem) = close("kstwo.sf", actual, row["sf"].as_f64().unwrap(), true) {
            problems.push(format!("n={n} d={d}: {problem}"));
        }
    }
    for row in document["ks_exact"].as_array().unwrap() {
        let (n1, n2) = (row["n1"].as_u64().unwrap(), row["n2"].as_u64().unwrap());
        let d = row["d"].as_f64().unwrap();
        let actual = modelgate_eval::drift::distributions::ks_exact(n1, n2, d);
        match (row["ok"].as_bool().unwrap(), actual) {
            (true, Some((_, p))) => {
                if let Err(problem) = close("exact p", p, row["p"].as_f64().unwrap(), true) {
                    problems.push(format!("n1={n1} n2={n2} d={d}: {problem}"));
                }
            }
            (ok, actual) => problems.push(format!(
                "n1={n1} n2={n2} d={d}: scipy ok={ok}, here {actual:?}"
            )),
        }
    }
    for row in document["chi2_sf"].as_array().unwrap() {
        let (dof, x) = (row["df"].as_f64().unwrap(), row["x"].as_f64().unwrap());
        let actual = modelgate_eval::drift::distributions::chi_square_sf(dof, x);
        if let Err(problem) = close("chi2.sf", actual, row["sf"].as_f64().unwrap(), true) {
            problems.push(format!("df={dof} x={x}: {problem}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n{} problems",
        problems.join("\n"),
        problems.len()
    );
}
