/* session_llm: what a proxy for LLM traffic adds to a session — reading
 * on after the client left to learn the bill (drain), trying fallback
 * upstreams before anything reached the client, the proxy's own client
 * keys with per-key stream limits, and the extra members of the records
 * (usage, key name, drain, billing notes). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "downstream/downstream.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "upstream/upstream.h"

static const char *const drain_end_names[] = {
	"", "complete", "max_ms", "max_bytes", "upstream_closed", "canceled",
};

/*
 * The client left a "drain" route while the model was answering: keep
 * reading (bounded by drain.max_ms and drain.max_bytes) only to learn the
 * usage. Returns 1 when the drain started and the teardown must wait.
 */
int
session_drain_start(struct session *s, const struct session_end *e)
{
	const struct conf_route	*r = s->route;
	struct timeval		 tv;

	if (e->kind != CANCEL_KIND_CLIENT_DISCONNECT || r == NULL ||
	    r->on_client_disconnect != CONF_DISCONNECT_DRAIN || s->up == NULL ||
	    (s->phase != PHASE_WAITING_FIRST_BYTE &&
	    s->phase != PHASE_STREAMING) || r->drain_max_ms <= 0)
		return 0;
	session_state_set(s, SESSION_DRAINING);
	s->end = *e;
	s->end.path_in = NULL;
	s->t_detect_us = clock_mono_us();
	s->drain_phase = s->phase;
	tv.tv_sec = r->drain_max_ms / 1000;
	tv.tv_usec = (r->drain_max_ms % 1000) * 1000;
	evtimer_add(s->timer, &tv);
	/* Nobody reads the client side any more: no backpressure. */
	if (s->paused)
		upstream_resume(s);
	return 1;
}

/* The drain is over (why: complete, max_ms, max_bytes, upstream_closed). */
void
session_drain_finish(struct session *s, int why)
{
	struct cancel_record	 r;

	s->drain_end = why;
	session_state_set(s, SESSION_CLOSING);
	evtimer_del(s->timer);
	upstream_abort(s);
	s->phase = s->drain_phase;
	session_cancel_record(s, &s->end, &r, s->t_detect_us);
	r.detect_to_close_us = (int64_t)(clock_mono_us() - s->t_detect_us);
	session_finish(s, &r);
}

/* Maps a teardown reason that arrives during a drain to how it ended. */
int
session_drain_reason(const struct session_end *e)
{
	if (!e->cancel)
		return SESSION_DRAIN_COMPLETE;
	if (e->via == CANCEL_VIA_TIMER)
		return SESSION_DRAIN_MAX_MS;
	if (e->kind == CANCEL_KIND_UPSTREAM_CLOSED ||
	    e->kind == CANCEL_KIND_UPSTREAM_ERROR)
		return SESSION_DRAIN_UPSTREAM_CLOSED;
	return SESSION_DRAIN_CANCELED;
}

/* Counts drained bytes; -1 once past drain.max_bytes (stops the parser). */
int
session_drain_bytes(struct session *s, size_t n)
{
	s->drain_bytes += n;
	if ((int64_t)s->drain_bytes > s->route->drain_max_bytes) {
		s->drain_stop = 1;
		return -1;
	}
	return 0;
}

/*
 * Tries the route's next fallback upstream, only while nothing has reached
 * the client and the client is still there. Returns 1 when a try started.
 */
int
session_fallback(struct session *s, const char *why)
{
	const struct conf_route	*r = s->route;
	struct session_try	*t;

	if (r == NULL || s->try_idx >= r->nfallback || s->resp_head_sent ||
	    s->bytes_out > 0)
		return 0;
	if (s->client == NULL || s->state == SESSION_DRAINING) {
		log_msg(LOG_LEVEL_INFO, "fallback_suppressed", "request %s: "
		    "not trying upstream %s after %s: the client has gone",
		    s->request_id, r->fallback[s->try_idx]->name, why);
		return 0;
	}
	if (s->tries == NULL)
		s->tries = calloc(SESSION_TRIES_MAX, sizeof(*s->tries));
	if (s->tries != NULL && s->ntries < SESSION_TRIES_MAX) {
		t = &s->tries[s->ntries++];
		t->upstream = s->up_conf->name;
		snprintf(t->outcome, sizeof(t->outcome), "%s", why);
	}
	upstream_abort(s);
	s->up_conf = r->fallback[s->try_idx++];
	headers_clear(&s->resp_headers);
	s->status = 0;
	s->retried = 0;
	s->phase = PHASE_CONNECTING;
	s->t_connect_us = clock_mono_us();
	session_timer_update(s);
	upstream_start(s);
	return 1;
}

/* Live streams per client key, across workers and reloads. */
static struct {
	pthread_mutex_t	 lock;
	char		 name[1024][64];
	int		 count[1024];
	int		 n;
} keys = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int *
session_key_counter(const char *name)
{
	int	 i, *c = NULL;

	pthread_mutex_lock(&keys.lock);
	for (i = 0; i < keys.n; i++)
		if (strcmp(keys.name[i], name) == 0)
			c = &keys.count[i];
	if (c == NULL && keys.n < 1024) {
		snprintf(keys.name[keys.n], sizeof(keys.name[0]), "%s", name);
		c = &keys.count[keys.n++];
	}
	pthread_mutex_unlock(&keys.lock);
	return c;
}

/* The credential the client presented as the proxy's own key. */
static const char *
session_presented_key(struct session *s, size_t *n)
{
	const char	*v;

	if ((v = headers_get(&s->req_headers, "authorization", n)) != NULL) {
		if (*n > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
			*n -= 7;
			return v + 7;
		}
		return NULL;
	}
	return headers_get(&s->req_headers, "x-api-key", n);
}

