//! Users and their roles.

use super::audit::{self, AuditRecord};
use super::rows::{self, user_from_row, user_snapshot};
use super::{Attribution, Store};
use crate::StoreError;
use modelgate_core::{NewUser, Role, User, Username};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    pub printed_name: Option<String>,
    pub email: Option<Option<String>>,
    pub roles: Option<Vec<Role>>,
    pub active: Option<bool>,
}

pub(crate) const USER_COLUMNS: &str = "u.id AS user_id, u.username, u.printed_name, u.email, \
     u.password_hash, u.created_at AS user_created_at, u.deactivated_at";

impl Store {
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.reader)
            .await?;
        rows::get(&row, "n")
    }

    pub async fn create_user(
        &self,
        attribution: &Attribution,
        new_user: &NewUser,
    ) -> Result<User, StoreError> {
        let mut transaction = self.begin_write().await?;
        check_printed_name_free(&mut transaction, &new_user.printed_name, None).await?;
        let id: i64 = rows::get(
            &sqlx::query(
                "INSERT INTO users (username, printed_name, email, password_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(new_user.username.as_str())
            .bind(new_user.printed_name.as_str())
            .bind(new_user.email.clone())
            .bind(new_user.password_hash.clone())
            .bind(attribution.at.unix_millis())
            .fetch_one(&mut *transaction)
            .await
            .map_err(StoreError::on_unique_violation("user", &new_user.username))?,
            "id",
        )?;
        replace_roles(&mut transaction, id, &new_user.roles).await?;
        let user = load_user(&mut transaction, "u.id = $1", UserKey::Id(id)).await?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "user.create",
                target: format!("user/{}", user.username),
                before: None,
                after: Some(user_snapshot(&user)),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(user)
    }

    pub async fn get_user(&self, username: &Username) -> Result<User, StoreError> {
        let mut connection = self.reader.acquire().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, r.role FROM users u LEFT JOIN user_roles r ON r.user_id = u.id
             WHERE u.username = $1 ORDER BY r.role"
        )))
        .bind(username.as_str())
        .fetch_all(&mut *connection)
        .await?;
        users_from_rows(&rows)?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::not_found("user", username))
    }

    /// The stored argon2id hash of a user's password, if they have one and are active.
    pub async fn password_hash(&self, username: &Username) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT password_hash FROM users WHERE username = $1 AND deactivated_at IS NULL",
        )
        .bind(username.as_str())
        .fetch_optional(&self.reader)
        .await?;
        match row {
            Some(row) => rows::get(&row, "password_hash"),
            None => Ok(None),
        }
    }

    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, r.role FROM users u LEFT JOIN user_roles r ON r.user_id = u.id
             ORDER BY u.username, r.role"
        )))
        .fetch_all(&self.reader)
        .await?;
        users_from_rows(&rows)
    }

    pub async fn update_user(
        &self,
        attribution: &Attribution,
        username: &Username,
        update: &UserUpdate,
    ) -> Result<User, StoreError> {
        let mut transaction = self.begin_write().await?;
        let before = load_user(
            &mut transaction,
            "u.username = $1",
            UserKey::Name(username.as_str()),
        )
        .await?;
        let active_after = update.active.unwrap_or(before.active);
        if active_after && (update.printed_name.is_some() || update.active == Some(true)) {
            let printed_name = update.printed_name.as_ref().unwrap_or(&before.printed_name);
            check_printed_name_free(&mut transaction, printed_name, Some(before.id)).await?;
        }
        if let Some(printed_name) = &update.printed_name {
            sqlx::query("UPDATE users SET printed_name = $1 WHERE id = $2")
                .bind(printed_name.as_str())
                .bind(before.id)
                .execute(&mut *transaction)
                .await?;
        }
        if let Some(email) = &update.email {
            sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
                .bind(email.clone())
                .bind(before.id)
                .execute(&mut *transaction)
                .await?;
        }
        if let Some(active) = update.active {
            let deactivated_at = (!active).then_some(attribution.at.unix_millis());
            sqlx::query("UPDATE users SET deactivated_at = $1 WHERE id = $2")
                .bind(deactivated_at)
                .bind(before.id)
                .execute(&mut *transaction)
                .await?;
            if !active {
                super::sessions::revoke_sessions_of(&mut transaction, before.id, attribution.at)
                    .await?;
            }
        }
        if let Some(roles) = &update.roles {
            replace_roles(&mut transaction, before.id, roles).await?;
        }
        let after = load_user(&mut transaction, "u.id = $1", UserKey::Id(before.id)).await?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "user.update",
                target: format!("user/{username}"),
                before: Some(user_snapshot(&before)),
                after: Some(user_snapshot(&after)),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(after)
    }
}

