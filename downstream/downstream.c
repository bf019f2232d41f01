/* downstream: client connections — accept, TLS, timers, noticing the
 * client go away in every phase, and the end of each exchange. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>

#include "downstream/downstream_priv.h"
#include "proxy/log.h"
#include "proxy/session.h"

#define DOWNSTREAM_IDLE_MS	75000	/* keep-alive wait for the next request */

static void	downstream_read_cb(struct bufferevent *, void *);
static void	downstream_write_cb(struct bufferevent *, void *);
static void	downstream_drained(void *);
static void	downstream_write_failed(void *, int);
static void	downstream_event_cb(struct bufferevent *, short, void *);
static void	downstream_timer_cb(evutil_socket_t, short, void *);

/* "ip:port" (v6 in brackets) into buf, the address alone into ip. */
static void
downstream_addr_format(const struct sockaddr *sa, char *buf, size_t len,
    char *ip, size_t iplen)
{
	char	 host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		evutil_inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
		snprintf(ip, iplen, "%s", host);
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		evutil_inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
		snprintf(ip, iplen, "%s", host);
	} else {
		snprintf(buf, len, "unknown");
		snprintf(ip, iplen, "unknown");
	}
}

/* Past max_connections: a fixed 503 written without blocking, then close. */
static void
downstream_refuse_fd(int fd)
{
	static const char resp[] =
	    "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: 91\r\n"
	    "Connection: close\r\n"
	    "Retry-After: 1\r\n\r\n"
	    "{\"error\":{\"message\":\"too many connections\",\"type\":\"proxy_error\","
	    "\"code\":\"max_connections\"}}\n";
	ssize_t	 n;

	n = send(fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n;
	close(fd);
}

struct client *
downstream_accept(struct worker *w, int fd, const struct sockaddr *sa,
    int listen_idx)
{
	struct runtime	*rt = w->rt;
	struct client	*c;
	SSL		*ssl = NULL;
	int		 one = 1, live;

	live = __atomic_add_fetch(&proxy_global.live_connections, 1,
	    __ATOMIC_RELAXED);
	if (live > rt->conf->limits.max_connections) {
		__atomic_sub_fetch(&proxy_global.live_connections, 1,
		    __ATOMIC_RELAXED);
		downstream_refuse_fd(fd);
		log_msg(LOG_LEVEL_WARN, "max_connections",
		    "refused a connection: %d open, max_connections %lld",
		    live - 1, (long long)rt->conf->limits.max_connections);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->w = w;
	c->fd = fd;
	c->accepted_us = clock_mono_us();
	c->id = ++w->next_serial;
	c->listen_idx = listen_idx;
	c->rt = runtime_ref(rt);
	downstream_addr_format(sa, c->addr, sizeof(c->addr), c->ip,
	    sizeof(c->ip));
	c->forwarded = (uint8_t)rt->conf->listen[listen_idx].forwarded;
	evutil_make_socket_nonblocking(fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (rt->listen_tls[listen_idx] != NULL) {
		if ((ssl = SSL_new(rt->listen_tls[listen_idx])) == NULL)
			goto fail;
		c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		c->tls = 1;
	} else
		c->bev = bufferevent_socket_new(w->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		if (ssl != NULL)
			SSL_free(ssl);
		goto fail;
	}
	c->timer = evtimer_new(w->base, downstream_timer_cb, c);
	if (c->timer == NULL)
		goto fail;
	bufferevent_setcb(c->bev, downstream_read_cb, downstream_write_cb,
	    downstream_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, DOWNSTREAM_OUT_LOW, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	/* TLS goes through OpenSSL's bufferevent; plain reads and writes are
	 * ours. */
	if (!c->tls) {
		writeout_start(&c->out, w, c->bev, downstream_drained,
		    downstream_write_failed, c);
		(void)readin_start(&c->in, c->bev, fd);
	}
	c->proto = &downstream_h1;
	downstream_parser_init(c);
	{
		struct timeval tv;
		int64_t ms = rt->conf->limits.header_timeout_ms;

		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		evtimer_add(c->timer, &tv);
	}
	TAILQ_INSERT_TAIL(&w->clients, c, entry);
	return c;

fail:
	log_msg(LOG_LEVEL_ERROR, "accept", "cannot set up a connection: %s",
	    strerror(errno ? errno : ENOMEM));
	if (c != NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			close(fd);
		if (c->timer != NULL)
			event_free(c->timer);
		if (c->rt != NULL)
			runtime_unref(c->rt);
		free(c);
	} else
		close(fd);
	__atomic_sub_fetch(&proxy_global.live_connections, 1, __ATOMIC_RELAXED);
	return NULL;
}

struct evbuffer *
downstream_output(struct client *c)
{
	return bufferevent_get_output(c->bev);
}

/* Arms the connection timer for ms milliseconds. */
static void
downstream_timer_arm(struct client *c, int64_t ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

static void
downstream_watch_cb(void *arg, int rst)
{
	struct client	*c = arg;

	downstream_close(c, rst ? CANCEL_VIA_RST : CANCEL_VIA_EOF);
}

/*
 * Picks the connection's protocol from the first bytes: ALPN on TLS, else
 * the HTTP/2 client preface where the listener speaks h2. 0 when chosen
 * (c->proto set, or c closed), -1 while the preface may still come.
 */
static int
downstream_sniff(struct client *c)
{
	uint8_t		 protos = c->rt->conf->listen[c->listen_idx].protocols;
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	unsigned char	 buf[DOWNSTREAM_H2_PREFACE_LEN];
	const unsigned char *alpn = NULL;
	unsigned int	 alen = 0;
	size_t		 n;
	int		 h2 = 0;

	if (c->tls) {
		SSL_get0_alpn_selected(bufferevent_openssl_get_ssl(c->bev),
		    &alpn, &alen);
		if (alen == 2 && memcmp(alpn, "h2", 2) == 0)
			h2 = 1;
	}
	if (!h2 && (protos & CONF_PROTO_H2) && alen == 0) {
		n = evbuffer_get_length(in);
		if (n > sizeof(buf))
			n = sizeof(buf);
		evbuffer_copyout(in, buf, n);
		if (memcmp(buf, DOWNSTREAM_H2_PREFACE, n) == 0) {
			if (n < sizeof(buf))
				return -1;	/* a prefix so far */
			h2 = 1;
		}
	}
	c->sniffed = 1;
	if (!h2) {
		/* HTTP/1.1 where the listener allows it; a preface on a
		 * listener without h2 is the HTTP/1.1 parser's to refuse. */
		if (!(protos & CONF_PROTO_H1))
			downstream_close(c, CANCEL_VIA_EOF);
		return 0;
	}
	if (downstream_h2_start(c) == -1) {
		log_msg(LOG_LEVEL_ERROR, "h2_error", "client %s: cannot set up "
		    "HTTP/2", c->addr);
		downstream_close(c, CANCEL_VIA_EOF);
	}
	return 0;
}

/*
 * A live session holds the parser; bytes the client sends meanwhile
 * (pipelining) wait in the input buffer. Past a bound, reading stops and a
 * pause watch keeps noticing FIN and RST. HTTP/2 reads always: its
 * streams wait in their own buffers.
 */
static void
downstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct client	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);

	if (c->closed)
		return;
	if (!c->sniffed && (downstream_sniff(c) == -1 || c->closed))
		return;
	if (c->h2 != NULL) {
		downstream_h2_input(c);
		return;
	}
	if (c->parse_paused) {
		if (evbuffer_get_length(in) > DOWNSTREAM_PIPELINE_MAX &&
		    !c->reading_paused) {
			readin_enable(&c->in, c->bev, 0);
			c->reading_paused = 1;
			c->watch = pause_watch_start(c->w->base, c->fd,
			    downstream_watch_cb, c);
		}
		return;
	}
	downstream_process_input(c);
}

/* The output went below its low mark: resume a paused upstream, or end a
 * connection that waited for its last bytes to leave. */
static void
downstream_drained(void *arg)
{
	struct client	*c = arg;

	if (c->closed)
		return;
	if (c->h2 != NULL) {
		downstream_h2_drained(c);
		return;
	}
	if (c->close_after) {
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			downstream_close(c, CANCEL_VIA_EOF);
		return;
	}
	if (c->session != NULL)
		session_client_drained(c->session);
}

/* Our write to the client failed: the same report as the bufferevent's,
 * with the error the write met (ECONNRESET: the client reset). */
static void
downstream_write_failed(void *arg, int err)
{
	struct client	*c = arg;

	errno = err;
	downstream_event_cb(c->bev, BEV_EVENT_WRITING | BEV_EVENT_ERROR, c);
}

static void
downstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct client	*c = arg;

	writeout_written(&c->out);
	downstream_drained(c);
}

static void
downstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client	*c = arg;
	int		 err = EVUTIL_SOCKET_ERROR();
	enum cancel_via	 via;

	if (c->closed)
		return;
	/* The TLS handshake finished (accepting side): nothing went away. */
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF)
		via = CANCEL_VIA_EOF;
	else if (what & BEV_EVENT_WRITING)
		via = (err == ECONNRESET) ? CANCEL_VIA_RST :
		    CANCEL_VIA_WRITE_ERROR;
	else
		via = CANCEL_VIA_RST;
	/* A TLS handshake failure or a reset with nothing in flight is
	 * simply a closed connection. */
	downstream_close(c, via);
}

