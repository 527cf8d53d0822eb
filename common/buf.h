/*
 * buf.h - a growable byte buffer, always NUL-terminated (faasctl's bodies
 * and archives, the gateway's request heads and answers).
 */
#ifndef FAASD_BUF_H
#define FAASD_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len, cap;
	bool err; /* an append failed: the ones after it do nothing */
};

/* Append n bytes (or the string s).  0, or -ENOMEM, then and after. */
int buf_append(struct buf *b, const void *data, size_t n);
int buf_str(struct buf *b, const char *s);
void buf_free(struct buf *b);

#endif
