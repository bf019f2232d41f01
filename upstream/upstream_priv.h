/* upstream_priv: what the files of upstream/ share and nobody else calls. */
#ifndef CANCELPROXY_UPSTREAM_PRIV_H
#define CANCELPROXY_UPSTREAM_PRIV_H

#include "upstream/upstream.h"

struct upstream_pool;
struct upstream_h2_set;

struct evdns_getaddrinfo_request;
struct evutil_addrinfo;
typedef void (*upstream_lookup_cb)(int, struct evutil_addrinfo *, void *);

/* up's host as a numeric address in *a (0), or -1 when it is a name. */
int	 upstream_numeric_addr(const struct conf_upstream *up,
	    union proxy_addr *a, socklen_t *len);
/* Starts the evdns lookup of up's host and port for a TCP connect; NULL
 * when it was answered at once (cb already ran). */
struct evdns_getaddrinfo_request *upstream_lookup(struct worker *w,
	    const struct conf_upstream *up, upstream_lookup_cb cb, void *arg);

/* Closes a connection's socket now (FIN to the peer) and frees it. */
void	 upstream_conn_close(struct upstream_conn *u);
/* An idle connection to up's destination, taken out of the pool. */
struct upstream_conn *upstream_pool_get(struct upstream_pool *p,
	    const struct conf_upstream *up);
/* Gives the session's connection to the pool, or closes it. */
void	 upstream_pool_release(struct session *s);

/*
 * An HTTP/2 connection's lifecycle; it only moves forward, through
 * h2_conn_state_set(), and h2_conn_die() is the one way into DEAD.
 *
 *   OPENING --(server SETTINGS)--> READY --(server GOAWAY)--> GOING_AWAY
 *      |                             |                            |
 *      +------------+----------------+----------------------------+
 *                   |  (nghttp2 cannot send) --> BROKEN --+
 *                   v                                     v
 *                  DEAD <---------------------------------+
 */
enum upstream_h2_state {
	H2_OPENING,	/* resolving, connecting, TLS, or waiting for the
			 * server's SETTINGS: streams queue for it */
	H2_READY,	/* takes new streams up to its limit */
	H2_GOING_AWAY,	/* the server's GOAWAY came: streams up to its last
			 * id finish, no new ones come */
	H2_BROKEN,	/* nghttp2 could not write: its tick ends it from
			 * the loop, where no caller holds it */
	H2_DEAD,	/* its sessions were told; freed by whoever holds it */
};
const char	*upstream_h2_state_name(enum upstream_h2_state st);

/* The pool's slot for the worker's HTTP/2 connections (upstream_h2.c). */
struct upstream_h2_set **upstream_pool_h2(struct upstream_pool *p);
/* Frees the HTTP/2 connections and queued streams (worker shutdown). */
void	 upstream_h2_free(struct upstream_h2_set *set);
/* Resets s's HTTP/2 stream (CANCEL), or takes it out of the queue. */
void	 upstream_h2_cancel(struct session *s);
/* Gives a connected TLS connection that chose HTTP/1.1 to s. */
void	 upstream_h1_adopt(struct session *s, struct upstream_conn *u);
/* Whether the client's field i is replaced by set_headers or by us. */
int	 upstream_header_replaced(const struct session *s, size_t i);

/* HTTP/1.1 (upstream_http.c): parse what arrived; the connection closed. */
void	 upstream_http_read(struct session *s);
void	 upstream_http_eof(struct session *s, int rst);
/* HTTP/1.1 operations kept in upstream.c (reading, the pause watch). */
int	 upstream_h1_start(struct session *s);
void	 upstream_h1_pause(struct session *s);
void	 upstream_h1_resume(struct session *s);
void	 upstream_h1_cancel(struct session *s);
/* A cancel note as a stream on an open HTTP/2 connection to the peer;
 * -1 when none is ready. */
int	 upstream_h2_note(struct session *s, const char *body, size_t len,
	    const char *sig);

#endif
