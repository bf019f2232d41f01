/* Unit tests for downstream_h1, the HTTP/1.1 client protocol: a real
 * client connection accepted with downstream_accept() on a socketpair, the
 * test writing raw requests on the other end, and a fake upstream protocol
 * (the worker's upstream_proto seam) standing for the model. The session
 * says what to send; the bytes the client reads show how HTTP/1.1 framed
 * it: the status line, Content-Length or chunks or the close, keep-alive. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "downstream/downstream.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "upstream/upstream.h"
#include "tests/unit/unit_fake_up.h"
#include "tests/unit/unit_worker.h"


static struct worker	 w;
static struct client	*c;
static int		 peer = -1;
static char		 logpath[] = "/tmp/cp-h1-XXXXXX";
static char		 confpath[] = "/tmp/cp-h1-conf-XXXXXX";

static const char conf_text[] =
    "{ \"hop\": \"unit\", \"workers\": 1,"
    "  \"listen\": [ { \"address\": \"127.0.0.1:0\" } ],"
    "  \"upstreams\": { \"main\": { \"url\": \"http://127.0.0.1:9\" } },"
    "  \"routes\": [ { \"path_prefix\": \"/\", \"upstream\": \"main\" } ] }";

static void
setup(void)
{
	struct sockaddr_in sin;
	int		 sv[2];

	unit_worker_init(&w, conf_text, confpath, logpath);
	w.upstream_proto = &fake_up;
	unit_starts = 0;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(4242);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c = downstream_accept(&w, sv[0], (struct sockaddr *)&sin, 0);
	cr_assert_not_null(c);
	peer = sv[1];
	fcntl(peer, F_SETFL, O_NONBLOCK);
}

static void
teardown(void)
{
	while (!TAILQ_EMPTY(&w.clients))
		downstream_close(TAILQ_FIRST(&w.clients), CANCEL_VIA_EOF);
	worker_free_dead(&w);
	close(peer);
	unit_worker_fini(&w, confpath, logpath);
}

TestSuite(downstream_h1, .init = setup, .fini = teardown);

static void
turns(int n)
{
	while (n-- > 0)
		event_base_loop(w.base, EVLOOP_NONBLOCK);
}

/* Sends a raw request and returns the session it became, routed and
 * started on the fake upstream. */
static struct session *
request(const char *raw)
{
	int	 before = unit_starts, i;

	cr_assert_eq(write(peer, raw, strlen(raw)), (ssize_t)strlen(raw));
	for (i = 0; i < 50 && unit_starts == before; i++)
		turns(1);
	cr_assert_eq(unit_starts, before + 1, "the request did not start");
	cr_assert_not_null(c->session);
	session_upstream_connected(c->session);
	return c->session;
}

/* Everything the client has been sent so far; *eof when it was closed. */
static const char *
output(int *eof)
{
	static char	 buf[65536];
	size_t		 len = 0;
	ssize_t		 n;
	int		 i;

	*eof = 0;
	for (i = 0; i < 20; i++) {
		turns(1);
		while ((n = read(peer, buf + len, sizeof(buf) - 1 - len)) > 0)
			len += (size_t)n;
		if (n == 0) {
			*eof = 1;
			break;
		}
	}
	buf[len] = '\0';
	return buf;
}

static void
head(struct session *s, const char *ct, int64_t length)
{
	cr_assert_eq(headers_add_name(&s->resp_headers, "Content-Type", 12),
	    0);
	headers_name_done(&s->resp_headers);
	cr_assert_eq(headers_add_value(&s->resp_headers, ct, strlen(ct)), 0);
	cr_assert_eq(session_on_response_head(s, 200, length), 0);
}

static void
body(struct session *s, const char *b)
{
	cr_assert_eq(session_on_body(s, b, strlen(b)), 0);
	session_flush_body(s);
}

#define GET11	"GET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n"

