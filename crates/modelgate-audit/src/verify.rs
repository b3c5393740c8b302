//! Verifying a log as an auditor does: recompute every leaf hash from the entry bytes (never trusting the
//! server's hashes), check that entries are numbered without gaps and that each entry's own `seq` is its
//! position, rebuild the tree, and compare its roots with checkpoints at their sizes.

use crate::merkle::{Frontier, Hash, leaf_hash};
use std::collections::BTreeMap;

/// The first thing found wrong, and where: one entry (`index`), or somewhere in the entries `index` to
/// `through` when only a root tells (a root cannot say which entry below it changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", place(*index, *through))]
pub struct LogProblem {
    pub index: Option<u64>,
    pub through: Option<u64>,
    pub message: String,
}

fn place(index: Option<u64>, through: Option<u64>) -> String {
    match (index, through) {
        (Some(first), Some(last)) if last > first => format!("indices {first} to {last}: "),
        (Some(index), _) => format!("index {index}: "),
        (None, _) => String::new(),
    }
}

impl LogProblem {
    pub fn at(index: u64, message: impl Into<String>) -> Self {
        Self {
            index: Some(index),
            through: None,
            message: message.into(),
        }
    }

    pub fn general(message: impl Into<String>) -> Self {
        Self {
            index: None,
            through: None,
            message: message.into(),
        }
    }
}

/// What a root must be at a given size (from a checkpoint), and how to name it in a report.
#[derive(Debug, Clone)]
pub struct ExpectedRoot {
    pub root: Hash,
    pub label: String,
}

/// Streams a log's entries in order; keeps O(log n) state.
#[derive(Debug, Default)]
pub struct LogVerifier {
    frontier: Frontier,
    expected: BTreeMap<u64, ExpectedRoot>,
    last_matched: u64,
}

#[derive(serde::Deserialize)]
struct SeqOnly {
    seq: u64,
}

impl LogVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Demands that the tree of the first `size` entries has `root`.
    pub fn expect_root(&mut self, size: u64, expected: ExpectedRoot) {
        self.expected.insert(size, expected);
    }

    /// Checks the next entry: `claimed_index` is where the source says it is, `leaf` its exact bytes.
    pub fn push(&mut self, claimed_index: u64, leaf: &[u8]) -> Result<Hash, LogProblem> {
        let position = self.frontier.size();
        if claimed_index != position {
            return Err(LogProblem::at(
                position,
                format!(
                    "expected entry {position} next, found entry {claimed_index} (an entry is missing, duplicated or out of order)"
                ),
            ));
        }
        let seq = serde_json::from_slice::<SeqOnly>(leaf)
            .map_err(|error| {
                LogProblem::at(
                    position,
                    format!("the entry is not an audit event: {error}"),
                )
            })?
            .seq;
        if seq != position {
            return Err(LogProblem::at(
                position,
                format!(
                    "the entry records seq {seq} but stands at position {position} (entries were moved)"
                ),
            ));
        }
        let hash = leaf_hash(leaf);
        self.frontier.append(hash);
        let size = self.frontier.size();
        if let Some(expected) = self.expected.get(&size) {
            if self.frontier.root() != expected.root {
                // A root says only that something below it changed: the problem names the range
                // since the last matching root, not its first index as if that entry were the culprit.
                let first = self.last_matched;
                return Err(LogProblem {
                    index: Some(first),
                    through: Some(size - 1),
                    message: format!(
                        "the tree of the first {size} entries does not match {}: one of these entries was altered, inserted or removed",
                        expected.label
                    ),
                });
            }
            self.last_matched = size;
        }
        Ok(hash)
    }

    /// Ends the stream: every expected size must have been reached. Returns the size and root.
    pub fn finish(self) -> Result<(u64, Hash), LogProblem> {
        let size = self.frontier.size();
        if let Some((missing, expected)) = self.expected.range(size + 1..).next() {
            return Err(LogProblem::at(
                size,
                format!(
                    "the log ends after {size} entries but {} covers {missing} (entries were removed)",
                    expected.label
                ),
            ));
        }
        Ok((size, self.frontier.root()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(seq: u64) -> Vec<u8> {
        format!(r#"{{"seq":{seq},"action":"x"}}"#).into_bytes()
    }

    fn root_of(leaves: &[Vec<u8>]) -> Hash {
        let mut frontier = Frontier::new();
        for leaf in leaves {
            frontier.append(leaf_hash(leaf));
        }
        frontier.root()
    }

    fn expecting(size: u64, root: Hash) -> LogVerifier {
        let mut verifier = LogVerifier::new();
        verifier.expect_root(
            size,
            ExpectedRoot {
                root,
                label: "the checkpoint".to_owned(),
            },
        );
        verifier
    }

    #[test]
    fn an_intact_log_verifies() {
        let leaves: Vec<Vec<u8>> = (0..10).map(leaf).collect();
        let mut verifier = expecting(10, root_of(&leaves));
        for (index, bytes) in leaves.iter().enumerate() {
            verifier.push(index as u64, bytes).unwrap();
        }
        assert_eq!(verifier.finish().unwrap(), (10, root_of(&leaves)));
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let leaves: Vec<Vec<u8>> = (0..10).map(leaf).collect();
        let root = root_of(&leaves);
        let run = |entries: Vec<(u64, Vec<u8>)>| {
            let mut verifier = expecting(10, root);
            for (index, bytes) in &entries {
                verifier.push(*index, bytes)?;
            }
            verifier.finish()
        };
        let good: Vec<(u64, Vec<u8>)> = leaves
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, l)| (i as u64, l))
            .collect();

        let mut changed = good.clone();
        changed[4].1 = br#"{"seq":4,"action":"y"}"#.to_vec();
        let problem = run(changed).unwrap_err();
        assert!(problem.message.contains("does not match"));
        assert!(
            problem.to_string().starts_with("indices 0 to 9: "),
            "a root names the range it covers, not its first entry: {problem}"
        );

        let mut deleted = good.clone();
        deleted.remove(6);
        assert_eq!(run(deleted).unwrap_err().index, Some(6));

        let mut swapped = good.clone();
        swapped.swap(2, 3);
        assert_eq!(run(swapped).unwrap_err().index, Some(2));

        let mut swapped_bytes = good.clone();
        let third = swapped_bytes[3].1.clone();
        swapped_bytes[3].1 = swapped_bytes[2].1.clone();
        swapped_bytes[2].1 = third;
        let problem = run(swapped_bytes).unwrap_err();
        assert_eq!(problem.index, Some(2));
        assert!(problem.message.contains("moved"));

        let mut truncated = good.clone();
        truncated.truncate(8);
        assert!(run(truncated).unwrap_err().message.contains("removed"));
    }
}
