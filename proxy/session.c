/* session: pairs a client request with an upstream stream — identity,
 * routing, the timers, and the one teardown (the relay is in
 * session_relay.c, the records in session_record.c). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "downstream/downstream.h"
#include "proxy/jsonr.h"
#include "proxy/jsonw.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "proxy/session_priv.h"
#include "upstream/upstream.h"
#include "proxy/metrics.h"

static void	session_timer_cb(evutil_socket_t, short, void *);

static const char *const session_state_names[] = {
	[SESSION_LIVE] = "live",
	[SESSION_DRAINING] = "draining",
	[SESSION_CLOSING] = "closing",
	[SESSION_AWAITING_NOTE] = "awaiting_note",
	[SESSION_DONE] = "done",
};

const char *
session_state_name(enum session_state st)
{
	if ((size_t)st >= sizeof(session_state_names) /
	    sizeof(session_state_names[0]))
		return "unknown";
	return session_state_names[st];
}

/* States only move forward; a step back is a bug in the teardown. */
void
session_state_set(struct session *s, enum session_state st)
{
	if (st <= s->state) {
		log_msg(LOG_LEVEL_ERROR, "session_state", "request %s: %s "
		    "after %s", s->request_id, session_state_name(st),
		    session_state_name(s->state));
		abort();
	}
	s->state = st;
}

struct session *
session_new(struct worker *w, struct client *c)
{
	struct session	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->body = evbuffer_new()) == NULL ||
	    (s->timer = evtimer_new(w->base, session_timer_cb, s)) == NULL) {
		if (s->body != NULL)
			evbuffer_free(s->body);
		free(s);
		return NULL;
	}
	s->w = w;
	s->client = c;
	memcpy(s->client_addr, c->addr, sizeof(s->client_addr));
	memcpy(s->client_ip, c->ip, sizeof(s->client_ip));
	s->forwarded = c->forwarded;
	s->client_tls = c->tls;
	s->protocol = c->proto->name;
	s->conn_id = c->id;
	s->rt = runtime_ref(w->rt);	/* new requests use the newest config */
	s->phase = PHASE_REQUEST;
	s->serial = ++w->next_serial;
	s->t_start_us = clock_mono_us();
	s->t_request_by_us = -1;
	s->grpc_deadline_us = -1;
	s->grpc_status = -1;
	headers_init(&s->req_headers);
	headers_init(&s->resp_headers);
	headers_init(&s->resp_trailers);
	usage_init(&s->usage);
	TAILQ_INSERT_TAIL(&w->sessions, s, entry);
	metrics_live(&w->metrics, 1);
	metrics_stream(&w->metrics, s->protocol);
	return s;
}

/* Frees a closed session; every pointer it owned was cleared by close. */
void
session_free(struct session *s)
{
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->body != NULL)
		evbuffer_free(s->body);
	if (s->scratch != NULL)
		evbuffer_free(s->scratch);
	headers_free(&s->req_headers);
	headers_free(&s->resp_headers);
	headers_free(&s->resp_trailers);
	free(s->target);
	free(s->model);
	free(s->grpc_method);
	free(s->origin);
	free(s->peer_note);
	free(s->tries);
	if (s->peer_hold != NULL)
		evbuffer_free(s->peer_hold);
	if (s->sse != NULL) {
		sse_scan_free(s->sse);
		free(s->sse);
	}
	if (s->ev_hold != NULL)
		evbuffer_free(s->ev_hold);
	if (s->json_copy != NULL)
		evbuffer_free(s->json_copy);
	runtime_unref(s->rt);
	free(s);
}

static int
session_hex_ok(const char *p, size_t n)
{
	size_t	 i, zero = 1;

	for (i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)p[i]) || isupper((unsigned char)p[i]))
			return 0;
		if (p[i] != '0')
			zero = 0;
	}
	return !zero;
}

