/* test_forwarding: what the proxy does to a request on its way to the model
 * and to the answer on its way back, checked against cancelproxy-mock (its
 * /debug/echo shows the request exactly as the upstream received it):
 * Host, hop-by-hop fields, set_headers, X-Request-Id, traceparent, Via,
 * base paths, routing by path and model, keep-alive on both sides,
 * pipelining, request bodies, 100-continue, HTTP/1.0 clients, streaming
 * and SSE relayed byte for byte, secrets kept out of the log, IPv6. */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/integration/harness.h"

TestSuite(forwarding, .timeout = 60);

#define TRACE_IN	"0af7651916cd43dd8448eb211c80319c"
#define PARENT_IN	"b7ad6b7169203331"
#define UP_SECRET	"sk-upstream-SECRET-abc123"
#define CLIENT_SECRET	"client-bearer-SECRET-xyz789"
#define CLIENT_APIKEY	"client-apikey-SECRET-qwe456"

/* ---- helpers ---- */

/* A fast mock: 5 tokens, 5 ms apart, the first after 5 ms. */
/* A proxy "edge" with one worker, one listener and one upstream "mock"
 * (url_tail after http://127.0.0.1:PORT, upstream_extra inside the
 * upstream object), routing every path to it. */
static struct hproc *
proxy_to(int mport, const char *url_tail, const char *upstream_extra)
{
	struct hproc	*p;

	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d%s\"%s%s}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]}",
	    mport, url_tail ? url_tail : "", upstream_extra ? "," : "",
	    upstream_extra ? upstream_extra : "");
	hassert(p != NULL, "the proxy did not start");
	hassert(hproxy_port(p, 0) > 0);
	return p;
}

static struct hconn *
connect_proxy(struct hproc *p)
{
	struct hconn	*c = hconn_connect("127.0.0.1", hproxy_port(p, 0));

	hassert(c != NULL, "cannot connect to the proxy");
	return c;
}

/* Sends req on c and reads a complete response. */
static struct hresp *
exchange(struct hconn *c, const char *req)
{
	struct hresp	*r;

	hassert(hconn_send_str(c, req) == 0, "send failed");
	r = hconn_read_response(c, 0);
	hassert(r != NULL, "no complete response");
	return r;
}

/* Sends req on c, expects a 200 from /debug/echo, returns what the mock
 * received as JSON {"method","path","headers":[[n,v]...],"body"}. */
static cJSON *
echo_exchange(struct hconn *c, const char *req, struct hresp **rp)
{
	struct hresp	*r = exchange(c, req);
	cJSON		*j;

	hassert(r->status == 200, "status %d: %s", r->status, r->body);
	j = hresp_json(r);
	hassert(j != NULL && cJSON_IsArray(hjson_get(j, "headers")),
	    "not an echo: %s", r->body);
	if (rp != NULL)
		*rp = r;
	return j;
}


