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
    /// The limit that refused the file, as the `serve` flag that raises it (`--max-dataset-columns`).
    #[serde(skip)]
    pub limit: Option<&'static str>,
}

/// How much a dataset or predictions file may hold. Checked while the file is read, so that an oversized
/// file is refused when the first cell, column or row past a limit arrives, not after it has been turned
/// into a table; the flag of `modelgate serve` that raises each limit is named in the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetLimits {
    /// Columns in the file: CSV header fields, Parquet leaf columns (`--max-dataset-columns`).
    pub max_columns: usize,
    /// Bytes in one cell: a CSV field (a header name included) or a Parquet string
    /// (`--max-dataset-cell-bytes`).
    pub max_cell_bytes: usize,
    /// Data rows (`--max-dataset-rows`).
    pub max_rows: u64,
    /// Bytes the wanted columns of a Parquet file may take once decoded: 8 per row and column, and the
    /// column chunks' declared uncompressed size (4 × `--max-dataset-bytes` on the server).
    pub max_decoded_bytes: u64,
    /// Bytes of a dataset's stored profile, as JSON (`--max-dataset-profile-bytes`).
    pub max_profile_bytes: usize,
}

impl DatasetLimits {
    /// 1,000 columns, 64 KiB cells, 100M rows, 4 MiB profiles: a 10M-row, 100-column dataset passes with a
    /// tenfold margin on rows and columns, and a cell is a number, a category or a sentence, never a
    /// document. The profile of 1,000 columns with truncated categories is well under 4 MiB.
    pub const DEFAULT: Self = Self {
        max_columns: 1_000,
        max_cell_bytes: 64 * 1024,
        max_rows: 100_000_000,
        max_decoded_bytes: 2 * 1024 * 1024 * 1024,
        max_profile_bytes: 4 * 1024 * 1024,
    };

    /// No limits: for files the caller already trusts (tests, benchmarks).
    pub const NONE: Self = Self {
        max_columns: usize::MAX,
        max_cell_bytes: usize::MAX,
        max_rows: u64::MAX,
        max_decoded_bytes: u64::MAX,
        max_profile_bytes: usize::MAX,
    };

    /// Checks the size of a profile about to be stored (its JSON).
    pub fn check_profile(&self, profile_json_bytes: usize) -> Result<(), DatasetError> {
        if profile_json_bytes > self.max_profile_bytes {
            return Err(DatasetError::over_limit(
                None,
                None,
                format!(
                    "the file's profile takes {profile_json_bytes} bytes, more than the server's limit of {}; \
                     register fewer columns, or raise the limit (--max-dataset-profile-bytes)",
                    self.max_profile_bytes
                ),
                "--max-dataset-profile-bytes",
            ));
        }
        Ok(())
    }
}

impl Default for DatasetLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
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
pub(crate) const MISSING: u32 = u32::MAX;

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
    pub(crate) fn text(&self, row: usize) -> String {
        match self {
            Column::Number(values) if values[row].is_nan() => String::new(),
            Column::Number(values) => values[row].to_string(),
            Column::Text { codes, .. } if codes[row] == MISSING => String::new(),
            Column::Text { dictionary, codes } => dictionary[codes[row] as usize].clone(),
        }
    }

    pub(crate) fn is_missing(&self, row: usize) -> bool {
        match self {
            Column::Number(values) => values[row].is_nan(),
            Column::Text { codes, .. } => codes[row] == MISSING,
        }
    }

    /// A text column from its cells, `None` for a missing one (tests, benchmarks, callers that build
    /// tables in memory).
    pub fn from_text<'a>(cells: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut builder = TextBuilder::default();
        for cell in cells {
            let code = match cell {
                Some(text) => builder.code(text),
                None => MISSING,
            };
            builder.codes.push(code);
        }
        builder.finish()
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Number(values) => values.len(),
            Column::Text { codes, .. } => codes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            limit: None,
        }
    }

    /// A refusal by one of the [`DatasetLimits`], naming the flag that raises it.
    pub(crate) fn over_limit(
        line: Option<u64>,
        column: Option<&str>,
        message: impl Into<String>,
        flag: &'static str,
    ) -> Self {
        Self {
            too_large: true,
            limit: Some(flag),
            ..Self::new(line, column, message)
        }
    }
}

