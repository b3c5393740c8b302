//! An evaluation in predictions mode: a predictions file (the dataset's label and sensitive columns plus a
//! score) turned into overall metrics, per-group metrics and fairness for each sensitive attribute.

use crate::dataset::{DatasetError, DatasetSchema, Table, Task};
use crate::other::{MulticlassMetrics, RegressionMetrics, multiclass_metrics, regression_metrics};
use crate::{
    BinaryMetrics, FairnessMetrics, GroupMetrics, Groups, Ranked, fairness_from_confusion, segments,
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
    /// Multiclass: the column of predicted classes (`score_column`, when set, is then the prefix of the
    /// per-class probability columns, `<prefix><class>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_column: Option<String>,
    /// Pairs of sensitive attributes whose intersections are reported too (as `a & b`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intersections: Vec<(String, String)>,
}

/// More resamples than this add time, not precision.
pub const MAX_BOOTSTRAP_RESAMPLES: usize = 10_000;

/// A setting out of its range: the field and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

impl Settings {
    /// Checks the settings against their ranges and the dataset's schema, before any data is read.
    pub fn check(&self, schema: &DatasetSchema) -> Result<(), SettingsError> {
        let refuse = |field, message: String| Err(SettingsError { field, message });
        if !(2..=100).contains(&self.bins) {
            return refuse(
                "bins",
                format!(
                    "the calibration table has 2 to 100 bins (got {})",
                    self.bins
                ),
            );
        }
        if self.bootstrap_resamples > MAX_BOOTSTRAP_RESAMPLES {
            return refuse(
                "bootstrap_resamples",
                format!(
                    "at most {MAX_BOOTSTRAP_RESAMPLES} (got {}); 200 to 2,000 give stable 95 % intervals",
                    self.bootstrap_resamples
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return refuse("threshold", "must be between 0 and 1".to_owned());
        }
        if let Some(unknown) = self.unknown_intersected(schema) {
            return refuse("intersections", not_sensitive(unknown, schema).message);
        }
        Ok(())
    }

    /// The first attribute an intersection names that is not one of the dataset's sensitive attributes.
    fn unknown_intersected<'a>(&'a self, schema: &DatasetSchema) -> Option<&'a str> {
        self.intersections
            .iter()
            .flat_map(|(first, second)| [first, second])
            .find(|attribute| !schema.sensitive.contains(attribute))
            .map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct EvaluationResult {
    pub task: Task,
    pub overall: BinaryMetrics,
    pub by_group: BTreeMap<String, Vec<GroupMetrics>>,
    pub fairness: BTreeMap<String, FairnessMetrics>,
    /// 95 % bootstrap intervals of the headline metrics.
    pub intervals: BTreeMap<String, crate::bootstrap::Interval>,
    pub warnings: Vec<String>,
    /// The overall ROC curve, thinned to about [`ROC_CURVE_POINTS`] points (absent in reports made before
    /// it was kept, and then not written back, so their digests do not change).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roc_curve: Vec<[f64; 2]>,
}

/// About how many points a report keeps of the ROC curve: enough to draw it.
pub const ROC_CURVE_POINTS: usize = 100;

/// The version of the metric definitions, recorded with every evaluation.
pub const ENGINE_VERSION: &str = concat!("modelgate-eval ", env!("CARGO_PKG_VERSION"));

/// One group's multiclass or regression metrics.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Segment<M> {
    pub group: String,
    pub count: usize,
    pub small: bool,
    pub metrics: M,
}

/// The report of a multiclass or regression evaluation: overall and per group (fairlearn's between-group
/// metrics are defined for binary decisions, so there is no fairness section).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct OtherResult<M> {
    pub task: Task,
    pub overall: M,
    pub by_group: BTreeMap<String, Vec<Segment<M>>>,
    pub warnings: Vec<String>,
}

/// Per attribute, the groups with their defined metrics by name.
pub type GroupValues<'a> = BTreeMap<&'a str, Vec<(&'a str, Vec<(&'static str, f64)>)>>;

