/* reload: SIGHUP — load the config again, refuse it whole if anything is
 * wrong, otherwise hand it to every worker with the listener changes, and
 * write one "reload" record saying what changed. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/proxy.h"

/* One worker's share of a reload; freed by the worker. */
struct reload_mail {
	struct runtime	*rt;
	int		*keep;		/* per new listener: old index or -1 */
	int		*fds;		/* per new listener: fd or -1 */
};

static void
reload_mail_cb(struct worker *w, void *arg)
{
	struct reload_mail	*m = arg;

	worker_apply_reload(w, m->rt, m->keep, m->fds);
	free(m->keep);
	free(m->fds);
	free(m);
}

static int
reload_same_listener(const struct conf_listen *a, const struct conf_listen *b)
{
	return strcmp(a->address, b->address) == 0 &&
	    ((a->tls_cert == NULL && b->tls_cert == NULL) ||
	    (a->tls_cert != NULL && b->tls_cert != NULL &&
	    strcmp(a->tls_cert, b->tls_cert) == 0 &&
	    strcmp(a->tls_key, b->tls_key) == 0));
}

/* Names in one config but not the other, as a JSON array member. */
static void
reload_diff_upstreams(struct jsonw *w, const char *key, const struct conf *a,
    const struct conf *b)
{
	size_t	 i;

	jsonw_key(w, key);
	jsonw_arr_open(w);
	for (i = 0; i < a->nupstreams; i++)
		if (conf_upstream_find(b, a->upstreams[i].name) == NULL)
			jsonw_str(w, a->upstreams[i].name);
	jsonw_arr_close(w);
}

static void
reload_log(const char *outcome, const char *error, const struct conf *old,
    const struct conf *new, const int *keep)
{
	struct jsonw	 w;
	char		 stack[2048];
	size_t		 i, j;

	metrics_reload(error == NULL);
	jsonw_init(&w, stack, sizeof(stack));
	log_record_begin(&w, error ? LOG_LEVEL_ERROR : LOG_LEVEL_INFO,
	    "reload");
	jsonw_kstr(&w, "outcome", outcome);
	if (error != NULL)
		jsonw_kstr(&w, "error", error);
	if (new != NULL) {
		jsonw_lkey(&w, "listeners_added");
		jsonw_arr_open(&w);
		for (i = 0; i < new->nlisten; i++)
			if (keep[i] < 0)
				jsonw_str(&w, new->listen[i].address);
		jsonw_arr_close(&w);
		jsonw_lkey(&w, "listeners_removed");
		jsonw_arr_open(&w);
		for (j = 0; j < old->nlisten; j++) {
			int kept = 0;

			for (i = 0; i < new->nlisten; i++)
				if (keep[i] == (int)j)
					kept = 1;
			if (!kept)
				jsonw_str(&w, old->listen[j].address);
		}
		jsonw_arr_close(&w);
		reload_diff_upstreams(&w, "upstreams_added", new, old);
		reload_diff_upstreams(&w, "upstreams_removed", old, new);
		jsonw_kuint(&w, "routes", new->nroutes);
		if (new->workers != old->workers)
			jsonw_kstr(&w, "note", "a new worker count takes a "
			    "restart; the old count stays");
	}
	log_record_end(&w);
	jsonw_free(&w);
}

int
proxy_reload(const char *file, struct runtime **current)
{
	struct runtime	*old = *current, *rt;
	struct conf	*conf;
	char		 err[1024];
	int		 n = proxy_global.nworkers, *keep, **fds, k;
	size_t		 i, j;
	enum log_level	 level = LOG_LEVEL_INFO;

	if (conf_load(file, &conf, err, sizeof(err)) == -1) {
		reload_log("refused", err, NULL, NULL, NULL);
		return -1;
	}
	rt = runtime_new(conf, err, sizeof(err));
	conf_unref(conf);
	if (rt == NULL) {
		reload_log("refused", err, NULL, NULL, NULL);
		return -1;
	}
	keep = calloc(rt->conf->nlisten + 1, sizeof(int));
	fds = calloc((size_t)n, sizeof(int *));
	if (keep == NULL || fds == NULL)
		goto oom;
	for (k = 0; k < n; k++)
		if ((fds[k] = calloc(rt->conf->nlisten + 1, sizeof(int))) ==
		    NULL)
			goto oom;
	/* Match listeners; bind the new ones here, once per worker. */
	for (i = 0; i < rt->conf->nlisten; i++) {
		int bound[256];

		keep[i] = -1;
		for (j = 0; j < old->conf->nlisten; j++)
			if (reload_same_listener(&rt->conf->listen[i],
			    &old->conf->listen[j]))
				keep[i] = (int)j;
		for (k = 0; k < n; k++)
			fds[k][i] = -1;
		if (keep[i] >= 0)
			continue;
		if (proxy_bind_listener(rt->conf, i, n, bound, "proxy") == -1) {
			snprintf(err, sizeof(err), "%s: listen[%zu].address: "
			    "cannot listen on %s", rt->conf->path, i,
			    rt->conf->listen[i].address);
			for (j = 0; j < i; j++)
				for (k = 0; k < n; k++)
					if (fds[k][j] >= 0)
						close(fds[k][j]);
			reload_log("refused", err, NULL, NULL, NULL);
			goto fail;
		}
		for (k = 0; k < n; k++)
			fds[k][i] = bound[k];
	}
	reload_log("ok", NULL, old->conf, rt->conf, keep);
	log_level_parse(rt->conf->log_level, &level);
	if (strcmp(rt->conf->log_path, old->conf->log_path) != 0 ||
	    strcmp(rt->conf->hop, old->conf->hop) != 0 ||
	    strcmp(rt->conf->log_level, old->conf->log_level) != 0)
		log_open(rt->conf->log_path, rt->conf->hop, level);
	log_secrets_set((const char *const *)rt->conf->secrets,
	    (int)rt->conf->nsecrets);
	for (k = 0; k < n; k++) {
		struct reload_mail *m = calloc(1, sizeof(*m));

		if (m == NULL)
			continue;
		m->rt = runtime_ref(rt);
		m->fds = fds[k];
		fds[k] = NULL;
		m->keep = malloc((rt->conf->nlisten + 1) * sizeof(int));
		if (m->keep != NULL)
			memcpy(m->keep, keep, rt->conf->nlisten * sizeof(int));
		if (m->keep == NULL || worker_post(&proxy_global.workers[k],
		    reload_mail_cb, m) == -1) {
			runtime_unref(m->rt);
			free(m->keep);
			free(m->fds);
			free(m);
		}
	}
	free(keep);
	free(fds);
	*current = rt;
	runtime_unref(old);
	return 0;
oom:
	reload_log("refused", "out of memory", NULL, NULL, NULL);
fail:
	if (fds != NULL)
		for (k = 0; k < n; k++)
			free(fds[k]);
	free(fds);
	free(keep);
	runtime_unref(rt);
	return -1;
}
