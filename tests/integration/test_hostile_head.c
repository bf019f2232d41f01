/* test_hostile_head: request heads the proxy must take apart rather than
 * pass on (issue 19, part A; issues 14 and 18). Each test drives exact
 * bytes over a real socket to a proxy in front of the mock and asserts
 * what reached the mock (head, target, route) and what the client got:
 *
 * - a trailer section never joins the head (no field, no request id, no
 *   authentication), and the record counts the dropped fields;
 * - limits.max_header_fields (431 for a request, 502 for a response);
 * - header_timeout_ms is a deadline for head and body, not an idle timer;
 * - a fragment is cut from the target; the absolute form is served by its
 *   path and its authority never picks where the request goes;
 * - X-Forwarded-For and Forwarded: append, replace, off, and a chain kept
 *   across two hops;
 * - Upgrade: h2c answered in HTTP/1.1 (raw, curl --http2, the JDK
 *   HttpClient), WebSocket still refused;
 * - the HTTP/2 preface on an HTTP/1.1 listener: a clear 400 and an honest
 *   record (raw, curl --http2-prior-knowledge). */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/harness.h"

TestSuite(hostile_head, .timeout = 90);

/* ---- helpers ---- */

/* A proxy "edge" routing everything to port; extra goes after the routes
 * (",\"limits\":{...}" and the like), listen is the listen array. */
static struct hproc *
proxy_with(int port, const char *listen, const char *extra)
{
	struct hproc	*p;

	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":%s,"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]%s}",
	    listen ? listen : "[{\"address\":\"127.0.0.1:0\"}]", port,
	    extra ? extra : "");
	hassert(p != NULL, "the proxy did not start");
	return p;
}

static struct hconn *
connect_port(int port)
{
	struct hconn	*c = hconn_connect("127.0.0.1", port);

	hassert(c != NULL, "cannot connect to port %d", port);
	return c;
}

/* Sends raw bytes on a fresh connection, reads one whole response. */
static struct hresp *
send_raw(int port, const char *raw, size_t len)
{
	struct hconn	*c = connect_port(port);
	struct hresp	*r;

	hassert(hconn_send(c, raw, len) == 0, "send failed");
	r = hconn_read_response(c, 5000);
	hassert(r != NULL, "no whole answer to: %.*s", (int)len, raw);
	return r;
}

/* The echo of a 200 from the mock's /debug/echo. */
static cJSON *
echo_of(struct hresp *r)
{
	cJSON	*j;

	hassert(r->status == 200, "status %d: %s", r->status, r->body);
	hassert(hresp_header(r, "Via") != NULL, "not from the upstream");
	j = hresp_json(r);
	hassert(j != NULL && cJSON_IsArray(hjson_get(j, "headers")),
	    "not an echo: %s", r->body);
	return j;
}

/* The first value the upstream received for a field, or "(none)". */
static const char *
echo_header(const cJSON *j, const char *name)
{
	const char	*v = hecho_header(j, name);

	return v != NULL ? v : "(none)";
}

static const char *
jstr(const cJSON *obj, const char *path)
{
	const char	*v = obj ? hjson_str(obj, path) : NULL;

	return v ? v : "(missing)";
}

/* The error code of a proxy's JSON error answer. */
static const char *
error_code(struct hresp *r)
{
	return jstr(hresp_json(r), "error.code");
}

static void
stop_clean(struct hproc *p)
{
	int	 st = hproc_stop(p, 0);

	hassert(st == 0, "the proxy exited with status %d", st);
}

static const char *
sha_hex(const char *s)
{
	unsigned char	 h[SHA256_DIGEST_LENGTH];
	char		*out = hkeep(malloc(2 * SHA256_DIGEST_LENGTH + 1));
	int		 i;

	SHA256((const unsigned char *)s, strlen(s), h);
	for (i = 0; i < SHA256_DIGEST_LENGTH; i++)
		sprintf(out + 2 * i, "%02x", h[i]);
	return out;
}

/* Runs a shell command line, its standard output into out (harness-owned);
 * returns its exit status, or -1 when it did not run. */
