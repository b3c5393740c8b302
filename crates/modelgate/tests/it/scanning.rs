//! Artifact scanning through the real server (issue 15, part 3): every upload is scanned before it is
//! answered, the report is a version's evidence, the default policy keeps a dangerous pickle out of
//! high-risk production, artifacts left unscanned are scanned by the sweeper after a restart, and the
//! CLI's `version scan` and `admin rescan` print the reports.

use crate::cli::BINARY;
use crate::support::{call, call_json, payload, spawn_app};
use modelgate_server::{PreparedServer, ServeOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn corpus(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../modelgate-scan/fixtures/corpus")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

async fn upload(app: &crate::support::TestApp, token: &str, bytes: Vec<u8>) -> Value {
    let response = app.upload(token, bytes, None).await;
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

async fn register(app: &crate::support::TestApp, token: &str, model: &str, digest: &Value) {
    let created = call(
        app,
        Method::POST,
        &format!("/api/v1/models/{model}/versions"),
        token,
        Some(json!({ "digest": digest, "format": "pickle" })),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_upload_is_scanned_before_it_is_answered_and_the_report_is_evidence() {
    let app = spawn_app().await;
    let developer = app
        .user_with_token("dev", &["model_developer", "validator"])
        .await;
    app.create_model(&developer, "churn", "high").await;

    let hostile = upload(&app, &developer, corpus("nested_reduce_os_system_p5.pkl")).await;
    assert_eq!(hostile["scan_verdict"], "dangerous");
    register(&app, &developer, "churn", &hostile["digest"]).await;
    let report = call_json(
        &app,
        Method::GET,
        "/api/v1/models/churn/versions/1/scan",
        &developer,
        None,
    )
    .await;
    assert_eq!(report["verdict"], "dangerous");
    assert_eq!(report["artifact_digest"], hostile["digest"]);
    assert_eq!(report["outdated"], false);
    assert!(
        report["report_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let findings = report["findings"].as_array().unwrap();
    let system = findings
        .iter()
        .find(|finding| finding["kind"] == "import" && finding["name"] == "system")
        .unwrap_or_else(|| panic!("no import of system among {findings:?}"));
    assert!(
        ["os", "posix"].contains(&system["module"].as_str().unwrap()),
        "{system}"
    );
    assert_eq!(system["severity"], "dangerous");
    assert!(system["offset"].as_u64().unwrap() > 0);

    // The default policy's high-risk production gate names the scan among what fails.
    let explanation = call_json(
        &app,
        Method::GET,
        "/api/v1/models/churn/versions/1/explain?stage=production",
        &developer,
        None,
    )
    .await;
    let scan_check = explanation["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "artifact_scan_clean")
        .unwrap_or_else(|| panic!("no scan check in {explanation}"))
        .clone();
    assert_eq!(scan_check["status"], "failed", "{scan_check}");

    // A benign scikit-learn pickle is clean and passes that check; bytes of no known format are unscanned.
    let benign = upload(&app, &developer, corpus("sklearn_pipeline_p4.pkl")).await;
    assert_eq!(benign["scan_verdict"], "clean");
    register(&app, &developer, "churn", &benign["digest"]).await;
    let explanation = call_json(
        &app,
        Method::GET,
        "/api/v1/models/churn/versions/2/explain?stage=production",
        &developer,
        None,
    )
    .await;
    assert!(
        explanation["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|check| check["name"] == "artifact_scan_clean" && check["status"] == "passed"),
        "{explanation}"
    );
    let unknown = upload(&app, &developer, payload(300)).await;
    assert_eq!(unknown["scan_verdict"], "unscanned");

    // The same bytes again: stored once, scanned once.
    let again = upload(&app, &developer, corpus("nested_reduce_os_system_p5.pkl")).await;
    assert_eq!(again["newly_stored"], false);
    assert_eq!(again["scan_verdict"], "dangerous");
    let scans = call_json(
        &app,
        Method::GET,
        "/api/v1/audit/events?action=artifact.scan",
        &app.admin_token,
        None,
    )
    .await;
    assert_eq!(
        scans["events"].as_array().unwrap().len(),
        3,
        "one audited scan per artifact: {scans}"
    );
    app.stop().await;
}

/// A server on `data_dir` until the returned sender is used.
async fn serve(
    data_dir: &Path,
) -> (
    String,
    Option<String>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let server = PreparedServer::prepare(&ServeOptions::new(
        data_dir.to_path_buf(),
        "127.0.0.1:0".to_owned(),
    ))
    .await
    .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let bootstrap = server.bootstrap_token().map(str::to_owned);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (base, bootstrap, stop, running)
}

/// An artifact stored without a report (stored before scanning existed, or the server died between
/// storing and scanning) is scanned by the background sweeper when the server starts again.
#[tokio::test]
async fn the_sweeper_scans_what_a_crash_left_unscanned() {
    let data_dir = tempfile::tempdir().unwrap();
    let (base, bootstrap, stop, running) = serve(data_dir.path()).await;
    let admin = bootstrap.unwrap();
    let http = reqwest::Client::new();
    let uploaded: Value = http
        .post(format!("{base}/api/v1/artifacts"))
        .bearer_auth(&admin)
        .body(corpus("zip_slip.zip"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let digest = uploaded["digest"].as_str().unwrap().to_owned();
    assert_ne!(uploaded["scan_verdict"], "clean");
    http.post(format!("{base}/api/v1/models"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "slip", "risk_tier": "low", "description": "test model" }))
        .send()
        .await
        .unwrap();
    let created = http
        .post(format!("{base}/api/v1/models/slip/versions"))
        .bearer_auth(&admin)
        .json(&json!({ "digest": digest, "format": "zip" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let _ = stop.send(());
    running.await.unwrap();

    // Remove the report behind the server's back.
    let database = data_dir.path().join("modelgate.db");
    {
        sqlx::any::install_default_drivers();
        let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&format!(
            "sqlite://{}",
            database.display()
        ))
        .await
        .unwrap();
        sqlx::query("DELETE FROM artifact_scans")
            .execute(&mut connection)
            .await
            .unwrap();
    }

    let (base, _, stop, running) = serve(data_dir.path()).await;
    // Up to 400 polls 50 ms apart: 20 s.
    let mut polls = 0;
    let report = loop {
        let response = http
            .get(format!("{base}/api/v1/models/slip/versions/1/scan"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            break response.json::<Value>().await.unwrap();
        }
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("has not been scanned yet"),
            "{body}"
        );
        polls += 1;
        assert!(
            polls < 400,
            "the sweeper did not scan the artifact within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(report["verdict"], "dangerous", "{report}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|finding| finding["kind"] == "archive_path_escape"),
        "{report}"
    );
    let _ = stop.send(());
    running.await.unwrap();
}

fn run(args: &[&str], server: &str, token: &str, config: &Path) -> std::process::Output {
    std::process::Command::new(BINARY)
        .args(args)
        .env("MODELGATE_SERVER", server)
        .env("MODELGATE_TOKEN", token)
        .env("MODELGATE_CONFIG_DIR", config)
        .env_remove("MODELGATE_DATABASE_URL")
        .output()
        .unwrap()
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

// The CLI runs as a blocking child process while this runtime serves it: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_pushes_shows_the_scan_and_rescans() {
    let mut app = spawn_app().await;
    let work = tempfile::tempdir().unwrap();
    let server = format!("http://{}", app.address);
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    app.create_model(&developer, "pricing", "low").await;
    let file: PathBuf = work.path().join("model.pkl");
    std::fs::write(&file, corpus("subprocess_popen_p4.pkl")).unwrap();
    let pushed = run(
        &["version", "push", "pricing", file.to_str().unwrap()],
        &server,
        &developer,
        work.path(),
    );
    stdout(&pushed);
    let notice = String::from_utf8_lossy(&pushed.stderr);
    assert!(notice.contains("verdict dangerous"), "{notice}");

    let shown = stdout(&run(
        &["version", "scan", "pricing", "1"],
        &server,
        &developer,
        work.path(),
    ));
    assert!(
        shown.contains("verdict") && shown.contains("dangerous"),
        "{shown}"
    );
    assert!(shown.contains("subprocess.Popen"), "{shown}");
    let json: Value = serde_json::from_str(&stdout(&run(
        &["version", "scan", "pricing", "1", "--output", "json"],
        &server,
        &developer,
        work.path(),
    )))
    .unwrap();
    assert_eq!(json["verdict"], "dangerous");
    let finding = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["module"] == "subprocess")
        .unwrap_or_else(|| panic!("{json}"));
    for field in ["kind", "module", "name", "path", "offset"] {
        assert!(finding.get(field).is_some(), "{field} missing: {finding}");
    }
    // Kept past the server's stop, which would remove its temporary folder.
    // `--request` opens the request right after registering; low risk into staging needs nothing more.
    std::fs::write(&file, corpus("sklearn_pipeline_p2.pkl")).unwrap();
    let requested: Value = serde_json::from_str(&stdout(&run(
        &[
            "--output",
            "json",
            "version",
            "push",
            "pricing",
            file.to_str().unwrap(),
            "--request",
            "staging",
            "--justification",
            "nightly build",
        ],
        &server,
        &developer,
        work.path(),
    )))
    .unwrap();
    assert_eq!(
        (
            &requested["version"],
            &requested["target_stage"],
            &requested["state"]
        ),
        (&json!(2), &json!("staging"), &json!("approved")),
        "{requested}"
    );
    let missing_reason = run(
        &[
            "version",
            "push",
            "pricing",
            file.to_str().unwrap(),
            "--request",
            "staging",
        ],
        &server,
        &developer,
        work.path(),
    );
    assert_eq!(
        missing_reason.status.code(),
        Some(2),
        "--request needs --justification"
    );
    let data_dir = std::mem::replace(&mut app.data_dir, tempfile::tempdir().unwrap());
    app.stop().await;

    let rescanned = std::process::Command::new(BINARY)
        .args([
            "admin",
            "rescan",
            "--data-dir",
            data_dir.path().to_str().unwrap(),
        ])
        .env_remove("MODELGATE_DATABASE_URL")
        .output()
        .unwrap();
    let summary = stdout(&rescanned);
    assert!(
        summary.contains(
            "2 artifacts scanned (1 clean, 1 dangerous); 0 had no report, 0 reports changed"
        ),
        "{summary}"
    );
}
