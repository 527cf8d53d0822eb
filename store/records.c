/*
 * records.c - invocation records and their logs (SPEC §7) in SQLite.
 *
 * The gateway's record writer inserts them in batches on its own
 * connection; API calls read them on the main one (WAL: neither waits for
 * the other beyond a commit).  Every query is scoped by tenant id: a record
 * of another tenant does not exist for the caller.  Logs are bytes the
 * handler wrote; they become JSON text with invalid UTF-8 replaced by
 * U+FFFD, so no handler output can make a listing fail.  Never logs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "util.h"

#define RECORD_COLS                                                                  \
	"seq, id, function, version, alias, trigger, started_us, duration_us, "      \
	"init_us, billed_ms, status, http_status, cold, mem_peak_kb, mem_limit_mb, " \
	"request_bytes, response_bytes, error_code, error_message, log_truncated"
#define RECORD_NCOLS 20

/* Rows per INSERT statement: one statement for 16 records without output
 * costs less than 16 statements (about 1 us a record of the writer's CPU,
 * bench/records_store).  Records with logs go one to a statement: bound
 * blobs made the many-row statement dearer (about 1 us a record more). */
#define INSERT_ROWS 16
#define INSERT_COLS 22

static int
insert_prep(struct store *s, unsigned rows, sqlite3_stmt **st)
{
	static const char head[] =
		"INSERT INTO invocations (id, tenant_id, function, version, alias, trigger, "
		"started_us, duration_us, init_us, billed_ms, status, http_status, cold, "
		"mem_peak_kb, mem_limit_mb, request_bytes, response_bytes, error_code, "
		"error_message, log_truncated, stdout, stderr) VALUES ";
	static const char row[] = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
	char sql[sizeof(head) + INSERT_ROWS * sizeof(row)], *p = sql;

	memcpy(p, head, sizeof(head) - 1);
	p += sizeof(head) - 1;
	for (unsigned i = 0; i < rows; i++) {
		if (i)
			*p++ = ',';
		memcpy(p, row, sizeof(row) - 1);
		p += sizeof(row) - 1;
	}
	*p = 0;
	return sq_prep(s, sql, st);
}

/* Bind record x as the row whose first parameter is k; id holds its id's
 * bytes until the statement has run. */
static void
insert_bind(sqlite3_stmt *st, int k, const struct store_record *x, uint8_t id[16])
{
	if (uuid_parse(x->id, id) == 0)
		sqlite3_bind_blob(st, k++, id, 16, SQLITE_STATIC);
	else
		sqlite3_bind_text(st, k++, x->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, k++, x->tenant_id);
	sqlite3_bind_text(st, k++, x->function, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, k++, x->version);
	if (x->alias[0])
		sqlite3_bind_text(st, k++, x->alias, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, k++);
	sqlite3_bind_text(st, k++, x->trigger ? x->trigger : "http", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, k++, x->started_us);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)x->duration_us);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)x->init_us);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)x->billed_ms);
	sqlite3_bind_text(st, k++, x->status, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, k++, (int)x->http_status);
	sqlite3_bind_int(st, k++, x->cold);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)x->mem_peak_kb);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)x->mem_limit_mb);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)x->request_bytes);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)x->response_bytes);
	if (x->error_code[0])
		sqlite3_bind_text(st, k++, x->error_code, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, k++);
	if (x->error_message)
		sqlite3_bind_text(st, k++, x->error_message, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, k++);
	sqlite3_bind_int(st, k++, (int)x->log_truncated);
	if (x->out_len)
		sqlite3_bind_blob(st, k++, x->out, (int)x->out_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, k++);
	if (x->err_len)
		sqlite3_bind_blob(st, k, x->err, (int)x->err_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, k);
}

/* How many of the first n records (at most INSERT_ROWS) have no output. */
static size_t
quiet_run(const struct store_record *r, size_t n)
{
	size_t k = 0;

	while (k < n && k < INSERT_ROWS && !r[k].out_len && !r[k].err_len)
		k++;
	return k;
}

/*
 * INVARIANT: the record writer is the table's only inserter, inside BEGIN
 * IMMEDIATE (deletes, by pruning or a tenant's trigger, cannot run in
 * between), and seq is an INTEGER PRIMARY KEY without AUTOINCREMENT: the
 * rows of one INSERT get consecutive seqs ending at last_insert_rowid, in
 * the order of its VALUES.  The follow streams and the cursors rely on each
 * record's seq being set here.  A statement that fails fails the batch
 * (rolled back whole).
 */