/// A stored evaluation's results, read back typed: the report of its task and, in model mode, what moved
/// under perturbation. The one reading of `results_json`: evidence, card exports and the API all start
/// here, and results that do not parse are an error, never skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResults {
    pub report: Report,
    pub robustness: Option<Robustness>,
}

/// The report of one evaluation, by task.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Binary(Box<EvaluationResult>),
    Multiclass(OtherResult<MulticlassMetrics>),
    Regression(OtherResult<RegressionMetrics>),
}

/// Robustness in model mode, by task.
#[derive(Debug, Clone, PartialEq)]
pub enum Robustness {
    Binary(crate::robustness::RobustnessReport),
    Multiclass(crate::robustness::RobustnessReport<crate::robustness::ClassShift>),
    Regression(crate::robustness::RobustnessReport<crate::robustness::ValueShift>),
}

impl Robustness {
    /// The worst share of changed decisions under noise (classifiers only).
    pub fn max_noise_flip_rate(&self) -> Option<f64> {
        match self {
            Self::Binary(report) => report.max_noise_flip_rate,
            Self::Multiclass(report) => report.max_noise_flip_rate,
            Self::Regression(report) => report.max_noise_flip_rate,
        }
    }
}

impl StoredResults {
    /// Reads the JSON an evaluation stored; the error says what does not fit.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut document: serde_json::Value =
            serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
        let robustness = document
            .as_object_mut()
            .and_then(|sections| sections.remove("robustness"));
        let task: Task = serde_json::from_value(document["task"].clone())
            .map_err(|error| format!("task: {error}"))?;
        let report = match task {
            Task::Binary => {
                serde_json::from_value(document).map(|report| Report::Binary(Box::new(report)))
            }
            Task::Multiclass => serde_json::from_value(document).map(Report::Multiclass),
            Task::Regression => serde_json::from_value(document).map(Report::Regression),
        }
        .map_err(|error| format!("the {} report: {error}", task.as_str()))?;
        let robustness = robustness
            .map(|value| match task {
                Task::Binary => serde_json::from_value(value).map(Robustness::Binary),
                Task::Multiclass => serde_json::from_value(value).map(Robustness::Multiclass),
                Task::Regression => serde_json::from_value(value).map(Robustness::Regression),
            })
            .transpose()
            .map_err(|error| format!("robustness: {error}"))?;
        Ok(Self { report, robustness })
    }

    pub fn task(&self) -> Task {
        match &self.report {
            Report::Binary(_) => Task::Binary,
            Report::Multiclass(_) => Task::Multiclass,
            Report::Regression(_) => Task::Regression,
        }
    }

    /// The overall metrics that are defined, by name.
    pub fn overall(&self) -> Vec<(&'static str, f64)> {
        match &self.report {
            Report::Binary(report) => report.overall.defined(),
            Report::Multiclass(report) => report.overall.defined(),
            Report::Regression(report) => report.overall.defined(),
        }
    }

    /// Per attribute, per group: the group's defined metrics.
    pub fn groups(&self) -> GroupValues<'_> {
        fn collect<M>(
            by_group: &BTreeMap<String, Vec<Segment<M>>>,
            defined: impl Fn(&M) -> Vec<(&'static str, f64)>,
        ) -> GroupValues<'_> {
            by_group
                .iter()
                .map(|(attribute, segments)| {
                    let groups = segments
                        .iter()
                        .map(|segment| (segment.group.as_str(), defined(&segment.metrics)))
                        .collect();
                    (attribute.as_str(), groups)
                })
                .collect()
        }
        match &self.report {
            Report::Binary(report) => report
                .by_group
                .iter()
                .map(|(attribute, groups)| {
                    let groups = groups
                        .iter()
                        .map(|group| (group.group.as_str(), group.metrics.defined()))
                        .collect();
                    (attribute.as_str(), groups)
                })
                .collect(),
            Report::Multiclass(report) => collect(&report.by_group, MulticlassMetrics::defined),
            Report::Regression(report) => collect(&report.by_group, RegressionMetrics::defined),
        }
    }

    /// fairlearn's between-group metrics per attribute (binary tasks only).
    pub fn fairness(&self) -> Option<&BTreeMap<String, crate::FairnessMetrics>> {
        match &self.report {
            Report::Binary(report) => Some(&report.fairness),
            _ => None,
        }
    }
}

