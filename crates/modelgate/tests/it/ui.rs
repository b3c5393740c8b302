//! The reviewer web UI in a real browser (headless Chromium, see `browser.rs`) against a real server on
//! loopback: signing in and out, idle expiry and the lock-out; the inbox per role with separation of
//! duties; a whole approval — discussion, a wrong password, the signature, the gate; refused forged posts;
//! escaping checked in the DOM; screenshots, the accessibility check and the page weight of each page.

use crate::browser::Browser;
use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const PASSWORD: &str = "a long enough password";
const MINUTE_MILLIS: i64 = 60_000;

/// The markup the escaping test plants in every text a user controls.
const SCRIPT: &str = "<script>window.__xss=1</script>";
const ATTRIBUTE_BREAK: &str = "\"><img src=x onerror=\"window.__xss=2\">";

/// A model card complete for the medium tier but for `limitations`.
fn card_without_limitations(name: &str) -> Value {
    json!({
        "model_details": {
            "name": name,
            "owners": [{ "name": "Growth team", "contact": "growth@example.org" }],
            "license": "Apache-2.0",
        },
        "intended_use": {
            "primary_uses": "rank accounts by churn risk",
            "out_of_scope_uses": "credit decisions",
        },
        "training_data": [{ "name": "accounts-2026q2" }],
        "evaluation_data": [{ "name": "holdout-2026q3" }],
    })
}

/// A server with one open request, as the issue's reviewers meet it:
/// - the medium tier's staging gate asks for one validator and checks that the card is complete;
/// - `dana` (model developer, also a validator) created model `churn` and its version 1, whose card
///   lacks `limitations`, and opened the request for staging: she may not sign it (separation of duties);
/// - `vera` (validator) may sign it; `cora` (compliance) holds no role the gate needs.
struct Fixture {
    app: TestApp,
    clock: Arc<AtomicI64>,
    request: i64,
    digest: String,
    dana: String,
    vera: String,
}

async fn fixture(description: &str) -> Fixture {
    fixture_on(false, description).await
}

