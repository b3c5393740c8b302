-- After deployment (issue 13): batches of production inputs compared with a reference dataset, and KPI
-- observations. Each is stored with its report (canonical JSON) and the breaches it found; the breach's
-- action (a suspension, an approval marked review_due) is applied in the same transaction.
CREATE TABLE monitoring_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_name TEXT NOT NULL,
    version_number INTEGER NOT NULL,
    digest TEXT NOT NULL REFERENCES artifacts (digest),
    reference TEXT NOT NULL,
    reference_digest TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    label_column TEXT,
    row_id_column TEXT,
    judged INTEGER NOT NULL,
    report_json TEXT NOT NULL,
    report_digest TEXT NOT NULL,
    breaches_json TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX monitoring_batches_by_version ON monitoring_batches (model_name, version_number, id);

CREATE TABLE kpi_observations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_name TEXT NOT NULL,
    version_number INTEGER,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    observed_at INTEGER NOT NULL,
    breaches_json TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE INDEX kpi_observations_by_model ON kpi_observations (model_name, name, observed_at);
