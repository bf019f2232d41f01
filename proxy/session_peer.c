/* session_peer: a session's side of the conversation between hops —
 * loops, waiting for a peer's note before writing the record, applying
 * notes that arrive on any worker, and turning a peer's error (JSON body
 * or SSE event) into this hop's cancel with the path extended. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "downstream/downstream.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "upstream/upstream.h"

#define PEER_HOLD_MAX	(64 * 1024)	/* a peer's error body or event */

/* Notes a request that came from a peer cancelproxy (and which hop). */
void
session_peer_request(struct session *s)
{
	const char	*v;
	size_t		 n, i;

	if ((v = headers_get(&s->req_headers, CANCEL_PEER_HEADER, &n)) == NULL ||
	    n == 0 || n >= sizeof(s->prev_hop))
		return;
	for (i = 0; i < n; i++)
		if (v[i] == '"' || v[i] == '\\' || (unsigned char)v[i] < 0x21)
			return;
	memcpy(s->prev_hop, v, n);
	s->prev_hop[n] = '\0';
	s->from_peer = 1;
}

/* A request whose Via already lists this hop went round in a circle. */
int
session_peer_loop(struct session *s)
{
	const char	*hop = log_hop(), *v, *p, *end, *tok;
	size_t		 i, hlen = strlen(hop);

	for (i = 0; i < s->req_headers.n; i++) {
		if (!headers_name_is(&s->req_headers, i, "via"))
			continue;
		v = headers_value(&s->req_headers, i);
		end = v + s->req_headers.h[i].vlen;
		/* Each member: protocol SP received-by [SP comment]. */
		for (p = v; p < end; ) {
			while (p < end && (*p == ',' || *p == ' '))
				p++;
			while (p < end && *p != ' ' && *p != ',')
				p++;		/* protocol */
			while (p < end && *p == ' ')
				p++;
			tok = p;
			while (p < end && *p != ' ' && *p != ',')
				p++;
			if ((size_t)(p - tok) == hlen &&
			    strncasecmp(tok, hop, hlen) == 0) {
				s->close_connection = 1;
				if (s->client != NULL)
					downstream_write_error(s->client, s, 508,
					    "loop_detected", "this request has "
					    "already passed this hop",
					    "proxy_loop_detected");
				{
					struct session_end e = { .error = 1 };

					session_close(s, &e);
				}
				return -1;
			}
			while (p < end && *p != ',')
				p++;
		}
	}
	return 0;
}

/*
 * A peer client closed its stream: the upstream is already closed; the
 * record waits (bounded by note_wait_ms) for the note that says why.
 */
int
session_peer_defer(struct session *s, const struct session_end *e)
{
	int64_t		 ms = s->rt->conf->peers_note_wait_ms;
	struct timeval	 tv;

	if (e->kind != CANCEL_KIND_CLIENT_DISCONNECT || !s->from_peer ||
	    s->peer_note != NULL || ms <= 0 || e->path_in != NULL)
		return 0;
	session_state_set(s, SESSION_AWAITING_NOTE);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(s->timer, &tv);
	return 1;
}

/* The note never came: the origin is unknown, at the previous hop. */
void
session_peer_note_timeout(struct session *s)
{
	struct cancel_record	 r;
	struct cancel_path	 p;
	struct session_end	 e = s->end;

	cancel_path_init(&p);
	cancel_path_add(&p, s->prev_hop);
	e.kind = CANCEL_KIND_UNKNOWN;
	e.path_in = &p;
	e.detail = "no cancel note came from the previous hop";
	session_cancel_record(s, &e, &r, s->t_detect_us);
	r.detect_to_close_us = s->detect_to_close_us;
	s->end.kind = CANCEL_KIND_UNKNOWN;
	session_finish(s, &r);
}

static void
session_note_log(const struct cancel_note *n, const char *outcome,
    const char *why, const char *sender, const struct note_arrival *how)
{
	struct jsonw	 w;
	char		 stack[1024], path[CANCEL_PATH_MAX * (CANCEL_HOP_MAX + 4)];

	cancel_path_format(&n->path, path, sizeof(path));
	jsonw_init(&w, stack, sizeof(stack));
	log_record_begin(&w, strcmp(outcome, "applied") == 0 ?
	    LOG_LEVEL_INFO : LOG_LEVEL_WARN, "note");
	jsonw_kstr(&w, "request_id", n->request_id);
	jsonw_kstr(&w, "from", n->from);
	jsonw_kstr(&w, "sender", sender);
	if (how != NULL && how->protocol != NULL) {
		/* Which connection carried it: over HTTP/2, the one the
		 * canceled stream came on, as one more stream. */
		jsonw_kstr(&w, "protocol", how->protocol);
		if (how->conn != 0)
			jsonw_kuint(&w, "connection", how->conn);
	}
	jsonw_kstr(&w, "outcome", outcome);
	jsonw_kstr(&w, "origin_kind", cancel_kind_name(n->kind));
	jsonw_kstr(&w, "path", path);
	if (why != NULL)
		jsonw_kstr(&w, "reason", why);
	log_record_end(&w);
	jsonw_free(&w);
}

