/* upstream_http: the request as the upstream sees it (rewritten head,
 * identity headers) and the response parsed with llhttp as it streams. */
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "cancel_chain/cancel_grpc.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "upstream/upstream_priv.h"

#define UPSTREAM_MAX_HEADER_BYTES	(64 * 1024)

static void	upstream_response_init(struct session *);

/* Whether the client's field i is replaced by set_headers or by us. */
int
upstream_header_replaced(const struct session *s, size_t i)
{
	static const char *const ours[] = {
		"host", "content-length", "expect", "x-request-id",
		"traceparent", "via", CANCEL_PEER_HEADER,
	};
	const struct conf_upstream *up = s->up_conf;
	size_t		 k;

	for (k = 0; k < sizeof(ours) / sizeof(ours[0]); k++)
		if (headers_name_is(&s->req_headers, i, ours[k]))
			return 1;
	/* A gRPC deadline goes on shortened by the time spent here. */
	if (s->grpc && headers_name_is(&s->req_headers, i, "grpc-timeout"))
		return 1;
	if (s->forwarded != CONF_FORWARDED_OFF &&
	    (headers_name_is(&s->req_headers, i, "x-forwarded-for") ||
	    headers_name_is(&s->req_headers, i, "forwarded")))
		return 1;
	for (k = 0; k < up->nset_headers; k++)
		if (headers_name_is(&s->req_headers, i, up->set_headers[k].name))
			return 1;
	/* With the proxy's own client keys, the client's key stays here. */
	if (s->rt->conf->clients_enabled &&
	    (headers_name_is(&s->req_headers, i, "authorization") ||
	    headers_name_is(&s->req_headers, i, "x-api-key")))
		return 1;
	return 0;
}

/*
 * X-Forwarded-For and Forwarded (RFC 7239), as the listener says: append
 * keeps what the client sent (several fields joined in order) and adds the
 * client's address, like nginx's $proxy_add_x_forwarded_for; replace drops
 * what the client sent first (an edge facing the internet, where the chain
 * is whatever a client wrote); off leaves both fields untouched.
 */
static void
upstream_forwarded(struct session *s, struct headbuf *hb)
{
	static const char *const names[] = { "x-forwarded-for", "forwarded" };
	const struct header_list *hl = &s->req_headers;
	size_t		 i, k;
	int		 v6 = strchr(s->client_ip, ':') != NULL;

	if (s->forwarded == CONF_FORWARDED_OFF)
		return;
	for (k = 0; k < 2; k++) {
		headbuf_str(hb, k == 0 ? "X-Forwarded-For: " : "Forwarded: ");
		if (s->forwarded == CONF_FORWARDED_APPEND)
			for (i = 0; i < hl->n; i++) {
				if (!headers_name_is(hl, i, names[k]) ||
				    hl->h[i].vlen == 0)
					continue;
				headbuf_add(hb, headers_value(hl, i),
				    hl->h[i].vlen);
				headbuf_lit(hb, ", ");
			}
		if (k == 0)
			headbuf_str(hb, s->client_ip);
		else {
			/* An IPv6 node is quoted and bracketed (§6). */
			headbuf_str(hb, v6 ? "for=\"[" : "for=");
			headbuf_str(hb, s->client_ip);
			headbuf_str(hb, v6 ? "]\";proto=" : ";proto=");
			headbuf_str(hb, s->client_tls ? "https" : "http");
		}
		headbuf_lit(hb, "\r\n");
	}
}

