-- 006_invocations_by_time.sql - records found through when they started,
-- one index fewer to write:
--  * the index on id goes.  An id is a UUIDv7 whose first 48 bits are the
--    Unix millisecond its invocation started, read from the same clock
--    reading as started_us (faasd since this migration; before it, two
--    reads a few microseconds apart), so a record is looked up by
--    (tenant_id, started_us within that millisecond or the next) and
--    compared by id.  bench/records_store: the id index was about 40% of
--    the writer's CPU per record without output.
--  * (tenant_id, seq) becomes (tenant_id, started_us): listings run newest
--    first by start time (seq breaks ties, and the cursor stays a seq) and
--    since/until become ranges of the index instead of filters over every
--    record of the tenant.
-- Rows are untouched.
DROP INDEX invocations_id;
DROP INDEX invocations_tenant;
CREATE INDEX invocations_started ON invocations (tenant_id, started_us);
