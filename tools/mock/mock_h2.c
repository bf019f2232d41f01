/* mock_h2: cancelproxy-mock's HTTP/2 side (nghttp2): prior knowledge on
 * any port (the preface is sniffed) and ALPN h2 on TLS with --h2-alpn.
 * Each stream is a mock_conn of its own without a socket, so that every
 * option and fault works as over HTTP/1.1: its HTTP/1.1 answer is parsed
 * back and sent as HEADERS and DATA. Records say how each stream ended and
 * on which connection. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <nghttp2/nghttp2.h>

#include "proxy/jsonw.h"
#include "proxy/log.h"
#include "tools/mock/mock.h"

#define MOCK_H2_PREFACE		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define MOCK_H2_MAX_FIELDS	16
#define MOCK_H2_OUT_HIGH	(256 * 1024)

/* A connection's HTTP/2 session and its open streams. */
struct mock_h2 {
	nghttp2_session		*ng;
	struct mock_conn	*c;
	TAILQ_HEAD(, mock_conn)	 streams;	/* not yet closed */
	TAILQ_HEAD(, mock_conn)	 drained;	/* output ran dry: look at them */
	TAILQ_HEAD(, mock_h2_stream) all;	/* nghttp2 still knows them */
	unsigned		 nstarted;
	int32_t			 goaway_last;	/* streams above: refused */
	int			 goaway_sent;
	int			 in_recv, in_send, again, closing;
};

/* A stream's answer on its way out; lives until nghttp2 closes it. */
struct mock_h2_stream {
	TAILQ_ENTRY(mock_h2_stream) entry;
	struct mock_h2		*h;
	struct mock_conn	*v;		/* NULL once the answer ended */
	int32_t			 id;
	llhttp_t		 rp;		/* the HTTP/1.1 answer, parsed */
	struct evbuffer		*out;		/* body not yet in DATA frames */
	char			 names[MOCK_H2_MAX_FIELDS][64];
	char			 values[MOCK_H2_MAX_FIELDS][512];
	size_t			 nlen[MOCK_H2_MAX_FIELDS];
	size_t			 vlen[MOCK_H2_MAX_FIELDS];
	int			 nf, in_value;
	int			 head_sent, complete, deferred;
	int			 trailers;	/* fields after the body: sent
						 * as trailing HEADERS */
};

static void	mock_h2_send(struct mock_h2 *h);

/* The stream's output ran dry (or its stream ended): mock_h2_send looks
 * at it once, to end its answer or let its tokens go on. */
static void
mock_h2_mark_drained(struct mock_h2 *h, struct mock_conn *v)
{
	if (v == NULL || v->on_drained || v->state != MOCK_CONN_RESPONDING)
		return;
	v->on_drained = 1;
	TAILQ_INSERT_TAIL(&h->drained, v, dentry);
}

/* An HTTP/2 error code's name: CANCEL, REFUSED_STREAM. */
const char *
mock_h2_code_name(uint32_t code)
{
	return nghttp2_http2_strerror(code);
}

/* ALPN on TLS: h2 when offered, else http/1.1, else none. */
int
mock_h2_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const char *const prefs[] = { "h2", "http/1.1" };
	unsigned int	 i, k;

	for (k = 0; k < 2; k++)
		for (i = 0; i < inlen; i += 1u + in[i])
			if (in[i] == strlen(prefs[k]) &&
			    i + 1u + in[i] <= inlen &&
			    memcmp(in + i + 1, prefs[k], in[i]) == 0) {
				*out = in + i + 1;
				*outlen = in[i];
				return SSL_TLSEXT_ERR_OK;
			}
	return SSL_TLSEXT_ERR_NOACK;
}

static struct mock_h2_stream *
mock_h2_rp_stream(llhttp_t *p)
{
	return p->data;
}

static int
mock_h2_rp_field(llhttp_t *p, const char *at, size_t n)
{
	struct mock_h2_stream	*s = mock_h2_rp_stream(p);

	if (s->in_value || s->nf == 0) {
		if (s->nf == MOCK_H2_MAX_FIELDS)
			return 0;
		s->nf++;
		s->nlen[s->nf - 1] = s->vlen[s->nf - 1] = 0;
		s->in_value = 0;
	}
	if (s->nlen[s->nf - 1] + n < sizeof(s->names[0])) {
		memcpy(s->names[s->nf - 1] + s->nlen[s->nf - 1], at, n);
		s->nlen[s->nf - 1] += n;
	}
	return 0;
}

