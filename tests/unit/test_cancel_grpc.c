/* Unit tests for cancel_grpc.c: grpc-timeout both ways, the statuses this
 * hop answers, and grpc-message percent-encoding (gRPC's
 * doc/PROTOCOL-HTTP2.md). */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cancel_chain/cancel_grpc.h"

static uint64_t
parse_ok(const char *v)
{
	uint64_t	 us = 0;

	cr_assert_eq(grpc_timeout_parse(v, strlen(v), &us), 0, "%s", v);
	return us;
}

Test(cancel_grpc, timeout_units)
{
	cr_assert_eq(parse_ok("1H"), 3600ull * 1000000);
	cr_assert_eq(parse_ok("2M"), 120ull * 1000000);
	cr_assert_eq(parse_ok("3S"), 3000000);
	cr_assert_eq(parse_ok("500m"), 500000);
	cr_assert_eq(parse_ok("250u"), 250);
	cr_assert_eq(parse_ok("1n"), 1, "nanoseconds round up, never to 0");
	cr_assert_eq(parse_ok("1000n"), 1);
	cr_assert_eq(parse_ok("1001n"), 2);
	cr_assert_eq(parse_ok("0S"), 0);
	cr_assert_eq(parse_ok("99999999S"), 99999999ull * 1000000);
	cr_assert_eq(parse_ok("99999999H"), 99999999ull * 3600 * 1000000);
}

Test(cancel_grpc, malformed_timeouts_are_refused)
{
	static const char *const bad[] = {
		"", "S", "1", "10", "1s", "1h", "1x", "-1S", "+1S", " 1S", "1S ",
		"1.5S", "123456789S", "1 S", "0x10m", "1SS",
	};
	uint64_t	 us;
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(grpc_timeout_parse(bad[i], strlen(bad[i]), &us),
		    -1, "accepted \"%s\"", bad[i]);
}

Test(cancel_grpc, timeout_format_rounds_down_in_the_finest_unit)
{
	char	 buf[GRPC_TIMEOUT_MAX];

	cr_assert_eq(grpc_timeout_format(0, buf), 2);
	cr_assert_str_eq(buf, "1u", "never 0: the spec wants a positive value");
	grpc_timeout_format(1500, buf);
	cr_assert_str_eq(buf, "1500u");
	grpc_timeout_format(99999999, buf);
	cr_assert_str_eq(buf, "99999999u");
	grpc_timeout_format(100000000, buf);
	cr_assert_str_eq(buf, "100000m");
	grpc_timeout_format(123456789012ull, buf);
	cr_assert_str_eq(buf, "123456S", "123456789012 us: past 8 digits in ms");
	grpc_timeout_format(UINT64_MAX, buf);
	cr_assert_str_eq(buf, "99999999H");
}

/* Every value written reads back as at most what was asked, and within one
 * unit of it. */
Test(cancel_grpc, timeout_round_trip)
{
	uint64_t	 us, back;
	char		 buf[GRPC_TIMEOUT_MAX];
	size_t		 n;

	for (us = 1; us < UINT64_MAX / 3; us = us * 3 + 7) {
		n = grpc_timeout_format(us, buf);
		cr_assert(n >= 2 && n <= 9, "%s", buf);
		cr_assert_eq(grpc_timeout_parse(buf, n, &back), 0, "%s", buf);
		cr_assert(back <= us, "%llu became %s",
		    (unsigned long long)us, buf);
		{
			char	 one[3] = { '1', buf[n - 1], '\0' };
			uint64_t unit = parse_ok(one);

			cr_assert(us - back < unit || back == 99999999ull *
			    3600 * 1000000, "%llu became %s",
			    (unsigned long long)us, buf);
		}
	}
}

Test(cancel_grpc, content_types)
{
	cr_assert(grpc_content_type_is("application/grpc", 16));
	cr_assert(grpc_content_type_is("application/grpc+proto", 22));
	cr_assert(grpc_content_type_is("Application/GRPC;charset=x", 26));
	cr_assert(!grpc_content_type_is("application/grpc-web", 20));
	cr_assert(!grpc_content_type_is("application/json", 16));
	cr_assert(!grpc_content_type_is(NULL, 0));
}

Test(cancel_grpc, statuses_for_cancels)
{
	cr_assert_eq(grpc_status_for_cancel(CANCEL_KIND_FIRST_BYTE_TIMEOUT,
	    CANCEL_VIA_TIMER), 4);
	cr_assert_eq(grpc_status_for_cancel(CANCEL_KIND_IDLE_TIMEOUT,
	    CANCEL_VIA_TIMER), 4);
	cr_assert_eq(grpc_status_for_cancel(CANCEL_KIND_UPSTREAM_ERROR,
	    CANCEL_VIA_TIMER), 4, "a connect timeout is a deadline");
	cr_assert_eq(grpc_status_for_cancel(CANCEL_KIND_UPSTREAM_ERROR,
	    CANCEL_VIA_RST), 14);
	cr_assert_eq(grpc_status_for_cancel(CANCEL_KIND_UPSTREAM_CLOSED,
	    CANCEL_VIA_EOF), 14);
	cr_assert_eq(grpc_status_for_cancel(CANCEL_KIND_ADMIN,
	    CANCEL_VIA_ADMIN), 1);
	cr_assert_eq(grpc_status_for_cancel(CANCEL_KIND_CLIENT_CANCEL,
	    CANCEL_VIA_ADMIN), 1);
	cr_assert_eq(grpc_status_for_cancel(CANCEL_KIND_SHUTDOWN,
	    CANCEL_VIA_SIGNAL), 1);
	cr_assert_str_eq(grpc_status_name(14), "UNAVAILABLE");
}

Test(cancel_grpc, statuses_for_resets)
{
	static const struct { uint32_t code; int status; } t[] = {
		{ 0x0, 13 }, { 0x1, 13 }, { 0x2, 13 }, { 0x3, 13 }, { 0x4, 13 },
		{ 0x6, 13 }, { 0x7, 14 }, { 0x8, 1 }, { 0x9, 13 }, { 0xa, 13 },
		{ 0xb, 8 }, { 0xc, 7 },
	};
	size_t		 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_assert_eq(grpc_status_for_reset(t[i].code), t[i].status,
		    "code %u", t[i].code);
}

Test(cancel_grpc, message_encoding)
{
	const char	*in = "[canceled path: core -> edge] 50% \xc3\xa9\n";
	char		 out[128], back[128];
	size_t		 n;

	n = grpc_message_encode(in, strlen(in), out, sizeof(out));
	cr_assert_str_eq(out,
	    "[canceled path: core -> edge] 50%25 %C3%A9%0A");
	cr_assert_eq(n, strlen(out));
	grpc_message_decode(out, n, back, sizeof(back));
	cr_assert_str_eq(back, in);
}

Test(cancel_grpc, message_encoding_never_cuts_an_escape)
{
	char	 out[6];

	grpc_message_encode("ab\n\n", 4, out, sizeof(out));
	cr_assert_str_eq(out, "ab%0A", "the second escape does not fit");
	grpc_message_encode("abcdefgh", 8, out, sizeof(out));
	cr_assert_str_eq(out, "abcde");
}

Test(cancel_grpc, broken_escapes_decode_as_they_are)
{
	char	 out[32];

	grpc_message_decode("100%", 4, out, sizeof(out));
	cr_assert_str_eq(out, "100%");
	grpc_message_decode("%zz%4", 5, out, sizeof(out));
	cr_assert_str_eq(out, "%zz%4");
	grpc_message_decode("%41%42", 6, out, sizeof(out));
	cr_assert_str_eq(out, "AB");
}
