//! The HTTP API against a real server on a loopback port.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn health_openapi_and_docs_need_no_token_and_everything_else_does() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz", "/api/v1/openapi.json", "/api/docs/"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.headers().contains_key("x-request-id"), "{path}");
    }
    let document: Value = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert!(
        document["components"]["schemas"]["EvaluationJob"].is_object(),
        "the job's schema is described"
    );
    for path in [
        "/api/v1/models",
        "/api/v1/models/{name}/versions",
        "/api/v1/artifacts",
        "/api/v1/evaluations",
        "/api/v1/evaluation-jobs",
        "/api/v1/evaluation-jobs/{id}",
        "/api/v1/evaluation-jobs/{id}/cancel",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "the document describes {path}"
        );
    }
    for path in [
        "/api/v1/models",
        "/api/v1/users",
        "/api/v1/whoami",
        "/api/v1/tokens",
    ] {
        let (status, code, body) =
            error_of(app.http.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{path}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Bearer")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn missing_malformed_unknown_expired_and_revoked_tokens_are_refused() {
    let app = spawn_app().await;
    let whoami = |token: Option<&str>| {
        let mut request = app.http.get(app.url("/api/v1/whoami"));
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        request.send()
    };
    let cases = [
        (None, "missing or malformed"),
        (Some("Basic abc"), "missing or malformed"),
        (Some("Bearer mgt_not-a-real-token"), "not valid"),
    ];
    for (header, expected) in cases {
        let (status, code, body) = error_of(whoami(header).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthenticated")
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{body}"
        );
    }

    // A token that expires: created through the store with an expiry in the past.
    let store = modelgate_server::open_store(app.data_dir.path(), None)
        .await
        .unwrap();
    let admin = store
        .get_user(&modelgate_core::Username::parse("admin").unwrap())
        .await
        .unwrap();
    let secret = modelgate_server::auth::new_token_secret();
    store
        .create_token(
            &modelgate_store::Attribution::system(
                "test",
                modelgate_core::Timestamp::from_unix_millis(0),
            ),
            &admin,
            &modelgate_core::TokenName::parse("old").unwrap(),
            &modelgate_server::auth::token_secret_hash(&secret),
            Some(modelgate_core::Timestamp::from_unix_millis(1_000)),
        )
        .await
        .unwrap();
    let (status, _, body) =
        error_of(whoami(Some(&format!("Bearer {secret}"))).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    let created: Value = app
        .request(Method::POST, "/api/v1/tokens", &app.admin_token)
        .json(&json!({ "name": "short-lived" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["token"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.request(Method::GET, "/api/v1/whoami", &secret)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let revoked = app
        .request(
            Method::POST,
            &format!("/api/v1/tokens/{id}/revoke"),
            &app.admin_token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let (status, _, body) =
        error_of(whoami(Some(&format!("Bearer {secret}"))).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    app.stop().await;
}

#[tokio::test]
async fn only_admins_manage_users_and_permission_denials_are_403() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dana", &["model_developer"]).await;
    let validator = app.user_with_token("vic", &["validator"]).await;
    let (status, code, _) = error_of(
        app.request(Method::POST, "/api/v1/users", &developer)
            .json(&json!({ "username": "eve", "printed_name": "Eve" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "permission_denied")
    );
    let (status, code, _) = error_of(
        app.request(Method::PATCH, "/api/v1/users/vic", &developer)
            .json(&json!({ "roles": ["admin"] }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "permission_denied")
    );

    assert_eq!(
        app.create_model(&developer, "scorer", "medium")
            .await
            .status(),
        StatusCode::CREATED
    );
    let (status, code, body) = error_of(
        app.request(Method::PUT, "/api/v1/models/scorer/tags/stage", &validator)
            .json(&json!({ "value": "x" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "permission_denied")
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("vic"));
    let (status, _, _) = error_of(
        app.request(Method::PATCH, "/api/v1/models/scorer", &developer)
            .json(&json!({ "risk_tier": "low" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only admins lower a risk tier"
    );
    let lowered = app
        .request(Method::PATCH, "/api/v1/models/scorer", &app.admin_token)
        .json(&json!({ "risk_tier": "low" }))
        .send()
        .await
        .unwrap();
    assert_eq!(lowered.json::<Value>().await.unwrap()["risk_tier"], "low");
    app.stop().await;
}

#[tokio::test]
async fn password_login_issues_a_working_token() {
    let app = spawn_app().await;
    app.user_with_token("lena", &["validator"]).await;
    let login = |password: &str| {
        app.http
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({ "username": "lena", "password": password }))
            .send()
    };
    let (status, code, _) = error_of(login("wrong password here").await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let created: Value = login("a long enough password")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap();
    let who: Value = app
        .request(Method::GET, "/api/v1/whoami", secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["user"]["username"], "lena");
    assert_eq!(who["user"]["roles"], json!(["validator"]));
    app.stop().await;
}

#[tokio::test]
async fn model_names_are_validated_unique_and_404_when_unknown() {
    let app = spawn_app().await;
    let token = app.admin_token.clone();
    let (status, code, body) =
        error_of(app.create_model(&token, "Credit Default", "high").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    assert_eq!(body["error"]["details"]["field"], "name");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lowercase letters")
    );
    let (_, code, body) = error_of(app.create_model(&token, "ok-name", "extreme").await).await;
    assert_eq!(code, "invalid_argument");
    assert_eq!(body["error"]["details"]["field"], "risk_tier");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("risk_tier: ") && message.contains("`extreme`"),
        "{message}"
    );
    for tier in ["low", "medium", "high", "critical"] {
        assert!(message.contains(&format!("`{tier}`")), "{message}");
    }

    let created = app.create_model(&token, "credit-default", "high").await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let model: Value = created.json().await.unwrap();
    assert_eq!(
        (model["owner"].as_str(), model["version_count"].as_u64()),
        (Some("admin"), Some(0))
    );
    let (status, code, _) = error_of(app.create_model(&token, "credit-default", "low").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "already_exists")
    );

    for path in [
        "/api/v1/models/nope",
        "/api/v1/models/credit-default/versions/7",
        "/api/v1/models/nope/versions",
    ] {
        let (status, code, _) =
            error_of(app.request(Method::GET, path, &token).send().await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}"
        );
    }
    let (status, code, _) = error_of(
        app.request(
            Method::GET,
            "/api/v1/models/credit-default/versions/zero",
            &token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    let (status, code, _) = error_of(
        app.request(Method::GET, "/api/v1/no-such-route", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_gets_the_error_shape() {
    let app = spawn_app().await;
    // A value that does not fit its field names the field; what is not JSON, or lacks a field, is the body's.
    let cases = [
        ("{\"name\": ", "application/json", "body"),
        (
            "{\"name\": 3, \"risk_tier\": \"low\"}",
            "application/json",
            "name",
        ),
        ("{\"risk_tier\": \"low\"}", "application/json", "body"),
        ("name=x", "text/plain", "body"),
    ];
    for (body, content_type, field) in cases {
        let response = app
            .request(Method::POST, "/api/v1/models", &app.admin_token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, code, error) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{body}"
        );
        assert_eq!(error["error"]["details"]["field"], field, "{body}");
    }
    let missing_field = app
        .request(Method::POST, "/api/v1/models", &app.admin_token)
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .unwrap();
    let (_, _, error) = error_of(missing_field).await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("risk_tier"),
        "{error}"
    );
    app.stop().await;
}

#[tokio::test]
async fn versions_are_numbered_and_bound_to_their_artifact() {
    let app = spawn_app().await;
    let token = app.user_with_token("dev", &["model_developer"]).await;
    app.create_model(&token, "fraud", "medium").await;
    let first = app.push_version(&token, "fraud", payload(1000)).await;
    let second = app.push_version(&token, "fraud", payload(2000)).await;
    assert_eq!(
        (first["version"].as_u64(), second["version"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(first["digest"], sha256_of(&payload(1000)));
    assert_eq!(first["stage"], "development");
    assert_eq!(first["created_by"], "dev");
    assert_eq!(first["lineage"]["parameters"]["depth"], "6");
    let archived = app
        .request(
            Method::POST,
            "/api/v1/models/fraud/versions/2/archive",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(archived.json::<Value>().await.unwrap()["stage"], "archived");
    let third = app.push_version(&token, "fraud", payload(3000)).await;
    assert_eq!(third["version"], 3, "numbers are never reused");

    let unknown_digest = format!("sha256:{}", "0".repeat(64));
    let (status, code, body) = error_of(
        app.request(Method::POST, "/api/v1/models/fraud/versions", &token)
            .json(&json!({ "digest": unknown_digest }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "failed_precondition")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upload it first")
    );

    let list: Value = app
        .request(Method::GET, "/api/v1/models/fraud/versions?limit=2", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["versions"].as_array().unwrap().len(), 2);
    let cursor = list["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .request(
            Method::GET,
            &format!("/api/v1/models/fraud/versions?limit=2&cursor={cursor}"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["versions"][0]["version"], 3);
    assert!(rest.get("next_cursor").is_none());
    let (_, code, _) = error_of(
        app.request(
            Method::GET,
            "/api/v1/models/fraud/versions?cursor=%%%",
            &token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(code, "invalid_argument");
    app.stop().await;
}

#[tokio::test]
async fn identical_content_is_stored_once_and_downloads_support_ranges() {
    let app = spawn_app().await;
    let token = app.admin_token.clone();
    let bytes = payload(300_000);
    let first = app
        .upload(&token, bytes.clone(), Some(&sha256_of(&bytes)))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = app.upload(&token, bytes.clone(), None).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["newly_stored"], false);
    assert_eq!(files_under(&app.artifacts_dir()).len(), 1);

    app.create_model(&token, "ranges", "low").await;
    let version = app.push_version(&token, "ranges", bytes.clone()).await;
    let path = format!(
        "/api/v1/models/ranges/versions/{}/artifact",
        version["version"]
    );
    let whole = app
        .request(Method::GET, &path, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(
        whole.headers()["x-content-digest"],
        sha256_of(&bytes).as_str()
    );
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let partial = app
        .request(Method::GET, &path, &token)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(partial.headers()["content-range"], "bytes 1000-1999/300000");
    assert_eq!(partial.bytes().await.unwrap().as_ref(), &bytes[1000..2000]);
    let tail = app
        .request(Method::GET, &path, &token)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &bytes[bytes.len() - 10..]
    );
    let (status, code, _) = error_of(
        app.request(Method::GET, &path, &token)
            .header("range", "bytes=300000-")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
    );

    let by_digest = app
        .request(
            Method::GET,
            &format!("/api/v1/artifacts/{}", sha256_of(&bytes)),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(by_digest.bytes().await.unwrap().len(), bytes.len());
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_expected_digest_is_rejected_and_nothing_is_kept() {
    let app = spawn_app().await;
    let bytes = payload(50_000);
    let wrong = sha256_of(b"other content");
    let (status, code, body) = error_of(
        app.upload(&app.admin_token, bytes.clone(), Some(&wrong))
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "digest_mismatch")
    );
    assert_eq!(body["error"]["details"]["expected"], wrong);
    assert_eq!(body["error"]["details"]["actual"], sha256_of(&bytes));
    assert!(files_under(&app.artifacts_dir()).is_empty());
    let (status, _, _) = error_of(
        app.request(
            Method::GET,
            &format!("/api/v1/artifacts/{}", sha256_of(&bytes)),
            &app.admin_token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) =
        error_of(app.upload(&app.admin_token, bytes, Some("md5:abc")).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["field"], "expected_digest");
    app.stop().await;
}

#[tokio::test]
async fn uploads_over_the_limit_get_413_and_keep_nothing() {
    let app = spawn_app_with(AppOptions {
        max_upload_bytes: 1024 * 1024,
        ..AppOptions::default()
    })
    .await;
    // Declared length over the limit: refused before reading.
    let (status, code, body) = error_of(
        app.upload(&app.admin_token, payload(2 * 1024 * 1024), None)
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert_eq!(body["error"]["details"]["limit_bytes"], 1024 * 1024);
    // No declared length (chunked): refused once the count passes the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(payload(100_000))).collect();
    let response = app
        .request(Method::POST, "/api/v1/artifacts", &app.admin_token)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    eventually("no file is left in the artifact store", || {
        files_under(&app.artifacts_dir()).is_empty()
    })
    .await;
    app.stop().await;
}

/// Sends the head of an upload and part of its body on a raw socket, then vanishes.
async fn abandon_upload(app: &TestApp, declared: usize, sent: usize) {
    let mut socket = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let head = format!(
        "POST /api/v1/artifacts HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {declared}\r\n\r\n",
        app.address, app.admin_token
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&payload(sent)).await.unwrap();
    socket.flush().await.unwrap();
    drop(socket);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_nothing_behind() {
    let app = spawn_app().await;
    abandon_upload(&app, 30 * 1024 * 1024, 12 * 1024 * 1024).await;
    eventually("the partial upload is removed", || {
        files_under(&app.artifacts_dir()).is_empty()
    })
    .await;
    // And the server still works.
    let ok = app.upload(&app.admin_token, payload(10), None).await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    assert_eq!(files_under(&app.artifacts_dir()).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn path_like_names_never_escape_the_store() {
    let app = spawn_app().await;
    let token = app.admin_token.clone();
    for path in [
        "/api/v1/artifacts/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/artifacts/sha256:..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/v1/models/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/models/..%2F..%2Fetc%2Fpasswd/versions/1/artifact",
    ] {
        let response = app
            .http
            .get(format!("http://{}{path}", app.address))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{path}"
        );
    }
    let (status, _, _) = error_of(app.create_model(&token, "../../etc/passwd", "low").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Whatever a client calls its file, the store names it by digest alone.
    let uploaded = app
        .request(
            Method::POST,
            "/api/v1/artifacts?filename=../../etc/passwd",
            &token,
        )
        .header(
            "content-disposition",
            "attachment; filename=\"../../etc/passwd\"",
        )
        .body(b"root:x:0:0".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let files = files_under(app.data_dir.path());
    assert!(
        files
            .iter()
            .all(|file| !file.contains("passwd") && !file.contains("..")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|file| file.starts_with("artifacts/sha256/"))
    );
    app.stop().await;
}

#[tokio::test]
async fn listing_filters_and_paginates_models() {
    let app = spawn_app().await;
    let token = app.admin_token.clone();
    for (name, tier) in [
        ("a-one", "low"),
        ("a-two", "high"),
        ("b-three", "high"),
        ("c-four", "critical"),
    ] {
        assert_eq!(
            app.create_model(&token, name, tier).await.status(),
            StatusCode::CREATED
        );
    }
    app.request(Method::PUT, "/api/v1/models/b-three/tags/team", &token)
        .json(&json!({ "value": "risk" }))
        .send()
        .await
        .unwrap();
    let names = |query: &'static str| {
        let request = app.request(Method::GET, &format!("/api/v1/models?{query}"), &token);
        async move {
            let page: Value = request.send().await.unwrap().json().await.unwrap();
            page["models"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("name_prefix=a-").await, ["a-one", "a-two"]);
    assert_eq!(names("risk_tier=high").await, ["a-two", "b-three"]);
    assert_eq!(names("tag=team=risk").await, ["b-three"]);
    assert_eq!(names("owner=admin&limit=500").await.len(), 4);
    let first: Value = app
        .request(Method::GET, "/api/v1/models?limit=3", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .request(
            Method::GET,
            &format!("/api/v1/models?limit=3&cursor={cursor}"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["models"][0]["name"], "c-four");
    let (_, code, body) = error_of(
        app.request(Method::GET, "/api/v1/models?risk_tier=huge", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, "invalid_argument");
    assert_eq!(body["error"]["details"]["field"], "risk_tier");
    app.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_discards_an_upload_in_progress() {
    let app = spawn_app().await;
    let mut socket = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let head = format!(
        "POST /api/v1/artifacts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-length: {}\r\n\r\n",
        app.admin_token,
        50 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&payload(9 * 1024 * 1024)).await.unwrap();
    socket.flush().await.unwrap();
    let artifacts = app.artifacts_dir();
    // The upload is under way once its first part has reached storage.
    eventually("the upload has started writing", || {
        !files_under(&artifacts).is_empty()
    })
    .await;
    app.stop().await;
    eventually("the discarded upload is removed", || {
        files_under(&artifacts).is_empty()
    })
    .await;
    drop(socket);
}

#[tokio::test]
async fn the_api_works_the_same_on_postgresql() {
    let app = spawn_app_with(AppOptions {
        postgres: true,
        ..AppOptions::default()
    })
    .await;
    let token = app.user_with_token("pat", &["model_developer"]).await;
    assert_eq!(
        app.create_model(&token, "pg-model", "critical")
            .await
            .status(),
        StatusCode::CREATED
    );
    let version = app.push_version(&token, "pg-model", payload(4096)).await;
    assert_eq!(version["version"], 1);
    let (status, code, _) = error_of(app.create_model(&token, "pg-model", "low").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "already_exists")
    );
    let fetched: Value = app
        .request(Method::GET, "/api/v1/models/pg-model", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["version_count"], 1);
    app.stop().await;
}

/// A version's media type is what its download's `Content-Type` will say, so it must be one a header can
/// carry (a fuzzed one once gave downloads without a `Content-Type`).
#[tokio::test]
async fn a_versions_media_type_must_be_a_media_type() {
    let app = spawn_app().await;
    let token = app.admin_token.clone();
    app.create_model(&token, "churn", "low").await;
    let uploaded: Value = app
        .upload(&token, b"weights".to_vec(), None)
        .await
        .json()
        .await
        .unwrap();
    let create = |media_type: &str| {
        call(
            &app,
            Method::POST,
            "/api/v1/models/churn/versions",
            &token,
            Some(
                json!({ "digest": uploaded["digest"], "format": "onnx", "media_type": media_type }),
            ),
        )
    };
    for bad in ["", "onnx", "application/", "text/plain\u{7f}", "a/b\u{e9}"] {
        let (status, _, body) = error_of(create(bad).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
        assert_eq!(body["error"]["details"]["field"], "media_type");
    }
    assert_eq!(
        create("application/x-onnx; version=1").await.status(),
        StatusCode::CREATED
    );
    let download = app
        .request(
            Method::GET,
            "/api/v1/models/churn/versions/1/artifact",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        download.headers()["content-type"],
        "application/x-onnx; version=1"
    );
}
