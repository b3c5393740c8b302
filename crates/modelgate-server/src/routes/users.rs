//! `/api/v1/users` and `/api/v1/whoami`: accounts and roles (administered by admins).

use crate::auth::{Caller, hash_password};
use crate::convert;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiJson, ApiPath};
use crate::state::{AppState, PasswordCheck};
use crate::text::{self, check_optional_length, check_printed_name};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use modelgate_api as api;
use modelgate_core::access::{may_change_roles_of, require_admin};
use modelgate_core::{InvalidInput, NewUser, Role, Username};
use modelgate_store::{PasswordChange, UserUpdate};
use serde_json::json;

pub(crate) fn parse_roles(roles: &[String]) -> Result<Vec<Role>, InvalidInput> {
    roles.iter().map(|role| Role::parse(role)).collect()
}

/// The requested roles, each one the policy in force declares (or `admin`, which every policy knows); a
/// misspelt role is refused, naming the roles there are.
async fn declared_roles(state: &AppState, roles: &[String]) -> Result<Vec<Role>, ApiError> {
    let parsed = parse_roles(roles)?;
    let in_force = crate::promotion::policy_in_force(state).await?;
    let unknown: Vec<String> = parsed
        .iter()
        .filter(|role| role.to_string() != "admin" && !in_force.policy.roles.contains(*role))
        .map(ToString::to_string)
        .collect();
    if unknown.is_empty() {
        return Ok(parsed);
    }
    let known: Vec<String> = std::iter::once("admin".to_owned())
        .chain(in_force.policy.roles.iter().map(ToString::to_string))
        .collect();
    Err(ApiError::new(
        ErrorCode::InvalidArgument,
        format!(
            "the policy in force declares no role {}; the roles are {} (add a role to the policy's `roles` to use it)",
            unknown.join(", "),
            known.join(", ")
        ),
    )
    .with_details(json!({ "field": "roles", "unknown": unknown, "known": known })))
}

/// Hashes a password off the async threads (argon2id takes tens of milliseconds by design).
pub(crate) async fn hash_password_blocking(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|error| ApiError::internal(&error))?
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = api::CreateUserRequest,
    responses((status = 201, body = api::User), (status = 403, body = api::ErrorBody), (status = 409, body = api::ErrorBody)))]
/// Create a user
///
/// Admins only; roles must be ones the policy declares, printed names unique among active users.
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
    check_optional_length("email", request.email.as_deref(), text::EMAIL)?;
    let roles = declared_roles(&state, &request.roles).await?;
    let password_hash = match request.password {
        Some(password) => Some(hash_password_blocking(password).await?),
        None => None,
    };
    let new_user = NewUser {
        username: Username::parse(&request.username)?,
        printed_name: check_printed_name(&request.printed_name)?,
        email: request.email,
        roles,
        password_hash,
    };
    let user = state
        .store()
        .create_user(&caller.attribution(state.now()), &new_user)
        .await?;
    Ok((StatusCode::CREATED, Json(convert::user(&user))))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = api::UserList)))]
/// List users
///
/// With their roles and whether they are active.
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
/// A user
///
/// Their printed name, roles and state.
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
    responses((status = 200, body = api::User),
              (status = 401, body = api::ErrorBody, description = "Wrong current_password"),
              (status = 403, body = api::ErrorBody, description = "Not an admin, or changing your own roles"),
              (status = 404, body = api::ErrorBody), (status = 429, body = api::ErrorBody)))]
