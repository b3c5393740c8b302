//! The trust core's promises over HTTP, each a hole found when modelgate was attacked: a request on an
//! archived version, promotion of a suspended version, the gate for stages no promotion reached, a
//! rollback renewing its approval, evidence edited after approval, an admin or a former owner signing,
//! and decisions that do not name their policy.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const PASSWORD: &str = "a long enough password";
const DAY_MILLIS: i64 = 86_400_000;

fn approve(role: &str) -> Value {
    json!({ "decision": "approve", "role": role, "password": PASSWORD })
}

async fn open(app: &TestApp, token: &str, model: &str, version: u32, stage: &str) -> Response {
    call(
        app,
        Method::POST,
        "/api/v1/requests",
        token,
        Some(
            json!({ "model": model, "version": version, "stage": stage, "justification": "ready" }),
        ),
    )
    .await
}

type Response = reqwest::Response;

/// An error response's status, code and message (the shape is checked by `error_of`).
async fn failure(response: Response) -> (StatusCode, String, String) {
    let (status, code, body) = error_of(response).await;
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code, message)
}

async fn json_of(response: Response) -> Value {
    response.json().await.unwrap()
}

async fn gate(app: &TestApp, model: &str, stage: &str, digest: &str) -> Value {
    call_json(
        app,
        Method::GET,
        &format!("/api/v1/gate?model={model}&stage={stage}&digest={digest}"),
        &app.admin_token,
        None,
    )
    .await
}

/// The actions of the audit events a query selects, oldest first.
async fn audit_actions(app: &TestApp, query: &str) -> Vec<String> {
    let events = call_json(
        app,
        Method::GET,
        &format!("/api/v1/audit/events?{query}"),
        &app.admin_token,
        None,
    )
    .await;
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn version(app: &TestApp, model: &str, number: u32) -> Value {
    call_json(
        app,
        Method::GET,
        &format!("/api/v1/models/{model}/versions/{number}"),
        &app.admin_token,
        None,
    )
    .await
}

/// The low tier's production gate with its checks made to pass, so versions reach production on their own.
async fn low_production_without_checks(app: &TestApp) {
    app.edit_policy(
        r#"{ name = "card_complete", expr = "card.complete""#,
        r#"{ name = "card_complete", expr = "true""#,
    )
    .await;
    app.edit_policy(
        r#"{ name = "verified_evaluation", expr = "evaluations.verified_count >= 1""#,
        r#"{ name = "verified_evaluation", expr = "true""#,
    )
    .await;
}

/// Pushes a version of a low-risk model and moves it to `production` (through staging).
async fn to_production(app: &TestApp, token: &str, model: &str, number: u32) {
    app.push_version(token, model, payload(100 + number as usize))
        .await;
    for stage in ["staging", "production"] {
        let opened = json_of(open(app, token, model, number, stage).await).await;
        assert_eq!(opened["state"], "approved", "{opened}");
    }
}

#[tokio::test]
async fn archiving_withdraws_open_requests_and_a_stale_approval_is_refused() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let validator = app.user_with_token("val", &["validator"]).await;
    for model in ["by-version", "by-model"] {
        app.create_model(&developer, model, "medium").await;
        app.push_version(&developer, model, payload(10)).await;
    }
    let first = json_of(open(&app, &developer, "by-version", 1, "staging").await).await;
    let second = json_of(open(&app, &developer, "by-model", 1, "staging").await).await;
    assert_eq!(first["state"], "open");
    let archived = call(
        &app,
        Method::POST,
        "/api/v1/models/by-version/versions/1/archive",
        &developer,
        None,
    )
    .await;
    assert_eq!(archived.status(), StatusCode::OK);
    let archived = call(
        &app,
        Method::POST,
        "/api/v1/models/by-model/archive",
        &app.admin_token,
        None,
    )
    .await;
    assert_eq!(archived.status(), StatusCode::OK);
    for request in [&first, &second] {
        let id = request["id"].as_i64().unwrap();
        let shown = call_json(
            &app,
            Method::GET,
            &format!("/api/v1/requests/{id}"),
            &validator,
            None,
        )
        .await;
        assert_eq!(shown["state"], "withdrawn", "{shown}");
        assert!(
            shown["decision_reason"]
                .as_str()
                .unwrap()
                .contains("archived")
        );
        let (status, code, _) = failure(
            call(
                &app,
                Method::POST,
                &format!("/api/v1/requests/{id}/reviews"),
                &validator,
                Some(approve("validator")),
            )
            .await,
        )
        .await;
        assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    }
    assert_eq!(version(&app, "by-version", 1).await["stage"], "archived");
    let actions = audit_actions(&app, &format!("target=request/{}", first["id"])).await;
    assert_eq!(actions, ["request.open", "request.withdraw"]);
    // Opening a request for an archived version is refused too.
    let (status, _, _) = failure(open(&app, &developer, "by-version", 1, "staging").await).await;
    assert!(status.is_client_error(), "{status}");
}

