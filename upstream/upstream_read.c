/* upstream_read: the model's bytes read with one readv per wake-up. A
 * socket bufferevent asks the kernel how much is waiting (FIONREAD) before
 * every read, one system call more per relayed SSE event than the read
 * itself; here a plain connection, once connected, is read by an event of
 * our own into the bufferevent's input, and what it finds goes to the
 * bufferevent's callbacks of the moment (a session's, or the pool's), as
 * the bufferevent would have reported it. TLS connections are left to
 * OpenSSL's bufferevent. */
#include <errno.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "upstream/upstream.h"

#define UPSTREAM_READ_MAX	(16 * 1024)	/* as a bufferevent's default */

static void
upstream_read_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_conn	*u = arg;
	struct bufferevent	*bev = u->bev;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_iovec	 v[2];
	struct iovec		 iov[2];
	bufferevent_data_cb	 readcb, writecb;
	bufferevent_event_cb	 eventcb;
	void			*cbarg;
	ssize_t			 n;
	size_t			 left;
	int			 nv, i, err;

	/* The input's end is frozen outside the bufferevent's own read. */
	evbuffer_unfreeze(in, 0);
	nv = evbuffer_reserve_space(in, UPSTREAM_READ_MAX, v, 2);
	if (nv <= 0) {
		evbuffer_freeze(in, 0);
		return;
	}
	for (i = 0; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	n = readv(fd, iov, nv);
	err = errno;
	if (n > 0) {
		for (i = 0, left = (size_t)n; i < nv; i++) {
			if (v[i].iov_len > left)
				v[i].iov_len = left;
			left -= v[i].iov_len;
		}
		evbuffer_commit_space(in, v, nv);
	}
	evbuffer_freeze(in, 0);
	if (n == -1 && (err == EAGAIN || err == EINTR))
		return;
	bufferevent_getcb(bev, &readcb, &writecb, &eventcb, &cbarg);
	if (n > 0) {
		if (readcb != NULL)
			readcb(bev, cbarg);
		return;
	}
	/* The end, or an error: no more reading, as a bufferevent stops. */
	event_del(u->rev);
	errno = err;
	if (eventcb != NULL)
		eventcb(bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF :
		    BEV_EVENT_ERROR), cbarg);
}

int
upstream_read_start(struct upstream_conn *u)
{
	if (u->tls || u->rev != NULL)
		return 0;
	u->rev = event_new(bufferevent_get_base(u->bev), u->fd,
	    EV_READ | EV_PERSIST, upstream_read_ready_cb, u);
	if (u->rev == NULL)
		return -1;		/* the bufferevent goes on reading */
	bufferevent_disable(u->bev, EV_READ);
	return event_add(u->rev, NULL);
}

void
upstream_reading(struct upstream_conn *u, int on)
{
	if (u->rev == NULL) {
		if (on)
			bufferevent_enable(u->bev, EV_READ);
		else
			bufferevent_disable(u->bev, EV_READ);
	} else if (on)
		event_add(u->rev, NULL);
	else
		event_del(u->rev);
}

void
upstream_read_free(struct upstream_conn *u)
{
	if (u->rev != NULL)
		event_free(u->rev);
	u->rev = NULL;
}
