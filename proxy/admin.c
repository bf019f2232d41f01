/* admin: the operator's API on its own listener, served by the main
 * thread with evhttp (never on the streaming path): health, readiness,
 * live streams, cancel by id, and Prometheus metrics. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "proxy/headers.h"
#include "proxy/log.h"
#include "proxy/proxy.h"

static struct {
	struct event_base	*base;
	struct evhttp		*http;
	struct runtime		**rt;		/* the newest config */
	int			 draining;
} admin;

/* A reply that waits for the workers; req is NULL once the admin client
 * has gone. */
struct admin_wait {
	struct evhttp_request	*req;
	struct proxy_job	*job;
	struct event		*done;		/* on the main base */
};

static void
admin_reply_json(struct evhttp_request *req, int code, const char *reason,
    const char *json)
{
	struct evbuffer	*b = evbuffer_new();

	if (b == NULL)
		return;
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	evbuffer_add_printf(b, "%s\n", json);
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

static int
admin_authorized(struct evhttp_request *req)
{
	const char	*token = (*admin.rt)->conf->admin_token;
	const char	*h;
	size_t		 tl;

	if (token == NULL)
		return 1;
	h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	tl = strlen(token);
	return h != NULL && strncmp(h, "Bearer ", 7) == 0 &&
	    strlen(h + 7) == tl && CRYPTO_memcmp(h + 7, token, tl) == 0;
}

static void
admin_conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	struct admin_wait	*aw = arg;

	aw->req = NULL;
}

/* Main thread: the workers are done; answer if the client is still there. */
static void
admin_wait_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin_wait	*aw = arg;
	struct proxy_job	*j = aw->job;
	struct evbuffer		*b;

	if (aw->req != NULL) {
		evhttp_connection_set_closecb(
		    evhttp_request_get_connection(aw->req), NULL, NULL);
		if (j->kind == JOB_LIST) {
			b = evbuffer_new();
			evbuffer_add_lit(b, "{\"streams\":[");
			evbuffer_add_buffer(b, j->body);
			evbuffer_add_lit(b, "]}\n");
			evhttp_add_header(evhttp_request_get_output_headers(
			    aw->req), "Content-Type", "application/json");
			evhttp_send_reply(aw->req, 200, "OK", b);
			evbuffer_free(b);
		} else if (__atomic_load_n(&j->found, __ATOMIC_RELAXED))
			admin_reply_json(aw->req, 202, "Accepted",
			    "{\"canceled\":true}");
		else
			admin_reply_json(aw->req, 404, "Not Found",
			    "{\"error\":{\"message\":\"no live stream with this "
			    "request id\",\"code\":\"not_found\"}}");
	}
	event_free(aw->done);
	proxy_job_free(j);
	free(aw);
}

static void
admin_job_answer(struct proxy_job *j)
{
	struct admin_wait	*aw = j->arg;

	event_active(aw->done, 0, 0);
}

/* Worker thread: the last worker wakes the main thread (or, for a cancel
 * nobody here held, the fleet is asked first). */
static void
admin_job_done(struct proxy_job *j)
{
	if (j->kind == JOB_CANCEL_ADMIN && cluster_enabled() &&
	    !__atomic_load_n(&j->found, __ATOMIC_RELAXED))
		cluster_forward(j, admin_job_answer);
	else
		admin_job_answer(j);
}

static void
admin_ask_workers(struct evhttp_request *req, enum proxy_job_kind kind,
    const char *id)
{
	struct admin_wait	*aw;

	if ((aw = calloc(1, sizeof(*aw))) == NULL ||
	    (aw->job = proxy_job_new(kind, id)) == NULL ||
	    (aw->done = event_new(admin.base, -1, 0, admin_wait_done_cb,
	    aw)) == NULL) {
		if (aw != NULL && aw->job != NULL)
			proxy_job_free(aw->job);
		free(aw);
		admin_reply_json(req, 503, "Service Unavailable",
		    "{\"error\":{\"message\":\"out of memory\"}}");
		return;
	}
	aw->req = req;
	aw->job->done = admin_job_done;
	aw->job->arg = aw;
	evhttp_connection_set_closecb(evhttp_request_get_connection(req),
	    admin_conn_closed_cb, aw);
	proxy_job_run(aw->job);
}

/*
 * GET /cancels is the one admin endpoint a web page may read (the demo
 * page shows the record of the stream it stopped): an origin that some
 * route's "cors" allows gets CORS fields on it, and its preflight (when
 * the admin API wants a token) is answered. Returns 1 if req was a
 * preflight, now answered.
 */
static int
admin_cors(struct evhttp_request *req, const char *path)
{
	const struct conf	*conf = (*admin.rt)->conf;
	struct evkeyvalq	*in = evhttp_request_get_input_headers(req);
	struct evkeyvalq	*out = evhttp_request_get_output_headers(req);
	const char		*origin;
	size_t			 i;

	if (strcmp(path, "/cancels") != 0)
		return 0;
	evhttp_add_header(out, "Vary", "Origin");
	if ((origin = evhttp_find_header(in, "Origin")) == NULL)
		return 0;
	for (i = 0; i < conf->nroutes; i++)
		if (conf_cors_origin_allowed(conf->routes[i].cors, origin,
		    strlen(origin)))
			break;
	if (i == conf->nroutes)
		return 0;
	evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
	if (evhttp_request_get_command(req) != EVHTTP_REQ_OPTIONS)
		return 0;
	evhttp_add_header(out, "Access-Control-Allow-Methods", "GET");
	evhttp_add_header(out, "Access-Control-Allow-Headers",
	    "authorization");
	evhttp_add_header(out, "Access-Control-Max-Age", "600");
	evhttp_send_reply(req, 204, "No Content", NULL);
	return 1;
}