/// The report for the dataset's task, as JSON: [`evaluate_predictions`] for binary labels, multiclass
/// (accuracy, macro and weighted F1, per-class precision and recall, log loss when the file has a
/// probability per class) or regression (MAE, RMSE, R², MAPE) otherwise.
pub fn evaluate(
    table: &Table,
    schema: &DatasetSchema,
    settings: &Settings,
    progress: &(dyn Fn(f64) -> bool + Sync),
) -> Result<serde_json::Value, DatasetError> {
    let value = match schema.task {
        Task::Binary => {
            serde_json::to_value(evaluate_predictions(table, schema, settings, progress)?)
        }
        Task::Multiclass => serde_json::to_value(evaluate_multiclass(table, schema, settings)?),
        Task::Regression => serde_json::to_value(evaluate_regression(table, schema, settings)?),
    };
    value.map_err(|error| {
        DatasetError::new(None, None, format!("the report cannot be written: {error}"))
    })
}

/// An attribute's name and, per group, the group's name and rows.
type AttributeRows = (String, Vec<(String, Vec<usize>)>);

/// Each sensitive attribute's groups, then each asked-for intersection's (named `a & b`).
fn attribute_groups(
    table: &Table,
    schema: &DatasetSchema,
    settings: &Settings,
) -> Result<Vec<(String, Groups)>, DatasetError> {
    let mut attributes: Vec<(String, Groups)> = Vec::new();
    for attribute in &schema.sensitive {
        attributes.push((attribute.clone(), table.groups(attribute)?));
    }
    for (first, second) in &settings.intersections {
        let find = |name: &str| {
            attributes
                .iter()
                .find(|(attribute, _)| attribute == name)
                .map(|(_, groups)| groups)
                .ok_or_else(|| not_sensitive(name, schema))
        };
        let crossed = find(first)?.intersect(find(second)?);
        attributes.push((format!("{first} & {second}"), crossed));
    }
    Ok(attributes)
}

/// The rows of each group of each sensitive attribute (and of each asked-for intersection).
fn group_rows(
    table: &Table,
    schema: &DatasetSchema,
    settings: &Settings,
) -> Result<Vec<AttributeRows>, DatasetError> {
    let attributes = attribute_groups(table, schema, settings)?;
    Ok(attributes
        .into_iter()
        .map(|(attribute, groups)| {
            let mut rows = vec![Vec::new(); groups.names.len()];
            for (row, &code) in groups.codes.iter().enumerate() {
                rows[code as usize].push(row);
            }
            (attribute, groups.names.into_iter().zip(rows).collect())
        })
        .collect())
}

fn not_sensitive(name: &str, schema: &DatasetSchema) -> DatasetError {
    DatasetError::new(
        None,
        Some(name),
        format!(
            "an intersection names {name:?}, which is not a sensitive attribute of the dataset (it has: {}); intersect two of those",
            schema.sensitive.join(", ")
        ),
    )
}

/// Computes `metrics` per group, with the small-group warnings.
fn other_report<M>(
    task: Task,
    overall: M,
    groups: Vec<AttributeRows>,
    minimum_size: usize,
    metrics: impl Fn(&[usize]) -> M,
) -> OtherResult<M> {
    let mut warnings = Vec::new();
    let mut by_group = BTreeMap::new();
    for (attribute, members) in groups {
        let segments: Vec<Segment<M>> = members
            .into_iter()
            .map(|(group, rows)| {
                if rows.len() < minimum_size {
                    warnings.push(format!(
                        "group {attribute}={group} has {} rows, fewer than {minimum_size}: its numbers are uncertain",
                        rows.len()
                    ));
                }
                Segment {
                    count: rows.len(),
                    small: rows.len() < minimum_size,
                    metrics: metrics(&rows),
                    group,
                }
            })
            .collect();
        by_group.insert(attribute, segments);
    }
    OtherResult {
        task,
        overall,
        by_group,
        warnings,
    }
}

