/* Unit tests for proxy/headers.c: piecewise storage and hop-by-hop rules. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <event2/buffer.h>

#include "proxy/headers.h"

static void
add(struct header_list *hl, const char *name, const char *value)
{
	cr_assert_eq(headers_add_name(hl, name, strlen(name)), 0);
	headers_name_done(hl);
	cr_assert_eq(headers_add_value(hl, value, strlen(value)), 0);
}

Test(headers, pieces_join_into_one_field)
{
	struct header_list hl;
	size_t n;
	const char *v;

	headers_init(&hl);
	headers_add_name(&hl, "Conte", 5);
	headers_add_name(&hl, "nt-Type", 7);
	headers_name_done(&hl);
	headers_add_value(&hl, "applic", 6);
	headers_add_value(&hl, "ation/json", 10);
	add(&hl, "X-A", "1");
	cr_assert_eq(hl.n, 2);
	cr_assert_str_eq(headers_name(&hl, 0), "Content-Type");
	v = headers_get(&hl, "content-type", &n);
	cr_assert_not_null(v);
	cr_assert_eq(n, 16);
	cr_assert_str_eq(v, "application/json");
	cr_assert_str_eq(headers_get(&hl, "x-a", NULL), "1");
	cr_assert_null(headers_get(&hl, "x-b", NULL));
	headers_free(&hl);
}

Test(headers, empty_value_is_kept)
{
	struct header_list hl;
	size_t n = 99;

	headers_init(&hl);
	headers_add_name(&hl, "X-Empty", 7);
	headers_name_done(&hl);
	add(&hl, "X-Next", "v");
	cr_assert_str_eq(headers_get(&hl, "x-empty", &n), "");
	cr_assert_eq(n, 0);
	cr_assert_str_eq(headers_get(&hl, "x-next", NULL), "v");
	headers_free(&hl);
}

Test(headers, many_fields_grow_the_arena)
{
	struct header_list hl;
	char name[32], value[64];
	int i;

	headers_init(&hl);
	for (i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "X-Field-%d", i);
		snprintf(value, sizeof(value), "value-%d-abcdefghijklmnop", i);
		add(&hl, name, value);
	}
	cr_assert_eq(hl.n, 500);
	cr_assert_str_eq(headers_get(&hl, "x-field-377", NULL),
	    "value-377-abcdefghijklmnop");
	cr_assert_eq(headers_count(&hl, "X-FIELD-0"), 1);
	headers_free(&hl);
}

Test(headers, hop_by_hop_fixed_names)
{
	struct header_list hl;
	const char *hop[] = { "Connection", "Keep-Alive", "TE",
	    "Transfer-Encoding", "Upgrade", "Proxy-Authorization",
	    "Proxy-Connection" };
	size_t i;

	headers_init(&hl);
	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		add(&hl, hop[i], "x");
	add(&hl, "Authorization", "Bearer k");
	add(&hl, "Content-Type", "application/json");
	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		cr_assert(headers_is_hop_by_hop(&hl, i), "%s", hop[i]);
	cr_assert_not(headers_is_hop_by_hop(&hl, hl.n - 2));
	cr_assert_not(headers_is_hop_by_hop(&hl, hl.n - 1));
	headers_free(&hl);
}

Test(headers, connection_lists_more_hop_by_hop_fields)
{
	struct header_list hl;

	headers_init(&hl);
	add(&hl, "Connection", "close, X-Secret-Thing ,  x-other");
	add(&hl, "X-Secret-Thing", "1");
	add(&hl, "X-Other", "2");
	add(&hl, "X-Kept", "3");
	cr_assert(headers_is_hop_by_hop(&hl, 1));
	cr_assert(headers_is_hop_by_hop(&hl, 2));
	cr_assert_not(headers_is_hop_by_hop(&hl, 3));
	cr_assert(headers_connection_has(&hl, "CLOSE"));
	cr_assert_not(headers_connection_has(&hl, "keep-alive"));
	headers_free(&hl);
}

Test(headers, list_token_matching)
{
	cr_assert(headers_list_has("a, b,c", 6, "b"));
	cr_assert(headers_list_has("a, b,c", 6, "c"));
	cr_assert_not(headers_list_has("ab, bc", 6, "b"));
	cr_assert_not(headers_list_has("", 0, "b"));
	cr_assert(headers_list_has(" chunked ", 9, "Chunked"));
}

Test(headers, write_field)
{
	struct header_list hl;
	struct evbuffer *out = evbuffer_new();
	char buf[64];
	size_t n;

	headers_init(&hl);
	add(&hl, "X-Request-Id", "abc");
	headers_write(&hl, 0, out);
	n = evbuffer_remove(out, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	cr_assert_str_eq(buf, "X-Request-Id: abc\r\n");
	evbuffer_free(out);
	headers_free(&hl);
}

Test(headers, clear_keeps_memory_and_forgets_fields)
{
	struct header_list hl;

	headers_init(&hl);
	add(&hl, "A", "1");
	headers_clear(&hl);
	cr_assert_eq(hl.n, 0);
	cr_assert_null(headers_get(&hl, "a", NULL));
	add(&hl, "B", "2");
	cr_assert_str_eq(headers_get(&hl, "b", NULL), "2");
	headers_free(&hl);
}
