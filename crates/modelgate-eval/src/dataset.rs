//! Evaluation datasets and predictions files: reading CSV or Parquet into a columnar table, checking it
//! against its declared schema (each problem names the column and the CSV line or Parquet row), and
//! profiling every column.

use crate::fairness::Groups;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// What a dataset's label is, and so which metrics apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Two classes, one of them `positive_label`; a score per row.
    #[default]
    Binary,
    /// Any number of classes; a predicted class per row, and optionally a probability per class.
    Multiclass,
    /// A number; a predicted number per row.
    Regression,
}

impl Task {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "binary" => Some(Task::Binary),
            "multiclass" => Some(Task::Multiclass),
            "regression" => Some(Task::Regression),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Multiclass => "multiclass",
            Task::Regression => "regression",
        }
    }
}

/// What a dataset's columns mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DatasetSchema {
    #[serde(default)]
    pub task: Task,
    pub label: String,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub sensitive: Vec<String>,
    #[serde(default)]
    pub weight: Option<String>,
    /// The label value that counts as positive (binary only).
    #[serde(default)]
    pub positive_label: String,
    /// The classes a multiclass label may take (empty: whatever occurs); a label outside them is an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

/// A problem with a file, where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasetError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The 1-based data row, for formats without lines (Parquet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub message: String,
    /// The file is within the size limit but decodes to more than the server accepts.
    #[serde(skip)]
    pub too_large: bool,
}

impl std::error::Error for DatasetError {}

impl std::fmt::Display for DatasetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        } else if let Some(row) = self.row {
            write!(f, "row {row}: ")?;
        }
        if let Some(column) = &self.column {
            write!(f, "column {column:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// The file formats a dataset or predictions file may have; told apart by content, not by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    /// Parquet files start (and end) with the magic `PAR1`; everything else is read as CSV.
    pub fn detect(bytes: &[u8]) -> Self {
        if bytes.len() >= 8 && bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1") {
            Format::Parquet
        } else {
            Format::Csv
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// The code of a missing cell in a text column.
const MISSING: u32 = u32::MAX;

/// One column, typed. Columnar and compact on purpose: a 10M-row file is held as 8 bytes per number and 4
/// per text cell (a code into the column's distinct values), never as a string per cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers; NaN marks a missing cell (empty, `nan`, `null`, or a Parquet null).
    Number(Vec<f64>),
    /// Text: `codes[row]` indexes `dictionary` (first-seen order), [`MISSING`] marks a missing cell.
    Text {
        dictionary: Vec<String>,
        codes: Vec<u32>,
    },
}

impl Column {
    /// A cell as it reads, for messages.
    fn text(&self, row: usize) -> String {
        match self {
            Column::Number(values) if values[row].is_nan() => String::new(),
            Column::Number(values) => values[row].to_string(),
            Column::Text { codes, .. } if codes[row] == MISSING => String::new(),
            Column::Text { dictionary, codes } => dictionary[codes[row] as usize].clone(),
        }
    }

    fn is_missing(&self, row: usize) -> bool {
        match self {
            Column::Number(values) => values[row].is_nan(),
            Column::Text { codes, .. } => codes[row] == MISSING,
        }
    }
}

/// Builds a text column's dictionary as cells arrive.
#[derive(Default)]
struct TextBuilder {
    index: HashMap<String, u32>,
    dictionary: Vec<String>,
    codes: Vec<u32>,
}

impl TextBuilder {
    fn code(&mut self, cell: &str) -> u32 {
        if let Some(&code) = self.index.get(cell) {
            return code;
        }
        let code = self.dictionary.len() as u32;
        self.dictionary.push(cell.to_owned());
        self.index.insert(cell.to_owned(), code);
        code
    }

    fn finish(self) -> Column {
        Column::Text {
            dictionary: self.dictionary,
            codes: self.codes,
        }
    }
}

/// A table read from CSV or Parquet: named, typed columns of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    names: Vec<String>,
    columns: Vec<Column>,
    rows: usize,
    format: Format,
}

impl DatasetError {
    pub(crate) fn new(line: Option<u64>, column: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            line,
            row: None,
            column: column.map(str::to_owned),
            message: message.into(),
            too_large: false,
        }
    }
}

