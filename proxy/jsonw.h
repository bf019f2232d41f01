/* jsonw: a small append-only JSON writer for log records, error bodies and
 * admin answers; it never allocates per value and escapes every string. */
#ifndef CANCELPROXY_JSONW_H
#define CANCELPROXY_JSONW_H

#include <stddef.h>
#include <stdint.h>

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
/* Already-serialised JSON, copied as is. */
void	 jsonw_raw(struct jsonw *w, const char *json, size_t n);

/* Shorthands for "key": value. */
void	 jsonw_kstr(struct jsonw *w, const char *key, const char *s);
void	 jsonw_kint(struct jsonw *w, const char *key, int64_t v);
void	 jsonw_kuint(struct jsonw *w, const char *key, uint64_t v);
void	 jsonw_kbool(struct jsonw *w, const char *key, int v);

/* Appends plain bytes without JSON punctuation (for a trailing newline). */
void	 jsonw_append(struct jsonw *w, const char *s, size_t n);

#endif
