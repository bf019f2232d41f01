/* Browsers on other origins (DESIGN.md §8) over real sockets: preflights
 * answered by the proxy and never forwarded, other origins refused before
 * the model sees anything, CORS fields on answers and on the proxy's own
 * errors, routes without cors as before, the cancel API's preflight, the
 * admin API's GET /cancels, and the listening record's port. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define PAGE	"https://chat.example"
#define EVIL	"https://evil.example"

struct rig {
	struct hproc	*mock;
	struct hproc	*proxy;
	int		 mport;
	int		 port;
};

/* The mock and a proxy whose /v1/ route has cors (members: the policy's
 * members after allow_origins, may be ""); extra: more top-level members. */
static void
rig_start(struct rig *r, const char *members, const char *extra)
{
	r->mock = hmock_start(&r->mport, "--first-token-ms", "10",
	    "--interval-ms", "20", "--tokens", "100000", NULL);
	cr_assert_not_null(r->mock);
	r->proxy = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\","
	    "\"timeouts_ms\":{\"first_byte\":400}}},"
	    "\"routes\":[{\"path_prefix\":\"/v1/\",\"upstream\":\"mock\","
	    "\"cors\":{\"allow_origins\":[\"" PAGE "\"]%s}},"
	    "{\"path_prefix\":\"/plain/\",\"upstream\":\"mock\"}]%s}",
	    r->mport, members, extra);
	cr_assert_not_null(r->proxy);
	r->port = hproxy_port(r->proxy, 0);
}

static struct hresp *
call(int port, const char *method, const char *path, const char *const h[],
    const char *body)
{
	return hhttp_exchange("127.0.0.1", port, hreq_build(method, path, h,
	    body), 0);
}

/* A browser's preflight for a POST with these request headers. */
static struct hresp *
preflight(int port, const char *path, const char *origin, const char *method,
    const char *req_headers)
{
	const char	*h[5] = { NULL };
	int		 n = 0;

	h[n++] = hstrf("Origin: %s", origin);
	h[n++] = hstrf("Access-Control-Request-Method: %s", method);
	if (req_headers != NULL)
		h[n++] = hstrf("Access-Control-Request-Headers: %s",
		    req_headers);
	return call(port, "OPTIONS", path, h, NULL);
}

/* No Access-Control-* field at all in r. */
static void
expect_no_cors(const struct hresp *r)
{
	int	 i;

	for (i = 0; i < r->nheaders; i++)
		hassert(strncasecmp(r->headers[i].name, "access-control-",
		    15) != 0, "unexpected %s: %s", r->headers[i].name,
		    r->headers[i].value);
}

/* The fields every answer to the allowed page carries. */
static void
expect_cors(const struct hresp *r)
{
	const char	*v;

	v = hresp_header(r, "Access-Control-Allow-Origin");
	hassert(v != NULL && strcmp(v, PAGE) == 0, "allow-origin %s", v);
	v = hresp_header(r, "Vary");
	hassert(v != NULL && strstr(v, "Origin") != NULL, "vary %s", v);
	v = hresp_header(r, "Access-Control-Expose-Headers");
	hassert(v != NULL && strstr(v, "x-request-id") != NULL &&
	    strstr(v, "proxy-status") != NULL, "expose %s", v);
}

