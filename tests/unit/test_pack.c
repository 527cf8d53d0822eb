/* Unit tests of cli/pack.c: deterministic archives and ignore patterns. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "tap.h"

static void
put(const char *dir, const char *rel, const char *text, mode_t mode)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (write(fd, text, strlen(text)) < 0)
		abort();
	close(fd);
	chmod(p, mode);
}

static int
has_entry(struct buf *b, const char *name, int *mode)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int found = 0;

	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	archive_read_open_memory(a, b->data, b->len);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK)
		if (strcmp(archive_entry_pathname(e), name) == 0) {
			found = 1;
			if (mode)
				*mode = (int)archive_entry_perm(e);
		}
	archive_read_free(a);
	return found;
}

int
main(void)
{
	char dir[] = "/tmp/faasd-pack-XXXXXX", p[512], diag[256], h1[65], h2[65];
	struct buf b1 = { 0 }, b2 = { 0 };
	json_t *ignore = json_pack("[s, s]", ".git", "*.log");
	int mode = 0;

	mkdtemp(dir);
	put(dir, "handler.sh", "#!/bin/sh\necho hi\n", 0700);
	put(dir, "data.txt", "data", 0600);
	put(dir, "debug.log", "noise", 0644);
	snprintf(p, sizeof(p), "%s/.git", dir);
	mkdir(p, 0755);
	put(dir, ".git/HEAD", "ref", 0644);
	snprintf(p, sizeof(p), "%s/sub", dir);
	mkdir(p, 0700);
	put(dir, "sub/x.txt", "x", 0644);

	is_int(pack_dir(dir, ignore, 1 << 20, &b1, diag, sizeof(diag)), 0, "pack");
	ok(has_entry(&b1, "handler.sh", &mode), "handler packed");
	is_int(mode, 0755, "executable normalised to 0755");
	ok(has_entry(&b1, "data.txt", &mode), "data packed");
	is_int(mode, 0644, "plain file normalised to 0644");
	ok(has_entry(&b1, "sub/x.txt", NULL), "subdirectory packed");
	ok(!has_entry(&b1, ".git/HEAD", NULL), ".git ignored");
	ok(!has_entry(&b1, "debug.log", NULL), "*.log ignored");
	sleep(1);
	put(dir, "data.txt", "data", 0600); /* same content, new mtime */
	is_int(pack_dir(dir, ignore, 1 << 20, &b2, diag, sizeof(diag)), 0, "pack again");
	sha256_hex(b1.data, b1.len, h1);
	sha256_hex(b2.data, b2.len, h2);
	is_str(h2, h1, "same tree, same digest (mtimes do not matter)");
	buf_free(&b2);
	put(dir, "data.txt", "DATA", 0600);
	pack_dir(dir, ignore, 1 << 20, &b2, diag, sizeof(diag));
	sha256_hex(b2.data, b2.len, h2);
	ok(strcmp(h1, h2) != 0, "changed content, new digest");
	buf_free(&b2);
	is_int(pack_dir(dir, ignore, 64, &b2, diag, sizeof(diag)) < 0, 1, "size limit enforced");
	ok(strstr(diag, "too large") != NULL, "limit diag: %s", diag);
	buf_free(&b1);
	buf_free(&b2);
	json_decref(ignore);
	snprintf(p, sizeof(p), "%s", dir);
	return done();
}
