/* harness_tls: certificates made at test time with the OpenSSL 3 API (no
 * openssl command): a throw-away CA and server certificates it signs, so
 * TLS tests verify for real instead of turning verification off. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/stat.h>

#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tests/integration/harness.h"

static void
cert_errors(const char *what)
{
	unsigned long	e;
	char		buf[256];

	fprintf(stderr, "harness: %s failed\n", what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, "harness:   %s\n", buf);
	}
}

/* Adds one extension in openssl.cnf syntax ("critical,CA:TRUE"). */
static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*ext;
	int		 ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

/* An unsigned certificate for key issued by issuer (NULL: by itself). */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer)
{
	X509		*x;
	X509_NAME	*name;
	BIGNUM		*bn = NULL;

	if ((x = X509_new()) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1)
		goto fail;
	if ((bn = BN_new()) == NULL || BN_rand(bn, 63, BN_RAND_TOP_ANY,
	    BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto fail;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    X509_set_pubkey(x, key) != 1)
		goto fail;
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"cancelproxy tests", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) != 1)
		goto fail;
	if (X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) :
	    name) != 1)
		goto fail;
	BN_free(bn);
	return x;
 fail:
	BN_free(bn);
	X509_free(x);
	return NULL;
}

static int
write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
	FILE	*f;
	int	 ok;

	if ((f = fopen(path, "w")) == NULL) {
		fprintf(stderr, "harness: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (key != NULL)
		fchmod(fileno(f), 0600);
	ok = cert ? PEM_write_X509(f, cert) : PEM_write_PrivateKey(f, key,
	    NULL, NULL, 0, NULL, NULL);
	if (fclose(f) == EOF || ok != 1) {
		cert_errors(path);
		return -1;
	}
	return 0;
}

static X509 *
read_cert(const char *path)
{
	FILE	*f;
	X509	*x;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static EVP_PKEY *
read_key(const char *path)
{
	FILE		*f;
	EVP_PKEY	*k;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

/* Signs a server certificate for name with the CA and writes it. */
static int
make_leaf(X509 *ca, EVP_PKEY *ca_key, const char *name, const char *cert_path,
    const char *key_path)
{
	EVP_PKEY	*key = NULL;
	X509		*x = NULL;
	unsigned char	 ip[16];
	const char	*san;
	int		 rc = -1;

	if (inet_pton(AF_INET, name, ip) == 1 ||
	    inet_pton(AF_INET6, name, ip) == 1)
		san = hstrf("IP:%s,IP:127.0.0.1,IP:::1", name);
	else
		san = hstrf("DNS:%s,IP:127.0.0.1,IP:::1", name);
	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
	    (x = make_cert(key, name, ca)) == NULL ||
	    add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") == -1 ||
	    add_ext(x, ca, NID_key_usage,
	    "critical,digitalSignature,keyEncipherment") == -1 ||
	    add_ext(x, ca, NID_ext_key_usage, "serverAuth,clientAuth") == -1 ||
	    add_ext(x, ca, NID_subject_key_identifier, "hash") == -1 ||
	    add_ext(x, ca, NID_authority_key_identifier, "keyid:always") ==
	    -1 || add_ext(x, ca, NID_subject_alt_name, san) == -1 ||
	    X509_sign(x, ca_key, EVP_sha256()) == 0) {
		cert_errors(hstrf("certificate for %s", name));
		goto out;
	}
	if (write_pem(cert_path, x, NULL) == -1 ||
	    write_pem(key_path, NULL, key) == -1)
		goto out;
	rc = 0;
 out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int
hcert_make(const char *dir, const char *name, struct hcert *out)
{
	EVP_PKEY	*ca_key = NULL;
	X509		*ca = NULL;
	int		 rc = -1;

	if (dir == NULL)
		dir = htmp_dir();
	memset(out, 0, sizeof(*out));
	snprintf(out->ca, sizeof(out->ca), "%s/%s-ca.pem", dir, name);
	snprintf(out->ca_key, sizeof(out->ca_key), "%s/%s-ca-key.pem", dir,
	    name);
	snprintf(out->cert, sizeof(out->cert), "%s/%s-cert.pem", dir, name);
	snprintf(out->key, sizeof(out->key), "%s/%s-key.pem", dir, name);

	if ((ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
	    (ca = make_cert(ca_key, hstrf("test CA for %s", name),
	    NULL)) == NULL ||
	    add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE") == -1 ||
	    add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign") ==
	    -1 || add_ext(ca, ca, NID_subject_key_identifier, "hash") == -1 ||
	    X509_sign(ca, ca_key, EVP_sha256()) == 0) {
		cert_errors("test CA");
		goto out;
	}
	if (write_pem(out->ca, ca, NULL) == -1 ||
	    write_pem(out->ca_key, NULL, ca_key) == -1 ||
	    make_leaf(ca, ca_key, name, out->cert, out->key) == -1)
		goto out;
	rc = 0;
 out:
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return rc;
}

int
hcert_make_leaf(const struct hcert *ca, const char *name, const char *file,
    struct hcert *out)
{
	X509		*cacert;
	EVP_PKEY	*cakey;
	const char	*slash;
	struct hcert	 o;
	int		 rc = -1;

	o = *ca;
	slash = strrchr(ca->ca, '/');
	snprintf(o.cert, sizeof(o.cert), "%.*s/%s-cert.pem",
	    slash ? (int)(slash - ca->ca) : 1, slash ? ca->ca : ".", file);
	snprintf(o.key, sizeof(o.key), "%.*s/%s-key.pem",
	    slash ? (int)(slash - ca->ca) : 1, slash ? ca->ca : ".", file);
	cacert = read_cert(ca->ca);
	cakey = read_key(ca->ca_key);
	if (cacert == NULL || cakey == NULL)
		cert_errors(hstrf("reading the CA %s", ca->ca));
	else if (make_leaf(cacert, cakey, name, o.cert, o.key) == 0) {
		*out = o;
		rc = 0;
	}
	X509_free(cacert);
	EVP_PKEY_free(cakey);
	return rc;
}
