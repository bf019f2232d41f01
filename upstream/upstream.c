/* upstream: getting a connection to the model — the pool, evdns lookups,
 * connect and TLS handshake, pausing for backpressure, closing at once. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "proxy/log.h"
#include "proxy/session.h"
#include "upstream/upstream_priv.h"

/* An evdns lookup in flight; outlives its session if cancelled. */
struct upstream_dns {
	struct session				*s;	/* NULL: cancelled */
	struct evdns_getaddrinfo_request	*req;
};

static void	upstream_read_cb(struct bufferevent *, void *);
static void	upstream_write_cb(struct bufferevent *, void *);
static void	upstream_event_cb(struct bufferevent *, short, void *);
static void	upstream_connect_addr(struct session *s,
		    const struct sockaddr *sa, socklen_t len);

/* Closes a connection's socket now (FIN to the peer) and frees it. */
void
upstream_conn_close(struct upstream_conn *u)
{
	if (u->fd >= 0)
		shutdown(u->fd, SHUT_RDWR);
	readin_free(&u->in);
	if (u->bev != NULL) {
		writeout_stop(&u->out);
		bufferevent_setcb(u->bev, NULL, NULL, NULL, NULL);
		bufferevent_disable(u->bev, EV_READ | EV_WRITE);
		bufferevent_free(u->bev);
	}
	free(u->key);
	free(u);
}

static void
upstream_attach(struct session *s, struct upstream_conn *u)
{
	u->s = s;
	s->up = u;
	memcpy(&s->up_addr, &u->addr, u->addrlen);
	s->up_addrlen = u->addrlen;
	bufferevent_setcb(u->bev, upstream_read_cb, upstream_write_cb,
	    upstream_event_cb, u);
	/* With our writes, EV_WRITE is armed only for leftovers. */
	if (u->out.bev == NULL)
		bufferevent_enable(u->bev, EV_WRITE);
	upstream_reading(u, 1);
}

static void
upstream_dns_cb(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct upstream_dns	*d = arg;
	struct session		*s = d->s;
	char			 detail[160];

	free(d);
	if (s == NULL) {		/* the session went away meanwhile */
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		return;
	}
	s->dns = NULL;
	if (err != 0 || ai == NULL) {
		snprintf(detail, sizeof(detail), "cannot resolve %s: %s",
		    s->up_conf->host, evutil_gai_strerror(err));
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR,
		    CANCEL_VIA_RST, detail);
		return;
	}
	upstream_connect_addr(s, ai->ai_addr, (socklen_t)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
}

int
upstream_numeric_addr(const struct conf_upstream *up, union proxy_addr *a,
    socklen_t *len)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, up->host, &a->sin.sin_addr) == 1) {
		a->sin.sin_family = AF_INET;
		a->sin.sin_port = htons(up->port);
		*len = sizeof(a->sin);
		return 0;
	}
	if (inet_pton(AF_INET6, up->host, &a->sin6.sin6_addr) == 1) {
		a->sin6.sin6_family = AF_INET6;
		a->sin6.sin6_port = htons(up->port);
		*len = sizeof(a->sin6);
		return 0;
	}
	return -1;
}

struct evdns_getaddrinfo_request *
upstream_lookup(struct worker *w, const struct conf_upstream *up,
    upstream_lookup_cb cb, void *arg)
{
	struct evutil_addrinfo	 hints;
	char			 port[8];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	snprintf(port, sizeof(port), "%u", up->port);
	return evdns_getaddrinfo(w->dns, up->host, port, &hints, cb, arg);
}

static void
upstream_resolve(struct session *s)
{
	struct conf_upstream	*up = s->up_conf;
	union proxy_addr	 a;
	socklen_t		 len;
	struct upstream_dns	*d;
	struct evdns_getaddrinfo_request *req;

	/* A numeric address needs no lookup. */
	if (upstream_numeric_addr(up, &a, &len) == 0) {
		upstream_connect_addr(s, &a.sa, len);
		return;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR,
		    CANCEL_VIA_RST, "out of memory");
		return;
	}
	d->s = s;
	s->dns = d;
	req = upstream_lookup(s->w, up, upstream_dns_cb, d);
	/* NULL: answered at once, d is already freed. */
	if (req != NULL)
		d->req = req;
}

