/* mock_http: cancelproxy-mock's HTTP/1.1 side: accepting, TLS, parsing
 * requests with llhttp, routing, plain answers, and noticing the client
 * leave (FIN or RST) in every phase, also while nothing flows. */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/log.h"
#include "tools/mock/mock.h"

#define MOCK_ARENA_MIN		1024
#define MOCK_HDRS_MIN		32
#define MOCK_BODY_KEEP		(64 * 1024)	/* larger bodies are let go */

static void	mock_http_parse(struct mock_conn *);
static void	mock_resp_finish(struct mock_conn *);

static const char mock_models_json[] =
    "{\"object\":\"list\",\"data\":[{\"id\":\"" MOCK_MODEL "\","
    "\"object\":\"model\",\"created\":1700000000,"
    "\"owned_by\":\"cancelproxy\"}]}";

/* Names a connection state for logs. */
const char *
mock_conn_state_name(enum mock_conn_state state)
{
	switch (state) {
	case MOCK_CONN_READING:
		return "reading";
	case MOCK_CONN_RESPONDING:
		return "responding";
	case MOCK_CONN_CLOSED:
		return "closed";
	}
	return "unknown";
}

/* Names an endpoint for logs. */
const char *
mock_endpoint_name(enum mock_endpoint ep)
{
	switch (ep) {
	case MOCK_EP_NOT_FOUND:
		return "not_found";
	case MOCK_EP_MODELS:
		return "models";
	case MOCK_EP_CHAT:
		return "chat_completions";
	case MOCK_EP_MESSAGES:
		return "messages";
	case MOCK_EP_RESPONSES:
		return "responses";
	case MOCK_EP_ECHO:
		return "echo";
	case MOCK_EP_GRPC:
		return "grpc";
	}
	return "unknown";
}

/* Names what happens to a connection after a response. */
const char *
mock_end_name(enum mock_end end)
{
	switch (end) {
	case MOCK_END_KEEP:
		return "keep";
	case MOCK_END_CLOSE:
		return "close";
	case MOCK_END_RESET:
		return "reset";
	}
	return "unknown";
}

/* Names a response state for logs. */
const char *
mock_resp_state_name(enum mock_resp_state state)
{
	switch (state) {
	case MOCK_RESP_IDLE:
		return "idle";
	case MOCK_RESP_WAITING:
		return "waiting";
	case MOCK_RESP_STREAMING:
		return "streaming";
	case MOCK_RESP_BLOCKED:
		return "blocked";
	case MOCK_RESP_STALLED:
		return "stalled";
	case MOCK_RESP_ENDLESS:
		return "endless";
	case MOCK_RESP_DRAINING:
		return "draining";
	}
	return "unknown";
}

/* The reason phrase for the statuses the mock sends. */
static const char *
mock_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 529: return "Overloaded";
	}
	if (status < 300)
		return "OK";
	if (status < 500)
		return "Client Error";
	return "Server Error";
}

/* Appends bytes to the request arena; -1 past the header limit. */
static int
mock_arena_append(struct mock_conn *c, const char *s, size_t n, size_t limit)
{
	struct mock_req	*q = &c->req;
	size_t		 ncap;
	char		*na;

	if (q->arena_len + n + 1 > limit)
		return -1;
	if (q->arena_len + n + 1 > q->arena_cap) {
		ncap = q->arena_cap ? q->arena_cap : MOCK_ARENA_MIN;
		while (ncap < q->arena_len + n + 1)
			ncap *= 2;
		if ((na = realloc(q->arena, ncap)) == NULL)
			return -1;
		q->arena = na;
		q->arena_cap = ncap;
	}
	memcpy(q->arena + q->arena_len, s, n);
	q->arena_len += n;
	return 0;
}

/* Saves a NUL-terminated copy of s in the arena; its offset, or -1. */
int64_t
mock_req_save(struct mock_conn *c, const char *s, size_t len)
{
	size_t	 off = c->req.arena_len;

	if (mock_arena_append(c, s, len, SIZE_MAX / 2) == -1 ||
	    mock_arena_append(c, "", 1, SIZE_MAX / 2) == -1)
		return -1;
	return (int64_t)off;
}

/* The arena string at off, or NULL for -1. */
const char *
mock_req_str(struct mock_conn *c, int64_t off)
{
	if (off < 0)
		return NULL;
	return c->req.arena + off;
}

/* The first value of a request header, or NULL. */
const char *
mock_req_header(struct mock_conn *c, const char *name)
{
	struct mock_req	*q = &c->req;
	size_t		 i;

	for (i = 0; i < q->nhdrs; i++)
		if (strcasecmp(q->arena + q->hdrs[i].name_off, name) == 0)
			return q->arena + q->hdrs[i].value_off;
	return NULL;
}

