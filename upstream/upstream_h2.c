/* upstream_h2: HTTP/2 toward the model with nghttp2. Per worker and
 * destination, a few connections carry many streams each; a cancel resets
 * one stream (RST_STREAM CANCEL) and the connection stays up for the rest.
 * Streams wait in a bounded queue while a connection is being opened. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "cancel_chain/cancel_grpc.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "upstream/upstream_priv.h"

#define H2_STREAM_WINDOW	(256 * 1024)
#define H2_MAX_HEADER_BYTES	(64 * 1024)
#define H2_TICK_MIN_MS		20

struct h2_conn;
struct h2_group;


/* One request on its way: queued, or a stream on a connection. It keeps
 * the request (head and body) so that a refused stream can be sent again;
 * once its session let go it lives until nghttp2 closes the stream. */
struct upstream_stream {
	TAILQ_ENTRY(upstream_stream) entry;	/* group queue or conn streams */
	TAILQ_ENTRY(upstream_stream) dirty_entry;
	struct session		*s;		/* NULL once the session let go */
	struct h2_group		*g;
	struct h2_conn		*c;		/* NULL while queued */
	int32_t			 id;		/* 0: not submitted */
	int			 status;	/* :status of the response */
	nghttp2_nv		*nva;
	size_t			 nnv;
	char			*nvbuf;
	char			*body;
	size_t			 body_len, body_off;
	size_t			 unconsumed;	/* received, not yet delivered */
	uint64_t		 avoid;		/* a retry stays off this conn */
	uint8_t			 built;		/* nva and body are ours */
	uint8_t			 head_seen;
	uint8_t			 done;		/* END_STREAM from the server */
	uint8_t			 dirty;		/* body bytes to flush */
	uint8_t			 waited;	/* queued for a new connection */
	uint8_t			 retried_refused;
	uint8_t			 retried_goaway;
};
TAILQ_HEAD(upstream_stream_list, upstream_stream);

/* A pending lookup; outlives its connection if that closes first. */
struct h2_dns {
	struct h2_conn				*c;	/* NULL: cancelled */
	struct evdns_getaddrinfo_request	*req;
};

/* One HTTP/2 connection; u first, so upstream_conn_close frees it all. */
struct h2_conn {
	struct upstream_conn	 u;
	TAILQ_ENTRY(h2_conn)	 gentry;
	struct h2_group		*g;
	nghttp2_session		*ng;
	SSL			*ssl;		/* until the bufferevent owns it */
	struct h2_dns		*dns;
	struct event		*tick;
	struct upstream_stream_list streams;
	struct upstream_stream_list dirty;
	unsigned		 nstreams;
	uint64_t		 serial;
	enum upstream_h2_state	 state;		/* h2_conn_state_set() only */
	int32_t			 goaway_last;	/* the server's GOAWAY said so */
	uint8_t			 dead;
	uint8_t			 in_recv;
	int			 send_error;	/* H2_BROKEN: nghttp2's why */
	enum conf_protocol	 protocol;
	struct conf_h2		 cfg;
	int64_t			 connect_ms;
	char			*host;
	uint16_t		 port;
	uint64_t		 t_open_us, t_recv_us, t_ping_us, t_idle_us;
};

/* The connections and the queue of one destination (its pool key). */
struct h2_group {
	TAILQ_ENTRY(h2_group)	 entry;
	struct upstream_h2_set	*set;
	char			*key;
	uint64_t		 hash;
	TAILQ_HEAD(, h2_conn)	 conns;
	unsigned		 nconns, nopening;
	struct upstream_stream_list queue;
	size_t			 nqueue;
	uint8_t			 alpn_h1;	/* auto on TLS: got HTTP/1.1 */
};

struct upstream_h2_set {
	struct worker		*w;
	TAILQ_HEAD(, h2_group)	 groups;
	uint64_t		 next_serial;
};

/* Moves c forward to st; the only writer of c->state. */
static void
h2_conn_state_set(struct h2_conn *c, enum upstream_h2_state st)
{
	if (st <= c->state) {
		log_msg(LOG_LEVEL_ERROR, "upstream_h2_state", "upstream %s: "
		    "%s after %s", c->u.key, upstream_h2_state_name(st),
		    upstream_h2_state_name(c->state));
		abort();
	}
	if (c->state == H2_OPENING)
		c->g->nopening--;
	c->state = st;
}

static const char *const upstream_h2_state_names[] = {
	[H2_OPENING] = "opening",
	[H2_READY] = "ready",
	[H2_GOING_AWAY] = "going_away",
	[H2_BROKEN] = "broken",
	[H2_DEAD] = "dead",
};

/* Names a connection state for logs. */
const char *
upstream_h2_state_name(enum upstream_h2_state st)
{
	if ((size_t)st >= sizeof(upstream_h2_state_names) /
	    sizeof(upstream_h2_state_names[0]))
		return "unknown";
	return upstream_h2_state_names[st];
}

static void	h2_conn_die(struct h2_conn *, int rst, const char *detail);
static void	h2_conn_free(struct h2_conn *);
static void	h2_conn_close(struct h2_conn *, const char *why);
static void	h2_group_grow(struct h2_group *, struct session *);
static void	h2_group_drain(struct h2_group *);
static void	h2_place(struct h2_conn *, struct upstream_stream *);
static void	h2_submit(struct upstream_stream *);

/* The per-worker set, made on first use. */
static struct upstream_h2_set *
h2_set(struct worker *w)
{
	struct upstream_h2_set **sp = upstream_pool_h2(w->pool);

	if (*sp == NULL && (*sp = calloc(1, sizeof(**sp))) != NULL) {
		(*sp)->w = w;
		TAILQ_INIT(&(*sp)->groups);
	}
	return *sp;
}

static struct h2_group *
h2_group_get(struct upstream_h2_set *set, const struct conf_upstream *up)
{
	struct h2_group	*g;

	TAILQ_FOREACH(g, &set->groups, entry)
		if (g->hash == up->pool_hash &&
		    strcmp(g->key, up->pool_key) == 0)
			return g;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	if ((g->key = strdup(up->pool_key)) == NULL) {
		free(g);
		return NULL;
	}
	g->hash = up->pool_hash;
	g->set = set;
	TAILQ_INIT(&g->conns);
	TAILQ_INIT(&g->queue);
	TAILQ_INSERT_TAIL(&set->groups, g, entry);
	return g;
}

static void
h2_stream_free(struct upstream_stream *st)
{
	if (st->dirty && st->c != NULL)
		TAILQ_REMOVE(&st->c->dirty, st, dirty_entry);
	free(st->nva);
	free(st->nvbuf);
	free(st->body);
	free(st);
}

