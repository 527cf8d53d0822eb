/*
 * rcache.c - the gateway's route cache: tenant -> function -> alias or
 * version -> the version(s) that serve an invocation, with their code
 * digest and config, held in memory so that an invocation of a known
 * route reads no SQLite (issue 4; ARCHITECTURE-GUIDE "through in-memory
 * caches, so the hot path reads no disk").
 *
 * A fixed table of slots indexed by a hash of "tenant/function:qualifier";
 * a collision replaces the older entry, so memory stays bounded whatever
 * names clients send.  Misses (-ENOENT) are cached too: a flood of calls
 * to a function that does not exist costs no query either.
 *
 * INVARIANT: an entry is trusted only while store_generation() equals the
 * generation read before the entry was filled; every change to tenants,
 * functions, versions or aliases moves it, so a change applies from the
 * next invocation.  Runs in the gateway's HTTP threads; one mutex guards
 * the table, never held across a store call.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rcache.h"
#include "util.h"

#define RC_KEY_MAX 224

struct rc_cand {
	int64_t version;
	int64_t pct; /* candidates after the first; the first gets the rest */
	char code_sha256[65];
	json_t *config; /* one reference held by the entry */
};

struct rc_entry {
	bool used;
	uint64_t generation;
	char key[RC_KEY_MAX];
	int result; /* 0 or -ENOENT */
	struct store_tenant tenant;
	unsigned ncand;
	struct rc_cand *cand; /* [0] the alias's main version, then weighted */
};

struct rcache {
	pthread_mutex_t lock;
	size_t nslots;
	uint64_t hits, misses;
	struct rc_entry slots[];
};

int
rcache_new(size_t nslots, struct rcache **out)
{
	struct rcache *c;

	if (nslots == 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c) + nslots * sizeof(c->slots[0]));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->nslots = nslots;
	*out = c;
	return 0;
}

static void
entry_clear(struct rc_entry *e)
{
	for (unsigned i = 0; i < e->ncand; i++)
		json_decref(e->cand[i].config);
	free(e->cand);
	memset(e, 0, sizeof(*e));
}