fn is_null(cell: &str) -> bool {
    let cell = cell.trim();
    cell.is_empty() || cell.eq_ignore_ascii_case("nan") || cell.eq_ignore_ascii_case("null")
}

/// Reads a dataset or predictions file in either format, keeping only the `wanted` columns (all when
/// `None`): an evaluation reads the few columns it needs, registration reads all of them to profile them.
/// No limits: for trusted files (see [`read_table_within`]).
pub fn read_table(bytes: bytes::Bytes, wanted: Option<&[&str]>) -> Result<Table, DatasetError> {
    read_table_within(bytes, wanted, &DatasetLimits::NONE)
}

/// [`read_table`] within `limits`: a CSV file is refused at the first cell, column or row past a limit
/// (before the rest is read), a Parquet file from its footer's row and column counts and declared sizes
/// (before any page is decoded), so a small, highly compressed or wide file cannot exhaust the server's
/// memory.
pub fn read_table_within(
    bytes: bytes::Bytes,
    wanted: Option<&[&str]>,
    limits: &DatasetLimits,
) -> Result<Table, DatasetError> {
    match Format::detect(&bytes) {
        Format::Csv => read_csv_columns(&bytes, wanted, limits),
        Format::Parquet => read_parquet(bytes, wanted, limits),
    }
}

/// Reads a CSV file with a header row; rows of a different length are an error naming their line.
pub fn read_csv(bytes: &[u8]) -> Result<Table, DatasetError> {
    read_csv_columns(bytes, None, &DatasetLimits::NONE)
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

/// Why [`CsvRecords::next`] stopped before the end of a record.
enum RecordProblem {
    /// The record has more than the allowed number of fields.
    TooManyFields,
    /// Field `index` (0-based) is longer than the cell limit.
    CellTooLarge { index: usize },
}

/// CSV records read one at a time with `csv-core` into buffers that grow only as far as the limits allow:
/// a record wider than allowed, or a field longer than the cell limit, stops the reader at once, without
/// buffering the rest of it (the `csv` crate reads a whole record before the caller sees it).
struct CsvRecords<'a> {
    reader: csv_core::Reader,
    input: &'a [u8],
    output: Vec<u8>,
    ends: Vec<usize>,
    max_cell_bytes: usize,
}

impl<'a> CsvRecords<'a> {
    fn new(input: &'a [u8], max_cell_bytes: usize) -> Self {
        Self {
            reader: csv_core::Reader::new(),
            input,
            output: vec![0; 64 * 1024],
            ends: vec![0; 64],
            max_cell_bytes,
        }
    }

    /// The line the next record starts on.
    fn line(&self) -> u64 {
        self.reader.line()
    }

