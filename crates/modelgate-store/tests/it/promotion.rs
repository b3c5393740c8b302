//! Promotion in the store, on both backends: auto-approval, separation of duties inside the transaction,
//! single occupancy, racing approvals, rejection, evidence binding and suspension.

use crate::contract_tests;
use crate::support::{TestStore, as_user, at, create_user};
use modelgate_core::promotion::{
    GateTerms, NewReview, Refusal, RequestKind, RequestState, ReviewDecision, RoleQuota,
    SeparationRules,
};
use modelgate_core::{
    Digest, Lineage, ModelName, NewModel, NewVersion, RiskTier, Role, Stage, User, Username,
    VersionNumber,
};
use std::collections::BTreeMap;

contract_tests!(
    a_gate_without_sign_offs_approves_at_once,
    sign_offs_follow_separation_of_duties_and_then_promote,
    single_occupancy_archives_the_previous_version,
    racing_final_approvals_promote_exactly_once,
    rejection_and_withdrawal_close_requests,
    approvals_count_only_for_the_evidence_they_saw,
    suspension_is_recorded_and_visible_to_the_gate,
    a_decision_on_changed_evidence_is_a_conflict,
    a_suspension_blocks_promotion_and_is_kept,
    approvals_of_people_who_lost_the_role_stop_counting,
    a_decision_after_a_tag_change_is_a_conflict,
    a_policy_judged_on_stale_approvals_is_not_applied,
    the_review_queue_follows_every_write,
    scan_reports_are_evidence_of_the_versions_on_the_artifact,
);

fn terms(signoffs: &[(&str, u32)], checks_pass: bool, single_occupancy: bool) -> GateTerms {
    GateTerms {
        from_stage: Stage::Development,
        signoffs: signoffs
            .iter()
            .map(|(role, count)| RoleQuota {
                role: Role::parse(role).unwrap(),
                count: *count,
            })
            .collect(),
        rules: SeparationRules::default(),
        checks_pass,
        valid_for_days: 90,
        single_occupancy,
        rollback_without_signoffs: false,
        policy_revision: 0,
        policy_digest: "sha256:policy".to_owned(),
        evidence_revision: 0,
        evidence_digest: "sha256:evidence-1".to_owned(),
    }
}

/// Opens the request to move version 1 of `name` into staging, as `dev` at `time`.
async fn open_staging(
    store: &TestStore,
    dev: &User,
    name: &ModelName,
    gate: &GateTerms,
    time: i64,
) -> Result<modelgate_core::promotion::PromotionRequest, Refusal> {
    store
        .open_request(
            &as_user(dev, time),
            dev,
            name,
            v(1),
            Stage::Staging,
            RequestKind::Promotion,
            "ready",
            gate,
        )
        .await
        .unwrap()
}

/// The text of a refusal, whichever kind.
fn refusal_text(refusal: &Refusal) -> &str {
    match refusal {
        Refusal::Denied(denied) => &denied.0,
        Refusal::Conflict(text) => text,
    }
}

/// A model `scorer` owned by `owner` with `versions` versions registered by `dev`.
pub(crate) async fn setup(store: &TestStore, versions: u32) -> (User, User, ModelName) {
    let owner = create_user(store, "owner", &[]).await;
    let dev = create_user(store, "dev", &["model_developer"]).await;
    let name = ModelName::parse("scorer").unwrap();
    store
        .create_model(
            &as_user(&dev, 1),
            &NewModel {
                name: name.clone(),
                owner: Username::parse("owner").unwrap(),
                risk_tier: RiskTier::High,
                description: String::new(),
                intended_use: String::new(),
                tags: BTreeMap::new(),
            },
        )
        .await
        .unwrap();
    for index in 0..versions {
        let digest = Digest::from_sha256_bytes([index as u8 + 1; 32]);
        store.record_artifact(&at(2), &digest, 10).await.unwrap();
        store
            .create_version(
                &as_user(&dev, 3),
                &name,
                &NewVersion {
                    digest,
                    format: "onnx".to_owned(),
                    media_type: "application/octet-stream".to_owned(),
                    lineage: Lineage {
                        metadata_json: "{}".to_owned(),
                        ..Lineage::default()
                    },
                    description: String::new(),
                    tags: BTreeMap::new(),
                },
            )
            .await
            .unwrap();
    }
    (owner, dev, name)
}

