/* test_limits: the limits a client runs into before anything reaches the
 * model: max_header_bytes (431), max_body_bytes (413, also with
 * Expect: 100-continue and chunked bodies), header_timeout_ms (408, or a
 * plain close when nothing arrived) and max_connections (503); each answer
 * has a JSON error body, reaches no upstream, and the proxy serves on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "tests/integration/harness.h"

TestSuite(limits, .timeout = 60);

/* ---- helpers ---- */

/* A proxy "edge" in front of the mock with the given "limits" object. */
static struct hproc *
proxy_limits(int mport, const char *limits)
{
	struct hproc	*p;

	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"limits\":%s,"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]}",
	    limits, mport);
	hassert(p != NULL, "the proxy did not start");
	return p;
}

static struct hconn *
connect_proxy(struct hproc *p)
{
	struct hconn	*c = hconn_connect("127.0.0.1", hproxy_port(p, 0));

	hassert(c != NULL, "cannot connect to the proxy");
	return c;
}

/* Checks r is a proxy error: status, JSON body with error.code, and a
 * Content-Length that matches. */
static void
check_error(struct hresp *r, int status, const char *code)
{
	cJSON	*j;

	hassert(r != NULL, "no response");
	hassert(r->status == status, "status %d, want %d: %s", r->status,
	    status, r->body);
	hassert(r->complete, "the error body was cut short");
	hassert(hresp_header(r, "Content-Type") != NULL &&
	    strncmp(hresp_header(r, "Content-Type"), "application/json", 16)
	    == 0, "head: %s", r->head);
	hassert(hresp_header(r, "Content-Length") != NULL &&
	    (size_t)atol(hresp_header(r, "Content-Length")) == r->body_len,
	    "head: %s", r->head);
	j = hresp_json(r);
	hassert(j != NULL, "not JSON: %s", r->body);
	hassert(hjson_str(j, "error.message") != NULL, "%s", r->body);
	hassert(hjson_str(j, "error.code") != NULL &&
	    strcmp(hjson_str(j, "error.code"), code) == 0,
	    "code %s, want %s", hjson_str(j, "error.code"), code);
}

/* A string of n copies of ch (harness-owned). */
static const char *
repeat(char ch, size_t n)
{
	char	*s = hkeep(malloc(n + 1));

	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

/* A plain request still works: the proxy serves on after a refusal. */
static void
check_still_serving(struct hproc *p)
{
	struct hconn	*c = connect_proxy(p);
	struct hresp	*r;

	hassert(hconn_send_str(c, hreq_build("GET", "/debug/echo", NULL,
	    NULL)) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200, "the proxy stopped serving");
	hconn_free(c);
}

/* The record of the refused request: status, outcome error. */
static void
check_refused_record(struct hproc *p, int status)
{
	cJSON	*rec;

	rec = hproc_wait_record(p, "request", "status", hstrf("%d", status),
	    0);
	hassert(rec != NULL, "no request record with status %d", status);
	hassert(strcmp(hjson_str(rec, "outcome"), "error") == 0, "%s",
	    hjson_print(rec));
	hassert(hjson_str(rec, "request_id") != NULL &&
	    *hjson_str(rec, "request_id") != '\0', "%s", hjson_print(rec));
}

/* Stops the proxy with SIGTERM; it must exit 0 (under CP_VALGRIND=1 that
 * also means no memory errors or definite leaks). */
static void
stop_clean(struct hproc *p)
{
	int	 st = hproc_stop(p, 0);

	hassert(st == 0, "the proxy exited with status %d", st);
}

/* ---- max_header_bytes ---- */

Test(limits, header_too_large_is_431)
{
	const char *const big[] = { hstrf("X-Big: %s", repeat('a', 2000)),
	    NULL };
	const char	*many[41];
	struct hproc	*m, *p;
	struct hconn	*c;
	struct hresp	*r;
	int		 mport, i;

	m = hmock_fast(&mport);
	p = proxy_limits(mport, "{\"max_header_bytes\":1024}");

	/* One field over the limit. */
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hreq_build("GET", "/debug/echo", big,
	    NULL)) == 0);
	r = hconn_read_response(c, 0);
	check_error(r, 431, "header_too_large");
	hassert(hresp_header(r, "Connection") != NULL &&
	    strcasecmp(hresp_header(r, "Connection"), "close") == 0,
	    "head: %s", r->head);
	hassert(hconn_wait_closed(c, 0) == HNET_FIN, "closed after a 431");
	check_refused_record(p, 431);

	/* Many small fields that add up. */
	for (i = 0; i < 40; i++)
		many[i] = hstrf("X-Field-%02d: %s", i, repeat('b', 30));
	many[40] = NULL;
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hreq_build("GET", "/debug/echo", many,
	    NULL)) == 0);
	check_error(hconn_read_response(c, 0), 431, "header_too_large");

	/* A request target over the limit. */
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hreq_build("GET", hstrf("/debug/echo?q=%s",
	    repeat('c', 1500)), NULL, NULL)) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && (r->status == 431 || r->status == 414),
	    "long target: %d", r ? r->status : 0);

	/* Well under the limit passes; nothing refused reached the mock. */
	check_still_serving(p);
	hassert(hproc_wait_record(m, "mock_request", NULL, NULL, 0) != NULL);
	hsleep_ms(50);
	hassert(hproc_count(m, "mock_request") == 1, "the mock got %d",
	    hproc_count(m, "mock_request"));
	stop_clean(p);
}

