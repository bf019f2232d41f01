/* fuzz_conf: the config loader, as cancelproxy -t runs it: the bytes are
 * written to a file and conf_load() reads, expands and validates them. A
 * config that loads is then used the way the proxy uses one: routes are
 * looked up, upstreams found, and the reference dropped. Any error must
 * come back as -1 with a message naming the file.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "conf/conf.h"

static char	 path[64];
static int	 fd = -1;

/* The file goes when the fuzzer exits (libFuzzer calls exit()). */
static void
remove_file(void)
{
	unlink(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = { "/", "/v1/chat/completions",
	    "/v1/", "/x", "" };
	static const char *const models[] = { NULL, "gpt-4o", "mock-1",
	    "claude-3" };
	struct conf	*c;
	char		 err[1024];
	size_t		 i, j;

	if (fd == -1) {
		snprintf(path, sizeof(path), "/tmp/cp-fuzz-conf-%d.json",
		    (int)getpid());
		if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) == -1)
			abort();
		atexit(remove_file);
		setenv("FUZZ_KEY", "sk-fuzz", 1);
		setenv("FUZZ_EMPTY", "", 1);
	}
	if (ftruncate(fd, 0) == -1 || pwrite(fd, data, size, 0) !=
	    (ssize_t)size)
		abort();
	err[0] = '\0';
	if (conf_load(path, &c, err, sizeof(err)) == -1) {
		/* The message names the file. */
		if (strncmp(err, path, strlen(path)) != 0 &&
		    strstr(err, path) == NULL) {
			fprintf(stderr, "fuzz_conf: error without the file "
			    "name: %s\n", err);
			abort();
		}
		return 0;
	}
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		for (j = 0; j < sizeof(models) / sizeof(models[0]); j++)
			(void)conf_route_find(c, paths[i], strlen(paths[i]),
			    models[j]);
	for (i = 0; i < c->nupstreams; i++)
		if (conf_upstream_find(c, c->upstreams[i].name) !=
		    &c->upstreams[i])
			abort();
	for (i = 0; i < c->nroutes; i++)
		if (c->routes[i].upstream == NULL)
			abort();	/* routes are resolved at load */
	conf_ref(c);
	conf_unref(c);
	conf_unref(c);
	return 0;
}
