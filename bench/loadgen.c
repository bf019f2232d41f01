/*
 * loadgen: the cancel-latency load generator of bench/run.sh.
 *
 * It opens N concurrent streaming chat requests to a target (cancelproxy,
 * nginx, HAProxy, or cancelproxy-mock itself for the floor), waits until
 * every stream is where the scenario wants it (the mock holds the request
 * and no token has come yet, or K SSE events have arrived), then aborts
 * every client at once with a FIN or an RST and notes CLOCK_MONOTONIC of
 * each abort. The mock writes a "mock_stream" record with gone_mono_us,
 * the moment it saw its own client (the proxy) go; the request id we set
 * joins the two, and gone_mono_us - abort is the cancel latency through
 * the target. A stream whose record never comes was left open upstream.
 *
 * The rss mode parks N streams in the first-token wait and reads VmRSS of
 * the target's processes before and after.
 *
 * The stream mode reads N streams to their end and checks each body
 * against a reference body fetched straight from the mock (--ref), with the
 * per-response id and created time masked: same events, same bytes, same
 * checksum. It reports the CPU time the target's processes spent (utime +
 * stime from /proc/PID/stat, and schedstat) per SSE event relayed, the
 * mock's and its own, and the most streams that were open at once.
 *
 * Built by bench/run.sh with gcc directly; Linux only (epoll).
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LG_MAX_PIDS		16
#define LG_HEAD_MAX		4096	/* response head we keep */
#define LG_READ_BUF		65536
#define LG_POLL_MS		5

/* Where one client connection stands; each state says what moves it on. */
enum lg_state {
	LG_IDLE,	/* not opened yet */
	LG_CONNECTING,	/* nonblocking connect in flight: EPOLLOUT */
	LG_SENDING,	/* request partly written: EPOLLOUT */
	LG_HEAD,	/* waiting for the response head: EPOLLIN */
	LG_BODY,	/* reading the body, counting SSE events */
	LG_ABORTED,	/* we closed it; waiting for the mock's record */
	LG_DONE,	/* stream mode: read to its end, closed */
	LG_FAILED,	/* connect error, non-200, or the server closed first */
};

/* The body framing decoder. */
enum lg_chunk {
	LG_CH_SIZE,	/* hex digits of a chunk size */
	LG_CH_EXT,	/* chunk extension up to LF */
	LG_CH_DATA,	/* chunk payload */
	LG_CH_DATA_END,	/* CRLF after the payload */
	LG_CH_TRAILER,	/* after the last chunk: up to an empty line */
	LG_CH_DONE,	/* last chunk and its trailer seen */
};

/* What the mock said about a stream. */
enum lg_outcome {
	LG_OUT_NONE,
	LG_OUT_COMPLETED,
	LG_OUT_FIN,
	LG_OUT_RST,
	LG_OUT_RST_STREAM,	/* HTTP/2: the proxy reset the mock's stream */
	LG_OUT_OTHER,
};

struct lg_conn {
	int		 fd;
	enum lg_state	 state;
	size_t		 sent;
	char		*head;		/* allocated while reading the head */
	size_t		 head_len;
	int		 status;
	int		 chunked;
	enum lg_chunk	 ch;
	uint64_t	 ch_left;
	unsigned	 nl;		/* consecutive LFs, for SSE events */
	unsigned	 events;
	int		 head_done;
	int		 mock_seen;	/* the mock logged mock_request */
	int		 pending;	/* counted in the in-flight budget */
	int		 ready;
	int		 fin_race;	/* unread bytes at close: RST followed */
	uint64_t	 bytes_in;
	uint64_t	 t_open, t_ready, t_abort;
	enum lg_outcome	 outcome;
	uint64_t	 gone_us;
	int		 gone_null;
	int		 fail_reason;	/* 1 connect, 2 status, 3 closed, 4 io */
	int64_t		 clen;		/* Content-Length, -1 if none */
	uint64_t	 body_in;	/* decoded body bytes */
	unsigned	 tr_chars;	/* chars on the current trailer line */
	unsigned	 tokens_sent;	/* the mock's mock_stream record */
	/* stream mode: the event being read and the running checksum */
	char		*ev;
	size_t		 ev_len, ev_cap;
	uint64_t	 hash;		/* FNV-1a over the masked events */
	uint64_t	 norm_len;	/* masked body bytes */
};

struct lg_args {
	const char	*target;
	const char	*mode;		/* cancel | rss */
	const char	*abort_how;	/* fin | rst */
	const char	*mock_log;
	const char	*prefix;
	const char	*label;
	const char	*scenario;
	const char	*path;
	const char	*dump;
	int		 n;
	int		 events;	/* 0: first-byte phase */
	int		 first_token_ms;	/* -1: no header */
	int		 jitter_ms;	/* spread first tokens over this */
	int		 interval_ms;
	int		 tokens;
	int		 max_pending;
	int		 ready_timeout_ms;
	int		 settle_ms;
	int		 wait_ms;
	int		 timeout_ms;
	int		 abort_gap_us;
	const char	*ref;		/* stream mode: the mock, for the reference */
	pid_t		 mock_pid;	/* stream mode: the mock's CPU time */
	pid_t		 pids[LG_MAX_PIDS];
	int		 npids;
};

static struct lg_args	 args;
static struct lg_conn	*conns;
static int		 epfd = -1;
static struct sockaddr_in target_sa, ref_sa;	/* ref: index n */
static char		*req_tmpl_a, *req_tmpl_b;	/* before / after the id */
static size_t		 req_a_len, req_b_len;
static char		*req_ref_a;	/* the reference stream's A */
static size_t		 req_ref_len;
static uint64_t		 t_begin;
static char		 rbuf[LG_READ_BUF];

/* Mock log tail. */
static int		 mlog_fd = -1;
static char		*mlog_buf;
static size_t		 mlog_len, mlog_cap;
static int		 n_mock_requests, n_mock_streams;

/* Counters. */
static int		 n_opened, n_pending, n_ready, n_failed, n_head;
static int		 fail_connect, fail_status, fail_closed, fail_io;
static int		 last_status;
static int		 stream_mode;
static int		 n_done, n_open_now, n_open_peak, n_mismatch;
static int		 first_mismatch = -1;
static uint64_t		 ev_total, body_total;
static uint64_t		 n_reads;	/* stream mode: recv calls that got bytes */
static uint64_t		 ref_hash, ref_len;
static unsigned		 ref_events;
static int		 have_ref;

