/* Cancels across hops: client -> edge -> (mid ->) core -> model. Every hop
 * closes its side at once and records the one true origin and path. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cancel_chain/cancel_chain.h"
#include "harness.h"

/* A hop listening on port 0 in front of the given upstream. */
static struct hproc *
hop_start(const char *hop, int up_port, int peer, const char *timeouts,
    const char *secret)
{
	return hproxy_startf("{\"hop\":\"%s\",\"workers\":2,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"next\":{\"url\":\"http://127.0.0.1:%d\","
	    "\"peer\":%s,\"timeouts_ms\":%s}},"
	    "\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"next\"}],"
	    "\"peers\":{%s%s%s\"note_wait_ms\":%d}}", hop, up_port,
	    peer ? "true" : "false", timeouts ? timeouts : "{}",
	    secret ? "\"secret\":\"" : "", secret ? secret : "",
	    secret ? "\"," : "", 1000 * hscale());
}

struct chain {
	struct hproc	*mock;
	struct hproc	*hop[4];	/* hop[0] faces the client */
	int		 n;
	int		 port;		/* of hop[0] */
};

/* names[0] faces the client; the last hop talks to the mock. */
static void
chain_start(struct chain *c, const char *const names[], int n,
    const char *first_token_ms, const char *core_timeouts, const char *secret)
{
	int	 mport, port, i;

	c->mock = hmock_start(&mport, "--first-token-ms", first_token_ms,
	    "--interval-ms", "20", "--tokens", "100000", NULL);
	cr_assert_not_null(c->mock);
	c->n = n;
	port = mport;
	for (i = n - 1; i >= 0; i--) {
		c->hop[i] = hop_start(names[i], port, i != n - 1,
		    i == n - 1 ? core_timeouts : NULL, secret);
		cr_assert_not_null(c->hop[i], "hop %s did not start", names[i]);
		port = hproxy_port(c->hop[i], 0);
	}
	c->port = port;
}

static void
chain_stop(struct chain *c)
{
	int	 i;

	for (i = 0; i < c->n; i++)
		hassert(hproc_stop(c->hop[i], 0) == 0, "a hop exited badly");
}

/* The cancel record at hop h, checked against the expected path. */
static cJSON *
expect_path(struct hproc *h, const char *const path[], int n,
    const char *kind, const char *direction)
{
	cJSON	*rec = hproc_wait_record(h, "cancel", NULL, NULL, 0);
	int	 i;

	hassert(rec != NULL, "no cancel record at this hop");
	for (i = 0; i < n; i++)
		cr_assert_str_eq(hjson_str(rec, hstrf("cancel_path.%d", i)),
		    path[i], "cancel_path[%d] in %s", i, hjson_print(rec));
	cr_assert_null(hjson_get(rec, hstrf("cancel_path.%d", n)),
	    "path too long: %s", hjson_print(rec));
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), kind);
	cr_assert_str_eq(hjson_str(rec, "origin.hop"), path[0]);
	cr_assert_str_eq(hjson_str(rec, "direction"), direction);
	return rec;
}

