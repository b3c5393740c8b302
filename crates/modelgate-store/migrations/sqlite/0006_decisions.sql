-- Promotion as a decision applied under preconditions: every write to a version's evidence (a card
-- revision, an evaluation) bumps its evidence revision, which a promotion compares under the lock; the
-- stage an approval is for; a flag for evidence that changed after approval; and the model's owner when a
-- request was opened (separation of duties counts former owners too).

ALTER TABLE versions ADD COLUMN evidence_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE versions ADD COLUMN last_evidence_change TEXT;
ALTER TABLE versions ADD COLUMN approved_stage TEXT;
ALTER TABLE versions ADD COLUMN evidence_changed_after_approval TEXT;
UPDATE versions SET approved_stage =
    (SELECT r.target_stage FROM promotion_requests r WHERE r.id = versions.approval_request_id)
    WHERE approval_request_id IS NOT NULL;

ALTER TABLE promotion_requests ADD COLUMN owner_at_open_id INTEGER REFERENCES users (id);
UPDATE promotion_requests SET owner_at_open_id =
    (SELECT m.owner_id FROM models m WHERE m.id = promotion_requests.model_id);

-- Why a version's approval is due for review without its evidence having changed: a policy applied later
-- would not grant it, and that policy says `approvals_not_regranted = "review_due"`.
ALTER TABLE versions ADD COLUMN approval_review_reason TEXT;

-- Which evaluations the policy reads: `counted` (the default), or set aside as `exploratory` or
-- `superseded` (with the reason), so that one failed exploration does not block a gate for ever.
ALTER TABLE evaluations ADD COLUMN status TEXT NOT NULL DEFAULT 'counted';
ALTER TABLE evaluations ADD COLUMN status_reason TEXT;
