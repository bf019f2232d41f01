/* harness_http: the HTTP/1.1 side of the test client: requests built as
 * bytes, responses read with llhttp (so framing the proxy gets wrong is
 * an error, not a guess), and server-sent events read one at a time. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "tests/integration/harness.h"

/* The reader's state for one connection: the parser and every response
 * read on it (cur is the one being parsed). */
struct http_state {
	llhttp_t		 parser;
	llhttp_settings_t	 settings;
	struct hresp		**resps;
	int			 nresps, capresps;
	struct hresp		*cur;
	char			*name, *value;	/* the header being parsed */
	size_t			 name_len, value_len;
	size_t			 name_cap, value_cap;
};

/* Appends n bytes to a NUL-terminated growing string. */
static void
grow_append(char **s, size_t *len, size_t *cap, const char *p, size_t n)
{
	char	*ns;
	size_t	 ncap = *cap ? *cap : 256;

	while (*len + n + 1 > ncap)
		ncap *= 2;
	if (ncap != *cap || *s == NULL) {
		if ((ns = realloc(*s, ncap)) == NULL)
			abort();
		*s = ns;
		*cap = ncap;
	}
	memcpy(*s + *len, p, n);
	*len += n;
	(*s)[*len] = '\0';
}

static struct http_state *
state_of(llhttp_t *p)
{
	return p->data;
}

static int
on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct http_state	*st = state_of(p);

	grow_append(&st->name, &st->name_len, &st->name_cap, at, n);
	return 0;
}

static int
on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct http_state	*st = state_of(p);

	grow_append(&st->value, &st->value_len, &st->value_cap, at, n);
	return 0;
}

static int
on_header_value_complete(llhttp_t *p)
{
	struct http_state	*st = state_of(p);
	struct hresp		*r = st->cur;
	struct hheader		*h;

	if ((h = realloc(r->headers, (size_t)(r->nheaders + 1) *
	    sizeof(*h))) == NULL)
		abort();
	r->headers = h;
	h[r->nheaders].name = st->name ? st->name : strdup("");
	h[r->nheaders].value = st->value ? st->value : strdup("");
	r->nheaders++;
	st->name = st->value = NULL;
	st->name_len = st->value_len = st->name_cap = st->value_cap = 0;
	return 0;
}

static int
on_headers_complete(llhttp_t *p)
{
	struct hresp	*r = state_of(p)->cur;
	const char	*te;

	r->status = llhttp_get_status_code(p);
	te = hresp_header(r, "Transfer-Encoding");
	r->chunked = te != NULL && strcasestr(te, "chunked") != NULL;
	r->head_done = 1;
	grow_append(&r->body, &r->body_len, &r->body_cap, "", 0);
	/* Stop after the head so the body stays unread until asked for. */
	return HPE_PAUSED;
}

static int
on_body(llhttp_t *p, const char *at, size_t n)
{
	struct hresp	*r = state_of(p)->cur;

	grow_append(&r->body, &r->body_len, &r->body_cap, at, n);
	return 0;
}

static int
on_chunk_header(llhttp_t *p)
{
	if (p->content_length > 0)
		state_of(p)->cur->nchunks++;
	return 0;
}

static int
on_message_complete(llhttp_t *p)
{
	state_of(p)->cur->complete = 1;
	/* Bytes after this response belong to the next one. */
	return HPE_PAUSED;
}

static void *
state_new(void)
{
	struct http_state	*st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		abort();
	llhttp_settings_init(&st->settings);
	st->settings.on_header_field = on_header_field;
	st->settings.on_header_value = on_header_value;
	st->settings.on_header_value_complete = on_header_value_complete;
	st->settings.on_headers_complete = on_headers_complete;
	st->settings.on_body = on_body;
	st->settings.on_chunk_header = on_chunk_header;
	st->settings.on_message_complete = on_message_complete;
	return st;
}

static void
resp_free(struct hresp *r)
{
	int	i;

	for (i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->head);
	free(r->body);
	free(r->error);
	cJSON_Delete(r->json);
	free(r);
}