/* HTTP/2: one request field as it came in a HEADERS frame. */
int
mock_req_add_header(struct mock_conn *c, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	struct mock_req	*q = &c->req;
	struct mock_hdr	*nh;
	size_t		 ncap;

	if (q->nhdrs == MOCK_MAX_HEADERS)
		return -1;
	if (q->nhdrs == q->hdrs_cap) {
		ncap = q->hdrs_cap ? q->hdrs_cap * 2 : MOCK_HDRS_MIN;
		if ((nh = reallocarray(q->hdrs, ncap, sizeof(*nh))) == NULL)
			return -1;
		q->hdrs = nh;
		q->hdrs_cap = ncap;
	}
	nh = &q->hdrs[q->nhdrs];
	nh->name_off = (uint32_t)q->arena_len;
	nh->name_len = (uint32_t)nlen;
	if (mock_arena_append(c, name, nlen, MOCK_MAX_HEADER_BYTES) == -1 ||
	    mock_arena_append(c, "", 1, MOCK_MAX_HEADER_BYTES) == -1)
		return -1;
	nh->value_off = (uint32_t)q->arena_len;
	nh->value_len = (uint32_t)vlen;
	if (mock_arena_append(c, value, vlen, MOCK_MAX_HEADER_BYTES) == -1 ||
	    mock_arena_append(c, "", 1, MOCK_MAX_HEADER_BYTES) == -1)
		return -1;
	q->nhdrs++;
	return 0;
}

/* HTTP/2: the :path. */
int
mock_req_set_url(struct mock_conn *c, const char *url, size_t n)
{
	c->req.url_off = (uint32_t)c->req.arena_len;
	c->req.url_len = (uint32_t)n;
	if (mock_arena_append(c, url, n, MOCK_MAX_HEADER_BYTES) == -1 ||
	    mock_arena_append(c, "", 1, MOCK_MAX_HEADER_BYTES) == -1)
		return -1;
	return 0;
}

/* The connection a parser belongs to. */
static struct mock_conn *
mock_parser_conn(llhttp_t *p)
{
	return p->data;
}

/* Forgets the previous request; the buffers stay for the next one. */
static int
mock_on_message_begin(llhttp_t *p)
{
	struct mock_conn	*c = mock_parser_conn(p);
	struct mock_req		*q = &c->req;

	q->arena_len = 0;
	q->nhdrs = 0;
	q->body_len = 0;
	q->url_off = 0;
	q->url_len = 0;
	q->in_field = 0;
	q->error_status = 0;
	return 0;
}

/* Collects the request target, which may arrive in pieces. */
static int
mock_on_url(llhttp_t *p, const char *at, size_t n)
{
	struct mock_conn	*c = mock_parser_conn(p);

	if (mock_arena_append(c, at, n, MOCK_MAX_HEADER_BYTES) == -1) {
		c->req.error_status = 431;
		return -1;
	}
	c->req.url_len += (uint32_t)n;
	return 0;
}

/* Terminates the target so that it can be used as a C string. */
static int
mock_on_url_complete(llhttp_t *p)
{
	struct mock_conn	*c = mock_parser_conn(p);

	if (mock_arena_append(c, "", 1, MOCK_MAX_HEADER_BYTES) == -1) {
		c->req.error_status = 431;
		return -1;
	}
	return 0;
}

/* Collects a header name; the first piece opens a new header. */
static int
mock_on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct mock_conn	*c = mock_parser_conn(p);
	struct mock_req		*q = &c->req;
	struct mock_hdr		*nh;
	size_t			 ncap;

	if (!q->in_field) {
		if (q->nhdrs == MOCK_MAX_HEADERS) {
			q->error_status = 431;
			return -1;
		}
		if (q->nhdrs == q->hdrs_cap) {
			ncap = q->hdrs_cap ? q->hdrs_cap * 2 : MOCK_HDRS_MIN;
			if ((nh = reallocarray(q->hdrs, ncap,
			    sizeof(*nh))) == NULL)
				return -1;
			q->hdrs = nh;
			q->hdrs_cap = ncap;
		}
		memset(&q->hdrs[q->nhdrs], 0, sizeof(q->hdrs[0]));
		q->hdrs[q->nhdrs].name_off = (uint32_t)q->arena_len;
		q->nhdrs++;
		q->in_field = 1;
	}
	if (mock_arena_append(c, at, n, MOCK_MAX_HEADER_BYTES) == -1) {
		q->error_status = 431;
		return -1;
	}
	q->hdrs[q->nhdrs - 1].name_len += (uint32_t)n;
	return 0;
}

