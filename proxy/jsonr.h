/* jsonr: reads a few members out of JSON text in place — no tree, no
 * allocation. The proxy reads "model" from request bodies and usage from
 * answers on every request; building a cJSON tree for that cost about 30
 * mallocs per request. The text is validated once, then walked. */
#ifndef CANCELPROXY_JSONR_H
#define CANCELPROXY_JSONR_H

#include <stddef.h>

enum jsonr_type {
	JSONR_NONE,		/* not found, or not JSON */
	JSONR_OBJECT,
	JSONR_ARRAY,
	JSONR_STRING,
	JSONR_NUMBER,
	JSONR_TRUE,
	JSONR_FALSE,
	JSONR_NULL,
};

/* One value: its text from the first to past the last byte. */
struct jsonr {
	const char	*p;
	const char	*end;
	enum jsonr_type	 type;
};

#define JSONR_DEPTH_MAX	512	/* deeper documents are refused */

/* Validates the first JSON value in text (bytes after it are ignored, as
 * cJSON_ParseWithLength does); 0 and *root set, or -1. */
int		 jsonr_parse(const char *text, size_t len, struct jsonr *root);
/* jsonr_parse, and when the root is an object, jsonr_get_many on it in
 * the same walk: 0 with *root and out[] set (out[i].type JSONR_NONE when
 * absent or when the root is no object), or -1. */
int		 jsonr_parse_get(const char *text, size_t len,
		    struct jsonr *root, const char *const *keys, size_t n,
		    struct jsonr *out);
/* Member key of object obj (the first one, compared after unescaping);
 * 1 and *out set, or 0 with out->type JSONR_NONE. */
int		 jsonr_get(const struct jsonr *obj, const char *key,
		    struct jsonr *out);
/* Looks up n (at most 16) keys in one walk of obj: out[i] for keys[i]
 * (the first member of that name); returns how many were found. */
int		 jsonr_get_many(const struct jsonr *obj,
		    const char *const *keys, size_t n, struct jsonr *out);
/* A number's value; -1 when v is not a number. */
int		 jsonr_number(const struct jsonr *v, double *d);
/* A string unescaped into buf (NUL-terminated, UTF-8; stops at an escaped
 * NUL); its length, or -1 when v is not a string or does not fit. */
long		 jsonr_string(const struct jsonr *v, char *buf, size_t len);
/* Elements of an array, -1 when v is not an array. */
long		 jsonr_array_len(const struct jsonr *v);
const char	*jsonr_type_name(enum jsonr_type t);

#endif
