-- 002_deployments.sql - progressive deployments of an alias (SPEC §6), and
-- the version an alias pointed at before its last move (for rollback).

ALTER TABLE aliases ADD COLUMN previous_version INTEGER;

-- One row per deployment.  While state is 'in_progress' the alias routes
-- {to_version: weight of the current step} and from_version gets the rest;
-- step_* hold what the engine saw of the current step so far (checkpointed
-- about once a second, so a restart resumes with the time already spent).
CREATE TABLE deployments (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	function_id      INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
	alias            TEXT NOT NULL,
	from_version     INTEGER,          -- NULL: the alias was new
	to_version       INTEGER NOT NULL,
	strategy         TEXT NOT NULL,    -- canonical text, e.g. canary:10:5m
	max_error_rate   REAL NOT NULL,    -- percent
	min_invocations  INTEGER NOT NULL,
	max_p95_ms       INTEGER,          -- NULL: no latency bound
	state            TEXT NOT NULL
		CHECK (state IN ('in_progress', 'succeeded', 'rolled_back', 'aborted')),
	step             INTEGER NOT NULL DEFAULT 0,
	step_elapsed_ms  INTEGER NOT NULL DEFAULT 0,
	step_invocations INTEGER NOT NULL DEFAULT 0,
	step_errors      INTEGER NOT NULL DEFAULT 0,
	step_latency     TEXT NOT NULL DEFAULT '[]', -- [[bucket, count], …]
	steps            TEXT NOT NULL DEFAULT '[]', -- figures of finished steps
	reason           TEXT,
	figures          TEXT,             -- what a rollback judged, as JSON
	created_by       TEXT NOT NULL DEFAULT '',
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	ended_at         INTEGER
);

-- INVARIANT: at most one deployment in progress per alias.
CREATE UNIQUE INDEX deployments_active ON deployments (function_id, alias)
	WHERE state = 'in_progress';
CREATE INDEX deployments_by_function ON deployments (function_id, id);
