-- The order of scanner engines (issue 15): a report is only replaced by one of the same or a higher rank,
-- so during a rolling upgrade an older replica cannot overwrite what a newer scanner found. Reports made
-- before ranks existed rank 0 and are replaced by the next scan.
ALTER TABLE artifact_scans ADD COLUMN engine_rank BIGINT NOT NULL DEFAULT 0;