int
store_records_insert(struct store *s, struct store_record *recs, size_t n)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *one = NULL;
	_cleanup_stmt_ sqlite3_stmt *many = NULL;
	uint8_t ids[INSERT_ROWS][16];
	int r;

	r = sq_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	r = insert_prep(s, 1, &one);
	if (r >= 0 && n >= INSERT_ROWS)
		r = insert_prep(s, INSERT_ROWS, &many);
	for (size_t i = 0; r >= 0 && i < n;) {
		size_t m = quiet_run(recs + i, n - i) >= INSERT_ROWS ? INSERT_ROWS : 1;
		sqlite3_stmt *st = m == 1 ? one : many;
		int64_t last;

		for (size_t j = 0; j < m; j++)
			insert_bind(st, (int)(j * INSERT_COLS) + 1, &recs[i + j], ids[j]);
		r = sq_done(s, st);
		last = sqlite3_last_insert_rowid(s->db);
		for (size_t j = 0; j < m; j++)
			recs[i + j].seq = r >= 0 ? last - (int64_t)(m - 1 - j) : 0;
		sqlite3_reset(st);
		i += m;
		if (s->pause && i / s->pause_every != (i - m) / s->pause_every)
			s->pause();
	}
	return sq_end(s, r, NULL);
}

void
store_records_pause(struct store *s, void (*pause)(void), unsigned every)
{
	s->pause = every ? pause : NULL;
	s->pause_every = every;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid.
 * The same rules as jansson's: no overlong forms, no surrogates, nothing
 * past U+10FFFF. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0], len, min;
	uint32_t v;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, v = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, v = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, v = c & 0x07, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	for (unsigned i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	return len;
}

/* Handler bytes as a JSON string, invalid UTF-8 replaced by U+FFFD. */
static json_t *
lossy_string(const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;
	char *buf, *o;
	json_t *j;

	if (len > SIZE_MAX / 3)
		return NULL;
	buf = malloc(len * 3 + 1);
	if (!buf)
		return NULL;
	o = buf;
	for (size_t i = 0; i < len;) {
		size_t k = utf8_seq(p + i, len - i);

		if (k) {
			memcpy(o, p + i, k);
			o += k;
			i += k;
		} else {
			static const char fffd[3] = { '\xef', '\xbf', '\xbd' };

			memcpy(o, fffd, sizeof(fffd));
			o += sizeof(fffd);
			i++;
		}
	}
	j = json_stringn(buf, (size_t)(o - buf));
	free(buf);
	return j;
}

static json_t *
column_lossy(sqlite3_stmt *st, int i)
{
	const void *b = sqlite3_column_blob(st, i);

	if (!b)
		return json_string("");
	return lossy_string(b, (size_t)sqlite3_column_bytes(st, i));
}

static json_t *
record_json(sqlite3_stmt *st, const char *tenant)
{
	json_t *err = json_null();
	char id[37];

	if (sqlite3_column_type(st, 17) != SQLITE_NULL)
		err = json_pack("{s:s, s:s}", "code", sq_text(st, 17), "message", sq_text(st, 18));
	return json_pack(
		"{s:s, s:s, s:s, s:I, s:o, s:s, s:o, s:I, s:f, s:f, s:I, s:s, s:i, s:b, s:I, s:I, "
		"s:I, s:I, s:o, s:{s:b, s:b}, s:I}",
		"id", sq_uuid(st, 1, id), "tenant", tenant, "function", sq_text(st, 2), "version",
		(json_int_t)sqlite3_column_int64(st, 3), "alias",
		sqlite3_column_type(st, 4) == SQLITE_NULL ? json_null()
							  : json_string(sq_text(st, 4)),
		"trigger", sq_text(st, 5), "started_at",
		sq_time(sqlite3_column_int64(st, 6) / 1000), "started_us",
		(json_int_t)sqlite3_column_int64(st, 6), "duration_ms",
		(double)sqlite3_column_int64(st, 7) / 1000.0, "init_ms",
		(double)sqlite3_column_int64(st, 8) / 1000.0, "billed_ms",
		(json_int_t)sqlite3_column_int64(st, 9), "status", sq_text(st, 10), "http_status",
		sqlite3_column_int(st, 11), "cold", sqlite3_column_int(st, 12) != 0, "mem_peak_kb",
		(json_int_t)sqlite3_column_int64(st, 13), "mem_limit_mb",
		(json_int_t)sqlite3_column_int64(st, 14), "request_bytes",
		(json_int_t)sqlite3_column_int64(st, 15), "response_bytes",
		(json_int_t)sqlite3_column_int64(st, 16), "error", err, "truncated", "stdout",
		(sqlite3_column_int(st, 19) & 1) != 0, "stderr",
		(sqlite3_column_int(st, 19) & 2) != 0, "seq",
		(json_int_t)sqlite3_column_int64(st, 0));
}