void
rcache_free(struct rcache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nslots; i++)
		entry_clear(&c->slots[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void
rcache_stats(struct rcache *c, uint64_t *hits, uint64_t *misses)
{
	pthread_mutex_lock(&c->lock);
	*hits = c->hits;
	*misses = c->misses;
	pthread_mutex_unlock(&c->lock);
}

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* Remember the alias's weights while store_route_resolve keeps its main
 * version. */
struct capture {
	json_t *weights;
};

static int64_t
capture_weights(const char *weights, int64_t main_version, void *ud)
{
	struct capture *cap = ud;

	cap->weights = json_loads(weights, 0, NULL);
	return main_version;
}

static void
cand_fill(struct rc_cand *c, const struct store_route *r, int64_t pct)
{
	c->version = r->version;
	c->pct = pct;
	c->config = json_incref(r->config);
	/* Both hold a 64-digit hex digest: it always fits. */
	(void)str_copy(c->code_sha256, sizeof(c->code_sha256), r->code_sha256);
}

/* Fill e from the store.  0, or -errno for errors other than "no such
 * route" (which is a result, cached as e->result = -ENOENT). */
static int
entry_fill(struct rc_entry *e, struct store *s, const char *tenant, const char *fn,
	   const char *alias, int64_t version)
{
	struct capture cap = { NULL };
	struct store_route main = { 0 };
	const char *k;
	json_t *v;
	int r;

	r = store_tenant_get(s, tenant, &e->tenant);
	if (r == 0)
		r = store_route_resolve(s, e->tenant.id, fn, alias, version, capture_weights, &cap,
					&main);
	if (r == -ENOENT) {
		e->result = -ENOENT;
		json_decref(cap.weights);
		return 0;
	}
	if (r < 0) {
		json_decref(cap.weights);
		return r;
	}
	/* Weights are whole percents summing to at most 100: at most 100
	 * weighted versions. */
	e->cand = calloc(1 + json_object_size(cap.weights), sizeof(e->cand[0]));
	if (!e->cand) {
		json_decref(main.config);
		json_decref(cap.weights);
		return -ENOMEM;
	}
	cand_fill(&e->cand[e->ncand++], &main, 0);
	json_decref(main.config);
	json_object_foreach (cap.weights, k, v) {
		struct store_route w = { 0 };
		uint64_t n;

		if (parse_u64(k, 1, INT64_MAX, &n) < 0) {
			r = -EINVAL; /* the store validated it: corrupt */
			break;
		}
		r = store_route_resolve(s, e->tenant.id, fn, NULL, (int64_t)n, NULL, NULL, &w);
		if (r < 0)
			break;
		cand_fill(&e->cand[e->ncand++], &w, json_integer_value(v));
		json_decref(w.config);
	}
	json_decref(cap.weights);
	return r;
}

unsigned
rcache_bucket(const char *route_key)
{
	uint64_t h = fnv1a(route_key);

	/* FNV's low bits are weak for short keys: mix before the modulo. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (unsigned)(h % 100);
}

/* Choose among the candidates by weight: a bucket 0..99 (from the route
 * key, else at random); each weighted version takes its percent of
 * buckets in order, the main version the rest.  A key's bucket never
 * changes, so it keeps its version while the weights do, and a growing
 * canary only adds buckets to the new version. */
static const struct rc_cand *
entry_pick(const struct rc_entry *e, const char *route_key)
{
	uint32_t roll = 0;
	int64_t acc = 0;

	if (e->ncand == 1)
		return &e->cand[0];
	if (route_key)
		roll = rcache_bucket(route_key);
	else if (random_bytes(&roll, sizeof(roll)) < 0)
		roll = 0;
	roll %= 100;
	for (unsigned i = 1; i < e->ncand; i++) {
		acc += e->cand[i].pct;
		if ((int64_t)roll < acc)
			return &e->cand[i];
	}
	return &e->cand[0];
}

static int
entry_answer(const struct rc_entry *e, const char *route_key, struct store_tenant *t,
	     struct store_route *out)
{
	const struct rc_cand *c;

	if (e->result < 0)
		return e->result;
	c = entry_pick(e, route_key);
	*t = e->tenant;
	out->version = c->version;
	(void)str_copy(out->code_sha256, sizeof(out->code_sha256), c->code_sha256);
	out->config = json_incref(c->config);
	return 0;
}

int
rcache_resolve(struct rcache *c, struct store *s, const char *tenant, const char *fn,
	       const char *alias, int64_t version, const char *route_key, struct store_tenant *t,
	       struct store_route *out)
{
	char key[RC_KEY_MAX];
	struct rc_entry *slot, fresh = { 0 };
	uint64_t gen;
	int r;

	memset(out, 0, sizeof(*out));
	if (str_printf(key, sizeof(key), "%s/%s:%s#%lld", tenant, fn, alias ? alias : "",
		       (long long)version) < 0)
		return -ENAMETOOLONG;
	slot = &c->slots[fnv1a(key) % c->nslots];
	gen = store_generation(s);
	pthread_mutex_lock(&c->lock);
	if (slot->used && slot->generation == gen && strcmp(slot->key, key) == 0) {
		c->hits++;
		r = entry_answer(slot, route_key, t, out);
		pthread_mutex_unlock(&c->lock);
		return r;
	}
	c->misses++;
	pthread_mutex_unlock(&c->lock);

	/* Fill outside the lock; the generation was read before the queries. */
	r = entry_fill(&fresh, s, tenant, fn, alias, version);
	if (r == 0)
		r = entry_answer(&fresh, route_key, t, out);
	if (r < 0 && r != -ENOENT) {
		entry_clear(&fresh);
		return r;
	}
	fresh.used = true;
	fresh.generation = gen;
	(void)str_copy(fresh.key, sizeof(fresh.key), key);
	pthread_mutex_lock(&c->lock);
	entry_clear(slot);
	*slot = fresh;
	pthread_mutex_unlock(&c->lock);
	return r;
}
