/* HTTP/2 from the client: curl (prior knowledge and ALPN over TLS), nghttp
 * with several streams, and python3-h2 frame by frame (h2/h2client.py):
 * RST_STREAM in every phase, the connection's FIN, RST and GOAWAY with
 * streams open, the flood defences, a window that never opens, and
 * shutdown with GOAWAY. Asserts on what the client got, the proxy's
 * records and what the mock saw. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define H2_SCRIPT	CP_SOURCE_DIR "/tests/integration/h2/h2client.py"

#define H2_CONFIG \
	"{\"hop\":\"edge\",\"workers\":1," \
	"\"listen\":[{\"address\":\"127.0.0.1:0\"%s}]," \
	"\"upstreams\":{\"mock\":{\"url\":\"%s://127.0.0.1:%d\"%s}}," \
	"\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]," \
	"\"limits\":{\"header_timeout_ms\":2000," \
	"\"http2\":{\"send_timeout_ms\":3000," \
	"\"max_connection_body_bytes\":100000}}%s}"

struct rig {
	struct hproc	*mock;
	struct hproc	*proxy;
	int		 mock_port;
	int		 port;
};

static void
rig_start_with(struct rig *r, const char *listen_extra, const char *tail)
{
	r->mock = hmock_start(&r->mock_port, "--first-token-ms", "0",
	    "--interval-ms", "10", "--tokens", "5", NULL);
	cr_assert_not_null(r->mock, "mock did not start");
	r->proxy = hproxy_startf(H2_CONFIG, listen_extra, "http", r->mock_port,
	    "", tail);
	cr_assert_not_null(r->proxy, "proxy did not start");
	if ((r->port = hproxy_port(r->proxy, 0)) <= 0)
		r->port = hproxy_port(r->proxy, 1);
	cr_assert_gt(r->port, 0);
}

static void
rig_start(struct rig *r)
{
	rig_start_with(r, "", "");
}

static void
proxy_stop_clean(struct hproc *proxy)
{
	hassert(hproc_stop(proxy, 0) == 0, "the proxy did not exit cleanly");
}

/* Runs h2client.py SCENARIO PORT ARGS... (NULL-ended). */
static struct hproc *
client_run(int port, const char *scenario, ...)
{
	const char	*argv[16];
	const char	*a;
	va_list		 ap;
	int		 n = 0;
	struct hproc	*p;

	argv[n++] = "/usr/bin/python3";
	argv[n++] = H2_SCRIPT;
	argv[n++] = scenario;
	argv[n++] = hstrf("%d", port);
	va_start(ap, scenario);
	while ((a = va_arg(ap, const char *)) != NULL && n < 15)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	p = hproc_start(argv, NULL);
	cr_assert_not_null(p, "cannot run h2client.py");
	hproc_set_name(p, hstrf("h2client-%s", scenario));
	return p;
}

/* The client's "h2_done" record; fails the test on an h2_error. */
static cJSON *
client_done(struct hproc *cl, int timeout_ms)
{
	cJSON	*rec = hproc_wait_record(cl, "h2_done", NULL, NULL,
	    timeout_ms > 0 ? timeout_ms : 30000);

	hassert(hproc_find_record(cl, "h2_error", NULL, NULL) == NULL,
	    "the h2 client failed");
	hassert(rec != NULL, "the h2 client did not finish");
	return rec;
}

/* A stream the client read whole: 200, ended with END_STREAM. */
static void
expect_stream_ok(struct hproc *cl, int sid, int events)
{
	cJSON	*rec = hproc_find_record(cl, "h2_stream", "stream",
	    hstrf("%d", sid));

	hassert(rec != NULL, "no report for stream %d", sid);
	cr_assert_eq(hjson_num(rec, "status", 0), 200, "stream %d: %s", sid,
	    hjson_print(rec));
	cr_assert_str_eq(hjson_text(rec, "ended"), "true", "stream %d: %s",
	    sid, hjson_print(rec));
	if (events > 0)
		cr_assert_geq(hjson_num(rec, "events", 0), events);
}

/* VmRSS of a process in KiB. */
static long
rss_kib(struct hproc *p)
{
	FILE	*f = fopen(hstrf("/proc/%d/status", (int)hproc_pid(p)), "r");
	char	 line[256];
	long	 kib = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = atol(line + 6);
	fclose(f);
	return kib;
}

/* Whether memory can be judged: not under valgrind (scaled timeouts) and
 * not with AddressSanitizer's allocator (its quarantine holds freed
 * memory), which the process's mappings name. */
static int
rss_meaningful(struct hproc *p)
{
	FILE	*f;
	char	 line[512];
	int	 asan = 0;

	if (hscale() != 1)
		return 0;
	if ((f = fopen(hstrf("/proc/%d/maps", (int)hproc_pid(p)), "r")) ==
	    NULL)
		return 0;
	while (!asan && fgets(line, sizeof(line), f) != NULL)
		asan = strstr(line, "libasan") != NULL;
	fclose(f);
	return !asan;
}

/* The proxy still serves HTTP/2: a fresh connection, two whole streams. */
static void
expect_still_serving(struct rig *r)
{
	struct hproc	*cl = client_run(r->port, "streams", "2", "3", NULL);

	client_done(cl, 0);
	expect_stream_ok(cl, 1, 3);
	expect_stream_ok(cl, 3, 3);
}

