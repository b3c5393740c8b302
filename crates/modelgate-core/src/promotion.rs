//! The rules of promotion: who may sign off a request (separation of duties), what is still needed, when
//! a request is decided, and what the deployment gate answers. Pure functions of their inputs; time is a
//! parameter.

use crate::access::Denied;
use crate::{Role, Stage, Timestamp, User, Username, VersionNumber};
use std::fmt;

/// So many distinct people holding `role` must approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleQuota {
    pub role: Role,
    pub count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestState {
    Open,
    Approved,
    Rejected,
    Withdrawn,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(text: &str) -> Result<Self, crate::InvalidInput> {
        [Self::Open, Self::Approved, Self::Rejected, Self::Withdrawn]
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| {
                crate::InvalidInput::new(
                    "state",
                    format!("must be one of open, approved, rejected, withdrawn (got {text:?})"),
                )
            })
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewDecision {
    Approve,
    Reject,
    RequestChanges,
}

impl ReviewDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::RequestChanges => "request_changes",
        }
    }

    pub fn parse(text: &str) -> Result<Self, crate::InvalidInput> {
        [Self::Approve, Self::Reject, Self::RequestChanges]
            .into_iter()
            .find(|decision| decision.as_str() == text)
            .ok_or_else(|| {
                crate::InvalidInput::new(
                    "decision",
                    format!("must be one of approve, reject, request_changes (got {text:?})"),
                )
            })
    }
}

/// The people whose involvement bars them from approving a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestParties {
    /// Who registered the version (`created_by`).
    pub version_creator: String,
    /// Who opened the request.
    pub requester: Username,
    pub model_owner: Username,
}

/// An approval that still counts (given for the current evidence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedApproval {
    pub reviewer: Username,
    pub role: Role,
}

/// Decides whether `reviewer` may review in `role`: they must hold the role and the gate must ask for it;
/// for an approval, separation of duties applies too. An admin is not exempt from any of it.
pub fn check_reviewer(
    reviewer: &User,
    role: &Role,
    decision: ReviewDecision,
    parties: &RequestParties,
    owner_may_approve: bool,
    required: &[RoleQuota],
    counted: &[CountedApproval],
) -> Result<(), Denied> {
    let name = reviewer.username.as_str();
    if !reviewer.has_role(role.as_str()) {
        return Err(Denied(format!(
            "user {name:?} does not hold the role {role}; they may review only in roles they hold"
        )));
    }
    let Some(quota) = required.iter().find(|quota| &quota.role == role) else {
        let asked: Vec<String> = required
            .iter()
            .map(|quota| format!("{} {}", quota.count, quota.role))
            .collect();
        return Err(Denied(format!(
            "this gate asks for no {role} sign-off (it asks for {})",
            if asked.is_empty() {
                "none".to_owned()
            } else {
                asked.join(", ")
            }
        )));
    };
    if decision != ReviewDecision::Approve {
        return Ok(());
    }
    if parties.version_creator == name {
        return Err(Denied(format!(
            "separation of duties: {name:?} registered this version and may not approve it"
        )));
    }
    if parties.requester == reviewer.username {
        return Err(Denied(format!(
            "separation of duties: {name:?} opened this request and may not approve it"
        )));
    }
    if !owner_may_approve && parties.model_owner == reviewer.username {
        return Err(Denied(format!(
            "separation of duties: {name:?} owns the model, and the policy does not let owners approve"
        )));
    }
    if let Some(previous) = counted
        .iter()
        .find(|approval| approval.reviewer == reviewer.username)
    {
        return Err(Denied(format!(
            "separation of duties: {name:?} already approved this request as {}; one person counts once",
            previous.role
        )));
    }
    let given = counted
        .iter()
        .filter(|approval| &approval.role == role)
        .count();
    if given >= quota.count as usize {
        return Err(Denied(format!(
            "the gate needs {} {role} approval(s) and already has them",
            quota.count
        )));
    }
    Ok(())
}

/// The sign-offs still missing.
pub fn outstanding(required: &[RoleQuota], counted: &[CountedApproval]) -> Vec<RoleQuota> {
    required
        .iter()
        .filter_map(|quota| {
            let given = counted
                .iter()
                .filter(|approval| approval.role == quota.role)
                .count() as u32;
            (given < quota.count).then(|| RoleQuota {
                role: quota.role.clone(),
                count: quota.count - given,
            })
        })
        .collect()
}

