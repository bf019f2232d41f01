/* HTTP/2 toward the model: cancelproxy-mock as an HTTP/2 server (prior
 * knowledge on its plain port, ALPN on TLS). Many streams share one
 * connection byte for byte; a client that leaves resets its own stream
 * with RST_STREAM(CANCEL) while the others finish on the same connection;
 * REFUSED_STREAM, GOAWAY, a dying connection and a PING timeout each end
 * or retry exactly the streams they should. */
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define CONFIG \
	"{\"hop\":\"edge\",\"workers\":1," \
	"\"listen\":[{\"address\":\"127.0.0.1:0\"}]," \
	"\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"," \
	"\"protocol\":\"h2\",\"h2\":%s}}," \
	"\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]}"

#define NSTREAMS	24

static struct hproc *
proxy_start(int mock_port, const char *h2)
{
	struct hproc *p = hproxy_startf(CONFIG, mock_port, h2);

	hassert(p != NULL, "the proxy did not start");
	return p;
}

static void
proxy_stop_clean(struct hproc *proxy)
{
	hassert(hproc_stop(proxy, 0) == 0, "the proxy did not exit cleanly");
}

/* A chat request with our own request id and extra headers; the mock
 * sends a streaming answer's head at once, a whole answer's at the end. */
static struct hconn *
send_chat_s(int port, const char *rid, const char *extra, int stream)
{
	const char	*hdrs[3] = { hstrf("X-Request-Id: %s", rid), extra, NULL };
	struct hconn	*c = hconn_connect("127.0.0.1", port);

	hassert(c != NULL);
	hassert(hconn_send_str(c, hreq_chat("mock-1", stream, hdrs)) == 0);
	return c;
}

static struct hconn *
send_chat(int port, const char *rid, const char *extra)
{
	return send_chat_s(port, rid, extra, 1);
}

/* Reads a whole SSE answer: tokens tok1..tokN in order, then [DONE]. */
static void
expect_tokens(struct hconn *c, int ntokens)
{
	struct hresp	*r = hconn_read_head(c, 0);
	const char	*ev;
	int		 seen = 0, done = 0;

	hassert(r != NULL, "no response head");
	cr_assert_eq(r->status, 200);
	while ((ev = hconn_read_event(c, r, 0)) != NULL) {
		const char *d = hsse_data(ev);

		if (d != NULL && strcmp(d, "[DONE]") == 0) {
			done = 1;
			continue;
		}
		if (d != NULL && strstr(d, hstrf("\"tok%d \"", seen + 1)))
			seen++;
	}
	cr_assert(r->complete, "the body did not end cleanly");
	cr_assert_eq(seen, ntokens, "tokens: %d of %d", seen, ntokens);
	cr_assert(done, "no [DONE]");
}

/* The mock's record of the stream with this request id. */
static cJSON *
mock_stream(struct hproc *mock, const char *rid)
{
	cJSON *rec = hproc_wait_match(mock, 0, "event", "mock_stream",
	    "request_id", rid, NULL);

	hassert(rec != NULL, "no mock_stream record for %s", rid);
	cr_assert_str_eq(hjson_str(rec, "protocol"), "h2");
	return rec;
}

Test(upstream_h2, many_streams_one_connection, .timeout = 120)
{
	struct hproc	*mock, *proxy;
	struct hconn	*c[NSTREAMS];
	int		 mport, port, i;
	double		 conn = -1;
	cJSON		*rec;

	mock = hmock_start(&mport, "--first-token-ms", "100", "--interval-ms",
	    "5", "--tokens", "30", NULL);
	hassert(mock != NULL);
	proxy = proxy_start(mport, "{}");
	port = hproxy_port(proxy, 0);
	for (i = 0; i < NSTREAMS; i++)
		c[i] = send_chat(port, hstrf("many-%d", i), NULL);
	for (i = 0; i < NSTREAMS; i++)
		expect_tokens(c[i], 30);
	for (i = 0; i < NSTREAMS; i++) {
		rec = mock_stream(mock, hstrf("many-%d", i));
		cr_assert_str_eq(hjson_str(rec, "outcome"), "completed");
		if (conn < 0)
			conn = hjson_num(rec, "conn", -1);
		cr_assert_eq(hjson_num(rec, "conn", -2), conn,
		    "stream %d on another connection", i);
		rec = hproc_wait_match(proxy, 0, "event", "request",
		    "request_id", hstrf("many-%d", i), NULL);
		hassert(rec != NULL);
		cr_assert_str_eq(hjson_str(rec, "upstream_protocol"), "h2");
		cr_assert_str_eq(hjson_str(rec, "outcome"), "completed");
	}
	proxy_stop_clean(proxy);
}

