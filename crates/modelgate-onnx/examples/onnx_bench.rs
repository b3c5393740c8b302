//! Model-mode throughput: rows/s of `Model::classify` on each fixture model over a batch of seeded rows
//! (4 features, as the fixtures expect). Needs ONNX Runtime's library (ORT_DYLIB_PATH or next to the
//! binary). Prints one tab-separated line per model for `bench/run`.
//!
//! Usage: `cargo run --release -p modelgate-onnx --example onnx_bench -- [ROWS]` (default 100,000).
// Measuring elapsed time is what this file is for.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::expect_used, clippy::unwrap_used)] // A benchmark stops loudly on any surprise.

use modelgate_onnx::{Model, init};
use std::path::Path;
use std::time::Instant;

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|text| {
            text.replace('_', "")
                .parse()
                .expect("ROWS must be a whole number")
        })
        .unwrap_or(100_000);
    if let Err(error) = init(None) {
        eprintln!("onnx_bench: {error}");
        std::process::exit(2);
    }
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    // A deterministic spread of inputs (a low-discrepancy sequence), so each run sees the same rows.
    let inputs: Vec<f32> = (0..rows * 4)
        .map(|index| (((index as f64) * 0.618_033_988_75).fract() * 6.0 - 3.0) as f32)
        .collect();
    println!("model\trows\tseconds\trows_per_s");
    for name in [
        "logistic",
        "gradient_boosting",
        "random_forest_zipmap",
        "mlp",
        "sigmoid_network",
    ] {
        let bytes = std::fs::read(folder.join(format!("{name}.onnx"))).expect("fixture exists");
        let model = Model::load(&bytes).expect("the fixture loads");
        let started = Instant::now();
        let predictions = model.classify(&inputs, 4).expect("the model runs");
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(predictions.positive_probability.len(), rows);
        println!("{name}\t{rows}\t{seconds:.3}\t{:.0}", rows as f64 / seconds);
    }
}
