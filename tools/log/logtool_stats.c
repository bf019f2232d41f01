/* logtool_stats: the "stats" command: counts, detect-to-close and
 * time-into-request percentiles, what was relayed before the cancel, by
 * origin kind, hop, phase, upstream and model, as text or JSON; the same
 * numbers feed the HTML report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/jsonw.h"
#include "tools/log/logtool.h"

/* Edges of the terminal histograms. */
static const uint64_t stats_d2c_edges[] = { 0, 10, 20, 50, 100, 200, 500,
    1000, 2000, 5000, 10000, 20000, 50000, 100000, 1000000 };
static const uint64_t stats_elapsed_edges[] = { 0, 10, 100, 250, 500, 1000,
    2000, 5000, 10000, 30000, 60000, 120000, 300000 };

enum stats_dim {
	DIM_KIND,
	DIM_HOP,
	DIM_PHASE,
	DIM_UPSTREAM,
	DIM_MODEL,
	DIM_DIRECTION,
	DIM_VIA,
	DIM_PROTOCOL,
	DIM_COUNT,
	DIM_SHOWN = DIM_DIRECTION	/* shown without --by */
};

static const struct {
	const char	*key;		/* --by and JSON */
	const char	*title;
	const char	*column;
	int		 requests;	/* request records carry this value */
} stats_dims[DIM_COUNT] = {
	{ "kind", "by origin kind", "KIND", 0 },
	{ "hop", "by hop (where the record was written)", "HOP", 1 },
	{ "phase", "by phase", "PHASE", 0 },
	{ "upstream", "by upstream", "UPSTREAM", 1 },
	{ "model", "by model", "MODEL", 1 },
	{ "direction", "by direction", "DIRECTION", 0 },
	{ "via", "by how it was noticed", "VIA", 0 },
	{ "protocol", "by the client's protocol", "PROTOCOL", 1 },
};

/* The numbers kept for one value of one dimension (or for all). */
struct stats_group {
	const char		*name;
	uint64_t		 requests, cancels, d2c_null;
	struct logtool_hist	 d2c, elapsed;
	uint64_t		 sse_events, bytes_out;
	uint64_t		 usage_n, prompt_tokens, completion_tokens;
	uint64_t		 total_tokens;
};

struct stats_groups {
	struct stats_group	*g;
	int			 n, cap;
};

struct logtool_stats {
	struct stats_groups	 dim[DIM_COUNT];
	struct stats_group	 all;
	uint64_t		 req_completed, req_canceled, req_error;
	uint64_t		 req_other;
	uint64_t		 notes_applied, notes_other, notes_failed;
	int64_t			 first_us, last_us;	/* of every record */
	struct logtool_bars	 d2c_bars, elapsed_bars;
};

/* An empty set of statistics. */
struct logtool_stats *
logtool_stats_new(void)
{
	struct logtool_stats	*st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	st->first_us = st->last_us = -1;
	st->all.name = "all";
	st->d2c_bars.edges = stats_d2c_edges;
	st->d2c_bars.n = sizeof(stats_d2c_edges) / sizeof(stats_d2c_edges[0]);
	st->d2c_bars.us = 1;
	st->elapsed_bars.edges = stats_elapsed_edges;
	st->elapsed_bars.n = sizeof(stats_elapsed_edges) /
	    sizeof(stats_elapsed_edges[0]);
	return st;
}

/* The group of an interned value (NULL is "-"), made on first use. */
static struct stats_group *
stats_group(struct stats_groups *gs, const char *name)
{
	struct stats_group	*ng;
	int			 i;

	if (name == NULL)
		name = logtool_intern("-", 1);
	for (i = 0; i < gs->n; i++)
		if (gs->g[i].name == name)
			return &gs->g[i];
	if (gs->n == gs->cap) {
		gs->cap = gs->cap ? gs->cap * 2 : 8;
		if ((ng = realloc(gs->g, (size_t)gs->cap * sizeof(*ng))) ==
		    NULL)
			abort();
		gs->g = ng;
	}
	memset(&gs->g[gs->n], 0, sizeof(gs->g[0]));
	gs->g[gs->n].name = name;
	return &gs->g[gs->n++];
}

