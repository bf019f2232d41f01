/* mock: shared declarations of cancelproxy-mock, the streaming model server
 * (OpenAI chat completions and Responses, Anthropic Messages) that reports
 * when and how its client went away. */
#ifndef CANCELPROXY_MOCK_H
#define CANCELPROXY_MOCK_H

#include <sys/queue.h>
#include <sys/uio.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "llhttp.h"

#define MOCK_MODEL		"mock-1"
#define MOCK_MAX_HEADER_BYTES	65536		/* request line and headers */
#define MOCK_MAX_HEADERS	256
#define MOCK_MAX_BODY_BYTES	(8 * 1024 * 1024)
#define MOCK_MAX_MODEL_LEN	256
#define MOCK_MAX_QUEUED_BYTES	(1024 * 1024)	/* pipelined input held per connection */
#define MOCK_OUTPUT_HIGH	(64 * 1024)	/* stop producing tokens above this */
#define MOCK_MAX_TOKENS		1000000
#define MOCK_MAX_DELAY_MS	3600000
#define MOCK_HEAD_MAX		1536		/* response status line and headers */
#define MOCK_LIE_EXTRA		64		/* bytes content_length_lie promises but never sends */

/* Timing and size of a generated answer; defaults from the command line. */
struct mock_settings {
	int	 first_token_ms;
	int	 interval_ms;
	int	 tokens;
};

/* HTTP/2 behaviour from the command line (mock_h2.c). */
struct mock_h2_opts {
	int	 alpn;		/* offer h2 by ALPN on TLS */
	int	 refuse_nth;	/* REFUSED_STREAM the server's Nth stream */
	int	 goaway_after;	/* GOAWAY after N streams, 0: never */
	int	 no_ping_ack;	/* leave PINGs unanswered */
};

struct mock_h2;
struct mock_h2_stream;

/* How a response body is delimited on the wire. */
enum mock_framing {
	MOCK_FRAMING_DEFAULT,	/* chunked for streams, Content-Length otherwise */
	MOCK_FRAMING_CHUNKED,
	MOCK_FRAMING_CLOSE,	/* neither length nor chunks: the close ends it */
	MOCK_FRAMING_LENGTH,	/* whole body built first, sent with Content-Length */
};
const char	*mock_framing_name(enum mock_framing framing);

/* The misbehaviour a request asked for with X-Mock-Fault. */
enum mock_fault_kind {
	MOCK_FAULT_NONE,
	MOCK_FAULT_CLOSE_BEFORE_HEADERS,
	MOCK_FAULT_RESET_BEFORE_HEADERS,
	MOCK_FAULT_CLOSE_AFTER,
	MOCK_FAULT_RESET_AFTER,
	MOCK_FAULT_STALL_AFTER,
	MOCK_FAULT_STATUS,
	MOCK_FAULT_GARBAGE,
	MOCK_FAULT_CONTENT_LENGTH_LIE,
	MOCK_FAULT_ENDLESS_HEADER,
	MOCK_FAULT_SSE_ERROR_AFTER,
	MOCK_FAULT_GRPC_STATUS_AFTER,	/* gRPC: trailers with an error status */
};
const char	*mock_fault_kind_name(enum mock_fault_kind kind);

struct mock_fault {
	enum mock_fault_kind	 kind;
	unsigned		 arg;	/* N of *_after:N, CODE of status:CODE */
};

/* How one request ended, as the mock_stream record reports it. */
enum mock_outcome {
	MOCK_OUTCOME_COMPLETED,
	MOCK_OUTCOME_CLIENT_FIN,
	MOCK_OUTCOME_CLIENT_RST,
	MOCK_OUTCOME_FAULT,
	MOCK_OUTCOME_CLIENT_RST_STREAM,	/* HTTP/2: the client reset the stream */
	MOCK_OUTCOME_CONN_CLOSED,	/* HTTP/2: the mock closed the connection
					 * under it (another stream's fault) */
	MOCK_OUTCOME_REFUSED,		/* HTTP/2: --h2-refuse-stream */
	MOCK_OUTCOME_DEADLINE_EXCEEDED,	/* gRPC: the grpc-timeout passed */
};
const char	*mock_outcome_name(enum mock_outcome outcome);

