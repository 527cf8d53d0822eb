/* Unit tests of store/records.c on a real SQLite file: batch inserts from a
 * second connection, tenant scoping, filters, cursor pages, logs as lines
 * (invalid UTF-8 made safe), pruning, a deleted tenant's records, and
 * migrations 004 and 005 (the table rebuilt twice) keeping what a version 3
 * database held. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "store.h"
#include "tap.h"

/* The id of record i started at us: a UUIDv7 carrying that millisecond,
 * as the gateway makes them (the store finds records by it). */
static void
start_at(struct store_record *r, int i, int64_t us)
{
	unsigned long long ms = (unsigned long long)us / 1000;

	r->started_us = us;
	snprintf(r->id, sizeof(r->id), "%08llx-%04llx-7000-8000-%012d", ms >> 16, ms & 0xffff, i);
}

#define T0 1700000000000000LL

/* The id fill() gives record i (in a static buffer of its own per call
 * site's use: copied before the next). */
static const char *
rid(int i)
{
	static char ids[4][40];
	static unsigned k;
	struct store_record r;

	start_at(&r, i, T0 + (int64_t)i * 1000000);
	k = (k + 1) % 4;
	memcpy(ids[k], r.id, sizeof(ids[k]));
	return ids[k];
}

static void
fill(struct store_record *r, int i, int64_t tid, const char *fn, const char *status)
{
	memset(r, 0, sizeof(*r));
	start_at(r, i, T0 + (int64_t)i * 1000000);
	r->tenant_id = tid;
	snprintf(r->function, sizeof(r->function), "%s", fn);
	r->version = 1 + i % 2;
	snprintf(r->alias, sizeof(r->alias), "live");
	r->trigger = "http";
	r->duration_us = 1500;
	r->billed_ms = 2;
	r->status = status;
	r->http_status = strcmp(status, "ok") == 0 ? 200 : 502;
	r->cold = i == 0;
	r->mem_limit_mb = 128;
}

extern const char *const store_migrations[];

static unsigned pauses;

static void
count_pause(void)
{
	pauses++;
}

/* A database as a faasd of schema version 3 left it, with three records;
 * opened by this store, it is migrated (004 to 006) and keeps them. */