fn approve(role: &str) -> NewReview {
    NewReview {
        role: Role::parse(role).unwrap(),
        decision: ReviewDecision::Approve,
        comment: "looks right".to_owned(),
        meaning: Some(format!("approved as {role}")),
        signed_record: Some("{}".to_owned()),
        signature: Some("c2ln".to_owned()),
    }
}

fn v(number: i64) -> VersionNumber {
    VersionNumber::new(number).unwrap()
}

async fn a_gate_without_sign_offs_approves_at_once(store: TestStore) {
    let (_, dev, name) = setup(&store, 1).await;
    let gate = terms(&[], true, false);
    let request = store
        .open_request(
            &as_user(&dev, 10),
            &dev,
            &name,
            v(1),
            Stage::Staging,
            RequestKind::Promotion,
            "ready",
            &gate,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.state, RequestState::Approved);
    let version = store.get_version(&name, v(1)).await.unwrap();
    assert_eq!(version.stage, Stage::Staging);
    let approval = version.approval.unwrap();
    assert_eq!(
        approval.not_after.unix_millis() - approval.approved_at.unix_millis(),
        90 * 86_400_000
    );
    // Checks that fail keep the request open (the terms are computed on the version, now in staging).
    let failing = GateTerms {
        from_stage: Stage::Staging,
        ..terms(&[], false, false)
    };
    let request = store
        .open_request(
            &as_user(&dev, 11),
            &dev,
            &name,
            v(1),
            Stage::Production,
            RequestKind::Promotion,
            "go",
            &failing,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.state, RequestState::Open);
    let duplicate = store
        .open_request(
            &as_user(&dev, 12),
            &dev,
            &name,
            v(1),
            Stage::Production,
            RequestKind::Promotion,
            "again",
            &failing,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(duplicate, modelgate_store::StoreError::AlreadyExists { .. }),
        "{duplicate:?}"
    );
}