#[tokio::test]
async fn a_suspended_version_is_not_promoted_and_stays_suspended() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let officer = app.user_with_token("rita", &["risk_officer"]).await;
    low_production_without_checks(&app).await;
    app.create_model(&developer, "churn", "low").await;
    let pushed = app.push_version(&developer, "churn", payload(10)).await;
    let digest = pushed["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        json_of(open(&app, &developer, "churn", 1, "staging").await).await["state"],
        "approved"
    );
    let suspended = call(
        &app,
        Method::POST,
        "/api/v1/models/churn/versions/1/suspend",
        &officer,
        Some(json!({ "reason": "drift above limit" })),
    )
    .await;
    assert_eq!(suspended.status(), StatusCode::OK);
    // Low risk would auto-approve production; a suspended version is refused instead.
    let (status, code, message) =
        failure(open(&app, &developer, "churn", 1, "production").await).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    assert!(message.contains("suspended"), "{message}");
    let shown = version(&app, "churn", 1).await;
    assert_eq!(shown["stage"], "staging");
    assert_eq!(shown["approval"]["suspension"], "drift above limit");
    assert_eq!(
        gate(&app, "churn", "production", &digest).await["allowed"],
        false
    );
    assert_eq!(
        gate(&app, "churn", "staging", &digest).await["allowed"],
        false
    );
}

#[tokio::test]
async fn the_gate_says_yes_only_for_a_stage_an_approval_reached() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    low_production_without_checks(&app).await;
    app.create_model(&developer, "churn", "low").await;
    let pushed = app.push_version(&developer, "churn", payload(10)).await;
    let digest = pushed["digest"].as_str().unwrap().to_owned();
    // A registered, never-approved version in development.
    let development = gate(&app, "churn", "development", &digest).await;
    assert_eq!(development["allowed"], false, "{development}");
    assert!(
        development["reasons"][0]
            .as_str()
            .unwrap()
            .contains("without an approval")
    );
    assert_eq!(
        json_of(open(&app, &developer, "churn", 1, "staging").await).await["state"],
        "approved"
    );
    assert_eq!(
        gate(&app, "churn", "staging", &digest).await["allowed"],
        true
    );
    call(
        &app,
        Method::POST,
        "/api/v1/models/churn/versions/1/archive",
        &developer,
        None,
    )
    .await;
    let archived = gate(&app, "churn", "archived", &digest).await;
    assert_eq!(archived["allowed"], false, "{archived}");
    assert!(
        archived["reasons"][0]
            .as_str()
            .unwrap()
            .contains("not a deployable stage")
    );
}

