/* hello.c - the benchmark's handler: a tiny static CGI program. */
#include <unistd.h>

int
main(void)
{
	static const char out[] = "Content-Type: text/plain\n\nok\n";

	return write(1, out, sizeof(out) - 1) == sizeof(out) - 1 ? 0 : 1;
}