static void
migration_004(const char *dir)
{
	char path[256], diag[512];
	sqlite3 *db;
	struct store *s;
	json_t *out;
	int good = 1;

	snprintf(path, sizeof(path), "%s/old.db", dir);
	good &= sqlite3_open(path, &db) == SQLITE_OK;
	for (int i = 0; i < 3; i++)
		good &= sqlite3_exec(db, store_migrations[i], NULL, NULL, NULL) == SQLITE_OK;
	good &= sqlite3_exec(
			db,
			"PRAGMA user_version = 3;"
			"INSERT INTO tenants (name, uid, created_at) VALUES ('old', 70000, 1);"
			/* a UUIDv7 whose start was read in the millisecond
			 * after the id's (two clock readings, before 006) */
			"INSERT INTO invocations VALUES (7, '01a23c4f-accc-759c-8cb9-a6a89cfb5424', "
			"1, 'f', 2, 'live', 'http', "
			"1796308184269417, 1500, 0, 2, 'error', 502, 1, 900, 128, 10, 20, "
			"'function_error', 'it broke', 2, NULL, CAST('went wrong' AS BLOB));"
			"INSERT INTO invocations VALUES (8, 'not-a-uuid', 1, 'f', 2, 'live', 'http', "
			"1700000000000001, 1500, 0, 2, 'ok', 200, 0, 900, 128, 10, 20, "
			"NULL, NULL, 0, NULL, NULL);"
			/* a random (version 4) id, as faasd made before UUIDv7 */
			"INSERT INTO invocations VALUES (9, 'c0ffee00-1234-4abc-8def-0123456789ab', "
			"1, 'f', 2, 'live', 'http', "
			"1700000000000002, 1500, 0, 2, 'ok', 200, 0, 900, 128, 10, 20, "
			"NULL, NULL, 0, NULL, NULL)",
			NULL, NULL, NULL) == SQLITE_OK;
	sqlite3_close(db);
	ok(good, "a version 3 database with a record");
	is_int(store_open(path, &s, diag, sizeof(diag)), 0, "opened: migrated to the latest");
	is_int(store_record_get(s, 1, "old", "01A23C4F-ACCC-759C-8CB9-A6A89CFB5424", &out), 0,
	       "the record is still there (found by its id in either case)");
	is_str(json_string_value(json_object_get(out, "id")),
	       "01a23c4f-accc-759c-8cb9-a6a89cfb5424", "…with its id, as text");
	is_int(json_integer_value(json_object_get(out, "seq")), 7, "…with its seq");
	is_str(json_string_value(json_object_get(out, "status")), "error", "…its status");
	is_str(json_string_value(json_object_get(json_object_get(out, "logs"), "stderr")),
	       "went wrong", "…and its log");
	json_decref(out);
	is_int(store_record_get(s, 1, "old", "c0ffee00-1234-4abc-8def-0123456789ab", &out), 0,
	       "a version 4 id (no time in it) is found too");
	is_int(json_integer_value(json_object_get(out, "seq")), 9, "…the right one");
	json_decref(out);
	is_int(store_record_get(s, 1, "old", "01a23c4f-accd-759c-8cb9-a6a89cfb5424", &out), -ENOENT,
	       "a UUIDv7 of another millisecond is not it");
	store_close(s);
	ok(sqlite3_open(path, &db) == SQLITE_OK, "reopen with sqlite3");
	{
		sqlite3_stmt *st;
		char types[64] = "";

		if (sqlite3_prepare_v2(db,
				       "SELECT group_concat(typeof(id) || ':' || length(id), ' ') "
				       "FROM (SELECT id FROM invocations ORDER BY seq)",
				       -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			snprintf(types, sizeof(types), "%s", sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		is_str(types, "blob:16 text:10 blob:16",
		       "ids became 16 bytes; one that was no UUID is kept as it was");
	}
	is_int(sqlite3_exec(
		       db,
		       "INSERT INTO invocations (id, tenant_id, function, version, trigger, "
		       "started_us, duration_us, init_us, billed_ms, status, http_status, cold, "
		       "mem_peak_kb, mem_limit_mb, request_bytes, response_bytes, log_truncated) "
		       "VALUES ('x', 1, 'f', 1, 'http', 1, 1, 0, 1, 'bogus', 200, 0, 0, 128, 0, 0, 0)",
		       NULL, NULL, NULL),
	       SQLITE_CONSTRAINT, "the status CHECK still refuses what is not a status");
	is_int(sqlite3_exec(db, "DELETE FROM tenants WHERE name = 'old'", NULL, NULL, NULL),
	       SQLITE_OK, "delete the tenant");
	{
		sqlite3_stmt *st;
		int n = -1;

		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM invocations", -1, &st, NULL) ==
			    SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		is_int(n, 0, "the trigger took its records along");
	}
	sqlite3_close(db);
	unlink(path);
}

static unsigned
count_list(struct store *s, int64_t tid, struct store_record_filter *f)
{
	json_t *out;
	unsigned n;

	if (store_records_list(s, tid, "t", f, &out) < 0)
		return 9999;
	n = (unsigned)json_array_size(json_object_get(out, "invocations"));
	json_decref(out);
	return n;
}

int
main(void)
{
	char dir[] = "/tmp/faasd-rstore-XXXXXX", path[256], diag[512];
	struct store *s, *w;
	struct store_tenant t = { .max_functions = 5 }, t2 = { .max_functions = 5 };
	struct store_record recs[30];
	struct store_record_filter f = { .cold = -1, .limit = 100 };
	json_t *out, *lines, *l;
	int64_t cursor;
	unsigned pages = 0, seen = 0;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/db", dir);
	is_int(store_open(path, &s, diag, sizeof(diag)), 0, "open");
	is_int(store_open(path, &w, diag, sizeof(diag)), 0, "a second connection for the writer");
	snprintf(t.name, sizeof(t.name), "t");
	snprintf(t2.name, sizeof(t2.name), "u");
	is_int(store_tenant_create(s, &t, 100000, 1000), 0, "tenant t");
	is_int(store_tenant_create(s, &t2, 100000, 1000), 0, "tenant u");

	for (int i = 0; i < 30; i++)
		fill(&recs[i], i, i < 25 ? t.id : t2.id, i % 3 ? "f" : "g",
		     i % 5 == 4 ? "error" : "ok");
	recs[3].err = "line one\nline \xff two\n";
	recs[3].err_len = strlen(recs[3].err);
	recs[3].out = "partial";
	recs[3].out_len = 7;
	recs[3].log_truncated = 2;
	snprintf(recs[4].error_code, sizeof(recs[4].error_code), "function_error");
	recs[4].error_message = "handler exited with status 1";
	is_int(store_records_insert(w, recs, 30), 0, "30 records in one batch");
	ok(recs[0].seq > 0 && recs[29].seq == recs[0].seq + 29, "seq filled in order");
	{
		/* 16 rows to an INSERT: a batch of 37 takes two of those and
		 * five single ones; every record gets its own seq, in order. */
		struct store_record more[37];
		int64_t prev = recs[29].seq;
		int good = 1;

		for (int i = 0; i < 37; i++) {
			fill(&more[i], 100 + i, t2.id, "h", "ok");
			more[i].mem_peak_kb = (uint64_t)i;
		}
		is_int(store_records_insert(w, more, 37), 0, "37 records in one batch");
		for (int i = 0; i < 37; i++) {
			good &= more[i].seq == prev + 1 + i;
			if (i == 0 || i == 16 || i == 32 || i == 36) {
				json_t *j = NULL;

				good &= store_record_get(s, t2.id, "u", rid(100 + i), &j) == 0 &&
					json_integer_value(json_object_get(j, "seq")) ==
						more[i].seq &&
					json_integer_value(json_object_get(j, "mem_peak_kb")) == i;
				json_decref(j);
			}
		}
		ok(good, "…each with its seq, found under it with its own figures");
		is_int(store_records_prune(w, INT64_MAX, 100), 37 + 30, "prune them all");
		is_int(store_records_insert(w, recs, 30), 0, "the 30 again");
	}

	is_int(count_list(s, t.id, &f), 25, "tenant t sees its 25");
	is_int(count_list(s, t2.id, &f), 5, "tenant u sees its 5");
	{
		/* Async and scheduled invocations (SPEC §8, not built yet)
		 * will leave their records through this same path: the
		 * triggers the table takes, and one it refuses whole. */
		struct store_record a[2];
		json_t *j = NULL;

		fill(&a[0], 200, t2.id, "h", "ok");
		a[0].trigger = "async";
		start_at(&a[0], 200, 1);
		fill(&a[1], 201, t2.id, "h", "ok");
		a[1].trigger = "schedule";
		start_at(&a[1], 201, 1);
		is_int(store_records_insert(w, a, 2), 0,
		       "records of an async and a scheduled call");
		ok(store_record_get(s, t2.id, "u", a[1].id, &j) == 0 &&
			   strcmp(json_string_value(json_object_get(j, "trigger")) ?: "",
				  "schedule") == 0,
		   "…kept with their trigger");
		json_decref(j);
		fill(&a[0], 202, t2.id, "h", "ok");
		a[0].trigger = "cron";
		ok(store_records_insert(w, a, 1) < 0,
		   "a trigger the table does not know is refused");
		is_int(store_record_get(s, t2.id, "u", a[0].id, &j), -ENOENT,
		       "…and nothing is written");
		is_int(store_records_prune(w, 2, 1000), 2,
		       "the two pruned again (started at 1 us)");
	}
	f.function = "g";
	is_int(count_list(s, t.id, &f), 9, "function filter");
	f.function = NULL;
	f.status = "error";
	is_int(count_list(s, t.id, &f), 5, "status filter");
	f.status = NULL;
	f.cold = 1;
	is_int(count_list(s, t.id, &f), 1, "cold filter");
	f.cold = -1;
	f.version = 2;
	is_int(count_list(s, t.id, &f), 12, "version filter");
	f.version = 0;
	f.since_us = recs[10].started_us;
	f.until_us = recs[20].started_us;
	is_int(count_list(s, t.id, &f), 10, "since/until: [since, until)");
	f.since_us = f.until_us = 0;

	/* pages of 7, newest first, each cursor continuing where it stopped */
	f.limit = 7;
	cursor = 0;
	do {
		json_t *arr, *first;

		f.before_seq = cursor;
		if (store_records_list(s, t.id, "t", &f, &out) < 0)
			break;
		arr = json_object_get(out, "invocations");
		first = json_array_get(arr, 0);
		if (cursor)
			ok(json_integer_value(json_object_get(first, "seq")) < cursor,
			   "page %u starts after the cursor", pages);
		seen += (unsigned)json_array_size(arr);
		cursor = json_integer_value(json_object_get(out, "next_cursor"));
		pages++;
		json_decref(out);
	} while (cursor && pages < 10);
	is_int(seen, 25, "pages cover every record once");
	is_int(pages, 4, "25 records in pages of 7: 4 pages");

	is_int(store_record_get(s, t.id, "t", rid(3), &out), 0, "get with logs");
	is_str(json_string_value(json_object_get(json_object_get(out, "logs"), "stdout")),
	       "partial", "stdout kept");
	is_str(json_string_value(json_object_get(json_object_get(out, "logs"), "stderr")),
	       "line one\nline \xef\xbf\xbd two\n", "invalid UTF-8 replaced, not refused");
	ok(json_is_true(json_object_get(json_object_get(out, "truncated"), "stderr")),
	   "truncated flag");
	json_decref(out);
	is_int(store_record_get(s, t.id, "t", rid(4), &out), 0, "get a failed one");
	is_str(json_string_value(json_object_get(json_object_get(out, "error"), "code")),
	       "function_error", "error code kept");
	json_decref(out);
	is_int(store_record_get(s, t2.id, "u", rid(3), &out), -ENOENT,
	       "another tenant's record does not exist");
	is_int(store_record_get(s, t.id, "t", "nope", &out), -ENOENT, "unknown id");

	is_int(store_records_logs(s, t.id, "g", 0, 0, 100, &out), 0, "logs of g");
	lines = json_object_get(out, "lines");
	is_int(json_array_size(lines), 3, "three lines: stdout's partial one and two of stderr");
	l = json_array_get(lines, 1);
	is_str(json_string_value(json_object_get(l, "text")), "line one", "a line without \\n");
	is_str(json_string_value(json_object_get(l, "stream")), "stderr", "its stream");
	cursor = json_integer_value(json_object_get(out, "cursor"));
	json_decref(out);
	is_int(store_records_logs(s, t.id, "g", cursor, 0, 100, &out), 0, "logs after the cursor");
	is_int(json_array_size(json_object_get(out, "lines")), 0, "nothing new");
	is_int(json_integer_value(json_object_get(out, "cursor")), cursor, "cursor stays");
	json_decref(out);
	is_int(store_records_logs(s, t2.id, "g", 0, 0, 100, &out), 0, "u asks for g's logs");
	is_int(json_array_size(json_object_get(out, "lines")), 0, "…and sees none of t's");
	json_decref(out);

	is_int(store_records_prune(w, recs[10].started_us, 4), 4, "prune: a batch of 4");
	is_int(store_records_prune(w, recs[10].started_us, 100), 6, "then the other 6");
	is_int(store_records_prune(w, recs[10].started_us, 100), 0, "nothing older left");
	f.before_seq = 0;
	f.limit = 100;
	is_int(count_list(s, t.id, &f), 15, "15 of t remain");

	is_int(store_tenant_delete(s, t2.id), 0, "delete tenant u");
	is_int(count_list(s, t2.id, &f), 0, "its records went with it");
	is_int(count_list(s, t.id, &f), 15, "t's stay");
	{
		/* The writer's pause inside a batch's transaction. */
		struct store_record b[37];

		for (int i = 0; i < 37; i++)
			fill(&b[i], 300 + i, t.id, "p", "ok");
		store_records_pause(w, count_pause, 10);
		is_int(store_records_insert(w, b, 37), 0, "37 records with a pause every 10");
		ok(pauses >= 2 && pauses <= 4, "…paused inside the batch (%u times)", pauses);
		ok(b[36].seq == b[0].seq + 36, "…and written in one piece, in order");
		f.function = "p";
		is_int(count_list(s, t.id, &f), 37, "…all 37 there");
		f.function = NULL;
		pauses = 0;
		store_records_pause(w, NULL, 0);
		fill(&b[0], 400, t.id, "p", "ok");
		is_int(store_records_insert(w, b, 1), 0, "no pause set");
		is_int(pauses, 0, "…none made");
	}

	{
		/* Listings run by start time: a long invocation written after
		 * shorter ones that started later sits by its start.  Equal
		 * starts are ordered by seq, and pages split between them
		 * neither skip nor repeat one. */
		struct store_record c[6];
		int64_t tz = T0 + 500000000000LL;
		const int64_t at[6] = { 3, 5, 5, 5, 5, 1 }; /* c[5]: the long one */
		char order[64] = "", want[64] = "";
		int64_t cursor = 0;
		unsigned pages = 0;
		json_t *out;

		for (int i = 0; i < 6; i++) {
			fill(&c[i], 500 + i, t.id, "q", "ok");
			start_at(&c[i], 500 + i, tz + at[i] * 1000000);
		}
		is_int(store_records_insert(w, c, 6), 0, "6 records of q, the last started first");
		f.function = "q";
		f.limit = 2;
		do {
			f.before_seq = cursor;
			if (store_records_list(s, t.id, "t", &f, &out) < 0)
				break;
			for (size_t i = 0; i < json_array_size(json_object_get(out, "invocations"));
			     i++) {
				json_t *r = json_array_get(json_object_get(out, "invocations"), i);
				int64_t sq = json_integer_value(json_object_get(r, "seq"));

				snprintf(order + strlen(order), sizeof(order) - strlen(order),
					 "%d ", (int)(sq - c[0].seq));
			}
			cursor = json_integer_value(json_object_get(out, "next_cursor"));
			json_decref(out);
			pages++;
		} while (cursor && pages < 10);
		/* newest start first; the four at +5 s newest seq first */
		snprintf(want, sizeof(want), "4 3 2 1 0 5 ");
		is_str(order, want, "pages of 2: by start, seq breaking ties, none twice");
		is_int(pages, 3, "…in 3 pages");
		f.limit = 100;
		f.since_us = tz + 2000000;
		f.until_us = tz + 5000000;
		is_int(count_list(s, t.id, &f), 1, "since/until by start: only the one at +3 s");
		f.since_us = f.until_us = 0;
		f.before_seq = c[2].seq;
		is_int(count_list(s, t.id, &f), 3, "after the cursor c[2]: c[1], c[0] and c[5]");
		f.before_seq = 0;
		ok(store_records_prune(w, tz + 4000000, 1000) >= 2, "prune those before +4 s");
		f.before_seq = c[0].seq; /* pruned */
		is_int(store_records_list(s, t.id, "t", &f, &out), 0, "a pruned record's cursor");
		ok(json_array_size(json_object_get(out, "invocations")) == 0 &&
			   json_is_null(json_object_get(out, "next_cursor")),
		   "…is an empty last page");
		json_decref(out);
		f.before_seq = c[3].seq;
		is_int(count_list(s, t2.id, &f), 0, "another tenant's seq as cursor: nothing");
		f.before_seq = 0;
		f.function = NULL;
	}

	store_close(w);
	store_close(s);
	migration_004(dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/db-shm", dir);
	unlink(path);
	rmdir(dir);
	return done();
}
