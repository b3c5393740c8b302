//! The trust core under attack (issue "Trust core, second pass", 2.1, 2.4, 2.6, 2.10, 2.15): a token
//! alone cannot change a password or sign, refusals cannot flood the audit log, the lock-out lives in the
//! database, unknown users cost the same argon2 work, printed names cannot impersonate, nobody grants
//! themselves a role, and tokens and text fields have limits.

use crate::support::{AppOptions, TestApp, call, error_of, payload, spawn_app, spawn_app_with};
use modelgate_server::{AppState, PreparedServer, ServeOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const PASSWORD: &str = "a long enough password";

/// A server on a data directory the test keeps, so it can be stopped and started again on the same data.
struct Running {
    address: std::net::SocketAddr,
    state: AppState,
    bootstrap_token: Option<String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    http: reqwest::Client,
}

async fn start(data_dir: &Path, clock_offset: Arc<AtomicI64>) -> Running {
    let clock: modelgate_server::Clock = Arc::new(move || {
        modelgate_core::Timestamp::from_unix_millis(
            modelgate_server::system_now().unix_millis() + clock_offset.load(Ordering::SeqCst),
        )
    });
    let options = ServeOptions {
        clock: Some(clock),
        ..ServeOptions::new(data_dir.to_path_buf(), "127.0.0.1:0".to_owned())
    };
    let server = PreparedServer::prepare(&options).await.unwrap();
    let address = server.local_addr().unwrap();
    let state = server.state().clone();
    let bootstrap_token = server.bootstrap_token().map(str::to_owned);
    let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        server
            .run(async {
                let _ = receiver.await;
            })
            .await
            .unwrap();
    });
    Running {
        address,
        state,
        bootstrap_token,
        shutdown: Some(sender),
        handle: Some(handle),
        http: reqwest::Client::new(),
    }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap();
        }
    }
}

async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let list: Value = call(
        app,
        Method::GET,
        &format!("/api/v1/audit/events?limit=1000&{query}"),
        &app.admin_token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    list["events"].as_array().unwrap().clone()
}

