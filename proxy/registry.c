/* registry: each worker's live sessions by request id, so a note, a
 * cancel call or an admin request can find a stream; touched only by the
 * worker's own thread, so it needs no lock. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "proxy/proxy.h"
#include "proxy/session.h"

static uint32_t
registry_hash(const char *s)
{
	uint32_t	 h = 2166136261u;	/* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static int
registry_grow(struct registry *r)
{
	size_t		 nb = r->nbuckets ? r->nbuckets * 2 : 64, i;
	struct session	**b, *s, *next;

	if ((b = calloc(nb, sizeof(*b))) == NULL)
		return -1;
	for (i = 0; i < r->nbuckets; i++)
		for (s = r->buckets[i]; s != NULL; s = next) {
			next = s->reg_next;
			s->reg_next = b[registry_hash(s->request_id) & (nb - 1)];
			b[registry_hash(s->request_id) & (nb - 1)] = s;
		}
	free(r->buckets);
	r->buckets = b;
	r->nbuckets = nb;
	return 0;
}

/* Indexes s by its request id (ids may repeat: clients choose them). */
void
registry_add(struct registry *r, struct session *s)
{
	size_t	 i;

	if (s->registered)
		return;
	if (r->n + 1 > r->nbuckets && registry_grow(r) == -1)
		return;
	i = registry_hash(s->request_id) & (r->nbuckets - 1);
	s->reg_next = r->buckets[i];
	r->buckets[i] = s;
	s->registered = 1;
	r->n++;
}

void
registry_remove(struct registry *r, struct session *s)
{
	struct session	**pp;

	if (!s->registered)
		return;
	pp = &r->buckets[registry_hash(s->request_id) & (r->nbuckets - 1)];
	for (; *pp != NULL; pp = &(*pp)->reg_next)
		if (*pp == s) {
			*pp = s->reg_next;
			s->reg_next = NULL;
			s->registered = 0;
			r->n--;
			return;
		}
}

/* The first session with this request id, or NULL. */
struct session *
registry_find(struct registry *r, const char *request_id)
{
	struct session	*s;

	if (r->nbuckets == 0)
		return NULL;
	for (s = r->buckets[registry_hash(request_id) & (r->nbuckets - 1)];
	    s != NULL; s = s->reg_next)
		if (strcmp(s->request_id, request_id) == 0)
			return s;
	return NULL;
}

void
registry_free(struct registry *r)
{
	free(r->buckets);
	memset(r, 0, sizeof(*r));
}