/* Lets the session go: it no longer points at the stream or connection. */
static struct session *
h2_stream_detach(struct upstream_stream *st)
{
	struct session	*s = st->s;

	if (s != NULL) {
		s->up_stream = NULL;
		s->up = NULL;
		st->s = NULL;
	}
	return s;
}

/* Writes what nghttp2 has to send; plain sockets get it now. */
static void
h2_flush(struct h2_conn *c)
{
	struct evbuffer	*out;
	const uint8_t	*data;
	ssize_t		 n;

	if (c->state >= H2_BROKEN || c->ng == NULL || c->in_recv)
		return;
	out = bufferevent_get_output(c->u.bev);
	while ((n = nghttp2_session_mem_send(c->ng, &data)) > 0)
		evbuffer_add(out, data, (size_t)n);
	if (n < 0) {
		/* Callers still hold c: the tick ends it from the loop. */
		c->send_error = (int)n;
		h2_conn_state_set(c, H2_BROKEN);
		event_active(c->tick, EV_TIMEOUT, 0);
		return;
	}
	if (c->u.out.bev != NULL)
		writeout_flush(&c->u.out);
}

/* How many streams c may carry: our cap and the server's. */
static unsigned
h2_conn_limit(const struct h2_conn *c)
{
	uint32_t	 peer = nghttp2_session_get_remote_settings(c->ng,
			    NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	uint64_t	 cap = (uint64_t)c->cfg.max_streams_per_conn;

	return (unsigned)(peer < cap ? peer : cap);
}

/* A connection with room for one more stream, not the avoided one. */
static struct h2_conn *
h2_pick(struct h2_group *g, uint64_t avoid)
{
	struct h2_conn	*c;

	TAILQ_FOREACH(c, &g->conns, gentry)
		if (c->state == H2_READY && c->serial != avoid &&
		    c->nstreams < h2_conn_limit(c))
			return c;
	return NULL;
}

/* Appends a stream's try to the session's "tries" for the records. */
static void
h2_note_try(struct session *s, const char *what)
{
	struct session_try	*t;

	if (s->tries == NULL)
		s->tries = calloc(SESSION_TRIES_MAX, sizeof(*s->tries));
	if (s->tries == NULL || s->ntries >= SESSION_TRIES_MAX)
		return;
	t = &s->tries[s->ntries++];
	t->upstream = s->up_conf->name;
	snprintf(t->outcome, sizeof(t->outcome), "%s", what);
}

/* Puts st back in line for another connection (refused, GOAWAY). */
static void
h2_retry(struct upstream_stream *st, uint64_t avoid)
{
	struct h2_group	*g = st->g;
	struct h2_conn	*c;
	struct session	*s = st->s;

	st->c = NULL;
	st->id = 0;
	st->body_off = 0;
	st->head_seen = 0;
	st->status = 0;
	st->unconsumed = 0;
	st->avoid = avoid;
	headers_clear(&s->resp_headers);
	s->up = NULL;
	if ((c = h2_pick(g, avoid)) != NULL) {
		h2_place(c, st);
		return;
	}
	st->waited = 1;
	TAILQ_INSERT_TAIL(&g->queue, st, entry);
	g->nqueue++;
	h2_group_grow(g, s);
}

/* Ends a session whose stream the server or the connection ended. */
static void
h2_session_fail(struct session *s, int rst, const char *detail)
{
	if (session_closed(s))
		return;
	if (s->resp_head_sent)
		session_upstream_failed(s, CANCEL_KIND_UPSTREAM_CLOSED,
		    rst ? CANCEL_VIA_RST : CANCEL_VIA_EOF, detail);
	else
		session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR,
		    rst ? CANCEL_VIA_RST : CANCEL_VIA_EOF, detail);
}

/* After a session callback refused more: why, as the HTTP/1.1 parser. */
static void
h2_session_stop(struct session *s)
{
	if (session_closed(s))
		return;
	if (s->peer_cancel)
		session_peer_cancel(s);
	else if (s->drain_stop)
		session_drain_finish(s, SESSION_DRAIN_MAX_BYTES);
	else if (s->fallback_status) {
		char	 why[32];

		snprintf(why, sizeof(why), "status %d", s->fallback_status);
		s->fallback_status = 0;
		if (!session_fallback(s, why))
			session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR,
			    CANCEL_VIA_UPSTREAM_STATUS, why);
	} else if (!session_closed(s))
		h2_session_fail(s, 1, "response refused");
}

/* nghttp2 callbacks: the server's side of each stream. */

static int
h2_on_begin_headers_cb(nghttp2_session *ng, const nghttp2_frame *f,
    void *arg)
{
	return 0;
}

/* A response field into hl, the head's or the trailers', bounded. */
static int
h2_field_add(struct header_list *hl, const uint8_t *name, size_t nlen,
    const uint8_t *value, size_t vlen)
{
	if (hl->len + nlen + vlen > H2_MAX_HEADER_BYTES ||
	    headers_add_name(hl, (const char *)name, nlen) == -1)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	headers_name_done(hl);
	if (headers_add_value(hl, (const char *)value, vlen) == -1)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static int
h2_on_header_cb(nghttp2_session *ng, const nghttp2_frame *f,
    const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen,
    uint8_t flags, void *arg)
{
	struct h2_conn		*c = arg;
	struct upstream_stream	*st;
	struct session		*s;

	if (c->state == H2_DEAD)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (f->hd.type != NGHTTP2_HEADERS ||
	    (st = nghttp2_session_get_stream_user_data(ng,
	    f->hd.stream_id)) == NULL || (s = st->s) == NULL)
		return 0;		/* nobody to tell */
	if (st->head_seen) {
		/* Trailers (gRPC's status lives there): kept for the end. */
		if (nlen > 0 && name[0] == ':')
			return 0;
		return h2_field_add(&s->resp_trailers, name, nlen, value,
		    vlen);
	}
	if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
		char	 buf[4];

		if (vlen != 3)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		memcpy(buf, value, 3);
		buf[3] = '\0';
		st->status = atoi(buf);
		return 0;
	}
	if (nlen > 0 && name[0] == ':')
		return 0;
	return h2_field_add(&s->resp_headers, name, nlen, value, vlen);
}

/* The response is whole: the session finishes (and releases st). */
static void
h2_stream_complete(struct upstream_stream *st)
{
	struct session	*s = st->s;

	st->done = 1;
	if (s == NULL || session_closed(s))
		return;
	if (!st->head_seen) {
		h2_session_fail(s, 1, "stream ended without a response");
		return;
	}
	session_on_response_complete(s);
}

