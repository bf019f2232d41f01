/* logtool_html: the "report --html FILE" command: one self-contained HTML
 * page with inline SVG charts (detect-to-close histogram, cancels over time
 * by origin kind, the slowest cascades as timelines); nothing is fetched
 * from the network. Memory stays bounded: time bins widen as the log goes
 * on, and only the slowest cascades are kept once they are complete. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/log/logtool.h"

#define SERIES_BINS		96	/* most bars in "cancels over time" */
#define SERIES_KINDS		12	/* kinds drawn; the rest are "other" */
#define CASCADE_HOPS		16	/* records kept per cascade */
#define CASCADE_WINDOW_US	(2 * LOGTOOL_JOIN_WINDOW_US)

/* Cancels over time, per kind, in bins that double in width as needed. */
struct report_series {
	int64_t		 t0, width, last;
	const char	*kinds[SERIES_KINDS];
	int		 nkinds;
	uint64_t	 count[SERIES_BINS][SERIES_KINDS + 1];
};

/* The cancel records of one request across hops. */
struct report_cascade {
	struct logtool_cancel	*c[CASCADE_HOPS];
	int			 n;
	int64_t			 first_ts, start, end;
	uint64_t		 hash;
	struct report_cascade	*hnext;		/* bucket chain */
	struct report_cascade	*next;		/* by first record */
};

struct report_ctx {
	struct logtool_opts	 *o;
	struct logtool_stats	 *st;
	struct report_series	  series;
	struct report_cascade	**bucket;
	size_t			  nbucket, nlive;
	struct report_cascade	 *head, *tail;
	struct report_cascade	**top;		/* slowest, o->top at most */
	int			  ntop;
	int64_t			  clock;
};

/* Colours of the origin kinds, the same on every chart. */
static const struct {
	const char	*kind;
	const char	*color;
} report_colors[] = {
	{ "client_disconnect", "#e0a100" },
	{ "client_cancel", "#b87400" },
	{ "admin", "#3b6fd6" },
	{ "shutdown", "#5b4bb7" },
	{ "first_byte_timeout", "#b83dba" },
	{ "idle_timeout", "#d660a8" },
	{ "total_timeout", "#84308f" },
	{ "upstream_error", "#d23f31" },
	{ "upstream_closed", "#f07b61" },
	{ "unknown", "#8a8f98" },
};

/* The colour of an origin kind on the charts. */
static const char *
report_color(const char *kind)
{
	size_t	 i;

	for (i = 0; kind != NULL &&
	    i < sizeof(report_colors) / sizeof(report_colors[0]); i++)
		if (strcmp(kind, report_colors[i].kind) == 0)
			return report_colors[i].color;
	return "#2a9d8f";
}

/* Writes text with HTML's special characters escaped. */
static void
report_esc(FILE *f, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' :
			    *s, f);
			break;
		}
	}
}

/* Adds a cancel to its time bin, widening the bins when it lies beyond. */
static void
series_add(struct report_series *s, int64_t ts, const char *kind)
{
	int64_t	 bin;
	int	 i, k;

	if (s->width == 0) {
		s->width = 1000;	/* 1 ms, doubled as the log goes on */
		s->t0 = ts;
	}
	while (ts >= s->t0 + SERIES_BINS * s->width) {
		for (i = 0; i < SERIES_BINS; i++)
			for (k = 0; k <= SERIES_KINDS; k++)
				s->count[i][k] = i < SERIES_BINS / 2 ?
				    s->count[2 * i][k] + s->count[2 * i + 1][k] :
				    0;
		s->width *= 2;
	}
	bin = ts < s->t0 ? 0 : (ts - s->t0) / s->width;
	for (k = 0; k < s->nkinds && s->kinds[k] != kind; k++)
		;
	if (k == s->nkinds && s->nkinds < SERIES_KINDS)
		s->kinds[s->nkinds++] = kind;
	s->count[bin][k]++;
	if (ts > s->last)
		s->last = ts;
}

