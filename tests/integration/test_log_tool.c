/* cancelproxy-log over logs written by real runs: one hop in front of the
 * mock, and chains of two hops, each logging to a file. Every command and
 * filter is checked against what the test itself reads from the same
 * files with cJSON; then gzip, junk lines, standard input, rotation while
 * following, colour, and the HTML report rendered by headless Chromium. */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define TOOL		"cancelproxy-log"
#define MAXLINES	1024
#define FIXTURES	CP_SOURCE_DIR "/tests/log"

/* ---- running things -------------------------------------------------- */

/* What a finished command left behind. */
struct run {
	int		 status;	/* exit code, or 128 + signal */
	const char	*out;		/* standard output (harness-owned) */
	const char	*err;		/* standard error */
	size_t		 outlen;
};

/* A whole file as a NUL-terminated string (harness-owned), or NULL. */
static const char *
slurp(const char *path, size_t *lenp)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = hkeep(malloc((size_t)n + 1));
	cr_assert_not_null(buf);
	if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)
		n = 0;
	buf[n] = '\0';
	fclose(f);
	if (lenp != NULL)
		*lenp = (size_t)n;
	return buf;
}

/* Runs argv[0] (a path) with stdin from in_path (NULL: /dev/null), env
 * ("NAME=value", or "-NAME" to unset; may be NULL) and waits for it. */
static struct run
run_env(const char *in_path, const char *const env[],
    const char *const argv[])
{
	static int	 seq;
	struct run	 r;
	const char	*out = htmp_path(hstrf("run%d.out", seq));
	const char	*err = htmp_path(hstrf("run%d.err", seq));
	pid_t		 pid;
	int		 st, fd, i;

	seq++;
	fflush(NULL);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		fd = open(in_path ? in_path : "/dev/null", O_RDONLY);
		dup2(fd, 0);
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		unsetenv("NO_COLOR");
		for (i = 0; env != NULL && env[i] != NULL; i++) {
			if (env[i][0] == '-')
				unsetenv(env[i] + 1);
			else
				putenv((char *)env[i]);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r.out = slurp(out, &r.outlen);
	r.err = slurp(err, NULL);
	cr_assert_not_null(r.out);
	cr_assert_not_null(r.err);
	return r;
}

/* Runs cancelproxy-log with args (NULL-terminated). */
static struct run
tool_in(const char *in_path, const char *const args[])
{
	const char	*argv[64];
	int		 i;

	argv[0] = hbin_path(TOOL);
	for (i = 0; args[i] != NULL && i < 62; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	return run_env(in_path, NULL, argv);
}

#define TOOL_RUN(...)	tool_in(NULL, (const char *const[]){ __VA_ARGS__, NULL })

/* A shell command (for gzip, head, tail). */
static void
sh(const char *cmd)
{
	struct run r = run_env(NULL, NULL,
	    (const char *const[]){ "/bin/sh", "-c", cmd, NULL });

	cr_assert_eq(r.status, 0, "%s: %s", cmd, r.err);
}

/* The lines of a text as parsed JSON objects (harness-owned); asserts
 * every line is one. */
static int
json_lines(const char *text, cJSON **v, int max)
{
	const char	*p = text, *nl;
	int		 n = 0;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		cr_assert_not_null(nl, "an output line without a newline");
		cr_assert_lt(n, max);
		v[n] = hjson_parse(hstrf("%.*s", (int)(nl - p), p));
		cr_assert_not_null(v[n], "not JSON: %.*s", (int)(nl - p), p);
		n++;
		p = nl + 1;
	}
	return n;
}

/* How many times c occurs in text. */
static int
count_char(const char *text, char c)
{
	int	 n = 0;

	for (; *text != '\0'; text++)
		n += *text == c;
	return n;
}

/* How many lines of text contain needle. */
static int
count_lines(const char *text, const char *needle)
{
	const char	*p = text, *nl;
	int		 n = 0;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (memmem(p, (size_t)(nl - p), needle, strlen(needle)) != NULL)
			n++;
		p = *nl ? nl + 1 : nl;
	}
	return n;
}

static int
line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines of a text, sorted (harness-owned), to compare as sets. */
static const char *
sorted_lines(const char *text)
{
	char		*copy = hkeep(strdup(text)), *lines[MAXLINES], *p, *nl;
	const char	*out = "";
	int		 n = 0, i;

	for (p = copy; *p != '\0' && n < MAXLINES; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			break;
		*nl = '\0';
		lines[n++] = p;
	}
	qsort(lines, (size_t)n, sizeof(lines[0]), line_cmp);
	for (i = 0; i < n; i++)
		out = hstrf("%s%s\n", out, lines[i]);
	return out;
}

/* Copies a log with every "ts" moved by delta_us (a clock set wrong). */
static void
shift_ts(const char *in, const char *out, int64_t delta_us)
{
	const char	*text = slurp(in, NULL), *p, *q;
	FILE		*f = fopen(out, "w");
	struct tm	 tm;
	time_t		 t;
	long		 us;
	char		 buf[64];

	cr_assert_not_null(text);
	cr_assert_not_null(f);
	for (p = text; (q = strstr(p, "\"ts\":\"")) != NULL; p = q + 34) {
		fwrite(p, 1, (size_t)(q - p), f);
		memset(&tm, 0, sizeof(tm));
		cr_assert_eq(sscanf(q + 6, "%4d-%2d-%2dT%2d:%2d:%2d.%6ldZ",
		    &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		    &tm.tm_min, &tm.tm_sec, &us), 7);
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		t = timegm(&tm);
		us += delta_us % 1000000;
		t += delta_us / 1000000;
		if (us < 0) {
			us += 1000000;
			t--;
		} else if (us >= 1000000) {
			us -= 1000000;
			t++;
		}
		gmtime_r(&t, &tm);
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(f, "\"ts\":\"%s.%06ldZ\"", buf, us);
	}
	fputs(p, f);
	fclose(f);
}

/* ---- the logs, read independently ------------------------------------ */

#define MAXREC	512

/* Every JSON record of a log file whose event is event (NULL: all). */
static int
log_records(const char *path, const char *event, cJSON **v, int max)
{
	const char	*text = slurp(path, NULL), *p, *nl;
	cJSON		*j;
	int		 n = 0;

	cr_assert_not_null(text, "cannot read %s", path);
	for (p = text; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			break;
		j = hjson_parse(hstrf("%.*s", (int)(nl - p), p));
		if (j == NULL || (event != NULL &&
		    (hjson_str(j, "event") == NULL ||
		    strcmp(hjson_str(j, "event"), event) != 0)))
			continue;
		if (n < max)
			v[n++] = j;
	}
	return n;
}

/* How many cancel records of a file have key == value (NULL: all). */
static int
count_cancels(const char *path, const char *key, const char *value)
{
	cJSON	*v[MAXREC];
	int	 n = log_records(path, "cancel", v, MAXREC), i, k = 0;

	for (i = 0; i < n; i++)
		if (key == NULL || (hjson_text(v[i], key) != NULL &&
		    strcmp(hjson_text(v[i], key), value) == 0))
			k++;
	return k;
}

/* The cancel record of a request id in a file. */
static cJSON *
cancel_of(const char *path, const char *rid)
{
	cJSON	*v[MAXREC];
	int	 n = log_records(path, "cancel", v, MAXREC), i;

	for (i = 0; i < n; i++)
		if (strcmp(hjson_str(v[i], "request_id"), rid) == 0)
			return v[i];
	cr_assert_fail("no cancel record for %s in %s", rid, path);
	return NULL;
}

/* ---- hops that log to files ------------------------------------------ */

struct lhop {
	struct hproc	*p;
	const char	*log;
	int		 port;
};

/* Waits until a file has n lines containing needle. */
static int
wait_file(const char *path, const char *needle, int n, int timeout_ms)
{
	int64_t		 end = hnow_ms() + hscaled(timeout_ms);
	const char	*text;

	do {
		if ((text = slurp(path, NULL)) != NULL &&
		    count_lines(text, needle) >= n)
			return 0;
		hsleep_ms(20);
	} while (hnow_ms() < end);
	return -1;
}

