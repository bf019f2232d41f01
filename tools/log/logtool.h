/* logtool: shared declarations of cancelproxy-log, which reads the JSON logs
 * of one or more hops and tells the story of every cancel: a cascade as a
 * timeline, a table of cancels, statistics, a live tail and an HTML report. */
#ifndef CANCELPROXY_LOGTOOL_H
#define CANCELPROXY_LOGTOOL_H

#include <sys/types.h>
#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <zlib.h>

#define LOGTOOL_PATH_MAX	16		/* hops kept per cancel_path */
#define LOGTOOL_LINE_MAX	(4 * 1024 * 1024) /* longer lines are junk */
#define LOGTOOL_READ_SIZE	(1024 * 1024)	/* bytes per read(2) */
#define LOGTOOL_JOIN_WINDOW_US	(5 * 1000000LL)	/* cancel -> request record */
#define LOGTOOL_JOIN_MIN_RECORDS 4096		/* ... and at least this far */
#define LOGTOOL_FOLLOW_POLL_MS	200		/* tail -f: rotation checks */
#define LOGTOOL_FOLLOW_FLUSH_US	(500 * 1000LL)	/* tail -f: wait for a model */

/* Exit codes (documented in --help and docs/cancelproxy-log.md). */
#define LOGTOOL_EXIT_FOUND	0
#define LOGTOOL_EXIT_NOTHING	1
#define LOGTOOL_EXIT_BAD	2

/* ---- records (logtool_scan.c) ----------------------------------------- */

/* A string inside a line or a scratch buffer; not NUL-terminated. */
struct logtool_str {
	const char	*p;
	size_t		 n;
};

/* The events this tool reads; everything else is LOGTOOL_EV_OTHER. */
enum logtool_event {
	LOGTOOL_EV_OTHER,
	LOGTOOL_EV_CANCEL,
	LOGTOOL_EV_REQUEST,
	LOGTOOL_EV_NOTE,
	LOGTOOL_EV_NOTE_FAILED,
};
const char	*logtool_event_name(enum logtool_event ev);

/*
 * One log record as scanned from a line. Strings point into the line or
 * into the scanner's scratch buffer (when they had escapes), so a record
 * is valid only until its source reads the next line. Missing strings have
 * p == NULL; missing numbers are -1 (detect_to_close_us null is -1 too).
 */
struct logtool_rec {
	enum logtool_event	 event;
	int64_t			 ts_us;		/* microseconds since the epoch */
	struct logtool_str	 ts, hop, event_name, level;
	struct logtool_str	 request_id, trace_id, message;
	/* cancel */
	struct logtool_str	 kind, origin_hop, direction, phase, via;
	struct logtool_str	 upstream;
	struct logtool_str	 protocol;	/* both: "http/1.1", "h2" */
	struct logtool_str	 path[LOGTOOL_PATH_MAX];
	int			 npath;
	int			 path_truncated;
	int64_t			 elapsed_ms, d2c_us, sse_events, bytes_out;
	/* request (path is the request's path, or a note's "a -> b") */
	struct logtool_str	 client, method, target, model, route, outcome;
	int64_t			 status, bytes_in;
	double			 duration_ms, ttfb_ms;	/* -1: null or missing */
	int			 has_usage;
	int64_t			 prompt_tokens, completion_tokens, total_tokens;
	/* note */
	struct logtool_str	 from, origin_kind, reason;
	/* where it came from */
	const char		*line;
	size_t			 len;
	const char		*src_name;
	uint64_t		 lineno;
};

/* Growable bytes where unescaped strings of one line are written. */
struct logtool_scratch {
	char	*buf;
	size_t	 len, cap;
};

/* Scans one line into r; 0, or -1 when the line is not a log record
 * (not a JSON object, or no string ts, hop and event). */
int		 logtool_scan(const char *line, size_t len, struct logtool_rec *r,
		    struct logtool_scratch *s);
void		 logtool_scratch_free(struct logtool_scratch *s);
/* Parses an RFC 3339 time (a prefix is enough: "2026-11-22", "...T02:20")
 * into microseconds since the epoch; -1 when it is not one. */
int		 logtool_parse_time(const char *p, size_t n, int64_t *out);
/* 1 when the string equals the NUL-terminated s. */
int		 logtool_str_eq(struct logtool_str a, const char *s);

/* ---- input (logtool_input.c) ------------------------------------------ */

