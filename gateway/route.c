/*
 * route.c - map a decoded URL path to an endpoint of SPEC §5 and check every
 * name in it.  Runs in the gateway for every request before anything else.
 * INVARIANT: a route that parses contains only valid names, so later code
 * may use them in file paths and messages as they are.
 */
#include <errno.h>
#include <string.h>

#include "gw.h"
#include "names.h"
#include "util.h"

#define MAX_SEGS 8

static bool
is_sha256_hex(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static bool
is_key_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 40)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '_'))
			return false;
	return true;
}

static int
bad(char *diag, size_t n, const char *what, const char *seg)
{
	char sub[192];

	if (!name_check(what, seg, sub, sizeof(sub)))
		(void)str_printf(diag, n, "%s", sub);
	return -EINVAL;
}

/* Split path "/a/b/c" into segments (copied, each at most 79 bytes). */
static int
split(const char *path, char segs[MAX_SEGS][80], unsigned *nsegs)
{
	const char *p = path;
	unsigned n = 0;

	if (*p != '/')
		return -ENOENT;
	p++;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (n == MAX_SEGS)
			return -ENOENT;
		if (len == 0) {
			if (!e || !e[1])
				break; /* one trailing slash is fine */
			return -ENOENT;
		}
		if (len >= 80)
			len = 79; /* long enough to fail any name check */
		memcpy(segs[n], p, len);
		segs[n][len] = 0;
		if ((e ? (size_t)(e - p) : strlen(p)) >= 80)
			segs[n][78] = '\x01'; /* force invalid */
		n++;
		if (!e)
			break;
		p = e + 1;
	}
	*nsegs = n;
	return 0;
}

static int
parse_fn(const char *path, struct route *r, char *diag, size_t n)
{
	/* /fn/{t}/{f}[:{q}][/{rest}], or the same after /async/ */
	bool async = str_startswith(path, "/async/");
	const char *t = path + (async ? 7 : 4), *te = strchr(t, '/'), *f, *fe, *colon;
	char fn[128];
	size_t len;

	if (!te)
		return -ENOENT;
	len = (size_t)(te - t);
	if (len == 0)
		return -ENOENT;
	if (len >= sizeof(r->tenant)) {
		(void)str_printf(diag, n,
				 "tenant name is %zu characters long; at most %d are allowed", len,
				 NAME_MAX_LEN);
		return -EINVAL;
	}
	memcpy(r->tenant, t, len);
	r->tenant[len] = 0;
	if (!name_valid(r->tenant))
		return bad(diag, n, "tenant", r->tenant);
	f = te + 1;
	fe = strchr(f, '/');
	len = fe ? (size_t)(fe - f) : strlen(f);
	if (len == 0)
		return -ENOENT;
	if (len >= sizeof(fn)) {
		(void)str_printf(diag, n,
				 "function name is %zu characters long; at most %d are allowed",
				 len, NAME_MAX_LEN);
		return -EINVAL;
	}
	memcpy(fn, f, len);
	fn[len] = 0;
	r->rest = fe ? fe : "";
	colon = strchr(fn, ':');
	if (colon) {
		fn[colon - fn] = 0;
		if (str_copy(r->qualifier, sizeof(r->qualifier), colon + 1) < 0 ||
		    !name_valid(r->qualifier)) {
			(void)str_printf(
				diag, n,
				"qualifier after ':' must be a version number or an alias name");
			return -EINVAL;
		}
		if (!alias_name_valid(r->qualifier)) {
			uint64_t v;

			if (parse_u64(r->qualifier, 1, INT64_MAX, &v) < 0) {
				(void)str_printf(diag, n, "version qualifier out of range");
				return -EINVAL;
			}
			r->version = (int64_t)v;
		}
	}
	if (!name_valid(fn))
		return bad(diag, n, "function", fn);
	(void)str_copy(r->function, sizeof(r->function), fn);
	r->kind = async ? ROUTE_ASYNC_INVOKE : ROUTE_INVOKE;
	return 0;
}

