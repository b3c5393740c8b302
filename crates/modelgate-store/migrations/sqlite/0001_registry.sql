-- The registry: users and their tokens, models, versions, artifacts, and the audit trail.
-- Times are milliseconds since the Unix epoch (UTC). Nothing is ever deleted through the API.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    printed_name TEXT NOT NULL,
    email TEXT,
    password_hash TEXT,
    created_at INTEGER NOT NULL,
    deactivated_at INTEGER
);

CREATE TABLE user_roles (
    user_id INTEGER NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

CREATE TABLE models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    owner_id INTEGER NOT NULL REFERENCES users (id),
    risk_tier TEXT NOT NULL,
    description TEXT NOT NULL,
    intended_use TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    archived_at INTEGER,
    version_count INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE model_tags (
    model_id INTEGER NOT NULL REFERENCES models (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);

CREATE TABLE artifacts (
    digest TEXT PRIMARY KEY,
    size_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id INTEGER NOT NULL REFERENCES models (id),
    number INTEGER NOT NULL,
    digest TEXT NOT NULL REFERENCES artifacts (digest),
    size_bytes INTEGER NOT NULL,
    format TEXT NOT NULL,
    media_type TEXT NOT NULL,
    code_repository TEXT,
    code_commit TEXT,
    training_data_uri TEXT,
    training_data_digest TEXT,
    parameters_json TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    description TEXT NOT NULL,
    stage TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (model_id, number)
);
CREATE INDEX versions_by_digest ON versions (digest);
CREATE INDEX versions_by_stage ON versions (stage, model_id);

CREATE TABLE version_tags (
    version_id INTEGER NOT NULL REFERENCES versions (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (version_id, key)
);

-- The audit log: one row per event, in log order. `leaf` holds exactly the canonical JSON bytes that are
-- hashed into the Merkle tree; the other columns are copies for filtering.
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    recorded_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    leaf TEXT NOT NULL,
    leaf_hash TEXT NOT NULL
);
CREATE INDEX audit_events_by_target ON audit_events (target, seq);
CREATE INDEX audit_events_by_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_by_action ON audit_events (action, seq);

-- Interior nodes of the Merkle tree (level >= 1): the hash of leaves [idx * 2^level, (idx + 1) * 2^level).
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (level, idx)
);

-- The tree's size and right edge (hex hashes, largest subtree first), updated with every append; its one
-- row is also the lock that serialises appends across replicas.
CREATE TABLE audit_tree (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    frontier TEXT NOT NULL
);
INSERT INTO audit_tree (id, size, frontier) VALUES (1, 0, '');

-- Signed checkpoints (C2SP signed notes).
CREATE TABLE audit_checkpoints (
    tree_size INTEGER PRIMARY KEY,
    root_hash TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
