//! Outcomes that arrive after the predictions: a file of row ids and labels joined onto the production
//! batches that carried those row ids, so the labelled rows can be evaluated with the batches' scores and
//! sensitive attributes. Pure: the caller loads the tables.

use crate::dataset::{Column, DatasetError, Table};
use foldhash::fast::RandomState;
use std::borrow::Cow;
use std::collections::HashMap;

/// How many unknown row ids a join names (the rest are counted).
pub const UNKNOWN_IDS_NAMED: usize = 10;

/// A batch to join onto: its table and the column holding its row ids.
pub struct JoinBatch<'a> {
    pub table: &'a Table,
    pub row_id_column: &'a str,
}

/// The joined rows, and what did not join.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The outcome's label (under `label_column`) beside each carried batch column, one row per matched
    /// outcome, in the outcomes file's order.
    pub table: Table,
    /// Rows in the outcomes file.
    pub outcome_rows: usize,
    pub matched: usize,
    /// Outcomes whose row id no batch carries (or whose row id is empty).
    pub unknown: usize,
    /// The first [`UNKNOWN_IDS_NAMED`] unknown row ids, for the report.
    pub unknown_ids: Vec<String>,
    /// Outcomes whose row id occurred earlier in the same file (the first one counts).
    pub duplicate: usize,
}

/// A row id as text: numbers without a trailing `.0` (a CSV `17` and a Parquet `17.0` are one id), text
/// trimmed. `None` for a missing or empty cell.
fn number_id(value: f64) -> Option<String> {
    if value.is_nan() {
        None
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        Some(format!("{}", value as i64))
    } else {
        Some(value.to_string())
    }
}

/// Numbers from 2^53 on are not all distinct as floats: two ids could read as one.
const EXACT_ID_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Refuses a numeric id column holding ids too large to tell apart.
fn check_numeric_ids(values: &[f64], column: &str) -> Result<(), DatasetError> {
    if values.iter().any(|value| value.abs() >= EXACT_ID_LIMIT) {
        return Err(DatasetError::new(
            None,
            Some(column),
            "row ids of 2^53 (9007199254740992) or more cannot be told apart once read as numbers; write them as text (for example with a letter in front)",
        ));
    }
    Ok(())
}

fn text_id(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|text| !text.is_empty())
}

