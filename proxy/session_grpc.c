/* session_grpc: a gRPC call through this hop — its method for the records,
 * its grpc-timeout as this hop's deadline (sent on, shortened by the time
 * spent here), and every error this hop makes told as a gRPC status with
 * the cancel path in grpc-message, never as a bare HTTP error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancel_chain/cancel_grpc.h"
#include "downstream/downstream.h"
#include "proxy/log.h"
#include "proxy/session.h"

#define GRPC_MESSAGE_MAX	1024	/* a grpc-message, encoded */
#define GRPC_HOP_MARGIN_US	5000	/* the next hop's deadline comes
					 * this much before ours */
/* Between cancelproxy hops: the cancel in the trailers, as JSON. */
#define GRPC_CANCEL_FIELD	"x-cancelproxy-cancel"

/* Adds "name: value" to a header list. */
static int
session_grpc_field(struct header_list *hl, const char *name,
    const char *value)
{
	if (headers_add_name(hl, name, strlen(name)) == -1)
		return -1;
	headers_name_done(hl);
	return headers_add_value(hl, value, strlen(value));
}

/*
 * Ends the call with status and message (plain text, percent-encoded
 * here): a Trailers-Only answer (HTTP 200, the status in the one HEADERS
 * block) when nothing was sent yet, trailers after the messages otherwise.
 */
static void
session_grpc_end_with(struct session *s, int status, const char *message,
    const char *cancel)
{
	const struct downstream_proto *proto = s->client->proto;
	char		 code[8], msg[GRPC_MESSAGE_MAX];
	struct header_list trailers;

	snprintf(code, sizeof(code), "%d", status);
	grpc_message_encode(message, strlen(message), msg, sizeof(msg));
	s->grpc_status = status;
	if (!s->resp_head_sent) {
		struct downstream_head h = { .status = 200,
		    .content_length = 0, .trailers_only = 1 };

		downstream_head_add(&h, "Content-Type", "application/grpc");
		downstream_head_add(&h, "grpc-status", code);
		downstream_head_add(&h, "grpc-message", msg);
		downstream_head_add(&h, GRPC_CANCEL_FIELD, cancel);
		if (s->request_id[0] != '\0')
			downstream_head_add(&h, "X-Request-Id", s->request_id);
		proto->send_head(s, &h);
		s->status = 200;
		s->resp_head_sent = 1;
		return;
	}
	headers_init(&trailers);
	if (session_grpc_field(&trailers, "grpc-status", code) == -1 ||
	    session_grpc_field(&trailers, "grpc-message", msg) == -1 ||
	    (cancel != NULL && session_grpc_field(&trailers, GRPC_CANCEL_FIELD,
	    cancel) == -1)) {
		headers_free(&trailers);
		proto->reset(s);
		return;
	}
	proto->end(s, &trailers);
	headers_free(&trailers);
}

void
session_grpc_end(struct session *s, int status, const char *message)
{
	session_grpc_end_with(s, status, message, NULL);
}

/*
 * A gRPC request: its method, and its grpc-timeout as this hop's
 * deadline; a malformed one is refused with INVALID_ARGUMENT. Returns 0 to
 * go on, -1 when the call was answered.
 */
int
session_grpc_request(struct session *s)
{
	const char	*ct, *v, *q;
	size_t		 len, n;
	uint64_t	 us;

	ct = headers_get(&s->req_headers, "content-type", &len);
	if (!grpc_content_type_is(ct, len))
		return 0;
	s->grpc = 1;
	q = memchr(s->target, '?', s->target_len);
	n = q != NULL ? (size_t)(q - s->target) : s->target_len;
	if ((s->grpc_method = strndup(s->target, n)) == NULL)
		return 0;
	if ((v = headers_get(&s->req_headers, "grpc-timeout", &len)) == NULL)
		return 0;
	if (grpc_timeout_parse(v, len, &us) == -1) {
		struct session_end e = { .error = 1 };

		if (s->client != NULL)
			session_grpc_end(s, GRPC_STATUS_INVALID_ARGUMENT,
			    "malformed grpc-timeout: 1 to 8 digits and one of "
			    "H M S m u n");
		session_close(s, &e);
		return -1;
	}
	s->grpc_deadline_us = (int64_t)(s->t_start_us +
	    (us > INT64_MAX / 2 ? INT64_MAX / 2 : us));
	return 0;
}

