//! Checkpoints (signed tree heads) in the C2SP `tlog-checkpoint` form, signed as C2SP signed notes with
//! Ed25519:
//!
//! ```text
//! <origin>
//! <tree size>
//! <base64 root hash>
//!
//! — <key name> <base64(key id ‖ signature)>
//! ```
//!
//! The key id is the first four bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`; the signature covers the
//! text up to and including the newline after the root hash. A verifier key is written
//! `<name>+<hex key id>+<base64(0x01 ‖ public key)>`, the form auditors pin.

use crate::merkle::Hash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest as _, Sha256};

const ED25519_ALGORITHM: u8 = 0x01;
const SIGNATURE_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error("malformed verifier key: {0}")]
    MalformedKey(String),
    #[error("the checkpoint carries no signature by key {0:?}")]
    NoSignature(String),
    #[error(
        "the signature by key {0:?} does not verify: the checkpoint was altered or signed by another key"
    )]
    BadSignature(String),
    #[error("the checkpoint is for log {found:?}, not {expected:?}")]
    WrongOrigin { expected: String, found: String },
}

impl Checkpoint {
    /// The signed body: origin, size and root, each on its own line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|line| !line.is_empty())
            .ok_or_else(|| CheckpointError::Malformed("no origin line".to_owned()))?;
        let size_line = lines
            .next()
            .ok_or_else(|| CheckpointError::Malformed("no tree size line".to_owned()))?;
        let size: u64 = size_line
            .parse()
            .ok()
            .filter(|_| size_line == "0" || !size_line.starts_with('0'))
            .ok_or_else(|| {
                CheckpointError::Malformed(format!("tree size {size_line:?} is not a number"))
            })?;
        let root_line = lines
            .next()
            .ok_or_else(|| CheckpointError::Malformed("no root hash line".to_owned()))?;
        let root: Hash = BASE64
            .decode(root_line)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| {
                CheckpointError::Malformed("the root hash is not 32 bytes of base64".to_owned())
            })?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

fn key_id(name: &str, public_key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ED25519_ALGORITHM]);
    hasher.update(public_key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn check_key_name(name: &str) -> Result<(), CheckpointError> {
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains('+') {
        return Err(CheckpointError::MalformedKey(format!(
            "key name {name:?} must be non-empty, without spaces or '+'"
        )));
    }
    Ok(())
}

/// Signs checkpoints with the server's Ed25519 key.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    id: [u8; 4],
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key", &"REDACTED")
            .finish()
    }
}

