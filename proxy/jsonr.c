/* jsonr: in-place JSON reading — validate once, then walk to a member. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/jsonr.h"
#include "proxy/word.h"

static const char *
jsonr_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int
jsonr_hex4(const char *p, unsigned *v)
{
	unsigned	 x = 0;
	int		 i;

	for (i = 0; i < 4; i++) {
		char	 c = p[i];

		x <<= 4;
		if (c >= '0' && c <= '9')
			x |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			x |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*v = x;
	return 0;
}

/* A \u escape at p (pointing at 'u'): the code point, and where the escape
 * (or surrogate pair) ends. Lone or reversed surrogates are refused, as
 * cJSON refuses them. */
static const char *
jsonr_u_escape(const char *p, const char *e, unsigned *cp)
{
	unsigned	 hi, lo;

	if (e - p < 5 || jsonr_hex4(p + 1, &hi) == -1)
		return NULL;
	p += 5;
	if (hi >= 0xDC00 && hi <= 0xDFFF)
		return NULL;
	if (hi >= 0xD800 && hi <= 0xDBFF) {
		if (e - p < 6 || p[0] != '\\' || p[1] != 'u' ||
		    jsonr_hex4(p + 2, &lo) == -1 || lo < 0xDC00 || lo > 0xDFFF)
			return NULL;
		p += 6;
		hi = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
	}
	*cp = hi;
	return p;
}

/* The first byte below 0x20 in p..e, or e: a raw control character,
 * which RFC 8259 (and Python's and Go's readers) refuse in a string. */
static const char *
jsonr_control(const char *p, const char *e)
{
	uint64_t	 m;

	for (; e - p >= 8; p += 8)
		if ((m = word_has_below(word_load(p), 0x20)) != 0) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return p + (__builtin_ctzll(m) >> 3);
#else
			break;
#endif
		}
	while (p < e && (unsigned char)*p >= 0x20)
		p++;
	return p;
}

/* The first '"', '\\' or control byte from p, or e. Most strings here are
 * short keys and values, where two memchr calls cost more than the bytes:
 * the first 32 bytes are looked at eight at a time, the rest of a long
 * string with memchr, which reads many bytes per step. */
static inline const char *
jsonr_quote_or_escape(const char *p, const char *e)
{
	const char	*q, *bs;
	int		 words;

	for (words = 0; words < 4 && e - p >= 8; words++) {
		uint64_t x = word_load(p);
		/* The lowest bit set is exact in each, so in all three. */
		uint64_t m = word_has_byte(x, '"') | word_has_byte(x, '\\') |
		    word_has_below(x, 0x20);

		if (m != 0) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return p + (__builtin_ctzll(m) >> 3);
#else
			break;
#endif
		}
		p += 8;
	}
	if (e - p >= 8) {
		if ((q = memchr(p, '"', (size_t)(e - p))) == NULL)
			q = e;
		if ((bs = memchr(p, '\\', (size_t)(q - p))) != NULL)
			q = bs;
		return jsonr_control(p, q);
	}
	while (p < e && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
		p++;
	return p;
}

/* From the opening quote to past the closing one, or NULL. */
static const char *
jsonr_skip_string(const char *p, const char *e)
{
	unsigned	 cp;

	for (p++; p < e; ) {
		if ((p = jsonr_quote_or_escape(p, e)) >= e)
			return NULL;
		if (*p == '"')
			return p + 1;
		if (*p != '\\')
			return NULL;	/* a raw control character */
		if (++p >= e)
			return NULL;
		switch (*p) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n':
		case 'r': case 't':
			p++;
			break;
		case 'u':
			if ((p = jsonr_u_escape(p, e, &cp)) == NULL)
				return NULL;
			break;
		default:
			return NULL;
		}
	}
	return NULL;
}

