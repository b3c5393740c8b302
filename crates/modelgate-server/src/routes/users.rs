//! `/api/v1/users` and `/api/v1/whoami`: accounts and roles (administered by admins).

use crate::auth::{Caller, hash_password};
use crate::convert;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use modelgate_api as api;
use modelgate_core::access::require_admin;
use modelgate_core::{InvalidInput, NewUser, Role, Username};
use modelgate_store::UserUpdate;

pub(crate) fn parse_roles(roles: &[String]) -> Result<Vec<Role>, InvalidInput> {
    roles.iter().map(|role| Role::parse(role)).collect()
}

pub(crate) fn check_printed_name(printed_name: &str) -> Result<String, InvalidInput> {
    let trimmed = printed_name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control)
    {
        return Err(InvalidInput::new(
            "printed_name",
            "must be the user's full name, 1-200 printable characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Hashes a password off the async threads (argon2id takes tens of milliseconds by design).
pub(crate) async fn hash_password_blocking(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|error| ApiError::internal(&error))?
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = api::CreateUserRequest,
    responses((status = 201, body = api::User), (status = 403, body = api::ErrorBody), (status = 409, body = api::ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::CreateUserRequest>,
) -> Result<(StatusCode, Json<api::User>), ApiError> {
    let target = format!("user/{}", request.username);
    state
        .authorize(
            &caller,
            "user.create",
            &target,
            require_admin(caller.user()),
        )
        .await?;
    let password_hash = match request.password {
        Some(password) => Some(hash_password_blocking(password).await?),
        None => None,
    };
    let new_user = NewUser {
        username: Username::parse(&request.username)?,
        printed_name: check_printed_name(&request.printed_name)?,
        email: request.email,
        roles: parse_roles(&request.roles)?,
        password_hash,
    };
    let user = state
        .store()
        .create_user(&caller.attribution(state.now()), &new_user)
        .await?;
    Ok((StatusCode::CREATED, Json(convert::user(&user))))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = api::UserList)))]
pub async fn list_users(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<api::UserList>, ApiError> {
    let users = state.store().list_users().await?;
    Ok(Json(api::UserList {
        users: users.iter().map(convert::user).collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, description = "Username")),
    responses((status = 200, body = api::User), (status = 404, body = api::ErrorBody)))]
pub async fn get_user(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(username): ApiPath<String>,
) -> Result<Json<api::User>, ApiError> {
    let user = state.store().get_user(&Username::parse(&username)?).await?;
    Ok(Json(convert::user(&user)))
}

#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, description = "Username")),
    request_body = api::UpdateUserRequest,
    responses((status = 200, body = api::User), (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(username): ApiPath<String>,
    ApiJson(request): ApiJson<api::UpdateUserRequest>,
) -> Result<Json<api::User>, ApiError> {
    let username = Username::parse(&username)?;
    let changes_only_own_password = username == caller.user().username
        && request.password.is_some()
        && request.printed_name.is_none()
        && request.email.is_none()
        && request.roles.is_none()
        && request.active.is_none();
    if !changes_only_own_password {
        let target = format!("user/{username}");
        state
            .authorize(
                &caller,
                "user.update",
                &target,
                require_admin(caller.user()),
            )
            .await?;
    }
    let password_hash = match request.password {
        Some(password) => Some(hash_password_blocking(password).await?),
        None => None,
    };
    let update = UserUpdate {
        printed_name: request
            .printed_name
            .as_deref()
            .map(check_printed_name)
            .transpose()?,
        email: request.email.map(Some),
        roles: request.roles.as_deref().map(parse_roles).transpose()?,
        active: request.active,
        password_hash,
    };
    let user = state
        .store()
        .update_user(&caller.attribution(state.now()), &username, &update)
        .await?;
    Ok(Json(convert::user(&user)))
}

#[utoipa::path(get, path = "/api/v1/whoami", tag = "users", responses((status = 200, body = api::WhoAmI)))]
pub async fn whoami(caller: Caller) -> Json<api::WhoAmI> {
    Json(api::WhoAmI {
        user: convert::user(caller.user()),
        token_id: caller.principal.token_id.clone(),
    })
}
