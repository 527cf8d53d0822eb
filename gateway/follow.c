/*
 * follow.c - GET …/functions/{f}/logs?follow=1: a function's log lines as
 * they are written, one JSON object per line (NDJSON), the objects of the
 * page answer, each with its seq, so a client that loses the stream
 * resumes with since=seq:N and neither misses nor repeats a line.
 *
 * The record writer (records.c) is the only committer of records, and it
 * alone fills the streams: so there is no gap between past and live lines.
 * A new stream first pages through what is committed (on the writer's own
 * SQLite connection, between batches), then takes each batch's lines from
 * memory as the writer commits them.  A client too slow for its lines
 * holds at most FOLLOW_BUF_MAX bytes here: past that the writer stops
 * filling its buffer, and pages again from its cursor once the client has
 * taken half.  The event loops never touch SQLite: MHD's content reader
 * copies out of the buffer and, when it is empty, suspends the connection
 * until the writer resumes it.  A stream that waited FOLLOW_BEAT_US gets an
 * empty line (it keeps proxies from closing it, and finds clients that
 * left).  At shutdown every stream ends.
 *
 * INVARIANT: only the writer thread reads SQLite for streams; fs->lock is
 * never held across a query, and never taken by records_submit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "log.h"
#include "util.h"

#define FOLLOW_BUF_MAX (1u << 20)
#define FOLLOW_BEAT_US (15u * 1000000u)

enum fstate { F_GONE, F_PAGING, F_LIVE, F_BEHIND }; /* F_GONE: off the list */

struct follower {
	struct req *q;
	uint64_t id;
	int64_t tenant_id;
	char function[64];
	int64_t cursor;   /* the seq of the last record it was given */
	int64_t since_us; /* the first page's time bound */
	unsigned page;    /* records per page */
	enum fstate state;
	bool waiting; /* suspended until it has bytes */
	bool ended;
	char *buf;
	size_t len, off, cap;
	uint64_t last_us; /* when it was last given bytes */
	struct follower *next;
};

struct follows {
	pthread_mutex_t lock;
	struct follower *head;
	uint64_t next_id;
	_Atomic unsigned paging; /* streams in F_PAGING */
	bool ended;
	uint64_t next_beat_us;
};

int
follow_init(struct gw *g)
{
	struct follows *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return -ENOMEM;
	pthread_mutex_init(&fs->lock, NULL);
	g->follows = fs;
	return 0;
}

/* ---- the writer's side (records.c) ---- */

static int
put(struct follower *f, const char *s, size_t n)
{
	if (f->off && f->off == f->len)
		f->off = f->len = 0;
	if (f->len + n > f->cap) {
		size_t cap = MAX(MAX(f->cap * 2, f->len + n), (size_t)16384);
		char *nb;

		if (f->off) {
			memmove(f->buf, f->buf + f->off, f->len - f->off);
			f->len -= f->off;
			f->off = 0;
		}
		if (f->len + n > f->cap) {
			nb = realloc(f->buf, cap);
			if (!nb)
				return -ENOMEM;
			f->buf = nb;
			f->cap = cap;
		}
	}
	memcpy(f->buf + f->len, s, n);
	f->len += n;
	return 0;
}

/* Each element of lines as one line of JSON. */
static int
put_lines(struct follower *f, json_t *lines)
{
	size_t i;
	json_t *l;

	json_array_foreach (lines, i, l) {
		char *text = json_dumps(l, JSON_COMPACT);
		int r = text ? put(f, text, strlen(text)) : -ENOMEM;

		free(text);
		if (r < 0 || put(f, "\n", 1) < 0)
			return -ENOMEM;
	}
	return 0;
}

static void
wake(struct follower *f)
{
	if (!f->waiting)
		return;
	f->waiting = false;
	f->q->suspended = false;
	gw_resume(f->q);
}

static void
set_state(struct follows *fs, struct follower *f, enum fstate s)
{
	if (f->state == F_PAGING)
		atomic_fetch_sub(&fs->paging, 1);
	if (s == F_PAGING)
		atomic_fetch_add(&fs->paging, 1);
	f->state = s;
}

