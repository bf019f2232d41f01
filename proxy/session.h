/* session: one client request paired with one upstream stream, both on the
 * same worker; session_close() is the one teardown and the only writer of
 * the cancel record. */
#ifndef CANCELPROXY_SESSION_H
#define CANCELPROXY_SESSION_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <llhttp.h>

#include "cancel_chain/cancel_chain.h"
#include "proxy/headers.h"
#include "proxy/proxy.h"
#include "upstream/upstream_usage.h"

struct downstream_head;
struct evbuffer;
struct jsonr;
struct upstream_conn;
struct upstream_dns;
struct upstream_stream;

#define SESSION_TRIES_MAX	8

enum session_drain_end {
	SESSION_DRAIN_NONE,
	SESSION_DRAIN_COMPLETE,
	SESSION_DRAIN_MAX_MS,
	SESSION_DRAIN_MAX_BYTES,
	SESSION_DRAIN_UPSTREAM_CLOSED,
	SESSION_DRAIN_CANCELED,
};

/* What the CORS policy made of a request (the "cors" member of its
 * request record). */
enum session_cors_result {
	CORS_NONE,			/* no policy, or no Origin field */
	CORS_ALLOWED,			/* an allowed origin's request */
	CORS_PREFLIGHT,			/* a preflight answered with 204 */
	CORS_ORIGIN_NOT_ALLOWED,	/* refused with 403 */
	CORS_METHOD_NOT_ALLOWED,	/* preflight refused with 403 */
	CORS_HEADER_NOT_ALLOWED,	/* preflight refused with 403 */
};

/* Why a session ended; direction tells which side is told. */
struct session_end {
	int			 cancel;	/* 0: finished or refused */
	int			 error;		/* refused by this hop */
	enum cancel_kind	 kind;
	enum cancel_via		 via;
	enum cancel_direction	 direction;
	const char		*detail;	/* extra words, may be NULL */
	const char		*origin_hop;	/* NULL: derived from kind */
	const struct cancel_path *path_in;	/* from a peer; we append */
	const char		*proxy_status_in; /* a peer's Proxy-Status */
};

/*
 * A session's lifecycle. It only moves forward, through
 * session_state_set(); session_finish() is the one way into DONE.
 *
 *   LIVE --(client left a drain route)--> DRAINING --+
 *     |                                              |
 *     +--(session_close)--> CLOSING <----------------+
 *                              |--(a peer's note is due)--> AWAITING_NOTE
 *                              |                                  |
 *                              +--(session_finish) --> DONE <-----+
 */
enum session_state {
	SESSION_LIVE,		/* the request arrives or is being answered */
	SESSION_DRAINING,	/* the client left a drain route: reading on,
				 * bounded, only to learn the usage */
	SESSION_CLOSING,	/* the teardown runs: the other side is being
				 * closed, the records are not written yet */
	SESSION_AWAITING_NOTE,	/* both sides closed; the cancel record waits
				 * (note_wait_ms) for the peer's note */
	SESSION_DONE,		/* records written; freed at the end of the
				 * loop turn */
};

/* Where the scan of a peer's SSE body stands (session_peer_body): our own
 * "event: error" from a peer hop is held whole, everything else passes. */
enum peer_sse_state {
	PEER_SSE_LINE_START,	/* at the start of an event's first line */
	PEER_SSE_FIRST_LINE,	/* inside the first line, held until its end */
	PEER_SSE_PASS,		/* an ordinary event: passed on to its end */
	PEER_SSE_ERROR,		/* an "event: error": held until it is whole */
};
const char	*peer_sse_state_name(enum peer_sse_state st);

struct session {
	TAILQ_ENTRY(session)	 entry;		/* worker live or dead list */
	struct worker		*w;
	struct runtime		*rt;		/* config the request started on */
	struct client		*client;	/* NULL once the client is gone */
	char			 client_addr[64];
	const char		*protocol;	/* the client's: "h2", "http/1.1" */
	uint64_t		 conn_id;	/* the client connection's id */
	int32_t			 stream_id;	/* HTTP/2 stream; 0 for HTTP/1.1 */
	enum session_state	 state;		/* session_state_set() only */
	enum cancel_phase	 phase;

