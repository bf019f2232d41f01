/* Unit tests for upstream_usage: SSE events split at every byte boundary,
 * and the usage shapes of OpenAI chat, OpenAI Responses and Anthropic. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "upstream/upstream_usage.h"

static const char openai_stream[] =
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n"
    ": a comment\n\n"
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,"
    "\"completion_tokens\":7,\"total_tokens\":18,\"prompt_tokens_details\":"
    "{\"cached_tokens\":4},\"completion_tokens_details\":"
    "{\"reasoning_tokens\":2}}}\r\n\r\n"
    "data: [DONE]\n\n";

static const char anthropic_stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":"
    "{\"input_tokens\":25,\"output_tokens\":1,\"cache_read_input_tokens\":5}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"x\"}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static const char responses_stream[] =
    "event: response.output_text.delta\n"
    "data: {\"type\":\"response.output_text.delta\",\"delta\":\"x\"}\n\n"
    "event: response.completed\n"
    "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\","
    "\"usage\":{\"input_tokens\":9,\"output_tokens\":3,\"total_tokens\":12,"
    "\"output_tokens_details\":{\"reasoning_tokens\":1}}}}\n\n";

/* Feeds text in two pieces split at cut; returns the events seen. */
static int
feed_split(const char *text, size_t cut, struct usage *u, char names[][48])
{
	struct sse_scan	 sc;
	size_t		 len = strlen(text), off = 0, piece, used;
	int		 done, events = 0;

	sse_scan_init(&sc);
	usage_init(u);
	while (off < len) {
		piece = off < cut ? cut - off : len - off;
		while (piece > 0) {
			used = sse_scan_feed(&sc, text + off, piece, &done);
			off += used;
			piece -= used;
			if (done) {
				usage_from_json(u, sc.event, sc.data, sc.dlen);
				if (names != NULL)
					strcpy(names[events], sc.event);
				events++;
				sse_scan_next(&sc);
			}
		}
	}
	sse_scan_free(&sc);
	return events;
}

Test(usage, openai_chat_split_at_every_byte)
{
	struct usage	 u;
	size_t		 cut;

	for (cut = 0; cut <= strlen(openai_stream); cut++) {
		cr_assert_eq(feed_split(openai_stream, cut, &u, NULL), 4,
		    "cut %zu", cut);
		cr_assert_eq(u.prompt, 11, "cut %zu", cut);
		cr_assert_eq(u.completion, 7);
		cr_assert_eq(u.total, 18);
		cr_assert_eq(u.cached, 4);
		cr_assert_eq(u.reasoning, 2);
	}
}

Test(usage, anthropic_split_at_every_byte)
{
	struct usage	 u;
	char		 names[8][48];
	size_t		 cut;

	for (cut = 0; cut <= strlen(anthropic_stream); cut++) {
		cr_assert_eq(feed_split(anthropic_stream, cut, &u, names), 4);
		cr_assert_str_eq(names[0], "message_start");
		cr_assert_str_eq(names[2], "message_delta");
		cr_assert_eq(u.prompt, 25, "cut %zu", cut);
		cr_assert_eq(u.completion, 15, "cut %zu", cut);
		cr_assert_eq(u.total, 40);
		cr_assert_eq(u.cached, 5);
	}
}

Test(usage, responses_api_split_at_every_byte)
{
	struct usage	 u;
	size_t		 cut;

	for (cut = 0; cut <= strlen(responses_stream); cut++) {
		cr_assert_eq(feed_split(responses_stream, cut, &u, NULL), 2);
		cr_assert_eq(u.prompt, 9);
		cr_assert_eq(u.completion, 3);
		cr_assert_eq(u.total, 12);
		cr_assert_eq(u.reasoning, 1);
	}
}

