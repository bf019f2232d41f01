/* upstream_usage: SSE event splitting and provider usage shapes. */
#include <stdlib.h>
#include <string.h>

#include "proxy/jsonr.h"
#include "upstream/upstream_usage.h"

void
usage_init(struct usage *u)
{
	u->prompt = u->completion = u->total = -1;
	u->cached = u->reasoning = -1;
	u->seen = 0;
}

/* A count, or -1: not a number, or out of range (1e300, NaN), whose
 * conversion would be undefined behaviour. */
static int64_t
usage_count(const struct jsonr *v)
{
	double		 d;

	if (jsonr_number(v, &d) == -1 || !(d >= 0 && d < 9.0e15))
		return -1;
	return (int64_t)d;
}

static int64_t
usage_num(const struct jsonr *o, const char *k)
{
	struct jsonr	 v;

	return jsonr_get(o, k, &v) ? usage_count(&v) : -1;
}

static void
usage_set(int64_t *dst, int64_t v)
{
	if (v >= 0)
		*dst = v;
}

/* The member k of o when it is an object; NULL otherwise. */
static const struct jsonr *
usage_obj(const struct jsonr *o, const char *k, struct jsonr *out)
{
	return jsonr_get(o, k, out) && out->type == JSONR_OBJECT ? out : NULL;
}

/* Whether "usage" occurs in s: the quick test before any JSON is walked,
 * run on every SSE event. memchr for its rare first letter; glibc's
 * memmem sets up a table per call and cost more than the event. */
static int
usage_mentioned(const char *s, size_t n)
{
	const char	*p = s, *e = s + n;

	while (e - p >= 5 &&
	    (p = memchr(p, 'u', (size_t)(e - p) - 4)) != NULL) {
		if (memcmp(p + 1, "sage", 4) == 0)
			return 1;
		p++;
	}
	return 0;
}

/*
 * OpenAI chat: usage {prompt_tokens, completion_tokens, total_tokens,
 *   prompt_tokens_details.cached_tokens,
 *   completion_tokens_details.reasoning_tokens}.
 * OpenAI Responses: response.usage {input_tokens, output_tokens,
 *   total_tokens, input_tokens_details.cached_tokens,
 *   output_tokens_details.reasoning_tokens}.
 * Anthropic: message_start message.usage {input_tokens, output_tokens,
 *   cache_read_input_tokens}; message_delta usage {output_tokens}, the
 *   running total.
 * Read in place (jsonr), each object walked once: this runs for every
 * answer and every usage event.
 */
int
usage_from_json(struct usage *u, const char *event, const char *json,
    size_t len)
{
	static const char *const top[] = { "response", "message", "usage" };
	static const char *const fields[] = {
		"prompt_tokens", "completion_tokens", "input_tokens",
		"output_tokens", "total_tokens", "cache_read_input_tokens",
		"prompt_tokens_details", "input_tokens_details",
		"completion_tokens_details", "output_tokens_details",
	};
	struct jsonr	 root, t[3], f[10], inner;
	const struct jsonr *us = NULL, *d;
	int64_t		 total;

	if (len < 8 || !usage_mentioned(json, len) ||
	    jsonr_parse_get(json, len, &root, top, 3, t) == -1)
		return 0;
	if (t[0].type == JSONR_OBJECT)
		us = usage_obj(&t[0], "usage", &inner);
	else if (t[1].type == JSONR_OBJECT)
		us = usage_obj(&t[1], "usage", &inner);
	if (us == NULL && t[2].type == JSONR_OBJECT)
		us = &t[2];
	if (us == NULL)
		return 0;
	jsonr_get_many(us, fields, 10, f);
	usage_set(&u->prompt, usage_count(&f[0]));
	usage_set(&u->completion, usage_count(&f[1]));
	usage_set(&u->prompt, usage_count(&f[2]));
	usage_set(&u->completion, usage_count(&f[3]));
	total = usage_count(&f[4]);
	usage_set(&u->total, total);
	usage_set(&u->cached, usage_count(&f[5]));
	d = f[6].type != JSONR_NONE ? &f[6] : &f[7];
	if (d->type == JSONR_OBJECT)
		usage_set(&u->cached, usage_num(d, "cached_tokens"));
	d = f[8].type != JSONR_NONE ? &f[8] : &f[9];
	if (d->type == JSONR_OBJECT)
		usage_set(&u->reasoning, usage_num(d, "reasoning_tokens"));
	/* A total the provider left out is the sum. */
	if (u->prompt >= 0 && u->completion >= 0 && total < 0)
		u->total = u->prompt + u->completion;
	u->seen = 1;
	(void)event;
	return 1;
}

