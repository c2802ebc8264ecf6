-- The RFC 9162 Merkle tree over the log (docs/log-format.md, "The tree"):
-- the hashes of every eighth level, i.e. the hashes of the C2SP tlog-tiles.
-- Level 0 holds one leaf hash per event (leaf idx = position - 1); level 1
-- the node of each complete run of 256 leaves; and so on. Derived from the
-- events alone and written by a follower of the log (never in the append
-- transaction), so `proofline rebuild --tree` may clear and recompute it.
CREATE TABLE tlog_nodes (
    level   SMALLINT NOT NULL CHECK (level >= 0),
    idx     BIGINT   NOT NULL CHECK (idx >= 0),
    hash    BYTEA    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);
