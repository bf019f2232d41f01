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

struct evbuffer;
struct jsonr;
struct upstream_conn;
struct upstream_dns;

/* How the response body is framed toward the client. */
enum session_framing {
	FRAMING_NONE,		/* no body (HEAD, 204, 304) */
	FRAMING_LENGTH,		/* Content-Length, passed through */
	FRAMING_CHUNKED,	/* re-chunked from chunked or close-delimited */
	FRAMING_CLOSE,		/* HTTP/1.0 client: body ends with the close */
};

#define SESSION_TRIES_MAX	8
#define SESSION_CHUNK_LINE_MAX	20	/* 16 hex digits, CRLF, spare */

enum session_drain_end {
	SESSION_DRAIN_NONE,
	SESSION_DRAIN_COMPLETE,
	SESSION_DRAIN_MAX_MS,
	SESSION_DRAIN_MAX_BYTES,
	SESSION_DRAIN_UPSTREAM_CLOSED,
	SESSION_DRAIN_CANCELED,
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

struct session {
	TAILQ_ENTRY(session)	 entry;		/* worker live or dead list */
	struct worker		*w;
	struct runtime		*rt;		/* config the request started on */
	struct client		*client;	/* NULL once the client is gone */
	char			 client_addr[64];
	int			 closed;	/* session_close() ran */
	enum cancel_phase	 phase;

	/* The request, as parsed. */
	uint8_t			 method;	/* llhttp_method_t */
	uint8_t			 http_minor;
	uint8_t			 keep_alive;	/* client wants the conn kept */
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

	/* Where it goes. */
	const struct conf_route	*route;
	struct conf_upstream	*up_conf;
	struct upstream_dns	*dns;		/* in-flight lookup */
	struct upstream_conn	*up;		/* the upstream connection */
	int			 retried;	/* a reused conn failed once */

	/* The response. */
	llhttp_t		 resp_parser;
	struct header_list	 resp_headers;
	int			 status;	/* sent to the client, 0 = none */
	uint8_t			 resp_head_sent;
	uint8_t			 resp_done;
	uint8_t			 is_sse;
	uint8_t			 sse_nl;	/* SSE scan: newlines in a row */
	uint8_t			 upstream_keepalive;
	enum session_framing	 framing;
	struct evbuffer		*scratch;	/* body bytes of one read */
	uint8_t			 paused;	/* upstream reading paused */
	struct pause_watch	*up_watch;

	/* Timers: one event, armed for the nearest deadline. */
	struct event		*timer;
	uint64_t		 t_start_us;	/* first byte of the request */
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
	uint8_t			 draining;	/* client gone, reading on */
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
	uint8_t			 awaiting_note;	/* closed; record waits */
	uint8_t			 is_note;	/* this request is a note */
	uint8_t			 peer_sse;	/* SSE scan state for peers */
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
/* Response parsing results, in order. */
int		 session_on_response_head(struct session *s);
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

/* Re-arms the session timer for the nearest deadline. */
void		 session_timer_update(struct session *s);

/* Across hops (session_peer.c). */
void		 session_peer_request(struct session *s);
int		 session_peer_loop(struct session *s);
int		 session_peer_defer(struct session *s, const struct session_end *e);
void		 session_peer_apply_note(struct session *s,
		    const struct cancel_note *n, int authenticated,
		    const char *sender_ip);
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