/* Large bodies both ways, several at once: the echo returns the request
 * body, which must come back unchanged (flow control on both sides). */
Test(upstream_h2, large_bodies_byte_exact, .timeout = 120)
{
	struct hproc	*mock, *proxy;
	struct hconn	*c[6];
	struct hresp	*r;
	char		*body;
	size_t		 len = 300 * 1024, k;
	int		 mport, port, i;
	cJSON		*json;

	body = hkeep(malloc(len + 1));
	for (k = 0; k < len; k++)
		body[k] = "abcdefghijklmnopqrstuvwxyz0123456789"[(k * 7 + k / 13) %
		    36];
	body[len] = '\0';
	mock = hmock_start(&mport, NULL);
	hassert(mock != NULL);
	proxy = proxy_start(mport, "{}");
	port = hproxy_port(proxy, 0);
	for (i = 0; i < 6; i++) {
		const char *hdrs[] = { "Content-Type: text/plain", NULL };

		c[i] = hconn_connect("127.0.0.1", port);
		hassert(c[i] != NULL);
		hassert(hconn_send_str(c[i], hreq_build("POST", "/debug/echo",
		    hdrs, body)) == 0);
	}
	for (i = 0; i < 6; i++) {
		r = hconn_read_response(c[i], 20000);
		hassert(r != NULL, "no echo %d", i);
		cr_assert_eq(r->status, 200);
		json = hresp_json(r);
		hassert(json != NULL, "echo %d is not JSON", i);
		cr_assert_str_eq(hjson_str(json, "method"), "POST");
		cr_assert_eq(strlen(hjson_str(json, "body")), len);
		cr_assert(strcmp(hjson_str(json, "body"), body) == 0,
		    "echo %d changed the body", i);
	}
	proxy_stop_clean(proxy);
}

/* Clients leave in every phase: each of their streams, and only those,
 * reaches the mock as RST_STREAM(CANCEL); the others finish on the same
 * connection. */