/* Whether s[0..n) is lowercase hex. */
static int
is_hex(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) ||
		    isupper((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Whether s is a W3C traceparent: 00-<32 hex>-<16 hex>-<2 hex>. */
static int
is_traceparent(const char *s)
{
	return s != NULL && strlen(s) == 55 && strncmp(s, "00-", 3) == 0 &&
	    is_hex(s + 3, 32) && s[35] == '-' && is_hex(s + 36, 16) &&
	    s[52] == '-' && is_hex(s + 53, 2);
}

/* Replaces the parts of a mock answer that differ between two requests
 * (the completion id's counter and the "created" time) with fixed text,
 * in place; everything else must stay byte for byte. */
static void
normalize_answer(char *s)
{
	char	*p, *q;

	for (p = s; (p = strstr(p, "chatcmpl-mock")) != NULL; p += 13)
		for (q = p + 13; is_hex(q, 1); q++)
			*q = '0';
	for (p = s; (p = strstr(p, "\"created\":")) != NULL; p += 10)
		for (q = p + 10; *q >= '0' && *q <= '9'; q++)
			*q = '7';
}

/* Stops the proxy with SIGTERM; it must exit 0 (under CP_VALGRIND=1 that
 * also means no memory errors or definite leaks). */
static void
stop_clean(struct hproc *p)
{
	int	 st = hproc_stop(p, 0);

	hassert(st == 0, "the proxy exited with status %d", st);
}

/* ---- Host, hop-by-hop fields, set_headers ---- */

Test(forwarding, host_is_rewritten_for_the_upstream)
{
	const char *const hdrs[] = { "Host: client.example:8080", NULL };
	struct hproc	*p;
	cJSON		*j;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	j = echo_exchange(connect_proxy(p), hreq_build("GET", "/debug/echo",
	    hdrs, NULL), NULL);
	hassert(hecho_count(j, "Host") == 1, "%s", hjson_print(j));
	hassert(strcmp(hecho_header(j, "Host"), hstrf("127.0.0.1:%d", mport))
	    == 0, "Host: %s", hecho_header(j, "Host"));
	hassert(strcmp(hjson_str(j, "method"), "GET") == 0);
	hassert(strcmp(hjson_str(j, "path"), "/debug/echo") == 0);
}

Test(forwarding, hop_by_hop_fields_are_dropped)
{
	const char *const hdrs[] = {
		"Connection: keep-alive, X-Hop-A,x-hop-b",
		"Keep-Alive: timeout=5",
		"TE: trailers",
		"Trailer: X-Checksum",
		"Proxy-Authorization: Basic Zm9vOmJhcg==",
		"Proxy-Connection: keep-alive",
		"X-Hop-A: a",
		"X-Hop-B: b",
		"X-End-To-End: kept",
		NULL
	};
	const char *const dropped[] = { "Connection", "Keep-Alive", "TE",
	    "Proxy-Authorization", "Proxy-Connection", "X-Hop-A",
	    "X-Hop-B", "Transfer-Encoding", "Upgrade", NULL };
	struct hproc	*p;
	cJSON		*j;
	int		 mport, i;

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	j = echo_exchange(connect_proxy(p), hreq_build("GET", "/debug/echo",
	    hdrs, NULL), NULL);
	for (i = 0; dropped[i] != NULL; i++)
		hassert(hecho_count(j, dropped[i]) == 0, "%s reached the "
		    "upstream: %s", dropped[i], hjson_print(j));
	hassert(hecho_header(j, "X-End-To-End") != NULL &&
	    strcmp(hecho_header(j, "X-End-To-End"), "kept") == 0,
	    "%s", hjson_print(j));
}

Test(forwarding, upgrade_never_reaches_the_upstream)
{
	const char *const hdrs[] = { "Connection: Upgrade",
	    "Upgrade: websocket", NULL };
	struct hproc	*m, *p;
	struct hresp	*r;
	cJSON		*j;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	r = exchange(connect_proxy(p), hreq_build("GET", "/debug/echo", hdrs,
	    NULL));
	/* Dropping the field or refusing the request are both fine; the
	 * upstream must never see it. */
	if (r->status == 200) {
		j = hresp_json(r);
		hassert(j != NULL && hecho_count(j, "Upgrade") == 0 &&
		    hecho_count(j, "Connection") == 0, "%s", r->body);
	} else {
		hassert(r->status == 400, "status %d", r->status);
		hassert(hresp_json(r) != NULL &&
		    hjson_str(hresp_json(r), "error.message") != NULL,
		    "%s", r->body);
		hsleep_ms(100);
		hassert(hproc_count(m, "mock_request") == 0);
	}
}

Test(forwarding, set_headers_replace_the_clients_even_via_connection)
{
	const char *const plain[] = { "Authorization: Bearer " CLIENT_SECRET,
	    "x-api-version: client", NULL };
	const char *const listed[] = { "Authorization: Bearer " CLIENT_SECRET,
	    "Connection: Authorization, X-Api-Version",
	    "X-API-Version: client", NULL };
	struct hproc	*p;
	struct hconn	*c;
	cJSON		*j;
	int		 mport, round;

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, "\"set_headers\":{\"Authorization\":"
	    "\"Bearer " UP_SECRET "\",\"X-Api-Version\":\"v9\"}");
	c = connect_proxy(p);
	for (round = 0; round < 2; round++) {
		j = echo_exchange(c, hreq_build("GET", "/debug/echo",
		    round == 0 ? plain : listed, NULL), NULL);
		hassert(hecho_count(j, "Authorization") == 1, "round %d: %s",
		    round, hjson_print(j));
		hassert(strcmp(hecho_header(j, "Authorization"),
		    "Bearer " UP_SECRET) == 0, "round %d: %s", round,
		    hjson_print(j));
		hassert(hecho_count(j, "X-Api-Version") == 1, "round %d: %s",
		    round, hjson_print(j));
		hassert(strcmp(hecho_header(j, "X-Api-Version"), "v9") == 0);
		hassert(hecho_count(j, "Connection") == 0);
	}
	/* A client that sends none gets them too. */
	j = echo_exchange(c, hreq_build("GET", "/debug/echo", NULL, NULL),
	    NULL);
	hassert(strcmp(hecho_header(j, "Authorization"), "Bearer " UP_SECRET)
	    == 0, "%s", hjson_print(j));
}

/* ---- identity: X-Request-Id, traceparent, Via ---- */

Test(forwarding, request_id_kept_or_minted)
{
	const char *const hdrs[] = { "X-Request-Id: client-req-0042", NULL };
	struct hproc	*p;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*j, *rec;
	const char	*id;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	c = connect_proxy(p);

	j = echo_exchange(c, hreq_build("GET", "/debug/echo", hdrs, NULL), &r);
	hassert(hecho_count(j, "X-Request-Id") == 1);
	hassert(strcmp(hecho_header(j, "X-Request-Id"), "client-req-0042") == 0,
	    "%s", hjson_print(j));
	hassert(hresp_header(r, "X-Request-Id") != NULL &&
	    strcmp(hresp_header(r, "X-Request-Id"), "client-req-0042") == 0);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL);
	hassert(strcmp(hjson_str(rec, "request_id"), "client-req-0042") == 0,
	    "%s", hjson_print(rec));

	j = echo_exchange(c, hreq_build("GET", "/debug/echo", NULL, NULL), &r);
	id = hecho_header(j, "X-Request-Id");
	hassert(id != NULL && strlen(id) >= 16, "minted id: %s",
	    hjson_print(j));
	hassert(strcmp(id, "client-req-0042") != 0);
	hassert(hresp_header(r, "X-Request-Id") != NULL &&
	    strcmp(hresp_header(r, "X-Request-Id"), id) == 0,
	    "the client sees the id the upstream got");
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL && strcmp(hjson_str(rec, "request_id"), id) == 0,
	    "%s", hjson_print(rec));

	/* Two minted ids differ. */
	j = echo_exchange(c, hreq_build("GET", "/debug/echo", NULL, NULL),
	    NULL);
	hassert(strcmp(hecho_header(j, "X-Request-Id"), id) != 0);
}