/* GET /cancels[?request_id=ID]: the last cancel records kept in memory,
 * oldest first, as {"cancels":[...]}. */
static void
admin_cancels(struct evhttp_request *req)
{
	const char		*query = evhttp_uri_get_query(
				    evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq	 params;
	const char		*id = NULL;
	struct evbuffer		*b;

	TAILQ_INIT(&params);
	if (query != NULL && evhttp_parse_query_str(query, &params) == 0)
		id = evhttp_find_header(&params, "request_id");
	if ((b = evbuffer_new()) == NULL) {
		evhttp_clear_headers(&params);
		return;
	}
	evbuffer_add_lit(b, "{\"cancels\":");
	recent_cancel_list(id, b);
	evbuffer_add_lit(b, "}\n");
	evhttp_clear_headers(&params);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void
admin_request_cb(struct evhttp_request *req, void *arg)
{
	const char	*path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(
			    req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer	*b;
	char		 id[80];
	size_t		 n;

	if (path == NULL)
		path = "/";
	if (admin_cors(req, path))
		return;			/* a page's preflight */
	if (!admin_authorized(req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "WWW-Authenticate", "Bearer");
		admin_reply_json(req, 401, "Unauthorized", "{\"error\":{"
		    "\"message\":\"a bearer token is required\","
		    "\"code\":\"unauthorized\"}}");
		return;
	}
	if (cmd == EVHTTP_REQ_GET && strcmp(path, "/healthz") == 0) {
		admin_reply_json(req, 200, "OK", "{\"status\":\"ok\"}");
	} else if (cmd == EVHTTP_REQ_GET && strcmp(path, "/readyz") == 0) {
		if (admin.draining)
			admin_reply_json(req, 503, "Service Unavailable",
			    "{\"status\":\"draining\"}");
		else if (cluster_enabled())
			admin_reply_json(req, 200, "OK", cluster_link_up() ?
			    "{\"status\":\"ready\",\"cluster\":\"up\"}" :
			    "{\"status\":\"ready\",\"cluster\":\"down\"}");
		else
			admin_reply_json(req, 200, "OK",
			    "{\"status\":\"ready\"}");
	} else if (cmd == EVHTTP_REQ_GET && strcmp(path, "/cancels") == 0) {
		admin_cancels(req);
	} else if (cmd == EVHTTP_REQ_GET && strcmp(path, "/streams") == 0) {
		admin_ask_workers(req, JOB_LIST, NULL);
	} else if (cmd == EVHTTP_REQ_POST && strncmp(path, "/streams/", 9) == 0
	    && (n = strlen(path)) > 16 &&
	    strcmp(path + n - 7, "/cancel") == 0 && n - 16 < sizeof(id)) {
		memcpy(id, path + 9, n - 16);
		id[n - 16] = '\0';
		admin_ask_workers(req, JOB_CANCEL_ADMIN, id);
	} else if (cmd == EVHTTP_REQ_GET && strcmp(path, "/metrics") == 0) {
		b = evbuffer_new();
		metrics_write(b, proxy_global.workers, proxy_global.nworkers);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
		evhttp_send_reply(req, 200, "OK", b);
		evbuffer_free(b);
	} else
		admin_reply_json(req, 404, "Not Found", "{\"error\":{"
		    "\"message\":\"no such admin endpoint\","
		    "\"code\":\"not_found\"}}");
}

int
admin_start(struct event_base *base, struct runtime **rt)
{
	const struct conf	*conf = (*rt)->conf;
	int			 fds[1];
	struct conf		 one;

	if (!conf->admin_enabled)
		return 0;
	admin.base = base;
	admin.rt = rt;
	if ((admin.http = evhttp_new(base)) == NULL)
		return -1;
	evhttp_set_gencb(admin.http, admin_request_cb, NULL);
	evhttp_set_max_headers_size(admin.http, 16384);
	evhttp_set_max_body_size(admin.http, 65536);
	evhttp_set_timeout(admin.http, 30);
	evhttp_set_allowed_methods(admin.http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_OPTIONS);
	recent_enable();
	/* Bind through the same code as the listeners (one socket). */
	memset(&one, 0, sizeof(one));
	one.path = conf->path;
	one.listen = (struct conf_listen *)&conf->admin;
	one.nlisten = 1;
	if (proxy_bind_listener(&one, 0, 1, fds, "admin") == -1)
		return -1;
	if (evhttp_accept_socket_with_handle(admin.http, fds[0]) == NULL) {
		close(fds[0]);
		return -1;
	}
	return 0;
}

/* Readiness turns false while draining. */
void
admin_draining(void)
{
	admin.draining = 1;
}

void
admin_stop(void)
{
	if (admin.http != NULL)
		evhttp_free(admin.http);
	admin.http = NULL;
}
