/* genlog: writes a synthetic cancelproxy log of N records for the
 * cancelproxy-log benchmark: two hops (edge -> core) in one file, records
 * shaped exactly as the proxy writes them (README "Log records"), with a
 * realistic mix of completed requests, client cancels that travel toward
 * the model with a note, and timeouts and model failures that travel
 * toward the client. Deterministic: the same N gives the same bytes.
 *
 *   cc -O2 -o genlog genlog.c && ./genlog 1000000 > bench.log
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t	 gen_state = 0x9e3779b97f4a7c15ULL;
static uint64_t	 gen_written, gen_limit;
static int64_t	 gen_now;		/* µs since the epoch */

/* xorshift64*: a fast deterministic generator. */
static uint64_t
gen_rand(void)
{
	gen_state ^= gen_state >> 12;
	gen_state ^= gen_state << 25;
	gen_state ^= gen_state >> 27;
	return gen_state * 2685821657736338717ULL;
}

/* A uniform number in [0, 1). */
static double
gen_unit(void)
{
	return (double)(gen_rand() >> 11) / 9007199254740992.0;
}

/* A log-normal-ish positive number around median m. */
static double
gen_around(double m)
{
	double	 u = gen_unit() + gen_unit() + gen_unit() - 1.5;

	return m * __builtin_exp(u * 1.2);
}

static void
gen_hex(char *buf, int n)
{
	static const char hex[] = "0123456789abcdef";
	int	 i;

	for (i = 0; i < n; i++)
		buf[i] = hex[gen_rand() & 15];
	buf[n] = '\0';
}

/* RFC 3339 with microseconds, as the proxy writes it. */
static void
gen_ts(char *buf, size_t len, int64_t us)
{
	struct tm	 tm;
	time_t		 t = (time_t)(us / 1000000);

	gmtime_r(&t, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(us % 1000000));
}

/* Lines wait in a min-heap by time: the proxy writes in time order, and
 * a timeout is written long after the request arrived. */
struct gen_pending {
	int64_t	 ts;
	uint64_t seq;
	char	*line;
};
static struct gen_pending *gen_heap;
static size_t	 gen_nheap, gen_capheap;
static uint64_t	 gen_seq;

static int
gen_before(const struct gen_pending *a, const struct gen_pending *b)
{
	return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq);
}

/* Writes every waiting line older than until; stops at N lines. */
static void
gen_flush(int64_t until)
{
	struct gen_pending	 top, t;
	size_t			 i, c;

	while (gen_nheap > 0 && gen_heap[0].ts < until) {
		top = gen_heap[0];
		gen_heap[0] = gen_heap[--gen_nheap];
		for (i = 0; (c = 2 * i + 1) < gen_nheap; i = c) {
			if (c + 1 < gen_nheap && gen_before(&gen_heap[c + 1],
			    &gen_heap[c]))
				c++;
			if (!gen_before(&gen_heap[c], &gen_heap[i]))
				break;
			t = gen_heap[i];
			gen_heap[i] = gen_heap[c];
			gen_heap[c] = t;
		}
		fputs(top.line, stdout);
		fputc('\n', stdout);
		free(top.line);
		if (++gen_written >= gen_limit) {
			fflush(stdout);
			exit(0);
		}
	}
}

/* Queues one record line written at ts. */
static void
gen_line_at(int64_t ts, const char *line)
{
	struct gen_pending	 t;
	size_t			 i;

	if (gen_nheap == gen_capheap) {
		gen_capheap = gen_capheap ? gen_capheap * 2 : 4096;
		if ((gen_heap = realloc(gen_heap, gen_capheap *
		    sizeof(*gen_heap))) == NULL)
			abort();
	}
	gen_heap[gen_nheap].ts = ts;
	gen_heap[gen_nheap].seq = gen_seq++;
	if ((gen_heap[gen_nheap].line = strdup(line)) == NULL)
		abort();
	for (i = gen_nheap++; i > 0 && gen_before(&gen_heap[i],
	    &gen_heap[(i - 1) / 2]); i = (i - 1) / 2) {
		t = gen_heap[i];
		gen_heap[i] = gen_heap[(i - 1) / 2];
		gen_heap[(i - 1) / 2] = t;
	}
}

