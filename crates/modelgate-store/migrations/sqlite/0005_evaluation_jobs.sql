-- Evaluations run as background jobs. A job row is operational state (progress, a stop request), not a
-- decision: the evaluation it produces is recorded, with its audit event, in the same transaction that
-- marks the job succeeded, so a crash never leaves a half-written evaluation. A job whose heartbeat
-- (updated_at) stopped while it was queued or running is marked failed when a server starts.
CREATE TABLE evaluation_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_name TEXT NOT NULL,
    version_number INTEGER NOT NULL,
    dataset TEXT NOT NULL,
    request_json TEXT NOT NULL,
    state TEXT NOT NULL,
    progress REAL NOT NULL,
    phase TEXT NOT NULL,
    message TEXT,
    error_json TEXT,
    cancel_requested INTEGER NOT NULL,
    evaluation_id INTEGER REFERENCES evaluations (id),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX evaluation_jobs_by_state ON evaluation_jobs (state, updated_at);
