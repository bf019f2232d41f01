/* Running for months: SIGHUP reloads without dropping live streams,
 * SIGTERM drains then cancels, SIGUSR1 reopens a rotated log. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define CONFIG_TO(hop_port, listen) \
	"{\"hop\":\"edge\",\"workers\":2,\"listen\":[" listen "]," \
	"\"upstreams\":{\"a\":{\"url\":\"http://127.0.0.1:%d\"}," \
	"\"b\":{\"url\":\"http://127.0.0.1:%d\"}}," \
	"\"routes\":[{\"path_prefix\":\"/v1/\",\"upstream\":\"%s\"}]," \
	"\"shutdown\":{\"drain_ms\":%d}}"

#define SSE_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" \
	"Transfer-Encoding: chunked\r\n\r\n"

static const char *
chunk(const char *data)
{
	return hstrf("%zx\r\n%s\r\n", strlen(data), data);
}

/* A stream that started before a reload ends byte-exact on the old
 * config; the next request takes the new route. */
Test(lifecycle, reload_during_live_stream, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hconn	*c;
	struct hresp	*resp;
	int		 lfd, aport, mport, ufd, i;
	char		 buf[4096], expect[4096] = "";
	const char	*events[] = { "data: one\n\n", "data: two\n\n",
	    "data: three\n\n", "event: x\ndata: four\n\n", "data: [DONE]\n\n" };
	cJSON		*rec;

	lfd = hnet_listen("127.0.0.1", &aport);
	mock = hmock_start(&mport, "--first-token-ms", "0", "--tokens", "2",
	    NULL);
	cr_assert_not_null(mock);
	proxy = hproxy_startf(CONFIG_TO(0, "{\"address\":\"127.0.0.1:0\"}"),
	    aport, mport, "a", 30000);
	cr_assert_not_null(proxy);
	c = hconn_connect("127.0.0.1", hproxy_port(proxy, 0));
	cr_assert_eq(hconn_send_str(c, hreq_chat("m", 1, NULL)), 0);
	ufd = hnet_accept(lfd, 0);
	cr_assert_geq(ufd, 0);
	cr_assert_gt(hnet_recv_until(ufd, buf, sizeof(buf), "\"stream\"", 0),
	    0);
	cr_assert_eq(hnet_send_str(ufd, SSE_HEAD), 0);
	for (i = 0; i < 2; i++) {
		cr_assert_eq(hnet_send_str(ufd, chunk(events[i])), 0);
		strcat(expect, events[i]);
	}
	resp = hconn_read_head(c, 0);
	hassert(resp != NULL, "no head");

	cr_assert_eq(hproxy_rewrite(proxy, hstrf(CONFIG_TO(0,
	    "{\"address\":\"127.0.0.1:0\"}"), aport, mport, "b", 30000)), 0);
	cr_assert_eq(hproc_signal(proxy, SIGHUP), 0);
	rec = hproc_wait_record(proxy, "reload", NULL, NULL, 0);
	hassert(rec != NULL, "no reload record");
	cr_assert_str_eq(hjson_str(rec, "outcome"), "ok");

	for (i = 2; i < 5; i++) {
		cr_assert_eq(hnet_send_str(ufd, chunk(events[i])), 0);
		strcat(expect, events[i]);
		hsleep_ms(20);
	}
	cr_assert_eq(hnet_send_str(ufd, "0\r\n\r\n"), 0);
	cr_assert_eq(hconn_read_body(c, resp, 0), 0);
	cr_assert_str_eq(resp->body, expect, "the live stream was not "
	    "relayed byte-exact across the reload");
	rec = hproc_wait_record(proxy, "request", "upstream", "a", 0);
	hassert(rec != NULL, "no record for the old stream");
	cr_assert_str_eq(hjson_str(rec, "outcome"), "completed");

	/* The next request, also on the same connection, uses route b. */
	cr_assert_eq(hconn_send_str(c, hreq_chat("m", 0, NULL)), 0);
	resp = hconn_read_response(c, 0);
	hassert(resp != NULL && resp->status == 200, "no answer from b");
	hassert(hproc_wait_record(proxy, "request", "upstream", "b", 0),
	    "the new route was not used");
	hassert(hproc_wait_record(mock, "mock_request", NULL, NULL, 0),
	    "no request at b");
	hsleep_ms(50);
	cr_assert_eq(hproc_count(mock, "mock_request"), 1);
	close(ufd);
	close(lfd);
	hassert(hproc_stop(proxy, 0) == 0, "the proxy exited badly");
}

