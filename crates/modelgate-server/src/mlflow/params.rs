//! An MLflow request's parameters: the query string of a GET, the JSON body of a POST, PATCH or DELETE
//! (both read when both are given). Unknown fields are ignored, as the real server does; a wrong type or
//! a missing required field is `INVALID_PARAMETER_VALUE` naming the field.

use super::error::MlflowError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};

/// The most a parameter body may hold: registry calls carry names, tags and descriptions.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct Params(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = MlflowError;

    async fn from_request(request: Request, state: &S) -> Result<Self, MlflowError> {
        let mut fields = Map::new();
        if let Some(query) = request.uri().query() {
            for (key, value) in form_urlencoded::parse(query.as_bytes()) {
                let value = Value::String(value.into_owned());
                match fields.get_mut(key.as_ref()) {
                    // A repeated key (`stages`, `order_by`) is a list.
                    Some(Value::Array(list)) => list.push(value),
                    Some(first) => {
                        let first = first.take();
                        fields.insert(key.into_owned(), Value::Array(vec![first, value]));
                    }
                    None => {
                        fields.insert(key.into_owned(), value);
                    }
                }
            }
        }
        let body = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                MlflowError::invalid(format!(
                    "the request body is larger than {MAX_BODY_BYTES} bytes"
                ))
            })?;
        let _ = state;
        merge_body(&mut fields, &body)?;
        Ok(Self(fields))
    }
}

fn merge_body(fields: &mut Map<String, Value>, body: &Bytes) -> Result<(), MlflowError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => {
            fields.extend(object);
            Ok(())
        }
        Ok(_) => Err(MlflowError::invalid(
            "the request body must be a JSON object",
        )),
        Err(error) => Err(MlflowError::invalid(format!(
            "the request body is not valid JSON: {error}"
        ))),
    }
}

impl Params {
    /// A text field; numbers are accepted as their text (`version` may come as 3 or "3").
    pub fn text(&self, name: &str) -> Result<Option<String>, MlflowError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(Value::Number(number)) => Ok(Some(number.to_string())),
            Some(Value::Array(list)) if list.len() == 1 => match &list[0] {
                Value::String(text) => Ok(Some(text.clone())),
                _ => Err(wrong_type(name, "a string")),
            },
            Some(_) => Err(wrong_type(name, "a string")),
        }
    }

    /// A required, non-empty text field.
    pub fn required(&self, name: &str) -> Result<String, MlflowError> {
        self.text(name)?
            .filter(|text| !text.is_empty())
            .ok_or_else(|| MlflowError::missing(name))
    }

    /// A list of texts (`stages`, `order_by`): a JSON array, a repeated query key or one value.
    pub fn texts(&self, name: &str) -> Result<Vec<String>, MlflowError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(text)) => Ok(vec![text.clone()]),
            Some(Value::Array(list)) => list
                .iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text.clone()),
                    _ => Err(wrong_type(name, "a list of strings")),
                })
                .collect(),
            Some(_) => Err(wrong_type(name, "a list of strings")),
        }
    }

    /// A whole number within `1..=max`, `default` when absent.
    pub fn count(&self, name: &str, default: u64, max: u64) -> Result<u64, MlflowError> {
        let value = match self.0.get(name) {
            None | Some(Value::Null) => return Ok(default),
            Some(Value::Number(number)) => number.as_u64(),
            Some(Value::String(text)) => text.trim().parse::<u64>().ok(),
            Some(_) => None,
        };
        match value {
            Some(value) if (1..=max).contains(&value) => Ok(value),
            _ => Err(MlflowError::invalid(format!(
                "Invalid value for parameter '{name}': must be a whole number from 1 to {max}"
            ))),
        }
    }

    /// `tags`: `[{"key": …, "value": …}]`.
    pub fn tags(&self) -> Result<Vec<(String, String)>, MlflowError> {
        let Some(tags) = self.0.get("tags") else {
            return Ok(Vec::new());
        };
        let Value::Array(list) = tags else {
            return Err(wrong_type("tags", "a list of {key, value}"));
        };
        list.iter()
            .map(|tag| {
                let key = tag["key"]
                    .as_str()
                    .ok_or_else(|| wrong_type("tags.key", "a string"))?;
                let value = match &tag["value"] {
                    Value::String(text) => text.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                Ok((key.to_owned(), value))
            })
            .collect()
    }
}

fn wrong_type(name: &str, expected: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "Invalid value for parameter '{name}': expected {expected}"
    ))
}