Test(downstream_h1, an_unknown_length_is_chunked_and_the_connection_kept)
{
	struct session	*s = request(GET11);
	const char	*out;
	int		 eof;

	head(s, "text/event-stream", -1);
	body(s, "data: a\n\n");
	session_on_response_complete(s);
	out = output(&eof);
	cr_assert(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", out);
	cr_assert(strstr(out, "Transfer-Encoding: chunked\r\n") != NULL, "%s",
	    out);
	cr_assert(strstr(out, "Via: 1.1 unit\r\n") != NULL, "%s", out);
	cr_assert_null(strstr(out, "Connection:"), "%s", out);
	cr_assert(strstr(out, "\r\n\r\n9\r\ndata: a\n\n\r\n0\r\n\r\n") != NULL,
	    "%s", out);
	cr_assert(!eof, "a whole answer keeps the connection");
	request(GET11);		/* the next request on the same connection */
}

Test(downstream_h1, a_known_length_passes_unframed)
{
	struct session	*s = request(GET11);
	const char	*out;
	int		 eof;

	head(s, "application/json", 7);
	body(s, "{\"a\":1}");
	session_on_response_complete(s);
	out = output(&eof);
	cr_assert(strstr(out, "Content-Length: 7\r\n") != NULL, "%s", out);
	cr_assert_null(strstr(out, "Transfer-Encoding"), "%s", out);
	cr_assert(strstr(out, "\r\n\r\n{\"a\":1}") != NULL, "%s", out);
	cr_assert_eq(strlen(strstr(out, "\r\n\r\n")), 4 + 7, "%s", out);
}

Test(downstream_h1, an_http10_client_gets_the_body_ended_by_the_close)
{
	struct session	*s = request("GET /v1/models HTTP/1.0\r\n\r\n");
	const char	*out;
	int		 eof;

	head(s, "text/event-stream", -1);
	body(s, "data: a\n\n");
	session_on_response_complete(s);
	out = output(&eof);
	cr_assert(strncmp(out, "HTTP/1.0 200 OK\r\n", 17) == 0, "%s", out);
	cr_assert(strstr(out, "Connection: close\r\n") != NULL, "%s", out);
	cr_assert_null(strstr(out, "Transfer-Encoding"), "%s", out);
	cr_assert(strstr(out, "\r\n\r\ndata: a\n\n") != NULL, "%s", out);
	cr_assert(eof, "the close ends the body");
}

Test(downstream_h1, a_head_answer_names_the_length_and_has_no_body)
{
	struct session	*s = request("HEAD /v1/models HTTP/1.1\r\nHost: a\r\n\r\n");
	const char	*out;
	int		 eof;

	head(s, "application/json", 42);
	session_on_response_complete(s);
	out = output(&eof);
	cr_assert(strstr(out, "Content-Length: 42\r\n") != NULL, "%s", out);
	cr_assert_eq(strlen(strstr(out, "\r\n\r\n")), 4, "no body: %s", out);
}

Test(downstream_h1, a_cancel_mid_stream_ends_with_an_sse_error_chunk)
{
	struct session	*s = request(GET11);
	const char	*out;
	int		 eof;

	head(s, "text/event-stream", -1);
	body(s, "data: a\n\n");
	session_upstream_closed(s, 0);
	out = output(&eof);
	cr_assert(strstr(out, "event: error\ndata: ") != NULL, "%s", out);
	cr_assert(strstr(out, "\r\n0\r\n\r\n") != NULL, "the last chunk: %s",
	    out);
	cr_assert(!eof, "the answer ended cleanly: the connection stays");
}

Test(downstream_h1, a_length_answer_cut_short_closes_the_connection)
{
	struct session	*s = request(GET11);
	const char	*out;
	int		 eof;

	head(s, "text/event-stream", 100);
	body(s, "data: a\n\n");
	session_upstream_closed(s, 0);
	out = output(&eof);
	cr_assert_null(strstr(out, "event: error"), "no room after the "
	    "announced length: %s", out);
	cr_assert(eof, "only the close tells the client it was cut");
}

Test(downstream_h1, a_trailers_only_head_has_an_empty_body)
{
	struct session	*s = request(GET11);
	struct downstream_head h = { .status = 200, .content_length = 0,
	    .trailers_only = 1 };
	const char	*out;
	int		 eof;

	downstream_head_add(&h, "grpc-status", "4");
	c->proto->send_head(s, &h);
	out = output(&eof);
	cr_assert(strstr(out, "Content-Length: 0\r\n") != NULL, "%s", out);
	cr_assert(strstr(out, "grpc-status: 4\r\n") != NULL, "%s", out);
}
