/* downstream_priv: what the files of downstream/ share and nobody else
 * calls. */
#ifndef CANCELPROXY_DOWNSTREAM_PRIV_H
#define CANCELPROXY_DOWNSTREAM_PRIV_H

#include "downstream/downstream.h"

struct evbuffer	*downstream_output(struct client *c);
/* The session finished its exchange; keep_alive says whether the
 * connection may carry the next request. */
void		 downstream_session_done(struct client *c, int keep_alive);
const char	*downstream_status_reason(int status);
/* A request's first byte arrived: its header_timeout_ms deadline starts
 * (on a connection's first request it started at accept). */
void		 downstream_request_begin(struct client *c);
void		 downstream_parser_init(struct client *c);
#define DOWNSTREAM_OUT_LOW	(16 * 1024)	/* resume it below */
#define DOWNSTREAM_PIPELINE_MAX	(64 * 1024)	/* early bytes kept per conn */
#define DOWNSTREAM_CHUNK_LINE_MAX 20	/* 16 hex digits, CRLF, spare */
const char	*downstream_framing_name(enum downstream_framing f);

/* HTTP/2 (downstream_h2.c). */
#define DOWNSTREAM_H2_PREFACE	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define DOWNSTREAM_H2_PREFACE_LEN 24
/* Turns c into an HTTP/2 connection (ALPN h2, or the preface seen). */
int		 downstream_h2_start(struct client *c);
/* Feeds what is buffered on c's input to the HTTP/2 session. */
void		 downstream_h2_input(struct client *c);
/* The connection went away: every live stream is told with via. */
void		 downstream_h2_close(struct client *c, int via);
void		 downstream_h2_free(struct client *c);
/* The socket took what was queued: frame more. */
void		 downstream_h2_drained(struct client *c);
void		 downstream_h2_timer(struct client *c);
void		 downstream_h2_drain(struct client *c);
int		 downstream_h2_pending(struct client *c);

#endif