static void
h2_stream_head(struct upstream_stream *st)
{
	struct session	*s = st->s;
	const char	*v;
	size_t		 n;
	int64_t		 length = -1;
	char		 buf[24];

	if (s == NULL)
		return;
	if (st->status >= 100 && st->status < 200) {
		headers_clear(&s->resp_headers);	/* interim */
		st->status = 0;
		return;
	}
	st->head_seen = 1;
	if ((v = headers_get(&s->resp_headers, "content-length", &n)) != NULL &&
	    n > 0 && n < sizeof(buf)) {
		memcpy(buf, v, n);
		buf[n] = '\0';
		length = strtoll(buf, NULL, 10);
	}
	if (session_on_response_head(s, st->status, length) == -1)
		h2_session_stop(s);
}

static int
h2_on_frame_recv_cb(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2_conn		*c = arg;
	struct upstream_stream	*st = NULL;

	if (c->state == H2_DEAD)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (f->hd.stream_id != 0)
		st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	switch (f->hd.type) {
	case NGHTTP2_SETTINGS:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK) &&
		    c->state == H2_OPENING) {
			h2_conn_state_set(c, H2_READY);
			c->t_idle_us = clock_mono_us();
			h2_group_drain(c->g);
		}
		break;
	case NGHTTP2_PING:
		if (f->hd.flags & NGHTTP2_FLAG_ACK)
			c->t_ping_us = 0;
		break;
	case NGHTTP2_GOAWAY:
		c->goaway_last = f->goaway.last_stream_id;
		if (c->state < H2_GOING_AWAY)
			h2_conn_state_set(c, H2_GOING_AWAY);
		log_msg(LOG_LEVEL_INFO, "upstream_h2_goaway", "upstream %s: "
		    "GOAWAY %s, last stream %d", c->u.key,
		    nghttp2_http2_strerror(f->goaway.error_code),
		    f->goaway.last_stream_id);
		break;
	case NGHTTP2_HEADERS:
		if (st == NULL)
			break;
		if (!st->head_seen)
			h2_stream_head(st);
		if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && st->head_seen)
			h2_stream_complete(st);
		break;
	case NGHTTP2_DATA:
		if (st != NULL && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
			if (st->s != NULL && st->dirty) {
				/* Its last bytes go out with the end. */
				TAILQ_REMOVE(&c->dirty, st, dirty_entry);
				st->dirty = 0;
			}
			h2_stream_complete(st);
		}
		break;
	}
	return 0;
}

static int
h2_on_data_chunk_cb(nghttp2_session *ng, uint8_t flags, int32_t id,
    const uint8_t *data, size_t len, void *arg)
{
	struct h2_conn		*c = arg;
	struct upstream_stream	*st;
	struct session		*s;

	if (c->state == H2_DEAD)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	st = nghttp2_session_get_stream_user_data(ng, id);
	if (st == NULL || (s = st->s) == NULL ||
	    session_closed(s) ||
	    !st->head_seen) {
		if (nghttp2_session_consume(ng, id, len) != 0)
			nghttp2_session_consume_connection(ng, len);
		return 0;
	}
	if (session_on_body(s, (const char *)data, len) == -1) {
		nghttp2_session_consume(ng, id, len);
		h2_session_stop(s);
		return 0;
	}
	/* Consumed on delivery: a paused stream keeps its window shut. */
	if (s->paused)
		st->unconsumed += len;
	else
		nghttp2_session_consume(ng, id, len);
	if (!st->dirty && st->s != NULL) {
		st->dirty = 1;
		TAILQ_INSERT_TAIL(&c->dirty, st, dirty_entry);
	}
	return 0;
}