Test(cors, preflight_is_answered_here_and_never_forwarded, .timeout = 60)
{
	struct rig	 r;
	struct hresp	*a;
	cJSON		*rec;
	const char	*v;

	rig_start(&r, ",\"max_age_s\":120", "");
	a = preflight(r.port, "/v1/chat/completions", PAGE, "POST",
	    "Authorization, content-type");
	hassert(a != NULL, "no answer");
	cr_assert_eq(a->status, 204);
	expect_cors(a);
	v = hresp_header(a, "Access-Control-Allow-Methods");
	hassert(v != NULL && strstr(v, "POST") != NULL, "methods %s", v);
	v = hresp_header(a, "Access-Control-Allow-Headers");
	hassert(v != NULL && strstr(v, "authorization") != NULL &&
	    strstr(v, "content-type") != NULL, "headers %s", v);
	cr_assert_str_eq(hresp_header(a, "Access-Control-Max-Age"), "120");
	cr_assert_null(hresp_header(a, "Access-Control-Allow-Credentials"));
	cr_assert_eq(a->body_len, 0);
	rec = hproc_wait_record(r.proxy, "request", "method", "OPTIONS", 0);
	hassert(rec != NULL, "no request record");
	cr_assert_eq(hjson_num(rec, "status", 0), 204);
	cr_assert_str_eq(hjson_str(rec, "cors"), "preflight");
	cr_assert_str_eq(hjson_str(rec, "outcome"), "completed");
	hsleep_ms(200);
	cr_assert_eq(hproc_count(r.mock, "mock_request"), 0,
	    "the preflight reached the model");
	hassert(hproc_stop(r.proxy, 0) == 0, "the proxy exited badly");
}

Test(cors, other_origin_preflight_refused_with_403, .timeout = 60)
{
	struct rig	 r;
	struct hresp	*a;
	cJSON		*rec;

	rig_start(&r, "", "");
	a = preflight(r.port, "/v1/chat/completions", EVIL, "POST",
	    "authorization");
	hassert(a != NULL, "no answer");
	cr_assert_eq(a->status, 403);
	expect_no_cors(a);
	cr_assert_str_eq(hjson_str(hresp_json(a), "error.code"),
	    "origin_not_allowed");
	rec = hproc_wait_record(r.proxy, "request", "method", "OPTIONS", 0);
	hassert(rec != NULL, "no request record");
	cr_assert_eq(hjson_num(rec, "status", 0), 403);
	cr_assert_str_eq(hjson_str(rec, "cors"), "origin_not_allowed");
	cr_assert_str_eq(hjson_str(rec, "outcome"), "error");

	/* An allowed origin asking for a header or method not allowed. */
	a = preflight(r.port, "/v1/chat/completions", PAGE, "POST",
	    "authorization, x-secret-thing");
	hassert(a != NULL, "no answer");
	cr_assert_eq(a->status, 403);
	expect_no_cors(a);
	cr_assert_str_eq(hjson_str(hresp_json(a), "error.code"),
	    "header_not_allowed");
	hassert(strstr(hjson_str(hresp_json(a), "error.message"),
	    "x-secret-thing") != NULL, "the message names the header");
	a = preflight(r.port, "/v1/chat/completions", PAGE, "PUT", NULL);
	hassert(a != NULL, "no answer");
	cr_assert_eq(a->status, 403);
	cr_assert_str_eq(hjson_str(hresp_json(a), "error.code"),
	    "method_not_allowed");
	hsleep_ms(200);
	cr_assert_eq(hproc_count(r.mock, "mock_request"), 0);
	hassert(hproc_stop(r.proxy, 0) == 0, "the proxy exited badly");
}

/* A simple request (no preflight) from another origin must not run
 * upstream while its page may not read the answer. */
Test(cors, other_origin_request_refused_before_the_model, .timeout = 60)
{
	struct rig	 r;
	struct hresp	*a;
	const char	*h[] = { "Origin: " EVIL, "Content-Type: text/plain",
	    NULL };
	cJSON		*rec;

	rig_start(&r, "", "");
	a = call(r.port, "POST", "/v1/chat/completions", h,
	    hreq_chat_body("mock-1", 1));
	hassert(a != NULL, "no answer");
	cr_assert_eq(a->status, 403);
	expect_no_cors(a);
	cr_assert_str_eq(hresp_header(a, "Vary"), "Origin");
	rec = hproc_wait_record(r.proxy, "request", "method", "POST", 0);
	hassert(rec != NULL, "no request record");
	cr_assert_str_eq(hjson_str(rec, "cors"), "origin_not_allowed");
	hsleep_ms(200);
	cr_assert_eq(hproc_count(r.mock, "mock_request"), 0,
	    "the model saw a refused origin's request");
	hassert(hproc_stop(r.proxy, 0) == 0, "the proxy exited badly");
}

