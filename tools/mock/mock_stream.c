/* mock_stream: cancelproxy-mock's generated answers, whichever the API:
 * one timer per stream paces the tokens, X-Mock-* headers change timing,
 * framing and faults, and the mock_request / mock_stream records say what
 * happened. The events and bodies themselves are mock_api.c's. */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy/log.h"
#include "tools/mock/mock.h"

#define MOCK_ENDLESS_MIN_MS	10

static const char mock_sse_headers[] = "Cache-Control: no-cache\r\n";

static void	mock_stream_tick(struct mock_conn *);

/* Names a framing for records and errors. */
const char *
mock_framing_name(enum mock_framing framing)
{
	switch (framing) {
	case MOCK_FRAMING_DEFAULT:
		return "default";
	case MOCK_FRAMING_CHUNKED:
		return "chunked";
	case MOCK_FRAMING_CLOSE:
		return "close";
	case MOCK_FRAMING_LENGTH:
		return "length";
	}
	return "unknown";
}

/* Names a fault as X-Mock-Fault spells it, without its argument. */
const char *
mock_fault_kind_name(enum mock_fault_kind kind)
{
	switch (kind) {
	case MOCK_FAULT_NONE:
		return "none";
	case MOCK_FAULT_CLOSE_BEFORE_HEADERS:
		return "close_before_headers";
	case MOCK_FAULT_RESET_BEFORE_HEADERS:
		return "reset_before_headers";
	case MOCK_FAULT_CLOSE_AFTER:
		return "close_after";
	case MOCK_FAULT_RESET_AFTER:
		return "reset_after";
	case MOCK_FAULT_STALL_AFTER:
		return "stall_after";
	case MOCK_FAULT_STATUS:
		return "status";
	case MOCK_FAULT_GARBAGE:
		return "garbage";
	case MOCK_FAULT_CONTENT_LENGTH_LIE:
		return "content_length_lie";
	case MOCK_FAULT_ENDLESS_HEADER:
		return "endless_header";
	case MOCK_FAULT_SSE_ERROR_AFTER:
		return "sse_error_after";
	case MOCK_FAULT_GRPC_STATUS_AFTER:
		return "grpc_status_after";
	}
	return "unknown";
}

/* Names an outcome as the mock_stream record spells it. */
const char *
mock_outcome_name(enum mock_outcome outcome)
{
	switch (outcome) {
	case MOCK_OUTCOME_COMPLETED:
		return "completed";
	case MOCK_OUTCOME_CLIENT_FIN:
		return "client_fin";
	case MOCK_OUTCOME_CLIENT_RST:
		return "client_rst";
	case MOCK_OUTCOME_FAULT:
		return "fault";
	case MOCK_OUTCOME_CLIENT_RST_STREAM:
		return "client_rst_stream";
	case MOCK_OUTCOME_CONN_CLOSED:
		return "conn_closed";
	case MOCK_OUTCOME_REFUSED:
		return "refused";
	case MOCK_OUTCOME_DEADLINE_EXCEEDED:
		return "deadline_exceeded";
	}
	return "unknown";
}

/* Parses a decimal number up to max, allowing trailing blanks. */
static int
mock_parse_num(const char *s, unsigned long max, unsigned *out)
{
	unsigned long	 v;
	char		*end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	while (*end == ' ' || *end == '\t')
		end++;
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Parses an X-Mock-Fault value. */
int
mock_fault_parse(const char *s, struct mock_fault *out)
{
	static const struct {
		const char		*name;
		enum mock_fault_kind	 kind;
		int			 has_arg;
	} faults[] = {
		{ "none",			MOCK_FAULT_NONE,		0 },
		{ "close_before_headers",	MOCK_FAULT_CLOSE_BEFORE_HEADERS, 0 },
		{ "reset_before_headers",	MOCK_FAULT_RESET_BEFORE_HEADERS, 0 },
		{ "close_after",		MOCK_FAULT_CLOSE_AFTER,		1 },
		{ "reset_after",		MOCK_FAULT_RESET_AFTER,		1 },
		{ "stall_after",		MOCK_FAULT_STALL_AFTER,		1 },
		{ "status",			MOCK_FAULT_STATUS,		1 },
		{ "garbage",			MOCK_FAULT_GARBAGE,		0 },
		{ "content_length_lie",		MOCK_FAULT_CONTENT_LENGTH_LIE,	0 },
		{ "endless_header",		MOCK_FAULT_ENDLESS_HEADER,	0 },
		{ "sse_error_after",		MOCK_FAULT_SSE_ERROR_AFTER,	1 },
		{ "grpc_status_after",		MOCK_FAULT_GRPC_STATUS_AFTER,	1 },
	};
	size_t		 i, n;

	for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		n = strlen(faults[i].name);
		if (strncasecmp(s, faults[i].name, n) != 0)
			continue;
		out->kind = faults[i].kind;
		out->arg = 0;
		if (!faults[i].has_arg) {
			while (s[n] == ' ' || s[n] == '\t')
				n++;
			return s[n] == '\0' ? 0 : -1;
		}
		if (s[n] != ':')
			continue;
		if (out->kind == MOCK_FAULT_STATUS)
			return mock_parse_num(s + n + 1, 599, &out->arg) == -1 ||
			    out->arg < 200 ? -1 : 0;
		return mock_parse_num(s + n + 1, MOCK_MAX_TOKENS, &out->arg);
	}
	return -1;
}

