/* fuzz_response: bytes an upstream answers, through the proxy's real
 * response path in-process: a fixed chat request from a client (on a
 * socketpair) is routed, connected to the rig's loopback upstream and
 * sent; the fuzz bytes are the upstream's answer. They go through
 * llhttp and upstream_http.c's callbacks and limits (the 64 KiB header
 * limit, interim answers, framing), session_on_response_head() and the
 * relay (re-chunking, Content-Length, close-delimited), the SSE splitter
 * and usage readers (sse_scan_feed, usage_from_json, the injected usage
 * chunk hidden in strip mode), a peer's SSE error detection for a peer
 * upstream, fallback on 429/5xx, drain on client disconnect, the
 * backpressure pause, and the teardown with its records and the SSE or
 * HTTP error written to the client.
 *
 * Input: byte 0 chooses the setting, the rest is the upstream's answer.
 *   bits 0-1  route: 0 /v1/ (model glob, base path, set_headers, a
 *             fallback on 429/5xx), 1 peer upstream, 2 usage
 *             injection, 3 drain
 *   bit 2     the request is a stream ("stream": true)
 *   bits 3-4  the answer's writes: 0 one, 1 one byte each for the first
 *             128, 2 13 bytes each, 3 split after every '\n'
 *   bit 5     the client leaves when half of the answer is written
 *   bit 6     the client does not read (its output backs up)
 *   bit 7     closes are resets (SO_LINGER 0), not FINs
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tests/fuzz/fuzz_rig.h"

static struct fuzz_rig	*g;

static const char default_answer[] = "HTTP/1.1 204 No Content\r\n\r\n";

/* The first connection gets the fuzz bytes (written by the target);
 * the others (a fallback, a cancel note to a peer) a plain answer. */
static void
upstream_cb(void *arg, int idx, int fd)
{
	if (idx > 0)
		fuzz_write_all(fd, default_answer, sizeof(default_answer) - 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const prefixes[] = { "/v1/", "/p/", "/i/", "/d/" };
	char		 req[512], body[256];
	uint8_t		 mode;
	size_t		 off, n, half;
	const uint8_t	*nl;
	int		 fd, blen, rlen, left = 0, rst;

	if (g == NULL)
		g = fuzz_rig_init(FUZZ_PROXY_CONFIG);
	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	rst = (mode & 0x80) != 0;

	blen = snprintf(body, sizeof(body), "{\"model\":\"gpt-4o\",\"stream\":"
	    "%s,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	    (mode & 4) ? "true" : "false");
	rlen = snprintf(req, sizeof(req), "POST %schat/completions HTTP/1.1\r\n"
	    "Host: a\r\nContent-Type: application/json\r\n"
	    "X-Request-Id: fuzz-1\r\nContent-Length: %d\r\n\r\n%s",
	    prefixes[mode & 3], blen, body);

	fuzz_rig_upstream(g, upstream_cb, NULL);
	fuzz_rig_client(g);
	fuzz_rig_client_reading(g, !(mode & 0x40));
	(void)fuzz_rig_send(g, req, (size_t)rlen);
	fuzz_rig_pump(g);
	if ((fd = fuzz_rig_upstream_fd(g, 0)) == -1) {
		fprintf(stderr, "fuzz_response: the request never reached the "
		    "upstream\n");
		__builtin_trap();
	}
	half = size / 2;
	for (off = 0; off < size; off += n) {
		switch ((mode >> 3) & 3) {
		case 0:
			n = size - off;
			break;
		case 1:
			n = off < 128 ? 1 : size - off;
			break;
		case 2:
			n = size - off < 13 ? size - off : 13;
			break;
		default:
			nl = memchr(data + off, '\n', size - off);
			n = nl ? (size_t)(nl - (data + off)) + 1 : size - off;
			break;
		}
		if ((mode & 0x20) && !left && off + n > half && n > 1)
			n = half > off ? half - off : 1;
		fuzz_write_all(fd, data + off, n);
		fuzz_rig_pump(g);
		if ((mode & 0x20) && !left && off + n >= half) {
			fuzz_rig_client_close(g, rst);
			fuzz_rig_pump(g);
			left = 1;
		}
	}
	fuzz_rig_client_reading(g, 1);
	fuzz_rig_pump(g);
	fuzz_rig_upstream_close(g, rst);
	fuzz_rig_finish(g);
	return 0;
}
