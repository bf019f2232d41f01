/* logtool_filter: the filter options shared by the commands (--kind, --hop,
 * --phase, --direction, --via, --upstream, --model, --protocol, --since,
 * --until), with
 * the names checked against the ones the proxy writes. */
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cancel_chain/cancel_chain.h"
#include "tools/log/logtool.h"

/* Starts a filter that accepts everything. */
void
logtool_filter_init(struct logtool_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->since_us = f->until_us = -1;
}

/* Whether name is one the proxy writes for this option; lists them when
 * it is not. */
static int
filter_known(const char *opt, const char *name)
{
	enum cancel_kind	 k;
	const char		*v;
	int			 i;

	if (strcmp(opt, "kind") == 0) {
		if (cancel_kind_parse(name, &k) == 0)
			return 1;
		fprintf(stderr, "cancelproxy-log: --kind %s: not an origin "
		    "kind; one of:", name);
		for (i = 0; i <= CANCEL_KIND_UNKNOWN; i++)
			fprintf(stderr, " %s", cancel_kind_name(i));
	} else if (strcmp(opt, "phase") == 0) {
		for (i = 0; i <= PHASE_STREAMING; i++)
			if (strcmp(cancel_phase_name(i), name) == 0)
				return 1;
		fprintf(stderr, "cancelproxy-log: --phase %s: not a phase; "
		    "one of:", name);
		for (i = 0; i <= PHASE_STREAMING; i++)
			fprintf(stderr, " %s", cancel_phase_name(i));
	} else if (strcmp(opt, "via") == 0) {
		for (i = 0; strcmp(v = cancel_via_name(i), "unknown") != 0; i++)
			if (strcmp(v, name) == 0)
				return 1;
		fprintf(stderr, "cancelproxy-log: --via %s: not a way of "
		    "noticing; one of:", name);
		for (i = 0; strcmp(v = cancel_via_name(i), "unknown") != 0; i++)
			fprintf(stderr, " %s", v);
	} else if (strcmp(opt, "direction") == 0) {
		if (strcmp(name, "upstream") == 0 ||
		    strcmp(name, "downstream") == 0)
			return 1;
		fprintf(stderr, "cancelproxy-log: --direction %s: one of: "
		    "upstream downstream", name);
	} else if (strcmp(opt, "protocol") == 0) {
		if (strcmp(name, "h2") == 0 || strcmp(name, "http/1.1") == 0)
			return 1;
		fprintf(stderr, "cancelproxy-log: --protocol %s: one of: "
		    "h2 http/1.1", name);
	} else
		return 1;
	fputc('\n', stderr);
	return 0;
}

