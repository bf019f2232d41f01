/* Unit tests for session.c's SSE event counting: the events a client is
 * sent are counted by blank lines, whatever the read boundaries. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proxy/jsonr.h"
#include "proxy/session.h"

/* The byte-by-byte rule the counter implements. */
static uint64_t
reference_count(const char *p, size_t n, unsigned *nl_out)
{
	uint64_t	 events = 0;
	unsigned	 nl = 0;
	size_t		 i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (++nl == 2)
				events++;
		} else if (p[i] != '\r')
			nl = 0;
	}
	*nl_out = nl > 255 ? 255 : nl;
	return events;
}

Test(session, sse_events_counted_across_every_split)
{
	static const char *const bodies[] = {
		"data: a\n\ndata: b\r\n\r\n: comment\n\nevent: x\ndata: y\n\n",
		"\n\n\n\ndata: z\r\r\n\r\n",
		"data: no end\n",
		"\r\n\r\n",
	};
	size_t		 b, cut, cut2;

	for (b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
		const char *p = bodies[b];
		size_t	 n = strlen(p);

		for (cut = 0; cut <= n; cut++)
			for (cut2 = cut; cut2 <= n; cut2++) {
				struct session s;
				unsigned	 nl;

				memset(&s, 0, sizeof(s));
				session_sse_scan(&s, p, cut);
				session_sse_scan(&s, p + cut, cut2 - cut);
				session_sse_scan(&s, p + cut2, n - cut2);
				cr_assert_eq(s.sse_events, reference_count(p, n,
				    &nl), "body %zu split at %zu, %zu", b, cut,
				    cut2);
				/* Newlines in a row at the end (for an error
				 * event's lead-in). */
				cr_assert_eq(s.sse_nl, nl, "body %zu", b);
			}
	}
}

/* The lifecycle only moves forward, and every state has a name. */
Test(session, states_move_forward_with_names)
{
	struct session	 s;

	memset(&s, 0, sizeof(s));
	cr_assert_eq(s.state, SESSION_LIVE);
	cr_assert_str_eq(session_state_name(SESSION_LIVE), "live");
	session_state_set(&s, SESSION_DRAINING);
	cr_assert(!session_closed(&s), "a draining session is not closed");
	session_state_set(&s, SESSION_CLOSING);
	cr_assert(session_closed(&s));
	session_state_set(&s, SESSION_AWAITING_NOTE);
	session_state_set(&s, SESSION_DONE);
	cr_assert_str_eq(session_state_name(s.state), "done");
	cr_assert_str_eq(session_state_name((enum session_state)99), "unknown");
}

/* A step back means the teardown ran twice: stop rather than write a
 * second record. */
Test(session, a_step_back_aborts, .signal = SIGABRT)
{
	struct session	 s;

	memset(&s, 0, sizeof(s));
	session_state_set(&s, SESSION_DONE);
	session_state_set(&s, SESSION_CLOSING);
}

/* session_body_read: what the proxy makes of a body, case by case. */
Test(session, body_read_refuses_what_readers_could_read_apart)
{
	static const struct {
		const char	*ct, *body;
		int		 want;		/* 1 read, 0 no JSON, -1 refused */
		const char	*model;		/* when read; NULL: none */
		const char	*code;		/* when refused */
	} cases[] = {
		{ "application/json", "{\"model\":\"gpt-4o\"}", 1, "gpt-4o", NULL },
		{ "application/json; charset=utf-8", " {\"model\":\"a\"} \n", 1,
		  "a", NULL },
		{ "text/plain", "{\"model\":\"gpt-4o\"}", 1, "gpt-4o", NULL },
		{ NULL, "{\"model\":\"gpt-4o\"}", 1, "gpt-4o", NULL },
		{ "application/x-www-form-urlencoded", "model=gpt-4o", 0, NULL,
		  NULL },
		{ "text/plain", "hello", 0, NULL, NULL },
		{ "application/json", "[1,2]", 1, NULL, NULL },
		{ "application/json", "{\"stream\":true}", 1, NULL, NULL },
		{ "application/json", "{\"model\":\"other\",\"model\":\"gpt-4o\"}",
		  -1, NULL, "duplicate_key" },
		{ "application/json", "{\"model\":\"a\\u0000b\"}", -1, NULL,
		  "invalid_model" },
		{ "application/json", "{\"model\":\"a\\u0085b\"}", -1, NULL,
		  "invalid_model" },		/* C1 control */
		{ "application/json", "{\"model\":\"a\xc2\x85" "b\"}", -1, NULL,
		  "invalid_model" },
		{ "application/json", "{\"model\":\"a\xe9\"}", -1, NULL,
		  "invalid_model" },		/* Latin-1, not UTF-8 */
		{ "application/json", "{\"model\":null}", -1, NULL,
		  "invalid_model" },
		{ "application/json", "{\"model\":\"x\"} x", -1, NULL,
		  "invalid_json" },
		{ "application/json", "nope", -1, NULL, "invalid_json" },
		{ "text/plain", "\x01{\"model\":\"gpt-4o\"}", -1, NULL,
		  "invalid_json" },		/* cJSON skips \x01 */
		{ "text/plain", "\xef\xbb\xbf{\"model\":\"gpt-4o\"}", -1, NULL,
		  "invalid_json" },
		{ "application/json", "{\"model\":\"\\u00e9t\\u00e9\"}", 1,
		  "\xc3\xa9t\xc3\xa9", NULL },
	};
	size_t	 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jsonr		 m[BODY_NKEYS];
		struct body_refusal	 why;
		char			*model = NULL;
		int			 r;

		r = session_body_read(cases[i].body, strlen(cases[i].body),
		    cases[i].ct, m, &model, &why);
		cr_expect_eq(r, cases[i].want, "case %zu: %d", i, r);
		if (r == 1 && cases[i].model != NULL)
			cr_expect(model != NULL &&
			    strcmp(model, cases[i].model) == 0, "case %zu: %s",
			    i, model ? model : "(none)");
		else if (r == 1)
			cr_expect_null(model, "case %zu", i);
		if (r == -1)
			cr_expect_str_eq(why.code, cases[i].code, "case %zu: %s",
			    i, why.msg);
		free(model);
	}
}
