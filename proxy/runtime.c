/* runtime: a config plus the TLS contexts built from it, shared by
 * reference between workers and the sessions that started on it. */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "downstream/downstream.h"
#include "proxy/proxy.h"
#include "upstream/upstream.h"

static SSL_CTX *
runtime_listen_tls(const struct conf *conf, size_t idx, char *err,
    size_t errlen)
{
	const struct conf_listen *l = &conf->listen[idx];
	SSL_CTX		*ctx;
	unsigned long	 e;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1
	    || SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	downstream_tls_alpn(ctx, &l->protocols);
	return ctx;
fail:
	e = ERR_get_error();
	snprintf(err, errlen, "%s: listen[%zu].tls: %s", conf->path, idx,
	    e ? ERR_reason_error_string(e) : "cannot create a TLS context");
	ERR_clear_error();
	if (ctx != NULL)
		SSL_CTX_free(ctx);
	return NULL;
}

static void
runtime_free(struct runtime *rt)
{
	size_t	 i;

	if (rt->listen_tls != NULL)
		for (i = 0; i < rt->conf->nlisten; i++)
			if (rt->listen_tls[i] != NULL)
				SSL_CTX_free(rt->listen_tls[i]);
	if (rt->upstream_tls != NULL)
		for (i = 0; i < rt->conf->nupstreams; i++)
			if (rt->upstream_tls[i] != NULL)
				SSL_CTX_free(rt->upstream_tls[i]);
	free(rt->listen_tls);
	free(rt->upstream_tls);
	conf_unref(rt->conf);
	free(rt);
}

/* Builds the runtime for conf (takes a reference on conf). */
struct runtime *
runtime_new(struct conf *conf, char *err, size_t errlen)
{
	struct runtime	*rt;
	size_t		 i;

	if ((rt = calloc(1, sizeof(*rt))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rt->refs = 1;
	rt->conf = conf_ref(conf);
	rt->listen_tls = calloc(conf->nlisten + 1, sizeof(SSL_CTX *));
	rt->upstream_tls = calloc(conf->nupstreams + 1, sizeof(SSL_CTX *));
	if (rt->listen_tls == NULL || rt->upstream_tls == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < conf->nlisten; i++)
		if (conf->listen[i].tls_cert != NULL &&
		    (rt->listen_tls[i] = runtime_listen_tls(conf, i, err,
		    errlen)) == NULL)
			goto fail;
	for (i = 0; i < conf->nupstreams; i++)
		if (conf->upstreams[i].tls &&
		    (rt->upstream_tls[i] = upstream_tls_ctx_new(
		    &conf->upstreams[i], err, errlen)) == NULL)
			goto fail;
	return rt;
fail:
	runtime_free(rt);
	return NULL;
}

struct runtime *
runtime_ref(struct runtime *rt)
{
	__atomic_add_fetch(&rt->refs, 1, __ATOMIC_RELAXED);
	return rt;
}

void
runtime_unref(struct runtime *rt)
{
	if (rt != NULL && __atomic_sub_fetch(&rt->refs, 1, __ATOMIC_ACQ_REL) == 0)
		runtime_free(rt);
}

SSL_CTX *
runtime_upstream_tls(const struct runtime *rt, const struct conf_upstream *up)
{
	size_t	 i = (size_t)(up - rt->conf->upstreams);

	if (i >= rt->conf->nupstreams)
		return NULL;
	return rt->upstream_tls[i];
}
