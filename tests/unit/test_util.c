/* Unit tests of common/util.c and common/errmap.c. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "errmap.h"
#include "tap.h"
#include "timeparse.h"
#include "util.h"

int
main(void)
{
	char buf[8];
	uint64_t v = 0;
	uint8_t bytes[4];

	is_int(str_copy(buf, sizeof(buf), "abc"), 0, "str_copy fits");
	is_str(buf, "abc", "str_copy copied");
	is_int(str_copy(buf, sizeof(buf), "abcdefghij"), -ENAMETOOLONG,
	       "str_copy reports truncation");
	is_str(buf, "abcdefg", "str_copy keeps a terminated prefix");
	is_int(str_printf(buf, sizeof(buf), "%d", 1234567), 7, "str_printf fits exactly");
	is_int(str_printf(buf, sizeof(buf), "%d", 12345678), -ENAMETOOLONG, "str_printf overflow");
	{
		char nb[32], ref[32];
		bool same = true;

		is_int(str_u64(nb, 0, 0), 1, "str_u64 0: one digit");
		is_str(nb, "0", "str_u64 0");
		str_u64(nb, UINT64_MAX, 0);
		is_str(nb, "18446744073709551615", "str_u64 of the largest value");
		is_int(str_u64(nb, 42, 13), 13, "str_u64 pads to its width");
		is_str(nb, "0000000000042", "str_u64 pads with zeros");
		str_u64(nb, 123456, 3);
		is_str(nb, "123456", "str_u64: a width below the digits cuts nothing");
		ok(us_since(10, 3) == 7, "us_since: the time since");
		ok(us_since(3, 10) == 0, "us_since: a stamp later than now is 0, not 2^64 - 7");
		is_int(str_ms3(nb, 5), 5, "str_ms3 length");
		is_str(nb, "0.005", "str_ms3 below a millisecond");
		str_ms3(nb, 1000000);
		is_str(nb, "1000.000", "str_ms3 whole milliseconds");
		/* As "%.3f" of us / 1000.0, which the headers printed before. */
		for (uint64_t us = 0; us < 3000000 && same; us += 997) {
			str_ms3(nb, us);
			snprintf(ref, sizeof(ref), "%.3f", (double)us / 1000.0);
			same = strcmp(nb, ref) == 0;
		}
		ok(same, "str_ms3 prints what %%.3f prints");
		str_ms3(nb, UINT64_MAX);
		is_str(nb, "18446744073709551.615", "str_ms3 of the largest value");
	}
	is_int(parse_u64("42", 0, 100, &v), 0, "parse_u64 ok");
	is_int(v, 42, "parse_u64 value");
	is_int(parse_u64("", 0, 100, &v), -EINVAL, "empty is invalid");
	is_int(parse_u64("-1", 0, 100, &v), -EINVAL, "sign is invalid");
	is_int(parse_u64("12a", 0, 100, &v), -EINVAL, "trailing garbage is invalid");
	is_int(parse_u64("101", 0, 100, &v), -ERANGE, "above max");
	is_int(parse_u64("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE, "overflow");
	is_int(hex_decode("00ff10ab", bytes, 4), 0, "hex_decode");
	ok(bytes[1] == 0xff && bytes[3] == 0xab, "hex_decode bytes");
	is_int(hex_decode("00ff10a", bytes, 4), -EINVAL, "short hex");
	is_int(hex_decode("00ff10abcd", bytes, 4), -EINVAL, "long hex");
	is_int(hex_decode("zzff10ab", bytes, 4), -EINVAL, "bad hex digit");
	hex_encode(bytes, 4, (char[9]){ 0 });
	{
		uint8_t u[16];
		char text[37];

		is_int(uuid_parse("01A23C4F-accc-759c-8cb9-a6a89cfb5424", u), 0, "uuid_parse");
		ok(u[0] == 0x01 && u[1] == 0xa2 && u[15] == 0x24, "uuid_parse bytes");
		uuid_format(u, text);
		is_str(text, "01a23c4f-accc-759c-8cb9-a6a89cfb5424", "uuid_format: lower case");
		is_int(uuid_parse("01a23c4f-accc-759c-8cb9-a6a89cfb542", u), -EINVAL, "short uuid");
		is_int(uuid_parse("01a23c4f-accc-759c-8cb9-a6a89cfb54245", u), -EINVAL,
		       "long uuid");
		is_int(uuid_parse("01a23c4f_accc-759c-8cb9-a6a89cfb5424", u), -EINVAL,
		       "uuid without its dash");
		is_int(uuid_parse("01a23c4f-accc-759c-8cb9-a6a89cfb54zz", u), -EINVAL,
		       "uuid with a bad digit");
		is_int(uuid_parse("", u), -EINVAL, "empty uuid");
	}
	ok(str_startswith("foobar", "foo") && !str_startswith("fo", "foo"), "str_startswith");
	is_int(errmap_lookup(-ENOENT)->status, 404, "ENOENT maps to 404");
	is_str(errmap_lookup(EACCES)->code, "unauthorized", "EACCES maps to unauthorized");
	is_int(errmap_lookup(-EFBIG)->status, 413, "EFBIG maps to 413");
	is_int(errmap_lookup(-12345)->status, 500, "unknown maps to 500");
	{
		const int64_t now = 1764750000000000LL;
		int64_t t;

		is_int(time_parse("10m", now, &t), 0, "time: 10m");
		is_int(t, now - 600000000LL, "…is ten minutes back");
		is_int(time_parse("7d", now, &t), 0, "time: 7d");
		is_int(t, now - 7LL * 86400 * 1000000, "…a week back");
		is_int(time_parse("2026-12-03T08:00:00Z", now, &t), 0, "time: ISO 8601 UTC");
		is_int(t, 1796284800LL * 1000000, "…as Unix µs");
		is_int(time_parse("2026-12-03T08:00:00.25Z", now, &t), 0, "time: with a fraction");
		is_int(t, 1796284800LL * 1000000 + 250000, "…kept to the µs");
		is_int(time_parse("1764750000", now, &t), 0, "time: Unix seconds");
		is_int(t, now, "…as µs");
		is_int(time_parse("10", now, &t), 0, "a bare number is Unix seconds");
		is_int(time_parse("m", now, &t), -EINVAL, "a unit alone refused");
		is_int(time_parse("10w", now, &t), -EINVAL, "an unknown unit refused");
		is_int(time_parse("3651d", now, &t), -EINVAL, "more than ten years back refused");
		is_int(time_parse("2026-12-03T08:00:00", now, &t), -EINVAL, "no Z refused");
		is_int(time_parse("2026-12-03T08:00:00+01:00", now, &t), -EINVAL,
		       "an offset refused (UTC only)");
		is_int(time_parse("2026-12-03T08:00:00.Z", now, &t), -EINVAL,
		       "an empty fraction refused");
		is_int(time_parse("1969-12-31T23:59:59Z", now, &t), -EINVAL, "before 1970 refused");
		is_int(time_parse("yesterday", now, &t), -EINVAL, "words refused");
		is_int(time_parse("", now, &t), -EINVAL, "empty refused");
	}
	return done();
}
