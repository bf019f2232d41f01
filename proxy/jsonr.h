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
 * cJSON_ParseWithLength does; jsonr_rest_is_space tells); stricter than
 * cJSON as RFC 8259 is: no raw byte below 0x20 in a string, no "1." or
 * "-.5"; 0 and *root set, or -1. */
int		 jsonr_parse(const char *text, size_t len, struct jsonr *root);
/* jsonr_parse, and when the root is an object, jsonr_get_many on it in
 * the same walk: 0 with *root and out[] set (out[i].type JSONR_NONE when
 * absent or when the root is no object), or -1. */
int		 jsonr_parse_get(const char *text, size_t len,
		    struct jsonr *root, const char *const *keys, size_t n,
		    struct jsonr *out);
/* jsonr_parse_get that also tells which keys came more than once in the
 * root object: bit i of *dup for keys[i] (a second member of the name, or
 * one whose name is the key followed by an escaped NUL). */
int		 jsonr_parse_members(const char *text, size_t len,
		    struct jsonr *root, const char *const *keys, size_t n,
		    struct jsonr *out, unsigned *dup);
/* After a failed parse: 1 when the text nests deeper than
 * JSONR_DEPTH_MAX (the reason it was refused), 0 otherwise. */
int		 jsonr_too_deep(const char *text, size_t len);
/* 1 when only white space follows the parsed root in text, 0 when other
 * bytes do (cJSON ignores them; Python's and Go's readers refuse them). */
int		 jsonr_rest_is_space(const struct jsonr *root, const char *text,
		    size_t len);
/* 2 or more when key names more than one member of obj (counting a name
 * that is key up to an escaped NUL), 1 for one, 0 for none. */
int		 jsonr_count(const struct jsonr *obj, const char *key);
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
/* jsonr_string, and *nul set to 1 when an escaped NUL (\u0000) cut the
 * string short in buf. */
long		 jsonr_string_nul(const struct jsonr *v, char *buf, size_t len,
		    int *nul);
/* Elements of an array, -1 when v is not an array. */
long		 jsonr_array_len(const struct jsonr *v);
const char	*jsonr_type_name(enum jsonr_type t);

#endif
