//! After deployment (issue 13): production batches judged for drift against the reference, KPIs against
//! their bounds, and the policy's action on a breach — here a suspension the gate then reports, and the
//! signed events a subscriber receives.

use crate::support::{AppOptions, TestApp, call, call_json, error_of, spawn_app, spawn_app_with};
use crate::webhooks::{Receiver, fast_webhooks, subscribe, verified};
use reqwest::Method;
use serde_json::{Value, json};

/// `rows` rows of a numeric feature `x` around `centre` and a categorical `c`, with a label and a score
/// that ranks the label well.
pub(crate) fn batch_csv(rows: usize, centre: f64, categories: &[&str]) -> Vec<u8> {
    let mut csv = String::from("id,x,c,label,score\n");
    for row in 0..rows {
        let x = centre + ((row * 37) % 100) as f64 / 10.0;
        let c = categories[row % categories.len()];
        let score = if row % 2 == 1 { 0.8 } else { 0.2 } + (row % 7) as f64 / 100.0;
        csv.push_str(&format!("{row},{x},{c},{},{score}\n", row % 2));
    }
    csv.into_bytes()
}

/// Model `credit` (low tier) with version 1 approved for staging and watched: batches of 50 rows are
/// judged against dataset `ref`, and the KPI `approval_rate` must stay within 0.2 to 0.8 (else review).
pub(crate) async fn deploy_watched_credit(app: &TestApp) {
    app.edit_policy(
        "[monitoring.low]\nmin_batch_rows = 100",
        "[monitoring.low]\nmin_batch_rows = 50\nkpis = [{ name = \"approval_rate\", min = 0.2, max = 0.8, action = \"review\" }]",
    )
    .await;
    let reference = upload(app, batch_csv(400, 0.0, &["a", "b", "c"])).await;
    call_json(
        app,
        Method::POST,
        "/api/v1/datasets",
        &app.admin_token,
        Some(json!({ "name": "ref", "digest": reference,
            "schema": { "label": "label", "features": ["x"], "sensitive": ["c"], "positive_label": "1" } })),
    )
    .await;
    app.create_model(&app.admin_token, "credit", "low").await;
    app.push_version(&app.admin_token, "credit", b"credit model".to_vec())
        .await;
    call_json(
        app,
        Method::PUT,
        "/api/v1/models/credit/versions/1/card",
        &app.admin_token,
        Some(json!({ "card": { "model_details": { "name": "credit" }, "limitations": "retail loans only" } })),
    )
    .await;
    let opened = call_json(
        app,
        Method::POST,
        "/api/v1/requests",
        &app.admin_token,
        Some(json!({ "model": "credit", "version": 1, "stage": "staging", "justification": "ready" })),
    )
    .await;
    assert_eq!(opened["state"], "approved", "{opened}");
}

