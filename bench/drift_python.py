"""Evidently's DataDriftPreset on the data of `examples/drift_bench.rs`, timed, and compared with modelgate's
report of the same data.

    cargo run -j1 -p modelgate-eval --release --example drift_bench -- 1000000 --write target/drift-bench
    python3 -m venv target/drift-venv
    target/drift-venv/bin/pip install -r crates/modelgate-eval/fixtures/drift-requirements.txt
    target/drift-venv/bin/python bench/drift_python.py target/drift-bench

Evidently picks its default stat test per column (normed Wasserstein for numeric columns with more than 5
values, Jensen-Shannon for categorical ones, when the reference has more than 1,000 rows), which are
modelgate's defaults; the script prints both scores per feature and the largest difference.
"""

import json
import sys
import time

import evidently
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

directory = sys.argv[1] if len(sys.argv) > 1 else "target/drift-bench"
started = time.perf_counter()
reference = pd.read_parquet(f"{directory}/reference.parquet")
current = pd.read_parquet(f"{directory}/current.parquet")
print(f"read {len(reference)} + {len(current)} rows x {reference.shape[1]} columns in {time.perf_counter() - started:.2f} s")

numeric = [c for c in reference.columns if c.startswith("num_")]
categorical = [c for c in reference.columns if c.startswith("cat_")]
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)

started = time.perf_counter()
reference_data = Dataset.from_pandas(reference, data_definition=definition)
current_data = Dataset.from_pandas(current, data_definition=definition)
wrapped = time.perf_counter() - started

started = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(current_data, reference_data)
elapsed = time.perf_counter() - started
print(f"evidently {evidently.__version__}: Dataset.from_pandas {wrapped:.2f} s, DataDriftPreset report {elapsed:.2f} s")

scores = {}
evidently_count = None
for metric in snapshot.dict()["metrics"]:
    config = metric.get("config", {})
    if config.get("type", "").endswith("DriftedColumnsCount"):
        evidently_count = metric["value"]
    column = config.get("column")
    if column is not None and config.get("type", "").endswith("ValueDrift"):
        scores[column] = (metric["value"], config.get("method"))

with open(f"{directory}/rust_report.json") as file:
    rust = json.load(file)
worst = 0.0
for name in numeric + categorical:
    feature = rust["features"][name]
    ours = feature[feature["method"]]["value"]
    theirs, method = scores.get(name, (float("nan"), "?"))
    difference = abs(ours - theirs) / max(abs(theirs), 1e-300)
    worst = max(worst, difference)
    print(f"{name:8} {feature['method']:18} modelgate {ours:.12g}  evidently {theirs:.12g} ({method})  rel. diff {difference:.1e}")
print(f"largest relative difference {worst:.1e}")
print(f"drifted columns: evidently {evidently_count}; modelgate {rust['dataset']['drifted_features']} "
      f"(share {rust['dataset']['drift_share']['value']})")
