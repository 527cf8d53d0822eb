/*
 * names.c - validation of tenant, function, alias and secret names.
 * INVARIANT: a valid name contains only [a-z0-9-], so it is safe as a path
 * component and inside SQL/log text without quoting.
 */
#include "names.h"

#include <string.h>

#include "util.h"

bool
name_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (const char *p = s; *p; p++, n++) {
		if (n >= NAME_MAX_LEN)
			return false;
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	}
	return true;
}

bool
alias_name_valid(const char *s)
{
	if (!name_valid(s))
		return false;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return true;
	return false;
}

bool
name_check(const char *what, const char *s, char *diag, size_t n)
{
	size_t len;

	if (name_valid(s))
		return true;
	len = s ? strlen(s) : 0;
	if (len == 0)
		(void)str_printf(diag, n, "%s name is empty", what);
	else if (len > NAME_MAX_LEN)
		(void)str_printf(diag, n, "%s name is %zu characters long; at most %d are allowed",
				 what, len, NAME_MAX_LEN);
	else
		(void)str_printf(
			diag, n,
			"%s name must match [a-z0-9][a-z0-9-]{0,62} "
			"(lowercase letters, digits and '-', starting with a letter or digit)",
			what);
	return false;
}
