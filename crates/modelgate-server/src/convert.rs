//! Conversions at the edge: domain records into wire types, and wire inputs (cursors, tag filters,
//! times) into domain values. The closed sets (stages, tiers, states, decisions …) map to their wire
//! enums here, through [`Wire`], with exhaustive matches both ways: a variant added on either side does
//! not compile until it is mapped.

use crate::error::ApiError;
use base64::Engine;
use modelgate_api as api;
use modelgate_core::promotion::{ApprovalStatus, RequestKind, RequestState, ReviewDecision};
use modelgate_core::{
    EvaluationMode, Model, RiskTier, Stage, TagKey, Timestamp, TokenRecord, User, Version,
};
use modelgate_eval::dataset::{Format, Task};
use modelgate_policy::{CheckStatus, NotRegranted};
use modelgate_store::JobState;
use std::collections::BTreeMap;

/// A domain value of a closed set and its wire enum, one to one.
pub trait Wire: Sized {
    type Wire;
    fn to_wire(self) -> Self::Wire;
    fn from_wire(wire: Self::Wire) -> Self;
}

/// `impl Wire` for a domain enum and its wire enum whose variants have the same names: an exhaustive
/// match each way.
macro_rules! wire_mapping {
    ($domain:ty => $wire:ty { $($variant:ident),+ $(,)? }) => {
        impl Wire for $domain {
            type Wire = $wire;

            fn to_wire(self) -> $wire {
                match self {
                    $(<$domain>::$variant => <$wire>::$variant,)+
                }
            }

            fn from_wire(wire: $wire) -> Self {
                match wire {
                    $(<$wire>::$variant => <$domain>::$variant,)+
                }
            }
        }
    };
}

wire_mapping!(RiskTier => api::RiskTier { Low, Medium, High, Critical });
wire_mapping!(Stage => api::Stage { Development, Staging, Production, Archived });
wire_mapping!(RequestState => api::RequestState { Open, Approved, Rejected, Withdrawn });
wire_mapping!(RequestKind => api::RequestKind { Promotion, Rollback, Revalidation });
wire_mapping!(ReviewDecision => api::ReviewDecision { Approve, Reject, RequestChanges });
wire_mapping!(ApprovalStatus => api::ApprovalStatus { Active, ReviewDue, Expired, Suspended });
wire_mapping!(EvaluationMode => api::EvaluationMode { Model, Predictions });
wire_mapping!(JobState => api::JobState { Queued, Running, Succeeded, Failed, Cancelled });
wire_mapping!(Task => api::DatasetTask { Binary, Multiclass, Regression });
wire_mapping!(Format => api::DatasetFormat { Csv, Parquet });
wire_mapping!(NotRegranted => api::NotRegrantedAction { Keep, ReviewDue, Suspend });
wire_mapping!(modelgate_scan::Verdict => api::ScanVerdict { Clean, Unscanned, Suspicious, Dangerous });

/// The snake_case name a scanner enum (finding kind, format) serialises as; the wire keeps them as text
/// (an open set that grows with the engine).
pub fn name_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A scan report on record, on the wire.
pub fn scan_report(
    record: &modelgate_store::ScanRecord,
    report: &modelgate_scan::ScanReport,
) -> api::ScanReport {
    api::ScanReport {
        artifact_digest: record.artifact_digest.to_string(),
        verdict: report.verdict.to_wire(),
        findings: report
            .findings
            .iter()
            .map(|finding| api::ScanFinding {
                kind: name_of(&finding.kind),
                severity: finding.severity.to_wire(),
                module: finding.module.clone(),
                name: finding.name.clone(),
                path: finding.path.clone(),
                offset: finding.offset,
                detail: finding.detail.clone(),
            })
            .collect(),
        formats: report.formats.iter().map(name_of).collect(),
        engine: report.engine.clone(),
        outdated: report.is_outdated(),
        bytes_scanned: report.bytes_scanned,
        bytes_read: report.bytes_read,
        report_digest: record.report_digest.clone(),
        scanned_at: format_time(record.scanned_at),
    }
}