/* Counts a request record (for cancel rates and the summary). */
void
logtool_stats_request(struct logtool_stats *st, const struct logtool_rec *r)
{
	if (logtool_str_eq(r->outcome, "completed"))
		st->req_completed++;
	else if (logtool_str_eq(r->outcome, "canceled"))
		st->req_canceled++;
	else if (logtool_str_eq(r->outcome, "error"))
		st->req_error++;
	else
		st->req_other++;
	st->all.requests++;
	stats_group(&st->dim[DIM_HOP], logtool_intern_str(r->hop))->requests++;
	stats_group(&st->dim[DIM_UPSTREAM],
	    logtool_intern_str(r->upstream))->requests++;
	stats_group(&st->dim[DIM_MODEL],
	    logtool_intern_str(r->model))->requests++;
	stats_group(&st->dim[DIM_PROTOCOL],
	    logtool_intern_str(r->protocol))->requests++;
}

/* Adds a cancel to one group. */
static void
stats_group_add(struct stats_group *g, const struct logtool_cancel *c)
{
	g->cancels++;
	if (c->d2c_us >= 0)
		logtool_hist_add(&g->d2c, (uint64_t)c->d2c_us);
	else
		g->d2c_null++;
	if (c->elapsed_ms >= 0)
		logtool_hist_add(&g->elapsed, (uint64_t)c->elapsed_ms);
	if (c->sse_events > 0)
		g->sse_events += (uint64_t)c->sse_events;
	if (c->bytes_out > 0)
		g->bytes_out += (uint64_t)c->bytes_out;
	if (c->has_usage) {
		g->usage_n++;
		if (c->prompt_tokens > 0)
			g->prompt_tokens += (uint64_t)c->prompt_tokens;
		if (c->completion_tokens > 0)
			g->completion_tokens += (uint64_t)c->completion_tokens;
		if (c->total_tokens > 0)
			g->total_tokens += (uint64_t)c->total_tokens;
	}
}

/* Adds a joined cancel to every dimension. */
void
logtool_stats_cancel(struct logtool_stats *st, const struct logtool_cancel *c)
{
	stats_group_add(&st->all, c);
	stats_group_add(stats_group(&st->dim[DIM_KIND], c->kind), c);
	stats_group_add(stats_group(&st->dim[DIM_HOP], c->hop), c);
	stats_group_add(stats_group(&st->dim[DIM_PHASE], c->phase), c);
	stats_group_add(stats_group(&st->dim[DIM_UPSTREAM], c->upstream), c);
	stats_group_add(stats_group(&st->dim[DIM_MODEL], c->model), c);
	stats_group_add(stats_group(&st->dim[DIM_DIRECTION], c->direction), c);
	stats_group_add(stats_group(&st->dim[DIM_VIA], c->via), c);
	stats_group_add(stats_group(&st->dim[DIM_PROTOCOL], c->protocol), c);
	if (c->d2c_us >= 0)
		logtool_bars_add(&st->d2c_bars, (uint64_t)c->d2c_us);
	if (c->elapsed_ms >= 0)
		logtool_bars_add(&st->elapsed_bars, (uint64_t)c->elapsed_ms);
}

/* Notes the time span of the records read. */
static void
stats_time(struct logtool_stats *st, int64_t ts)
{
	if (st->first_us < 0 || ts < st->first_us)
		st->first_us = ts;
	if (ts > st->last_us)
		st->last_us = ts;
}

/* Frees the statistics. */
void
logtool_stats_free(struct logtool_stats *st)
{
	int	 d, i;

	if (st == NULL)
		return;
	for (d = 0; d < DIM_COUNT; d++) {
		for (i = 0; i < st->dim[d].n; i++) {
			logtool_hist_free(&st->dim[d].g[i].d2c);
			logtool_hist_free(&st->dim[d].g[i].elapsed);
		}
		free(st->dim[d].g);
	}
	logtool_hist_free(&st->all.d2c);
	logtool_hist_free(&st->all.elapsed);
	free(st);
}