/* 8-4-4-4-12 lowercase hex digits, as invoke_make_id writes them. */
static bool
is_invocation_id(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-'
			 : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

int
route_parse(const char *path, struct route *r, char *diag, size_t n)
{
	char s[MAX_SEGS][80];
	unsigned ns = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	r->rest = "";
	if (str_startswith(path, "/fn/") || str_startswith(path, "/async/"))
		return parse_fn(path, r, diag, n);
	rc = split(path, s, &ns);
	if (rc < 0)
		return rc;
	if (ns == 1 && strcmp(s[0], "healthz") == 0)
		return r->kind = ROUTE_HEALTHZ, 0;
	if (ns == 1 && strcmp(s[0], "readyz") == 0)
		return r->kind = ROUTE_READYZ, 0;
	if (ns == 1 && strcmp(s[0], "metrics") == 0)
		return r->kind = ROUTE_METRICS, 0;
	if (ns < 2 || strcmp(s[0], "v1") != 0)
		return -ENOENT;
	if (ns == 2 && strcmp(s[1], "whoami") == 0)
		return r->kind = ROUTE_WHOAMI, 0;
	if (strcmp(s[1], "tenants") != 0)
		return -ENOENT;
	if (ns == 2)
		return r->kind = ROUTE_TENANTS, 0;
	if (!name_valid(s[2]))
		return bad(diag, n, "tenant", s[2]);
	(void)str_copy(r->tenant, sizeof(r->tenant), s[2]);
	if (ns == 3)
		return r->kind = ROUTE_TENANT, 0;
	if (strcmp(s[3], "keys") == 0) {
		if (ns == 4)
			return r->kind = ROUTE_KEYS, 0;
		if (ns == 5) {
			if (!is_key_id(s[4])) {
				(void)str_printf(diag, n, "'%.40s' is not a key id", s[4]);
				return -EINVAL;
			}
			(void)str_copy(r->sub, sizeof(r->sub), s[4]);
			return r->kind = ROUTE_KEY, 0;
		}
		return -ENOENT;
	}
	if (strcmp(s[3], "code") == 0 && ns == 5) {
		if (!is_sha256_hex(s[4])) {
			(void)str_printf(
				diag, n,
				"code digest must be 64 lowercase hex digits (the sha256 of the archive)");
			return -EINVAL;
		}
		(void)str_copy(r->sub, sizeof(r->sub), s[4]);
		return r->kind = ROUTE_CODE, 0;
	}
	if (strcmp(s[3], "invocations") == 0) {
		if (ns == 4)
			return r->kind = ROUTE_INVOCATIONS, 0;
		if (ns != 5)
			return -ENOENT;
		if (!is_invocation_id(s[4])) {
			(void)str_printf(diag, n,
					 "'%.40s' is not an invocation id (a UUID, as in "
					 "X-Faas-Invocation-Id)",
					 s[4]);
			return -EINVAL;
		}
		(void)str_copy(r->sub, sizeof(r->sub), s[4]);
		return r->kind = ROUTE_INVOCATION, 0;
	}
	if (strcmp(s[3], "async") == 0) {
		if (ns == 4)
			return r->kind = ROUTE_ASYNC_LIST, 0;
		if (ns > 6 || (ns == 6 && strcmp(s[5], "redrive") != 0))
			return -ENOENT;
		if (!is_invocation_id(s[4])) {
			(void)str_printf(diag, n,
					 "'%.40s' is not an async invocation id (a UUID, as the "
					 "202 of POST /async/... gave)",
					 s[4]);
			return -EINVAL;
		}
		(void)str_copy(r->sub, sizeof(r->sub), s[4]);
		return r->kind = ns == 5 ? ROUTE_ASYNC_ONE : ROUTE_ASYNC_REDRIVE, 0;
	}
	if (strcmp(s[3], "secrets") == 0)
		return ns <= 5 ? (r->kind = ROUTE_NOT_YET, 0) : -ENOENT;
	if (strcmp(s[3], "functions") != 0)
		return -ENOENT;
	if (ns == 4)
		return r->kind = ROUTE_FUNCTIONS, 0;
	if (!name_valid(s[4]))
		return bad(diag, n, "function", s[4]);
	(void)str_copy(r->function, sizeof(r->function), s[4]);
	if (ns == 5)
		return r->kind = ROUTE_FUNCTION, 0;
	if (strcmp(s[5], "versions") == 0) {
		uint64_t v;

		if (ns == 6)
			return r->kind = ROUTE_VERSIONS, 0;
		if (ns != 7)
			return -ENOENT;
		if (parse_u64(s[6], 1, INT64_MAX, &v) < 0) {
			(void)str_printf(diag, n, "'%.40s' is not a version number", s[6]);
			return -EINVAL;
		}
		r->version = (int64_t)v;
		(void)str_copy(r->sub, sizeof(r->sub), s[6]);
		return r->kind = ROUTE_VERSION, 0;
	}
	if (strcmp(s[5], "aliases") == 0) {
		if (ns == 6)
			return r->kind = ROUTE_ALIASES, 0;
		if (ns > 8 || (ns == 8 && strcmp(s[7], "rollback") != 0))
			return -ENOENT;
		if (!alias_name_valid(s[6])) {
			if (name_valid(s[6]))
				(void)str_printf(
					diag, n,
					"alias '%s' is all digits, which reads as a version "
					"number; pick a name with a letter or '-'",
					s[6]);
			else
				(void)bad(diag, n, "alias", s[6]);
			return -EINVAL;
		}
		(void)str_copy(r->sub, sizeof(r->sub), s[6]);
		return r->kind = ns == 7 ? ROUTE_ALIAS : ROUTE_ALIAS_ROLLBACK, 0;
	}
	if (strcmp(s[5], "deployments") == 0) {
		uint64_t id;

		if (ns == 6)
			return r->kind = ROUTE_DEPLOYMENTS, 0;
		if (ns > 8 || (ns == 8 && strcmp(s[7], "abort") != 0))
			return -ENOENT;
		if (parse_u64(s[6], 1, INT64_MAX, &id) < 0) {
			(void)str_printf(diag, n, "'%.40s' is not a deployment id", s[6]);
			return -EINVAL;
		}
		r->id = (int64_t)id;
		return r->kind = ns == 7 ? ROUTE_DEPLOYMENT : ROUTE_DEPLOYMENT_ABORT, 0;
	}
	if (strcmp(s[5], "logs") == 0 && ns == 6)
		return r->kind = ROUTE_LOGS, 0;
	return -ENOENT;
}
