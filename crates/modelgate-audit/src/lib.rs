//! The tamper-evident audit log: an RFC 6962 Merkle tree over the canonical JSON of audit events, signed
//! checkpoints in the C2SP signed-note form, and the verification an auditor runs without trusting the
//! server. Pure: no I/O, no clock.

pub mod attestation;
pub mod checkpoint;
pub mod event;
pub mod merkle;
pub mod verify;

pub use checkpoint::{Checkpoint, CheckpointError, NoteSigner, NoteVerifier};
pub use event::{AuditEvent, Outcome};
pub use merkle::{Frontier, Hash, NodeId};
pub use verify::{ExpectedRoot, LogProblem, LogVerifier};