async fn sign_offs_follow_separation_of_duties_and_then_promote(store: TestStore) {
    let (owner, dev, name) = setup(&store, 1).await;
    let validator = create_user(&store, "val", &["validator"]).await;
    let dev_validator = {
        store
            .update_user(
                &at(5),
                &dev.username,
                &modelgate_store::UserUpdate {
                    roles: Some(vec![Role::parse("validator").unwrap()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    };
    let gate = terms(&[("validator", 1)], true, false);
    let request = store
        .open_request(
            &as_user(&dev, 10),
            &dev_validator,
            &name,
            v(1),
            Stage::Staging,
            RequestKind::Promotion,
            "ready",
            &gate,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.state, RequestState::Open);
    let refused = store
        .review_request(
            &as_user(&dev, 11),
            request.id,
            &dev_validator,
            &approve("validator"),
            &gate,
        )
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        refusal_text(&refused).contains("separation of duties"),
        "{}",
        refusal_text(&refused)
    );
    let refused = store
        .review_request(
            &as_user(&owner, 11),
            request.id,
            &owner,
            &approve("validator"),
            &gate,
        )
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        refusal_text(&refused).contains("does not hold"),
        "{}",
        refusal_text(&refused)
    );
    assert_eq!(
        store.get_request(request.id).await.unwrap().reviews.len(),
        0,
        "refusals write nothing"
    );
    let (approved, review) = store
        .review_request(
            &as_user(&validator, 12),
            request.id,
            &validator,
            &approve("validator"),
            &gate,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(approved.state, RequestState::Approved);
    assert_eq!(review.printed_name, "val Example");
    assert_eq!(
        store.get_version(&name, v(1)).await.unwrap().stage,
        Stage::Staging
    );
    let after = store
        .review_request(
            &as_user(&validator, 13),
            request.id,
            &validator,
            &approve("validator"),
            &gate,
        )
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&after, Refusal::Conflict(text) if text.contains("only open requests")),
        "{after:?}"
    );
    let actions = store
        .audit_actions_for(&format!("request/{}", request.id))
        .await
        .unwrap();
    assert_eq!(
        actions,
        ["request.open", "review.approve", "request.approve"]
    );
    assert_eq!(
        store
            .audit_actions_for("model/scorer/version/1")
            .await
            .unwrap()
            .last()
            .map(String::as_str),
        Some("version.promote")
    );
}

async fn single_occupancy_archives_the_previous_version(store: TestStore) {
    let (_, dev, name) = setup(&store, 2).await;
    let gate = terms(&[], true, true);
    for number in [1, 2] {
        let request = store
            .open_request(
                &as_user(&dev, 10),
                &dev,
                &name,
                v(number),
                Stage::Staging,
                RequestKind::Promotion,
                "x",
                &gate,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(request.state, RequestState::Approved);
    }
    assert_eq!(
        store.get_version(&name, v(1)).await.unwrap().stage,
        Stage::Archived
    );
    assert_eq!(
        store.get_version(&name, v(2)).await.unwrap().stage,
        Stage::Staging
    );
    let occupants = store.stage_occupants(&name, Stage::Staging).await.unwrap();
    assert_eq!(occupants.len(), 1);
    assert_eq!(occupants[0].version, v(2));
}

async fn racing_final_approvals_promote_exactly_once(store: TestStore) {
    let (_, dev, name) = setup(&store, 1).await;
    let first = create_user(&store, "val1", &["validator"]).await;
    let second = create_user(&store, "val2", &["validator"]).await;
    let gate = terms(&[("validator", 1)], true, true);
    let request = store
        .open_request(
            &as_user(&dev, 10),
            &dev,
            &name,
            v(1),
            Stage::Staging,
            RequestKind::Promotion,
            "x",
            &gate,
        )
        .await
        .unwrap()
        .unwrap();
    let tasks: Vec<_> = [first, second]
        .into_iter()
        .map(|reviewer| {
            let store = store.store.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                store
                    .review_request(
                        &as_user(&reviewer, 20),
                        request.id,
                        &reviewer,
                        &approve("validator"),
                        &gate,
                    )
                    .await
            })
        })
        .collect();
    let mut promoted = 0;
    for task in tasks {
        if let Ok(Ok((request, _))) = task.await.unwrap() {
            assert_eq!(request.state, RequestState::Approved);
            promoted += 1;
        }
    }
    assert_eq!(promoted, 1, "exactly one approval wins");
    let promotions = store
        .audit_actions_for("model/scorer/version/1")
        .await
        .unwrap()
        .into_iter()
        .filter(|action| action == "version.promote")
        .count();
    assert_eq!(promotions, 1);
}

