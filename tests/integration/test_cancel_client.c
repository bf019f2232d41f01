/* Cancel toward the model: the client leaves (FIN, RST, half-close) in each
 * phase, and the proxy closes the upstream stream and records it. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define EDGE_CONFIG \
	"{\"hop\":\"edge\",\"workers\":1," \
	"\"listen\":[{\"address\":\"127.0.0.1:0\"}]," \
	"\"upstreams\":{\"mock\":{\"url\":\"%s://127.0.0.1:%d\"%s}}," \
	"\"routes\":[{\"path_prefix\":\"/v1/\",\"upstream\":\"mock\"}]}"

struct rig {
	struct hproc	*mock;
	struct hproc	*proxy;
	int		 mock_port;
	int		 port;
};

static void
rig_start(struct rig *r, const char *first_token_ms)
{
	r->mock = hmock_start(&r->mock_port, "--first-token-ms", first_token_ms,
	    "--interval-ms", "20", "--tokens", "100000", NULL);
	cr_assert_not_null(r->mock, "mock did not start");
	r->proxy = hproxy_startf(EDGE_CONFIG, "http", r->mock_port, "");
	cr_assert_not_null(r->proxy, "proxy did not start");
	r->port = hproxy_port(r->proxy, 0);
	cr_assert_gt(r->port, 0);
}

/* The proxy exits cleanly (and, under valgrind, without leaks). */
static void
proxy_stop_clean(struct hproc *proxy)
{
	hassert(hproc_stop(proxy, 0) == 0, "the proxy did not exit cleanly");
}

static void
leave(struct hconn *c, const char *how)
{
	if (strcmp(how, "fin") == 0)
		hconn_close_fin(c);
	else if (strcmp(how, "rst") == 0)
		hconn_close_rst(c);
	else
		hconn_shutdown_wr(c);
}

/* The cancel record for phase, with everything DESIGN.md §4 asks for. */
static cJSON *
expect_cancel(struct rig *r, const char *phase, const char *via)
{
	cJSON *rec = hproc_wait_match(r->proxy, 0, "event", "cancel",
	    "phase", phase, NULL);

	hassert(rec != NULL, "no cancel record");
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "client_disconnect");
	cr_assert_str_eq(hjson_str(rec, "origin.hop"), "client");
	cr_assert_str_eq(hjson_str(rec, "cancel_path.0"), "client");
	cr_assert_str_eq(hjson_str(rec, "cancel_path.1"), "edge");
	cr_assert_null(hjson_get(rec, "cancel_path.2"));
	cr_assert_str_eq(hjson_str(rec, "direction"), "upstream");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), via,
	    "detected_via %s, want %s", hjson_str(rec, "detected_via"), via);
	cr_assert_str_eq(hjson_str(rec, "hop"), "edge");
	cr_assert_not_null(hjson_str(rec, "request_id"));
	cr_assert_eq(strlen(hjson_str(rec, "trace_id")), 32);
	cr_assert_geq(hjson_num(rec, "elapsed_ms", -1), 0);
	cr_assert_not_null(strstr(hjson_str(rec, "message"),
	    "[canceled path: client -> edge]"));
	return rec;
}

/* The request record says canceled, and names the same request. */
static void
expect_request_canceled(struct rig *r, const char *request_id)
{
	cJSON *rec = hproc_wait_match(r->proxy, 0, "event", "request",
	    "request_id", request_id, NULL);

	hassert(rec != NULL, "no request record");
	cr_assert_str_eq(hjson_str(rec, "outcome"), "canceled");
}

/* The model server saw its client (the proxy) close the stream. */
static void
expect_mock_saw_close(struct rig *r, const char *request_id,
    const char *mock_phase)
{
	cJSON *rec = hmock_wait_closed(r->mock, request_id);

	hassert(rec != NULL, "the mock never saw its stream closed");
	if (mock_phase != NULL)
		cr_assert_str_eq(hjson_str(rec, "phase"), mock_phase);
}

