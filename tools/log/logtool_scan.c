/* logtool_scan: a hand-written scanner that reads the few fields of a log
 * record this tool needs, in one pass over the line, without building a
 * tree; strings are unescaped only when they hold a backslash. */
#include <stdlib.h>
#include <string.h>

#include "tools/log/logtool.h"

#define SCAN_DEPTH_MAX	64	/* deeper values make a line junk */

/* The scanner's position in one line. */
struct scan {
	const char		*p, *end;
	struct logtool_scratch	*s;
};

static const char *const logtool_event_names[] = {
	"other", "cancel", "request", "note", "note_failed",
};

/* The name of an event this tool knows. */
const char *
logtool_event_name(enum logtool_event ev)
{
	if ((unsigned)ev < sizeof(logtool_event_names) /
	    sizeof(logtool_event_names[0]))
		return logtool_event_names[ev];
	return "other";
}

/* 1 when the string equals the NUL-terminated s. */
int
logtool_str_eq(struct logtool_str a, const char *s)
{
	size_t	 n = strlen(s);

	return a.p != NULL && a.n == n && memcmp(a.p, s, n) == 0;
}

/* Frees the scratch buffer. */
void
logtool_scratch_free(struct logtool_scratch *s)
{
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
}

/* Skips JSON whitespace. */
static void
scan_ws(struct scan *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
	    *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

/* Four hex digits of a \u escape. */
static int
scan_hex4(const char *p, unsigned *out)
{
	unsigned	 v = 0;
	int		 i;

	for (i = 0; i < 4; i++) {
		v <<= 4;
		if (p[i] >= '0' && p[i] <= '9')
			v |= (unsigned)(p[i] - '0');
		else if (p[i] >= 'a' && p[i] <= 'f')
			v |= (unsigned)(p[i] - 'a' + 10);
		else if (p[i] >= 'A' && p[i] <= 'F')
			v |= (unsigned)(p[i] - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Writes a code point as UTF-8 at d; the bytes written. */
static size_t
scan_utf8(char *d, unsigned cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xc0 | (cp >> 6));
		d[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xe0 | (cp >> 12));
		d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		d[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	d[0] = (char)(0xf0 | (cp >> 18));
	d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	d[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Unescapes the string whose body starts at c->p into the scratch buffer
 * and leaves c->p past the closing quote. The scratch was sized to the
 * line before scanning began, and unescaping never grows a string, so
 * earlier strings of the record stay where they are.
 */
static int
scan_string_slow(struct scan *c, struct logtool_str *out)
{
	char		*d = c->s->buf + c->s->len, *d0 = d;
	const char	*p = c->p;
	unsigned	 cp, lo;

	while (p < c->end) {
		if (*p == '"') {
			c->p = p + 1;
			if (out != NULL) {
				out->p = d0;
				out->n = (size_t)(d - d0);
				c->s->len += out->n;
			}
			return 0;
		}
		if (*p != '\\') {
			*d++ = *p++;
			continue;
		}
		if (++p >= c->end)
			return -1;
		switch (*p) {
		case '"': case '\\': case '/':
			*d++ = *p++;
			break;
		case 'b': case 'f': case 'n': case 'r': case 't':
			*d++ = '?';	/* no control characters: see
					 * logtool_safe */
			p++;
			break;
		case 'u':
			if (c->end - p < 5 || scan_hex4(p + 1, &cp) == -1)
				return -1;
			p += 5;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (c->end - p < 6 || p[0] != '\\' ||
				    p[1] != 'u' || scan_hex4(p + 2, &lo) == -1 ||
				    lo < 0xdc00 || lo > 0xdfff)
					return -1;
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff)
				return -1;
			if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
				cp = '?';
			d += scan_utf8(d, cp);
			break;
		default:
			return -1;
		}
	}
	return -1;
}

/* Scans a string at c->p (a quote); out (may be NULL) gets its value.
 * Escaped control characters become '?' (raw ones are left to the
 * printing side: see logtool_safe). */
static int
scan_string(struct scan *c, struct logtool_str *out)
{
	const char	*body = c->p + 1, *q;

	q = memchr(body, '"', (size_t)(c->end - body));
	if (q == NULL)
		return -1;
	if (memchr(body, '\\', (size_t)(q - body)) == NULL) {
		if (out != NULL) {
			out->p = body;
			out->n = (size_t)(q - body);
		}
		c->p = q + 1;
		return 0;
	}
	c->p = body;
	if (out == NULL) {
		/* Skip: find the quote that no odd run of backslashes
		 * escapes, without unescaping. */
		for (;;) {
			const char *b;
			size_t	    nb = 0;

			for (b = q; b > body && b[-1] == '\\'; b--)
				nb++;
			if (nb % 2 == 0) {
				c->p = q + 1;
				return 0;
			}
			q = memchr(q + 1, '"', (size_t)(c->end - q - 1));
			if (q == NULL)
				return -1;
		}
	}
	return scan_string_slow(c, out);
}

/* Scans a JSON number into *out; fast for the integers and short
 * decimals the proxy writes, strtod(3) for the rest. */
static int
scan_number(struct scan *c, double *out)
{
	static const double pow10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6,
	    1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
	    1e18 };
	const char	*p = c->p, *start = c->p;
	uint64_t	 m = 0;
	int		 neg = 0, digits = 0, frac = 0, slow = 0;
	char		 tmp[64];

	if (p < c->end && *p == '-') {
		neg = 1;
		p++;
	}
	if (p >= c->end || *p < '0' || *p > '9')
		return -1;
	if (*p == '0') {
		p++;
		digits = 1;
	} else {
		while (p < c->end && *p >= '0' && *p <= '9') {
			if (++digits > 18)
				slow = 1;
			m = m * 10 + (uint64_t)(*p++ - '0');
		}
	}
	if (p < c->end && *p == '.') {
		p++;
		if (p >= c->end || *p < '0' || *p > '9')
			return -1;
		while (p < c->end && *p >= '0' && *p <= '9') {
			if (++digits > 18)
				slow = 1;
			frac++;
			m = m * 10 + (uint64_t)(*p++ - '0');
		}
	}
	if (p < c->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < c->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= c->end || *p < '0' || *p > '9')
			return -1;
		while (p < c->end && *p >= '0' && *p <= '9')
			p++;
		slow = 1;
	}
	c->p = p;
	if (!slow) {
		*out = (double)m / pow10[frac];
		if (neg)
			*out = -*out;
		return 0;
	}
	if ((size_t)(p - start) >= sizeof(tmp))
		return -1;
	memcpy(tmp, start, (size_t)(p - start));
	tmp[p - start] = '\0';
	*out = strtod(tmp, NULL);
	return 0;
}

/* Matches a literal (true, false, null) at c->p. */
static int
scan_literal(struct scan *c, const char *lit, size_t n)
{
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return -1;
	c->p += n;
	return 0;
}

/* Skips any value, checking its grammar. */
static int
scan_skip(struct scan *c, int depth)
{
	double	 d;
	char	 close;

	if (c->p >= c->end)
		return -1;
	switch (*c->p) {
	case '"':
		return scan_string(c, NULL);
	case 't':
		return scan_literal(c, "true", 4);
	case 'f':
		return scan_literal(c, "false", 5);
	case 'n':
		return scan_literal(c, "null", 4);
	case '{':
	case '[':
		if (depth >= SCAN_DEPTH_MAX)
			return -1;
		close = *c->p == '{' ? '}' : ']';
		c->p++;
		scan_ws(c);
		if (c->p < c->end && *c->p == close) {
			c->p++;
			return 0;
		}
		for (;;) {
			if (close == '}') {
				if (c->p >= c->end || *c->p != '"' ||
				    scan_string(c, NULL) == -1)
					return -1;
				scan_ws(c);
				if (c->p >= c->end || *c->p++ != ':')
					return -1;
				scan_ws(c);
			}
			if (scan_skip(c, depth + 1) == -1)
				return -1;
			scan_ws(c);
			if (c->p >= c->end)
				return -1;
			if (*c->p == close) {
				c->p++;
				return 0;
			}
			if (*c->p++ != ',')
				return -1;
			scan_ws(c);
		}
	default:
		return scan_number(c, &d);
	}
}

/* A string member: the value if it is a string; null and others skip. */
static int
scan_str_member(struct scan *c, struct logtool_str *out)
{
	if (c->p < c->end && *c->p == '"')
		return scan_string(c, out);
	return scan_skip(c, 1);
}

/* A number member: the value if it is a number, else -1 stays. */
static int
scan_num_member(struct scan *c, double *out)
{
	if (c->p < c->end && (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')))
		return scan_number(c, out);
	return scan_skip(c, 1);
}

/* An integer member (rounded toward zero). */
static int
scan_int_member(struct scan *c, int64_t *out)
{
	double	 d = -1;

	if (scan_num_member(c, &d) == -1)
		return -1;
	*out = d < -9e18 || d > 9e18 ? -1 : (int64_t)d;
	return 0;
}

/* Calls member(c, key, arg) for each member of the object at c->p. */
static int
scan_object(struct scan *c, int (*member)(struct scan *, struct logtool_str,
    void *), void *arg)
{
	struct logtool_str	 key;

	if (c->p >= c->end || *c->p != '{')
		return -1;
	c->p++;
	scan_ws(c);
	if (c->p < c->end && *c->p == '}') {
		c->p++;
		return 0;
	}
	for (;;) {
		if (c->p >= c->end || *c->p != '"' || scan_string(c, &key) == -1)
			return -1;
		scan_ws(c);
		if (c->p >= c->end || *c->p++ != ':')
			return -1;
		scan_ws(c);
		if (member(c, key, arg) == -1)
			return -1;
		scan_ws(c);
		if (c->p >= c->end)
			return -1;
		if (*c->p == '}') {
			c->p++;
			return 0;
		}
		if (*c->p++ != ',')
			return -1;
		scan_ws(c);
	}
}

#define KEY(k, lit)	((k).n == sizeof(lit) - 1 && \
			    memcmp((k).p, lit, sizeof(lit) - 1) == 0)

/* A member of "origin": kind and hop. */
static int
scan_origin_member(struct scan *c, struct logtool_str key, void *arg)
{
	struct logtool_rec *r = arg;

	if (KEY(key, "kind"))
		return scan_str_member(c, &r->kind);
	if (KEY(key, "hop"))
		return scan_str_member(c, &r->origin_hop);
	return scan_skip(c, 2);
}

/* A member of "usage": the token counts. */
static int
scan_usage_member(struct scan *c, struct logtool_str key, void *arg)
{
	struct logtool_rec *r = arg;

	if (KEY(key, "prompt_tokens"))
		return scan_int_member(c, &r->prompt_tokens);
	if (KEY(key, "completion_tokens"))
		return scan_int_member(c, &r->completion_tokens);
	if (KEY(key, "total_tokens"))
		return scan_int_member(c, &r->total_tokens);
	return scan_skip(c, 2);
}

/* "cancel_path": an array of hop names (more than LOGTOOL_PATH_MAX are
 * dropped from the middle and marked truncated). */
static int
scan_path(struct scan *c, struct logtool_rec *r)
{
	struct logtool_str	 s;

	if (c->p >= c->end || *c->p != '[')
		return scan_skip(c, 1);
	c->p++;
	scan_ws(c);
	if (c->p < c->end && *c->p == ']') {
		c->p++;
		return 0;
	}
	for (;;) {
		if (c->p < c->end && *c->p == '"') {
			if (scan_string(c, &s) == -1)
				return -1;
			if (r->npath < LOGTOOL_PATH_MAX)
				r->path[r->npath++] = s;
			else {
				r->path[LOGTOOL_PATH_MAX - 1] = s;
				r->path_truncated = 1;
			}
		} else if (scan_skip(c, 2) == -1)
			return -1;
		scan_ws(c);
		if (c->p >= c->end)
			return -1;
		if (*c->p == ']') {
			c->p++;
			return 0;
		}
		if (*c->p++ != ',')
			return -1;
		scan_ws(c);
	}
}

/* A top-level member of a record. */
static int
scan_member(struct scan *c, struct logtool_str key, void *arg)
{
	struct logtool_rec *r = arg;

	switch (key.n) {
	case 2:
		if (KEY(key, "ts"))
			return scan_str_member(c, &r->ts);
		break;
	case 3:
		if (KEY(key, "hop"))
			return scan_str_member(c, &r->hop);
		break;
	case 4:
		if (KEY(key, "path"))
			return scan_str_member(c, &r->target);
		if (KEY(key, "from"))
			return scan_str_member(c, &r->from);
		break;
	case 5:
		if (KEY(key, "event"))
			return scan_str_member(c, &r->event_name);
		if (KEY(key, "level"))
			return scan_str_member(c, &r->level);
		if (KEY(key, "phase"))
			return scan_str_member(c, &r->phase);
		if (KEY(key, "model"))
			return scan_str_member(c, &r->model);
		if (KEY(key, "route"))
			return scan_str_member(c, &r->route);
		if (KEY(key, "usage")) {
			if (c->p < c->end && *c->p == '{') {
				r->has_usage = 1;
				return scan_object(c, scan_usage_member, r);
			}
			return scan_skip(c, 1);
		}
		break;
	case 6:
		if (KEY(key, "origin")) {
			if (c->p < c->end && *c->p == '{')
				return scan_object(c, scan_origin_member, r);
			return scan_skip(c, 1);
		}
		if (KEY(key, "client"))
			return scan_str_member(c, &r->client);
		if (KEY(key, "method"))
			return scan_str_member(c, &r->method);
		if (KEY(key, "status"))
			return scan_int_member(c, &r->status);
		if (KEY(key, "reason"))
			return scan_str_member(c, &r->reason);
		break;
	case 7:
		if (KEY(key, "message"))
			return scan_str_member(c, &r->message);
		if (KEY(key, "outcome"))
			return scan_str_member(c, &r->outcome);
		if (KEY(key, "ttfb_ms"))
			return scan_num_member(c, &r->ttfb_ms);
		break;
	case 8:
		if (KEY(key, "trace_id"))
			return scan_str_member(c, &r->trace_id);
		if (KEY(key, "upstream"))
			return scan_str_member(c, &r->upstream);
		if (KEY(key, "protocol"))
			return scan_str_member(c, &r->protocol);
		if (KEY(key, "bytes_in"))
			return scan_int_member(c, &r->bytes_in);
		break;
	case 9:
		if (KEY(key, "direction"))
			return scan_str_member(c, &r->direction);
		if (KEY(key, "bytes_out"))
			return scan_int_member(c, &r->bytes_out);
		break;
	case 10:
		if (KEY(key, "request_id"))
			return scan_str_member(c, &r->request_id);
		if (KEY(key, "elapsed_ms"))
			return scan_int_member(c, &r->elapsed_ms);
		if (KEY(key, "sse_events"))
			return scan_int_member(c, &r->sse_events);
		break;
	case 11:
		if (KEY(key, "cancel_path"))
			return scan_path(c, r);
		if (KEY(key, "duration_ms"))
			return scan_num_member(c, &r->duration_ms);
		if (KEY(key, "origin_kind"))
			return scan_str_member(c, &r->origin_kind);
		break;
	case 12:
		if (KEY(key, "detected_via"))
			return scan_str_member(c, &r->via);
		break;
	case 18:
		if (KEY(key, "detect_to_close_us"))
			return scan_int_member(c, &r->d2c_us);
		break;
	}
	return scan_skip(c, 1);
}

/* Scans one line into r; 0, or -1 when it is not a log record. */
int
logtool_scan(const char *line, size_t len, struct logtool_rec *r,
    struct logtool_scratch *s)
{
	struct scan	 c;

	memset(r, 0, offsetof(struct logtool_rec, line));
	r->elapsed_ms = r->d2c_us = r->sse_events = r->bytes_out = -1;
	r->status = r->bytes_in = -1;
	r->duration_ms = r->ttfb_ms = -1;
	r->prompt_tokens = r->completion_tokens = r->total_tokens = -1;
	r->line = line;
	r->len = len;

	/* Unescaped strings never outgrow the line; reserve it all now so
	 * the scratch never moves while strings point into it. */
	if (s->cap < len + 1) {
		size_t	 ncap = s->cap ? s->cap : 4096;
		char	*nbuf;

		while (ncap < len + 1)
			ncap *= 2;
		if ((nbuf = realloc(s->buf, ncap)) == NULL)
			return -1;
		s->buf = nbuf;
		s->cap = ncap;
	}
	s->len = 0;

	c.p = line;
	c.end = line + len;
	c.s = s;
	scan_ws(&c);
	if (scan_object(&c, scan_member, r) == -1)
		return -1;
	scan_ws(&c);
	if (c.p != c.end)
		return -1;
	if (r->ts.p == NULL || r->hop.p == NULL || r->event_name.p == NULL)
		return -1;
	if (logtool_parse_time(r->ts.p, r->ts.n, &r->ts_us) == -1)
		return -1;
	if (logtool_str_eq(r->event_name, "cancel"))
		r->event = LOGTOOL_EV_CANCEL;
	else if (logtool_str_eq(r->event_name, "request"))
		r->event = LOGTOOL_EV_REQUEST;
	else if (logtool_str_eq(r->event_name, "note"))
		r->event = LOGTOOL_EV_NOTE;
	else if (logtool_str_eq(r->event_name, "note_failed"))
		r->event = LOGTOOL_EV_NOTE_FAILED;
	else
		r->event = LOGTOOL_EV_OTHER;
	return 0;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t
scan_days(int64_t y, int m, int d)
{
	int64_t	 era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* n decimal digits at p; -1 when they are not all digits. */
static int
scan_digits(const char *p, int n)
{
	int	 v = 0, i;

	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* Parses an RFC 3339 time, or a prefix of one, into epoch microseconds. */
int
logtool_parse_time(const char *p, size_t n, int64_t *out)
{
	const char	*e = p + n;
	int		 y, mo, d, h = 0, mi = 0, sec = 0, sign, oh, om;
	int64_t		 us = 0, scale = 100000, t;

	if (n < 10 || p[4] != '-' || p[7] != '-')
		return -1;
	if ((y = scan_digits(p, 4)) == -1 || (mo = scan_digits(p + 5, 2)) == -1 ||
	    (d = scan_digits(p + 8, 2)) == -1 || mo < 1 || mo > 12 || d < 1 ||
	    d > 31)
		return -1;
	p += 10;
	if (p < e && (*p == 'T' || *p == 't' || *p == ' ')) {
		if (e - p < 6 || p[3] != ':')
			return -1;
		if ((h = scan_digits(p + 1, 2)) == -1 ||
		    (mi = scan_digits(p + 4, 2)) == -1 || h > 23 || mi > 59)
			return -1;
		p += 6;
		if (p < e && *p == ':') {
			if (e - p < 3 || (sec = scan_digits(p + 1, 2)) == -1 ||
			    sec > 60)
				return -1;
			p += 3;
			if (p < e && (*p == '.' || *p == ',')) {
				p++;
				if (p >= e || *p < '0' || *p > '9')
					return -1;
				for (; p < e && *p >= '0' && *p <= '9'; p++) {
					us += (*p - '0') * scale;
					scale /= 10;
				}
			}
		}
	}
	t = ((scan_days(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
	t = t * 1000000 + us;
	if (p < e && (*p == 'Z' || *p == 'z'))
		p++;
	else if (p < e && (*p == '+' || *p == '-')) {
		sign = *p == '-' ? -1 : 1;
		if (e - p < 6 || p[3] != ':' ||
		    (oh = scan_digits(p + 1, 2)) == -1 ||
		    (om = scan_digits(p + 4, 2)) == -1)
			return -1;
		t -= sign * ((int64_t)oh * 3600 + om * 60) * 1000000;
		p += 6;
	}
	if (p != e)
		return -1;
	*out = t;
	return 0;
}