Test(upstream_h2, client_abort_resets_one_stream, .timeout = 120)
{
	struct hproc	*mock, *proxy;
	struct hconn	*keep[3], *waiting, *mid_fin, *mid_rst;
	struct hresp	*r;
	cJSON		*rec, *conn_rec;
	int		 mport, port, i;
	double		 conn;

	mock = hmock_start(&mport, "--first-token-ms", "50", "--interval-ms",
	    "20", "--tokens", "60", NULL);
	hassert(mock != NULL);
	proxy = proxy_start(mport, "{}");
	port = hproxy_port(proxy, 0);
	for (i = 0; i < 3; i++)
		keep[i] = send_chat(port, hstrf("keep-%d", i), NULL);
	waiting = send_chat(port, "gone-waiting", "X-Mock-First-Token-Ms: 5000");
	mid_fin = send_chat(port, "gone-fin", NULL);
	mid_rst = send_chat(port, "gone-rst", NULL);
	for (i = 0; i < 2; i++) {
		struct hconn *m = i == 0 ? mid_fin : mid_rst;

		r = hconn_read_head(m, 0);
		hassert(r != NULL);
		hassert(hconn_read_event(m, r, 0) != NULL);
		hassert(hconn_read_event(m, r, 0) != NULL);
	}
	hsleep_ms(100);
	hconn_close_fin(waiting);
	hconn_close_fin(mid_fin);
	hconn_close_rst(mid_rst);

	conn_rec = mock_stream(mock, "gone-waiting");
	conn = hjson_num(conn_rec, "conn", -1);
	cr_assert_str_eq(hjson_str(conn_rec, "outcome"), "client_rst_stream");
	cr_assert_str_eq(hjson_str(conn_rec, "rst_code"), "CANCEL");
	cr_assert_str_eq(hjson_str(conn_rec, "phase"), "waiting_first_token");
	for (i = 0; i < 2; i++) {
		rec = mock_stream(mock, i == 0 ? "gone-fin" : "gone-rst");
		cr_assert_str_eq(hjson_str(rec, "outcome"), "client_rst_stream");
		cr_assert_str_eq(hjson_str(rec, "rst_code"), "CANCEL");
		cr_assert_str_eq(hjson_str(rec, "phase"), "streaming");
		cr_assert_eq(hjson_num(rec, "conn", -2), conn);
	}
	for (i = 0; i < 3; i++)
		expect_tokens(keep[i], 60);
	for (i = 0; i < 3; i++) {
		rec = mock_stream(mock, hstrf("keep-%d", i));
		cr_assert_str_eq(hjson_str(rec, "outcome"), "completed");
		cr_assert_eq(hjson_num(rec, "conn", -2), conn,
		    "keep-%d on another connection", i);
	}
	for (i = 0; i < 3; i++) {
		const char *rid = i == 0 ? "gone-waiting" : i == 1 ?
		    "gone-fin" : "gone-rst";

		rec = hproc_wait_match(proxy, 0, "event", "cancel",
		    "request_id", rid, NULL);
		hassert(rec != NULL, "no cancel record for %s", rid);
		cr_assert_str_eq(hjson_str(rec, "origin.kind"),
		    "client_disconnect");
		cr_assert_str_eq(hjson_str(rec, "upstream_protocol"), "h2");
		cr_assert_geq(hjson_num(rec, "detect_to_close_us", -1), 0);
		cr_assert_str_eq(hjson_str(rec, "phase"), i == 0 ?
		    "waiting_first_byte" : "streaming");
	}
	/* Only the first connection was ever opened. */
	cr_assert_eq(hproc_count_match(mock, "mock_stream", "conn",
	    hstrf("%d", (int)conn)), 6);
	proxy_stop_clean(proxy);
}

/* The server resets one stream: that client gets an SSE error, the other
 * stream on the connection finishes. */
Test(upstream_h2, server_rst_stream_ends_one_session, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hconn	*bad, *good;
	struct hresp	*r;
	const char	*ev, *err = NULL;
	cJSON		*rec;
	int		 mport, port;

	mock = hmock_start(&mport, "--first-token-ms", "50", "--interval-ms",
	    "20", "--tokens", "20", NULL);
	hassert(mock != NULL);
	proxy = proxy_start(mport, "{}");
	port = hproxy_port(proxy, 0);
	good = send_chat(port, "rst-good", NULL);
	bad = send_chat(port, "rst-bad", "X-Mock-Fault: reset_after:3");
	r = hconn_read_head(bad, 0);
	hassert(r != NULL);
	cr_assert_eq(r->status, 200);
	while ((ev = hconn_read_event(bad, r, 0)) != NULL)
		if (hsse_type(ev) != NULL && strcmp(hsse_type(ev), "error") == 0)
			err = ev;
	hassert(err != NULL, "no SSE error event");
	cr_assert_str_eq(hjson_str(hsse_json(err), "error.code"),
	    "upstream_closed");
	expect_tokens(good, 20);
	rec = hproc_wait_match(proxy, 0, "event", "cancel", "request_id",
	    "rst-bad", NULL);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "rst");
	cr_assert_not_null(strstr(hjson_str(rec, "message"),
	    "RST_STREAM INTERNAL_ERROR"), "%s", hjson_str(rec, "message"));
	cr_assert_eq(hjson_num(mock_stream(mock, "rst-good"), "conn", -1),
	    hjson_num(mock_stream(mock, "rst-bad"), "conn", -2));
	proxy_stop_clean(proxy);
}