Test(forwarding, traceparent_kept_with_a_new_parent_or_minted)
{
	const char *const good[] = { "traceparent: 00-" TRACE_IN "-"
	    PARENT_IN "-01", NULL };
	const char *const bad[] = { "traceparent: 00-" TRACE_IN "-zz", NULL };
	struct hproc	*p;
	struct hconn	*c;
	cJSON		*j, *rec;
	const char	*tp;
	char		 trace[33];
	int		 mport;

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	c = connect_proxy(p);

	j = echo_exchange(c, hreq_build("GET", "/debug/echo", good, NULL),
	    NULL);
	hassert(hecho_count(j, "traceparent") == 1, "%s", hjson_print(j));
	tp = hecho_header(j, "traceparent");
	hassert(is_traceparent(tp), "traceparent: %s", tp);
	hassert(strncmp(tp + 3, TRACE_IN, 32) == 0, "trace id changed: %s",
	    tp);
	hassert(strncmp(tp + 36, PARENT_IN, 16) != 0,
	    "parent id not replaced: %s", tp);
	hassert(strcmp(tp + 53, "01") == 0, "flags: %s", tp);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL && strcmp(hjson_str(rec, "trace_id"), TRACE_IN)
	    == 0, "%s", hjson_print(rec));

	/* None sent: minted, and the record has its trace id. */
	j = echo_exchange(c, hreq_build("GET", "/debug/echo", NULL, NULL),
	    NULL);
	tp = hecho_header(j, "traceparent");
	hassert(is_traceparent(tp), "minted traceparent: %s", tp);
	memcpy(trace, tp + 3, 32);
	trace[32] = '\0';
	hassert(strcmp(trace, TRACE_IN) != 0);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL && strcmp(hjson_str(rec, "trace_id"), trace) == 0,
	    "%s vs %s", hjson_print(rec), tp);

	/* A malformed one is replaced, never passed on. */
	j = echo_exchange(c, hreq_build("GET", "/debug/echo", bad, NULL),
	    NULL);
	hassert(hecho_count(j, "traceparent") == 1, "%s", hjson_print(j));
	tp = hecho_header(j, "traceparent");
	hassert(is_traceparent(tp), "traceparent: %s", tp);
	hassert(strncmp(tp + 3, TRACE_IN, 32) != 0, "kept a bad one: %s", tp);
}

Test(forwarding, via_is_appended)
{
	const char *const hdrs[] = { "Via: 1.1 front", NULL };
	struct hproc	*p;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*j;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	c = connect_proxy(p);
	j = echo_exchange(c, hreq_build("GET", "/debug/echo", NULL, NULL), &r);
	hassert(hecho_count(j, "Via") == 1);
	hassert(strcmp(hecho_header(j, "Via"), "1.1 edge") == 0, "Via: %s",
	    hecho_header(j, "Via"));
	hassert(hresp_header(r, "Via") != NULL &&
	    strstr(hresp_header(r, "Via"), "1.1 edge") != NULL,
	    "response Via: %s", hresp_header(r, "Via"));

	j = echo_exchange(c, hreq_build("GET", "/debug/echo", hdrs, NULL),
	    NULL);
	hassert(hecho_count(j, "Via") == 1, "%s", hjson_print(j));
	hassert(strcmp(hecho_header(j, "Via"), "1.1 front, 1.1 edge") == 0,
	    "Via: %s", hecho_header(j, "Via"));
}

/* ---- where requests go ---- */

Test(forwarding, base_path_is_prepended)
{
	struct hproc	*p, *p2;
	cJSON		*j;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_to(mport, "/debug", NULL);
	j = echo_exchange(connect_proxy(p), hreq_build("GET", "/echo?x=1&y=%2F",
	    NULL, NULL), NULL);
	hassert(strcmp(hjson_str(j, "path"), "/debug/echo?x=1&y=%2F") == 0,
	    "path: %s", hjson_str(j, "path"));

	/* A trailing slash on the base path does not double. */
	p2 = proxy_to(mport, "/debug/", NULL);
	j = echo_exchange(connect_proxy(p2), hreq_build("POST", "/echo", NULL,
	    "{\"model\":\"x\"}"), NULL);
	hassert(strcmp(hjson_str(j, "path"), "/debug/echo") == 0, "path: %s",
	    hjson_str(j, "path"));
	hassert(strcmp(hjson_str(j, "body"), "{\"model\":\"x\"}") == 0);
	hassert(strcmp(hecho_header(j, "Host"), hstrf("127.0.0.1:%d", mport))
	    == 0);
}

/* Sends a chat request for model on a fresh connection and returns the
 * status; the response must be complete. */
static int
chat_status(struct hproc *p, const char *model)
{
	struct hresp	*r;

	r = exchange(connect_proxy(p), hreq_chat(model, 0, NULL));
	return r->status;
}

