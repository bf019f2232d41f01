/* logtool: cancelproxy-log's command line: the commands, their options,
 * the manual (--help) and the exit codes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/log/logtool.h"

#ifndef CANCELPROXY_VERSION
#define CANCELPROXY_VERSION "0.0.0"
#endif

static const char logtool_usage_text[] =
"usage: cancelproxy-log trace ID [--json] [--skew MS] [FILE...]\n"
"       cancelproxy-log cancels [FILTERS] [--json] [FILE...]\n"
"       cancelproxy-log stats [FILTERS] [--by DIM] [--json] [FILE...]\n"
"       cancelproxy-log tail [-f] [-n N] [FILTERS] [--json] [FILE...]\n"
"       cancelproxy-log report --html OUT [FILTERS] [--top N] [FILE...]\n"
"FILTERS: --kind K --hop H --phase P --direction D --via V --upstream U\n"
"         --model M --protocol P --since T --until T\n"
"         (cancelproxy-log --help for more)\n";

static const char logtool_help_text[] =
"NAME\n"
"     cancelproxy-log - read the story of every cancel from cancelproxy logs\n"
"\n"
"SYNOPSIS\n"
"     cancelproxy-log trace ID [--json] [--skew MS] [FILE...]\n"
"     cancelproxy-log cancels [FILTERS] [--json] [FILE...]\n"
"     cancelproxy-log stats [FILTERS] [--by DIM] [--json] [FILE...]\n"
"     cancelproxy-log tail [-f] [-n N] [FILTERS] [--json] [FILE...]\n"
"     cancelproxy-log report --html OUT [FILTERS] [--top N] [FILE...]\n"
"     cancelproxy-log --help | --version\n"
"\n"
"DESCRIPTION\n"
"     cancelproxy writes one JSON record per line. For every stream that was\n"
"     cut short, each hop writes a \"cancel\" record saying what started it\n"
"     (origin), where, in which phase, how the hop noticed, which way the\n"
"     cancel travelled and how long the hop took to close the other side;\n"
"     every finished request also gets a \"request\" record. cancelproxy-log\n"
"     reads the logs of one or more hops and answers: why did this answer\n"
"     stop, who is cancelling and when, and how fast is the model stopped.\n"
"\n"
"     Each FILE is a log file, a gzip- or zlib-compressed file (recognised by\n"
"     its first bytes, so rotated files such as edge.log.2.gz just work), or\n"
"     - for standard input, which is also read when no FILE is given. Several\n"
"     files (hops, or the rotated files of one hop) are merged by time as\n"
"     they are read. Input is streamed: memory is bounded by the cancels of\n"
"     the last few seconds of log time that are waiting for their request\n"
"     record, not by the size of the logs. Lines that are not log records\n"
"     are counted and reported on standard error, never fatal.\n"
"\n"
"     A cancel record is joined with the request record of the same\n"
"     request_id at the same hop, which gives it a model, a status and,\n"
"     when the proxy reported it, token usage.\n"
"\n"
"COMMANDS\n"
"     trace ID\n"
"          Every record whose request_id or trace_id is ID (or starts with\n"
"          ID), from every hop, as one timeline per request: the offset from\n"
"          the request's arrival at the first hop, the hop, the event\n"
"          (arrived, cancel, note, note_failed, request), the origin, the\n"
"          direction, the phase, how it was noticed and the detect-to-close\n"
"          time. Above it, the path on one line, arrows showing which way\n"
"          the cancel travelled from its origin:\n"
"              client -> edge -> core -> upstream:openai\n"
"          Below it, contradictions: two origins for one request, a cancel\n"
"          path that skips a hop the request went through (a hop that did\n"
"          not know its upstream was a peer), a hop named on the path with\n"
"          no record in the input (a missing hop or log), a hop the cancel\n"
"          should have reached with no cancel record, and times out of\n"
"          order along the path (beyond --skew, default 1 ms).\n"
"\n"
"     cancels\n"
"          A table of cancel records in time order: time (UTC), hop, origin\n"
"          kind, direction, phase, detected via, time into the request,\n"
"          detect-to-close, SSE events relayed, model, request id and path.\n"
"          With --json, one JSON object per line: the record as the proxy\n"
"          wrote it, plus \"model\" and, when known, \"usage\" from the join.\n"
"\n"
"     stats\n"
"          Counts and distributions of the cancels, by origin kind, hop,\n"
"          phase, upstream and model (--by picks one of these, or direction\n"
"          or via): requests and cancels with that value and the cancel\n"
"          rate, detect-to-close percentiles (p50, p90, p99, max), cancels\n"
"          with nothing to close, the time into the request at the cancel\n"
"          (elapsed_ms, p50 and p90), SSE events and bytes relayed before the\n"
"          cancel and completion tokens where usage was reported; then\n"
"          terminal histograms of detect-to-close and of time into the\n"
"          request. Percentiles are exact below 256 and within 1% above.\n"
"          --json writes all of it as one JSON object.\n"
"\n"
"     tail\n"
"          The last N cancels (-n, default 10) as one readable line each;\n"
"          with -f, then follows the files as they grow and across rotation\n"
"          (a renamed or removed file is read to its end, then the new file\n"
"          with that name from its start; a file truncated in place is read\n"
"          again from its start). Lines are coloured on a terminal.\n"
"          SIGINT or SIGTERM ends it.\n"
"\n"
"     report --html OUT\n"
"          Writes one self-contained HTML page (no scripts or fonts from the\n"
"          network) with a summary by origin kind, an SVG histogram of\n"
"          detect-to-close latency, cancels over time stacked by origin kind\n"
"          and the slowest cascades (--top, default 10) as timelines across\n"
"          hops. A cascade's time runs from the first hop noticing to the\n"
"          last hop writing its cancel record.\n"
"\n"
"FILTERS\n"
"     cancels, stats, tail and report accept these; each takes a comma-\n"
"     separated list and may be repeated, and a cancel must match one value\n"
"     of every option given. Kinds, phases, directions and via names are\n"
"     checked; hop, upstream and model values may be fnmatch(3) patterns\n"
"     (\"gpt-*\"); - matches a missing value.\n"
"     --kind K        origin kind: client_disconnect, client_cancel, admin,\n"
"                     first_byte_timeout, idle_timeout, total_timeout,\n"
"                     upstream_error, upstream_closed, shutdown, unknown\n"
"     --hop H         the hop that wrote the record\n"
"     --phase P       request, connecting, waiting_first_byte, streaming\n"
"     --direction D   upstream (toward the model) or downstream (toward the\n"
"                     client)\n"
"     --via V         eof, rst, rst_stream, goaway, write_error, timer,\n"
"                     admin, note, signal, upstream_status, sse_error\n"
"     --protocol P    the client's protocol: h2 or http/1.1\n"
"     --upstream U    the upstream the hop was talking to\n"
"     --model M       the model of the request (from the join)\n"
"     --since T       records at or after T; --until T: before T. T is an\n"
"                     RFC 3339 time or a prefix of one (2026-11-22T02:20:25Z,\n"
"                     2026-11-22T02:20, 2026-11-22; UTC unless it has an\n"
"                     offset), now, or an age before now: 90s, 15m, 2h, 7d.\n"
"\n"
"OPTIONS\n"
"     --json          JSON output (trace, cancels, stats, tail)\n"
"     --by DIM        stats: only this table: kind, hop, phase, upstream,\n"
"                     model, direction, via or protocol\n"
"     -f, --follow    tail: keep reading as the files grow and rotate\n"
"     -n, --lines N   tail: cancels shown from before (default 10)\n"
"     --html OUT      report: the page to write (- for standard output)\n"
"     --top N         report: slowest cascades drawn (default 10)\n"
"     --skew MS       trace: how far out of order times may be before they\n"
"                     are flagged (default 1; hops on different hosts may\n"
"                     need more)\n"
"     --color WHEN    auto (default: on a terminal, unless NO_COLOR is set),\n"
"                     always or never\n"
"     -h, --help      this manual\n"
"     -V, --version   the version\n"
"\n"
"EXIT STATUS\n"
"     0    something was found: records for trace, at least one cancel for\n"
"          cancels, stats, tail and report\n"
"     1    nothing matched (the output says so, or is empty)\n"
"     2    bad usage, or bad input: a file that cannot be opened or read, or\n"
"          corrupt or truncated compressed data (what could be read is still\n"
"          used). Lines that are not records never change the exit status.\n"
"\n"
"ENVIRONMENT\n"
"     NO_COLOR    when set and not empty, no colour unless --color always\n"
"     LC_ALL, LC_CTYPE, LANG\n"
"                 a UTF-8 locale gets µs and block characters; others get us\n"
"                 and #\n"
"\n"
"EXAMPLES\n"
"     Why did this answer stop? (ID from X-Request-Id or the trace)\n"
"           cancelproxy-log trace 14d6f2c0 edge.log core.log\n"
"     Who cancelled in the last hour, on the model side?\n"
"           cancelproxy-log cancels --since 1h --kind upstream_error,\\\n"
"               upstream_closed,first_byte_timeout /var/log/cancelproxy/*\n"
"     How fast do we stop the model, per hop and model?\n"
"           cancelproxy-log stats edge.log edge.log.1 edge.log.2.gz core.log\n"
"     Watch cancels live, across logrotate:\n"
"           cancelproxy-log tail -f /var/log/cancelproxy/edge.log\n"
"     A page to share:\n"
"           cancelproxy-log report --html cancels.html edge.log core.log\n"
"\n"
"SEE ALSO\n"
"     cancelproxy(8), cancelproxy-mock(1), docs/cancelproxy-log.md\n";

/* Prints the short usage and exits 2. */
static void
logtool_usage_exit(void)
{
	fputs(logtool_usage_text, stderr);
	exit(LOGTOOL_EXIT_BAD);
}

