/* readin: a plain socket bufferevent's reads done with one readv per
 * wake-up, without libevent's FIONREAD, for the side that relays (the
 * model's bytes) and the side that asks (the client's requests). */
#ifndef CANCELPROXY_READIN_H
#define CANCELPROXY_READIN_H

struct bufferevent;
struct event;

struct readin {
	struct event		*ev;	/* NULL: the bufferevent reads */
	struct bufferevent	*bev;
};

/*
 * Takes reading over from bev (a connected plain socket bufferevent):
 * bytes go to its input and to its read callback of the moment, the end
 * and errors to its event callback (BEV_EVENT_READING with EOF or ERROR,
 * errno set), as the bufferevent reports them. 0, or -1 and the
 * bufferevent reads on.
 */
int	readin_start(struct readin *r, struct bufferevent *bev, int fd);
/* Reading on or off (backpressure, the pool), whoever reads. */
void	readin_enable(struct readin *r, struct bufferevent *bev, int on);
void	readin_free(struct readin *r);

#endif
