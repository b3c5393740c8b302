//! MLflow's Model Registry REST API as the MLflow client calls it (issue 12): GET parameters in the query
//! string, everything else as a JSON body, errors as `{error_code, message}` with the real server's
//! codes and statuses, Bearer or Basic (username + token) authentication, and every change the same
//! store change and audit event as its `/api/v1` twin.

use crate::support::{TestApp, call_json, spawn_app};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

const API: &str = "/api/2.0/mlflow";

async fn mlflow(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.request(method, &format!("{API}/{path}"), token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}")),
    )
}

fn error_code(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["error_code"].as_str().unwrap_or("-"))
}

#[tokio::test]
async fn registered_models_are_modelgate_models_with_mlflows_wire() {
    let app = spawn_app().await;
    let alice = app.user_with_token("alice", &["model_developer"]).await;
    let bob = app.user_with_token("bob", &["validator"]).await;

    // No credentials, a wrong token, a token under another username: UNAUTHENTICATED.
    let anonymous = app
        .http
        .get(app.url(&format!("{API}/registered-models/get?name=x")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error_code"], "UNAUTHENTICATED", "{body}");
    let basic = |user: &str, token: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"))
        )
    };
    let with_basic = |header: String| {
        app.http
            .get(app.url(&format!("{API}/registered-models/search")))
            .header("authorization", header)
            .send()
    };
    assert_eq!(
        with_basic(basic("alice", &alice))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        with_basic(basic("bob", &alice))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        with_basic(basic("alice", "mg_wrong"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );

    // Create: the tag names the risk tier; without it the default tier (high). The owner is the caller.
    let created = mlflow(
        &app,
        Method::POST,
        "registered-models/create",
        &alice,
        Some(json!({ "name": "credit-default", "description": "PD model",
            "tags": [{ "key": "modelgate.risk_tier", "value": "low" }, { "key": "team", "value": "risk" }],
            "unknown_field": "ignored as the real server does" })),
    )
    .await;
    assert_eq!(created.0, 200, "{}", created.1);
    let registered = &created.1["registered_model"];
    assert_eq!(registered["name"], "credit-default");
    assert_eq!(registered["description"], "PD model");
    assert!(registered["creation_timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    assert!(
        registered["tags"]
            .as_array()
            .unwrap()
            .contains(&json!({ "key": "team", "value": "risk" })),
        "{registered}"
    );
    let model = call_json(
        &app,
        Method::GET,
        "/api/v1/models/credit-default",
        &alice,
        None,
    )
    .await;
    assert_eq!(
        (model["risk_tier"].as_str(), model["owner"].as_str()),
        (Some("low"), Some("alice"))
    );
    mlflow(
        &app,
        Method::POST,
        "registered-models/create",
        &alice,
        Some(json!({ "name": "fraud" })),
    )
    .await;
    let fraud = call_json(&app, Method::GET, "/api/v1/models/fraud", &alice, None).await;
    assert_eq!(fraud["risk_tier"], "high", "unknown risk is not low risk");

    // The real server's codes for the usual mistakes.
    let again = mlflow(
        &app,
        Method::POST,
        "registered-models/create",
        &alice,
        Some(json!({ "name": "fraud" })),
    )
    .await;
    assert_eq!(error_code(&again), (400, "RESOURCE_ALREADY_EXISTS"));
    let missing = mlflow(
        &app,
        Method::GET,
        "registered-models/get?name=nothing-here",
        &alice,
        None,
    )
    .await;
    assert_eq!(error_code(&missing), (404, "RESOURCE_DOES_NOT_EXIST"));
    let nameless = mlflow(&app, Method::GET, "registered-models/get", &alice, None).await;
    assert_eq!(error_code(&nameless), (400, "INVALID_PARAMETER_VALUE"));
    assert!(
        nameless.1["message"].as_str().unwrap().contains("'name'"),
        "{}",
        nameless.1
    );
    let bad_tier = mlflow(
        &app,
        Method::POST,
        "registered-models/create",
        &alice,
        Some(json!({ "name": "x1", "tags": [{ "key": "modelgate.risk_tier", "value": "tiny" }] })),
    )
    .await;
    assert_eq!(error_code(&bad_tier), (400, "INVALID_PARAMETER_VALUE"));
    let bad_name = mlflow(
        &app,
        Method::POST,
        "registered-models/create",
        &alice,
        Some(json!({ "name": "Has Spaces" })),
    )
    .await;
    assert_eq!(error_code(&bad_name), (400, "INVALID_PARAMETER_VALUE"));
    let unknown = mlflow(
        &app,
        Method::GET,
        "registered-models/teleport",
        &alice,
        None,
    )
    .await;
    assert_eq!(error_code(&unknown), (404, "ENDPOINT_NOT_FOUND"));
    let not_json = app
        .request(
            Method::POST,
            &format!("{API}/registered-models/create"),
            &alice,
        )
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status().as_u16(), 400);

    // Get by query string, through the /ajax-api alias too; update, tags.
    let got = mlflow(
        &app,
        Method::GET,
        "registered-models/get?name=credit-default",
        &alice,
        None,
    )
    .await;
    assert_eq!(got.1["registered_model"]["name"], "credit-default");
    let ajax = app
        .request(
            Method::GET,
            "/ajax-api/2.0/mlflow/registered-models/get?name=credit-default",
            &alice,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ajax.status().as_u16(), 200);
    let updated = mlflow(
        &app,
        Method::PATCH,
        "registered-models/update",
        &alice,
        Some(json!({ "name": "credit-default", "description": "PD model, v2 features" })),
    )
    .await;
    assert_eq!(
        updated.1["registered_model"]["description"], "PD model, v2 features",
        "{}",
        updated.1
    );
    let tagged = mlflow(
        &app,
        Method::POST,
        "registered-models/set-tag",
        &alice,
        Some(json!({ "name": "credit-default", "key": "champion.run", "value": "abc" })),
    )
    .await;
    assert_eq!(tagged, (200, json!({})));
    let retier = mlflow(
        &app,
        Method::POST,
        "registered-models/set-tag",
        &alice,
        Some(json!({ "name": "credit-default", "key": "modelgate.risk_tier", "value": "low" })),
    )
    .await;
    assert_eq!(error_code(&retier), (400, "INVALID_PARAMETER_VALUE"));
    // Bob, a validator, maintains neither model: the /api/v1 rule refuses him, in MLflow's words, and it is audited.
    let foreign = mlflow(
        &app,
        Method::POST,
        "registered-models/set-tag",
        &bob,
        Some(json!({ "name": "credit-default", "key": "x", "value": "y" })),
    )
    .await;
    assert_eq!(error_code(&foreign), (403, "PERMISSION_DENIED"));
    let untagged = mlflow(
        &app,
        Method::DELETE,
        "registered-models/delete-tag",
        &alice,
        Some(json!({ "name": "credit-default", "key": "champion.run" })),
    )
    .await;
    assert_eq!(untagged.0, 200, "{}", untagged.1);

    // Search: the filter grammar, its errors by position, order and pages.
    let found = mlflow(
        &app,
        Method::GET,
        "registered-models/search?filter=name%20LIKE%20%27cred%25%27",
        &alice,
        None,
    )
    .await;
    let names: Vec<&str> = found.1["registered_models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["credit-default"]);
    // The clause the MLflow client adds to every registered-model search: a model without the prompt
    // tag is not a prompt.
    let with_prompt_clause = mlflow(&app, Method::GET,
        "registered-models/search?filter=name%20LIKE%20%27cred%25%27%20AND%20tag.%60mlflow.prompt.is_prompt%60%20%21%3D%20%27true%27",
        &alice, None).await;
    assert_eq!(
        with_prompt_clause.1["registered_models"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{}",
        with_prompt_clause.1
    );
    let listed = mlflow(
        &app,
        Method::GET,
        "registered-models/search?filter=name%20IN%20(%27fraud%27%2C%27nope%27)",
        &alice,
        None,
    )
    .await;
    assert_eq!(
        listed.1["registered_models"][0]["name"], "fraud",
        "{}",
        listed.1
    );
    let by_tag = mlflow(
        &app,
        Method::GET,
        "registered-models/search?filter=tags.team%20%3D%20%27risk%27",
        &alice,
        None,
    )
    .await;
    assert_eq!(by_tag.1["registered_models"].as_array().unwrap().len(), 1);
    let malformed = mlflow(
        &app,
        Method::GET,
        "registered-models/search?filter=name%20%3D%20credit",
        &alice,
        None,
    )
    .await;
    assert_eq!(error_code(&malformed), (400, "INVALID_PARAMETER_VALUE"));
    assert!(
        malformed.1["message"]
            .as_str()
            .unwrap()
            .contains("position 7"),
        "{}",
        malformed.1
    );
    let first = mlflow(
        &app,
        Method::GET,
        "registered-models/search?max_results=1&order_by=name%20DESC",
        &alice,
        None,
    )
    .await;
    assert_eq!(first.1["registered_models"][0]["name"], "fraud");
    let token = first.1["next_page_token"].as_str().unwrap().to_owned();
    let second = mlflow(
        &app,
        Method::GET,
        &format!("registered-models/search?max_results=1&order_by=name%20DESC&page_token={token}"),
        &alice,
        None,
    )
    .await;
    assert_eq!(second.1["registered_models"][0]["name"], "credit-default");
    assert!(second.1.get("next_page_token").is_none(), "{}", second.1);
    let bad_token = mlflow(
        &app,
        Method::GET,
        "registered-models/search?page_token=zzz",
        &alice,
        None,
    )
    .await;
    assert_eq!(error_code(&bad_token), (400, "INVALID_PARAMETER_VALUE"));

    // Versions read as MLflow's: the version as a string, the stage by its MLflow name, READY.
    app.push_version(&alice, "credit-default", b"credit model".to_vec())
        .await;
    let version = mlflow(
        &app,
        Method::GET,
        "model-versions/get?name=credit-default&version=1",
        &alice,
        None,
    )
    .await;
    let version = &version.1["model_version"];
    assert_eq!(
        (
            version["version"].as_str(),
            version["current_stage"].as_str(),
            version["status"].as_str()
        ),
        (Some("1"), Some("None"), Some("READY")),
        "{version}"
    );
    let versions = mlflow(
        &app,
        Method::GET,
        "model-versions/search?filter=name%3D%27credit-default%27",
        &alice,
        None,
    )
    .await;
    assert_eq!(versions.1["model_versions"].as_array().unwrap().len(), 1);
    let none = mlflow(
        &app,
        Method::GET,
        "model-versions/get?name=credit-default&version=9",
        &alice,
        None,
    )
    .await;
    assert_eq!(error_code(&none), (404, "RESOURCE_DOES_NOT_EXIST"));
    let latest = mlflow(
        &app,
        Method::POST,
        "registered-models/get-latest-versions",
        &alice,
        Some(json!({ "name": "credit-default", "stages": ["None"] })),
    )
    .await;
    assert_eq!(
        latest.1["model_versions"][0]["version"], "1",
        "{}",
        latest.1
    );

    // Delete is an archive: gone from MLflow, kept in modelgate.
    let deleted = mlflow(
        &app,
        Method::DELETE,
        "registered-models/delete",
        &alice,
        Some(json!({ "name": "fraud" })),
    )
    .await;
    assert_eq!(deleted, (200, json!({})));
    let gone = mlflow(
        &app,
        Method::GET,
        "registered-models/get?name=fraud",
        &alice,
        None,
    )
    .await;
    assert_eq!(error_code(&gone), (404, "RESOURCE_DOES_NOT_EXIST"));
    let kept = call_json(&app, Method::GET, "/api/v1/models/fraud", &alice, None).await;
    assert!(kept["archived_at"].is_string(), "{kept}");

    // The changes are the /api/v1 changes: the same audit events, by the same people.
    let audit = call_json(
        &app,
        Method::GET,
        "/api/v1/audit/events?target=model/credit-default&limit=100",
        &app.admin_token,
        None,
    )
    .await;
    let actions: Vec<(&str, &str)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            (
                event["action"].as_str().unwrap(),
                event["actor"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    for expected in [
        "model.create",
        "model.update",
        "model.tag.set",
        "model.tag.delete",
    ] {
        assert!(
            actions
                .iter()
                .any(|(action, actor)| *action == expected && *actor == "alice"),
            "{expected}: {actions:?}"
        );
    }
    app.stop().await;
}

/// Aliases: free ones are the client's (audited as tags), `staging` and `production` are the gate's and
/// follow it — set by approval, gone when the version is suspended. `transition-stage` asks for
/// promotion; it moves the version only when the policy approves at once.
#[tokio::test]
async fn stage_aliases_follow_the_gate_and_transitions_open_requests() {
    let app = spawn_app().await;
    let alice = app.user_with_token("alice", &["model_developer"]).await;
    let officer = app.user_with_token("rio", &["risk_officer"]).await;
    mlflow(
        &app,
        Method::POST,
        "registered-models/create",
        &alice,
        Some(
            json!({ "name": "churn", "tags": [{ "key": "modelgate.risk_tier", "value": "low" }] }),
        ),
    )
    .await;
    app.push_version(&alice, "churn", b"churn model".to_vec())
        .await;

    let set = mlflow(
        &app,
        Method::POST,
        "registered-models/alias",
        &alice,
        Some(json!({ "name": "churn", "alias": "champion", "version": "1" })),
    )
    .await;
    assert_eq!(set, (200, json!({})));
    let champion = mlflow(
        &app,
        Method::GET,
        "registered-models/alias?name=churn&alias=champion",
        &alice,
        None,
    )
    .await;
    assert_eq!(
        champion.1["model_version"]["version"], "1",
        "{}",
        champion.1
    );
    assert_eq!(champion.1["model_version"]["aliases"], json!(["champion"]));
    let model = mlflow(
        &app,
        Method::GET,
        "registered-models/get?name=churn",
        &alice,
        None,
    )
    .await;
    let model = &model.1["registered_model"];
    assert_eq!(
        model["aliases"],
        json!([{ "alias": "champion", "version": "1" }]),
        "{model}"
    );
    assert!(
        !model["tags"].to_string().contains("mlflow.alias"),
        "aliases are not shown as tags: {model}"
    );
    for alias in ["production", "Staging"] {
        let refused = mlflow(
            &app,
            Method::POST,
            "registered-models/alias",
            &alice,
            Some(json!({ "name": "churn", "alias": alias, "version": "1" })),
        )
        .await;
        assert_eq!(error_code(&refused), (403, "PERMISSION_DENIED"), "{alias}");
        assert!(
            refused.1["message"]
                .as_str()
                .unwrap()
                .contains("transition-stage"),
            "{}",
            refused.1
        );
    }
    let refused = mlflow(
        &app,
        Method::DELETE,
        "registered-models/alias",
        &alice,
        Some(json!({ "name": "churn", "alias": "staging" })),
    )
    .await;
    assert_eq!(error_code(&refused), (403, "PERMISSION_DENIED"));
    for alias in ["v3", "latest", "has space"] {
        let invalid = mlflow(
            &app,
            Method::POST,
            "registered-models/alias",
            &alice,
            Some(json!({ "name": "churn", "alias": alias, "version": "1" })),
        )
        .await;
        assert_eq!(
            error_code(&invalid),
            (400, "INVALID_PARAMETER_VALUE"),
            "{alias}"
        );
    }
    let nowhere = mlflow(
        &app,
        Method::GET,
        "registered-models/alias?name=churn&alias=staging",
        &alice,
        None,
    )
    .await;
    assert_eq!(error_code(&nowhere), (404, "RESOURCE_DOES_NOT_EXIST"));

    // Staging: the low tier's gate asks for nothing, so the request is approved at once.
    let staged = mlflow(&app, Method::POST, "model-versions/transition-stage", &alice,
        Some(json!({ "name": "churn", "version": "1", "stage": "Staging", "archive_existing_versions": false }))).await;
    let staged = &staged.1["model_version"];
    assert_eq!(staged["current_stage"], "Staging", "{staged}");
    let request = staged["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tag| tag["key"] == "modelgate.request")
        .unwrap()["value"]
        .clone();
    let opened = call_json(
        &app,
        Method::GET,
        &format!("/api/v1/requests/{}", request.as_str().unwrap()),
        &alice,
        None,
    )
    .await;
    assert_eq!(opened["state"], "approved", "{opened}");
    let at_staging = mlflow(
        &app,
        Method::GET,
        "registered-models/alias?name=churn&alias=staging",
        &alice,
        None,
    )
    .await;
    assert_eq!(at_staging.1["model_version"]["version"], "1");
    assert!(
        at_staging.1["model_version"]["aliases"]
            .as_array()
            .unwrap()
            .contains(&json!("staging"))
    );

    // Production needs a complete card and a verified evaluation: the request opens, the version stays.
    let asked = mlflow(
        &app,
        Method::POST,
        "model-versions/transition-stage",
        &alice,
        Some(json!({ "name": "churn", "version": "1", "stage": "Production" })),
    )
    .await;
    assert_eq!(
        asked.1["model_version"]["current_stage"], "Staging",
        "{}",
        asked.1
    );
    let open = call_json(
        &app,
        Method::GET,
        "/api/v1/requests?model=churn&state=open",
        &alice,
        None,
    )
    .await;
    assert_eq!(open["requests"].as_array().unwrap().len(), 1, "{open}");
    let none = mlflow(
        &app,
        Method::GET,
        "registered-models/alias?name=churn&alias=production",
        &alice,
        None,
    )
    .await;
    assert_eq!(error_code(&none), (404, "RESOURCE_DOES_NOT_EXIST"));
    let back = mlflow(
        &app,
        Method::POST,
        "model-versions/transition-stage",
        &alice,
        Some(json!({ "name": "churn", "version": "1", "stage": "None" })),
    )
    .await;
    assert_eq!(error_code(&back), (400, "INVALID_PARAMETER_VALUE"));

    // A suspended version holds no stage alias: the gate would refuse it.
    let suspended = app
        .request(
            Method::POST,
            "/api/v1/models/churn/versions/1/suspend",
            &officer,
        )
        .json(&json!({ "reason": "drift investigation" }))
        .send()
        .await
        .unwrap();
    assert!(
        suspended.status().is_success(),
        "{}",
        suspended.text().await.unwrap()
    );
    let gone = mlflow(
        &app,
        Method::GET,
        "registered-models/alias?name=churn&alias=staging",
        &alice,
        None,
    )
    .await;
    assert_eq!(error_code(&gone), (404, "RESOURCE_DOES_NOT_EXIST"));

    // Version description and tags; delete archives.
    let described = mlflow(
        &app,
        Method::PATCH,
        "model-versions/update",
        &alice,
        Some(json!({ "name": "churn", "version": "1", "description": "first cut" })),
    )
    .await;
    assert_eq!(
        described.1["model_version"]["description"], "first cut",
        "{}",
        described.1
    );
    let tagged = mlflow(
        &app,
        Method::POST,
        "model-versions/set-tag",
        &alice,
        Some(json!({ "name": "churn", "version": "1", "key": "validated_by", "value": "team-b" })),
    )
    .await;
    assert_eq!(tagged.0, 200, "{}", tagged.1);
    let untagged = mlflow(
        &app,
        Method::DELETE,
        "model-versions/delete-tag",
        &alice,
        Some(json!({ "name": "churn", "version": "1", "key": "validated_by" })),
    )
    .await;
    assert_eq!(untagged.0, 200, "{}", untagged.1);
    let deleted = mlflow(
        &app,
        Method::DELETE,
        "model-versions/delete",
        &alice,
        Some(json!({ "name": "churn", "version": "1" })),
    )
    .await;
    assert_eq!(deleted, (200, json!({})));
    let archived = mlflow(
        &app,
        Method::GET,
        "model-versions/get?name=churn&version=1",
        &alice,
        None,
    )
    .await;
    assert_eq!(archived.1["model_version"]["current_stage"], "Archived");
    let audit = call_json(
        &app,
        Method::GET,
        "/api/v1/audit/events?target=model/churn&limit=100",
        &app.admin_token,
        None,
    )
    .await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    for expected in [
        "request.open",
        "version.promote",
        "version.archive",
        "model.tag.set",
    ] {
        assert!(actions.contains(&expected), "{expected}: {actions:?}");
    }
    app.stop().await;
}
