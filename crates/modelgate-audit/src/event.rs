//! Audit events and their leaf bytes: the canonical JSON (RFC 8785) of the event, so that anyone can
//! re-derive the leaf hash from the exported line alone.

use serde::{Deserialize, Serialize};

/// Whether the recorded attempt changed state or was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
        }
    }
}

/// One audit event, exactly as it is hashed into the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The event's position in the log, from 0; equal to its leaf index.
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    /// `username`, `system:<reason>`, or `anonymous` for refused unauthenticated attempts.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// `model.create`, `version.tag.set`, `auth.refused`, …
    pub action: String,
    /// The resource: `model/credit-default`, `model/credit-default/version/3`, `user/alice`, …
    pub target: String,
    pub outcome: Outcome,
    /// Why an attempt was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    /// The digest of the policy revision that decided, where one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("audit event: {0}")]
pub struct EventError(String);

impl AuditEvent {
    /// The leaf bytes: RFC 8785 canonical JSON (sorted keys, no whitespace, minimal escapes).
    pub fn to_leaf(&self) -> Result<Vec<u8>, EventError> {
        serde_json_canonicalizer::to_vec(self).map_err(|error| EventError(error.to_string()))
    }

    pub fn from_leaf(bytes: &[u8]) -> Result<Self, EventError> {
        serde_json::from_slice(bytes).map_err(|error| EventError(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaves_are_canonical_json() {
        let event = AuditEvent {
            seq: 3,
            time: "2026-11-27T14:33:20.123Z".to_owned(),
            actor: "alice".to_owned(),
            token_id: None,
            action: "model.tag.set".to_owned(),
            target: "model/credit".to_owned(),
            outcome: Outcome::Ok,
            reason: None,
            before: Some(json!({"tags": {}, "name": "credit"})),
            after: Some(json!({"tags": {"b": "2", "a": "é\u{1}"}, "name": "credit"})),
            request_id: Some("r-1".to_owned()),
            client_addr: None,
            policy_digest: None,
        };
        let leaf = String::from_utf8(event.to_leaf().unwrap()).unwrap();
        assert_eq!(
            leaf,
            r#"{"action":"model.tag.set","actor":"alice","after":{"name":"credit","tags":{"a":"é\u0001","b":"2"}},"before":{"name":"credit","tags":{}},"outcome":"ok","request_id":"r-1","seq":3,"target":"model/credit","time":"2026-11-27T14:33:20.123Z"}"#
        );
        assert_eq!(AuditEvent::from_leaf(leaf.as_bytes()).unwrap(), event);
    }
}