/* Starts a hop logging to <hop>.log, in front of 127.0.0.1:up_port. */
static void
lhop_start(struct lhop *h, const char *hop, int up_port, int peer,
    const char *up_name, const char *timeouts, const char *secret)
{
	struct hproxy_opts	 o;
	cJSON			*v[8];
	const char		*addr, *colon;

	static int	 seq;

	memset(&o, 0, sizeof(o));
	o.no_wait = 1;
	o.name = hop;
	h->log = htmp_path(hstrf("%s-%d.log", hop, seq++));
	unlink(h->log);
	h->p = hproxy_start_opts(hstrf("{\"hop\":\"%s\",\"workers\":2,"
	    "\"listen\":[{\"address\":\"127.0.0.1:0\"}],"
	    "\"upstreams\":{\"%s\":{\"url\":\"http://127.0.0.1:%d\","
	    "\"peer\":%s,\"timeouts_ms\":%s}},"
	    "\"routes\":[{\"path_prefix\":\"/v1/\",\"models\":[\"mock-*\"],"
	    "\"upstream\":\"%s\"}],"
	    "\"peers\":{%s%s%s\"note_wait_ms\":300},"
	    "\"log\":{\"path\":\"%s\"}}", hop, up_name, up_port,
	    peer ? "true" : "false", timeouts, up_name,
	    secret ? "\"secret\":\"" : "", secret ? secret : "",
	    secret ? "\"," : "", h->log), &o);
	cr_assert_not_null(h->p);
	hassert(wait_file(h->log, "\"listening\"", 1, 0) == 0,
	    "no listening record in the log file");
	cr_assert_eq(log_records(h->log, "listening", v, 8), 1);
	addr = hjson_str(v[0], "address");
	cr_assert_not_null(addr);
	colon = strrchr(addr, ':');
	h->port = atoi(colon + 1);
	cr_assert_gt(h->port, 0);
}

/* Headers of a request with our own request id. */
#define RID(id, ...)	((const char *const[]){ "X-Request-Id: " id, \
			    ##__VA_ARGS__, NULL })

/* A stream the client reads n events of, then leaves with a FIN. */
static void
client_fin_after(int port, const char *const hdrs[], int n)
{
	struct hconn	*c = hconn_connect("127.0.0.1", port);
	struct hresp	*resp;
	int		 i;

	cr_assert_not_null(c);
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, hdrs)), 0);
	resp = hconn_read_head(c, 0);
	hassert(resp != NULL, "no response head");
	for (i = 0; i < n; i++)
		hassert(hconn_read_event(c, resp, 0) != NULL, "no event %d", i);
	hconn_close_fin(c);
}

/* A stream read to its end (an error event or an error answer). */
static void
client_read_all(int port, const char *const hdrs[])
{
	struct hconn	*c = hconn_connect("127.0.0.1", port);

	cr_assert_not_null(c);
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, hdrs)), 0);
	hassert(hconn_read_response(c, 0) != NULL, "the answer did not end");
	hconn_free(c);
}

/* One hop in front of the mock, with one request of each kind. */
struct single {
	struct hproc	*mock;
	struct lhop	 edge;
};

#define SINGLE_CANCELS	5	/* fin, rst, fbt, upc, req */

static void
single_run(struct single *s)
{
	struct hconn	*c;
	struct hresp	*resp;
	int		 mport;

	s->mock = hmock_start(&mport, "--first-token-ms", "20",
	    "--interval-ms", "20", "--tokens", "500", NULL);
	cr_assert_not_null(s->mock);
	lhop_start(&s->edge, "edge", mport, 0, "openai",
	    "{\"first_byte\":400}", NULL);

	/* Completed, streaming and not. */
	resp = hhttp_exchange("127.0.0.1", s->edge.port, hreq_chat("mock-1",
	    1, RID("lt-done", "X-Mock-Tokens: 3")), 0);
	hassert(resp != NULL && resp->status == 200, "lt-done failed");
	resp = hhttp_exchange("127.0.0.1", s->edge.port, hreq_chat("mock-1",
	    0, RID("lt-plain", "X-Mock-Tokens: 3")), 0);
	hassert(resp != NULL && resp->status == 200, "lt-plain failed");
	/* The client leaves mid-stream (FIN). */
	client_fin_after(s->edge.port, RID("lt-fin"), 3);
	/* The client resets while the model thinks. */
	c = hconn_connect("127.0.0.1", s->edge.port);
	cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1, RID("lt-rst",
	    "X-Mock-First-Token-Ms: 5000"))), 0);
	hassert(hproc_wait_match(s->mock, 0, "event", "mock_request",
	    "request_id", "lt-rst", NULL) != NULL, "lt-rst never arrived");
	hconn_close_rst(c);
	/* The model is too slow: first_byte_timeout toward the client. */
	client_read_all(s->edge.port, RID("lt-fbt",
	    "X-Mock-First-Token-Ms: 3000"));
	/* The model hangs up mid-stream. */
	client_read_all(s->edge.port, RID("lt-upc",
	    "X-Mock-Fault: close_after:2"));
	/* The client leaves while its body is still arriving. */
	c = hconn_connect("127.0.0.1", s->edge.port);
	cr_assert_eq(hconn_send_str(c, "POST /v1/chat/completions HTTP/1.1\r\n"
	    "Host: x\r\nX-Request-Id: lt-req\r\nContent-Type: application/json"
	    "\r\nContent-Length: 400\r\n\r\n{\"model\":\"mo"), 0);
	hsleep_ms(50);
	hconn_close_fin(c);

	hassert(wait_file(s->edge.log, "\"event\":\"cancel\"", SINGLE_CANCELS,
	    0) == 0, "not every cancel was logged");
	hassert(wait_file(s->edge.log, "\"event\":\"request\"",
	    SINGLE_CANCELS + 2, 0) == 0, "not every request was logged");
	hassert(hproc_stop(s->edge.p, 0) == 0, "edge exited badly");
	hproc_stop(s->mock, 0);
}

/* Two hops: client -> edge -> core -> mock. */
struct chain {
	struct hproc	*mock;
	struct lhop	 edge, core;
};

/* How the hops of a chain are set up. */
enum chain_mode {
	CHAIN_PEER,		/* as they should be */
	CHAIN_NO_PEER,		/* edge does not know core is a proxy */
	CHAIN_BAD_SECRET,	/* core refuses edge's notes */
};

/* As it should be: a client leaving mid-stream, core timing out and a
 * completed request; otherwise only the client leaving. */
static void
chain_run(struct chain *k, enum chain_mode mode)
{
	int	 mport, peer = mode == CHAIN_PEER;

	k->mock = hmock_start(&mport, "--first-token-ms", "20",
	    "--interval-ms", "20", "--tokens", "500", NULL);
	cr_assert_not_null(k->mock);
	lhop_start(&k->core, "core", mport, 0, "openai",
	    "{\"first_byte\":400}", mode == CHAIN_BAD_SECRET ? "core-secret" :
	    NULL);
	lhop_start(&k->edge, "edge", k->core.port, mode != CHAIN_NO_PEER,
	    "core", "{}", mode == CHAIN_BAD_SECRET ? "edge-secret" : NULL);

	client_fin_after(k->edge.port, RID("lt-chain-fin"), 3);
	if (peer) {
		client_read_all(k->edge.port, RID("lt-chain-fbt",
		    "X-Mock-First-Token-Ms: 3000"));
		hassert(hhttp_exchange("127.0.0.1", k->edge.port,
		    hreq_chat("mock-1", 1, RID("lt-chain-done",
		    "X-Mock-Tokens: 2")), 0) != NULL, "lt-chain-done failed");
	}
	hassert(wait_file(k->edge.log, "\"event\":\"cancel\"", peer ? 2 : 1,
	    0) == 0, "edge did not log its cancels");
	hassert(wait_file(k->core.log, "\"event\":\"cancel\"", peer ? 2 : 1,
	    0) == 0, "core did not log its cancels");
	hassert(wait_file(k->core.log, "\"event\":\"request\"", peer ? 3 : 1,
	    0) == 0, "core did not log its requests");
	hassert(hproc_stop(k->edge.p, 0) == 0, "edge exited badly");
	hassert(hproc_stop(k->core.p, 0) == 0, "core exited badly");
	hproc_stop(k->mock, 0);
}