/* ---- max_body_bytes ---- */

Test(limits, body_too_large_is_413)
{
	struct hproc	*m, *p;
	struct hconn	*c;
	struct hresp	*r;
	const char	*at_limit = hstrf("{\"x\":\"%s\"}", repeat('d', 56));
	int		 mport;

	hassert(strlen(at_limit) == 64);
	m = hmock_fast(&mport);
	p = proxy_limits(mport, "{\"max_body_bytes\":64}");

	/* Content-Length over the limit: refused from the head alone. */
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hreq_build("POST", "/debug/echo", NULL,
	    hstrf("{\"x\":\"%s\"}", repeat('e', 100)))) == 0);
	r = hconn_read_response(c, 0);
	check_error(r, 413, "body_too_large");
	hassert(hconn_wait_closed(c, 0) == HNET_FIN, "closed after a 413");
	check_refused_record(p, 413);

	/* Exactly at the limit passes, intact. */
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hreq_build("POST", "/debug/echo", NULL,
	    at_limit)) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200, "at the limit: %d",
	    r ? r->status : 0);
	hassert(strcmp(hjson_str(hresp_json(r), "body"), at_limit) == 0);
	hassert(hproc_wait_record(m, "mock_request", NULL, NULL, 0) != NULL);
	hsleep_ms(50);
	hassert(hproc_count(m, "mock_request") == 1);
}

Test(limits, chunked_body_too_large_is_413)
{
	const char *const hdrs[] = { "Transfer-Encoding: chunked",
	    "Content-Type: application/json", NULL };
	struct hproc	*m, *p;
	struct hconn	*c;
	const char	*chunk = repeat('f', 30);
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_limits(mport, "{\"max_body_bytes\":64}");
	c = connect_proxy(p);
	/* 3 x 30 bytes: over the limit at the third chunk. */
	hassert(hconn_send_str(c, hstrf("%s1e\r\n%s\r\n1e\r\n%s\r\n1e\r\n%s"
	    "\r\n0\r\n\r\n", hreq_build("POST", "/debug/echo", hdrs, NULL),
	    chunk, chunk, chunk)) == 0);
	check_error(hconn_read_response(c, 0), 413, "body_too_large");
	check_refused_record(p, 413);
	hsleep_ms(50);
	hassert(hproc_count(m, "mock_request") == 0);
	check_still_serving(p);
}