fn is_null(cell: &str) -> bool {
    let cell = cell.trim();
    cell.is_empty() || cell.eq_ignore_ascii_case("nan") || cell.eq_ignore_ascii_case("null")
}

/// Reads a dataset or predictions file in either format, keeping only the `wanted` columns (all when
/// `None`): an evaluation reads the few columns it needs, registration reads all of them to profile them.
pub fn read_table(bytes: bytes::Bytes, wanted: Option<&[&str]>) -> Result<Table, DatasetError> {
    read_table_within(bytes, wanted, u64::MAX)
}

/// [`read_table`], refusing a Parquet file whose wanted columns would take more than `max_decoded_bytes`
/// in memory (rows × columns × 8, from the file's metadata, before reading): a small, highly compressed
/// file must not exhaust the server's memory.
pub fn read_table_within(
    bytes: bytes::Bytes,
    wanted: Option<&[&str]>,
    max_decoded_bytes: u64,
) -> Result<Table, DatasetError> {
    match Format::detect(&bytes) {
        Format::Csv => read_csv_columns(&bytes, wanted),
        Format::Parquet => read_parquet(bytes, wanted, max_decoded_bytes),
    }
}

/// Reads a CSV file with a header row; rows of a different length are an error naming their line.
pub fn read_csv(bytes: &[u8]) -> Result<Table, DatasetError> {
    read_csv_columns(bytes, None)
}

/// One kept CSV column while reading: its cells back to back, split by `ends`.
#[derive(Default)]
struct RawColumn {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl RawColumn {
    fn cells(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            // Checked as UTF-8 when read.
            let cell = std::str::from_utf8(&self.bytes[start..end]).unwrap_or("");
            start = end;
            cell
        })
    }

    /// Numbers when every present cell is one; text otherwise.
    fn into_column(self) -> Column {
        let numbers: Option<Vec<f64>> = self
            .cells()
            .map(|cell| {
                if is_null(cell) {
                    Some(f64::NAN)
                } else {
                    cell.trim().parse::<f64>().ok()
                }
            })
            .collect();
        match numbers {
            Some(values) => Column::Number(values),
            None => {
                let mut builder = TextBuilder::default();
                builder.codes.reserve(self.ends.len());
                for cell in self.cells() {
                    let code = if is_null(cell) {
                        MISSING
                    } else {
                        builder.code(cell)
                    };
                    builder.codes.push(code);
                }
                builder.finish()
            }
        }
    }
}

fn read_csv_columns(bytes: &[u8], wanted: Option<&[&str]>) -> Result<Table, DatasetError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|error| {
            DatasetError::new(Some(1), None, format!("cannot read the header: {error}"))
        })?
        .iter()
        .map(|name| name.trim().to_owned())
        .collect();
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(DatasetError::new(
            Some(1),
            None,
            "the file is empty: expected a header row naming the columns",
        ));
    }
    let kept: Vec<usize> = (0..header.len())
        .filter(|&index| wanted.is_none_or(|wanted| wanted.contains(&header[index].as_str())))
        .collect();
    let mut raw: Vec<RawColumn> = kept.iter().map(|_| RawColumn::default()).collect();
    let mut record = csv::ByteRecord::new();
    let mut rows = 0;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                let line = error.position().map(|position| position.line());
                let message = match error.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("ragged row: {len} fields where the header has {expected_len}")
                    }
                    _ => error.to_string(),
                };
                return Err(DatasetError::new(line, None, message));
            }
        }
        for (column, &index) in raw.iter_mut().zip(&kept) {
            let cell = &record[index];
            if std::str::from_utf8(cell).is_err() {
                return Err(DatasetError::new(
                    Some(rows as u64 + 2),
                    Some(&header[index]),
                    "the cell is not valid UTF-8; save the file as UTF-8",
                ));
            }
            column.bytes.extend_from_slice(cell);
            column.ends.push(column.bytes.len());
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(DatasetError::new(
            None,
            None,
            "the file has a header but no rows",
        ));
    }
    Ok(Table {
        names: kept.iter().map(|&index| header[index].clone()).collect(),
        columns: raw.into_iter().map(RawColumn::into_column).collect(),
        rows,
        format: Format::Csv,
    })
}

