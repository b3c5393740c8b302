//! Evaluations as background jobs over HTTP: queued, followed to the end with their progress, failed with
//! the error a client would have got, cancelled with nothing saved, abandoned ones (their server stopped)
//! marked failed; and Parquet datasets and predictions evaluated the same as CSV, with intersections.

use crate::support::*;
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// Rows with a label, a score that mostly separates it, and two attributes.
fn rows(count: usize) -> Vec<(i64, f64, &'static str, &'static str, i64)> {
    (0..count)
        .map(|index| {
            let label = i64::from(index % 3 == 0);
            let score = if label == 1 { 0.6 } else { 0.3 } + (index % 7) as f64 * 0.05;
            let sex = if index % 2 == 0 { "f" } else { "m" };
            let region = ["north", "south", "west"][index % 3 / 2 + index % 2];
            (label, score, sex, region, 1000 + index as i64)
        })
        .collect()
}

fn as_csv(rows: &[(i64, f64, &str, &str, i64)]) -> String {
    let mut text = String::from("default,score,sex,region,income\n");
    for (label, score, sex, region, income) in rows {
        text.push_str(&format!("{label},{score},{sex},{region},{income}\n"));
    }
    text
}

fn as_parquet(rows: &[(i64, f64, &str, &str, i64)]) -> Vec<u8> {
    let batch = RecordBatch::try_from_iter([
        (
            "default",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
        ),
        (
            "score",
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))) as ArrayRef,
        ),
        (
            "sex",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))) as ArrayRef,
        ),
        (
            "region",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3))) as ArrayRef,
        ),
        (
            "income",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.4))) as ArrayRef,
        ),
    ])
    .unwrap();
    let mut buffer = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut buffer, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    buffer
}

