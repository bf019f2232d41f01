/* upstream_priv: what the files of upstream/ share and nobody else calls. */
#ifndef CANCELPROXY_UPSTREAM_PRIV_H
#define CANCELPROXY_UPSTREAM_PRIV_H

#include "upstream/upstream.h"

struct upstream_pool;

/* Closes a connection's socket now (FIN to the peer) and frees it. */
void	 upstream_conn_close(struct upstream_conn *u);
/* An idle connection to up's destination, taken out of the pool. */
struct upstream_conn *upstream_pool_get(struct upstream_pool *p,
	    const struct conf_upstream *up);
/* Gives the session's connection to the pool, or closes it. */
void	 upstream_pool_release(struct session *s);

/* HTTP/1.1 (upstream_http.c): parse what arrived; the connection closed. */
void	 upstream_http_read(struct session *s);
void	 upstream_http_eof(struct session *s, int rst);
/* HTTP/1.1 operations kept in upstream.c (reading, the pause watch). */
int	 upstream_h1_start(struct session *s);
void	 upstream_h1_pause(struct session *s);
void	 upstream_h1_resume(struct session *s);
void	 upstream_h1_cancel(struct session *s);

#endif
