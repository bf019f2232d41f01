/* Cancel toward the client: the model side fails or stalls (refused,
 * closed, reset, garbage, each timeout), and the proxy ends the client's
 * side with a 502/504 before headers or an SSE error event mid-stream. */
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define CONFIG \
	"{\"hop\":\"edge\",\"workers\":1," \
	"\"listen\":[{\"address\":\"127.0.0.1:0\"}]," \
	"\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"," \
	"\"timeouts_ms\":%s}}," \
	"\"routes\":[{\"path_prefix\":\"/v1/\",\"upstream\":\"mock\"}]}"

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

static void
raw_start(struct raw *r, const char *timeouts)
{
	r->lfd = hnet_listen("127.0.0.1", &r->port);
	cr_assert_geq(r->lfd, 0);
	r->proxy = hproxy_startf(CONFIG, r->port, timeouts);
	cr_assert_not_null(r->proxy);
	r->c = hconn_connect("127.0.0.1", hproxy_port(r->proxy, 0));
	cr_assert_not_null(r->c);
	cr_assert_eq(hconn_send_str(r->c, hreq_chat("mock-1", 1, NULL)), 0);
	r->fd = hnet_accept(r->lfd, 0);
	hassert(r->fd >= 0, "the proxy never connected");
	{
		char buf[8192];

		hassert(hnet_recv_until(r->fd, buf, sizeof(buf), "\"stream\"",
		    0) > 0, "the request never arrived upstream");
	}
}

/* The proxy exits cleanly (and, under valgrind, without leaks). */
static void
proxy_stop_clean(struct hproc *proxy)
{
	hassert(hproc_stop(proxy, 0) == 0, "the proxy did not exit cleanly");
}

static cJSON *
cancel_record(struct hproc *proxy, const char *kind)
{
	cJSON *rec = hproc_wait_match(proxy, 0, "event", "cancel",
	    "origin.kind", kind, NULL);

	hassert(rec != NULL, "no cancel record of this kind");
	cr_assert_str_eq(hjson_str(rec, "direction"), "downstream");
	cr_assert_geq(hjson_num(rec, "detect_to_close_us", -1), 0);
	return rec;
}

/* A 502/504 with Proxy-Status naming this hop and a JSON error body. */
static void
expect_error_response(struct hconn *c, int status, const char *kind,
    const char *proxy_error)
{
	struct hresp	*resp = hconn_read_response(c, 0);
	const char	*ps;
	cJSON		*body;

	hassert(resp != NULL, "no error response");
	cr_assert_eq(resp->status, status);
	ps = hresp_header(resp, "proxy-status");
	cr_assert_not_null(ps, "no Proxy-Status");
	cr_assert_eq(strncmp(ps, "edge; error=", 12), 0, "%s", ps);
	cr_assert_not_null(strstr(ps, proxy_error), "%s", ps);
	cr_assert_str_eq(hresp_header(resp, "content-type"),
	    "application/json");
	body = hresp_json(resp);
	cr_assert_not_null(body, "body is not JSON: %s", resp->body);
	cr_assert_str_eq(hjson_str(body, "error.code"), kind);
	cr_assert_str_eq(hjson_str(body, "error.cancel.origin.kind"), kind);
	cr_assert_not_null(strstr(hjson_str(body, "error.message"),
	    "[canceled path:"));
}

/* Mid-stream: after the relayed events, an SSE error event, then a clean
 * end of the chunked body. */
static void
expect_sse_error(struct hconn *c, const char *kind, const char *origin_hop)
{
	struct hresp	*resp = hconn_read_head(c, 0);
	const char	*ev, *last_error = NULL;
	cJSON		*data;

	hassert(resp != NULL, "no response head");
	cr_assert_eq(resp->status, 200);
	while ((ev = hconn_read_event(c, resp, 0)) != NULL)
		if (hsse_type(ev) != NULL && strcmp(hsse_type(ev), "error") == 0)
			last_error = ev;
	hassert(last_error != NULL, "no SSE error event");
	cr_assert(resp->complete, "the stream did not end cleanly");
	data = hsse_json(last_error);
	cr_assert_not_null(data);
	cr_assert_str_eq(hjson_str(data, "error.code"), kind);
	cr_assert_str_eq(hjson_str(data, "error.cancel.origin.hop"), origin_hop);
	cr_assert_str_eq(hjson_str(data, "error.cancel.cancel_path.0"),
	    origin_hop);
}