/* FNV-1a of a request id, for the cascade index. */
static uint64_t
report_hash(const char *s)
{
	uint64_t	 h = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* Frees a cascade and the cancels it kept. */
static void
cascade_free(struct report_cascade *k)
{
	int	 i;

	for (i = 0; i < k->n; i++)
		logtool_cancel_free(k->c[i]);
	free(k);
}

/* Takes a complete cascade off the index and keeps it if it is among the
 * slowest so far. */
static void
cascade_done(struct report_ctx *x, struct report_cascade *k)
{
	struct report_cascade	**pp;
	int			  i;

	for (pp = &x->bucket[k->hash & (x->nbucket - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == k) {
			*pp = k->hnext;
			break;
		}
	x->nlive--;
	if (x->o->top == 0) {
		cascade_free(k);
		return;
	}
	if (x->ntop == x->o->top) {
		if (k->end - k->start <= x->top[x->ntop - 1]->end -
		    x->top[x->ntop - 1]->start) {
			cascade_free(k);
			return;
		}
		cascade_free(x->top[--x->ntop]);
	}
	/* Slowest first. */
	for (i = x->ntop; i > 0 && x->top[i - 1]->end - x->top[i - 1]->start <
	    k->end - k->start; i--)
		x->top[i] = x->top[i - 1];
	x->top[i] = k;
	x->ntop++;
}

/* Completes cascades whose first record is older than the window. */
static void
cascade_expire(struct report_ctx *x, int all)
{
	struct report_cascade	*k;

	while ((k = x->head) != NULL &&
	    (all || k->first_ts + CASCADE_WINDOW_US < x->clock)) {
		x->head = k->next;
		if (x->head == NULL)
			x->tail = NULL;
		cascade_done(x, k);
	}
}

/* Grows the cascade index. */
static int
cascade_rehash(struct report_ctx *x)
{
	struct report_cascade	**nb, *k, *kn;
	size_t			  nn = x->nbucket ? x->nbucket * 2 : 1024, i;

	if ((nb = calloc(nn, sizeof(*nb))) == NULL)
		return -1;
	for (i = 0; i < x->nbucket; i++)
		for (k = x->bucket[i]; k != NULL; k = kn) {
			kn = k->hnext;
			k->hnext = nb[k->hash & (nn - 1)];
			nb[k->hash & (nn - 1)] = k;
		}
	free(x->bucket);
	x->bucket = nb;
	x->nbucket = nn;
	return 0;
}

/* Adds a cancel to the cascade of its request; returns 1 when it was
 * kept there. */
static int
cascade_add(struct report_ctx *x, struct logtool_cancel *c)
{
	struct report_cascade	*k;
	uint64_t		 h;
	int64_t			 start;

	if (c->request_id == NULL)
		return 0;
	if (x->nlive >= x->nbucket && cascade_rehash(x) == -1 &&
	    x->nbucket == 0)
		return 0;
	h = report_hash(c->request_id);
	for (k = x->bucket[h & (x->nbucket - 1)]; k != NULL; k = k->hnext)
		if (k->hash == h && strcmp(k->c[0]->request_id,
		    c->request_id) == 0)
			break;
	if (k == NULL) {
		if ((k = calloc(1, sizeof(*k))) == NULL)
			return 0;
		k->hash = h;
		k->first_ts = c->ts_us;
		k->start = INT64_MAX;
		k->end = INT64_MIN;
		k->hnext = x->bucket[h & (x->nbucket - 1)];
		x->bucket[h & (x->nbucket - 1)] = k;
		if (x->tail != NULL)
			x->tail->next = k;
		else
			x->head = k;
		x->tail = k;
		x->nlive++;
	}
	if (k->n == CASCADE_HOPS)
		return 0;
	k->c[k->n++] = c;
	start = c->d2c_us >= 0 ? c->ts_us - c->d2c_us : c->ts_us;
	if (start < k->start)
		k->start = start;
	if (c->ts_us > k->end)
		k->end = c->ts_us;
	return 1;
}

/* The join's callback: every filtered cancel feeds the page. */
static int
report_emit(struct logtool_cancel *c, void *arg)
{
	struct report_ctx	*x = arg;
	int			 kept;

	if (!logtool_filter_cancel(&x->o->filter, c))
		return 0;
	logtool_stats_cancel(x->st, c);
	series_add(&x->series, c->ts_us, c->kind);
	if (c->ts_us > x->clock)
		x->clock = c->ts_us;
	kept = cascade_add(x, c);
	cascade_expire(x, 0);
	return kept;
}

/* Writes the page's head and style. */
static void
report_head(FILE *f)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width, "
	    "initial-scale=1\">\n"
	    "<title>cancelproxy-log report</title>\n"
	    "<style>\n"
	    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;"
	    "margin:24px auto;max-width:1000px;padding:0 16px;color:#1d2330;"
	    "background:#fff}\n"
	    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;"
	    "margin:28px 0 8px;border-bottom:1px solid #e3e6eb;"
	    "padding-bottom:4px}\n"
	    "h3{font-size:14px;margin:18px 0 4px}\n"
	    ".sub{color:#5d6677;margin:0 0 12px}\n"
	    "table{border-collapse:collapse;margin:8px 0}"
	    "td,th{padding:3px 10px;text-align:right;"
	    "border-bottom:1px solid #eef0f3}"
	    "th{font-weight:600;color:#3d4555}"
	    "td:first-child,th:first-child{text-align:left}\n"
	    ".sw{display:inline-block;width:10px;height:10px;"
	    "border-radius:2px;margin-right:6px}\n"
	    "svg{display:block;max-width:100%;height:auto}\n"
	    "svg text{font:11px system-ui,sans-serif;fill:#3d4555}\n"
	    ".mono{font-family:ui-monospace,Menlo,Consolas,monospace;"
	    "font-size:12px}\n"
	    ".legend span{margin-right:14px;white-space:nowrap}\n"
	    ".warn{color:#a33}\n"
	    "</style>\n</head>\n<body>\n", f);
}

/* The summary and the table of kinds. */
static void
report_summary(FILE *f, struct report_ctx *x, const struct logtool_input *in)
{
	struct logtool_stats_summary	 s;
	struct logtool_kind_row		*rows = NULL;
	const struct logtool_hist	*h;
	uint64_t			 nc, nn;
	char				 a[64], b[64], c[64], d[64];
	int				 i, n;

	logtool_stats_summary(x->st, &s);
	fputs("<h1>cancelproxy-log report</h1>\n<p class=\"sub\">", f);
	logtool_fmt_count(a, sizeof(a), in->records);
	fprintf(f, "%d input%s, %s records", in->nsrc, in->nsrc == 1 ? "" : "s",
	    a);
	if (in->junk > 0)
		fprintf(f, ", <span class=\"warn\">%llu lines that are not "
		    "records</span>", (unsigned long long)in->junk);
	if (s.first_us >= 0) {
		logtool_fmt_time(a, sizeof(a), s.first_us, 1);
		logtool_fmt_time(b, sizeof(b), s.last_us, 1);
		fprintf(f, "; %s to %s UTC", a, b);
	}
	fputs("</p>\n", f);
	logtool_fmt_count(a, sizeof(a), s.requests);
	logtool_fmt_count(b, sizeof(b), s.cancels);
	h = logtool_stats_d2c(x->st, &nc, &nn);
	fprintf(f, "<p>%s request records (%llu completed, %llu canceled, "
	    "%llu error) and <b>%s cancel records</b>", a,
	    (unsigned long long)s.completed, (unsigned long long)s.canceled,
	    (unsigned long long)s.error, b);
	if (h->n > 0) {
		logtool_fmt_us(a, sizeof(a), (int64_t)logtool_hist_pct(h, 50));
		logtool_fmt_us(b, sizeof(b), (int64_t)logtool_hist_pct(h, 99));
		logtool_fmt_us(c, sizeof(c), (int64_t)h->max);
		fprintf(f, "; detect-to-close p50 %s, p99 %s, max %s", a, b, c);
	}
	fprintf(f, ". Notes between hops: %llu applied, %llu refused or "
	    "unmatched, %llu not delivered.</p>\n",
	    (unsigned long long)s.notes_applied,
	    (unsigned long long)s.notes_other,
	    (unsigned long long)s.notes_failed);

	if ((n = logtool_stats_kinds(x->st, &rows)) <= 0) {
		free(rows);
		return;
	}
	fputs("<table>\n<tr><th>origin kind</th><th>cancels</th><th>share</th>"
	    "<th>close p50</th><th>close p99</th><th>close max</th>"
	    "<th>nothing to close</th><th>time into request p50</th></tr>\n", f);
	for (i = 0; i < n; i++) {
		fprintf(f, "<tr><td><span class=\"sw\" style=\"background:%s\">"
		    "</span>", report_color(rows[i].name));
		report_esc(f, rows[i].name);
		if (rows[i].has_d2c) {
			logtool_fmt_us(a, sizeof(a), (int64_t)rows[i].p50);
			logtool_fmt_us(b, sizeof(b), (int64_t)rows[i].p99);
			logtool_fmt_us(c, sizeof(c), (int64_t)rows[i].max);
		} else {
			snprintf(a, sizeof(a), "-");
			snprintf(b, sizeof(b), "-");
			snprintf(c, sizeof(c), "-");
		}
		logtool_fmt_ms(d, sizeof(d), (double)rows[i].elapsed_p50);
		fprintf(f, "</td><td>%llu</td><td>%.1f%%</td><td>%s</td>"
		    "<td>%s</td><td>%s</td><td>%llu</td><td>%s</td></tr>\n",
		    (unsigned long long)rows[i].cancels, s.cancels ? 100.0 *
		    (double)rows[i].cancels / (double)s.cancels : 0.0, a, b, c,
		    (unsigned long long)rows[i].d2c_null, d);
	}
	fputs("</table>\n", f);
	free(rows);
}

/* A "nice" axis maximum at or above v: four steps of 1, 2, 2.5 or 5
 * times a power of ten, so that every grid line has a whole count. */
static uint64_t
report_nice(uint64_t v)
{
	uint64_t	 step = (v + 3) / 4, p = 1;

	if (step <= 1)
		return 4;
	while (p * 10 < step)
		p *= 10;
	if (p >= step)
		return 4 * p;
	if (2 * p >= step)
		return 8 * p;
	if (p >= 10 && 5 * p / 2 >= step)
		return 10 * p;
	if (5 * p >= step)
		return 20 * p;
	return 40 * p;
}

/* Horizontal grid lines and their counts for a chart's y axis. */
static void
report_grid(FILE *f, int x0, int x1, int y0, int y1, uint64_t max)
{
	int	 i, y;

	for (i = 0; i <= 4; i++) {
		y = y1 - (y1 - y0) * i / 4;
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
		    "stroke=\"%s\" stroke-width=\"1\"/>\n", x0, y, x1, y,
		    i == 0 ? "#9aa1ad" : "#eceef1");
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%llu"
		    "</text>\n", x0 - 6, y + 4,
		    (unsigned long long)(max * (uint64_t)i / 4));
	}
}

