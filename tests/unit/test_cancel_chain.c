/* Unit tests for cancel_chain: names, paths, messages, records, errors. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "cancel_chain/cancel_chain.h"

static void
record(struct cancel_record *r, enum cancel_kind k, enum cancel_phase p)
{
	memset(r, 0, sizeof(*r));
	r->request_id = "req-1";
	r->trace_id = "0af7651916cd43dd8448eb211c80319c";
	r->kind = k;
	r->phase = p;
	r->via = CANCEL_VIA_EOF;
	r->direction = CANCEL_DIR_UPSTREAM;
	r->elapsed_ms = 312;
	r->detect_to_close_us = 41;
	r->sse_events = 7;
	r->bytes_out = 1234;
	cancel_path_init(&r->path);
}

Test(cancel_chain, names_cover_every_value)
{
	cr_assert_str_eq(cancel_phase_name(PHASE_REQUEST), "request");
	cr_assert_str_eq(cancel_phase_name(PHASE_CONNECTING), "connecting");
	cr_assert_str_eq(cancel_phase_name(PHASE_WAITING_FIRST_BYTE),
	    "waiting_first_byte");
	cr_assert_str_eq(cancel_phase_name(PHASE_STREAMING), "streaming");
	cr_assert_str_eq(cancel_kind_name(CANCEL_KIND_CLIENT_DISCONNECT),
	    "client_disconnect");
	cr_assert_str_eq(cancel_kind_name(CANCEL_KIND_SHUTDOWN), "shutdown");
	cr_assert_str_eq(cancel_via_name(CANCEL_VIA_SSE_ERROR), "sse_error");
	cr_assert_str_eq(cancel_via_name(CANCEL_VIA_WRITE_ERROR),
	    "write_error");
	cr_assert_str_eq(cancel_via_name(CANCEL_VIA_RST_STREAM), "rst_stream");
	cr_assert_str_eq(cancel_via_name(CANCEL_VIA_GOAWAY), "goaway");
	cr_assert_str_eq(cancel_via_name(CANCEL_VIA_GOAWAY + 1), "unknown");
	cr_assert_str_eq(cancel_direction_name(CANCEL_DIR_DOWNSTREAM),
	    "downstream");
	cr_assert_str_eq(cancel_kind_name((enum cancel_kind)99), "unknown");
}

Test(cancel_chain, kind_parse_round_trip)
{
	enum cancel_kind k;
	int i;

	for (i = 0; i <= CANCEL_KIND_UNKNOWN; i++) {
		cr_assert_eq(cancel_kind_parse(cancel_kind_name(i), &k), 0);
		cr_assert_eq((int)k, i);
	}
	cr_assert_eq(cancel_kind_parse("nope", &k), -1);
}

Test(cancel_chain, path_format_and_limit)
{
	struct cancel_path p;
	char buf[256];
	int i;

	cancel_path_init(&p);
	cancel_path_add(&p, "client");
	cancel_path_add(&p, "edge");
	cancel_path_add(&p, "core");
	cancel_path_format(&p, buf, sizeof(buf));
	cr_assert_str_eq(buf, "client -> edge -> core");
	for (i = 3; i < CANCEL_PATH_MAX; i++)
		cr_assert_eq(cancel_path_add(&p, "x"), 0);
	cr_assert_eq(cancel_path_add(&p, "overflow"), -1);
	cr_assert_eq(p.n, CANCEL_PATH_MAX);
}

Test(cancel_chain, message_matches_design_example)
{
	struct cancel_record r;
	char buf[512];

	record(&r, CANCEL_KIND_CLIENT_DISCONNECT, PHASE_WAITING_FIRST_BYTE);
	cancel_path_add(&r.path, "client");
	cancel_path_add(&r.path, "edge");
	cancel_path_add(&r.path, "core");
	cancel_chain_message(&r, buf, sizeof(buf));
	cr_assert_str_eq(buf, "[canceled path: client -> edge -> core] client "
	    "disconnected while waiting for first byte after 312 ms");
}

/* Cut short at every buffer size exactly as snprintf cuts, detail and
 * long hop names included. */
