/* logtool_cancels: the "cancels" table and the "tail" command, which both
 * print joined cancels as they come out of the join index in log order. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/jsonw.h"
#include "tools/log/logtool.h"

/* What the emit callbacks of cancels and tail need. */
struct cancels_ctx {
	struct logtool_opts	*o;
	uint64_t		 shown;
	int			 header_done;
	/* tail: the last N lines before following starts */
	char			**ring;
	long			  ring_n, ring_next, ring_count;
	int			  live;
};

static volatile sig_atomic_t logtool_stop;

/* The cancel_path as "client -> edge -> core". */
static void
cancel_path_text(const struct logtool_cancel *c, char *buf, size_t len)
{
	size_t	 off = 0;
	int	 i, n;

	buf[0] = '\0';
	for (i = 0; i < c->npath && off < len; i++) {
		n = snprintf(buf + off, len - off, "%s%s", i ? " -> " : "",
		    c->path[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (c->npath == 0)
		snprintf(buf, len, "-");
}

/* Column widths of the cancels table (values may run over). */
#define COL_TIME	23
#define COL_HOP		8
#define COL_KIND	18
#define COL_DIR		10
#define COL_PHASE	18
#define COL_VIA		15
#define COL_ELAPSED	8
#define COL_CLOSE	8
#define COL_EVENTS	6
#define COL_MODEL	12
#define COL_REQUEST	32

/* The header of the cancels table. */
void
logtool_cancel_print_header(FILE *f)
{
	fputs(logtool_c(LOGTOOL_C_BOLD), f);
	logtool_pad(f, "TIME (UTC)", COL_TIME, 0);
	fputs("  ", f);
	logtool_pad(f, "HOP", COL_HOP, 0);
	fputs("  ", f);
	logtool_pad(f, "KIND", COL_KIND, 0);
	fputs("  ", f);
	logtool_pad(f, "DIRECTION", COL_DIR, 0);
	fputs("  ", f);
	logtool_pad(f, "PHASE", COL_PHASE, 0);
	fputs("  ", f);
	logtool_pad(f, "VIA", COL_VIA, 0);
	fputs("  ", f);
	logtool_pad(f, "ELAPSED", COL_ELAPSED, 1);
	fputs("  ", f);
	logtool_pad(f, "CLOSE", COL_CLOSE, 1);
	fputs("  ", f);
	logtool_pad(f, "EVENTS", COL_EVENTS, 1);
	fputs("  ", f);
	logtool_pad(f, "MODEL", COL_MODEL, 0);
	fputs("  ", f);
	logtool_pad(f, "REQUEST", COL_REQUEST, 0);
	fputs("  PATH", f);
	fputs(logtool_c(LOGTOOL_C_RESET), f);
	fputc('\n', f);
}

/* One row of the cancels table. */
void
logtool_cancel_print_row(FILE *f, const struct logtool_cancel *c)
{
	char	 t[40], el[32], d2c[32], ev[32], path[1024];

	logtool_fmt_time(t, sizeof(t), c->ts_us, 1);
	logtool_fmt_ms(el, sizeof(el), (double)c->elapsed_ms);
	logtool_fmt_us(d2c, sizeof(d2c), c->d2c_us);
	if (c->sse_events >= 0)
		snprintf(ev, sizeof(ev), "%lld", (long long)c->sse_events);
	else
		snprintf(ev, sizeof(ev), "-");
	cancel_path_text(c, path, sizeof(path));

	logtool_pad(f, t, COL_TIME, 0);
	fputs("  ", f);
	logtool_pad(f, c->hop, COL_HOP, 0);
	fputs("  ", f);
	fputs(logtool_c(logtool_kind_color(c->kind)), f);
	logtool_pad(f, c->kind ? c->kind : "-", COL_KIND, 0);
	fputs(logtool_c(LOGTOOL_C_RESET), f);
	fputs("  ", f);
	logtool_pad(f, c->direction ? c->direction : "-", COL_DIR, 0);
	fputs("  ", f);
	logtool_pad(f, c->phase ? c->phase : "-", COL_PHASE, 0);
	fputs("  ", f);
	logtool_pad(f, c->via ? c->via : "-", COL_VIA, 0);
	fputs("  ", f);
	logtool_pad(f, el, COL_ELAPSED, 1);
	fputs("  ", f);
	logtool_pad(f, d2c, COL_CLOSE, 1);
	fputs("  ", f);
	logtool_pad(f, ev, COL_EVENTS, 1);
	fputs("  ", f);
	logtool_pad(f, c->model ? c->model : "-", COL_MODEL, 0);
	fputs("  ", f);
	logtool_pad(f, c->request_id ? c->request_id : "-", COL_REQUEST, 0);
	fputs("  ", f);
	fputs(path, f);
	fputc('\n', f);
}

/* The colour of a detect-to-close time: green under 1 ms, yellow under
 * 10 ms, red above. */
static const char *
cancel_d2c_color(int64_t us)
{
	if (us < 0)
		return LOGTOOL_C_DIM;
	if (us < 1000)
		return LOGTOOL_C_GREEN;
	if (us < 10000)
		return LOGTOOL_C_YELLOW;
	return LOGTOOL_C_RED;
}

/* One readable line for tail. */
void
logtool_cancel_print_line(FILE *f, const struct logtool_cancel *c)
{
	char		 t[40], el[32], d2c[32], path[1024];
	const char	*toward;

	logtool_fmt_time(t, sizeof(t), c->ts_us, 1);
	logtool_fmt_ms(el, sizeof(el), (double)c->elapsed_ms);
	logtool_fmt_us(d2c, sizeof(d2c), c->d2c_us);
	cancel_path_text(c, path, sizeof(path));
	if (c->direction != NULL && strcmp(c->direction, "downstream") == 0)
		toward = "toward the client";
	else if (c->direction != NULL && strcmp(c->direction, "upstream") == 0)
		toward = "toward the model";
	else
		toward = "direction unknown";

	fprintf(f, "%s%s%s %s%s%s %s%s%s %s, %s, noticed via %s, ",
	    logtool_c(LOGTOOL_C_DIM), t, logtool_c(LOGTOOL_C_RESET),
	    logtool_c(LOGTOOL_C_BOLD), c->hop, logtool_c(LOGTOOL_C_RESET),
	    logtool_c(logtool_kind_color(c->kind)), c->kind ? c->kind : "-",
	    logtool_c(LOGTOOL_C_RESET), c->phase ? c->phase : "-",
	    toward, c->via ? c->via : "-");
	if (c->d2c_us >= 0)
		fprintf(f, "closed in %s%s%s", logtool_c(cancel_d2c_color(
		    c->d2c_us)), d2c, logtool_c(LOGTOOL_C_RESET));
	else
		fputs("nothing to close", f);
	fprintf(f, ", at %s", el);
	if (c->sse_events >= 0)
		fprintf(f, ", %lld event%s", (long long)c->sse_events,
		    c->sse_events == 1 ? "" : "s");
	if (c->model != NULL)
		fprintf(f, ", model %s", c->model);
	fprintf(f, " [%s] %s%s%s\n", path, logtool_c(LOGTOOL_C_DIM),
	    c->request_id ? c->request_id : "-", logtool_c(LOGTOOL_C_RESET));
}

/* The record as the proxy wrote it, with "model" and "usage" from the
 * join added before its closing brace. */
void
logtool_cancel_print_json(FILE *f, const struct logtool_cancel *c)
{
	struct jsonw	 w;
	char		 stack[512];
	size_t		 n = c->linelen;

	while (n > 0 && (c->line[n - 1] == ' ' || c->line[n - 1] == '\t' ||
	    c->line[n - 1] == '\r'))
		n--;
	if (n == 0 || c->line[n - 1] != '}')
		return;		/* the scanner accepted it: cannot happen */
	n--;
	jsonw_init(&w, stack, sizeof(stack));
	/* The writer owes a comma unless the object was empty. */
	w.need_comma = memchr(c->line, ':', n) != NULL;
	jsonw_kstr(&w, "model", c->model);
	if (c->has_usage) {
		jsonw_lkey(&w, "usage");
		jsonw_obj_open(&w);
		if (c->prompt_tokens >= 0)
			jsonw_kint(&w, "prompt_tokens", c->prompt_tokens);
		if (c->completion_tokens >= 0)
			jsonw_kint(&w, "completion_tokens",
			    c->completion_tokens);
		if (c->total_tokens >= 0)
			jsonw_kint(&w, "total_tokens", c->total_tokens);
		jsonw_obj_close(&w);
	}
	fwrite(c->line, 1, n, f);
	fwrite(w.buf, 1, w.len, f);
	fputs("}\n", f);
	jsonw_free(&w);
}

/* cancels: prints each cancel that passes the filters. */
static int
cancels_emit(struct logtool_cancel *c, void *arg)
{
	struct cancels_ctx	*x = arg;

	if (!logtool_filter_cancel(&x->o->filter, c))
		return 0;
	if (x->o->json)
		logtool_cancel_print_json(stdout, c);
	else {
		if (!x->header_done) {
			logtool_cancel_print_header(stdout);
			x->header_done = 1;
		}
		logtool_cancel_print_row(stdout, c);
	}
	x->shown++;
	return 0;
}

/* Reads every record into the join; 0, or -1 on bad input. */
static int
cancels_read(struct logtool_input *in, struct logtool_join *j)
{
	struct logtool_rec	*r;

	while (logtool_input_next(in, &r) == 1)
		if (r->event == LOGTOOL_EV_CANCEL ||
		    r->event == LOGTOOL_EV_REQUEST)
			logtool_join_add(j, r);
	return in->errors ? -1 : 0;
}

/* The cancels command. */
int
logtool_cmd_cancels(struct logtool_opts *o)
{
	struct logtool_input	 in;
	struct logtool_join	 j;
	struct cancels_ctx	 x;
	int			 rc;

	memset(&x, 0, sizeof(x));
	x.o = o;
	if (logtool_input_open(&in, o->files, o->nfiles, 0) == -1) {
		logtool_input_free(&in);
		return LOGTOOL_EXIT_BAD;
	}
	logtool_join_init(&j, cancels_emit, &x);
	rc = cancels_read(&in, &j);
	logtool_join_flush(&j, -1);
	logtool_join_free(&j);
	logtool_input_report(&in);
	logtool_input_free(&in);
	if (x.shown == 0 && !o->json)
		fprintf(stderr, "cancelproxy-log: no cancel records matched\n");
	if (rc == -1)
		return LOGTOOL_EXIT_BAD;
	return x.shown ? LOGTOOL_EXIT_FOUND : LOGTOOL_EXIT_NOTHING;
}

/* tail: keeps the last N lines until following starts, then prints. */
static int
tail_emit(struct logtool_cancel *c, void *arg)
{
	struct cancels_ctx	*x = arg;
	char			*line = NULL;
	size_t			 len = 0;
	FILE			*m;

	if (!logtool_filter_cancel(&x->o->filter, c))
		return 0;
	x->shown++;
	if (x->live) {
		if (x->o->json)
			logtool_cancel_print_json(stdout, c);
		else
			logtool_cancel_print_line(stdout, c);
		return 0;
	}
	if (x->ring_n == 0)
		return 0;
	if ((m = open_memstream(&line, &len)) == NULL)
		return 0;
	if (x->o->json)
		logtool_cancel_print_json(m, c);
	else
		logtool_cancel_print_line(m, c);
	fclose(m);
	free(x->ring[x->ring_next]);
	x->ring[x->ring_next] = line;
	x->ring_next = (x->ring_next + 1) % x->ring_n;
	if (x->ring_count < x->ring_n)
		x->ring_count++;
	return 0;
}

/* Prints the kept lines, oldest first. */
static void
tail_ring_flush(struct cancels_ctx *x)
{
	long	 i, k;

	for (i = 0; i < x->ring_count; i++) {
		k = (x->ring_next - x->ring_count + i + x->ring_n) % x->ring_n;
		fputs(x->ring[k], stdout);
		free(x->ring[k]);
		x->ring[k] = NULL;
	}
	x->ring_count = 0;
}

/* SIGINT and SIGTERM end tail -f at the next wake-up. */
static void
tail_signal(int sig)
{
	(void)sig;
	logtool_stop = 1;
}

/* The tail command: the last N cancels, then (-f) the new ones. */
int
logtool_cmd_tail(struct logtool_opts *o)
{
	struct logtool_input	 in;
	struct logtool_join	 j;
	struct cancels_ctx	 x;
	struct logtool_rec	*r;
	struct sigaction	 sa;
	int			 i, alive, bad = 0;

	memset(&x, 0, sizeof(x));
	x.o = o;
	x.ring_n = o->tail_n;
	if (x.ring_n > 0 && (x.ring = calloc((size_t)x.ring_n,
	    sizeof(*x.ring))) == NULL) {
		fprintf(stderr, "cancelproxy-log: out of memory\n");
		return LOGTOOL_EXIT_BAD;
	}
	if (logtool_input_open(&in, o->files, o->nfiles, o->follow) == -1) {
		logtool_input_free(&in);
		free(x.ring);
		return LOGTOOL_EXIT_BAD;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tail_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	logtool_join_init(&j, tail_emit, &x);
	/* What is there now: only the last N are printed. */
	while (logtool_input_next(&in, &r) == 1)
		logtool_join_add(&j, r);
	logtool_join_flush(&j, -1);
	tail_ring_flush(&x);
	x.live = 1;
	while (o->follow && !logtool_stop) {
		logtool_input_wait(&in, LOGTOOL_FOLLOW_POLL_MS);
		while (!logtool_stop && logtool_input_next(&in, &r) == 1)
			logtool_join_add(&j, r);
		/* A cancel whose request record has not come soon after is
		 * printed without it. */
		logtool_join_flush(&j, LOGTOOL_FOLLOW_FLUSH_US);
		fflush(stdout);
		for (alive = 0, i = 0; i < in.nsrc; i++)
			if (!in.src[i]->done)
				alive = 1;
		if (!alive)
			break;
	}
	logtool_join_flush(&j, -1);
	logtool_join_free(&j);
	bad = in.errors != 0;
	logtool_input_report(&in);
	logtool_input_free(&in);
	for (i = 0; i < x.ring_n; i++)
		free(x.ring[i]);
	free(x.ring);
	if (bad)
		return LOGTOOL_EXIT_BAD;
	return x.shown ? LOGTOOL_EXIT_FOUND : LOGTOOL_EXIT_NOTHING;
}
