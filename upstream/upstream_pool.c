/* upstream_pool: idle keep-alive connections per worker, most recently
 * used first; a connection whose peer speaks or closes while idle is gone. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy/log.h"
#include "proxy/session.h"
#include "upstream/upstream_priv.h"

/* How many idle connections one destination has (its pool key). */
struct upstream_pool_key {
	uint64_t	 hash;
	char		*key;
	size_t		 idle;
};

struct upstream_pool {
	struct worker			*w;
	struct upstream_conn_list	 idle;
	struct upstream_pool_key	*keys;	/* those with idle connections */
	size_t				 nkeys;
	size_t				 capkeys;
	struct upstream_h2_set		*h2;	/* HTTP/2 connections */
};

/* The pool's slot for the worker's HTTP/2 connections. */
struct upstream_h2_set **
upstream_pool_h2(struct upstream_pool *p)
{
	return &p->h2;
}


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
	size_t			 i;

	if (p == NULL)
		return;
	while ((u = TAILQ_FIRST(&p->idle)) != NULL) {
		TAILQ_REMOVE(&p->idle, u, entry);
		upstream_conn_close(u);
	}
	upstream_h2_free(p->h2);
	for (i = 0; i < p->nkeys; i++)
		free(p->keys[i].key);
	free(p->keys);
	free(p);
}

/* Whether u goes to the destination with this pool key. */
static int
upstream_pool_same(const struct upstream_conn *u, uint64_t hash,
    const char *key)
{
	return u->key_hash == hash && strcmp(u->key, key) == 0;
}

/* The idle count of u's destination; with create, a new entry at zero
 * (NULL when memory ran out). A few destinations per worker: a list. */
static struct upstream_pool_key *
upstream_pool_key(struct upstream_pool *p, const struct upstream_conn *u,
    int create)
{
	struct upstream_pool_key	*k;
	size_t				 i, ncap;

	for (i = 0; i < p->nkeys; i++)
		if (upstream_pool_same(u, p->keys[i].hash, p->keys[i].key))
			return &p->keys[i];
	if (!create)
		return NULL;
	if (p->nkeys == p->capkeys) {
		ncap = p->capkeys ? p->capkeys * 2 : 4;
		if ((k = realloc(p->keys, ncap * sizeof(*k))) == NULL)
			return NULL;
		p->keys = k;
		p->capkeys = ncap;
	}
	k = &p->keys[p->nkeys];
	if ((k->key = strdup(u->key)) == NULL)
		return NULL;
	k->hash = u->key_hash;
	k->idle = 0;
	p->nkeys++;
	return k;
}

/* Takes u off the idle list and out of its destination's count. */
static void
upstream_pool_remove(struct upstream_pool *p, struct upstream_conn *u)
{
	struct upstream_pool_key	*k = upstream_pool_key(p, u, 0);

	TAILQ_REMOVE(&p->idle, u, entry);
	if (k != NULL && --k->idle == 0) {
		free(k->key);
		*k = p->keys[--p->nkeys];
	}
}

static void
upstream_pool_drop(struct upstream_pool *p, struct upstream_conn *u)
{
	upstream_pool_remove(p, u);
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
			upstream_pool_remove(p, u);
			return u;
		}
	}
	return NULL;
}

void
upstream_pool_release(struct session *s)
{
	struct upstream_conn	*u = s->up;
	struct upstream_pool	*p = s->w->pool;
	struct upstream_pool_key *k;

	if (u == NULL)
		return;
	if (s->up_watch != NULL) {
		pause_watch_stop(s->up_watch);
		s->up_watch = NULL;
	}
	s->up = NULL;
	u->s = NULL;
	/* Kept only while its destination has fewer idle than keepalive. */
	if (!u->connected || !u->keepalive || s->w->draining ||
	    evbuffer_get_length(bufferevent_get_input(u->bev)) > 0 ||
	    (k = upstream_pool_key(p, u, 1)) == NULL ||
	    (size_t)s->up_conf->keepalive <= k->idle) {
		upstream_conn_close(u);
		return;
	}
	k->idle++;
	u->idle_since_us = clock_mono_us();
	u->reused = 0;
	bufferevent_setcb(u->bev, upstream_pool_read_cb, NULL,
	    upstream_pool_event_cb, u);
	upstream_reading(u, 1);
	TAILQ_INSERT_HEAD(&p->idle, u, entry);
}
