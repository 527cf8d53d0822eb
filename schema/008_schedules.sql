-- 008_schedules.sql - the newest slot (Unix seconds) each scheduled
-- function's schedule has been handled for: fired (queued as an async
-- invocation with trigger 'schedule' in the same transaction), or passed
-- over (first seen, or missed while faasd was down).  A slot is never
-- handled twice, across restarts too (SPEC §8).  A function's schedule is
-- the one of the version its alias live points to.
CREATE TABLE schedules (
	tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	function  TEXT NOT NULL,
	last_slot INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, function)
);