/* Keeps a sane X-Request-Id and the trace id of a valid traceparent;
 * mints what is missing. Our own span id becomes the parent upstream. */
void
session_identity(struct session *s)
{
	const char	*v;
	size_t		 n, i;
	int		 ok;

	if ((v = headers_get(&s->req_headers, "x-request-id", &n)) != NULL &&
	    n > 0 && n < sizeof(s->request_id)) {
		ok = 1;
		for (i = 0; i < n; i++)
			if (!isalnum((unsigned char)v[i]) && !strchr("-_.:", v[i]))
				ok = 0;
		if (ok) {
			memcpy(s->request_id, v, n);
			s->request_id[n] = '\0';
		}
	}
	if (s->request_id[0] == '\0')
		proxy_random_hex(s->request_id, 16);

	/* traceparent: 00-<32 hex>-<16 hex>-<2 hex> */
	v = headers_get(&s->req_headers, "traceparent", &n);
	if (v != NULL && n >= 55 && v[2] == '-' && v[35] == '-' &&
	    v[52] == '-' && session_hex_ok(v + 3, 32) &&
	    session_hex_ok(v + 36, 16) && strncmp(v, "ff", 2) != 0) {
		memcpy(s->trace_id, v + 3, 32);
		s->trace_id[32] = '\0';
		memcpy(s->trace_flags, v + 53, 2);
		s->trace_flags[2] = '\0';
	} else {
		proxy_random_hex(s->trace_id, 16);
		memcpy(s->trace_flags, "01", 3);
	}
	proxy_random_hex(s->span_id, 8);
}


/* Whether a content type names JSON: application/json, or a type with
 * the +json suffix (application/vnd.x+json), parameters after ';'. */
