/* writeout: output of plain-TCP connections written straight to the socket
 * once per loop turn. A bufferevent arms EV_WRITE for every add and disarms
 * it once the buffer is empty: two epoll_ctl calls and one more loop turn
 * per relayed event. Here whatever a turn added goes out in one writev from
 * an event made active (no system call to schedule it); only a write the
 * kernel could not take whole arms EV_WRITE, and the bufferevent then
 * finishes it, with its usual error reporting. */
#include <errno.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy/proxy.h"
#include "proxy/writeout.h"

/* The connections that had output added in this turn. */
static void
writeout_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct writeout	*o;

	while ((o = TAILQ_FIRST(&w->writeouts)) != NULL)
		writeout_flush(o);
}

int
writeout_worker_init(struct worker *w)
{
	TAILQ_INIT(&w->writeouts);
	w->writeout_ev = event_new(w->base, -1, 0, writeout_flush_cb, w);
	return w->writeout_ev == NULL ? -1 : 0;
}

void
writeout_worker_free(struct worker *w)
{
	if (w->writeout_ev != NULL)
		event_free(w->writeout_ev);
	w->writeout_ev = NULL;
}

/* Bytes were added to the output: queue it for the end of the turn. */
static void
writeout_added_cb(struct evbuffer *b, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct writeout	*o = arg;

	if (info->n_added == 0 || o->queued || o->armed)
		return;
	o->queued = 1;
	TAILQ_INSERT_TAIL(&o->w->writeouts, o, entry);
	event_active(o->w->writeout_ev, 0, 0);
}

void
writeout_start(struct writeout *o, struct worker *w, struct bufferevent *bev,
    void (*drained)(void *), void (*failed)(void *, int), void *arg)
{
	struct evbuffer	*out = bufferevent_get_output(bev);

	o->w = w;
	o->drained = drained;
	o->failed = failed;
	o->arg = arg;
	o->queued = 0;
	o->armed = 0;
	o->bev = bev;
	bufferevent_disable(bev, EV_WRITE);
	if ((o->cb = evbuffer_add_cb(out, writeout_added_cb, o)) == NULL) {
		/* Without the callback the bufferevent writes, as before. */
		o->bev = NULL;
		bufferevent_enable(bev, EV_WRITE);
		return;
	}
	if (evbuffer_get_length(out) > 0) {
		o->queued = 1;
		TAILQ_INSERT_TAIL(&w->writeouts, o, entry);
		event_active(w->writeout_ev, 0, 0);
	}
}

void
writeout_stop(struct writeout *o)
{
	if (o->bev == NULL)
		return;
	if (o->queued) {
		TAILQ_REMOVE(&o->w->writeouts, o, entry);
		o->queued = 0;
	}
	evbuffer_remove_cb_entry(bufferevent_get_output(o->bev), o->cb);
	o->cb = NULL;
	o->bev = NULL;
	o->armed = 0;
}

void
writeout_flush(struct writeout *o)
{
	struct bufferevent *bev = o->bev;
	struct evbuffer	*out;
	int		 n, err;

	if (bev == NULL || !o->queued)
		return;
	TAILQ_REMOVE(&o->w->writeouts, o, entry);
	o->queued = 0;
	out = bufferevent_get_output(bev);
	if (evbuffer_get_length(out) == 0)
		return;
	/* A bufferevent keeps its output's start frozen outside its own
	 * write. */
	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, bufferevent_getfd(bev));
	err = errno;
	evbuffer_freeze(out, 1);
	/* The first failed write consumes the socket's error (ECONNRESET
	 * after a reset; later writes see EPIPE): it is reported as it is.
	 * Without a failed callback, the bufferevent's own write meets the
	 * connection's state again and reports it. */
	if (n == -1 && err != EAGAIN && err != EINTR && o->failed != NULL) {
		o->failed(o->arg, err);
		return;
	}
	if (evbuffer_get_length(out) > 0) {
		o->armed = 1;
		bufferevent_enable(bev, EV_WRITE);
		return;
	}
	if (o->drained != NULL)
		o->drained(o->arg);
}

void
writeout_written(struct writeout *o)
{
	if (o->bev == NULL || !o->armed ||
	    evbuffer_get_length(bufferevent_get_output(o->bev)) > 0)
		return;
	o->armed = 0;
	bufferevent_disable(o->bev, EV_WRITE);
}
