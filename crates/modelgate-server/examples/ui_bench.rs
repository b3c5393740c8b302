//! The web UI's speed benchmark (issue 11, "Speed"): server-side rendering time and weight of the
//! reviewer pages on a registry of realistic size.
//!
//! 1. A fresh store (SQLite in a temporary data directory, or a PostgreSQL database created for the run)
//!    is filled straight through SQL: users (developer, validator, compliance officer, admin), models
//!    over the four risk tiers with their versions and approvals, open promotion requests with some
//!    reviews (`Store::bulk_load_registry_for_benchmarks`), and an audit log of real canonical events
//!    with their Merkle nodes (`Store::bulk_load_audit_for_benchmarks`).
//! 2. The real server starts on 127.0.0.1 (`PreparedServer::prepare` + `run`); the validator signs in
//!    through the `/login` form like a browser (the form's cookie and hidden token, then the session
//!    cookie).
//! 3. Each page is fetched sequentially: 10 warm-up requests, then the timed ones (default 200); the table
//!    gives p50, p95 and max of the whole request (sent to body read) and the HTML's size. The inbox is
//!    measured once more with a write (a comment) before each GET, so the review queue that replicas keep
//!    in memory until the next write is read from the database every time (up to 50 samples).
//!
//! Usage: `ui_bench [--postgres BASE_URL]`, e.g. `--postgres postgres://postgres:pw@127.0.0.1:5432/`: the
//! database `modelgate_bench` there is dropped and created afresh. Sizes from the environment:
//! `BENCH_UI_MODELS` (10,000), `BENCH_UI_VERSIONS` per model (10), `BENCH_UI_REQUESTS` (5,000),
//! `BENCH_UI_EVENTS` (1,000,000), `BENCH_UI_SAMPLES` (200); `BENCH_UI_KEEP=DIR` uses DIR (new) as the data
//! directory and leaves it, to look at the SQLite database afterwards.
// Measuring elapsed time is what this file is for.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelgate_audit::merkle::{Frontier, leaf_hash};
use modelgate_audit::{AuditEvent, Outcome};
use modelgate_core::Timestamp;
use modelgate_server::{PreparedServer, ServeOptions};
use modelgate_store::{BENCH_TIERS, RegistryFixture, Store};
use std::time::{Duration, Instant};

const PASSWORD: &str = "benchmark password 2026";
const DAY: i64 = 86_400_000;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|text| text.replace(['_', ','], "").parse().unwrap())
        .unwrap_or(default)
}

struct Sizes {
    models: u64,
    versions: u64,
    requests: u64,
    events: u64,
}

