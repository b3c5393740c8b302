//! The state shared by all requests: the store, the artifact store, limits, and the shutdown signal.

use crate::auth::{Caller, RequestOrigin, token_secret_hash, verify_password_or_dummy};
use crate::error::{ApiError, ErrorCode};
use crate::refusals::Refusals;
use modelgate_audit::NoteSigner;
use modelgate_core::access::Denied;
use modelgate_core::{Actor, Principal, Timestamp, Username};
use modelgate_store::{
    ArtifactStore, Attribution, LockoutRule, PasswordAttempt, Store, UploadLimits,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// How often at most a token's last-used time is written: a read must not become a write each time.
const TOKEN_TOUCH_INTERVAL_MILLIS: i64 = 60_000;

/// The one lock-out for passwords, at login and at signing alike: 5 wrong in 15 minutes, per username.
pub const PASSWORD_LOCKOUT: LockoutRule = LockoutRule {
    max_failures: 5,
    window_millis: 15 * 60 * 1000,
};

/// The outcome of [`AppState::check_password`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Matched,
    /// Wrong password, or no such active user with a password (the caller cannot tell which).
    Mismatched,
    /// Too many failures lately; nothing was checked.
    Locked {
        until: Timestamp,
    },
}

impl PasswordCheck {
    /// The 429 to answer a locked account with.
    pub fn locked_error(username: &Username, until: Timestamp) -> ApiError {
        ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "too many wrong passwords for user {:?} in the last 15 minutes (logins and signatures \
                 count together); try again after {}",
                username.as_str(),
                until.to_rfc3339()
            ),
        )
        .with_details(serde_json::json!({ "retry_after": until.to_rfc3339() }))
    }
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// Size limits the server enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    pub upload: UploadLimits,
    /// Datasets and predictions files are parsed in memory; larger ones are refused.
    pub max_dataset_bytes: u64,
    /// The longest lifetime of a token made through the API, in days.
    pub max_token_days: u32,
    /// How long web UI sessions last.
    pub sessions: crate::ui::SessionSettings,
    /// Where and how webhooks are delivered.
    pub webhooks: crate::webhooks::WebhookSettings,
    /// What a dataset or predictions file may hold once read (columns, cell size, rows, profile size).
    pub dataset: modelgate_eval::dataset::DatasetLimits,
    /// How the MLflow registry routes map onto modelgate.
    pub mlflow: crate::mlflow::MlflowSettings,
}

struct Inner {
    store: Store,
    artifacts: ArtifactStore,
    limits: Limits,
    shutdown: CancellationToken,
    signer: Arc<NoteSigner>,
    default_policy: Arc<modelgate_policy::Policy>,
    clock: crate::Clock,
    /// The last applied policy parsed, by digest.
    policy_cache: Mutex<Option<Arc<modelgate_policy::Policy>>>,
    /// Refused authentication not yet written (see `refusals`).
    refusals: Refusals,
    /// Password verifications (argon2 runs) made, for tests that check unknown users cost the same.
    password_checks: Arc<AtomicU64>,
    /// Token id → when this process last recorded its use.
    token_touches: Mutex<HashMap<String, i64>>,
    /// Evaluations running at once in this process; the others wait their turn (each uses every core).
    evaluation_slots: tokio::sync::Semaphore,
    /// Evaluation jobs this process has queued or is running, failed at shutdown.
    evaluation_jobs: Mutex<std::collections::HashSet<i64>>,
    /// The last verification of the stored audit log, for the audit page.
    log_check: Arc<crate::ui::LogCheck>,
    /// The reference last profiled for drift (by reference file digest and columns): every batch of a
    /// deployed version is compared with the same one, and profiling it (reading, sorting) costs more than
    /// comparing. One entry, so its memory is bounded by the dataset limits.
    drift_reference: Mutex<Option<(String, Arc<modelgate_eval::drift::Reference>)>>,
}