/// A Parquet column while it is read.
enum Building {
    Number(Vec<f64>),
    Text(TextBuilder),
}

/// Reads the wanted columns of a Parquet file: numbers (floats and integers, as floats) and text (strings,
/// booleans as `true`/`false`). Strings are asked of the reader as dictionary arrays, so a
/// dictionary-encoded column (what writers produce for repeated values) becomes codes without hashing
/// every cell.
fn read_parquet(
    data: bytes::Bytes,
    wanted: Option<&[&str]>,
    max_decoded_bytes: u64,
) -> Result<Table, DatasetError> {
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};

    let not_parquet = |error: &dyn std::fmt::Display| {
        DatasetError::new(None, None, format!("not a readable Parquet file: {error}"))
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(data.clone())
        .map_err(|error| not_parquet(&error))?;
    let file_schema = builder.schema().clone();
    let kept: Vec<usize> = (0..file_schema.fields().len())
        .filter(|&index| {
            wanted.is_none_or(|wanted| wanted.contains(&file_schema.field(index).name().as_str()))
        })
        .collect();
    // Ask for strings as dictionaries (see above); other types as the file has them.
    let fields: Vec<Field> = file_schema
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Field::new(
                field.name(),
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                field.is_nullable(),
            ),
            _ => field.as_ref().clone(),
        })
        .collect();
    let options = ArrowReaderOptions::new().with_schema(std::sync::Arc::new(Schema::new(fields)));
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(data, options)
        .map_err(|error| not_parquet(&error))?;
    // What the table will hold: 8 bytes per number or 4 per text code, per row and wanted column (a
    // column's encoded size says little: one value repeated run-length encodes to a few bytes).
    let rows_declared = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let decoded = rows_declared
        .saturating_mul(8)
        .saturating_mul(kept.len() as u64);
    if decoded > max_decoded_bytes {
        let mut error = DatasetError::new(
            None,
            None,
            format!(
                "the file's {rows_declared} rows decode to about {decoded} bytes in the wanted columns, more than the server's limit of {max_decoded_bytes}; split the file, or raise the limit (--max-dataset-bytes)"
            ),
        );
        error.too_large = true;
        return Err(error);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), kept.iter().copied());
    let rows_total = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .map_err(|error| not_parquet(&error))?;

    let names: Vec<String> = kept
        .iter()
        .map(|&index| file_schema.field(index).name().clone())
        .collect();
    let mut building: Vec<Option<Building>> = kept.iter().map(|_| None).collect();
    let mut rows = 0;
    for batch in reader {
        let batch = batch.map_err(|error| not_parquet(&error))?;
        for (position, array) in batch.columns().iter().enumerate() {
            let unsupported = || {
                DatasetError::new(
                    None,
                    Some(&names[position]),
                    format!(
                        "the column's type {} is not supported; use numbers, strings or booleans",
                        array.data_type()
                    ),
                )
            };
            let slot = &mut building[position];
            if let Some(values) = numbers_of(array.as_ref()) {
                match slot.get_or_insert_with(|| Building::Number(Vec::with_capacity(rows_total))) {
                    Building::Number(all) => all.extend(values),
                    Building::Text(_) => return Err(unsupported()),
                }
                continue;
            }
            let column = slot.get_or_insert_with(|| {
                let mut builder = TextBuilder::default();
                builder.codes.reserve(rows_total);
                Building::Text(builder)
            });
            let Building::Text(builder) = column else {
                return Err(unsupported());
            };
            append_text(builder, array.as_ref()).ok_or_else(unsupported)?;
        }
        rows += batch.num_rows();
    }
    if rows == 0 {
        return Err(DatasetError::new(None, None, "the file has no rows"));
    }
    let columns = building
        .into_iter()
        .map(|column| match column {
            Some(Building::Number(values)) => Column::Number(values),
            Some(Building::Text(builder)) => builder.finish(),
            None => Column::Number(Vec::new()),
        })
        .collect();
    Ok(Table {
        names,
        columns,
        rows,
        format: Format::Parquet,
    })
}