/// The audit event `seq` of a log that tells the fixture's story: each model's creation, each version's
/// registration, then everyday changes (tags, card revisions, reviews of decided requests, refused
/// sign-ins), and the opening of the open requests last.
fn event(seq: u64, sizes: &Sizes, start: i64, span: i64, open_ids: &[i64]) -> AuditEvent {
    let time = Timestamp::from_unix_millis(start + (seq as i64) * span / sizes.events as i64);
    let mix = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
    let model = mix % sizes.models;
    let version = 1 + (mix / sizes.models) % sizes.versions;
    let registered = sizes.models + sizes.models * sizes.versions;
    let opening_from = sizes.events.saturating_sub(open_ids.len() as u64);
    let (actor, action, target, outcome, reason, after) = if seq < sizes.models {
        (
            "developer",
            "model.create",
            format!("model/model-{seq}"),
            Outcome::Ok,
            None,
            serde_json::json!({"name": format!("model-{seq}"), "risk_tier": BENCH_TIERS[(seq % 4) as usize]}),
        )
    } else if seq < registered {
        let index = seq - sizes.models;
        let (model, number) = (index / sizes.versions, 1 + index % sizes.versions);
        (
            "developer",
            "version.register",
            format!("model/model-{model}/version/{number}"),
            Outcome::Ok,
            None,
            serde_json::json!({"number": number, "stage": "development"}),
        )
    } else if seq >= opening_from {
        let id = open_ids[(seq - opening_from) as usize];
        (
            "developer",
            "request.open",
            format!("request/{id}"),
            Outcome::Ok,
            None,
            serde_json::json!({"id": id, "state": "open"}),
        )
    } else {
        match seq % 10 {
            0..=3 => (
                "developer",
                "version.tag.set",
                format!("model/model-{model}/version/{version}"),
                Outcome::Ok,
                None,
                serde_json::json!({"tags": {"experiment": format!("run-{}", seq % 977)}}),
            ),
            4 | 5 => (
                "developer",
                "model.tag.set",
                format!("model/model-{model}"),
                Outcome::Ok,
                None,
                serde_json::json!({"tags": {"team": format!("team-{}", model % 20)}}),
            ),
            6 | 7 => (
                "developer",
                "card.revise",
                format!("model/model-{model}/version/{version}"),
                Outcome::Ok,
                None,
                serde_json::json!({"revision": 1 + seq % 5, "digest": format!("sha256:{:064x}", seq)}),
            ),
            8 => (
                "validator",
                "request.review",
                format!("request/{}", 1 + mix % (2 * sizes.models)),
                Outcome::Ok,
                None,
                serde_json::json!({"decision": "approve", "role": "validator"}),
            ),
            _ => (
                "anonymous",
                "auth.refused",
                "POST /login".to_owned(),
                Outcome::Denied,
                Some("Unknown user, wrong password, or deactivated user.".to_owned()),
                serde_json::json!({"count": 1 + seq % 3}),
            ),
        }
    };
    AuditEvent {
        seq,
        time: time.to_rfc3339(),
        actor: actor.to_owned(),
        token_id: (actor != "anonymous").then(|| format!("tok_{:016x}", seq % 977)),
        action: action.to_owned(),
        target,
        outcome,
        reason,
        before: None,
        after: Some(after),
        request_id: Some(format!("{seq:032x}")),
        client_addr: Some("10.0.0.7".to_owned()),
        policy_digest: None,
    }
}

/// A fresh `modelgate_bench` database on the PostgreSQL server of `base` (`postgres://u:p@host:port/`).
async fn fresh_postgres_database(base: &str) -> String {
    let (scheme, rest) = base.split_once("://").expect("a postgres:// URL");
    let authority = rest.split('/').next().unwrap();
    let server = format!("{scheme}://{authority}");
    sqlx::any::install_default_drivers();
    let mut admin =
        <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
    for statement in [
        "DROP DATABASE IF EXISTS modelgate_bench WITH (FORCE)",
        "CREATE DATABASE modelgate_bench",
    ] {
        sqlx::raw_sql(statement).execute(&mut admin).await.unwrap();
    }
    format!("{server}/modelgate_bench")
}

fn cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let pair = value.split(';').next()?;
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} cookie in the response"))
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (byte as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{byte:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Signs in through the `/login` form as a browser does; returns the session cookie's value.
async fn sign_in(http: &reqwest::Client, base: &str, username: &str) -> String {
    let form = http.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let login_cookie = cookie(&form, "modelgate_login_csrf");
    let html = form.text().await.unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let from = html.find(marker).expect("the form's csrf_token") + marker.len();
    let token = &html[from..from + html[from..].find('"').unwrap()];
    let response = http
        .post(format!("{base}/login"))
        .header(
            reqwest::header::COOKIE,
            format!("modelgate_login_csrf={login_cookie}"),
        )
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form_encode(&[
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", token),
        ]))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_redirection(),
        "sign-in refused: {}",
        response.status()
    );
    cookie(&response, "modelgate_session")
}

struct Measured {
    page: String,
    p50: f64,
    p95: f64,
    max: f64,
    bytes: usize,
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// One GET of `path` as the signed-in reviewer: the time from sending to the body read, and its size.
async fn timed_get(
    http: &reqwest::Client,
    base: &str,
    session: &str,
    path: &str,
) -> (Duration, usize) {
    let started = Instant::now();
    let response = http
        .get(format!("{base}{path}"))
        .header(
            reqwest::header::COOKIE,
            format!("modelgate_session={session}"),
        )
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.bytes().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body[..body.len().min(2000)])
    );
    (elapsed, body.len())
}

