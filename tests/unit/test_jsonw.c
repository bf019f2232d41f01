/* Unit tests for proxy/jsonw.c: escaping, nesting, growth. */
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
