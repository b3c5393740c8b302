//! The audit log through the API and the CLI: one event per change, refused attempts on record, proofs
//! that verify, and export/verify as an auditor runs it.

use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use modelgate_audit::NoteVerifier;
use modelgate_audit::merkle::{Hash, leaf_hash, verify_consistency, verify_inclusion};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn events(app: &TestApp) -> Vec<Value> {
    let list: Value = app
        .request(
            Method::GET,
            "/api/v1/audit/events?limit=1000",
            &app.admin_token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["events"].as_array().unwrap().clone()
}

fn hashes(values: &Value) -> Vec<Hash> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|value| {
            BASE64
                .decode(value.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn every_change_through_the_api_writes_exactly_one_event() {
    let app = spawn_app().await;
    let admin = app.admin_token.clone();
    let send = |method: Method, path: &str, token: &str, body: Option<Value>| {
        let mut request = app.request(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let token = app.user_with_token("walker", &["model_developer"]).await;
    let ok = |status: StatusCode| assert!(status.is_success(), "{status}");
    ok(app.create_model(&token, "walk", "high").await.status());
    ok(send(
        Method::PUT,
        "/api/v1/models/walk/tags/team",
        &token,
        Some(json!({"value": "a"})),
    )
    .await
    .unwrap()
    .status());
    ok(send(
        Method::DELETE,
        "/api/v1/models/walk/tags/team",
        &token,
        None,
    )
    .await
    .unwrap()
    .status());
    ok(send(
        Method::PATCH,
        "/api/v1/models/walk",
        &token,
        Some(json!({"description": "d"})),
    )
    .await
    .unwrap()
    .status());
    let version = app.push_version(&token, "walk", payload(100)).await;
    assert_eq!(version["version"], 1);
    ok(send(
        Method::PUT,
        "/api/v1/models/walk/versions/1/tags/c",
        &token,
        Some(json!({"value": "y"})),
    )
    .await
    .unwrap()
    .status());
    ok(send(
        Method::DELETE,
        "/api/v1/models/walk/versions/1/tags/c",
        &token,
        None,
    )
    .await
    .unwrap()
    .status());
    ok(send(
        Method::PATCH,
        "/api/v1/models/walk/versions/1",
        &token,
        Some(json!({"description": "v"})),
    )
    .await
    .unwrap()
    .status());
    ok(send(
        Method::POST,
        "/api/v1/models/walk/versions/1/archive",
        &token,
        None,
    )
    .await
    .unwrap()
    .status());
    ok(
        send(Method::POST, "/api/v1/models/walk/archive", &token, None)
            .await
            .unwrap()
            .status(),
    );
    ok(send(
        Method::PATCH,
        "/api/v1/users/walker",
        &admin,
        Some(json!({"roles": ["model_developer", "validator"]})),
    )
    .await
    .unwrap()
    .status());
    let created: Value = send(
        Method::POST,
        "/api/v1/tokens",
        &token,
        Some(json!({"name": "second"})),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token_id = created["token"]["id"].as_str().unwrap().to_owned();
    ok(send(
        Method::POST,
        &format!("/api/v1/tokens/{token_id}/revoke"),
        &token,
        None,
    )
    .await
    .unwrap()
    .status());
    ok(app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "walker", "password": "a long enough password"}))
        .send()
        .await
        .unwrap()
        .status());
    // Reads change nothing and write nothing.
    ok(send(Method::GET, "/api/v1/models/walk", &token, None)
        .await
        .unwrap()
        .status());
    ok(send(Method::GET, "/api/v1/models", &token, None)
        .await
        .unwrap()
        .status());
    // Refused attempts are on record too.
    assert_eq!(
        send(Method::GET, "/api/v1/models", "mgt_wrong", None)
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let stranger = app.user_with_token("stranger", &["validator"]).await;
    assert_eq!(
        send(
            Method::POST,
            "/api/v1/users",
            &stranger,
            Some(json!({"username": "x", "printed_name": "X"}))
        )
        .await
        .unwrap()
        .status(),
        StatusCode::FORBIDDEN
    );

    let recorded: Vec<(String, String, String)> = events(&app)
        .await
        .iter()
        .map(|event| {
            (
                event["action"].as_str().unwrap().to_owned(),
                event["target"].as_str().unwrap().to_owned(),
                event["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let digest = version["digest"].as_str().unwrap();
    let expected: Vec<(&str, String, &str)> = vec![
        ("user.create", "user/admin".to_owned(), "ok"),
        ("token.create", recorded[1].1.clone(), "ok"),
        ("user.create", "user/walker".to_owned(), "ok"),
        ("token.create", recorded[3].1.clone(), "ok"),
        ("model.create", "model/walk".to_owned(), "ok"),
        ("model.tag.set", "model/walk".to_owned(), "ok"),
        ("model.tag.delete", "model/walk".to_owned(), "ok"),
        ("model.update", "model/walk".to_owned(), "ok"),
        ("artifact.store", format!("artifact/{digest}"), "ok"),
        // The server's own change: the scanner's report on the upload.
        ("artifact.scan", format!("artifact/{digest}"), "ok"),
        ("version.create", "model/walk/version/1".to_owned(), "ok"),
        ("version.tag.set", "model/walk/version/1".to_owned(), "ok"),
        (
            "version.tag.delete",
            "model/walk/version/1".to_owned(),
            "ok",
        ),
        ("version.update", "model/walk/version/1".to_owned(), "ok"),
        ("version.archive", "model/walk/version/1".to_owned(), "ok"),
        ("model.archive", "model/walk".to_owned(), "ok"),
        ("user.update", "user/walker".to_owned(), "ok"),
        ("token.create", format!("token/{token_id}"), "ok"),
        ("token.revoke", format!("token/{token_id}"), "ok"),
        ("token.create", recorded[19].1.clone(), "ok"),
        ("auth.refused", "GET /api/v1/models".to_owned(), "denied"),
        ("user.create", "user/stranger".to_owned(), "ok"),
        ("token.create", recorded[22].1.clone(), "ok"),
        ("user.create", "user/x".to_owned(), "denied"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .into_iter()
        .map(|(action, target, outcome)| (action.to_owned(), target, outcome.to_owned()))
        .collect();
    assert_eq!(recorded, expected);
    let all = events(&app).await;
    for (index, event) in all.iter().enumerate() {
        assert_eq!(event["seq"], index as u64, "gap-free sequence numbers");
    }
    assert_eq!(all[5]["actor"], "walker");
    assert_eq!(all[5]["before"]["tags"], json!({}));
    assert_eq!(all[5]["after"]["tags"], json!({"team": "a"}));
    assert!(
        all[5]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(all[5]["client_addr"], "127.0.0.1");
    let filtered: Value = app
        .request(
            Method::GET,
            "/api/v1/audit/events?target=model/walk/version/1&actor=walker",
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["events"].as_array().unwrap().len(), 5);
    app.stop().await;
}

#[tokio::test]
async fn checkpoints_entries_and_proofs_verify_against_the_published_key() {
    let app = spawn_app().await;
    let token = app.admin_token.clone();
    app.create_model(&token, "proofs", "low").await;
    for round in 0..6 {
        app.request(
            Method::PUT,
            &format!("/api/v1/models/proofs/tags/k{round}"),
            &token,
        )
        .json(&json!({"value": "v"}))
        .send()
        .await
        .unwrap();
    }
    let text = |path: &'static str| {
        let request = app.request(Method::GET, path, &token);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let verifier = NoteVerifier::parse(text("/api/v1/audit/public-key").await.trim()).unwrap();
    let first = verifier
        .verify(&text("/api/v1/audit/checkpoint").await)
        .unwrap();
    assert_eq!(first.size, 9);
    app.request(Method::PUT, "/api/v1/models/proofs/tags/late", &token)
        .json(&json!({"value": "v"}))
        .send()
        .await
        .unwrap();
    let second = verifier
        .verify(&text("/api/v1/audit/checkpoint").await)
        .unwrap();
    assert_eq!(second.size, 10);

    let entries = text("/api/v1/audit/entries?start=0&end=10").await;
    let leaves: Vec<&str> = entries.lines().collect();
    assert_eq!(leaves.len(), 10);
    for (index, leaf) in leaves.iter().enumerate() {
        let proof: Value = app
            .request(
                Method::GET,
                &format!("/api/v1/audit/proofs/inclusion?index={index}&tree_size=10"),
                &token,
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        verify_inclusion(
            &leaf_hash(leaf.as_bytes()),
            index as u64,
            10,
            &hashes(&proof["hashes"]),
            &second.root,
        )
        .unwrap();
    }
    let proof: Value = app
        .request(
            Method::GET,
            "/api/v1/audit/proofs/consistency?first=9&second=10",
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    verify_consistency(9, 10, &hashes(&proof["hashes"]), &first.root, &second.root).unwrap();
    let (status, code, _) = error_of(
        app.request(
            Method::GET,
            "/api/v1/audit/proofs/inclusion?index=10&tree_size=10",
            &token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "failed_precondition")
    );
    app.stop().await;
}
