/* cancel_chain: names, paths, messages and records of cancels. */
#include <stdio.h>
#include <string.h>

#include "cancel_chain/cancel_chain.h"
#include "proxy/log.h"

static const char *const phase_names[] = {
	"request", "connecting", "waiting_first_byte", "streaming",
};
static const char *const phase_words[] = {
	"while sending its request", "while connecting upstream",
	"while waiting for first byte", "mid-stream",
};
static const char *const kind_names[] = {
	"client_disconnect", "client_cancel", "admin", "first_byte_timeout",
	"idle_timeout", "total_timeout", "upstream_error", "upstream_closed",
	"shutdown", "unknown",
};
static const char *const kind_words[] = {
	"client disconnected", "client canceled the request",
	"an operator canceled the stream", "no first byte in time",
	"the stream went idle too long", "the exchange ran out of time",
	"the upstream failed", "the upstream closed the stream early",
	"the proxy shut down", "the previous hop closed without a reason",
};
static const char *const via_names[] = {
	"eof", "rst", "write_error", "timer", "admin", "note", "signal",
	"upstream_status", "sse_error", "rst_stream", "goaway",
};

#define NAME_OF(tab, v)	((unsigned)(v) < sizeof(tab) / sizeof(tab[0]) ? \
			    tab[(v)] : "unknown")

const char *
cancel_phase_name(enum cancel_phase p)
{
	return NAME_OF(phase_names, p);
}

const char *
cancel_kind_name(enum cancel_kind k)
{
	return NAME_OF(kind_names, k);
}

const char *
cancel_via_name(enum cancel_via v)
{
	return NAME_OF(via_names, v);
}

const char *
cancel_direction_name(enum cancel_direction d)
{
	return d == CANCEL_DIR_DOWNSTREAM ? "downstream" : "upstream";
}

/* Parses an origin kind name as written in records and notes. */
int
cancel_kind_parse(const char *s, enum cancel_kind *out)
{
	size_t	 i;

	for (i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (enum cancel_kind)i;
			return 0;
		}
	return -1;
}

void
cancel_path_init(struct cancel_path *p)
{
	p->n = 0;
}

/* Appends a hop name (truncated to CANCEL_HOP_MAX - 1 bytes). */
/* Appends s to the NUL-terminated text in buf (len bytes), cutting it
 * short as snprintf would; returns the new length. Records are written on
 * every cancel, and printf-style formatting cost more than the bytes. */
static size_t
cancel_cat(char *buf, size_t len, size_t off, const char *s)
{
	size_t	 n = strlen(s);

	if (off + 1 >= len)
		return off;
	if (n > len - off - 1)
		n = len - off - 1;
	memcpy(buf + off, s, n);
	off += n;
	buf[off] = '\0';
	return off;
}

int
cancel_path_add(struct cancel_path *p, const char *hop)
{
	if (p->n >= CANCEL_PATH_MAX)
		return -1;
	p->hops[p->n][0] = '\0';
	cancel_cat(p->hops[p->n], CANCEL_HOP_MAX, 0, hop);
	p->n++;
	return 0;
}

void
cancel_path_format(const struct cancel_path *p, char *buf, size_t len)
{
	size_t	 off = 0;
	int	 i;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (i = 0; i < p->n; i++) {
		if (i > 0)
			off = cancel_cat(buf, len, off, " -> ");
		off = cancel_cat(buf, len, off, p->hops[i]);
	}
}