SSL *
upstream_ssl_new(struct runtime *rt, const struct conf_upstream *up)
{
	SSL_CTX		*ctx = runtime_upstream_tls(rt, up);
	SSL		*ssl;
	const char	*sni;
	unsigned char	 buf[16];

	if (ctx == NULL || (ssl = SSL_new(ctx)) == NULL)
		return NULL;
	sni = up->tls_server_name ? up->tls_server_name : up->host;
	/* SNI only for names, never for IP literals (RFC 6066 §3). */
	if (inet_pton(AF_INET, sni, buf) != 1 &&
	    inet_pton(AF_INET6, sni, buf) != 1)
		SSL_set_tlsext_host_name(ssl, sni);
	if (up->tls_verify) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

		if (X509_VERIFY_PARAM_set1_ip_asc(vp, sni) != 1 &&
		    SSL_set1_host(ssl, sni) != 1) {
			SSL_free(ssl);
			return NULL;
		}
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	} else
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	return ssl;
}

static void
upstream_connect_addr(struct session *s, const struct sockaddr *sa,
    socklen_t len)
{
	struct conf_upstream	*up = s->up_conf;
	struct upstream_conn	*u = NULL;
	SSL			*ssl = NULL;
	int			 one = 1;

	if (len > sizeof(u->addr) || (u = calloc(1, sizeof(*u))) == NULL)
		goto fail;
	u->w = s->w;
	u->proto = &upstream_h1;
	u->fd = -1;
	if ((u->key = strdup(up->pool_key)) == NULL)
		goto fail;
	u->key_hash = up->pool_hash;
	memcpy(&u->addr, sa, len);
	u->addrlen = len;
	if (up->tls) {
		if ((ssl = upstream_ssl_new(s->rt, up)) == NULL)
			goto fail;
		/* This one speaks HTTP/1.1 whatever the context offers. */
		SSL_set_alpn_protos(ssl,
		    (const unsigned char *)"\x08http/1.1", 9);
		u->bev = bufferevent_openssl_socket_new(s->w->base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (u->bev == NULL)
			goto fail;
		ssl = NULL;		/* owned by the bufferevent */
		u->tls = 1;
	} else if ((u->bev = bufferevent_socket_new(s->w->base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		goto fail;
	upstream_attach(s, u);
	if (bufferevent_socket_connect(u->bev, sa, (int)len) == -1) {
		char	 why[128];
		int	 e = errno;

		/* Local failures (EMFILE, ENOBUFS) say so: the operator must
		 * be able to tell them from a peer that refused. */
		snprintf(why, sizeof(why), "connect failed: %s", strerror(e));
		if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
			log_msg(LOG_LEVEL_WARN, "upstream_socket", "cannot open "
			    "a socket to upstream %s: %s", s->up_conf->name,
			    strerror(e));
		s->up = NULL;
		upstream_conn_close(u);
		session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR,
		    CANCEL_VIA_RST, why);
		return;
	}
	u->fd = bufferevent_getfd(u->bev);
	setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* The connect keeps its own EV_WRITE until it completes. */
	if (!u->tls)
		writeout_start(&u->out, s->w, u->bev, NULL, NULL, NULL);
	return;

fail:
	if (ssl != NULL)
		SSL_free(ssl);
	if (u != NULL) {
		if (s->up == u)
			s->up = NULL;
		if (u->bev != NULL)
			upstream_conn_close(u);
		else {
			free(u->key);
			free(u);
		}
	}
	session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR, CANCEL_VIA_RST,
	    "cannot set up the upstream connection");
}

/* Picks the protocol: a test's override, else the upstream's "protocol"
 * ("auto" on TLS tries h2 by ALPN; HTTP/1.1 on plain). */
int
upstream_start(struct session *s)
{
	const struct upstream_proto *p = s->w->upstream_proto;

	if (p != NULL)
		return p->start(s);
	if (s->up_conf->protocol == CONF_PROTOCOL_H2 ||
	    (s->up_conf->protocol == CONF_PROTOCOL_AUTO && s->up_conf->tls))
		return upstream_h2.start(s);
	return upstream_h1.start(s);
}

/* Gives a connected TLS connection that chose HTTP/1.1 to s. */
void
upstream_h1_adopt(struct session *s, struct upstream_conn *u)
{
	u->proto = &upstream_h1;
	u->connected = 1;
	if (u->fd < 0)
		u->fd = bufferevent_getfd(u->bev);
	upstream_attach(s, u);
	session_upstream_connected(s);
}

/* HTTP/1.1: an idle pooled connection, or resolve and connect anew. */
int
upstream_h1_start(struct session *s)
{
	struct upstream_conn	*u;

	if ((u = upstream_pool_get(s->w->pool, s->up_conf)) != NULL) {
		u->reused = 1;
		upstream_attach(s, u);
		session_upstream_connected(s);
		return 0;
	}
	upstream_resolve(s);
	return 0;
}

void
upstream_abort(struct session *s)
{
	if (s->dns != NULL) {
		struct upstream_dns *d = s->dns;

		s->dns = NULL;
		d->s = NULL;
		if (d->req != NULL)
			evdns_getaddrinfo_cancel(d->req);
	}
	if (s->up_stream != NULL)
		upstream_h2_cancel(s);
	else if (s->up != NULL)
		s->up->proto->cancel(s);
}

/* HTTP/1.1: the stream is the connection; closing it stops the model. */
void
upstream_h1_cancel(struct session *s)
{
	struct upstream_conn *u = s->up;

	if (s->up_watch != NULL) {
		pause_watch_stop(s->up_watch);
		s->up_watch = NULL;
	}
	s->up = NULL;
	upstream_conn_close(u);
}

void
upstream_send_request(struct session *s)
{
	s->up->proto->send_request(s);
}

void
upstream_release(struct session *s)
{
	if (s->up != NULL)
		s->up->proto->release(s);
}

void
upstream_pause(struct session *s)
{
	if (s->up != NULL)
		s->up->proto->pause(s);
}

void
upstream_resume(struct session *s)
{
	if (s->up != NULL)
		s->up->proto->resume(s);
	else
		s->paused = 0;
}

/* The response failed on a reused connection before any byte: the server
 * had closed it while idle; try once more on a fresh one. */
static int
upstream_retry(struct session *s)
{
	struct upstream_conn	*u = s->up;

	if (u == NULL || !u->reused || s->retried || s->resp_head_sent ||
	    s->phase != PHASE_WAITING_FIRST_BYTE ||
	    u->parser.initial_message_completed ||
	    s->resp_headers.n != 0)
		return -1;
	s->retried = 1;
	s->up = NULL;
	upstream_conn_close(u);
	s->phase = PHASE_CONNECTING;
	s->t_connect_us = clock_mono_us();
	session_timer_update(s);
	upstream_resolve(s);
	return 0;
}

static void
upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream_conn	*u = arg;

	if (u->s != NULL && !session_closed(u->s))
		upstream_http_read(u->s);
}

static void
upstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct upstream_conn	*u = arg;

	writeout_written(&u->out);
}