static void
downstream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client	*c = arg;

	if (c->closed)
		return;
	if (c->h2 != NULL) {
		downstream_h2_timer(c);
		return;
	}
	/* A request in progress keeps its own deadline (the session's). */
	if (c->session == NULL)
		downstream_close(c, CANCEL_VIA_TIMER);
}

/*
 * header_timeout_ms is a deadline for the whole request, head and body,
 * never re-armed by progress: a client trickling a byte every few seconds
 * is cut off when it passes. It is the session's, in its request phase;
 * the first request's runs from the accept, a kept-alive connection's next
 * request's from its first byte, after the idle wait. The connection's
 * own timer rests meanwhile.
 */
void
downstream_request_begin(struct client *c)
{
	struct session	*s = c->session;

	evtimer_del(c->timer);
	session_request_deadline(s, c->requests == 0 ? c->accepted_us :
	    s->t_start_us);
}

void
downstream_close(struct client *c, int via)
{
	struct session	*s;
	struct worker	*w = c->w;

	if (c->closed)
		return;
	c->closed = 1;
	if ((s = c->session) != NULL) {
		c->session = NULL;
		session_client_gone(s, (enum cancel_via)via);
	}
	downstream_h2_close(c, via);
	if (c->watch != NULL) {
		pause_watch_stop(c->watch);
		c->watch = NULL;
	}
	if (c->timer != NULL)
		evtimer_del(c->timer);
	if (c->bev != NULL) {
		readin_free(&c->in);
		writeout_stop(&c->out);
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
		bufferevent_free(c->bev);	/* closes the socket now */
		c->bev = NULL;
	}
	TAILQ_REMOVE(&w->clients, c, entry);
	TAILQ_INSERT_TAIL(&w->dead_clients, c, entry);
	__atomic_sub_fetch(&proxy_global.live_connections, 1, __ATOMIC_RELAXED);
	worker_schedule_reap(w);
}

