//! The state shared by all requests: the store, the artifact store, limits, and the shutdown signal.

use crate::auth::token_secret_hash;
use crate::error::ApiError;
use modelgate_core::{Principal, Timestamp};
use modelgate_store::{ArtifactStore, Store, UploadLimits};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// How often at most a token's last-used time is written: a read must not become a write each time.
const TOKEN_TOUCH_INTERVAL_MILLIS: i64 = 60_000;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    artifacts: ArtifactStore,
    upload_limits: UploadLimits,
    shutdown: CancellationToken,
    /// Token id → when this process last recorded its use.
    token_touches: Mutex<HashMap<String, i64>>,
}

impl AppState {
    pub fn new(
        store: Store,
        artifacts: ArtifactStore,
        upload_limits: UploadLimits,
        shutdown: CancellationToken,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            artifacts,
            upload_limits,
            shutdown,
            token_touches: Mutex::new(HashMap::new()),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn artifacts(&self) -> &ArtifactStore {
        &self.0.artifacts
    }

    pub fn upload_limits(&self) -> UploadLimits {
        self.0.upload_limits
    }

    /// Cancelled when the server begins to shut down; uploads in progress stop and are discarded.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.0.shutdown
    }

    /// The current time; the one place request handling reads the clock.
    pub fn now(&self) -> Timestamp {
        crate::system_now()
    }

    /// Resolves a bearer secret to its user, or says precisely why it cannot act.
    pub async fn authenticate_token(&self, secret: &str) -> Result<Principal, ApiError> {
        let hash = token_secret_hash(secret);
        let now = self.now();
        let Some((token, principal)) = self.store().find_token_by_secret_hash(&hash).await? else {
            return Err(ApiError::unauthenticated(
                "the token is not valid: check for a typo, or create a new one",
            ));
        };
        if token.revoked_at.is_some() {
            return Err(ApiError::unauthenticated(format!(
                "token {} was revoked; create a new one",
                token.id
            )));
        }
        if !token.is_usable_at(now) {
            return Err(ApiError::unauthenticated(format!(
                "token {} has expired; create a new one",
                token.id
            )));
        }
        if !principal.user.active {
            return Err(ApiError::unauthenticated(format!(
                "user {:?} is deactivated",
                principal.user.username.as_str()
            )));
        }
        self.record_token_use(&token.id, now);
        Ok(principal)
    }

    fn record_token_use(&self, token_id: &str, now: Timestamp) {
        let due = {
            let Ok(mut touches) = self.0.token_touches.lock() else {
                return;
            };
            let last = touches.get(token_id).copied();
            let due =
                last.is_none_or(|last| now.unix_millis() - last >= TOKEN_TOUCH_INTERVAL_MILLIS);
            if due {
                touches.insert(token_id.to_owned(), now.unix_millis());
            }
            due
        };
        if due {
            let store = self.store().clone();
            let token_id = token_id.to_owned();
            tokio::spawn(async move {
                if let Err(error) = store.touch_token(&token_id, now).await {
                    tracing::warn!(%error, token_id, "could not record token use");
                }
            });
        }
    }
}
