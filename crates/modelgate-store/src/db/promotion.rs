//! Governed promotion in the store: policy revisions, promotion requests, reviews and comments, the
//! promotion itself (applied in the transaction of the approval that completes it), suspensions, and the
//! stage occupants the gate reads.
//!
//! *Invariant*: a version's stage changes only here, inside the transaction that approves its request
//! (or archives it as the previous occupant of a single-occupancy stage). Separation of duties and the
//! counting of sign-offs are re-checked inside that transaction, under the request's lock, so that two
//! final approvals racing produce exactly one promotion.

use super::audit::{self, AuditRecord};
use super::models::fetch_model;
use super::rows;
use super::users::{USER_COLUMNS, users_from_rows};
use super::versions::version_target;
use super::{Attribution, Backend, Store};
use crate::StoreError;
use modelgate_core::promotion::{
    CountedApproval, GateTerms, HeldApproval, NewReview, Outcome, PolicyRevision, PromotionRequest,
    Refusal, RequestComment, RequestKind, RequestParties, RequestState, Review, ReviewDecision,
    StageOccupant, VersionState, decide_opening, decide_recheck, decide_review,
};
use modelgate_core::{ModelName, Role, Stage, User, Username, VersionNumber};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Transaction};

const REQUEST_COLUMNS: &str = "r.id, m.name AS model_name, v.number AS version_number, v.digest, \
     r.from_stage, r.target_stage, r.kind, u.username AS requester, r.justification, r.state, \
     r.policy_digest, r.evidence_digest, r.created_at, r.decided_at, r.decision_reason";

const REQUEST_FROM: &str = "FROM promotion_requests r JOIN versions v ON v.id = r.version_id \
     JOIN models m ON m.id = r.model_id JOIN users u ON u.id = r.requester_id";

/// A request with everything said on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDetail {
    pub request: PromotionRequest,
    pub reviews: Vec<Review>,
    pub comments: Vec<RequestComment>,
}

/// Filters for listing requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub state: Option<RequestState>,
    pub requester: Option<Username>,
    pub model: Option<ModelName>,
    pub limit: u32,
}

fn request_from_row(row: &AnyRow) -> Result<PromotionRequest, StoreError> {
    Ok(PromotionRequest {
        id: rows::get(row, "id")?,
        model_name: rows::parsed_column(row, "model_name", ModelName::parse)?,
        version: VersionNumber::new(rows::get(row, "version_number")?)?,
        digest: rows::get(row, "digest")?,
        from_stage: rows::parsed_column(row, "from_stage", Stage::parse)?,
        target_stage: rows::parsed_column(row, "target_stage", Stage::parse)?,
        kind: RequestKind::parse(&rows::get::<String>(row, "kind")?)
            .ok_or_else(|| StoreError::corrupt("promotion_requests.kind"))?,
        requester: rows::parsed_column(row, "requester", Username::parse)?,
        justification: rows::get(row, "justification")?,
        state: rows::parsed_column(row, "state", RequestState::parse)?,
        policy_digest: rows::get(row, "policy_digest")?,
        evidence_digest: rows::get(row, "evidence_digest")?,
        created_at: rows::timestamp(row, "created_at")?,
        decided_at: rows::optional_timestamp(row, "decided_at")?,
        decision_reason: rows::get(row, "decision_reason")?,
    })
}

fn review_from_row(row: &AnyRow) -> Result<Review, StoreError> {
    Ok(Review {
        id: rows::get(row, "id")?,
        request_id: rows::get(row, "request_id")?,
        reviewer: rows::parsed_column(row, "username", Username::parse)?,
        printed_name: rows::get(row, "printed_name")?,
        role: rows::parsed_column(row, "role", Role::parse)?,
        decision: rows::parsed_column(row, "decision", ReviewDecision::parse)?,
        comment: rows::get(row, "comment")?,
        meaning: rows::get(row, "meaning")?,
        evidence_digest: rows::get(row, "evidence_digest")?,
        signed_record: rows::get(row, "signed_record")?,
        signature: rows::get(row, "signature")?,
        created_at: rows::timestamp(row, "created_at")?,
    })
}

fn request_snapshot(request: &PromotionRequest) -> serde_json::Value {
    json!({
        "id": request.id,
        "model": request.model_name.as_str(),
        "version": request.version.get(),
        "digest": request.digest,
        "from_stage": request.from_stage.as_str(),
        "target_stage": request.target_stage.as_str(),
        "kind": request.kind.as_str(),
        "requester": request.requester.as_str(),
        "state": request.state.as_str(),
        "policy_digest": request.policy_digest,
        "evidence_digest": request.evidence_digest,
        "decision_reason": request.decision_reason,
    })
}

fn request_target(id: i64) -> String {
    format!("request/{id}")
}

async fn fetch_request<'c, E>(
    executor: E,
    id: i64,
    lock: bool,
) -> Result<PromotionRequest, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    let suffix = if lock { " FOR UPDATE OF r" } else { "" };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} {REQUEST_FROM} WHERE r.id = $1{suffix}"
    )))
    .bind(id)
    .fetch_optional(executor)
    .await?
    .ok_or_else(|| StoreError::not_found("request", id))?;
    request_from_row(&row)
}

impl Store {
    /// The policy revision in force, if one was ever applied.
    pub async fn policy_in_force(&self) -> Result<Option<PolicyRevision>, StoreError> {
        sqlx::query(
            "SELECT revision, digest, text, applied_by, applied_at FROM policies ORDER BY revision DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?
        .map(|row| {
            Ok(PolicyRevision {
                revision: rows::get(&row, "revision")?,
                digest: rows::get(&row, "digest")?,
                text: rows::get(&row, "text")?,
                applied_by: rows::get(&row, "applied_by")?,
                applied_at: rows::timestamp(&row, "applied_at")?,
            })
        })
        .transpose()
    }

    /// Every applied policy revision, newest first.
    pub async fn policy_revisions(&self) -> Result<Vec<PolicyRevision>, StoreError> {
        sqlx::query(
            "SELECT revision, digest, text, applied_by, applied_at FROM policies ORDER BY revision DESC",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(PolicyRevision {
                revision: rows::get(row, "revision")?,
                digest: rows::get(row, "digest")?,
                text: rows::get(row, "text")?,
                applied_by: rows::get(row, "applied_by")?,
                applied_at: rows::timestamp(row, "applied_at")?,
            })
        })
        .collect()
    }