static uint64_t
now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
die(const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "loadgen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void
usage(void)
{
	fprintf(stderr,
"usage: loadgen --target HOST:PORT --mock-log FILE [options]\n"
"  --mode cancel|rss|stream cancel latency (default), memory per stream, or\n"
"                           streams read to the end (CPU per event, checked)\n"
"  --ref HOST:PORT          stream mode: fetch the reference body from the mock\n"
"  --mock-pid PID           stream mode: the mock's process, for its CPU time\n"
"  --n N                    concurrent streams (default 100)\n"
"  --events K               abort after K SSE events; 0 = first-byte phase\n"
"  --abort fin|rst          how the client leaves (default fin)\n"
"  --first-token-ms N       X-Mock-First-Token-Ms (default: not sent)\n"
"  --first-token-jitter-ms J  add 0..J ms per stream (shuffled), so that the\n"
"                           streams' token ticks do not line up\n"
"  --interval-ms N          X-Mock-Interval-Ms (default: not sent)\n"
"  --tokens N               X-Mock-Tokens (default: not sent)\n"
"  --max-pending N          streams being set up at once (default 64)\n"
"  --ready-timeout-ms N     give up waiting for readiness (default 30000)\n"
"  --settle-ms N            wait after all are ready (default 200)\n"
"  --wait-ms N              wait for mock records after the aborts (default 3000)\n"
"  --abort-gap-us N         pause between aborts (default 0: one burst)\n"
"  --timeout-ms N           hard limit for the whole run (default 120000)\n"
"  --pid PID                target process: RSS and CPU time (repeatable)\n"
"  --prefix ID              request id prefix (default lg<pid>)\n"
"  --label L --scenario S   names echoed in the RESULT line\n"
"  --path P                 request path (default /v1/chat/completions)\n"
"  --dump FILE              per-stream abort/gone times as TSV\n");
	exit(2);
}

static int
parse_int(const char *s, const char *what)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < -1 || v > 100000000)
		die("--%s %s: expected a number", what, s);
	return (int)v;
}

static void
parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "target", required_argument, NULL, 'T' },
		{ "mode", required_argument, NULL, 'M' },
		{ "abort", required_argument, NULL, 'A' },
		{ "mock-log", required_argument, NULL, 'L' },
		{ "prefix", required_argument, NULL, 'P' },
		{ "label", required_argument, NULL, 'l' },
		{ "scenario", required_argument, NULL, 's' },
		{ "path", required_argument, NULL, 'p' },
		{ "dump", required_argument, NULL, 'D' },
		{ "n", required_argument, NULL, 'n' },
		{ "events", required_argument, NULL, 'k' },
		{ "first-token-ms", required_argument, NULL, 'f' },
		{ "first-token-jitter-ms", required_argument, NULL, 'j' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "tokens", required_argument, NULL, 't' },
		{ "max-pending", required_argument, NULL, 'm' },
		{ "ready-timeout-ms", required_argument, NULL, 'r' },
		{ "settle-ms", required_argument, NULL, 'S' },
		{ "wait-ms", required_argument, NULL, 'w' },
		{ "abort-gap-us", required_argument, NULL, 'g' },
		{ "timeout-ms", required_argument, NULL, 'O' },
		{ "pid", required_argument, NULL, 'I' },
		{ "ref", required_argument, NULL, 'R' },
		{ "mock-pid", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char	 defprefix[32];
	int		 ch;

	args.mode = "cancel";
	args.abort_how = "fin";
	args.label = "target";
	args.scenario = "-";
	args.path = "/v1/chat/completions";
	args.n = 100;
	args.events = 0;
	args.first_token_ms = -1;
	args.interval_ms = -1;
	args.tokens = -1;
	args.max_pending = 64;
	args.ready_timeout_ms = 30000;
	args.settle_ms = 200;
	args.wait_ms = 3000;
	args.timeout_ms = 120000;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'T': args.target = optarg; break;
		case 'M': args.mode = optarg; break;
		case 'A': args.abort_how = optarg; break;
		case 'L': args.mock_log = optarg; break;
		case 'P': args.prefix = optarg; break;
		case 'l': args.label = optarg; break;
		case 's': args.scenario = optarg; break;
		case 'p': args.path = optarg; break;
		case 'D': args.dump = optarg; break;
		case 'n': args.n = parse_int(optarg, "n"); break;
		case 'k': args.events = parse_int(optarg, "events"); break;
		case 'f': args.first_token_ms = parse_int(optarg,
		    "first-token-ms"); break;
		case 'j': args.jitter_ms = parse_int(optarg,
		    "first-token-jitter-ms"); break;
		case 'i': args.interval_ms = parse_int(optarg, "interval-ms");
			break;
		case 't': args.tokens = parse_int(optarg, "tokens"); break;
		case 'm': args.max_pending = parse_int(optarg, "max-pending");
			break;
		case 'r': args.ready_timeout_ms = parse_int(optarg,
		    "ready-timeout-ms"); break;
		case 'S': args.settle_ms = parse_int(optarg, "settle-ms");
			break;
		case 'w': args.wait_ms = parse_int(optarg, "wait-ms"); break;
		case 'g': args.abort_gap_us = parse_int(optarg,
		    "abort-gap-us"); break;
		case 'O': args.timeout_ms = parse_int(optarg, "timeout-ms");
			break;
		case 'R': args.ref = optarg; break;
		case 'K': args.mock_pid = (pid_t)parse_int(optarg, "mock-pid");
			break;
		case 'I':
			if (args.npids == LG_MAX_PIDS)
				die("too many --pid");
			args.pids[args.npids++] = (pid_t)parse_int(optarg,
			    "pid");
			break;
		default:
			usage();
		}
	}
	if (optind != argc || args.target == NULL || args.mock_log == NULL)
		usage();
	if (strcmp(args.mode, "cancel") != 0 && strcmp(args.mode, "rss") != 0 &&
	    strcmp(args.mode, "stream") != 0)
		die("--mode: cancel, rss or stream");
	if (strcmp(args.abort_how, "fin") != 0 &&
	    strcmp(args.abort_how, "rst") != 0)
		die("--abort: fin or rst");
	if (args.n < 1 || args.max_pending < 1)
		die("--n and --max-pending must be >= 1");
	if (args.prefix == NULL) {
		snprintf(defprefix, sizeof(defprefix), "lg%d", (int)getpid());
		args.prefix = defprefix;
	}
}

/* Parses HOST:PORT (numeric IPv4 only: the bench is loopback-only). */
static void
parse_addr(const char *what, const char *s, struct sockaddr_in *sa)
{
	const char	*colon = strrchr(s, ':');
	char		 host[64];
	size_t		 hl;

	if (colon == NULL || (hl = (size_t)(colon - s)) == 0 ||
	    hl >= sizeof(host))
		die("--%s %s: expected IPV4:PORT", what, s);
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		die("--%s %s: expected IPV4:PORT", what, s);
}

