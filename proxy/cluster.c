/* cluster: cancels across a fleet through Redis pub/sub (hiredis async on
 * the main thread's event loop). A cancel for a request this instance does
 * not hold is published; the instance holding it cancels it (the stored
 * credential hash still decides) and answers on the asker's reply channel.
 * While Redis is down, local cancels keep working and the link comes back
 * with backoff. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>

#include <event2/event.h>

#include "proxy/log.h"
#include "proxy/proxy.h"

#define CLUSTER_WAIT_MS		1000	/* how long to wait for a holder */
#define CLUSTER_BACKOFF_MIN_MS	100
#define CLUSTER_BACKOFF_MAX_MS	5000

/* A cancel we published and wait on. */
struct cluster_wait {
	struct cluster_wait	*next;
	char			 id[48];
	struct proxy_job	*job;
	struct event		*timer;
};

/* Work handed to the main thread from workers. */
struct cluster_mail {
	struct cluster_mail	*next;
	struct proxy_job	*job;
	int			 remote;	/* 1: answer a remote asker */
};

static struct {
	struct event_base	*base;
	struct runtime		**rt;
	redisAsyncContext	*sub;		/* SUBSCRIBE only */
	redisAsyncContext	*pub;		/* PUBLISH */
	int			 sub_up, pub_up;
	int			 up;		/* both links usable */
	int			 stopping;
	int			 backoff_ms;
	struct event		*retry;
	struct event		*mail_ev;
	pthread_mutex_t		 mail_lock;
	struct cluster_mail	*mail;
	struct cluster_wait	*waits;
	char			 instance[17];
	char			 reply_channel[160];
	uint64_t		 seq;
	char			 host[256];
	int			 port;
} cl = { .mail_lock = PTHREAD_MUTEX_INITIALIZER };

static void	cluster_connect(void);

int
cluster_enabled(void)
{
	return cl.base != NULL;
}

int
cluster_link_up(void)
{
	return cl.up;
}

static void
cluster_set_up(int up, const char *why)
{
	int	 was = cl.up;

	cl.up = up;
	if (was != up)
		log_msg(up ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, "cluster",
		    "cluster link to redis %s:%d is %s%s%s", cl.host, cl.port,
		    up ? "up" : "down", why ? ": " : "", why ? why : "");
}

static void
cluster_schedule_retry(void)
{
	struct timeval	 tv;

	if (cl.stopping || evtimer_pending(cl.retry, NULL))
		return;
	tv.tv_sec = cl.backoff_ms / 1000;
	tv.tv_usec = (cl.backoff_ms % 1000) * 1000;
	evtimer_add(cl.retry, &tv);
	cl.backoff_ms = cl.backoff_ms * 2 > CLUSTER_BACKOFF_MAX_MS ?
	    CLUSTER_BACKOFF_MAX_MS : cl.backoff_ms * 2;
}

static void
cluster_disconnect_cb(const redisAsyncContext *ac, int status)
{
	if (cl.stopping)
		return;
	if (ac == cl.sub) {
		cl.sub = NULL;
		cl.sub_up = 0;
	} else if (ac == cl.pub) {
		cl.pub = NULL;
		cl.pub_up = 0;
	}
	cluster_set_up(0, ac->errstr[0] ? ac->errstr : "disconnected");
	/* Both links are rebuilt together. */
	if (cl.sub != NULL) {
		redisAsyncContext *s = cl.sub;

		cl.sub = NULL;
		redisAsyncDisconnect(s);
	}
	if (cl.pub != NULL) {
		redisAsyncContext *p = cl.pub;

		cl.pub = NULL;
		redisAsyncDisconnect(p);
	}
	cluster_schedule_retry();
}

static void
cluster_connect_cb(const redisAsyncContext *ac, int status)
{
	if (cl.stopping)
		return;
	if (status != REDIS_OK) {
		redisAsyncContext *other;

		/* hiredis frees this context after the callback; the other
		 * link is dropped too, so both come back together. */
		if (ac == cl.sub)
			cl.sub = NULL;
		if (ac == cl.pub)
			cl.pub = NULL;
		cluster_set_up(0, ac->errstr);
		if ((other = cl.sub ? cl.sub : cl.pub) != NULL) {
			cl.sub = cl.pub = NULL;
			redisAsyncFree(other);
		}
		cluster_schedule_retry();
	}
}