/* ---- cancels ----------------------------------------------------------- */

/* cancels --json with filters: the number of lines, checked against the
 * log read here, and every line is the record plus the joined model. */
static int
cancels_json(const char *log, const char *const filters[])
{
	const char	*args[32];
	cJSON		*v[MAXREC];
	struct run	 r;
	int		 i, n = 0, m;

	args[n++] = "cancels";
	args[n++] = "--json";
	for (i = 0; filters != NULL && filters[i] != NULL; i++)
		args[n++] = filters[i];
	args[n++] = log;
	args[n] = NULL;
	r = tool_in(NULL, args);
	m = json_lines(r.out, v, MAXREC);
	cr_assert_eq(r.status, m > 0 ? 0 : 1, "exit %d with %d lines: %s",
	    r.status, m, r.err);
	for (i = 0; i < m; i++)
		cr_assert_str_eq(hjson_str(v[i], "event"), "cancel");
	return m;
}

#define FILTER(...)	((const char *const[]){ __VA_ARGS__, NULL })

Test(log_tool, cancels_table_and_every_filter, .timeout = 120)
{
	struct single	 s;
	struct run	 r;
	cJSON		*v[MAXREC], *rec;
	const char	*log, *ts;
	char		 since[64];
	int		 n, i;

	single_run(&s);
	log = s.edge.log;
	cr_assert_eq(count_cancels(log, NULL, NULL), SINGLE_CANCELS);

	/* The table: a header and one row per cancel, in time order. */
	r = TOOL_RUN("cancels", log);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(count_lines(r.out, "TIME (UTC)"), 1);
	cr_assert_eq(count_char(r.out, '\n'), SINGLE_CANCELS + 1, "%s", r.out);
	cr_assert_eq(count_lines(r.out, "lt-fin"), 1);
	cr_assert_eq(count_lines(r.out, "client_disconnect"), 3, "%s", r.out);
	cr_assert_lt(strstr(r.out, "lt-fin") - r.out,
	    strstr(r.out, "lt-upc") - r.out, "not in time order");
	cr_assert_str_eq(r.err, "");

	/* --json: the proxy's record, plus the model of its request. */
	n = json_lines(TOOL_RUN("cancels", "--json", log).out, v, MAXREC);
	cr_assert_eq(n, SINGLE_CANCELS);
	for (i = 0; i < n; i++) {
		rec = cancel_of(log, hjson_str(v[i], "request_id"));
		cr_assert_str_eq(hjson_text(v[i], "origin.kind"),
		    hjson_text(rec, "origin.kind"));
		cr_assert_str_eq(hjson_text(v[i], "detect_to_close_us"),
		    hjson_text(rec, "detect_to_close_us"));
		cr_assert_str_eq(hjson_text(v[i], "ts"), hjson_text(rec, "ts"));
		if (strcmp(hjson_str(v[i], "request_id"), "lt-req") == 0)
			cr_assert_str_eq(hjson_text(v[i], "model"), "null");
		else
			cr_assert_str_eq(hjson_str(v[i], "model"), "mock-1",
			    "%s", hjson_print(v[i]));
	}

	/* Each filter, against the log read here. */
	cr_assert_eq(cancels_json(log, FILTER("--kind", "client_disconnect")),
	    count_cancels(log, "origin.kind", "client_disconnect"));
	cr_assert_eq(cancels_json(log, FILTER("--kind", "client_disconnect",
	    "--phase", "streaming")), 1);
	cr_assert_eq(cancels_json(log, FILTER("--kind",
	    "first_byte_timeout,upstream_closed")), 2);
	cr_assert_eq(cancels_json(log, FILTER("--kind", "first_byte_timeout",
	    "--kind", "upstream_closed")), 2);
	cr_assert_eq(cancels_json(log, FILTER("--phase", "request")), 1);
	cr_assert_eq(cancels_json(log, FILTER("--phase",
	    "waiting_first_byte")),
	    count_cancels(log, "phase", "waiting_first_byte"));
	cr_assert_eq(cancels_json(log, FILTER("--direction", "downstream")),
	    count_cancels(log, "direction", "downstream"));
	cr_assert_eq(cancels_json(log, FILTER("--direction", "upstream")),
	    count_cancels(log, "direction", "upstream"));
	cr_assert_eq(count_cancels(log, "direction", "downstream"), 2);
	cr_assert_eq(cancels_json(log, FILTER("--via", "rst")),
	    count_cancels(log, "detected_via", "rst"));
	cr_assert_eq(cancels_json(log, FILTER("--hop", "edge")),
	    SINGLE_CANCELS);
	cr_assert_eq(cancels_json(log, FILTER("--hop", "core")), 0);
	cr_assert_eq(cancels_json(log, FILTER("--hop", "ed*")), SINGLE_CANCELS);
	cr_assert_eq(cancels_json(log, FILTER("--upstream", "openai")),
	    count_cancels(log, "upstream", "openai"));
	cr_assert_eq(cancels_json(log, FILTER("--model", "mock-1")),
	    SINGLE_CANCELS - 1);
	cr_assert_eq(cancels_json(log, FILTER("--model", "mock-*")),
	    SINGLE_CANCELS - 1);
	cr_assert_eq(cancels_json(log, FILTER("--model", "-")), 1);
	cr_assert_eq(cancels_json(log, FILTER("--model", "gpt-*")), 0);

	/* --since and --until split the log at the third cancel. */
	rec = cancel_of(log, "lt-fbt");
	ts = hjson_str(rec, "ts");
	snprintf(since, sizeof(since), "%s", ts);
	n = cancels_json(log, FILTER("--since", since));
	cr_assert_eq(n + cancels_json(log, FILTER("--until", since)),
	    SINGLE_CANCELS);
	cr_assert_eq(n, 3, "lt-fbt, lt-upc and lt-req are at or after %s",
	    since);
	cr_assert_eq(cancels_json(log, FILTER("--since", since, "--until",
	    since)), 0);
	cr_assert_eq(cancels_json(log, FILTER("--since", "1d")),
	    SINGLE_CANCELS);
	cr_assert_eq(cancels_json(log, FILTER("--until", "2000-01-01")), 0);
	cr_assert_eq(cancels_json(log, FILTER("--since", "now")), 0);

	/* Nothing matched: exit 1, and the table says so on stderr. */
	r = TOOL_RUN("cancels", "--kind", "admin", log);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.out, "");
	cr_assert_not_null(strstr(r.err, "no cancel records matched"));
}

/* ---- stats ------------------------------------------------------------- */

/* The nearest-rank percentile of the detect_to_close_us values of a log. */
static double
exact_pct(cJSON **v, int n, double p)
{
	double	 d[MAXREC], t;
	int	 m = 0, i, j, rank;

	for (i = 0; i < n; i++)
		if (cJSON_IsNumber(hjson_get(v[i], "detect_to_close_us")))
			d[m++] = hjson_num(v[i], "detect_to_close_us", 0);
	for (i = 1; i < m; i++)
		for (j = i; j > 0 && d[j] < d[j - 1]; j--) {
			t = d[j];
			d[j] = d[j - 1];
			d[j - 1] = t;
		}
	rank = (int)(p / 100.0 * m + 0.9999999);
	if (rank < 1)
		rank = 1;
	return m ? d[rank - 1] : 0;
}

/* The group named name in stats --json's by.<dim>. */
static cJSON *
stats_group(cJSON *st, const char *dim, const char *name)
{
	cJSON	*arr = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "by"), dim);
	cJSON	*g;

	cJSON_ArrayForEach(g, arr)
		if (strcmp(hjson_str(g, "name"), name) == 0)
			return g;
	return NULL;
}

