/* test_hostile: requests the proxy must refuse and upstreams that misbehave.
 *
 * hostile_request: one test per refused request shape (request smuggling
 * material: Content-Length and Transfer-Encoding conflicts and spellings,
 * obs-fold, bare LF, control bytes in fields, bad chunk sizes, Host,
 * versions, CONNECT, other target forms, Upgrade). Each must get a 4xx (501 for
 * a transfer coding it does not implement, 505 for a version), a JSON
 * error body, the connection closed after it, no byte after the answer,
 * and nothing forwarded: the mock behind the proxy sees no request at all
 * (no mock_request and no mock_bad_request record). Garbage that is not
 * HTTP may get a bare close instead. The proxy serves on afterwards.
 *
 * hostile_upstream: upstream faults not already covered by
 * test_cancel_upstream.c and test_tls.c: a stall and a reset through the
 * mock, a lying Content-Length, an endless or oversized response header
 * (the 64 KiB response-header limit: 502), broken chunk sizes, 101 and
 * endless 1xx answers, conflicting framing, and TLS handshakes that fail.
 * Each ends with the right record and error to the client, and the proxy
 * exits cleanly (0, so no leak under ASan or valgrind).
 *
 * hostile_body: JSON request bodies that readers could read differently
 * (duplicate members, NUL or control bytes in the model, too deep, not
 * JSON, trailing bytes, a content type that hides JSON) between two
 * upstreams, one for a model pattern and a catch-all: refused with a 400
 * naming why and forwarded nowhere, or routed by the model the server
 * reads.
 *
 * hostile_record: client bytes that are not UTF-8 reach the records as
 * U+FFFD; every record line is strict JSON (the harness checks each). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/integration/harness.h"

TestSuite(hostile_request, .timeout = 60);
TestSuite(hostile_upstream, .timeout = 60);

/* ---- a proxy in front of the mock ---- */

struct rig {
	struct hproc	*mock;
	struct hproc	*proxy;
	int		 mport;
};

/* A fast mock and a proxy "edge" (one worker) routing everything to it;
 * timeouts is the upstream's "timeouts_ms" object. */
static void
rig_start(struct rig *g, const char *timeouts)
{
	g->mock = hmock_start(&g->mport, "--first-token-ms", "5",
	    "--interval-ms", "5", "--tokens", "5", NULL);
	hassert(g->mock != NULL, "the mock did not start");
	g->proxy = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"limits\":{\"header_timeout_ms\":2000},"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\","
	    "\"timeouts_ms\":%s}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]}",
	    g->mport, timeouts ? timeouts : "{}");
	hassert(g->proxy != NULL, "the proxy did not start");
}

static struct hconn *
connect_proxy(struct hproc *p)
{
	struct hconn	*c = hconn_connect("127.0.0.1", hproxy_port(p, 0));

	hassert(c != NULL, "cannot connect to the proxy");
	return c;
}

/* Stops the proxy with SIGTERM; it must exit 0 (under CP_VALGRIND=1 or
 * ASan that also means no memory errors or leaks). */
static void
stop_clean(struct hproc *p)
{
	int	 st = hproc_stop(p, 0);

	hassert(st == 0, "the proxy exited with status %d", st);
}

/* The string at path, or "(missing)": safe to compare and print. */
static const char *
jstr(const cJSON *obj, const char *path)
{
	const char	*v = obj ? hjson_str(obj, path) : NULL;

	return v ? v : "(missing)";
}

/* Printable form of raw request bytes, for messages. */
static const char *
printable(const char *s, size_t n)
{
	char	*out = hkeep(malloc(n * 4 + 1)), *o = out;
	size_t	 i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\r')
			o += sprintf(o, "\\r");
		else if (ch == '\n')
			o += sprintf(o, "\\n");
		else if (ch == '\t')
			o += sprintf(o, "\\t");
		else if (ch < 0x20 || ch >= 0x7f)
			o += sprintf(o, "\\x%02x", ch);
		else
			*o++ = (char)ch;
	}
	*o = '\0';
	return out;
}

/* The mock saw nothing: no request and no unparsable bytes. */
static void
check_nothing_forwarded(struct rig *g, const char *what)
{
	hsleep_ms(100);
	hassert(hproc_count(g->mock, "mock_request") == 0,
	    "the upstream received a request for: %s", what);
	hassert(hproc_count(g->mock, "mock_bad_request") == 0,
	    "the upstream received bytes for: %s", what);
}

/* A plain request still works: the proxy serves on after a refusal. */
static void
check_still_serving(struct rig *g)
{
	struct hconn	*c = connect_proxy(g->proxy);
	struct hresp	*r;

	hassert(hconn_send_str(c, hreq_build("GET", "/debug/echo", NULL,
	    NULL)) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200, "the proxy stopped serving");
	hconn_free(c);
}

/* Whether status is in the 0-terminated list want. */
static int
status_in(int status, const int *want)
{
	for (; *want != 0; want++)
		if (*want == status)
			return 1;
	return 0;
}

static const char *
status_list(const int *want)
{
	const char	*s = "";

	for (; *want != 0; want++)
		s = hstrf("%s%s%d", s, *s ? " or " : "", *want);
	return s;
}

/*
 * Sends raw (len bytes, NULs allowed) on a fresh connection and checks the
 * refusal: a status from want with a JSON error body and Connection:
 * close, then the close itself and no byte after the answer; a request
 * record with that status and outcome "error"; nothing reached the mock;
 * the proxy serves on and exits cleanly. close_ok: a bare close with no
 * answer is also fine (garbage that is not HTTP).
 */
static void
refuse_check(const char *raw, size_t len, const int *want, int close_ok)
{
	struct rig	 g;
	struct hconn	*c;
	struct hresp	*r;
	const char	*shape = printable(raw, len), *conn;
	size_t		 left;
	cJSON		*j, *rec;
	int		 closed;

	rig_start(&g, NULL);
	c = connect_proxy(g.proxy);
	(void)hconn_send(c, raw, len);	/* it may close before all of it */
	r = hconn_read_head(c, 3000);
	if (r == NULL) {
		hassert(close_ok, "no answer (want %s) to: %s",
		    status_list(want), shape);
		closed = hconn_wait_closed(c, 0);
		hassert(closed != HNET_TIMEOUT, "neither an answer nor a close "
		    "for: %s", shape);
		check_nothing_forwarded(&g, shape);
		check_still_serving(&g);
		stop_clean(g.proxy);
		return;
	}
	hassert(hconn_read_body(c, r, 0) == 0, "the answer was cut short");
	hassert(status_in(r->status, want), "status %d, want %s, for: %s\n%s",
	    r->status, status_list(want), shape, r->body);
	hassert(hresp_header(r, "Content-Type") != NULL &&
	    strncmp(hresp_header(r, "Content-Type"), "application/json", 16)
	    == 0, "head: %s", r->head);
	j = hresp_json(r);
	hassert(j != NULL && hjson_str(j, "error.message") != NULL &&
	    hjson_str(j, "error.code") != NULL, "not a JSON error: %s",
	    r->body);
	hassert(hresp_header(r, "Via") == NULL, "the upstream answered this "
	    "(status %d, Via: %s): %s", r->status, hresp_header(r, "Via"),
	    shape);
	conn = hresp_header(r, "Connection");
	hassert(conn != NULL && strcasecmp(conn, "close") == 0,
	    "no Connection: close after a refusal: %s", r->head);
	closed = hconn_wait_closed(c, 0);
	hassert(closed != HNET_TIMEOUT, "the connection stayed open after "
	    "refusing: %s", shape);
	hconn_data(c, &left);
	hassert(left == 0, "%zu bytes after the refusal: %s", left,
	    printable(hconn_data(c, NULL), left));
	rec = hproc_wait_record(g.proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL, "no request record");
	hassert(hjson_num(rec, "status", 0) == r->status, "%s",
	    hjson_print(rec));
	hassert(hjson_str(rec, "outcome") != NULL &&
	    strcmp(jstr(rec, "outcome"), "error") == 0, "%s",
	    hjson_print(rec));
	hassert(hproc_count(g.proxy, "cancel") == 0, "a refusal is no cancel");
	check_nothing_forwarded(&g, shape);
	check_still_serving(&g);
	stop_clean(g.proxy);
}

/* One test per shape; the statuses that are right for it follow. */
#define REFUSE(name, raw, ...)						\
Test(hostile_request, name)						\
{									\
	static const char	 req[] = raw;				\
	static const int	 want[] = { __VA_ARGS__, 0 };		\
									\
	refuse_check(req, sizeof(req) - 1, want, 0);			\
}