/* For the report: the detect-to-close numbers of all cancels. */
const struct logtool_hist *
logtool_stats_d2c(const struct logtool_stats *st, uint64_t *ncancel,
    uint64_t *nnull)
{
	*ncancel = st->all.cancels;
	*nnull = st->all.d2c_null;
	return &st->all.d2c;
}

/* The totals, for the report's summary. */
void
logtool_stats_summary(const struct logtool_stats *st,
    struct logtool_stats_summary *out)
{
	out->requests = st->all.requests;
	out->completed = st->req_completed;
	out->canceled = st->req_canceled;
	out->error = st->req_error;
	out->cancels = st->all.cancels;
	out->d2c_null = st->all.d2c_null;
	out->notes_applied = st->notes_applied;
	out->notes_other = st->notes_other;
	out->notes_failed = st->notes_failed;
	out->first_us = st->first_us;
	out->last_us = st->last_us;
}

/* For the report: the fixed detect-to-close bars. */
const struct logtool_bars *
logtool_stats_d2c_bars(const struct logtool_stats *st)
{
	return &st->d2c_bars;
}

/* For the report: one row per origin kind, most cancels first. */
int
logtool_stats_kinds(const struct logtool_stats *st,
    struct logtool_kind_row **rows)
{
	const struct stats_groups *gs = &st->dim[DIM_KIND];
	struct logtool_kind_row	*r;
	int			 i, k;

	if ((r = calloc((size_t)gs->n + 1, sizeof(*r))) == NULL)
		return -1;
	for (i = 0; i < gs->n; i++) {
		r[i].name = gs->g[i].name;
		r[i].cancels = gs->g[i].cancels;
		r[i].d2c_null = gs->g[i].d2c_null;
		r[i].p50 = logtool_hist_pct(&gs->g[i].d2c, 50);
		r[i].p99 = logtool_hist_pct(&gs->g[i].d2c, 99);
		r[i].max = gs->g[i].d2c.max;
		r[i].has_d2c = gs->g[i].d2c.n > 0;
		r[i].elapsed_p50 = logtool_hist_pct(&gs->g[i].elapsed, 50);
	}
	/* Insertion sort: a handful of kinds. */
	for (i = 1; i < gs->n; i++)
		for (k = i; k > 0 && r[k].cancels > r[k - 1].cancels; k--) {
			struct logtool_kind_row t = r[k];

			r[k] = r[k - 1];
			r[k - 1] = t;
		}
	*rows = r;
	return gs->n;
}

/* A percentile as text ("-" when there are no values). */
static void
stats_pct(char *buf, size_t len, const struct logtool_hist *h, double p,
    int us)
{
	if (h->n == 0)
		snprintf(buf, len, "-");
	else if (us)
		logtool_fmt_us(buf, len, (int64_t)logtool_hist_pct(h, p));
	else
		logtool_fmt_ms(buf, len, (double)logtool_hist_pct(h, p));
}

/* A mean as text, or "-" when there is nothing to divide by. */
static void
stats_mean(char *buf, size_t len, uint64_t sum, uint64_t n)
{
	if (n == 0)
		snprintf(buf, len, "-");
	else if ((double)sum / (double)n >= 100)
		snprintf(buf, len, "%.0f", (double)sum / (double)n);
	else
		snprintf(buf, len, "%.1f", (double)sum / (double)n);
}

/* A share as a percentage, or "-". */
static void
stats_share(char *buf, size_t len, uint64_t part, uint64_t whole)
{
	if (whole == 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", 100.0 * (double)part /
		    (double)whole);
}