static void
parse_target(void)
{
	parse_addr("target", args.target, &target_sa);
}

/* Builds one request template around the id: A + id + B; interval_ms < 0
 * sends no X-Mock-Interval-Ms. */
static void
build_template(int interval_ms, char **a, size_t *alen)
{
	static const char body[] = "{\"model\":\"m\",\"stream\":true,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"count to a "
	    "million\"}]}";
	char	 extra[256];
	int	 n = 0;

	extra[0] = '\0';
	if (interval_ms >= 0)
		n += snprintf(extra + n, sizeof(extra) - (size_t)n,
		    "X-Mock-Interval-Ms: %d\r\n", interval_ms);
	if (args.tokens >= 0)
		n += snprintf(extra + n, sizeof(extra) - (size_t)n,
		    "X-Mock-Tokens: %d\r\n", args.tokens);
	if (asprintf(a, "POST %s HTTP/1.1\r\n"
	    "Host: %s\r\n"
	    "User-Agent: cancelproxy-bench-loadgen\r\n"
	    "Accept: text/event-stream\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n"
	    "%s"
	    "X-Request-Id: %s-", args.path, args.target, sizeof(body) - 1,
	    extra, args.prefix) == -1 ||
	    (req_tmpl_b == NULL && asprintf(&req_tmpl_b, "\r\n\r\n%s",
	    body) == -1))
		die("out of memory");
	*alen = strlen(*a);
	req_b_len = strlen(req_tmpl_b);
}

/* The streams' request; the reference's is the same answer without the
 * waits (the body does not depend on them), so that it takes no time. */
static void
build_request(void)
{
	build_template(args.interval_ms, &req_tmpl_a, &req_a_len);
	build_template(0, &req_ref_a, &req_ref_len);
}

/* ---- the mock's log ---------------------------------------------------- */

/* Opens the mock log and skips what is already there. */
static void
mlog_open(void)
{
	if ((mlog_fd = open(args.mock_log, O_RDONLY | O_CLOEXEC)) == -1)
		die("%s: %s", args.mock_log, strerror(errno));
	if (lseek(mlog_fd, 0, SEEK_END) == -1)
		die("%s: lseek: %s", args.mock_log, strerror(errno));
	mlog_cap = 1 << 20;
	if ((mlog_buf = malloc(mlog_cap)) == NULL)
		die("out of memory");
}

/* The string value of "key":"..." in line, copied into out; -1 if absent. */
static int
json_str(const char *line, const char *key, char *out, size_t len)
{
	char		 pat[64];
	const char	*p, *e;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	if ((p = strstr(line, pat)) == NULL)
		return -1;
	p += strlen(pat);
	if ((e = strchr(p, '"')) == NULL || (size_t)(e - p) >= len)
		return -1;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return 0;
}

/* One mock record; only ours (our id prefix) count. */
static void
mlog_line(char *line)
{
	char		 id[128], ev[32], outc[32];
	size_t		 pl = strlen(args.prefix);
	const char	*p;
	char		*end;
	long		 idx;
	struct lg_conn	*c;

	if (json_str(line, "request_id", id, sizeof(id)) == -1 ||
	    strncmp(id, args.prefix, pl) != 0 || id[pl] != '-')
		return;
	idx = strtol(id + pl + 1, &end, 10);
	if (*end != '\0' || idx < 0 || idx >= args.n)
		return;
	c = &conns[idx];
	if (json_str(line, "event", ev, sizeof(ev)) == -1)
		return;
	if (strcmp(ev, "mock_request") == 0) {
		if (!c->mock_seen)
			n_mock_requests++;
		c->mock_seen = 1;
		return;
	}
	if (strcmp(ev, "mock_stream") != 0 || c->outcome != LG_OUT_NONE)
		return;
	n_mock_streams++;
	if (json_str(line, "outcome", outc, sizeof(outc)) == -1)
		c->outcome = LG_OUT_OTHER;
	else if (strcmp(outc, "client_fin") == 0)
		c->outcome = LG_OUT_FIN;
	else if (strcmp(outc, "client_rst") == 0)
		c->outcome = LG_OUT_RST;
	else if (strcmp(outc, "client_rst_stream") == 0)
		c->outcome = LG_OUT_RST_STREAM;
	else if (strcmp(outc, "completed") == 0)
		c->outcome = LG_OUT_COMPLETED;
	else
		c->outcome = LG_OUT_OTHER;
	if ((p = strstr(line, "\"tokens_sent\":")) != NULL)
		c->tokens_sent = (unsigned)strtoul(p + strlen("\"tokens_sent\":"),
		    NULL, 10);
	if ((p = strstr(line, "\"gone_mono_us\":")) != NULL) {
		p += strlen("\"gone_mono_us\":");
		if (isdigit((unsigned char)*p))
			c->gone_us = strtoull(p, NULL, 10);
		else
			c->gone_null = 1;
	}
}

/* Reads whatever the mock appended and handles the complete lines. */
static void
mlog_poll(void)
{
	ssize_t	 n;
	char	*s, *nl;
	size_t	 used;

	for (;;) {
		if (mlog_cap - mlog_len < 65536) {
			mlog_cap *= 2;
			if ((mlog_buf = realloc(mlog_buf, mlog_cap)) == NULL)
				die("out of memory");
		}
		n = read(mlog_fd, mlog_buf + mlog_len, mlog_cap - mlog_len - 1);
		if (n <= 0)
			break;
		mlog_len += (size_t)n;
	}
	mlog_buf[mlog_len] = '\0';
	s = mlog_buf;
	while ((nl = memchr(s, '\n', mlog_len - (size_t)(s - mlog_buf))) !=
	    NULL) {
		*nl = '\0';
		mlog_line(s);
		s = nl + 1;
	}
	used = (size_t)(s - mlog_buf);
	memmove(mlog_buf, s, mlog_len - used);
	mlog_len -= used;
}

/* ---- /proc ------------------------------------------------------------- */

/* VmRSS of the target processes, summed, in KiB. */
static long
rss_kib(void)
{
	char	 path[64], line[256];
	FILE	*f;
	long	 total = 0, v;
	int	 i;

	for (i = 0; i < args.npids; i++) {
		snprintf(path, sizeof(path), "/proc/%d/status",
		    (int)args.pids[i]);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
				total += v;
		fclose(f);
	}
	return total;
}

/* CPU time of the target processes, all their threads, in ms
 * (schedstat: nanoseconds on a CPU; falls back to stat ticks). */
static double	pids_runq_acc;	/* set by pids_cpu_ms(): run-queue wait, ms */