/* The same, where a bare close is an acceptable answer too. */
#define REFUSE_OR_CLOSE(name, raw, ...)					\
Test(hostile_request, name)						\
{									\
	static const char	 req[] = raw;				\
	static const int	 want[] = { __VA_ARGS__, 0 };		\
									\
	refuse_check(req, sizeof(req) - 1, want, 1);			\
}

#define POST	"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n" \
		"Content-Type: application/json\r\n"
#define GET	"GET /v1/models HTTP/1.1\r\nHost: a\r\n"
/* A complete request hidden in a body: if the proxy framed the body
 * differently from what was meant, the mock would see "/smuggled". */
#define SMUGGLE	"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
#define CHUNKED_BODY "2\r\n{}\r\n0\r\n\r\n"

/* ---- Content-Length and Transfer-Encoding together ---- */

REFUSE(cl_and_te, POST "Content-Length: 13\r\n"
    "Transfer-Encoding: chunked\r\n\r\n" CHUNKED_BODY SMUGGLE, 400)
REFUSE(te_and_cl, POST "Transfer-Encoding: chunked\r\n"
    "Content-Length: 4\r\n\r\n" CHUNKED_BODY SMUGGLE, 400)
REFUSE(cl_and_te_identity, POST "Content-Length: 2\r\n"
    "Transfer-Encoding: identity\r\n\r\n{}" SMUGGLE, 400, 501)

/* ---- Content-Length ---- */

REFUSE(cl_duplicate_same, POST "Content-Length: 2\r\n"
    "Content-Length: 2\r\n\r\n{}", 400)
REFUSE(cl_duplicate_different, POST "Content-Length: 2\r\n"
    "Content-Length: 40\r\n\r\n{}" SMUGGLE, 400)
REFUSE(cl_list, POST "Content-Length: 2, 2\r\n\r\n{}", 400)
REFUSE(cl_plus, POST "Content-Length: +2\r\n\r\n{}", 400)
REFUSE(cl_hex, POST "Content-Length: 0x2\r\n\r\n{}", 400)
REFUSE(cl_negative, POST "Content-Length: -1\r\n\r\n{}", 400)
REFUSE(cl_space_inside, POST "Content-Length: 1 2\r\n\r\n{}", 400)
REFUSE(cl_empty, POST "Content-Length: \r\n\r\n{}", 400)
REFUSE(cl_overflow, POST
    "Content-Length: 99999999999999999999999999\r\n\r\n{}", 400)
/* Fits in 64 bits but not in int64_t: over max_body_bytes all the same,
 * so it must be 413 at once, from the head, like any other big length. */
REFUSE(cl_2_pow_63_is_413_at_once, POST
    "Content-Length: 9223372036854775808\r\n\r\n{}", 413)
REFUSE(cl_uint64_max_is_413_at_once, POST
    "Content-Length: 18446744073709551615\r\n\r\n{}", 413)
/* No 100 Continue for a body that will be refused. */
REFUSE(cl_uint64_max_with_expect_is_413_without_100, POST
    "Content-Length: 18446744073709551615\r\nExpect: 100-continue\r\n\r\n",
    413)

/* ---- Transfer-Encoding: only a single "chunked" ---- */

REFUSE(te_chunked_twice_in_a_list, POST
    "Transfer-Encoding: chunked, chunked\r\n\r\n"
    "5\r\n2\r\n{}\r\n0\r\n\r\n" SMUGGLE, 400, 501)
REFUSE(te_chunked_in_two_fields, POST "Transfer-Encoding: chunked\r\n"
    "Transfer-Encoding: chunked\r\n\r\n5\r\n2\r\n{}\r\n0\r\n\r\n" SMUGGLE,
    400, 501)
REFUSE(te_gzip_chunked_is_501, POST
    "Transfer-Encoding: gzip, chunked\r\n\r\n" CHUNKED_BODY, 501)
