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
struct header_list;
struct session;
struct cancel_record;

/* A field the proxy adds to a response head. */
struct downstream_field {
	const char	*name;
	const char	*value;
};

#define DOWNSTREAM_EXTRA_MAX	16

/* A response head as the session hands it to the client's protocol. */
struct downstream_head {
	int			 status;
	/* The upstream's fields, passed on but for hop-by-hop ones and
	 * Content-Length; NULL for an answer the proxy made. */
	const struct header_list *fields;
	struct downstream_field	 extra[DOWNSTREAM_EXTRA_MAX];
	size_t			 nextra;
	int64_t			 content_length; /* -1: not known, streamed */
	const char		*drop_prefix;	/* fields passed on that start
						 * with it are dropped */
	uint8_t			 via;		/* add this hop to Via */
	uint8_t			 trailers_only;	/* the head ends the response
						 * (gRPC's Trailers-Only) */
};

/*
 * What a session asks of the protocol its client speaks, chosen once per
 * connection. The session says what to send; the protocol frames it. Every
 * operation is called with s->client set.
 */
struct downstream_proto {
	const char	*name;		/* "http/1.1": the records' protocol */
	/* Sends the response head; the body follows with send_body. */
	void		(*send_head)(struct session *s,
			    const struct downstream_head *h);
	/* Room to keep in front of a body batch, for framing it in place. */
	size_t		(*body_room)(struct session *s);
	/* Moves every byte of buf to the client, framed. */
	void		(*send_body)(struct session *s, struct evbuffer *buf);
	/* Ends the response; trailers may be NULL. */
	void		(*end)(struct session *s,
			    const struct header_list *trailers);
	/* Whether body bytes the upstream did not announce can still
	 * follow (the SSE error event of a cancel mid-stream). */
	int		(*can_extend)(struct session *s);
	/* Ends the stream abruptly: the client sees it truncated. */
	void		(*reset)(struct session *s);
	/* Bytes queued toward the client for this stream. */
	size_t		(*queued)(struct session *s);
	/* The session is over; the connection serves on if the exchange
	 * ended cleanly. */
	void		(*detach)(struct session *s);
};

extern const struct downstream_proto downstream_h1;
extern const struct downstream_proto downstream_h2;

struct downstream_h2;

/* Whether field i of h->fields is one h->drop_prefix drops. */
int		 downstream_head_drops(const struct downstream_head *h,
		    size_t i);
/* Adds a field to h (bounded by DOWNSTREAM_EXTRA_MAX). */
void		 downstream_head_add(struct downstream_head *h,
		    const char *name, const char *value);

/* How an HTTP/1.1 response body is framed toward the client. */
enum downstream_framing {
	FRAMING_NONE,		/* no body (HEAD, 204, 304) */
	FRAMING_LENGTH,		/* Content-Length, passed through */
	FRAMING_CHUNKED,	/* re-chunked from chunked or close-delimited */
	FRAMING_CLOSE,		/* HTTP/1.0 client: body ends with the close */
};

/* One client connection: one session at a time over HTTP/1.1 (session),
 * one per stream over HTTP/2 (h2). */
struct client {
	TAILQ_ENTRY(client)	 entry;		/* worker live or dead list */
	struct worker		*w;
	uint64_t		 id;		/* unique on its worker */
	int			 listen_idx;	/* rt->conf->listen[] it came in on */
	uint8_t			 sniffed;	/* the protocol is chosen */
	struct downstream_h2	*h2;		/* HTTP/2 state, or NULL */
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
	const struct downstream_proto *proto;
	llhttp_t		 parser;
	struct session		*session;	/* current request or NULL */
	/* HTTP/1.1 state of the exchange in progress. */
	uint8_t			 http_minor;	/* of the request */
	uint8_t			 keep_alive;	/* the client wants it kept */
	uint8_t			 resp_ended;	/* the response went out whole */
	enum downstream_framing	 framing;
	struct event		*timer;		/* first byte / keep-alive wait */
	uint64_t		 accepted_us;	/* the first request's deadline
						 * runs from here */
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
/* The proxy's own answers: a whole response, head and body. */
void		 downstream_answer(struct session *s,
		    const struct downstream_head *h, const char *body,
		    size_t len);
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
/* Parses what is buffered (after a session finished or on new input). */
void		 downstream_process_input(struct client *c);
/* Shutdown or reload: idle connections close now, HTTP/2 ones get a
 * GOAWAY and close once their streams are over. */
void		 downstream_drain(struct client *c);
/* Whether bytes for the client still wait to be written or framed. */
int		 downstream_pending(struct client *c);
/* ALPN for a TLS listener that speaks protocols (CONF_PROTO_* bits). */
void		 downstream_tls_alpn(SSL_CTX *ctx, const uint8_t *protocols);

#define DOWNSTREAM_OUT_HIGH	(64 * 1024)	/* pause the upstream above */

#endif
