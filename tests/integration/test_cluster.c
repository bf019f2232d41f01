/* Cancels across a fleet: two instances share a real redis-server; a
 * cancel sent to one reaches the stream held by the other. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct hproc *
redis_start(int port)
{
	const char	*argv[] = { "redis-server", "--port", hstrf("%d", port),
	    "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
	    "--protected-mode", "no", NULL };
	struct hproc	*r;

	r = hproc_start(argv, NULL);
	cr_assert_not_null(r);
	hassert(hproc_wait_line(r, "Ready to accept connections", 0) != NULL,
	    "redis did not start");
	return r;
}

struct inst {
	struct hproc	*p;
	int		 port;
	int		 admin;
};

static void
inst_start(struct inst *in, const char *hop, int mport, int rport)
{
	cJSON	*rec;

	in->p = hproxy_startf("{\"hop\":\"%s\",\"workers\":2,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"admin\":{\"address\":\"127.0.0.1:0\"},"
	    "\"upstreams\":{\"mock\":{\"url\":\"http://127.0.0.1:%d\"}},"
	    "\"routes\":[{\"path_prefix\":\"/v1/\",\"upstream\":\"mock\"}],"
	    "\"cluster\":{\"redis\":{\"address\":\"127.0.0.1:%d\"}}}", hop,
	    mport, rport);
	cr_assert_not_null(in->p);
	in->port = hproxy_port(in->p, 0);
	rec = hproc_wait_record(in->p, "listening", "role", "admin", 0);
	hassert(rec != NULL, "no admin listener");
	in->admin = atoi(strrchr(hjson_str(rec, "address"), ':') + 1);
	hassert(hproc_wait_record(in->p, "cluster", NULL, NULL, 0),
	    "the cluster link never came up");
}

static int
cancel_on(struct inst *in, const char *id, const char *auth)
{
	const char	*h[] = { auth, NULL };
	struct hresp	*r;

	r = hhttp_exchange("127.0.0.1", in->port, hreq_build("POST",
	    hstrf("/v1/cancel/%s", id), auth ? h : NULL, ""), 0);
	return r ? r->status : -1;
}

static struct hconn *
stream_on(struct inst *in, const char *id, struct hresp **resp)
{
	const char	*h[] = { "Authorization: Bearer sk-owner",
	    hstrf("X-Request-Id: %s", id), NULL };
	struct hconn	*c = hconn_connect("127.0.0.1", in->port);

	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, h)), 0);
	*resp = hconn_read_head(c, 0);
	hassert(*resp != NULL, "no head");
	hassert(hconn_read_event(c, *resp, 0) != NULL, "no event");
	return c;
}

static int
free_port(void)
{
	int	 port, fd = hnet_listen("127.0.0.1", &port);

	close(fd);
	return port;
}

Test(cluster, cancel_reaches_the_instance_holding_the_stream, .timeout = 90)
{
	struct hproc	*redis, *mock;
	struct inst	 a, b;
	struct hconn	*c;
	struct hresp	*resp;
	int		 rport = free_port(), mport;
	cJSON		*rec;

	if (access("/usr/bin/redis-server", X_OK) != 0)
		cr_skip_test("redis-server is not installed");
	redis = redis_start(rport);
	mock = hmock_start(&mport, "--first-token-ms", "10", "--interval-ms",
	    "20", "--tokens", "100000", NULL);
	inst_start(&a, "a", mport, rport);
	inst_start(&b, "b", mport, rport);
	c = stream_on(&a, "fleet-1", &resp);
	cr_assert_eq(cancel_on(&b, "fleet-1", "Authorization: Bearer sk-other"),
	    404);
	cr_assert_eq(cancel_on(&b, "fleet-1", NULL), 404);
	hassert(hconn_read_event(c, resp, 0) != NULL, "the stream stopped");
	cr_assert_eq(hproc_count(a.p, "cancel"), 0);
	cr_assert_eq(cancel_on(&b, "fleet-1", "Authorization: Bearer sk-owner"),
	    202);
	rec = hproc_wait_record(a.p, "cancel", "request_id", "fleet-1", 0);
	hassert(rec != NULL, "instance a did not cancel");
	cr_assert_str_eq(hjson_str(rec, "origin.kind"), "client_cancel");
	cr_assert_eq(hproc_count(b.p, "cancel"), 0);
	hassert(hmock_wait_closed(mock, NULL), "the model was not told");
	hassert(hproc_stop(a.p, 0) == 0, "a exited badly");
	hassert(hproc_stop(b.p, 0) == 0, "b exited badly");
	hproc_stop(redis, 0);
}

Test(cluster, redis_down_and_back, .timeout = 90)
{
	struct hproc	*redis, *mock;
	struct inst	 a, b;
	struct hconn	*c;
	struct hresp	*resp, *ready;
	int		 rport = free_port(), mport;

	if (access("/usr/bin/redis-server", X_OK) != 0)
		cr_skip_test("redis-server is not installed");
	redis = redis_start(rport);
	mock = hmock_start(&mport, "--first-token-ms", "10", "--interval-ms",
	    "20", "--tokens", "100000", NULL);
	cr_assert_not_null(mock);
	inst_start(&a, "a", mport, rport);
	inst_start(&b, "b", mport, rport);
	hproc_stop(redis, 0);
	hassert(hproc_wait_match(a.p, 0, "event", "cluster", "level", "warn",
	    NULL), "a did not say the link is down");
	ready = hhttp_exchange("127.0.0.1", a.admin, hreq_build("GET",
	    "/readyz", NULL, NULL), 0);
	hassert(ready != NULL, "no readyz answer");
	cr_assert_not_null(strstr(ready->body, "\"cluster\":\"down\""), "%s",
	    ready->body);
	/* Local cancels keep working. */
	c = stream_on(&a, "local-1", &resp);
	cr_assert_eq(cancel_on(&a, "local-1", "Authorization: Bearer sk-owner"),
	    202);
	hassert(hproc_wait_record(a.p, "cancel", "request_id", "local-1", 0),
	    "local cancel failed while redis was down");
	/* Remote ones say not found rather than hang. */
	c = stream_on(&a, "remote-1", &resp);
	cr_assert_eq(cancel_on(&b, "remote-1", "Authorization: Bearer sk-owner"),
	    404);
	/* Redis comes back; so does the link, and remote cancels work. */
	redis = redis_start(rport);
	hassert(hproc_wait_match(a.p, 10000, "event", "cluster", "level", "info",
	    NULL), "a did not reconnect");
	hassert(hproc_wait_match(b.p, 10000, "event", "cluster", "level", "info",
	    NULL), "b did not reconnect");
	cr_assert_eq(cancel_on(&b, "remote-1", "Authorization: Bearer sk-owner"),
	    202);
	hassert(hproc_wait_record(a.p, "cancel", "request_id", "remote-1", 0),
	    "remote cancel failed after redis came back");
	hconn_close_fin(c);
	hassert(hproc_stop(a.p, 0) == 0, "a exited badly");
	hassert(hproc_stop(b.p, 0) == 0, "b exited badly");
	hproc_stop(redis, 0);
}