/* Runs what the holder found: cancel locally for a remote asker. */
static void	cluster_local_done(struct proxy_job *j);

static void
cluster_handle_cancel(const char *msg, size_t len)
{
	cJSON		*root = cJSON_ParseWithLength(msg, len);
	const cJSON	*id, *kind, *cred, *ip, *reply, *job;
	struct proxy_job *j;
	size_t		 i;

	if (root == NULL)
		return;
	id = cJSON_GetObjectItemCaseSensitive(root, "request_id");
	kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
	cred = cJSON_GetObjectItemCaseSensitive(root, "cred");
	ip = cJSON_GetObjectItemCaseSensitive(root, "ip");
	reply = cJSON_GetObjectItemCaseSensitive(root, "reply_to");
	job = cJSON_GetObjectItemCaseSensitive(root, "job");
	if (!cJSON_IsString(id) || !cJSON_IsString(kind) ||
	    !cJSON_IsString(reply) || !cJSON_IsString(job) ||
	    strcmp(reply->valuestring, cl.reply_channel) == 0 ||
	    strlen(reply->valuestring) >= sizeof(cl.reply_channel) ||
	    strlen(job->valuestring) >= 48) {
		cJSON_Delete(root);
		return;			/* malformed, or our own message */
	}
	j = proxy_job_new(strcmp(kind->valuestring, "admin") == 0 ?
	    JOB_CANCEL_ADMIN : JOB_CANCEL_CLIENT, id->valuestring);
	if (j == NULL) {
		cJSON_Delete(root);
		return;
	}
	if (cJSON_IsString(cred) && strlen(cred->valuestring) == 64) {
		for (i = 0; i < 32; i++) {
			unsigned b;

			if (sscanf(cred->valuestring + 2 * i, "%2x", &b) != 1)
				break;
			j->cred_hash[i] = (uint8_t)b;
		}
		j->has_cred = i == 32;
	}
	if (cJSON_IsString(ip))
		snprintf(j->client_ip, sizeof(j->client_ip), "%s",
		    ip->valuestring);
	/* Remember where to answer: reply channel and asker's job id. */
	j->arg = malloc(strlen(reply->valuestring) + strlen(job->valuestring) +
	    2);
	if (j->arg == NULL) {
		proxy_job_free(j);
		cJSON_Delete(root);
		return;
	}
	sprintf(j->arg, "%s\n%s", reply->valuestring, job->valuestring);
	j->done = cluster_local_done;
	cJSON_Delete(root);
	proxy_job_run(j);
}

static void
cluster_handle_reply(const char *msg, size_t len)
{
	cJSON			*root = cJSON_ParseWithLength(msg, len);
	const cJSON		*job, *found;
	struct cluster_wait	**pp, *w;

	if (root == NULL)
		return;
	job = cJSON_GetObjectItemCaseSensitive(root, "job");
	found = cJSON_GetObjectItemCaseSensitive(root, "found");
	if (cJSON_IsString(job) && cJSON_IsTrue(found))
		for (pp = &cl.waits; (w = *pp) != NULL; pp = &w->next)
			if (strcmp(w->id, job->valuestring) == 0) {
				*pp = w->next;
				__atomic_store_n(&w->job->found, 1,
				    __ATOMIC_RELAXED);
				event_free(w->timer);
				w->job->remote_done(w->job);
				free(w);
				break;
			}
	cJSON_Delete(root);
}

static void
cluster_message_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	redisReply	*reply = r;
	const char	*chan;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements < 3)
		return;
	if (strcmp(reply->element[0]->str, "subscribe") == 0) {
		if (++cl.sub_up == 2 && cl.pub_up) {
			cl.backoff_ms = CLUSTER_BACKOFF_MIN_MS;
			cluster_set_up(1, NULL);
		}
		return;
	}
	if (strcmp(reply->element[0]->str, "message") != 0 ||
	    reply->element[2]->type != REDIS_REPLY_STRING)
		return;
	chan = reply->element[1]->str;
	if (strcmp(chan, cl.reply_channel) == 0)
		cluster_handle_reply(reply->element[2]->str,
		    reply->element[2]->len);
	else
		cluster_handle_cancel(reply->element[2]->str,
		    reply->element[2]->len);
}

