/* upstream_note: tells a peer cancelproxy why its stream was closed — a
 * short signed POST to the reserved note path on the address the stream
 * went to, sent after the stream itself was closed, never before. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "cancel_chain/cancel_chain.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "upstream/upstream_priv.h"

/* One note in flight; owned by its worker's notes_out list. */
struct note_out {
	TAILQ_ENTRY(note_out)	 entry;
	struct worker		*w;
	struct bufferevent	*bev;
	struct event		*timer;
	char			 request_id[72];
	char			 peer[160];	/* upstream name, for logs */
};

static void
note_out_free(struct note_out *n)
{
	TAILQ_REMOVE(&n->w->notes_out, n, entry);
	if (n->bev != NULL) {
		bufferevent_setcb(n->bev, NULL, NULL, NULL, NULL);
		bufferevent_free(n->bev);
	}
	if (n->timer != NULL)
		event_free(n->timer);
	worker_schedule_reap(n->w);
	free(n);
}

static void
note_out_fail(struct note_out *n, const char *why)
{
	log_msg(LOG_LEVEL_WARN, "note_failed", "cancel note for %s to upstream "
	    "%s not delivered: %s", n->request_id, n->peer, why);
	note_out_free(n);
}

static void
note_out_read_cb(struct bufferevent *bev, void *arg)
{
	struct note_out	*n = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	char		*line;
	size_t		 len;
	int		 status = 0;

	if ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) == NULL) {
		if (evbuffer_get_length(in) > 4096)
			note_out_fail(n, "garbled answer");
		return;
	}
	if (sscanf(line, "HTTP/1.%*d %d", &status) != 1)
		status = 0;
	free(line);
	if (status < 200 || status > 299) {
		char why[64];

		snprintf(why, sizeof(why), "the peer answered %d", status);
		note_out_fail(n, why);
		return;
	}
	note_out_free(n);
}

static void
note_out_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct note_out	*n = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	note_out_fail(n, (what & BEV_EVENT_EOF) ? "closed without an answer" :
	    "connection failed");
}

static void
note_out_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	note_out_fail(arg, "timed out");
}

void
upstream_note_send(struct session *s, const struct cancel_record *r)
{
	const struct conf_upstream *up = s->up_conf;
	const char	*secret = s->rt->conf->peers_secret;
	struct note_out	*n;
	struct evbuffer	*out;
	struct jsonw	 w;
	char		 stack[2048], sig[160];
	struct timeval	 tv = { UPSTREAM_NOTE_TIMEOUT_MS / 1000,
			    (UPSTREAM_NOTE_TIMEOUT_MS % 1000) * 1000 };
	SSL		*ssl = NULL;

	if (up == NULL || !up->peer || s->up_addrlen == 0)
		return;
	jsonw_init(&w, stack, sizeof(stack));
	cancel_note_json(&w, r);
	if (secret != NULL)
		cancel_note_sign(secret, (long long)time(NULL), w.buf, w.len,
		    sig, sizeof(sig));
	/* Over HTTP/2 the note rides on the connection already open to the
	 * peer, as one more stream. */
	if (s->up_protocol != NULL && strcmp(s->up_protocol, "h2") == 0 &&
	    upstream_h2_note(s, w.buf, w.len, secret != NULL ? sig :
	    NULL) == 0) {
		jsonw_free(&w);
		return;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL) {
		jsonw_free(&w);
		return;
	}
	n->w = s->w;
	snprintf(n->request_id, sizeof(n->request_id), "%s", s->request_id);
	snprintf(n->peer, sizeof(n->peer), "%s", up->name);
	TAILQ_INSERT_TAIL(&s->w->notes_out, n, entry);
	if (up->tls) {
		if ((ssl = upstream_ssl_new(s->rt, up)) != NULL)
			n->bev = bufferevent_openssl_socket_new(s->w->base, -1,
			    ssl, BUFFEREVENT_SSL_CONNECTING,
			    BEV_OPT_CLOSE_ON_FREE);
		if (n->bev == NULL && ssl != NULL)
			SSL_free(ssl);
	} else
		n->bev = bufferevent_socket_new(s->w->base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
	n->timer = evtimer_new(s->w->base, note_out_timer_cb, n);
	if (n->bev == NULL || n->timer == NULL) {
		note_out_fail(n, "out of memory");
		jsonw_free(&w);
		return;
	}
	bufferevent_setcb(n->bev, note_out_read_cb, NULL, note_out_event_cb, n);
	bufferevent_enable(n->bev, EV_READ | EV_WRITE);
	evtimer_add(n->timer, &tv);

	out = bufferevent_get_output(n->bev);
	evbuffer_add_printf(out, "POST %s HTTP/1.1\r\nHost: %s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n", CANCEL_NOTE_PATH, up->host_header, w.len);
	if (secret != NULL)
		evbuffer_add_printf(out, "%s: %s\r\n", CANCEL_NOTE_SIG_HEADER,
		    sig);
	evbuffer_add_lit(out, "\r\n");
	evbuffer_add(out, w.buf, w.len);
	jsonw_free(&w);
	if (bufferevent_socket_connect(n->bev, &s->up_addr.sa,
	    (int)s->up_addrlen) == -1)
		note_out_fail(n, "connect failed");
}

void
upstream_notes_free(struct worker *w)
{
	struct note_out	*n;

	while ((n = TAILQ_FIRST(&w->notes_out)) != NULL) {
		TAILQ_REMOVE(&w->notes_out, n, entry);
		if (n->bev != NULL)
			bufferevent_free(n->bev);
		if (n->timer != NULL)
			event_free(n->timer);
		free(n);
	}
}
