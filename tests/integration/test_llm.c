/* LLM traffic: usage in records, injected usage hidden from clients that
 * did not ask, drain-or-cancel, fallback upstreams, client keys, billing
 * notes — through the proxy against cancelproxy-mock. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "harness.h"

static struct hproc *
proxy_with(const char *route_extra, const char *upstreams, const char *more)
{
	return hproxy_startf("{\"hop\":\"edge\",\"workers\":2,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{%s},"
	    "\"routes\":[{\"path_prefix\":\"/v1/\",\"upstream\":\"mock\"%s}]%s}",
	    upstreams, route_extra, more);
}

static const char *
mock_upstream(int port)
{
	return hstrf("\"mock\":{\"url\":\"http://127.0.0.1:%d\"}", port);
}

static const char *
chat_body(int stream, int include_usage)
{
	return hstrf("{\"model\":\"mock-1\",\"stream\":%s,%s\"messages\":"
	    "[{\"role\":\"user\",\"content\":\"count to three please\"}]}",
	    stream ? "true" : "false", include_usage ?
	    "\"stream_options\":{\"include_usage\":true}," : "");
}

Test(llm, usage_in_records_stream_and_answer, .timeout = 60)
{
	struct hproc	*mock __attribute__((unused)), *proxy;
	struct hresp	*r;
	int		 mport;
	const char	*h[] = { "X-Mock-Tokens: 6", NULL };
	cJSON		*rec;

	mock = hmock_start(&mport, "--first-token-ms", "0", "--interval-ms",
	    "1", NULL);
	proxy = proxy_with("", mock_upstream(mport), "");
	cr_assert_not_null(proxy);
	r = hhttp_exchange("127.0.0.1", hproxy_port(proxy, 0), hreq_build(
	    "POST", "/v1/chat/completions", h, chat_body(1, 1)), 0);
	hassert(r != NULL && r->status == 200, "stream failed");
	rec = hproc_wait_record(proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL, "no request record");
	cr_assert_str_eq(hjson_str(rec, "usage_source"), "reported");
	cr_assert_eq(hjson_num(rec, "usage.completion_tokens", -1), 6);
	cr_assert_gt(hjson_num(rec, "usage.prompt_tokens", -1), 0);
	cr_assert_eq(hjson_num(rec, "usage.total_tokens", -1),
	    hjson_num(rec, "usage.prompt_tokens", -1) + 6);
	/* Without include_usage nothing is reported. */
	r = hhttp_exchange("127.0.0.1", hproxy_port(proxy, 0), hreq_build(
	    "POST", "/v1/chat/completions", h, chat_body(1, 0)), 0);
	rec = hproc_wait_record(proxy, "request", NULL, NULL, 0);
	cr_assert_str_eq(hjson_str(rec, "usage_source"), "missing");
	cr_assert(cJSON_IsNull(hjson_get(rec, "usage")));
	/* A JSON answer's usage. */
	r = hhttp_exchange("127.0.0.1", hproxy_port(proxy, 0), hreq_build(
	    "POST", "/v1/chat/completions", h, chat_body(0, 0)), 0);
	hassert(r != NULL && r->status == 200, "answer failed");
	rec = hproc_wait_record(proxy, "request", NULL, NULL, 0);
	cr_assert_str_eq(hjson_str(rec, "usage_source"), "reported");
	cr_assert_eq(hjson_num(rec, "usage.completion_tokens", -1), 6);
	hassert(hproc_stop(proxy, 0) == 0, "proxy exited badly");
}

