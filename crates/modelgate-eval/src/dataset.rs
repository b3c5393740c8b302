//! Evaluation datasets and predictions files: reading CSV, checking it against its declared schema (each
//! problem names the column and, for CSV, the line), and profiling every column.

use serde::Serialize;
use std::collections::BTreeMap;

/// What a dataset's columns mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DatasetSchema {
    pub label: String,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub sensitive: Vec<String>,
    #[serde(default)]
    pub weight: Option<String>,
    /// The label value that counts as positive.
    pub positive_label: String,
}

/// A table read from CSV: a header and rows of text cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A problem with a file, where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasetError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub message: String,
}

impl std::error::Error for DatasetError {}

impl std::fmt::Display for DatasetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(column) = &self.column {
            write!(f, "column {column:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl DatasetError {
    fn new(line: Option<u64>, column: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            line,
            column: column.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Reads a CSV file with a header row; rows of a different length are an error naming their line.
pub fn read_csv(bytes: &[u8]) -> Result<Table, DatasetError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let columns: Vec<String> = reader
        .headers()
        .map_err(|error| {
            DatasetError::new(Some(1), None, format!("cannot read the header: {error}"))
        })?
        .iter()
        .map(|name| name.trim().to_owned())
        .collect();
    if columns.is_empty() || columns.iter().all(String::is_empty) {
        return Err(DatasetError::new(
            Some(1),
            None,
            "the file is empty: expected a header row naming the columns",
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| {
            let line = error.position().map(|position| position.line());
            let message = match error.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => {
                    format!("ragged row: {len} fields where the header has {expected_len}")
                }
                _ => error.to_string(),
            };
            DatasetError::new(line, None, message)
        })?;
        rows.push(record.iter().map(str::to_owned).collect());
    }
    if rows.is_empty() {
        return Err(DatasetError::new(
            None,
            None,
            "the file has a header but no rows",
        ));
    }
    Ok(Table { columns, rows })
}

impl Table {
    fn index(&self, column: &str) -> Result<usize, DatasetError> {
        self.columns
            .iter()
            .position(|name| name == column)
            .ok_or_else(|| {
                DatasetError::new(
                    Some(1),
                    Some(column),
                    format!("missing column; the file has {}", self.columns.join(", ")),
                )
            })
    }

    /// The cells of a column.
    pub fn column(&self, column: &str) -> Result<Vec<&str>, DatasetError> {
        let index = self.index(column)?;
        Ok(self.rows.iter().map(|row| row[index].as_str()).collect())
    }

    /// A numeric column; empty, NaN or non-numeric cells are errors naming their line.
    pub fn numbers(&self, column: &str) -> Result<Vec<f64>, DatasetError> {
        self.column(column)?
            .into_iter()
            .enumerate()
            .map(|(row, cell)| {
                cell.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|value| value.is_finite())
                    .ok_or_else(|| {
                        DatasetError::new(
                            Some(row as u64 + 2),
                            Some(column),
                            format!("{cell:?} is not a finite number"),
                        )
                    })
            })
            .collect()
    }

    /// The `features` columns as a row-major `f32` matrix, the input of a model.
    pub fn feature_matrix(&self, features: &[String]) -> Result<Vec<f32>, DatasetError> {
        let width = features.len();
        let mut matrix = vec![0f32; self.rows.len() * width];
        for (column_index, feature) in features.iter().enumerate() {
            for (row, value) in self.numbers(feature)?.into_iter().enumerate() {
                matrix[row * width + column_index] = value as f32;
            }
        }
        Ok(matrix)
    }

    /// The label column as booleans (`positive_label` → true); empty/NaN labels and a third class are
    /// errors naming their line.
    pub fn binary_labels(&self, schema: &DatasetSchema) -> Result<Vec<bool>, DatasetError> {
        let mut other: Option<String> = None;
        let mut labels = Vec::with_capacity(self.rows.len());
        for (row, cell) in self.column(&schema.label)?.into_iter().enumerate() {
            let cell = cell.trim();
            let line = Some(row as u64 + 2);
            if cell.is_empty()
                || cell.eq_ignore_ascii_case("nan")
                || cell.eq_ignore_ascii_case("null")
            {
                return Err(DatasetError::new(
                    line,
                    Some(&schema.label),
                    "the label is missing (empty or NaN)",
                ));
            }
            if cell == schema.positive_label {
                labels.push(true);
                continue;
            }
            match &other {
                Some(seen) if seen != cell => {
                    return Err(DatasetError::new(
                        line,
                        Some(&schema.label),
                        format!(
                            "{cell:?} is a third class; a binary label has the positive label {:?} and one other",
                            schema.positive_label
                        ),
                    ));
                }
                Some(_) => {}
                None => other = Some(cell.to_owned()),
            }
            labels.push(false);
        }
        if !labels.contains(&true) {
            return Err(DatasetError::new(
                None,
                Some(&schema.label),
                format!(
                    "the positive label {:?} never occurs",
                    schema.positive_label
                ),
            ));
        }
        Ok(labels)
    }

    /// Joins a predictions file to this (registered) dataset by row: the predictions must have as many
    /// rows, and where they carry the label column its values must equal the dataset's, so labels and
    /// sensitive attributes always come from the dataset, never from the client. The score column is
    /// copied in under its own name (replacing a dataset column of that name), so later errors name it and
    /// its line as the client knows them.
    pub fn join_predictions(
        &mut self,
        predictions: &Table,
        label: &str,
        score_column: &str,
    ) -> Result<(), DatasetError> {
        if predictions.rows.len() != self.rows.len() {
            return Err(DatasetError::new(
                None,
                None,
                format!(
                    "the predictions file has {} rows and the dataset {}; predictions must be row-aligned with the dataset (same rows, same order)",
                    predictions.rows.len(),
                    self.rows.len()
                ),
            ));
        }
        let scores = predictions.column(score_column)?;
        if predictions.columns.iter().any(|name| name == label) {
            let theirs = predictions.column(label)?;
            let ours = self.column(label)?;
            if let Some(row) = (0..ours.len()).find(|&row| ours[row].trim() != theirs[row].trim()) {
                return Err(DatasetError::new(
                    Some(row as u64 + 2),
                    Some(label),
                    format!(
                        "the predictions file has label {:?} where the dataset has {:?}; predictions must be row-aligned with the dataset",
                        theirs[row], ours[row]
                    ),
                ));
            }
        }
        let scores: Vec<String> = scores.into_iter().map(str::to_owned).collect();
        match self.columns.iter().position(|name| name == score_column) {
            Some(index) => {
                for (row, score) in self.rows.iter_mut().zip(scores) {
                    row[index] = score;
                }
            }
            None => {
                self.columns.push(score_column.to_owned());
                for (row, score) in self.rows.iter_mut().zip(scores) {
                    row.push(score);
                }
            }
        }
        Ok(())
    }
}

/// Checks a dataset against its schema: every declared column exists, labels are binary and present,
/// features and the weight are numeric.
pub fn validate(table: &Table, schema: &DatasetSchema) -> Result<(), DatasetError> {
    table.binary_labels(schema)?;
    for column in schema.features.iter().chain(&schema.sensitive) {
        table.column(column)?;
    }
    for column in schema.features.iter().chain(&schema.weight) {
        table.numbers(column)?;
    }
    Ok(())
}

/// A column's summary: the reference for reviewers and, later, for drift.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnProfile {
    Number {
        nulls: usize,
        min: f64,
        max: f64,
        mean: f64,
        std: f64,
        quantiles: BTreeMap<String, f64>,
    },
    String {
        nulls: usize,
        distinct: usize,
        top: Vec<(String, usize)>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub rows: usize,
    pub columns: BTreeMap<String, ColumnProfile>,
}

fn is_null(cell: &str) -> bool {
    let cell = cell.trim();
    cell.is_empty() || cell.eq_ignore_ascii_case("nan") || cell.eq_ignore_ascii_case("null")
}

/// Quantile with linear interpolation between closest ranks (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower as f64)
}

