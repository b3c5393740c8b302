//! The wire types of the modelgate HTTP API: request and response bodies exactly as they appear in JSON,
//! with their OpenAPI schemas. The server converts domain records into these at the edge; the client and
//! the CLI deserialize them. Times are RFC 3339 strings in UTC.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use utoipa::{IntoParams, ToSchema};

/// A closed set of values on the wire: a unit enum serialised in snake case, described in the OpenAPI
/// document as a string enum, with `ALL`, `as_str`, `Display` and `FromStr` agreeing with serde (the
/// tests check that each given spelling is serde's). (`rename_all` rather than a `rename` per variant:
/// utoipa does not read a `rename` whose literal comes through a macro.)
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the document lists them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The spelling on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            fn from_str(text: &str) -> Result<Self, UnknownValue> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == text)
                    .ok_or_else(|| UnknownValue {
                        kind: stringify!($name),
                        allowed: &[$($text),+],
                        got: text.to_owned(),
                    })
            }
        }
    };
}

/// A text that is none of a wire enum's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// The enum's name (`Stage`, `RiskTier` …).
    pub kind: &'static str,
    /// Its values as spelled on the wire.
    pub allowed: &'static [&'static str],
    pub got: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "must be one of {} (got {:?})",
            self.allowed.join(", "),
            self.got
        )
    }
}

impl std::error::Error for UnknownValue {}

wire_enum! {
    /// A model's risk tier: how much harm it can do; the policy scales checks and sign-offs with it.
    RiskTier { Low = "low", Medium = "medium", High = "high", Critical = "critical" }
}

wire_enum! {
    /// Where a version stands in its lifecycle.
    Stage {
        Development = "development",
        Staging = "staging",
        Production = "production",
        Archived = "archived",
    }
}

wire_enum! {
    /// Where a promotion request stands.
    RequestState { Open = "open", Approved = "approved", Rejected = "rejected", Withdrawn = "withdrawn" }
}

wire_enum! {
    /// Whether a request moves a version forward or brings a previous approved version back.
    RequestKind { Promotion = "promotion", Rollback = "rollback", Revalidation = "revalidation" }
}

wire_enum! {
    /// A reviewer's decision on a promotion request.
    ReviewDecision { Approve = "approve", Reject = "reject", RequestChanges = "request_changes" }
}

wire_enum! {
    /// The standing of a version's approval now: `review_due` when expiry is near, or the evidence
    /// changed after approval, or a later policy would not grant it.
    ApprovalStatus {
        Active = "active",
        ReviewDue = "review_due",
        Expired = "expired",
        Suspended = "suspended",
    }
}

wire_enum! {
    /// How an evaluation's numbers were obtained: the server ran the version's own artifact (`model`),
    /// or computed them from scores a client supplied (`predictions`).
    EvaluationMode { Model = "model", Predictions = "predictions" }
}

wire_enum! {
    /// Whether the policy reads an evaluation: `counted`, or set aside as `exploratory` or `superseded`.
    EvaluationStatus { Counted = "counted", Exploratory = "exploratory", Superseded = "superseded" }
}

