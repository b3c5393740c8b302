//! Evaluation jobs in the store, on both backends: an evaluation and its job's success are one
//! transaction; a job asked to stop saves nothing (not even an audit event); heartbeats bring a stop
//! request back; abandoned jobs are failed.

use crate::contract_tests;
use crate::promotion::setup;
use crate::support::{TestStore, as_user, at};
use modelgate_core::{Digest, Timestamp, VersionNumber};
use modelgate_store::{JobState, NewEvaluation, NewJob, StoreError};

contract_tests!(
    an_evaluation_and_its_job_end_together,
    a_stopped_or_abandoned_job_saves_nothing,
);

fn new_job() -> NewJob {
    NewJob {
        model_name: "scorer".to_owned(),
        version: 1,
        dataset: "holdout".to_owned(),
        request_json: "{}".to_owned(),
    }
}

fn new_evaluation() -> NewEvaluation {
    NewEvaluation {
        dataset: "holdout".to_owned(),
        mode: "predictions".to_owned(),
        inputs_json: "{}".to_owned(),
        settings_json: "{}".to_owned(),
        engine: "test".to_owned(),
        results_json: "{}".to_owned(),
        digest: "sha256:results".to_owned(),
    }
}

fn ts(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis)
}

async fn with_dataset(store: &TestStore) -> (modelgate_core::User, modelgate_core::ModelName) {
    let (_, dev, name) = setup(store, 1).await;
    let digest = Digest::from_sha256_bytes([9; 32]);
    store.record_artifact(&at(4), &digest, 10).await.unwrap();
    store
        .create_dataset(&at(5), "holdout", &digest, "csv", "{}", "{}", 10)
        .await
        .unwrap();
    (dev, name)
}

async fn an_evaluation_and_its_job_end_together(store: TestStore) {
    let (dev, name) = with_dataset(&store).await;
    let one = VersionNumber::new(1).unwrap();
    let job = store
        .create_job(&as_user(&dev, 6), &new_job())
        .await
        .unwrap();
    assert_eq!((job.state, job.progress), (JobState::Queued, 0.0));
    let asked_to_stop = store
        .job_heartbeat(job.id, true, 0.5, "metrics", ts(7))
        .await
        .unwrap();
    assert!(!asked_to_stop);
    let running = store.get_job(job.id).await.unwrap();
    assert_eq!(
        (running.state, running.progress, running.phase.as_str()),
        (JobState::Running, 0.5, "metrics")
    );
    let evaluation = store
        .create_evaluation(
            &as_user(&dev, 8),
            &name,
            one,
            &new_evaluation(),
            Some(job.id),
            &[],
        )
        .await
        .unwrap();
    let done = store.get_job(job.id).await.unwrap();
    assert_eq!(
        (done.state, done.evaluation_id, done.progress),
        (JobState::Succeeded, Some(evaluation.id), 1.0)
    );
    // A finished job takes no more heartbeats (they answer "stop") and cannot be cancelled.
    assert!(
        store
            .job_heartbeat(job.id, true, 0.9, "x", ts(9))
            .await
            .unwrap()
    );
    assert!(matches!(
        store.request_job_cancel(job.id, ts(9)).await,
        Err(StoreError::FailedPrecondition(_))
    ));
    assert_eq!(
        store.get_job(job.id).await.unwrap().state,
        JobState::Succeeded
    );
}

async fn a_stopped_or_abandoned_job_saves_nothing(store: TestStore) {
    let (dev, name) = with_dataset(&store).await;
    let one = VersionNumber::new(1).unwrap();
    let job = store
        .create_job(&as_user(&dev, 6), &new_job())
        .await
        .unwrap();
    let cancelled = store.request_job_cancel(job.id, ts(7)).await.unwrap();
    assert!(cancelled.cancel_requested);
    assert!(
        store
            .job_heartbeat(job.id, true, 0.7, "bootstrap", ts(8))
            .await
            .unwrap(),
        "the heartbeat brings the stop request back to the runner"
    );
    let (events_before, _) = store.audit_tree_head().await.unwrap();
    // The work finished anyway: saving it is refused, and nothing of it stays.
    let refused = store
        .create_evaluation(
            &as_user(&dev, 9),
            &name,
            one,
            &new_evaluation(),
            Some(job.id),
            &[],
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::FailedPrecondition(_))),
        "{refused:?}"
    );
    assert!(
        store
            .evaluations_for_version(&name, one)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.audit_tree_head().await.unwrap().0,
        events_before,
        "no audit event either"
    );
    store
        .finish_job(
            job.id,
            JobState::Cancelled,
            "cancelled on request",
            None,
            ts(10),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_job(job.id).await.unwrap().state,
        JobState::Cancelled
    );

    // A job whose heartbeat stopped (its server died) is failed; a fresh one is left alone.
    let abandoned = store
        .create_job(&as_user(&dev, 1_000), &new_job())
        .await
        .unwrap();
    let fresh = store
        .create_job(&as_user(&dev, 60_000), &new_job())
        .await
        .unwrap();
    let failed = store
        .fail_abandoned_jobs(ts(30_000), ts(61_000))
        .await
        .unwrap();
    assert_eq!(failed, 1);
    let abandoned = store.get_job(abandoned.id).await.unwrap();
    assert_eq!(abandoned.state, JobState::Failed);
    assert!(
        abandoned
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("server stopped"),
        "{abandoned:?}"
    );
    assert_eq!(
        store.get_job(fresh.id).await.unwrap().state,
        JobState::Queued
    );
}
