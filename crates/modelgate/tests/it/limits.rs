//! The holes found when the server was attacked (issue "Trust core, second pass"): datasets that were memory
//! bombs, attestations of suspended versions that verified, a first admin token lost to a failed start,
//! world-readable data files, two servers on one data directory, error answers without the error shape,
//! unbounded CEL checks, and internal error text reaching clients.

use crate::support::*;
use modelgate_server::{DatasetLimits, PreparedServer, ServeOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_modelgate");

async fn upload_bytes(app: &TestApp, token: &str, bytes: Vec<u8>) -> String {
    let response = app.upload(token, bytes, None).await;
    assert!(response.status().is_success(), "{}", response.status());
    response.json::<Value>().await.unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn register(app: &TestApp, token: &str, name: &str, csv: Vec<u8>) -> reqwest::Response {
    let digest = upload_bytes(app, token, csv).await;
    call(
        app,
        Method::POST,
        "/api/v1/datasets",
        token,
        Some(json!({
            "name": name, "digest": digest,
            "schema": { "label": "default", "positive_label": "1" },
        })),
    )
    .await
}

fn small_csv() -> Vec<u8> {
    let mut text = String::from("default,note,income\n");
    for row in 0..20 {
        text.push_str(&format!(
            "{},{},{}\n",
            row % 2,
            "n".repeat(200 + row),
            row * 10
        ));
    }
    text.into_bytes()
}

/// Asserts a 413 `payload_too_large` that names `flag` in its message and `details.limit`.
async fn assert_refused_by(response: reqwest::Response, flag: &str) -> Value {
    let (status, code, body) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["limit"], flag, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(flag),
        "{body}"
    );
    body
}

#[tokio::test]
async fn datasets_past_a_limit_are_refused_naming_the_flag_that_raises_it() {
    let app = spawn_app_with(AppOptions {
        dataset_limits: DatasetLimits {
            max_rows: 30,
            ..DatasetLimits::DEFAULT
        },
        ..AppOptions::default()
    })
    .await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;

    // 100,000 columns (defaults allow 1,000): refused in the header.
    let names: Vec<String> = (0..100_000).map(|index| format!("c{index}")).collect();
    let wide = format!(
        "default,{}\n1,{}\n",
        names.join(","),
        vec!["0"; 100_000].join(",")
    );
    let body = assert_refused_by(
        register(&app, &developer, "wide", wide.into_bytes()).await,
        "--max-dataset-columns",
    )
    .await;
    assert_eq!(body["error"]["details"]["line"], 1, "{body}");

    // One cell of 1 MiB (defaults allow 64 KiB).
    let mut huge = String::from("default,note\n1,short\n0,");
    huge.push_str(&"x".repeat(1024 * 1024));
    huge.push('\n');
    let body = assert_refused_by(
        register(&app, &developer, "huge", huge.into_bytes()).await,
        "--max-dataset-cell-bytes",
    )
    .await;
    assert_eq!(
        (
            &body["error"]["details"]["line"],
            &body["error"]["details"]["column"]
        ),
        (&json!(3), &json!("note")),
        "{body}"
    );

    // 31 rows where the server was started with 30.
    let mut rows = String::from("default\n");
    for row in 0..31 {
        rows.push_str(&format!("{}\n", row % 2));
    }
    assert_refused_by(
        register(&app, &developer, "long", rows.into_bytes()).await,
        "--max-dataset-rows",
    )
    .await;

    // Nothing of it was registered; a file within the limits still is.
    let listed = call_json(&app, Method::GET, "/api/v1/datasets", &developer, None).await;
    assert_eq!(listed["datasets"], json!([]), "{listed}");
    assert_eq!(
        register(&app, &developer, "fine", small_csv())
            .await
            .status(),
        StatusCode::CREATED
    );
    app.stop().await;
}

#[tokio::test]
async fn a_parquet_dataset_with_more_rows_than_allowed_is_refused() {
    use arrow_array::{ArrayRef, Int64Array};
    let app = spawn_app_with(AppOptions {
        dataset_limits: DatasetLimits {
            max_rows: 1000,
            ..DatasetLimits::DEFAULT
        },
        ..AppOptions::default()
    })
    .await;
    let labels: ArrayRef = std::sync::Arc::new(Int64Array::from(
        (0..1001).map(|row| row % 2).collect::<Vec<i64>>(),
    ));
    let batch = arrow_array::RecordBatch::try_from_iter([("default", labels)]).unwrap();
    let mut file = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let body = assert_refused_by(
        register(&app, &app.admin_token, "many", file).await,
        "--max-dataset-rows",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1001 rows"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_profile_larger_than_allowed_is_refused_and_categories_are_stored_short() {
    let app = spawn_app_with(AppOptions {
        dataset_limits: DatasetLimits {
            max_profile_bytes: 200,
            ..DatasetLimits::DEFAULT
        },
        ..AppOptions::default()
    })
    .await;
    assert_refused_by(
        register(&app, &app.admin_token, "profiled", small_csv()).await,
        "--max-dataset-profile-bytes",
    )
    .await;
    app.stop().await;

    let app = spawn_app().await;
    let created = register(&app, &app.admin_token, "profiled", small_csv()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let dataset = call_json(
        &app,
        Method::GET,
        "/api/v1/datasets/profiled",
        &app.admin_token,
        None,
    )
    .await;
    let top = dataset["profile"]["columns"]["note"]["top"]
        .as_array()
        .unwrap();
    assert!(!top.is_empty() && top.len() <= 20, "{top:?}");
    for entry in top {
        let value = entry[0].as_str().unwrap();
        assert!(value.chars().count() <= 65, "{value}");
    }
    app.stop().await;
}

#[tokio::test]
async fn dataset_listings_carry_no_profile_and_one_dataset_keeps_it() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    assert_eq!(
        register(&app, &developer, "holdout", small_csv())
            .await
            .status(),
        StatusCode::CREATED
    );
    let listed = call_json(&app, Method::GET, "/api/v1/datasets", &developer, None).await;
    let entry = &listed["datasets"][0];
    assert_eq!(entry["name"], "holdout", "{listed}");
    assert_eq!(entry["rows"], 20);
    assert!(entry.get("profile").is_none(), "{listed}");
    let one = call_json(
        &app,
        Method::GET,
        "/api/v1/datasets/holdout",
        &developer,
        None,
    )
    .await;
    assert_eq!(one["profile"]["rows"], 20, "{one}");
    app.stop().await;
}

#[tokio::test]
async fn only_the_roles_the_policy_names_may_register_datasets_and_refusals_are_audited() {
    let app = spawn_app().await;
    let nobody = app.user_with_token("nobody", &[]).await;
    let validator = app.user_with_token("val", &["validator"]).await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let (status, code, body) = error_of(register(&app, &nobody, "mine", small_csv()).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "permission_denied"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dataset_registrar_roles"),
        "{body}"
    );
    assert_eq!(
        register(&app, &validator, "theirs", small_csv())
            .await
            .status(),
        StatusCode::CREATED
    );
    // The policy decides: only compliance now.
    app.edit_policy(
        "dataset_registrar_roles = [\"model_developer\", \"validator\"]",
        "dataset_registrar_roles = [\"compliance\"]",
    )
    .await;
    let (status, _, _) = error_of(register(&app, &developer, "dev", small_csv()).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        register(&app, &app.admin_token, "admins-may", small_csv())
            .await
            .status(),
        StatusCode::CREATED
    );

    let events = call_json(
        &app,
        Method::GET,
        "/api/v1/audit/events?action=dataset.register&limit=100",
        &app.admin_token,
        None,
    )
    .await;
    let outcomes: Vec<(String, String, String)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            (
                event["actor"].as_str().unwrap_or_default().to_owned(),
                event["target"].as_str().unwrap_or_default().to_owned(),
                event["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("nobody", "dataset/mine", "denied"),
        ("dev", "dataset/dev", "denied"),
        ("val", "dataset/theirs", "ok"),
    ] {
        assert!(
            outcomes
                .iter()
                .any(|(actor, target, outcome)| actor == expected.0
                    && target == expected.1
                    && outcome == expected.2),
            "{expected:?} not in {outcomes:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn error_answers_have_the_json_error_shape_whoever_makes_them() {
    let app = spawn_app().await;
    // A 3 MB JSON body: 413, not 400.
    let big = json!({ "name": "m", "risk_tier": "low", "description": "d".repeat(3_000_000) });
    let (status, code, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/models",
            &app.admin_token,
            Some(big),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{body}"
    );

    // A 1 MB header, and too many headers: 431 with the error body.
    let response = app
        .request(Method::GET, "/api/v1/whoami", &app.admin_token)
        .header("x-padding", "p".repeat(1_000_000))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large"
        )
    );
    let mut request = app.request(Method::GET, "/api/v1/whoami", &app.admin_token);
    for index in 0..150 {
        request = request.header(format!("x-extra-{index}"), "1");
    }
    let (status, code, _) = error_of(request.send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large"
        )
    );

    // The Swagger UI's own 404 (an unknown file under /api/docs) and an unknown API route.
    for path in ["/api/docs/no-such-file.js", "/api/v2/no/such/route"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        let (status, code, body) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}: {body}"
        );
    }
    // Outside the API, an unknown path is the web UI's page in its layout.
    let page = app
        .http
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("There is no page at /no/such/route.")
    );
    // The UI itself still loads.
    let ui = app.http.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(ui.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn internal_errors_reach_the_client_without_their_text() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    app.create_model(&developer, "lost", "low").await;
    app.push_version(&developer, "lost", payload(100)).await;
    for file in files_under(&app.artifacts_dir()) {
        std::fs::remove_file(app.artifacts_dir().join(file)).unwrap();
    }
    let response = call(
        &app,
        Method::GET,
        "/api/v1/models/lost/versions/1/artifact",
        &developer,
        None,
    )
    .await;
    let (status, code, body) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal")
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("missing from storage") && !message.contains("sha256"),
        "{body}"
    );
    assert!(message.contains("server log"), "{body}");
    assert!(body["error"]["details"].is_null(), "{body}");
    app.stop().await;
}