Test(h2, curl_prior_knowledge, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*curl;
	cJSON		*rec;
	const char	*argv[] = { "curl", "-sS", "-i", "--http2-prior-knowledge",
	    "-H", "content-type: application/json", "-d",
	    "{\"model\":\"mock-1\",\"stream\":true}", NULL, NULL };

	rig_start(&r);
	argv[8] = hstrf("http://127.0.0.1:%d/v1/chat/completions", r.port);
	curl = hproc_start(argv, NULL);
	hassert(hproc_wait_line(curl, "HTTP/2 200", 0) != NULL);
	hassert(hproc_wait_line(curl, "via: 2 edge", 0) != NULL);
	hassert(hproc_wait_line(curl, "data: [DONE]", 0) != NULL);
	cr_assert_eq(hproc_wait_exit(curl, 0), 0);
	rec = hproc_wait_record(r.proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "protocol"), "h2");
	cr_assert_eq(hjson_num(rec, "stream_id", 0), 1);
	cr_assert_eq(hjson_num(rec, "status", 0), 200);
	cr_assert_str_eq(hjson_str(rec, "outcome"), "completed");
	cr_assert_eq(hjson_num(rec, "sse_events", 0), 7);
	/* The model got HTTP/1.1 with this hop in Via, from "2". */
	rec = hproc_wait_record(r.mock, "mock_request", NULL, NULL, 0);
	hassert(rec != NULL);
	cr_assert_not_null(strstr(hjson_str(rec, "via"), "2 edge"),
	    "via %s", hjson_str(rec, "via"));
	proxy_stop_clean(r.proxy);
}

/* TLS offers h2 and http/1.1 by ALPN; both work on one listener. */
Test(h2, curl_tls_alpn, .timeout = 60)
{
	struct rig	 r;
	struct hcert	 cert;
	struct hproc	*curl;
	cJSON		*rec;
	const char	*url;

	cr_assert_eq(hcert_make(NULL, "localhost", &cert), 0);
	rig_start_with(&r, hstrf(",\"tls\":{\"cert\":\"%s\",\"key\":\"%s\"}",
	    cert.cert, cert.key), "");
	r.port = hproxy_port(r.proxy, 1);
	url = hstrf("https://localhost:%d/v1/chat/completions", r.port);
	{
		const char *argv[] = { "curl", "-sS", "-i", "--http2",
		    "--cacert", cert.ca, "-d", "{\"stream\":true}", "-H",
		    "content-type: application/json", url, NULL };

		curl = hproc_start(argv, NULL);
		hassert(hproc_wait_line(curl, "HTTP/2 200", 0) != NULL);
		hassert(hproc_wait_line(curl, "data: [DONE]", 0) != NULL);
		cr_assert_eq(hproc_wait_exit(curl, 0), 0);
	}
	rec = hproc_wait_record(r.proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "protocol"), "h2");
	{
		const char *argv[] = { "curl", "-sS", "-i", "--http1.1",
		    "--cacert", cert.ca, "-d", "{\"stream\":true}", "-H",
		    "content-type: application/json", url, NULL };

		curl = hproc_start(argv, NULL);
		hassert(hproc_wait_line(curl, "HTTP/1.1 200", 0) != NULL);
		cr_assert_eq(hproc_wait_exit(curl, 0), 0);
	}
	rec = hproc_wait_record(r.proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "protocol"), "http/1.1");
	cr_assert_null(hjson_get(rec, "stream_id"));
	proxy_stop_clean(r.proxy);
}

/* A listener with "protocols": ["http/1.1"] does not speak HTTP/2: the
 * preface goes to the HTTP/1.1 parser, and no h2 stream exists. */
Test(h2, listener_without_h2, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*curl;
	const char	*argv[] = { "curl", "-sS", "--http2-prior-knowledge",
	    "-o", "/dev/null", "-w", "code=%{http_code}\n", NULL, NULL };

	rig_start_with(&r, ",\"protocols\":[\"http/1.1\"]", "");
	argv[7] = hstrf("http://127.0.0.1:%d/v1/models", r.port);
	curl = hproc_start(argv, NULL);
	hproc_wait_exit(curl, 0);
	hsleep_ms(200);
	cr_assert_eq(hproc_count_match(r.proxy, "request", "protocol", "h2"),
	    0);
	cr_assert_eq(hproc_count(r.mock, "mock_request"), 0);
	proxy_stop_clean(r.proxy);
}

/* curl --http2 on plain TCP asks for Upgrade: h2c; it is answered over
 * HTTP/1.1 and the Upgrade fields are not forwarded. */
Test(h2, upgrade_h2c_served_as_http11, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*curl;
	cJSON		*rec;
	const char	*argv[] = { "curl", "-sS", "-i", "--http2", NULL, NULL };

	rig_start(&r);
	argv[4] = hstrf("http://127.0.0.1:%d/debug/echo", r.port);
	curl = hproc_start(argv, NULL);
	hassert(hproc_wait_line(curl, "HTTP/1.1 200", 0) != NULL);
	cr_assert_eq(hproc_wait_exit(curl, 0), 0);
	rec = hproc_wait_record(r.proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "protocol"), "http/1.1");
	cr_assert_eq(hjson_num(rec, "status", 0), 200);
	/* The echo of what the mock received: no Upgrade, no settings. */
	rec = hproc_find_record(curl, NULL, "path", "/debug/echo");
	hassert(rec != NULL, "no echo from the mock");
	cr_assert_null(strstr(hjson_print(rec), "h2c"), "%s", hjson_print(rec));
	cr_assert_null(strstr(hjson_print(rec), "HTTP2-Settings"), "%s",
	    hjson_print(rec));
	proxy_stop_clean(r.proxy);
}

