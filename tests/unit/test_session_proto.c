/* Unit tests for the session through its protocol interfaces: a fake
 * client protocol and a fake upstream protocol stand where HTTP/1.1 would,
 * so every phase and every end is driven by calls, without a socket. Each
 * test checks the calls the session made on both sides, in order, and the
 * records it wrote. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "cancel_chain/cancel_grpc.h"
#include "downstream/downstream.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "upstream/upstream.h"
#include "tests/unit/unit_fake_up.h"
#include "tests/unit/unit_worker.h"

static size_t	 fake_queued;		/* bytes "queued" toward the client */
static int	 fake_can_extend = 1;

/* The client side. */
static void
fake_send_head(struct session *s, const struct downstream_head *h)
{
	size_t	 i;

	for (i = 0; i < h->nextra; i++)
		if (strcmp(h->extra[i].name, "grpc-status") == 0) {
			note("head %d%s grpc %s", h->status, h->trailers_only ?
			    " trailers-only" : "", h->extra[i].value);
			return;
		}
	note("head %d", h->status);
}

static size_t
fake_body_room(struct session *s)
{
	return 0;
}

static void
fake_send_body(struct session *s, struct evbuffer *buf)
{
	note("body %zu", evbuffer_get_length(buf));
	evbuffer_drain(buf, evbuffer_get_length(buf));
}

static void
fake_end(struct session *s, const struct header_list *trailers)
{
	const char	*st;

	if (trailers != NULL &&
	    (st = headers_get(trailers, "grpc-status", NULL)) != NULL)
		note("end grpc %s", st);
	else
		note("end");
}

static int
fake_extend(struct session *s)
{
	return fake_can_extend;
}

static void
fake_reset(struct session *s)
{
	note("reset");
}

static size_t
fake_queued_cb(struct session *s)
{
	return fake_queued;
}

static void
fake_detach(struct session *s)
{
	note("detach");
	s->client->session = NULL;
}

static const struct downstream_proto fake_down = {
	.name = "fake",
	.send_head = fake_send_head,
	.body_room = fake_body_room,
	.send_body = fake_send_body,
	.end = fake_end,
	.can_extend = fake_extend,
	.reset = fake_reset,
	.queued = fake_queued_cb,
	.detach = fake_detach,
};


static struct worker	 w;
static struct client	 cl;
static char		 logpath[] = "/tmp/cp-session-proto-XXXXXX";
static char		 confpath[] = "/tmp/cp-session-proto-conf-XXXXXX";

static const char conf_text[] =
    "{ \"hop\": \"unit\", \"workers\": 1,"
    "  \"listen\": [ { \"address\": \"127.0.0.1:0\" } ],"
    "  \"upstreams\": {"
    "    \"main\": { \"url\": \"http://127.0.0.1:9\" },"
    "    \"backup\": { \"url\": \"http://127.0.0.1:9\" },"
    "    \"quick\": { \"url\": \"http://127.0.0.1:9\", \"timeouts_ms\":"
    "      { \"connect\": 5, \"first_byte\": 5, \"idle\": 5 } } },"
    "  \"routes\": ["
    "    { \"path_prefix\": \"/t/\", \"upstream\": \"quick\" },"
    "    { \"path_prefix\": \"/g/\", \"upstream\": \"main\","
    "      \"grpc_timeout_max_ms\": 20 },"
    "    { \"path_prefix\": \"/drain/\", \"upstream\": \"main\","
    "      \"on_client_disconnect\": \"drain\" },"
    "    { \"path_prefix\": \"/v1/\", \"upstream\": \"main\","
    "      \"fallback\": [\"backup\"] } ] }";

static void
setup(void)
{

	unit_worker_init(&w, conf_text, confpath, logpath);
	w.upstream_proto = &fake_up;
	unit_start_names = 1;
	memset(&cl, 0, sizeof(cl));
	cl.w = &w;
	cl.proto = &fake_down;
	snprintf(cl.addr, sizeof(cl.addr), "127.0.0.1:4242");
	calls[0] = '\0';
	fake_queued = 0;
	fake_can_extend = 1;
}

static void
teardown(void)
{
	unit_worker_fini(&w, confpath, logpath);
}

TestSuite(session_proto, .init = setup, .fini = teardown);

