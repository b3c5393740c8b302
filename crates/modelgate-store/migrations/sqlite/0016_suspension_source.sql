-- Who suspended a version (issue 13): `risk_officer` (by hand; only reinstatement lifts it), `monitoring`
-- (a breach) or `policy` (a policy that would not grant the approval); the last two are lifted by an
-- approved re-validation as well. Suspensions made before this column existed count as a risk officer's.
ALTER TABLE versions ADD COLUMN suspension_source TEXT;
UPDATE versions SET suspension_source = 'risk_officer' WHERE suspension_reason IS NOT NULL;