/* Failures this hop makes are HTTP/2 answers: before the head a 502 with
 * the JSON body and Proxy-Status; mid-stream the SSE error event, then
 * END_STREAM (curl sees a clean end). */
Test(h2, errors_before_and_after_the_head, .timeout = 60)
{
	struct hproc	*proxy, *mock, *curl;
	cJSON		*rec;
	int		 lfd, lport, mport, port;
	const char	*argv[] = { "curl", "-sS", "-i", "--http2-prior-knowledge",
	    "-H", "content-type: application/json", "-H", NULL, "-d",
	    "{\"model\":\"mock-1\",\"stream\":true}", NULL, NULL };

	/* A port that refuses: listen, then close. */
	lfd = hnet_listen("127.0.0.1", &lport);
	cr_assert_geq(lfd, 0);
	close(lfd);
	proxy = hproxy_startf(H2_CONFIG, "", "http", lport, "", "");
	cr_assert_not_null(proxy);
	port = hproxy_port(proxy, 0);
	argv[7] = "x-request-id: h2-refused";
	argv[10] = hstrf("http://127.0.0.1:%d/v1/chat/completions", port);
	curl = hproc_start(argv, NULL);
	hassert(hproc_wait_line(curl, "HTTP/2 502", 0) != NULL);
	hassert(hproc_wait_line(curl, "proxy-status: edge; error=", 0) != NULL);
	cr_assert_eq(hproc_wait_exit(curl, 0), 0);
	rec = hproc_find_record(curl, NULL, "error.code", NULL);
	hassert(rec != NULL, "no JSON error body");
	hassert(hproc_stop(proxy, 0) == 0);

	mock = hmock_start(&mport, "--first-token-ms", "0", "--interval-ms",
	    "10", NULL);
	cr_assert_not_null(mock);
	proxy = hproxy_startf(H2_CONFIG, "", "http", mport, "", "");
	cr_assert_not_null(proxy);
	port = hproxy_port(proxy, 0);
	argv[7] = "x-mock-fault: close_after:3";
	argv[10] = hstrf("http://127.0.0.1:%d/v1/chat/completions", port);
	curl = hproc_start(argv, NULL);
	hassert(hproc_wait_line(curl, "HTTP/2 200", 0) != NULL);
	hassert(hproc_wait_line(curl, "event: error", 0) != NULL);
	cr_assert_eq(hproc_wait_exit(curl, 0), 0, "the stream did not end "
	    "cleanly");
	rec = hproc_wait_match(proxy, 0, "event", "cancel", NULL);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "upstream_closed");
	cr_assert_str_eq(hjson_str(rec, "protocol"), "h2");
	hassert(hproc_stop(proxy, 0) == 0);
}

/* nghttp: five streams on one connection, each its own session. */
Test(h2, nghttp_streams, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*ng;
	cJSON		*rec;
	const char	*data = htmp_write("body.json",
	    "{\"model\":\"mock-1\",\"stream\":true}");
	const char	*argv[] = { "nghttp", "-n", "-m", "5", "-d", data,
	    "-H", "content-type: application/json", NULL, NULL };
	int		 i, j, ids[5];
	double		 conn = -1;

	rig_start(&r);
	argv[8] = hstrf("http://127.0.0.1:%d/v1/chat/completions", r.port);
	ng = hproc_start(argv, NULL);
	cr_assert_eq(hproc_wait_exit(ng, 0), 0);
	for (i = 0; i < 5; i++) {
		rec = hproc_wait_record(r.proxy, "request", NULL, NULL, 0);
		hassert(rec != NULL, "request record %d missing", i);
		cr_assert_str_eq(hjson_str(rec, "protocol"), "h2");
		cr_assert_eq(hjson_num(rec, "status", 0), 200);
		/* One connection, a distinct odd stream id each. */
		if (conn < 0)
			conn = hjson_num(rec, "connection", -1);
		cr_assert_eq(hjson_num(rec, "connection", -2), conn);
		ids[i] = (int)hjson_num(rec, "stream_id", 0);
		cr_assert_eq(ids[i] % 2, 1, "stream id %d", ids[i]);
		for (j = 0; j < i; j++)
			cr_assert_neq(ids[i], ids[j]);
	}
	cr_assert_eq(hproc_count(r.mock, "mock_request"), 5);
	proxy_stop_clean(r.proxy);
}

/* Ten streams at once on one connection all finish (a browser's six
 * connection limit does not apply). */
Test(h2, ten_concurrent_streams, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*cl;
	int		 i;

	rig_start(&r);
	cl = client_run(r.port, "streams", "10", "20", NULL);
	client_done(cl, 0);
	for (i = 0; i < 10; i++)
		expect_stream_ok(cl, 1 + 2 * i, 20);
	cr_assert_eq(hproc_count_match(r.proxy, "request", "protocol", "h2"),
	    10);
	proxy_stop_clean(r.proxy);
}

/* The cancel record of one RST_STREAM, with the stream id and phase. */
static cJSON *
expect_rst_cancel(struct rig *r, const char *phase, int sid)
{
	cJSON	*rec = hproc_wait_match(r->proxy, 0, "event", "cancel",
	    "phase", phase, NULL);

	hassert(rec != NULL, "no cancel record in phase %s", phase);
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "rst_stream");
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "client_disconnect");
	cr_assert_str_eq(hjson_str(rec, "direction"), "upstream");
	cr_assert_str_eq(hjson_str(rec, "protocol"), "h2");
	cr_assert_eq(hjson_num(rec, "stream_id", 0), sid);
	return rec;
}

