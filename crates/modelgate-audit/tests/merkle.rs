//! The Merkle tree against RFC 6962's published reference values (embedded), the transparency-dev proof
//! vectors (`tests/vectors`, Apache-2.0, see its NOTICE), and property tests over random trees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use modelgate_audit::merkle::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

const LEAF_INPUTS_HEX: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const LEAF_HASHES_HEX: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
];
const ROOT_HASHES_HEX: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn from_hex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

fn hash_from_hex(text: &str) -> Hash {
    from_hex(text).try_into().unwrap()
}

/// A tree built by appending, with every node it stored.
fn build(leaves: &[Vec<u8>]) -> (Frontier, BTreeMap<NodeId, Hash>) {
    let mut frontier = Frontier::new();
    let mut nodes = BTreeMap::new();
    for (index, leaf) in leaves.iter().enumerate() {
        let hash = leaf_hash(leaf);
        nodes.insert(
            NodeId {
                level: 0,
                index: index as u64,
            },
            hash,
        );
        for (id, node) in frontier.append(hash) {
            nodes.insert(id, node);
        }
    }
    (frontier, nodes)
}

fn reference_leaves() -> Vec<Vec<u8>> {
    LEAF_INPUTS_HEX.iter().map(|text| from_hex(text)).collect()
}

#[test]
fn leaf_hashes_and_every_prefix_root_match_the_reference() {
    for (input, expected) in LEAF_INPUTS_HEX.iter().zip(LEAF_HASHES_HEX) {
        assert_eq!(leaf_hash(&from_hex(input)), hash_from_hex(expected));
    }
    assert_eq!(empty_root(), hash_from_hex(ROOT_HASHES_HEX[0]));
    let leaves = reference_leaves();
    for size in 0..=leaves.len() {
        let (frontier, nodes) = build(&leaves[..size]);
        let expected = hash_from_hex(ROOT_HASHES_HEX[size]);
        assert_eq!(frontier.root(), expected, "frontier root of size {size}");
        let (_, all_nodes) = build(&leaves);
        assert_eq!(
            root_at(&all_nodes, size as u64).unwrap(),
            expected,
            "stored-node root of size {size}"
        );
        assert_eq!(root_at(&nodes, size as u64).unwrap(), expected);
    }
}

fn decode_b64(value: &serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or_default())
        .unwrap_or_default()
}

fn as_hash(bytes: Vec<u8>) -> Option<Hash> {
    bytes.try_into().ok()
}

fn vector_files(kind: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(kind);
    let mut files = Vec::new();
    let mut pending = vec![root];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() > 20, "the {kind} vectors are present");
    files
}

#[test]
fn inclusion_vectors() {
    for file in vector_files("inclusion") {
        let vector: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let proof: Option<Vec<Hash>> = vector["proof"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| as_hash(decode_b64(item)))
                    .collect::<Option<Vec<_>>>()
            })
            .unwrap_or(Some(Vec::new()));
        let outcome = match (
            as_hash(decode_b64(&vector["leafHash"])),
            as_hash(decode_b64(&vector["root"])),
            proof,
        ) {
            (Some(leaf), Some(root), Some(proof)) => verify_inclusion(
                &leaf,
                vector["leafIdx"].as_u64().unwrap(),
                vector["treeSize"].as_u64().unwrap(),
                &proof,
                &root,
            )
            .is_ok(),
            _ => false,
        };
        let want_error = vector["wantErr"].as_bool().unwrap();
        assert_eq!(outcome, !want_error, "{}", file.display());
    }
}

#[test]
fn consistency_vectors() {
    for file in vector_files("consistency") {
        let vector: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let proof: Option<Vec<Hash>> = vector["proof"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| as_hash(decode_b64(item)))
                    .collect::<Option<Vec<_>>>()
            })
            .unwrap_or(Some(Vec::new()));
        let outcome = match (
            as_hash(decode_b64(&vector["root1"])),
            as_hash(decode_b64(&vector["root2"])),
            proof,
        ) {
            (Some(root1), Some(root2), Some(proof)) => verify_consistency(
                vector["size1"].as_u64().unwrap(),
                vector["size2"].as_u64().unwrap(),
                &proof,
                &root1,
                &root2,
            )
            .is_ok(),
            // Roots that are not 32 bytes only verify where the sizes make them irrelevant.
            (root1, root2, Some(proof)) => {
                let size1 = vector["size1"].as_u64().unwrap();
                let size2 = vector["size2"].as_u64().unwrap();
                size1 == size2
                    && size1 > 0
                    && proof.is_empty()
                    && vector["root1"] == vector["root2"]
                    && root1.is_none()
                    && root2.is_none()
            }
            _ => false,
        };
        let want_error = vector["wantErr"].as_bool().unwrap();
        assert_eq!(outcome, !want_error, "{}", file.display());
    }
}