static double
pids_cpu_ms(void)
{
	char		 path[96], buf[2048], *p;
	FILE		*f;
	DIR		*d;
	struct dirent	*de;
	unsigned long long ns, wq;
	unsigned long	 ut, st;
	double		 total = 0, one;
	long		 hz = sysconf(_SC_CLK_TCK);
	int		 i, got;

	pids_runq_acc = 0;
	for (i = 0; i < args.npids; i++) {
		got = 0;
		one = 0;
		snprintf(path, sizeof(path), "/proc/%d/task", (int)args.pids[i]);
		if ((d = opendir(path)) != NULL) {
			while ((de = readdir(d)) != NULL) {
				if (de->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path),
				    "/proc/%d/task/%.20s/schedstat",
				    (int)args.pids[i], de->d_name);
				if ((f = fopen(path, "r")) == NULL)
					continue;
				if (fscanf(f, "%llu %llu", &ns, &wq) == 2) {
					one += (double)ns / 1e6;
					pids_runq_acc += (double)wq / 1e6;
					got = 1;
				}
				fclose(f);
			}
			closedir(d);
		}
		if (got) {
			total += one;
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/stat",
		    (int)args.pids[i]);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(buf, sizeof(buf), f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
		    "%*u %lu %lu", &ut, &st) == 2)
			total += (double)(ut + st) * 1000.0 / (double)hz;
		fclose(f);
	}
	return total;
}

/* utime + stime of one process (all its threads) from /proc/PID/stat, ms. */
static double
stat_cpu_ms(pid_t pid)
{
	char		 path[64], buf[2048], *p;
	FILE		*f;
	unsigned long	 ut, st;
	double		 ms = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
	    "%*u %lu %lu", &ut, &st) == 2)
		ms = (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
	fclose(f);
	return ms;
}

/* The target processes' utime + stime, summed, ms. */
static double
pids_stat_cpu_ms(void)
{
	double	 total = 0;
	int	 i;

	for (i = 0; i < args.npids; i++)
		total += stat_cpu_ms(args.pids[i]);
	return total;
}

static double
self_cpu_ms(void)
{
	struct rusage	 ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

/* ---- connections ------------------------------------------------------- */

static void
conn_unpend(struct lg_conn *c)
{
	if (c->pending) {
		c->pending = 0;
		n_pending--;
	}
}

static void
conn_fail(struct lg_conn *c, int reason)
{
	if (c->state == LG_FAILED || c->state == LG_ABORTED ||
	    c->state == LG_DONE)
		return;
	conn_unpend(c);
	if (c->ready) {
		c->ready = 0;
		n_ready--;
	}
	if (c->state != LG_IDLE)
		n_open_now--;
	c->state = LG_FAILED;
	c->fail_reason = reason;
	n_failed++;
	switch (reason) {
	case 1: fail_connect++; break;
	case 2: fail_status++; break;
	case 3: fail_closed++; break;
	default: fail_io++; break;
	}
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	free(c->head);
	c->head = NULL;
	free(c->ev);
	c->ev = NULL;
}

/* A stream is ready when it is where the scenario aborts it. */
static void
conn_check_ready(struct lg_conn *c)
{
	if (c->state == LG_FAILED || c->state == LG_ABORTED)
		return;
	if (c->head_done || c->mock_seen)
		conn_unpend(c);
	if (c->ready || stream_mode)
		return;
	if (args.events == 0 ? (c->head_done || c->mock_seen) :
	    c->events >= (unsigned)args.events) {
		c->ready = 1;
		c->t_ready = now_us();
		n_ready++;
	}
}

static void
conn_open(int idx)
{
	struct lg_conn	*c = &conns[idx];
	struct epoll_event ee;
	int		 one = 1;

	c->t_open = now_us();
	c->pending = 1;
	c->clen = -1;
	n_pending++;
	n_opened++;
	if (++n_open_now > n_open_peak)
		n_open_peak = n_open_now;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		fprintf(stderr, "loadgen: socket: %s\n", strerror(errno));
		conn_fail(c, 1);
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)(idx == args.n ? &ref_sa :
	    &target_sa), sizeof(target_sa)) == -1 && errno != EINPROGRESS) {
		conn_fail(c, 1);
		return;
	}
	c->state = LG_CONNECTING;
	ee.events = EPOLLOUT;
	ee.data.u32 = (uint32_t)idx;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ee) == -1)
		die("epoll_ctl: %s", strerror(errno));
}

/* The first-token delay of stream idx: the base plus its shuffled share
 * of the jitter (7919 is prime: idx -> idx*7919 mod n is a permutation). */
static int
first_token_of(int idx)
{
	long	 slot;

	if (args.jitter_ms <= 0)
		return args.first_token_ms;
	slot = (long)(((long long)idx * 7919) % args.n);
	return args.first_token_ms + (int)(slot * args.jitter_ms / args.n);
}

/* Writes the rest of the request; the id goes in the middle. */
static void
conn_send(int idx)
{
	struct lg_conn	*c = &conns[idx];
	char		 req[2048], id[80];
	size_t		 len, il;
	ssize_t		 w;
	struct epoll_event ee;

	const char	*a = req_tmpl_a;
	size_t		 al = req_a_len;

	if (idx == args.n) {		/* the reference: no waits */
		a = req_ref_a;
		al = req_ref_len;
		il = (size_t)snprintf(id, sizeof(id), "%d\r\n"
		    "X-Mock-First-Token-Ms: 0", idx);
	} else if (args.first_token_ms >= 0)
		il = (size_t)snprintf(id, sizeof(id), "%d\r\n"
		    "X-Mock-First-Token-Ms: %d", idx, first_token_of(idx));
	else
		il = (size_t)snprintf(id, sizeof(id), "%d", idx);
	len = al + il + req_b_len;
	if (len > sizeof(req))
		die("request too long");
	memcpy(req, a, al);
	memcpy(req + al, id, il);
	memcpy(req + al + il, req_tmpl_b, req_b_len);
	w = send(c->fd, req + c->sent, len - c->sent, MSG_NOSIGNAL);
	if (w == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_fail(c, c->state == LG_CONNECTING ? 1 : 4);
		return;
	}
	c->sent += (size_t)w;
	if (c->sent < len) {
		c->state = LG_SENDING;
		return;
	}
	c->state = LG_HEAD;
	if ((c->head = malloc(LG_HEAD_MAX)) == NULL)
		die("out of memory");
	ee.events = EPOLLIN | EPOLLRDHUP;
	ee.data.u32 = (uint32_t)idx;
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ee);
}

