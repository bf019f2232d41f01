/* Cancel by request id (client cancel API, admin API across workers) and
 * the admin endpoints: health, readiness, live streams, metrics. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

struct rig {
	struct hproc	*mock;
	struct hproc	*proxy;
	int		 port;
	int		 admin;
};

static void
rig_start(struct rig *r, const char *token)
{
	int	 mport;
	cJSON	*rec;

	r->mock = hmock_start(&mport, "--first-token-ms", "10", "--interval-ms",
	    "20", "--tokens", "100000", NULL);
	cr_assert_not_null(r->mock);
	r->proxy = hproxy_startf("{\"hop\":\"edge\",\"workers\":2,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"admin\":{\"address\":\"127.0.0.1:0\"%s%s%s},"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/v1/\",\"upstream\":\"mock\"}]}",
	    token ? ",\"token\":\"" : "", token ? token : "", token ? "\"" : "",
	    mport);
	cr_assert_not_null(r->proxy);
	r->port = hproxy_port(r->proxy, 0);
	rec = hproc_wait_record(r->proxy, "listening", "role", "admin", 0);
	hassert(rec != NULL, "no admin listener");
	r->admin = atoi(strrchr(hjson_str(rec, "address"), ':') + 1);
}

/* Opens a stream with the given extra headers; reads two events. */
static struct hconn *
open_stream(struct rig *r, const char *const hdrs[], struct hresp **resp)
{
	struct hconn	*c = hconn_connect("127.0.0.1", r->port);

	cr_assert_not_null(c);
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, hdrs)), 0);
	*resp = hconn_read_head(c, 0);
	hassert(*resp != NULL, "no head");
	hassert(hconn_read_event(c, *resp, 0) != NULL, "no event");
	hassert(hconn_read_event(c, *resp, 0) != NULL, "no event");
	return c;
}

static struct hresp *
call(int port, const char *method, const char *path, const char *const h[])
{
	return hhttp_exchange("127.0.0.1", port, hreq_build(method, path, h,
	    strcmp(method, "POST") == 0 ? "" : NULL), 0);
}

/* The open stream ends with an SSE error of this code and a clean end. */
static void
expect_stream_ended(struct hconn *c, struct hresp *resp, const char *code)
{
	const char	*ev, *last = NULL;

	while ((ev = hconn_read_event(c, resp, 0)) != NULL)
		last = ev;
	hassert(last != NULL, "no event before the end");
	cr_assert_str_eq(hsse_type(last), "error");
	cr_assert_str_eq(hjson_str(hsse_json(last), "error.code"), code);
	cr_assert(resp->complete, "the stream did not end cleanly");
}

Test(api, client_cancel_with_the_same_credential, .timeout = 60)
{
	struct rig	 r;
	struct hconn	*c;
	struct hresp	*resp, *ans;
	const char	*mine[] = { "Authorization: Bearer sk-user-1",
	    "X-Request-Id: chat-42", NULL };
	const char	*theirs[] = { "Authorization: Bearer sk-user-2", NULL };
	const char	*same[] = { "Authorization: Bearer sk-user-1", NULL };
	cJSON		*rec;

	rig_start(&r, NULL);
	c = open_stream(&r, mine, &resp);
	/* Someone else's credential: 404 and nothing changes. */
	ans = call(r.port, "POST", "/v1/cancel/chat-42", theirs);
	hassert(ans != NULL, "no answer");
	cr_assert_eq(ans->status, 404);
	ans = call(r.port, "POST", "/v1/cancel/chat-42", NULL);
	hassert(ans != NULL, "no answer");
	cr_assert_eq(ans->status, 404);
	hassert(hconn_read_event(c, resp, 0) != NULL, "the stream stopped");
	cr_assert_eq(hproc_count(r.proxy, "cancel"), 0);
	/* The same credential cancels it. */
	ans = call(r.port, "POST", "/v1/cancel/chat-42", same);
	hassert(ans != NULL, "no answer");
	cr_assert_eq(ans->status, 202);
	expect_stream_ended(c, resp, "client_cancel");
	rec = hproc_wait_record(r.proxy, "cancel", "request_id", "chat-42", 0);
	hassert(rec != NULL, "no cancel record");
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "client_cancel");
	cr_assert_str_eq(hjson_str(rec, "origin.hop"), "client");
	cr_assert_str_eq(hjson_str(rec, "detected_via"), "admin");
	cr_assert_str_eq(hjson_str(rec, "direction"), "upstream");
	hassert(hmock_wait_closed(r.mock, NULL), "the model was not told");
	/* Unknown id now. */
	ans = call(r.port, "POST", "/v1/cancel/chat-42", same);
	cr_assert_eq(ans->status, 404);
	hassert(hproc_stop(r.proxy, 0) == 0, "the proxy exited badly");
}

