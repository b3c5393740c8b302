//! Governed promotion over HTTP: the walkthrough of the issue (gate says no, the right people sign, the
//! wrong ones are refused, the gate says yes, the approval expires), policy changes, stage order,
//! suspension and signature rate limiting.

use crate::support::*;
use base64::Engine;
use modelgate_audit::NoteVerifier;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const PASSWORD: &str = "a long enough password";

async fn gate(app: &TestApp, token: &str, model: &str, stage: &str, digest: &str) -> Value {
    call(
        app,
        Method::GET,
        &format!("/api/v1/gate?model={model}&stage={stage}&digest={digest}"),
        token,
        None,
    )
    .await
    .json()
    .await
    .unwrap()
}

fn approve(role: &str, password: &str) -> Value {
    json!({ "decision": "approve", "role": role, "meaning": format!("approved for staging as {role}"), "password": password })
}

#[tokio::test]
async fn a_high_risk_version_reaches_staging_only_with_the_right_sign_offs_and_expires() {
    let offset = Arc::new(AtomicI64::new(0));
    let app = spawn_app_with(AppOptions {
        clock_offset: Some(offset.clone()),
        ..AppOptions::default()
    })
    .await;
    let developer = app
        .user_with_token("dana", &["model_developer", "validator"])
        .await;
    let validator = app.user_with_token("vera", &["validator"]).await;
    let bystander = app.user_with_token("bo", &["business_owner"]).await;
    assert_eq!(
        app.create_model(&developer, "credit", "high")
            .await
            .status(),
        StatusCode::CREATED
    );
    let version = app.push_version(&developer, "credit", payload(5000)).await;
    let digest = version["digest"].as_str().unwrap().to_owned();

    let denied = gate(&app, &validator, "credit", "staging", &digest).await;
    assert_eq!(denied["allowed"], false);
    assert!(
        denied["reasons"][0]
            .as_str()
            .unwrap()
            .contains("no version is approved")
    );

    let opened = call(&app, Method::POST, "/api/v1/requests", &developer,
        Some(json!({"model": "credit", "version": 1, "stage": "staging", "justification": "passes the holdout"}))).await;
    assert_eq!(opened.status(), StatusCode::CREATED);
    let request: Value = opened.json().await.unwrap();
    assert_eq!(request["state"], "open");
    let id = request["id"].as_i64().unwrap();

    let explanation: Value = call(
        &app,
        Method::GET,
        "/api/v1/models/credit/versions/1/explain?stage=staging",
        &bystander,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        explanation["signoffs_outstanding"],
        json!([{"role": "validator", "count": 1}])
    );
    assert_eq!(
        explanation["eligible_reviewers"]["validator"],
        json!(["vera"]),
        "the creator is not eligible"
    );
    assert_eq!(explanation["open_request"], id);

    // The wrong people are refused, and each refusal is on record.
    let path = format!("/api/v1/requests/{id}/reviews");
    let (status, code, body) = error_of(
        call(
            &app,
            Method::POST,
            &path,
            &developer,
            Some(approve("validator", PASSWORD)),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "permission_denied")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("separation of duties")
    );
    let (status, _, body) = error_of(
        call(
            &app,
            Method::POST,
            &path,
            &bystander,
            Some(approve("validator", PASSWORD)),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not hold")
    );
    let (status, code, _) = error_of(
        call(
            &app,
            Method::POST,
            &path,
            &validator,
            Some(approve("validator", "wrong password!!")),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let (status, _, body) = error_of(
        call(
            &app,
            Method::POST,
            &path,
            &validator,
            Some(json!({"decision": "approve", "role": "validator"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["field"], "password");

    call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{id}/comments"),
        &bystander,
        Some(json!({"body": "what about drift?"})),
    )
    .await;
    let approved = call(
        &app,
        Method::POST,
        &path,
        &validator,
        Some(approve("validator", PASSWORD)),
    )
    .await;
    assert_eq!(approved.status(), StatusCode::OK);
    let approved: Value = approved.json().await.unwrap();
    assert_eq!(approved["state"], "approved");
    let signoff = &approved["reviews"][0];
    assert_eq!(signoff["printed_name"], "vera Example");
    assert_eq!(signoff["meaning"], "approved for staging as validator");
    assert_eq!(approved["comments"][0]["body"], "what about drift?");

    // The sign-off is signed by the server's key over the record it shows.
    let keys: Value = call(&app, Method::GET, "/api/v1/keys", &bystander, None)
        .await
        .json()
        .await
        .unwrap();
    let verifier = NoteVerifier::parse(keys["verifier_key"].as_str().unwrap()).unwrap();
    let record = signoff["signed_record"].as_str().unwrap();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signoff["signature"].as_str().unwrap())
        .unwrap();
    assert!(verifier.verify_message(record.as_bytes(), &signature));
    assert!(!verifier.verify_message(record.replace("vera", "mallory").as_bytes(), &signature));
    let record: Value = serde_json::from_str(record).unwrap();
    assert_eq!(record["artifact_digest"], digest.as_str());
    assert_eq!(record["role"], "validator");

    let allowed = gate(&app, &bystander, "credit", "staging", &digest).await;
    assert_eq!(allowed["allowed"], true, "{allowed}");
    assert_eq!(allowed["version"], 1);
    let other = gate(
        &app,
        &bystander,
        "credit",
        "staging",
        &sha256_of(b"another model"),
    )
    .await;
    assert_eq!(other["allowed"], false);

    // 181 days later the high-risk approval (180 days) has expired.
    let status = |app: &TestApp| {
        let request = app.request(
            Method::GET,
            "/api/v1/models/credit/versions/1",
            &app.admin_token,
        );
        async move {
            let version: Value = request.send().await.unwrap().json().await.unwrap();
            version["approval"]["status"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(status(&app).await, "active");
    // (API tokens expire after 90 days, so ask with the bootstrap token, which does not.)
    offset.store(160 * 86_400_000, Ordering::SeqCst);
    assert_eq!(status(&app).await, "review_due", "within 30 days of expiry");
    offset.store(181 * 86_400_000, Ordering::SeqCst);
    assert_eq!(status(&app).await, "expired");
    let expired = gate(&app, &app.admin_token, "credit", "staging", &digest).await;
    assert_eq!(expired["allowed"], false);
    assert!(
        expired["reasons"][0].as_str().unwrap().contains("expired"),
        "{expired}"
    );

    let events: Value = call(
        &app,
        Method::GET,
        "/api/v1/audit/events?outcome=denied&limit=1000",
        &app.admin_token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let denied_actions: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["outcome"] == "denied")
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        denied_actions
            .iter()
            .filter(|action| **action == "review.approve")
            .count(),
        3,
        "{denied_actions:?}"
    );
    assert!(denied_actions.contains(&"gate.deny"));
    app.stop().await;
}

#[tokio::test]
async fn low_risk_staging_is_approved_by_the_server_and_production_waits_for_evidence() {
    let app = spawn_app().await;
    let developer = app.user_with_token("lee", &["model_developer"]).await;
    app.create_model(&developer, "churn", "low").await;
    app.push_version(&developer, "churn", payload(100)).await;
    let staged: Value = call(
        &app,
        Method::POST,
        "/api/v1/requests",
        &developer,
        Some(
            json!({"model": "churn", "version": 1, "stage": "staging", "justification": "nightly"}),
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        staged["state"], "approved",
        "low risk passes on checks alone"
    );
    let version: Value = call(
        &app,
        Method::GET,
        "/api/v1/models/churn/versions/1",
        &developer,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(version["stage"], "staging");

    let production: Value = call(
        &app,
        Method::POST,
        "/api/v1/requests",
        &developer,
        Some(json!({"model": "churn", "version": 1, "stage": "production", "justification": "go"})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        production["state"], "open",
        "the card and evaluation checks are missing"
    );
    let explanation: Value = call(
        &app,
        Method::GET,
        "/api/v1/models/churn/versions/1/explain?stage=production",
        &developer,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let statuses: Vec<(&str, &str)> = explanation["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| {
            (
                check["name"].as_str().unwrap(),
                check["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("card_complete", "missing"),
            ("verified_evaluation", "missing")
        ]
    );
    assert_eq!(explanation["checks_pass"], false);
    app.stop().await;
}

#[tokio::test]
async fn stages_cannot_be_skipped_and_requests_can_be_withdrawn() {
    let app = spawn_app().await;
    let developer = app.user_with_token("sam", &["model_developer"]).await;
    let other = app.user_with_token("oli", &["validator"]).await;
    app.create_model(&developer, "skip", "medium").await;
    app.push_version(&developer, "skip", payload(10)).await;
    let (status, code, body) = error_of(call(&app, Method::POST, "/api/v1/requests", &developer,
        Some(json!({"model": "skip", "version": 1, "stage": "production", "justification": "hurry"}))).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "permission_denied")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("one stage at a time")
    );
    let (status, _, _) = error_of(call(&app, Method::POST, "/api/v1/requests", &other,
        Some(json!({"model": "skip", "version": 1, "stage": "staging", "justification": "not mine"}))).await).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only maintainers open requests"
    );
    let request: Value = call(
        &app,
        Method::POST,
        "/api/v1/requests",
        &developer,
        Some(json!({"model": "skip", "version": 1, "stage": "staging", "justification": "ready"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = request["id"].as_i64().unwrap();
    let (status, code, _) = error_of(call(&app, Method::POST, "/api/v1/requests", &developer,
        Some(json!({"model": "skip", "version": 1, "stage": "staging", "justification": "again"}))).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "already_exists")
    );
    let (status, _, _) = error_of(
        call(
            &app,
            Method::POST,
            &format!("/api/v1/requests/{id}/withdraw"),
            &other,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let withdrawn: Value = call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{id}/withdraw"),
        &developer,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(withdrawn["state"], "withdrawn");
    let listed: Value = call(
        &app,
        Method::GET,
        "/api/v1/requests?state=open",
        &developer,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(listed["requests"].as_array().unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_broken_policy_is_refused_with_positions_and_the_old_one_stays() {
    let app = spawn_app().await;
    let developer = app.user_with_token("pia", &["model_developer"]).await;
    let before: Value = call(&app, Method::GET, "/api/v1/policy", &developer, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["source"], "built-in");
    let broken = before["text"].as_str().unwrap().replacen(
        "role = \"validator\", count = 1",
        "role = \"validatr\", count = 0",
        1,
    );
    let (status, code, body) = error_of(
        call(
            &app,
            Method::PUT,
            "/api/v1/policy",
            &app.admin_token,
            Some(json!({"text": broken})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    let problems = body["error"]["details"]["problems"].as_array().unwrap();
    let line = broken
        .lines()
        .position(|line| line.contains("validatr"))
        .unwrap() as u64
        + 1;
    assert!(
        problems
            .iter()
            .any(|p| p["message"].as_str().unwrap().contains("unknown role")
                && p["line"].as_u64() == Some(line)),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| {
        p["message"]
            .as_str()
            .unwrap()
            .contains("count must be at least 1")
    }));
    let (status, _, _) = error_of(
        call(
            &app,
            Method::PUT,
            "/api/v1/policy",
            &developer,
            Some(json!({"text": before["text"]})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let unchanged: Value = call(&app, Method::GET, "/api/v1/policy", &developer, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["digest"], before["digest"]);

    let relaxed = before["text"]
        .as_str()
        .unwrap()
        .replace("owner_may_approve = false", "owner_may_approve = true");
    let applied: Value = call(
        &app,
        Method::PUT,
        "/api/v1/policy",
        &app.admin_token,
        Some(json!({"text": relaxed})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(applied["policy"]["source"], "applied");
    assert_eq!(applied["policy"]["revision"], 1);
    assert_ne!(applied["policy"]["digest"], before["digest"]);
    app.stop().await;
}

#[tokio::test]
async fn risk_officers_suspend_and_the_gate_follows() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let officer = app.user_with_token("ro", &["risk_officer"]).await;
    app.create_model(&developer, "pricing", "low").await;
    let version = app.push_version(&developer, "pricing", payload(64)).await;
    let digest = version["digest"].as_str().unwrap().to_owned();
    call(
        &app,
        Method::POST,
        "/api/v1/requests",
        &developer,
        Some(json!({"model": "pricing", "version": 1, "stage": "staging", "justification": "x"})),
    )
    .await;
    assert_eq!(
        gate(&app, &developer, "pricing", "staging", &digest).await["allowed"],
        true
    );
    let (status, _, _) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/models/pricing/versions/1/suspend",
            &developer,
            Some(json!({"reason": "mine"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let suspended = call(
        &app,
        Method::POST,
        "/api/v1/models/pricing/versions/1/suspend",
        &officer,
        Some(json!({"reason": "drift above limit"})),
    )
    .await;
    assert_eq!(suspended.status(), StatusCode::OK);
    let answer = gate(&app, &developer, "pricing", "staging", &digest).await;
    assert_eq!(answer["allowed"], false);
    assert!(
        answer["reasons"][0]
            .as_str()
            .unwrap()
            .contains("drift above limit")
    );
    call(
        &app,
        Method::POST,
        "/api/v1/models/pricing/versions/1/reinstate",
        &officer,
        None,
    )
    .await;
    assert_eq!(
        gate(&app, &developer, "pricing", "staging", &digest).await["allowed"],
        true
    );
    app.stop().await;
}

#[tokio::test]
async fn repeated_wrong_passwords_at_signing_are_rate_limited() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let validator = app.user_with_token("val", &["validator"]).await;
    app.create_model(&developer, "limits", "medium").await;
    app.push_version(&developer, "limits", payload(8)).await;
    let request: Value = call(
        &app,
        Method::POST,
        "/api/v1/requests",
        &developer,
        Some(json!({"model": "limits", "version": 1, "stage": "staging", "justification": "x"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let path = format!("/api/v1/requests/{}/reviews", request["id"]);
    for _ in 0..5 {
        let response = call(
            &app,
            Method::POST,
            &path,
            &validator,
            Some(approve("validator", "not my password")),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let (status, code, _) = error_of(
        call(
            &app,
            Method::POST,
            &path,
            &validator,
            Some(approve("validator", PASSWORD)),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "even the right password waits"
    );
    app.stop().await;
}

#[tokio::test]
async fn promotion_works_the_same_on_postgresql() {
    let app = spawn_app_with(AppOptions {
        postgres: true,
        ..AppOptions::default()
    })
    .await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let validator = app.user_with_token("val", &["validator"]).await;
    app.create_model(&developer, "pg-credit", "medium").await;
    let version = app.push_version(&developer, "pg-credit", payload(32)).await;
    let request: Value = call(
        &app,
        Method::POST,
        "/api/v1/requests",
        &developer,
        Some(json!({"model": "pg-credit", "version": 1, "stage": "staging", "justification": "x"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let approved: Value = call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{}/reviews", request["id"]),
        &validator,
        Some(approve("validator", PASSWORD)),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(approved["state"], "approved");
    let answer = gate(
        &app,
        &developer,
        "pg-credit",
        "staging",
        version["digest"].as_str().unwrap(),
    )
    .await;
    assert_eq!(answer["allowed"], true);
    app.stop().await;
}

#[tokio::test]
async fn rollback_returns_the_previous_still_valid_version_without_new_sign_offs() {
    let app = spawn_app().await;
    let developer = app.user_with_token("rae", &["model_developer"]).await;
    app.edit_policy(
        "single_occupancy = [\"production\"]",
        "single_occupancy = [\"staging\", \"production\"]",
    )
    .await;
    app.create_model(&developer, "recs", "low").await;
    let first = app.push_version(&developer, "recs", payload(11)).await;
    let second = app.push_version(&developer, "recs", payload(22)).await;
    for number in [1, 2] {
        let request: Value = call(&app, Method::POST, "/api/v1/requests", &developer,
            Some(json!({"model": "recs", "version": number, "stage": "staging", "justification": "x"}))).await.json().await.unwrap();
        assert_eq!(request["state"], "approved");
    }
    let first_digest = first["digest"].as_str().unwrap();
    assert_eq!(
        gate(&app, &developer, "recs", "staging", first_digest).await["allowed"],
        false,
        "version 1 was archived"
    );
    let rollback = call(
        &app,
        Method::POST,
        "/api/v1/models/recs/rollback",
        &developer,
        Some(json!({"stage": "staging", "justification": "version 2 misbehaves"})),
    )
    .await;
    assert_eq!(rollback.status(), StatusCode::CREATED);
    let rollback: Value = rollback.json().await.unwrap();
    assert_eq!(
        (
            rollback["kind"].as_str(),
            rollback["state"].as_str(),
            rollback["version"].as_u64()
        ),
        (Some("rollback"), Some("approved"), Some(1))
    );
    assert_eq!(
        gate(&app, &developer, "recs", "staging", first_digest).await["allowed"],
        true
    );
    assert_eq!(
        gate(
            &app,
            &developer,
            "recs",
            "staging",
            second["digest"].as_str().unwrap()
        )
        .await["allowed"],
        false
    );
    let (status, code, _) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/models/recs/rollback",
            &developer,
            Some(json!({"stage": "production", "justification": ""})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "failed_precondition")
    );
    app.stop().await;
}