/* The request head as the upstream sees it, in one add to its output. */
static void
upstream_h1_send_request(struct session *s)
{
	struct evbuffer	*out = bufferevent_get_output(s->up->bev);
	const struct conf_upstream *up = s->up_conf;
	struct headbuf	 hb;
	size_t		 i, blen = evbuffer_get_length(s->body);

	upstream_response_init(s);
	headbuf_init(&hb, out);
	headbuf_str(&hb, llhttp_method_name((llhttp_method_t)s->method));
	headbuf_lit(&hb, " ");
	headbuf_str(&hb, up->base_path);
	headbuf_add(&hb, s->target, s->target_len);
	headbuf_lit(&hb, " HTTP/1.1\r\nHost: ");
	headbuf_str(&hb, up->host_header);
	headbuf_lit(&hb, "\r\n");
	for (i = 0; i < s->req_headers.n; i++) {
		if (headers_is_hop_by_hop(&s->req_headers, i) ||
		    upstream_header_replaced(s, i))
			continue;
		headbuf_field(&hb, &s->req_headers, i);
	}
	for (i = 0; i < up->nset_headers; i++) {
		headbuf_str(&hb, up->set_headers[i].name);
		headbuf_lit(&hb, ": ");
		headbuf_str(&hb, up->set_headers[i].value);
		headbuf_lit(&hb, "\r\n");
	}
	if (blen > 0 || s->method == HTTP_POST || s->method == HTTP_PUT ||
	    s->method == HTTP_PATCH) {
		headbuf_lit(&hb, "Content-Length: ");
		headbuf_uint(&hb, blen);
		headbuf_lit(&hb, "\r\n");
	}
	upstream_forwarded(s, &hb);
	if (up->peer) {
		headbuf_lit(&hb, CANCEL_PEER_HEADER ": ");
		headbuf_str(&hb, log_hop());
		headbuf_lit(&hb, "\r\n");
	}
	{
		char	 gt[GRPC_TIMEOUT_MAX];

		if (session_grpc_timeout_out(s, gt) > 0) {
			headbuf_lit(&hb, "grpc-timeout: ");
			headbuf_str(&hb, gt);
			headbuf_lit(&hb, "\r\n");
		}
	}
	headbuf_lit(&hb, "X-Request-Id: ");
	headbuf_str(&hb, s->request_id);
	headbuf_lit(&hb, "\r\ntraceparent: 00-");
	headbuf_str(&hb, s->trace_id);
	headbuf_lit(&hb, "-");
	headbuf_str(&hb, s->span_id);
	headbuf_lit(&hb, "-");
	headbuf_str(&hb, s->trace_flags);
	/* Via: what the client's side listed, then this hop. */
	headbuf_lit(&hb, "\r\nVia: ");
	for (i = 0; i < s->req_headers.n; i++)
		if (headers_name_is(&s->req_headers, i, "via")) {
			headbuf_add(&hb, headers_value(&s->req_headers, i),
			    s->req_headers.h[i].vlen);
			headbuf_lit(&hb, ", ");
		}
	headbuf_str(&hb, s->client_version);
	headbuf_lit(&hb, " ");
	headbuf_str(&hb, log_hop());
	headbuf_lit(&hb, "\r\n\r\n");
	if (blen > 0 && blen <= sizeof(hb.buf) - hb.len)
		headbuf_add(&hb, (const char *)evbuffer_pullup(s->body, -1),
		    blen);
	else if (blen > 0) {
		headbuf_flush(&hb);
		evbuffer_add(out, evbuffer_pullup(s->body, -1), blen);
	}
	headbuf_flush(&hb);
}

static int
upstream_on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct session	*s = p->data;

	if (s->resp_headers.len + len > UPSTREAM_MAX_HEADER_BYTES ||
	    headers_add_name(&s->resp_headers, at, len) == -1)
		return HPE_USER;
	return 0;
}

static int
upstream_on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct session	*s = p->data;

	if (s->resp_headers.len + len > UPSTREAM_MAX_HEADER_BYTES ||
	    headers_add_value(&s->resp_headers, at, len) == -1)
		return HPE_USER;
	return 0;
}

static int
upstream_on_headers_complete(llhttp_t *p)
{
	struct session	*s = p->data;
	int		 status = llhttp_get_status_code(p);
	int64_t		 length = -1;

	if (status >= 100 && status < 200) {
		if (status == 101)
			return -1;	/* we never ask for an upgrade */
		return 0;		/* interim: wait for the final one */
	}
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length <= INT64_MAX)
		length = (int64_t)p->content_length;
	s->up->keepalive = llhttp_should_keep_alive(p);
	if (session_on_response_head(s, status, length) == -1)
		return -1;
	return s->method == HTTP_HEAD ? 1 : 0;
}

static int
upstream_on_body(llhttp_t *p, const char *at, size_t len)
{
	return session_on_body(p->data, at, len) == -1 ? HPE_USER : 0;
}

static int
upstream_on_message_complete(llhttp_t *p)
{
	struct session	*s = p->data;
	int		 status = llhttp_get_status_code(p);

	if (status >= 100 && status < 200) {
		headers_clear(&s->resp_headers);
		return 0;
	}
	return HPE_PAUSED;
}

/* limits.max_header_fields holds for a response too (its head and any
 * trailers together): past it the response is invalid, a 502. */
