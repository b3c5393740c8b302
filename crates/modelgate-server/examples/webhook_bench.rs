//! Webhooks and monitoring ingest, measured (issue 13, "Speed"):
//! 1. delivery: a real server (SQLite, fresh data directory) with one subscription to a receiver on
//!    127.0.0.1; EVENTS test events are recorded while the receiver is down (they queue behind the first
//!    one's retry, in one lane); then the receiver starts, and the figure is events per second from the
//!    first delivery received to the last (each signed, one HTTP POST per event, in order);
//! 2. the outbox's cost to a write: WRITES model-tag writes timed with no subscription, then with one
//!    subscription taking every event (the worker fans out and delivers while the writes go on);
//! 3. batch ingest: a batch of ROWS × 20 numeric features uploaded and judged against a registered
//!    reference of the same shape; MB/s of the upload and of the judgment (read, compare, store) — the
//!    first batch also profiles the reference (kept for the next); CSV, then the same rows as Parquet.
//!
//! Usage: `webhook_bench [EVENTS] [WRITES] [ROWS]` (defaults 5000, 2000, 500000).
// Measuring elapsed time is what this file is for.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelgate_server::webhooks::WebhookSettings;
use modelgate_server::{PreparedServer, ServeOptions};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Counter {
    received: AtomicU64,
    first: std::sync::Mutex<Option<Instant>>,
    last: std::sync::Mutex<Option<Instant>>,
    up: AtomicBool,
}