Test(api, admin_lists_and_cancels_streams, .timeout = 60)
{
	struct rig	 r;
	struct hconn	*c1, *c2;
	struct hresp	*s1, *s2, *ans;
	const char	*h1[] = { "X-Request-Id: one", NULL };
	const char	*h2[] = { "X-Request-Id: two", NULL };
	const char	*auth[] = { "Authorization: Bearer adm1n-t0ken", NULL };
	const char	*bad[] = { "Authorization: Bearer wrong", NULL };
	const cJSON	*list, *st;
	int		 i, n;

	rig_start(&r, "adm1n-t0ken");
	c1 = open_stream(&r, h1, &s1);
	c2 = open_stream(&r, h2, &s2);
	ans = call(r.admin, "GET", "/streams", NULL);
	cr_assert_eq(ans->status, 401);
	ans = call(r.admin, "GET", "/streams", bad);
	cr_assert_eq(ans->status, 401);
	ans = call(r.admin, "GET", "/streams", auth);
	hassert(ans != NULL && ans->status == 200, "GET /streams failed");
	list = hjson_get(hresp_json(ans), "streams");
	cr_assert(cJSON_IsArray(list), "%s", ans->body);
	n = cJSON_GetArraySize(list);
	cr_assert_eq(n, 2, "%s", ans->body);
	for (i = 0; i < n; i++) {
		st = cJSON_GetArrayItem(list, i);
		cr_assert_str_eq(hjson_str(st, "phase"), "streaming");
		cr_assert_str_eq(hjson_str(st, "upstream"), "mock");
		cr_assert_str_eq(hjson_str(st, "model"), "mock-1");
		cr_assert_eq(strlen(hjson_str(st, "trace_id")), 32);
		cr_assert_geq(hjson_num(st, "sse_events", -1), 2);
		cr_assert_geq(hjson_num(st, "elapsed_ms", -1), 0);
	}
	ans = call(r.admin, "POST", "/streams/two/cancel", bad);
	cr_assert_eq(ans->status, 401);
	ans = call(r.admin, "POST", "/streams/two/cancel", auth);
	cr_assert_eq(ans->status, 202);
	expect_stream_ended(c2, s2, "admin");
	hassert(hproc_wait_match(r.proxy, 0, "event", "cancel", "request_id",
	    "two", "origin.kind", "admin", "origin.hop", "edge", NULL),
	    "no admin cancel record");
	/* The other stream is untouched. */
	hassert(hconn_read_event(c1, s1, 0) != NULL, "stream one stopped");
	ans = call(r.admin, "POST", "/streams/nope/cancel", auth);
	cr_assert_eq(ans->status, 404);
	ans = call(r.admin, "GET", "/healthz", auth);
	cr_assert_eq(ans->status, 200);
	ans = call(r.admin, "GET", "/readyz", auth);
	cr_assert_eq(ans->status, 200);
	hconn_close_fin(c1);
	hassert(hproc_wait_match(r.proxy, 0, "event", "cancel", "request_id",
	    "one", NULL), "stream one was not canceled");
	hassert(hproc_stop(r.proxy, 0) == 0, "the proxy exited badly");
}

/*
 * A strict reader of the text exposition format: every sample belongs to
 * a family announced by HELP and TYPE before it, names and labels are
 * well formed, values are numbers. Returns the value of want (or -1).
 */
