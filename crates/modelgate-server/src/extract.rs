//! Extractors whose rejections use the API's error shape (axum's own answer in plain text otherwise).

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body; malformed JSON is a 400 `invalid_argument` naming the problem, and a value that does not
/// fit its field names the field (`details.field`, a path such as `schema.task`).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) =
            axum::Json::<serde_json::Value>::from_request(request, state).await?;
        from_json_value(value).map(Self)
    }
}

/// A JSON body read by hand (an optional body, or one read under a limit of its own), with the errors of
/// [`ApiJson`].
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = serde_json::from_slice(bytes)
        .map_err(|error| ApiError::invalid("body", format!("malformed JSON body: {error}")))?;
    from_json_value(value)
}

fn from_json_value<T: DeserializeOwned>(mut value: serde_json::Value) -> Result<T, ApiError> {
    whole_numbers_as_integers(&mut value);
    serde_path_to_error::deserialize(value)
        .map_err(|error| field_error(error, "body", "malformed JSON body"))
}

/// A deserialisation error as `invalid_argument`: the field's path and serde's words (for an enum, the
/// values it takes), or `whole` when no one field is to blame (not JSON, a field missing).
fn field_error<E: std::fmt::Display>(
    error: serde_path_to_error::Error<E>,
    whole: &str,
    malformed: &str,
) -> ApiError {
    let path = error.path().to_string();
    if path == "." {
        ApiError::invalid(whole, format!("{malformed}: {}", error.inner()))
    } else {
        ApiError::invalid(&path, format!("{path}: {}", error.inner()))
    }
}

/// JSON (and JSON Schema, which the API document is written in) count `2.0` as the integer 2; serde does
/// not, so a client that writes integers as floats would be refused for a reason the document does not
/// state. Whole numbers within `i64` become integers before the body is read.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) if !number.is_i64() && !number.is_u64() => {
            if let Some(float) = number.as_f64()
                && float.fract() == 0.0
                && float.abs() < 9.0e15
            {
                *value = serde_json::Value::from(float as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(fields) => {
            fields.values_mut().for_each(whole_numbers_as_integers)
        }
        _ => {}
    }
}

/// A query string; malformed ones are a 400 `invalid_argument`, naming the parameter when one does not
/// fit (`details.field`; for an enum the message lists the values it takes).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        from_query(parts.uri.query().unwrap_or_default()).map(Self)
    }
}

fn from_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer)
        .map_err(|error| field_error(error, "query", "malformed query string"))
}

/// Path parameters; malformed ones are a 400 `invalid_argument`.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelgate_api as api;

    #[test]
    fn a_value_that_does_not_fit_names_its_field_and_what_fits() {
        let cases: [(&[u8], &str, &[&str]); 4] = [
            (
                br#"{"decision": "approved", "role": "validator"}"#,
                "decision",
                &["`approve`", "`reject`", "`request_changes`", "`approved`"],
            ),
            (
                br#"{"decision": "approve", "role": 3}"#,
                "role",
                &["string"],
            ),
            (br#"{"role": "validator"}"#, "body", &["decision"]),
            (br#"{"decision": "#, "body", &["malformed JSON body"]),
        ];
        for (body, field, words) in cases {
            let error = json_body::<api::SubmitReview>(body).unwrap_err();
            assert_eq!(error.details, Some(serde_json::json!({ "field": field })));
            for word in words {
                assert!(error.message.contains(word), "{}", error.message);
            }
        }
        let nested =
            br#"{"name": "d", "digest": "sha256:00", "schema": {"label": "y", "task": "ranking"}}"#;
        let error = json_body::<api::RegisterDataset>(nested).unwrap_err();
        assert_eq!(
            error.details,
            Some(serde_json::json!({ "field": "schema.task" }))
        );
        assert!(error.message.contains("`multiclass`"), "{}", error.message);
    }

    #[test]
    fn a_query_parameter_that_does_not_fit_is_named() {
        let error = from_query::<api::ListRequestsQuery>("state=closed&mine=true").unwrap_err();
        assert_eq!(error.details, Some(serde_json::json!({ "field": "state" })));
        assert!(error.message.starts_with("state: "), "{}", error.message);
        assert!(error.message.contains("`withdrawn`"), "{}", error.message);
        let query: api::ListRequestsQuery = from_query("state=open").unwrap();
        assert_eq!(query.state, Some(api::RequestState::Open));
        let error = from_query::<api::ListRequestsQuery>("limit=many").unwrap_err();
        assert_eq!(error.details, Some(serde_json::json!({ "field": "limit" })));
    }
}
