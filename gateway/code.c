/*
 * code.c - code archives: HEAD/PUT /v1/tenants/{t}/code/{sha256}.
 *
 * The gateway streams an upload to a temporary file while hashing it, checks
 * the digest named in the URL, then unpacks the gzip tar with libarchive into
 * STATE/code/{tenant}/{sha256}/ (through a temporary directory and a rename,
 * so a half-unpacked tree is never visible), and records it in the store.
 * The gateway's working directory is the state directory, so every path here
 * is relative to it.
 *
 * INVARIANT: nothing an archive says can place a file outside its own tree
 * or create a device, FIFO, setuid/setgid file or a link that leaves the
 * tree; sizes and file counts are bounded before any byte is written.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw.h"
#include "log.h"
#include "util.h"

/* ---- unpacking ---- */

/*
 * Normalise an entry path: strip leading "./", reject absolute paths, empty
 * paths, "..", and control characters.  Writes the clean path to out and
 * returns its depth-checked form, or -EBADMSG.
 */
static int
clean_path(const char *in, char *out, size_t n)
{
	const char *p = in;
	size_t o = 0;

	if (!in || !*in)
		return -EBADMSG;
	if (in[0] == '/')
		return -EBADMSG;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return -EBADMSG;
		if (len > 0 && !(len == 1 && p[0] == '.')) {
			for (size_t i = 0; i < len; i++)
				if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
					return -EBADMSG;
			if (o + len + 2 > n)
				return -EBADMSG;
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		if (!e)
			break;
		p = e + 1;
	}
	if (o == 0)
		return 1; /* the root itself ("./") */
	out[o] = 0;
	return 0;
}

/* Does a symlink at entry path `path` with target `target` stay inside? */
static bool
symlink_inside(const char *path, const char *target)
{
	int depth = 0;
	const char *p;

	if (!*target || target[0] == '/')
		return false;
	/* Depth of the link's directory. */
	for (p = path; *p; p++)
		if (*p == '/')
			depth++;
	p = target;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return false;
		} else if (len > 0 && !(len == 1 && p[0] == '.'))
			depth++;
		if (!e)
			break;
		p = e + 1;
	}
	return true;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

