//! HTTP/1 serving: the connection loop (hyper configured here rather than through `axum::serve`, which
//! takes no configuration), the request-header limits answered in the API's error shape, and the layer
//! that gives every error response without a JSON body (the router's, the Swagger UI's, a body-limit
//! rejection) the standard `{"error": {"code", "message"}}` body.

use crate::error::{ApiError, ErrorCode};
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use std::future::Future;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// The request headers the server reads: larger or more are refused with 431 `headers_too_large`.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
pub const MAX_HEADER_COUNT: usize = 100;

/// How far hyper buffers a request's head. Heads up to this size reach the router, which refuses those
/// past [`MAX_HEADER_BYTES`] in the error shape; only a larger head is answered by hyper itself (431 with
/// an empty body, then the connection closes).
const HEAD_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// hyper refuses a request with more header fields than this by itself; the router refuses past
/// [`MAX_HEADER_COUNT`].
const HEAD_MAX_FIELDS: usize = 1_000;

/// Serves `app` on `listener` until `signal` completes, then stops accepting, lets each connection finish
/// the request it is on, and returns when all have closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    signal: impl Future<Output = ()> + Send + 'static,
) {
    // Each connection holds a receiver; `closed()` on the sender completes when the last one is gone.
    let (open_sender, open_receiver) = tokio::sync::watch::channel(());
    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
    let mut signal = std::pin::pin!(signal);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let _ = stream.set_nodelay(true);
        let service =
            app.clone()
                .map_request(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(remote));
                    request.map(axum::body::Body::new)
                });
        let service = TowerToHyperService::new(service);
        let open = open_receiver.clone();
        let mut stop = stop_receiver.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .max_buf_size(HEAD_BUFFER_BYTES)
                .max_headers(HEAD_MAX_FIELDS);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%error, "connection ended with an error");
                        }
                        break;
                    }
                    changed = stop.changed() => {
                        connection.as_mut().graceful_shutdown();
                        if changed.is_err() {
                            // The loop is gone; the connection still finishes its request.
                            let _ = connection.as_mut().await;
                            break;
                        }
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    drop(open_receiver);
    drop(stop_receiver);
    let _ = stop_sender.send(true);
    open_sender.closed().await;
}

/// Refuses requests with too many or too large headers in the error shape, and gives error responses
/// without a JSON body the standard one.
pub(crate) async fn api_error_shape(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADER_COUNT || header_bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            ErrorCode::HeadersTooLarge,
            format!(
                "the request has {} header fields of {header_bytes} bytes; the server reads at most \
                 {MAX_HEADER_COUNT} fields of {MAX_HEADER_BYTES} bytes in all",
                headers.len()
            ),
        )
        .with_details(json!({ "limit_bytes": MAX_HEADER_BYTES, "limit_fields": MAX_HEADER_COUNT }))
        .into_response();
    }
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    with_error_body(response, &path).await
}

/// An error response whose body is not JSON, rewritten with the standard body (same status, same other
/// headers); every other response as it is.
async fn with_error_body(response: Response, path: &str) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with("text/html")
        });
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty());
    let code = ErrorCode::for_status(status);
    let message = match (status, text) {
        (StatusCode::NOT_FOUND, None) => {
            format!("no such route {path}; the API is described at /api/v1/openapi.json")
        }
        // A server error's text is never shown (ApiError logs it).
        (_, Some(text)) if !status.is_server_error() => text,
        (_, text) => text.unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("the request failed")
                .to_owned()
        }),
    };
    let mut rewritten = ApiError::new(code, message).into_response();
    *rewritten.status_mut() = status;
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}