/// Whether a version may be promoted from `from` into `target` under the stage order: one stage
/// forward at a time (or back into an earlier stage only as a rollback, decided elsewhere).
pub fn check_stage_step(stages: &[Stage], from: Stage, target: Stage) -> Result<(), Denied> {
    let position = |stage: Stage| stages.iter().position(|candidate| *candidate == stage);
    match (position(from), position(target)) {
        (_, None) => Err(Denied(format!("{target} is not a stage of the policy"))),
        (None, _) => Err(Denied(format!(
            "the version is {from}; only versions in a stage of the policy can be promoted"
        ))),
        (Some(a), Some(b)) if b == a + 1 => Ok(()),
        (Some(a), Some(b)) if b <= a => Err(Denied(format!(
            "the version is already in {from}; {target} is not ahead of it"
        ))),
        (Some(a), Some(_)) => Err(Denied(format!(
            "the policy promotes one stage at a time: a version in {from} goes to {} next, not {target}",
            stages[a + 1]
        ))),
    }
}

/// A version holding a stage, as the gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageOccupant {
    pub version: VersionNumber,
    pub digest: String,
    pub not_after: Option<Timestamp>,
    pub suspended: Option<String>,
}

/// The standing of an approval at a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    Active,
    ReviewDue,
    Expired,
    Suspended,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::ReviewDue => "review_due",
            Self::Expired => "expired",
            Self::Suspended => "suspended",
        }
    }
}

pub fn approval_status(
    occupant: &StageOccupant,
    now: Timestamp,
    review_due_days: u32,
) -> ApprovalStatus {
    if occupant.suspended.is_some() {
        return ApprovalStatus::Suspended;
    }
    match occupant.not_after {
        Some(not_after) if now >= not_after => ApprovalStatus::Expired,
        Some(not_after) if now >= not_after.plus_seconds(-i64::from(review_due_days) * 86_400) => {
            ApprovalStatus::ReviewDue
        }
        _ => ApprovalStatus::Active,
    }
}

/// The gate's answer: may `digest` run in the stage now?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateAnswer {
    pub allowed: bool,
    pub version: Option<VersionNumber>,
    pub reasons: Vec<String>,
    pub not_after: Option<Timestamp>,
}

