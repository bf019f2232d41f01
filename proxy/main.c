/* main: the cancelproxy daemon — command line, config, log, signals. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "proxy/log.h"
#include "proxy/proxy.h"

static const char usage_text[] =
"usage: cancelproxy -c FILE [-t]\n"
"       cancelproxy -h | -V\n"
"\n"
"A reverse proxy for LLM APIs. When a client goes away mid-stream, the\n"
"upstream model stream is closed in the same event-loop turn, and a cancel\n"
"record says which hop started it and how it travelled.\n"
"\n"
"  -c, --config FILE   config file (JSON with comments; see cancelproxy.conf(5))\n"
"  -t, --test          check the config file and exit: 0 valid, 1 not\n"
"  -h, --help          this help\n"
"  -V, --version       print the version\n"
"\n"
"Signals: SIGTERM/SIGINT drain live streams for shutdown.drain_ms, then\n"
"cancel the rest (a second signal cancels at once); SIGHUP reloads the\n"
"config (live streams finish on the old one; a broken file is refused and\n"
"logged); SIGUSR1 reopens the log.\n"
"Logs are JSON lines (one record per line) to log.path, default stdout.\n";

static struct event_base *main_base;
static struct conf	*main_conf;
static int		 main_signals;
static struct event	*main_drain_timer;
static struct event	*main_force_timer;
static const char	*main_file;
static struct runtime	*main_rt;		/* the newest config */

#define MAIN_FLUSH_MS	2000	/* after the cancels, for last bytes to go */

static void
main_force_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	log_msg(LOG_LEVEL_WARN, "shutdown", "clients did not take their last "
	    "bytes within %d ms; closing them", MAIN_FLUSH_MS);
	proxy_stop();
}

/* Cancels what is left, then gives the cancels a moment to be written. */
static void
main_cancel_rest(void)
{
	struct timeval	 tv = { MAIN_FLUSH_MS / 1000,
			    (MAIN_FLUSH_MS % 1000) * 1000 };

	proxy_cancel_all();
	evtimer_add(main_force_timer, &tv);
}

static void
main_drain_expired_cb(evutil_socket_t fd, short what, void *arg)
{
	log_msg(LOG_LEVEL_INFO, "shutdown",
	    "drain time is up; canceling the streams that are left");
	main_cancel_rest();
}

static void
main_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct timeval	 tv;

	if (sig == SIGUSR1) {
		if (log_reopen() == -1)
			log_msg(LOG_LEVEL_ERROR, "log_reopen",
			    "cannot reopen the log: %s", strerror(errno));
		else
			log_msg(LOG_LEVEL_INFO, "log_reopen", "log reopened");
		return;
	}
	if (sig == SIGHUP) {
		if (main_signals == 0 &&
		    proxy_reload(main_file, &main_rt) == 0) {
			conf_unref(main_conf);
			main_conf = conf_ref(main_rt->conf);
		}
		return;
	}
	if (++main_signals == 1) {
		log_msg(LOG_LEVEL_INFO, "shutdown", "%s: draining live streams "
		    "for up to %lld ms", strsignal((int)sig),
		    (long long)main_conf->shutdown_drain_ms);
		proxy_drain();
		admin_draining();
		tv.tv_sec = main_conf->shutdown_drain_ms / 1000;
		tv.tv_usec = (main_conf->shutdown_drain_ms % 1000) * 1000;
		evtimer_add(main_drain_timer, &tv);
	} else {
		log_msg(LOG_LEVEL_INFO, "shutdown",
		    "second signal: canceling live streams now");
		evtimer_del(main_drain_timer);
		main_cancel_rest();
	}
}

/*
 * Started as root with "user" set: the listeners are bound and the log is
 * open, so give up root for good (all threads: glibc applies it to each).
 */
static int
main_drop_privileges(const char *file, const char *user)
{
	struct passwd	*pw;

	if (user == NULL || geteuid() != 0)
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		log_msg(LOG_LEVEL_ERROR, "startup", "%s: user: no such user "
		    "\"%s\"", file, user);
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1 || setuid(0) != -1) {
		log_msg(LOG_LEVEL_ERROR, "startup", "cannot become user %s: %s",
		    user, strerror(errno));
		return -1;
	}
	log_msg(LOG_LEVEL_INFO, "privileges", "running as user %s (uid %d)",
	    user, (int)pw->pw_uid);
	return 0;
}

