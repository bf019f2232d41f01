/* fuzz_rig: one worker-like context in the fuzzer's own process, so that a
 * fuzz target drives the proxy's real code paths: a client connection
 * accepted by downstream_accept() on one end of a socketpair, the real
 * request parser, routing and session code, a real upstream connection to
 * a loopback listener the rig owns, the real response parser and relay,
 * and the real teardown. Nothing is stubbed; the event loop is run by
 * hand (EVLOOP_NONBLOCK) until it goes quiet.
 *
 * After every input the rig closes both ends, runs the loop until the
 * proxy has torn everything down, and checks that nothing is left: no
 * live or dead session or client, no note in flight, no registry entry,
 * no counted connection or live stream. A leftover is a bug (a session
 * that never ends), so the rig aborts and the fuzzer keeps the input. */
#ifndef CP_FUZZ_RIG_H
#define CP_FUZZ_RIG_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_UP_MAX	16	/* upstream connections per input */
#define FUZZ_CLIENTS_MAX 8	/* client connections per input */

/* What the test's upstream answers on its connection number idx (0 is the
 * first the proxy opened), once it has received bytes; NULL: the default
 * answer, a small JSON 200. */
typedef void	(*fuzz_upstream_fn)(void *arg, int idx, int fd);

struct fuzz_rig;

/* Sets the rig up once: config_fmt is JSON text in which every "%1$d" is
 * the port of the rig's upstream listener; exits on failure. */
struct fuzz_rig	*fuzz_rig_init(const char *config_fmt);

/* Opens a client connection; the rig keeps the test's end. The calls
 * below act on the newest client; earlier ones stay connected, unread,
 * until fuzz_rig_finish() closes them (at most FUZZ_CLIENTS_MAX). */
void		 fuzz_rig_client(struct fuzz_rig *g);
/* Sends bytes from the client; 0, or -1 when the proxy closed. */
int		 fuzz_rig_send(struct fuzz_rig *g, const void *p, size_t n);
/* The client stops or starts reading what the proxy sends it. */
void		 fuzz_rig_client_reading(struct fuzz_rig *g, int on);
/* The client half-closes, closes with a FIN, or resets. */
void		 fuzz_rig_client_shutdown(struct fuzz_rig *g);
void		 fuzz_rig_client_close(struct fuzz_rig *g, int rst);

/* How the upstream answers; fn NULL restores the default. */
void		 fuzz_rig_upstream(struct fuzz_rig *g, fuzz_upstream_fn fn,
		    void *arg);
/* Closes every upstream connection the rig accepted (FIN or RST). */
void		 fuzz_rig_upstream_close(struct fuzz_rig *g, int rst);
/* The fd of upstream connection idx once it has received bytes, or -1. */
int		 fuzz_rig_upstream_fd(struct fuzz_rig *g, int idx);
/* Upstream connections accepted for this input so far. */
int		 fuzz_rig_upstreams(struct fuzz_rig *g);

/* Runs the loop until nothing moves any more. */
void		 fuzz_rig_pump(struct fuzz_rig *g);
/* Ends the input: closes both sides, runs the teardown and checks that
 * nothing is left (aborts when something is). */
void		 fuzz_rig_finish(struct fuzz_rig *g);

/*
 * The config both in-process targets use: every upstream is the rig's
 * listener. Routes pick the features by path: /p/ a peer upstream (cancel
 * notes, peer SSE errors), /i/ usage injection, /d/ drain on client
 * disconnect, /v1/ model globs, set_headers, a base path and a fallback,
 * anything else a plain upstream. Client keys are off so that requests go
 * through; peers have a secret and a 1 ms note wait.
 */
#define FUZZ_PROXY_CONFIG \
	"{\"hop\":\"fuzz\",\"workers\":1," \
	"\"listen\":[{\"address\":\"127.0.0.1:0\"}]," \
	"\"upstreams\":{" \
	"\"plain\":{\"url\":\"http://127.0.0.1:%1$d\",\"keepalive\":0}," \
	"\"peer\":{\"url\":\"http://127.0.0.1:%1$d\",\"peer\":true," \
	"\"keepalive\":0}," \
	"\"base\":{\"url\":\"http://127.0.0.1:%1$d/base\",\"keepalive\":0," \
	"\"set_headers\":{\"Authorization\":\"Bearer sk-fuzz-SECRET\"}}}," \
	"\"routes\":[" \
	"{\"path_prefix\":\"/p/\",\"upstream\":\"peer\"}," \
	"{\"path_prefix\":\"/i/\",\"upstream\":\"plain\"," \
	"\"stream_usage\":\"inject\"}," \
	"{\"path_prefix\":\"/d/\",\"upstream\":\"plain\"," \
	"\"on_client_disconnect\":\"drain\"," \
	"\"drain\":{\"max_ms\":20,\"max_bytes\":4096}}," \
	"{\"path_prefix\":\"/v1/\",\"models\":[\"gpt-*\",\"mock-[0-9]\"]," \
	"\"upstream\":\"base\",\"fallback\":[\"plain\"]}," \
	"{\"path_prefix\":\"/\",\"upstream\":\"plain\"}]," \
	"\"peers\":{\"secret\":\"fuzz-peer-SECRET\",\"note_wait_ms\":1}," \
	"\"limits\":{\"max_header_bytes\":8192,\"max_body_bytes\":65536}," \
	"\"log\":{\"path\":\"/dev/null\"}}"

/* Writes all of p to a blocking or non-blocking fd, ignoring errors. */
void		 fuzz_write_all(int fd, const void *p, size_t n);

#endif
