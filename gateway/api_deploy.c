/*
 * api_deploy.c - the alias and deployment endpoints of SPEC §5/§6:
 *   GET/PUT/DELETE …/functions/{f}/aliases/{a}, POST …/aliases/{a}/rollback,
 *   POST/GET …/functions/{f}/deployments, GET …/deployments/{id},
 *   POST …/deployments/{id}/abort.
 * Runs on the gateway's work threads (it calls SQLite).  Checks the shape
 * of what clients send (weights, strategies, bounds) and leaves the
 * existence checks to the store, which makes them in the same transaction
 * as the write.  Needs a 'deploy' (or stronger) token of the tenant.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "log.h"
#include "names.h"
#include "strategy.h"
#include "util.h"

#define DEPLOY_LIST_DEFAULT 20
#define DEPLOY_LIST_MAX     1000

static enum MHD_Result
fn_missing(struct req *q)
{
	return gw_error(q, 404, "function_not_found", "no function '%s' in tenant '%s'",
			q->route.function, q->route.tenant);
}

static enum MHD_Result
alias_busy(struct req *q, const char *alias)
{
	return gw_error(q, 409, "deployment_in_progress",
			"alias '%s' of '%s' is being moved by a deployment; wait for it, or "
			"abort it (faasctl deployments %s; faasctl abort %s ID)",
			alias, q->route.function, q->route.function, q->route.function);
}

/*
 * Check weights (an object of "N": whole percent) against the alias's
 * main version, and write their canonical text (sorted, zero weights
 * left out) into out.  0, or -EINVAL with diag.
 */
static int
weights_canon(json_t *weights, int64_t main_version, char *out, size_t n, char *diag, size_t dn)
{
	json_t *canon = json_object(), *v;
	const char *k;
	int64_t sum = 0;
	char *text;
	int r = 0;

	if (weights && !json_is_object(weights)) {
		(void)str_printf(
			diag, dn,
			"weights: must be an object of version: percent, e.g. {\"4\": 10}");
		r = -EINVAL;
		goto out;
	}
	json_object_foreach (weights, k, v) {
		uint64_t ver;
		char key[24];

		if (parse_u64(k, 1, INT64_MAX, &ver) < 0) {
			(void)str_printf(diag, dn, "weights: '%.32s' is not a version number", k);
			r = -EINVAL;
			goto out;
		}
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 100) {
			(void)str_printf(diag, dn,
					 "weights: version %s: weight must be a whole percent from "
					 "0 to 100",
					 k);
			r = -EINVAL;
			goto out;
		}
		if ((int64_t)ver == main_version) {
			(void)str_printf(diag, dn,
					 "weights: version %s is the alias's own version; it gets "
					 "what the other weights leave",
					 k);
			r = -EINVAL;
			goto out;
		}
		sum += json_integer_value(v);
		(void)str_printf(key, sizeof(key), "%llu", (unsigned long long)ver);
		if (json_object_get(canon, key)) {
			(void)str_printf(diag, dn, "weights: version %s is given twice", key);
			r = -EINVAL;
			goto out;
		}
		if (json_integer_value(v) > 0)
			json_object_set(canon, key, v);
	}
	if (sum > 100) {
		(void)str_printf(diag, dn,
				 "weights: they sum to %lld%%; at most 100%% can be split off the "
				 "alias's version",
				 (long long)sum);
		r = -EINVAL;
		goto out;
	}
	text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text || str_copy(out, n, text) < 0)
		r = -ENOMEM;
	free(text);
out:
	json_decref(canon);
	return r;
}

