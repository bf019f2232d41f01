/* cancel_chain: who cancelled, why, in which phase, and the path the cancel
 * travelled; formats the cancel record, the human message, and the error
 * that tells the next hop toward the client (JSON body or SSE event). */
#ifndef CANCELPROXY_CANCEL_CHAIN_H
#define CANCELPROXY_CANCEL_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/jsonw.h"

#define CANCEL_PATH_MAX		16	/* hops kept; more are refused as loops */
#define CANCEL_HOP_MAX		96	/* bytes of one hop name */

/* Where a session is when it ends: each phase has its own cancel tests. */
enum cancel_phase {
	PHASE_REQUEST,			/* client request still arriving */
	PHASE_CONNECTING,		/* resolving, connecting, TLS handshake */
	PHASE_WAITING_FIRST_BYTE,	/* request sent, no body byte yet */
	PHASE_STREAMING,		/* body bytes are flowing */
};

/* What started a cancel (DESIGN.md §4 origin kinds). */
enum cancel_kind {
	CANCEL_KIND_CLIENT_DISCONNECT,
	CANCEL_KIND_CLIENT_CANCEL,
	CANCEL_KIND_ADMIN,
	CANCEL_KIND_FIRST_BYTE_TIMEOUT,
	CANCEL_KIND_IDLE_TIMEOUT,
	CANCEL_KIND_TOTAL_TIMEOUT,
	CANCEL_KIND_UPSTREAM_ERROR,
	CANCEL_KIND_UPSTREAM_CLOSED,
	CANCEL_KIND_SHUTDOWN,
	CANCEL_KIND_UNKNOWN,
};

/* How this hop noticed. */
enum cancel_via {
	CANCEL_VIA_EOF,
	CANCEL_VIA_RST,
	CANCEL_VIA_WRITE_ERROR,
	CANCEL_VIA_TIMER,
	CANCEL_VIA_ADMIN,
	CANCEL_VIA_NOTE,
	CANCEL_VIA_SIGNAL,
	CANCEL_VIA_UPSTREAM_STATUS,
	CANCEL_VIA_SSE_ERROR,
	CANCEL_VIA_RST_STREAM,		/* HTTP/2: the client reset the stream */
	CANCEL_VIA_GOAWAY,		/* HTTP/2: the client sent GOAWAY */
};

enum cancel_direction {
	CANCEL_DIR_UPSTREAM,		/* toward the model */
	CANCEL_DIR_DOWNSTREAM,		/* toward the client */
};

const char	*cancel_phase_name(enum cancel_phase p);
const char	*cancel_kind_name(enum cancel_kind k);
const char	*cancel_via_name(enum cancel_via v);
const char	*cancel_direction_name(enum cancel_direction d);
int		 cancel_kind_parse(const char *s, enum cancel_kind *out);

/* The ordered list of hops a cancel passed, origin first. */
struct cancel_path {
	char	 hops[CANCEL_PATH_MAX][CANCEL_HOP_MAX];
	int	 n;
};

void		 cancel_path_init(struct cancel_path *p);
/* Appends a hop; -1 when the path is full. */
int		 cancel_path_add(struct cancel_path *p, const char *hop);
/* "client -> edge -> core" */
void		 cancel_path_format(const struct cancel_path *p, char *buf,
		    size_t len);

/* Everything one cancel record says (DESIGN.md §4). */
struct cancel_record {
	const char		*request_id;
	const char		*trace_id;
	enum cancel_kind	 kind;
	struct cancel_path	 path;		/* path[0] is the origin */
	enum cancel_direction	 direction;
	enum cancel_phase	 phase;
	enum cancel_via		 via;
	uint64_t		 elapsed_ms;
	int64_t			 detect_to_close_us;	/* -1: unknown */
	uint64_t		 sse_events;
	uint64_t		 bytes_out;
	const char		*upstream;	/* upstream name, may be NULL */
	const char		*detail;	/* extra words for the message */
	/* More members from the caller (usage, client key, drain). */
	void			(*extra)(struct jsonw *w, const void *arg);
	const void		*extra_arg;
};

/* The one human line: "[canceled path: client -> edge] client ..." */
void		 cancel_chain_message(const struct cancel_record *r,
		    char *buf, size_t len);
/* Writes the record's members into an open JSON object. */
void		 cancel_chain_members(struct jsonw *w,
		    const struct cancel_record *r);
/* Writes the "cancel" log record. */
void		 cancel_chain_log(const struct cancel_record *r);
/* Appends the whole "cancel" record (with its newline) to w. */
void		 cancel_chain_record(struct jsonw *w,
		    const struct cancel_record *r);

/* The RFC 9209 error type for a Proxy-Status header, and the HTTP status
 * (502 or 504) for an answer before response headers. */
const char	*cancel_chain_proxy_error(const struct cancel_record *r);
int		 cancel_chain_http_status(const struct cancel_record *r);

/* JSON error object a client SDK understands ({"error":{...}}), carrying
 * the origin and path; used as an HTTP body and as SSE event data. */
void		 cancel_chain_error_json(struct jsonw *w,
		    const struct cancel_record *r);

/*
 * Notes between hops (DESIGN.md §5). A hop whose upstream is another
 * cancelproxy closes the stream and then posts a note saying why, so the
 * peer can record the true origin and path. Signed with peers.secret as
 * HMAC-SHA256 over "<unix time>.<body>"; never the secret itself.
 */
#define CANCEL_NOTE_PATH	"/.cancelproxy/note"
#define CANCEL_NOTE_SIG_HEADER	"X-Cancelproxy-Signature"
#define CANCEL_PEER_HEADER	"X-Cancelproxy-Peer"
#define CANCEL_NOTE_MAX_AGE_S	60	/* a signature older than this is stale */
#define CANCEL_NOTE_MAX_BYTES	16384

#define CANCEL_REQUEST_ID_MAX	72	/* with its NUL, as a session keeps it */

struct cancel_note {
	char			 request_id[CANCEL_REQUEST_ID_MAX];
	char			 trace_id[33];
	enum cancel_kind	 kind;
	enum cancel_phase	 phase;
	struct cancel_path	 path;		/* origin first, sender last */
	char			 from[CANCEL_HOP_MAX];	/* the sending hop */
};

/* Writes the note body for record r (its path ends with this hop). */
void		 cancel_note_json(struct jsonw *w, const struct cancel_record *r);
/* Parses a note body; -1 with a reason in err. */
int		 cancel_note_parse(const char *body, size_t len,
		    struct cancel_note *n, char *err, size_t errlen);
/* "t=<unix>, sha256=<hex>" for body at time t. */
void		 cancel_note_sign(const char *secret, long long t,
		    const char *body, size_t len, char *out, size_t outlen);
/* Checks a signature header against body; -1 with a reason in err. */
int		 cancel_note_verify(const char *secret, const char *header,
		    size_t hlen, const char *body, size_t len, long long now,
		    char *err, size_t errlen);
/* Parses the cancel carried by a peer's error JSON ({"error":{"cancel":
 * {...}}}) into n; -1 when it is not one. */
int		 cancel_error_parse(const char *json, size_t len,
		    struct cancel_note *n);

#endif
