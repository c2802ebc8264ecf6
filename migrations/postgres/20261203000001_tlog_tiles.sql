-- The Merkle tree stored as C2SP tiles (docs/log-format.md, "What is
-- stored"): one row per tile, `hashes` the 32-byte hashes of its nodes in
-- order, 1 to 256 of them (a partial tile grows as the log does). Level 0
-- tile N holds the leaf hashes of positions 256N + 1 onwards. Replaces
-- tlog_nodes (a row per node); the tree is derived from the events alone,
-- and the tree follower hashes the log again into this table at the next
-- start.
CREATE TABLE tlog_tiles (
    level   SMALLINT NOT NULL CHECK (level >= 0),
    idx     BIGINT   NOT NULL CHECK (idx >= 0),
    hashes  BYTEA    NOT NULL
        CHECK (length(hashes) BETWEEN 32 AND 8192 AND length(hashes) % 32 = 0),
    PRIMARY KEY (level, idx)
);
DROP TABLE tlog_nodes;
