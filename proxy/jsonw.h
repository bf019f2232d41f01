/* jsonw: a small append-only JSON writer for log records, error bodies and
 * admin answers; it never allocates per value and escapes every string. */
#ifndef CANCELPROXY_JSONW_H
#define CANCELPROXY_JSONW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A writer over a caller's buffer that grows on the heap when it overflows. */
struct jsonw {
	char	*buf;
	size_t	 len;
	size_t	 cap;
	int	 heap;		/* buf was malloc'ed by the writer */
	int	 oom;		/* an allocation failed; the text is truncated */
	int	 need_comma;	/* the next member must be preceded by ',' */
};

void	 jsonw_init(struct jsonw *w, char *stack, size_t cap);
void	 jsonw_free(struct jsonw *w);
void	 jsonw_reset(struct jsonw *w);

void	 jsonw_obj_open(struct jsonw *w);
void	 jsonw_obj_close(struct jsonw *w);
void	 jsonw_arr_open(struct jsonw *w);
void	 jsonw_arr_close(struct jsonw *w);

/* Members of an object: a key, then exactly one value. */
void	 jsonw_key(struct jsonw *w, const char *key);
void	 jsonw_str(struct jsonw *w, const char *s);
void	 jsonw_strn(struct jsonw *w, const char *s, size_t n);
void	 jsonw_int(struct jsonw *w, int64_t v);
void	 jsonw_uint(struct jsonw *w, uint64_t v);
void	 jsonw_double(struct jsonw *w, double v, int decimals);
void	 jsonw_bool(struct jsonw *w, int v);
void	 jsonw_null(struct jsonw *w);
/* The length of the well-formed UTF-8 sequence starting at s (whose first
 * byte is at least 0x80, n bytes readable), or 0 when it is not one. */
size_t	 jsonw_utf8_len(const unsigned char *s, size_t n);
/* Already-serialised JSON, copied as is. */
void	 jsonw_raw(struct jsonw *w, const char *json, size_t n);

/* Makes room for n more bytes and a NUL: 0, or -1 (oom set) when memory
 * ran out. jsonw_room checks first, inline. */
int	 jsonw_grow(struct jsonw *w, size_t n);

/* Appends plain bytes without JSON punctuation (for a trailing newline).
 * Inline: a record is some forty small appends. */
static inline int
jsonw_room(struct jsonw *w, size_t n)
{
	return w->len + n + 1 <= w->cap ? 0 : jsonw_grow(w, n);
}

static inline void
jsonw_append(struct jsonw *w, const char *s, size_t n)
{
	if (jsonw_room(w, n) == -1)
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

/*
 * A key written in the source: ",\"key\":" copied in one piece, its length
 * counted by the compiler, the comma skipped when none is due. Only string
 * literals compile here, and the project's own keys are plain names that
 * need no escaping; a key taken from data goes through jsonw_key.
 */
#define jsonw_lkey(w, lit)	jsonw_lkey_((w), ",\"" lit "\":", sizeof(lit) + 3)

static inline void
jsonw_lkey_(struct jsonw *w, const char *k, size_t n)
{
	int	 skip = !w->need_comma;

	jsonw_append(w, k + skip, n - (size_t)skip);
	w->need_comma = 0;
}

/* Shorthands for "key": value, the key a string literal. */
#define jsonw_kstr(w, lit, s)	(jsonw_lkey((w), lit), jsonw_str((w), (s)))
#define jsonw_kint(w, lit, v)	(jsonw_lkey((w), lit), jsonw_int((w), (v)))
#define jsonw_kuint(w, lit, v)	(jsonw_lkey((w), lit), jsonw_uint((w), (v)))
#define jsonw_kbool(w, lit, v)	(jsonw_lkey((w), lit), jsonw_bool((w), (v)))

#endif