/* The IP part of "ip:port" or "[ip6]:port". */
void
session_addr_ip(const char *addr, char *out, size_t len)
{
	const char	*end;

	if (addr[0] == '[') {
		end = strchr(addr, ']');
		addr++;
	} else
		end = strrchr(addr, ':');
	if (end == NULL)
		end = addr + strlen(addr);
	snprintf(out, len, "%.*s", (int)(end - addr), addr);
}

/*
 * A note for s arrived. It is applied only if it came from the hop the
 * stream came from: signed with the shared secret and naming that hop,
 * or, without a secret, sent from the stream's own client address.
 */
void
session_peer_apply_note(struct session *s, const struct cancel_note *n,
    int authenticated, const char *sender_ip, const struct note_arrival *how)
{
	struct cancel_record	 r;
	struct session_end	 e;
	char			 ip[64];

	session_addr_ip(s->client_addr, ip, sizeof(ip));
	if (!s->from_peer || strcmp(n->from, s->prev_hop) != 0) {
		session_note_log(n, "refused", "the stream did not come from "
		    "this hop", sender_ip, how);
		return;
	}
	if (!authenticated && strcmp(ip, sender_ip) != 0) {
		session_note_log(n, "refused", "unsigned note from another "
		    "address than the stream's", sender_ip, how);
		return;
	}
	if (s->peer_note != NULL || (session_closed(s) &&
	    s->state != SESSION_AWAITING_NOTE)) {
		session_note_log(n, "ignored", "the stream's record is "
		    "already written", sender_ip, how);
		return;
	}
	if ((s->peer_note = malloc(sizeof(*s->peer_note))) == NULL)
		return;
	*s->peer_note = *n;
	session_note_log(n, "applied", NULL, sender_ip, how);
	if (s->state == SESSION_AWAITING_NOTE) {
		evtimer_del(s->timer);
		e = s->end;
		e.kind = n->kind;
		e.path_in = &s->peer_note->path;
		session_cancel_record(s, &e, &r, s->t_detect_us);
		r.detect_to_close_us = s->detect_to_close_us;
		s->end.kind = n->kind;
		session_finish(s, &r);
		return;
	}
	/* The note overtook the close: it cancels the stream itself. */
	memset(&e, 0, sizeof(e));
	e.cancel = 1;
	e.kind = n->kind;
	e.via = CANCEL_VIA_NOTE;
	e.direction = CANCEL_DIR_UPSTREAM;
	e.path_in = &s->peer_note->path;
	session_close(s, &e);
}

/* One note, offered to every worker; the last one frees it. */
struct note_broadcast {
	int			 refs;		/* atomic */
	int			 found;		/* atomic */
	int			 authenticated;
	char			 sender_ip[64];
	struct note_arrival	 how;
	struct cancel_note	 note;
};

static void
session_note_mail(struct worker *w, void *arg)
{
	struct note_broadcast	*b = arg;
	struct session		*s;

	s = registry_find(&w->registry, b->note.request_id);
	if (s != NULL) {
		__atomic_store_n(&b->found, 1, __ATOMIC_RELAXED);
		session_peer_apply_note(s, &b->note, b->authenticated,
		    b->sender_ip, &b->how);
	}
	if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		if (!__atomic_load_n(&b->found, __ATOMIC_RELAXED))
			session_note_log(&b->note, "unknown", "no live stream "
			    "with this request id", b->sender_ip, &b->how);
		free(b);
	}
}

