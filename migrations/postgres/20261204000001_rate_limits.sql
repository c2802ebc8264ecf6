-- Rate-limit budgets shared by every API instance on this database: the
-- requests of each API key, the failed authentications of each client
-- address and key prefix (api/src/shared_limits.rs). A token bucket per
-- row; nothing here is part of the log, and a lost row only refills a
-- bucket. UNLOGGED: no WAL for state this short-lived.
CREATE UNLOGGED TABLE rate_limit_buckets (
    bucket      TEXT             PRIMARY KEY CHECK (length(bucket) <= 200),
    tokens      DOUBLE PRECISION NOT NULL,
    refilled_at TIMESTAMPTZ      NOT NULL
);

-- Takes up to `want` whole tokens from `bucket` (created full), after
-- refilling it at `rate` per second up to `burst`; answers how many were
-- granted and what is left. The row lock makes instances take turns.
CREATE FUNCTION rate_limit_take(
    p_bucket TEXT, p_burst DOUBLE PRECISION, p_rate DOUBLE PRECISION, p_want INTEGER
) RETURNS TABLE (granted INTEGER, remaining DOUBLE PRECISION)
LANGUAGE plpgsql AS $$
DECLARE
    t  DOUBLE PRECISION;
    at TIMESTAMPTZ;
    n  TIMESTAMPTZ := clock_timestamp();
    g  INTEGER;
BEGIN
    INSERT INTO rate_limit_buckets (bucket, tokens, refilled_at)
    VALUES (p_bucket, p_burst, n)
    ON CONFLICT (bucket) DO NOTHING;
    SELECT b.tokens, b.refilled_at INTO t, at
    FROM rate_limit_buckets b WHERE b.bucket = p_bucket FOR UPDATE;
    t := LEAST(p_burst, t + GREATEST(0, EXTRACT(EPOCH FROM n - at)) * p_rate);
    g := LEAST(p_want, GREATEST(0, floor(t)))::INTEGER;
    t := t - g;
    UPDATE rate_limit_buckets SET tokens = t, refilled_at = n WHERE bucket = p_bucket;
    RETURN QUERY SELECT g, t;
END
$$;