	/* The request, as parsed. */
	uint8_t			 method;	/* llhttp_method_t */
	char			 client_version[4]; /* "1.1", "1.0": for Via */
	uint8_t			 close_connection; /* end the client's
						    * connection after this */
	uint8_t			 request_done;	/* whole request received */
	uint8_t			 headers_done;	/* its head is complete */
	uint8_t			 expect_continue;
	char			*target;	/* request-target, NUL-terminated */
	size_t			 target_len;
	struct header_list	 req_headers;
	struct evbuffer		*body;
	char			*model;		/* "model" of a JSON body */
	char			 request_id[72];
	char			 trace_id[33];
	char			 span_id[17];	/* our span: parent id upstream */
	char			 trace_flags[3];
	uint64_t		 header_bytes;
	uint32_t		 trailers_dropped; /* trailer fields not forwarded */
	uint8_t			 forwarded;	/* enum conf_forwarded, listener's */
	uint8_t			 client_tls;	/* the client came over TLS */
	char			 client_ip[48];	/* for X-Forwarded-For, Forwarded */

	/* Browsers (session_cors.c): the policy in force and the Origin. */
	const struct conf_cors	*cors;		/* NULL: no CORS answers */
	char			*origin;	/* Origin field (a copy), or NULL:
						 * req_headers go once sent */
	size_t			 origin_len;
	uint8_t			 cors_ok;	/* origin allowed by cors */
	enum session_cors_result cors_result;

	/* gRPC (session_grpc.c). */
	uint8_t			 grpc;		/* application/grpc */
	int			 grpc_status;	/* what the client got, -1: none */
	char			*grpc_method;	/* "/package.Service/Method" */
	int64_t			 grpc_deadline_us; /* grpc-timeout, -1: none */
	uint8_t			 grpc_held;	/* a peer's Trailers-Only head,
						 * held to read its cancel */

	/* Where it goes. */
	const struct conf_route	*route;
	struct conf_upstream	*up_conf;
	struct upstream_dns	*dns;		/* in-flight lookup */
	struct upstream_conn	*up;		/* the upstream connection */
	struct upstream_stream	*up_stream;	/* HTTP/2: its stream, queued
						 * or on up */
	const char		*up_protocol;	/* what up spoke: "h2" */
	int			 retried;	/* a reused conn failed once */

	/* The response. */
	struct header_list	 resp_headers;
	struct header_list	 resp_trailers;	/* the upstream's, if any */
	uint32_t		 up_reset_code;	/* an upstream RST_STREAM's
						 * HTTP/2 code + 1, 0: none */
	int			 resp_status;	/* the upstream's */
	int64_t			 resp_length;	/* its body's, -1: not known */
	int			 status;	/* sent to the client, 0 = none */
	uint8_t			 resp_head_sent;
	uint8_t			 resp_done;
	uint8_t			 is_sse;
	uint8_t			 sse_nl;	/* SSE scan: newlines in a row */
	struct evbuffer		*scratch;	/* body bytes of one read */
	uint8_t			 paused;	/* upstream reading paused */
	struct pause_watch	*up_watch;

	/* Timers: one event, armed for the nearest deadline. */
	struct event		*timer;
	uint64_t		 t_start_us;	/* first byte of the request */
	int64_t			 t_request_by_us; /* header_timeout_ms deadline,
						   * -1: none */
	uint64_t		 t_connect_us;	/* upstream connect started */
	uint64_t		 t_sent_us;	/* request fully written upstream */
	uint64_t		 t_first_byte_us;
	uint64_t		 t_last_byte_us;

	/* Counters for the records. */
	uint64_t		 bytes_in;	/* request bytes from the client */
	uint64_t		 bytes_out;	/* body bytes to the client */
	uint64_t		 sse_events;

	/* What the stream used (DESIGN.md §4 usage). */
	struct usage		 usage;
	struct sse_scan		*sse;		/* lazily, for SSE bodies */
	struct evbuffer		*ev_hold;	/* strip mode: the event so far */
	struct evbuffer		*json_copy;	/* JSON answers, for usage */
	uint8_t			 strip_usage;	/* hide the injected usage chunk */

	/* Drain, fallback, client keys (session_llm.c). */
	uint8_t			 drain_stop;	/* past drain.max_bytes */
	uint8_t			 drain_end;	/* SESSION_DRAIN_* once over */
	uint8_t			 retry_after;	/* 429: add Retry-After */
	enum cancel_phase	 drain_phase;	/* phase when the client left */
	uint64_t		 drain_bytes;
	int			 fallback_status; /* a 429/5xx to fall back on */
	size_t			 try_idx;	/* next route->fallback[] */
	struct session_try {
		const char	*upstream;
		char		 outcome[96];
	}			*tries;		/* SESSION_TRIES_MAX, lazily */
	size_t			 ntries;
	const char		*client_key;	/* name, from the config */
	int			*key_counter;	/* max_streams slot held */

	/* Who may cancel it by id (cancel API): SHA-256 of the client's
	 * Authorization or x-api-key value. */
	uint8_t			 cred_hash[32];
	uint8_t			 has_cred;
	uint64_t		 serial;	/* unique on its worker */

