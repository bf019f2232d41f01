/* harness: what every integration test uses to drive cancelproxy for real:
 * child processes with their JSON log lines collected, loopback sockets
 * closed with FIN or RST on demand, an HTTP/1.1 + SSE client over plain TCP
 * or TLS, and certificates made at test time.
 *
 * Rules that hold for the whole API:
 * - Every wait has a timeout in milliseconds (0 or less means the default,
 *   HTIMEOUT_MS) and every timeout is multiplied by hscale(), so the suite
 *   can run under valgrind (CP_VALGRIND=1) without editing tests.
 * - Every pointer the harness returns is owned by the harness: tests never
 *   free anything. Processes are killed, connections closed and memory
 *   freed when the test process exits (or at hcleanup()); hproc_free() and
 *   hconn_free() only release early.
 * - Child processes die with the test process (PR_SET_PDEATHSIG), even when
 *   it crashes or Criterion kills it on a timeout.
 * - Functions return 0 or -1 (or a pointer or NULL); a failure also writes
 *   one line starting with "harness:" to stderr saying why.
 *
 * Environment: CP_VALGRIND=1 runs cancelproxy under valgrind and scales
 * timeouts by 10; CP_TIMEOUT_SCALE=N scales them by N; CP_DUMP=1 dumps
 * every process's output at exit; CP_KEEP_TMP=1 keeps the temp directory.
 */
#ifndef CP_HARNESS_H
#define CP_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

/* ---- common (harness.c) ---------------------------------------------- */

#define HTIMEOUT_MS	5000		/* the default wait, before scaling */

/* The factor every timeout is multiplied by: CP_TIMEOUT_SCALE, else 10
 * under CP_VALGRIND=1, else 1. */
int		 hscale(void);
/* A timeout in ms after defaults (<= 0 means HTIMEOUT_MS) and scaling. */
int		 hscaled(int ms);
/* Monotonic clock in milliseconds and microseconds. */
int64_t		 hnow_ms(void);
int64_t		 hnow_us(void);
/* Sleeps ms milliseconds (not scaled: it is a delay, not a wait). */
void		 hsleep_ms(int ms);

/* The test process's own temporary directory, made on first use under
 * /tmp and removed at exit (kept when CP_KEEP_TMP=1). */
const char	*htmp_dir(void);
/* The path of a file called name in htmp_dir(). */
const char	*htmp_path(const char *name);
/* Writes text to a file called name in htmp_dir() and returns its path. */
const char	*htmp_write(const char *name, const char *text);
/* The path of a built program (CP_BIN_DIR/name). */
const char	*hbin_path(const char *name);
/* A printf-formatted string owned by the harness. */
const char	*hstrf(const char *fmt, ...)
		    __attribute__((format(printf, 1, 2)));

/* Looks up a dotted path ("origin.kind", "cancel_path.0") in a record. */
const cJSON	*hjson_get(const cJSON *obj, const char *path);
/* In the mock's /debug/echo answer j: how many times the upstream received
 * a header field (any case), and the first value it had (NULL: none). */
int		 hecho_count(const cJSON *j, const char *name);
/* A mock that answers fast (5 tokens, 5 ms apart) on a free port. */
struct hproc	*hmock_fast(int *port);
const char	*hecho_header(const cJSON *j, const char *name);
/* The string at path, or NULL when missing or not a string. */
const char	*hjson_str(const cJSON *obj, const char *path);
/* The number at path, or def when missing or not a number. */
double		 hjson_num(const cJSON *obj, const char *path, double def);
/* The value at path as text (strings as is, 3, 2.5, true, null), or NULL
 * when missing; the form hproc_wait_record() compares with. */
const char	*hjson_text(const cJSON *obj, const char *path);
/* Parses JSON text into a harness-owned tree; NULL when not JSON. */
cJSON		*hjson_parse(const char *text);
/* Serialises a tree on one line (harness-owned), for messages. */
const char	*hjson_print(const cJSON *obj);

/* Kills every process, closes every connection and frees everything the
 * harness owns; runs by itself at exit. */
void		 hcleanup(void);