static enum MHD_Result
alias_put(struct req *q, const struct store_tenant *t)
{
	struct gw *g = q->gw;
	enum MHD_Result ret;
	json_t *body, *v, *out = NULL;
	const char *k;
	char diag[256], weights[4096];
	int64_t missing = 0;
	int r;

	body = api_body_json(q, &ret);
	if (!body)
		return ret;
	json_object_foreach (body, k, v) {
		if (!str_oneof(k, "version", "weights", NULL)) {
			ret = gw_error(q, 400, "invalid_request",
				       "unknown key '%.64s' (an alias takes version and weights)",
				       k);
			goto out;
		}
	}
	v = json_object_get(body, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		ret = gw_error(q, 400, "invalid_request",
			       "version: required, a version number (1 or more)");
		goto out;
	}
	if (weights_canon(json_object_get(body, "weights"), json_integer_value(v), weights,
			  sizeof(weights), diag, sizeof(diag)) < 0) {
		ret = gw_error(q, 400, "invalid_weights", "%s", diag);
		goto out;
	}
	r = store_alias_put(g->store, t->id, q->route.function, q->route.sub, json_integer_value(v),
			    weights, &missing, &out);
	if (r == -ENOENT)
		ret = fn_missing(q);
	else if (r == -ENXIO)
		ret = gw_error(q, 422, "version_not_found", "function '%s' has no version %lld",
			       q->route.function, (long long)missing);
	else if (r == -EINPROGRESS)
		ret = alias_busy(q, q->route.sub);
	else if (r < 0)
		ret = gw_errno(q, r, "cannot store the alias");
	else {
		log_notice("alias set fn=%s/%s alias=%s v=%lld weights=%s by=%s", t->name,
			   q->route.function, q->route.sub, (long long)json_integer_value(v),
			   weights, q->who.key_id);
		ret = gw_json(q, r == 1 ? 201 : 200, json_pack("{s:o}", "alias", out));
	}
out:
	json_decref(body);
	return ret;
}

enum MHD_Result
api_alias(struct req *q, const char *method)
{
	struct gw *g = q->gw;
	struct store_tenant t;
	enum MHD_Result ret;
	const char *a = q->route.sub;
	json_t *out = NULL;
	int r;

	if (api_authorize(q, q->route.tenant, SCOPE_DEPLOY, &ret) < 0 ||
	    api_load_tenant(q, &t, &ret) < 0)
		return ret;
	if (q->route.kind == ROUTE_ALIAS_ROLLBACK) {
		if (strcmp(method, "POST") != 0)
			return api_method_not_allowed(q, method, "POST");
		r = store_alias_rollback(g->store, t.id, q->route.function, a, q->who.key_id, &out);
		if (r == -ENODATA)
			return gw_error(q, 409, "no_previous_version",
					"alias '%s' has never pointed at another version", a);
		if (r == 0) {
			deploy_kick(g);
			log_notice("alias rolled back fn=%s/%s alias=%s v=%lld by=%s", t.name,
				   q->route.function, a,
				   (long long)json_integer_value(json_object_get(out, "version")),
				   q->who.key_id);
		}
	} else if (strcmp(method, "GET") == 0)
		r = store_alias_get(g->store, t.id, q->route.function, a, &out);
	else if (strcmp(method, "PUT") == 0)
		return alias_put(q, &t);
	else if (strcmp(method, "DELETE") == 0) {
		r = store_alias_delete(g->store, t.id, q->route.function, a);
		if (r == 0) {
			log_notice("alias deleted fn=%s/%s alias=%s by=%s", t.name,
				   q->route.function, a, q->who.key_id);
			return gw_json(q, 200, json_pack("{s:s}", "deleted", a));
		}
	} else
		return api_method_not_allowed(q, method, "GET, PUT, DELETE");
	if (r == -ENOENT)
		return fn_missing(q);
	if (r == -ESRCH)
		return gw_error(q, 404, "alias_not_found", "function '%s' has no alias '%s'",
				q->route.function, a);
	if (r == -EINPROGRESS)
		return alias_busy(q, a);
	if (r < 0)
		return gw_errno(q, r, "store error");
	return gw_json(q, 200, json_pack("{s:o}", "alias", out));
}

/* ---- deployments ---- */

/* Add what follows from the strategy and the engine's live figures. */
static void
decorate(struct gw *g, json_t *d)
{
	const char *state = json_string_value(json_object_get(d, "state"));
	struct strategy st;
	char diag[128];
	unsigned weight = 0;
	json_t *live;

	if (strategy_parse(json_string_value(json_object_get(d, "strategy")), &st, diag,
			   sizeof(diag)) < 0)
		return;
	if (strcmp(state, "succeeded") == 0)
		weight = 100;
	else if (strcmp(state, "in_progress") == 0)
		weight = strategy_weight(&st,
					 (unsigned)json_integer_value(json_object_get(d, "step")));
	json_object_set_new(d, "weight", json_integer(weight));
	json_object_set_new(d, "steps_total", json_integer(strategy_steps(&st)));
	json_object_set_new(d, "step_duration_ms", json_integer((json_int_t)st.step_ms));
	live = strcmp(state, "in_progress") == 0
		       ? deploy_live(g, json_integer_value(json_object_get(d, "id")))
		       : NULL;
	json_object_set_new(d, "current", live ? live : json_null());
}