REFUSE(te_gzip_then_chunked_fields_is_501, POST
    "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    CHUNKED_BODY, 501)
/* RFC 9112 §6.3: chunked not last in a request: 400 and close (or 501
 * for the unknown coding; either way nothing is forwarded). */
REFUSE(te_chunked_gzip, POST "Transfer-Encoding: chunked, gzip\r\n\r\n"
    CHUNKED_BODY SMUGGLE, 400, 501)
REFUSE(te_x_chunked_is_501, POST "Transfer-Encoding: x-chunked\r\n\r\n"
    CHUNKED_BODY SMUGGLE, 501)
REFUSE(te_gzip_alone_is_501, POST "Transfer-Encoding: gzip\r\n\r\n"
    CHUNKED_BODY SMUGGLE, 501)
REFUSE(te_identity, POST "Transfer-Encoding: identity\r\n\r\n"
    CHUNKED_BODY SMUGGLE, 400, 501)
REFUSE(te_chunked_vtab, POST "Transfer-Encoding: chunked\x0b\r\n\r\n"
    CHUNKED_BODY SMUGGLE, 400, 501)
REFUSE(te_chunked_nul, POST "Transfer-Encoding: chunked\0\r\n\r\n"
    CHUNKED_BODY SMUGGLE, 400, 501)
REFUSE(te_chunkedx, POST "Transfer-Encoding: chunkedx\r\n\r\n"
    CHUNKED_BODY SMUGGLE, 400, 501)
REFUSE(te_quoted, POST "Transfer-Encoding: \"chunked\"\r\n\r\n"
    CHUNKED_BODY SMUGGLE, 400, 501)
REFUSE(te_empty, POST "Transfer-Encoding: \r\n\r\n" CHUNKED_BODY SMUGGLE,
    400, 501)
REFUSE(te_tab_before_colon, POST "Transfer-Encoding\t: chunked\r\n\r\n"
    CHUNKED_BODY SMUGGLE, 400)
REFUSE(te_space_before_colon, POST "Transfer-Encoding : chunked\r\n\r\n"
    CHUNKED_BODY SMUGGLE, 400)
REFUSE(te_name_with_space_inside, POST "Transfer Encoding: chunked\r\n\r\n"
    CHUNKED_BODY SMUGGLE, 400)
REFUSE(te_obs_folded, POST "Transfer-Encoding:\r\n chunked\r\n\r\n"
    CHUNKED_BODY SMUGGLE, 400)
/* RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing. */
REFUSE(te_in_http10, "POST /v1/chat/completions HTTP/1.0\r\nHost: a\r\n"
    "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    CHUNKED_BODY, 400)

/*
 * "Transfer-Encoding:<TAB>Chunked<TAB>" is one chunked coding (names are
 * case-insensitive, OWS is not part of the value: RFC 9112 §7, RFC 9110
 * §5.5), so accepting it is right as long as the body is read as chunked:
 * the upstream then gets exactly "{}" with a Content-Length and no
 * Transfer-Encoding, and never the request hidden after the body. A
 * refusal (4xx or 501, nothing forwarded) is fine too. What must never happen is
 * the chunk framing forwarded as body, or the hidden request forwarded.
 */
Test(hostile_request, te_tab_mixed_case_chunked_is_one_chunked_coding)
{
	static const char req[] = "POST /debug/echo HTTP/1.1\r\nHost: a\r\n"
	    "Content-Type: application/json\r\n"
	    "Transfer-Encoding:\tChunked \t\r\n\r\n" CHUNKED_BODY SMUGGLE;
	struct rig	 g;
	struct hconn	*c;
	struct hresp	*r;
	const cJSON	*h;
	cJSON		*j;
	int		 te = 0;

	rig_start(&g, NULL);
	c = connect_proxy(g.proxy);
	hassert(hconn_send(c, req, sizeof(req) - 1) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL, "no answer");
	if ((r->status >= 400 && r->status < 500) || r->status == 501) {
		check_nothing_forwarded(&g, "Transfer-Encoding:\\tChunked\\t");
	} else {
		hassert(r->status == 200, "status %d: %s", r->status, r->body);
		j = hresp_json(r);
		hassert(j != NULL, "not an echo: %s", r->body);
		hassert(hjson_str(j, "body") != NULL &&
		    strcmp(jstr(j, "body"), "{}") == 0,
		    "the upstream got the body %s", hjson_print(j));
		cJSON_ArrayForEach(h, hjson_get(j, "headers"))
			if (strcasecmp(cJSON_GetStringValue(cJSON_GetArrayItem(
			    h, 0)), "transfer-encoding") == 0)
				te++;
		hassert(te == 0, "Transfer-Encoding reached the upstream: %s",
		    hjson_print(j));
		/* The hidden request is a pipelined one now: answered as its
		 * own request or not at all, never inside the first. */
		hsleep_ms(200);
		hassert(hproc_count_match(g.mock, "mock_request", "path",
		    "/debug/echo") == 1);
	}
	stop_clean(g.proxy);
}

/* ---- line endings, folding, control bytes in fields ---- */

REFUSE(obs_fold_in_a_field, POST "X-Note: first\r\n second\r\n"
    "Content-Length: 2\r\n\r\n{}", 400)
REFUSE(obs_fold_with_tab, POST "X-Note: first\r\n\tsecond\r\n"
    "Content-Length: 2\r\n\r\n{}", 400)
REFUSE(bare_lf_everywhere, "GET /v1/models HTTP/1.1\nHost: a\n\n", 400)
REFUSE(bare_lf_after_a_field, GET "X-Note: a\nX-Other: b\r\n\r\n", 400)
REFUSE(bare_lf_ending_the_head, GET "X-Note: a\r\n\n", 400)
REFUSE(bare_cr_in_a_value, GET "X-Note: a\rb\r\n\r\n", 400)
REFUSE(bare_cr_ending_a_field, GET "X-Note: a\r\rX-Other: b\r\n\r\n", 400)
REFUSE(nul_in_a_value, GET "X-Note: a\0b\r\n\r\n", 400)
REFUSE(nul_in_a_name, GET "X-No\0te: a\r\n\r\n", 400)
REFUSE(del_in_a_name, GET "X-No\x7fte: a\r\n\r\n", 400)
REFUSE(space_before_colon, GET "X-Note : a\r\n\r\n", 400)
REFUSE(host_space_before_colon, "GET /v1/models HTTP/1.1\r\nHost : a\r\n\r\n",
    400)
/* A name that is not a token must not reach the upstream under another
 * name ("Authorization " is not "Authorization", so set_headers would not
 * replace it, and a lenient upstream would read it as one). */
REFUSE(authorization_space_before_colon, GET
    "Authorization : Bearer client-token\r\n\r\n", 400)
REFUSE(cl_space_before_colon, POST "Content-Length : 2\r\n\r\n{}", 400)
REFUSE(space_inside_a_name, GET "X Note: a\r\n\r\n", 400)
REFUSE(field_without_colon, GET "X-Note a\r\n\r\n", 400)
REFUSE(leading_whitespace_line, GET " X-Note: a\r\n\r\n", 400)
REFUSE(ctl_in_the_target, "GET /v1/mo\x01" "dels HTTP/1.1\r\nHost: a\r\n\r\n",
    400)
REFUSE(space_in_the_target, "GET /v1/mo dels HTTP/1.1\r\nHost: a\r\n\r\n",
    400)

/* Empty lines before a request line are allowed (RFC 9112 §2.2) and must
 * not end the head scan early: what follows is still checked. */
REFUSE(leading_crlf_then_obs_fold, "\r\n\r\n" GET "X-Note: a\r\n b\r\n\r\n",
    400)
REFUSE(leading_crlf_then_bare_lf, "\r\n\r\n" GET "X-Note: a\r\n\n", 400)
REFUSE(leading_crlf_then_bare_lf_mid_head, "\r\n\r\n" GET
    "X-Note: a\nX-Other: b\r\n\r\n", 400)

/* The same after a request on a kept-alive connection: the first is
 * answered, the second refused, and only the first reaches the mock. */
Test(hostile_request, pipelined_leading_crlf_then_obs_fold)
{
	static const char req[] = GET "\r\n" "\r\n\r\n"
	    GET "X-Note: a\r\n b\r\n\r\n";
	struct rig	 g;
	struct hconn	*c;
	struct hresp	*r;

	rig_start(&g, NULL);
	c = connect_proxy(g.proxy);
	hassert(hconn_send(c, req, sizeof(req) - 1) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200, "the first request failed");
	r = hconn_read_response(c, 0);
	hassert(r != NULL, "no answer to the second request");
	hassert(r->status == 400 && hresp_header(r, "Via") == NULL,
	    "status %d for a folded line after empty lines: %s", r->status,
	    r->body);
	hsleep_ms(100);
	hassert(hproc_count(g.mock, "mock_request") == 1, "%d requests "
	    "reached the mock", hproc_count(g.mock, "mock_request"));
	stop_clean(g.proxy);
}

/* ---- chunk sizes ---- */

REFUSE(chunk_size_not_hex, POST "Transfer-Encoding: chunked\r\n\r\n"
    "zz\r\n{}\r\n0\r\n\r\n", 400)
REFUSE(chunk_size_overflow, POST "Transfer-Encoding: chunked\r\n\r\n"
    "1ffffffffffffffff\r\n{}\r\n0\r\n\r\n", 400)
REFUSE(chunk_size_overflow_wraps_to_small, POST
    "Transfer-Encoding: chunked\r\n\r\n"
    "10000000000000002\r\n{}\r\n0\r\n\r\n" SMUGGLE, 400)
REFUSE(chunk_size_negative, POST "Transfer-Encoding: chunked\r\n\r\n"
    "-2\r\n{}\r\n0\r\n\r\n", 400)
REFUSE(chunk_size_0x, POST "Transfer-Encoding: chunked\r\n\r\n"
    "0x2\r\n{}\r\n0\r\n\r\n", 400)
REFUSE(chunk_size_empty, POST "Transfer-Encoding: chunked\r\n\r\n"
    "\r\n{}\r\n0\r\n\r\n", 400)
REFUSE(chunk_data_longer_than_its_size, POST
    "Transfer-Encoding: chunked\r\n\r\n1\r\n{}\r\n0\r\n\r\n", 400)
REFUSE(chunk_size_bare_lf, POST "Transfer-Encoding: chunked\r\n\r\n"
    "2\n{}\r\n0\r\n\r\n", 400)

/* ---- Host ---- */

REFUSE(host_missing, "GET /v1/models HTTP/1.1\r\nX-Note: a\r\n\r\n", 400)
REFUSE(host_duplicate, GET "Host: b\r\n\r\n", 400)
REFUSE(host_duplicate_same, GET "Host: a\r\n\r\n", 400)
/* RFC 9110 §7.2 / RFC 9112 §3.2: an invalid Host value is a 400 too. */
REFUSE(host_invalid_value, "GET /v1/models HTTP/1.1\r\nHost: a b/c\r\n\r\n",
    400)

/* ---- versions ---- */

/* An HTTP/0.9 request line has no version: 400 or 505. */
REFUSE_OR_CLOSE(http09_request_line, "GET /v1/models\r\n\r\n", 400, 505)
REFUSE(http20_is_505, "GET /v1/models HTTP/2.0\r\nHost: a\r\n\r\n", 505)
REFUSE(http30_is_505, "GET /v1/models HTTP/3.0\r\nHost: a\r\n\r\n", 505)
/* A minor version above 1 could be served as 1.1 (RFC 9110 §2.5 SHOULD);
 * this proxy refuses versions it does not know, which is also allowed. */
REFUSE(http12_is_505, "GET /v1/models HTTP/1.2\r\nHost: a\r\n\r\n", 505)
REFUSE(http_version_garbage, "GET /v1/models HTTP/1.x\r\nHost: a\r\n\r\n",
    400, 505)
REFUSE(http_version_lowercase, "GET /v1/models http/1.1\r\nHost: a\r\n\r\n",
    400, 505)
/* The HTTP/2 preface is HTTP/2 on a listener that speaks it (the
 * default): test_h2.c covers it, and a listener without h2. */

/* ---- methods and targets ---- */

REFUSE(connect_method, "CONNECT other:443 HTTP/1.1\r\nHost: other:443\r\n"
    "\r\n", 400, 405, 501)
/* The absolute form (http://host/path) is accepted since issue 19 (RFC
 * 9112 §3.2.2): test_hostile_head.c checks it reaches only its route. */
REFUSE(asterisk_form_target, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400)
REFUSE(authority_form_target, "GET other:80 HTTP/1.1\r\nHost: a\r\n\r\n",
    400)
REFUSE(upgrade_websocket, GET "Connection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 400)
/* Upgrade: h2c is answered in HTTP/1.1 since issue 14 (RFC 9110 §7.8):
 * test_hostile_head.c. */
REFUSE(upgrade_without_connection_token, GET "Upgrade: websocket\r\n\r\n",
    400)
REFUSE(unknown_method, "BREW /v1/models HTTP/1.1\r\nHost: a\r\n\r\n",
    400, 405, 501)
REFUSE(absolute_form_with_userinfo, "GET http://u:p@a/v1/models HTTP/1.1\r\n"
    "Host: a\r\n\r\n", 400)
REFUSE(absolute_form_without_host, "GET http:///v1/models HTTP/1.1\r\n"
    "Host: a\r\n\r\n", 400)
REFUSE(upgrade_h2c_and_websocket, GET "Connection: Upgrade\r\n"
    "Upgrade: h2c, websocket\r\n\r\n", 400)
REFUSE(upgrade_empty, GET "Connection: Upgrade\r\nUpgrade: \r\n\r\n", 400)

/* ---- how many fields (limits.max_header_fields, default 100) ---- */

/* head, then n copies of field, then tail, refused as refuse_check does. */
static void
refuse_repeated(const char *head, const char *field, int n, const char *tail)
{
	size_t	 hl = strlen(head), fl = strlen(field), tl = strlen(tail);
	char	*buf = hkeep(malloc(hl + fl * (size_t)n + tl + 1)), *o = buf;
	static const int want[] = { 431, 0 };
	int	 i;

	memcpy(o, head, hl);
	o += hl;
	for (i = 0; i < n; i++, o += fl)
		memcpy(o, field, fl);
	memcpy(o, tail, tl + 1);
	refuse_check(buf, strlen(buf), want, 0);
}

/* 5,000 five-byte fields: 30 KB, under max_header_bytes, far over 100. */
Test(hostile_request, five_thousand_small_fields_are_431)
{
	refuse_repeated(GET, "x: 1\r\n", 5000, "\r\n");
}

Test(hostile_request, hundred_fields_after_host_are_431)
{
	refuse_repeated(GET, "x: 1\r\n", 100, "\r\n");
}

/* A trailer section counts on its own, against the same limit. */
Test(hostile_request, hundred_and_one_trailer_fields_are_431)
{
	refuse_repeated(POST "Transfer-Encoding: chunked\r\n\r\n"
	    "2\r\n{}\r\n0\r\n", "t: 1\r\n", 101, "\r\n");
}

/* ---- garbage that is not HTTP ---- */

REFUSE_OR_CLOSE(tls_client_hello_on_a_plain_port,
    "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" "0123456789abcdef"
    "0123456789abcdef\r\n\r\n", 400)
REFUSE_OR_CLOSE(binary_garbage, "\x00\xff\xfe\x01\x02\r\n\r\n\x80\x81", 400)
REFUSE_OR_CLOSE(empty_lines_then_garbage, "\r\n\r\n\r\n\x01\x02\x03\r\n\r\n",
    400)

/* ---- upstream faults ---- */

#define SSE_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" \
	"Transfer-Encoding: chunked\r\n\r\n"
#define SSE_EVENT "19\r\ndata: {\"token\":\"hello\"}\n\n\r\n"

/* A hand-driven upstream: a listener the test accepts on itself. */
struct raw {
	int		 lfd;
	int		 port;
	int		 fd;
	struct hproc	*proxy;
	struct hconn	*c;
};

static struct hproc *
proxy_to_url(const char *url, const char *upstream_extra)
{
	struct hproc	*p;

	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"%s\"%s%s}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]}",
	    url, upstream_extra ? "," : "", upstream_extra ? upstream_extra :
	    "");
	hassert(p != NULL, "the proxy did not start");
	return p;
}

/* The proxy in front of a raw listener; a streaming chat request sent
 * and received upstream (req NULL: a streaming chat completion). */
static void
raw_start(struct raw *r, const char *timeouts, const char *req)
{
	char	 buf[16384];

	r->lfd = hnet_listen("127.0.0.1", &r->port);
	hassert(r->lfd >= 0);
	r->proxy = proxy_to_url(hstrf("http://127.0.0.1:%d", r->port),
	    hstrf("\"timeouts_ms\":%s", timeouts ? timeouts : "{}"));
	r->c = connect_proxy(r->proxy);
	hassert(hconn_send_str(r->c, req ? req : hreq_chat("mock-1", 1,
	    NULL)) == 0);
	r->fd = hnet_accept(r->lfd, 0);
	hassert(r->fd >= 0, "the proxy never connected");
	hassert(hnet_recv_until(r->fd, buf, sizeof(buf), "\r\n\r\n", 0) > 0,
	    "the request never arrived upstream");
}

/* The one cancel record, toward the client, with its kind and path
 * (path0, "edge"), or just ["edge"] when path0 is "edge". */
static cJSON *
expect_cancel(struct hproc *p, const char *kind, const char *path0)
{
	cJSON	*rec = hproc_wait_match(p, 0, "event", "cancel",
	    "origin.kind", kind, NULL);

	hassert(rec != NULL, "no cancel record of kind %s", kind);
	hassert(strcmp(jstr(rec, "direction"), "downstream") == 0,
	    "%s", hjson_print(rec));
	if (strcmp(path0, "edge") == 0)		/* this hop's own timer */
		hassert(strcmp(jstr(rec, "cancel_path.0"), "edge") == 0 &&
		    hjson_get(rec, "cancel_path.1") == NULL, "%s",
		    hjson_print(rec));
	else
		hassert(strcmp(jstr(rec, "cancel_path.0"), path0) == 0 &&
		    strcmp(jstr(rec, "cancel_path.1"), "edge") == 0 &&
		    hjson_get(rec, "cancel_path.2") == NULL, "%s",
		    hjson_print(rec));
	hassert(hjson_num(rec, "detect_to_close_us", -1) >= 0, "%s",
	    hjson_print(rec));
	hsleep_ms(50);
	hassert(hproc_count(p, "cancel") == 1, "%d cancel records",
	    hproc_count(p, "cancel"));
	return rec;
}

/* A 502/504 with Proxy-Status naming this hop and a JSON error body. */
static void
expect_error_response(struct hconn *c, int status, const char *kind)
{
	struct hresp	*resp = hconn_read_response(c, 0);
	const char	*ps;
	cJSON		*body;

	hassert(resp != NULL, "no error response");
	hassert(resp->status == status, "status %d, want %d: %s",
	    resp->status, status, resp->body);
	ps = hresp_header(resp, "proxy-status");
	hassert(ps != NULL && strncmp(ps, "edge; error=", 12) == 0,
	    "Proxy-Status: %s", ps ? ps : "(none)");
	body = hresp_json(resp);
	hassert(body != NULL, "body is not JSON: %s", resp->body);
	hassert(strcmp(jstr(body, "error.code"), kind) == 0, "%s",
	    resp->body);
	hassert(strcmp(jstr(body, "error.cancel.origin.kind"), kind) ==
	    0, "%s", resp->body);
}

/* Mid-stream: the relayed events, an SSE error event, a clean end. */
static void
expect_sse_error(struct hconn *c, const char *kind, const char *origin_hop)
{
	struct hresp	*resp = hconn_read_head(c, 0);
	const char	*ev, *last_error = NULL;
	cJSON		*data;

	hassert(resp != NULL, "no response head");
	hassert(resp->status == 200, "status %d", resp->status);
	while ((ev = hconn_read_event(c, resp, 0)) != NULL)
		if (hsse_type(ev) != NULL && strcmp(hsse_type(ev), "error") == 0)
			last_error = ev;
	hassert(last_error != NULL, "no SSE error event: %s", resp->body);
	hassert(resp->complete, "the stream did not end cleanly");
	data = hsse_json(last_error);
	hassert(data != NULL);
	hassert(strcmp(jstr(data, "error.code"), kind) == 0, "%s",
	    last_error);
	hassert(strcmp(jstr(data, "error.cancel.origin.hop"),
	    origin_hop) == 0, "%s", last_error);
}

/* The upstream connection was closed by the proxy. */
static void
expect_upstream_closed(struct raw *r)
{
	hassert(hnet_wait_closed(r->fd, 0) != HNET_TIMEOUT,
	    "the upstream connection was left open");
	close(r->fd);
	close(r->lfd);
}

/* The mock's record of the stream says its client (the proxy) left. */
static void
expect_mock_saw_close(struct hproc *mock)
{
	hassert(hmock_wait_closed(mock, NULL) != NULL,
	    "the mock never saw its stream closed");
}

/* A stall through the real mock: tokens, then nothing; the idle timeout
 * ends it with an SSE error and the mock sees its stream closed. */
Test(hostile_upstream, mock_stall_mid_stream_hits_idle_timeout)
{
	const char *const hdrs[] = { "X-Mock-Fault: stall_after:2", NULL };
	struct rig	 g;
	struct hconn	*c;
	cJSON		*rec;

	rig_start(&g, "{\"idle\":300}");
	c = connect_proxy(g.proxy);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, hdrs)) == 0);
	expect_sse_error(c, "idle_timeout", "edge");
	rec = expect_cancel(g.proxy, "idle_timeout", "edge");
	hassert(strcmp(jstr(rec, "phase"), "streaming") == 0);
	hassert(strcmp(jstr(rec, "detected_via"), "timer") == 0);
	hassert(hjson_num(rec, "sse_events", 0) == 2, "%s", hjson_print(rec));
	expect_mock_saw_close(g.mock);
	stop_clean(g.proxy);
}