    /// Makes a validated policy text the one in force, as a new revision, and in the same transaction
    /// applies its consequences to the approvals it would not grant (`review_due` or `suspend`; each
    /// audited with the new policy's digest). A consequence whose approval changed meanwhile (the version
    /// was approved again or left the stage) is skipped.
    pub async fn apply_policy(
        &self,
        attribution: &Attribution,
        digest: &str,
        text: &str,
        consequences: &[PolicyConsequence],
        judged: &[HeldApprovalRecord],
    ) -> Result<PolicyRevision, StoreError> {
        let before = self.policy_in_force().await?;
        let mut transaction = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(POLICY_LOCK)
                .execute(&mut *transaction)
                .await?;
        }
        // The consequences were worked out on the approvals as `judged` saw them; applied to others (an
        // approval or an evidence change landed meanwhile) they would be wrong, so nothing is written.
        let now_held = held_approvals_in(&mut *transaction).await?;
        let fingerprint = |held: &[HeldApprovalRecord]| {
            let mut keys: Vec<(i64, i64, i64)> = held
                .iter()
                .map(|record| {
                    (
                        record.version_id,
                        record.approval_request_id,
                        record.evidence_revision,
                    )
                })
                .collect();
            keys.sort_unstable();
            keys
        };
        if fingerprint(&now_held) != fingerprint(judged) {
            return Err(StoreError::Conflict(
                "an approval or the evidence of an approved version changed while the new policy was \
                 being judged; nothing was applied — apply the policy again"
                    .to_owned(),
            ));
        }
        let revision: i64 = rows::get(
            &sqlx::query(
                "INSERT INTO policies (digest, text, applied_by, applied_at) VALUES ($1, $2, $3, $4) RETURNING revision",
            )
            .bind(digest)
            .bind(text)
            .bind(attribution.actor.display_name().to_owned())
            .bind(attribution.at.unix_millis())
            .fetch_one(&mut *transaction)
            .await?,
            "revision",
        )?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "policy.apply",
                target: "policy".to_owned(),
                before: before.map(|old| json!({ "revision": old.revision, "digest": old.digest })),
                after: Some(json!({
                    "revision": revision,
                    "digest": digest,
                    "approvals_not_regranted": consequences.len(),
                })),
            },
        )
        .await?;
        for consequence in consequences {
            let (column, action) = match consequence.action {
                ConsequenceAction::ReviewDue => ("approval_review_reason", "version.review_due"),
                ConsequenceAction::Suspend => ("suspension_reason", "version.suspend"),
            };
            let reason = format!(
                "policy revision {revision} would not grant this approval: {}",
                consequence.reasons.join("; ")
            );
            let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE versions SET {column} = $1, suspended_at = CASE WHEN $2 THEN $3 ELSE suspended_at END,
                        suspension_source = CASE WHEN $2 THEN 'policy' ELSE suspension_source END
                 WHERE id = $4 AND approval_request_id = $5 AND approved_stage IS NOT NULL AND {column} IS NULL"
            )))
            .bind(&reason)
            .bind(consequence.action == ConsequenceAction::Suspend)
            .bind(attribution.at.unix_millis())
            .bind(consequence.version_id)
            .bind(consequence.approval_request_id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if changed == 1 {
                audit::append_decision(
                    &mut transaction,
                    self.backend,
                    attribution,
                    AuditRecord {
                        action,
                        target: version_target(&consequence.model, consequence.version),
                        before: None,
                        after: Some(json!({ "reason": reason, "policy_revision": revision })),
                    },
                    digest,
                )
                .await?;
            }
        }
        self.commit(transaction).await?;
        Ok(PolicyRevision {
            revision,
            digest: digest.to_owned(),
            text: text.to_owned(),
            applied_by: attribution.actor.display_name().to_owned(),
            applied_at: attribution.at,
        })
    }

    /// Opens a request to move a version into `target`. The decision (`decide_opening`) is made here,
    /// on the version as it stands under the lock: when the gate needs no sign-offs and its checks pass
    /// (or a rollback the gate exempts), the server approves it and promotes the version in the same
    /// transaction. A refusal comes back as `Ok(Err(refusal))` with nothing written.
    #[allow(clippy::too_many_arguments)]
    pub async fn open_request(
        &self,
        attribution: &Attribution,
        requester: &User,
        model_name: &ModelName,
        number: VersionNumber,
        target: Stage,
        kind: RequestKind,
        justification: &str,
        terms: &GateTerms,
    ) -> Result<Result<PromotionRequest, Refusal>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let model = fetch_model(&mut *transaction, model_name).await?;
        let row = sqlx::query("SELECT id FROM versions WHERE model_id = $1 AND number = $2")
            .bind(model.id)
            .bind(i64::from(number.get()))
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or_else(|| StoreError::not_found("version", format!("{model_name}/{number}")))?;
        let version_id: i64 = rows::get(&row, "id")?;
        let state = self.version_state(&mut transaction, version_id).await?;
        let from = state.stage;
        let outcome = match decide_opening(kind, from, target, &state, terms, attribution.at) {
            Ok(outcome) => outcome,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let id: i64 = rows::get(
            &sqlx::query(
                "INSERT INTO promotion_requests
                    (model_id, version_id, from_stage, target_stage, kind, requester_id, justification, state,
                     policy_digest, evidence_digest, created_at, owner_at_open_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10,
                         (SELECT owner_id FROM models WHERE id = $1)) RETURNING id",
            )
            .bind(model.id)
            .bind(version_id)
            .bind(from.as_str())
            .bind(target.as_str())
            .bind(kind.as_str())
            .bind(requester.id)
            .bind(justification)
            .bind(terms.policy_digest.as_str())
            .bind(terms.evidence_digest.as_str())
            .bind(attribution.at.unix_millis())
            .fetch_one(&mut *transaction)
            .await
            .map_err(StoreError::on_unique_violation(
                "open request",
                format!("{model_name} version {number} to {target}"),
            ))?,
            "id",
        )?;
        let request = fetch_request(&mut *transaction, id, false).await?;
        audit::append_decision(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "request.open",
                target: request_target(id),
                before: None,
                after: Some(request_snapshot(&request)),
            },
            &terms.policy_digest,
        )
        .await?;
        let request = self
            .apply_outcome(
                &mut transaction,
                attribution,
                &request,
                version_id,
                terms,
                outcome,
            )
            .await?;
        self.commit(transaction).await?;
        Ok(Ok(request))
    }

    /// Records a review. The decision (`decide_review`: separation of duties, the sign-off count, and
    /// whether the version is still where the request found it, with the same evidence and policy) is
    /// made here, under the request's lock; an approval that completes the gate promotes the version in
    /// the same transaction. A refusal comes back as `Ok(Err(refusal))` with nothing written.
    pub async fn review_request(
        &self,
        attribution: &Attribution,
        request_id: i64,
        reviewer: &User,
        review: &NewReview,
        terms: &GateTerms,
    ) -> Result<Result<(PromotionRequest, Review), Refusal>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let lock = self.backend == Backend::Postgres;
        let request = fetch_request(&mut *transaction, request_id, lock).await?;
        let (version_id, parties) = self.request_parties(&mut transaction, &request).await?;
        let state = self.version_state(&mut transaction, version_id).await?;
        let counted = counted_approvals(
            &mut *transaction,
            request_id,
            &terms.evidence_digest,
            terms.rules.admins_may_approve,
        )
        .await?;
        let outcome = match decide_review(
            &request,
            &state,
            terms,
            &parties,
            &counted,
            reviewer,
            review,
            attribution.at,
        ) {
            Ok(outcome) => outcome,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let review_id: i64 = rows::get(
            &sqlx::query(
                "INSERT INTO reviews
                    (request_id, reviewer_id, role, decision, comment, meaning, evidence_digest, signed_record,
                     signature, created_at, evidence_revision)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            )
            .bind(request_id)
            .bind(reviewer.id)
            .bind(review.role.as_str())
            .bind(review.decision.as_str())
            .bind(review.comment.as_str())
            .bind(review.meaning.clone())
            .bind(terms.evidence_digest.as_str())
            .bind(review.signed_record.clone())
            .bind(review.signature.clone())
            .bind(attribution.at.unix_millis())
            .bind(terms.evidence_revision)
            .fetch_one(&mut *transaction)
            .await?,
            "id",
        )?;
        audit::append_decision(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: match review.decision {
                    ReviewDecision::Approve => "review.approve",
                    ReviewDecision::Reject => "review.reject",
                    ReviewDecision::RequestChanges => "review.request_changes",
                },
                target: request_target(request_id),
                before: None,
                after: Some(json!({
                    "review": review_id,
                    "reviewer": reviewer.username.as_str(),
                    "role": review.role.as_str(),
                    "comment": review.comment,
                    "meaning": review.meaning,
                    "evidence_digest": terms.evidence_digest,
                    "signature": review.signature,
                })),
            },
            &terms.policy_digest,
        )
        .await?;
        let request = self
            .apply_outcome(
                &mut transaction,
                attribution,
                &request,
                version_id,
                terms,
                outcome,
            )
            .await?;
        let stored = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT rv.id, rv.request_id, u.username, u.printed_name, rv.role, rv.decision, rv.comment,
                    rv.meaning, rv.evidence_digest, rv.signed_record, rv.signature, rv.created_at
             FROM reviews rv JOIN users u ON u.id = rv.reviewer_id WHERE rv.id = {review_id}"
        )))
        .fetch_one(&mut *transaction)
        .await?;
        let review = review_from_row(&stored)?;
        self.commit(transaction).await?;
        Ok(Ok((request, review)))
    }

    /// Re-checks an open request on new evidence (`core::promotion::decide_recheck`): approves it when its
    /// checks now pass and every sign-off it asks for was given on this evidence; otherwise writes
    /// nothing. Returns the request as it stands afterwards.
    pub async fn recheck_request(
        &self,
        attribution: &Attribution,
        request_id: i64,
        terms: &GateTerms,
    ) -> Result<Result<PromotionRequest, Refusal>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let lock = self.backend == Backend::Postgres;
        let request = fetch_request(&mut *transaction, request_id, lock).await?;
        let (version_id, parties) = self.request_parties(&mut transaction, &request).await?;
        let state = self.version_state(&mut transaction, version_id).await?;
        let counted = counted_approvals(
            &mut *transaction,
            request_id,
            &terms.evidence_digest,
            terms.rules.admins_may_approve,
        )
        .await?;
        let outcome =
            match decide_recheck(&request, &state, terms, &parties, &counted, attribution.at) {
                Ok(Outcome::Open) => {
                    // Still waiting: reviewers (and subscribers) learn what the new evidence did to
                    // the checks. One event per evidence write.
                    audit::append_decision(
                        &mut transaction,
                        self.backend,
                        attribution,
                        AuditRecord {
                            action: "request.checks_changed",
                            target: request_target(request.id),
                            before: None,
                            after: Some(json!({
                                "evidence_digest": terms.evidence_digest,
                                "evidence_revision": terms.evidence_revision,
                                "checks_pass": terms.checks_pass,
                                "last_evidence_change": state.last_evidence_change,
                            })),
                        },
                        &terms.policy_digest,
                    )
                    .await?;
                    self.commit(transaction).await?;
                    return Ok(Ok(request));
                }
                Ok(outcome) => outcome,
                Err(refusal) => return Ok(Err(refusal)),
            };
        let request = self
            .apply_outcome(
                &mut transaction,
                attribution,
                &request,
                version_id,
                terms,
                outcome,
            )
            .await?;
        self.commit(transaction).await?;
        Ok(Ok(request))
    }

    /// Reads where a version stands, inside a write transaction; on PostgreSQL the version's row is locked
    /// (evidence writes update it, so they wait) and the policy lock is held shared (applying a policy
    /// takes it exclusively), so what is read here stays true until the commit.
    async fn version_state(
        &self,
        transaction: &mut Transaction<'static, Any>,
        version_id: i64,
    ) -> Result<VersionState, StoreError> {
        let lock = if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                .bind(POLICY_LOCK)
                .execute(&mut **transaction)
                .await?;
            " FOR UPDATE OF v FOR SHARE OF m"
        } else {
            ""
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT v.stage, v.suspension_reason, v.suspension_source, v.approved_stage, v.not_after,
                    v.evidence_revision, v.last_evidence_change, m.archived_at,
                    COALESCE(v.evidence_changed_after_approval, v.approval_review_reason) AS review_flag
             FROM versions v JOIN models m ON m.id = v.model_id WHERE v.id = $1{lock}"
        )))
        .bind(version_id)
        .fetch_one(&mut **transaction)
        .await?;
        let policy_revision: i64 = rows::get(
            &sqlx::query("SELECT COALESCE(MAX(revision), 0) AS revision FROM policies")
                .fetch_one(&mut **transaction)
                .await?,
            "revision",
        )?;
        let approval = match (
            rows::get::<Option<String>>(&row, "approved_stage")?,
            rows::optional_timestamp(&row, "not_after")?,
        ) {
            (Some(stage), Some(not_after)) => Some(HeldApproval {
                stage: rows::parsed("approved_stage", Stage::parse, &stage)?,
                not_after,
            }),
            _ => None,
        };
        Ok(VersionState {
            stage: rows::parsed_column(&row, "stage", Stage::parse)?,
            model_archived: rows::optional_timestamp(&row, "archived_at")?.is_some(),
            suspended: rows::get(&row, "suspension_reason")?,
            suspension_liftable: matches!(
                rows::get::<Option<String>>(&row, "suspension_source")?.as_deref(),
                Some("monitoring" | "policy")
            ),
            approval,
            evidence_revision: rows::get(&row, "evidence_revision")?,
            last_evidence_change: rows::get(&row, "last_evidence_change")?,
            review_flag: rows::get(&row, "review_flag")?,
            policy_revision,
        })
    }

    /// Applies a decision's outcome to an open request.
    async fn apply_outcome(
        &self,
        transaction: &mut Transaction<'static, Any>,
        attribution: &Attribution,
        request: &PromotionRequest,
        version_id: i64,
        terms: &GateTerms,
        outcome: Outcome,
    ) -> Result<PromotionRequest, StoreError> {
        match outcome {
            Outcome::Open => Ok(request.clone()),
            Outcome::Reject { reason } => {
                self.settle(
                    transaction,
                    attribution,
                    request,
                    RequestState::Rejected,
                    &reason,
                    Some(&terms.policy_digest),
                )
                .await
            }
            Outcome::Promote {
                not_after,
                archive_occupants,
                reason,
                renews,
            } => {
                self.promote(
                    transaction,
                    attribution,
                    request,
                    version_id,
                    terms,
                    Promotion {
                        not_after,
                        archive_occupants,
                        renews,
                    },
                    &reason,
                )
                .await
            }
        }
    }

    /// Withdraws an open request (its requester, or an admin — the caller checks who).
    pub async fn withdraw_request(
        &self,
        attribution: &Attribution,
        request_id: i64,
        reason: &str,
    ) -> Result<PromotionRequest, StoreError> {
        let mut transaction = self.begin_write().await?;
        let lock = self.backend == Backend::Postgres;
        let request = fetch_request(&mut *transaction, request_id, lock).await?;
        if request.state != RequestState::Open {
            return Err(StoreError::FailedPrecondition(format!(
                "request {request_id} is {}; only open requests can be withdrawn",
                request.state
            )));
        }
        let request = self
            .settle(
                &mut transaction,
                attribution,
                &request,
                RequestState::Withdrawn,
                reason,
                None,
            )
            .await?;
        self.commit(transaction).await?;
        Ok(request)
    }

    /// Adds a comment to a request.
    pub async fn comment_request(
        &self,
        attribution: &Attribution,
        request_id: i64,
        author: &User,
        body: &str,
    ) -> Result<RequestComment, StoreError> {
        let mut transaction = self.begin_write().await?;
        fetch_request(&mut *transaction, request_id, false).await?;
        let id: i64 = rows::get(
            &sqlx::query(
                "INSERT INTO request_comments (request_id, author_id, body, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(request_id)
            .bind(author.id)
            .bind(body)
            .bind(attribution.at.unix_millis())
            .fetch_one(&mut *transaction)
            .await?,
            "id",
        )?;
        audit::append(
            &mut transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: "request.comment",
                target: request_target(request_id),
                before: None,
                after: Some(json!({ "comment": id, "body": body })),
            },
        )
        .await?;
        self.commit(transaction).await?;
        Ok(RequestComment {
            id,
            author: author.username.clone(),
            body: body.to_owned(),
            created_at: attribution.at,
        })
    }

    pub async fn get_request(&self, request_id: i64) -> Result<RequestDetail, StoreError> {
        let mut connection = self.reader.acquire().await?;
        let request = fetch_request(&mut *connection, request_id, false).await?;
        let reviews = sqlx::query(
            "SELECT rv.id, rv.request_id, u.username, u.printed_name, rv.role, rv.decision, rv.comment,
                    rv.meaning, rv.evidence_digest, rv.signed_record, rv.signature, rv.created_at
             FROM reviews rv JOIN users u ON u.id = rv.reviewer_id WHERE rv.request_id = $1 ORDER BY rv.id",
        )
        .bind(request_id)
        .fetch_all(&mut *connection)
        .await?
        .iter()
        .map(review_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let comments = sqlx::query(
            "SELECT c.id, u.username, c.body, c.created_at FROM request_comments c
             JOIN users u ON u.id = c.author_id WHERE c.request_id = $1 ORDER BY c.id",
        )
        .bind(request_id)
        .fetch_all(&mut *connection)
        .await?
        .iter()
        .map(|row| {
            Ok(RequestComment {
                id: rows::get(row, "id")?,
                author: rows::parsed_column(row, "username", Username::parse)?,
                body: rows::get(row, "body")?,
                created_at: rows::timestamp(row, "created_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(RequestDetail {
            request,
            reviews,
            comments,
        })
    }

    /// Requests, newest first.
    pub async fn list_requests(
        &self,
        filter: &RequestFilter,
    ) -> Result<Vec<PromotionRequest>, StoreError> {
        let mut sql = super::rows::SqlBuilder::new(&format!(
            "SELECT {REQUEST_COLUMNS} {REQUEST_FROM} WHERE 1 = 1"
        ));
        if let Some(state) = filter.state {
            sql.push(" AND r.state = ")
                .push_bind(super::rows::BindValue::Text(state.as_str().to_owned()));
        }
        if let Some(requester) = &filter.requester {
            sql.push(" AND u.username = ")
                .push_bind(super::rows::BindValue::Text(requester.to_string()));
        }
        if let Some(model) = &filter.model {
            sql.push(" AND m.name = ")
                .push_bind(super::rows::BindValue::Text(model.to_string()));
        }
        sql.push(" ORDER BY r.id DESC LIMIT ")
            .push_bind(super::rows::BindValue::Integer(i64::from(
                filter.limit.max(1),
            )));
        sql.build()
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(request_from_row)
            .collect()
    }

    /// The open requests of the versions bound to an artifact (whose scan report just changed).
    pub async fn open_requests_on_artifact(
        &self,
        digest: &modelgate_core::Digest,
    ) -> Result<Vec<PromotionRequest>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} {REQUEST_FROM} WHERE r.state = 'open' AND v.digest = $1
             ORDER BY r.id"
        )))
        .bind(digest.to_string())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(request_from_row)
        .collect()
    }

    /// The versions of a model in a stage, with their approval and suspension, for the gate.
    pub async fn stage_occupants(
        &self,
        model: &ModelName,
        stage: Stage,
    ) -> Result<Vec<StageOccupant>, StoreError> {
        let generation = match &self.views {
            Some(views) => {
                if let Some(occupants) = views.occupants(model.as_str(), stage) {
                    return Ok(occupants);
                }
                Some(views.generation())
            }
            None => None,
        };
        let occupants = self.read_stage_occupants(model, stage).await?;
        if let (Some(views), Some(generation)) = (&self.views, generation) {
            views.remember_occupants(generation, model.as_str(), stage, &occupants);
        }
        Ok(occupants)
    }

    async fn read_stage_occupants(
        &self,
        model: &ModelName,
        stage: Stage,
    ) -> Result<Vec<StageOccupant>, StoreError> {
        sqlx::query(
            "SELECT v.number, v.digest, v.approved_stage, v.not_after, v.suspension_reason,
                    COALESCE(v.evidence_changed_after_approval, v.approval_review_reason) AS review_flag
             FROM versions v
             JOIN models m ON m.id = v.model_id
             WHERE m.name = $1 AND v.stage = $2 AND m.archived_at IS NULL ORDER BY v.number",
        )
        .bind(model.as_str())
        .bind(stage.as_str())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(StageOccupant {
                version: VersionNumber::new(rows::get(row, "number")?)?,
                digest: rows::get(row, "digest")?,
                approved_for: rows::get::<Option<String>>(row, "approved_stage")?
                    .map(|stage| rows::parsed("approved_stage", Stage::parse, &stage))
                    .transpose()?,
                not_after: rows::optional_timestamp(row, "not_after")?,
                suspended: rows::get(row, "suspension_reason")?,
                evidence_changed: rows::get(row, "review_flag")?,
            })
        })
        .collect()
    }

    /// The version a rollback of `stage` would restore: the newest version that left the stage (archived)
    /// while its approval for that stage is still valid at `now` and it is not suspended.
    pub async fn rollback_candidate(
        &self,
        model: &ModelName,
        stage: Stage,
        now: modelgate_core::Timestamp,
    ) -> Result<Option<VersionNumber>, StoreError> {
        let row = sqlx::query(
            "SELECT v.number FROM versions v JOIN models m ON m.id = v.model_id
             WHERE m.name = $1 AND v.stage = $2 AND v.approved_stage = $3 AND v.not_after > $4
               AND v.suspension_reason IS NULL
               AND v.number < COALESCE(
                   (SELECT MIN(o.number) FROM versions o WHERE o.model_id = v.model_id AND o.stage = $3),
                   2147483647)
             ORDER BY v.number DESC LIMIT 1",
        )
        .bind(model.as_str())
        .bind(Stage::Archived.as_str())
        .bind(stage.as_str())
        .bind(now.unix_millis())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| Ok(VersionNumber::new(rows::get(&row, "number")?)?))
            .transpose()
    }

    /// Suspends (with a reason) or reinstates (`None`) a version.
    pub async fn set_suspension(
        &self,
        attribution: &Attribution,
        model_name: &ModelName,
        number: VersionNumber,
        reason: Option<&str>,
    ) -> Result<modelgate_core::Version, StoreError> {
        let (mut transaction, version) = self.begin_version_change(model_name, number).await?;
        match (reason, &version.suspension) {
            (Some(_), Some(_)) => {
                return Err(StoreError::FailedPrecondition(format!(
                    "version {number} of {model_name} is already suspended"
                )));
            }
            (None, None) => {
                return Err(StoreError::FailedPrecondition(format!(
                    "version {number} of {model_name} is not suspended"
                )));
            }
            _ => {}
        }
        sqlx::query(
            "UPDATE versions SET suspended_at = $1, suspension_reason = $2, suspension_source = $3
             WHERE id = $4",
        )
        .bind(reason.map(|_| attribution.at.unix_millis()))
        .bind(reason.map(str::to_owned))
        .bind(reason.map(|_| "risk_officer"))
        .bind(version.id)
        .execute(&mut *transaction)
        .await?;
        let action = if reason.is_some() {
            "version.suspend"
        } else {
            "version.reinstate"
        };
        self.finish_version_change(transaction, attribution, action, version)
            .await
    }

    /// The request's version and the people barred from approving it.
    async fn request_parties(
        &self,
        transaction: &mut Transaction<'static, Any>,
        request: &PromotionRequest,
    ) -> Result<(i64, RequestParties), StoreError> {
        let row = sqlx::query(
            "SELECT v.id AS version_id, v.created_by, o.username AS owner, f.username AS former_owner
             FROM promotion_requests r
             JOIN versions v ON v.id = r.version_id JOIN models m ON m.id = r.model_id
             JOIN users o ON o.id = m.owner_id LEFT JOIN users f ON f.id = r.owner_at_open_id
             WHERE r.id = $1",
        )
        .bind(request.id)
        .fetch_one(&mut **transaction)
        .await?;
        let owner_at_open = rows::get::<Option<String>>(&row, "former_owner")?
            .map(|name| rows::parsed("former_owner", Username::parse, &name))
            .transpose()?;
        Ok((
            rows::get(&row, "version_id")?,
            RequestParties {
                version_creator: rows::get(&row, "created_by")?,
                requester: request.requester.clone(),
                model_owner: rows::parsed_column(&row, "owner", Username::parse)?,
                owner_at_open,
            },
        ))
    }

    /// The people barred from approving a request, for "who could sign" (read outside a transaction).
    pub async fn parties_of_request(
        &self,
        request: &PromotionRequest,
    ) -> Result<RequestParties, StoreError> {
        let mut transaction = self.reader.begin().await?;
        let (_, parties) = self.request_parties(&mut transaction, request).await?;
        transaction.rollback().await?;
        Ok(parties)
    }

    /// Closes a request as approved, rejected or withdrawn.
    async fn settle(
        &self,
        transaction: &mut Transaction<'static, Any>,
        attribution: &Attribution,
        request: &PromotionRequest,
        state: RequestState,
        reason: &str,
        policy_digest: Option<&str>,
    ) -> Result<PromotionRequest, StoreError> {
        let settled = sqlx::query(
            "UPDATE promotion_requests SET state = $1, decided_at = $2, decision_reason = $3
             WHERE id = $4 AND state = 'open'",
        )
        .bind(state.as_str())
        .bind(attribution.at.unix_millis())
        .bind(reason)
        .bind(request.id)
        .execute(&mut **transaction)
        .await?
        .rows_affected();
        if settled != 1 {
            return Err(StoreError::Conflict(format!(
                "request {} was decided meanwhile; nothing was written",
                request.id
            )));
        }
        let after = fetch_request(&mut **transaction, request.id, false).await?;
        audit::append_decision(
            transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: match state {
                    RequestState::Approved => "request.approve",
                    RequestState::Rejected => "request.reject",
                    RequestState::Withdrawn => "request.withdraw",
                    RequestState::Open => "request.open",
                },
                target: request_target(request.id),
                before: Some(request_snapshot(request)),
                after: Some(request_snapshot(&after)),
            },
            policy_digest.unwrap_or(&request.policy_digest),
        )
        .await?;
        Ok(after)
    }

    /// Approves the request and moves its version into the target stage, archiving the other occupants
    /// of a single-occupancy stage. The version's `UPDATE` restates the preconditions (still in the
    /// request's from-stage, not suspended, the same evidence revision): if any moved, nothing is written.
    #[allow(clippy::too_many_arguments)]
    async fn promote(
        &self,
        transaction: &mut Transaction<'static, Any>,
        attribution: &Attribution,
        request: &PromotionRequest,
        version_id: i64,
        terms: &GateTerms,
        promotion: Promotion,
        reason: &str,
    ) -> Result<PromotionRequest, StoreError> {
        let Promotion {
            not_after,
            archive_occupants,
            renews,
        } = promotion;
        let model = fetch_model(&mut **transaction, &request.model_name).await?;
        let revalidation = request.kind == RequestKind::Revalidation;
        // A re-validation's approval lifts a suspension: what it lifts is recorded.
        let lifted: Option<String> = if revalidation {
            rows::get(
                &sqlx::query("SELECT suspension_reason FROM versions WHERE id = $1")
                    .bind(version_id)
                    .fetch_one(&mut **transaction)
                    .await?,
                "suspension_reason",
            )?
        } else {
            None
        };
        // A renewing promotion is a new approval; a rollback on the approval the version still holds
        // keeps that approval as it is (its request, signers, expiry and review flags).
        let moved = if revalidation {
            sqlx::query(
                "UPDATE versions SET approved_at = $1, not_after = $2, approval_request_id = $3,
                        approved_stage = $4, evidence_changed_after_approval = NULL,
                        approval_review_reason = NULL, suspension_reason = NULL, suspended_at = NULL,
                        suspension_source = NULL
                 WHERE id = $5 AND stage = $4 AND evidence_revision = $6
                   AND (suspension_reason IS NULL OR suspension_source IN ('monitoring', 'policy'))",
            )
            .bind(attribution.at.unix_millis())
            .bind(not_after.unix_millis())
            .bind(request.id)
            .bind(request.target_stage.as_str())
            .bind(version_id)
            .bind(terms.evidence_revision)
        } else if renews {
            sqlx::query(
                "UPDATE versions SET stage = $1, approved_at = $2, not_after = $3, approval_request_id = $4,
                        approved_stage = $1, evidence_changed_after_approval = NULL,
                        approval_review_reason = NULL
                 WHERE id = $5 AND stage = $6 AND suspension_reason IS NULL AND evidence_revision = $7",
            )
            .bind(request.target_stage.as_str())
            .bind(attribution.at.unix_millis())
            .bind(not_after.unix_millis())
            .bind(request.id)
            .bind(version_id)
            .bind(request.from_stage.as_str())
            .bind(terms.evidence_revision)
        } else {
            sqlx::query(
                "UPDATE versions SET stage = $1
                 WHERE id = $2 AND stage = $3 AND suspension_reason IS NULL AND evidence_revision = $4
                   AND approved_stage = $1",
            )
            .bind(request.target_stage.as_str())
            .bind(version_id)
            .bind(request.from_stage.as_str())
            .bind(terms.evidence_revision)
        }
        .execute(&mut **transaction)
        .await?
        .rows_affected();
        if moved != 1 {
            return Err(StoreError::Conflict(format!(
                "version {} of {} changed while request {} was being decided; nothing was written",
                request.version, request.model_name, request.id
            )));
        }
        if archive_occupants && !revalidation {
            let previous = sqlx::query(
                "SELECT number FROM versions WHERE model_id = $1 AND stage = $2 AND id != $3 ORDER BY number",
            )
            .bind(model.id)
            .bind(request.target_stage.as_str())
            .bind(version_id)
            .fetch_all(&mut **transaction)
            .await?;
            for row in previous {
                let number = VersionNumber::new(rows::get(&row, "number")?)?;
                // The version a rollback replaces loses its approval: it cannot come back on it.
                let update = if request.kind == RequestKind::Rollback {
                    "UPDATE versions SET stage = $1, approved_stage = NULL WHERE model_id = $2 AND number = $3"
                } else {
                    "UPDATE versions SET stage = $1 WHERE model_id = $2 AND number = $3"
                };
                sqlx::query(update)
                    .bind(Stage::Archived.as_str())
                    .bind(model.id)
                    .bind(i64::from(number.get()))
                    .execute(&mut **transaction)
                    .await?;
                audit::append_decision(
                    transaction,
                    self.backend,
                    attribution,
                    AuditRecord {
                        action: "version.archive",
                        target: version_target(&request.model_name, number),
                        before: Some(json!({ "stage": request.target_stage.as_str() })),
                        after: Some(json!({
                            "stage": Stage::Archived.as_str(),
                            "reason": format!("superseded by version {} (request {})", request.version, request.id),
                        })),
                    },
                    &terms.policy_digest,
                )
                .await?;
            }
        }
        audit::append_decision(
            transaction,
            self.backend,
            attribution,
            AuditRecord {
                action: match request.kind {
                    RequestKind::Rollback => "version.rollback",
                    RequestKind::Revalidation => "version.revalidate",
                    RequestKind::Promotion => "version.promote",
                },
                target: version_target(&request.model_name, request.version),
                before: Some(json!({ "stage": request.from_stage.as_str() })),
                after: Some(json!({
                    "stage": request.target_stage.as_str(),
                    "request": request.id,
                    "not_after": not_after.unix_millis(),
                    "policy_digest": terms.policy_digest,
                    "evidence_digest": terms.evidence_digest,
                })),
            },
            &terms.policy_digest,
        )
        .await?;
        if let Some(suspension) = lifted {
            audit::append_decision(
                transaction,
                self.backend,
                attribution,
                AuditRecord {
                    action: "version.reinstate",
                    target: version_target(&request.model_name, request.version),
                    before: Some(json!({ "suspension": suspension })),
                    after: Some(json!({ "reinstated_by_request": request.id })),
                },
                &terms.policy_digest,
            )
            .await?;
        }
        self.settle(
            transaction,
            attribution,
            request,
            RequestState::Approved,
            reason,
            Some(&terms.policy_digest),
        )
        .await
    }

    /// Withdraws the open requests of a version (`version`) or of every version of a model, as part of
    /// archiving it: a request about an archived version no longer applies.
    pub(crate) async fn withdraw_open_requests(
        &self,
        transaction: &mut Transaction<'static, Any>,
        attribution: &Attribution,
        model_id: i64,
        version_id: Option<i64>,
        reason: &str,
    ) -> Result<(), StoreError> {
        let ids = match version_id {
            Some(version_id) => sqlx::query(
                "SELECT id FROM promotion_requests WHERE model_id = $1 AND state = 'open'
                   AND version_id = $2 ORDER BY id",
            )
            .bind(model_id)
            .bind(version_id),
            None => sqlx::query(
                "SELECT id FROM promotion_requests WHERE model_id = $1 AND state = 'open' ORDER BY id",
            )
            .bind(model_id),
        }
        .fetch_all(&mut **transaction)
        .await?;
        for row in ids {
            let request = fetch_request(&mut **transaction, rows::get(&row, "id")?, false).await?;
            self.settle(
                transaction,
                attribution,
                &request,
                RequestState::Withdrawn,
                reason,
                None,
            )
            .await?;
        }
        Ok(())
    }
}

