/* fuzz_note: what peers send. The bytes are a cancel note body
 * (cancel_note_parse), a peer's error JSON (cancel_error_parse) and, split
 * at the first newline, a signature header and body (cancel_note_verify).
 * A note that parses is written back the way this hop would write it
 * (cancel_note_json, cancel_chain_error_json, the record and its message)
 * and must parse again to the same note; a body signed with
 * cancel_note_sign() must verify, and must not verify under another
 * secret.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cancel_chain/cancel_chain.h"
#include "proxy/jsonw.h"
#include "proxy/log.h"

#define SECRET	"fuzz-peer-SECRET"

static void
same_note(const struct cancel_note *a, const struct cancel_note *b,
    const char *what)
{
	int	 i;

	if (strcmp(a->request_id, b->request_id) != 0 ||
	    strcmp(a->trace_id, b->trace_id) != 0 || a->kind != b->kind ||
	    a->phase != b->phase || a->path.n != b->path.n)
		goto bad;
	for (i = 0; i < a->path.n; i++)
		if (strcmp(a->path.hops[i], b->path.hops[i]) != 0)
			goto bad;
	return;
bad:
	fprintf(stderr, "fuzz_note: %s changed the note\n", what);
	abort();
}

/* Writes n back as this hop would and parses it again. */
static void
round_trip(const struct cancel_note *n)
{
	struct cancel_record	 r;
	struct cancel_note	 back;
	struct jsonw		 w;
	char			 stack[512], err[128], msg[2048], sig[160];
	long long		 now = (long long)time(NULL);

	memset(&r, 0, sizeof(r));
	r.request_id = n->request_id;
	r.trace_id = n->trace_id;
	r.kind = n->kind;
	r.path = n->path;
	r.phase = n->phase;
	r.direction = CANCEL_DIR_UPSTREAM;
	r.via = CANCEL_VIA_NOTE;
	r.detect_to_close_us = -1;

	jsonw_init(&w, stack, sizeof(stack));
	cancel_note_json(&w, &r);
	if (cancel_note_parse(w.buf, w.len, &back, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_note: our own note does not parse: %s\n"
		    "%.*s\n", err, (int)w.len, w.buf);
		abort();
	}
	same_note(n, &back, "cancel_note_json");
	cancel_note_sign(SECRET, now, w.buf, w.len, sig, sizeof(sig));
	if (cancel_note_verify(SECRET, sig, strlen(sig), w.buf, w.len, now,
	    err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_note: a signed note fails: %s\n", err);
		abort();
	}
	if (cancel_note_verify("another", sig, strlen(sig), w.buf, w.len, now,
	    err, sizeof(err)) == 0) {
		fprintf(stderr, "fuzz_note: another secret verifies\n");
		abort();
	}
	jsonw_reset(&w);
	cancel_chain_error_json(&w, &r);
	if (cancel_error_parse(w.buf, w.len, &back) == -1) {
		fprintf(stderr, "fuzz_note: our own error does not parse:\n"
		    "%.*s\n", (int)w.len, w.buf);
		abort();
	}
	same_note(n, &back, "cancel_chain_error_json");
	jsonw_free(&w);
	cancel_chain_message(&r, msg, sizeof(msg));
	cancel_chain_log(&r);
	(void)cancel_chain_http_status(&r);
	(void)cancel_chain_proxy_error(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 init;
	struct cancel_note	 n;
	const char		*d = (const char *)data, *nl;
	char			 err[128];

	if (!init) {
		if (log_open("/dev/null", "fuzz", LOG_LEVEL_DEBUG) == -1)
			abort();
		init = 1;
	}
	if (cancel_note_parse(d, size, &n, err, sizeof(err)) == 0)
		round_trip(&n);
	if (cancel_error_parse(d, size, &n) == 0)
		round_trip(&n);
	if ((nl = memchr(d, '\n', size)) != NULL)
		(void)cancel_note_verify(SECRET, d, (size_t)(nl - d), nl + 1,
		    size - (size_t)(nl - d) - 1, (long long)time(NULL), err,
		    sizeof(err));
	return 0;
}