Test(lifecycle, broken_reload_keeps_the_old_config, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hresp	*resp;
	int		 mport;
	cJSON		*rec;

	mock = hmock_start(&mport, "--first-token-ms", "0", "--tokens", "2",
	    NULL);
	cr_assert_not_null(mock);
	proxy = hproxy_startf(CONFIG_TO(0, "{\"address\":\"127.0.0.1:0\"}"),
	    mport, mport, "a", 30000);
	cr_assert_not_null(proxy);
	cr_assert_eq(hproxy_rewrite(proxy, "{\"hop\":\"edge\",\"listen\":[],"
	    "\"bogus\":1}"), 0);
	cr_assert_eq(hproc_signal(proxy, SIGHUP), 0);
	rec = hproc_wait_record(proxy, "reload", NULL, NULL, 0);
	hassert(rec != NULL, "no reload record");
	cr_assert_str_eq(hjson_str(rec, "outcome"), "refused");
	cr_assert_not_null(strstr(hjson_str(rec, "error"),
	    hproxy_config_path(proxy)), "the error names the file: %s",
	    hjson_str(rec, "error"));
	cr_assert_str_eq(hjson_str(rec, "level"), "error");
	resp = hhttp_exchange("127.0.0.1", hproxy_port(proxy, 0),
	    hreq_chat("m", 0, NULL), 0);
	hassert(resp != NULL && resp->status == 200, "the old config is gone");
	hassert(hproc_wait_record(proxy, "request", "upstream", "a", 0),
	    "not served by the old route");
	hassert(hproc_stop(proxy, 0) == 0, "the proxy exited badly");
}

Test(lifecycle, reload_adds_and_removes_listeners, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hresp	*resp;
	int		 mport, p1, p2;
	cJSON		*rec;
	const char	*addr;

	mock = hmock_start(&mport, "--first-token-ms", "0", "--tokens", "2",
	    NULL);
	cr_assert_not_null(mock);
	proxy = hproxy_startf(CONFIG_TO(0, "{\"address\":\"127.0.0.1:0\"}"),
	    mport, mport, "a", 30000);
	cr_assert_not_null(proxy);
	p1 = hproxy_port(proxy, 0);
	/* Keep the first listener, add a second one on [::1] or 127.0.0.2. */
	cr_assert_eq(hproxy_rewrite(proxy, hstrf(CONFIG_TO(0,
	    "{\"address\":\"127.0.0.1:0\"},{\"address\":\"127.0.0.2:0\"}"),
	    mport, mport, "a", 30000)), 0);
	cr_assert_eq(hproc_signal(proxy, SIGHUP), 0);
	rec = hproc_wait_record(proxy, "reload", NULL, NULL, 0);
	hassert(rec != NULL, "no reload record");
	cr_assert_str_eq(hjson_str(rec, "listeners_added.0"), "127.0.0.2:0");
	rec = hproc_wait_record(proxy, "listening", NULL, NULL, 0);
	hassert(rec != NULL, "no listening record for the new listener");
	addr = hjson_str(rec, "address");
	cr_assert_eq(strncmp(addr, "127.0.0.2:", 10), 0, "%s", addr);
	p2 = atoi(addr + 10);
	resp = hhttp_exchange("127.0.0.2", p2, hreq_chat("m", 0, NULL), 0);
	hassert(resp != NULL && resp->status == 200, "the new listener fails");
	resp = hhttp_exchange("127.0.0.1", p1, hreq_chat("m", 0, NULL), 0);
	hassert(resp != NULL && resp->status == 200, "the kept one fails");

	/* Now drop the first one. */
	cr_assert_eq(hproxy_rewrite(proxy, hstrf(CONFIG_TO(0,
	    "{\"address\":\"127.0.0.2:0\"}"), mport, mport, "a", 30000)), 0);
	cr_assert_eq(hproc_signal(proxy, SIGHUP), 0);
	rec = hproc_wait_record(proxy, "reload", NULL, NULL, 0);
	hassert(rec != NULL, "no second reload record");
	cr_assert_str_eq(hjson_str(rec, "listeners_removed.0"), "127.0.0.1:0");
	hsleep_ms(200);
	cr_assert_lt(hnet_connect("127.0.0.1", p1), 0,
	    "the removed listener still accepts");
	resp = hhttp_exchange("127.0.0.2", p2, hreq_chat("m", 0, NULL), 0);
	hassert(resp != NULL && resp->status == 200, "the kept one fails");
	hassert(hproc_stop(proxy, 0) == 0, "the proxy exited badly");
}

