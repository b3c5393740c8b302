//! Times a full binary report (every metric, two sensitive attributes with 3 and 4 groups, per-group
//! segments, fairness, no bootstrap) on synthetic predictions, split into reading the CSV and computing.
//! Prints one tab-separated line per phase for `bench/run`.
//!
//! Usage: `cargo run --release -p modelgate-eval --example eval_bench -- [ROWS]` (default 1,000,000).
#![allow(clippy::expect_used, clippy::unwrap_used)] // A benchmark stops loudly on any surprise.

use modelgate_eval::dataset::{DatasetSchema, read_csv};
use modelgate_eval::evaluate::{Settings, evaluate_predictions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::time::Instant;

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|text| {
            text.replace('_', "")
                .parse()
                .expect("ROWS must be a whole number")
        })
        .unwrap_or(1_000_000);
    let csv = synthetic_predictions(rows);
    let schema = DatasetSchema {
        label: "label".to_owned(),
        features: Vec::new(),
        sensitive: vec!["region".to_owned(), "age_band".to_owned()],
        weight: None,
        positive_label: "1".to_owned(),
    };
    let settings = Settings {
        score_column: "score".to_owned(),
        threshold: 0.5,
        bins: 10,
        minimum_group_size: 30,
        bootstrap_resamples: 0,
        seed: 0,
    };

    let started = Instant::now();
    let table = read_csv(&csv).expect("the synthetic CSV parses");
    let read_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let report = evaluate_predictions(&table, &schema, &settings).expect("the report computes");
    let compute_seconds = started.elapsed().as_secs_f64();

    // Use the result so the work cannot be optimised away, and show it is a real report.
    assert_eq!(report.by_group.len(), 2);
    let auc = report.overall.roc_auc.value.unwrap_or(f64::NAN);
    let megabytes = csv.len() as f64 / 1e6;
    println!("phase\trows\tseconds\trows_per_s\tnote");
    println!(
        "read_csv\t{rows}\t{read_seconds:.3}\t{:.0}\t{megabytes:.0} MB of CSV",
        rows as f64 / read_seconds
    );
    println!(
        "compute_report\t{rows}\t{compute_seconds:.3}\t{:.0}\troc_auc {auc:.4}",
        rows as f64 / compute_seconds
    );
}

/// Labels, a score that separates them imperfectly, and two attributes with 3 and 4 groups; seeded.
fn synthetic_predictions(rows: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut text = String::with_capacity(rows * 24);
    text.push_str("label,score,region,age_band\n");
    let regions = ["north", "south", "west"];
    let bands = ["18-29", "30-44", "45-64", "65+"];
    for _ in 0..rows {
        let label = rng.random_bool(0.3);
        let noise: f64 = rng.random();
        let score = if label {
            0.35 + 0.65 * noise
        } else {
            0.65 * noise
        };
        let region = regions[rng.random_range(0..regions.len())];
        let band = bands[rng.random_range(0..bands.len())];
        let _ = writeln!(text, "{},{score:.6},{region},{band}", u8::from(label));
    }
    text.into_bytes()
}
