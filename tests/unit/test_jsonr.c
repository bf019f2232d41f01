/* Unit tests for jsonr: in-place reading agrees with cJSON (the library it
 * replaced on the hot path) on what is JSON, on member lookup and on string
 * and number values; and it refuses what cJSON refuses. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "proxy/jsonr.h"

/* Documents both readers must accept or refuse alike. */
static const char *const docs[] = {
	"{}", "[]", "0", "-0.5e+3", "\"x\"", "true", "false", "null",
	" {\"model\" : \"gpt-4o\" , \"stream\":true} ",
	"{\"model\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\"}",
	"{\"a\":[1,2,{\"b\":[[]]}],\"model\":\"m\"}",
	"{\"model\":\"first\",\"model\":\"second\"}",
	"{\"mo\\u0064el\":\"escaped key\"}",
	"{\"model\":12}", "{\"model\":null}", "[\"model\",\"x\"]",
	"{\"usage\":{\"prompt_tokens\":11,\"total_tokens\":1e2}}",
	"{\"x\":1} trailing bytes are ignored",
	/* Refused by both. */
	"", "   ", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]",
	"{a:1}", "\"unterminated", "\"bad \\x escape\"", "\"\\u12\"",
	"\"\\udc00 lone low surrogate\"", "\"\\ud800 lone high\"", "tru",
	"nul", "{\"a\":1", "[[[", "-", ".5",
};

/* Numbers RFC 8259 refuses and cJSON's strtod takes: jsonr refuses them. */
static const char *const stricter[] = { "1.", "1e", "1e+", "-.5" };

/* What cJSON says "model" is: -1 not JSON, 0 absent or not a string. */
static int
cjson_model(const char *doc, char *buf, size_t len)
{
	cJSON		*root = cJSON_ParseWithLength(doc, strlen(doc));
	const cJSON	*m;
	int		 r = 0;

	if (root == NULL)
		return -1;
	m = cJSON_GetObjectItemCaseSensitive(root, "model");
	if (cJSON_IsString(m) && strlen(m->valuestring) < len) {
		strcpy(buf, m->valuestring);
		r = 1;
	}
	cJSON_Delete(root);
	return r;
}

static int
jsonr_model(const char *doc, char *buf, size_t len)
{
	struct jsonr	 root, m;

	if (jsonr_parse(doc, strlen(doc), &root) == -1)
		return -1;
	if (!jsonr_get(&root, "model", &m) || jsonr_string(&m, buf, len) < 0)
		return 0;
	return 1;
}

Test(jsonr, agrees_with_cjson)
{
	size_t	 i;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		char	 a[256] = "", b[256] = "";
		int	 ra = cjson_model(docs[i], a, sizeof(a));
		int	 rb = jsonr_model(docs[i], b, sizeof(b));

		cr_expect_eq(ra, rb, "doc %zu \"%s\": cJSON %d, jsonr %d", i,
		    docs[i], ra, rb);
		if (ra == 1 && rb == 1)
			cr_expect_str_eq(a, b, "doc %zu", i);
	}
}

/* Strings are scanned eight bytes at a time for 32 bytes, then with
 * memchr: an escape or the closing quote at every offset of every length
 * on both sides of those bounds, and the same strings left unterminated,
 * must read as cJSON reads them. */
Test(jsonr, string_scan_at_every_offset)
{
	static const char *const escapes[] = { "\\\"", "\\\\", "\\n",
	    "\\u0041" };
	char	 doc[256], val[128], a[256], b[256];
	size_t	 len, pos, k;

	for (len = 0; len <= 80; len++)
		for (k = 0; k < sizeof(escapes) / sizeof(escapes[0]); k++)
			for (pos = 0; pos <= len; pos++) {
				memset(val, 'a', len);
				val[len] = '\0';
				snprintf(doc, sizeof(doc),
				    "{\"model\":\"%.*s%s%s\"}", (int)pos, val,
				    pos < len ? escapes[k] : "", val + pos);
				a[0] = b[0] = '\0';
				cr_assert_eq(cjson_model(doc, a, sizeof(a)),
				    jsonr_model(doc, b, sizeof(b)), "%s", doc);
				cr_assert_str_eq(a, b, "%s", doc);
				/* Cut before the closing quote: refused. */
				doc[strlen(doc) - 2] = '\0';
				cr_assert_eq(jsonr_model(doc, b, sizeof(b)), -1,
				    "%s", doc);
				cr_assert_eq(cjson_model(doc, a, sizeof(a)), -1,
				    "%s", doc);
			}
}

