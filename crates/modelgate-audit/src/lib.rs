//! The tamper-evident audit log: an RFC 6962 Merkle tree over the canonical JSON of audit events, signed
//! checkpoints in the C2SP signed-note form, and the verification an auditor runs without trusting the
//! server. Pure: no I/O, no clock.

pub mod merkle;