	/* Across hops (DESIGN.md §5). */
	struct session		*reg_next;	/* worker registry bucket chain */
	uint8_t			 registered;
	uint8_t			 from_peer;	/* the client is a cancelproxy */
	uint8_t			 is_note;	/* this request is a note */
	enum peer_sse_state	 peer_sse;	/* the peer's SSE, line by line */
	uint8_t			 peer_cancel;	/* a peer's error was seen */
	uint8_t			 peer_hold_head;/* a peer's error head held */
	uint8_t			 peer_nl;	/* newlines in a row (peer SSE) */
	char			 prev_hop[CANCEL_HOP_MAX];
	union proxy_addr	 up_addr;	/* where the stream went */
	socklen_t		 up_addrlen;
	struct evbuffer		*peer_hold;	/* held SSE event or error body */
	struct cancel_note	*peer_note;	/* what a peer said, once known */
	struct session_end	 end;		/* kept while awaiting a note */
	uint64_t		 t_detect_us;
	int64_t			 detect_to_close_us;
};

struct session	*session_new(struct worker *w, struct client *c);
const char	*session_state_name(enum session_state st);
/* Moves s forward to st; the only writer of s->state. */
void		 session_state_set(struct session *s, enum session_state st);

/* Whether the teardown has begun: nothing may start on s any more. */
static inline int
session_closed(const struct session *s)
{
	return s->state >= SESSION_CLOSING;
}
/* Called by downstream when the whole request has arrived. */
void		 session_request_complete(struct session *s);
/* The one teardown; safe to call twice. */
void		 session_close(struct session *s, const struct session_end *e);
/* Answers the client with an error before any response byte, then ends. */
void		 session_refuse(struct session *s, int status,
		    const char *code, const char *message);
/* Frees a closed session (end of loop turn). */
void		 session_free(struct session *s);

/* Called by upstream as the exchange progresses. */
void		 session_upstream_connected(struct session *s);
void		 session_upstream_failed(struct session *s, enum cancel_kind k,
		    enum cancel_via via, const char *detail);
/* The upstream closed (rst: by reset) before the response was complete. */
void		 session_upstream_closed(struct session *s, int rst);
/* Response parsing results, in order: the head (status, its fields in
 * s->resp_headers, the body length or -1), body pieces, the end. */
int		 session_on_response_head(struct session *s, int status,
		    int64_t length);
/* -1 stops the parser: a peer's cancel arrived in the body. */
int		 session_on_body(struct session *s, const char *at, size_t n);
void		 session_relay(struct session *s, const char *at, size_t n);
void		 session_sse_scan(struct session *s, const char *at, size_t n);
void		 session_identity(struct session *s);

/* The longest model name read from a body; a longer one is refused. */
#define SESSION_MODEL_MAX	256

/* The members of a request body the proxy reads. */
enum { BODY_MODEL, BODY_STREAM, BODY_STREAM_OPTIONS, BODY_NKEYS };

/* Why a body was refused: the status, error code and message. */
struct body_refusal {
	int		 status;
	const char	*code;
	char		 msg[96];
};

/*
 * Reads a request body the way the model server will, or refuses it. Any
 * content type ct (may be NULL) is read: many servers decode the body as
 * JSON whatever it says, so a route's "models" must not be bypassed by
 * text/plain. 1 with m[BODY_*] set (type JSONR_NONE when absent) and
 * *model malloc'ed (or NULL when there is none); 0 for a body that is not
 * JSON (no model in it for anyone); -1 with why set when the body must be
 * refused: it claims or looks like JSON but is none, nests too deep, has
 * bytes after the value, repeats a member the proxy reads, or its model
 * is no clean string.
 */
int		 session_body_read(const char *text, size_t len,
		    const char *ct, struct jsonr *m, char **model,
		    struct body_refusal *why);
/* For stream_usage "inject": a body read by session_body_read (m its
 * members) with stream true and no include_usage true is written to out
 * with stream_options.include_usage set, every other byte as it came; 1
 * when out holds the new body, 0 when none is needed, -1 on failure. */
int		 session_usage_inject(const char *text, size_t len,
		    const struct jsonr *m, struct evbuffer *out);
void		 session_cancel_record(struct session *s,
		    const struct session_end *e, struct cancel_record *r,
		    uint64_t now);
/* Moves the body bytes of one read to the client, with framing. */
void		 session_flush_body(struct session *s);
void		 session_on_response_complete(struct session *s);

/* Called by downstream when the client's output buffer drained. */
void		 session_client_drained(struct session *s);
/* Called by downstream when the client went away. */
void		 session_client_gone(struct session *s, enum cancel_via via);