Test(cancel_upstream, connect_refused_is_502, .timeout = 60)
{
	struct hproc	*proxy;
	struct hconn	*c;
	cJSON		*rec;
	int		 lfd, port;

	lfd = hnet_listen("127.0.0.1", &port);
	close(lfd);			/* nothing listens there now */
	proxy = hproxy_startf(CONFIG, port, "{}");
	cr_assert_not_null(proxy);
	c = hconn_connect("127.0.0.1", hproxy_port(proxy, 0));
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)), 0);
	expect_error_response(c, 502, "upstream_error",
	    "destination_unavailable");
	rec = cancel_record(proxy, "upstream_error");
	cr_assert_str_eq(hjson_str(rec, "phase"), "connecting");
	cr_assert_str_eq(hjson_str(rec, "cancel_path.0"), "upstream:mock");
	cr_assert_str_eq(hjson_str(rec, "cancel_path.1"), "edge");
	proxy_stop_clean(proxy);
}

Test(cancel_upstream, connect_timeout_is_504, .timeout = 60)
{
	struct hproc	*proxy;
	struct hconn	*c;
	cJSON		*rec;
	int		 lfd, port, ufd;

	/* https to a listener that never answers the handshake. */
	lfd = hnet_listen("127.0.0.1", &port);
	proxy = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"https://127.0.0.1:%d\","
	    "\"timeouts_ms\":{\"connect\":300}}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]}", port);
	cr_assert_not_null(proxy);
	c = hconn_connect("127.0.0.1", hproxy_port(proxy, 0));
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)), 0);
	ufd = hnet_accept(lfd, 0);
	cr_assert_geq(ufd, 0);
	expect_error_response(c, 504, "upstream_error", "connection_timeout");
	rec = cancel_record(proxy, "upstream_error");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "timer");
	cr_assert_str_eq(hjson_str(rec, "cancel_path.0"), "edge");
	cr_assert_neq(hnet_wait_closed(ufd, 0), HNET_TIMEOUT,
	    "the upstream connection was left open");
	close(ufd);
	close(lfd);
	proxy_stop_clean(proxy);
}

Test(cancel_upstream, first_byte_timeout_before_headers_is_504,
    .timeout = 60)
{
	struct raw	 r;
	cJSON		*rec;

	raw_start(&r, "{\"first_byte\":300}");
	expect_error_response(r.c, 504, "first_byte_timeout",
	    "http_response_timeout");
	rec = cancel_record(r.proxy, "first_byte_timeout");
	cr_assert_str_eq(hjson_str(rec, "phase"), "waiting_first_byte");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "timer");
	cr_assert_geq(hjson_num(rec, "elapsed_ms", 0), 300);
	cr_assert_neq(hnet_wait_closed(r.fd, 0), HNET_TIMEOUT,
	    "the upstream stream was left open");
	proxy_stop_clean(r.proxy);
}

/* Response headers alone do not stop the first-byte timer. */
Test(cancel_upstream, first_byte_timeout_after_headers_is_sse_error,
    .timeout = 60)
{
	struct raw	 r;
	cJSON		*rec;

	raw_start(&r, "{\"first_byte\":300}");
	cr_assert_eq(hnet_send_str(r.fd, SSE_HEAD), 0);
	expect_sse_error(r.c, "first_byte_timeout", "edge");
	rec = cancel_record(r.proxy, "first_byte_timeout");
	cr_assert_str_eq(hjson_str(rec, "phase"), "waiting_first_byte");
	cr_assert_neq(hnet_wait_closed(r.fd, 0), HNET_TIMEOUT);
	proxy_stop_clean(r.proxy);
}