Test(llm, inject_hides_the_usage_chunk_from_clients_that_did_not_ask,
    .timeout = 60)
{
	struct hproc	*mock __attribute__((unused)), *proxy;
	struct hresp	*r;
	int		 mport;
	const char	*h[] = { "X-Mock-Tokens: 4", NULL };
	cJSON		*rec;

	mock = hmock_start(&mport, "--first-token-ms", "0", "--interval-ms",
	    "1", NULL);
	proxy = proxy_with(",\"stream_usage\":\"inject\"", mock_upstream(mport),
	    "");
	cr_assert_not_null(proxy);
	r = hhttp_exchange("127.0.0.1", hproxy_port(proxy, 0), hreq_build(
	    "POST", "/v1/chat/completions", h, chat_body(1, 0)), 0);
	hassert(r != NULL && r->status == 200 && r->complete, "stream failed");
	cr_assert_null(strstr(r->body, "\"usage\""), "the client saw the "
	    "injected usage chunk:\n%s", r->body);
	cr_assert_not_null(strstr(r->body, "data: [DONE]"));
	cr_assert_not_null(strstr(r->body, "\"finish_reason\":\"stop\""));
	rec = hproc_wait_record(proxy, "request", NULL, NULL, 0);
	cr_assert_str_eq(hjson_str(rec, "usage_source"), "reported");
	cr_assert_eq(hjson_num(rec, "usage.completion_tokens", -1), 4);
	/* A client that asked keeps its usage chunk. */
	r = hhttp_exchange("127.0.0.1", hproxy_port(proxy, 0), hreq_build(
	    "POST", "/v1/chat/completions", h, chat_body(1, 1)), 0);
	hassert(r != NULL && r->status == 200, "stream failed");
	cr_assert_not_null(strstr(r->body, "\"usage\""));
	/* The upstream got the option, with a fixed Content-Length. */
	hassert(hproc_wait_record(mock, "mock_request", NULL, NULL, 0),
	    "no request at the mock");
	hassert(hproc_stop(proxy, 0) == 0, "proxy exited badly");
}

/* Drain: the client leaves, the proxy reads on until the model finished
 * and records what the stream used. */
Test(llm, drain_reads_on_to_learn_usage, .timeout = 60)
{
	struct hproc	*mock __attribute__((unused)), *proxy;
	struct hconn	*c;
	struct hresp	*r;
	int		 mport;
	const char	*h[] = { "X-Mock-Tokens: 30", NULL };
	cJSON		*rec, *m;

	mock = hmock_start(&mport, "--first-token-ms", "0", "--interval-ms",
	    "10", NULL);
	proxy = proxy_with(",\"on_client_disconnect\":\"drain\","
	    "\"stream_usage\":\"inject\"", mock_upstream(mport), "");
	cr_assert_not_null(proxy);
	c = hconn_connect("127.0.0.1", hproxy_port(proxy, 0));
	cr_assert_eq(hconn_send_str(c, hreq_build("POST",
	    "/v1/chat/completions", h, chat_body(1, 0))), 0);
	r = hconn_read_head(c, 0);
	hassert(r != NULL, "no head");
	hassert(hconn_read_event(c, r, 0) != NULL, "no event");
	hconn_close_fin(c);
	rec = hproc_wait_record(proxy, "cancel", NULL, NULL, 0);
	hassert(rec != NULL, "no cancel record");
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "client_disconnect");
	cr_assert_str_eq(hjson_str(rec, "on_client_disconnect"), "drain");
	cr_assert_str_eq(hjson_str(rec, "drain.ended_by"), "complete");
	cr_assert(cJSON_IsTrue(hjson_get(rec, "drain.usage_learned")));
	cr_assert_eq(hjson_num(rec, "usage.completion_tokens", -1), 30);
	m = hproc_wait_record(mock, "mock_stream", NULL, NULL, 0);
	hassert(m != NULL, "no mock record");
	cr_assert_str_eq(hjson_str(m, "outcome"), "completed");
	rec = hproc_wait_record(proxy, "request", NULL, NULL, 0);
	cr_assert_str_eq(hjson_str(rec, "outcome"), "canceled");
	cr_assert_eq(hjson_num(rec, "usage.completion_tokens", -1), 30);
	hassert(hproc_stop(proxy, 0) == 0, "proxy exited badly");
}

