//! Fresh, isolated stores for tests: a temporary folder per SQLite test, a schema per PostgreSQL test.

use modelgate_core::{Actor, NewUser, Role, Timestamp, User, Username};
use modelgate_store::{Attribution, Store};

pub struct TestStore {
    pub store: Store,
    /// The URL the store was opened with, for tests that edit the database behind its back.
    pub url: String,
    _folder: Option<tempfile::TempDir>,
}

impl TestStore {
    /// A raw connection to the store's database.
    pub async fn raw(&self) -> sqlx::AnyConnection {
        <sqlx::AnyConnection as sqlx::Connection>::connect(&self.url)
            .await
            .unwrap()
    }
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

pub async fn sqlite_store() -> TestStore {
    let folder = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(folder.path()).await.unwrap();
    store.migrate().await.unwrap();
    let url = format!(
        "sqlite://{}",
        folder
            .path()
            .canonicalize()
            .unwrap()
            .join("modelgate.db")
            .display()
    );
    TestStore {
        store,
        url,
        _folder: Some(folder),
    }
}

/// The PostgreSQL server to test against. Absent, the PostgreSQL half of the suite fails loudly unless
/// `MODELGATE_TEST_SKIP_POSTGRES=1` says that skipping it is intended.
pub fn postgres_url() -> Option<String> {
    match std::env::var("MODELGATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("MODELGATE_TEST_SKIP_POSTGRES").as_deref() == Ok("1") => {
            eprintln!("SKIPPING PostgreSQL contract test: MODELGATE_TEST_SKIP_POSTGRES=1");
            None
        }
        _ => panic!(
            "MODELGATE_TEST_POSTGRES_URL is not set: run the tests through scripts/test, which starts \
             PostgreSQL and sets it, or set MODELGATE_TEST_SKIP_POSTGRES=1 to skip PostgreSQL on purpose"
        ),
    }
}

pub async fn postgres_store(base_url: &str) -> TestStore {
    let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(base_url)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let separator = if base_url.contains('?') { '&' } else { '?' };
    let url = format!("{base_url}{separator}options=-c%20search_path%3D{schema}");
    let store = Store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    TestStore {
        store,
        url,
        _folder: None,
    }
}

pub fn at(millis: i64) -> Attribution {
    Attribution::system("test", Timestamp::from_unix_millis(millis))
}

pub fn as_user(user: &User, millis: i64) -> Attribution {
    Attribution {
        actor: Actor::User {
            user_id: user.id,
            username: user.username.clone(),
            token_id: None,
        },
        at: Timestamp::from_unix_millis(millis),
        request_id: Some("req-test".to_owned()),
        client_addr: Some("127.0.0.1".to_owned()),
    }
}

pub async fn create_user(store: &Store, name: &str, roles: &[&str]) -> User {
    store
        .create_user(
            &at(1_000),
            &NewUser {
                username: Username::parse(name).unwrap(),
                printed_name: format!("{name} Example"),
                email: Some(format!("{name}@example.org")),
                roles: roles
                    .iter()
                    .map(|role| Role::parse(role).unwrap())
                    .collect(),
                password_hash: None,
            },
        )
        .await
        .unwrap()
}

/// Declares each named `async fn(TestStore)` as a test on SQLite and a test on PostgreSQL.
#[macro_export]
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::support::sqlite_store().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(url) = $crate::support::postgres_url() {
                        super::$name($crate::support::postgres_store(&url).await).await;
                    }
                }
            )*
        }
    };
}