/* REFUSED_STREAM before any byte: sent once more on another connection,
 * and the request record lists the try. */
Test(upstream_h2, refused_stream_is_retried, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hconn	*c;
	cJSON		*rec, *refused;
	int		 mport, port;

	mock = hmock_start(&mport, "--first-token-ms", "20", "--interval-ms",
	    "5", "--tokens", "5", "--h2-refuse-stream", "1", NULL);
	hassert(mock != NULL);
	proxy = proxy_start(mport, "{}");
	port = hproxy_port(proxy, 0);
	c = send_chat(port, "refused-1", NULL);
	expect_tokens(c, 5);
	refused = hproc_wait_record(mock, "mock_h2_refused", NULL, NULL, 0);
	hassert(refused != NULL, "the mock refused nothing");
	rec = mock_stream(mock, "refused-1");
	cr_assert_str_eq(hjson_str(rec, "outcome"), "completed");
	cr_assert_neq(hjson_num(rec, "conn", -1),
	    hjson_num(refused, "conn", -2), "retried on the same connection");
	rec = hproc_wait_match(proxy, 0, "event", "request", "request_id",
	    "refused-1", NULL);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "outcome"), "completed");
	cr_assert_str_eq(hjson_str(rec, "tries.0.upstream"), "mock");
	cr_assert_not_null(strstr(hjson_str(rec, "tries.0.outcome"),
	    "REFUSED_STREAM"));
	cr_assert_eq(hproc_count(mock, "mock_stream"), 1);
	proxy_stop_clean(proxy);
}

/* GOAWAY after two streams (on every connection): those two finish
 * there, the other two go to a new connection (sent again when they had
 * gone out above the last stream id), and nothing is answered twice. */
Test(upstream_h2, goaway_moves_new_streams, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hconn	*c[4];
	cJSON		*ga, *rec;
	int		 mport, port, i, on_first = 0, retried = 0;

	mock = hmock_start(&mport, "--first-token-ms", "100", "--interval-ms",
	    "5", "--tokens", "10", "--h2-goaway-after", "2", NULL);
	hassert(mock != NULL);
	proxy = proxy_start(mport, "{}");
	port = hproxy_port(proxy, 0);
	for (i = 0; i < 4; i++)
		c[i] = send_chat(port, hstrf("goaway-%d", i), NULL);
	for (i = 0; i < 4; i++)
		expect_tokens(c[i], 10);
	ga = hproc_wait_record(mock, "mock_h2_goaway", NULL, NULL, 0);
	hassert(ga != NULL, "no GOAWAY");
	for (i = 0; i < 4; i++) {
		rec = mock_stream(mock, hstrf("goaway-%d", i));
		cr_assert_str_eq(hjson_str(rec, "outcome"), "completed");
		if (hjson_num(rec, "conn", -1) == hjson_num(ga, "conn", -2)) {
			on_first++;
			cr_assert_leq(hjson_num(rec, "stream_id", 0),
			    hjson_num(ga, "stream_id", -1));
		}
		rec = hproc_wait_match(proxy, 0, "event", "request",
		    "request_id", hstrf("goaway-%d", i), NULL);
		hassert(rec != NULL);
		if (hjson_str(rec, "tries.0.outcome") != NULL) {
			cr_assert_not_null(strstr(hjson_str(rec,
			    "tries.0.outcome"), "GOAWAY"));
			retried++;
		}
	}
	cr_assert_eq(on_first, 2);
	cr_assert_eq(hproc_count(mock, "mock_stream"), 4);
	cr_log_info("streams sent again after GOAWAY: %d", retried);
	proxy_stop_clean(proxy);
}

/* The connection dies under three streams (one before its head): each
 * session ends with its own record and its own error; a new request then
 * opens a new connection. */
