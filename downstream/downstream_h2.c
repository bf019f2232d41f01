/* downstream_h2: the HTTP/2 side of the downstream protocol interface,
 * over an nghttp2 server session per client connection. Every stream is
 * its own session; a client's RST_STREAM ends only that stream's session,
 * and the connection's end (FIN, RST, GOAWAY) ends each live one. The
 * socket is always read; what nghttp2 has to send is framed once per
 * loop turn into the connection's output (plain sockets: writeout; TLS:
 * OpenSSL's bufferevent). */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "downstream/downstream_priv.h"
#include "proxy/log.h"
#include "proxy/session.h"

/* Framed bytes waiting on the socket past which nothing more is framed:
 * stream bodies then wait in their own buffers, whose bound pauses their
 * upstreams (the per-connection outbound cap). */
#define H2_OUT_HIGH		(128 * 1024)
/* Consecutive reads that hit the new-stream budget before GOAWAY. */
#define H2_BUDGET_STRIKES	4
#define H2_IDLE_S		75	/* no stream: GOAWAY after */
#define H2_NV_MAX		(64 + DOWNSTREAM_EXTRA_MAX)

/* Where a stream's response stands on our side. */
enum h2_resp {
	H2_RESP_NONE,		/* no head submitted yet */
	H2_RESP_BODY,		/* head out, body bytes may follow */
	H2_RESP_EOF,		/* the end is marked: out once framed */
	H2_RESP_RESET,		/* reset by us */
};

static const char *const h2_resp_names[] = {
	[H2_RESP_NONE] = "none",
	[H2_RESP_BODY] = "body",
	[H2_RESP_EOF] = "eof",
	[H2_RESP_RESET] = "reset",
};

/* The name of a stream's response state, for the debug log. */
static const char *
h2_resp_name(enum h2_resp r)
{
	return (unsigned)r < sizeof(h2_resp_names) / sizeof(h2_resp_names[0]) ?
	    h2_resp_names[r] : "unknown";
}

/*
 * One stream. It outlives its session when the response is complete but
 * not framed yet (the client's window), and dies with nghttp2's stream
 * (on_stream_close) or the connection.
 */
struct h2_stream {
	TAILQ_ENTRY(h2_stream)	 entry;		/* the connection's streams */
	TAILQ_ENTRY(h2_stream)	 ready_entry;	/* requests to start */
	struct client		*c;
	struct session		*s;		/* NULL once detached */
	int32_t			 id;
	enum h2_resp		 resp;
	uint8_t			 ready;		/* on the ready list */
	uint8_t			 deferred;	/* nghttp2 waits for bytes */
	uint8_t			 has_length;	/* content-length sent */
	uint8_t			 drained;	/* fell under the low mark */
	uint8_t			 req_open;	/* the client's side is open */
	uint32_t		 nfields;
	int			 refuse_status;	/* answer at end of headers */
	const char		*refuse_code;
	const char		*refuse_msg;
	struct evbuffer		*out;		/* body bytes not framed */
	struct event		*timer;		/* request and send stall */
	uint64_t		 progress_us;	/* last framed body bytes */
	struct header_list	*trailers;	/* sent after the last byte */
};

TAILQ_HEAD(h2_stream_list, h2_stream);

struct downstream_h2 {
	nghttp2_session		*ng;
	struct h2_stream_list	 streams;
	struct h2_stream_list	 ready;
	struct event		*send_ev;	/* frames once per turn */
	uint32_t		 nstreams;	/* with a session attached */
	uint32_t		 new_streams;	/* opened during this read */
	uint32_t		 strikes;	/* reads over the budget */
	uint32_t		 control;	/* control frames this second */
	uint64_t		 control_sec;
	uint8_t			 goaway;	/* ours went out: no new streams */
	uint8_t			 in_recv;
	uint8_t			 peer_goaway;	/* the client sent GOAWAY */
	uint8_t			 failed;	/* closing after our GOAWAY */
};

static void	h2_send_cb(evutil_socket_t, short, void *);
static void	h2_stream_timer_cb(evutil_socket_t, short, void *);

static void
h2_schedule(struct client *c)
{
	if (c->h2 != NULL && !c->closed && c->h2->send_ev != NULL)
		event_active(c->h2->send_ev, 0, 0);
}

static struct h2_stream *
h2_stream_of(struct session *s)
{
	struct client	*c = s->client;

	if (c == NULL || c->h2 == NULL || c->h2->ng == NULL)
		return NULL;
	return nghttp2_session_get_stream_user_data(c->h2->ng, s->stream_id);
}

static void
h2_timer_arm(struct h2_stream *st, int64_t ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(st->timer, &tv);
}

static void
h2_stream_free(struct h2_stream *st)
{
	if (st->timer != NULL)
		event_free(st->timer);
	if (st->out != NULL)
		evbuffer_free(st->out);
	if (st->trailers != NULL) {
		headers_free(st->trailers);
		free(st->trailers);
	}
	free(st);
}

