//! Authentication: API token secrets (256 random bits, stored only as a SHA-256 hash, so checking a
//! request costs one hash and one indexed lookup), argon2id passwords, and the [`Caller`] extractor that
//! every authenticated route takes.

use crate::error::ApiError;
use crate::state::AppState;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use base64::Engine;
use modelgate_core::{Principal, Timestamp};
use modelgate_store::Attribution;
use rand::RngCore;
use sha2::{Digest as _, Sha256};
use std::net::SocketAddr;

/// Every token secret starts with this, so that leaked secrets are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "mgt_";

/// A new token secret: the prefix and 32 random bytes in unpadded base64url.
pub fn new_token_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What the store keeps of a secret: its SHA-256 in hex. A fast hash is right here (unlike for
/// passwords): the secret has 256 bits of entropy, so there is nothing to brute-force.
pub fn token_secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hashes a password with argon2id and a random salt (CPU-heavy: call from a blocking task).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    if password.chars().count() < 12 {
        return Err(ApiError::invalid(
            "password",
            "password: must be at least 12 characters",
        ));
    }
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|error| ApiError::internal(&error))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| ApiError::internal(&error))
}

/// Checks a password against a stored argon2id hash.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// An argon2id hash with the parameters [`hash_password`] uses (checked by a test), of a password nobody
/// knows: checked instead when a user is unknown, deactivated or has no password, so that the answer takes
/// the same argon2 work whether or not the user exists.
pub const DUMMY_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$3ySMGnJOAuG6w3KhbhmFKw$5AGAPrP5ptNW+44kaXfnYieXcLc5QKOH97xIURJh4Nw";

/// Checks a password against the stored hash, or against [`DUMMY_PASSWORD_HASH`] when there is none (and
/// then never matches): the same work either way.
pub fn verify_password_or_dummy(password: &str, stored_hash: Option<&str>) -> bool {
    let matched = verify_password(password, stored_hash.unwrap_or(DUMMY_PASSWORD_HASH));
    matched && stored_hash.is_some()
}

/// The longest `X-Request-Id` kept from a client; longer or unprintable ones are replaced by the server's.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// Whether a client's request id may be stored and echoed: 1 to 128 printable ASCII characters.
pub fn acceptable_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_CHARS
        && id.bytes().all(|byte| (0x20..=0x7e).contains(&byte))
}

/// Where a request came from, for its audit record.
#[derive(Debug, Clone)]
pub struct RequestOrigin {
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}

impl RequestOrigin {
    pub(crate) fn from_parts(parts: &Parts) -> Self {
        Self {
            request_id: parts
                .headers
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
                .filter(|id| acceptable_request_id(id))
                .map(str::to_owned),
            client_addr: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip().to_string()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}

/// The authenticated caller of a request. Taking it as an argument is what makes a route authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub origin: RequestOrigin,
}

impl Caller {
    /// The attribution of a change this caller makes now.
    pub fn attribution(&self, at: Timestamp) -> Attribution {
        Attribution {
            actor: self.principal.actor(),
            at,
            request_id: self.origin.request_id.clone(),
            client_addr: self.origin.client_addr.clone(),
        }
    }

    pub fn user(&self) -> &modelgate_core::User {
        &self.principal.user
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|secret| !secret.is_empty());
        let origin = RequestOrigin::from_parts(parts);
        let attempted = format!("{} {}", parts.method, parts.uri.path());
        let principal = state
            .authenticate_token(secret, &origin, &attempted)
            .await?;
        Ok(Self { principal, origin })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let first = new_token_secret();
        let second = new_token_secret();
        assert_ne!(first, second);
        assert!(first.starts_with(TOKEN_PREFIX));
        assert_eq!(first.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(token_secret_hash(&first).len(), 64);
        assert_ne!(token_secret_hash(&first), token_secret_hash(&second));
    }

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a hash"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let real = hash_password("correct horse battery").unwrap();
        let real = PasswordHash::new(&real).unwrap();
        let dummy = PasswordHash::new(DUMMY_PASSWORD_HASH).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(
            dummy.params, real.params,
            "same memory, iterations, parallelism"
        );
        assert!(!verify_password_or_dummy("", None));
        assert!(!verify_password_or_dummy("anything at all", None));
    }

    #[test]
    fn request_ids_are_short_printable_ascii() {
        assert!(acceptable_request_id("req-0123_abc"));
        assert!(acceptable_request_id(&"a".repeat(128)));
        assert!(!acceptable_request_id(&"a".repeat(129)));
        assert!(!acceptable_request_id(""));
        assert!(!acceptable_request_id("line\nbreak"));
        assert!(!acceptable_request_id("caf\u{e9}"));
    }
}
