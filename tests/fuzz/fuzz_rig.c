/* fuzz_rig: see fuzz_rig.h. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "downstream/downstream_priv.h"
#include "proxy/log.h"
#include "proxy/proxy.h"
#include "proxy/session.h"
#include "upstream/upstream.h"
#include "tests/fuzz/fuzz_rig.h"

struct fuzz_rig {
	struct worker	 w;
	struct runtime	*rt;
	int		 lfd;			/* the upstream listener */
	int		 port;
	int		 cfd;			/* the client's end, or -1 */
	int		 cold[FUZZ_CLIENTS_MAX];	/* earlier clients' ends */
	int		 ncold;
	int		 creading;
	int		 up[FUZZ_UP_MAX];	/* accepted, -1 when closed */
	int		 answered[FUZZ_UP_MAX];
	int		 nup;
	fuzz_upstream_fn fn;
	void		*arg;
};

static struct fuzz_rig	 rig;

static void
fuzz_die(const char *what)
{
	fprintf(stderr, "fuzz_rig: %s: %s\n", what, strerror(errno));
	abort();
}

void
fuzz_write_all(int fd, const void *p, size_t n)
{
	const char	*b = p;
	ssize_t		 k;

	while (n > 0) {
		k = send(fd, b, n, MSG_NOSIGNAL);
		if (k <= 0) {
			if (k == -1 && errno == EINTR)
				continue;
			return;
		}
		b += k;
		n -= (size_t)k;
	}
}

/* The end-of-turn frees, as the real worker's reaper does them. */
static void
fuzz_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_free_dead(arg);
}

