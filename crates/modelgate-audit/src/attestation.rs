//! Approval attestations: an in-toto Statement v1 in a DSSE envelope, signed with the server's Ed25519
//! key, that a deploy system verifies offline (signature, subject digest, stage, expiry, suspension).

use crate::checkpoint::{NoteSigner, NoteVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://modelgate.dev/attestation/approval/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 of the statement's JSON.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: String,
}

/// DSSE's pre-authentication encoding: what is actually signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut encoded = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    encoded.extend_from_slice(payload);
    encoded
}

/// Signs a statement (any JSON value) into an envelope.
pub fn sign_statement(
    signer: &NoteSigner,
    statement: &serde_json::Value,
) -> Result<Envelope, String> {
    let payload = serde_json_canonicalizer::to_vec(statement).map_err(|error| error.to_string())?;
    let signature = signer.sign_message(&pae(PAYLOAD_TYPE, &payload));
    Ok(Envelope {
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload: BASE64.encode(&payload),
        signatures: vec![EnvelopeSignature {
            keyid: signer.verifier_key(),
            sig: BASE64.encode(signature),
        }],
    })
}

/// What a verifier demands beyond the signature.
#[derive(Debug, Clone, Default)]
pub struct Expectations<'a> {
    pub digest: Option<&'a str>,
    pub stage: Option<&'a str>,
    /// RFC 3339 UTC with milliseconds (`2026-11-27T14:33:20.123Z`, as the server writes times); the
    /// approval must not have expired by then.
    pub now: Option<&'a str>,
}

