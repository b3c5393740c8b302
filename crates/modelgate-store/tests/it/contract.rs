//! The behaviour every backend must show.

use crate::contract_tests;
use crate::support::{TestStore, as_user, at, create_user};
use modelgate_core::{
    Digest, Lineage, ModelFilter, ModelName, NewModel, NewVersion, PageRequest, RiskTier, Role,
    Stage, TagKey, Timestamp, TokenName, Username, VersionFilter, VersionNumber,
};
use modelgate_store::{StoreError, UserUpdate};
use std::collections::BTreeMap;

contract_tests!(
    migrations_are_idempotent,
    users_are_unique_and_carry_roles,
    tokens_are_found_by_hash_and_revocable,
    models_are_unique_and_need_an_existing_owner,
    model_listing_filters_and_pages_in_a_stable_order,
    versions_are_numbered_from_one_and_never_reuse_numbers,
    versions_need_an_uploaded_artifact,
    version_listing_filters_by_stage_and_tag,
    every_change_writes_its_audit_event,
    concurrent_writers_queue_instead_of_failing,
);

fn model_name(text: &str) -> ModelName {
    ModelName::parse(text).unwrap()
}

fn new_model(name: &str, owner: &str, tier: RiskTier) -> NewModel {
    NewModel {
        name: model_name(name),
        owner: Username::parse(owner).unwrap(),
        risk_tier: tier,
        description: format!("{name} description"),
        intended_use: "testing".to_owned(),
        tags: BTreeMap::new(),
    }
}

fn digest_of(byte: u8) -> Digest {
    Digest::from_sha256_bytes([byte; 32])
}

fn new_version(digest: Digest) -> NewVersion {
    NewVersion {
        digest,
        format: "onnx".to_owned(),
        media_type: "application/octet-stream".to_owned(),
        lineage: Lineage {
            code_repository: Some("https://git.example.org/team/repo".to_owned()),
            code_commit: Some("0123abcd".to_owned()),
            training_data_uri: Some("s3://data/train.parquet".to_owned()),
            training_data_digest: Some(digest_of(9)),
            parameters: BTreeMap::from([("max_depth".to_owned(), "6".to_owned())]),
            metadata_json: r#"{"framework":"sklearn"}"#.to_owned(),
        },
        description: "first".to_owned(),
        tags: BTreeMap::new(),
    }
}

async fn migrations_are_idempotent(store: TestStore) {
    assert_eq!(store.migrate().await.unwrap(), 0);
    store.ping().await.unwrap();
}

async fn users_are_unique_and_carry_roles(store: TestStore) {
    let alice = create_user(&store, "alice", &["validator", "compliance"]).await;
    assert_eq!(alice.roles.len(), 2);
    assert!(alice.has_role("validator") && alice.active && !alice.is_admin());
    let duplicate = store
        .create_user(
            &at(2),
            &modelgate_core::NewUser {
                username: alice.username.clone(),
                printed_name: "Other".to_owned(),
                email: None,
                roles: vec![],
                password_hash: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(duplicate, StoreError::AlreadyExists { kind: "user", .. }),
        "{duplicate:?}"
    );

    store
        .update_user(
            &at(3),
            &alice.username,
            &UserUpdate {
                roles: Some(vec![Role::admin()]),
                active: Some(false),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    let updated = store
        .set_password(
            &at(3),
            &alice.username,
            "$argon2id$fake",
            modelgate_store::PasswordChange::AdminReset,
        )
        .await
        .unwrap();
    assert!(updated.is_admin() && !updated.active && updated.has_password);
    assert_eq!(store.get_user(&alice.username).await.unwrap(), updated);
    assert_eq!(
        store.password_hash(&alice.username).await.unwrap(),
        None,
        "inactive users cannot log in"
    );
    assert_eq!(store.count_users().await.unwrap(), 1);
    let missing = store
        .get_user(&Username::parse("nobody").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { kind: "user", .. }));
}

async fn tokens_are_found_by_hash_and_revocable(store: TestStore) {
    let bob = create_user(&store, "bob", &["model_developer"]).await;
    let name = TokenName::parse("ci").unwrap();
    let expiry = Timestamp::from_unix_millis(50_000);
    let token = store
        .create_token(&at(10), &bob, &name, "hash-one", Some(expiry))
        .await
        .unwrap();
    let (found, principal) = store
        .find_token_by_secret_hash("hash-one")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, token);
    assert_eq!(principal.user.username, bob.username);
    assert_eq!(principal.user.roles, bob.roles);
    assert!(found.is_usable_at(Timestamp::from_unix_millis(49_999)));
    assert!(!found.is_usable_at(expiry));
    assert!(
        store
            .find_token_by_secret_hash("hash-two")
            .await
            .unwrap()
            .is_none()
    );

    store
        .touch_token(&token.id, Timestamp::from_unix_millis(20))
        .await
        .unwrap();
    let revoked = store.revoke_token(&at(30), &token.id).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(Timestamp::from_unix_millis(30)));
    assert_eq!(revoked.last_used_at, Some(Timestamp::from_unix_millis(20)));
    assert!(!revoked.is_usable_at(Timestamp::from_unix_millis(31)));
    assert_eq!(
        store.list_tokens(Some(&bob)).await.unwrap(),
        vec![revoked.clone()]
    );
    assert_eq!(store.get_token(&token.id).await.unwrap(), revoked);
    assert!(matches!(
        store
            .revoke_token(&at(40), "tok_missing")
            .await
            .unwrap_err(),
        StoreError::NotFound { kind: "token", .. }
    ));
}

