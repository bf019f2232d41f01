/* proxy: the process — workers (one event loop and one SO_REUSEPORT
 * listener set each), the runtime built from a config, deferred frees. */
#ifndef CANCELPROXY_PROXY_H
#define CANCELPROXY_PROXY_H

#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>

#include <openssl/ssl.h>

#include "conf/conf.h"
#include "proxy/metrics.h"
#include "proxy/writeout.h"

#include <netinet/in.h>

/* An IPv4 or IPv6 peer address: 28 bytes where sockaddr_storage takes
 * 128, kept per stream twice. */
union proxy_addr {
	struct sockaddr		 sa;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
};

struct event_base;
struct worker;
struct evdns_base;
struct event;
struct evconnlistener;
struct session;
struct client;
struct upstream_pool;
struct upstream_proto;

/*
 * What a config turns into at run time: the config itself plus the TLS
 * contexts built from it. Sessions hold a reference, so a reload never
 * pulls a config out from under a live stream.
 */
struct runtime {
	int		 refs;		/* atomic */
	struct conf	*conf;
	SSL_CTX		**listen_tls;	/* per conf->listen[i], NULL if plain */
	SSL_CTX		**upstream_tls;	/* per conf->upstreams[i], NULL if http */
	int		 generation;
};

struct runtime	*runtime_new(struct conf *conf, char *err, size_t errlen);
struct runtime	*runtime_ref(struct runtime *rt);
void		 runtime_unref(struct runtime *rt);
SSL_CTX		*runtime_upstream_tls(const struct runtime *rt,
		    const struct conf_upstream *up);

TAILQ_HEAD(session_list, session);
TAILQ_HEAD(client_list, client);
struct note_out;
TAILQ_HEAD(note_out_list, note_out);

/* Live sessions of one worker by request id (registry.c). */
struct registry {
	struct session	**buckets;
	size_t		 nbuckets;
	size_t		 n;
};

void		 registry_add(struct registry *r, struct session *s);
void		 registry_remove(struct registry *r, struct session *s);
struct session	*registry_find(struct registry *r, const char *request_id);
void		 registry_free(struct registry *r);

/* Work handed from one thread to a worker's thread. */
typedef void	(*worker_mail_fn)(struct worker *w, void *arg);
struct worker_mail {
	struct worker_mail	*next;
	worker_mail_fn		 fn;
	void			*arg;
};

/* One event-loop thread; every session lives and dies on one worker. */
struct worker {
	int			 id;
	pthread_t		 thread;
	struct event_base	*base;
	struct evdns_base	*dns;
	struct runtime		*rt;		/* current config, for new conns */
	struct evconnlistener	**listeners;	/* per rt->conf->listen[i] */
	size_t			 nlisteners;
	struct event		*accept_retry;	/* re-enables after EMFILE */
	struct event		*notify;	/* cross-thread wakeup */
	struct event		*reap;		/* deferred frees, end of turn */
	struct event		*writeout_ev;	/* writes queued output */
	struct writeout_list	 writeouts;	/* output added this turn */
	struct session_list	 sessions;	/* live sessions */
	struct client_list	 clients;	/* open client connections */
	struct session_list	 dead_sessions;	/* closed, freed by reap */
	struct client_list	 dead_clients;
	struct upstream_pool	*pool;		/* idle upstream connections */
	struct registry		 registry;	/* live sessions by request id */
	struct metrics		 metrics;	/* written by this worker only */
	struct note_out_list	 notes_out;	/* notes on their way to peers */
	struct event		*mail_ev;	/* wakes the worker for mail */
	pthread_mutex_t		 mail_lock;	/* guards the mail queue only */
	struct worker_mail	*mail_head;
	struct worker_mail	**mail_tail;
	int			 draining;	/* stop accepting; close when idle */
	int			 stopping;	/* leave the loop */
	pthread_mutex_t		 notify_lock;	/* guards the fields below */
	int			 notify_stop;
	int			 notify_drain;
	int			 notify_cancel_all;
	uint64_t		 next_serial;	/* for sessions */
	/* Every upstream stream of this worker speaks it, whatever the
	 * config says; NULL in the daemon (unit tests plug a fake in). */
	const struct upstream_proto *upstream_proto;
};

