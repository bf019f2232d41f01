/* test_tls: TLS on both sides, with certificates made at test time: a TLS
 * listener that clients verify with the test CA; https upstreams verified
 * by chain and host name (ca_file, server_name, verify false), and what a
 * failed verification looks like (502, Proxy-Status, the cancel record);
 * a TLS client leaving mid-stream with a FIN, close_notify or an RST. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tests/integration/harness.h"

TestSuite(tls, .timeout = 60);

/* ---- helpers ---- */

static struct hconn *
connect_plain(struct hproc *p)
{
	struct hconn	*c = hconn_connect("127.0.0.1", hproxy_port(p, 0));

	hassert(c != NULL, "cannot connect to the proxy");
	return c;
}

/* A proxy "edge" with a plain listener and one upstream "secure" at url
 * with the given "tls" object (NULL: none), routing everything to it. */
static struct hproc *
proxy_upstream(const char *url, const char *tls)
{
	struct hproc	*p;

	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"secure\":{\"url\":\"%s\"%s%s}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"secure\"}]}",
	    url, tls ? ",\"tls\":" : "", tls ? tls : "");
	hassert(p != NULL, "the proxy did not start");
	return p;
}

/* A TLS mock with the certificate of cert. */
static struct hproc *
mock_tls(const struct hcert *cert, int *port)
{
	struct hproc	*m;

	m = hmock_start(port, "--first-token-ms", "5", "--interval-ms", "5",
	    "--tokens", "5", "--tls-cert", cert->cert, "--tls-key", cert->key,
	    NULL);
	hassert(m != NULL, "the TLS mock did not start");
	return m;
}

/* One request on a fresh plain connection; the complete response. */
static struct hresp *
get(struct hproc *p, const char *req)
{
	struct hconn	*c = connect_plain(p);
	struct hresp	*r;

	hassert(hconn_send_str(c, req) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL, "no complete response");
	return r;
}

/* Checks the answer and records of a request that failed on the upstream
 * TLS handshake: 502, JSON error, Proxy-Status naming this hop, a cancel
 * record with origin upstream_error; the model never saw a request. */
static void
check_tls_failure(struct hproc *p, struct hproc *m, struct hresp *r)
{
	const char	*ps;
	cJSON		*j, *rec, *req;

	hassert(r->status == 502, "status %d: %s", r->status, r->body);
	hassert(strncmp(hresp_header(r, "Content-Type"), "application/json",
	    16) == 0);
	j = hresp_json(r);
	hassert(j != NULL, "not JSON: %s", r->body);
	hassert(strcmp(hjson_str(j, "error.code"), "upstream_error") == 0,
	    "%s", r->body);
	hassert(strcmp(hjson_str(j, "error.type"), "proxy_error") == 0);
	hassert(strcmp(hjson_str(j, "error.cancel.origin.kind"),
	    "upstream_error") == 0, "%s", r->body);
	ps = hresp_header(r, "Proxy-Status");
	hassert(ps != NULL, "no Proxy-Status: %s", r->head);
	hassert(strncmp(ps, "edge;", 5) == 0, "Proxy-Status: %s", ps);
	hassert(strstr(ps, "error=") != NULL, "Proxy-Status: %s", ps);

	rec = hproc_wait_record(p, "cancel", NULL, NULL, 0);
	hassert(rec != NULL, "no cancel record");
	hassert(strcmp(hjson_str(rec, "origin.kind"), "upstream_error") == 0,
	    "%s", hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "origin.hop"), "upstream:secure") == 0,
	    "%s", hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "cancel_path.0"), "upstream:secure") == 0
	    && strcmp(hjson_str(rec, "cancel_path.1"), "edge") == 0 &&
	    hjson_get(rec, "cancel_path.2") == NULL, "%s", hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "direction"), "downstream") == 0);
	hassert(strcmp(hjson_str(rec, "phase"), "connecting") == 0, "%s",
	    hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "upstream"), "secure") == 0);
	hassert(strcmp(hjson_str(rec, "request_id"),
	    hresp_header(r, "X-Request-Id")) == 0);
	req = hproc_wait_record(p, "request", NULL, NULL, 0);
	hassert(req != NULL);
	hassert(hjson_num(req, "status", 0) == 502, "%s", hjson_print(req));
	hassert(strcmp(hjson_str(req, "outcome"), "canceled") == 0 ||
	    strcmp(hjson_str(req, "outcome"), "error") == 0, "%s",
	    hjson_print(req));
	hsleep_ms(50);
	hassert(hproc_count(m, "mock_request") == 0,
	    "a request went to an unverified upstream");
}

