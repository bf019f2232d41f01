/* readin: reads without FIONREAD. A socket bufferevent asks the kernel how
 * much is waiting before every read (libevent's evbuffer_read): one system
 * call more per relayed SSE event, and per request, than the read itself.
 * Here an event of our own reads with one readv (up to 16 KiB, as the
 * bufferevent would) into the bufferevent's input, and what it finds goes
 * to the bufferevent's callbacks of the moment. TLS connections are left
 * to OpenSSL's bufferevent.
 *
 * The readv fills about 900 bytes of the input's own space first (a 1 KiB
 * chain, which malloc keeps ready per thread) and spills into a
 * per-thread scratch buffer, copied in after. Reserving 16 KiB in the
 * input instead costs a fresh 32 KiB chain per read: SSE events and small
 * requests are a few hundred bytes, and that chain is freed again as soon
 * as they are passed on. */
#include <errno.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy/readin.h"

#define READIN_MAX	(16 * 1024)	/* a bufferevent's default */
#define READIN_FIRST	900		/* fits a 1 KiB chain with its header */

static __thread char	 readin_scratch[READIN_MAX];

static void
readin_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct readin		*r = arg;
	struct bufferevent	*bev = r->bev;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_iovec	 v;
	struct iovec		 iov[2];
	bufferevent_data_cb	 readcb, writecb;
	bufferevent_event_cb	 eventcb;
	void			*cbarg;
	ssize_t			 n;
	size_t			 first;
	int			 err, ok = 1;

	/* The input's end is frozen outside the bufferevent's own read. */
	evbuffer_unfreeze(in, 0);
	if (evbuffer_reserve_space(in, READIN_FIRST, &v, 1) != 1) {
		evbuffer_freeze(in, 0);
		return;
	}
	/* Whatever the chain has room for, at most what one read takes. */
	first = v.iov_len < READIN_MAX ? v.iov_len : READIN_MAX;
	iov[0].iov_base = v.iov_base;
	iov[0].iov_len = first;
	iov[1].iov_base = readin_scratch;
	iov[1].iov_len = READIN_MAX - first;
	n = readv(fd, iov, iov[1].iov_len > 0 ? 2 : 1);
	err = errno;
	if (n > 0) {
		v.iov_len = (size_t)n < first ? (size_t)n : first;
		evbuffer_commit_space(in, &v, 1);
		if ((size_t)n > first && evbuffer_add(in, readin_scratch,
		    (size_t)n - first) == -1)
			ok = 0;
	}
	evbuffer_freeze(in, 0);
	if (!ok) {
		/* Out of memory: bytes were lost; end it as an error. */
		n = -1;
		err = ENOMEM;
	}
	if (n == -1 && (err == EAGAIN || err == EINTR))
		return;
	/* The callbacks may free r and bev: nothing is touched after. */
	bufferevent_getcb(bev, &readcb, &writecb, &eventcb, &cbarg);
	if (n > 0) {
		if (readcb != NULL)
			readcb(bev, cbarg);
		return;
	}
	/* The end, or an error: no more reading, as a bufferevent stops. */
	event_del(r->ev);
	errno = err;
	if (eventcb != NULL)
		eventcb(bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF :
		    BEV_EVENT_ERROR), cbarg);
}

int
readin_start(struct readin *r, struct bufferevent *bev, int fd)
{
	if (r->ev != NULL)
		return 0;
	r->bev = bev;
	r->ev = event_new(bufferevent_get_base(bev), fd, EV_READ | EV_PERSIST,
	    readin_ready_cb, r);
	if (r->ev == NULL)
		return -1;		/* the bufferevent goes on reading */
	bufferevent_disable(bev, EV_READ);
	return event_add(r->ev, NULL);
}

void
readin_enable(struct readin *r, struct bufferevent *bev, int on)
{
	if (r->ev == NULL) {
		if (on)
			bufferevent_enable(bev, EV_READ);
		else
			bufferevent_disable(bev, EV_READ);
	} else if (on)
		event_add(r->ev, NULL);
	else
		event_del(r->ev);
}

void
readin_free(struct readin *r)
{
	if (r->ev != NULL)
		event_free(r->ev);
	r->ev = NULL;
}