static int
mock_h2_rp_value(llhttp_t *p, const char *at, size_t n)
{
	struct mock_h2_stream	*s = mock_h2_rp_stream(p);

	if (s->nf == 0)
		return 0;
	s->in_value = 1;
	if (s->vlen[s->nf - 1] + n < sizeof(s->values[0])) {
		memcpy(s->values[s->nf - 1] + s->vlen[s->nf - 1], at, n);
		s->vlen[s->nf - 1] += n;
	}
	return 0;
}

/* The fields gathered from the answer as HTTP/2 header fields: names
 * lower-cased, without those HTTP/2 forbids; returns how many. */
static int
mock_h2_rp_fields(struct mock_h2_stream *s, nghttp2_nv *nv)
{
	int	 i, k, n = 0;

	for (i = 0; i < s->nf; i++) {
		for (k = 0; k < (int)s->nlen[i]; k++)
			if (s->names[i][k] >= 'A' && s->names[i][k] <= 'Z')
				s->names[i][k] += 'a' - 'A';
		s->names[i][s->nlen[i]] = '\0';
		if (strcmp(s->names[i], "connection") == 0 ||
		    strcmp(s->names[i], "transfer-encoding") == 0 ||
		    strcmp(s->names[i], "keep-alive") == 0)
			continue;
		nv[n].name = (uint8_t *)s->names[i];
		nv[n].namelen = s->nlen[i];
		nv[n].value = (uint8_t *)s->values[i];
		nv[n].valuelen = s->vlen[i];
		nv[n++].flags = NGHTTP2_NV_FLAG_NONE;
	}
	return n;
}

static ssize_t
mock_h2_data_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct mock_h2_stream	*s = src->ptr;
	size_t			 n = evbuffer_get_length(s->out);

	if (n == 0 && !s->complete) {
		s->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (n > len)
		n = len;
	evbuffer_remove(s->out, buf, n);
	if (evbuffer_get_length(s->out) == 0)
		mock_h2_mark_drained(s->h, s->v);
	if (s->complete && evbuffer_get_length(s->out) == 0) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (s->trailers) {
			/* Chunked trailers (gRPC's status): END_STREAM goes
			 * on the trailing HEADERS instead. */
			nghttp2_nv	 nv[MOCK_H2_MAX_FIELDS];

			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			nghttp2_submit_trailer(ng, id, nv,
			    (size_t)mock_h2_rp_fields(s, nv));
		}
	}
	return (ssize_t)n;
}

/* The answer's head: HEADERS with :status and its fields, lower-cased,
 * without those HTTP/2 forbids. */
static int
mock_h2_rp_headers_complete(llhttp_t *p)
{
	struct mock_h2_stream	*s = mock_h2_rp_stream(p);
	nghttp2_nv		 nv[MOCK_H2_MAX_FIELDS + 1];
	nghttp2_data_provider	 prd;
	char			 status[8];
	int			 n = 0;
	int			 head;

	if (llhttp_get_status_code(p) < 200) {
		s->nf = 0;
		return 0;
	}
	head = s->v != NULL && s->v->resp.method != NULL &&
	    strcmp(s->v->resp.method, "HEAD") == 0;
	snprintf(status, sizeof(status), "%d", llhttp_get_status_code(p));
	nv[n].name = (uint8_t *)":status";
	nv[n].namelen = 7;
	nv[n].value = (uint8_t *)status;
	nv[n].valuelen = strlen(status);
	nv[n++].flags = NGHTTP2_NV_FLAG_NONE;
	n += mock_h2_rp_fields(s, nv + n);
	prd.source.ptr = s;
	prd.read_callback = mock_h2_data_cb;
	nghttp2_submit_response(s->h->ng, s->id, nv, (size_t)n, &prd);
	s->head_sent = 1;
	/* nghttp2 copied them: what comes now are chunked trailers. */
	s->nf = 0;
	s->in_value = 0;
	return head ? 1 : 0;
}

static int
mock_h2_rp_body(llhttp_t *p, const char *at, size_t n)
{
	struct mock_h2_stream	*s = mock_h2_rp_stream(p);

	evbuffer_add(s->out, at, n);
	return 0;
}

