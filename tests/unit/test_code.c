/* Unit tests of gateway/code.c: unpacking hostile archives safely. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw.h"
#include "tap.h"

struct ent {
	const char *name;
	mode_t type;
	mode_t perm;
	const char *data;  /* file data, or link target */
	int64_t fake_size; /* declared size when data is NULL */
};

/* Write entries as a gzip tar into a new temp file; returns its fd. */
static int
make_tar(const struct ent *e, size_t n)
{
	char path[] = "/tmp/faasd-tar-XXXXXX";
	int fd = mkstemp(path);
	struct archive *a = archive_write_new();

	unlink(path);
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_gzip(a);
	archive_write_open_fd(a, fd);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *x = archive_entry_new();

		archive_entry_set_pathname(x, e[i].name);
		archive_entry_set_filetype(x, e[i].type);
		archive_entry_set_perm(x, e[i].perm);
		if (e[i].type == AE_IFLNK)
			archive_entry_set_symlink(x, e[i].data);
		else if (e[i].type == 0) {
			archive_entry_set_filetype(x, AE_IFREG);
			archive_entry_set_hardlink(x, e[i].data);
		} else if (e[i].type == AE_IFREG)
			archive_entry_set_size(x, e[i].data ? (int64_t)strlen(e[i].data)
							    : e[i].fake_size);
		archive_write_header(a, x);
		if (e[i].type == AE_IFREG && e[i].data)
			archive_write_data(a, e[i].data, strlen(e[i].data));
		else if (e[i].type == AE_IFREG && e[i].fake_size > 0) {
			static char zeros[65536];
			int64_t left = e[i].fake_size;

			while (left > 0) {
				size_t c = left > (int64_t)sizeof(zeros) ? sizeof(zeros)
									 : (size_t)left;

				archive_write_data(a, zeros, c);
				left -= (int64_t)c;
			}
		}
		archive_entry_free(x);
	}
	archive_write_close(a);
	archive_write_free(a);
	return fd;
}

static char base[] = "/tmp/faasd-code-XXXXXX";
static int counter;

static int
unpack(const struct ent *e, size_t n, const struct code_limits *lim, char *diag, char *dest)
{
	struct code_stats st;
	int fd = make_tar(e, n), r;

	snprintf(dest, 256, "t%d", counter++);
	r = code_unpack(fd, dest, lim, &st, diag, 320);
	close(fd);
	return r;
}

static bool
exists(const char *dest, const char *rel)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dest, rel);
	return lstat(p, &st) == 0;
}

