-- 007_async.sql - asynchronous invocations (SPEC §8), kept durably from
-- the 202 on: the request as it came (method POST, the path after the
-- function, the query, the headers without Authorization, the body), where
-- it stands, and what its attempts did.  An attempt is an ordinary
-- invocation with a record of its own (trigger 'async'); last_invocation
-- names the newest.  state: queued (due at next_at), running, succeeded,
-- failed (the dead letter: listable, and re-driven back to queued).
-- Times are Unix microseconds.
CREATE TABLE async_invocations (
	id              TEXT PRIMARY KEY,
	tenant_id       INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	function        TEXT NOT NULL,
	qualifier       TEXT NOT NULL DEFAULT '',
	trigger         TEXT NOT NULL DEFAULT 'async'
	                CHECK (trigger = 'async' OR trigger = 'schedule'),
	path            TEXT NOT NULL DEFAULT '',
	query           TEXT NOT NULL DEFAULT '',
	headers         TEXT NOT NULL DEFAULT '{}',
	body            BLOB,
	callback_url    TEXT,
	state           TEXT NOT NULL DEFAULT 'queued'
	                CHECK (state = 'queued' OR state = 'running' OR
	                       state = 'succeeded' OR state = 'failed'),
	attempts        INTEGER NOT NULL DEFAULT 0,
	max_retries     INTEGER NOT NULL,
	next_at         INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	last_invocation TEXT,
	last_status     INTEGER,
	last_error      TEXT,
	callback_status INTEGER,
	callback_error  TEXT
);
CREATE INDEX async_due ON async_invocations (state, next_at);
CREATE INDEX async_tenant ON async_invocations (tenant_id, state, created_at);
