/* Unit tests of store/async.c on a real SQLite file: queueing, claims in
 * due order (none before its time, none twice), settling only what runs,
 * releasing a cut-off attempt, requeueing what a stop left running, tenant
 * scoping of reads and redrives, the dead letter's redrive, pruning, and a
 * deleted tenant's queue. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "store.h"
#include "tap.h"

#define T0 1700000000000000LL

static void
job(struct store_async *a, const char *id, int64_t tid, const char *fn, int64_t due)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->id, sizeof(a->id), "%s", id);
	a->tenant_id = tid;
	snprintf(a->function, sizeof(a->function), "%s", fn);
	a->path = "/p";
	a->query = "a=1";
	a->headers = "[[\"X-A\",\"1\"]]";
	a->body = "body";
	a->body_len = 4;
	a->max_retries = 2;
	a->next_at_us = due;
}

static int
last_cb(const struct store_scheduled *sc, void *ud)
{
	*(struct store_scheduled *)ud = *sc;
	return 0;
}

/* 1 when the store lists a scheduled function (the last one in *last), 0
 * when none, -1 on error. */
static int
scheduled(struct store *s, struct store_scheduled *last)
{
	memset(last, 0, sizeof(*last));
	if (store_schedules_list(s, last_cb, last) < 0)
		return -1;
	return last->function[0] ? 1 : 0;
}

static const char *
state_of(struct store *s, int64_t tid, const char *id)
{
	static char st[16];
	json_t *o;

	if (store_async_get(s, tid, "t", id, &o) < 0)
		return "(none)";
	snprintf(st, sizeof(st), "%s", json_string_value(json_object_get(o, "state")));
	json_decref(o);
	return st;
}

