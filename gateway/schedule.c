/*
 * schedule.c - the gateway's scheduler thread (SPEC §8 schedules).
 *
 * Once a second it reads which functions have a schedule (the config of
 * the version their alias live points to) and, for each, the newest slot
 * at or before now (common/schedule.c).  A slot after the last one handled
 * is queued as an async invocation with trigger "schedule" (async.c runs
 * it: POST with a JSON event, retries, the dead letter, the record), in the
 * same transaction that records the slot as handled, so a slot fires at
 * most once, across restarts too.  A schedule seen for the first time
 * starts with the next slot; a slot older than SCHED_GRACE_S (faasd was
 * down) is passed over and logged, as a cloud scheduler does not run what
 * it missed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "log.h"
#include "schedule.h"
#include "util.h"

#define SCHED_GRACE_S 300

struct due_list {
	struct store_scheduled *v;
	size_t n, cap;
};

static int
collect(const struct store_scheduled *sc, void *ud)
{
	struct due_list *l = ud;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct store_scheduled *nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = *sc;
	return 0;
}

/* Queue slot of sc (Unix seconds) as an invocation, at most once. */
static void
fire(struct gw *g, const struct store_scheduled *sc, int64_t slot, int64_t now_s)
{
	struct store_async job = { .tenant_id = sc->tenant_id };
	char when[32], *body;
	json_t *ev;
	int r;

	invoke_make_id(job.id, now_wall_us() / 1000);
	(void)str_copy(job.function, sizeof(job.function), sc->function);
	(void)str_copy(job.trigger, sizeof(job.trigger), "schedule");
	store_time_format(slot * 1000, when, sizeof(when));
	/* Shaped like the scheduled event Lambda functions get. */
	ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{}}", "id", job.id, "source",
		       "faasd.schedule", "detail-type", "Scheduled Event", "time", when, "schedule",
		       sc->schedule, "function", sc->function, "detail");
	body = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (!body) {
		log_err("schedule of %s/%s: out of memory; slot %s not fired", sc->tenant,
			sc->function, when);
		return;
	}
	job.path = "";
	job.query = "";
	job.headers = "[[\"Content-Type\",\"application/json\"]]";
	job.body = body;
	job.body_len = strlen(body);
	job.max_retries = (unsigned)g->cfg.async_retries;
	r = store_schedule_fire(g->store, sc->tenant_id, sc->function, slot,
				now_s - slot > SCHED_GRACE_S ? NULL : &job, (int64_t)now_wall_us());
	free(body);
	if (r < 0)
		log_err("schedule of %s/%s: cannot queue slot %s: %s", sc->tenant, sc->function,
			when, strerror(-r));
	else if (r == 1 && now_s - slot > SCHED_GRACE_S)
		log_warn("schedule of %s/%s: slot %s passed while faasd was not running; "
			 "not fired",
			 sc->tenant, sc->function, when);
	else if (r == 1) {
		log_info("schedule of %s/%s fired for %s: async %s", sc->tenant, sc->function, when,
			 job.id);
		async_kick(g);
	}
}

static void
tick(struct gw *g)
{
	struct due_list l = { 0 };
	int64_t now_s = (int64_t)(now_wall_us() / 1000000u);
	int r;

	r = store_schedules_list(g->store, collect, &l);
	if (r < 0)
		log_err("scheduler: cannot read the schedules: %s", strerror(-r));
	for (size_t i = 0; r >= 0 && i < l.n; i++) {
		const struct store_scheduled *sc = &l.v[i];
		struct schedule s;
		char diag[200];
		int64_t slot;

		if (schedule_parse(sc->schedule, &s, diag, sizeof(diag)) < 0)
			continue; /* checked at deploy; an older faasd's text */
		slot = schedule_prev(&s, now_s);
		if (slot < 0 || slot <= sc->last_slot)
			continue;
		if (sc->last_slot < 0) {
			/* First seen: from the next slot on. */
			(void)store_schedule_fire(g->store, sc->tenant_id, sc->function, slot, NULL,
						  (int64_t)now_wall_us());
			continue;
		}
		fire(g, sc, slot, now_s);
	}
	free(l.v);
}

static void *
sched_main(void *arg)
{
	struct gw *g = arg;

	gw_thread_name("gw-sched");
	while (!atomic_load(&g->draining)) {
		/* Just past each whole second: slots are whole minutes. */
		uint64_t us = now_wall_us();
		struct timespec ts = { .tv_sec = 0,
				       .tv_nsec = (long)(1000000u - us % 1000000u + 1000u) * 1000 };

		if (ts.tv_nsec >= 1000000000L)
			ts.tv_nsec = 999999999L;
		nanosleep(&ts, NULL);
		if (!atomic_load(&g->draining))
			tick(g);
	}
	return NULL;
}

int
schedule_start(struct gw *g)
{
	pthread_t t;

	if (pthread_create(&t, NULL, sched_main, g) != 0)
		return -EAGAIN;
	pthread_detach(t);
	return 0;
}
