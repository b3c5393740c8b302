//! `/login` and `/logout`: signing in with a username and password (the same accounts and the same
//! lock-out as the API's login and signatures) makes a session; signing out revokes it.

use super::errors::{UiError, rendered};
use super::extract::{PageForm, PageQuery};
use super::format::Nav;
use super::session::{self, Viewer};
use crate::auth::{RequestOrigin, token_secret_hash};
use crate::state::{AppState, PasswordCheck};
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use modelgate_core::{Actor, Username};
use modelgate_store::Attribution;

#[derive(Debug, Default, serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Nav,
    csrf_token: String,
    next: String,
    username: String,
    notice: Option<String>,
    error: Option<String>,
}

/// The sign-in form, with a fresh CSRF token in a cookie scoped to `/login` and in the form.
fn login_page(
    state: &AppState,
    status: StatusCode,
    next: String,
    username: String,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let token = session::new_secret();
    let page = LoginPage {
        nav: Nav::signed_out(),
        csrf_token: token.clone(),
        next,
        username,
        notice,
        error,
    };
    (
        status,
        [(
            header::SET_COOKIE,
            state.session_settings().login_csrf_cookie(&token),
        )],
        rendered(&page),
    )
        .into_response()
}

pub async fn form(
    State(state): State<AppState>,
    PageQuery(query): PageQuery<LoginQuery>,
) -> Response {
    let notice = query
        .expired
        .is_some()
        .then(|| "Your session has ended. Sign in again to go on where you were.".to_owned());
    login_page(
        &state,
        StatusCode::OK,
        session::safe_next(query.next.as_deref()),
        String::new(),
        notice,
        None,
    )
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, UiError> {
    state.session_settings().check_origin(&headers)?;
    let next = session::safe_next(form.next.as_deref());
    if !session::check_login_csrf(&headers, &form.csrf_token) {
        return Ok(login_page(
            &state,
            StatusCode::FORBIDDEN,
            next,
            form.username,
            None,
            Some("The sign-in form had expired. It has been renewed: sign in again.".to_owned()),
        ));
    }
    let anonymous = Attribution {
        actor: Actor::Anonymous,
        at: state.now(),
        request_id: origin.request_id.clone(),
        client_addr: origin.client_addr.clone(),
    };
    let refused_message = "Unknown user, wrong password, or deactivated user.";
    let Ok(username) = Username::parse(form.username.trim()) else {
        let error = crate::error::ApiError::unauthenticated(refused_message);
        state
            .refuse_aggregated(anonymous, "auth.refused", "POST /login", error)
            .await;
        return Ok(login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            next,
            form.username,
            None,
            Some(refused_message.to_owned()),
        ));
    };
    let target = format!("user/{username}");
    let problem = match state.check_password(&username, &form.password).await? {
        PasswordCheck::Matched => None,
        PasswordCheck::Mismatched => Some((
            StatusCode::UNAUTHORIZED,
            crate::error::ApiError::unauthenticated(refused_message),
        )),
        PasswordCheck::Locked { until } => Some((
            StatusCode::TOO_MANY_REQUESTS,
            PasswordCheck::locked_error(&username, until),
        )),
    };
    if let Some((status, error)) = problem {
        let message = if status == StatusCode::TOO_MANY_REQUESTS {
            format!(
                "Too many wrong passwords: {}",
                error
                    .message
                    .trim_start_matches("too many wrong passwords ")
            )
        } else {
            refused_message.to_owned()
        };
        state
            .refuse_aggregated(anonymous, "auth.refused", &target, error)
            .await;
        return Ok(login_page(
            &state,
            status,
            next,
            username.to_string(),
            None,
            Some(message),
        ));
    }
    let user = state.store().get_user(&username).await?;
    let attribution = Attribution {
        actor: Actor::User {
            user_id: user.id,
            username: user.username.clone(),
            token_id: None,
        },
        at: state.now(),
        request_id: origin.request_id,
        client_addr: origin.client_addr,
    };
    let secret = session::new_secret();
    let settings = state.session_settings();
    state
        .store()
        .create_session(
            &attribution,
            &user,
            &token_secret_hash(&secret),
            session::expiry_of_new_session(settings, attribution.at),
        )
        .await?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, next),
            (header::SET_COOKIE, settings.session_cookie(&secret)),
        ],
    )
        .into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct CsrfOnly {
    csrf_token: Option<String>,
}

pub async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfOnly>,
) -> Result<Response, UiError> {
    viewer.check_form(&state, &headers, form.csrf_token.as_deref())?;
    state
        .store()
        .revoke_session(
            &viewer.caller.attribution(state.now()),
            &viewer.session.public_id,
            viewer.user().username.as_str(),
        )
        .await?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".to_owned()),
            (
                header::SET_COOKIE,
                state.session_settings().cleared_session_cookie(),
            ),
        ],
    )
        .into_response())
}
