//! Model cards over HTTP: schema, validation with paths, SPDX, size limit, revisions, completeness per
//! tier, diffs, and the card as evidence that sign-offs are bound to.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn complete_low_card() -> Value {
    json!({
        "model_details": { "name": "churn", "owners": [{ "name": "Growth team", "contact": "growth@example.org" }], "license": "Apache-2.0" },
        "intended_use": { "primary_uses": "rank accounts by churn risk", "out_of_scope_uses": "credit decisions" },
        "limitations": "trained on EU customers only",
    })
}

#[tokio::test]
async fn cards_are_validated_revised_and_diffed() {
    let app = spawn_app().await;
    let developer = app.user_with_token("cara", &["model_developer"]).await;
    app.create_model(&developer, "churn", "low").await;
    app.push_version(&developer, "churn", payload(10)).await;
    let path = "/api/v1/models/churn/versions/1/card";

    let schema: Value = app
        .http
        .get(app.url("/api/v1/schemas/model-card.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(schema["properties"]["intended_use"].is_object());

    let (status, code, _) = error_of(call(&app, Method::GET, path, &developer, None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );

    let cases = [
        (
            json!({ "model_details": { "name": 7 } }),
            "model_details.name",
        ),
        (
            json!({ "model_details": { "license": "Apache 2" } }),
            "model_details.license",
        ),
        (json!({ "limitaitons": "typo" }), "limitaitons"),
        (
            json!({ "training_data": [{ "name": "t", "digest": "sha256:XYZ" }] }),
            "training_data[0].digest",
        ),
    ];
    for (card, expected) in cases {
        let (status, code, body) = error_of(
            call(
                &app,
                Method::PUT,
                path,
                &developer,
                Some(json!({ "card": card })),
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{expected}"
        );
        let problems = body["error"]["details"]["problems"].as_array().unwrap();
        assert!(
            problems.iter().any(|problem| problem["path"] == expected),
            "{expected}: {problems:?}"
        );
    }
    let oversized = json!({ "card": { "limitations": "x".repeat(1024 * 1024 + 10) } });
    let (status, code, _) =
        error_of(call(&app, Method::PUT, path, &developer, Some(oversized)).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    let first: Value = call(
        &app,
        Method::PUT,
        path,
        &developer,
        Some(json!({ "card": { "model_details": { "name": "churn" } }, "message": "start" })),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(first["revision"], 1);
    assert_eq!(first["complete"], false);
    assert_eq!(
        first["missing"],
        json!([
            "model_details.owners",
            "intended_use.primary_uses",
            "limitations"
        ])
    );
    let second: Value = call(
        &app,
        Method::PUT,
        path,
        &developer,
        Some(json!({ "card": complete_low_card(), "message": "fill in" })),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (second["revision"].as_i64(), second["complete"].as_bool()),
        (Some(2), Some(true))
    );
    assert_ne!(first["digest"], second["digest"]);
    let shown: Value = call(&app, Method::GET, path, &developer, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["revision"], 2);
    assert_eq!(shown["card"]["limitations"], "trained on EU customers only");

    let revisions: Value = call(
        &app,
        Method::GET,
        &format!("{path}/revisions"),
        &developer,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(revisions["revisions"].as_array().unwrap().len(), 2);
    assert_eq!(revisions["revisions"][0]["message"], "start");
    let diff: Value = call(&app, Method::GET, &format!("{path}/diff"), &developer, None)
        .await
        .json()
        .await
        .unwrap();
    let changed: Vec<&str> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["path"].as_str().unwrap())
        .collect();
    assert!(
        changed.contains(&"limitations") && changed.contains(&"model_details.owners[0].name"),
        "{changed:?}"
    );
    assert!(
        !changed.contains(&"model_details.name"),
        "unchanged fields are not listed"
    );

    // Against another version's card.
    app.push_version(&developer, "churn", payload(20)).await;
    let mut other = complete_low_card();
    other["limitations"] = json!("EU and UK customers");
    call(
        &app,
        Method::PUT,
        "/api/v1/models/churn/versions/2/card",
        &developer,
        Some(json!({ "card": other })),
    )
    .await;
    let against: Value = call(
        &app,
        Method::GET,
        "/api/v1/models/churn/versions/2/card/diff?against=1",
        &developer,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        against["changes"],
        json!([{ "path": "limitations", "before": "trained on EU customers only", "after": "EU and UK customers" }])
    );
    let (status, _, _) = error_of(
        call(
            &app,
            Method::GET,
            "/api/v1/models/churn/versions/2/card/diff?against=production",
            &developer,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing in production yet");

    let outsider = app.user_with_token("otto", &["validator"]).await;
    let (status, _, _) = error_of(
        call(
            &app,
            Method::PUT,
            path,
            &outsider,
            Some(json!({ "card": {} })),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn the_card_is_evidence_and_an_edit_voids_earlier_sign_offs() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let validator = app.user_with_token("val", &["validator"]).await;
    app.create_model(&developer, "churn", "medium").await;
    app.push_version(&developer, "churn", payload(10)).await;
    let card_path = "/api/v1/models/churn/versions/1/card";

    let explain = |app: &TestApp| {
        let request = app.request(
            Method::GET,
            "/api/v1/models/churn/versions/1/explain?stage=production",
            &app.admin_token,
        );
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let before = explain(&app).await;
    assert_eq!(before["checks"][0]["status"], "missing", "no card yet");
    call(
        &app,
        Method::PUT,
        card_path,
        &developer,
        Some(json!({ "card": complete_low_card() })),
    )
    .await;
    let incomplete = explain(&app).await;
    assert_eq!(
        incomplete["checks"][0]["status"], "failed",
        "medium requires more: {incomplete}"
    );
    let mut card = complete_low_card();
    card["training_data"] = json!([{ "name": "crm-2026" }]);
    card["evaluation_data"] = json!([{ "name": "holdout-2026q3" }]);
    call(
        &app,
        Method::PUT,
        card_path,
        &developer,
        Some(json!({ "card": card.clone() })),
    )
    .await;
    let complete = explain(&app).await;
    assert_eq!(complete["checks"][0]["status"], "passed", "{complete}");
    assert_eq!(
        complete["checks"][1]["status"], "missing",
        "no verified evaluation yet"
    );
    assert_ne!(
        before["evidence_digest"], complete["evidence_digest"],
        "the card revision is in the evidence"
    );

    // Move to staging (1 validator), then a production request collects a sign-off that a card edit voids.
    let staging: Value = call(
        &app,
        Method::POST,
        "/api/v1/requests",
        &developer,
        Some(json!({ "model": "churn", "version": 1, "stage": "staging", "justification": "x" })),
    )
    .await
    .json()
    .await
    .unwrap();
    let approve =
        json!({ "decision": "approve", "role": "validator", "password": "a long enough password" });
    let staged: Value = call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{}/reviews", staging["id"]),
        &validator,
        Some(approve.clone()),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(staged["state"], "approved");
    let production: Value = call(
        &app,
        Method::POST,
        "/api/v1/requests",
        &developer,
        Some(
            json!({ "model": "churn", "version": 1, "stage": "production", "justification": "x" }),
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    let reviewed: Value = call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{}/reviews", production["id"]),
        &validator,
        Some(approve),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(reviewed["reviews"][0]["current"], true);
    card["limitations"] = json!("changed after the sign-off");
    call(
        &app,
        Method::PUT,
        card_path,
        &developer,
        Some(json!({ "card": card })),
    )
    .await;
    let after: Value = call(
        &app,
        Method::GET,
        &format!("/api/v1/requests/{}", production["id"]),
        &developer,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        after["reviews"][0]["current"], false,
        "the sign-off was for the old card"
    );
    let outstanding = explain(&app).await;
    assert!(
        outstanding["signoffs_outstanding"]
            .as_array()
            .unwrap()
            .iter()
            .any(|quota| quota["role"] == "validator")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_card_is_diffed_against_the_version_in_production() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    // A policy whose low-risk production gate asks only for a complete card (no evaluations exist yet).
    app.edit_policy(
        "  { name = \"verified_evaluation\", expr = \"evaluations.verified_count >= 1\", description = \"at least one evaluation computed by the server\" },\n",
        "",
    )
    .await;
    app.create_model(&developer, "churn", "low").await;
    for number in [1, 2] {
        app.push_version(&developer, "churn", payload(number * 10))
            .await;
        let mut card = complete_low_card();
        card["limitations"] = json!(format!("limitations of version {number}"));
        call(
            &app,
            Method::PUT,
            &format!("/api/v1/models/churn/versions/{number}/card"),
            &developer,
            Some(json!({ "card": card })),
        )
        .await;
    }
    for stage in ["staging", "production"] {
        let request: Value = call(
            &app,
            Method::POST,
            "/api/v1/requests",
            &developer,
            Some(json!({ "model": "churn", "version": 1, "stage": stage, "justification": "x" })),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(request["state"], "approved", "{request}");
    }
    let diff: Value = call(
        &app,
        Method::GET,
        "/api/v1/models/churn/versions/2/card/diff?against=production",
        &developer,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(diff["from"].as_str().unwrap().starts_with("churn v1"));
    assert_eq!(
        diff["changes"],
        json!([{ "path": "limitations", "before": "limitations of version 1", "after": "limitations of version 2" }])
    );
    app.stop().await;
}