fn evaluate_multiclass(
    table: &Table,
    schema: &DatasetSchema,
    settings: &Settings,
) -> Result<OtherResult<MulticlassMetrics>, DatasetError> {
    let missing_prediction = || {
        DatasetError::new(
            None,
            None,
            "a multiclass evaluation needs the column of predicted classes (prediction_column, --prediction-column)",
        )
    };
    let prediction_column = settings
        .prediction_column
        .as_deref()
        .ok_or_else(missing_prediction)?;
    let classes = table.class_labels(&schema.label)?;
    let labels: Vec<String> = classes
        .codes
        .iter()
        .map(|&code| classes.names[code as usize].clone())
        .collect();
    let predicted = table.column(prediction_column)?;
    // Probabilities: one column per class named `<prefix><class>`, all or none.
    let prefix = settings.score_column.as_str();
    let probability_columns: Vec<String> = classes
        .names
        .iter()
        .map(|class| format!("{prefix}{class}"))
        .collect();
    let probabilities: Option<Vec<Vec<f64>>> = if !prefix.is_empty()
        && probability_columns
            .iter()
            .all(|column| table.has_column(column))
    {
        let columns: Vec<&[f64]> = probability_columns
            .iter()
            .map(|column| table.numbers(column))
            .collect::<Result<_, _>>()?;
        Some(
            (0..table.row_count())
                .map(|row| columns.iter().map(|column| column[row]).collect())
                .collect(),
        )
    } else {
        None
    };
    let overall = multiclass_metrics(
        &labels,
        &predicted,
        &classes.names,
        probabilities.as_deref(),
    );
    let groups = group_rows(table, schema, settings)?;
    Ok(other_report(
        Task::Multiclass,
        overall,
        groups,
        settings.minimum_group_size,
        |rows| {
            let pick = |values: &[String]| -> Vec<String> {
                rows.iter().map(|&row| values[row].clone()).collect()
            };
            let group_probabilities: Option<Vec<Vec<f64>>> = probabilities
                .as_ref()
                .map(|all| rows.iter().map(|&row| all[row].clone()).collect());
            multiclass_metrics(
                &pick(&labels),
                &pick(&predicted),
                &classes.names,
                group_probabilities.as_deref(),
            )
        },
    ))
}

fn evaluate_regression(
    table: &Table,
    schema: &DatasetSchema,
    settings: &Settings,
) -> Result<OtherResult<RegressionMetrics>, DatasetError> {
    let truth = table.numbers(&schema.label)?;
    let predicted = table.numbers(&settings.score_column)?;
    let overall = regression_metrics(truth, predicted);
    let groups = group_rows(table, schema, settings)?;
    Ok(other_report(
        Task::Regression,
        overall,
        groups,
        settings.minimum_group_size,
        |rows| {
            let truth: Vec<f64> = rows.iter().map(|&row| truth[row]).collect();
            let predicted: Vec<f64> = rows.iter().map(|&row| predicted[row]).collect();
            regression_metrics(&truth, &predicted)
        },
    ))
}