/// A numeric Arrow array as floats, nulls as NaN; `None` for other types.
fn numbers_of(array: &dyn arrow_array::Array) -> Option<Vec<f64>> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
        UInt32Type, UInt64Type,
    };
    macro_rules! convert {
        ($($kind:ty),*) => {
            $(if let Some(values) = array.as_primitive_opt::<$kind>() {
                if values.null_count() == 0 {
                    return Some(values.values().iter().map(|value| *value as f64).collect());
                }
                return Some(
                    (0..values.len())
                        .map(|row| if values.is_null(row) { f64::NAN } else { values.value(row) as f64 })
                        .collect(),
                );
            })*
        };
    }
    convert!(
        Float64Type,
        Float32Type,
        Int64Type,
        Int32Type,
        Int16Type,
        Int8Type,
        UInt64Type,
        UInt32Type,
        UInt16Type,
        UInt8Type
    );
    None
}

/// Appends a string, dictionary-of-strings or boolean Arrow array's codes; `None` for other types.
fn append_text(builder: &mut TextBuilder, array: &dyn arrow_array::Array) -> Option<()> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    if let Some(dictionary) = array.as_dictionary_opt::<Int32Type>() {
        let values = dictionary.values().as_string_opt::<i32>()?;
        // This batch's dictionary mapped onto the column's codes once; then each cell is an array index.
        let local: Vec<u32> = (0..values.len())
            .map(|index| builder.code(values.value(index)))
            .collect();
        let keys = dictionary.keys();
        builder.codes.extend((0..keys.len()).map(|row| {
            if keys.is_null(row) {
                MISSING
            } else {
                local[keys.value(row) as usize]
            }
        }));
        return Some(());
    }
    if let Some(strings) = array.as_string_opt::<i32>() {
        for row in 0..strings.len() {
            let code = if strings.is_null(row) {
                MISSING
            } else {
                builder.code(strings.value(row))
            };
            builder.codes.push(code);
        }
        return Some(());
    }
    if let Some(booleans) = array.as_boolean_opt() {
        for row in 0..booleans.len() {
            let code = if booleans.is_null(row) {
                MISSING
            } else {
                builder.code(if booleans.value(row) { "true" } else { "false" })
            };
            builder.codes.push(code);
        }
        return Some(());
    }
    None
}

