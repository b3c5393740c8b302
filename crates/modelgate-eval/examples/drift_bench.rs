//! Times a drift report of 1,000,000 production rows × 20 features (14 numeric, 6 categorical; 5 numeric and
//! 3 categorical shifted, 4 numeric shifted by a hair)
//! against a 1,000,000-row reference: building the reference profile once, then comparing a batch.
//!
//!     cargo run -j1 -p modelgate-eval --release --example drift_bench -- [rows] [--write DIR]
//!
//! With `--write DIR` the two tables are also written as `DIR/reference.parquet` and `DIR/current.parquet`,
//! and this report as `DIR/rust_report.json`, for `bench/drift_python.py` to run Evidently's
//! `DataDriftPreset` on the same data and compare.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A benchmark measures durations.
#![allow(clippy::disallowed_methods)]

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use modelgate_eval::dataset::{Column, Table};
use modelgate_eval::drift::{DriftSettings, Reference};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Instant;

const NUMERIC: usize = 14;
const CATEGORICAL: usize = 6;

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Feature `index` for `rows` rows; `shifted` draws the current batch's distribution where it differs.
fn numeric(index: usize, rows: usize, shifted: bool, rng: &mut ChaCha8Rng) -> Vec<f64> {
    // Every third numeric feature drifts in the batch; the next one drifts by a hair (0.5% of σ: not
    // drifted by the distances, but significant by KS at this size, the slowest region of its p-value).
    let drift = shifted && index.is_multiple_of(3);
    let hair = if shifted && index % 3 == 1 {
        0.005
    } else {
        0.0
    };
    (0..rows)
        .map(|row| {
            if row % 97 == 13 && index % 4 == 1 {
                return f64::NAN;
            }
            let z = normal(rng);
            match index % 4 {
                0 => 50.0 + 10.0 * (z + hair) + if drift { 3.0 } else { 0.0 },
                1 => ((z + hair) * 0.75 + if drift { 0.2 } else { 0.0 }).exp(),
                2 => rng.random::<f64>() * if drift { 1.3 } else { 1.0 + hair },
                // Few distinct values: one bin per value.
                _ => (rng.random::<f64>() * if drift { 14.0 } else { 12.0 }).floor(),
            }
        })
        .collect()
}

fn categorical(index: usize, rows: usize, shifted: bool, rng: &mut ChaCha8Rng) -> Column {
    let categories: Vec<String> = (0..5 + 9 * index)
        .map(|c| format!("c{index}_{c}"))
        .collect();
    let drift = shifted && index.is_multiple_of(2);
    let cells: Vec<Option<&str>> = (0..rows)
        .map(|row| {
            if row % 101 == 7 {
                return None;
            }
            // Skewed: category k with weight ~ 1/(k+1); the drifted batch is uniform.
            let u: f64 = rng.random();
            let k = if drift {
                (u * categories.len() as f64) as usize
            } else {
                ((categories.len() as f64 + 1.0).powf(u) - 1.0) as usize
            };
            Some(categories[k.min(categories.len() - 1)].as_str())
        })
        .collect();
    Column::from_text(cells)
}

fn table(rows: usize, shifted: bool, seed: u64) -> (Table, RecordBatch) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut columns = Vec::new();
    let mut arrays: Vec<(String, ArrayRef)> = Vec::new();
    for index in 0..NUMERIC {
        let values = numeric(index, rows, shifted, &mut rng);
        let name = format!("num_{index}");
        arrays.push((
            name.clone(),
            Arc::new(Float64Array::from(
                values
                    .iter()
                    .map(|v| (!v.is_nan()).then_some(*v))
                    .collect::<Vec<_>>(),
            )),
        ));
        columns.push((name, Column::Number(values)));
    }
    for index in 0..CATEGORICAL {
        let column = categorical(index, rows, shifted, &mut rng);
        let name = format!("cat_{index}");
        if let Column::Text { dictionary, codes } = &column {
            let cells: Vec<Option<&str>> = codes
                .iter()
                .map(|&code| dictionary.get(code as usize).map(String::as_str))
                .collect();
            arrays.push((name.clone(), Arc::new(StringArray::from(cells))));
        }
        columns.push((name, column));
    }
    (
        Table::from_columns(columns).unwrap(),
        RecordBatch::try_from_iter(arrays).unwrap(),
    )
}