Test(upstream_h2, dying_connection_ends_every_stream, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hconn	*killer, *mid, *before, *after;
	struct hresp	*r;
	const char	*ev, *err = NULL;
	cJSON		*rec;
	int		 mport, port;

	mock = hmock_start(&mport, "--first-token-ms", "50", "--interval-ms",
	    "30", "--tokens", "40", NULL);
	hassert(mock != NULL);
	proxy = proxy_start(mport, "{}");
	port = hproxy_port(proxy, 0);
	mid = send_chat(port, "die-mid", NULL);
	before = send_chat_s(port, "die-before", "X-Mock-First-Token-Ms: 10000",
	    0);
	r = hconn_read_head(mid, 0);
	hassert(r != NULL);
	hassert(hconn_read_event(mid, r, 0) != NULL);
	killer = send_chat(port, "die-killer", "X-Mock-Fault: close_after:2");

	while ((ev = hconn_read_event(mid, r, 0)) != NULL)
		if (hsse_type(ev) != NULL && strcmp(hsse_type(ev), "error") == 0)
			err = ev;
	hassert(err != NULL, "no SSE error on the stream mid-way");
	cr_assert_str_eq(hjson_str(hsse_json(err), "error.code"),
	    "upstream_closed");
	r = hconn_read_response(before, 0);
	hassert(r != NULL, "no answer before the head");
	cr_assert_eq(r->status, 502);
	(void)killer;

	rec = hproc_wait_match(proxy, 0, "event", "cancel", "request_id",
	    "die-mid", NULL);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "upstream_closed");
	rec = hproc_wait_match(proxy, 0, "event", "cancel", "request_id",
	    "die-before", NULL);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "upstream_error");
	cr_assert_not_null(strstr(hjson_str(rec, "message"),
	    "HTTP/2 connection closed by the upstream"), "%s",
	    hjson_str(rec, "message"));
	rec = hproc_wait_match(proxy, 0, "event", "cancel", "request_id",
	    "die-killer", NULL);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(mock_stream(mock, "die-mid"), "outcome"),
	    "conn_closed");
	cr_assert_str_eq(hjson_str(mock_stream(mock, "die-before"), "outcome"),
	    "conn_closed");
	cr_assert_str_eq(hjson_str(mock_stream(mock, "die-killer"), "outcome"),
	    "fault");

	after = send_chat(port, "die-after", "X-Mock-Interval-Ms: 1");
	expect_tokens(after, 40);
	cr_assert_neq(hjson_num(mock_stream(mock, "die-after"), "conn", -1),
	    hjson_num(hproc_find_record(mock, "mock_stream", "request_id",
	    "die-mid"), "conn", -2));
	proxy_stop_clean(proxy);
}

/* The server stops answering PINGs: after ping_interval_ms of silence and
 * ping_timeout_ms more, the connection and its stream are given up. */
Test(upstream_h2, ping_timeout_closes_the_connection, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*rec;
	int		 mport, port;
	int64_t		 t0;

	mock = hmock_start(&mport, "--first-token-ms", "20000",
	    "--h2-no-ping-ack", NULL);
	hassert(mock != NULL);
	proxy = proxy_start(mport, "{\"ping_interval_ms\":200,"
	    "\"ping_timeout_ms\":300}");
	port = hproxy_port(proxy, 0);
	t0 = hnow_ms();
	c = send_chat_s(port, "ping-1", NULL, 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL, "no answer");
	cr_assert_eq(r->status, 502);
	cr_assert_lt(hnow_ms() - t0, 3000 * hscale());
	rec = hproc_wait_match(proxy, 0, "event", "cancel", "request_id",
	    "ping-1", NULL);
	hassert(rec != NULL);
	cr_assert_not_null(strstr(hjson_str(rec, "message"),
	    "HTTP/2 PING timeout"), "%s", hjson_str(rec, "message"));
	hassert(hproc_wait_record(proxy, "upstream_h2_ping_timeout", NULL,
	    NULL, 0) != NULL);
	rec = hmock_wait_closed(mock, "ping-1");
	hassert(rec != NULL);
	proxy_stop_clean(proxy);
}

#define TLS_CONFIG \
	"{\"hop\":\"edge\",\"workers\":1," \
	"\"listen\":[{\"address\":\"127.0.0.1:0\"}]," \
	"\"upstreams\":{\"mock\":{\"url\":\"https://127.0.0.1:%d\"%s," \
	"\"tls\":{\"ca_file\":\"%s\"}}}," \
	"\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]}"