static void
cancel_while_waiting_first_byte(const char *how, const char *via)
{
	struct rig	 r;
	struct hconn	*c;
	cJSON		*rec;

	rig_start(&r, "60000");
	c = hconn_connect("127.0.0.1", r.port);
	cr_assert_not_null(c);
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)), 0);
	/* The model has the request and is "thinking": nothing flows. */
	hassert(hproc_wait_record(r.mock, "mock_request", NULL, NULL, 0),
	    "the request never reached the mock");
	hsleep_ms(50);
	leave(c, how);
	rec = expect_cancel(&r, "waiting_first_byte", via);
	cr_assert_geq(hjson_num(rec, "detect_to_close_us", -1), 0);
	cr_assert_eq(hjson_num(rec, "sse_events", -1), 0);
	expect_mock_saw_close(&r, hjson_str(rec, "request_id"),
	    "waiting_first_token");
	expect_request_canceled(&r, hjson_str(rec, "request_id"));
	proxy_stop_clean(r.proxy);
}

Test(cancel_client, waiting_first_byte_fin, .timeout = 60)
{
	cancel_while_waiting_first_byte("fin", "eof");
}

Test(cancel_client, waiting_first_byte_rst, .timeout = 60)
{
	cancel_while_waiting_first_byte("rst", "rst");
}

Test(cancel_client, waiting_first_byte_half_close, .timeout = 60)
{
	cancel_while_waiting_first_byte("half", "eof");
}

static void
cancel_mid_stream(const char *how, const char *via)
{
	struct rig	 r;
	struct hconn	*c;
	struct hresp	*resp;
	cJSON		*rec;
	int		 i;

	rig_start(&r, "10");
	c = hconn_connect("127.0.0.1", r.port);
	cr_assert_not_null(c);
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)), 0);
	resp = hconn_read_head(c, 0);
	hassert(resp != NULL, "no response head");
	cr_assert_eq(resp->status, 200);
	cr_assert_str_eq(hresp_header(resp, "transfer-encoding"), "chunked");
	for (i = 0; i < 3; i++)
		hassert(hconn_read_event(c, resp, 0) != NULL, "event missing");
	leave(c, how);
	rec = expect_cancel(&r, "streaming", via);
	cr_assert_geq(hjson_num(rec, "sse_events", -1), 3);
	cr_assert_gt(hjson_num(rec, "bytes_out", -1), 0);
	cr_assert_geq(hjson_num(rec, "detect_to_close_us", -1), 0);
	expect_mock_saw_close(&r, hjson_str(rec, "request_id"), "streaming");
	expect_request_canceled(&r, hjson_str(rec, "request_id"));
	proxy_stop_clean(r.proxy);
}

Test(cancel_client, streaming_fin, .timeout = 60)
{
	cancel_mid_stream("fin", "eof");
}

Test(cancel_client, streaming_rst, .timeout = 60)
{
	cancel_mid_stream("rst", "rst");
}

Test(cancel_client, streaming_half_close, .timeout = 60)
{
	cancel_mid_stream("half", "eof");
}

static void
cancel_during_request(const char *how, const char *via)
{
	struct rig	 r;
	struct hconn	*c;
	cJSON		*rec;

	rig_start(&r, "10");
	c = hconn_connect("127.0.0.1", r.port);
	cr_assert_not_null(c);
	/* Headers and part of the body: the request is still arriving. */
	cr_assert_eq(hconn_send_str(c, "POST /v1/chat/completions HTTP/1.1\r\n"
	    "Host: x\r\nContent-Type: application/json\r\n"
	    "Content-Length: 100\r\n\r\n{\"model\":"), 0);
	hsleep_ms(100);
	leave(c, how);
	rec = expect_cancel(&r, "request", via);
	cr_assert(cJSON_IsNull(hjson_get(rec, "detect_to_close_us")),
	    "no upstream socket existed, so nothing was closed");
	/* Nothing reached the model. */
	hsleep_ms(100);
	cr_assert_eq(hproc_count(r.mock, "mock_request"), 0);
	proxy_stop_clean(r.proxy);
}

Test(cancel_client, request_fin, .timeout = 60)
{
	cancel_during_request("fin", "eof");
}

Test(cancel_client, request_rst, .timeout = 60)
{
	cancel_during_request("rst", "rst");
}

/*
 * Connecting: the upstream is https but the listener never answers the
 * TLS handshake, so the proxy stays in "connecting" until the client
 * leaves; the listener must then see the proxy's connection close.
 */