fn serve_options(data_dir: &Path, listen: &str) -> ServeOptions {
    ServeOptions::new(data_dir.to_path_buf(), listen.to_owned())
}

#[tokio::test]
async fn a_second_server_on_one_data_directory_is_refused_naming_the_first() {
    let app = spawn_app().await;
    let error =
        match PreparedServer::prepare(&serve_options(app.data_dir.path(), "127.0.0.1:0")).await {
            Ok(_) => panic!("a second server started on the same data directory"),
            Err(error) => error.to_string(),
        };
    assert!(error.contains("another modelgate server"), "{error}");
    assert!(
        error.contains(&format!("(pid {})", std::process::id())),
        "{error}"
    );
    // The first still serves.
    let whoami = call_json(&app, Method::GET, "/api/v1/whoami", &app.admin_token, None).await;
    assert_eq!(whoami["user"]["username"], "admin");
    app.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_are_private_and_loose_ones_are_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let parent = tempfile::tempdir().unwrap();
    let fresh = parent.path().join("fresh");
    let server = PreparedServer::prepare(&serve_options(&fresh, "127.0.0.1:0"))
        .await
        .unwrap();
    assert_eq!(mode(&fresh), 0o700);
    for file in ["modelgate.db", "modelgate.db-wal", "modelgate.lock"] {
        let path = fresh.join(file);
        if path.exists() || file == "modelgate.db" {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    drop(server);

    // A directory an older version left readable by all is tightened at start.
    let loose = parent.path().join("loose");
    std::fs::create_dir(&loose).unwrap();
    std::fs::write(loose.join("modelgate.db"), b"").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        loose.join("modelgate.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let server = PreparedServer::prepare(&serve_options(&loose, "127.0.0.1:0"))
        .await
        .unwrap();
    assert_eq!(mode(&loose), 0o700);
    assert_eq!(mode(&loose.join("modelgate.db")), 0o600);
    drop(server);
}

#[tokio::test]
async fn the_first_admin_is_created_only_by_a_start_that_can_serve() {
    let data_dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let failed = PreparedServer::prepare(&serve_options(data_dir.path(), &address)).await;
    assert!(
        matches!(failed, Err(modelgate_server::ServeError::Listen { .. })),
        "the port is taken"
    );
    drop(taken);
    let server = PreparedServer::prepare(&serve_options(data_dir.path(), "127.0.0.1:0"))
        .await
        .unwrap();
    let token = server
        .bootstrap_token()
        .expect("the start that can serve creates the admin and shows its token")
        .to_owned();
    assert!(server.admin_notice().is_none());
    let address = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    // Revoke the only token, then start again: the server says how to make a new one.
    let http = reqwest::Client::new();
    let tokens: Value = http
        .get(format!("http://{address}/api/v1/tokens"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = tokens["tokens"][0]["id"].as_str().unwrap().to_owned();
    let revoked = http
        .post(format!("http://{address}/api/v1/tokens/{id}/revoke"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();

    let server = PreparedServer::prepare(&serve_options(data_dir.path(), "127.0.0.1:0"))
        .await
        .unwrap();
    assert!(server.bootstrap_token().is_none());
    let notice = server
        .admin_notice()
        .expect("a start with no usable admin token says so");
    assert!(
        notice.contains(&format!(
            "modelgate admin create-token --data-dir {} --username admin",
            data_dir.path().display()
        )),
        "{notice}"
    );
}

fn cli(app: &TestApp, config: &Path, args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .env("MODELGATE_SERVER", format!("http://{}", app.address))
        .env("MODELGATE_TOKEN", &app.admin_token)
        .env("MODELGATE_CONFIG_DIR", config)
        .env_remove("MODELGATE_DATABASE_URL")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// The CLI runs as a blocking child process while this runtime serves it: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attest_verify_fails_for_a_suspended_version_and_after_not_after() {
    let app = spawn_app().await;
    let work = tempfile::tempdir().unwrap();
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    app.create_model(&developer, "pricing", "low").await;
    app.push_version(&developer, "pricing", payload(64)).await;
    let staged = call_json(
        &app,
        Method::POST,
        "/api/v1/requests",
        &developer,
        Some(json!({"model": "pricing", "version": 1, "stage": "staging", "justification": "x"})),
    )
    .await;
    assert_eq!(staged["state"], "approved", "{staged}");

    // One key file for every verifying command.
    let key = work.path().join("server.pub");
    let saved = cli(
        &app,
        work.path(),
        &["keys", "show", "--out", key.to_str().unwrap()],
    );
    assert!(saved.status.success(), "{}", text(&saved));
    let printed = cli(&app, work.path(), &["keys", "show"]);
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        std::fs::read_to_string(&key).unwrap(),
        "`keys show > FILE` writes the same key file"
    );
    let audit = cli(
        &app,
        work.path(),
        &["audit", "verify", "--public-key", key.to_str().unwrap()],
    );
    assert!(audit.status.success(), "{}", text(&audit));

    let attestation = |name: &str| {
        let path = work.path().join(name);
        let fetched = cli(
            &app,
            work.path(),
            &[
                "attest",
                "get",
                "pricing",
                "1",
                "--stage",
                "staging",
                "--out",
                path.to_str().unwrap(),
            ],
        );
        assert!(fetched.status.success(), "{}", text(&fetched));
        path
    };
    let verify = |file: &Path, extra: &[&str]| {
        let mut args = vec![
            "attest",
            "verify",
            file.to_str().unwrap(),
            "--public-key",
            key.to_str().unwrap(),
            "--stage",
            "staging",
        ];
        args.extend_from_slice(extra);
        cli(&app, work.path(), &args)
    };
    let before = attestation("before.json");
    let valid = verify(&before, &[]);
    assert!(valid.status.success(), "{}", text(&valid));
    let later = verify(&before, &["--at", "2099-01-01T00:00:00Z"]);
    assert_eq!(later.status.code(), Some(3), "{}", text(&later));
    assert!(text(&later).contains("expired"), "{}", text(&later));
    let earlier = verify(&before, &["--at", "2027-01-01"]);
    assert!(earlier.status.success(), "{}", text(&earlier));
    let bad_time = verify(&before, &["--at", "tomorrow"]);
    assert_eq!(bad_time.status.code(), Some(1), "{}", text(&bad_time));

    let suspended = call(
        &app,
        Method::POST,
        "/api/v1/models/pricing/versions/1/suspend",
        &app.admin_token,
        Some(json!({"reason": "drift above limit"})),
    )
    .await;
    assert_eq!(suspended.status(), StatusCode::OK);
    let after = attestation("after.json");
    let refused = verify(&after, &[]);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("suspended") && stderr.contains("drift above limit"),
        "{stderr}"
    );
    app.stop().await;
}

// The CLI runs as a blocking child process while this runtime serves it: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_costly_cel_check_is_refused_by_policy_check_and_by_the_server() {
    let app = spawn_app().await;
    let work = tempfile::tempdir().unwrap();
    let list = format!("[{}]", vec!["1"; 300].join(","));
    let costly = format!("{list}.all(a, {list}.all(b, a + b > 0))");
    let text_of_policy = modelgate_policy::DEFAULT_POLICY_TOML.replacen(
        "expr = \"card.complete\"",
        &format!("expr = \"{costly}\""),
        1,
    );
    let file = work.path().join("costly.toml");
    std::fs::write(&file, &text_of_policy).unwrap();
    let checked = cli(
        &app,
        work.path(),
        &["policy", "check", file.to_str().unwrap()],
    );
    assert_eq!(checked.status.code(), Some(1), "{}", text(&checked));
    assert!(text(&checked).contains("too costly"), "{}", text(&checked));
    let (status, _, body) = error_of(
        call(
            &app,
            Method::PUT,
            "/api/v1/policy",
            &app.admin_token,
            Some(json!({ "text": text_of_policy })),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("too costly"), "{body}");
    app.stop().await;
}
