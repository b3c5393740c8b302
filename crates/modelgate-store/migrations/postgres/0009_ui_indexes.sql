-- Indexes for the web UI's pages on a large registry (issue 11, "Speed"): the audit page's `model/NAME`
-- filter looks up the model's promotion requests; a request page reads the request's comments; "a target
-- and what lies under it" is a range of targets in byte order (the "C" collation, whatever the
-- database's), which the last index serves.
CREATE INDEX promotion_requests_by_model ON promotion_requests (model_id, id);
CREATE INDEX request_comments_by_request ON request_comments (request_id, id);
CREATE INDEX audit_events_by_target_bytes ON audit_events ((target COLLATE "C"), seq);
