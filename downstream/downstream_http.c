/* downstream_http: HTTP/1.1 requests parsed with llhttp in strict mode,
 * with the size and shape limits from the config. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "downstream/downstream_priv.h"
#include "proxy/log.h"
#include "proxy/session.h"

static int
downstream_refuse(struct client *c, int status, const char *code,
    const char *msg)
{
	if (c->refuse_status == 0) {
		c->refuse_status = status;
		c->refuse_code = code;
		c->refuse_msg = msg;
	}
	return -1;
}

/* Header bytes so far, against limits.max_header_bytes. */
static int
downstream_header_bytes(struct client *c, struct session *s, size_t n)
{
	s->header_bytes += n;
	if ((int64_t)s->header_bytes > s->rt->conf->limits.max_header_bytes)
		return downstream_refuse(c, 431, "header_too_large",
		    "request header section exceeds max_header_bytes");
	return 0;
}

static int
downstream_on_message_begin(llhttp_t *p)
{
	struct client	*c = p->data;
	struct session	*s;

	if ((s = session_new(c->w, c)) == NULL)
		return downstream_refuse(c, 503, "out_of_memory",
		    "the proxy is out of memory");
	c->session = s;
	c->in_request = 1;
	c->keep_alive = 0;	/* known once the head is complete */
	c->resp_ended = 0;
	downstream_request_progress(c);
	return 0;
}

static int
downstream_on_url(llhttp_t *p, const char *at, size_t len)
{
	struct client	*c = p->data;
	struct session	*s = c->session;
	char		*nt;

	if (downstream_header_bytes(c, s, len) == -1)
		return HPE_USER;
	if ((nt = realloc(s->target, s->target_len + len + 1)) == NULL)
		return HPE_USER;
	memcpy(nt + s->target_len, at, len);
	s->target = nt;
	s->target_len += len;
	nt[s->target_len] = '\0';
	return 0;
}

/*
 * Debian's llhttp is built without strict mode, so it takes obs-fold, a
 * bare LF, spaces in and after field names. A proxy must not: each of
 * these can make two parsers disagree about where a request ends. The
 * checks below refuse them; RFC 9110 §5.6.2 (tokens), RFC 9112 §5.2
 * (obs-fold) and §2.2 (bare CR/LF).
 */