Test(llm, drain_is_bounded_in_time_and_bytes, .timeout = 60)
{
	struct hproc	*mock __attribute__((unused)), *proxy;
	struct hconn	*c;
	struct hresp	*r;
	int		 mport, i;
	const char	*h[] = { "X-Mock-Tokens: 100000", NULL };
	const char	*bounds[] = { "\"drain\":{\"max_ms\":300}",
	    "\"drain\":{\"max_bytes\":2000}" };
	const char	*ended[] = { "max_ms", "max_bytes" };
	cJSON		*rec;

	for (i = 0; i < 2; i++) {
		mock = hmock_start(&mport, "--first-token-ms", "0",
		    "--interval-ms", "5", NULL);
		proxy = proxy_with(hstrf(",\"on_client_disconnect\":\"drain\","
		    "%s", bounds[i]), mock_upstream(mport), "");
		cr_assert_not_null(proxy);
		c = hconn_connect("127.0.0.1", hproxy_port(proxy, 0));
		cr_assert_eq(hconn_send_str(c, hreq_build("POST",
		    "/v1/chat/completions", h, chat_body(1, 1))), 0);
		r = hconn_read_head(c, 0);
		hassert(r != NULL, "no head");
		hconn_close_rst(c);
		rec = hproc_wait_record(proxy, "cancel", NULL, NULL, 0);
		hassert(rec != NULL, "no cancel record");
		cr_assert_str_eq(hjson_str(rec, "drain.ended_by"), ended[i]);
		cr_assert(cJSON_IsFalse(hjson_get(rec, "drain.usage_learned")));
		cr_assert_str_eq(hjson_str(rec, "usage_source"), "missing");
		hassert(hmock_wait_closed(mock, NULL),
		    "the model was not closed after the drain");
		hassert(hproc_stop(proxy, 0) == 0, "proxy exited badly");
		hproc_stop(mock, 0);
	}
}

Test(llm, cancel_policy_closes_at_once_and_notes_billing, .timeout = 60)
{
	struct hproc	*mock __attribute__((unused)), *proxy;
	struct hconn	*c;
	struct hresp	*r;
	int		 mport;
	cJSON		*rec;

	mock = hmock_start(&mport, "--first-token-ms", "0", "--interval-ms",
	    "5", "--tokens", "100000", NULL);
	proxy = proxy_with("", mock_upstream(mport), "");
	cr_assert_not_null(proxy);
	c = hconn_connect("127.0.0.1", hproxy_port(proxy, 0));
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)), 0);
	r = hconn_read_head(c, 0);
	hassert(r != NULL, "no head");
	hconn_close_fin(c);
	rec = hproc_wait_record(proxy, "cancel", NULL, NULL, 0);
	hassert(rec != NULL, "no cancel record");
	cr_assert_str_eq(hjson_str(rec, "on_client_disconnect"), "cancel");
	cr_assert_null(hjson_get(rec, "drain"));
	cr_assert_str_eq(hjson_str(rec, "billing_stops_on_cancel"), "unknown");
	cr_assert_not_null(hjson_str(rec, "billing_note"));
	hassert(hproc_stop(proxy, 0) == 0, "proxy exited badly");
	/* An upstream known to stop billing gets no note. */
	proxy = proxy_with("", hstrf("\"mock\":{\"url\":\"http://127.0.0.1:%d\","
	    "\"billing_stops_on_cancel\":true}", mport), "");
	c = hconn_connect("127.0.0.1", hproxy_port(proxy, 0));
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)), 0);
	r = hconn_read_head(c, 0);
	hconn_close_fin(c);
	rec = hproc_wait_record(proxy, "cancel", NULL, NULL, 0);
	hassert(rec != NULL, "no cancel record");
	cr_assert_null(hjson_get(rec, "billing_note"));
	hassert(hproc_stop(proxy, 0) == 0, "proxy exited badly");
}

