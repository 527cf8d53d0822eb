-- 001_init.sql - tenants, keys, code, functions, versions, aliases.
-- Times are Unix milliseconds (UTC).  Names follow SPEC §1 and are checked
-- by the gateway before they reach this schema.

CREATE TABLE tenants (
	id            INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: uid = uid_base + id - 1
	name          TEXT NOT NULL UNIQUE,
	uid           INTEGER NOT NULL UNIQUE CHECK (uid > 0),
	max_functions INTEGER NOT NULL DEFAULT 100,
	max_instances INTEGER NOT NULL DEFAULT 100,
	max_memory_mb INTEGER NOT NULL DEFAULT 10240,
	allow_host_network INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL
);

-- API keys.  Only the SHA-256 of a token is stored.  tenant_id is NULL for
-- admin keys.  A revoked key keeps its row (audit) with revoked_at set.
CREATE TABLE keys (
	id         TEXT PRIMARY KEY,
	tenant_id  INTEGER REFERENCES tenants(id) ON DELETE CASCADE,
	scope      TEXT NOT NULL CHECK (scope IN ('admin', 'owner', 'deploy', 'invoke')),
	hash       BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
	name       TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	revoked_at INTEGER,
	CHECK ((scope = 'admin') = (tenant_id IS NULL))
);

-- Uploaded code archives, content-addressed per tenant.
CREATE TABLE code (
	tenant_id     INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	sha256        TEXT NOT NULL CHECK (length(sha256) = 64),
	size          INTEGER NOT NULL,
	unpacked_size INTEGER NOT NULL,
	files         INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, sha256)
);

-- Per-tenant version counters outlive functions, so a version number is
-- never reused even after the function is deleted and made again.
CREATE TABLE version_counters (
	tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	function  TEXT NOT NULL,
	last      INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, function)
);

CREATE TABLE functions (
	id         INTEGER PRIMARY KEY,
	tenant_id  INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	UNIQUE (tenant_id, name)
);

-- Immutable versions: code digest + canonical config JSON.
CREATE TABLE versions (
	function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
	number      INTEGER NOT NULL CHECK (number > 0),
	code_sha256 TEXT NOT NULL,
	config      TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	PRIMARY KEY (function_id, number)
);

-- Aliases point at a version, with optional weighted extra versions
-- ({"4": 10} as JSON text; the main version gets 100 minus their sum).
CREATE TABLE aliases (
	function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
	name        TEXT NOT NULL,
	version     INTEGER NOT NULL,
	weights     TEXT NOT NULL DEFAULT '{}',
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (function_id, name),
	FOREIGN KEY (function_id, version) REFERENCES versions(function_id, number)
);