/*
 * The deadline sent upstream: what is left of the client's grpc-timeout
 * or of this hop's total timeout, whichever comes first, less a margin,
 * so that the hop behind times out a little before this one and its
 * message names it.
 */
/* The route may cap a client's deadline (routes[].grpc_timeout_max_ms);
 * a call without a grpc-timeout gets the cap as its deadline. */
void
session_grpc_route(struct session *s)
{
	int64_t		 cap;

	if (!s->grpc || s->route == NULL || s->route->grpc_timeout_max_ms <= 0)
		return;
	cap = (int64_t)(s->t_start_us +
	    (uint64_t)s->route->grpc_timeout_max_ms * 1000);
	if (s->grpc_deadline_us < 0 || cap < s->grpc_deadline_us)
		s->grpc_deadline_us = cap;
}

size_t
session_grpc_timeout_out(const struct session *s, char *buf)
{
	uint64_t	 now = clock_mono_us(), left;
	int64_t		 d = s->grpc_deadline_us, total;

	if (!s->grpc)
		return 0;
	if (s->up_conf != NULL && s->up_conf->timeouts.total_ms > 0) {
		total = (int64_t)(s->t_start_us +
		    (uint64_t)s->up_conf->timeouts.total_ms * 1000);
		if (d < 0 || total < d)
			d = total;
	}
	if (d < 0)
		return 0;
	left = (uint64_t)d > now ? (uint64_t)d - now : 0;
	if (left > 2 * GRPC_HOP_MARGIN_US)
		left -= GRPC_HOP_MARGIN_US;
	return grpc_timeout_format(left, buf);
}

/* This hop refused the call (no route, a key, a limit): the same answer
 * as a gRPC status. */
void
session_grpc_refuse(struct session *s, int http_status, const char *message)
{
	session_grpc_end(s, grpc_status_for_http(http_status),
	    message);
}

/* The call ended by a cancel at or through this hop: its status, and the
 * cancel message with its path, "[canceled path: core -> edge] ...". A
 * stream the upstream reset without trailers gets the status gRPC maps
 * from the reset's code. */
void
session_grpc_cancel(struct session *s, const struct cancel_record *r)
{
	char	 msg[512];
	int	 status = grpc_status_for_cancel(r->kind, r->via);

	struct jsonw	 w;
	char		 stack[2048];

	if (s->up_reset_code != 0 && (r->kind == CANCEL_KIND_UPSTREAM_CLOSED ||
	    r->kind == CANCEL_KIND_UPSTREAM_ERROR))
		status = grpc_status_for_reset(s->up_reset_code - 1);
	cancel_chain_message(r, msg, sizeof(msg));
	if (!s->from_peer) {
		session_grpc_end_with(s, status, msg, NULL);
		return;
	}
	/* A cancelproxy in front learns the cancel whole, as from an SSE
	 * error: origin, kind and path (DESIGN.md §5). */
	jsonw_init(&w, stack, sizeof(stack));
	cancel_chain_error_json(&w, r);
	session_grpc_end_with(s, status, msg, w.oom ? NULL : w.buf);
	jsonw_free(&w);
}

/*
 * A peer hop ended the call with its own cancel, in its trailers (or its
 * Trailers-Only head, held for this): it becomes this hop's cancel, so the
 * record here tells the same story and the client's status and message
 * carry this hop too. Returns 1 when it did, 0 when the answer passes on.
 */
