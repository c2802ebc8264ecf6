-- The event log of the embedded mode: the same shape as on Postgres.
--
-- SQLite has one writer at a time (the application opens its writes with
-- BEGIN IMMEDIATE), and positions are assigned by the application under that
-- lock, so commits happen in position order and readers never see a gap.
CREATE TABLE events (
    position        INTEGER PRIMARY KEY CHECK (position >= 1),
    event_id        TEXT    NOT NULL UNIQUE,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version >= 1),
    type            TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    data            TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    -- RFC 3339, microseconds, `Z`: the exact text that was hashed.
    recorded_at     TEXT    NOT NULL,
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    UNIQUE (stream_id, stream_version)
) STRICT;

-- Append-only, enforced by the database itself.
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the events table is append-only: UPDATE refused');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the events table is append-only: DELETE refused');
END;

-- Secrets never enter the log; see the Postgres migration.
CREATE TABLE secrets (
    id          TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL,
    stream_id   TEXT    NOT NULL,
    material    TEXT    NOT NULL,
    position    INTEGER NOT NULL REFERENCES events (position),
    created_at  TEXT    NOT NULL
) STRICT;

CREATE INDEX secrets_by_stream ON secrets (stream_id);

CREATE TABLE consumer_positions (
    name        TEXT    PRIMARY KEY,
    position    INTEGER NOT NULL CHECK (position >= 0),
    updated_at  TEXT    NOT NULL
) STRICT;