Test(limits, expect_100_continue_over_the_limit_gets_413_without_100)
{
	const char *const hdrs[] = { "Expect: 100-continue",
	    "Content-Type: application/json", "Content-Length: 1000", NULL };
	const char *const ok_hdrs[] = { "Expect: 100-continue",
	    "Content-Type: application/json", "Content-Length: 10", NULL };
	struct hproc	*m, *p;
	struct hconn	*c;
	struct hresp	*r;
	ssize_t		 off;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_limits(mport, "{\"max_body_bytes\":64}");
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hreq_build("POST", "/debug/echo", hdrs,
	    NULL)) == 0);
	/* The first bytes back are the final answer, never an interim 100. */
	hassert(hconn_read_until(c, "\r\n", 0) > 0);
	hassert(strncmp(hconn_data(c, NULL), "HTTP/1.1 413 ", 13) == 0,
	    "got: %s", hconn_data(c, NULL));
	r = hconn_read_response(c, 0);
	check_error(r, 413, "body_too_large");
	hassert(strstr(r->head, "100 Continue") == NULL);
	hassert(hconn_wait_closed(c, 0) == HNET_FIN,
	    "the unsent body cannot follow: the connection closes");

	/* Within the limit: 100 Continue, then the answer. */
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hreq_build("POST", "/debug/echo", ok_hdrs,
	    NULL)) == 0);
	off = hconn_read_until(c, "\r\n\r\n", 0);
	hassert(off > 0 && strncmp(hconn_data(c, NULL),
	    "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0, "got: %s",
	    hconn_data(c, NULL));
	hconn_consume(c, (size_t)off);
	hassert(hconn_send_str(c, "{\"a\":\"bc\"}") == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200);
	hassert(strcmp(hjson_str(hresp_json(r), "body"), "{\"a\":\"bc\"}") == 0,
	    "%s", r->body);
	/* The mock's record may trail the answer: wait for it, then count. */
	hassert(hproc_wait_record(m, "mock_request", NULL, NULL, 0) != NULL);
	hsleep_ms(100);
	hassert(hproc_count(m, "mock_request") == 1);
}

/* ---- header_timeout_ms ---- */

Test(limits, header_timeout_is_408)
{
	struct hproc	*m, *p;
	struct hconn	*c;
	struct hresp	*r;
	int64_t		 t0, dt;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_limits(mport, "{\"header_timeout_ms\":300}");

	/* Half a head, then nothing. */
	c = connect_proxy(p);
	t0 = hnow_ms();
	hassert(hconn_send_str(c, "POST /debug/echo HTTP/1.1\r\nHost: a\r\n"
	    "Content-Type: appl") == 0);
	r = hconn_read_response(c, 2000);
	dt = hnow_ms() - t0;
	check_error(r, 408, "request_timeout");
	hassert(dt >= 250 && dt < 1500 * hscale(), "408 after %lld ms",
	    (long long)dt);
	hassert(hresp_header(r, "Connection") != NULL &&
	    strcasecmp(hresp_header(r, "Connection"), "close") == 0);
	hassert(hconn_wait_closed(c, 0) == HNET_FIN);
	check_refused_record(p, 408);

	/* A whole head but only part of the body. */
	c = connect_proxy(p);
	hassert(hconn_send_str(c, "POST /debug/echo HTTP/1.1\r\nHost: a\r\n"
	    "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
	    "{\"partial\":") == 0);
	check_error(hconn_read_response(c, 2000), 408, "request_timeout");
	hassert(hconn_wait_closed(c, 0) == HNET_FIN);

	hsleep_ms(50);
	hassert(hproc_count(m, "mock_request") == 0,
	    "an incomplete request reached the mock");
	check_still_serving(p);
	stop_clean(p);
}

