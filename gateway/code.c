/*
 * code.c - code archives over HTTP: HEAD/PUT /v1/tenants/{t}/code/{sha256}.
 *
 * The gateway streams an upload to a temporary file while hashing it, checks
 * the digest named in the URL, then unpacks the gzip tar with libarchive into
 * STATE/code/{tenant}/{sha256}/ (through a temporary directory and a rename,
 * so a half-unpacked tree is never visible), and records it in the store.
 * The gateway's working directory is the state directory, so every path here
 * is relative to it.
 *
 * The unpacking rules themselves live in unpack.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw.h"
#include "log.h"
#include "util.h"

static void
code_dir(const struct req *q, char *buf, size_t n)
{
	(void)str_printf(buf, n, "code/%s/%s", q->route.tenant, q->route.sub);
}

enum MHD_Result
code_begin(struct req *q, const char *method)
{
	struct gw *g = q->gw;
	struct store_tenant t;
	int r;

	r = store_tenant_get(g->store, q->route.tenant, &t);
	if (r < 0)
		return gw_errno(q, r, "tenant '%s' not found", q->route.tenant);
	if (strcmp(method, "HEAD") == 0 || strcmp(method, "GET") == 0) {
		r = store_code_exists(g->store, t.id, q->route.sub);
		if (r < 0)
			return gw_errno(q, r, "code sha256:%s is not uploaded", q->route.sub);
		return gw_json(q, 200, json_pack("{s:s}", "sha256", q->route.sub));
	}
	/* PUT: open the temporary file the upload streams into. */
	(void)str_printf(q->tmp_path, sizeof(q->tmp_path), "tmp/upload-XXXXXX");
	q->body_fd = mkostemp(q->tmp_path, O_CLOEXEC);
	if (q->body_fd < 0) {
		log_err("cannot create upload file in tmp/: %s", strerror(errno));
		q->tmp_path[0] = 0;
		return gw_errno(q, -EIO, "cannot store the upload");
	}
	q->md = EVP_MD_CTX_new();
	if (!q->md || EVP_DigestInit_ex(q->md, EVP_sha256(), NULL) != 1)
		return gw_errno(q, -ENOMEM, "out of memory");
	return MHD_YES;
}

int
code_upload_chunk(struct req *q, const char *data, size_t len)
{
	int r;

	if (EVP_DigestUpdate(q->md, data, len) != 1)
		return -EIO;
	r = write_full(q->body_fd, data, len);
	return r;
}

enum MHD_Result
code_finish(struct req *q)
{
	struct gw *g = q->gw;
	uint8_t digest[32];
	char hex[65], dir[160], tmpdir[200], diag[320], parent[100];
	struct code_limits lim = { g->cfg.max_unpacked_bytes, g->cfg.max_code_files };
	struct code_stats st;
	struct store_tenant t;
	unsigned dlen = 0;
	uint8_t rnd[6];
	char rhex[13];
	int r;

	if (EVP_DigestFinal_ex(q->md, digest, &dlen) != 1)
		return gw_errno(q, -EIO, "digest failed");
	hex_encode(digest, 32, hex);
	if (strcmp(hex, q->route.sub) != 0)
		return gw_error(q, 400, "digest_mismatch",
				"uploaded bytes have sha256 %s, not %s as the URL says", hex,
				q->route.sub);
	r = store_tenant_get(g->store, q->route.tenant, &t);
	if (r < 0)
		return gw_errno(q, r, "tenant '%s' not found", q->route.tenant);
	if (store_code_exists(g->store, t.id, hex) == 0)
		return gw_json(q, 200, json_pack("{s:s, s:b}", "sha256", hex, "created", 0));
	(void)str_printf(parent, sizeof(parent), "code/%s", q->route.tenant);
	if (mkdir(parent, 0755) < 0 && errno != EEXIST)
		return gw_errno(q, -errno, "cannot create code directory");
	code_dir(q, dir, sizeof(dir));
	(void)random_bytes(rnd, sizeof(rnd));
	hex_encode(rnd, sizeof(rnd), rhex);
	(void)str_printf(tmpdir, sizeof(tmpdir), "%s.tmp-%s", dir, rhex);
	r = code_unpack(q->body_fd, tmpdir, &lim, &st, diag, sizeof(diag));
	if (r == -EFBIG)
		return gw_error(q, 413, "archive_too_large", "%s", diag);
	if (r < 0)
		return gw_error(q, 422, "invalid_archive", "%s", diag);
	if (rename(tmpdir, dir) < 0) {
		r = -errno;
		(void)code_rmtree(tmpdir);
		/* Someone else unpacked the same digest meanwhile: fine. */
		if (r != -EEXIST && r != -ENOTEMPTY)
			return gw_errno(q, r, "cannot store code");
	}
	r = store_code_insert(g->store, t.id, hex, q->received, st.unpacked, st.files);
	if (r < 0) {
		log_err("store code %s/%s: %s", q->route.tenant, hex, store_errmsg(g->store));
		return gw_errno(q, r, "cannot record code");
	}
	log_info("code uploaded tenant=%s sha256=%s size=%llu unpacked=%llu files=%llu",
		 q->route.tenant, hex, (unsigned long long)q->received,
		 (unsigned long long)st.unpacked, (unsigned long long)st.files);
	return gw_json(q, 201,
		       json_pack("{s:s, s:I, s:I, s:I, s:b}", "sha256", hex, "size",
				 (json_int_t)q->received, "unpacked_size", (json_int_t)st.unpacked,
				 "files", (json_int_t)st.files, "created", 1));
}