/* Frees a closed client at the end of the loop turn. */
void
downstream_free(struct client *c)
{
	downstream_h2_free(c);
	if (c->timer != NULL)
		event_free(c->timer);
	runtime_unref(c->rt);
	free(c);
}

void
downstream_session_done(struct client *c, int keep_alive)
{
	c->session = NULL;
	if (c->closed)
		return;
	c->requests++;
	if (!keep_alive || c->w->draining) {
		c->close_after = 1;
		readin_enable(&c->in, c->bev, 0);
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			downstream_close(c, CANCEL_VIA_EOF);
		return;
	}
	c->parse_paused = 0;
	c->in_request = 0;
	c->head_scanned = 0;	/* the next request's head is scanned anew */
	c->seen_line = 0;
	c->line_len = 0;
	c->last_cr = 0;
	llhttp_resume(&c->parser);
	if (c->reading_paused) {
		pause_watch_stop(c->watch);
		c->watch = NULL;
		c->reading_paused = 0;
		readin_enable(&c->in, c->bev, 1);
	}
	downstream_timer_arm(c, DOWNSTREAM_IDLE_MS);
	/* Pipelined bytes: parse them on a later turn, never recursively. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
		    BEV_TRIG_DEFER_CALLBACKS);
}

void
downstream_drain(struct client *c)
{
	if (c->closed)
		return;
	if (c->h2 != NULL)
		downstream_h2_drain(c);
	else if (c->session == NULL)
		downstream_close(c, CANCEL_VIA_SIGNAL);
}

int
downstream_pending(struct client *c)
{
	if (c->closed || c->bev == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 ||
	    downstream_h2_pending(c);
}

/* Picks the first of the listener's protocols the client offers. */
static int
downstream_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char h2[] = "\x02h2";
	static const unsigned char h1[] = "\x08http/1.1";
	const uint8_t	*protocols = arg;
	unsigned char	*sel = NULL;

	if ((*protocols & CONF_PROTO_H2) && SSL_select_next_proto(&sel, outlen,
	    h2, sizeof(h2) - 1, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
		*out = sel;
		return SSL_TLSEXT_ERR_OK;
	}
	if ((*protocols & CONF_PROTO_H1) && SSL_select_next_proto(&sel, outlen,
	    h1, sizeof(h1) - 1, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
		*out = sel;
		return SSL_TLSEXT_ERR_OK;
	}
	/* No protocol in common: a client that offers only h2 to an
	 * HTTP/1.1 listener is refused in the handshake. */
	return (*protocols & CONF_PROTO_H1) ? SSL_TLSEXT_ERR_NOACK :
	    SSL_TLSEXT_ERR_ALERT_FATAL;
}

void
downstream_tls_alpn(SSL_CTX *ctx, const uint8_t *protocols)
{
	SSL_CTX_set_alpn_select_cb(ctx, downstream_alpn_cb, (void *)protocols);
}
