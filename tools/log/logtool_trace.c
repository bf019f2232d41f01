/* logtool_trace: the "trace ID" command: every record of one request (or
 * of every request of one trace) from every hop, joined into a cascade:
 * the path on one line, a timeline, and the contradictions between hops. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/jsonw.h"
#include "tools/log/logtool.h"

#define TRACE_HOPS_MAX	(LOGTOOL_PATH_MAX + 2)
#define TRACE_NOTES_MAX	16

/* A matched record, kept with its own copy of the line. */
struct trace_item {
	char			*line;
	struct logtool_rec	 rec;
	struct logtool_scratch	 scratch;
	char			*src;
	int			 group;		/* index of its request */
	int			 used;		/* placed on the chain */
};

struct trace_items {
	struct trace_item	*v;
	int			 n, cap;
};

/* What the cascade of one request says, worked out from its records. */
struct trace_cascade {
	const char	*request_id, *trace_id;
	const char	*chain[TRACE_HOPS_MAX];	/* client .. upstream:NAME */
	int		 nchain;
	int		 origin_at;	/* index in chain, -1 when unknown */
	const char	*origin_kind, *origin_hop;
	const char	*notes[TRACE_NOTES_MAX];	/* contradictions */
	int		 nnotes;
	int		 ncancel;
};

static void	trace_cancel_path(const struct logtool_rec *, char *, size_t);

/* Whether a record belongs to the id asked for: its request or trace id
 * is the id or starts with it; a note_failed names it in its message. */
static int
trace_matches(const struct logtool_rec *r, const char *id, size_t n)
{
	if (r->request_id.p != NULL && r->request_id.n >= n &&
	    memcmp(r->request_id.p, id, n) == 0)
		return 1;
	if (r->trace_id.p != NULL && r->trace_id.n >= n &&
	    memcmp(r->trace_id.p, id, n) == 0)
		return 1;
	if (r->event == LOGTOOL_EV_NOTE_FAILED && r->message.p != NULL &&
	    memmem(r->message.p, r->message.n, id, n) != NULL)
		return 1;
	return 0;
}

/* Keeps a copy of a matched record, scanned again over the copy. */
static int
trace_keep(struct trace_items *items, const struct logtool_rec *r)
{
	struct trace_item	*it, *nv;

	if (items->n == items->cap) {
		items->cap = items->cap ? items->cap * 2 : 16;
		if ((nv = realloc(items->v, (size_t)items->cap *
		    sizeof(*nv))) == NULL)
			return -1;
		items->v = nv;
	}
	it = &items->v[items->n];
	memset(it, 0, sizeof(*it));
	if ((it->line = strndup(r->line, r->len)) == NULL ||
	    (it->src = strdup(r->src_name)) == NULL ||
	    logtool_scan(it->line, r->len, &it->rec, &it->scratch) == -1) {
		free(it->line);
		free(it->src);
		logtool_scratch_free(&it->scratch);
		return -1;
	}
	it->rec.src_name = it->src;
	it->rec.lineno = r->lineno;
	items->n++;
	return 0;
}

/* The request id of an item (a note_failed: the id its message names). */
static const char *
trace_item_rid(const struct trace_item *it, const struct trace_items *items)
{
	const struct logtool_rec *r = &it->rec;
	int			  i;

	if (r->request_id.p != NULL)
		return logtool_intern_str(r->request_id);
	for (i = 0; i < items->n; i++) {
		const struct logtool_str *s = &items->v[i].rec.request_id;

		if (s->p != NULL && r->message.p != NULL &&
		    memmem(r->message.p, r->message.n, s->p, s->n) != NULL)
			return logtool_intern_str(*s);
	}
	return logtool_intern("-", 1);
}

/* When a request arrived at its hop (the end minus its duration). */
static int64_t
trace_arrival(const struct logtool_rec *r)
{
	if (r->duration_ms < 0)
		return r->ts_us;
	return r->ts_us - (int64_t)(r->duration_ms * 1000 + 0.5);
}

