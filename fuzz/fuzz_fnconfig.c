/* Fuzz target: JSON bodies and manifests through the function config rules. */
#include <stdint.h>

#include "fnconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *in = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL),
	       *out = NULL;
	char diag[FNCONFIG_DIAG];

	if (!in)
		return 0;
	if (fnconfig_validate(in, FNCONFIG_API, &out, diag, sizeof(diag)) == 0)
		json_decref(out);
	if (fnconfig_validate(in, FNCONFIG_MANIFEST, &out, diag, sizeof(diag)) == 0)
		json_decref(out);
	json_decref(in);
	return 0;
}
