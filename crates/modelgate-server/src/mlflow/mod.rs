//! MLflow's Model Registry REST API (`/api/2.0/mlflow/…` and its `/ajax-api/2.0/mlflow/…` alias), so an
//! unmodified MLflow client registers and reads models in modelgate. Every call that changes state calls
//! its `/api/v1` twin's handler: the same store change, audit event and authorisation. Only the wire
//! differs: MLflow's field names, string versions, millisecond timestamps and `{error_code, message}`
//! errors (`docs/mlflow-wire.md`).

pub mod auth;
pub mod error;
pub mod filter;
mod params;
mod registered_models;
mod versions;
mod wire;

use crate::state::AppState;
use axum::Router;
use axum::routing::{delete, get, patch, post};
use modelgate_core::RiskTier;

/// How MLflow's registry maps onto modelgate.
#[derive(Debug, Clone)]
pub struct MlflowSettings {
    /// The tier of a registered model created without the `modelgate.risk_tier` tag: unknown risk is
    /// not low risk.
    pub default_risk_tier: RiskTier,
}

impl Default for MlflowSettings {
    fn default() -> Self {
        Self {
            default_risk_tier: RiskTier::High,
        }
    }
}

/// The tag that names a registered model's risk tier at creation.
pub const RISK_TIER_TAG: &str = "modelgate.risk_tier";

/// The paths MLflow's clients call under.
const PREFIXES: [&str; 2] = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"];

/// Whether a path is under MLflow's prefixes: an unknown one there answers `ENDPOINT_NOT_FOUND` in
/// MLflow's shape.
pub fn is_mlflow_path(path: &str) -> bool {
    PREFIXES
        .iter()
        .any(|prefix| path.starts_with(&format!("{prefix}/")))
}

pub fn endpoint_not_found(method: &axum::http::Method, path: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    error::MlflowError::new(
        error::ENDPOINT_NOT_FOUND,
        format!("No API endpoint {method} {path} in this server's MLflow registry"),
    )
    .into_response()
}

pub fn routes() -> Router<AppState> {
    use registered_models as models;
    let mut router = Router::new();
    for prefix in PREFIXES {
        let path = |rest: &str| format!("{prefix}/{rest}");
        router = router
            .route(&path("registered-models/create"), post(models::create))
            .route(&path("registered-models/get"), get(models::get))
            .route(&path("registered-models/update"), patch(models::update))
            .route(&path("registered-models/delete"), delete(models::delete))
            .route(&path("registered-models/search"), get(models::search))
            .route(
                &path("registered-models/get-latest-versions"),
                post(models::latest_versions).get(models::latest_versions),
            )
            .route(&path("registered-models/set-tag"), post(models::set_tag))
            .route(
                &path("registered-models/delete-tag"),
                delete(models::delete_tag),
            )
            .route(
                &path("registered-models/alias"),
                post(versions::set_alias)
                    .delete(versions::delete_alias)
                    .get(versions::get_by_alias),
            )
            .route(&path("model-versions/get"), get(models::get_version))
            .route(&path("model-versions/update"), patch(versions::update))
            .route(&path("model-versions/delete"), delete(versions::delete))
            .route(&path("model-versions/set-tag"), post(versions::set_tag))
            .route(
                &path("model-versions/delete-tag"),
                delete(versions::delete_tag),
            )
            .route(
                &path("model-versions/transition-stage"),
                post(versions::transition_stage),
            )
            .route(&path("model-versions/search"), get(models::search_versions));
    }
    router
}