static int
h2_on_stream_close_cb(nghttp2_session *ng, int32_t id, uint32_t code,
    void *arg)
{
	struct h2_conn		*c = arg;
	struct upstream_stream	*st;
	struct session		*s;
	char			 why[96];

	if ((st = nghttp2_session_get_stream_user_data(ng, id)) == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	if (st->dirty) {
		TAILQ_REMOVE(&c->dirty, st, dirty_entry);
		st->dirty = 0;
	}
	TAILQ_REMOVE(&c->streams, st, entry);
	if (--c->nstreams == 0)
		c->t_idle_us = clock_mono_us();
	s = st->s;
	if (s != NULL && !st->done && code == NGHTTP2_REFUSED_STREAM &&
	    !s->resp_head_sent && !session_closed(s)) {
		int goaway = c->goaway_last >= 0 && id > c->goaway_last;

		if (goaway ? !st->retried_goaway : !st->retried_refused) {
			if (goaway)
				st->retried_goaway = 1;
			else
				st->retried_refused = 1;
			snprintf(why, sizeof(why), goaway ? "GOAWAY above "
			    "stream %d, sent again" : "REFUSED_STREAM, sent "
			    "again", c->goaway_last);
			h2_note_try(s, why);
			h2_retry(st, c->serial);
			h2_group_drain(c->g);
			return 0;
		}
	}
	s = h2_stream_detach(st);
	st->c = NULL;
	if (s != NULL && !st->done) {
		snprintf(why, sizeof(why), "RST_STREAM %s",
		    nghttp2_http2_strerror(code));
		s->up_reset_code = code + 1;	/* a gRPC status maps from it */
		h2_session_fail(s, 1, why);
	}
	h2_stream_free(st);
	h2_group_drain(c->g);
	return 0;
}

static ssize_t
h2_body_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct upstream_stream	*st = src->ptr;
	size_t			 n = st->body_len - st->body_off;

	if (n > len)
		n = len;
	memcpy(buf, st->body + st->body_off, n);
	st->body_off += n;
	if (st->body_off == st->body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* Relays what this read brought, one flush per stream. */
static void
h2_flush_dirty(struct h2_conn *c)
{
	struct upstream_stream	*st;
	uint64_t		 now = clock_mono_us();

	while ((st = TAILQ_FIRST(&c->dirty)) != NULL) {
		TAILQ_REMOVE(&c->dirty, st, dirty_entry);
		st->dirty = 0;
		if (st->s == NULL || session_closed(st->s))
			continue;
		if (st->s->phase == PHASE_STREAMING)
			st->s->t_last_byte_us = now;
		session_flush_body(st->s);
	}
}

static void
h2_read_cb(struct bufferevent *bev, void *arg)
{
	struct h2_conn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_iovec	 v;
	ssize_t			 n;
	char			 why[128];

	if (c->ng == NULL || c->state == H2_DEAD)
		return;
	c->t_recv_us = clock_mono_us();
	c->in_recv = 1;
	while (c->state != H2_DEAD && evbuffer_peek(in, -1, NULL, &v, 1) >= 1 &&
	    v.iov_len > 0) {
		n = nghttp2_session_mem_recv(c->ng, v.iov_base, v.iov_len);
		if (c->state == H2_DEAD)
			break;
		if (n < 0) {
			c->in_recv = 0;
			snprintf(why, sizeof(why), "HTTP/2 protocol error: %s",
			    nghttp2_strerror((int)n));
			h2_conn_die(c, 1, why);
			break;
		}
		evbuffer_drain(in, (size_t)n);
		h2_flush_dirty(c);
	}
	c->in_recv = 0;
	if (c->state == H2_DEAD) {
		h2_conn_free(c);
		return;
	}
	h2_flush(c);
	if (c->state == H2_GOING_AWAY && c->nstreams == 0)
		h2_conn_die(c, 0, "GOAWAY");
	if (c->state == H2_DEAD)
		h2_conn_free(c);
}

static void
h2_write_cb(struct bufferevent *bev, void *arg)
{
	struct h2_conn	*c = arg;

	writeout_written(&c->u.out);
}

/* Cuts every stream on a dead connection, each with its own record. */
static void
h2_conn_die(struct h2_conn *c, int rst, const char *detail)
{
	struct h2_group		*g = c->g;
	struct upstream_stream	*st;
	struct session		*s;
	int			 was_opening = c->state == H2_OPENING;

	if (c->state == H2_DEAD)
		return;
	h2_conn_state_set(c, H2_DEAD);
	TAILQ_REMOVE(&g->conns, c, gentry);
	g->nconns--;
	if (c->tick != NULL)
		evtimer_del(c->tick);
	while ((st = TAILQ_FIRST(&c->streams)) != NULL) {
		TAILQ_REMOVE(&c->streams, st, entry);
		if (st->id > 0 && c->ng != NULL)
			nghttp2_session_set_stream_user_data(c->ng, st->id,
			    NULL);
		if (st->dirty) {
			TAILQ_REMOVE(&c->dirty, st, dirty_entry);
			st->dirty = 0;
		}
		st->c = NULL;
		s = h2_stream_detach(st);
		h2_stream_free(st);
		if (s != NULL)
			h2_session_fail(s, rst, detail);
	}
	c->nstreams = 0;
	if (was_opening && !TAILQ_EMPTY(&g->queue)) {
		/* Those waiting for it get another try or the error. */
		if (g->nopening == 0 && h2_pick(g, 0) == NULL) {
			while ((st = TAILQ_FIRST(&g->queue)) != NULL) {
				TAILQ_REMOVE(&g->queue, st, entry);
				g->nqueue--;
				s = h2_stream_detach(st);
				h2_stream_free(st);
				if (s != NULL)
					h2_session_fail(s, rst, detail);
			}
		} else
			h2_group_drain(g);
	}
}

/* Frees a dead connection (never while nghttp2 is on the stack). */
static void
h2_conn_free(struct h2_conn *c)
{
	if (c->dns != NULL) {
		c->dns->c = NULL;
		if (c->dns->req != NULL)
			evdns_getaddrinfo_cancel(c->dns->req);
		c->dns = NULL;
	}
	if (c->tick != NULL)
		event_free(c->tick);
	if (c->ng != NULL)
		nghttp2_session_del(c->ng);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	free(c->host);
	if (c->u.bev == NULL) {
		free(c->u.key);
		free(c);
		return;
	}
	upstream_conn_close(&c->u);
}

/* Closes a connection now, with GOAWAY when it had spoken HTTP/2. */
static void
h2_conn_close(struct h2_conn *c, const char *why)
{
	if (c->ng != NULL && c->state < H2_BROKEN) {
		nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR);
		h2_flush(c);
	}
	h2_conn_die(c, 0, why);
	h2_conn_free(c);
}

/* PING when nothing came for a while; idle and PING deadlines. */
static void
h2_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct h2_conn	*c = arg;
	uint64_t	 now = clock_mono_us();

	if (c->state == H2_DEAD)
		return;
	if (c->state == H2_BROKEN) {
		char	 why[128];

		snprintf(why, sizeof(why), "HTTP/2: %s",
		    nghttp2_strerror(c->send_error));
		h2_conn_die(c, 1, why);
		h2_conn_free(c);
		return;
	}
	if (c->state == H2_OPENING) {
		if (c->connect_ms > 0 &&
		    now - c->t_open_us > (uint64_t)c->connect_ms * 1000) {
			h2_conn_die(c, 1, "HTTP/2 connect timed out");
			h2_conn_free(c);
		}
		return;
	}
	if (c->t_ping_us != 0 && now - c->t_ping_us >
	    (uint64_t)c->cfg.ping_timeout_ms * 1000) {
		log_msg(LOG_LEVEL_WARN, "upstream_h2_ping_timeout", "upstream "
		    "%s: no PING answer in %lld ms, closing the connection "
		    "and its %u streams", c->u.key,
		    (long long)c->cfg.ping_timeout_ms, c->nstreams);
		h2_conn_die(c, 1, "HTTP/2 PING timeout");
		h2_conn_free(c);
		return;
	}
	if (c->nstreams == 0 && c->cfg.idle_ms > 0 &&
	    now - c->t_idle_us >= (uint64_t)c->cfg.idle_ms * 1000) {
		h2_conn_close(c, "idle");
		return;
	}
	if (c->cfg.ping_interval_ms > 0 && c->t_ping_us == 0 &&
	    now - c->t_recv_us >= (uint64_t)c->cfg.ping_interval_ms * 1000) {
		if (nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL) == 0) {
			c->t_ping_us = now;
			h2_flush(c);
		}
	}
}

/* Starts the tick: often enough for the shortest of the deadlines. */
static void
h2_tick_start(struct h2_conn *c)
{
	int64_t		 ms = c->connect_ms > 0 ? c->connect_ms : 1000;
	struct timeval	 tv;

	if (c->cfg.ping_interval_ms > 0 && c->cfg.ping_interval_ms < ms)
		ms = c->cfg.ping_interval_ms;
	if (c->cfg.ping_timeout_ms < ms)
		ms = c->cfg.ping_timeout_ms;
	if (c->cfg.idle_ms > 0 && c->cfg.idle_ms < ms)
		ms = c->cfg.idle_ms;
	ms /= 4;
	if (ms < H2_TICK_MIN_MS)
		ms = H2_TICK_MIN_MS;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(c->tick, &tv);
}