int
store_records_list(struct store *s, int64_t tenant_id, const char *tenant,
		   const struct store_record_filter *f, json_t **out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *arr, *last = NULL;
	unsigned limit = f->limit ? f->limit : 50, n = 0;
	int64_t cur_start = INT64_MAX, cur_seq = INT64_MAX;
	int r, rc, k = 1;

	if (f->before_seq) {
		/* The cursor is the last record's seq; the page after it
		 * starts below that record's (started_us, seq). */
		r = sq_prep(s, "SELECT started_us FROM invocations WHERE seq = ? AND tenant_id = ?",
			    &st);
		if (r < 0)
			return r;
		sqlite3_bind_int64(st, 1, f->before_seq);
		sqlite3_bind_int64(st, 2, tenant_id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			cur_start = sqlite3_column_int64(st, 0);
			cur_seq = f->before_seq;
		} else if (rc == SQLITE_DONE) {
			/* Pruned since (or never this tenant's): nothing older
			 * is left to page through. */
			*out = json_pack("{s:[], s:n}", "invocations", "next_cursor");
			return *out ? 0 : -ENOMEM;
		} else
			return sq_err(s, rc);
		sqlite3_finalize(st);
		st = NULL;
	}
	/* Newest first by start, seq breaking ties: the order of the index
	 * (tenant_id, started_us) and its rowid, so the range and the
	 * cursor are index bounds and nothing is sorted. */
	r = sq_prep(s,
		    "SELECT " RECORD_COLS " FROM invocations WHERE tenant_id = ?1 "
		    "AND started_us >= ?6 AND started_us < ?7 AND (started_us, seq) < (?8, ?9) "
		    "AND (?2 IS NULL OR function = ?2) AND (?3 = 0 OR version = ?3) "
		    "AND (?4 IS NULL OR status = ?4) AND (?5 < 0 OR cold = ?5) "
		    "ORDER BY started_us DESC, seq DESC LIMIT ?10",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, k++, tenant_id);
	sqlite3_bind_text(st, k++, f->function, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, k++, f->version);
	sqlite3_bind_text(st, k++, f->status, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, k++, f->cold);
	sqlite3_bind_int64(st, k++, f->since_us);
	sqlite3_bind_int64(st, k++, f->until_us ? f->until_us : INT64_MAX);
	sqlite3_bind_int64(st, k++, cur_start);
	sqlite3_bind_int64(st, k++, cur_seq);
	sqlite3_bind_int(st, k++, (int)limit + 1); /* one more: is there a next page? */
	arr = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *j;

		if (++n > limit)
			break;
		j = record_json(st, tenant);
		if (!j || json_array_append_new(arr, j) < 0) {
			json_decref(arr);
			return -ENOMEM;
		}
		last = j;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		json_decref(arr);
		return sq_err(s, rc);
	}
	*out = json_pack("{s:o, s:o}", "invocations", arr, "next_cursor",
			 n > limit && last ? json_copy(json_object_get(last, "seq")) : json_null());
	return *out ? 0 : -ENOMEM;
}