pub fn gate_decision(
    stage: Stage,
    occupants: &[StageOccupant],
    digest: &str,
    now: Timestamp,
) -> GateAnswer {
    let Some(occupant) = occupants.iter().find(|occupant| occupant.digest == digest) else {
        let reason = if occupants.is_empty() {
            format!("no version is approved for {stage}")
        } else {
            let held: Vec<String> = occupants
                .iter()
                .map(|occupant| format!("version {} ({})", occupant.version, occupant.digest))
                .collect();
            format!(
                "{digest} is not the approved version in {stage}; {stage} holds {}",
                held.join(", ")
            )
        };
        return GateAnswer {
            allowed: false,
            version: None,
            reasons: vec![reason],
            not_after: None,
        };
    };
    let mut reasons = Vec::new();
    if let Some(reason) = &occupant.suspended {
        reasons.push(format!(
            "version {} is suspended: {reason}",
            occupant.version
        ));
    }
    if let Some(not_after) = occupant.not_after
        && now >= not_after
    {
        reasons.push(format!(
            "the approval of version {} expired at {}; re-validate and re-approve it",
            occupant.version,
            not_after.to_rfc3339()
        ));
    }
    GateAnswer {
        allowed: reasons.is_empty(),
        version: Some(occupant.version),
        reasons,
        not_after: occupant.not_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, roles: &[&str]) -> User {
        User {
            id: 1,
            username: Username::parse(name).unwrap(),
            printed_name: name.to_owned(),
            email: None,
            roles: roles
                .iter()
                .map(|role| Role::parse(role).unwrap())
                .collect(),
            active: true,
            has_password: true,
            created_at: Timestamp::from_unix_millis(0),
        }
    }

    fn role(name: &str) -> Role {
        Role::parse(name).unwrap()
    }

    fn quota(name: &str, count: u32) -> RoleQuota {
        RoleQuota {
            role: role(name),
            count,
        }
    }

    fn approval(name: &str, role_name: &str) -> CountedApproval {
        CountedApproval {
            reviewer: Username::parse(name).unwrap(),
            role: role(role_name),
        }
    }

    /// Reviewer, role, decision, owner may approve, approvals so far, expected refusal text.
    type ReviewerCase = (
        User,
        &'static str,
        ReviewDecision,
        bool,
        Vec<CountedApproval>,
        Option<&'static str>,
    );

    #[test]
    fn separation_of_duties_as_a_table() {
        let parties = RequestParties {
            version_creator: "dev".to_owned(),
            requester: Username::parse("req").unwrap(),
            model_owner: Username::parse("owner").unwrap(),
        };
        let required = [quota("validator", 1), quota("risk_board", 2)];
        let approve = ReviewDecision::Approve;
        let cases: Vec<ReviewerCase> = vec![
            (
                user("val", &["validator"]),
                "validator",
                approve,
                false,
                vec![],
                None,
            ),
            (
                user("val", &["compliance"]),
                "validator",
                approve,
                false,
                vec![],
                Some("does not hold"),
            ),
            (
                user("val", &["compliance"]),
                "compliance",
                approve,
                false,
                vec![],
                Some("asks for no compliance"),
            ),
            (
                user("dev", &["validator"]),
                "validator",
                approve,
                false,
                vec![],
                Some("registered this version"),
            ),
            (
                user("req", &["validator"]),
                "validator",
                approve,
                false,
                vec![],
                Some("opened this request"),
            ),
            (
                user("owner", &["validator"]),
                "validator",
                approve,
                false,
                vec![],
                Some("owns the model"),
            ),
            (
                user("owner", &["validator"]),
                "validator",
                approve,
                true,
                vec![],
                None,
            ),
            (
                user("dev", &["validator", "admin"]),
                "validator",
                approve,
                false,
                vec![],
                Some("registered"),
            ),
            (
                user("both", &["validator", "risk_board"]),
                "risk_board",
                approve,
                false,
                vec![approval("both", "validator")],
                Some("one person counts once"),
            ),
            (
                user("val2", &["validator"]),
                "validator",
                approve,
                false,
                vec![approval("val", "validator")],
                Some("already has them"),
            ),
            (
                user("rb2", &["risk_board"]),
                "risk_board",
                approve,
                false,
                vec![approval("rb1", "risk_board")],
                None,
            ),
            (
                user("dev", &["validator"]),
                "validator",
                ReviewDecision::Reject,
                false,
                vec![],
                None,
            ),
            (
                user("dev", &["compliance"]),
                "validator",
                ReviewDecision::Reject,
                false,
                vec![],
                Some("does not hold"),
            ),
        ];
        for (reviewer, role_name, decision, owner_may_approve, counted, expected) in cases {
            let outcome = check_reviewer(
                &reviewer,
                &role(role_name),
                decision,
                &parties,
                owner_may_approve,
                &required,
                &counted,
            );
            match expected {
                None => assert!(
                    outcome.is_ok(),
                    "{} as {role_name}: {outcome:?}",
                    reviewer.username
                ),
                Some(text) => {
                    let denied = outcome.unwrap_err();
                    assert!(
                        denied.0.contains(text),
                        "{} as {role_name}: {}",
                        reviewer.username,
                        denied.0
                    );
                }
            }
        }
    }

    #[test]
    fn outstanding_sign_offs() {
        let required = [quota("validator", 1), quota("risk_board", 2)];
        assert_eq!(outstanding(&required, &[]), required.to_vec());
        assert_eq!(
            outstanding(
                &required,
                &[approval("a", "risk_board"), approval("b", "validator")]
            ),
            vec![quota("risk_board", 1)]
        );
        assert!(
            outstanding(
                &required,
                &[
                    approval("a", "risk_board"),
                    approval("b", "validator"),
                    approval("c", "risk_board")
                ]
            )
            .is_empty()
        );
    }

    #[test]
    fn stages_move_one_step_forward() {
        let stages = [Stage::Development, Stage::Staging, Stage::Production];
        assert!(check_stage_step(&stages, Stage::Development, Stage::Staging).is_ok());
        assert!(check_stage_step(&stages, Stage::Staging, Stage::Production).is_ok());
        assert!(
            check_stage_step(&stages, Stage::Development, Stage::Production)
                .unwrap_err()
                .0
                .contains("one stage at a time")
        );
        assert!(check_stage_step(&stages, Stage::Production, Stage::Staging).is_err());
        assert!(check_stage_step(&stages, Stage::Archived, Stage::Staging).is_err());
    }

    #[test]
    fn the_gate_and_approval_status() {
        let day = 86_400_000;
        let occupant = StageOccupant {
            version: VersionNumber::new(3).unwrap(),
            digest: "sha256:aa".to_owned(),
            not_after: Some(Timestamp::from_unix_millis(100 * day)),
            suspended: None,
        };
        let at = |days: i64| Timestamp::from_unix_millis(days * day);
        let yes = gate_decision(
            Stage::Production,
            std::slice::from_ref(&occupant),
            "sha256:aa",
            at(10),
        );
        assert!(yes.allowed && yes.reasons.is_empty() && yes.version == Some(occupant.version));
        let other = gate_decision(
            Stage::Production,
            std::slice::from_ref(&occupant),
            "sha256:bb",
            at(10),
        );
        assert!(!other.allowed && other.reasons[0].contains("not the approved version"));
        let expired = gate_decision(
            Stage::Production,
            std::slice::from_ref(&occupant),
            "sha256:aa",
            at(100),
        );
        assert!(!expired.allowed && expired.reasons[0].contains("expired"));
        let suspended = StageOccupant {
            suspended: Some("drift".to_owned()),
            ..occupant.clone()
        };
        let answer = gate_decision(
            Stage::Production,
            std::slice::from_ref(&suspended),
            "sha256:aa",
            at(10),
        );
        assert!(!answer.allowed && answer.reasons[0].contains("suspended: drift"));
        assert!(!gate_decision(Stage::Staging, &[], "sha256:aa", at(1)).allowed);
        assert_eq!(
            approval_status(&occupant, at(10), 30),
            ApprovalStatus::Active
        );
        assert_eq!(
            approval_status(&occupant, at(75), 30),
            ApprovalStatus::ReviewDue
        );
        assert_eq!(
            approval_status(&occupant, at(100), 30),
            ApprovalStatus::Expired
        );
        assert_eq!(
            approval_status(&suspended, at(10), 30),
            ApprovalStatus::Suspended
        );
    }
}