/* Reads and drops whatever the kernel holds for fd, so that a close
 * sends a FIN and not an RST (unread data makes close() reset). */
static void
drain_socket(int fd)
{
	char	 buf[16384];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* Stops the proxy with SIGTERM; it must exit 0 (under CP_VALGRIND=1 that
 * also means no memory errors or definite leaks). */
static void
stop_clean(struct hproc *p)
{
	int	 st = hproc_stop(p, 0);

	hassert(st == 0, "the proxy exited with status %d", st);
}

/* ---- the TLS listener ---- */

Test(tls, listener_with_a_cert_made_now)
{
	struct hcert	 cert, other;
	struct hproc	*m, *p;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*rec;
	int		 mport, tport;

	hassert(hcert_make(NULL, "localhost", &cert) == 0);
	hassert(hcert_make(NULL, "other", &other) == 0);
	m = hmock_start(&mport, "--first-token-ms", "5", "--interval-ms", "5",
	    "--tokens", "5", NULL);
	hassert(m != NULL);
	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"},"
	    "{\"address\":\"127.0.0.1:0\",\"tls\":{\"cert\":\"%s\","
	    "\"key\":\"%s\"}}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]}",
	    cert.cert, cert.key, mport);
	hassert(p != NULL);
	tport = hproxy_port(p, 1);
	hassert(tport > 0 && tport != hproxy_port(p, 0));

	/* Verified by name and by address; keep-alive inside TLS. */
	c = hconn_connect_tls("127.0.0.1", tport, cert.ca, "localhost");
	hassert(c != NULL, "TLS handshake with the proxy failed");
	hassert(hconn_send_str(c, hreq_chat("mock-1", 0, NULL)) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200);
	hassert(hjson_num(hresp_json(r), "usage.completion_tokens", 0) == 5);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200 && r->chunked);
	hassert(strstr(r->body, "data: [DONE]\n\n") != NULL);
	hconn_close_notify(c);
	c = hconn_connect_tls("127.0.0.1", tport, cert.ca, NULL);
	hassert(c != NULL, "verified by IP address");
	hassert(hconn_send_str(c, hreq_build("GET", "/debug/echo", NULL,
	    NULL)) == 0);
	r = hconn_read_response(c, 0);
	hassert(r != NULL && r->status == 200);
	rec = hproc_wait_record(p, "request", "path", "/debug/echo", 0);
	hassert(rec != NULL && strncmp(hjson_str(rec, "client"), "127.0.0.1:",
	    10) == 0, "%s", hjson_print(rec));
	hconn_free(c);

	/* The proxy's certificate does not pass for another CA or name. */
	hassert(hconn_connect_tls("127.0.0.1", tport, other.ca, "localhost")
	    == NULL);
	hassert(hconn_connect_tls("127.0.0.1", tport, cert.ca, "example.com")
	    == NULL);

	/* Plain HTTP on the TLS port gets no HTTP answer. */
	c = hconn_connect("127.0.0.1", tport);
	hassert(c != NULL);
	hassert(hconn_send_str(c, hreq_build("GET", "/debug/echo", NULL,
	    NULL)) == 0);
	hassert(hconn_wait_closed(c, 0) != HNET_TIMEOUT);
	hassert(strstr(hconn_data(c, NULL), "HTTP/1.1 200") == NULL);

	/* The plain listener next to it still works. */
	r = get(p, hreq_build("GET", "/v1/models", NULL, NULL));
	hassert(r->status == 200);
	stop_clean(p);
}

