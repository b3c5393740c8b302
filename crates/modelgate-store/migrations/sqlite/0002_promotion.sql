-- Governed promotion: policy revisions, promotion requests, reviews (sign-offs) and comments, and the
-- approval state of versions.

CREATE TABLE policies (
    revision INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL,
    text TEXT NOT NULL,
    applied_by TEXT NOT NULL,
    applied_at INTEGER NOT NULL
);

CREATE TABLE promotion_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id INTEGER NOT NULL REFERENCES models (id),
    version_id INTEGER NOT NULL REFERENCES versions (id),
    from_stage TEXT NOT NULL,
    target_stage TEXT NOT NULL,
    kind TEXT NOT NULL,
    requester_id INTEGER NOT NULL REFERENCES users (id),
    justification TEXT NOT NULL,
    state TEXT NOT NULL,
    policy_digest TEXT NOT NULL,
    evidence_digest TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    decided_at INTEGER,
    decision_reason TEXT
);
CREATE UNIQUE INDEX promotion_requests_one_open ON promotion_requests (version_id, target_stage)
    WHERE state = 'open';
CREATE INDEX promotion_requests_by_state ON promotion_requests (state, id);

CREATE TABLE reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL REFERENCES promotion_requests (id),
    reviewer_id INTEGER NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    decision TEXT NOT NULL,
    comment TEXT NOT NULL,
    meaning TEXT,
    evidence_digest TEXT NOT NULL,
    signed_record TEXT,
    signature TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX reviews_by_request ON reviews (request_id, id);

CREATE TABLE request_comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL REFERENCES promotion_requests (id),
    author_id INTEGER NOT NULL REFERENCES users (id),
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

ALTER TABLE versions ADD COLUMN approved_at INTEGER;
ALTER TABLE versions ADD COLUMN not_after INTEGER;
ALTER TABLE versions ADD COLUMN approval_request_id INTEGER;
ALTER TABLE versions ADD COLUMN suspended_at INTEGER;
ALTER TABLE versions ADD COLUMN suspension_reason TEXT;
