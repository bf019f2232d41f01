/* cancel_api: cancelling a stream by request id, wherever it lives — the
 * client's cancel call (POST {cancel_api.path_prefix}{id}, authorised by
 * the credential that started the stream) and the admin API — through one
 * job posted to every worker's mailbox; no lock on the streaming path. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "downstream/downstream.h"
#include "proxy/log.h"
#include "proxy/session.h"

struct proxy_job *
proxy_job_new(enum proxy_job_kind kind, const char *request_id)
{
	struct proxy_job	*j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->kind = kind;
	if (request_id != NULL)
		snprintf(j->request_id, sizeof(j->request_id), "%s", request_id);
	pthread_mutex_init(&j->lock, NULL);
	if (kind == JOB_LIST && (j->body = evbuffer_new()) == NULL) {
		free(j);
		return NULL;
	}
	return j;
}

void
proxy_job_free(struct proxy_job *j)
{
	if (j->body != NULL)
		evbuffer_free(j->body);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

/* Whether the job's requester may cancel s. */
static int
proxy_job_may_cancel(const struct proxy_job *j, const struct session *s)
{
	char	 ip[64];

	if (j->kind == JOB_CANCEL_ADMIN)
		return 1;
	if (s->has_cred || j->has_cred)
		return s->has_cred && j->has_cred &&
		    CRYPTO_memcmp(s->cred_hash, j->cred_hash, 32) == 0;
	/* No credential on either side: only from the same address. */
	session_addr_ip(s->client_addr, ip, sizeof(ip));
	return strcmp(ip, j->client_ip) == 0;
}

static void
proxy_job_mail(struct worker *w, void *arg)
{
	struct proxy_job	*j = arg;
	struct session		*s, *next;
	struct jsonw		 jw;
	char			 stack[1024];

	if (j->kind == JOB_LIST) {
		jsonw_init(&jw, stack, sizeof(stack));
		TAILQ_FOREACH(s, &w->sessions, entry) {
			if (session_closed(s) || s->is_note || !s->request_done)
				continue;
			jsonw_reset(&jw);
			session_describe(s, &jw);
			pthread_mutex_lock(&j->lock);
			if (evbuffer_get_length(j->body) > 0)
				evbuffer_add_lit(j->body, ",");
			evbuffer_add(j->body, jw.buf, jw.len);
			pthread_mutex_unlock(&j->lock);
		}
		jsonw_free(&jw);
	} else {
		/* Request ids may repeat: cancel every allowed live match. */
		for (s = registry_find(&w->registry, j->request_id); s != NULL;
		    s = next) {
			next = s->reg_next;
			while (next != NULL &&
			    strcmp(next->request_id, j->request_id) != 0)
				next = next->reg_next;
			if (session_closed(s) || !proxy_job_may_cancel(j, s))
				continue;
			__atomic_store_n(&j->found, 1, __ATOMIC_RELAXED);
			session_cancel(s, j->kind == JOB_CANCEL_ADMIN ?
			    CANCEL_KIND_ADMIN : CANCEL_KIND_CLIENT_CANCEL,
			    CANCEL_VIA_ADMIN);
		}
	}
	if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) == 0)
		j->done(j);
}

void
proxy_job_run(struct proxy_job *j)
{
	int	 k, n = proxy_global.nworkers;

	j->refs = n;
	for (k = 0; k < n; k++)
		if (worker_post(&proxy_global.workers[k], proxy_job_mail,
		    j) == -1 && __atomic_sub_fetch(&j->refs, 1,
		    __ATOMIC_ACQ_REL) == 0)
			j->done(j);
}

/* SHA-256 of the client's credential, if it sent one. */
void
session_credential(struct session *s)
{
	const char	*v;
	size_t		 n;

	if ((v = headers_get(&s->req_headers, "authorization", &n)) == NULL)
		v = headers_get(&s->req_headers, "x-api-key", &n);
	if (v == NULL || n == 0)
		return;
	SHA256((const unsigned char *)v, n, s->cred_hash);
	s->has_cred = 1;
}

/* Back on the asking worker: answer the cancel call if it is still there. */
static void
session_cancel_api_reply(struct worker *w, void *arg)
{
	struct proxy_job	*j = arg;
	struct session		*s;

	TAILQ_FOREACH(s, &w->sessions, entry)
		if (s->serial == j->origin_serial)
			break;
	if (s != NULL && !session_closed(s) && s->client != NULL) {
		if (__atomic_load_n(&j->found, __ATOMIC_RELAXED)) {
			struct session_end e = { .cancel = 0 };

			downstream_write_error(s->client, s, 202, "canceled",
			    "the stream was canceled", NULL);
			session_close(s, &e);
		} else
			session_refuse(s, 404, "not_found", "no live stream "
			    "with this request id for this credential");
	}
	proxy_job_free(j);
}

static void
session_cancel_api_answer(struct proxy_job *j)
{
	if (worker_post(j->origin, session_cancel_api_reply, j) == -1)
		proxy_job_free(j);
}

/* No worker here held it: ask the fleet when there is one. */
static void
session_cancel_api_done(struct proxy_job *j)
{
	if (!__atomic_load_n(&j->found, __ATOMIC_RELAXED) && cluster_enabled())
		cluster_forward(j, session_cancel_api_answer);
	else
		session_cancel_api_answer(j);
}

/* POST {prefix}{request_id}: cancel the caller's own stream by id. */
void
session_cancel_api(struct session *s)
{
	const char	*prefix = s->rt->conf->cancel_api_prefix;
	const char	*id = s->target + strlen(prefix), *end;
	struct proxy_job *j;
	size_t		 n;

	end = strpbrk(id, "?/");
	n = end ? (size_t)(end - id) : strlen(id);
	if (n == 0 || n >= sizeof(j->request_id)) {
		session_refuse(s, 404, "not_found", "no request id given");
		return;
	}
	if ((j = proxy_job_new(JOB_CANCEL_CLIENT, NULL)) == NULL) {
		session_refuse(s, 503, "out_of_memory", "out of memory");
		return;
	}
	memcpy(j->request_id, id, n);
	j->request_id[n] = '\0';
	memcpy(j->cred_hash, s->cred_hash, 32);
	j->has_cred = s->has_cred;
	session_addr_ip(s->client_addr, j->client_ip, sizeof(j->client_ip));
	j->origin = s->w;
	j->origin_serial = s->serial;
	j->done = session_cancel_api_done;
	proxy_job_run(j);
}
