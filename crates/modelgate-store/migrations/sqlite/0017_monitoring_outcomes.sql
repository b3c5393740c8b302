-- Labelled production rows (issue 13): the column of a batch that holds the model's score (for outcomes
-- joined later), and outcome files joined by row id onto the version's batches, each stored with its
-- performance report (canonical JSON) and the breaches it found.
ALTER TABLE monitoring_batches ADD COLUMN score_column TEXT;

CREATE TABLE monitoring_outcomes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_name TEXT NOT NULL,
    version_number INTEGER NOT NULL,
    digest TEXT NOT NULL REFERENCES artifacts (digest),
    row_id_column TEXT NOT NULL,
    label_column TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    matched INTEGER NOT NULL,
    unknown INTEGER NOT NULL,
    duplicate INTEGER NOT NULL,
    judged INTEGER NOT NULL,
    report_json TEXT NOT NULL,
    report_digest TEXT NOT NULL,
    breaches_json TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX monitoring_outcomes_by_version ON monitoring_outcomes (model_name, version_number, id);