/* Formats a fault as X-Mock-Fault spells it: "close_after:3". */
int
mock_fault_format(const struct mock_fault *f, char *buf, size_t len)
{
	switch (f->kind) {
	case MOCK_FAULT_CLOSE_AFTER:
	case MOCK_FAULT_RESET_AFTER:
	case MOCK_FAULT_STALL_AFTER:
	case MOCK_FAULT_STATUS:
	case MOCK_FAULT_SSE_ERROR_AFTER:
	case MOCK_FAULT_GRPC_STATUS_AFTER:
		return snprintf(buf, len, "%s:%u", mock_fault_kind_name(f->kind),
		    f->arg);
	default:
		return snprintf(buf, len, "%s", mock_fault_kind_name(f->kind));
	}
}

/* Applies the X-Mock-* request headers; -1 with err naming the bad one. */
int
mock_stream_settings(struct mock_conn *c, const char **err)
{
	struct mock_resp	*r = &c->resp;
	const char		*v;
	unsigned		 n;

	if ((v = mock_req_header(c, "X-Mock-First-Token-Ms")) != NULL) {
		if (mock_parse_num(v, MOCK_MAX_DELAY_MS, &n) == -1) {
			*err = "X-Mock-First-Token-Ms: expected 0..3600000";
			return -1;
		}
		r->set.first_token_ms = (int)n;
	}
	if ((v = mock_req_header(c, "X-Mock-Interval-Ms")) != NULL) {
		if (mock_parse_num(v, MOCK_MAX_DELAY_MS, &n) == -1) {
			*err = "X-Mock-Interval-Ms: expected 0..3600000";
			return -1;
		}
		r->set.interval_ms = (int)n;
	}
	if ((v = mock_req_header(c, "X-Mock-Tokens")) != NULL) {
		if (mock_parse_num(v, MOCK_MAX_TOKENS, &n) == -1) {
			*err = "X-Mock-Tokens: expected 0..1000000";
			return -1;
		}
		r->set.tokens = (int)n;
	}
	if ((v = mock_req_header(c, "X-Mock-Framing")) != NULL) {
		if (strcasecmp(v, "chunked") == 0)
			r->framing = MOCK_FRAMING_CHUNKED;
		else if (strcasecmp(v, "close") == 0)
			r->framing = MOCK_FRAMING_CLOSE;
		else if (strcasecmp(v, "length") == 0)
			r->framing = MOCK_FRAMING_LENGTH;
		else {
			*err = "X-Mock-Framing: expected chunked, close or "
			    "length";
			return -1;
		}
	}
	if ((v = mock_req_header(c, "X-Mock-Fault")) != NULL &&
	    mock_fault_parse(v, &r->fault) == -1) {
		*err = "X-Mock-Fault: expected none, close_before_headers, "
		    "reset_before_headers, close_after:N, reset_after:N, "
		    "stall_after:N, status:CODE (200..599), garbage, "
		    "content_length_lie, endless_header, sse_error_after:N or "
		    "grpc_status_after:N";
		return -1;
	}
	if ((v = mock_req_header(c, "X-Mock-Rst-Code")) != NULL) {
		if (mock_rst_code_parse(v, &r->rst_code_out) == -1) {
			*err = "X-Mock-Rst-Code: expected an HTTP/2 error code, "
			    "0..13 or its name (CANCEL, REFUSED_STREAM, ...)";
			return -1;
		}
		r->has_rst_code = 1;
	}
	if ((v = mock_req_header(c, "X-Mock-Grpc-Status")) != NULL &&
	    (mock_parse_num(v, 16, &n) == -1 || n == 0)) {
		*err = "X-Mock-Grpc-Status: expected 1..16";
		return -1;
	}
	return 0;
}

