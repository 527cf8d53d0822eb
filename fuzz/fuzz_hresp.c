/* Fuzz target: a hot handler's response through the head parser and the
 * chunked decoder, as the gateway reads it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hresp r;
	struct hchunk c = { 0 };
	char diag[160], *buf;

	if (size < 1)
		return 0;
	if (hresp_parse_head((const char *)data + 1, size - 1, data[0] & 1, &r, diag,
			     sizeof(diag)) != 1)
		return 0;
	if (r.head_len > size - 1 || r.nheaders > HRESP_MAX_HEADERS)
		__builtin_trap();
	for (unsigned i = 0; i < r.nheaders; i++)
		if (r.h[i].value_off + r.h[i].value_len > r.head_len)
			__builtin_trap();
	if (r.framing != HRESP_CHUNKED)
		return 0;
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1 + r.head_len, size - 1 - r.head_len);
	/* Feed it in two parts, as reads would. */
	(void)hchunk_decode(&c, buf, (size - 1 - r.head_len) / 2);
	if (hchunk_decode(&c, buf, size - 1 - r.head_len) >= 0 &&
	    (c.dec > c.raw || c.raw > size - 1 - r.head_len))
		__builtin_trap();
	free(buf);
	return 0;
}
