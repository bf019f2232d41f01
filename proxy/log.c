/* log: JSON-lines writer shared by the daemon, the tools and the tests. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* memmem */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/log.h"

#define LOG_MAX_SECRETS	64

/*
 * Records are written without the lock: fd is read atomically, and a
 * reopen replaces the file behind the same descriptor number (dup3), so a
 * writer never holds a closed or reused descriptor. Two workers no longer
 * wait for each other's write(2). Redaction takes the lock, and "redact"
 * stays set while the list changes, so no record slips past it.
 */
static struct {
	pthread_mutex_t	 lock;		/* guards path, secrets and fd swaps */
	int		 fd;		/* atomic */
	int		 redact;	/* atomic: secrets set or changing */
	int		 serial;	/* atomic: not a regular file (a pipe
					 * mixes writes over PIPE_BUF): lock */
	char		*path;
	char		 hop[128];
	enum log_level	 level;
	char		*secrets[LOG_MAX_SECRETS];
	int		 nsecrets;
} logger = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.fd = 1,
	.serial = 1,
	.hop = "cancelproxy",
	.level = LOG_LEVEL_INFO,
};

static const char *const level_names[] = { "debug", "info", "warn", "error" };

const char *
log_level_name(enum log_level level)
{
	if ((unsigned)level > LOG_LEVEL_ERROR)
		return "info";
	return level_names[level];
}

