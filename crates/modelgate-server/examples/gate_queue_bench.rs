//! How long opening a request takes when its gate names 100 evaluations (issue 15, "Speed": a 100-evaluation
//! auto-run queues in < 100 ms). A real server on 127.0.0.1 with a fresh SQLite data directory; the policy's
//! low-tier staging gate names 100 evaluations (one dataset, bootstrap 0 to 99, so each is a distinct run);
//! each round registers a new version and times `POST /api/v1/requests`, which checks and queues all 100
//! jobs before it answers. The jobs then run in the background (one at a time; these versions are not ONNX
//! models, so each fails at once), and the next round waits until they have ended: the figure is the
//! queueing, not the evaluations.
//!
//! Usage: `gate_queue_bench [ROUNDS]` (default 10).
// Measuring elapsed time is what this file is for.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelgate_server::{PreparedServer, ServeOptions};
use serde_json::{Value, json};
use std::time::Instant;

const EVALUATIONS: usize = 100;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|text| text.parse().expect("ROUNDS is a number"))
        .unwrap_or(10);
    let data_dir = tempfile::tempdir().unwrap();
    let server = PreparedServer::prepare(&ServeOptions::new(
        data_dir.path().to_path_buf(),
        "127.0.0.1:0".to_owned(),
    ))
    .await
    .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let admin = server.bootstrap_token().unwrap().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&admin);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let upload = |bytes: Vec<u8>| {
        http.post(format!("{base}/api/v1/artifacts"))
            .bearer_auth(&admin)
            .body(bytes)
            .send()
    };

    let mut csv = String::from("f0,group,label\n");
    for row in 0..200 {
        csv.push_str(&format!("{},{},{}\n", row, row % 2, row % 3 % 2));
    }
    let dataset: Value = upload(csv.into_bytes())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let registered = call(
        reqwest::Method::POST,
        "/api/v1/datasets",
        Some(json!({ "name": "holdout", "digest": dataset["digest"],
            "schema": { "label": "label", "features": ["f0"], "sensitive": ["group"], "positive_label": "1" } })),
    )
    .await
    .unwrap();
    assert!(
        registered.status().is_success(),
        "{}",
        registered.text().await.unwrap()
    );
    let policy: Value = call(reqwest::Method::GET, "/api/v1/policy", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let named: Vec<String> = (0..EVALUATIONS)
        .map(|bootstrap| format!("{{ dataset = \"holdout\", bootstrap = {bootstrap} }}"))
        .collect();
    let gate = "tier = \"low\"\nstage = \"staging\"\n";
    let text = policy["text"].as_str().unwrap().replacen(
        gate,
        &format!("{gate}evaluations = [{}]\n", named.join(", ")),
        1,
    );
    let applied = call(
        reqwest::Method::PUT,
        "/api/v1/policy",
        Some(json!({ "text": text })),
    )
    .await
    .unwrap();
    assert!(
        applied.status().is_success(),
        "{}",
        applied.text().await.unwrap()
    );
    let created = call(
        reqwest::Method::POST,
        "/api/v1/models",
        Some(json!({ "name": "queued", "owner": "admin", "risk_tier": "low", "description": "bench" })),
    )
    .await
    .unwrap();
    assert!(
        created.status().is_success(),
        "{}",
        created.text().await.unwrap()
    );

    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let artifact: Value = upload(format!("version {round}").into_bytes())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let version: Value = call(
            reqwest::Method::POST,
            "/api/v1/models/queued/versions",
            Some(json!({ "digest": artifact["digest"], "format": "binary" })),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let started = Instant::now();
        let opened: Value = call(
            reqwest::Method::POST,
            "/api/v1/requests",
            Some(
                json!({ "model": "queued", "version": version["version"], "stage": "staging",
                "justification": "bench" }),
            ),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let elapsed = started.elapsed();
        let queued = opened["evaluations"]
            .as_array()
            .map(|evaluations| {
                evaluations
                    .iter()
                    .filter(|evaluation| !evaluation["job"].is_null())
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(
            queued, EVALUATIONS,
            "every named evaluation got a job: {opened}"
        );
        times.push(elapsed.as_secs_f64() * 1e3);
        // Let this round's jobs end before the next is timed, so rounds do not compete.
        for _ in 0..600 {
            let mut waiting = 0;
            for job_state in ["queued", "running"] {
                let jobs: Value = call(
                    reqwest::Method::GET,
                    &format!("/api/v1/evaluation-jobs?state={job_state}"),
                    None,
                )
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
                waiting += jobs["jobs"].as_array().map_or(0, Vec::len);
            }
            if waiting == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |quantile: f64| {
        times[((times.len() as f64 * quantile).ceil() as usize).clamp(1, times.len()) - 1]
    };
    println!(
        "open a request whose gate names {EVALUATIONS} evaluations (checked and queued before the answer), {rounds} rounds: \
         p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms  (target < 100 ms)",
        at(0.5),
        at(0.95),
        times.last().copied().unwrap_or_default()
    );
    let _ = stop.send(());
    running.await.unwrap();
}