Test(forwarding, routes_by_model_glob_in_order)
{
	struct hproc	*a, *b, *p;
	struct hresp	*r;
	cJSON		*rec;
	int		 aport, bport;

	a = hmock_fast(&aport);
	b = hmock_fast(&bport);
	hproc_set_name(a, "mock-a");
	hproc_set_name(b, "mock-b");
	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"a\":{\"url\":\"http://127.0.0.1:%d\"},"
	    "\"b\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":["
	    "{\"path_prefix\":\"/v1/\",\"models\":[\"gpt-4*\",\"o[13]-?ini\"],"
	    "\"upstream\":\"a\"},"
	    "{\"path_prefix\":\"/v1/chat/\",\"models\":[\"claude-*\","
	    "\"gpt-4o\"],\"upstream\":\"b\"},"
	    "{\"path_prefix\":\"/v1/models\",\"upstream\":\"b\"}]}",
	    aport, bport);
	hassert(p != NULL);

	hassert(chat_status(p, "gpt-4o") == 200);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL);
	hassert(strcmp(hjson_str(rec, "upstream"), "a") == 0,
	    "gpt-4o matches both routes; the first wins: %s", hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "route"), "/v1/") == 0);
	hassert(strcmp(hjson_str(rec, "model"), "gpt-4o") == 0);
	hassert(hproc_wait_record(a, "mock_request", "model", "gpt-4o", 0)
	    != NULL);

	hassert(chat_status(p, "o3-mini") == 200);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL && strcmp(hjson_str(rec, "upstream"), "a") == 0,
	    "%s", hjson_print(rec));

	hassert(chat_status(p, "claude-3-opus") == 200);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL && strcmp(hjson_str(rec, "upstream"), "b") == 0,
	    "%s", hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "route"), "/v1/chat/") == 0);
	hassert(hproc_wait_record(b, "mock_request", "model", "claude-3-opus",
	    0) != NULL);

	/* o2-mini matches no pattern ([13]), llama none at all: 404. */
	r = exchange(connect_proxy(p), hreq_chat("o2-mini", 0, NULL));
	hassert(r->status == 404, "o2-mini: %d", r->status);
	hassert(strcmp(hjson_str(hresp_json(r), "error.code"), "no_route")
	    == 0, "%s", r->body);
	hassert(chat_status(p, "llama-3") == 404);

	/* A route without models takes any request on its path. */
	r = exchange(connect_proxy(p), hreq_build("GET", "/v1/models", NULL,
	    NULL));
	hassert(r->status == 200, "%d %s", r->status, r->body);
	hassert(hproc_wait_record(b, "mock_request", "path", "/v1/models", 0)
	    != NULL);
	hsleep_ms(100);
	hassert(hproc_count(a, "mock_request") == 2, "a got %d",
	    hproc_count(a, "mock_request"));
	hassert(hproc_count(b, "mock_request") == 2, "b got %d",
	    hproc_count(b, "mock_request"));
	stop_clean(p);
}

Test(forwarding, no_route_is_404_json)
{
	struct hproc	*m, *p;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*j, *rec;
	int		 mport;

	m = hmock_fast(&mport);
	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/v1/\",\"upstream\":\"mock\"}]}",
	    mport);
	hassert(p != NULL);
	c = connect_proxy(p);
	r = exchange(c, hreq_build("GET", "/v2/models", NULL, NULL));
	hassert(r->status == 404, "status %d", r->status);
	hassert(strncmp(hresp_header(r, "Content-Type"), "application/json",
	    16) == 0);
	j = hresp_json(r);
	hassert(j != NULL, "%s", r->body);
	hassert(strcmp(hjson_str(j, "error.code"), "no_route") == 0, "%s",
	    r->body);
	hassert(hjson_str(j, "error.message") != NULL);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL);
	hassert(hjson_num(rec, "status", 0) == 404, "%s", hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "outcome"), "error") == 0);
	hassert(strcmp(hjson_str(rec, "path"), "/v2/models") == 0);
	hassert(hjson_str(rec, "upstream") == NULL);

	/* "/v1" is not under "/v1/"; the connection still works after. */
	r = exchange(c, hreq_build("GET", "/v1", NULL, NULL));
	hassert(r->status == 404, "status %d", r->status);
	r = exchange(c, hreq_build("GET", "/v1/models", NULL, NULL));
	hassert(r->status == 200, "status %d", r->status);
	hassert(hproc_wait_record(m, "mock_request", NULL, NULL, 0) != NULL);
	hassert(hproc_count(m, "mock_request") == 1);
}

/* ---- connections ---- */