wire_enum! {
    /// Where an evaluation job is.
    JobState {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

wire_enum! {
    /// The outcome of one policy check on a version's evidence: `missing` when the evidence it reads does
    /// not exist yet, `error` when the check could not be evaluated.
    CheckStatus { Passed = "passed", Failed = "failed", Missing = "missing", Error = "error" }
}

wire_enum! {
    /// What a dataset's label is, and so which metrics apply.
    DatasetTask { Binary = "binary", Multiclass = "multiclass", Regression = "regression" }
}

wire_enum! {
    /// How a dataset file is encoded.
    DatasetFormat { Csv = "csv", Parquet = "parquet" }
}

wire_enum! {
    /// What applying a policy does to an approval in force that it would not grant (the policy's
    /// `approvals_not_regranted`).
    NotRegrantedAction { Keep = "keep", ReviewDue = "review_due", Suspend = "suspend" }
}

wire_enum! {
    /// What the artifact scanner concluded: `clean` (everything read, nothing questionable), `unscanned`
    /// (a format it cannot read), `suspicious` (needs a person's look: an unknown import, a malformed
    /// stream, a custom operator), `dangerous` (loading it can run code or harm the host).
    ScanVerdict { Clean = "clean", Unscanned = "unscanned", Suspicious = "suspicious", Dangerous = "dangerous" }
}

/// The one error shape of the API: `{"error": {"code": "...", "message": "...", "details": ...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: `not_found`, `already_exists`, `invalid_argument`, `unauthenticated`,
    /// `permission_denied`, `digest_mismatch`, `payload_too_large`, `failed_precondition`,
    /// `range_not_satisfiable`, `unavailable`, `internal`.
    pub code: String,
    /// What went wrong and how to fix it, for people.
    pub message: String,
    /// Structured detail where it helps (for `invalid_argument`, the `field`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Model {
    pub name: String,
    /// Username of the accountable owner.
    pub owner: String,
    pub risk_tier: RiskTier,
    pub description: String,
    pub intended_use: String,
    pub tags: BTreeMap<String, String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
    /// How many versions were ever created; the next version gets this number plus one.
    pub version_count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateModelRequest {
    /// 1–128 characters of lowercase letters, digits, `-`, `_`, `.`; starts with a letter or digit.
    pub name: String,
    /// Username of the owner; defaults to the caller.
    #[serde(default)]
    pub owner: Option<String>,
    pub risk_tier: RiskTier,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub intended_use: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateModelRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intended_use: Option<String>,
    /// Changing the owner or the risk tier needs the `admin` role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_tier: Option<RiskTier>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetTagRequest {
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    pub models: Vec<Model>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListModelsQuery {
    /// Only models whose name starts with this.
    pub name_prefix: Option<String>,
    /// Only models owned by this username.
    pub owner: Option<String>,
    /// Only models of this risk tier.
    pub risk_tier: Option<RiskTier>,
    /// Only models with a version in this stage.
    pub stage: Option<Stage>,
    /// `key` or `key=value`: only models with this tag.
    pub tag: Option<String>,
    /// Include archived models.
    pub include_archived: Option<bool>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Where a version came from. Immutable.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Lineage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_data_uri: Option<String>,
    /// `sha256:<hex>` of the training data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_data_digest: Option<String>,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Any JSON object.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Version {
    pub model: String,
    /// The version's number within its model, from 1.
    pub version: u32,
    /// `sha256:<hex>` of the artifact.
    pub digest: String,
    pub size_bytes: u64,
    pub format: String,
    pub media_type: String,
    pub lineage: Lineage,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    pub stage: Stage,
    pub created_by: String,
    pub created_at: String,
    /// Where to download the artifact.
    pub artifact_url: String,
    /// The approval that put the version in its stage, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<VersionApproval>,
    /// Why the version is suspended, when it is (with or without an approval): the gate refuses it until
    /// it is reinstated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<String>,
    /// How the version is watched after deployment (`GET` of one version, when it is deployed or has
    /// been watched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<VersionMonitoring>,
}

/// A version's monitoring at a glance: the last batch (drift per feature), the last outcomes, the
/// model's KPIs against their bounds, and the recent breaches with what was done.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionMonitoring {
    /// Whether the policy watches the model's tier.
    pub monitored: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_batch: Option<MonitoringBatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_outcomes: Option<MonitoringOutcomes>,
    /// The latest observation of each of the model's KPIs.
    pub kpis: Vec<KpiObservation>,
    /// The latest breaches of the version's batches, outcomes and KPIs, newest first.
    pub breaches: Vec<SourcedBreach>,
}

/// A breach and the observation that found it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourcedBreach {
    /// `batch 17`, `outcomes 3` or `KPI observation 5`.
    pub source: String,
    pub at: String,
    #[serde(flatten)]
    pub breach: MonitoringBreach,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionApproval {
    /// The stage the approval is for.
    pub stage: Stage,
    pub approved_at: String,
    pub not_after: String,
    pub request: i64,
    /// `review_due` when expiry is near, or the evidence changed after approval.
    pub status: ApprovalStatus,
    /// What changed in the evidence after the approval (when the policy let it through): the approval is
    /// `review_due` until the version is approved again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_changed_after_approval: Option<String>,
    /// A policy applied after the approval would not grant it, and says to review it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateVersionRequest {
    /// The digest of an artifact uploaded with `POST /api/v1/artifacts`.
    pub digest: String,
    /// `onnx`, `pickle`, `safetensors`, `tar` … (default: `binary`).
    #[serde(default)]
    pub format: Option<String>,
    /// Default: `application/octet-stream`.
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub lineage: Lineage,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateVersionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionList {
    pub versions: Vec<Version>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListVersionsQuery {
    /// Only versions in this stage.
    pub stage: Option<Stage>,
    /// `key` or `key=value`: only versions with this tag.
    pub tag: Option<String>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Artifact {
    pub digest: String,
    pub size_bytes: u64,
    pub created_at: String,
    /// False when identical content was already stored (it is stored once).
    pub newly_stored: bool,
    /// The artifact scanner's verdict on the content (`GET …/versions/{n}/scan` has its findings).
    pub scan_verdict: ScanVerdict,
}

/// One thing the artifact scanner saw.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScanFinding {
    /// What it is about: `import`, `malformed_pickle`, `archive_path_escape`, `archive_bomb`,
    /// `onnx_custom_domain`, `onnx_external_data`, `not_scanned` … (the scanner engine's list).
    pub kind: String,
    /// How bad this finding is on its own; the report's verdict is the worst.
    pub severity: ScanVerdict,
    /// For imports: the module (`os`, `numpy.core.multiarray` …).
    pub module: String,
    /// For imports the name (`system`); for ONNX the domain or the external data's location.
    pub name: String,
    /// The entry inside an archive (nested archives joined with `!/`); empty at the top level.
    pub path: String,
    /// The byte offset in that entry's (decompressed) stream.
    pub offset: u64,
    pub detail: String,
}

/// The artifact scanner's report on a version's artifact: content-addressed and part of its evidence.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScanReport {
    pub artifact_digest: String,
    pub verdict: ScanVerdict,
    /// In the order they were seen.
    pub findings: Vec<ScanFinding>,
    /// The formats recognised: the top level first, then those met inside.
    pub formats: Vec<String>,
    /// The scanner engine and rules that made the report.
    pub engine: String,
    /// Made by other rules than the server's: it is scanned again shortly.
    pub outdated: bool,
    pub bytes_scanned: u64,
    /// The bytes read; the rest (tensor payloads) was skipped by structure.
    pub bytes_read: u64,
    /// `sha256:` of the report's canonical JSON, as the evidence digest includes it.
    pub report_digest: String,
    pub scanned_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadArtifactQuery {
    /// The digest the client expects (`sha256:<hex>`); the upload is rejected with `digest_mismatch` and
    /// nothing is kept when the content hashes otherwise. The `x-expected-digest` header does the same.
    pub expected_digest: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub username: String,
    /// The full name printed on signatures.
    pub printed_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub active: bool,
    pub has_password: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    pub username: String,
    pub printed_name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Optional; needed to log in with a password (and to sign, later). Stored only as an argon2id hash.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printed_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Replaces the user's roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// A new password. Your own needs `current_password`; an admin setting someone else's leaves it
    /// unable to sign until its owner sets their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Your current password, to change your own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub username: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateTokenRequest {
    pub name: String,
    /// Days until the token expires: 1 to the server's maximum (365 unless configured); default 90.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
    /// Create the token for another user (needs `admin`).
    #[serde(default)]
    pub username: Option<String>,
}

/// A new token. `secret` is shown this once; the server keeps only its hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    pub secret: String,
    pub token: Token,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<Token>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// Name of the token to create (default `login`).
    #[serde(default)]
    pub token_name: Option<String>,
    /// Days until the token expires: 1 to the server's maximum (365 unless configured); default 30.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub user: User,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTokensQuery {
    /// List every user's tokens (needs `admin`).
    pub all: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditEntriesQuery {
    /// First entry index (default 0).
    pub start: Option<u64>,
    /// One past the last index (default: `start` + 1000, at most `start` + 10000, at most the log size).
    pub end: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionProofQuery {
    pub index: u64,
    pub tree_size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    pub index: u64,
    pub tree_size: u64,
    /// Base64 root of the tree of `tree_size` entries.
    pub root_hash: String,
    /// Base64 audit path, leaf to root (RFC 9162).
    pub hashes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyProofQuery {
    pub first: u64,
    pub second: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub first_root_hash: String,
    pub second_root_hash: String,
    /// Base64 consistency proof (RFC 9162).
    pub hashes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditEventsQuery {
    /// Only events on this target (`model/credit-default`, `user/alice`, …).
    pub target: Option<String>,
    /// Only events by this actor (a username, `system:…` or `anonymous`).
    pub actor: Option<String>,
    /// Only events with this action (`model.create`, `auth.refused`, …).
    pub action: Option<String>,
    /// Only events at or after this time (`YYYY-MM-DD` or RFC 3339 in UTC).
    pub since: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEventList {
    /// The events as recorded (each is the parsed leaf of the log).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The policy in force.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyInForce {
    /// 0 for the built-in default, else the stored revision.
    pub revision: i64,
    pub digest: String,
    /// `built-in` or `applied`.
    pub source: String,
    pub applied_by: Option<String>,
    pub applied_at: Option<String>,
    /// The policy file (TOML).
    pub text: String,
}

/// A policy file sent to be applied.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApplyPolicyRequest {
    /// The policy file (TOML).
    pub text: String,
    /// Only report what applying would do (the problems, the approvals it would not grant); apply nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What applying a policy did, or would do (`dry_run`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyApplied {
    /// The policy in force afterwards (for a dry run: still the old one).
    pub policy: PolicyInForce,
    pub dry_run: bool,
    /// The digest of the policy sent.
    pub digest: String,
    /// Approvals in force that the new policy would not grant, and what happens to them
    /// (`approvals_not_regranted` of the new policy: `keep`, `review_due` or `suspend`).
    pub approvals_not_regranted: Vec<ApprovalNotRegranted>,
    /// What is valid but will not work yet: a gate's evaluation on a dataset that is not registered.
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalNotRegranted {
    pub model: String,
    pub version: u32,
    pub stage: Stage,
    pub action: NotRegrantedAction,
    /// Why the new policy would not grant it: failed checks, missing sign-offs.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyProblem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignoffQuota {
    pub role: String,
    pub count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    pub name: String,
    pub expression: String,
    pub description: String,
    pub status: CheckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A dry run of the gate for one version and stage.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    pub model: String,
    pub version: u32,
    pub risk_tier: RiskTier,
    pub current_stage: Stage,
    pub target_stage: Stage,
    pub policy_digest: String,
    pub evidence_digest: String,
    /// Whether a request for this step is allowed at all (stage order).
    pub step_allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_problem: Option<String>,
    pub checks: Vec<CheckResult>,
    pub checks_pass: bool,
    pub signoffs_required: Vec<SignoffQuota>,
    /// Sign-offs still missing on the open request (all of them when there is none).
    pub signoffs_outstanding: Vec<SignoffQuota>,
    /// For each role still needed: who holds it and may sign (separation of duties applied).
    pub eligible_reviewers: BTreeMap<String, Vec<String>>,
    pub valid_for_days: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_request: Option<i64>,
    /// The evaluations the evidence holds, and how each was obtained.
    #[serde(default)]
    pub evaluations: Vec<EvidenceEvaluation>,
    /// Why the version is suspended, when it is: the gate refuses it until the suspension is lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<String>,
    /// How the version is watched after deployment, when it is deployed or has been watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<VersionMonitoring>,
}

/// One evaluation in a version's evidence.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvidenceEvaluation {
    pub id: i64,
    pub dataset: String,
    /// `model` (the server ran the version's own artifact) or `predictions` (the server computed the
    /// numbers from scores a client supplied).
    pub mode: EvaluationMode,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenRequest {
    pub model: String,
    pub version: u32,
    /// The stage to move the version into.
    pub stage: Stage,
    pub justification: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewRecord {
    pub id: i64,
    pub reviewer: String,
    pub printed_name: String,
    pub role: String,
    pub decision: ReviewDecision,
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meaning: Option<String>,
    pub evidence_digest: String,
    /// False when the evidence changed after this review: an approval then no longer counts.
    pub current: bool,
    pub signed_at: String,
    /// For approvals: the signed statement (canonical JSON) and its Ed25519 signature (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommentRecord {
    pub id: i64,
    pub author: String,
    pub body: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PromotionRequest {
    pub id: i64,
    pub model: String,
    pub version: u32,
    pub digest: String,
    pub from_stage: Stage,
    pub target_stage: Stage,
    pub kind: RequestKind,
    pub requester: String,
    pub justification: String,
    pub state: RequestState,
    pub policy_digest: String,
    pub evidence_digest: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
    #[serde(default)]
    pub reviews: Vec<ReviewRecord>,
    #[serde(default)]
    pub comments: Vec<CommentRecord>,
    /// Open requests: the evaluations the gate names (`evaluations` in the policy), which the server runs
    /// by itself when the request opens, with their jobs' states.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evaluations: Vec<GateEvaluationState>,
}

/// An evaluation a gate names, and where its job stands.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GateEvaluationState {
    pub dataset: String,
    /// The job that runs (or ran) it; absent when it could not be queued.
    pub job: Option<i64>,
    /// `queued`, `running`, `succeeded`, or `failed` (with `problem`).
    pub state: JobState,
    /// Why it failed or could not be queued (an unknown dataset, a version that is not ONNX …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestList {
    pub requests: Vec<PromotionRequest>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListRequestsQuery {
    /// Only requests in this state.
    pub state: Option<RequestState>,
    /// Only requests the caller opened.
    pub mine: Option<bool>,
    pub model: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubmitReview {
    pub decision: ReviewDecision,
    /// The role the reviewer acts in (one they hold, one the gate asks for).
    pub role: String,
    #[serde(default)]
    pub comment: String,
    /// For approvals: what the signature means ("approved for production as compliance").
    #[serde(default)]
    pub meaning: Option<String>,
    /// For approvals: the reviewer's password, checked in this call (an electronic signature).
    #[serde(default)]
    pub password: Option<String>,
    /// The evidence digest the reviewer was shown. When given and the version's evidence has changed
    /// since, the review is refused (409) and nothing is written: nobody signs what they did not see.
    #[serde(default)]
    pub evidence_digest: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubmitComment {
    pub body: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct WithdrawRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GateQuery {
    pub model: String,
    pub stage: Stage,
    /// `sha256:<hex>` of the artifact about to run.
    pub digest: String,
}

/// The gate's answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GateAnswer {
    pub allowed: bool,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    pub stage: Stage,
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SuspendVersion {
    pub reason: String,
}

/// The server's public key (Ed25519), which signs sign-offs and audit checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServerKeys {
    /// Base64 of the 32-byte Ed25519 public key.
    pub ed25519_public_key: String,
    /// The same key in signed-note verifier form, for `audit verify --public-key`.
    pub verifier_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RollbackRequest {
    /// The stage to roll back (its previous still-valid approved version returns).
    pub stage: Stage,
    pub justification: String,
}

/// A version's model card at one revision, with its completeness for the model's risk tier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelCardRevision {
    pub model: String,
    pub version: u32,
    pub revision: i64,
    /// `sha256:` of the card's canonical JSON; part of the version's evidence.
    pub digest: String,
    pub author: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The card (schema at `/api/v1/schemas/model-card.json`).
    #[schema(value_type = Object)]
    pub card: serde_json::Value,
    /// Whether every field the policy requires for the tier is filled in.
    pub complete: bool,
    /// The required fields left empty.
    pub missing: Vec<String>,
}

/// A new revision of a version's card.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetModelCard {
    #[schema(value_type = Object)]
    pub card: serde_json::Value,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CardRevisionSummary {
    pub revision: i64,
    pub digest: String,
    pub author: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CardRevisionList {
    pub revisions: Vec<CardRevisionSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CardFieldChange {
    pub path: String,
    #[schema(value_type = Object)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CardDiff {
    /// What is compared: `MODEL vN rR`.
    pub from: String,
    pub to: String,
    pub changes: Vec<CardFieldChange>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CardDiffQuery {
    /// Compare with this version's current card (a number, or `production` for the version in production);
    /// without it, the latest revision is compared with the one before it.
    pub against: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CardFormatQuery {
    /// Import: `hf` or `mct`. Export: `hf`, `mct`, `markdown` or `html`.
    pub format: String,
    /// Import only: a message for the new revision.
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportMapping {
    pub from: String,
    pub to: String,
}

/// The card revision an import made, and where each part of the source went.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CardImport {
    pub revision: ModelCardRevision,
    pub report: Vec<ImportMapping>,
}

/// What a dataset's columns mean.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatasetColumns {
    /// Which metrics apply (default `binary`).
    #[serde(default)]
    pub task: Option<DatasetTask>,
    pub label: String,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub sensitive: Vec<String>,
    #[serde(default)]
    pub weight: Option<String>,
    /// The label value that counts as positive (binary only).
    #[serde(default)]
    pub positive_label: String,
    /// Multiclass: the classes the label may take; a label outside them is refused (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterDataset {
    pub name: String,
    /// The digest of the uploaded file (`POST /api/v1/artifacts`).
    pub digest: String,
    /// Detected from the file when left out (and checked when given).
    #[serde(default)]
    pub format: Option<DatasetFormat>,
    pub schema: DatasetColumns,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub format: DatasetFormat,
    pub schema: DatasetColumns,
    pub rows: i64,
    /// Per column: type, nulls, and min/max/mean/std/quantiles or top categories.
    #[schema(value_type = Object)]
    pub profile: serde_json::Value,
    pub created_by: String,
    pub created_at: String,
}

/// A dataset as listed: everything but the profile (`GET /api/v1/datasets/{name}` has it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatasetSummary {
    pub name: String,
    pub digest: String,
    pub format: DatasetFormat,
    pub schema: DatasetColumns,
    pub rows: i64,
    pub created_by: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatasetList {
    pub datasets: Vec<DatasetSummary>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RunEvaluation {
    pub model: String,
    pub version: u32,
    pub dataset: String,
    /// Predictions mode: the digest of the uploaded predictions file (the dataset's label and sensitive
    /// columns plus the score column). Absent: model mode — the server runs the version's ONNX artifact
    /// on the dataset's feature columns.
    #[serde(default)]
    pub predictions_digest: Option<String>,
    /// The score column of the predictions file (predictions mode).
    #[serde(default)]
    pub score_column: Option<String>,
    /// Multiclass: the predictions file's column of predicted classes (`score_column` is then the prefix
    /// of its per-class probability columns, `<prefix><class>`, when it has them).
    #[serde(default)]
    pub prediction_column: Option<String>,
    /// Binary: a score at or above it is a positive decision (default 0.5).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Equal-width bins of the calibration table (2 to 100, default 10).
    #[serde(default)]
    pub bins: Option<usize>,
    /// Groups with fewer rows are flagged `small`, with a warning (default 30).
    #[serde(default)]
    pub minimum_group_size: Option<usize>,
    /// Resamples for the bootstrap intervals (default 200, at most 10,000; 0 for none).
    #[serde(default)]
    pub bootstrap_resamples: Option<usize>,
    /// Seed of the bootstrap (default 0); recorded, so a re-run gives the same intervals.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Pairs of sensitive attributes to report the intersections of, such as `[["sex", "race"]]`;
    /// reported under `by_group` and `fairness` as `sex & race`.
    #[serde(default)]
    pub intersections: Vec<[String; 2]>,
    /// Answer when the evaluation has finished (201 with the evaluation, or its error) instead of at once
    /// (202 with the job to follow). For scripts and small datasets.
    #[serde(default)]
    pub wait: bool,
}

/// An evaluation running (or run) in the background.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvaluationJob {
    pub id: i64,
    pub model: String,
    pub version: i64,
    pub dataset: String,
    pub state: JobState,
    /// 0 to 100.
    pub percent: f64,
    /// What it is doing: `loading data`, `running the model`, `robustness`, `metrics`, `bootstrap`, `saving`.
    pub phase: String,
    /// Why it failed or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The error as the API would have answered it, when the job failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    pub cancel_requested: bool,
    /// The evaluation it produced, once succeeded (`GET /api/v1/evaluations/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_id: Option<i64>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Evaluation {
    pub id: i64,
    pub model: String,
    pub version: i64,
    pub dataset: String,
    pub mode: EvaluationMode,
    pub verified: bool,
    /// Digests of every input.
    #[schema(value_type = Object)]
    pub inputs: serde_json::Value,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub engine: String,
    /// `overall`, `by_group` per sensitive attribute, `fairness` per attribute, `warnings`.
    #[schema(value_type = Object)]
    pub results: serde_json::Value,
    pub digest: String,
    pub created_by: String,
    pub created_at: String,
    /// `counted` (the policy reads it), `exploratory` or `superseded` (set aside).
    #[serde(default = "counted")]
    pub status: EvaluationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

fn counted() -> EvaluationStatus {
    EvaluationStatus::Counted
}

/// Whether the policy reads an evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MarkEvaluation {
    pub status: EvaluationStatus,
    /// Why: it stays on record with the evaluation and in the audit log.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvaluationList {
    pub evaluations: Vec<Evaluation>,
}

/// Which evaluation jobs to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobListQuery {
    /// Only jobs in this state; all when absent.
    #[serde(default)]
    pub state: Option<JobState>,
    /// Only the jobs of this model.
    #[serde(default)]
    pub model: Option<String>,
    /// At most this many, newest first (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvaluationJobList {
    pub jobs: Vec<EvaluationJob>,
}

wire_enum! {
    /// Where a webhook delivery stands.
    DeliveryState {
        /// Not delivered yet: waiting for its turn or for a retry.
        Pending = "pending",
        /// The receiver answered 2xx.
        Delivered = "delivered",
        /// Given up: a status that is not retried, retries ran out, or the subscription went away.
        Failed = "failed",
    }
}

/// A webhook subscription to create (admins).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where events are POSTed: http(s), on a public address unless the server allow-lists the host.
    pub url: String,
    /// Event types (`version.promoted`, `request.opened`, …; `GET /api/v1/webhooks/event-types`) or `*`.
    pub events: Vec<String>,
    /// Only this model's events.
    #[serde(default)]
    pub model: Option<String>,
    /// `whsec_<base64 of 24 to 62 bytes>`; generated (and returned this once) when absent.
    #[serde(default)]
    #[schema(
        pattern = r"^whsec_(?:[A-Za-z0-9+/]{4}){8,20}(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
    )]
    pub secret: Option<String>,
}

/// A webhook subscription. Its secret is never returned, except once when the server made it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub model: Option<String>,
    pub created_at: String,
    pub created_by: String,
    /// Set when deliveries stopped for good (the receiver answered 410 Gone).
    pub disabled_at: Option<String>,
    pub disabled_reason: Option<String>,
    /// During a secret rotation: deliveries are signed with the old secret too until then.
    pub previous_secret_until: Option<String>,
}

/// A new subscription (or a rotated secret): `secret` is present only when the server generated it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<Webhook>,
}

/// A secret rotation: the new secret (generated when absent); the old one keeps signing for
/// `overlap_hours` (default 24).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateWebhookSecretRequest {
    /// `whsec_<base64 of 24 to 62 bytes>`; generated (and returned this once) when absent.
    #[serde(default)]
    #[schema(
        pattern = r"^whsec_(?:[A-Za-z0-9+/]{4}){8,20}(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
    )]
    pub secret: Option<String>,
    #[serde(default)]
    #[schema(maximum = 720)]
    pub overlap_hours: Option<u32>,
}

/// A test event recorded for one subscription (delivered to it alone).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookTest {
    /// The audit sequence number of the `webhook.test` event.
    pub seq: u64,
    /// The `webhook-id` (and CloudEvents `id`) it is delivered with.
    pub event_id: String,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    pub attempt: u32,
    pub at: String,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why there was no answer (timeout, connection refused, a refused address).
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// One event's delivery to one subscription, with every attempt.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookDelivery {
    /// The `webhook-id` and CloudEvents `id`.
    pub event_id: String,
    /// The audit log entry it carries.
    pub seq: u64,
    pub event_type: String,
    pub subject: String,
    pub state: DeliveryState,
    pub attempts: Vec<DeliveryAttempt>,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<String>,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveryList {
    pub deliveries: Vec<WebhookDelivery>,
}

/// The event types a subscription may name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookEventTypes {
    pub event_types: Vec<String>,
}

/// A batch of production inputs (and predictions) to compare with the reference: an uploaded CSV or
/// Parquet file (`POST /api/v1/artifacts`, streamed and content-addressed) named by its digest.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushMonitoringBatch {
    pub digest: String,
    /// A registered dataset to compare with instead of the policy's reference.
    #[serde(default)]
    pub reference: Option<String>,
    /// The batch's column of outcomes, when they are known already.
    #[serde(default)]
    pub label_column: Option<String>,
    /// The batch's column of row ids (for outcomes that arrive later).
    #[serde(default)]
    pub row_id_column: Option<String>,
    /// The batch's column of the model's scores (binary: the probability of the positive class;
    /// regression: the prediction), used when labels are in the batch or arrive later; default `score`.
    #[serde(default)]
    pub score_column: Option<String>,
}

/// Outcomes that arrived after the predictions: an uploaded CSV or Parquet file of row ids and labels,
/// joined by row id onto the version's batches that carried row ids.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordOutcomes {
    pub digest: String,
    /// The file's column of row ids, matched against each batch's `row_id_column`.
    pub row_id_column: String,
    /// The file's column of outcomes (labels).
    pub label_column: String,
}

/// Outcomes on record: how many rows joined, the performance and fairness computed on them, the
/// breaches found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MonitoringOutcomes {
    pub id: i64,
    pub model: String,
    pub version: i64,
    pub digest: String,
    pub row_id_column: String,
    pub label_column: String,
    /// Rows in the file, rows joined to a batch, rows whose row id no batch carries, and rows repeating
    /// an earlier row id of the file.
    pub rows: u64,
    pub matched: u64,
    pub unknown: u64,
    pub duplicate: u64,
    /// False when fewer than the policy's `min_batch_rows` rows joined: stored, not judged.
    pub judged: bool,
    /// `performance` (the evaluation report on the joined rows), `baseline` (the approving evaluation's
    /// overall metrics), `unknown_row_ids` (the first few), `batches` (the batch ids joined onto), `note`.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
    pub report_digest: String,
    pub breaches: Vec<MonitoringBreach>,
    pub created_at: String,
    pub created_by: String,
}

/// A limit a batch or KPI crossed, and what the policy does about it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MonitoringBreach {
    /// `drift`, `kpi`, `performance` or `fairness`.
    pub kind: String,
    /// `notify`, `review` or `suspend`.
    pub action: String,
    pub reason: String,
}

/// A monitoring batch: what it was compared with, the drift report, and the breaches it found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MonitoringBatch {
    pub id: i64,
    pub model: String,
    pub version: i64,
    pub digest: String,
    /// The reference dataset's name and the digest of its file.
    pub reference: String,
    pub reference_digest: String,
    pub rows: u64,
    pub label_column: Option<String>,
    pub row_id_column: Option<String>,
    pub score_column: Option<String>,
    /// False when the batch had fewer rows than the policy's `min_batch_rows`: stored, not judged.
    pub judged: bool,
    /// The drift report: `features.<name>` (`psi`, `jensen_shannon`, `wasserstein_normed`, `ks_pvalue` or
    /// `chi2_pvalue`, `drifted`, …), `dataset` (`drift_share`, `drifted`, …) and `settings`; for a batch
    /// with labels also `performance` (`report`, `baseline`, `note`).
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
    pub report_digest: String,
    pub breaches: Vec<MonitoringBreach>,
    pub created_at: String,
    pub created_by: String,
}