static int
run_cmd(const char *cmd, const char **out)
{
	FILE	*f;
	char	*buf = hkeep(calloc(1, 65536));
	size_t	 n = 0, k;
	int	 st;

	if ((f = popen(cmd, "r")) == NULL)
		return -1;
	while (n < 65535 && (k = fread(buf + n, 1, 65535 - n, f)) > 0)
		n += k;
	st = pclose(f);
	*out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- trailers ---- */

#define CHUNKED_ECHO "POST /debug/echo HTTP/1.1\r\nHost: a\r\n" \
	"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" \
	"2\r\n{}\r\n0\r\n"

Test(hostile_head, trailer_fields_never_reach_the_head)
{
	static const char req[] = CHUNKED_ECHO
	    "X-Whatever: 1\r\nX-Request-Id: from-the-trailer\r\n"
	    "Content-Length: 999\r\nHost: elsewhere\r\n\r\n";
	struct hproc	*m, *p;
	struct hresp	*r;
	cJSON		*j, *rec;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_with(mport, NULL, NULL);
	r = send_raw(hproxy_port(p, 0), req, sizeof(req) - 1);
	j = echo_of(r);
	hassert(hecho_count(j, "X-Whatever") == 0, "a trailer reached the "
	    "upstream's head: %s", hjson_print(j));
	hassert(strcmp(echo_header(j, "X-Request-Id"), "from-the-trailer")
	    != 0, "a trailer named the request: %s", hjson_print(j));
	hassert(strcmp(jstr(j, "body"), "{}") == 0, "body %s", jstr(j, "body"));
	hassert(strcmp(echo_header(j, "Content-Length"), "2") == 0,
	    "framing from a trailer: %s", hjson_print(j));
	hassert(hecho_count(j, "Host") == 1 && strcmp(echo_header(j, "Host"),
	    hstrf("127.0.0.1:%d", mport)) == 0, "%s", hjson_print(j));
	hassert(strcmp(hresp_header(r, "X-Request-Id"), "from-the-trailer")
	    != 0, "the answer carries the trailer's request id");
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL, "no request record");
	hassert(strcmp(jstr(rec, "request_id"), "from-the-trailer") != 0,
	    "%s", hjson_print(rec));
	hassert(hjson_num(rec, "trailers_dropped", 0) == 4,
	    "the record does not count 4 dropped trailer fields: %s",
	    hjson_print(rec));
	/* The mock's record may be read a moment after its answer. */
	hassert(hproc_wait_record(m, "mock_request", NULL, NULL, 0) != NULL);
	hassert(hproc_count(m, "mock_request") == 1);
	stop_clean(p);
}

/* A request without trailers has no trailers_dropped member at all. */
Test(hostile_head, no_trailer_no_record_member)
{
	static const char req[] = CHUNKED_ECHO "\r\n";
	struct hproc	*p;
	cJSON		*rec;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_with(mport, NULL, NULL);
	echo_of(send_raw(hproxy_port(p, 0), req, sizeof(req) - 1));
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL && hjson_get(rec, "trailers_dropped") == NULL,
	    "%s", hjson_print(rec));
	stop_clean(p);
}

/* A trailer section is bounded by max_header_fields like a head. */
Test(hostile_head, too_many_trailer_fields_are_431)
{
	char		*req = hkeep(malloc(6 * 200 + 512)), *o = req;
	struct hproc	*m, *p;
	struct hresp	*r;
	int		 mport, i;

	m = hmock_fast(&mport);
	p = proxy_with(mport, NULL, ",\"limits\":{\"max_header_fields\":20}");
	o += sprintf(o, "%s", CHUNKED_ECHO);
	for (i = 0; i < 21; i++)
		o += sprintf(o, "t: 1\r\n");
	sprintf(o, "\r\n");
	r = send_raw(hproxy_port(p, 0), req, strlen(req));
	hassert(r->status == 431 && strcmp(error_code(r),
	    "too_many_header_fields") == 0, "status %d: %s", r->status,
	    r->body);
	hsleep_ms(100);
	hassert(hproc_count(m, "mock_request") == 0, "it reached the mock");
	/* 20 trailer fields pass, all dropped. */
	o = req + strlen(CHUNKED_ECHO);
	for (i = 0; i < 20; i++)
		o += sprintf(o, "t: 1\r\n");
	sprintf(o, "\r\n");
	echo_of(send_raw(hproxy_port(p, 0), req, strlen(req)));
	stop_clean(p);
}

