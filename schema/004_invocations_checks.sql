-- 004_invocations_checks.sql - the invocations table again, cheaper to
-- write (bench/records.sh, the record writer's CPU per record):
--  * its two CHECKs are OR chains instead of IN lists: SQLite (3.40, Debian
--    12) evaluates "x IN ('a', 'b', 'c')" inside a CHECK by building a
--    temporary table for the list for every row inserted, about 9
--    microseconds a record, half of what a record cost;
--  * no index on started_us: pruning walks the oldest records by seq
--    (store_records_prune), which is the order they were written in.
-- A CHECK cannot be changed in place, so the table is rebuilt with the same
-- columns and rows, its other indexes and its trigger.
DROP TRIGGER tenants_delete_invocations;
CREATE TABLE invocations_new (
	seq            INTEGER PRIMARY KEY,
	id             TEXT NOT NULL UNIQUE,
	tenant_id      INTEGER NOT NULL,
	function       TEXT NOT NULL,
	version        INTEGER NOT NULL,
	alias          TEXT,              -- qualifier that routed it, NULL for :N
	trigger        TEXT NOT NULL
		CHECK (trigger = 'http' OR trigger = 'async' OR trigger = 'schedule'),
	started_us     INTEGER NOT NULL,  -- Unix time, microseconds
	duration_us    INTEGER NOT NULL,
	init_us        INTEGER NOT NULL,
	billed_ms      INTEGER NOT NULL,
	status         TEXT NOT NULL
		CHECK (status = 'ok' OR status = 'error' OR status = 'timeout' OR
		       status = 'oom' OR status = 'throttled'),
	http_status    INTEGER NOT NULL,
	cold           INTEGER NOT NULL,
	mem_peak_kb    INTEGER NOT NULL,
	mem_limit_mb   INTEGER NOT NULL,
	request_bytes  INTEGER NOT NULL,
	response_bytes INTEGER NOT NULL,
	error_code     TEXT,
	error_message  TEXT,
	log_truncated  INTEGER NOT NULL,  -- bit 0: stdout, bit 1: stderr
	-- logs last: listings that do not read them never touch their pages
	stdout         BLOB,
	stderr         BLOB
);
INSERT INTO invocations_new SELECT * FROM invocations;
DROP TABLE invocations;
ALTER TABLE invocations_new RENAME TO invocations;
CREATE INDEX invocations_tenant ON invocations (tenant_id, seq);
CREATE INDEX invocations_function ON invocations (tenant_id, function, seq);

CREATE TRIGGER tenants_delete_invocations AFTER DELETE ON tenants
BEGIN
	DELETE FROM invocations WHERE tenant_id = OLD.id;
END;
