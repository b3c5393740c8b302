//! An evaluation in predictions mode: a predictions file (the dataset's label and sensitive columns plus a
//! score) turned into overall metrics, per-group metrics and fairness for each sensitive attribute.

use crate::dataset::{DatasetError, DatasetSchema, Table};
use crate::{
    BinaryMetrics, FairnessMetrics, GroupMetrics, binary_metrics, fairness_metrics, per_group,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// The settings an evaluation ran with, recorded so a re-run gives identical numbers.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Settings {
    pub score_column: String,
    pub threshold: f64,
    pub bins: usize,
    pub minimum_group_size: usize,
    /// Resamples for the bootstrap intervals (0: none).
    #[serde(default)]
    pub bootstrap_resamples: usize,
    #[serde(default)]
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationResult {
    pub overall: BinaryMetrics,
    pub by_group: BTreeMap<String, Vec<GroupMetrics>>,
    pub fairness: BTreeMap<String, FairnessMetrics>,
    /// 95 % bootstrap intervals of the headline metrics.
    pub intervals: BTreeMap<String, crate::bootstrap::Interval>,
    pub warnings: Vec<String>,
}

/// The version of the metric definitions, recorded with every evaluation.
pub const ENGINE_VERSION: &str = concat!("modelgate-eval ", env!("CARGO_PKG_VERSION"));

pub fn evaluate_predictions(
    predictions: &Table,
    schema: &DatasetSchema,
    settings: &Settings,
) -> Result<EvaluationResult, DatasetError> {
    let labels = predictions.binary_labels(schema)?;
    let scores = predictions.numbers(&settings.score_column)?;
    if let Some((row, score)) = scores
        .iter()
        .enumerate()
        .find(|(_, score)| !(0.0..=1.0).contains(*score))
    {
        return Err(DatasetError {
            line: Some(row as u64 + 2),
            column: Some(settings.score_column.clone()),
            message: format!("{score} is not a probability in [0, 1]"),
        });
    }
    let weights = match &schema.weight {
        Some(column) if predictions.columns.contains(column) => Some(predictions.numbers(column)?),
        _ => None,
    };
    let overall = binary_metrics(
        &labels,
        &scores,
        weights.as_deref(),
        settings.threshold,
        settings.bins,
    );
    let mut by_group = BTreeMap::new();
    let mut fairness = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut attributes = BTreeMap::new();
    for attribute in &schema.sensitive {
        let groups: Vec<String> = predictions
            .column(attribute)?
            .into_iter()
            .map(str::to_owned)
            .collect();
        attributes.insert(attribute.clone(), groups.clone());
        let segments = per_group(
            &labels,
            &scores,
            &groups,
            settings.threshold,
            settings.bins,
            settings.minimum_group_size,
        );
        for segment in segments.iter().filter(|segment| segment.small) {
            warnings.push(format!(
                "group {attribute}={} has {} rows, fewer than {}: its numbers are uncertain",
                segment.group, segment.count, settings.minimum_group_size
            ));
        }
        by_group.insert(attribute.clone(), segments);
        fairness.insert(
            attribute.clone(),
            fairness_metrics(&labels, &scores, &groups, settings.threshold),
        );
    }
    let intervals = crate::bootstrap::bootstrap_intervals(
        &labels,
        &scores,
        &attributes,
        settings.threshold,
        settings.bootstrap_resamples,
        settings.seed,
    );
    Ok(EvaluationResult {
        overall,
        by_group,
        fairness,
        intervals,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::read_csv;

    #[test]
    fn a_predictions_file_yields_overall_group_and_fairness_metrics() {
        let csv_text = "default,sex,score\n1,f,0.9\n0,f,0.2\n1,m,0.7\n0,m,0.6\n0,m,0.1\n1,f,0.4\n";
        let table = read_csv(csv_text.as_bytes()).unwrap();
        let schema = DatasetSchema {
            label: "default".into(),
            features: vec![],
            sensitive: vec!["sex".into()],
            weight: None,
            positive_label: "1".into(),
        };
        let settings = Settings {
            score_column: "score".into(),
            threshold: 0.5,
            bins: 10,
            minimum_group_size: 30,
            bootstrap_resamples: 50,
            seed: 7,
        };
        let result = evaluate_predictions(&table, &schema, &settings).unwrap();
        assert_eq!(result.overall.count, 6);
        assert_eq!(result.by_group["sex"].len(), 2);
        assert_eq!(result.warnings.len(), 2, "both groups are small");
        let fairness = &result.fairness["sex"];
        assert_eq!(fairness.selection_rate["f"], 1.0 / 3.0);
        assert_eq!(fairness.selection_rate["m"], 2.0 / 3.0);
        assert_eq!(fairness.four_fifths_holds, Some(false));
        assert_eq!(result.intervals["accuracy"].resamples, 50);
        let bad = read_csv(b"default,sex,score\n1,f,1.5\n0,m,0.2\n").unwrap();
        let error = evaluate_predictions(&bad, &schema, &settings).unwrap_err();
        assert_eq!(
            (error.line, error.column.as_deref()),
            (Some(2), Some("score"))
        );
        let missing = read_csv(b"default,score\n1,0.5\n0,0.2\n").unwrap();
        assert_eq!(
            evaluate_predictions(&missing, &schema, &settings)
                .unwrap_err()
                .column
                .as_deref(),
            Some("sex")
        );
    }
}