static void
add_field(struct header_list *hl, const char *name, const char *value)
{
	cr_assert_eq(headers_add_name(hl, name, strlen(name)), 0);
	headers_name_done(hl);
	cr_assert_eq(headers_add_value(hl, value, strlen(value)), 0);
}

/* A gRPC call to target (a path of /v1/, so it is routed), with a
 * grpc-timeout when timeout is not NULL; routed and started. */
static struct session *
grpc_call(const char *target, const char *timeout)
{
	static const char msg[] = "\0\0\0\0\2hi";
	struct session	*s = session_new(&w, &cl);

	cr_assert_not_null(s);
	cl.session = s;
	s->method = HTTP_POST;
	memcpy(s->client_version, "2", 2);
	s->target = strdup(target);
	s->target_len = strlen(target);
	add_field(&s->req_headers, "content-type", "application/grpc+proto");
	add_field(&s->req_headers, "te", "trailers");
	if (timeout != NULL)
		add_field(&s->req_headers, "grpc-timeout", timeout);
	evbuffer_add(s->body, msg, sizeof(msg) - 1);
	s->request_done = 1;
	session_request_complete(s);
	return s;
}

/* A session for POST target with a JSON body; complete says whether the
 * whole request has arrived (then it is routed and started). */
static struct session *
request(const char *target, int complete)
{
	static const char body[] = "{\"model\":\"m\",\"stream\":true}";
	struct session	*s = session_new(&w, &cl);

	cr_assert_not_null(s);
	cl.session = s;
	s->method = HTTP_POST;
	memcpy(s->client_version, "1.1", 4);
	s->target = strdup(target);
	s->target_len = strlen(target);
	add_field(&s->req_headers, "Content-Type", "application/json");
	evbuffer_add(s->body, body, sizeof(body) - 1);
	if (complete) {
		s->request_done = 1;
		session_request_complete(s);
	}
	return s;
}

/* The upstream answers an SSE head; its fields go in as the protocol
 * would leave them. */
static void
sse_head(struct session *s)
{
	cr_assert_eq(headers_add_name(&s->resp_headers, "Content-Type", 12), 0);
	headers_name_done(&s->resp_headers);
	cr_assert_eq(headers_add_value(&s->resp_headers, "text/event-stream",
	    17), 0);
	cr_assert_eq(session_on_response_head(s, 200, -1), 0);
}

static void
sse_event(struct session *s, const char *ev)
{
	cr_assert_eq(session_on_body(s, ev, strlen(ev)), 0);
	session_flush_body(s);
}

/* The record of this event among what the log holds (the last one). */
static cJSON *
record(const char *event)
{
	FILE	*f = fopen(logpath, "r");
	char	 line[8192];
	cJSON	*found = NULL, *j, *e;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		cr_assert_not_null(j = cJSON_Parse(line), "not JSON: %s", line);
		e = cJSON_GetObjectItem(j, "event");
		if (cJSON_IsString(e) && strcmp(e->valuestring, event) == 0) {
			cJSON_Delete(found);
			found = j;
		} else
			cJSON_Delete(j);
	}
	fclose(f);
	return found;
}