/* FNV-1a, 64 bits. */
static uint64_t
fnv1a(uint64_t h, const char *p, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/*
 * Masks what differs between two answers of the mock to the same request
 * (its response id and created time) in one event, in place:
 * "id":"..." -> "id":"", "created":123 -> "created":0. Returns the new length.
 */
static size_t
mask_event(char *e, size_t len)
{
	static const char	 kid[] = "\"id\":\"", kcr[] = "\"created\":";
	char			*p, *q, *end;

	if ((p = memmem(e, len, kid, sizeof(kid) - 1)) != NULL) {
		p += sizeof(kid) - 1;
		end = e + len;
		for (q = p; q < end && *q != '"'; q++)
			;
		memmove(p, q, (size_t)(end - q));
		len -= (size_t)(q - p);
	}
	if ((p = memmem(e, len, kcr, sizeof(kcr) - 1)) != NULL) {
		p += sizeof(kcr) - 1;
		end = e + len;
		for (q = p; q < end && *q >= '0' && *q <= '9'; q++)
			;
		if (q > p) {
			*p++ = '0';
			memmove(p, q, (size_t)(end - q));
			len -= (size_t)(q - p);
		}
	}
	return len;
}

/* Stream mode: one whole event into the stream's checksum. */
static void
conn_event_done(struct lg_conn *c)
{
	size_t	 len = mask_event(c->ev, c->ev_len);

	c->hash = fnv1a(c->hash, c->ev, len);
	c->norm_len += len;
	c->ev_len = 0;
}

/* Stream mode: keeps the bytes of the event being read. */
static void
conn_ev_add(struct lg_conn *c, const char *p, size_t n)
{
	if (c->ev_len + n > c->ev_cap) {
		size_t cap = c->ev_cap ? c->ev_cap : 512;

		while (cap < c->ev_len + n)
			cap *= 2;
		if ((c->ev = realloc(c->ev, cap)) == NULL)
			die("out of memory");
		c->ev_cap = cap;
	}
	memcpy(c->ev + c->ev_len, p, n);
	c->ev_len += n;
}

/* Counts SSE events (a blank line ends one) in decoded body bytes; in
 * stream mode also checksums them, event by event, masked. */
static void
conn_sse(struct lg_conn *c, const char *p, size_t n)
{
	size_t	 i, from = 0;

	c->body_in += n;
	for (i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (++c->nl == 2) {
				c->events++;
				if (stream_mode) {
					conn_ev_add(c, p + from, i + 1 - from);
					from = i + 1;
					conn_event_done(c);
				}
			}
		} else if (p[i] != '\r')
			c->nl = 0;
	}
	if (stream_mode && from < n)
		conn_ev_add(c, p + from, n - from);
}

/* Decodes chunked framing (or passes raw bytes) into the SSE counter. */
static void
conn_body(struct lg_conn *c, const char *p, size_t n)
{
	size_t	 i = 0, take;
	char	 ch;
	int	 v;

	if (!c->chunked) {
		conn_sse(c, p, n);
		return;
	}
	while (i < n) {
		switch (c->ch) {
		case LG_CH_SIZE:
			ch = p[i++];
			if (isxdigit((unsigned char)ch)) {
				v = isdigit((unsigned char)ch) ? ch - '0' :
				    (tolower((unsigned char)ch) - 'a' + 10);
				c->ch_left = c->ch_left * 16 + (uint64_t)v;
			} else if (ch == ';')
				c->ch = LG_CH_EXT;
			else if (ch == '\n')
				c->ch = c->ch_left == 0 ? LG_CH_TRAILER :
				    LG_CH_DATA;
			break;
		case LG_CH_EXT:
			if (p[i++] == '\n')
				c->ch = c->ch_left == 0 ? LG_CH_TRAILER :
				    LG_CH_DATA;
			break;
		case LG_CH_TRAILER:
			ch = p[i++];
			if (ch == '\n') {
				if (c->tr_chars == 0) {
					c->ch = LG_CH_DONE;
					return;
				}
				c->tr_chars = 0;
			} else if (ch != '\r')
				c->tr_chars++;
			break;
		case LG_CH_DATA:
			take = n - i;
			if (take > c->ch_left)
				take = (size_t)c->ch_left;
			conn_sse(c, p + i, take);
			i += take;
			c->ch_left -= take;
			if (c->ch_left == 0)
				c->ch = LG_CH_DATA_END;
			break;
		case LG_CH_DATA_END:
			if (p[i++] == '\n')
				c->ch = LG_CH_SIZE;
			break;
		case LG_CH_DONE:
			return;
		}
	}
}

/* Stream mode: a stream read to its end is checked, counted and closed;
 * the one at index n is the reference the others are held against. */
static void
conn_finish(struct lg_conn *c)
{
	int	 same;

	close(c->fd);
	c->fd = -1;
	c->state = LG_DONE;
	n_open_now--;
	conn_unpend(c);
	if (c == &conns[args.n]) {
		ref_hash = c->hash;
		ref_len = c->norm_len;
		ref_events = c->events;
		have_ref = 1;
	} else {
		n_done++;
		ev_total += c->events;
		body_total += c->body_in;
		same = c->events == ref_events && c->hash == ref_hash &&
		    c->norm_len == ref_len && c->ev_len == 0;
		if (have_ref && !same) {
			n_mismatch++;
			if (first_mismatch == -1)
				first_mismatch = (int)(c - conns);
		}
	}
	free(c->ev);
	c->ev = NULL;
	c->ev_cap = c->ev_len = 0;
}

/* Stream mode: whether the body has ended by its framing. */
static void
conn_maybe_done(struct lg_conn *c)
{
	if (!stream_mode || c->state != LG_BODY)
		return;
	if (c->chunked ? c->ch == LG_CH_DONE :
	    (c->clen >= 0 && c->body_in >= (uint64_t)c->clen))
		conn_finish(c);
}

