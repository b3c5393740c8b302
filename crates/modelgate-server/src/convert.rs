//! Conversions at the edge: domain records into wire types, and wire inputs (cursors, tag filters,
//! times) into domain values.

use crate::error::ApiError;
use base64::Engine;
use modelgate_api as api;
use modelgate_core::{Model, TagKey, Timestamp, TokenRecord, User, Version};
use std::collections::BTreeMap;

/// RFC 3339 in UTC with millisecond precision: `2026-11-27T14:32:24.123Z`.
pub fn format_time(timestamp: Timestamp) -> String {
    timestamp.to_rfc3339()
}

pub fn model(model: &Model) -> api::Model {
    api::Model {
        name: model.name.to_string(),
        owner: model.owner.to_string(),
        risk_tier: model.risk_tier.to_string(),
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
        stage: version.stage.to_string(),
        created_by: version.created_by.clone(),
        created_at: format_time(version.created_at),
        artifact_url: format!(
            "/api/v1/models/{}/versions/{}/artifact",
            version.model_name, version.number
        ),
        approval: version.approval.as_ref().map(|approval| {
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
            api::VersionApproval {
                stage: approval.stage.to_string(),
                evidence_changed_after_approval: version.evidence_changed_after_approval.clone(),
                review_reason: version.approval_review_reason.clone(),
                approved_at: format_time(approval.approved_at),
                not_after: format_time(approval.not_after),
                request: approval.request_id,
                status: modelgate_core::promotion::approval_status(
                    &occupant,
                    context.now,
                    context.review_due_days,
                )
                .as_str()
                .to_owned(),
                suspension: version.suspension.clone(),
            }
        }),
        suspension: version.suspension.clone(),
    }
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