struct fuzz_rig *
fuzz_rig_init(const char *config_fmt)
{
	struct fuzz_rig		*g = &rig;
	struct worker		*w = &g->w;
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	struct conf		*conf;
	char			 path[] = "/tmp/cp-fuzz-conf-XXXXXX", err[1024];
	char			*text;
	int			 fd, i;

	signal(SIGPIPE, SIG_IGN);
	g->cfd = -1;
	for (i = 0; i < FUZZ_UP_MAX; i++)
		g->up[i] = -1;
	if ((g->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		fuzz_die("socket");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(g->lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(g->lfd, 64) == -1 ||
	    getsockname(g->lfd, (struct sockaddr *)&sin, &len) == -1)
		fuzz_die("listen");
	g->port = ntohs(sin.sin_port);

	if (asprintf(&text, config_fmt, g->port) == -1)
		fuzz_die("asprintf");
	if ((fd = mkstemp(path)) == -1)
		fuzz_die("mkstemp");
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		fuzz_die("write");
	close(fd);
	free(text);
	if (conf_load(path, &conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_rig: %s\n", err);
		abort();
	}
	unlink(path);
	if ((g->rt = runtime_new(conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_rig: %s\n", err);
		abort();
	}
	/* Records are formatted and written as in production, to nowhere. */
	if (log_open("/dev/null", conf->hop, LOG_LEVEL_DEBUG) == -1)
		fuzz_die("log_open");
	log_secrets_set((const char *const *)conf->secrets,
	    (int)conf->nsecrets);

	/* A worker as worker_init() makes one, minus listeners and thread. */
	w->id = 0;
	w->rt = runtime_ref(g->rt);
	TAILQ_INIT(&w->sessions);
	TAILQ_INIT(&w->clients);
	TAILQ_INIT(&w->dead_sessions);
	TAILQ_INIT(&w->dead_clients);
	TAILQ_INIT(&w->notes_out);
	pthread_mutex_init(&w->notify_lock, NULL);
	pthread_mutex_init(&w->mail_lock, NULL);
	w->mail_tail = &w->mail_head;
	if ((w->base = event_base_new()) == NULL ||
	    (w->dns = evdns_base_new(w->base, 0)) == NULL ||
	    (w->pool = upstream_pool_new(w)) == NULL ||
	    (w->reap = event_new(w->base, -1, 0, fuzz_reap_cb, w)) == NULL ||
	    (w->mail_ev = event_new(w->base, -1, 0, worker_mail_cb, w)) ==
	    NULL || writeout_worker_init(w) == -1)
		fuzz_die("worker");
	proxy_global.workers = w;
	proxy_global.nworkers = 1;
	return g;
}

void
fuzz_rig_client(struct fuzz_rig *g)
{
	struct sockaddr_in	 sin;
	int			 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		fuzz_die("socketpair");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(40000);
	/* An earlier client stays connected (and unread) until the end. */
	if (g->cfd != -1 && g->ncold < FUZZ_CLIENTS_MAX)
		g->cold[g->ncold++] = g->cfd;
	else if (g->cfd != -1)
		close(g->cfd);
	g->cfd = sv[1];
	g->creading = 1;
	/* On failure downstream_accept() closes sv[0] itself. */
	(void)downstream_accept(&g->w, sv[0], (struct sockaddr *)&sin, 0);
}

int
fuzz_rig_send(struct fuzz_rig *g, const void *p, size_t n)
{
	const char	*b = p;
	ssize_t		 k;
	int		 spins = 0;

	while (g->cfd != -1 && n > 0) {
		k = send(g->cfd, b, n, MSG_NOSIGNAL);
		if (k > 0) {
			b += k;
			n -= (size_t)k;
			continue;
		}
		if (k == -1 && errno == EAGAIN && spins++ < 64) {
			fuzz_rig_pump(g);	/* let the proxy read */
			continue;
		}
		return -1;
	}
	return g->cfd == -1 ? -1 : 0;
}

void
fuzz_rig_client_reading(struct fuzz_rig *g, int on)
{
	g->creading = on;
}

void
fuzz_rig_client_shutdown(struct fuzz_rig *g)
{
	if (g->cfd != -1)
		shutdown(g->cfd, SHUT_WR);
}

void
fuzz_rig_client_close(struct fuzz_rig *g, int rst)
{
	struct linger	 l = { 1, 0 };

	if (g->cfd == -1)
		return;
	if (rst)	/* a socketpair has no RST; SO_LINGER is harmless */
		setsockopt(g->cfd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(g->cfd);
	g->cfd = -1;
}

void
fuzz_rig_upstream(struct fuzz_rig *g, fuzz_upstream_fn fn, void *arg)
{
	g->fn = fn;
	g->arg = arg;
}

int
fuzz_rig_upstream_fd(struct fuzz_rig *g, int idx)
{
	if (idx < 0 || idx >= g->nup || !g->answered[idx])
		return -1;
	return g->up[idx];
}

int
fuzz_rig_upstreams(struct fuzz_rig *g)
{
	return g->nup;
}

/* Closes an upstream connection; an RST leaves no TIME_WAIT behind on
 * either side (the fuzzer opens thousands of connections a second). */
static void
fuzz_up_close(struct fuzz_rig *g, int i, int rst)
{
	struct linger	 l = { 1, 0 };

	if (g->up[i] == -1)
		return;
	if (!rst) {
		shutdown(g->up[i], SHUT_WR);
		return;
	}
	setsockopt(g->up[i], SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(g->up[i]);
	g->up[i] = -1;
}

void
fuzz_rig_upstream_close(struct fuzz_rig *g, int rst)
{
	int	 i;

	for (i = 0; i < g->nup; i++)
		fuzz_up_close(g, i, rst);
}

static const char fuzz_default_answer[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    "Content-Length: 74\r\n\r\n"
    "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}"
    "\n\n\n\n\n";

/* One pass over the test's sockets; 1 when bytes or connections moved. */
static int
fuzz_rig_poll(struct fuzz_rig *g)
{
	char	 buf[65536];
	ssize_t	 n;
	int	 fd, i, moved = 0;

	while (g->nup < FUZZ_UP_MAX &&
	    (fd = accept4(g->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) !=
	    -1) {
		g->up[g->nup] = fd;
		g->answered[g->nup] = 0;
		g->nup++;
		moved = 1;
	}
	for (i = 0; i < g->nup; i++) {
		if (g->up[i] == -1)
			continue;
		while ((n = recv(g->up[i], buf, sizeof(buf), 0)) > 0) {
			moved = 1;
			if (g->answered[i])
				continue;
			g->answered[i] = 1;
			if (g->fn != NULL)
				g->fn(g->arg, i, g->up[i]);
			else
				fuzz_write_all(g->up[i], fuzz_default_answer,
				    sizeof(fuzz_default_answer) - 1);
		}
		if (n == 0) {
			/* The proxy closed it: close ours with an RST. */
			fuzz_up_close(g, i, 1);
			moved = 1;
		}
	}
	if (g->cfd != -1 && g->creading) {
		while ((n = recv(g->cfd, buf, sizeof(buf), 0)) > 0)
			moved = 1;
		if (n == 0) {
			close(g->cfd);
			g->cfd = -1;
			moved = 1;
		}
	}
	return moved;
}

void
fuzz_rig_pump(struct fuzz_rig *g)
{
	int	 quiet = 0, passes = 0;

	while (quiet < 2 && passes++ < 10000) {
		event_base_loop(g->w.base, EVLOOP_NONBLOCK);
		if (fuzz_rig_poll(g) || event_base_get_num_events(g->w.base,
		    EVENT_BASE_COUNT_ACTIVE) > 0)
			quiet = 0;
		else
			quiet++;
	}
}

/* Whether the worker holds nothing any more. */
static int
fuzz_rig_empty(struct fuzz_rig *g)
{
	struct worker	*w = &g->w;

	return TAILQ_EMPTY(&w->sessions) && TAILQ_EMPTY(&w->clients) &&
	    TAILQ_EMPTY(&w->dead_sessions) && TAILQ_EMPTY(&w->dead_clients) &&
	    TAILQ_EMPTY(&w->notes_out) && w->registry.n == 0 &&
	    __atomic_load_n(&proxy_global.live_connections,
	    __ATOMIC_RELAXED) == 0 && w->metrics.live_streams == 0 &&
	    w->mail_head == NULL;
}

void
fuzz_rig_finish(struct fuzz_rig *g)
{
	struct worker	*w = &g->w;
	struct client	*c;
	int		 i;

	fuzz_rig_pump(g);
	fuzz_rig_client_close(g, 0);
	for (i = 0; i < g->ncold; i++)
		close(g->cold[i]);
	g->ncold = 0;
	fuzz_rig_pump(g);
	fuzz_rig_upstream_close(g, 1);
	fuzz_rig_pump(g);
	/* Timers that legitimately run on (a peer's note wait is 1 ms in
	 * the fuzz configs; a note's answer is bounded too): give them a
	 * moment before calling anything a leftover. */
	for (i = 0; i < 50 && !fuzz_rig_empty(g); i++) {
		usleep(1000);
		fuzz_rig_upstream_close(g, 1);
		fuzz_rig_pump(g);
	}
	if (!fuzz_rig_empty(g)) {
		struct session *s;

		fprintf(stderr, "fuzz_rig: left behind after the input: "
		    "sessions %d, clients %d, notes %d, registry %zu, "
		    "connections %d, live streams %lld\n",
		    !TAILQ_EMPTY(&w->sessions), !TAILQ_EMPTY(&w->clients),
		    !TAILQ_EMPTY(&w->notes_out), w->registry.n,
		    proxy_global.live_connections,
		    (long long)w->metrics.live_streams);
		TAILQ_FOREACH(s, &w->sessions, entry)
			fprintf(stderr, "  session phase %s state %s "
			    "client %p up %p\n",
			    cancel_phase_name(s->phase),
			    session_state_name(s->state), (void *)s->client,
			    (void *)s->up);
		abort();
	}
	/* Reset for the next input. */
	while ((c = TAILQ_FIRST(&w->clients)) != NULL)
		downstream_close(c, CANCEL_VIA_EOF);
	for (i = 0; i < g->nup; i++)
		fuzz_up_close(g, i, 1);
	g->nup = 0;
	g->fn = NULL;
	g->arg = NULL;
}