/* One input: a file (plain or gzip/zlib), or standard input ("-"). */
struct logtool_source {
	char		*name;
	int		 fd;
	int		 is_stdin;
	int		 fd_flags;	/* standard input's, to put back */
	int		 gz;		/* the bytes are inflated */
	int		 gz_checked;	/* the first bytes were looked at */
	z_stream	 zs;
	int		 zs_init;	/* inflateInit2 was called */
	int		 zs_member;	/* inside a gzip member */
	unsigned char	*zin;
	size_t		 zin_len;
	int		 raw_eof;	/* read(2) returned 0 (for now) */
	char		*buf;		/* decoded bytes; [start, end) unread */
	size_t		 cap, start, end;
	int		 eof;		/* nothing more until the next poll */
	int		 done;		/* finished for good */
	int		 skipping;	/* dropping the rest of an overlong line */
	uint64_t	 lineno;
	/* following */
	int		 follow;
	int		 reopen;	/* the path now names another file */
	dev_t		 dev;
	ino_t		 ino;
	off_t		 off;		/* bytes read from the current file */
	/* merging: the next record, scanned but not yet handed out */
	struct logtool_rec	 head;
	int			 has_head;
	struct logtool_scratch	 scratch;
};

/* All inputs, read as one stream merged by time. */
struct logtool_input {
	struct logtool_source	**src;
	int			  nsrc;
	int			  follow;
	uint64_t		  lines, records, junk;
	char			 *junk_first;	/* "file:line" of the first */
	int			  errors;	/* unreadable or corrupt input */
};

/* Opens every input (none: standard input); -1 after saying why when one
 * cannot be opened (the others stay open for logtool_input_free). */
int		 logtool_input_open(struct logtool_input *in, char **paths,
		    int npaths, int follow);
void		 logtool_input_free(struct logtool_input *in);
/* The next record in time order: 1 and *out, or 0 when nothing is left
 * (when following: nothing right now; call logtool_input_wait). */
int		 logtool_input_next(struct logtool_input *in,
		    struct logtool_rec **out);
/* Following: sleeps up to ms, notices rotation and growth. */
void		 logtool_input_wait(struct logtool_input *in, int ms);
/* Writes the junk-line and error summary to stderr (quiet when none). */
void		 logtool_input_report(const struct logtool_input *in);

/* ---- join index (logtool_join.c) -------------------------------------- */

/* Returns the one NUL-terminated copy of a string (hop, kind, model...). */
const char	*logtool_intern(const char *p, size_t n);
/* logtool_intern for a record string; NULL when it is missing. */
const char	*logtool_intern_str(struct logtool_str s);
void		 logtool_intern_free(void);

/*
 * A cancel record joined with the request record of the same request at
 * the same hop (for model, usage, status). Short strings are interned;
 * ids, message and the raw line are owned by the cancel.
 */
struct logtool_cancel {
	int64_t		 ts_us;
	const char	*hop, *kind, *origin_hop, *direction, *phase, *via;
	const char	*upstream;
	const char	*protocol;	/* the client's; NULL in older logs */
	const char	*path[LOGTOOL_PATH_MAX];
	int		 npath;
	char		*request_id, *trace_id, *message, *line;
	size_t		 linelen;
	int64_t		 elapsed_ms, d2c_us, sse_events, bytes_out;
	/* from the request record, when it was found */
	int		 has_request;
	const char	*model;
	int64_t		 status;
	double		 duration_ms, ttfb_ms;
	int		 has_usage;
	int64_t		 prompt_tokens, completion_tokens, total_tokens;
	/* index */
	int64_t		 read_us;	/* monotonic time it was read */
	uint64_t	 seq;		/* records fed before it */
	int		 resolved;
	uint64_t	 hash;
	struct logtool_cancel	*hnext;
	TAILQ_ENTRY(logtool_cancel) fifo;
};
TAILQ_HEAD(logtool_cancelq, logtool_cancel);

/* Called for each cancel in log order once its request record was seen
 * or could no longer come; return 1 to keep the cancel (then free it with
 * logtool_cancel_free), 0 to let the join free it. */
typedef int	(*logtool_emit_cb)(struct logtool_cancel *c, void *arg);

struct logtool_wait;

/* Cancels waiting for their request record, and request records of
 * canceled requests waiting for their cancel record. */
struct logtool_join {
	struct logtool_cancelq	  fifo;
	struct logtool_cancel	**cbucket;
	struct logtool_wait	**wbucket;
	struct logtool_wait	 *whead, *wtail;
	size_t			  nbucket, ncancel, nwait;
	int64_t			  clock_us;	/* latest record time */
	uint64_t		  seq;		/* records fed */
	logtool_emit_cb		  emit;
	void			 *arg;
	uint64_t		  emitted;
};

void		 logtool_join_init(struct logtool_join *j, logtool_emit_cb emit,
		    void *arg);
/* Feeds a cancel or request record (others are ignored). */
void		 logtool_join_add(struct logtool_join *j,
		    const struct logtool_rec *r);
