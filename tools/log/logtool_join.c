/* logtool_join: the join index. A cancel record is held until the request
 * record of the same request at the same hop has been read (it carries the
 * model and the usage), then handed on in log order; memory is bounded by
 * the cancels of the last few seconds of log time, not by the log's size.
 * Short strings (hops, kinds, models) are interned here. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/log/logtool.h"

#define INTERN_MIN	256

/* A request record of a canceled request read before its cancel record. */
struct logtool_wait {
	const char		*hop;
	char			*request_id;
	const char		*model;
	int64_t			 ts_us, status;
	uint64_t		 seq;
	double			 duration_ms, ttfb_ms;
	int			 has_usage;
	int64_t			 prompt_tokens, completion_tokens;
	int64_t			 total_tokens;
	uint64_t		 hash;
	struct logtool_wait	*hnext;		/* bucket chain */
	struct logtool_wait	*next;		/* oldest first */
};

/* The set of interned strings (open addressing). */
static struct {
	char	**slot;
	size_t	  nslot, n;
} intern;

/* FNV-1a: short keys, few collisions, no setup. */
static uint64_t
join_hash(const char *p, size_t n)
{
	uint64_t	 h = 1469598103934665603ULL;
	size_t		 i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Monotonic microseconds. */
int64_t
logtool_mono_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Doubles the interned-string set and places every string again. */
static int
intern_grow(void)
{
	char	**nslot, **old = intern.slot;
	size_t	  nn = intern.nslot ? intern.nslot * 2 : INTERN_MIN, i, j;

	if ((nslot = calloc(nn, sizeof(*nslot))) == NULL)
		return -1;
	for (i = 0; i < intern.nslot; i++) {
		if (old[i] == NULL)
			continue;
		j = join_hash(old[i], strlen(old[i])) & (nn - 1);
		while (nslot[j] != NULL)
			j = (j + 1) & (nn - 1);
		nslot[j] = old[i];
	}
	free(old);
	intern.slot = nslot;
	intern.nslot = nn;
	return 0;
}

/* The one NUL-terminated copy of p[0..n); aborts when memory runs out,
 * since every part of the tool needs these few strings. */
const char *
logtool_intern(const char *p, size_t n)
{
	uint64_t	 h = 1469598103934665603ULL;
	size_t		 i, j;
	int		 ctl = 0;
	char		*s;
	const char	*r;

	if (intern.n * 2 >= intern.nslot && intern_grow() == -1)
		abort();
	/* join_hash, noticing control characters on the way: those strings
	 * are kept safe to print (rare, so a copy is fine). */
	for (i = 0; i < n; i++) {
		ctl |= (unsigned char)p[i] < 0x20 || p[i] == 0x7f;
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	if (ctl) {
		if ((s = malloc(n + 1)) == NULL)
			abort();
		memcpy(s, p, n);
		logtool_safe(s, n);
		r = logtool_intern(s, n);
		free(s);
		return r;
	}
	j = h & (intern.nslot - 1);
	while ((s = intern.slot[j]) != NULL) {
		if (strncmp(s, p, n) == 0 && s[n] == '\0')
			return s;
		j = (j + 1) & (intern.nslot - 1);
	}
	if ((s = malloc(n + 1)) == NULL)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	intern.slot[j] = s;
	intern.n++;
	return s;
}

/* logtool_intern for a record string; NULL when missing. */
const char *
logtool_intern_str(struct logtool_str s)
{
	return s.p == NULL ? NULL : logtool_intern(s.p, s.n);
}

/* Frees every interned string (at exit). */
void
logtool_intern_free(void)
{
	size_t	 i;

	for (i = 0; i < intern.nslot; i++)
		free(intern.slot[i]);
	free(intern.slot);
	intern.slot = NULL;
	intern.nslot = intern.n = 0;
}

/* Copies a record string to *dst inside a block being filled at *at. */
static char *
join_copy(char **at, struct logtool_str s)
{
	char	*d = *at;

	if (s.p == NULL)
		return NULL;
	memcpy(d, s.p, s.n);
	d[s.n] = '\0';
	*at = d + s.n + 1;
	return d;
}

/* join_copy for a string that will be printed. */
static char *
join_copy_safe(char **at, struct logtool_str s)
{
	char	*d = join_copy(at, s);

	if (d != NULL)
		logtool_safe(d, s.n);
	return d;
}

/* A cancel copied out of a record (one allocation), not joined yet. */
struct logtool_cancel *
logtool_cancel_new(const struct logtool_rec *r)
{
	struct logtool_cancel	*c;
	size_t			 extra;
	char			*at;
	int			 i;

	extra = r->request_id.n + r->trace_id.n + r->message.n + r->len + 4;
	if ((c = calloc(1, sizeof(*c) + extra)) == NULL)
		return NULL;
	at = (char *)(c + 1);
	c->request_id = join_copy_safe(&at, r->request_id);
	c->trace_id = join_copy_safe(&at, r->trace_id);
	c->message = join_copy_safe(&at, r->message);
	c->line = join_copy(&at, (struct logtool_str){ r->line, r->len });
	c->linelen = r->len;
	c->ts_us = r->ts_us;
	c->hop = logtool_intern_str(r->hop);
	c->kind = logtool_intern_str(r->kind);
	c->origin_hop = logtool_intern_str(r->origin_hop);
	c->direction = logtool_intern_str(r->direction);
	c->phase = logtool_intern_str(r->phase);
	c->via = logtool_intern_str(r->via);
	c->upstream = logtool_intern_str(r->upstream);
	c->protocol = logtool_intern_str(r->protocol);
	for (i = 0; i < r->npath; i++)
		c->path[i] = logtool_intern_str(r->path[i]);
	c->npath = r->npath;
	c->elapsed_ms = r->elapsed_ms;
	c->d2c_us = r->d2c_us;
	c->sse_events = r->sse_events;
	c->bytes_out = r->bytes_out;
	c->duration_ms = c->ttfb_ms = -1;
	c->status = -1;
	c->prompt_tokens = c->completion_tokens = c->total_tokens = -1;
	return c;
}

/* Frees a cancel the emit callback kept. */
void
logtool_cancel_free(struct logtool_cancel *c)
{
	free(c);
}

/* Starts an empty index that hands resolved cancels to emit. */
void
logtool_join_init(struct logtool_join *j, logtool_emit_cb emit, void *arg)
{
	memset(j, 0, sizeof(*j));
	TAILQ_INIT(&j->fifo);
	j->emit = emit;
	j->arg = arg;
	j->clock_us = INT64_MIN;
}

/* The hash of (hop, request_id); hops are interned, so their
 * addresses stand for them. */
static uint64_t
join_key(const char *hop, const char *rid, size_t n)
{
	return join_hash(rid, n) ^ ((uint64_t)(uintptr_t)hop *
	    0x9e3779b97f4a7c15ULL);
}

/* Grows both bucket arrays together when they get crowded. */
static void
join_rehash(struct logtool_join *j)
{
	struct logtool_cancel	**cb, *c, *cn;
	struct logtool_wait	**wb, *w, *wn;
	size_t			  nn = j->nbucket ? j->nbucket * 2 : 1024, i;

	if ((cb = calloc(nn, sizeof(*cb))) == NULL ||
	    (wb = calloc(nn, sizeof(*wb))) == NULL) {
		free(cb);
		return;		/* chains just get longer */
	}
	for (i = 0; i < j->nbucket; i++) {
		for (c = j->cbucket[i]; c != NULL; c = cn) {
			cn = c->hnext;
			c->hnext = cb[c->hash & (nn - 1)];
			cb[c->hash & (nn - 1)] = c;
		}
		for (w = j->wbucket[i]; w != NULL; w = wn) {
			wn = w->hnext;
			w->hnext = wb[w->hash & (nn - 1)];
			wb[w->hash & (nn - 1)] = w;
		}
	}
	free(j->cbucket);
	free(j->wbucket);
	j->cbucket = cb;
	j->wbucket = wb;
	j->nbucket = nn;
}

/* Takes a waiting cancel off the index (not the queue). */
static void
join_cancel_unlink(struct logtool_join *j, struct logtool_cancel *c)
{
	struct logtool_cancel	**pp;

	for (pp = &j->cbucket[c->hash & (j->nbucket - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			c->hnext = NULL;
			j->ncancel--;
			return;
		}
}

/* Takes the waiting request record w off the index (not the queue). */
static void
join_wait_unlink(struct logtool_join *j, struct logtool_wait *w)
{
	struct logtool_wait	**pp;

	for (pp = &j->wbucket[w->hash & (j->nbucket - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == w) {
			*pp = w->hnext;
			w->hnext = NULL;
			return;
		}
}

/* Hands on the cancels at the front of the queue that are resolved, or
 * whose request record can no longer come (older than the window). */
static void
join_drain(struct logtool_join *j, int64_t age_us, int all)
{
	struct logtool_cancel	*c;
	struct logtool_wait	*w;
	int64_t			 now = age_us >= 0 ? logtool_mono_us() : 0;

	while ((c = TAILQ_FIRST(&j->fifo)) != NULL) {
		/* Its request record is given up on once the log has moved
		 * on by the window in time and by some records (logs that
		 * were concatenated go back in time). */
		if (!all && !c->resolved &&
		    (c->ts_us + LOGTOOL_JOIN_WINDOW_US >= j->clock_us ||
		    j->seq - c->seq < LOGTOOL_JOIN_MIN_RECORDS) &&
		    (age_us < 0 || now - c->read_us < age_us))
			break;
		TAILQ_REMOVE(&j->fifo, c, fifo);
		if (!c->resolved)
			join_cancel_unlink(j, c);
		j->emitted++;
		if (!j->emit(c, j->arg))
			logtool_cancel_free(c);
	}
	/* Request records whose cancel never came are dropped. */
	while ((w = j->whead) != NULL && (all ||
	    (w->ts_us + LOGTOOL_JOIN_WINDOW_US < j->clock_us &&
	    j->seq - w->seq >= LOGTOOL_JOIN_MIN_RECORDS))) {
		j->whead = w->next;
		if (j->whead == NULL)
			j->wtail = NULL;
		if (w->request_id != NULL)
			join_wait_unlink(j, w);
		j->nwait--;
		free(w->request_id);
		free(w);
	}
}

/* Copies the request side of the join into the cancel. */
static void
join_fill(struct logtool_cancel *c, const char *model, int64_t status,
    double duration_ms, double ttfb_ms, int has_usage, int64_t pt,
    int64_t ct, int64_t tt)
{
	c->has_request = 1;
	c->model = model;
	c->status = status;
	c->duration_ms = duration_ms;
	c->ttfb_ms = ttfb_ms;
	c->has_usage = has_usage;
	c->prompt_tokens = pt;
	c->completion_tokens = ct;
	c->total_tokens = tt;
	c->resolved = 1;
}

/* A cancel record: joined at once if its request record came first. */
static void
join_add_cancel(struct logtool_join *j, const struct logtool_rec *r)
{
	struct logtool_cancel	*c;
	struct logtool_wait	*w;
	size_t			 b;

	if ((c = logtool_cancel_new(r)) == NULL)
		return;
	c->read_us = logtool_mono_us();
	c->seq = j->seq;
	TAILQ_INSERT_TAIL(&j->fifo, c, fifo);
	if (c->request_id == NULL) {
		c->resolved = 1;	/* nothing to join on */
		return;
	}
	if (j->ncancel + j->nwait >= j->nbucket)
		join_rehash(j);
	if (j->nbucket == 0) {
		c->resolved = 1;
		return;
	}
	c->hash = join_key(c->hop, c->request_id, strlen(c->request_id));
	b = c->hash & (j->nbucket - 1);
	for (w = j->wbucket[b]; w != NULL; w = w->hnext)
		if (w->hash == c->hash && w->hop == c->hop &&
		    w->request_id != NULL &&
		    strcmp(w->request_id, c->request_id) == 0)
			break;
	if (w != NULL) {
		join_fill(c, w->model, w->status, w->duration_ms, w->ttfb_ms,
		    w->has_usage, w->prompt_tokens, w->completion_tokens,
		    w->total_tokens);
		join_wait_unlink(j, w);
		free(w->request_id);
		w->request_id = NULL;	/* expires with the queue */
		w->hash = 0;
		return;
	}
	c->hnext = j->cbucket[b];
	j->cbucket[b] = c;
	j->ncancel++;
}

/* A request record: completes its cancel, or waits for it when the
 * request was canceled and its cancel record is still to come. */
static void
join_add_request(struct logtool_join *j, const struct logtool_rec *r)
{
	struct logtool_cancel	*c;
	struct logtool_wait	*w;
	const char		*hop;
	uint64_t		 h;
	size_t			 b;

	if (r->request_id.p == NULL)
		return;
	if (j->ncancel + j->nwait >= j->nbucket)
		join_rehash(j);
	if (j->nbucket == 0)
		return;
	hop = logtool_intern_str(r->hop);
	h = join_key(hop, r->request_id.p, r->request_id.n);
	b = h & (j->nbucket - 1);
	for (c = j->cbucket[b]; c != NULL; c = c->hnext)
		if (c->hash == h && c->hop == hop &&
		    strlen(c->request_id) == r->request_id.n &&
		    memcmp(c->request_id, r->request_id.p, r->request_id.n) == 0)
			break;
	if (c != NULL) {
		join_cancel_unlink(j, c);
		join_fill(c, logtool_intern_str(r->model), r->status,
		    r->duration_ms, r->ttfb_ms, r->has_usage, r->prompt_tokens,
		    r->completion_tokens, r->total_tokens);
		return;
	}
	if (!logtool_str_eq(r->outcome, "canceled"))
		return;
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->request_id = strndup(r->request_id.p, r->request_id.n)) ==
	    NULL) {
		free(w);
		return;
	}
	w->hop = hop;
	w->model = logtool_intern_str(r->model);
	w->ts_us = r->ts_us;
	w->seq = j->seq;
	w->status = r->status;
	w->duration_ms = r->duration_ms;
	w->ttfb_ms = r->ttfb_ms;
	w->has_usage = r->has_usage;
	w->prompt_tokens = r->prompt_tokens;
	w->completion_tokens = r->completion_tokens;
	w->total_tokens = r->total_tokens;
	w->hash = h;
	w->hnext = j->wbucket[b];
	j->wbucket[b] = w;
	if (j->wtail != NULL)
		j->wtail->next = w;
	else
		j->whead = w;
	j->wtail = w;
	j->nwait++;
}

/* Feeds a record; cancels and request records are joined. */
void
logtool_join_add(struct logtool_join *j, const struct logtool_rec *r)
{
	if (r->ts_us > j->clock_us)
		j->clock_us = r->ts_us;
	j->seq++;
	if (r->event == LOGTOOL_EV_CANCEL)
		join_add_cancel(j, r);
	else if (r->event == LOGTOOL_EV_REQUEST)
		join_add_request(j, r);
	else
		return;
	join_drain(j, -1, 0);
}

/* Hands on cancels read at least age_us ago, or every cancel. */
void
logtool_join_flush(struct logtool_join *j, int64_t age_us)
{
	join_drain(j, age_us, age_us < 0);
}

/* Frees what is still held, without handing it on. */
void
logtool_join_free(struct logtool_join *j)
{
	struct logtool_cancel	*c;
	struct logtool_wait	*w;

	while ((c = TAILQ_FIRST(&j->fifo)) != NULL) {
		TAILQ_REMOVE(&j->fifo, c, fifo);
		free(c);
	}
	while ((w = j->whead) != NULL) {
		j->whead = w->next;
		free(w->request_id);
		free(w);
	}
	free(j->cbucket);
	free(j->wbucket);
	memset(j, 0, sizeof(*j));
	TAILQ_INIT(&j->fifo);
}
