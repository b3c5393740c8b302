//! The records of the registry as the domain sees them: models, versions, users, tokens.

use crate::{
    Digest, ModelName, RiskTier, Role, Stage, TagKey, Timestamp, TokenName, Username, VersionNumber,
};
use std::collections::BTreeMap;

/// Who did something: a user acting through one of their tokens (or a password login), or the server
/// itself (bootstrap, background work, offline admin commands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User {
        user_id: i64,
        username: Username,
        token_id: Option<String>,
    },
    System {
        reason: &'static str,
    },
    /// A caller who could not be authenticated (recorded only for refused attempts).
    Anonymous,
}

impl Actor {
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Self::User { user_id, .. } => Some(*user_id),
            Self::System { .. } | Self::Anonymous => None,
        }
    }

    /// The name under which the actor appears in records (`alice`, or `system`).
    pub fn display_name(&self) -> &str {
        match self {
            Self::User { username, .. } => username.as_str(),
            Self::System { .. } => "system",
            Self::Anonymous => "anonymous",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: Username,
    pub printed_name: String,
    pub email: Option<String>,
    pub roles: Vec<Role>,
    pub active: bool,
    pub has_password: bool,
    pub created_at: Timestamp,
}

impl User {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held.as_str() == role)
    }

    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(Role::is_admin)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub username: Username,
    pub printed_name: String,
    pub email: Option<String>,
    pub roles: Vec<Role>,
    /// An argon2id PHC string; the plain password never reaches the store.
    pub password_hash: Option<String>,
}

/// An API token as stored: its public id and metadata; the secret exists only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub user_id: i64,
    pub username: Username,
    pub name: TokenName,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl TokenRecord {
    /// Whether the token may authenticate a request at `now`.
    pub fn is_usable_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| now < expiry)
    }
}

/// A browser session of the web UI as stored; the cookie's secret exists only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Names the session in audit records (`ses_…`); never the secret.
    pub public_id: String,
    pub user_id: i64,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The absolute end, however active the session is.
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl SessionRecord {
    /// Whether the session may authenticate a page at `now`: not signed out, not past its absolute end,
    /// and used within the last `idle_millis`.
    pub fn is_usable_at(&self, now: Timestamp, idle_millis: i64) -> bool {
        self.revoked_at.is_none()
            && now < self.expires_at
            && now.unix_millis() - self.last_seen_at.unix_millis() < idle_millis
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: User,
    pub token_id: Option<String>,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor::User {
            user_id: self.user.id,
            username: self.user.username.clone(),
            token_id: self.token_id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub id: i64,
    pub name: ModelName,
    pub owner: Username,
    pub risk_tier: RiskTier,
    pub description: String,
    pub intended_use: String,
    pub tags: BTreeMap<TagKey, String>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub archived_at: Option<Timestamp>,
    /// How many versions were ever created (numbers are never reused).
    pub version_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewModel {
    pub name: ModelName,
    pub owner: Username,
    pub risk_tier: RiskTier,
    pub description: String,
    pub intended_use: String,
    pub tags: BTreeMap<TagKey, String>,
}

/// Where a version came from. Immutable once the version exists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lineage {
    pub code_repository: Option<String>,
    pub code_commit: Option<String>,
    pub training_data_uri: Option<String>,
    pub training_data_digest: Option<Digest>,
    pub parameters: BTreeMap<String, String>,
    /// A JSON object as text, checked at the edge; free-form.
    pub metadata_json: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: i64,
    pub model_name: ModelName,
    pub number: VersionNumber,
    pub digest: Digest,
    pub size_bytes: u64,
    pub format: String,
    pub media_type: String,
    pub lineage: Lineage,
    pub description: String,
    pub tags: BTreeMap<TagKey, String>,
    pub stage: Stage,
    pub created_by: String,
    pub created_at: Timestamp,
    /// The approval that put the version in its stage, if one did.
    pub approval: Option<VersionApproval>,
    /// Why a risk officer suspended the version, if they did.
    pub suspension: Option<String>,
    /// Bumped by every write to the version's evidence (card revision, evaluation); a decision prepared
    /// at one revision is not applied at another.
    pub evidence_revision: i64,
    /// What the last evidence write was ("card revision 3").
    pub last_evidence_change: Option<String>,
    /// Evidence that changed after the version's approval, when the policy let the change through; the
    /// approval is `review_due` until the version is approved again.
    pub evidence_changed_after_approval: Option<String>,
    /// A later policy would not grant the version's approval, and says to review it.
    pub approval_review_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionApproval {
    /// The stage the approval is for.
    pub stage: crate::Stage,
    pub approved_at: Timestamp,
    pub not_after: Timestamp,
    pub request_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    pub digest: Digest,
    pub format: String,
    pub media_type: String,
    pub lineage: Lineage,
    pub description: String,
    pub tags: BTreeMap<TagKey, String>,
}

/// A stored artifact: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRecord {
    pub digest: Digest,
    pub size_bytes: u64,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelFilter {
    pub name_prefix: Option<String>,
    pub owner: Option<Username>,
    pub risk_tier: Option<RiskTier>,
    /// Models that have at least one version in this stage.
    pub stage: Option<Stage>,
    pub tag: Option<(TagKey, Option<String>)>,
    pub include_archived: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionFilter {
    pub stage: Option<Stage>,
    pub tag: Option<(TagKey, Option<String>)>,
}

/// A request for one page of a listing in its stable order, continuing after `after` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<K> {
    pub after: Option<K>,
    pub limit: u32,
}

impl<K> PageRequest<K> {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;

    pub fn first(limit: u32) -> Self {
        Self {
            after: None,
            limit: limit.clamp(1, Self::MAX_LIMIT),
        }
    }
}

/// One page of results and the key to continue after, if more may follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    pub next_after: Option<K>,
}

/// How an evaluation's numbers were obtained: the server ran the version's own artifact (`model`), or the
/// server computed them from scores a client supplied (`predictions`). Both are computed by the server;
/// only `model` proves the numbers belong to the artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvaluationMode {
    Model,
    Predictions,
}

impl EvaluationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Predictions => "predictions",
        }
    }

    pub fn parse(text: &str) -> Result<Self, crate::InvalidInput> {
        match text {
            "model" => Ok(Self::Model),
            "predictions" => Ok(Self::Predictions),
            _ => Err(crate::InvalidInput::new(
                "mode",
                format!("must be model or predictions (got {text:?})"),
            )),
        }
    }
}