/* A client key sent only as a trailer never authenticates. */
Test(hostile_head, trailer_authorization_does_not_authenticate)
{
	static const char with_trailer[] = CHUNKED_ECHO
	    "Authorization: Bearer sk-team-a\r\n\r\n";
	static const char in_head[] = "POST /debug/echo HTTP/1.1\r\nHost: a\r\n"
	    "Authorization: Bearer sk-team-a\r\n"
	    "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n2\r\n{}\r\n0\r\n\r\n";
	struct hproc	*m, *p;
	struct hresp	*r;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_with(mport, NULL, hstrf(",\"clients\":{\"keys\":[{\"name\":"
	    "\"team-a\",\"key_sha256\":\"%s\"}]}", sha_hex("sk-team-a")));
	r = send_raw(hproxy_port(p, 0), with_trailer, sizeof(with_trailer) - 1);
	hassert(r->status == 401, "a trailer Authorization got status %d: %s",
	    r->status, r->body);
	hsleep_ms(100);
	hassert(hproc_count(m, "mock_request") == 0, "it reached the mock");
	/* The same key in the head passes: the refusal was the trailer's. */
	r = send_raw(hproxy_port(p, 0), in_head, sizeof(in_head) - 1);
	hassert(r->status == 200, "status %d: %s", r->status, r->body);
	stop_clean(p);
}

/* ---- max_header_fields ---- */

/* A GET /debug/echo with n extra one-byte fields "x: 1". */
static const char *
many_fields(int n)
{
	char	*buf = hkeep(malloc((size_t)n * 6 + 128)), *o = buf;
	int	 i;

	o += sprintf(o, "GET /debug/echo HTTP/1.1\r\nHost: a\r\n");
	for (i = 0; i < n; i++)
		o += sprintf(o, "x: 1\r\n");
	sprintf(o, "\r\n");
	return buf;
}

Test(hostile_head, five_thousand_fields_are_431)
{
	const char	*req = many_fields(5000);
	struct hproc	*m, *p;
	struct hresp	*r;
	cJSON		*rec;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_with(mport, NULL, NULL);
	hassert(strlen(req) < 32768, "the head must stay under "
	    "max_header_bytes to test the count (%zu)", strlen(req));
	r = send_raw(hproxy_port(p, 0), req, strlen(req));
	hassert(r->status == 431, "status %d: %s", r->status, r->body);
	hassert(strcmp(error_code(r), "too_many_header_fields") == 0, "%s",
	    r->body);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL && hjson_num(rec, "status", 0) == 431, "%s",
	    hjson_print(rec));
	hsleep_ms(100);
	hassert(hproc_count(m, "mock_request") == 0, "it reached the mock");
	/* 100 fields (Host and 99 more) is the default limit: served. */
	echo_of(send_raw(hproxy_port(p, 0), many_fields(99),
	    strlen(many_fields(99))));
	r = send_raw(hproxy_port(p, 0), many_fields(100),
	    strlen(many_fields(100)));
	hassert(r->status == 431, "101 fields: status %d", r->status);
	stop_clean(p);
}

Test(hostile_head, max_header_fields_is_configurable)
{
	struct hproc	*p;
	struct hresp	*r;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_with(mport, NULL, ",\"limits\":{\"max_header_fields\":5}");
	echo_of(send_raw(hproxy_port(p, 0), many_fields(4),
	    strlen(many_fields(4))));
	r = send_raw(hproxy_port(p, 0), many_fields(5), strlen(many_fields(5)));
	hassert(r->status == 431, "6 fields past a limit of 5: status %d",
	    r->status);
	stop_clean(p);
}