static double
metrics_check(const char *text, const char *want)
{
	char		 fam[128] = "", type[32] = "", line[2048];
	const char	*p = text, *nl;
	double		 found = -1;
	int		 help = 0;

	while (*p) {
		size_t n;

		nl = strchr(p, '\n');
		cr_assert_not_null(nl, "the last line has no newline");
		n = (size_t)(nl - p);
		cr_assert_lt(n, sizeof(line));
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl + 1;
		if (strncmp(line, "# HELP ", 7) == 0) {
			cr_assert_eq(sscanf(line + 7, "%127s", fam), 1);
			help = 1;
			type[0] = '\0';
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char f[128];

			cr_assert(help, "TYPE without HELP: %s", line);
			cr_assert_eq(sscanf(line + 7, "%127s %31s", f, type), 2);
			cr_assert_str_eq(f, fam);
			cr_assert(strcmp(type, "counter") == 0 ||
			    strcmp(type, "gauge") == 0 ||
			    strcmp(type, "histogram") == 0, "%s", type);
			continue;
		}
		cr_assert_neq(line[0], '#', "unknown comment: %s", line);
		cr_assert(type[0] != '\0', "sample before TYPE: %s", line);
		{
			const char *sp, *name_end = line;
			char *end;
			double v;

			while (isalnum((unsigned char)*name_end) ||
			    *name_end == '_' || *name_end == ':')
				name_end++;
			cr_assert(strncmp(line, fam, strlen(fam)) == 0,
			    "sample %s outside family %s", line, fam);
			if (*name_end == '{') {
				const char *close = strstr(name_end, "} ");

				cr_assert_not_null(close, "labels: %s", line);
				sp = close + 1;
			} else
				sp = name_end;
			cr_assert_eq(*sp, ' ', "%s", line);
			v = strtod(sp + 1, &end);
			cr_assert(end != sp + 1 && *end == '\0',
			    "value: %s", line);
			if (want != NULL && strncmp(line, want, strlen(want))
			    == 0 && line[strlen(want)] == ' ')
				found = v;
		}
	}
	return found;
}

Test(api, metrics_exposition_is_strict_and_counts_grow, .timeout = 60)
{
	struct rig	 r;
	struct hconn	*c;
	struct hresp	*resp, *m1, *m2;
	const char	*few[] = { "X-Mock-Tokens: 3", NULL };
	double		 req1, req2, canc;

	rig_start(&r, NULL);
	resp = hhttp_exchange("127.0.0.1", r.port, hreq_chat("mock-1", 1, few),
	    0);
	hassert(resp != NULL && resp->status == 200, "stream failed");
	m1 = call(r.admin, "GET", "/metrics", NULL);
	hassert(m1 != NULL && m1->status == 200, "no metrics");
	cr_assert_not_null(strstr(hresp_header(m1, "content-type"),
	    "text/plain"));
	req1 = metrics_check(m1->body, "cancelproxy_requests_total{route=\"/v1/"
	    "\",upstream=\"mock\",status=\"200\"}");
	cr_assert_eq(req1, 1, "%s", m1->body);
	c = open_stream(&r, NULL, &resp);
	hconn_close_rst(c);
	hassert(hproc_wait_record(r.proxy, "cancel", NULL, NULL, 0),
	    "no cancel");
	hsleep_ms(50);
	m2 = call(r.admin, "GET", "/metrics", NULL);
	req2 = metrics_check(m2->body, "cancelproxy_requests_total{route=\"/v1/"
	    "\",upstream=\"mock\",status=\"200\"}");
	cr_assert_eq(req2, 2, "%s", m2->body);
	canc = metrics_check(m2->body, "cancelproxy_cancels_total{kind="
	    "\"client_disconnect\",phase=\"streaming\",direction=\"upstream\"}");
	cr_assert_eq(canc, 1, "%s", m2->body);
	cr_assert_eq(metrics_check(m2->body,
	    "cancelproxy_detect_to_close_seconds_count"), 1);
	cr_assert_gt(metrics_check(m2->body,
	    "cancelproxy_relayed_sse_events_total"),
	    metrics_check(m1->body, "cancelproxy_relayed_sse_events_total"));
	cr_assert_eq(metrics_check(m2->body, "cancelproxy_live_streams"), 0);
	cr_assert_eq(metrics_check(m2->body,
	    "cancelproxy_upstream_connect_seconds_bucket{le=\"+Inf\"}") >= 1, 1);
	hassert(hproc_stop(r.proxy, 0) == 0, "the proxy exited badly");
}
