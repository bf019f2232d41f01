/* downstream: the client side of sessions — accept, TLS, HTTP/1.1 request
 * parsing with llhttp, and writing responses, errors and SSE back. */
#ifndef CANCELPROXY_DOWNSTREAM_H
#define CANCELPROXY_DOWNSTREAM_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <llhttp.h>

#include "proxy/proxy.h"
#include "proxy/readin.h"

struct bufferevent;
struct evbuffer;
struct session;
struct cancel_record;

/* One client connection; it carries one session at a time (HTTP/1.1). */
struct client {
	TAILQ_ENTRY(client)	 entry;		/* worker live or dead list */
	struct worker		*w;
	struct runtime		*rt;		/* config at accept time */
	struct bufferevent	*bev;
	struct writeout		 out;		/* plain sockets: our writes */
	struct readin		 in;		/* plain sockets: our reads */
	int			 fd;
	uint8_t			 tls;
	uint8_t			 closed;	/* downstream_close() ran */
	uint8_t			 close_after;	/* close once output drains */
	uint8_t			 reading_paused;/* input over its bound */
	uint8_t			 parse_paused;	/* a session holds the parser */
	uint8_t			 in_request;	/* bytes of a request seen */
	uint8_t			 last_cr;	/* head scan: last byte was CR */
	uint8_t			 seen_line;	/* head scan: past the first line */
	uint8_t			 head_scanned;	/* head scan: the head has ended */
	uint32_t		 line_len;	/* head scan: bytes in this line */
	char			 addr[64];	/* peer "ip:port" */
	char			 ip[48];	/* peer address alone, v6 bare */
	uint8_t			 forwarded;	/* enum conf_forwarded */
	llhttp_t		 parser;
	struct session		*session;	/* current request or NULL */
	struct event		*timer;		/* request deadline / keep-alive */
	struct pause_watch	*watch;		/* while reading is paused */
	uint64_t		 requests;	/* served on this connection */
	int			 refuse_status;	/* set by a parser callback */
	const char		*refuse_code;
	const char		*refuse_msg;
};

/* Accepts fd from listener listen_idx of w's runtime; closes fd on error. */
struct client	*downstream_accept(struct worker *w, int fd,
		    const struct sockaddr *sa, int listen_idx);
/* Closes the connection at once (idempotent); a live session is told the
 * client went away with via. */
void		 downstream_close(struct client *c, int via);
void		 downstream_free(struct client *c);
struct evbuffer	*downstream_output(struct client *c);
/* The session finished its exchange; keep_alive says whether the
 * connection may carry the next request. */
void		 downstream_session_done(struct client *c, int keep_alive);
/* Writes a complete error response with a JSON body
 * {"error":{"message","type","code"}} and optional Proxy-Status. */
void		 downstream_write_error(struct client *c, struct session *s,
		    int status, const char *code, const char *message,
		    const char *proxy_status);
/* Writes a 502/504 built from a cancel record (Proxy-Status, JSON body). */
void		 downstream_write_cancel_error(struct client *c,
		    struct session *s, const struct cancel_record *r,
		    const char *proxy_status_in);
/* Mid-stream: an SSE "event: error" with the cancel, then the end. */
void		 downstream_write_sse_error(struct client *c,
		    struct session *s, const struct cancel_record *r);
/* Whether the client's output is above the high watermark. */
int		 downstream_output_full(struct client *c);
/* Parses what is buffered (after a session finished or on new input). */
void		 downstream_process_input(struct client *c);
const char	*downstream_status_reason(int status);
/* A request's first byte arrived: its header_timeout_ms deadline starts
 * (on a connection's first request it started at accept). */
void		 downstream_request_begin(struct client *c);
void		 downstream_parser_init(struct client *c);

#define DOWNSTREAM_OUT_HIGH	(64 * 1024)	/* pause the upstream above */
#define DOWNSTREAM_OUT_LOW	(16 * 1024)	/* resume it below */
#define DOWNSTREAM_PIPELINE_MAX	(64 * 1024)	/* early bytes kept per conn */

#endif