/* An upstream's response with more fields than the limit is a 502. */
Test(hostile_head, upstream_response_with_too_many_fields_is_502)
{
	struct hproc	*p;
	struct hconn	*c;
	struct hresp	*r;
	char		 buf[8192];
	char		*resp = hkeep(malloc(200 * 8 + 256)), *o = resp;
	int		 lfd, port, fd, i;
	cJSON		*rec;

	lfd = hnet_listen("127.0.0.1", &port);
	hassert(lfd >= 0);
	p = proxy_with(port, NULL, NULL);
	c = connect_port(hproxy_port(p, 0));
	hassert(hconn_send_str(c, hreq_build("GET", "/v1/models", NULL,
	    NULL)) == 0);
	fd = hnet_accept(lfd, 5000);
	hassert(fd >= 0, "the proxy did not connect upstream");
	hassert(hnet_recv_until(fd, buf, sizeof(buf), "\r\n\r\n", 5000) > 0);
	o += sprintf(o, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n");
	for (i = 0; i < 200; i++)
		o += sprintf(o, "y: 1\r\n");
	sprintf(o, "Content-Length: 2\r\n\r\n{}");
	hassert(hnet_send_str(fd, resp) == 0);
	r = hconn_read_response(c, 5000);
	hassert(r != NULL && r->status == 502, "status %d: %s",
	    r ? r->status : 0, r ? r->body : "");
	rec = hproc_wait_record(p, "cancel", NULL, NULL, 0);
	hassert(rec != NULL && strstr(jstr(rec, "message"),
	    "max_header_fields") != NULL, "%s", hjson_print(rec));
	close(fd);
	close(lfd);
	stop_clean(p);
}

/* ---- header_timeout_ms: a deadline for head and body ---- */

Test(hostile_head, a_body_trickled_a_byte_at_a_time_is_408_at_the_deadline)
{
	static const char head[] = "POST /debug/echo HTTP/1.1\r\nHost: a\r\n"
	    "Content-Type: application/json\r\nContent-Length: 60\r\n\r\n";
	struct hproc	*m, *p;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*rec;
	int64_t		 t0, dt;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_with(mport, NULL, ",\"limits\":{\"header_timeout_ms\":1000}");
	c = connect_port(hproxy_port(p, 0));
	t0 = hnow_ms();
	hassert(hconn_send(c, head, sizeof(head) - 1) == 0);
	/* A byte every 150 ms: each inside any idle allowance, the whole
	 * body (9 s) far past the deadline. */
	while (hnow_ms() - t0 < 9000) {
		if (hconn_send(c, " ", 1) == -1)
			break;
		if (hconn_fill(c, 150) > 0 || hconn_peer_closed(c))
			break;
	}
	dt = hnow_ms() - t0;
	r = hconn_read_response(c, 2000);
	hassert(r != NULL && r->status == 408, "status %d after %lld ms",
	    r ? r->status : 0, (long long)dt);
	hassert(dt >= 900 && dt < 2500 * hscale(), "408 after %lld ms, want "
	    "about 1000", (long long)dt);
	hassert(strcmp(error_code(r), "request_timeout") == 0, "%s", r->body);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL && hjson_num(rec, "status", 0) == 408, "%s",
	    hjson_print(rec));
	hassert(hproc_count(m, "mock_request") == 0);
	stop_clean(p);
}

/* The deadline of a kept-alive connection's second request starts with
 * its own first byte, not at the first request. */
Test(hostile_head, second_request_gets_its_own_deadline)
{
	struct hproc	*p;
	struct hconn	*c;
	struct hresp	*r;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_with(mport, NULL, ",\"limits\":{\"header_timeout_ms\":600}");
	c = connect_port(hproxy_port(p, 0));
	hassert(hconn_send_str(c, hreq_build("GET", "/debug/echo", NULL,
	    NULL)) == 0);
	r = hconn_read_response(c, 3000);
	hassert(r != NULL && r->status == 200);
	hsleep_ms(800);		/* idle: longer than the deadline */
	hassert(hconn_send_str(c, hreq_build("GET", "/debug/echo", NULL,
	    NULL)) == 0);
	r = hconn_read_response(c, 3000);
	hassert(r != NULL && r->status == 200, "status %d", r ? r->status : 0);
	stop_clean(p);
}

/* ---- the request target ---- */

