/*
 * api.c - the /v1 management endpoints of SPEC §5 that this build serves:
 * whoami, tenants, keys, functions, versions and the alias listing (one
 * alias and deployments are in api_deploy.c).  Runs in
 * the gateway's HTTP threads once a request's body has been read.
 *
 * Authorisation is decided here, per endpoint, from the principal that
 * gateway.c derived from the bearer token (through the in-memory key cache).
 * INVARIANT: a tenant-scoped endpoint never touches another tenant's rows:
 * every store call takes the tenant id resolved from the URL after
 * api_authorize() accepted the principal for that tenant.
 */
#include <errno.h>
#include <string.h>

#include "fnconfig.h"
#include "gw.h"
#include "log.h"
#include "names.h"
#include "util.h"

int
api_authorize(struct req *q, const char *tenant, enum scope need, enum MHD_Result *ret)
{
	const struct principal *p = &q->who;

	if (p->scope == SCOPE_NONE) {
		*ret = q->token_bad
			       ? gw_error(
					 q, 401, "unauthorized",
					 "unknown or revoked token; check FAASCTL_TOKEN or run 'faasctl login'")
			       : gw_error(q, 401, "unauthorized",
					  "missing token: send 'Authorization: Bearer <token>'");
		return -1;
	}
	if (p->scope == SCOPE_ADMIN)
		return 0;
	if (!tenant || strcmp(tenant, p->tenant) != 0) {
		*ret = gw_error(
			q, 403, "forbidden",
			tenant ? "this token belongs to another tenant and cannot access tenant '%s'"
			       : "this endpoint needs an admin token%s",
			tenant ? tenant : "");
		return -1;
	}
	if (p->scope < need) {
		*ret = gw_error(q, 403, "forbidden",
				"this needs a '%s' (or stronger) token; this one has scope '%s'",
				scope_name(need), scope_name(p->scope));
		return -1;
	}
	return 0;
}

json_t *
api_body_json(struct req *q, enum MHD_Result *ret)
{
	json_error_t err;
	json_t *j;

	if (!q->body.len) {
		*ret = gw_error(q, 400, "invalid_json",
				"request body is empty; send a JSON object");
		return NULL;
	}
	j = json_loadb(q->body.data, q->body.len, JSON_REJECT_DUPLICATES, &err);
	if (!j) {
		*ret = gw_error(q, 400, "invalid_json",
				"request body is not valid JSON: %s (line %d, column %d)", err.text,
				err.line, err.column);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		*ret = gw_error(q, 400, "invalid_json", "request body must be a JSON object");
		return NULL;
	}
	return j;
}

enum MHD_Result
api_method_not_allowed(struct req *q, const char *method, const char *allow)
{
	struct MHD_Response *resp;
	char *text;
	enum MHD_Result r;
	json_t *body = json_pack("{s:{s:s, s:s}}", "error", "code", "method_not_allowed", "message",
				 "method not allowed here");

	json_object_set_new(json_object_get(body, "error"), "allowed", json_string(allow));
	(void)method;
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text)
		return MHD_NO;
	resp = MHD_create_response_from_buffer_with_free_callback(strlen(text), text, free);
	MHD_add_response_header(resp, "Allow", allow);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	r = gw_queue(q, 405, resp);
	return r;
}

int
api_load_tenant(struct req *q, struct store_tenant *t, enum MHD_Result *ret)
{
	int r = store_tenant_get(q->gw->store, q->route.tenant, t);

	if (r < 0) {
		*ret = r == -ENOENT ? gw_error(q, 404, "tenant_not_found",
					       "tenant '%s' does not exist", q->route.tenant)
				    : gw_errno(q, r, "cannot read tenant");
		return -1;
	}
	return 0;
}

static void
reload_auth(struct gw *g)
{
	int r = auth_cache_reload(g->auth, g->store);

	if (r < 0)
		log_err("reloading the key cache failed: %s", strerror(-r));
}

