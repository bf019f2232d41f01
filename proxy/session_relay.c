/* session_relay: the response on its way to the client — the head (or a
 * fallback, or a peer's error held back), body bytes batched per read,
 * SSE events counted and usage learned as they pass, back-pressure, and
 * the end of the response. The client's protocol frames all of it. */
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

static int
session_is_sse(const struct header_list *hl)
{
	const char	*ct = headers_get(hl, "content-type", NULL);

	return ct != NULL && strncasecmp(ct, "text/event-stream", 17) == 0;
}

/*
 * The upstream's response head: a status for a fallback, a peer's error
 * to hold, or the head to pass on. Its fields are in s->resp_headers.
 */
int
session_on_response_head(struct session *s, int status, int64_t length)
{
	struct client	*c = s->client;
	struct downstream_head h = { .status = status, .content_length =
	    length, .fields = &s->resp_headers, .via = 1 };

	if (c == NULL && s->state != SESSION_DRAINING)
		return -1;
	s->resp_status = status;
	s->resp_length = length;
	if ((status == 429 || status >= 500) && s->route != NULL &&
	    s->try_idx < s->route->nfallback) {
		char why[32];

		if (c != NULL && s->state != SESSION_DRAINING) {
			s->fallback_status = status;
			return -1;	/* stop here, try the next upstream */
		}
		snprintf(why, sizeof(why), "status %d", status);
		session_fallback(s, why);	/* logs the suppression */
	}
	if (c != NULL && session_peer_head(s))
		return 0;		/* a peer's error: held until complete */
	if (c != NULL && s->grpc && s->up_conf->peer &&
	    headers_get(&s->resp_headers, "grpc-status", NULL) != NULL) {
		s->grpc_held = 1;	/* a peer's Trailers-Only: its cancel? */
		s->status = status;
		return 0;
	}
	s->status = status;
	s->is_sse = session_is_sse(&s->resp_headers);
	if (!s->is_sse) {
		const char *ct = headers_get(&s->resp_headers, "content-type",
		    NULL);

		if (ct != NULL && strncasecmp(ct, "application/json", 16) == 0)
			s->json_copy = evbuffer_new();
	} else
		s->strip_usage &= !s->up_conf->peer;
	if (c == NULL)
		return 0;		/* draining: nobody to send it to */
	session_cors_head(s, &h);
	if (headers_get(&s->resp_headers, "x-request-id", NULL) == NULL)
		downstream_head_add(&h, "X-Request-Id", s->request_id);
	c->proto->send_head(s, &h);
	s->resp_head_sent = 1;
	/* Nothing reads the upstream's fields once they are passed on. */
	headers_free(&s->resp_headers);
	return 0;
}

/* Counts SSE events by their blank-line terminators, across reads; from
 * newline to newline with memchr, since only the bytes around them count. */
void
session_sse_scan(struct session *s, const char *at, size_t n)
{
	const char	*q;
	size_t		 i = 0, j, k;
	uint8_t		 nl = s->sse_nl;

	while (i < n) {
		q = memchr(at + i, '\n', n - i);
		j = q != NULL ? (size_t)(q - at) : n;
		for (k = i; k < j; k++)
			if (at[k] != '\r') {
				nl = 0;
				break;
			}
		if (q == NULL)
			break;
		if (++nl == 2)
			s->sse_events++;
		i = j + 1;
	}
	s->sse_nl = nl;
}

/* Appends relayed body bytes to this read's batch. */
void
session_relay(struct session *s, const char *at, size_t n)
{
	static const char zero[64] = { 0 };
	size_t		 room;

	if (s->scratch == NULL && (s->scratch = evbuffer_new()) == NULL)
		return;
	if (evbuffer_get_length(s->scratch) == 0 && s->client != NULL &&
	    (room = s->client->proto->body_room(s)) > 0 &&
	    room <= sizeof(zero)) {
		/* Room in front for the protocol's framing: drained bytes at
		 * the head of a chain are reused by evbuffer_prepend. */
		evbuffer_add(s->scratch, zero, room);
		evbuffer_add(s->scratch, at, n);
		evbuffer_drain(s->scratch, room);
	} else
		evbuffer_add(s->scratch, at, n);
	s->bytes_out += n;
	if (s->is_sse)
		session_sse_scan(s, at, n);
}

/* Passes a piece of an SSE body on: to the peer logic or the client. */
static int
session_sse_pass(struct session *s, const char *at, size_t n)
{
	if (s->up_conf->peer)
		return session_peer_body(s, at, n);
	session_relay(s, at, n);
	return 0;
}