/// Printed names identify signers on approvals, so no two active users share one (compared trimmed and
/// case-insensitively). Checked inside the writing transaction, so two racing creations cannot both pass.
async fn check_printed_name_free(
    transaction: &mut Transaction<'static, Any>,
    printed_name: &str,
    except_user_id: Option<i64>,
) -> Result<(), StoreError> {
    let wanted = printed_name.trim().to_lowercase();
    let active =
        sqlx::query("SELECT id, username, printed_name FROM users WHERE deactivated_at IS NULL")
            .fetch_all(&mut **transaction)
            .await?;
    for row in &active {
        let id: i64 = rows::get(row, "id")?;
        let other: String = rows::get(row, "printed_name")?;
        if Some(id) != except_user_id && other.trim().to_lowercase() == wanted {
            let username: String = rows::get(row, "username")?;
            return Err(StoreError::FailedPrecondition(format!(
                "printed_name: {printed_name:?} is already the printed name of active user \
                 {username:?}; printed names identify signers, so choose one that tells the two apart"
            )));
        }
    }
    Ok(())
}

pub(crate) enum UserKey<'a> {
    Id(i64),
    Name(&'a str),
}

pub(crate) async fn load_user(
    transaction: &mut Transaction<'static, Any>,
    condition: &str,
    key: UserKey<'_>,
) -> Result<User, StoreError> {
    let query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS}, r.role FROM users u LEFT JOIN user_roles r ON r.user_id = u.id
         WHERE {condition} ORDER BY r.role"
    )));
    let (query, key_text) = match key {
        UserKey::Id(id) => (query.bind(id), id.to_string()),
        UserKey::Name(name) => (query.bind(name.to_owned()), name.to_owned()),
    };
    let rows = query.fetch_all(&mut **transaction).await?;
    users_from_rows(&rows)?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::not_found("user", key_text))
}

async fn replace_roles(
    transaction: &mut Transaction<'static, Any>,
    user_id: i64,
    roles: &[Role],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **transaction)
        .await?;
    let mut unique: Vec<&Role> = roles.iter().collect();
    unique.sort();
    unique.dedup();
    for role in unique {
        sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
            .bind(user_id)
            .bind(role.as_str())
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}

/// Folds rows of `users LEFT JOIN user_roles` (ordered by user) into users with their roles.
pub(crate) fn users_from_rows(rows: &[AnyRow]) -> Result<Vec<User>, StoreError> {
    let mut users: Vec<User> = Vec::new();
    for row in rows {
        let id: i64 = rows::get(row, "user_id")?;
        let role = rows::get::<Option<String>>(row, "role")?
            .map(|text| rows::parsed("role", Role::parse, &text))
            .transpose()?;
        match users.last_mut() {
            Some(user) if user.id == id => user.roles.extend(role),
            _ => users.push(user_from_row(row, role.into_iter().collect())?),
        }
    }
    Ok(users)
}

/// The credential (a token, a session) and its user, from the rows of a query that joins the credential,
/// its user and the user's roles (one row per role): `None` when no row matched. The principal carries
/// the credential's public id.
pub(crate) fn credential_and_principal<R>(
    rows: &[AnyRow],
    credential: impl FnOnce(&AnyRow) -> Result<R, StoreError>,
    public_id: impl FnOnce(&R) -> String,
    what: &str,
) -> Result<Option<(R, modelgate_core::Principal)>, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let record = credential(first)?;
    let user = users_from_rows(rows)?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::corrupt(format!("{what} without user")))?;
    let principal = modelgate_core::Principal {
        user,
        token_id: Some(public_id(&record)),
    };
    Ok(Some((record, principal)))
}
