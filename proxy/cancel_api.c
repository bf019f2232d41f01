/* cancel_api: cancelling a stream by request id, wherever it lives — the
 * client's cancel call (POST {cancel_api.path_prefix}{id}, authorised by
 * the credential that started the stream) and the admin API — through one
 * job posted to every worker's mailbox; no lock on the streaming path. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <event2/buffer.h>
#include <event2/event.h>

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