static const char *
jsonr_skip_digits(const char *p, const char *e)
{
	while (p < e && *p >= '0' && *p <= '9')
		p++;
	return p;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static const char *
jsonr_skip_number(const char *p, const char *e)
{
	const char	*q;

	if (p < e && *p == '-')
		p++;
	if (p >= e || *p < '0' || *p > '9')
		return NULL;
	p = *p == '0' ? p + 1 : jsonr_skip_digits(p, e);
	if (p < e && *p == '.') {
		q = jsonr_skip_digits(p + 1, e);
		if (q == p + 1)
			return NULL;
		p = q;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		q = jsonr_skip_digits(p, e);
		if (q == p)
			return NULL;
		p = q;
	}
	return p;
}

static const char *
jsonr_skip_literal(const char *p, const char *e, const char *lit, size_t n)
{
	if ((size_t)(e - p) < n || memcmp(p, lit, n) != 0)
		return NULL;
	return p + n;
}

/* Members to pick out of an object as it is walked. */
struct jsonr_pick {
	const char *const *keys;
	size_t		 klen[16];
	size_t		 n;
	struct jsonr	*out;
	int		 found;
	unsigned	 dup;	/* bit i: keys[i] came more than once */
};

static int	jsonr_key_is(const char *p, const char *end, const char *key,
		    size_t klen);
static const char *jsonr_object(const char *p, const char *e, int depth,
		    struct jsonr_pick *pk);

/* After a member or an element: past the closing bracket (*done set), or
 * past the comma to the next one; NULL when neither follows. */
static const char *
jsonr_after_item(const char *p, const char *e, char close, int *done)
{
	p = jsonr_ws(p, e);
	if ((*done = p < e && *p == close))
		return p + 1;
	if (p >= e || *p != ',')
		return NULL;
	return jsonr_ws(p + 1, e);
}

/* Validates one value at p (no leading space); past its end, or NULL. */
static const char *
jsonr_skip_value(const char *p, const char *e, int depth, enum jsonr_type *t)
{
	enum jsonr_type	 dummy;
	int		 done;

	if (t == NULL)
		t = &dummy;
	if (p >= e)
		return NULL;
	switch (*p) {
	case '"':
		*t = JSONR_STRING;
		return jsonr_skip_string(p, e);
	case 't':
		*t = JSONR_TRUE;
		return jsonr_skip_literal(p, e, "true", 4);
	case 'f':
		*t = JSONR_FALSE;
		return jsonr_skip_literal(p, e, "false", 5);
	case 'n':
		*t = JSONR_NULL;
		return jsonr_skip_literal(p, e, "null", 4);
	case '{':
		*t = JSONR_OBJECT;
		return jsonr_object(p, e, depth, NULL);
	case '[':
		*t = JSONR_ARRAY;
		if (depth >= JSONR_DEPTH_MAX)
			return NULL;
		p = jsonr_ws(p + 1, e);
		if (p < e && *p == ']')
			return p + 1;
		do {
			if ((p = jsonr_skip_value(p, e, depth + 1, NULL)) ==
			    NULL || (p = jsonr_after_item(p, e, ']', &done)) ==
			    NULL)
				return NULL;
		} while (!done);
		return p;
	default:
		*t = JSONR_NUMBER;
		return jsonr_skip_number(p, e);
	}
}

/* Notes member k..kend (a key string) with value v..end if pk wants it:
 * the first member of a name is kept, a second one is noted in pk->dup, as
 * is a name that equals a wanted key up to an escaped NUL (C readers such
 * as cJSON cut the name there, others do not). */
static void
jsonr_pick_member(struct jsonr_pick *pk, const char *k, const char *kend,
    const char *v, const char *end, enum jsonr_type t)
{
	size_t	 i;
	int	 is;

	for (i = 0; i < pk->n; i++) {
		if ((is = jsonr_key_is(k, kend, pk->keys[i], pk->klen[i])) == 0)
			continue;
		if (is == 2 || pk->out[i].type != JSONR_NONE) {
			pk->dup |= 1u << i;
			return;
		}
		pk->out[i].p = v;
		pk->out[i].end = end;
		pk->out[i].type = t;
		pk->found++;
		return;
	}
}

/* Validates the object at p ('{'), picking the members pk names (pk may
 * be NULL); past its end, or NULL. */
static const char *
jsonr_object(const char *p, const char *e, int depth, struct jsonr_pick *pk)
{
	const char	*k, *kend, *v;
	enum jsonr_type	 t;
	int		 done;

	if (depth >= JSONR_DEPTH_MAX)
		return NULL;
	p = jsonr_ws(p + 1, e);
	if (p < e && *p == '}')
		return p + 1;
	do {
		k = p;
		if (p >= e || *p != '"' ||
		    (kend = jsonr_skip_string(p, e)) == NULL)
			return NULL;
		p = jsonr_ws(kend, e);
		if (p >= e || *p != ':')
			return NULL;
		v = p = jsonr_ws(p + 1, e);
		if ((p = jsonr_skip_value(p, e, depth + 1, &t)) == NULL)
			return NULL;
		if (pk != NULL)
			jsonr_pick_member(pk, k, kend, v, p, t);
		if ((p = jsonr_after_item(p, e, '}', &done)) == NULL)
			return NULL;
	} while (!done);
	return p;
}

static void
jsonr_pick_init(struct jsonr_pick *pk, const char *const *keys, size_t n,
    struct jsonr *out)
{
	size_t	 i;

	pk->keys = keys;
	pk->n = n > 16 ? 16 : n;
	pk->out = out;
	pk->found = 0;
	pk->dup = 0;
	for (i = 0; i < pk->n; i++) {
		out[i].type = JSONR_NONE;
		pk->klen[i] = strlen(keys[i]);
	}
}

int
jsonr_parse_get(const char *text, size_t len, struct jsonr *root,
    const char *const *keys, size_t n, struct jsonr *out)
{
	return jsonr_parse_members(text, len, root, keys, n, out, NULL);
}

int
jsonr_parse_members(const char *text, size_t len, struct jsonr *root,
    const char *const *keys, size_t n, struct jsonr *out, unsigned *dup)
{
	const char	*e = text + len, *p = jsonr_ws(text, e), *end;
	struct jsonr_pick pk;

	jsonr_pick_init(&pk, keys, n, out);
	if (dup != NULL)
		*dup = 0;
	if (p >= e || *p != '{')
		return jsonr_parse(text, len, root);
	/* The root object walked once: validated, and its members picked. */
	root->type = JSONR_NONE;
	if ((end = jsonr_object(p, e, 0, &pk)) == NULL) {
		jsonr_pick_init(&pk, keys, n, out);
		return -1;
	}
	root->p = p;
	root->end = end;
	root->type = JSONR_OBJECT;
	if (dup != NULL)
		*dup = pk.dup;
	return 0;
}

int
jsonr_too_deep(const char *text, size_t len)
{
	const char	*p = text, *e = text + len;
	int		 depth = 0;

	/* Brackets outside strings, counted as jsonr_object counts them. */
	while (p < e) {
		switch (*p) {
		case '"':
			for (p++; p < e && *p != '"'; p++)
				if (*p == '\\')
					p++;
			break;
		case '{': case '[':
			if (++depth > JSONR_DEPTH_MAX)
				return 1;
			break;
		case '}': case ']':
			if (depth > 0)
				depth--;
			break;
		}
		p++;
	}
	return 0;
}

int
jsonr_rest_is_space(const struct jsonr *root, const char *text, size_t len)
{
	return root->type != JSONR_NONE &&
	    jsonr_ws(root->end, text + len) == text + len;
}

int
jsonr_parse(const char *text, size_t len, struct jsonr *root)
{
	const char	*e = text + len, *p = jsonr_ws(text, e), *end;

	root->type = JSONR_NONE;
	if ((end = jsonr_skip_value(p, e, 0, &root->type)) == NULL) {
		root->type = JSONR_NONE;
		return -1;
	}
	root->p = p;
	root->end = end;
	return 0;
}

/* Appends code point cp as UTF-8; 0, or -1 when it does not fit. */
static int
jsonr_put_utf8(char *buf, size_t len, size_t *o, unsigned cp)
{
	unsigned char	 u[4];
	size_t		 n, i;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xC0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xF0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	if (*o + n >= len)
		return -1;
	for (i = 0; i < n; i++)
		buf[(*o)++] = (char)u[i];
	return 0;
}

/* Unescapes the string whose opening quote is at p (already validated);
 * *cut (may be NULL) is set when an escaped NUL ended it early. */
static long
jsonr_unescape(const char *p, const char *e, char *buf, size_t len, int *cut)
{
	size_t		 o = 0;
	unsigned	 cp;
	char		 c;

	if (cut != NULL)
		*cut = 0;
	if (len == 0)
		return -1;
	for (p++; p < e && *p != '"'; ) {
		if (*p != '\\') {
			if (o + 1 >= len)
				return -1;
			buf[o++] = *p++;
			continue;
		}
		p++;
		switch (*p) {
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u':
			if ((p = jsonr_u_escape(p, e, &cp)) == NULL)
				return -1;
			if (cp == 0) {
				if (cut != NULL)
					*cut = 1;
				goto done;	/* C strings end here */
			}
			if (jsonr_put_utf8(buf, len, &o, cp) == -1)
				return -1;
			continue;
		default: c = *p; break;
		}
		p++;
		if (o + 1 >= len)
			return -1;
		buf[o++] = c;
	}
done:
	buf[o] = '\0';
	return (long)o;
}

/* Whether the string at p (a validated key) is key, after unescaping: 1
 * when it is, 2 when it is key followed by an escaped NUL and more (equal
 * to a C reader, not to others), 0 when not. */
static int
jsonr_key_is(const char *p, const char *end, const char *key, size_t klen)
{
	char	 tmp[256];
	size_t	 raw = (size_t)(end - p - 2);	/* end: past the quote */
	long	 n;
	int	 cut;

	/* An escape only makes the text longer than what it stands for: a
	 * shorter key is never equal, one as long is equal byte for byte
	 * (keys asked for hold no backslash), a longer one only with an
	 * escape in it. Most members differ in length and stop here. */
	if (raw < klen)
		return 0;
	if (raw == klen)
		return memcmp(p + 1, key, klen) == 0;
	if (memchr(p + 1, '\\', raw) == NULL)
		return 0;
	if (klen >= sizeof(tmp) ||
	    (n = jsonr_unescape(p, end, tmp, sizeof(tmp), &cut)) == -1)
		return 0;
	if (strcmp(tmp, key) != 0)
		return 0;
	return cut ? 2 : 1;
}

int
jsonr_get_many(const struct jsonr *obj, const char *const *keys, size_t n,
    struct jsonr *out)
{
	struct jsonr_pick pk;

	jsonr_pick_init(&pk, keys, n, out);
	if (obj == NULL || obj->type != JSONR_OBJECT)
		return 0;
	/* Valid text, already checked: the walk only picks. */
	(void)jsonr_object(obj->p, obj->end, 0, &pk);
	return pk.found;
}

int
jsonr_get(const struct jsonr *obj, const char *key, struct jsonr *out)
{
	return jsonr_get_many(obj, &key, 1, out);
}

int
jsonr_number(const struct jsonr *v, double *d)
{
	char	 tmp[64];
	size_t	 n;

	const char *p;
	double	 x = 0;

	if (v == NULL || v->type != JSONR_NUMBER ||
	    (n = (size_t)(v->end - v->p)) >= sizeof(tmp))
		return -1;
	/* Token counts are small integers: exact without strtod. */
	if (n <= 15) {
		for (p = v->p; p < v->end && *p >= '0' && *p <= '9'; p++)
			x = x * 10 + (*p - '0');
		if (p == v->end) {
			*d = x;
			return 0;
		}
	}
	memcpy(tmp, v->p, n);
	tmp[n] = '\0';
	*d = strtod(tmp, NULL);
	return 0;
}

long
jsonr_string(const struct jsonr *v, char *buf, size_t len)
{
	if (v == NULL || v->type != JSONR_STRING)
		return -1;
	return jsonr_unescape(v->p, v->end, buf, len, NULL);
}

long
jsonr_string_nul(const struct jsonr *v, char *buf, size_t len, int *nul)
{
	*nul = 0;
	if (v == NULL || v->type != JSONR_STRING)
		return -1;
	return jsonr_unescape(v->p, v->end, buf, len, nul);
}

int
jsonr_count(const struct jsonr *obj, const char *key)
{
	struct jsonr	 out;
	struct jsonr_pick pk;

	jsonr_pick_init(&pk, &key, 1, &out);
	if (obj == NULL || obj->type != JSONR_OBJECT)
		return 0;
	(void)jsonr_object(obj->p, obj->end, 0, &pk);
	return pk.found + (pk.dup != 0);
}

long
jsonr_array_len(const struct jsonr *v)
{
	const char	*p, *e;
	long		 n = 0;
	int		 done = 0;

	if (v == NULL || v->type != JSONR_ARRAY)
		return -1;
	e = v->end;
	p = jsonr_ws(v->p + 1, e);
	if (p < e && *p == ']')
		return 0;
	/* Valid text, already checked: count the elements. */
	while (!done && p != NULL && (p = jsonr_skip_value(p, e, 0, NULL)) !=
	    NULL) {
		n++;
		p = jsonr_after_item(p, e, ']', &done);
	}
	return n;
}

const char *
jsonr_type_name(enum jsonr_type t)
{
	switch (t) {
	case JSONR_NONE:	return "none";
	case JSONR_OBJECT:	return "object";
	case JSONR_ARRAY:	return "array";
	case JSONR_STRING:	return "string";
	case JSONR_NUMBER:	return "number";
	case JSONR_TRUE:	return "true";
	case JSONR_FALSE:	return "false";
	case JSONR_NULL:	return "null";
	}
	return "?";
}