static int
mock_h2_rp_complete(llhttp_t *p)
{
	struct mock_h2_stream	*s = mock_h2_rp_stream(p);

	if (llhttp_get_status_code(p) < 200)
		return 0;
	s->complete = 1;
	s->trailers = s->head_sent && s->nf > 0;
	return HPE_PAUSED;
}

static const llhttp_settings_t mock_h2_rp_settings = {
	.on_header_field = mock_h2_rp_field,
	.on_header_value = mock_h2_rp_value,
	.on_headers_complete = mock_h2_rp_headers_complete,
	.on_body = mock_h2_rp_body,
	.on_message_complete = mock_h2_rp_complete,
};

/* Lets nghttp2 take what the stream has now. */
static void
mock_h2_stream_kick(struct mock_h2_stream *s)
{
	if (s->deferred && (evbuffer_get_length(s->out) > 0 || s->complete)) {
		s->deferred = 0;
		nghttp2_session_resume_data(s->h->ng, s->id);
	}
}

/* A stream's answer, written as HTTP/1.1, turned into frames. */
void
mock_h2_stream_write(struct mock_conn *c, const struct iovec *iov, int n)
{
	struct mock_h2_stream	*s = c->h2s;
	llhttp_errno_t		 err;
	int			 i;

	if (s == NULL)
		return;
	for (i = 0; i < n && !s->complete; i++) {
		err = llhttp_execute(&s->rp, iov[i].iov_base, iov[i].iov_len);
		if (err == HPE_PAUSED)
			break;
		if (err != HPE_OK) {
			/* garbage and the like: the stream is reset. */
			nghttp2_submit_rst_stream(s->h->ng, NGHTTP2_FLAG_NONE,
			    s->id, NGHTTP2_INTERNAL_ERROR);
			s->v = NULL;
			c->h2s = NULL;
			break;
		}
	}
	if (c->h2s != NULL)
		mock_h2_stream_kick(s);
	mock_h2_send(c->parent->h2);
}

/* A stream's body bytes not yet handed to nghttp2 (flow control). */
size_t
mock_h2_stream_pending(struct mock_conn *c)
{
	return c->h2s != NULL ? evbuffer_get_length(c->h2s->out) : 0;
}

/* Before a close_after fault closes the connection: the frames of what
 * the stream sent so far go to the socket now, so that the client gets
 * all N messages before the close (freeing the bufferevent would drop
 * them). Plain sockets only; on TLS they are lost as before. */
static void
mock_h2_flush(struct mock_h2 *h)
{
	struct mock_conn	*c = h->c;
	struct evbuffer		*out;
	const uint8_t		*data;
	ssize_t			 n;

	if (c->bev == NULL || c->state == MOCK_CONN_CLOSED)
		return;
	out = bufferevent_get_output(c->bev);

	while ((n = nghttp2_session_mem_send(h->ng, &data)) > 0)
		evbuffer_add(out, data, (size_t)n);
	if (c->tls)
		return;
	/* The bufferevent keeps its output's start frozen; the connection
	 * is closed next, so the bytes may leave here directly. */
	evbuffer_unfreeze(out, 1);
	while (evbuffer_get_length(out) > 0 && evbuffer_write(out, c->fd) > 0)
		;
}

/* The stream's answer ended (c is being closed): END_STREAM when it was
 * whole, RST_STREAM(INTERNAL_ERROR) for a reset or a cut answer, and the
 * whole connection for the close_* faults. */
void
mock_h2_stream_close(struct mock_conn *c, enum mock_end how)
{
	struct mock_h2		*h = c->parent->h2;
	struct mock_h2_stream	*s = c->h2s;
	enum mock_fault_kind	 f = c->resp.fault.kind;

	TAILQ_REMOVE(&h->streams, c, sentry);
	if (c->on_drained) {
		TAILQ_REMOVE(&h->drained, c, dentry);
		c->on_drained = 0;
	}
	if (s == NULL)
		return;
	s->v = NULL;
	c->h2s = NULL;
	if (h->closing)
		return;
	if (how != MOCK_END_RESET &&
	    c->resp.end_outcome == MOCK_OUTCOME_FAULT &&
	    (f == MOCK_FAULT_CLOSE_AFTER ||
	    f == MOCK_FAULT_CLOSE_BEFORE_HEADERS)) {
		mock_h2_flush(h);
		mock_conn_close(c->parent, MOCK_END_CLOSE);
		return;
	}
	if (how != MOCK_END_RESET && !s->complete)
		llhttp_finish(&s->rp);
	if (how == MOCK_END_RESET || !s->complete)
		nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id,
		    how == MOCK_END_RESET && c->resp.has_rst_code ?
		    c->resp.rst_code_out : NGHTTP2_INTERNAL_ERROR);
	else
		mock_h2_stream_kick(s);
	mock_h2_send(h);
}

