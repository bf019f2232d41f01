/* writeout: output of plain-TCP connections written straight to the socket
 * once per loop turn, so relaying an event costs one writev and no
 * epoll_ctl; EV_WRITE is armed only for what the kernel did not take. */
#ifndef CANCELPROXY_WRITEOUT_H
#define CANCELPROXY_WRITEOUT_H

#include <stdint.h>
#include <sys/queue.h>

struct bufferevent;
struct evbuffer_cb_entry;
struct worker;

/* One connection's output; embedded in struct client and upstream_conn. */
struct writeout {
	TAILQ_ENTRY(writeout)	 entry;		/* worker's flush list */
	struct worker		*w;
	struct bufferevent	*bev;		/* NULL: not started */
	struct evbuffer_cb_entry *cb;		/* on the bev's output */
	void			(*drained)(void *); /* all written, by us */
	void			(*failed)(void *, int); /* our write failed */
	void			*arg;
	uint8_t			 queued;	/* on the flush list */
	uint8_t			 armed;		/* EV_WRITE on for leftovers */
};

TAILQ_HEAD(writeout_list, writeout);

/* Per worker: the flush event and its list. */
int	writeout_worker_init(struct worker *w);
void	writeout_worker_free(struct worker *w);

/*
 * Takes over writing for bev (a plain socket bufferevent): EV_WRITE leaves
 * its enabled set, and bytes added to its output are written at the end of
 * the loop turn. drained(arg) runs when such a write took everything,
 * failed(arg, errno) when it failed (NULL: the bufferevent finds out).
 */
void	writeout_start(struct writeout *o, struct worker *w,
	    struct bufferevent *bev, void (*drained)(void *),
	    void (*failed)(void *, int), void *arg);
/* Gives writing back to the bufferevent (before freeing it, or for good). */
void	writeout_stop(struct writeout *o);
/* From the bev's write callback: leftovers went out; disarm if empty. */
void	writeout_written(struct writeout *o);
/* Writes now what is queued for o (e.g. before a close decision). */
void	writeout_flush(struct writeout *o);

#endif