/* A stall before anything (a non-streaming answer that never comes). */
Test(hostile_upstream, mock_stall_before_headers_is_504)
{
	const char *const hdrs[] = { "X-Mock-Fault: stall_after:0", NULL };
	struct rig	 g;
	struct hconn	*c;
	cJSON		*rec;

	rig_start(&g, "{\"first_byte\":300}");
	c = connect_proxy(g.proxy);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 0, hdrs)) == 0);
	expect_error_response(c, 504, "first_byte_timeout");
	rec = expect_cancel(g.proxy, "first_byte_timeout", "edge");
	hassert(strcmp(jstr(rec, "phase"), "waiting_first_byte") == 0);
	expect_mock_saw_close(g.mock);
	stop_clean(g.proxy);
}

/* A reset through the mock after two tokens. */
Test(hostile_upstream, mock_reset_mid_stream_is_sse_error)
{
	const char *const hdrs[] = { "X-Mock-Fault: reset_after:2", NULL };
	struct rig	 g;
	struct hconn	*c;
	cJSON		*rec;

	rig_start(&g, NULL);
	c = connect_proxy(g.proxy);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, hdrs)) == 0);
	expect_sse_error(c, "upstream_closed", "upstream:mock");
	rec = expect_cancel(g.proxy, "upstream_closed", "upstream:mock");
	hassert(strcmp(jstr(rec, "detected_via"), "rst") == 0, "%s",
	    hjson_print(rec));
	hassert(hjson_num(rec, "sse_events", 0) == 2, "%s", hjson_print(rec));
	stop_clean(g.proxy);
}