Test(forwarding, keepalive_on_both_sides)
{
	struct hproc	*m, *p;
	struct hconn	*c, *c2;
	struct hresp	*r;
	cJSON		*q1, *q2, *q3;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	c = connect_proxy(p);
	r = exchange(c, hreq_chat("mock-1", 0, NULL));
	hassert(r->status == 200 && r->complete);
	hassert(hresp_header(r, "Connection") == NULL ||
	    strcasecmp(hresp_header(r, "Connection"), "close") != 0);
	r = exchange(c, hreq_chat("mock-1", 1, NULL));
	hassert(r->status == 200 && r->complete, "second request on the "
	    "same connection: %d", r->status);
	hassert(strstr(r->body, "data: [DONE]") != NULL);
	hassert(hconn_peer_closed(c) == 0, "the proxy closed a keep-alive "
	    "connection");

	/* The mock served all of them on one upstream connection, also the
	 * one from another client connection. */
	c2 = connect_proxy(p);
	r = exchange(c2, hreq_build("GET", "/debug/echo", NULL, NULL));
	hassert(r->status == 200);
	q1 = hproc_wait_record(m, "mock_request", NULL, NULL, 0);
	q2 = hproc_wait_record(m, "mock_request", NULL, NULL, 0);
	q3 = hproc_wait_record(m, "mock_request", NULL, NULL, 0);
	hassert(q1 != NULL && q2 != NULL && q3 != NULL);
	hassert(hjson_num(q1, "conn", -1) == hjson_num(q2, "conn", -2) &&
	    hjson_num(q2, "conn", -1) == hjson_num(q3, "conn", -2),
	    "upstream connection not reused: %s %s %s", hjson_print(q1),
	    hjson_print(q2), hjson_print(q3));
	/* The records were written before the answers, but the harness
	 * reads them on its own thread: wait for them, do not count. */
	hassert(hproc_wait_record(p, "request", NULL, NULL, 0) != NULL &&
	    hproc_wait_record(p, "request", NULL, NULL, 0) != NULL);
	stop_clean(p);
}

/* keepalive bounds the idle connections kept per destination: with 1,
 * two streams that ran side by side leave one connection to reuse, and
 * the next two streams reuse it once and open one more. */
Test(forwarding, keepalive_bounds_idle_connections)
{
	const char *const slow[] = { "X-Mock-First-Token-Ms: 300", NULL };
	struct hproc	*m, *p;
	struct hconn	*c[2];
	struct hresp	*r;
	cJSON		*q;
	double		 conn[4];
	int		 mport, round, i, reused = 0;

	m = hmock_fast(&mport);
	p = proxy_to(mport, NULL, "\"keepalive\":1");
	for (round = 0; round < 2; round++) {
		for (i = 0; i < 2; i++) {
			c[i] = connect_proxy(p);
			hassert(hconn_send_str(c[i], hreq_chat("mock-1", 0,
			    slow)) == 0);
		}
		for (i = 0; i < 2; i++) {
			r = hconn_read_response(c[i], 0);
			hassert(r != NULL && r->status == 200 && r->complete,
			    "round %d stream %d", round, i);
			q = hproc_wait_record(m, "mock_request", NULL, NULL, 0);
			hassert(q != NULL);
			conn[2 * round + i] = hjson_num(q, "conn", -1);
		}
		/* Released to the pool before the record is written. */
		for (i = 0; i < 2; i++)
			hassert(hproc_wait_record(p, "request", NULL, NULL,
			    0) != NULL);
	}
	hassert(conn[0] != conn[1], "two streams at once on one connection");
	hassert(conn[2] != conn[3], "two streams at once on one connection");
	for (i = 2; i < 4; i++)
		reused += conn[i] == conn[0] || conn[i] == conn[1];
	hassert(reused == 1, "with keepalive 1, %d of the second round's "
	    "connections were reused (%g %g, then %g %g)", reused, conn[0],
	    conn[1], conn[2], conn[3]);
	stop_clean(p);
}

Test(forwarding, pipelined_requests_are_answered_in_order)
{
	const char *const h1[] = { "X-Request-Id: pipe-1",
	    "X-Mock-First-Token-Ms: 300", NULL };
	const char *const h2[] = { "X-Request-Id: pipe-2", NULL };
	const char *const h3[] = { "X-Request-Id: pipe-3", NULL };
	struct hproc	*p;
	struct hconn	*c;
	struct hresp	*r;
	const char	*all;
	int		 mport, i;
	char		 want[16];

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	c = connect_proxy(p);
	all = hstrf("%s%s%s", hreq_chat("mock-1", 0, h1),
	    hreq_build("GET", "/debug/echo?n=2", h2, NULL),
	    hreq_chat("mock-1", 1, h3));
	hassert(hconn_send_str(c, all) == 0);
	for (i = 1; i <= 3; i++) {
		r = hconn_read_response(c, 0);
		hassert(r != NULL, "response %d", i);
		hassert(r->status == 200, "response %d: %d", i, r->status);
		snprintf(want, sizeof(want), "pipe-%d", i);
		hassert(hresp_header(r, "X-Request-Id") != NULL &&
		    strcmp(hresp_header(r, "X-Request-Id"), want) == 0,
		    "response %d is for %s", i, hresp_header(r,
		    "X-Request-Id"));
		if (i == 2)
			hassert(strcmp(hjson_str(hresp_json(r), "path"),
			    "/debug/echo?n=2") == 0, "%s", r->body);
	}
	hassert(strstr(r->body, "data: [DONE]") != NULL);
	stop_clean(p);
}

/* ---- request bodies ---- */

Test(forwarding, chunked_request_body_arrives_with_a_length)
{
	const char *const hdrs[] = { "Transfer-Encoding: chunked",
	    "Content-Type: application/json", NULL };
	struct hproc	*p;
	cJSON		*j;
	const char	*req;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	req = hstrf("%s%s", hreq_build("POST", "/debug/echo", hdrs, NULL),
	    "5\r\n{\"a\":\r\n"
	    "3;ext=1\r\n\"bc\r\n"
	    "1\r\n\"\r\n"
	    "1\r\n}\r\n"
	    "0\r\n\r\n");
	j = echo_exchange(connect_proxy(p), req, NULL);
	hassert(strcmp(hjson_str(j, "body"), "{\"a\":\"bc\"}") == 0,
	    "body: %s", hjson_str(j, "body"));
	hassert(hecho_count(j, "Transfer-Encoding") == 0, "%s",
	    hjson_print(j));
	hassert(hecho_count(j, "Content-Length") == 1);
	hassert(strcmp(hecho_header(j, "Content-Length"), "10") == 0,
	    "Content-Length: %s", hecho_header(j, "Content-Length"));
	hassert(strcmp(hjson_str(j, "method"), "POST") == 0);
}

