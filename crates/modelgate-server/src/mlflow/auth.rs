//! Who calls the MLflow routes: `Authorization: Bearer <modelgate token>` (`MLFLOW_TRACKING_TOKEN`) or
//! Basic with a username and a modelgate token as the password (`MLFLOW_TRACKING_USERNAME` and
//! `MLFLOW_TRACKING_PASSWORD`). The token is checked as on `/api/v1`; a refusal is MLflow's
//! `UNAUTHENTICATED`.

use super::error::{MlflowError, UNAUTHENTICATED};
use crate::auth::{Caller, RequestOrigin};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;

/// The caller of an MLflow route; a [`Caller`] like any other.
pub struct MlflowCaller(pub Caller);

/// The token (and, for Basic, the username it must belong to) an `Authorization` header carries.
fn credentials(header: &str) -> Option<(String, Option<String>)> {
    if let Some(secret) = header.strip_prefix("Bearer ") {
        let secret = secret.trim();
        return (!secret.is_empty()).then(|| (secret.to_owned(), None));
    }
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, secret) = decoded.split_once(':')?;
    (!secret.is_empty()).then(|| (secret.to_owned(), Some(username.to_owned())))
}

impl FromRequestParts<AppState> for MlflowCaller {
    type Rejection = MlflowError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, MlflowError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        let given = header.and_then(credentials);
        let origin = RequestOrigin::from_parts(parts);
        let attempted = format!("{} {}", parts.method, parts.uri.path());
        let principal = state
            .authenticate_token(
                given.as_ref().map(|(secret, _)| secret.as_str()),
                &origin,
                &attempted,
            )
            .await
            .map_err(|error| MlflowError::new(UNAUTHENTICATED, error.message))?;
        if let Some((_, Some(username))) = &given
            && username != principal.user.username.as_str()
        {
            return Err(MlflowError::new(
                UNAUTHENTICATED,
                "the token given as the password belongs to another user than the username given",
            ));
        }
        Ok(Self(Caller { principal, origin }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_credentials_are_read() {
        assert_eq!(
            credentials("Bearer mg_abc"),
            Some(("mg_abc".to_owned(), None))
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:mg_abc");
        assert_eq!(
            credentials(&format!("Basic {basic}")),
            Some(("mg_abc".to_owned(), Some("alice".to_owned())))
        );
        let empty = base64::engine::general_purpose::STANDARD.encode("alice:");
        assert_eq!(credentials(&format!("Basic {empty}")), None);
        assert_eq!(credentials("Basic !!!"), None);
        assert_eq!(credentials("Bearer "), None);
        assert_eq!(credentials("Digest x"), None);
    }
}
