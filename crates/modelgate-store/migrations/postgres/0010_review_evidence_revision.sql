-- The version's evidence revision each review was made at (issue 11): an inbox of thousands of open
-- requests tells void approvals (the evidence changed after them) from counted ones by comparing
-- revisions, without computing every version's evidence digest. NULL for reviews made before this.
ALTER TABLE reviews ADD COLUMN evidence_revision BIGINT;
