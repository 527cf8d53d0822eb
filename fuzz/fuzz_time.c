/* Fuzz target: time text of query parameters (since=, until=) through
 * time_parse; what it accepts is a time in the range it promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "timeparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const int64_t now = 1764750000000000LL; /* 2025-12-03, fixed */
	char *s = malloc(size + 1);
	int64_t t;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (time_parse(s, now, &t) == 0) {
		/* Durations reach back ten years from 2025 at most, and
		 * absolute times before 1970 are refused: nothing accepted is
		 * negative. */
		if (t < 0)
			__builtin_trap();
	}
	free(s);
	return 0;
}
