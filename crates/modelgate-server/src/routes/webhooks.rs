//! `/api/v1/webhooks`: subscriptions to the server's events (admins only), their test events and their
//! delivery logs. Secrets are never returned, except once when the server generated one.

use crate::auth::Caller;
use crate::convert::format_time;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::webhooks::{
    check_destination, check_event_list, event_id, event_types, generate_secret, secret_key,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use modelgate_api as api;
use modelgate_core::access::require_admin;
use modelgate_core::{ModelName, Timestamp};
use modelgate_store::{DeliveryRecord, NewWebhook, WebhookRecord};

/// How many deliveries `GET …/deliveries` lists (newest first).
const DELIVERY_LOG_LENGTH: u32 = 200;

fn webhook_wire(record: &WebhookRecord) -> api::Webhook {
    api::Webhook {
        id: record.id,
        url: record.url.clone(),
        events: record.events.clone(),
        model: record.model.clone(),
        created_at: format_time(record.created_at),
        created_by: record.created_by.clone(),
        disabled_at: record.disabled_at.map(format_time),
        disabled_reason: record.disabled_reason.clone(),
        previous_secret_until: record.previous_secret_until.map(format_time),
    }
}

/// Only admins manage subscriptions: a subscription sees every change the log records.
async fn admin_only(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
) -> Result<(), ApiError> {
    state
        .authorize(caller, action, target, require_admin(caller.user()))
        .await?;
    Ok(())
}

fn parse_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::invalid(
                "id",
                format!("id: {text:?} is not a webhook id; `modelgate webhook list` shows them"),
            )
        })
}

/// A secret given, checked; else a new one, to be shown once.
fn secret_or_new(given: Option<&str>) -> Result<(String, bool), ApiError> {
    match given {
        Some(secret) => {
            secret_key(secret).map_err(|problem| ApiError::invalid("secret", problem))?;
            Ok((secret.trim().to_owned(), false))
        }
        None => Ok((generate_secret(), true)),
    }
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = api::CreateWebhookRequest,
    responses((status = 201, body = api::CreatedWebhook), (status = 400, body = api::ErrorBody),
              (status = 403, body = api::ErrorBody)))]
/// Subscribe a URL to events
///
/// Admins only. The URL must be public unless the server allow-lists its host (`--webhook-allow-host`);
/// the secret signs every delivery (Standard Webhooks) and is returned only when the server made it.
pub async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::CreateWebhookRequest>,
) -> Result<(StatusCode, Json<api::CreatedWebhook>), ApiError> {
    admin_only(&state, &caller, "webhook.create", "webhook").await?;
    // What needs no network first; the URL's host is resolved last.
    let events = check_event_list(&request.events)
        .map_err(|problem| ApiError::invalid("events", problem))?;
    let (secret, generated) = secret_or_new(request.secret.as_deref())?;
    let model = match &request.model {
        Some(model) => {
            let name = ModelName::parse(model).map_err(|mut invalid| {
                invalid.field = "model";
                invalid
            })?;
            state.store().get_model(&name).await.map_err(|_| {
                ApiError::new(
                    crate::error::ErrorCode::NotFound,
                    format!("model: no model named {name}; `modelgate model list` shows them"),
                )
                .with_details(serde_json::json!({ "field": "model" }))
            })?;
            Some(name.to_string())
        }
        None => None,
    };
    let url = check_destination(&request.url, &state.webhook_settings().allow_hosts)
        .await
        .map_err(|problem| ApiError::invalid("url", problem))?;
    let record = state
        .store()
        .create_webhook(
            &caller.attribution(state.now()),
            &NewWebhook {
                url: url.to_string(),
                events,
                model,
                secret: secret.clone(),
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(api::CreatedWebhook {
            webhook: webhook_wire(&record),
            secret: generated.then_some(secret),
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = api::WebhookList), (status = 403, body = api::ErrorBody)))]
/// List subscriptions
///
/// Admins only; secrets are never shown.
pub async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<api::WebhookList>, ApiError> {
    admin_only(&state, &caller, "webhook.list", "webhook").await?;
    let webhooks = state.store().list_webhooks().await?;
    Ok(Json(api::WebhookList {
        webhooks: webhooks.iter().map(webhook_wire).collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/webhooks/event-types", tag = "webhooks",
    responses((status = 200, body = api::WebhookEventTypes)))]
/// The event types a subscription may name
///
/// Each goes out with the CloudEvents `type` `io.modelgate.<event type>`; `*` in a subscription takes
/// them all.
pub async fn list_event_types(_caller: Caller) -> Json<api::WebhookEventTypes> {
    Json(api::WebhookEventTypes {
        event_types: event_types().into_iter().map(str::to_owned).collect(),
    })
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    responses((status = 204), (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)))]
/// Delete a subscription
///
/// Nothing more is delivered to it; its pending deliveries fail.
pub async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    admin_only(&state, &caller, "webhook.delete", &format!("webhook/{id}")).await?;
    state
        .store()
        .delete_webhook(&caller.attribution(state.now()), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")), request_body = api::RotateWebhookSecretRequest,
    responses((status = 200, body = api::CreatedWebhook), (status = 400, body = api::ErrorBody),
              (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)))]
/// Rotate a subscription's secret
///
/// Deliveries carry signatures with the new and the old secret for the overlap (default 24 hours), so the
/// receiver can switch without missing one.
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<api::RotateWebhookSecretRequest>,
) -> Result<Json<api::CreatedWebhook>, ApiError> {
    let id = parse_id(&id)?;
    admin_only(&state, &caller, "webhook.rotate", &format!("webhook/{id}")).await?;
    let hours = request.overlap_hours.unwrap_or(24);
    if hours > 24 * 30 {
        return Err(ApiError::invalid(
            "overlap_hours",
            format!("overlap_hours: at most 720 (30 days); got {hours}"),
        ));
    }
    let (secret, generated) = secret_or_new(request.secret.as_deref())?;
    let now = state.now();
    let until = Timestamp::from_unix_millis(
        now.unix_millis()
            .saturating_add(i64::from(hours) * 3_600_000),
    );
    let record = state
        .store()
        .rotate_webhook_secret(&caller.attribution(now), id, &secret, until)
        .await?;
    Ok(Json(api::CreatedWebhook {
        webhook: webhook_wire(&record),
        secret: generated.then_some(secret),
    }))
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    responses((status = 202, body = api::WebhookTest), (status = 403, body = api::ErrorBody),
              (status = 404, body = api::ErrorBody)))]
