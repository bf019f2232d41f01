/* downstream_write: answers the proxy itself writes to the client — JSON
 * errors with Proxy-Status, and the SSE error event that ends a stream. */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "cancel_chain/cancel_chain.h"
#include "downstream/downstream.h"
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

/* Writes status line, fixed fields and a JSON body of len bytes. */
static void
downstream_write_json(struct client *c, struct session *s, int status,
    const char *proxy_status, const char *body, size_t len)
{
	struct evbuffer	*out = downstream_output(c);
	int		 keep = s != NULL && s->keep_alive && s->request_done;

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n", status,
	    downstream_status_reason(status), len);
	if (s != NULL && s->request_id[0] != '\0')
		evbuffer_add_printf(out, "X-Request-Id: %s\r\n", s->request_id);
	if (proxy_status != NULL)
		evbuffer_add_printf(out, "Proxy-Status: %s\r\n", proxy_status);
	if (s != NULL && s->cors != NULL) {
		/* A page must read why it failed (DESIGN.md §8). */
		char	 cors[1024];

		evbuffer_add(out, cors, session_cors_fields(s, cors,
		    sizeof(cors)));
	}
	if (s != NULL && s->retry_after)
		evbuffer_add_lit(out, "Retry-After: 1\r\n");
	if (!keep)
		evbuffer_add_lit(out, "Connection: close\r\n");
	evbuffer_add_lit(out, "\r\n");
	evbuffer_add(out, body, len);
	if (s != NULL) {
		s->status = status;
		s->resp_head_sent = 1;
		s->bytes_out += len;
		if (!keep)
			s->keep_alive = 0;
	}
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
	downstream_write_json(c, s, status, proxy_status, w.buf, w.len);
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
	downstream_write_json(c, s, cancel_chain_http_status(r), ps, w.buf,
	    w.len);
	jsonw_free(&w);
}

/*
 * Ends a stream that already sent its head: an SSE error event (when the
 * stream is SSE and framed so that more can follow), then the last chunk.
 * A stream that cannot carry it ends with a close, which the client sees
 * as a truncated body.
 */
void
downstream_write_sse_error(struct client *c, struct session *s,
    const struct cancel_record *r)
{
	struct evbuffer	*out = downstream_output(c);
	struct jsonw	 w;
	char		 stack[2048];
	const char	*lead;

	if (!s->is_sse || (s->framing != FRAMING_CHUNKED &&
	    s->framing != FRAMING_CLOSE)) {
		s->keep_alive = 0;
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
	if (s->framing == FRAMING_CHUNKED) {
		evbuffer_add_printf(out, "%zx\r\n", w.len);
		evbuffer_add(out, w.buf, w.len);
		evbuffer_add_lit(out, "\r\n0\r\n\r\n");
	} else {
		evbuffer_add(out, w.buf, w.len);
		s->keep_alive = 0;
	}
	s->bytes_out += w.len;
	s->sse_events++;
	s->sse_nl = 2;
	jsonw_free(&w);
}