static void
cluster_auth_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	redisReply	*reply = r;

	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		log_msg(LOG_LEVEL_ERROR, "cluster", "redis refused the password"
		    "%s%s", reply ? ": " : "", reply ? reply->str : "");
		redisAsyncDisconnect(ac);
		return;
	}
	if (ac == cl.pub) {
		cl.pub_up = 1;
		if (cl.sub_up == 2) {
			cl.backoff_ms = CLUSTER_BACKOFF_MIN_MS;
			cluster_set_up(1, NULL);
		}
	}
}

static redisAsyncContext *
cluster_open(void)
{
	const char		*password = (*cl.rt)->conf->cluster_redis_password;
	redisAsyncContext	*ac = redisAsyncConnect(cl.host, cl.port);

	if (ac == NULL)
		return NULL;
	if (ac->err) {
		redisAsyncFree(ac);
		return NULL;
	}
	redisLibeventAttach(ac, cl.base);
	redisAsyncSetConnectCallback(ac, cluster_connect_cb);
	redisAsyncSetDisconnectCallback(ac, cluster_disconnect_cb);
	if (password != NULL)
		redisAsyncCommand(ac, cluster_auth_cb, NULL, "AUTH %s",
		    password);
	return ac;
}

static void
cluster_connect(void)
{
	const char	*channel = (*cl.rt)->conf->cluster_redis_channel;

	cl.sub_up = cl.pub_up = 0;
	if ((cl.sub = cluster_open()) == NULL ||
	    (cl.pub = cluster_open()) == NULL) {
		if (cl.sub != NULL) {
			redisAsyncContext *s = cl.sub;

			cl.sub = NULL;
			redisAsyncFree(s);
		}
		cluster_set_up(0, "cannot connect");
		cluster_schedule_retry();
		return;
	}
	redisAsyncCommand(cl.sub, cluster_message_cb, NULL, "SUBSCRIBE %s %s",
	    channel, cl.reply_channel);
	if ((*cl.rt)->conf->cluster_redis_password == NULL)
		cl.pub_up = 1;
}

static void
cluster_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	if (!cl.stopping && cl.sub == NULL && cl.pub == NULL)
		cluster_connect();
}

static void
cluster_wait_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cluster_wait	*w = arg, **pp;

	for (pp = &cl.waits; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	event_free(w->timer);
	w->job->remote_done(w->job);
	free(w);
}

/* Main thread: publish a cancel nobody here held, and wait for a holder. */
static void
cluster_publish(struct proxy_job *j)
{
	struct cluster_wait	*w;
	struct jsonw		 jw;
	char			 stack[1024], hex[65];
	struct timeval		 tv = { CLUSTER_WAIT_MS / 1000,
				    (CLUSTER_WAIT_MS % 1000) * 1000 };
	int			 i;

	if (!cl.up || (w = calloc(1, sizeof(*w))) == NULL) {
		j->remote_done(j);	/* link down: not found */
		return;
	}
	snprintf(w->id, sizeof(w->id), "%s:%llu", cl.instance,
	    (unsigned long long)++cl.seq);
	w->job = j;
	w->timer = evtimer_new(cl.base, cluster_wait_timeout_cb, w);
	w->next = cl.waits;
	cl.waits = w;
	evtimer_add(w->timer, &tv);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", j->cred_hash[i]);
	jsonw_init(&jw, stack, sizeof(stack));
	jsonw_obj_open(&jw);
	jsonw_kint(&jw, "v", 1);
	jsonw_kstr(&jw, "job", w->id);
	jsonw_kstr(&jw, "request_id", j->request_id);
	jsonw_kstr(&jw, "kind", j->kind == JOB_CANCEL_ADMIN ? "admin" :
	    "client_cancel");
	jsonw_kstr(&jw, "cred", j->has_cred ? hex : NULL);
	jsonw_kstr(&jw, "ip", j->client_ip);
	jsonw_kstr(&jw, "reply_to", cl.reply_channel);
	jsonw_kstr(&jw, "from", log_hop());
	jsonw_obj_close(&jw);
	redisAsyncCommand(cl.pub, NULL, NULL, "PUBLISH %s %b",
	    (*cl.rt)->conf->cluster_redis_channel, jw.buf, jw.len);
	jsonw_free(&jw);
}

