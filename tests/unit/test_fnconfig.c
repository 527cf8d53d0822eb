/* Unit tests of common/fnconfig.c: SPEC §4 validation and defaults. */
#include <errno.h>

#include "fnconfig.h"
#include "tap.h"

static int
check(const char *text, enum fnconfig_mode mode, char *diag, json_t **out)
{
	json_t *in = json_loads(text, 0, NULL);
	json_t *cfg = NULL;
	int r;

	if (!in)
		return -999;
	r = fnconfig_validate(in, mode, &cfg, diag, FNCONFIG_DIAG);
	json_decref(in);
	if (out)
		*out = cfg;
	else
		json_decref(cfg);
	return r;
}

#define SHA "\"sha256:0000000000000000000000000000000000000000000000000000000000000000\""

int
main(void)
{
	char diag[FNCONFIG_DIAG];
	json_t *cfg;

	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h.sh\"}", FNCONFIG_MANIFEST, diag, &cfg),
	       0, "minimal manifest");
	is_int(json_integer_value(json_object_get(cfg, "memory_mb")), 128, "default memory");
	is_int(json_integer_value(json_object_get(cfg, "timeout_s")), 30, "default timeout");
	is_int(json_integer_value(json_object_get(cfg, "max_instances")), 10,
	       "default max_instances");
	ok(json_is_false(json_object_get(cfg, "public")), "default private");
	is_str(json_string_value(json_object_get(cfg, "network")), "none", "default network");
	json_decref(cfg);

	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"colour\":1}", FNCONFIG_MANIFEST,
		     diag, NULL),
	       -EINVAL, "unknown key");
	ok(strstr(diag, "colour") != NULL, "diag names the unknown key: %s", diag);
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"memory_mb\":\"128\"}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "wrong type");
	ok(strstr(diag, "memory_mb") && strstr(diag, "integer"), "diag names field and type: %s",
	   diag);
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"memory_mb\":15}", FNCONFIG_MANIFEST,
		     diag, NULL),
	       -EINVAL, "memory below range");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"memory_mb\":10241}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "memory above range");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"timeout_s\":901}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "timeout above range");
	ok(strstr(diag, "timeout_s") && strstr(diag, "900"), "range in diag: %s", diag);
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"timeout_s\":1.5}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "fraction refused");
	is_int(check("{\"runtime\":\"cobol\",\"handler\":\"h\"}", FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "unknown runtime");
	is_int(check("{\"handler\":\"h\"}", FNCONFIG_MANIFEST, diag, NULL), -EINVAL,
	       "runtime required");
	is_int(check("{\"runtime\":\"exec\"}", FNCONFIG_MANIFEST, diag, NULL), -EINVAL,
	       "handler required");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"../x\"}", FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "handler escaping the code");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"/bin/sh\"}", FNCONFIG_MANIFEST, diag,
		     NULL),
	       -EINVAL, "absolute handler");
	is_int(check("{\"runtime\":\"python3\",\"handler\":\"app\"}", FNCONFIG_MANIFEST, diag,
		     NULL),
	       -EINVAL, "python handler needs module.function");
	is_int(check("{\"runtime\":\"python3\",\"handler\":\"app.handler\"}", FNCONFIG_MANIFEST,
		     diag, NULL),
	       0, "python handler ok");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"env\":{\"FAAS_X\":\"1\"}}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "reserved env prefix");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"env\":{\"1X\":\"1\"}}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "bad env name");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"env\":{\"X\":1}}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "non-string env value");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"schedule\":\"rate(5 minutes)\"}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       0, "rate schedule");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"schedule\":\"rate(1 minutes)\"}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "rate(1 minutes) is bad grammar");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"schedule\":\"*/5 * * * *\"}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       0, "cron schedule");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"schedule\":\"* * *\"}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "short cron");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"schedule\":\"0 9 * * 9\"}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "a cron value out of range");
	ok(strstr(diag, "day of week field '9'") != NULL, "…is named: %s", diag);
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"network\":\"bridge\"}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "bad network");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"min_instances\":5,\"max_instances\":2}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "min over max");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"ignore\":[\".git\"]}",
		     FNCONFIG_MANIFEST, diag, &cfg),
	       0, "ignore allowed in manifest");
	ok(!json_object_get(cfg, "ignore"), "ignore not part of the version config");
	json_decref(cfg);
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"ignore\":[\".git\"],\"code\":" SHA
		     "}",
		     FNCONFIG_API, diag, NULL),
	       -EINVAL, "ignore refused by the API");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\"}", FNCONFIG_API, diag, NULL), -EINVAL,
	       "API needs code");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"code\":\"sha256:zz\"}",
		     FNCONFIG_API, diag, NULL),
	       -EINVAL, "bad code digest");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"code\":" SHA "}", FNCONFIG_API,
		     diag, &cfg),
	       0, "API config ok");
	ok(!json_object_get(cfg, "code"), "code not part of the version config");
	json_decref(cfg);
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"code\":" SHA "}", FNCONFIG_MANIFEST,
		     diag, NULL),
	       -EINVAL, "code refused in a manifest");
	is_int(check("[1]", FNCONFIG_MANIFEST, diag, NULL), -EINVAL, "not an object");
	is_int(check("{\"runtime\":\"exec\",\"handler\":\"h\",\"name\":\"Bad Name\"}",
		     FNCONFIG_MANIFEST, diag, NULL),
	       -EINVAL, "bad name");
	is_int(fnconfig_runtime("node"), 4, "runtime numbering");
	return done();
}
