/* ids: request ids and W3C trace context ids from the kernel's CSPRNG. */
#include <string.h>
#include <sys/random.h>

#include "proxy/proxy.h"

/* Per-thread pool of random bytes, refilled 4 KiB at a time: one
 * getrandom call per hundred requests or so. */
static __thread unsigned char	 rnd_pool[4096];
static __thread size_t		 rnd_left;

void
proxy_random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	size_t	 i;

	for (i = 0; i < nbytes; i++) {
		unsigned char b;

		if (rnd_left == 0) {
			if (getrandom(rnd_pool, sizeof(rnd_pool), 0) !=
			    (ssize_t)sizeof(rnd_pool))
				memset(rnd_pool, 0x5a, sizeof(rnd_pool));
			rnd_left = sizeof(rnd_pool);
		}
		b = rnd_pool[--rnd_left];
		out[2 * i] = hex[b >> 4];
		out[2 * i + 1] = hex[b & 15];
	}
	out[2 * nbytes] = '\0';
}