Test(log_tool, stats_text_json_and_filters, .timeout = 120)
{
	struct single	 s;
	struct run	 r;
	cJSON		*st, *v[MAXREC], *g, *req[MAXREC];
	const char	*log;
	int		 n, nreq, i;
	double		 events = 0;

	single_run(&s);
	log = s.edge.log;
	n = log_records(log, "cancel", v, MAXREC);
	nreq = log_records(log, "request", req, MAXREC);
	for (i = 0; i < n; i++)
		events += hjson_num(v[i], "sse_events", 0);

	r = TOOL_RUN("stats", "--json", log);
	cr_assert_eq(r.status, 0, "%s", r.err);
	st = hjson_parse(r.out);
	cr_assert_not_null(st, "%s", r.out);
	cr_assert_eq(hjson_num(st, "cancels", -1), n);
	cr_assert_eq(hjson_num(st, "requests.total", -1), nreq);
	cr_assert_eq(hjson_num(st, "requests.canceled", -1), n);
	cr_assert_eq(hjson_num(st, "requests.completed", -1), 2);
	cr_assert_eq(hjson_num(st, "not_records", -1), 0);
	cr_assert_eq(hjson_num(st, "all.sse_events", -1), events);
	/* Exact below 256 µs, within 1% above. */
	for (i = 50; i <= 99; i += 49) {
		double want = exact_pct(v, n, i);
		double got = hjson_num(st, hstrf("all.detect_to_close_us.p%d",
		    i), -1);

		cr_assert(got >= want * 0.99 - 0.5 && got <= want * 1.01 + 0.5,
		    "p%d: %g, want %g", i, got, want);
	}
	cr_assert_eq(hjson_num(st, "all.detect_to_close_null", -1),
	    n - (int)hjson_num(st, "all.detect_to_close_us.n", 0));
	cr_assert_eq(hjson_num(st, "all.detect_to_close_null", -1), 1,
	    "the client that left mid-request had nothing to close");
	/* By kind, hop, phase, upstream and model. */
	g = stats_group(st, "kind", "client_disconnect");
	cr_assert_not_null(g);
	cr_assert_eq(hjson_num(g, "cancels", -1),
	    count_cancels(log, "origin.kind", "client_disconnect"));
	cr_assert_eq(hjson_num(stats_group(st, "kind", "first_byte_timeout"),
	    "cancels", -1), 1);
	cr_assert_eq(hjson_num(stats_group(st, "kind", "upstream_closed"),
	    "cancels", -1), 1);
	g = stats_group(st, "hop", "edge");
	cr_assert_eq(hjson_num(g, "cancels", -1), n);
	cr_assert_eq(hjson_num(g, "requests", -1), nreq);
	cr_assert_eq(hjson_num(stats_group(st, "phase", "request"), "cancels",
	    -1), 1);
	cr_assert_eq(hjson_num(stats_group(st, "phase", "streaming"),
	    "cancels", -1), count_cancels(log, "phase", "streaming"));
	cr_assert_eq(hjson_num(stats_group(st, "upstream", "openai"),
	    "cancels", -1), count_cancels(log, "upstream", "openai"));
	g = stats_group(st, "model", "mock-1");
	cr_assert_not_null(g);
	cr_assert_eq(hjson_num(g, "cancels", -1), n - 1);
	cr_assert_eq(hjson_num(g, "requests", -1), nreq - 1);
	/* The histogram counts every cancel with something to close. */
	{
		cJSON	*b;
		double	 sum = 0;

		cJSON_ArrayForEach(b, hjson_get(st,
		    "histograms.detect_to_close_us"))
			sum += hjson_num(b, "count", 0);
		cr_assert_eq(sum, n - 1);
	}

	/* Filters apply to stats too; requests only by what they carry. */
	st = hjson_parse(TOOL_RUN("stats", "--json", "--kind",
	    "client_disconnect", log).out);
	cr_assert_eq(hjson_num(st, "cancels", -1),
	    count_cancels(log, "origin.kind", "client_disconnect"));
	cr_assert_eq(hjson_num(st, "requests.total", -1), nreq);
	st = hjson_parse(TOOL_RUN("stats", "--json", "--by", "via", log).out);
	cr_assert_not_null(stats_group(st, "via", "rst"));
	cr_assert_null(hjson_get(st, "by.kind"));

	/* Text: a table per dimension and the terminal histograms. */
	r = TOOL_RUN("stats", log);
	cr_assert_eq(r.status, 0);
	for (i = 0; i < 5; i++) {
		static const char *const titles[] = { "by origin kind",
		    "by hop", "by phase", "by upstream", "by model" };

		cr_assert_not_null(strstr(r.out, titles[i]), "%s", titles[i]);
	}
	cr_assert_not_null(strstr(r.out, "detect-to-close"));
	cr_assert_not_null(strstr(r.out, "time into the request"));
	cr_assert_not_null(strstr(r.out, "first_byte_timeout"));
	cr_assert_not_null(strstr(r.out, "nothing to close"));

	r = TOOL_RUN("stats", "--kind", "admin", log);
	cr_assert_eq(r.status, 1, "no cancels is exit 1");
	r = TOOL_RUN("stats", "--by", "colour", log);
	cr_assert_eq(r.status, 2);
}

/* ---- trace ------------------------------------------------------------- */

/* trace --json for id over files: one object per request. */
static cJSON *
trace_json(const char *id, const char *f1, const char *f2, int *n)
{
	static cJSON	*v[16];
	struct run	 r;

	r = f2 ? TOOL_RUN("trace", "--json", id, f1, f2) :
	    TOOL_RUN("trace", "--json", id, f1);
	cr_assert_eq(r.status, 0, "%s", r.err);
	*n = json_lines(r.out, v, 16);
	return v[0];
}

/* The contradictions of a trace as one string. */
static const char *
contradictions(cJSON *t)
{
	cJSON		*c;
	const char	*s = "";

	cJSON_ArrayForEach(c, cJSON_GetObjectItem(t, "contradictions"))
		s = hstrf("%s%s; ", s, c->valuestring);
	return s;
}