/* POST /.cancelproxy/note: check it, answer at once, hand it on. */
void
session_note_receive(struct session *s)
{
	const char		*secret = s->rt->conf->peers_secret;
	struct note_broadcast	*b;
	struct session_end	 e = { .cancel = 0 };
	const char		*sig, *body;
	size_t			 siglen = 0, len = evbuffer_get_length(s->body);
	char			 err[128];
	int			 k, status = 202;
	const char		*msg = "note accepted";

	s->is_note = 1;
	body = len ? (const char *)evbuffer_pullup(s->body, -1) : "";
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		session_refuse(s, 503, "out_of_memory", "out of memory");
		return;
	}
	session_addr_ip(s->client_addr, b->sender_ip, sizeof(b->sender_ip));
	b->how.protocol = s->protocol;
	b->how.conn = s->stream_id > 0 ? s->conn_id : 0;
	if (cancel_note_parse(body, len, &b->note, err, sizeof(err)) == -1) {
		status = 400;
		msg = err;
	} else if (secret != NULL) {
		sig = headers_get(&s->req_headers, CANCEL_NOTE_SIG_HEADER,
		    &siglen);
		if (cancel_note_verify(secret, sig, siglen, body, len,
		    (long long)time(NULL), err, sizeof(err)) == -1) {
			status = 401;
			msg = err;
		} else
			b->authenticated = 1;
	}
	if (status != 202) {
		session_note_log(&b->note, "refused", msg, b->sender_ip,
		    &b->how);
		free(b);
		session_refuse(s, status, "bad_note", msg);
		return;
	}
	b->refs = proxy_global.nworkers;
	for (k = 0; k < proxy_global.nworkers; k++)
		if (worker_post(&proxy_global.workers[k], session_note_mail,
		    b) == -1 && __atomic_sub_fetch(&b->refs, 1,
		    __ATOMIC_ACQ_REL) == 0)
			free(b);
	if (s->client != NULL)
		downstream_write_error(s->client, s, 202, "accepted", msg, NULL);
	session_close(s, &e);
}

/* A peer's 5xx with Proxy-Status and a JSON body may carry a cancel:
 * hold the head until the body is complete. */
int
session_peer_head(struct session *s)
{
	int		 status = s->resp_status;
	const char	*ct;

	if (!s->up_conf->peer || s->peer_hold_head || status < 500 ||
	    headers_get(&s->resp_headers, "proxy-status", NULL) == NULL ||
	    (ct = headers_get(&s->resp_headers, "content-type", NULL)) == NULL ||
	    strncasecmp(ct, "application/json", 16) != 0)
		return 0;
	if (s->peer_hold == NULL && (s->peer_hold = evbuffer_new()) == NULL)
		return 0;
	s->peer_hold_head = 1;
	return 1;
}

static void
session_peer_release_head(struct session *s)
{
	s->peer_hold_head = 0;
	session_on_response_head(s, s->resp_status, s->resp_length);
	session_relay(s, (const char *)evbuffer_pullup(s->peer_hold, -1),
	    evbuffer_get_length(s->peer_hold));
	evbuffer_drain(s->peer_hold, evbuffer_get_length(s->peer_hold));
}

const char *
peer_sse_state_name(enum peer_sse_state st)
{
	switch (st) {
	case PEER_SSE_LINE_START:	return "line_start";
	case PEER_SSE_FIRST_LINE:	return "first_line";
	case PEER_SSE_PASS:		return "pass";
	case PEER_SSE_ERROR:		return "error";
	}
	return "unknown";
}

/* Parses the data lines of a held SSE event as a peer's cancel. */
static int
session_peer_event_note(struct session *s, struct cancel_note *n)
{
	size_t		 len = evbuffer_get_length(s->peer_hold);
	char		*ev = (char *)evbuffer_pullup(s->peer_hold, -1);
	char		*data, *line, *next, *end = ev + len;
	size_t		 dlen = 0;
	int		 rc;

	if ((data = malloc(len + 1)) == NULL)
		return -1;
	for (line = ev; line < end; line = next) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t ll;

		next = nl ? nl + 1 : end;
		ll = (size_t)((nl ? nl : end) - line);
		if (ll && line[ll - 1] == '\r')
			ll--;
		if (ll >= 5 && strncmp(line, "data:", 5) == 0) {
			size_t off = (ll > 5 && line[5] == ' ') ? 6 : 5;

			memcpy(data + dlen, line + off, ll - off);
			dlen += ll - off;
			data[dlen++] = '\n';
		}
	}
	rc = dlen ? cancel_error_parse(data, dlen, n) : -1;
	free(data);
	return rc;
}

/*
 * Relays a peer's SSE body, holding back only an event whose first line
 * is "event: error" until it is whole: if it carries a cancel, it ends
 * the stream here (and is re-issued with this hop appended).
 * States: 0 event start, 1 first line held, 2 passing, 3 error held.
 */