static void
state_free(void *arg)
{
	struct http_state	*st = arg;
	int			 i;

	for (i = 0; i < st->nresps; i++)
		resp_free(st->resps[i]);
	free(st->resps);
	free(st->name);
	free(st->value);
	free(st);
}

static struct http_state *
state_get(struct hconn *c)
{
	return hconn_http_(c, state_new, state_free);
}

/* Notes the first thing that went wrong with a response. */
static void __attribute__((format(printf, 2, 3)))
set_error(struct hresp *r, const char *fmt, ...)
{
	va_list	ap;

	if (r->error != NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&r->error, fmt, ap) == -1)
		abort();
	va_end(ap);
}

/* Parses what the connection has buffered; 1 when bytes were used, 0
 * when there were none, -1 on a framing error. */
static int
feed(struct hconn *c, struct http_state *st)
{
	struct hresp	*r = st->cur;
	const char	*data;
	size_t		 len, used;
	llhttp_errno_t	 err;
	int		 in_head = !r->head_done;

	data = hconn_data(c, &len);
	if (len == 0 && r->head_done && !r->complete && r->error == NULL &&
	    (r->status == 204 || r->status == 304)) {
		/* No body follows: the parser, paused after the head, ends
		 * the message when it runs again, with no bytes to give it. */
		llhttp_execute(&st->parser, data, 0);
		return r->complete;
	}
	if (len == 0 || r->complete || r->error != NULL)
		return r->error != NULL ? -1 : 0;
	err = llhttp_execute(&st->parser, data, len);
	if (err == HPE_OK)
		used = len;
	else if (err == HPE_PAUSED) {
		used = (size_t)(llhttp_get_error_pos(&st->parser) - data);
		llhttp_resume(&st->parser);
	} else {
		set_error(r, "bad HTTP framing: %s (%s)",
		    llhttp_errno_name(err),
		    llhttp_get_error_reason(&st->parser));
		fprintf(stderr, "harness: %s\n", r->error);
		return -1;
	}
	if (in_head)
		grow_append(&r->head, &r->head_len, &r->head_cap, data, used);
	hconn_consume(c, used);
	return used > 0;
}

/* The peer closed: lets the parser end a body that runs to the close. */
static void
at_eof(struct http_state *st)
{
	struct hresp	*r = st->cur;
	llhttp_errno_t	 err;

	r->eof = 1;
	if (r->complete || r->error != NULL)
		return;
	err = llhttp_finish(&st->parser);
	if (err != HPE_OK && err != HPE_PAUSED)
		set_error(r, "%s", r->head_done ?
		    "the peer closed before the body ended" :
		    "the peer closed before the response head");
}

/*
 * Reads more for the response being parsed: feeds what is buffered, else
 * waits for bytes. 1 to look again, 0 when the wait ran out or the
 * connection cannot give more.
 */
static int
advance(struct hconn *c, struct http_state *st, int64_t dl)
{
	struct hresp	*r = st->cur;
	int		 n;

	if ((n = feed(c, st)) == -1)
		return 0;
	if (n == 1)
		return 1;
	if (r->eof || r->rst)
		return 0;
	n = hconn_fill_until_(c, dl);
	if (n > 0)
		return 1;
	if (n == 0) {
		at_eof(st);
		return 1;
	}
	if (hconn_peer_closed(c) == 2) {
		r->rst = 1;
		set_error(r, "%s", "the peer reset the connection");
		return 0;
	}
	return 0;
}

