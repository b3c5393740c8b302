//! `/api/v1/tokens` and `/api/v1/auth/login`: API tokens, shown once and stored only as hashes.

use crate::auth::{Caller, RequestOrigin, new_token_secret, token_secret_hash};
use crate::convert::{self, expiry_after_days};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::{AppState, PasswordCheck};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use modelgate_api as api;
use modelgate_core::access::{may_manage_tokens_of, require_admin};
use modelgate_core::{Actor, TokenName, User, Username};
use modelgate_store::Attribution;

/// Tokens made through the API expire after this many days unless the request says otherwise.
const DEFAULT_TOKEN_DAYS: u32 = 90;
const DEFAULT_LOGIN_TOKEN_DAYS: u32 = 30;

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = api::CreateTokenRequest,
    responses((status = 201, body = api::CreatedToken), (status = 403, body = api::ErrorBody)))]
/// Create an API token
///
/// For yourself, or for another user as an admin; the secret is shown once and stored only as a hash;
/// lifetimes are bounded.
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::CreateTokenRequest>,
) -> Result<(StatusCode, Json<api::CreatedToken>), ApiError> {
    let name = TokenName::parse(&request.name)?;
    let user = match &request.username {
        Some(username) => {
            let decision = may_manage_tokens_of(caller.user(), username);
            state
                .authorize(
                    &caller,
                    "token.create",
                    &format!("user/{username}"),
                    decision,
                )
                .await?;
            state.store().get_user(&Username::parse(username)?).await?
        }
        None => caller.user().clone(),
    };
    let attribution = caller.attribution(state.now());
    let days = token_days(&state, request.expires_in_days, DEFAULT_TOKEN_DAYS)?;
    issue_token(&state, &attribution, &user, &name, days).await
}

/// The lifetime asked for, or the default: 1 day to the server's maximum. A token that never expires
/// cannot be made through the API.
fn token_days(state: &AppState, asked: Option<u32>, default: u32) -> Result<u32, ApiError> {
    let max = state.max_token_days();
    let days = asked.unwrap_or(default.min(max));
    if days == 0 || days > max {
        return Err(ApiError::invalid(
            "expires_in_days",
            format!(
                "expires_in_days: must be from 1 to {max} days (the server's maximum token lifetime, \
                 `modelgate serve --max-token-days`); got {days}"
            ),
        ));
    }
    Ok(days)
}

/// Makes a new secret, stores its hash, and answers with the secret (shown this once).
async fn issue_token(
    state: &AppState,
    attribution: &Attribution,
    user: &User,
    name: &TokenName,
    expires_in_days: u32,
) -> Result<(StatusCode, Json<api::CreatedToken>), ApiError> {
    let expires_at = expiry_after_days(attribution.at, expires_in_days);
    let secret = new_token_secret();
    let token = state
        .store()
        .create_token(
            attribution,
            user,
            name,
            &token_secret_hash(&secret),
            expires_at,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(api::CreatedToken {
            secret,
            token: convert::token(&token),
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(api::ListTokensQuery),
    responses((status = 200, body = api::TokenList)))]
/// List tokens
///
/// Your tokens (all users' with `all`, for admins), without secrets.
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<api::ListTokensQuery>,
) -> Result<Json<api::TokenList>, ApiError> {
    let tokens = if query.all.unwrap_or(false) {
        let decision = require_admin(caller.user());
        state
            .authorize(&caller, "token.list", "tokens", decision)
            .await?;
        state.store().list_tokens(None).await?
    } else {
        state.store().list_tokens(Some(caller.user())).await?
    };
    Ok(Json(api::TokenList {
        tokens: tokens.iter().map(convert::token).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "tokens",
    params(("id" = String, Path, description = "Token id (`tok_…`)")),
    responses((status = 200, body = api::Token), (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)))]
/// Revoke a token
///
/// It stops working at once.
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<api::Token>, ApiError> {
    let token = state.store().get_token(&id).await?;
    let decision = may_manage_tokens_of(caller.user(), token.username.as_str());
    state
        .authorize(&caller, "token.revoke", &format!("token/{id}"), decision)
        .await?;
    let token = state
        .store()
        .revoke_token(&caller.attribution(state.now()), &id)
        .await?;
    Ok(Json(convert::token(&token)))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "tokens", request_body = api::LoginRequest,
    security(()),
    responses((status = 201, body = api::CreatedToken), (status = 401, body = api::ErrorBody),
              (status = 429, body = api::ErrorBody, description = "Locked: too many wrong passwords lately")))]
/// Sign in with a password
///
/// Returns a new token; wrong passwords count toward the lock-out shared with signing. Needs no token.
pub async fn login(
    State(state): State<AppState>,
    origin: RequestOrigin,
    ApiJson(request): ApiJson<api::LoginRequest>,
) -> Result<(StatusCode, Json<api::CreatedToken>), ApiError> {
    let refused = || ApiError::unauthenticated("unknown user, wrong password, or deactivated user");
    let anonymous = Attribution {
        actor: Actor::Anonymous,
        at: state.now(),
        request_id: origin.request_id.clone(),
        client_addr: origin.client_addr.clone(),
    };
    let Ok(username) = Username::parse(&request.username) else {
        // No such user can exist, so answering at once tells nothing.
        return Err(state
            .refuse_aggregated(
                anonymous,
                "auth.refused",
                "POST /api/v1/auth/login",
                refused(),
            )
            .await);
    };
    let days = token_days(&state, request.expires_in_days, DEFAULT_LOGIN_TOKEN_DAYS)?;
    let name = TokenName::parse(request.token_name.as_deref().unwrap_or("login"))?;
    let target = format!("user/{username}");
    match state.check_password(&username, &request.password).await? {
        PasswordCheck::Matched => {}
        PasswordCheck::Mismatched => {
            tracing::warn!(username = %username, "refused login");
            return Err(state
                .refuse_aggregated(anonymous, "auth.refused", &target, refused())
                .await);
        }
        PasswordCheck::Locked { until } => {
            let error = PasswordCheck::locked_error(&username, until);
            return Err(state
                .refuse_aggregated(anonymous, "auth.refused", &target, error)
                .await);
        }
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
    issue_token(&state, &attribution, &user, &name, days).await
}