Test(limits, header_trickle_does_not_extend_the_deadline)
{
	const char	*req = "GET /debug/echo HTTP/1.1\r\nHost: a\r\n"
			    "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	struct hproc	*m, *p;
	struct hconn	*c;
	struct hresp	*r;
	int64_t		 t0;
	size_t		 i;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_limits(mport, "{\"header_timeout_ms\":400}");
	c = connect_proxy(p);
	t0 = hnow_ms();
	/* One byte every 50 ms would take over 4 s. */
	for (i = 0; i < strlen(req) && hnow_ms() - t0 < 3000; i++) {
		if (hconn_send(c, req + i, 1) == -1)
			break;
		if (hconn_fill(c, 50) > 0 || hconn_peer_closed(c))
			break;
	}
	hassert(hnow_ms() - t0 < 1500 * hscale(), "no answer after %lld ms "
	    "of trickle", (long long)(hnow_ms() - t0));
	r = hconn_read_response(c, 1000);
	check_error(r, 408, "request_timeout");
	hassert(hproc_count(m, "mock_request") == 0);
}

Test(limits, silent_connection_is_closed_without_an_answer)
{
	struct hproc	*m, *p;
	struct hconn	*c;
	size_t		 len = 1;
	int64_t		 t0, dt;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_limits(mport, "{\"header_timeout_ms\":300}");
	c = connect_proxy(p);
	t0 = hnow_ms();
	hassert(hconn_wait_closed(c, 3000) == HNET_FIN,
	    "a connection that sends nothing is closed");
	dt = hnow_ms() - t0;
	hassert(dt >= 250, "closed after %lld ms", (long long)dt);
	hconn_data(c, &len);
	hassert(len == 0, "no answer is possible, none is sent");
	hsleep_ms(50);
	hassert(hproc_count(p, "request") == 0,
	    "no request, no request record");
	hassert(hproc_count(m, "mock_request") == 0);
	check_still_serving(p);
}

/* ---- max_connections ---- */

Test(limits, max_connections_is_503_and_the_proxy_serves_on)
{
	struct hproc	*p;
	struct hconn	*c1, *c2, *c3, *c4 = NULL;
	struct hresp	*r;
	int64_t		 t0;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_limits(mport, "{\"max_connections\":2}");

	/* Two connections, each proven accepted by an answer. */
	c1 = connect_proxy(p);
	c2 = connect_proxy(p);
	hassert(hconn_send_str(c1, hreq_build("GET", "/v1/models", NULL,
	    NULL)) == 0);
	r = hconn_read_response(c1, 0);
	hassert(r != NULL && r->status == 200);
	hassert(hconn_send_str(c2, hreq_build("GET", "/v1/models", NULL,
	    NULL)) == 0);
	r = hconn_read_response(c2, 0);
	hassert(r != NULL && r->status == 200);

	/* The third is refused at once, without sending anything. */
	c3 = connect_proxy(p);
	r = hconn_read_response(c3, 0);
	check_error(r, 503, "max_connections");
	hassert(hconn_wait_closed(c3, 0) == HNET_FIN);
	hassert(hproc_wait_record(p, "max_connections", NULL, NULL, 0) != NULL,
	    "the refusal is logged");

	/* The held connections still work. */
	hassert(hconn_send_str(c2, hreq_chat("mock-1", 1, NULL)) == 0);
	r = hconn_read_response(c2, 0);
	hassert(r != NULL && r->status == 200 &&
	    strstr(r->body, "[DONE]") != NULL);

	/* One leaves: a new client is served again. */
	hconn_close_fin(c1);
	t0 = hnow_ms();
	for (;;) {
		c4 = connect_proxy(p);
		hassert(hconn_send_str(c4, hreq_build("GET", "/debug/echo",
		    NULL, NULL)) == 0 || hconn_peer_closed(c4));
		r = hconn_read_response(c4, 0);
		if (r != NULL && r->status == 200)
			break;
		hassert(r == NULL || r->status == 503, "status %d", r->status);
		hassert(hnow_ms() - t0 < 3000 * hscale(),
		    "still refused after a connection closed");
		hconn_free(c4);
		hsleep_ms(50);
	}
	hassert(hjson_str(hresp_json(r), "path") != NULL);
	stop_clean(p);
}
