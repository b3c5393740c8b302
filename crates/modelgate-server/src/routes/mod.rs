//! The router: every route of the API, the OpenAPI document that describes them, and the layers that
//! give each request an id and a trace span.

pub mod artifacts;
pub mod audit;
pub mod cards;
pub mod datasets;
pub mod evaluations;
pub mod health;
pub mod models;
pub mod monitoring;
pub mod outcomes;
pub mod promotion;
pub mod tokens;
pub mod users;
pub mod versions;
pub mod webhooks;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::Router;
use axum::http::{Method, Request, Uri};
use axum::routing::{get, post, put};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "modelgate",
        description = "The model approval workflow: a registry of models and versions bound to content \
                       digests, with governed promotion and a tamper-evident audit trail. Every call but \
                       the health checks, login and this document needs `Authorization: Bearer <token>`. \
                       Errors have one shape: `{\"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    paths(
        health::healthz, health::readyz,
        users::whoami, users::create_user, users::list_users, users::get_user, users::update_user,
        tokens::login, tokens::create_token, tokens::list_tokens, tokens::revoke_token,
        models::create_model, models::list_models, models::get_model, models::update_model,
        models::set_model_tag, models::delete_model_tag, models::archive_model,
        versions::create_version, versions::list_versions, versions::get_version,
        versions::update_version, versions::set_version_tag, versions::delete_version_tag,
        versions::archive_version, versions::download_version_artifact, versions::get_version_scan,
        artifacts::upload_artifact, artifacts::download_artifact,
        audit::get_checkpoint, audit::get_public_key, audit::get_entries,
        audit::get_inclusion_proof, audit::get_consistency_proof, audit::list_audit_events,
        promotion::get_policy, promotion::apply_policy, promotion::explain_promotion,
        promotion::open_request, promotion::get_request, promotion::list_requests,
        promotion::withdraw_request, promotion::comment_request, promotion::review_request,
        promotion::suspend_version, promotion::reinstate_version, promotion::check_gate,
        promotion::get_keys, promotion::get_attestation, promotion::rollback,
        cards::get_card_schema, cards::get_card, cards::set_card, cards::list_card_revisions, cards::diff_card,
        cards::import_card, cards::export_card,
        datasets::register_dataset, datasets::get_dataset, datasets::list_datasets,
        evaluations::run_evaluation, evaluations::get_evaluation, evaluations::mark_evaluation, evaluations::list_version_evaluations,
        evaluations::get_job, evaluations::cancel_job, evaluations::list_jobs,
        webhooks::create_webhook, webhooks::list_webhooks, webhooks::list_event_types,
        webhooks::delete_webhook, webhooks::rotate_webhook_secret, webhooks::test_webhook,
        webhooks::list_deliveries,
        monitoring::push_batch, outcomes::record_outcomes, monitoring::get_monitoring, monitoring::record_kpi,
    ),
    modifiers(&BearerSecurity),
    security(("bearer" = [])),
    tags(
        (name = "models", description = "Models: named, owned, risk-tiered"),
        (name = "versions", description = "Immutable versions bound to artifact digests"),
        (name = "artifacts", description = "Content-addressed artifact bytes"),
        (name = "users", description = "Accounts and roles"),
        (name = "tokens", description = "API tokens"),
        (name = "evaluation", description = "Datasets and server-computed (verified) evaluations"),
        (name = "cards", description = "Model cards: revisions, completeness, diffs"),
        (name = "promotion", description = "Policy, promotion requests, sign-offs, the deployment gate"),
        (name = "audit", description = "The tamper-evident audit log: checkpoints, entries, proofs"),
        (name = "monitoring", description = "After deployment: production batches judged for drift, KPIs, breaches and their actions"),
        (name = "webhooks", description = "Signed CloudEvents of every change, delivered to subscribed URLs"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

struct BearerSecurity;

impl utoipa::Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub fn router(state: AppState) -> Router {
    let state_for_pages = state.clone();
    let api = Router::new()
        .route("/api/v1/whoami", get(users::whoami))
        .route("/api/v1/auth/login", post(tokens::login))
        .route(
            "/api/v1/users",
            get(users::list_users).post(users::create_user),
        )
        .route(
            "/api/v1/users/{username}",
            get(users::get_user).patch(users::update_user),
        )
        .route(
            "/api/v1/tokens",
            get(tokens::list_tokens).post(tokens::create_token),
        )
        .route("/api/v1/tokens/{id}/revoke", post(tokens::revoke_token))
        .route(
            "/api/v1/models",
            get(models::list_models).post(models::create_model),
        )
        .route(
            "/api/v1/models/{name}",
            get(models::get_model).patch(models::update_model),
        )
        .route("/api/v1/models/{name}/archive", post(models::archive_model))
        .route(
            "/api/v1/models/{name}/tags/{key}",
            put(models::set_model_tag).delete(models::delete_model_tag),
        )
        .route(
            "/api/v1/models/{name}/versions",
            get(versions::list_versions).post(versions::create_version),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}",
            get(versions::get_version).patch(versions::update_version),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/archive",
            post(versions::archive_version),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/tags/{key}",
            put(versions::set_version_tag).delete(versions::delete_version_tag),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/artifact",
            get(versions::download_version_artifact),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/scan",
            get(versions::get_version_scan),
        )
        .route("/api/v1/artifacts", post(artifacts::upload_artifact))
        .route(
            "/api/v1/artifacts/{digest}",
            get(artifacts::download_artifact),
        )
        .route("/api/v1/audit/checkpoint", get(audit::get_checkpoint))
        .route("/api/v1/audit/public-key", get(audit::get_public_key))
        .route("/api/v1/audit/entries", get(audit::get_entries))
        .route(
            "/api/v1/audit/proofs/inclusion",
            get(audit::get_inclusion_proof),
        )
        .route(
            "/api/v1/audit/proofs/consistency",
            get(audit::get_consistency_proof),
        )
        .route("/api/v1/audit/events", get(audit::list_audit_events))
        .route(
            "/api/v1/policy",
            get(promotion::get_policy).put(promotion::apply_policy),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/explain",
            get(promotion::explain_promotion),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/attestation",
            get(promotion::get_attestation),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/suspend",
            post(promotion::suspend_version),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/reinstate",
            post(promotion::reinstate_version),
        )
        .route("/api/v1/models/{name}/rollback", post(promotion::rollback))
        .route(
            "/api/v1/datasets",
            get(datasets::list_datasets).post(datasets::register_dataset),
        )
        .route("/api/v1/datasets/{name}", get(datasets::get_dataset))
        .route("/api/v1/evaluations", post(evaluations::run_evaluation))
        .route("/api/v1/evaluations/{id}", get(evaluations::get_evaluation))
        .route(
            "/api/v1/evaluations/{id}/status",
            post(evaluations::mark_evaluation),
        )
        .route("/api/v1/evaluation-jobs", get(evaluations::list_jobs))
        .route("/api/v1/evaluation-jobs/{id}", get(evaluations::get_job))
        .route(
            "/api/v1/evaluation-jobs/{id}/cancel",
            post(evaluations::cancel_job),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/evaluations",
            get(evaluations::list_version_evaluations),
        )
        .route(
            "/api/v1/schemas/model-card.json",
            get(cards::get_card_schema),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/card",
            get(cards::get_card).put(cards::set_card),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/card/revisions",
            get(cards::list_card_revisions),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/card/diff",
            get(cards::diff_card),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/card/import",
            post(cards::import_card),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/card/export",
            get(cards::export_card),
        )
        .route(
            "/api/v1/requests",
            get(promotion::list_requests).post(promotion::open_request),
        )
        .route("/api/v1/requests/{id}", get(promotion::get_request))
        .route(
            "/api/v1/requests/{id}/withdraw",
            post(promotion::withdraw_request),
        )
        .route(
            "/api/v1/requests/{id}/comments",
            post(promotion::comment_request),
        )
        .route(
            "/api/v1/requests/{id}/reviews",
            post(promotion::review_request),
        )
        .route("/api/v1/gate", get(promotion::check_gate))
        .route("/api/v1/keys", get(promotion::get_keys))
        .route(
            "/api/v1/models/{name}/versions/{version}/monitoring/batches",
            post(monitoring::push_batch),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/monitoring/outcomes",
            post(outcomes::record_outcomes),
        )
        .route(
            "/api/v1/models/{name}/monitoring",
            get(monitoring::get_monitoring),
        )
        .route("/api/v1/models/{name}/kpis", post(monitoring::record_kpi))
        .route(
            "/api/v1/webhooks",
            get(webhooks::list_webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/api/v1/webhooks/event-types",
            get(webhooks::list_event_types),
        )
        .route(
            "/api/v1/webhooks/{id}",
            axum::routing::delete(webhooks::delete_webhook),
        )
        .route(
            "/api/v1/webhooks/{id}/rotate",
            post(webhooks::rotate_webhook_secret),
        )
        .route("/api/v1/webhooks/{id}/test", post(webhooks::test_webhook))
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            get(webhooks::list_deliveries),
        )
        .merge(crate::mlflow::routes())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    let docs = utoipa_swagger_ui::SwaggerUi::new("/api/docs")
        .external_url_unchecked("/api/v1/openapi.json", crate::openapi::document());
    api.merge(docs)
        .layer(axum::middleware::from_fn(crate::http::api_error_shape))
        .merge(crate::ui::router().with_state(state_for_pages))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id,
                    )
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_unacceptable_request_id))
}