/* A TLS 1.2 client (no 1.3) gets through: "TLS 1.2+" includes 1.2. */
Test(tls, listener_accepts_tls12)
{
	struct hcert	 cert;
	struct hproc	*m, *p;
	SSL_CTX		*ctx;
	SSL		*ssl;
	char		 buf[4096];
	const char	*req;
	int		 mport, fd, n, got = 0;

	hassert(hcert_make(NULL, "localhost", &cert) == 0);
	m = hmock_start(&mport, NULL);
	hassert(m != NULL);
	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\",\"tls\":{\"cert\":\"%s\","
	    "\"key\":\"%s\"}}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"mock\"}]}",
	    cert.cert, cert.key, mport);
	hassert(p != NULL);
	fd = hnet_connect("127.0.0.1", hproxy_port(p, 1));
	hassert(fd != -1);
	ctx = SSL_CTX_new(TLS_client_method());
	hassert(ctx != NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	hassert(SSL_CTX_load_verify_locations(ctx, cert.ca, NULL) == 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set1_host(ssl, "localhost");
	SSL_set_tlsext_host_name(ssl, "localhost");
	hassert(SSL_connect(ssl) == 1, "TLS 1.2 handshake failed");
	hassert(SSL_version(ssl) == TLS1_2_VERSION);
	req = hreq_build("GET", "/v1/models", NULL, NULL);
	hassert(SSL_write(ssl, req, (int)strlen(req)) == (int)strlen(req));
	while (got < (int)sizeof(buf) - 1 &&
	    (n = SSL_read(ssl, buf + got, (int)sizeof(buf) - 1 - got)) > 0) {
		got += n;
		buf[got] = '\0';
		if (strstr(buf, "\"data\"") != NULL)
			break;
	}
	buf[got] = '\0';
	hassert(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "got: %s", buf);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
}

/* ---- https upstreams ---- */

Test(tls, https_upstream_verified_with_ca_file)
{
	struct hcert	 cert;
	struct hproc	*m, *p, *p2;
	struct hresp	*r;
	cJSON		*j, *q1, *q2;
	int		 mport;

	hassert(hcert_make(NULL, "localhost", &cert) == 0);
	m = mock_tls(&cert, &mport);

	/* By host name, with a base path. */
	p = proxy_upstream(hstrf("https://localhost:%d/debug", mport),
	    hstrf("{\"ca_file\":\"%s\"}", cert.ca));
	r = get(p, hreq_build("GET", "/echo", NULL, NULL));
	hassert(r->status == 200, "status %d: %s", r->status, r->body);
	j = hresp_json(r);
	hassert(j != NULL, "%s", r->body);
	hassert(strcmp(hjson_str(j, "path"), "/debug/echo") == 0, "%s",
	    r->body);
	r = get(p, hreq_build("GET", "/echo", NULL, NULL));
	hassert(r->status == 200);

	/* The two requests shared one TLS connection to the upstream. */
	q1 = hproc_wait_record(m, "mock_request", NULL, NULL, 0);
	q2 = hproc_wait_record(m, "mock_request", NULL, NULL, 0);
	hassert(q1 != NULL && q2 != NULL);
	hassert(hjson_num(q1, "conn", -1) == hjson_num(q2, "conn", -2),
	    "not reused: %s %s", hjson_print(q1), hjson_print(q2));

	/* Streaming over it. */
	p2 = proxy_upstream(hstrf("https://127.0.0.1:%d", mport),
	    hstrf("{\"ca_file\":\"%s\",\"verify\":true}", cert.ca));
	r = get(p2, hreq_chat("mock-1", 1, NULL));
	hassert(r->status == 200 && r->chunked, "status %d", r->status);
	hassert(strstr(r->body, "data: [DONE]\n\n") != NULL, "%s", r->body);
	hassert(hproc_count(p2, "cancel") == 0);
	stop_clean(p2);
}

Test(tls, upstream_cert_for_another_name_is_502)
{
	struct hcert	 other;
	struct hproc	*m, *p;
	struct hresp	*r;
	int		 mport;

	/* The certificate names "other" (and 127.0.0.1); we ask for
	 * localhost. */
	hassert(hcert_make(NULL, "other", &other) == 0);
	m = mock_tls(&other, &mport);
	p = proxy_upstream(hstrf("https://localhost:%d", mport),
	    hstrf("{\"ca_file\":\"%s\"}", other.ca));
	r = get(p, hreq_chat("mock-1", 1, NULL));
	check_tls_failure(p, m, r);

	/* verify false accepts it. */
	p = proxy_upstream(hstrf("https://localhost:%d", mport),
	    "{\"verify\":false}");
	r = get(p, hreq_chat("mock-1", 0, NULL));
	hassert(r->status == 200, "verify false: %d %s", r->status, r->body);
	hassert(hjson_num(hresp_json(r), "usage.completion_tokens", 0) == 5);
	stop_clean(p);
}

Test(tls, upstream_cert_from_an_unknown_ca_is_502)
{
	struct hcert	 cert, stranger;
	struct hproc	*m, *p;
	int		 mport;

	hassert(hcert_make(NULL, "localhost", &cert) == 0);
	hassert(hcert_make(NULL, "stranger", &stranger) == 0);
	m = mock_tls(&cert, &mport);
	/* Another CA in ca_file. */
	p = proxy_upstream(hstrf("https://localhost:%d", mport),
	    hstrf("{\"ca_file\":\"%s\"}", stranger.ca));
	check_tls_failure(p, m, get(p, hreq_build("GET", "/debug/echo", NULL,
	    NULL)));
	/* No ca_file: the system store does not know the test CA. */
	p = proxy_upstream(hstrf("https://localhost:%d", mport), NULL);
	check_tls_failure(p, m, get(p, hreq_build("GET", "/debug/echo", NULL,
	    NULL)));
}

Test(tls, server_name_overrides_the_name_checked)
{
	struct hcert	 cert, other;
	struct hproc	*m, *mo, *p;
	struct hresp	*r;
	int		 mport, oport;

	hassert(hcert_make(NULL, "localhost", &cert) == 0);
	hassert(hcert_make(NULL, "other", &other) == 0);
	mo = mock_tls(&other, &oport);
	hproc_set_name(mo, "mock-other");

	/* An address in the url, the certificate's name in server_name. */
	p = proxy_upstream(hstrf("https://127.0.0.1:%d", oport),
	    hstrf("{\"ca_file\":\"%s\",\"server_name\":\"other\"}", other.ca));
	r = get(p, hreq_build("GET", "/debug/echo", NULL, NULL));
	hassert(r->status == 200, "server_name other: %d %s", r->status,
	    r->body);
	hassert(strcmp(hjson_str(hresp_json(r), "method"), "GET") == 0);

	/* The name in the url is replaced too: localhost would fail. */
	p = proxy_upstream(hstrf("https://localhost:%d", oport),
	    hstrf("{\"ca_file\":\"%s\",\"server_name\":\"other\"}", other.ca));
	r = get(p, hreq_build("GET", "/debug/echo", NULL, NULL));
	hassert(r->status == 200, "localhost url, server_name other: %d %s",
	    r->status, r->body);
	/* Host is still what the url says. */
	hassert(strstr(r->body, hstrf("\"localhost:%d\"", oport)) != NULL,
	    "%s", r->body);

	/* And server_name is what gets checked: the address alone (in the
	 * certificate) would pass, the wrong name does not. */
	m = mock_tls(&cert, &mport);
	p = proxy_upstream(hstrf("https://127.0.0.1:%d", mport),
	    hstrf("{\"ca_file\":\"%s\",\"server_name\":\"wrong.example\"}",
	    cert.ca));
	check_tls_failure(p, m, get(p, hreq_build("GET", "/debug/echo", NULL,
	    NULL)));
}

/* ---- a TLS client leaving mid-stream ---- */

enum leave { LEAVE_FIN, LEAVE_NOTIFY, LEAVE_RST };

static void
tls_client_leaves_mid_stream(enum leave how)
{
	static const char *const ids[] = { "tls-fin", "tls-notify", "tls-rst" };
	const char	*id = ids[how];
	const char *const hdrs[] = { hstrf("X-Request-Id: %s", id),
	    "X-Mock-Interval-Ms: 100", "X-Mock-Tokens: 1000", NULL };
	struct hcert	 cert;
	struct hproc	*m, *p;
	struct hconn	*c;
	struct hresp	*r;
	cJSON		*rec, *req, *ms;
	int64_t		 t0;
	int		 mport, i;

	hassert(hcert_make(NULL, "localhost", &cert) == 0);
	m = hmock_start(&mport, "--first-token-ms", "5", NULL);
	hassert(m != NULL);
	p = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\",\"tls\":{\"cert\":\"%s\","
	    "\"key\":\"%s\"}}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/v1/\",\"upstream\":\"mock\"}]}",
	    cert.cert, cert.key, mport);
	hassert(p != NULL);
	c = hconn_connect_tls("127.0.0.1", hproxy_port(p, 1), cert.ca,
	    "localhost");
	hassert(c != NULL);
	hassert(hconn_send_str(c, hreq_chat("mock-1", 1, hdrs)) == 0);
	r = hconn_read_head(c, 0);
	hassert(r != NULL && r->status == 200);
	for (i = 0; i < 3; i++)
		hassert(hconn_read_event(c, r, 0) != NULL, "event %d", i);

	t0 = hnow_ms();
	switch (how) {
	case LEAVE_FIN:
		drain_socket(hconn_fd(c));
		hconn_close_fin(c);
		break;
	case LEAVE_NOTIFY:
		drain_socket(hconn_fd(c));
		hconn_close_notify(c);
		break;
	case LEAVE_RST:
		hconn_close_rst(c);
		break;
	}

	rec = hproc_wait_record(p, "cancel", "request_id", id, 0);
	hassert(rec != NULL, "no cancel record");
	hassert(strcmp(hjson_str(rec, "origin.kind"), "client_disconnect") == 0,
	    "%s", hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "origin.hop"), "client") == 0,
	    "%s", hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "detected_via"),
	    how == LEAVE_RST ? "rst" : "eof") == 0, "%s", hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "phase"), "streaming") == 0, "%s",
	    hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "direction"), "upstream") == 0);
	hassert(strcmp(hjson_str(rec, "cancel_path.0"), "client") == 0 &&
	    strcmp(hjson_str(rec, "cancel_path.1"), "edge") == 0,
	    "%s", hjson_print(rec));
	hassert(hjson_num(rec, "sse_events", 0) >= 3, "%s", hjson_print(rec));
	hassert(hjson_num(rec, "detect_to_close_us", -1) >= 0,
	    "%s", hjson_print(rec));
	hassert(strcmp(hjson_str(rec, "upstream"), "mock") == 0);

	req = hproc_wait_record(p, "request", "request_id", id, 0);
	hassert(req != NULL);
	hassert(strcmp(hjson_str(req, "outcome"), "canceled") == 0, "%s",
	    hjson_print(req));
	hassert(hjson_num(req, "sse_events", 0) >= 3);

	/* The model side saw its client (the proxy) go, at once. */
	ms = hmock_wait_closed(m, id);
	hassert(ms != NULL, "the mock's stream did not end as closed");
	hassert(hnow_ms() - t0 < 1000 * hscale(), "the mock noticed after "
	    "%lld ms", (long long)(hnow_ms() - t0));
	hassert(strcmp(hjson_str(ms, "phase"), "streaming") == 0, "%s",
	    hjson_print(ms));
	hassert(hjson_num(ms, "tokens_sent", 0) >= 3 &&
	    hjson_num(ms, "tokens_sent", 0) < 50, "%s", hjson_print(ms));
	hassert(hproc_count(p, "cancel") == 1);
	stop_clean(p);
}

Test(tls, client_fin_mid_stream)
{
	tls_client_leaves_mid_stream(LEAVE_FIN);
}

Test(tls, client_close_notify_mid_stream)
{
	tls_client_leaves_mid_stream(LEAVE_NOTIFY);
}

Test(tls, client_rst_mid_stream)
{
	tls_client_leaves_mid_stream(LEAVE_RST);
}