/* A record of what the mock did to a connection: refused, GOAWAY. */
static void
mock_h2_record(struct mock_conn *c, const char *event, int32_t id)
{
	struct jsonw	 w;
	char		 stack[256];

	jsonw_init(&w, stack, sizeof(stack));
	log_record_begin(&w, LOG_LEVEL_INFO, event);
	jsonw_kuint(&w, "conn", c->id);
	jsonw_kint(&w, "stream_id", id);
	log_record_end(&w);
	jsonw_free(&w);
}

static int
mock_h2_begin_headers_cb(nghttp2_session *ng, const nghttp2_frame *f,
    void *arg)
{
	struct mock_h2		*h = arg;
	struct mock_conn	*c = h->c, *v;
	struct mock_h2_stream	*s;
	struct mock_server	*srv = c->srv;
	int32_t			 id = f->hd.stream_id;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (h->goaway_sent && id > h->goaway_last) {
		/* Came before our GOAWAY reached the client: not processed. */
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id,
		    NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	h->nstarted++;
	if (srv->h2.goaway_after > 0 &&
	    h->nstarted == (unsigned)srv->h2.goaway_after) {
		mock_h2_record(c, "mock_h2_goaway", id);
		nghttp2_submit_goaway(ng, NGHTTP2_FLAG_NONE, id,
		    NGHTTP2_NO_ERROR, NULL, 0);
		h->goaway_sent = 1;
		h->goaway_last = id;
	}
	if (srv->h2.refuse_nth > 0 &&
	    ++srv->h2_streams == (unsigned)srv->h2.refuse_nth) {
		mock_h2_record(c, "mock_h2_refused", id);
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id,
		    NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL ||
	    (s = calloc(1, sizeof(*s))) == NULL) {
		free(v);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	if ((s->out = evbuffer_new()) == NULL) {
		free(s);
		free(v);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	v->srv = srv;
	v->id = c->id;
	v->fd = -1;
	v->tls = c->tls;
	v->parent = c;
	v->stream_id = id;
	v->state = MOCK_CONN_READING;
	v->resp.model_off = -1;
	v->h2s = s;
	evtimer_assign(&v->timer, srv->base, mock_stream_timer_cb, v);
	s->h = h;
	s->v = v;
	s->id = id;
	llhttp_init(&s->rp, HTTP_RESPONSE, &mock_h2_rp_settings);
	s->rp.data = s;
	TAILQ_INSERT_TAIL(&h->streams, v, sentry);
	TAILQ_INSERT_TAIL(&h->all, s, entry);
	nghttp2_session_set_stream_user_data(ng, id, s);
	return 0;
}

static const char *
mock_h2_method(const uint8_t *m, size_t n)
{
	static const char *const known[] = {
		"GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS",
	};
	size_t	 i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == n && memcmp(known[i], m, n) == 0)
			return known[i];
	return "OTHER";
}

static int
mock_h2_header_cb(nghttp2_session *ng, const nghttp2_frame *f,
    const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen,
    uint8_t flags, void *arg)
{
	struct mock_h2_stream	*s;
	struct mock_conn	*v;
	int			 r = 0;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    (s = nghttp2_session_get_stream_user_data(ng,
	    f->hd.stream_id)) == NULL || (v = s->v) == NULL ||
	    v->state != MOCK_CONN_READING)
		return 0;
	if (nlen == 7 && memcmp(name, ":method", 7) == 0)
		v->h2_method = mock_h2_method(value, vlen);
	else if (nlen == 5 && memcmp(name, ":path", 5) == 0)
		r = mock_req_set_url(v, (const char *)value, vlen);
	else if (nlen == 10 && memcmp(name, ":authority", 10) == 0)
		r = mock_req_add_header(v, "host", 4, (const char *)value,
		    vlen);
	else if (nlen > 0 && name[0] != ':')
		r = mock_req_add_header(v, (const char *)name, nlen,
		    (const char *)value, vlen);
	return r == -1 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

static int
mock_h2_data_chunk_cb(nghttp2_session *ng, uint8_t flags, int32_t id,
    const uint8_t *data, size_t len, void *arg)
{
	struct mock_h2_stream	*s = nghttp2_session_get_stream_user_data(ng,
				    id);

	if (s == NULL || s->v == NULL || s->v->state != MOCK_CONN_READING)
		return 0;
	if (mock_req_add_body(s->v, (const char *)data, len) == -1)
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id,
		    NGHTTP2_REFUSED_STREAM);
	return 0;
}

static int
mock_h2_frame_recv_cb(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct mock_h2_stream	*s;
	struct mock_conn	*v;

	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	if ((s = nghttp2_session_get_stream_user_data(ng,
	    f->hd.stream_id)) == NULL || (v = s->v) == NULL ||
	    v->state != MOCK_CONN_READING)
		return 0;
	if (v->req.url_len == 0 && mock_req_set_url(v, "/", 1) == -1)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	mock_http_answer(v, v->h2_method != NULL ? v->h2_method : "GET", 0, 1);
	return 0;
}

/* The client reset a stream (CANCEL from a proxy), or it simply ended. */
static int
mock_h2_stream_close_cb(nghttp2_session *ng, int32_t id, uint32_t code,
    void *arg)
{
	struct mock_h2		*h = arg;
	struct mock_h2_stream	*s;
	struct mock_conn	*v;

	if ((s = nghttp2_session_get_stream_user_data(ng, id)) == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	TAILQ_REMOVE(&h->all, s, entry);
	if ((v = s->v) != NULL) {
		v->h2s = NULL;
		s->v = NULL;
		if (code != NGHTTP2_NO_ERROR || v->state == MOCK_CONN_READING) {
			if (v->state == MOCK_CONN_RESPONDING &&
			    !v->resp.no_record) {
				v->rst_code = code;
				mock_record_stream(v,
				    MOCK_OUTCOME_CLIENT_RST_STREAM,
				    clock_mono_us());
			}
			mock_conn_close(v, MOCK_END_CLOSE);
		} else	/* NO_ERROR while answering: mock_h2_send ends it */
			mock_h2_mark_drained(h, v);
	}
	evbuffer_free(s->out);
	free(s);
	return 0;
}

/* Writes what nghttp2 has, then ends answers whose bytes are all out. */
static void
mock_h2_send(struct mock_h2 *h)
{
	struct mock_conn	*c = h->c, *v;
	struct evbuffer		*out;
	const uint8_t		*data;
	ssize_t			 n;

	if (h->in_recv || h->closing || c->state == MOCK_CONN_CLOSED)
		return;
	if (h->in_send) {
		h->again = 1;
		return;
	}
	h->in_send = 1;
	do {
		h->again = 0;
		out = bufferevent_get_output(c->bev);
		while (evbuffer_get_length(out) < MOCK_H2_OUT_HIGH &&
		    (n = nghttp2_session_mem_send(h->ng, &data)) > 0)
			evbuffer_add(out, data, (size_t)n);
		while ((v = TAILQ_FIRST(&h->drained)) != NULL &&
		    !h->closing) {
			TAILQ_REMOVE(&h->drained, v, dentry);
			v->on_drained = 0;
			if (v->state == MOCK_CONN_RESPONDING &&
			    mock_conn_pending(v) == 0)
				mock_resp_drained(v);
		}
	} while (h->again && !h->closing && c->state != MOCK_CONN_CLOSED);
	h->in_send = 0;
	if (!h->closing && c->state != MOCK_CONN_CLOSED &&
	    !nghttp2_session_want_read(h->ng) &&
	    !nghttp2_session_want_write(h->ng) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		mock_conn_close(c, MOCK_END_CLOSE);
}

/* Whether the connection starts with the HTTP/2 preface (1: it does, or
 * too few bytes came to tell); then the connection speaks HTTP/2. */
int
mock_h2_sniff(struct mock_conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	size_t			 n = evbuffer_get_length(in);
	nghttp2_session_callbacks *cb;
	nghttp2_option		*opt;
	nghttp2_settings_entry	 iv[1];
	struct mock_h2		*h;
	const unsigned char	*p;

	if (n > sizeof(MOCK_H2_PREFACE) - 1)
		n = sizeof(MOCK_H2_PREFACE) - 1;
	if (n == 0 || (p = evbuffer_pullup(in, (ssize_t)n)) == NULL ||
	    memcmp(p, MOCK_H2_PREFACE, n) != 0)
		return 0;
	if (n < sizeof(MOCK_H2_PREFACE) - 1)
		return 1;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return 0;
	if (nghttp2_session_callbacks_new(&cb) != 0) {
		free(h);
		return 0;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
	    mock_h2_begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, mock_h2_header_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
	    mock_h2_data_chunk_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
	    mock_h2_frame_recv_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb,
	    mock_h2_stream_close_cb);
	nghttp2_option_new(&opt);
	if (c->srv->h2.no_ping_ack)
		nghttp2_option_set_no_auto_ping_ack(opt, 1);
	if (nghttp2_session_server_new2(&h->ng, cb, h, opt) != 0) {
		nghttp2_option_del(opt);
		nghttp2_session_callbacks_del(cb);
		free(h);
		return 0;
	}
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	h->c = c;
	TAILQ_INIT(&h->streams);
	TAILQ_INIT(&h->drained);
	TAILQ_INIT(&h->all);
	c->h2 = h;
	iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
	iv[0].value = 1000;
	nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, 1);
	log_msg(LOG_LEVEL_DEBUG, "mock_h2", "conn %llu speaks HTTP/2",
	    (unsigned long long)c->id);
	mock_h2_read(c);
	return 1;
}

/* Feeds what arrived to nghttp2, then writes. */
void
mock_h2_read(struct mock_conn *c)
{
	struct mock_h2		*h = c->h2;
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec	 v;
	ssize_t			 n;

	h->in_recv = 1;
	while (c->state != MOCK_CONN_CLOSED &&
	    evbuffer_peek(in, -1, NULL, &v, 1) >= 1 && v.iov_len > 0) {
		n = nghttp2_session_mem_recv(h->ng, v.iov_base, v.iov_len);
		if (n < 0) {
			h->in_recv = 0;
			log_msg(LOG_LEVEL_INFO, "mock_h2_error",
			    "conn %llu: %s", (unsigned long long)c->id,
			    nghttp2_strerror((int)n));
			mock_conn_close(c, MOCK_END_CLOSE);
			return;
		}
		evbuffer_drain(in, (size_t)n);
	}
	h->in_recv = 0;
	mock_h2_send(h);
}

/* The socket's output drained: more frames may go. */
void
mock_h2_write(struct mock_conn *c)
{
	mock_h2_send(c->h2);
}

/* The client closed the connection: every open answer says so. */
void
mock_h2_gone(struct mock_conn *c, enum mock_outcome outcome, uint64_t now)
{
	struct mock_conn	*v;

	TAILQ_FOREACH(v, &c->h2->streams, sentry)
		if (v->state == MOCK_CONN_RESPONDING && !v->resp.no_record)
			mock_record_stream(v, outcome, now);
}

/* The connection goes: its streams end with it (conn_closed when the
 * mock closed it, already recorded when the client did). */
void
mock_h2_conn_close(struct mock_conn *c)
{
	struct mock_h2		*h = c->h2;
	struct mock_conn	*v;

	h->closing = 1;
	while ((v = TAILQ_FIRST(&h->streams)) != NULL) {
		if (v->state == MOCK_CONN_RESPONDING && !v->resp.no_record &&
		    !c->peer_gone)
			mock_record_stream(v, MOCK_OUTCOME_CONN_CLOSED, 0);
		mock_conn_close(v, MOCK_END_CLOSE);
	}
}

/* Frees a connection's session, or unhooks a stream (reaper). */
void
mock_h2_free(struct mock_conn *c)
{
	struct mock_h2		*h = c->h2;
	struct mock_h2_stream	*s;

	if (c->h2s != NULL) {
		c->h2s->v = NULL;
		c->h2s = NULL;
	}
	if (h == NULL || c->parent != NULL)
		return;
	while ((s = TAILQ_FIRST(&h->all)) != NULL) {
		TAILQ_REMOVE(&h->all, s, entry);
		if (s->v != NULL)
			s->v->h2s = NULL;
		evbuffer_free(s->out);
		free(s);
	}
	nghttp2_session_del(h->ng);
	free(h);
	c->h2 = NULL;
}
