//! ONNX Runtime for a newcomer: `modelgate runtime fetch` brings the pinned wheel from PyPI (SHA-256
//! checked) into the data directory, `runtime show` finds it there, and `serve` on that data directory —
//! with no ORT_DYLIB_PATH and `--offline` — runs a model-mode evaluation. Needs PyPI (one of the
//! registries CI reaches); without it the test fails, it does not skip.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_modelgate");

fn modelgate(args: &[&str]) -> std::process::Output {
    Command::new(BINARY)
        .args(args)
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("MODELGATE_ONNXRUNTIME_LIBRARY")
        .output()
        .unwrap()
}

fn sha256_file(path: &std::path::Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test]
async fn a_fetched_runtime_serves_model_mode_evaluations() {
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().to_str().unwrap();
    let fetched = modelgate(&["runtime", "fetch", "--data-dir", data]);
    assert!(
        fetched.status.success(),
        "runtime fetch needs PyPI: {}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    let library = std::path::PathBuf::from(String::from_utf8(fetched.stdout).unwrap().trim());
    assert_eq!(
        library,
        data_dir.path().join("onnxruntime/libonnxruntime.so.1.32.0")
    );
    if let Some(reference) = std::env::var_os("ORT_DYLIB_PATH") {
        assert_eq!(
            sha256_file(&library),
            sha256_file(std::path::Path::new(&reference)),
            "the fetched library is the one scripts/test unpacks from the same wheel"
        );
    }
    let shown = modelgate(&["runtime", "show", "--data-dir", data]);
    assert!(shown.status.success());
    assert_eq!(
        String::from_utf8(shown.stdout).unwrap().trim(),
        library.to_str().unwrap()
    );
    assert!(String::from_utf8_lossy(&shown.stderr).contains("the data directory"));

    // The README's server on this data directory: no runtime configured, and nothing fetched again.
    let mut child = Command::new(BINARY)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--offline",
            "--data-dir",
            data,
        ])
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("MODELGATE_ONNXRUNTIME_LIBRARY")
        .env_remove("MODELGATE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = mpsc::channel::<String>();
    for stream in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
    }
    let (mut url, mut token) = (None, None);
    while url.is_none() || token.is_none() {
        let line = receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("the server prints its token and address");
        if line.starts_with("mgt_") {
            token = Some(line.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("modelgate listening on ") {
            url = Some(rest.split_whitespace().next().unwrap().to_owned());
        }
    }
    let (url, token) = (url.unwrap(), token.unwrap());
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{url}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let upload = |bytes: Vec<u8>| {
        http.post(format!("{url}/api/v1/artifacts"))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
    };
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../modelgate-onnx/fixtures");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("expected.json")).unwrap()).unwrap();
    let mut csv = String::from("f0,f1,f2,f3,label\n");
    for (index, row) in expected["inputs"].as_array().unwrap().iter().enumerate() {
        let values: Vec<String> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|value| format!("{}", value.as_f64().unwrap() as f32))
            .collect();
        csv.push_str(&format!("{},{}\n", values.join(","), index % 2));
    }
    let dataset: Value = upload(csv.into_bytes())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let registered = post(
        "/api/v1/datasets",
        json!({ "name": "grid", "digest": dataset["digest"],
                "schema": { "label": "label", "features": ["f0", "f1", "f2", "f3"], "positive_label": "1" } }),
    )
    .await
    .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let created = post("/api/v1/models", json!({ "name": "m", "risk_tier": "low" }))
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let artifact: Value = upload(std::fs::read(fixtures.join("gradient_boosting.onnx")).unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let version = post(
        "/api/v1/models/m/versions",
        json!({ "digest": artifact["digest"], "format": "onnx" }),
    )
    .await
    .unwrap();
    assert_eq!(version.status(), StatusCode::CREATED);
    let evaluation = post(
        "/api/v1/evaluations",
        json!({ "wait": true, "model": "m", "version": 1, "dataset": "grid" }),
    )
    .await
    .unwrap();
    let status = evaluation.status();
    let body: Value = evaluation.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["mode"], "model");
    child.kill().unwrap();
    child.wait().unwrap();
}