static void
rst_in_phase(const char *client_phase, const char *phase, int sid,
    int upstream)
{
	struct rig	 r;
	struct hproc	*cl;
	cJSON		*rec, *done;

	rig_start(&r);
	cl = client_run(r.port, "rst", client_phase, "1", NULL);
	done = client_done(cl, 0);
	rec = expect_rst_cancel(&r, phase, sid);
	if (upstream) {
		cr_assert_geq(hjson_num(rec, "detect_to_close_us", -1), 0);
		hassert(hmock_wait_closed(r.mock, hjson_str(rec,
		    "request_id")) != NULL, "the mock never saw its stream "
		    "closed");
	}
	/* The other stream on the connection went on to its end. */
	expect_stream_ok(cl, sid == 1 ? 3 : 1, 3);
	cr_assert_str_eq(hjson_text(done, "closed"), "false");
	cr_assert_eq(hproc_count_match(r.proxy, "cancel", "detected_via",
	    "rst_stream"), 1);
	proxy_stop_clean(r.proxy);
}

Test(h2, rst_while_request_body_arrives, .timeout = 60)
{
	rst_in_phase("body", "request", 3, 0);
}

Test(h2, rst_while_waiting_first_byte, .timeout = 60)
{
	rst_in_phase("waiting", "waiting_first_byte", 3, 1);
}

Test(h2, rst_while_streaming, .timeout = 60)
{
	rst_in_phase("streaming", "streaming", 3, 1);
}

/* The client's window is shut: the stream's buffer fills to its bound,
 * its upstream is paused, the socket is still read, and the RST_STREAM
 * closes the model's stream at once. */
Test(h2, rst_while_paused_by_window, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*cl;
	cJSON		*rec;

	rig_start(&r);
	cl = client_run(r.port, "rst", "paused", "1", NULL);
	client_done(cl, 0);
	rec = expect_rst_cancel(&r, "streaming", 1);
	cr_assert_geq(hjson_num(rec, "detect_to_close_us", -1), 0);
	/* What was read from the model stayed near the pause bound. */
	cr_assert_lt(hjson_num(rec, "bytes_out", -1), 256 * 1024, "%s",
	    hjson_print(rec));
	hassert(hmock_wait_closed(r.mock, hjson_str(rec, "request_id")) !=
	    NULL);
	expect_stream_ok(cl, 3, 3);
	proxy_stop_clean(r.proxy);
}

/* Connecting: the upstream accepts TCP but never answers the TLS
 * handshake, so the stream stays in its connect phase. */
Test(h2, rst_while_connecting, .timeout = 60)
{
	struct hproc	*proxy, *cl;
	cJSON		*rec;
	int		 lfd, lport, port;

	lfd = hnet_listen("127.0.0.1", &lport);
	cr_assert_geq(lfd, 0);
	proxy = hproxy_startf(H2_CONFIG, "", "https", lport,
	    ",\"timeouts_ms\":{\"connect\":30000}", "");
	cr_assert_not_null(proxy);
	port = hproxy_port(proxy, 0);
	cl = client_run(port, "rst", "connecting", "0", NULL);
	client_done(cl, 0);
	rec = hproc_wait_match(proxy, 0, "event", "cancel", NULL);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "phase"), "connecting");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "rst_stream");
	cr_assert_eq(hjson_num(rec, "stream_id", 0), 1);
	cr_assert_geq(hjson_num(rec, "detect_to_close_us", -1), 0);
	hassert(hproc_stop(proxy, 0) == 0);
}

/* The whole connection goes with three streams open: three cancel
 * records, three closes at the mock. */
static void
leave_with_streams(const char *how, const char *via)
{
	struct rig	 r;
	struct hproc	*cl;
	cJSON		*rec;
	int		 i, seen = 0;

	r.mock = hmock_start(&r.mock_port, "--first-token-ms", "60000", NULL);
	cr_assert_not_null(r.mock);
	r.proxy = hproxy_startf(H2_CONFIG, "", "http", r.mock_port, "", "");
	cr_assert_not_null(r.proxy);
	r.port = hproxy_port(r.proxy, 0);
	cl = client_run(r.port, "leave", how, "3", NULL);
	client_done(cl, 0);
	for (i = 0; i < 3; i++) {
		rec = hproc_wait_match(r.proxy, 0, "event", "cancel", NULL);
		hassert(rec != NULL, "cancel record %d missing", i);
		cr_assert_str_eq(hjson_str(rec, "detected_via"), via);
		cr_assert_str_eq(hjson_str(rec, "phase"), "waiting_first_byte");
		cr_assert_geq(hjson_num(rec, "detect_to_close_us", -1), 0);
		seen |= 1 << (((int)hjson_num(rec, "stream_id", 0) - 1) / 2);
		hassert(hmock_wait_closed(r.mock, hjson_str(rec,
		    "request_id")) != NULL);
	}
	cr_assert_eq(seen, 7, "streams 1, 3 and 5 (mask %x)", seen);
	proxy_stop_clean(r.proxy);
}

Test(h2, connection_fin_with_streams, .timeout = 60)
{
	leave_with_streams("fin", "eof");
}

Test(h2, connection_rst_with_streams, .timeout = 60)
{
	leave_with_streams("rst", "rst");
}

Test(h2, goaway_with_streams, .timeout = 60)
{
	leave_with_streams("goaway", "goaway");
}