/// Verifies an envelope with a pinned key and the expectations; returns the statement. A statement
/// whose predicate says the version was suspended never verifies: the approval it records is void.
pub fn verify_envelope(
    envelope_json: &str,
    verifier: &NoteVerifier,
    expect: &Expectations<'_>,
) -> Result<serde_json::Value, String> {
    let envelope: Envelope = serde_json::from_str(envelope_json)
        .map_err(|error| format!("not a DSSE envelope: {error}"))?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(format!(
            "payload type is {:?}, not {PAYLOAD_TYPE}",
            envelope.payload_type
        ));
    }
    let payload = BASE64
        .decode(&envelope.payload)
        .map_err(|_| "the payload is not base64".to_owned())?;
    let message = pae(&envelope.payload_type, &payload);
    let signed = envelope.signatures.iter().any(|signature| {
        BASE64
            .decode(&signature.sig)
            .is_ok_and(|sig| verifier.verify_message(&message, &sig))
    });
    if !signed {
        return Err(
            "no signature verifies with the given public key (altered, or signed by another key)"
                .to_owned(),
        );
    }
    let statement: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|error| format!("the payload is not JSON: {error}"))?;
    if statement["_type"] != STATEMENT_TYPE || statement["predicateType"] != PREDICATE_TYPE {
        return Err("not a modelgate approval statement".to_owned());
    }
    if let Some(digest) = expect.digest {
        let wanted = digest.strip_prefix("sha256:").unwrap_or(digest);
        let matches = statement["subject"].as_array().is_some_and(|subjects| {
            subjects
                .iter()
                .any(|subject| subject["digest"]["sha256"] == wanted)
        });
        if !matches {
            return Err(format!("the attestation is not for {digest}"));
        }
    }
    if let Some(stage) = expect.stage
        && statement["predicate"]["stage"] != stage
    {
        return Err(format!(
            "the attestation approves stage {}, not {stage}",
            statement["predicate"]["stage"]
        ));
    }
    match &statement["predicate"]["suspended"] {
        serde_json::Value::Null | serde_json::Value::Bool(false) => {}
        serde_json::Value::String(reason) if reason.is_empty() => {}
        serde_json::Value::String(reason) => {
            return Err(format!(
                "the version was suspended when this attestation was issued: {reason}"
            ));
        }
        other => return Err(format!("the version was suspended ({other})")),
    }
    if let Some(now) = expect.now {
        let not_after = statement["predicate"]["not_after"]
            .as_str()
            .unwrap_or_default();
        // RFC 3339 UTC with fixed width compares as text.
        if not_after.is_empty() || now >= not_after {
            return Err(format!("the approval expired at {not_after}"));
        }
    }
    Ok(statement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn statement() -> serde_json::Value {
        json!({
            "_type": STATEMENT_TYPE,
            "subject": [{ "name": "credit@3", "digest": { "sha256": "ab".repeat(32) } }],
            "predicateType": PREDICATE_TYPE,
            "predicate": { "stage": "production", "not_after": "2027-05-01T00:00:00.000Z" },
        })
    }

    #[test]
    fn envelopes_verify_and_every_kind_of_forgery_fails() {
        let signer = NoteSigner::from_seed("modelgate/test", &[5u8; 32]).unwrap();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let envelope =
            serde_json::to_string(&sign_statement(&signer, &statement()).unwrap()).unwrap();
        let digest = format!("sha256:{}", "ab".repeat(32));
        let good = Expectations {
            digest: Some(&digest),
            stage: Some("production"),
            now: Some("2026-11-27T00:00:00.000Z"),
        };
        assert!(verify_envelope(&envelope, &verifier, &good).is_ok());

        let mut flipped: Envelope = serde_json::from_str(&envelope).unwrap();
        let mut payload = BASE64.decode(&flipped.payload).unwrap();
        payload[10] ^= 1;
        flipped.payload = BASE64.encode(payload);
        let flipped = serde_json::to_string(&flipped).unwrap();
        assert!(
            verify_envelope(&flipped, &verifier, &good)
                .unwrap_err()
                .contains("no signature")
        );

        let other = NoteVerifier::parse(
            &NoteSigner::from_seed("modelgate/test", &[6u8; 32])
                .unwrap()
                .verifier_key(),
        )
        .unwrap();
        assert!(verify_envelope(&envelope, &other, &good).is_err());
        let wrong_digest = Expectations {
            digest: Some("sha256:00"),
            ..good.clone()
        };
        assert!(
            verify_envelope(&envelope, &verifier, &wrong_digest)
                .unwrap_err()
                .contains("not for")
        );
        let wrong_stage = Expectations {
            stage: Some("staging"),
            ..good.clone()
        };
        assert!(verify_envelope(&envelope, &verifier, &wrong_stage).is_err());
        let late = Expectations {
            now: Some("2027-05-01T00:00:00.001Z"),
            ..good
        };
        assert!(
            verify_envelope(&envelope, &verifier, &late)
                .unwrap_err()
                .contains("expired")
        );
    }

    #[test]
    fn a_suspended_approval_never_verifies() {
        let signer = NoteSigner::from_seed("modelgate/test", &[5u8; 32]).unwrap();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let expect = Expectations {
            now: Some("2026-11-27T00:00:00.000Z"),
            ..Expectations::default()
        };
        for (suspended, verifies) in [
            (serde_json::Value::Null, true),
            (json!(""), true),
            (json!("bias found in the holdout"), false),
            (json!({ "reason": "x" }), false),
        ] {
            let mut statement = statement();
            statement["predicate"]["suspended"] = suspended.clone();
            let envelope =
                serde_json::to_string(&sign_statement(&signer, &statement).unwrap()).unwrap();
            let outcome = verify_envelope(&envelope, &verifier, &expect);
            assert_eq!(outcome.is_ok(), verifies, "{suspended}: {outcome:?}");
            if let Err(reason) = outcome {
                assert!(reason.contains("suspended"), "{reason}");
            }
        }
    }

    #[test]
    fn the_pre_authentication_encoding_is_dsse() {
        assert_eq!(pae("t", b"hello"), b"DSSEv1 1 t 5 hello".to_vec());
    }
}
