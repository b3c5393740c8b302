//! Static assets, embedded in the binary and served under content-hashed names, so that a page always
//! gets the stylesheet it was rendered with and browsers may cache them for ever.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

const STYLESHEET: &str = include_str!("../../assets/app.css");

/// `app-<first 12 hex of SHA-256>.css`.
static STYLESHEET_NAME: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(STYLESHEET.as_bytes());
    format!("app-{}.css", &hex::encode(digest)[..12])
});

/// The path pages link the stylesheet with.
pub fn stylesheet_href() -> String {
    format!("/static/{}", *STYLESHEET_NAME)
}

pub async fn serve(Path(file): Path<String>) -> Response {
    if file != *STYLESHEET_NAME {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    }
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}