/* A flood of one kind: the connection is closed, nothing reached the
 * model, memory is back near where it was, and the proxy serves on. */
static void
flood(const char *kind)
{
	struct rig	 r;
	struct hproc	*cl;
	cJSON		*rec;
	long		 before, after;

	rig_start(&r);
	expect_still_serving(&r);
	before = rss_kib(r.proxy);
	cl = client_run(r.port, "flood", kind, "20000", NULL);
	client_done(cl, 0);
	rec = hproc_wait_record(cl, "h2_flood", NULL, NULL, 0);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_text(rec, "closed"), "true", "%s",
	    hjson_print(rec));
	/* The flood's answers are a few frames, not one per frame sent. */
	cr_assert_lt(hjson_num(rec, "got", 1e9), 64 * 1024, "%s",
	    hjson_print(rec));
	cr_assert_eq(hproc_count(r.mock, "mock_request"), 2);
	expect_still_serving(&r);
	after = rss_kib(r.proxy);
	cr_log_info("%s flood: RSS %ld KiB before, %ld KiB after", kind,
	    before, after);
	if (rss_meaningful(r.proxy))
		cr_assert_lt(after - before, 4096, "RSS grew %ld KiB",
		    after - before);
	proxy_stop_clean(r.proxy);
}

Test(h2, ping_flood, .timeout = 60)
{
	flood("ping");
}

Test(h2, settings_flood, .timeout = 60)
{
	flood("settings");
}

Test(h2, empty_data_flood, .timeout = 60)
{
	flood("empty_data");
}

Test(h2, continuation_flood, .timeout = 60)
{
	flood("continuation");
}

/* CVE-2023-44487: HEADERS and RST_STREAM at once, thousands of times. No
 * upstream connection is made for them, and the connection is sent away
 * by nghttp2's reset limit. */
Test(h2, rapid_reset, .timeout = 90)
{
	struct rig	 r;
	struct hproc	*cl;
	cJSON		*rec;
	long		 before, after;

	rig_start(&r);
	before = rss_kib(r.proxy);
	cl = client_run(r.port, "rapid_reset", "5000", NULL);
	client_done(cl, 60000);
	rec = hproc_wait_record(cl, "h2_flood", NULL, NULL, 0);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_text(rec, "goaway_seen"), "true", "no GOAWAY: %s",
	    hjson_print(rec));
	/* At full speed the connection is gone before the client is done;
	 * under valgrind the client may send everything first. */
	if (hscale() == 1)
		cr_assert_lt(hjson_num(rec, "sent", 1e9), 5000, "all sent: %s",
		    hjson_print(rec));
	cr_assert_eq(hproc_count(r.mock, "mock_request"), 0,
	    "the flood reached the model");
	expect_still_serving(&r);
	after = rss_kib(r.proxy);
	cr_log_info("rapid reset: RSS %ld KiB before, %ld KiB after", before,
	    after);
	if (rss_meaningful(r.proxy))
		cr_assert_lt(after - before, 8192);
	proxy_stop_clean(r.proxy);
}

/* The decoded header list counts: an HPACK bomb and too many fields get
 * 431 on their stream, and the connection serves on. */
static void
headers_refused(const char *kind, const char *code)
{
	struct rig	 r;
	struct hproc	*cl;
	cJSON		*rec;

	rig_start(&r);
	cl = client_run(r.port, "headers", kind, NULL);
	client_done(cl, 0);
	rec = hproc_find_record(cl, "h2_stream", "stream", "1");
	hassert(rec != NULL);
	cr_assert_eq(hjson_num(rec, "status", 0), 431, "%s", hjson_print(rec));
	cr_assert_not_null(strstr(hjson_str(rec, "body"), code));
	expect_stream_ok(cl, 3, 1);
	rec = hproc_wait_match(r.proxy, 0, "event", "request", "status", "431",
	    NULL);
	hassert(rec != NULL);
	cr_assert_eq(hproc_count(r.mock, "mock_request"), 1);
	proxy_stop_clean(r.proxy);
}

Test(h2, hpack_bomb, .timeout = 60)
{
	headers_refused("bomb", "header_too_large");
}

Test(h2, too_many_header_fields, .timeout = 60)
{
	headers_refused("many", "too_many_headers");
}

/* Windows that never open: after send_timeout_ms (3 s here) each
 * stream is reset and its model stream closed; the connection goes on. */
Test(h2, zero_window_send_timeout, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*cl;
	cJSON		*rec;
	int		 i;

	r.mock = hmock_start(&r.mock_port, "--first-token-ms", "0",
	    "--interval-ms", "10", "--tokens", "5", NULL);
	cr_assert_not_null(r.mock);
	r.proxy = hproxy_startf(H2_CONFIG, "", "http", r.mock_port, "", "");
	cr_assert_not_null(r.proxy);
	r.port = hproxy_port(r.proxy, 0);
	cl = client_run(r.port, "zero_window", "2", NULL);
	client_done(cl, 0);
	for (i = 0; i < 2; i++) {
		rec = hproc_wait_match(r.proxy, 0, "event", "cancel", NULL);
		hassert(rec != NULL);
		cr_assert_str_eq(hjson_str(rec, "detected_via"), "timer");
		cr_assert_str_eq(hjson_str(rec, "phase"), "streaming");
		cr_assert_lt(hjson_num(rec, "bytes_out", -1), 256 * 1024);
		hassert(hmock_wait_closed(r.mock, hjson_str(rec,
		    "request_id")) != NULL);
		rec = hproc_find_record(cl, "h2_stream", "stream",
		    hstrf("%d", 1 + 2 * i));
		hassert(rec != NULL);
		cr_assert(hjson_get(rec, "reset") != NULL &&
		    hjson_num(rec, "reset", -1) >= 0, "not reset: %s",
		    hjson_print(rec));
	}
	expect_stream_ok(cl, 5, 1);
	proxy_stop_clean(r.proxy);
}

