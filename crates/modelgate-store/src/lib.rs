//! Persistence for modelgate: the relational [`Store`] (SQLite by default, PostgreSQL for scale-out) that
//! holds the registry and writes the audit trail in the transaction of every change, and the
//! content-addressed [`ArtifactStore`] that holds artifact bytes under their digest.

mod artifacts;
mod data_dir;
mod db;
mod error;

pub use artifacts::{
    ArtifactStore, ByteRange, StoredArtifact, UploadError, UploadLimits, VerifyReport,
};
pub use data_dir::{DIRECTORY_MODE, FILE_MODE, prepare_data_dir, tighten};
pub use db::audit::{AuditFilter, StoredAuditRow, StoredCheckpoint, StoredLogReport};
#[cfg(feature = "bench-support")]
pub use db::bench_fixture::{BENCH_TIERS, LoadedRegistry, RegistryFixture};
pub use db::cards::CardRevision;
pub use db::evaluations::{
    DatasetRecord, EvaluationRecord, JobRecord, JobState, NewEvaluation, NewJob,
};
pub use db::inventory::{
    ApprovalStanding, InventoryFilter, InventoryPage, InventoryRow, InventorySort, StageVersion,
};
pub use db::monitoring::{
    BatchRecord, BreachEffect, KpiRecord, NewBatch, NewKpi, NewOutcomes, OutcomesRecord,
    StoredBreach,
};
pub use db::promotion::{
    ConsequenceAction, HeldApprovalRecord, PolicyConsequence, QueuedRequest, RequestDetail,
    RequestFilter,
};
pub use db::scans::{NewScan, ScanRecord, ScanRecorded};
pub use db::schedule::ApprovalInForce;
pub use db::webhooks::{
    AttemptOutcome, AttemptRecord, DeliveryNext, DeliveryRecord, NewDelivery, NewWebhook,
    WebhookEvent, WebhookRecord,
};
pub use db::{
    Attribution, Backend, LockoutRule, ModelUpdate, PasswordAttempt, PasswordChange, Store,
    UserUpdate, redact_url,
};
pub use error::StoreError;