/// Send a test event
///
/// Records a `webhook.test` event that only this subscription receives; its delivery shows in the log.
pub async fn test_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<api::WebhookTest>), ApiError> {
    let id = parse_id(&id)?;
    admin_only(&state, &caller, "webhook.test", &format!("webhook/{id}")).await?;
    let seq = state
        .store()
        .record_webhook_test(&caller.attribution(state.now()), id)
        .await?;
    let leaves = state.store().audit_leaves(&[seq]).await?;
    let leaf_hash = leaves
        .get(&seq)
        .map(|(_, hash)| hash.as_str())
        .unwrap_or_default();
    Ok((
        StatusCode::ACCEPTED,
        Json(api::WebhookTest {
            seq,
            event_id: event_id(seq, leaf_hash),
        }),
    ))
}

fn delivery_wire(
    delivery: &DeliveryRecord,
    attempts: &[modelgate_store::AttemptRecord],
    leaf_hash: &str,
) -> api::WebhookDelivery {
    let state = match delivery.state.as_str() {
        "delivered" => api::DeliveryState::Delivered,
        "failed" => api::DeliveryState::Failed,
        _ => api::DeliveryState::Pending,
    };
    api::WebhookDelivery {
        event_id: event_id(delivery.event_seq, leaf_hash),
        seq: delivery.event_seq,
        event_type: delivery.event_type.clone(),
        subject: delivery.subject.clone(),
        state,
        attempts: attempts
            .iter()
            .map(|attempt| api::DeliveryAttempt {
                attempt: attempt.attempt,
                at: format_time(attempt.attempted_at),
                status: attempt.status,
                error: attempt.error.clone(),
                latency_ms: attempt.latency_ms,
            })
            .collect(),
        next_attempt_at: (state == api::DeliveryState::Pending)
            .then(|| format_time(delivery.next_attempt_at)),
        finished_at: delivery.finished_at.map(format_time),
    }
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    responses((status = 200, body = api::WebhookDeliveryList), (status = 403, body = api::ErrorBody),
              (status = 404, body = api::ErrorBody)))]
/// A subscription's delivery log
///
/// The latest 200 deliveries, newest first, each with every attempt: when, the status or the error, and
/// how long it took.
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<api::WebhookDeliveryList>, ApiError> {
    let id = parse_id(&id)?;
    admin_only(
        &state,
        &caller,
        "webhook.deliveries",
        &format!("webhook/{id}"),
    )
    .await?;
    let deliveries = state
        .store()
        .list_webhook_deliveries(id, DELIVERY_LOG_LENGTH)
        .await?;
    let seqs: Vec<u64> = deliveries
        .iter()
        .map(|(delivery, _)| delivery.event_seq)
        .collect();
    let leaves = state.store().audit_leaves(&seqs).await?;
    Ok(Json(api::WebhookDeliveryList {
        deliveries: deliveries
            .iter()
            .map(|(delivery, attempts)| {
                let hash = leaves
                    .get(&delivery.event_seq)
                    .map(|(_, hash)| hash.as_str())
                    .unwrap_or_default();
                delivery_wire(delivery, attempts, hash)
            })
            .collect(),
    }))
}
