//! The audit log against someone who edits the database directly: every edit is detected by
//! `Store::verify_stored_log` and named. Runs on SQLite and PostgreSQL.

use crate::contract_tests;
use crate::support::{TestStore, at, create_user};
use modelgate_audit::merkle::{self, verify_consistency, verify_inclusion};
use modelgate_audit::{Checkpoint, NoteSigner, NoteVerifier};
use modelgate_core::{ModelName, NewModel, RiskTier, TagKey, Timestamp, Username};
use modelgate_store::StoredCheckpoint;
use sqlx::Row;
use std::collections::BTreeMap;

contract_tests!(
    an_untouched_log_verifies_and_proves_inclusion_and_consistency,
    changing_a_field_of_one_event_is_detected,
    changing_an_event_and_its_hash_is_caught_by_the_checkpoint,
    editing_a_filter_column_is_detected,
    deleting_an_event_is_detected,
    swapping_two_events_is_detected,
    inserting_an_event_is_detected,
    a_forged_checkpoint_is_detected,
    refused_attempts_are_logged,
);

const ORIGIN: &str = "modelgate/test";

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, &[42u8; 32]).unwrap()
}

fn verifier() -> NoteVerifier {
    NoteVerifier::parse(&signer().verifier_key()).unwrap()
}

async fn checkpoint(store: &TestStore) -> StoredCheckpoint {
    let (size, root) = store.audit_tree_head().await.unwrap();
    let note = signer().sign(&Checkpoint {
        origin: ORIGIN.to_owned(),
        size,
        root,
    });
    let stored = StoredCheckpoint {
        size,
        root,
        note,
        created_at: Timestamp::from_unix_millis(0),
    };
    store.save_checkpoint(&stored).await.unwrap();
    stored
}

/// A log of 1 user + 1 model + 10 tag changes (12 events), checkpointed at 6 and at 12.
async fn populated(store: &TestStore) {
    create_user(store, "ann", &[]).await;
    let name = ModelName::parse("m").unwrap();
    store
        .create_model(
            &at(2),
            &NewModel {
                name: name.clone(),
                owner: Username::parse("ann").unwrap(),
                risk_tier: RiskTier::Low,
                description: String::new(),
                intended_use: String::new(),
                tags: BTreeMap::new(),
            },
        )
        .await
        .unwrap();
    for round in 0..10 {
        if round == 4 {
            checkpoint(store).await;
        }
        let key = TagKey::parse(&format!("k{round}")).unwrap();
        store
            .set_model_tag(&at(10 + round), &name, &key, "v")
            .await
            .unwrap();
    }
    checkpoint(store).await;
}

async fn verify(store: &TestStore) -> Result<u64, modelgate_audit::LogProblem> {
    store
        .verify_stored_log(&verifier(), |_| {})
        .await
        .unwrap()
        .map(|report| report.size)
}

async fn execute(store: &TestStore, sql: &str) {
    let mut raw = store.raw().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut raw)
        .await
        .unwrap();
}

async fn leaf_of(store: &TestStore, seq: u64) -> String {
    let mut raw = store.raw().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT leaf FROM audit_events WHERE seq = {seq}"
    )))
    .fetch_one(&mut raw)
    .await
    .unwrap()
    .try_get::<String, _>("leaf")
    .unwrap()
}

