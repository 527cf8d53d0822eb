/*
 * fnconfig.c - the function config rules of SPEC §4.  Pure: takes JSON,
 * returns canonical JSON or a diagnostic naming the key.  No I/O, no logging.
 */
#include "fnconfig.h"

#include <errno.h>
#include <string.h>

#include "msg.h"
#include "names.h"
#include "schedule.h"
#include "util.h"

struct int_rule {
	const char *key;
	json_int_t min, max, def;
};

static const struct int_rule int_rules[] = {
	{ "memory_mb", 16, 10240, 128 },
	{ "timeout_s", 1, 900, 30 },
	{ "max_instances", 1, 1000, 10 },
	{ "min_instances", 0, 1000, 0 },
	{ "concurrency_per_instance", 1, 1000, 1 },
	{ "idle_timeout_s", 0, 86400, 300 },
};

static const char *const runtimes[] = { "exec", "http", "python3", "node" };

int
fnconfig_runtime(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(runtimes); i++)
		if (strcmp(name, runtimes[i]) == 0)
			return (int)i + RUNTIME_EXEC;
	return 0;
}

static const char *
json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static bool
env_name_ok(const char *k)
{
	if (!*k || (k[0] >= '0' && k[0] <= '9'))
		return false;
	for (const char *p = k; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

/* A relative path inside the code tree: no leading '/', no '..' component. */
static bool
rel_path_ok(const char *s)
{
	const char *p = s;

	if (!*s || s[0] == '/')
		return false;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == 0 || (len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!e)
			break;
		p = e + 1;
	}
	return true;
}

/* "module.function": identifier-ish segments, at least one dot. */
static bool
dotted_handler_ok(const char *s)
{
	const char *dot = strrchr(s, '.');

	if (!dot || dot == s || !dot[1])
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '/' || *p == '-'))
			return false;
	return rel_path_ok(s);
}

static int
fail(char *diag, size_t n, const char *fmt, const char *a, const char *b)
{
	(void)str_printf(diag, n, fmt, a, b);
	return -EINVAL;
}