Test(cors, answers_to_the_page_carry_cors_and_abort_cancels, .timeout = 60)
{
	struct rig	 r;
	struct hconn	*c;
	struct hresp	*resp;
	const char	*h[] = { "Origin: " PAGE, "X-Request-Id: page-1",
	    "Authorization: Bearer sk-page", NULL };
	cJSON		*rec;

	rig_start(&r, ",\"expose_headers\":[\"x-extra\"],"
	    "\"allow_credentials\":true", "");
	c = hconn_connect("127.0.0.1", r.port);
	cr_assert_not_null(c);
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, h)), 0);
	resp = hconn_read_head(c, 0);
	hassert(resp != NULL, "no head");
	cr_assert_eq(resp->status, 200);
	expect_cors(resp);
	hassert(strstr(hresp_header(resp, "Access-Control-Expose-Headers"),
	    "x-extra") != NULL, "expose_headers is added to the two");
	cr_assert_str_eq(hresp_header(resp,
	    "Access-Control-Allow-Credentials"), "true");
	cr_assert_str_eq(hresp_header(resp, "X-Request-Id"), "page-1");
	hassert(hconn_read_event(c, resp, 0) != NULL, "no event");
	hassert(hconn_read_event(c, resp, 0) != NULL, "no event");
	hconn_close_fin(c);		/* the page's AbortController */
	rec = hproc_wait_record(r.proxy, "cancel", "request_id", "page-1", 0);
	hassert(rec != NULL, "no cancel record");
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "client_disconnect");
	hassert(hmock_wait_closed(r.mock, "page-1"), "the model was not told");
	rec = hproc_wait_record(r.proxy, "request", "request_id", "page-1", 0);
	hassert(rec != NULL, "no request record");
	cr_assert_str_eq(hjson_str(rec, "cors"), "allowed");
	hassert(hproc_stop(r.proxy, 0) == 0, "the proxy exited badly");
}

/* The page must read why it failed: 401 (client keys) and 504 (timeout)
 * made by the proxy carry the CORS fields too. */
Test(cors, proxy_errors_carry_cors, .timeout = 60)
{
	struct rig	 r;
	struct hresp	*a;
	const char	*h[] = { "Origin: " PAGE, NULL };
	const char	*slow[] = { "Origin: " PAGE,
	    "Authorization: Bearer test", "X-Mock-First-Token-Ms: 60000",
	    NULL };

	/* sha256("test") */
	rig_start(&r, "", ",\"clients\":{\"keys\":[{\"name\":\"k\","
	    "\"key_sha256\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c"
	    "d15d6c15b0f00a08\"}]}");
	a = call(r.port, "POST", "/v1/chat/completions", h,
	    hreq_chat_body("mock-1", 1));
	hassert(a != NULL, "no answer");
	cr_assert_eq(a->status, 401);
	expect_cors(a);
	a = call(r.port, "POST", "/v1/chat/completions", slow,
	    hreq_chat_body("mock-1", 0));
	hassert(a != NULL, "no answer");
	cr_assert_eq(a->status, 504);
	expect_cors(a);
	hassert(hresp_header(a, "Proxy-Status") != NULL, "no Proxy-Status");
	hassert(hproc_stop(r.proxy, 0) == 0, "the proxy exited badly");
}

/* A route without cors behaves as before: the OPTIONS goes to the model
 * and the answer gets no CORS fields from the proxy. */