/* The detect-to-close histogram. */
static void
report_latency(FILE *f, struct report_ctx *x)
{
	const struct logtool_bars	*b = logtool_stats_d2c_bars(x->st);
	const struct logtool_hist	*h;
	uint64_t			 nc, nn, max = 0, v;
	int				 i, nbar, bw, bx, bh, W = 900, H = 310;
	int				 x0 = 56, x1 = 884, y0 = 20, y1 = 240;
	char				 label[64], a[32], c[32], d[32];

	h = logtool_stats_d2c(x->st, &nc, &nn);
	fputs("<h2>Detect-to-close latency</h2>\n<p class=\"sub\">From a hop "
	    "noticing that one side went away to the other side's socket "
	    "being closed (<code>detect_to_close_us</code>), for every cancel "
	    "record.", f);
	if (h->n > 0) {
		logtool_fmt_us(a, sizeof(a), (int64_t)logtool_hist_pct(h, 50));
		logtool_fmt_us(c, sizeof(c), (int64_t)logtool_hist_pct(h, 90));
		logtool_fmt_us(d, sizeof(d), (int64_t)logtool_hist_pct(h, 99));
		fprintf(f, " p50 %s, p90 %s, p99 %s.", a, c, d);
	}
	fputs("</p>\n", f);
	nbar = b->n + (nn > 0);	/* and "nothing to close" */
	for (i = 0; i < b->n; i++)
		if (b->count[i] > max)
			max = b->count[i];
	if (nn > max)
		max = nn;
	max = report_nice(max);
	fprintf(f, "<svg class=\"chart\" id=\"latency\" viewBox=\"0 0 %d %d\" "
	    "width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"histogram of "
	    "detect-to-close latency\">\n",
	    W, H, W, H);
	report_grid(f, x0, x1, y0, y1, max);
	bw = (x1 - x0) / nbar;
	for (i = 0; i < nbar; i++) {
		if (i < b->n) {
			logtool_bars_label(b, i, label, sizeof(label));
			v = b->count[i];
		} else {
			snprintf(label, sizeof(label), "nothing to close");
			v = nn;
		}
		bx = x0 + i * bw + 3;
		bh = (int)((double)v * (y1 - y0) / (double)max + 0.5);
		if (v > 0 && bh < 1)
			bh = 1;
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
		    "fill=\"%s\"><title>", bx, y1 - bh, bw - 6, bh,
		    i < b->n ? "#3b82c4" : "#b9bfc9");
		report_esc(f, label);
		fprintf(f, ": %llu</title></rect>\n", (unsigned long long)v);
		if (v > 0)
			fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">"
			    "%llu</text>\n", bx + (bw - 6) / 2, y1 - bh - 4,
			    (unsigned long long)v);
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" "
		    "transform=\"rotate(-35 %d %d)\">", bx + (bw - 6) / 2 + 4,
		    y1 + 14, bx + (bw - 6) / 2 + 4, y1 + 14);
		report_esc(f, label);
		fputs("</text>\n", f);
	}
	fputs("</svg>\n", f);
}

