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

#endif