#[test]
fn proofs_built_from_stored_nodes_match_the_reference_vectors() {
    let leaves = reference_leaves();
    let (_, nodes) = build(&leaves);
    for size in 1..=8u64 {
        let root = hash_from_hex(ROOT_HASHES_HEX[size as usize]);
        for index in 0..size {
            let proof = inclusion_proof(&nodes, index, size).unwrap();
            verify_inclusion(
                &leaf_hash(&leaves[index as usize]),
                index,
                size,
                &proof,
                &root,
            )
            .unwrap();
        }
        for first in 1..=size {
            let proof = consistency_proof(&nodes, first, size).unwrap();
            let first_root = hash_from_hex(ROOT_HASHES_HEX[first as usize]);
            verify_consistency(first, size, &proof, &first_root, &root).unwrap();
        }
    }
}

#[test]
fn recorded_node_lists_are_what_proofs_read() {
    let leaves: Vec<Vec<u8>> = (0..1000u32).map(|i| i.to_be_bytes().to_vec()).collect();
    let (frontier, nodes) = build(&leaves);
    let needed = inclusion_proof_nodes(617, 1000).unwrap();
    let subset: BTreeMap<NodeId, Hash> = needed.iter().map(|id| (*id, nodes[id])).collect();
    assert!(
        subset.len() <= 2 * 10 * 10,
        "O(log² n) nodes, got {}",
        subset.len()
    );
    let proof = inclusion_proof(&subset, 617, 1000).unwrap();
    verify_inclusion(
        &leaf_hash(&leaves[617]),
        617,
        1000,
        &proof,
        &frontier.root(),
    )
    .unwrap();
    let needed = consistency_proof_nodes(333, 1000).unwrap();
    let subset: BTreeMap<NodeId, Hash> = needed.iter().map(|id| (*id, nodes[id])).collect();
    let proof = consistency_proof(&subset, 333, 1000).unwrap();
    verify_consistency(
        333,
        1000,
        &proof,
        &root_at(&subset, 333).unwrap(),
        &frontier.root(),
    )
    .unwrap();
}

fn flip_bit(proof: &mut [Hash], bit: usize) {
    let total = proof.len() * 256;
    let bit = bit % total;
    proof[bit / 256][(bit % 256) / 8] ^= 1 << (bit % 8);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_proof_verifies_and_any_flipped_bit_fails(size in 1u64..600, seed in any::<u64>(), bit in any::<usize>()) {
        let leaves: Vec<Vec<u8>> = (0..size).map(|i| (i ^ seed).to_le_bytes().to_vec()).collect();
        let (frontier, nodes) = build(&leaves);
        let root = frontier.root();
        prop_assert_eq!(root_at(&nodes, size).unwrap(), root);
        let index = seed % size;
        let leaf = leaf_hash(&leaves[index as usize]);
        let proof = inclusion_proof(&nodes, index, size).unwrap();
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_ok());
        if !proof.is_empty() {
            let mut broken = proof.clone();
            flip_bit(&mut broken, bit);
            prop_assert!(verify_inclusion(&leaf, index, size, &broken, &root).is_err());
        }
        let mut wrong_leaf = leaf;
        wrong_leaf[bit % 32] ^= 1;
        prop_assert!(verify_inclusion(&wrong_leaf, index, size, &proof, &root).is_err());

        let first = 1 + (seed >> 7) % size;
        let first_root = root_at(&nodes, first).unwrap();
        let proof = consistency_proof(&nodes, first, size).unwrap();
        prop_assert!(verify_consistency(first, size, &proof, &first_root, &root).is_ok());
        if !proof.is_empty() {
            let mut broken = proof.clone();
            flip_bit(&mut broken, bit);
            prop_assert!(verify_consistency(first, size, &broken, &first_root, &root).is_err());
        }
        let mut wrong_root = first_root;
        wrong_root[bit % 32] ^= 0x80;
        prop_assert!(verify_consistency(first, size, &proof, &wrong_root, &root).is_err());
    }
}
