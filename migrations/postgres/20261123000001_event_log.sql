-- The event log: Proofline's source of truth.
--
-- Positions are assigned by the application's single writer while it holds
-- a transaction-scoped advisory lock, never by a sequence: a sequence value is
-- taken at INSERT and becomes visible at COMMIT, so a reader could pass a
-- lower position that commits late and skip it for ever. Under the lock,
-- commits happen in position order and a reader never sees a gap.
CREATE TABLE events (
    position        BIGINT      PRIMARY KEY CHECK (position >= 1),
    event_id        UUID        NOT NULL UNIQUE,
    stream_id       TEXT        NOT NULL,
    stream_version  BIGINT      NOT NULL CHECK (stream_version >= 1),
    type            TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL,
    -- `json`, not `jsonb`: the text is kept exactly as written.
    data            JSON        NOT NULL,
    metadata        JSON        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    -- Lowercase hex SHA-256; see docs/log-format.md for the rule.
    prev_hash       TEXT        NOT NULL,
    hash            TEXT        NOT NULL,
    -- Optimistic concurrency: one event per stream version.
    UNIQUE (stream_id, stream_version)
);

-- The log is append-only, enforced by the database itself so that no code
-- path (nor a person with the application's credentials in psql) can change
-- or remove history. Statement-level, so even an UPDATE that matches no row
-- is refused.
CREATE FUNCTION events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Secrets never enter the log. Each row is written in the same transaction
-- as the event that names it (by id and public prefix): an argon2id hash of
-- an API key, or a webhook signing secret.
CREATE TABLE secrets (
    id          TEXT        PRIMARY KEY,
    kind        TEXT        NOT NULL,
    stream_id   TEXT        NOT NULL,
    material    TEXT        NOT NULL,
    position    BIGINT      NOT NULL REFERENCES events (position),
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX secrets_by_stream ON secrets (stream_id);

-- Where each durable subscription of the store (a tail that survives
-- restarts, such as the relay's) has got to.
CREATE TABLE consumer_positions (
    name        TEXT        PRIMARY KEY,
    position    BIGINT      NOT NULL CHECK (position >= 0),
    updated_at  TIMESTAMPTZ NOT NULL
);