int
main(void)
{
	char dir[] = "/tmp/faasd-astore-XXXXXX", path[256], diag[512];
	struct store *s;
	struct store_tenant t = { .max_functions = 5 }, t2 = { .max_functions = 5 };
	struct store_async a, c;
	int64_t due;
	json_t *o;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/db", dir);
	is_int(store_open(path, &s, diag, sizeof(diag)), 0, "open");
	snprintf(t.name, sizeof(t.name), "t");
	snprintf(t2.name, sizeof(t2.name), "u");
	is_int(store_tenant_create(s, &t, 100000, 1000), 0, "tenant t");
	is_int(store_tenant_create(s, &t2, 100000, 1000), 0, "tenant u");

	is_int(store_async_next_due(s, &due), 0, "an empty queue has nothing due");
	is_int(store_async_claim(s, T0, &c), 0, "nothing to claim");
	job(&a, "a-late", t.id, "f", T0 + 5000000);
	is_int(store_async_add(s, &a, T0), 0, "queue one due in 5 s");
	job(&a, "a-now", t.id, "g", 0);
	snprintf(a.qualifier, sizeof(a.qualifier), "live");
	a.callback_url = "http://cb.example/x";
	is_int(store_async_add(s, &a, T0 + 1), 0, "queue one due now");
	is_int(store_async_add(s, &a, T0 + 1), -EEXIST, "an id is queued once");
	job(&a, "b-other", t2.id, "f", 0);
	is_int(store_async_add(s, &a, T0 + 2), 0, "another tenant's");
	is_int(store_async_next_due(s, &due), 1, "something is queued");
	is_int(due, T0 + 1, "the earliest due time");

	is_int(store_async_claim(s, T0 + 10, &c), 1, "claim the first due");
	is_str(c.id, "a-now", "in due order");
	is_str(c.tenant, "t", "with its tenant's name");
	is_str(c.function, "g", "function");
	is_str(c.qualifier, "live", "qualifier");
	is_str(c.trigger, "async", "trigger defaults to async");
	is_str(c.path, "/p", "path");
	is_str(c.query, "a=1", "query");
	is_str(c.headers, "[[\"X-A\",\"1\"]]", "headers");
	ok(c.body_len == 4 && memcmp(c.body, "body", 4) == 0, "body");
	is_str(c.callback_url, "http://cb.example/x", "callback URL");
	is_int(c.attempts, 1, "one attempt");
	is_str(state_of(s, t.id, "a-now"), "running", "it runs");
	store_async_free(&c);
	is_int(store_async_claim(s, T0 + 10, &c), 1, "claim the next due");
	is_str(c.id, "b-other", "the other tenant's");
	store_async_free(&c);
	is_int(store_async_claim(s, T0 + 10, &c), 0, "the late one is not due yet");

	is_int(store_async_settle(s, "a-now", "queued", T0 + 60000000, "inv-1", 502,
				  "HTTP 502 from the function", T0 + 20),
	       0, "settle as a retry a minute later");
	is_int(store_async_settle(s, "a-now", "succeeded", 0, NULL, 200, NULL, T0 + 30), -ENOENT,
	       "only a running one settles");
	ok(store_async_get(s, t.id, "t", "a-now", &o) == 0, "read it");
	is_str(json_string_value(json_object_get(o, "state")), "queued", "queued again");
	is_str(json_string_value(json_object_get(o, "last_invocation_id")), "inv-1",
	       "its attempt's record");
	is_int(json_integer_value(json_object_get(o, "last_http_status")), 502, "its status");
	ok(json_object_get(o, "next_attempt_at") != NULL, "when it runs next");
	json_decref(o);
	is_int(store_async_claim(s, T0 + 5000000, &c), 1, "at 5 s the late one is due");
	is_str(c.id, "a-late", "the late one, not the retry");
	is_int(store_async_release(s, c.id, T0 + 5000001), 0, "cut off by a stop: released");
	store_async_free(&c);
	is_int(store_async_claim(s, T0 + 5000002, &c), 1, "claimed again");
	is_int(c.attempts, 1, "a released attempt does not count");
	store_async_free(&c);

	is_int(store_async_requeue_running(s, T0 + 6000000), 2, "a start requeues what ran");
	is_str(state_of(s, t.id, "a-late"), "queued", "queued again");
	for (int i = 0; i < 2; i++) {
		is_int(store_async_claim(s, T0 + 6000000, &c), 1, "due at once (%d)", i);
		if (strcmp(c.id, "a-late") == 0) {
			is_int(c.attempts, 2, "the cut-off attempt counted");
			is_int(store_async_settle(s, c.id, "failed", 0, "inv-2", 504, "HTTP 504",
						  T0 + 6000001),
			       0, "failed: the dead letter");
		} else
			is_int(store_async_settle(s, c.id, "succeeded", 0, "inv-9", 200, NULL,
						  T0 + 6000001),
			       0, "the other succeeded");
		store_async_free(&c);
	}

	{
		uint64_t n[4];

		is_int(store_async_counts(s, n), 0, "count by state");
		ok(n[0] == 1 && n[1] == 0 && n[2] == 1 && n[3] == 1,
		   "…one queued (the retry), none running, one succeeded, one failed: %llu "
		   "%llu %llu %llu",
		   (unsigned long long)n[0], (unsigned long long)n[1], (unsigned long long)n[2],
		   (unsigned long long)n[3]);
	}
	ok(store_async_list(s, t.id, "t", "failed", 10, &o) == 0, "list the dead letter");
	is_int(json_array_size(json_object_get(o, "async_invocations")), 1, "one failed");
	json_decref(o);
	ok(store_async_list(s, t.id, "t", NULL, 10, &o) == 0, "list all of t");
	is_int(json_array_size(json_object_get(o, "async_invocations")), 2, "t has two");
	json_decref(o);
	ok(store_async_list(s, t.id, "t", NULL, 1, &o) == 0, "with a limit");
	is_int(json_array_size(json_object_get(o, "async_invocations")), 1, "one");
	json_decref(o);
	is_int(store_async_get(s, t2.id, "u", "a-late", &o), -ENOENT, "u does not see t's");
	is_int(store_async_redrive(s, t2.id, "a-late", T0), -ENOENT, "nor re-drives it");
	is_int(store_async_redrive(s, t.id, "a-now", T0), -EALREADY, "only failed ones re-drive");
	is_int(store_async_redrive(s, t.id, "nope", T0), -ENOENT, "unknown id");
	is_int(store_async_redrive(s, t.id, "a-late", T0 + 7000000), 0, "re-drive the failed one");
	is_int(store_async_claim(s, T0 + 7000000, &c), 1, "due at once");
	is_str(c.id, "a-late", "the re-driven one");
	is_int(c.attempts, 1, "its attempts start over");
	is_int(store_async_settle(s, c.id, "succeeded", 0, "inv-3", 200, NULL, T0 + 7000001), 0,
	       "succeeded");
	store_async_free(&c);

	is_int(store_async_prune(s, T0 + 6000002, 10), 1, "prune what settled before a time");
	is_int(store_async_prune(s, T0 + 7000002, 10), 1, "and later ones");
	is_int(store_async_prune(s, T0 + 7000001, 10), 0, "nothing more");
	is_str(state_of(s, t.id, "a-now"), "queued", "a queued one is never pruned");
	is_int(store_tenant_delete(s, t.id), 0, "delete tenant t");
	is_int(store_async_claim(s, T0 + 99000000, &c), 0, "its queue went with it");
	job(&a, "b-more", t2.id, "f", 0);
	is_int(store_async_add(s, &a, T0), 0, "u queues on");
	is_int(store_async_claim(s, T0 + 99000000, &c), 1, "and runs");
	store_async_free(&c);

	/* schedules: the version alias live points at says */
	{
		struct store_scheduled sc;
		json_t *out;

		is_int(scheduled(s, &sc), 0, "no schedules yet");
		is_int(store_fn_put(s, t2.id, "tick", "c1",
				    "{\"runtime\":\"exec\",\"schedule\":\"rate(5 minutes)\"}",
				    "live", 5, &out),
		       0, "a scheduled function");
		json_decref(out);
		is_int(store_fn_put(s, t2.id, "plain", "c1", "{\"runtime\":\"exec\"}", "live", 5,
				    &out),
		       0, "and one without");
		json_decref(out);
		is_int(scheduled(s, &sc), 1, "one is scheduled");
		is_str(sc.function, "tick", "…tick");
		is_str(sc.tenant, "u", "…of u");
		is_str(sc.schedule, "rate(5 minutes)", "…its schedule");
		is_int(sc.last_slot, -1, "…not handled yet");
		is_int(store_schedule_fire(s, t2.id, "tick", 600, NULL, T0), 1,
		       "first seen: slot 600");
		job(&a, "s-1", t2.id, "tick", 0);
		snprintf(a.trigger, sizeof(a.trigger), "schedule");
		is_int(store_schedule_fire(s, t2.id, "tick", 600, &a, T0), 0,
		       "the same slot again: nothing");
		is_int(store_async_get(s, t2.id, "u", "s-1", &out), -ENOENT, "…and nothing queued");
		is_int(store_schedule_fire(s, t2.id, "tick", 900, &a, T0), 1,
		       "the next slot fires");
		ok(store_async_get(s, t2.id, "u", "s-1", &out) == 0, "…queued");
		is_str(json_string_value(json_object_get(out, "trigger")), "schedule",
		       "…with trigger schedule");
		json_decref(out);
		job(&a, "s-2", t2.id, "tick", 0);
		is_int(store_schedule_fire(s, t2.id, "tick", 600, &a, T0), 0,
		       "an older slot: nothing");
		is_int(scheduled(s, &sc), 1, "listed");
		is_int(sc.last_slot, 900, "…with its last slot");
		job(&a, "s-1", t2.id, "tick", 0);
		is_int(store_schedule_fire(s, t2.id, "tick", 1200, &a, T0), -EIO,
		       "a job that cannot be queued (its id exists)");
		is_int(scheduled(s, &sc), 1, "still listed");
		is_int(sc.last_slot, 900, "…the slot did not move: it fires on the next tick");
		is_int(store_fn_put(s, t2.id, "tick", "c1", "{\"runtime\":\"exec\"}", "live", 5,
				    &out),
		       0, "a new version without a schedule");
		json_decref(out);
		is_int(scheduled(s, &sc), 0, "is no longer scheduled");
	}

	store_close(s);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	(void)!system(path);
	return done();
}
