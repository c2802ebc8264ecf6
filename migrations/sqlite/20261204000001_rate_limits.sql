-- The embedded store serves one process, whose rate limits are kept in its
-- memory; Postgres shares them between API instances (the same version
-- there creates rate_limit_buckets). Nothing to create here.
SELECT 1;
