//! Browser sessions: a random 256-bit secret in the `modelgate_session` cookie (HttpOnly, SameSite=Strict,
//! Path=/, Secure behind an https public URL), stored only as its SHA-256 in the database so replicas
//! share sessions; an idle expiry and an absolute one; sign-out revokes. Session cookies authorise pages
//! only — the API reads bearer tokens and never cookies.
//!
//! CSRF: every state-changing form carries a token derived from the session's secret (SHA-256 of a
//! domain-separated copy, so the page never shows the secret and a database copy cannot forge it), and
//! the `Origin` header, when the browser sends one, must be this server's.

use super::errors::UiError;
use crate::auth::{Caller, RequestOrigin, token_secret_hash};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use modelgate_core::{SessionRecord, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The session cookie's name (a contract: scripts rely on it).
pub const SESSION_COOKIE: &str = "modelgate_session";
/// The cookie that carries the sign-in form's CSRF token before there is a session.
pub const LOGIN_CSRF_COOKIE: &str = "modelgate_login_csrf";

/// How often at most a session's last-seen time is written: a page view must not be a write each time.
const TOUCH_INTERVAL_MILLIS: i64 = 60_000;

/// How long sessions last, and the server's public address (for `Secure` cookies and the `Origin` check).
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// A session unused this long ends.
    pub idle: std::time::Duration,
    /// A session ends this long after sign-in, however active.
    pub lifetime: std::time::Duration,
    /// `https://reviews.example.com` when the server is reached through a proxy; the `Host` header's
    /// origin otherwise.
    pub public_url: Option<String>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle: std::time::Duration::from_secs(30 * 60),
            lifetime: std::time::Duration::from_secs(12 * 3600),
            public_url: None,
        }
    }
}

impl SessionSettings {
    pub fn idle_millis(&self) -> i64 {
        i64::try_from(self.idle.as_millis()).unwrap_or(i64::MAX)
    }

    pub fn lifetime_millis(&self) -> i64 {
        i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX)
    }

    fn secure(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }

    /// The origin (`scheme://host[:port]`) forms must come from.
    fn expected_origin(&self, headers: &HeaderMap) -> Option<String> {
        match &self.public_url {
            Some(url) => Some(origin_of(url)),
            None => headers
                .get(axum::http::header::HOST)
                .and_then(|host| host.to_str().ok())
                .map(|host| origin_of(&format!("http://{host}"))),
        }
    }

    /// `Set-Cookie` for a new session.
    pub fn session_cookie(&self, secret: &str) -> String {
        format!(
            "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.lifetime.as_secs(),
            if self.secure() { "; Secure" } else { "" }
        )
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn cleared_session_cookie(&self) -> String {
        format!(
            "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if self.secure() { "; Secure" } else { "" }
        )
    }

    /// `Set-Cookie` for the sign-in form's CSRF token.
    pub fn login_csrf_cookie(&self, token: &str) -> String {
        format!(
            "{LOGIN_CSRF_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{}",
            if self.secure() { "; Secure" } else { "" }
        )
    }

    /// Refuses a form posted from another site: the browser's `Origin`, when sent, must be ours.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), UiError> {
        let Some(origin) = headers
            .get(axum::http::header::ORIGIN)
            .and_then(|value| value.to_str().ok())
        else {
            return Ok(());
        };
        if Some(origin_of(origin)) == self.expected_origin(headers) {
            Ok(())
        } else {
            Err(UiError::forbidden(format!(
                "This form was sent from {origin}, not from this server's own pages, so it was refused."
            )))
        }
    }
}

/// The origin of a URL as browsers serialise it: lower-case scheme and host, the default port dropped,
/// no path (`HTTPS://Reviews.Example.com:443/x` → `https://reviews.example.com`).
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    let authority = authority
        .strip_suffix(default_port)
        .filter(|_| !default_port.is_empty())
        .unwrap_or(&authority);
    format!("{scheme}://{authority}")
}

/// A new random 256-bit secret, URL-safe base64.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The CSRF token of the session whose secret this is.
fn csrf_token_for(secret: &str) -> String {
    hex::encode(Sha256::digest(format!("modelgate-csrf-v1\0{secret}")))
}

/// Compares two secrets without stopping at the first differing byte.
fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// A cookie's value from the `Cookie` headers. Parsed by hand: the syntax we accept is our own cookies'
/// (`name=value` pairs separated by `;`), and a cookie-jar crate would bring signing and encryption we
/// do not use.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Checks the sign-in form's CSRF token against its cookie.
pub fn check_login_csrf(headers: &HeaderMap, given: &str) -> bool {
    cookie(headers, LOGIN_CSRF_COOKIE).is_some_and(|expected| same_secret(given, expected))
}

/// The signed-in person viewing a page, from their session cookie. Taking it as an argument is what makes
/// a page need signing in; a page without a usable session redirects to `/login` and returns afterwards.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub caller: Caller,
    pub session: SessionRecord,
    csrf: String,
}