/* Parses the response head once it is complete; the rest is body. */
static void
conn_head(struct lg_conn *c, const char *p, size_t n)
{
	char	*end, *h, *line;
	size_t	 hl, room = LG_HEAD_MAX - 1 - c->head_len, body_off;

	if (n > room)
		n = room;
	memcpy(c->head + c->head_len, p, n);
	c->head_len += n;
	c->head[c->head_len] = '\0';
	if ((end = strstr(c->head, "\r\n\r\n")) == NULL) {
		if (c->head_len == LG_HEAD_MAX - 1)
			conn_fail(c, 4);
		return;
	}
	hl = (size_t)(end - c->head) + 4;
	body_off = hl;
	if (strncmp(c->head, "HTTP/1.", 7) != 0 || c->head_len < 12) {
		conn_fail(c, 4);
		return;
	}
	c->status = atoi(c->head + 9);
	last_status = c->status;
	if (c->status == 100) {
		/* Drop the interim response and read on. */
		memmove(c->head, c->head + hl, c->head_len - hl);
		c->head_len -= hl;
		c->head[c->head_len] = '\0';
		conn_head(c, "", 0);
		return;
	}
	if (c->status != 200) {
		conn_fail(c, 2);
		return;
	}
	*end = '\0';
	for (line = strtok_r(c->head, "\r\n", &h); line != NULL;
	    line = strtok_r(NULL, "\r\n", &h))
		if (strncasecmp(line, "transfer-encoding:", 18) == 0 &&
		    strcasestr(line + 18, "chunked") != NULL)
			c->chunked = 1;
		else if (strncasecmp(line, "content-length:", 15) == 0)
			c->clen = strtoll(line + 15, NULL, 10);
	if (c->chunked)
		c->clen = -1;
	c->head_done = 1;
	n_head++;
	c->state = LG_BODY;
	if (c->head_len > body_off) {
		/* The bytes after the head came in the same read. */
		char	 tail[LG_HEAD_MAX];
		size_t	 tl = c->head_len - body_off;

		memcpy(tail, c->head + body_off, tl);
		free(c->head);
		c->head = NULL;
		conn_body(c, tail, tl);
	} else {
		free(c->head);
		c->head = NULL;
	}
	conn_check_ready(c);
	conn_maybe_done(c);
}

static void
conn_readable(int idx)
{
	struct lg_conn	*c = &conns[idx];
	ssize_t		 r;
	int		 rounds;

	for (rounds = 0; rounds < 8; rounds++) {
		r = recv(c->fd, rbuf, sizeof(rbuf), 0);
		if (r == 0) {
			if (stream_mode && c->state == LG_BODY &&
			    !c->chunked && c->clen < 0)
				conn_finish(c);	/* close-delimited */
			else
				conn_fail(c, 3);
			return;
		}
		if (r == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_fail(c, errno == ECONNRESET ? 3 : 4);
			return;
		}
		c->bytes_in += (uint64_t)r;
		if (idx != args.n)
			n_reads++;
		if (c->state == LG_HEAD) {
			/* Hand the head parser only what fits; the head
			 * parser copies a tail that spilled over. */
			size_t off = 0;

			while (off < (size_t)r && c->state == LG_HEAD) {
				size_t room = LG_HEAD_MAX - 1 - c->head_len;
				size_t take = (size_t)r - off;

				if (take > room)
					take = room;
				conn_head(c, rbuf + off, take);
				off += take;
				if (c->state == LG_FAILED)
					return;
			}
			if (off < (size_t)r && c->state == LG_BODY)
				conn_body(c, rbuf + off, (size_t)r - off);
		} else if (c->state == LG_BODY)
			conn_body(c, rbuf + (size_t)0, (size_t)r);
		conn_check_ready(c);
		conn_maybe_done(c);
		if (c->state != LG_HEAD && c->state != LG_BODY)
			return;
		if ((size_t)r < sizeof(rbuf))
			return;
	}
}

static void
conn_event(int idx, uint32_t ev)
{
	struct lg_conn	*c = &conns[idx];
	int		 err = 0;
	socklen_t	 el = sizeof(err);

	switch (c->state) {
	case LG_CONNECTING:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1 ||
		    err != 0) {
			conn_fail(c, 1);
			return;
		}
		/* FALLTHROUGH */
	case LG_SENDING:
		conn_send(idx);
		return;
	case LG_HEAD:
	case LG_BODY:
		conn_readable(idx);
		return;
	default:
		return;
	}
}

/* Runs the loop for up to ms, handling socket events and the mock log. */
static void
pump(int ms)
{
	struct epoll_event	 evs[256];
	int			 n, i;

	n = epoll_wait(epfd, evs, 256, ms);
	for (i = 0; i < n; i++)
		conn_event((int)evs[i].data.u32, evs[i].events);
}

static void
check_deadline(void)
{
	if (now_us() - t_begin > (uint64_t)args.timeout_ms * 1000)
		die("--timeout-ms %d reached", args.timeout_ms);
}

/* Opens streams within the in-flight budget until all are ready. */
static void
ramp(void)
{
	uint64_t	 deadline = now_us() +
	    (uint64_t)args.ready_timeout_ms * 1000;
	uint64_t	 last_log = 0;
	int		 next = 0, i;

	while (now_us() < deadline) {
		while (next < args.n && n_pending < args.max_pending)
			conn_open(next++);
		pump(LG_POLL_MS);
		mlog_poll();
		for (i = 0; i < args.n; i++)
			if (conns[i].mock_seen && conns[i].state != LG_IDLE)
				conn_check_ready(&conns[i]);
		if (next == args.n && n_ready + n_failed >= args.n)
			break;
		if (now_us() - last_log > 1000000) {
			last_log = now_us();
			if (last_log - t_begin > 1500000)
				fprintf(stderr, "loadgen: %s/%s: opened %d, "
				    "ready %d, failed %d, heads %d, mock has "
				    "%d\n", args.label, args.scenario,
				    n_opened, n_ready, n_failed, n_head,
				    n_mock_requests);
		}
		check_deadline();
	}
}

/* Drains whatever sits in the receive buffer, so that close sends a FIN. */
static void
drain_fd(int fd)
{
	int	 i;

	for (i = 0; i < 64; i++)
		if (recv(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT) <= 0)
			return;
}

/* Leaves every live stream at once (or spaced by --abort-gap-us). */
static void
abort_all(uint64_t *first, uint64_t *last)
{
	struct linger	 lg = { 1, 0 };
	int		 rst = strcmp(args.abort_how, "rst") == 0;
	int		 i, unread;
	struct lg_conn	*c;

	*first = *last = 0;
	for (i = 0; i < args.n; i++) {
		c = &conns[i];
		if (c->state != LG_HEAD && c->state != LG_BODY &&
		    c->state != LG_SENDING && c->state != LG_CONNECTING)
			continue;
		if (rst) {
			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg,
			    sizeof(lg));
			c->t_abort = now_us();
			close(c->fd);
		} else {
			drain_fd(c->fd);
			c->t_abort = now_us();
			shutdown(c->fd, SHUT_WR);
			unread = 0;
			if (ioctl(c->fd, FIONREAD, &unread) == 0 && unread > 0)
				c->fin_race = 1;
			close(c->fd);
		}
		c->fd = -1;
		c->state = LG_ABORTED;
		free(c->head);
		c->head = NULL;
		if (*first == 0)
			*first = c->t_abort;
		*last = c->t_abort;
		if (args.abort_gap_us > 0) {
			struct timespec ts = { 0, (long)args.abort_gap_us *
			    1000L };

			nanosleep(&ts, NULL);
		}
	}
}