async fn receive(
    axum::extract::State(counter): axum::extract::State<Arc<Counter>>,
) -> axum::http::StatusCode {
    if !counter.up.load(Ordering::SeqCst) {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
    }
    let now = Instant::now();
    counter.first.lock().unwrap().get_or_insert(now);
    *counter.last.lock().unwrap() = Some(now);
    counter.received.fetch_add(1, Ordering::SeqCst);
    axum::http::StatusCode::NO_CONTENT
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(5000, |text| text.parse().unwrap());
    let writes: usize = args.next().map_or(2000, |text| text.parse().unwrap());
    let rows: usize = args.next().map_or(500_000, |text| text.parse().unwrap());

    let counter = Arc::new(Counter::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(counter.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let data_dir = tempfile::tempdir().unwrap();
    let server = PreparedServer::prepare(&ServeOptions {
        webhooks: WebhookSettings {
            allow_hosts: vec!["127.0.0.1".to_owned()],
            backoff_base: Duration::from_millis(1500),
            // The server's default poll interval (200 ms): what a deployment runs with.
            ..WebhookSettings::default()
        },
        max_dataset_bytes: 2 << 30,
        max_upload_bytes: 4 << 30,
        ..ServeOptions::new(data_dir.path().to_path_buf(), "127.0.0.1:0".to_owned())
    })
    .await
    .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let admin = server.bootstrap_token().unwrap().to_owned();
    tokio::spawn(async move { server.run(std::future::pending()).await.unwrap() });
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

    // 2a. Writes with no subscription.
    let created = call(
        reqwest::Method::POST,
        "/api/v1/models",
        Some(json!({ "name": "bench", "owner": "admin", "risk_tier": "low", "description": "bench" })),
    )
    .await
    .unwrap();
    assert!(created.status().is_success());
    let time_writes = |label: &'static str| {
        let call = &call;
        async move {
            let started = Instant::now();
            for index in 0..writes {
                let response = call(
                    reqwest::Method::PUT,
                    &format!("/api/v1/models/bench/tags/k{}", index % 50),
                    Some(json!({ "value": format!("{label}{index}") })),
                )
                .await
                .unwrap();
                assert!(
                    response.status().is_success(),
                    "{}",
                    response.text().await.unwrap()
                );
            }
            started.elapsed()
        }
    };
    let bare = time_writes("bare").await;

    // 1. Delivery throughput: events queue while the receiver answers 503, then drain.
    let subscribed: Value = call(
        reqwest::Method::POST,
        "/api/v1/webhooks",
        Some(json!({ "url": hook, "events": ["webhook.test"] })),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = subscribed["webhook"]["id"].as_i64().unwrap();
    for _ in 0..events {
        let response = call(
            reqwest::Method::POST,
            &format!("/api/v1/webhooks/{id}/test"),
            None,
        )
        .await
        .unwrap();
        assert!(response.status().is_success());
    }
    counter.up.store(true, Ordering::SeqCst);
    let waited = Instant::now();
    while counter.received.load(Ordering::SeqCst) < events {
        assert!(
            waited.elapsed() < Duration::from_secs(600),
            "deliveries stalled at {}",
            counter.received.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = counter.first.lock().unwrap().unwrap();
    let last = counter.last.lock().unwrap().unwrap();
    let span = last.duration_since(first).as_secs_f64().max(1e-9);

    // 2b. Writes while a subscription takes every event.
    let everything: Value = call(
        reqwest::Method::POST,
        "/api/v1/webhooks",
        Some(json!({ "url": hook, "events": ["*"] })),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(everything["webhook"]["id"].is_i64());
    let subscribed_writes = time_writes("subscribed").await;

    // 3. Batch ingest.
    let features: Vec<String> = (0..20).map(|index| format!("f{index}")).collect();
    let csv = |rows: usize, shift: f64| {
        let mut text = format!("{},label\n", features.join(","));
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for row in 0..rows {
            for column in 0..20 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let value = (state % 10_000) as f64 / 100.0 + shift * column as f64;
                text.push_str(&format!("{value:.2},"));
            }
            text.push_str(if row % 2 == 0 { "0\n" } else { "1\n" });
        }
        text.into_bytes()
    };
    let upload = |bytes: Vec<u8>| {
        http.post(format!("{base}/api/v1/artifacts"))
            .bearer_auth(&admin)
            .body(bytes)
            .send()
    };
    let reference: Value = upload(csv(rows, 0.0)).await.unwrap().json().await.unwrap();
    let registered = call(
        reqwest::Method::POST,
        "/api/v1/datasets",
        Some(json!({ "name": "reference", "digest": reference["digest"],
            "schema": { "label": "label", "features": features, "positive_label": "1" } })),
    )
    .await
    .unwrap();
    assert!(
        registered.status().is_success(),
        "{}",
        registered.text().await.unwrap()
    );
    let artifact: Value = upload(b"bench model".to_vec())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let version = call(
        reqwest::Method::POST,
        "/api/v1/models/bench/versions",
        Some(json!({ "digest": artifact["digest"], "format": "binary" })),
    )
    .await
    .unwrap();
    assert!(version.status().is_success());
    let opened: Value = call(
        reqwest::Method::POST,
        "/api/v1/requests",
        Some(
            json!({ "model": "bench", "version": 1, "stage": "staging", "justification": "bench" }),
        ),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(opened["state"], "approved");
    let ingest = |batch: Vec<u8>| {
        let upload = &upload;
        let call = &call;
        async move {
            let megabytes = batch.len() as f64 / 1e6;
            let started = Instant::now();
            let uploaded: Value = upload(batch).await.unwrap().json().await.unwrap();
            let upload_seconds = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let judged = call(
                reqwest::Method::POST,
                "/api/v1/models/bench/versions/1/monitoring/batches",
                Some(json!({ "digest": uploaded["digest"], "reference": "reference" })),
            )
            .await
            .unwrap();
            let judge_seconds = started.elapsed().as_secs_f64();
            assert_eq!(
                judged.status().as_u16(),
                201,
                "{}",
                judged.text().await.unwrap()
            );
            (megabytes, upload_seconds, judge_seconds)
        }
    };
    let (first_mb, first_upload, first_judge) = ingest(csv(rows, 0.05)).await;
    let (megabytes, upload_seconds, judge_seconds) = ingest(csv(rows, 0.07)).await;
    let parquet_batch = {
        use arrow_array::{ArrayRef, Float64Array, RecordBatch};
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut columns: Vec<(String, ArrayRef)> = Vec::new();
        for (column, name) in features.iter().enumerate() {
            let values: Vec<f64> = (0..rows)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % 10_000) as f64 / 100.0 + 0.09 * column as f64
                })
                .collect();
            columns.push((
                name.clone(),
                Arc::new(Float64Array::from(values)) as ArrayRef,
            ));
        }
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut buffer = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut buffer, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        buffer
    };
    let (parquet_mb, parquet_upload, parquet_judge) = ingest(parquet_batch).await;

    println!("| measurement | figure |");
    println!("|---|---|");
    println!(
        "| webhook delivery, one lane, {events} events to a local receiver | {:.0} events/s ({:.2} s) |",
        events as f64 / span,
        span
    );
    let per = |elapsed: Duration| elapsed.as_secs_f64() * 1000.0 / writes as f64;
    println!(
        "| a write (model tag), no subscription | {:.3} ms ({writes} writes) |",
        per(bare)
    );
    println!(
        "| a write (model tag), one subscription taking every event | {:.3} ms ({:+.1} %) |",
        per(subscribed_writes),
        (per(subscribed_writes) / per(bare) - 1.0) * 100.0
    );
    println!(
        "| first CSV batch, {rows} rows × 20 features, {first_mb:.0} MB: upload / judged with profiling the reference | {:.0} MB/s / {:.0} MB/s ({first_upload:.2} s + {first_judge:.2} s) |",
        first_mb / first_upload,
        first_mb / first_judge
    );
    println!(
        "| next CSV batch ({megabytes:.0} MB): upload / judged (read, compare, store) / together | {:.0} / {:.0} / {:.0} MB/s ({upload_seconds:.2} s + {judge_seconds:.2} s) |",
        megabytes / upload_seconds,
        megabytes / judge_seconds,
        megabytes / (upload_seconds + judge_seconds)
    );
    println!(
        "| Parquet batch, same shape ({parquet_mb:.0} MB): upload / judged / together | {:.0} / {:.0} / {:.0} MB/s ({parquet_upload:.2} s + {parquet_judge:.2} s) |",
        parquet_mb / parquet_upload,
        parquet_mb / parquet_judge,
        parquet_mb / (parquet_upload + parquet_judge)
    );
}
