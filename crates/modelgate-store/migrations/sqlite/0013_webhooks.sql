-- Webhook subscriptions and their deliveries (issue 13). The outbox is the audit log itself: every change
-- appends its audit event in its own transaction, so no change exists without its event. A subscription
-- keeps a cursor into the log (next_seq); fanning out turns the events past it into deliveries and moves
-- the cursor in one transaction. One replica at a time works a subscription (lease_owner, lease_until).
CREATE TABLE webhook_subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    -- Event types, comma-separated and sorted; '*' for every type.
    events TEXT NOT NULL,
    -- Only this model's events, when set.
    model TEXT,
    -- whsec_<base64>: needed to sign each delivery, so kept; never returned by the API.
    secret TEXT NOT NULL,
    -- During a rotation, deliveries are signed with both secrets until previous_secret_until.
    previous_secret TEXT,
    previous_secret_until INTEGER,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    disabled_at INTEGER,
    disabled_reason TEXT,
    deleted_at INTEGER,
    next_seq BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER
);

-- One row per (subscription, event); state pending -> delivered | failed. Order is kept per lane (the
-- event's model, '' for events of no model): a lane's later events wait while its earliest one retries.
CREATE TABLE webhook_deliveries (
    subscription_id INTEGER NOT NULL REFERENCES webhook_subscriptions (id),
    event_seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    lane TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    last_latency_ms INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (subscription_id, event_seq)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (subscription_id, state, event_seq);

-- Every attempt of every delivery: when, the HTTP status or the error, and how long it took.
CREATE TABLE webhook_attempts (
    subscription_id INTEGER NOT NULL,
    event_seq BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    attempted_at INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    latency_ms INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, event_seq, attempt)
);