/* Takes ownership of malloc'ed memory or a cJSON tree until exit. */
void		*hkeep(void *p);
cJSON		*hkeep_json(cJSON *json);

/* Like cr_assert, but dumps every process's output before failing:
 * hassert(r != NULL) or hassert(n == 3, "got %d", n); a message, when
 * given, starts with a string literal. */
#define hassert(cond, ...) do {						\
	if (!(cond)) {							\
		hproc_dump_all();					\
		cr_log_error("hassert(%s) failed", #cond);		\
		cr_assert_fail("" __VA_ARGS__);				\
	}								\
} while (0)

/* ---- processes (harness_proc.c) -------------------------------------- */

struct hproc;

/* Starts argv[0] (a path, or a name looked up in PATH) with stdin from
 * /dev/null and stdout and stderr read by a background thread; envp_extra
 * ("NAME=value", NULL-terminated, may be NULL) is added to the environment.
 * Each stdout line becomes a record: parsed JSON when it is a JSON object,
 * kept raw otherwise; stderr lines are kept raw. Call it from the test's
 * own thread: the child is killed when the thread that forked it ends. */
struct hproc	*hproc_start(const char *const argv[],
		    const char *const envp_extra[]);
/* Names the process in messages and dumps (default: the program name). */
void		 hproc_set_name(struct hproc *p, const char *name);
const char	*hproc_name(const struct hproc *p);
pid_t		 hproc_pid(const struct hproc *p);

/* Waits for the first record with "event" == event (NULL: any) and, when
 * key is not NULL, key == value (dotted path, compared as hjson_text;
 * value NULL: key present) that no earlier wait returned; marks it
 * returned. NULL on timeout or once the process has exited without one. */
cJSON		*hproc_wait_record(struct hproc *p, const char *event,
		    const char *key, const char *value, int timeout_ms);
/* The same with any number of key, value pairs ending in NULL:
 * hproc_wait_match(p, 0, "event", "cancel", "phase", "streaming", NULL). */
cJSON		*hproc_wait_match(struct hproc *p, int timeout_ms, ...)
		    __attribute__((sentinel));
/* The first record matching, returned before or not; never waits. */
cJSON		*hproc_find_record(struct hproc *p, const char *event,
		    const char *key, const char *value);
/* How many records so far have this event (NULL: all records). */
int		 hproc_count(struct hproc *p, const char *event);
/* How many records so far have this event and key == value. */
int		 hproc_count_match(struct hproc *p, const char *event,
		    const char *key, const char *value);
/* Every JSON record so far, in order: record i of hproc_nrecords(). */
int		 hproc_nrecords(struct hproc *p);
cJSON		*hproc_record(struct hproc *p, int i);
/* Waits for a raw line (stdout or stderr, JSON or not) containing needle
 * that no earlier wait returned; returns the line or NULL. */
const char	*hproc_wait_line(struct hproc *p, const char *needle,
		    int timeout_ms);
/* The port of the i-th "listening" record so far, or -1. */
int		 hproc_listen_port(struct hproc *p, int i);

/* How many stdout lines starting with '{' were not strict UTF-8 JSON (one
 * object, valid UTF-8, no raw control byte, nothing after it); each is
 * reported on stderr as it comes. A proxy that wrote one exits, as
 * hproc_stop() tells it, with 97 instead of 0. */
int		 hproc_bad_lines(struct hproc *p);
/* Sends a signal; 0 or -1 (also when the process is gone). */
int		 hproc_signal(struct hproc *p, int sig);
/* 1 while the process has not been seen to exit. */
int		 hproc_running(struct hproc *p);
/* Waits for the process to exit by itself; its status as hproc_stop
 * returns it, or -1 on timeout (the process is left running). */
int		 hproc_wait_exit(struct hproc *p, int timeout_ms);
/* SIGTERM, waits up to timeout_ms, then SIGKILL; returns the exit code,
 * 128 + the signal that killed it, or -1. Safe to call twice. */
