/* Fuzz target: a raw datagram between faasd processes, through every decoder. */
#include <stdlib.h>
#include <string.h>

#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *payload;
	struct msg_in in = { 0 };
	struct msg_invoke iv;
	struct msg_invoke_done d;
	struct msg_config c;
	uint64_t idx;
	int fd;
	uint16_t type;
	size_t len;

	if (msg_parse_header(data, size, &type, &payload, &len) < 0)
		return 0;
	in.type = type;
	in.data = malloc(len + 1);
	memcpy(in.data, payload, len);
	in.data[len] = 0;
	in.len = len;
	(void)msg_invoke_decode(&in, &iv);
	(void)msg_invoke_done_decode(&in, &d);
	(void)msg_config_decode(&in, &c);
	(void)msg_worker_socket_decode(&in, &idx, &fd);
	free(in.data);
	return 0;
}
