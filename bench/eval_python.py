"""Peer for the evaluation benchmark: scikit-learn + fairlearn computing the same full binary report as
`crates/modelgate-eval/examples/eval_bench.rs` (every metric overall, per group of two attributes through a
MetricFrame, the fairness differences and ratios) from the same synthetic file, written as CSV by
`eval_bench --write-csv FILE ROWS`. Install: `pip install scikit-learn fairlearn pandas`.
Usage: python3 bench/eval_python.py FILE"""
import sys
import time

import numpy as np
import pandas as pd
from fairlearn.metrics import (MetricFrame, demographic_parity_difference, demographic_parity_ratio,
                               equalized_odds_difference, equalized_odds_ratio, selection_rate)
from sklearn import metrics as m

path = sys.argv[1]
started = time.perf_counter()
frame = pd.read_csv(path)
read_seconds = time.perf_counter() - started
y = frame["label"].to_numpy() == 1
score = frame["score"].to_numpy()
predicted = score >= 0.5

started = time.perf_counter()


def recall_or_nan(y_true, y_pred):
    return m.recall_score(y_true, y_pred, zero_division=np.nan)


def report(y_true, y_score):
    y_pred = y_score >= 0.5
    both = len(np.unique(y_true)) == 2
    return {
        "accuracy": m.accuracy_score(y_true, y_pred),
        "balanced_accuracy": m.balanced_accuracy_score(y_true, y_pred),
        "precision": m.precision_score(y_true, y_pred, zero_division=np.nan),
        "recall": recall_or_nan(y_true, y_pred),
        "f1": m.f1_score(y_true, y_pred, zero_division=np.nan),
        "roc_auc": m.roc_auc_score(y_true, y_score) if both else np.nan,
        "average_precision": m.average_precision_score(y_true, y_score),
        "log_loss": m.log_loss(y_true, y_score, labels=[False, True]),
        "brier_score": m.brier_score_loss(y_true, y_score),
        "confusion_matrix": m.confusion_matrix(y_true, y_pred, labels=[False, True]),
    }


overall = report(y, score)
for attribute in ["region", "age_band"]:
    groups = frame[attribute]
    MetricFrame(
        metrics={
            "accuracy": m.accuracy_score,
            "balanced_accuracy": m.balanced_accuracy_score,
            "precision": lambda t, p: m.precision_score(t, p, zero_division=np.nan),
            "recall": recall_or_nan,
            "f1": lambda t, p: m.f1_score(t, p, zero_division=np.nan),
            "selection_rate": selection_rate,
        },
        y_true=y, y_pred=predicted, sensitive_features=groups)
    MetricFrame(
        metrics={
            "roc_auc": m.roc_auc_score,
            "average_precision": m.average_precision_score,
            "log_loss": lambda t, s: m.log_loss(t, s, labels=[False, True]),
            "brier_score": m.brier_score_loss,
        },
        y_true=y, y_pred=score, sensitive_features=groups)
    for fairness in [demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference,
                     equalized_odds_ratio]:
        fairness(y, predicted, sensitive_features=groups)
compute_seconds = time.perf_counter() - started
rows = len(frame)
print("phase\trows\tseconds\trows_per_s\tnote")
print(f"read_csv (pandas)\t{rows}\t{read_seconds:.3f}\t{rows / read_seconds:.0f}\t")
print(f"compute_report (sklearn+fairlearn)\t{rows}\t{compute_seconds:.3f}\t{rows / compute_seconds:.0f}\t"
      f"roc_auc {overall['roc_auc']:.4f}")