int		 hproc_stop(struct hproc *p, int timeout_ms);
/* Writes everything the process printed so far to stderr. */
void		 hproc_dump(struct hproc *p);
/* hproc_dump() for every process this test started. */
void		 hproc_dump_all(void);
/* Stops (SIGKILL) and frees a process and its records now. */
void		 hproc_free(struct hproc *p);

/* ---- the programs under test (harness_proc.c) ------------------------ */

/* Starts cancelproxy-mock on 127.0.0.1:0 with extra arguments (ending in
 * NULL), waits for its "listening" record and stores the port in *port. */
struct hproc	*hmock_start(int *port, ...) __attribute__((sentinel));
/* The same with the extra arguments as an array (may be NULL). */
struct hproc	*hmock_startv(const char *const args[], int *port);
/* Waits for the mock's record of a stream its client (the proxy) closed:
 * the next mock_stream record with outcome client_fin or client_rst (with
 * this request_id, when not NULL: then its record, whatever it says, must
 * be one of those); records of other streams are passed over. The proxy shuts the socket
 * down (a FIN), but when the model's bytes are still arriving the kernel
 * resets the connection as it closes, and the mock may see either. NULL,
 * with the reason on stderr, when no such record comes. */
cJSON		*hmock_wait_closed(struct hproc *mock, const char *request_id);

/* Options for hproxy_start_opts(); zero means the default. */
struct hproxy_opts {
	const char *const	*env;	   /* "NAME=value" added, NULL-ended */
	const char *const	*args;	   /* extra arguments after -c FILE */
	const char		*name;	   /* process name (default: the hop) */
	int			 nlisten;  /* "listening" records to wait for
					      (default: listen entries) */
	int			 no_wait;  /* return at once, wait for nothing */
};
/* Writes config (JSON text) to a file in htmp_dir(), starts cancelproxy
 * -c FILE (under valgrind when CP_VALGRIND=1), waits for one "listening"
 * record per "listen" entry; NULL (output dumped) when it does not come.
 * End a test with hassert(hproc_stop(p, 0) == 0): under valgrind a leak
 * or a memory error makes the status 99 (at exit it is only killed). */
struct hproc	*hproxy_start(const char *config);
/* hproxy_start() with the config made by printf. */
struct hproc	*hproxy_startf(const char *fmt, ...)
		    __attribute__((format(printf, 1, 2)));
struct hproc	*hproxy_start_opts(const char *config,
		    const struct hproxy_opts *o);
/* The port of the first listener with or without TLS, or -1. */
int		 hproxy_port(struct hproc *p, int tls);
/* The config file the proxy was started with. */
const char	*hproxy_config_path(struct hproc *p);
/* Replaces the config file (atomically) for a SIGHUP reload. */
int		 hproxy_rewrite(struct hproc *p, const char *config);

/* ---- raw sockets (harness_net.c) ------------------------------------- */

#define HNET_FIN	0	/* the peer closed: recv returned 0 */
#define HNET_RST	1	/* the peer reset: ECONNRESET or another error */
#define HNET_TIMEOUT	(-1)	/* still open when the wait ran out */

/* A blocking TCP connection to host:port (numeric host, or "localhost"),
 * TCP_NODELAY on; -1 when it fails within the default timeout. */
int		 hnet_connect(const char *host, int port);
/* hnet_connect() with SO_RCVBUF set before connecting (a slow reader's
 * small window); rcvbuf 0 leaves the default. */
int		 hnet_connect_rcvbuf(const char *host, int port, int rcvbuf);
/* A listening socket on host:0 (an upstream a test drives by hand); the
 * port chosen goes to *port. */
int		 hnet_listen(const char *host, int *port);
/* Accepts one connection within timeout_ms; -1 on timeout. */
int		 hnet_accept(int lfd, int timeout_ms);
/* Sends all of buf within the default timeout; 0 or -1. */
int		 hnet_send_all(int fd, const void *buf, size_t len);
int		 hnet_send_str(int fd, const char *s);
/* Receives into buf (kept NUL-terminated, so at most cap - 1 bytes) until
 * needle appears (NULL: until the peer closes); the length, or -1 on
 * timeout, close or error before that (buf still holds what came). */
ssize_t		 hnet_recv_until(int fd, char *buf, size_t cap,
		    const char *needle, int timeout_ms);
