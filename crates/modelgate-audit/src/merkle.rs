//! RFC 6962 / RFC 9162 Merkle trees over SHA-256: leaf and node hashing, the right-edge [`Frontier`] that
//! appends in O(log n), subtree roots from stored nodes, and inclusion and consistency proofs with their
//! verification.
//!
//! Written here rather than taken from a crate: the few Merkle crates on crates.io either hash leaves
//! differently from RFC 6962 or cannot build proofs from nodes kept in a database, which is what a log of
//! millions of events needs.

use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A perfect subtree: the `index`-th run of `2^level` leaves, covering leaves
/// `[index · 2^level, (index + 1) · 2^level)`. Level 0 nodes are leaf hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("node at level {} index {} is not available", .0.level, .0.index)]
    MissingNode(NodeId),
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("a consistency proof needs 0 < first <= second (got {first} and {second})")]
    BadSizes { first: u64, second: u64 },
    #[error("the frontier of a tree of size {size} has {expected} hashes, not {found}")]
    BadFrontier {
        size: u64,
        expected: usize,
        found: usize,
    },
    #[error("the proof does not verify: {0}")]
    ProofInvalid(&'static str),
}

/// Where proof generation reads perfect-subtree hashes from (the database, a map, a recorder).
pub trait NodeSource {
    fn node(&self, id: NodeId) -> Result<Hash, MerkleError>;
}

impl NodeSource for BTreeMap<NodeId, Hash> {
    fn node(&self, id: NodeId) -> Result<Hash, MerkleError> {
        self.get(&id).copied().ok_or(MerkleError::MissingNode(id))
    }
}

/// A source that answers every request with zeros and remembers what was asked: running a proof against it
/// lists the nodes the real proof needs, so that they can be fetched in one query.
#[derive(Default)]
pub struct NodeRecorder(Mutex<BTreeSet<NodeId>>);

impl NodeRecorder {
    pub fn into_ids(self) -> Vec<NodeId> {
        self.0
            .into_inner()
            .map(|ids| ids.into_iter().collect())
            .unwrap_or_default()
    }
}

impl NodeSource for NodeRecorder {
    fn node(&self, id: NodeId) -> Result<Hash, MerkleError> {
        if let Ok(mut ids) = self.0.lock() {
            ids.insert(id);
        }
        Ok([0; 32])
    }
}

