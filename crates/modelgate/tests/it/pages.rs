//! The web UI over plain HTTP (the browser tests drive Chromium; these check what a browser cannot show):
//! sessions and their cookie, expiry on an injected clock, the lock-out, CSRF and Origin, separation of
//! duties on a forged post, security headers, escaping, and that pages call the same rules as the API.

use crate::support::{AppOptions, TestApp, spawn_app, spawn_app_with};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const PASSWORD: &str = "a long enough password";

/// A signed-in browser without a browser: the session cookie, sent by hand, and no redirects followed.
struct Page {
    cookie: String,
    http: reqwest::Client,
    base: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    /// The first CSRF token in the page's forms.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self
            .body
            .find(marker)
            .expect("the page has a form with a CSRF token")
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| {
            let encoded: String = value
                .bytes()
                .map(|byte| {
                    if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                        (byte as char).to_string()
                    } else {
                        format!("%{byte:02X}")
                    }
                })
                .collect();
            format!("{name}={encoded}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn send(
    http: &reqwest::Client,
    method: Method,
    url: String,
    cookie: &str,
    form: Option<String>,
    origin: Option<&str>,
) -> Answer {
    let mut request = http.request(method, url);
    if !cookie.is_empty() {
        request = request.header("cookie", cookie);
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(form) = form {
        request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// The `name=value` of a `Set-Cookie` for `name`.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(|value| {
            let pair = value.split(';').next().unwrap().to_owned();
            (pair, value.to_owned())
        })
}

impl Page {
    async fn sign_in(app: &TestApp, username: &str, password: &str) -> Self {
        let (page, answer) = Self::try_sign_in(app, username, password, "/").await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        page.expect("signed in")
    }

    /// Fetches the sign-in form (its CSRF cookie) and posts it.
    async fn try_sign_in(
        app: &TestApp,
        username: &str,
        password: &str,
        next: &str,
    ) -> (Option<Self>, Answer) {
        let http = client();
        let base = app.url("");
        let form = send(&http, Method::GET, format!("{base}/login"), "", None, None).await;
        assert_eq!(form.status, StatusCode::OK);
        let (login_cookie, _) = set_cookie(&form.headers, "modelgate_login_csrf").unwrap();
        let body = form_body(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &form.csrf()),
            ("next", next),
        ]);
        let answer = send(
            &http,
            Method::POST,
            format!("{base}/login"),
            &login_cookie,
            Some(body),
            Some(&base),
        )
        .await;
        let page = set_cookie(&answer.headers, "modelgate_session").map(|(cookie, _)| Self {
            cookie,
            http: http.clone(),
            base: base.clone(),
        });
        (page, answer)
    }

    async fn get(&self, path: &str) -> Answer {
        send(
            &self.http,
            Method::GET,
            format!("{}{path}", self.base),
            &self.cookie,
            None,
            None,
        )
        .await
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.post_from(path, fields, Some(&self.base.clone())).await
    }

    async fn post_from(&self, path: &str, fields: &[(&str, &str)], origin: Option<&str>) -> Answer {
        send(
            &self.http,
            Method::POST,
            format!("{}{path}", self.base),
            &self.cookie,
            Some(form_body(fields)),
            origin,
        )
        .await
    }
}