/* Emits cancels read more than age_us ago (tail -f), or all (age < 0). */
void		 logtool_join_flush(struct logtool_join *j, int64_t age_us);
void		 logtool_join_free(struct logtool_join *j);
/* A cancel copied out of a record, not joined yet. */
struct logtool_cancel *logtool_cancel_new(const struct logtool_rec *r);
void		 logtool_cancel_free(struct logtool_cancel *c);
/* Monotonic microseconds. */
int64_t		 logtool_mono_us(void);

/* ---- filters (logtool_filter.c) --------------------------------------- */

#define LOGTOOL_FILTER_MAX	32	/* values per filter option */

/* One option's accepted values; an empty list accepts everything. */
struct logtool_match {
	const char	*v[LOGTOOL_FILTER_MAX];
	int		 n;
	int		 glob;		/* values are fnmatch(3) patterns */
};

/* --kind, --hop, --phase, --direction, --via, --upstream, --model,
 * --protocol, --since and --until together. */
struct logtool_filter {
	struct logtool_match	 kind, hop, phase, direction, via, upstream;
	struct logtool_match	 model, protocol;
	int64_t			 since_us, until_us;	/* -1: open */
	int			 needs_join;		/* --model is set */
};

void		 logtool_filter_init(struct logtool_filter *f);
/* Adds a comma-separated list to the filter option named opt; -1 after
 * saying why when a value is unknown or a time cannot be read. */
int		 logtool_filter_option(struct logtool_filter *f,
		    const char *opt, const char *value);
/* Whether a record's time is inside --since/--until. */
int		 logtool_filter_time(const struct logtool_filter *f,
		    int64_t ts_us);
/* Whether a joined cancel passes every option. */
int		 logtool_filter_cancel(const struct logtool_filter *f,
		    const struct logtool_cancel *c);
/* Reads --since/--until: RFC 3339 (or a prefix of it), "now", or an age
 * like 90s, 15m, 2h, 7d; -1 when unreadable. */
int		 logtool_filter_parse_when(const char *s, int64_t *out);

/* ---- output helpers (logtool_out.c) ----------------------------------- */

/* Terminal abilities of standard output. */
struct logtool_term {
	int	 color;		/* ANSI colours */
	int	 utf8;		/* µ, arrows and block characters */
};
extern struct logtool_term logtool_term;

/* Decides colour: "auto" (a terminal and no NO_COLOR), "always", "never". */
int		 logtool_term_init(const char *color);
/* An ANSI sequence, or "" without colour. */
const char	*logtool_c(const char *code);
#define LOGTOOL_C_RESET		"0"
#define LOGTOOL_C_BOLD		"1"
#define LOGTOOL_C_DIM		"2"
#define LOGTOOL_C_RED		"31"
#define LOGTOOL_C_GREEN		"32"
#define LOGTOOL_C_YELLOW	"33"
#define LOGTOOL_C_BLUE		"34"
#define LOGTOOL_C_MAGENTA	"35"
#define LOGTOOL_C_CYAN		"36"
/* The colour of an origin kind. */
const char	*logtool_kind_color(const char *kind);

/* Human durations: "31µs", "1.25ms", "491ms", "2.4s", "3m05s"; "-" < 0. */
void		 logtool_fmt_us(char *buf, size_t len, int64_t us);
void		 logtool_fmt_ms(char *buf, size_t len, double ms);
/* A count with thin grouping: 1 234 567. */
void		 logtool_fmt_count(char *buf, size_t len, uint64_t n);
/* A time as 2026-11-22 02:20:25.850 (UTC). */
void		 logtool_fmt_time(char *buf, size_t len, int64_t us, int date);
/* An RFC 3339 UTC time with microseconds. */
void		 logtool_fmt_rfc3339(char *buf, size_t len, int64_t us);
/* Replaces control characters (a raw ESC in a log could drive the
 * terminal) with '?', in place. */
void		 logtool_safe(char *s, size_t n);
/* Display columns of a UTF-8 string. */
size_t		 logtool_width(const char *s);
/* Prints s padded with spaces to width columns (right-aligned if right). */
void		 logtool_pad(FILE *f, const char *s, size_t width, int right);

/* A text table: cells are copied; widths come from the content. */
struct logtool_table {
	int	  ncol;
	char	**cell;		/* row-major */
	int	  nrow, caprow;
	const char *align;	/* per column: 'l' or 'r' */
	const char *color;	/* per row: colour of a header row */
};
void		 logtool_table_init(struct logtool_table *t, int ncol,
		    const char *align);
/* Adds a row of ncol cells (NULL prints as "-"). */
void		 logtool_table_row(struct logtool_table *t,
		    const char *const *cells);
void		 logtool_table_print(struct logtool_table *t, FILE *f,
		    const char *indent);
void		 logtool_table_free(struct logtool_table *t);