struct gen_req {
	char		 rid[33], trace[33];
	const char	*model, *upstream;
	int64_t		 t_arrive;
	int		 port;
};

static void
gen_request(const struct gen_req *q, const char *hop, int64_t ts,
    const char *upstream, int status, const char *outcome, double dur_ms,
    double ttfb_ms, long events, int usage)
{
	char	 t[64], line[2048], u[160] = "";

	gen_ts(t, sizeof(t), ts);
	if (usage)
		snprintf(u, sizeof(u), ",\"usage\":{\"prompt_tokens\":%ld,"
		    "\"completion_tokens\":%ld,\"total_tokens\":%ld}",
		    40 + (long)(gen_rand() % 400), events, events + 200);
	snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"info\","
	    "\"hop\":\"%s\",\"event\":\"request\",\"request_id\":\"%s\","
	    "\"trace_id\":\"%s\",\"client\":\"10.0.%d.%d:%d\",\"method\":"
	    "\"POST\",\"path\":\"/v1/chat/completions\",\"model\":\"%s\","
	    "\"route\":\"/v1/\",\"upstream\":\"%s\",\"status\":%d,"
	    "\"outcome\":\"%s\",\"duration_ms\":%.3f,\"ttfb_ms\":%.3f,"
	    "\"bytes_in\":%d,\"bytes_out\":%ld,\"sse_events\":%ld%s}", t, hop,
	    q->rid, q->trace, q->port % 200, q->port % 250, q->port,
	    q->model, upstream, status, outcome, dur_ms, ttfb_ms,
	    180 + (int)(gen_rand() % 900), events * 190 + 120, events, u);
	gen_line_at(ts, line);
}

static void
gen_cancel(const struct gen_req *q, const char *hop, int64_t ts,
    const char *kind, const char *ohop, const char *path,
    const char *pathtext, const char *direction, const char *phase,
    const char *via, const char *upstream, long elapsed, long d2c,
    long events, const char *words)
{
	char	 t[64], line[2048], d[32];

	gen_ts(t, sizeof(t), ts);
	if (d2c < 0)
		snprintf(d, sizeof(d), "null");
	else
		snprintf(d, sizeof(d), "%ld", d2c);
	snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"info\","
	    "\"hop\":\"%s\",\"event\":\"cancel\",\"request_id\":\"%s\","
	    "\"trace_id\":\"%s\",\"origin\":{\"kind\":\"%s\",\"hop\":\"%s\"},"
	    "\"cancel_path\":%s,\"direction\":\"%s\",\"phase\":\"%s\","
	    "\"detected_via\":\"%s\",\"upstream\":\"%s\",\"elapsed_ms\":%ld,"
	    "\"detect_to_close_us\":%s,\"sse_events\":%ld,\"bytes_out\":%ld,"
	    "\"message\":\"[canceled path: %s] %s after %ld ms\"}", t, hop,
	    q->rid, q->trace, kind, ohop, path, direction, phase, via,
	    upstream, elapsed, d, events, events * 190 + 120, pathtext, words,
	    elapsed);
	gen_line_at(ts, line);
}

static void
gen_note(const struct gen_req *q, int64_t ts, const char *kind,
    const char *pathtext)
{
	char	 t[64], line[1024];

	gen_ts(t, sizeof(t), ts);
	snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"info\","
	    "\"hop\":\"core\",\"event\":\"note\",\"request_id\":\"%s\","
	    "\"from\":\"edge\",\"sender\":\"10.1.0.2\",\"outcome\":\"applied\","
	    "\"origin_kind\":\"%s\",\"path\":\"%s\"}", t, q->rid, kind,
	    pathtext);
	gen_line_at(ts, line);
}