int
code_rmtree(const char *path)
{
	if (nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

static void
archive_readp(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

static void
archive_writep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}

static int
unpack_entries(struct archive *in, struct archive *out, const char *dest,
	       const struct code_limits *lim, struct code_stats *st, char *diag,
	       size_t n)
{
	struct archive_entry *e;
	int rc;

	while ((rc = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		char clean[1024], full[1200];
		mode_t type = archive_entry_filetype(e), perm = archive_entry_perm(e);
		const char *hl = archive_entry_hardlink(e);
		int r;

		r = clean_path(name, clean, sizeof(clean));
		if (r < 0) {
			(void)str_printf(diag, n,
					 "archive entry '%.200s': absolute path, '..' or bad characters",
					 name ? name : "");
			return -EBADMSG;
		}
		if (r == 1)
			continue; /* "./" itself */
		if (++st->files > lim->max_files) {
			(void)str_printf(diag, n, "archive has more than %llu entries",
					 (unsigned long long)lim->max_files);
			return -EFBIG;
		}
		if (perm & (S_ISUID | S_ISGID)) {
			(void)str_printf(diag, n, "archive entry '%.200s' is setuid or setgid",
					 clean);
			return -EBADMSG;
		}
		if (archive_entry_sparse_count(e) > 0) {
			(void)str_printf(diag, n, "archive entry '%.200s' is a sparse file",
					 clean);
			return -EBADMSG;
		}
		if (hl) {
			char hclean[1024];

			if (clean_path(hl, hclean, sizeof(hclean)) != 0) {
				(void)str_printf(diag, n,
						 "archive entry '%.200s' is a hard link that leaves the tree",
						 clean);
				return -EBADMSG;
			}
			(void)str_printf(full, sizeof(full), "%s/%s", dest, hclean);
			archive_entry_set_hardlink(e, full);
		} else if (type == AE_IFLNK) {
			const char *target = archive_entry_symlink(e);

			if (!target || !symlink_inside(clean, target)) {
				(void)str_printf(diag, n,
						 "archive entry '%.200s' is a symbolic link that leaves the tree",
						 clean);
				return -EBADMSG;
			}
		} else if (type == AE_IFREG) {
			int64_t size = archive_entry_size(e);

			if (size < 0 || (uint64_t)size > lim->max_unpacked - MIN(st->unpacked, lim->max_unpacked)) {
				(void)str_printf(diag, n,
						 "archive unpacks to more than %llu bytes",
						 (unsigned long long)lim->max_unpacked);
				return -EFBIG;
			}
			st->unpacked += (uint64_t)size;
			archive_entry_set_perm(e, (perm & 0111) ? 0755 : 0644);
		} else if (type == AE_IFDIR) {
			archive_entry_set_perm(e, 0755);
		} else {
			(void)str_printf(diag, n,
					 "archive entry '%.200s' is a device, FIFO or socket; only files, directories and links are allowed",
					 clean);
			return -EBADMSG;
		}
		if (str_printf(full, sizeof(full), "%s/%s", dest, clean) < 0) {
			(void)str_printf(diag, n, "archive entry path too long");
			return -EBADMSG;
		}
		archive_entry_set_pathname(e, full);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		if (archive_write_header(out, e) != ARCHIVE_OK) {
			(void)str_printf(diag, n, "cannot unpack '%.200s': %.200s", clean,
					 archive_error_string(out));
			return -EBADMSG;
		}
		if (type == AE_IFREG && !hl && archive_entry_size(e) > 0) {
			const void *buf;
			size_t len;
			la_int64_t off;

			while ((r = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK) {
				if (archive_write_data_block(out, buf, len, off) != ARCHIVE_OK) {
					(void)str_printf(diag, n, "cannot write '%.200s': %.200s",
							 clean, archive_error_string(out));
					return -EIO;
				}
			}
			if (r != ARCHIVE_EOF) {
				(void)str_printf(diag, n, "archive data of '%.200s' is corrupt: %.200s",
						 clean, archive_error_string(in));
				return -EBADMSG;
			}
		}
		if (archive_write_finish_entry(out) != ARCHIVE_OK) {
			(void)str_printf(diag, n, "cannot finish '%.200s': %.200s", clean,
					 archive_error_string(out));
			return -EBADMSG;
		}
	}
	if (rc != ARCHIVE_EOF) {
		(void)str_printf(diag, n, "not a valid gzip tar archive: %.200s",
				 archive_error_string(in));
		return -EBADMSG;
	}
	return 0;
}

int
code_unpack(int fd, const char *dest, const struct code_limits *lim,
	    struct code_stats *st, char *diag, size_t n)
{
	__attribute__((cleanup(archive_readp))) struct archive *in = archive_read_new();
	__attribute__((cleanup(archive_writep))) struct archive *out = archive_write_disk_new();
	int r;

	memset(st, 0, sizeof(*st));
	if (!in || !out)
		return -ENOMEM;
	archive_read_support_filter_gzip(in);
	archive_read_support_format_tar(in);
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_PERM |
						    ARCHIVE_EXTRACT_SECURE_SYMLINKS |
						    ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						    ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
						    ARCHIVE_EXTRACT_NO_OVERWRITE);
	if (mkdir(dest, 0755) < 0) {
		(void)str_printf(diag, n, "cannot create %s: %s", dest, strerror(errno));
		return -errno;
	}
	if (lseek(fd, 0, SEEK_SET) < 0 ||
	    archive_read_open_fd(in, fd, 64 * 1024) != ARCHIVE_OK) {
		(void)str_printf(diag, n, "not a valid gzip tar archive: %.200s",
				 archive_error_string(in));
		r = -EBADMSG;
	} else {
		r = unpack_entries(in, out, dest, lim, st, diag, n);
		if (r == 0 && archive_write_close(out) != ARCHIVE_OK) {
			(void)str_printf(diag, n, "cannot finish unpacking: %.200s",
					 archive_error_string(out));
			r = -EIO;
		}
	}
	/* The root of the tree must be readable by handlers of any uid. */
	if (r == 0 && chmod(dest, 0755) < 0)
		r = -errno;
	if (r < 0)
		(void)code_rmtree(dest);
	return r;
}

/* ---- HTTP side ---- */

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
	q->body_limit = g->cfg.max_code_bytes;
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
				 (json_int_t)q->received, "unpacked_size",
				 (json_int_t)st.unpacked, "files", (json_int_t)st.files,
				 "created", 1));
}