async fn an_untouched_log_verifies_and_proves_inclusion_and_consistency(store: TestStore) {
    populated(&store).await;
    assert_eq!(verify(&store).await.unwrap(), 12);
    let (size, root) = store.audit_tree_head().await.unwrap();
    for index in 0..size {
        let (proof, proof_root) = store.audit_inclusion_proof(index, size).await.unwrap();
        assert_eq!(proof_root, root);
        let leaf = merkle::leaf_hash(leaf_of(&store, index).await.as_bytes());
        verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
    }
    for first in 1..=size {
        let (proof, first_root, second_root) =
            store.audit_consistency_proof(first, size).await.unwrap();
        assert_eq!(second_root, root);
        verify_consistency(first, size, &proof, &first_root, &root).unwrap();
    }
    assert!(store.audit_inclusion_proof(12, 12).await.is_err());
    assert!(store.audit_consistency_proof(3, 13).await.is_err());
    let events = store.audit_entries(0, 100).await.unwrap();
    assert_eq!(events.len(), 12);
    assert!(events[0].1.contains(r#""action":"user.create""#));
}

async fn changing_a_field_of_one_event_is_detected(store: TestStore) {
    populated(&store).await;
    let leaf = leaf_of(&store, 7).await;
    let edited = leaf.replace(r#""actor":"system:test""#, r#""actor":"mallory""#);
    assert_ne!(leaf, edited);
    execute(
        &store,
        &format!("UPDATE audit_events SET leaf = '{edited}' WHERE seq = 7"),
    )
    .await;
    let problem = verify(&store).await.unwrap_err();
    assert_eq!(problem.index, Some(7), "{problem}");
    assert!(problem.message.contains("edited"), "{problem}");
}

async fn changing_an_event_and_its_hash_is_caught_by_the_checkpoint(store: TestStore) {
    populated(&store).await;
    let edited = leaf_of(&store, 3)
        .await
        .replace(r#""outcome":"ok""#, r#""outcome":"ok","x":1"#);
    let hash = hex::encode(merkle::leaf_hash(edited.as_bytes()));
    execute(
        &store,
        &format!("UPDATE audit_events SET leaf = '{edited}', leaf_hash = '{hash}' WHERE seq = 3"),
    )
    .await;
    let problem = verify(&store).await.unwrap_err();
    assert!(
        problem.message.contains("signed checkpoint at size 6"),
        "{problem}"
    );
    assert_eq!(
        problem.index,
        Some(0),
        "the first entries not covered by a good checkpoint"
    );
}

async fn editing_a_filter_column_is_detected(store: TestStore) {
    populated(&store).await;
    execute(
        &store,
        "UPDATE audit_events SET action = 'model.read' WHERE seq = 5",
    )
    .await;
    let problem = verify(&store).await.unwrap_err();
    assert_eq!(problem.index, Some(5));
    assert!(problem.message.contains("column action"), "{problem}");
}

async fn deleting_an_event_is_detected(store: TestStore) {
    populated(&store).await;
    execute(&store, "DELETE FROM audit_events WHERE seq = 9").await;
    let problem = verify(&store).await.unwrap_err();
    assert_eq!(problem.index, Some(9), "{problem}");
    execute(&store, "DELETE FROM audit_events WHERE seq >= 9").await;
    let problem = verify(&store).await.unwrap_err();
    assert!(problem.message.contains("removed"), "{problem}");
}

async fn swapping_two_events_is_detected(store: TestStore) {
    populated(&store).await;
    let (four, five) = (leaf_of(&store, 4).await, leaf_of(&store, 5).await);
    let hash = |leaf: &str| hex::encode(merkle::leaf_hash(leaf.as_bytes()));
    execute(
        &store,
        &format!(
            "UPDATE audit_events SET leaf = '{five}', leaf_hash = '{}' WHERE seq = 4",
            hash(&five)
        ),
    )
    .await;
    execute(
        &store,
        &format!(
            "UPDATE audit_events SET leaf = '{four}', leaf_hash = '{}' WHERE seq = 5",
            hash(&four)
        ),
    )
    .await;
    let problem = verify(&store).await.unwrap_err();
    assert_eq!(problem.index, Some(4), "{problem}");
    assert!(problem.message.contains("moved"), "{problem}");
}

async fn inserting_an_event_is_detected(store: TestStore) {
    populated(&store).await;
    // Shift the tail up by one and slip a forged event in at 8, renumbering the leaves consistently.
    let mut raw = store.raw().await;
    let tail: Vec<(i64, String)> =
        sqlx::query("SELECT seq, leaf FROM audit_events WHERE seq >= 8 ORDER BY seq DESC")
            .fetch_all(&mut raw)
            .await
            .unwrap()
            .iter()
            .map(|row| (row.try_get("seq").unwrap(), row.try_get("leaf").unwrap()))
            .collect();
    for (seq, leaf) in tail {
        let moved = leaf.replace(&format!(r#""seq":{seq}"#), &format!(r#""seq":{}"#, seq + 1));
        let hash = hex::encode(merkle::leaf_hash(moved.as_bytes()));
        execute(
            &store,
            &format!(
                "UPDATE audit_events SET seq = {}, leaf = '{moved}', leaf_hash = '{hash}' WHERE seq = {seq}",
                seq + 1
            ),
        )
        .await;
    }
    let forged = leaf_of(&store, 7).await.replace(r#""seq":7"#, r#""seq":8"#);
    let hash = hex::encode(merkle::leaf_hash(forged.as_bytes()));
    execute(
        &store,
        &format!(
            "INSERT INTO audit_events (seq, recorded_at, actor, action, target, outcome, leaf, leaf_hash)
             SELECT 8, recorded_at, actor, action, target, outcome, '{forged}', '{hash}' FROM audit_events WHERE seq = 7"
        ),
    )
    .await;
    let problem = verify(&store).await.unwrap_err();
    assert!(problem.message.contains("size 12"), "{problem}");
    assert_eq!(problem.index, Some(6), "{problem}");
}

async fn a_forged_checkpoint_is_detected(store: TestStore) {
    populated(&store).await;
    let latest = store.latest_checkpoint().await.unwrap().unwrap();
    // A checkpoint for a forked tree, signed by another key.
    let mut forked_root = latest.root;
    forked_root[0] ^= 1;
    let other = NoteSigner::from_seed(ORIGIN, &[7u8; 32]).unwrap();
    let forged = other.sign(&Checkpoint {
        origin: ORIGIN.to_owned(),
        size: latest.size,
        root: forked_root,
    });
    execute(
        &store,
        &format!(
            "UPDATE audit_checkpoints SET note = '{forged}', root_hash = '{}' WHERE tree_size = {}",
            hex::encode(forked_root),
            latest.size
        ),
    )
    .await;
    let problem = verify(&store).await.unwrap_err();
    assert!(
        problem
            .message
            .contains(&format!("checkpoint at size {}", latest.size)),
        "{problem}"
    );
    // Signed with the right key but for a forked tree: caught by the roots.
    let forged = signer().sign(&Checkpoint {
        origin: ORIGIN.to_owned(),
        size: latest.size,
        root: forked_root,
    });
    execute(
        &store,
        &format!(
            "UPDATE audit_checkpoints SET note = '{forged}' WHERE tree_size = {}",
            latest.size
        ),
    )
    .await;
    let problem = verify(&store).await.unwrap_err();
    assert!(problem.message.contains("does not match"), "{problem}");
}

async fn refused_attempts_are_logged(store: TestStore) {
    let ann = create_user(&store, "ann", &[]).await;
    let attribution = crate::support::as_user(&ann, 5);
    let seq = store
        .record_refusal(&attribution, "model.archive", "model/m", "not the owner")
        .await
        .unwrap();
    let leaf = leaf_of(&store, seq).await;
    let event = modelgate_audit::AuditEvent::from_leaf(leaf.as_bytes()).unwrap();
    assert_eq!(event.outcome, modelgate_audit::Outcome::Denied);
    assert_eq!(event.reason.as_deref(), Some("not the owner"));
    assert_eq!(event.actor, "ann");
    assert_eq!(event.client_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(verify(&store).await.unwrap(), 2);
}