/// `POST /api/v1/…` as the admin.
async fn admin_call(app: &TestApp, method: Method, path: &str, body: Value) -> Value {
    let response = app
        .request(method, path, &app.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let events: Value = app
        .request(
            Method::GET,
            &format!("/api/v1/audit/events?{query}"),
            &app.admin_token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    events["events"].as_array().unwrap().clone()
}

/// A medium-tier model by `dev` with one version, and `dev`'s open request into staging (the default
/// policy asks one validator sign-off there). Returns the request id.
async fn open_request(app: &TestApp, description: &str, justification: &str) -> i64 {
    let dev = app.user_with_token("dev", &["model_developer"]).await;
    let created = app
        .request(Method::POST, "/api/v1/models", &dev)
        .json(&json!({ "name": "fraud", "risk_tier": "medium", "description": description }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    app.push_version(&dev, "fraud", b"model bytes".to_vec())
        .await;
    let opened: Value = app
        .request(Method::POST, "/api/v1/requests", &dev)
        .json(&json!({ "model": "fraud", "version": 1, "stage": "staging", "justification": justification }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    opened["id"].as_i64().unwrap()
}

#[tokio::test]
async fn signed_out_pages_send_to_the_sign_in_form_and_back() {
    let app = spawn_app().await;
    let http = client();
    let answer = send(
        &http,
        Method::GET,
        app.url("/requests/7?tab=x"),
        "",
        None,
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/login?next=/requests/7%3Ftab%3Dx");
    app.user_with_token("val", &["validator"]).await;
    let (page, answer) = Page::try_sign_in(&app, "val", PASSWORD, "/policy").await;
    assert!(page.is_some());
    assert_eq!(answer.location(), "/policy", "back where they were going");
    // Only local paths: the sign-in form cannot be used to send someone to another site.
    let (_, answer) = Page::try_sign_in(&app, "val", PASSWORD, "//evil.example/x").await;
    assert_eq!(answer.location(), "/");
    // An unknown page is a page, not the API's JSON.
    let missing = page.unwrap().get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.body.contains("<h1>Not found</h1>"),
        "{}",
        missing.body
    );
    app.stop().await;
}

#[tokio::test]
async fn a_session_is_a_hardened_cookie_stored_only_as_a_hash_and_sign_out_ends_it() {
    let app = spawn_app().await;
    app.user_with_token("val", &["validator"]).await;
    let http = client();
    let form = send(&http, Method::GET, app.url("/login"), "", None, None).await;
    let (login_cookie, _) = set_cookie(&form.headers, "modelgate_login_csrf").unwrap();
    let answer = send(
        &http,
        Method::POST,
        app.url("/login"),
        &login_cookie,
        Some(form_body(&[
            ("username", "val"),
            ("password", PASSWORD),
            ("csrf_token", &form.csrf()),
        ])),
        None,
    )
    .await;
    let (pair, attributes) = set_cookie(&answer.headers, "modelgate_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(attributes.contains(attribute), "{attributes}");
    }
    assert!(
        !attributes.contains("Secure"),
        "plain http: no Secure unless --public-url is https"
    );
    let secret = pair.trim_start_matches("modelgate_session=").to_owned();
    assert_eq!(secret.len(), 43, "256 random bits");
    // The database holds the hash, never the secret.
    let database = std::fs::read(app.data_dir.path().join("modelgate.db")).unwrap_or_default();
    let wal = std::fs::read(app.data_dir.path().join("modelgate.db-wal")).unwrap_or_default();
    let haystack = [database, wal].concat();
    assert!(haystack.len() > 4096, "the SQLite files were read");
    assert!(
        !haystack
            .windows(secret.len())
            .any(|window| window == secret.as_bytes())
    );
    // A session cookie never authorises the API.
    let api = app
        .http
        .get(app.url("/api/v1/whoami"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let page = Page {
        cookie: pair.clone(),
        http: client(),
        base: app.url(""),
    };
    let inbox = page.get("/").await;
    assert_eq!(inbox.status, StatusCode::OK);
    assert!(inbox.body.contains("val Example (val)"));
    let out = page.post("/logout", &[("csrf_token", &inbox.csrf())]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        set_cookie(&out.headers, "modelgate_session")
            .unwrap()
            .1
            .contains("Max-Age=0")
    );
    // Replaying the old cookie after sign-out gets the sign-in form.
    let replay = page.get("/").await;
    assert_eq!(replay.status, StatusCode::SEE_OTHER);
    assert!(replay.location().starts_with("/login"));
    let actions: Vec<String> = audit(&app, "target=user/val")
        .await
        .iter()
        .map(|event| event["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        actions.contains(&"session.create".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"session.revoke".to_owned()),
        "{actions:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn sessions_end_when_idle_and_after_their_lifetime() {
    let offset = Arc::new(AtomicI64::new(0));
    let app = spawn_app_with(AppOptions {
        clock_offset: Some(offset.clone()),
        ..AppOptions::default()
    })
    .await;
    app.user_with_token("val", &["validator"]).await;
    let page = Page::sign_in(&app, "val", PASSWORD).await;
    let minute = 60_000;
    // Used every 29 minutes, it lives; idle 31 minutes, it ends.
    offset.store(29 * minute, Ordering::SeqCst);
    assert_eq!(page.get("/models").await.status, StatusCode::OK);
    offset.store(29 * minute + 31 * minute, Ordering::SeqCst);
    let idle = page.get("/models?tier=high").await;
    assert_eq!(idle.status, StatusCode::SEE_OTHER);
    assert_eq!(
        idle.location(),
        "/login?next=/models%3Ftier%3Dhigh&expired=1"
    );
    let form = client()
        .get(app.url(idle.location()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("Your session has ended"), "{form}");
    // However active, a session ends 12 hours after sign-in.
    let page = Page::sign_in(&app, "val", PASSWORD).await;
    let start = offset.load(Ordering::SeqCst);
    let mut elapsed = 0;
    while elapsed + 25 * minute < 12 * 60 * minute {
        elapsed += 25 * minute;
        offset.store(start + elapsed, Ordering::SeqCst);
        assert_eq!(
            page.get("/").await.status,
            StatusCode::OK,
            "after {} min",
            elapsed / minute
        );
    }
    offset.store(start + 12 * 60 * minute, Ordering::SeqCst);
    assert_eq!(page.get("/").await.status, StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn wrong_passwords_lock_sign_in_out_and_are_audited() {
    let app = spawn_app().await;
    app.user_with_token("val", &["validator"]).await;
    for attempt in 1..=5 {
        let (page, answer) = Page::try_sign_in(&app, "val", "not the password", "/").await;
        assert!(page.is_none());
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert!(
            answer.body.contains("id=\"form-error\""),
            "the error is on the page"
        );
        assert!(
            answer.body.contains("value=\"val\""),
            "the username stays filled in"
        );
    }
    let (page, answer) = Page::try_sign_in(&app, "val", PASSWORD, "/").await;
    assert!(page.is_none(), "locked even with the right password");
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        answer.body.contains("Too many wrong passwords"),
        "{}",
        answer.body
    );
    // The first refusal of a kind is written at once (the rest are grouped per minute).
    let refused = audit(&app, "action=auth.refused&target=user/val").await;
    assert!(
        refused.iter().any(|event| event["outcome"] == "denied"),
        "{refused:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn forms_need_the_sessions_csrf_token_and_this_servers_origin() {
    let app = spawn_app().await;
    let id = open_request(&app, "fraud model", "ready").await;
    app.user_with_token("val", &["validator"]).await;
    app.user_with_token("comp", &["compliance"]).await;
    let val = Page::sign_in(&app, "val", PASSWORD).await;
    let comp = Page::sign_in(&app, "comp", PASSWORD).await;
    let path = format!("/requests/{id}/comments");
    let token = val.get(&format!("/requests/{id}")).await.csrf();
    let others = comp.get("/").await.csrf();
    assert_ne!(token, others, "tokens are per session");
    let missing = val.post(&path, &[("body", "no token")]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.body.contains("Form expired"), "{}", missing.body);
    let foreign = val
        .post(
            &path,
            &[("csrf_token", &others), ("body", "another session's token")],
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    let cross_site = val
        .post_from(
            &path,
            &[("csrf_token", &token), ("body", "from elsewhere")],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    let request: Value = app
        .request(
            Method::GET,
            &format!("/api/v1/requests/{id}"),
            &app.admin_token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        request["comments"].as_array().unwrap().len(),
        0,
        "nothing refused was written"
    );
    let fine = val
        .post(
            &path,
            &[("csrf_token", &token), ("body", "Why this threshold?")],
        )
        .await;
    assert_eq!(fine.status, StatusCode::SEE_OTHER);
    assert_eq!(fine.location(), format!("/requests/{id}#discussion"));
    assert!(
        val.get(&format!("/requests/{id}"))
            .await
            .body
            .contains("Why this threshold?")
    );
    // The sign-in form has its own token, bound to a cookie.
    let login = send(
        &client(),
        Method::POST,
        app.url("/login"),
        "",
        Some(form_body(&[
            ("username", "val"),
            ("password", PASSWORD),
            ("csrf_token", "forged"),
        ])),
        None,
    )
    .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
    assert!(set_cookie(&login.headers, "modelgate_session").is_none());
    app.stop().await;
}

#[tokio::test]
async fn the_creator_gets_no_sign_off_panel_and_a_forged_approval_is_refused_and_audited() {
    let app = spawn_app().await;
    let id = open_request(&app, "fraud model", "ready").await;
    app.user_with_token("val", &["validator"]).await;
    let dev = Page::sign_in(&app, "dev", PASSWORD).await;
    let inbox = dev.get("/").await;
    let may_not = inbox.body.split("id=\"may-not-sign\"").nth(1).unwrap();
    assert!(
        may_not.contains(&format!("data-request=\"{id}\"")),
        "{}",
        inbox.body
    );
    assert!(may_not.contains("separation of duties"), "{may_not}");
    let request_page = dev.get(&format!("/requests/{id}")).await;
    assert!(
        !request_page.body.contains("id=\"signoff\" method"),
        "no panel"
    );
    assert!(request_page.body.contains("id=\"signoff-unavailable\""));
    let token = request_page.csrf();
    let forged = dev
        .post(
            &format!("/requests/{id}/review"),
            &[
                ("csrf_token", &token),
                ("decision", "approve"),
                ("role", "validator"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(
        forged.body.contains("does not hold the role")
            || forged.body.contains("separation of duties"),
        "{}",
        forged.body
    );
    let refused = audit(&app, &format!("target=request/{id}&action=review.approve")).await;
    assert!(
        refused
            .iter()
            .any(|event| event["outcome"] == "denied" && event["actor"] == "dev"),
        "{refused:?}"
    );
    // The validator's inbox lists it as waiting for them.
    let val = Page::sign_in(&app, "val", PASSWORD).await;
    let waiting = val.get("/").await;
    let section = waiting
        .body
        .split("id=\"waiting\"")
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap();
    assert!(
        section.contains(&format!("data-request=\"{id}\"")),
        "{section}"
    );
    assert!(
        waiting
            .body
            .contains("id=\"count-waiting\" aria-label=\"1 waiting for you\"")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_sign_off_in_the_page_is_the_apis_signature() {
    let app = spawn_app().await;
    let id = open_request(&app, "fraud model", "ready").await;
    app.user_with_token("val", &["validator"]).await;
    let val = Page::sign_in(&app, "val", PASSWORD).await;
    let page = val.get(&format!("/requests/{id}")).await;
    assert!(
        page.body.contains("id=\"signoff\" method"),
        "the validator has the panel"
    );
    let token = page.csrf();
    let path = format!("/requests/{id}/review");
    let wrong = val
        .post(
            &path,
            &[
                ("csrf_token", &token),
                ("decision", "approve"),
                ("role", "validator"),
                ("meaning", "validated"),
                ("password", "wrong password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("id=\"signoff-password-error\""),
        "the error is next to the password"
    );
    let reject_without_comment = val
        .post(
            &path,
            &[
                ("csrf_token", &token),
                ("decision", "reject"),
                ("role", "validator"),
            ],
        )
        .await;
    assert_eq!(reject_without_comment.status, StatusCode::BAD_REQUEST);
    assert!(
        reject_without_comment
            .body
            .contains("id=\"signoff-comment-error\"")
    );
    let signed = val
        .post(
            &path,
            &[
                ("csrf_token", &token),
                ("decision", "approve"),
                ("role", "validator"),
                ("meaning", "validated for staging"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let after = val.get(&format!("/requests/{id}")).await;
    assert!(after.body.contains("class=\"state state-approved\""));
    assert!(after.body.contains("validated for staging"));
    let api: Value = app
        .request(
            Method::GET,
            &format!("/api/v1/requests/{id}"),
            &app.admin_token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["state"], "approved");
    let review = &api["reviews"][0];
    assert_eq!(review["reviewer"], "val");
    assert!(
        review["signature"]
            .as_str()
            .is_some_and(|signature| !signature.is_empty())
    );
    assert!(
        after
            .body
            .contains(review["evidence_digest"].as_str().unwrap()),
        "the record shows what was signed"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_page_carries_the_security_headers_and_escapes_what_people_wrote() {
    let app = spawn_app().await;
    let hostile = "<script>window.__xss=1</script>\"><img src=x onerror=\"window.__xss=2\">";
    let id = open_request(&app, hostile, hostile).await;
    app.user_with_token("val", &["validator"]).await;
    let val = Page::sign_in(&app, "val", PASSWORD).await;
    let token = val.get("/").await.csrf();
    val.post(
        &format!("/requests/{id}/comments"),
        &[("csrf_token", &token), ("body", hostile)],
    )
    .await;
    for path in [
        "/",
        "/models",
        "/models/fraud",
        "/models/fraud/versions/1",
        &format!("/requests/{id}"),
        "/audit",
        "/policy",
        "/login",
    ] {
        let answer = val.get(path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let policy = header("content-security-policy");
        assert!(
            policy.contains("frame-ancestors 'none'") && policy.contains("default-src 'none'"),
            "{path}: {policy}"
        );
        assert!(!policy.contains("unsafe-inline"), "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(header("cache-control"), "no-store", "{path}");
        assert!(
            !answer.body.contains("<script"),
            "{path}: no script at all, and none injected"
        );
        assert!(!answer.body.contains("<img src=x"), "{path}");
        assert!(
            answer.body.len() < 150 * 1024,
            "{path} weighs {} bytes",
            answer.body.len()
        );
    }
    let policy = val.get("/policy").await;
    assert!(
        policy.body.contains("<dd>review_due</dd>"),
        "the policy's own spelling"
    );
    // What happens after deployment, per tier, as the default policy says it.
    let watched = policy
        .body
        .split("id=\"monitoring-table\"")
        .nth(1)
        .expect("the monitoring table");
    assert!(
        watched.contains("numbers: psi ≥ 0.2") && watched.contains("re-validate every 90 days"),
        "{watched}"
    );
    let request_page = val.get(&format!("/requests/{id}")).await;
    assert!(
        request_page
            .body
            .contains("&#60;script&#62;window.__xss=1&#60;/script&#62;"),
        "shown, escaped"
    );
    let stylesheet = request_page
        .body
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let asset = val.get(&stylesheet).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert!(
        asset.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(
        val.get("/static/app-000000000000.css").await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn the_admin_page_is_for_admins_and_its_actions_are_the_apis() {
    let app = spawn_app().await;
    app.user_with_token("val", &["validator"]).await;
    let val = Page::sign_in(&app, "val", PASSWORD).await;
    let refused = val.get("/admin").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        audit(&app, "action=admin.view")
            .await
            .iter()
            .any(|event| event["outcome"] == "denied")
    );
    // The bootstrap admin has only a token: a first password set with it signs in (and cannot sign).
    admin_call(
        &app,
        Method::PATCH,
        "/api/v1/users/admin",
        json!({ "password": "the admin's first password" }),
    )
    .await;
    let admin = Page::sign_in(&app, "admin", "the admin's first password").await;
    let page = admin.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-user=\"val\""));
    let tokens: Value = app
        .request(Method::GET, "/api/v1/tokens?all=true", &app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vals = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|token| token["username"] == "val")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = admin
        .post(
            &format!("/admin/tokens/{vals}/revoke"),
            &[("csrf_token", &page.csrf())],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert!(admin.get("/admin").await.body.contains("revoked"));
    let deactivated = admin
        .post(
            "/admin/users/val/deactivate",
            &[("csrf_token", &page.csrf())],
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::SEE_OTHER);
    assert_eq!(
        val.get("/").await.status,
        StatusCode::SEE_OTHER,
        "a deactivated user's session ends"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_inventory_filters_sorts_and_pages_on_the_server() {
    let app = spawn_app().await;
    let dev = app.user_with_token("dev", &["model_developer"]).await;
    for (name, tier) in [
        ("alpha", "low"),
        ("beta", "critical"),
        ("gamma", "medium"),
        ("delta", "high"),
    ] {
        assert_eq!(
            app.create_model(&dev, name, tier).await.status(),
            StatusCode::CREATED
        );
    }
    let page = Page::sign_in(&app, "dev", PASSWORD).await;
    let order = |body: &str| -> Vec<String> {
        body.split("data-model=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        order(&page.get("/models").await.body),
        ["alpha", "beta", "delta", "gamma"]
    );
    assert_eq!(
        order(&page.get("/models?sort=tier&order=desc").await.body),
        ["beta", "delta", "gamma", "alpha"]
    );
    assert_eq!(
        order(&page.get("/models?tier=medium").await.body),
        ["gamma"]
    );
    assert_eq!(order(&page.get("/models?q=ELT").await.body), ["delta"]);
    assert_eq!(
        order(&page.get("/models?approval=active").await.body),
        Vec::<String>::new()
    );
    assert_eq!(
        order(&page.get("/models?approval=unapproved").await.body).len(),
        4
    );
    let wrong = page.get("/models?tier=severe").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.body.contains("id=\"form-error\""));
    app.stop().await;
}

/// The README's web UI steps with the real binary: a first password set with the token alone signs in
/// but cannot sign; a reviewer created with a password signs in.
#[tokio::test]
async fn the_readmes_web_ui_steps_give_people_a_way_in() {
    let server = crate::cli::Server::start();
    let output = server.run_with_stdin(
        &["user", "update", "alice", "--password-stdin"],
        Some("a long admin password\n"),
    );
    assert!(output.status.success(), "{}", crate::cli::stderr(&output));
    let output = server.run_with_stdin(
        &[
            "user",
            "create",
            "carol",
            "--printed-name",
            "Carol Example",
            "--role",
            "compliance",
            "--password-stdin",
        ],
        Some("a long password for carol\n"),
    );
    assert!(output.status.success(), "{}", crate::cli::stderr(&output));
    let app_like = |username: &str, password: &str| {
        let base = server.url.clone();
        let username = username.to_owned();
        let password = password.to_owned();
        async move {
            let http = client();
            let form = send(&http, Method::GET, format!("{base}/login"), "", None, None).await;
            let (cookie, _) = set_cookie(&form.headers, "modelgate_login_csrf").unwrap();
            let answer = send(
                &http,
                Method::POST,
                format!("{base}/login"),
                &cookie,
                Some(form_body(&[
                    ("username", &username),
                    ("password", &password),
                    ("csrf_token", &form.csrf()),
                ])),
                None,
            )
            .await;
            set_cookie(&answer.headers, "modelgate_session").map(|(cookie, _)| Page {
                cookie,
                http,
                base,
            })
        }
    };
    let alice = app_like("alice", "a long admin password")
        .await
        .expect("alice signs in");
    let inbox = alice.get("/").await;
    assert_eq!(inbox.status, StatusCode::OK);
    assert!(inbox.body.contains("Alice Example (alice)"));
    let carol = app_like("carol", "a long password for carol")
        .await
        .expect("carol signs in");
    assert_eq!(carol.get("/policy").await.status, StatusCode::OK);
}

/// A stolen token must not become a signature: an account without a password may set a first one with
/// its token alone, and that password signs in but cannot sign until its owner changes it.
#[tokio::test]
async fn a_first_password_set_with_a_token_alone_cannot_sign() {
    let app = spawn_app().await;
    let id = open_request(&app, "fraud model", "ready").await;
    admin_call(
        &app,
        Method::POST,
        "/api/v1/users",
        json!({ "username": "val", "printed_name": "Val", "roles": ["validator"] }),
    )
    .await;
    let token = admin_call(
        &app,
        Method::POST,
        "/api/v1/tokens",
        json!({ "name": "t", "username": "val" }),
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let set = app
        .request(Method::PATCH, "/api/v1/users/val", &token)
        .json(&json!({ "password": "val's first password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        set.status(),
        StatusCode::OK,
        "{}",
        set.text().await.unwrap()
    );
    let review = app
        .request(Method::POST, &format!("/api/v1/requests/{id}/reviews"), &token)
        .json(&json!({ "decision": "approve", "role": "validator", "password": "val's first password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(review.status(), StatusCode::FORBIDDEN);
    assert!(review.text().await.unwrap().contains("cannot sign"));
    // Once the owner sets their own (giving the current one), it signs.
    let changed = app
        .request(Method::PATCH, "/api/v1/users/val", &token)
        .json(&json!({ "password": "val's own password", "current_password": "val's first password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let review = app
        .request(Method::POST, &format!("/api/v1/requests/{id}/reviews"), &token)
        .json(&json!({ "decision": "approve", "role": "validator", "password": "val's own password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        review.status(),
        StatusCode::OK,
        "{}",
        review.text().await.unwrap()
    );
    app.stop().await;
}

/// The inbox lists each request with its due date (`review_within_days` after opening, 5 by default)
/// and marks it overdue once that has passed.
#[tokio::test]
async fn the_inbox_shows_when_a_request_is_due_and_when_it_is_overdue() {
    let offset = Arc::new(AtomicI64::new(0));
    let app = spawn_app_with(AppOptions {
        clock_offset: Some(offset.clone()),
        ..AppOptions::default()
    })
    .await;
    let id = open_request(&app, "fraud model", "ready").await;
    app.user_with_token("val", &["validator"]).await;
    let inbox = Page::sign_in(&app, "val", PASSWORD).await.get("/").await;
    let row = inbox
        .body
        .split(&format!("data-request=\"{id}\""))
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap()
        .to_owned();
    assert!(row.contains("data-label=\"Due\""), "{row}");
    assert!(!row.contains("overdue"), "{row}");
    offset.store(6 * 86_400_000, Ordering::SeqCst);
    let inbox = Page::sign_in(&app, "val", PASSWORD).await.get("/").await;
    let row = inbox
        .body
        .split(&format!("data-request=\"{id}\""))
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap()
        .to_owned();
    assert!(row.contains("overdue since"), "{row}");
    app.stop().await;
}

/// A request page shows the verified evaluation: how it was obtained, overall metrics with their 95 %
/// intervals, fairness with the four-fifths verdict, and the ROC curve and reliability diagram as SVG.
#[tokio::test]
async fn a_request_page_shows_the_verified_evaluation_with_its_charts() {
    use crate::evaluation::{holdout, register, upload_text};
    let app = spawn_app().await;
    let id = open_request(&app, "fraud model", "ready").await;
    let dev = app
        .request(Method::POST, "/api/v1/tokens", &app.admin_token)
        .json(&json!({ "name": "eval", "username": "dev" }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let csv = holdout(false);
    assert_eq!(
        register(&app, &dev, "holdout-v2", &csv).await.status(),
        StatusCode::CREATED
    );
    let predictions = upload_text(&app, &dev, &csv).await;
    let evaluation = app
        .request(Method::POST, "/api/v1/evaluations", &dev)
        .json(
            &json!({ "wait": true, "model": "fraud", "version": 1, "dataset": "holdout-v2",
            "predictions_digest": predictions, "score_column": "score" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(evaluation.status(), StatusCode::CREATED);
    let evaluation: Value = evaluation.json().await.unwrap();
    let curve = evaluation["results"]["roc_curve"].as_array().unwrap();
    assert!(
        curve.len() > 2 && curve.len() <= 202,
        "{} points",
        curve.len()
    );
    app.user_with_token("val", &["validator"]).await;
    let page = Page::sign_in(&app, "val", PASSWORD)
        .await
        .get(&format!("/requests/{id}"))
        .await;
    let section = page
        .body
        .split("id=\"evaluations\"")
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap();
    assert!(
        section.contains("on holdout-v2 (binary, predictions mode)"),
        "{section}"
    );
    assert!(
        section.contains("scores a client supplied"),
        "how it was obtained"
    );
    assert!(section.contains("aria-label=\"ROC curve"), "{section}");
    assert!(
        section.contains("aria-label=\"Reliability diagram"),
        "{section}"
    );
    let auc = evaluation["results"]["intervals"]["roc_auc"]["low"]
        .as_f64()
        .unwrap();
    assert!(
        section.contains(&format!("{auc:.4} –")),
        "the interval is shown: {section}"
    );
    assert!(
        section.contains("Four-fifths rule") && section.contains(">fails<"),
        "the unfair holdout fails: {section}"
    );
    app.stop().await;
}

/// A developer opens a request from the version page and withdraws it from the request page, through the
/// API's handlers (so the same rules: a justification is needed, only one's own request is withdrawn).
#[tokio::test]
async fn a_developer_opens_and_withdraws_a_request_in_the_browser() {
    let app = spawn_app().await;
    let dev_token = app.user_with_token("dev", &["model_developer"]).await;
    assert_eq!(
        app.create_model(&dev_token, "churn", "medium")
            .await
            .status(),
        StatusCode::CREATED
    );
    app.push_version(&dev_token, "churn", b"churn model".to_vec())
        .await;
    let dev = Page::sign_in(&app, "dev", PASSWORD).await;
    let version = dev.get("/models/churn/versions/1").await;
    assert!(
        version.body.contains("Request promotion to staging"),
        "{}",
        version.body
    );
    let token = version.csrf();
    let empty = dev
        .post(
            "/models/churn/versions/1/requests",
            &[
                ("csrf_token", &token),
                ("stage", "staging"),
                ("justification", "  "),
            ],
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.body.contains("id=\"form-error\""), "{}", empty.body);
    let opened = dev
        .post(
            "/models/churn/versions/1/requests",
            &[
                ("csrf_token", &token),
                ("stage", "staging"),
                ("justification", "holdout AUC 0.91"),
            ],
        )
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    let request_path = opened.location().to_owned();
    assert!(request_path.starts_with("/requests/"), "{request_path}");
    let page = dev.get(&request_path).await;
    assert!(page.body.contains("holdout AUC 0.91") && page.body.contains("id=\"withdraw\""));
    // Someone else cannot withdraw it: the API's rule, refused and audited.
    app.user_with_token("val", &["validator"]).await;
    let val = Page::sign_in(&app, "val", PASSWORD).await;
    let val_page = val.get(&request_path).await;
    assert!(!val_page.body.contains("id=\"withdraw\""));
    let refused = val
        .post(
            &format!("{request_path}/withdraw"),
            &[("csrf_token", &val_page.csrf())],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let withdrawn = dev
        .post(
            &format!("{request_path}/withdraw"),
            &[("csrf_token", &token), ("reason", "found a bug")],
        )
        .await;
    assert_eq!(withdrawn.status, StatusCode::SEE_OTHER);
    let after = dev.get(&request_path).await;
    assert!(
        after.body.contains("state-withdrawn") && after.body.contains("found a bug"),
        "{}",
        after.body
    );
    app.stop().await;
}

/// What a review of the UI found, each held by a test: a signature binds to the evidence the page showed;
/// the page counts approvals as the decision does; a policy without the step's gate still shows the
/// request; the meaning follows the role chosen.
#[tokio::test]
async fn a_signature_binds_to_the_evidence_the_page_showed() {
    let app = spawn_app().await;
    let id = open_request(&app, "fraud model", "ready").await;
    app.user_with_token("val", &["validator"]).await;
    let val = Page::sign_in(&app, "val", PASSWORD).await;
    let page = val.get(&format!("/requests/{id}")).await;
    let shown = page
        .body
        .split("name=\"evidence_digest\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(shown.starts_with("sha256:"), "{shown}");
    // The developer changes the card after the validator loaded the page.
    let dev = admin_call(
        &app,
        Method::POST,
        "/api/v1/tokens",
        json!({ "name": "card", "username": "dev" }),
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let card = app
        .request(Method::PUT, "/api/v1/models/fraud/versions/1/card", &dev)
        .json(&json!({ "card": { "model_details": { "name": "fraud" }, "limitations": "none whatsoever" } }))
        .send()
        .await
        .unwrap();
    assert!(card.status().is_success(), "{}", card.text().await.unwrap());
    let stale = val
        .post(
            &format!("/requests/{id}/review"),
            &[
                ("csrf_token", &page.csrf()),
                ("evidence_digest", &shown),
                ("decision", "approve"),
                ("role", "validator"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(
        stale
            .body
            .contains("the evidence changed after it was shown to you"),
        "{}",
        stale.body
    );
    let request: Value = app
        .request(
            Method::GET,
            &format!("/api/v1/requests/{id}"),
            &app.admin_token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(request["state"], "open");
    assert_eq!(
        request["reviews"].as_array().unwrap().len(),
        0,
        "nothing was signed"
    );
    // Signed again from a fresh page, with the meaning left empty: the server words it for the role.
    let fresh = val.get(&format!("/requests/{id}")).await;
    let now_shown = fresh
        .body
        .split("name=\"evidence_digest\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(now_shown, shown);
    let signed = val
        .post(
            &format!("/requests/{id}/review"),
            &[
                ("csrf_token", &fresh.csrf()),
                ("evidence_digest", &now_shown),
                ("decision", "approve"),
                ("role", "validator"),
                ("meaning", ""),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let request: Value = app
        .request(
            Method::GET,
            &format!("/api/v1/requests/{id}"),
            &app.admin_token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        request["reviews"][0]["meaning"],
        "approved for staging as validator"
    );
    assert_eq!(request["reviews"][0]["evidence_digest"], now_shown.as_str());
    app.stop().await;
}

#[tokio::test]
async fn the_request_page_counts_approvals_as_the_decision_does() {
    let app = spawn_app().await;
    let dev = app.user_with_token("dev", &["model_developer"]).await;
    assert_eq!(
        app.create_model(&dev, "churn", "medium").await.status(),
        StatusCode::CREATED
    );
    app.push_version(&dev, "churn", b"churn".to_vec()).await;
    // Medium into production needs a validator and a business owner; start from staging.
    admin_call(&app, Method::PUT, "/api/v1/policy", json!({ "text": std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default.toml")).unwrap().replacen("tier = \"medium\"\nstage = \"staging\"\nsignoffs = [{ role = \"validator\", count = 1 }]", "tier = \"medium\"\nstage = \"staging\"\nsignoffs = [{ role = \"validator\", count = 2 }]", 1) })).await;
    let opened: Value = app
        .request(Method::POST, "/api/v1/requests", &dev)
        .json(&json!({ "model": "churn", "version": 1, "stage": "staging", "justification": "ready" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = opened["id"].as_i64().unwrap();
    let val = app.user_with_token("val", &["validator"]).await;
    app.user_with_token("val2", &["validator"]).await;
    let approved = app
        .request(
            Method::POST,
            &format!("/api/v1/requests/{id}/reviews"),
            &val,
        )
        .json(&json!({ "decision": "approve", "role": "validator", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        approved.status(),
        StatusCode::OK,
        "{}",
        approved.text().await.unwrap()
    );
    admin_call(
        &app,
        Method::PATCH,
        "/api/v1/users/val",
        json!({ "active": false }),
    )
    .await;
    let val2 = Page::sign_in(&app, "val2", PASSWORD).await;
    let page = val2.get(&format!("/requests/{id}")).await;
    let row = page
        .body
        .split("data-role=\"validator\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap()
        .to_owned();
    assert!(
        row.contains("<td>2</td><td>0</td>"),
        "a deactivated reviewer's approval does not count: {row}"
    );
    assert!(
        page.body.contains("id=\"signoff\" method"),
        "val2 may still sign"
    );
    app.stop().await;
}

#[tokio::test]
async fn sessions_end_when_the_password_changes_and_bad_addresses_get_pages() {
    let app = spawn_app().await;
    app.user_with_token("val", &["validator"]).await;
    let val = Page::sign_in(&app, "val", PASSWORD).await;
    assert_eq!(val.get("/").await.status, StatusCode::OK);
    admin_call(
        &app,
        Method::PATCH,
        "/api/v1/users/val",
        json!({ "password": "a password the admin chose" }),
    )
    .await;
    let after = val.get("/").await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "a reset ends the sessions made with the old password"
    );
    let val = Page::sign_in(&app, "val", "a password the admin chose").await;
    for (path, status) in [
        ("/models?page=abc", StatusCode::BAD_REQUEST),
        ("/audit?before=-1", StatusCode::BAD_REQUEST),
        ("/policy?from=x&to=1", StatusCode::BAD_REQUEST),
        (
            &format!("/models?q={}", "_".repeat(300)),
            StatusCode::BAD_REQUEST,
        ),
        ("/requests/99999999999999999999", StatusCode::NOT_FOUND),
    ] {
        let answer = val.get(path).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
        assert!(
            answer.body.contains("<main id=\"main\">"),
            "{path}: an error page in the layout"
        );
        assert!(
            answer.body.contains("href=\"/models\""),
            "{path}: with the navigation"
        );
    }
    let (_, answer) = Page::try_sign_in(
        &app,
        "val",
        "a password the admin chose",
        "/\t/evil.example",
    )
    .await;
    assert_eq!(answer.location(), "/");
    app.stop().await;
}

/// An approval given before the evidence changed is void, so the request waits in validators' inboxes
/// again (the inbox compares evidence revisions).
#[tokio::test]
async fn a_voided_approval_puts_the_request_back_in_the_inbox() {
    let app = spawn_app().await;
    let id = open_request(&app, "fraud model", "ready").await;
    app.edit_policy(
        "tier = \"medium\"\nstage = \"staging\"\nsignoffs = [{ role = \"validator\", count = 1 }]",
        "tier = \"medium\"\nstage = \"staging\"\nsignoffs = [{ role = \"validator\", count = 2 }]",
    )
    .await;
    let val = app.user_with_token("val", &["validator"]).await;
    app.user_with_token("val2", &["validator"]).await;
    let approved = app
        .request(
            Method::POST,
            &format!("/api/v1/requests/{id}/reviews"),
            &val,
        )
        .json(&json!({ "decision": "approve", "role": "validator", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        approved.status(),
        StatusCode::OK,
        "{}",
        approved.text().await.unwrap()
    );
    let val_page = Page::sign_in(&app, "val", PASSWORD).await;
    let waiting = |body: &str| {
        body.split("id=\"waiting\"")
            .nth(1)
            .unwrap()
            .split("</section>")
            .next()
            .unwrap()
            .contains(&format!("data-request=\"{id}\""))
    };
    assert!(
        !waiting(&val_page.get("/").await.body),
        "val signed already"
    );
    let dev = admin_call(
        &app,
        Method::POST,
        "/api/v1/tokens",
        json!({ "name": "card", "username": "dev" }),
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let card = app
        .request(Method::PUT, "/api/v1/models/fraud/versions/1/card", &dev)
        .json(&json!({ "card": { "model_details": { "name": "fraud" }, "limitations": "changed after the approval" } }))
        .send()
        .await
        .unwrap();
    assert!(card.status().is_success());
    assert!(
        waiting(&val_page.get("/").await.body),
        "the approval is void: val may sign again"
    );
    let mine = Page::sign_in(&app, "dev", PASSWORD).await.get("/").await;
    let row = mine
        .body
        .split("id=\"mine\"")
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap()
        .to_owned();
    assert!(row.contains("2 × validator"), "{row}");
    app.stop().await;
}

/// Refused attempts and chatter do not push a model's stage history out of its page.
#[tokio::test]
async fn a_models_stage_history_survives_a_flood_of_refusals() {
    let app = spawn_app().await;
    let id = open_request(&app, "fraud model", "ready").await;
    app.user_with_token("val", &["validator"]).await;
    let val = Page::sign_in(&app, "val", PASSWORD).await;
    let token = val.get("/").await.csrf();
    for _ in 0..210 {
        let refused = val
            .post(
                &format!("/requests/{id}/withdraw"),
                &[("csrf_token", &token)],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
    let page = val.get("/models/fraud").await;
    let history = page.body.split("id=\"history\"").nth(1).unwrap();
    assert!(history.contains("version 1 registered"), "{history}");
    // And the search folds case the same way on both sides (ASCII on SQLite).
    let found = val.get("/models?q=FRAUD").await;
    assert!(found.body.contains("data-model=\"fraud\""));
    app.stop().await;
}

/// The request page lists what the artifact scanner found, worst first; the names come from the
/// artifact (attacker-chosen) and render as text.
#[tokio::test]
async fn a_request_page_shows_what_the_artifact_scanner_found() {
    let app = spawn_app().await;
    let dev = app.user_with_token("dev", &["model_developer"]).await;
    app.create_model(&dev, "fraud", "medium").await;
    // A protocol-2 pickle importing `os.system` and a module named like markup, then calling it.
    let mut pickle = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.".to_vec();
    pickle.extend_from_slice(b"c<img src=x onerror=alert(1)>\nx\n.");
    app.push_version(&dev, "fraud", pickle).await;
    let opened: Value = app
        .request(Method::POST, "/api/v1/requests", &dev)
        .json(&json!({ "model": "fraud", "version": 1, "stage": "staging", "justification": "ready" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = opened["id"].as_i64().unwrap();
    app.user_with_token("val", &["validator"]).await;
    let page = Page::sign_in(&app, "val", PASSWORD)
        .await
        .get(&format!("/requests/{id}"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = &page.body;
    assert!(
        html.contains("What the artifact scanner found: <span class=\"status status-dangerous\">dangerous</span>"),
        "{html}"
    );
    let first_finding = html
        .split("<tr class=\"scan-finding\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no finding rows in {html}"));
    assert!(
        first_finding.starts_with(" data-severity=\"dangerous\"")
            && first_finding.contains("os.system"),
        "the worst finding comes first: {first_finding}"
    );
    assert!(!html.contains("<img src=x"), "scanner text is escaped");
}

/// Where people look after deployment: the model page, the version's API record and the card export all
/// show the last batch, the drifted features, the KPIs and the breaches with what they did.
#[tokio::test]
async fn a_models_page_shows_how_its_deployed_versions_are_watched() {
    use crate::monitoring::{batch_csv, deploy_watched_credit, upload};
    let app = spawn_app().await;
    deploy_watched_credit(&app).await;
    app.user_with_token("val", &["validator"]).await;
    let val = Page::sign_in(&app, "val", PASSWORD).await;
    let before = val.get("/models/credit").await;
    let section = before.body.split("id=\"monitoring\"").nth(1).unwrap();
    assert!(section.contains("no batch yet"), "{section}");

    let shifted = upload(&app, batch_csv(300, 40.0, &["<script>q</script>"])).await;
    let batch = admin_call(
        &app,
        Method::POST,
        "/api/v1/models/credit/versions/1/monitoring/batches",
        json!({ "digest": shifted, "reference": "ref" }),
    )
    .await;
    let kpi = admin_call(
        &app,
        Method::POST,
        "/api/v1/models/credit/kpis",
        json!({ "name": "approval_rate", "value": 0.93, "version": 1 }),
    )
    .await;
    assert_eq!(kpi["breaches"][0]["action"], "review");

    let version = admin_call(
        &app,
        Method::GET,
        "/api/v1/models/credit/versions/1",
        json!(null),
    )
    .await;
    let monitoring = &version["monitoring"];
    assert_eq!(monitoring["monitored"], true, "{version}");
    assert_eq!(monitoring["latest_batch"]["id"], batch["id"]);
    assert_eq!(monitoring["kpis"][0]["name"], "approval_rate");
    let sources: Vec<&str> = monitoring["breaches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|breach| breach["source"].as_str().unwrap())
        .collect();
    assert!(
        sources.contains(&format!("batch {}", batch["id"]).as_str())
            && sources.contains(&format!("KPI observation {}", kpi["id"]).as_str()),
        "{sources:?}"
    );
    assert_eq!(version["approval"]["status"], "review_due", "{version}");

    let page = val.get("/models/credit").await;
    let section = page.body.split("id=\"monitoring\"").nth(1).unwrap();
    let section = section.split("id=\"history\"").next().unwrap();
    assert!(
        section.contains("dataset drifted")
            && section.contains("<tr class=\"drifted\"><td data-label=\"Feature\">x</td>")
            && section.contains("approval_rate")
            && section.contains("kpi approval_rate = 0.93 &#62; 0.8"),
        "{section}"
    );

    let export = app
        .request(
            Method::GET,
            "/api/v1/models/credit/versions/1/card/export?format=markdown",
            &app.admin_token,
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let section = export
        .split("## Monitoring after deployment")
        .nth(1)
        .unwrap_or_else(|| panic!("{export}"));
    assert!(
        section.contains(&format!("Last batch {}", batch["id"]))
            && section.contains("Feature x: PSI")
            && section.contains("— drifted")
            && section.contains("KPI approval_rate = 0.93")
            && section.contains("Approval review due: review due by monitoring: kpi approval_rate"),
        "{section}"
    );
    app.stop().await;
}