/* One request through edge and core, with its records. */
static void
gen_one(void)
{
	static const char *const models[] = { "gpt-4o", "gpt-4o-mini",
	    "claude-3-5-sonnet", "llama-3.1-70b" };
	static const char *const ups[] = { "openai", "openai", "anthropic",
	    "vllm" };
	struct gen_req	 q;
	double		 r = gen_unit(), ttfb, dur;
	long		 events, elapsed, m;
	int64_t		 t_end;
	int		 mi = (int)(gen_rand() % 4);

	gen_now += (int64_t)gen_around(2000);
	gen_hex(q.rid, 32);
	gen_hex(q.trace, 32);
	q.model = models[mi];
	q.upstream = ups[mi];
	q.t_arrive = gen_now;
	q.port = 1024 + (int)(gen_rand() % 60000);
	ttfb = gen_around(350);
	events = 20 + (long)(gen_rand() % 600);
	dur = ttfb + events * gen_around(25);

	if (r < 0.03) {		/* refused at edge: no route */
		gen_request(&q, "edge", gen_now + 300, "-", 404, "error", 0.3,
		    -0.0, 0, 0);
		return;
	}
	if (r < 0.75) {		/* completed */
		t_end = gen_now + (int64_t)(dur * 1000);
		gen_request(&q, "core", t_end - 150, q.upstream, 200,
		    "completed", dur - 0.15, ttfb, events, 1);
		gen_request(&q, "edge", t_end, "core", 200, "completed", dur,
		    ttfb + 0.4, events, 1);
		return;
	}
	r = gen_unit();
	if (r < 0.74) {		/* the client leaves: toward the model */
		const char	*kind = r < 0.66 ? "client_disconnect" :
		    r < 0.70 ? "client_cancel" : r < 0.72 ? "admin" :
		    "shutdown";
		const char	*via = strcmp(kind, "client_disconnect") == 0 ?
		    (gen_unit() < 0.7 ? "eof" : "rst") :
		    strcmp(kind, "client_cancel") == 0 ? "admin" :
		    strcmp(kind, "admin") == 0 ? "admin" : "signal";
		const char	*phase;
		const char	*ohop = strncmp(kind, "client", 6) == 0 ?
		    "client" : "edge";
		char		 p1[64], p2[64], t1[64], t2[64];
		long		 d2c = (long)gen_around(30), d2c2;
		double		 u = gen_unit();

		if (u < 0.6) {
			phase = "streaming";
			elapsed = (long)(ttfb + (double)(gen_rand() %
			    (unsigned)(dur - ttfb + 1)));
		} else if (u < 0.95) {
			phase = "waiting_first_byte";
			elapsed = (long)(ttfb * gen_unit());
		} else if (u < 0.98) {
			phase = "request";
			elapsed = (long)(gen_rand() % 40);
			d2c = -1;
		} else {
			phase = "connecting";
			elapsed = (long)(gen_rand() % 20);
		}
		m = strcmp(phase, "streaming") == 0 ? (long)((elapsed - ttfb) /
		    25) : 0;
		if (m < 0)
			m = 0;
		if (strcmp(ohop, "client") == 0) {
			snprintf(p1, sizeof(p1), "[\"client\",\"edge\"]");
			snprintf(t1, sizeof(t1), "client -> edge");
			snprintf(p2, sizeof(p2),
			    "[\"client\",\"edge\",\"core\"]");
			snprintf(t2, sizeof(t2), "client -> edge -> core");
		} else {
			snprintf(p1, sizeof(p1), "[\"edge\"]");
			snprintf(t1, sizeof(t1), "edge");
			snprintf(p2, sizeof(p2), "[\"edge\",\"core\"]");
			snprintf(t2, sizeof(t2), "edge -> core");
		}
		t_end = gen_now + elapsed * 1000;
		gen_cancel(&q, "edge", t_end + 40, kind, ohop, p1, t1,
		    "upstream", phase, via, "core", elapsed, d2c, m,
		    "client disconnected");
		gen_request(&q, "edge", t_end + 60, "core", strcmp(phase,
		    "request") == 0 ? 499 : 200, "canceled", (double)elapsed,
		    ttfb, m, 0);
		if (strcmp(phase, "request") == 0 ||
		    strcmp(phase, "connecting") == 0)
			return;		/* core never saw it */
		d2c2 = (long)gen_around(28);
		gen_note(&q, t_end + 700, kind, t1);
		gen_cancel(&q, "core", t_end + 710, kind, ohop, p2, t2,
		    "upstream", phase, gen_unit() < 0.8 ? "eof" : "note",
		    q.upstream, elapsed, d2c2, m, "client disconnected");
		gen_request(&q, "core", t_end + 720, q.upstream, 200,
		    "canceled", (double)elapsed - 0.2, ttfb, m, gen_unit() < 0.5);
		return;
	}
	/* The model side fails or is slow: toward the client. */
	{
		const char	*kind, *phase, *via, *ohop = "core";
		char		 p1[96], p2[96], t1[96], t2[96], o[64];
		long		 d2c = (long)gen_around(60);

		if (r < 0.84) {
			kind = "first_byte_timeout";
			phase = "waiting_first_byte";
			via = "timer";
			elapsed = 120000;
			m = 0;
		} else if (r < 0.88) {
			kind = "idle_timeout";
			phase = "streaming";
			via = "timer";
			elapsed = (long)(ttfb + 60000);
			m = (long)(gen_rand() % 100);
		} else if (r < 0.94) {
			kind = "upstream_closed";
			phase = "streaming";
			via = gen_unit() < 0.5 ? "eof" : "rst";
			elapsed = (long)(ttfb + (double)(gen_rand() % 4000));
			m = (long)(gen_rand() % 100);
		} else {
			kind = "upstream_error";
			phase = "connecting";
			via = gen_unit() < 0.5 ? "rst" : "timer";
			elapsed = (long)(gen_rand() % 5000);
			m = 0;
		}
		if (strcmp(kind, "upstream_closed") == 0 ||
		    strcmp(kind, "upstream_error") == 0) {
			snprintf(o, sizeof(o), "upstream:%s", q.upstream);
			ohop = o;
			snprintf(p1, sizeof(p1), "[\"%s\",\"core\"]", o);
			snprintf(t1, sizeof(t1), "%s -> core", o);
			snprintf(p2, sizeof(p2), "[\"%s\",\"core\",\"edge\"]",
			    o);
			snprintf(t2, sizeof(t2), "%s -> core -> edge", o);
		} else {
			snprintf(p1, sizeof(p1), "[\"core\"]");
			snprintf(t1, sizeof(t1), "core");
			snprintf(p2, sizeof(p2), "[\"core\",\"edge\"]");
			snprintf(t2, sizeof(t2), "core -> edge");
		}
		t_end = gen_now + elapsed * 1000;
		gen_cancel(&q, "core", t_end, kind, ohop, p1, t1, "downstream",
		    phase, via, q.upstream, elapsed, d2c, m, "the upstream "
		    "failed");
		gen_request(&q, "core", t_end + 20, q.upstream, m ? 200 : 504,
		    "canceled", (double)elapsed, ttfb, m, 0);
		gen_cancel(&q, "edge", t_end + 300, kind, ohop, p2, t2,
		    "downstream", m ? "streaming" : phase, m ? "sse_error" :
		    "upstream_status", "core", elapsed, (long)gen_around(25),
		    m, "the upstream failed");
		gen_request(&q, "edge", t_end + 320, "core", m ? 200 : 504,
		    "canceled", (double)elapsed + 0.3, ttfb, m, 0);
	}
}

int
main(int argc, char **argv)
{
	static char	 obuf[1 << 20];

	if (argc != 2 || (gen_limit = strtoull(argv[1], NULL, 10)) == 0) {
		fprintf(stderr, "usage: genlog RECORDS > FILE\n");
		return 2;
	}
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	gen_now = 1795305600LL * 1000000;	/* 2026-11-22T00:00:00Z */
	for (;;) {
		gen_one();
		/* Nothing generated later can be older than this. */
		gen_flush(gen_now);
	}
}