static void
tls_case(int alpn, const char *protocol, const char *want)
{
	struct hproc	*mock, *proxy;
	struct hcert	 cert;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*rec;
	int		 mport, i;

	hassert(hcert_make(NULL, "127.0.0.1", &cert) == 0);
	if (alpn)
		mock = hmock_start(&mport, "--tls-cert", cert.cert,
		    "--tls-key", cert.key, "--h2-alpn", "--first-token-ms",
		    "10", "--interval-ms", "2", "--tokens", "5", NULL);
	else
		mock = hmock_start(&mport, "--tls-cert", cert.cert,
		    "--tls-key", cert.key, "--first-token-ms", "10",
		    "--interval-ms", "2", "--tokens", "5", NULL);
	hassert(mock != NULL);
	proxy = hproxy_startf(TLS_CONFIG, mport, protocol, cert.ca);
	hassert(proxy != NULL);
	for (i = 0; i < 2; i++) {
		c = send_chat(hproxy_port(proxy, 0), hstrf("tls-%d", i), NULL);
		if (want == NULL) {
			r = hconn_read_response(c, 0);
			hassert(r != NULL);
			cr_assert_eq(r->status, 502);
			rec = hproc_wait_match(proxy, 0, "event", "cancel",
			    "request_id", hstrf("tls-%d", i), NULL);
			hassert(rec != NULL);
			cr_assert_not_null(strstr(hjson_str(rec, "message"),
			    "does not speak h2"));
			continue;
		}
		expect_tokens(c, 5);
		rec = hproc_wait_match(proxy, 0, "event", "request",
		    "request_id", hstrf("tls-%d", i), NULL);
		hassert(rec != NULL);
		cr_assert_str_eq(hjson_str(rec, "upstream_protocol"), want);
		rec = hproc_wait_match(mock, 0, "event", "mock_stream",
		    "request_id", hstrf("tls-%d", i), NULL);
		hassert(rec != NULL);
		if (strcmp(want, "h2") == 0)
			cr_assert_str_eq(hjson_str(rec, "protocol"), "h2");
		else
			cr_assert_null(hjson_get(rec, "protocol"));
	}
	proxy_stop_clean(proxy);
}

Test(upstream_h2, tls_alpn_auto_picks_h2, .timeout = 60)
{
	tls_case(1, "", "h2");
}

Test(upstream_h2, tls_alpn_h2_required, .timeout = 60)
{
	tls_case(1, ",\"protocol\":\"h2\"", "h2");
}

Test(upstream_h2, tls_auto_falls_back_to_http1, .timeout = 60)
{
	tls_case(0, "", "http/1.1");
}

Test(upstream_h2, tls_h2_refused_is_502, .timeout = 60)
{
	tls_case(0, ",\"protocol\":\"h2\"", NULL);
}

Test(upstream_h2, tls_http1_stays_http1, .timeout = 60)
{
	tls_case(1, ",\"protocol\":\"http/1.1\"", "http/1.1");
}

/* Flow control is the back-pressure: a client that does not read holds
 * its own stream back; another stream on the same connection is not
 * slowed, and the slow one still gets every byte once it reads. */
