//! Every failure of a page becomes a page in the layout that says what happened and what to do; a page
//! that needs signing in redirects to `/login` and comes back afterwards.

use super::format::Nav;
use crate::error::{ApiError, ErrorCode};
use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use modelgate_store::StoreError;

#[derive(Debug)]
pub enum UiError {
    /// No usable session: sign in, then return to `next`.
    SignIn { next: String, expired: bool },
    /// A page explaining a refusal or failure.
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
}

impl UiError {
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::Page {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::Page {
            status: StatusCode::BAD_REQUEST,
            title: "Cannot read that",
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Page {
            status: StatusCode::FORBIDDEN,
            title: "Not allowed",
            message: message.into(),
        }
    }

    pub fn csrf() -> Self {
        Self::Page {
            status: StatusCode::FORBIDDEN,
            title: "Form expired",
            message: "This form's security token is missing or does not belong to your session (it may \
                      come from an older sign-in or another site). Go back, reload the page and send it \
                      again."
                .to_owned(),
        }
    }

    pub fn into_response_page(self) -> Response {
        self.into_response()
    }
}

impl From<ApiError> for UiError {
    fn from(error: ApiError) -> Self {
        let (_, status) = error.code.describe();
        let title = match error.code {
            ErrorCode::NotFound => "Not found",
            ErrorCode::PermissionDenied | ErrorCode::Unauthenticated => "Not allowed",
            ErrorCode::Conflict | ErrorCode::FailedPrecondition | ErrorCode::AlreadyExists => {
                "Changed meanwhile"
            }
            ErrorCode::RateLimited => "Too many attempts",
            ErrorCode::Internal | ErrorCode::Unavailable => "Something went wrong",
            _ => "Cannot do that",
        };
        Self::Page {
            status,
            title,
            message: error.message,
        }
    }
}

impl From<StoreError> for UiError {
    fn from(error: StoreError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<modelgate_core::InvalidInput> for UiError {
    fn from(error: modelgate_core::InvalidInput) -> Self {
        ApiError::from(error).into()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: Nav,
    title: &'static str,
    status: u16,
    message: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn { next, expired } => {
                let mut location = format!("/login?next={}", super::format::url_encode(&next));
                if expired {
                    location.push_str("&expired=1");
                }
                (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
            }
            Self::Page {
                status,
                title,
                message,
            } => {
                let page = ErrorPage {
                    nav: Nav::links_only(),
                    title,
                    status: status.as_u16(),
                    message,
                };
                (status, super::format::render(&page)).into_response()
            }
        }
    }
}

/// The rendered page, or a plain 500 when a template fails (it cannot, short of a bug).
pub fn rendered(page: &impl Template) -> Html<String> {
    super::format::render(page)
}