Test(llm, fallback_on_connect_failure_and_on_503, .timeout = 60)
{
	struct hproc	*mock __attribute__((unused)), *proxy;
	struct hresp	*r;
	int		 mport, dead, lfd, bport, bfd;
	char		 buf[4096];
	cJSON		*rec;

	mock = hmock_start(&mport, "--first-token-ms", "0", "--tokens", "2",
	    NULL);
	lfd = hnet_listen("127.0.0.1", &dead);
	close(lfd);
	lfd = hnet_listen("127.0.0.1", &bport);
	proxy = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"dead\":{\"url\":\"http://127.0.0.1:%d\"},"
	    "\"busy\":{\"url\":\"http://127.0.0.1:%d\"},"
	    "\"mock\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/v1/\",\"upstream\":\"dead\","
	    "\"fallback\":[\"busy\",\"mock\"]}]}", dead, bport, mport);
	cr_assert_not_null(proxy);
	{
		struct hconn *c = hconn_connect("127.0.0.1",
		    hproxy_port(proxy, 0));

		cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, NULL)),
		    0);
		bfd = hnet_accept(lfd, 0);
		hassert(bfd >= 0, "the first fallback was not tried");
		cr_assert_gt(hnet_recv_until(bfd, buf, sizeof(buf), "\"stream\"",
		    0), 0);
		cr_assert_eq(hnet_send_str(bfd, "HTTP/1.1 503 Busy\r\n"
		    "Content-Length: 0\r\n\r\n"), 0);
		r = hconn_read_response(c, 0);
		hassert(r != NULL && r->status == 200, "no answer from mock");
		cr_assert_not_null(strstr(r->body, "[DONE]"));
	}
	rec = hproc_wait_record(proxy, "request", NULL, NULL, 0);
	hassert(rec != NULL, "no request record");
	cr_assert_str_eq(hjson_str(rec, "upstream"), "mock");
	cr_assert_str_eq(hjson_str(rec, "tries.0.upstream"), "dead");
	cr_assert_str_eq(hjson_str(rec, "tries.1.upstream"), "busy");
	cr_assert_str_eq(hjson_str(rec, "tries.1.outcome"), "status 503");
	cr_assert_eq(hproc_count(proxy, "cancel"), 0);
	close(bfd);
	close(lfd);
	hassert(hproc_stop(proxy, 0) == 0, "proxy exited badly");
}

/* After bytes reached the client there is no fallback. */
Test(llm, no_fallback_once_the_client_has_bytes, .timeout = 60)
{
	struct hproc	*mock __attribute__((unused)), *proxy;
	struct hconn	*c;
	int		 mport, m2;
	const char	*h[] = { "X-Mock-Fault: close_after:2", NULL };
	const char	*ev, *last = NULL;
	struct hresp	*r;

	mock = hmock_start(&mport, "--first-token-ms", "0", NULL);
	cr_assert_not_null(hmock_start(&m2, NULL));
	proxy = hproxy_startf("{\"hop\":\"edge\",\"workers\":1,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"a\":{\"url\":\"http://127.0.0.1:%d\"},"
	    "\"b\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"upstream\":\"a\",\"fallback\":[\"b\"]}]}",
	    mport, m2);
	c = hconn_connect("127.0.0.1", hproxy_port(proxy, 0));
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, h)), 0);
	r = hconn_read_head(c, 0);
	hassert(r != NULL, "no head");
	while ((ev = hconn_read_event(c, r, 0)) != NULL)
		last = ev;
	cr_assert_str_eq(hsse_type(last), "error");
	hassert(hproc_wait_record(proxy, "cancel", "origin.kind",
	    "upstream_closed", 0), "no cancel record");
	cr_assert_null(hproc_find_record(proxy, "request", "tries.0.upstream",
	    "a"));
	hassert(hproc_stop(proxy, 0) == 0, "proxy exited badly");
}