/* Make a key for tenant t and put its token into o. */
static int
key_create(struct gw *g, int64_t tenant_id, enum scope scope, const char *name, json_t *o)
{
	struct store_key k = { 0 };
	char token[64];
	int r;

	r = auth_token_new(token, k.hash, k.id);
	if (r < 0)
		return r;
	k.tenant_id = tenant_id;
	(void)str_copy(k.scope, sizeof(k.scope), scope_name(scope));
	(void)str_copy(k.name, sizeof(k.name), name);
	r = store_key_insert(g->store, &k);
	if (r < 0)
		return r;
	reload_auth(g);
	json_object_set_new(
		o, "key",
		json_pack("{s:s, s:s, s:s}", "id", k.id, "scope", k.scope, "name", k.name));
	json_object_set_new(o, "token", json_string(token));
	return 0;
}

static int
int_field(json_t *body, const char *key, json_int_t min, json_int_t max, int64_t *out, char *diag,
	  size_t n)
{
	json_t *v = json_object_get(body, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		(void)str_printf(diag, n, "%s: must be an integer between %lld and %lld", key,
				 (long long)min, (long long)max);
		return -EINVAL;
	}
	*out = json_integer_value(v);
	return 0;
}

static enum MHD_Result
tenants_post(struct req *q)
{
	struct gw *g = q->gw;
	struct store_tenant t = { .max_functions = 100,
				  .max_instances = 100,
				  .max_memory_mb = 10240 };
	enum MHD_Result ret;
	json_t *body, *v, *out;
	const char *key;
	char diag[256];
	int r;

	if (api_authorize(q, NULL, SCOPE_ADMIN, &ret) < 0)
		return ret;
	body = api_body_json(q, &ret);
	if (!body)
		return ret;
	json_object_foreach (body, key, v) {
		if (!str_oneof(key, "name", "max_functions", "max_instances", "max_memory_mb",
			       "allow_host_network", NULL)) {
			ret = gw_error(q, 400, "invalid_request", "unknown key '%.64s'", key);
			goto out;
		}
	}
	v = json_object_get(body, "name");
	if (!json_is_string(v)) {
		ret = gw_error(q, 400, "invalid_request", "name: required string");
		goto out;
	}
	if (!name_check("tenant", json_string_value(v), diag, sizeof(diag))) {
		ret = gw_error(q, 400, "invalid_name", "%s", diag);
		goto out;
	}
	(void)str_copy(t.name, sizeof(t.name), json_string_value(v));
	if (int_field(body, "max_functions", 1, 100000, &t.max_functions, diag, sizeof(diag)) < 0 ||
	    int_field(body, "max_instances", 1, 100000, &t.max_instances, diag, sizeof(diag)) < 0 ||
	    int_field(body, "max_memory_mb", 16, 1048576, &t.max_memory_mb, diag, sizeof(diag)) <
		    0) {
		ret = gw_error(q, 400, "invalid_request", "%s", diag);
		goto out;
	}
	v = json_object_get(body, "allow_host_network");
	if (v && !json_is_boolean(v)) {
		ret = gw_error(q, 400, "invalid_request",
			       "allow_host_network: must be true or false");
		goto out;
	}
	t.allow_host_network = json_is_true(v);
	r = store_tenant_create(g->store, &t, g->cfg.uid_base, g->cfg.uid_count);
	if (r == -EEXIST) {
		ret = gw_error(q, 409, "conflict", "tenant '%s' already exists", t.name);
		goto out;
	}
	if (r == -EDQUOT) {
		ret = gw_error(q, 403, "quota_exceeded",
			       "the tenant uid range is used up; raise uid_count in faasd.conf");
		goto out;
	}
	if (r < 0) {
		log_err("create tenant %s: %s", t.name, store_errmsg(g->store));
		ret = gw_errno(q, r, "cannot create tenant");
		goto out;
	}
	out = json_pack("{s:o}", "tenant", store_tenant_json(&t));
	r = key_create(g, t.id, SCOPE_OWNER, "owner", out);
	if (r < 0) {
		json_decref(out);
		ret = gw_errno(q, r, "tenant created but its owner key failed");
		goto out;
	}
	log_notice("tenant created name=%s uid=%u by=%s", t.name, t.uid, q->who.key_id);
	ret = gw_json(q, 201, out);
out:
	json_decref(body);
	return ret;
}

