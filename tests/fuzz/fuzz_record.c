/* fuzz_record: client bytes that reach the records — the request target,
 * the model, header values — through the proxy's real request path (the
 * rig), with the log going to a file; every line the proxy writes must be
 * strict JSON as Python's reader takes it: one object and nothing after it,
 * well-formed UTF-8, no raw control byte. A line that is not aborts, so
 * the fuzzer keeps the input.
 *
 * Input: fields split by NUL bytes: the target after "/" (the first byte
 * of the field picks the route prefix: /v1/, /i/ or /), the bytes inside
 * the model string, a User-Agent value, an X-Request-Id value. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "proxy/jsonw.h"
#include "proxy/log.h"
#include "tests/fuzz/fuzz_rig.h"

static struct fuzz_rig	*g;
static char		 log_path[] = "/tmp/cp-fuzz-record-XXXXXX";
static int		 log_fd = -1;

/* Whether the line is what a strict reader takes. */
static int
line_ok(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t		 i, k;
	cJSON		*j;
	int		 ok;

	for (i = 0; i < n; i++) {
		if (u[i] < 0x20)
			return 0;
		if (u[i] >= 0x80) {
			if ((k = jsonw_utf8_len(u + i, n - i)) == 0)
				return 0;
			i += k - 1;
		}
	}
	j = cJSON_ParseWithLengthOpts(s, n + 1, NULL, 1);
	ok = cJSON_IsObject(j);
	cJSON_Delete(j);
	return ok;
}

/* Checks every line written since the last call, then empties the file. */
static void
check_log(void)
{
	static char	 buf[1 << 20];
	ssize_t		 n;
	char		*p, *nl;

	n = pread(log_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (p = buf; (nl = memchr(p, '\n', (size_t)(buf + n - p))) != NULL;
	    p = nl + 1) {
		*nl = '\0';
		if (!line_ok(p, (size_t)(nl - p))) {
			fprintf(stderr, "fuzz_record: not strict JSON: %s\n", p);
			abort();
		}
	}
	if (ftruncate(log_fd, 0) == -1)
		abort();
}

/* The next NUL-separated field of data; advances *off. */
static const uint8_t *
field(const uint8_t *data, size_t size, size_t *off, size_t *len)
{
	const uint8_t	*p = data + *off, *z;

	if (*off >= size) {
		*len = 0;
		return p;
	}
	z = memchr(p, 0, size - *off);
	*len = z ? (size_t)(z - p) : size - *off;
	*off += *len + 1;
	return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const prefix[] = { "/v1/", "/i/", "/" };
	const uint8_t	*tgt, *model, *ua, *rid;
	size_t		 off = 0, nt, nm, nu, nr, blen;
	char		 req[4096], body[1024];
	int		 n;

	if (g == NULL) {
		g = fuzz_rig_init(FUZZ_PROXY_CONFIG);
		if ((log_fd = mkstemp(log_path)) == -1)
			abort();
		if (log_open(log_path, "fuzz", LOG_LEVEL_DEBUG) == -1)
			abort();
		unlink(log_path);	/* the log keeps its open file */
	}
	tgt = field(data, size, &off, &nt);
	model = field(data, size, &off, &nm);
	ua = field(data, size, &off, &nu);
	rid = field(data, size, &off, &nr);
	if (nt > 1024 || nm > 512 || nu > 512 || nr > 256)
		return 0;
	blen = (size_t)snprintf(body, sizeof(body), "{\"model\":\"%.*s\","
	    "\"stream\":true}", (int)nm, (const char *)model);
	if (blen >= sizeof(body))
		return 0;
	n = snprintf(req, sizeof(req), "POST %s%.*s HTTP/1.1\r\nHost: fuzz\r\n"
	    "User-Agent: %.*s\r\nX-Request-Id: %.*s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	    prefix[nt ? tgt[0] % 3 : 0], nt ? (int)nt - 1 : 0,
	    (const char *)tgt + (nt ? 1 : 0), (int)nu, (const char *)ua,
	    (int)nr, (const char *)rid, blen);
	if (n < 0 || (size_t)n + blen >= sizeof(req))
		return 0;
	memcpy(req + n, body, blen);

	fuzz_rig_client(g);
	(void)fuzz_rig_send(g, req, (size_t)n + blen);
	fuzz_rig_pump(g);
	fuzz_rig_client_close(g, 0);
	fuzz_rig_finish(g);
	check_log();
	return 0;
}