enum mock_endpoint {
	MOCK_EP_NOT_FOUND,
	MOCK_EP_MODELS,
	MOCK_EP_CHAT,		/* OpenAI chat completions */
	MOCK_EP_MESSAGES,	/* Anthropic Messages */
	MOCK_EP_RESPONSES,	/* OpenAI Responses */
	MOCK_EP_ECHO,
	MOCK_EP_GRPC,		/* any gRPC method, server streaming */
};
const char	*mock_endpoint_name(enum mock_endpoint ep);
const char	*mock_endpoint_api(enum mock_endpoint ep);

/* What the server does with a connection right now. */
enum mock_conn_state {
	MOCK_CONN_READING,	/* parsing a request */
	MOCK_CONN_RESPONDING,	/* answering; later requests wait in the input */
	MOCK_CONN_CLOSED,	/* torn down, freed at the end of the loop turn */
};
const char	*mock_conn_state_name(enum mock_conn_state state);

/* Where a response stands; each state says what event moves it on. */
enum mock_resp_state {
	MOCK_RESP_IDLE,		/* no response */
	MOCK_RESP_WAITING,	/* timer armed for the first token (or whole body) */
	MOCK_RESP_STREAMING,	/* timer armed for the next token */
	MOCK_RESP_BLOCKED,	/* next token waits for the output to drain */
	MOCK_RESP_STALLED,	/* stall fault: nothing more, ever */
	MOCK_RESP_ENDLESS,	/* endless_header fault: one header line per tick */
	MOCK_RESP_DRAINING,	/* all queued; ends when the output is empty */
};
const char	*mock_resp_state_name(enum mock_resp_state state);

/* What happens to the connection once a response has drained. */
enum mock_end {
	MOCK_END_KEEP,		/* keep-alive: parse the next request */
	MOCK_END_CLOSE,		/* close with FIN */
	MOCK_END_RESET,		/* close with RST (SO_LINGER 0) */
};
const char	*mock_end_name(enum mock_end end);

/* One header as offsets into the request arena. */
struct mock_hdr {
	uint32_t	 name_off, name_len;
	uint32_t	 value_off, value_len;
};

/*
 * The request being parsed, then answered. Strings live in one arena that
 * is reused across the requests of a connection; they are kept as offsets
 * because the arena may move while it grows. Nothing is parsed while a
 * response is in flight, so the arena stays put until the response ends.
 */
struct mock_req {
	char		*arena;
	size_t		 arena_len, arena_cap;
	struct mock_hdr	*hdrs;
	size_t		 nhdrs, hdrs_cap;
	char		*body;
	size_t		 body_len, body_cap;
	uint32_t	 url_off, url_len;
	int		 in_field;	/* the last callback was a header name */
	int		 error_status;	/* 413/431 when a limit was hit */
};

/* The answer to the current request. */
struct mock_resp {
	enum mock_resp_state	 state;
	enum mock_endpoint	 endpoint;
	struct mock_settings	 set;
	enum mock_framing	 framing;
	struct mock_fault	 fault;
	const char		*method;
	int			 stream;
	int			 include_usage;
	int			 keep_alive;
	int			 http10;
	int			 no_record;	/* a parse error: no request to report */
	int			 prepared;	/* the body was read: usage is known */
	int			 opened;	/* the events before the first token are out */
	unsigned		 prompt_tokens;
	unsigned		 tokens_sent;
	unsigned		 endless_lines;
	unsigned		 seq;		/* Responses: the next sequence_number */
	uint64_t		 start_us;	/* request complete */
	uint64_t		 first_token_us;	/* first body byte of the answer */
	uint64_t		 bytes_out;
	int64_t			 model_off;	/* -1: no model */
	uint32_t		 prefix_off, prefix_len;	/* chat chunk JSON up to "choices" */
	uint64_t		 grpc_deadline_us;	/* 0: no grpc-timeout */
	int			 grpc_status;	/* sent in the trailers, -1: none */
	int			 grpc_deadline_due;	/* the timer is the deadline's */
	int			 has_rst_code;	/* X-Mock-Rst-Code was given */
	uint32_t		 rst_code_out;	/* ... the code reset_after sends */
	enum mock_outcome	 end_outcome;
	enum mock_end		 end;
	struct evbuffer		*sink;		/* length framing: the body being built */
	time_t			 created;
	char			 id[48];
};