/* nghttp -v: M streams on one connection, frames printed. */
static struct hproc *
nghttp_run(int port, int m)
{
	const char	*data = htmp_write("body.json",
	    "{\"model\":\"mock-1\",\"stream\":true}");
	const char	*argv[] = { "nghttp", "-v", "-m", hstrf("%d", m), "-d",
	    data, "-H", "content-type: application/json",
	    hstrf("http://127.0.0.1:%d/v1/chat/completions", port), NULL };

	return hproc_start(argv, NULL);
}

/* A client that stops reading the socket: what is framed for it stops at
 * the connection's cap, each stream's buffer at its mark (its upstream is
 * paused), memory stays bounded, and after send_timeout_ms every stream
 * is reset and its model stream closed; the proxy serves on. */
Test(h2, client_never_reads, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*cl;
	cJSON		*rec;
	long		 before, during;
	int		 i;

	rig_start(&r);
	before = rss_kib(r.proxy);
	cl = client_run(r.port, "no_read", "40", "9", NULL);
	hassert(hproc_wait_record(cl, "h2_sent", NULL, NULL, 0) != NULL);
	hsleep_ms(3000);
	during = rss_kib(r.proxy);
	cr_log_info("no reader: RSS %ld KiB before, %ld KiB with 40 streams "
	    "backed up", before, during);
	if (rss_meaningful(r.proxy))
		cr_assert_lt(during - before, 8 * 1024, "RSS grew %ld KiB",
		    during - before);
	for (i = 0; i < 40; i++) {
		rec = hproc_wait_match(r.proxy, 15000, "event", "cancel", NULL);
		hassert(rec != NULL, "cancel %d missing", i);
		cr_assert_str_eq(hjson_str(rec, "detected_via"), "timer");
		cr_assert_lt(hjson_num(rec, "bytes_out", -1), 256 * 1024, "%s",
		    hjson_print(rec));
		hassert(hmock_wait_closed(r.mock, hjson_str(rec,
		    "request_id")) != NULL);
	}
	client_done(cl, 0);
	expect_still_serving(&r);
	proxy_stop_clean(r.proxy);
}

/* SIGTERM: GOAWAY to the client, the open streams drain to their end,
 * and the proxy exits. */
Test(h2, shutdown_goaway_drains, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*ng;
	int		 i;

	r.mock = hmock_start(&r.mock_port, "--first-token-ms", "0",
	    "--interval-ms", "50", "--tokens", "20", NULL);
	cr_assert_not_null(r.mock);
	r.proxy = hproxy_startf(H2_CONFIG, "", "http", r.mock_port, "",
	    ",\"shutdown\":{\"drain_ms\":10000}");
	cr_assert_not_null(r.proxy);
	r.port = hproxy_port(r.proxy, 0);
	ng = nghttp_run(r.port, 2);
	for (i = 0; i < 2; i++)
		hassert(hproc_wait_record(r.mock, "mock_request", NULL, NULL,
		    0));
	hsleep_ms(200);
	hproc_signal(r.proxy, SIGTERM);
	hassert(hproc_wait_line(ng, "recv GOAWAY frame", 0) != NULL);
	cr_assert_eq(hproc_wait_exit(ng, 0), 0);
	for (i = 0; i < 2; i++) {
		cJSON *rec = hproc_wait_record(r.proxy, "request", NULL, NULL,
		    0);

		hassert(rec != NULL);
		cr_assert_str_eq(hjson_str(rec, "outcome"), "completed");
		cr_assert_eq(hjson_num(rec, "sse_events", 0), 22);
	}
	cr_assert_eq(hproc_wait_exit(r.proxy, 0), 0);
}

/* Past shutdown.drain_ms the open streams are cancelled with origin
 * shutdown, each with its record. */
Test(h2, shutdown_cancels_after_drain, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*ng;
	int		 i;

	r.mock = hmock_start(&r.mock_port, "--first-token-ms", "60000", NULL);
	cr_assert_not_null(r.mock);
	r.proxy = hproxy_startf(H2_CONFIG, "", "http", r.mock_port, "",
	    ",\"shutdown\":{\"drain_ms\":300}");
	cr_assert_not_null(r.proxy);
	r.port = hproxy_port(r.proxy, 0);
	ng = nghttp_run(r.port, 2);
	for (i = 0; i < 2; i++)
		hassert(hproc_wait_record(r.mock, "mock_request", NULL, NULL,
		    0));
	hproc_signal(r.proxy, SIGTERM);
	hassert(hproc_wait_line(ng, "recv GOAWAY frame", 0) != NULL);
	for (i = 0; i < 2; i++)
		hassert(hproc_wait_match(r.proxy, 0, "event", "cancel",
		    "origin.kind", "shutdown", "protocol", "h2", NULL) != NULL,
		    "shutdown cancel %d missing", i);
	cr_assert_eq(hproc_wait_exit(r.proxy, 0), 0);
	hproc_wait_exit(ng, 0);
}

/* GET /streams shows each HTTP/2 stream with its connection and stream
 * id; an admin cancel by request id ends exactly that stream (the SSE
 * error, then END_STREAM) and its sibling goes on. */