/* Sets up w on rt: its loop, lists, pool and events; -1 on failure. */
int	 worker_init(struct worker *w, int id, struct runtime *rt);
/* Frees what worker_init() made and what w still holds. */
void	 worker_fini(struct worker *w);

/* Global, read-mostly process state. */
struct proxy {
	struct worker		*workers;
	int			 nworkers;
	int			 listen_fds0[64];	/* bound in main, per listener */
	int			 nlisten_fds0;
	int			 live_connections;	/* atomic, vs max_connections */
	int			 workers_done;		/* atomic */
};

extern struct proxy	 proxy_global;

int	 worker_post(struct worker *w, worker_mail_fn fn, void *arg);
void	 worker_mail_cb(int fd, short what, void *arg);

/* Frees what closed during this loop turn (the reaper's work). */
void	 worker_free_dead(struct worker *w);

/* Schedules the end-of-turn reaper on w. */
void	 worker_schedule_reap(struct worker *w);

int	 proxy_bind_listener(const struct conf *conf, size_t i, int nworkers,
	    int *fds, const char *role);
void	 worker_apply_reload(struct worker *w, struct runtime *rt,
	    const int *keep, const int *fds);
/* Loads FILE again and hands the result to every worker (SIGHUP); a
 * broken config is refused and logged, and the old one stays. */
int	 proxy_reload(const char *file, struct runtime **current);

/* A request by id to every worker: cancel it or list streams; the last
 * worker to finish calls done (on its own thread). */
enum proxy_job_kind {
	JOB_CANCEL_CLIENT,	/* cancel API: credential checked */
	JOB_CANCEL_ADMIN,	/* admin API */
	JOB_LIST,		/* GET /streams */
};

struct proxy_job {
	enum proxy_job_kind	 kind;
	int			 refs;		/* atomic: workers still to run */
	int			 found;		/* atomic */
	char			 request_id[72];
	uint8_t			 cred_hash[32];
	uint8_t			 has_cred;
	char			 client_ip[64];
	pthread_mutex_t		 lock;		/* guards body */
	struct evbuffer		*body;		/* JOB_LIST: JSON objects */
	void			(*done)(struct proxy_job *j);
	void			*arg;		/* for done */
	void			(*remote_done)(struct proxy_job *j);
	struct worker		*origin;	/* the worker that asked, or NULL */
	uint64_t		 origin_serial;
};

struct proxy_job *proxy_job_new(enum proxy_job_kind kind,
		    const char *request_id);
/* Posts j to every worker; j is freed after done() returns. */
void		 proxy_job_run(struct proxy_job *j);
void		 proxy_job_free(struct proxy_job *j);

/* Cancels across a fleet through Redis (cluster.c), main thread. */
int		 cluster_start(struct event_base *base, struct runtime **rt);
void		 cluster_stop(void);
int		 cluster_enabled(void);
int		 cluster_link_up(void);
void		 cluster_forward(struct proxy_job *j,
		    void (*remote_done)(struct proxy_job *));

struct evbuffer;

/* The last cancel records, for the admin API (recent.c). */
void		 recent_enable(void);
void		 recent_cancel_add(const char *request_id, const char *rec,
		    size_t len);
void		 recent_cancel_list(const char *request_id,
		    struct evbuffer *out);
void		 recent_free(void);

/* The admin API on the main thread (admin.c). */
int		 admin_start(struct event_base *base, struct runtime **rt);
void		 admin_stop(void);
void		 admin_draining(void);

/* Starts the workers for rt; the listeners are bound before threads start. */
int	 proxy_start(struct runtime *rt, int nworkers);
/* Asks every worker to stop accepting and drain; then to stop. */
void	 proxy_drain(void);
void	 proxy_cancel_all(void);
void	 proxy_stop(void);
/* Joins the workers and frees them. */
void	 proxy_join(void);
int	 proxy_workers_done(void);

/* Random lowercase hex of n bytes (2n chars) into out (size >= 2n+1). */
void	 proxy_random_hex(char *out, size_t nbytes);

/* Keeps a watch on a socket whose reading is paused, so that a FIN or an
 * RST is still noticed in the same loop turn (DESIGN.md §2). */
struct pause_watch;
typedef void (*pause_watch_cb)(void *arg, int rst);
struct pause_watch *pause_watch_start(struct event_base *base, int fd,
		    pause_watch_cb cb, void *arg);
void		 pause_watch_stop(struct pause_watch *pw);

#endif