    /// Reads the next record, of at most `max_fields` fields; `Ok(None)` at the end of the input. The
    /// record's fields are then `self.field(0..n)`.
    fn next(&mut self, max_fields: usize) -> Result<Option<usize>, RecordProblem> {
        use csv_core::ReadRecordResult;
        let (mut written, mut ended) = (0, 0);
        loop {
            let (result, read, out, end) = self.reader.read_record(
                self.input,
                &mut self.output[written..],
                &mut self.ends[ended..],
            );
            self.input = &self.input[read..];
            written += out;
            ended += end;
            match result {
                // The input is all in memory: once it is used up, an empty input tells csv-core the file
                // ended, and the next call returns the last record or the end.
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let field_start = ended.checked_sub(1).map_or(0, |last| self.ends[last]);
                    if written - field_start > self.max_cell_bytes {
                        return Err(RecordProblem::CellTooLarge { index: ended });
                    }
                    let grown = self.output.len().saturating_mul(2).max(1024);
                    self.output.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    if ended >= max_fields {
                        return Err(RecordProblem::TooManyFields);
                    }
                    let grown = self
                        .ends
                        .len()
                        .saturating_mul(2)
                        .min(max_fields.saturating_add(1));
                    self.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    if ended > max_fields {
                        return Err(RecordProblem::TooManyFields);
                    }
                    let mut start = 0;
                    for (index, &end) in self.ends[..ended].iter().enumerate() {
                        if end - start > self.max_cell_bytes {
                            return Err(RecordProblem::CellTooLarge { index });
                        }
                        start = end;
                    }
                    return Ok(Some(ended));
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
    }

    /// Field `index` of the record just read.
    fn field(&self, index: usize) -> &[u8] {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.output[start..self.ends[index]]
    }
}

fn cell_too_large(limits: &DatasetLimits, line: u64, column: Option<&str>) -> DatasetError {
    DatasetError::over_limit(
        Some(line),
        column,
        format!(
            "a cell is longer than the server's limit of {} bytes; shorten it, or raise the limit \
             (--max-dataset-cell-bytes)",
            limits.max_cell_bytes
        ),
        "--max-dataset-cell-bytes",
    )
}

fn read_csv_columns(
    bytes: &[u8],
    wanted: Option<&[&str]>,
    limits: &DatasetLimits,
) -> Result<Table, DatasetError> {
    let mut records = CsvRecords::new(bytes, limits.max_cell_bytes);
    let header: Vec<String> = match records.next(limits.max_columns) {
        Ok(None) => Vec::new(),
        Ok(Some(fields)) => (0..fields)
            .map(|index| {
                std::str::from_utf8(records.field(index))
                    .map(|name| name.trim().to_owned())
                    .map_err(|_| {
                        DatasetError::new(
                            Some(1),
                            None,
                            format!(
                                "cannot read the header: column {} is not valid UTF-8; save the file as UTF-8",
                                index + 1
                            ),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
        Err(RecordProblem::TooManyFields) => {
            return Err(DatasetError::over_limit(
                Some(1),
                None,
                format!(
                    "the header has more than {} columns, the server's limit; drop columns, or raise the \
                     limit (--max-dataset-columns)",
                    limits.max_columns
                ),
                "--max-dataset-columns",
            ));
        }
        Err(RecordProblem::CellTooLarge { .. }) => return Err(cell_too_large(limits, 1, None)),
    };
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
    let mut rows: u64 = 0;
    loop {
        let line = records.line();
        let fields = match records.next(header.len()) {
            Ok(None) => break,
            Ok(Some(fields)) => fields,
            Err(RecordProblem::TooManyFields) => {
                return Err(DatasetError::new(
                    Some(line),
                    None,
                    format!("ragged row: more fields than the header's {}", header.len()),
                ));
            }
            Err(RecordProblem::CellTooLarge { index }) => {
                return Err(cell_too_large(
                    limits,
                    line,
                    header.get(index).map(String::as_str),
                ));
            }
        };
        if fields != header.len() {
            return Err(DatasetError::new(
                Some(line),
                None,
                format!(
                    "ragged row: {fields} fields where the header has {}",
                    header.len()
                ),
            ));
        }
        if rows >= limits.max_rows {
            return Err(DatasetError::over_limit(
                Some(line),
                None,
                format!(
                    "the file has more than {} rows, the server's limit; split it, or raise the limit \
                     (--max-dataset-rows)",
                    limits.max_rows
                ),
                "--max-dataset-rows",
            ));
        }
        for (column, &index) in raw.iter_mut().zip(&kept) {
            let cell = records.field(index);
            if std::str::from_utf8(cell).is_err() {
                return Err(DatasetError::new(
                    Some(rows + 2),
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
        rows: usize::try_from(rows).unwrap_or(usize::MAX),
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
    limits: &DatasetLimits,
) -> Result<Table, DatasetError> {
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};

    let not_parquet = |error: &dyn std::fmt::Display| {
        DatasetError::new(None, None, format!("not a readable Parquet file: {error}"))
    };
    // Reads the footer only: the limits are checked on its counts before any page is decoded.
    let builder = ParquetRecordBatchReaderBuilder::try_new(data.clone())
        .map_err(|error| not_parquet(&error))?;
    let leaf_columns = builder.parquet_schema().num_columns();
    if leaf_columns > limits.max_columns {
        return Err(DatasetError::over_limit(
            None,
            None,
            format!(
                "the file has {leaf_columns} columns, more than the server's limit of {}; drop columns, or \
                 raise the limit (--max-dataset-columns)",
                limits.max_columns
            ),
            "--max-dataset-columns",
        ));
    }
    let rows_in_footer = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    if rows_in_footer > limits.max_rows {
        return Err(DatasetError::over_limit(
            None,
            None,
            format!(
                "the file has {rows_in_footer} rows, more than the server's limit of {}; split it, or raise \
                 the limit (--max-dataset-rows)",
                limits.max_rows
            ),
            "--max-dataset-rows",
        ));
    }
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
    // column's encoded size says little: one value repeated run-length encodes to a few bytes); and what
    // the pages of the wanted columns declare they decompress to (strings are not 8 bytes).
    let mask = ProjectionMask::roots(builder.parquet_schema(), kept.iter().copied());
    let declared: u64 = builder
        .metadata()
        .row_groups()
        .iter()
        .flat_map(|group| group.columns().iter().enumerate())
        .filter(|(leaf, _)| mask.leaf_included(*leaf))
        .map(|(_, chunk)| u64::try_from(chunk.uncompressed_size()).unwrap_or(0))
        .fold(0u64, u64::saturating_add);
    let decoded = rows_in_footer
        .saturating_mul(8)
        .saturating_mul(kept.len() as u64)
        .max(declared);
    let max_decoded_bytes = limits.max_decoded_bytes;
    if decoded > max_decoded_bytes {
        return Err(DatasetError::over_limit(
            None,
            None,
            format!(
                "the file's {rows_in_footer} rows decode to about {decoded} bytes in the wanted columns, more than the server's limit of {max_decoded_bytes}; split the file, or raise the limit (--max-dataset-bytes)"
            ),
            "--max-dataset-bytes",
        ));
    }
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
            match append_text(builder, array.as_ref(), limits.max_cell_bytes) {
                Ok(()) => {}
                Err(TextProblem::Unsupported) => return Err(unsupported()),
                Err(TextProblem::TooLong { row }) => {
                    let mut error = DatasetError::over_limit(
                        None,
                        Some(&names[position]),
                        format!(
                            "a cell is longer than the server's limit of {} bytes; shorten it, or raise the \
                             limit (--max-dataset-cell-bytes)",
                            limits.max_cell_bytes
                        ),
                        "--max-dataset-cell-bytes",
                    );
                    error.row = row.map(|row| (rows + row) as u64 + 1);
                    return Err(error);
                }
            }
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

/// Why [`append_text`] refused an array.
enum TextProblem {
    /// Not strings, a dictionary of strings, or booleans.
    Unsupported,
    /// A string longer than the cell limit, at this row of the batch (`None`: in a dictionary).
    TooLong { row: Option<usize> },
}

/// Appends a string, dictionary-of-strings or boolean Arrow array's codes; strings longer than
/// `max_cell_bytes` are refused.
fn append_text(
    builder: &mut TextBuilder,
    array: &dyn arrow_array::Array,
    max_cell_bytes: usize,
) -> Result<(), TextProblem> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    if let Some(dictionary) = array.as_dictionary_opt::<Int32Type>() {
        let values = dictionary
            .values()
            .as_string_opt::<i32>()
            .ok_or(TextProblem::Unsupported)?;
        if (0..values.len()).any(|index| values.value(index).len() > max_cell_bytes) {
            let keys = dictionary.keys();
            let row = (0..keys.len()).find(|&row| {
                !keys.is_null(row)
                    && usize::try_from(keys.value(row)).is_ok_and(|key| {
                        key < values.len() && values.value(key).len() > max_cell_bytes
                    })
            });
            // A long dictionary entry that no row uses is not a cell; keep reading.
            if row.is_some() {
                return Err(TextProblem::TooLong { row });
            }
        }
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
        return Ok(());
    }
    if let Some(strings) = array.as_string_opt::<i32>() {
        if let Some(row) = (0..strings.len())
            .find(|&row| !strings.is_null(row) && strings.value(row).len() > max_cell_bytes)
        {
            return Err(TextProblem::TooLong { row: Some(row) });
        }
        for row in 0..strings.len() {
            let code = if strings.is_null(row) {
                MISSING
            } else {
                builder.code(strings.value(row))
            };
            builder.codes.push(code);
        }
        return Ok(());
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
        return Ok(());
    }
    Err(TextProblem::Unsupported)
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
    /// A table built in memory from named columns of equal length (rows are then numbered as in Parquet).
    pub fn from_columns(columns: Vec<(String, Column)>) -> Result<Self, DatasetError> {
        let rows = columns.first().map_or(0, |(_, column)| column.len());
        if let Some((name, column)) = columns.iter().find(|(_, column)| column.len() != rows) {
            return Err(DatasetError::new(
                None,
                Some(name),
                format!("{} rows, but the first column has {rows}", column.len()),
            ));
        }
        let (names, columns) = columns.into_iter().unzip();
        Ok(Self {
            names,
            columns,
            rows,
            format: Format::Parquet,
        })
    }

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

    pub(crate) fn get(&self, column: &str) -> Result<&Column, DatasetError> {
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

/// How many of a text column's most frequent values a profile keeps.
pub const PROFILE_TOP_CATEGORIES: usize = 10;

/// How many characters of a category a profile keeps; longer ones end in `…`.
pub const PROFILE_CATEGORY_CHARS: usize = 64;

/// A category as a profile stores it: at most [`PROFILE_CATEGORY_CHARS`] characters.
fn shortened(value: &str) -> String {
    match value.char_indices().nth(PROFILE_CATEGORY_CHARS) {
        None => value.to_owned(),
        Some((cut, _)) => format!("{}…", &value[..cut]),
    }
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
                let mut used: Vec<(&str, usize)> = dictionary
                    .iter()
                    .map(String::as_str)
                    .zip(counts)
                    .filter(|(_, count)| *count > 0)
                    .collect();
                let distinct = used.len();
                used.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
                let top = used
                    .into_iter()
                    .take(PROFILE_TOP_CATEGORIES)
                    .map(|(value, count)| (shortened(value), count))
                    .collect();
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

    fn limited(max_columns: usize, max_cell_bytes: usize, max_rows: u64) -> DatasetLimits {
        DatasetLimits {
            max_columns,
            max_cell_bytes,
            max_rows,
            ..DatasetLimits::DEFAULT
        }
    }

    #[test]
    fn a_csv_file_past_a_limit_is_refused_where_it_passes_it_naming_the_flag() {
        let read = |text: &[u8], limits: DatasetLimits| {
            read_table_within(bytes::Bytes::copy_from_slice(text), None, &limits)
        };
        // 100,000 columns: refused in the header, at line 1.
        let wide: Vec<String> = (0..100_000).map(|index| format!("c{index}")).collect();
        let wide = format!("{}\n{}\n", wide.join(","), vec!["1"; 100_000].join(","));
        let error = read(wide.as_bytes(), DatasetLimits::DEFAULT).unwrap_err();
        assert!(error.too_large, "{error}");
        assert_eq!(
            (error.line, error.limit),
            (Some(1), Some("--max-dataset-columns"))
        );
        assert!(
            error.message.contains("1000") && error.message.contains("--max-dataset-columns"),
            "{error}"
        );
        // One cell of 2 MiB: refused naming its line and column.
        let huge = format!("income,note\n1,ok\n2,{}\n", "x".repeat(2 * 1024 * 1024));
        let error = read(huge.as_bytes(), DatasetLimits::DEFAULT).unwrap_err();
        assert_eq!(
            (error.line, error.column.as_deref(), error.limit),
            (Some(3), Some("note"), Some("--max-dataset-cell-bytes"))
        );
        // A quoted cell spanning lines counts as one cell.
        let quoted = format!("a,b\n1,\"{}\n{}\"\n", "y".repeat(600), "y".repeat(600));
        let error = read(quoted.as_bytes(), limited(10, 1000, 10)).unwrap_err();
        assert_eq!(error.limit, Some("--max-dataset-cell-bytes"), "{error}");
        assert!(read(quoted.as_bytes(), limited(10, 1201, 10)).is_ok());
        // A header name is a cell too.
        let long_name = format!("{},b\n1,2\n", "n".repeat(100));
        assert_eq!(
            read(long_name.as_bytes(), limited(10, 99, 10))
                .unwrap_err()
                .limit,
            Some("--max-dataset-cell-bytes")
        );
        // Rows: the first row past the limit is refused.
        let rows: String = std::iter::once("a\n".to_owned())
            .chain((0..11).map(|row| format!("{row}\n")))
            .collect();
        let error = read(rows.as_bytes(), limited(10, 100, 10)).unwrap_err();
        assert_eq!(
            (error.line, error.limit),
            (Some(12), Some("--max-dataset-rows"))
        );
        assert!(error.message.contains("more than 10 rows"), "{error}");
        assert_eq!(
            read(rows.as_bytes(), limited(10, 100, 11))
                .unwrap()
                .row_count(),
            11
        );
        // A data row wider than the header is ragged, not a column limit.
        let error = read(b"a,b\n1,2,3,4\n", limited(2, 100, 10)).unwrap_err();
        assert_eq!((error.line, error.limit), (Some(2), None));
        assert!(error.message.contains("ragged row"), "{error}");
        // Exactly at every limit passes.
        let table = read(b"ab,cd\n12,34\n", limited(2, 2, 1)).unwrap();
        assert_eq!(table.column("cd").unwrap(), ["34"]);
    }

    #[test]
    fn a_parquet_file_past_a_limit_is_refused_from_its_footer_before_decoding() {
        use arrow_array::{ArrayRef, Int64Array, StringArray};
        use std::sync::Arc;
        let file = parquet(vec![
            (
                "income",
                Arc::new(Int64Array::from((0..1000).collect::<Vec<i64>>())) as ArrayRef,
            ),
            (
                "note",
                Arc::new(StringArray::from(vec!["short"; 1000])) as ArrayRef,
            ),
        ]);
        // Spoil the data pages (everything between the leading magic and the footer): a file that decodes
        // fails, so a limit refusal proves the footer alone decided.
        let footer_length =
            u32::from_le_bytes(file[file.len() - 8..file.len() - 4].try_into().unwrap()) as usize;
        let mut spoiled = file.to_vec();
        let footer_start = spoiled.len() - 8 - footer_length;
        for byte in &mut spoiled[4..footer_start] {
            *byte = 0xff;
        }
        let spoiled = bytes::Bytes::from(spoiled);
        let error = read_table(spoiled.clone(), None).unwrap_err();
        assert!(
            error.message.contains("not a readable Parquet file"),
            "{error}"
        );
        let error = read_table_within(spoiled.clone(), None, &limited(10, 100, 999)).unwrap_err();
        assert_eq!(error.limit, Some("--max-dataset-rows"), "{error}");
        assert!(error.message.contains("1000 rows"), "{error}");
        let error = read_table_within(spoiled, None, &limited(1, 100, 5000)).unwrap_err();
        assert_eq!(error.limit, Some("--max-dataset-columns"), "{error}");

        let decoded = DatasetLimits {
            max_decoded_bytes: 1000,
            ..DatasetLimits::DEFAULT
        };
        let error = read_table_within(file.clone(), None, &decoded).unwrap_err();
        assert_eq!(error.limit, Some("--max-dataset-bytes"), "{error}");

        let long = parquet(vec![(
            "note",
            Arc::new(StringArray::from(vec!["a", "b", "ccccc"])) as ArrayRef,
        )]);
        let error = read_table_within(long.clone(), None, &limited(10, 4, 10)).unwrap_err();
        assert_eq!(
            (error.row, error.column.as_deref(), error.limit),
            (Some(3), Some("note"), Some("--max-dataset-cell-bytes"))
        );
        assert!(read_table_within(long, None, &limited(10, 5, 10)).is_ok());
        assert!(read_table_within(file, None, &DatasetLimits::DEFAULT).is_ok());
    }

    #[test]
    fn profiles_keep_few_and_short_categories_and_their_size_is_limited() {
        let mut csv_text = String::from("id,note\n");
        for row in 0..40 {
            csv_text.push_str(&format!("{row},{}{row:02}\n", "é".repeat(300)));
        }
        let profile = profile(&read_csv(csv_text.as_bytes()).unwrap());
        match &profile.columns["note"] {
            ColumnProfile::String { distinct, top, .. } => {
                assert_eq!(*distinct, 40);
                assert_eq!(top.len(), PROFILE_TOP_CATEGORIES);
                for (value, _) in top {
                    assert_eq!(value.chars().count(), PROFILE_CATEGORY_CHARS + 1, "{value}");
                    assert!(value.ends_with('…'));
                }
            }
            other => panic!("{other:?}"),
        }
        let limits = DatasetLimits {
            max_profile_bytes: 100,
            ..DatasetLimits::DEFAULT
        };
        assert!(limits.check_profile(100).is_ok());
        let error = limits.check_profile(101).unwrap_err();
        assert_eq!(error.limit, Some("--max-dataset-profile-bytes"));
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