/// A KPI observation to record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordKpi {
    /// 1 to 64 characters, no control characters.
    #[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,64}$")]
    pub name: String,
    pub value: f64,
    /// When it was observed (`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS[.fff]Z`, UTC); now when absent.
    #[serde(default)]
    #[schema(
        pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,3})?Z)?$"
    )]
    pub at: Option<String>,
    /// The version it is about; the version in production when absent.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub version: Option<u32>,
}

/// A KPI observation, with the policy's bounds for it and any breach.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KpiObservation {
    pub id: i64,
    pub model: String,
    pub version: Option<i64>,
    pub name: String,
    pub value: f64,
    pub observed_at: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub breaches: Vec<MonitoringBreach>,
    pub recorded_by: String,
}

/// How a model is watched: the policy's monitoring for its tier, its latest batches, its KPIs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MonitoringState {
    pub model: String,
    pub risk_tier: RiskTier,
    /// Whether the policy has a monitoring section for the tier.
    pub monitored: bool,
    pub min_batch_rows: Option<u64>,
    /// `notify`, `review` or `suspend`.
    pub on_drift: Option<String>,
    /// The latest batches (of the version asked for), newest first.
    pub batches: Vec<MonitoringBatch>,
    /// The latest outcome files (of the version asked for), newest first.
    pub outcomes: Vec<MonitoringOutcomes>,
    /// The latest observation of each KPI.
    pub kpis: Vec<KpiObservation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serde, `as_str`, `Display` and `FromStr` agree on every value of every wire enum.
    fn agrees<T>(all: &[T])
    where
        T: Copy + fmt::Debug + fmt::Display + PartialEq + Serialize + serde::de::DeserializeOwned,
        T: std::str::FromStr<Err = UnknownValue>,
    {
        for value in all {
            let text = value.to_string();
            assert_eq!(
                serde_json::to_value(value).unwrap(),
                serde_json::json!(text)
            );
            assert_eq!(
                serde_json::from_value::<T>(serde_json::json!(text)).unwrap(),
                *value
            );
            assert_eq!(text.parse::<T>().unwrap(), *value);
        }
        let unknown = "nonsense".parse::<T>().unwrap_err();
        assert_eq!(unknown.allowed.len(), all.len());
        assert!(unknown.to_string().contains("\"nonsense\""), "{unknown}");
    }

    #[test]
    fn wire_enums_agree_with_their_spellings() {
        agrees(RiskTier::ALL);
        agrees(Stage::ALL);
        agrees(RequestState::ALL);
        agrees(RequestKind::ALL);
        agrees(ReviewDecision::ALL);
        agrees(ApprovalStatus::ALL);
        agrees(EvaluationMode::ALL);
        agrees(EvaluationStatus::ALL);
        agrees(JobState::ALL);
        agrees(CheckStatus::ALL);
        agrees(DatasetTask::ALL);
        agrees(DatasetFormat::ALL);
        agrees(NotRegrantedAction::ALL);
        agrees(DeliveryState::ALL);
        assert_eq!(ReviewDecision::RequestChanges.as_str(), "request_changes");
        assert_eq!(ApprovalStatus::ReviewDue.as_str(), "review_due");
    }

    #[test]
    fn an_evaluation_without_a_status_is_counted() {
        let evaluation = serde_json::json!({
            "id": 1, "model": "m", "version": 1, "dataset": "d", "mode": "model", "verified": true,
            "inputs": {}, "settings": {}, "engine": "e", "results": {}, "digest": "sha256:00",
            "created_by": "a", "created_at": "t",
        });
        let evaluation: Evaluation = serde_json::from_value(evaluation).unwrap();
        assert_eq!(evaluation.status, EvaluationStatus::Counted);
    }
}