/* Reads a whole number in [min, max] for option name. */
static long
logtool_number(const char *name, const char *s, long min, long max)
{
	char	*end;
	long	 v;

	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "cancelproxy-log: --%s %s: expected a number "
		    "in %ld..%ld\n", name, s, min, max);
		exit(LOGTOOL_EXIT_BAD);
	}
	return v;
}

/* What each command accepts, checked after parsing. */
#define ACCEPT_FILTER	0x01
#define ACCEPT_JSON	0x02
#define ACCEPT_FOLLOW	0x04
#define ACCEPT_HTML	0x08
#define ACCEPT_BY	0x10
#define ACCEPT_SKEW	0x20

static const struct logtool_command {
	const char	*name;
	int		 accept;
	int		(*run)(struct logtool_opts *);
} logtool_commands[] = {
	{ "trace", ACCEPT_JSON | ACCEPT_SKEW, logtool_cmd_trace },
	{ "cancels", ACCEPT_FILTER | ACCEPT_JSON, logtool_cmd_cancels },
	{ "stats", ACCEPT_FILTER | ACCEPT_JSON | ACCEPT_BY, logtool_cmd_stats },
	{ "tail", ACCEPT_FILTER | ACCEPT_JSON | ACCEPT_FOLLOW,
	    logtool_cmd_tail },
	{ "report", ACCEPT_FILTER | ACCEPT_HTML, logtool_cmd_report },
};

