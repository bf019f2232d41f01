/* fuzz_logscan: cancelproxy-log's line scanner (tools/log/logtool_scan.c),
 * which reads untrusted log files without building a tree. Each line of
 * the input is scanned with logtool_scan(); every string it returns must
 * lie inside the line or the scratch buffer, and the time parser is given
 * the ts field and the raw bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/log/logtool.h"

static void
inside(struct logtool_str s, const char *line, size_t len,
    const struct logtool_scratch *sc)
{
	if (s.p == NULL)
		return;
	if (s.p >= line && s.p + s.n <= line + len)
		return;
	if (sc->buf != NULL && s.p >= sc->buf && s.p + s.n <= sc->buf +
	    sc->len)
		return;
	abort();	/* a string pointing outside the line and scratch */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct logtool_scratch	 sc = { 0 };
	struct logtool_rec	 r;
	const char		*p = (const char *)data, *end = p + size, *nl;
	char			*line;
	size_t			 len;
	int64_t			 t;
	int			 i;

	(void)logtool_parse_time(p, size, &t);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		/* An exact-size copy, so that ASan sees any overread. */
		if ((line = malloc(len ? len : 1)) == NULL)
			abort();
		memcpy(line, p, len);
		memset(&r, 0, sizeof(r));
		sc.len = 0;
		if (logtool_scan(line, len, &r, &sc) == 0) {
			inside(r.ts, line, len, &sc);
			inside(r.hop, line, len, &sc);
			inside(r.event_name, line, len, &sc);
			inside(r.request_id, line, len, &sc);
			inside(r.trace_id, line, len, &sc);
			inside(r.message, line, len, &sc);
			inside(r.kind, line, len, &sc);
			inside(r.origin_hop, line, len, &sc);
			inside(r.target, line, len, &sc);
			inside(r.model, line, len, &sc);
			for (i = 0; i < r.npath && i < LOGTOOL_PATH_MAX; i++)
				inside(r.path[i], line, len, &sc);
			if (r.npath > LOGTOOL_PATH_MAX)
				abort();
			if (r.ts.p != NULL)
				(void)logtool_parse_time(r.ts.p, r.ts.n, &t);
		}
		free(line);
		p += len + (nl != NULL);
	}
	logtool_scratch_free(&sc);
	return 0;
}