/*
 * clients.keys: the client's key, compared by SHA-256 in constant time
 * (every configured key is compared), its routes and its stream limit.
 * Returns -1 when the request was refused.
 */
int
session_client_key(struct session *s)
{
	const struct conf	*conf = s->rt->conf;
	const struct conf_client_key *k, *match = NULL;
	uint8_t			 h[32];
	const char		*v;
	size_t			 n, i, j;
	int			*cnt, ok = 0;

	if (!conf->clients_enabled)
		return 0;
	if ((v = session_presented_key(s, &n)) == NULL || n == 0) {
		session_refuse(s, 401, "invalid_api_key", "no API key given: "
		    "send Authorization: Bearer KEY or x-api-key");
		return -1;
	}
	SHA256((const unsigned char *)v, n, h);
	for (i = 0; i < conf->nclient_keys; i++)
		if (CRYPTO_memcmp(h, conf->client_keys[i].key_sha256, 32) == 0)
			match = &conf->client_keys[i];
	if ((k = match) == NULL) {
		session_refuse(s, 401, "invalid_api_key",
		    "incorrect API key provided");
		return -1;
	}
	s->client_key = k->name;
	for (j = 0; j < k->nroutes; j++)
		if (strcmp(k->routes[j], "*") == 0 ||
		    strcmp(k->routes[j], s->route->upstream_name) == 0)
			ok = 1;
	if (!ok) {
		session_refuse(s, 403, "route_not_allowed",
		    "this API key may not use this route");
		return -1;
	}
	if (k->max_streams > 0) {
		if ((cnt = session_key_counter(k->name)) == NULL)
			return 0;
		if (__atomic_add_fetch(cnt, 1, __ATOMIC_ACQ_REL) >
		    k->max_streams) {
			__atomic_sub_fetch(cnt, 1, __ATOMIC_ACQ_REL);
			s->retry_after = 1;
			session_refuse(s, 429, "max_streams",
			    "this API key has reached its max_streams");
			return -1;
		}
		s->key_counter = cnt;
	}
	return 0;
}

/* Gives back the key's stream slot (at the end of the session). */
void
session_client_key_release(struct session *s)
{
	if (s->key_counter != NULL) {
		__atomic_sub_fetch(s->key_counter, 1, __ATOMIC_ACQ_REL);
		s->key_counter = NULL;
	}
}

/* Members both records carry: the client's protocol and stream, key
 * name, tries, drain, billing. */
void
session_extra_members(struct jsonw *w, const void *arg)
{
	const struct session	*s = arg;
	size_t			 i;

	jsonw_kstr(w, "protocol", s->protocol);
	if (s->stream_id != 0) {
		/* Which stream of which connection (its id on the worker). */
		jsonw_kint(w, "stream_id", s->stream_id);
		jsonw_kuint(w, "connection", s->conn_id);
	}
	if (s->client_key != NULL)
		jsonw_kstr(w, "client_key", s->client_key);
	if (s->grpc_method != NULL)
		jsonw_kstr(w, "grpc_method", s->grpc_method);
	if (s->grpc_status >= 0)
		jsonw_kint(w, "grpc_status", s->grpc_status);
	if (s->cors_result != CORS_NONE)
		jsonw_kstr(w, "cors", session_cors_result_name(s->cors_result));
	if (s->trailers_dropped > 0)
		jsonw_kuint(w, "trailers_dropped", s->trailers_dropped);
	if (s->up_protocol != NULL)
		jsonw_kstr(w, "upstream_protocol", s->up_protocol);
	if (s->ntries > 0) {
		jsonw_lkey(w, "tries");
		jsonw_arr_open(w);
		for (i = 0; i < s->ntries; i++) {
			jsonw_obj_open(w);
			jsonw_kstr(w, "upstream", s->tries[i].upstream);
			jsonw_kstr(w, "outcome", s->tries[i].outcome);
			jsonw_obj_close(w);
		}
		jsonw_arr_close(w);
	}
	if (s->drain_end != 0) {
		jsonw_lkey(w, "drain");
		jsonw_obj_open(w);
		jsonw_kuint(w, "ms", (clock_mono_us() - s->t_detect_us) / 1000);
		jsonw_kuint(w, "bytes", s->drain_bytes);
		jsonw_kstr(w, "ended_by", drain_end_names[s->drain_end]);
		jsonw_kbool(w, "usage_learned", s->usage.seen);
		jsonw_obj_close(w);
	}
}

/* The cancel record's extra members: the above, usage, billing note. */
void
session_cancel_extra(struct jsonw *w, const void *arg)
{
	const struct session	*s = arg;
	int			 b;

	session_extra_members(w, s);
	usage_members(w, &s->usage);
	if (s->end.direction != CANCEL_DIR_UPSTREAM || s->up_conf == NULL ||
	    (s->drain_phase ? s->drain_phase : s->phase) < PHASE_WAITING_FIRST_BYTE)
		return;
	jsonw_lkey(w, "on_client_disconnect");
	jsonw_str(w, s->route != NULL && s->route->on_client_disconnect ==
	    CONF_DISCONNECT_DRAIN && s->drain_end ? "drain" : "cancel");
	if ((b = s->up_conf->billing_stops_on_cancel) != 1) {
		jsonw_lkey(w, "billing_stops_on_cancel");
		if (b == 0)
			jsonw_bool(w, 0);
		else
			jsonw_str(w, "unknown");
		jsonw_kstr(w, "billing_note", "the provider may still bill for "
		    "tokens generated after the stream was closed");
	}
}