/* Leaves the main loop once every worker has finished. */
static void
main_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	if (proxy_workers_done() == proxy_global.nworkers)
		event_base_loopbreak(main_base);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char	*file = NULL;
	int		 ch, test = 0, sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	char		 err[1024];
	enum log_level	 level = LOG_LEVEL_INFO;
	struct runtime	*rt;
	struct event	*sev[4], *tick;
	struct timeval	 tick_tv = { 0, 50000 };
	size_t		 i;

	while ((ch = getopt_long(argc, argv, "c:thV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("cancelproxy %s\n", CANCELPROXY_VERSION);
			return 0;
		default:
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (file == NULL || optind != argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (conf_load(file, &main_conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "cancelproxy: %s\n", err);
		return 1;
	}
	main_file = file;
	if ((rt = runtime_new(main_conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "cancelproxy: %s\n", err);
		conf_unref(main_conf);
		return 1;
	}
	if (test) {
		fprintf(stderr, "cancelproxy: %s: ok\n", file);
		runtime_unref(rt);
		conf_unref(main_conf);
		return 0;
	}
	log_level_parse(main_conf->log_level, &level);
	if (log_open(main_conf->log_path, main_conf->hop, level) == -1) {
		fprintf(stderr, "cancelproxy: %s: log.path: cannot open %s: "
		    "%s\n", file, main_conf->log_path, strerror(errno));
		return 1;
	}
	log_secrets_set((const char *const *)main_conf->secrets,
	    (int)main_conf->nsecrets);
	signal(SIGPIPE, SIG_IGN);

	if ((main_base = event_base_new()) == NULL)
		return 1;
	main_rt = rt;
	/* Signals first: a SIGHUP or SIGTERM right after "listening" must
	 * not find the default action in place. */
	for (i = 0; i < 4; i++) {
		sev[i] = evsignal_new(main_base, sigs[i], main_signal_cb, NULL);
		evsignal_add(sev[i], NULL);
	}
	if (proxy_start(rt, main_conf->workers) == -1) {
		proxy_stop();
		proxy_join();
		return 1;
	}
	if (admin_start(main_base, &main_rt) == -1) {
		log_msg(LOG_LEVEL_ERROR, "startup", "%s: admin.address: cannot "
		    "serve the admin API on %s", file, main_conf->admin.address);
		proxy_stop();
		proxy_join();
		return 1;
	}
	if (cluster_start(main_base, &main_rt) == -1) {
		log_msg(LOG_LEVEL_ERROR, "startup", "%s: cluster.redis: cannot "
		    "set up the cluster link", file);
		admin_stop();
		proxy_stop();
		proxy_join();
		return 1;
	}
	if (main_drop_privileges(file, main_conf->user) == -1) {
		admin_stop();
		cluster_stop();
		proxy_stop();
		proxy_join();
		return 1;
	}
	log_msg(LOG_LEVEL_INFO, "start", "cancelproxy %s running with %d "
	    "worker(s), config %s", CANCELPROXY_VERSION, main_conf->workers,
	    file);
	main_drain_timer = evtimer_new(main_base, main_drain_expired_cb, NULL);
	main_force_timer = evtimer_new(main_base, main_force_stop_cb, NULL);
	tick = event_new(main_base, -1, EV_PERSIST, main_tick_cb, NULL);
	evtimer_add(tick, &tick_tv);
	event_base_dispatch(main_base);

	admin_stop();
	cluster_stop();
	proxy_stop();
	proxy_join();
	recent_free();
	log_msg(LOG_LEVEL_INFO, "stop", "cancelproxy stopped");
	for (i = 0; i < 4; i++)
		event_free(sev[i]);
	event_free(tick);
	event_free(main_drain_timer);
	event_free(main_force_timer);
	event_base_free(main_base);
	runtime_unref(main_rt);
	conf_unref(main_conf);
	log_close();
	libevent_global_shutdown();
	return 0;
}
