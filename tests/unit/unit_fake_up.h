/* unit_fake_up: a fake upstream protocol for unit tests that drive
 * sessions through the worker's upstream_proto seam. What it is asked goes
 * into calls as "verb;verb;..."; a stream is "connected" when the test
 * says so (session_upstream_connected). Header-only, like unit_worker.h. */
#ifndef CANCELPROXY_UNIT_FAKE_UP_H
#define CANCELPROXY_UNIT_FAKE_UP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proxy/session.h"
#include "upstream/upstream.h"

static int	 unit_starts;		/* streams the fake began */
static int	 unit_start_names;	/* note "start NAME", not "start" */

/* What the fake upstream was asked, as "verb;verb;...". */
static char	 calls[4096];

static void
note(const char *fmt, ...)
{
	size_t	 n = strlen(calls);
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(calls + n, sizeof(calls) - n, fmt, ap);
	va_end(ap);
	n = strlen(calls);
	if (n + 1 < sizeof(calls)) {
		calls[n] = ';';
		calls[n + 1] = '\0';
	}
}

static const struct upstream_proto fake_up;

static int
fake_start(struct session *s)
{
	struct upstream_conn *u = calloc(1, sizeof(*u));

	cr_assert_not_null(u);
	if (unit_start_names)
		note("start %s", s->up_conf->name);
	else
		note("start");
	unit_starts++;
	u->proto = &fake_up;
	u->w = s->w;
	u->s = s;
	u->fd = -1;
	s->up = u;
	return 0;
}

static void
fake_send_request(struct session *s)
{
	note("send");
}

static void
fake_pause(struct session *s)
{
	note("pause");
	s->paused = 1;
}

static void
fake_resume(struct session *s)
{
	note("resume");
	s->paused = 0;
}

static void
fake_drop(struct session *s, const char *verb)
{
	note("%s", verb);
	free(s->up);
	s->up = NULL;
}

static void
fake_cancel(struct session *s)
{
	fake_drop(s, "cancel");
}

static void
fake_release(struct session *s)
{
	fake_drop(s, "release");
}

static const struct upstream_proto fake_up = {
	.name = "fake",
	.start = fake_start,
	.send_request = fake_send_request,
	.pause = fake_pause,
	.resume = fake_resume,
	.cancel = fake_cancel,
	.release = fake_release,
};

#endif