/* Adds a comma-separated list to one option. */
static int
filter_list(struct logtool_match *m, const char *opt, const char *value,
    int check)
{
	const char	*p = value, *comma;
	size_t		 n;

	if (*value == '\0') {
		fprintf(stderr, "cancelproxy-log: --%s: empty value\n", opt);
		return -1;
	}
	for (;;) {
		comma = strchr(p, ',');
		n = comma ? (size_t)(comma - p) : strlen(p);
		if (n == 0) {
			fprintf(stderr, "cancelproxy-log: --%s %s: empty "
			    "name in the list\n", opt, value);
			return -1;
		}
		if (m->n == LOGTOOL_FILTER_MAX) {
			fprintf(stderr, "cancelproxy-log: --%s: more than %d "
			    "values\n", opt, LOGTOOL_FILTER_MAX);
			return -1;
		}
		m->v[m->n] = logtool_intern(p, n);
		if (check && !filter_known(opt, m->v[m->n]))
			return -1;
		if (strpbrk(m->v[m->n], "*?[") != NULL)
			m->glob = 1;
		m->n++;
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

/* Reads --since/--until. */
int
logtool_filter_parse_when(const char *s, int64_t *out)
{
	struct timespec	 now;
	char		*end;
	double		 v;
	int64_t		 unit;

	clock_gettime(CLOCK_REALTIME, &now);
	if (strcmp(s, "now") == 0) {
		*out = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
		return 0;
	}
	if (logtool_parse_time(s, strlen(s), out) == 0)
		return 0;
	/* An age: 90s, 15m, 2h, 7d (ago). */
	if (!isdigit((unsigned char)s[0]))
		return -1;
	v = strtod(s, &end);
	if (end == s || end[0] == '\0' || end[1] != '\0')
		return -1;
	switch (end[0]) {
	case 's': unit = 1000000LL; break;
	case 'm': unit = 60 * 1000000LL; break;
	case 'h': unit = 3600 * 1000000LL; break;
	case 'd': unit = 86400 * 1000000LL; break;
	default: return -1;
	}
	*out = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000 -
	    (int64_t)(v * (double)unit);
	return 0;
}

/* Adds a filter option's value. */
int
logtool_filter_option(struct logtool_filter *f, const char *opt,
    const char *value)
{
	int64_t	 t;

	if (strcmp(opt, "kind") == 0)
		return filter_list(&f->kind, opt, value, 1);
	if (strcmp(opt, "hop") == 0)
		return filter_list(&f->hop, opt, value, 0);
	if (strcmp(opt, "phase") == 0)
		return filter_list(&f->phase, opt, value, 1);
	if (strcmp(opt, "direction") == 0)
		return filter_list(&f->direction, opt, value, 1);
	if (strcmp(opt, "via") == 0)
		return filter_list(&f->via, opt, value, 1);
	if (strcmp(opt, "upstream") == 0)
		return filter_list(&f->upstream, opt, value, 0);
	if (strcmp(opt, "protocol") == 0)
		return filter_list(&f->protocol, opt, value, 1);
	if (strcmp(opt, "model") == 0) {
		f->needs_join = 1;
		return filter_list(&f->model, opt, value, 0);
	}
	if (strcmp(opt, "since") == 0 || strcmp(opt, "until") == 0) {
		if (logtool_filter_parse_when(value, &t) == -1) {
			fprintf(stderr, "cancelproxy-log: --%s %s: expected "
			    "a time (2026-11-22T02:20:25Z, 2026-11-22, now) "
			    "or an age (90s, 15m, 2h, 7d)\n", opt, value);
			return -1;
		}
		if (opt[0] == 's')
			f->since_us = t;
		else
			f->until_us = t;
		return 0;
	}
	fprintf(stderr, "cancelproxy-log: --%s: not a filter\n", opt);
	return -1;
}

/* Whether an interned value passes one option (NULL passes only "-"). */
static int
filter_one(const struct logtool_match *m, const char *v)
{
	int	 i;

	if (m->n == 0)
		return 1;
	if (v == NULL)
		v = logtool_intern("-", 1);
	for (i = 0; i < m->n; i++) {
		if (m->v[i] == v)
			return 1;
		if (m->glob && fnmatch(m->v[i], v, 0) == 0)
			return 1;
	}
	return 0;
}

/* Whether a record's time is inside --since (inclusive) and --until
 * (exclusive). */
int
logtool_filter_time(const struct logtool_filter *f, int64_t ts_us)
{
	if (f->since_us >= 0 && ts_us < f->since_us)
		return 0;
	if (f->until_us >= 0 && ts_us >= f->until_us)
		return 0;
	return 1;
}

/* Whether a joined cancel passes every option. */
int
logtool_filter_cancel(const struct logtool_filter *f,
    const struct logtool_cancel *c)
{
	return logtool_filter_time(f, c->ts_us) &&
	    filter_one(&f->kind, c->kind) &&
	    filter_one(&f->hop, c->hop) &&
	    filter_one(&f->phase, c->phase) &&
	    filter_one(&f->direction, c->direction) &&
	    filter_one(&f->via, c->via) &&
	    filter_one(&f->upstream, c->upstream) &&
	    filter_one(&f->model, c->model) &&
	    filter_one(&f->protocol, c->protocol);
}