/* Forgets the session of st (it ends or went away), keeping the stream. */
static struct session *
h2_stream_unbind(struct h2_stream *st)
{
	struct session	*s = st->s;
	struct downstream_h2 *h2 = st->c->h2;

	if (s == NULL)
		return NULL;
	st->s = NULL;
	h2->nstreams--;
	if (st->ready) {
		TAILQ_REMOVE(&h2->ready, st, ready_entry);
		st->ready = 0;
	}
	return s;
}

/* The client's side of one stream went away (RST_STREAM, a stream error,
 * the connection): its session is cancelled, the stream stays until
 * nghttp2 closes it. */
static void
h2_stream_gone(struct h2_stream *st, enum cancel_via via)
{
	struct session	*s;

	if ((s = h2_stream_unbind(st)) != NULL)
		session_client_gone(s, via);
	if (st->out != NULL)
		evbuffer_drain(st->out, evbuffer_get_length(st->out));
	st->resp = H2_RESP_RESET;
}

/* Refuses a stream's request with an HTTP answer once its head is in. */
static int
h2_refuse(struct h2_stream *st, int status, const char *code,
    const char *msg)
{
	if (st->refuse_status == 0) {
		st->refuse_status = status;
		st->refuse_code = code;
		st->refuse_msg = msg;
	}
	return 0;
}

/* Resets a stream of ours: no session, or the request cannot be taken. */
static void
h2_reset(struct client *c, int32_t id, uint32_t code)
{
	nghttp2_submit_rst_stream(c->h2->ng, NGHTTP2_FLAG_NONE, id, code);
	h2_schedule(c);
}

/* PING, SETTINGS, PRIORITY and empty DATA frames, counted per second:
 * past the limit the connection is a flood and gets GOAWAY. */
static int
h2_control_frame(struct client *c)
{
	struct downstream_h2 *h2 = c->h2;
	uint64_t	 sec = clock_mono_us() / 1000000;

	if (sec != h2->control_sec) {
		h2->control_sec = sec;
		h2->control = 0;
	}
	if (++h2->control <= (uint64_t)c->rt->conf->limits.http2.
	    max_control_frames)
		return 0;
	if (h2->control == (uint64_t)c->rt->conf->limits.http2.
	    max_control_frames + 1) {
		log_msg(LOG_LEVEL_WARN, "h2_flood", "client %s: more than %lld "
		    "control frames in a second", c->addr, (long long)
		    c->rt->conf->limits.http2.max_control_frames);
		nghttp2_session_terminate_session(h2->ng,
		    NGHTTP2_ENHANCE_YOUR_CALM);
	}
	return -1;
}

