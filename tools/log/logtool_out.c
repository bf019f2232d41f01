/* logtool_out: how cancelproxy-log prints: colour and UTF-8 decisions,
 * human durations and times, aligned text tables, and histograms (a
 * log-linear one for percentiles, fixed bars for the terminal). */
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/log/logtool.h"

struct logtool_term logtool_term;

/* Decides colour and UTF-8 for standard output. */
int
logtool_term_init(const char *color)
{
	const char	*nc = getenv("NO_COLOR");
	const char	*cs;

	if (setlocale(LC_CTYPE, "") != NULL && (cs = nl_langinfo(CODESET)) &&
	    (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0))
		logtool_term.utf8 = 1;
	if (color == NULL || strcmp(color, "auto") == 0)
		logtool_term.color = isatty(STDOUT_FILENO) &&
		    (nc == NULL || nc[0] == '\0') && getenv("TERM") != NULL &&
		    strcmp(getenv("TERM"), "dumb") != 0;
	else if (strcmp(color, "always") == 0)
		logtool_term.color = 1;
	else if (strcmp(color, "never") == 0)
		logtool_term.color = 0;
	else {
		fprintf(stderr, "cancelproxy-log: --color %s: one of auto, "
		    "always, never\n", color);
		return -1;
	}
	return 0;
}

/* An ANSI colour sequence, or "" when colour is off. */
const char *
logtool_c(const char *code)
{
	static char	 buf[8][16];
	static int	 next;
	char		*b;

	if (!logtool_term.color)
		return "";
	b = buf[next++ % 8];
	snprintf(b, sizeof(buf[0]), "\033[%sm", code);
	return b;
}

/* The colour of an origin kind: who to talk to about it. */
const char *
logtool_kind_color(const char *kind)
{
	if (kind == NULL)
		return LOGTOOL_C_DIM;
	if (strncmp(kind, "client_", 7) == 0)
		return LOGTOOL_C_YELLOW;
	if (strstr(kind, "timeout") != NULL)
		return LOGTOOL_C_MAGENTA;
	if (strncmp(kind, "upstream_", 9) == 0)
		return LOGTOOL_C_RED;
	if (strcmp(kind, "admin") == 0 || strcmp(kind, "shutdown") == 0)
		return LOGTOOL_C_BLUE;
	return LOGTOOL_C_CYAN;
}

/* A duration in microseconds, in the unit that reads best. */
void
logtool_fmt_us(char *buf, size_t len, int64_t us)
{
	const char	*mu = logtool_term.utf8 ? "µs" : "us";

	if (us < 0)
		snprintf(buf, len, "-");
	else if (us < 1000)
		snprintf(buf, len, "%lld%s", (long long)us, mu);
	else if (us < 10000)
		snprintf(buf, len, "%.2fms", (double)us / 1000);
	else if (us < 100000)
		snprintf(buf, len, "%.1fms", (double)us / 1000);
	else if (us < 1000000)
		snprintf(buf, len, "%.0fms", (double)us / 1000);
	else if (us < 60000000)
		snprintf(buf, len, "%.2fs", (double)us / 1e6);
	else if (us < 3600000000LL)
		snprintf(buf, len, "%lldm%02llds", (long long)(us / 60000000),
		    (long long)(us / 1000000 % 60));
	else
		snprintf(buf, len, "%lldh%02lldm", (long long)(us / 3600000000LL),
		    (long long)(us / 60000000 % 60));
}

/* A duration in (fractional) milliseconds. */
void
logtool_fmt_ms(char *buf, size_t len, double ms)
{
	logtool_fmt_us(buf, len, ms < 0 ? -1 : (int64_t)(ms * 1000 + 0.5));
}

/* A count grouped by thousands: 1,234,567. */
void
logtool_fmt_count(char *buf, size_t len, uint64_t n)
{
	char	 tmp[32];
	size_t	 i, j = 0, digits;

	digits = (size_t)snprintf(tmp, sizeof(tmp), "%llu",
	    (unsigned long long)n);
	for (i = 0; i < digits && j + 2 < len; i++) {
		if (i > 0 && (digits - i) % 3 == 0)
			buf[j++] = ',';
		buf[j++] = tmp[i];
	}
	buf[j] = '\0';
}

/* A UTC time as 2026-11-22 02:20:25.850 (or without the date). */
void
logtool_fmt_time(char *buf, size_t len, int64_t us, int date)
{
	struct tm	 tm;
	time_t		 t = (time_t)(us / 1000000);

	if (us < 0) {
		snprintf(buf, len, "-");
		return;
	}
	gmtime_r(&t, &tm);
	if (date)
		snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d.%03d",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, (int)(us % 1000000 / 1000));
	else
		snprintf(buf, len, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min,
		    tm.tm_sec, (int)(us % 1000000 / 1000));
}

/* An RFC 3339 UTC time with microseconds, as the proxy writes them. */
void
logtool_fmt_rfc3339(char *buf, size_t len, int64_t us)
{
	struct tm	 tm;
	time_t		 t = (time_t)(us / 1000000);

	gmtime_r(&t, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int)(us % 1000000));
}