/*
 * The mock's content_length_lie: a stream under a Content-Length 64 bytes
 * larger than the body, then a close. The proxy passed the length on, so
 * it can add nothing (an SSE error would be counted against the length
 * and could even make the cut body look complete): the client must see
 * exactly the body that came and then the close, never a complete
 * response.
 */
Test(hostile_upstream, mock_content_length_lie_is_a_truncated_body)
{
	const char *const hdrs[] = { "X-Mock-Fault: content_length_lie",
	    NULL };
	struct rig	 g;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*rec;
	long		 cl;

	rig_start(&g, NULL);
	c = connect_proxy(g.proxy);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, hdrs)) == 0);
	r = hconn_read_head(c, 0);
	hassert(r != NULL && r->status == 200, "no 200 head");
	hassert(hresp_header(r, "Content-Length") != NULL, "%s", r->head);
	cl = atol(hresp_header(r, "Content-Length"));
	hassert(hconn_read_body(c, r, 0) == -1, "a cut body looked complete");
	hassert(!r->complete && r->eof, "the proxy did not close the client");
	hassert((long)r->body_len == cl - 64, "%zu body bytes of %ld (the "
	    "mock sent %ld)", r->body_len, cl, cl - 64);
	hassert(strstr(r->body, "event: error") == NULL, "an SSE error went "
	    "into a Content-Length body: %s", r->body);
	rec = expect_cancel(g.proxy, "upstream_closed", "upstream:mock");
	hassert(strcmp(jstr(rec, "phase"), "streaming") == 0, "%s",
	    hjson_print(rec));
	rec = hproc_wait_record(g.proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL && strcmp(jstr(rec, "outcome"), "canceled")
	    == 0, "%s", rec ? hjson_print(rec) : "no request record");
	stop_clean(g.proxy);
}

/* The same with a JSON answer from a raw upstream: 100 promised, 12 sent. */
Test(hostile_upstream, raw_content_length_lie_json_is_a_truncated_body)
{
	struct raw	 r;
	struct hresp	*resp;

	raw_start(&r, NULL, hreq_chat("mock-1", 0, NULL));
	hassert(hnet_send_str(r.fd, "HTTP/1.1 200 OK\r\n"
	    "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
	    "{\"partial\":1") == 0);
	hsleep_ms(50);
	hnet_close_fin(r.fd);
	close(r.lfd);
	resp = hconn_read_head(r.c, 0);
	hassert(resp != NULL && resp->status == 200);
	hassert(hconn_read_body(r.c, resp, 0) == -1 && !resp->complete,
	    "a cut body looked complete");
	hassert(resp->body_len == 12, "%zu bytes: %s", resp->body_len,
	    resp->body);
	expect_cancel(r.proxy, "upstream_closed", "upstream:mock");
	stop_clean(r.proxy);
}

/* The mock's endless_header: a header line every 10 ms, never the blank
 * line. The proxy's 64 KiB response-header limit must end it with a 502
 * long before the first-byte timeout (2 minutes by default). */
Test(hostile_upstream, mock_endless_header_is_502, .timeout = 120)
{
	const char *const hdrs[] = { "X-Mock-Fault: endless_header", NULL };
	struct rig	 g;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*rec, *j;
	int64_t		 t0 = hnow_ms();

	rig_start(&g, NULL);
	c = connect_proxy(g.proxy);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, hdrs)) == 0);
	r = hconn_read_response(c, 90000);
	hassert(r != NULL, "no answer to an endless response header");
	hassert(r->status == 502, "status %d: %s", r->status, r->body);
	j = hresp_json(r);
	hassert(j != NULL && strcmp(jstr(j, "error.code"),
	    "upstream_error") == 0, "%s", r->body);
	rec = expect_cancel(g.proxy, "upstream_error", "upstream:mock");
	hassert(strcmp(jstr(rec, "phase"), "waiting_first_byte") == 0,
	    "%s", hjson_print(rec));
	expect_mock_saw_close(g.mock);
	cr_log_info("endless header refused after %lld ms",
	    (long long)(hnow_ms() - t0));
	stop_clean(g.proxy);
}

/* The same limit, hit at once: one 70 KB header value. */
Test(hostile_upstream, raw_header_value_over_64k_is_502)
{
	struct raw	 r;
	char		*big = hkeep(malloc(70001));

	memset(big, 'a', 70000);
	big[70000] = '\0';
	raw_start(&r, NULL, NULL);
	hassert(hnet_send_str(r.fd, "HTTP/1.1 200 OK\r\nX-Big: ") == 0);
	(void)hnet_send_str(r.fd, big);
	expect_error_response(r.c, 502, "upstream_error");
	expect_cancel(r.proxy, "upstream_error", "upstream:mock");
	expect_upstream_closed(&r);
	stop_clean(r.proxy);
}

/* And with many small fields (the field count is bounded by bytes). */
Test(hostile_upstream, raw_many_small_header_fields_are_502)
{
	struct raw	 r;
	int		 i;

	raw_start(&r, NULL, NULL);
	hassert(hnet_send_str(r.fd, "HTTP/1.1 200 OK\r\n") == 0);
	for (i = 0; i < 40000; i++)
		if (hnet_send_str(r.fd, "a:b\r\n") == -1)
			break;
	expect_error_response(r.c, 502, "upstream_error");
	expect_cancel(r.proxy, "upstream_error", "upstream:mock");
	expect_upstream_closed(&r);
	stop_clean(r.proxy);
}

/* Broken chunk sizes mid-stream (test_cancel_upstream has "zz"). */
static void
broken_chunk(const char *bytes)
{
	struct raw	 r;
	cJSON		*rec;

	raw_start(&r, NULL, NULL);
	hassert(hnet_send_str(r.fd, SSE_HEAD SSE_EVENT) == 0);
	hsleep_ms(20);
	hassert(hnet_send_str(r.fd, bytes) == 0);
	expect_sse_error(r.c, "upstream_closed", "upstream:mock");
	rec = expect_cancel(r.proxy, "upstream_closed", "upstream:mock");
	hassert(hjson_num(rec, "sse_events", 0) == 1, "%s", hjson_print(rec));
	expect_upstream_closed(&r);
	stop_clean(r.proxy);
}

Test(hostile_upstream, chunk_size_overflow_mid_stream)
{
	broken_chunk("1ffffffffffffffff\r\ndata: x\n\n\r\n");
}

Test(hostile_upstream, chunk_data_overrunning_its_size_mid_stream)
{
	broken_chunk("3\r\ndata: x\n\n\r\n");
}

Test(hostile_upstream, chunk_size_negative_mid_stream)
{
	broken_chunk("-5\r\ndata: x\n\n\r\n");
}