Test(cancel_chain, message_truncates_like_snprintf)
{
	struct cancel_record r;
	char	 full[1024], buf[1024], want[1024], hop[CANCEL_HOP_MAX + 20];
	size_t	 len;

	record(&r, CANCEL_KIND_UPSTREAM_CLOSED, PHASE_STREAMING);
	r.elapsed_ms = 18446744073709551615ULL;
	r.detail = "connect failed: Connection refused";
	memset(hop, 'h', sizeof(hop) - 1);
	hop[sizeof(hop) - 1] = '\0';
	cancel_path_add(&r.path, "client");
	cancel_path_add(&r.path, hop);
	cr_assert_eq(strlen(r.path.hops[1]), CANCEL_HOP_MAX - 1);
	cancel_chain_message(&r, full, sizeof(full));
	cr_assert(strstr(full, "after 18446744073709551615 ms: connect failed")
	    != NULL, "%s", full);
	for (len = 1; len < strlen(full) + 3; len++) {
		memset(buf, 'X', sizeof(buf));
		cancel_chain_message(&r, buf, len);
		snprintf(want, len, "%s", full);
		cr_assert_str_eq(buf, want, "len %zu", len);
	}
}

Test(cancel_chain, members_are_valid_json_with_every_field)
{
	struct cancel_record r;
	struct jsonw w;
	cJSON *root, *o, *p;

	record(&r, CANCEL_KIND_IDLE_TIMEOUT, PHASE_STREAMING);
	r.direction = CANCEL_DIR_DOWNSTREAM;
	r.via = CANCEL_VIA_TIMER;
	r.upstream = "openai";
	cancel_path_add(&r.path, "edge");
	jsonw_init(&w, NULL, 0);
	jsonw_obj_open(&w);
	cancel_chain_members(&w, &r);
	jsonw_obj_close(&w);
	root = cJSON_Parse(w.buf);
	cr_assert_not_null(root, "not JSON: %s", w.buf);
	o = cJSON_GetObjectItem(root, "origin");
	cr_assert_str_eq(cJSON_GetObjectItem(o, "kind")->valuestring,
	    "idle_timeout");
	cr_assert_str_eq(cJSON_GetObjectItem(o, "hop")->valuestring, "edge");
	p = cJSON_GetObjectItem(root, "cancel_path");
	cr_assert_eq(cJSON_GetArraySize(p), 1);
	cr_assert_str_eq(cJSON_GetObjectItem(root, "direction")->valuestring,
	    "downstream");
	cr_assert_str_eq(cJSON_GetObjectItem(root, "phase")->valuestring,
	    "streaming");
	cr_assert_str_eq(cJSON_GetObjectItem(root, "detected_via")->valuestring,
	    "timer");
	cr_assert_eq(cJSON_GetObjectItem(root, "elapsed_ms")->valueint, 312);
	cr_assert_eq(cJSON_GetObjectItem(root, "detect_to_close_us")->valueint,
	    41);
	cr_assert_eq(cJSON_GetObjectItem(root, "sse_events")->valueint, 7);
	cr_assert_eq(cJSON_GetObjectItem(root, "bytes_out")->valueint, 1234);
	cr_assert_str_eq(cJSON_GetObjectItem(root, "upstream")->valuestring,
	    "openai");
	cJSON_Delete(root);
	jsonw_free(&w);
}

Test(cancel_chain, unknown_detect_to_close_is_null)
{
	struct cancel_record r;
	struct jsonw w;
	cJSON *root;

	record(&r, CANCEL_KIND_CLIENT_DISCONNECT, PHASE_REQUEST);
	r.detect_to_close_us = -1;
	cancel_path_add(&r.path, "client");
	cancel_path_add(&r.path, "edge");
	jsonw_init(&w, NULL, 0);
	jsonw_obj_open(&w);
	cancel_chain_members(&w, &r);
	jsonw_obj_close(&w);
	root = cJSON_Parse(w.buf);
	cr_assert(cJSON_IsNull(cJSON_GetObjectItem(root, "detect_to_close_us")));
	cJSON_Delete(root);
	jsonw_free(&w);
}