static void
client_leaves_two_hops(const char *how, const char *first_token_ms)
{
	static const char *const names[] = { "edge", "core" };
	static const char *const at_edge[] = { "client", "edge" };
	static const char *const at_core[] = { "client", "edge", "core" };
	struct chain	 c;
	struct hconn	*k;
	cJSON		*e, *r, *m;

	chain_start(&c, names, 2, first_token_ms, NULL, NULL);
	k = hconn_connect("127.0.0.1", c.port);
	cr_assert_eq(hconn_send_str(k, hreq_chat("mock-1", 1, NULL)), 0);
	hassert(hproc_wait_record(c.mock, "mock_request", NULL, NULL, 0),
	    "no request at the model");
	if (strcmp(first_token_ms, "10") == 0) {
		struct hresp *resp = hconn_read_head(k, 0);

		hassert(resp != NULL, "no head");
		hassert(hconn_read_event(k, resp, 0) != NULL, "no event");
	}
	if (strcmp(how, "rst") == 0)
		hconn_close_rst(k);
	else
		hconn_close_fin(k);
	e = expect_path(c.hop[0], at_edge, 2, "client_disconnect", "upstream");
	r = expect_path(c.hop[1], at_core, 3, "client_disconnect", "upstream");
	/* Same request and trace at every hop. */
	cr_assert_str_eq(hjson_str(e, "request_id"), hjson_str(r, "request_id"));
	cr_assert_str_eq(hjson_str(e, "trace_id"), hjson_str(r, "trace_id"));
	/* core closed its upstream on the bare close or, when the note
	 * overtook the close (another worker got it first), on the note. */
	cr_assert_geq(hjson_num(r, "detect_to_close_us", -1), 0);
	hassert(hproc_wait_record(c.hop[1], "note", "outcome", "applied", 0),
	    "core did not apply the note");
	m = hmock_wait_closed(c.mock, hjson_str(e, "request_id"));
	hassert(m != NULL, "the model never saw the close");
	chain_stop(&c);
}

Test(cascade, two_hops_fin_waiting_first_byte, .timeout = 60)
{
	client_leaves_two_hops("fin", "60000");
}

Test(cascade, two_hops_rst_waiting_first_byte, .timeout = 60)
{
	client_leaves_two_hops("rst", "60000");
}

Test(cascade, two_hops_fin_streaming, .timeout = 60)
{
	client_leaves_two_hops("fin", "10");
}

Test(cascade, two_hops_rst_streaming, .timeout = 60)
{
	client_leaves_two_hops("rst", "10");
}

Test(cascade, four_hops_path_at_every_hop, .timeout = 90)
{
	static const char *const names[] = { "edge", "mid", "inner", "core" };
	static const char *const full[] = { "client", "edge", "mid", "inner",
	    "core" };
	struct chain	 c;
	struct hconn	*k;
	cJSON		*rec;
	const char	*via;
	int		 i;

	chain_start(&c, names, 4, "60000", NULL, "s3cret-shared-by-hops");
	k = hconn_connect("127.0.0.1", c.port);
	cr_assert_eq(hconn_send_str(k, hreq_chat("mock-1", 1, NULL)), 0);
	rec = hproc_wait_record(c.mock, "mock_request", NULL, NULL, 0);
	hassert(rec != NULL, "no request at the model");
	via = hjson_str(rec, "via");
	cr_assert_str_eq(via, "1.1 edge, 1.1 mid, 1.1 inner, 1.1 core");
	hconn_close_fin(k);
	for (i = 0; i < 4; i++)
		expect_path(c.hop[i], full, i + 2, "client_disconnect",
		    "upstream");
	chain_stop(&c);
}

/* core times out before any header: 504 at core, passed on by edge with
 * the path ["core","edge"], and the client's error names core. */
Test(cascade, core_first_byte_timeout_before_headers, .timeout = 60)
{
	static const char *const names[] = { "edge", "core" };
	static const char *const at_core[] = { "core" };
	static const char *const at_edge[] = { "core", "edge" };
	struct chain	 c;
	struct hresp	*resp;
	cJSON		*body, *rec;
	const char	*ps;

	chain_start(&c, names, 2, "60000", "{\"first_byte\":300}", NULL);
	resp = hhttp_exchange("127.0.0.1", c.port, hreq_chat("mock-1", 0, NULL),
	    0);
	hassert(resp != NULL, "no response");
	cr_assert_eq(resp->status, 504);
	ps = hresp_header(resp, "proxy-status");
	cr_assert_not_null(ps);
	cr_assert_not_null(strstr(ps, "core; error=http_response_timeout"), "%s",
	    ps);
	cr_assert_not_null(strstr(ps, ", edge; error="), "%s", ps);
	body = hresp_json(resp);
	cr_assert_not_null(body);
	cr_assert_str_eq(hjson_str(body, "error.cancel.origin.hop"), "core");
	cr_assert_str_eq(hjson_str(body, "error.cancel.cancel_path.1"), "edge");
	cr_assert_not_null(strstr(hjson_str(body, "error.message"),
	    "core -> edge"));
	expect_path(c.hop[1], at_core, 1, "first_byte_timeout", "downstream");
	rec = expect_path(c.hop[0], at_edge, 2, "first_byte_timeout",
	    "downstream");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "upstream_status");
	chain_stop(&c);
}