/* The request (head and body) must have arrived by from plus
 * limits.header_timeout_ms, or it is answered 408. */
void		 session_request_deadline(struct session *s, uint64_t from);
/* Re-arms the session timer for the nearest deadline. */
void		 session_timer_update(struct session *s);

/* Across hops (session_peer.c). */
void		 session_peer_request(struct session *s);
int		 session_peer_loop(struct session *s);
int		 session_peer_defer(struct session *s, const struct session_end *e);
/* How a note came: the protocol, and over HTTP/2 the connection. */
struct note_arrival {
	const char	*protocol;	/* "h2", "http/1.1" */
	uint64_t	 conn;		/* 0: not told */
};
void		 session_peer_apply_note(struct session *s,
		    const struct cancel_note *n, int authenticated,
		    const char *sender_ip, const struct note_arrival *how);
void		 session_peer_note_timeout(struct session *s);
void		 session_peer_forward(struct session *s,
		    const struct cancel_record *r);
int		 session_peer_head(struct session *s);
int		 session_peer_body(struct session *s, const char *at, size_t n);
int		 session_peer_complete(struct session *s);
void		 session_note_receive(struct session *s);
/* Turns a peer's SSE error (already parsed) into our cancel. */
void		 session_peer_cancel(struct session *s);
/* Finishes a closed session: records, client, reaper. */
void		 session_finish(struct session *s, struct cancel_record *r);

/* LLM traffic (session_llm.c). */
int		 session_drain_start(struct session *s,
		    const struct session_end *e);
void		 session_drain_finish(struct session *s, int why);
int		 session_drain_reason(const struct session_end *e);
int		 session_drain_bytes(struct session *s, size_t n);
int		 session_fallback(struct session *s, const char *why);
int		 session_client_key(struct session *s);
void		 session_client_key_release(struct session *s);
void		 session_extra_members(struct jsonw *w, const void *arg);
void		 session_cancel_extra(struct jsonw *w, const void *arg);

/* Browsers (session_cors.c). */
const char	*session_cors_result_name(enum session_cors_result r);
/* Finds the policy by path and answers a preflight; -1 when answered. */
int		 session_cors_request(struct session *s, size_t pathlen);
/* Takes the chosen route's policy; -1 when the origin was refused. */
int		 session_cors_route(struct session *s,
		    const struct conf_cors *cors);
/* Refuses an origin the policy in force does not list; -1 if refused. */
int		 session_cors_check(struct session *s);
/* Adds the CORS fields of an answer to s to its head, and drops the
 * upstream's own Access-Control-* fields. */
void		 session_cors_head(const struct session *s,
		    struct downstream_head *h);

/* gRPC (session_grpc.c). */
/* A gRPC request: method, deadline, a malformed grpc-timeout refused;
 * -1 when the call was answered. */
int		 session_grpc_request(struct session *s);
/* Caps the call's deadline by its route's grpc_timeout_max_ms. */
void		 session_grpc_route(struct session *s);
/* What is left of the call's deadline, as a grpc-timeout value in buf
 * (GRPC_TIMEOUT_MAX bytes); 0 when the call has none. */
size_t		 session_grpc_timeout_out(const struct session *s, char *buf);
/* Ends the call with a gRPC status and a plain-text message. */
void		 session_grpc_end(struct session *s, int status,
		    const char *message);
/* The call was refused or cancelled here: its gRPC status and message. */
void		 session_grpc_refuse(struct session *s, int http_status,
		    const char *message);
void		 session_grpc_cancel(struct session *s,
		    const struct cancel_record *r);
/* The upstream's trailers to send on: the gRPC status noted, a peer's
 * cancel path in grpc-message extended with this hop. */
const struct header_list *session_grpc_trailers(struct session *s);
/* A peer's gRPC cancel in its trailers becomes this hop's: 1 when it
 * did, 0 when the answer passes on. */
int		 session_grpc_peer_end(struct session *s);
void		 session_grpc_release_head(struct session *s);
/* A peer's grpc-message with this hop added to its cancel path, encoded
 * into out; 0 when it carries no path. */
size_t		 session_grpc_extend_message(const char *value, size_t len,
		    char *out, size_t cap);

/* The IP part of "ip:port" or "[ip6]:port". */
void		 session_addr_ip(const char *addr, char *out, size_t len);

/* Cancel by request id (cancel_api.c). */
void		 session_cancel_api(struct session *s);
void		 session_credential(struct session *s);
/* Appends s as a JSON object for GET /streams. */
void		 session_describe(struct session *s, struct jsonw *w);

/* Cancels a live session from outside (admin, signal). */
void		 session_cancel(struct session *s, enum cancel_kind kind,
		    enum cancel_via via);

#endif