Test(upstream_h2, slow_client_slows_only_its_stream, .timeout = 120)
{
	struct hproc	*mock, *proxy;
	struct hconn	*slow, *fast;
	struct hresp	*r;
	const char	*hdrs[] = { "Content-Type: text/plain",
			    "X-Request-Id: slow-1", NULL };
	char		*body;
	size_t		 len = 3 * 1024 * 1024, k;
	int		 mport, port;
	int64_t		 t0;
	cJSON		*json;

	body = hkeep(malloc(len + 1));
	for (k = 0; k < len; k++)
		body[k] = "0123456789abcdefghijklmnopqrstuvwxyz"[(k * 31 + k / 7) %
		    36];
	body[len] = '\0';
	mock = hmock_start(&mport, NULL);
	hassert(mock != NULL);
	proxy = proxy_start(mport, "{}");
	port = hproxy_port(proxy, 0);
	slow = hconn_connect_rcvbuf("127.0.0.1", port, 4096);
	hassert(slow != NULL);
	hassert(hconn_send_str(slow, hreq_build("POST", "/debug/echo", hdrs,
	    body)) == 0);
	hsleep_ms(500);		/* the echo is stuck behind the slow reader */
	t0 = hnow_ms();
	{
		const char *fh[] = { "X-Request-Id: fast-1",
		    "X-Mock-Interval-Ms: 0", "X-Mock-Tokens: 200", NULL };

		fast = hconn_connect("127.0.0.1", port);
		hassert(fast != NULL);
		hassert(hconn_send_str(fast, hreq_chat("mock-1", 1, fh)) == 0);
	}
	expect_tokens(fast, 200);
	cr_assert_lt(hnow_ms() - t0, 3000 * hscale(),
	    "the fast stream took %lld ms", (long long)(hnow_ms() - t0));
	cr_assert_eq(hjson_num(mock_stream(mock, "fast-1"), "conn", -1),
	    hjson_num(hproc_wait_match(mock, 0, "event", "mock_request",
	    "request_id", "slow-1", NULL), "conn", -2),
	    "the streams were not on one connection");
	/* Its window is shut: the mock still holds most of the answer. */
	cr_assert_null(hproc_find_record(mock, "mock_stream", "request_id",
	    "slow-1"), "the slow stream's answer went out unread");
	r = hconn_read_response(slow, 30000);
	hassert(r != NULL, "the slow stream did not finish");
	json = hresp_json(r);
	hassert(json != NULL);
	cr_assert_eq(strlen(hjson_str(json, "body")), len);
	cr_assert(strcmp(hjson_str(json, "body"), body) == 0);
	proxy_stop_clean(proxy);
}

/* A drain route reads on after the client left (bounded), then resets
 * the stream with CANCEL; the connection stays. */
Test(upstream_h2, drain_then_reset, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hconn	*c, *other;
	struct hresp	*r;
	cJSON		*rec;
	int		 mport, port;

	mock = hmock_start(&mport, "--first-token-ms", "20", "--interval-ms",
	    "20", "--tokens", "200", NULL);
	hassert(mock != NULL);
	proxy = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\","
	    "\"protocol\":\"h2\"}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\","
	    "\"on_client_disconnect\":\"drain\","
	    "\"drain\":{\"max_ms\":300}}]}", mport);
	hassert(proxy != NULL);
	port = hproxy_port(proxy, 0);
	other = send_chat(port, "drain-other", "X-Mock-Tokens: 40");
	c = send_chat(port, "drain-1", NULL);
	r = hconn_read_head(c, 0);
	hassert(r != NULL);
	hassert(hconn_read_event(c, r, 0) != NULL);
	hconn_close_fin(c);
	rec = mock_stream(mock, "drain-1");
	cr_assert_str_eq(hjson_str(rec, "outcome"), "client_rst_stream");
	cr_assert_str_eq(hjson_str(rec, "rst_code"), "CANCEL");
	cr_assert_geq(hjson_num(rec, "elapsed_ms", 0), 300);
	rec = hproc_wait_match(proxy, 0, "event", "cancel", "request_id",
	    "drain-1", NULL);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "drain.ended_by"), "max_ms");
	cr_assert_str_eq(hjson_str(rec, "upstream_protocol"), "h2");
	expect_tokens(other, 40);
	cr_assert_eq(hjson_num(mock_stream(mock, "drain-other"), "conn", -1),
	    hjson_num(hproc_find_record(mock, "mock_stream", "request_id",
	    "drain-1"), "conn", -2));
	proxy_stop_clean(proxy);
}

/* A connection without streams for idle_ms is closed: a request within
 * that time reuses it, one after it opens a new one. */