Test(hostile_head, a_fragment_is_cut_from_the_target)
{
	static const char req1[] = "GET /debug/echo#frag HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char req2[] = "GET /debug/echo?a=1#f?b=2 HTTP/1.1\r\n"
	    "Host: a\r\n\r\n";
	struct hproc	*p;
	cJSON		*j, *rec;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_with(mport, NULL, NULL);
	j = echo_of(send_raw(hproxy_port(p, 0), req1, sizeof(req1) - 1));
	hassert(strcmp(jstr(j, "path"), "/debug/echo") == 0, "the upstream "
	    "got %s", jstr(j, "path"));
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(strcmp(jstr(rec, "path"), "/debug/echo") == 0, "%s",
	    hjson_print(rec));
	j = echo_of(send_raw(hproxy_port(p, 0), req2, sizeof(req2) - 1));
	hassert(strcmp(jstr(j, "path"), "/debug/echo?a=1") == 0, "the upstream "
	    "got %s", jstr(j, "path"));
	stop_clean(p);
}

Test(hostile_head, absolute_form_is_served_by_its_path)
{
	static const char req1[] = "GET http://other.example/debug/echo?x=1 "
	    "HTTP/1.1\r\nHost: other.example\r\n\r\n";
	static const char req2[] = "GET HTTPS://a:8443/debug/echo HTTP/1.1\r\n"
	    "Host: a\r\n\r\n";
	struct hproc	*p;
	cJSON		*j, *rec;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_with(mport, NULL, NULL);
	j = echo_of(send_raw(hproxy_port(p, 0), req1, sizeof(req1) - 1));
	hassert(strcmp(jstr(j, "path"), "/debug/echo?x=1") == 0,
	    "the upstream got the target %s", jstr(j, "path"));
	hassert(strcmp(echo_header(j, "Host"), hstrf("127.0.0.1:%d", mport))
	    == 0, "Host %s", echo_header(j, "Host"));
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(strcmp(jstr(rec, "path"), "/debug/echo") == 0, "%s",
	    hjson_print(rec));
	j = echo_of(send_raw(hproxy_port(p, 0), req2, sizeof(req2) - 1));
	hassert(strcmp(jstr(j, "path"), "/debug/echo") == 0, "%s",
	    jstr(j, "path"));
	stop_clean(p);
}

/* The SSRF case: an authority naming a server the test listens on is
 * never connected to; the request goes where its path routes. */
Test(hostile_head, absolute_form_authority_never_picks_the_upstream)
{
	struct hproc	*m, *p;
	const char	*req;
	int		 mport, lfd, tport, fd;

	m = hmock_fast(&mport);
	p = proxy_with(mport, NULL, NULL);
	lfd = hnet_listen("127.0.0.1", &tport);
	hassert(lfd >= 0);
	req = hstrf("GET http://127.0.0.1:%d/debug/echo HTTP/1.1\r\n"
	    "Host: 127.0.0.1:%d\r\n\r\n", tport, tport);
	echo_of(send_raw(hproxy_port(p, 0), req, strlen(req)));
	fd = hnet_accept(lfd, 300);
	hassert(fd < 0, "the proxy connected to the target's authority");
	hassert(hproc_count_match(m, "mock_request", "path", "/debug/echo")
	    == 1);
	close(lfd);
	stop_clean(p);
}

Test(hostile_head, absolute_form_with_userinfo_or_no_host_is_400)
{
	static const char req1[] = "GET http://user:pw@a/debug/echo HTTP/1.1\r\n"
	    "Host: a\r\n\r\n";
	static const char req2[] = "GET http:///debug/echo HTTP/1.1\r\n"
	    "Host: a\r\n\r\n";
	struct hproc	*m, *p;
	struct hresp	*r;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_with(mport, NULL, NULL);
	r = send_raw(hproxy_port(p, 0), req1, sizeof(req1) - 1);
	hassert(r->status == 400 && strcmp(error_code(r), "bad_target") == 0,
	    "status %d: %s", r->status, r->body);
	r = hhttp_exchange("127.0.0.1", hproxy_port(p, 0), req2, 5000);
	hassert(r != NULL && r->status == 400, "status %d",
	    r ? r->status : 0);
	hsleep_ms(100);
	hassert(hproc_count(m, "mock_request") == 0);
	stop_clean(p);
}