struct mock_server;

struct mock_conn {
	TAILQ_ENTRY(mock_conn)	 entry;
	struct mock_server	*srv;
	uint64_t		 id;
	evutil_socket_t		 fd;
	int			 tls;
	struct bufferevent	*bev;
	enum mock_conn_state	 state;
	int			 in_parse;	/* mock_http_parse() is on the stack */
	int			 overflowed;	/* queued input was dropped: close after */
	int			 peer_gone;	/* FIN or RST seen: no close_notify */
	unsigned		 nrequests;
	llhttp_t		 parser;
	struct event		 timer;		/* token ticks, endless header lines */
	/* HTTP/2: on the connection, its session; on a stream (a mock_conn of
	 * its own, with no socket), the connection and the stream. */
	struct mock_h2		*h2;
	struct mock_conn	*parent;	/* NULL: a real connection */
	struct mock_h2_stream	*h2s;		/* a stream's answer in frames */
	TAILQ_ENTRY(mock_conn)	 sentry;	/* the connection's streams */
	TAILQ_ENTRY(mock_conn)	 dentry;	/* its streams whose output ran
						 * dry since the last look */
	int			 on_drained;
	int32_t			 stream_id;
	uint32_t		 rst_code;	/* the client's RST_STREAM code */
	const char		*h2_method;
	struct mock_req		 req;
	struct mock_resp	 resp;
};
TAILQ_HEAD(mock_conns, mock_conn);

struct mock_server {
	struct event_base	*base;
	struct evconnlistener	*listener;
	SSL_CTX			*ssl_ctx;
	struct mock_settings	 defaults;
	const struct timeval	*tv_first;	/* common timeouts for the defaults */
	const struct timeval	*tv_interval;
	struct mock_conns	 conns;		/* live connections */
	struct mock_conns	 dead;		/* closed, freed by reap_ev */
	struct event		*reap_ev;
	struct event		*accept_ev;	/* re-enables accept after EMFILE */
	struct mock_h2_opts	 h2;
	unsigned		 h2_streams;	/* HTTP/2 streams received */
	uint64_t		 next_conn_id;
	uint64_t		 next_resp_id;
	unsigned		 nconns;
};

/* mock_http.c: connections, request parsing, plain responses. */
void	 mock_http_accept_cb(struct evconnlistener *, evutil_socket_t,
	    struct sockaddr *, int, void *);
void	 mock_http_close_all(struct mock_server *srv);
void	 mock_http_reap_cb(evutil_socket_t, short, void *);
void	 mock_conn_close(struct mock_conn *c, enum mock_end how);
void	 mock_conn_write(struct mock_conn *c, const struct iovec *iov, int n);
void	 mock_conn_add(struct mock_conn *c, const char *data, size_t len);
void	 mock_http_head(struct mock_conn *c, int status, const char *ctype,
	    enum mock_framing framing, size_t content_length,
	    const char *extra);
void	 mock_http_head_body(struct mock_conn *c, int status,
	    const char *ctype, enum mock_framing framing,
	    size_t content_length, const char *extra, const char *body,
	    size_t len);
void	 mock_http_respond(struct mock_conn *c, int status, const char *ctype,
	    const char *body, size_t len, const char *extra,
	    enum mock_outcome outcome);
void	 mock_http_error(struct mock_conn *c, int status, const char *message,
	    const char *extra, enum mock_outcome outcome);
enum mock_framing mock_resp_framing(struct mock_conn *c, int streaming);
const char *mock_req_header(struct mock_conn *c, const char *name);
const char *mock_req_str(struct mock_conn *c, int64_t off);
int64_t	 mock_req_save(struct mock_conn *c, const char *s, size_t len);
void	 mock_resp_end(struct mock_conn *c, enum mock_outcome outcome,
	    enum mock_end how);