int
store_record_get(struct store *s, int64_t tenant_id, const char *tenant, const char *id,
		 json_t **out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *j;
	uint8_t idb[16];
	bool v7;
	int r, rc;

	if (uuid_parse(id, idb) < 0)
		return -ENOENT; /* every id is a UUID */
	/* A UUIDv7 carries the millisecond its invocation started:
	 * started_us is in it (one clock reading since schema 006) or the next
	 * (two readings, before).  Ids of faasd before UUIDv7 say nothing of
	 * time: for those (only), a walk of the tenant's records. */
	v7 = idb[6] >> 4 == 7;
	r = sq_prep(s,
		    v7 ? "SELECT " RECORD_COLS ", stdout, stderr FROM invocations "
			 "WHERE tenant_id = ?1 AND started_us >= ?3 AND started_us < ?4 "
			 "AND id = ?2"
		       : "SELECT " RECORD_COLS ", stdout, stderr FROM invocations "
			 "WHERE tenant_id = ?1 AND id = ?2",
		    &st);
	if (r < 0)
		return r;
	if (v7) {
		int64_t ms = 0;

		for (int i = 0; i < 6; i++)
			ms = ms << 8 | idb[i];
		sqlite3_bind_int64(st, 3, ms * 1000);
		sqlite3_bind_int64(st, 4, ms * 1000 + 2000);
	}
	sqlite3_bind_int64(st, 1, tenant_id);
	sqlite3_bind_blob(st, 2, idb, 16, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	j = record_json(st, tenant);
	if (!j)
		return -ENOMEM;
	json_object_set_new(j, "logs",
			    json_pack("{s:o, s:o}", "stdout", column_lossy(st, RECORD_NCOLS),
				      "stderr", column_lossy(st, RECORD_NCOLS + 1)));
	*out = j;
	return 0;
}

int
store_log_lines(json_t *lines, int64_t seq, const char *id, int64_t version, int64_t started_us,
		const char *stream, const char *text, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - text) : len;
		json_t *l = json_pack("{s:I, s:s, s:I, s:o, s:s, s:o}", "seq", (json_int_t)seq,
				      "invocation_id", id, "version", (json_int_t)version, "time",
				      sq_time(started_us / 1000), "stream", stream, "text",
				      lossy_string(text + i, end - i));

		if (!l || json_array_append_new(lines, l) < 0)
			return -ENOMEM;
		i = end + 1;
	}
	return 0;
}

int
store_records_logs(struct store *s, int64_t tenant_id, const char *fn, int64_t after_seq,
		   int64_t since_us, unsigned limit, json_t **out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *lines;
	int64_t cursor = after_seq;
	int r, rc;

	r = sq_prep(s,
		    "SELECT seq, id, version, started_us, stdout, stderr FROM invocations "
		    "WHERE tenant_id = ? AND function = ? AND seq > ? AND started_us >= ? "
		    "AND (stdout IS NOT NULL OR stderr IS NOT NULL) ORDER BY seq LIMIT ?",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, tenant_id);
	sqlite3_bind_text(st, 2, fn, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, after_seq);
	sqlite3_bind_int64(st, 4, since_us);
	sqlite3_bind_int(st, 5, (int)(limit ? limit : 100));
	lines = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0), v = sqlite3_column_int64(st, 2),
			t = sqlite3_column_int64(st, 3);
		char idt[37];
		const char *id = sq_uuid(st, 1, idt);

		for (int c = 4; c <= 5; c++) {
			const void *b = sqlite3_column_blob(st, c);

			if (b && store_log_lines(lines, seq, id, v, t, c == 4 ? "stdout" : "stderr",
						 b, (size_t)sqlite3_column_bytes(st, c)) < 0) {
				json_decref(lines);
				return -ENOMEM;
			}
		}
		cursor = seq;
	}
	if (rc != SQLITE_DONE) {
		json_decref(lines);
		return sq_err(s, rc);
	}
	*out = json_pack("{s:o, s:I}", "lines", lines, "cursor", (json_int_t)cursor);
	return *out ? 0 : -ENOMEM;
}

int
store_records_prune(struct store *s, int64_t before_us, unsigned batch)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	/* A bounded batch per call: each is a short transaction, so writers
	 * between batches never wait long.  The candidates are the oldest
	 * batch records by seq (the order of writing; no index on started_us
	 * to keep up): those started before before_us go.  A record written
	 * late (a long invocation) after one that is kept waits for the next
	 * prune, at most timeout_s (900 s) behind its time. */
	r = sq_prep(s,
		    "DELETE FROM invocations WHERE seq IN (SELECT seq FROM (SELECT seq, "
		    "started_us FROM invocations ORDER BY seq LIMIT ?) WHERE started_us < ?)",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int(st, 1, (int)batch);
	sqlite3_bind_int64(st, 2, before_us);
	r = sq_done(s, st);
	return r < 0 ? r : sqlite3_changes(s->db);
}