async fn models_are_unique_and_need_an_existing_owner(store: TestStore) {
    let error = store
        .create_model(&at(1), &new_model("credit", "ghost", RiskTier::High))
        .await
        .unwrap_err();
    match error {
        StoreError::Invalid(invalid) => assert_eq!(invalid.field, "owner"),
        other => panic!("expected an invalid owner, got {other:?}"),
    }
    create_user(&store, "carol", &[]).await;
    let mut request = new_model("credit", "carol", RiskTier::High);
    request
        .tags
        .insert(TagKey::parse("team").unwrap(), "risk".to_owned());
    let model = store.create_model(&at(5), &request).await.unwrap();
    assert_eq!(model.name.as_str(), "credit");
    assert_eq!(model.owner.as_str(), "carol");
    assert_eq!(model.risk_tier, RiskTier::High);
    assert_eq!(
        model
            .tags
            .get(&TagKey::parse("team").unwrap())
            .map(String::as_str),
        Some("risk")
    );
    assert_eq!(model.created_by, "system");
    assert_eq!(model.version_count, 0);
    assert_eq!(store.get_model(&model.name).await.unwrap(), model);
    let duplicate = store.create_model(&at(6), &request).await.unwrap_err();
    assert!(matches!(
        duplicate,
        StoreError::AlreadyExists { kind: "model", .. }
    ));
    let missing = store.get_model(&model_name("nope")).await.unwrap_err();
    assert!(matches!(
        missing,
        StoreError::NotFound { kind: "model", .. }
    ));
}

async fn model_listing_filters_and_pages_in_a_stable_order(store: TestStore) {
    create_user(&store, "dora", &[]).await;
    create_user(&store, "emil", &[]).await;
    let tiers = [
        RiskTier::Low,
        RiskTier::Medium,
        RiskTier::High,
        RiskTier::Critical,
    ];
    for index in 0..12 {
        let owner = if index % 2 == 0 { "dora" } else { "emil" };
        let name = format!("fraud-{index:02}");
        let mut request = new_model(&name, owner, tiers[index % 4]);
        if index % 3 == 0 {
            request
                .tags
                .insert(TagKey::parse("domain").unwrap(), "payments".to_owned());
        }
        store
            .create_model(&at(10 + index as i64), &request)
            .await
            .unwrap();
    }
    store
        .create_model(&at(50), &new_model("churn", "dora", RiskTier::Low))
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut page = PageRequest::first(5);
    loop {
        let result = store
            .list_models(&ModelFilter::default(), &page)
            .await
            .unwrap();
        assert!(result.items.len() <= 5);
        seen.extend(result.items.iter().map(|model| model.name.to_string()));
        match result.next_after {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 13);

    let list = |filter: ModelFilter| {
        let store = &store;
        async move {
            store
                .list_models(&filter, &PageRequest::first(100))
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|model| model.name.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(ModelFilter {
            name_prefix: Some("fraud-1".into()),
            ..Default::default()
        })
        .await,
        ["fraud-10", "fraud-11"]
    );
    assert_eq!(
        list(ModelFilter {
            owner: Some(Username::parse("emil").unwrap()),
            ..Default::default()
        })
        .await
        .len(),
        6
    );
    assert_eq!(
        list(ModelFilter {
            risk_tier: Some(RiskTier::Critical),
            ..Default::default()
        })
        .await,
        ["fraud-03", "fraud-07", "fraud-11"]
    );
    assert_eq!(
        list(ModelFilter {
            tag: Some((TagKey::parse("domain").unwrap(), Some("payments".into()))),
            ..Default::default()
        })
        .await,
        ["fraud-00", "fraud-03", "fraud-06", "fraud-09"]
    );
    assert_eq!(
        list(ModelFilter {
            tag: Some((TagKey::parse("domain").unwrap(), Some("other".into()))),
            ..Default::default()
        })
        .await
        .len(),
        0
    );

    store
        .archive_model(&at(60), &model_name("churn"))
        .await
        .unwrap();
    assert_eq!(list(ModelFilter::default()).await.len(), 12);
    assert_eq!(
        list(ModelFilter {
            include_archived: true,
            ..Default::default()
        })
        .await
        .len(),
        13
    );
    let again = store
        .archive_model(&at(61), &model_name("churn"))
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::FailedPrecondition(_)));
}