/* The connection speaks HTTP/2 now: preface and our SETTINGS. */
static int
h2_session_start(struct h2_conn *c)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option		*opt;
	nghttp2_settings_entry	 iv[3];
	int64_t			 wanted;
	int32_t			 win;
	int			 r;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		return -1;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
	    h2_on_begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
	    h2_on_frame_recv_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
	    h2_on_data_chunk_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb,
	    h2_on_stream_close_cb);
	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cb);
		return -1;
	}
	nghttp2_option_set_no_auto_window_update(opt, 1);
	r = nghttp2_session_client_new2(&c->ng, cb, c, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	if (r != 0) {
		c->ng = NULL;
		return -1;
	}
	iv[0].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
	iv[0].value = 0;
	iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
	iv[1].value = H2_STREAM_WINDOW;
	iv[2].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
	iv[2].value = 0;		/* the server opens no streams */
	if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 3) != 0)
		return -1;
	/* Room for every stream's window: a paused one slows no other. */
	wanted = (int64_t)H2_STREAM_WINDOW * c->cfg.max_streams_per_conn +
	    (16 << 20);
	win = (int32_t)(wanted > INT32_MAX / 2 ? INT32_MAX / 2 : wanted);
	nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, win);
	c->t_recv_us = clock_mono_us();
	h2_flush(c);
	return c->state >= H2_BROKEN ? -1 : 0;
}

/* auto on TLS and the server chose HTTP/1.1: the connection goes to the
 * first waiting stream as HTTP/1.1, the others start over the same way. */
static void
h2_fall_back_h1(struct h2_conn *c)
{
	struct h2_group		*g = c->g;
	struct upstream_stream	*st;
	struct session		*s, *first = NULL;

	g->alpn_h1 = 1;
	log_msg(LOG_LEVEL_INFO, "upstream_h2_alpn", "upstream %s: the server "
	    "chose HTTP/1.1; this worker uses HTTP/1.1 there from now on",
	    c->u.key);
	TAILQ_REMOVE(&g->conns, c, gentry);
	g->nconns--;
	h2_conn_state_set(c, H2_DEAD);
	if (c->tick != NULL) {
		event_free(c->tick);
		c->tick = NULL;
	}
	free(c->host);
	c->host = NULL;
	while ((st = TAILQ_FIRST(&g->queue)) != NULL) {
		TAILQ_REMOVE(&g->queue, st, entry);
		g->nqueue--;
		s = h2_stream_detach(st);
		h2_stream_free(st);
		if (s == NULL || session_closed(s))
			continue;
		if (first == NULL) {
			first = s;
			upstream_h1_adopt(s, &c->u);
		} else
			upstream_h1_start(s);
	}
	if (first == NULL)
		upstream_conn_close(&c->u);
}

static void
h2_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct h2_conn	*c = arg;
	int		 err = EVUTIL_SOCKET_ERROR();
	char		 detail[256];

	if (c->state == H2_DEAD)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		const unsigned char	*alpn = NULL;
		unsigned int		 alen = 0;

		c->u.connected = 1;
		if (c->u.fd < 0)
			c->u.fd = bufferevent_getfd(bev);
		if (c->u.tls) {
			SSL_get0_alpn_selected(bufferevent_openssl_get_ssl(bev),
			    &alpn, &alen);
			if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
				if (c->protocol == CONF_PROTOCOL_AUTO) {
					h2_fall_back_h1(c);
					return;
				}
				h2_conn_die(c, 0, "the upstream does not speak "
				    "h2 (ALPN)");
				h2_conn_free(c);
				return;
			}
		}
		if (h2_session_start(c) == -1) {
			if (c->state != H2_DEAD)
				h2_conn_die(c, 1, "cannot start HTTP/2");
			h2_conn_free(c);
		}
		return;
	}
	if (!c->u.connected) {
		if (c->u.tls && err == 0) {
			unsigned long e = bufferevent_get_openssl_error(bev);
			char tmp[200];

			if (e != 0) {
				ERR_error_string_n(e, tmp, sizeof(tmp));
				snprintf(detail, sizeof(detail),
				    "TLS handshake failed: %s", tmp);
			} else
				snprintf(detail, sizeof(detail),
				    "TLS handshake failed");
		} else
			snprintf(detail, sizeof(detail), "connect to %s:%u: %s",
			    c->host, c->port,
			    evutil_socket_error_to_string(err));
	} else if (what & BEV_EVENT_EOF)
		snprintf(detail, sizeof(detail), "HTTP/2 connection closed "
		    "by the upstream");
	else
		snprintf(detail, sizeof(detail), "HTTP/2 connection failed: %s",
		    err ? evutil_socket_error_to_string(err) : "TLS error");
	/* Whatever arrived before the close is read first. */
	if (c->ng != NULL &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		h2_read_cb(bev, c);
	if (c->state == H2_DEAD)
		return;
	h2_conn_die(c, (what & BEV_EVENT_ERROR) != 0 || !c->u.connected,
	    detail);
	h2_conn_free(c);
}

