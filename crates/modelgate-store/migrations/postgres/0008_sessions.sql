-- Browser sessions of the reviewer web UI (issue 11). The cookie holds a random 256-bit secret; only its
-- SHA-256 is stored, so a copy of the database cannot be replayed as a session. Replicas share this table.
-- `public_id` names the session in audit records (never the secret). A session ends at the first of:
-- revoked (sign-out), idle past the idle limit since `last_seen_at`, or past `expires_at` (absolute).
CREATE TABLE ui_sessions (
    public_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX ui_sessions_by_user ON ui_sessions (user_id);