static const char *
sha_hex(const char *s)
{
	unsigned char	 h[32];
	char		*out = hkeep(malloc(65));
	int		 i;

	SHA256((const unsigned char *)s, strlen(s), h);
	for (i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", h[i]);
	return out;
}

Test(llm, client_keys, .timeout = 60)
{
	struct hproc	*mock __attribute__((unused)), *proxy;
	struct hresp	*r;
	struct hconn	*c1;
	int		 mport, port;
	const char	*none[] = { NULL };
	const char	*bad[] = { "Authorization: Bearer sk-nope", NULL };
	const char	*a[] = { "Authorization: Bearer sk-team-a", NULL };
	const char	*b[] = { "x-api-key: sk-team-b", NULL };
	const char	*slow[] = { "Authorization: Bearer sk-team-a",
	    "X-Mock-First-Token-Ms: 60000", "X-Request-Id: slow-1", NULL };
	cJSON		*rec, *echo;

	mock = hmock_start(&mport, "--first-token-ms", "0", "--tokens", "2",
	    NULL);
	proxy = hproxy_startf("{\"hop\":\"edge\",\"workers\":2,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\","
	    "\"set_headers\":{\"Authorization\":\"Bearer sk-provider-secret\"}},"
	    "\"other\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/v1/\",\"upstream\":\"mock\"},"
	    "{\"path_prefix\":\"/debug/\",\"upstream\":\"mock\"},"
	    "{\"path_prefix\":\"/other/\",\"upstream\":\"other\"}],"
	    "\"clients\":{\"keys\":["
	    "{\"name\":\"team-a\",\"key_sha256\":\"%s\",\"max_streams\":1},"
	    "{\"name\":\"team-b\",\"key_sha256\":\"%s\",\"routes\":[\"mock\"]}]}}",
	    mport, mport, sha_hex("sk-team-a"), sha_hex("sk-team-b"));
	cr_assert_not_null(proxy);
	port = hproxy_port(proxy, 0);
	r = hhttp_exchange("127.0.0.1", port, hreq_chat("mock-1", 0, none), 0);
	hassert(r != NULL, "no answer");
	cr_assert_eq(r->status, 401);
	cr_assert_str_eq(hjson_str(hresp_json(r), "error.code"),
	    "invalid_api_key");
	r = hhttp_exchange("127.0.0.1", port, hreq_chat("mock-1", 0, bad), 0);
	cr_assert_eq(r->status, 401);
	r = hhttp_exchange("127.0.0.1", port, hreq_chat("mock-1", 0, a), 0);
	cr_assert_eq(r->status, 200);
	rec = hproc_wait_record(proxy, "request", "status", "200", 0);
	cr_assert_str_eq(hjson_str(rec, "client_key"), "team-a");
	/* team-b may not use the "other" upstream. */
	r = hhttp_exchange("127.0.0.1", port, hreq_build("POST",
	    "/other/chat/completions", b, chat_body(0, 0)), 0);
	cr_assert_eq(r->status, 403);
	/* The client's key never reaches the upstream; the provider's does. */
	r = hhttp_exchange("127.0.0.1", port, hreq_build("GET", "/debug/echo", b,
	    NULL), 0);
	hassert(r != NULL && r->status == 200, "echo failed");
	echo = hresp_json(r);
	cr_assert_null(strstr(r->body, "sk-team-b"), "%s", r->body);
	cr_assert_not_null(strstr(r->body, "sk-provider-secret"));
	(void)echo;
	/* max_streams 1: a second concurrent stream of team-a gets 429. */
	c1 = hconn_connect("127.0.0.1", port);
	cr_assert_eq(hconn_send_str(c1, hreq_chat("mock-1", 1, slow)), 0);
	hassert(hproc_wait_record(mock, "mock_request", "request_id", "slow-1",
	    0), "no request");
	r = hhttp_exchange("127.0.0.1", port, hreq_chat("mock-1", 1, a), 0);
	cr_assert_eq(r->status, 429);
	cr_assert_str_eq(hresp_header(r, "retry-after"), "1");
	hconn_close_fin(c1);
	hassert(hproc_wait_record(proxy, "cancel", "client_key", "team-a", 0),
	    "no cancel record with the key name");
	hsleep_ms(50);
	r = hhttp_exchange("127.0.0.1", port, hreq_chat("mock-1", 0, a), 0);
	cr_assert_eq(r->status, 200, "the slot was not given back");
	hassert(hproc_stop(proxy, 0) == 0, "proxy exited badly");
}

/* Each provider format's usage reaches the records, also when cut. */
Test(llm, usage_for_anthropic_and_responses_formats, .timeout = 60)
{
	struct hproc	*mock __attribute__((unused)), *proxy;
	struct hresp	*r;
	struct hconn	*c;
	int		 mport;
	const char	*h[] = { "X-Mock-Tokens: 5", NULL };
	const char	*many[] = { "X-Mock-Tokens: 1000", NULL };
	const char	*msg = "{\"model\":\"claude-x\",\"max_tokens\":100,"
	    "\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
	    "\"one two three\"}]}";
	const char	*resp = "{\"model\":\"gpt-x\",\"stream\":true,"
	    "\"input\":\"one two three four\"}";
	cJSON		*rec, *m;

	mock = hmock_start(&mport, "--first-token-ms", "0", "--interval-ms",
	    "2", NULL);
	proxy = proxy_with("", mock_upstream(mport), "");
	cr_assert_not_null(proxy);
	r = hhttp_exchange("127.0.0.1", hproxy_port(proxy, 0), hreq_build(
	    "POST", "/v1/messages", h, msg), 0);
	hassert(r != NULL && r->status == 200, "messages failed");
	rec = hproc_wait_record(proxy, "request", NULL, NULL, 0);
	cr_assert_str_eq(hjson_str(rec, "usage_source"), "reported");
	cr_assert_eq(hjson_num(rec, "usage.prompt_tokens", -1), 3);
	cr_assert_eq(hjson_num(rec, "usage.completion_tokens", -1), 5);
	r = hhttp_exchange("127.0.0.1", hproxy_port(proxy, 0), hreq_build(
	    "POST", "/v1/responses", h, resp), 0);
	hassert(r != NULL && r->status == 200, "responses failed");
	rec = hproc_wait_record(proxy, "request", NULL, NULL, 0);
	cr_assert_eq(hjson_num(rec, "usage.prompt_tokens", -1), 4);
	cr_assert_eq(hjson_num(rec, "usage.completion_tokens", -1), 5);
	cr_assert_eq(hjson_num(rec, "usage.total_tokens", -1), 9);
	/* Cut mid-stream: Anthropic reported its input at message_start. */
	c = hconn_connect("127.0.0.1", hproxy_port(proxy, 0));
	cr_assert_eq(hconn_send_str(c, hreq_build("POST", "/v1/messages", many,
	    msg)), 0);
	r = hconn_read_head(c, 0);
	hassert(r != NULL, "no head");
	hassert(hconn_read_event(c, r, 0) && hconn_read_event(c, r, 0),
	    "no events");
	hconn_close_fin(c);
	rec = hproc_wait_record(proxy, "cancel", NULL, NULL, 0);
	hassert(rec != NULL, "no cancel record");
	cr_assert_eq(hjson_num(rec, "usage.prompt_tokens", -1), 3);
	cr_assert_gt(hjson_num(rec, "sse_events", -1), 1);
	m = hmock_wait_closed(mock, NULL);
	hassert(m != NULL, "the model was not closed");
	hassert(hproc_stop(proxy, 0) == 0, "proxy exited badly");
}
