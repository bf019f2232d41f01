/* fuzz_h2upstream: arbitrary HTTP/2 frames from an upstream, through the
 * proxy's real HTTP/2 upstream in-process (upstream_h2.c with nghttp2):
 * one to four chat requests from clients (on socketpairs) are routed to
 * an upstream with "protocol": "h2" (prior knowledge) on the rig's
 * loopback listener, which answers the connection preface with an empty
 * SETTINGS frame; the fuzz bytes are what the server sends after that.
 * They reach nghttp2's frame parser, the header, data, stream-close,
 * GOAWAY, PING and SETTINGS callbacks, the response head and relay, the
 * retry of refused streams on another connection, flow control with a
 * client that does not read, and the teardown of every session when the
 * connection dies.
 *
 * Input: byte 0 chooses the setting, the rest is the server's bytes.
 *   bits 0-1  how many clients (1 to 4), each one stream on the connection
 *   bit 2     the requests are streams ("stream": true)
 *   bits 3-4  the server's writes: 0 one, 1 one byte each for the first
 *             128, 2 9 bytes each (a frame header), 3 64 bytes each
 *   bit 5     the last client leaves when half of the bytes are written
 *   bit 6     the last client does not read (the others never do)
 *   bit 7     closes are resets (SO_LINGER 0), not FINs
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tests/fuzz/fuzz_rig.h"

#define FUZZ_H2_CONFIG \
	"{\"hop\":\"fuzz\",\"workers\":1," \
	"\"listen\":[{\"address\":\"127.0.0.1:0\"}]," \
	"\"upstreams\":{" \
	"\"h2\":{\"url\":\"http://127.0.0.1:%1$d\",\"protocol\":\"h2\"," \
	"\"h2\":{\"max_streams_per_conn\":8,\"max_conns\":2," \
	"\"ping_interval_ms\":0,\"idle_ms\":0}}}," \
	"\"routes\":[{\"path_prefix\":\"/\",\"upstream\":\"h2\"}]," \
	"\"limits\":{\"max_header_bytes\":8192,\"max_body_bytes\":65536}," \
	"\"log\":{\"path\":\"/dev/null\"}}"

/* An empty SETTINGS frame: the server's side of the preface. */
static const uint8_t settings[] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };

static struct fuzz_rig	*g;

static void
upstream_cb(void *arg, int idx, int fd)
{
	fuzz_write_all(fd, settings, sizeof(settings));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		 req[512], body[256];
	uint8_t		 mode;
	size_t		 off, n, half;
	int		 fd, blen, rlen, left = 0, rst, i, nclients;

	if (g == NULL)
		g = fuzz_rig_init(FUZZ_H2_CONFIG);
	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	rst = (mode & 0x80) != 0;
	nclients = 1 + (mode & 3);

	blen = snprintf(body, sizeof(body), "{\"model\":\"gpt-4o\",\"stream\":"
	    "%s,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	    (mode & 4) ? "true" : "false");
	rlen = snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1"
	    "\r\nHost: a\r\nContent-Type: application/json\r\n"
	    "Content-Length: %d\r\n\r\n%s", blen, body);

	fuzz_rig_upstream(g, upstream_cb, NULL);
	/* The last client is the one that can leave and that reads or not;
	 * the earlier ones ride on the same connection, unread. */
	for (i = 0; i < nclients; i++) {
		fuzz_rig_client(g);
		fuzz_rig_client_reading(g, !(mode & 0x40));
		(void)fuzz_rig_send(g, req, (size_t)rlen);
		fuzz_rig_pump(g);
	}
	if ((fd = fuzz_rig_upstream_fd(g, 0)) == -1) {
		fprintf(stderr, "fuzz_h2upstream: the request never reached "
		    "the upstream\n");
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
			n = size - off < 9 ? size - off : 9;
			break;
		default:
			n = size - off < 64 ? size - off : 64;
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