/* Replaces control characters with '?', in place. */
void
logtool_safe(char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
}

/* Display columns of a UTF-8 string (every code point is one column). */
size_t
logtool_width(const char *s)
{
	size_t	 w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Prints s padded to width columns. */
void
logtool_pad(FILE *f, const char *s, size_t width, int right)
{
	size_t	 w = logtool_width(s);

	if (right)
		for (; w < width; w++)
			fputc(' ', f);
	fputs(s, f);
	if (!right)
		for (; w < width; w++)
			fputc(' ', f);
}

/* Starts a table of ncol columns aligned per align ("lrr..."). */
void
logtool_table_init(struct logtool_table *t, int ncol, const char *align)
{
	memset(t, 0, sizeof(*t));
	t->ncol = ncol;
	t->align = align;
}

/* Adds a row; cells are copied. */
void
logtool_table_row(struct logtool_table *t, const char *const *cells)
{
	char	**ncell;
	int	  i;

	if (t->nrow == t->caprow) {
		t->caprow = t->caprow ? t->caprow * 2 : 16;
		ncell = realloc(t->cell, (size_t)t->caprow * (size_t)t->ncol *
		    sizeof(*ncell));
		if (ncell == NULL)
			abort();
		t->cell = ncell;
	}
	for (i = 0; i < t->ncol; i++) {
		if ((t->cell[t->nrow * t->ncol + i] = strdup(cells[i] ?
		    cells[i] : "-")) == NULL)
			abort();
		logtool_safe(t->cell[t->nrow * t->ncol + i],
		    strlen(t->cell[t->nrow * t->ncol + i]));
	}
	t->nrow++;
}

/* Prints the table, the first row (the header) in bold; trailing
 * spaces are not printed. */
void
logtool_table_print(struct logtool_table *t, FILE *f, const char *indent)
{
	size_t	 w[64] = { 0 }, cw;
	int	 r, i, last;

	for (r = 0; r < t->nrow; r++)
		for (i = 0; i < t->ncol && i < 64; i++)
			if ((cw = logtool_width(t->cell[r * t->ncol + i])) >
			    w[i])
				w[i] = cw;
	for (r = 0; r < t->nrow; r++) {
		fputs(indent, f);
		if (r == 0)
			fputs(logtool_c(LOGTOOL_C_BOLD), f);
		last = t->ncol - 1;
		for (i = 0; i < t->ncol; i++) {
			if (i > 0)
				fputs("  ", f);
			logtool_pad(f, t->cell[r * t->ncol + i],
			    i == last && t->align[i] != 'r' ? 0 : w[i],
			    t->align[i] == 'r');
		}
		if (r == 0)
			fputs(logtool_c(LOGTOOL_C_RESET), f);
		fputc('\n', f);
	}
}

/* Frees the cells. */
void
logtool_table_free(struct logtool_table *t)
{
	int	 i;

	for (i = 0; i < t->nrow * t->ncol; i++)
		free(t->cell[i]);
	free(t->cell);
	t->cell = NULL;
	t->nrow = t->caprow = 0;
}

#define HIST_TOP_EXP	40	/* values are capped below 2^41 */

/* The bucket of v: exact below 256, then 128 per power of two. */
static size_t
hist_index(uint64_t v)
{
	int	 e;

	if (v < 256)
		return (size_t)v;
	if (v >= (1ULL << (HIST_TOP_EXP + 1)))
		v = (1ULL << (HIST_TOP_EXP + 1)) - 1;
	e = 63 - __builtin_clzll(v);
	return 256 + (size_t)(e - 8) * 128 + (size_t)((v >> (e - 7)) - 128);
}

/* The middle of bucket i (its value when exact). */
static uint64_t
hist_value(size_t i)
{
	size_t	 e, sub;

	if (i < 256)
		return i;
	e = 8 + (i - 256) / 128;
	sub = (i - 256) % 128;
	return ((128 + sub) << (e - 7)) + ((1ULL << (e - 7)) - 1) / 2;
}

/* Adds a value. */
void
logtool_hist_add(struct logtool_hist *h, uint64_t v)
{
	if (h->b == NULL &&
	    (h->b = calloc(LOGTOOL_HIST_BUCKETS, sizeof(*h->b))) == NULL)
		abort();
	h->b[hist_index(v)]++;
	if (h->n == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->sum += v;
}

/* The nearest-rank percentile, exact below 256 and within 1/128 above. */
uint64_t
logtool_hist_pct(const struct logtool_hist *h, double p)
{
	uint64_t	 rank, seen = 0, v;
	size_t		 i;

	if (h->n == 0)
		return 0;
	if (p >= 100)
		return h->max;
	if (p <= 0)
		return h->min;
	rank = (uint64_t)(p / 100.0 * (double)h->n + 0.9999999);
	if (rank < 1)
		rank = 1;
	if (rank >= h->n)
		return h->max;	/* the last value is known exactly */
	for (i = 0; i < LOGTOOL_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			v = hist_value(i);
			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

/* Frees the buckets. */
void
logtool_hist_free(struct logtool_hist *h)
{
	free(h->b);
	memset(h, 0, sizeof(*h));
}

/* Adds a value to the fixed bars whose edges are e[0..n); the last bar
 * holds everything from e[n - 1] up. */
void
logtool_bars_add(struct logtool_bars *b, uint64_t v)
{
	int	 i;

	for (i = b->n - 1; i > 0 && v < b->edges[i]; i--)
		;
	b->count[i]++;
	b->total++;
}

/* A round bar edge without needless digits: 500µs, 1ms, 2s, 5m. */
static void
bars_edge(char *buf, size_t len, uint64_t v, int us)
{
	const char	*mu = logtool_term.utf8 ? "µs" : "us";
	uint64_t	 ms;

	if (us && v < 1000) {
		snprintf(buf, len, "%llu%s", (unsigned long long)v, mu);
		return;
	}
	if (us && v % 1000 != 0) {
		logtool_fmt_us(buf, len, (int64_t)v);
		return;
	}
	ms = us ? v / 1000 : v;
	if (ms < 1000 || ms % 1000 != 0)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else if (ms < 60000 || ms % 60000 != 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
}

/* The label of bar i: "10-20µs", "500µs-1ms", "≥1s". */
void
logtool_bars_label(const struct logtool_bars *b, int i, char *buf,
    size_t len)
{
	char	 lo[32], hi[32];
	size_t	 ll, hl;

	bars_edge(lo, sizeof(lo), b->edges[i], b->us);
	if (i + 1 < b->n)
		bars_edge(hi, sizeof(hi), b->edges[i + 1], b->us);
	if (i + 1 == b->n) {
		snprintf(buf, len, "%s%s", logtool_term.utf8 ? "≥" : ">=", lo);
		return;
	}
	if (i == 0 && b->edges[0] == 0) {
		snprintf(buf, len, "<%s", hi);
		return;
	}
	/* "10µs-20µs" reads better as "10-20µs". */
	ll = strspn(lo, "0123456789.");
	hl = strspn(hi, "0123456789.");
	if (strcmp(lo + ll, hi + hl) == 0)
		lo[ll] = '\0';
	snprintf(buf, len, "%s-%s", lo, hi);
}

/* Draws the bars on a terminal: label, bar, count and share; an extra
 * row (values that have none, like a null detect_to_close_us) last. */
void
logtool_bars_draw(FILE *f, const struct logtool_bars *b, uint64_t extra,
    const char *extra_label, const char *indent)
{
	static const char *const eighth[] = { "", "▏", "▎", "▍", "▌", "▋",
	    "▊", "▉" };
	char		 label[64], cnt[32];
	uint64_t	 max = extra, all = b->total + extra;
	int		 i, lo = 0, hi = b->n - 1, width = 40, cells, k;
	size_t		 lw = 0;

	for (i = 0; i < b->n; i++)
		if (b->count[i] > max)
			max = b->count[i];
	if (all == 0)
		return;
	/* Leave out empty bars at both ends. */
	while (lo < hi && b->count[lo] == 0)
		lo++;
	while (hi > lo && b->count[hi] == 0)
		hi--;
	for (i = lo; i <= hi; i++) {
		logtool_bars_label(b, i, label, sizeof(label));
		if (logtool_width(label) > lw)
			lw = logtool_width(label);
	}
	if (extra_label != NULL && extra > 0 && strlen(extra_label) > lw)
		lw = strlen(extra_label);
	for (i = lo; i <= hi + 1; i++) {
		uint64_t	 n;

		if (i == hi + 1) {
			if (extra_label == NULL || extra == 0)
				break;
			snprintf(label, sizeof(label), "%s", extra_label);
			n = extra;
		} else {
			logtool_bars_label(b, i, label, sizeof(label));
			n = b->count[i];
		}
		fputs(indent, f);
		logtool_pad(f, label, lw, 1);
		fputs("  ", f);
		/* Eighths of a cell on a UTF-8 terminal, '#' elsewhere. */
		cells = max ? (int)((double)n * width * 8 / (double)max + 0.5) : 0;
		if (n > 0 && cells == 0)
			cells = 1;
		fputs(logtool_c(LOGTOOL_C_CYAN), f);
		if (logtool_term.utf8) {
			for (k = 0; k < cells / 8; k++)
				fputs("█", f);
			fputs(eighth[cells % 8], f);
			k = cells / 8 + (cells % 8 != 0);
		} else {
			for (k = 0; k < (cells + 7) / 8; k++)
				fputc('#', f);
		}
		fputs(logtool_c(LOGTOOL_C_RESET), f);
		for (; k < width; k++)
			fputc(' ', f);
		logtool_fmt_count(cnt, sizeof(cnt), n);
		fprintf(f, "  %8s  %5.1f%%\n", cnt, 100.0 * (double)n /
		    (double)all);
	}
}
