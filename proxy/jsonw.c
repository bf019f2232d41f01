/* jsonw: append-only JSON text building with escaping and comma tracking. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

#include "proxy/jsonw.h"

/* Starts a writer on a caller-provided buffer (may be NULL with cap 0). */
void
jsonw_init(struct jsonw *w, char *stack, size_t cap)
{
	w->buf = stack;
	w->cap = cap;
	w->len = 0;
	w->heap = 0;
	w->oom = 0;
	w->need_comma = 0;
}

/* Releases a heap buffer the writer grew into. */
void
jsonw_free(struct jsonw *w)
{
	if (w->heap)
		free(w->buf);
	w->buf = NULL;
	w->cap = w->len = 0;
	w->heap = 0;
}

/* Empties the writer, keeping its buffer. */
void
jsonw_reset(struct jsonw *w)
{
	w->len = 0;
	w->oom = 0;
	w->need_comma = 0;
}

static int
jsonw_grow(struct jsonw *w, size_t need)
{
	size_t	 ncap;
	char	*nbuf;

	if (w->oom)
		return -1;
	if (w->len + need + 1 <= w->cap)
		return 0;
	ncap = w->cap ? w->cap * 2 : 256;
	while (ncap < w->len + need + 1)
		ncap *= 2;
	if (w->heap)
		nbuf = realloc(w->buf, ncap);
	else {
		nbuf = malloc(ncap);
		if (nbuf != NULL && w->len)
			memcpy(nbuf, w->buf, w->len);
	}
	if (nbuf == NULL) {
		w->oom = 1;
		return -1;
	}
	w->buf = nbuf;
	w->cap = ncap;
	w->heap = 1;
	return 0;
}

/* Appends plain bytes without JSON punctuation. */
void
jsonw_append(struct jsonw *w, const char *s, size_t n)
{
	if (jsonw_grow(w, n) == -1)
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void
jsonw_putc(struct jsonw *w, char c)
{
	jsonw_append(w, &c, 1);
}

static void
jsonw_sep(struct jsonw *w)
{
	if (w->need_comma)
		jsonw_putc(w, ',');
	w->need_comma = 1;
}

void
jsonw_obj_open(struct jsonw *w)
{
	jsonw_sep(w);
	jsonw_putc(w, '{');
	w->need_comma = 0;
}

void
jsonw_obj_close(struct jsonw *w)
{
	jsonw_putc(w, '}');
	w->need_comma = 1;
}

void
jsonw_arr_open(struct jsonw *w)
{
	jsonw_sep(w);
	jsonw_putc(w, '[');
	w->need_comma = 0;
}

void
jsonw_arr_close(struct jsonw *w)
{
	jsonw_putc(w, ']');
	w->need_comma = 1;
}

/* 1 for bytes that must be escaped in a JSON string. */
static const unsigned char jsonw_needs_escape[256] = {
	1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
	0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
	0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
	0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,
};

static void
jsonw_escaped(struct jsonw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t		 i, start = 0;
	char		 esc[7];

	/* Room for the common case up front: no escapes, one copy. */
	if (jsonw_grow(w, n + 2) == -1)
		return;
	w->buf[w->len++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *rep;
		size_t replen = 2;

		if (!jsonw_needs_escape[c])
			continue;
		switch (c) {
		case '"':  rep = "\\\""; break;
		case '\\': rep = "\\\\"; break;
		case '\n': rep = "\\n"; break;
		case '\r': rep = "\\r"; break;
		case '\t': rep = "\\t"; break;
		default:
			esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0';
			esc[3] = '0'; esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15]; esc[6] = 0;
			rep = esc;
			replen = 6;
		}
		jsonw_append(w, s + start, i - start);
		jsonw_append(w, rep, replen);
		start = i + 1;
	}
	jsonw_append(w, s + start, n - start);
	jsonw_putc(w, '"');
}

/* Writes an object key; the next call writes its value. */
void
jsonw_key(struct jsonw *w, const char *key)
{
	jsonw_sep(w);
	jsonw_escaped(w, key, strlen(key));
	jsonw_putc(w, ':');
	w->need_comma = 0;
}

void
jsonw_strn(struct jsonw *w, const char *s, size_t n)
{
	jsonw_sep(w);
	jsonw_escaped(w, s, n);
}

void
jsonw_str(struct jsonw *w, const char *s)
{
	if (s == NULL) {
		jsonw_null(w);
		return;
	}
	jsonw_strn(w, s, strlen(s));
}

void
jsonw_int(struct jsonw *w, int64_t v)
{
	char	 tmp[32];
	int	 n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);

	jsonw_sep(w);
	jsonw_append(w, tmp, (size_t)n);
}

void
jsonw_uint(struct jsonw *w, uint64_t v)
{
	char	 tmp[32];
	int	 n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);

	jsonw_sep(w);
	jsonw_append(w, tmp, (size_t)n);
}

void
jsonw_double(struct jsonw *w, double v, int decimals)
{
	char	 tmp[64];
	int	 n = snprintf(tmp, sizeof(tmp), "%.*f", decimals, v);

	jsonw_sep(w);
	jsonw_append(w, tmp, (size_t)n);
}

void
jsonw_bool(struct jsonw *w, int v)
{
	jsonw_sep(w);
	jsonw_append(w, v ? "true" : "false", v ? 4 : 5);
}

void
jsonw_null(struct jsonw *w)
{
	jsonw_sep(w);
	jsonw_append(w, "null", 4);
}

void
jsonw_raw(struct jsonw *w, const char *json, size_t n)
{
	jsonw_sep(w);
	jsonw_append(w, json, n);
}

void
jsonw_kstr(struct jsonw *w, const char *key, const char *s)
{
	jsonw_key(w, key);
	jsonw_str(w, s);
}

void
jsonw_kint(struct jsonw *w, const char *key, int64_t v)
{
	jsonw_key(w, key);
	jsonw_int(w, v);
}

void
jsonw_kuint(struct jsonw *w, const char *key, uint64_t v)
{
	jsonw_key(w, key);
	jsonw_uint(w, v);
}

void
jsonw_kbool(struct jsonw *w, const char *key, int v)
{
	jsonw_key(w, key);
	jsonw_bool(w, v);
}