Test(cancel_chain, http_status_and_proxy_error)
{
	struct cancel_record r;

	record(&r, CANCEL_KIND_FIRST_BYTE_TIMEOUT, PHASE_WAITING_FIRST_BYTE);
	cr_assert_eq(cancel_chain_http_status(&r), 504);
	cr_assert_str_eq(cancel_chain_proxy_error(&r), "http_response_timeout");
	record(&r, CANCEL_KIND_UPSTREAM_ERROR, PHASE_CONNECTING);
	r.via = CANCEL_VIA_RST;
	cr_assert_eq(cancel_chain_http_status(&r), 502);
	cr_assert_str_eq(cancel_chain_proxy_error(&r),
	    "destination_unavailable");
	r.via = CANCEL_VIA_TIMER;
	cr_assert_eq(cancel_chain_http_status(&r), 504);
	cr_assert_str_eq(cancel_chain_proxy_error(&r), "connection_timeout");
	record(&r, CANCEL_KIND_UPSTREAM_CLOSED, PHASE_WAITING_FIRST_BYTE);
	cr_assert_eq(cancel_chain_http_status(&r), 502);
	cr_assert_str_eq(cancel_chain_proxy_error(&r), "connection_terminated");
}

Test(cancel_chain, error_json_is_openai_shaped)
{
	struct cancel_record r;
	struct jsonw w;
	cJSON *root, *e, *c;

	record(&r, CANCEL_KIND_UPSTREAM_CLOSED, PHASE_STREAMING);
	r.direction = CANCEL_DIR_DOWNSTREAM;
	cancel_path_add(&r.path, "upstream:openai");
	cancel_path_add(&r.path, "edge");
	jsonw_init(&w, NULL, 0);
	cancel_chain_error_json(&w, &r);
	root = cJSON_Parse(w.buf);
	cr_assert_not_null(root, "%s", w.buf);
	e = cJSON_GetObjectItem(root, "error");
	cr_assert_not_null(strstr(cJSON_GetObjectItem(e, "message")->valuestring,
	    "upstream:openai -> edge"));
	cr_assert_str_eq(cJSON_GetObjectItem(e, "code")->valuestring,
	    "upstream_closed");
	c = cJSON_GetObjectItem(e, "cancel");
	cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "origin"),
	    "hop")->valuestring, "upstream:openai");
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(c, "cancel_path")),
	    2);
	cJSON_Delete(root);
	jsonw_free(&w);
}

/* A peer's path holds hop names only: bytes no hop name has are refused,
 * so a note never writes a path that a record would have to change. */
Test(cancel_chain, note_refuses_hops_no_hop_is_called)
{
	static const char *const bad[] = { "h\xc0", "a b", "h\\u00e9", "x;y" };
	struct cancel_note n;
	char	 body[512], err[128];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"request_id\":\"r\","
		    "\"origin\":{\"kind\":\"admin\",\"hop\":\"h0\"},"
		    "\"cancel_path\":[\"h0\",\"%s\"],\"phase\":\"request\","
		    "\"from\":\"h1\"}", bad[i]);
		cr_assert_eq(cancel_note_parse(body, strlen(body), &n, err,
		    sizeof(err)), -1, "accepted hop %s", bad[i]);
	}
	snprintf(body, sizeof(body), "{\"request_id\":\"r\","
	    "\"origin\":{\"kind\":\"admin\",\"hop\":\"h0\"},"
	    "\"cancel_path\":[\"h0\",\"upstream:core-1.eu\"],"
	    "\"phase\":\"request\",\"from\":\"h1\"}");
	cr_assert_eq(cancel_note_parse(body, strlen(body), &n, err,
	    sizeof(err)), 0, "%s", err);
}

/* A note names a stream by an id this hop could have kept: anything else
 * (bytes that are not UTF-8, blanks) names no stream and is refused. */
Test(cancel_chain, note_refuses_ids_no_stream_has)
{
	static const char *const bad[] = { "r\xd7", "a b", "", "x\"y" };
	struct cancel_note n;
	char	 body[512], err[128];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"request_id\":\"%s\","
		    "\"origin\":{\"kind\":\"admin\",\"hop\":\"h0\"},"
		    "\"cancel_path\":[\"h0\"],\"phase\":\"request\","
		    "\"from\":\"h0\"}", bad[i]);
		cr_assert_eq(cancel_note_parse(body, strlen(body), &n, err,
		    sizeof(err)), -1, "accepted id \"%s\"", bad[i]);
	}
}