struct hresp *
hconn_read_head(struct hconn *c, int timeout_ms)
{
	struct http_state	*st = state_get(c);
	struct hresp		*r, **nr;
	int64_t			 dl = hnow_ms() + hscaled(timeout_ms);

	if ((r = calloc(1, sizeof(*r))) == NULL)
		abort();
	if (st->nresps == st->capresps) {
		st->capresps = st->capresps ? st->capresps * 2 : 8;
		if ((nr = realloc(st->resps, (size_t)st->capresps *
		    sizeof(*nr))) == NULL)
			abort();
		st->resps = nr;
	}
	st->resps[st->nresps++] = r;
	st->cur = r;
	free(st->name);
	free(st->value);
	st->name = st->value = NULL;
	st->name_len = st->value_len = st->name_cap = st->value_cap = 0;
	llhttp_init(&st->parser, HTTP_RESPONSE, &st->settings);
	st->parser.data = st;

	while (!r->head_done && advance(c, st, dl))
		if (r->eof && !r->head_done)
			break;
	if (r->head_done)
		return r;
	if (r->error == NULL)
		set_error(r, "no response head within %d ms",
		    hscaled(timeout_ms));
	fprintf(stderr, "harness: read head: %s (%zu bytes: %.200s)\n",
	    r->error, r->head_len, r->head ? r->head : "");
	return NULL;
}

struct hresp *
hconn_last_response(struct hconn *c)
{
	struct http_state	*st = state_get(c);

	return st->cur;
}

int
hconn_read_body(struct hconn *c, struct hresp *r, int timeout_ms)
{
	struct http_state	*st = state_get(c);
	int64_t			 dl = hnow_ms() + hscaled(timeout_ms);

	if (r != st->cur) {
		fprintf(stderr, "harness: read body: not the current "
		    "response\n");
		return -1;
	}
	while (!r->complete && advance(c, st, dl))
		if (r->eof && !r->complete)
			break;
	if (r->complete)
		return 0;
	fprintf(stderr, "harness: read body: %s after %zu bytes\n",
	    r->error ? r->error : hstrf("not ended within %d ms",
	    hscaled(timeout_ms)), r->body_len);
	return -1;
}

struct hresp *
hconn_read_response(struct hconn *c, int timeout_ms)
{
	struct hresp	*r;

	if ((r = hconn_read_head(c, timeout_ms)) == NULL)
		return NULL;
	if (hconn_read_body(c, r, timeout_ms) == -1)
		return NULL;
	return r;
}

/* The end of the first event at or after off: the offset past its blank
 * line (*evlen gets the event's own length), or 0 when none yet. */
static size_t
event_end(const struct hresp *r, size_t off, size_t *evlen)
{
	const char	*b = r->body + off, *lf, *crlf;
	size_t		 n = r->body_len - off;

	lf = memmem(b, n, "\n\n", 2);
	crlf = memmem(b, n, "\r\n\r\n", 4);
	if (crlf != NULL && (lf == NULL || crlf < lf)) {
		*evlen = (size_t)(crlf - b);
		return off + *evlen + 4;
	}
	if (lf != NULL) {
		*evlen = (size_t)(lf - b);
		return off + *evlen + 2;
	}
	return 0;
}

const char *
hconn_read_event(struct hconn *c, struct hresp *r, int timeout_ms)
{
	struct http_state	*st = state_get(c);
	int64_t			 dl = hnow_ms() + hscaled(timeout_ms);
	size_t			 end, evlen;
	char			*ev;

	for (;;) {
		while (r->body != NULL && r->sse_off < r->body_len &&
		    (r->body[r->sse_off] == '\n' ||
		    r->body[r->sse_off] == '\r'))
			r->sse_off++;	/* stray blank lines are no event */
		if (r->body != NULL &&
		    (end = event_end(r, r->sse_off, &evlen)) != 0) {
			if ((ev = strndup(r->body + r->sse_off, evlen)) ==
			    NULL)
				abort();
			r->sse_off = end;
			r->nevents++;
			return hkeep(ev);
		}
		if (r->complete || r != st->cur)
			return NULL;
		if (!advance(c, st, dl) || (r->eof && !r->complete &&
		    event_end(r, r->sse_off, &evlen) == 0)) {
			if (r->error == NULL && !r->eof)
				fprintf(stderr, "harness: no SSE event within "
				    "%d ms\n", hscaled(timeout_ms));
			return NULL;
		}
	}
}

struct hresp *
hhttp_exchange(const char *host, int port, const char *req, int timeout_ms)
{
	struct hconn	*c;
	struct hresp	*r;

	if ((c = hconn_connect(host, port)) == NULL)
		return NULL;
	if (hconn_send_str(c, req) == -1) {
		hconn_close_fin(c);
		return NULL;
	}
	r = hconn_read_response(c, timeout_ms);
	hconn_close_fin(c);	/* the connection, and r, live until exit */
	return r;
}