/* The stream cannot go on (its lines cannot be read or held): it ends
 * once the client has what it was given. */
static void
end_stream(struct follows *fs, struct follower *f)
{
	f->ended = true;
	set_state(fs, f, F_BEHIND);
	wake(f);
}

void
follow_push(struct gw *g, const struct store_record *batch, size_t n)
{
	struct follows *fs = g->follows;

	if (!fs)
		return;
	pthread_mutex_lock(&fs->lock);
	for (struct follower *f = fs->head; f; f = f->next) {
		size_t before = f->len - f->off;

		for (size_t i = 0; i < n && f->state == F_LIVE; i++) {
			const struct store_record *r = &batch[i];
			json_t *lines;
			int e = 0;

			if (r->seq <= f->cursor || r->tenant_id != f->tenant_id ||
			    strcmp(r->function, f->function) != 0)
				continue;
			if (f->len - f->off > FOLLOW_BUF_MAX) {
				/* It reads slower than it logs: pages later. */
				log_debug("log stream %llu of %s fell behind at seq %lld",
					  (unsigned long long)f->id, f->function,
					  (long long)f->cursor);
				set_state(fs, f, F_BEHIND);
				break;
			}
			lines = json_array();
			if (r->out_len)
				e |= store_log_lines(lines, r->seq, r->id, r->version,
						     r->started_us, "stdout", r->out, r->out_len);
			if (r->err_len)
				e |= store_log_lines(lines, r->seq, r->id, r->version,
						     r->started_us, "stderr", r->err, r->err_len);
			if (!lines || e < 0 || put_lines(f, lines) < 0) {
				json_decref(lines);
				set_state(fs, f, F_BEHIND); /* out of memory: from SQLite later */
				break;
			}
			json_decref(lines);
			f->cursor = r->seq;
		}
		if (f->len - f->off > before)
			wake(f);
	}
	pthread_mutex_unlock(&fs->lock);
}

bool
follow_paging(struct gw *g)
{
	return g->follows && atomic_load(&g->follows->paging) > 0;
}

void
follow_page(struct gw *g, struct store *db)
{
	struct follows *fs = g->follows;
	struct follower *f;
	struct {
		uint64_t id;
		int64_t tenant_id, cursor, since_us;
		unsigned page;
		char function[64];
	} a;
	json_t *out = NULL;
	int r;

	if (!follow_paging(g))
		return;
	/* One page for one stream a call: the writer goes back to its
	 * queue in between. */
	pthread_mutex_lock(&fs->lock);
	for (f = fs->head; f && f->state != F_PAGING; f = f->next)
		;
	if (f) {
		a.id = f->id;
		a.tenant_id = f->tenant_id;
		a.cursor = f->cursor;
		a.since_us = f->since_us;
		a.page = f->page;
		memcpy(a.function, f->function, sizeof(a.function));
		/* The next paging stream goes first next time. */
		if (f->next) {
			struct follower **pp = &fs->head;

			while (*pp != f)
				pp = &(*pp)->next;
			*pp = f->next;
			for (pp = &fs->head; *pp; pp = &(*pp)->next)
				;
			*pp = f;
			f->next = NULL;
		}
	}
	pthread_mutex_unlock(&fs->lock);
	if (!f)
		return;
	r = store_records_logs(db, a.tenant_id, a.function, a.cursor, a.since_us, a.page, &out);
	pthread_mutex_lock(&fs->lock);
	for (f = fs->head; f && f->id != a.id; f = f->next)
		;
	if (f && f->state == F_PAGING) {
		int64_t cursor = json_integer_value(json_object_get(out, "cursor"));

		if (r < 0) {
			log_warn("log stream of %s: cannot read its lines: %s", a.function,
				 store_errmsg(db));
			end_stream(fs, f);
		} else if (cursor <= f->cursor) {
			set_state(fs, f, F_LIVE); /* caught up: batches from now on */
		} else if (put_lines(f, json_object_get(out, "lines")) < 0) {
			end_stream(fs, f);
		} else {
			f->cursor = cursor;
			f->since_us = 0; /* later pages: whatever was committed since */
			if (f->len - f->off > FOLLOW_BUF_MAX)
				set_state(fs, f, F_BEHIND);
			wake(f);
		}
	}
	pthread_mutex_unlock(&fs->lock);
	json_decref(out);
}