/* Stream mode: the reference body straight from the mock, then the N
 * streams through the target, each read to its end and checked. */
static int
run_stream(void)
{
	double		 stat0, sched0, runq0, mock0, self0;
	double		 stat1, sched1, runq1, mock1, self1;
	uint64_t	 deadline, t_all, t_end, last_log = 0;
	struct lg_conn	*c;
	int		 next = 0, i, mock_done = 0, mock_ok = 0, mock_missing = 0;

	if (args.ref != NULL) {
		parse_addr("ref", args.ref, &ref_sa);
		conn_open(args.n);
		deadline = now_us() + 20000000;
		while (conns[args.n].state != LG_DONE &&
		    conns[args.n].state != LG_FAILED && now_us() < deadline)
			pump(LG_POLL_MS);
		if (conns[args.n].state != LG_DONE)
			die("reference fetch from %s failed (status %d, "
			    "state %d)", args.ref, conns[args.n].status,
			    (int)conns[args.n].state);
		n_opened = n_pending = n_failed = n_head = 0;
		fail_connect = fail_status = fail_closed = fail_io = 0;
		n_open_now = n_open_peak = 0;
	}

	self0 = self_cpu_ms();
	stat0 = pids_stat_cpu_ms();
	sched0 = pids_cpu_ms();
	runq0 = pids_runq_acc;
	mock0 = args.mock_pid ? stat_cpu_ms(args.mock_pid) : 0;
	t_begin = now_us();
	while (n_done + n_failed < args.n) {
		while (next < args.n && n_pending < args.max_pending)
			conn_open(next++);
		pump(LG_POLL_MS);
		if (next < args.n) {
			mlog_poll();
			for (i = 0; i < next; i++)
				if (conns[i].mock_seen && conns[i].pending)
					conn_check_ready(&conns[i]);
		}
		if (now_us() - last_log > 1000000) {
			last_log = now_us();
			if (last_log - t_begin > 1500000)
				fprintf(stderr, "loadgen: %s/%s: opened %d, "
				    "open now %d (peak %d), done %d, failed "
				    "%d, heads %d\n", args.label, args.scenario,
				    n_opened, n_open_now, n_open_peak, n_done,
				    n_failed, n_head);
		}
		check_deadline();
	}
	t_all = now_us();

	/* What the mock says: every stream completed, all its tokens sent. */
	for (;;) {
		mlog_poll();
		mock_done = 0;
		for (i = 0; i < args.n; i++)
			if (conns[i].outcome != LG_OUT_NONE)
				mock_done++;
		if (mock_done >= n_opened ||
		    now_us() - t_all > (uint64_t)args.wait_ms * 1000)
			break;
		usleep(LG_POLL_MS * 1000);
	}
	t_end = now_us();
	stat1 = pids_stat_cpu_ms();
	sched1 = pids_cpu_ms();
	runq1 = pids_runq_acc;
	mock1 = args.mock_pid ? stat_cpu_ms(args.mock_pid) : 0;
	self1 = self_cpu_ms();
	for (i = 0; i < args.n; i++) {
		c = &conns[i];
		if (c->outcome == LG_OUT_NONE) {
			if (c->state != LG_IDLE)
				mock_missing++;
		} else if (c->outcome == LG_OUT_COMPLETED &&
		    (args.tokens < 0 || c->tokens_sent == (unsigned)args.tokens))
			mock_ok++;
	}

	fprintf(stderr, "loadgen: %s/%s: n=%d completed=%d failed=%d "
	    "(connect %d, status %d [last %d], closed %d, io %d) "
	    "mismatched=%d (first %d) events=%" PRIu64 " (ref %u per "
	    "stream) peak_open=%d mock: completed %d, missing %d; target "
	    "cpu %.0f ms (stat) %.1f ms (schedstat) in %.0f ms\n",
	    args.label, args.scenario, args.n, n_done, n_failed, fail_connect,
	    fail_status, last_status, fail_closed, fail_io, n_mismatch,
	    first_mismatch, ev_total, ref_events, n_open_peak, mock_ok,
	    mock_missing, stat1 - stat0, sched1 - sched0,
	    (double)(t_all - t_begin) / 1000.0);
	printf("RESULT label=%s scenario=%s mode=stream n=%d completed=%d "
	    "failed=%d fail_connect=%d fail_status=%d last_status=%d "
	    "fail_closed=%d fail_io=%d mismatched=%d verified=%d "
	    "ref_events=%u ref_bytes=%" PRIu64 " events=%" PRIu64
	    " body_bytes=%" PRIu64 " reads=%" PRIu64 " peak_open=%d "
	    "target_cpu_stat_ms=%.0f "
	    "target_cpu_ms=%.1f target_runq_ms=%.1f mock_cpu_ms=%.0f "
	    "loadgen_cpu_ms=%.1f stream_ms=%.0f wall_ms=%.0f "
	    "mock_completed=%d mock_missing=%d\n",
	    args.label, args.scenario, args.n, n_done, n_failed, fail_connect,
	    fail_status, last_status, fail_closed, fail_io, n_mismatch,
	    have_ref, ref_events, ref_len, ev_total, body_total, n_reads,
	    n_open_peak,
	    stat1 - stat0, sched1 - sched0, runq1 - runq0, mock1 - mock0,
	    self1 - self0, (double)(t_all - t_begin) / 1000.0,
	    (double)(t_end - t_begin) / 1000.0, mock_ok, mock_missing);
	fflush(stdout);
	return 0;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int64_t
pct(const int64_t *v, int n, double p)
{
	int	 i;

	if (n == 0)
		return -1;
	i = (int)(p * (double)(n - 1) + 0.5);
	if (i >= n)
		i = n - 1;
	return v[i];
}

int
main(int argc, char **argv)
{
	uint64_t	 t_ready_all, first_abort, last_abort, t_wait_end;
	uint64_t	 t_settled;
	long		 rss_before = 0, rss_after = 0;
	double		 cpu_before, cpu_after, self_cpu_start, cpu_abort;
	double		 runq_abort, runq_after;
	int64_t		*lat;
	int		 nlat = 0, i, aborted = 0, open_left = 0, early = 0;
	int		 out_fin = 0, out_rst = 0, out_completed = 0;
	int		 out_rst_stream = 0;
	int		 out_other = 0, fin_races = 0, ready_at_abort;
	FILE		*dump = NULL;
	struct lg_conn	*c;
	int		 rss_mode;

	parse_args(argc, argv);
	rss_mode = strcmp(args.mode, "rss") == 0;
	stream_mode = strcmp(args.mode, "stream") == 0;
	signal(SIGPIPE, SIG_IGN);
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur < (rlim_t)args.n + 64)
			die("RLIMIT_NOFILE %llu is below --n %d: raise "
			    "ulimit -n", (unsigned long long)rl.rlim_cur,
			    args.n);
	}
	parse_target();
	build_request();
	/* One more: the reference stream of the stream mode. */
	if ((conns = calloc((size_t)args.n + 1, sizeof(*conns))) == NULL)
		die("out of memory");
	for (i = 0; i <= args.n; i++)
		conns[i].fd = -1;
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	mlog_open();
	if (stream_mode)
		return run_stream();

	self_cpu_start = self_cpu_ms();
	t_begin = now_us();
	rss_before = rss_kib();
	cpu_before = pids_cpu_ms();

	ramp();
	t_ready_all = now_us();
	ready_at_abort = n_ready;

	/* Let the last streams settle, reading on so nothing backs up. */
	while (now_us() - t_ready_all < (uint64_t)args.settle_ms * 1000) {
		pump(LG_POLL_MS);
		check_deadline();
	}
	t_settled = now_us();
	if (rss_mode)
		rss_after = rss_kib();
	ready_at_abort = n_ready;

	cpu_abort = pids_cpu_ms();
	runq_abort = pids_runq_acc;
	abort_all(&first_abort, &last_abort);

	/* Wait for the mock to report every stream we left. */
	for (i = 0; i < args.n; i++)
		if (conns[i].state == LG_ABORTED)
			aborted++;
	for (;;) {
		int	 have = 0;

		mlog_poll();
		for (i = 0; i < args.n; i++)
			if (conns[i].state == LG_ABORTED &&
			    conns[i].outcome != LG_OUT_NONE)
				have++;
		if (have >= aborted ||
		    now_us() - last_abort > (uint64_t)args.wait_ms * 1000)
			break;
		usleep(LG_POLL_MS * 1000);
		check_deadline();
	}
	t_wait_end = now_us();
	cpu_after = pids_cpu_ms();
	runq_after = pids_runq_acc;

	if ((lat = calloc((size_t)args.n + 1, sizeof(*lat))) == NULL)
		die("out of memory");
	if (args.dump != NULL && (dump = fopen(args.dump, "w")) != NULL)
		fprintf(dump, "idx\tstate\tevents\tabort_us\tgone_us\t"
		    "latency_us\toutcome\tfin_race\n");
	for (i = 0; i < args.n; i++) {
		c = &conns[i];
		if (c->state != LG_ABORTED)
			continue;
		fin_races += c->fin_race;
		switch (c->outcome) {
		case LG_OUT_NONE:
			open_left++;
			break;
		case LG_OUT_FIN:
			out_fin++;
			break;
		case LG_OUT_RST:
			out_rst++;
			break;
		case LG_OUT_RST_STREAM:
			out_rst_stream++;
			break;
		case LG_OUT_COMPLETED:
			out_completed++;
			break;
		default:
			out_other++;
			break;
		}
		if ((c->outcome == LG_OUT_FIN || c->outcome == LG_OUT_RST ||
		    c->outcome == LG_OUT_RST_STREAM) &&
		    c->gone_us != 0) {
			if (c->gone_us < c->t_abort)
				early++;	/* gone before we left it */
			else
				lat[nlat++] = (int64_t)(c->gone_us - c->t_abort);
		}
		if (dump != NULL)
			fprintf(dump, "%d\t%d\t%u\t%" PRIu64 "\t%" PRIu64
			    "\t%" PRId64 "\t%d\t%d\n", i, (int)c->state,
			    c->events, c->t_abort, c->gone_us,
			    c->gone_us ? (int64_t)(c->gone_us - c->t_abort) :
			    -1, (int)c->outcome, c->fin_race);
	}
	if (dump != NULL)
		fclose(dump);
	qsort(lat, (size_t)nlat, sizeof(*lat), cmp_i64);

	fprintf(stderr, "loadgen: %s/%s: n=%d ready=%d failed=%d "
	    "(connect %d, status %d [last %d], closed %d, io %d) "
	    "aborted=%d matched=%d open=%d early=%d completed=%d "
	    "fin=%d rst=%d fin_race=%d p50=%" PRId64 "us p99=%" PRId64
	    "us max=%" PRId64 "us\n", args.label, args.scenario, args.n,
	    ready_at_abort, n_failed, fail_connect, fail_status, last_status,
	    fail_closed, fail_io, aborted, nlat, open_left, early,
	    out_completed, out_fin, out_rst, fin_races, pct(lat, nlat, 0.5),
	    pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] : -1);

	/* One machine-readable line on stdout. */
	printf("RESULT label=%s scenario=%s mode=%s abort=%s n=%d events=%d "
	    "ready=%d failed=%d aborted=%d matched=%d open=%d early=%d "
	    "completed=%d other=%d out_fin=%d out_rst=%d out_rst_stream=%d "
	    "fin_race=%d "
	    "p50_us=%" PRId64 " p90_us=%" PRId64 " p99_us=%" PRId64
	    " max_us=%" PRId64 " min_us=%" PRId64 " ramp_ms=%.0f "
	    "abort_spread_us=%" PRIu64 " wait_ms=%.0f "
	    "target_cpu_ms=%.1f cancel_cpu_ms=%.1f cancel_runq_ms=%.1f "
	    "loadgen_cpu_ms=%.1f "
	    "wall_ms=%.0f",
	    args.label, args.scenario, args.mode, args.abort_how, args.n,
	    args.events, ready_at_abort, n_failed, aborted, nlat, open_left,
	    early, out_completed, out_other, out_fin, out_rst, out_rst_stream,
	    fin_races,
	    pct(lat, nlat, 0.5), pct(lat, nlat, 0.9), pct(lat, nlat, 0.99),
	    nlat ? lat[nlat - 1] : -1, nlat ? lat[0] : -1,
	    (double)(t_ready_all - t_begin) / 1000.0,
	    last_abort - first_abort, (double)(t_wait_end - last_abort) /
	    1000.0, cpu_after - cpu_before, cpu_after - cpu_abort,
	    runq_after - runq_abort,
	    self_cpu_ms() - self_cpu_start,
	    (double)(t_wait_end - t_begin) / 1000.0);
	if (rss_mode)
		printf(" rss_before_kib=%ld rss_after_kib=%ld "
		    "kib_per_stream=%.2f", rss_before, rss_after,
		    ready_at_abort > 0 ? (double)(rss_after - rss_before) /
		    ready_at_abort : -1.0);
	printf(" settle_ms=%.0f\n", (double)(t_settled - t_ready_all) / 1000.0);
	fflush(stdout);
	return 0;
}
