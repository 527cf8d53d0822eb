/* Fuzz target: deployment strategy text (from API bodies and faasctl
 * flags) through strategy_parse, and its steps when it parses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strategy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strategy st;
	char diag[256], text[STRATEGY_TEXT_MAX], *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (strategy_parse(s, &st, diag, sizeof(diag)) == 0) {
		unsigned n = strategy_steps(&st);

		/* Weights rise to 100 and stay there. */
		for (unsigned k = 1; k <= n; k++)
			if (strategy_weight(&st, k) >= 100 ||
			    strategy_weight(&st, k) < strategy_weight(&st, k - 1))
				__builtin_trap();
		if (strategy_weight(&st, n + 1) != 100)
			__builtin_trap();
		strategy_format(&st, text, sizeof(text));
		if (strategy_parse(text, &st, diag, sizeof(diag)) != 0)
			__builtin_trap(); /* what it prints, it reads back */
	}
	free(s);
	return 0;
}
