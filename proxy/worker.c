/* worker: one event-loop thread each, with its own SO_REUSEPORT listeners,
 * DNS resolver and upstream pool; cross-thread requests arrive as flags
 * plus a wakeup, and closed objects are freed at the end of a loop turn. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>

#include "downstream/downstream.h"
#include "proxy/log.h"
#include "proxy/proxy.h"
#include "proxy/session.h"
#include "upstream/upstream.h"

struct proxy	 proxy_global;

#define ACCEPT_RETRY_MS	100	/* pause after EMFILE/ENFILE */

/* Frees the sessions and clients closed during this loop turn. */
void
worker_free_dead(struct worker *w)
{
	struct session	*s;
	struct client	*c;

	while ((s = TAILQ_FIRST(&w->dead_sessions)) != NULL) {
		TAILQ_REMOVE(&w->dead_sessions, s, entry);
		session_free(s);
	}
	while ((c = TAILQ_FIRST(&w->dead_clients)) != NULL) {
		TAILQ_REMOVE(&w->dead_clients, c, entry);
		downstream_free(c);
	}
}

static void
worker_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct client	*c;

	worker_free_dead(w);
	if (w->draining && TAILQ_EMPTY(&w->sessions) &&
	    TAILQ_EMPTY(&w->notes_out)) {
		struct client *cn;

		/* Idle connections go now; answers still being written are
		 * flushed first (each closes itself when its output is out). */
		for (c = TAILQ_FIRST(&w->clients); c != NULL; c = cn) {
			cn = TAILQ_NEXT(c, entry);
			if (!c->close_after || !downstream_pending(c))
				downstream_close(c, CANCEL_VIA_SIGNAL);
		}
		if (!TAILQ_EMPTY(&w->dead_clients))
			event_active(w->reap, 0, 0);
		else if (TAILQ_EMPTY(&w->clients))
			event_base_loopbreak(w->base);
	}
}

void
worker_schedule_reap(struct worker *w)
{
	event_active(w->reap, 0, 0);
}

static void
worker_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct worker	*w = arg;
	size_t		 i;

	for (i = 0; i < w->nlisteners; i++)
		if (w->listeners[i] == l)
			break;
	downstream_accept(w, fd, sa, (int)i);
}

static void
worker_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	size_t		 i;

	if (w->draining)
		return;
	for (i = 0; i < w->nlisteners; i++)
		if (w->listeners[i] != NULL)
			evconnlistener_enable(w->listeners[i]);
}

/* Out of descriptors: stop accepting for a moment instead of spinning. */
static void
worker_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct worker	*w = arg;
	int		 err = EVUTIL_SOCKET_ERROR();
	struct timeval	 tv = { 0, ACCEPT_RETRY_MS * 1000 };
	size_t		 i;

	log_msg(LOG_LEVEL_WARN, "accept_error", "accept failed: %s; pausing "
	    "accepts for %d ms", evutil_socket_error_to_string(err),
	    ACCEPT_RETRY_MS);
	for (i = 0; i < w->nlisteners; i++)
		if (w->listeners[i] != NULL)
			evconnlistener_disable(w->listeners[i]);
	evtimer_add(w->accept_retry, &tv);
}

static void
worker_stop_accepting(struct worker *w)
{
	size_t	 i;

	for (i = 0; i < w->nlisteners; i++)
		if (w->listeners[i] != NULL) {
			evconnlistener_free(w->listeners[i]);
			w->listeners[i] = NULL;
		}
}

static void
worker_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct session	*s, *next;
	struct client	*c, *cn;
	int		 stop, drain, cancel;

	pthread_mutex_lock(&w->notify_lock);
	stop = w->notify_stop;
	drain = w->notify_drain;
	cancel = w->notify_cancel_all;
	w->notify_stop = w->notify_drain = w->notify_cancel_all = 0;
	pthread_mutex_unlock(&w->notify_lock);

	if (drain || stop || cancel) {
		w->draining = 1;
		worker_stop_accepting(w);
		/* Idle keep-alive connections can go now; HTTP/2 ones are
		 * told with GOAWAY and close once their streams are over. */
		for (c = TAILQ_FIRST(&w->clients); c != NULL; c = cn) {
			cn = TAILQ_NEXT(c, entry);
			downstream_drain(c);
		}
	}
	if (cancel || stop) {
		for (s = TAILQ_FIRST(&w->sessions); s != NULL; s = next) {
			next = TAILQ_NEXT(s, entry);
			session_cancel(s, CANCEL_KIND_SHUTDOWN,
			    CANCEL_VIA_SIGNAL);
		}
	}
	if (stop) {
		/* Out of time: whatever is still being written is cut. */
		while ((c = TAILQ_FIRST(&w->clients)) != NULL)
			downstream_close(c, CANCEL_VIA_SIGNAL);
		upstream_notes_free(w);
		event_base_loopbreak(w->base);
		return;
	}
	worker_schedule_reap(w);
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;

	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	__atomic_add_fetch(&proxy_global.workers_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int
proxy_bind(const struct sockaddr *sa, socklen_t len)
{
	int	 fd, one = 1;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, len) == -1 || listen(fd, 4096) == -1) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Whether another socket already listens on sa (we would share it
 * silently through SO_REUSEPORT). */