static int
number_field(json_t *body, const char *key, double min, double max, double *out, char *diag,
	     size_t n)
{
	json_t *v = json_object_get(body, key);

	if (!v)
		return 0;
	if (!json_is_number(v) || json_number_value(v) < min || json_number_value(v) > max ||
	    isnan(json_number_value(v))) {
		(void)str_printf(diag, n, "%s: must be a number from %g to %g", key, min, max);
		return -EINVAL;
	}
	*out = json_number_value(v);
	return 0;
}

static int
whole_field(json_t *body, const char *key, int64_t min, int64_t max, int64_t *out, char *diag,
	    size_t n)
{
	json_t *v = json_object_get(body, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		(void)str_printf(diag, n, "%s: must be a whole number from %lld to %lld", key,
				 (long long)min, (long long)max);
		return -EINVAL;
	}
	*out = json_integer_value(v);
	return 0;
}

static enum MHD_Result
deploy_post(struct req *q, const struct store_tenant *t)
{
	struct gw *g = q->gw;
	struct store_deploy_new d = { .alias = "live",
				      .max_error_rate = 5,
				      .min_invocations = 20,
				      .created_by = q->who.key_id };
	struct strategy st = { .kind = STRATEGY_ALL_AT_ONCE };
	enum MHD_Result ret;
	json_t *body, *v, *out = NULL;
	const char *k;
	char diag[256], canon[STRATEGY_TEXT_MAX];
	int r;

	body = api_body_json(q, &ret);
	if (!body)
		return ret;
	json_object_foreach (body, k, v) {
		if (!str_oneof(k, "alias", "version", "strategy", "max_error_rate",
			       "min_invocations", "max_p95_ms", NULL)) {
			ret = gw_error(q, 400, "invalid_request", "unknown key '%.64s'", k);
			goto out;
		}
	}
	v = json_object_get(body, "alias");
	if (v) {
		if (!json_is_string(v) || !alias_name_valid(json_string_value(v))) {
			ret = gw_error(
				q, 400, "invalid_name",
				"alias: must be a name ([a-z0-9][a-z0-9-]*, at most 63) that "
				"is not all digits");
			goto out;
		}
		d.alias = json_string_value(v);
	}
	v = json_object_get(body, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		ret = gw_error(q, 400, "invalid_request",
			       "version: required, the version number to deploy");
		goto out;
	}
	d.to_version = json_integer_value(v);
	v = json_object_get(body, "strategy");
	if (v && (!json_is_string(v) ||
		  strategy_parse(json_string_value(v), &st, diag, sizeof(diag)) < 0)) {
		if (!json_is_string(v))
			(void)str_copy(diag, sizeof(diag), "strategy: must be a string");
		ret = gw_error(q, 400, "invalid_strategy", "%s", diag);
		goto out;
	}
	if (number_field(body, "max_error_rate", 0, 100, &d.max_error_rate, diag, sizeof(diag)) <
		    0 ||
	    whole_field(body, "min_invocations", 1, 1000000, &d.min_invocations, diag,
			sizeof(diag)) < 0 ||
	    whole_field(body, "max_p95_ms", 1, 900000, &d.max_p95_ms, diag, sizeof(diag)) < 0) {
		ret = gw_error(q, 400, "invalid_request", "%s", diag);
		goto out;
	}
	strategy_format(&st, canon, sizeof(canon));
	d.strategy = canon;
	d.first_weight = strategy_weight(&st, 1);
	r = store_deploy_create(g->store, t->id, q->route.function, &d, &out);
	if (r == -ENOENT)
		ret = fn_missing(q);
	else if (r == -ENXIO)
		ret = gw_error(q, 422, "version_not_found", "function '%s' has no version %lld",
			       q->route.function, (long long)d.to_version);
	else if (r == -EINPROGRESS)
		ret = alias_busy(q, d.alias);
	else if (r == -EALREADY)
		ret = gw_error(q, 409, "already_deployed",
			       "alias '%s' already serves version %lld alone", d.alias,
			       (long long)d.to_version);
	else if (r == -ENOTEMPTY)
		ret = gw_error(q, 409, "alias_weighted",
			       "alias '%s' splits traffic by weights; point it at one version "
			       "before a deployment moves it (faasctl alias set %s %s VERSION)",
			       d.alias, q->route.function, d.alias);
	else if (r < 0)
		ret = gw_errno(q, r, "cannot start the deployment");
	else {
		deploy_kick(g);
		log_notice("deployment %lld started fn=%s/%s alias=%s v=%lld strategy=%s by=%s",
			   (long long)json_integer_value(json_object_get(out, "id")), t->name,
			   q->route.function, d.alias, (long long)d.to_version, canon,
			   q->who.key_id);
		decorate(g, out);
		ret = gw_json(q, 201, json_pack("{s:o}", "deployment", out));
	}
out:
	json_decref(body);
	return ret;
}