/// A policy check's outcome on the wire: its status, and the detail of one that did not pass.
pub fn check_status(status: &CheckStatus) -> (api::CheckStatus, Option<String>) {
    match status {
        CheckStatus::Passed => (api::CheckStatus::Passed, None),
        CheckStatus::Failed(why) => (api::CheckStatus::Failed, Some(why.clone())),
        CheckStatus::Missing(why) => (api::CheckStatus::Missing, Some(why.clone())),
        CheckStatus::Error(why) => (api::CheckStatus::Error, Some(why.clone())),
    }
}

/// An evaluation's mode as the store keeps it (`model`, `predictions`), on the wire.
pub fn stored_evaluation_mode(text: &str) -> Result<api::EvaluationMode, ApiError> {
    EvaluationMode::parse(text)
        .map(Wire::to_wire)
        .map_err(|invalid| ApiError::internal(&invalid))
}

/// A dataset's format as the store keeps it (`csv`, `parquet`), on the wire.
pub fn stored_dataset_format(text: &str) -> Result<api::DatasetFormat, ApiError> {
    text.parse::<api::DatasetFormat>()
        .map_err(|unknown| ApiError::internal(&unknown))
}

/// An evaluation's status as the store keeps it (`counted`, `exploratory`, `superseded`), on the wire.
pub fn stored_evaluation_status(text: &str) -> Result<api::EvaluationStatus, ApiError> {
    text.parse::<api::EvaluationStatus>()
        .map_err(|unknown| ApiError::internal(&unknown))
}

/// RFC 3339 in UTC with millisecond precision: `2026-11-27T14:32:24.123Z`.
pub fn format_time(timestamp: Timestamp) -> String {
    timestamp.to_rfc3339()
}

pub fn model(model: &Model) -> api::Model {
    api::Model {
        name: model.name.to_string(),
        owner: model.owner.to_string(),
        risk_tier: model.risk_tier.to_wire(),
        description: model.description.clone(),
        intended_use: model.intended_use.clone(),
        tags: tags(&model.tags),
        created_by: model.created_by.clone(),
        created_at: format_time(model.created_at),
        updated_at: format_time(model.updated_at),
        archived_at: model.archived_at.map(format_time),
        version_count: model.version_count,
    }
}

/// What the approval status of a version depends on besides the version: the time, and how long before
/// expiry the policy calls for review.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalContext {
    pub now: Timestamp,
    pub review_due_days: u32,
}

pub fn version(version: &Version, context: ApprovalContext) -> api::Version {
    let lineage = &version.lineage;
    let metadata = serde_json::from_str(&lineage.metadata_json).unwrap_or_default();
    api::Version {
        model: version.model_name.to_string(),
        version: version.number.get(),
        digest: version.digest.to_string(),
        size_bytes: version.size_bytes,
        format: version.format.clone(),
        media_type: version.media_type.clone(),
        lineage: api::Lineage {
            code_repository: lineage.code_repository.clone(),
            code_commit: lineage.code_commit.clone(),
            training_data_uri: lineage.training_data_uri.clone(),
            training_data_digest: lineage
                .training_data_digest
                .map(|digest| digest.to_string()),
            parameters: lineage.parameters.clone(),
            metadata,
        },
        description: version.description.clone(),
        tags: tags(&version.tags),
        stage: version.stage.to_wire(),
        created_by: version.created_by.clone(),
        created_at: format_time(version.created_at),
        artifact_url: format!(
            "/api/v1/models/{}/versions/{}/artifact",
            version.model_name, version.number
        ),
        approval: version
            .approval
            .as_ref()
            .map(|approval| api::VersionApproval {
                stage: approval.stage.to_wire(),
                evidence_changed_after_approval: version.evidence_changed_after_approval.clone(),
                review_reason: version.approval_review_reason.clone(),
                approved_at: format_time(approval.approved_at),
                not_after: format_time(approval.not_after),
                request: approval.request_id,
                status: approval_status_of(version, approval, &context).to_wire(),
                suspension: version.suspension.clone(),
            }),
        suspension: version.suspension.clone(),
        monitoring: None,
    }
}

