/* Fuzz target: URL paths through the gateway's router. */
#include <stdlib.h>
#include <string.h>

#include "gw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = malloc(size + 1), diag[256];
	struct route r;

	memcpy(path, data, size);
	path[size] = 0;
	(void)route_parse(path, &r, diag, sizeof(diag));
	free(path);
	return 0;
}
