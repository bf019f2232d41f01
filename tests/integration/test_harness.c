/* test_harness: checks the integration-test harness itself: processes and
 * their records, sockets closed with FIN and RST, the HTTP/SSE reader,
 * and TLS with certificates made at test time, against plain shell
 * commands, hand-driven sockets and cancelproxy-mock. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"

TestSuite(harness, .timeout = 60);

/* ---- processes ---- */

Test(harness, proc_records_lines_and_exit_status)
{
	const char *const argv[] = { "/bin/sh", "-c",
	    "echo '{\"event\":\"hello\",\"n\":1,\"o\":{\"k\":\"v\"}}'; "
	    "echo 'not json'; echo \"$HARNESS_X\" >&2; "
	    "echo '{\"event\":\"hello\",\"n\":2}'; exit 3", NULL };
	const char *const env[] = { "HARNESS_X=from-env", NULL };
	struct hproc	*p;
	cJSON		*r;

	p = hproc_start(argv, env);
	hassert(p != NULL);
	r = hproc_wait_record(p, "hello", "n", "2", 0);
	hassert(r != NULL);
	r = hproc_wait_record(p, "hello", NULL, NULL, 0);
	hassert(r != NULL && hjson_num(r, "n", 0) == 1,
	    "the first unreturned record is n=1");
	hassert(strcmp(hjson_str(r, "o.k"), "v") == 0);
	hassert(hproc_wait_record(p, "hello", NULL, NULL, 200) == NULL,
	    "both records were returned already");
	hassert(hproc_wait_line(p, "not json", 0) != NULL);
	hassert(hproc_wait_line(p, "from-env", 0) != NULL);
	hassert(hproc_wait_exit(p, 0) == 3);
	hassert(hproc_count(p, "hello") == 2);
	hassert(hproc_nrecords(p) == 2);
	hassert(hproc_find_record(p, "hello", "o.k", "v") != NULL);
}

Test(harness, proc_stop_term_then_kill)
{
	const char *const sleeper[] = { "sleep", "30", NULL };
	const char *const stubborn[] = { "/bin/sh", "-c",
	    "trap '' TERM; echo ready; exec sleep 30", NULL };
	struct hproc	*p, *q;
	int64_t		 t0;

	p = hproc_start(sleeper, NULL);
	hassert(p != NULL);
	hassert(hproc_running(p));
	hassert(hproc_stop(p, 0) == 128 + SIGTERM);
	hassert(hproc_stop(p, 0) == 128 + SIGTERM, "stop twice");
	hassert(hproc_signal(p, SIGTERM) == -1);

	q = hproc_start(stubborn, NULL);
	hassert(q != NULL);
	hassert(hproc_wait_line(q, "ready", 0) != NULL);
	t0 = hnow_ms();
	hassert(hproc_stop(q, 300) == 128 + SIGKILL);
	hassert(hnow_ms() - t0 >= 300, "waited for SIGTERM first");
}

Test(harness, proc_exec_failure)
{
	const char *const argv[] = { "/nonexistent/program", NULL };

	cr_assert_null(hproc_start(argv, NULL));
}

Test(harness, tmp_dir_and_files)
{
	const char	*d = htmp_dir(), *f;

	hassert(strncmp(d, "/tmp/cp-test.", 13) == 0);
	hassert(strcmp(htmp_dir(), d) == 0);
	f = htmp_write("x.json", "{\"a\": [1, 2]}");
	hassert(f != NULL && strncmp(f, d, strlen(d)) == 0);
	hassert(strcmp(hjson_text(hjson_parse("{\"a\":[1,2.5,true]}"),
	    "a.1"), "2.5") == 0);
}

/* ---- raw sockets and the HTTP reader, against a hand-driven server ---- */