/* Writes a string member, or null when s is NULL. */
static void
mock_kstr_or_null(struct jsonw *w, const char *key, const char *s)
{
	jsonw_key(w, key);
	if (s == NULL)
		jsonw_null(w);
	else
		jsonw_str(w, s);
}

/* Writes the fault member: its X-Mock-Fault spelling, or null. */
static void
mock_kfault(struct jsonw *w, const struct mock_fault *f)
{
	char	 buf[64];

	if (f->kind == MOCK_FAULT_NONE) {
		jsonw_lkey(w, "fault");
		jsonw_null(w);
		return;
	}
	mock_fault_format(f, buf, sizeof(buf));
	jsonw_kstr(w, "fault", buf);
}

/* Writes the "mock_request" record: a request has fully arrived. */
void
mock_record_request(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;
	struct jsonw		 w;
	char			 stack[1024];

	jsonw_init(&w, stack, sizeof(stack));
	log_record_begin(&w, LOG_LEVEL_INFO, "mock_request");
	mock_kstr_or_null(&w, "request_id", mock_req_header(c, "X-Request-Id"));
	mock_kstr_or_null(&w, "traceparent", mock_req_header(c, "traceparent"));
	mock_kstr_or_null(&w, "via", mock_req_header(c, "Via"));
	jsonw_kstr(&w, "method", r->method);
	jsonw_lkey(&w, "path");
	jsonw_strn(&w, c->req.arena + c->req.url_off, c->req.url_len);
	mock_kstr_or_null(&w, "api", mock_endpoint_api(r->endpoint));
	mock_kstr_or_null(&w, "model", mock_req_str(c, r->model_off));
	jsonw_kbool(&w, "stream", r->stream);
	jsonw_kuint(&w, "mono_us", r->start_us);
	jsonw_kuint(&w, "conn", c->id);
	mock_kfault(&w, &r->fault);
	if (r->endpoint == MOCK_EP_GRPC)
		mock_grpc_record(c, &w, 0);
	log_record_end(&w);
	jsonw_free(&w);
}

/*
 * Writes the "mock_stream" record, once per request: how it ended and, when
 * the client left, when (gone_us, monotonic) and in which phase.
 */
void
mock_record_stream(struct mock_conn *c, enum mock_outcome outcome,
    uint64_t gone_us)
{
	struct mock_resp	*r = &c->resp;
	struct jsonw		 w;
	char			 stack[1024];
	uint64_t		 end = gone_us ? gone_us : clock_mono_us();
	int			 gone = outcome == MOCK_OUTCOME_CLIENT_FIN ||
				    outcome == MOCK_OUTCOME_CLIENT_RST ||
				    outcome == MOCK_OUTCOME_CLIENT_RST_STREAM;

	jsonw_init(&w, stack, sizeof(stack));
	log_record_begin(&w, LOG_LEVEL_INFO, "mock_stream");
	mock_kstr_or_null(&w, "request_id", mock_req_header(c, "X-Request-Id"));
	jsonw_lkey(&w, "path");
	jsonw_strn(&w, c->req.arena + c->req.url_off, c->req.url_len);
	mock_kstr_or_null(&w, "api", mock_endpoint_api(r->endpoint));
	mock_kstr_or_null(&w, "model", mock_req_str(c, r->model_off));
	jsonw_kbool(&w, "stream", r->stream);
	jsonw_kuint(&w, "tokens_sent", r->tokens_sent);
	/* What was generated, to hold against what a proxy counted. */
	jsonw_lkey(&w, "usage");
	if (r->prepared) {
		jsonw_obj_open(&w);
		jsonw_kuint(&w, "prompt_tokens", r->prompt_tokens);
		jsonw_kuint(&w, "completion_tokens", r->tokens_sent);
		jsonw_obj_close(&w);
	} else
		jsonw_null(&w);
	jsonw_kstr(&w, "outcome", mock_outcome_name(outcome));
	mock_kfault(&w, &r->fault);
	mock_kstr_or_null(&w, "phase", !gone ? NULL : r->first_token_us ?
	    "streaming" : "waiting_first_token");
	jsonw_lkey(&w, "elapsed_ms");
	jsonw_double(&w, (double)(end - r->start_us) / 1000.0, 3);
	jsonw_lkey(&w, "first_token_ms");
	if (r->first_token_us)
		jsonw_double(&w, (double)(r->first_token_us - r->start_us) /
		    1000.0, 3);
	else
		jsonw_null(&w);
	jsonw_lkey(&w, "gone_mono_us");
	if (gone)
		jsonw_uint(&w, gone_us);
	else
		jsonw_null(&w);
	jsonw_kuint(&w, "bytes_out", r->bytes_out);
	jsonw_kuint(&w, "conn", c->id);
	if (c->parent != NULL) {
		jsonw_kstr(&w, "protocol", "h2");
		jsonw_kint(&w, "stream_id", c->stream_id);
		if (outcome == MOCK_OUTCOME_CLIENT_RST_STREAM)
			jsonw_kstr(&w, "rst_code",
			    mock_h2_code_name(c->rst_code));
	}
	if (r->endpoint == MOCK_EP_GRPC)
		mock_grpc_record(c, &w, 1);
	log_record_end(&w);
	jsonw_free(&w);
}