async fn versions_are_numbered_from_one_and_never_reuse_numbers(store: TestStore) {
    create_user(&store, "fay", &[]).await;
    let name = model_name("scorer");
    store
        .create_model(&at(1), &new_model("scorer", "fay", RiskTier::Medium))
        .await
        .unwrap();
    store
        .record_artifact(&at(2), &digest_of(1), 1234)
        .await
        .unwrap();
    let first = store
        .create_version(&at(3), &name, &new_version(digest_of(1)))
        .await
        .unwrap();
    assert_eq!(first.number, VersionNumber::FIRST);
    assert_eq!(first.stage, Stage::Development);
    assert_eq!(first.size_bytes, 1234);
    assert_eq!(
        first
            .lineage
            .parameters
            .get("max_depth")
            .map(String::as_str),
        Some("6")
    );
    assert_eq!(first.lineage.training_data_digest, Some(digest_of(9)));
    let second = store
        .create_version(&at(4), &name, &new_version(digest_of(1)))
        .await
        .unwrap();
    assert_eq!(second.number.get(), 2);
    store
        .archive_version(&at(5), &name, second.number)
        .await
        .unwrap();
    let third = store
        .create_version(&at(6), &name, &new_version(digest_of(1)))
        .await
        .unwrap();
    assert_eq!(third.number.get(), 3, "archived numbers are not reused");
    assert_eq!(store.get_model(&name).await.unwrap().version_count, 3);
    assert_eq!(
        store.get_version(&name, second.number).await.unwrap().stage,
        Stage::Archived
    );
    let missing = store
        .get_version(&name, VersionNumber::new(9).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(
        missing,
        StoreError::NotFound {
            kind: "version",
            ..
        }
    ));

    let described = store
        .update_version_description(&at(7), &name, first.number, "better words")
        .await
        .unwrap();
    assert_eq!(described.description, "better words");
    assert_eq!(
        described.digest, first.digest,
        "artifact and lineage never change"
    );
    assert_eq!(described.lineage, first.lineage);

    store.archive_model(&at(8), &name).await.unwrap();
    let refused = store
        .create_version(&at(9), &name, &new_version(digest_of(1)))
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::FailedPrecondition(_)));
}

async fn versions_need_an_uploaded_artifact(store: TestStore) {
    create_user(&store, "gus", &[]).await;
    let name = model_name("ranker");
    store
        .create_model(&at(1), &new_model("ranker", "gus", RiskTier::Low))
        .await
        .unwrap();
    let error = store
        .create_version(&at(2), &name, &new_version(digest_of(7)))
        .await
        .unwrap_err();
    match error {
        StoreError::FailedPrecondition(message) => {
            assert!(message.contains("upload it first"), "{message}")
        }
        other => panic!("expected a failed precondition, got {other:?}"),
    }
    assert_eq!(
        store.get_model(&name).await.unwrap().version_count,
        0,
        "nothing changed"
    );
    let (_, created) = store
        .record_artifact(&at(3), &digest_of(7), 10)
        .await
        .unwrap();
    let (record, created_again) = store
        .record_artifact(&at(4), &digest_of(7), 10)
        .await
        .unwrap();
    assert!(created && !created_again);
    assert_eq!(record.created_at, Timestamp::from_unix_millis(3));
    assert_eq!(store.list_artifact_records().await.unwrap(), vec![record]);
    let missing_model = store
        .create_version(&at(5), &model_name("absent"), &new_version(digest_of(7)))
        .await
        .unwrap_err();
    assert!(matches!(
        missing_model,
        StoreError::NotFound { kind: "model", .. }
    ));
}