/// Change a user
///
/// Your own password (with the current one) or, as an admin, others' names, roles (never your own),
/// passwords (a reset cannot sign until its owner sets their own) and state.
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(username): ApiPath<String>,
    ApiJson(request): ApiJson<api::UpdateUserRequest>,
) -> Result<Json<api::User>, ApiError> {
    let username = Username::parse(&username)?;
    let target = format!("user/{username}");
    let changes_account = request.printed_name.is_some()
        || request.email.is_some()
        || request.roles.is_some()
        || request.active.is_some();
    // Every check comes before any change, so a refused part changes nothing.
    if changes_account {
        state
            .authorize(
                &caller,
                "user.update",
                &target,
                require_admin(caller.user()),
            )
            .await?;
    }
    if request.roles.is_some() {
        let decision = may_change_roles_of(caller.user(), &username);
        state
            .authorize(&caller, "user.roles.change", &target, decision)
            .await?;
    }
    let update = UserUpdate {
        printed_name: request
            .printed_name
            .as_deref()
            .map(check_printed_name)
            .transpose()?,
        email: match request.email {
            Some(email) => {
                text::check_length("email", &email, text::EMAIL)?;
                Some(Some(email))
            }
            None => None,
        },
        roles: match request.roles.as_deref() {
            Some(roles) => Some(declared_roles(&state, roles).await?),
            None => None,
        },
        active: request.active,
    };
    let new_password = match request.password {
        Some(password) => {
            let change = authorize_password_change(
                &state,
                &caller,
                &username,
                request.current_password.as_deref(),
            )
            .await?;
            Some((hash_password_blocking(password).await?, change))
        }
        None => None,
    };
    let mut user = None;
    if changes_account {
        let attribution = caller.attribution(state.now());
        user = Some(
            state
                .store()
                .update_user(&attribution, &username, &update)
                .await?,
        );
    }
    if let Some((hash, change)) = new_password {
        let attribution = caller.attribution(state.now());
        user = Some(
            state
                .store()
                .set_password(&attribution, &username, &hash, change)
                .await?,
        );
    }
    let user = match user {
        Some(user) => user,
        None => state.store().get_user(&username).await?,
    };
    Ok(Json(convert::user(&user)))
}

/// Who may set `username`'s password, and what kind of change it is: the user themself, giving their
/// current password (checked under the lock-out, refusals audited), or an admin for someone else (a reset,
/// which cannot sign), or a user without any password setting their first one (also a reset). A token
/// alone never sets a password that signs.
async fn authorize_password_change(
    state: &AppState,
    caller: &Caller,
    username: &Username,
    current_password: Option<&str>,
) -> Result<PasswordChange, ApiError> {
    let target = format!("user/{username}");
    if username != &caller.user().username {
        state
            .authorize(
                caller,
                "user.password_changed",
                &target,
                require_admin(caller.user()),
            )
            .await?;
        return Ok(PasswordChange::AdminReset);
    }
    if !caller.user().has_password && current_password.is_none() {
        // A first password set with a token alone (the bootstrap admin's, say) signs in but cannot sign,
        // exactly like an admin's reset: a stolen token must not become a signature.
        return Ok(PasswordChange::AdminReset);
    }
    let Some(current) = current_password else {
        return Err(ApiError::invalid(
            "current_password",
            "current_password: changing your own password needs your current one \
             (`modelgate user passwd` asks for both)",
        ));
    };
    let error = match state.check_password(username, current).await? {
        PasswordCheck::Matched => return Ok(PasswordChange::OwnChange),
        PasswordCheck::Mismatched => ApiError::unauthenticated(
            "current_password does not match: the password was not changed (an account without a \
             password gets its first one from an admin)",
        )
        .with_details(serde_json::json!({ "field": "current_password" })),
        PasswordCheck::Locked { until } => PasswordCheck::locked_error(username, until),
    };
    Err(state
        .refuse(
            caller.attribution(state.now()),
            "user.password_changed",
            &target,
            error,
        )
        .await)
}

#[utoipa::path(get, path = "/api/v1/whoami", tag = "users", responses((status = 200, body = api::WhoAmI)))]
/// Who the token belongs to
///
/// The user and token behind the request.
pub async fn whoami(caller: Caller) -> Json<api::WhoAmI> {
    Json(api::WhoAmI {
        user: convert::user(caller.user()),
        token_id: caller.principal.token_id.clone(),
    })
}