static int
h2_begin_headers_cb(nghttp2_session *ng, const nghttp2_frame *frame,
    void *arg)
{
	struct client	*c = arg;
	struct downstream_h2 *h2 = c->h2;
	const struct conf_http2 *lim = &c->rt->conf->limits.http2;
	struct h2_stream *st;
	struct session	*s;

	if (c->closed)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	/*
	 * Rapid Reset (CVE-2023-44487): streams are started only after the
	 * whole read was handled, so a stream opened and reset in one read
	 * never costs an upstream connection; past twice the concurrency in
	 * one read, new streams are refused, and a connection that keeps at
	 * it gets GOAWAY.
	 */
	if (++h2->new_streams > 2 * (uint64_t)lim->max_concurrent_streams ||
	    h2->goaway || c->w->draining) {
		h2_reset(c, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->out = evbuffer_new()) == NULL ||
	    (st->timer = evtimer_new(c->w->base, h2_stream_timer_cb, st)) ==
	    NULL || (s = session_new(c->w, c)) == NULL) {
		if (st != NULL)
			h2_stream_free(st);
		h2_reset(c, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	st->c = c;
	st->id = frame->hd.stream_id;
	st->s = s;
	st->req_open = 1;
	s->stream_id = st->id;
	memcpy(s->client_version, "2", 2);
	TAILQ_INSERT_TAIL(&h2->streams, st, entry);
	h2->nstreams++;
	nghttp2_session_set_stream_user_data(ng, st->id, st);
	/* header_timeout_ms: a deadline for the whole request, the
	 * session's own, never re-armed by a DATA frame. */
	session_request_deadline(s, clock_mono_us());
	if (c->timer != NULL)
		evtimer_del(c->timer);		/* not idle any more */
	return 0;
}

/* :method to llhttp's number, for the session and the upstream. */
static int
h2_method(const uint8_t *v, size_t n)
{
#define H2_METHOD(num, name, string)					\
	if (n == sizeof(#string) - 1 && memcmp(v, #string, n) == 0)	\
		return num;
	HTTP_METHOD_MAP(H2_METHOD)
#undef H2_METHOD
	return -1;
}

static int
h2_header_cb(nghttp2_session *ng, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value,
    size_t valuelen, uint8_t flags, void *arg)
{
	struct client	*c = arg;
	struct h2_stream *st;
	struct session	*s;
	const struct conf_limits *lim = &c->rt->conf->limits;
	int		 m;
	char		*t;

	if (c->closed)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (frame->hd.type != NGHTTP2_HEADERS ||
	    (st = nghttp2_session_get_stream_user_data(ng,
	    frame->hd.stream_id)) == NULL || (s = st->s) == NULL)
		return 0;
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;		/* trailers: not passed on */
	if (st->refuse_status != 0)
		return 0;		/* refused: the rest is only decoded */
	/* The decoded list counts, not the compressed bytes: an HPACK bomb
	 * costs its decoding, never memory. */
	s->header_bytes += namelen + valuelen + 4;
	if ((int64_t)s->header_bytes > lim->max_header_bytes)
		return h2_refuse(st, 431, "header_too_large",
		    "request header section exceeds max_header_bytes");
	if (++st->nfields > (uint64_t)lim->http2.max_header_fields)
		return h2_refuse(st, 431, "too_many_headers",
		    "request has more header fields than max_header_fields");
	if (namelen > 0 && name[0] == ':') {
		if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
			if ((m = h2_method(value, valuelen)) == -1)
				return h2_refuse(st, 501, "method_unknown",
				    "the method is not known");
			s->method = (uint8_t)m;
		} else if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
			if ((t = malloc(valuelen + 1)) == NULL)
				return h2_refuse(st, 503, "out_of_memory",
				    "the proxy is out of memory");
			memcpy(t, value, valuelen);
			t[valuelen] = '\0';
			free(s->target);
			s->target = t;
			s->target_len = valuelen;
		} else if (namelen == 10 && memcmp(name, ":authority",
		    10) == 0) {
			if (headers_add_name(&s->req_headers, "host", 4) == -1)
				return h2_refuse(st, 503, "out_of_memory",
				    "the proxy is out of memory");
			headers_name_done(&s->req_headers);
			if (headers_add_value(&s->req_headers,
			    (const char *)value, valuelen) == -1)
				return h2_refuse(st, 503, "out_of_memory",
				    "the proxy is out of memory");
		}
		return 0;		/* :scheme: nothing to keep */
	}
	/* A Host field after :authority would make two; :authority wins. */
	if (namelen == 4 && memcmp(name, "host", 4) == 0 &&
	    headers_get(&s->req_headers, "host", NULL) != NULL)
		return 0;
	if (headers_add_name(&s->req_headers, (const char *)name,
	    namelen) == -1)
		return h2_refuse(st, 503, "out_of_memory",
		    "the proxy is out of memory");
	headers_name_done(&s->req_headers);
	if (headers_add_value(&s->req_headers, (const char *)value,
	    valuelen) == -1)
		return h2_refuse(st, 503, "out_of_memory",
		    "the proxy is out of memory");
	return 0;
}

/* The whole request is in: started once the read is handled. */
static void
h2_request_done(struct client *c, struct h2_stream *st)
{
	struct session	*s = st->s;

	st->req_open = 0;
	if (s == NULL || s->request_done)
		return;
	s->request_done = 1;
	evtimer_del(st->timer);
	if (!st->ready) {
		st->ready = 1;
		TAILQ_INSERT_TAIL(&c->h2->ready, st, ready_entry);
	}
}

/* The head of a request arrived: refuse it or wait for its body. */
static void
h2_request_head(struct client *c, struct h2_stream *st)
{
	struct session	*s = st->s;

	if (s == NULL)
		return;
	s->headers_done = 1;
	if (st->refuse_status == 0 && s->method == HTTP_CONNECT)
		h2_refuse(st, 405, "method_not_allowed",
		    "CONNECT is not supported");
	if (st->refuse_status == 0 && (s->target_len == 0 ||
	    s->target[0] != '/'))
		h2_refuse(st, 400, "bad_target",
		    "the request target must be an absolute path");
	if (st->refuse_status != 0)
		session_refuse(s, st->refuse_status, st->refuse_code,
		    st->refuse_msg);
}

static int
h2_frame_recv_cb(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
	struct client	*c = arg;
	struct h2_stream *st;

	if (c->closed)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	st = frame->hd.stream_id == 0 ? NULL :
	    nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
	switch (frame->hd.type) {
	case NGHTTP2_HEADERS:
		if (st != NULL && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
			st->req_open = 0;
		if (st == NULL || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
			if (st != NULL && (frame->hd.flags &
			    NGHTTP2_FLAG_END_STREAM))
				h2_request_done(c, st);	/* trailers */
			break;
		}
		h2_request_head(c, st);
		if (st->s != NULL && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
			h2_request_done(c, st);
		break;
	case NGHTTP2_DATA:
		if (st != NULL && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
			st->req_open = 0;
		if (frame->hd.length == 0 &&
		    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
		    h2_control_frame(c) == -1)
			return 0;
		if (st != NULL && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
			h2_request_done(c, st);
		break;
	case NGHTTP2_RST_STREAM:
		/* Called before nghttp2 closes the stream: the cancel is the
		 * client's, said the HTTP/2 way. */
		if (st != NULL)
			h2_stream_gone(st, CANCEL_VIA_RST_STREAM);
		break;
	case NGHTTP2_GOAWAY:
		/* The client is leaving: every stream it left open is
		 * cancelled once this read is handled, each with its record
		 * (not here: nghttp2 still holds the input). */
		c->h2->peer_goaway = 1;
		break;
	case NGHTTP2_PING:
	case NGHTTP2_SETTINGS:
		if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
			(void)h2_control_frame(c);
		break;
	case NGHTTP2_PRIORITY:
		(void)h2_control_frame(c);
		break;
	default:
		break;
	}
	return 0;
}

/* Request body bytes the connection's sessions hold now. */
static size_t
h2_body_held(struct client *c)
{
	struct h2_stream *st;
	size_t		 n = 0;

	TAILQ_FOREACH(st, &c->h2->streams, entry)
		if (st->s != NULL && st->s->body != NULL)
			n += evbuffer_get_length(st->s->body);
	return n;
}

static int
h2_data_chunk_cb(nghttp2_session *ng, uint8_t flags, int32_t stream_id,
    const uint8_t *data, size_t len, void *arg)
{
	struct client	*c = arg;
	struct h2_stream *st;
	struct session	*s;

	if (c->closed)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if ((st = nghttp2_session_get_stream_user_data(ng, stream_id)) == NULL
	    || (s = st->s) == NULL || s->request_done)
		return 0;		/* answered already: dropped */
	s->bytes_in += len;
	if ((int64_t)(evbuffer_get_length(s->body) + len) >
	    s->rt->conf->limits.max_body_bytes) {
		session_refuse(s, 413, "body_too_large",
		    "request body exceeds max_body_bytes");
		return 0;
	}
	/* Bodies are held whole until routed and sent: one connection's
	 * streams together hold at most this much. */
	if ((int64_t)(h2_body_held(c) + len) >
	    c->rt->conf->limits.http2.max_connection_body_bytes) {
		s->retry_after = 1;
		session_refuse(s, 503, "connection_body_limit", "this "
		    "connection's request bodies exceed "
		    "max_connection_body_bytes; send fewer at once");
		return 0;
	}
	if (evbuffer_add(s->body, data, len) == -1) {
		session_refuse(s, 503, "out_of_memory",
		    "the proxy is out of memory");
		return 0;
	}
	return 0;
}

static int
h2_stream_close_cb(nghttp2_session *ng, int32_t stream_id,
    uint32_t error_code, void *arg)
{
	struct client	*c = arg;
	struct h2_stream *st;

	if ((st = nghttp2_session_get_stream_user_data(ng, stream_id)) == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(ng, stream_id, NULL);
	/* Still bound: nghttp2 ended it (a stream error of the client's). */
	if (st->s != NULL)
		h2_stream_gone(st, CANCEL_VIA_RST_STREAM);
	if (log_enabled(LOG_LEVEL_DEBUG))
		log_msg(LOG_LEVEL_DEBUG, "h2_stream", "client %s stream %d "
		    "closed (%s, response %s)", c->addr, stream_id,
		    nghttp2_http2_strerror(error_code), h2_resp_name(st->resp));
	TAILQ_REMOVE(&c->h2->streams, st, entry);
	h2_stream_free(st);
	if (c->h2->nstreams == 0 && !c->closed && c->timer != NULL &&
	    TAILQ_EMPTY(&c->h2->streams)) {
		struct timeval idle = { H2_IDLE_S, 0 };

		evtimer_add(c->timer, &idle);
	}
	return 0;
}

/* After our END_STREAM, a request still arriving is told to stop. */
static int
h2_frame_send_cb(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
	struct h2_stream *st;

	if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type !=
	    NGHTTP2_HEADERS) || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
	if (st != NULL && st->req_open)
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id,
		    NGHTTP2_NO_ERROR);
	return 0;
}

static int	h2_submit_trailers(nghttp2_session *, struct h2_stream *);

/* Body bytes for nghttp2 to frame, as much as the window lets it take. */
static ssize_t
h2_data_read_cb(nghttp2_session *ng, int32_t stream_id, uint8_t *buf,
    size_t length, uint32_t *data_flags, nghttp2_data_source *source,
    void *arg)
{
	struct h2_stream *st = source->ptr;
	int		 n;

	n = evbuffer_remove(st->out, buf, length);
	if (n < 0)
		n = 0;
	if (n > 0)
		st->progress_us = clock_mono_us();
	if (evbuffer_get_length(st->out) == 0) {
		if (st->resp == H2_RESP_EOF) {
			*data_flags |= NGHTTP2_DATA_FLAG_EOF;
			if (st->trailers != NULL && h2_submit_trailers(ng, st) == 0)
				*data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		} else if (n == 0) {
			st->deferred = 1;
			return NGHTTP2_ERR_DEFERRED;
		}
	}
	if (st->s != NULL && st->s->paused &&
	    evbuffer_get_length(st->out) < DOWNSTREAM_OUT_LOW)
		st->drained = 1;
	return n;
}

/*
 * A stream queued bytes and the client's window stays shut: past
 * send_timeout_ms without a byte framed, the stream is reset and its
 * session cancelled (slow read). The request's own deadline is the
 * session's (session_request_deadline).
 */
static void
h2_stream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct h2_stream *st = arg;
	struct client	*c = st->c;
	int64_t		 ms = c->rt->conf->limits.http2.send_timeout_ms;
	uint64_t	 now = clock_mono_us(), since;

	if (c->closed)
		return;
	if (evbuffer_get_length(st->out) == 0)
		return;
	since = now - st->progress_us;
	if (since < (uint64_t)ms * 1000) {
		h2_timer_arm(st, ms - (int64_t)(since / 1000));
		return;
	}
	log_msg(LOG_LEVEL_INFO, "h2_send_timeout", "client %s stream %d: "
	    "nothing could be sent for send_timeout_ms, %zu bytes queued; "
	    "resetting it", c->addr, st->id, evbuffer_get_length(st->out));
	h2_stream_gone(st, CANCEL_VIA_TIMER);
	h2_reset(c, st->id, NGHTTP2_CANCEL);
}

/* Starts the requests that came whole in this read, unless reset since. */
static void
h2_start_ready(struct client *c)
{
	struct downstream_h2 *h2 = c->h2;
	struct h2_stream *st;
	struct session	*s;

	while (!c->closed && (st = TAILQ_FIRST(&h2->ready)) != NULL) {
		TAILQ_REMOVE(&h2->ready, st, ready_entry);
		st->ready = 0;
		if ((s = st->s) != NULL && !session_closed(s))
			session_request_complete(s);
	}
}

/*
 * The connection cannot go on (a protocol error, a flood, nghttp2's own
 * GOAWAY): every live stream is cancelled now, input is ignored, and the
 * connection closes once the GOAWAY nghttp2 queued is written.
 */
static void
h2_fail(struct client *c, const char *why)
{
	struct downstream_h2 *h2 = c->h2;
	struct h2_stream *st;

	if (h2->failed)
		return;
	h2->failed = 1;
	log_msg(LOG_LEVEL_INFO, "h2_error", "client %s: %s; closing the "
	    "connection", c->addr, why);
	TAILQ_FOREACH(st, &h2->streams, entry) {
		evtimer_del(st->timer);
		h2_stream_gone(st, CANCEL_VIA_GOAWAY);
	}
	if (c->closed)
		return;
	c->close_after = 1;
	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	readin_enable(&c->in, c->bev, 0);
	h2_schedule(c);
}

void
downstream_h2_input(struct client *c)
{
	struct downstream_h2 *h2 = c->h2;
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec v[8];
	ssize_t		 r;
	int		 i, n, over;

	if (h2->failed) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	h2->new_streams = 0;
	while (!c->closed && evbuffer_get_length(in) > 0) {
		n = evbuffer_peek(in, -1, NULL, v, 8);
		if (n > 8)
			n = 8;
		for (i = 0; i < n && !c->closed; i++) {
			h2->in_recv = 1;
			r = nghttp2_session_mem_recv(h2->ng, v[i].iov_base,
			    v[i].iov_len);
			h2->in_recv = 0;
			if (c->closed)
				return;
			if (r < 0) {
				h2_fail(c, nghttp2_strerror((int)r));
				return;
			}
		}
		for (i = 0; i < n; i++)
			evbuffer_drain(in, v[i].iov_len);
		if (h2->peer_goaway) {
			downstream_close(c, CANCEL_VIA_GOAWAY);
			return;
		}
	}
	over = h2->new_streams > 2 * (uint64_t)c->rt->conf->limits.http2.
	    max_concurrent_streams;
	h2->strikes = over ? h2->strikes + 1 : 0;
	if (h2->strikes >= H2_BUDGET_STRIKES) {
		nghttp2_session_terminate_session(h2->ng,
		    NGHTTP2_ENHANCE_YOUR_CALM);
		h2_fail(c, "more new streams per read than twice "
		    "max_concurrent_streams, read after read");
		return;
	}
	if (!nghttp2_session_want_read(h2->ng)) {
		h2_fail(c, "the session ended (GOAWAY sent: a flood limit or "
		    "a protocol error)");
		return;
	}
	h2_start_ready(c);
	h2_schedule(c);
}

/* Frames what nghttp2 has for the client, up to the connection's cap. */
static void
h2_send_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client	*c = arg;
	struct downstream_h2 *h2 = c->h2;
	struct evbuffer	*out;
	struct h2_stream *st, *next;
	const uint8_t	*data;
	ssize_t		 n;

	if (c->closed)
		return;
	out = downstream_output(c);
	while (evbuffer_get_length(out) < H2_OUT_HIGH) {
		if ((n = nghttp2_session_mem_send(h2->ng, &data)) < 0) {
			log_msg(LOG_LEVEL_INFO, "h2_error", "client %s: %s",
			    c->addr, nghttp2_strerror((int)n));
			downstream_close(c, CANCEL_VIA_WRITE_ERROR);
			return;
		}
		if (n == 0)
			break;
		evbuffer_add(out, data, (size_t)n);
	}
	/* Streams whose clients took enough resume their upstreams. */
	for (st = TAILQ_FIRST(&h2->streams); st != NULL && !c->closed;
	    st = next) {
		next = TAILQ_NEXT(st, entry);
		if (st->drained) {
			st->drained = 0;
			if (st->s != NULL)
				session_client_drained(st->s);
		}
	}
	if (c->closed)
		return;
	if (!nghttp2_session_want_read(h2->ng) &&
	    !nghttp2_session_want_write(h2->ng))
		c->close_after = 1;
	if (c->close_after && evbuffer_get_length(out) == 0 &&
	    !downstream_h2_pending(c))
		downstream_close(c, CANCEL_VIA_EOF);
}

void
downstream_h2_drained(struct client *c)
{
	struct evbuffer	*out = downstream_output(c);

	if (c->close_after && evbuffer_get_length(out) == 0 &&
	    !downstream_h2_pending(c)) {
		downstream_close(c, CANCEL_VIA_EOF);
		return;
	}
	h2_schedule(c);
}

int
downstream_h2_pending(struct client *c)
{
	struct downstream_h2 *h2 = c->h2;

	if (h2 == NULL || h2->ng == NULL)
		return 0;
	if (h2->failed)
		return nghttp2_session_want_write(h2->ng) &&
		    nghttp2_session_get_outbound_queue_size(h2->ng) > 0;
	return nghttp2_session_want_write(h2->ng) || h2->nstreams > 0;
}

/* No stream for the keep-alive time: GOAWAY and close. */
void
downstream_h2_timer(struct client *c)
{
	if (c->h2->nstreams > 0)
		return;
	downstream_h2_drain(c);
}

void
downstream_h2_drain(struct client *c)
{
	struct downstream_h2 *h2 = c->h2;

	if (!h2->goaway) {
		nghttp2_submit_goaway(h2->ng, NGHTTP2_FLAG_NONE,
		    nghttp2_session_get_last_proc_stream_id(h2->ng),
		    NGHTTP2_NO_ERROR, NULL, 0);
		h2->goaway = 1;
	}
	c->close_after = 1;
	h2_schedule(c);
}

void
downstream_h2_close(struct client *c, int via)
{
	struct downstream_h2 *h2 = c->h2;
	struct h2_stream *st;

	if (h2 == NULL)
		return;
	if (h2->send_ev != NULL)
		event_del(h2->send_ev);
	TAILQ_FOREACH(st, &h2->streams, entry) {
		evtimer_del(st->timer);
		h2_stream_gone(st, (enum cancel_via)via);
	}
}

/* Frees the HTTP/2 state at the end of the loop turn: nghttp2 may have
 * been inside a callback when the connection closed. */
void
downstream_h2_free(struct client *c)
{
	struct downstream_h2 *h2 = c->h2;
	struct h2_stream *st;

	if (h2 == NULL)
		return;
	if (h2->ng != NULL)
		nghttp2_session_del(h2->ng);
	while ((st = TAILQ_FIRST(&h2->streams)) != NULL) {
		TAILQ_REMOVE(&h2->streams, st, entry);
		h2_stream_free(st);
	}
	if (h2->send_ev != NULL)
		event_free(h2->send_ev);
	free(h2);
	c->h2 = NULL;
}

int
downstream_h2_start(struct client *c)
{
	const struct conf_http2 *lim = &c->rt->conf->limits.http2;
	struct downstream_h2 *h2;
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option	*opt = NULL;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
		    (uint32_t)lim->max_concurrent_streams },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
		    (uint32_t)c->rt->conf->limits.max_header_bytes },
		{ NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1 },
	};
	int		 rc = -1;

	if ((h2 = calloc(1, sizeof(*h2))) == NULL)
		return -1;
	TAILQ_INIT(&h2->streams);
	TAILQ_INIT(&h2->ready);
	c->h2 = h2;
	if ((h2->send_ev = event_new(c->w->base, -1, 0, h2_send_cb, c)) ==
	    NULL || nghttp2_session_callbacks_new(&cbs) != 0 ||
	    nghttp2_option_new(&opt) != 0)
		goto out;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
	    h2_begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(cbs, h2_header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs,
	    h2_frame_recv_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
	    h2_data_chunk_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
	    h2_stream_close_cb);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs,
	    h2_frame_send_cb);
	/* nghttp2's own defences, from Debian's 1.52 with its fixes: the
	 * RST_STREAM token bucket, CONTINUATION frames per header block,
	 * queued SETTINGS and PING acknowledgements, SETTINGS entries. */
	nghttp2_option_set_stream_reset_rate_limit(opt,
	    (uint64_t)lim->reset_burst, (uint64_t)lim->reset_rate);
	nghttp2_option_set_max_continuations(opt, 8);
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	nghttp2_option_set_max_settings(opt, 32);
	nghttp2_option_set_no_closed_streams(opt, 1);
	if (nghttp2_session_server_new2(&h2->ng, cbs, c, opt) != 0) {
		h2->ng = NULL;
		goto out;
	}
	if (nghttp2_submit_settings(h2->ng, NGHTTP2_FLAG_NONE, iv,
	    sizeof(iv) / sizeof(iv[0])) != 0)
		goto out;
	c->proto = &downstream_h2;
	rc = 0;