/* core's idle timeout mid-stream reaches the client as one SSE error
 * naming core, with edge appended. */
Test(cascade, core_idle_timeout_mid_stream, .timeout = 60)
{
	static const char *const names[] = { "edge", "core" };
	static const char *const at_edge[] = { "core", "edge" };
	struct chain	 c;
	struct hconn	*k;
	struct hresp	*resp;
	const char	*ev, *err = NULL;
	int		 errors = 0, events = 0;
	const char	*hdr[] = { "X-Mock-Fault: stall_after:2", NULL };
	cJSON		*data, *rec;

	chain_start(&c, names, 2, "10", "{\"idle\":300}", NULL);
	k = hconn_connect("127.0.0.1", c.port);
	cr_assert_eq(hconn_send_str(k, hreq_chat("mock-1", 1, hdr)), 0);
	resp = hconn_read_head(k, 0);
	hassert(resp != NULL, "no head");
	while ((ev = hconn_read_event(k, resp, 0)) != NULL) {
		events++;
		if (hsse_type(ev) && strcmp(hsse_type(ev), "error") == 0) {
			errors++;
			err = ev;
		}
	}
	cr_assert(resp->complete, "the stream did not end cleanly");
	cr_assert_eq(errors, 1, "exactly one error event reaches the client");
	cr_assert_eq(events, 3);
	data = hsse_json(err);
	cr_assert_str_eq(hjson_str(data, "error.cancel.origin.hop"), "core");
	cr_assert_str_eq(hjson_str(data, "error.cancel.cancel_path.1"), "edge");
	cr_assert_str_eq(hjson_str(data, "error.code"), "idle_timeout");
	rec = expect_path(c.hop[0], at_edge, 2, "idle_timeout", "downstream");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "sse_error");
	cr_assert_str_eq(hjson_str(rec, "phase"), "streaming");
	chain_stop(&c);
}

/* The model fails: the path starts at the upstream, as seen by core. */
Test(cascade, model_failure_path, .timeout = 60)
{
	static const char *const names[] = { "edge", "core" };
	static const char *const at_core[] = { "upstream:next", "core" };
	static const char *const at_edge[] = { "upstream:next", "core", "edge" };
	struct chain	 c;
	struct hconn	*k;
	struct hresp	*resp;
	const char	*hdr[] = { "X-Mock-Fault: close_after:2", NULL };

	chain_start(&c, names, 2, "10", NULL, NULL);
	k = hconn_connect("127.0.0.1", c.port);
	cr_assert_eq(hconn_send_str(k, hreq_chat("mock-1", 1, hdr)), 0);
	resp = hconn_read_head(k, 0);
	hassert(resp != NULL, "no head");
	while (hconn_read_event(k, resp, 0) != NULL)
		;
	cr_assert(resp->complete);
	expect_path(c.hop[1], at_core, 2, "upstream_closed", "downstream");
	expect_path(c.hop[0], at_edge, 3, "upstream_closed", "downstream");
	chain_stop(&c);
}

/* A client that claims to be a peer but sends no note: the origin is
 * unknown, at the hop it named. */
Test(cascade, missing_note_means_unknown_origin, .timeout = 60)
{
	static const char *const path[] = { "fakehop", "core" };
	struct hproc	*mock, *core;
	struct hconn	*k;
	int		 mport;
	const char	*hdr[] = { "X-Cancelproxy-Peer: fakehop", NULL };
	cJSON		*rec;

	mock = hmock_start(&mport, "--first-token-ms", "60000", NULL);
	core = hop_start("core", mport, 0, NULL, NULL);
	cr_assert_not_null(core);
	k = hconn_connect("127.0.0.1", hproxy_port(core, 0));
	cr_assert_eq(hconn_send_str(k, hreq_chat("mock-1", 1, hdr)), 0);
	hassert(hproc_wait_record(mock, "mock_request", NULL, NULL, 0),
	    "no request at the model");
	hconn_close_fin(k);
	/* The model is told at once, not after the note wait. */
	hassert(hproc_wait_record(mock, "mock_stream", "outcome", "client_fin",
	    900), "core waited for the note before closing upstream");
	rec = expect_path(core, path, 2, "unknown", "upstream");
	cr_assert_geq(hjson_num(rec, "detect_to_close_us", -1), 0);
	hassert(hproc_stop(core, 0) == 0, "core exited badly");
}

