-- 003_invocations.sql - a record per invocation (SPEC §7), with the
-- handler's logs.  Written in batches by the gateway's record writer;
-- pruned after retention_days.  No foreign keys: a record outlives nothing
-- it could fail on (a tenant or function deleted while its last records are
-- still queued must not make the batch fail); deleting a tenant deletes its
-- records.  seq orders records as they were written: the cursor of listings
-- and of log streams.
CREATE TABLE invocations (
	seq            INTEGER PRIMARY KEY,
	id             TEXT NOT NULL UNIQUE,
	tenant_id      INTEGER NOT NULL,
	function       TEXT NOT NULL,
	version        INTEGER NOT NULL,
	alias          TEXT,              -- qualifier that routed it, NULL for :N
	trigger        TEXT NOT NULL CHECK (trigger IN ('http', 'async', 'schedule')),
	started_us     INTEGER NOT NULL,  -- Unix time, microseconds
	duration_us    INTEGER NOT NULL,
	init_us        INTEGER NOT NULL,
	billed_ms      INTEGER NOT NULL,
	status         TEXT NOT NULL
		CHECK (status IN ('ok', 'error', 'timeout', 'oom', 'throttled')),
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
CREATE INDEX invocations_tenant ON invocations (tenant_id, seq);
CREATE INDEX invocations_function ON invocations (tenant_id, function, seq);
CREATE INDEX invocations_started ON invocations (started_us);

-- Tenant ids are never reused (AUTOINCREMENT), so this is tidiness, not
-- isolation: a deleted tenant's records go with it.
CREATE TRIGGER tenants_delete_invocations AFTER DELETE ON tenants
BEGIN
	DELETE FROM invocations WHERE tenant_id = OLD.id;
END;