Test(log_tool, trace_across_two_hops, .timeout = 120)
{
	struct chain	 k;
	struct run	 r;
	cJSON		*t, *e, *c;
	const char	*trace_id;
	int		 n;

	chain_run(&k, CHAIN_PEER);
	e = cancel_of(k.edge.log, "lt-chain-fin");
	c = cancel_of(k.core.log, "lt-chain-fin");
	cr_assert_str_eq(hjson_text(c, "cancel_path.2"), "core");

	/* The text: the path on one line, every hop's cancel, no flags. */
	r = TOOL_RUN("trace", "lt-chain-fin", k.edge.log, k.core.log);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out,
	    "path     client -> edge -> core -> upstream:openai"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "origin   client_disconnect at "
	    "client"), "%s", r.out);
	cr_assert_eq(count_lines(r.out, " cancel "), 2, "%s", r.out);
	cr_assert_eq(count_lines(r.out, "edge  arrived"), 1, "%s", r.out);
	cr_assert_eq(count_lines(r.out, "core  arrived"), 1, "%s", r.out);
	cr_assert_eq(count_lines(r.out, "core  note "), 1, "%s", r.out);
	cr_assert_not_null(strstr(r.out, "no contradictions"), "%s", r.out);
	/* Detect-to-close of each hop, as the records say. */
	cr_assert_not_null(strstr(r.out, hstrf("%sµs",
	    hjson_text(e, "detect_to_close_us"))) ?: strstr(r.out, hstrf(
	    "%sus", hjson_text(e, "detect_to_close_us"))), "%s", r.out);

	/* JSON: the same by request id, trace id, or a prefix. */
	t = trace_json("lt-chain-fin", k.edge.log, k.core.log, &n);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(hjson_str(t, "path"),
	    "client -> edge -> core -> upstream:openai");
	cr_assert_str_eq(hjson_str(t, "origin.kind"), "client_disconnect");
	cr_assert_str_eq(hjson_str(t, "origin.hop"), "client");
	cr_assert_eq(hjson_num(t, "cancels", -1), 2);
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t,
	    "contradictions")), 0, "%s", contradictions(t));
	cr_assert_geq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "records")), 5);
	trace_id = hjson_str(e, "trace_id");
	t = trace_json(trace_id, k.edge.log, k.core.log, &n);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(hjson_str(t, "request_id"), "lt-chain-fin");
	t = trace_json(hstrf("%.8s", trace_id), k.core.log, k.edge.log, &n);
	cr_assert_str_eq(hjson_str(t, "request_id"), "lt-chain-fin");
	/* A prefix that fits several requests shows each. */
	trace_json("lt-chain-", k.edge.log, k.core.log, &n);
	cr_assert_eq(n, 3);

	/* Core timed out: the error went toward the client, and core also
	 * closed toward the model. */
	t = trace_json("lt-chain-fbt", k.edge.log, k.core.log, &n);
	cr_assert_str_eq(hjson_str(t, "path"),
	    "client <- edge <- core -> upstream:openai");
	cr_assert_str_eq(hjson_str(t, "origin.kind"), "first_byte_timeout");
	cr_assert_str_eq(hjson_str(t, "origin.hop"), "core");
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t,
	    "contradictions")), 0, "%s", contradictions(t));

	/* A completed request: a path, no origin. */
	t = trace_json("lt-chain-done", k.edge.log, k.core.log, &n);
	cr_assert(cJSON_IsNull(hjson_get(t, "origin")));
	cr_assert_eq(hjson_num(t, "cancels", -1), 0);

	/* Without core's log, core is a missing hop. */
	t = trace_json("lt-chain-fin", k.edge.log, NULL, &n);
	cr_assert_str_eq(hjson_str(t, "path"),
	    "client -> edge -> upstream:core");
	t = trace_json("lt-chain-fin", k.core.log, NULL, &n);
	cr_assert_not_null(strstr(contradictions(t), "missing hop: edge"),
	    "%s", contradictions(t));

	/* Times out of order: core's clock 50 ms behind edge's. */
	{
		const char *skewed = htmp_path("core-skewed.log");

		shift_ts(k.core.log, skewed, -50000);
		t = trace_json("lt-chain-fin", k.edge.log, skewed, &n);
		cr_assert_not_null(strstr(contradictions(t),
		    "times out of order: core recorded the cancel"), "%s",
		    contradictions(t));
		cr_assert_not_null(strstr(contradictions(t),
		    "times out of order: the request reached core"), "%s",
		    contradictions(t));
		r = TOOL_RUN("trace", "--skew", "100", "lt-chain-fin",
		    k.edge.log, skewed);
		cr_assert_null(strstr(r.out, "out of order"),
		    "--skew did not allow it: %s", r.out);
	}

	r = TOOL_RUN("trace", "no-such-request", k.edge.log, k.core.log);
	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.err, "no record has the request"));
}

Test(log_tool, trace_flags_two_origins, .timeout = 120)
{
	struct chain	 k;
	struct run	 r;
	cJSON		*t;
	int		 n;

	/* The hops' secrets differ: core refuses edge's note, waits, and
	 * records an unknown origin at edge. */
	chain_run(&k, CHAIN_BAD_SECRET);
	cr_assert_str_eq(hjson_str(cancel_of(k.core.log, "lt-chain-fin"),
	    "origin.kind"), "unknown");
	t = trace_json("lt-chain-fin", k.edge.log, k.core.log, &n);
	cr_assert_str_eq(hjson_str(t, "origin.kind"), "client_disconnect");
	cr_assert_str_eq(hjson_str(t, "path"),
	    "client -> edge -> core -> upstream:openai");
	cr_assert_not_null(strstr(contradictions(t), "two origins"), "%s",
	    contradictions(t));
	r = TOOL_RUN("trace", "lt-chain-fin", k.edge.log, k.core.log);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "! two origins: edge says "
	    "client_disconnect at client, core says unknown at edge"), "%s",
	    r.out);
	cr_assert_not_null(strstr(r.out, "core  note "), "the refused note is "
	    "on the timeline: %s", r.out);
}

Test(log_tool, trace_flags_a_path_that_skips_a_hop, .timeout = 120)
{
	struct chain	 k;
	cJSON		*t;
	int		 n;

	/* edge does not know core is a proxy: core thinks its client
	 * started it, and its path leaves edge out. */
	chain_run(&k, CHAIN_NO_PEER);
	cr_assert_str_eq(hjson_text(cancel_of(k.core.log, "lt-chain-fin"),
	    "cancel_path.0"), "client");
	t = trace_json("lt-chain-fin", k.edge.log, k.core.log, &n);
	cr_assert_not_null(strstr(contradictions(t), "paths disagree: core's "
	    "cancel_path client -> core skips edge"), "%s", contradictions(t));
}

/* ---- input: gzip, junk, standard input, rotated files ----------------- */

Test(log_tool, gzip_junk_stdin_and_rotated_files, .timeout = 120)
{
	struct single	 s;
	struct run	 plain, r;
	cJSON		*a, *b;
	const char	*log, *gz, *multi, *junk, *cut, *tail, *head;
	int		 nlines, split, i;

	single_run(&s);
	log = s.edge.log;
	plain = TOOL_RUN("cancels", "--json", log);
	cr_assert_eq(plain.status, 0);

	/* gzip, and two gzip members one after the other (cat a.gz b.gz). */
	gz = htmp_path("edge.log.1.gz");
	multi = htmp_path("edge.log.2.gz");
	sh(hstrf("gzip -c %s > %s", log, gz));
	nlines = count_char(slurp(log, NULL), '\n');
	sh(hstrf("head -n %d %s | gzip -c > %s && tail -n +%d %s | gzip -c "
	    ">> %s", nlines / 2, log, multi, nlines / 2 + 1, log, multi));
	r = TOOL_RUN("cancels", "--json", gz);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, plain.out);
	r = TOOL_RUN("cancels", "--json", multi);
	cr_assert_str_eq(r.out, plain.out);

	/* A truncated gzip file: what could be read is used, exit 2. */
	cut = htmp_path("cut.gz");
	{
		size_t	 gzlen;

		cr_assert_not_null(slurp(gz, &gzlen));
		sh(hstrf("head -c %zu %s > %s", gzlen / 2, gz, cut));
	}
	r = TOOL_RUN("cancels", "--json", cut);
	cr_assert_eq(r.status, 2);
	cr_assert_not_null(strstr(r.err, "cut.gz"), "%s", r.err);

	/* Junk lines are counted, reported and skipped. */
	junk = htmp_path("junk.log");
	sh(hstrf("{ echo 'not json at all'; echo '[1,2,3]'; echo '{}';"
	    " echo '{\"ts\":\"yesterday\",\"hop\":\"x\",\"event\":\"cancel\"}';"
	    " head -n 3 %s; echo '{\"ts\":\"2026-11-22T01:00:00Z\",'; echo;"
	    " tail -n +4 %s; printf '{\"truncated'; } > %s", log, log, junk));
	r = TOOL_RUN("cancels", "--json", junk);
	cr_assert_eq(r.status, 0, "junk is never fatal: %s", r.err);
	cr_assert_str_eq(r.out, plain.out);
	cr_assert_not_null(strstr(r.err, "7 of "), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "not log records (the first at "),
	    "%s", r.err);
	cr_assert_not_null(strstr(r.err, "junk.log:1)"), "%s", r.err);
	a = hjson_parse(TOOL_RUN("stats", "--json", junk).out);
	b = hjson_parse(TOOL_RUN("stats", "--json", log).out);
	cr_assert_eq(hjson_num(a, "not_records", -1), 7);
	cr_assert(cJSON_Compare(cJSON_GetObjectItem(a, "by"),
	    cJSON_GetObjectItem(b, "by"), 1));

	/* Standard input, implicit and as "-". */
	r = tool_in(log, (const char *const[]){ "cancels", "--json", NULL });
	cr_assert_str_eq(r.out, plain.out);
	r = tool_in(gz, (const char *const[]){ "cancels", "--json", "-",
	    NULL });
	cr_assert_str_eq(r.out, plain.out);

	/* Rotated files of one hop, cut between a cancel record and its
	 * request record: the join spans the two files. */
	{
		const char	*text = slurp(log, NULL), *p;

		p = strstr(text, "\"event\":\"cancel\",\"request_id\":\"lt-fin\"");
		cr_assert_not_null(p);
		for (split = 0, i = 0; text + i < p; i++)
			if (text[i] == '\n')
				split++;
		split++;	/* the cancel line itself */
	}
	head = htmp_path("edge.log.1");
	tail = htmp_path("edge.log.now");
	sh(hstrf("head -n %d %s > %s && tail -n +%d %s > %s", split, log, head,
	    split + 1, log, tail));
	r = TOOL_RUN("cancels", "--json", "--model", "mock-1", tail, head);
	cr_assert_eq(count_lines(r.out, "\"request_id\":\"lt-fin\""), 1,
	    "the cancel lost its model across files: %s", r.out);
	r = TOOL_RUN("cancels", "--json", tail, head);
	cr_assert_str_eq(sorted_lines(r.out), sorted_lines(plain.out),
	    "the files together say what the whole log says");
	/* Concatenated the wrong way round on standard input: the request
	 * record comes long before its cancel record, yet they meet. */
	sh(hstrf("cat %s %s > %s", tail, head, htmp_path("catted.log")));
	r = tool_in(htmp_path("catted.log"), (const char *const[]){
	    "cancels", "--json", "--model", "mock-1", NULL });
	cr_assert_eq(count_lines(r.out, "\"request_id\":\"lt-fin\""), 1,
	    "%s", r.out);
	cr_assert_str_eq(sorted_lines(tool_in(htmp_path("catted.log"),
	    (const char *const[]){ "cancels", "--json", NULL }).out),
	    sorted_lines(plain.out));

	/* Bad input: a missing file, a directory. */
	r = TOOL_RUN("cancels", htmp_path("no-such.log"));
	cr_assert_eq(r.status, 2);
	cr_assert_not_null(strstr(r.err, "no-such.log"));
	r = TOOL_RUN("stats", htmp_dir());
	cr_assert_eq(r.status, 2);
}