static int
upstream_on_header_field_complete(llhttp_t *p)
{
	struct session	*s = p->data;

	headers_name_done(&s->resp_headers);
	if ((int64_t)s->resp_headers.n >
	    s->rt->conf->limits.max_header_fields) {
		return HPE_USER;
	}
	return 0;
}

static const llhttp_settings_t upstream_settings = {
	.on_header_field_complete = upstream_on_header_field_complete,
	.on_header_field = upstream_on_header_field,
	.on_header_value = upstream_on_header_value,
	.on_headers_complete = upstream_on_headers_complete,
	.on_body = upstream_on_body,
	.on_message_complete = upstream_on_message_complete,
};

/* A fresh response parser for the stream about to be sent. */
static void
upstream_response_init(struct session *s)
{
	llhttp_init(&s->up->parser, HTTP_RESPONSE, &upstream_settings);
	s->up->parser.data = s;
	s->up->keepalive = 0;
	headers_clear(&s->resp_headers);
}

static void
upstream_invalid(struct session *s, llhttp_errno_t err)
{
	char	 detail[200];
	int64_t	 max = s->rt->conf->limits.max_header_fields;

	if ((int64_t)s->resp_headers.n > max)
		snprintf(detail, sizeof(detail), "invalid response: more than "
		    "max_header_fields (%lld) header fields", (long long)max);
	else
		snprintf(detail, sizeof(detail), "invalid response: %s (%s)",
		    llhttp_errno_name(err),
		    llhttp_get_error_reason(&s->up->parser) ?
		    llhttp_get_error_reason(&s->up->parser) : "");
	if (s->resp_head_sent)
		session_upstream_failed(s, CANCEL_KIND_UPSTREAM_CLOSED,
		    CANCEL_VIA_EOF, detail);
	else
		session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR,
		    CANCEL_VIA_UPSTREAM_STATUS, detail);
}

/* Parses what arrived; body bytes go to the client as they come. */
void
upstream_http_read(struct session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->up->bev);
	struct evbuffer_iovec	 v;
	llhttp_errno_t		 err;
	size_t			 used;

	while (!session_closed(s) && s->up != NULL && !s->paused) {
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		err = llhttp_execute(&s->up->parser, v.iov_base, v.iov_len);
		if (session_closed(s))
			return;
		if (err == HPE_OK)
			used = v.iov_len;
		else if (err == HPE_PAUSED) {
			used = (size_t)(llhttp_get_error_pos(&s->up->parser) -
			    (const char *)v.iov_base);
			evbuffer_drain(in, used);
			/* Bytes after the response: the connection is spent. */
			if (evbuffer_get_length(in) > 0)
				s->up->keepalive = 0;
			session_on_response_complete(s);
			return;
		} else if (s->peer_cancel) {
			session_peer_cancel(s);
			return;
		} else if (s->drain_stop) {
			session_drain_finish(s, SESSION_DRAIN_MAX_BYTES);
			return;
		} else if (s->fallback_status) {
			char why[32];

			snprintf(why, sizeof(why), "status %d",
			    s->fallback_status);
			s->fallback_status = 0;
			if (session_fallback(s, why))
				return;
			upstream_invalid(s, err);
			return;
		} else {
			upstream_invalid(s, err);
			return;
		}
		evbuffer_drain(in, used);
	}
	if (session_closed(s))
		return;
	if (s->phase == PHASE_STREAMING)
		s->t_last_byte_us = clock_mono_us();
	session_flush_body(s);
}

/* The upstream closed: the end of a close-delimited body, or a failure. */
void
upstream_http_eof(struct session *s, int rst)
{
	llhttp_errno_t	 err;

	if (s->up != NULL &&
	    evbuffer_get_length(bufferevent_get_input(s->up->bev)) > 0) {
		upstream_http_read(s);
		if (session_closed(s))
			return;
	}
	if (!rst && s->resp_head_sent) {
		err = llhttp_finish(&s->up->parser);
		if (err == HPE_PAUSED) {
			s->up->keepalive = 0;
			session_on_response_complete(s);
			return;
		}
	}
	session_upstream_closed(s, rst);
}

const struct upstream_proto upstream_h1 = {
	.name = "http/1.1",
	.start = upstream_h1_start,
	.send_request = upstream_h1_send_request,
	.pause = upstream_h1_pause,
	.resume = upstream_h1_resume,
	.cancel = upstream_h1_cancel,
	.release = upstream_pool_release,
};