Test(h2, admin_lists_and_cancels_one_stream, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*cl;
	struct hresp	*ans;
	const cJSON	*list, *st;
	cJSON		*rec;
	int		 i, admin;
	double		 conn = -1;

	r.mock = hmock_start(&r.mock_port, "--first-token-ms", "0", NULL);
	cr_assert_not_null(r.mock);
	r.proxy = hproxy_startf(H2_CONFIG, "", "http", r.mock_port, "",
	    ",\"admin\":{\"address\":\"127.0.0.1:0\"}");
	cr_assert_not_null(r.proxy);
	r.port = hproxy_port(r.proxy, 0);
	rec = hproc_wait_record(r.proxy, "listening", "role", "admin", 0);
	hassert(rec != NULL, "no admin listener");
	admin = atoi(strrchr(hjson_str(rec, "address"), ':') + 1);
	cl = client_run(r.port, "admin", NULL);
	hassert(hproc_wait_record(cl, "h2_sent", NULL, NULL, 0) != NULL);
	ans = hhttp_exchange("127.0.0.1", admin, hreq_build("GET", "/streams",
	    NULL, NULL), 0);
	hassert(ans != NULL && ans->status == 200, "GET /streams failed");
	list = hjson_get(hresp_json(ans), "streams");
	cr_assert_eq(cJSON_GetArraySize(list), 2, "%s", ans->body);
	for (i = 0; i < 2; i++) {
		st = cJSON_GetArrayItem(list, i);
		cr_assert_str_eq(hjson_str(st, "protocol"), "h2");
		cr_assert(hjson_num(st, "stream_id", 0) == 1 ||
		    hjson_num(st, "stream_id", 0) == 3, "%s", ans->body);
		if (conn < 0)
			conn = hjson_num(st, "connection", -1);
		cr_assert_eq(hjson_num(st, "connection", -2), conn);
	}
	ans = hhttp_exchange("127.0.0.1", admin, hreq_build("POST",
	    "/streams/h2-two/cancel", NULL, ""), 0);
	hassert(ans != NULL && ans->status == 202, "admin cancel failed");
	client_done(cl, 0);
	rec = hproc_find_record(cl, "h2_stream", "stream", "3");
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_text(rec, "ended"), "true", "%s",
	    hjson_print(rec));
	cr_assert_not_null(strstr(hjson_str(rec, "body"), "\"code\":\"admin\""),
	    "%s", hjson_print(rec));
	rec = hproc_find_record(cl, "h2_admin", NULL, NULL);
	hassert(rec != NULL);
	cr_assert_gt(hjson_num(rec, "one_after", 0), hjson_num(rec,
	    "one_before", 0), "stream one stopped: %s", hjson_print(rec));
	rec = hproc_wait_match(r.proxy, 0, "event", "cancel", "request_id",
	    "h2-two", NULL);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "admin");
	cr_assert_eq(hjson_num(rec, "stream_id", 0), 3);
	ans = hhttp_exchange("127.0.0.1", admin, hreq_build("GET", "/metrics",
	    NULL, NULL), 0);
	hassert(ans != NULL && ans->status == 200);
	cr_assert_not_null(strstr(ans->body,
	    "cancelproxy_streams_total{protocol=\"h2\"} 2\n"), "%s", ans->body);
	cr_assert_not_null(strstr(ans->body,
	    "cancelproxy_streams_total{protocol=\"http/1.1\"} "), "%s",
	    ans->body);
	proxy_stop_clean(r.proxy);
}

/* A reload sends GOAWAY to HTTP/2 connections (they keep the settings
 * they started with); their open stream finishes. */
Test(h2, reload_sends_goaway, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*ng;
	cJSON		*rec;
	const char	*cfg;

	r.mock = hmock_start(&r.mock_port, "--first-token-ms", "0",
	    "--interval-ms", "50", "--tokens", "20", NULL);
	cr_assert_not_null(r.mock);
	cfg = hstrf(H2_CONFIG, "", "http", r.mock_port, "", "");
	r.proxy = hproxy_start(cfg);
	cr_assert_not_null(r.proxy);
	r.port = hproxy_port(r.proxy, 0);
	ng = nghttp_run(r.port, 1);
	hassert(hproc_wait_record(r.mock, "mock_request", NULL, NULL, 0));
	cr_assert_eq(hproxy_rewrite(r.proxy, cfg), 0);
	hproc_signal(r.proxy, SIGHUP);
	hassert(hproc_wait_line(ng, "recv GOAWAY frame", 0) != NULL);
	cr_assert_eq(hproc_wait_exit(ng, 0), 0);
	rec = hproc_wait_record(r.proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "outcome"), "completed");
	cr_assert_eq(hjson_num(rec, "sse_events", 0), 22);
	proxy_stop_clean(r.proxy);
}

/* The client's own cancel call, sent on another stream of the same
 * connection, ends exactly the stream it names. */
Test(h2, cancel_api_on_the_same_connection, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*cl;
	cJSON		*rec;

	rig_start(&r);
	cl = client_run(r.port, "cancel_api", NULL);
	client_done(cl, 0);
	rec = hproc_find_record(cl, "h2_stream", "stream", "3");
	hassert(rec != NULL);
	cr_assert_eq(hjson_num(rec, "status", 0), 202, "%s", hjson_print(rec));
	rec = hproc_find_record(cl, "h2_stream", "stream", "1");
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_text(rec, "ended"), "true", "%s",
	    hjson_print(rec));
	cr_assert_not_null(strstr(hjson_str(rec, "body"), "client_cancel"),
	    "%s", hjson_print(rec));
	rec = hproc_wait_match(r.proxy, 0, "event", "cancel", "request_id",
	    "h2-victim", NULL);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "client_cancel");
	cr_assert_eq(hjson_num(rec, "stream_id", 0), 1);
	hassert(hmock_wait_closed(r.mock, "h2-victim") != NULL);
	proxy_stop_clean(r.proxy);
}