Test(forwarding, expect_100_continue)
{
	const char	*body = "{\"model\":\"mock-1\",\"n\":12345}";
	const char *const hdrs[] = { "Expect: 100-continue",
	    "Content-Type: application/json",
	    "X-Request-Id: expect-1", NULL };
	struct hproc	*m, *p;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*j;
	ssize_t		 off;
	const char	*head;
	int		 mport;

	m = hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	c = connect_proxy(p);
	head = hreq_build("POST", "/debug/echo", hdrs, NULL);
	/* The head alone, with the length of the body to come. */
	hassert(hconn_send_str(c, hstrf("%.*sContent-Length: %zu\r\n\r\n",
	    (int)(strlen(head) - 2), head, strlen(body))) == 0);
	off = hconn_read_until(c, "\r\n\r\n", 0);
	hassert(off > 0, "no interim response");
	hassert(strncmp(hconn_data(c, NULL), "HTTP/1.1 100 Continue\r\n",
	    23) == 0, "got: %s", hconn_data(c, NULL));
	hconn_consume(c, (size_t)off);
	hsleep_ms(50);
	hassert(hproc_count(m, "mock_request") == 0,
	    "forwarded before the body came");
	hassert(hconn_send_str(c, body) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200, "final response");
	j = hresp_json(r);
	hassert(j != NULL && strcmp(hjson_str(j, "body"), body) == 0,
	    "%s", r->body);
	hassert(hecho_count(j, "Expect") == 0, "Expect went upstream: %s",
	    r->body);
	hassert(strcmp(hecho_header(j, "Content-Length"),
	    hstrf("%zu", strlen(body))) == 0);
	stop_clean(p);
}

/* ---- responses ---- */

Test(forwarding, http10_client_gets_a_close_delimited_body)
{
	const char	*body = hreq_chat_body("mock-1", 1);
	struct hproc	*p;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*rec;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hstrf("POST /v1/chat/completions HTTP/1.0\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    strlen(body), body)) == 0);
	r = hconn_read_head(c, 0);
	hassert(r != NULL && r->status == 200);
	hassert(strncmp(r->head, "HTTP/1.0 200", 12) == 0, "head: %s",
	    r->head);
	hassert(hresp_header(r, "Transfer-Encoding") == NULL, "head: %s",
	    r->head);
	hassert(hresp_header(r, "Content-Length") == NULL, "head: %s",
	    r->head);
	hassert(hconn_read_body(c, r, 0) == 0, "body did not end: %s",
	    r->error ? r->error : "");
	hassert(r->eof, "the body must end with the close");
	hassert(strstr(r->body, "data: [DONE]\n\n") != NULL, "%s", r->body);
	hassert(strstr(r->body, "\r\n0\r\n") == NULL, "chunk framing leaked");
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL && strcmp(hjson_str(rec, "outcome"),
	    "completed") == 0, "%s", hjson_print(rec));
	hassert(hjson_num(rec, "bytes_out", 0) == (double)r->body_len,
	    "%s vs %zu", hjson_print(rec), r->body_len);

	/* With a length from the upstream, the length is kept. */
	c = connect_proxy(p);
	body = hreq_chat_body("mock-1", 0);
	hassert(hconn_send_str(c, hstrf("POST /v1/chat/completions HTTP/1.0\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    strlen(body), body)) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200);
	hassert(hresp_header(r, "Content-Length") != NULL &&
	    (size_t)atol(hresp_header(r, "Content-Length")) == r->body_len);
	hassert(hjson_num(hresp_json(r), "usage.completion_tokens", 0) == 5);
	hassert(hconn_wait_closed(c, 0) == HNET_FIN,
	    "HTTP/1.0 without keep-alive: closed after the answer");
	stop_clean(p);
}

Test(forwarding, framing_follows_the_upstream)
{
	const char *const length[] = { "X-Mock-Framing: length", NULL };
	const char *const close_[] = { "X-Mock-Framing: close", NULL };
	struct hproc	*p;
	struct hconn	*c;
	struct hresp	*r;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	c = connect_proxy(p);

	/* Content-Length from the upstream: passed on, not chunked. */
	r = exchange(c, hreq_chat("mock-1", 1, length));
	hassert(r->status == 200 && !r->chunked, "head: %s", r->head);
	hassert(hresp_header(r, "Content-Length") != NULL &&
	    (size_t)atol(hresp_header(r, "Content-Length")) == r->body_len,
	    "head: %s", r->head);
	hassert(strstr(r->body, "data: [DONE]\n\n") != NULL);

	/* A close-delimited upstream body reaches an HTTP/1.1 client
	 * chunked, and the client connection stays open. */
	r = exchange(c, hreq_chat("mock-1", 1, close_));
	hassert(r->status == 200 && r->chunked, "head: %s", r->head);
	hassert(strstr(r->body, "data: [DONE]\n\n") != NULL);
	r = exchange(c, hreq_chat("mock-1", 0, NULL));
	hassert(r->status == 200, "after a close-delimited answer: %d",
	    r->status);
	hassert(hjson_num(hresp_json(r), "usage.completion_tokens", 0) == 5);
}

Test(forwarding, headers_and_tokens_are_relayed_as_they_come)
{
	const char *const hdrs[] = { "X-Mock-First-Token-Ms: 1500",
	    "X-Mock-Interval-Ms: 400", "X-Mock-Tokens: 3", NULL };
	struct hproc	*p;
	struct hconn	*c;
	struct hresp	*r;
	const char	*ev;
	int64_t		 t0, t_head, t_ev1, t_ev2;
	int		 mport;

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	c = connect_proxy(p);
	t0 = hnow_ms();
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, hdrs)) == 0);
	r = hconn_read_head(c, 0);
	t_head = hnow_ms() - t0;
	hassert(r != NULL && r->status == 200);
	hassert(t_head < 1000, "head after %lld ms: held back until the "
	    "first token", (long long)t_head);
	hassert(strncmp(hresp_header(r, "Content-Type"), "text/event-stream",
	    17) == 0);
	ev = hconn_read_event(c, r, 0);
	t_ev1 = hnow_ms() - t0;
	hassert(ev != NULL && t_ev1 >= 1400, "first event after %lld ms",
	    (long long)t_ev1);
	ev = hconn_read_event(c, r, 0);
	t_ev2 = hnow_ms() - t0;
	hassert(ev != NULL);
	hassert(t_ev2 - t_ev1 >= 250, "events bunched: %lld ms apart",
	    (long long)(t_ev2 - t_ev1));
	hassert(hconn_read_body(c, r, 0) == 0 && r->complete);
}