/* ---- tail -f ------------------------------------------------------------ */

Test(log_tool, tail_follows_across_rotation, .timeout = 120)
{
	struct hproc	*mock, *tailp;
	struct lhop	 edge;
	const char	*line, *rotated;
	int		 mport, st;

	mock = hmock_start(&mport, "--first-token-ms", "20", "--interval-ms",
	    "20", "--tokens", "500", NULL);
	cr_assert_not_null(mock);
	lhop_start(&edge, "edge", mport, 0, "openai", "{}", NULL);
	client_fin_after(edge.port, RID("lt-tail-before"), 2);
	hassert(wait_file(edge.log, "lt-tail-before", 2, 0) == 0, "no record");

	tailp = hproc_start((const char *const[]){ hbin_path(TOOL), "tail",
	    "-f", "-n", "5", "--color", "never", edge.log, NULL }, NULL);
	cr_assert_not_null(tailp);
	/* What was there: one readable line, joined with its model. */
	line = hproc_wait_line(tailp, "lt-tail-before", 0);
	hassert(line != NULL, "tail did not print the earlier cancel");
	cr_assert_not_null(strstr(line, "client_disconnect streaming, toward "
	    "the model, noticed via eof, closed in "), "%s", line);
	cr_assert_not_null(strstr(line, "model mock-1"), "%s", line);
	cr_assert_not_null(strstr(line, "[client -> edge]"), "%s", line);

	/* Appended while following. */
	client_fin_after(edge.port, RID("lt-tail-live"), 2);
	line = hproc_wait_line(tailp, "lt-tail-live", 0);
	hassert(line != NULL, "tail did not follow the file");
	cr_assert_not_null(strstr(line, "model mock-1"), "%s", line);

	/* logrotate: the file is renamed; the proxy still writes to it
	 * until SIGUSR1 makes it reopen the path (a new file). */
	rotated = htmp_path("edge.log.1");
	cr_assert_eq(rename(edge.log, rotated), 0);
	client_fin_after(edge.port, RID("lt-tail-old-file"), 2);
	hassert(wait_file(rotated, "lt-tail-old-file", 2, 0) == 0,
	    "not written to the renamed file");
	cr_assert_eq(hproc_signal(edge.p, SIGUSR1), 0);
	hassert(wait_file(edge.log, "log_reopen", 1, 0) == 0,
	    "the proxy did not reopen its log");
	{
		struct hconn	*c = hconn_connect("127.0.0.1", edge.port);

		cr_assert_eq(hconn_send_str(c, hreq_chat("mock-1", 1,
		    RID("lt-tail-new-file", "X-Mock-First-Token-Ms: 5000"))),
		    0);
		hassert(hproc_wait_match(mock, 0, "event", "mock_request",
		    "request_id", "lt-tail-new-file", NULL) != NULL,
		    "never arrived");
		hconn_close_rst(c);
	}
	hassert(wait_file(edge.log, "lt-tail-new-file", 2, 0) == 0,
	    "not written to the new file");
	line = hproc_wait_line(tailp, "lt-tail-old-file", 0);
	hassert(line != NULL, "the end of the rotated file was lost");
	line = hproc_wait_line(tailp, "lt-tail-new-file", 0);
	hassert(line != NULL, "tail did not move to the new file");
	cr_assert_not_null(strstr(line, "waiting_first_byte"), "%s", line);
	cr_assert_not_null(strstr(line, "via rst"), "%s", line);

	/* Truncated in place (copytruncate): read again from the start.
	 * Like tail(1), it notices by the file being shorter than what was
	 * read, so the test lets it see the empty file before writing. */
	cr_assert_eq(truncate(edge.log, 0), 0);
	hsleep_ms(3 * 200);
	client_fin_after(edge.port, RID("lt-tail-truncated"), 2);
	hassert(hproc_wait_line(tailp, "lt-tail-truncated", 0) != NULL,
	    "tail did not notice the truncation");

	/* Each cancel exactly once. */
	cr_assert_eq(hproc_count(tailp, NULL), 0, "tail printed JSON");
	st = hproc_stop(tailp, 0);
	cr_assert_eq(st, 0, "tail -f ends with 0 on SIGTERM after finding "
	    "cancels, got %d", st);
	hassert(hproc_stop(edge.p, 0) == 0, "edge exited badly");
	hproc_stop(mock, 0);
}