/* Cancels over time, stacked by origin kind. */
static void
report_series(FILE *f, struct report_ctx *x)
{
	struct report_series	*s = &x->series;
	uint64_t		 max = 0, sum;
	int			 i, k, nb, bx, bh, y, W = 900, H = 300;
	int			 x0 = 56, x1 = 884, y0 = 20, y1 = 250;
	double			 bw;
	char			 a[64], b[64], w[64];

	fputs("<h2>Cancels over time, by origin kind</h2>\n", f);
	nb = s->width ? (int)((s->last - s->t0) / s->width) + 1 : 0;
	if (nb > SERIES_BINS)
		nb = SERIES_BINS;
	/* A short log still gets a time axis, not one wide bar. */
	if (nb > 0 && nb < SERIES_BINS / 3)
		nb = SERIES_BINS / 3;
	logtool_fmt_us(w, sizeof(w), s->width);
	fprintf(f, "<p class=\"sub\">Each bar is %s of log time.</p>\n",
	    s->width ? w : "-");
	fputs("<p class=\"legend\">", f);
	for (k = 0; k < s->nkinds; k++) {
		fprintf(f, "<span><span class=\"sw\" style=\"background:%s\">"
		    "</span>", report_color(s->kinds[k]));
		report_esc(f, s->kinds[k] ? s->kinds[k] : "-");
		fputs("</span>", f);
	}
	if (s->nkinds == SERIES_KINDS)
		fputs("<span><span class=\"sw\" style=\"background:#444\">"
		    "</span>other</span>", f);
	fputs("</p>\n", f);
	for (i = 0; i < nb; i++) {
		for (sum = 0, k = 0; k <= SERIES_KINDS; k++)
			sum += s->count[i][k];
		if (sum > max)
			max = sum;
	}
	max = report_nice(max);
	fprintf(f, "<svg class=\"chart\" id=\"over-time\" viewBox=\"0 0 %d %d\" "
	    "width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"cancels over "
	    "time by origin kind\">\n",
	    W, H, W, H);
	report_grid(f, x0, x1, y0, y1, max);
	bw = nb ? (double)(x1 - x0) / nb : 0;
	for (i = 0; i < nb; i++) {
		bx = x0 + (int)(i * bw);
		y = y1;
		for (k = 0; k <= SERIES_KINDS; k++) {
			if (s->count[i][k] == 0)
				continue;
			bh = (int)((double)s->count[i][k] * (y1 - y0) /
			    (double)max + 0.5);
			if (bh < 1)
				bh = 1;
			y -= bh;
			logtool_fmt_time(a, sizeof(a), s->t0 + i * s->width, 0);
			fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" "
			    "height=\"%d\" fill=\"%s\"><title>%s UTC, ", bx, y,
			    bw > 3 ? (int)bw - 1 : (int)bw > 0 ? (int)bw : 1, bh,
			    k < SERIES_KINDS ? report_color(s->kinds[k]) :
			    "#444", a);
			report_esc(f, k < SERIES_KINDS ? s->kinds[k] : "other");
			fprintf(f, ": %llu</title></rect>\n",
			    (unsigned long long)s->count[i][k]);
		}
	}
	if (nb > 0) {
		logtool_fmt_time(a, sizeof(a), s->t0, 1);
		logtool_fmt_time(b, sizeof(b), s->t0 + nb * s->width, 1);
		fprintf(f, "<text x=\"%d\" y=\"%d\">%s</text>\n", x0, y1 + 18,
		    a);
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s UTC"
		    "</text>\n", x1, y1 + 18, b);
	}
	fputs("</svg>\n", f);
}