Test(harness, net_fin_rst_and_half_close)
{
	int	lfd, port, c, s;
	char	buf[64];

	lfd = hnet_listen("127.0.0.1", &port);
	hassert(lfd != -1 && port > 0);

	c = hnet_connect("127.0.0.1", port);
	s = hnet_accept(lfd, 0);
	hassert(c != -1 && s != -1);
	hassert(hnet_wait_closed(s, 100) == HNET_TIMEOUT);
	hnet_close_fin(c);
	hassert(hnet_wait_closed(s, 0) == HNET_FIN);
	close(s);

	c = hnet_connect("127.0.0.1", port);
	s = hnet_accept(lfd, 0);
	hnet_close_rst(c);
	hassert(hnet_wait_closed(s, 0) == HNET_RST);
	close(s);

	/* Half-close: the server sees the FIN, and can still answer. */
	c = hnet_connect("127.0.0.1", port);
	s = hnet_accept(lfd, 0);
	hassert(hnet_send_str(c, "ping") == 0);
	hassert(hnet_shutdown_wr(c) == 0);
	hassert(hnet_recv_until(s, buf, sizeof(buf), NULL, 0) == 4);
	hassert(strcmp(buf, "ping") == 0);
	hassert(hnet_send_str(s, "pong") == 0);
	close(s);
	hassert(hnet_recv_until(c, buf, sizeof(buf), NULL, 0) == 4);
	hassert(strcmp(buf, "pong") == 0);
	close(c);
	close(lfd);
}