Test(forwarding, sse_is_relayed_byte_for_byte)
{
	const char *const hdrs[] = { "X-Mock-Tokens: 12",
	    "X-Mock-Interval-Ms: 2", "X-Request-Id: sse-exact", NULL };
	struct hproc	*p;
	struct hresp	*via, *direct;
	cJSON		*rec;
	const char	*req;
	char		*a, *b;
	int		 mport, nev = 0;

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	req = hreq_chat("mock-1", 1, hdrs);
	via = exchange(connect_proxy(p), req);
	hassert(via->status == 200 && via->chunked);
	direct = hhttp_exchange("127.0.0.1", mport, req, 0);
	hassert(direct != NULL && direct->status == 200);
	hassert(via->body_len == direct->body_len, "via proxy %zu bytes, "
	    "direct %zu", via->body_len, direct->body_len);
	a = hkeep(strdup(via->body));
	b = hkeep(strdup(direct->body));
	normalize_answer(a);
	normalize_answer(b);
	hassert(memcmp(a, b, via->body_len) == 0, "bodies differ:\n%s\n---\n%s",
	    via->body, direct->body);
	/* 12 tokens, the stop event and [DONE]. */
	for (const char *s = via->body; (s = strstr(s, "\n\n")) != NULL; s += 2)
		nev++;
	hassert(nev == 14, "%d events", nev);

	rec = hproc_wait_record(p, "request", "request_id", "sse-exact", 0);
	hassert(rec != NULL);
	hassert(strcmp(hjson_str(rec, "outcome"), "completed") == 0);
	hassert(hjson_num(rec, "status", 0) == 200);
	hassert(hjson_num(rec, "sse_events", -1) == 14, "%s",
	    hjson_print(rec));
	hassert(hjson_num(rec, "bytes_out", -1) == (double)via->body_len,
	    "%s vs %zu", hjson_print(rec), via->body_len);
	hassert(hjson_num(rec, "bytes_in", -1) == (double)strlen(req),
	    "%s vs %zu", hjson_print(rec), strlen(req));
	hassert(strcmp(hjson_str(rec, "method"), "POST") == 0);
	hassert(strcmp(hjson_str(rec, "path"), "/v1/chat/completions") == 0);
	hassert(strcmp(hjson_str(rec, "model"), "mock-1") == 0);
	hassert(strcmp(hjson_str(rec, "route"), "/") == 0);
	hassert(strcmp(hjson_str(rec, "upstream"), "mock") == 0);
	hassert(strncmp(hjson_str(rec, "client"), "127.0.0.1:", 10) == 0);
	hassert(hjson_num(rec, "ttfb_ms", -1) >= 0);
	hassert(hjson_num(rec, "duration_ms", -1) >= hjson_num(rec, "ttfb_ms",
	    0));
	hassert(hjson_str(rec, "trace_id") != NULL &&
	    strlen(hjson_str(rec, "trace_id")) == 32);
	stop_clean(p);
}

/* ---- the log ---- */

