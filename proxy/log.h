/* log: the one place output goes; JSON lines, one write(2) per record,
 * with every configured secret redacted before a byte leaves. */
#ifndef CANCELPROXY_LOG_H
#define CANCELPROXY_LOG_H

#include <stdint.h>
#include <time.h>

#include "proxy/jsonw.h"

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

const char	*log_level_name(enum log_level level);
int		 log_level_parse(const char *name, enum log_level *out);

/* Opens the log ("-" is standard output); safe to call again to switch. */
int		 log_open(const char *path, const char *hop, enum log_level level);
/* Reopens the same path (after logrotate moved it). */
int		 log_reopen(void);
void		 log_close(void);
const char	*log_hop(void);
int		 log_enabled(enum log_level level);

/* Strings that must never appear in a record (API keys, tokens, secrets). */
void		 log_secrets_set(const char *const *secrets, int n);

/* Starts a record with ts, level, hop and event; add members, then end. */
void		 log_record_begin(struct jsonw *w, enum log_level level,
		    const char *event);
/* Closes the record and writes it with a single write(2). */
void		 log_record_end(struct jsonw *w);
/* Closes the record without writing, so that more records can follow in
 * the same buffer; log_write() then writes them all with one write(2). */
void		 log_record_close(struct jsonw *w);
void		 log_write(struct jsonw *w);
/* Scrubs configured secrets from a copy of records kept elsewhere (the
 * admin API's recent cancels), as log_write() does before writing. */
void		 log_scrub(char *buf, size_t len);

/* A record with a human message, printf-style. */
void		 log_msg(enum log_level level, const char *event,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* RFC 3339 UTC with microseconds: 2026-11-22T01:53:54.123456Z. */
void		 log_format_ts(char *buf, size_t len, const struct timespec *ts);

/* Monotonic microseconds, for durations. */
uint64_t	 clock_mono_us(void);

#endif