/// Removes a client's `X-Request-Id` that is too long or not printable ASCII, before the id layer runs:
/// the server then makes its own, which the audit record stores and the response echoes.
async fn drop_unacceptable_request_id<B>(mut request: Request<B>) -> Request<B> {
    let acceptable = request
        .headers()
        .get_all("x-request-id")
        .iter()
        .all(|value| value.to_str().is_ok_and(crate::auth::acceptable_request_id));
    if !acceptable || request.headers().get_all("x-request-id").iter().count() > 1 {
        request.headers_mut().remove("x-request-id");
    }
    request
}

async fn unknown_route(method: axum::http::Method, uri: Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if crate::mlflow::is_mlflow_path(uri.path()) {
        return crate::mlflow::endpoint_not_found(&method, uri.path());
    }
    if crate::ui::is_page_path(uri.path()) {
        return crate::ui::not_found_page(uri.path());
    }
    ApiError::new(
        ErrorCode::NotFound,
        format!(
            "no such route {}; the API is described at /api/v1/openapi.json",
            uri.path()
        ),
    )
    .into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if crate::mlflow::is_mlflow_path(uri.path()) {
        return crate::mlflow::endpoint_not_found(&method, uri.path());
    }
    ApiError::new(
        ErrorCode::InvalidArgument,
        format!(
            "{} does not accept {method}; see /api/v1/openapi.json",
            uri.path()
        ),
    )
    .into_response()
}