const char *
hresp_header(const struct hresp *r, const char *name)
{
	int	i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

cJSON *
hresp_json(struct hresp *r)
{
	if (r->json == NULL && r->body != NULL)
		r->json = cJSON_ParseWithLength(r->body, r->body_len);
	return r->json;
}

/* ---- requests ---- */

/* Does a NULL-terminated "Name: value" list have a header called name? */
static int
has_header(const char *const headers[], const char *name)
{
	size_t	n = strlen(name);
	int	i;

	for (i = 0; headers != NULL && headers[i] != NULL; i++)
		if (strncasecmp(headers[i], name, n) == 0 &&
		    headers[i][n] == ':')
			return 1;
	return 0;
}

const char *
hreq_build(const char *method, const char *path,
    const char *const headers[], const char *body)
{
	char	*s = NULL;
	size_t	 len = 0, cap = 0;
	int	 i;

#define ADD(str) grow_append(&s, &len, &cap, (str), strlen(str))
	ADD(hstrf("%s %s HTTP/1.1\r\n", method, path));
	if (!has_header(headers, "Host"))
		ADD("Host: 127.0.0.1\r\n");
	for (i = 0; headers != NULL && headers[i] != NULL; i++) {
		ADD(headers[i]);
		ADD("\r\n");
	}
	if (body != NULL) {
		if (!has_header(headers, "Content-Type"))
			ADD("Content-Type: application/json\r\n");
		if (!has_header(headers, "Content-Length") &&
		    !has_header(headers, "Transfer-Encoding"))
			ADD(hstrf("Content-Length: %zu\r\n", strlen(body)));
	}
	ADD("\r\n");
	if (body != NULL)
		ADD(body);
#undef ADD
	return hkeep(s);
}

const char *
hreq_chat_body(const char *model, int stream)
{
	cJSON	*root, *msgs, *m;

	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "model", model);
	cJSON_AddBoolToObject(root, "stream", stream);
	msgs = cJSON_AddArrayToObject(root, "messages");
	m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "role", "user");
	cJSON_AddStringToObject(m, "content", "Say hello.");
	cJSON_AddItemToArray(msgs, m);
	hkeep_json(root);
	return hjson_print(root);
}

const char *
hreq_chat(const char *model, int stream, const char *const headers[])
{
	return hreq_build("POST", "/v1/chat/completions", headers,
	    hreq_chat_body(model, stream));
}

/* ---- server-sent events ---- */

/* The values of the lines of an event starting with field ":", joined
 * with "\n"; NULL when none. */
static const char *
sse_field(const char *event, const char *field)
{
	const char	*line = event, *eol, *v;
	char		*out = NULL;
	size_t		 len = 0, cap = 0, fl = strlen(field), n;
	int		 any = 0;

	while (line != NULL && *line != '\0') {
		eol = strchr(line, '\n');
		n = eol ? (size_t)(eol - line) : strlen(line);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n > fl && strncmp(line, field, fl) == 0 &&
		    line[fl] == ':') {
			v = line + fl + 1;
			if (*v == ' ')
				v++;
			if (any)
				grow_append(&out, &len, &cap, "\n", 1);
			grow_append(&out, &len, &cap, v,
			    n - (size_t)(v - line));
			any = 1;
		} else if (n == fl && strncmp(line, field, fl) == 0) {
			if (any)
				grow_append(&out, &len, &cap, "\n", 1);
			grow_append(&out, &len, &cap, "", 0);
			any = 1;
		}
		line = eol ? eol + 1 : NULL;
	}
	return any ? hkeep(out) : NULL;
}

const char *
hsse_data(const char *event)
{
	return sse_field(event, "data");
}

const char *
hsse_type(const char *event)
{
	return sse_field(event, "event");
}

cJSON *
hsse_json(const char *event)
{
	const char	*data = hsse_data(event);

	return data != NULL ? hjson_parse(data) : NULL;
}