/* A timeout of ms; the command-line defaults use shared O(1) queues. */
const struct timeval *
mock_stream_tv(struct mock_conn *c, int64_t ms, struct timeval *tv)
{
	struct mock_server	*srv = c->srv;

	if (srv->tv_first != NULL && ms == srv->defaults.first_token_ms)
		return srv->tv_first;
	if (srv->tv_interval != NULL && ms == srv->defaults.interval_ms)
		return srv->tv_interval;
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

/* Arms the stream's timer. */
static void
mock_stream_arm(struct mock_conn *c, int64_t ms)
{
	struct timeval	 tv;

	evtimer_add(&c->timer, mock_stream_tv(c, ms, &tv));
}

/* Sends one SSE event as one chunk (or raw, or into the length body). */
void
mock_stream_emit(struct mock_conn *c, const char *data, size_t len)
{
	struct mock_resp	*r = &c->resp;
	struct iovec		 iov[3];
	char			 hex[24];
	int			 n;

	if (r->sink != NULL) {
		evbuffer_add(r->sink, data, len);
		return;
	}
	if (r->framing != MOCK_FRAMING_CHUNKED) {
		mock_conn_add(c, data, len);
		return;
	}
	n = snprintf(hex, sizeof(hex), "%zx\r\n", len);
	iov[0].iov_base = hex;
	iov[0].iov_len = (size_t)n;
	iov[1].iov_base = (void *)(uintptr_t)data;
	iov[1].iov_len = len;
	iov[2].iov_base = (void *)"\r\n";
	iov[2].iov_len = 2;
	mock_conn_write(c, iov, 3);
}

/* Ends a chunked body; the other framings need nothing. */
static void
mock_stream_terminate(struct mock_conn *c)
{
	if (c->resp.sink == NULL && c->resp.framing == MOCK_FRAMING_CHUNKED)
		mock_conn_add(c, "0\r\n\r\n", 5);
}

/* Sends the next token event, after the events that open the stream. */
static int
mock_stream_token(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;

	if (!r->opened && mock_api_open(c) == -1)
		return -1;
	if (r->tokens_sent == 0 && r->sink == NULL)
		r->first_token_us = clock_mono_us();
	r->tokens_sent++;
	mock_api_token(c, r->tokens_sent);
	return 0;
}

/* Sends the events that end a complete stream (opening it if no token
 * did: a stream of zero tokens). */
static int
mock_stream_tail(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;

	if (!r->opened && mock_api_open(c) == -1)
		return -1;
	return mock_api_tail(c, r->tokens_sent);
}

/* An event could not be built (out of memory) after the headers went
 * out: the stream is cut with an RST, like a model server that crashed. */
static void
mock_stream_broken(struct mock_conn *c)
{
	log_msg(LOG_LEVEL_WARN, "mock_error", "conn %llu: out of memory "
	    "building an event; resetting", (unsigned long long)c->id);
	mock_resp_end(c, MOCK_OUTCOME_FAULT, MOCK_END_RESET);
}

/* Whether the fault is one that fires after N tokens. */
static int
mock_fault_is_after(enum mock_fault_kind kind)
{
	return kind == MOCK_FAULT_CLOSE_AFTER ||
	    kind == MOCK_FAULT_RESET_AFTER ||
	    kind == MOCK_FAULT_STALL_AFTER ||
	    kind == MOCK_FAULT_SSE_ERROR_AFTER;
}

/*
 * Fires an *_after:N fault right after the Nth token (N = 0: right after
 * the headers); returns 1 when it did and the stream must not go on.
 */
static int
mock_stream_fault_check(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;

	if (!mock_fault_is_after(r->fault.kind) ||
	    r->tokens_sent != r->fault.arg)
		return 0;
	switch (r->fault.kind) {
	case MOCK_FAULT_CLOSE_AFTER:
		mock_resp_end(c, MOCK_OUTCOME_FAULT, MOCK_END_CLOSE);
		break;
	case MOCK_FAULT_RESET_AFTER:
		mock_resp_end(c, MOCK_OUTCOME_FAULT, MOCK_END_RESET);
		break;
	case MOCK_FAULT_STALL_AFTER:
		/* Nothing more is sent; only the client can end this. */
		event_del(&c->timer);
		r->state = MOCK_RESP_STALLED;
		break;
	case MOCK_FAULT_SSE_ERROR_AFTER:
		mock_api_error_event(c);
		mock_stream_terminate(c);
		mock_resp_end(c, MOCK_OUTCOME_FAULT, MOCK_END_KEEP);
		break;
	default:
		return 0;
	}
	return 1;
}

/* One timer tick of a stream: a token, a fault, or the end. */
static void
mock_stream_tick(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;

	/* A client that does not read gets no more than ~64 KiB queued. */
	if (mock_conn_pending(c) > MOCK_OUTPUT_HIGH) {
		r->state = MOCK_RESP_BLOCKED;
		return;
	}
	if (r->tokens_sent < (unsigned)r->set.tokens) {
		if (mock_stream_token(c) == -1) {
			mock_stream_broken(c);
			return;
		}
		if (mock_stream_fault_check(c))
			return;
	}
	if (r->tokens_sent >= (unsigned)r->set.tokens) {
		if (mock_stream_tail(c) == -1) {
			mock_stream_broken(c);
			return;
		}
		mock_stream_terminate(c);
		mock_resp_end(c, MOCK_OUTCOME_COMPLETED, MOCK_END_KEEP);
		return;
	}
	r->state = MOCK_RESP_STREAMING;
	mock_stream_arm(c, r->set.interval_ms);
}

/*
 * Sends the non-streaming answer once the whole generation time has
 * passed. An *_after:N fault with N <= tokens fires here: before the
 * headers when N is 0, after half the body otherwise.
 */
static void
mock_stream_send_completion(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;
	struct jsonw		 w;
	char			 stack[4096];
	int			 fire;

	fire = mock_fault_is_after(r->fault.kind) &&
	    r->fault.arg <= (unsigned)r->set.tokens;
	if (fire && r->fault.kind == MOCK_FAULT_SSE_ERROR_AFTER) {
		mock_api_fail(c);
		return;
	}
	if (fire && r->fault.arg == 0) {
		if (r->fault.kind == MOCK_FAULT_STALL_AFTER)
			r->state = MOCK_RESP_STALLED;
		else
			mock_resp_end(c, MOCK_OUTCOME_FAULT,
			    r->fault.kind == MOCK_FAULT_RESET_AFTER ?
			    MOCK_END_RESET : MOCK_END_CLOSE);
		return;
	}

	jsonw_init(&w, stack, sizeof(stack));
	mock_api_body(c, &w, (unsigned)r->set.tokens);
	if (w.oom) {
		jsonw_free(&w);
		mock_http_error(c, 500, "out of memory", NULL,
		    MOCK_OUTCOME_COMPLETED);
		return;
	}
	r->first_token_us = clock_mono_us();
	if (r->fault.kind == MOCK_FAULT_CONTENT_LENGTH_LIE) {
		r->keep_alive = 0;
		mock_http_head_body(c, 200, "application/json",
		    MOCK_FRAMING_LENGTH, w.len + MOCK_LIE_EXTRA, NULL, w.buf,
		    w.len);
		r->tokens_sent = (unsigned)r->set.tokens;
		mock_resp_end(c, MOCK_OUTCOME_FAULT, MOCK_END_CLOSE);
	} else if (fire) {
		/* Promise the whole body, deliver half of it. */
		r->keep_alive = 0;
		mock_http_head_body(c, 200, "application/json",
		    MOCK_FRAMING_LENGTH, w.len, NULL, w.buf, w.len / 2);
		if (r->fault.kind == MOCK_FAULT_STALL_AFTER)
			r->state = MOCK_RESP_STALLED;
		else
			mock_resp_end(c, MOCK_OUTCOME_FAULT,
			    r->fault.kind == MOCK_FAULT_RESET_AFTER ?
			    MOCK_END_RESET : MOCK_END_CLOSE);
	} else {
		r->tokens_sent = (unsigned)r->set.tokens;
		mock_http_respond(c, 200, "application/json", w.buf, w.len,
		    NULL, MOCK_OUTCOME_COMPLETED);
	}
	jsonw_free(&w);
}

/*
 * Length framing (and content_length_lie): the whole SSE body is built
 * first and sent at once with Content-Length; delays are ignored. A
 * close/reset/stall fault cuts the body after N events while the length
 * still promises all of it; sse_error_after ends the body with the error.
 */
static void
mock_stream_send_whole(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;
	struct evbuffer		*body;
	enum mock_fault_kind	 k = r->fault.kind;
	size_t			 len, cut = SIZE_MAX, clen;
	unsigned		 cut_tokens = 0;
	int			 sse_error = 0, lie;
	const char		*data;

	lie = k == MOCK_FAULT_CONTENT_LENGTH_LIE;
	if ((r->sink = evbuffer_new()) == NULL) {
		mock_http_error(c, 500, "out of memory", NULL,
		    MOCK_OUTCOME_COMPLETED);
		return;
	}
	for (;;) {
		if (mock_fault_is_after(k) && r->tokens_sent == r->fault.arg) {
			if (k == MOCK_FAULT_SSE_ERROR_AFTER) {
				mock_api_error_event(c);
				sse_error = 1;
				break;
			}
			if (cut == SIZE_MAX) {
				cut = evbuffer_get_length(r->sink);
				cut_tokens = r->tokens_sent;
			}
		}
		if (r->tokens_sent >= (unsigned)r->set.tokens)
			break;
		if (mock_stream_token(c) == -1)
			goto oom;
	}
	if (!sse_error && mock_stream_tail(c) == -1)
		goto oom;
	body = r->sink;
	r->sink = NULL;
	len = evbuffer_get_length(body);
	clen = len + (lie ? MOCK_LIE_EXTRA : 0);
	if (lie || cut != SIZE_MAX)
		r->keep_alive = 0;
	if (cut != SIZE_MAX) {
		len = cut;
		r->tokens_sent = cut_tokens;
	}
	if (r->tokens_sent > 0)
		r->first_token_us = clock_mono_us();
	data = len > 0 ? (const char *)evbuffer_pullup(body, (ev_ssize_t)len) :
	    NULL;
	mock_http_head_body(c, 200, "text/event-stream", MOCK_FRAMING_LENGTH,
	    clen, mock_sse_headers, data, data != NULL ? len : 0);
	evbuffer_free(body);

	if (cut != SIZE_MAX && k == MOCK_FAULT_STALL_AFTER)
		r->state = MOCK_RESP_STALLED;
	else if (cut != SIZE_MAX)
		mock_resp_end(c, MOCK_OUTCOME_FAULT, k == MOCK_FAULT_RESET_AFTER ?
		    MOCK_END_RESET : MOCK_END_CLOSE);
	else if (lie)
		mock_resp_end(c, MOCK_OUTCOME_FAULT, MOCK_END_CLOSE);
	else
		mock_resp_end(c, sse_error ? MOCK_OUTCOME_FAULT :
		    MOCK_OUTCOME_COMPLETED, MOCK_END_KEEP);
	return;

oom:
	/* Nothing has been sent yet: an error status can still say so. */
	evbuffer_free(r->sink);
	r->sink = NULL;
	r->tokens_sent = 0;
	mock_http_error(c, 500, "out of memory", NULL, MOCK_OUTCOME_COMPLETED);
}

/* Sends one more header line of a header block that never ends. */
static void
mock_stream_endless_tick(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;
	char			 line[96];
	int			 n;

	if (mock_conn_pending(c) <= MOCK_OUTPUT_HIGH) {
		n = snprintf(line, sizeof(line), "X-Mock-Endless-%u: "
		    "still-going\r\n", ++r->endless_lines);
		mock_conn_add(c, line, (size_t)n);
	}
	mock_stream_arm(c, r->set.interval_ms > MOCK_ENDLESS_MIN_MS ?
	    r->set.interval_ms : MOCK_ENDLESS_MIN_MS);
}

/* Handles the faults that act before any response header; 1 if it did. */
int
mock_stream_fault_before_headers(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;
	char			 msg[64];

	switch (r->fault.kind) {
	case MOCK_FAULT_CLOSE_BEFORE_HEADERS:
		mock_resp_end(c, MOCK_OUTCOME_FAULT, MOCK_END_CLOSE);
		return 1;
	case MOCK_FAULT_RESET_BEFORE_HEADERS:
		mock_resp_end(c, MOCK_OUTCOME_FAULT, MOCK_END_RESET);
		return 1;
	case MOCK_FAULT_STATUS:
		snprintf(msg, sizeof(msg), "mock fault: status %u",
		    r->fault.arg);
		mock_http_error(c, (int)r->fault.arg, msg,
		    r->fault.arg == 429 || r->fault.arg == 503 ?
		    "Retry-After: 1\r\n" : NULL, MOCK_OUTCOME_FAULT);
		return 1;
	case MOCK_FAULT_GARBAGE:
		mock_conn_add(c, "NOT HTTP\r\n\r\n", 12);
		mock_resp_end(c, MOCK_OUTCOME_FAULT, MOCK_END_CLOSE);
		return 1;
	case MOCK_FAULT_ENDLESS_HEADER:
		r->keep_alive = 0;
		r->state = MOCK_RESP_ENDLESS;
		mock_conn_add(c, "HTTP/1.1 200 OK\r\n", 17);
		mock_stream_endless_tick(c);
		return 1;
	default:
		return 0;
	}
}

/* Starts answering a generating endpoint, streaming or not. */
void
mock_stream_start(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;
	int64_t			 total;

	if (!r->stream) {
		if (r->fault.kind == MOCK_FAULT_CONTENT_LENGTH_LIE) {
			mock_stream_send_completion(c);
			return;
		}
		/* The whole generation time passes before the answer. */
		total = r->set.first_token_ms;
		if (r->set.tokens > 1)
			total += (int64_t)(r->set.tokens - 1) *
			    r->set.interval_ms;
		r->state = MOCK_RESP_WAITING;
		mock_stream_arm(c, total);
		return;
	}
	if (mock_api_stream_setup(c) == -1) {
		mock_http_error(c, 500, "out of memory", NULL,
		    MOCK_OUTCOME_COMPLETED);
		return;
	}
	r->framing = mock_resp_framing(c, 1);
	if (r->framing == MOCK_FRAMING_LENGTH ||
	    r->fault.kind == MOCK_FAULT_CONTENT_LENGTH_LIE) {
		mock_stream_send_whole(c);
		return;
	}
	mock_http_head(c, 200, "text/event-stream", r->framing, 0,
	    mock_sse_headers);
	if (mock_stream_fault_check(c))
		return;
	r->state = MOCK_RESP_WAITING;
	mock_stream_arm(c, r->set.first_token_ms);
}

/* The output drained below the mark: a blocked stream goes on. */
void
mock_stream_drained(struct mock_conn *c)
{
	if (c->resp.endpoint == MOCK_EP_GRPC) {
		mock_grpc_drained(c);
		return;
	}
	if (c->resp.state == MOCK_RESP_BLOCKED)
		mock_stream_tick(c);
}

/* The per-stream timer: first token, next token, or a header line. */
void
mock_stream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mock_conn	*c = arg;

	if (c->state != MOCK_CONN_RESPONDING)
		return;
	if (c->resp.endpoint == MOCK_EP_GRPC) {
		mock_grpc_timer(c);
		return;
	}
	switch (c->resp.state) {
	case MOCK_RESP_WAITING:
		if (!c->resp.stream) {
			mock_stream_send_completion(c);
			break;
		}
		/* FALLTHROUGH */
	case MOCK_RESP_STREAMING:
		mock_stream_tick(c);
		break;
	case MOCK_RESP_ENDLESS:
		mock_stream_endless_tick(c);
		break;
	default:
		break;
	}
}