static int
proxy_port_taken(const struct sockaddr *sa, socklen_t len)
{
	int	 fd, one = 1, taken = 0;

	if ((sa->sa_family == AF_INET &&
	    ((const struct sockaddr_in *)sa)->sin_port == 0) ||
	    (sa->sa_family == AF_INET6 &&
	    ((const struct sockaddr_in6 *)sa)->sin6_port == 0))
		return 0;
	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, len) == -1 && errno == EADDRINUSE)
		taken = 1;
	close(fd);
	return taken;
}

static void
proxy_addr_string(const struct sockaddr *sa, char *buf, size_t len)
{
	char	 host[64];

	if (sa->sa_family == AF_INET6) {
		evutil_inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, host,
		    sizeof(host));
		snprintf(buf, len, "[%s]:%u", host,
		    ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
	} else {
		evutil_inet_ntop(AF_INET,
		    &((const struct sockaddr_in *)sa)->sin_addr, host,
		    sizeof(host));
		snprintf(buf, len, "%s:%u", host,
		    ntohs(((const struct sockaddr_in *)sa)->sin_port));
	}
}

/* Sets up worker w (its loop, lists, pool and events) on rt; -1 on
 * failure, after which worker_fini() frees what was made. */
int
worker_init(struct worker *w, int id, struct runtime *rt)
{
	w->id = id;
	w->rt = runtime_ref(rt);
	TAILQ_INIT(&w->sessions);
	TAILQ_INIT(&w->clients);
	TAILQ_INIT(&w->dead_sessions);
	TAILQ_INIT(&w->dead_clients);
	TAILQ_INIT(&w->notes_out);
	pthread_mutex_init(&w->notify_lock, NULL);
	pthread_mutex_init(&w->mail_lock, NULL);
	w->mail_tail = &w->mail_head;
	if ((w->base = event_base_new()) == NULL)
		return -1;
	w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (w->dns == NULL)
		w->dns = evdns_base_new(w->base,
		    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (w->dns == NULL)
		return -1;
	evdns_base_load_hosts(w->dns, NULL);
	w->pool = upstream_pool_new(w);
	w->reap = event_new(w->base, -1, 0, worker_reap_cb, w);
	w->notify = event_new(w->base, -1, 0, worker_notify_cb, w);
	w->accept_retry = evtimer_new(w->base, worker_accept_retry_cb, w);
	w->mail_ev = event_new(w->base, -1, 0, worker_mail_cb, w);
	if (w->pool == NULL || w->reap == NULL || w->notify == NULL ||
	    w->accept_retry == NULL || w->mail_ev == NULL ||
	    writeout_worker_init(w) == -1)
		return -1;
	w->nlisteners = rt->conf->nlisten;
	w->listeners = calloc(w->nlisteners + 1, sizeof(*w->listeners));
	return w->listeners == NULL ? -1 : 0;
}

/* Wraps fd as listener i of worker w. The socket already listens with
 * our backlog: 0 tells libevent not to call listen() again (with 128). */
static int
worker_listen(struct worker *w, size_t i, int fd)
{
	w->listeners[i] = evconnlistener_new(w->base, worker_accept_cb, w,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (w->listeners[i] == NULL) {
		close(fd);
		return -1;
	}
	evconnlistener_set_error_cb(w->listeners[i], worker_accept_error_cb);
	return 0;
}

/*
 * Binds listener i of conf once per worker: the first bind turns port 0
 * into a real port, the others share it through SO_REUSEPORT. Writes the
 * "listening" record. fds gets nworkers descriptors.
 */
int
proxy_bind_listener(const struct conf *conf, size_t i, int nworkers, int *fds,
    const char *role)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = conf->listen[i].addrlen;
	struct jsonw		 jw;
	char			 addr[80], stack[512];
	int			 k;

	memcpy(&ss, &conf->listen[i].addr, len);
	if (proxy_port_taken((struct sockaddr *)&ss, len))
		log_msg(LOG_LEVEL_WARN, "listen_shared", "%s is already in use "
		    "by another process; sharing it through SO_REUSEPORT "
		    "(intended during an upgrade, a mistake otherwise)",
		    conf->listen[i].address);
	for (k = 0; k < nworkers; k++) {
		if ((fds[k] = proxy_bind((struct sockaddr *)&ss, len)) == -1) {
			log_msg(LOG_LEVEL_ERROR, "listen", "%s: listen[%zu]."
			    "address: cannot listen on %s: %s", conf->path, i,
			    conf->listen[i].address, strerror(errno));
			while (k-- > 0)
				close(fds[k]);
			return -1;
		}
		if (k == 0)
			getsockname(fds[0], (struct sockaddr *)&ss, &len);
	}
	proxy_addr_string((struct sockaddr *)&ss, addr, sizeof(addr));
	jsonw_init(&jw, stack, sizeof(stack));
	log_record_begin(&jw, LOG_LEVEL_INFO, "listening");
	jsonw_kstr(&jw, "address", addr);
	/* The port on its own, so that a script given port 0 needs no
	 * parsing of "[::1]:port" to learn which port it got. */
	jsonw_kint(&jw, "port", ss.ss_family == AF_INET6 ?
	    ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
	    ntohs(((struct sockaddr_in *)&ss)->sin_port));
	jsonw_kstr(&jw, "role", role);
	jsonw_kbool(&jw, "tls", conf->listen[i].tls_cert != NULL);
	jsonw_kint(&jw, "workers", nworkers);
	log_record_end(&jw);
	jsonw_free(&jw);
	return 0;
}

int
proxy_start(struct runtime *rt, int nworkers)
{
	struct conf	*conf = rt->conf;
	struct worker	*w;
	size_t		 i;
	int		 k, fds[256];

	if (nworkers > 256)
		nworkers = 256;
	evthread_use_pthreads();
	proxy_global.nworkers = nworkers;
	proxy_global.workers = calloc((size_t)nworkers, sizeof(struct worker));
	if (proxy_global.workers == NULL)
		return -1;
	for (k = 0; k < nworkers; k++)
		if (worker_init(&proxy_global.workers[k], k, rt) == -1) {
			log_msg(LOG_LEVEL_ERROR, "startup",
			    "cannot set up worker %d", k);
			return -1;
		}
	for (i = 0; i < conf->nlisten; i++) {
		if (proxy_bind_listener(conf, i, nworkers, fds, "proxy") == -1)
			return -1;
		for (k = 0; k < nworkers; k++)
			if (worker_listen(&proxy_global.workers[k], i,
			    fds[k]) == -1)
				return -1;
	}
	for (k = 0; k < nworkers; k++) {
		w = &proxy_global.workers[k];
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			return -1;
	}
	return 0;
}

/*
 * On the worker's thread: switch to a reloaded runtime. Listeners the new
 * config keeps (same address and TLS files) stay open as they are; fds
 * holds a fresh descriptor for each new one (-1 for kept ones); the ones
 * it dropped are closed. Live sessions keep the runtime they started on.
 */
void
worker_apply_reload(struct worker *w, struct runtime *rt, const int *keep,
    const int *fds)
{
	struct evconnlistener	**nl;
	struct client		*c;
	size_t			 i, n = rt->conf->nlisten;
	int			 used[256] = { 0 };

	if ((nl = calloc(n + 1, sizeof(*nl))) == NULL) {
		for (i = 0; i < n; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		runtime_unref(rt);
		return;
	}
	for (i = 0; i < n; i++) {
		if (keep[i] >= 0 && (size_t)keep[i] < w->nlisteners &&
		    w->listeners[keep[i]] != NULL) {
			nl[i] = w->listeners[keep[i]];
			used[keep[i]] = 1;
		} else if (fds[i] >= 0 && !w->draining) {
			nl[i] = evconnlistener_new(w->base, worker_accept_cb, w,
			    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0,
			    fds[i]);
			if (nl[i] == NULL)
				close(fds[i]);
			else
				evconnlistener_set_error_cb(nl[i],
				    worker_accept_error_cb);
		} else if (fds[i] >= 0)
			close(fds[i]);
	}
	for (i = 0; i < w->nlisteners && i < 256; i++)
		if (!used[i] && w->listeners[i] != NULL)
			evconnlistener_free(w->listeners[i]);
	free(w->listeners);
	w->listeners = nl;
	w->nlisteners = n;
	runtime_unref(w->rt);
	w->rt = rt;
	/* HTTP/2 connections keep the settings they started with: GOAWAY
	 * asks their clients to come back on the new config once their
	 * streams are over. */
	TAILQ_FOREACH(c, &w->clients, entry)
		if (c->h2 != NULL)
			downstream_drain(c);
}

static void
proxy_notify(int drain, int cancel, int stop)
{
	int	 k;

	for (k = 0; k < proxy_global.nworkers; k++) {
		struct worker *w = &proxy_global.workers[k];

		pthread_mutex_lock(&w->notify_lock);
		w->notify_drain |= drain;
		w->notify_cancel_all |= cancel;
		w->notify_stop |= stop;
		pthread_mutex_unlock(&w->notify_lock);
		event_active(w->notify, 0, 0);
	}
}

void
proxy_drain(void)
{
	proxy_notify(1, 0, 0);
}

void
proxy_cancel_all(void)
{
	proxy_notify(1, 1, 0);
}

void
proxy_stop(void)
{
	proxy_notify(1, 1, 1);
}

/* Waits for every worker loop to end, then frees the workers. */
void
proxy_join(void)
{
	int	 k;

	for (k = 0; k < proxy_global.nworkers; k++) {
		struct worker *w = &proxy_global.workers[k];

		if (w->thread)
			pthread_join(w->thread, NULL);
	}
	for (k = 0; k < proxy_global.nworkers; k++) {
		struct worker *w = &proxy_global.workers[k];

		worker_stop_accepting(w);
		worker_fini(w);
	}
	free(proxy_global.workers);
	proxy_global.workers = NULL;
	proxy_global.nworkers = 0;
}

/* Frees what worker_init() made and what the worker still holds. */
void
worker_fini(struct worker *w)
{
	worker_free_dead(w);
	free(w->listeners);
	upstream_notes_free(w);
	while (w->mail_head != NULL) {
		struct worker_mail *m = w->mail_head;

		/* Run it: every mail frees what it carries. */
		w->mail_head = m->next;
		m->fn(w, m->arg);
		free(m);
	}
	if (w->mail_ev)
		event_free(w->mail_ev);
	registry_free(&w->registry);
	pthread_mutex_destroy(&w->mail_lock);
	upstream_pool_free(w->pool);
	if (w->dns != NULL)
		evdns_base_free(w->dns, 1);
	if (w->reap)
		event_free(w->reap);
	writeout_worker_free(w);
	if (w->notify)
		event_free(w->notify);
	if (w->accept_retry)
		event_free(w->accept_retry);
	if (w->base)
		event_base_free(w->base);
	if (w->rt != NULL)
		runtime_unref(w->rt);
	pthread_mutex_destroy(&w->notify_lock);
}

/* How many worker loops have ended. */
int
proxy_workers_done(void)
{
	return __atomic_load_n(&proxy_global.workers_done, __ATOMIC_ACQUIRE);
}

/* Queues fn(w, arg) to run on worker w's thread; any thread may post. */
int
worker_post(struct worker *w, worker_mail_fn fn, void *arg)
{
	struct worker_mail	*m;

	if ((m = malloc(sizeof(*m))) == NULL)
		return -1;
	m->fn = fn;
	m->arg = arg;
	m->next = NULL;
	pthread_mutex_lock(&w->mail_lock);
	*w->mail_tail = m;
	w->mail_tail = &m->next;
	pthread_mutex_unlock(&w->mail_lock);
	event_active(w->mail_ev, 0, 0);
	return 0;
}

/* Runs what other threads posted, in order. */
void
worker_mail_cb(int fd, short what, void *arg)
{
	struct worker		*w = arg;
	struct worker_mail	*m, *next;

	pthread_mutex_lock(&w->mail_lock);
	m = w->mail_head;
	w->mail_head = NULL;
	w->mail_tail = &w->mail_head;
	pthread_mutex_unlock(&w->mail_lock);
	for (; m != NULL; m = next) {
		next = m->next;
		m->fn(w, m->arg);
		free(m);
	}
}