fn write_parquet(path: &std::path::Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// Outcomes joined by row id: a batch of `rows` rows with text row ids, scores and a sensitive attribute,
/// and `rows` outcomes in another order (1% unknown ids), joined and then evaluated as the server does.
fn join_bench(rows: usize) {
    use modelgate_eval::outcomes::{JoinBatch, join_outcomes};
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let ids: Vec<String> = (0..rows).map(|row| format!("req-{row:08}")).collect();
    let scores: Vec<f64> = (0..rows).map(|_| rng.random::<f64>()).collect();
    let groups: Vec<Option<&str>> = (0..rows)
        .map(|row| Some(if row % 3 == 0 { "F" } else { "M" }))
        .collect();
    let batch = Table::from_columns(vec![
        (
            "id".to_owned(),
            Column::from_text(ids.iter().map(|id| Some(id.as_str()))),
        ),
        ("score".to_owned(), Column::Number(scores.clone())),
        ("sex".to_owned(), Column::from_text(groups)),
    ])
    .unwrap();
    // Outcomes arrive in another order; every hundredth id is one no batch carried.
    let order: Vec<usize> = (0..rows).map(|row| (row * 7_919) % rows).collect();
    let outcome_ids: Vec<String> = order
        .iter()
        .map(|&row| {
            if row % 100 == 0 {
                format!("unknown-{row}")
            } else {
                ids[row].clone()
            }
        })
        .collect();
    let labels: Vec<f64> = order
        .iter()
        .map(|&row| f64::from(u8::from(rng.random::<f64>() < scores[row])))
        .collect();
    let outcomes = Table::from_columns(vec![
        (
            "id".to_owned(),
            Column::from_text(outcome_ids.iter().map(|id| Some(id.as_str()))),
        ),
        ("label".to_owned(), Column::Number(labels)),
    ])
    .unwrap();
    let started = Instant::now();
    let joined = join_outcomes(
        &[JoinBatch {
            table: &batch,
            row_id_column: "id",
        }],
        &outcomes,
        "id",
        "label",
        &["score", "sex"],
    )
    .unwrap();
    let joining = started.elapsed();
    let schema = modelgate_eval::dataset::DatasetSchema {
        task: modelgate_eval::dataset::Task::Binary,
        label: "label".to_owned(),
        features: Vec::new(),
        sensitive: vec!["sex".to_owned()],
        weight: None,
        positive_label: "1".to_owned(),
        classes: Vec::new(),
    };
    let settings = modelgate_eval::evaluate::Settings {
        score_column: "score".to_owned(),
        threshold: 0.5,
        bins: 10,
        minimum_group_size: 30,
        bootstrap_resamples: 0,
        seed: 0,
        prediction_column: None,
        intersections: Vec::new(),
    };
    let started = Instant::now();
    modelgate_eval::evaluate::evaluate(&joined.table, &schema, &settings, &|_| true).unwrap();
    let evaluating = started.elapsed();
    println!(
        "outcomes join: {rows} outcomes onto {rows} batch rows in {joining:.2?} ({} joined, {} unknown); evaluation of the joined rows {evaluating:.2?}",
        joined.matched, joined.unknown
    );
}

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let rows = arguments
        .first()
        .and_then(|argument| argument.parse().ok())
        .unwrap_or(1_000_000);
    let write = arguments
        .iter()
        .position(|argument| argument == "--write")
        .and_then(|index| arguments.get(index + 1))
        .map(std::path::PathBuf::from);
    let started = Instant::now();
    let (reference_table, reference_batch) = table(rows, false, 1);
    let (current_table, current_batch) = table(rows, true, 2);
    println!(
        "generated 2 × {rows} rows × {} features in {:.2?}",
        NUMERIC + CATEGORICAL,
        started.elapsed()
    );
    let started = Instant::now();
    let reference = Reference::new(&reference_table, &[]).unwrap();
    let profiled = started.elapsed();
    let settings = DriftSettings::default();
    let mut compare_times = Vec::new();
    let mut report = None;
    for _ in 0..3 {
        let started = Instant::now();
        report = Some(reference.compare(&current_table, &settings).unwrap());
        compare_times.push(started.elapsed());
    }
    let report = report.unwrap();
    let best = compare_times.iter().min().unwrap();
    println!("reference profile: {profiled:.2?}");
    println!("compare (drift report), best of 3: {best:.2?} (all: {compare_times:.2?})");
    println!("reference profile + one report: {:.2?}", profiled + *best);
    let ks_significant = report
        .features
        .values()
        .filter(|feature| match feature {
            modelgate_eval::drift::FeatureDrift::Numeric(drift) => drift
                .ks_pvalue
                .value
                .is_some_and(|p| p > 1e-160 && p < 0.02),
            _ => false,
        })
        .count();
    println!("features whose KS p-value is in (1e-160, 0.02), Smirnov's sum: {ks_significant}");
    println!(
        "drifted {} of {} features (share {:?}), dataset drifted: {}",
        report.dataset.drifted_features,
        report.dataset.features,
        report.dataset.drift_share.value,
        report.dataset.drifted
    );
    join_bench(rows);
    if let Some(directory) = write {
        std::fs::create_dir_all(&directory).unwrap();
        write_parquet(&directory.join("reference.parquet"), &reference_batch);
        write_parquet(&directory.join("current.parquet"), &current_batch);
        std::fs::write(
            directory.join("rust_report.json"),
            serde_json::to_vec_pretty(&report).unwrap(),
        )
        .unwrap();
        println!("wrote {}", directory.display());
    }
}