/// Computes the report from a table holding the label, the score and the sensitive columns. `progress`
/// is told the share done (0 to 1) as the work goes and answers whether to go on; when it answers no, the
/// bootstrap stops early and the caller, which asked to stop, discards the result.
pub fn evaluate_predictions(
    predictions: &Table,
    schema: &DatasetSchema,
    settings: &Settings,
    progress: &(dyn Fn(f64) -> bool + Sync),
) -> Result<EvaluationResult, DatasetError> {
    let labels = predictions.binary_labels(schema)?;
    let scores = predictions.numbers(&settings.score_column)?;
    if let Some((row, score)) = scores
        .iter()
        .enumerate()
        .find(|(_, score)| !(0.0..=1.0).contains(*score))
    {
        return Err(predictions.error_at(
            row,
            &settings.score_column,
            format!("{score} is not a probability in [0, 1]"),
        ));
    }
    let weights = match &schema.weight {
        Some(column) if predictions.has_column(column) => Some(predictions.numbers(column)?),
        _ => None,
    };
    let attributes = attribute_groups(predictions, schema, settings)?;
    let _ = progress(0.0);
    let ranked = Ranked::new(&labels, scores, weights);
    // Attribute codes in rank order, so every pass below reads memory front to back.
    let attributes: Vec<(String, Groups)> = attributes
        .into_iter()
        .map(|(attribute, groups)| {
            let codes = ranked.gather(&groups.codes);
            (
                attribute,
                Groups {
                    names: groups.names,
                    codes,
                },
            )
        })
        .collect();
    // The overall pass and each attribute's grouped pass are independent: run them side by side.
    let (overall, grouped) = std::thread::scope(|scope| {
        let passes: Vec<_> = attributes
            .iter()
            .map(|(_, groups)| {
                let ranked = &ranked;
                scope.spawn(move || {
                    ranked.grouped_metrics(
                        &groups.codes,
                        groups.names.len(),
                        settings.threshold,
                        settings.bins,
                    )
                })
            })
            .collect();
        let overall = ranked.metrics(settings.threshold, settings.bins);
        let grouped: Vec<Vec<BinaryMetrics>> = passes
            .into_iter()
            .map(|pass| {
                pass.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        (overall, grouped)
    });
    let _ = progress(0.2);
    let mut by_group = BTreeMap::new();
    let mut fairness = BTreeMap::new();
    let mut warnings = Vec::new();
    for ((attribute, groups), metrics) in attributes.iter().zip(grouped) {
        let matrices: Vec<_> = metrics
            .iter()
            .map(|metrics| metrics.confusion_matrix)
            .collect();
        let segments = segments(groups, metrics, settings.minimum_group_size);
        for segment in segments.iter().filter(|segment| segment.small) {
            warnings.push(format!(
                "group {attribute}={} has {} rows, fewer than {}: its numbers are uncertain",
                segment.group, segment.count, settings.minimum_group_size
            ));
        }
        by_group.insert(attribute.clone(), segments);
        fairness.insert(
            attribute.clone(),
            fairness_from_confusion(&groups.names, &matrices),
        );
    }
    let resamples = settings.bootstrap_resamples.max(1) as f64;
    let intervals = crate::bootstrap::bootstrap_intervals(
        &ranked,
        &attributes,
        settings.threshold,
        settings.bootstrap_resamples,
        settings.seed,
        &|done| progress(0.2 + 0.8 * done as f64 / resamples),
    );
    let _ = progress(1.0);
    Ok(EvaluationResult {
        task: Task::Binary,
        overall,
        by_group,
        fairness,
        intervals,
        warnings,
        roc_curve: ranked.roc_curve(ROC_CURVE_POINTS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::read_csv;

    /// Default settings scoring `score_column`: threshold 0.5, 10 bins, groups of 30, no bootstrap.
    fn settings(score_column: &str) -> Settings {
        Settings {
            score_column: score_column.to_owned(),
            threshold: 0.5,
            bins: 10,
            minimum_group_size: 30,
            bootstrap_resamples: 0,
            seed: 0,
            prediction_column: None,
            intersections: Vec::new(),
        }
    }

    #[test]
    fn a_predictions_file_yields_overall_group_and_fairness_metrics() {
        let csv_text = "default,sex,score\n1,f,0.9\n0,f,0.2\n1,m,0.7\n0,m,0.6\n0,m,0.1\n1,f,0.4\n";
        let table = read_csv(csv_text.as_bytes()).unwrap();
        let schema = DatasetSchema {
            task: Default::default(),
            label: "default".into(),
            features: vec![],
            sensitive: vec!["sex".into()],
            weight: None,
            positive_label: "1".into(),
            classes: Vec::new(),
        };
        let settings = Settings {
            bootstrap_resamples: 50,
            seed: 7,
            ..settings("score")
        };
        let result = evaluate_predictions(&table, &schema, &settings, &|_| true).unwrap();
        assert_eq!(result.overall.count, 6);
        assert_eq!(result.by_group["sex"].len(), 2);
        assert_eq!(result.warnings.len(), 2, "both groups are small");
        let fairness = &result.fairness["sex"];
        assert_eq!(fairness.selection_rate["f"], 1.0 / 3.0);
        assert_eq!(fairness.selection_rate["m"], 2.0 / 3.0);
        assert_eq!(fairness.four_fifths_holds, Some(false));
        assert_eq!(result.intervals["accuracy"].resamples, 50);
        let bad = read_csv(b"default,sex,score\n1,f,1.5\n0,m,0.2\n").unwrap();
        let error = evaluate_predictions(&bad, &schema, &settings, &|_| true).unwrap_err();
        assert_eq!(
            (error.line, error.column.as_deref()),
            (Some(2), Some("score"))
        );
        let missing = read_csv(b"default,score\n1,0.5\n0,0.2\n").unwrap();
        assert_eq!(
            evaluate_predictions(&missing, &schema, &settings, &|_| true)
                .unwrap_err()
                .column
                .as_deref(),
            Some("sex")
        );
    }

    #[test]
    fn intersections_are_groups_of_two_attributes_and_match_a_subset_evaluation() {
        let csv_text = "default,sex,region,score\n1,f,n,0.9\n0,f,s,0.2\n1,m,n,0.7\n0,m,n,0.6\n0,m,s,0.1\n1,f,n,0.4\n1,f,s,0.8\n0,m,s,0.3\n";
        let table = read_csv(csv_text.as_bytes()).unwrap();
        let schema = DatasetSchema {
            task: Default::default(),
            label: "default".into(),
            features: vec![],
            sensitive: vec!["sex".into(), "region".into()],
            weight: None,
            positive_label: "1".into(),
            classes: Vec::new(),
        };
        let mut settings = Settings {
            minimum_group_size: 1,
            intersections: vec![("sex".into(), "region".into())],
            ..settings("score")
        };
        let result = evaluate_predictions(&table, &schema, &settings, &|_| true).unwrap();
        let crossed = &result.by_group["sex & region"];
        let names: Vec<&str> = crossed.iter().map(|group| group.group.as_str()).collect();
        assert_eq!(names, ["f & n", "f & s", "m & n", "m & s"]);
        // The one-pass grouped metrics equal the metrics of the group's rows on their own.
        let f_n = &crossed[0].metrics;
        let alone = crate::binary_metrics(&[true, true], &[0.9, 0.4], None, 0.5, 10);
        assert_eq!(f_n, &alone);
        let m_s = &crossed[3].metrics;
        assert_eq!(
            m_s.roc_auc.value, None,
            "one class: undefined, with a reason"
        );
        assert!(m_s.roc_auc.reason.is_some());
        assert!(result.fairness.contains_key("sex & region"));

        settings.intersections = vec![("sex".into(), "age".into())];
        let error = evaluate_predictions(&table, &schema, &settings, &|_| true).unwrap_err();
        assert_eq!(error.column.as_deref(), Some("age"));
        assert!(
            error.message.contains("not a sensitive attribute"),
            "{error}"
        );
    }

    #[test]
    fn multiclass_and_regression_datasets_get_their_own_metrics_overall_and_per_group() {
        let csv_text = "species,sex,predicted,p_a,p_b,p_c\na,f,a,0.7,0.2,0.1\nb,f,b,0.1,0.8,0.1\nc,m,b,0.2,0.5,0.3\na,m,a,0.6,0.3,0.1\nc,f,c,0.1,0.1,0.8\n";
        let table = read_csv(csv_text.as_bytes()).unwrap();
        let schema = DatasetSchema {
            task: Task::Multiclass,
            label: "species".into(),
            features: vec![],
            sensitive: vec!["sex".into()],
            weight: None,
            positive_label: String::new(),
            classes: Vec::new(),
        };
        let mut settings = Settings {
            prediction_column: Some("predicted".into()),
            ..settings("p_")
        };
        let report = evaluate(&table, &schema, &settings, &|_| true).unwrap();
        assert_eq!(report["task"], "multiclass");
        assert_eq!(report["overall"]["accuracy"]["value"], 0.8);
        assert!(
            report["overall"]["log_loss"]["value"].is_number(),
            "{report}"
        );
        assert_eq!(report["by_group"]["sex"][0]["group"], "f");
        assert_eq!(
            report["by_group"]["sex"][0]["metrics"]["accuracy"]["value"],
            1.0
        );
        assert_eq!(
            report["by_group"]["sex"][1]["metrics"]["accuracy"]["value"],
            0.5
        );
        settings.score_column = String::new();
        let without = evaluate(&table, &schema, &settings, &|_| true).unwrap();
        assert!(without["overall"]["log_loss"]["value"].is_null());
        settings.prediction_column = None;
        let error = evaluate(&table, &schema, &settings, &|_| true).unwrap_err();
        assert!(error.message.contains("prediction_column"), "{error}");

        let csv_text = "price,region,estimate\n10,n,12\n20,n,18\n30,s,33\n40,s,40\n";
        let table = read_csv(csv_text.as_bytes()).unwrap();
        let schema = DatasetSchema {
            task: Task::Regression,
            label: "price".into(),
            sensitive: vec!["region".into()],
            ..schema
        };
        settings.score_column = "estimate".into();
        let report = evaluate(&table, &schema, &settings, &|_| true).unwrap();
        assert_eq!(report["task"], "regression");
        assert_eq!(report["overall"]["mae"]["value"], 1.75);
        assert_eq!(
            report["by_group"]["region"][1]["metrics"]["mae"]["value"],
            1.5
        );
        let text_label = read_csv(b"price,region,estimate\nhigh,n,12\n").unwrap();
        let error = evaluate(&text_label, &schema, &settings, &|_| true).unwrap_err();
        assert_eq!(error.column.as_deref(), Some("price"));
    }

    #[test]
    fn weights_count_overall_per_group_and_in_fairness() {
        let csv_text = "default,sex,w,score\n1,f,2,0.9\n0,f,1,0.6\n1,m,1,0.7\n0,m,3,0.6\n0,m,1,0.1\n1,f,1,0.4\n";
        let table = read_csv(csv_text.as_bytes()).unwrap();
        let schema = DatasetSchema {
            task: Default::default(),
            label: "default".into(),
            features: vec![],
            sensitive: vec!["sex".into()],
            weight: Some("w".into()),
            positive_label: "1".into(),
            classes: Vec::new(),
        };
        let settings = Settings {
            minimum_group_size: 1,
            bootstrap_resamples: 20,
            seed: 1,
            ..settings("score")
        };
        let result = evaluate_predictions(&table, &schema, &settings, &|_| true).unwrap();
        let f = crate::binary_metrics(
            &[true, false, true],
            &[0.9, 0.6, 0.4],
            Some(&[2.0, 1.0, 1.0]),
            0.5,
            10,
        );
        assert_eq!(result.by_group["sex"][0].metrics, f);
        assert_eq!(result.by_group["sex"][0].count, 3, "rows, not weight");
        // Selection rate of m: rows scored >= 0.5 weigh 1 + 3 of 5.
        assert_eq!(result.fairness["sex"].selection_rate["m"], 4.0 / 5.0);
        assert_eq!(result.fairness["sex"].selection_rate["f"], 3.0 / 4.0);
    }

    #[test]
    fn settings_out_of_range_name_their_field() {
        let schema = DatasetSchema {
            task: Default::default(),
            label: "default".into(),
            features: vec![],
            sensitive: vec!["sex".into(), "region".into()],
            weight: None,
            positive_label: "1".into(),
            classes: Vec::new(),
        };
        assert_eq!(settings("score").check(&schema), Ok(()));
        let field = |settings: Settings| settings.check(&schema).unwrap_err().field;
        assert_eq!(
            field(Settings {
                bins: 1,
                ..settings("score")
            }),
            "bins"
        );
        assert_eq!(
            field(Settings {
                bins: 101,
                ..settings("score")
            }),
            "bins"
        );
        assert_eq!(
            field(Settings {
                bootstrap_resamples: MAX_BOOTSTRAP_RESAMPLES + 1,
                ..settings("score")
            }),
            "bootstrap_resamples"
        );
        assert_eq!(
            field(Settings {
                threshold: 1.5,
                ..settings("score")
            }),
            "threshold"
        );
        let crossed = Settings {
            intersections: vec![("sex".into(), "age".into())],
            ..settings("score")
        };
        let error = crossed.check(&schema).unwrap_err();
        assert_eq!(error.field, "intersections");
        assert!(error.message.contains("\"age\""), "{error:?}");
    }
}