Test(cancel_upstream, idle_timeout_mid_stream, .timeout = 60)
{
	struct raw	 r;
	cJSON		*rec;

	raw_start(&r, "{\"idle\":300}");
	cr_assert_eq(hnet_send_str(r.fd, SSE_HEAD SSE_EVENT SSE_EVENT), 0);
	expect_sse_error(r.c, "idle_timeout", "edge");
	rec = cancel_record(r.proxy, "idle_timeout");
	cr_assert_str_eq(hjson_str(rec, "phase"), "streaming");
	cr_assert_eq(hjson_num(rec, "sse_events", 0), 2);
	cr_assert_neq(hnet_wait_closed(r.fd, 0), HNET_TIMEOUT);
	proxy_stop_clean(r.proxy);
}

/* Bytes that keep coming reset the idle timer; the total cap still ends
 * the exchange. */
Test(cancel_upstream, total_timeout_with_bytes_flowing, .timeout = 60)
{
	struct raw	 r;
	cJSON		*rec;
	int		 i;

	raw_start(&r, "{\"idle\":400,\"total\":600}");
	cr_assert_eq(hnet_send_str(r.fd, SSE_HEAD), 0);
	/* An event every 100 ms for up to 2 s; the proxy stops it at 600. */
	for (i = 0; i < 20; i++) {
		if (hnet_send_str(r.fd, SSE_EVENT) == -1)
			break;
		hsleep_ms(100);
	}
	cr_assert_lt(i, 20, "the upstream was never closed");
	expect_sse_error(r.c, "total_timeout", "edge");
	rec = cancel_record(r.proxy, "total_timeout");
	cr_assert_geq(hjson_num(rec, "elapsed_ms", 0), 600);
	cr_assert_geq(hjson_num(rec, "sse_events", 0), 4);
	proxy_stop_clean(r.proxy);
}

Test(cancel_upstream, closed_before_headers_is_502, .timeout = 60)
{
	struct raw	 r;
	cJSON		*rec;

	raw_start(&r, "{}");
	hnet_close_fin(r.fd);
	expect_error_response(r.c, 502, "upstream_closed",
	    "connection_terminated");
	rec = cancel_record(r.proxy, "upstream_closed");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "eof");
	cr_assert_str_eq(hjson_str(rec, "cancel_path.0"), "upstream:mock");
	proxy_stop_clean(r.proxy);
}

Test(cancel_upstream, reset_before_headers_is_502, .timeout = 60)
{
	struct raw	 r;
	cJSON		*rec;

	raw_start(&r, "{}");
	hnet_close_rst(r.fd);
	expect_error_response(r.c, 502, "upstream_closed",
	    "connection_terminated");
	rec = cancel_record(r.proxy, "upstream_closed");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "rst");
	proxy_stop_clean(r.proxy);
}

Test(cancel_upstream, closed_mid_stream_is_sse_error, .timeout = 60)
{
	struct raw	 r;
	cJSON		*rec;

	raw_start(&r, "{}");
	cr_assert_eq(hnet_send_str(r.fd, SSE_HEAD SSE_EVENT), 0);
	hsleep_ms(50);
	hnet_close_fin(r.fd);
	expect_sse_error(r.c, "upstream_closed", "upstream:mock");
	rec = cancel_record(r.proxy, "upstream_closed");
	cr_assert_str_eq(hjson_str(rec, "phase"), "streaming");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "eof");
	cr_assert_str_eq(hjson_str(rec, "cancel_path.1"), "edge");
	proxy_stop_clean(r.proxy);
}

Test(cancel_upstream, reset_mid_stream_is_sse_error, .timeout = 60)
{
	struct raw	 r;
	cJSON		*rec;

	raw_start(&r, "{}");
	cr_assert_eq(hnet_send_str(r.fd, SSE_HEAD SSE_EVENT), 0);
	hsleep_ms(50);
	hnet_close_rst(r.fd);
	expect_sse_error(r.c, "upstream_closed", "upstream:mock");
	rec = cancel_record(r.proxy, "upstream_closed");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "rst");
	proxy_stop_clean(r.proxy);
}

