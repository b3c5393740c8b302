//! The reviewer web UI: server-rendered pages under `/`, beside the API under `/api/`. One module per
//! page, templates in `templates/` (askama: compiled and type-checked with the crate, escaping HTML by
//! default), errors as pages (`errors.rs`), sessions in the database (`session.rs`), a CSRF token in every
//! state-changing form. Pages call the same store methods, core rules and API handlers as the API; a page
//! never decides who may do what.

mod admin;
mod assets;
mod audit;
mod errors;
mod extract;
mod format;
mod inbox;
mod login;
mod models;
mod policy;
mod request;
pub mod session;
mod svg;

pub use audit::LogCheck;
pub use session::SessionSettings;

use crate::state::AppState;
use axum::Router;
use axum::http::HeaderValue;
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};

/// Every page's routes. Merged into the server's router beside the API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(inbox::page))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/models", get(models::list))
        .route("/models/{name}", get(models::model))
        .route("/models/{name}/versions/{number}", get(models::version))
        .route(
            "/models/{name}/versions/{number}/requests",
            post(models::open_request),
        )
        .route(
            "/models/{name}/versions/{number}/attestation",
            get(models::attestation),
        )
        .route("/requests/{id}", get(request::page))
        .route("/requests/{id}/comments", post(request::comment))
        .route("/requests/{id}/review", post(request::review))
        .route("/requests/{id}/withdraw", post(request::withdraw))
        .route("/audit", get(audit::page))
        .route("/audit/export/entries.jsonl", get(audit::export_entries))
        .route("/audit/export/checkpoint", get(audit::export_checkpoint))
        .route("/audit/export/public-key", get(audit::export_public_key))
        .route("/policy", get(policy::page))
        .route("/admin", get(admin::page))
        .route("/admin/tokens/{id}/revoke", post(admin::revoke_token))
        .route(
            "/admin/users/{username}/deactivate",
            post(admin::deactivate_user),
        )
        .route(
            "/admin/users/{username}/activate",
            post(admin::activate_user),
        )
        .route("/static/{file}", get(assets::serve))
        .layer(axum::middleware::map_response(security_headers))
}

/// The content security policy of every page: no script at all (every action is a plain form), styles
/// only from our own stylesheet, forms only to ourselves, never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Builds an API request body (or query) from form values through its JSON form, so a page sends exactly
/// what an API client would and a bad value is refused by the same rules, naming the field.
fn api_body<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, crate::error::ApiError> {
    serde_json::from_value(value)
        .map_err(|error| crate::error::ApiError::invalid("form", format!("form: {error}")))
}

/// Whether a path belongs to the web UI (an unknown one gets an HTML 404 page, not the API's JSON).
pub fn is_page_path(path: &str) -> bool {
    !(path.starts_with("/api/") || path == "/api" || path == "/healthz" || path == "/readyz")
}

/// The 404 page for a path no route matches.
pub fn not_found_page(path: &str) -> Response {
    errors::UiError::not_found(format!("There is no page at {path}.")).into_response_page()
}