/* Parses "debug", "info", "warn" or "error". */
int
log_level_parse(const char *name, enum log_level *out)
{
	int	 i;

	for (i = 0; i <= LOG_LEVEL_ERROR; i++)
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

static int
log_open_path(const char *path)
{
	if (strcmp(path, "-") == 0)
		return dup(1);
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* Makes fd the log (lock held). A log file already open keeps its
 * descriptor number, now for the new file; stdout or stderr are left
 * open and the number changes. */
static void
log_swap_fd(int fd)
{
	int	 old = __atomic_load_n(&logger.fd, __ATOMIC_ACQUIRE);
	struct stat st;

	__atomic_store_n(&logger.serial, fstat(fd, &st) == -1 ||
	    !S_ISREG(st.st_mode), __ATOMIC_RELEASE);
	if (old > 2 && dup3(fd, old, O_CLOEXEC) != -1) {
		close(fd);
		return;
	}
	__atomic_store_n(&logger.fd, fd, __ATOMIC_RELEASE);
	if (old > 2)
		close(old);	/* dup3 failed: a racing writer may lose one */
}

/* Opens the log; the previous one, if any, is replaced. */
int
log_open(const char *path, const char *hop, enum log_level level)
{
	int	 fd;
	char	*copy;

	if ((fd = log_open_path(path)) == -1)
		return -1;
	if ((copy = strdup(path)) == NULL) {
		close(fd);
		return -1;
	}
	pthread_mutex_lock(&logger.lock);
	log_swap_fd(fd);
	free(logger.path);
	logger.path = copy;
	if (hop != NULL)
		snprintf(logger.hop, sizeof(logger.hop), "%s", hop);
	logger.level = level;
	pthread_mutex_unlock(&logger.lock);
	return 0;
}

/* Reopens the current path so that a rotated file is let go. */
int
log_reopen(void)
{
	int	 fd;

	pthread_mutex_lock(&logger.lock);
	if (logger.path == NULL || (fd = log_open_path(logger.path)) == -1) {
		pthread_mutex_unlock(&logger.lock);
		return -1;
	}
	log_swap_fd(fd);
	pthread_mutex_unlock(&logger.lock);
	return 0;
}

void
log_close(void)
{
	int	 i;

	pthread_mutex_lock(&logger.lock);
	/* At exit, once no worker writes. */
	if (logger.fd > 2)
		close(logger.fd);
	__atomic_store_n(&logger.fd, 1, __ATOMIC_RELEASE);
	free(logger.path);
	logger.path = NULL;
	for (i = 0; i < logger.nsecrets; i++)
		free(logger.secrets[i]);
	logger.nsecrets = 0;
	pthread_mutex_unlock(&logger.lock);
}

const char *
log_hop(void)
{
	return logger.hop;
}

int
log_enabled(enum log_level level)
{
	return level >= logger.level;
}

/* Replaces the redaction list; strings shorter than 4 bytes are ignored. */
void
log_secrets_set(const char *const *secrets, int n)
{
	int	 i;

	pthread_mutex_lock(&logger.lock);
	__atomic_store_n(&logger.redact, 1, __ATOMIC_RELEASE);
	for (i = 0; i < logger.nsecrets; i++)
		free(logger.secrets[i]);
	logger.nsecrets = 0;
	for (i = 0; i < n && logger.nsecrets < LOG_MAX_SECRETS; i++) {
		if (secrets[i] == NULL || strlen(secrets[i]) < 4)
			continue;
		if ((logger.secrets[logger.nsecrets] = strdup(secrets[i])))
			logger.nsecrets++;
	}
	__atomic_store_n(&logger.redact, logger.nsecrets > 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&logger.lock);
}

void
log_format_ts(char *buf, size_t len, const struct timespec *ts)
{
	struct tm	 tm;

	gmtime_r(&ts->tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000);
}

uint64_t
clock_mono_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
log_record_begin(struct jsonw *w, enum log_level level, const char *event)
{
	static __thread time_t	 cached_sec = -1;
	static __thread char	 cached[32];	/* "2026-11-22T01:53:54." */
	struct timespec		 now;
	char			 ts[40];
	long			 us;
	int			 i;

	clock_gettime(CLOCK_REALTIME, &now);
	/* The date part changes once a second; format it once a second. */
	if (now.tv_sec != cached_sec) {
		log_format_ts(ts, sizeof(ts), &now);
		memcpy(cached, ts, 20);
		cached[20] = '\0';
		cached_sec = now.tv_sec;
	}
	memcpy(ts, cached, 20);
	us = now.tv_nsec / 1000;
	for (i = 25; i >= 20; i--) {
		ts[i] = (char)('0' + us % 10);
		us /= 10;
	}
	ts[26] = 'Z';
	ts[27] = '\0';
	jsonw_obj_open(w);
	jsonw_kstr(w, "ts", ts);
	jsonw_kstr(w, "level", log_level_name(level));
	jsonw_kstr(w, "hop", logger.hop);
	jsonw_kstr(w, "event", event);
}

/* Overwrites each secret in place; the record keeps its length and shape. */
static void
log_redact(char *buf, size_t len)
{
	static const char mask[] = "[redacted]";
	int	 i;

	for (i = 0; i < logger.nsecrets; i++) {
		const char *s = logger.secrets[i];
		size_t slen = strlen(s);
		char *p = buf, *end = buf + len;

		while ((p = memmem(p, (size_t)(end - p), s, slen)) != NULL) {
			size_t k;

			for (k = 0; k < slen; k++)
				p[k] = k < sizeof(mask) - 1 ? mask[k] : '*';
			p += slen;
		}
	}
}

void
log_record_close(struct jsonw *w)
{
	jsonw_obj_close(w);
	jsonw_append(w, "\n", 1);
	w->need_comma = 0;
}

void
log_record_end(struct jsonw *w)
{
	log_record_close(w);
	log_write(w);
}

void
log_scrub(char *buf, size_t len)
{
	if (!__atomic_load_n(&logger.redact, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&logger.lock);
	if (logger.nsecrets)
		log_redact(buf, len);
	pthread_mutex_unlock(&logger.lock);
}

/* Writes whole records (each ends in a newline) with one write(2). */
void
log_write(struct jsonw *w)
{
	size_t	 off = 0;
	ssize_t	 n;
	int	 fd, locked;

	if (w->oom || w->len == 0)
		return;
	locked = __atomic_load_n(&logger.redact, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&logger.serial, __ATOMIC_ACQUIRE);
	if (locked) {
		pthread_mutex_lock(&logger.lock);
		if (logger.nsecrets)
			log_redact(w->buf, w->len);
	}
	fd = __atomic_load_n(&logger.fd, __ATOMIC_ACQUIRE);
	/* One write(2) per record (O_APPEND: whole records, never mixed);
	 * loop only if the kernel took part of it. */
	while (off < w->len) {
		n = write(fd, w->buf + off, w->len - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)n;
	}
	if (locked)
		pthread_mutex_unlock(&logger.lock);
}

void
log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
	struct jsonw	 w;
	char		 stack[1024], msg[768];
	va_list		 ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	jsonw_init(&w, stack, sizeof(stack));
	log_record_begin(&w, level, event);
	jsonw_kstr(&w, "message", msg);
	log_record_end(&w);
	jsonw_free(&w);
}