Test(jsonr, number_grammar_is_strict)
{
	struct jsonr	 root;
	size_t		 i;

	for (i = 0; i < sizeof(stricter) / sizeof(stricter[0]); i++)
		cr_expect_eq(jsonr_parse(stricter[i], strlen(stricter[i]),
		    &root), -1, "\"%s\"", stricter[i]);
}

Test(jsonr, values)
{
	const char	*doc = "{\"n\":-12.5e1,\"s\":\"\\u00e9t\\u00e9\","
	    "\"arr\":[1,[2,3],{\"x\":4}],\"e\":[],\"o\":{\"k\":true}}";
	struct jsonr	 root, v, o;
	double		 d;
	char		 buf[16];

	cr_assert_eq(jsonr_parse(doc, strlen(doc), &root), 0);
	cr_assert_eq(root.type, JSONR_OBJECT);
	cr_assert(jsonr_get(&root, "n", &v));
	cr_assert_eq(jsonr_number(&v, &d), 0);
	cr_expect(fabs(d + 125.0) < 1e-9);
	cr_assert(jsonr_get(&root, "s", &v));
	cr_expect_eq(jsonr_string(&v, buf, sizeof(buf)), 5);
	cr_expect_str_eq(buf, "\xc3\xa9t\xc3\xa9");
	cr_expect_eq(jsonr_string(&v, buf, 4), -1, "does not fit");
	cr_assert(jsonr_get(&root, "arr", &v));
	cr_expect_eq(jsonr_array_len(&v), 3);
	cr_assert(jsonr_get(&root, "e", &v));
	cr_expect_eq(jsonr_array_len(&v), 0);
	cr_assert(jsonr_get(&root, "o", &o));
	cr_assert(jsonr_get(&o, "k", &v));
	cr_expect_eq(v.type, JSONR_TRUE);
	cr_expect_not(jsonr_get(&root, "k", &v), "only direct members");
	cr_expect_eq(v.type, JSONR_NONE);
	cr_expect_eq(jsonr_number(&o, &d), -1, "an object is no number");
	cr_expect_str_eq(jsonr_type_name(JSONR_ARRAY), "array");
}

Test(jsonr, depth_is_bounded)
{
	static char	 deep[2 * JSONR_DEPTH_MAX + 8];
	struct jsonr	 root;
	size_t		 i, n = JSONR_DEPTH_MAX + 2;

	for (i = 0; i < n; i++) {
		deep[i] = '[';
		deep[2 * n - 1 - i] = ']';
	}
	cr_expect_eq(jsonr_parse(deep, 2 * n, &root), -1);
	cr_expect_eq(jsonr_parse(deep + 4, 2 * n - 8, &root), 0);
}

Test(jsonr, stops_at_its_length)
{
	const char	 doc[] = "{\"model\":\"abc\"}";
	struct jsonr	 root;

	/* The bytes past len are never read, so no NUL is needed. */
	cr_expect_eq(jsonr_parse(doc, sizeof(doc) - 2, &root), -1);
	cr_expect_eq(jsonr_parse(doc, sizeof(doc) - 1, &root), 0);
}

Test(jsonr, get_many_in_one_walk)
{
	static const char *const keys[] = { "c", "a", "missing", "b" };
	const char	*doc = "{\"a\":1,\"b\":{\"x\":[1,2]},\"a\":2,\"c\":\"s\"}";
	struct jsonr	 root, out[4];
	double		 d;

	cr_assert_eq(jsonr_parse(doc, strlen(doc), &root), 0);
	cr_assert_eq(jsonr_get_many(&root, keys, 4, out), 3);
	cr_expect_eq(out[0].type, JSONR_STRING);
	cr_assert_eq(jsonr_number(&out[1], &d), 0);
	cr_expect(d == 1.0, "the first \"a\", as cJSON finds it");
	cr_expect_eq(out[2].type, JSONR_NONE);
	cr_expect_eq(out[3].type, JSONR_OBJECT);
	cr_expect_eq(out[3].end - out[3].p, 11);
}

