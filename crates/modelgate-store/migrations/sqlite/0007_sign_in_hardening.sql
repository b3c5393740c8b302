-- Sign-in hardening (issue "Trust core, second pass", 2.1 and 2.6).
-- A password an admin set for someone else cannot sign until its owner sets their own: the time of that
-- reset, cleared when the owner changes the password giving the current one.
ALTER TABLE users ADD COLUMN password_reset_required_at INTEGER;

-- Failed (and in-flight) password checks at login and at signing, per username, so that the lock-out holds
-- across restarts and replicas. Rows older than the window are deleted as new attempts arrive; a success
-- deletes the user's rows. Bookkeeping: these rows are not audited themselves (refusals are, aggregated).
CREATE TABLE password_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    failed_at INTEGER NOT NULL
);
CREATE INDEX password_failures_by_username ON password_failures (username, failed_at);
CREATE INDEX password_failures_by_time ON password_failures (failed_at);
