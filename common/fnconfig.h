/*
 * fnconfig.h - validation of a function's config (SPEC §4), shared by the
 * gateway (PUT …/functions/{f}) and faasctl (faas.json + flags).
 *
 * The validator checks every key, type and range, names the offending key in
 * its diagnostic, fills defaults and returns the canonical config object that
 * a version stores.  Two configs are the same version config when their
 * canonical JSON (sorted keys, compact) is byte-identical.
 */
#ifndef FAASD_FNCONFIG_H
#define FAASD_FNCONFIG_H

#include <jansson.h>
#include <stddef.h>

#define FNCONFIG_ENV_MAX_BYTES 4096
#define FNCONFIG_DIAG          256

enum fnconfig_mode {
	FNCONFIG_MANIFEST, /* faas.json: "name" and "ignore" allowed, no "code" */
	FNCONFIG_API,      /* PUT body: "name" and "code" allowed, no "ignore" */
};

/*
 * fnconfig_validate - check in against SPEC §4.  On success returns 0 and a
 * new reference to the canonical config in *out (defaults filled; without
 * name, code and ignore).  On failure returns -EINVAL and fills diag.
 */
int fnconfig_validate(json_t *in, enum fnconfig_mode mode, json_t **out, char *diag, size_t n);

/* Map a runtime name to enum msg_runtime; 0 when unknown. */
int fnconfig_runtime(const char *name);

#endif