/* Closes with a FIN: shutdown, then unread bytes dropped (a close with
 * unread bytes would send an RST), then close. */
void		 hnet_close_fin(int fd);
/* Closes with an RST (SO_LINGER {1, 0}, then close). */
void		 hnet_close_rst(int fd);
/* Half-closes: sends a FIN, keeps reading. */
int		 hnet_shutdown_wr(int fd);
/* Reads and discards until the peer closes: HNET_FIN, HNET_RST or
 * HNET_TIMEOUT. */
int		 hnet_wait_closed(int fd, int timeout_ms);

/* ---- client connections, plain or TLS (harness_net.c) ----------------- */

struct hconn;

/* A buffered client connection over TCP. */
struct hconn	*hconn_connect(const char *host, int port);
/* The same with a small receive buffer (see hnet_connect_rcvbuf). */
struct hconn	*hconn_connect_rcvbuf(const char *host, int port, int rcvbuf);
/* A TLS client connection: verifies the server against ca_path (NULL: no
 * verification) and the name sni (sent as SNI), or host when sni is NULL
 * (no SNI sent; an IP host is checked against IP SANs). NULL when the
 * handshake or verification fails. */
struct hconn	*hconn_connect_tls(const char *host, int port,
		    const char *ca_path, const char *sni);
/* Wraps an fd (from hnet_accept, say) in a plain connection. */
struct hconn	*hconn_wrap(int fd);
int		 hconn_fd(struct hconn *c);
/* Sends all of buf (through TLS when on); 0 or -1. */
int		 hconn_send(struct hconn *c, const void *buf, size_t len);
int		 hconn_send_str(struct hconn *c, const char *s);
/* Reads what arrives within timeout_ms into the buffer: bytes added, 0
 * when the peer closed, -1 on timeout or error (errno says which). */
ssize_t		 hconn_fill(struct hconn *c, int timeout_ms);
/* The received, unconsumed bytes (NUL-terminated) and their length. */
const char	*hconn_data(struct hconn *c, size_t *len);
/* Drops n bytes from the front of the buffer. */
void		 hconn_consume(struct hconn *c, size_t n);
/* Reads until needle is in the buffer; the offset just past it, or -1. */
ssize_t		 hconn_read_until(struct hconn *c, const char *needle,
		    int timeout_ms);
/* Reads until the peer closes, keeping what came: HNET_FIN, HNET_RST or
 * HNET_TIMEOUT. */
int		 hconn_wait_closed(struct hconn *c, int timeout_ms);
/* 1 once the peer was seen to close (FIN), 2 when it reset, else 0. */
int		 hconn_peer_closed(struct hconn *c);
/* Closes with a FIN as hnet_close_fin() does (TLS: without close_notify,
 * like a killed browser); unread bytes are dropped. */
void		 hconn_close_fin(struct hconn *c);
/* Closes with an RST. */
void		 hconn_close_rst(struct hconn *c);
/* TLS: sends close_notify, then closes with a FIN. */
void		 hconn_close_notify(struct hconn *c);
/* Half-closes (TLS: after close_notify); reading goes on. */
int		 hconn_shutdown_wr(struct hconn *c);
/* Closes (FIN) if open and frees the connection and its responses. */
void		 hconn_free(struct hconn *c);

/* ---- HTTP/1.1 and SSE (harness_http.c) ------------------------------- */

struct hheader {
	char	*name;
	char	*value;
};

/* One response read from a connection; fields are read-only. */
struct hresp {
	int		 status;	/* 0 until the head is in */
	char		*head;		/* status line and headers, raw */
	struct hheader	*headers;
	int		 nheaders;
	char		*body;		/* de-chunked, NUL-terminated */
	size_t		 body_len;
	int		 chunked;	/* Transfer-Encoding: chunked */
	int		 nchunks;	/* non-empty chunks so far */
	int		 head_done;
	int		 complete;	/* the framing said the body ended */
	int		 eof;		/* the peer closed while reading it */
	int		 rst;		/* the peer reset while reading it */
	char		*error;		/* a framing error, or NULL */
	int		 nevents;	/* SSE events returned so far */
	size_t		 sse_off;	/* body bytes given out as events */
	/* Internal. */
	cJSON		*json;		/* hresp_json()'s parse */
	size_t		 head_len, head_cap, body_cap;
};