/// What a newly applied policy does to an approval it would not grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsequenceAction {
    ReviewDue,
    Suspend,
}

/// An approval in force that a new policy would not grant, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConsequence {
    pub model: ModelName,
    pub version: VersionNumber,
    pub version_id: i64,
    pub approval_request_id: i64,
    pub action: ConsequenceAction,
    pub reasons: Vec<String>,
}

/// An approval in force: a version in the stage its approval is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldApprovalRecord {
    pub model: ModelName,
    pub version: VersionNumber,
    pub version_id: i64,
    pub stage: Stage,
    pub approval_request_id: i64,
    /// The version's evidence revision when it was read: what it was judged on.
    pub evidence_revision: i64,
}

impl Store {
    /// Every approval in force (versions in the stage their approval is for), for judging a new policy.
    pub async fn held_approvals(&self) -> Result<Vec<HeldApprovalRecord>, StoreError> {
        held_approvals_in(&self.reader).await
    }
}

/// The approvals in force, read through `executor` (the reader, or a write transaction).
async fn held_approvals_in<'c, E>(executor: E) -> Result<Vec<HeldApprovalRecord>, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    sqlx::query(
        "SELECT m.name, v.number, v.id, v.approved_stage AS stage, v.approval_request_id,
                    v.evidence_revision
             FROM versions v JOIN models m ON m.id = v.model_id
             WHERE v.approval_request_id IS NOT NULL AND v.approved_stage IS NOT NULL
               AND m.archived_at IS NULL
             ORDER BY m.name, v.number",
    )
    .fetch_all(executor)
    .await?
    .iter()
    .map(|row| {
        Ok(HeldApprovalRecord {
            model: rows::parsed_column(row, "name", ModelName::parse)?,
            version: VersionNumber::new(rows::get(row, "number")?)?,
            version_id: rows::get(row, "id")?,
            stage: rows::parsed_column(row, "stage", Stage::parse)?,
            approval_request_id: rows::get(row, "approval_request_id")?,
            evidence_revision: rows::get(row, "evidence_revision")?,
        })
    })
    .collect()
}

