//! `/healthz` (the process answers) and `/readyz` (the database answers too). Unauthenticated.

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use modelgate_api as api;

#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, body = api::Health)))]
/// Liveness
///
/// Answers as long as the process serves requests; needs no token.
pub async fn healthz() -> Json<api::Health> {
    Json(api::Health {
        status: "ok".to_owned(),
    })
}

#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, body = api::Health), (status = 503, body = api::ErrorBody)))]
/// Readiness
///
/// Answers 200 when the database can be reached; needs no token.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<api::Health>, ApiError> {
    state.store().ping().await.map_err(|error| {
        tracing::warn!(%error, "not ready");
        ApiError::new(ErrorCode::Unavailable, "the database does not answer")
    })?;
    Ok(Json(api::Health {
        status: "ok".to_owned(),
    }))
}