static void
cancel_while_connecting(const char *how, const char *via)
{
	struct hproc	*proxy;
	struct hconn	*c;
	cJSON		*rec;
	int		 lfd, up_port, ufd;

	lfd = hnet_listen("127.0.0.1", &up_port);
	cr_assert_geq(lfd, 0);
	proxy = hproxy_startf(EDGE_CONFIG, "https", up_port,
	    ",\"timeouts_ms\":{\"connect\":60000}");
	cr_assert_not_null(proxy);
	c = hconn_connect("127.0.0.1", hproxy_port(proxy, 0));
	cr_assert_not_null(c);
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)), 0);
	ufd = hnet_accept(lfd, 0);
	hassert(ufd >= 0, "the proxy never connected upstream");
	hsleep_ms(50);
	leave(c, how);
	rec = hproc_wait_match(proxy, 0, "event", "cancel", NULL);
	hassert(rec != NULL, "no cancel record");
	cr_assert_str_eq(hjson_str(rec, "phase"), "connecting");
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "client_disconnect");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), via);
	cr_assert_geq(hjson_num(rec, "detect_to_close_us", -1), 0);
	/* The half-made upstream connection is gone too. */
	cr_assert_neq(hnet_wait_closed(ufd, 0), HNET_TIMEOUT);
	close(ufd);
	close(lfd);
	proxy_stop_clean(proxy);
}

Test(cancel_client, connecting_fin, .timeout = 60)
{
	cancel_while_connecting("fin", "eof");
}

Test(cancel_client, connecting_rst, .timeout = 60)
{
	cancel_while_connecting("rst", "rst");
}

/*
 * Backpressure: a client that stops reading makes the proxy pause the
 * upstream; leaving while paused must still close the upstream at once.
 */
static void
cancel_while_paused(const char *how, const char *via)
{
	struct rig	 r;
	struct hconn	*c;
	cJSON		*rec;
	int		 rcv = 4096;

	r.mock = hmock_start(&r.mock_port, "--first-token-ms", "0",
	    "--interval-ms", "0", "--tokens", "1000000", NULL);
	cr_assert_not_null(r.mock);
	r.proxy = hproxy_startf(EDGE_CONFIG, "http", r.mock_port, "");
	cr_assert_not_null(r.proxy);
	c = hconn_connect("127.0.0.1", hproxy_port(r.proxy, 0));
	cr_assert_not_null(c);
	setsockopt(hconn_fd(c), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)), 0);
	hassert(hproc_wait_record(r.mock, "mock_request", NULL, NULL, 0),
	    "no request at the mock");
	/* Read nothing for a while: buffers fill, the proxy pauses. */
	hsleep_ms(500);
	leave(c, how);
	rec = expect_cancel(&r, "streaming", via);
	cr_assert_gt(hjson_num(rec, "bytes_out", -1), 65536);
	expect_mock_saw_close(&r, hjson_str(rec, "request_id"), "streaming");
	proxy_stop_clean(r.proxy);
}

Test(cancel_client, paused_fin, .timeout = 60)
{
	cancel_while_paused("fin", "eof");
}

Test(cancel_client, paused_rst, .timeout = 60)
{
	cancel_while_paused("rst", "rst");
}

/* A keep-alive connection idle between requests leaves: no session, so
 * no cancel record, and the proxy stays healthy. */
Test(cancel_client, idle_keepalive_close_is_not_a_cancel, .timeout = 60)
{
	struct rig	 r;
	struct hconn	*c;
	struct hresp	*resp;

	const char *few[] = { "X-Mock-Tokens: 3", NULL };

	rig_start(&r, "0");
	c = hconn_connect("127.0.0.1", r.port);
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 0, few)), 0);
	resp = hconn_read_response(c, 0);
	hassert(resp != NULL, "no response");
	cr_assert_eq(resp->status, 200);
	hassert(hproc_wait_record(r.proxy, "request", "outcome", "completed",
	    0), "no completed request record");
	hconn_close_rst(c);
	hsleep_ms(200);
	cr_assert_eq(hproc_count(r.proxy, "cancel"), 0);
	resp = hhttp_exchange("127.0.0.1", r.port, hreq_chat("mock-1", 0, few),
	    0);
	hassert(resp != NULL && resp->status == 200, "proxy unhealthy after");
	proxy_stop_clean(r.proxy);
}