static const char *
str(cJSON *j, const char *key)
{
	cJSON	*v = cJSON_GetObjectItem(j, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static double
num(cJSON *j, const char *key)
{
	cJSON	*v = cJSON_GetObjectItem(j, key);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* The cancel record says who, in which phase, and how it was noticed. */
static void
expect_cancel(const char *kind, const char *phase, const char *via,
    const char *direction)
{
	cJSON	*c = record("cancel");

	cr_assert_not_null(c, "no cancel record");
	cr_assert_str_eq(str(cJSON_GetObjectItem(c, "origin"), "kind"), kind);
	cr_assert_str_eq(str(c, "phase"), phase);
	cr_assert_str_eq(str(c, "detected_via"), via);
	cr_assert_str_eq(str(c, "direction"), direction);
	cJSON_Delete(c);
}

/* Runs the loop until the session's timer has fired. */
static void
run_timers(struct session *s, int ms)
{
	usleep((useconds_t)ms * 1000);
	event_base_loop(w.base, EVLOOP_NONBLOCK);
	event_base_loop(w.base, EVLOOP_NONBLOCK);
}

Test(session_proto, a_completed_stream)
{
	struct session	*s = request("/v1/chat", 1);
	cJSON		*r;

	session_upstream_connected(s);
	sse_head(s);
	sse_event(s, "data: a\n\n");
	sse_event(s, "data: b\n\n");
	session_on_response_complete(s);
	cr_assert_str_eq(calls, "start main;send;head 200;body 9;body 9;end;"
	    "release;detach;");
	cr_assert_null(record("cancel"));
	cr_assert_not_null(r = record("request"));
	cr_assert_str_eq(str(r, "outcome"), "completed");
	cr_assert_eq(num(r, "status"), 200);
	cr_assert_eq(num(r, "sse_events"), 2);
	cr_assert_eq(num(r, "bytes_out"), 18);
	cr_assert_str_eq(session_state_name(s->state), "done");
	cJSON_Delete(r);
}

Test(session_proto, client_leaves_while_the_request_arrives)
{
	struct session	*s = request("/v1/chat", 0);

	session_client_gone(s, CANCEL_VIA_EOF);
	cr_assert_str_eq(calls, "", "nothing was started upstream: %s",
	    calls);
	expect_cancel("client_disconnect", "request", "eof", "upstream");
}

Test(session_proto, client_leaves_while_connecting)
{
	struct session	*s = request("/v1/chat", 1);

	session_client_gone(s, CANCEL_VIA_RST);
	cr_assert_str_eq(calls, "start main;cancel;");
	expect_cancel("client_disconnect", "connecting", "rst", "upstream");
}

Test(session_proto, client_leaves_while_waiting_for_the_first_byte)
{
	struct session	*s = request("/v1/chat", 1);

	session_upstream_connected(s);
	session_client_gone(s, CANCEL_VIA_EOF);
	cr_assert_str_eq(calls, "start main;send;cancel;");
	expect_cancel("client_disconnect", "waiting_first_byte", "eof",
	    "upstream");
}

Test(session_proto, client_leaves_mid_stream)
{
	struct session	*s = request("/v1/chat", 1);
	cJSON		*r;

	session_upstream_connected(s);
	sse_head(s);
	sse_event(s, "data: a\n\n");
	session_client_gone(s, CANCEL_VIA_EOF);
	cr_assert_str_eq(calls, "start main;send;head 200;body 9;cancel;");
	expect_cancel("client_disconnect", "streaming", "eof", "upstream");
	cr_assert_not_null(r = record("request"));
	cr_assert_str_eq(str(r, "outcome"), "canceled");
	cJSON_Delete(r);
}

Test(session_proto, a_slow_client_pauses_its_upstream)
{
	struct session	*s = request("/v1/chat", 1);

	session_upstream_connected(s);
	sse_head(s);
	fake_queued = DOWNSTREAM_OUT_HIGH + 1;
	sse_event(s, "data: a\n\n");
	fake_queued = 0;
	session_client_drained(s);
	session_on_response_complete(s);
	cr_assert_str_eq(calls, "start main;send;head 200;body 9;pause;resume;"
	    "end;release;detach;");
}

Test(session_proto, connect_timeout_answers_504)
{
	struct session	*s = request("/t/x", 1);
	char		 want[128];
	cJSON		*r;

	run_timers(s, 20);
	cr_assert_not_null(r = record("request"));
	cr_assert_eq(num(r, "status"), 504);
	snprintf(want, sizeof(want), "start quick;cancel;head 504;body %.0f;"
	    "end;detach;", num(r, "bytes_out"));
	cr_assert_str_eq(calls, want);
	cJSON_Delete(r);
	expect_cancel("upstream_error", "connecting", "timer", "downstream");
}

Test(session_proto, first_byte_timeout_answers_504)
{
	struct session	*s = request("/t/x", 1);
	char		 want[128];
	cJSON		*r;

	session_upstream_connected(s);
	run_timers(s, 20);
	cr_assert_not_null(r = record("request"));
	cr_assert_eq(num(r, "status"), 504);
	snprintf(want, sizeof(want), "start quick;send;cancel;head 504;"
	    "body %.0f;end;detach;", num(r, "bytes_out"));
	cr_assert_str_eq(calls, want);
	cJSON_Delete(r);
	expect_cancel("first_byte_timeout", "waiting_first_byte", "timer",
	    "downstream");
}

Test(session_proto, idle_timeout_mid_stream_ends_with_an_sse_error)
{
	struct session	*s = request("/t/x", 1);

	session_upstream_connected(s);
	sse_head(s);
	sse_event(s, "data: a\n\n");
	run_timers(s, 20);
	cr_assert(strncmp(calls, "start quick;send;head 200;body 9;cancel;"
	    "body ", 40) == 0, "%s", calls);
	cr_assert(strstr(calls, ";end;detach;") != NULL, "%s", calls);
	expect_cancel("idle_timeout", "streaming", "timer", "downstream");
}

Test(session_proto, a_stream_that_cannot_carry_the_error_is_reset)
{
	struct session	*s = request("/v1/chat", 1);

	fake_can_extend = 0;
	session_upstream_connected(s);
	sse_head(s);
	sse_event(s, "data: a\n\n");
	session_upstream_closed(s, 1);
	cr_assert_str_eq(calls, "start main;send;head 200;body 9;cancel;reset;"
	    "detach;");
	expect_cancel("upstream_closed", "streaming", "rst", "downstream");
}

Test(session_proto, upstream_closes_mid_stream)
{
	struct session	*s = request("/v1/chat", 1);

	session_upstream_connected(s);
	sse_head(s);
	session_upstream_closed(s, 0);
	cr_assert(strncmp(calls, "start main;send;head 200;cancel;body ", 37)
	    == 0, "%s", calls);
	expect_cancel("upstream_closed", "waiting_first_byte", "eof",
	    "downstream");
}

Test(session_proto, an_upstream_error_falls_back_then_answers)
{
	struct session	*s = request("/v1/chat", 1);
	cJSON		*r, *tries;

	session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR, CANCEL_VIA_RST,
	    "connection refused");
	cr_assert_str_eq(calls, "start main;cancel;start backup;");
	session_upstream_failed(s, CANCEL_KIND_UPSTREAM_ERROR, CANCEL_VIA_RST,
	    "connection refused");
	cr_assert(strncmp(calls, "start main;cancel;start backup;cancel;"
	    "head 502;", 47) == 0, "%s", calls);
	cr_assert_not_null(r = record("request"));
	tries = cJSON_GetObjectItem(r, "tries");
	cr_assert(cJSON_IsArray(tries) && cJSON_GetArraySize(tries) == 1);
	cr_assert_str_eq(str(cJSON_GetArrayItem(tries, 0), "upstream"), "main");
	cr_assert_str_eq(str(r, "upstream"), "backup");
	cJSON_Delete(r);
	expect_cancel("upstream_error", "connecting", "rst", "downstream");
}

Test(session_proto, drain_reads_on_after_the_client_left)
{
	struct session	*s = request("/drain/x", 1);
	cJSON		*r, *d;

	session_upstream_connected(s);
	sse_head(s);
	sse_event(s, "data: a\n\n");
	session_client_gone(s, CANCEL_VIA_EOF);
	cr_assert_str_eq(session_state_name(s->state), "draining");
	cr_assert_str_eq(calls, "start main;send;head 200;body 9;",
	    "the upstream is not closed while draining: %s", calls);
	sse_event(s, "data: {\"usage\":{\"prompt_tokens\":1,"
	    "\"completion_tokens\":2,\"total_tokens\":3}}\n\n");
	session_on_response_complete(s);
	cr_assert_str_eq(calls, "start main;send;head 200;body 9;cancel;");
	cr_assert_not_null(r = record("request"));
	d = cJSON_GetObjectItem(r, "drain");
	cr_assert_str_eq(str(d, "ended_by"), "complete");
	cJSON_Delete(r);
	expect_cancel("client_disconnect", "streaming", "eof", "upstream");
}

Test(session_proto, cancel_from_outside_closes_the_upstream_first)
{
	struct session	*s = request("/v1/chat", 1);

	session_upstream_connected(s);
	sse_head(s);
	session_cancel(s, CANCEL_KIND_ADMIN, CANCEL_VIA_ADMIN);
	cr_assert(strncmp(calls, "start main;send;head 200;cancel;body ", 37)
	    == 0, "%s", calls);
	expect_cancel("admin", "waiting_first_byte", "admin", "upstream");
}

Test(session_proto, a_request_no_route_takes_is_refused_without_upstream)
{
	struct session	*s = request("/nowhere", 1);
	cJSON		*r;

	(void)s;
	cr_assert(strncmp(calls, "head 404;body ", 14) == 0, "%s", calls);
	cr_assert(strstr(calls, ";end;detach;") != NULL);
	cr_assert_not_null(r = record("request"));
	cr_assert_str_eq(str(r, "outcome"), "error");
	cJSON_Delete(r);
}

/* ---- gRPC: errors this hop makes are gRPC statuses ---- */

Test(session_proto, grpc_call_passes_with_its_method_in_the_record)
{
	struct session	*s = grpc_call("/v1/pkg.Svc/Generate", NULL);
	cJSON		*r;

	session_upstream_connected(s);
	cr_assert_eq(headers_add_name(&s->resp_headers, "content-type", 12), 0);
	headers_name_done(&s->resp_headers);
	cr_assert_eq(headers_add_value(&s->resp_headers, "application/grpc",
	    16), 0);
	cr_assert_eq(session_on_response_head(s, 200, -1), 0);
	cr_assert_eq(session_on_body(s, "\0\0\0\0\1x", 6), 0);
	session_flush_body(s);
	session_on_response_complete(s);
	cr_assert_str_eq(calls, "start main;send;head 200;body 6;end;release;"
	    "detach;");
	cr_assert_not_null(r = record("request"));
	cr_assert_str_eq(str(r, "grpc_method"), "/v1/pkg.Svc/Generate");
	cr_assert_null(cJSON_GetObjectItem(r, "grpc_status"),
	    "no status was sent: the upstream gave no trailers");
	cJSON_Delete(r);
}

Test(session_proto, grpc_malformed_timeout_is_invalid_argument)
{
	static const char *const bad[] = { "1s", "123456789S", "S", "1.5m" };
	size_t		 i;
	cJSON		*r;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		calls[0] = '\0';
		grpc_call("/v1/pkg.Svc/Generate", bad[i]);
		cr_assert_str_eq(calls, "head 200 trailers-only grpc 3;detach;",
		    "%s: %s", bad[i], calls);
	}
	cr_assert_not_null(r = record("request"));
	cr_assert_str_eq(str(r, "outcome"), "error");
	cr_assert_eq(num(r, "grpc_status"), 3);
	cJSON_Delete(r);
}

Test(session_proto, grpc_deadline_is_this_hops_and_goes_on_shorter)
{
	struct session	*s = grpc_call("/v1/pkg.Svc/Generate", "30m");
	char		 out[GRPC_TIMEOUT_MAX];
	uint64_t	 left;
	cJSON		*c;

	session_upstream_connected(s);
	cr_assert_gt(session_grpc_timeout_out(s, out), 0);
	cr_assert_eq(grpc_timeout_parse(out, strlen(out), &left), 0);
	cr_assert(left <= 30000, "sent on %s, more than the client gave", out);
	run_timers(s, 50);
	cr_assert_str_eq(calls, "start main;send;cancel;"
	    "head 200 trailers-only grpc 4;detach;");
	cr_assert_not_null(c = record("cancel"));
	cr_assert_str_eq(str(cJSON_GetObjectItem(c, "origin"), "kind"),
	    "total_timeout");
	cr_assert_str_eq(str(c, "grpc_method"), "/v1/pkg.Svc/Generate");
	cJSON_Delete(c);
}

Test(session_proto, grpc_upstream_dying_mid_call_is_unavailable_in_trailers)
{
	struct session	*s = grpc_call("/v1/pkg.Svc/Generate", NULL);

	session_upstream_connected(s);
	cr_assert_eq(session_on_response_head(s, 200, -1), 0);
	cr_assert_eq(session_on_body(s, "\0\0\0\0\1x", 6), 0);
	session_flush_body(s);
	session_upstream_closed(s, 1);
	cr_assert_str_eq(calls, "start main;send;head 200;body 6;cancel;"
	    "end grpc 14;detach;");
}

Test(session_proto, grpc_cancel_by_admin_is_cancelled)
{
	struct session	*s = grpc_call("/v1/pkg.Svc/Generate", NULL);

	session_upstream_connected(s);
	session_cancel(s, CANCEL_KIND_ADMIN, CANCEL_VIA_ADMIN);
	cr_assert_str_eq(calls, "start main;send;cancel;"
	    "head 200 trailers-only grpc 1;detach;");
}

Test(session_proto, grpc_no_route_is_unimplemented)
{
	grpc_call("/other/pkg.Svc/Generate", NULL);
	cr_assert_str_eq(calls, "head 200 trailers-only grpc 12;detach;");
}

Test(session_proto, grpc_message_gets_this_hop_added_to_its_path)
{
	char	 out[256], text[256];
	const char *in = "[canceled path: core] first byte timeout at core "
	    "after 500 ms";
	char	 enc[256];
	size_t	 n;

	n = grpc_message_encode(in, strlen(in), enc, sizeof(enc));
	n = session_grpc_extend_message(enc, n, out, sizeof(out));
	cr_assert_gt(n, 0);
	grpc_message_decode(out, n, text, sizeof(text));
	cr_assert_str_eq(text, "[canceled path: core -> unit] first byte "
	    "timeout at core after 500 ms");
	cr_assert_eq(session_grpc_extend_message("plain", 5, out,
	    sizeof(out)), 0, "a message without a path passes as it is");
}

Test(session_proto, grpc_trailers_pass_and_a_peers_path_gets_this_hop)
{
	struct session	*s = grpc_call("/v1/pkg.Svc/Generate", NULL);
	cJSON		*r;

	session_upstream_connected(s);
	cr_assert_eq(session_on_response_head(s, 200, -1), 0);
	cr_assert_eq(session_on_body(s, "\0\0\0\0\1x", 6), 0);
	session_flush_body(s);
	add_field(&s->resp_trailers, "grpc-status", "4");
	add_field(&s->resp_trailers, "grpc-message", "[canceled path: core] "
	    "first byte timeout at core after 500 ms");
	add_field(&s->resp_trailers, "x-custom", "kept");
	session_on_response_complete(s);
	cr_assert_str_eq(calls, "start main;send;head 200;body 6;end grpc 4;"
	    "release;detach;");
	{
		size_t		 len;
		const char	*v = headers_get(&s->resp_trailers,
		    "grpc-message", &len);
		char		 text[256];

		cr_assert_not_null(v);
		grpc_message_decode(v, len, text, sizeof(text));
		cr_assert_str_eq(text, "[canceled path: core -> unit] first "
		    "byte timeout at core after 500 ms");
		cr_assert_str_eq(headers_get(&s->resp_trailers, "x-custom",
		    NULL), "kept");
	}
	cr_assert_not_null(r = record("request"));
	cr_assert_eq(num(r, "grpc_status"), 4, "the status the client got");
	cJSON_Delete(r);
}

Test(session_proto, grpc_upstream_reset_maps_its_code)
{
	struct session	*s = grpc_call("/v1/pkg.Svc/Generate", NULL);

	session_upstream_connected(s);
	s->up_reset_code = 0xb + 1;		/* ENHANCE_YOUR_CALM */
	session_upstream_closed(s, 1);
	cr_assert(strstr(calls, "head 200 trailers-only grpc 8;") != NULL,
	    "%s", calls);
}

Test(session_proto, grpc_route_caps_the_deadline)
{
	struct session	*s = grpc_call("/g/pkg.Svc/Generate", "10S");
	char		 out[GRPC_TIMEOUT_MAX];
	uint64_t	 left;

	session_upstream_connected(s);
	cr_assert_gt(session_grpc_timeout_out(s, out), 0);
	cr_assert_eq(grpc_timeout_parse(out, strlen(out), &left), 0);
	cr_assert(left <= 20000, "10 s asked, the route caps it at 20 ms: %s",
	    out);
	run_timers(s, 50);
	cr_assert_str_eq(calls, "start main;send;cancel;"
	    "head 200 trailers-only grpc 4;detach;");
}

Test(session_proto, grpc_route_cap_gives_a_call_without_timeout_one)
{
	struct session	*s = grpc_call("/g/pkg.Svc/Generate", NULL);
	char		 out[GRPC_TIMEOUT_MAX];

	session_upstream_connected(s);
	cr_assert_gt(session_grpc_timeout_out(s, out), 0,
	    "the cap is sent upstream as the call's deadline");
	run_timers(s, 50);
	cr_assert(strstr(calls, "grpc 4;") != NULL, "%s", calls);
}