void
follow_beat(struct gw *g)
{
	struct follows *fs = g->follows;
	uint64_t now = now_mono_us();

	if (!fs || now < fs->next_beat_us)
		return;
	fs->next_beat_us = now + 1000000u;
	pthread_mutex_lock(&fs->lock);
	for (struct follower *f = fs->head; f; f = f->next)
		if (f->waiting && us_since(now, f->last_us) >= FOLLOW_BEAT_US &&
		    put(f, "\n", 1) == 0) {
			f->last_us = now;
			wake(f);
		}
	pthread_mutex_unlock(&fs->lock);
}

void
follow_end_all(struct gw *g)
{
	struct follows *fs = g->follows;

	if (!fs)
		return;
	pthread_mutex_lock(&fs->lock);
	fs->ended = true;
	for (struct follower *f = fs->head; f; f = f->next) {
		f->ended = true;
		wake(f);
	}
	pthread_mutex_unlock(&fs->lock);
}

/* ---- the HTTP side ---- */

/* MHD's content reader (the connection's event loop, in MHD_run). */
static ssize_t
follow_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct req *q = cls;
	struct follower *f = q->follow;
	struct follows *fs = q->gw->follows;
	bool kick = false;
	ssize_t r;

	(void)pos;
	pthread_mutex_lock(&fs->lock);
	if (f->off < f->len) {
		size_t n = MIN(f->len - f->off, max);

		memcpy(buf, f->buf + f->off, n);
		f->off += n;
		f->last_us = now_mono_us();
		r = (ssize_t)n;
		if (f->state == F_BEHIND && !f->ended && f->len - f->off <= FOLLOW_BUF_MAX / 2) {
			set_state(fs, f, F_PAGING);
			kick = true;
		}
	} else if (f->ended)
		r = MHD_CONTENT_READER_END_OF_STREAM;
	else {
		f->waiting = true;
		q->suspended = true;
		MHD_suspend_connection(q->conn);
		r = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	if (kick)
		records_kick(q->gw);
	return r;
}

enum MHD_Result
follow_start(struct req *q, int64_t tenant_id, const char *fn, int64_t after_seq, int64_t since_us,
	     unsigned page)
{
	struct gw *g = q->gw;
	struct follows *fs = g->follows;
	struct MHD_Response *resp;
	struct follower *f;

	if (!fs)
		return gw_error(q, 409, "records_off",
				"this faasd keeps no invocation records (records = off), so there "
				"are no log lines to follow");
	f = calloc(1, sizeof(*f));
	if (!f)
		return gw_error(q, 500, "internal", "out of memory");
	f->q = q;
	f->tenant_id = tenant_id;
	(void)str_copy(f->function, sizeof(f->function), fn);
	f->cursor = after_seq;
	f->since_us = since_us;
	f->page = page;
	f->last_us = now_mono_us();
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, follow_read, q, NULL);
	if (!resp) {
		free(f);
		return gw_error(q, 500, "internal", "out of memory");
	}
	MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	pthread_mutex_lock(&fs->lock);
	if (fs->ended) {
		pthread_mutex_unlock(&fs->lock);
		free(f);
		MHD_destroy_response(resp);
		return gw_error(q, 503, "shutting_down", "faasd is stopping");
	}
	f->id = ++fs->next_id;
	f->next = fs->head;
	fs->head = f;
	set_state(fs, f, F_PAGING);
	q->follow = f;
	pthread_mutex_unlock(&fs->lock);
	records_kick(g);
	return gw_queue(q, 200, resp);
}

void
follow_free(struct req *q)
{
	struct follows *fs = q->gw->follows;
	struct follower *f = q->follow;

	if (!f)
		return;
	pthread_mutex_lock(&fs->lock);
	for (struct follower **pp = &fs->head; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	set_state(fs, f, F_GONE);
	pthread_mutex_unlock(&fs->lock);
	free(f->buf);
	free(f);
	q->follow = NULL;
}