/* Orders a cascade's records by the hop's place on the path. */
static int
report_lane_cmp(const void *a, const void *b)
{
	const struct logtool_cancel *x = *(struct logtool_cancel *const *)a;
	const struct logtool_cancel *y = *(struct logtool_cancel *const *)b;

	if (x->ts_us != y->ts_us)
		return x->ts_us < y->ts_us ? -1 : 1;
	return x->npath - y->npath;
}

/* One cascade as a timeline: a lane per hop, a bar from noticing to the
 * close, a dot where the record was written. */
static void
report_cascade(FILE *f, const struct report_cascade *k, int idx)
{
	struct logtool_cancel	*v[CASCADE_HOPS], *c, *longest;
	int64_t			 span = k->end - k->start, t;
	int			 i, j, lanes, W = 900, x0 = 110, x1 = 860, y;
	int			 H, xa, xb;
	double			 scale;
	char			 a[32], b[32];

	memcpy(v, k->c, (size_t)k->n * sizeof(v[0]));
	qsort(v, (size_t)k->n, sizeof(v[0]), report_lane_cmp);
	longest = v[0];
	for (i = 1; i < k->n; i++)
		if (v[i]->npath > longest->npath)
			longest = v[i];
	lanes = k->n;
	H = 46 + lanes * 34;
	if (span <= 0)
		span = 1;
	scale = (double)(x1 - x0) / (double)span;
	logtool_fmt_us(a, sizeof(a), k->end - k->start);
	fprintf(f, "<h3>%d. %s &mdash; <span class=\"mono\">", idx, a);
	report_esc(f, k->c[0]->request_id);
	fputs("</span></h3>\n<p class=\"sub\">", f);
	fprintf(f, "<span class=\"sw\" style=\"background:%s\"></span>",
	    report_color(longest->kind));
	report_esc(f, longest->kind ? longest->kind : "-");
	fputs(" at ", f);
	report_esc(f, longest->origin_hop ? longest->origin_hop : "-");
	fputs(", ", f);
	report_esc(f, longest->phase ? longest->phase : "-");
	fputs("; path ", f);
	for (i = 0; i < longest->npath; i++) {
		if (i > 0)
			fputs(" &rarr; ", f);
		report_esc(f, longest->path[i]);
	}
	if (longest->model != NULL) {
		fputs("; model ", f);
		report_esc(f, longest->model);
	}
	fputs("</p>\n", f);
	fprintf(f, "<svg class=\"chart cascade\" viewBox=\"0 0 %d %d\" "
	    "width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"timeline of "
	    "a cascade\">\n", W, H, W, H);
	/* Time axis: 0 at the first hop noticing. */
	y = H - 22;
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
	    "stroke=\"#9aa1ad\"/>\n", x0, y, x1, y);
	for (j = 0; j <= 4; j++) {
		t = span * j / 4;
		xa = x0 + (int)((double)t * scale);
		logtool_fmt_us(a, sizeof(a), t);
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
		    "stroke=\"#eceef1\"/>\n<text x=\"%d\" y=\"%d\" "
		    "text-anchor=\"middle\">+%s</text>\n", xa, 10, xa, y, xa,
		    y + 16, a);
	}
	for (i = 0; i < lanes; i++) {
		c = v[i];
		y = 24 + i * 34;
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" "
		    "font-weight=\"600\">", x0 - 10, y + 5);
		report_esc(f, c->hop);
		fputs("</text>\n", f);
		xb = x0 + (int)((double)(c->ts_us - k->start) * scale);
		if (c->d2c_us >= 0) {
			xa = x0 + (int)((double)(c->ts_us - c->d2c_us -
			    k->start) * scale);
			fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" "
			    "height=\"10\" rx=\"2\" fill=\"%s\"><title>", xa,
			    y - 5, xb - xa > 2 ? xb - xa : 2,
			    report_color(c->kind));
			report_esc(f, c->hop);
			logtool_fmt_us(a, sizeof(a), c->d2c_us);
			fprintf(f, ": closed in %s</title></rect>\n", a);
		}
		fprintf(f, "<circle cx=\"%d\" cy=\"%d\" r=\"5\" fill=\"%s\" "
		    "stroke=\"#1d2330\" stroke-width=\"1\"><title>", xb, y,
		    report_color(c->kind));
		report_esc(f, c->hop);
		logtool_fmt_us(a, sizeof(a), c->ts_us - k->start);
		fprintf(f, ": cancel record at +%s</title></circle>\n", a);
		logtool_fmt_us(a, sizeof(a), c->d2c_us);
		logtool_fmt_us(b, sizeof(b), c->ts_us - k->start);
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"%s\">",
		    xb > (x0 + x1) / 2 ? xb - 10 : xb + 10, y + 18,
		    xb > (x0 + x1) / 2 ? "end" : "start");
		report_esc(f, c->kind ? c->kind : "-");
		fputs(", ", f);
		report_esc(f, c->direction ? c->direction : "-");
		fputs(" via ", f);
		report_esc(f, c->via ? c->via : "-");
		fprintf(f, ", close %s, recorded +%s</text>\n", a, b);
	}
	fputs("</svg>\n", f);
}