static void
h2_connect(struct h2_conn *c, const struct sockaddr *sa, socklen_t len)
{
	struct worker	*w = c->g->set->w;
	int		 one = 1;

	if (len > sizeof(c->u.addr))
		goto fail;
	memcpy(&c->u.addr, sa, len);
	c->u.addrlen = len;
	if (c->ssl != NULL) {
		c->u.bev = bufferevent_openssl_socket_new(w->base, -1, c->ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		c->ssl = NULL;		/* freed by libevent on failure */
		c->u.tls = 1;
	} else
		c->u.bev = bufferevent_socket_new(w->base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
	if (c->u.bev == NULL)
		goto fail;
	bufferevent_setcb(c->u.bev, h2_read_cb, h2_write_cb, h2_event_cb, c);
	bufferevent_enable(c->u.bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->u.bev, sa, (int)len) == -1) {
		char	 why[128];

		snprintf(why, sizeof(why), "connect failed: %s",
		    strerror(errno));
		h2_conn_die(c, 1, why);
		h2_conn_free(c);
		return;
	}
	c->u.fd = bufferevent_getfd(c->u.bev);
	setsockopt(c->u.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!c->u.tls)
		writeout_start(&c->u.out, w, c->u.bev, NULL, NULL, NULL);
	return;
fail:
	h2_conn_die(c, 1, "cannot set up the upstream connection");
	h2_conn_free(c);
}

static void
h2_dns_cb(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct h2_dns	*d = arg;
	struct h2_conn	*c = d->c;
	char		 detail[160];

	free(d);
	if (c == NULL) {
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		return;
	}
	c->dns = NULL;
	if (err != 0 || ai == NULL) {
		snprintf(detail, sizeof(detail), "cannot resolve %s: %s",
		    c->host, evutil_gai_strerror(err));
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		h2_conn_die(c, 1, detail);
		h2_conn_free(c);
		return;
	}
	h2_connect(c, ai->ai_addr, (socklen_t)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
}

/* Opens one more connection for g with s's upstream settings. */
static void
h2_open(struct h2_group *g, struct session *s)
{
	const struct conf_upstream *up = s->up_conf;
	struct worker		*w = g->set->w;
	struct h2_conn		*c;
	union proxy_addr	 a;
	socklen_t		 alen;
	struct h2_dns		*d;
	struct evdns_getaddrinfo_request *req;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->u.w = w;
	c->u.proto = &upstream_h2;
	c->u.fd = -1;
	c->g = g;
	c->goaway_last = -1;
	c->serial = ++g->set->next_serial;
	c->protocol = up->protocol;
	c->cfg = up->h2;
	c->connect_ms = up->timeouts.connect_ms;
	c->port = up->port;
	c->t_open_us = clock_mono_us();
	TAILQ_INIT(&c->streams);
	TAILQ_INIT(&c->dirty);
	if ((c->u.key = strdup(up->pool_key)) == NULL ||
	    (c->host = strdup(up->host)) == NULL ||
	    (c->tick = event_new(w->base, -1, EV_PERSIST, h2_tick_cb,
	    c)) == NULL) {
		if (c->tick != NULL)
			event_free(c->tick);
		free(c->host);
		free(c->u.key);
		free(c);
		return;
	}
	c->u.key_hash = up->pool_hash;
	TAILQ_INSERT_TAIL(&g->conns, c, gentry);
	g->nconns++;
	c->state = H2_OPENING;
	g->nopening++;
	h2_tick_start(c);
	if (up->tls) {
		if ((c->ssl = upstream_ssl_new(s->rt, up)) == NULL) {
			h2_conn_die(c, 1, "cannot set up TLS");
			h2_conn_free(c);
			return;
		}
		SSL_set_alpn_protos(c->ssl, (const unsigned char *)
		    (up->protocol == CONF_PROTOCOL_H2 ? "\x02h2" :
		    "\x02h2\x08http/1.1"), up->protocol == CONF_PROTOCOL_H2 ?
		    3 : 12);
	}
	if (upstream_numeric_addr(up, &a, &alen) == 0) {
		h2_connect(c, &a.sa, alen);
		return;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		h2_conn_die(c, 1, "out of memory");
		h2_conn_free(c);
		return;
	}
	d->c = c;
	c->dns = d;
	req = upstream_lookup(w, up, h2_dns_cb, d);
	if (req != NULL)
		d->req = req;
}

/* Opens connections while the queue outgrows what is being opened. */
static void
h2_group_grow(struct h2_group *g, struct session *s)
{
	const struct conf_h2 *h = &s->up_conf->h2;

	while (g->nqueue > (size_t)g->nopening *
	    (size_t)h->max_streams_per_conn &&
	    g->nconns < (unsigned)h->max_conns) {
		unsigned before = g->nconns;

		h2_open(g, s);
		if (g->nconns <= before)
			break;		/* it failed at once */
	}
}

/* Moves queued streams onto connections with room. */
static void
h2_group_drain(struct h2_group *g)
{
	struct upstream_stream	*st, *next;
	struct h2_conn		*c;

	for (st = TAILQ_FIRST(&g->queue); st != NULL; st = next) {
		next = TAILQ_NEXT(st, entry);
		if ((c = h2_pick(g, st->avoid)) == NULL) {
			if (st->avoid == 0)
				break;
			continue;
		}
		TAILQ_REMOVE(&g->queue, st, entry);
		g->nqueue--;
		h2_place(c, st);
		next = TAILQ_FIRST(&g->queue);
	}
	if ((st = TAILQ_FIRST(&g->queue)) != NULL && st->s != NULL)
		h2_group_grow(g, st->s);
}

/* Puts st on c: a first try asks the session to send, a retry resends. */
static void
h2_place(struct h2_conn *c, struct upstream_stream *st)
{
	struct session	*s = st->s;

	st->c = c;
	TAILQ_INSERT_TAIL(&c->streams, st, entry);
	c->nstreams++;
	s->up = &c->u;
	memcpy(&s->up_addr, &c->u.addr, c->u.addrlen);
	s->up_addrlen = c->u.addrlen;
	c->u.reused = !st->waited;
	if (!st->built)
		session_upstream_connected(s);
	else
		h2_submit(st);
}

/* Hands the stream to nghttp2 and writes. */
static void
h2_submit(struct upstream_stream *st)
{
	struct h2_conn		*c = st->c;
	nghttp2_data_provider	 prd;
	int32_t			 id;

	prd.source.ptr = st;
	prd.read_callback = h2_body_read_cb;
	id = nghttp2_submit_request(c->ng, NULL, st->nva, st->nnv,
	    st->body_len > 0 ? &prd : NULL, st);
	if (id < 0) {
		struct session *s;

		TAILQ_REMOVE(&c->streams, st, entry);
		c->nstreams--;
		st->c = NULL;
		s = h2_stream_detach(st);
		h2_stream_free(st);
		if (s != NULL)
			h2_session_fail(s, 1, nghttp2_strerror(id));
		return;
	}
	st->id = id;
	h2_flush(c);
}

/* Request head building: names lower-cased, values as they came. */
struct h2_nvb {
	char	*buf;
	size_t	 len, cap;
	size_t	*off;		/* name, nlen, value, vlen per field */
	size_t	 n, ncap;
	int	 oom;
};

static size_t
h2_nvb_put(struct h2_nvb *b, const char *p, size_t n, int lower)
{
	size_t	 at = b->len, i;
	char	*nb;

	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 1024;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((nb = realloc(b->buf, ncap)) == NULL) {
			b->oom = 1;
			return 0;
		}
		b->buf = nb;
		b->cap = ncap;
	}
	for (i = 0; i < n; i++)
		b->buf[b->len + i] = lower && p[i] >= 'A' && p[i] <= 'Z' ?
		    (char)(p[i] - 'A' + 'a') : p[i];
	b->len += n;
	b->buf[b->len++] = '\0';
	return at;
}

static void
h2_nvb_add(struct h2_nvb *b, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	size_t	*no;

	if (b->oom)
		return;
	if (b->n == b->ncap) {
		size_t ncap = b->ncap ? b->ncap * 2 : 32;

		if ((no = realloc(b->off, ncap * 4 * sizeof(*no))) == NULL) {
			b->oom = 1;
			return;
		}
		b->off = no;
		b->ncap = ncap;
	}
	b->off[b->n * 4] = h2_nvb_put(b, name, nlen, 1);
	b->off[b->n * 4 + 1] = nlen;
	b->off[b->n * 4 + 2] = h2_nvb_put(b, value, vlen, 0);
	b->off[b->n * 4 + 3] = vlen;
	b->n++;
}

#define h2_nvb_lit(b, name, v)	h2_nvb_add((b), name, sizeof(name) - 1, \
				    (v), strlen(v))