/* mock_h2.c: HTTP/2 connections; each stream is a mock_conn of its own
 * whose HTTP/1.1 answer is turned into HEADERS and DATA frames. */
int	 mock_h2_sniff(struct mock_conn *c);
void	 mock_h2_read(struct mock_conn *c);
void	 mock_h2_write(struct mock_conn *c);
void	 mock_h2_gone(struct mock_conn *c, enum mock_outcome outcome,
	    uint64_t now);
void	 mock_h2_stream_write(struct mock_conn *c, const struct iovec *iov,
	    int n);
size_t	 mock_h2_stream_pending(struct mock_conn *c);
void	 mock_h2_stream_close(struct mock_conn *c, enum mock_end how);
void	 mock_h2_conn_close(struct mock_conn *c);
void	 mock_h2_free(struct mock_conn *c);
int	 mock_h2_alpn_cb(SSL *ssl, const unsigned char **out,
	    unsigned char *outlen, const unsigned char *in, unsigned int inlen,
	    void *arg);
/* The output not yet written (the socket's, or the stream's). */
size_t	 mock_conn_pending(struct mock_conn *c);
/* An HTTP/2 error code's name: CANCEL, REFUSED_STREAM. */
const char *mock_h2_code_name(uint32_t code);
/* mock_http.c, shared with mock_h2.c. */
int	 mock_req_add_header(struct mock_conn *c, const char *name,
	    size_t nlen, const char *value, size_t vlen);
int	 mock_req_set_url(struct mock_conn *c, const char *url, size_t n);
int	 mock_req_add_body(struct mock_conn *c, const char *at, size_t n);
void	 mock_http_answer(struct mock_conn *c, const char *method,
	    int http10, int keep_alive);
void	 mock_resp_drained(struct mock_conn *c);

/* mock_stream.c: generated answers, token timing, faults, the records. */
int	 mock_stream_settings(struct mock_conn *c, const char **err);
void	 mock_stream_start(struct mock_conn *c);
void	 mock_stream_emit(struct mock_conn *c, const char *data, size_t len);
int	 mock_stream_fault_before_headers(struct mock_conn *c);
void	 mock_stream_drained(struct mock_conn *c);
void	 mock_stream_timer_cb(evutil_socket_t, short, void *);
int	 mock_fault_parse(const char *s, struct mock_fault *out);
int	 mock_fault_format(const struct mock_fault *f, char *buf, size_t len);
void	 mock_record_request(struct mock_conn *c);
void	 mock_record_stream(struct mock_conn *c, enum mock_outcome outcome,
	    uint64_t gone_us);
const struct timeval *mock_stream_tv(struct mock_conn *c, int64_t ms,
	    struct timeval *tv);

struct jsonw;
/* mock_grpc.c: a gRPC server-streaming answer, one message per token. */
int	 mock_grpc_is_call(struct mock_conn *c);
void	 mock_grpc_start(struct mock_conn *c);
void	 mock_grpc_timer(struct mock_conn *c);
void	 mock_grpc_drained(struct mock_conn *c);
void	 mock_grpc_record(struct mock_conn *c, struct jsonw *w, int end);
int	 mock_rst_code_parse(const char *s, uint32_t *code);

/* mock_api.c: the request fields, events, answers and errors of each API. */
struct jsonw;
int	 mock_api_prepare(struct mock_conn *c, const char *json, size_t len,
	    const char **err);
int	 mock_api_stream_setup(struct mock_conn *c);
int	 mock_api_open(struct mock_conn *c);
void	 mock_api_token(struct mock_conn *c, unsigned k);
int	 mock_api_tail(struct mock_conn *c, unsigned n);
void	 mock_api_error_event(struct mock_conn *c);
void	 mock_api_body(struct mock_conn *c, struct jsonw *w, unsigned n);
void	 mock_api_error_json(struct mock_conn *c, struct jsonw *w, int status,
	    const char *message);
void	 mock_api_fail(struct mock_conn *c);

#endif