#[tokio::test]
async fn a_rollback_keeps_the_original_approvals_expiry() {
    let offset = Arc::new(AtomicI64::new(0));
    let app = spawn_app_with(AppOptions {
        clock_offset: Some(offset.clone()),
        ..AppOptions::default()
    })
    .await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    low_production_without_checks(&app).await;
    app.create_model(&developer, "churn", "low").await;
    to_production(&app, &developer, "churn", 1).await;
    let original = version(&app, "churn", 1).await["approval"]["not_after"].clone();
    let original_request = version(&app, "churn", 1).await["approval"]["request"].clone();
    to_production(&app, &developer, "churn", 2).await;
    assert_eq!(version(&app, "churn", 1).await["stage"], "archived");
    // Superseded, version 1 still holds its production approval, so its evidence stays frozen: it
    // cannot be edited now and rolled back later.
    let (status, _, message) = failure(
        call(
            &app,
            Method::PUT,
            "/api/v1/models/churn/versions/1/card",
            &developer,
            Some(json!({ "card": { "limitations": "rewritten while archived" } })),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{message}");
    offset.store(50 * DAY_MILLIS, Ordering::SeqCst);
    let rollback = || {
        call(
            &app,
            Method::POST,
            "/api/v1/models/churn/rollback",
            &developer,
            Some(json!({ "stage": "production", "justification": "v2 misbehaves" })),
        )
    };
    let rolled_back = rollback().await;
    assert_eq!(rolled_back.status(), StatusCode::CREATED);
    assert_eq!(json_of(rolled_back).await["state"], "approved");
    let restored = version(&app, "churn", 1).await;
    assert_eq!(restored["stage"], "production");
    assert_eq!(
        restored["approval"]["not_after"], original,
        "a rollback must not renew the approval"
    );
    assert_eq!(
        restored["approval"]["request"], original_request,
        "the approval (and its signers) stays the original one"
    );
    // A retried rollback does not bring back the version it just replaced.
    let (status, _, message) = failure(rollback().await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{message}");
    assert_eq!(version(&app, "churn", 1).await["stage"], "production");
    assert_eq!(version(&app, "churn", 2).await["stage"], "archived");
    // An attestation names a stage the version holds an approval for, never `archived`.
    let (status, _, _) = failure(
        call(
            &app,
            Method::GET,
            "/api/v1/models/churn/versions/2/attestation?stage=archived",
            &developer,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn evidence_after_approval_is_frozen_in_production_and_flagged_in_staging() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    low_production_without_checks(&app).await;
    app.create_model(&developer, "churn", "low").await;
    to_production(&app, &developer, "churn", 1).await;
    let card = json!({ "card": { "limitations": "nearly empty" } });
    let (status, code, message) = failure(
        call(
            &app,
            Method::PUT,
            "/api/v1/models/churn/versions/1/card",
            &developer,
            Some(card.clone()),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{message}");
    assert_eq!(code, "failed_precondition");
    assert!(message.contains("freezes the evidence"), "{message}");
    // In staging the card may grow for the next gate, and the staging approval is flagged.
    app.push_version(&developer, "churn", payload(7)).await;
    assert_eq!(
        json_of(open(&app, &developer, "churn", 2, "staging").await).await["state"],
        "approved"
    );
    let set = call(
        &app,
        Method::PUT,
        "/api/v1/models/churn/versions/2/card",
        &developer,
        Some(card),
    )
    .await;
    assert_eq!(set.status(), StatusCode::OK);
    let flagged = version(&app, "churn", 2).await;
    assert_eq!(flagged["approval"]["status"], "review_due", "{flagged}");
    assert_eq!(
        flagged["approval"]["evidence_changed_after_approval"],
        "card revision 1"
    );
    let events = call_json(
        &app,
        Method::GET,
        "/api/v1/audit/events?target=model/churn/version/2&action=card.set",
        &app.admin_token,
        None,
    )
    .await;
    assert_eq!(events["events"][0]["after"]["after_approval"], true);
}

#[tokio::test]
async fn admins_and_former_owners_do_not_count_as_approvers() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let root = app.user_with_token("root", &["admin", "validator"]).await;
    let olga = app.user_with_token("olga", &["validator"]).await;
    app.user_with_token("pat", &[]).await;
    let created = call(
        &app,
        Method::POST,
        "/api/v1/models",
        &developer,
        Some(json!({ "name": "churn", "owner": "olga", "risk_tier": "medium" })),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    app.push_version(&developer, "churn", payload(10)).await;
    let request = json_of(open(&app, &developer, "churn", 1, "staging").await).await;
    let id = request["id"].as_i64().unwrap();
    let review = |token: String| {
        let app = &app;
        async move {
            failure(
                call(
                    app,
                    Method::POST,
                    &format!("/api/v1/requests/{id}/reviews"),
                    &token,
                    Some(approve("validator")),
                )
                .await,
            )
            .await
        }
    };
    let (status, _, message) = review(root.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message.contains("holds admin"), "{message}");
    // The owner changes after the request was opened: the former owner still may not approve.
    let changed = call(
        &app,
        Method::PATCH,
        "/api/v1/models/churn",
        &app.admin_token,
        Some(json!({ "owner": "pat" })),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let (status, _, message) = review(olga.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        message.contains("owned it when the request was opened"),
        "{message}"
    );
    let shown = call_json(
        &app,
        Method::GET,
        &format!("/api/v1/requests/{id}"),
        &developer,
        None,
    )
    .await;
    assert_eq!(shown["state"], "open");
    assert!(shown["reviews"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn every_decision_records_the_policy_in_force() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let validator = app.user_with_token("val", &["validator"]).await;
    app.create_model(&developer, "churn", "medium").await;
    app.push_version(&developer, "churn", payload(10)).await;
    let policy = call_json(&app, Method::GET, "/api/v1/policy", &developer, None).await;
    let digest = policy["digest"].as_str().unwrap().to_owned();
    let request = json_of(open(&app, &developer, "churn", 1, "staging").await).await;
    let id = request["id"].as_i64().unwrap();
    let approved = call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{id}/reviews"),
        &validator,
        Some(approve("validator")),
    )
    .await;
    assert_eq!(approved.status(), StatusCode::OK);
    let events = call_json(
        &app,
        Method::GET,
        "/api/v1/audit/events?limit=1000",
        &app.admin_token,
        None,
    )
    .await;
    let decisions: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| {
            let action = event["action"].as_str().unwrap();
            action.starts_with("request.")
                || action.starts_with("review.")
                || action == "version.promote"
        })
        .collect();
    let actions: Vec<&str> = decisions
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "request.open",
            "review.approve",
            "version.promote",
            "request.approve"
        ]
    );
    for event in decisions {
        assert_eq!(event["policy_digest"], digest.as_str(), "{event}");
    }
}

/// The policy text in force with the first `from` replaced by `to`.
async fn edited_policy(app: &TestApp, from: &str, to: &str) -> String {
    let policy = call_json(app, Method::GET, "/api/v1/policy", &app.admin_token, None).await;
    let text = policy["text"].as_str().unwrap().replacen(from, to, 1);
    assert_ne!(
        text,
        policy["text"].as_str().unwrap(),
        "the policy has no {from:?}"
    );
    text
}

#[tokio::test]
async fn a_stricter_policy_lists_the_approvals_it_would_not_grant_and_acts_on_them() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    low_production_without_checks(&app).await;
    app.create_model(&developer, "churn", "low").await;
    to_production(&app, &developer, "churn", 1).await;
    let digest = version(&app, "churn", 1).await["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let low_production = "tier = \"low\"\nstage = \"production\"\nsignoffs = []";
    let stricter = edited_policy(
        &app,
        low_production,
        "tier = \"low\"\nstage = \"production\"\nsignoffs = [{ role = \"validator\", count = 1 }]",
    )
    .await;
    // A dry run lists the approval and changes nothing.
    let dry = call_json(
        &app,
        Method::PUT,
        "/api/v1/policy",
        &app.admin_token,
        Some(json!({ "text": stricter, "dry_run": true })),
    )
    .await;
    assert_eq!(dry["dry_run"], true);
    let listed = dry["approvals_not_regranted"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{dry}");
    assert_eq!(
        (
            &listed[0]["model"],
            &listed[0]["version"],
            &listed[0]["stage"],
            &listed[0]["action"]
        ),
        (
            &json!("churn"),
            &json!(1),
            &json!("production"),
            &json!("review_due")
        )
    );
    assert!(
        listed[0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("fewer validator sign-off")
    );
    assert_eq!(
        version(&app, "churn", 1).await["approval"]["status"],
        "active"
    );
    let revision_before = dry["policy"]["revision"].clone();
    // Applied: the approval is due for review; the gate still says yes.
    let applied = call_json(
        &app,
        Method::PUT,
        "/api/v1/policy",
        &app.admin_token,
        Some(json!({ "text": stricter })),
    )
    .await;
    assert_ne!(applied["policy"]["revision"], revision_before);
    let flagged = version(&app, "churn", 1).await;
    assert_eq!(flagged["approval"]["status"], "review_due", "{flagged}");
    assert!(
        flagged["approval"]["review_reason"]
            .as_str()
            .unwrap()
            .contains("would not grant this approval")
    );
    assert_eq!(
        gate(&app, "churn", "production", &digest).await["allowed"],
        true
    );
    // A policy that says `suspend`: the gate says no until a risk officer reinstates.
    let suspending = edited_policy(
        &app,
        "approvals_not_regranted = \"review_due\"",
        "approvals_not_regranted = \"suspend\"",
    )
    .await;
    let applied = call_json(
        &app,
        Method::PUT,
        "/api/v1/policy",
        &app.admin_token,
        Some(json!({ "text": suspending })),
    )
    .await;
    assert_eq!(applied["approvals_not_regranted"][0]["action"], "suspend");
    let suspended = version(&app, "churn", 1).await;
    assert_eq!(suspended["approval"]["status"], "suspended", "{suspended}");
    assert_eq!(
        gate(&app, "churn", "production", &digest).await["allowed"],
        false
    );
    let actions = audit_actions(&app, "target=model/churn/version/1").await;
    assert!(
        actions.iter().any(|action| action == "version.review_due")
            && actions.iter().any(|action| action == "version.suspend"),
        "{actions:?}"
    );
}

/// A caller asking the gate in a loop does not grow the audit log one event per question: denials are
/// grouped per source and reason, with their count.
#[tokio::test]
async fn gate_denials_are_grouped_in_the_audit_log() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    app.create_model(&developer, "churn", "low").await;
    let pushed = app.push_version(&developer, "churn", payload(10)).await;
    let digest = pushed["digest"].as_str().unwrap().to_owned();
    for _ in 0..50 {
        assert_eq!(
            gate(&app, "churn", "production", &digest).await["allowed"],
            false
        );
    }
    let denials = audit_actions(&app, "action=gate.deny").await;
    assert!(
        !denials.is_empty() && denials.len() <= 2,
        "50 denials from one caller wrote {} events",
        denials.len()
    );
}