static enum MHD_Result
tenant_endpoint(struct req *q, const char *method)
{
	struct gw *g = q->gw;
	struct store_tenant t;
	enum MHD_Result ret;
	char dir[100];
	int r;

	if (strcmp(method, "GET") == 0) {
		if (api_authorize(q, q->route.tenant, SCOPE_OWNER, &ret) < 0 ||
		    api_load_tenant(q, &t, &ret) < 0)
			return ret;
		return gw_json(q, 200, json_pack("{s:o}", "tenant", store_tenant_json(&t)));
	}
	if (strcmp(method, "DELETE") != 0)
		return api_method_not_allowed(q, method, "GET, DELETE");
	if (api_authorize(q, NULL, SCOPE_ADMIN, &ret) < 0 || api_load_tenant(q, &t, &ret) < 0)
		return ret;
	r = store_tenant_delete(g->store, t.id);
	if (r < 0)
		return gw_errno(q, r, "cannot delete tenant '%s'", t.name);
	reload_auth(g);
	(void)str_printf(dir, sizeof(dir), "code/%s", t.name);
	r = code_rmtree(dir);
	if (r < 0)
		log_warn("tenant %s deleted but its code directory remains: %s", t.name,
			 strerror(-r));
	log_notice("tenant deleted name=%s by=%s", t.name, q->who.key_id);
	return gw_json(q, 200, json_pack("{s:s}", "deleted", t.name));
}

static enum MHD_Result
keys_endpoint(struct req *q, const char *method)
{
	struct gw *g = q->gw;
	struct store_tenant t;
	enum MHD_Result ret;
	json_t *body, *v, *out;
	const char *key, *name = "";
	enum scope scope;
	int r;

	if (api_authorize(q, q->route.tenant, SCOPE_OWNER, &ret) < 0 ||
	    api_load_tenant(q, &t, &ret) < 0)
		return ret;
	if (q->route.kind == ROUTE_KEY) {
		if (strcmp(method, "DELETE") != 0)
			return api_method_not_allowed(q, method, "DELETE");
		r = store_key_revoke(g->store, t.id, q->route.sub);
		if (r == -ENOENT)
			return gw_error(q, 404, "key_not_found",
					"no active key '%s' in tenant '%s'", q->route.sub, t.name);
		if (r < 0)
			return gw_errno(q, r, "cannot revoke key");
		reload_auth(g);
		log_notice("key revoked id=%s tenant=%s by=%s", q->route.sub, t.name,
			   q->who.key_id);
		return gw_json(q, 200, json_pack("{s:s}", "revoked", q->route.sub));
	}
	if (strcmp(method, "GET") == 0) {
		r = store_key_list(g->store, t.id, &out);
		return r < 0 ? gw_errno(q, r, "cannot list keys") : gw_json(q, 200, out);
	}
	if (strcmp(method, "POST") != 0)
		return api_method_not_allowed(q, method, "GET, POST");
	body = api_body_json(q, &ret);
	if (!body)
		return ret;
	json_object_foreach (body, key, v) {
		if (!str_oneof(key, "scope", "name", NULL)) {
			ret = gw_error(q, 400, "invalid_request", "unknown key '%.64s'", key);
			goto out;
		}
	}
	v = json_object_get(body, "scope");
	scope = json_is_string(v) ? scope_parse(json_string_value(v)) : SCOPE_NONE;
	if (scope == SCOPE_NONE || scope == SCOPE_ADMIN) {
		ret = gw_error(q, 400, "invalid_request",
			       "scope: must be one of owner, deploy, invoke");
		goto out;
	}
	v = json_object_get(body, "name");
	if (v) {
		if (!json_is_string(v) || json_string_length(v) > 63) {
			ret = gw_error(q, 400, "invalid_request",
				       "name: must be a string of at most 63 characters");
			goto out;
		}
		name = json_string_value(v);
	}
	out = json_pack("{s:s}", "tenant", t.name);
	r = key_create(g, t.id, scope, name, out);
	if (r < 0) {
		json_decref(out);
		ret = gw_errno(q, r, "cannot create key");
		goto out;
	}
	log_notice("key created id=%s scope=%s tenant=%s by=%s",
		   json_string_value(json_object_get(json_object_get(out, "key"), "id")),
		   scope_name(scope), t.name, q->who.key_id);
	ret = gw_json(q, 201, out);
out:
	json_decref(body);
	return ret;
}

