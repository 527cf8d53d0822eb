/* Fuzz target: a client's request head through the fast path's parser, on a
 * copy as fast.c parses it; every pointer it returns stays inside the head. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
inside(const char *p, const char *buf, size_t len)
{
	if (p < buf || p >= buf + len || strlen(p) >= len - (size_t)(p - buf))
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fast_head h;
	char *buf = malloc(size + 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	(void)fast_head_start(buf, size);
	if (fast_head_parse(buf, size, &h) == FAST_HEAD_OK) {
		if (h.head_len > size || h.head_len > FAST_HEAD_MAX ||
		    h.nheaders > FAST_MAX_HEADERS || strncmp(h.target, "/fn/", 4) != 0 ||
		    strlen(h.target) != h.target_len)
			__builtin_trap();
		inside(h.method, buf, h.head_len);
		inside(h.target, buf, h.head_len);
		for (unsigned i = 0; i < h.nheaders; i++) {
			inside(h.h[i].name, buf, h.head_len);
			inside(h.h[i].value, buf, h.head_len);
			if (strpbrk(h.h[i].value, "\r\n"))
				__builtin_trap();
		}
		if (!fast_head_get(&h, "host"))
			__builtin_trap();
	}
	free(buf);
	return 0;
}
