/* mock_grpc: cancelproxy-mock's gRPC method. Any POST /<pkg.Service>/<Method>
 * with content-type application/grpc on an HTTP/2 stream is answered as a
 * server-streaming call: one length-prefixed message per token, then
 * trailers with grpc-status (and x-mock-tokens). A grpc-timeout is honoured
 * with DEADLINE_EXCEEDED and reported as received. The answer is written as
 * HTTP/1.1 with chunked trailers, which mock_h2.c turns into HEADERS, DATA
 * and trailing HEADERS, like every other answer of the mock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "proxy/jsonw.h"
#include "proxy/log.h"
#include "tools/mock/mock.h"

#define MOCK_GRPC_STATUS_OK			0
#define MOCK_GRPC_STATUS_INVALID_ARGUMENT	3
#define MOCK_GRPC_STATUS_DEADLINE_EXCEEDED	4
#define MOCK_GRPC_STATUS_INTERNAL		13
#define MOCK_GRPC_MESSAGE_MAX			160	/* encoded, it fits a field of mock_h2 */

/* Whether a request is a gRPC call the mock answers: POST on an HTTP/2
 * stream, content-type application/grpc or application/grpc+*, and a path
 * of the form /<service>/<method>. */
int
mock_grpc_is_call(struct mock_conn *c)
{
	const char	*ct, *url = c->req.arena + c->req.url_off;
	const char	*slash;

	if (c->parent == NULL || strcmp(c->resp.method, "POST") != 0)
		return 0;
	if ((ct = mock_req_header(c, "content-type")) == NULL ||
	    strncasecmp(ct, "application/grpc", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != '+' && ct[16] != ';'))
		return 0;
	if (c->req.url_len < 4 || url[0] != '/' ||
	    (slash = memchr(url + 1, '/', c->req.url_len - 1)) == NULL)
		return 0;
	return slash > url + 1 && slash < url + c->req.url_len - 1;
}

/* Parses a grpc-timeout value (1 to 8 digits and a unit H M S m u n, as
 * the gRPC spec has it) into microseconds, rounded up; -1 if malformed. */
static int
mock_grpc_timeout_parse(const char *s, uint64_t *us)
{
	uint64_t	 v = 0;
	size_t		 n;

	for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
		v = v * 10 + (uint64_t)(s[n] - '0');
	if (n == 0 || n > 8 || s[n] == '\0' || s[n + 1] != '\0')
		return -1;
	switch (s[n]) {
	case 'H':
		*us = v * 3600 * 1000000;
		break;
	case 'M':
		*us = v * 60 * 1000000;
		break;
	case 'S':
		*us = v * 1000000;
		break;
	case 'm':
		*us = v * 1000;
		break;
	case 'u':
		*us = v;
		break;
	case 'n':
		*us = (v + 999) / 1000;
		break;
	default:
		return -1;
	}
	return 0;
}

/* Parses an X-Mock-Rst-Code value: an HTTP/2 error code by number (0..13)
 * or by name (CANCEL, REFUSED_STREAM, ...); -1 if unknown. */
int
mock_rst_code_parse(const char *s, uint32_t *code)
{
	static const char *const names[] = {
		"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR",
		"FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED",
		"FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
		"COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
		"INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
	};
	char		*end;
	unsigned long	 v;
	uint32_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i]) == 0) {
			*code = i;
			return 0;
		}
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v >= sizeof(names) / sizeof(names[0]))
		return -1;
	*code = (uint32_t)v;
	return 0;
}

/* Arms the stream's timer for ms, or for the deadline when it is sooner. */
static void
mock_grpc_arm(struct mock_conn *c, int64_t ms)
{
	struct mock_resp	*r = &c->resp;
	struct timeval		 tv;
	uint64_t		 now = clock_mono_us(), left;

	/* libevent's clock may be coarser than ours: which of the two the
	 * timer is for is noted, not judged again from the time. */
	r->grpc_deadline_due = 0;
	if (r->grpc_deadline_us != 0) {
		left = r->grpc_deadline_us > now ?
		    r->grpc_deadline_us - now : 0;
		if (ms < 0 || (uint64_t)ms * 1000 > left) {
			tv.tv_sec = (time_t)(left / 1000000);
			tv.tv_usec = (suseconds_t)(left % 1000000);
			r->grpc_deadline_due = 1;
			evtimer_add(&c->timer, &tv);
			return;
		}
	}
	if (ms >= 0)
		evtimer_add(&c->timer, mock_stream_tv(c, ms, &tv));
}