/* SIGTERM: a stream that ends inside the drain ends normally; one that
 * does not is cancelled with origin shutdown and an SSE error; exit 0. */
Test(lifecycle, sigterm_drains_then_cancels, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hconn	*quick, *slow;
	struct hresp	*rq, *rs;
	const char	*ev, *last = NULL;
	const char	*few[] = { "X-Mock-Tokens: 5", NULL };
	int		 mport, port;
	cJSON		*rec;

	mock = hmock_start(&mport, "--first-token-ms", "50", "--interval-ms",
	    "100", "--tokens", "100000", NULL);
	cr_assert_not_null(mock);
	proxy = hproxy_startf(CONFIG_TO(0, "{\"address\":\"127.0.0.1:0\"}"),
	    mport, mport, "a", 1500);
	cr_assert_not_null(proxy);
	port = hproxy_port(proxy, 0);
	quick = hconn_connect("127.0.0.1", port);
	slow = hconn_connect("127.0.0.1", port);
	cr_assert_eq(hconn_send_str(quick, hreq_chat("m", 1, few)), 0);
	cr_assert_eq(hconn_send_str(slow, hreq_chat("m", 1, NULL)), 0);
	rq = hconn_read_head(quick, 0);
	rs = hconn_read_head(slow, 0);
	hassert(rq != NULL && rs != NULL, "no heads");
	cr_assert_eq(hproc_signal(proxy, SIGTERM), 0);
	hassert(hproc_wait_record(proxy, "shutdown", NULL, NULL, 0),
	    "no shutdown record");
	/* No new connections once draining. */
	hsleep_ms(100);
	cr_assert_lt(hnet_connect("127.0.0.1", port), 0);
	cr_assert_eq(hconn_read_body(quick, rq, 0), 0);
	cr_assert_not_null(strstr(rq->body, "[DONE]"));
	while ((ev = hconn_read_event(slow, rs, 0)) != NULL)
		last = ev;
	hassert(last != NULL, "no events on the slow stream");
	cr_assert_str_eq(hsse_type(last), "error");
	cr_assert_str_eq(hjson_str(hsse_json(last), "error.code"), "shutdown");
	rec = hproc_wait_record(proxy, "cancel", "origin.kind", "shutdown", 0);
	hassert(rec != NULL, "no shutdown cancel record");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "signal");
	cr_assert_eq(hproc_count_match(proxy, "request", "outcome",
	    "completed"), 1);
	cr_assert_eq(hproc_wait_exit(proxy, 0), 0);
}

Test(lifecycle, second_signal_cuts_the_drain_short, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hconn	*c;
	int		 mport;
	int64_t		 t0;

	mock = hmock_start(&mport, "--first-token-ms", "60000", NULL);
	cr_assert_not_null(mock);
	proxy = hproxy_startf(CONFIG_TO(0, "{\"address\":\"127.0.0.1:0\"}"),
	    mport, mport, "a", 60000);
	cr_assert_not_null(proxy);
	c = hconn_connect("127.0.0.1", hproxy_port(proxy, 0));
	cr_assert_eq(hconn_send_str(c, hreq_chat("m", 1, NULL)), 0);
	hassert(hproc_wait_record(mock, "mock_request", NULL, NULL, 0),
	    "no request at the mock");
	cr_assert_eq(hproc_signal(proxy, SIGTERM), 0);
	hassert(hproc_wait_record(proxy, "shutdown", NULL, NULL, 0),
	    "no shutdown record");
	t0 = hnow_ms();
	cr_assert_eq(hproc_signal(proxy, SIGINT), 0);
	cr_assert_eq(hproc_wait_exit(proxy, 0), 0);
	cr_assert_lt(hnow_ms() - t0, 5000 * hscale());
	hassert(hproc_find_record(proxy, "cancel", "origin.kind", "shutdown"),
	    "no shutdown cancel");
	hassert(hproc_wait_record(mock, "mock_stream", "outcome", "client_fin",
	    0), "the model was not told");
}