/* Ends a header name; its value starts right after, possibly empty. */
static int
mock_on_header_field_complete(llhttp_t *p)
{
	struct mock_conn	*c = mock_parser_conn(p);
	struct mock_req		*q = &c->req;

	if (mock_arena_append(c, "", 1, MOCK_MAX_HEADER_BYTES) == -1) {
		q->error_status = 431;
		return -1;
	}
	q->hdrs[q->nhdrs - 1].value_off = (uint32_t)q->arena_len;
	q->in_field = 0;
	return 0;
}

/* Collects a header value, which may arrive in pieces. */
static int
mock_on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct mock_conn	*c = mock_parser_conn(p);
	struct mock_req		*q = &c->req;

	if (mock_arena_append(c, at, n, MOCK_MAX_HEADER_BYTES) == -1) {
		q->error_status = 431;
		return -1;
	}
	q->hdrs[q->nhdrs - 1].value_len += (uint32_t)n;
	return 0;
}

/* Terminates a header value. */
static int
mock_on_header_value_complete(llhttp_t *p)
{
	struct mock_conn	*c = mock_parser_conn(p);

	if (mock_arena_append(c, "", 1, MOCK_MAX_HEADER_BYTES) == -1) {
		c->req.error_status = 431;
		return -1;
	}
	return 0;
}

/* Refuses a body over the limit early; answers Expect: 100-continue. */
static int
mock_on_headers_complete(llhttp_t *p)
{
	struct mock_conn	*c = mock_parser_conn(p);
	const char		*expect;
	struct iovec		 iov;

	if ((p->flags & F_CONTENT_LENGTH) &&
	    p->content_length > MOCK_MAX_BODY_BYTES) {
		c->req.error_status = 413;
		return -1;
	}
	expect = mock_req_header(c, "Expect");
	if (expect != NULL && strcasecmp(expect, "100-continue") == 0 &&
	    mock_req_header(c, "X-Mock-Fault") == NULL) {
		iov.iov_base = (void *)"HTTP/1.1 100 Continue\r\n\r\n";
		iov.iov_len = 25;
		mock_conn_write(c, &iov, 1);
	}
	return 0;
}

/* Collects the body up to the limit. */
static int
mock_on_body(llhttp_t *p, const char *at, size_t n)
{
	return mock_req_add_body(mock_parser_conn(p), at, n);
}

/* Appends request body bytes; -1 past the limit. */
int
mock_req_add_body(struct mock_conn *c, const char *at, size_t n)
{
	struct mock_req		*q = &c->req;
	size_t			 ncap;
	char			*nb;

	if (q->body_len + n > MOCK_MAX_BODY_BYTES) {
		q->error_status = 413;
		return -1;
	}
	if (q->body_len + n + 1 > q->body_cap) {
		ncap = q->body_cap ? q->body_cap : 1024;
		while (ncap < q->body_len + n + 1)
			ncap *= 2;
		if ((nb = realloc(q->body, ncap)) == NULL)
			return -1;
		q->body = nb;
		q->body_cap = ncap;
	}
	memcpy(q->body + q->body_len, at, n);
	q->body_len += n;
	q->body[q->body_len] = '\0';
	return 0;
}

/* Stops the parser at the end of a request, so that pipelined ones wait. */
static int
mock_on_message_complete(llhttp_t *p)
{
	return HPE_PAUSED;
}

static const llhttp_settings_t mock_llhttp_settings = {
	.on_message_begin = mock_on_message_begin,
	.on_url = mock_on_url,
	.on_url_complete = mock_on_url_complete,
	.on_header_field = mock_on_header_field,
	.on_header_field_complete = mock_on_header_field_complete,
	.on_header_value = mock_on_header_value,
	.on_header_value_complete = mock_on_header_value_complete,
	.on_headers_complete = mock_on_headers_complete,
	.on_body = mock_on_body,
	.on_message_complete = mock_on_message_complete,
};

/*
 * Writes to the client. When nothing is queued on a plain socket the bytes
 * go straight to the kernel with one sendmsg(2): one system call per token
 * instead of an epoll change, a write and another epoll change. Whatever
 * the kernel does not take, and every error, goes to the bufferevent, which
 * writes it later and reports EPIPE/ECONNRESET through the event callback.
 */