/* SPEC §2 CGI variables a function's env may not set. */
static bool
env_reserved(const char *k)
{
	static const char *const names[] = {
		"GATEWAY_INTERFACE", "SERVER_PROTOCOL", "SERVER_SOFTWARE", "REQUEST_METHOD",
		"REQUEST_URI",       "PATH_INFO",       "SCRIPT_NAME",     "QUERY_STRING",
		"CONTENT_TYPE",      "CONTENT_LENGTH",  "REMOTE_ADDR",
	};

	if (str_startswith(k, "HTTP_") || str_startswith(k, "FAAS_") ||
	    str_startswith(k, "AWS_LAMBDA_") || str_startswith(k, "LAMBDA_") ||
	    strcmp(k, "_HANDLER") == 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(k, names[i]) == 0)
			return true;
	return false;
}

static enum MHD_Result
function_put(struct req *q, const struct store_tenant *t)
{
	struct gw *g = q->gw;
	enum MHD_Result ret;
	json_t *body, *cfg = NULL, *out = NULL, *v;
	const char *alias, *code, *ek;
	char diag[FNCONFIG_DIAG], *canon = NULL, url[200];
	unsigned status;
	int r;

	body = api_body_json(q, &ret);
	if (!body)
		return ret;
	if (fnconfig_validate(body, FNCONFIG_API, &cfg, diag, sizeof(diag)) < 0) {
		ret = gw_error(q, 400, "invalid_config", "%s", diag);
		goto out;
	}
	v = json_object_get(body, "name");
	if (v && strcmp(json_string_value(v), q->route.function) != 0) {
		ret = gw_error(q, 400, "invalid_config",
			       "name: '%s' differs from the function in the URL ('%s')",
			       json_string_value(v), q->route.function);
		goto out;
	}
	json_object_foreach (json_object_get(cfg, "env"), ek, v) {
		if (env_reserved(ek)) {
			ret = gw_error(
				q, 400, "invalid_config",
				"env: '%s' is set by faasd for every invocation and cannot be configured",
				ek);
			goto out;
		}
	}
	if (json_integer_value(json_object_get(cfg, "memory_mb")) > t->max_memory_mb) {
		ret = gw_error(q, 422, "quota_exceeded",
			       "memory_mb: %lld exceeds the tenant's limit of %lld",
			       (long long)json_integer_value(json_object_get(cfg, "memory_mb")),
			       (long long)t->max_memory_mb);
		goto out;
	}
	if (json_integer_value(json_object_get(cfg, "max_instances")) > t->max_instances) {
		ret = gw_error(q, 422, "quota_exceeded",
			       "max_instances: %lld exceeds the tenant's limit of %lld",
			       (long long)json_integer_value(json_object_get(cfg, "max_instances")),
			       (long long)t->max_instances);
		goto out;
	}
	if (strcmp(json_string_value(json_object_get(cfg, "network")), "host") == 0 &&
	    !t->allow_host_network) {
		ret = gw_error(
			q, 403, "forbidden",
			"network: 'host' is not allowed for tenant '%s'; an admin must allow it",
			t->name);
		goto out;
	}
	code = json_string_value(json_object_get(body, "code")) + 7;
	r = store_code_exists(g->store, t->id, code);
	if (r < 0) {
		ret = r == -ENOENT
			      ? gw_error(
					q, 422, "code_not_found",
					"code sha256:%s is not uploaded; PUT it to /v1/tenants/%s/code/%s first",
					code, t->name, code)
			      : gw_errno(q, r, "cannot check code");
		goto out;
	}
	alias = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "alias");
	if (!alias)
		alias = "live";
	else if (!*alias)
		alias = NULL;
	else if (!alias_name_valid(alias)) {
		ret = gw_error(
			q, 400, "invalid_name",
			"alias: '%.64s' must be a name ([a-z0-9][a-z0-9-]*) that is not all digits",
			alias);
		goto out;
	}
	canon = json_dumps(cfg, JSON_SORT_KEYS | JSON_COMPACT);
	if (!canon) {
		ret = gw_errno(q, -ENOMEM, "out of memory");
		goto out;
	}
	r = store_fn_put(g->store, t->id, q->route.function, code, canon, alias, t->max_functions,
			 &out);
	if (r == -EDQUOT) {
		ret = gw_error(q, 403, "quota_exceeded",
			       "tenant '%s' already has its maximum of %lld functions", t->name,
			       (long long)t->max_functions);
		goto out;
	}
	if (r == -EINPROGRESS) {
		ret = gw_error(
			q, 409, "deployment_in_progress",
			"alias '%s' of '%s' is being moved by a deployment; deploy without moving "
			"it (?alias=) and start a deployment, or abort the running one",
			alias, q->route.function);
		goto out;
	}
	if (r < 0) {
		log_err("deploy %s/%s: %s", t->name, q->route.function, store_errmsg(g->store));
		ret = gw_errno(q, r, "cannot store the function");
		goto out;
	}
	(void)str_printf(url, sizeof(url), "/fn/%s/%s", t->name, q->route.function);
	json_object_set_new(out, "url", json_string(url));
	if (json_is_true(json_object_get(out, "created")))
		log_notice("deployed fn=%s/%s v=%lld code=%.12s by=%s", t->name, q->route.function,
			   (long long)json_integer_value(
				   json_object_get(json_object_get(out, "version"), "number")),
			   code, q->who.key_id);
	status = json_is_true(json_object_get(out, "created")) ? 201 : 200;
	ret = gw_json(q, status, TAKE_PTR(out));