out:
	if (cbs != NULL)
		nghttp2_session_callbacks_del(cbs);
	if (opt != NULL)
		nghttp2_option_del(opt);
	if (rc == -1)
		downstream_h2_free(c);
	return rc;
}

/* Lower-cases a field name into the arena (HTTP/2 names are lower
 * case); NULL when it is full. */
static const uint8_t *
h2_lower(char *arena, size_t cap, size_t *used, const char *name, size_t n)
{
	char	*p;
	size_t	 i;

	if (*used + n > cap)
		return NULL;
	p = arena + *used;
	for (i = 0; i < n; i++)
		p[i] = (name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 :
		    name[i];
	*used += n;
	return (const uint8_t *)p;
}

#define H2_NV(nv, k, n, nl, v, vl) do {					\
	(nv)[k].name = (uint8_t *)(n);					\
	(nv)[k].namelen = (nl);						\
	(nv)[k].value = (uint8_t *)(v);					\
	(nv)[k].valuelen = (vl);					\
	(nv)[k].flags = NGHTTP2_NV_FLAG_NONE;				\
	(k)++;								\
} while (0)

/* The trailers end the stream in their own HEADERS frame (gRPC's status
 * lives there); nghttp2 copies the fields. 0, or -1 to end without. */
static int
h2_submit_trailers(nghttp2_session *ng, struct h2_stream *st)
{
	const struct header_list *hl = st->trailers;
	nghttp2_nv	 nv[H2_NV_MAX];
	char		 arena[4096];
	const uint8_t	*name;
	size_t		 i, k = 0, used = 0;

	for (i = 0; i < hl->n && k < H2_NV_MAX; i++) {
		if (headers_is_hop_by_hop(hl, i) ||
		    (name = h2_lower(arena, sizeof(arena), &used,
		    headers_name(hl, i), hl->h[i].nlen)) == NULL)
			continue;
		H2_NV(nv, k, name, hl->h[i].nlen, headers_value(hl, i),
		    hl->h[i].vlen);
	}
	return nghttp2_submit_trailer(ng, st->id, nv, k) == 0 ? 0 : -1;
}