/* Response framing that contradicts itself is an invalid response. */
Test(hostile_upstream, duplicate_content_lengths_are_502)
{
	struct raw	 r;

	raw_start(&r, NULL, hreq_chat("mock-1", 0, NULL));
	hassert(hnet_send_str(r.fd, "HTTP/1.1 200 OK\r\n"
	    "Content-Type: application/json\r\nContent-Length: 2\r\n"
	    "Content-Length: 20\r\n\r\n{}") == 0);
	expect_error_response(r.c, 502, "upstream_error");
	expect_cancel(r.proxy, "upstream_error", "upstream:mock");
	expect_upstream_closed(&r);
	stop_clean(r.proxy);
}

/*
 * Content-Length and chunked together (RFC 9112 §6.3: chunked wins, or
 * treat it as an error). Either a 502, or the de-chunked body framed so
 * the client reads exactly it: never the upstream's Content-Length put on
 * a body of another size.
 */
Test(hostile_upstream, content_length_with_chunked_is_framed_consistently)
{
	struct raw	 r;
	struct hresp	*resp;
	size_t		 left;

	raw_start(&r, NULL, NULL);
	hassert(hnet_send_str(r.fd, "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/event-stream\r\nContent-Length: 3\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n" SSE_EVENT SSE_EVENT
	    "0\r\n\r\n") == 0);
	resp = hconn_read_response(r.c, 0);
	hassert(resp != NULL, "no well-framed answer");
	if (resp->status == 502) {
		expect_cancel(r.proxy, "upstream_error", "upstream:mock");
	} else {
		hassert(resp->status == 200, "status %d", resp->status);
		hassert(strcmp(resp->body, "data: {\"token\":\"hello\"}\n\n"
		    "data: {\"token\":\"hello\"}\n\n") == 0,
		    "the client read %zu bytes: %s", resp->body_len,
		    resp->body);
		hsleep_ms(100);
		hconn_fill(r.c, 100);
		hconn_data(r.c, &left);
		hassert(left == 0, "%zu bytes after the body", left);
	}
	stop_clean(r.proxy);
}

/* 101 Switching Protocols to a request that never asked for it. */
Test(hostile_upstream, unasked_101_is_502)
{
	struct raw	 r;

	raw_start(&r, NULL, NULL);
	hassert(hnet_send_str(r.fd, "HTTP/1.1 101 Switching Protocols\r\n"
	    "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello")
	    == 0);
	expect_error_response(r.c, 502, "upstream_error");
	expect_cancel(r.proxy, "upstream_error", "upstream:mock");
	expect_upstream_closed(&r);
	stop_clean(r.proxy);
}

/* Interim answers forever: the first-byte timeout still ends it. */
Test(hostile_upstream, endless_1xx_hits_first_byte_timeout)
{
	struct raw	 r;
	cJSON		*rec;
	int		 i;

	raw_start(&r, "{\"first_byte\":400}", NULL);
	for (i = 0; i < 100; i++) {
		if (hnet_send_str(r.fd, "HTTP/1.1 102 Processing\r\n"
		    "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n") == -1)
			break;
		hsleep_ms(10);
	}
	hassert(i < 100, "the upstream was never closed");
	expect_error_response(r.c, 504, "first_byte_timeout");
	rec = expect_cancel(r.proxy, "first_byte_timeout", "edge");
	hassert(strcmp(jstr(rec, "phase"), "waiting_first_byte") == 0);
	stop_clean(r.proxy);
}

/* A status line that is not one. */
Test(hostile_upstream, status_code_out_of_range_is_502)
{
	struct raw	 r;

	raw_start(&r, NULL, NULL);
	hassert(hnet_send_str(r.fd, "HTTP/1.1 2000 OK\r\n"
	    "Content-Length: 0\r\n\r\n") == 0);
	expect_error_response(r.c, 502, "upstream_error");
	expect_cancel(r.proxy, "upstream_error", "upstream:mock");
	stop_clean(r.proxy);
}

/*
 * Token counts a model reports are read as doubles by cJSON; one that does
 * not fit in an int64_t (1e300) must not be converted blindly (undefined
 * behaviour: a crash under -fsanitize=undefined, garbage otherwise). Found
 * by fuzz_sse (tests/fuzz/crashes/sse/usage-number-out-of-int64-range).
 * The stream must be relayed whole and the record must carry no
 * impossible count; the proxy must exit cleanly.
 */
Test(hostile_upstream, usage_with_absurd_token_counts)
{
	struct raw	 r;
	struct hresp	*resp;
	cJSON		*rec;
	const cJSON	*u;
	static const char ev[] = "data: {\"choices\":[],\"usage\":{"
	    "\"prompt_tokens\":1e300,\"completion_tokens\":-1e300,"
	    "\"total_tokens\":18446744073709551616}}\n\n";

	raw_start(&r, NULL, NULL);
	hassert(hnet_send_str(r.fd, hstrf("%s%zx\r\n%s\r\n0\r\n\r\n",
	    SSE_HEAD SSE_EVENT, sizeof(ev) - 1, ev)) == 0);
	resp = hconn_read_response(r.c, 0);
	hassert(resp != NULL && resp->status == 200 && resp->complete,
	    "the stream was not relayed whole");
	hassert(strstr(resp->body, "1e300") != NULL, "%s", resp->body);
	rec = hproc_wait_record(r.proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL, "no request record");
	hassert(strcmp(jstr(rec, "outcome"), "completed") == 0, "%s",
	    hjson_print(rec));
	if ((u = hjson_get(rec, "usage")) != NULL && cJSON_IsObject(u)) {
		const cJSON *v;

		cJSON_ArrayForEach(v, u)
			hassert(!cJSON_IsNumber(v) || (v->valuedouble >= 0 &&
			    v->valuedouble < 9.3e18), "usage %s",
			    hjson_print(u));
	}
	close(r.fd);
	close(r.lfd);
	stop_clean(r.proxy);
}

/* ---- TLS failures (test_tls.c covers wrong names and unknown CAs) ---- */

/* The client's view of a failed upstream handshake, and the record. */
static void
expect_tls_failure(struct hproc *p, struct hconn *c)
{
	cJSON	*rec;

	expect_error_response(c, 502, "upstream_error");
	rec = expect_cancel(p, "upstream_error", "upstream:mock");
	hassert(strcmp(jstr(rec, "phase"), "connecting") == 0, "%s",
	    hjson_print(rec));
}

/* https:// to a server that speaks plain HTTP. */
Test(hostile_upstream, tls_to_a_plain_http_server_is_502)
{
	struct hproc	*m, *p;
	struct hconn	*c;
	int		 mport;

	m = hmock_start(&mport, NULL);
	hassert(m != NULL);
	p = proxy_to_url(hstrf("https://127.0.0.1:%d", mport),
	    "\"tls\":{\"verify\":false}");
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)) == 0);
	expect_tls_failure(p, c);
	hassert(hproc_count(m, "mock_request") == 0);
	stop_clean(p);
}

/* A server that reads the ClientHello and closes, or resets. */
static void
tls_cut(int rst)
{
	struct hproc	*p;
	struct hconn	*c;
	char		 buf[4096];
	int		 lfd, port, fd;

	lfd = hnet_listen("127.0.0.1", &port);
	hassert(lfd >= 0);
	p = proxy_to_url(hstrf("https://127.0.0.1:%d", port),
	    "\"tls\":{\"verify\":false}");
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)) == 0);
	fd = hnet_accept(lfd, 0);
	hassert(fd >= 0, "the proxy never connected");
	hassert(recv(fd, buf, sizeof(buf), 0) > 0, "no ClientHello");
	if (rst)
		hnet_close_rst(fd);
	else
		hnet_close_fin(fd);
	expect_tls_failure(p, c);
	close(lfd);
	stop_clean(p);
}

Test(hostile_upstream, tls_closed_during_handshake_is_502)
{
	tls_cut(0);
}

Test(hostile_upstream, tls_reset_during_handshake_is_502)
{
	tls_cut(1);
}

/* A server that answers the ClientHello with a fatal alert. */
Test(hostile_upstream, tls_handshake_alert_is_502)
{
	struct hproc	*p;
	struct hconn	*c;
	char		 buf[4096];
	int		 lfd, port, fd;

	lfd = hnet_listen("127.0.0.1", &port);
	hassert(lfd >= 0);
	p = proxy_to_url(hstrf("https://127.0.0.1:%d", port), NULL);
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)) == 0);
	fd = hnet_accept(lfd, 0);
	hassert(fd >= 0, "the proxy never connected");
	hassert(recv(fd, buf, sizeof(buf), 0) > 0, "no ClientHello");
	/* alert, TLS 1.2 record, length 2: fatal handshake_failure */
	hassert(hnet_send_all(fd, "\x15\x03\x03\x00\x02\x02\x28", 7) == 0);
	expect_tls_failure(p, c);
	hassert(hnet_wait_closed(fd, 0) != HNET_TIMEOUT);
	close(fd);
	close(lfd);
	stop_clean(p);
}