/// How a version enters the stage of its request.
#[derive(Debug, Clone, Copy)]
struct Promotion {
    not_after: modelgate_core::Timestamp,
    archive_occupants: bool,
    renews: bool,
}

/// Serialises applying a policy against decisions on PostgreSQL (decisions hold it shared).
pub(crate) const POLICY_LOCK: i64 = 0x6d67_706f_6c69;

/// Approvals given for the current evidence by people who could still give them: active, still holding
/// the role they approved in, and not holding admin unless the policy lets admins approve. (Whether they
/// have since become a party of the request is the core's check, `decide_review`.)
impl Store {
    /// The approvals of a request that count now, by the rule the decision applies: made on
    /// `evidence_digest`, by an active reviewer who still holds the role, and not by an admin unless
    /// `admins_may_approve`. (Separation of duties among them is the core's `counting`.)
    pub async fn counted_approvals(
        &self,
        request_id: i64,
        evidence_digest: &str,
        admins_may_approve: bool,
    ) -> Result<Vec<CountedApproval>, StoreError> {
        counted_approvals(
            &self.reader,
            request_id,
            evidence_digest,
            admins_may_approve,
        )
        .await
    }
}

async fn counted_approvals<'c, E>(
    executor: E,
    request_id: i64,
    evidence_digest: &str,
    admins_may_approve: bool,
) -> Result<Vec<CountedApproval>, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    sqlx::query(
        "SELECT u.username, rv.role FROM reviews rv JOIN users u ON u.id = rv.reviewer_id
         WHERE rv.request_id = $1 AND rv.decision = 'approve' AND rv.evidence_digest = $2
           AND u.deactivated_at IS NULL
           AND EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = rv.role)
           AND ($3 OR NOT EXISTS (SELECT 1 FROM user_roles a WHERE a.user_id = u.id AND a.role = 'admin'))
         ORDER BY rv.id",
    )
    .bind(request_id)
    .bind(evidence_digest)
    .bind(admins_may_approve)
    .fetch_all(executor)
    .await?
    .iter()
    .map(|row| {
        Ok(CountedApproval {
            reviewer: rows::parsed_column(row, "username", Username::parse)?,
            role: rows::parsed_column(row, "role", Role::parse)?,
        })
    })
    .collect()
}