/* ---- X-Forwarded-For and Forwarded ---- */

#define FWD_REQ "GET /debug/echo HTTP/1.1\r\nHost: a\r\n" \
	"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.1\r\n" \
	"Forwarded: for=203.0.113.7\r\n\r\n"

Test(hostile_head, forwarded_append_replace_off)
{
	struct hproc	*p;
	cJSON		*j;
	int		 mport, pa, pr, po;

	hmock_fast(&mport);
	p = proxy_with(mport, "[{\"address\":\"127.0.0.1:0\"},"
	    "{\"address\":\"127.0.0.1:0\",\"forwarded\":\"replace\"},"
	    "{\"address\":\"127.0.0.1:0\",\"forwarded\":\"off\"}]", NULL);
	pa = hproc_listen_port(p, 0);
	pr = hproc_listen_port(p, 1);
	po = hproc_listen_port(p, 2);
	hassert(pa > 0 && pr > 0 && po > 0);

	j = echo_of(send_raw(pa, FWD_REQ, strlen(FWD_REQ)));
	hassert(hecho_count(j, "X-Forwarded-For") == 1 && strcmp(echo_header(j,
	    "X-Forwarded-For"), "203.0.113.7, 198.51.100.1, 127.0.0.1") == 0,
	    "append: %s", hjson_print(j));
	hassert(hecho_count(j, "Forwarded") == 1 && strcmp(echo_header(j,
	    "Forwarded"), "for=203.0.113.7, for=127.0.0.1;proto=http") == 0,
	    "append: %s", hjson_print(j));

	j = echo_of(send_raw(pr, FWD_REQ, strlen(FWD_REQ)));
	hassert(hecho_count(j, "X-Forwarded-For") == 1 && strcmp(echo_header(j,
	    "X-Forwarded-For"), "127.0.0.1") == 0, "replace: %s",
	    hjson_print(j));
	hassert(hecho_count(j, "Forwarded") == 1 && strcmp(echo_header(j,
	    "Forwarded"), "for=127.0.0.1;proto=http") == 0, "replace: %s",
	    hjson_print(j));

	j = echo_of(send_raw(po, FWD_REQ, strlen(FWD_REQ)));
	hassert(hecho_count(j, "X-Forwarded-For") == 2 && strcmp(echo_header(j,
	    "X-Forwarded-For"), "203.0.113.7") == 0, "off: %s",
	    hjson_print(j));
	hassert(strcmp(echo_header(j, "Forwarded"), "for=203.0.113.7") == 0,
	    "off: %s", hjson_print(j));
	j = echo_of(send_raw(po, hreq_build("GET", "/debug/echo", NULL, NULL),
	    strlen(hreq_build("GET", "/debug/echo", NULL, NULL))));
	hassert(hecho_count(j, "X-Forwarded-For") == 0 &&
	    hecho_count(j, "Forwarded") == 0, "off adds nothing: %s",
	    hjson_print(j));
	stop_clean(p);
}

/* An edge facing the internet replaces what the client wrote; the core
 * behind it appends, so the model sees the client and the edge. */
Test(hostile_head, forwarded_chain_across_two_hops)
{
	struct hproc	*core, *edge;
	cJSON		*j;
	int		 mport;

	hmock_fast(&mport);
	core = hproxy_startf("{\"hop\":\"core\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]}",
	    mport);
	hassert(core != NULL);
	edge = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\","
	    "\"forwarded\":\"replace\"}],"
	    "\"upstreams\":{\"core\":{\"url\":\"http://127.0.0.1:%d\","
	    "\"peer\":true}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"core\"}]}",
	    hproxy_port(core, 0));
	hassert(edge != NULL);
	j = echo_of(send_raw(hproxy_port(edge, 0), FWD_REQ, strlen(FWD_REQ)));
	hassert(strcmp(echo_header(j, "X-Forwarded-For"),
	    "127.0.0.1, 127.0.0.1") == 0, "%s", hjson_print(j));
	hassert(strcmp(echo_header(j, "Forwarded"), "for=127.0.0.1;proto=http, "
	    "for=127.0.0.1;proto=http") == 0, "%s", hjson_print(j));
	stop_clean(edge);
	stop_clean(core);
}

