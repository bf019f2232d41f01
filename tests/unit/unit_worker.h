/* unit_worker: a worker for unit tests that drive sessions without a
 * process — the config loaded from text, its runtime, the log in a temp
 * file, worker_init() — and its teardown. Header-only: every unit test is
 * a binary of its own. */
#ifndef CANCELPROXY_UNIT_WORKER_H
#define CANCELPROXY_UNIT_WORKER_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "proxy/log.h"
#include "proxy/proxy.h"

/* Sets up w on the config text; the paths are mkstemp templates (arrays
 * the caller owns) for the config file and the log. */
static inline void
unit_worker_init(struct worker *w, const char *conf_text, char *confpath,
    char *logpath)
{
	struct conf	*conf;
	struct runtime	*rt;
	char		 err[512];
	size_t		 len = strlen(conf_text);
	int		 fd;

	cr_assert_neq(fd = mkstemp(confpath), -1);
	cr_assert_eq(write(fd, conf_text, len), (ssize_t)len);
	close(fd);
	cr_assert_eq(conf_load(confpath, &conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(rt = runtime_new(conf, err, sizeof(err)), "%s", err);
	conf_unref(conf);
	cr_assert_neq(fd = mkstemp(logpath), -1);
	close(fd);
	cr_assert_eq(log_open(logpath, "unit", LOG_LEVEL_INFO), 0);
	memset(w, 0, sizeof(*w));
	cr_assert_eq(worker_init(w, 0, rt), 0);
	runtime_unref(rt);
}

/* Frees the worker and removes the two files. */
static inline void
unit_worker_fini(struct worker *w, const char *confpath, const char *logpath)
{
	worker_fini(w);
	log_close();
	unlink(logpath);
	unlink(confpath);
}

#endif
