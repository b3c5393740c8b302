//! Passwords and the lock-out, on both backends: who set a password decides whether it may sign, the
//! change is audited without the hash, failures are counted in the database, and printed names are unique
//! among active users.

use crate::contract_tests;
use crate::support::{TestStore, at, create_user};
use modelgate_core::{NewUser, Timestamp, Username};
use modelgate_store::{
    AuditFilter, LockoutRule, PasswordAttempt, PasswordChange, StoreError, UserUpdate,
};

contract_tests!(
    password_changes_are_audited_and_admin_resets_cannot_sign,
    the_lockout_counts_failures_in_the_database_within_its_window,
    the_lockout_admits_no_more_attempts_than_its_limit_under_concurrency,
    printed_names_are_unique_among_active_users,
    aggregated_refusals_carry_their_count,
    migrations_tolerate_a_gap_in_versions,
    an_edited_applied_migration_is_detected,
);

const RULE: LockoutRule = LockoutRule {
    max_failures: 5,
    window_millis: 15 * 60 * 1000,
};

fn events(leaves: &[(u64, String)]) -> Vec<serde_json::Value> {
    leaves
        .iter()
        .map(|(_, leaf)| serde_json::from_str(leaf).unwrap())
        .collect()
}

async fn password_changes_are_audited_and_admin_resets_cannot_sign(store: TestStore) {
    let alice = create_user(&store, "alice", &["validator"]).await;
    assert!(
        !store
            .password_reset_required(&alice.username)
            .await
            .unwrap()
    );
    let reset = store
        .set_password(
            &at(2_000),
            &alice.username,
            "$argon2id$admin-chosen",
            PasswordChange::AdminReset,
        )
        .await
        .unwrap();
    assert!(reset.has_password);
    assert!(
        store
            .password_reset_required(&alice.username)
            .await
            .unwrap()
    );
    store
        .set_password(
            &at(3_000),
            &alice.username,
            "$argon2id$her-own",
            PasswordChange::OwnChange,
        )
        .await
        .unwrap();
    assert!(
        !store
            .password_reset_required(&alice.username)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .password_hash(&alice.username)
            .await
            .unwrap()
            .as_deref(),
        Some("$argon2id$her-own")
    );
    let changes = events(
        &store
            .list_audit_events(&AuditFilter {
                action: Some("user.password_changed".to_owned()),
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .unwrap(),
    );
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["target"], "user/alice");
    assert_eq!(changes[0]["after"]["change"], "admin_reset");
    assert_eq!(changes[0]["after"]["self_change"], false);
    assert_eq!(changes[1]["after"]["change"], "own_change");
    assert_eq!(changes[1]["after"]["self_change"], true);
    for change in &changes {
        assert!(
            !change.to_string().contains("argon2id"),
            "no hash in the log: {change}"
        );
    }
}

async fn the_lockout_counts_failures_in_the_database_within_its_window(store: TestStore) {
    let start = 10_000_000;
    for attempt in 0..5 {
        let answer = store
            .begin_password_attempt("bob", Timestamp::from_unix_millis(start + attempt), RULE)
            .await
            .unwrap();
        assert_eq!(answer, PasswordAttempt::Allowed, "attempt {attempt}");
    }
    let locked = store
        .begin_password_attempt("bob", Timestamp::from_unix_millis(start + 10), RULE)
        .await
        .unwrap();
    assert_eq!(
        locked,
        PasswordAttempt::Locked {
            until: Timestamp::from_unix_millis(start + RULE.window_millis)
        }
    );
    assert_eq!(
        store
            .begin_password_attempt("carol", Timestamp::from_unix_millis(start + 10), RULE)
            .await
            .unwrap(),
        PasswordAttempt::Allowed,
        "the lock is per username"
    );
    // Once the first failure leaves the window, one more attempt is admitted.
    assert_eq!(
        store
            .begin_password_attempt(
                "bob",
                Timestamp::from_unix_millis(start + RULE.window_millis + 1),
                RULE
            )
            .await
            .unwrap(),
        PasswordAttempt::Allowed
    );
    store.clear_password_failures("bob").await.unwrap();
    assert_eq!(
        store
            .begin_password_attempt(
                "bob",
                Timestamp::from_unix_millis(start + RULE.window_millis + 2),
                RULE
            )
            .await
            .unwrap(),
        PasswordAttempt::Allowed,
        "a success forgets the failures"
    );
}

async fn the_lockout_admits_no_more_attempts_than_its_limit_under_concurrency(store: TestStore) {
    let now = Timestamp::from_unix_millis(50_000_000);
    let attempts = (0..20).map(|_| store.begin_password_attempt("dora", now, RULE));
    let answers = futures::future::join_all(attempts).await;
    let allowed = answers
        .iter()
        .filter(|answer| matches!(answer, Ok(PasswordAttempt::Allowed)))
        .count();
    assert_eq!(allowed, 5, "{answers:?}");
}

async fn printed_names_are_unique_among_active_users(store: TestStore) {
    let vic = create_user(&store, "vic", &["validator"]).await;
    let impostor = |username: &str, printed_name: &str| NewUser {
        username: Username::parse(username).unwrap(),
        printed_name: printed_name.to_owned(),
        email: None,
        roles: vec![],
        password_hash: None,
    };
    let refused = store
        .create_user(&at(2_000), &impostor("vic2", "VIC example"))
        .await
        .unwrap_err();
    match refused {
        StoreError::FailedPrecondition(message) => {
            assert!(
                message.contains("\"vic\""),
                "names the other account: {message}"
            )
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let other = store
        .create_user(&at(2_000), &impostor("walt", "Walt Example"))
        .await
        .unwrap();
    let renamed = store
        .update_user(
            &at(3_000),
            &other.username,
            &UserUpdate {
                printed_name: Some("vic example".to_owned()),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(renamed, StoreError::FailedPrecondition(_)));
    store
        .update_user(
            &at(3_000),
            &vic.username,
            &UserUpdate {
                printed_name: Some("vic Example".to_owned()),
                ..UserUpdate::default()
            },
        )
        .await
        .expect("a user may keep their own name");
    store
        .update_user(
            &at(4_000),
            &vic.username,
            &UserUpdate {
                active: Some(false),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    store
        .create_user(&at(5_000), &impostor("vic2", "Vic Example"))
        .await
        .expect("a deactivated user's name is free");
    let reactivated = store
        .update_user(
            &at(6_000),
            &vic.username,
            &UserUpdate {
                active: Some(true),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(reactivated, StoreError::FailedPrecondition(_)));
}

async fn aggregated_refusals_carry_their_count(store: TestStore) {
    store
        .record_refusals(
            &at(7_000),
            "auth.refused",
            "GET /api/v1/models",
            "the token is not valid",
            199,
            Timestamp::from_unix_millis(1_000),
            Timestamp::from_unix_millis(6_000),
        )
        .await
        .unwrap();
    let recorded = events(
        &store
            .list_audit_events(&AuditFilter {
                action: Some("auth.refused".to_owned()),
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .unwrap(),
    );
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["outcome"], "denied");
    assert_eq!(recorded[0]["after"]["count"], 199);
}

async fn migrations_tolerate_a_gap_in_versions(store: TestStore) {
    use sqlx::Row;
    let mut raw = store.raw().await;
    let versions: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&mut raw)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<i64, _>("version").unwrap())
        .collect();
    assert!(versions.contains(&7), "{versions:?}");
    assert_eq!(
        store.migrate().await.unwrap(),
        0,
        "a missing version is not re-applied nor an error"
    );
}

/// An applied migration whose text changed is detected at the next start (as `sqlx::migrate!` would):
/// the recorded checksum no longer matches, and the error names the version.
async fn an_edited_applied_migration_is_detected(store: TestStore) {
    let mut raw = store.raw().await;
    sqlx::query("UPDATE schema_migration_checksums SET sha256 = 'edited' WHERE version = 3")
        .execute(&mut raw)
        .await
        .unwrap();
    let error = store.migrate().await.unwrap_err().to_string();
    assert!(
        error.contains("migration 3 (model_cards) was edited after this database applied it"),
        "{error}"
    );
    // Restored, the start goes on.
    sqlx::query("DELETE FROM schema_migration_checksums WHERE version = 3")
        .execute(&mut raw)
        .await
        .unwrap();
    assert_eq!(store.migrate().await.unwrap(), 0);
}