/// The hashes of the perfect subtrees along the right edge of a tree, largest first: one per set bit of
/// the size. Enough to append a leaf and to compute the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, MerkleError> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(MerkleError::BadFrontier {
                size,
                expected,
                found: hashes.len(),
            });
        }
        Ok(Self { size, hashes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends a leaf hash; returns the interior nodes it completes, lowest first (to be stored for proofs).
    pub fn append(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let mut created = Vec::new();
        let mut hash = leaf;
        let mut level = 0u32;
        let mut index = self.size;
        let mut remaining = self.size;
        while remaining & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                break;
            };
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            created.push((NodeId { level, index }, hash));
            remaining >>= 1;
        }
        self.hashes.push(hash);
        self.size += 1;
        created
    }

    /// The tree's root (RFC 6962 `MTH`).
    pub fn root(&self) -> Hash {
        let mut hashes = self.hashes.iter().rev();
        let Some(last) = hashes.next() else {
            return empty_root();
        };
        hashes.fold(*last, |accumulated, left| node_hash(left, &accumulated))
    }
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start:end])` from perfect-subtree nodes, for the ranges RFC 6962's recursion produces (`start` a
/// multiple of a power of two at least `end - start`, or of the largest one below it).
pub fn subtree_root(source: &impl NodeSource, start: u64, end: u64) -> Result<Hash, MerkleError> {
    if start >= end {
        return Ok(empty_root());
    }
    let mut pieces = Vec::new();
    let mut position = start;
    while position < end {
        let remaining = end - position;
        let mut level = if position == 0 {
            63
        } else {
            position.trailing_zeros()
        };
        level = level.min(63 - remaining.leading_zeros());
        pieces.push(source.node(NodeId {
            level,
            index: position >> level,
        })?);
        position += 1u64 << level;
    }
    let mut pieces = pieces.into_iter().rev();
    let last = pieces.next().unwrap_or_else(empty_root);
    Ok(pieces.fold(last, |accumulated, left| node_hash(&left, &accumulated)))
}

/// The root of the first `size` leaves.
pub fn root_at(source: &impl NodeSource, size: u64) -> Result<Hash, MerkleError> {
    subtree_root(source, 0, size)
}

/// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(
    source: &impl NodeSource,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut path = Vec::new();
    inclusion_path(source, index, 0, size, &mut path)?;
    Ok(path)
}

fn inclusion_path(
    source: &impl NodeSource,
    index: u64,
    start: u64,
    end: u64,
    path: &mut Vec<Hash>,
) -> Result<(), MerkleError> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if index < start + k {
        inclusion_path(source, index, start, start + k, path)?;
        path.push(subtree_root(source, start + k, end)?);
    } else {
        inclusion_path(source, index, start + k, end, path)?;
        path.push(subtree_root(source, start, start + k)?);
    }
    Ok(())
}

/// The consistency proof between the trees of the first `first` and `second` leaves (RFC 9162 §2.1.4.1).
pub fn consistency_proof(
    source: &impl NodeSource,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if first == 0 || first > second {
        return Err(MerkleError::BadSizes { first, second });
    }
    let mut proof = Vec::new();
    if first < second {
        subproof(source, first, 0, second, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof(
    source: &impl NodeSource,
    first: u64,
    start: u64,
    end: u64,
    complete: bool,
    proof: &mut Vec<Hash>,
) -> Result<(), MerkleError> {
    let n = end - start;
    if first == n {
        if !complete {
            proof.push(subtree_root(source, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if first <= k {
        subproof(source, first, start, start + k, complete, proof)?;
        proof.push(subtree_root(source, start + k, end)?);
    } else {
        subproof(source, first - k, start + k, end, false, proof)?;
        proof.push(subtree_root(source, start, start + k)?);
    }
    Ok(())
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves with `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut f = index;
    let mut s = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(MerkleError::ProofInvalid(
                "the proof is longer than the tree is deep",
            ));
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(MerkleError::ProofInvalid(
            "the proof is shorter than the tree is deep",
        ));
    }
    if &r != root {
        return Err(MerkleError::ProofInvalid("the computed root differs"));
    }
    Ok(())
}

/// Checks that the tree of `first` leaves with `first_root` is a prefix of the tree of `second` leaves
/// with `second_root` (RFC 9162 §2.1.4.2). A proof from the empty tree proves nothing and is refused.
pub fn verify_consistency(
    first: u64,
    second: u64,
    proof: &[Hash],
    first_root: &Hash,
    second_root: &Hash,
) -> Result<(), MerkleError> {
    if first == 0 || first > second {
        return Err(MerkleError::BadSizes { first, second });
    }
    if first == second {
        if !proof.is_empty() {
            return Err(MerkleError::ProofInvalid("equal sizes need an empty proof"));
        }
        if first_root != second_root {
            return Err(MerkleError::ProofInvalid(
                "equal sizes with different roots",
            ));
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(MerkleError::ProofInvalid("the proof is empty"));
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let mut f = first - 1;
    let mut s = second - 1;
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if s == 0 {
            return Err(MerkleError::ProofInvalid("the proof is too long"));
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(MerkleError::ProofInvalid("the proof is too short"));
    }
    if &fr != first_root {
        return Err(MerkleError::ProofInvalid("the first root differs"));
    }
    if &sr != second_root {
        return Err(MerkleError::ProofInvalid("the second root differs"));
    }
    Ok(())
}

/// The nodes an inclusion proof needs, to fetch them in one go.
pub fn inclusion_proof_nodes(index: u64, size: u64) -> Result<Vec<NodeId>, MerkleError> {
    let recorder = NodeRecorder::default();
    inclusion_proof(&recorder, index, size)?;
    Ok(recorder.into_ids())
}

/// The nodes a consistency proof (and both roots) need, to fetch them in one go.
pub fn consistency_proof_nodes(first: u64, second: u64) -> Result<Vec<NodeId>, MerkleError> {
    let recorder = NodeRecorder::default();
    consistency_proof(&recorder, first, second)?;
    root_at(&recorder, first)?;
    root_at(&recorder, second)?;
    Ok(recorder.into_ids())
}

/// The nodes the root of the first `size` leaves needs.
pub fn root_nodes(size: u64) -> Vec<NodeId> {
    let recorder = NodeRecorder::default();
    let _ = root_at(&recorder, size);
    recorder.into_ids()
}