static void
upstream_tls_error(struct bufferevent *bev, char *buf, size_t len)
{
	unsigned long	 e = bufferevent_get_openssl_error(bev);
	char		 tmp[200];

	if (e == 0) {
		snprintf(buf, len, "TLS handshake failed");
		return;
	}
	ERR_error_string_n(e, tmp, sizeof(tmp));
	snprintf(buf, len, "TLS handshake failed: %s", tmp);
	while (bufferevent_get_openssl_error(bev) != 0)
		;
}

static void
upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream_conn	*u = arg;
	struct session		*s = u->s;
	int			 err = EVUTIL_SOCKET_ERROR();
	char			 detail[256];

	if (s == NULL || session_closed(s))
		return;
	if (what & BEV_EVENT_CONNECTED) {
		u->connected = 1;
		if (u->fd < 0)
			u->fd = bufferevent_getfd(bev);
		/* Plain: our reads from now on (upstream_reading). */
		if (!u->tls)
			(void)readin_start(&u->in, u->bev, u->fd);
		session_upstream_connected(s);
		return;
	}
	if (!u->connected) {
		if (u->tls && err == 0)
			upstream_tls_error(bev, detail, sizeof(detail));
		else
			snprintf(detail, sizeof(detail), "connect to %s:%u: %s",
			    s->up_conf->host, s->up_conf->port,
			    evutil_socket_error_to_string(err));
		session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR,
		    CANCEL_VIA_RST, detail);
		return;
	}
	if (upstream_retry(s) == 0)
		return;
	upstream_http_eof(s, (what & BEV_EVENT_ERROR) != 0);
}

static void
upstream_watch_cb(void *arg, int rst)
{
	struct session	*s = arg;

	if (session_closed(s))
		return;
	if (rst) {
		session_upstream_closed(s, 1);
		return;
	}
	/* A FIN with data still queued may be the normal end of the body;
	 * reading resumes when the client drains and finds out. */
	pause_watch_stop(s->up_watch);
	s->up_watch = NULL;
}

void
upstream_h1_pause(struct session *s)
{
	if (s->paused)
		return;
	upstream_reading(s->up, 0);
	s->paused = 1;
	if (s->up->fd >= 0)
		s->up_watch = pause_watch_start(s->w->base, s->up->fd,
		    upstream_watch_cb, s);
}

void
upstream_h1_resume(struct session *s)
{
	if (!s->paused)
		return;
	s->paused = 0;
	if (s->up_watch != NULL) {
		pause_watch_stop(s->up_watch);
		s->up_watch = NULL;
	}
	if (s->up != NULL) {
		upstream_reading(s->up, 1);
		/* Bytes read before the pause are parsed now. */
		if (evbuffer_get_length(bufferevent_get_input(s->up->bev)) > 0)
			upstream_http_read(s);
	}
}