static const unsigned char downstream_tchar[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
	['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
	['`'] = 1, ['|'] = 1, ['~'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
	['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
	['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
	['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
	['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
	['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
	['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
	['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

static int
downstream_bad_field(struct client *c, const char *what)
{
	return downstream_refuse(c, 400, "bad_header", what);
}

static int
downstream_on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct client	*c = p->data;
	struct session	*s = c->session;
	size_t		 i;

	for (i = 0; i < len; i++)
		if (!downstream_tchar[(unsigned char)at[i]]) {
			downstream_bad_field(c, "a header field name may hold "
			    "only token characters (no spaces before the colon)");
			return HPE_USER;
		}

	if (downstream_header_bytes(c, s, len + 4) == -1 ||
	    headers_add_name(&s->req_headers, at, len) == -1)
		return HPE_USER;
	return 0;
}

static int
downstream_on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct client	*c = p->data;
	struct session	*s = c->session;
	size_t		 i;

	for (i = 0; i < len; i++)
		if (at[i] == '\r' || at[i] == '\n' || at[i] == '\0' ||
		    at[i] == 0x7f) {
			downstream_bad_field(c, "line folding and CR, LF or NUL "
			    "inside a header value are not allowed");
			return HPE_USER;
		}

	if (downstream_header_bytes(c, s, len) == -1 ||
	    headers_add_value(&s->req_headers, at, len) == -1)
		return HPE_USER;
	return 0;
}

/* Transfer-Encoding: exactly one field, exactly "chunked", HTTP/1.1 only;
 * anything else is 501 (a coding we do not know) or 400. */
static int
downstream_check_te(struct client *c, struct session *s)
{
	const char	*v;
	size_t		 i, n = 0, len, a, b;

	for (i = 0; i < s->req_headers.n; i++) {
		if (!headers_name_is(&s->req_headers, i, "transfer-encoding"))
			continue;
		n++;
		v = headers_value(&s->req_headers, i);
		len = s->req_headers.h[i].vlen;
		for (a = 0; a < len && (v[a] == ' ' || v[a] == '\t'); a++)
			;
		for (b = len; b > a && (v[b - 1] == ' ' || v[b - 1] == '\t');
		    b--)
			;
		if (b == a)
			return downstream_refuse(c, 400, "bad_transfer_encoding",
			    "an empty Transfer-Encoding");
		if (b - a != 7 || strncasecmp(v + a, "chunked", 7) != 0)
			return downstream_refuse(c, 501,
			    "transfer_coding_not_implemented",
			    "only a single \"chunked\" transfer coding is "
			    "accepted");
	}
	if (n > 1)
		return downstream_refuse(c, 501,
		    "transfer_coding_not_implemented",
		    "only a single \"chunked\" transfer coding is accepted");
	if (n == 1 && c->http_minor == 0)
		return downstream_refuse(c, 400, "bad_transfer_encoding",
		    "HTTP/1.0 has no Transfer-Encoding");
	return 0;
}

/* Host: a reg-name or IP literal with an optional port, nothing else. */
static int
downstream_check_host(struct client *c, struct session *s)
{
	const char	*v;
	size_t		 len, i;

	if ((v = headers_get(&s->req_headers, "host", &len)) == NULL)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (!(isalnum(ch) || strchr("-._~%!$&'()*+,;=:[]", ch) != NULL)
		    || ch == '\0')
			return downstream_refuse(c, 400, "bad_host",
			    "the Host header is not a host name or address");
	}
	return 0;
}

/* Checks what can be judged from the head alone, before any body byte. */
static int
downstream_on_headers_complete(llhttp_t *p)
{
	struct client	*c = p->data;
	struct session	*s = c->session;
	const struct conf *conf = s->rt->conf;
	const char	*v;
	size_t		 vlen;

	s->method = llhttp_get_method(p);
	c->http_minor = llhttp_get_http_minor(p);
	c->keep_alive = llhttp_should_keep_alive(p);
	memcpy(s->client_version, c->http_minor ? "1.1" : "1.0", 4);
	if (llhttp_get_http_major(p) != 1 || c->http_minor > 1)
		return downstream_refuse(c, 505, "http_version_not_supported",
		    "only HTTP/1.0 and HTTP/1.1 are supported");
	if (s->method == HTTP_CONNECT)
		return downstream_refuse(c, 405, "method_not_allowed",
		    "CONNECT is not supported");
	if (c->http_minor == 1 && headers_count(&s->req_headers, "host") != 1)
		return downstream_refuse(c, 400, "bad_host",
		    "an HTTP/1.1 request needs exactly one Host header");
	/* Upgrade: h2c alone is declined by answering over HTTP/1.1 (RFC
	 * 9113 dropped it; HTTP/2 is prior knowledge or ALPN); the field is
	 * hop-by-hop and not forwarded. Other upgrades are refused. */
	if ((v = headers_get(&s->req_headers, "upgrade", &vlen)) != NULL &&
	    (headers_count(&s->req_headers, "upgrade") != 1 || vlen != 3 ||
	    strncasecmp(v, "h2c", 3) != 0))
		return downstream_refuse(c, 400, "upgrade_not_supported",
		    "protocol upgrades are not proxied");
	if (s->target_len == 0 || s->target[0] != '/')
		return downstream_refuse(c, 400, "bad_target",
		    "the request target must be an absolute path");
	if ((p->flags & F_CONTENT_LENGTH) &&
	    p->content_length > (uint64_t)conf->limits.max_body_bytes)
		return downstream_refuse(c, 413, "body_too_large",
		    "request body exceeds max_body_bytes");
	if (downstream_check_te(c, s) == -1 || downstream_check_host(c, s) == -1)
		return -1;
	if ((v = headers_get(&s->req_headers, "expect", &vlen)) != NULL) {
		if (vlen != 12 || strncasecmp(v, "100-continue", 12) != 0)
			return downstream_refuse(c, 417, "expectation_failed",
			    "only Expect: 100-continue is supported");
		if (c->http_minor == 1 && (p->flags & (F_CONTENT_LENGTH |
		    F_CHUNKED)) && !(p->flags & F_CONTENT_LENGTH &&
		    p->content_length == 0))
			evbuffer_add(downstream_output(c),
			    "HTTP/1.1 100 Continue\r\n\r\n", 25);
	}
	s->headers_done = 1;
	downstream_request_progress(c);
	return 0;
}

static int
downstream_on_body(llhttp_t *p, const char *at, size_t len)
{
	struct client	*c = p->data;
	struct session	*s = c->session;

	if ((int64_t)(evbuffer_get_length(s->body) + len) >
	    s->rt->conf->limits.max_body_bytes) {
		downstream_refuse(c, 413, "body_too_large",
		    "request body exceeds max_body_bytes");
		return HPE_USER;
	}
	if (evbuffer_add(s->body, at, len) == -1)
		return HPE_USER;
	downstream_request_progress(c);
	return 0;
}

static int
downstream_on_message_complete(llhttp_t *p)
{
	struct client	*c = p->data;

	c->session->request_done = 1;
	c->parse_paused = 1;
	return HPE_PAUSED;
}

static int
downstream_on_header_field_complete(llhttp_t *p)
{
	struct client	*c = p->data;

	headers_name_done(&c->session->req_headers);
	return 0;
}

static const llhttp_settings_t downstream_settings = {
	.on_header_field_complete = downstream_on_header_field_complete,
	.on_message_begin = downstream_on_message_begin,
	.on_url = downstream_on_url,
	.on_header_field = downstream_on_header_field,
	.on_header_value = downstream_on_header_value,
	.on_headers_complete = downstream_on_headers_complete,
	.on_body = downstream_on_body,
	.on_message_complete = downstream_on_message_complete,
};

void
downstream_parser_init(struct client *c)
{
	llhttp_init(&c->parser, HTTP_REQUEST, &downstream_settings);
	c->parser.data = c;
}

/* Maps a parser error to the answer the client gets. */
static void
downstream_parse_error(struct client *c, llhttp_errno_t err)
{
	int		 status = 400;
	const char	*code = "bad_request", *msg = llhttp_get_error_reason(
			    &c->parser);

	if (c->refuse_status != 0) {
		status = c->refuse_status;
		code = c->refuse_code;
		msg = c->refuse_msg;
	} else if (err == HPE_INVALID_TRANSFER_ENCODING) {
		status = 501;
		code = "transfer_coding_not_implemented";
	} else if (err == HPE_INVALID_VERSION) {
		status = 505;
		code = "http_version_not_supported";
	}
	if (msg == NULL)
		msg = "malformed request";
	/* Refused before the parser saw a message begin: still one record. */
	if (c->session == NULL && (c->session = session_new(c->w, c)) != NULL)
		c->in_request = 1;
	c->keep_alive = 0;
	if (c->session != NULL)
		session_refuse(c->session, status, code, msg);
	else {
		/* No memory for a session: a bare answer, then the close. */
		evbuffer_add_printf(downstream_output(c), "HTTP/1.1 %d %s\r\n"
		    "Content-Length: 0\r\nConnection: close\r\n\r\n", status,
		    downstream_status_reason(status));
		downstream_session_done(c, 0);
	}
}

/*
 * A line ended by LF alone in a request head (llhttp, non-strict, takes
 * it). Scanned only while the head is arriving; the body is the parser's.
 */
static int
downstream_bare_lf(struct client *c, const char *p, size_t n)
{
	const char	*nl;
	size_t		 i = 0, end;

	if (c->head_scanned || (c->session != NULL && c->session->headers_done))
		return 0;
	/* Line by line (memchr), not byte by byte. A CR inside a line counts
	 * as content: the line is then not empty, which only scans on. */
	while (i < n) {
		nl = memchr(p + i, '\n', n - i);
		end = nl != NULL ? (size_t)(nl - p) : n;
		if (end > i) {
			/* A line that starts with white space folds the one
			 * before. */
			if (c->line_len == 0 && c->seen_line && !c->last_cr &&
			    (p[i] == ' ' || p[i] == '\t')) {
				downstream_refuse(c, 400, "obs_fold", "header "
				    "line folding (obs-fold) is not allowed");
				return -1;
			}
			c->last_cr = p[end - 1] == '\r';
			c->line_len += (uint32_t)(end - i - c->last_cr);
		}
		if (nl == NULL)
			break;
		if (!c->last_cr) {
			downstream_refuse(c, 400, "bad_line_ending",
			    "lines in a request head end with CRLF");
			return -1;
		}
		/* An empty line after the request line ends the head; empty
		 * lines before it are skipped (RFC 9112 §2.2). */
		if (c->line_len == 0 && c->seen_line) {
			c->head_scanned = 1;
			return 0;
		}
		if (c->line_len > 0)
			c->seen_line = 1;
		c->line_len = 0;
		c->last_cr = 0;
		i = end + 1;
	}
	return 0;
}

/*
 * Feeds buffered input to the parser until it pauses at the end of a
 * request (the session then owns the connection) or the input runs out.
 */
void
downstream_process_input(struct client *c)
{
	struct evbuffer		*in;
	struct evbuffer_iovec	 v;
	llhttp_errno_t		 err;
	size_t			 used;
	struct session		*s;

	while (!c->closed && !c->parse_paused && !c->close_after) {
		in = bufferevent_get_input(c->bev);
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return;
		if (downstream_bare_lf(c, v.iov_base, v.iov_len) == -1) {
			downstream_parse_error(c, HPE_USER);
			return;
		}
		err = llhttp_execute(&c->parser, v.iov_base, v.iov_len);
		if (err == HPE_OK)
			used = v.iov_len;
		else if (err == HPE_PAUSED)
			used = (size_t)(llhttp_get_error_pos(&c->parser) -
			    (const char *)v.iov_base);
		else {
			downstream_parse_error(c, err);
			return;
		}
		if (c->session != NULL)
			c->session->bytes_in += used;
		evbuffer_drain(in, used);
		if (err == HPE_PAUSED) {
			s = c->session;
			evtimer_del(c->timer);
			session_request_complete(s);
			return;
		}
	}
}