async fn upload(app: &TestApp, token: &str, bytes: Vec<u8>) -> String {
    let response = app.upload(token, bytes, None).await;
    assert!(response.status().is_success());
    response.json::<Value>().await.unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn register(app: &TestApp, token: &str, name: &str, bytes: Vec<u8>) -> Value {
    let digest = upload(app, token, bytes).await;
    let response = call(app, Method::POST, "/api/v1/datasets", token, Some(json!({
        "name": name, "digest": digest,
        "schema": { "label": "default", "features": ["income"], "sensitive": ["sex", "region"], "positive_label": "1" },
    })))
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// A server with model `scored` version 1, and a developer's token.
async fn app_with_a_version() -> (TestApp, String) {
    app_with_a_version_on(AppOptions::default()).await
}

async fn app_with_a_version_on(options: AppOptions) -> (TestApp, String) {
    let app = spawn_app_with(options).await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    app.create_model(&developer, "scored", "low").await;
    app.push_version(&developer, "scored", payload(64)).await;
    (app, developer)
}

/// Polls a job until it is no longer queued or running; returns it and every percent seen.
async fn follow(app: &TestApp, token: &str, id: i64) -> (Value, Vec<f64>) {
    let mut seen = Vec::new();
    for _ in 0..1200 {
        let job: Value = call_json(
            app,
            Method::GET,
            &format!("/api/v1/evaluation-jobs/{id}"),
            token,
            None,
        )
        .await;
        seen.push(job["percent"].as_f64().unwrap());
        if !matches!(job["state"].as_str(), Some("queued" | "running")) {
            return (job, seen);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("evaluation job {id} did not finish within a minute");
}

async fn start(app: &TestApp, token: &str, body: Value) -> Value {
    let response = call(app, Method::POST, "/api/v1/evaluations", token, Some(body)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.json().await.unwrap()
}

async fn evaluations_of_version(app: &TestApp, token: &str) -> usize {
    let list: Value = call_json(
        app,
        Method::GET,
        "/api/v1/models/scored/versions/1/evaluations",
        token,
        None,
    )
    .await;
    list["evaluations"].as_array().unwrap().len()
}

#[tokio::test]
async fn an_evaluation_runs_as_a_job_that_reports_progress_and_fails_with_the_clients_error() {
    let (app, developer) = app_with_a_version().await;
    let data = rows(300);
    register(&app, &developer, "holdout", as_csv(&data).into_bytes()).await;
    let predictions = upload(&app, &developer, as_csv(&data).into_bytes()).await;

    let job = start(
        &app,
        &developer,
        json!({
            "model": "scored", "version": 1, "dataset": "holdout",
            "predictions_digest": predictions, "score_column": "score", "bootstrap_resamples": 300,
        }),
    )
    .await;
    assert!(
        matches!(job["state"].as_str(), Some("queued" | "running")),
        "{job}"
    );
    let (done, seen) = follow(&app, &developer, job["id"].as_i64().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["percent"], 100.0);
    assert!(
        seen.windows(2).all(|pair| pair[0] <= pair[1]),
        "progress only grows: {seen:?}"
    );
    let evaluation: Value = call_json(
        &app,
        Method::GET,
        &format!("/api/v1/evaluations/{}", done["evaluation_id"]),
        &developer,
        None,
    )
    .await;
    assert_eq!(
        evaluation["results"]["intervals"]["roc_auc"]["resamples"],
        300
    );

    // Bad data is found by the job: it fails with the error and location a waiting client would get.
    let short = upload(&app, &developer, as_csv(&data[..299]).into_bytes()).await;
    let job = start(
        &app,
        &developer,
        json!({
            "model": "scored", "version": 1, "dataset": "holdout",
            "predictions_digest": short, "score_column": "score",
        }),
    )
    .await;
    let (failed, _) = follow(&app, &developer, job["id"].as_i64().unwrap()).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "invalid_argument");
    assert_eq!(failed["error"]["details"]["field"], "predictions");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("299 rows and the dataset 300"),
        "{failed}"
    );
    assert!(failed.get("evaluation_id").is_none());
    assert_eq!(evaluations_of_version(&app, &developer).await, 1);

    // Mistakes in the request itself are answered at once, before any job exists.
    let (status, _, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/evaluations",
            &developer,
            Some(json!({
                "model": "scored", "version": 1, "dataset": "holdout",
                "predictions_digest": predictions, "score_column": "score",
                "intersections": [["sex", "age"]],
            })),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["field"], "intersections");
    for (field, value) in [("bins", 1), ("bins", 500), ("bootstrap_resamples", 50_000)] {
        let (status, _, body) = error_of(
            call(
                &app,
                Method::POST,
                "/api/v1/evaluations",
                &developer,
                Some(json!({
                    "model": "scored", "version": 1, "dataset": "holdout",
                    "predictions_digest": predictions, "score_column": "score", field: value,
                })),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field} {value}");
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
    }
    let (status, _, body) = error_of(
        call(
            &app,
            Method::GET,
            "/api/v1/evaluation-jobs?state=done",
            &developer,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["field"], "state", "{body}");
    let failed_jobs = call_json(
        &app,
        Method::GET,
        "/api/v1/evaluation-jobs?state=failed&model=scored",
        &developer,
        None,
    )
    .await;
    assert_eq!(
        failed_jobs["jobs"].as_array().unwrap().len(),
        1,
        "{failed_jobs}"
    );
    let (status, code, _) = error_of(
        call(
            &app,
            Method::GET,
            "/api/v1/evaluation-jobs/999",
            &developer,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_cancelled_job_saves_nothing_and_a_finished_one_cannot_be_cancelled() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    let outsider = app.user_with_token("outsider", &["validator"]).await;
    app.create_model(&developer, "scored", "low").await;
    app.push_version(&developer, "scored", payload(64)).await;
    let data = rows(50_000);
    register(&app, &developer, "big", as_csv(&data).into_bytes()).await;
    let predictions = upload(&app, &developer, as_csv(&data).into_bytes()).await;
    // 10,000 resamples of 50,000 rows: long enough to be cancelled while it runs.
    let job = start(&app, &developer, json!({
        "model": "scored", "version": 1, "dataset": "big",
        "predictions_digest": predictions, "score_column": "score", "bootstrap_resamples": 10_000,
    }))
    .await;
    let id = job["id"].as_i64().unwrap();
    // A second job queues behind it (one evaluation runs at a time) and can be cancelled while queued.
    let queued = start(
        &app,
        &developer,
        json!({
            "model": "scored", "version": 1, "dataset": "big",
            "predictions_digest": predictions, "score_column": "score", "bootstrap_resamples": 0,
        }),
    )
    .await;
    let queued_id = queued["id"].as_i64().unwrap();
    call_json(
        &app,
        Method::POST,
        &format!("/api/v1/evaluation-jobs/{queued_id}/cancel"),
        &developer,
        Some(json!({})),
    )
    .await;
    let (ended, _) = follow(&app, &developer, queued_id).await;
    assert_eq!(ended["state"], "cancelled", "{ended}");
    let running: Value = call_json(
        &app,
        Method::GET,
        &format!("/api/v1/evaluation-jobs/{id}"),
        &developer,
        None,
    )
    .await;
    assert_eq!(
        running["state"], "running",
        "the first job still runs: {running}"
    );

    let path = format!("/api/v1/evaluation-jobs/{id}/cancel");
    let (status, code, _) =
        error_of(call(&app, Method::POST, &path, &outsider, Some(json!({}))).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "permission_denied"),
        "only the model's maintainers cancel its evaluations"
    );
    let cancelled: Value = call_json(&app, Method::POST, &path, &developer, Some(json!({}))).await;
    assert_eq!(cancelled["cancel_requested"], true, "{cancelled}");
    let (ended, _) = follow(&app, &developer, id).await;
    assert_eq!(ended["state"], "cancelled", "{ended}");
    assert!(ended["percent"].as_f64().unwrap() < 100.0);
    assert_eq!(
        evaluations_of_version(&app, &developer).await,
        0,
        "nothing saved"
    );

    let (status, code, body) =
        error_of(call(&app, Method::POST, &path, &developer, Some(json!({}))).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "failed_precondition"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_job_whose_server_stopped_is_marked_failed() {
    let app = spawn_app().await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    // A job as a crashed server leaves it: queued, its last heartbeat a minute ago.
    let store = modelgate_store::Store::open_data_dir(app.data_dir.path())
        .await
        .unwrap();
    let a_minute_ago = modelgate_core::Timestamp::from_unix_millis(
        modelgate_server::system_now().unix_millis() - 60_000,
    );
    let job = store
        .create_job(
            &modelgate_store::Attribution::system("test", a_minute_ago),
            &modelgate_store::NewJob {
                model_name: "scored".to_owned(),
                version: 1,
                dataset: "holdout".to_owned(),
                request_json: "{}".to_owned(),
            },
        )
        .await
        .unwrap();
    let seen: Value = call_json(
        &app,
        Method::GET,
        &format!("/api/v1/evaluation-jobs/{}", job.id),
        &developer,
        None,
    )
    .await;
    assert_eq!(seen["state"], "failed", "{seen}");
    assert!(
        seen["message"]
            .as_str()
            .unwrap()
            .contains("server stopped while the evaluation ran"),
        "{seen}"
    );
    app.stop().await;
}

#[tokio::test]
async fn parquet_datasets_and_predictions_give_the_same_numbers_as_csv_with_intersections() {
    let (app, developer) = app_with_a_version().await;
    let data = rows(500);
    let dataset = register(&app, &developer, "as-parquet", as_parquet(&data)).await;
    assert_eq!(dataset["format"], "parquet");
    assert_eq!(dataset["rows"], 500);
    assert_eq!(dataset["profile"]["columns"]["income"]["type"], "number");
    assert_eq!(dataset["profile"]["columns"]["region"]["distinct"], 3);
    let csv_dataset = register(&app, &developer, "as-csv", as_csv(&data).into_bytes()).await;
    assert_eq!(csv_dataset["format"], "csv");

    let mut results = Vec::new();
    for (dataset, predictions) in [
        ("as-parquet", as_parquet(&data)),
        ("as-csv", as_csv(&data).into_bytes()),
    ] {
        let digest = upload(&app, &developer, predictions).await;
        let response = call(&app, Method::POST, "/api/v1/evaluations", &developer, Some(json!({
            "wait": true, "model": "scored", "version": 1, "dataset": dataset,
            "predictions_digest": digest, "score_column": "score", "intersections": [["sex", "region"]],
        })))
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let evaluation: Value = response.json().await.unwrap();
        results.push(evaluation["results"].clone());
    }
    assert_eq!(
        results[0], results[1],
        "the format does not change a number"
    );
    let crossed = results[0]["by_group"]["sex & region"].as_array().unwrap();
    assert!(
        crossed.iter().any(|group| group["group"] == "f & north"),
        "{crossed:?}"
    );
    assert!(
        results[0]["fairness"]["sex & region"]["demographic_parity_ratio"]["value"].is_number()
    );

    // A declared format that is not the file's is refused, naming the field.
    let digest = upload(&app, &developer, as_parquet(&data)).await;
    let (status, _, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/datasets",
            &developer,
            Some(json!({
                "name": "mislabelled", "digest": digest, "format": "csv",
                "schema": { "label": "default", "positive_label": "1" },
            })),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["field"], "format", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn multiclass_and_regression_datasets_are_evaluated_from_predictions() {
    let (app, developer) = app_with_a_version().await;
    let mut species = String::from("species,sex,width\n");
    let mut predictions = String::from("predicted,proba_a,proba_b,proba_c\n");
    let mut prices = String::from("price,sex,estimate\n");
    for index in 0..90 {
        let class = ["a", "b", "c"][index % 3];
        let predicted = if index % 10 == 0 { "a" } else { class };
        let sex = if index % 2 == 0 { "f" } else { "m" };
        species.push_str(&format!("{class},{sex},{}\n", index % 7));
        let p = |c: &str| if c == predicted { 0.8 } else { 0.1 };
        predictions.push_str(&format!("{predicted},{},{},{}\n", p("a"), p("b"), p("c")));
        prices.push_str(&format!(
            "{},{sex},{}\n",
            100 + index,
            100 + index + index % 3
        ));
    }
    for (name, task, csv) in [
        ("species", "multiclass", &species),
        ("prices", "regression", &prices),
    ] {
        let digest = upload(&app, &developer, csv.clone().into_bytes()).await;
        let label = if task == "multiclass" {
            "species"
        } else {
            "price"
        };
        let response = call(
            &app,
            Method::POST,
            "/api/v1/datasets",
            &developer,
            Some(json!({
                "name": name, "digest": digest,
                "schema": { "task": task, "label": label, "sensitive": ["sex"] },
            })),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{task}");
        let dataset: Value = response.json().await.unwrap();
        assert_eq!(dataset["schema"]["task"], task);
    }

    // Declared classes: a label outside them is refused with its line.
    let digest = upload(&app, &developer, species.clone().into_bytes()).await;
    let (status, _, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/datasets",
            &developer,
            Some(json!({
                "name": "two-species", "digest": digest,
                "schema": { "task": "multiclass", "label": "species", "classes": ["a", "b"] },
            })),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["line"], 4, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not one of the declared classes (a, b)"),
        "{body}"
    );

    let digest = upload(&app, &developer, predictions.into_bytes()).await;
    let (status, _, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/evaluations",
            &developer,
            Some(json!({
                "model": "scored", "version": 1, "dataset": "species", "predictions_digest": digest,
            })),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["details"]["field"], "prediction_column",
        "{body}"
    );
    let evaluation: Value = call_json(&app, Method::POST, "/api/v1/evaluations", &developer, Some(json!({
        "wait": true, "model": "scored", "version": 1, "dataset": "species", "predictions_digest": digest,
        "prediction_column": "predicted", "score_column": "proba_",
    })))
    .await;
    let overall = &evaluation["results"]["overall"];
    assert_eq!(evaluation["results"]["task"], "multiclass", "{evaluation}");
    assert!((overall["accuracy"]["value"].as_f64().unwrap() - 84.0 / 90.0).abs() < 1e-12);
    assert!(overall["log_loss"]["value"].as_f64().unwrap() > 0.0);
    assert_eq!(overall["per_class"]["a"]["recall"]["value"], 1.0);
    assert_eq!(
        evaluation["results"]["by_group"]["sex"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let digest = upload(&app, &developer, prices.into_bytes()).await;
    let evaluation: Value = call_json(&app, Method::POST, "/api/v1/evaluations", &developer, Some(json!({
        "wait": true, "model": "scored", "version": 1, "dataset": "prices", "predictions_digest": digest,
        "score_column": "estimate",
    })))
    .await;
    assert_eq!(evaluation["results"]["task"], "regression", "{evaluation}");
    assert!(
        (evaluation["results"]["overall"]["mae"]["value"]
            .as_f64()
            .unwrap()
            - 1.0)
            .abs()
            < 1e-12
    );

    // Model mode needs feature columns; a binary dataset needs its positive label.
    let (status, _, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/evaluations",
            &developer,
            Some(json!({
                "model": "scored", "version": 1, "dataset": "prices",
            })),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["field"], "dataset", "{body}");
    let digest = upload(&app, &developer, species.into_bytes()).await;
    let (status, _, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/datasets",
            &developer,
            Some(json!({
                "name": "no-positive", "digest": digest, "schema": { "label": "species" },
            })),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["details"]["field"], "schema.positive_label",
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn evaluation_jobs_work_the_same_on_postgresql() {
    let (app, developer) = app_with_a_version_on(AppOptions {
        postgres: true,
        ..AppOptions::default()
    })
    .await;
    let data = rows(400);
    register(&app, &developer, "holdout", as_parquet(&data)).await;
    let predictions = upload(&app, &developer, as_csv(&data).into_bytes()).await;
    let job = start(
        &app,
        &developer,
        json!({
            "model": "scored", "version": 1, "dataset": "holdout",
            "predictions_digest": predictions, "score_column": "score", "bootstrap_resamples": 100,
            "intersections": [["sex", "region"]],
        }),
    )
    .await;
    let id = job["id"].as_i64().unwrap();
    let (done, _) = follow(&app, &developer, id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["percent"], 100.0);
    let evaluation = call_json(
        &app,
        Method::GET,
        &format!("/api/v1/evaluations/{}", done["evaluation_id"]),
        &developer,
        None,
    )
    .await;
    assert_eq!(
        evaluation["results"]["intervals"]["roc_auc"]["resamples"],
        100
    );
    assert!(evaluation["results"]["by_group"]["sex & region"].is_array());
    let (status, code, _) = error_of(
        call(
            &app,
            Method::POST,
            &format!("/api/v1/evaluation-jobs/{id}/cancel"),
            &developer,
            Some(json!({})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "failed_precondition")
    );
    assert_eq!(evaluations_of_version(&app, &developer).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn stopping_the_server_fails_its_running_jobs() {
    let (app, developer) = app_with_a_version().await;
    let data = rows(20_000);
    register(&app, &developer, "big", as_csv(&data).into_bytes()).await;
    let predictions = upload(&app, &developer, as_csv(&data).into_bytes()).await;
    let job = start(&app, &developer, json!({
        "model": "scored", "version": 1, "dataset": "big",
        "predictions_digest": predictions, "score_column": "score", "bootstrap_resamples": 10_000,
    }))
    .await;
    let store = modelgate_store::Store::open_data_dir(app.data_dir.path())
        .await
        .unwrap();
    app.stop().await;
    let stopped = store.get_job(job["id"].as_i64().unwrap()).await.unwrap();
    assert_eq!(
        stopped.state,
        modelgate_store::JobState::Failed,
        "{stopped:?}"
    );
    assert!(
        stopped
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("server was stopped"),
        "{stopped:?}"
    );
    assert_eq!(stopped.evaluation_id, None);
}

#[tokio::test]
async fn a_small_parquet_file_that_decodes_past_the_limit_is_refused() {
    let app = spawn_app_with(AppOptions {
        max_dataset_bytes: 100_000,
        ..AppOptions::default()
    })
    .await;
    let developer = app.user_with_token("dev", &["model_developer"]).await;
    // One row repeated compresses to almost nothing, and decodes to megabytes.
    let repeated = vec![(1, 0.5, "f", "north", 1000); 60_000];
    let file = as_parquet(&repeated);
    assert!(file.len() < 100_000, "{} bytes", file.len());
    let digest = upload(&app, &developer, file).await;
    let (status, code, body) = error_of(
        call(
            &app,
            Method::POST,
            "/api/v1/datasets",
            &developer,
            Some(json!({
                "name": "bomb", "digest": digest,
                "schema": { "label": "default", "positive_label": "1" },
            })),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("decode to"),
        "{body}"
    );
    app.stop().await;
}