/*
 * SSE bodies are split into events as they pass, to learn the usage. In
 * strip mode each event is held until it is whole, and the usage-only
 * chunk the proxy asked for is dropped; otherwise nothing waits.
 */
static int
session_sse_body(struct session *s, const char *at, size_t n)
{
	struct sse_scan	*sc = s->sse;
	size_t		 used;
	int		 done;

	if (sc == NULL) {
		if ((sc = s->sse = malloc(sizeof(*sc))) == NULL)
			return session_sse_pass(s, at, n);
		sse_scan_init(sc);
	}
	if (s->strip_usage && s->ev_hold == NULL &&
	    (s->ev_hold = evbuffer_new()) == NULL)
		s->strip_usage = 0;
	while (n > 0) {
		used = sse_scan_feed(sc, at, n, &done);
		if (s->strip_usage)
			evbuffer_add(s->ev_hold, at, used);
		else if (session_sse_pass(s, at, used) == -1)
			return -1;
		at += used;
		n -= used;
		if (!done)
			continue;
		if (!sc->overflow)
			usage_from_json(&s->usage, sc->event, sc->data,
			    sc->dlen);
		if (s->strip_usage) {
			size_t hl = evbuffer_get_length(s->ev_hold);

			if (sc->overflow || !usage_only_chunk(sc->data,
			    sc->dlen))
				session_relay(s, (const char *)evbuffer_pullup(
				    s->ev_hold, -1), hl);
			evbuffer_drain(s->ev_hold, hl);
		}
		sse_scan_next(sc);
	}
	return 0;
}

int
session_on_body(struct session *s, const char *at, size_t n)
{
	if (s->phase != PHASE_STREAMING && !s->peer_hold_head) {
		s->phase = PHASE_STREAMING;
		s->t_first_byte_us = clock_mono_us();
		s->t_last_byte_us = s->t_first_byte_us;
		metrics_observe(&s->w->metrics.first_byte,
		    s->t_first_byte_us - s->t_sent_us);
		session_timer_update(s);
	}
	if (s->state == SESSION_DRAINING && session_drain_bytes(s, n) == -1)
		return -1;
	if (s->is_sse && !s->peer_hold_head)
		return session_sse_body(s, at, n);
	if (s->json_copy != NULL) {
		if (evbuffer_get_length(s->json_copy) + n <= SSE_SCAN_MAX * 16)
			evbuffer_add(s->json_copy, at, n);
		else {
			evbuffer_free(s->json_copy);
			s->json_copy = NULL;
		}
	}
	if (s->up_conf->peer)
		return session_peer_body(s, at, n);
	session_relay(s, at, n);
	return 0;
}

void
session_flush_body(struct session *s)
{
	const struct downstream_proto *proto;
	size_t		 n;

	if (s->scratch == NULL || (n = evbuffer_get_length(s->scratch)) == 0)
		return;
	if (s->client == NULL) {
		evbuffer_drain(s->scratch, n);	/* draining: nobody to tell */
		return;
	}
	proto = s->client->proto;
	proto->send_body(s, s->scratch);
	/* This stream's client is slow: stop reading its upstream. */
	if (!s->paused && proto->queued(s) > DOWNSTREAM_OUT_HIGH)
		upstream_pause(s);
}

void
session_on_response_complete(struct session *s)
{
	struct session_end e = { .cancel = 0 };

	if (session_peer_complete(s) || session_grpc_peer_end(s))
		return;		/* a peer's error became our cancel */
	if (s->json_copy != NULL)
		usage_from_json(&s->usage, NULL, (const char *)evbuffer_pullup(
		    s->json_copy, -1), evbuffer_get_length(s->json_copy));
	if (s->ev_hold != NULL && evbuffer_get_length(s->ev_hold) > 0) {
		/* An unterminated last event goes out as it came. */
		session_relay(s, (const char *)evbuffer_pullup(s->ev_hold, -1),
		    evbuffer_get_length(s->ev_hold));
		evbuffer_drain(s->ev_hold, evbuffer_get_length(s->ev_hold));
	}
	session_flush_body(s);
	if (s->client != NULL)
		s->client->proto->end(s, s->resp_trailers.n > 0 ?
		    session_grpc_trailers(s) : NULL);
	s->resp_done = 1;
	session_close(s, &e);
}

void
session_client_drained(struct session *s)
{
	if (s->paused && !session_closed(s))
		upstream_resume(s);
}
