//! Outcomes that arrive after the predictions: a file of row ids and labels joined onto the production
//! batches that carried those row ids, so the labelled rows can be evaluated with the batches' scores and
//! sensitive attributes. Pure: the caller loads the tables.

use crate::dataset::{Column, DatasetError, Table};
use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

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
/// trimmed. `None` for a missing cell.
fn row_id(column: &Column, row: usize) -> Option<Cow<'_, str>> {
    match column {
        Column::Number(values) => {
            let value = values[row];
            if value.is_nan() {
                None
            } else if value.fract() == 0.0 && value.abs() < 1e15 {
                Some(Cow::Owned(format!("{}", value as i64)))
            } else {
                Some(Cow::Owned(value.to_string()))
            }
        }
        Column::Text { dictionary, codes } => {
            let code = codes[row];
            (code != crate::dataset::MISSING)
                .then(|| Cow::Borrowed(dictionary[code as usize].trim()))
                .filter(|text| !text.is_empty())
        }
    }
}

/// Joins `outcomes` (row id and label columns) onto `batches` by row id. When batches share a row id, the
/// later batch in `batches` wins (pass them oldest first). `carried` names the batch columns to bring
/// along (the score, the sensitive attributes): every batch must have them; a column numeric in every
/// batch stays numeric, else it is joined as text.
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
    let mut index: HashMap<Cow<'_, str>, (u32, u32)> = HashMap::new();
    for (number, batch) in batches.iter().enumerate() {
        let ids = batch.table.get(batch.row_id_column)?;
        for row in 0..batch.table.row_count() {
            if let Some(id) = row_id(ids, row) {
                index.insert(id, (number as u32, row as u32));
            }
        }
    }
    let mut seen: HashMap<Cow<'_, str>, ()> = HashMap::new();
    let mut matched: Vec<(u32, u32, usize)> = Vec::new();
    let (mut unknown, mut duplicate) = (0, 0);
    let mut unknown_ids = Vec::new();
    for row in 0..outcomes.row_count() {
        let Some(id) = row_id(outcome_ids, row) else {
            unknown += 1;
            if unknown_ids.len() < UNKNOWN_IDS_NAMED {
                unknown_ids.push(String::new());
            }
            continue;
        };
        let found = index.get(&id).copied();
        match seen.entry(id) {
            Entry::Occupied(_) => {
                duplicate += 1;
                continue;
            }
            Entry::Vacant(slot) => match found {
                Some((batch, batch_row)) => {
                    matched.push((batch, batch_row, row));
                    slot.insert(());
                }
                None => {
                    unknown += 1;
                    if unknown_ids.len() < UNKNOWN_IDS_NAMED {
                        unknown_ids.push(slot.key().to_string());
                    }
                    slot.insert(());
                }
            },
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
/// else text.
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
    let texts: Vec<Option<String>> = cells
        .map(|(source, row)| {
            let column = sources[source];
            (!column.is_missing(row)).then(|| column.text(row))
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
    }
}