async fn version_listing_filters_by_stage_and_tag(store: TestStore) {
    create_user(&store, "hal", &[]).await;
    let name = model_name("vision");
    store
        .create_model(&at(1), &new_model("vision", "hal", RiskTier::Low))
        .await
        .unwrap();
    store
        .record_artifact(&at(2), &digest_of(3), 1)
        .await
        .unwrap();
    for index in 1..=7 {
        let mut request = new_version(digest_of(3));
        if index % 2 == 0 {
            request
                .tags
                .insert(TagKey::parse("candidate").unwrap(), "yes".to_owned());
        }
        store
            .create_version(&at(2 + index), &name, &request)
            .await
            .unwrap();
    }
    store
        .archive_version(&at(20), &name, VersionNumber::new(1).unwrap())
        .await
        .unwrap();
    let page = store
        .list_versions(&name, &VersionFilter::default(), &PageRequest::first(3))
        .await
        .unwrap();
    assert_eq!(
        page.items
            .iter()
            .map(|v| v.number.get())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(page.next_after, Some(VersionNumber::new(3).unwrap()));
    let rest = store
        .list_versions(
            &name,
            &VersionFilter::default(),
            &PageRequest {
                after: page.next_after,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rest.items
            .iter()
            .map(|v| v.number.get())
            .collect::<Vec<_>>(),
        [4, 5, 6, 7]
    );
    assert_eq!(rest.next_after, None);
    let tagged = store
        .list_versions(
            &name,
            &VersionFilter {
                tag: Some((TagKey::parse("candidate").unwrap(), None)),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(
        tagged
            .items
            .iter()
            .map(|v| v.number.get())
            .collect::<Vec<_>>(),
        [2, 4, 6]
    );
    let archived = store
        .list_versions(
            &name,
            &VersionFilter {
                stage: Some(Stage::Archived),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(archived.items.len(), 1);
    let by_stage = store
        .list_models(
            &ModelFilter {
                stage: Some(Stage::Archived),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(by_stage.items.len(), 1);
    let missing = store
        .list_versions(
            &model_name("none"),
            &VersionFilter::default(),
            &PageRequest::first(10),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        missing,
        StoreError::NotFound { kind: "model", .. }
    ));
}

async fn every_change_writes_its_audit_event(store: TestStore) {
    let ivy = create_user(&store, "ivy", &[]).await;
    let name = model_name("audited");
    store
        .create_model(
            &as_user(&ivy, 1),
            &new_model("audited", "ivy", RiskTier::Low),
        )
        .await
        .unwrap();
    let key = TagKey::parse("k").unwrap();
    store
        .set_model_tag(&as_user(&ivy, 2), &name, &key, "v1")
        .await
        .unwrap();
    store
        .set_model_tag(&as_user(&ivy, 3), &name, &key, "v2")
        .await
        .unwrap();
    store
        .delete_model_tag(&as_user(&ivy, 4), &name, &key)
        .await
        .unwrap();
    let missing_tag = store
        .delete_model_tag(&as_user(&ivy, 5), &name, &key)
        .await
        .unwrap_err();
    assert!(matches!(
        missing_tag,
        StoreError::NotFound { kind: "tag", .. }
    ));
    store.archive_model(&as_user(&ivy, 6), &name).await.unwrap();
    assert_eq!(
        store.audit_actions_for("model/audited").await.unwrap(),
        [
            "model.create",
            "model.tag.set",
            "model.tag.set",
            "model.tag.delete",
            "model.archive"
        ],
        "one event per change, none for the refused deletion"
    );
    assert_eq!(
        store.audit_actions_for("user/ivy").await.unwrap(),
        ["user.create"]
    );
}

async fn concurrent_writers_queue_instead_of_failing(store: TestStore) {
    create_user(&store, "jo", &[]).await;
    let name = model_name("busy");
    store
        .create_model(&at(1), &new_model("busy", "jo", RiskTier::Low))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let store = store.store.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..25 {
                let key = TagKey::parse(&format!("writer-{writer}")).unwrap();
                store
                    .set_model_tag(&at(100 + round), &name, &key, &round.to_string())
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let model = store.get_model(&name).await.unwrap();
    assert_eq!(model.tags.len(), 8);
    assert!(model.tags.values().all(|value| value == "24"));
    assert_eq!(
        store.audit_actions_for("model/busy").await.unwrap().len(),
        201
    );
}
