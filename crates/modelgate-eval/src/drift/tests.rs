//! Edge cases of the drift kernels: missing values, single values, mismatched dictionaries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn table(columns: Vec<(&str, Column)>) -> Table {
    Table::from_columns(
        columns
            .into_iter()
            .map(|(name, column)| (name.to_owned(), column))
            .collect(),
    )
    .unwrap()
}

#[test]
fn radix_sort_orders_like_total_cmp() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut values: Vec<f64> = (0..20_000)
        .map(|index| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match index % 5 {
                0 => -0.0,
                1 => (state % 1000) as f64 - 500.0,
                _ => f64::from_bits(state >> 2) * if state & 1 == 0 { -1.0 } else { 1.0 },
            }
        })
        .filter(|value: &f64| value.is_finite())
        .collect();
    values.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
    let mut expected: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    expected.sort_by(f64::total_cmp);
    let (values, missing) = present_sorted(&values);
    assert_eq!(missing, 3);
    assert_eq!(
        values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn all_missing_on_one_side_is_a_reason_not_nan() {
    let reference = table(vec![
        ("x", Column::Number(vec![1.0, 2.0, f64::NAN])),
        ("c", Column::from_text([Some("a"), Some("b"), None])),
    ]);
    let current = table(vec![
        ("x", Column::Number(vec![f64::NAN, f64::INFINITY])),
        ("c", Column::Number(vec![f64::NAN, f64::NAN])),
    ]);
    let report = drift_report(&reference, &current, &[], &DriftSettings::default()).unwrap();
    for (name, drift) in &report.features {
        assert!(!drift.drifted(), "{name}");
        assert!(
            drift.reason().unwrap().contains("no values in the batch"),
            "{name}"
        );
    }
    match &report.features["x"] {
        FeatureDrift::Numeric(drift) => {
            assert_eq!(drift.counts.current_missing, 2);
            assert_eq!(drift.counts.reference_missing, 1);
            assert!(drift.psi.value.is_none() && drift.psi.reason.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.dataset.undecided_features, 2);
    assert!(report.dataset.drift_share.value.is_none());
    assert!(!report.dataset.drifted);
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("NaN"), "{json}");
    let back: DriftReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn single_values_give_finite_statistics() {
    let reference = table(vec![("x", Column::Number(vec![5.0]))]);
    let same = table(vec![("x", Column::Number(vec![5.0]))]);
    let other = table(vec![("x", Column::Number(vec![7.0]))]);
    let settings = DriftSettings::default();
    let profile = Reference::new(&reference, &[]).unwrap();
    let FeatureDrift::Numeric(same) = &profile.compare(&same, &settings).unwrap().features["x"]
    else {
        panic!()
    };
    assert_eq!(same.psi.value, Some(0.0));
    assert_eq!(same.jensen_shannon.value, Some(0.0));
    assert_eq!(same.wasserstein_normed.value, Some(0.0));
    assert_eq!(same.ks_pvalue.value, Some(1.0));
    assert!(!same.drifted);
    let FeatureDrift::Numeric(other) = &profile.compare(&other, &settings).unwrap().features["x"]
    else {
        panic!()
    };
    // Wasserstein 2 over the floor 0.001.
    assert!((other.wasserstein_normed.value.unwrap() - 2000.0).abs() < 1e-9);
    assert!(other.drifted);
    for value in [
        &other.psi,
        &other.jensen_shannon,
        &other.ks_statistic,
        &other.ks_pvalue,
    ] {
        assert!(value.value.unwrap().is_finite());
    }
}

#[test]
fn categories_match_by_text_whatever_the_dictionary_order() {
    let reference = table(vec![(
        "c",
        Column::from_text(["a", "b", "b", "c"].map(Some)),
    )]);
    let current = table(vec![(
        "c",
        Column::from_text(["c", "b", "b", "a"].map(Some)),
    )]);
    let report = drift_report(&reference, &current, &[], &DriftSettings::default()).unwrap();
    let FeatureDrift::Categorical(drift) = &report.features["c"] else {
        panic!()
    };
    assert_eq!(drift.psi.value, Some(0.0));
    assert_eq!(drift.chi2_statistic.value, Some(0.0));
    assert_eq!(drift.chi2_pvalue.value, Some(1.0));
    assert_eq!((drift.categories, drift.new_categories), (3, 0));
    assert_eq!(report.dataset.drift_share.value, Some(0.0));
}

#[test]
fn a_column_of_the_other_type_or_a_missing_column_is_an_error() {
    let reference = table(vec![("x", Column::Number(vec![1.0, 2.0]))]);
    let text = table(vec![("x", Column::from_text([Some("a"), Some("b")]))]);
    let error = drift_report(&reference, &text, &[], &DriftSettings::default()).unwrap_err();
    assert!(error.to_string().contains("text in this batch"), "{error}");
    let other = table(vec![("y", Column::Number(vec![1.0]))]);
    let error = drift_report(&reference, &other, &[], &DriftSettings::default()).unwrap_err();
    assert!(error.to_string().contains("missing column"), "{error}");
}

#[test]
fn settings_are_checked_and_the_share_decides_the_dataset() {
    let bad = DriftSettings {
        numeric_method: NumericMethod::KsPvalue,
        numeric_threshold: 1.5,
        ..DriftSettings::default()
    };
    assert!(bad.check().is_err());
    assert!(
        DriftSettings {
            drift_share: 0.0,
            ..DriftSettings::default()
        }
        .check()
        .is_err()
    );
    let reference = table(vec![
        ("x", Column::Number((0..100).map(f64::from).collect())),
        ("y", Column::Number((0..100).map(f64::from).collect())),
    ]);
    let current = table(vec![
        (
            "x",
            Column::Number((0..100).map(|v| f64::from(v) + 50.0).collect()),
        ),
        ("y", Column::Number((0..100).map(f64::from).collect())),
    ]);
    let report = drift_report(&reference, &current, &[], &DriftSettings::default()).unwrap();
    assert_eq!(report.dataset.drifted_features, 1);
    assert_eq!(report.dataset.drift_share.value, Some(0.5));
    assert!(report.dataset.drifted);
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    for field in [
        "psi",
        "jensen_shannon",
        "wasserstein_normed",
        "ks_pvalue",
        "drifted",
    ] {
        assert!(json["features"]["x"].get(field).is_some(), "{field}");
    }
    assert_eq!(json["features"]["x"]["kind"], "numeric");
    assert_eq!(json["features"]["x"]["method"], "wasserstein_normed");
    assert_eq!(json["dataset"]["drifted"], true);
    let ks: DriftSettings = serde_json::from_value(serde_json::json!({
        "numeric_method": "ks", "numeric_threshold": 0.05,
        "categorical_method": "chi2", "categorical_threshold": 0.05, "drift_share": 0.5
    }))
    .unwrap();
    assert_eq!(ks.numeric_method, NumericMethod::KsPvalue);
}

#[test]
fn ks_exact_and_asymptotic_agree_where_they_meet() {
    // Just inside and outside the exact regime the p-values of the same statistic are close.
    let (_, exact, method) = distributions::ks_two_sample(10_000, 10_000, 0.02);
    assert_eq!(method, KsMethod::Exact);
    let (_, asymptotic, method) = distributions::ks_two_sample(10_001, 10_001, 0.02);
    assert_eq!(method, KsMethod::Asymptotic);
    assert!((exact - asymptotic).abs() < 2e-3, "{exact} {asymptotic}");
}

/// Random small samples (ties, constants, few values, categories on one side only) never give NaN or an
/// infinity, and p-values stay within [0, 1].
#[test]
fn no_statistic_is_ever_nan() {
    struct Draws(u64);
    impl Draws {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % bound
        }
        fn numbers(&mut self, n: usize, spread: u64, offset: u64) -> Vec<f64> {
            (0..n)
                .map(|_| match self.below(12) {
                    0 => f64::NAN,
                    _ => (self.below(spread) + offset) as f64 / 4.0,
                })
                .collect()
        }
        fn texts(&mut self, n: usize, from: usize) -> Column {
            let names = ["a", "b", "c", "d", "e", "f"];
            let cells: Vec<Option<&str>> = (0..n)
                .map(|_| match self.below(10) {
                    0 => None,
                    k => Some(names[(from + k as usize) % names.len()]),
                })
                .collect();
            Column::from_text(cells)
        }
    }
    let mut draws = Draws(0x2545_f491_4f6c_dd1d);
    for _ in 0..300 {
        let (n1, n2) = (1 + draws.below(60) as usize, 1 + draws.below(60) as usize);
        let spread = 1 + draws.below(40);
        let offset = draws.below(5);
        let from = draws.below(3) as usize;
        let reference = table(vec![
            ("x", Column::Number(draws.numbers(n1, spread, 0))),
            ("c", draws.texts(n1, 0)),
        ]);
        let current = table(vec![
            ("x", Column::Number(draws.numbers(n2, spread, offset))),
            ("c", draws.texts(n2, from)),
        ]);
        let report = drift_report(&reference, &current, &[], &DriftSettings::default()).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        for feature in json["features"].as_object().unwrap().values() {
            for (field, value) in feature.as_object().unwrap() {
                if let Some(number) = value.get("value").and_then(|number| number.as_f64()) {
                    assert!(
                        number.is_finite() && number >= 0.0,
                        "{field} = {number}: {feature}"
                    );
                    if field.ends_with("pvalue") {
                        assert!(number <= 1.0, "{field} = {number}");
                    }
                }
            }
        }
    }
}

#[test]
fn the_exact_ks_probability_is_quick_at_the_largest_exact_sizes() {
    for d in [0.01, 0.1, 0.5] {
        let p = distributions::ks_exact(10_000, 9_999, d).unwrap().1;
        assert!((0.0..=1.0).contains(&p), "{p}");
    }
}

#[test]
fn one_reference_serves_many_batches() {
    let reference = table(vec![
        (
            "x",
            Column::Number((0..500).map(|v| f64::from(v % 97)).collect()),
        ),
        (
            "c",
            Column::from_text((0..500).map(|v| Some(["a", "b", "c"][v % 3]))),
        ),
    ]);
    let profile = Reference::new(&reference, &[]).unwrap();
    assert_eq!(profile.rows(), 500);
    assert_eq!(
        profile.features().collect::<Vec<_>>(),
        [("x", FeatureKind::Numeric), ("c", FeatureKind::Categorical)]
    );
    for shift in [0.0, 3.0, 30.0] {
        let batch = table(vec![
            (
                "x",
                Column::Number((0..300).map(|v| f64::from(v % 89) + shift).collect()),
            ),
            (
                "c",
                Column::from_text((0..300).map(|v| Some(["c", "a", "d"][v % 3]))),
            ),
        ]);
        let settings = DriftSettings::default();
        assert_eq!(
            profile.compare(&batch, &settings).unwrap(),
            drift_report(&reference, &batch, &[], &settings).unwrap()
        );
    }
}

#[test]
fn a_number_column_may_be_a_categorical_feature() {
    let reference = table(vec![
        (
            "region",
            Column::Number(vec![1.0, 2.0, 2.0, -0.0, f64::NAN]),
        ),
        (
            "name",
            Column::from_text(["a", "b", "b", "c", "a"].map(Some)),
        ),
    ]);
    let kinds = [
        ("region".to_owned(), FeatureKind::Categorical),
        ("name".to_owned(), FeatureKind::Categorical),
    ];
    let profile = Reference::with_kinds(&reference, &kinds).unwrap();
    // The batch's region codes arrive as text here; "0" matches the reference's -0 and 0 alike.
    let batch = table(vec![
        ("region", Column::from_text(["2", "1", "2", "0"].map(Some))),
        ("name", Column::from_text(["b", "a", "c", "b"].map(Some))),
    ]);
    let report = profile.compare(&batch, &DriftSettings::default()).unwrap();
    let FeatureDrift::Categorical(region) = &report.features["region"] else {
        panic!("{:?}", report.features["region"])
    };
    assert_eq!((region.categories, region.new_categories), (3, 0));
    assert_eq!(region.counts.reference_missing, 1);
    assert_eq!(region.chi2_statistic.value, Some(0.0));
    let error = Reference::with_kinds(&reference, &[("name".to_owned(), FeatureKind::Numeric)])
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot be compared as a numeric"),
        "{error}"
    );
}

/// The radix sort's recursion: one outlier puts the rest in a few buckets; duplicates end it at the last
/// digit; values differing only in their lowest bits.
#[test]
fn radix_sort_handles_outliers_duplicates_and_neighbours() {
    let mut values: Vec<f64> = (0..50_000u64)
        .map(|index| 1.0 + (index * 7919 % 1000) as f64 / 1000.0)
        .collect();
    values.push(-1e300);
    values.extend((0..5_000u64).map(|index| f64::from_bits(1.5f64.to_bits() + index * 31 % 977)));
    values.extend([0.0, -0.0, 0.0]);
    let mut expected = values.clone();
    expected.sort_by(f64::total_cmp);
    let (sorted, missing) = present_sorted(&values);
    assert_eq!(missing, 0);
    assert_eq!(
        sorted.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}