int
session_peer_body(struct session *s, const char *at, size_t n)
{
	size_t		 i, run = 0;
	struct cancel_note note;

	if (s->peer_hold_head) {
		if (evbuffer_get_length(s->peer_hold) + n <= PEER_HOLD_MAX) {
			evbuffer_add(s->peer_hold, at, n);
			return 0;
		}
		session_peer_release_head(s);
	}
	if (!s->is_sse || s->peer_hold == NULL) {
		if (s->is_sse && (s->peer_hold = evbuffer_new()) == NULL)
			return -1;
		if (!s->is_sse) {
			session_relay(s, at, n);
			return 0;
		}
	}
	for (i = 0; i < n; i++) {
		char c = at[i];

		switch (s->peer_sse) {
		case PEER_SSE_LINE_START:
			if (c == '\n' || c == '\r')
				break;
			session_relay(s, at + run, i - run);
			run = i;
			s->peer_sse = PEER_SSE_FIRST_LINE;
			s->peer_nl = 0;
			/* FALLTHROUGH */
		case PEER_SSE_FIRST_LINE:
			evbuffer_add(s->peer_hold, &c, 1);
			run = i + 1;
			if (c != '\n')
				break;
			{
				size_t hl = evbuffer_get_length(s->peer_hold);
				const char *h = (const char *)evbuffer_pullup(
				    s->peer_hold, -1);

				if (hl >= 12 && (strncmp(h, "event: error", 12)
				    == 0 || strncmp(h, "event:error", 11) == 0)) {
					s->peer_sse = PEER_SSE_ERROR;
					s->peer_nl = 1;
					break;
				}
				session_relay(s, h, hl);
				evbuffer_drain(s->peer_hold, hl);
				s->peer_sse = PEER_SSE_PASS;
				s->peer_nl = 1;
			}
			break;
		case PEER_SSE_PASS:
		case PEER_SSE_ERROR:
			if (s->peer_sse == PEER_SSE_ERROR) {
				evbuffer_add(s->peer_hold, &c, 1);
				run = i + 1;
			}
			if (c == '\n')
				s->peer_nl++;
			else if (c != '\r')
				s->peer_nl = 0;
			if (s->peer_nl < 2)
				break;
			if (s->peer_sse == PEER_SSE_ERROR) {
				if (session_peer_event_note(s, &note) == 0 &&
				    (s->peer_note = malloc(sizeof(note)))) {
					*s->peer_note = note;
					s->peer_cancel = 1;
					return -1;
				}
				session_relay(s, (const char *)evbuffer_pullup(
				    s->peer_hold, -1),
				    evbuffer_get_length(s->peer_hold));
				evbuffer_drain(s->peer_hold,
				    evbuffer_get_length(s->peer_hold));
			}
			s->peer_sse = PEER_SSE_LINE_START;
			break;
		}
		if (s->peer_sse == PEER_SSE_ERROR &&
		    evbuffer_get_length(s->peer_hold) > PEER_HOLD_MAX) {
			/* Too big to be our error: let it through. */
			session_relay(s, (const char *)evbuffer_pullup(
			    s->peer_hold, -1), evbuffer_get_length(s->peer_hold));
			evbuffer_drain(s->peer_hold,
			    evbuffer_get_length(s->peer_hold));
			s->peer_sse = PEER_SSE_PASS;
		}
	}
	if (s->peer_sse == PEER_SSE_LINE_START || s->peer_sse == PEER_SSE_PASS)
		session_relay(s, at + run, n - run);
	return 0;
}

/* Ends the stream with the peer's cancel, this hop appended. */
void
session_peer_cancel(struct session *s)
{
	struct session_end	 e;

	session_flush_body(s);
	memset(&e, 0, sizeof(e));
	e.cancel = 1;
	e.kind = s->peer_note->kind;
	e.via = CANCEL_VIA_SSE_ERROR;
	e.direction = CANCEL_DIR_DOWNSTREAM;
	e.path_in = &s->peer_note->path;
	session_close(s, &e);
}

/* The held error response is complete: a cancel, or passed on as is. */
int
session_peer_complete(struct session *s)
{
	struct cancel_note	 note;
	struct session_end	 e;
	const char		*body;
	size_t			 len;

	if (!s->peer_hold_head)
		return 0;
	len = evbuffer_get_length(s->peer_hold);
	body = (const char *)evbuffer_pullup(s->peer_hold, -1);
	if (cancel_error_parse(body, len, &note) == -1 ||
	    (s->peer_note = malloc(sizeof(note))) == NULL) {
		session_peer_release_head(s);
		return 0;
	}
	*s->peer_note = note;
	s->peer_hold_head = 0;
	memset(&e, 0, sizeof(e));
	e.cancel = 1;
	e.kind = note.kind;
	e.via = CANCEL_VIA_UPSTREAM_STATUS;
	e.direction = CANCEL_DIR_DOWNSTREAM;
	e.path_in = &s->peer_note->path;
	e.proxy_status_in = headers_get(&s->resp_headers, "proxy-status", NULL);
	s->resp_done = 1;
	session_close(s, &e);
	return 1;
}