/* Notes signed with another secret change nothing and are logged. */
Test(cascade, note_with_wrong_secret_is_refused, .timeout = 60)
{
	static const char *const path[] = { "edge", "core" };
	struct hproc	*mock, *core, *edge;
	struct hconn	*k;
	int		 mport;

	mock = hmock_start(&mport, "--first-token-ms", "60000", NULL);
	core = hop_start("core", mport, 0, NULL, "the-real-secret");
	cr_assert_not_null(core);
	edge = hop_start("edge", hproxy_port(core, 0), 1, NULL,
	    "a-wrong-secret");
	cr_assert_not_null(edge);
	k = hconn_connect("127.0.0.1", hproxy_port(edge, 0));
	cr_assert_eq(hconn_send_str(k, hreq_chat("mock-1", 1, NULL)), 0);
	hassert(hproc_wait_record(mock, "mock_request", NULL, NULL, 0),
	    "no request at the model");
	hconn_close_fin(k);
	hassert(hproc_wait_record(core, "note", "outcome", "refused", 0),
	    "core did not log the refused note");
	expect_path(core, path, 2, "unknown", "upstream");
	hassert(hproc_wait_record(edge, "note_failed", NULL, NULL, 0),
	    "edge did not log the refusal");
	hassert(hproc_stop(core, 0) == 0, "core exited badly");
	hassert(hproc_stop(edge, 0) == 0, "edge exited badly");
}

/* Posts a note from a chosen source address; returns the HTTP status. */
static int
post_note(int port, const char *src_ip, const char *body, const char *secret)
{
	struct sockaddr_in	 a;
	char			 req[4096], sig[200], resp[512];
	int			 fd, status = 0;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	inet_pton(AF_INET, src_ip, &a.sin_addr);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	sig[0] = '\0';
	if (secret != NULL) {
		char s[140];

		cancel_note_sign(secret, (long long)time(NULL), body,
		    strlen(body), s, sizeof(s));
		snprintf(sig, sizeof(sig), "X-Cancelproxy-Signature: %s\r\n", s);
	}
	snprintf(req, sizeof(req), "POST /.cancelproxy/note HTTP/1.1\r\n"
	    "Host: x\r\nContent-Type: application/json\r\n%s"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", sig,
	    strlen(body), body);
	cr_assert_eq(hnet_send_str(fd, req), 0);
	if (hnet_recv_until(fd, resp, sizeof(resp), "\r\n", 0) > 0)
		sscanf(resp, "HTTP/1.1 %d", &status);
	close(fd);
	return status;
}

/* A note may only cancel a stream that came from its sender: another
 * hop name, or (unsigned) another address, is refused. */