void
cancel_chain_message(const struct cancel_record *r, char *buf, size_t len)
{
	char	 path[CANCEL_PATH_MAX * (CANCEL_HOP_MAX + 4)];

	char	 num[24], *d = num + sizeof(num);
	uint64_t v = r->elapsed_ms;
	size_t	 off;

	*--d = '\0';
	do {
		*--d = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	cancel_path_format(&r->path, path, sizeof(path));
	if (len == 0)
		return;
	buf[0] = '\0';
	/* "[canceled path: P] KIND PHASE after N ms[: DETAIL]" */
	off = cancel_cat(buf, len, 0, "[canceled path: ");
	off = cancel_cat(buf, len, off, path);
	off = cancel_cat(buf, len, off, "] ");
	off = cancel_cat(buf, len, off, NAME_OF(kind_words, r->kind));
	off = cancel_cat(buf, len, off, " ");
	off = cancel_cat(buf, len, off, NAME_OF(phase_words, r->phase));
	off = cancel_cat(buf, len, off, " after ");
	off = cancel_cat(buf, len, off, d);
	off = cancel_cat(buf, len, off, " ms");
	if (r->detail != NULL) {
		off = cancel_cat(buf, len, off, ": ");
		(void)cancel_cat(buf, len, off, r->detail);
	}
}

static void
cancel_chain_origin(struct jsonw *w, const struct cancel_record *r)
{
	jsonw_lkey(w, "origin");
	jsonw_obj_open(w);
	jsonw_kstr(w, "kind", cancel_kind_name(r->kind));
	jsonw_kstr(w, "hop", r->path.n ? r->path.hops[0] : "unknown");
	jsonw_obj_close(w);
}

static void
cancel_chain_path_json(struct jsonw *w, const struct cancel_record *r)
{
	int	 i;

	jsonw_lkey(w, "cancel_path");
	jsonw_arr_open(w);
	for (i = 0; i < r->path.n; i++)
		jsonw_str(w, r->path.hops[i]);
	jsonw_arr_close(w);
}

void
cancel_chain_members(struct jsonw *w, const struct cancel_record *r)
{
	char	 msg[2048];

	jsonw_kstr(w, "request_id", r->request_id);
	jsonw_kstr(w, "trace_id", r->trace_id);
	cancel_chain_origin(w, r);
	cancel_chain_path_json(w, r);
	jsonw_kstr(w, "direction", cancel_direction_name(r->direction));
	jsonw_kstr(w, "phase", cancel_phase_name(r->phase));
	jsonw_kstr(w, "detected_via", cancel_via_name(r->via));
	if (r->upstream != NULL)
		jsonw_kstr(w, "upstream", r->upstream);
	jsonw_kuint(w, "elapsed_ms", r->elapsed_ms);
	jsonw_lkey(w, "detect_to_close_us");
	if (r->detect_to_close_us >= 0)
		jsonw_int(w, r->detect_to_close_us);
	else
		jsonw_null(w);
	jsonw_kuint(w, "sse_events", r->sse_events);
	jsonw_kuint(w, "bytes_out", r->bytes_out);
	if (r->extra != NULL)
		r->extra(w, r->extra_arg);
	cancel_chain_message(r, msg, sizeof(msg));
	jsonw_kstr(w, "message", msg);
}

void
cancel_chain_record(struct jsonw *w, const struct cancel_record *r)
{
	log_record_begin(w, LOG_LEVEL_INFO, "cancel");
	cancel_chain_members(w, r);
	log_record_close(w);
}

void
cancel_chain_log(const struct cancel_record *r)
{
	struct jsonw	 w;
	char		 stack[4096];

	jsonw_init(&w, stack, sizeof(stack));
	cancel_chain_record(&w, r);
	log_write(&w);
	jsonw_free(&w);
}

/* RFC 9209 §2.3 error types for what went wrong at or beyond this hop. */
const char *
cancel_chain_proxy_error(const struct cancel_record *r)
{
	switch (r->kind) {
	case CANCEL_KIND_FIRST_BYTE_TIMEOUT:
	case CANCEL_KIND_TOTAL_TIMEOUT:
		return "http_response_timeout";
	case CANCEL_KIND_IDLE_TIMEOUT:
		return "connection_read_timeout";
	case CANCEL_KIND_UPSTREAM_CLOSED:
		return r->phase == PHASE_STREAMING ?
		    "http_response_incomplete" : "connection_terminated";
	case CANCEL_KIND_UPSTREAM_ERROR:
		if (r->via == CANCEL_VIA_TIMER)
			return "connection_timeout";
		return "destination_unavailable";
	case CANCEL_KIND_SHUTDOWN:
		return "proxy_internal_response";
	default:
		return "proxy_internal_error";
	}
}

int
cancel_chain_http_status(const struct cancel_record *r)
{
	switch (r->kind) {
	case CANCEL_KIND_FIRST_BYTE_TIMEOUT:
	case CANCEL_KIND_IDLE_TIMEOUT:
	case CANCEL_KIND_TOTAL_TIMEOUT:
		return 504;
	case CANCEL_KIND_UPSTREAM_ERROR:
		return r->via == CANCEL_VIA_TIMER ? 504 : 502;
	case CANCEL_KIND_SHUTDOWN:
		return 503;
	default:
		return 502;
	}
}

/*
 * {"error":{"message":..., "type":"proxy_error", "code":KIND,
 *  "cancel":{"request_id","trace_id","origin","cancel_path","phase"}}}
 * The OpenAI SDKs raise an APIError with this message for both the HTTP
 * body and an SSE "event: error".
 */
void
cancel_chain_error_json(struct jsonw *w, const struct cancel_record *r)
{
	char	 msg[2048];

	cancel_chain_message(r, msg, sizeof(msg));
	jsonw_obj_open(w);
	jsonw_lkey(w, "error");
	jsonw_obj_open(w);
	jsonw_kstr(w, "message", msg);
	jsonw_kstr(w, "type", "proxy_error");
	jsonw_kstr(w, "code", cancel_kind_name(r->kind));
	jsonw_lkey(w, "cancel");
	jsonw_obj_open(w);
	jsonw_kstr(w, "request_id", r->request_id);
	jsonw_kstr(w, "trace_id", r->trace_id);
	cancel_chain_origin(w, r);
	cancel_chain_path_json(w, r);
	jsonw_kstr(w, "phase", cancel_phase_name(r->phase));
	jsonw_obj_close(w);
	jsonw_obj_close(w);
	jsonw_obj_close(w);
}