int
main(void)
{
	struct code_limits lim = { 1 << 20, 100 };
	char diag[320], dest[256], p[512];
	struct stat st;

	mkdtemp(base);
	/* code_unpack takes a path relative to the working directory, as
	 * the gateway runs inside its state directory. */
	if (chdir(base) < 0)
		abort();
	{
		struct ent ok_tree[] = {
			{ "./", AE_IFDIR, 0755, NULL, 0 },
			{ "handler.sh", AE_IFREG, 0700, "#!/bin/sh\n", 0 },
			{ "lib/", AE_IFDIR, 0700, NULL, 0 },
			{ "lib/data", AE_IFREG, 0600, "x", 0 },
			{ "lib/link", AE_IFLNK, 0777, "data", 0 },
			{ "up", AE_IFLNK, 0777, "lib/../handler.sh", 0 },
			{ "hard", 0, 0644, "lib/data", 0 },
		};

		is_int(unpack(ok_tree, 7, &lim, diag, dest), 0, "good archive unpacks: %s", diag);
		snprintf(p, sizeof(p), "%s/handler.sh", dest);
		stat(p, &st);
		is_int(st.st_mode & 07777, 0755, "executable made 0755");
		snprintf(p, sizeof(p), "%s/lib/data", dest);
		stat(p, &st);
		is_int(st.st_mode & 07777, 0644, "data made 0644");
		ok(exists(dest, "lib/link") && exists(dest, "hard"), "links inside the tree kept");
	}
	{
		struct ent e[] = { { "../evil", AE_IFREG, 0644, "x", 0 } };

		is_int(unpack(e, 1, &lim, diag, dest), -EBADMSG, "../ refused");
		ok(!exists(dest, "") && access("/tmp/evil", F_OK) != 0, "nothing written");
	}
	{
		struct ent e[] = { { "a/../../evil", AE_IFREG, 0644, "x", 0 } };

		is_int(unpack(e, 1, &lim, diag, dest), -EBADMSG, "nested .. refused");
	}
	{
		struct ent e[] = { { "/etc/evil", AE_IFREG, 0644, "x", 0 } };

		is_int(unpack(e, 1, &lim, diag, dest), -EBADMSG, "absolute path refused");
		ok(strstr(diag, "/etc/evil") != NULL, "diag names the entry: %s", diag);
	}
	{
		struct ent e[] = { { "esc", AE_IFLNK, 0777, "../../etc/passwd", 0 } };

		is_int(unpack(e, 1, &lim, diag, dest), -EBADMSG, "escaping symlink refused");
	}
	{
		struct ent e[] = { { "abs", AE_IFLNK, 0777, "/etc/passwd", 0 } };

		is_int(unpack(e, 1, &lim, diag, dest), -EBADMSG, "absolute symlink refused");
	}
	{
		struct ent e[] = { { "d", AE_IFLNK, 0777, ".", 0 },
				   { "d/x", AE_IFREG, 0644, "x", 0 } };

		is_int(unpack(e, 2, &lim, diag, dest) < 0, 1, "writing through a symlink refused");
	}
	{
		struct ent e[] = { { "h", 0, 0644, "../../etc/passwd", 0 } };

		is_int(unpack(e, 1, &lim, diag, dest), -EBADMSG, "escaping hard link refused");
	}
	{
		struct ent e[] = { { "null", AE_IFCHR, 0644, NULL, 0 } };

		is_int(unpack(e, 1, &lim, diag, dest), -EBADMSG, "device node refused");
	}
	{
		struct ent e[] = { { "fifo", AE_IFIFO, 0644, NULL, 0 } };

		is_int(unpack(e, 1, &lim, diag, dest), -EBADMSG, "FIFO refused");
	}
	{
		struct ent e[] = { { "suid", AE_IFREG, 04755, "x", 0 } };

		is_int(unpack(e, 1, &lim, diag, dest), -EBADMSG, "setuid refused");
		ok(strstr(diag, "setuid") != NULL, "diag: %s", diag);
	}
	{
		struct ent e[] = { { "big", AE_IFREG, 0644, NULL, 2 << 20 } };

		is_int(unpack(e, 1, &lim, diag, dest), -EFBIG, "tar bomb over the unpacked limit");
		ok(!exists(dest, ""), "partial tree removed");
	}
	{
		struct ent e[120];
		char names[120][16];

		for (int i = 0; i < 120; i++) {
			snprintf(names[i], sizeof(names[i]), "f%d", i);
			e[i] = (struct ent){ names[i], AE_IFREG, 0644, "x", 0 };
		}
		is_int(unpack(e, 120, &lim, diag, dest), -EFBIG, "too many files");
	}
	{
		char path[] = "/tmp/faasd-notar-XXXXXX";
		int fd = mkstemp(path);
		struct code_stats st2;

		unlink(path);
		if (write(fd, "this is not gzip", 16) < 0)
			abort();
		snprintf(dest, 256, "garbage");
		is_int(code_unpack(fd, dest, &lim, &st2, diag, sizeof(diag)), -EBADMSG,
		       "garbage refused");
		close(fd);
	}
	snprintf(p, sizeof(p), "%s", base);
	is_int(code_rmtree(p), 0, "rmtree");
	ok(access(p, F_OK) != 0, "tree removed");
	return done();
}