/* An event cut in half still leaves the client a parseable error. */
Test(cancel_upstream, closed_mid_event_terminates_the_partial_event,
    .timeout = 60)
{
	struct raw	 r;

	raw_start(&r, "{}");
	cr_assert_eq(hnet_send_str(r.fd, SSE_HEAD "d\r\ndata: {\"tok\r\n"), 0);
	hsleep_ms(50);
	hnet_close_fin(r.fd);
	expect_sse_error(r.c, "upstream_closed", "upstream:mock");
	proxy_stop_clean(r.proxy);
}

Test(cancel_upstream, garbage_response_is_502, .timeout = 60)
{
	struct raw	 r;
	cJSON		*rec;

	raw_start(&r, "{}");
	cr_assert_eq(hnet_send_str(r.fd, "NOT HTTP AT ALL\r\n\r\n"), 0);
	expect_error_response(r.c, 502, "upstream_error",
	    "destination_unavailable");
	rec = cancel_record(r.proxy, "upstream_error");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "upstream_status");
	proxy_stop_clean(r.proxy);
}

/* A broken chunk after headers: mid-stream error, connection closed. */
Test(cancel_upstream, broken_chunk_mid_stream, .timeout = 60)
{
	struct raw	 r;

	raw_start(&r, "{}");
	cr_assert_eq(hnet_send_str(r.fd, SSE_HEAD SSE_EVENT "zz\r\n"), 0);
	expect_sse_error(r.c, "upstream_closed", "upstream:mock");
	hassert(hproc_wait_match(r.proxy, 0, "event", "cancel",
	    "origin.kind", "upstream_closed", NULL) != NULL, "no record");
	proxy_stop_clean(r.proxy);
}

/* An upstream error status is the model's answer, not a cancel. */
Test(cancel_upstream, upstream_500_is_passed_through, .timeout = 60)
{
	struct raw	 r;
	struct hresp	*resp;
	cJSON		*rec;

	raw_start(&r, "{}");
	cr_assert_eq(hnet_send_str(r.fd, "HTTP/1.1 500 Internal Server Error\r\n"
	    "Content-Type: application/json\r\nContent-Length: 17\r\n\r\n"
	    "{\"error\":\"boom\"}\n"), 0);
	resp = hconn_read_response(r.c, 0);
	hassert(resp != NULL, "no response");
	cr_assert_eq(resp->status, 500);
	cr_assert_str_eq(resp->body, "{\"error\":\"boom\"}\n");
	rec = hproc_wait_record(r.proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL, "no request record");
	cr_assert_str_eq(hjson_str(rec, "outcome"), "completed");
	cr_assert_eq(hjson_num(rec, "status", 0), 500);
	cr_assert_eq(hproc_count(r.proxy, "cancel"), 0);
	proxy_stop_clean(r.proxy);
}

/* Through the real mock: its own fault injection mid-stream. */
Test(cancel_upstream, mock_close_after_tokens, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hconn	*c;
	int		 mport;
	const char	*hdrs[] = { "X-Mock-Fault: close_after:3", NULL };

	mock = hmock_start(&mport, "--first-token-ms", "10", "--interval-ms",
	    "10", NULL);
	cr_assert_not_null(mock);
	proxy = hproxy_startf(CONFIG, mport, "{}");
	cr_assert_not_null(proxy);
	c = hconn_connect("127.0.0.1", hproxy_port(proxy, 0));
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, hdrs)), 0);
	expect_sse_error(c, "upstream_closed", "upstream:mock");
	hassert(hproc_wait_match(proxy, 0, "event", "cancel",
	    "origin.kind", "upstream_closed", "sse_events", "3", NULL) != NULL,
	    "no cancel record with 3 events relayed");
	proxy_stop_clean(proxy);
}