int
fnconfig_validate(json_t *in, enum fnconfig_mode mode, json_t **out, char *diag, size_t n)
{
	json_t *cfg = NULL, *v;
	const char *key, *runtime = NULL, *handler = NULL;
	int rt;

	if (!json_is_object(in))
		return fail(diag, n, "config must be a JSON object, got %s%s", json_kind(in), "");
	cfg = json_object();
	if (!cfg)
		return -ENOMEM;

	json_object_foreach (in, key, v) {
		bool known = false;

		for (size_t i = 0; i < ARRAY_SIZE(int_rules); i++) {
			const struct int_rule *r = &int_rules[i];

			if (strcmp(key, r->key) != 0)
				continue;
			known = true;
			if (!json_is_integer(v)) {
				fail(diag, n, "%s: must be an integer, got %s", key, json_kind(v));
				goto bad;
			}
			if (json_integer_value(v) < r->min || json_integer_value(v) > r->max) {
				(void)str_printf(diag, n,
						 "%s: must be between %lld and %lld, got %lld", key,
						 (long long)r->min, (long long)r->max,
						 (long long)json_integer_value(v));
				goto bad;
			}
			json_object_set(cfg, key, v);
		}
		if (known)
			continue;
		if (strcmp(key, "name") == 0) {
			if (!json_is_string(v)) {
				fail(diag, n, "%s: must be a string, got %s", key, json_kind(v));
				goto bad;
			}
			if (!name_check("function", json_string_value(v), diag, n))
				goto bad;
		} else if (strcmp(key, "runtime") == 0) {
			if (!json_is_string(v)) {
				fail(diag, n, "%s: must be a string, got %s", key, json_kind(v));
				goto bad;
			}
			runtime = json_string_value(v);
			if (!fnconfig_runtime(runtime)) {
				fail(diag, n,
				     "runtime: unknown runtime '%.64s'; use one of exec, http, python3, node%s",
				     runtime, "");
				goto bad;
			}
			json_object_set(cfg, key, v);
		} else if (strcmp(key, "handler") == 0) {
			if (!json_is_string(v)) {
				fail(diag, n, "%s: must be a string, got %s", key, json_kind(v));
				goto bad;
			}
			handler = json_string_value(v);
			if (strlen(handler) > 256) {
				fail(diag, n, "handler: longer than 256 characters%s%s", "", "");
				goto bad;
			}
			json_object_set(cfg, key, v);
		} else if (strcmp(key, "env") == 0) {
			const char *ek;
			json_t *ev;
			size_t total = 0;

			if (!json_is_object(v)) {
				fail(diag, n, "%s: must be an object of strings, got %s", key,
				     json_kind(v));
				goto bad;
			}
			json_object_foreach (v, ek, ev) {
				if (!env_name_ok(ek)) {
					fail(diag, n,
					     "env: '%.64s' is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)%s",
					     ek, "");
					goto bad;
				}
				if (str_startswith(ek, "FAAS_")) {
					fail(diag, n,
					     "env: '%.64s' uses the reserved prefix FAAS_%s", ek,
					     "");
					goto bad;
				}
				if (!json_is_string(ev)) {
					fail(diag, n,
					     "env: value of '%.64s' must be a string, got %s", ek,
					     json_kind(ev));
					goto bad;
				}
				if (memchr(json_string_value(ev), 0, json_string_length(ev))) {
					fail(diag, n, "env: value of '%.64s' contains a NUL byte%s",
					     ek, "");
					goto bad;
				}
				total += strlen(ek) + json_string_length(ev) + 2;
			}
			if (total > FNCONFIG_ENV_MAX_BYTES) {
				(void)str_printf(diag, n,
						 "env: %zu bytes in total; at most %d are allowed",
						 total, FNCONFIG_ENV_MAX_BYTES);
				goto bad;
			}
			json_object_set(cfg, key, v);
		} else if (strcmp(key, "secrets") == 0 ||
			   (strcmp(key, "ignore") == 0 && mode == FNCONFIG_MANIFEST)) {
			size_t i;
			json_t *e;
			bool secrets = key[0] == 's';

			if (!json_is_array(v)) {
				fail(diag, n, "%s: must be an array of strings, got %s", key,
				     json_kind(v));
				goto bad;
			}
			if (json_array_size(v) > 256) {
				fail(diag, n, "%s: at most 256 entries%s", key, "");
				goto bad;
			}
			json_array_foreach (v, i, e) {
				if (!json_is_string(e)) {
					fail(diag, n, "%s: entries must be strings, got %s", key,
					     json_kind(e));
					goto bad;
				}
				if (secrets && !name_valid(json_string_value(e))) {
					fail(diag, n,
					     "secrets: '%.64s' is not a valid secret name%s",
					     json_string_value(e), "");
					goto bad;
				}
			}
			if (secrets)
				json_object_set(cfg, key, v);
		} else if (strcmp(key, "public") == 0) {
			if (!json_is_boolean(v)) {
				fail(diag, n, "%s: must be true or false, got %s", key,
				     json_kind(v));
				goto bad;
			}
			json_object_set(cfg, key, v);
		} else if (strcmp(key, "network") == 0) {
			if (!json_is_string(v) || (strcmp(json_string_value(v), "none") != 0 &&
						   strcmp(json_string_value(v), "host") != 0)) {
				fail(diag, n, "%s: must be \"none\" or \"host\"%s", key, "");
				goto bad;
			}
			json_object_set(cfg, key, v);
		} else if (strcmp(key, "schedule") == 0) {
			struct schedule sc;
			char why[200];

			if (!json_is_string(v)) {
				fail(diag, n,
				     "%s: must be rate(N minute|minutes|hour|hours|day|days) or a 5-field cron expression%s",
				     key, "");
				goto bad;
			}
			if (schedule_parse(json_string_value(v), &sc, why, sizeof(why)) < 0) {
				fail(diag, n, "%s%s", why, "");
				goto bad;
			}
			json_object_set(cfg, key, v);
		} else if (strcmp(key, "code") == 0 && mode == FNCONFIG_API) {
			const char *c = json_is_string(v) ? json_string_value(v) : "";
			uint8_t digest[32];

			if (!str_startswith(c, "sha256:") || strlen(c) != 7 + 64 ||
			    hex_decode(c + 7, digest, 32) < 0) {
				fail(diag, n,
				     "code: must be \"sha256:\" followed by 64 hex digits%s%s", "",
				     "");
				goto bad;
			}
		} else {
			fail(diag, n, "unknown key '%.64s'%s", key,
			     strcmp(key, "ignore") == 0
				     ? " (ignore belongs in faas.json, not in the API)"
				     : "");
			goto bad;
		}
	}

	if (!runtime) {
		fail(diag, n, "runtime: required (one of exec, http, python3, node)%s%s", "", "");
		goto bad;
	}
	if (!handler) {
		fail(diag, n, "handler: required%s%s",
		     fnconfig_runtime(runtime) == RUNTIME_EXEC ||
				     fnconfig_runtime(runtime) == RUNTIME_HTTP
			     ? " (path of the executable inside the code, e.g. \"handler.sh\")"
			     : " (\"module.function\", e.g. \"app.handler\")",
		     "");
		goto bad;
	}
	rt = fnconfig_runtime(runtime);
	if ((rt == RUNTIME_EXEC || rt == RUNTIME_HTTP) ? !rel_path_ok(handler)
						       : !dotted_handler_ok(handler)) {
		fail(diag, n,
		     rt == RUNTIME_EXEC || rt == RUNTIME_HTTP
			     ? "handler: '%.64s' must be a relative path inside the code without '..'%s"
			     : "handler: '%.64s' must look like module.function%s",
		     handler, "");
		goto bad;
	}
	if (mode == FNCONFIG_API && !json_object_get(in, "code")) {
		fail(diag, n, "code: required (\"sha256:…\" of uploaded code)%s%s", "", "");
		goto bad;
	}

	/* Defaults. */
	for (size_t i = 0; i < ARRAY_SIZE(int_rules); i++)
		if (!json_object_get(cfg, int_rules[i].key))
			json_object_set_new(cfg, int_rules[i].key, json_integer(int_rules[i].def));
	if (json_integer_value(json_object_get(cfg, "min_instances")) >
	    json_integer_value(json_object_get(cfg, "max_instances"))) {
		fail(diag, n, "min_instances: must not exceed max_instances%s%s", "", "");
		goto bad;
	}
	if (!json_object_get(cfg, "env"))
		json_object_set_new(cfg, "env", json_object());
	if (!json_object_get(cfg, "secrets"))
		json_object_set_new(cfg, "secrets", json_array());
	if (!json_object_get(cfg, "public"))
		json_object_set_new(cfg, "public", json_false());
	if (!json_object_get(cfg, "network"))
		json_object_set_new(cfg, "network", json_string("none"));
	*out = cfg;
	return 0;
bad:
	json_decref(cfg);
	return -EINVAL;
}