out:
	free(canon);
	json_decref(cfg);
	json_decref(body);
	return ret;
}

static enum MHD_Result
functions_endpoint(struct req *q, const char *method)
{
	struct gw *g = q->gw;
	struct store_tenant t;
	enum MHD_Result ret;
	json_t *out = NULL;
	int r;

	if (api_authorize(q, q->route.tenant, SCOPE_DEPLOY, &ret) < 0 ||
	    api_load_tenant(q, &t, &ret) < 0)
		return ret;
	switch (q->route.kind) {
	case ROUTE_FUNCTIONS:
		if (strcmp(method, "GET") != 0)
			return api_method_not_allowed(q, method, "GET");
		r = store_fn_list(g->store, t.id, &out);
		break;
	case ROUTE_FUNCTION:
		if (strcmp(method, "PUT") == 0)
			return function_put(q, &t);
		if (strcmp(method, "DELETE") == 0) {
			r = store_fn_delete(g->store, t.id, q->route.function);
			if (r == 0) {
				log_notice("function deleted fn=%s/%s by=%s", t.name,
					   q->route.function, q->who.key_id);
				out = json_pack("{s:s}", "deleted", q->route.function);
			}
			break;
		}
		if (strcmp(method, "GET") != 0)
			return api_method_not_allowed(q, method, "GET, PUT, DELETE");
		r = store_fn_get(g->store, t.id, q->route.function, &out);
		if (r == 0) {
			char url[200];

			(void)str_printf(url, sizeof(url), "/fn/%s/%s", t.name, q->route.function);
			json_object_set_new(out, "url", json_string(url));
		}
		break;
	case ROUTE_VERSIONS:
		if (strcmp(method, "GET") != 0)
			return api_method_not_allowed(q, method, "GET");
		r = store_version_list(g->store, t.id, q->route.function, &out);
		break;
	case ROUTE_VERSION:
		if (strcmp(method, "GET") != 0)
			return api_method_not_allowed(q, method, "GET");
		r = store_version_get(g->store, t.id, q->route.function, q->route.version, &out);
		if (r == -ENOENT)
			return gw_error(q, 404, "version_not_found",
					"function '%s' has no version %lld", q->route.function,
					(long long)q->route.version);
		break;
	case ROUTE_ALIASES:
		if (strcmp(method, "GET") != 0)
			return api_method_not_allowed(q, method, "GET");
		r = store_alias_list(g->store, t.id, q->route.function, &out);
		break;
	default:
		return gw_errno(q, -ENOENT, "no such endpoint");
	}
	if (r == -ENOENT)
		return gw_error(q, 404, "function_not_found", "no function '%s' in tenant '%s'",
				q->route.function, t.name);
	if (r < 0)
		return gw_errno(q, r, "store error");
	return gw_json(q, 200, out);
}

