/* downstream_h1: the HTTP/1.1 side of the downstream protocol interface —
 * the status line, body framing (Content-Length, chunked, or the close of
 * an HTTP/1.0 connection), Connection and keep-alive. The session says
 * what to send; everything about how it looks on an HTTP/1.1 wire is
 * here. */
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "downstream/downstream_priv.h"
#include "proxy/log.h"
#include "proxy/session.h"

const char *
downstream_framing_name(enum downstream_framing f)
{
	switch (f) {
	case FRAMING_NONE:	return "none";
	case FRAMING_LENGTH:	return "length";
	case FRAMING_CHUNKED:	return "chunked";
	case FRAMING_CLOSE:	return "close";
	}
	return "unknown";
}

void
downstream_head_add(struct downstream_head *h, const char *name,
    const char *value)
{
	if (h->nextra == DOWNSTREAM_EXTRA_MAX || value == NULL)
		return;
	h->extra[h->nextra].name = name;
	h->extra[h->nextra].value = value;
	h->nextra++;
}

int
downstream_head_drops(const struct downstream_head *h, size_t i)
{
	size_t	 n;

	if (h->drop_prefix == NULL)
		return 0;
	n = strlen(h->drop_prefix);
	return h->fields->h[i].nlen >= n && strncasecmp(headers_name(h->fields,
	    i), h->drop_prefix, n) == 0;
}

/* Whether the connection may carry another request after this one. */
static int
downstream_h1_keep(const struct client *c, const struct session *s)
{
	return c->keep_alive && s->request_done && !s->close_connection;
}

/* Picks the body framing: the method and status may forbid a body, a
 * known length passes through, an HTTP/1.0 client gets the close. */
static enum downstream_framing
downstream_h1_framing(struct client *c, const struct session *s,
    const struct downstream_head *h)
{
	if (s->method == HTTP_HEAD || h->status == 204 || h->status == 304)
		return FRAMING_NONE;
	if (h->content_length >= 0)
		return FRAMING_LENGTH;
	if (c->http_minor >= 1)
		return FRAMING_CHUNKED;
	return FRAMING_CLOSE;
}

static void
downstream_h1_send_head(struct session *s, const struct downstream_head *h)
{
	struct client	*c = s->client;
	struct headbuf	 hb;
	size_t		 i;

	c->framing = downstream_h1_framing(c, s, h);
	c->resp_ended = h->trailers_only;
	if (c->framing == FRAMING_CLOSE)
		c->keep_alive = 0;
	headbuf_init(&hb, downstream_output(c));
	headbuf_lit(&hb, "HTTP/1.");
	headbuf_str(&hb, c->http_minor >= 1 ? "1 " : "0 ");
	headbuf_uint(&hb, (uint64_t)h->status);
	headbuf_lit(&hb, " ");
	headbuf_str(&hb, downstream_status_reason(h->status));
	headbuf_lit(&hb, "\r\n");
	if (h->fields != NULL)
		for (i = 0; i < h->fields->n; i++) {
			if (headers_is_hop_by_hop(h->fields, i) ||
			    headers_name_is(h->fields, i, "content-length") ||
			    downstream_head_drops(h, i))
				continue;
			headbuf_field(&hb, h->fields, i);
		}
	/* A HEAD answer names the length its body would have had. */
	if (c->framing == FRAMING_LENGTH || (s->method == HTTP_HEAD &&
	    h->content_length >= 0)) {
		headbuf_lit(&hb, "Content-Length: ");
		headbuf_uint(&hb, (uint64_t)h->content_length);
		headbuf_lit(&hb, "\r\n");
	} else if (c->framing == FRAMING_CHUNKED)
		headbuf_lit(&hb, "Transfer-Encoding: chunked\r\n");
	if (h->via) {
		headbuf_lit(&hb, "Via: 1.");
		headbuf_str(&hb, c->http_minor >= 1 ? "1 " : "0 ");
		headbuf_str(&hb, log_hop());
		headbuf_lit(&hb, "\r\n");
	}
	for (i = 0; i < h->nextra; i++) {
		headbuf_str(&hb, h->extra[i].name);
		headbuf_lit(&hb, ": ");
		headbuf_str(&hb, h->extra[i].value);
		headbuf_lit(&hb, "\r\n");
	}
	if (!downstream_h1_keep(c, s))
		headbuf_lit(&hb, "Connection: close\r\n");
	else if (c->http_minor == 0)
		headbuf_lit(&hb, "Connection: keep-alive\r\n");
	headbuf_lit(&hb, "\r\n");
	headbuf_flush(&hb);
}

static size_t
downstream_h1_body_room(struct session *s)
{
	return s->client->framing == FRAMING_CHUNKED ?
	    DOWNSTREAM_CHUNK_LINE_MAX : 0;
}

/* A chunk per batch, framed in buf itself so the output takes one add. */
static void
downstream_h1_send_body(struct session *s, struct evbuffer *buf)
{
	struct client	*c = s->client;
	size_t		 n = evbuffer_get_length(buf), k;
	char		 line[DOWNSTREAM_CHUNK_LINE_MAX];

	if (n == 0)
		return;
	if (c->framing == FRAMING_CHUNKED) {
		k = headers_hex(line, n);
		line[k++] = '\r';
		line[k++] = '\n';
		evbuffer_prepend(buf, line, k);
		evbuffer_add_lit(buf, "\r\n");
	}
	evbuffer_add_buffer(downstream_output(c), buf);
}

static void
downstream_h1_end(struct session *s, const struct header_list *trailers)
{
	struct client	*c = s->client;

	(void)trailers;		/* not passed on over HTTP/1.1 */
	if (c->framing == FRAMING_CHUNKED)
		evbuffer_add_lit(downstream_output(c), "0\r\n\r\n");
	else if (c->framing == FRAMING_CLOSE)
		c->keep_alive = 0;
	c->resp_ended = 1;
}

static int
downstream_h1_can_extend(struct session *s)
{
	return s->client->framing == FRAMING_CHUNKED ||
	    s->client->framing == FRAMING_CLOSE;
}

/* HTTP/1.1 has no reset of one exchange: the connection ends after what
 * was queued, and the client sees a truncated body. */
static void
downstream_h1_reset(struct session *s)
{
	s->client->keep_alive = 0;
}

static size_t
downstream_h1_queued(struct session *s)
{
	return evbuffer_get_length(downstream_output(s->client));
}

static void
downstream_h1_detach(struct session *s)
{
	struct client	*c = s->client;

	downstream_session_done(c, downstream_h1_keep(c, s) && c->resp_ended);
}

const struct downstream_proto downstream_h1 = {
	.name = "http/1.1",
	.send_head = downstream_h1_send_head,
	.body_room = downstream_h1_body_room,
	.send_body = downstream_h1_send_body,
	.end = downstream_h1_end,
	.can_extend = downstream_h1_can_extend,
	.reset = downstream_h1_reset,
	.queued = downstream_h1_queued,
	.detach = downstream_h1_detach,
};
