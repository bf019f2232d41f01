/* cancel_grpc: grpc-timeout, grpc-status and grpc-message, as the cancel
 * chain needs them (gRPC's doc/PROTOCOL-HTTP2.md). */
#include <string.h>
#include <strings.h>

#include "cancel_chain/cancel_grpc.h"

const char *
grpc_status_name(int status)
{
	switch (status) {
	case GRPC_STATUS_OK:			return "OK";
	case GRPC_STATUS_CANCELLED:		return "CANCELLED";
	case GRPC_STATUS_UNKNOWN:		return "UNKNOWN";
	case GRPC_STATUS_INVALID_ARGUMENT:	return "INVALID_ARGUMENT";
	case GRPC_STATUS_DEADLINE_EXCEEDED:	return "DEADLINE_EXCEEDED";
	case GRPC_STATUS_PERMISSION_DENIED:	return "PERMISSION_DENIED";
	case GRPC_STATUS_RESOURCE_EXHAUSTED:	return "RESOURCE_EXHAUSTED";
	case GRPC_STATUS_UNIMPLEMENTED:		return "UNIMPLEMENTED";
	case GRPC_STATUS_INTERNAL:		return "INTERNAL";
	case GRPC_STATUS_UNAVAILABLE:		return "UNAVAILABLE";
	case GRPC_STATUS_UNAUTHENTICATED:	return "UNAUTHENTICATED";
	default:				return "unknown";
	}
}

int
grpc_content_type_is(const char *ct, size_t len)
{
	static const char base[] = "application/grpc";
	size_t		 n = sizeof(base) - 1;

	if (ct == NULL || len < n || strncasecmp(ct, base, n) != 0)
		return 0;
	return len == n || ct[n] == '+' || ct[n] == ';';
}

/* Microseconds per unit; nanoseconds are handled apart. */
static uint64_t
grpc_unit_us(char u)
{
	switch (u) {
	case 'H':	return 3600ull * 1000000;
	case 'M':	return 60ull * 1000000;
	case 'S':	return 1000000;
	case 'm':	return 1000;
	case 'u':	return 1;
	default:	return 0;
	}
}

int
grpc_timeout_parse(const char *v, size_t len, uint64_t *us)
{
	uint64_t	 n = 0, per;
	size_t		 i;

	if (len < 2 || len > 9)
		return -1;
	for (i = 0; i < len - 1; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	if (v[len - 1] == 'n') {
		*us = (n + 999) / 1000;
		return 0;
	}
	if ((per = grpc_unit_us(v[len - 1])) == 0)
		return -1;
	*us = n * per;		/* at most 3.6e17: 99999999 hours */
	return 0;
}

size_t
grpc_timeout_format(uint64_t us, char *buf)
{
	static const char units[] = "umSMH";
	static const uint64_t per[] = { 1, 1000, 1000000, 60000000,
	    3600000000ull };
	uint64_t	 n = us;
	char		 digits[24];
	size_t		 i, k = 0, len = 0;

	for (i = 0; i < sizeof(per) / sizeof(per[0]); i++) {
		n = us / per[i];
		if (n <= 99999999)
			break;
	}
	if (i == sizeof(per) / sizeof(per[0])) {
		i--;
		n = 99999999;
	}
	if (n == 0)
		n = 1;
	do {
		digits[k++] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	while (k > 0)
		buf[len++] = digits[--k];
	buf[len++] = units[i];
	buf[len] = '\0';
	return len;
}

int
grpc_status_for_cancel(enum cancel_kind kind, enum cancel_via via)
{
	switch (kind) {
	case CANCEL_KIND_FIRST_BYTE_TIMEOUT:
	case CANCEL_KIND_IDLE_TIMEOUT:
	case CANCEL_KIND_TOTAL_TIMEOUT:
		return GRPC_STATUS_DEADLINE_EXCEEDED;
	case CANCEL_KIND_UPSTREAM_ERROR:
		return via == CANCEL_VIA_TIMER ? GRPC_STATUS_DEADLINE_EXCEEDED :
		    GRPC_STATUS_UNAVAILABLE;
	case CANCEL_KIND_UPSTREAM_CLOSED:
		return GRPC_STATUS_UNAVAILABLE;
	case CANCEL_KIND_CLIENT_DISCONNECT:
	case CANCEL_KIND_CLIENT_CANCEL:
	case CANCEL_KIND_ADMIN:
	case CANCEL_KIND_SHUTDOWN:
		return GRPC_STATUS_CANCELLED;
	default:
		return GRPC_STATUS_UNKNOWN;
	}
}

int
grpc_status_for_reset(uint32_t h2_error)
{
	switch (h2_error) {
	case 0x7:	return GRPC_STATUS_UNAVAILABLE;		/* REFUSED_STREAM */
	case 0x8:	return GRPC_STATUS_CANCELLED;		/* CANCEL */
	case 0xb:	return GRPC_STATUS_RESOURCE_EXHAUSTED;	/* ENHANCE_YOUR_CALM */
	case 0xc:	return GRPC_STATUS_PERMISSION_DENIED;	/* INADEQUATE_SECURITY */
	default:	return GRPC_STATUS_INTERNAL;
	}
}

/* The HTTP status the proxy would have answered, as a gRPC status (the
 * table in gRPC's doc/http-grpc-status-mapping.md). */
int
grpc_status_for_http(int status)
{
	switch (status) {
	case 400:	return GRPC_STATUS_INTERNAL;
	case 401:	return GRPC_STATUS_UNAUTHENTICATED;
	case 403:	return GRPC_STATUS_PERMISSION_DENIED;
	case 404:	return GRPC_STATUS_UNIMPLEMENTED;
	case 408:	return GRPC_STATUS_DEADLINE_EXCEEDED;
	case 429:
	case 502:
	case 503:
	case 504:	return GRPC_STATUS_UNAVAILABLE;
	default:	return GRPC_STATUS_UNKNOWN;
	}
}

size_t
grpc_message_encode(const char *text, size_t len, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t		 i, o = 0;

	if (cap == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c >= 0x20 && c <= 0x7e && c != '%') {
			if (o + 1 >= cap)
				break;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= cap)
				break;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		}
	}
	out[o] = '\0';
	return o;
}

static int
grpc_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t
grpc_message_decode(const char *v, size_t len, char *out, size_t cap)
{
	size_t		 i, o = 0;
	int		 hi, lo;

	if (cap == 0)
		return 0;
	for (i = 0; i < len && o + 1 < cap; i++) {
		if (v[i] == '%' && i + 2 < len && (hi = grpc_hex(v[i + 1]))
		    >= 0 && (lo = grpc_hex(v[i + 2])) >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			out[o++] = v[i];
	}
	out[o] = '\0';
	return o;
}
