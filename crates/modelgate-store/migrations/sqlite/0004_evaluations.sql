-- Server-side evaluation: registered datasets (content-addressed, with a declared schema and a profile)
-- and the evaluations computed on them, with every input digest and setting so that a re-run agrees.
CREATE TABLE datasets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    digest TEXT NOT NULL REFERENCES artifacts (digest),
    format TEXT NOT NULL,
    schema_json TEXT NOT NULL,
    profile_json TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version_id INTEGER NOT NULL REFERENCES versions (id),
    dataset_id INTEGER NOT NULL REFERENCES datasets (id),
    mode TEXT NOT NULL,
    inputs_json TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    engine TEXT NOT NULL,
    results_json TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX evaluations_by_version ON evaluations (version_id, id);