async fn running_events(server: &Running, token: &str, query: &str) -> Vec<Value> {
    let list: Value = server
        .send(
            Method::GET,
            &format!("/api/v1/audit/events?limit=1000&{query}"),
            token,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    list["events"].as_array().unwrap().clone()
}

fn total_count(events: &[Value]) -> u64 {
    events
        .iter()
        .map(|event| event["after"]["count"].as_u64().unwrap())
        .sum()
}

async fn login_status(app: &TestApp, username: &str, password: &str) -> StatusCode {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
}

/// Opens a staging request for a fresh model version and returns the path to review it.
async fn review_path(app: &TestApp, developer: &str, model: &str) -> String {
    app.create_model(developer, model, "medium").await;
    app.push_version(developer, model, payload(8)).await;
    let request: Value = call(
        app,
        Method::POST,
        "/api/v1/requests",
        developer,
        Some(json!({"model": model, "version": 1, "stage": "staging", "justification": "ready"})),
    )
    .await
    .json()
    .await
    .unwrap();
    format!("/api/v1/requests/{}/reviews", request["id"])
}

fn approve(password: &str) -> Value {
    json!({ "decision": "approve", "role": "validator", "password": password })
}

#[tokio::test]
async fn a_token_alone_cannot_change_the_password() {
    let app = spawn_app().await;
    let token = app.user_with_token("val", &["validator"]).await;
    let path = "/api/v1/users/val";
    let (status, _, body) = error_of(
        call(
            &app,
            Method::PATCH,
            path,
            &token,
            Some(json!({"password": "the attacker's choice"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["field"], "current_password");
    let (status, _, _) = error_of(
        call(
            &app,
            Method::PATCH,
            path,
            &token,
            Some(
                json!({"password": "the attacker's choice", "current_password": "a guess at it!"}),
            ),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login_status(&app, "val", "the attacker's choice").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_status(&app, "val", PASSWORD).await,
        StatusCode::CREATED
    );

    let changed = call(
        &app,
        Method::PATCH,
        path,
        &token,
        Some(json!({"password": "my own new password", "current_password": PASSWORD})),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        login_status(&app, "val", "my own new password").await,
        StatusCode::CREATED
    );

    let recorded = events(&app, "action=user.password_changed").await;
    let outcomes: Vec<(&str, &str)> = recorded
        .iter()
        .map(|event| {
            (
                event["outcome"].as_str().unwrap(),
                event["target"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(outcomes, [("denied", "user/val"), ("ok", "user/val")]);
    assert_eq!(recorded[1]["actor"], "val");
    assert_eq!(recorded[1]["after"]["self_change"], true);
    assert!(
        !Value::Array(recorded).to_string().contains("argon2"),
        "no hash in the log"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_admin_reset_password_cannot_sign_until_its_owner_changes_it() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let validator = app.user_with_token("val", &["validator"]).await;
    let review = review_path(&app, &developer, "reset").await;
    let reset = call(
        &app,
        Method::PATCH,
        "/api/v1/users/val",
        &app.admin_token,
        Some(json!({"password": "the admin knows this one"})),
    )
    .await;
    assert_eq!(reset.status(), StatusCode::OK);
    let reset_event = events(&app, "action=user.password_changed").await;
    assert_eq!(reset_event.len(), 1);
    assert_eq!(reset_event[0]["actor"], "admin");
    assert_eq!(reset_event[0]["after"]["change"], "admin_reset");
    assert_eq!(reset_event[0]["after"]["self_change"], false);
    assert!(
        events(&app, "action=user.update&target=user/val")
            .await
            .is_empty(),
        "a password change is not a silent user.update"
    );

    // The reset password logs in, but the signature is refused, pointing at the fix.
    assert_eq!(
        login_status(&app, "val", "the admin knows this one").await,
        StatusCode::CREATED
    );
    let (status, code, body) = error_of(
        call(
            &app,
            Method::POST,
            &review,
            &validator,
            Some(approve("the admin knows this one")),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "permission_denied")
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("modelgate user passwd"), "{message}");

    let own = call(
        &app,
        Method::PATCH,
        "/api/v1/users/val",
        &validator,
        Some(json!({"password": "only I know this one", "current_password": "the admin knows this one"})),
    )
    .await;
    assert_eq!(own.status(), StatusCode::OK);
    let signed = call(
        &app,
        Method::POST,
        &review,
        &validator,
        Some(approve("only I know this one")),
    )
    .await;
    assert_eq!(
        signed.status(),
        StatusCode::OK,
        "{}",
        signed.text().await.unwrap()
    );
    app.stop().await;
}

#[tokio::test]
async fn refused_tokens_are_aggregated_in_the_audit_log() {
    let data_dir = tempfile::tempdir().unwrap();
    let offset = Arc::new(AtomicI64::new(0));
    let server = start(data_dir.path(), offset.clone()).await;
    let admin = server.bootstrap_token.clone().unwrap();
    for _ in 0..200 {
        let response = server
            .send(Method::GET, "/api/v1/models", "mgt_not-a-real-token", None)
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let so_far = running_events(&server, &admin, "action=auth.refused").await;
    assert_eq!(
        so_far.len(),
        1,
        "the first refusal is written at once, the rest counted"
    );
    server.stop().await;
    // A graceful stop writes what was counted; the next start reads the same log.
    let server = start(data_dir.path(), offset.clone()).await;
    let refused = running_events(&server, &admin, "action=auth.refused").await;
    assert!(refused.len() <= 2, "{refused:?}");
    assert_eq!(total_count(&refused), 200);
    assert!(
        refused
            .iter()
            .all(|event| event["client_addr"] == "127.0.0.1")
    );

    // A window later, the next refusal writes the batch counted since.
    for _ in 0..10 {
        server
            .send(Method::GET, "/api/v1/models", "mgt_still-wrong", None)
            .await;
    }
    offset.store(61_000, Ordering::SeqCst);
    server
        .send(Method::GET, "/api/v1/models", "mgt_still-wrong", None)
        .await;
    let refused = running_events(&server, &admin, "action=auth.refused").await;
    assert_eq!(total_count(&refused), 211);
    assert!(refused.len() <= 4, "{refused:?}");
    server.stop().await;
}

#[tokio::test]
async fn oversized_or_unprintable_request_ids_are_replaced() {
    let app = spawn_app().await;
    let token = app.user_with_token("dev", &["model_developer"]).await;
    let cases: [(Vec<u8>, bool); 4] = [
        (vec![b'x'; 100_000], false),
        (b"caf\xe9-id".to_vec(), false),
        (vec![b'y'; 129], false),
        (b"my-request-42".to_vec(), true),
    ];
    for (index, (sent, kept)) in cases.iter().enumerate() {
        let response = app
            .request(Method::POST, "/api/v1/models", &token)
            .header(
                "x-request-id",
                reqwest::header::HeaderValue::from_bytes(sent).unwrap(),
            )
            .json(&json!({"name": format!("ids-{index}"), "risk_tier": "low", "description": "d"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let echoed = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(echoed.len() <= 128);
        assert_eq!(echoed.as_bytes() == sent.as_slice(), *kept, "{index}");
        let recorded = events(
            &app,
            &format!("action=model.create&target=model/ids-{index}"),
        )
        .await;
        assert_eq!(
            recorded[0]["request_id"],
            echoed.as_str(),
            "the log and the answer agree"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn wrong_passwords_lock_login_and_signing_across_a_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let offset = Arc::new(AtomicI64::new(0));
    let server = start(data_dir.path(), offset.clone()).await;
    let admin = server.bootstrap_token.clone().unwrap();
    let created = server
        .send(
            Method::POST,
            "/api/v1/users",
            &admin,
            Some(json!({"username": "lena", "printed_name": "Lena Example", "roles": ["validator"], "password": PASSWORD})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let token: Value = server
        .send(
            Method::POST,
            "/api/v1/tokens",
            &admin,
            Some(json!({"name": "t", "username": "lena"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let lena = token["secret"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        assert_eq!(
            server.login("lena", "wrong password here").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = server.login("lena", PASSWORD).await;
    assert_eq!(
        locked.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the right password waits too"
    );
    // An unknown user behaves the same, so the lock does not tell who exists.
    for _ in 0..5 {
        assert_eq!(
            server.login("nobody", "wrong password here").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        server.login("nobody", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    server.stop().await;

    let server = start(data_dir.path(), offset.clone()).await;
    assert_eq!(
        server.login("lena", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the lock is in the database, not in the process"
    );
    // Changing the password checks the current one under the same lock (signing: the next test).
    let changing = server
        .send(
            Method::PATCH,
            "/api/v1/users/lena",
            &lena,
            Some(json!({"password": "another long password", "current_password": PASSWORD})),
        )
        .await;
    assert_eq!(changing.status(), StatusCode::TOO_MANY_REQUESTS);

    let refused = running_events(&server, &admin, "action=auth.refused").await;
    // 10 wrong, 2 locked before the restart, 1 locked after it.
    assert_eq!(
        total_count(&refused),
        13,
        "every failed login is in the log, aggregated: {refused:?}"
    );
    assert!(refused.len() <= 5, "{refused:?}");

    offset.store(15 * 60 * 1000 + 1_000, Ordering::SeqCst);
    assert_eq!(
        server.login("lena", PASSWORD).await.status(),
        StatusCode::CREATED,
        "the window passed"
    );
    server.stop().await;
}

#[tokio::test]
async fn signing_is_locked_by_the_shared_database_limit() {
    let offset = Arc::new(AtomicI64::new(0));
    let app = spawn_app_with(AppOptions {
        clock_offset: Some(offset.clone()),
        ..AppOptions::default()
    })
    .await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let validator = app.user_with_token("val", &["validator"]).await;
    let review = review_path(&app, &developer, "locked").await;
    for _ in 0..3 {
        assert_eq!(
            login_status(&app, "val", "wrong password here").await,
            StatusCode::UNAUTHORIZED
        );
    }
    for _ in 0..2 {
        let wrong = call(
            &app,
            Method::POST,
            &review,
            &validator,
            Some(approve("not my password")),
        )
        .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let (status, code, _) = error_of(
        call(
            &app,
            Method::POST,
            &review,
            &validator,
            Some(approve(PASSWORD)),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert_eq!(
        login_status(&app, "val", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    offset.store(16 * 60 * 1000, Ordering::SeqCst);
    let signed = call(
        &app,
        Method::POST,
        &review,
        &validator,
        Some(approve(PASSWORD)),
    )
    .await;
    assert_eq!(signed.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn unknown_users_cost_the_same_password_check() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = start(data_dir.path(), Arc::new(AtomicI64::new(0))).await;
    let admin = server.bootstrap_token.clone().unwrap();
    for (username, password) in [
        ("with-password", Some(PASSWORD)),
        ("without-password", None),
    ] {
        let created = server
            .send(
                Method::POST,
                "/api/v1/users",
                &admin,
                Some(json!({"username": username, "printed_name": username, "password": password})),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    for username in ["with-password", "without-password", "no-such-user", "admin"] {
        let before = server.state.password_checks();
        assert_eq!(
            server.login(username, "wrong password here").await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            server.state.password_checks() - before,
            1,
            "{username}: one argon2 verification, like a real user's"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn printed_names_must_be_visible_and_unique_among_active_users() {
    let app = spawn_app().await;
    app.user_with_token("vic", &["validator"]).await;
    let create = |username: &str, printed_name: &str| {
        call(
            &app,
            Method::POST,
            "/api/v1/users",
            &app.admin_token,
            Some(json!({"username": username, "printed_name": printed_name})),
        )
    };
    for bad in [
        "Vic\u{202E}elpmaxE",
        "Vic\u{200B} Example",
        "\u{FEFF}Vic",
        "Vic\u{2066}x",
        "Vic\u{7}",
    ] {
        let (status, _, body) = error_of(create("mallory", bad).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(body["error"]["details"]["field"], "printed_name");
    }
    let (status, _, body) = error_of(create("mallory", "  VIC example ").await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"vic\""),
        "names the other account"
    );
    assert_eq!(
        create("mallory", "Mallory Example").await.status(),
        StatusCode::CREATED
    );
    let renamed = call(
        &app,
        Method::PATCH,
        "/api/v1/users/mallory",
        &app.admin_token,
        Some(json!({"printed_name": "vic EXAMPLE"})),
    )
    .await;
    assert_eq!(renamed.status(), StatusCode::CONFLICT);
    app.stop().await;
}

#[tokio::test]
async fn nobody_changes_their_own_roles() {
    let app = spawn_app().await;
    app.user_with_token("bob", &[]).await;
    let (status, _, body) = error_of(
        call(
            &app,
            Method::PATCH,
            "/api/v1/users/admin",
            &app.admin_token,
            Some(json!({"roles": ["admin", "validator"]})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("own roles")
    );
    let denied = events(&app, "action=user.roles.change").await;
    assert_eq!(denied.len(), 1);
    assert_eq!(
        (denied[0]["outcome"].as_str(), denied[0]["target"].as_str()),
        (Some("denied"), Some("user/admin"))
    );
    let admin: Value = call(
        &app,
        Method::GET,
        "/api/v1/users/admin",
        &app.admin_token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(admin["roles"], json!(["admin"]));
    let granted = call(
        &app,
        Method::PATCH,
        "/api/v1/users/bob",
        &app.admin_token,
        Some(json!({"roles": ["validator"]})),
    )
    .await;
    assert_eq!(
        granted.status(),
        StatusCode::OK,
        "another user's roles are an admin's to change"
    );
    app.stop().await;
}

#[tokio::test]
async fn token_lifetimes_have_a_maximum() {
    let app = spawn_app().await;
    for days in [0, 366, 2_147_483_647_u32] {
        let (status, _, body) = error_of(
            call(
                &app,
                Method::POST,
                "/api/v1/tokens",
                &app.admin_token,
                Some(json!({"name": "forever", "expires_in_days": days})),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{days}");
        assert_eq!(body["error"]["details"]["field"], "expires_in_days");
        assert!(body["error"]["message"].as_str().unwrap().contains("365"));
    }
    let longest = call(
        &app,
        Method::POST,
        "/api/v1/tokens",
        &app.admin_token,
        Some(json!({"name": "a-year", "expires_in_days": 365})),
    )
    .await;
    assert_eq!(longest.status(), StatusCode::CREATED);
    app.user_with_token("lena", &[]).await;
    let login = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "lena", "password": PASSWORD, "expires_in_days": 100_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn long_text_is_refused_naming_the_field_and_the_limit() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let (status, _, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/models",
            &developer,
            Some(json!({"name": "wordy", "risk_tier": "low", "description": "d".repeat(20_001)})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["details"],
        json!({"field": "description", "max_chars": 20_000})
    );
    assert_eq!(
        app.create_model(&developer, "wordy", "low").await.status(),
        StatusCode::CREATED
    );
    let (status, _, body) = error_of(
        call(
            &app,
            Method::PUT,
            "/api/v1/models/wordy/tags/team",
            &developer,
            Some(json!({"value": "v".repeat(1_001)})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["field"], "value");
    app.push_version(&developer, "wordy", payload(8)).await;
    let (status, _, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/requests",
            &developer,
            Some(json!({"model": "wordy", "version": 1, "stage": "staging", "justification": "j".repeat(10_001)})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["field"], "justification");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_changes_your_own_password_given_the_current_one() {
    let app = spawn_app().await;
    let token = app.user_with_token("cli-user", &["validator"]).await;
    let config_dir = tempfile::tempdir().unwrap();
    let run = |stdin: &'static str| {
        let url = app.url("");
        let token = token.clone();
        let config = config_dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_modelgate"))
                .args(["user", "passwd", "--current-password-stdin"])
                .env("MODELGATE_SERVER", url)
                .env("MODELGATE_TOKEN", token)
                .env("MODELGATE_CONFIG_DIR", config)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        })
    };
    let wrong = run("not the current one\nbrand new password\n")
        .await
        .unwrap();
    assert!(!wrong.status.success());
    let changed = run("a long enough password\nbrand new password\n")
        .await
        .unwrap();
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    assert_eq!(
        login_status(&app, "cli-user", "brand new password").await,
        StatusCode::CREATED
    );
    app.stop().await;
}
