//! API tokens: only the SHA-256 hash of a token's secret is stored; a request is authenticated by one
//! indexed lookup of that hash.

use super::audit::{self, AuditRecord};
use super::rows::token_from_row;
use super::users::{USER_COLUMNS, credential_and_principal};
use super::{Attribution, Store};
use crate::StoreError;
use modelgate_core::{Principal, Timestamp, TokenName, TokenRecord, User};
use serde_json::json;

const TOKEN_COLUMNS: &str = "t.id AS token_id, t.name AS token_name, t.created_at AS token_created_at, \
     t.expires_at, t.last_used_at, t.revoked_at";

impl Store {
    /// Stores a new token for `user`; `secret_hash` is the hex SHA-256 of the secret shown to the user once.
    pub async fn create_token(
        &self,
        attribution: &Attribution,
        user: &User,
        name: &TokenName,
        secret_hash: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<TokenRecord, StoreError> {
        let id = format!("tok_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, secret_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(user.id)
        .bind(name.as_str())
        .bind(secret_hash)
        .bind(attribution.at.unix_millis())
        .bind(expires_at.map(Timestamp::unix_millis))
        .execute(&mut *transaction)
        .await
        .map_err(StoreError::on_unique_violation("token", &id))?;
        let token = TokenRecord {
            id: id.clone(),
            user_id: user.id,
            username: user.username.clone(),
            name: name.clone(),
            created_at: attribution.at,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "token.create",
                target: format!("token/{id}"),
                before: None,
                after: Some(json!({
                    "user": user.username.as_str(),
                    "name": name.as_str(),
                    "expires_at": expires_at.map(Timestamp::unix_millis),
                })),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(token)
    }

    /// The user and token behind a secret's hash, whatever their state; the caller decides whether an
    /// expired or revoked token, or an inactive user, may act.
    pub async fn find_token_by_secret_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(TokenRecord, Principal)>, StoreError> {
        let generation = match &self.views {
            Some(views) => {
                if let Some(found) = views.principal(secret_hash) {
                    return Ok(Some(found));
                }
                Some(views.generation())
            }
            None => None,
        };
        let found = self.read_token_by_secret_hash(secret_hash).await?;
        if let (Some(views), Some(generation), Some(found)) = (&self.views, generation, &found) {
            views.remember_principal(generation, secret_hash, found);
        }
        Ok(found)
    }

    async fn read_token_by_secret_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(TokenRecord, Principal)>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS}, r.role
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             LEFT JOIN user_roles r ON r.user_id = u.id
             WHERE t.secret_hash = $1 ORDER BY r.role"
        )))
        .bind(secret_hash)
        .fetch_all(&self.reader)
        .await?;
        credential_and_principal(&rows, token_from_row, |token| token.id.clone(), "token")
    }

    pub async fn get_token(&self, id: &str) -> Result<TokenRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS}, u.id AS user_id, u.username
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("token", id))?;
        token_from_row(&row)
    }

    /// Tokens of one user, or of everyone, newest first.
    pub async fn list_tokens(&self, user: Option<&User>) -> Result<Vec<TokenRecord>, StoreError> {
        let mut sql = format!(
            "SELECT {TOKEN_COLUMNS}, u.id AS user_id, u.username
             FROM api_tokens t JOIN users u ON u.id = t.user_id"
        );
        if user.is_some() {
            sql.push_str(" WHERE t.user_id = $1");
        }
        sql.push_str(" ORDER BY t.created_at DESC, t.id");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(user) = user {
            query = query.bind(user.id);
        }
        query
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(token_from_row)
            .collect()
    }

    pub async fn revoke_token(
        &self,
        attribution: &Attribution,
        id: &str,
    ) -> Result<TokenRecord, StoreError> {
        let mut transaction = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(attribution.at.unix_millis())
        .bind(id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if updated == 1 {
            audit::append(
                &mut transaction,
                self.backend,
                attribution,
                AuditRecord {
                    action: "token.revoke",
                    target: format!("token/{id}"),
                    before: None,
                    after: None,
                },
            )
            .await?;
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS}, u.id AS user_id, u.username
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| StoreError::not_found("token", id))?;
        let token = token_from_row(&row)?;
        self.commit(transaction).await?;
        Ok(token)
    }

    /// Records that a token was used. Bookkeeping, not a change of state, so it writes no audit event;
    /// callers throttle it so that reads do not turn into writes.
    pub async fn touch_token(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at.unix_millis())
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        self.commit(transaction).await?;
        Ok(())
    }
}
