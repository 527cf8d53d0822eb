/*
 * deploy.c - the deployment engine (SPEC §6): a thread of the gateway that
 * moves aliases step by step and judges each new version from the
 * outcomes of its invocations, rolling back at once when it fails.
 *
 * Invocations report their outcome here (deploy_observe, from
 * invoke_report) into per-deployment counters of the current step: count,
 * errors (HTTP 5xx, which covers function errors, timeouts and OOM kills)
 * and a latency histogram for the p95.  While no deployment is in
 * progress that costs one atomic load.  Every 100 ms the engine looks at
 * each deployment: once min_invocations are in and the error rate or the
 * p95 crosses its bound, it rolls back; when the step's time is up, it
 * enters the next step (or points the alias at the new version and
 * succeeds).  About once a second it checkpoints the step's time and
 * counts into the store, so a restart (even kill -9) resumes the step with
 * the time already spent; time while faasd was down is not counted, since
 * nothing was judged then.
 *
 * INVARIANT: the engine holds its own lock only around its memory, never
 * across a store call (the store's lock may be taken first, then this
 * one, never the other way).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "log.h"
#include "strategy.h"
#include "util.h"

#define DEP_TICK_MS     100
#define DEP_CKPT_US     1000000ull
#define DEP_HIST_SUB    16 /* buckets per power of two: ~6% wide */
#define DEP_HIST_LINEAR 16
#define DEP_HIST_N      512

struct dwatch {
	int64_t id, tenant_id, from, to;
	char tenant[64], function[64], alias[64];
	struct strategy strat;
	double max_error_rate;
	int64_t min_invocations, max_p95_ms;
	unsigned step;
	uint64_t base_ms;  /* step time spent before this count started */
	uint64_t start_us; /* monotonic start of this count */
	uint64_t ckpt_us;  /* last checkpoint */
	uint64_t n, errors;
	uint32_t hist[DEP_HIST_N];
	bool seen; /* reload mark */
};

struct deployer {
	pthread_mutex_t lock; /* watches and their counters */
	pthread_cond_t cond;
	struct dwatch **w;
	unsigned n, cap;
	atomic_uint active; /* n, readable without the lock */
	bool kicked;
	uint64_t gen; /* store generation of the last reload */
	pthread_t thread;
};

/* ---- latency histogram: exact below 16 µs, then 16 buckets per
 * power of two ---- */

static unsigned
hist_index(uint64_t us)
{
	unsigned oct;

	if (us < DEP_HIST_LINEAR)
		return (unsigned)us;
	oct = 63u - (unsigned)__builtin_clzll(us); /* >= 4 */
	us >>= oct - 4;
	return MIN(DEP_HIST_LINEAR + (oct - 4) * DEP_HIST_SUB + (unsigned)(us & 15),
		   DEP_HIST_N - 1u);
}

/* The middle of bucket i, in µs. */
static double
hist_value(unsigned i)
{
	unsigned oct, sub;

	if (i < DEP_HIST_LINEAR)
		return i;
	oct = (i - DEP_HIST_LINEAR) / DEP_HIST_SUB + 4;
	sub = (i - DEP_HIST_LINEAR) % DEP_HIST_SUB;
	return ((double)(16 + sub) + 0.5) * (double)(1ull << (oct - 4));
}

static double
hist_p95_ms(const struct dwatch *w)
{
	uint64_t need = (w->n * 95 + 99) / 100, acc = 0;

	if (!w->n)
		return 0;
	for (unsigned i = 0; i < DEP_HIST_N; i++) {
		acc += w->hist[i];
		if (acc >= need)
			return hist_value(i) / 1000.0;
	}
	return hist_value(DEP_HIST_N - 1) / 1000.0;
}

static char *
hist_text(const struct dwatch *w)
{
	json_t *a = json_array();
	char *t;

	for (unsigned i = 0; i < DEP_HIST_N; i++)
		if (w->hist[i])
			json_array_append_new(
				a, json_pack("[I, I]", (json_int_t)i, (json_int_t)w->hist[i]));
	t = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return t;
}

static void
hist_load(struct dwatch *w, const char *text)
{
	json_t *a = json_loads(text, 0, NULL), *e;
	size_t i;

	json_array_foreach (a, i, e) {
		json_int_t b = json_integer_value(json_array_get(e, 0)),
			   c = json_integer_value(json_array_get(e, 1));

		if (b >= 0 && b < DEP_HIST_N && c > 0 && c <= UINT32_MAX)
			w->hist[b] = (uint32_t)c;
	}
	json_decref(a);
}

/* ---- observing invocations ---- */