/// Users holding a role, for "who could give this sign-off".
impl Store {
    pub async fn users_with_role(&self, role: &Role) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, r.role FROM users u LEFT JOIN user_roles r ON r.user_id = u.id
             WHERE u.deactivated_at IS NULL AND u.id IN (SELECT user_id FROM user_roles WHERE role = $1)
             ORDER BY u.username, r.role"
        )))
        .bind(role.as_str())
        .fetch_all(&self.reader)
        .await?;
        users_from_rows(&rows)
    }
}

/// An open request as a reviewer's inbox needs it: who takes part, the model's tier, and the approvals
/// given so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRequest {
    pub request: PromotionRequest,
    pub risk_tier: modelgate_core::RiskTier,
    pub parties: RequestParties,
    /// Approvals by active reviewers still holding their role, made on the version's evidence as it is
    /// now (its evidence revision: an approval given before a card or evaluation changed is void). Reviews
    /// stored before revisions were recorded count when they share the latest approval's digest.
    pub approvals: Vec<CountedApproval>,
    /// Whether an approver holds admin (for the policy's `admins_may_approve`).
    pub admin_approvers: Vec<Username>,
}

impl Store {
    /// Every open request, oldest first, with its parties and approvals, in two queries. Kept in memory
    /// until the next write: on SQLite (one writer) until the next commit; on PostgreSQL until the write
    /// generation moves, which one small query per call tells.
    pub async fn review_queue(&self) -> Result<std::sync::Arc<Vec<QueuedRequest>>, StoreError> {
        if let Some(views) = &self.views {
            if let Some(queue) = views.review_queue() {
                return Ok(queue);
            }
            let generation = views.generation();
            let queue = std::sync::Arc::new(self.read_review_queue().await?);
            views.remember_review_queue(generation, &queue);
            return Ok(queue);
        }
        let generation = self.write_generation().await?;
        if let Some(queue) = self.replica_views.review_queue(generation) {
            return Ok(queue);
        }
        let queue = std::sync::Arc::new(self.read_review_queue().await?);
        self.replica_views.remember_review_queue(generation, &queue);
        Ok(queue)
    }

