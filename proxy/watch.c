/* watch: notices a FIN or an RST on a socket whose reading is paused.
 *
 * A paused bufferevent no longer watches its socket, and an EV_CLOSED event
 * alone misses an RST (epoll reports it as an error, which libevent turns
 * into EV_READ|EV_WRITE). Level-triggered EV_READ would spin while unread
 * data waits, and libevent refuses to mix edge- and level-triggered events
 * on one descriptor, so the watch uses its own duplicate of the socket,
 * edge-triggered for EV_READ|EV_CLOSED, and confirms with SO_ERROR and
 * recv(MSG_PEEK).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "proxy/proxy.h"

struct pause_watch {
	int		 fd;		/* our duplicate */
	struct event	*ev;
	pause_watch_cb	 cb;
	void		*arg;
};

static void
pause_watch_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pause_watch	*pw = arg;
	int			 soerr = 0;
	socklen_t		 len = sizeof(soerr);
	char			 b;
	ssize_t			 n;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
	    soerr != 0) {
		pw->cb(pw->arg, 1);
		return;
	}
	if (what & EV_CLOSED) {
		pw->cb(pw->arg, 0);
		return;
	}
	n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		pw->cb(pw->arg, 0);
	else if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR)
		pw->cb(pw->arg, 1);
}

struct pause_watch *
pause_watch_start(struct event_base *base, int fd, pause_watch_cb cb,
    void *arg)
{
	struct pause_watch	*pw;

	if ((pw = calloc(1, sizeof(*pw))) == NULL)
		return NULL;
	pw->cb = cb;
	pw->arg = arg;
	if ((pw->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		goto fail;
	pw->ev = event_new(base, pw->fd, EV_READ | EV_CLOSED | EV_ET |
	    EV_PERSIST, pause_watch_event_cb, pw);
	if (pw->ev == NULL || event_add(pw->ev, NULL) == -1)
		goto fail;
	return pw;
fail:
	if (pw->ev != NULL)
		event_free(pw->ev);
	if (pw->fd >= 0)
		close(pw->fd);
	free(pw);
	return NULL;
}

void
pause_watch_stop(struct pause_watch *pw)
{
	if (pw == NULL)
		return;
	event_free(pw->ev);
	close(pw->fd);
	free(pw);
}
