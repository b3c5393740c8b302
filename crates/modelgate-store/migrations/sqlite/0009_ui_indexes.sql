-- Indexes for the web UI's pages on a large registry (issue 11, "Speed"): the audit page's `model/NAME`
-- filter looks up the model's promotion requests; a request page reads the request's comments.
CREATE INDEX promotion_requests_by_model ON promotion_requests (model_id, id);
CREATE INDEX request_comments_by_request ON request_comments (request_id, id);