pub fn profile(table: &Table) -> Profile {
    let mut columns = BTreeMap::new();
    for (index, name) in table.columns.iter().enumerate() {
        let cells: Vec<&str> = table.rows.iter().map(|row| row[index].as_str()).collect();
        let nulls = cells.iter().filter(|cell| is_null(cell)).count();
        let present: Vec<&str> = cells
            .iter()
            .copied()
            .filter(|cell| !is_null(cell))
            .collect();
        let numbers: Option<Vec<f64>> = present
            .iter()
            .map(|cell| cell.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect();
        let summary = match numbers {
            Some(mut values) if !values.is_empty() => {
                values.sort_by(f64::total_cmp);
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let variance = if values.len() > 1 {
                    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                        / (values.len() - 1) as f64
                } else {
                    0.0
                };
                let quantiles = [
                    ("p05", 0.05),
                    ("p25", 0.25),
                    ("p50", 0.5),
                    ("p75", 0.75),
                    ("p95", 0.95),
                ]
                .into_iter()
                .map(|(label, q)| (label.to_owned(), quantile(&values, q)))
                .collect();
                ColumnProfile::Number {
                    nulls,
                    min: values[0],
                    max: values[values.len() - 1],
                    mean,
                    std: variance.sqrt(),
                    quantiles,
                }
            }
            _ => {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for cell in &present {
                    *counts.entry(cell).or_default() += 1;
                }
                let distinct = counts.len();
                let mut top: Vec<(String, usize)> = counts
                    .into_iter()
                    .map(|(value, count)| (value.to_owned(), count))
                    .collect();
                top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                top.truncate(10);
                ColumnProfile::String {
                    nulls,
                    distinct,
                    top,
                }
            }
        };
        columns.insert(name.clone(), summary);
    }
    Profile {
        rows: table.rows.len(),
        columns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_join_the_dataset_by_row_and_may_not_change_its_labels() {
        let dataset = read_csv(b"income,sex,default\n1,f,1\n2,m,0\n3,f,0\n").unwrap();
        let mut joined = dataset.clone();
        let predictions = read_csv(b"default,score\n1,0.9\n0,0.2\n0,0.4\n").unwrap();
        joined
            .join_predictions(&predictions, "default", "score")
            .unwrap();
        assert_eq!(joined.numbers("score").unwrap(), [0.9, 0.2, 0.4]);
        assert_eq!(joined.column("sex").unwrap(), ["f", "m", "f"]);

        let short = read_csv(b"score\n0.9\n0.2\n").unwrap();
        let error = dataset
            .clone()
            .join_predictions(&short, "default", "score")
            .unwrap_err();
        assert!(
            error.message.contains("2 rows and the dataset 3"),
            "{error}"
        );

        let relabelled = read_csv(b"default,score\n1,0.9\n1,0.2\n0,0.4\n").unwrap();
        let error = dataset
            .clone()
            .join_predictions(&relabelled, "default", "score")
            .unwrap_err();
        assert_eq!(
            (error.line, error.column.as_deref()),
            (Some(3), Some("default"))
        );

        let error = dataset
            .clone()
            .join_predictions(&predictions, "default", "probability")
            .unwrap_err();
        assert_eq!(error.column.as_deref(), Some("probability"));
    }

    fn schema() -> DatasetSchema {
        DatasetSchema {
            label: "default".into(),
            features: vec!["income".into()],
            sensitive: vec!["sex".into()],
            weight: None,
            positive_label: "1".into(),
        }
    }

    #[test]
    fn bad_files_name_the_column_and_line() {
        let cases: [(&str, Option<u64>, Option<&str>, &str); 7] = [
            ("", Some(1), None, "empty"),
            ("income,sex,default\n", None, None, "no rows"),
            (
                "income,sex\n1,f\n",
                Some(1),
                Some("default"),
                "missing column",
            ),
            (
                "income,sex,default\n1,f,1\n2,m\n",
                Some(3),
                None,
                "ragged row",
            ),
            (
                "income,sex,default\n1,f,1\n2,m,\n",
                Some(3),
                Some("default"),
                "label is missing",
            ),
            (
                "income,sex,default\n1,f,1\n2,m,0\n3,m,2\n",
                Some(4),
                Some("default"),
                "third class",
            ),
            (
                "income,sex,default\n1,f,1\nabc,m,0\n",
                Some(3),
                Some("income"),
                "not a finite number",
            ),
        ];
        for (csv_text, line, column, message) in cases {
            let error = read_csv(csv_text.as_bytes())
                .and_then(|table| validate(&table, &schema()))
                .unwrap_err();
            assert_eq!(error.line, line, "{csv_text:?}: {error}");
            assert_eq!(error.column.as_deref(), column, "{csv_text:?}: {error}");
            assert!(error.message.contains(message), "{csv_text:?}: {error}");
        }
        let no_positive = read_csv(b"income,sex,default\n1,f,0\n").unwrap();
        assert!(
            validate(&no_positive, &schema())
                .unwrap_err()
                .message
                .contains("never occurs")
        );
    }

    #[test]
    fn profiles_numbers_and_categories() {
        let table = read_csv(b"income,sex,default\n10,f,1\n20,m,0\n30,m,0\n,f,1\n").unwrap();
        validate(
            &read_csv(b"income,sex,default\n10,f,1\n20,m,0\n").unwrap(),
            &schema(),
        )
        .unwrap();
        let profile = profile(&table);
        assert_eq!(profile.rows, 4);
        match &profile.columns["income"] {
            ColumnProfile::Number {
                nulls,
                min,
                max,
                mean,
                quantiles,
                ..
            } => {
                assert_eq!((*nulls, *min, *max, *mean), (1, 10.0, 30.0, 20.0));
                assert_eq!(quantiles["p50"], 20.0);
            }
            other => panic!("{other:?}"),
        }
        match &profile.columns["sex"] {
            ColumnProfile::String { distinct, top, .. } => {
                assert_eq!(*distinct, 2);
                assert_eq!(top[0], ("f".to_owned(), 2));
            }
            other => panic!("{other:?}"),
        }
    }
}
