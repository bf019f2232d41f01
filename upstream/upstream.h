/* upstream: the model side of sessions — resolve (evdns), connect, TLS with
 * SNI and verification, send the request, parse the response, keep-alive
 * pool per worker. */
#ifndef CANCELPROXY_UPSTREAM_H
#define CANCELPROXY_UPSTREAM_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <llhttp.h>
#include <openssl/ssl.h>

#include "conf/conf.h"
#include "proxy/proxy.h"
#include "proxy/readin.h"

struct bufferevent;
struct session;
struct cancel_record;

/*
 * What a session asks of the protocol its upstream connection speaks. The
 * session knows when to send, pause or stop; the protocol knows how. Every
 * operation is called with s->up set. Events come back as session calls
 * with arguments: session_on_response_head(s, status, length),
 * session_on_body(), session_on_response_complete().
 */
struct upstream_proto {
	const char	*name;		/* "http/1.1": the records' protocol */
	/* Finds or opens a connection for s; it calls
	 * session_upstream_connected() or session_upstream_failed(). */
	int		(*start)(struct session *s);
	/* Writes the request (head and body) for this stream. */
	void		(*send_request)(struct session *s);
	/* Stops and restarts reading this stream (client backpressure). */
	void		(*pause)(struct session *s);
	void		(*resume)(struct session *s);
	/* Ends this stream now, before it finished (the model must stop). */
	void		(*cancel)(struct session *s);
	/* The stream finished: the connection may serve another. */
	void		(*release)(struct session *s);
};

extern const struct upstream_proto upstream_h1;
extern const struct upstream_proto upstream_h2;

/* One connection to an upstream; owned by a session or by the pool. */
struct upstream_conn {
	TAILQ_ENTRY(upstream_conn) entry;	/* pool list */
	struct worker		*w;
	const struct upstream_proto *proto;
	struct session		*s;		/* the stream it carries, NULL
						 * in the pool (HTTP/1.1: one) */
	llhttp_t		 parser;	/* HTTP/1.1: the response */
	uint8_t			 keepalive;	/* the response lets it be kept */
	struct bufferevent	*bev;
	struct writeout		 out;		/* plain sockets: our writes */
	struct readin		 in;		/* plain, connected: our reads */
	int			 fd;
	uint8_t			 tls;
	uint8_t			 reused;	/* came from the pool */
	uint8_t			 connected;
	uint64_t		 idle_since_us;
	union proxy_addr	 addr;		/* the peer's address */
	socklen_t		 addrlen;
	char			*key;		/* conf_upstream pool_key, copied */
	uint64_t		 key_hash;	/* its pool_hash */
};

TAILQ_HEAD(upstream_conn_list, upstream_conn);

/* Builds the TLS client context for an https upstream. */
SSL_CTX	*upstream_tls_ctx_new(const struct conf_upstream *up, char *err,
	    size_t errlen);

/* Starts the exchange: a pooled connection, or resolve and connect. */
int	 upstream_start(struct session *s);
/* Stops a lookup or connect in flight and closes the connection now. */
void	 upstream_abort(struct session *s);
/* Gives a finished connection back to the pool (or closes it). */
void	 upstream_release(struct session *s);
/* Stops and restarts reading the response (client backpressure). */
void	 upstream_pause(struct session *s);
void	 upstream_resume(struct session *s);
/* Writes the request head and body to the connection. */
void	 upstream_send_request(struct session *s);

/* Posts a cancel note about r to the peer the session's stream went to;
 * fire and forget, bounded by UPSTREAM_NOTE_TIMEOUT_MS. */
void	 upstream_note_send(struct session *s, const struct cancel_record *r);
/* Frees notes still on their way (worker shutdown). */
void	 upstream_notes_free(struct worker *w);
/* A TLS session for up: SNI, and name or address verification. */
SSL	*upstream_ssl_new(struct runtime *rt, const struct conf_upstream *up);

#define UPSTREAM_NOTE_TIMEOUT_MS	2000

struct upstream_pool *upstream_pool_new(struct worker *w);
void	 upstream_pool_free(struct upstream_pool *p);

#define UPSTREAM_POOL_IDLE_MAX_US	(30ull * 1000000)

/* Reading on or off (pause, resume, the pool), whoever reads. */
#define upstream_reading(u, on)	readin_enable(&(u)->in, (u)->bev, (on))

#endif
