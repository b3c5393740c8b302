//! Measures the audit log on this machine; `bench/run` prints its lines in a table.
//!
//! 1. Appending: the cost of the audit append inside a change, as the difference between a transaction
//!    that only appends (`record_refusal`) and an empty write transaction, against a whole change
//!    (`set_model_tag`, which includes its append).
//! 2. Proofs: a log of N (default 1,000,000) events is written straight into a SQLite store (bulk
//!    inserts of real canonical events and their Merkle nodes), then inclusion and consistency proofs
//!    are timed through `Store`.
//! 3. Export: the same N events are written as `DIR/entries.jsonl` with a signed `DIR/checkpoint` and
//!    `DIR/public-key`, for `modelgate audit verify --export DIR` to be timed by the script.
//!
//! Usage: `audit_bench OUT_DIR [EVENTS]`.
// Measuring elapsed time is what this file is for.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelgate_audit::merkle::{Frontier, leaf_hash};
use modelgate_audit::{AuditEvent, Checkpoint, NoteSigner, Outcome};
use modelgate_core::{ModelName, NewModel, NewUser, RiskTier, Role, TagKey, Timestamp, Username};
use modelgate_store::{Attribution, Store};
use std::io::Write;
use std::time::{Duration, Instant};

fn at(millis: i64) -> Attribution {
    Attribution::system("bench", Timestamp::from_unix_millis(millis))
}

fn event(seq: u64) -> AuditEvent {
    AuditEvent {
        seq,
        time: Timestamp::from_unix_millis(1_795_790_000_000 + seq as i64).to_rfc3339(),
        actor: format!("user{}", seq % 50),
        token_id: Some(format!("tok_{:016x}", seq % 977)),
        action: "model.tag.set".to_owned(),
        target: format!("model/model-{}", seq % 1000),
        outcome: Outcome::Ok,
        reason: None,
        before: Some(
            serde_json::json!({"name": format!("model-{}", seq % 1000), "tags": {"stage": "a"}}),
        ),
        after: Some(
            serde_json::json!({"name": format!("model-{}", seq % 1000), "tags": {"stage": "b"}}),
        ),
        request_id: Some(format!("{:032x}", seq)),
        client_addr: Some("10.0.0.7".to_owned()),
        policy_digest: None,
    }
}

fn micros(duration: Duration, count: u32) -> f64 {
    duration.as_secs_f64() * 1e6 / f64::from(count)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().expect("usage: audit_bench OUT_DIR [EVENTS]"));
    let events: u64 = args.next().map(|n| n.parse().unwrap()).unwrap_or(1_000_000);
    std::fs::create_dir_all(&out).unwrap();

    // 1. Append cost inside a change.
    let small = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(small.path()).await.unwrap();
    store.migrate().await.unwrap();
    store
        .create_user(
            &at(0),
            &NewUser {
                username: Username::parse("bench").unwrap(),
                printed_name: "Bench".to_owned(),
                email: None,
                roles: vec![Role::admin()],
                password_hash: None,
            },
        )
        .await
        .unwrap();
    let name = ModelName::parse("bench-model").unwrap();
    store
        .create_model(
            &at(0),
            &NewModel {
                name: name.clone(),
                owner: Username::parse("bench").unwrap(),
                risk_tier: RiskTier::Low,
                description: String::new(),
                intended_use: String::new(),
                tags: Default::default(),
            },
        )
        .await
        .unwrap();
    let rounds = 2000u32;
    let key = TagKey::parse("k").unwrap();
    let started = Instant::now();
    for round in 0..rounds {
        store
            .set_model_tag(&at(i64::from(round)), &name, &key, "v")
            .await
            .unwrap();
    }
    let change = micros(started.elapsed(), rounds);
    let started = Instant::now();
    for round in 0..rounds {
        store
            .record_refusal(&at(i64::from(round)), "bench", "bench", "bench")
            .await
            .unwrap();
    }
    let append_only = micros(started.elapsed(), rounds);
    let started = Instant::now();
    for _ in 0..rounds {
        store.empty_write_transaction().await.unwrap();
    }
    let empty = micros(started.elapsed(), rounds);
    let append = (append_only - empty).max(0.0);
    println!("append_us={append:.1}");
    println!("change_us={change:.1}");
    println!("append_share_pct={:.1}", 100.0 * append / change);

    // 2 and 3. A log of `events` events: in a store, and as an export.
    let big = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(big.path()).await.unwrap();
    store.migrate().await.unwrap();
    let signer = NoteSigner::from_seed("modelgate/bench", &[3u8; 32]).unwrap();
    let mut export =
        std::io::BufWriter::new(std::fs::File::create(out.join("entries.jsonl")).unwrap());
    let mut frontier = Frontier::new();
    let mut batch_events = Vec::new();
    let mut batch_nodes = Vec::new();
    let started = Instant::now();
    for seq in 0..events {
        let leaf = event(seq).to_leaf().unwrap();
        export.write_all(&leaf).unwrap();
        export.write_all(b"\n").unwrap();
        let hash = leaf_hash(&leaf);
        batch_nodes.extend(frontier.append(hash));
        batch_events.push((seq, String::from_utf8(leaf).unwrap(), hash));
        if batch_events.len() == 20_000 || seq + 1 == events {
            store
                .bulk_load_audit_for_benchmarks(&batch_events, &batch_nodes, &frontier)
                .await
                .unwrap();
            batch_events.clear();
            batch_nodes.clear();
        }
    }
    export.flush().unwrap();
    let note = signer.sign(&Checkpoint {
        origin: signer.name().to_owned(),
        size: frontier.size(),
        root: frontier.root(),
    });
    std::fs::write(out.join("checkpoint"), note).unwrap();
    std::fs::write(
        out.join("public-key"),
        format!("{}\n", signer.verifier_key()),
    )
    .unwrap();
    println!("events={events}");
    println!("build_seconds={:.1}", started.elapsed().as_secs_f64());
    assert_eq!(
        store.audit_tree_head().await.unwrap(),
        (frontier.size(), frontier.root())
    );

    let samples = 200u32;
    let mut worst = Duration::ZERO;
    let started = Instant::now();
    for sample in 0..samples {
        let index = (u64::from(sample) * 7_919_993) % events;
        let one = Instant::now();
        let (_, root) = store.audit_inclusion_proof(index, events).await.unwrap();
        worst = worst.max(one.elapsed());
        assert_eq!(root, frontier.root());
    }
    println!("inclusion_us={:.0}", micros(started.elapsed(), samples));
    println!("inclusion_worst_us={:.0}", worst.as_secs_f64() * 1e6);
    let mut worst = Duration::ZERO;
    let started = Instant::now();
    for sample in 0..samples {
        let first = 1 + (u64::from(sample) * 4_999_999) % (events - 1);
        let one = Instant::now();
        store.audit_consistency_proof(first, events).await.unwrap();
        worst = worst.max(one.elapsed());
    }
    println!("consistency_us={:.0}", micros(started.elapsed(), samples));
    println!("consistency_worst_us={:.0}", worst.as_secs_f64() * 1e6);
}
