-- What the artifact scanner found in each stored artifact (issue 15): one report per artifact digest, made
-- by the engine named (its version includes a digest of its rules, so a rule change makes reports
-- outdated and they are made again). The report is canonical JSON; report_digest is its SHA-256 and
-- part of the evidence of every version bound to the artifact.
CREATE TABLE artifact_scans (
    artifact_digest TEXT PRIMARY KEY REFERENCES artifacts (digest),
    engine TEXT NOT NULL,
    verdict TEXT NOT NULL,
    report_json TEXT NOT NULL,
    report_digest TEXT NOT NULL,
    scanned_at INTEGER NOT NULL
);
CREATE INDEX artifact_scans_by_engine ON artifact_scans (engine);
