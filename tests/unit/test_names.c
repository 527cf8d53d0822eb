/* Unit tests of common/names.c: SPEC §1 naming rules. */
#include "names.h"
#include "tap.h"

int
main(void)
{
	char diag[256];
	char long63[64], long64[65];

	memset(long63, 'a', 63);
	long63[63] = 0;
	memset(long64, 'a', 64);
	long64[64] = 0;
	ok(name_valid("acme"), "plain name");
	ok(name_valid("a"), "one char");
	ok(name_valid("0x-1"), "digits and dash");
	ok(name_valid(long63), "63 chars");
	ok(!name_valid(long64), "64 chars refused");
	ok(!name_valid(""), "empty refused");
	ok(!name_valid("-a"), "leading dash refused");
	ok(!name_valid("Acme"), "uppercase refused");
	ok(!name_valid(".."), "dot-dot refused");
	ok(!name_valid("a/b"), "slash refused");
	ok(!name_valid("a b"), "space refused");
	ok(!name_valid("caf\xc3\xa9"), "unicode refused");
	ok(!name_valid("%2e%2e"), "percent refused");
	ok(!name_valid(NULL), "NULL refused");
	ok(alias_name_valid("live"), "alias live");
	ok(alias_name_valid("v2"), "alias v2");
	ok(!alias_name_valid("12"), "all-digit alias refused");
	ok(!name_check("tenant", long64, diag, sizeof(diag)), "name_check fails long");
	ok(strstr(diag, "64 characters") != NULL, "diag says how long: %s", diag);
	ok(!name_check("function", "Bad", diag, sizeof(diag)), "name_check fails upper");
	ok(strstr(diag, "function name must match") != NULL, "diag names the kind: %s", diag);
	return done();
}
