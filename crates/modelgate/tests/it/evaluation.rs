//! Server-side evaluation over HTTP: datasets validated and profiled, predictions-mode evaluations computed
//! by the server, and the whole default pipeline — register, evaluate, document, request, promote, gate.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub(crate) async fn upload_text(app: &TestApp, token: &str, text: &str) -> String {
    let response = app.upload(token, text.as_bytes().to_vec(), None).await;
    assert!(response.status().is_success());
    response.json::<Value>().await.unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A holdout where the model separates the classes but selects group "m" twice as often as "f".
pub(crate) fn holdout(fair: bool) -> String {
    let mut rows = vec!["income,sex,default,score".to_owned()];
    for index in 0..200 {
        let sex = if index % 2 == 0 { "f" } else { "m" };
        let default = index % 4 < 2;
        let base: f64 = if default { 0.7 } else { 0.3 };
        let shift = if !fair && sex == "m" && !default && index % 8 < 6 {
            0.35
        } else {
            0.0
        };
        let score = (base + shift + (index % 10) as f64 * 0.01).min(0.99);
        rows.push(format!(
            "{},{sex},{},{score:.2}",
            1000 + index,
            u8::from(default)
        ));
    }
    rows.join("\n") + "\n"
}

pub(crate) async fn register(
    app: &TestApp,
    token: &str,
    name: &str,
    csv: &str,
) -> reqwest::Response {
    let digest = upload_text(app, token, csv).await;
    call(app, Method::POST, "/api/v1/datasets", token, Some(json!({
        "name": name, "digest": digest,
        "schema": { "label": "default", "features": ["income"], "sensitive": ["sex"], "positive_label": "1" },
    })))
    .await
}

