//! Webhooks (issue 13): every change goes out to subscribed receivers as a CloudEvent signed per Standard
//! Webhooks. The receiver here is a real HTTP server on loopback; signatures are checked with the
//! `standardwebhooks` crate (the spec's reference implementation), not with modelgate's code.

use crate::cli::{Server, stderr, write_file};
use crate::support::{AppOptions, TestApp, call, call_json, error_of, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the receiver answers, in turn; 200 once the script is used up.
#[derive(Clone, Copy)]
pub(crate) enum Reply {
    Status(u16),
    /// Answers 200 only after this long (longer than the server waits).
    Hang(Duration),
}

#[derive(Clone)]
pub(crate) struct Delivery {
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Delivery {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_owned()
    }
}

#[derive(Default)]
struct Shared {
    script: VecDeque<Reply>,
    received: Vec<Delivery>,
}

/// A webhook receiver on 127.0.0.1, on its own thread and runtime, recording every request.
pub(crate) struct Receiver {
    address: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl Receiver {
    pub(crate) fn start(script: &[Reply]) -> Self {
        Self::start_on(0, script)
    }

    fn start_on(port: u16, script: &[Reply]) -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            script: script.iter().copied().collect(),
            received: Vec::new(),
        }));
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let state = shared.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new()
                    .route("/hook", axum::routing::post(receive))
                    .with_state(state);
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { address, shared }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    fn received(&self) -> Vec<Delivery> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Waits until `count` requests arrived (or panics after `seconds`).
    pub(crate) async fn wait_for(&self, count: usize, seconds: u64) -> Vec<Delivery> {
        for _ in 0..seconds * 20 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the receiver got {} requests, not {count}, within {seconds} s",
            self.received().len()
        );
    }
}

async fn receive(
    axum::extract::State(shared): axum::extract::State<Arc<Mutex<Shared>>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let reply = {
        let mut shared = shared.lock().unwrap();
        shared.received.push(Delivery {
            headers: headers.clone(),
            body: body.to_vec(),
        });
        shared.script.pop_front()
    };
    match reply {
        Some(Reply::Status(status)) => axum::http::StatusCode::from_u16(status).unwrap(),
        Some(Reply::Hang(duration)) => {
            tokio::time::sleep(duration).await;
            axum::http::StatusCode::OK
        }
        None => axum::http::StatusCode::OK,
    }
}

pub(crate) fn fast_webhooks() -> modelgate_server::webhooks::WebhookSettings {
    modelgate_server::webhooks::WebhookSettings {
        allow_hosts: vec!["127.0.0.1".to_owned()],
        backoff_base: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
        poll_interval: Duration::from_millis(20),
        ..modelgate_server::webhooks::WebhookSettings::default()
    }
}

async fn app_with_webhooks() -> TestApp {
    spawn_app_with(AppOptions {
        webhooks: fast_webhooks(),
        ..AppOptions::default()
    })
    .await
}