/* Says that an option does not go with a command, and exits 2. */
static void
logtool_not_here(const char *cmd, const char *opt)
{
	fprintf(stderr, "cancelproxy-log %s: --%s does not apply here\n",
	    cmd, opt[0] == '-' ? opt + 2 : opt);
	logtool_usage_exit();
}

/* Parses the command line and runs one command; its exit code. */
int
main(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_BY, OPT_HTML, OPT_TOP, OPT_SKEW, OPT_COLOR,
	    OPT_FILTER };
	static const struct option longopts[] = {
		{ "kind",	required_argument,	NULL, OPT_FILTER },
		{ "hop",	required_argument,	NULL, OPT_FILTER },
		{ "phase",	required_argument,	NULL, OPT_FILTER },
		{ "direction",	required_argument,	NULL, OPT_FILTER },
		{ "via",	required_argument,	NULL, OPT_FILTER },
		{ "upstream",	required_argument,	NULL, OPT_FILTER },
		{ "protocol",	required_argument,	NULL, OPT_FILTER },
		{ "model",	required_argument,	NULL, OPT_FILTER },
		{ "since",	required_argument,	NULL, OPT_FILTER },
		{ "until",	required_argument,	NULL, OPT_FILTER },
		{ "json",	no_argument,		NULL, OPT_JSON },
		{ "by",		required_argument,	NULL, OPT_BY },
		{ "html",	required_argument,	NULL, OPT_HTML },
		{ "top",	required_argument,	NULL, OPT_TOP },
		{ "skew",	required_argument,	NULL, OPT_SKEW },
		{ "color",	required_argument,	NULL, OPT_COLOR },
		{ "colour",	required_argument,	NULL, OPT_COLOR },
		{ "follow",	no_argument,		NULL, 'f' },
		{ "lines",	required_argument,	NULL, 'n' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const struct logtool_command *cmd = NULL;
	struct logtool_opts	 o;
	const char		*color = "auto", *cmdname;
	size_t			 i;
	int			 ch, idx, accept, rc;

	memset(&o, 0, sizeof(o));
	logtool_filter_init(&o.filter);
	o.tail_n = 10;
	o.top = 10;
	o.skew_us = 1000;

	/* Options before the command: only --help, --version, --color. */
	if (argc < 2)
		logtool_usage_exit();
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(logtool_help_text, stdout);
		return LOGTOOL_EXIT_FOUND;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("cancelproxy-log %s\n", CANCELPROXY_VERSION);
		return LOGTOOL_EXIT_FOUND;
	}
	cmdname = argv[1];
	for (i = 0; i < sizeof(logtool_commands) / sizeof(logtool_commands[0]);
	    i++)
		if (strcmp(cmdname, logtool_commands[i].name) == 0)
			cmd = &logtool_commands[i];
	if (cmd == NULL) {
		fprintf(stderr, "cancelproxy-log: %s: not a command (trace, "
		    "cancels, stats, tail, report)\n", cmdname);
		logtool_usage_exit();
	}
	accept = cmd->accept;

	argc--;
	argv++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "fn:hV", longopts, &idx)) != -1) {
		switch (ch) {
		case OPT_FILTER:
			if (!(accept & ACCEPT_FILTER))
				logtool_not_here(cmdname, longopts[idx].name);
			if (logtool_filter_option(&o.filter,
			    longopts[idx].name, optarg) == -1)
				return LOGTOOL_EXIT_BAD;
			break;
		case OPT_JSON:
			if (!(accept & ACCEPT_JSON))
				logtool_not_here(cmdname, "--json");
			o.json = 1;
			break;
		case OPT_BY:
			if (!(accept & ACCEPT_BY))
				logtool_not_here(cmdname, "--by");
			o.by = optarg;
			break;
		case OPT_HTML:
			if (!(accept & ACCEPT_HTML))
				logtool_not_here(cmdname, "--html");
			o.html = optarg;
			break;
		case OPT_TOP:
			if (!(accept & ACCEPT_HTML))
				logtool_not_here(cmdname, "--top");
			o.top = (int)logtool_number("top", optarg, 0, 1000);
			break;
		case OPT_SKEW:
			if (!(accept & ACCEPT_SKEW))
				logtool_not_here(cmdname, "--skew");
			o.skew_us = logtool_number("skew", optarg, 0,
			    86400000) * 1000;
			break;
		case OPT_COLOR:
			color = optarg;
			break;
		case 'f':
			if (!(accept & ACCEPT_FOLLOW))
				logtool_not_here(cmdname, "--follow");
			o.follow = 1;
			break;
		case 'n':
			if (!(accept & ACCEPT_FOLLOW))
				logtool_not_here(cmdname, "--lines");
			o.tail_n = logtool_number("lines", optarg, 0, 1000000);
			break;
		case 'h':
			fputs(logtool_help_text, stdout);
			return LOGTOOL_EXIT_FOUND;
		case 'V':
			printf("cancelproxy-log %s\n", CANCELPROXY_VERSION);
			return LOGTOOL_EXIT_FOUND;
		default:
			logtool_usage_exit();
		}
	}
	if (logtool_term_init(color) == -1)
		return LOGTOOL_EXIT_BAD;
	if (cmd->run == logtool_cmd_trace) {
		if (optind >= argc) {
			fprintf(stderr, "cancelproxy-log trace: which request "
			    "or trace id?\n");
			logtool_usage_exit();
		}
		o.id = argv[optind++];
		if (o.id[0] == '\0') {
			fprintf(stderr, "cancelproxy-log trace: empty id\n");
			logtool_usage_exit();
		}
	}
	if (cmd->run == logtool_cmd_report && o.html == NULL) {
		fprintf(stderr, "cancelproxy-log report: --html OUT is "
		    "required\n");
		logtool_usage_exit();
	}
	o.files = argv + optind;
	o.nfiles = argc - optind;
	rc = cmd->run(&o);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		if (rc != LOGTOOL_EXIT_BAD)
			fprintf(stderr, "cancelproxy-log: cannot write the "
			    "output\n");
		rc = LOGTOOL_EXIT_BAD;
	}
	logtool_intern_free();
	return rc;
}
