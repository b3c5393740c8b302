-- Scheduled work (issue 13): one replica at a time runs the scheduler (a lease in scheduler_lease), and
-- each scheduled event happens once whatever the replicas do: its key is inserted in the transaction that
-- appends its audit event, and a second insert of the key is a no-op.
CREATE TABLE scheduler_lease (
    id BIGINT PRIMARY KEY,
    owner TEXT,
    lease_until BIGINT NOT NULL
);
INSERT INTO scheduler_lease (id, owner, lease_until) VALUES (1, NULL, 0);

CREATE TABLE scheduled_events (
    kind TEXT NOT NULL,
    event_key TEXT NOT NULL,
    happened_at BIGINT NOT NULL,
    PRIMARY KEY (kind, event_key)
);