void
mock_conn_write(struct mock_conn *c, const struct iovec *iov, int n)
{
	struct evbuffer	*out;
	struct msghdr	 mh;
	size_t		 total = 0, skip = 0;
	ssize_t		 w;
	int		 i;

	if (c->state == MOCK_CONN_CLOSED)
		return;
	for (i = 0; i < n; i++)
		total += iov[i].iov_len;
	c->resp.bytes_out += total;
	if (c->parent != NULL) {
		mock_h2_stream_write(c, iov, n);
		return;
	}
	out = bufferevent_get_output(c->bev);
	if (!c->tls && evbuffer_get_length(out) == 0) {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = (struct iovec *)(uintptr_t)iov;
		mh.msg_iovlen = (size_t)n;
		do
			w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (w == -1 && errno == EINTR);
		if (w > 0)
			skip = (size_t)w;
	}
	for (i = 0; i < n; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		evbuffer_add(out, (const char *)iov[i].iov_base + skip,
		    iov[i].iov_len - skip);
		skip = 0;
	}
}

/* The output not yet written (the socket's, or the stream's). */
size_t
mock_conn_pending(struct mock_conn *c)
{
	if (c->parent != NULL)
		return mock_h2_stream_pending(c);
	if (c->bev == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* Writes one contiguous piece. */
void
mock_conn_add(struct mock_conn *c, const char *data, size_t len)
{
	struct iovec	 iov;

	iov.iov_base = (void *)(uintptr_t)data;
	iov.iov_len = len;
	mock_conn_write(c, &iov, 1);
}

/* Resolves the framing of this answer; close framing ends keep-alive. */
enum mock_framing
mock_resp_framing(struct mock_conn *c, int streaming)
{
	enum mock_framing	 f = c->resp.framing;

	if (f == MOCK_FRAMING_DEFAULT)
		f = streaming ? MOCK_FRAMING_CHUNKED : MOCK_FRAMING_LENGTH;
	if (f == MOCK_FRAMING_CHUNKED && c->resp.http10)
		f = MOCK_FRAMING_CLOSE;
	if (f == MOCK_FRAMING_CLOSE)
		c->resp.keep_alive = 0;
	return f;
}

/* Formats a status line and headers; extra is preformatted "Name: v\r\n". */
static size_t
mock_http_head_fmt(struct mock_conn *c, char *head, size_t size, int status,
    const char *ctype, enum mock_framing framing, size_t content_length,
    const char *extra)
{
	const char	*rid = mock_req_header(c, "X-Request-Id");
	char		 len[64];
	int		 n;

	if (rid != NULL && strlen(rid) > 512)
		rid = NULL;
	if (framing == MOCK_FRAMING_LENGTH)
		snprintf(len, sizeof(len), "Content-Length: %zu\r\n",
		    content_length);
	else if (framing == MOCK_FRAMING_CHUNKED)
		snprintf(len, sizeof(len), "Transfer-Encoding: chunked\r\n");
	else
		len[0] = '\0';
	n = snprintf(head, size, "HTTP/1.1 %d %s\r\n"
	    "Server: cancelproxy-mock\r\n"
	    "Content-Type: %s\r\n"
	    "%s%s%s%s"
	    "Connection: %s\r\n"
	    "%s\r\n",
	    status, mock_http_reason(status), ctype, len,
	    rid != NULL ? "X-Request-Id: " : "", rid != NULL ? rid : "",
	    rid != NULL ? "\r\n" : "",
	    c->resp.keep_alive ? "keep-alive" : "close",
	    extra != NULL ? extra : "");
	if (n < 0 || (size_t)n >= size)
		n = snprintf(head, size, "HTTP/1.1 500 Internal Server "
		    "Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	return (size_t)n;
}

/* Writes a status line and headers alone (a stream's body comes later). */
void
mock_http_head(struct mock_conn *c, int status, const char *ctype,
    enum mock_framing framing, size_t content_length, const char *extra)
{
	char	 head[MOCK_HEAD_MAX];

	mock_conn_add(c, head, mock_http_head_fmt(c, head, sizeof(head),
	    status, ctype, framing, content_length, extra));
}

/* Writes headers and len bytes of body as they are, with one write. */
void
mock_http_head_body(struct mock_conn *c, int status, const char *ctype,
    enum mock_framing framing, size_t content_length, const char *extra,
    const char *body, size_t len)
{
	struct iovec	 iov[2];
	char		 head[MOCK_HEAD_MAX];

	iov[0].iov_base = head;
	iov[0].iov_len = mock_http_head_fmt(c, head, sizeof(head), status,
	    ctype, framing, content_length, extra);
	iov[1].iov_base = (void *)(uintptr_t)body;
	iov[1].iov_len = len;
	mock_conn_write(c, iov, len > 0 ? 2 : 1);
}

/* Sends a whole answer in the request's framing, then ends the response. */
void
mock_http_respond(struct mock_conn *c, int status, const char *ctype,
    const char *body, size_t len, const char *extra,
    enum mock_outcome outcome)
{
	enum mock_framing	 f = mock_resp_framing(c, 0);
	struct iovec		 iov[4];
	char			 head[MOCK_HEAD_MAX], hex[32];
	int			 n = 1;

	iov[0].iov_base = head;
	iov[0].iov_len = mock_http_head_fmt(c, head, sizeof(head), status,
	    ctype, f, len, extra);
	if (f == MOCK_FRAMING_CHUNKED && len > 0) {
		iov[1].iov_base = hex;
		iov[1].iov_len = (size_t)snprintf(hex, sizeof(hex), "%zx\r\n",
		    len);
		iov[2].iov_base = (void *)(uintptr_t)body;
		iov[2].iov_len = len;
		iov[3].iov_base = (void *)"\r\n0\r\n\r\n";
		iov[3].iov_len = 7;
		n = 4;
	} else if (f == MOCK_FRAMING_CHUNKED) {
		iov[1].iov_base = (void *)"0\r\n\r\n";
		iov[1].iov_len = 5;
		n = 2;
	} else if (len > 0) {
		iov[1].iov_base = (void *)(uintptr_t)body;
		iov[1].iov_len = len;
		n = 2;
	}
	mock_conn_write(c, iov, n);
	mock_resp_end(c, outcome, c->resp.keep_alive ? MOCK_END_KEEP :
	    MOCK_END_CLOSE);
}

/* Sends a JSON error in the endpoint's shape: Anthropic's for Messages,
 * OpenAI's {"error":{"message","type","param","code"}} otherwise. */
void
mock_http_error(struct mock_conn *c, int status, const char *message,
    const char *extra, enum mock_outcome outcome)
{
	struct jsonw	 w;
	char		 stack[512];

	jsonw_init(&w, stack, sizeof(stack));
	mock_api_error_json(c, &w, status, message);
	mock_http_respond(c, status, "application/json", w.buf, w.len, extra,
	    outcome);
	jsonw_free(&w);
}

/* Answers /debug/echo with the request exactly as it arrived. */
static void
mock_http_echo(struct mock_conn *c)
{
	struct mock_req	*q = &c->req;
	struct jsonw	 w;
	char		 stack[4096];
	size_t		 i;

	jsonw_init(&w, stack, sizeof(stack));
	jsonw_obj_open(&w);
	jsonw_kstr(&w, "method", c->resp.method);
	jsonw_lkey(&w, "path");
	jsonw_strn(&w, q->arena + q->url_off, q->url_len);
	jsonw_lkey(&w, "headers");
	jsonw_arr_open(&w);
	for (i = 0; i < q->nhdrs; i++) {
		jsonw_arr_open(&w);
		jsonw_strn(&w, q->arena + q->hdrs[i].name_off,
		    q->hdrs[i].name_len);
		jsonw_strn(&w, q->arena + q->hdrs[i].value_off,
		    q->hdrs[i].value_len);
		jsonw_arr_close(&w);
	}
	jsonw_arr_close(&w);
	jsonw_lkey(&w, "body");
	jsonw_strn(&w, q->body != NULL ? q->body : "", q->body_len);
	jsonw_obj_close(&w);
	if (w.oom)
		mock_http_error(c, 500, "out of memory", NULL,
		    MOCK_OUTCOME_COMPLETED);
	else
		mock_http_respond(c, 200, "application/json", w.buf, w.len,
		    NULL, MOCK_OUTCOME_COMPLETED);
	jsonw_free(&w);
}

/* Picks the endpoint from the method and the path without its query. */
static enum mock_endpoint
mock_http_route(struct mock_conn *c)
{
	const char	*url = c->req.arena + c->req.url_off;
	const char	*m = c->resp.method;
	size_t		 len = strcspn(url, "?#");

	if (mock_grpc_is_call(c))
		return MOCK_EP_GRPC;
	if (len == 10 && memcmp(url, "/v1/models", 10) == 0 &&
	    strcmp(m, "GET") == 0)
		return MOCK_EP_MODELS;
	if (len == 20 && memcmp(url, "/v1/chat/completions", 20) == 0 &&
	    strcmp(m, "POST") == 0)
		return MOCK_EP_CHAT;
	if (len == 12 && memcmp(url, "/v1/messages", 12) == 0 &&
	    strcmp(m, "POST") == 0)
		return MOCK_EP_MESSAGES;
	if (len == 13 && memcmp(url, "/v1/responses", 13) == 0 &&
	    strcmp(m, "POST") == 0)
		return MOCK_EP_RESPONSES;
	if (len == 11 && memcmp(url, "/debug/echo", 11) == 0 &&
	    (strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0))
		return MOCK_EP_ECHO;
	return MOCK_EP_NOT_FOUND;
}

/* Starts answering a complete request; the parser waits until it ends. */
static void
mock_http_dispatch(struct mock_conn *c)
{
	mock_http_answer(c, llhttp_method_name(llhttp_get_method(&c->parser)),
	    llhttp_get_http_major(&c->parser) == 1 &&
	    llhttp_get_http_minor(&c->parser) == 0,
	    llhttp_should_keep_alive(&c->parser) && !c->overflowed);
}

/* Answers a complete request (HTTP/1.1 or one HTTP/2 stream). */
void
mock_http_answer(struct mock_conn *c, const char *method, int http10,
    int keep_alive)
{
	struct mock_resp	*r = &c->resp;
	struct mock_server	*srv = c->srv;
	const char		*err = NULL, *idpfx;
	char			 msg[160];

	c->state = MOCK_CONN_RESPONDING;
	c->nrequests++;
	memset(r, 0, sizeof(*r));
	r->model_off = -1;
	r->start_us = clock_mono_us();
	r->created = time(NULL);
	r->method = method;
	r->http10 = http10;
	r->keep_alive = keep_alive;
	r->set = srv->defaults;
	r->grpc_status = -1;
	r->endpoint = mock_http_route(c);
	r->stream = r->endpoint == MOCK_EP_GRPC;
	/* The id prefixes of the real APIs: chatcmpl-, msg_, resp_. */
	idpfx = r->endpoint == MOCK_EP_MESSAGES ? "msg_" :
	    r->endpoint == MOCK_EP_RESPONSES ? "resp_" : "chatcmpl-";
	snprintf(r->id, sizeof(r->id), "%smock%016llx", idpfx,
	    (unsigned long long)srv->next_resp_id++);

	if (mock_stream_settings(c, &err) == -1 ||
	    (mock_endpoint_api(r->endpoint) != NULL && mock_api_prepare(c,
	    c->req.body != NULL ? c->req.body : "", c->req.body_len,
	    &err) == -1)) {
		mock_record_request(c);
		mock_http_error(c, 400, err, NULL, MOCK_OUTCOME_COMPLETED);
		return;
	}
	mock_record_request(c);
	if (mock_stream_fault_before_headers(c))
		return;

	switch (r->endpoint) {
	case MOCK_EP_MODELS:
		mock_http_respond(c, 200, "application/json", mock_models_json,
		    sizeof(mock_models_json) - 1, NULL, MOCK_OUTCOME_COMPLETED);
		break;
	case MOCK_EP_ECHO:
		mock_http_echo(c);
		break;
	case MOCK_EP_CHAT:
	case MOCK_EP_MESSAGES:
	case MOCK_EP_RESPONSES:
		mock_stream_start(c);
		break;
	case MOCK_EP_GRPC:
		mock_grpc_start(c);
		break;
	case MOCK_EP_NOT_FOUND:
		snprintf(msg, sizeof(msg), "no route for %s %.100s", r->method,
		    c->req.arena + c->req.url_off);
		mock_http_error(c, 404, msg, NULL, MOCK_OUTCOME_COMPLETED);
		break;
	}
}

/* Answers a request that could not be parsed, then closes. */
static void
mock_http_bad_request(struct mock_conn *c, llhttp_errno_t err)
{
	struct mock_resp	*r = &c->resp;
	int			 status = c->req.error_status;
	char			 msg[200];

	if (status == 0)
		status = 400;
	c->state = MOCK_CONN_RESPONDING;
	memset(r, 0, sizeof(*r));
	r->model_off = -1;
	r->start_us = clock_mono_us();
	r->no_record = 1;
	r->keep_alive = 0;
	if (status == 431)
		snprintf(msg, sizeof(msg), "request headers too large "
		    "(limit %d bytes, %d headers)", MOCK_MAX_HEADER_BYTES,
		    MOCK_MAX_HEADERS);
	else if (status == 413)
		snprintf(msg, sizeof(msg), "request body too large (limit %d "
		    "bytes)", MOCK_MAX_BODY_BYTES);
	else
		snprintf(msg, sizeof(msg), "malformed HTTP request: %s: %s",
		    llhttp_errno_name(err), llhttp_get_error_reason(&c->parser));
	log_msg(LOG_LEVEL_WARN, "mock_bad_request", "conn %llu: %d %s",
	    (unsigned long long)c->id, status, msg);
	mock_http_error(c, status, msg, NULL, MOCK_OUTCOME_COMPLETED);
}

/*
 * Feeds buffered input to the parser until a request is complete. Bytes
 * after it stay in the input buffer until the response has ended, which
 * keeps pipelined requests in order and their storage untouched.
 */
static void
mock_http_parse(struct mock_conn *c)
{
	struct evbuffer		*in;
	struct evbuffer_iovec	 v;
	llhttp_errno_t		 err;
	size_t			 used;

	c->in_parse = 1;
	while (c->state == MOCK_CONN_READING) {
		in = bufferevent_get_input(c->bev);
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		err = llhttp_execute(&c->parser, v.iov_base, v.iov_len);
		if (err == HPE_OK) {
			evbuffer_drain(in, v.iov_len);
			continue;
		}
		if (err == HPE_PAUSED) {
			used = (size_t)(llhttp_get_error_pos(&c->parser) -
			    (const char *)v.iov_base);
			evbuffer_drain(in, used);
			llhttp_resume(&c->parser);
			mock_http_dispatch(c);
			continue;
		}
		evbuffer_drain(in, evbuffer_get_length(in));
		mock_http_bad_request(c, err);
		break;
	}
	c->in_parse = 0;
}

/* Reads: parses when idle, queues (boundedly) while answering. */
static void
mock_http_read_cb(struct bufferevent *bev, void *arg)
{
	struct mock_conn	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);

	if (c->h2 != NULL) {
		mock_h2_read(c);
		return;
	}
	if (c->state == MOCK_CONN_READING && c->nrequests == 0 &&
	    mock_h2_sniff(c))
		return;		/* HTTP/2 (or not enough bytes to tell) */
	if (c->state == MOCK_CONN_READING) {
		mock_http_parse(c);
		return;
	}
	/*
	 * Keep reading while answering: that is how a FIN or RST is seen at
	 * once, and unread data would make our own close send an RST.
	 */
	if (evbuffer_get_length(in) > MOCK_MAX_QUEUED_BYTES) {
		evbuffer_drain(in, evbuffer_get_length(in));
		c->overflowed = 1;
	}
}

/* The output drained: end a finished response or resume a blocked stream. */
static void
mock_http_write_cb(struct bufferevent *bev, void *arg)
{
	struct mock_conn	*c = arg;

	if (c->h2 != NULL) {
		mock_h2_write(c);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	mock_resp_drained(c);
}

/* Everything written: end a finished response or resume a blocked one. */
void
mock_resp_drained(struct mock_conn *c)
{
	if (c->state != MOCK_CONN_RESPONDING)
		return;
	if (c->resp.state == MOCK_RESP_DRAINING)
		mock_resp_finish(c);
	else if (c->resp.state == MOCK_RESP_BLOCKED)
		mock_stream_drained(c);
}

/* The client closed (EOF: FIN) or failed (error: RST, EPIPE, TLS). */
static void
mock_http_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct mock_conn	*c = arg;
	uint64_t		 now = clock_mono_us();
	enum mock_outcome	 outcome;
	int			 err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED)
		return;		/* TLS handshake done */
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	outcome = (what & BEV_EVENT_EOF) ? MOCK_OUTCOME_CLIENT_FIN :
	    MOCK_OUTCOME_CLIENT_RST;
	c->peer_gone = 1;
	if (c->h2 != NULL)
		mock_h2_gone(c, outcome, now);
	if (c->state == MOCK_CONN_RESPONDING && !c->resp.no_record)
		mock_record_stream(c, outcome, now);
	else if ((what & BEV_EVENT_ERROR) && err != ECONNRESET &&
	    err != EPIPE && err != 0 && log_enabled(LOG_LEVEL_DEBUG))
		log_msg(LOG_LEVEL_DEBUG, "mock_conn_error", "conn %llu: %s",
		    (unsigned long long)c->id, strerror(err));
	mock_conn_close(c, MOCK_END_CLOSE);
}

/* Ends the response: the record and the connection's fate wait for the
 * output to drain, so that bytes_out and a late client close are exact. */
void
mock_resp_end(struct mock_conn *c, enum mock_outcome outcome,
    enum mock_end how)
{
	struct mock_resp	*r = &c->resp;

	if (c->state != MOCK_CONN_RESPONDING)
		return;
	event_del(&c->timer);
	r->end_outcome = outcome;
	r->end = how;
	r->state = MOCK_RESP_DRAINING;
	if (mock_conn_pending(c) == 0)
		mock_resp_finish(c);
}

/* Writes the record, then closes or goes back to parsing. */
static void
mock_resp_finish(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;
	enum mock_end		 how = r->end;

	if (!r->no_record)
		mock_record_stream(c, r->end_outcome, 0);
	if (c->parent != NULL) {
		mock_conn_close(c, how);	/* one stream, one answer */
		return;
	}
	if (how == MOCK_END_KEEP && (!r->keep_alive || c->overflowed))
		how = MOCK_END_CLOSE;
	if (how != MOCK_END_KEEP) {
		mock_conn_close(c, how);
		return;
	}
	r->state = MOCK_RESP_IDLE;
	c->state = MOCK_CONN_READING;
	if (c->req.body_cap > MOCK_BODY_KEEP) {
		free(c->req.body);
		c->req.body = NULL;
		c->req.body_cap = c->req.body_len = 0;
	}
	if (!c->in_parse)
		mock_http_parse(c);
}

/* Takes a new connection: TCP_NODELAY, TLS if configured, read at once. */
void
mock_http_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct mock_server	*srv = arg;
	struct mock_conn	*c;
	SSL			*ssl;
	int			 one = 1;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_msg(LOG_LEVEL_WARN, "mock_accept_error", "out of memory");
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = srv;
	c->id = srv->next_conn_id++;
	c->fd = fd;
	if (srv->ssl_ctx != NULL) {
		if ((ssl = SSL_new(srv->ssl_ctx)) == NULL)
			goto fail;
		c->tls = 1;
		c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (c->bev == NULL)
			goto fail;	/* libevent has freed ssl */
	} else if ((c->bev = bufferevent_socket_new(srv->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		goto fail;
	llhttp_init(&c->parser, HTTP_REQUEST, &mock_llhttp_settings);
	c->parser.data = c;
	evtimer_assign(&c->timer, srv->base, mock_stream_timer_cb, c);
	c->state = MOCK_CONN_READING;
	c->resp.model_off = -1;
	bufferevent_setcb(c->bev, mock_http_read_cb, mock_http_write_cb,
	    mock_http_event_cb, c);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) == -1) {
		bufferevent_free(c->bev);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->nconns++;
	return;
fail:
	log_msg(LOG_LEVEL_WARN, "mock_accept_error", "conn %llu: cannot set "
	    "up the connection", (unsigned long long)c->id);
	close(fd);
	free(c);
}

/*
 * Closes a connection once: the timer stops, the socket goes (with RST for
 * MOCK_END_RESET), and the memory is freed at the end of the loop turn so
 * that the callback that got here may still look at it.
 */
void
mock_conn_close(struct mock_conn *c, enum mock_end how)
{
	struct mock_server	*srv = c->srv;
	struct linger		 lg;
	SSL			*ssl;

	if (c->state == MOCK_CONN_CLOSED)
		return;
	c->state = MOCK_CONN_CLOSED;
	event_del(&c->timer);
	if (c->resp.sink != NULL) {
		evbuffer_free(c->resp.sink);
		c->resp.sink = NULL;
	}
	if (c->parent != NULL) {
		/* A stream: ends on its connection, freed with the dead. */
		mock_h2_stream_close(c, how);
		TAILQ_INSERT_TAIL(&srv->dead, c, entry);
		event_active(srv->reap_ev, EV_TIMEOUT, 0);
		return;
	}
	if (c->h2 != NULL)
		mock_h2_conn_close(c);
	if (how == MOCK_END_RESET) {
		lg.l_onoff = 1;
		lg.l_linger = 0;
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else if (c->tls && !c->peer_gone) {
		/* A close_notify, so that close framing ends cleanly. */
		ssl = bufferevent_openssl_get_ssl(c->bev);
		if (ssl != NULL && !SSL_in_init(ssl))
			SSL_shutdown(ssl);
		ERR_clear_error();
	}
	bufferevent_free(c->bev);
	c->bev = NULL;
	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->nconns--;
	TAILQ_INSERT_TAIL(&srv->dead, c, entry);
	event_active(srv->reap_ev, EV_TIMEOUT, 0);
}

/* Frees connections closed during the last loop turn. */
void
mock_http_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mock_server	*srv = arg;
	struct mock_conn	*c;

	while ((c = TAILQ_FIRST(&srv->dead)) != NULL) {
		TAILQ_REMOVE(&srv->dead, c, entry);
		mock_h2_free(c);
		free(c->req.arena);
		free(c->req.hdrs);
		free(c->req.body);
		free(c);
	}
}

/* Closes and frees every connection at exit; no records are written. */
void
mock_http_close_all(struct mock_server *srv)
{
	struct mock_conn	*c;

	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		mock_conn_close(c, MOCK_END_CLOSE);
	mock_http_reap_cb(-1, 0, srv);
}
