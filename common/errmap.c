/*
 * errmap.c - errno to HTTP status and error code.  Modules return -errno with
 * the meanings below; handlers that need a more specific code (for example
 * function_timeout) say so themselves.
 */
#include "errmap.h"

#include <errno.h>

#include "util.h"

static const struct errmap_entry table[] = {
	{ EINVAL, 400, "invalid_request" },  { EACCES, 401, "unauthorized" },
	{ EPERM, 403, "forbidden" },         { EDQUOT, 403, "quota_exceeded" },
	{ ENOENT, 404, "not_found" },        { EEXIST, 409, "conflict" },
	{ EFBIG, 413, "payload_too_large" }, { E2BIG, 413, "payload_too_large" },
	{ EBADMSG, 422, "unprocessable" },   { ENOTSUP, 422, "unsupported" },
	{ EAGAIN, 429, "throttled" },        { EBUSY, 503, "unavailable" },
	{ ESHUTDOWN, 503, "shutting_down" }, { ETIMEDOUT, 504, "timeout" },
};

static const struct errmap_entry internal = { 0, 500, "internal_error" };

const struct errmap_entry *
errmap_lookup(int err)
{
	if (err < 0)
		err = -err;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (table[i].err == err)
			return &table[i];
	return &internal;
}