void
deploy_observe(struct gw *g, const char *tenant, const char *fn, int64_t version, unsigned http,
	       const char *status, uint64_t dur_us)
{
	struct deployer *d = g->deploy;

	if (!d || atomic_load_explicit(&d->active, memory_order_relaxed) == 0)
		return;
	if (strcmp(status, "throttled") == 0)
		return; /* it never ran on the version */
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->n; i++) {
		struct dwatch *w = d->w[i];

		if (w->to != version || strcmp(w->function, fn) != 0 ||
		    strcmp(w->tenant, tenant) != 0)
			continue;
		w->n++;
		if (http >= 500 || !str_oneof(status, "ok", NULL))
			w->errors++;
		w->hist[hist_index(dur_us)]++;
	}
	pthread_mutex_unlock(&d->lock);
}

/* ---- figures ---- */

static uint64_t
watch_elapsed_ms(const struct dwatch *w, uint64_t now_us)
{
	return w->base_ms + (now_us - w->start_us) / 1000;
}

static double
watch_rate(const struct dwatch *w)
{
	return w->n ? 100.0 * (double)w->errors / (double)w->n : 0;
}

static json_t *
watch_figures(const struct dwatch *w, uint64_t now_us)
{
	double p95 = hist_p95_ms(w);

	return json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:I}", "step", (json_int_t)w->step,
			 "weight", (json_int_t)strategy_weight(&w->strat, w->step), "invocations",
			 (json_int_t)w->n, "errors", (json_int_t)w->errors, "error_rate",
			 round(watch_rate(w) * 100) / 100, "p95_ms", round(p95 * 100) / 100,
			 "elapsed_ms", (json_int_t)watch_elapsed_ms(w, now_us));
}

json_t *
deploy_live(struct gw *g, int64_t id)
{
	struct deployer *d = g->deploy;
	json_t *o = NULL;

	if (!d)
		return NULL;
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->n; i++)
		if (d->w[i]->id == id)
			o = watch_figures(d->w[i], now_mono_us());
	pthread_mutex_unlock(&d->lock);
	return o;
}

