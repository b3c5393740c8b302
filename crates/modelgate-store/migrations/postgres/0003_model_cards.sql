-- Model cards: every edit is a new immutable revision of a version's card.
CREATE TABLE card_revisions (
    version_id BIGINT NOT NULL REFERENCES versions (id),
    revision BIGINT NOT NULL,
    digest TEXT NOT NULL,
    content TEXT NOT NULL,
    author TEXT NOT NULL,
    message TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (version_id, revision)
);