static void
downstream_h2_send_head(struct session *s, const struct downstream_head *h)
{
	struct client	*c = s->client;
	struct h2_stream *st = h2_stream_of(s);
	nghttp2_nv	 nv[H2_NV_MAX];
	nghttp2_data_provider dp;
	char		 status[8], len[24], via[80], arena[4096];
	const uint8_t	*name;
	size_t		 k = 0, i, used = 0;
	int		 body;

	if (st == NULL || st->resp != H2_RESP_NONE)
		return;
	snprintf(status, sizeof(status), "%03d", h->status % 1000);
	H2_NV(nv, k, ":status", 7, status, 3);
	if (h->fields != NULL)
		for (i = 0; i < h->fields->n && k < H2_NV_MAX - 2 -
		    h->nextra; i++) {
			if (headers_is_hop_by_hop(h->fields, i) ||
			    headers_name_is(h->fields, i, "content-length") ||
			    headers_name_is(h->fields, i, "host") ||
			    downstream_head_drops(h, i))
				continue;
			if ((name = h2_lower(arena, sizeof(arena), &used,
			    headers_name(h->fields, i),
			    h->fields->h[i].nlen)) == NULL)
				break;
			H2_NV(nv, k, name, h->fields->h[i].nlen,
			    headers_value(h->fields, i), h->fields->h[i].vlen);
		}
	/* Trailers-Only (gRPC): this HEADERS frame ends the stream. */
	body = !(s->method == HTTP_HEAD || h->status == 204 ||
	    h->status == 304 || h->trailers_only);
	if (h->content_length >= 0 && h->status != 204 && h->status != 304 &&
	    !h->trailers_only) {
		snprintf(len, sizeof(len), "%lld", (long long)h->content_length);
		H2_NV(nv, k, "content-length", 14, len, strlen(len));
		st->has_length = 1;
	}
	if (h->via) {
		snprintf(via, sizeof(via), "2 %s", log_hop());
		H2_NV(nv, k, "via", 3, via, strlen(via));
	}
	for (i = 0; i < h->nextra && k < H2_NV_MAX; i++) {
		if ((name = h2_lower(arena, sizeof(arena), &used,
		    h->extra[i].name, strlen(h->extra[i].name))) == NULL)
			break;
		H2_NV(nv, k, name, strlen(h->extra[i].name), h->extra[i].value,
		    strlen(h->extra[i].value));
	}
	dp.source.ptr = st;
	dp.read_callback = h2_data_read_cb;
	if (nghttp2_submit_response(c->h2->ng, st->id, nv, k, body ? &dp :
	    NULL) != 0) {
		st->resp = H2_RESP_RESET;
		h2_reset(c, st->id, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	st->resp = body ? H2_RESP_BODY : H2_RESP_EOF;
	st->progress_us = clock_mono_us();
	h2_schedule(c);
}

static size_t
downstream_h2_body_room(struct session *s)
{
	return 0;		/* frames are made when nghttp2 sends */
}

/*
 * Appends buf to out by copying into out's own chains. Moving the chains
 * would keep each read's whole allocation for a few bytes of it (one SSE
 * event per read): a stream held at its 64 KiB mark by a shut window then
 * costs a megabyte of chains.
 */
static void
h2_buffer_pack(struct evbuffer *out, struct evbuffer *buf)
{
	struct evbuffer_iovec v[4];
	int		 i, n;

	while (evbuffer_get_length(buf) > 0) {
		n = evbuffer_peek(buf, -1, NULL, v, 4);
		if (n > 4)
			n = 4;
		for (i = 0; i < n; i++) {
			evbuffer_add(out, v[i].iov_base, v[i].iov_len);
			evbuffer_drain(buf, v[i].iov_len);
		}
	}
}

static void
downstream_h2_send_body(struct session *s, struct evbuffer *buf)
{
	struct h2_stream *st = h2_stream_of(s);
	size_t		 n = evbuffer_get_length(buf);

	if (st == NULL || st->resp != H2_RESP_BODY || s->method == HTTP_HEAD) {
		evbuffer_drain(buf, n);
		return;
	}
	if (n == 0)
		return;
	if (evbuffer_get_length(st->out) == 0) {
		st->progress_us = clock_mono_us();
		if (!evtimer_pending(st->timer, NULL))
			h2_timer_arm(st, s->rt->conf->limits.http2.
			    send_timeout_ms);
	}
	h2_buffer_pack(st->out, buf);
	if (st->deferred) {
		st->deferred = 0;
		nghttp2_session_resume_data(s->client->h2->ng, st->id);
	}
	h2_schedule(s->client);
}

static void
downstream_h2_end(struct session *s, const struct header_list *trailers)
{
	struct h2_stream *st = h2_stream_of(s);
	size_t		 i;

	if (st == NULL || st->resp != H2_RESP_BODY)
		return;
	if (trailers != NULL && trailers->n > 0 && st->trailers == NULL &&
	    (st->trailers = calloc(1, sizeof(*st->trailers))) != NULL) {
		headers_init(st->trailers);
		for (i = 0; i < trailers->n; i++) {
			if (headers_add_name(st->trailers, headers_name(trailers,
			    i), trailers->h[i].nlen) == -1)
				break;
			headers_name_done(st->trailers);
			if (headers_add_value(st->trailers, headers_value(
			    trailers, i), trailers->h[i].vlen) == -1)
				break;
		}
	}
	st->resp = H2_RESP_EOF;
	if (st->deferred) {
		st->deferred = 0;
		nghttp2_session_resume_data(s->client->h2->ng, st->id);
	}
	h2_schedule(s->client);
}

static int
downstream_h2_can_extend(struct session *s)
{
	struct h2_stream *st = h2_stream_of(s);

	return st != NULL && st->resp == H2_RESP_BODY && !st->has_length;
}

/* RST_STREAM(INTERNAL_ERROR): the client sees this stream fail, and only
 * this one. */
static void
downstream_h2_reset(struct session *s)
{
	struct h2_stream *st = h2_stream_of(s);

	if (st == NULL || st->resp == H2_RESP_RESET)
		return;
	st->resp = H2_RESP_RESET;
	evbuffer_drain(st->out, evbuffer_get_length(st->out));
	h2_reset(s->client, st->id, NGHTTP2_INTERNAL_ERROR);
}

static size_t
downstream_h2_queued(struct session *s)
{
	struct h2_stream *st = h2_stream_of(s);

	return st != NULL ? evbuffer_get_length(st->out) : 0;
}

/* The session is over; a stream it did not end is reset, and the
 * connection serves its other streams on. */
static void
downstream_h2_detach(struct session *s)
{
	struct client	*c = s->client;
	struct h2_stream *st = h2_stream_of(s);

	if (st == NULL)
		return;
	h2_stream_unbind(st);
	if (st->resp == H2_RESP_NONE || st->resp == H2_RESP_BODY) {
		st->resp = H2_RESP_RESET;
		evbuffer_drain(st->out, evbuffer_get_length(st->out));
		h2_reset(c, st->id, NGHTTP2_INTERNAL_ERROR);
	}
	if (c->h2->nstreams == 0 && c->w->draining)
		downstream_h2_drain(c);
	h2_schedule(c);
}

const struct downstream_proto downstream_h2 = {
	.name = "h2",
	.send_head = downstream_h2_send_head,
	.body_room = downstream_h2_body_room,
	.send_body = downstream_h2_send_body,
	.end = downstream_h2_end,
	.can_extend = downstream_h2_can_extend,
	.reset = downstream_h2_reset,
	.queued = downstream_h2_queued,
	.detach = downstream_h2_detach,
};