/* ---- hostile_body: JSON bodies read as the model server reads them ---- */

/*
 * Two mocks behind one proxy: "premium" takes models gpt-4o*, "cheap" is
 * the catch-all on the same path. A body the proxy might read differently
 * from the model server (duplicate members, a NUL in the model, too deep,
 * not JSON, bytes after the value) must be refused with a 400 naming why,
 * and reach neither mock; otherwise it is routed by the model the server
 * will see, whatever the content type says.
 */
TestSuite(hostile_body, .timeout = 60);

struct brig {
	struct hproc	*premium, *cheap, *proxy;
};

static void
brig_start(struct brig *g)
{
	int	 pport, cport;

	g->premium = hmock_start(&pport, "--first-token-ms", "1",
	    "--interval-ms", "1", "--tokens", "2", NULL);
	hassert(g->premium != NULL, "the premium mock did not start");
	hproc_set_name(g->premium, "premium");
	g->cheap = hmock_start(&cport, "--first-token-ms", "1",
	    "--interval-ms", "1", "--tokens", "2", NULL);
	hassert(g->cheap != NULL, "the cheap mock did not start");
	hproc_set_name(g->cheap, "cheap");
	g->proxy = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{"
	    "\"premium\":{\"url\":\"http://127.0.0.1:%d\"},"
	    "\"cheap\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":["
	    "{\"path_prefix\":\"/v1/\",\"models\":[\"gpt-4o*\"],"
	    "\"upstream\":\"premium\"},"
	    "{\"path_prefix\":\"/\",\"upstream\":\"cheap\"}]}", pport, cport);
	hassert(g->proxy != NULL, "the proxy did not start");
}

/* POSTs body (len bytes) to /v1/chat/completions with content type ctype
 * (NULL: none) on a fresh connection; the whole response. */
static struct hresp *
brig_post(struct brig *g, const char *ctype, const char *body, size_t len)
{
	struct hconn	*c = connect_proxy(g->proxy);
	struct hresp	*r;
	const char	*head;

	head = hstrf("POST /v1/chat/completions HTTP/1.1\r\n"
	    "Host: proxy\r\n%s%s%sContent-Length: %zu\r\n\r\n",
	    ctype ? "Content-Type: " : "", ctype ? ctype : "",
	    ctype ? "\r\n" : "", len);
	hassert(hconn_send_str(c, head) == 0);
	hassert(hconn_send(c, body, len) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL, "no answer to: %s", printable(body, len));
	return r;
}

/* The body is refused: 400 (or status) with error code code and a message
 * holding what; a request record with that status; neither mock saw it;
 * every record line strict JSON; a clean exit. */
static void
body_refused(const char *ctype, const char *body, size_t len,
    const char *code, const char *what)
{
	struct brig	 g;
	struct hresp	*r;
	cJSON		*j, *rec;
	const char	*shape = printable(body, len);

	brig_start(&g);
	r = brig_post(&g, ctype, body, len);
	hassert(r->status == 400, "status %d for: %s\n%s", r->status, shape,
	    r->body);
	j = hresp_json(r);
	hassert(j != NULL, "not JSON: %s", r->body);
	hassert(strcmp(jstr(j, "error.code"), code) == 0,
	    "code %s, want %s, for: %s", jstr(j, "error.code"), code, shape);
	hassert(strstr(jstr(j, "error.message"), what) != NULL,
	    "message \"%s\" says nothing of \"%s\"", jstr(j, "error.message"),
	    what);
	rec = hproc_wait_record(g.proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL, "no request record");
	hassert(hjson_num(rec, "status", 0) == 400, "%s", hjson_print(rec));
	hassert(strcmp(jstr(rec, "outcome"), "error") == 0, "%s",
	    hjson_print(rec));
	hsleep_ms(100);
	hassert(hproc_count(g.premium, "mock_request") == 0,
	    "premium got a refused body: %s", shape);
	hassert(hproc_count(g.cheap, "mock_request") == 0,
	    "cheap got a refused body: %s", shape);
	hassert(hproc_bad_lines(g.proxy) == 0);
	stop_clean(g.proxy);
}

/* The body is served by the upstream named want ("premium" or "cheap"),
 * whose mock read the model want_model (NULL: none); the record agrees. */
static void
body_routed(const char *ctype, const char *body, size_t len,
    const char *want, const char *want_model)
{
	struct brig	 g;
	struct hresp	*r;
	struct hproc	*got, *other;
	cJSON		*m, *rec;
	const char	*shape = printable(body, len);

	brig_start(&g);
	got = strcmp(want, "premium") == 0 ? g.premium : g.cheap;
	other = got == g.premium ? g.cheap : g.premium;
	r = brig_post(&g, ctype, body, len);
	/* Without a model the mock answers for itself (a 400): routed all
	 * the same, which its record shows. */
	hassert(r->status == 200 || want_model == NULL, "status %d for: "
	    "%s\n%s", r->status, shape, r->body);
	m = hproc_wait_record(got, "mock_request", NULL, NULL, 0);
	hassert(m != NULL, "%s never got: %s", want, shape);
	if (want_model != NULL)
		hassert(strcmp(jstr(m, "model"), want_model) == 0,
		    "%s read model %s, want %s", want, jstr(m, "model"),
		    want_model);
	hassert(hproc_count(other, "mock_request") == 0,
	    "the other upstream got: %s", shape);
	rec = hproc_wait_record(g.proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL, "no request record");
	hassert(strcmp(jstr(rec, "upstream"), want) == 0, "%s",
	    hjson_print(rec));
	if (want_model != NULL)
		hassert(strcmp(jstr(rec, "model"), want_model) == 0, "%s",
		    hjson_print(rec));
	hassert(hproc_bad_lines(g.proxy) == 0);
	stop_clean(g.proxy);
}

#define BODY_REFUSED(name, ctype, body, code, what)			\
Test(hostile_body, name)						\
{									\
	static const char	 b[] = body;				\
									\
	body_refused(ctype, b, sizeof(b) - 1, code, what);		\
}

#define BODY_ROUTED(name, ctype, body, want, model)			\
Test(hostile_body, name)						\
{									\
	static const char	 b[] = body;				\
									\
	body_routed(ctype, b, sizeof(b) - 1, want, model);		\
}

#define JSON	"application/json"

/* The exact shapes of the issue. */
BODY_REFUSED(duplicate_model_first_other_last_gpt4o, JSON,
    "{\"model\":\"other\",\"model\":\"gpt-4o\"}", "duplicate_key",
    "\"model\"")
BODY_REFUSED(duplicate_model_spelt_with_an_escape, JSON,
    "{\"model\":\"gpt-4o\",\"mod\\u0065l\":\"other\"}", "duplicate_key",
    "\"model\"")
BODY_REFUSED(nul_in_model, JSON,
    "{\"model\":\"other\\u0000gpt-4o\",\"stream\":false}", "invalid_model",
    "control character")
BODY_REFUSED(model_name_cut_by_nul, JSON,
    "{\"model\\u0000x\":\"gpt-4o\",\"model\":\"other\"}", "duplicate_key",
    "\"model\"")
BODY_REFUSED(control_character_in_model, JSON,
    "{\"model\":\"gpt-4o\\n\"}", "invalid_model", "control character")
BODY_REFUSED(raw_control_byte_in_model, JSON,
    "{\"model\":\"gpt-4o\x7f\"}", "invalid_model", "control character")
BODY_REFUSED(invalid_utf8_in_model, JSON,
    "{\"model\":\"gpt-4o\xff\xfe\"}", "invalid_model", "UTF-8")
BODY_REFUSED(model_not_a_string, JSON,
    "{\"model\":[\"gpt-4o\"]}", "invalid_model", "must be a string")
BODY_REFUSED(duplicate_stream, JSON,
    "{\"model\":\"other\",\"stream\":false,\"stream\":true}",
    "duplicate_key", "\"stream\"")
BODY_REFUSED(duplicate_stream_options, JSON,
    "{\"model\":\"other\",\"stream\":true,\"stream_options\":null,"
    "\"stream_options\":{\"include_usage\":false}}", "duplicate_key",
    "\"stream_options\"")
BODY_REFUSED(duplicate_include_usage, JSON,
    "{\"model\":\"other\",\"stream\":true,\"stream_options\":"
    "{\"include_usage\":false,\"include_usage\":true}}", "duplicate_key",
    "include_usage")
BODY_REFUSED(trailing_bytes_after_the_value, JSON,
    "{\"model\":\"other\"}{\"model\":\"gpt-4o\"}", "invalid_json",
    "bytes follow")
BODY_REFUSED(not_json_with_a_json_type, JSON,
    "{\"model\":\"gpt-4o\",}", "invalid_json", "not valid JSON")
BODY_REFUSED(json_looking_text_plain_that_is_not_json, "text/plain",
    "{\"model\":\"gpt-4o\" garbage", "invalid_json", "not valid JSON")
/* A raw NUL in a name: cJSON reads "model" (and the usage injection
 * prints it so); strict readers refuse the body. */
BODY_REFUSED(raw_nul_in_a_member_name, JSON,
    "{\"model\0x\":\"gpt-4o\",\"stream\":true}", "invalid_json",
    "not valid JSON")
BODY_REFUSED(raw_control_byte_in_a_string, "text/plain",
    "{\"model\":\"gpt-4o\",\"messages\":\"a\x01\"}", "invalid_json",
    "not valid JSON")
BODY_REFUSED(byte_order_mark_before_json, JSON,
    "\xef\xbb\xbf{\"model\":\"gpt-4o\"}", "invalid_json", "not valid JSON")

/* Deeper than jsonr reads (JSONR_DEPTH_MAX 512): refused as such, not
 * routed as if it had no model. */
Test(hostile_body, nested_deeper_than_the_reader)
{
	size_t		 depth = 600, n = 0, i;
	char		*b = hkeep(malloc(2 * depth + 64));

	n += (size_t)sprintf(b, "{\"model\":\"gpt-4o\",\"x\":");
	for (i = 0; i < depth; i++)
		b[n++] = '[';
	for (i = 0; i < depth; i++)
		b[n++] = ']';
	b[n++] = '}';
	body_refused(JSON, b, n, "json_too_deep", "deeper than 512");
}

/* A model longer than the proxy reads is refused, not routed as none. */
Test(hostile_body, model_longer_than_256_bytes)
{
	char	*b = hkeep(malloc(400));
	int	 n;

	n = sprintf(b, "{\"model\":\"gpt-4o-%0300d\"}", 7);
	body_refused(JSON, b, (size_t)n, "invalid_model", "longer than 256");
}

/* The content type does not hide the model: text/plain (what a browser
 * sends for a simple request), none at all, or an odd one. */
BODY_ROUTED(text_plain_json_body_is_routed_by_its_model, "text/plain",
    "{\"model\":\"gpt-4o\",\"stream\":false}", "premium", "gpt-4o")
BODY_ROUTED(no_content_type_json_body_is_routed_by_its_model, NULL,
    "{\"model\":\"gpt-4o\",\"stream\":false}", "premium", "gpt-4o")
BODY_ROUTED(json_suffix_type_is_json, "application/vnd.api+json; q=1",
    "{\"model\":\"gpt-4o-mini\"}", "premium", "gpt-4o-mini")
/* What is fine stays fine: a clean body, duplicates nested below the top,
 * a body that is not JSON at all, a model that is other UTF-8. */
BODY_ROUTED(clean_body_goes_to_its_route, JSON,
    "{\"model\":\"gpt-4o\",\"stream\":false}", "premium", "gpt-4o")
BODY_ROUTED(nested_duplicates_do_not_matter, JSON,
    "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"role\":"
    "\"user\",\"content\":\"hi\"}],\"stream\":false}", "premium", "gpt-4o")
BODY_ROUTED(a_form_body_has_no_model, "application/x-www-form-urlencoded",
    "model=gpt-4o", "cheap", NULL)
BODY_ROUTED(utf8_model_routes_elsewhere, JSON,
    "{\"model\":\"mod\xc3\xa8le\",\"stream\":false}", "cheap",
    "mod\xc3\xa8le")

/* ---- hostile_record: records stay valid UTF-8 JSON ---- */

TestSuite(hostile_record, .timeout = 60);

/* A request target with bytes \xff\xfe: answered, and its record carries
 * the path with U+FFFD in their place, in a line Python's reader takes. */
Test(hostile_record, target_with_invalid_utf8)
{
	struct rig	 g;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*rec;
	static const char req[] = "GET /debug/echo/\xff\xfe HTTP/1.1\r\n"
	    "Host: proxy\r\nUser-Agent: agent\xc0\xaf\r\n\r\n";

	rig_start(&g, NULL);
	c = connect_proxy(g.proxy);
	hassert(hconn_send(c, req, sizeof(req) - 1) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL, "no answer");
	rec = hproc_wait_record(g.proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL, "no request record");
	hassert(strcmp(jstr(rec, "path"),
	    "/debug/echo/\xef\xbf\xbd\xef\xbf\xbd") == 0, "%s",
	    hjson_print(rec));
	hassert(hproc_bad_lines(g.proxy) == 0,
	    "a record line is not strict UTF-8 JSON");
	hconn_free(c);
	stop_clean(g.proxy);
}

/*
 * Usage injection changes a body in place: the upstream gets the client's
 * bytes with include_usage put in, nothing else changed (a tree printed
 * anew turned big integers into doubles and cut strings at \u0000). The
 * route injects; a raw listener reads what arrives.
 */
static void
inject_check(const char *body, const char *want)
{
	static char	 buf[65536];
	struct hproc	*p;
	struct hconn	*c;
	const char	*cl, *got;
	ssize_t		 n, head;
	size_t		 blen;
	int		 lfd, fd, port;

	lfd = hnet_listen("127.0.0.1", &port);
	hassert(lfd >= 0);
	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"up\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"up\","
	    "\"stream_usage\":\"inject\"}]}", port);
	hassert(p != NULL, "the proxy did not start");
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hreq_build("POST", "/v1/chat/completions",
	    NULL, body)) == 0);
	fd = hnet_accept(lfd, 0);
	hassert(fd >= 0, "the proxy never connected");
	n = hnet_recv_until(fd, buf, sizeof(buf), "\r\n\r\n", 0);
	hassert(n > 0, "no request upstream");
	head = strstr(buf, "\r\n\r\n") - buf + 4;
	cl = strcasestr(buf, "\r\nContent-Length:");
	hassert(cl != NULL && cl < buf + head, "no Content-Length: %s", buf);
	blen = (size_t)strtoul(cl + 17, NULL, 10);
	while ((size_t)n < (size_t)head + blen) {
		ssize_t k = recv(fd, buf + n, sizeof(buf) - 1 - (size_t)n, 0);

		hassert(k > 0, "the body was cut short");
		n += k;
		buf[n] = '\0';
	}
	got = buf + head;
	hassert(blen == strlen(want) && memcmp(got, want, blen) == 0,
	    "upstream got\n%.*s\nwant\n%s", (int)blen, got, want);
	close(fd);
	close(lfd);
	hconn_free(c);
	hassert(hproc_bad_lines(p) == 0);
	stop_clean(p);
}