/* Index of a name in the chain, or -1. */
static int
trace_chain_find(const struct trace_cascade *k, const char *name)
{
	int	 i;

	for (i = 0; i < k->nchain; i++)
		if (k->chain[i] == name)
			return i;
	return -1;
}

/* Inserts a hop into the chain at position at. */
static void
trace_chain_insert(struct trace_cascade *k, int at, const char *name)
{
	if (k->nchain >= TRACE_HOPS_MAX)
		return;
	memmove(&k->chain[at + 1], &k->chain[at],
	    (size_t)(k->nchain - at) * sizeof(k->chain[0]));
	k->chain[at] = name;
	k->nchain++;
}

/* Adds a contradiction (formatted) to the cascade. */
static void __attribute__((format(printf, 2, 3)))
trace_flag(struct trace_cascade *k, const char *fmt, ...)
{
	char	 buf[512];
	va_list	 ap;

	if (k->nnotes >= TRACE_NOTES_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	k->notes[k->nnotes++] = logtool_intern(buf, strlen(buf));
}

/* Whether a path element is a hop (not the client or an upstream). */
static int
trace_is_hop(const char *name)
{
	return strcmp(name, "client") != 0 &&
	    strncmp(name, "upstream:", 9) != 0;
}

/* The record of an event at a hop, or NULL. */
static const struct logtool_rec *
trace_find(struct trace_item **v, int n, enum logtool_event ev,
    const char *hop)
{
	int	 i;

	for (i = 0; i < n; i++)
		if (v[i]->rec.event == ev &&
		    logtool_intern_str(v[i]->rec.hop) == hop)
			return &v[i]->rec;
	return NULL;
}

/* Works out the chain of hops, the origin and the contradictions of one
 * request's records (v, in time order). */
static void
trace_analyse(struct trace_cascade *k, struct trace_item **v, int n,
    int64_t skew_us)
{
	const struct logtool_rec *r, *a, *b, *best = NULL;
	const char	*name, *up = NULL;
	const char	*okind, *ohop;
	int		 i, h, at, pos, prev, dir_down, step;
	char		 o1[256];

	k->origin_at = -1;
	k->chain[k->nchain++] = logtool_intern("client", 6);

	/* Cancel paths carry the true order of the hops, longest first; a
	 * hop a shorter path adds goes in after its neighbour toward the
	 * client. */
	for (;;) {
		const struct logtool_rec *next = NULL;

		for (i = 0; i < n; i++) {
			r = &v[i]->rec;
			if (r->event != LOGTOOL_EV_CANCEL || v[i]->used)
				continue;
			if (next == NULL || r->npath > next->npath)
				next = r;
		}
		if (next == NULL)
			break;
		for (i = 0; i < n; i++)
			if (&v[i]->rec == next)
				v[i]->used = 1;
		r = next;
		k->ncancel++;
		dir_down = logtool_str_eq(r->direction, "downstream");
		prev = 0;
		for (h = 0; h < r->npath; h++) {
			step = dir_down ? r->npath - 1 - h : h;
			name = logtool_intern_str(r->path[step]);
			if (strncmp(name, "upstream:", 9) == 0) {
				up = name;
				continue;
			}
			if (!trace_is_hop(name))
				continue;
			if ((pos = trace_chain_find(k, name)) == -1) {
				/* After its neighbour, and after hops the
				 * request reached before it. */
				a = trace_find(v, n, LOGTOOL_EV_REQUEST, name);
				for (pos = prev + 1; a != NULL &&
				    pos < k->nchain; pos++) {
					b = trace_find(v, n, LOGTOOL_EV_REQUEST,
					    k->chain[pos]);
					if (b == NULL ||
					    trace_arrival(b) > trace_arrival(a))
						break;
				}
				trace_chain_insert(k, pos, name);
			}
			prev = pos;
		}
		if (best == NULL || r->npath > best->npath ||
		    (r->npath == best->npath &&
		    logtool_str_eq(best->kind, "unknown") &&
		    !logtool_str_eq(r->kind, "unknown")))
			best = r;
	}

	/* Hops known only from their request records go where their
	 * arrival puts them among the hops with a known arrival. */
	for (i = 0; i < n; i++) {
		r = &v[i]->rec;
		if (r->event != LOGTOOL_EV_REQUEST)
			continue;
		name = logtool_intern_str(r->hop);
		if (trace_chain_find(k, name) != -1)
			continue;
		for (h = 1; h < k->nchain; h++) {
			a = trace_find(v, n, LOGTOOL_EV_REQUEST, k->chain[h]);
			if (a != NULL && trace_arrival(a) > trace_arrival(r))
				break;
		}
		trace_chain_insert(k, h, name);
	}

	/* The model side: what the innermost hop talked to. */
	if (up == NULL && k->nchain > 1) {
		name = k->chain[k->nchain - 1];
		if ((r = trace_find(v, n, LOGTOOL_EV_REQUEST, name)) == NULL)
			r = trace_find(v, n, LOGTOOL_EV_CANCEL, name);
		if (r != NULL && r->upstream.p != NULL) {
			snprintf(o1, sizeof(o1), "upstream:%.*s",
			    (int)r->upstream.n, r->upstream.p);
			up = logtool_intern(o1, strlen(o1));
		}
	}
	if (up != NULL && k->nchain < TRACE_HOPS_MAX)
		k->chain[k->nchain++] = up;

	if (best == NULL)
		return;		/* nothing was canceled */
	k->origin_kind = logtool_intern_str(best->kind);
	k->origin_hop = logtool_intern_str(best->origin_hop);
	if (k->origin_hop != NULL)
		k->origin_at = trace_chain_find(k, k->origin_hop);

	/* Two origins: the hops disagree about what started it. */
	for (i = 0; i < n; i++) {
		r = &v[i]->rec;
		if (r->event != LOGTOOL_EV_CANCEL)
			continue;
		okind = logtool_intern_str(r->kind);
		ohop = logtool_intern_str(r->origin_hop);
		if (okind != k->origin_kind || ohop != k->origin_hop) {
			trace_flag(k, "two origins: %.*s says %s at %s, %.*s "
			    "says %s at %s", (int)best->hop.n, best->hop.p,
			    k->origin_kind ? k->origin_kind : "-",
			    k->origin_hop ? k->origin_hop : "-",
			    (int)r->hop.n, r->hop.p, okind ? okind : "-",
			    ohop ? ohop : "-");
			break;
		}
	}

	/* Paths that skip a hop the request went through: a hop that did
	 * not know its upstream was a peer, or a log from another chain. */
	for (i = 0; i < n; i++) {
		r = &v[i]->rec;
		if (r->event != LOGTOOL_EV_CANCEL)
			continue;
		dir_down = logtool_str_eq(r->direction, "downstream");
		prev = -1;
		for (h = 0; h < r->npath; h++) {
			step = dir_down ? r->npath - 1 - h : h;
			name = logtool_intern_str(r->path[step]);
			if ((pos = trace_chain_find(k, name)) == -1)
				continue;
			if (prev >= 0 && pos != prev + 1) {
				trace_cancel_path(r, o1, sizeof(o1));
				trace_flag(k, "paths disagree: %.*s's cancel_path "
				    "%s %s %s", (int)r->hop.n, r->hop.p, o1,
				    pos > prev ? "skips" : "goes back over",
				    k->chain[pos > prev ? prev + 1 : pos]);
				break;
			}
			prev = pos;
		}
	}

	/* Missing hops, and hops the cancel should have reached. */
	for (h = 1; h < k->nchain; h++) {
		name = k->chain[h];
		if (!trace_is_hop(name))
			continue;
		a = trace_find(v, n, LOGTOOL_EV_CANCEL, name);
		b = trace_find(v, n, LOGTOOL_EV_REQUEST, name);
		if (a == NULL && b == NULL) {
			trace_flag(k, "missing hop: %s is on the path, but no "
			    "record from it was read (is its log among the "
			    "inputs?)", name);
			continue;
		}
		if (a == NULL && b != NULL) {
			if (logtool_str_eq(b->outcome, "canceled"))
				trace_flag(k, "missing record: %s says the "
				    "request was canceled, but wrote no "
				    "cancel record", name);
			else if (k->origin_at >= 0)
				trace_flag(k, "the cancel did not reach %s: "
				    "its request ended %.*s", name,
				    (int)b->outcome.n, b->outcome.p ?
				    b->outcome.p : "-");
		}
	}

	/* Times out of order along the path, beyond the skew allowed. */
	for (h = 1; h + 1 < k->nchain; h++) {
		if (!trace_is_hop(k->chain[h]) || !trace_is_hop(k->chain[h + 1]))
			continue;
		a = trace_find(v, n, LOGTOOL_EV_REQUEST, k->chain[h]);
		b = trace_find(v, n, LOGTOOL_EV_REQUEST, k->chain[h + 1]);
		if (a != NULL && b != NULL &&
		    trace_arrival(b) + skew_us < trace_arrival(a))
			trace_flag(k, "times out of order: the request reached "
			    "%s %.3f ms before %s, which is in front of it",
			    k->chain[h + 1], (double)(trace_arrival(a) -
			    trace_arrival(b)) / 1000, k->chain[h]);
	}
	at = k->origin_at;
	for (h = 1; at >= 0 && h < k->nchain; h++) {
		/* The cancel travels away from the origin both ways. */
		int	 from = h <= at ? h + 1 : h - 1;

		if (from < 0 || from >= k->nchain || h == at ||
		    !trace_is_hop(k->chain[h]) || !trace_is_hop(k->chain[from]))
			continue;
		a = trace_find(v, n, LOGTOOL_EV_CANCEL, k->chain[from]);
		b = trace_find(v, n, LOGTOOL_EV_CANCEL, k->chain[h]);
		if (a != NULL && b != NULL && b->ts_us + skew_us < a->ts_us)
			trace_flag(k, "times out of order: %s recorded the "
			    "cancel %.3f ms before %s, which passed it on",
			    k->chain[h], (double)(a->ts_us - b->ts_us) / 1000,
			    k->chain[from]);
	}
}

/* The chain with arrows pointing the way the cancel travelled. */
static void
trace_path_text(const struct trace_cascade *k, char *buf, size_t len)
{
	size_t	 off = 0;
	int	 i, n;

	buf[0] = '\0';
	for (i = 0; i < k->nchain && off < len; i++) {
		const char *arrow = "";

		if (i > 0)
			arrow = k->origin_at >= 0 && i <= k->origin_at ?
			    " <- " : k->origin_at >= 0 ? " -> " : " - ";
		n = snprintf(buf + off, len - off, "%s%s", arrow, k->chain[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* Time since t0, for the timeline. */
static void
trace_offset(char *buf, size_t len, int64_t us)
{
	if (us < 10000000 && us > -10000000)
		snprintf(buf, len, "%+.3f ms", (double)us / 1000);
	else
		snprintf(buf, len, "%+.3f s", (double)us / 1e6);
}

/* Copies a record string into buf ("-" when missing). */
static const char *
trace_s(char *buf, size_t len, struct logtool_str s)
{
	if (s.p == NULL)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.*s", (int)s.n, s.p);
	logtool_safe(buf, strlen(buf));
	return buf;
}

/* Adds a timeline row. */
static void
trace_row(struct logtool_table *t, int64_t off, const struct logtool_rec *r,
    const char *event, const char *origin, const char *detail)
{
	char		 o[64], hop[128], dir[32], ph[32], via[32], d2c[32];
	const char	*cells[9];

	trace_offset(o, sizeof(o), off);
	d2c[0] = '\0';
	dir[0] = ph[0] = via[0] = '\0';
	if (r->event == LOGTOOL_EV_CANCEL) {
		trace_s(dir, sizeof(dir), r->direction);
		trace_s(ph, sizeof(ph), r->phase);
		trace_s(via, sizeof(via), r->via);
		logtool_fmt_us(d2c, sizeof(d2c), r->d2c_us);
	}
	cells[0] = o;
	cells[1] = trace_s(hop, sizeof(hop), r->hop);
	cells[2] = event;
	cells[3] = origin;
	cells[4] = dir;
	cells[5] = ph;
	cells[6] = via;
	cells[7] = d2c;
	cells[8] = detail;
	logtool_table_row(t, cells);
}

/* A row of the timeline before sorting. */
struct trace_event {
	const struct logtool_rec *r;
	int64_t			  off;
	int			  arrival;	/* derived from a request */
	int			  seq;
};

/* By offset, then in the order read. */
static int
trace_event_cmp(const void *a, const void *b)
{
	const struct trace_event *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->seq - y->seq;
}

/* A cancel record's path as "client -> edge". */
static void
trace_cancel_path(const struct logtool_rec *r, char *buf, size_t len)
{
	size_t	 off = 0;
	int	 i, m;

	snprintf(buf, len, "-");
	for (i = 0; i < r->npath && off < len; i++) {
		m = snprintf(buf + off, len - off, "%s%.*s", i ? " -> " : "",
		    (int)r->path[i].n, r->path[i].p);
		if (m < 0)
			break;
		off += (size_t)m;
	}
}

/* Prints one request's cascade as text. */
static void
trace_print(const struct trace_cascade *k, struct trace_item **v, int n)
{
	struct logtool_table	 t;
	const struct logtool_rec *r, *first = NULL;
	static const char *const head[9] = { "OFFSET", "HOP", "EVENT",
	    "ORIGIN", "DIRECTION", "PHASE", "VIA", "CLOSE", "DETAIL" };
	char			 path[2048], origin[600], detail[1024];
	char			 a[64], b[64], s1[256], s2[256], s3[256];
	struct trace_event	*ev;
	int64_t			 t0 = INT64_MAX;
	int			 i, nev = 0;

	for (i = 0; i < n; i++) {
		r = &v[i]->rec;
		if (r->event == LOGTOOL_EV_REQUEST && (first == NULL ||
		    trace_arrival(r) < trace_arrival(first)))
			first = r;
		if (r->ts_us < t0)
			t0 = r->ts_us;
	}
	if (first != NULL && trace_arrival(first) < t0)
		t0 = trace_arrival(first);

	printf("%srequest %s%s", logtool_c(LOGTOOL_C_BOLD), k->request_id,
	    logtool_c(LOGTOOL_C_RESET));
	if (k->trace_id != NULL)
		printf("  trace %s", k->trace_id);
	printf("\n");
	if (first != NULL) {
		logtool_fmt_time(a, sizeof(a), trace_arrival(first), 1);
		printf("  request  %s %s, model %s, arrived at %s %s UTC\n",
		    trace_s(s1, sizeof(s1), first->method),
		    trace_s(s2, sizeof(s2), first->target),
		    trace_s(s3, sizeof(s3), first->model),
		    trace_s(detail, sizeof(detail), first->hop), a);
	}
	trace_path_text(k, path, sizeof(path));
	printf("  path     %s\n", path);
	if (k->origin_kind != NULL) {
		printf("  origin   %s%s%s at %s\n",
		    logtool_c(logtool_kind_color(k->origin_kind)),
		    k->origin_kind, logtool_c(LOGTOOL_C_RESET),
		    k->origin_hop ? k->origin_hop : "-");
	} else
		printf("  origin   none: no hop canceled this request\n");
	printf("\n");

	/* Arrivals (derived from request records) and records, by time. */
	if ((ev = calloc((size_t)n * 2, sizeof(*ev))) == NULL)
		return;
	for (i = 0; i < n; i++) {
		r = &v[i]->rec;
		if (r->event == LOGTOOL_EV_REQUEST) {
			ev[nev].r = r;
			ev[nev].arrival = 1;
			ev[nev].off = trace_arrival(r) - t0;
			ev[nev].seq = nev;
			nev++;
		}
		ev[nev].r = r;
		ev[nev].off = r->ts_us - t0;
		ev[nev].seq = nev;
		nev++;
	}
	qsort(ev, (size_t)nev, sizeof(*ev), trace_event_cmp);

	logtool_table_init(&t, 9, "rllllllrl");
	logtool_table_row(&t, head);
	for (i = 0; i < nev; i++) {
		r = ev[i].r;
		origin[0] = detail[0] = '\0';
		if (ev[i].arrival) {
			snprintf(detail, sizeof(detail), "%s %s from %s",
			    trace_s(s1, sizeof(s1), r->method),
			    trace_s(s2, sizeof(s2), r->target),
			    trace_s(s3, sizeof(s3), r->client));
			trace_row(&t, ev[i].off, r, "arrived", "", detail);
			continue;
		}
		switch (r->event) {
		case LOGTOOL_EV_CANCEL:
			snprintf(origin, sizeof(origin), "%s at %s",
			    trace_s(s1, sizeof(s1), r->kind),
			    trace_s(s2, sizeof(s2), r->origin_hop));
			logtool_fmt_ms(a, sizeof(a), (double)r->elapsed_ms);
			trace_cancel_path(r, s3, sizeof(s3));
			snprintf(detail, sizeof(detail), "at %s, %lld events, "
			    "%lld bytes out; path %s", a,
			    (long long)r->sse_events, (long long)r->bytes_out,
			    s3);
			trace_row(&t, ev[i].off, r, "cancel", origin, detail);
			break;
		case LOGTOOL_EV_REQUEST:
			logtool_fmt_ms(a, sizeof(a), r->duration_ms);
			logtool_fmt_ms(b, sizeof(b), r->ttfb_ms);
			snprintf(detail, sizeof(detail), "%lld %s after %s, "
			    "first byte %s, %lld events, %lld bytes out",
			    (long long)r->status,
			    trace_s(s1, sizeof(s1), r->outcome), a, b,
			    (long long)r->sse_events, (long long)r->bytes_out);
			if (r->has_usage)
				snprintf(detail + strlen(detail),
				    sizeof(detail) - strlen(detail),
				    ", %lld completion tokens",
				    (long long)r->completion_tokens);
			trace_row(&t, ev[i].off, r, "request", "", detail);
			break;
		case LOGTOOL_EV_NOTE:
			snprintf(origin, sizeof(origin), "%s",
			    trace_s(s1, sizeof(s1), r->origin_kind));
			snprintf(detail, sizeof(detail), "%s from %s (%s)%s%s",
			    trace_s(s1, sizeof(s1), r->outcome),
			    trace_s(s2, sizeof(s2), r->from),
			    trace_s(s3, sizeof(s3), r->target),
			    r->reason.p ? ": " : "", r->reason.p ?
			    trace_s(b, sizeof(b), r->reason) : "");
			trace_row(&t, ev[i].off, r, "note", origin, detail);
			break;
		case LOGTOOL_EV_NOTE_FAILED:
			trace_row(&t, ev[i].off, r, "note_failed", "",
			    trace_s(detail, sizeof(detail), r->message));
			break;
		default:
			break;
		}
	}
	free(ev);
	logtool_table_print(&t, stdout, "  ");
	logtool_table_free(&t);
	printf("\n");
	if (k->nnotes == 0)
		printf("  %sno contradictions%s\n", logtool_c(LOGTOOL_C_GREEN),
		    logtool_c(LOGTOOL_C_RESET));
	for (i = 0; i < k->nnotes; i++)
		printf("  %s! %s%s\n", logtool_c(LOGTOOL_C_RED), k->notes[i],
		    logtool_c(LOGTOOL_C_RESET));
}

/* Prints one request's cascade as one JSON line. */
static void
trace_print_json(const struct trace_cascade *k, struct trace_item **v, int n)
{
	struct jsonw	 w;
	char		 path[2048];
	int		 i;

	jsonw_init(&w, NULL, 0);
	jsonw_obj_open(&w);
	jsonw_kstr(&w, "request_id", k->request_id);
	jsonw_kstr(&w, "trace_id", k->trace_id);
	jsonw_lkey(&w, "chain");
	jsonw_arr_open(&w);
	for (i = 0; i < k->nchain; i++)
		jsonw_str(&w, k->chain[i]);
	jsonw_arr_close(&w);
	trace_path_text(k, path, sizeof(path));
	jsonw_kstr(&w, "path", path);
	jsonw_lkey(&w, "origin");
	if (k->origin_kind != NULL) {
		jsonw_obj_open(&w);
		jsonw_kstr(&w, "kind", k->origin_kind);
		jsonw_kstr(&w, "hop", k->origin_hop);
		jsonw_obj_close(&w);
	} else
		jsonw_null(&w);
	jsonw_kint(&w, "cancels", k->ncancel);
	jsonw_lkey(&w, "contradictions");
	jsonw_arr_open(&w);
	for (i = 0; i < k->nnotes; i++)
		jsonw_str(&w, k->notes[i]);
	jsonw_arr_close(&w);
	jsonw_lkey(&w, "records");
	jsonw_arr_open(&w);
	for (i = 0; i < n; i++) {
		jsonw_raw(&w, v[i]->line, v[i]->rec.len);
	}
	jsonw_arr_close(&w);
	jsonw_obj_close(&w);
	fwrite(w.buf, 1, w.len, stdout);
	fputc('\n', stdout);
	jsonw_free(&w);
}

/* The trace command. */
int
logtool_cmd_trace(struct logtool_opts *o)
{
	struct logtool_input	 in;
	struct logtool_rec	*r;
	struct trace_items	 items = { NULL, 0, 0 };
	struct trace_item	**v = NULL;
	struct trace_cascade	 k;
	const char		**rids = NULL;
	size_t			 idn = strlen(o->id);
	int			 i, g, nrid = 0, nv, bad, oom = 0;

	if (logtool_input_open(&in, o->files, o->nfiles, 0) == -1) {
		logtool_input_free(&in);
		return LOGTOOL_EXIT_BAD;
	}
	while (logtool_input_next(&in, &r) == 1) {
		if (r->event == LOGTOOL_EV_OTHER || !trace_matches(r, o->id, idn))
			continue;
		if (trace_keep(&items, r) == -1)
			oom = 1;
	}
	bad = in.errors != 0 || oom;
	logtool_input_report(&in);
	logtool_input_free(&in);

	/* One cascade per request id, in order of first appearance. */
	if (items.n > 0 && ((rids = calloc((size_t)items.n, sizeof(*rids))) ==
	    NULL || (v = calloc((size_t)items.n, sizeof(*v))) == NULL)) {
		fprintf(stderr, "cancelproxy-log: out of memory\n");
		return LOGTOOL_EXIT_BAD;
	}
	for (i = 0; i < items.n; i++) {
		const char *rid = trace_item_rid(&items.v[i], &items);

		for (g = 0; g < nrid && rids[g] != rid; g++)
			;
		if (g == nrid)
			rids[nrid++] = rid;
		items.v[i].group = g;
	}
	for (g = 0; g < nrid; g++) {
		nv = 0;
		for (i = 0; i < items.n; i++)
			if (items.v[i].group == g)
				v[nv++] = &items.v[i];
		memset(&k, 0, sizeof(k));
		k.request_id = rids[g];
		for (i = 0; i < nv && k.trace_id == NULL; i++)
			k.trace_id = logtool_intern_str(v[i]->rec.trace_id);
		trace_analyse(&k, v, nv, o->skew_us);
		if (o->json)
			trace_print_json(&k, v, nv);
		else {
			if (g > 0)
				printf("\n");
			trace_print(&k, v, nv);
		}
	}
	if (items.n == 0)
		fprintf(stderr, "cancelproxy-log: no record has the request "
		    "or trace id %s\n", o->id);
	for (i = 0; i < items.n; i++) {
		free(items.v[i].line);
		free(items.v[i].src);
		logtool_scratch_free(&items.v[i].scratch);
	}
	free(items.v);
	free(v);
	free(rids);
	if (bad)
		return LOGTOOL_EXIT_BAD;
	return items.n ? LOGTOOL_EXIT_FOUND : LOGTOOL_EXIT_NOTHING;
}