/* ---- Upgrade: h2c ---- */

Test(hostile_head, upgrade_h2c_is_answered_in_http11)
{
	static const char req[] = "GET /debug/echo HTTP/1.1\r\nHost: a\r\n"
	    "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
	    "HTTP2-Settings: AAMAAABkAAQAAP__\r\nX-Kept: yes\r\n\r\n";
	struct hproc	*p;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*j;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_with(mport, NULL, NULL);
	c = connect_port(hproxy_port(p, 0));
	hassert(hconn_send(c, req, sizeof(req) - 1) == 0);
	r = hconn_read_response(c, 5000);
	hassert(r != NULL);
	hassert(strncmp(r->head, "HTTP/1.1 200", 12) == 0, "%s", r->head);
	j = echo_of(r);
	hassert(hecho_count(j, "Upgrade") == 0 && hecho_count(j,
	    "HTTP2-Settings") == 0 && hecho_count(j, "Connection") == 0,
	    "h2c fields reached the upstream: %s", hjson_print(j));
	hassert(strcmp(echo_header(j, "X-Kept"), "yes") == 0);
	/* The connection carries on in HTTP/1.1. */
	hassert(hconn_send(c, req, sizeof(req) - 1) == 0);
	r = hconn_read_response(c, 5000);
	hassert(r != NULL && r->status == 200, "the second request failed");
	stop_clean(p);
}

Test(hostile_head, upgrade_websocket_is_refused_with_a_clear_error)
{
	static const char req[] = "GET /debug/echo HTTP/1.1\r\nHost: a\r\n"
	    "Connection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n";
	struct hproc	*m, *p;
	struct hresp	*r;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_with(mport, NULL, NULL);
	r = send_raw(hproxy_port(p, 0), req, sizeof(req) - 1);
	hassert(r->status == 400 && strcmp(error_code(r),
	    "upgrade_not_supported") == 0, "status %d: %s", r->status, r->body);
	hassert(strstr(jstr(hresp_json(r), "error.message"), "WebSocket")
	    != NULL, "%s", r->body);
	hsleep_ms(100);
	hassert(hproc_count(m, "mock_request") == 0);
	stop_clean(p);
}

Test(hostile_head, curl_http2_on_a_plain_listener_gets_http11)
{
	struct hproc	*p;
	const char	*out;
	int		 mport, st;

	if (access("/usr/bin/curl", X_OK) != 0)
		cr_skip_test("no curl");
	hmock_fast(&mport);
	p = proxy_with(mport, NULL, NULL);
	st = run_cmd(hstrf("/usr/bin/curl -sS --http2 -o /dev/null "
	    "-w '%%{http_code} %%{http_version}' http://127.0.0.1:%d/debug/echo",
	    hproxy_port(p, 0)), &out);
	hassert(st == 0, "curl exited %d: %s", st, out);
	hassert(strcmp(out, "200 1.1") == 0, "curl --http2 saw: %s", out);
	stop_clean(p);
}

