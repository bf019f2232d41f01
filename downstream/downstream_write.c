/* downstream_write: answers the proxy itself writes to the client — JSON
 * errors with Proxy-Status, and the SSE error event that ends a stream. */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "cancel_chain/cancel_chain.h"
#include "downstream/downstream_priv.h"
#include "proxy/log.h"
#include "proxy/session.h"

const char *
downstream_status_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 499: return "Client Closed Request";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 508: return "Loop Detected";
	default:  return "Unknown";
	}
}

/* A whole answer of the proxy's own: head, body and end, through the
 * client's protocol. */
void
downstream_answer(struct session *s, const struct downstream_head *h,
    const char *body, size_t len)
{
	const struct downstream_proto *proto = s->client->proto;
	struct evbuffer	*buf;

	proto->send_head(s, h);
	if (len > 0 && (buf = evbuffer_new()) != NULL) {
		evbuffer_add(buf, body, len);
		proto->send_body(s, buf);
		evbuffer_free(buf);
	}
	proto->end(s, NULL);
	s->status = h->status;
	s->resp_head_sent = 1;
	s->bytes_out += len;
}

/* An answer with a JSON body of len bytes and the fields every error of
 * this hop carries. */
static void
downstream_write_json(struct session *s, int status,
    const char *proxy_status, const char *body, size_t len)
{
	struct downstream_head h = { .status = status, .content_length =
	    (int64_t)len };

	downstream_head_add(&h, "Content-Type", "application/json");
	downstream_head_add(&h, "Cache-Control", "no-store");
	if (s->request_id[0] != '\0')
		downstream_head_add(&h, "X-Request-Id", s->request_id);
	downstream_head_add(&h, "Proxy-Status", proxy_status);
	session_cors_head(s, &h);	/* a page must read why it failed */
	if (s->retry_after)
		downstream_head_add(&h, "Retry-After", "1");
	downstream_answer(s, &h, body, len);
}

void
downstream_write_error(struct client *c, struct session *s, int status,
    const char *code, const char *message, const char *proxy_status)
{
	struct jsonw	 w;
	char		 stack[1024];

	jsonw_init(&w, stack, sizeof(stack));
	jsonw_obj_open(&w);
	jsonw_lkey(&w, "error");
	jsonw_obj_open(&w);
	jsonw_kstr(&w, "message", message);
	jsonw_kstr(&w, "type", status >= 500 ? "proxy_error" :
	    "invalid_request_error");
	jsonw_kstr(&w, "code", code);
	if (s != NULL && s->request_id[0] != '\0')
		jsonw_kstr(&w, "request_id", s->request_id);
	jsonw_obj_close(&w);
	jsonw_obj_close(&w);
	jsonw_append(&w, "\n", 1);
	downstream_write_json(s, status, proxy_status, w.buf, w.len);
	jsonw_free(&w);
}

/* RFC 9209: Proxy-Status: hop; error=type; details="..." */
static void
downstream_proxy_status(const struct cancel_record *r, char *buf, size_t len)
{
	char	 path[CANCEL_PATH_MAX * (CANCEL_HOP_MAX + 4)];
	size_t	 i;

	cancel_path_format(&r->path, path, sizeof(path));
	for (i = 0; path[i] != '\0'; i++)
		if (path[i] == '"' || path[i] == '\\')
			path[i] = '_';
	snprintf(buf, len, "%s; error=%s; details=\"%s: %s\"", log_hop(),
	    cancel_chain_proxy_error(r), cancel_kind_name(r->kind), path);
}

void
downstream_write_cancel_error(struct client *c, struct session *s,
    const struct cancel_record *r, const char *proxy_status_in)
{
	struct jsonw	 w;
	char		 stack[2048], ps[4096];
	size_t		 off = 0;

	jsonw_init(&w, stack, sizeof(stack));
	cancel_chain_error_json(&w, r);
	jsonw_append(&w, "\n", 1);
	/* RFC 9209 §2: each intermediary appends its own member. */
	if (proxy_status_in != NULL && strlen(proxy_status_in) < 2000 &&
	    strpbrk(proxy_status_in, "\r\n") == NULL)
		off = (size_t)snprintf(ps, sizeof(ps), "%s, ", proxy_status_in);
	downstream_proxy_status(r, ps + off, sizeof(ps) - off);
	downstream_write_json(s, cancel_chain_http_status(r), ps, w.buf, w.len);
	jsonw_free(&w);
}

/*
 * Ends a stream that already sent its head: an SSE error event (when the
 * stream is SSE and its framing lets more follow), then the end. A stream
 * that cannot carry it is reset, which the client sees as a truncated
 * body.
 */
void
downstream_write_sse_error(struct client *c, struct session *s,
    const struct cancel_record *r)
{
	const struct downstream_proto *proto = c->proto;
	struct evbuffer	*buf;
	struct jsonw	 w;
	char		 stack[2048];
	const char	*lead;

	if (!s->is_sse || !proto->can_extend(s) ||
	    (buf = evbuffer_new()) == NULL) {
		proto->reset(s);
		return;
	}
	/* Finish a half-sent event first so ours stands alone. */
	lead = s->sse_nl >= 2 ? "" : (s->sse_nl == 1 ? "\n" : "\n\n");
	jsonw_init(&w, stack, sizeof(stack));
	jsonw_append(&w, lead, strlen(lead));
	jsonw_append(&w, "event: error\ndata: ", 19);
	w.need_comma = 0;
	cancel_chain_error_json(&w, r);
	jsonw_append(&w, "\n\n", 2);
	evbuffer_add(buf, w.buf, w.len);
	proto->send_body(s, buf);
	proto->end(s, NULL);
	evbuffer_free(buf);
	s->bytes_out += w.len;
	s->sse_events++;
	s->sse_nl = 2;
	jsonw_free(&w);
}