Test(forwarding, secrets_never_reach_the_log)
{
	const char *const hdrs[] = { "Authorization: Bearer " CLIENT_SECRET,
	    "x-api-key: " CLIENT_APIKEY, NULL };
	const char *const bad_model_hdrs[] = {
	    "Authorization: Bearer " CLIENT_SECRET,
	    "X-Api-Key: " CLIENT_APIKEY, "X-Mock-Fault: reset_after:2", NULL };
	const char *const secrets[] = { UP_SECRET, CLIENT_SECRET,
	    CLIENT_APIKEY, "sk-dead-SECRET-000", NULL };
	struct hproc	*p;
	struct hconn	*c;
	struct hresp	*r;
	int		 mport, i, n;

	hmock_fast(&mport);
	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"log\":{\"level\":\"debug\"},"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\","
	    "\"set_headers\":{\"Authorization\":\"Bearer " UP_SECRET "\"}},"
	    "\"dead\":{\"url\":\"http://127.0.0.1:1\","
	    "\"set_headers\":{\"x-api-key\":\"sk-dead-SECRET-000\"}}},"
	    "\"routes\":[{\"path_prefix\":\"/dead/\",\"upstream\":\"dead\"},"
	    "{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]}", mport);
	hassert(p != NULL);
	c = connect_proxy(p);
	/* Completed, streamed, failed upstream, refused, broken mid-stream. */
	r = exchange(c, hreq_build("GET", "/debug/echo", hdrs, NULL));
	hassert(r->status == 200);
	hassert(strstr(r->body, UP_SECRET) != NULL, "the upstream got it");
	r = exchange(c, hreq_chat("mock-1", 1, hdrs));
	hassert(r->status == 200);
	r = exchange(c, hreq_build("GET", "/dead/x", hdrs, NULL));
	hassert(r->status == 502, "dead upstream: %d", r->status);
	r = exchange(c, hreq_build("GET", "/nowhere", hdrs, NULL));
	hassert(r->status == 200 || r->status == 404);
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, bad_model_hdrs)) == 0);
	hconn_read_response(c, 0);
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hstrf("GET /x HTTP/1.1\r\nHost: a\r\n"
	    "Authorization: Bearer %s\r\nBad Header\r\n\r\n", CLIENT_SECRET))
	    == 0);
	hconn_wait_closed(c, 0);
	hassert(hproc_wait_record(p, "cancel", NULL, NULL, 0) != NULL,
	    "the dead upstream wrote a cancel record");
	stop_clean(p);

	n = hproc_nrecords(p);
	hassert(n >= 5, "%d records", n);
	for (i = 0; i < n; i++) {
		const char *line = hjson_print(hproc_record(p, i));
		int k;

		for (k = 0; secrets[k] != NULL; k++)
			hassert(strstr(line, secrets[k]) == NULL,
			    "a secret in record %d: %s", i, line);
	}
	/* Raw lines too: stdout and stderr, JSON or not. */
	for (i = 0; secrets[i] != NULL; i++)
		hassert(hproc_wait_line(p, secrets[i], 100) == NULL,
		    "secret %d appears in the proxy's output", i);
	hassert(hproc_wait_line(p, "\"event\":\"request\"", 100) != NULL,
	    "the raw lines are searchable");
}

/* ---- listeners ---- */

/* Whether this machine can bind [::1]. */
static int
have_ipv6_loopback(void)
{
	struct sockaddr_in6	 sa;
	int			 fd, ok;

	if ((fd = socket(AF_INET6, SOCK_STREAM, 0)) == -1)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

Test(forwarding, ipv6_listener)
{
	struct hproc	*p;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*rec, *lis;
	int		 mport, port;

	if (!have_ipv6_loopback())
		cr_skip("no IPv6 loopback on this machine");
	hmock_fast(&mport);
	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"[::1]:0\"}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]}",
	    mport);
	hassert(p != NULL);
	lis = hproc_find_record(p, "listening", NULL, NULL);
	hassert(lis != NULL && strncmp(hjson_str(lis, "address"), "[::1]:", 6)
	    == 0, "%s", hjson_print(lis));
	port = hproxy_port(p, 0);
	hassert(port > 0);
	c = hconn_connect("::1", port);
	hassert(c != NULL);
	r = exchange(c, hreq_build("GET", "/debug/echo", NULL, NULL));
	hassert(r->status == 200, "status %d", r->status);
	rec = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(rec != NULL);
	hassert(strncmp(hjson_str(rec, "client"), "[::1]:", 6) == 0, "%s",
	    hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "outcome"), "completed") == 0);
}

/*
 * The strict head checks (bare LF, obs-fold) stop at the end of the head:
 * a head split right inside its final CRLF CRLF, followed by a body with
 * bare newlines, is a good request.
 */
Test(forwarding, head_split_at_its_end_then_a_body_with_newlines)
{
	struct hproc	*p;
	struct hconn	*c;
	struct hresp	*r;
	const char	*body = "{\"a\":\n\"b\"\n}";
	int		 mport;

	hmock_fast(&mport);
	p = proxy_to(mport, NULL, NULL);
	c = connect_proxy(p);
	hassert(hconn_send_str(c, hstrf("POST /debug/echo HTTP/1.1\r\nHost: a\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r",
	    strlen(body))) == 0);
	hsleep_ms(50);
	hassert(hconn_send_str(c, hstrf("\n%s", body)) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200, "status %d", r ? r->status : 0);
	hassert(strcmp(hjson_str(hresp_json(r), "body"), body) == 0, "%s",
	    r->body);
	/* The next request on the connection is scanned anew. */
	hassert(hconn_send_str(c, "GET /v1/models HTTP/1.1\r\nHost: a\r\n"
	    "X-Bad: a\r\n b\r\n\r\n") == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 400, "obs-fold on the second request");
}