Test(log_tool, tail_colour_and_no_color, .timeout = 120)
{
	struct single	 s;
	struct run	 r;
	const char	*cmd;

	single_run(&s);
	r = TOOL_RUN("tail", "-n", "2", s.edge.log);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(count_char(r.out, '\n'), 2, "%s", r.out);
	cr_assert_null(strchr(r.out, '\033'), "colour into a file");
	cr_assert_not_null(strstr(r.out, "lt-upc"));
	cr_assert_not_null(strstr(r.out, "lt-req"));
	cr_assert_not_null(strstr(r.out, "nothing to close"), "lt-req had no "
	    "other side: %s", r.out);
	r = TOOL_RUN("tail", "--color", "always", s.edge.log);
	cr_assert_not_null(strchr(r.out, '\033'));
	r = TOOL_RUN("tail", "--kind", "upstream_closed,first_byte_timeout",
	    "--direction", "downstream", s.edge.log);
	cr_assert_eq(count_char(r.out, '\n'), 2, "%s", r.out);
	cr_assert_not_null(strstr(r.out, "lt-fbt"));
	cr_assert_eq(TOOL_RUN("tail", "--kind", "admin", s.edge.log).status,
	    1);
	r = TOOL_RUN("tail", "-n", "3", "--json", s.edge.log);
	{
		cJSON *v[8];

		cr_assert_eq(json_lines(r.out, v, 8), 3);
	}

	/* On a terminal (script(1) gives it one): colour, unless NO_COLOR. */
	if (access("/usr/bin/script", X_OK) != 0)
		return;
	cmd = hstrf("%s tail -n 2 %s", hbin_path(TOOL), s.edge.log);
	r = run_env(NULL, (const char *const[]){ "TERM=xterm", NULL },
	    (const char *const[]){ "/usr/bin/script", "-qec", cmd, "/dev/null",
	    NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strchr(r.out, '\033'), "no colour on a terminal: "
	    "%s", r.out);
	r = run_env(NULL, (const char *const[]){ "TERM=xterm", "NO_COLOR=1",
	    NULL }, (const char *const[]){ "/usr/bin/script", "-qec", cmd,
	    "/dev/null", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert_null(strchr(r.out, '\033'), "NO_COLOR was ignored: %s",
	    r.out);
	cr_assert_not_null(strstr(r.out, "lt-req"));
}

/* ---- report --html in headless Chromium -------------------------------- */

/* The Debian chromium binary, or NULL. */
static const char *
chromium_path(void)
{
	static const char *const paths[] = { "/usr/bin/chromium",
	    "/usr/bin/chromium-browser", NULL };
	int	 i;

	for (i = 0; paths[i] != NULL; i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* Runs headless Chromium on a page with a fresh profile. */
static struct run
chromium_run(const char *chrome, const char *mode, const char *page)
{
	const char *profile = htmp_path(hstrf("chromium-%s", mode[2] == 's' ?
	    "shot" : "dom"));

	return run_env(NULL, NULL, (const char *const[]){ "/usr/bin/timeout",
	    "120", chrome, "--headless", "--no-sandbox", "--disable-gpu",
	    "--disable-quic", "--no-first-run", "--disable-background-networking",
	    "--disable-component-update", "--disable-sync",
	    "--disable-dev-shm-usage", hstrf("--user-data-dir=%s", profile),
	    "--window-size=1000,2400", "--enable-logging=stderr", "--v=0",
	    mode, hstrf("file://%s", page), NULL });
}

Test(log_tool, report_renders_in_headless_chromium, .timeout = 300)
{
	struct chain	 k;
	struct run	 r;
	const char	*chrome = chromium_path(), *page, *shot, *html, *p;
	const char	*line, *nl;
	size_t		 len;
	int		 ncharts, nconsole = 0, drawn = 0;

	struct single	 s;

	if (chrome == NULL)
		cr_skip_test("chromium is not installed (apt-get install "
		    "chromium)");
	chain_run(&k, CHAIN_PEER);
	single_run(&s);
	page = htmp_path("report.html");
	shot = htmp_path("report.png");
	r = TOOL_RUN("report", "--html", page, "--top", "3", k.edge.log,
	    k.core.log, s.edge.log);
	cr_assert_eq(r.status, 0, "%s", r.err);
	html = slurp(page, NULL);
	cr_assert_not_null(html);
	/* Self-contained: nothing fetched. */
	cr_assert_null(strstr(html, "http://"));
	cr_assert_null(strstr(html, "https://"));
	cr_assert_null(strstr(html, "<link"));
	cr_assert_null(strstr(html, " src="));
	ncharts = count_lines(html, "<svg class=\"chart");
	cr_assert_eq(ncharts, 2 + 3, "latency, over time, 3 cascades");
	cr_assert_not_null(strstr(html, "first_byte_timeout"));
	cr_assert_not_null(strstr(html, "client_disconnect"));
	cr_assert_not_null(strstr(html, "first_byte_timeout"));

	/* The screenshot: the page's own check ran and nothing else was
	 * said on the console (an error would be). */
	r = chromium_run(chrome, hstrf("--screenshot=%s", shot), page);
	cr_assert_eq(r.status, 0, "chromium failed: %s", r.err);
	for (p = r.err; (line = strstr(p, ":CONSOLE")) != NULL; p = nl) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			nl = line + strlen(line);
		nconsole++;
		if (memmem(line, (size_t)(nl - line), hstrf("drew %d of %d "
		    "charts", ncharts, ncharts), strlen(hstrf("drew %d of %d "
		    "charts", ncharts, ncharts))) != NULL)
			drawn = 1;
	}
	cr_assert_null(strstr(r.err, "Uncaught"), "%s", r.err);
	cr_assert(drawn, "the charts were not all drawn: %s", r.err);
	cr_assert_eq(nconsole, 1, "console messages besides ours: %s", r.err);
	p = slurp(shot, &len);
	cr_assert_not_null(p, "no screenshot");
	cr_assert_gt(len, 20000, "a screenshot of an empty page?");
	cr_assert_eq(memcmp(p, "\x89PNG", 4), 0);

	/* The DOM after scripts ran: every chart measured non-empty. */
	r = chromium_run(chrome, "--dump-dom", page);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, hstrf("data-charts-drawn=\"%d\"",
	    ncharts)), "%.400s", r.out);
	cr_assert_not_null(strstr(r.out, "<rect"));
	cr_assert_not_null(strstr(r.out, "<circle"));

	r = TOOL_RUN("report", "--html", page, "--kind", "admin", k.edge.log);
	cr_assert_eq(r.status, 1, "no cancels: exit 1 (the page is still "
	    "written)");
	r = TOOL_RUN("report", k.edge.log);
	cr_assert_eq(r.status, 2, "--html is required");
}

/* ---- fixtures: usage, escapes, junk; the command line ------------------ */

Test(log_tool, usage_and_escaped_strings_from_a_fixture, .timeout = 60)
{
	const char	*log = FIXTURES "/usage.jsonl";
	struct run	 r;
	cJSON		*v[16], *st;
	int		 n;

	r = TOOL_RUN("cancels", "--json", log);
	cr_assert_eq(r.status, 0, "%s", r.err);
	n = json_lines(r.out, v, 16);
	cr_assert_eq(n, 3);
	/* The same file in zlib framing (not gzip). */
	cr_assert_str_eq(TOOL_RUN("cancels", "--json",
	    hstrf("%s.zz", log)).out, r.out);
	cr_assert_str_eq(hjson_str(v[0], "model"), "gpt-4o");
	cr_assert_eq(hjson_num(v[0], "usage.completion_tokens", -1), 57);
	cr_assert_str_eq(hjson_str(v[1], "model"), "m\xc3\xa9tal \"x\"\\y");
	cr_assert_str_eq(hjson_str(v[1], "hop"), "edge \xe2\x86\x92 1");
	cr_assert_null(hjson_get(v[2], "usage"));
	cr_assert_not_null(strstr(r.err, "4 of 11 lines were not log "
	    "records"), "%s", r.err);

	st = hjson_parse(TOOL_RUN("stats", "--json", log).out);
	cr_assert_eq(hjson_num(st, "all.usage.cancels", -1), 2);
	cr_assert_eq(hjson_num(st, "all.usage.completion_tokens", -1), 57 + 9);
	cr_assert_eq(hjson_num(st, "all.usage.prompt_tokens", -1), 12 + 30);
	cr_assert_eq(hjson_num(stats_group(st, "model", "gpt-4o"),
	    "usage.completion_tokens", -1), 57);
	r = TOOL_RUN("cancels", "--json", "--model", "m\xc3\xa9tal*", log);
	cr_assert_eq(count_char(r.out, '\n'), 2, "%s", r.out);
	r = TOOL_RUN("stats", log);
	cr_assert_not_null(strstr(r.out, "TOKENS"));
	r = TOOL_RUN("trace", "req-escaped", log);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "9 completion tokens"), "%s", r.out);
}

/* --protocol and stats --by protocol: the client's protocol from both
 * records; --via knows rst_stream and goaway; an unknown protocol is a
 * usage error that lists the known ones. */