/* Waits for a line containing needle in a file. */
static int
file_has(const char *path, const char *needle, int timeout_ms)
{
	int64_t	 end = hnow_ms() + hscaled(timeout_ms);
	char	 line[8192];
	FILE	*f;

	do {
		if ((f = fopen(path, "r")) != NULL) {
			while (fgets(line, sizeof(line), f) != NULL)
				if (strstr(line, needle) != NULL) {
					fclose(f);
					return 1;
				}
			fclose(f);
		}
		hsleep_ms(20);
	} while (hnow_ms() < end);
	return 0;
}

Test(lifecycle, sigusr1_reopens_a_moved_log, .timeout = 60)
{
	struct hproc		*mock, *proxy;
	struct hproxy_opts	 o = { .no_wait = 1 };
	const char		*log = htmp_path("proxy.log");
	const char		*moved = htmp_path("proxy.log.1");
	int			 mport, port = -1;
	char			 line[8192];
	FILE			*f;

	mock = hmock_start(&mport, "--first-token-ms", "0", "--tokens", "1",
	    NULL);
	cr_assert_not_null(mock);
	proxy = hproxy_start_opts(hstrf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"a\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"upstream\":\"a\"}],"
	    "\"log\":{\"path\":\"%s\"}}", mport, log), &o);
	cr_assert_not_null(proxy);
	hassert(file_has(log, "\"listening\"", 0), "no listening in the log");
	f = fopen(log, "r");
	while (fgets(line, sizeof(line), f) != NULL) {
		static const char key[] = "\"address\":\"127.0.0.1:";
		char *a = strstr(line, key);

		if (a != NULL)
			port = atoi(a + sizeof(key) - 1);
	}
	fclose(f);
	cr_assert_gt(port, 0);
	cr_assert_eq(rename(log, moved), 0);
	cr_assert_eq(hproc_signal(proxy, SIGUSR1), 0);
	hassert(file_has(log, "\"log_reopen\"", 0), "no log at the old path");
	hassert(hhttp_exchange("127.0.0.1", port, hreq_chat("m", 0, NULL), 0),
	    "no answer");
	hassert(file_has(log, "\"event\":\"request\"", 0),
	    "the request record did not go to the new file");
	cr_assert_not(file_has(moved, "\"event\":\"request\"", 100),
	    "the request record went to the rotated file");
	hassert(hproc_stop(proxy, 0) == 0, "the proxy exited badly");
}

/* Started as root with "user" set, the proxy gives root up for good. */
Test(lifecycle, drops_privileges_when_started_as_root, .timeout = 60)
{
	struct hproc	*mock, *proxy;
	struct hresp	*resp;
	int		 mport;
	char		 path[64], line[256];
	FILE		*f;
	int		 uid = -1;

	if (geteuid() != 0)
		cr_skip_test("not running as root");
	mock = hmock_start(&mport, "--first-token-ms", "0", "--tokens", "1",
	    NULL);
	cr_assert_not_null(mock);
	proxy = hproxy_startf("{\"hop\":\"edge\",\"workers\":2,\"user\":\"nobody\","
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"a\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"upstream\":\"a\"}]}", mport);
	cr_assert_not_null(proxy);
	hassert(hproc_wait_record(proxy, "privileges", NULL, NULL, 0),
	    "no privileges record");
	snprintf(path, sizeof(path), "/proc/%d/status", (int)hproc_pid(proxy));
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Uid:", 4) == 0)
			uid = atoi(line + 4);
	fclose(f);
	cr_assert_eq(uid, 65534, "still uid %d", uid);
	resp = hhttp_exchange("127.0.0.1", hproxy_port(proxy, 0),
	    hreq_chat("m", 0, NULL), 0);
	hassert(resp != NULL && resp->status == 200, "no answer after the drop");
	hassert(hproc_stop(proxy, 0) == 0, "the proxy exited badly");
}
