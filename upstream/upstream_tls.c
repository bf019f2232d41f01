/* upstream_tls: client TLS contexts — TLS 1.2+, chain verification on by
 * default, and truncation judged from HTTP framing, not close_notify. */
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "upstream/upstream.h"

SSL_CTX *
upstream_tls_ctx_new(const struct conf_upstream *up, char *err, size_t errlen)
{
	SSL_CTX		*ctx;
	unsigned long	 e;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (up->protocol == CONF_PROTOCOL_H2)
		SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2", 3);
	else if (up->protocol == CONF_PROTOCOL_AUTO)
		SSL_CTX_set_alpn_protos(ctx,
		    (const unsigned char *)"\x02h2\x08http/1.1", 12);
	else
		SSL_CTX_set_alpn_protos(ctx,
		    (const unsigned char *)"\x08http/1.1", 9);
	if (up->tls_verify) {
		if (up->tls_ca_file != NULL) {
			if (SSL_CTX_load_verify_locations(ctx, up->tls_ca_file,
			    NULL) != 1)
				goto fail;
		} else if (SSL_CTX_set_default_verify_paths(ctx) != 1)
			goto fail;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;

fail:
	e = ERR_get_error();
	snprintf(err, errlen, "upstreams.%s.tls: %s", up->name,
	    e ? ERR_reason_error_string(e) : "cannot create a TLS context");
	ERR_clear_error();
	if (ctx != NULL)
		SSL_CTX_free(ctx);
	return NULL;
}
