/* Unit tests for proxy/jsonw.c: escaping, nesting, growth. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "proxy/jsonw.h"

Test(jsonw, nested_values_and_commas)
{
	struct jsonw w;
	char stack[16];

	jsonw_init(&w, stack, sizeof(stack));
	jsonw_obj_open(&w);
	jsonw_kstr(&w, "a", "x");
	jsonw_kint(&w, "b", -5);
	jsonw_key(&w, "c");
	jsonw_arr_open(&w);
	jsonw_int(&w, 1);
	jsonw_str(&w, NULL);
	jsonw_bool(&w, 1);
	jsonw_obj_open(&w);
	jsonw_obj_close(&w);
	jsonw_arr_close(&w);
	jsonw_kuint(&w, "d", 18446744073709551615ull);
	jsonw_obj_close(&w);
	cr_assert_str_eq(w.buf,
	    "{\"a\":\"x\",\"b\":-5,\"c\":[1,null,true,{}],"
	    "\"d\":18446744073709551615}");
	cr_assert(w.heap, "a 16-byte stack buffer must have grown");
	jsonw_free(&w);
}

Test(jsonw, escapes_control_and_quote_characters)
{
	struct jsonw w;
	const char raw[] = "q\"b\\n\nt\tc\x01\x1f\x7f";
	cJSON *v;

	jsonw_init(&w, NULL, 0);
	jsonw_strn(&w, raw, sizeof(raw) - 1);
	cr_assert_str_eq(w.buf,
	    "\"q\\\"b\\\\n\\nt\\tc\\u0001\\u001f\\u007f\"");
	v = cJSON_Parse(w.buf);
	cr_assert_not_null(v);
	cr_assert_str_eq(v->valuestring, raw);
	cJSON_Delete(v);
	jsonw_free(&w);
}

/* A literal key (copied whole, comma included) writes what the escaping
 * key writer writes, first member or not, nested or not. */
Test(jsonw, literal_keys_match_escaped_keys)
{
	struct jsonw a, b;

	jsonw_init(&a, NULL, 0);
	jsonw_init(&b, NULL, 0);
	jsonw_obj_open(&a);
	jsonw_lkey(&a, "first");
	jsonw_int(&a, 1);
	jsonw_lkey(&a, "nested");
	jsonw_obj_open(&a);
	jsonw_kstr(&a, "inner_key", "v");
	jsonw_obj_close(&a);
	jsonw_kbool(&a, "last", 0);
	jsonw_obj_close(&a);

	jsonw_obj_open(&b);
	jsonw_key(&b, "first");
	jsonw_int(&b, 1);
	jsonw_key(&b, "nested");
	jsonw_obj_open(&b);
	jsonw_key(&b, "inner_key");
	jsonw_str(&b, "v");
	jsonw_obj_close(&b);
	jsonw_key(&b, "last");
	jsonw_bool(&b, 0);
	jsonw_obj_close(&b);

	cr_assert_str_eq(a.buf, "{\"first\":1,\"nested\":{\"inner_key\":\"v\"},"
	    "\"last\":false}");
	cr_assert_str_eq(a.buf, b.buf);
	jsonw_free(&a);
	jsonw_free(&b);
}

/* Strings of every length up to 40 with one byte to escape at the end:
 * the word-wise check (whole words, then the last eight bytes
 * overlapping) must never pass over it. */
Test(jsonw, escape_in_the_last_partial_word)
{
	char s[41], want[64];
	size_t n;

	for (n = 1; n <= 40; n++) {
		struct jsonw w;

		memset(s, 'a', n - 1);
		s[n - 1] = '"';
		s[n] = '\0';
		jsonw_init(&w, NULL, 0);
		jsonw_str(&w, s);
		snprintf(want, sizeof(want), "\"%.*s\\\"\"", (int)(n - 1), s);
		cr_assert_str_eq(w.buf, want, "length %zu", n);
		jsonw_free(&w);
	}
}

Test(jsonw, embedded_nul_is_escaped)
{
	struct jsonw w;

	jsonw_init(&w, NULL, 0);
	jsonw_strn(&w, "a\0b", 3);
	cr_assert_str_eq(w.buf, "\"a\\u0000b\"");
	jsonw_free(&w);
}

Test(jsonw, long_strings_grow)
{
	struct jsonw w;
	char big[10000];
	cJSON *v;

	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	jsonw_init(&w, NULL, 0);
	jsonw_str(&w, big);
	cr_assert_eq(w.len, sizeof(big) - 1 + 2);
	v = cJSON_Parse(w.buf);
	cr_assert_str_eq(v->valuestring, big);
	cJSON_Delete(v);
	jsonw_free(&w);
}

/* Integers and fixed-point numbers are written without printf: they must
 * read exactly as printf writes them, ties and extremes included. */
