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

/* 1 for bytes that must be escaped in a JSON string; 2 for the first byte
 * of a multi-byte UTF-8 sequence, kept only when the sequence is valid. */
static const unsigned char jsonw_needs_escape[256] = {
	1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
	0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
	0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
	0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,
	2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
	2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
	2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
	2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
};

/* Whether none of the eight bytes in x needs a look: none below 0x20,
 * none is '"', '\\' or DEL, none has the high bit (the table above,
 * word-wise). */
static inline int
jsonw_word_clean(uint64_t x)
{
	return ((x & WORD_HIGHS) | word_has_below(x, 0x20) |
	    word_has_byte(x, '"') | word_has_byte(x, '\\') |
	    word_has_byte(x, 0x7f)) == 0;
}

/* The length of the well-formed UTF-8 sequence at s (s[0] >= 0x80), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629). */
size_t
jsonw_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char	 c = s[0], lo = 0x80, hi = 0xBF;
	size_t		 k, i;

	if (c >= 0xC2 && c <= 0xDF)
		k = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		k = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		k = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (n < k || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < k; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return k;
}

/* How many bytes from s[i] on need no change: plain ASCII and whole UTF-8
 * sequences; stops at the first byte to escape or replace. */
static size_t
jsonw_clean_run(const char *s, size_t i, size_t n)
{
	size_t		 k;
	unsigned char	 e;

	for (;;) {
		while (i + 8 <= n && jsonw_word_clean(word_load(s + i)))
			i += 8;
		if (i >= n)
			return n;
		e = jsonw_needs_escape[(unsigned char)s[i]];
		if (e == 0)
			i++;
		else if (e == 2 && (k = jsonw_utf8_len((const unsigned char *)s
		    + i, n - i)) != 0)
			i += k;
		else
			return i;
	}
}

/*
 * Writes s as a JSON string. Control characters, '"', '\\' and DEL are
 * escaped; a byte that does not start a well-formed UTF-8 sequence is
 * written as U+FFFD, so the text is valid UTF-8 JSON whatever bytes a
 * client sent (a strict reader refuses a whole line for one such byte).
 */
static void
jsonw_escaped(struct jsonw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t		 i, start = 0;
	char		 esc[7];

	/* Room for the common case up front: no escapes, one copy. */
	if (jsonw_room(w, n + 2) == -1)
		return;
	i = jsonw_clean_run(s, 0, n);
	if (i == n) {
		w->buf[w->len++] = '"';
		memcpy(w->buf + w->len, s, n);
		w->len += n;
		w->buf[w->len++] = '"';
		w->buf[w->len] = '\0';
		return;
	}
	w->buf[w->len++] = '"';
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		const char *rep;
		size_t replen = 2;

		switch (c) {
		case '"':  rep = "\\\""; break;
		case '\\': rep = "\\\\"; break;
		case '\n': rep = "\\n"; break;
		case '\r': rep = "\\r"; break;
		case '\t': rep = "\\t"; break;
		default:
			if (c >= 0x80) {
				rep = "\\ufffd";
				replen = 6;
				break;
			}
			esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0';
			esc[3] = '0'; esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15]; esc[6] = 0;
			rep = esc;
			replen = 6;
		}
		jsonw_append(w, s + start, i - start);
		jsonw_append(w, rep, replen);
		start = i + 1;
		i = jsonw_clean_run(s, start, n);
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
