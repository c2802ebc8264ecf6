-- The RFC 9162 Merkle tree over the log: see the Postgres migration.
CREATE TABLE tlog_nodes (
    level   INTEGER NOT NULL CHECK (level >= 0),
    idx     INTEGER NOT NULL CHECK (idx >= 0),
    hash    BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;