enum MHD_Result
api_dispatch(struct req *q, const char *method)
{
	struct gw *g = q->gw;
	enum MHD_Result ret;
	json_t *out;
	int r;

	switch (q->route.kind) {
	case ROUTE_WHOAMI:
		if (q->who.scope == SCOPE_NONE) {
			(void)api_authorize(q, NULL, SCOPE_INVOKE, &ret);
			return ret;
		}
		out = json_pack("{s:s, s:s}", "scope", scope_name(q->who.scope), "key_id",
				q->who.key_id);
		json_object_set_new(out, "tenant",
				    q->who.tenant_id ? json_string(q->who.tenant) : json_null());
		return gw_json(q, 200, out);
	case ROUTE_TENANTS:
		if (strcmp(method, "POST") == 0)
			return tenants_post(q);
		if (strcmp(method, "GET") != 0)
			return api_method_not_allowed(q, method, "GET, POST");
		if (api_authorize(q, NULL, SCOPE_ADMIN, &ret) < 0)
			return ret;
		r = store_tenant_list(g->store, &out);
		return r < 0 ? gw_errno(q, r, "cannot list tenants") : gw_json(q, 200, out);
	case ROUTE_TENANT:
		return tenant_endpoint(q, method);
	case ROUTE_KEYS:
	case ROUTE_KEY:
		return keys_endpoint(q, method);
	case ROUTE_FUNCTIONS:
	case ROUTE_FUNCTION:
	case ROUTE_VERSIONS:
	case ROUTE_VERSION:
	case ROUTE_ALIASES:
		return functions_endpoint(q, method);
	case ROUTE_ALIAS:
	case ROUTE_ALIAS_ROLLBACK:
		return api_alias(q, method);
	case ROUTE_DEPLOYMENTS:
	case ROUTE_DEPLOYMENT:
	case ROUTE_DEPLOYMENT_ABORT:
		return api_deployments(q, method);
	case ROUTE_METRICS: {
		struct MHD_Response *resp;
		char *text;
		size_t len;

		if (strcmp(method, "GET") != 0)
			return api_method_not_allowed(q, method, "GET");
		if (api_authorize(q, NULL, SCOPE_ADMIN, &ret) < 0)
			return ret;
		r = metrics_render(g, &text, &len);
		if (r < 0)
			return gw_errno(q, r, "cannot render metrics");
		resp = MHD_create_response_from_buffer_with_free_callback(len, text, free);
		if (!resp) {
			free(text);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
		return gw_queue(q, 200, resp);
	}
	case ROUTE_INVOCATIONS:
	case ROUTE_INVOCATION:
	case ROUTE_LOGS:
		return api_records(q, method);
	case ROUTE_ASYNC_INVOKE:
		return api_async_enqueue(q);
	case ROUTE_ASYNC_LIST:
	case ROUTE_ASYNC_ONE:
	case ROUTE_ASYNC_REDRIVE:
		return api_async_queue(q, method);
	default:
		return gw_errno(q, -ENOENT, "no such endpoint");
	}
}