/// Whether a label cell means a declared label (the positive label, a declared class): the same text, the
/// same number (`1` and `1.0`), or the same boolean in any case (`True` and `true`).
fn is_positive(cell: &str, positive: &str) -> bool {
    let (cell, positive) = (cell.trim(), positive.trim());
    cell == positive
        || matches!((cell.parse::<f64>(), positive.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
        || (cell.eq_ignore_ascii_case(positive)
            && (cell.eq_ignore_ascii_case("true") || cell.eq_ignore_ascii_case("false")))
}

impl Table {
    pub fn column_names(&self) -> &[String] {
        &self.names
    }

    pub fn row_count(&self) -> usize {
        self.rows
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn has_column(&self, column: &str) -> bool {
        self.names.iter().any(|name| name == column)
    }

    /// An error at a data row (0-based): CSV names the file line, Parquet the 1-based row.
    pub(crate) fn error_at(
        &self,
        row: usize,
        column: &str,
        message: impl Into<String>,
    ) -> DatasetError {
        let mut error = DatasetError::new(None, Some(column), message);
        match self.format {
            Format::Csv => error.line = Some(row as u64 + 2),
            Format::Parquet => error.row = Some(row as u64 + 1),
        }
        error
    }

    fn get(&self, column: &str) -> Result<&Column, DatasetError> {
        self.names
            .iter()
            .position(|name| name == column)
            .map(|index| &self.columns[index])
            .ok_or_else(|| {
                let line = (self.format == Format::Csv).then_some(1);
                DatasetError::new(
                    line,
                    Some(column),
                    format!("missing column; the file has {}", self.names.join(", ")),
                )
            })
    }

    /// The cells of a column as text (for tests and messages; evaluations use the typed accessors).
    pub fn column(&self, column: &str) -> Result<Vec<String>, DatasetError> {
        let cells = self.get(column)?;
        Ok((0..self.rows).map(|row| cells.text(row)).collect())
    }

    /// A numeric column; missing, infinite or non-numeric cells are errors naming their line (row).
    pub fn numbers(&self, column: &str) -> Result<&[f64], DatasetError> {
        let cells = self.get(column)?;
        match cells {
            Column::Number(values) => match values.iter().position(|value| !value.is_finite()) {
                None => Ok(values),
                Some(row) if values[row].is_nan() => Err(self.error_at(
                    row,
                    column,
                    "the value is missing (empty, NaN or null); expected a finite number",
                )),
                Some(row) => Err(self.error_at(
                    row,
                    column,
                    format!("{} is not a finite number", values[row]),
                )),
            },
            Column::Text { dictionary, codes } => {
                let row = codes
                    .iter()
                    .position(|&code| {
                        code == MISSING || dictionary[code as usize].trim().parse::<f64>().is_err()
                    })
                    .unwrap_or(0);
                Err(self.error_at(
                    row,
                    column,
                    format!("{:?} is not a finite number", cells.text(row)),
                ))
            }
        }
    }

    /// The `features` columns as a row-major `f32` matrix, the input of a model.
    pub fn feature_matrix(&self, features: &[String]) -> Result<Vec<f32>, DatasetError> {
        let width = features.len();
        let mut matrix = vec![0f32; self.rows * width];
        for (column_index, feature) in features.iter().enumerate() {
            for (row, value) in self.numbers(feature)?.iter().enumerate() {
                matrix[row * width + column_index] = *value as f32;
            }
        }
        Ok(matrix)
    }

    /// A column's values as groups (a sensitive attribute): text as it reads, numbers as they print,
    /// missing cells as the group `(missing)`.
    pub fn groups(&self, column: &str) -> Result<Groups, DatasetError> {
        match self.get(column)? {
            Column::Text { dictionary, codes } => {
                let mut names = dictionary.clone();
                let missing = names.len() as u32;
                if codes.contains(&MISSING) {
                    names.push("(missing)".to_owned());
                }
                let codes = codes
                    .iter()
                    .map(|&code| if code == MISSING { missing } else { code })
                    .collect();
                Ok(Groups::from_codes(names, codes))
            }
            Column::Number(values) => {
                let mut index: HashMap<u64, u32> = HashMap::new();
                let mut names = Vec::new();
                let codes = values
                    .iter()
                    .map(|value| {
                        // -0.0 + 0.0 is 0.0: one group for both zeros.
                        let key = (value + 0.0).to_bits();
                        *index.entry(key).or_insert_with(|| {
                            names.push(if value.is_nan() {
                                "(missing)".to_owned()
                            } else {
                                value.to_string()
                            });
                            (names.len() - 1) as u32
                        })
                    })
                    .collect();
                Ok(Groups::from_codes(names, codes))
            }
        }
    }

    /// The label column as booleans (`positive_label` → true); missing labels and a third class are
    /// errors naming their line.
    pub fn binary_labels(&self, schema: &DatasetSchema) -> Result<Vec<bool>, DatasetError> {
        let column = self.get(&schema.label)?;
        if let Some(row) = (0..self.rows).find(|&row| column.is_missing(row)) {
            return Err(self.error_at(
                row,
                &schema.label,
                "the label is missing (empty, NaN or null)",
            ));
        }
        let groups = self.groups(&schema.label)?;
        let positive: Vec<bool> = groups
            .names
            .iter()
            .map(|name| is_positive(name, &schema.positive_label))
            .collect();
        if !positive.contains(&true) {
            return Err(DatasetError::new(
                None,
                Some(&schema.label),
                format!(
                    "the positive label {:?} never occurs",
                    schema.positive_label
                ),
            ));
        }
        if positive.iter().filter(|is| !**is).count() > 1 {
            // The first row holding a class other than the first negative one seen.
            let first_negative = groups
                .codes
                .iter()
                .copied()
                .find(|&code| !positive[code as usize]);
            let row = groups
                .codes
                .iter()
                .position(|&code| !positive[code as usize] && Some(code) != first_negative)
                .unwrap_or(0);
            return Err(self.error_at(
                row,
                &schema.label,
                format!(
                    "{:?} is a third class; a binary label has the positive label {:?} and one other",
                    column.text(row),
                    schema.positive_label
                ),
            ));
        }
        Ok(groups
            .codes
            .iter()
            .map(|&code| positive[code as usize])
            .collect())
    }

    /// A multiclass label column as classes; missing labels are errors naming their line, and there must
    /// be at least two classes.
    pub fn class_labels(&self, column: &str) -> Result<Groups, DatasetError> {
        let cells = self.get(column)?;
        if let Some(row) = (0..self.rows).find(|&row| cells.is_missing(row)) {
            return Err(self.error_at(row, column, "the label is missing (empty, NaN or null)"));
        }
        let classes = self.groups(column)?;
        if classes.names.len() < 2 {
            return Err(DatasetError::new(
                None,
                Some(column),
                format!(
                    "only one class ({:?}) occurs; a multiclass label needs at least two",
                    classes.names.first().cloned().unwrap_or_default()
                ),
            ));
        }
        Ok(classes)
    }

    /// Adds (or replaces) a numeric column, such as the scores a model computed.
    pub fn set_numbers(&mut self, column: &str, values: Vec<f64>) {
        self.set_column(column, Column::Number(values));
    }

    /// Adds (or replaces) a text column, such as the classes a model predicted.
    pub fn set_text(&mut self, column: &str, values: Vec<String>) {
        let mut builder = TextBuilder::default();
        builder.codes = values.iter().map(|value| builder.code(value)).collect();
        self.set_column(column, builder.finish());
    }

    fn set_column(&mut self, column: &str, cells: Column) {
        match self.names.iter().position(|name| name == column) {
            Some(index) => self.columns[index] = cells,
            None => {
                self.names.push(column.to_owned());
                self.columns.push(cells);
            }
        }
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
        self.join_prediction_columns(predictions, label, &[score_column])
    }

    /// [`Table::join_predictions`] copying several columns (a multiclass file's predicted class and
    /// per-class probabilities).
    pub fn join_prediction_columns(
        &mut self,
        predictions: &Table,
        label: &str,
        columns: &[&str],
    ) -> Result<(), DatasetError> {
        if predictions.rows != self.rows {
            return Err(DatasetError::new(
                None,
                None,
                format!(
                    "the predictions file has {} rows and the dataset {}; predictions must be row-aligned with the dataset (same rows, same order)",
                    predictions.rows, self.rows
                ),
            ));
        }
        let copied: Vec<(String, Column)> = columns
            .iter()
            .map(|column| Ok(((*column).to_owned(), predictions.get(column)?.clone())))
            .collect::<Result<_, DatasetError>>()?;
        if predictions.has_column(label) {
            let theirs = predictions.get(label)?;
            let ours = self.get(label)?;
            // Two text columns compare by code: each dictionary entry mapped once to a shared id of its
            // trimmed text, instead of two strings built per row.
            let (ours_canon, theirs_canon, empty) = match (ours, theirs) {
                (Column::Text { dictionary: a, .. }, Column::Text { dictionary: b, .. }) => {
                    fn canon<'a>(
                        ids: &mut HashMap<&'a str, u32>,
                        dictionary: &'a [String],
                    ) -> Vec<u32> {
                        dictionary
                            .iter()
                            .map(|text| {
                                let next = ids.len() as u32;
                                *ids.entry(text.trim()).or_insert(next)
                            })
                            .collect()
                    }
                    let mut ids: HashMap<&str, u32> = HashMap::new();
                    let (a, b) = (canon(&mut ids, a), canon(&mut ids, b));
                    let missing = ids.len() as u32;
                    let empty = ids.get("").copied().unwrap_or(missing);
                    (a, b, empty)
                }
                _ => (Vec::new(), Vec::new(), 0),
            };
            let differs = |row: usize| match (ours, theirs) {
                (Column::Number(a), Column::Number(b)) => {
                    !(a[row] == b[row] || (a[row].is_nan() && b[row].is_nan()))
                }
                (Column::Text { codes: a, .. }, Column::Text { codes: b, .. }) => {
                    let id = |canon: &[u32], code: u32| {
                        if code == MISSING {
                            empty
                        } else {
                            canon[code as usize]
                        }
                    };
                    id(&ours_canon, a[row]) != id(&theirs_canon, b[row])
                }
                _ => ours.text(row).trim() != theirs.text(row).trim(),
            };
            if let Some(row) = (0..self.rows).find(|&row| differs(row)) {
                return Err(predictions.error_at(
                    row,
                    label,
                    format!(
                        "the predictions file has label {:?} where the dataset has {:?}; predictions must be row-aligned with the dataset",
                        theirs.text(row),
                        ours.text(row)
                    ),
                ));
            }
        }
        for (name, cells) in copied {
            self.set_column(&name, cells);
        }
        Ok(())
    }
}

/// Checks a dataset against its schema: every declared column exists, labels are present and fit the task
/// (two classes with the positive one, two or more classes, or numbers), features and the weight are
/// numeric.
pub fn validate(table: &Table, schema: &DatasetSchema) -> Result<(), DatasetError> {
    match schema.task {
        Task::Binary => {
            table.binary_labels(schema)?;
        }
        Task::Multiclass => {
            let classes = table.class_labels(&schema.label)?;
            if !schema.classes.is_empty() {
                let labels = table.get(&schema.label)?;
                let declared = |class: &str| schema.classes.iter().any(|c| is_positive(class, c));
                if let Some(row) = classes
                    .codes
                    .iter()
                    .position(|&code| !declared(&classes.names[code as usize]))
                {
                    return Err(table.error_at(
                        row,
                        &schema.label,
                        format!(
                            "{:?} is not one of the declared classes ({}); fix the row or declare the class",
                            labels.text(row),
                            schema.classes.join(", ")
                        ),
                    ));
                }
            }
        }
        Task::Regression => {
            table.numbers(&schema.label)?;
        }
    }
    for column in schema.features.iter().chain(&schema.sensitive) {
        table.get(column)?;
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

/// Quantile with linear interpolation between closest ranks (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower as f64)
}

pub fn profile(table: &Table) -> Profile {
    let mut columns = BTreeMap::new();
    for (name, cells) in table.names.iter().zip(&table.columns) {
        let summary = match cells {
            Column::Number(all) if all.iter().any(|value| !value.is_nan()) => {
                let mut values: Vec<f64> = all
                    .iter()
                    .copied()
                    .filter(|value| !value.is_nan())
                    .collect();
                let nulls = all.len() - values.len();
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
            Column::Number(all) => ColumnProfile::String {
                nulls: all.len(),
                distinct: 0,
                top: Vec::new(),
            },
            Column::Text { dictionary, codes } => {
                let mut counts = vec![0usize; dictionary.len()];
                let mut nulls = 0;
                for &code in codes {
                    match counts.get_mut(code as usize) {
                        Some(count) => *count += 1,
                        None => nulls += 1,
                    }
                }
                let mut top: Vec<(String, usize)> = dictionary
                    .iter()
                    .cloned()
                    .zip(counts)
                    .filter(|(_, count)| *count > 0)
                    .collect();
                let distinct = top.len();
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
        rows: table.rows,
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
            task: Default::default(),
            label: "default".into(),
            features: vec!["income".into()],
            sensitive: vec!["sex".into()],
            weight: None,
            positive_label: "1".into(),
            classes: Vec::new(),
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

    fn parquet(columns: Vec<(&str, arrow_array::ArrayRef)>) -> bytes::Bytes {
        let batch = arrow_array::RecordBatch::try_from_iter(columns).unwrap();
        let mut buffer = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut buffer, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        bytes::Bytes::from(buffer)
    }

    #[test]
    fn parquet_reads_numbers_strings_and_booleans_and_names_rows_in_errors() {
        use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
        use std::sync::Arc;
        let file = parquet(vec![
            (
                "income",
                Arc::new(Int64Array::from(vec![10, 20, 30])) as ArrayRef,
            ),
            (
                "sex",
                Arc::new(StringArray::from(vec![Some("f"), Some("m"), None])) as ArrayRef,
            ),
            (
                "default",
                Arc::new(BooleanArray::from(vec![true, false, false])) as ArrayRef,
            ),
            (
                "score",
                Arc::new(Float64Array::from(vec![Some(0.9), None, Some(0.1)])) as ArrayRef,
            ),
        ]);
        assert_eq!(Format::detect(&file), Format::Parquet);
        let table = read_table(file.clone(), None).unwrap();
        assert_eq!(table.format(), Format::Parquet);
        assert_eq!(table.row_count(), 3);
        assert_eq!(table.numbers("income").unwrap(), [10.0, 20.0, 30.0]);
        let schema = DatasetSchema {
            positive_label: "True".into(),
            ..schema()
        };
        assert_eq!(table.binary_labels(&schema).unwrap(), [true, false, false]);
        let groups = table.groups("sex").unwrap();
        assert_eq!(groups.names, ["(missing)", "f", "m"]);
        assert_eq!(groups.codes, [1, 2, 0]);
        let error = table.numbers("score").unwrap_err();
        assert_eq!((error.line, error.row), (None, Some(2)), "{error}");
        assert!(
            error.to_string().starts_with("row 2: column \"score\""),
            "{error}"
        );

        let only = read_table(file, Some(&["sex"])).unwrap();
        assert_eq!(only.column_names(), ["sex"]);
        assert!(
            only.numbers("income")
                .unwrap_err()
                .message
                .contains("missing column")
        );

        let dates = parquet(vec![(
            "when",
            Arc::new(arrow_array::Date32Array::from(vec![1, 2])) as ArrayRef,
        )]);
        let error = read_table(dates, None).unwrap_err();
        assert_eq!(error.column.as_deref(), Some("when"));
        assert!(error.message.contains("not supported"), "{error}");

        let empty = parquet(vec![(
            "score",
            Arc::new(Float64Array::from(Vec::<f64>::new())) as ArrayRef,
        )]);
        assert!(
            read_table(empty, None)
                .unwrap_err()
                .message
                .contains("no rows")
        );

        let mut truncated = parquet(vec![(
            "score",
            Arc::new(Float64Array::from(vec![0.5])) as ArrayRef,
        )])
        .to_vec();
        truncated.drain(4..12);
        let error = read_table(bytes::Bytes::from(truncated), None).unwrap_err();
        assert!(
            error.message.contains("not a readable Parquet file"),
            "{error}"
        );
    }

    #[test]
    fn csv_labels_match_the_positive_label_as_numbers_too() {
        let table = read_csv(b"income,sex,default\n1,f,1.0\n2,m,0\n").unwrap();
        assert_eq!(table.binary_labels(&schema()).unwrap(), [true, false]);
        let groups = table.groups("income").unwrap();
        assert_eq!(groups.names, ["1", "2"]);
    }

    #[test]
    fn text_labels_join_by_their_trimmed_text() {
        let mut dataset = read_csv(b"sex,outcome\nf,yes\nm,no\nf,yes\n").unwrap();
        let same = read_csv(b"outcome,score\n yes,0.9\nno ,0.2\nyes,0.4\n").unwrap();
        dataset
            .clone()
            .join_predictions(&same, "outcome", "score")
            .unwrap();
        let changed = read_csv(b"outcome,score\nyes,0.9\nno,0.2\nno,0.4\n").unwrap();
        let error = dataset
            .clone()
            .join_predictions(&changed, "outcome", "score")
            .unwrap_err();
        assert_eq!(
            (error.line, error.column.as_deref()),
            (Some(4), Some("outcome"))
        );
        let missing = read_csv(b"outcome,score\nyes,0.9\n,0.2\nyes,0.4\n").unwrap();
        let error = dataset
            .join_predictions(&missing, "outcome", "score")
            .unwrap_err();
        assert_eq!(error.line, Some(3));
    }
}