async fn rejection_and_withdrawal_close_requests(store: TestStore) {
    let (_, dev, name) = setup(&store, 1).await;
    let validator = create_user(&store, "val", &["validator"]).await;
    let gate = terms(&[("validator", 1)], true, false);
    let request = store
        .open_request(
            &as_user(&dev, 10),
            &dev,
            &name,
            v(1),
            Stage::Staging,
            RequestKind::Promotion,
            "x",
            &gate,
        )
        .await
        .unwrap()
        .unwrap();
    let reject = NewReview {
        decision: ReviewDecision::Reject,
        comment: "AUC too low".to_owned(),
        meaning: None,
        signed_record: None,
        signature: None,
        ..approve("validator")
    };
    let (rejected, _) = store
        .review_request(
            &as_user(&validator, 11),
            request.id,
            &validator,
            &reject,
            &gate,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rejected.state, RequestState::Rejected);
    assert_eq!(rejected.decision_reason.as_deref(), Some("AUC too low"));
    assert_eq!(
        store.get_version(&name, v(1)).await.unwrap().stage,
        Stage::Development
    );
    let reopened = store
        .open_request(
            &as_user(&dev, 12),
            &dev,
            &name,
            v(1),
            Stage::Staging,
            RequestKind::Promotion,
            "fixed",
            &gate,
        )
        .await
        .unwrap()
        .unwrap();
    store
        .comment_request(
            &as_user(&validator, 13),
            reopened.id,
            &validator,
            "please attach the holdout",
        )
        .await
        .unwrap();
    let withdrawn = store
        .withdraw_request(&as_user(&dev, 14), reopened.id, "withdrawn by requester")
        .await
        .unwrap();
    assert_eq!(withdrawn.state, RequestState::Withdrawn);
    let detail = store.get_request(reopened.id).await.unwrap();
    assert_eq!(detail.comments.len(), 1);
    assert_eq!(detail.comments[0].author.as_str(), "val");
    let open = store
        .list_requests(&modelgate_store::RequestFilter {
            state: Some(RequestState::Open),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(open.is_empty());
    let all = store
        .list_requests(&modelgate_store::RequestFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
}

async fn approvals_count_only_for_the_evidence_they_saw(store: TestStore) {
    let (_, dev, name) = setup(&store, 1).await;
    let first = create_user(&store, "val1", &["validator"]).await;
    let board = create_user(&store, "rb", &["risk_board"]).await;
    let gate = terms(&[("validator", 1), ("risk_board", 1)], true, false);
    let request = store
        .open_request(
            &as_user(&dev, 10),
            &dev,
            &name,
            v(1),
            Stage::Staging,
            RequestKind::Promotion,
            "x",
            &gate,
        )
        .await
        .unwrap()
        .unwrap();
    store
        .review_request(
            &as_user(&first, 11),
            request.id,
            &first,
            &approve("validator"),
            &gate,
        )
        .await
        .unwrap()
        .unwrap();
    // New evidence: the validator's sign-off no longer counts, so the board's does not complete the gate.
    let changed = GateTerms {
        evidence_digest: "sha256:evidence-2".to_owned(),
        ..gate.clone()
    };
    let (still_open, _) = store
        .review_request(
            &as_user(&board, 12),
            request.id,
            &board,
            &approve("risk_board"),
            &changed,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still_open.state, RequestState::Open);
    let (approved, _) = store
        .review_request(
            &as_user(&first, 13),
            request.id,
            &first,
            &approve("validator"),
            &changed,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(approved.state, RequestState::Approved);
}

async fn suspension_is_recorded_and_visible_to_the_gate(store: TestStore) {
    let (_, dev, name) = setup(&store, 1).await;
    store
        .open_request(
            &as_user(&dev, 10),
            &dev,
            &name,
            v(1),
            Stage::Staging,
            RequestKind::Promotion,
            "x",
            &terms(&[], true, true),
        )
        .await
        .unwrap()
        .unwrap();
    let suspended = store
        .set_suspension(&at(20), &name, v(1), Some("drift above limit"))
        .await
        .unwrap();
    assert_eq!(suspended.suspension.as_deref(), Some("drift above limit"));
    let occupants = store.stage_occupants(&name, Stage::Staging).await.unwrap();
    assert_eq!(occupants[0].suspended.as_deref(), Some("drift above limit"));
    assert!(
        store
            .set_suspension(&at(21), &name, v(1), Some("again"))
            .await
            .is_err()
    );
    let reinstated = store
        .set_suspension(&at(22), &name, v(1), None)
        .await
        .unwrap();
    assert_eq!(reinstated.suspension, None);
    let actions = store
        .audit_actions_for("model/scorer/version/1")
        .await
        .unwrap();
    assert!(actions.ends_with(&["version.suspend".to_owned(), "version.reinstate".to_owned()]));
}

/// A decision prepared at one evidence revision is not applied at another: a card revision that commits
/// between the reviewer's reading of the evidence and the approval makes the approval a conflict that
/// names the change, and nothing is written.
async fn a_decision_on_changed_evidence_is_a_conflict(store: TestStore) {
    let (_, dev, name) = setup(&store, 1).await;
    let validator = create_user(&store, "val", &["validator"]).await;
    let gate = terms(&[("validator", 1)], true, false);
    let request = open_staging(&store, &dev, &name, &gate, 10).await.unwrap();
    let revision_before = store
        .get_version(&name, v(1))
        .await
        .unwrap()
        .evidence_revision;
    store
        .set_card(
            &as_user(&dev, 11),
            &name,
            v(1),
            "sha256:card",
            "{}",
            None,
            &[Stage::Production],
        )
        .await
        .unwrap();
    let changed = store.get_version(&name, v(1)).await.unwrap();
    assert_eq!(changed.evidence_revision, revision_before + 1);
    assert_eq!(
        changed.last_evidence_change.as_deref(),
        Some("card revision 1")
    );
    let (events_before, _) = store.audit_tree_head().await.unwrap();
    let refused = store
        .review_request(
            &as_user(&validator, 12),
            request.id,
            &validator,
            &approve("validator"),
            &gate,
        )
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&refused, Refusal::Conflict(text) if text.contains("card revision 1")),
        "{refused:?}"
    );
    assert_eq!(store.audit_tree_head().await.unwrap().0, events_before);
    assert_eq!(
        store.get_version(&name, v(1)).await.unwrap().stage,
        Stage::Development
    );
    // Terms computed on the new revision go through.
    let fresh = GateTerms {
        evidence_revision: changed.evidence_revision,
        ..gate
    };
    let (approved, _) = store
        .review_request(
            &as_user(&validator, 13),
            request.id,
            &validator,
            &approve("validator"),
            &fresh,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(approved.state, RequestState::Approved);
}

/// A suspended version is not promoted, even when a gate without sign-offs would approve at once, and the
/// suspension stays until reinstatement.
async fn a_suspension_blocks_promotion_and_is_kept(store: TestStore) {
    let (_, dev, name) = setup(&store, 1).await;
    let gate = terms(&[], true, false);
    store
        .set_suspension(&as_user(&dev, 9), &name, v(1), Some("drift"))
        .await
        .unwrap();
    let refused = open_staging(&store, &dev, &name, &gate, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Refusal::Conflict(text) if text.contains("suspended (drift)")),
        "{refused:?}"
    );
    let version = store.get_version(&name, v(1)).await.unwrap();
    assert_eq!(version.stage, Stage::Development);
    assert_eq!(version.suspension.as_deref(), Some("drift"));
}

/// An approval counts only while its giver could still give it: one whose role was taken away after they
/// approved no longer completes the gate.
async fn approvals_of_people_who_lost_the_role_stop_counting(store: TestStore) {
    let (_, dev, name) = setup(&store, 1).await;
    let first = create_user(&store, "val1", &["validator"]).await;
    let second = create_user(&store, "val2", &["validator"]).await;
    let gate = terms(&[("validator", 2)], true, false);
    let request = open_staging(&store, &dev, &name, &gate, 10).await.unwrap();
    store
        .review_request(
            &as_user(&first, 11),
            request.id,
            &first,
            &approve("validator"),
            &gate,
        )
        .await
        .unwrap()
        .unwrap();
    store
        .update_user(
            &at(12),
            &first.username,
            &modelgate_store::UserUpdate {
                roles: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (still_open, _) = store
        .review_request(
            &as_user(&second, 13),
            request.id,
            &second,
            &approve("validator"),
            &gate,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        still_open.state,
        RequestState::Open,
        "val1 no longer holds validator, so only one approval counts"
    );
}

/// The checks read the model's and the version's facts (tier, owner, tags) too: changing them between the
/// reading of the evidence and the approval is a conflict like a card edit.
async fn a_decision_after_a_tag_change_is_a_conflict(store: TestStore) {
    let (_, dev, name) = setup(&store, 1).await;
    let validator = create_user(&store, "val", &["validator"]).await;
    let gate = terms(&[("validator", 1)], true, false);
    let request = open_staging(&store, &dev, &name, &gate, 10).await.unwrap();
    store
        .set_version_tag(
            &as_user(&dev, 11),
            &name,
            v(1),
            &modelgate_core::TagKey::parse("reviewed").unwrap(),
            "no",
        )
        .await
        .unwrap();
    let refused = store
        .review_request(
            &as_user(&validator, 12),
            request.id,
            &validator,
            &approve("validator"),
            &gate,
        )
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&refused, Refusal::Conflict(text) if text.contains("version.tag.set")),
        "{refused:?}"
    );
}

/// A policy's consequences are worked out on the approvals as they were read; when one changed before the
/// policy is applied (here: a new approval landed), nothing is applied.
async fn a_policy_judged_on_stale_approvals_is_not_applied(store: TestStore) {
    let (_, dev, name) = setup(&store, 1).await;
    let judged = store.held_approvals().await.unwrap();
    assert!(judged.is_empty());
    open_staging(&store, &dev, &name, &terms(&[], true, false), 10)
        .await
        .unwrap();
    let refused = store
        .apply_policy(&at(11), "sha256:new", "version = 1", &[], &judged)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, modelgate_store::StoreError::Conflict(_)),
        "{refused:?}"
    );
    assert!(
        store.policy_in_force().await.unwrap().is_none(),
        "nothing was applied"
    );
    let judged = store.held_approvals().await.unwrap();
    store
        .apply_policy(&at(12), "sha256:new", "version = 1", &[], &judged)
        .await
        .unwrap();
}