/* The slowest cascades. */
static void
report_cascades(FILE *f, struct report_ctx *x)
{
	int	 i;

	fprintf(f, "<h2>Slowest cascades</h2>\n<p class=\"sub\">The %d "
	    "requests whose cancel took longest from the first hop noticing "
	    "(the start of a bar) to the last hop writing its cancel record "
	    "(a dot). Bars are each hop's detect-to-close time.</p>\n",
	    x->ntop);
	for (i = 0; i < x->ntop; i++)
		report_cascade(f, x->top[i], i + 1);
	if (x->ntop == 0)
		fputs("<p>No cancels.</p>\n", f);
}

/* The page's end, with a check that the charts were drawn. */
static void
report_tail(FILE *f)
{
	fputs("<p class=\"sub\">Written by cancelproxy-log. The page is "
	    "self-contained: no network access.</p>\n"
	    "<script>\n"
	    "(function () {\n"
	    "  var charts = document.querySelectorAll('svg.chart'), ok = 0;\n"
	    "  for (var i = 0; i < charts.length; i++) {\n"
	    "    var r = charts[i].getBoundingClientRect();\n"
	    "    if (r.width > 0 && r.height > 0 &&\n"
	    "        charts[i].querySelector('rect, circle, line'))\n"
	    "      ok++;\n"
	    "  }\n"
	    "  document.documentElement.setAttribute('data-charts-drawn', ok);\n"
	    "  console.log('cancelproxy-report: drew ' + ok + ' of ' +\n"
	    "      charts.length + ' charts');\n"
	    "})();\n"
	    "</script>\n</body>\n</html>\n", f);
}