void
deploy_kick(struct gw *g)
{
	struct deployer *d = g->deploy;

	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->kicked = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/* ---- the engine ---- */

/* Reload: collect the store's running deployments, then merge them into
 * the watches (keeping the counters of ones already watched). */
struct rows {
	struct dwatch **w;
	unsigned n, cap;
	int err;
};

static int
collect(const struct store_deploy_run *r, void *ud)
{
	struct rows *rows = ud;
	struct dwatch *w;
	char diag[256];

	if (rows->n == rows->cap) {
		unsigned cap = rows->cap ? rows->cap * 2 : 8;
		struct dwatch **nw = realloc(rows->w, cap * sizeof(struct dwatch *));

		if (!nw)
			return rows->err = -ENOMEM;
		rows->w = nw;
		rows->cap = cap;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return rows->err = -ENOMEM;
	if (strategy_parse(r->strategy, &w->strat, diag, sizeof(diag)) < 0) {
		log_err("deployment %lld has a strategy this faasd cannot read (%s): %s",
			(long long)r->id, r->strategy, diag);
		free(w);
		return 0;
	}
	w->id = r->id;
	w->tenant_id = r->tenant_id;
	w->from = r->from_version;
	w->to = r->to_version;
	(void)str_copy(w->tenant, sizeof(w->tenant), r->tenant);
	(void)str_copy(w->function, sizeof(w->function), r->function);
	(void)str_copy(w->alias, sizeof(w->alias), r->alias);
	w->max_error_rate = r->max_error_rate;
	w->min_invocations = r->min_invocations;
	w->max_p95_ms = r->max_p95_ms;
	w->step = r->step ? r->step : 1;
	w->base_ms = r->step_elapsed_ms > 0 ? (uint64_t)r->step_elapsed_ms : 0;
	w->n = r->step_invocations > 0 ? (uint64_t)r->step_invocations : 0;
	w->errors = r->step_errors > 0 ? (uint64_t)MIN(r->step_errors, r->step_invocations) : 0;
	hist_load(w, r->step_latency);
	rows->w[rows->n++] = w;
	return 0;
}

static void
reload(struct gw *g, struct deployer *d)
{
	struct rows rows = { 0 };
	uint64_t gen = store_generation(g->store), now = now_mono_us();
	int r;

	r = store_deploy_running(g->store, collect, &rows);
	if (r < 0 || rows.err < 0) {
		log_err("cannot load deployments in progress: %s (retrying)",
			r < 0 ? store_errmsg(g->store) : strerror(-rows.err));
		for (unsigned i = 0; i < rows.n; i++)
			free(rows.w[i]);
		free(rows.w);
		return;
	}
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < rows.n; i++) {
		struct dwatch *nw = rows.w[i];
		bool known = false;

		for (unsigned j = 0; j < d->n && !known; j++)
			if (d->w[j]->id == nw->id && d->w[j]->step == nw->step) {
				d->w[j]->seen = true;
				known = true;
			}
		if (known) {
			free(nw);
			rows.w[i] = NULL;
			continue;
		}
		nw->start_us = now;
		nw->ckpt_us = now;
		nw->seen = true;
		if (nw->base_ms || nw->n)
			log_notice("deployment %lld of %s/%s alias %s resumed at step %u "
				   "(%llu ms spent, %llu invocations seen)",
				   (long long)nw->id, nw->tenant, nw->function, nw->alias, nw->step,
				   (unsigned long long)nw->base_ms, (unsigned long long)nw->n);
	}
	/* Keep the seen, drop the gone (ended by the API, or deleted). */
	{
		unsigned k = 0;

		for (unsigned j = 0; j < d->n; j++) {
			if (d->w[j]->seen) {
				d->w[j]->seen = false;
				d->w[k++] = d->w[j];
			} else
				free(d->w[j]);
		}
		d->n = k;
	}
	for (unsigned i = 0; i < rows.n; i++) {
		struct dwatch *nw = rows.w[i];

		if (!nw)
			continue;
		if (d->n == d->cap) {
			unsigned cap = d->cap ? d->cap * 2 : 8;
			struct dwatch **grown = realloc(d->w, cap * sizeof(struct dwatch *));

			if (!grown) {
				free(nw);
				continue; /* picked up by the next reload */
			}
			d->w = grown;
			d->cap = cap;
		}
		nw->seen = false;
		d->w[d->n++] = nw;
	}
	atomic_store(&d->active, d->n);
	d->gen = gen;
	pthread_mutex_unlock(&d->lock);
	free(rows.w);
}

/* What to do with one deployment now; filled under the lock, acted on
 * without it. */
enum dverdict { DV_WAIT, DV_CHECKPOINT, DV_ROLLBACK, DV_ADVANCE };

struct dact {
	enum dverdict v;
	int64_t id, tenant_id;
	char tenant[64], function[64], alias[64];
	unsigned step, next_weight;
	uint64_t elapsed_ms, n, errors;
	char reason[256];
	char *figures, *hist;
};

static enum dverdict
judge(struct dwatch *w, uint64_t now, struct dact *a)
{
	double rate = watch_rate(w), p95 = hist_p95_ms(w);
	uint64_t elapsed = watch_elapsed_ms(w, now);

	a->id = w->id;
	a->tenant_id = w->tenant_id;
	(void)str_copy(a->tenant, sizeof(a->tenant), w->tenant);
	(void)str_copy(a->function, sizeof(a->function), w->function);
	(void)str_copy(a->alias, sizeof(a->alias), w->alias);
	a->step = w->step;
	a->elapsed_ms = elapsed;
	a->n = w->n;
	a->errors = w->errors;
	if (w->n >= (uint64_t)w->min_invocations && w->n > 0) {
		if (rate > w->max_error_rate) {
			(void)str_printf(a->reason, sizeof(a->reason),
					 "error rate %.1f%% (%llu of %llu invocations) in step %u "
					 "exceeded max_error_rate %g%%",
					 rate, (unsigned long long)w->errors,
					 (unsigned long long)w->n, w->step, w->max_error_rate);
			return DV_ROLLBACK;
		}
		if (w->max_p95_ms > 0 && p95 > (double)w->max_p95_ms) {
			(void)str_printf(a->reason, sizeof(a->reason),
					 "p95 latency %.1f ms (%llu invocations) in step %u "
					 "exceeded max_p95_ms %lld",
					 p95, (unsigned long long)w->n, w->step,
					 (long long)w->max_p95_ms);
			return DV_ROLLBACK;
		}
	}
	if (elapsed >= w->strat.step_ms) {
		a->next_weight = strategy_weight(&w->strat, w->step + 1);
		return DV_ADVANCE;
	}
	if (now - w->ckpt_us >= DEP_CKPT_US)
		return DV_CHECKPOINT;
	return DV_WAIT;
}

static void
drop_watch(struct deployer *d, int64_t id)
{
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->n; i++)
		if (d->w[i]->id == id) {
			free(d->w[i]);
			d->w[i] = d->w[--d->n];
			break;
		}
	atomic_store(&d->active, d->n);
	pthread_mutex_unlock(&d->lock);
}

/* After a step change in the store: the next step starts counting now. */
static void
step_entered(struct deployer *d, int64_t id, unsigned step, uint64_t now)
{
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->n; i++) {
		struct dwatch *w = d->w[i];

		if (w->id != id)
			continue;
		w->step = step;
		w->base_ms = 0;
		w->start_us = now;
		w->ckpt_us = now;
		w->n = w->errors = 0;
		memset(w->hist, 0, sizeof(w->hist));
	}
	pthread_mutex_unlock(&d->lock);
}

