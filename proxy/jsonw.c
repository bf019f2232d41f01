/* jsonw: append-only JSON text building with escaping and comma tracking. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <math.h>

#include "proxy/jsonw.h"
#include "proxy/word.h"

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

int
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
		/* No further append fits: each comes back here and stops. */
		w->oom = 1;
		w->cap = w->len;
		return -1;
	}
	w->buf = nbuf;
	w->cap = ncap;
	w->heap = 1;
	return 0;
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

/* Whether none of the eight bytes in x needs escaping: none below 0x20,
 * none is '"', '\\' or DEL (the table above, word-wise). */
static inline int
jsonw_word_clean(uint64_t x)
{
	return (word_has_below(x, 0x20) | word_has_byte(x, '"') |
	    word_has_byte(x, '\\') | word_has_byte(x, 0x7f)) == 0;
}

static void
jsonw_escaped(struct jsonw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t		 i = 0, start = 0;
	char		 esc[7];

	/* Room for the common case up front: no escapes, one copy. */
	if (jsonw_room(w, n + 2) == -1)
		return;
	while (i + 8 <= n && jsonw_word_clean(word_load(s + i)))
		i += 8;
	/* All words clean but a partial one: check it as the last eight
	 * bytes, overlapping the words before. */
	if (i < n && n >= 8 && i + 8 > n && jsonw_word_clean(word_load(s + n -
	    8)))
		i = n;
	while (i < n && !jsonw_needs_escape[(unsigned char)s[i]])
		i++;
	if (i == n) {
		w->buf[w->len++] = '"';
		memcpy(w->buf + w->len, s, n);
		w->len += n;
		w->buf[w->len++] = '"';
		w->buf[w->len] = '\0';
		return;
	}
	w->buf[w->len++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c;
		const char *rep;
		size_t replen = 2;

		/* Eight clean bytes at a time, then byte by byte. */
		while (i + 8 <= n && jsonw_word_clean(word_load(s + i)))
			i += 8;
		if (i >= n)
			break;
		c = (unsigned char)s[i];
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

/* Decimal digits of v, right-aligned in buf[24]; returns the first. */
static char *
jsonw_digits(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return end;
}

void
jsonw_int(struct jsonw *w, int64_t v)
{
	char	 tmp[24], *p;

	/* The magnitude as unsigned: -INT64_MIN does not fit an int64_t. */
	p = jsonw_digits(tmp + sizeof(tmp), v < 0 ? 0 - (uint64_t)v :
	    (uint64_t)v);
	if (v < 0)
		*--p = '-';
	jsonw_sep(w);
	jsonw_append(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

void
jsonw_uint(struct jsonw *w, uint64_t v)
{
	char	 tmp[24], *p = jsonw_digits(tmp + sizeof(tmp), v);

	jsonw_sep(w);
	jsonw_append(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

/*
 * "%.*f" without printf for the common case (0 <= v < 1e9, up to 6
 * decimals): v * 10^d rounded to the nearest integer is what printf prints,
 * because rounding the product never crosses a representable half; an
 * exact half (a tie printf breaks on the exact binary value) goes to
 * snprintf, as does everything else.
 */
void
jsonw_double(struct jsonw *w, double v, int decimals)
{
	static const double pow10[] = { 1, 10, 100, 1e3, 1e4, 1e5, 1e6 };
	char	 tmp[64], *p;
	double	 scaled, r;
	uint64_t q;
	int	 n, i;

	if (v >= 0 && v < 1e9 && decimals >= 0 && decimals <= 6) {
		scaled = v * pow10[decimals];
		r = nearbyint(scaled);
		if (fabs(scaled - r) != 0.5) {
			q = (uint64_t)r;
			p = tmp + sizeof(tmp);
			for (i = 0; i < decimals; i++) {
				*--p = (char)('0' + q % 10);
				q /= 10;
			}
			if (decimals > 0)
				*--p = '.';
			p = jsonw_digits(p, q);
			jsonw_sep(w);
			jsonw_append(w, p, (size_t)(tmp + sizeof(tmp) - p));
			return;
		}
	}
	n = snprintf(tmp, sizeof(tmp), "%.*f", decimals, v);
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
