//! Times a full binary report (every metric, two sensitive attributes with 3 and 4 groups, per-group
//! segments, fairness, no bootstrap) on synthetic predictions, split into reading the file and computing.
//! Prints one tab-separated line per phase for `bench/run`.
//!
//! Usage (release build; `bench/run` does all three):
//! - `eval_bench --write FILE ROWS`: writes ROWS synthetic predictions as Parquet (Snappy) to FILE;
//! - `eval_bench FILE [--bootstrap N]`: reads FILE (Parquet or CSV) and computes the report (with N
//!   bootstrap resamples), in a fresh process so that its peak memory is the evaluation's alone; prints the
//!   size of the columns read, for comparison;
//! - `eval_bench --csv ROWS`: the same on CSV generated in memory;
//! - `eval_bench FILE --register`: what registering FILE as a dataset costs: read every column, validate
//!   it against its schema, profile every column;
//! - `eval_bench --write-csv FILE ROWS`: the same rows as CSV, for the Python peer (`bench/eval_python.py`).
// Measuring elapsed time is what this file is for.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // A benchmark stops loudly on any surprise.

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use modelgate_eval::dataset::{DatasetSchema, Format, read_table};
use modelgate_eval::evaluate::{Settings, evaluate_predictions};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

const REGIONS: [&str; 3] = ["north", "south", "west"];
const BANDS: [&str; 4] = ["18-29", "30-44", "45-64", "65+"];
const WANTED: [&str; 4] = ["label", "score", "region", "age_band"];

fn parse_rows(text: &str) -> usize {
    text.replace('_', "")
        .parse()
        .expect("ROWS must be a whole number")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--write", path, rows] => write_parquet(path, parse_rows(rows)),
        ["--write-csv", path, rows] => std::fs::write(path, synthetic_csv(parse_rows(rows)))
            .expect("the output file can be written"),
        ["--csv", rows] => {
            let rows = parse_rows(rows);
            report("read_csv", bytes::Bytes::from(synthetic_csv(rows)), 0);
        }
        [path] => {
            let bytes = bytes::Bytes::from(std::fs::read(path).expect("the file is readable"));
            let phase = format!("read_{}", Format::detect(&bytes).as_str());
            report(&phase, bytes, 0);
        }
        [path, "--register"] => register(path),
        [path, "--bootstrap", resamples] => {
            let bytes = bytes::Bytes::from(std::fs::read(path).expect("the file is readable"));
            let phase = format!("read_{}", Format::detect(&bytes).as_str());
            report(&phase, bytes, parse_rows(resamples));
        }
        _ => {
            panic!("usage: eval_bench --write FILE ROWS | eval_bench FILE | eval_bench --csv ROWS")
        }
    }
}

fn register(path: &str) {
    let bytes = bytes::Bytes::from(std::fs::read(path).expect("the file is readable"));
    let schema = DatasetSchema {
        task: Default::default(),
        label: "label".to_owned(),
        features: vec!["score".to_owned()],
        sensitive: vec!["region".to_owned(), "age_band".to_owned()],
        weight: None,
        positive_label: "1".to_owned(),
        classes: Vec::new(),
    };
    let started = Instant::now();
    let table = read_table(bytes, None).expect("the synthetic file reads");
    let read_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    modelgate_eval::dataset::validate(&table, &schema).expect("the synthetic file is valid");
    let validate_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let profile = modelgate_eval::dataset::profile(&table);
    let profile_seconds = started.elapsed().as_secs_f64();
    assert_eq!(profile.columns.len(), 4);
    let rows = table.row_count();
    println!("phase\trows\tseconds\trows_per_s\tnote");
    for (phase, seconds) in [
        ("register_read", read_seconds),
        ("register_validate", validate_seconds),
        ("register_profile", profile_seconds),
    ] {
        println!(
            "{phase}\t{rows}\t{seconds:.3}\t{:.0}\t",
            rows as f64 / seconds
        );
    }
}