/// The standing of a version's approval now: the gate's own rule (`approval_status`) on the version.
pub fn approval_status_of(
    version: &Version,
    approval: &modelgate_core::VersionApproval,
    context: &ApprovalContext,
) -> modelgate_core::promotion::ApprovalStatus {
    let occupant = modelgate_core::promotion::StageOccupant {
        version: version.number,
        digest: version.digest.to_string(),
        approved_for: Some(approval.stage),
        not_after: Some(approval.not_after),
        suspended: version.suspension.clone(),
        evidence_changed: version
            .evidence_changed_after_approval
            .clone()
            .or_else(|| version.approval_review_reason.clone()),
    };
    modelgate_core::promotion::approval_status(&occupant, context.now, context.review_due_days)
}

pub fn user(user: &User) -> api::User {
    api::User {
        username: user.username.to_string(),
        printed_name: user.printed_name.clone(),
        email: user.email.clone(),
        roles: user.roles.iter().map(ToString::to_string).collect(),
        active: user.active,
        has_password: user.has_password,
        created_at: format_time(user.created_at),
    }
}

pub fn token(token: &TokenRecord) -> api::Token {
    api::Token {
        id: token.id.clone(),
        name: token.name.to_string(),
        username: token.username.to_string(),
        created_at: format_time(token.created_at),
        expires_at: token.expires_at.map(format_time),
        last_used_at: token.last_used_at.map(format_time),
        revoked_at: token.revoked_at.map(format_time),
    }
}

fn tags(tags: &BTreeMap<TagKey, String>) -> BTreeMap<String, String> {
    tags.iter()
        .map(|(key, value)| (key.to_string(), value.clone()))
        .collect()
}

/// Parses wire tags into validated keys.
pub fn parse_tags(tags: &BTreeMap<String, String>) -> Result<BTreeMap<TagKey, String>, ApiError> {
    crate::text::check_tags("tags", tags)?;
    tags.iter()
        .map(|(key, value)| Ok((TagKey::parse(key)?, value.clone())))
        .collect()
}

/// `key` or `key=value` from a `tag` query parameter.
pub fn parse_tag_filter(text: &str) -> Result<(TagKey, Option<String>), ApiError> {
    match text.split_once('=') {
        Some((key, value)) => Ok((TagKey::parse(key)?, Some(value.to_owned()))),
        None => Ok((TagKey::parse(text)?, None)),
    }
}

/// Cursors are opaque to clients: the last key of the previous page, base64url-encoded.
pub fn encode_cursor(last_key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last_key)
}

pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            ApiError::invalid(
                "cursor",
                "cursor: not a cursor this server returned; pass `next_cursor` from the previous page",
            )
        })
}