/* The report command. */
int
logtool_cmd_report(struct logtool_opts *o)
{
	struct logtool_input	 in;
	struct logtool_join	 j;
	struct logtool_rec	*r;
	struct logtool_filter	 rf;
	struct report_ctx	 x;
	FILE			*f;
	int			 i, bad, rc, to_stdout;
	uint64_t		 ncancel;

	memset(&x, 0, sizeof(x));
	x.o = o;
	x.clock = INT64_MIN;
	if ((x.st = logtool_stats_new()) == NULL ||
	    (o->top > 0 && (x.top = calloc((size_t)o->top,
	    sizeof(*x.top))) == NULL)) {
		fprintf(stderr, "cancelproxy-log: out of memory\n");
		logtool_stats_free(x.st);
		return LOGTOOL_EXIT_BAD;
	}
	logtool_filter_for_requests(&rf, &o->filter);
	if (logtool_input_open(&in, o->files, o->nfiles, 0) == -1) {
		logtool_input_free(&in);
		logtool_stats_free(x.st);
		free(x.top);
		return LOGTOOL_EXIT_BAD;
	}
	logtool_join_init(&j, report_emit, &x);
	while (logtool_input_next(&in, &r) == 1)
		logtool_stats_record(x.st, &j, &o->filter, &rf, r);
	logtool_join_flush(&j, -1);
	logtool_join_free(&j);
	cascade_expire(&x, 1);
	bad = in.errors != 0;
	logtool_input_report(&in);

	/* The page is written in µs and block-free text, whatever the
	 * terminal. */
	logtool_term.utf8 = 1;
	to_stdout = strcmp(o->html, "-") == 0;
	if (to_stdout)
		f = stdout;
	else if ((f = fopen(o->html, "w")) == NULL) {
		fprintf(stderr, "cancelproxy-log: %s: %s\n", o->html,
		    strerror(errno));
		bad = 1;
	}
	if (f != NULL) {
		report_head(f);
		report_summary(f, &x, &in);
		report_latency(f, &x);
		report_series(f, &x);
		report_cascades(f, &x);
		report_tail(f);
		if (!to_stdout && fclose(f) == EOF) {
			fprintf(stderr, "cancelproxy-log: %s: %s\n", o->html,
			    strerror(errno));
			bad = 1;
		}
	}
	logtool_stats_d2c(x.st, &ncancel, &(uint64_t){ 0 });
	rc = bad ? LOGTOOL_EXIT_BAD : ncancel ? LOGTOOL_EXIT_FOUND :
	    LOGTOOL_EXIT_NOTHING;
	if (ncancel == 0)
		fprintf(stderr, "cancelproxy-log: no cancel records matched; "
		    "the report is empty\n");
	for (i = 0; i < x.ntop; i++)
		cascade_free(x.top[i]);
	free(x.top);
	free(x.bucket);
	logtool_input_free(&in);
	logtool_stats_free(x.st);
	return rc;
}
