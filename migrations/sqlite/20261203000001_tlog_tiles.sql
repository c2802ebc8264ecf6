-- The Merkle tree stored as C2SP tiles: see the Postgres migration.
CREATE TABLE tlog_tiles (
    level   INTEGER NOT NULL CHECK (level >= 0),
    idx     INTEGER NOT NULL CHECK (idx >= 0),
    hashes  BLOB    NOT NULL
        CHECK (length(hashes) BETWEEN 32 AND 8192 AND length(hashes) % 32 = 0),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;
DROP TABLE tlog_nodes;
