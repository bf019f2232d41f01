/* fuzz_sse: the SSE event splitter and the usage readers, called directly
 * the way session_sse_body() calls them: bytes fed in reads of varying
 * size to sse_scan_feed(), each finished event's data given to
 * usage_from_json() and usage_only_chunk(), and the usage written out as
 * the records write it. Also checks that the splitter consumes every
 * byte it is given and reports events the same way whatever the read
 * sizes (the first byte seeds the read sizes).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/jsonw.h"
#include "upstream/upstream_usage.h"

/* Splits data into events with reads of the sizes seed picks; returns
 * the number of events and a checksum of what they said. */
static size_t
run(const uint8_t *data, size_t size, uint32_t seed, uint64_t *sum,
    struct usage *u)
{
	struct sse_scan	 sc;
	struct jsonw	 w;
	char		 stack[256];
	size_t		 off = 0, n, used, events = 0;
	int		 done;

	sse_scan_init(&sc);
	usage_init(u);
	*sum = 0;
	while (off < size) {
		seed = seed * 1103515245u + 12345u;
		n = seed == 0 ? size - off : 1 + (seed >> 16) % 97;
		if (n > size - off)
			n = size - off;
		while (n > 0) {
			used = sse_scan_feed(&sc, (const char *)data + off, n,
			    &done);
			if (used > n)
				abort();	/* used more than it was given */
			if (used == 0 && !done)
				abort();	/* no progress, no event */
			off += used;
			n -= used;
			if (!done)
				continue;
			events++;
			if (!sc.overflow) {
				usage_from_json(u, sc.event, sc.data, sc.dlen);
				(void)usage_only_chunk(sc.data, sc.dlen);
				*sum = *sum * 31 + sc.dlen;
			} else
				*sum = *sum * 31 + 7;
			sse_scan_next(&sc);
		}
	}
	jsonw_init(&w, stack, sizeof(stack));
	jsonw_obj_open(&w);
	usage_members(&w, u);
	jsonw_obj_close(&w);
	jsonw_free(&w);
	sse_scan_free(&sc);
	return events;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usage	 u1, u2;
	uint64_t	 s1, s2;
	size_t		 e1, e2;

	if (size < 1)
		return 0;
	/* The whole input as one JSON answer (the non-streaming path). */
	usage_init(&u1);
	usage_from_json(&u1, NULL, (const char *)data + 1, size - 1);
	(void)usage_only_chunk((const char *)data + 1, size - 1);

	/* The same body in one read and in reads of other sizes. */
	e1 = run(data + 1, size - 1, 0, &s1, &u1);
	e2 = run(data + 1, size - 1, data[0] | 1u, &s2, &u2);
	if (e1 != e2 || s1 != s2 || u1.prompt != u2.prompt ||
	    u1.completion != u2.completion || u1.total != u2.total ||
	    u1.cached != u2.cached || u1.reasoning != u2.reasoning ||
	    u1.seen != u2.seen) {
		fprintf(stderr, "fuzz_sse: read sizes changed the result: "
		    "%zu/%zu events\n", e1, e2);
		abort();
	}
	return 0;
}