fn summarise(page: String, mut times: Vec<Duration>, bytes: usize) -> Measured {
    times.sort();
    let at = |quantile: f64| {
        millis(times[((times.len() as f64 * quantile).ceil() as usize).clamp(1, times.len()) - 1])
    };
    Measured {
        page,
        p50: at(0.50),
        p95: at(0.95),
        max: millis(*times.last().unwrap()),
        bytes,
    }
}

async fn measure(
    http: &reqwest::Client,
    base: &str,
    session: &str,
    path: &str,
    samples: usize,
) -> Measured {
    for _ in 0..10 {
        timed_get(http, base, session, path).await;
    }
    let mut times = Vec::with_capacity(samples);
    let mut bytes = 0;
    for _ in 0..samples {
        let (elapsed, size) = timed_get(http, base, session, path).await;
        times.push(elapsed);
        bytes = bytes.max(size);
    }
    summarise(path.to_owned(), times, bytes)
}

/// The inbox read right after a write (a comment posted through the request page's form, not timed): the
/// review queue kept in memory is stale then, so this is the inbox's cost when it reads the database.
async fn measure_inbox_after_writes(
    http: &reqwest::Client,
    base: &str,
    session: &str,
    request: i64,
    samples: usize,
) -> Measured {
    let page = http
        .get(format!("{base}/requests/{request}"))
        .header(
            reqwest::header::COOKIE,
            format!("modelgate_session={session}"),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let from = page.find(marker).unwrap() + marker.len();
    let csrf = page[from..from + page[from..].find('"').unwrap()].to_owned();
    let mut times = Vec::with_capacity(samples);
    let mut bytes = 0;
    for sample in 0..samples {
        let posted = http
            .post(format!("{base}/requests/{request}/comments"))
            .header(
                reqwest::header::COOKIE,
                format!("modelgate_session={session}"),
            )
            .header(reqwest::header::ORIGIN, base)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form_encode(&[
                ("csrf_token", csrf.as_str()),
                ("body", &format!("benchmark comment {sample}")),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(
            posted.status(),
            303,
            "the comment form answers with a redirect"
        );
        let (elapsed, size) = timed_get(http, base, session, "/").await;
        times.push(elapsed);
        bytes = bytes.max(size);
    }
    summarise("/ (each after a write)".to_owned(), times, bytes)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut postgres = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--postgres" => postgres = Some(args.next().expect("--postgres BASE_URL")),
            other => panic!("unknown argument {other:?}; usage: ui_bench [--postgres BASE_URL]"),
        }
    }
    let sizes = Sizes {
        models: env_number("BENCH_UI_MODELS", 10_000),
        versions: env_number("BENCH_UI_VERSIONS", 10),
        requests: env_number("BENCH_UI_REQUESTS", 5_000),
        events: env_number("BENCH_UI_EVENTS", 1_000_000),
    };
    let samples = env_number("BENCH_UI_SAMPLES", 200) as usize;
    let backend = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    // BENCH_UI_KEEP=DIR keeps the data directory (the SQLite database) there, to look at its plans.
    let kept = std::env::var_os("BENCH_UI_KEEP").map(std::path::PathBuf::from);
    let temporary = tempfile::tempdir().unwrap();
    let data_dir = kept.unwrap_or_else(|| temporary.path().to_path_buf());
    let database_url = match &postgres {
        Some(base) => Some(fresh_postgres_database(base).await),
        None => None,
    };

    // 1. The fixture.
    let loading = Instant::now();
    let store: Store = modelgate_server::open_store(&data_dir, database_url.as_deref())
        .await
        .unwrap();
    let policy = modelgate_policy::default_policy().unwrap();
    let now = modelgate_server::system_now();
    let password_hash = modelgate_server::auth::hash_password(PASSWORD).unwrap();
    let loaded = store
        .bulk_load_registry_for_benchmarks(&RegistryFixture {
            models: sizes.models as u32,
            versions_per_model: sizes.versions as u32,
            open_requests: sizes.requests as u32,
            policy_digest: policy.digest.clone(),
            password_hash,
            now,
            scan: {
                let report = modelgate_scan::scan_bytes(b"\x80\x04N.", "model.pkl");
                let stored = modelgate_server::scanning::stored_form(
                    &modelgate_core::Digest::from_sha256_bytes([0; 32]),
                    &report,
                )
                .unwrap();
                (
                    stored.engine,
                    stored.verdict,
                    stored.report_json,
                    stored.report_digest,
                )
            },
        })
        .await
        .unwrap();
    let registry_seconds = loading.elapsed().as_secs_f64();
    let start = now.unix_millis() - 400 * DAY;
    let span = 400 * DAY;
    let mut frontier = Frontier::new();
    let mut batch_events = Vec::new();
    let mut batch_nodes = Vec::new();
    for seq in 0..sizes.events {
        let leaf = event(seq, &sizes, start, span, &loaded.open_request_ids)
            .to_leaf()
            .unwrap();
        let hash = leaf_hash(&leaf);
        batch_nodes.extend(frontier.append(hash));
        batch_events.push((seq, String::from_utf8(leaf).unwrap(), hash));
        if batch_events.len() == 20_000 || seq + 1 == sizes.events {
            store
                .bulk_load_audit_for_benchmarks(&batch_events, &batch_nodes, &frontier)
                .await
                .unwrap();
            batch_events.clear();
            batch_nodes.clear();
        }
    }
    store.analyze_for_benchmarks().await.unwrap();
    drop(store);
    eprintln!(
        "ui_bench: {backend}: loaded {} users, {} models, {} versions, {} decided and {} open requests, {} reviews in {registry_seconds:.1} s; {} audit events, all in {:.1} s",
        loaded.users,
        loaded.models,
        loaded.versions,
        loaded.decided_requests,
        loaded.open_request_ids.len(),
        loaded.reviews,
        sizes.events,
        loading.elapsed().as_secs_f64()
    );

    // 2. The server, and a browser's sign-in.
    let options = ServeOptions {
        database_url,
        ..ServeOptions::new(data_dir.clone(), "127.0.0.1:0".to_owned())
    };
    let server = PreparedServer::prepare(&options).await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = sign_in(&http, &base, "validator").await;

    // 3. The pages.
    let request = loaded.open_request_ids[loaded.open_request_ids.len() / 2];
    let pages = [
        "/".to_owned(),
        format!("/requests/{request}"),
        "/models".to_owned(),
        "/models?sort=tier&order=desc".to_owned(),
        "/audit".to_owned(),
        "/audit?target=model/model-42".to_owned(),
    ];
    let mut results = Vec::new();
    for page in &pages {
        results.push(measure(&http, &base, &session, page, samples).await);
    }
    results
        .push(measure_inbox_after_writes(&http, &base, &session, request, samples.min(50)).await);
    let stylesheet = {
        let html = http
            .get(format!("{base}/models"))
            .header(
                reqwest::header::COOKIE,
                format!("modelgate_session={session}"),
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let marker = "rel=\"stylesheet\" href=\"";
        let from = html.find(marker).unwrap() + marker.len();
        let href = &html[from..from + html[from..].find('"').unwrap()];
        http.get(format!("{base}{href}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .len()
    };

    println!(
        "\nweb UI on {backend}: {} models, {} versions, {} open requests, {} audit events; {samples} sequential GETs per page after 10 warm-up, as the validator",
        sizes.models,
        sizes.models * sizes.versions,
        loaded.open_request_ids.len(),
        sizes.events
    );
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>10} {:>10}  target (p95 < 50 ms, < 150 KB)",
        "page", "p50 ms", "p95 ms", "max ms", "HTML KB", "+css KB"
    );
    for result in &results {
        let weight = result.bytes + stylesheet;
        let met = result.p95 < 50.0 && weight < 150 * 1024;
        println!(
            "{:<36} {:>9.2} {:>9.2} {:>9.2} {:>10.1} {:>10.1}  {}",
            result.page,
            result.p50,
            result.p95,
            result.max,
            result.bytes as f64 / 1024.0,
            weight as f64 / 1024.0,
            if met { "met" } else { "MISSED" }
        );
    }
    let _ = stop.send(());
    running.await.unwrap();
}