Test(harness, http_reader_chunked_sse_and_keepalive)
{
	struct hconn	*c;
	struct hresp	*r, *r2;
	const char	*ev;
	int		 lfd, port, s;

	lfd = hnet_listen("127.0.0.1", &port);
	c = hconn_connect("127.0.0.1", port);
	s = hnet_accept(lfd, 0);
	hassert(c != NULL && s != -1);

	/* Pieces that split the head, the chunk sizes and the events. */
	hnet_send_str(s, "HTTP/1.1 200 OK\r\nContent-Type: text/ev");
	hnet_send_str(s, "ent-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "e\r\ndata: {\"i\":1}\n\r\n");
	r = hconn_read_head(c, 0);
	hassert(r != NULL && r->status == 200 && r->chunked);
	hassert(strcmp(hresp_header(r, "content-type"),
	    "text/event-stream") == 0);
	hnet_send_str(s, "1\r\n\n\r\n");
	ev = hconn_read_event(c, r, 0);
	hassert(ev != NULL && hjson_num(hsse_json(ev), "i", 0) == 1);
	hnet_send_str(s, "1e\r\nevent: error\ndata: a\ndata: b\n\n\r\n"
	    "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n");
	ev = hconn_read_event(c, r, 0);
	hassert(ev != NULL && strcmp(hsse_type(ev), "error") == 0);
	hassert(strcmp(hsse_data(ev), "a\nb") == 0);
	ev = hconn_read_event(c, r, 0);
	hassert(ev != NULL && strcmp(hsse_data(ev), "[DONE]") == 0);
	hassert(hsse_json(ev) == NULL);
	hassert(hconn_read_event(c, r, 0) == NULL);
	hassert(r->complete && r->nevents == 3 && r->nchunks == 4);

	/* A second response on the same connection, with a length. */
	hnet_send_str(s, "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n"
	    "\r\n{\"e\":\"no\"}");
	r2 = hconn_read_response(c, 0);
	hassert(r2 != NULL && r2->status == 404 && r2->complete);
	hassert(strcmp(hjson_str(hresp_json(r2), "e"), "no") == 0);

	/* A chunked body cut short by a close is not complete. */
	hnet_send_str(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n5\r\nhel");
	close(s);
	r = hconn_read_head(c, 0);
	hassert(r != NULL);
	hassert(hconn_read_body(c, r, 0) == -1);
	hassert(!r->complete && r->eof && r->error != NULL);
	hassert(hconn_peer_closed(c) == 1);
	close(lfd);
}

Test(harness, http_reader_reports_bad_framing)
{
	struct hconn	*c;
	int		 lfd, port, s;

	lfd = hnet_listen("127.0.0.1", &port);
	c = hconn_connect("127.0.0.1", port);
	s = hnet_accept(lfd, 0);
	hnet_send_str(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	    "\r\nzz\r\n");
	hassert(hconn_read_head(c, 0) != NULL);
	hassert(hconn_read_body(c, hconn_last_response(c), 0) == -1);
	hassert(hconn_last_response(c)->error != NULL);
	close(s);
	close(lfd);
}

/* ---- cancelproxy-mock ---- */

Test(harness, mock_non_streaming)
{
	struct hproc	*m;
	struct hresp	*r;
	cJSON		*j, *rec;
	int		 port;

	m = hmock_start(&port, "--first-token-ms", "20", "--interval-ms", "5",
	    "--tokens", "4", NULL);
	hassert(m != NULL && port > 0);
	r = hhttp_exchange("127.0.0.1", port, hreq_chat("mock-1", 0, NULL),
	    0);
	hassert(r != NULL);
	hassert(r->status == 200, "status %d", r->status);
	j = hresp_json(r);
	hassert(j != NULL, "body: %s", r->body);
	hassert(cJSON_IsObject(hjson_get(j, "usage")), "body: %s", r->body);
	hassert(hjson_num(j, "usage.completion_tokens", -1) == 4,
	    "body: %s", r->body);
	hassert(hjson_str(j, "choices.0.message.content") != NULL);

	rec = hproc_wait_record(m, "mock_stream", NULL, NULL, 0);
	hassert(rec != NULL);
	hassert(strcmp(hjson_text(rec, "outcome"), "completed") == 0);
	hassert(hproc_stop(m, 0) == 0);
}

Test(harness, mock_streaming_to_the_end)
{
	struct hproc	*m;
	struct hconn	*c;
	struct hresp	*r;
	const char	*ev, *data;
	cJSON		*j, *rec;
	int		 port, ntokens = 0, done = 0, nevents = 0;

	m = hmock_start(&port, "--first-token-ms", "20", "--interval-ms", "5",
	    "--tokens", "7", NULL);
	hassert(m != NULL);
	c = hconn_connect("127.0.0.1", port);
	hassert(c != NULL);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)) == 0);
	r = hconn_read_head(c, 0);
	hassert(r != NULL && r->status == 200);
	hassert(strstr(hresp_header(r, "Content-Type"), "text/event-stream")
	    != NULL);
	while ((ev = hconn_read_event(c, r, 0)) != NULL) {
		nevents++;
		data = hsse_data(ev);
		hassert(data != NULL, "an event without data: %s", ev);
		hassert(!done, "an event after [DONE]: %s", ev);
		if (strcmp(data, "[DONE]") == 0) {
			done = 1;
			continue;
		}
		j = hsse_json(ev);
		hassert(j != NULL, "data is not JSON: %s", data);
		if (hjson_str(j, "choices.0.delta.content") != NULL &&
		    *hjson_str(j, "choices.0.delta.content") != '\0')
			ntokens++;
	}
	hassert(done, "no [DONE] in %d events", nevents);
	hassert(ntokens == 7, "%d tokens", ntokens);
	hassert(r->complete && r->chunked, "body ended by its framing");

	rec = hproc_wait_record(m, "mock_stream", NULL, NULL, 0);
	hassert(rec != NULL);
	hassert(strcmp(hjson_text(rec, "outcome"), "completed") == 0);
	hassert(hjson_num(rec, "tokens_sent", -1) == 7);

	/* The same connection carries another request. */
	hassert(hconn_send_str(c, hreq_build("GET", "/v1/models", NULL,
	    NULL)) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200);
	hassert(hresp_json(r) != NULL, "body: %s", r->body);
	hassert(hproc_stop(m, 0) == 0);
}