/// Days from now as an expiry time; 0 means never.
pub fn expiry_after_days(now: Timestamp, days: u32) -> Option<Timestamp> {
    (days > 0).then(|| now.plus_seconds(i64::from(days) * 86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of a closed set maps to the wire value of the same spelling and back.
    fn round_trips<D>(domain: &[D], wire: &[D::Wire], spelling: impl Fn(D) -> String)
    where
        D: Wire + Copy + PartialEq + std::fmt::Debug,
        D::Wire: Copy + PartialEq + std::fmt::Debug + std::fmt::Display,
    {
        assert_eq!(domain.len(), wire.len(), "{domain:?} against {wire:?}");
        for &value in domain {
            let on_the_wire = value.to_wire();
            assert_eq!(on_the_wire.to_string(), spelling(value), "{value:?}");
            assert_eq!(D::from_wire(on_the_wire), value);
        }
        for &on_the_wire in wire {
            assert_eq!(D::from_wire(on_the_wire).to_wire(), on_the_wire);
        }
    }

    #[test]
    fn closed_sets_map_to_their_wire_spelling_and_back() {
        use modelgate_core::promotion::{ApprovalStatus as Approval, RequestKind as Kind};
        use modelgate_core::promotion::{RequestState as State, ReviewDecision as Decision};
        round_trips(&RiskTier::ALL, api::RiskTier::ALL, |tier| {
            tier.as_str().into()
        });
        round_trips(&Stage::ALL, api::Stage::ALL, |stage| stage.as_str().into());
        let states = [
            State::Open,
            State::Approved,
            State::Rejected,
            State::Withdrawn,
        ];
        round_trips(&states, api::RequestState::ALL, |state| {
            state.as_str().into()
        });
        for state in states {
            assert_eq!(State::parse(state.as_str()), Ok(state));
        }
        let kinds = [Kind::Promotion, Kind::Rollback, Kind::Revalidation];
        round_trips(&kinds, api::RequestKind::ALL, |kind| kind.as_str().into());
        let decisions = [
            Decision::Approve,
            Decision::Reject,
            Decision::RequestChanges,
        ];
        round_trips(&decisions, api::ReviewDecision::ALL, |decision| {
            decision.as_str().into()
        });
        let statuses = [
            Approval::Active,
            Approval::ReviewDue,
            Approval::Expired,
            Approval::Suspended,
        ];
        round_trips(&statuses, api::ApprovalStatus::ALL, |status| {
            status.as_str().into()
        });
        let modes = [EvaluationMode::Model, EvaluationMode::Predictions];
        round_trips(&modes, api::EvaluationMode::ALL, |mode| {
            mode.as_str().into()
        });
        for mode in modes {
            assert_eq!(
                stored_evaluation_mode(mode.as_str()).unwrap(),
                mode.to_wire()
            );
        }
        let jobs = [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
        ];
        round_trips(&jobs, api::JobState::ALL, |job| job.as_str().into());
        for job in jobs {
            assert_eq!(JobState::named(job.as_str()), Some(job));
        }
        let tasks = [Task::Binary, Task::Multiclass, Task::Regression];
        round_trips(&tasks, api::DatasetTask::ALL, |task| task.as_str().into());
        let formats = [Format::Csv, Format::Parquet];
        round_trips(&formats, api::DatasetFormat::ALL, |format| {
            format.as_str().into()
        });
        for format in formats {
            assert_eq!(
                stored_dataset_format(format.as_str()).unwrap(),
                format.to_wire()
            );
        }
        let actions = [
            NotRegranted::Keep,
            NotRegranted::ReviewDue,
            NotRegranted::Suspend,
        ];
        round_trips(&actions, api::NotRegrantedAction::ALL, |action| {
            action.as_str().into()
        });
        for status in api::EvaluationStatus::ALL {
            assert_eq!(stored_evaluation_status(status.as_str()).unwrap(), *status);
        }
        assert!(stored_evaluation_status("maybe").is_err());
        let checks = [
            CheckStatus::Passed,
            CheckStatus::Failed("f".into()),
            CheckStatus::Missing("m".into()),
            CheckStatus::Error("e".into()),
        ];
        let statuses: Vec<api::CheckStatus> = checks.iter().map(|c| check_status(c).0).collect();
        assert_eq!(statuses, api::CheckStatus::ALL);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(
            decode_cursor(&encode_cursor("fraud-07")).unwrap(),
            "fraud-07"
        );
        assert!(decode_cursor("***").is_err());
    }

    #[test]
    fn tag_filters() {
        let (key, value) = parse_tag_filter("team=risk").unwrap();
        assert_eq!((key.as_str(), value.as_deref()), ("team", Some("risk")));
        assert_eq!(parse_tag_filter("team").unwrap().1, None);
        assert!(parse_tag_filter("bad key=1").is_err());
    }
}