/* One walk that validates and picks root members agrees with the two
 * steps it replaces, and refuses what jsonr_parse refuses. */
Test(jsonr, parse_get_is_parse_then_get_many)
{
	static const char *const keys[] = { "model", "stream", "x" };
	size_t		 i, k;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct jsonr	 r1, r2, a[3], b[3];
		int		 p1 = jsonr_parse(docs[i], strlen(docs[i]), &r1);
		int		 p2 = jsonr_parse_get(docs[i], strlen(docs[i]),
				    &r2, keys, 3, b);

		cr_assert_eq(p1, p2, "doc %zu \"%s\"", i, docs[i]);
		if (p1 == -1)
			continue;
		cr_expect_eq(r1.type, r2.type, "doc %zu", i);
		cr_expect_eq(r1.end - r1.p, r2.end - r2.p, "doc %zu", i);
		jsonr_get_many(&r1, keys, 3, a);
		for (k = 0; k < 3; k++) {
			cr_expect_eq(a[k].type, b[k].type, "doc %zu key %zu",
			    i, k);
			if (a[k].type != JSONR_NONE)
				cr_expect_eq(a[k].p, b[k].p, "doc %zu", i);
		}
	}
}

/* The members the proxy reads from a request body, as session.c asks. */
static const char *const body_keys[] = { "model", "stream", "stream_options" };

/* jsonr_parse_members on doc: the dup bits, or -1 when it is no JSON. */
static int
dups(const char *doc)
{
	struct jsonr	 root, out[3];
	unsigned	 dup;

	if (jsonr_parse_members(doc, strlen(doc), &root, body_keys, 3, out,
	    &dup) == -1)
		return -1;
	return (int)dup;
}

Test(jsonr, duplicate_members_are_told)
{
	cr_expect_eq(dups("{\"model\":\"other\",\"model\":\"gpt-4o\"}"), 1);
	cr_expect_eq(dups("{\"model\":\"a\",\"mo\\u0064el\":\"b\"}"), 1,
	    "a second name spelt with an escape");
	cr_expect_eq(dups("{\"model\":\"a\",\"model\\u0000x\":\"b\"}"), 1,
	    "a name that is model up to a NUL, for C readers");
	cr_expect_eq(dups("{\"model\\u0000\":\"b\"}"), 1, "alone too");
	cr_expect_eq(dups("{\"stream\":false,\"x\":1,\"stream\":true}"), 2);
	cr_expect_eq(dups("{\"stream_options\":{},\"stream_options\":null,"
	    "\"model\":\"m\"}"), 4);
	cr_expect_eq(dups("{\"model\":\"m\",\"stream\":true,"
	    "\"stream_options\":{\"include_usage\":true}}"), 0);
	cr_expect_eq(dups("{\"messages\":[{\"model\":1},{\"model\":2}],"
	    "\"model\":\"m\"}"), 0, "nested duplicates do not count");
	cr_expect_eq(dups("{\"models\":1,\"mode\":2,\"model\":\"m\"}"), 0);
	cr_expect_eq(dups("[{\"model\":1,\"model\":2}]"), 0);
	cr_expect_eq(dups("{\"model\":\"a\",\"model\":"), -1);
}

Test(jsonr, member_count)
{
	struct jsonr	 root;
	const char	*doc = "{\"include_usage\":false,\"x\":{\"include_usage\""
	    ":1},\"include_usage\":true}";

	cr_assert_eq(jsonr_parse(doc, strlen(doc), &root), 0);
	cr_expect_eq(jsonr_count(&root, "include_usage"), 2);
	cr_expect_eq(jsonr_count(&root, "x"), 1);
	cr_expect_eq(jsonr_count(&root, "y"), 0);
}