#[tokio::test]
async fn a_dataset_over_the_configured_limit_is_refused_and_not_registered() {
    let app = spawn_app_with(AppOptions {
        max_dataset_bytes: 2048,
        ..AppOptions::default()
    })
    .await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let csv = holdout(true);
    assert!(csv.len() > 2048, "the holdout must exceed the limit");
    let (status, _, body) = error_of(register(&app, &developer, "big", &csv).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("2048") && message.contains("--max-dataset-bytes"),
        "{body}"
    );
    let (status, _, _) =
        error_of(call(&app, Method::GET, "/api/v1/datasets/big", &developer, None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was registered");
    // A small one under the same limit is fine.
    let small: String = csv
        .lines()
        .take(40)
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(
        register(&app, &developer, "small", &small).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn datasets_are_validated_with_column_and_line_and_profiled() {
    let app = spawn_app().await;
    let token = app.admin_token.clone();
    let (status, code, body) =
        error_of(register(&app, &token, "broken", "income,sex\n1,f\n").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    assert_eq!(body["error"]["details"]["column"], "default");
    let (_, _, body) = error_of(
        register(
            &app,
            &token,
            "nan-label",
            "income,sex,default\n1,f,1\n2,m,NaN\n",
        )
        .await,
    )
    .await;
    assert_eq!(
        (
            body["error"]["details"]["line"].as_u64(),
            body["error"]["details"]["column"].as_str()
        ),
        (Some(3), Some("default"))
    );
    let (_, _, body) =
        error_of(register(&app, &token, "ragged", "income,sex,default\n1,f,1\n2,m\n").await).await;
    assert_eq!(body["error"]["details"]["line"], 3);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ragged")
    );

    let created = register(&app, &token, "holdout", &holdout(true)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let dataset: Value = created.json().await.unwrap();
    assert_eq!(dataset["rows"], 200);
    assert_eq!(dataset["profile"]["columns"]["income"]["type"], "number");
    assert_eq!(dataset["profile"]["columns"]["income"]["min"], 1000.0);
    assert_eq!(dataset["profile"]["columns"]["sex"]["distinct"], 2);
    let (status, code, _) = error_of(register(&app, &token, "holdout", &holdout(true)).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "already_exists")
    );
    app.stop().await;
}

#[tokio::test]
async fn register_evaluate_document_promote_and_pass_the_gate_with_the_default_policy() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    app.create_model(&developer, "churn", "low").await;
    let version = app.push_version(&developer, "churn", payload(64)).await;
    let digest = version["digest"].as_str().unwrap().to_owned();
    let csv = holdout(true);
    assert_eq!(
        register(&app, &developer, "holdout", &csv).await.status(),
        StatusCode::CREATED
    );
    let predictions = upload_text(&app, &developer, &csv).await;
    let evaluation = call(&app, Method::POST, "/api/v1/evaluations", &developer, Some(json!({ "wait": true,
        "model": "churn", "version": 1, "dataset": "holdout", "predictions_digest": predictions, "score_column": "score",
    })))
    .await;
    assert_eq!(evaluation.status(), StatusCode::CREATED);
    let evaluation: Value = evaluation.json().await.unwrap();
    assert_eq!(evaluation["verified"], true);
    assert_eq!(evaluation["results"]["overall"]["count"], 200);
    assert!(
        evaluation["results"]["overall"]["roc_auc"]["value"]
            .as_f64()
            .unwrap()
            > 0.9
    );
    assert_eq!(evaluation["inputs"]["predictions_digest"], predictions);
    let interval = &evaluation["results"]["intervals"]["roc_auc"];
    assert!(interval["low"].as_f64().unwrap() <= interval["high"].as_f64().unwrap());
    assert_eq!(evaluation["settings"]["bootstrap_resamples"], 200);
    // A re-run on the same inputs and settings gives identical numbers (and so the same digest).
    let again: Value = call(&app, Method::POST, "/api/v1/evaluations", &developer, Some(json!({ "wait": true,
        "model": "churn", "version": 1, "dataset": "holdout", "predictions_digest": predictions, "score_column": "score",
    })))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["results"], evaluation["results"]);
    assert_eq!(again["digest"], evaluation["digest"]);

    let (status, _, body) = error_of(call(&app, Method::POST, "/api/v1/evaluations", &developer, Some(json!({ "wait": true,
        "model": "churn", "version": 1, "dataset": "holdout", "predictions_digest": predictions, "score_column": "probability",
    }))).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["column"], "probability");
    // Predictions are joined to the registered dataset by row: a file with other rows, or with labels of
    // its own, is refused, so the client cannot choose the labels it is scored against.
    let short: String = csv
        .lines()
        .take(101)
        .map(|line| format!("{line}\n"))
        .collect();
    let short = upload_text(&app, &developer, &short).await;
    let (status, _, body) = error_of(call(&app, Method::POST, "/api/v1/evaluations", &developer, Some(json!({ "wait": true,
        "model": "churn", "version": 1, "dataset": "holdout", "predictions_digest": short, "score_column": "score",
    }))).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("100 rows and the dataset 200"), "{body}");
    let relabelled = csv.replacen("1000,f,1,", "1000,f,0,", 1);
    assert_ne!(relabelled, csv);
    let relabelled = upload_text(&app, &developer, &relabelled).await;
    let (status, _, body) = error_of(call(&app, Method::POST, "/api/v1/evaluations", &developer, Some(json!({ "wait": true,
        "model": "churn", "version": 1, "dataset": "holdout", "predictions_digest": relabelled, "score_column": "score",
    }))).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (
            &body["error"]["details"]["line"],
            &body["error"]["details"]["column"]
        ),
        (&json!(2), &json!("default")),
        "{body}"
    );
    // A score that is not a probability is refused with its line.
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    let cells: Vec<&str> = lines[5].split(',').collect();
    lines[5] = format!("{},{},{},1.5", cells[0], cells[1], cells[2]);
    let out_of_range = upload_text(&app, &developer, &(lines.join("\n") + "\n")).await;
    let (status, _, body) = error_of(call(&app, Method::POST, "/api/v1/evaluations", &developer, Some(json!({ "wait": true,
        "model": "churn", "version": 1, "dataset": "holdout", "predictions_digest": out_of_range, "score_column": "score",
    }))).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (
            &body["error"]["details"]["line"],
            &body["error"]["details"]["column"]
        ),
        (&json!(6), &json!("score")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not a probability in [0, 1]"),
        "{body}"
    );

    call(
        &app,
        Method::PUT,
        "/api/v1/models/churn/versions/1/card",
        &developer,
        Some(json!({ "card": {
            "model_details": { "name": "churn", "owners": [{ "name": "Growth" }] },
            "intended_use": { "primary_uses": "retention offers" },
            "limitations": "EU customers only",
        }})),
    )
    .await;
    let explanation: Value = call(
        &app,
        Method::GET,
        "/api/v1/models/churn/versions/1/explain?stage=production",
        &developer,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(explanation["checks_pass"], true, "{explanation}");
    for stage in ["staging", "production"] {
        let request: Value = call(&app, Method::POST, "/api/v1/requests", &developer,
            Some(json!({ "model": "churn", "version": 1, "stage": stage, "justification": "evaluated" }))).await.json().await.unwrap();
        assert_eq!(request["state"], "approved", "{request}");
    }
    let gate: Value = call(
        &app,
        Method::GET,
        &format!("/api/v1/gate?model=churn&stage=production&digest={digest}"),
        &developer,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(gate["allowed"], true);

    // The card's exports carry the server's numbers, marked verified, next to the claimed ones.
    let readme = call(
        &app,
        Method::GET,
        "/api/v1/models/churn/versions/1/card/export?format=hf",
        &developer,
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        readme.contains("roc_auc")
            && readme.contains("verified: true")
            && readme.contains("method: predictions"),
        "{readme}"
    );
    let page = call(
        &app,
        Method::GET,
        "/api/v1/models/churn/versions/1/card/export?format=markdown",
        &developer,
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        page.contains("demographic_parity_ratio") && page.contains("(verified, predictions mode)"),
        "how each number was obtained is in the export: {page}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_four_fifths_check_reads_the_server_s_fairness_numbers() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    app.create_model(&developer, "credit", "high").await;
    app.push_version(&developer, "credit", payload(8)).await;
    let csv = holdout(false);
    register(&app, &developer, "holdout", &csv).await;
    let predictions = upload_text(&app, &developer, &csv).await;
    let evaluation: Value = call(&app, Method::POST, "/api/v1/evaluations", &developer, Some(json!({ "wait": true,
        "model": "credit", "version": 1, "dataset": "holdout", "predictions_digest": predictions, "score_column": "score",
    }))).await.json().await.unwrap();
    assert_eq!(
        evaluation["results"]["fairness"]["sex"]["four_fifths_holds"], false,
        "{}",
        evaluation["results"]["fairness"]
    );
    let explanation: Value = call(
        &app,
        Method::GET,
        "/api/v1/models/credit/versions/1/explain?stage=production",
        &developer,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let four_fifths = explanation["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "four_fifths_rule")
        .unwrap();
    assert_eq!(four_fifths["status"], "failed", "{four_fifths}");
    let verified = explanation["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "verified_evaluation")
        .unwrap();
    assert_eq!(verified["status"], "passed");

    // Group and fairness metrics are addressable by policy checks, and failures show the values.
    app.edit_policy(
        "{ name = \"robustness_evaluated\"",
        "{ name = \"parity\", expr = \"eval.holdout.fairness.sex.demographic_parity_ratio >= 0.9 && eval.holdout.groups.sex.f.recall >= 0.5\" },\n  { name = \"robustness_evaluated\"",
    )
    .await;
    let changed = app
        .request(Method::PATCH, "/api/v1/models/credit", &app.admin_token)
        .json(&json!({ "risk_tier": "critical" }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let explanation: Value = call(
        &app,
        Method::GET,
        "/api/v1/models/credit/versions/1/explain?stage=production",
        &developer,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let parity = explanation["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "parity")
        .unwrap();
    assert_eq!(parity["status"], "failed", "{parity}");
    assert!(
        parity["detail"]
            .as_str()
            .unwrap()
            .contains("eval.holdout.fairness.sex.demographic_parity_ratio = 0."),
        "{parity}"
    );
    app.stop().await;
}

fn onnx_fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../modelgate-onnx/fixtures")
}

/// Registers `name`: the ONNX fixtures' inputs, labels that mostly agree with the gradient-boosting
/// model, two groups. Returns the fixtures' expected outputs, the CSV and its digest.
async fn register_grid(app: &TestApp, developer: &str, name: &str) -> (Value, String, String) {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(onnx_fixtures().join("expected.json")).unwrap())
            .unwrap();
    let model = &expected["models"]["gradient_boosting"];
    let mut csv = String::from("f0,f1,f2,f3,group,label\n");
    for (index, row) in expected["inputs"].as_array().unwrap().iter().enumerate() {
        let values: Vec<String> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("{}", v.as_f64().unwrap() as f32))
            .collect();
        let predicted = model["labels"][index].as_i64().unwrap();
        let label = if index % 7 == 0 {
            1 - predicted
        } else {
            predicted
        };
        csv.push_str(&format!(
            "{},{},{label}\n",
            values.join(","),
            if index % 2 == 0 { "a" } else { "b" }
        ));
    }
    let digest = upload_text(app, developer, &csv).await;
    let registered = call(app, Method::POST, "/api/v1/datasets", developer, Some(json!({
        "name": name, "digest": digest,
        "schema": { "label": "label", "features": ["f0", "f1", "f2", "f3"], "sensitive": ["group"], "positive_label": "1" },
    })))
    .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    (expected, csv, digest)
}

/// Uploads the gradient-boosting ONNX fixture as the model's next version.
async fn push_gradient_boosting(app: &TestApp, developer: &str, model: &str) {
    let bytes = std::fs::read(onnx_fixtures().join("gradient_boosting.onnx")).unwrap();
    let uploaded: Value = app
        .upload(developer, bytes, None)
        .await
        .json()
        .await
        .unwrap();
    let created = call(
        app,
        Method::POST,
        &format!("/api/v1/models/{model}/versions"),
        developer,
        Some(json!({ "digest": uploaded["digest"], "format": "onnx" })),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn model_mode_runs_the_onnx_artifact_on_the_dataset() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let (expected, csv, digest) = register_grid(&app, &developer, "grid").await;
    let model = &expected["models"]["gradient_boosting"];
    app.create_model(&developer, "onnx-model", "medium").await;
    push_gradient_boosting(&app, &developer, "onnx-model").await;

    let evaluation = call(
        &app,
        Method::POST,
        "/api/v1/evaluations",
        &developer,
        Some(json!({ "wait": true, "model": "onnx-model", "version": 1, "dataset": "grid" })),
    )
    .await;
    assert_eq!(
        evaluation.status(),
        StatusCode::CREATED,
        "{}",
        evaluation.text().await.unwrap()
    );
    let evaluation: Value = evaluation.json().await.unwrap();
    assert_eq!(evaluation["mode"], "model");
    // The server's numbers equal the metrics of Python ONNX Runtime's probabilities (to its float precision).
    let labels: Vec<bool> = csv
        .lines()
        .skip(1)
        .map(|line| line.ends_with(",1"))
        .collect();
    let scores: Vec<f64> = model["positive_probability"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let reference = modelgate_eval::binary_metrics(&labels, &scores, None, 0.5, 10);
    let overall = &evaluation["results"]["overall"];
    assert_eq!(
        overall["accuracy"]["value"].as_f64(),
        reference.accuracy.value
    );
    assert!(
        (overall["roc_auc"]["value"].as_f64().unwrap() - reference.roc_auc.value.unwrap()).abs()
            < 1e-6
    );
    assert!((overall["accuracy"]["value"].as_f64().unwrap() - 6.0 / 7.0).abs() < 0.05);

    // Robustness: seeded noise at three levels, flip rates grow with the noise and are reproducible;
    // every feature is ablated once.
    let robustness = &evaluation["results"]["robustness"];
    let flips: Vec<f64> = robustness["noise"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["flip_rate"].as_f64().unwrap())
        .collect();
    assert_eq!(flips.len(), 3, "{robustness}");
    assert!(flips.iter().all(|rate| (0.0..=1.0).contains(rate)));
    assert!(
        flips[2] > 0.0,
        "noise of 0.2 sd moves some decisions: {robustness}"
    );
    assert!(flips[0] <= flips[2], "{flips:?}");
    assert_eq!(
        robustness["max_noise_flip_rate"].as_f64().unwrap(),
        flips.iter().copied().fold(0.0, f64::max)
    );
    let ablated: Vec<&str> = robustness["feature_ablation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["feature"].as_str().unwrap())
        .collect();
    assert_eq!(ablated, ["f0", "f1", "f2", "f3"], "{robustness}");
    let again: Value = call(
        &app,
        Method::POST,
        "/api/v1/evaluations",
        &developer,
        Some(json!({ "wait": true, "model": "onnx-model", "version": 1, "dataset": "grid" })),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        again["results"]["robustness"], *robustness,
        "same seed, same noise"
    );
    assert_eq!(again["digest"], evaluation["digest"]);

    // The robustness evaluation is evidence: the critical tier's `robustness.evaluated` check is missing
    // on a version without a model-mode evaluation and passes on the model-mode one.
    let robustness_check = |version: u32| {
        let app = &app;
        let developer = developer.clone();
        async move {
            let explanation: Value = call(
                app,
                Method::GET,
                &format!("/api/v1/models/onnx-model/versions/{version}/explain?stage=production"),
                &developer,
                None,
            )
            .await
            .json()
            .await
            .unwrap();
            explanation["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|check| check["name"] == "robustness_evaluated")
                .cloned()
                .unwrap_or_else(|| panic!("{explanation}"))
        }
    };
    call(
        &app,
        Method::PATCH,
        "/api/v1/models/onnx-model",
        &app.admin_token,
        Some(json!({ "risk_tier": "critical" })),
    )
    .await;
    assert_eq!(robustness_check(1).await["status"], "passed");
    app.push_version(&developer, "onnx-model", payload(100))
        .await;
    assert_eq!(robustness_check(2).await["status"], "missing");

    // An artifact that is not an ONNX model is a clear error.
    app.create_model(&developer, "not-onnx", "low").await;
    app.push_version(&developer, "not-onnx", payload(100)).await;
    let (status, code, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/evaluations",
            &developer,
            Some(json!({ "wait": true, "model": "not-onnx", "version": 1, "dataset": "grid" })),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("ONNX"),
        "{body}"
    );

    // A dataset with fewer feature columns than the model's input is a clear error naming the width.
    let registered = call(
        &app,
        Method::POST,
        "/api/v1/datasets",
        &developer,
        Some(json!({
            "name": "grid-three", "digest": digest,
            "schema": { "label": "label", "features": ["f0", "f1", "f2"], "positive_label": "1" },
        })),
    )
    .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let (status, code, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/evaluations",
            &developer,
            Some(json!({ "wait": true, "model": "onnx-model", "version": 1, "dataset": "grid-three" })),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_argument"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 features"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["field"], "model");
    app.stop().await;
}

/// The ONNX fixtures' inputs as CSV feature columns, with `label(index)` as the label column.
fn fixture_dataset(expected: &Value, label: impl Fn(usize) -> String) -> String {
    let mut csv = String::from("f0,f1,f2,f3,group,label\n");
    for (index, row) in expected["inputs"].as_array().unwrap().iter().enumerate() {
        let values: Vec<String> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("{}", v.as_f64().unwrap() as f32))
            .collect();
        csv.push_str(&format!(
            "{},{},{}\n",
            values.join(","),
            if index % 2 == 0 { "a" } else { "b" },
            label(index)
        ));
    }
    csv
}

#[tokio::test]
async fn model_mode_runs_multiclass_classifiers_and_regressors() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../modelgate-onnx/fixtures");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("expected.json")).unwrap()).unwrap();
    let classifier = &expected["multiclass_models"]["multiclass_logistic"];
    let regressor = &expected["regression_models"]["gradient_boosting_regressor"];
    // Labels: the classifier's own answers except every tenth row; the regressor's values plus one.
    let classes = fixture_dataset(&expected, |index| {
        let predicted = classifier["labels"][index].as_i64().unwrap();
        if index % 10 == 0 {
            (predicted + 1) % 3
        } else {
            predicted
        }
        .to_string()
    });
    let values = fixture_dataset(&expected, |index| {
        format!("{}", regressor["values"][index].as_f64().unwrap() + 1.0)
    });
    let mut evaluations = Vec::new();
    for (name, task, csv, file) in [
        ("classes", "multiclass", classes, "multiclass_logistic.onnx"),
        (
            "values",
            "regression",
            values,
            "gradient_boosting_regressor.onnx",
        ),
    ] {
        let digest = upload_text(&app, &developer, &csv).await;
        let registered = call(&app, Method::POST, "/api/v1/datasets", &developer, Some(json!({
            "name": name, "digest": digest,
            "schema": { "task": task, "label": "label", "features": ["f0", "f1", "f2", "f3"], "sensitive": ["group"] },
        })))
        .await;
        assert_eq!(registered.status(), StatusCode::CREATED, "{task}");
        app.create_model(&developer, name, "medium").await;
        let bytes = std::fs::read(fixtures.join(file)).unwrap();
        app.push_version(&developer, name, bytes).await;
        let evaluation: Value = call(
            &app,
            Method::POST,
            "/api/v1/evaluations",
            &developer,
            Some(json!({
                "wait": true, "model": name, "version": 1, "dataset": name,
            })),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(evaluation["mode"], "model", "{evaluation}");
        evaluations.push(evaluation);
    }
    let overall = &evaluations[0]["results"]["overall"];
    assert_eq!(evaluations[0]["results"]["task"], "multiclass");
    assert!(
        (overall["accuracy"]["value"].as_f64().unwrap() - 0.9).abs() < 1e-12,
        "{overall}"
    );
    // Log loss from the model's probabilities, as Python ONNX Runtime gave them.
    let mut log_loss = 0.0;
    for index in 0..100 {
        let predicted = classifier["labels"][index].as_i64().unwrap();
        let label = if index % 10 == 0 {
            (predicted + 1) % 3
        } else {
            predicted
        } as usize;
        let p = classifier["probabilities"][index][label].as_f64().unwrap();
        log_loss -= p.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln();
    }
    let measured = overall["log_loss"]["value"].as_f64().unwrap();
    assert!(
        (measured - log_loss / 100.0).abs() < 1e-5,
        "{measured} vs {}",
        log_loss / 100.0
    );
    let overall = &evaluations[1]["results"]["overall"];
    assert_eq!(evaluations[1]["results"]["task"], "regression");
    assert!(
        (overall["mae"]["value"].as_f64().unwrap() - 1.0).abs() < 1e-5,
        "{overall}"
    );
    // Both were rerun on perturbed inputs: changed classes for the classifier, moved values for the
    // regressor (which has no decisions, so no flip rate).
    let robustness = &evaluations[0]["results"]["robustness"];
    assert!(
        robustness["max_noise_flip_rate"].as_f64().is_some(),
        "{robustness}"
    );
    assert_eq!(robustness["feature_ablation"].as_array().unwrap().len(), 4);
    assert!(
        robustness["noise"][0]["macro_f1_delta"].is_number(),
        "{robustness}"
    );
    let robustness = &evaluations[1]["results"]["robustness"];
    assert!(
        robustness.get("max_noise_flip_rate").is_none(),
        "{robustness}"
    );
    let moved = robustness["noise"][2]["mean_absolute_change"]
        .as_f64()
        .unwrap();
    assert!(moved > 0.0, "{robustness}");
    assert!(robustness["feature_ablation"][0]["mae_delta"].is_number());
    app.stop().await;
}

/// One failed exploratory evaluation does not block a gate for ever: it can be set aside (with a reason,
/// audited), after which the policy reads only the counted ones; the failed check named the dataset and
/// attribute; and the evidence digest moved, so sign-offs given before no longer count.
#[tokio::test]
async fn an_exploratory_evaluation_can_be_set_aside_and_the_failure_names_what_failed() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    app.create_model(&developer, "credit", "high").await;
    app.push_version(&developer, "credit", payload(8)).await;
    let evaluate = |csv: String, dataset: &'static str| {
        let (app, developer) = (&app, developer.clone());
        async move {
            register(app, &developer, dataset, &csv).await;
            let predictions = upload_text(app, &developer, &csv).await;
            call(app, Method::POST, "/api/v1/evaluations", &developer, Some(json!({ "wait": true,
                "model": "credit", "version": 1, "dataset": dataset, "predictions_digest": predictions,
                "score_column": "score",
            }))).await.json::<Value>().await.unwrap()
        }
    };
    let unfair = evaluate(holdout(false), "exploration").await;
    evaluate(holdout(true), "holdout").await;
    let four_fifths = |explanation: &Value| {
        explanation["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["name"] == "four_fifths_rule")
            .unwrap()
            .clone()
    };
    let explain = || {
        call_json(
            &app,
            Method::GET,
            "/api/v1/models/credit/versions/1/explain?stage=production",
            &developer,
            None,
        )
    };
    let before = explain().await;
    let failed = four_fifths(&before);
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("the four-fifths rule fails for sex on exploration, ratio 0."),
        "{failed}"
    );
    assert_eq!(before["evaluations"][0]["mode"], "predictions");
    let id = unfair["id"].as_i64().unwrap();
    let (status, _, body) = error_of(
        call(
            &app,
            Method::POST,
            &format!("/api/v1/evaluations/{id}/status"),
            &developer,
            Some(json!({ "status": "exploratory", "reason": "  " })),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["field"], "reason");
    let marked = call_json(
        &app,
        Method::POST,
        &format!("/api/v1/evaluations/{id}/status"),
        &developer,
        Some(json!({ "status": "exploratory", "reason": "tried an untuned threshold" })),
    )
    .await;
    assert_eq!(marked["status"], "exploratory");
    let after = explain().await;
    assert_eq!(four_fifths(&after)["status"], "passed", "{after}");
    assert_ne!(after["evidence_digest"], before["evidence_digest"]);
    assert_eq!(after["evaluations"].as_array().unwrap().len(), 1);
    let events = call_json(
        &app,
        Method::GET,
        "/api/v1/audit/events?target=model/credit/version/1&action=evaluation.mark",
        &app.admin_token,
        None,
    )
    .await;
    assert_eq!(events["events"][0]["after"]["status"], "exploratory");
    // Counted again, it is read again.
    call_json(
        &app,
        Method::POST,
        &format!("/api/v1/evaluations/{id}/status"),
        &developer,
        Some(json!({ "status": "counted", "reason": "the threshold was right after all" })),
    )
    .await;
    assert_eq!(four_fifths(&explain().await)["status"], "failed");
}

/// Evidence that arrives after a request opened re-checks it (issue 15, part 2): a low-risk production
/// request waits while its card and evaluation are missing, stays open when only the card arrives, and is
/// approved by the server the moment the evaluation it needs is stored — no human step, no poke.
#[tokio::test]
async fn a_request_is_approved_when_the_evidence_it_waited_for_arrives() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    app.create_model(&developer, "churn", "low").await;
    let version = app.push_version(&developer, "churn", payload(64)).await;
    let digest = version["digest"].as_str().unwrap().to_owned();
    let open = |stage: &'static str| {
        let app = &app;
        let developer = developer.clone();
        async move {
            call_json(app, Method::POST, "/api/v1/requests", &developer,
                Some(json!({ "model": "churn", "version": 1, "stage": stage, "justification": "nightly" }))).await
        }
    };
    assert_eq!(open("staging").await["state"], "approved");
    let waiting = open("production").await;
    assert_eq!(waiting["state"], "open", "{waiting}");
    let id = waiting["id"].as_i64().unwrap();
    let state_of = || async {
        call_json(
            &app,
            Method::GET,
            &format!("/api/v1/requests/{id}"),
            &developer,
            None,
        )
        .await
    };

    // The card alone: the evaluation check still fails, the request stays open.
    let card = call(
        &app,
        Method::PUT,
        "/api/v1/models/churn/versions/1/card",
        &developer,
        Some(json!({ "card": {
            "model_details": { "name": "churn", "owners": [{ "name": "Growth" }] },
            "intended_use": { "primary_uses": "retention offers" },
            "limitations": "EU customers only",
        }})),
    )
    .await;
    assert_eq!(card.status(), StatusCode::OK);
    let after_card = state_of().await;
    assert_eq!(after_card["state"], "open", "{after_card}");

    // The evaluation: stored, then the request re-checked and approved by the server.
    let csv = holdout(true);
    assert_eq!(
        register(&app, &developer, "holdout", &csv).await.status(),
        StatusCode::CREATED
    );
    let predictions = upload_text(&app, &developer, &csv).await;
    let evaluation = call(&app, Method::POST, "/api/v1/evaluations", &developer, Some(json!({ "wait": true,
        "model": "churn", "version": 1, "dataset": "holdout", "predictions_digest": predictions, "score_column": "score",
    }))).await;
    assert_eq!(evaluation.status(), StatusCode::CREATED);
    let settled = state_of().await;
    assert_eq!(settled["state"], "approved", "{settled}");
    assert!(
        settled["decision_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("new evidence"),
        "{settled}"
    );
    let gate = call_json(
        &app,
        Method::GET,
        &format!("/api/v1/gate?model=churn&stage=production&digest={digest}"),
        &developer,
        None,
    )
    .await;
    assert_eq!(gate["allowed"], true, "{gate}");
    let events = call_json(
        &app,
        Method::GET,
        &format!("/api/v1/audit/events?target=request/{id}"),
        &app.admin_token,
        None,
    )
    .await;
    let approval = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["action"] == "request.approve")
        .unwrap_or_else(|| panic!("{events}"))
        .clone();
    assert_eq!(approval["actor"], "system:new evidence", "{approval}");
    // The card arrived while the request still waited: that re-check is on record, with its result.
    let changed = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["action"] == "request.checks_changed")
        .unwrap_or_else(|| panic!("{events}"))
        .clone();
    assert_eq!(changed["after"]["checks_pass"], false, "{changed}");
    assert!(
        changed["after"]["last_evidence_change"]
            .as_str()
            .is_some_and(|change| change.contains("card")),
        "{changed}"
    );
    app.stop().await;
}

/// The gate names its evaluations (issue 15, part 1): opening a request queues them as jobs, the request
/// shows where they stand, and a low-risk request is approved without a human once they pass; a request
/// whose other check fails stays open and says why, and opening it again queues nothing new.
#[tokio::test]
async fn a_gates_evaluations_run_by_themselves_when_its_request_opens() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    register_grid(&app, &developer, "grid").await;
    register_grid(&app, &developer, "grid-recent").await;
    app.edit_policy(
        "tier = \"low\"\nstage = \"production\"\n",
        "tier = \"low\"\nstage = \"production\"\nevaluations = [{ dataset = \"grid\", mode = \"model\", bootstrap = 20 }, { dataset = \"grid-recent\", bootstrap = 0 }]\n",
    )
    .await;
    app.create_model(&developer, "scorer", "low").await;
    push_gradient_boosting(&app, &developer, "scorer").await;
    push_gradient_boosting(&app, &developer, "scorer").await;
    let card = json!({ "card": {
        "model_details": { "name": "scorer", "owners": [{ "name": "Risk" }] },
        "intended_use": { "primary_uses": "scoring" },
        "limitations": "fixture data only",
    }});
    let card_set = call(
        &app,
        Method::PUT,
        "/api/v1/models/scorer/versions/1/card",
        &developer,
        Some(card),
    )
    .await;
    assert_eq!(card_set.status(), StatusCode::OK);
    let open = |version: u32, stage: &'static str| {
        let app = &app;
        let developer = developer.clone();
        async move {
            call_json(app, Method::POST, "/api/v1/requests", &developer,
                Some(json!({ "model": "scorer", "version": version, "stage": stage, "justification": "nightly" }))).await
        }
    };
    let request_until = |id: i64, done: fn(&Value) -> bool| {
        let app = &app;
        let developer = developer.clone();
        async move {
            for _ in 0..600 {
                let request = call_json(
                    app,
                    Method::GET,
                    &format!("/api/v1/requests/{id}"),
                    &developer,
                    None,
                )
                .await;
                if done(&request) {
                    return request;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("request {id} did not get there within 30 s");
        }
    };

    // Version 1: complete card; the two evaluations are all that is missing.
    assert_eq!(open(1, "staging").await["state"], "approved");
    let opened = open(1, "production").await;
    assert_eq!(opened["state"], "open", "{opened}");
    let queued: Vec<(&str, &str)> = opened["evaluations"]
        .as_array()
        .unwrap_or_else(|| panic!("{opened}"))
        .iter()
        .map(|evaluation| {
            (
                evaluation["dataset"].as_str().unwrap(),
                evaluation["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        queued
            .iter()
            .map(|(dataset, _)| *dataset)
            .collect::<Vec<_>>(),
        ["grid", "grid-recent"]
    );
    assert!(
        queued
            .iter()
            .all(|(_, state)| ["queued", "running", "succeeded"].contains(state)),
        "{queued:?}"
    );
    let approved = request_until(opened["id"].as_i64().unwrap(), |request| {
        request["state"] == "approved"
    })
    .await;
    assert!(
        approved["decision_reason"]
            .as_str()
            .unwrap()
            .contains("new evidence"),
        "{approved}"
    );
    let evaluations = call_json(
        &app,
        Method::GET,
        "/api/v1/models/scorer/versions/1/evaluations",
        &developer,
        None,
    )
    .await;
    let evaluations = evaluations["evaluations"]
        .as_array()
        .unwrap_or_else(|| panic!("{evaluations}"));
    assert_eq!(
        evaluations.len(),
        2,
        "one evaluation per dataset the gate names"
    );
    assert!(
        evaluations
            .iter()
            .all(|evaluation| evaluation["mode"] == "model")
    );

    // Version 2 has no card: its evaluations run and pass, the card check keeps it open, and says so.
    assert_eq!(open(2, "staging").await["state"], "approved");
    let waiting = open(2, "production").await;
    let id = waiting["id"].as_i64().unwrap();
    let done = request_until(id, |request| {
        request["evaluations"]
            .as_array()
            .is_some_and(|evaluations| {
                evaluations
                    .iter()
                    .all(|evaluation| evaluation["state"] == "succeeded")
            })
    })
    .await;
    assert_eq!(done["state"], "open", "{done}");
    let explanation = call_json(
        &app,
        Method::GET,
        "/api/v1/models/scorer/versions/2/explain?stage=production",
        &developer,
        None,
    )
    .await;
    let failing: Vec<&str> = explanation["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| check["status"] != "passed")
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["card_complete"], "{explanation}");
    let jobs_before = call_json(
        &app,
        Method::GET,
        "/api/v1/evaluation-jobs?model=scorer",
        &developer,
        None,
    )
    .await["jobs"]
        .as_array()
        .unwrap()
        .len();
    let withdrawn = call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{id}/withdraw"),
        &developer,
        Some(json!({ "reason": "again" })),
    )
    .await;
    assert!(withdrawn.status().is_success(), "{}", withdrawn.status());
    let again = open(2, "production").await;
    assert_eq!(
        again["evaluations"], done["evaluations"],
        "the same jobs, none queued again"
    );
    let jobs_after = call_json(
        &app,
        Method::GET,
        "/api/v1/evaluation-jobs?model=scorer",
        &developer,
        None,
    )
    .await["jobs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(jobs_after, jobs_before);

    // A policy naming a dataset nobody registered is valid, and applying it (here a dry run) warns.
    let policy = call_json(&app, Method::GET, "/api/v1/policy", &app.admin_token, None).await;
    let text = policy["text"].as_str().unwrap().replacen(
        "{ dataset = \"grid-recent\", bootstrap = 0 }",
        "{ dataset = \"holdout-2027\" }",
        1,
    );
    let dry_run = call_json(
        &app,
        Method::PUT,
        "/api/v1/policy",
        &app.admin_token,
        Some(json!({ "text": text, "dry_run": true })),
    )
    .await;
    let warnings = dry_run["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{dry_run}");
    assert!(
        warnings[0].as_str().unwrap().contains("\"holdout-2027\""),
        "{dry_run}"
    );
    app.stop().await;
}