Test(hostile_head, jdk_httpclient_default_gets_http11)
{
	static const char prog[] =
	    "import java.net.URI;\n"
	    "import java.net.http.*;\n"
	    "public class H2cProbe {\n"
	    "  public static void main(String[] a) throws Exception {\n"
	    "    HttpClient c = HttpClient.newHttpClient();\n"
	    "    HttpRequest q = HttpRequest.newBuilder(URI.create(a[0]))\n"
	    "        .POST(HttpRequest.BodyPublishers.ofString(\"{}\"))\n"
	    "        .header(\"Content-Type\", \"application/json\").build();\n"
	    "    HttpResponse<String> r = c.send(q,\n"
	    "        HttpResponse.BodyHandlers.ofString());\n"
	    "    System.out.println(r.statusCode() + \" \" + r.version());\n"
	    "    System.out.println(r.body());\n"
	    "  }\n"
	    "}\n";
	struct hproc	*p;
	const char	*out, *src;
	cJSON		*j;
	int		 mport, st;

	if (access("/usr/bin/java", X_OK) != 0)
		cr_skip_test("no java");
	hmock_fast(&mport);
	p = proxy_with(mport, NULL, NULL);
	src = htmp_write("H2cProbe.java", prog);
	st = run_cmd(hstrf("/usr/bin/java %s http://127.0.0.1:%d/debug/echo "
	    "2>&1", src, hproxy_port(p, 0)), &out);
	hassert(st == 0, "java exited %d: %s", st, out);
	hassert(strncmp(out, "200 HTTP_1_1\n", 13) == 0, "the JDK saw: %s", out);
	j = hkeep_json(cJSON_Parse(out + 13));
	hassert(j != NULL, "not an echo: %s", out);
	/* The JDK asked for h2c; the upstream never saw the upgrade. */
	hassert(hecho_count(j, "Upgrade") == 0 && hecho_count(j,
	    "HTTP2-Settings") == 0, "%s", hjson_print(j));
	hassert(strcmp(jstr(j, "body"), "{}") == 0, "%s", hjson_print(j));
	stop_clean(p);
}

/* ---- the HTTP/2 preface on an HTTP/1.1-only listener ---- */

/* A listener that takes HTTP/1.1 alone: the preface is not HTTP/2 here
 * (listeners take both by default: test_h2.c). */
#define H1_ONLY "[{\"address\":\"127.0.0.1:0\",\"protocols\":[\"http/1.1\"]}]"


Test(hostile_head, h2_preface_gets_a_clear_400_and_an_honest_record)
{
	static const char pri[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	struct hproc	*m, *p;
	struct hresp	*r;
	cJSON		*rec;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_with(mport, H1_ONLY, NULL);
	r = send_raw(hproxy_port(p, 0), pri, sizeof(pri) - 1);
	hassert(r->status == 400 && strcmp(error_code(r), "http2_not_enabled")
	    == 0, "status %d: %s", r->status, r->body);
	hassert(strstr(jstr(hresp_json(r), "error.message"), "HTTP/2") != NULL,
	    "%s", r->body);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL && hjson_num(rec, "status", 0) == 400);
	hassert(strcmp(jstr(rec, "method"), "PRI") == 0, "the record says "
	    "%s", hjson_print(rec));
	hsleep_ms(100);
	hassert(hproc_count(m, "mock_request") == 0);
	stop_clean(p);
}

/* A request refused before its head ends names its own method. */
Test(hostile_head, early_refusal_records_the_real_method)
{
	static const char req[] = "POST /debug/echo HTTP/1.1\r\nHost: a\r\n"
	    "X Bad: 1\r\n\r\n";
	struct hproc	*p;
	struct hresp	*r;
	cJSON		*rec;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_with(mport, H1_ONLY, NULL);
	r = send_raw(hproxy_port(p, 0), req, sizeof(req) - 1);
	hassert(r->status == 400);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL && strcmp(jstr(rec, "method"), "POST") == 0,
	    "%s", hjson_print(rec));
	stop_clean(p);
}

Test(hostile_head, curl_http2_prior_knowledge_gets_a_clear_answer)
{
	struct hproc	*p;
	const char	*out;
	cJSON		*rec;
	int		 mport, st;

	if (access("/usr/bin/curl", X_OK) != 0)
		cr_skip_test("no curl");
	hmock_fast(&mport);
	p = proxy_with(mport, H1_ONLY, NULL);
	st = run_cmd(hstrf("/usr/bin/curl -sS --http2-prior-knowledge "
	    "http://127.0.0.1:%d/v1/models 2>&1", hproxy_port(p, 0)), &out);
	/* curl cannot read an HTTP/1.1 answer on an h2 connection: it fails,
	 * fast, instead of hanging; the proxy logs what it was. */
	hassert(st != 0, "curl succeeded: %s", out);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL && hjson_num(rec, "status", 0) == 400 &&
	    strcmp(jstr(rec, "method"), "PRI") == 0, "%s", hjson_print(rec));
	stop_clean(p);
}
