/*
 * records.c - the gateway's invocation record writer (SPEC §7).
 *
 * Event loops hand finished invocations to records_submit(), which only
 * copies the record into a bounded ring under a short mutex: recording
 * never waits for SQLite.  One writer thread, on a SQLite connection of its
 * own, takes what the ring holds (up to RECORDS_BATCH at a time), writes it
 * in one transaction and frees it; between batches it prunes records past
 * retention_days, a small batch at a time, so pruning never holds writers
 * up for long.
 *
 * The writer also fills the logs?follow=1 streams (follow.c): each
 * committed batch goes to them, and between batches it reads the pages a
 * new (or slow) stream needs.
 *
 * INVARIANT: records_submit never blocks on anything but the ring's mutex;
 * a full ring drops the record, counts it (records_dropped_total) and logs
 * at most once a second.  Records queued at shutdown are written before
 * the gateway exits (records_flush).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"
#include "log.h"
#include "util.h"

#define RECORDS_BATCH       1024
/* A record waits at most this long for others to share its transaction:
 * each commit writes the last page of the table and of every index to the
 * WAL, so a transaction per handful of records cost more than the records
 * (bench/records.sh: writer CPU per record). */
#define RECORDS_LINGER_US   20000u
#define PRUNE_BATCH         500
/* The writer's nice value.  Its batches take a core for a millisecond or
 * more; at nice 0 an event loop that woke meanwhile waited for it (p99 at
 * 16 connections, 6 alternating pairs: median 4.9 ms at 0, 3.7 ms at 5).
 * At 5 it still gets about a quarter of a core when every thread is
 * busy, over three times what 25,000 records/s need (2.3-3 us each). */
#define RECORDS_NICE        5
/* ...and it yields its core every so many records of a batch, still one
 * commit per batch: at 16 connections, 6 alternating pairs against the
 * same build without, p99 median 2.9 against 3.3 ms (lower in 5 pairs),
 * req/s no lower; nice alone, 5 to 19, did not move the p99. */
#define RECORDS_YIELD_EVERY 64
#define PRUNE_INTERVAL_US   (3600ull * 1000000ull)

struct records {
	struct gw *gw;
	struct store *db; /* the writer's own connection */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct store_record *ring;
	size_t cap, head, count;
	bool flush;         /* shutting down: write what is queued, then stop */
	uint64_t oldest_us; /* when the oldest record queued came */
	pthread_t thread;
	_Atomic uint64_t dropped, written, failed;
	_Atomic uint64_t last_drop_log_us;
	uint64_t next_prune_us;
};

static void
record_free(struct store_record *r)
{
	free(r->error_message);
	free(r->out);
	free(r->err);
}

static void
prune(struct records *rs)
{
	int64_t before = gw_retention_cutoff_us(rs->gw);
	uint64_t total = 0;
	int n;

	do {
		n = store_records_prune(rs->db, before, PRUNE_BATCH);
		if (n > 0)
			total += (uint64_t)n;
		/* Records waiting meanwhile go first: a big backlog of old
		 * ones never delays new ones by more than a batch. */
		pthread_mutex_lock(&rs->lock);
		bool waiting = rs->count > 0;
		pthread_mutex_unlock(&rs->lock);
		if (waiting)
			break;
	} while (n == PRUNE_BATCH);
	if (n < 0)
		log_warn("cannot prune invocation records: %s", store_errmsg(rs->db));
	else if (total)
		log_info("pruned %llu invocation records older than %llu days",
			 (unsigned long long)total, (unsigned long long)rs->gw->cfg.retention_days);
	/* Not done (new records came): go on after they are written. */
	rs->next_prune_us = n == PRUNE_BATCH ? 0 : now_mono_us() + PRUNE_INTERVAL_US;
}

static void
writer_yield(void)
{
	(void)sched_yield();
}