int
session_grpc_peer_end(struct session *s)
{
	struct header_list *hl = s->grpc_held ? &s->resp_headers :
	    &s->resp_trailers;
	struct cancel_note note;
	struct session_end e;
	const char	*v;
	size_t		 len;

	if (!s->grpc || !s->up_conf->peer ||
	    (v = headers_get(hl, GRPC_CANCEL_FIELD, &len)) == NULL ||
	    cancel_error_parse(v, len, &note) == -1 ||
	    (s->peer_note = malloc(sizeof(note))) == NULL) {
		if (s->grpc_held)
			session_grpc_release_head(s);
		return 0;
	}
	*s->peer_note = note;
	memset(&e, 0, sizeof(e));
	e.cancel = 1;
	e.kind = note.kind;
	e.via = CANCEL_VIA_UPSTREAM_STATUS;
	e.direction = CANCEL_DIR_DOWNSTREAM;
	e.path_in = &s->peer_note->path;
	s->resp_done = 1;
	session_close(s, &e);
	return 1;
}

/* A peer's Trailers-Only answer that carries no cancel of ours: sent on as
 * it came. */
void
session_grpc_release_head(struct session *s)
{
	struct downstream_head h = { .status = s->resp_status,
	    .content_length = 0, .fields = &s->resp_headers, .via = 1,
	    .trailers_only = 1 };
	const char	*v;

	s->grpc_held = 0;
	if (s->client == NULL)
		return;
	if ((v = headers_get(&s->resp_headers, "grpc-status", NULL)) != NULL)
		s->grpc_status = atoi(v);
	s->client->proto->send_head(s, &h);
	s->status = s->resp_status;
	s->resp_head_sent = 1;
}

/*
 * The upstream's trailers on their way to the client: a gRPC status is
 * noted for the records, and a grpc-message that carries a cancel path
 * gets this hop added. Returns the list to send.
 */
const struct header_list *
session_grpc_trailers(struct session *s)
{
	struct header_list *hl = &s->resp_trailers, out;
	const char	*v;
	char		 ext[GRPC_MESSAGE_MAX];
	size_t		 i, len, n = 0;

	if (!s->grpc)
		return hl;
	if ((v = headers_get(hl, "grpc-status", NULL)) != NULL)
		s->grpc_status = atoi(v);
	if ((v = headers_get(hl, "grpc-message", &len)) == NULL ||
	    (n = session_grpc_extend_message(v, len, ext, sizeof(ext))) == 0)
		return hl;
	headers_init(&out);
	for (i = 0; i < hl->n; i++) {
		int msg = headers_name_is(hl, i, "grpc-message");

		if (headers_add_name(&out, headers_name(hl, i),
		    hl->h[i].nlen) == -1)
			goto fail;
		headers_name_done(&out);
		if (headers_add_value(&out, msg ? ext : headers_value(hl, i),
		    msg ? n : hl->h[i].vlen) == -1)
			goto fail;
	}
	headers_free(hl);
	*hl = out;
	return hl;
fail:
	headers_free(&out);
	return hl;
}

/*
 * A peer's grpc-message that carries a cancel path gets this hop added as
 * it passes, as a peer's SSE error does: "[canceled path: core] ..." from
 * core reads "[canceled path: core -> edge] ..." after edge. Returns the
 * new encoded value in out, or 0 when value carries no path.
 */
size_t
session_grpc_extend_message(const char *value, size_t len, char *out,
    size_t cap)
{
	static const char lead[] = "[canceled path: ";
	char		 text[GRPC_MESSAGE_MAX], joined[GRPC_MESSAGE_MAX + 80];
	const char	*end;
	size_t		 n;
	int		 k;

	n = grpc_message_decode(value, len, text, sizeof(text));
	if (n < sizeof(lead) || strncmp(text, lead, sizeof(lead) - 1) != 0 ||
	    (end = memchr(text, ']', n)) == NULL)
		return 0;
	k = snprintf(joined, sizeof(joined), "%.*s -> %s%s",
	    (int)(end - text), text, log_hop(), end);
	if (k < 0 || (size_t)k >= sizeof(joined))
		return 0;
	return grpc_message_encode(joined, (size_t)k, out, cap);
}
