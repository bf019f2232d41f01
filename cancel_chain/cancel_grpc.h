/* cancel_grpc: a cancel as gRPC tells it — the grpc-timeout deadline that
 * travels with a call (shortened at each hop), the grpc-status this hop
 * answers for each kind of cancel and for each HTTP/2 reset code, and the
 * percent-encoded grpc-message that carries the cancel path. Pure
 * functions: the HTTP/2 code calls them. */
#ifndef CANCELPROXY_CANCEL_GRPC_H
#define CANCELPROXY_CANCEL_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "cancel_chain/cancel_chain.h"

/* The status codes this hop uses (gRPC's doc/statuscodes.md). */
enum grpc_status {
	GRPC_STATUS_OK = 0,
	GRPC_STATUS_CANCELLED = 1,
	GRPC_STATUS_UNKNOWN = 2,
	GRPC_STATUS_INVALID_ARGUMENT = 3,
	GRPC_STATUS_DEADLINE_EXCEEDED = 4,
	GRPC_STATUS_PERMISSION_DENIED = 7,
	GRPC_STATUS_RESOURCE_EXHAUSTED = 8,
	GRPC_STATUS_UNIMPLEMENTED = 12,
	GRPC_STATUS_INTERNAL = 13,
	GRPC_STATUS_UNAVAILABLE = 14,
	GRPC_STATUS_UNAUTHENTICATED = 16,
};

const char	*grpc_status_name(int status);

/* Longest grpc-timeout value: 8 digits and a unit, plus a NUL. */
#define GRPC_TIMEOUT_MAX	10

/* Whether a content type is gRPC: "application/grpc", alone or followed
 * by "+subtype" or parameters. */
int		 grpc_content_type_is(const char *ct, size_t len);
/* Reads a grpc-timeout value (1 to 8 digits, then H M S m u n) into
 * microseconds, rounding nanoseconds up; 0 and *us set, or -1. */
int		 grpc_timeout_parse(const char *v, size_t len, uint64_t *us);
/* Writes us as a grpc-timeout value into buf (GRPC_TIMEOUT_MAX bytes), in
 * the finest unit that fits 8 digits, rounded down so the next hop never
 * waits longer than this one; at least 1 of that unit. Its length. */
size_t		 grpc_timeout_format(uint64_t us, char *buf);
/* The status this hop answers when it ends a call for kind (via tells a
 * connect timeout from a refused connection). */
int		 grpc_status_for_cancel(enum cancel_kind kind,
		    enum cancel_via via);
/* The status for a stream an upstream reset without trailers, from its
 * HTTP/2 error code (the table in gRPC's PROTOCOL-HTTP2.md). */
int		 grpc_status_for_reset(uint32_t h2_error);
/* What the proxy would have answered in HTTP, as a gRPC status (gRPC's
 * doc/http-grpc-status-mapping.md). */
int		 grpc_status_for_http(int status);
/* Percent-encodes text for grpc-message: bytes outside 0x20-0x7e and '%'
 * become %XX. Writes at most cap-1 bytes and a NUL, never cutting an
 * escape; the length written. */
size_t		 grpc_message_encode(const char *text, size_t len, char *out,
		    size_t cap);
/* Decodes a grpc-message; broken escapes are kept as they are, as the
 * spec asks. Writes at most cap-1 bytes and a NUL; the length written. */
size_t		 grpc_message_decode(const char *v, size_t len, char *out,
		    size_t cap);

#endif
