/* fuzz_request: bytes a client sends, through the proxy's real request
 * path: downstream_accept() on a socketpair, the read callback,
 * downstream_process_input() with llhttp and our callbacks and limits,
 * pipelining, session_request_complete() (identity, routing by path and
 * model, cancel API, cancel notes, peer loop checks, usage injection),
 * the request rewritten for the upstream (a real loopback connection that
 * answers a small JSON 200), the answer relayed, and the teardown.
 *
 * Input: byte 0 says how the rest is delivered, the rest is what the
 * client sends.
 *   bits 0-1  0: in one write, 1: one byte a write for the first 128,
 *             2: in writes of 7 bytes, 3: split after every '\n'
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
	uint8_t		 mode;
	size_t		 off, n;
	const uint8_t	*nl;

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
	for (off = 0; off < size; off += n) {
		switch (mode & 3) {
		case 0:
			n = size - off;
			break;
		case 1:
			n = off < 128 ? 1 : size - off;
			break;
		case 2:
			n = size - off < 7 ? size - off : 7;
			break;
		default:
			nl = memchr(data + off, '\n', size - off);
			n = nl ? (size_t)(nl - (data + off)) + 1 : size - off;
			break;
		}
		if (fuzz_rig_send(g, data + off, n) == -1)
			break;
		fuzz_rig_pump(g);
	}
	if (mode & 0x08)
		fuzz_rig_client_shutdown(g);
	fuzz_rig_pump(g);
	fuzz_rig_client_reading(g, 1);
	fuzz_rig_client_close(g, (mode & 0x04) != 0);
	fuzz_rig_finish(g);
	return 0;
}