/* Orders groups by cancels, then requests, then name. */
static int
stats_cmp(const void *a, const void *b)
{
	const struct stats_group *x = a, *y = b;

	if (x->cancels != y->cancels)
		return x->cancels > y->cancels ? -1 : 1;
	if (x->requests != y->requests)
		return x->requests > y->requests ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* One row of a text table. */
static void
stats_row(struct logtool_table *t, const struct stats_group *g,
    const struct stats_group *all, int requests)
{
	char		 c[14][32];
	const char	*cells[14];
	int		 i;

	snprintf(c[0], sizeof(c[0]), "%s", g->name);
	if (requests)
		snprintf(c[1], sizeof(c[1]), "%llu",
		    (unsigned long long)g->requests);
	else
		snprintf(c[1], sizeof(c[1]), "-");
	snprintf(c[2], sizeof(c[2]), "%llu", (unsigned long long)g->cancels);
	stats_share(c[3], sizeof(c[3]), g->cancels, all->cancels);
	if (requests)
		stats_share(c[4], sizeof(c[4]), g->cancels, g->requests);
	else
		snprintf(c[4], sizeof(c[4]), "-");
	stats_pct(c[5], sizeof(c[5]), &g->d2c, 50, 1);
	stats_pct(c[6], sizeof(c[6]), &g->d2c, 90, 1);
	stats_pct(c[7], sizeof(c[7]), &g->d2c, 99, 1);
	stats_pct(c[8], sizeof(c[8]), &g->d2c, 100, 1);
	snprintf(c[9], sizeof(c[9]), "%llu", (unsigned long long)g->d2c_null);
	stats_pct(c[10], sizeof(c[10]), &g->elapsed, 50, 0);
	stats_pct(c[11], sizeof(c[11]), &g->elapsed, 90, 0);
	stats_mean(c[12], sizeof(c[12]), g->sse_events, g->cancels);
	stats_mean(c[13], sizeof(c[13]), g->completion_tokens, g->usage_n);
	for (i = 0; i < 14; i++)
		cells[i] = c[i];
	logtool_table_row(t, cells);
}

/* One dimension as a text table. */
static void
stats_print_dim(struct logtool_stats *st, int d)
{
	struct logtool_table	 t;
	struct stats_groups	*gs = &st->dim[d];
	const char		*head[14] = { stats_dims[d].column,
	    "REQUESTS", "CANCELS", "SHARE", "RATE", "CLOSE p50", "p90", "p99",
	    "max", "NO-CLOSE", "AT p50", "p90", "EVENTS", "TOKENS" };
	int			 i;

	qsort(gs->g, (size_t)gs->n, sizeof(gs->g[0]), stats_cmp);
	printf("\n%s%s%s\n", logtool_c(LOGTOOL_C_BOLD), stats_dims[d].title,
	    logtool_c(LOGTOOL_C_RESET));
	if (gs->n == 0) {
		printf("  no records\n");
		return;
	}
	logtool_table_init(&t, 14, "lrrrrrrrrrrrrr");
	logtool_table_row(&t, head);
	for (i = 0; i < gs->n; i++)
		stats_row(&t, &gs->g[i], &st->all, stats_dims[d].requests);
	logtool_table_print(&t, stdout, "  ");
	logtool_table_free(&t);
}

/* The whole text output. */
static void
stats_print_text(struct logtool_stats *st, const struct logtool_input *in,
    int by)
{
	char	 a[64], b[64], c[64], d[64];
	int	 i;

	printf("%scancelproxy-log stats%s\n", logtool_c(LOGTOOL_C_BOLD),
	    logtool_c(LOGTOOL_C_RESET));
	logtool_fmt_count(a, sizeof(a), in->records);
	logtool_fmt_count(b, sizeof(b), in->junk);
	printf("  input     %d file%s, %s records, %s other lines\n",
	    in->nsrc, in->nsrc == 1 ? "" : "s", a, b);
	if (st->first_us >= 0) {
		logtool_fmt_time(a, sizeof(a), st->first_us, 1);
		logtool_fmt_time(b, sizeof(b), st->last_us, 1);
		logtool_fmt_us(c, sizeof(c), st->last_us - st->first_us);
		printf("  time      %s .. %s UTC (%s)\n", a, b, c);
	}
	logtool_fmt_count(a, sizeof(a), st->all.requests);
	logtool_fmt_count(b, sizeof(b), st->req_completed);
	logtool_fmt_count(c, sizeof(c), st->req_canceled);
	logtool_fmt_count(d, sizeof(d), st->req_error);
	printf("  requests  %s: %s completed, %s canceled, %s error", a, b, c,
	    d);
	if (st->req_other)
		printf(", %llu other", (unsigned long long)st->req_other);
	printf("\n");
	logtool_fmt_count(a, sizeof(a), st->all.cancels);
	stats_share(d, sizeof(d), st->all.cancels, st->all.requests);
	printf("  cancels   %s (%s of request records)\n", a, d);
	logtool_fmt_count(a, sizeof(a), st->notes_applied);
	logtool_fmt_count(b, sizeof(b), st->notes_other);
	logtool_fmt_count(c, sizeof(c), st->notes_failed);
	printf("  notes     %s applied, %s refused or unmatched, %s not "
	    "delivered\n", a, b, c);
	printf("  columns   CLOSE: detect-to-close; NO-CLOSE: nothing to "
	    "close; AT: time into the\n"
	    "            request at the cancel; EVENTS: SSE events relayed "
	    "per cancel; TOKENS:\n"
	    "            completion tokens per cancel with usage; RATE: "
	    "cancels per request\n");

	if (by >= 0)
		stats_print_dim(st, by);
	else
		for (i = 0; i < DIM_SHOWN; i++)
			stats_print_dim(st, i);
	if (st->all.cancels == 0)
		return;
	printf("\n%sdetect-to-close%s (noticing to the other side's socket "
	    "closed)\n", logtool_c(LOGTOOL_C_BOLD), logtool_c(LOGTOOL_C_RESET));
	logtool_bars_draw(stdout, &st->d2c_bars, st->all.d2c_null,
	    "nothing to close", "  ");
	printf("\n%stime into the request at the cancel%s (elapsed_ms)\n",
	    logtool_c(LOGTOOL_C_BOLD), logtool_c(LOGTOOL_C_RESET));
	logtool_bars_draw(stdout, &st->elapsed_bars, 0, NULL, "  ");
}

/* Percentiles of a histogram as a JSON object. */
static void
stats_json_hist(struct jsonw *w, const char *key,
    const struct logtool_hist *h)
{
	jsonw_key(w, key);
	jsonw_obj_open(w);
	jsonw_kuint(w, "n", h->n);
	if (h->n > 0) {
		jsonw_kuint(w, "p50", logtool_hist_pct(h, 50));
		jsonw_kuint(w, "p90", logtool_hist_pct(h, 90));
		jsonw_kuint(w, "p99", logtool_hist_pct(h, 99));
		jsonw_kuint(w, "min", h->min);
		jsonw_kuint(w, "max", h->max);
		jsonw_lkey(w, "mean");
		jsonw_double(w, (double)h->sum / (double)h->n, 1);
	}
	jsonw_obj_close(w);
}

/* One group as a JSON object. */
static void
stats_json_group(struct jsonw *w, const struct stats_group *g,
    const struct stats_group *all, int requests)
{
	jsonw_obj_open(w);
	jsonw_kstr(w, "name", g->name);
	if (requests)
		jsonw_kuint(w, "requests", g->requests);
	jsonw_kuint(w, "cancels", g->cancels);
	if (all->cancels > 0) {
		jsonw_lkey(w, "share");
		jsonw_double(w, (double)g->cancels / (double)all->cancels, 4);
	}
	if (requests && g->requests > 0) {
		jsonw_lkey(w, "rate");
		jsonw_double(w, (double)g->cancels / (double)g->requests, 4);
	}
	stats_json_hist(w, "detect_to_close_us", &g->d2c);
	jsonw_kuint(w, "detect_to_close_null", g->d2c_null);
	stats_json_hist(w, "elapsed_ms", &g->elapsed);
	jsonw_kuint(w, "sse_events", g->sse_events);
	jsonw_kuint(w, "bytes_out", g->bytes_out);
	jsonw_lkey(w, "usage");
	jsonw_obj_open(w);
	jsonw_kuint(w, "cancels", g->usage_n);
	jsonw_kuint(w, "prompt_tokens", g->prompt_tokens);
	jsonw_kuint(w, "completion_tokens", g->completion_tokens);
	jsonw_kuint(w, "total_tokens", g->total_tokens);
	jsonw_obj_close(w);
	jsonw_obj_close(w);
}

/* Fixed bars as a JSON array of {from, to, count}. */
static void
stats_json_bars(struct jsonw *w, const char *key, const struct logtool_bars *b)
{
	int	 i;

	jsonw_key(w, key);
	jsonw_arr_open(w);
	for (i = 0; i < b->n; i++) {
		jsonw_obj_open(w);
		jsonw_kuint(w, "from", b->edges[i]);
		jsonw_lkey(w, "to");
		if (i + 1 < b->n)
			jsonw_uint(w, b->edges[i + 1]);
		else
			jsonw_null(w);
		jsonw_kuint(w, "count", b->count[i]);
		jsonw_obj_close(w);
	}
	jsonw_arr_close(w);
}

/* The whole JSON output: one object on one line. */
static void
stats_print_json(struct logtool_stats *st, const struct logtool_input *in,
    int by)
{
	struct jsonw	 w;
	char		 ts[40];
	int		 d, i;

	jsonw_init(&w, NULL, 0);
	jsonw_obj_open(&w);
	jsonw_kint(&w, "files", in->nsrc);
	jsonw_kuint(&w, "records", in->records);
	jsonw_kuint(&w, "not_records", in->junk);
	if (st->first_us >= 0) {
		logtool_fmt_rfc3339(ts, sizeof(ts), st->first_us);
		jsonw_kstr(&w, "first_ts", ts);
		logtool_fmt_rfc3339(ts, sizeof(ts), st->last_us);
		jsonw_kstr(&w, "last_ts", ts);
	}
	jsonw_lkey(&w, "requests");
	jsonw_obj_open(&w);
	jsonw_kuint(&w, "total", st->all.requests);
	jsonw_kuint(&w, "completed", st->req_completed);
	jsonw_kuint(&w, "canceled", st->req_canceled);
	jsonw_kuint(&w, "error", st->req_error);
	jsonw_kuint(&w, "other", st->req_other);
	jsonw_obj_close(&w);
	jsonw_lkey(&w, "notes");
	jsonw_obj_open(&w);
	jsonw_kuint(&w, "applied", st->notes_applied);
	jsonw_kuint(&w, "other", st->notes_other);
	jsonw_kuint(&w, "failed", st->notes_failed);
	jsonw_obj_close(&w);
	jsonw_kuint(&w, "cancels", st->all.cancels);
	jsonw_lkey(&w, "all");
	stats_json_group(&w, &st->all, &st->all, 1);
	jsonw_lkey(&w, "by");
	jsonw_obj_open(&w);
	for (d = 0; d < DIM_COUNT; d++) {
		if (by >= 0 && d != by)
			continue;
		qsort(st->dim[d].g, (size_t)st->dim[d].n,
		    sizeof(st->dim[d].g[0]), stats_cmp);
		jsonw_key(&w, stats_dims[d].key);
		jsonw_arr_open(&w);
		for (i = 0; i < st->dim[d].n; i++)
			stats_json_group(&w, &st->dim[d].g[i], &st->all,
			    stats_dims[d].requests);
		jsonw_arr_close(&w);
	}
	jsonw_obj_close(&w);
	jsonw_lkey(&w, "histograms");
	jsonw_obj_open(&w);
	stats_json_bars(&w, "detect_to_close_us", &st->d2c_bars);
	jsonw_kuint(&w, "detect_to_close_null", st->all.d2c_null);
	stats_json_bars(&w, "elapsed_ms", &st->elapsed_bars);
	jsonw_obj_close(&w);
	jsonw_obj_close(&w);
	if (w.oom) {
		fprintf(stderr, "cancelproxy-log: out of memory\n");
		exit(LOGTOOL_EXIT_BAD);
	}
	fwrite(w.buf, 1, w.len, stdout);
	fputc('\n', stdout);
	jsonw_free(&w);
}

/* What stats' emit callback needs. */
struct stats_ctx {
	struct logtool_stats	*st;
	const struct logtool_filter *f;
};

/* The join's callback: a cancel that passes the filters is counted. */
static int
stats_emit(struct logtool_cancel *c, void *arg)
{
	struct stats_ctx	*x = arg;

	if (logtool_filter_cancel(x->f, c))
		logtool_stats_cancel(x->st, c);
	return 0;
}

/* f without the options that only a cancel can answer. */
void
logtool_filter_for_requests(struct logtool_filter *rf,
    const struct logtool_filter *f)
{
	*rf = *f;
	rf->kind.n = rf->phase.n = rf->direction.n = rf->via.n = 0;
}

/* Whether a request record passes rf (time, hop, upstream, model). */
static int
stats_request_passes(const struct logtool_filter *rf,
    const struct logtool_rec *r)
{
	struct logtool_cancel	 c;

	memset(&c, 0, sizeof(c));
	c.ts_us = r->ts_us;
	c.hop = logtool_intern_str(r->hop);
	c.upstream = logtool_intern_str(r->upstream);
	c.model = logtool_intern_str(r->model);
	c.protocol = logtool_intern_str(r->protocol);
	return logtool_filter_cancel(rf, &c);
}

/* Feeds one record to the statistics (and the join). */
void
logtool_stats_record(struct logtool_stats *st, struct logtool_join *j,
    const struct logtool_filter *f, const struct logtool_filter *rf,
    const struct logtool_rec *r)
{
	if (!logtool_filter_time(f, r->ts_us) && r->event != LOGTOOL_EV_REQUEST)
		return;
	switch (r->event) {
	case LOGTOOL_EV_CANCEL:
		stats_time(st, r->ts_us);
		logtool_join_add(j, r);
		break;
	case LOGTOOL_EV_REQUEST:
		/* Joined whatever its time: its cancel may be inside. */
		logtool_join_add(j, r);
		if (!stats_request_passes(rf, r))
			break;
		stats_time(st, r->ts_us);
		logtool_stats_request(st, r);
		break;
	case LOGTOOL_EV_NOTE:
		stats_time(st, r->ts_us);
		if (logtool_str_eq(r->outcome, "applied"))
			st->notes_applied++;
		else
			st->notes_other++;
		break;
	case LOGTOOL_EV_NOTE_FAILED:
		stats_time(st, r->ts_us);
		st->notes_failed++;
		break;
	default:
		stats_time(st, r->ts_us);
		break;
	}
}

/* The stats command. */
int
logtool_cmd_stats(struct logtool_opts *o)
{
	struct logtool_input	 in;
	struct logtool_join	 j;
	struct logtool_rec	*r;
	struct stats_ctx	 x;
	struct logtool_filter	 rf;
	int			 by = -1, d, bad;
	uint64_t		 n;

	if (o->by != NULL) {
		for (d = 0; d < DIM_COUNT; d++)
			if (strcmp(o->by, stats_dims[d].key) == 0)
				by = d;
		if (by < 0) {
			fprintf(stderr, "cancelproxy-log: --by %s: one of kind, "
			    "hop, phase, upstream, model, direction, via, "
			    "protocol\n",
			    o->by);
			return LOGTOOL_EXIT_BAD;
		}
	}
	if ((x.st = logtool_stats_new()) == NULL) {
		fprintf(stderr, "cancelproxy-log: out of memory\n");
		return LOGTOOL_EXIT_BAD;
	}
	x.f = &o->filter;
	logtool_filter_for_requests(&rf, &o->filter);
	if (logtool_input_open(&in, o->files, o->nfiles, 0) == -1) {
		logtool_input_free(&in);
		logtool_stats_free(x.st);
		return LOGTOOL_EXIT_BAD;
	}
	logtool_join_init(&j, stats_emit, &x);
	while (logtool_input_next(&in, &r) == 1)
		logtool_stats_record(x.st, &j, &o->filter, &rf, r);
	logtool_join_flush(&j, -1);
	logtool_join_free(&j);
	if (o->json)
		stats_print_json(x.st, &in, by);
	else
		stats_print_text(x.st, &in, by);
	logtool_input_report(&in);
	bad = in.errors != 0;
	n = x.st->all.cancels;
	logtool_input_free(&in);
	logtool_stats_free(x.st);
	if (bad)
		return LOGTOOL_EXIT_BAD;
	return n ? LOGTOOL_EXIT_FOUND : LOGTOOL_EXIT_NOTHING;
}
