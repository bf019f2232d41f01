/* upstream_pool: idle keep-alive connections per worker, most recently
 * used first; a connection whose peer speaks or closes while idle is gone. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy/log.h"
#include "proxy/session.h"
#include "upstream/upstream.h"

struct upstream_pool {
	struct worker			*w;
	struct upstream_conn_list	 idle;
	size_t				 n;
};

void	upstream_conn_close(struct upstream_conn *u);

struct upstream_pool *
upstream_pool_new(struct worker *w)
{
	struct upstream_pool	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->w = w;
	TAILQ_INIT(&p->idle);
	return p;
}

void
upstream_pool_free(struct upstream_pool *p)
{
	struct upstream_conn	*u;

	if (p == NULL)
		return;
	while ((u = TAILQ_FIRST(&p->idle)) != NULL) {
		TAILQ_REMOVE(&p->idle, u, entry);
		upstream_conn_close(u);
	}
	free(p);
}

size_t
upstream_pool_idle(const struct upstream_pool *p)
{
	return p->n;
}

static void
upstream_pool_drop(struct upstream_pool *p, struct upstream_conn *u)
{
	TAILQ_REMOVE(&p->idle, u, entry);
	p->n--;
	upstream_conn_close(u);
}

/* Anything from an idle connection (data, FIN, RST) retires it. */
static void
upstream_pool_read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream_conn	*u = arg;

	upstream_pool_drop(u->w->pool, u);
}

static void
upstream_pool_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream_conn	*u = arg;

	upstream_pool_drop(u->w->pool, u);
}

/* Whether u goes where up's connections go. */
static int
upstream_pool_same(const struct upstream_conn *u, uint64_t hash,
    const char *key)
{
	return u->key_hash == hash && strcmp(u->key, key) == 0;
}

/* Takes the freshest idle connection for up, dropping stale ones. */
struct upstream_conn *
upstream_pool_get(struct upstream_pool *p, const struct conf_upstream *up)
{
	struct upstream_conn	*u, *next;
	uint64_t		 now = clock_mono_us();

	for (u = TAILQ_FIRST(&p->idle); u != NULL; u = next) {
		next = TAILQ_NEXT(u, entry);
		if (now - u->idle_since_us > UPSTREAM_POOL_IDLE_MAX_US) {
			upstream_pool_drop(p, u);
			continue;
		}
		if (upstream_pool_same(u, up->pool_hash, up->pool_key)) {
			TAILQ_REMOVE(&p->idle, u, entry);
			p->n--;
			return u;
		}
	}
	return NULL;
}

void
upstream_release(struct session *s)
{
	struct upstream_conn	*u = s->up;
	struct upstream_pool	*p = s->w->pool;
	struct upstream_conn	*x;
	int			 same = 0;

	if (u == NULL)
		return;
	if (s->up_watch != NULL) {
		pause_watch_stop(s->up_watch);
		s->up_watch = NULL;
	}
	s->up = NULL;
	u->s = NULL;
	TAILQ_FOREACH(x, &p->idle, entry)
		if (upstream_pool_same(x, u->key_hash, u->key))
			same++;
	if (!u->connected || s->up_conf->keepalive <= same ||
	    evbuffer_get_length(bufferevent_get_input(u->bev)) > 0 ||
	    s->w->draining) {
		upstream_conn_close(u);
		return;
	}
	u->idle_since_us = clock_mono_us();
	u->reused = 0;
	bufferevent_setcb(u->bev, upstream_pool_read_cb, NULL,
	    upstream_pool_event_cb, u);
	upstream_reading(u, 1);
	TAILQ_INSERT_HEAD(&p->idle, u, entry);
	p->n++;
}