/// The queue every inbox reads is kept in memory (SQLite: until the next commit; PostgreSQL: until the
/// write generation moves), so each write that changes it must show at the next read.
async fn the_review_queue_follows_every_write(store: TestStore) {
    let (_, dev, name) = setup(&store, 1).await;
    let validator = create_user(&store, "val", &["validator"]).await;
    assert!(store.review_queue().await.unwrap().is_empty());
    let gate = terms(&[("validator", 2)], true, false);
    let request = open_staging(&store, &dev, &name, &gate, 10).await.unwrap();
    let queue = store.review_queue().await.unwrap();
    assert_eq!(queue.len(), 1);
    assert!(queue[0].approvals.is_empty());
    assert!(
        std::sync::Arc::ptr_eq(&queue, &store.review_queue().await.unwrap()),
        "an unchanged queue is read once"
    );
    store
        .review_request(
            &as_user(&validator, 11),
            request.id,
            &validator,
            &approve("validator"),
            &gate,
        )
        .await
        .unwrap()
        .unwrap();
    let queue = store.review_queue().await.unwrap();
    assert_eq!(queue[0].approvals.len(), 1, "the approval shows at once");
    store
        .update_user(
            &at(12),
            &validator.username,
            &modelgate_store::UserUpdate {
                roles: Some(Vec::new()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        store.review_queue().await.unwrap()[0].approvals.is_empty(),
        "an approval by someone who lost the role stops counting at once"
    );
    store
        .withdraw_request(&as_user(&dev, 13), request.id, "not yet")
        .await
        .unwrap();
    assert!(store.review_queue().await.unwrap().is_empty());
}

/// Replicas on one PostgreSQL database each keep the queue; a write through one shows in the others.
#[tokio::test]
async fn replicas_see_each_others_writes_in_the_review_queue() {
    let Some(url) = crate::support::postgres_url() else {
        return;
    };
    let first = crate::support::postgres_store(&url).await;
    let second = modelgate_store::Store::open(&first.url).await.unwrap();
    let (_, dev, name) = setup(&first, 1).await;
    assert!(second.review_queue().await.unwrap().is_empty());
    let gate = terms(&[("validator", 1)], true, false);
    let request = open_staging(&first, &dev, &name, &gate, 10).await.unwrap();
    let seen = second.review_queue().await.unwrap();
    assert_eq!(
        seen.iter()
            .map(|queued| queued.request.id)
            .collect::<Vec<_>>(),
        [request.id],
        "the other replica reads the new request"
    );
    first
        .withdraw_request(&as_user(&dev, 11), request.id, "not yet")
        .await
        .unwrap();
    assert!(second.review_queue().await.unwrap().is_empty());
}

fn scan(verdict: &str, report: &str) -> modelgate_store::NewScan {
    modelgate_store::NewScan {
        artifact_digest: Digest::from_sha256_bytes([1; 32]),
        engine: "engine-1".to_owned(),
        engine_rank: 1,
        verdict: verdict.to_owned(),
        report_json: report.to_owned(),
        report_digest: format!("sha256:{report}"),
    }
}

/// A scan report is evidence of every version on its artifact: a new or changed report bumps their
/// evidence revision (decisions prepared before are conflicts), the same report twice writes once, and a
/// changed verdict flags an approval in force; the sweeper's query finds what this engine has not scanned.
async fn scan_reports_are_evidence_of_the_versions_on_the_artifact(store: TestStore) {
    use modelgate_store::ScanRecorded;
    let (_, dev, name) = setup(&store, 1).await;
    let digest = Digest::from_sha256_bytes([1; 32]);
    assert_eq!(
        store
            .artifacts_to_scan("engine-1", 1, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let revision = |store: &TestStore| {
        let store = store.store.clone();
        let name = name.clone();
        async move { store.get_version(&name, v(1)).await.unwrap() }
    };
    let start = revision(&store).await.evidence_revision;
    assert_eq!(
        store
            .record_scan(&at(5), &scan("clean", "a"))
            .await
            .unwrap(),
        ScanRecorded::New
    );
    assert_eq!(revision(&store).await.evidence_revision, start + 1);
    assert_eq!(
        store
            .record_scan(&at(6), &scan("clean", "a"))
            .await
            .unwrap(),
        ScanRecorded::Unchanged
    );
    assert_eq!(
        revision(&store).await.evidence_revision,
        start + 1,
        "nothing written"
    );
    assert!(
        store
            .artifacts_to_scan("engine-1", 1, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .artifacts_to_scan("engine-2", 2, None, 10)
            .await
            .unwrap()[0]
            .digest,
        digest,
        "a report by other rules is scanned again"
    );
    assert!(
        store
            .artifacts_to_scan("engine-2", 2, Some(&digest), 10)
            .await
            .unwrap()
            .is_empty(),
        "the cursor moves past it"
    );
    let on_record = store.scan_of(&digest).await.unwrap().unwrap();
    assert_eq!(
        (on_record.verdict.as_str(), on_record.report_json.as_str()),
        ("clean", "a")
    );

    // Terms worked out before the scan are stale; on the current evidence the version is approved for
    // staging (no sign-offs). Then a rescan with the same verdict: no flag.
    let mut gate = terms(&[], true, false);
    let stale = open_staging(&store, &dev, &name, &gate, 10)
        .await
        .unwrap_err();
    assert!(refusal_text(&stale).contains("artifact.scan"), "{stale:?}");
    gate.evidence_revision = revision(&store).await.evidence_revision;
    open_staging(&store, &dev, &name, &gate, 10).await.unwrap();
    assert_eq!(
        store
            .record_scan(&at(11), &scan("clean", "b"))
            .await
            .unwrap(),
        ScanRecorded::Replaced
    );
    assert_eq!(revision(&store).await.evidence_changed_after_approval, None);
    // New rules find something: the approval in force is flagged.
    store
        .record_scan(&at(12), &scan("dangerous", "c"))
        .await
        .unwrap();
    let version = revision(&store).await;
    assert_eq!(
        version.evidence_changed_after_approval.as_deref(),
        Some("artifact.scan")
    );
    assert_eq!(
        store
            .audit_actions_for(&format!("artifact/{digest}"))
            .await
            .unwrap(),
        [
            "artifact.store",
            "artifact.scan",
            "artifact.scan",
            "artifact.scan"
        ]
    );

    // A rolling upgrade: a newer engine's report is on record; an older replica's scan changes nothing,
    // and that replica's sweeper does not pick the artifact up again.
    let newer = modelgate_store::NewScan {
        engine: "engine-3".to_owned(),
        engine_rank: 3,
        ..scan("suspicious", "d")
    };
    assert_eq!(
        store.record_scan(&at(13), &newer).await.unwrap(),
        ScanRecorded::Replaced
    );
    assert_eq!(
        store
            .record_scan(&at(14), &scan("clean", "e"))
            .await
            .unwrap(),
        ScanRecorded::KeptNewer
    );
    let on_record = store.scan_of(&digest).await.unwrap().unwrap();
    assert_eq!(
        (
            on_record.engine.as_str(),
            on_record.engine_rank,
            on_record.report_json.as_str()
        ),
        ("engine-3", 3, "d")
    );
    assert!(
        store
            .artifacts_to_scan("engine-1", 1, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "an older engine leaves a newer engine's report alone"
    );
    assert_eq!(
        store
            .audit_actions_for(&format!("artifact/{digest}"))
            .await
            .unwrap()
            .len(),
        5,
        "the refused downgrade wrote no event"
    );
}