/// The fixture on SQLite, or on a fresh PostgreSQL schema.
async fn fixture_on(postgres: bool, description: &str) -> Fixture {
    let clock = Arc::new(AtomicI64::new(0));
    let app = spawn_app_with(AppOptions {
        clock_offset: Some(clock.clone()),
        postgres,
        ..AppOptions::default()
    })
    .await;
    app.edit_policy(
        "signoffs = [{ role = \"validator\", count = 1 }]\nchecks = []",
        "signoffs = [{ role = \"validator\", count = 1 }]\nchecks = [\
         { name = \"card_complete\", expr = \"card.complete\", \
         description = \"the model card is complete for the tier\" }]",
    )
    .await;
    let dana = app
        .user_with_token("dana", &["model_developer", "validator"])
        .await;
    let vera = app.user_with_token("vera", &["validator"]).await;
    app.user_with_token("cora", &["compliance"]).await;
    let created = call(
        &app,
        Method::POST,
        "/api/v1/models",
        &dana,
        Some(json!({ "name": "churn", "risk_tier": "medium", "description": description })),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let version = app.push_version(&dana, "churn", payload(64)).await;
    let digest = version["digest"].as_str().unwrap().to_owned();
    put_card(&app, &dana, card_without_limitations("churn")).await;
    let opened = call_json(
        &app,
        Method::POST,
        "/api/v1/requests",
        &dana,
        Some(json!({
            "model": "churn", "version": 1, "stage": "staging",
            "justification": "ready for the staging trial",
        })),
    )
    .await;
    assert_eq!(opened["state"], "open", "{opened}");
    Fixture {
        request: opened["id"].as_i64().unwrap(),
        app,
        clock,
        digest,
        dana,
        vera,
    }
}

async fn put_card(app: &TestApp, token: &str, card: Value) {
    let response = call(
        app,
        Method::PUT,
        "/api/v1/models/churn/versions/1/card",
        token,
        Some(json!({ "card": card })),
    )
    .await;
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
}

async fn request_json(fixture: &Fixture) -> Value {
    call_json(
        &fixture.app,
        Method::GET,
        &format!("/api/v1/requests/{}", fixture.request),
        &fixture.app.admin_token,
        None,
    )
    .await
}

/// The audit events on `target`, as the API lists them.
async fn audit_events(app: &TestApp, target: &str) -> Vec<Value> {
    call_json(
        app,
        Method::GET,
        &format!("/api/v1/audit/events?target={target}&limit=1000"),
        &app.admin_token,
        None,
    )
    .await["events"]
        .as_array()
        .unwrap()
        .clone()
}

fn contains_any(text: &str, words: &[&str]) -> bool {
    let text = text.to_lowercase();
    words.iter().any(|word| text.contains(word))
}

/// A form body, `application/x-www-form-urlencoded`.
fn form_body(fields: &[(&str, &str)]) -> String {
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (byte as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{byte:02X}"),
            })
            .collect()
    }
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Posts a form as a browser of another kind would: with a session cookie, an `Origin` and no redirects
/// followed.
async fn post_form(
    app: &TestApp,
    path: &str,
    session: &str,
    origin: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client
        .post(app.url(path))
        .header("cookie", format!("modelgate_session={session}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(fields));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn signing_in_and_out_and_a_wrong_password() {
    let fixture = fixture("predicts churn").await;
    let app = &fixture.app;
    let browser = Browser::start().await;

    // Signed out, the inbox sends you to the sign-in page, remembering where you were going.
    browser.open(app, "/").await;
    let path = browser.path().await;
    assert!(path.starts_with("/login"), "{path}");
    assert_eq!(
        browser
            .find("form#login input[name=next]")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("/")
    );
    browser.assert_accessible("the sign-in page").await;

    // A wrong password is an error on the page, and no session.
    browser.sign_in(app, "vera", "not the password").await;
    assert!(browser.path().await.starts_with("/login"));
    let error = browser.text("#form-error").await;
    assert!(!error.is_empty(), "the error says something");
    assert_eq!(
        browser
            .find("#form-error")
            .await
            .attr("role")
            .await
            .unwrap(),
        Some("alert".to_owned())
    );
    assert_eq!(browser.session_cookie().await, None);
    // An unknown user gets the same words: the page does not tell who has an account.
    browser.sign_in(app, "nobody", "not the password").await;
    assert_eq!(browser.text("#form-error").await, error);

    // The right one signs in and lands on the inbox, with a session cookie scripts cannot read.
    browser.sign_in(app, "vera", PASSWORD).await;
    assert_eq!(browser.path().await, "/");
    browser.find("section#waiting").await;
    let cookie = browser
        .client
        .get_named_cookie("modelgate_session")
        .await
        .unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    assert_eq!(cookie.path(), Some("/"));
    let readable = browser.run("return document.cookie;", vec![]).await;
    assert!(
        !readable.as_str().unwrap().contains("modelgate_session"),
        "{readable}"
    );
    let session = cookie.value().to_owned();
    assert!(session.len() >= 43, "a 256-bit id: {session}");
    // The session cookie never authorises the API, even sent by the browser that holds it.
    browser.open(app, "/api/v1/whoami").await;
    let answer = browser.body_text().await;
    assert!(answer.contains("unauthenticated"), "{answer}");
    assert!(!answer.contains("vera Example"), "{answer}");
    browser.open(app, "/").await;

    // Signing out revokes the session: the browser is signed out, and the old cookie no longer works.
    browser.sign_out().await;
    assert!(browser.path().await.starts_with("/login"));
    assert_eq!(browser.session_cookie().await, None);
    browser.open(app, "/").await;
    assert!(browser.path().await.starts_with("/login"));
    let replayed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/"))
        .header("cookie", format!("modelgate_session={session}"))
        .send()
        .await
        .unwrap();
    assert!(replayed.status().is_redirection(), "{}", replayed.status());
    let location = replayed.headers()["location"].to_str().unwrap();
    assert!(location.contains("/login"), "{location}");
    fixture.finish([browser]).await;
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_out() {
    let fixture = fixture("predicts churn").await;
    let app = &fixture.app;
    let browser = Browser::start().await;
    for attempt in 1..=5 {
        browser.sign_in(app, "cora", "not the password").await;
        assert!(
            browser.path().await.starts_with("/login"),
            "attempt {attempt}"
        );
        assert!(!browser.text("#form-error").await.is_empty());
    }
    // Now even the right password waits, and the page says why.
    browser.sign_in(app, "cora", PASSWORD).await;
    assert!(browser.path().await.starts_with("/login"));
    let error = browser.text("#form-error").await;
    assert!(
        contains_any(&error, &["too many", "locked", "try again"]),
        "{error}"
    );
    assert_eq!(browser.session_cookie().await, None);
    // The refusals are in the audit log.
    let events = audit_events(app, "user/cora").await;
    assert!(
        events.iter().any(|event| event["outcome"] == "denied"),
        "{events:#?}"
    );
    fixture.finish([browser]).await;
}

#[tokio::test]
async fn an_idle_session_expires_and_signing_in_again_returns_to_the_page() {
    let fixture = fixture("predicts churn").await;
    let app = &fixture.app;
    let page = format!("/requests/{}", fixture.request);
    let browser = Browser::start().await;
    browser.open(app, &page).await;
    browser.sign_in(app, "vera", PASSWORD).await;
    assert_eq!(
        browser.path().await,
        page,
        "sign-in returns to the page asked for"
    );
    browser.find("section#gate").await;

    // Still active after 29 minutes, which also counts as activity...
    fixture.clock.store(29 * MINUTE_MILLIS, Ordering::SeqCst);
    browser.open(app, &page).await;
    assert_eq!(browser.path().await, page);
    // ...then idle for 31 minutes: the next page load asks to sign in again.
    fixture.clock.store(60 * MINUTE_MILLIS, Ordering::SeqCst);
    browser.open(app, &page).await;
    let path = browser.path().await;
    assert!(path.starts_with("/login"), "{path}");
    assert_eq!(
        browser
            .find("form#login input[name=next]")
            .await
            .prop("value")
            .await
            .unwrap(),
        Some(page.clone())
    );
    browser.sign_in(app, "vera", PASSWORD).await;
    assert_eq!(browser.path().await, page);
    browser.find("section#gate").await;
    fixture.finish([browser]).await;
}

#[tokio::test]
async fn a_session_ends_twelve_hours_after_signing_in_however_active() {
    let fixture = fixture("predicts churn").await;
    let app = &fixture.app;
    let browser = Browser::start().await;
    browser.sign_in(app, "vera", PASSWORD).await;
    assert_eq!(browser.path().await, "/");
    // A page every 20 minutes keeps the session from idling...
    for step in 1..=35 {
        fixture
            .clock
            .store(step * 20 * MINUTE_MILLIS, Ordering::SeqCst);
        browser.open(app, "/").await;
        assert_eq!(browser.path().await, "/", "after {} minutes", step * 20);
    }
    // ...but not past 12 hours (11 h 40 min, then 12 h 1 min).
    fixture
        .clock
        .store(12 * 60 * MINUTE_MILLIS + MINUTE_MILLIS, Ordering::SeqCst);
    browser.open(app, "/").await;
    let path = browser.path().await;
    assert!(path.starts_with("/login"), "{path}");
    fixture.finish([browser]).await;
}

#[tokio::test]
async fn the_inbox_shows_each_role_what_waits_and_what_they_may_not_sign() {
    let fixture = fixture("predicts churn").await;
    let app = &fixture.app;
    let row = format!("tr[data-request=\"{}\"]", fixture.request);
    let browser = Browser::start().await;

    browser.sign_in(app, "vera", PASSWORD).await;
    browser.find(&format!("section#waiting {row}")).await;
    assert!(!browser.exists(&format!("section#may-not-sign {row}")).await);
    assert_eq!(browser.text("#count-waiting").await, "1");
    browser.sign_out().await;

    // The creator holds the validator role too, but separation of duties keeps her from signing.
    browser.sign_in(app, "dana", PASSWORD).await;
    let reason = browser
        .text(&format!("section#may-not-sign {row} td.reason"))
        .await;
    assert!(
        contains_any(
            &reason,
            &[
                "separation",
                "created",
                "creator",
                "requested",
                "requester",
                "your own"
            ]
        ),
        "{reason}"
    );
    assert!(!browser.exists(&format!("section#waiting {row}")).await);
    assert_eq!(browser.text("#count-waiting").await, "0");
    browser.find(&format!("section#mine {row}")).await;
    browser.sign_out().await;

    // Someone whose roles the gate does not need has nothing waiting.
    browser.sign_in(app, "cora", PASSWORD).await;
    browser.find("section#waiting").await;
    assert!(!browser.exists(&format!("section#waiting {row}")).await);
    fixture.finish([browser]).await;
}

#[tokio::test]
async fn a_whole_approval_in_the_browser() {
    let fixture = fixture("predicts churn").await;
    let app = &fixture.app;
    let page = format!("/requests/{}", fixture.request);
    let (validator, requester) = Browser::start_two().await;
    validator.open(app, &page).await;
    validator.sign_in(app, "vera", PASSWORD).await;
    assert_eq!(validator.path().await, page);

    // The gate's failing check and the card's missing field are flagged.
    validator
        .find("section#gate tr.check[data-status=failed]")
        .await;
    let failed = validator
        .text("section#gate tr.check[data-status=failed]")
        .await;
    assert!(failed.contains("card_complete"), "{failed}");
    let missing = validator.text("section#card .missing-field").await;
    assert!(missing.to_lowercase().contains("limitations"), "{missing}");
    validator.find("section#gate tr.signoff").await;
    validator.find("section#evidence").await;

    // The validator asks; the requester, in her own session, answers and completes the card.
    let question = "What are the limitations of the training data?";
    validator
        .fill("form#comment textarea[name=body]", question)
        .await;
    validator.click_and_wait("form#comment [type=submit]").await;
    assert!(
        validator
            .text("section#discussion")
            .await
            .contains(question)
    );

    requester.open(app, &page).await;
    requester.sign_in(app, "dana", PASSWORD).await;
    assert!(
        requester
            .text("section#discussion")
            .await
            .contains(question)
    );
    let answer = "Only EU customers; the card now says so.";
    requester
        .fill("form#comment textarea[name=body]", answer)
        .await;
    requester.click_and_wait("form#comment [type=submit]").await;
    let mut card = card_without_limitations("churn");
    card["limitations"] = json!("trained on EU customers only");
    put_card(app, &fixture.dana, card).await;

    validator.open(app, &page).await;
    let discussion = validator.text("section#discussion").await;
    assert!(discussion.contains(answer), "{discussion}");
    assert!(
        validator.count("section#discussion li.event").await >= 2,
        "the question and the answer are events of the time line"
    );
    assert_eq!(
        validator
            .count("section#gate tr.check[data-status=failed]")
            .await,
        0,
        "the completed card passes the check"
    );
    validator
        .find("section#gate tr.check[data-status=passed]")
        .await;
    assert_eq!(validator.count("section#card .missing-field").await, 0);

    // A wrong password: an error on the page, nothing signed.
    validator
        .find("form#signoff select[name=role]")
        .await
        .select_by_value("validator")
        .await
        .unwrap();
    // The meaning is left for the server to word for the role chosen; the field says what it will be.
    let meaning_field = validator.find("form#signoff input[name=meaning]").await;
    let typed = meaning_field
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        typed.is_empty(),
        "nothing is pre-filled for another role: {typed:?}"
    );
    let meaning = meaning_field
        .attr("placeholder")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(meaning, "approved for staging as validator");
    validator
        .fill(
            "form#signoff textarea[name=comment]",
            "limitations now stated",
        )
        .await;
    validator
        .fill("form#signoff input[name=password]", "not my password")
        .await;
    validator
        .click_and_wait("form#signoff button[name=decision][value=approve]")
        .await;
    let errors = validator
        .run(
            "return [...document.querySelectorAll('#form-error, .field-error')]\
             .map(e => e.textContent.trim()).filter(Boolean);",
            vec![],
        )
        .await;
    assert!(
        !errors.as_array().unwrap().is_empty(),
        "the wrong password is an error on the page: {}",
        validator.body_text().await
    );
    // Next to its field, and tied to it for screen readers.
    let password_error = validator
        .run(
            "const field = document.querySelector('form#signoff input[name=password]'); \
             const described = document.getElementById(field.getAttribute('aria-describedby') || ''); \
             return { invalid: field.getAttribute('aria-invalid'), \
                      error: described && described.classList.contains('field-error') \
                             ? described.textContent.trim() : null };",
            vec![],
        )
        .await;
    assert_eq!(password_error["invalid"], "true", "{password_error}");
    assert!(
        password_error["error"]
            .as_str()
            .is_some_and(|error| error.to_lowercase().contains("password")),
        "{password_error}"
    );
    assert_eq!(validator.count("section#signatures .signature").await, 0);
    let unsigned = request_json(&fixture).await;
    assert_eq!(unsigned["state"], "open", "{unsigned}");
    assert_eq!(unsigned["reviews"].as_array().unwrap().len(), 0);
    // Judged at the end, so that the rest of the approval is tested whatever this finds.
    let error_page_problems = validator.accessibility_violations().await;

    // The right password signs; the signature record shows.
    validator.open(app, &page).await;
    validator
        .find("form#signoff select[name=role]")
        .await
        .select_by_value("validator")
        .await
        .unwrap();
    validator
        .fill(
            "form#signoff textarea[name=comment]",
            "limitations now stated",
        )
        .await;
    validator
        .fill("form#signoff input[name=password]", PASSWORD)
        .await;
    validator
        .click_and_wait("form#signoff button[name=decision][value=approve]")
        .await;
    let signature = validator.text("section#signatures .signature").await;
    let signed = request_json(&fixture).await;
    assert_eq!(signed["state"], "approved", "{signed}");
    let review = &signed["reviews"][0];
    for shown in [
        review["printed_name"].as_str().unwrap(),
        review["role"].as_str().unwrap(),
        review["meaning"].as_str().unwrap(),
        review["evidence_digest"].as_str().unwrap(),
    ] {
        assert!(
            signature.contains(shown),
            "the signature shows {shown:?}: {signature}"
        );
    }
    assert_eq!(review["printed_name"], "vera Example");
    assert_eq!(review["meaning"], meaning.as_str());

    // The gate says yes to the version in staging.
    let gate = call_json(
        app,
        Method::GET,
        &format!(
            "/api/v1/gate?model=churn&stage=staging&digest={}",
            fixture.digest
        ),
        &fixture.vera,
        None,
    )
    .await;
    assert_eq!(gate["allowed"], true, "{gate}");
    assert!(
        error_page_problems.is_empty(),
        "the request page showing the wrong password's error has accessibility problems:\n  {}",
        error_page_problems.join("\n  ")
    );
    fixture.finish([validator, requester]).await;
}

#[tokio::test]
async fn the_creator_cannot_sign_and_forged_posts_are_refused() {
    let fixture = fixture("predicts churn").await;
    let app = &fixture.app;
    let page = format!("/requests/{}", fixture.request);
    let origin = app.url("");
    let browser = Browser::start().await;
    browser.open(app, &page).await;
    browser.sign_in(app, "dana", PASSWORD).await;

    // No sign-off panel for the creator, and the page says why.
    browser.find("section#gate").await;
    assert!(!browser.exists("form#signoff").await);
    let why = browser.text("#signoff-unavailable").await;
    assert!(!why.is_empty());

    // A forged sign-off with her own session and a valid CSRF token is refused as the API refuses it,
    // and recorded.
    let session = browser.session_cookie().await.unwrap();
    let token = browser.csrf_token("form#comment").await;
    let review_path = format!("{page}/review");
    let forged = post_form(
        app,
        &review_path,
        &session,
        Some(&origin),
        &[
            ("csrf_token", &token),
            ("role", "validator"),
            ("meaning", "approved for staging"),
            ("comment", ""),
            ("password", PASSWORD),
            ("decision", "approve"),
        ],
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let still = request_json(&fixture).await;
    assert_eq!(still["state"], "open");
    assert_eq!(still["reviews"].as_array().unwrap().len(), 0);
    let events = audit_events(app, &format!("request/{}", fixture.request)).await;
    assert!(
        events
            .iter()
            .any(|event| event["actor"] == "dana" && event["outcome"] == "denied"),
        "the refused sign-off is audited: {events:#?}"
    );

    // A comment (which she may post) needs the CSRF token and a same-site Origin: without the token,
    // with a wrong one, or from another site it is refused; with both it is accepted.
    let comment_path = format!("{page}/comments");
    let wrong_token = format!("{token}x");
    type Fields<'a> = Vec<(&'a str, &'a str)>;
    let cases: [(&str, Option<&str>, Fields); 3] = [
        ("no CSRF token", Some(&origin), vec![("body", "no token")]),
        (
            "a wrong CSRF token",
            Some(&origin),
            vec![("csrf_token", &wrong_token), ("body", "wrong token")],
        ),
        (
            "another site's Origin",
            Some("https://attacker.example"),
            vec![("csrf_token", &token), ("body", "cross-site")],
        ),
    ];
    for (case, case_origin, fields) in &cases {
        let refused = post_form(app, &comment_path, &session, *case_origin, fields).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{case}");
    }
    // A forged sign-off without a token is refused too, before anything else.
    let refused = post_form(
        app,
        &review_path,
        &session,
        Some(&origin),
        &[
            ("decision", "approve"),
            ("role", "validator"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        request_json(&fixture).await["comments"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "no refused comment was written"
    );
    let accepted = post_form(
        app,
        &comment_path,
        &session,
        Some(&origin),
        &[("csrf_token", &token), ("body", "posted properly")],
    )
    .await;
    assert!(
        accepted.status().is_success() || accepted.status().is_redirection(),
        "{}",
        accepted.status()
    );
    let comments = request_json(&fixture).await["comments"].clone();
    assert_eq!(comments.as_array().unwrap().len(), 1, "{comments}");
    assert_eq!(comments[0]["body"], "posted properly");
    fixture.finish([browser]).await;
}

#[tokio::test]
async fn user_text_renders_inert() {
    let hostile = format!("{SCRIPT}{ATTRIBUTE_BREAK}");
    let fixture = fixture(&format!("description {hostile}")).await;
    let app = &fixture.app;
    let mut card = card_without_limitations("churn");
    card["limitations"] = json!(format!("limitations {hostile}"));
    put_card(app, &fixture.dana, card).await;
    let browser = Browser::start().await;
    let page = format!("/requests/{}", fixture.request);
    browser.open(app, &page).await;
    browser.sign_in(app, "vera", PASSWORD).await;
    browser
        .fill(
            "form#comment textarea[name=body]",
            &format!("comment {hostile}"),
        )
        .await;
    browser.click_and_wait("form#comment [type=submit]").await;

    let description = format!("description {hostile}");
    let limitations = format!("limitations {hostile}");
    let comment = format!("comment {hostile}");
    let pages = [
        (page.as_str(), vec![&limitations, &comment]),
        ("/models/churn", vec![&description]),
        ("/models/churn/versions/1", vec![&limitations]),
        ("/models", vec![]),
        ("/", vec![]),
    ];
    for (path, literals) in pages {
        browser.open(app, path).await;
        // Nothing the markup would have made exists in the DOM: no handler ran, no element was made.
        let found = browser
            .run(
                "return { xss: typeof window.__xss, \
                 images: document.querySelectorAll('img[src=x], img[src=\"x\"]').length, \
                 scripts: [...document.scripts].filter(s => s.textContent.includes('__xss')).length, \
                 handlers: document.querySelectorAll('[onerror]').length };",
                vec![],
            )
            .await;
        assert_eq!(
            found,
            json!({ "xss": "undefined", "images": 0, "scripts": 0, "handlers": 0 }),
            "{path}"
        );
        // The text shows literally where it was written.
        let text = browser.body_text().await;
        for literal in literals {
            assert!(
                text.contains(literal.as_str()),
                "{path} shows {literal:?} literally:\n{text}"
            );
        }
    }
    fixture.finish([browser]).await;
}

#[tokio::test]
async fn each_page_is_accessible_light_and_screenshotted() {
    let fixture = fixture("Predicts which accounts will churn next quarter").await;
    let app = &fixture.app;
    call_json(
        app,
        Method::POST,
        &format!("/api/v1/requests/{}/comments", fixture.request),
        &fixture.vera,
        Some(json!({ "body": "What are the limitations of the training data?" })),
    )
    .await;
    // A verified evaluation (client predictions scored by the server), so the request page shows its
    // metrics, per-group table, fairness verdict and charts.
    let holdout = crate::evaluation::holdout(false);
    let registered = crate::evaluation::register(app, &fixture.dana, "holdout", &holdout).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let predictions = crate::evaluation::upload_text(app, &fixture.dana, &holdout).await;
    let evaluation = call_json(
        app,
        Method::POST,
        "/api/v1/evaluations",
        &fixture.dana,
        Some(json!({
            "wait": true, "model": "churn", "version": 1, "dataset": "holdout",
            "predictions_digest": predictions, "score_column": "score",
        })),
    )
    .await;
    assert_eq!(evaluation["verified"], true, "{evaluation}");
    app.user_with_token("ada", &["admin"]).await;
    let browser = Browser::start().await;
    let request = format!("/requests/{}", fixture.request);
    // Who looks at each page: the validator, nobody (signed out), an admin.
    let pages = [
        (Some("vera"), "inbox", "/"),
        (Some("vera"), "request", request.as_str()),
        (Some("vera"), "models", "/models"),
        (Some("vera"), "model", "/models/churn"),
        (Some("vera"), "version", "/models/churn/versions/1"),
        (Some("vera"), "audit", "/audit"),
        (Some("vera"), "policy", "/policy"),
        (None, "login", "/login"),
        (Some("ada"), "admin", "/admin"),
    ];
    // Every page is visited (and screenshotted) before the problems found fail the test, so that one
    // page's problem does not hide another's.
    let mut problems = Vec::new();
    let mut signed_in: Option<&str> = None;
    for (person, name, path) in pages {
        if signed_in != person {
            if signed_in.is_some() {
                browser.sign_out().await;
            }
            if let Some(person) = person {
                browser.sign_in(app, person, PASSWORD).await;
            }
            signed_in = person;
        }
        browser.open(app, path).await;
        assert_eq!(browser.path().await, path, "{name} opens");
        if name == "request" {
            // The charts are drawn by the server: the ROC curve and the reliability diagram.
            let charts = browser.count("section#evaluations svg").await;
            if charts < 2 {
                problems.push(format!(
                    "request ({path}): {charts} charts in section#evaluations, not the ROC curve and \
                     the reliability diagram"
                ));
            }
        }
        let mut found = browser.accessibility_violations().await;
        let (weight, _) = browser.page_weight(app).await;
        eprintln!("{name} ({path}) weighs {weight} bytes with its CSS and JS");
        found.extend(browser.weight_problem(app).await);
        found.extend(browser.screenshot(name).await);
        if !found.is_empty() {
            problems.push(format!("{name} ({path}):\n  {}", found.join("\n  ")));
        }
    }
    assert!(problems.is_empty(), "problems:\n{}", problems.join("\n"));
    fixture.finish([browser]).await;
}

#[tokio::test]
async fn a_developer_opens_a_request_and_withdraws_it_in_the_browser() {
    let fixture = fixture("predicts churn").await;
    let app = &fixture.app;
    app.push_version(&fixture.dana, "churn", payload(65)).await;
    let browser = Browser::start().await;
    browser.open(app, "/models/churn/versions/2").await;
    browser.sign_in(app, "dana", PASSWORD).await;
    assert_eq!(browser.path().await, "/models/churn/versions/2");
    browser
        .fill(
            "form#open-request textarea[name=justification]",
            "the second version fixes the drift",
        )
        .await;
    browser
        .click_and_wait("form#open-request [type=submit]")
        .await;
    let path = browser.path().await;
    let id: i64 = path
        .strip_prefix("/requests/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("opening a request shows it: {path}"));
    let opened = call_json(
        app,
        Method::GET,
        &format!("/api/v1/requests/{id}"),
        &fixture.vera,
        None,
    )
    .await;
    assert_eq!(
        (
            &opened["state"],
            &opened["version"],
            &opened["requester"],
            &opened["justification"]
        ),
        (
            &json!("open"),
            &json!(2),
            &json!("dana"),
            &json!("the second version fixes the drift")
        ),
        "{opened}"
    );

    browser
        .fill("form#withdraw input[name=reason]", "found a better fix")
        .await;
    browser.click_and_wait("form#withdraw [type=submit]").await;
    let withdrawn = call_json(
        app,
        Method::GET,
        &format!("/api/v1/requests/{id}"),
        &fixture.vera,
        None,
    )
    .await;
    assert_eq!(withdrawn["state"], "withdrawn", "{withdrawn}");
    browser.open(app, &format!("/requests/{id}")).await;
    assert!(browser.text("body").await.contains("withdrawn"));
    assert!(!browser.exists("form#withdraw").await);
    // Someone else's request has no withdraw form for her.
    browser
        .open(app, &format!("/requests/{}", fixture.request))
        .await;
    browser.find("form#withdraw").await;
    browser.sign_out().await;
    browser.sign_in(app, "vera", PASSWORD).await;
    browser
        .open(app, &format!("/requests/{}", fixture.request))
        .await;
    browser.find("section#gate").await;
    assert!(!browser.exists("form#withdraw").await);
    fixture.finish([browser]).await;
}

#[tokio::test]
async fn rejecting_needs_a_comment_next_to_which_the_error_shows() {
    let fixture = fixture("predicts churn").await;
    let app = &fixture.app;
    let page = format!("/requests/{}", fixture.request);
    let browser = Browser::start().await;
    browser.open(app, &page).await;
    browser.sign_in(app, "vera", PASSWORD).await;
    browser
        .fill("form#signoff input[name=password]", PASSWORD)
        .await;
    browser
        .click_and_wait("form#signoff button[name=decision][value=reject]")
        .await;
    let comment_error = browser
        .run(
            "const field = document.querySelector('form#signoff textarea[name=comment]'); \
             const described = document.getElementById(field.getAttribute('aria-describedby') || ''); \
             return described && described.classList.contains('field-error') \
                    ? described.textContent.trim() : null;",
            vec![],
        )
        .await;
    assert!(
        comment_error
            .as_str()
            .is_some_and(|error| error.to_lowercase().contains("comment")),
        "{comment_error}: {}",
        browser.body_text().await
    );
    let unchanged = request_json(&fixture).await;
    assert_eq!(unchanged["state"], "open");
    assert_eq!(unchanged["reviews"].as_array().unwrap().len(), 0);

    // With a comment, the rejection is recorded and the request closes.
    browser
        .fill(
            "form#signoff textarea[name=comment]",
            "the card is incomplete",
        )
        .await;
    browser
        .fill("form#signoff input[name=password]", PASSWORD)
        .await;
    browser
        .click_and_wait("form#signoff button[name=decision][value=reject]")
        .await;
    let rejected = request_json(&fixture).await;
    assert_eq!(rejected["state"], "rejected", "{rejected}");
    browser.open(app, &page).await;
    assert!(!browser.exists("form#signoff").await);
    fixture.finish([browser]).await;
}

#[tokio::test]
async fn the_sign_off_is_reachable_by_keyboard_with_visible_focus() {
    let fixture = fixture("predicts churn").await;
    let app = &fixture.app;
    let browser = Browser::start().await;
    browser
        .open(app, &format!("/requests/{}", fixture.request))
        .await;
    browser.sign_in(app, "vera", PASSWORD).await;
    browser.find("form#signoff").await;
    let reached = browser.tab_through(120).await;
    let names: Vec<&str> = reached.iter().map(|(name, _)| name.as_str()).collect();
    assert!(
        names.first().is_some_and(|first| first.contains("skip")),
        "the first Tab reaches the skip link: {names:?}"
    );
    for field in [
        "[name=body]",
        "[name=role]",
        "[name=meaning]",
        "[name=comment]",
        "[name=password]",
        "[name=decision][value=approve]",
        "[name=decision][value=reject]",
        "[name=decision][value=request_changes]",
    ] {
        assert!(
            names.iter().any(|name| name.contains(field)),
            "Tab never reaches {field}: {names:?}"
        );
    }
    let unseen: Vec<&str> = reached
        .iter()
        .filter(|(_, visible)| !visible)
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(unseen.is_empty(), "focus does not show on {unseen:?}");
    fixture.finish([browser]).await;
}

#[tokio::test]
async fn an_approval_in_the_browser_on_postgresql() {
    let fixture = fixture_on(true, "predicts churn").await;
    let app = &fixture.app;
    let page = format!("/requests/{}", fixture.request);
    let mut card = card_without_limitations("churn");
    card["limitations"] = json!("trained on EU customers only");
    put_card(app, &fixture.dana, card).await;
    let browser = Browser::start().await;
    browser.open(app, "/").await;
    browser.sign_in(app, "vera", PASSWORD).await;
    assert_eq!(browser.path().await, "/");
    browser
        .click_and_wait(&format!(
            "section#waiting tr[data-request=\"{}\"] a",
            fixture.request
        ))
        .await;
    assert_eq!(browser.path().await, page);
    browser
        .find("form#signoff select[name=role]")
        .await
        .select_by_value("validator")
        .await
        .unwrap();
    browser
        .fill("form#signoff input[name=password]", PASSWORD)
        .await;
    browser
        .click_and_wait("form#signoff button[name=decision][value=approve]")
        .await;
    let signature = browser.text("section#signatures .signature").await;
    assert!(signature.contains("vera Example"), "{signature}");
    assert_eq!(request_json(&fixture).await["state"], "approved");
    browser.sign_out().await;
    assert!(browser.path().await.starts_with("/login"));
    fixture.finish([browser]).await;
}

impl Fixture {
    /// Ends the browsers (their processes killed), then stops the server.
    async fn finish(self, browsers: impl IntoIterator<Item = Browser>) {
        drop(browsers.into_iter().collect::<Vec<_>>());
        self.app.stop().await;
    }
}

/// The model page of a watched version in the browser: drift per feature, the breaches and the KPIs,
/// accessible and screenshotted (`model-watched-*.png`).
#[tokio::test]
async fn a_watched_models_page_is_accessible_and_screenshotted() {
    use crate::monitoring::{batch_csv, deploy_watched_credit, upload};
    let app = spawn_app().await;
    deploy_watched_credit(&app).await;
    let shifted = upload(&app, batch_csv(300, 40.0, &["q", "r"])).await;
    call_json(
        &app,
        Method::POST,
        "/api/v1/models/credit/versions/1/monitoring/batches",
        &app.admin_token,
        Some(json!({ "digest": shifted, "reference": "ref" })),
    )
    .await;
    call_json(
        &app,
        Method::POST,
        "/api/v1/models/credit/kpis",
        &app.admin_token,
        Some(json!({ "name": "approval_rate", "value": 0.93, "version": 1 })),
    )
    .await;
    app.user_with_token("vera", &["validator"]).await;
    let browser = Browser::start().await;
    browser.sign_in(&app, "vera", PASSWORD).await;
    browser.open(&app, "/models/credit").await;
    assert!(
        browser.count("section#monitoring tr.drifted").await >= 1,
        "drifted features are marked"
    );
    let mut problems = browser.accessibility_violations().await;
    problems.extend(browser.screenshot("model-watched").await);
    assert!(problems.is_empty(), "{problems:?}");
    drop(browser);
    app.stop().await;
}