/*
 * Ends the call with trailers: grpc-status, grpc-message percent-encoded
 * as the spec asks (every byte outside 0x20..0x7e, and '%'), and the
 * number of messages sent as custom trailing metadata.
 */
static void
mock_grpc_finish(struct mock_conn *c, int status, const char *message,
    enum mock_outcome outcome)
{
	struct mock_resp	*r = &c->resp;
	char			 buf[160 + 3 * MOCK_GRPC_MESSAGE_MAX];
	size_t			 n, i;
	unsigned char		 ch;

	r->grpc_status = status;
	n = (size_t)snprintf(buf, sizeof(buf), "0\r\ngrpc-status: %d\r\n",
	    status);
	if (message != NULL) {
		memcpy(buf + n, "grpc-message: ", 14);
		n += 14;
		for (i = 0; message[i] != '\0' && i < MOCK_GRPC_MESSAGE_MAX;
		    i++) {
			ch = (unsigned char)message[i];
			if (ch >= 0x20 && ch <= 0x7e && ch != '%')
				buf[n++] = (char)ch;
			else
				n += (size_t)snprintf(buf + n, 4, "%%%02X", ch);
		}
		buf[n++] = '\r';
		buf[n++] = '\n';
	}
	n += (size_t)snprintf(buf + n, sizeof(buf) - n,
	    "x-mock-tokens: %u\r\n\r\n", r->tokens_sent);
	mock_conn_add(c, buf, n);
	mock_resp_end(c, outcome, MOCK_END_KEEP);
}

/* The deadline passed: DEADLINE_EXCEEDED, as a gRPC server ends it. */
static void
mock_grpc_deadline(struct mock_conn *c)
{
	char	 msg[96];

	snprintf(msg, sizeof(msg), "mock: deadline exceeded after %u "
	    "messages", c->resp.tokens_sent);
	mock_grpc_finish(c, MOCK_GRPC_STATUS_DEADLINE_EXCEEDED, msg,
	    MOCK_OUTCOME_DEADLINE_EXCEEDED);
}

/*
 * Fires an *_after:N fault right after the Nth message (N = 0: right after
 * the headers); 1 when it did and the call must not go on. close_after
 * closes the whole connection, reset_after resets the stream (with
 * X-Mock-Rst-Code, or INTERNAL_ERROR), grpc_status_after ends the call
 * with the status of X-Mock-Grpc-Status (default 13, INTERNAL).
 */
static int
mock_grpc_fault_check(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;
	const char		*v;
	char			 msg[96];
	int			 status = MOCK_GRPC_STATUS_INTERNAL;

	if (r->fault.kind == MOCK_FAULT_NONE || r->tokens_sent != r->fault.arg)
		return 0;
	switch (r->fault.kind) {
	case MOCK_FAULT_CLOSE_AFTER:
		mock_resp_end(c, MOCK_OUTCOME_FAULT, MOCK_END_CLOSE);
		return 1;
	case MOCK_FAULT_RESET_AFTER:
		mock_resp_end(c, MOCK_OUTCOME_FAULT, MOCK_END_RESET);
		return 1;
	case MOCK_FAULT_STALL_AFTER:
		event_del(&c->timer);
		r->state = MOCK_RESP_STALLED;
		mock_grpc_arm(c, -1);	/* only the deadline can end it */
		return 1;
	case MOCK_FAULT_GRPC_STATUS_AFTER:
	case MOCK_FAULT_SSE_ERROR_AFTER:
		if ((v = mock_req_header(c, "X-Mock-Grpc-Status")) != NULL)
			status = atoi(v);
		snprintf(msg, sizeof(msg), "mock fault: grpc status %d after "
		    "%u messages", status, r->tokens_sent);
		mock_grpc_finish(c, status, msg, MOCK_OUTCOME_FAULT);
		return 1;
	default:
		return 0;
	}
}