pub(crate) async fn upload(app: &TestApp, bytes: Vec<u8>) -> String {
    let uploaded = app.upload(&app.admin_token, bytes, None).await;
    assert!(uploaded.status().is_success());
    uploaded.json::<Value>().await.unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn push(app: &TestApp, body: Value) -> reqwest::Response {
    call(
        app,
        Method::POST,
        "/api/v1/models/credit/versions/1/monitoring/batches",
        &app.admin_token,
        Some(body),
    )
    .await
}

#[tokio::test]
async fn drift_beyond_the_policy_suspends_the_version_and_the_gate_says_why() {
    let receiver = Receiver::start(&[]);
    let app = spawn_app_with(AppOptions {
        webhooks: fast_webhooks(),
        ..AppOptions::default()
    })
    .await;
    app.edit_policy(
        "[monitoring.low]\nmin_batch_rows = 100",
        "[monitoring.low]\nmin_batch_rows = 50\nkpis = [{ name = \"approval_rate\", min = 0.2, max = 0.8, action = \"notify\" }]",
    )
    .await;
    app.edit_policy("on_drift = \"notify\"", "on_drift = \"suspend\"")
        .await;
    let (_, secret) = subscribe(
        &app,
        &receiver.url(),
        &[
            "monitoring.breach",
            "version.suspended",
            "version.reinstated",
        ],
        None,
    )
    .await;
    let reference = upload(&app, batch_csv(400, 0.0, &["a", "b", "c"])).await;
    let registered = call(
        &app,
        Method::POST,
        "/api/v1/datasets",
        &app.admin_token,
        Some(json!({ "name": "ref", "digest": reference,
            "schema": { "label": "label", "features": ["x"], "sensitive": ["c"], "positive_label": "1" } })),
    )
    .await;
    assert!(
        registered.status().is_success(),
        "{}",
        registered.text().await.unwrap()
    );
    app.create_model(&app.admin_token, "credit", "low").await;
    let version = app
        .push_version(&app.admin_token, "credit", b"credit model".to_vec())
        .await;
    let digest = version["digest"].as_str().unwrap().to_owned();
    let same = upload(&app, batch_csv(300, 0.0, &["a", "b", "c"])).await;

    // Development versions are not monitored.
    let (status, code, _) =
        error_of(push(&app, json!({ "digest": same, "reference": "ref" })).await).await;
    assert_eq!(
        (status.as_u16(), code.as_str()),
        (409, "failed_precondition")
    );
    let opened = call_json(
        &app,
        Method::POST,
        "/api/v1/requests",
        &app.admin_token,
        Some(json!({ "model": "credit", "version": 1, "stage": "staging", "justification": "ready" })),
    )
    .await;
    assert_eq!(opened["state"], "approved", "{opened}");

    // No verified evaluation and no reference named: the error says what to pass.
    let (status, _, body) = error_of(push(&app, json!({ "digest": same })).await).await;
    assert_eq!(status.as_u16(), 409);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--reference"),
        "{body}"
    );

    // The same distribution: judged, nothing drifted.
    let calm = push(
        &app,
        json!({ "digest": same, "reference": "ref", "row_id_column": "id" }),
    )
    .await;
    assert_eq!(calm.status().as_u16(), 201);
    let calm: Value = calm.json().await.unwrap();
    assert_eq!(calm["judged"], true);
    assert_eq!(calm["report"]["dataset"]["drifted"], false, "{calm}");
    assert!(calm["report"]["features"]["x"]["psi"].is_object());
    assert!(calm["report"]["features"]["x"]["ks_pvalue"].is_object());
    assert!(calm["report"]["features"]["c"]["chi2_pvalue"].is_object());
    assert_eq!(calm["report"]["features"]["x"]["drifted"], false);
    assert_eq!(calm["breaches"], json!([]));

    // Too small to judge: stored, not judged, whatever it holds.
    let small = upload(&app, batch_csv(10, 50.0, &["z"])).await;
    let small: Value = push(&app, json!({ "digest": small, "reference": "ref" }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(small["judged"], false, "{small}");
    assert_eq!(small["breaches"], json!([]));

    // A batch without the reference's column `c`: the error names it, nothing is stored.
    let mut missing = String::from("x\n");
    for row in 0..100 {
        missing.push_str(&format!("{row}\n"));
    }
    let missing = upload(&app, missing.into_bytes()).await;
    let (status, _, body) =
        error_of(push(&app, json!({ "digest": missing, "reference": "ref" })).await).await;
    assert_eq!(status.as_u16(), 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains('c'),
        "{body}"
    );

    // Shifted: both features drift; the policy says suspend.
    let shifted = upload(&app, batch_csv(300, 30.0, &["d", "e"])).await;
    let breached: Value = push(&app, json!({ "digest": shifted, "reference": "ref" }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(breached["report"]["dataset"]["drifted"], true, "{breached}");
    let breach = &breached["breaches"][0];
    assert_eq!(breach["kind"], "drift");
    assert_eq!(breach["action"], "suspend");
    assert!(
        breach["reason"]
            .as_str()
            .unwrap()
            .contains("wasserstein_normed(x) = "),
        "{breach}"
    );
    let batch_id = breached["id"].as_i64().unwrap();
    let gate = call_json(
        &app,
        Method::GET,
        &format!("/api/v1/gate?model=credit&stage=staging&digest={digest}"),
        &app.admin_token,
        None,
    )
    .await;
    assert_eq!(gate["allowed"], false, "{gate}");
    let reasons = gate["reasons"].to_string();
    assert!(reasons.contains("suspended by monitoring"), "{reasons}");
    assert!(reasons.contains(&format!("batch {batch_id}")), "{reasons}");

    // A second breach while suspended: recorded, no second suspension.
    let again: Value = push(&app, json!({ "digest": shifted, "reference": "ref" }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["breaches"][0]["action"], "suspend");
    let audit = call_json(
        &app,
        Method::GET,
        "/api/v1/audit/events?target=model/credit/version/1",
        &app.admin_token,
        None,
    )
    .await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|action| **action == "version.suspend")
            .count(),
        1,
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|action| **action == "monitoring.breach")
            .count(),
        2,
        "{actions:?}"
    );

    // KPIs: inside the bounds, then outside.
    let fine = call_json(
        &app,
        Method::POST,
        "/api/v1/models/credit/kpis",
        &app.admin_token,
        Some(json!({ "name": "approval_rate", "value": 0.5 })),
    )
    .await;
    assert_eq!(fine["breaches"], json!([]));
    assert_eq!(
        (fine["min"].as_f64(), fine["max"].as_f64()),
        (Some(0.2), Some(0.8))
    );
    let high = call_json(
        &app,
        Method::POST,
        "/api/v1/models/credit/kpis",
        &app.admin_token,
        Some(json!({ "name": "approval_rate", "value": 0.93, "version": 1, "at": "2026-12-01T00:00:00Z" })),
    )
    .await;
    assert_eq!(
        high["breaches"][0]["reason"],
        "kpi approval_rate = 0.93 > 0.8"
    );
    for (body, field) in [
        (json!({ "name": "", "value": 1.0 }), "name"),
        (
            json!({ "name": "x", "value": 1.0, "at": "yesterday" }),
            "at",
        ),
        (
            json!({ "name": "x", "value": 1.0, "version": 9 }),
            "has no version 9",
        ),
    ] {
        let (_, _, error) = error_of(
            call(
                &app,
                Method::POST,
                "/api/v1/models/credit/kpis",
                &app.admin_token,
                Some(body),
            )
            .await,
        )
        .await;
        assert!(error.to_string().contains(field), "{field}: {error}");
    }

    let state = call_json(
        &app,
        Method::GET,
        "/api/v1/models/credit/monitoring?version=1",
        &app.admin_token,
        None,
    )
    .await;
    assert_eq!(state["monitored"], true);
    assert_eq!(state["on_drift"], "suspend");
    assert_eq!(state["batches"].as_array().unwrap().len(), 4);
    assert_eq!(state["batches"][0]["id"], again["id"]);
    assert_eq!(state["kpis"][0]["value"], 0.93);

    // The suspension opened one re-validation request for staging, on the owner's behalf; a risk officer
    // signs it (the low tier's staging gate asks for nobody, a re-validation asks for people), which
    // renews the approval and lifts the suspension.
    let open = call_json(
        &app,
        Method::GET,
        "/api/v1/requests?model=credit&state=open",
        &app.admin_token,
        None,
    )
    .await;
    let open = open["requests"].as_array().unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    let revalidation = &open[0];
    assert_eq!(revalidation["kind"], "revalidation");
    assert_eq!(revalidation["target_stage"], "staging");
    assert_eq!(revalidation["requester"], "admin");
    assert!(
        revalidation["justification"]
            .as_str()
            .unwrap()
            .contains(&format!("batch {batch_id}")),
        "{revalidation}"
    );
    let officer = app.user_with_token("rio", &["risk_officer"]).await;
    let signed = call_json(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{}/reviews", revalidation["id"]),
        &officer,
        Some(json!({ "decision": "approve", "role": "risk_officer",
            "meaning": "drift reviewed; the model holds", "password": "a long enough password" })),
    )
    .await;
    assert_eq!(signed["state"], "approved", "{signed}");
    let gate = call_json(
        &app,
        Method::GET,
        &format!("/api/v1/gate?model=credit&stage=staging&digest={digest}"),
        &app.admin_token,
        None,
    )
    .await;
    assert_eq!(gate["allowed"], true, "{gate}");
    let version = call_json(
        &app,
        Method::GET,
        "/api/v1/models/credit/versions/1",
        &app.admin_token,
        None,
    )
    .await;
    assert!(version["suspension"].is_null(), "{version}");

    // A risk officer's own suspension is not a re-validation's to lift.
    let suspended = call(
        &app,
        Method::POST,
        "/api/v1/models/credit/versions/1/suspend",
        &officer,
        Some(json!({ "reason": "incident 42" })),
    )
    .await;
    assert!(
        suspended.status().is_success(),
        "{}",
        suspended.text().await.unwrap()
    );
    let (status, code, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/requests",
            &app.admin_token,
            Some(json!({ "model": "credit", "version": 1, "stage": "staging", "justification": "lift it" })),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status.as_u16(), code.as_str()),
        (409, "conflict"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("suspended by a risk officer"),
        "{body}"
    );

    // The breaches and the suspension went out as signed events.
    let received = receiver.wait_for(4, 20).await;
    let types: Vec<String> = received
        .iter()
        .map(|delivery| {
            verified(delivery, &secret)["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        types.contains(&"io.modelgate.monitoring.breach".to_owned()),
        "{types:?}"
    );
    assert!(
        types.contains(&"io.modelgate.version.suspended".to_owned()),
        "{types:?}"
    );
    let received = receiver.wait_for(5, 20).await;
    assert!(
        received
            .iter()
            .any(|delivery| delivery.json()["type"] == "io.modelgate.version.reinstated"),
        "the reinstatement went out too"
    );
    app.stop().await;
}

/// `monitor push`, `monitor show` and `kpi record` from the command line, as a serving pipeline would run
/// them; a breach exits 4.
#[test]
fn the_command_line_pushes_batches_and_records_kpis() {
    use crate::cli::{Server, stderr, write_file};
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let reference = write_file(work.path(), "ref.csv", &batch_csv(400, 0.0, &["a", "b"]));
    let run_ok = |args: &[&str]| {
        let output = server.run(args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        output
    };
    run_ok(&[
        "dataset",
        "register",
        "ref",
        reference.to_str().unwrap(),
        "--label",
        "label",
        "--features",
        "x",
        "--sensitive",
        "c",
    ]);
    run_ok(&[
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
    let artifact = write_file(work.path(), "model.bin", b"model bytes");
    run_ok(&[
        "version",
        "push",
        "credit",
        artifact.to_str().unwrap(),
        "--request",
        "staging",
        "--justification",
        "ready",
    ]);
    let calm = write_file(work.path(), "calm.csv", &batch_csv(300, 0.0, &["a", "b"]));
    let pushed = server.json(&[
        "monitor",
        "push",
        "credit",
        "1",
        calm.to_str().unwrap(),
        "--reference",
        "ref",
        "--row-id-column",
        "id",
        "--wait",
    ]);
    assert_eq!(pushed["judged"], true, "{pushed}");
    assert_eq!(pushed["report"]["dataset"]["drifted"], false);
    assert!(pushed["report"]["dataset"]["drift_share"].is_object());

    // The low tier only notifies by default: the breach is reported, the version stays in service.
    let shifted = write_file(work.path(), "shifted.csv", &batch_csv(300, 40.0, &["q"]));
    let breached = server.run(&[
        "monitor",
        "push",
        "credit",
        "1",
        shifted.to_str().unwrap(),
        "--reference",
        "ref",
    ]);
    assert_eq!(breached.status.code(), Some(4), "{}", stderr(&breached));
    let table = String::from_utf8_lossy(&breached.stdout);
    assert!(
        table.contains("DRIFTED") && table.contains("breach (notify)"),
        "{table}"
    );

    let missing = write_file(work.path(), "missing.csv", b"x\n1\n2\n");
    let refused = server.run(&[
        "monitor",
        "push",
        "credit",
        "1",
        missing.to_str().unwrap(),
        "--reference",
        "ref",
    ]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("\"c\""), "{}", stderr(&refused));

    let kpi = server.json(&[
        "kpi",
        "record",
        "credit",
        "approval_rate",
        "0.41",
        "--version",
        "1",
    ]);
    assert_eq!(kpi["value"], 0.41);
    // Outcomes joined onto the calm batch's row ids (it carried `score`). The version has no verified
    // evaluation, so they are stored and counted, not judged.
    let outcomes = write_file(
        work.path(),
        "outcomes.csv",
        b"id,outcome\n1,1\n2,0\n3,1\n4,0\nnot-a-row,1\n",
    );
    let joined = server.run(&[
        "monitor",
        "outcomes",
        "credit",
        "1",
        outcomes.to_str().unwrap(),
        "--row-id-column",
        "id",
        "--label-column",
        "outcome",
    ]);
    assert!(joined.status.success(), "{}", stderr(&joined));
    let joined = String::from_utf8_lossy(&joined.stdout);
    assert!(
        joined.contains("5 rows, 4 joined, 1 unknown row ids")
            && joined.contains("unknown row ids: not-a-row")
            && joined.contains("no counted evaluation from before its approval"),
        "{joined}"
    );
    let refused = server.run(&[
        "monitor",
        "outcomes",
        "credit",
        "1",
        outcomes.to_str().unwrap(),
        "--row-id-column",
        "id",
        "--label-column",
        "defaulted",
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("no column \"defaulted\""),
        "{}",
        stderr(&refused)
    );
    let shown = server.run(&["version", "show", "credit", "1"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("last batch:")
            && shown.contains("dataset drifted")
            && shown.contains("breach:"),
        "{shown}"
    );
    assert!(
        shown.contains("last outcomes:") && shown.contains("4 of 5 rows joined"),
        "{shown}"
    );
    let explained = server.run(&["policy", "explain", "credit", "1", "--stage", "production"]);
    let explained = String::from_utf8_lossy(&explained.stdout);
    assert!(
        explained.contains("after deployment:\n  last batch:")
            && explained.contains("  breach: batch"),
        "{explained}"
    );
    let shown = server.json(&["monitor", "show", "credit", "1"]);
    assert_eq!(shown["monitored"], true);
    assert_eq!(shown["outcomes"][0]["matched"], 4, "{shown}");
    assert_eq!(shown["batches"].as_array().unwrap().len(), 2);
    assert_eq!(shown["kpis"][0]["name"], "approval_rate");
    let human = server.run(&["monitor", "show", "credit"]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains("notify") && human.contains("approval_rate"),
        "{human}"
    );
}

async fn version_actions(app: &TestApp, token: &str) -> Vec<String> {
    let audit = call_json(
        app,
        Method::GET,
        "/api/v1/audit/events?target=model/credit/version/1&limit=500",
        token,
        None,
    )
    .await;
    audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["action"].as_str().unwrap().to_owned())
        .collect()
}

/// The scheduler on two PostgreSQL replicas with an injected clock: the re-approval request opens
/// `reapproval_lead` ahead of expiry, the expiry is recorded, each once.
#[tokio::test]
async fn approvals_are_renewed_ahead_of_expiry_and_expire_once_across_replicas() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    const DAY: i64 = 86_400_000;
    let offset = Arc::new(AtomicI64::new(0));
    let first = spawn_app_with(AppOptions {
        postgres: true,
        clock_offset: Some(offset.clone()),
        schedule_interval: std::time::Duration::from_millis(100),
        ..AppOptions::default()
    })
    .await;
    let second = spawn_app_with(AppOptions {
        join: Some((
            first.database_url.clone().unwrap(),
            first.data_dir.path().join("audit-signing.key"),
        )),
        clock_offset: Some(offset.clone()),
        schedule_interval: std::time::Duration::from_millis(100),
        ..AppOptions::default()
    })
    .await;
    first
        .edit_policy(
            "[monitoring.low]\nmin_batch_rows = 100",
            "[monitoring.low]\nmin_batch_rows = 100\nreapproval_lead = \"30d\"",
        )
        .await;
    first
        .create_model(&first.admin_token, "credit", "low")
        .await;
    let version = first
        .push_version(&first.admin_token, "credit", b"credit model".to_vec())
        .await;
    let digest = version["digest"].as_str().unwrap().to_owned();
    let opened = call_json(
        &first,
        Method::POST,
        "/api/v1/requests",
        &first.admin_token,
        Some(json!({ "model": "credit", "version": 1, "stage": "staging", "justification": "ready" })),
    )
    .await;
    assert_eq!(opened["state"], "approved");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        !version_actions(&first, &first.admin_token)
            .await
            .contains(&"approval.expiring".to_owned())
    );

    // 340 days on: within the 30 days before the 365-day approval ends.
    offset.store(340 * DAY, Ordering::SeqCst);
    let mut revalidations = Vec::new();
    for _ in 0..100 {
        let open = call_json(
            &first,
            Method::GET,
            "/api/v1/requests?model=credit&state=open",
            &first.admin_token,
            None,
        )
        .await;
        revalidations = open["requests"].as_array().unwrap().clone();
        if !revalidations.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(revalidations.len(), 1, "{revalidations:?}");
    assert_eq!(revalidations[0]["kind"], "revalidation");
    assert!(
        revalidations[0]["justification"]
            .as_str()
            .unwrap()
            .starts_with("re-approval: the approval for staging expires at"),
        "{}",
        revalidations[0]
    );

    // A year and a day on: expired, and the gate says so.
    offset.store(366 * DAY, Ordering::SeqCst);
    for _ in 0..100 {
        if version_actions(&first, &first.admin_token)
            .await
            .contains(&"approval.expired".to_owned())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Both replicas keep running rounds: nothing happens twice.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let actions = version_actions(&second, &first.admin_token).await;
    let count = |action: &str| actions.iter().filter(|seen| *seen == action).count();
    assert_eq!(count("approval.expiring"), 1, "{actions:?}");
    assert_eq!(count("approval.expired"), 1, "{actions:?}");
    let open = call_json(
        &second,
        Method::GET,
        "/api/v1/requests?model=credit&state=open",
        &first.admin_token,
        None,
    )
    .await;
    assert_eq!(open["requests"].as_array().unwrap().len(), 1);
    let gate = call_json(
        &second,
        Method::GET,
        &format!("/api/v1/gate?model=credit&stage=staging&digest={digest}"),
        &first.admin_token,
        None,
    )
    .await;
    assert_eq!(gate["allowed"], false, "{gate}");
    second.stop().await;
    first.stop().await;
}

/// `revalidate_every`: an approval older than that gets a re-validation request and one
/// `approval.revalidation_due`, however many rounds the scheduler makes.
#[tokio::test]
async fn a_revalidation_falls_due_on_the_policys_schedule() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    const DAY: i64 = 86_400_000;
    let offset = Arc::new(AtomicI64::new(0));
    let app = spawn_app_with(AppOptions {
        clock_offset: Some(offset.clone()),
        schedule_interval: std::time::Duration::from_millis(100),
        ..AppOptions::default()
    })
    .await;
    app.edit_policy(
        "[monitoring.low]\nmin_batch_rows = 100",
        "[monitoring.low]\nmin_batch_rows = 100\nrevalidate_every = \"30d\"",
    )
    .await;
    app.create_model(&app.admin_token, "credit", "low").await;
    app.push_version(&app.admin_token, "credit", b"credit model".to_vec())
        .await;
    let opened = call_json(
        &app,
        Method::POST,
        "/api/v1/requests",
        &app.admin_token,
        Some(json!({ "model": "credit", "version": 1, "stage": "staging", "justification": "ready" })),
    )
    .await;
    assert_eq!(opened["state"], "approved");
    offset.store(31 * DAY, Ordering::SeqCst);
    let mut open = Vec::new();
    for _ in 0..100 {
        open = call_json(
            &app,
            Method::GET,
            "/api/v1/requests?model=credit&state=open",
            &app.admin_token,
            None,
        )
        .await["requests"]
            .as_array()
            .unwrap()
            .clone();
        if !open.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(open.len(), 1);
    assert!(
        open[0]["justification"]
            .as_str()
            .unwrap()
            .starts_with("re-validation due: the policy asks for one every 30 days"),
        "{}",
        open[0]
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let actions = version_actions(&app, &app.admin_token).await;
    assert_eq!(
        actions
            .iter()
            .filter(|action| *action == "approval.revalidation_due")
            .count(),
        1,
        "{actions:?}"
    );
    app.stop().await;
}

/// `rows` production rows `id,x,c,score` whose scores rank the label of [`batch_csv`] well.
fn scored_rows(rows: usize) -> Vec<u8> {
    let text = String::from_utf8(batch_csv(rows, 0.0, &["a", "b", "c"])).unwrap();
    text.lines()
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            format!("{},{},{},{}\n", cells[0], cells[1], cells[2], cells[4])
        })
        .collect::<String>()
        .into_bytes()
}

/// Labels that arrive weeks after the predictions, joined by row id: while they agree with the scores
/// nothing happens; when they contradict them, ROC AUC falls far below the approving evaluation's, the
/// policy suspends the version, the gate says so and a re-validation opens. Unknown and repeated row
/// ids are counted, not joined.
#[tokio::test]
async fn delayed_outcomes_below_the_approving_evaluation_suspend_the_version() {
    let app = spawn_app().await;
    app.edit_policy(
        "[monitoring.low]\nmin_batch_rows = 100",
        "[monitoring.low]\nmin_batch_rows = 50\nperformance = [{ metric = \"roc_auc\", max_drop = 0.05, action = \"suspend\" }]",
    )
    .await;
    let holdout = upload(&app, batch_csv(400, 0.0, &["a", "b", "c"])).await;
    let registered = call(
        &app,
        Method::POST,
        "/api/v1/datasets",
        &app.admin_token,
        Some(json!({ "name": "holdout", "digest": holdout,
            "schema": { "label": "label", "features": ["x"], "sensitive": ["c"], "positive_label": "1" } })),
    )
    .await;
    assert!(registered.status().is_success());
    app.create_model(&app.admin_token, "credit", "low").await;
    let version = app
        .push_version(&app.admin_token, "credit", b"credit model".to_vec())
        .await;
    let digest = version["digest"].as_str().unwrap().to_owned();
    let evaluation = call_json(
        &app,
        Method::POST,
        "/api/v1/evaluations",
        &app.admin_token,
        Some(
            json!({ "wait": true, "model": "credit", "version": 1, "dataset": "holdout",
            "predictions_digest": holdout, "score_column": "score", "bootstrap_resamples": 0 }),
        ),
    )
    .await;
    let approved_auc = evaluation["results"]["overall"]["roc_auc"]["value"]
        .as_f64()
        .unwrap();
    assert!(approved_auc > 0.99, "{evaluation}");
    let opened = call_json(
        &app,
        Method::POST,
        "/api/v1/requests",
        &app.admin_token,
        Some(json!({ "model": "credit", "version": 1, "stage": "staging", "justification": "ready" })),
    )
    .await;
    assert_eq!(opened["state"], "approved", "{opened}");

    // An evaluation run after the approval (here with scores that rank nothing) does not lower the bar:
    // labelled rows are judged against the evaluation the approval was signed on.
    let flipped: String = String::from_utf8(batch_csv(400, 0.0, &["a", "b", "c"]))
        .unwrap()
        .lines()
        .enumerate()
        .map(|(row, line)| {
            if row == 0 {
                return format!("{line}\n");
            }
            let (rest, _) = line.rsplit_once(',').unwrap();
            format!("{rest},0.5\n")
        })
        .collect();
    let flipped = upload(&app, flipped.into_bytes()).await;
    let later = call_json(
        &app,
        Method::POST,
        "/api/v1/evaluations",
        &app.admin_token,
        Some(
            json!({ "wait": true, "model": "credit", "version": 1, "dataset": "holdout",
            "predictions_digest": flipped, "score_column": "score", "bootstrap_resamples": 0 }),
        ),
    )
    .await;
    assert_eq!(
        later["results"]["overall"]["roc_auc"]["value"], 0.5,
        "{later}"
    );

    // No batch carries row ids yet: nothing to join onto, and the error says what to push.
    let agreeing = upload(&app, b"id,outcome\n1,1\n2,0\n".to_vec()).await;
    let outcomes_path = "/api/v1/models/credit/versions/1/monitoring/outcomes";
    let (status, _, body) = error_of(
        call(
            &app,
            Method::POST,
            outcomes_path,
            &app.admin_token,
            Some(json!({ "digest": agreeing, "row_id_column": "id", "label_column": "outcome" })),
        )
        .await,
    )
    .await;
    assert_eq!(status.as_u16(), 409, "{body}");
    assert!(body.to_string().contains("--row-id-column"), "{body}");

    // A batch with its labels already: evaluated at once, against the approving evaluation.
    let labelled = upload(&app, batch_csv(200, 0.0, &["a", "b", "c"])).await;
    let labelled = call_json(
        &app,
        Method::POST,
        "/api/v1/models/credit/versions/1/monitoring/batches",
        &app.admin_token,
        Some(json!({ "digest": labelled, "label_column": "label" })),
    )
    .await;
    let performance = &labelled["report"]["performance"];
    assert_eq!(performance["evaluation"], evaluation["id"], "{labelled}");
    assert_eq!(performance["baseline"]["roc_auc"], approved_auc);
    assert!(
        performance["report"]["overall"]["roc_auc"]["value"]
            .as_f64()
            .unwrap()
            > 0.99
    );
    assert_eq!(labelled["breaches"], json!([]), "{labelled}");
    let labelled_again = upload(&app, batch_csv(60, 0.0, &["a", "b", "c"])).await;
    // Labels without scores cannot be judged: the error names the field.
    let unscored = upload(&app, b"id,x,c,label\n1,0.5,a,1\n".to_vec()).await;
    let (status, _, body) =
        error_of(push(&app, json!({ "digest": unscored, "label_column": "label" })).await).await;
    assert_eq!(status.as_u16(), 400);
    assert_eq!(body["error"]["details"]["field"], "score_column", "{body}");
    // Labels in a column the batch uses for something else are refused.
    let (status, _, body) = error_of(
        push(
            &app,
            json!({ "digest": labelled_again, "label_column": "x" }),
        )
        .await,
    )
    .await;
    assert_eq!(status.as_u16(), 400);
    assert_eq!(body["error"]["details"]["field"], "label_column", "{body}");

    // Production rows with row ids, no labels yet.
    let rows = upload(&app, scored_rows(200)).await;
    let pushed = call_json(
        &app,
        Method::POST,
        "/api/v1/models/credit/versions/1/monitoring/batches",
        &app.admin_token,
        Some(json!({ "digest": rows, "row_id_column": "id" })),
    )
    .await;
    assert_eq!(pushed["score_column"], "score", "{pushed}");
    assert!(pushed["report"].get("performance").is_none());

    // Outcomes that agree with the scores: joined, judged, nothing breached.
    let agreeing: String = std::iter::once("id,outcome\n".to_owned())
        .chain((0..200).map(|row| format!("{row},{}\n", row % 2)))
        .collect();
    let agreeing = upload(&app, agreeing.into_bytes()).await;
    let fine = call_json(
        &app,
        Method::POST,
        outcomes_path,
        &app.admin_token,
        Some(json!({ "digest": agreeing, "row_id_column": "id", "label_column": "outcome" })),
    )
    .await;
    assert_eq!(
        (fine["matched"].as_u64(), fine["judged"].as_bool()),
        (Some(200), Some(true)),
        "{fine}"
    );
    assert_eq!(fine["breaches"], json!([]));

    // Outcomes that contradict the scores, with two unknown ids and one repeated: a performance breach.
    let contradicting: String = std::iter::once("id,outcome\n".to_owned())
        .chain((0..200).map(|row| format!("{row},{}\n", 1 - row % 2)))
        .chain([
            "9999,1\n".to_owned(),
            "ghost,0\n".to_owned(),
            "7,1\n".to_owned(),
        ])
        .collect();
    let contradicting = upload(&app, contradicting.into_bytes()).await;
    let breached = call_json(
        &app,
        Method::POST,
        outcomes_path,
        &app.admin_token,
        Some(json!({ "digest": contradicting, "row_id_column": "id", "label_column": "outcome" })),
    )
    .await;
    assert_eq!(
        (
            breached["rows"].as_u64(),
            breached["matched"].as_u64(),
            breached["unknown"].as_u64(),
            breached["duplicate"].as_u64()
        ),
        (Some(203), Some(200), Some(2), Some(1)),
        "{breached}"
    );
    assert_eq!(
        breached["report"]["unknown_row_ids"],
        json!(["9999", "ghost"])
    );
    let breach = &breached["breaches"][0];
    assert_eq!(
        (breach["kind"].as_str(), breach["action"].as_str()),
        (Some("performance"), Some("suspend"))
    );
    let reason = breach["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("roc_auc = 0.0")
            && reason.contains("below the approving evaluation's 1.000"),
        "{reason}"
    );
    let outcomes_id = breached["id"].as_i64().unwrap();
    let gate = call_json(
        &app,
        Method::GET,
        &format!("/api/v1/gate?model=credit&stage=staging&digest={digest}"),
        &app.admin_token,
        None,
    )
    .await;
    assert_eq!(gate["allowed"], false, "{gate}");
    let reasons = gate["reasons"].to_string();
    assert!(
        reasons.contains("suspended by monitoring: roc_auc")
            && reasons.contains(&format!("outcomes {outcomes_id}")),
        "{reasons}"
    );
    let open = call_json(
        &app,
        Method::GET,
        "/api/v1/requests?model=credit&state=open",
        &app.admin_token,
        None,
    )
    .await;
    let open = open["requests"].as_array().unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["kind"], "revalidation");
    assert!(
        open[0]["justification"]
            .as_str()
            .unwrap()
            .contains(&format!("outcomes {outcomes_id}"))
    );

    // Bad input names the field; nothing is recorded. (A label column named like the batches' score
    // column would evaluate the scores against themselves.)
    let scored_as_label = upload(&app, b"id,score\n1,1\n2,0\n".to_vec()).await;
    for (body, field) in [
        (
            json!({ "digest": contradicting, "row_id_column": "id", "label_column": "defaulted" }),
            "label_column",
        ),
        (
            json!({ "digest": contradicting, "row_id_column": "row", "label_column": "outcome" }),
            "row_id_column",
        ),
        (
            json!({ "digest": contradicting, "row_id_column": "id", "label_column": "id" }),
            "label_column",
        ),
        (
            json!({ "digest": scored_as_label, "row_id_column": "id", "label_column": "score" }),
            "label_column",
        ),
        (
            json!({ "digest": "sha256:nope", "row_id_column": "id", "label_column": "outcome" }),
            "digest",
        ),
    ] {
        let (status, _, error) = error_of(
            call(
                &app,
                Method::POST,
                outcomes_path,
                &app.admin_token,
                Some(body),
            )
            .await,
        )
        .await;
        assert_eq!(status.as_u16(), 400, "{field}: {error}");
        assert_eq!(error["error"]["details"]["field"], field, "{error}");
    }
    let state = call_json(
        &app,
        Method::GET,
        "/api/v1/models/credit/monitoring?version=1",
        &app.admin_token,
        None,
    )
    .await;
    let recorded = state["outcomes"].as_array().unwrap();
    assert_eq!(recorded.len(), 2, "{state}");
    assert_eq!(recorded[0]["id"], outcomes_id);
    let audit = call_json(
        &app,
        Method::GET,
        "/api/v1/audit/events?target=model/credit/version/1",
        &app.admin_token,
        None,
    )
    .await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|action| **action == "monitoring.outcomes")
            .count(),
        2,
        "{actions:?}"
    );
    assert!(actions.contains(&"version.suspend"), "{actions:?}");
    app.stop().await;
}

/// "No monitoring batch for N days": a production version that nobody watches is reported once per
/// quiet spell (`monitoring.stale`, keyed by the last judged batch); a judged batch starts the spell
/// again, a batch too small to judge does not.
#[tokio::test]
async fn a_production_version_without_judged_batches_is_reported_stale_once_per_spell() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    const DAY: i64 = 86_400_000;
    let offset = Arc::new(AtomicI64::new(0));
    let app = spawn_app_with(AppOptions {
        clock_offset: Some(offset.clone()),
        schedule_interval: std::time::Duration::from_millis(100),
        ..AppOptions::default()
    })
    .await;
    app.edit_policy(
        "[monitoring.low]\nmin_batch_rows = 100",
        "[monitoring.low]\nmin_batch_rows = 50\nstale_after = \"5d\"",
    )
    .await;
    let holdout = upload(&app, batch_csv(400, 0.0, &["a", "b", "c"])).await;
    call_json(
        &app,
        Method::POST,
        "/api/v1/datasets",
        &app.admin_token,
        Some(json!({ "name": "holdout", "digest": holdout,
            "schema": { "label": "label", "features": ["x"], "sensitive": ["c"], "positive_label": "1" } })),
    )
    .await;
    app.create_model(&app.admin_token, "credit", "low").await;
    app.push_version(&app.admin_token, "credit", b"credit model".to_vec())
        .await;
    call_json(
        &app,
        Method::PUT,
        "/api/v1/models/credit/versions/1/card",
        &app.admin_token,
        Some(
            json!({ "card": { "model_details": { "name": "credit", "owners": [{ "name": "Risk" }] },
            "intended_use": { "primary_uses": "retail credit" }, "limitations": "EU only" } }),
        ),
    )
    .await;
    call_json(
        &app,
        Method::POST,
        "/api/v1/evaluations",
        &app.admin_token,
        Some(
            json!({ "wait": true, "model": "credit", "version": 1, "dataset": "holdout",
            "predictions_digest": holdout, "score_column": "score", "bootstrap_resamples": 0 }),
        ),
    )
    .await;
    for stage in ["staging", "production"] {
        let opened = call_json(
            &app,
            Method::POST,
            "/api/v1/requests",
            &app.admin_token,
            Some(json!({ "model": "credit", "version": 1, "stage": stage, "justification": "ready" })),
        )
        .await;
        assert_eq!(opened["state"], "approved", "{stage}: {opened}");
    }
    // Nothing pushed since the approval: after 5 days the version is stale, reported once.
    offset.store(6 * DAY, Ordering::SeqCst);
    let first = stale_events_after(&app, 1).await;
    assert_eq!(first[0]["after"]["last_batch"], Value::Null, "{first:?}");
    // A judged batch starts the spell again; a batch too small to judge does not.
    let judged = call_json(
        &app,
        Method::POST,
        "/api/v1/models/credit/versions/1/monitoring/batches",
        &app.admin_token,
        Some(json!({ "digest": upload(&app, scored_rows(100)).await })),
    )
    .await;
    assert_eq!(judged["judged"], true, "{judged}");
    offset.store(8 * DAY, Ordering::SeqCst);
    let tiny = call_json(
        &app,
        Method::POST,
        "/api/v1/models/credit/versions/1/monitoring/batches",
        &app.admin_token,
        Some(json!({ "digest": upload(&app, scored_rows(10)).await })),
    )
    .await;
    assert_eq!(tiny["judged"], false);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        stale_events_after(&app, 1).await.len(),
        1,
        "not stale within 5 days of a judged batch"
    );
    offset.store(12 * DAY, Ordering::SeqCst);
    let second = stale_events_after(&app, 2).await;
    assert_eq!(second[0]["after"]["last_batch"], judged["id"], "{second:?}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(stale_events_after(&app, 2).await.len(), 2, "once per spell");
    app.stop().await;
}

/// The version's `monitoring.stale` events, newest first, once there are at least `count` (waits up to
/// 5 s for the scheduler).
async fn stale_events_after(app: &TestApp, count: usize) -> Vec<Value> {
    for _ in 0..100 {
        let audit = call_json(
            app,
            Method::GET,
            "/api/v1/audit/events?target=model/credit/version/1&action=monitoring.stale&limit=50",
            &app.admin_token,
            None,
        )
        .await;
        let mut events = audit["events"].as_array().unwrap().clone();
        if events.len() >= count {
            events.reverse();
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} monitoring.stale events after 5 s");
}
