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
	    "Transfer-Encoding", "Upgrade", "Trailer", "Proxy-Authorization",
	    "Proxy-Connection", "PROXY-X", "tE", "HTTP2-Settings",
	    "http2-settings" };
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

/* The Connection field is counted when its value starts (the name may come
 * in pieces); it may follow the fields it names; a cleared list forgets it. */
Test(headers, connection_after_the_fields_it_names)
{
	struct header_list hl;

	headers_init(&hl);
	add(&hl, "X-Listed", "1");
	add(&hl, "X-Kept", "2");
	headers_add_name(&hl, "Conn", 4);
	headers_add_name(&hl, "ection", 6);
	headers_name_done(&hl);
	headers_add_value(&hl, "x-lis", 5);
	headers_add_value(&hl, "ted", 3);
	cr_assert_eq(hl.conns, 1);
	cr_assert(headers_is_hop_by_hop(&hl, 0));
	cr_assert_not(headers_is_hop_by_hop(&hl, 1));
	headers_clear(&hl);
	cr_assert_eq(hl.conns, 0);
	add(&hl, "X-Listed", "1");
	cr_assert_not(headers_is_hop_by_hop(&hl, 0));
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

Test(headers, headbuf_gathers_a_head)
{
	struct header_list hl;
	struct evbuffer *out = evbuffer_new();
	struct headbuf	 hb;
	char		 buf[128], hex[20];
	size_t		 n;

	headers_init(&hl);
	add(&hl, "X-Request-Id", "abc");
	headbuf_init(&hb, out);
	headbuf_lit(&hb, "HTTP/1.1 ");
	headbuf_uint(&hb, 200);
	headbuf_str(&hb, " OK\r\n");
	headbuf_field(&hb, &hl, 0);
	headbuf_lit(&hb, "Content-Length: ");
	headbuf_uint(&hb, 0);
	headbuf_uint(&hb, 18446744073709551615ULL);
	cr_assert_eq(evbuffer_get_length(out), 0, "nothing before the flush");
	headbuf_flush(&hb);
	n = evbuffer_remove(out, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	cr_assert_str_eq(buf, "HTTP/1.1 200 OK\r\nX-Request-Id: abc\r\n"
	    "Content-Length: 018446744073709551615");
	cr_assert_eq(headers_hex(hex, 0), 1);
	cr_assert_str_eq(hex, "0");
	cr_assert_eq(headers_hex(hex, 0x2e8), 3);
	cr_assert_str_eq(hex, "2e8");
	cr_assert_eq(headers_hex(hex, UINT64_MAX), 16);
	cr_assert_str_eq(hex, "ffffffffffffffff");
	evbuffer_free(out);
	headers_free(&hl);
}

/* Past its stack buffer, a headbuf passes bytes on in order, and a piece
 * larger than the buffer goes to the evbuffer as it is. */
Test(headers, headbuf_overflows_in_order)
{
	struct evbuffer	*out = evbuffer_new();
	struct headbuf	 hb;
	static char	 big[5000], want[5000 + 3000];
	char		*got;
	size_t		 i, w = 0;

	headbuf_init(&hb, out);
	for (i = 0; i < 3000; i++) {
		char c = (char)('a' + i % 26);

		headbuf_add(&hb, &c, 1);
		want[w++] = c;
	}
	memset(big, 'Z', sizeof(big));
	headbuf_add(&hb, big, sizeof(big));
	memcpy(want + w, big, sizeof(big));
	w += sizeof(big);
	headbuf_flush(&hb);
	cr_assert_eq(evbuffer_get_length(out), w);
	got = (char *)evbuffer_pullup(out, -1);
	cr_assert_eq(memcmp(got, want, w), 0);
	evbuffer_free(out);
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

/* The list's parse position is a named state. */
Test(headers, piece_state_is_named)
{
	struct header_list hl;

	headers_init(&hl);
	cr_assert_str_eq(header_piece_name(hl.last), "none");
	cr_assert_eq(headers_add_name(&hl, "Ho", 2), 0);
	cr_assert_str_eq(header_piece_name(hl.last), "name");
	headers_name_done(&hl);
	cr_assert_str_eq(header_piece_name(hl.last), "name_done");
	cr_assert_eq(headers_add_value(&hl, "x", 1), 0);
	cr_assert_str_eq(header_piece_name(hl.last), "value");
	headers_free(&hl);
}
