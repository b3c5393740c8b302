//! `/admin` (admins only, checked on the server): users with their roles and whether they are active,
//! and API tokens, with the actions to deactivate or reactivate a user and to revoke a token — each
//! through the API's own handler.

use super::errors::{UiError, rendered};
use super::extract::{PageForm, PagePath};
use super::format::{self, Nav};
use super::session::Viewer;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::{tokens, users};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use modelgate_core::access::require_admin;

pub struct UserRow {
    pub username: String,
    pub printed_name: String,
    pub roles: String,
    pub active: bool,
    pub has_password: bool,
    pub is_self: bool,
}

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub username: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    nav: Nav,
    users: Vec<UserRow>,
    tokens: Vec<TokenRow>,
}

fn time_text(text: Option<&str>) -> String {
    text.and_then(|text| modelgate_core::Timestamp::parse_rfc3339(text).ok())
        .map(format::time)
        .unwrap_or_else(|| "—".to_owned())
}

pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Response, UiError> {
    state
        .authorize(
            &viewer.caller,
            "admin.view",
            "admin",
            require_admin(viewer.user()),
        )
        .await?;
    let axum::Json(listed) = users::list_users(State(state.clone()), viewer.caller.clone()).await?;
    let query = super::api_body(serde_json::json!({ "all": true }))?;
    let axum::Json(token_list) =
        tokens::list_tokens(State(state.clone()), viewer.caller.clone(), ApiQuery(query)).await?;
    let me = viewer.user().username.to_string();
    let page = AdminPage {
        nav: Nav::for_viewer(&viewer, "admin", None),
        users: listed
            .users
            .iter()
            .map(|user| UserRow {
                username: user.username.to_string(),
                printed_name: user.printed_name.clone(),
                roles: user
                    .roles
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                active: user.active,
                has_password: user.has_password,
                is_self: user.username == me,
            })
            .collect(),
        tokens: token_list
            .tokens
            .iter()
            .map(|token| TokenRow {
                id: token.id.clone(),
                name: token.name.clone(),
                username: token.username.clone(),
                created: time_text(Some(&token.created_at)),
                expires: time_text(token.expires_at.as_deref()),
                last_used: time_text(token.last_used_at.as_deref()),
                revoked: token.revoked_at.as_deref().map(|at| time_text(Some(at))),
            })
            .collect(),
    };
    Ok(rendered(&page).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct ActionForm {
    csrf_token: Option<String>,
}

fn back() -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/admin")]).into_response()
}

pub async fn revoke_token(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(id): PagePath<String>,
    headers: HeaderMap,
    PageForm(form): PageForm<ActionForm>,
) -> Result<Response, UiError> {
    viewer.check_form(&state, &headers, form.csrf_token.as_deref())?;
    let _revoked =
        tokens::revoke_token(State(state.clone()), viewer.caller.clone(), ApiPath(id)).await?;
    Ok(back())
}

async fn set_active(
    state: AppState,
    viewer: Viewer,
    username: String,
    headers: HeaderMap,
    form: ActionForm,
    active: bool,
) -> Result<Response, UiError> {
    viewer.check_form(&state, &headers, form.csrf_token.as_deref())?;
    let body = super::api_body(serde_json::json!({ "active": active }))?;
    let _updated = users::update_user(
        State(state.clone()),
        viewer.caller.clone(),
        ApiPath(username),
        ApiJson(body),
    )
    .await?;
    Ok(back())
}

pub async fn deactivate_user(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(username): PagePath<String>,
    headers: HeaderMap,
    PageForm(form): PageForm<ActionForm>,
) -> Result<Response, UiError> {
    set_active(state, viewer, username, headers, form, false).await
}

pub async fn activate_user(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(username): PagePath<String>,
    headers: HeaderMap,
    PageForm(form): PageForm<ActionForm>,
) -> Result<Response, UiError> {
    set_active(state, viewer, username, headers, form, true).await
}