impl AppState {
    pub fn new(
        store: Store,
        artifacts: ArtifactStore,
        limits: Limits,
        shutdown: CancellationToken,
        signer: Arc<NoteSigner>,
        default_policy: Arc<modelgate_policy::Policy>,
        clock: crate::Clock,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            artifacts,
            limits,
            shutdown,
            signer,
            default_policy,
            clock,
            policy_cache: Mutex::new(None),
            refusals: Refusals::default(),
            password_checks: Arc::new(AtomicU64::new(0)),
            token_touches: Mutex::new(HashMap::new()),
            evaluation_slots: tokio::sync::Semaphore::new(1),
            evaluation_jobs: Mutex::new(std::collections::HashSet::new()),
            log_check: Arc::new(crate::ui::LogCheck::default()),
            drift_reference: Mutex::new(None),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn artifacts(&self) -> &ArtifactStore {
        &self.0.artifacts
    }

    pub fn upload_limits(&self) -> UploadLimits {
        self.0.limits.upload
    }

    pub fn evaluation_slots(&self) -> &tokio::sync::Semaphore {
        &self.0.evaluation_slots
    }

    /// Records that this process runs (`true`) or no longer runs (`false`) an evaluation job.
    pub fn track_evaluation_job(&self, job: i64, running: bool) {
        if let Ok(mut jobs) = self.0.evaluation_jobs.lock() {
            if running {
                jobs.insert(job);
            } else {
                jobs.remove(&job);
            }
        }
    }

    /// The evaluation jobs this process still runs.
    pub fn evaluation_jobs(&self) -> Vec<i64> {
        self.0
            .evaluation_jobs
            .lock()
            .map(|jobs| jobs.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn max_dataset_bytes(&self) -> u64 {
        self.0.limits.max_dataset_bytes
    }

    pub fn dataset_limits(&self) -> &modelgate_eval::dataset::DatasetLimits {
        &self.0.limits.dataset
    }

    /// The built-in default policy, in force until one is applied.
    pub fn default_policy(&self) -> Arc<modelgate_policy::Policy> {
        self.0.default_policy.clone()
    }

    /// The parsed policy for a stored text, parsing it only when the digest changed.
    pub fn cached_policy(
        &self,
        digest: &str,
        text: &str,
    ) -> Result<Arc<modelgate_policy::Policy>, ApiError> {
        if let Ok(cache) = self.0.policy_cache.lock()
            && let Some(policy) = cache.as_ref()
            && policy.digest == digest
        {
            return Ok(policy.clone());
        }
        let policy = Arc::new(modelgate_policy::Policy::parse(text).map_err(|errors| {
            ApiError::internal(&crate::error::InternalError(format!(
                "the stored policy {digest} no longer parses: {}",
                errors[0]
            )))
        })?);
        if let Ok(mut cache) = self.0.policy_cache.lock() {
            *cache = Some(policy.clone());
        }
        Ok(policy)
    }

    pub fn log_check(&self) -> &Arc<crate::ui::LogCheck> {
        &self.0.log_check
    }

    pub fn session_settings(&self) -> &crate::ui::SessionSettings {
        &self.0.limits.sessions
    }

    /// The profiled drift reference kept under `key`, if it is the one kept.
    pub fn cached_drift_reference(
        &self,
        key: &str,
    ) -> Option<Arc<modelgate_eval::drift::Reference>> {
        let kept = self.0.drift_reference.lock().ok()?;
        kept.as_ref()
            .filter(|(kept_key, _)| kept_key == key)
            .map(|(_, reference)| reference.clone())
    }

    /// Keeps a profiled drift reference (replacing the one kept).
    pub fn keep_drift_reference(
        &self,
        key: String,
        reference: Arc<modelgate_eval::drift::Reference>,
    ) {
        if let Ok(mut kept) = self.0.drift_reference.lock() {
            *kept = Some((key, reference));
        }
    }

    pub fn mlflow_settings(&self) -> &crate::mlflow::MlflowSettings {
        &self.0.limits.mlflow
    }

    pub fn webhook_settings(&self) -> &crate::webhooks::WebhookSettings {
        &self.0.limits.webhooks
    }

    pub fn max_token_days(&self) -> u32 {
        self.0.limits.max_token_days
    }

    /// Checks a user's password under the one lock-out shared by login and signing (kept in the
    /// database, so it holds across restarts and replicas). Unknown, deactivated and password-less users
    /// are checked against a dummy hash, so the work does not tell whether a user exists; they are
    /// counted toward the lock-out like anyone else.
    pub async fn check_password(
        &self,
        username: &Username,
        password: &str,
    ) -> Result<PasswordCheck, ApiError> {
        let now = self.now();
        if let PasswordAttempt::Locked { until } = self
            .store()
            .begin_password_attempt(username.as_str(), now, PASSWORD_LOCKOUT)
            .await?
        {
            return Ok(PasswordCheck::Locked { until });
        }
        let stored = self.store().password_hash(username).await?;
        let password = password.to_owned();
        let checks = self.0.password_checks.clone();
        let matched = tokio::task::spawn_blocking(move || {
            checks.fetch_add(1, Ordering::Relaxed);
            verify_password_or_dummy(&password, stored.as_deref())
        })
        .await
        .map_err(|error| ApiError::internal(&error))?;
        if !matched {
            return Ok(PasswordCheck::Mismatched);
        }
        self.store()
            .clear_password_failures(username.as_str())
            .await?;
        Ok(PasswordCheck::Matched)
    }

    /// How many password verifications (argon2 runs) this process has made.
    pub fn password_checks(&self) -> u64 {
        self.0.password_checks.load(Ordering::Relaxed)
    }

    /// Records a refused authentication in the audit log, aggregated per (action, source, reason) and
    /// minute (see `refusals`), and returns the error to answer with.
    pub async fn refuse_aggregated(
        &self,
        attribution: Attribution,
        action: &str,
        target: &str,
        error: ApiError,
    ) -> ApiError {
        if let Some(flush) = self
            .0
            .refusals
            .note(attribution, action, target, &error.message)
        {
            self.write_refusals(flush).await;
        }
        error
    }

    /// Writes the aggregated refusals whose window has closed (all of them when `everything`, at
    /// shutdown).
    pub async fn flush_refusals(&self, everything: bool) {
        for flush in self.0.refusals.due(self.now(), everything) {
            self.write_refusals(flush).await;
        }
    }

    async fn write_refusals(&self, flush: crate::refusals::Flush) {
        if let Err(store_error) = self
            .store()
            .record_refusals(
                &flush.attribution,
                &flush.action,
                &flush.target,
                &flush.reason,
                flush.count,
                flush.first_at,
                flush.last_at,
            )
            .await
        {
            tracing::error!(error = %store_error, action = flush.action, count = flush.count,
                "could not record refused attempts");
        }
    }

    /// The key that signs audit checkpoints.
    pub fn signer(&self) -> &Arc<NoteSigner> {
        &self.0.signer
    }

    /// Records a refused attempt in the audit log and returns the error to answer with. A failure to
    /// record is logged, not hidden behind the refusal.
    pub async fn refuse(
        &self,
        attribution: Attribution,
        action: &str,
        target: &str,
        error: ApiError,
    ) -> ApiError {
        if let Err(store_error) = self
            .store()
            .record_refusal(&attribution, action, target, &error.message)
            .await
        {
            tracing::error!(error = %store_error, action, target, "could not record a refused attempt");
        }
        error
    }

    /// Turns a permission decision into a result, recording a denial in the audit log.
    pub async fn authorize<T>(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        decision: Result<T, Denied>,
    ) -> Result<T, ApiError> {
        match decision {
            Ok(capability) => Ok(capability),
            Err(denied) => Err(self
                .refuse(
                    caller.attribution(self.now()),
                    action,
                    target,
                    denied.into(),
                )
                .await),
        }
    }

    /// Cancelled when the server begins to shut down; uploads in progress stop and are discarded.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.0.shutdown
    }

    /// The current time; the one place request handling reads the clock.
    pub fn now(&self) -> Timestamp {
        (self.0.clock)()
    }

    /// Resolves a bearer secret to its user, or says precisely why it cannot act (and records that).
    pub async fn authenticate_token(
        &self,
        secret: Option<&str>,
        origin: &RequestOrigin,
        attempted: &str,
    ) -> Result<Principal, ApiError> {
        let now = self.now();
        let refusal = |actor: Actor, error: ApiError| async move {
            let attribution = Attribution {
                actor,
                at: now,
                request_id: origin.request_id.clone(),
                client_addr: origin.client_addr.clone(),
            };
            self.refuse_aggregated(attribution, "auth.refused", attempted, error)
                .await
        };
        let Some(secret) = secret else {
            let error = ApiError::unauthenticated(
                "missing or malformed credentials: send `Authorization: Bearer <token>` (create a token \
                 with `modelgate token create` or `modelgate admin create-token`)",
            );
            return Err(refusal(Actor::Anonymous, error).await);
        };
        let hash = token_secret_hash(secret);
        let Some((token, principal)) = self.store().find_token_by_secret_hash(&hash).await? else {
            let error = ApiError::unauthenticated(
                "the token is not valid: check for a typo, or create a new one",
            );
            return Err(refusal(Actor::Anonymous, error).await);
        };
        let problem = if token.revoked_at.is_some() {
            Some(format!("token {} was revoked; create a new one", token.id))
        } else if !token.is_usable_at(now) {
            Some(format!("token {} has expired; create a new one", token.id))
        } else if !principal.user.active {
            Some(format!(
                "user {:?} is deactivated",
                principal.user.username.as_str()
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(refusal(principal.actor(), ApiError::unauthenticated(problem)).await);
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