Test(usage, no_usage_is_missing)
{
	struct usage	 u;
	struct jsonw	 w;

	cr_assert_eq(feed_split("data: {\"choices\":[]}\n\ndata: [DONE]\n\n", 9,
	    &u, NULL), 2);
	cr_assert_not(u.seen);
	jsonw_init(&w, NULL, 0);
	jsonw_obj_open(&w);
	usage_members(&w, &u);
	jsonw_obj_close(&w);
	cr_assert_str_eq(w.buf, "{\"usage\":null,\"usage_source\":\"missing\"}");
	jsonw_free(&w);
}

Test(usage, non_streaming_answer)
{
	struct usage	 u;
	const char	*a = "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":"
	    "\"usage is a word\"}}],\"usage\":{\"prompt_tokens\":3,"
	    "\"completion_tokens\":4,\"total_tokens\":7}}";

	usage_init(&u);
	cr_assert_eq(usage_from_json(&u, NULL, a, strlen(a)), 1);
	cr_assert_eq(u.total, 7);
	cr_assert_eq(u.cached, -1);
}

/* The quick test for "usage" finds it after any run of 'u' bytes (which
 * it skips one memchr at a time), and a body that only nearly says it
 * ("usag", "Usage") is not walked for a count. */
Test(usage, usage_found_after_any_prefix)
{
	char		 doc[128], pad[40];
	struct usage	 u;
	size_t		 n;

	for (n = 0; n < sizeof(pad); n++) {
		memset(pad, 'u', n);
		pad[n] = '\0';
		snprintf(doc, sizeof(doc), "{\"x\":\"%s\",\"usage\":"
		    "{\"total_tokens\":5}}", pad);
		usage_init(&u);
		cr_assert_eq(usage_from_json(&u, NULL, doc, strlen(doc)), 1,
		    "%s", doc);
		cr_assert_eq(u.total, 5);
	}
	usage_init(&u);
	snprintf(doc, sizeof(doc), "{\"usag\":{\"total_tokens\":5}}");
	cr_assert_eq(usage_from_json(&u, NULL, doc, strlen(doc)), 0);
	snprintf(doc, sizeof(doc), "{\"Usage\":{\"total_tokens\":5}}");
	cr_assert_eq(usage_from_json(&u, NULL, doc, strlen(doc)), 0);
	cr_assert_not(u.seen);
}

Test(usage, usage_only_chunk_detection)
{
	const char *only = "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":1}}";
	const char *text = "{\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"usage\"}}],"
	    "\"usage\":null}";

	cr_assert(usage_only_chunk(only, strlen(only)));
	cr_assert_not(usage_only_chunk(text, strlen(text)));
	cr_assert_not(usage_only_chunk("[DONE]", 6));
}

Test(usage, oversized_event_is_skipped_not_fatal)
{
	struct sse_scan	 sc;
	char		*big = malloc(SSE_SCAN_MAX + 100);
	size_t		 used, off = 0, n;
	int		 done = 0;

	memcpy(big, "data: ", 6);
	memset(big + 6, 'a', SSE_SCAN_MAX + 90);
	memcpy(big + SSE_SCAN_MAX + 96, "\n\n", 2);
	n = SSE_SCAN_MAX + 98;
	sse_scan_init(&sc);
	while (off < n && !done) {
		used = sse_scan_feed(&sc, big + off, n - off < 4096 ? n - off :
		    4096, &done);
		off += used;
	}
	cr_assert(done);
	cr_assert(sc.overflow);
	cr_assert_eq(off, n);
	sse_scan_free(&sc);
	free(big);
}

/* Found by fuzzing: a count out of int64 range is ignored, not converted. */
Test(usage, absurd_numbers_are_ignored)
{
	struct usage	 u;
	const char	*a = "{\"usage\":{\"prompt_tokens\":1e300,"
	    "\"completion_tokens\":-4,\"total_tokens\":7}}";

	usage_init(&u);
	cr_assert_eq(usage_from_json(&u, NULL, a, strlen(a)), 1);
	cr_assert_eq(u.prompt, -1);
	cr_assert_eq(u.completion, -1);
	cr_assert_eq(u.total, 7);
}