/* The request as the upstream sees it, kept on the stream. */
/* Hands the fields built in b to st, whose nva then points into b's
 * buffer; the credential is kept out of the HPACK table. */
static int
h2_nvb_take(struct h2_nvb *b, struct upstream_stream *st)
{
	size_t		 i;

	if (b->oom || (st->nva = calloc(b->n, sizeof(*st->nva))) == NULL) {
		free(b->buf);
		free(b->off);
		return -1;
	}
	for (i = 0; i < b->n; i++) {
		st->nva[i].name = (uint8_t *)b->buf + b->off[i * 4];
		st->nva[i].namelen = b->off[i * 4 + 1];
		st->nva[i].value = (uint8_t *)b->buf + b->off[i * 4 + 2];
		st->nva[i].valuelen = b->off[i * 4 + 3];
		st->nva[i].flags = NGHTTP2_NV_FLAG_NONE;
		if ((st->nva[i].namelen == 13 && memcmp(st->nva[i].name,
		    "authorization", 13) == 0) || (st->nva[i].namelen == 9 &&
		    memcmp(st->nva[i].name, "x-api-key", 9) == 0))
			st->nva[i].flags = NGHTTP2_NV_FLAG_NO_INDEX;
	}
	st->nnv = b->n;
	st->nvbuf = b->buf;
	free(b->off);
	return 0;
}

static int
h2_build(struct session *s, struct upstream_stream *st)
{
	const struct conf_upstream *up = s->up_conf;
	struct h2_nvb	 b;
	char		 num[24], tp[64], *path = NULL;
	size_t		 i, blen = s->body ? evbuffer_get_length(s->body) : 0;
	struct evbuffer	*via;

	memset(&b, 0, sizeof(b));
	h2_nvb_lit(&b, ":method", llhttp_method_name((llhttp_method_t)
	    s->method));
	h2_nvb_lit(&b, ":scheme", up->tls ? "https" : "http");
	h2_nvb_lit(&b, ":authority", up->host_header);
	if ((path = malloc(strlen(up->base_path) + s->target_len + 1)) == NULL)
		return -1;
	memcpy(path, up->base_path, strlen(up->base_path));
	memcpy(path + strlen(up->base_path), s->target, s->target_len);
	h2_nvb_add(&b, ":path", 5, path, strlen(up->base_path) +
	    s->target_len);
	free(path);
	for (i = 0; i < s->req_headers.n; i++) {
		if (headers_is_hop_by_hop(&s->req_headers, i) ||
		    upstream_header_replaced(s, i) ||
		    headers_name_is(&s->req_headers, i, "te"))
			continue;
		h2_nvb_add(&b, headers_name(&s->req_headers, i),
		    s->req_headers.h[i].nlen,
		    headers_value(&s->req_headers, i),
		    s->req_headers.h[i].vlen);
	}
	if (s->grpc) {
		char	 gt[GRPC_TIMEOUT_MAX];

		/* gRPC servers refuse a request without it. */
		h2_nvb_lit(&b, "te", "trailers");
		/* The client's deadline, less the time spent here. */
		if (session_grpc_timeout_out(s, gt) > 0)
			h2_nvb_lit(&b, "grpc-timeout", gt);
	}
	for (i = 0; i < up->nset_headers; i++)
		h2_nvb_add(&b, up->set_headers[i].name,
		    strlen(up->set_headers[i].name), up->set_headers[i].value,
		    strlen(up->set_headers[i].value));
	if (blen > 0 || s->method == HTTP_POST || s->method == HTTP_PUT ||
	    s->method == HTTP_PATCH) {
		snprintf(num, sizeof(num), "%zu", blen);
		h2_nvb_lit(&b, "content-length", num);
	}
	if (up->peer)
		h2_nvb_add(&b, CANCEL_PEER_HEADER, strlen(CANCEL_PEER_HEADER),
		    log_hop(), strlen(log_hop()));
	h2_nvb_lit(&b, "x-request-id", s->request_id);
	snprintf(tp, sizeof(tp), "00-%s-%s-%s", s->trace_id, s->span_id,
	    s->trace_flags);
	h2_nvb_lit(&b, "traceparent", tp);
	if ((via = evbuffer_new()) != NULL) {
		for (i = 0; i < s->req_headers.n; i++)
			if (headers_name_is(&s->req_headers, i, "via")) {
				evbuffer_add(via, headers_value(&s->req_headers,
				    i), s->req_headers.h[i].vlen);
				evbuffer_add(via, ", ", 2);
			}
		evbuffer_add_printf(via, "%s %s", s->client_version, log_hop());
		h2_nvb_add(&b, "via", 3, (const char *)evbuffer_pullup(via, -1),
		    evbuffer_get_length(via));
		evbuffer_free(via);
	}
	if (h2_nvb_take(&b, st) == -1)
		return -1;
	if (blen > 0) {
		if ((st->body = malloc(blen)) == NULL)
			return -1;
		evbuffer_copyout(s->body, st->body, blen);
		st->body_len = blen;
	}
	st->built = 1;
	return 0;
}

/*
 * A cancel note to a peer hop, as one more stream on an HTTP/2 connection
 * already open to it (DESIGN.md §5); the peer closed its own upstream on
 * our RST_STREAM and only waits to learn why. -1 when no connection to
 * the peer is ready: the caller then opens one of its own.
 */
int
upstream_h2_note(struct session *s, const char *body, size_t len,
    const char *sig)
{
	const struct conf_upstream *up = s->up_conf;
	struct upstream_h2_set *set;
	struct h2_group	*g;
	struct h2_conn	*c;
	struct upstream_stream *st;
	struct h2_nvb	 b;
	char		 num[24];

	if (up == NULL || (set = h2_set(s->w)) == NULL ||
	    (g = h2_group_get(set, up)) == NULL || (c = h2_pick(g, 0)) == NULL)
		return -1;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -1;
	memset(&b, 0, sizeof(b));
	h2_nvb_lit(&b, ":method", "POST");
	h2_nvb_lit(&b, ":scheme", up->tls ? "https" : "http");
	h2_nvb_lit(&b, ":authority", up->host_header);
	h2_nvb_lit(&b, ":path", CANCEL_NOTE_PATH);
	h2_nvb_lit(&b, "content-type", "application/json");
	snprintf(num, sizeof(num), "%zu", len);
	h2_nvb_lit(&b, "content-length", num);
	if (sig != NULL)
		h2_nvb_add(&b, CANCEL_NOTE_SIG_HEADER,
		    strlen(CANCEL_NOTE_SIG_HEADER), sig, strlen(sig));
	if (h2_nvb_take(&b, st) == -1 || (st->body = malloc(len)) == NULL) {
		h2_stream_free(st);
		return -1;
	}
	memcpy(st->body, body, len);
	st->body_len = len;
	st->built = 1;
	st->g = g;
	st->c = c;		/* no session: the answer is read and dropped */
	TAILQ_INSERT_TAIL(&c->streams, st, entry);
	c->nstreams++;
	h2_submit(st);
	return 0;
}

