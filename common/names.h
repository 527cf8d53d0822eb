/*
 * names.h - the naming rules of SPEC §1 for tenants, functions, aliases and
 * secrets, shared by the gateway (authoritative) and faasctl (early errors).
 * Pure functions, no state, no logging.
 */
#ifndef FAASD_NAMES_H
#define FAASD_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_LEN 63

/* [a-z0-9][a-z0-9-]{0,62}: tenant, function and secret names. */
bool name_valid(const char *s);

/* A function name rule that also is not all digits (digits mean a version). */
bool alias_name_valid(const char *s);

/*
 * name_explain - fill diag with why s is not a valid name ("what" names the
 * kind: "tenant", "function"…).  Returns false when s is invalid.
 */
bool name_check(const char *what, const char *s, char *diag, size_t n);

#endif
