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
    /// The model's owner now.
    pub model_owner: Username,
    /// The model's owner when the request was opened (a later change of owner does not let the former
    /// owner approve).
    pub owner_at_open: Option<Username>,
}

/// An approval that still counts (given for the current evidence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedApproval {
    pub reviewer: Username,
    pub role: Role,
}

/// What the policy lets the parties of a request do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeparationRules {
    /// The model's owner may count as an approver.
    pub owner_may_approve: bool,
    /// An account holding `admin` may count as an approver (an admin can make accounts and grant roles,
    /// so by default their signature never counts).
    pub admins_may_approve: bool,
}

/// Decides whether `reviewer` may review in `role`: they must hold the role and the gate must ask for it;
/// for an approval, separation of duties applies too. An admin is not exempt from any of it, and by
/// default an admin's approval does not count at all.
pub fn check_reviewer(
    reviewer: &User,
    role: &Role,
    decision: ReviewDecision,
    parties: &RequestParties,
    rules: SeparationRules,
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
    let owned = parties.model_owner == reviewer.username
        || parties.owner_at_open.as_ref() == Some(&reviewer.username);
    if !rules.owner_may_approve && owned {
        return Err(Denied(format!(
            "separation of duties: {name:?} owns the model (or owned it when the request was opened), \
             and the policy does not let owners approve"
        )));
    }
    if !rules.admins_may_approve && reviewer.is_admin() {
        return Err(Denied(format!(
            "separation of duties: {name:?} holds admin, and the policy does not let admins approve \
             (admins_may_approve = false); approve from an account without admin"
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

/// The approvals that count toward a request's sign-offs: an earlier approval counts only while its giver
/// could still give it, so someone who has since become a party of the request (the model's owner, say)
/// no longer counts; and one person counts once, in the role of their first approval that still counts
/// (someone who approved in one role, lost it, approved in another and got the first back does not
/// fill two roles). The decision, the inbox and the request page all count with this. `approvals` come
/// oldest first.
pub fn counting(
    approvals: &[CountedApproval],
    parties: &RequestParties,
    rules: SeparationRules,
) -> Vec<CountedApproval> {
    let mut seen: Vec<&Username> = Vec::new();
    approvals
        .iter()
        .filter(|approval| !is_party(&approval.reviewer, parties, rules))
        .filter(|approval| {
            if seen.contains(&&approval.reviewer) {
                false
            } else {
                seen.push(&approval.reviewer);
                true
            }
        })
        .cloned()
        .collect()
}

/// Where a person stands on an open request: what an inbox lists and what a sign-off panel offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// They may approve now, in these roles (held, still needed, and separation of duties allows).
    MaySign(Vec<Role>),
    /// They take part in the request or hold a role it still needs, but may not sign: the first reason.
    MayNotSign(Denied),
    /// The request asks nothing of them.
    NotAsked,
}

/// Where `person` stands on an open request, by the same rule as [`check_reviewer`]: every sign-off role
/// still outstanding is tried; a party to the request who holds none of them learns why they could not
/// sign anyway.
pub fn standing(
    person: &User,
    parties: &RequestParties,
    rules: SeparationRules,
    required: &[RoleQuota],
    counted: &[CountedApproval],
) -> Standing {
    let counted = counting(counted, parties, rules);
    let counted = counted.as_slice();
    let mut may = Vec::new();
    let mut first_denial = None;
    for quota in outstanding(required, counted) {
        if !person.has_role(quota.role.as_str()) {
            continue;
        }
        match check_reviewer(
            person,
            &quota.role,
            ReviewDecision::Approve,
            parties,
            rules,
            required,
            counted,
        ) {
            Ok(()) => may.push(quota.role),
            Err(denied) => {
                first_denial.get_or_insert(denied);
            }
        }
    }
    if !may.is_empty() {
        return Standing::MaySign(may);
    }
    if let Some(denied) = first_denial {
        return Standing::MayNotSign(denied);
    }
    if is_party(&person.username, parties, rules) {
        let name = person.username.as_str();
        let part = if parties.version_creator == name {
            "registered this version"
        } else if parties.requester == person.username {
            "opened this request"
        } else {
            "owns the model"
        };
        return Standing::MayNotSign(Denied(format!(
            "separation of duties: {name:?} {part} and may not approve it"
        )));
    }
    Standing::NotAsked
}

/// Whether `person` is barred from approving the request by their part in it.
fn is_party(person: &Username, parties: &RequestParties, rules: SeparationRules) -> bool {
    let owner = parties.model_owner == *person || parties.owner_at_open.as_ref() == Some(person);
    parties.version_creator == person.as_str()
        || parties.requester == *person
        || (owner && !rules.owner_may_approve)
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
    /// The stage the version's approval is for (`None`: it never was approved, or is in its stage by
    /// registration).
    pub approved_for: Option<Stage>,
    pub not_after: Option<Timestamp>,
    pub suspended: Option<String>,
    /// Why the approval is due for review before its expiry: the evidence changed after it (a policy
    /// that lets edits through flags them), or a later policy would not grant it.
    pub evidence_changed: Option<String>,
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
    if occupant.evidence_changed.is_some()
        && occupant.not_after.is_some_and(|not_after| now < not_after)
    {
        return ApprovalStatus::ReviewDue;
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
    if stage == Stage::Archived {
        return GateAnswer {
            allowed: false,
            version: None,
            reasons: vec!["archived is not a deployable stage; nothing may run from it".to_owned()],
            not_after: None,
        };
    }
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
    if occupant.approved_for != Some(stage) || occupant.not_after.is_none() {
        reasons.push(format!(
            "version {} is in {stage} without an approval for it; only a promotion approves a version \
             for a stage",
            occupant.version
        ));
    }
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

    #[test]
    fn standing_on_a_request_as_a_table() {
        let parties = RequestParties {
            version_creator: "dev".to_owned(),
            requester: Username::parse("dev").unwrap(),
            model_owner: Username::parse("owner").unwrap(),
            owner_at_open: None,
        };
        let rules = SeparationRules::default();
        let required = [quota("validator", 1), quota("compliance", 1)];
        let may_not = |text: &str| Standing::MayNotSign(Denied(text.to_owned()));
        let cases: Vec<(User, Vec<CountedApproval>, Standing)> = vec![
            (
                user("val", &["validator"]),
                vec![],
                Standing::MaySign(vec![role("validator")]),
            ),
            (
                user("both", &["validator", "compliance"]),
                vec![approval("other", "validator")],
                Standing::MaySign(vec![role("compliance")]),
            ),
            (
                user("val", &["validator"]),
                vec![approval("other", "validator")],
                Standing::NotAsked,
            ),
            (user("nobody", &["auditor"]), vec![], Standing::NotAsked),
            (
                user("dev", &["data_scientist"]),
                vec![],
                may_not(
                    "separation of duties: \"dev\" registered this version and may not approve it",
                ),
            ),
            (
                user("dev", &["validator"]),
                vec![],
                may_not(
                    "separation of duties: \"dev\" registered this version and may not approve it",
                ),
            ),
            (
                user("owner", &[]),
                vec![],
                may_not("separation of duties: \"owner\" owns the model and may not approve it"),
            ),
            (
                user("val", &["validator"]),
                vec![approval("val", "validator")],
                Standing::NotAsked,
            ),
            // An approval by a party does not count, so the role is still outstanding for others.
            (
                user("val", &["validator"]),
                vec![approval("owner", "validator")],
                Standing::MaySign(vec![role("validator")]),
            ),
        ];
        for (person, counted, expected) in cases {
            assert_eq!(
                standing(&person, &parties, rules, &required, &counted),
                expected,
                "{} with {counted:?}",
                person.username
            );
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
            owner_at_open: Some(Username::parse("former").unwrap()),
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
                user("root", &["validator", "admin"]),
                "validator",
                approve,
                false,
                vec![],
                Some("holds admin"),
            ),
            (
                user("former", &["validator"]),
                "validator",
                approve,
                false,
                vec![],
                Some("owned it when the request was opened"),
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
                SeparationRules {
                    owner_may_approve,
                    admins_may_approve: false,
                },
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
            approved_for: Some(Stage::Production),
            not_after: Some(Timestamp::from_unix_millis(100 * day)),
            suspended: None,
            evidence_changed: None,
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
        // Archived is never deployable; a stage held by registration, not approval, says no.
        let archived = gate_decision(
            Stage::Archived,
            std::slice::from_ref(&occupant),
            "sha256:aa",
            at(10),
        );
        assert!(!archived.allowed && archived.reasons[0].contains("not a deployable stage"));
        let registered = StageOccupant {
            approved_for: None,
            not_after: None,
            ..occupant.clone()
        };
        let answer = gate_decision(
            Stage::Development,
            std::slice::from_ref(&registered),
            "sha256:aa",
            at(10),
        );
        assert!(!answer.allowed && answer.reasons[0].contains("without an approval"));
        let changed = StageOccupant {
            evidence_changed: Some("card revision 4".to_owned()),
            ..occupant.clone()
        };
        assert_eq!(
            approval_status(&changed, at(10), 30),
            ApprovalStatus::ReviewDue
        );
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

/// Whether a request moves a version forward, brings a previous approved version back, or renews the
/// approval of a version in the stage it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Promotion,
    Rollback,
    /// Re-validation of a version in its stage (before its approval expires, on the policy's schedule,
    /// or after monitoring suspended it): always signed off by people, and its approval renews the
    /// approval and lifts a suspension.
    Revalidation,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promotion => "promotion",
            Self::Rollback => "rollback",
            Self::Revalidation => "revalidation",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "promotion" => Some(Self::Promotion),
            "rollback" => Some(Self::Rollback),
            "revalidation" => Some(Self::Revalidation),
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

/// What the policy demands of one request, computed by the server from the policy in force and the
/// version's evidence — and what they were computed from (the policy revision and the evidence revision),
/// so that the store can refuse to apply a decision made on terms that have since changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateTerms {
    /// The stage the version was in when the terms were computed: a request opened on them applies only
    /// while it still is.
    pub from_stage: Stage,
    pub signoffs: Vec<RoleQuota>,
    pub rules: SeparationRules,
    pub checks_pass: bool,
    pub valid_for_days: u32,
    pub single_occupancy: bool,
    /// The gate lets a previous still-valid approved version return without new sign-offs.
    pub rollback_without_signoffs: bool,
    pub policy_revision: i64,
    pub policy_digest: String,
    pub evidence_revision: i64,
    pub evidence_digest: String,
}

/// The approval that holds a version in its stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldApproval {
    pub stage: Stage,
    pub not_after: Timestamp,
}

/// Where a version stands when a decision about it is applied: read by the store inside the write
/// transaction, under the lock, so a decision is never applied to a situation it was not made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionState {
    pub stage: Stage,
    pub model_archived: bool,
    pub suspended: Option<String>,
    /// The suspension came from monitoring or from a policy that would not grant the approval, so an
    /// approved re-validation lifts it; a risk officer's suspension only reinstatement lifts.
    pub suspension_liftable: bool,
    pub approval: Option<HeldApproval>,
    /// Bumped by every write to the version's evidence (card revision, evaluation).
    pub evidence_revision: i64,
    /// What the last evidence write was ("card revision 3", "evaluation 12").
    pub last_evidence_change: Option<String>,
    /// Why the held approval is due for review (evidence changed after it, or a later policy would not
    /// grant it); such an approval does not carry a rollback without new sign-offs.
    pub review_flag: Option<String>,
    /// The policy revision in force (0: the built-in default).
    pub policy_revision: i64,
}

/// Why a decision cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller may not do this (403, recorded as denied).
    Denied(Denied),
    /// The request, the version or its evidence changed since the decision was prepared, or the request
    /// no longer applies (409 `conflict`); nothing is written.
    Conflict(String),
}

impl From<Denied> for Refusal {
    fn from(denied: Denied) -> Self {
        Self::Denied(denied)
    }
}

/// What applying a decision does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The request is (or stays) open; a review, if any, is recorded.
    Open,
    /// The request is rejected.
    Reject { reason: String },
    /// The request is approved and the version moves into the target stage; `archive_occupants`: the
    /// stage is single-occupancy, so its other occupants are archived.
    Promote {
        not_after: Timestamp,
        archive_occupants: bool,
        reason: String,
        /// A new approval (clears the held approval's review flags); false for a rollback that returns a
        /// version on the approval it still holds.
        renews: bool,
    },
}

/// The standing of the version and the terms against a request: the version must be where the request
/// found it, in a model that is not archived, not suspended, and judged on the evidence and policy the
/// terms were computed from.
fn check_preconditions(
    from_stage: Stage,
    kind: RequestKind,
    target: Stage,
    state: &VersionState,
    terms: &GateTerms,
) -> Result<(), Refusal> {
    if state.model_archived {
        return Err(Refusal::Conflict(
            "the model is archived; its requests no longer apply".to_owned(),
        ));
    }
    if state.stage != from_stage {
        return Err(Refusal::Conflict(format!(
            "the version moved from {from_stage} to {} since the request was opened; open a new request",
            state.stage
        )));
    }
    if kind == RequestKind::Promotion && state.stage == Stage::Archived {
        return Err(Refusal::Conflict(
            "the version is archived; archived versions are not promoted".to_owned(),
        ));
    }
    if let Some(reason) = &state.suspended
        && kind == RequestKind::Revalidation
        && !state.suspension_liftable
    {
        return Err(Refusal::Conflict(format!(
            "the version was suspended by a risk officer ({reason}); only reinstatement lifts that \
             suspension, not a re-validation"
        )));
    }
    if let Some(reason) = &state.suspended
        && kind != RequestKind::Revalidation
    {
        return Err(Refusal::Conflict(format!(
            "the version is suspended ({reason}); only reinstatement lifts a suspension, and a suspended \
             version cannot be promoted into {target}"
        )));
    }
    if state.policy_revision != terms.policy_revision {
        return Err(Refusal::Conflict(format!(
            "the policy in force changed (revision {} → {}) while the decision was being made; try again",
            terms.policy_revision, state.policy_revision
        )));
    }
    if state.evidence_revision != terms.evidence_revision {
        let what = state
            .last_evidence_change
            .as_deref()
            .unwrap_or("an evidence write");
        return Err(Refusal::Conflict(format!(
            "the version's evidence changed ({what}) while the decision was being made; review the new \
             evidence and try again"
        )));
    }
    Ok(())
}

/// A rollback returns a version whose approval for the stage still holds: the named exemption from new
/// sign-offs and checks, when the gate allows it. The version keeps that approval's expiry.
fn rollback_approval(
    target: Stage,
    state: &VersionState,
    now: Timestamp,
) -> Result<Timestamp, Refusal> {
    match &state.approval {
        Some(approval) if approval.stage == target && now < approval.not_after => {
            Ok(approval.not_after)
        }
        Some(approval) if approval.stage == target => Err(Refusal::Conflict(format!(
            "the version's approval for {target} expired at {}; a rollback needs a valid approval",
            approval.not_after.to_rfc3339()
        ))),
        _ => Err(Refusal::Conflict(format!(
            "the version holds no approval for {target} to roll back to"
        ))),
    }
}

fn promotion(terms: &GateTerms, now: Timestamp, reason: &str) -> Outcome {
    Outcome::Promote {
        not_after: now.plus_seconds(i64::from(terms.valid_for_days) * 86_400),
        archive_occupants: terms.single_occupancy,
        reason: reason.to_owned(),
        renews: true,
    }
}

/// Decides what opening a request does: stays open for sign-offs, or — when the gate needs none and its
/// checks pass, or for a rollback the gate exempts — promotes at once.
pub fn decide_opening(
    kind: RequestKind,
    from_stage: Stage,
    target: Stage,
    state: &VersionState,
    terms: &GateTerms,
    now: Timestamp,
) -> Result<Outcome, Refusal> {
    check_preconditions(from_stage, kind, target, state, terms)?;
    if from_stage != terms.from_stage {
        return Err(Refusal::Conflict(format!(
            "the version moved from {} to {from_stage} while the request was being opened; try again",
            terms.from_stage
        )));
    }
    if target == Stage::Archived {
        return Err(Refusal::Denied(Denied(
            "archived is not a stage a version is promoted into; archive it instead".to_owned(),
        )));
    }
    match kind {
        RequestKind::Rollback => {
            let not_after = rollback_approval(target, state, now)?;
            // An approval due for review does not carry the version back on its own.
            if terms.rollback_without_signoffs && state.review_flag.is_none() {
                return Ok(Outcome::Promote {
                    not_after,
                    archive_occupants: terms.single_occupancy,
                    reason:
                        "rollback to a version whose approval still holds; the gate lets rollbacks \
                             skip sign-offs"
                            .to_owned(),
                    renews: false,
                });
            }
        }
        RequestKind::Revalidation => {
            if target != from_stage {
                return Err(Refusal::Conflict(format!(
                    "a re-validation renews the approval of a version in the stage it is in ({from_stage}), not {target}"
                )));
            }
            // People look at a re-validation: it never completes when it opens.
            return Ok(Outcome::Open);
        }
        RequestKind::Promotion => {}
    }
    if terms.signoffs.is_empty() && terms.checks_pass {
        Ok(promotion(
            terms,
            now,
            "the gate needs no sign-offs and its checks pass",
        ))
    } else {
        Ok(Outcome::Open)
    }
}

/// What a review and a re-check both ask first: the request is open and still applies to the version as it
/// stands (`check_preconditions`); returns the approvals that count. `doing` names what only open requests
/// do, for the conflict's message.
fn still_applies(
    request: &PromotionRequest,
    state: &VersionState,
    terms: &GateTerms,
    parties: &RequestParties,
    counted: &[CountedApproval],
    doing: &str,
) -> Result<Vec<CountedApproval>, Refusal> {
    if request.state != RequestState::Open {
        return Err(Refusal::Conflict(format!(
            "request {} is {}; only open requests {doing}",
            request.id, request.state
        )));
    }
    check_preconditions(
        request.from_stage,
        request.kind,
        request.target_stage,
        state,
        terms,
    )?;
    Ok(counting(counted, parties, terms.rules))
}

/// Decides what a review does to an open request: who may give it (separation of duties, roles, one
/// person once), whether the request still applies to the version as it stands, and whether this review
/// completes the gate. `counted` are the approvals already given for the current evidence.
#[allow(clippy::too_many_arguments)]
pub fn decide_review(
    request: &PromotionRequest,
    state: &VersionState,
    terms: &GateTerms,
    parties: &RequestParties,
    counted: &[CountedApproval],
    reviewer: &User,
    review: &NewReview,
    now: Timestamp,
) -> Result<Outcome, Refusal> {
    let counted = still_applies(request, state, terms, parties, counted, "take reviews")?;
    let counted = counted.as_slice();
    check_reviewer(
        reviewer,
        &review.role,
        review.decision,
        parties,
        terms.rules,
        &terms.signoffs,
        counted,
    )?;
    match review.decision {
        ReviewDecision::Reject => Ok(Outcome::Reject {
            reason: review.comment.clone(),
        }),
        ReviewDecision::RequestChanges => Ok(Outcome::Open),
        ReviewDecision::Approve => {
            let mut now_counted = counted.to_vec();
            now_counted.push(CountedApproval {
                reviewer: reviewer.username.clone(),
                role: review.role.clone(),
            });
            if !outstanding(&terms.signoffs, &now_counted).is_empty() || !terms.checks_pass {
                return Ok(Outcome::Open);
            }
            if request.kind == RequestKind::Rollback {
                // Signed off anew: a fresh approval, but only of a version whose approval still holds.
                rollback_approval(request.target_stage, state, now)?;
            }
            Ok(promotion(terms, now, "all sign-offs given and checks pass"))
        }
    }
}

/// Decides what new evidence does to an open request (a card revision, an evaluation, a scan report
/// arrived after it opened): with every sign-off the gate asks for already given (none, for a gate that
/// needs none) and its checks now passing, the request is approved; otherwise it stays open. Nobody
/// reviews here, so nobody's eligibility is checked; the approvals counted are those given on the
/// evidence as it is now.
pub fn decide_recheck(
    request: &PromotionRequest,
    state: &VersionState,
    terms: &GateTerms,
    parties: &RequestParties,
    counted: &[CountedApproval],
    now: Timestamp,
) -> Result<Outcome, Refusal> {
    let counted = still_applies(request, state, terms, parties, counted, "are re-checked")?;
    if !terms.checks_pass || !outstanding(&terms.signoffs, &counted).is_empty() {
        return Ok(Outcome::Open);
    }
    if request.kind == RequestKind::Rollback {
        rollback_approval(request.target_stage, state, now)?;
    }
    Ok(promotion(
        terms,
        now,
        if terms.signoffs.is_empty() {
            "new evidence: the gate needs no sign-offs and its checks now pass"
        } else {
            "new evidence: its checks now pass, and every sign-off was given on this evidence"
        },
    ))
}

#[cfg(test)]
mod decision_tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn at(days: i64) -> Timestamp {
        Timestamp::from_unix_millis(days * DAY)
    }

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

    fn terms(signoffs: u32, checks_pass: bool) -> GateTerms {
        GateTerms {
            signoffs: (signoffs > 0)
                .then(|| RoleQuota {
                    role: Role::parse("validator").unwrap(),
                    count: signoffs,
                })
                .into_iter()
                .collect(),
            from_stage: Stage::Development,
            rules: SeparationRules::default(),
            checks_pass,
            valid_for_days: 10,
            single_occupancy: true,
            rollback_without_signoffs: true,
            policy_revision: 2,
            policy_digest: "sha256:p".to_owned(),
            evidence_revision: 5,
            evidence_digest: "sha256:e".to_owned(),
        }
    }

    fn state(stage: Stage) -> VersionState {
        VersionState {
            stage,
            model_archived: false,
            suspended: None,
            suspension_liftable: false,
            approval: None,
            evidence_revision: 5,
            last_evidence_change: Some("card revision 3".to_owned()),
            review_flag: None,
            policy_revision: 2,
        }
    }

    fn request(kind: RequestKind, from: Stage, target: Stage) -> PromotionRequest {
        PromotionRequest {
            id: 7,
            model_name: crate::ModelName::parse("m").unwrap(),
            version: VersionNumber::new(1).unwrap(),
            digest: "sha256:aa".to_owned(),
            from_stage: from,
            target_stage: target,
            kind,
            requester: Username::parse("req").unwrap(),
            justification: "because".to_owned(),
            state: RequestState::Open,
            policy_digest: "sha256:p".to_owned(),
            evidence_digest: "sha256:e".to_owned(),
            created_at: at(0),
            decided_at: None,
            decision_reason: None,
        }
    }

    fn approve() -> NewReview {
        NewReview {
            role: Role::parse("validator").unwrap(),
            decision: ReviewDecision::Approve,
            comment: String::new(),
            meaning: None,
            signed_record: None,
            signature: None,
        }
    }

    fn parties() -> RequestParties {
        RequestParties {
            version_creator: "dev".to_owned(),
            requester: Username::parse("req").unwrap(),
            model_owner: Username::parse("owner").unwrap(),
            owner_at_open: None,
        }
    }

    /// What a refusal or outcome should look like: `Ok(kind)` or `Err(text in the conflict/denial)`.
    fn describe(result: &Result<Outcome, Refusal>) -> String {
        match result {
            Ok(Outcome::Open) => "open".to_owned(),
            Ok(Outcome::Reject { .. }) => "reject".to_owned(),
            Ok(Outcome::Promote { not_after, .. }) => {
                format!("promote until day {}", not_after.unix_millis() / DAY)
            }
            Err(Refusal::Conflict(text)) => format!("conflict: {text}"),
            Err(Refusal::Denied(denied)) => format!("denied: {}", denied.0),
        }
    }

    #[test]
    fn one_person_counts_once_whatever_roles_they_approved_in() {
        let approval = |name: &str, role: &str| CountedApproval {
            reviewer: Username::parse(name).unwrap(),
            role: Role::parse(role).unwrap(),
        };
        let given = [
            approval("x", "validator"),
            approval("y", "validator"),
            approval("x", "compliance"),
        ];
        let counted = counting(&given, &parties(), SeparationRules::default());
        assert_eq!(
            counted,
            [approval("x", "validator"), approval("y", "validator")]
        );
        let mut both = terms(0, true);
        both.signoffs = vec![
            RoleQuota {
                role: Role::parse("validator").unwrap(),
                count: 1,
            },
            RoleQuota {
                role: Role::parse("compliance").unwrap(),
                count: 1,
            },
        ];
        let promotion = request(RequestKind::Promotion, Stage::Development, Stage::Staging);
        let result = decide_recheck(
            &promotion,
            &state(Stage::Development),
            &both,
            &parties(),
            &[approval("x", "validator"), approval("x", "compliance")],
            at(3),
        );
        assert_eq!(describe(&result), "open", "x alone fills one role, not two");
    }

    #[test]
    fn rechecking_as_a_table() {
        let approval = |name: &str| CountedApproval {
            reviewer: Username::parse(name).unwrap(),
            role: Role::parse("validator").unwrap(),
        };
        let promotion = request(RequestKind::Promotion, Stage::Development, Stage::Staging);
        let mut settled = promotion.clone();
        settled.state = RequestState::Approved;
        let mut stale = terms(0, true);
        stale.evidence_revision = 4;
        let mut suspended = state(Stage::Development);
        suspended.suspended = Some("by the risk officer".to_owned());
        // (request, state, terms, approvals given, expected start of the description)
        let cases: Vec<(
            &PromotionRequest,
            VersionState,
            GateTerms,
            Vec<CountedApproval>,
            &str,
        )> = vec![
            // No sign-offs asked: the checks decide, now that they pass.
            (
                &promotion,
                state(Stage::Development),
                terms(0, true),
                vec![],
                "promote until day 13",
            ),
            (
                &promotion,
                state(Stage::Development),
                terms(0, false),
                vec![],
                "open",
            ),
            // Sign-offs asked: approved only once they were all given on this evidence.
            (
                &promotion,
                state(Stage::Development),
                terms(1, true),
                vec![],
                "open",
            ),
            (
                &promotion,
                state(Stage::Development),
                terms(1, true),
                vec![approval("val")],
                "promote",
            ),
            (
                &promotion,
                state(Stage::Development),
                terms(1, false),
                vec![approval("val")],
                "open",
            ),
            // A party's approval never counts, here as in a review.
            (
                &promotion,
                state(Stage::Development),
                terms(1, true),
                vec![approval("req")],
                "open",
            ),
            (
                &settled,
                state(Stage::Development),
                terms(0, true),
                vec![],
                "conflict: request 7 is approved",
            ),
            (
                &promotion,
                state(Stage::Staging),
                terms(0, true),
                vec![],
                "conflict",
            ),
            (
                &promotion,
                state(Stage::Development),
                stale,
                vec![],
                "conflict: the version's evidence changed",
            ),
            (&promotion, suspended, terms(0, true), vec![], "conflict"),
        ];
        for (index, (request, state, terms, counted, expected)) in cases.iter().enumerate() {
            let got = describe(&decide_recheck(
                request,
                state,
                terms,
                &parties(),
                counted,
                at(3),
            ));
            assert!(
                got.starts_with(expected),
                "case {index}: {got} (expected {expected})"
            );
        }
    }

    #[test]
    fn opening_as_a_table() {
        let held = |stage, until| HeldApproval {
            stage,
            not_after: at(until),
        };
        // (kind, from, target, state, terms, expected start of the description)
        let cases: Vec<(RequestKind, Stage, Stage, VersionState, GateTerms, &str)> = vec![
            (
                RequestKind::Promotion,
                Stage::Development,
                Stage::Staging,
                state(Stage::Development),
                terms(0, true),
                "promote until day 11",
            ),
            (
                RequestKind::Promotion,
                Stage::Development,
                Stage::Staging,
                state(Stage::Development),
                terms(0, false),
                "open",
            ),
            (
                RequestKind::Promotion,
                Stage::Development,
                Stage::Staging,
                state(Stage::Development),
                terms(1, true),
                "open",
            ),
            (
                RequestKind::Promotion,
                Stage::Staging,
                Stage::Production,
                VersionState {
                    suspended: Some("drift".to_owned()),
                    ..state(Stage::Staging)
                },
                terms(0, true),
                "conflict: the version is suspended (drift)",
            ),
            (
                RequestKind::Promotion,
                Stage::Development,
                Stage::Staging,
                VersionState {
                    model_archived: true,
                    ..state(Stage::Development)
                },
                terms(0, true),
                "conflict: the model is archived",
            ),
            (
                RequestKind::Promotion,
                Stage::Development,
                Stage::Staging,
                state(Stage::Archived),
                terms(0, true),
                "conflict: the version moved from development to archived",
            ),
            (
                RequestKind::Promotion,
                Stage::Development,
                Stage::Staging,
                VersionState {
                    evidence_revision: 6,
                    ..state(Stage::Development)
                },
                terms(0, true),
                "conflict: the version's evidence changed (card revision 3)",
            ),
            (
                RequestKind::Promotion,
                Stage::Development,
                Stage::Staging,
                VersionState {
                    policy_revision: 3,
                    ..state(Stage::Development)
                },
                terms(0, true),
                "conflict: the policy in force changed",
            ),
            // A rollback keeps the original approval's expiry (day 50), not a fresh one (day 11).
            (
                RequestKind::Rollback,
                Stage::Archived,
                Stage::Production,
                VersionState {
                    approval: Some(held(Stage::Production, 50)),
                    ..state(Stage::Archived)
                },
                terms(3, false),
                "promote until day 50",
            ),
            (
                RequestKind::Rollback,
                Stage::Archived,
                Stage::Production,
                VersionState {
                    approval: Some(held(Stage::Production, 1)),
                    ..state(Stage::Archived)
                },
                terms(0, true),
                "conflict: the version's approval for production expired",
            ),
            (
                RequestKind::Rollback,
                Stage::Archived,
                Stage::Production,
                VersionState {
                    approval: Some(held(Stage::Staging, 50)),
                    ..state(Stage::Archived)
                },
                terms(0, true),
                "conflict: the version holds no approval for production",
            ),
            (
                RequestKind::Rollback,
                Stage::Archived,
                Stage::Production,
                VersionState {
                    approval: Some(held(Stage::Production, 50)),
                    suspended: Some("bias".to_owned()),
                    ..state(Stage::Archived)
                },
                terms(0, true),
                "conflict: the version is suspended",
            ),
            (
                RequestKind::Rollback,
                Stage::Archived,
                Stage::Production,
                VersionState {
                    approval: Some(held(Stage::Production, 50)),
                    ..state(Stage::Archived)
                },
                GateTerms {
                    rollback_without_signoffs: false,
                    ..terms(1, true)
                },
                "open",
            ),
            (
                RequestKind::Promotion,
                Stage::Production,
                Stage::Archived,
                state(Stage::Production),
                terms(0, true),
                "denied: archived is not a stage",
            ),
            // An approval due for review does not carry a rollback without sign-offs.
            (
                RequestKind::Rollback,
                Stage::Archived,
                Stage::Production,
                VersionState {
                    approval: Some(held(Stage::Production, 50)),
                    review_flag: Some("card revision 4".to_owned()),
                    ..state(Stage::Archived)
                },
                terms(1, true),
                "open",
            ),
            // A re-validation is open for a suspended version (it is what lifts the suspension), never
            // completes at opening even on a gate without sign-offs, and is for the stage the version is in.
            (
                RequestKind::Revalidation,
                Stage::Production,
                Stage::Production,
                VersionState {
                    approval: Some(held(Stage::Production, 50)),
                    suspended: Some("suspended by monitoring: psi(x) = 0.3 >= 0.2".to_owned()),
                    suspension_liftable: true,
                    ..state(Stage::Production)
                },
                terms(0, true),
                "open",
            ),
            // A risk officer's suspension is not a re-validation's to lift.
            (
                RequestKind::Revalidation,
                Stage::Production,
                Stage::Production,
                VersionState {
                    approval: Some(held(Stage::Production, 50)),
                    suspended: Some("incident 42".to_owned()),
                    ..state(Stage::Production)
                },
                terms(1, true),
                "conflict: the version was suspended by a risk officer (incident 42)",
            ),
            (
                RequestKind::Revalidation,
                Stage::Staging,
                Stage::Production,
                state(Stage::Staging),
                terms(1, true),
                "conflict: a re-validation renews the approval of a version in the stage it is in",
            ),
            (
                RequestKind::Revalidation,
                Stage::Production,
                Stage::Production,
                VersionState {
                    model_archived: true,
                    ..state(Stage::Production)
                },
                terms(1, true),
                "conflict: the model is archived",
            ),
        ];
        for (index, (kind, from, target, state, terms, expected)) in cases.into_iter().enumerate() {
            // The handler computed the terms on the version as it read it.
            let terms = GateTerms {
                from_stage: from,
                ..terms
            };
            let described = describe(&decide_opening(kind, from, target, &state, &terms, at(1)));
            assert!(
                described.starts_with(expected),
                "case {index}: expected {expected:?}, got {described:?}"
            );
        }
    }

    #[test]
    fn terms_computed_on_another_stage_are_a_conflict() {
        // The handler read the version in development; it was promoted to staging before the lock.
        let described = describe(&decide_opening(
            RequestKind::Promotion,
            Stage::Staging,
            Stage::Production,
            &state(Stage::Staging),
            &terms(0, true),
            at(1),
        ));
        assert!(
            described.starts_with("conflict: the version moved from development to staging"),
            "{described}"
        );
    }

    #[test]
    fn an_earlier_approval_stops_counting_when_its_giver_becomes_a_party() {
        let promotion = request(RequestKind::Promotion, Stage::Staging, Stage::Production);
        let counted = [CountedApproval {
            reviewer: Username::parse("owner").unwrap(),
            role: Role::parse("validator").unwrap(),
        }];
        // Two validators asked for; the first approval came from someone who owns the model now.
        let outcome = decide_review(
            &promotion,
            &state(Stage::Staging),
            &GateTerms {
                from_stage: Stage::Staging,
                ..terms(2, true)
            },
            &parties(),
            &counted,
            &user("val", &["validator"]),
            &approve(),
            at(1),
        );
        assert_eq!(describe(&outcome), "open");
    }

    #[test]
    fn reviews_as_a_table() {
        let validator = user("val", &["validator"]);
        let promotion = request(RequestKind::Promotion, Stage::Staging, Stage::Production);
        let revalidation = request(
            RequestKind::Revalidation,
            Stage::Production,
            Stage::Production,
        );
        let cases: Vec<(PromotionRequest, VersionState, GateTerms, User, &str)> = vec![
            (
                promotion.clone(),
                state(Stage::Staging),
                terms(1, true),
                validator.clone(),
                "promote until day 11",
            ),
            // The sign-off a re-validation asks for renews the approval of a suspended version.
            (
                revalidation.clone(),
                VersionState {
                    suspended: Some("suspended by monitoring".to_owned()),
                    suspension_liftable: true,
                    ..state(Stage::Production)
                },
                terms(1, true),
                validator.clone(),
                "promote until day 11",
            ),
            (
                promotion.clone(),
                state(Stage::Staging),
                terms(2, true),
                validator.clone(),
                "open",
            ),
            (
                promotion.clone(),
                state(Stage::Staging),
                terms(1, false),
                validator.clone(),
                "open",
            ),
            (
                promotion.clone(),
                state(Stage::Archived),
                terms(1, true),
                validator.clone(),
                "conflict: the version moved from staging to archived",
            ),
            (
                promotion.clone(),
                VersionState {
                    suspended: Some("drift".to_owned()),
                    ..state(Stage::Staging)
                },
                terms(1, true),
                validator.clone(),
                "conflict: the version is suspended",
            ),
            (
                promotion.clone(),
                VersionState {
                    evidence_revision: 9,
                    ..state(Stage::Staging)
                },
                terms(1, true),
                validator.clone(),
                "conflict: the version's evidence changed",
            ),
            (
                PromotionRequest {
                    state: RequestState::Withdrawn,
                    ..promotion.clone()
                },
                state(Stage::Staging),
                terms(1, true),
                validator.clone(),
                "conflict: request 7 is withdrawn",
            ),
            (
                promotion.clone(),
                state(Stage::Staging),
                terms(1, true),
                user("root", &["validator", "admin"]),
                "denied: separation of duties: \"root\" holds admin",
            ),
            (
                promotion.clone(),
                state(Stage::Staging),
                GateTerms {
                    rules: SeparationRules {
                        owner_may_approve: false,
                        admins_may_approve: true,
                    },
                    ..terms(1, true)
                },
                user("root", &["validator", "admin"]),
                "promote",
            ),
            (
                promotion.clone(),
                state(Stage::Staging),
                terms(1, true),
                user("req", &["validator"]),
                "denied: separation of duties: \"req\" opened this request",
            ),
        ];
        for (index, (request, state, terms, reviewer, expected)) in cases.into_iter().enumerate() {
            let described = describe(&decide_review(
                &request,
                &state,
                &terms,
                &parties(),
                &[],
                &reviewer,
                &approve(),
                at(1),
            ));
            assert!(
                described.starts_with(expected),
                "case {index}: expected {expected:?}, got {described:?}"
            );
        }
    }
}