pub(crate) async fn subscribe(
    app: &TestApp,
    url: &str,
    events: &[&str],
    model: Option<&str>,
) -> (i64, String) {
    let created = call_json(
        app,
        Method::POST,
        "/api/v1/webhooks",
        &app.admin_token,
        Some(json!({ "url": url, "events": events, "model": model })),
    )
    .await;
    (
        created["webhook"]["id"].as_i64().unwrap(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

/// Checks a delivery's signature with the reference implementation, and its CloudEvents envelope.
pub(crate) fn verified(delivery: &Delivery, secret: &str) -> Value {
    let verifier = standardwebhooks::Webhook::new(secret).unwrap();
    verifier
        .verify(&delivery.body, &delivery.headers)
        .unwrap_or_else(|error| panic!("the signature does not verify: {error:?}"));
    let event = delivery.json();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(
        event["id"],
        delivery.id(),
        "the CloudEvents id is the webhook-id"
    );
    assert_eq!(event["datacontenttype"], "application/json");
    assert!(
        event["source"]
            .as_str()
            .is_some_and(|source| !source.is_empty())
    );
    assert!(
        event["time"]
            .as_str()
            .is_some_and(|time| time.ends_with('Z'))
    );
    assert_eq!(
        delivery.headers["content-type"],
        "application/cloudevents+json"
    );
    event
}

async fn deliveries(app: &TestApp, id: i64) -> Vec<Value> {
    call_json(
        app,
        Method::GET,
        &format!("/api/v1/webhooks/{id}/deliveries"),
        &app.admin_token,
        None,
    )
    .await["deliveries"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn changes_reach_the_receiver_signed_in_order_and_filtered() {
    let receiver = Receiver::start(&[]);
    let app = app_with_webhooks().await;
    let (id, secret) = subscribe(
        &app,
        &receiver.url(),
        &["model.created", "version.created", "request.opened"],
        None,
    )
    .await;
    // Only this model's events, for a second subscription on the same receiver.
    let only_other = Receiver::start(&[]);
    app.create_model(&app.admin_token, "other", "low").await;
    let (_, other_secret) = subscribe(&app, &only_other.url(), &["*"], Some("other")).await;

    let listed = call_json(
        &app,
        Method::GET,
        "/api/v1/webhooks",
        &app.admin_token,
        None,
    )
    .await;
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is never returned again"
    );

    app.create_model(&app.admin_token, "credit", "low").await;
    app.push_version(&app.admin_token, "credit", b"model bytes".to_vec())
        .await;
    app.push_version(&app.admin_token, "other", b"other bytes".to_vec())
        .await;
    let opened = call(
        &app,
        Method::POST,
        "/api/v1/requests",
        &app.admin_token,
        Some(json!({ "model": "credit", "version": 1, "stage": "staging", "justification": "ready" })),
    )
    .await;
    assert!(opened.status().is_success());

    // model.created (other, credit), version.created (credit, other), request.opened; the webhooks'
    // own creation is not asked for.
    let received = receiver.wait_for(5, 20).await;
    let events: Vec<Value> = received.iter().map(|d| verified(d, &secret)).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "io.modelgate.model.created",
            "io.modelgate.model.created",
            "io.modelgate.version.created",
            "io.modelgate.version.created",
            "io.modelgate.request.opened"
        ]
    );
    let subjects: Vec<&str> = events
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            "models/other",
            "models/credit",
            "models/credit/versions/1",
            "models/other/versions/1",
            "models/credit/versions/1"
        ]
    );
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["data"]["audit_event"]["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
    // The leaf hash in the event is the audit log's (RFC 6962: SHA-256 of 0x00 and the stored leaf), so an
    // auditor can ask for its inclusion proof.
    let seq = seqs[1];
    let leaf = app
        .request(
            Method::GET,
            &format!("/api/v1/audit/entries?start={seq}&end={}", seq + 1),
            &app.admin_token,
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut hashed = vec![0u8];
    hashed.extend_from_slice(leaf.trim_end_matches('\n').as_bytes());
    assert_eq!(
        events[1]["data"]["leaf_hash"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&hashed)).as_str()
    );

    let other = only_other.wait_for(1, 20).await;
    let other_event = verified(&other[0], &other_secret);
    assert_eq!(other_event["subject"], "models/other/versions/1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        only_other.received().len(),
        1,
        "the model filter keeps credit's events away"
    );

    let log = deliveries(&app, id).await;
    assert_eq!(log.len(), 5);
    for delivery in &log {
        assert_eq!(delivery["state"], "delivered", "{delivery}");
        assert_eq!(delivery["attempts"][0]["status"], 200);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_id_and_gone_disables() {
    let flaky = Receiver::start(&[Reply::Status(500), Reply::Status(429)]);
    let gone = Receiver::start(&[Reply::Status(410)]);
    let app = app_with_webhooks().await;
    let (flaky_id, secret) = subscribe(&app, &flaky.url(), &["model.created"], None).await;
    let (gone_id, _) = subscribe(&app, &gone.url(), &["model.created"], None).await;
    app.create_model(&app.admin_token, "credit", "low").await;

    let attempts = flaky.wait_for(3, 20).await;
    let ids: Vec<String> = attempts.iter().map(Delivery::id).collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2], "every attempt carries the same webhook-id");
    for attempt in &attempts {
        verified(attempt, &secret);
    }
    let mut log = Vec::new();
    for _ in 0..100 {
        log = deliveries(&app, flaky_id).await;
        if log[0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log[0]["state"], "delivered", "{log:?}");
    let statuses: Vec<u64> = log[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 429, 200]);

    gone.wait_for(1, 20).await;
    let mut disabled = Value::Null;
    for _ in 0..100 {
        let listed = call_json(
            &app,
            Method::GET,
            "/api/v1/webhooks",
            &app.admin_token,
            None,
        )
        .await;
        disabled = listed["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|webhook| webhook["id"] == gone_id)
            .unwrap()
            .clone();
        if !disabled["disabled_at"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("410")),
        "{disabled}"
    );
    app.create_model(&app.admin_token, "second", "low").await;
    flaky.wait_for(4, 20).await;
    assert_eq!(
        gone.received().len(),
        1,
        "nothing more goes to a receiver that said 410"
    );
    let audit = call_json(
        &app,
        Method::GET,
        &format!("/api/v1/audit/events?target=webhook/{gone_id}"),
        &app.admin_token,
        None,
    )
    .await;
    assert!(audit.to_string().contains("webhook.disable"), "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_that_hangs_is_cut_at_the_timeout_and_retried() {
    let slow = Receiver::start(&[Reply::Hang(Duration::from_secs(6))]);
    let app = app_with_webhooks().await;
    let (id, _) = subscribe(&app, &slow.url(), &["model.created"], None).await;
    app.create_model(&app.admin_token, "credit", "low").await;
    slow.wait_for(2, 30).await;
    let mut log = Vec::new();
    for _ in 0..100 {
        log = deliveries(&app, id).await;
        if log[0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = &log[0]["attempts"][0];
    assert!(first["status"].is_null(), "{first}");
    assert!(
        first["error"]
            .as_str()
            .is_some_and(|error| error.contains("no answer within 2000 ms")),
        "{first}"
    );
    assert!(first["latency_ms"].as_u64().unwrap() >= 1900, "{first}");
    assert_eq!(log[0]["attempts"][1]["status"], 200);
    app.stop().await;
}

#[tokio::test]
async fn subscriptions_are_checked_and_only_admins_make_them() {
    let app = spawn_app_with(AppOptions::default()).await;
    let refused = call(
        &app,
        Method::POST,
        "/api/v1/webhooks",
        &app.admin_token,
        Some(json!({ "url": "http://127.0.0.1:9/hook", "events": ["version.promoted"] })),
    )
    .await;
    let (status, code, body) = error_of(refused).await;
    assert_eq!((status.as_u16(), code.as_str()), (400, "invalid_argument"));
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("loopback") && message.contains("--webhook-allow-host"),
        "{message}"
    );
    for (request, field) in [
        (
            json!({ "url": "http://169.254.169.254/latest", "events": ["*"] }),
            "link-local",
        ),
        (
            json!({ "url": "http://10.0.0.8/", "events": ["*"] }),
            "private",
        ),
        (
            json!({ "url": "ftp://example.com/", "events": ["*"] }),
            "scheme",
        ),
        (
            json!({ "url": "https://93.184.216.34/", "events": ["version.promotd"] }),
            "version.promotd",
        ),
        (
            json!({ "url": "https://93.184.216.34/", "events": [] }),
            "at least one",
        ),
        (
            json!({ "url": "https://93.184.216.34/", "events": ["*"], "secret": "hunter2" }),
            "whsec_",
        ),
    ] {
        let (status, _, body) = error_of(
            call(
                &app,
                Method::POST,
                "/api/v1/webhooks",
                &app.admin_token,
                Some(request),
            )
            .await,
        )
        .await;
        assert_eq!(status.as_u16(), 400);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{field}: {message}");
    }
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let (status, _, _) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/webhooks",
            &developer,
            Some(json!({ "url": "https://93.184.216.34/", "events": ["*"] })),
        )
        .await,
    )
    .await;
    assert_eq!(status.as_u16(), 403);
    let (status, _, _) =
        error_of(call(&app, Method::GET, "/api/v1/webhooks", &developer, None).await).await;
    assert_eq!(status.as_u16(), 403);
    app.stop().await;
}

/// Two replicas on one PostgreSQL database: each event reaches the receiver once.
#[tokio::test]
async fn two_replicas_on_postgres_deliver_each_event_once() {
    let receiver = Receiver::start(&[]);
    let first = spawn_app_with(AppOptions {
        postgres: true,
        webhooks: fast_webhooks(),
        ..AppOptions::default()
    })
    .await;
    let second = spawn_app_with(AppOptions {
        join: Some((
            first.database_url.clone().unwrap(),
            first.data_dir.path().join("audit-signing.key"),
        )),
        webhooks: fast_webhooks(),
        ..AppOptions::default()
    })
    .await;
    let (_, secret) = subscribe(&first, &receiver.url(), &["model.created"], None).await;
    let models = 20;
    for index in 0..models {
        let app = if index % 2 == 0 { &first } else { &second };
        let created = call(
            app,
            Method::POST,
            "/api/v1/models",
            &first.admin_token,
            Some(json!({ "name": format!("m{index}"), "owner": "admin", "risk_tier": "low", "description": "d" })),
        )
        .await;
        assert!(created.status().is_success());
    }
    let received = receiver.wait_for(models, 30).await;
    // Both replicas keep running a while longer: a second delivery would show up now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received_now = receiver.received();
    assert_eq!(received_now.len(), models, "each event exactly once");
    let mut ids: Vec<String> = received.iter().map(Delivery::id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), models);
    for delivery in &received_now {
        verified(delivery, &secret);
    }
    second.stop().await;
    first.stop().await;
}

/// The CLI, and `kill -9` after a change was committed but before it was delivered: the restarted
/// server delivers it, with the event id the delivery log shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_and_a_crash_before_delivery() {
    // A port with nobody listening yet: deliveries fail until the receiver starts there.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let flags = [
        "--webhook-allow-host",
        "127.0.0.1",
        "--webhook-backoff-ms",
        "100",
    ];
    let mut server = tokio::task::spawn_blocking(move || Server::start_with(&flags))
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let secret = format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32])
    );
    let secret_file = write_file(work.path(), "hook.secret", format!("{secret}\n").as_bytes());
    let url = format!("http://127.0.0.1:{port}/hook");
    let created = server.json(&[
        "webhook",
        "create",
        &url,
        "--events",
        "model.created,webhook.test",
        "--secret-file",
        secret_file.to_str().unwrap(),
    ]);
    assert!(
        created["secret"].is_null(),
        "a secret the caller gave is not echoed"
    );
    let id = created["webhook"]["id"].as_i64().unwrap().to_string();
    let listed = server.json(&["webhook", "list"]);
    assert_eq!(listed["webhooks"][0]["url"], url.as_str());
    assert_eq!(
        listed["webhooks"][0]["events"],
        json!(["model.created", "webhook.test"])
    );
    let types = server.run(&["webhook", "event-types"]);
    assert!(String::from_utf8_lossy(&types.stdout).contains("version.promoted"));
    let unknown = server.run(&["webhook", "create", &url, "--events", "nope"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("unknown event type nope"),
        "{}",
        stderr(&unknown)
    );

    let model = server.run(&[
        "model",
        "create",
        "credit",
        "--owner",
        "alice",
        "--risk-tier",
        "low",
        "--description",
        "d",
    ]);
    assert!(model.status.success(), "{}", stderr(&model));
    // Committed; the receiver is not up, so it cannot have been delivered. Kill the server outright.
    let restart_flags = flags;
    let server = tokio::task::spawn_blocking(move || {
        server.kill9_and_restart(&restart_flags);
        server
    })
    .await
    .unwrap();
    let receiver = Receiver::start_on(port, &[]);
    let received = receiver.wait_for(1, 30).await;
    let event = verified(&received[0], &secret);
    assert_eq!(event["type"], "io.modelgate.model.created");
    assert_eq!(event["subject"], "models/credit");

    let test = server.json(&["webhook", "test", &id]);
    let received = receiver.wait_for(2, 30).await;
    assert_eq!(received[1].id(), test["event_id"].as_str().unwrap());
    assert_eq!(
        verified(&received[1], &secret)["type"],
        "io.modelgate.webhook.test"
    );

    let mut log = json!(null);
    for _ in 0..100 {
        log = server.json(&["webhook", "deliveries", &id]);
        if log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|delivery| delivery["state"] == "delivered")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "{log}");
    let created_delivery = &deliveries[1];
    assert_eq!(created_delivery["event_id"], received[0].id().as_str());
    assert_eq!(created_delivery["state"], "delivered");
    assert!(
        created_delivery["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|attempt| attempt["status"] == 200),
        "{created_delivery}"
    );
    let table = server.run(&["webhook", "deliveries", &id]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("delivered"));
    let next_secret = write_file(
        work.path(),
        "new.secret",
        format!(
            "whsec_{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [8u8; 32])
        )
        .as_bytes(),
    );
    let rotated = server.json(&[
        "webhook",
        "rotate",
        &id,
        "--secret-file",
        next_secret.to_str().unwrap(),
        "--overlap-hours",
        "2",
    ]);
    assert!(
        rotated["webhook"]["previous_secret_until"].is_string(),
        "{rotated}"
    );
    let deleted = server.run(&["webhook", "delete", &id]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert_eq!(server.json(&["webhook", "list"])["webhooks"], json!([]));
}

/// A secret rotation: during the overlap every delivery carries a signature with each secret, so a receiver
/// that still has the old one and one that has the new one both verify it.
#[tokio::test]
async fn during_a_rotation_both_secrets_sign() {
    let receiver = Receiver::start(&[]);
    let app = app_with_webhooks().await;
    let (id, old) = subscribe(&app, &receiver.url(), &["model.created"], None).await;
    let new = format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32])
    );
    let rotated = call_json(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/rotate"),
        &app.admin_token,
        Some(json!({ "secret": new, "overlap_hours": 1 })),
    )
    .await;
    assert!(rotated["secret"].is_null(), "a secret given is not echoed");
    assert!(rotated["webhook"]["previous_secret_until"].is_string());
    app.create_model(&app.admin_token, "credit", "low").await;
    let received = receiver.wait_for(1, 20).await;
    let signatures = received[0].headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    verified(&received[0], &new);
    verified(&received[0], &old);
    let (status, _, _) = error_of(
        call(
            &app,
            Method::POST,
            &format!("/api/v1/webhooks/{id}/rotate"),
            &app.admin_token,
            Some(json!({ "overlap_hours": 10000 })),
        )
        .await,
    )
    .await;
    assert_eq!(status.as_u16(), 400);
    app.stop().await;
}