Test(cascade, note_from_another_sender_changes_nothing, .timeout = 60)
{
	struct hproc	*mock, *core;
	struct hconn	*k;
	int		 mport, port;
	const char	*hdr[] = { "X-Cancelproxy-Peer: edge",
	    "X-Request-Id: req-victim-1", NULL };
	const char	*wrong_hop = "{\"request_id\":\"req-victim-1\","
	    "\"origin\":{\"kind\":\"admin\",\"hop\":\"evil\"},"
	    "\"cancel_path\":[\"evil\"],\"from\":\"evil\"}";
	const char	*right_hop = "{\"request_id\":\"req-victim-1\","
	    "\"origin\":{\"kind\":\"admin\",\"hop\":\"edge\"},"
	    "\"cancel_path\":[\"edge\"],\"from\":\"edge\"}";

	mock = hmock_start(&mport, "--first-token-ms", "60000", NULL);
	core = hop_start("core", mport, 0, NULL, NULL);
	cr_assert_not_null(core);
	port = hproxy_port(core, 0);
	k = hconn_connect("127.0.0.1", port);
	cr_assert_eq(hconn_send_str(k, hreq_chat("mock-1", 1, hdr)), 0);
	hassert(hproc_wait_record(mock, "mock_request", NULL, NULL, 0),
	    "no request at the model");
	cr_assert_eq(post_note(port, "127.0.0.1", wrong_hop, NULL), 202);
	hassert(hproc_wait_match(core, 0, "event", "note", "outcome",
	    "refused", "from", "evil", NULL), "wrong hop not refused");
	cr_assert_eq(post_note(port, "127.0.0.2", right_hop, NULL), 202);
	hassert(hproc_wait_match(core, 0, "event", "note", "outcome",
	    "refused", "sender", "127.0.0.2", NULL), "wrong address accepted");
	/* Still streaming: the model's connection is open. */
	hsleep_ms(200);
	cr_assert_eq(hproc_count(mock, "mock_stream"), 0);
	cr_assert_eq(hproc_count(core, "cancel"), 0);
	/* The real sender's note (same address, right hop) does cancel. */
	cr_assert_eq(post_note(port, "127.0.0.1", right_hop, NULL), 202);
	hassert(hproc_wait_match(core, 0, "event", "cancel", "origin.kind",
	    "admin", "detected_via", "note", NULL), "the note did not cancel");
	hassert(hproc_wait_record(mock, "mock_stream", "outcome", "client_fin",
	    0), "the model was not told");
	hconn_close_fin(k);
	hassert(hproc_stop(core, 0) == 0, "core exited badly");
}

Test(cascade, unsigned_note_refused_when_secret_set, .timeout = 60)
{
	struct hproc	*mock, *core;
	int		 mport;
	const char	*note = "{\"request_id\":\"r1\",\"origin\":{\"kind\":"
	    "\"admin\",\"hop\":\"edge\"},\"cancel_path\":[\"edge\"],"
	    "\"from\":\"edge\"}";

	mock = hmock_start(&mport, NULL);
	cr_assert_not_null(mock);
	core = hop_start("core", mport, 0, NULL, "k3y-k3y-k3y");
	cr_assert_not_null(core);
	cr_assert_eq(post_note(hproxy_port(core, 0), "127.0.0.1", note, NULL),
	    401);
	cr_assert_eq(post_note(hproxy_port(core, 0), "127.0.0.1", note,
	    "another-key"), 401);
	cr_assert_eq(post_note(hproxy_port(core, 0), "127.0.0.1", note,
	    "k3y-k3y-k3y"), 202);
	hassert(hproc_wait_match(core, 0, "event", "note", "outcome", "unknown",
	    NULL), "an unknown request id is logged");
	hassert(hproc_stop(core, 0) == 0, "core exited badly");
}

/* A request that already passed this hop is a loop: 508. */
Test(cascade, loop_is_refused_with_508, .timeout = 60)
{
	struct hproc	*mock, *edge;
	struct hresp	*resp;
	int		 mport;
	const char	*hdr[] = { "Via: 1.1 core, 1.1 edge (cancelproxy)", NULL };

	mock = hmock_start(&mport, NULL);
	edge = hop_start("edge", mport, 0, NULL, NULL);
	cr_assert_not_null(edge);
	resp = hhttp_exchange("127.0.0.1", hproxy_port(edge, 0),
	    hreq_chat("mock-1", 0, hdr), 0);
	hassert(resp != NULL, "no response");
	cr_assert_eq(resp->status, 508);
	cr_assert_not_null(strstr(hresp_header(resp, "proxy-status"),
	    "proxy_loop_detected"));
	cr_assert_eq(hproc_count(mock, "mock_request"), 0);
	hassert(hproc_stop(edge, 0) == 0, "edge exited badly");
}
