-- A counter every write transaction bumps (issue 11): replicas keep the review queue every inbox reads
-- in memory, tagged with the counter they read it at, and read it again only when the counter moved. One
-- small read instead of every open request on each page. SQLite has no such table: one process is its
-- only writer and clears its in-memory views after every commit.
CREATE TABLE write_generation (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO write_generation (id, value) VALUES (1, 0);