int
usage_only_chunk(const char *json, size_t len)
{
	static const char *const keys[] = { "choices", "usage" };
	struct jsonr	 root, m[2];

	if (len < 8 || !usage_mentioned(json, len) ||
	    jsonr_parse_get(json, len, &root, keys, 2, m) == -1)
		return 0;
	return jsonr_array_len(&m[0]) == 0 && m[1].type == JSONR_OBJECT;
}

/* A usage count, when the model reported it. */
#define usage_member(w, lit, v) do {					\
	if ((v) >= 0)							\
		jsonw_kint((w), lit, (v));				\
} while (0)

void
usage_members(struct jsonw *w, const struct usage *u)
{
	jsonw_lkey(w, "usage");
	if (!u->seen)
		jsonw_null(w);
	else {
		jsonw_obj_open(w);
		usage_member(w, "prompt_tokens", u->prompt);
		usage_member(w, "completion_tokens", u->completion);
		usage_member(w, "total_tokens", u->total);
		usage_member(w, "cached_tokens", u->cached);
		usage_member(w, "reasoning_tokens", u->reasoning);
		jsonw_obj_close(w);
	}
	jsonw_kstr(w, "usage_source", u->seen ? "reported" : "missing");
}

void
sse_scan_init(struct sse_scan *sc)
{
	memset(sc, 0, sizeof(*sc));
}

void
sse_scan_free(struct sse_scan *sc)
{
	free(sc->data);
	free(sc->line);
	memset(sc, 0, sizeof(*sc));
}

/* Starts the next event. */
void
sse_scan_next(struct sse_scan *sc)
{
	sc->dlen = 0;
	sc->event[0] = '\0';
	sc->overflow = 0;
	sc->nonempty = 0;
}

/* Appends to a growing buffer bounded by SSE_SCAN_MAX; -1 past it. */
static int
sse_scan_append(char **buf, size_t *len, size_t *cap, const char *p,
    size_t n)
{
	size_t	 ncap;
	char	*nb;

	if (*len + n + 1 > SSE_SCAN_MAX)
		return -1;
	if (*len + n + 1 > *cap) {
		ncap = *cap ? *cap * 2 : 256;
		while (ncap < *len + n + 1)
			ncap *= 2;
		if ((nb = realloc(*buf, ncap)) == NULL)
			return -1;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

/* One complete line l of n bytes (without its newline); 1 when it ended
 * an event. */
static int
sse_scan_line(struct sse_scan *sc, const char *l, size_t n)
{
	size_t		 off;

	if (n > 0 && l[n - 1] == '\r')
		n--;
	if (n == 0)
		return sc->nonempty;
	sc->nonempty = 1;
	if (n >= 5 && memcmp(l, "data:", 5) == 0) {
		off = (n > 5 && l[5] == ' ') ? 6 : 5;
		if (!sc->overflow && ((sc->dlen > 0 && sse_scan_append(
		    &sc->data, &sc->dlen, &sc->dcap, "\n", 1) == -1) ||
		    sse_scan_append(&sc->data, &sc->dlen, &sc->dcap, l + off,
		    n - off) == -1))
			sc->overflow = 1;
	} else if (n >= 6 && memcmp(l, "event:", 6) == 0) {
		off = (n > 6 && l[6] == ' ') ? 7 : 6;
		if (n - off < sizeof(sc->event)) {
			memcpy(sc->event, l + off, n - off);
			sc->event[n - off] = '\0';
		}
	}
	return 0;
}

size_t
sse_scan_feed(struct sse_scan *sc, const char *at, size_t n, int *done)
{
	const char	*nl;
	size_t		 used = 0, k;
	int		 ended;

	*done = 0;
	while (used < n) {
		nl = memchr(at + used, '\n', n - used);
		k = nl ? (size_t)(nl - (at + used)) : n - used;
		if (nl != NULL && sc->llen == 0) {
			/* A whole line in this read: read it where it is. */
			ended = sse_scan_line(sc, at + used, k);
			used += k + 1;
		} else {
			/* A line across reads is gathered first. */
			if (sse_scan_append(&sc->line, &sc->llen, &sc->lcap,
			    at + used, k) == -1)
				sc->overflow = 1; /* keep counting, stop copying */
			used += k;
			if (nl == NULL)
				break;
			used++;		/* the newline */
			ended = sse_scan_line(sc, sc->line ? sc->line : "",
			    sc->llen);
			sc->llen = 0;
		}
		if (ended) {
			*done = 1;
			break;
		}
	}
	return used;
}
