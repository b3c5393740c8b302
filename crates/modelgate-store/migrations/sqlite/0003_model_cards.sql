-- Model cards: every edit is a new immutable revision of a version's card.
CREATE TABLE card_revisions (
    version_id INTEGER NOT NULL REFERENCES versions (id),
    revision INTEGER NOT NULL,
    digest TEXT NOT NULL,
    content TEXT NOT NULL,
    author TEXT NOT NULL,
    message TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (version_id, revision)
);