Test(cors, route_without_cors_is_as_before, .timeout = 60)
{
	struct rig	 r;
	struct hresp	*a;
	const char	*h[] = { "Origin: " EVIL, NULL };

	rig_start(&r, "", "");
	a = preflight(r.port, "/plain/v1/chat/completions", PAGE, "POST",
	    NULL);
	hassert(a != NULL, "no answer");
	cr_assert_neq(a->status, 204);
	expect_no_cors(a);
	hassert(hproc_wait_record(r.mock, "mock_request", "method", "OPTIONS",
	    0) != NULL, "the OPTIONS was not forwarded");
	a = call(r.port, "POST", "/plain/v1/chat/completions", h,
	    hreq_chat_body("mock-1", 0));
	hassert(a != NULL, "no answer");
	expect_no_cors(a);
	cr_assert_null(hresp_header(a, "Vary"));
	hassert(hproc_stop(r.proxy, 0) == 0, "the proxy exited badly");
}

/* The cancel API takes the policy of the route its path falls under: its
 * preflight is answered and its answer readable. */
Test(cors, cancel_api_from_the_page, .timeout = 60)
{
	struct rig	 r;
	struct hconn	*c;
	struct hresp	*resp, *a;
	const char	*h[] = { "Origin: " PAGE, "X-Request-Id: page-2",
	    "Authorization: Bearer sk-page", NULL };
	const char	*ch[] = { "Origin: " PAGE,
	    "Authorization: Bearer sk-page", NULL };
	const char	*eh[] = { "Origin: " EVIL,
	    "Authorization: Bearer sk-page", NULL };

	rig_start(&r, "", "");
	c = hconn_connect("127.0.0.1", r.port);
	cr_assert_not_null(c);
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, h)), 0);
	resp = hconn_read_head(c, 0);
	hassert(resp != NULL && resp->status == 200, "no stream");
	hassert(hconn_read_event(c, resp, 0) != NULL, "no event");
	a = preflight(r.port, "/v1/cancel/page-2", PAGE, "POST",
	    "authorization");
	hassert(a != NULL, "no answer");
	cr_assert_eq(a->status, 204);
	expect_cors(a);
	/* Another origin, even with the right credential, cannot. */
	a = call(r.port, "POST", "/v1/cancel/page-2", eh, "");
	hassert(a != NULL, "no answer");
	cr_assert_eq(a->status, 403);
	expect_no_cors(a);
	hassert(hconn_read_event(c, resp, 0) != NULL, "the stream stopped");
	a = call(r.port, "POST", "/v1/cancel/page-2", ch, "");
	hassert(a != NULL, "no answer");
	cr_assert_eq(a->status, 202);
	expect_cors(a);
	hassert(hproc_wait_match(r.proxy, 0, "event", "cancel", "request_id",
	    "page-2", "origin.kind", "client_cancel", NULL) != NULL,
	    "no cancel record");
	hassert(hmock_wait_closed(r.mock, "page-2"), "the model was not told");
	hassert(hproc_stop(r.proxy, 0) == 0, "the proxy exited badly");
}

/* GET /cancels on the admin API: the record of a stream by id, readable
 * by an allowed page and by no other origin. */
Test(cors, admin_cancels_endpoint, .timeout = 60)
{
	struct rig	 r;
	struct hconn	*c;
	struct hresp	*resp, *a;
	const char	*h[] = { "X-Request-Id: page-3", NULL };
	const char	*ph[] = { "Origin: " PAGE, NULL };
	const char	*eh[] = { "Origin: " EVIL, NULL };
	const cJSON	*list;
	cJSON		*rec;
	int		 admin;

	rig_start(&r, "", ",\"admin\":{\"address\":\"127.0.0.1:0\"}");
	rec = hproc_wait_record(r.proxy, "listening", "role", "admin", 0);
	hassert(rec != NULL, "no admin listener");
	admin = (int)hjson_num(rec, "port", -1);
	c = hconn_connect("127.0.0.1", r.port);
	cr_assert_not_null(c);
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, h)), 0);
	resp = hconn_read_head(c, 0);
	hassert(resp != NULL, "no head");
	hassert(hconn_read_event(c, resp, 0) != NULL, "no event");
	hconn_close_rst(c);
	hassert(hproc_wait_record(r.proxy, "cancel", "request_id", "page-3",
	    0) != NULL, "no cancel record");
	a = call(admin, "GET", "/cancels?request_id=page-3", ph, NULL);
	hassert(a != NULL, "no answer");
	cr_assert_eq(a->status, 200);
	cr_assert_str_eq(hresp_header(a, "Access-Control-Allow-Origin"), PAGE);
	list = hjson_get(hresp_json(a), "cancels");
	hassert(cJSON_GetArraySize(list) == 1, "records: %s",
	    hjson_print(hresp_json(a)));
	cr_assert_str_eq(hjson_str(cJSON_GetArrayItem(list, 0), "request_id"),
	    "page-3");
	cr_assert_str_eq(hjson_str(cJSON_GetArrayItem(list, 0), "detected_via"),
	    "rst");
	a = call(admin, "GET", "/cancels?request_id=nothing", eh, NULL);
	hassert(a != NULL, "no answer");
	cr_assert_eq(cJSON_GetArraySize(hjson_get(hresp_json(a), "cancels")),
	    0);
	expect_no_cors(a);
	hassert(hproc_stop(r.proxy, 0) == 0, "the proxy exited badly");
}