static int
session_ct_json(const char *ct)
{
	size_t	 n = strcspn(ct, ";");

	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	    (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

/* Whether a body starts like JSON text: '{' or '[' after a UTF-8 byte
 * order mark (Python's reader skips one) and any bytes up to 0x20 (cJSON
 * skips them all as white space; the strict readers refuse them). */
static int
session_body_looks_json(const char *p, size_t len)
{
	const char	*e = p + len;

	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (p < e && (unsigned char)*p <= 0x20)
		p++;
	return p < e && (*p == '{' || *p == '[');
}

/* Checks the model string, unescaped into buf: no control characters (C0,
 * DEL, C1), no NUL escape, well-formed UTF-8, at most SESSION_MODEL_MAX
 * bytes; 0, or -1 with why set. */
static int
session_model_check(const struct jsonr *v, char *buf, size_t len,
    struct body_refusal *why)
{
	const unsigned char *u = (const unsigned char *)buf;
	long		 n, i;
	size_t		 k;
	int		 nul;

	why->code = "invalid_model";
	if (v->type != JSONR_STRING) {
		snprintf(why->msg, sizeof(why->msg),
		    "\"model\" must be a string, not %s",
		    jsonr_type_name(v->type));
		return -1;
	}
	if ((n = jsonr_string_nul(v, buf, len, &nul)) < 0) {
		snprintf(why->msg, sizeof(why->msg),
		    "\"model\" is longer than %zu bytes", len - 1);
		return -1;
	}
	for (i = 0; i < n && !nul; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			nul = 1;
		else if (u[i] >= 0x80) {
			if ((k = jsonw_utf8_len(u + i, (size_t)(n - i))) == 0) {
				snprintf(why->msg, sizeof(why->msg),
				    "\"model\" is not valid UTF-8");
				return -1;
			}
			if (u[i] == 0xC2 && u[i + 1] <= 0x9F)
				nul = 1;	/* U+0080..U+009F */
			i += (long)k - 1;
		}
	}
	if (nul) {
		snprintf(why->msg, sizeof(why->msg),
		    "\"model\" holds a control character");
		return -1;
	}
	return 0;
}

int
session_body_read(const char *text, size_t len, const char *ct,
    struct jsonr *m, char **model, struct body_refusal *why)
{
	static const char *const keys[BODY_NKEYS] = {
		"model", "stream", "stream_options",
	};
	struct jsonr	 root;
	size_t		 i;
	char		 buf[SESSION_MODEL_MAX + 1];
	unsigned	 dup;

	*model = NULL;
	why->status = 400;
	for (i = 0; i < BODY_NKEYS; i++)
		m[i].type = JSONR_NONE;
	if (len == 0)
		return 0;
	if (!(ct != NULL && session_ct_json(ct)) &&
	    !session_body_looks_json(text, len))
		return 0;
	why->code = "invalid_json";
	if (jsonr_parse_members(text, len, &root, keys, BODY_NKEYS, m,
	    &dup) == -1) {
		if (jsonr_too_deep(text, len)) {
			why->code = "json_too_deep";
			snprintf(why->msg, sizeof(why->msg), "the JSON body "
			    "nests deeper than %d levels", JSONR_DEPTH_MAX);
		} else
			snprintf(why->msg, sizeof(why->msg),
			    "the body is not valid JSON");
		return -1;
	}
	if (!jsonr_rest_is_space(&root, text, len)) {
		snprintf(why->msg, sizeof(why->msg),
		    "bytes follow the JSON value in the body");
		return -1;
	}
	why->code = "duplicate_key";
	for (i = 0; i < BODY_NKEYS; i++)
		if (dup & (1u << i)) {
			snprintf(why->msg, sizeof(why->msg), "the body has "
			    "more than one \"%s\" member", keys[i]);
			return -1;
		}
	if (jsonr_count(&m[BODY_STREAM_OPTIONS], "include_usage") > 1) {
		snprintf(why->msg, sizeof(why->msg), "the body has more "
		    "than one \"stream_options.include_usage\" member");
		return -1;
	}
	if (m[BODY_MODEL].type != JSONR_NONE) {
		if (session_model_check(&m[BODY_MODEL], buf, sizeof(buf),
		    why) == -1)
			return -1;
		if ((*model = strdup(buf)) == NULL) {
			why->status = 503;
			why->code = "out_of_memory";
			snprintf(why->msg, sizeof(why->msg), "out of memory");
			return -1;
		}
	}
	return 1;
}

/* session_body_read on the session's body and content type. */
static int
session_body_json(struct session *s, struct jsonr *m, char **model,
    struct body_refusal *why)
{
	size_t		 len = evbuffer_get_length(s->body);

	return session_body_read(len ? (const char *)evbuffer_pullup(s->body,
	    -1) : "", len, headers_get(&s->req_headers, "content-type", NULL),
	    m, model, why);
}

/*
 * stream_usage "inject" (session_usage_inject in session.h): an
 * OpenAI-style streaming request gets
 * stream_options.include_usage, so the stream reports what it used; if
 * the client had not asked, the usage-only chunk is hidden from it. The
 * body is changed in place, one span replaced or one member inserted, and
 * every other byte is forwarded as the client sent it: the model server
 * reads what the proxy routed by (printing a tree anew changed numbers
 * and cut strings at \u0000). The body was read by session_body_read, so
 * it is one object with these members named once and only white space
 * after it.
 */
int
session_usage_inject(const char *text, size_t len, const struct jsonr *m,
    struct evbuffer *out)
{
	static const char member[] = ",\"stream_options\":{\"include_usage\":true}";
	const struct jsonr *o = &m[BODY_STREAM_OPTIONS];
	struct jsonr	 v;
	const char	*at, *cut, *add, *q;

	if (m[BODY_STREAM].type != JSONR_TRUE)
		return 0;
	if (jsonr_get(o, "include_usage", &v) && v.type == JSONR_TRUE)
		return 0;		/* the client asked itself */
	if (o->type == JSONR_NONE) {
		/* Before the root's closing brace: the last byte not space. */
		for (at = text + len; at > text && at[-1] != '}'; at--)
			;
		if (at == text)
			return -1;
		at--;
		cut = at;
		add = member;
	} else if (o->type != JSONR_OBJECT) {
		at = o->p;		/* null, false, a number: replaced */
		cut = o->end;
		add = member + 18;
	} else if (v.type != JSONR_NONE) {
		at = v.p;		/* include_usage false or other: true */
		cut = v.end;
		add = "true";
	} else {
		at = cut = o->p + 1;	/* the first member of the object */
		for (q = at; q < o->end && (*q == ' ' || *q == '\t' ||
		    *q == '\n' || *q == '\r'); q++)
			;
		add = *q == '}' ? "\"include_usage\":true" :
		    "\"include_usage\":true,";
	}
	if (evbuffer_add(out, text, (size_t)(at - text)) == -1 ||
	    evbuffer_add(out, add, strlen(add)) == -1 ||
	    evbuffer_add(out, cut, len - (size_t)(cut - text)) == -1)
		return -1;
	return 1;
}

/* session_usage_inject on the session's body, which it replaces. */
static void
session_inject_usage(struct session *s, const struct jsonr *m)
{
	struct evbuffer	*nb;
	size_t		 len = evbuffer_get_length(s->body);

	if ((nb = evbuffer_new()) == NULL)
		return;
	if (session_usage_inject((const char *)evbuffer_pullup(s->body, -1),
	    len, m, nb) != 1) {
		evbuffer_free(nb);
		return;
	}
	evbuffer_drain(s->body, len);
	evbuffer_add_buffer(s->body, nb);
	evbuffer_free(nb);
	s->strip_usage = 1;
}

void
session_request_complete(struct session *s)
{
	const struct conf *conf = s->rt->conf;
	size_t		 pathlen;
	const char	*q;
	struct jsonr	 body[BODY_NKEYS];
	struct body_refusal why;
	int		 json;

	session_identity(s);
	q = memchr(s->target, '?', s->target_len);
	pathlen = q ? (size_t)(q - s->target) : s->target_len;
	if (s->method == HTTP_POST && pathlen == strlen(CANCEL_NOTE_PATH) &&
	    memcmp(s->target, CANCEL_NOTE_PATH, pathlen) == 0) {
		session_note_receive(s);
		return;
	}
	session_credential(s);
	if (session_cors_request(s, pathlen) == -1)
		return;			/* a preflight, answered here */
	if (s->method == HTTP_POST && strncmp(s->target, conf->cancel_api_prefix,
	    strlen(conf->cancel_api_prefix)) == 0) {
		if (session_cors_check(s) == 0)
			session_cancel_api(s);
		return;
	}
	if (session_grpc_request(s) == -1 || session_peer_loop(s) == -1)
		return;
	session_peer_request(s);
	registry_add(&s->w->registry, s);
	if ((json = session_body_json(s, body, &s->model, &why)) == -1) {
		session_refuse(s, why.status, why.code, why.msg);
		return;
	}
	s->route = conf_route_find(conf, s->target, pathlen, s->model);
	if (s->route == NULL) {
		session_refuse(s, 404, "no_route",
		    "no route matches this path and model");
		return;
	}
	if (session_cors_route(s, s->route->cors) == -1)
		return;
	session_grpc_route(s);
	if (session_client_key(s) == -1)
		return;
	if (json == 1 && s->route->stream_usage == CONF_STREAM_USAGE_INJECT &&
	    !s->route->upstream->peer)
		session_inject_usage(s, body);
	s->up_conf = s->route->upstream;
	s->phase = PHASE_CONNECTING;
	s->t_connect_us = clock_mono_us();
	session_timer_update(s);
	upstream_start(s);
}

void
session_upstream_connected(struct session *s)
{
	if (session_closed(s))
		return;
	if (s->up != NULL && !s->up->reused)
		metrics_observe(&s->w->metrics.connect,
		    clock_mono_us() - s->t_connect_us);
	if (s->up != NULL)
		s->up_protocol = s->up->proto->name;
	upstream_send_request(s);
	s->t_sent_us = clock_mono_us();
	/*
	 * Nothing will send this request again (only a reused connection is
	 * retried, only a route with fallbacks left tries elsewhere): its
	 * head and body need not wait in memory for the whole stream.
	 */
	if (s->up != NULL && !s->up->reused && (s->route == NULL ||
	    s->try_idx >= s->route->nfallback)) {
		headers_free(&s->req_headers);
		evbuffer_free(s->body);
		s->body = NULL;
	}
	s->phase = PHASE_WAITING_FIRST_BYTE;
	session_timer_update(s);
}

static int64_t
session_deadline(uint64_t from, int64_t ms)
{
	return ms > 0 ? (int64_t)(from + (uint64_t)ms * 1000) : -1;
}

void
session_request_deadline(struct session *s, uint64_t from)
{
	s->t_request_by_us = session_deadline(from,
	    s->rt->conf->limits.header_timeout_ms);
	session_timer_update(s);
}

/* The nearest deadline for the phase, and which timeout it is. */
static int64_t
session_next_deadline(struct session *s, enum cancel_kind *kind,
    const char **detail)
{
	const struct conf_timeouts *t;
	int64_t		 d = -1, total;

	if (s->phase == PHASE_REQUEST || s->up_conf == NULL) {
		/* Not a cancel: the request is refused (408). */
		*kind = CANCEL_KIND_UNKNOWN;
		*detail = NULL;
		return s->request_done ? -1 : s->t_request_by_us;
	}
	t = &s->up_conf->timeouts;
	switch (s->phase) {
	case PHASE_CONNECTING:
		d = session_deadline(s->t_connect_us, t->connect_ms);
		*kind = CANCEL_KIND_UPSTREAM_ERROR;
		*detail = "connect timed out";
		break;
	case PHASE_WAITING_FIRST_BYTE:
		d = session_deadline(s->t_sent_us, t->first_byte_ms);
		*kind = CANCEL_KIND_FIRST_BYTE_TIMEOUT;
		*detail = NULL;
		break;
	case PHASE_STREAMING:
		d = session_deadline(s->t_last_byte_us, t->idle_ms);
		*kind = CANCEL_KIND_IDLE_TIMEOUT;
		*detail = NULL;
		break;
	default:
		break;
	}
	total = session_deadline(s->t_start_us, t->total_ms);
	if (total >= 0 && (d < 0 || total < d)) {
		d = total;
		*kind = CANCEL_KIND_TOTAL_TIMEOUT;
		*detail = NULL;
	}
	/* A gRPC client's deadline is this hop's too. */
	if (s->grpc_deadline_us >= 0 && (d < 0 || s->grpc_deadline_us < d)) {
		d = s->grpc_deadline_us;
		*kind = CANCEL_KIND_TOTAL_TIMEOUT;
		*detail = "the client's grpc-timeout passed";
	}
	return d;
}

void
session_timer_update(struct session *s)
{
	enum cancel_kind kind;
	const char	*detail;
	int64_t		 d, now;
	struct timeval	 tv;

	if (s->state != SESSION_LIVE)
		return;
	d = session_next_deadline(s, &kind, &detail);
	if (d < 0) {
		evtimer_del(s->timer);
		return;
	}
	now = (int64_t)clock_mono_us();
	d = d > now ? d - now : 0;
	tv.tv_sec = d / 1000000;
	tv.tv_usec = d % 1000000;
	evtimer_add(s->timer, &tv);
}

/* Idle deadlines move with every read without touching the timer; when
 * it fires early, it is simply re-armed. */
static void
session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	struct session_end e = { .cancel = 1, .via = CANCEL_VIA_TIMER,
	    .direction = CANCEL_DIR_DOWNSTREAM };
	int64_t		 d;

	switch (s->state) {
	case SESSION_AWAITING_NOTE:
		session_peer_note_timeout(s);
		return;
	case SESSION_DRAINING:
		session_drain_finish(s, SESSION_DRAIN_MAX_MS);
		return;
	case SESSION_LIVE:
		break;
	default:
		return;
	}
	d = session_next_deadline(s, &e.kind, &e.detail);
	if (d < 0)
		return;
	if (d > (int64_t)clock_mono_us()) {
		session_timer_update(s);
		return;
	}
	if (s->phase == PHASE_REQUEST) {
		session_refuse(s, 408, "request_timeout", "the request (head "
		    "and body) did not arrive within header_timeout_ms");
		return;
	}
	session_close(s, &e);
}

void
session_upstream_failed(struct session *s, enum cancel_kind k,
    enum cancel_via via, const char *detail)
{
	struct session_end e = { .cancel = 1, .kind = k, .via = via,
	    .direction = CANCEL_DIR_DOWNSTREAM, .detail = detail };

	if (k == CANCEL_KIND_UPSTREAM_ERROR && via != CANCEL_VIA_UPSTREAM_STATUS
	    && session_fallback(s, detail ? detail : "upstream error"))
		return;
	session_close(s, &e);
}

void
session_upstream_closed(struct session *s, int rst)
{
	struct session_end e = { .cancel = 1,
	    .kind = CANCEL_KIND_UPSTREAM_CLOSED,
	    .via = rst ? CANCEL_VIA_RST : CANCEL_VIA_EOF,
	    .direction = CANCEL_DIR_DOWNSTREAM };

	if (!s->resp_head_sent && s->phase == PHASE_WAITING_FIRST_BYTE)
		e.detail = "closed before sending a response";
	session_close(s, &e);
}

void
session_client_gone(struct session *s, enum cancel_via via)
{
	struct session_end e = { .cancel = 1,
	    .kind = CANCEL_KIND_CLIENT_DISCONNECT, .via = via,
	    .direction = CANCEL_DIR_UPSTREAM };

	s->client = NULL;
	session_close(s, &e);
}

void
session_cancel(struct session *s, enum cancel_kind kind, enum cancel_via via)
{
	struct session_end e = { .cancel = 1, .kind = kind, .via = via,
	    .direction = CANCEL_DIR_UPSTREAM };

	session_close(s, &e);
}

void
session_refuse(struct session *s, int status, const char *code,
    const char *message)
{
	struct session_end e = { .error = 1 };

	if (s->request_id[0] == '\0')
		session_identity(s);
	if (s->client != NULL && !s->resp_head_sent && s->grpc)
		session_grpc_refuse(s, status, message);
	else if (s->client != NULL && !s->resp_head_sent)
		downstream_write_error(s->client, s, status, code, message,
		    NULL);
	session_close(s, &e);
}

/*
 * The one teardown. It closes the side that did not start the cancel
 * first (the model's stream when the client left), then, unless a peer's
 * note is still due, finishes: tells the client what happened if it is
 * still there, writes the records, and hands the session to the reaper;
 * memory is freed at the end of the loop turn.
 */
void
session_close(struct session *s, const struct session_end *e)
{
	struct cancel_record r;
	uint64_t	 t_detect;
	int		 had_upstream;

	if (s->state == SESSION_DRAINING) {
		session_drain_finish(s, session_drain_reason(e));
		return;
	}
	if (session_closed(s))
		return;
	if (e->cancel && session_drain_start(s, e))
		return;		/* reading on to learn the usage */
	session_state_set(s, SESSION_CLOSING);
	t_detect = clock_mono_us();
	evtimer_del(s->timer);
	if (s->request_id[0] == '\0')
		session_identity(s);	/* from what of the head arrived */

	had_upstream = s->up != NULL || s->dns != NULL || s->up_stream != NULL;
	if (!e->cancel && s->resp_done)
		upstream_release(s);	/* kept if the connection allows */
	else
		upstream_abort(s);
	s->end = *e;
	s->end.path_in = NULL;
	s->t_detect_us = t_detect;
	s->detect_to_close_us = -1;
	if (e->cancel && e->direction == CANCEL_DIR_UPSTREAM && had_upstream)
		s->detect_to_close_us = (int64_t)(clock_mono_us() - t_detect);
	if (e->cancel && session_peer_defer(s, e))
		return;		/* the record waits for the peer's note */
	if (e->cancel) {
		session_cancel_record(s, e, &r, t_detect);
		r.detect_to_close_us = s->detect_to_close_us;
		session_finish(s, &r);
	} else
		session_finish(s, NULL);
}

/* Whether the cancel started at or above this hop, so that a peer
 * upstream must be told why its stream was closed. */
static int
session_tells_peer(const struct session *s)
{
	const struct session_end *e = &s->end;

	if (s->up_conf == NULL || !s->up_conf->peer || s->up_addrlen == 0)
		return 0;
	if (e->via == CANCEL_VIA_SSE_ERROR || e->via == CANCEL_VIA_UPSTREAM_STATUS)
		return 0;
	if ((e->kind == CANCEL_KIND_UPSTREAM_ERROR ||
	    e->kind == CANCEL_KIND_UPSTREAM_CLOSED) && e->via != CANCEL_VIA_TIMER)
		return 0;
	return 1;
}

/* Second half of the teardown: the client, the records, the reaper. */
void
session_finish(struct session *s, struct cancel_record *r)
{
	const struct session_end *e = &s->end;
	struct client	*c;
	struct jsonw	 records;
	char		 stack[6144];
	size_t		 cancel_len = 0;

	session_state_set(s, SESSION_DONE);
	jsonw_init(&records, stack, sizeof(stack));
	c = s->client;
	if (r != NULL) {
		if (c != NULL) {
			if (s->grpc && (s->resp_head_sent || s->request_done))
				session_grpc_cancel(s, r);
			else if (!s->resp_head_sent && s->request_done)
				downstream_write_cancel_error(s->client, s, r,
				    e->proxy_status_in);
			else if (s->resp_head_sent)
				downstream_write_sse_error(s->client, s, r);
			else
				c->proto->reset(s);
			if (e->direction == CANCEL_DIR_DOWNSTREAM)
				r->detect_to_close_us = (int64_t)(
				    clock_mono_us() - s->t_detect_us);
		}
		cancel_chain_record(&records, r);
		cancel_len = records.len;
		metrics_cancel(&s->w->metrics, r);
		if (session_tells_peer(s))
			upstream_note_send(s, r);
	}
	if (!s->is_note) {
		session_log_request(s, e, s->t_detect_us, &records);
		metrics_request(&s->w->metrics, s->route ?
		    s->route->path_prefix : NULL, s->up_conf ?
		    s->up_conf->name : NULL, s->status ? s->status :
		    (e->cancel && s->client == NULL ? 499 : 0));
	}
	/* Both records of a teardown go out with one write(2). */
	if (cancel_len > 0 && !records.oom)
		recent_cancel_add(s->request_id, records.buf, cancel_len);
	log_write(&records);
	jsonw_free(&records);
	metrics_add(&s->w->metrics.bytes_out, s->bytes_out);
	metrics_add(&s->w->metrics.sse_events, s->sse_events);
	metrics_live(&s->w->metrics, -1);
	session_client_key_release(s);

	if ((c = s->client) != NULL) {
		c->proto->detach(s);
		s->client = NULL;
	}
	registry_remove(&s->w->registry, s);
	TAILQ_REMOVE(&s->w->sessions, s, entry);
	TAILQ_INSERT_TAIL(&s->w->dead_sessions, s, entry);
	worker_schedule_reap(s->w);
}