impl Viewer {
    /// The token every state-changing form of this session carries.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// Refuses a state-changing form whose CSRF token is missing or wrong, or that came from another
    /// site.
    pub fn check_form(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        given: Option<&str>,
    ) -> Result<(), UiError> {
        state.session_settings().check_origin(headers)?;
        match given {
            Some(given) if same_secret(given, &self.csrf) => Ok(()),
            _ => Err(UiError::csrf()),
        }
    }

    pub fn user(&self) -> &modelgate_core::User {
        self.caller.user()
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        let return_to = return_path(parts);
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(UiError::SignIn {
                next: return_to,
                expired: false,
            });
        };
        let now = state.now();
        let settings = state.session_settings();
        let found = state
            .store()
            .find_session(&token_secret_hash(secret))
            .await?;
        let Some((session, principal)) = found.filter(|(session, principal)| {
            principal.user.active && session.is_usable_at(now, settings.idle_millis())
        }) else {
            return Err(UiError::SignIn {
                next: return_to,
                expired: true,
            });
        };
        // Written at most once a minute, and at least four times per idle period however short it is.
        let touch_interval = TOUCH_INTERVAL_MILLIS.min(settings.idle_millis() / 4);
        if now.unix_millis() - session.last_seen_at.unix_millis() >= touch_interval {
            state.store().touch_session(&session.public_id, now).await?;
        }
        Ok(Self {
            caller: Caller {
                principal,
                origin: RequestOrigin::from_parts(parts),
            },
            csrf: csrf_token_for(secret),
            session,
        })
    }
}

/// Where to return after signing in: the page asked for; for a form post, the page it was posted from
/// (a form's action is not a page).
fn return_path(parts: &Parts) -> String {
    if parts.method == axum::http::Method::GET {
        return parts
            .uri
            .path_and_query()
            .map(|path| path.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
    }
    parts
        .headers
        .get(axum::http::header::REFERER)
        .and_then(|value| value.to_str().ok())
        .and_then(|referer| referer.split_once("://"))
        .and_then(|(_, rest)| rest.find('/').map(|slash| rest[slash..].to_owned()))
        .unwrap_or_else(|| "/".to_owned())
}

/// A local path to go to after signing in: only paths of this server (`/…`, never `//host`), so the
/// sign-in page cannot be used to send someone elsewhere.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        // No control characters or whitespace anywhere (a tab in `/\t/evil` is dropped by browsers,
        // making it `//evil`; a line break would break the header), and no backslash (read as `/`).
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/login")
                && !path
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
                && path.len() <= 2048 =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// When a new session must end at the latest.
pub fn expiry_of_new_session(settings: &SessionSettings, now: Timestamp) -> Timestamp {
    Timestamp::from_unix_millis(now.unix_millis().saturating_add(settings.lifetime_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(safe_next(Some("/requests/4")), "/requests/4");
        assert_eq!(safe_next(Some("/models?tier=high")), "/models?tier=high");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/login?next=/x")), "/");
        assert_eq!(safe_next(None), "/");
        for hostile in [
            "/\t/evil.example",
            "/a\nb",
            "/a\rb",
            "/\u{0}x",
            "/x\\evil",
            "/ /evil",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "other=1; modelgate_session_x=2; modelgate_session=abc"
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn csrf_tokens_are_per_session_and_hide_the_secret() {
        let first = new_secret();
        let second = new_secret();
        assert_eq!(first.len(), 43, "256 bits in base64");
        assert_ne!(csrf_token_for(&first), csrf_token_for(&second));
        assert!(!csrf_token_for(&first).contains(&first));
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn the_origin_must_be_ours_when_sent() {
        let settings = SessionSettings::default();
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(
            settings.check_origin(&headers).is_ok(),
            "no Origin: a non-browser client"
        );
        headers.insert(
            axum::http::header::ORIGIN,
            "http://127.0.0.1:8080".parse().unwrap(),
        );
        assert!(settings.check_origin(&headers).is_ok());
        headers.insert(
            axum::http::header::ORIGIN,
            "http://evil.example".parse().unwrap(),
        );
        assert!(settings.check_origin(&headers).is_err());
        let behind_proxy = SessionSettings {
            public_url: Some("https://reviews.example.com/base".to_owned()),
            ..SessionSettings::default()
        };
        headers.insert(
            axum::http::header::ORIGIN,
            "https://reviews.example.com".parse().unwrap(),
        );
        assert!(behind_proxy.check_origin(&headers).is_ok());
        let spelled_oddly = SessionSettings {
            public_url: Some("https://Reviews.Example.com:443/".to_owned()),
            ..SessionSettings::default()
        };
        assert!(
            spelled_oddly.check_origin(&headers).is_ok(),
            "the origin browsers send"
        );
        assert_eq!(origin_of("http://127.0.0.1:80"), "http://127.0.0.1");
        assert_eq!(
            origin_of("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080"
        );
        assert!(behind_proxy.session_cookie("s").ends_with("; Secure"));
        assert!(!settings.session_cookie("s").contains("Secure"));
    }
}