static void
act(struct gw *g, struct deployer *d, struct dact *a, uint64_t now)
{
	int r = 0;

	switch (a->v) {
	case DV_WAIT:
		return;
	case DV_CHECKPOINT:
		r = store_deploy_checkpoint(g->store, a->id, a->step, (int64_t)a->elapsed_ms,
					    (int64_t)a->n, (int64_t)a->errors,
					    a->hist ? a->hist : "[]");
		break;
	case DV_ROLLBACK:
		r = store_deploy_end(g->store, a->tenant_id, a->function, a->id, "rolled_back",
				     a->reason, a->figures, NULL);
		if (r == 0) {
			log_warn("deployment %lld of %s/%s alias %s rolled back: %s",
				 (long long)a->id, a->tenant, a->function, a->alias, a->reason);
			drop_watch(d, a->id);
			return;
		}
		break;
	case DV_ADVANCE:
		r = store_deploy_advance(g->store, a->id, a->step + 1, a->next_weight, a->figures);
		if (r == 0) {
			if (a->next_weight >= 100) {
				log_notice("deployment %lld of %s/%s alias %s succeeded",
					   (long long)a->id, a->tenant, a->function, a->alias);
				drop_watch(d, a->id);
			} else {
				log_notice("deployment %lld of %s/%s alias %s: step %u, %u%% "
					   "to the new version",
					   (long long)a->id, a->tenant, a->function, a->alias,
					   a->step + 1, a->next_weight);
				step_entered(d, a->id, a->step + 1, now);
			}
			return;
		}
		break;
	}
	if (r == -ESRCH || r == -EALREADY || r == -ENOENT) {
		drop_watch(d, a->id); /* ended by someone else, or deleted */
		return;
	}
	if (r < 0)
		log_err("deployment %lld: the store refused a step: %s (retrying)",
			(long long)a->id, store_errmsg(g->store));
	else if (a->v == DV_CHECKPOINT) {
		pthread_mutex_lock(&d->lock);
		for (unsigned i = 0; i < d->n; i++)
			if (d->w[i]->id == a->id)
				d->w[i]->ckpt_us = now;
		pthread_mutex_unlock(&d->lock);
	}
}

static void
tick(struct gw *g, struct deployer *d, bool all_checkpoint)
{
	struct dact *acts;
	unsigned n;
	uint64_t now = now_mono_us();

	pthread_mutex_lock(&d->lock);
	n = d->n;
	acts = n ? calloc(n, sizeof(*acts)) : NULL;
	for (unsigned i = 0; acts && i < n; i++) {
		struct dwatch *w = d->w[i];
		struct dact *a = &acts[i];
		json_t *f;

		a->v = judge(w, now, a);
		if (all_checkpoint && a->v == DV_WAIT)
			a->v = DV_CHECKPOINT;
		if (a->v == DV_CHECKPOINT)
			a->hist = hist_text(w);
		if (a->v == DV_ROLLBACK || a->v == DV_ADVANCE) {
			f = watch_figures(w, now);
			a->figures = json_dumps(f, JSON_COMPACT);
			json_decref(f);
		}
	}
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; acts && i < n; i++) {
		act(g, d, &acts[i], now);
		free(acts[i].figures);
		free(acts[i].hist);
	}
	free(acts);
}

static void *
deploy_main(void *arg)
{
	struct gw *g = arg;
	struct deployer *d = g->deploy;

	gw_thread_name("gw-deploy");
	for (;;) {
		bool kicked;

		pthread_mutex_lock(&d->lock);
		if (!d->kicked)
			cond_wait_mono(&d->cond, &d->lock, now_mono_us() + DEP_TICK_MS * 1000u);
		kicked = d->kicked;
		d->kicked = false;
		pthread_mutex_unlock(&d->lock);
		if (atomic_load(&g->draining))
			continue; /* deploy_flush saved the steps */
		if (kicked || store_generation(g->store) != d->gen)
			reload(g, d);
		tick(g, d, false);
	}
	return NULL;
}

int
deploy_start(struct gw *g)
{
	struct deployer *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	cond_init_mono(&d->cond);
	d->kicked = true; /* resume what a previous run left in progress */
	g->deploy = d;
	if (pthread_create(&d->thread, NULL, deploy_main, g) != 0) {
		g->deploy = NULL;
		free(d);
		return -EAGAIN;
	}
	return 0;
}

void
deploy_flush(struct gw *g)
{
	if (g->deploy)
		tick(g, g->deploy, true);
}
