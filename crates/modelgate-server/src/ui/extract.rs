//! Extractors for pages: a query string, form or path that does not read is a 400 page in the layout
//! saying what did not fit, not axum's plain-text rejection.

use super::errors::UiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, UiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| {
                UiError::bad_request(format!(
                    "This address has a value the page cannot read ({}). Check the link or the \
                     filters and try again.",
                    rejection.body_text()
                ))
            })
    }
}

pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = UiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, UiError> {
        axum::extract::Form::<T>::from_request(request, state)
            .await
            .map(|axum::extract::Form(value)| Self(value))
            .map_err(|rejection| {
                UiError::bad_request(format!(
                    "The form could not be read ({}). Go back, reload the page and send it again.",
                    rejection.body_text()
                ))
            })
    }
}

pub struct PagePath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PagePath<T> {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, UiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection| {
                UiError::not_found(format!(
                    "There is no such page ({}).",
                    rejection.body_text()
                ))
            })
    }
}