Test(harness, mock_sees_fin_while_waiting_first_token)
{
	const char *const hdrs[] = { "X-Mock-First-Token-Ms: 10000",
	    "X-Request-Id: harness-fin-1", NULL };
	struct hproc	*m;
	struct hconn	*c;
	cJSON		*req, *rec;
	const char	*id;
	int64_t		 t0;
	int		 port;

	m = hmock_start(&port, NULL);
	hassert(m != NULL);
	c = hconn_connect("127.0.0.1", port);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, hdrs)) == 0);
	req = hproc_wait_record(m, "mock_request", NULL, NULL, 0);
	hassert(req != NULL);
	id = hjson_text(req, "request_id");
	hassert(id != NULL && strcmp(id, "harness-fin-1") == 0, "%s",
	    hjson_print(req));
	hsleep_ms(50);
	t0 = hnow_ms();
	hconn_close_fin(c);
	rec = hproc_wait_record(m, "mock_stream", "request_id", id, 0);
	hassert(rec != NULL);
	hassert(hnow_ms() - t0 < 1000 * hscale(), "the mock noticed late");
	hassert(strcmp(hjson_text(rec, "outcome"), "client_fin") == 0,
	    "%s", hjson_print(rec));
	hassert(strcmp(hjson_text(rec, "phase"), "waiting_first_token") == 0,
	    "%s", hjson_print(rec));
	hassert(hjson_num(rec, "tokens_sent", -1) == 0);
	hassert(hproc_stop(m, 0) == 0);
}

Test(harness, mock_sees_rst_mid_stream)
{
	const char *const hdrs[] = { "X-Mock-First-Token-Ms: 10",
	    "X-Mock-Interval-Ms: 50", "X-Mock-Tokens: 1000", NULL };
	struct hproc	*m;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*rec;
	int		 port, i;

	m = hmock_start(&port, NULL);
	hassert(m != NULL);
	c = hconn_connect("127.0.0.1", port);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, hdrs)) == 0);
	r = hconn_read_head(c, 0);
	hassert(r != NULL && r->status == 200);
	for (i = 0; i < 3; i++)
		hassert(hconn_read_event(c, r, 0) != NULL);
	hconn_close_rst(c);
	rec = hproc_wait_record(m, "mock_stream", NULL, NULL, 0);
	hassert(rec != NULL);
	hassert(strcmp(hjson_text(rec, "outcome"), "client_rst") == 0,
	    "%s", hjson_print(rec));
	hassert(strcmp(hjson_text(rec, "phase"), "streaming") == 0,
	    "%s", hjson_print(rec));
	hassert(hjson_num(rec, "tokens_sent", -1) >= 2 &&
	    hjson_num(rec, "tokens_sent", -1) < 1000, "%s", hjson_print(rec));
	hassert(hproc_stop(m, 0) == 0);
}

Test(harness, mock_over_tls_with_a_cert_made_now)
{
	struct hcert	 cert, other, wrong;
	struct hproc	*m;
	struct hconn	*c;
	struct hresp	*r;
	int		 port;

	hassert(hcert_make(NULL, "localhost", &cert) == 0);
	hassert(hcert_make(NULL, "other", &other) == 0);
	m = hmock_start(&port, "--tokens", "3", "--first-token-ms", "5",
	    "--interval-ms", "5", "--tls-cert", cert.cert, "--tls-key",
	    cert.key, NULL);
	hassert(m != NULL);

	/* Verified by name (SNI) and by IP address. */
	c = hconn_connect_tls("127.0.0.1", port, cert.ca, "localhost");
	hassert(c != NULL);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 0, NULL)) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200);
	hassert(hjson_num(hresp_json(r), "usage.completion_tokens", -1) == 3);
	hconn_close_notify(c);

	c = hconn_connect_tls("127.0.0.1", port, cert.ca, NULL);
	hassert(c != NULL);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)) == 0);
	r = hconn_read_head(c, 0);
	hassert(r != NULL && r->status == 200);
	hassert(hconn_read_body(c, r, 0) == 0);
	hassert(strstr(r->body, "[DONE]") != NULL);
	hconn_free(c);

	/* Another CA, or a name the certificate does not carry, fails. */
	hassert(hconn_connect_tls("127.0.0.1", port, other.ca,
	    "localhost") == NULL);
	hassert(hconn_connect_tls("127.0.0.1", port, cert.ca,
	    "example.com") == NULL);

	/* A second leaf from the same CA goes next to the first. */
	hassert(hcert_make_leaf(&cert, "example.com", "example", &wrong) == 0);
	hassert(strstr(wrong.cert, "example-cert.pem") != NULL);
	hassert(hproc_stop(m, 0) == 0);
}