Test(hostile_body, injection_keeps_every_other_byte)
{
	/* No stream_options: one member before the closing brace. */
	inject_check("{\"model\":\"m\", \"stream\":true,\"seed\":"
	    "12345678901234567890,\"messages\":[{\"content\":\"a\\u0000b "
	    "1.50\"}]} \n",
	    "{\"model\":\"m\", \"stream\":true,\"seed\":"
	    "12345678901234567890,\"messages\":[{\"content\":\"a\\u0000b "
	    "1.50\"}],\"stream_options\":{\"include_usage\":true}} \n");
}

Test(hostile_body, injection_into_stream_options)
{
	inject_check("{\"stream\":true,\"stream_options\":{ }}",
	    "{\"stream\":true,\"stream_options\":{\"include_usage\":true }}");
	inject_check("{\"stream\":true,\"stream_options\":{\"x\":1e2}}",
	    "{\"stream\":true,\"stream_options\":{\"include_usage\":true,"
	    "\"x\":1e2}}");
	inject_check("{\"stream\":true,\"stream_options\":{\"include_usage\":"
	    "false,\"x\":2}}", "{\"stream\":true,\"stream_options\":"
	    "{\"include_usage\":true,\"x\":2}}");
	inject_check("{\"stream_options\":null,\"stream\":true}",
	    "{\"stream_options\":{\"include_usage\":true},\"stream\":true}");
	/* Asked for already, or no stream: forwarded as sent. */
	inject_check("{\"stream\":true,\"stream_options\":{\"include_usage\":"
	    "true},\"seed\":1.0}", "{\"stream\":true,\"stream_options\":"
	    "{\"include_usage\":true},\"seed\":1.0}");
	inject_check("{\"stream\":false,\"seed\":1.0}",
	    "{\"stream\":false,\"seed\":1.0}");
}