/* A log-linear histogram: exact below 256, then within 1/128. */
#define LOGTOOL_HIST_BUCKETS	(256 + 33 * 128)
struct logtool_hist {
	uint64_t	*b;		/* NULL until the first value */
	uint64_t	 n, sum, min, max;
};
void		 logtool_hist_add(struct logtool_hist *h, uint64_t v);
/* The nearest-rank percentile (p in 0..100); 0 when empty. */
uint64_t	 logtool_hist_pct(const struct logtool_hist *h, double p);
void		 logtool_hist_free(struct logtool_hist *h);

/* Fixed bars for drawing: bar i holds [edges[i], edges[i + 1]); the last
 * bar holds everything from its edge up. */
#define LOGTOOL_BARS_MAX	24
struct logtool_bars {
	const uint64_t	*edges;
	int		 n;
	int		 us;		/* edges are µs (else ms) */
	uint64_t	 count[LOGTOOL_BARS_MAX];
	uint64_t	 total;
};
void		 logtool_bars_add(struct logtool_bars *b, uint64_t v);
void		 logtool_bars_label(const struct logtool_bars *b, int i,
		    char *buf, size_t len);
/* Draws the bars on a terminal, with an extra row (when extra > 0). */
void		 logtool_bars_draw(FILE *f, const struct logtool_bars *b,
		    uint64_t extra, const char *extra_label,
		    const char *indent);

/* ---- commands --------------------------------------------------------- */

/* Options shared by the commands after parsing. */
struct logtool_opts {
	struct logtool_filter	 filter;
	int			 json;
	int			 follow;
	long			 tail_n;	/* tail: cancels shown first */
	const char		*html;		/* report --html FILE */
	int			 top;		/* report: slowest cascades */
	const char		*by;		/* stats --by DIM */
	const char		*id;		/* trace ID */
	int64_t			 skew_us;	/* trace: order tolerance */
	char			**files;
	int			  nfiles;
};

int		 logtool_cmd_trace(struct logtool_opts *o);
int		 logtool_cmd_cancels(struct logtool_opts *o);
int		 logtool_cmd_tail(struct logtool_opts *o);
int		 logtool_cmd_stats(struct logtool_opts *o);
int		 logtool_cmd_report(struct logtool_opts *o);

/* stats, shared with the HTML report (logtool_stats.c). */
struct logtool_stats;
struct logtool_stats *logtool_stats_new(void);
/* Feeds one record: cancels go through the join j (whose emit calls
 * logtool_stats_cancel), requests and notes are counted; rf is f without
 * the options a request record cannot answer. */
void		 logtool_stats_record(struct logtool_stats *st,
		    struct logtool_join *j, const struct logtool_filter *f,
		    const struct logtool_filter *rf, const struct logtool_rec *r);
void		 logtool_stats_cancel(struct logtool_stats *st,
		    const struct logtool_cancel *c);
void		 logtool_stats_free(struct logtool_stats *st);
/* f without --kind, --phase, --direction and --via. */
void		 logtool_filter_for_requests(struct logtool_filter *rf,
		    const struct logtool_filter *f);
/* The detect-to-close histogram of all cancels, the cancel count and the
 * count of cancels with no other side to close. */
const struct logtool_hist *logtool_stats_d2c(const struct logtool_stats *st,
		    uint64_t *ncancel, uint64_t *nnull);
/* The fixed detect-to-close bars of all cancels. */
const struct logtool_bars *logtool_stats_d2c_bars(
		    const struct logtool_stats *st);

/* The totals of the statistics. */
struct logtool_stats_summary {
	uint64_t	 requests, completed, canceled, error;
	uint64_t	 cancels, d2c_null;
	uint64_t	 notes_applied, notes_other, notes_failed;
	int64_t		 first_us, last_us;	/* -1 when nothing was read */
};
void		 logtool_stats_summary(const struct logtool_stats *st,
		    struct logtool_stats_summary *out);

/* One origin kind in the report's summary. */
struct logtool_kind_row {
	const char	*name;
	uint64_t	 cancels, d2c_null;
	int		 has_d2c;
	uint64_t	 p50, p99, max, elapsed_p50;
};
/* The kinds, most cancels first, in a calloc'ed array; the count or -1. */
int		 logtool_stats_kinds(const struct logtool_stats *st,
		    struct logtool_kind_row **rows);

/* The line of one cancel in "cancels" (a table row) and "tail" form. */
void		 logtool_cancel_print_row(FILE *f, const struct logtool_cancel *c);
void		 logtool_cancel_print_header(FILE *f);
void		 logtool_cancel_print_line(FILE *f, const struct logtool_cancel *c);
/* The raw record with "model" (and "usage") from the join appended. */
void		 logtool_cancel_print_json(FILE *f, const struct logtool_cancel *c);

#endif
