/* Unit tests of gateway/route.c: URL paths to endpoints. */
#include <errno.h>

#include "gw.h"
#include "tap.h"

int
main(void)
{
	struct route r;
	char diag[256];
	char longname[200];

	is_int(route_parse("/healthz", &r, diag, sizeof(diag)), 0, "healthz");
	is_int(r.kind, ROUTE_HEALTHZ, "healthz kind");
	is_int(route_parse("/v1/whoami", &r, diag, sizeof(diag)), 0, "whoami");
	is_int(route_parse("/v1/tenants/", &r, diag, sizeof(diag)), 0, "trailing slash");
	is_int(r.kind, ROUTE_TENANTS, "tenants");
	is_int(route_parse("/v1/tenants/acme/keys/key_0123", &r, diag, sizeof(diag)), 0, "key");
	is_int(r.kind, ROUTE_KEY, "key kind");
	is_str(r.sub, "key_0123", "key id");
	is_int(route_parse("/v1/tenants/acme/code/abc", &r, diag, sizeof(diag)), -EINVAL,
	       "short digest");
	is_int(route_parse("/v1/tenants/acme/functions/hello/versions/3", &r, diag, sizeof(diag)),
	       0, "version");
	is_int(r.version, 3, "version number");
	is_int(route_parse("/v1/tenants/acme/functions/hello/versions/x", &r, diag, sizeof(diag)),
	       -EINVAL, "bad version");
	is_int(route_parse("/v1/tenants/../functions", &r, diag, sizeof(diag)), -EINVAL,
	       "dot-dot tenant");
	ok(strstr(diag, "tenant name") != NULL, "diag names tenant: %s", diag);
	is_int(route_parse("/v1/tenants/ACME", &r, diag, sizeof(diag)), -EINVAL,
	       "uppercase tenant");
	is_int(route_parse("/v1/nothing", &r, diag, sizeof(diag)), -ENOENT, "unknown");
	is_int(route_parse("/v1//tenants", &r, diag, sizeof(diag)), -ENOENT, "empty segment");
	is_int(route_parse("/fn/acme/hello", &r, diag, sizeof(diag)), 0, "invoke");
	is_int(r.kind, ROUTE_INVOKE, "invoke kind");
	is_str(r.rest, "", "no rest");
	is_int(route_parse("/fn/acme/hello:live/a/b", &r, diag, sizeof(diag)), 0,
	       "invoke alias path");
	is_str(r.qualifier, "live", "alias qualifier");
	is_int(r.version, 0, "alias is not a version");
	is_str(r.rest, "/a/b", "rest path");
	is_int(route_parse("/fn/acme/hello:12", &r, diag, sizeof(diag)), 0, "invoke version");
	is_int(r.version, 12, "version qualifier");
	is_int(route_parse("/fn/acme/hello:", &r, diag, sizeof(diag)), -EINVAL, "empty qualifier");
	is_int(route_parse("/fn/acme/hello:Bad", &r, diag, sizeof(diag)), -EINVAL, "bad qualifier");
	is_int(route_parse("/fn/acme/..", &r, diag, sizeof(diag)), -EINVAL, "dot-dot function");
	is_int(route_parse("/fn/acme/", &r, diag, sizeof(diag)), -ENOENT, "no function");
	is_int(route_parse("/fn/acme", &r, diag, sizeof(diag)), -ENOENT, "no function at all");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	{
		char path[400];

		snprintf(path, sizeof(path), "/fn/%s/x", longname);
		is_int(route_parse(path, &r, diag, sizeof(diag)), -EINVAL, "overlong tenant");
		ok(strstr(diag, "characters") != NULL, "overlong diag: %s", diag);
		snprintf(path, sizeof(path), "/v1/tenants/%s", longname);
		is_int(route_parse(path, &r, diag, sizeof(diag)), -EINVAL, "overlong tenant in v1");
	}
	is_int(route_parse("/fn/acme/caf\xc3\xa9", &r, diag, sizeof(diag)), -EINVAL,
	       "unicode function");
	is_int(route_parse("/v1/tenants/acme/functions/f/deployments", &r, diag, sizeof(diag)), 0,
	       "deployments");
	is_int(r.kind, ROUTE_DEPLOYMENTS, "deployments route");
	is_int(route_parse("/v1/tenants/acme/functions/f/deployments/12", &r, diag, sizeof(diag)),
	       0, "one deployment");
	is_int(r.kind, ROUTE_DEPLOYMENT, "deployment route");
	is_int(r.id, 12, "its id");
	is_int(route_parse("/v1/tenants/acme/functions/f/deployments/12/abort", &r, diag,
			   sizeof(diag)),
	       0, "abort");
	is_int(r.kind, ROUTE_DEPLOYMENT_ABORT, "abort route");
	is_int(route_parse("/v1/tenants/acme/functions/f/deployments/x1", &r, diag, sizeof(diag)),
	       -EINVAL, "a bad deployment id");
	ok(strstr(diag, "deployment id") != NULL, "named: %s", diag);
	is_int(route_parse("/v1/tenants/acme/functions/f/deployments/0", &r, diag, sizeof(diag)),
	       -EINVAL, "id 0");
	is_int(route_parse("/v1/tenants/acme/functions/f/deployments/1/undo", &r, diag,
			   sizeof(diag)),
	       -ENOENT, "unknown action");
	is_int(route_parse("/v1/tenants/acme/functions/f/aliases/live", &r, diag, sizeof(diag)), 0,
	       "alias");
	is_int(r.kind, ROUTE_ALIAS, "alias route");
	is_str(r.sub, "live", "alias name");
	is_int(route_parse("/v1/tenants/acme/functions/f/aliases/live/rollback", &r, diag,
			   sizeof(diag)),
	       0, "rollback");
	is_int(r.kind, ROUTE_ALIAS_ROLLBACK, "rollback route");
	is_int(route_parse("/v1/tenants/acme/functions/f/aliases/123", &r, diag, sizeof(diag)),
	       -EINVAL, "an all-digit alias");
	ok(strstr(diag, "all digits") != NULL, "says why: %s", diag);
	is_int(route_parse("/v1/tenants/acme/functions/f/aliases/Live", &r, diag, sizeof(diag)),
	       -EINVAL, "an invalid alias name");
	ok(strstr(diag, "alias") != NULL, "named: %s", diag);
	is_int(route_parse("/v1/tenants/acme/functions/f/logs", &r, diag, sizeof(diag)), 0, "logs");
	is_int(r.kind, ROUTE_LOGS, "…are the function's logs");
	is_int(route_parse("/v1/tenants/acme/invocations", &r, diag, sizeof(diag)), 0,
	       "invocations");
	is_int(r.kind, ROUTE_INVOCATIONS, "…the listing");
	is_int(route_parse("/v1/tenants/acme/invocations/0b0f6c2e-1d2a-4c3b-8e9f-0123456789ab", &r,
			   diag, sizeof(diag)),
	       0, "one invocation");
	is_int(r.kind, ROUTE_INVOCATION, "…by id");
	is_str(r.sub, "0b0f6c2e-1d2a-4c3b-8e9f-0123456789ab", "…kept in sub");
	is_int(route_parse("/v1/tenants/acme/invocations/not-an-id", &r, diag, sizeof(diag)),
	       -EINVAL, "a bad invocation id");
	ok(strstr(diag, "not-an-id") != NULL, "…is named: %s", diag);
	is_int(route_parse("/v1/tenants/acme/invocations/0b0f6c2e-1d2a-4c3b-8e9f-0123456789ab/x",
			   &r, diag, sizeof(diag)),
	       -ENOENT, "nothing below an invocation");
	is_int(route_parse("/async/acme/hello:live/a/b", &r, diag, sizeof(diag)), 0,
	       "async invoke");
	is_int(r.kind, ROUTE_ASYNC_INVOKE, "…its kind");
	ok(strcmp(r.tenant, "acme") == 0 && strcmp(r.function, "hello") == 0 &&
		   strcmp(r.qualifier, "live") == 0 && strcmp(r.rest, "/a/b") == 0,
	   "…tenant, function, qualifier and path as for /fn/");
	is_int(route_parse("/async/acme/Bad", &r, diag, sizeof(diag)), -EINVAL,
	       "async: a bad function name");
	is_int(route_parse("/async/acme", &r, diag, sizeof(diag)), -ENOENT, "async: no function");
	is_int(route_parse("/v1/tenants/acme/async", &r, diag, sizeof(diag)), 0, "async queue");
	is_int(r.kind, ROUTE_ASYNC_LIST, "…listed");
	is_int(route_parse("/v1/tenants/acme/async/0b0f6c2e-1d2a-7c3b-8e9f-0123456789ab", &r, diag,
			   sizeof(diag)),
	       0, "one async invocation");
	is_int(r.kind, ROUTE_ASYNC_ONE, "…by id");
	is_int(route_parse("/v1/tenants/acme/async/0b0f6c2e-1d2a-7c3b-8e9f-0123456789ab/redrive",
			   &r, diag, sizeof(diag)),
	       0, "redrive");
	is_int(r.kind, ROUTE_ASYNC_REDRIVE, "…its kind");
	is_str(r.sub, "0b0f6c2e-1d2a-7c3b-8e9f-0123456789ab", "…the id in sub");
	is_int(route_parse("/v1/tenants/acme/async/0b0f6c2e-1d2a-7c3b-8e9f-0123456789ab/again", &r,
			   diag, sizeof(diag)),
	       -ENOENT, "nothing else below one");
	is_int(route_parse("/v1/tenants/acme/async/nope", &r, diag, sizeof(diag)), -EINVAL,
	       "a bad async id");
	ok(strstr(diag, "nope") != NULL, "…is named: %s", diag);
	is_int(route_parse("relative", &r, diag, sizeof(diag)), -ENOENT, "relative path");
	return done();
}
