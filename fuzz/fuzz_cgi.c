/* Fuzz target: a handler's stdout through the CGI header parser. */
#include <stdint.h>

#include "gw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cgi_resp c;
	char diag[160];

	if (cgi_parse((const char *)data, size, &c, diag, sizeof(diag)) == 0 &&
	    c.body_offset > size)
		__builtin_trap();
	return 0;
}
