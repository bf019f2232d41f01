/* session_cancel: a session's side of cancel by request id — the
 * credential that may cancel it, and the client's own cancel call
 * (POST {cancel_api.path_prefix}{id}) sent as a job to every worker and
 * answered back on the asking worker. */
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "downstream/downstream.h"
#include "proxy/log.h"
#include "proxy/session.h"

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