    async fn read_review_queue(&self) -> Result<Vec<QueuedRequest>, StoreError> {
        let mut connection = self.reader.acquire().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS}, m.risk_tier, v.created_by, o.username AS owner,
                    f.username AS former_owner
             {REQUEST_FROM} JOIN users o ON o.id = m.owner_id
             LEFT JOIN users f ON f.id = r.owner_at_open_id
             WHERE r.state = 'open' ORDER BY r.id"
        )))
        .fetch_all(&mut *connection)
        .await?;
        let mut queue = Vec::with_capacity(rows.len());
        let mut positions = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let request = request_from_row(row)?;
            let owner_at_open = rows::get::<Option<String>>(row, "former_owner")?
                .map(|name| rows::parsed("former_owner", Username::parse, &name))
                .transpose()?;
            positions.insert(request.id, queue.len());
            queue.push(QueuedRequest {
                parties: RequestParties {
                    version_creator: rows::get(row, "created_by")?,
                    requester: request.requester.clone(),
                    model_owner: rows::parsed_column(row, "owner", Username::parse)?,
                    owner_at_open,
                },
                risk_tier: rows::parsed_column(row, "risk_tier", modelgate_core::RiskTier::parse)?,
                request,
                approvals: Vec::new(),
                admin_approvers: Vec::new(),
            });
        }
        let approvals = sqlx::query(
            "SELECT rv.request_id, u.username, rv.role, rv.evidence_digest,
                    CAST(CASE WHEN EXISTS (SELECT 1 FROM user_roles a WHERE a.user_id = u.id AND a.role = 'admin')
                         THEN 1 ELSE 0 END AS BIGINT) AS is_admin
             FROM reviews rv JOIN users u ON u.id = rv.reviewer_id
             JOIN promotion_requests r ON r.id = rv.request_id
             JOIN versions v ON v.id = r.version_id
             WHERE r.state = 'open' AND rv.decision = 'approve' AND u.deactivated_at IS NULL
               AND (rv.evidence_revision IS NULL OR rv.evidence_revision = v.evidence_revision)
               AND EXISTS (SELECT 1 FROM user_roles h WHERE h.user_id = u.id AND h.role = rv.role)
             ORDER BY rv.request_id, rv.id DESC",
        )
        .fetch_all(&mut *connection)
        .await?;
        let mut latest_digest: Option<(i64, String)> = None;
        for row in &approvals {
            let request_id: i64 = rows::get(row, "request_id")?;
            let digest: String = rows::get(row, "evidence_digest")?;
            // Rows come newest first per request: the first one's digest is the latest evidence signed.
            match &latest_digest {
                Some((id, latest)) if *id == request_id && *latest != digest => continue,
                Some((id, _)) if *id == request_id => {}
                _ => latest_digest = Some((request_id, digest)),
            }
            let Some(&position) = positions.get(&request_id) else {
                continue;
            };
            let reviewer = rows::parsed_column(row, "username", Username::parse)?;
            if rows::get::<i64>(row, "is_admin")? == 1 {
                queue[position].admin_approvers.push(reviewer.clone());
            }
            queue[position].approvals.push(CountedApproval {
                reviewer,
                role: rows::parsed_column(row, "role", Role::parse)?,
            });
        }
        // Oldest first, as `core::promotion::counting` takes them (a person counts in their first role).
        for queued in &mut queue {
            queued.approvals.reverse();
        }
        Ok(queue)
    }
}
