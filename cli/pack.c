/*
 * pack.c - faasctl's deterministic code archive: a gzip tar of a function
 * directory, honouring faas.json's "ignore" patterns.  Deterministic so that
 * the same tree always has the same sha256 and an unchanged deploy uploads
 * nothing: sorted entries, fixed owner and times, normalised modes, no gzip
 * timestamp or name.  Symbolic links are stored as links (the server
 * refuses ones that leave the tree); other special files are skipped.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

struct packer {
	struct archive *a;
	struct buf *out;
	json_t *ignore;
	uint64_t max;
	char *diag;
	size_t n;
	int err;
};

void
sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t d[32];

	SHA256(data, len, d);
	hex_encode(d, 32, out);
}

static bool
ignored(json_t *ignore, const char *rel)
{
	size_t i;
	json_t *p;

	json_array_foreach (ignore, i, p) {
		const char *pat = json_string_value(p);
		const char *c = rel;

		if (!pat)
			continue;
		if (fnmatch(pat, rel, FNM_PATHNAME) == 0 || fnmatch(pat, rel, 0) == 0)
			return true;
		/* A pattern also matches any leading path ("node_modules/.cache"
		 * ignores everything under it) and any single component. */
		for (;;) {
			const char *slash = strchr(c, '/');
			size_t plen = slash ? (size_t)(slash - rel) : strlen(rel);
			char prefix[4096], comp[256];
			size_t clen = slash ? (size_t)(slash - c) : strlen(c);

			if (plen < sizeof(prefix)) {
				memcpy(prefix, rel, plen);
				prefix[plen] = 0;
				if (fnmatch(pat, prefix, FNM_PATHNAME) == 0)
					return true;
			}
			if (!strchr(pat, '/') && clen < sizeof(comp)) {
				memcpy(comp, c, clen);
				comp[clen] = 0;
				if (fnmatch(pat, comp, 0) == 0)
					return true;
			}
			if (!slash)
				break;
			c = slash + 1;
		}
	}
	return false;
}

static la_ssize_t
on_write(struct archive *a, void *ud, const void *buf, size_t len)
{
	struct packer *p = ud;

	(void)a;
	if (p->out->len + len > p->max) {
		p->err = -EFBIG;
		return -1;
	}
	if (buf_append(p->out, buf, len) < 0) {
		p->err = -ENOMEM;
		return -1;
	}
	return (la_ssize_t)len;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
add_tree(struct packer *p, const char *root, const char *rel)
{
	char path[4096];
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t nn = 0, cap = 0;
	int r = 0;

	(void)str_printf(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel);
	d = opendir(path);
	if (!d) {
		(void)str_printf(p->diag, p->n, "cannot read %s: %s", path, strerror(errno));
		return -errno;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (nn == cap) {
			char **grown;

			cap = cap ? cap * 2 : 32;
			grown = realloc(names, cap * sizeof(*names));
			if (!grown) {
				r = -ENOMEM;
				break;
			}
			names = grown;
		}
		names[nn] = strdup(de->d_name);
		if (!names[nn]) {
			r = -ENOMEM;
			break;
		}
		nn++;
	}
	closedir(d);
	if (nn)
		qsort(names, nn, sizeof(*names), cmp_names);
	for (size_t i = 0; i < nn && r == 0; i++) {
		char child[4096], full[4096], target[4096];
		struct archive_entry *e;
		struct stat st;

		if (str_printf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", names[i]) <
			    0 ||
		    str_printf(full, sizeof(full), "%s/%s", root, child) < 0) {
			(void)str_printf(p->diag, p->n, "path too long under %s", root);
			r = -ENAMETOOLONG;
			break;
		}
		if (ignored(p->ignore, child))
			continue;
		if (lstat(full, &st) < 0) {
			r = -errno;
			(void)str_printf(p->diag, p->n, "cannot stat %s: %s", full,
					 strerror(errno));
			break;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
			continue;
		e = archive_entry_new();
		archive_entry_set_pathname(e, child);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		archive_entry_set_mtime(e, 0, 0);
		if (S_ISDIR(st.st_mode)) {
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, 0755);
		} else if (S_ISLNK(st.st_mode)) {
			ssize_t l = readlink(full, target, sizeof(target) - 1);

			if (l < 0) {
				archive_entry_free(e);
				continue;
			}
			target[l] = 0;
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_perm(e, 0777);
			archive_entry_set_symlink(e, target);
		} else {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, (st.st_mode & 0111) ? 0755 : 0644);
			archive_entry_set_size(e, st.st_size);
		}
		if (archive_write_header(p->a, e) != ARCHIVE_OK) {
			(void)str_printf(p->diag, p->n, "cannot pack %s: %s", child,
					 p->err == -EFBIG ? "archive too large"
							  : archive_error_string(p->a));
			r = p->err ? p->err : -EIO;
		} else if (S_ISREG(st.st_mode)) {
			int fd = open(full, O_RDONLY | O_CLOEXEC);
			char chunk[65536];
			ssize_t got;

			if (fd < 0) {
				r = -errno;
				(void)str_printf(p->diag, p->n, "cannot read %s: %s", full,
						 strerror(errno));
			}
			while (r == 0 && (got = read(fd, chunk, sizeof(chunk))) > 0)
				if (archive_write_data(p->a, chunk, (size_t)got) != got) {
					(void)str_printf(p->diag, p->n, "cannot pack %s: %s", child,
							 p->err == -EFBIG
								 ? "archive too large"
								 : archive_error_string(p->a));
					r = p->err ? p->err : -EIO;
				}
			if (fd >= 0)
				close(fd);
		}
		archive_entry_free(e);
		if (r == 0 && S_ISDIR(st.st_mode))
			r = add_tree(p, root, child);
	}
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	return r;
}

int
pack_dir(const char *dir, json_t *ignore, uint64_t max_bytes, struct buf *out, char *diag, size_t n)
{
	struct packer p = { .out = out, .ignore = ignore, .max = max_bytes, .diag = diag, .n = n };
	int r;

	p.a = archive_write_new();
	if (!p.a)
		return -ENOMEM;
	archive_write_set_format_pax_restricted(p.a);
	archive_write_add_filter_gzip(p.a);
	/* No timestamp in the gzip header: identical trees, identical bytes. */
	archive_write_set_filter_option(p.a, "gzip", "timestamp", NULL);
	archive_write_set_bytes_in_last_block(p.a, 1);
	if (archive_write_open(p.a, &p, NULL, on_write, NULL) != ARCHIVE_OK) {
		(void)str_printf(diag, n, "cannot start archive: %s", archive_error_string(p.a));
		archive_write_free(p.a);
		return -EIO;
	}
	r = add_tree(&p, dir, "");
	if (archive_write_close(p.a) != ARCHIVE_OK && r == 0) {
		r = p.err ? p.err : -EIO;
		(void)str_printf(diag, n, "cannot finish archive: %s",
				 p.err == -EFBIG ? "archive too large" : archive_error_string(p.a));
	}
	archive_write_free(p.a);
	return r;
}
