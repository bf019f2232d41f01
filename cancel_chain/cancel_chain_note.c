/* cancel_chain_note: the note body, its signature, and parsing what peers
 * send (notes toward the model, error bodies and SSE errors toward the
 * client). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cancel_chain/cancel_chain.h"
#include "proxy/log.h"

static const char *const phase_names_in[] = {
	"request", "connecting", "waiting_first_byte", "streaming",
};

void
cancel_note_json(struct jsonw *w, const struct cancel_record *r)
{
	int	 i;

	jsonw_obj_open(w);
	jsonw_kstr(w, "request_id", r->request_id);
	jsonw_kstr(w, "trace_id", r->trace_id);
	jsonw_lkey(w, "origin");
	jsonw_obj_open(w);
	jsonw_kstr(w, "kind", cancel_kind_name(r->kind));
	jsonw_kstr(w, "hop", r->path.n ? r->path.hops[0] : "unknown");
	jsonw_obj_close(w);
	jsonw_lkey(w, "cancel_path");
	jsonw_arr_open(w);
	for (i = 0; i < r->path.n; i++)
		jsonw_str(w, r->path.hops[i]);
	jsonw_arr_close(w);
	jsonw_kstr(w, "phase", cancel_phase_name(r->phase));
	jsonw_kstr(w, "from", log_hop());
	jsonw_obj_close(w);
}

static int
cancel_hop_ok(const char *s)
{
	size_t	 n = strlen(s), i;

	/* What a hop can be called: a config name ([A-Za-z0-9._:-]), a host
	 * name, "client", "upstream:NAME". Anything else in a peer's path is
	 * not a hop of ours, and would not survive a record unchanged. */
	if (n == 0 || n >= CANCEL_HOP_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._:-", s[i]) == NULL)
			return 0;
	return 1;
}

/* What a request id can be: the hop keeps an X-Request-Id only of these
 * bytes (session_identity), so no other id names a stream of ours. */
static int
cancel_request_id_ok(const char *s)
{
	size_t	 n = strlen(s), i;

	if (n == 0 || n >= CANCEL_REQUEST_ID_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("-_.:", s[i]) == NULL)
			return 0;
	return 1;
}

/* Reads origin, cancel_path and ids from an object holding them. */
static int
cancel_note_fields(const cJSON *o, struct cancel_note *n, char *err,
    size_t errlen)
{
	const cJSON	*id, *tr, *origin, *kind, *path, *hop, *phase;
	size_t		 i;

	id = cJSON_GetObjectItemCaseSensitive(o, "request_id");
	tr = cJSON_GetObjectItemCaseSensitive(o, "trace_id");
	origin = cJSON_GetObjectItemCaseSensitive(o, "origin");
	kind = cJSON_GetObjectItemCaseSensitive(origin, "kind");
	path = cJSON_GetObjectItemCaseSensitive(o, "cancel_path");
	phase = cJSON_GetObjectItemCaseSensitive(o, "phase");
	if (!cJSON_IsString(id) || !cancel_request_id_ok(id->valuestring)) {
		snprintf(err, errlen, "request_id missing, too long or not "
		    "a request id");
		return -1;
	}
	snprintf(n->request_id, sizeof(n->request_id), "%s", id->valuestring);
	if (cJSON_IsString(tr) && strlen(tr->valuestring) == 32 &&
	    strspn(tr->valuestring, "0123456789abcdef") == 32)
		memcpy(n->trace_id, tr->valuestring, 33);
	if (!cJSON_IsString(kind) ||
	    cancel_kind_parse(kind->valuestring, &n->kind) == -1) {
		snprintf(err, errlen, "origin.kind missing or unknown");
		return -1;
	}
	if (!cJSON_IsArray(path) || cJSON_GetArraySize(path) < 1 ||
	    cJSON_GetArraySize(path) >= CANCEL_PATH_MAX) {
		snprintf(err, errlen, "cancel_path missing or too long");
		return -1;
	}
	cancel_path_init(&n->path);
	cJSON_ArrayForEach(hop, path) {
		if (!cJSON_IsString(hop) || !cancel_hop_ok(hop->valuestring)) {
			snprintf(err, errlen, "cancel_path holds a bad hop name");
			return -1;
		}
		cancel_path_add(&n->path, hop->valuestring);
	}
	n->phase = PHASE_STREAMING;
	if (cJSON_IsString(phase))
		for (i = 0; i < 4; i++)
			if (strcmp(phase->valuestring, phase_names_in[i]) == 0)
				n->phase = (enum cancel_phase)i;
	return 0;
}