impl NoteSigner {
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, CheckpointError> {
        check_key_name(name)?;
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, &key.verifying_key());
        Ok(Self {
            name: name.to_owned(),
            key,
            id,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The default name (and log origin) for a key: `modelgate/<8 hex digits of its public key's hash>`,
    /// distinct per key so that two servers' logs never share an origin by accident.
    pub fn default_name(seed: &[u8; 32]) -> String {
        let public = SigningKey::from_bytes(seed).verifying_key();
        let digest = Sha256::digest(public.as_bytes());
        format!("modelgate/{}", hex::encode(&digest[..4]))
    }

    /// The signed note of a checkpoint.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let body = checkpoint.body();
        let signature = self.key.sign(body.as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!(
            "{body}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(blob)
        )
    }

    /// A detached Ed25519 signature over `message` (for sign-offs and attestations).
    pub fn sign_message(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The verifier key to publish and pin: `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
    pub fn verifier_key(&self) -> String {
        let mut encoded = vec![ED25519_ALGORITHM];
        encoded.extend_from_slice(self.key.verifying_key().as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.id),
            BASE64.encode(encoded)
        )
    }
}

/// Verifies checkpoints against a pinned verifier key.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    pub fn parse(verifier_key: &str) -> Result<Self, CheckpointError> {
        let malformed = |why: &str| CheckpointError::MalformedKey(why.to_owned());
        let mut parts = verifier_key.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected <name>+<hex key id>+<base64 key>"));
        };
        check_key_name(name)?;
        let id: [u8; 4] = hex::decode(id_hex)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| malformed("the key id must be 8 hex digits"))?;
        let encoded = BASE64
            .decode(key_b64)
            .map_err(|_| malformed("the key is not base64"))?;
        let (algorithm, key_bytes) = encoded
            .split_first()
            .ok_or_else(|| malformed("the key is empty"))?;
        if *algorithm != ED25519_ALGORITHM {
            return Err(malformed(
                "only Ed25519 keys (algorithm 0x01) are supported",
            ));
        }
        let key_bytes: [u8; 32] = key_bytes
            .try_into()
            .map_err(|_| malformed("an Ed25519 key has 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key_bytes)
            .map_err(|_| malformed("not a valid Ed25519 key"))?;
        if key_id(name, &key) != id {
            return Err(malformed("the key id does not match the name and key"));
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks a detached signature made with [`NoteSigner::sign_message`].
    pub fn verify_message(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_slice(signature)
            .is_ok_and(|signature| self.key.verify(message, &signature).is_ok())
    }

    /// Checks the note's signature by this key and returns the checkpoint it signs.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        let split = note.find("\n\n").ok_or_else(|| {
            CheckpointError::Malformed("no blank line before the signatures".to_owned())
        })?;
        let body = &note[..=split];
        let signatures = &note[split + 2..];
        let checkpoint = Checkpoint::parse_body(body)?;
        for line in signatures.lines() {
            let Some(rest) = line.strip_prefix(SIGNATURE_PREFIX) else {
                return Err(CheckpointError::Malformed(format!(
                    "not a signature line: {line:?}"
                )));
            };
            let Some((name, blob_b64)) = rest.split_once(' ') else {
                return Err(CheckpointError::Malformed(format!(
                    "not a signature line: {line:?}"
                )));
            };
            if name != self.name {
                continue;
            }
            let Ok(blob) = BASE64.decode(blob_b64) else {
                continue;
            };
            if blob.len() != 4 + 64 || blob[..4] != self.id {
                continue;
            }
            let signature = Signature::from_slice(&blob[4..])
                .map_err(|_| CheckpointError::BadSignature(self.name.clone()))?;
            return match self.key.verify(body.as_bytes(), &signature) {
                Ok(()) => Ok(checkpoint),
                Err(_) => Err(CheckpointError::BadSignature(self.name.clone())),
            };
        }
        Err(CheckpointError::NoSignature(self.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::from_seed("modelgate.example/audit", &[7u8; 32]).unwrap()
    }

    #[test]
    fn signed_notes_round_trip_and_have_the_c2sp_shape() {
        let signer = signer();
        let checkpoint = Checkpoint {
            origin: "modelgate.example/audit".to_owned(),
            size: 42,
            root: [9u8; 32],
        };
        let note = signer.sign(&checkpoint);
        let lines: Vec<&str> = note.lines().collect();
        assert_eq!(lines[0], "modelgate.example/audit");
        assert_eq!(lines[1], "42");
        assert_eq!(lines[2], BASE64.encode([9u8; 32]));
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("\u{2014} modelgate.example/audit "));
        assert!(note.ends_with('\n'));
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        assert_eq!(verifier.verify(&note).unwrap(), checkpoint);
    }

    #[test]
    fn altered_notes_and_other_keys_are_refused() {
        let signer = signer();
        let checkpoint = Checkpoint {
            origin: "modelgate.example/audit".to_owned(),
            size: 5,
            root: [1u8; 32],
        };
        let note = signer.sign(&checkpoint);
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let altered = note.replacen("\n5\n", "\n6\n", 1);
        assert!(matches!(
            verifier.verify(&altered),
            Err(CheckpointError::BadSignature(_))
        ));
        let other = NoteSigner::from_seed("modelgate.example/audit", &[8u8; 32]).unwrap();
        let forged = other.sign(&checkpoint);
        assert!(matches!(
            verifier.verify(&forged),
            Err(CheckpointError::NoSignature(_))
        ));
        assert!(verifier.verify("garbage").is_err());
        let key = signer.verifier_key();
        assert!(NoteVerifier::parse(&key.replacen('+', "+0", 1)).is_err());
        assert!(NoteVerifier::parse("name+00000000+AQ==").is_err());
    }
}