/* GET /cancels scrubs configured secrets as the log does, even from a
 * request id a client chose to make equal to one. */
Test(cors, admin_cancels_are_scrubbed, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hconn	*c;
	struct hresp	*resp, *a;
	const char	*h[] = { "X-Request-Id: sk-live-0123456789", NULL };
	cJSON		*rec;
	int		 mport, port, admin;

	mock = hmock_start(&mport, "--first-token-ms", "10", "--interval-ms",
	    "20", "--tokens", "100000", NULL);
	cr_assert_not_null(mock);
	proxy = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"admin\":{\"address\":\"127.0.0.1:0\"},"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\","
	    "\"set_headers\":{\"X-Key\":\"sk-live-0123456789\"}}},"
	    "\"routes\":[{\"path_prefix\":\"/v1/\",\"upstream\":\"mock\"}]}",
	    mport);
	cr_assert_not_null(proxy);
	port = hproxy_port(proxy, 0);
	rec = hproc_wait_record(proxy, "listening", "role", "admin", 0);
	hassert(rec != NULL, "no admin listener");
	admin = (int)hjson_num(rec, "port", -1);
	c = hconn_connect("127.0.0.1", port);
	cr_assert_not_null(c);
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, h)), 0);
	resp = hconn_read_head(c, 0);
	hassert(resp != NULL, "no head");
	hassert(hconn_read_event(c, resp, 0) != NULL, "no event");
	hconn_close_fin(c);
	hassert(hproc_wait_record(proxy, "cancel", NULL, NULL, 0) != NULL,
	    "no cancel record");
	a = call(admin, "GET", "/cancels", NULL, NULL);
	hassert(a != NULL && a->status == 200, "no answer");
	hassert(cJSON_GetArraySize(hjson_get(hresp_json(a), "cancels")) == 1,
	    "records: %s", a->body);
	hassert(strstr(a->body, "sk-live-0123456789") == NULL,
	    "a secret in GET /cancels: %s", a->body);
	hassert(strstr(a->body, "[redacted]") != NULL, "not scrubbed: %s",
	    a->body);
	hassert(hproc_stop(proxy, 0) == 0, "the proxy exited badly");
}

/* The listening record names the port on its own (a script given port 0
 * reads it without splitting the address). */
Test(cors, listening_record_has_the_port, .timeout = 60)
{
	struct rig	 r;
	cJSON		*rec;
	const char	*addr;

	rig_start(&r, "", "");
	rec = hproc_find_record(r.proxy, "listening", "role", "proxy");
	hassert(rec != NULL, "no listening record");
	addr = hjson_str(rec, "address");
	cr_assert_eq((int)hjson_num(rec, "port", -1), r.port);
	cr_assert_eq(atoi(strrchr(addr, ':') + 1), r.port);
	hassert(hproc_stop(r.proxy, 0) == 0, "the proxy exited badly");
}