Test(upstream_h2, idle_connection_is_closed, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	int		 mport, port;
	double		 c1, c2, c3;

	mock = hmock_start(&mport, "--first-token-ms", "5", "--interval-ms",
	    "1", "--tokens", "3", NULL);
	hassert(mock != NULL);
	proxy = proxy_start(mport, "{\"idle_ms\":400}");
	port = hproxy_port(proxy, 0);
	expect_tokens(send_chat(port, "idle-1", NULL), 3);
	c1 = hjson_num(mock_stream(mock, "idle-1"), "conn", -1);
	hsleep_ms(100);
	expect_tokens(send_chat(port, "idle-2", NULL), 3);
	c2 = hjson_num(mock_stream(mock, "idle-2"), "conn", -2);
	cr_assert_eq(c1, c2, "a warm connection was not reused");
	hsleep_ms(400 * 3 * hscale());
	expect_tokens(send_chat(port, "idle-3", NULL), 3);
	c3 = hjson_num(mock_stream(mock, "idle-3"), "conn", -3);
	cr_assert_neq(c2, c3, "the idle connection was still used");
	proxy_stop_clean(proxy);
}

/*
 * Two hops that speak HTTP/2 to each other: edge's client leaves
 * mid-stream; edge resets its stream to core with RST_STREAM(CANCEL) and
 * the note that says why rides as one more stream on the same connection.
 * core closes the model's stream on the bare reset and records the true
 * path once the note is there.
 */
Test(upstream_h2, the_cancel_note_rides_on_the_open_connection,
    .timeout = 120)
{
	struct hproc	*mock, *core, *edge;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*cancel, *note, *rec;
	int		 mport, cport, i;

	mock = hmock_start(&mport, "--first-token-ms", "10", "--interval-ms",
	    "20", "--tokens", "10000", NULL);
	hassert(mock != NULL);
	core = hproxy_startf("{\"hop\":\"core\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}],"
	    "\"peers\":{\"note_wait_ms\":2000}}", mport);
	hassert(core != NULL);
	cport = hproxy_port(core, 0);
	edge = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"core\":{\"url\":\"http://127.0.0.1:%d\","
	    "\"protocol\":\"h2\",\"peer\":true}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"core\"}]}",
	    cport);
	hassert(edge != NULL);
	/* A first stream that completes opens the HTTP/2 connection. */
	c = send_chat_s(hproxy_port(edge, 0), "warm", "X-Mock-Tokens: 2", 0);
	r = hconn_read_head(c, 0);
	hassert(r != NULL && r->status == 200);
	hconn_close_fin(c);
	c = send_chat(hproxy_port(edge, 0), "leaves", NULL);
	r = hconn_read_head(c, 0);
	hassert(r != NULL && r->status == 200);
	for (i = 0; i < 3; i++)
		hassert(hconn_read_event(c, r, 0) != NULL);
	hconn_close_fin(c);
	rec = hproc_wait_match(mock, 0, "event", "mock_stream", "request_id",
	    "leaves", NULL);
	hassert(rec != NULL, "the model's stream was not closed");
	cancel = hproc_wait_match(core, 0, "event", "cancel", "request_id",
	    "leaves", NULL);
	hassert(cancel != NULL, "no cancel record at core");
	cr_assert_str_eq(hjson_str(cancel, "origin.kind"), "client_disconnect");
	cr_assert_str_eq(hjson_str(cancel, "protocol"), "h2");
	cr_assert_str_eq(hjson_print(hjson_get(cancel, "cancel_path")),
	    "[\"client\",\"edge\",\"core\"]");
	note = hproc_wait_match(core, 0, "event", "note", "request_id",
	    "leaves", NULL);
	hassert(note != NULL, "no note record at core");
	cr_assert_str_eq(hjson_str(note, "outcome"), "applied");
	cr_assert_str_eq(hjson_str(note, "protocol"), "h2",
	    "the note did not come over HTTP/2: %s", hjson_print(note));
	cr_assert_eq(hjson_num(note, "connection", -1),
	    hjson_num(cancel, "connection", -2),
	    "the note came on another connection: %s / %s",
	    hjson_print(note), hjson_print(cancel));
	hassert(hproc_stop(edge, 0) == 0);
	hassert(hproc_stop(core, 0) == 0);
}