static void *
writer_main(void *arg)
{
	struct records *rs = arg;
	struct store_record *batch = calloc(RECORDS_BATCH, sizeof(*batch));

	gw_thread_name("gw-records");
	/* Lowering a thread's own priority needs no privilege. */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), RECORDS_NICE);
	if (!batch) {
		log_err("record writer: out of memory; invocation records are not kept");
		return NULL;
	}
	for (;;) {
		size_t n = 0;
		int r;

		pthread_mutex_lock(&rs->lock);
		while (rs->count == 0 && !rs->flush && !follow_paging(rs->gw)) {
			if (now_mono_us() >= rs->next_prune_us)
				break;
			/* look at the prune clock now and then */
			cond_wait_mono(&rs->cond, &rs->lock, now_mono_us() + 1000000u);
		}
		/* A few records: give others a moment to join them. */
		while (rs->count > 0 && rs->count < RECORDS_BATCH && !rs->flush &&
		       now_mono_us() < rs->oldest_us + RECORDS_LINGER_US)
			cond_wait_mono(&rs->cond, &rs->lock, rs->oldest_us + RECORDS_LINGER_US);
		if (rs->count == 0 && rs->flush) {
			pthread_mutex_unlock(&rs->lock);
			break;
		}
		while (n < RECORDS_BATCH && rs->count > 0) {
			batch[n++] = rs->ring[rs->head];
			rs->head = (rs->head + 1) % rs->cap;
			rs->count--;
		}
		pthread_mutex_unlock(&rs->lock);

		if (n) {
			r = store_records_insert(rs->db, batch, n);
			if (r < 0) {
				atomic_fetch_add(&rs->failed, n);
				log_err("cannot write %zu invocation records: %s", n,
					store_errmsg(rs->db));
			} else {
				atomic_fetch_add(&rs->written, n);
				follow_push(rs->gw, batch, n);
			}
			for (size_t i = 0; i < n; i++)
				record_free(&batch[i]);
		} else if (now_mono_us() >= rs->next_prune_us)
			prune(rs);
		follow_page(rs->gw, rs->db);
		follow_beat(rs->gw);
	}
	free(batch);
	return NULL;
}

int
records_start(struct gw *g)
{
	char path[PATH_MAX], diag[512];
	struct records *rs;
	int r;

	if (!g->cfg.records)
		return 0;
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	rs->gw = g;
	rs->cap = g->cfg.records_queue;
	rs->ring = calloc(rs->cap, sizeof(*rs->ring));
	if (!rs->ring) {
		free(rs);
		return -ENOMEM;
	}
	(void)str_printf(path, sizeof(path), "%s/db/faasd.db", g->cfg.state_dir);
	r = store_open(path, &rs->db, diag, sizeof(diag));
	if (r < 0) {
		log_err("record writer: %s", diag);
		free(rs->ring);
		free(rs);
		return r;
	}
	store_records_pause(rs->db, writer_yield, RECORDS_YIELD_EVERY);
	pthread_mutex_init(&rs->lock, NULL);
	cond_init_mono(&rs->cond);
	if (follow_init(g) < 0 || pthread_create(&rs->thread, NULL, writer_main, rs) != 0) {
		store_close(rs->db);
		free(rs->ring);
		free(rs);
		return -EAGAIN;
	}
	g->records = rs;
	return 0;
}

void
records_submit(struct gw *g, struct store_record *r)
{
	struct records *rs = g->records;
	bool full;

	if (!rs) {
		record_free(r);
		return;
	}
	pthread_mutex_lock(&rs->lock);
	full = rs->count == rs->cap || rs->flush;
	if (!full) {
		rs->ring[(rs->head + rs->count) % rs->cap] = *r;
		rs->count++;
		/* Wake the writer at a burst's start (it lingers for more)
		 * and when a whole batch is there. */
		if (rs->count == 1)
			rs->oldest_us = now_mono_us();
		if (rs->count == 1 || rs->count == RECORDS_BATCH)
			pthread_cond_signal(&rs->cond);
	}
	pthread_mutex_unlock(&rs->lock);
	if (full) {
		uint64_t now = now_mono_us(), last = atomic_load(&rs->last_drop_log_us);
		uint64_t n = atomic_fetch_add(&rs->dropped, 1) + 1;

		if (us_since(now, last) >= 1000000 &&
		    atomic_compare_exchange_strong(&rs->last_drop_log_us, &last, now))
			log_warn("invocation record queue full (%llu records): dropped %s, "
				 "%llu dropped so far",
				 (unsigned long long)rs->cap, r->id, (unsigned long long)n);
		record_free(r);
	}
	memset(r, 0, sizeof(*r));
}

void
records_flush(struct gw *g)
{
	struct records *rs = g->records;

	if (!rs)
		return;
	pthread_mutex_lock(&rs->lock);
	rs->flush = true;
	pthread_cond_signal(&rs->cond);
	pthread_mutex_unlock(&rs->lock);
	pthread_join(rs->thread, NULL);
}

void
records_kick(struct gw *g)
{
	struct records *rs = g->records;

	if (!rs)
		return;
	pthread_mutex_lock(&rs->lock);
	pthread_cond_signal(&rs->cond);
	pthread_mutex_unlock(&rs->lock);
}

void
records_stats(struct gw *g, struct records_stats *st)
{
	struct records *rs = g->records;

	memset(st, 0, sizeof(*st));
	if (!rs)
		return;
	st->written = atomic_load(&rs->written);
	st->dropped = atomic_load(&rs->dropped);
	st->failed = atomic_load(&rs->failed);
	pthread_mutex_lock(&rs->lock);
	st->queued = rs->count;
	pthread_mutex_unlock(&rs->lock);
	st->capacity = rs->cap;
}