static void
upstream_h2_send_request(struct session *s)
{
	struct upstream_stream	*st = s->up_stream;

	if (st == NULL || st->c == NULL)
		return;
	headers_clear(&s->resp_headers);
	if (h2_build(s, st) == -1) {
		struct h2_conn *c = st->c;

		TAILQ_REMOVE(&c->streams, st, entry);
		c->nstreams--;
		st->c = NULL;
		h2_stream_detach(st);
		h2_stream_free(st);
		h2_session_fail(s, 1, "out of memory");
		return;
	}
	h2_submit(st);
}

/* Finds a connection with room, or queues s while one is opened. */
static int
upstream_h2_start(struct session *s)
{
	struct upstream_h2_set	*set = h2_set(s->w);
	struct upstream_stream	*st;
	struct h2_group		*g;
	struct h2_conn		*c;

	if (set == NULL || (g = h2_group_get(set, s->up_conf)) == NULL) {
		session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR,
		    CANCEL_VIA_RST, "out of memory");
		return 0;
	}
	if (g->alpn_h1 && s->up_conf->protocol == CONF_PROTOCOL_AUTO)
		return upstream_h1_start(s);
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR,
		    CANCEL_VIA_RST, "out of memory");
		return 0;
	}
	st->s = s;
	st->g = g;
	s->up_stream = st;
	if ((c = h2_pick(g, 0)) != NULL) {
		h2_place(c, st);
		return 0;
	}
	if (g->nqueue >= (size_t)s->up_conf->h2.queue_max) {
		h2_stream_detach(st);
		h2_stream_free(st);
		log_msg(LOG_LEVEL_WARN, "upstream_h2_queue_full", "upstream "
		    "%s: %zu streams already wait for a connection",
		    s->up_conf->name, g->nqueue);
		session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR,
		    CANCEL_VIA_RST, "HTTP/2 queue full");
		return 0;
	}
	st->waited = 1;
	TAILQ_INSERT_TAIL(&g->queue, st, entry);
	g->nqueue++;
	h2_group_grow(g, s);
	return 0;
}

/* Lets go of s's stream; with rst, resets it (CANCEL) in this turn. */
static void
h2_let_go(struct session *s, int rst)
{
	struct upstream_stream	*st = s->up_stream;
	struct h2_conn		*c;

	if (st == NULL)
		return;
	h2_stream_detach(st);
	if ((c = st->c) == NULL) {
		struct h2_group	*g = st->g;
		struct h2_conn	*o, *on;

		TAILQ_REMOVE(&g->queue, st, entry);
		g->nqueue--;
		h2_stream_free(st);
		/* Nobody waits any more: connections still being opened for
		 * them go too, as an HTTP/1.1 connect would. */
		for (o = TAILQ_FIRST(&g->conns); g->nqueue == 0 && o != NULL;
		    o = on) {
			on = TAILQ_NEXT(o, gentry);
			if (o->state == H2_OPENING && o->nstreams == 0 &&
			    !o->in_recv)
				h2_conn_close(o, "no stream waits for it");
		}
		return;
	}
	if (c->state >= H2_BROKEN || c->ng == NULL)
		return;
	if (st->unconsumed > 0) {
		nghttp2_session_consume_connection(c->ng, st->unconsumed);
		st->unconsumed = 0;
	}
	if (st->id > 0 && (rst || !st->done || st->body_off < st->body_len))
		nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id,
		    rst ? NGHTTP2_CANCEL : NGHTTP2_NO_ERROR);
	h2_flush(c);
}

/* Cancel: RST_STREAM(CANCEL) on this stream only, written now. */
void
upstream_h2_cancel(struct session *s)
{
	h2_let_go(s, 1);
}

static void
upstream_h2_release(struct session *s)
{
	h2_let_go(s, 0);
}

static void
upstream_h2_pause(struct session *s)
{
	s->paused = 1;
}

/* The client took the bytes: the stream's window opens again. */
static void
upstream_h2_resume(struct session *s)
{
	struct upstream_stream	*st = s->up_stream;
	struct h2_conn		*c;

	s->paused = 0;
	if (st == NULL || (c = st->c) == NULL || c->state >= H2_BROKEN ||
	    st->id <= 0 ||
	    st->unconsumed == 0)
		return;
	nghttp2_session_consume(c->ng, st->id, st->unconsumed);
	st->unconsumed = 0;
	h2_flush(c);
}

/* Frees every connection and queued stream (worker shutdown). */
void
upstream_h2_free(struct upstream_h2_set *set)
{
	struct h2_group		*g;
	struct h2_conn		*c;
	struct upstream_stream	*st;

	if (set == NULL)
		return;
	while ((g = TAILQ_FIRST(&set->groups)) != NULL) {
		TAILQ_REMOVE(&set->groups, g, entry);
		while ((st = TAILQ_FIRST(&g->queue)) != NULL) {
			TAILQ_REMOVE(&g->queue, st, entry);
			h2_stream_detach(st);
			h2_stream_free(st);
		}
		while ((c = TAILQ_FIRST(&g->conns)) != NULL) {
			while ((st = TAILQ_FIRST(&c->streams)) != NULL) {
				TAILQ_REMOVE(&c->streams, st, entry);
				if (c->ng != NULL && st->id > 0)
					nghttp2_session_set_stream_user_data(
					    c->ng, st->id, NULL);
				st->c = NULL;
				h2_stream_detach(st);
				h2_stream_free(st);
			}
			h2_conn_state_set(c, H2_DEAD);
			TAILQ_REMOVE(&g->conns, c, gentry);
			h2_conn_free(c);
		}
		free(g->key);
		free(g);
	}
	free(set);
}

const struct upstream_proto upstream_h2 = {
	.name = "h2",
	.start = upstream_h2_start,
	.send_request = upstream_h2_send_request,
	.pause = upstream_h2_pause,
	.resume = upstream_h2_resume,
	.cancel = upstream_h2_cancel,
	.release = upstream_h2_release,
};