fn report(read_phase: &str, bytes: bytes::Bytes, bootstrap_resamples: usize) {
    let schema = DatasetSchema {
        task: Default::default(),
        label: "label".to_owned(),
        features: Vec::new(),
        sensitive: vec!["region".to_owned(), "age_band".to_owned()],
        weight: None,
        positive_label: "1".to_owned(),
        classes: Vec::new(),
    };
    let settings = Settings {
        score_column: "score".to_owned(),
        threshold: 0.5,
        bins: 10,
        minimum_group_size: 30,
        bootstrap_resamples,
        seed: 0,
        prediction_column: None,
        intersections: Vec::new(),
    };
    let file_megabytes = bytes.len() as f64 / 1e6;
    let started = Instant::now();
    let table = read_table(bytes, Some(&WANTED)).expect("the synthetic file reads");
    let read_seconds = started.elapsed().as_secs_f64();
    let rows = table.row_count();
    let started = Instant::now();
    let report =
        evaluate_predictions(&table, &schema, &settings, &|_| true).expect("the report computes");
    let compute_seconds = started.elapsed().as_secs_f64();

    // Use the result so the work cannot be optimised away, and show it is a real report.
    assert_eq!(report.by_group.len(), 2);
    let auc = report.overall.roc_auc.value.unwrap_or(f64::NAN);
    // The columns as Arrow holds them uncompressed: int64 label, float64 score, two string columns
    // (4-byte offsets plus the text) — the "size of the columns it needs".
    let text_bytes: usize = ["region", "age_band"]
        .iter()
        .map(|column| {
            let groups = table.groups(column).unwrap();
            let mut counts = vec![0usize; groups.names.len()];
            for &code in &groups.codes {
                counts[code as usize] += 1;
            }
            counts
                .iter()
                .zip(&groups.names)
                .map(|(count, name)| count * (name.len() + 4))
                .sum::<usize>()
        })
        .sum();
    let column_megabytes = (rows * 16 + text_bytes) as f64 / 1e6;
    println!("phase\trows\tseconds\trows_per_s\tnote");
    println!(
        "{read_phase}\t{rows}\t{read_seconds:.3}\t{:.0}\t{file_megabytes:.0} MB file; needed columns {column_megabytes:.0} MB",
        rows as f64 / read_seconds
    );
    let with = if bootstrap_resamples > 0 {
        format!("compute_report+{bootstrap_resamples}_resamples")
    } else {
        "compute_report".to_owned()
    };
    println!(
        "{with}\t{rows}\t{compute_seconds:.3}\t{:.0}\troc_auc {auc:.4}",
        rows as f64 / compute_seconds
    );
    println!(
        "total\t{rows}\t{:.3}\t{:.0}\t",
        read_seconds + compute_seconds,
        rows as f64 / (read_seconds + compute_seconds)
    );
}

/// Labels, a score that separates them imperfectly, and two attributes with 3 and 4 groups; seeded.
fn synthetic_rows(rows: usize, mut each: impl FnMut(bool, f64, &'static str, &'static str)) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..rows {
        let label = rng.random_bool(0.3);
        let noise: f64 = rng.random();
        let score = if label {
            0.35 + 0.65 * noise
        } else {
            0.65 * noise
        };
        // Six decimals, as a CSV would carry them: ties occur, as in real scores.
        let score = (score * 1e6).round() / 1e6;
        let region = REGIONS[rng.random_range(0..REGIONS.len())];
        let band = BANDS[rng.random_range(0..BANDS.len())];
        each(label, score, region, band);
    }
}

fn synthetic_csv(rows: usize) -> Vec<u8> {
    let mut text = String::with_capacity(rows * 24);
    text.push_str("label,score,region,age_band\n");
    synthetic_rows(rows, |label, score, region, band| {
        let _ = writeln!(text, "{},{score:.6},{region},{band}", u8::from(label));
    });
    text.into_bytes()
}

fn write_parquet(path: &str, rows: usize) {
    let (mut labels, mut scores, mut regions, mut bands) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    synthetic_rows(rows, |label, score, region, band| {
        labels.push(i64::from(label));
        scores.push(score);
        regions.push(region);
        bands.push(band);
    });
    let batch = RecordBatch::try_from_iter([
        ("label", Arc::new(Int64Array::from(labels)) as ArrayRef),
        ("score", Arc::new(Float64Array::from(scores)) as ArrayRef),
        ("region", Arc::new(StringArray::from(regions)) as ArrayRef),
        ("age_band", Arc::new(StringArray::from(bands)) as ArrayRef),
    ])
    .unwrap();
    let file = std::fs::File::create(path).expect("the output file can be created");
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}