Test(jsonw, numbers_match_printf)
{
	static const double fixed[] = {
		0, 0.0005, 0.0015, 0.125, 0.375, 1.0005, 2.5, 999999999.9999,
		123.456789, 1e-7, 1e9, 1e12, -0.5, -3.25, 5e-324,
	};
	static const int64_t ints[] = {
		0, 1, -1, 9, 10, -10, INT64_MAX, INT64_MIN, 1234567890123LL,
	};
	struct jsonw	 w;
	char		 want[64], stack[64];
	size_t		 i;
	int		 d, k;
	unsigned	 seed = 12345;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		for (d = 0; d <= 7; d++) {
			jsonw_init(&w, stack, sizeof(stack));
			jsonw_double(&w, fixed[i], d);
			snprintf(want, sizeof(want), "%.*f", d, fixed[i]);
			cr_expect_str_eq(w.buf, want, "%.17g with %d", fixed[i],
			    d);
			jsonw_free(&w);
		}
	/* Durations as records write them: microseconds / 1000. */
	for (k = 0; k < 200000; k++) {
		double v;

		seed = seed * 1103515245u + 12345u;
		v = (double)(seed % 100000000u) / 1000.0;
		jsonw_init(&w, stack, sizeof(stack));
		jsonw_double(&w, v, 3);
		snprintf(want, sizeof(want), "%.3f", v);
		cr_assert_str_eq(w.buf, want, "%.17g", v);
		jsonw_free(&w);
	}
	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		jsonw_init(&w, stack, sizeof(stack));
		jsonw_int(&w, ints[i]);
		snprintf(want, sizeof(want), "%" PRId64, ints[i]);
		cr_expect_str_eq(w.buf, want);
		jsonw_free(&w);
	}
	jsonw_init(&w, stack, sizeof(stack));
	jsonw_uint(&w, UINT64_MAX);
	cr_expect_str_eq(w.buf, "18446744073709551615");
	jsonw_free(&w);
}

/* The word-at-a-time scan finds an escape at every offset of a word. */
Test(jsonw, escapes_at_every_offset)
{
	static const char specials[] = { '"', '\\', '\n', 0x01, 0x1f, 0x7f };
	char		 in[24], stack[128];
	struct jsonw	 w;
	size_t		 k, pos;

	for (k = 0; k < sizeof(specials); k++)
		for (pos = 0; pos < sizeof(in); pos++) {
			memset(in, 'a', sizeof(in));
			in[pos] = specials[k];
			jsonw_init(&w, stack, sizeof(stack));
			jsonw_strn(&w, in, sizeof(in));
			cr_assert_neq(strstr(w.buf, "\\"), NULL,
			    "byte 0x%02x at %zu escaped", specials[k], pos);
			cr_assert_eq(w.len, sizeof(in) + 2 +
			    (specials[k] == 0x01 || specials[k] == 0x1f ||
			    specials[k] == 0x7f ? 5 : 1));
			jsonw_free(&w);
		}
	/* High bytes of well-formed UTF-8 pass unescaped (a lone 0xc3 run,
	 * as this test once used, is not UTF-8 and is replaced now). */
	for (pos = 0; pos < sizeof(in); pos += 2)
		memcpy(in + pos, "\xc3\xa9", 2);
	jsonw_init(&w, stack, sizeof(stack));
	jsonw_strn(&w, in, sizeof(in));
	cr_expect_eq(w.len, sizeof(in) + 2);
	jsonw_free(&w);
}

/* Whether s (NUL-terminated) is well-formed UTF-8, checked here without
 * jsonw's own validator: a plain decoder that rebuilds each code point. */
static int
utf8_ok(const unsigned char *s)
{
	while (*s) {
		unsigned cp, min;
		int k, i;

		if (*s < 0x80) { s++; continue; }
		if ((*s & 0xE0) == 0xC0) { k = 2; cp = *s & 0x1F; min = 0x80; }
		else if ((*s & 0xF0) == 0xE0) { k = 3; cp = *s & 0x0F; min = 0x800; }
		else if ((*s & 0xF8) == 0xF0) { k = 4; cp = *s & 0x07; min = 0x10000; }
		else return 0;
		for (i = 1; i < k; i++) {
			if ((s[i] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		s += k;
	}
	return 1;
}

Test(jsonw, invalid_utf8_is_replaced)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "/v1/\xff\xfe", "\"/v1/\\ufffd\\ufffd\"" },
		{ "caf\xc3\xa9", "\"caf\xc3\xa9\"" },		/* kept */
		{ "\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xe2\x82\xac\xf0\x9f\x98\x80\"" },
		{ "\xc0\xaf", "\"\\ufffd\\ufffd\"" },		/* overlong '/' */
		{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },	/* surrogate */
		{ "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
		{ "a\xe2\x82", "\"a\\ufffd\\ufffd\"" },		/* cut short */
		{ "gpt-4o\x80\"x", "\"gpt-4o\\ufffd\\\"x\"" },
		{ "0123456789abcdef\xfe", "\"0123456789abcdef\\ufffd\"" },
	};
	struct jsonw w;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		jsonw_init(&w, NULL, 0);
		jsonw_str(&w, cases[i].in);
		cr_assert_str_eq(w.buf, cases[i].out, "case %zu", i);
		jsonw_free(&w);
	}
}

Test(jsonw, any_bytes_make_valid_utf8_json)
{
	unsigned char in[64];
	unsigned seed = 12345;
	struct jsonw w;
	cJSON *j;
	int round;
	size_t i;

	for (round = 0; round < 20000; round++) {
		size_t n = (size_t)(round % 63) + 1;

		for (i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = (unsigned char)(seed >> 16);
			if (in[i] == 0)
				in[i] = 0xC3;
		}
		jsonw_init(&w, NULL, 0);
		jsonw_strn(&w, (const char *)in, n);
		cr_assert(utf8_ok((const unsigned char *)w.buf), "round %d", round);
		j = cJSON_Parse(w.buf);
		cr_assert(cJSON_IsString(j), "round %d: %s", round, w.buf);
		cJSON_Delete(j);
		jsonw_free(&w);
	}
}