Test(log_tool, protocol_filter_and_stats, .timeout = 60)
{
	const char	*log;
	struct run	 r;
	cJSON		*v[4], *st;

	log = htmp_write("protocols.jsonl",
	    "{\"ts\":\"2026-12-07T01:54:25.000000Z\",\"level\":\"info\","
	    "\"hop\":\"edge\",\"event\":\"cancel\",\"request_id\":\"h2-a\","
	    "\"trace_id\":\"44c04c3aa68db5983e414e78260f31f7\",\"origin\":"
	    "{\"kind\":\"client_disconnect\",\"hop\":\"client\"},"
	    "\"cancel_path\":[\"client\",\"edge\"],\"direction\":\"upstream\","
	    "\"phase\":\"streaming\",\"detected_via\":\"rst_stream\","
	    "\"upstream\":\"mock\",\"elapsed_ms\":40,\"detect_to_close_us\":20,"
	    "\"sse_events\":3,\"bytes_out\":500,\"protocol\":\"h2\","
	    "\"stream_id\":3,\"connection\":1,\"message\":\"m\"}\n"
	    "{\"ts\":\"2026-12-07T01:54:25.000010Z\",\"level\":\"info\","
	    "\"hop\":\"edge\",\"event\":\"request\",\"request_id\":\"h2-a\","
	    "\"method\":\"POST\",\"path\":\"/v1/chat/completions\","
	    "\"model\":\"mock-1\",\"upstream\":\"mock\",\"status\":200,"
	    "\"outcome\":\"canceled\",\"protocol\":\"h2\",\"stream_id\":3}\n"
	    "{\"ts\":\"2026-12-07T01:54:26.000000Z\",\"level\":\"info\","
	    "\"hop\":\"edge\",\"event\":\"cancel\",\"request_id\":\"h1-b\","
	    "\"trace_id\":\"54c04c3aa68db5983e414e78260f31f7\",\"origin\":"
	    "{\"kind\":\"client_disconnect\",\"hop\":\"client\"},"
	    "\"cancel_path\":[\"client\",\"edge\"],\"direction\":\"upstream\","
	    "\"phase\":\"streaming\",\"detected_via\":\"eof\","
	    "\"upstream\":\"mock\",\"elapsed_ms\":40,\"detect_to_close_us\":20,"
	    "\"sse_events\":3,\"bytes_out\":500,\"protocol\":\"http/1.1\","
	    "\"message\":\"m\"}\n"
	    "{\"ts\":\"2026-12-07T01:54:26.000010Z\",\"level\":\"info\","
	    "\"hop\":\"edge\",\"event\":\"request\",\"request_id\":\"h1-b\","
	    "\"method\":\"POST\",\"path\":\"/v1/chat/completions\","
	    "\"model\":\"mock-1\",\"upstream\":\"mock\",\"status\":200,"
	    "\"outcome\":\"canceled\",\"protocol\":\"http/1.1\"}\n");
	r = TOOL_RUN("cancels", "--json", "--protocol", "h2", log);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(json_lines(r.out, v, 4), 1, "%s", r.out);
	cr_assert_str_eq(hjson_str(v[0], "request_id"), "h2-a");
	r = TOOL_RUN("cancels", "--json", "--via", "rst_stream", log);
	cr_assert_eq(json_lines(r.out, v, 4), 1, "%s", r.out);
	cr_assert_str_eq(hjson_str(v[0], "request_id"), "h2-a");
	r = TOOL_RUN("cancels", "--json", "--protocol", "http/1.1", log);
	cr_assert_eq(json_lines(r.out, v, 4), 1, "%s", r.out);
	cr_assert_str_eq(hjson_str(v[0], "request_id"), "h1-b");
	st = hjson_parse(TOOL_RUN("stats", "--json", "--by", "protocol",
	    log).out);
	cr_assert_not_null(st);
	cr_assert_eq(hjson_num(stats_group(st, "protocol", "h2"), "cancels",
	    -1), 1);
	cr_assert_eq(hjson_num(stats_group(st, "protocol", "h2"), "requests",
	    -1), 1);
	cr_assert_eq(hjson_num(stats_group(st, "protocol", "http/1.1"),
	    "cancels", -1), 1);
	r = TOOL_RUN("cancels", "--protocol", "h3", log);
	cr_assert_eq(r.status, 2, "%s", r.err);
	cr_assert_not_null(strstr(r.err, "--protocol h3: one of: h2 http/1.1"),
	    "%s", r.err);
	r = TOOL_RUN("cancels", "--via", "goaway", log);
	cr_assert_eq(r.status, 1, "%s", r.err);
}

Test(log_tool, no_control_character_reaches_the_terminal, .timeout = 60)
{
	const char	*log = htmp_write("esc.jsonl",
	    "{\"ts\":\"2026-11-22T03:00:00Z\",\"hop\":\"e\\u001b[2Jvil\","
	    "\"event\":\"cancel\",\"request_id\":\"r-\x1b]0;pwned\x07\","
	    "\"origin\":{\"kind\":\"admin\",\"hop\":\"e\\u001b[2Jvil\"},"
	    "\"cancel_path\":[\"e\\u001b[2Jvil\"],\"message\":\"\x1b[31m\"}\n"
	    "{\"ts\":\"2026-11-22T03:00:00.1Z\",\"hop\":\"e\\u001b[2Jvil\","
	    "\"event\":\"request\",\"request_id\":\"r-\x1b]0;pwned\x07\","
	    "\"model\":\"m\\u009b31m\",\"outcome\":\"canceled\"}\n");
	struct run	 r;
	int		 i;
	static const char *const cmds[][2] = { { "cancels", NULL },
	    { "tail", NULL }, { "stats", NULL }, { "trace", "r-" } };

	for (i = 0; i < 4; i++) {
		r = cmds[i][1] ? TOOL_RUN(cmds[i][0], cmds[i][1], log) :
		    TOOL_RUN(cmds[i][0], log);
		cr_assert_eq(r.status, 0, "%s: %s", cmds[i][0], r.err);
		cr_assert_null(strchr(r.out, '\033'), "%s printed ESC: %s",
		    cmds[i][0], r.out);
		cr_assert_null(strchr(r.out, '\007'), "%s printed BEL",
		    cmds[i][0]);
		cr_assert_null(strstr(r.out, "\xc2\x9b"), "%s printed CSI",
		    cmds[i][0]);
		cr_assert_not_null(strstr(r.out, "e?[2Jvil"), "%s: %s",
		    cmds[i][0], r.out);
	}
	r = TOOL_RUN("report", "--html", htmp_path("esc.html"), log);
	cr_assert_eq(r.status, 0);
	cr_assert_null(strchr(slurp(htmp_path("esc.html"), NULL), '\033'));
}

Test(log_tool, help_and_exit_codes, .timeout = 60)
{
	const char	*log = FIXTURES "/usage.jsonl";
	struct run	 r;
	static const char *const sections[] = { "NAME", "SYNOPSIS",
	    "DESCRIPTION", "COMMANDS", "FILTERS", "OPTIONS", "EXIT STATUS",
	    "ENVIRONMENT", "EXAMPLES", "--kind", "--hop", "--phase",
	    "--direction", "--upstream", "--model", "--since", "--until",
	    "NO_COLOR", "report --html", "tail -f", NULL };
	int		 i;

	r = TOOL_RUN("--help");
	cr_assert_eq(r.status, 0);
	for (i = 0; sections[i] != NULL; i++)
		cr_assert_not_null(strstr(r.out, sections[i]), "%s",
		    sections[i]);
	cr_assert_eq(TOOL_RUN("stats", "--help").status, 0);
	cr_assert_not_null(strstr(TOOL_RUN("--version").out,
	    "cancelproxy-log "));

	cr_assert_eq(TOOL_RUN("frobnicate").status, 2);
	r = TOOL_RUN("cancels", "--kind", "client_gone", log);
	cr_assert_eq(r.status, 2);
	cr_assert_not_null(strstr(r.err, "client_disconnect"), "lists the "
	    "kinds: %s", r.err);
	cr_assert_eq(TOOL_RUN("cancels", "--phase", "later", log).status, 2);
	cr_assert_eq(TOOL_RUN("cancels", "--direction", "sideways",
	    log).status, 2);
	cr_assert_eq(TOOL_RUN("cancels", "--via", "pigeon", log).status, 2);
	cr_assert_eq(TOOL_RUN("cancels", "--since", "last tuesday",
	    log).status, 2);
	cr_assert_eq(TOOL_RUN("cancels", "--html", "x.html", log).status, 2);
	cr_assert_eq(TOOL_RUN("trace").status, 2);
	cr_assert_eq(TOOL_RUN("tail", "-n", "lots", log).status, 2);
	cr_assert_eq(TOOL_RUN("cancels", "--kind", "admin", log).status, 1);
	cr_assert_eq(TOOL_RUN("trace", "nope", log).status, 1);
	cr_assert_eq(TOOL_RUN("cancels", log).status, 0);
}
