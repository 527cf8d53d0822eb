/*
 * unpack.c - unpack an uploaded code archive (gzip tar) with libarchive into
 * a new directory, refusing anything that could escape it.  Pure library
 * code for the gateway's code upload: no HTTP, no logging.
 *
 * INVARIANT: nothing an archive says can place a file outside its own tree
 * or create a device, FIFO, setuid/setgid file or a link that leaves the
 * tree; sizes and file counts are bounded before any byte is written.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw.h"
#include "util.h"

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
	       const struct code_limits *lim, struct code_stats *st, char *diag, size_t n)
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
			(void)str_printf(
				diag, n,
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
			(void)str_printf(diag, n, "archive entry '%.200s' is a sparse file", clean);
			return -EBADMSG;
		}
		if (hl) {
			char hclean[1024];

			if (clean_path(hl, hclean, sizeof(hclean)) != 0) {
				(void)str_printf(
					diag, n,
					"archive entry '%.200s' is a hard link that leaves the tree",
					clean);
				return -EBADMSG;
			}
			(void)str_printf(full, sizeof(full), "%s/%s", dest, hclean);
			archive_entry_set_hardlink(e, full);
		} else if (type == AE_IFLNK) {
			const char *target = archive_entry_symlink(e);

			if (!target || !symlink_inside(clean, target)) {
				(void)str_printf(
					diag, n,
					"archive entry '%.200s' is a symbolic link that leaves the tree",
					clean);
				return -EBADMSG;
			}
		} else if (type == AE_IFREG) {
			int64_t size = archive_entry_size(e);

			if (size < 0 ||
			    (uint64_t)size >
				    lim->max_unpacked - MIN(st->unpacked, lim->max_unpacked)) {
				(void)str_printf(diag, n, "archive unpacks to more than %llu bytes",
						 (unsigned long long)lim->max_unpacked);
				return -EFBIG;
			}
			st->unpacked += (uint64_t)size;
			archive_entry_set_perm(e, (perm & 0111) ? 0755 : 0644);
		} else if (type == AE_IFDIR) {
			archive_entry_set_perm(e, 0755);
		} else {
			(void)str_printf(
				diag, n,
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
				(void)str_printf(diag, n,
						 "archive data of '%.200s' is corrupt: %.200s",
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
code_unpack(int fd, const char *dest, const struct code_limits *lim, struct code_stats *st,
	    char *diag, size_t n)
{
	__attribute__((cleanup(archive_readp))) struct archive *in = archive_read_new();
	__attribute__((cleanup(archive_writep))) struct archive *out = archive_write_disk_new();
	int r;

	memset(st, 0, sizeof(*st));
	if (!in || !out)
		return -ENOMEM;
	archive_read_support_filter_gzip(in);
	archive_read_support_format_tar(in);
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
						    ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						    ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
						    ARCHIVE_EXTRACT_NO_OVERWRITE);
	if (mkdir(dest, 0755) < 0) {
		(void)str_printf(diag, n, "cannot create %s: %s", dest, strerror(errno));
		return -errno;
	}
	if (lseek(fd, 0, SEEK_SET) < 0 || archive_read_open_fd(in, fd, 64 * 1024) != ARCHIVE_OK) {
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