/* Sends the next message: a 0 flag, the big-endian length, "tokK". */
static void
mock_grpc_message(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;
	char			 msg[48];
	int			 n;
	uint32_t		 len;

	if (r->tokens_sent == 0)
		r->first_token_us = clock_mono_us();
	r->tokens_sent++;
	n = snprintf(msg + 5, sizeof(msg) - 5, "tok%u", r->tokens_sent);
	len = (uint32_t)n;
	msg[0] = 0;
	msg[1] = (char)(len >> 24);
	msg[2] = (char)(len >> 16);
	msg[3] = (char)(len >> 8);
	msg[4] = (char)len;
	mock_stream_emit(c, msg, (size_t)n + 5);
}

/* One step of the call: a message, a fault, the deadline, or the end. */
static void
mock_grpc_tick(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;

	if (r->grpc_deadline_due || (r->grpc_deadline_us != 0 &&
	    clock_mono_us() >= r->grpc_deadline_us)) {
		mock_grpc_deadline(c);
		return;
	}
	/* A client that does not read gets no more than ~64 KiB queued. */
	if (mock_conn_pending(c) > MOCK_OUTPUT_HIGH) {
		r->state = MOCK_RESP_BLOCKED;
		mock_grpc_arm(c, -1);
		return;
	}
	if (r->tokens_sent < (unsigned)r->set.tokens) {
		mock_grpc_message(c);
		if (mock_grpc_fault_check(c))
			return;
	}
	if (r->tokens_sent >= (unsigned)r->set.tokens) {
		mock_grpc_finish(c, MOCK_GRPC_STATUS_OK, NULL,
		    MOCK_OUTCOME_COMPLETED);
		return;
	}
	r->state = MOCK_RESP_STREAMING;
	mock_grpc_arm(c, r->set.interval_ms);
}

/* Starts answering a gRPC call: response headers, then the messages. */
void
mock_grpc_start(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;
	const char		*t;
	uint64_t		 us;

	r->stream = 1;
	r->framing = MOCK_FRAMING_CHUNKED;
	mock_http_head(c, 200, "application/grpc", MOCK_FRAMING_CHUNKED, 0,
	    NULL);
	if ((t = mock_req_header(c, "grpc-timeout")) != NULL) {
		if (mock_grpc_timeout_parse(t, &us) == -1) {
			mock_grpc_finish(c, MOCK_GRPC_STATUS_INVALID_ARGUMENT,
			    "mock: malformed grpc-timeout",
			    MOCK_OUTCOME_COMPLETED);
			return;
		}
		r->grpc_deadline_us = r->start_us + (us > 0 ? us : 1);
	}
	if (mock_grpc_fault_check(c))
		return;
	r->state = MOCK_RESP_WAITING;
	mock_grpc_arm(c, r->set.first_token_ms);
}

/* The stream's timer: the next message, or the deadline of any state. */
void
mock_grpc_timer(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;

	switch (r->state) {
	case MOCK_RESP_WAITING:
	case MOCK_RESP_STREAMING:
		mock_grpc_tick(c);
		break;
	case MOCK_RESP_STALLED:
	case MOCK_RESP_BLOCKED:
		if (r->grpc_deadline_due)
			mock_grpc_deadline(c);
		break;
	default:
		break;
	}
}

/* The output drained below the mark: a blocked call goes on. */
void
mock_grpc_drained(struct mock_conn *c)
{
	if (c->resp.state == MOCK_RESP_BLOCKED) {
		event_del(&c->timer);
		c->resp.grpc_deadline_due = 0;
		mock_grpc_tick(c);
	}
}

/* Writes the gRPC members of a record: the method, the grpc-timeout as
 * received (and in ms), and, at the end, the status sent (null: none). */
void
mock_grpc_record(struct mock_conn *c, struct jsonw *w, int end)
{
	const char	*t = mock_req_header(c, "grpc-timeout");
	uint64_t	 us;

	jsonw_lkey(w, "grpc_method");
	jsonw_strn(w, c->req.arena + c->req.url_off, c->req.url_len);
	jsonw_lkey(w, "grpc_timeout");
	if (t != NULL)
		jsonw_str(w, t);
	else
		jsonw_null(w);
	jsonw_lkey(w, "grpc_timeout_ms");
	if (t != NULL && mock_grpc_timeout_parse(t, &us) == 0)
		jsonw_double(w, (double)us / 1000.0, 3);
	else
		jsonw_null(w);
	if (!end)
		return;
	jsonw_lkey(w, "grpc_status");
	if (c->resp.grpc_status >= 0)
		jsonw_int(w, c->resp.grpc_status);
	else
		jsonw_null(w);
}
