/* session_record: what a session tells the log and the admin — the
 * request record, the cancel record's fields, and a live stream's line
 * in GET /streams. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "downstream/downstream.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/session.h"
#include "proxy/session_priv.h"
#include "upstream/upstream.h"

static const char *
session_outcome(const struct session *s, const struct session_end *e)
{
	if (e->cancel)
		return "canceled";
	if (e->error)
		return "error";
	return "completed";
}

static void
session_ms(struct jsonw *w, const char *key, uint64_t from, uint64_t to)
{
	jsonw_key(w, key);
	if (from == 0 || to < from)
		jsonw_null(w);
	else
		jsonw_double(w, (double)(to - from) / 1000.0, 3);
}

/* Appends the "request" record, once per finished request, to w. */
void
session_log_request(struct session *s, const struct session_end *e,
    uint64_t now, struct jsonw *w)
{
	size_t		 pathlen;
	const char	*q;

	log_record_begin(w, LOG_LEVEL_INFO, "request");
	jsonw_kstr(w, "request_id", s->request_id);
	jsonw_kstr(w, "trace_id", s->trace_id);
	jsonw_kstr(w, "client", s->client_addr);
	jsonw_kstr(w, "method", s->target ?
	    llhttp_method_name((llhttp_method_t)s->method) : NULL);
	jsonw_lkey(w, "path");
	if (s->target != NULL) {
		q = memchr(s->target, '?', s->target_len);
		pathlen = q ? (size_t)(q - s->target) : s->target_len;
		jsonw_strn(w, s->target, pathlen);
	} else
		jsonw_null(w);
	jsonw_kstr(w, "model", s->model);
	jsonw_kstr(w, "route", s->route ? s->route->path_prefix : NULL);
	jsonw_kstr(w, "upstream", s->up_conf ? s->up_conf->name : NULL);
	jsonw_kint(w, "status", s->status ? s->status :
	    (e->cancel && s->client == NULL ? 499 : 0));
	jsonw_kstr(w, "outcome", session_outcome(s, e));
	session_ms(w, "duration_ms", s->t_start_us, now);
	session_ms(w, "ttfb_ms", s->t_sent_us, s->t_first_byte_us);
	jsonw_kuint(w, "bytes_in", s->bytes_in);
	jsonw_kuint(w, "bytes_out", s->bytes_out);
	jsonw_kuint(w, "sse_events", s->sse_events);
	usage_members(w, &s->usage);
	session_extra_members(w, s);
	log_record_close(w);
}

/* One live stream for GET /streams. */
void
session_describe(struct session *s, struct jsonw *w)
{
	jsonw_obj_open(w);
	jsonw_kstr(w, "request_id", s->request_id);
	jsonw_kstr(w, "trace_id", s->trace_id);
	jsonw_kstr(w, "client", s->client_addr);
	jsonw_kstr(w, "protocol", s->protocol);
	jsonw_kuint(w, "connection", s->conn_id);
	if (s->stream_id != 0)
		jsonw_kint(w, "stream_id", s->stream_id);
	jsonw_kstr(w, "route", s->route ? s->route->path_prefix : NULL);
	jsonw_kstr(w, "upstream", s->up_conf ? s->up_conf->name : NULL);
	jsonw_kstr(w, "model", s->model);
	jsonw_kstr(w, "phase", cancel_phase_name(s->phase));
	jsonw_kuint(w, "elapsed_ms", (clock_mono_us() - s->t_start_us) / 1000);
	jsonw_kuint(w, "sse_events", s->sse_events);
	jsonw_kuint(w, "bytes_out", s->bytes_out);
	jsonw_kint(w, "worker", s->w->id);
	jsonw_obj_close(w);
}

/* Fills the cancel record: the path starts at the origin, ends here. */
void
session_cancel_record(struct session *s, const struct session_end *e,
    struct cancel_record *r, uint64_t now)
{
	char	 up[CANCEL_HOP_MAX];

	memset(r, 0, sizeof(*r));
	r->request_id = s->request_id;
	r->trace_id = s->trace_id;
	r->kind = e->kind;
	r->direction = e->direction;
	r->phase = s->phase;
	r->via = e->via;
	r->elapsed_ms = (now - s->t_start_us) / 1000;
	r->detect_to_close_us = -1;
	r->sse_events = s->sse_events;
	r->bytes_out = s->bytes_out;
	r->upstream = s->up_conf ? s->up_conf->name : NULL;
	r->detail = e->detail;
	r->extra = session_cancel_extra;
	r->extra_arg = s;
	cancel_path_init(&r->path);
	if (e->path_in != NULL) {
		int i;

		for (i = 0; i < e->path_in->n; i++)
			cancel_path_add(&r->path, e->path_in->hops[i]);
	} else if (e->origin_hop != NULL)
		cancel_path_add(&r->path, e->origin_hop);
	else if (e->kind == CANCEL_KIND_CLIENT_DISCONNECT ||
	    e->kind == CANCEL_KIND_CLIENT_CANCEL)
		cancel_path_add(&r->path, "client");
	else if ((e->kind == CANCEL_KIND_UPSTREAM_ERROR ||
	    e->kind == CANCEL_KIND_UPSTREAM_CLOSED) && s->up_conf != NULL &&
	    e->via != CANCEL_VIA_TIMER) {
		snprintf(up, sizeof(up), "upstream:%s", s->up_conf->name);
		cancel_path_add(&r->path, up);
	}
	cancel_path_add(&r->path, log_hop());
}