/// Joins `outcomes` (row id and label columns) onto `batches` by row id. When batches share a row id, the
/// later batch in `batches` wins (pass them oldest first). `carried` names the batch columns to bring
/// along (the score, the sensitive attributes): every batch must have them; a column numeric in every
/// batch stays numeric, else it is joined as text.
///
/// Text ids (the usual case) are hashed once per distinct value, through the columns' dictionaries: the
/// batch side keeps each value's last row, the outcome side resolves each value once and marks repeats in
/// a bit per value, so a million outcomes cost two million hashes and no allocation per row.
pub fn join_outcomes(
    batches: &[JoinBatch<'_>],
    outcomes: &Table,
    row_id_column: &str,
    label_column: &str,
    carried: &[&str],
) -> Result<Joined, DatasetError> {
    let outcome_ids = outcomes.get(row_id_column)?;
    let labels = outcomes.get(label_column)?;
    let mut sources: Vec<Vec<&Column>> = Vec::with_capacity(carried.len());
    for column in carried {
        let mut per_batch = Vec::with_capacity(batches.len());
        for batch in batches {
            per_batch.push(batch.table.get(column).map_err(|_| {
                DatasetError::new(
                    None,
                    Some(column),
                    format!(
                        "a batch the outcomes join onto has no column {column:?} (it has {}); push batches with that column",
                        batch.table.column_names().join(", ")
                    ),
                )
            })?);
        }
        sources.push(per_batch);
    }
    let batch_rows: usize = batches.iter().map(|batch| batch.table.row_count()).sum();
    let mut index: HashMap<Cow<'_, str>, (u32, u32), RandomState> =
        HashMap::with_capacity_and_hasher(batch_rows, RandomState::default());
    for (number, batch) in batches.iter().enumerate() {
        match batch.table.get(batch.row_id_column)? {
            Column::Text { dictionary, codes } => {
                let mut last = vec![u32::MAX; dictionary.len()];
                for (row, &code) in codes.iter().enumerate() {
                    if code != crate::dataset::MISSING {
                        last[code as usize] = row as u32;
                    }
                }
                for (code, &row) in last.iter().enumerate() {
                    if let (true, Some(id)) = (row != u32::MAX, text_id(&dictionary[code])) {
                        index.insert(Cow::Borrowed(id), (number as u32, row));
                    }
                }
            }
            Column::Number(values) => {
                check_numeric_ids(values, batch.row_id_column)?;
                for (row, &value) in values.iter().enumerate() {
                    if let Some(id) = number_id(value) {
                        index.insert(Cow::Owned(id), (number as u32, row as u32));
                    }
                }
            }
        }
    }
    let mut matched: Vec<(u32, u32, usize)> = Vec::with_capacity(outcomes.row_count());
    let (mut unknown, mut duplicate) = (0, 0);
    let mut unknown_ids = Vec::new();
    let mut note_unknown = |id: &str| {
        unknown += 1;
        if unknown_ids.len() < UNKNOWN_IDS_NAMED {
            unknown_ids.push(id.to_owned());
        }
    };
    match outcome_ids {
        Column::Text { dictionary, codes } => {
            // Each dictionary value's canonical code (values equal once trimmed share one), its match,
            // and whether an earlier row had it.
            // Dictionary values are distinct, so only padded ones can meet another value once trimmed.
            let canonical: Vec<u32> = if dictionary
                .iter()
                .all(|text| text.trim().len() == text.len())
            {
                (0..dictionary.len() as u32).collect()
            } else {
                let mut first: HashMap<&str, u32, RandomState> =
                    HashMap::with_capacity_and_hasher(dictionary.len(), RandomState::default());
                dictionary
                    .iter()
                    .enumerate()
                    .map(|(code, text)| *first.entry(text.trim()).or_insert(code as u32))
                    .collect()
            };
            let resolved: Vec<Option<(u32, u32)>> = dictionary
                .iter()
                .map(|text| text_id(text).and_then(|id| index.get(id).copied()))
                .collect();
            let mut seen = vec![false; dictionary.len()];
            for (row, &code) in codes.iter().enumerate() {
                if code == crate::dataset::MISSING {
                    note_unknown("");
                    continue;
                }
                let canonical = canonical[code as usize] as usize;
                if seen[canonical] {
                    duplicate += 1;
                    continue;
                }
                seen[canonical] = true;
                match resolved[canonical] {
                    Some((batch, batch_row)) => matched.push((batch, batch_row, row)),
                    None => note_unknown(dictionary[code as usize].trim()),
                }
            }
        }
        Column::Number(values) => {
            check_numeric_ids(values, row_id_column)?;
            let mut seen: HashMap<String, (), RandomState> =
                HashMap::with_capacity_and_hasher(values.len(), RandomState::default());
            for (row, &value) in values.iter().enumerate() {
                let Some(id) = number_id(value) else {
                    note_unknown("");
                    continue;
                };
                let found = index.get(id.as_str()).copied();
                if seen.insert(id.clone(), ()).is_some() {
                    duplicate += 1;
                    continue;
                }
                match found {
                    Some((batch, batch_row)) => matched.push((batch, batch_row, row)),
                    None => note_unknown(&id),
                }
            }
        }
    }
    let label = gather(&[labels], matched.iter().map(|&(_, _, row)| (0, row)));
    let mut columns = vec![(label_column.to_owned(), label)];
    for (column, per_batch) in carried.iter().zip(&sources) {
        if *column == label_column {
            continue;
        }
        let cells = gather(
            per_batch,
            matched
                .iter()
                .map(|&(batch, row, _)| (batch as usize, row as usize)),
        );
        columns.push(((*column).to_owned(), cells));
    }
    Ok(Joined {
        table: Table::from_columns(columns)?,
        outcome_rows: outcomes.row_count(),
        matched: matched.len(),
        unknown,
        unknown_ids,
        duplicate,
    })
}

/// The cells at `(source, row)` of several same-named columns: numbers when every source is numeric,
/// else text (borrowed from the sources' dictionaries, so no string per row).
fn gather(sources: &[&Column], cells: impl Iterator<Item = (usize, usize)>) -> Column {
    if sources
        .iter()
        .all(|column| matches!(column, Column::Number(_)))
    {
        return Column::Number(
            cells
                .map(|(source, row)| match sources[source] {
                    Column::Number(values) => values[row],
                    Column::Text { .. } => f64::NAN,
                })
                .collect(),
        );
    }
    let texts: Vec<Option<Cow<'_, str>>> = cells
        .map(|(source, row)| match sources[source] {
            Column::Text { dictionary, codes } => (codes[row] != crate::dataset::MISSING)
                .then(|| Cow::Borrowed(dictionary[codes[row] as usize].as_str())),
            column => (!column.is_missing(row)).then(|| Cow::Owned(column.text(row))),
        })
        .collect();
    Column::from_text(texts.iter().map(Option::as_deref))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::read_csv;

    fn csv(text: &str) -> Table {
        read_csv(text.as_bytes()).expect("test CSV parses")
    }

    #[test]
    fn outcomes_join_by_row_id_newest_batch_winning() {
        let older = csv("id,score,sex\n1,0.9,F\n2,0.2,M\n3,0.7,F\n");
        let newer = csv("id,score,sex\n3,0.1,M\n4,0.6,F\n");
        let outcomes = csv("id,default\n4,1\n3,0\n9,1\n4,0\n,1\n1,1\n");
        let joined = join_outcomes(
            &[
                JoinBatch {
                    table: &older,
                    row_id_column: "id",
                },
                JoinBatch {
                    table: &newer,
                    row_id_column: "id",
                },
            ],
            &outcomes,
            "id",
            "default",
            &["score", "sex"],
        )
        .expect("joins");
        assert_eq!(joined.outcome_rows, 6);
        assert_eq!(joined.matched, 3);
        assert_eq!(joined.unknown, 2, "id 9 and the empty id");
        assert_eq!(joined.unknown_ids, vec!["9".to_owned(), String::new()]);
        assert_eq!(joined.duplicate, 1, "the second outcome for id 4");
        assert_eq!(joined.table.column("default").unwrap(), ["1", "0", "1"]);
        // Row 3 comes from the newer batch (score 0.1, M), not the older one.
        assert_eq!(joined.table.numbers("score").unwrap(), [0.6, 0.1, 0.9]);
        assert_eq!(joined.table.column("sex").unwrap(), ["F", "M", "F"]);
    }

    #[test]
    fn numeric_and_text_ids_meet_and_a_missing_column_is_named() {
        let batch = csv("id,score\n17,0.4\n");
        let outcomes = Table::from_columns(vec![
            ("id".to_owned(), Column::Number(vec![17.0])),
            ("y".to_owned(), Column::Number(vec![1.0])),
        ])
        .unwrap();
        let batches = [JoinBatch {
            table: &batch,
            row_id_column: "id",
        }];
        let joined = join_outcomes(&batches, &outcomes, "id", "y", &["score"]).unwrap();
        assert_eq!(joined.matched, 1);
        let error = join_outcomes(&batches, &outcomes, "id", "y", &["sex"]).unwrap_err();
        assert_eq!(error.column.as_deref(), Some("sex"));
        assert!(error.message.contains("id, score"), "{}", error.message);
        let error = join_outcomes(&batches, &outcomes, "id", "label", &["score"]).unwrap_err();
        assert_eq!(error.column.as_deref(), Some("label"));
        // Ids past 2^53 would collide as numbers: refused, not joined wrongly.
        let huge = csv("id,score\n9007199254740993,0.4\n");
        let error = join_outcomes(
            &[JoinBatch {
                table: &huge,
                row_id_column: "id",
            }],
            &outcomes,
            "id",
            "y",
            &["score"],
        )
        .unwrap_err();
        assert!(error.message.contains("2^53"), "{}", error.message);
    }

    #[test]
    fn padded_text_ids_are_one_id() {
        let batch = csv("id,score\n17,0.4\n18,0.6\n");
        let outcomes = Table::from_columns(vec![
            (
                "id".to_owned(),
                Column::from_text([Some(" 17"), Some("17 "), Some("18"), Some("  ")]),
            ),
            ("y".to_owned(), Column::Number(vec![1.0, 0.0, 1.0, 0.0])),
        ])
        .unwrap();
        let batches = [JoinBatch {
            table: &batch,
            row_id_column: "id",
        }];
        let joined = join_outcomes(&batches, &outcomes, "id", "y", &["score"]).unwrap();
        assert_eq!(
            (joined.matched, joined.duplicate, joined.unknown),
            (2, 1, 1),
            "the second 17 repeats the first; a blank id is unknown"
        );
        assert_eq!(joined.table.numbers("score").unwrap(), [0.4, 0.6]);
    }
}
