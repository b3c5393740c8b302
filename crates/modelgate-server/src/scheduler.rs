//! Scheduled work (issue 13), run by every replica and done by one at a time (a lease in the database):
//! for each approval in force, with the policy's monitoring for its tier —
//! - `reapproval_lead` days before it expires: a re-approval (re-validation) request opens, and
//!   `approval.expiring` is recorded;
//! - when it has expired: `approval.expired`;
//! - `revalidate_every` days after it was given: a re-validation request opens (`approval.revalidation_due`);
//! - in production without a monitoring batch for `stale_after` days: `monitoring.stale`.
//!
//! Each event has a key (the approval, and for staleness the last batch), inserted with its audit event in
//! one transaction, so it happens once across replicas and restarts. Requests open before the event is
//! recorded, and opening skips a version that has an open re-validation already, so a crash between the
//! two opens nothing twice. Time is the injected clock.

use crate::state::AppState;
use modelgate_core::{Stage, Timestamp};
use modelgate_store::{ApprovalInForce, Attribution};
use rand::Rng as _;
use serde_json::json;
use std::time::Duration;

const DAY_MILLIS: i64 = 86_400_000;

/// Runs the scheduler until shutdown, a round every `interval`.
pub async fn run_scheduler(state: AppState, interval: Duration) {
    let owner = format!(
        "{}-{:016x}",
        std::process::id(),
        rand::rng().random::<u64>()
    );
    let shutdown = state.shutdown().clone();
    loop {
        if let Err(error) = round(&state, &owner, interval).await {
            tracing::warn!(error = %error.message, "scheduled work failed; retrying next round");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    if let Err(error) = state.store().release_scheduler_lease(&owner).await {
        tracing::warn!(%error, "could not release the scheduler lease");
    }
}

/// One round, if this replica holds (or takes) the lease.
async fn round(
    state: &AppState,
    owner: &str,
    interval: Duration,
) -> Result<(), crate::error::ApiError> {
    let now = state.now();
    // Longer than a round, so the holder keeps it; short enough that another replica takes over soon
    // after the holder stops.
    let lease = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .saturating_mul(3)
        .saturating_add(10_000);
    let until = Timestamp::from_unix_millis(now.unix_millis().saturating_add(lease));
    if !state
        .store()
        .take_scheduler_lease(owner, now, until)
        .await?
    {
        return Ok(());
    }
    let in_force = crate::promotion::policy_in_force(state).await?;
    for approval in state.store().approvals_in_force().await? {
        // One approval's trouble (a stage the policy dropped, say) does not hold up the others.
        if let Err(error) = watch(state, &in_force, &approval, now).await {
            tracing::warn!(model = %approval.model, version = %approval.version, error = %error.message,
                "scheduled work on an approval failed; retrying next round");
        }
    }
    Ok(())
}

/// The scheduled work on one approval in force.
async fn watch(
    state: &AppState,
    in_force: &crate::promotion::PolicyInForce,
    approval: &ApprovalInForce,
    now: Timestamp,
) -> Result<(), crate::error::ApiError> {
    let Some(monitoring) = in_force.policy.monitoring.get(&approval.risk_tier) else {
        // Expiry is recorded for every tier.
        expire(state, approval, now).await?;
        return Ok(());
    };
    if expire(state, approval, now).await? {
        return Ok(());
    }
    let key = approval_key(approval);
    if let Some(lead) = monitoring.reapproval_lead_days {
        let from = approval.not_after.unix_millis() - i64::from(lead) * DAY_MILLIS;
        if now.unix_millis() >= from {
            let justification = format!(
                "re-approval: the approval for {} expires at {} (the policy opens re-approval {lead} days ahead)",
                approval.stage,
                approval.not_after.to_rfc3339()
            );
            once_with_request(state, approval, "approval.expiring", &key, &justification, json!({
                "stage": approval.stage.as_str(), "not_after": approval.not_after.to_rfc3339(), "lead_days": lead,
            }))
            .await?;
        }
    }
    if let Some(every) = monitoring.revalidate_every_days {
        let due = approval.approved_at.unix_millis() + i64::from(every) * DAY_MILLIS;
        if now.unix_millis() >= due {
            let justification = format!(
                "re-validation due: the policy asks for one every {every} days, and the approval for {} was given at {}",
                approval.stage,
                approval.approved_at.to_rfc3339()
            );
            once_with_request(state, approval, "approval.revalidation_due", &key, &justification, json!({
                "stage": approval.stage.as_str(), "approved_at": approval.approved_at.to_rfc3339(), "every_days": every,
            }))
            .await?;
        }
    }
    if let Some(stale) = monitoring.stale_after_days
        && approval.stage == Stage::Production
    {
        let (batch, since) = approval.last_batch.unwrap_or((0, approval.approved_at));
        if now.unix_millis() >= since.unix_millis() + i64::from(stale) * DAY_MILLIS {
            state
                .store()
                .record_scheduled_event(
                    &Attribution::system("scheduler", now),
                    "monitoring.stale",
                    &format!("{key}/{batch}"),
                    target(approval),
                    json!({
                        "since": since.to_rfc3339(), "stale_after_days": stale,
                        "last_batch": (batch > 0).then_some(batch),
                    }),
                )
                .await?;
        }
    }
    Ok(())
}

fn approval_key(approval: &ApprovalInForce) -> String {
    format!(
        "{}/{}/{}",
        approval.model, approval.version, approval.approval_request_id
    )
}

fn target(approval: &ApprovalInForce) -> String {
    format!("model/{}/version/{}", approval.model, approval.version)
}

/// Records `approval.expired` once an approval's time is up; returns whether it has expired.
async fn expire(
    state: &AppState,
    approval: &ApprovalInForce,
    now: Timestamp,
) -> Result<bool, crate::error::ApiError> {
    if now < approval.not_after {
        return Ok(false);
    }
    // Checked first: an expired approval stays in its stage, and a write every round would be waste.
    if state
        .store()
        .scheduled_event_happened("approval.expired", &approval_key(approval))
        .await?
    {
        return Ok(true);
    }
    state
        .store()
        .record_scheduled_event(
            &Attribution::system("scheduler", now),
            "approval.expired",
            &approval_key(approval),
            target(approval),
            json!({ "stage": approval.stage.as_str(), "not_after": approval.not_after.to_rfc3339() }),
        )
        .await?;
    Ok(true)
}

/// Opens the re-validation request and records the event, once per approval.
async fn once_with_request(
    state: &AppState,
    approval: &ApprovalInForce,
    kind: &'static str,
    key: &str,
    justification: &str,
    mut after: serde_json::Value,
) -> Result<(), crate::error::ApiError> {
    if state.store().scheduled_event_happened(kind, key).await? {
        return Ok(());
    }
    let attribution = Attribution::system("scheduler", state.now());
    let Some(opened) = crate::promotion::open_revalidation(
        state,
        &attribution,
        &approval.model,
        approval.version,
        justification,
    )
    .await?
    else {
        // Refused this time (the policy or the evidence moved meanwhile): the next round tries again.
        return Ok(());
    };
    after["request"] = json!(opened);
    state
        .store()
        .record_scheduled_event(&attribution, kind, key, target(approval), after)
        .await?;
    Ok(())
}