/// The text of a policy revision in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRevision {
    pub revision: i64,
    pub digest: String,
    pub text: String,
    pub applied_by: String,
    pub applied_at: Timestamp,
}

/// Whether a request moves a version forward or brings a previous approved version back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Promotion,
    Rollback,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promotion => "promotion",
            Self::Rollback => "rollback",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "promotion" => Some(Self::Promotion),
            "rollback" => Some(Self::Rollback),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionRequest {
    pub id: i64,
    pub model_name: crate::ModelName,
    pub version: VersionNumber,
    pub digest: String,
    pub from_stage: Stage,
    pub target_stage: Stage,
    pub kind: RequestKind,
    pub requester: Username,
    pub justification: String,
    pub state: RequestState,
    pub policy_digest: String,
    pub evidence_digest: String,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    pub decision_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub id: i64,
    pub request_id: i64,
    pub reviewer: Username,
    pub printed_name: String,
    pub role: Role,
    pub decision: ReviewDecision,
    pub comment: String,
    pub meaning: Option<String>,
    pub evidence_digest: String,
    /// For approvals: the canonical JSON of the signed statement, and its Ed25519 signature (base64).
    pub signed_record: Option<String>,
    pub signature: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestComment {
    pub id: i64,
    pub author: Username,
    pub body: String,
    pub created_at: Timestamp,
}

/// A review about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    pub role: Role,
    pub decision: ReviewDecision,
    pub comment: String,
    pub meaning: Option<String>,
    pub signed_record: Option<String>,
    pub signature: Option<String>,
}

/// What the policy demands of one request, computed by the server from the policy and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateTerms {
    pub signoffs: Vec<RoleQuota>,
    pub owner_may_approve: bool,
    pub checks_pass: bool,
    pub valid_for_days: u32,
    pub single_occupancy: bool,
    pub policy_digest: String,
    pub evidence_digest: String,
}