enum MHD_Result
api_deployments(struct req *q, const char *method)
{
	struct gw *g = q->gw;
	struct store_tenant t;
	enum MHD_Result ret;
	json_t *out = NULL, *e;
	size_t i;
	int r;

	if (api_authorize(q, q->route.tenant, SCOPE_DEPLOY, &ret) < 0 ||
	    api_load_tenant(q, &t, &ret) < 0)
		return ret;
	switch (q->route.kind) {
	case ROUTE_DEPLOYMENTS:
		if (strcmp(method, "POST") == 0)
			return deploy_post(q, &t);
		if (strcmp(method, "GET") != 0)
			return api_method_not_allowed(q, method, "GET, POST");
		{
			const char *lim = MHD_lookup_connection_value(
				q->conn, MHD_GET_ARGUMENT_KIND, "limit");
			uint64_t limit = DEPLOY_LIST_DEFAULT;

			if (lim && parse_u64(lim, 1, DEPLOY_LIST_MAX, &limit) < 0)
				return gw_error(q, 400, "invalid_request",
						"limit: must be a whole number from 1 to %d",
						DEPLOY_LIST_MAX);
			r = store_deploy_list(g->store, t.id, q->route.function, (unsigned)limit,
					      &out);
		}
		if (r == 0)
			json_array_foreach (json_object_get(out, "deployments"), i, e)
				decorate(g, e);
		break;
	case ROUTE_DEPLOYMENT:
		if (strcmp(method, "GET") != 0)
			return api_method_not_allowed(q, method, "GET");
		r = store_deploy_get(g->store, t.id, q->route.function, q->route.id, &out);
		if (r == 0) {
			decorate(g, out);
			out = json_pack("{s:o}", "deployment", out);
		}
		break;
	default: /* ROUTE_DEPLOYMENT_ABORT */
		if (strcmp(method, "POST") != 0)
			return api_method_not_allowed(q, method, "POST");
		{
			char reason[96];

			(void)str_printf(reason, sizeof(reason), "aborted by %s", q->who.key_id);
			r = store_deploy_end(g->store, t.id, q->route.function, q->route.id,
					     "aborted", reason, NULL, &out);
		}
		if (r == -EALREADY) {
			json_t *d = NULL;

			(void)store_deploy_get(g->store, t.id, q->route.function, q->route.id, &d);
			ret = gw_error(q, 409, "not_in_progress",
				       "deployment %lld has already ended (%s)",
				       (long long)q->route.id,
				       d ? json_string_value(json_object_get(d, "state")) : "?");
			json_decref(d);
			return ret;
		}
		if (r == 0) {
			deploy_kick(g);
			log_notice("deployment %lld aborted fn=%s/%s by=%s", (long long)q->route.id,
				   t.name, q->route.function, q->who.key_id);
			decorate(g, out);
			out = json_pack("{s:o}", "deployment", out);
		}
		break;
	}
	if (r == -ENOENT)
		return fn_missing(q);
	if (r == -ESRCH)
		return gw_error(q, 404, "deployment_not_found",
				"function '%s' has no deployment %lld", q->route.function,
				(long long)q->route.id);
	if (r < 0)
		return gw_errno(q, r, "store error");
	return gw_json(q, 200, out);
}