/* A request as text (harness-owned): the request line, Host (unless
 * headers has one), the headers ("Name: value", NULL-terminated, may be
 * NULL), Content-Type: application/json and Content-Length when body is
 * not NULL (unless headers set them or Transfer-Encoding). */
const char	*hreq_build(const char *method, const char *path,
		    const char *const headers[], const char *body);
/* POST /v1/chat/completions for model with one user message; stream
 * true or false; headers as in hreq_build. */
const char	*hreq_chat(const char *model, int stream,
		    const char *const headers[]);
/* The JSON body hreq_chat() sends. */
const char	*hreq_chat_body(const char *model, int stream);

/* Reads the next response's status line and headers; NULL on timeout,
 * close or a framing error. The response belongs to the connection; the
 * previous one must have been read to its end. */
struct hresp	*hconn_read_head(struct hconn *c, int timeout_ms);
/* Reads the rest of the body until the framing ends it; 0, or -1 when it
 * did not end (timeout, close, reset, framing error: see the fields). */
int		 hconn_read_body(struct hconn *c, struct hresp *r,
		    int timeout_ms);
/* hconn_read_head() then hconn_read_body(); NULL when either fails, but
 * the partial response stays reachable as hconn_last_response(). */
struct hresp	*hconn_read_response(struct hconn *c, int timeout_ms);
/* The response most recently begun on this connection, or NULL. */
struct hresp	*hconn_last_response(struct hconn *c);
/* Reads the next SSE event (its lines, without the blank line after it);
 * NULL at the end of the body, on timeout or on close. */
const char	*hconn_read_event(struct hconn *c, struct hresp *r,
		    int timeout_ms);
/* Connects, sends req, reads the whole response, closes; NULL on failure. */
struct hresp	*hhttp_exchange(const char *host, int port, const char *req,
		    int timeout_ms);

/* The first value of a header (case-insensitive name), or NULL. */
const char	*hresp_header(const struct hresp *r, const char *name);
/* The body parsed as JSON, or NULL. */
cJSON		*hresp_json(struct hresp *r);

/* The data: lines of an event joined with "\n", or NULL when none. */
const char	*hsse_data(const char *event);
/* The event: field of an event, or NULL when none. */
const char	*hsse_type(const char *event);
/* The data of an event parsed as JSON, or NULL ("[DONE]", not JSON). */
cJSON		*hsse_json(const char *event);

/* ---- certificates (harness_tls.c) ------------------------------------ */

/* Paths of the PEM files hcert_make() wrote. */
struct hcert {
	char	ca[512];	/* the CA certificate, to verify with */
	char	ca_key[512];
	char	cert[512];	/* the server certificate */
	char	key[512];	/* its private key */
};

/* Makes a fresh CA (EC P-256) and a server certificate for name signed by
 * it, with subjectAltName DNS:name (or IP:name), IP:127.0.0.1 and IP:::1,
 * valid from an hour ago for a day, as <name>-ca.pem, <name>-ca-key.pem,
 * <name>-cert.pem and <name>-key.pem in dir (NULL: htmp_dir()). */
int		 hcert_make(const char *dir, const char *name,
		    struct hcert *out);
/* Another server certificate for name signed by the CA of ca, written as
 * <file>-cert.pem and <file>-key.pem in the same directory. */
int		 hcert_make_leaf(const struct hcert *ca, const char *name,
		    const char *file, struct hcert *out);

/* ---- internal: shared by the harness files, not for tests ----------- */

void		 hcleanup_register_(void);
void		 hproc_cleanup_(void);
void		 hconn_cleanup_(void);
const char	*hjson_text_r_(const cJSON *v, char *buf, size_t len);
void		*hconn_http_(struct hconn *c, void *(*make)(void),
		    void (*release)(void *));
int		 hconn_fill_until_(struct hconn *c, int64_t deadline_ms);

#endif