int
cancel_note_parse(const char *body, size_t len, struct cancel_note *n,
    char *err, size_t errlen)
{
	cJSON		*root;
	const cJSON	*from;
	int		 rc;

	memset(n, 0, sizeof(*n));
	if (len > CANCEL_NOTE_MAX_BYTES ||
	    (root = cJSON_ParseWithLength(body, len)) == NULL) {
		snprintf(err, errlen, "the note is not JSON");
		return -1;
	}
	rc = cancel_note_fields(root, n, err, errlen);
	from = cJSON_GetObjectItemCaseSensitive(root, "from");
	if (rc == 0 && (!cJSON_IsString(from) ||
	    !cancel_hop_ok(from->valuestring))) {
		snprintf(err, errlen, "from missing or bad");
		rc = -1;
	}
	if (rc == 0)
		snprintf(n->from, sizeof(n->from), "%s", from->valuestring);
	cJSON_Delete(root);
	return rc;
}

int
cancel_error_parse(const char *json, size_t len, struct cancel_note *n)
{
	cJSON		*root;
	const cJSON	*c;
	char		 err[128];
	int		 rc = -1;

	memset(n, 0, sizeof(*n));
	if ((root = cJSON_ParseWithLength(json, len)) == NULL)
		return -1;
	c = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(root, "error"), "cancel");
	if (cJSON_IsObject(c))
		rc = cancel_note_fields(c, n, err, sizeof(err));
	cJSON_Delete(root);
	return rc;
}

static void
cancel_note_hmac(const char *secret, long long t, const char *body,
    size_t len, unsigned char mac[32])
{
	char		 ts[32];
	int		 n = snprintf(ts, sizeof(ts), "%lld.", t);
	unsigned int	 maclen = 32;
	EVP_MAC		*m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX	*ctx = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM	 params[2];
	size_t		 outl = 0;

	(void)maclen;
	memset(mac, 0, 32);
	if (ctx == NULL)
		goto done;
	params[0] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret),
	    params) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)n) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)body, len) != 1 ||
	    EVP_MAC_final(ctx, mac, &outl, 32) != 1)
		memset(mac, 0, 32);
done:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(m);
}

void
cancel_note_sign(const char *secret, long long t, const char *body,
    size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char	 mac[32];
	char		 h[65];
	int		 i;

	cancel_note_hmac(secret, t, body, len, mac);
	for (i = 0; i < 32; i++) {
		h[2 * i] = hex[mac[i] >> 4];
		h[2 * i + 1] = hex[mac[i] & 15];
	}
	h[64] = '\0';
	snprintf(out, outlen, "t=%lld, sha256=%s", t, h);
}

int
cancel_note_verify(const char *secret, const char *header, size_t hlen,
    const char *body, size_t len, long long now, char *err, size_t errlen)
{
	char		 hv[256], want[128];
	const char	*sig;
	long long	 t;
	char		*end;

	if (header == NULL || hlen == 0 || hlen >= sizeof(hv)) {
		snprintf(err, errlen, "no signature");
		return -1;
	}
	memcpy(hv, header, hlen);
	hv[hlen] = '\0';
	if (strncmp(hv, "t=", 2) != 0) {
		snprintf(err, errlen, "malformed signature");
		return -1;
	}
	t = strtoll(hv + 2, &end, 10);
	if (end == hv + 2 || (sig = strstr(end, "sha256=")) == NULL ||
	    strlen(sig + 7) != 64) {
		snprintf(err, errlen, "malformed signature");
		return -1;
	}
	if (t > now + CANCEL_NOTE_MAX_AGE_S || t < now - CANCEL_NOTE_MAX_AGE_S) {
		snprintf(err, errlen, "stale signature");
		return -1;
	}
	cancel_note_sign(secret, t, body, len, want, sizeof(want));
	/* Constant-time comparison of the hex digests. */
	if (CRYPTO_memcmp(strstr(want, "sha256=") + 7, sig + 7, 64) != 0) {
		snprintf(err, errlen, "bad signature");
		return -1;
	}
	return 0;
}
