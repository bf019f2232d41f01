/* fuzz_h2: bytes a client sends after the HTTP/2 client preface, through
 * the proxy's real HTTP/2 path: downstream_accept() on a socketpair, the
 * preface sniffed on a plain listener, nghttp2's server session with our
 * callbacks and limits, a session per stream (routing, the upstream
 * request on a real loopback connection that answers a small JSON 200),
 * the answer framed back, RST_STREAM and GOAWAY, and the teardown. The rig
 * checks after every input that no session or connection is left.
 *
 * Input: byte 0 says how the rest is delivered, the rest is what the
 * client sends after the preface (frames, or anything).
 *   bits 0-1  0: in one write, 1: in writes of 9 bytes (a frame header),
 *             2: in writes of 1 byte for the first 64, 3: in two halves
 *   bit 2     the client leaves with an RST-like close, not a FIN
 *   bit 3     the client half-closes right after sending
 *   bit 4     the client does not read what the proxy sends
 *   bit 5     the upstream never answers (the client leaves first) */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/fuzz_rig.h"

static struct fuzz_rig	*g;

static void
silent_upstream(void *arg, int idx, int fd)
{
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	uint8_t		 mode;
	size_t		 off, n;

	if (g == NULL)
		g = fuzz_rig_init(FUZZ_PROXY_CONFIG);
	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;

	fuzz_rig_client(g);
	if (mode & 0x20)
		fuzz_rig_upstream(g, silent_upstream, NULL);
	fuzz_rig_client_reading(g, !(mode & 0x10));
	if (fuzz_rig_send(g, preface, sizeof(preface) - 1) == 0) {
		fuzz_rig_pump(g);
		for (off = 0; off < size; off += n) {
			switch (mode & 3) {
			case 0:
				n = size - off;
				break;
			case 1:
				n = size - off < 9 ? size - off : 9;
				break;
			case 2:
				n = off < 64 ? 1 : size - off;
				break;
			default:
				n = off == 0 && size > 1 ? size / 2 :
				    size - off;
				break;
			}
			if (fuzz_rig_send(g, data + off, n) == -1)
				break;
			fuzz_rig_pump(g);
		}
	}
	if (mode & 0x08)
		fuzz_rig_client_shutdown(g);
	fuzz_rig_pump(g);
	fuzz_rig_client_reading(g, 1);
	fuzz_rig_client_close(g, (mode & 0x04) != 0);
	fuzz_rig_finish(g);
	return 0;
}