Test(jsonr, nul_in_a_string_is_told)
{
	struct jsonr	 root, m;
	const char	*doc = "{\"model\":\"gpt-4o\\u0000-mini\",\"b\":\"x\"}";
	char		 buf[32];
	int		 nul;

	cr_assert_eq(jsonr_parse(doc, strlen(doc), &root), 0);
	cr_assert(jsonr_get(&root, "model", &m));
	cr_expect_eq(jsonr_string_nul(&m, buf, sizeof(buf), &nul), 6);
	cr_expect_str_eq(buf, "gpt-4o");
	cr_expect_eq(nul, 1);
	cr_assert(jsonr_get(&root, "b", &m));
	cr_expect_eq(jsonr_string_nul(&m, buf, sizeof(buf), &nul), 1);
	cr_expect_eq(nul, 0);
}

Test(jsonr, why_a_parse_failed)
{
	char		 deep[2 * (JSONR_DEPTH_MAX + 2) + 16];
	struct jsonr	 root;
	size_t		 n = 0;
	int		 i;

	/* As deep as allowed: read. One more: refused, and told why. */
	for (i = 0; i < JSONR_DEPTH_MAX; i++)
		deep[n++] = '[';
	for (i = 0; i < JSONR_DEPTH_MAX; i++)
		deep[n++] = ']';
	cr_expect_eq(jsonr_parse(deep, n, &root), 0);
	cr_expect_eq(jsonr_too_deep(deep, n), 0);
	n = 0;
	deep[n++] = '{';
	memcpy(deep + n, "\"a\":", 4);
	n += 4;
	for (i = 0; i < JSONR_DEPTH_MAX; i++)
		deep[n++] = '[';
	for (i = 0; i < JSONR_DEPTH_MAX; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	cr_expect_eq(jsonr_parse(deep, n, &root), -1);
	cr_expect_eq(jsonr_too_deep(deep, n), 1);
	/* Brackets inside strings are no nesting. */
	cr_expect_eq(jsonr_too_deep("{\"a\":\"[[[[\\\"[[\"", 14), 0);
	cr_expect_eq(jsonr_too_deep("{\"a\":1,}", 8), 0);
}

Test(jsonr, rest_after_the_value)
{
	struct jsonr	 root;
	const char	*a = " {\"model\":\"m\"} \r\n\t", *b = "{\"model\":\"m\"}x",
			*c = "{}{}";

	cr_assert_eq(jsonr_parse(a, strlen(a), &root), 0);
	cr_expect_eq(jsonr_rest_is_space(&root, a, strlen(a)), 1);
	cr_assert_eq(jsonr_parse(b, strlen(b), &root), 0);
	cr_expect_eq(jsonr_rest_is_space(&root, b, strlen(b)), 0);
	cr_assert_eq(jsonr_parse(c, strlen(c), &root), 0);
	cr_expect_eq(jsonr_rest_is_space(&root, c, strlen(c)), 0);
}

/* A raw byte below 0x20 in a string is refused at every offset of short
 * and long strings (cJSON takes it, and cuts names at a raw NUL; Python
 * and Go refuse it, as RFC 8259 does), in names as in values. */
Test(jsonr, raw_control_bytes_in_strings_are_refused)
{
	char		 doc[128];
	struct jsonr	 root;
	size_t		 len, pos, n;
	static const char bytes[] = { 0x00, 0x01, '\n', '\t', 0x1f };
	size_t		 b;

	for (len = 1; len <= 80; len += 13)
		for (pos = 0; pos < len; pos++)
			for (b = 0; b < sizeof(bytes); b++) {
				memcpy(doc, "{\"k\":\"", 6);
				n = 6;
				memset(doc + n, 'a', len);
				doc[n + pos] = bytes[b];
				n += len;
				memcpy(doc + n, "\"}", 2);
				n += 2;
				cr_expect_eq(jsonr_parse(doc, n, &root), -1,
				    "byte 0x%02x at %zu of %zu", bytes[b], pos,
				    len);
			}
	cr_expect_eq(jsonr_parse("{\"stream\0\":true}", 16, &root), -1,
	    "a raw NUL in a name");
	cr_expect_eq(jsonr_parse("{\"a\":\"\\u0001\\n\"}", 16, &root), 0,
	    "escaped, they are fine");
	cr_expect_eq(jsonr_parse("{\"a\":\"\x7f\xc3\xa9\"}", 11, &root), 0,
	    "DEL and UTF-8 are no control bytes to JSON");
}