/* A body that never comes: that stream gets 408 after header_timeout_ms
 * (2 s here), the other stream on the connection is served. */
Test(h2, request_timeout_per_stream, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*cl;
	cJSON		*rec;

	rig_start(&r);
	cl = client_run(r.port, "stall_body", NULL);
	client_done(cl, 0);
	rec = hproc_find_record(cl, "h2_stream", "stream", "1");
	hassert(rec != NULL);
	cr_assert_eq(hjson_num(rec, "status", 0), 408, "%s", hjson_print(rec));
	expect_stream_ok(cl, 3, 3);
	rec = hproc_wait_match(r.proxy, 0, "event", "request", "status", "408",
	    NULL);
	hassert(rec != NULL);
	cr_assert_str_eq(hjson_str(rec, "protocol"), "h2");
	cr_assert_eq(hproc_count(r.mock, "mock_request"), 1);
	proxy_stop_clean(r.proxy);
}

#define FLEET_CONFIG \
	"{\"hop\":\"%s\",\"workers\":2," \
	"\"listen\":[{\"address\":\"127.0.0.1:0\"}]," \
	"\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"}}," \
	"\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]," \
	"\"cluster\":{\"redis\":{\"address\":\"127.0.0.1:%d\"}}}"

/* The Redis fleet cancel: a cancel call sent to instance b reaches the
 * HTTP/2 stream held by instance a and resets exactly that stream. */
Test(h2, fleet_cancel_resets_one_stream, .timeout = 90)
{
	struct hproc	*redis, *mock, *a, *b, *cl;
	struct hresp	*ans;
	cJSON		*rec;
	int		 rport, mport, fd, i;
	struct hproc	*inst[2];

	if (access("/usr/bin/redis-server", X_OK) != 0)
		cr_skip_test("redis-server is not installed");
	fd = hnet_listen("127.0.0.1", &rport);
	close(fd);
	{
		const char *argv[] = { "redis-server", "--port",
		    hstrf("%d", rport), "--bind", "127.0.0.1", "--save", "",
		    "--appendonly", "no", "--protected-mode", "no", NULL };

		redis = hproc_start(argv, NULL);
		hassert(redis != NULL && hproc_wait_line(redis,
		    "Ready to accept connections", 0) != NULL);
	}
	mock = hmock_start(&mport, "--first-token-ms", "0", NULL);
	cr_assert_not_null(mock);
	for (i = 0; i < 2; i++) {
		inst[i] = hproxy_startf(FLEET_CONFIG, i ? "b" : "a", mport,
		    rport);
		cr_assert_not_null(inst[i]);
		hassert(hproc_wait_record(inst[i], "cluster", NULL, NULL, 0),
		    "the cluster link never came up");
	}
	a = inst[0];
	b = inst[1];
	cl = client_run(hproxy_port(a, 0), "admin", NULL);
	hassert(hproc_wait_record(cl, "h2_sent", NULL, NULL, 0) != NULL);
	ans = hhttp_exchange("127.0.0.1", hproxy_port(b, 0), hreq_build("POST",
	    "/v1/cancel/h2-two", NULL, ""), 0);
	hassert(ans != NULL && ans->status == 202, "cancel via b: %d",
	    ans ? ans->status : -1);
	client_done(cl, 0);
	rec = hproc_wait_match(a, 0, "event", "cancel", "request_id", "h2-two",
	    NULL);
	hassert(rec != NULL, "instance a did not cancel");
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "client_cancel");
	cr_assert_eq(hjson_num(rec, "stream_id", 0), 3);
	rec = hproc_find_record(cl, "h2_admin", NULL, NULL);
	hassert(rec != NULL);
	cr_assert_gt(hjson_num(rec, "one_after", 0), hjson_num(rec,
	    "one_before", 0), "stream one stopped: %s", hjson_print(rec));
	cr_assert_eq(hproc_count(b, "cancel"), 0);
	hassert(hproc_stop(a, 0) == 0);
	hassert(hproc_stop(b, 0) == 0);
	hproc_stop(redis, 0);
}

/* Request bodies held at once per connection are capped
 * (max_connection_body_bytes, 100000 here): a second 60 KB body while the
 * first is still arriving gets 503 with Retry-After, the first is served. */
Test(h2, connection_body_cap, .timeout = 60)
{
	struct rig	 r;
	struct hproc	*cl;
	cJSON		*rec;

	rig_start(&r);
	cl = client_run(r.port, "body_cap", NULL);
	client_done(cl, 0);
	rec = hproc_find_record(cl, "h2_stream", "stream", "3");
	hassert(rec != NULL);
	cr_assert_eq(hjson_num(rec, "status", 0), 503, "%s", hjson_print(rec));
	cr_assert_not_null(strstr(hjson_str(rec, "body"),
	    "connection_body_limit"), "%s", hjson_print(rec));
	expect_stream_ok(cl, 1, 2);
	cr_assert_eq(hproc_count(r.mock, "mock_request"), 1);
	proxy_stop_clean(r.proxy);
}