/* Main thread: answer a remote asker when we held its stream. */
static void
cluster_answer(struct proxy_job *j)
{
	char	*nl = strchr((char *)j->arg, '\n');
	char	 msg[128];

	if (nl != NULL && cl.up && __atomic_load_n(&j->found,
	    __ATOMIC_RELAXED)) {
		*nl = '\0';
		snprintf(msg, sizeof(msg), "{\"job\":\"%s\",\"found\":true}",
		    nl + 1);
		redisAsyncCommand(cl.pub, NULL, NULL, "PUBLISH %s %s",
		    (char *)j->arg, msg);
	}
	free(j->arg);
	proxy_job_free(j);
}

static void
cluster_mail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cluster_mail	*m, *next;

	pthread_mutex_lock(&cl.mail_lock);
	m = cl.mail;
	cl.mail = NULL;
	pthread_mutex_unlock(&cl.mail_lock);
	/* The queue was pushed at its head: reverse to keep the order. */
	{
		struct cluster_mail *rev = NULL;

		for (; m != NULL; m = next) {
			next = m->next;
			m->next = rev;
			rev = m;
		}
		m = rev;
	}
	for (; m != NULL; m = next) {
		next = m->next;
		if (m->remote)
			cluster_answer(m->job);
		else
			cluster_publish(m->job);
		free(m);
	}
}

static void
cluster_post(struct proxy_job *j, int remote)
{
	struct cluster_mail	*m;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		if (remote) {
			free(j->arg);
			proxy_job_free(j);
		} else
			j->remote_done(j);
		return;
	}
	m->job = j;
	m->remote = remote;
	pthread_mutex_lock(&cl.mail_lock);
	m->next = cl.mail;
	cl.mail = m;
	pthread_mutex_unlock(&cl.mail_lock);
	event_active(cl.mail_ev, 0, 0);
}

static void
cluster_local_done(struct proxy_job *j)
{
	cluster_post(j, 1);
}

/* Any thread: ask the fleet; remote_done runs (on the main thread) when a
 * holder answered or the wait ran out; j->found says which. */
void
cluster_forward(struct proxy_job *j, void (*remote_done)(struct proxy_job *))
{
	j->remote_done = remote_done;
	cluster_post(j, 0);
}

int
cluster_start(struct event_base *base, struct runtime **rt)
{
	const struct conf	*conf = (*rt)->conf;
	const char		*a = conf->cluster_redis_address, *colon;

	if (!conf->cluster_enabled)
		return 0;
	colon = strrchr(a, ':');
	if (colon == NULL)
		return -1;
	snprintf(cl.host, sizeof(cl.host), "%.*s", (int)(colon - a), a);
	cl.port = atoi(colon + 1);
	cl.base = base;
	cl.rt = rt;
	cl.backoff_ms = CLUSTER_BACKOFF_MIN_MS;
	proxy_random_hex(cl.instance, 8);
	snprintf(cl.reply_channel, sizeof(cl.reply_channel), "%s:reply:%s",
	    conf->cluster_redis_channel, cl.instance);
	cl.retry = evtimer_new(base, cluster_retry_cb, NULL);
	cl.mail_ev = event_new(base, -1, 0, cluster_mail_cb, NULL);
	if (cl.retry == NULL || cl.mail_ev == NULL)
		return -1;
	cluster_connect();
	return 0;
}

/* Drops the links (nothing waits on them any more). */
void
cluster_stop(void)
{
	struct cluster_wait	*w;

	if (cl.base == NULL)
		return;
	cl.stopping = 1;
	while ((w = cl.waits) != NULL) {
		cl.waits = w->next;
		event_free(w->timer);
		w->job->remote_done(w->job);
		free(w);
	}
	cluster_mail_cb(-1, 0, NULL);
	{
		redisAsyncContext *sub = cl.sub, *pub = cl.pub;

		cl.sub = cl.pub = NULL;
		if (sub != NULL)
			redisAsyncFree(sub);
		if (pub != NULL)
			redisAsyncFree(pub);
	}
	if (cl.retry != NULL)
		event_free(cl.retry);
	if (cl.mail_ev != NULL)
		event_free(cl.mail_ev);
	cl.base = NULL;
}
