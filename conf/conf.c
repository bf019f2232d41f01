/* conf: the config as the rest of the proxy sees it: load and validate the
 * file into an immutable struct conf (every key of DESIGN.md section 3),
 * count references to it, and look up upstreams by name. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include "conf/conf_priv.h"

#define CONF_MS_MAX		2147483647	/* any *_ms value */
#define CONF_WORKERS_MAX	64
#define CONF_LISTEN_MAX		256

/* One load: the JSON context, the config being built, and the upstreams
 * sorted by name so routes and keys can find them quickly. */
struct conf_load {
	struct conf_ctx		 ctx;
	struct conf		*c;
	struct conf_upstream	**byname;
};

/* A value to sort for duplicate checks: bytes and where they came from. */
struct conf_dup {
	const void	*p;
	size_t		 len;
	size_t		 idx;
};

static const char *const conf_top_keys[] = {
	"hop", "workers", "listen", "admin", "upstreams", "routes", "clients",
	"peers", "cancel_api", "cluster", "limits", "shutdown", "log", "user",
	NULL
};

/* Header names the proxy writes itself; configuring them would corrupt
 * the framing of the request. */
static const char *const conf_reserved_headers[] = {
	"host", "content-length", "transfer-encoding", "connection",
	"keep-alive", "upgrade", "te", "trailer", "proxy-connection", NULL
};

static void
conf_listen_clear(struct conf_listen *l)
{
	free(l->address);
	free(l->tls_cert);
	free(l->tls_key);
}

static void
conf_upstream_clear(struct conf_upstream *u)
{
	size_t	 i;

	free(u->name);
	free(u->url);
	free(u->host);
	free(u->host_header);
	free(u->base_path);
	free(u->tls_ca_file);
	free(u->tls_server_name);
	free(u->pool_key);
	for (i = 0; i < u->nset_headers; i++) {
		free(u->set_headers[i].name);
		free(u->set_headers[i].value);
	}
	free(u->set_headers);
}

static void
conf_route_clear(struct conf_route *r)
{
	size_t	 i;

	free(r->path_prefix);
	for (i = 0; i < r->nmodels; i++)
		free(r->models[i]);
	free(r->models);
	free(r->upstream_name);
	free(r->fallback);
}

static void
conf_client_key_clear(struct conf_client_key *k)
{
	size_t	 i;

	free(k->name);
	for (i = 0; i < k->nroutes; i++)
		free(k->routes[i]);
	free(k->routes);
}

/* Frees a config, also one that is only partly built: every array is
 * allocated zeroed with its count set, so a NULL field is never touched. */
static void
conf_free(struct conf *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	free(c->path);
	free(c->hop);
	for (i = 0; i < c->nlisten; i++)
		conf_listen_clear(&c->listen[i]);
	free(c->listen);
	conf_listen_clear(&c->admin);
	free(c->admin_token);
	for (i = 0; i < c->nupstreams; i++)
		conf_upstream_clear(&c->upstreams[i]);
	free(c->upstreams);
	for (i = 0; i < c->nroutes; i++)
		conf_route_clear(&c->routes[i]);
	free(c->routes);
	for (i = 0; i < c->nclient_keys; i++)
		conf_client_key_clear(&c->client_keys[i]);
	free(c->client_keys);
	free(c->peers_secret);
	free(c->user);
	free(c->cancel_api_prefix);
	free(c->cluster_redis_address);
	free(c->cluster_redis_password);
	free(c->cluster_redis_channel);
	free(c->log_path);
	free(c->log_level);
	for (i = 0; i < c->nsecrets; i++)
		free(c->secrets[i]);
	free(c->secrets);
	free(c);
}

/* Takes a reference (thread safe). */
struct conf *
conf_ref(struct conf *c)
{
	if (c != NULL)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

/* Drops a reference; the last one frees the config. */
void
conf_unref(struct conf *c)
{
	if (c == NULL)
		return;
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		conf_free(c);
}

/* The upstream called name, or NULL. */
struct conf_upstream *
conf_upstream_find(const struct conf *c, const char *name)
{
	size_t	 i;

	if (c == NULL || name == NULL)
		return NULL;
	for (i = 0; i < c->nupstreams; i++)
		if (strcmp(c->upstreams[i].name, name) == 0)
			return &c->upstreams[i];
	return NULL;
}

/* 0 if s is a hop, upstream or client name: 1 to 63 of [A-Za-z0-9._:-]. */
static int
conf_name_check(const char *s)
{
	size_t	 i;
	char	 ch;

	for (i = 0; s[i] != '\0'; i++) {
		ch = s[i];
		if (i == CONF_NAME_MAX)
			return -1;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		    ch == ':' || ch == '-'))
			return -1;
	}
	return i == 0 ? -1 : 0;
}

#define CONF_NAME_RULE	"must be 1 to 63 characters of A-Z a-z 0-9 . _ : -"

/* The item obj.key, or NULL with a "missing" error. */
static const cJSON *
conf_need(struct conf_ctx *ctx, const cJSON *obj, const char *key)
{
	const cJSON	*it;

	if ((it = cJSON_GetObjectItemCaseSensitive(obj, key)) == NULL) {
		conf_path_key(ctx, key);
		conf_err(ctx, "missing");
	}
	return it;
}

/*
 * The object parent.key with its key pushed on the path (pop to *mark when
 * done), or NULL: absent or null (*r = 0, nothing pushed) or wrong (*r =
 * -1). keys, if not NULL, lists the keys the object may have.
 */
static const cJSON *
conf_section(struct conf_ctx *ctx, const cJSON *parent, const char *key,
    const char *const *keys, size_t *mark, int *r)
{
	const cJSON	*obj;

	*r = 0;
	if ((obj = cJSON_GetObjectItemCaseSensitive(parent, key)) == NULL)
		return NULL;
	*mark = conf_path_key(ctx, key);
	if ((*r = conf_json_is_object(ctx, obj, 1)) <= 0) {
		if (*r == 0)
			conf_path_pop(ctx, *mark);
		return NULL;
	}
	if (keys != NULL && conf_json_keys(ctx, obj, keys) == -1) {
		*r = -1;
		return NULL;
	}
	return obj;
}

/* Fails unless path can be opened for reading (TLS files, CA bundles). */
static int
conf_check_readable(struct conf_ctx *ctx, const char *path)
{
	struct stat	 st;
	char		 q[96];
	int		 fd;

	conf_quote(q, sizeof(q), path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd == -1)
		return conf_err(ctx, "cannot read %s: %s", q, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return conf_err(ctx, "cannot read %s: is a directory", q);
	}
	close(fd);
	return 0;
}

/* Adds a secret for log redaction, and the ${NAME} values inside it. */
static int
conf_secret_add(struct conf_load *l, const cJSON *item, const char *value)
{
	struct conf	*c = l->c;
	char		**ns;
	size_t		 i, n = 1;

	if (value == NULL || *value == '\0')
		return 0;
	for (i = 0; i < l->ctx.nsubst; i++)
		if (l->ctx.subst[i].item == item)
			n++;
	ns = realloc(c->secrets, (c->nsecrets + n) * sizeof(*ns));
	if (ns == NULL)
		return conf_err(&l->ctx, "out of memory");
	c->secrets = ns;
	if ((ns[c->nsecrets] = strdup(value)) == NULL)
		return conf_err(&l->ctx, "out of memory");
	c->nsecrets++;
	for (i = 0; i < l->ctx.nsubst; i++) {
		if (l->ctx.subst[i].item != item)
			continue;
		if ((ns[c->nsecrets] = strdup(l->ctx.subst[i].value)) == NULL)
			return conf_err(&l->ctx, "out of memory");
		c->nsecrets++;
	}
	return 0;
}

static int
conf_secret_cmp(const void *a, const void *b)
{
	const char	*x = *(char *const *)a, *y = *(char *const *)b;
	size_t		 lx = strlen(x), ly = strlen(y);

	if (lx != ly)
		return lx > ly ? -1 : 1;	/* longest first */
	return strcmp(x, y);
}

/* Sorts the secrets longest first and drops repeats. */
static void
conf_secrets_finish(struct conf *c)
{
	size_t	 i, o = 0;

	if (c->nsecrets < 2)
		return;
	qsort(c->secrets, c->nsecrets, sizeof(*c->secrets), conf_secret_cmp);
	for (i = 0; i < c->nsecrets; i++) {
		if (o > 0 && strcmp(c->secrets[o - 1], c->secrets[i]) == 0)
			free(c->secrets[i]);
		else
			c->secrets[o++] = c->secrets[i];
	}
	c->nsecrets = o;
}

static int
conf_dup_cmp(const void *a, const void *b)
{
	const struct conf_dup	*x = a, *y = b;
	int			 r;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if ((r = memcmp(x->p, y->p, x->len)) != 0)
		return r;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorts d and returns the index of a value seen before (and that earlier
 * index in *first), or -1 if all n are different; -2 on no memory. */
static long
conf_dup_find(struct conf_dup *d, size_t n, size_t *first)
{
	size_t	 i;

	qsort(d, n, sizeof(*d), conf_dup_cmp);
	for (i = 1; i < n; i++)
		if (d[i].len == d[i - 1].len &&
		    memcmp(d[i].p, d[i - 1].p, d[i].len) == 0) {
			*first = d[i - 1].idx;
			return (long)d[i].idx;
		}
	return -1;
}

static int
conf_upstream_byname_cmp(const void *a, const void *b)
{
	const struct conf_upstream *x = *(struct conf_upstream *const *)a;
	const struct conf_upstream *y = *(struct conf_upstream *const *)b;

	return strcmp(x->name, y->name);
}

static int
conf_upstream_key_cmp(const void *key, const void *elem)
{
	const struct conf_upstream *u = *(struct conf_upstream *const *)elem;

	return strcmp(key, u->name);
}

/* The upstream called name (during the load), or NULL with an error. */
static struct conf_upstream *
conf_load_upstream_ref(struct conf_load *l, const char *name)
{
	struct conf_upstream	**u;
	char			 q[96];

	u = bsearch(name, l->byname, l->c->nupstreams, sizeof(*l->byname),
	    conf_upstream_key_cmp);
	if (u == NULL) {
		conf_quote(q, sizeof(q), name);
		conf_err(&l->ctx, "unknown upstream %s", q);
		return NULL;
	}
	return *u;
}

/* Reads obj.address into ls (required). */
static int
conf_load_address(struct conf_load *l, const cJSON *obj,
    struct conf_listen *ls)
{
	const char	*why;
	const cJSON	*it;
	size_t		 mark;

	if ((it = conf_need(&l->ctx, obj, "address")) == NULL)
		return -1;
	mark = conf_path_key(&l->ctx, "address");
	if (conf_json_str_item(&l->ctx, it, CONF_STR_NONEMPTY,
	    &ls->address) == -1)
		return -1;
	if (conf_address_parse(ls->address, &ls->addr, &ls->addrlen,
	    &why) == -1)
		return conf_err(&l->ctx, "%s", why);
	conf_path_pop(&l->ctx, mark);
	return 0;
}

static int
conf_same_addr(const struct conf_listen *a, const struct conf_listen *b)
{
	const struct sockaddr_in	*a4, *b4;
	const struct sockaddr_in6	*a6, *b6;

	if (a->addr.ss_family != b->addr.ss_family)
		return 0;
	if (a->addr.ss_family == AF_INET) {
		a4 = (const struct sockaddr_in *)&a->addr;
		b4 = (const struct sockaddr_in *)&b->addr;
		return a4->sin_port != 0 && a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	}
	a6 = (const struct sockaddr_in6 *)&a->addr;
	b6 = (const struct sockaddr_in6 *)&b->addr;
	return a6->sin6_port != 0 && a6->sin6_port == b6->sin6_port &&
	    a6->sin6_scope_id == b6->sin6_scope_id &&
	    memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
}

/* listen[].protocols: a non-empty array of "h2" and "http/1.1". */
static int
conf_load_protocols(struct conf_ctx *ctx, const cJSON *obj,
    struct conf_listen *ls)
{
	const cJSON	*arr, *it;
	size_t		 mark, mark2, i;
	uint8_t		 bit;

	ls->protocols = CONF_PROTO_H1 | CONF_PROTO_H2;
	if ((arr = cJSON_GetObjectItemCaseSensitive(obj, "protocols")) == NULL)
		return 0;
	mark = conf_path_key(ctx, "protocols");
	if (!cJSON_IsArray(arr))
		return conf_err(ctx, "must be an array, not %s",
		    conf_json_type(arr));
	if (cJSON_GetArraySize(arr) == 0)
		return conf_err(ctx, "must name at least one protocol");
	ls->protocols = 0;
	for (i = 0, it = arr->child; it != NULL; it = it->next, i++) {
		mark2 = conf_path_index(ctx, i);
		if (!cJSON_IsString(it))
			return conf_err(ctx, "must be a string, not %s",
			    conf_json_type(it));
		if (strcmp(it->valuestring, "h2") == 0)
			bit = CONF_PROTO_H2;
		else if (strcmp(it->valuestring, "http/1.1") == 0)
			bit = CONF_PROTO_H1;
		else
			return conf_err(ctx, "unknown protocol (\"h2\" or "
			    "\"http/1.1\")");
		if (ls->protocols & bit)
			return conf_err(ctx, "listed twice");
		ls->protocols |= bit;
		conf_path_pop(ctx, mark2);
	}
	conf_path_pop(ctx, mark);
	return 0;
}

static int
conf_load_listener(struct conf_load *l, const cJSON *obj,
    struct conf_listen *ls)
{
	static const char *const keys[] = { "address", "tls", "protocols",
		NULL };
	static const char *const tls_keys[] = { "cert", "key", NULL };
	struct conf_ctx	*ctx = &l->ctx;
	const cJSON	*tls, *it;
	size_t		 mark = 0, mark2;
	int		 r;

	if (conf_json_is_object(ctx, obj, 0) == -1 ||
	    conf_json_keys(ctx, obj, keys) == -1 ||
	    conf_load_address(l, obj, ls) == -1 ||
	    conf_load_protocols(ctx, obj, ls) == -1)
		return -1;
	if ((tls = conf_section(ctx, obj, "tls", tls_keys, &mark, &r)) == NULL)
		return r;
	if ((it = conf_need(ctx, tls, "cert")) == NULL)
		return -1;
	mark2 = conf_path_key(ctx, "cert");
	if (conf_json_str_item(ctx, it, CONF_STR_NONEMPTY, &ls->tls_cert) == -1 ||
	    conf_check_readable(ctx, ls->tls_cert) == -1)
		return -1;
	conf_path_pop(ctx, mark2);
	if ((it = conf_need(ctx, tls, "key")) == NULL)
		return -1;
	mark2 = conf_path_key(ctx, "key");
	if (conf_json_str_item(ctx, it, CONF_STR_NONEMPTY, &ls->tls_key) == -1 ||
	    conf_check_readable(ctx, ls->tls_key) == -1)
		return -1;
	conf_path_pop(ctx, mark);
	return 0;
}

static int
conf_load_listen(struct conf_load *l, const cJSON *root)
{
	struct conf_ctx	*ctx = &l->ctx;
	struct conf	*c = l->c;
	const cJSON	*arr, *it;
	size_t		 mark, mark2, i, j, n;

	if ((arr = conf_need(ctx, root, "listen")) == NULL)
		return -1;
	mark = conf_path_key(ctx, "listen");
	if (!cJSON_IsArray(arr))
		return conf_err(ctx, "must be an array, not %s",
		    conf_json_type(arr));
	if ((n = (size_t)cJSON_GetArraySize(arr)) == 0)
		return conf_err(ctx, "must have at least one listener");
	if (n > CONF_LISTEN_MAX)
		return conf_err(ctx, "more than %d listeners", CONF_LISTEN_MAX);
	if ((c->listen = calloc(n, sizeof(*c->listen))) == NULL)
		return conf_err(ctx, "out of memory");
	c->nlisten = n;
	for (i = 0, it = arr->child; it != NULL; it = it->next, i++) {
		mark2 = conf_path_index(ctx, i);
		if (conf_load_listener(l, it, &c->listen[i]) == -1)
			return -1;
		for (j = 0; j < i; j++)
			if (conf_same_addr(&c->listen[j], &c->listen[i])) {
				conf_path_key(ctx, "address");
				return conf_err(ctx, "same address as "
				    "listen[%zu]", j);
			}
		conf_path_pop(ctx, mark2);
	}
	conf_path_pop(ctx, mark);
	return 0;
}

static int
conf_load_admin(struct conf_load *l, const cJSON *root)
{
	static const char *const keys[] = { "address", "token", NULL };
	struct conf_ctx	*ctx = &l->ctx;
	struct conf	*c = l->c;
	const cJSON	*obj;
	size_t		 mark = 0, i;
	int		 r;

	if ((obj = conf_section(ctx, root, "admin", keys, &mark,
	    &r)) == NULL)
		return r;
	if (conf_load_address(l, obj, &c->admin) == -1 ||
	    conf_json_str(ctx, obj, "token", CONF_STR_NULL | CONF_STR_NONEMPTY,
	    &c->admin_token) == -1 ||
	    conf_secret_add(l, cJSON_GetObjectItemCaseSensitive(obj, "token"),
	    c->admin_token) == -1)
		return -1;
	for (i = 0; i < c->nlisten; i++)
		if (conf_same_addr(&c->listen[i], &c->admin)) {
			conf_path_key(ctx, "address");
			return conf_err(ctx, "same address as listen[%zu]", i);
		}
	c->admin_enabled = 1;
	conf_path_pop(ctx, mark);
	return 0;
}

/* 0 if s is an HTTP field name (RFC 9110 token). */
static int
conf_token_check(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (*p == '\0')
		return -1;
	for (; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') ||
		    (*p < 0x7f && strchr("!#$%&'*+-.^_`|~", *p) != NULL)))
			return -1;
	return 0;
}

static int
conf_load_set_headers(struct conf_load *l, const cJSON *obj,
    struct conf_upstream *u)
{
	struct conf_ctx		*ctx = &l->ctx;
	struct conf_header	*h;
	const cJSON		*it;
	const unsigned char	*v;
	size_t			 n = 0, i, j, mark;

	if (conf_json_unique(ctx, obj, 1) == -1)
		return -1;
	for (it = obj->child; it != NULL; it = it->next)
		n++;
	if (n == 0)
		return 0;
	if ((u->set_headers = calloc(n, sizeof(*u->set_headers))) == NULL)
		return conf_err(ctx, "out of memory");
	u->nset_headers = n;
	for (i = 0, it = obj->child; it != NULL; it = it->next, i++) {
		h = &u->set_headers[i];
		mark = conf_path_key(ctx, it->string);
		if (conf_token_check(it->string) == -1)
			return conf_err(ctx, "not a valid header name");
		for (j = 0; conf_reserved_headers[j] != NULL; j++)
			if (strcasecmp(it->string, conf_reserved_headers[j]) == 0)
				return conf_err(ctx, "is set by the proxy and "
				    "cannot be configured");
		if ((h->name = strdup(it->string)) == NULL)
			return conf_err(ctx, "out of memory");
		if (conf_json_str_item(ctx, it, 0, &h->value) == -1)
			return -1;
		for (v = (const unsigned char *)h->value; *v != '\0'; v++)
			if ((*v < 0x20 && *v != '\t') || *v == 0x7f)
				return conf_err(ctx, "must not contain CR, LF "
				    "or other control characters");
		if (conf_secret_add(l, it, h->value) == -1)
			return -1;
		conf_path_pop(ctx, mark);
	}
	return 0;
}

static int
conf_load_upstream_tls(struct conf_load *l, const cJSON *obj,
    struct conf_upstream *u)
{
	static const char *const keys[] = {
		"verify", "ca_file", "server_name", NULL
	};
	struct conf_ctx	*ctx = &l->ctx;
	size_t		 mark;

	if (conf_json_keys(ctx, obj, keys) == -1 ||
	    conf_json_bool(ctx, obj, "verify", &u->tls_verify) == -1 ||
	    conf_json_str(ctx, obj, "ca_file", CONF_STR_NULL | CONF_STR_NONEMPTY,
	    &u->tls_ca_file) == -1 ||
	    conf_json_str(ctx, obj, "server_name",
	    CONF_STR_NULL | CONF_STR_NONEMPTY, &u->tls_server_name) == -1)
		return -1;
	if (u->tls_ca_file != NULL) {
		mark = conf_path_key(ctx, "ca_file");
		if (conf_check_readable(ctx, u->tls_ca_file) == -1)
			return -1;
		conf_path_pop(ctx, mark);
	}
	if (u->tls_server_name != NULL && conf_hostname_check(
	    u->tls_server_name, strlen(u->tls_server_name)) == -1) {
		conf_path_key(ctx, "server_name");
		return conf_err(ctx, "not a valid host name");
	}
	return 0;
}

static int
conf_load_timeouts(struct conf_load *l, const cJSON *obj,
    struct conf_timeouts *t)
{
	static const char *const keys[] = {
		"connect", "first_byte", "idle", "total", NULL
	};
	struct conf_ctx	*ctx = &l->ctx;

	if (conf_json_keys(ctx, obj, keys) == -1 ||
	    conf_json_int(ctx, obj, "connect", 0, CONF_MS_MAX,
	    &t->connect_ms) == -1 ||
	    conf_json_int(ctx, obj, "first_byte", 0, CONF_MS_MAX,
	    &t->first_byte_ms) == -1 ||
	    conf_json_int(ctx, obj, "idle", 0, CONF_MS_MAX, &t->idle_ms) == -1 ||
	    conf_json_int(ctx, obj, "total", 0, CONF_MS_MAX, &t->total_ms) == -1)
		return -1;
	return 0;
}

/* One member of "upstreams"; the path is already upstreams.NAME. */
/* The pool key: connections made for one upstream serve another (or the
 * same one after a reload) only when scheme, address and TLS settings all
 * match. Computed once here, not per request. */
static int
conf_upstream_pool_key(struct conf_ctx *ctx, struct conf_upstream *u)
{
	const unsigned char *p;
	const char	*sni = u->tls_server_name ? u->tls_server_name : "";
	const char	*ca = u->tls_ca_file ? u->tls_ca_file : "";
	uint64_t	 h = 14695981039346656037ULL;
	int		 n;

	n = snprintf(NULL, 0, "%s://%s:%u|%s|%s|%d", u->tls ? "https" : "http",
	    u->host, u->port, sni, ca, u->tls_verify);
	if (n < 0 || (u->pool_key = malloc((size_t)n + 1)) == NULL)
		return conf_err(ctx, "out of memory");
	snprintf(u->pool_key, (size_t)n + 1, "%s://%s:%u|%s|%s|%d",
	    u->tls ? "https" : "http", u->host, u->port, sni, ca,
	    u->tls_verify);
	for (p = (const unsigned char *)u->pool_key; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ULL;
	u->pool_hash = h;
	return 0;
}

static int
conf_load_upstream(struct conf_load *l, const cJSON *obj,
    struct conf_upstream *u)
{
	static const char *const keys[] = {
		"url", "tls", "set_headers", "peer", "timeouts_ms",
		"keepalive", "billing_stops_on_cancel", NULL
	};
	struct conf_ctx	*ctx = &l->ctx;
	const cJSON	*it;
	const char	*why;
	int64_t		 keepalive = 32;
	size_t		 mark;
	int		 r;

	u->tls_verify = 1;
	u->timeouts.connect_ms = 5000;
	u->timeouts.first_byte_ms = 120000;
	u->timeouts.idle_ms = 60000;
	u->timeouts.total_ms = 0;
	if (conf_name_check(obj->string) == -1)
		return conf_err(ctx, "bad upstream name: " CONF_NAME_RULE);
	if ((u->name = strdup(obj->string)) == NULL)
		return conf_err(ctx, "out of memory");
	if (conf_json_is_object(ctx, obj, 0) == -1 ||
	    conf_json_keys(ctx, obj, keys) == -1)
		return -1;

	if ((it = conf_need(ctx, obj, "url")) == NULL)
		return -1;
	mark = conf_path_key(ctx, "url");
	if (conf_json_str_item(ctx, it, CONF_STR_NONEMPTY, &u->url) == -1)
		return -1;
	if (conf_url_parse(u, u->url, &why) == -1)
		return conf_err(ctx, "%s", why);
	conf_path_pop(ctx, mark);

	if ((it = conf_section(ctx, obj, "tls", NULL, &mark, &r)) != NULL) {
		if (conf_load_upstream_tls(l, it, u) == -1)
			return -1;
		conf_path_pop(ctx, mark);
	} else if (r == -1)
		return -1;
	if ((it = conf_section(ctx, obj, "set_headers", NULL, &mark,
	    &r)) != NULL) {
		if (conf_load_set_headers(l, it, u) == -1)
			return -1;
		conf_path_pop(ctx, mark);
	} else if (r == -1)
		return -1;
	if (conf_json_bool(ctx, obj, "peer", &u->peer) == -1)
		return -1;
	if ((it = conf_section(ctx, obj, "timeouts_ms", NULL, &mark,
	    &r)) != NULL) {
		if (conf_load_timeouts(l, it, &u->timeouts) == -1)
			return -1;
		conf_path_pop(ctx, mark);
	} else if (r == -1)
		return -1;
	if (conf_json_int(ctx, obj, "keepalive", 0, 10000, &keepalive) == -1)
		return -1;
	u->keepalive = (int)keepalive;
	u->billing_stops_on_cancel = -1;
	if ((it = cJSON_GetObjectItemCaseSensitive(obj,
	    "billing_stops_on_cancel")) != NULL && !cJSON_IsNull(it)) {
		mark = conf_path_key(ctx, "billing_stops_on_cancel");
		if (cJSON_IsBool(it))
			u->billing_stops_on_cancel = cJSON_IsTrue(it);
		else if (!cJSON_IsString(it) ||
		    strcmp(it->valuestring, "unknown") != 0)
			return conf_err(ctx, "must be true, false or "
			    "\"unknown\"");
		conf_path_pop(ctx, mark);
	}
	return conf_upstream_pool_key(ctx, u);
}

static int
conf_load_upstreams(struct conf_load *l, const cJSON *root)
{
	struct conf_ctx	*ctx = &l->ctx;
	struct conf	*c = l->c;
	const cJSON	*obj, *it;
	size_t		 mark, mark2, i, n = 0;

	if ((obj = conf_need(ctx, root, "upstreams")) == NULL)
		return -1;
	mark = conf_path_key(ctx, "upstreams");
	if (conf_json_is_object(ctx, obj, 0) == -1)
		return -1;
	for (it = obj->child; it != NULL; it = it->next)
		n++;
	if (n == 0)
		return conf_err(ctx, "must have at least one upstream");
	if (conf_json_unique(ctx, obj, 0) == -1)
		return -1;
	if ((c->upstreams = calloc(n, sizeof(*c->upstreams))) == NULL)
		return conf_err(ctx, "out of memory");
	c->nupstreams = n;
	for (i = 0, it = obj->child; it != NULL; it = it->next, i++) {
		mark2 = conf_path_key(ctx, it->string);
		if (conf_load_upstream(l, it, &c->upstreams[i]) == -1)
			return -1;
		conf_path_pop(ctx, mark2);
	}
	if ((l->byname = calloc(n, sizeof(*l->byname))) == NULL)
		return conf_err(ctx, "out of memory");
	for (i = 0; i < n; i++)
		l->byname[i] = &c->upstreams[i];
	qsort(l->byname, n, sizeof(*l->byname), conf_upstream_byname_cmp);
	conf_path_pop(ctx, mark);
	return 0;
}

/* 0 if s is fit to compare with a request path: no blanks or controls. */
static int
conf_path_text_check(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return -1;
	return 0;
}

/* Reads obj.key, an optional array of strings, into a new vector. */
static int
conf_load_strings(struct conf_load *l, const cJSON *obj, const char *key,
    char ***out, size_t *nout)
{
	struct conf_ctx	*ctx = &l->ctx;
	const cJSON	*arr, *it;
	size_t		 mark, mark2, i, n;

	if ((arr = cJSON_GetObjectItemCaseSensitive(obj, key)) == NULL)
		return 0;
	mark = conf_path_key(ctx, key);
	if (!cJSON_IsArray(arr))
		return conf_err(ctx, "must be an array, not %s",
		    conf_json_type(arr));
	if ((n = (size_t)cJSON_GetArraySize(arr)) == 0)
		return conf_err(ctx, "must not be empty (leave it out instead)");
	if ((*out = calloc(n, sizeof(**out))) == NULL)
		return conf_err(ctx, "out of memory");
	*nout = n;
	for (i = 0, it = arr->child; it != NULL; it = it->next, i++) {
		mark2 = conf_path_index(ctx, i);
		if (conf_json_str_item(ctx, it, CONF_STR_NONEMPTY,
		    &(*out)[i]) == -1)
			return -1;
		conf_path_pop(ctx, mark2);
	}
	conf_path_pop(ctx, mark);
	return 0;
}

static int
conf_load_route(struct conf_load *l, const cJSON *obj, struct conf_route *r)
{
	static const char *const keys[] = {
		"path_prefix", "models", "upstream", "fallback",
		"on_client_disconnect", "drain", "stream_usage", NULL
	};
	static const char *const drain_keys[] = { "max_ms", "max_bytes", NULL };
	struct conf_ctx	*ctx = &l->ctx;
	const cJSON	*it, *fb;
	char		*s = NULL;
	size_t		 mark, mark2, i, n;
	int		 rr;

	if ((r->path_prefix = strdup("/")) == NULL)
		return conf_err(ctx, "out of memory");
	if (conf_json_is_object(ctx, obj, 0) == -1 ||
	    conf_json_keys(ctx, obj, keys) == -1)
		return -1;

	if (conf_json_str(ctx, obj, "path_prefix", CONF_STR_NONEMPTY,
	    &r->path_prefix) == -1)
		return -1;
	if (r->path_prefix[0] != '/') {
		conf_path_key(ctx, "path_prefix");
		return conf_err(ctx, "must start with '/'");
	}
	if (conf_path_text_check(r->path_prefix) == -1) {
		conf_path_key(ctx, "path_prefix");
		return conf_err(ctx, "must not contain spaces or control "
		    "characters");
	}

	if (conf_load_strings(l, obj, "models", &r->models, &r->nmodels) == -1)
		return -1;

	if ((it = conf_need(ctx, obj, "upstream")) == NULL)
		return -1;
	mark = conf_path_key(ctx, "upstream");
	if (conf_json_str_item(ctx, it, CONF_STR_NONEMPTY,
	    &r->upstream_name) == -1 ||
	    (r->upstream = conf_load_upstream_ref(l, r->upstream_name)) == NULL)
		return -1;
	conf_path_pop(ctx, mark);

	if ((fb = cJSON_GetObjectItemCaseSensitive(obj, "fallback")) != NULL) {
		mark = conf_path_key(ctx, "fallback");
		if (!cJSON_IsArray(fb))
			return conf_err(ctx, "must be an array, not %s",
			    conf_json_type(fb));
		n = (size_t)cJSON_GetArraySize(fb);
		if (n > 0 && (r->fallback = calloc(n, sizeof(*r->fallback))) ==
		    NULL)
			return conf_err(ctx, "out of memory");
		for (i = 0, it = fb->child; it != NULL; it = it->next, i++) {
			mark2 = conf_path_index(ctx, i);
			if (!cJSON_IsString(it))
				return conf_err(ctx, "must be a string, not %s",
				    conf_json_type(it));
			if ((r->fallback[i] = conf_load_upstream_ref(l,
			    it->valuestring)) == NULL)
				return -1;
			r->nfallback++;
			conf_path_pop(ctx, mark2);
		}
		conf_path_pop(ctx, mark);
	}

	if (conf_json_str(ctx, obj, "on_client_disconnect", 0, &s) == -1)
		goto fail;
	if (s != NULL) {
		if (strcmp(s, "cancel") == 0)
			r->on_client_disconnect = CONF_DISCONNECT_CANCEL;
		else if (strcmp(s, "drain") == 0)
			r->on_client_disconnect = CONF_DISCONNECT_DRAIN;
		else {
			conf_path_key(ctx, "on_client_disconnect");
			conf_err(ctx, "must be \"cancel\" or \"drain\"");
			goto fail;
		}
		free(s);
		s = NULL;
	}
	r->drain_max_ms = 30000;
	r->drain_max_bytes = 1048576;
	if ((it = conf_section(ctx, obj, "drain", drain_keys, &mark,
	    &rr)) != NULL) {
		if (conf_json_int(ctx, it, "max_ms", 0, 600000,
		    &r->drain_max_ms) == -1 ||
		    conf_json_int(ctx, it, "max_bytes", 0, 1073741824,
		    &r->drain_max_bytes) == -1)
			goto fail;
		conf_path_pop(ctx, mark);
	} else if (rr == -1)
		goto fail;
	if (conf_json_str(ctx, obj, "stream_usage", 0, &s) == -1)
		goto fail;
	if (s != NULL) {
		if (strcmp(s, "pass") == 0)
			r->stream_usage = CONF_STREAM_USAGE_PASS;
		else if (strcmp(s, "inject") == 0)
			r->stream_usage = CONF_STREAM_USAGE_INJECT;
		else {
			conf_path_key(ctx, "stream_usage");
			conf_err(ctx, "must be \"pass\" or \"inject\"");
			goto fail;
		}
		free(s);
	}
	return 0;
fail:
	free(s);
	return -1;
}

static int
conf_load_routes(struct conf_load *l, const cJSON *root)
{
	struct conf_ctx	*ctx = &l->ctx;
	struct conf	*c = l->c;
	const cJSON	*arr, *it;
	size_t		 mark, mark2, i, n;

	if ((arr = conf_need(ctx, root, "routes")) == NULL)
		return -1;
	mark = conf_path_key(ctx, "routes");
	if (!cJSON_IsArray(arr))
		return conf_err(ctx, "must be an array, not %s",
		    conf_json_type(arr));
	if ((n = (size_t)cJSON_GetArraySize(arr)) == 0)
		return conf_err(ctx, "must have at least one route");
	if ((c->routes = calloc(n, sizeof(*c->routes))) == NULL)
		return conf_err(ctx, "out of memory");
	c->nroutes = n;
	for (i = 0, it = arr->child; it != NULL; it = it->next, i++) {
		mark2 = conf_path_index(ctx, i);
		if (conf_load_route(l, it, &c->routes[i]) == -1)
			return -1;
		conf_path_pop(ctx, mark2);
	}
	conf_path_pop(ctx, mark);
	return 0;
}

static int
conf_hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int
conf_load_client_key(struct conf_load *l, const cJSON *obj,
    struct conf_client_key *k)
{
	static const char *const keys[] = {
		"name", "key_sha256", "routes", "max_streams", NULL
	};
	struct conf_ctx	*ctx = &l->ctx;
	const cJSON	*it;
	const char	*hex;
	int64_t		 max_streams = 0;
	size_t		 mark, i;
	int		 hi, lo;

	if (conf_json_is_object(ctx, obj, 0) == -1 ||
	    conf_json_keys(ctx, obj, keys) == -1)
		return -1;

	if ((it = conf_need(ctx, obj, "name")) == NULL)
		return -1;
	mark = conf_path_key(ctx, "name");
	if (conf_json_str_item(ctx, it, 0, &k->name) == -1)
		return -1;
	if (conf_name_check(k->name) == -1)
		return conf_err(ctx, CONF_NAME_RULE);
	conf_path_pop(ctx, mark);

	if ((it = conf_need(ctx, obj, "key_sha256")) == NULL)
		return -1;
	mark = conf_path_key(ctx, "key_sha256");
	if (!cJSON_IsString(it))
		return conf_err(ctx, "must be a string, not %s",
		    conf_json_type(it));
	hex = it->valuestring;
	if (strlen(hex) != 64)
		return conf_err(ctx, "must be 64 hex digits (the SHA-256 of "
		    "the key)");
	for (i = 0; i < 32; i++) {
		if ((hi = conf_hex_digit(hex[2 * i])) == -1 ||
		    (lo = conf_hex_digit(hex[2 * i + 1])) == -1)
			return conf_err(ctx, "must be 64 hex digits (the "
			    "SHA-256 of the key)");
		k->key_sha256[i] = (uint8_t)(hi << 4 | lo);
	}
	conf_path_pop(ctx, mark);

	if (conf_load_strings(l, obj, "routes", &k->routes, &k->nroutes) == -1)
		return -1;
	if (k->routes == NULL) {
		if ((k->routes = calloc(1, sizeof(*k->routes))) == NULL ||
		    (k->routes[0] = strdup("*")) == NULL)
			return conf_err(ctx, "out of memory");
		k->nroutes = 1;
	}
	for (i = 0; i < k->nroutes; i++) {
		if (strcmp(k->routes[i], "*") == 0)
			continue;
		mark = conf_path_key(ctx, "routes");
		conf_path_index(ctx, i);
		if (conf_load_upstream_ref(l, k->routes[i]) == NULL)
			return -1;
		conf_path_pop(ctx, mark);
	}

	if (conf_json_int(ctx, obj, "max_streams", 0, 1000000,
	    &max_streams) == -1)
		return -1;
	k->max_streams = (int)max_streams;
	return 0;
}

/* Fails if two client keys share a name or a key. */
static int
conf_client_keys_unique(struct conf_load *l)
{
	struct conf_ctx		*ctx = &l->ctx;
	struct conf		*c = l->c;
	struct conf_dup		*d;
	size_t			 i, first, n = c->nclient_keys;
	long			 dup;
	char			 q[96];

	if (n < 2)
		return 0;
	if ((d = calloc(n, sizeof(*d))) == NULL)
		return conf_err(ctx, "out of memory");
	for (i = 0; i < n; i++) {
		d[i].p = c->client_keys[i].name;
		d[i].len = strlen(c->client_keys[i].name);
		d[i].idx = i;
	}
	if ((dup = conf_dup_find(d, n, &first)) >= 0) {
		conf_path_index(ctx, (size_t)dup);
		conf_path_key(ctx, "name");
		conf_quote(q, sizeof(q), c->client_keys[dup].name);
		free(d);
		return conf_err(ctx, "duplicate name %s (also keys[%zu])", q,
		    first);
	}
	for (i = 0; i < n; i++) {
		d[i].p = c->client_keys[i].key_sha256;
		d[i].len = sizeof(c->client_keys[i].key_sha256);
		d[i].idx = i;
	}
	if ((dup = conf_dup_find(d, n, &first)) >= 0) {
		conf_path_index(ctx, (size_t)dup);
		conf_path_key(ctx, "key_sha256");
		free(d);
		return conf_err(ctx, "same key as keys[%zu]", first);
	}
	free(d);
	return 0;
}

static int
conf_load_clients(struct conf_load *l, const cJSON *root)
{
	static const char *const keys[] = { "keys", NULL };
	struct conf_ctx	*ctx = &l->ctx;
	struct conf	*c = l->c;
	const cJSON	*obj, *arr, *it;
	size_t		 mark = 0, mark2, mark3, i, n;
	int		 r;

	if ((obj = conf_section(ctx, root, "clients", keys, &mark,
	    &r)) == NULL)
		return r;
	if ((arr = conf_need(ctx, obj, "keys")) == NULL)
		return -1;
	mark2 = conf_path_key(ctx, "keys");
	if (!cJSON_IsArray(arr))
		return conf_err(ctx, "must be an array, not %s",
		    conf_json_type(arr));
	if ((n = (size_t)cJSON_GetArraySize(arr)) == 0)
		return conf_err(ctx, "must have at least one key (leave "
		    "clients out to let any client pass)");
	if ((c->client_keys = calloc(n, sizeof(*c->client_keys))) == NULL)
		return conf_err(ctx, "out of memory");
	c->nclient_keys = n;
	for (i = 0, it = arr->child; it != NULL; it = it->next, i++) {
		mark3 = conf_path_index(ctx, i);
		if (conf_load_client_key(l, it, &c->client_keys[i]) == -1)
			return -1;
		conf_path_pop(ctx, mark3);
	}
	if (conf_client_keys_unique(l) == -1)
		return -1;
	conf_path_pop(ctx, mark2);
	c->clients_enabled = 1;
	conf_path_pop(ctx, mark);
	return 0;
}

static int
conf_load_peers(struct conf_load *l, const cJSON *root)
{
	static const char *const keys[] = { "secret", "note_wait_ms", NULL };
	struct conf_ctx	*ctx = &l->ctx;
	struct conf	*c = l->c;
	const cJSON	*obj;
	size_t		 mark = 0;
	int		 r;

	if ((obj = conf_section(ctx, root, "peers", keys, &mark,
	    &r)) == NULL)
		return r;
	if (conf_json_str(ctx, obj, "secret", CONF_STR_NULL | CONF_STR_NONEMPTY,
	    &c->peers_secret) == -1 ||
	    conf_secret_add(l, cJSON_GetObjectItemCaseSensitive(obj, "secret"),
	    c->peers_secret) == -1 ||
	    conf_json_int(ctx, obj, "note_wait_ms", 0, 60000,
	    &c->peers_note_wait_ms) == -1)
		return -1;
	conf_path_pop(ctx, mark);
	return 0;
}

static int
conf_load_cancel_api(struct conf_load *l, const cJSON *root)
{
	static const char *const keys[] = { "path_prefix", NULL };
	struct conf_ctx	*ctx = &l->ctx;
	struct conf	*c = l->c;
	const cJSON	*obj;
	const char	*p;
	size_t		 mark = 0, len;
	int		 r;

	if ((obj = conf_section(ctx, root, "cancel_api", keys, &mark,
	    &r)) == NULL)
		return r;
	if (conf_json_str(ctx, obj, "path_prefix", CONF_STR_NONEMPTY,
	    &c->cancel_api_prefix) == -1)
		return -1;
	p = c->cancel_api_prefix;
	len = strlen(p);
	if (p[0] != '/' || p[len - 1] != '/') {
		conf_path_key(ctx, "path_prefix");
		return conf_err(ctx, "must start and end with '/'");
	}
	if (conf_path_text_check(p) == -1) {
		conf_path_key(ctx, "path_prefix");
		return conf_err(ctx, "must not contain spaces or control "
		    "characters");
	}
	conf_path_pop(ctx, mark);
	return 0;
}

static int
conf_load_cluster(struct conf_load *l, const cJSON *root)
{
	static const char *const keys[] = { "redis", NULL };
	static const char *const redis_keys[] = {
		"address", "password", "channel", NULL
	};
	struct conf_ctx	*ctx = &l->ctx;
	struct conf	*c = l->c;
	const cJSON	*obj, *redis, *it;
	const char	*why;
	size_t		 mark = 0, mark2, mark3;
	int		 r;

	if ((obj = conf_section(ctx, root, "cluster", keys, &mark,
	    &r)) == NULL)
		return r;
	if ((redis = conf_need(ctx, obj, "redis")) == NULL)
		return -1;
	mark2 = conf_path_key(ctx, "redis");
	if (conf_json_is_object(ctx, redis, 0) == -1 ||
	    conf_json_keys(ctx, redis, redis_keys) == -1)
		return -1;
	if ((it = conf_need(ctx, redis, "address")) == NULL)
		return -1;
	mark3 = conf_path_key(ctx, "address");
	if (conf_json_str_item(ctx, it, CONF_STR_NONEMPTY,
	    &c->cluster_redis_address) == -1)
		return -1;
	if (conf_hostport_check(c->cluster_redis_address, &why) == -1)
		return conf_err(ctx, "%s", why);
	conf_path_pop(ctx, mark3);
	if (conf_json_str(ctx, redis, "password",
	    CONF_STR_NULL | CONF_STR_NONEMPTY, &c->cluster_redis_password) == -1 ||
	    conf_secret_add(l, cJSON_GetObjectItemCaseSensitive(redis,
	    "password"), c->cluster_redis_password) == -1 ||
	    conf_json_str(ctx, redis, "channel", CONF_STR_NONEMPTY,
	    &c->cluster_redis_channel) == -1)
		return -1;
	c->cluster_enabled = 1;
	conf_path_pop(ctx, mark2);
	conf_path_pop(ctx, mark);
	return 0;
}

static int
conf_load_limits(struct conf_load *l, const cJSON *root)
{
	static const char *const keys[] = {
		"max_connections", "max_header_bytes", "max_body_bytes",
		"header_timeout_ms", "http2", NULL
	};
	static const char *const h2keys[] = {
		"max_concurrent_streams", "max_header_fields",
		"max_control_frames_per_second", "reset_burst",
		"reset_rate_per_second", "send_timeout_ms",
		"max_connection_body_bytes", NULL
	};
	struct conf_ctx		*ctx = &l->ctx;
	struct conf_limits	*lim = &l->c->limits;
	struct conf_http2	*h2 = &lim->http2;
	const cJSON		*obj, *o2;
	size_t			 mark = 0, mark2 = 0;
	int			 r;

	if ((obj = conf_section(ctx, root, "limits", keys, &mark,
	    &r)) == NULL)
		return r;
	if (conf_json_int(ctx, obj, "max_connections", 1, 1000000,
	    &lim->max_connections) == -1 ||
	    conf_json_int(ctx, obj, "max_header_bytes", 1, 16777216,
	    &lim->max_header_bytes) == -1 ||
	    conf_json_int(ctx, obj, "max_body_bytes", 0, 1099511627776LL,
	    &lim->max_body_bytes) == -1 ||
	    conf_json_int(ctx, obj, "header_timeout_ms", 1, CONF_MS_MAX,
	    &lim->header_timeout_ms) == -1)
		return -1;
	if ((o2 = conf_section(ctx, obj, "http2", h2keys, &mark2, &r)) ==
	    NULL) {
		if (r == -1)
			return -1;
	} else {
		if (conf_json_int(ctx, o2, "max_concurrent_streams", 1, 10000,
		    &h2->max_concurrent_streams) == -1 ||
		    conf_json_int(ctx, o2, "max_header_fields", 1, 10000,
		    &h2->max_header_fields) == -1 ||
		    conf_json_int(ctx, o2, "max_control_frames_per_second", 1,
		    1000000, &h2->max_control_frames) == -1 ||
		    conf_json_int(ctx, o2, "reset_burst", 1, 1000000,
		    &h2->reset_burst) == -1 ||
		    conf_json_int(ctx, o2, "reset_rate_per_second", 1, 1000000,
		    &h2->reset_rate) == -1 ||
		    conf_json_int(ctx, o2, "send_timeout_ms", 1, CONF_MS_MAX,
		    &h2->send_timeout_ms) == -1 ||
		    conf_json_int(ctx, o2, "max_connection_body_bytes", 0,
		    1099511627776LL, &h2->max_connection_body_bytes) == -1)
			return -1;
		conf_path_pop(ctx, mark2);
	}
	conf_path_pop(ctx, mark);
	return 0;
}

static int
conf_load_shutdown(struct conf_load *l, const cJSON *root)
{
	static const char *const keys[] = { "drain_ms", NULL };
	struct conf_ctx	*ctx = &l->ctx;
	const cJSON	*obj;
	size_t		 mark = 0;
	int		 r;

	if ((obj = conf_section(ctx, root, "shutdown", keys, &mark,
	    &r)) == NULL)
		return r;
	if (conf_json_int(ctx, obj, "drain_ms", 0, CONF_MS_MAX,
	    &l->c->shutdown_drain_ms) == -1)
		return -1;
	conf_path_pop(ctx, mark);
	return 0;
}

static int
conf_load_log(struct conf_load *l, const cJSON *root)
{
	static const char *const keys[] = { "path", "level", NULL };
	static const char *const levels[] = {
		"debug", "info", "warn", "error", NULL
	};
	struct conf_ctx	*ctx = &l->ctx;
	struct conf	*c = l->c;
	const cJSON	*obj;
	size_t		 mark = 0, i;
	int		 r;

	if ((obj = conf_section(ctx, root, "log", keys, &mark,
	    &r)) == NULL)
		return r;
	if (conf_json_str(ctx, obj, "path", CONF_STR_NONEMPTY,
	    &c->log_path) == -1 ||
	    conf_json_str(ctx, obj, "level", 0, &c->log_level) == -1)
		return -1;
	for (i = 0; levels[i] != NULL; i++)
		if (strcmp(c->log_level, levels[i]) == 0)
			break;
	if (levels[i] == NULL) {
		conf_path_key(ctx, "level");
		return conf_err(ctx, "must be \"debug\", \"info\", \"warn\" or "
		    "\"error\"");
	}
	conf_path_pop(ctx, mark);
	return 0;
}

static int
conf_load_hop(struct conf_load *l, const cJSON *root)
{
	struct conf_ctx	*ctx = &l->ctx;
	struct conf	*c = l->c;
	char		 host[256], *dot;

	if (conf_json_str(ctx, root, "user", CONF_STR_NONEMPTY, &c->user) == -1)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(root, "hop") != NULL) {
		if (conf_json_str(ctx, root, "hop", 0, &c->hop) == -1)
			return -1;
		if (conf_name_check(c->hop) == -1) {
			conf_path_key(ctx, "hop");
			return conf_err(ctx, CONF_NAME_RULE);
		}
		return 0;
	}
	/* The host name, else its first label, else a fixed name. */
	if (gethostname(host, sizeof(host)) == -1)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	if (conf_name_check(host) == -1 && (dot = strchr(host, '.')) != NULL)
		*dot = '\0';
	if (conf_name_check(host) == -1)
		strcpy(host, "cancelproxy");
	if ((c->hop = strdup(host)) == NULL)
		return conf_err(ctx, "out of memory");
	return 0;
}

static int
conf_load_workers(struct conf_load *l, const cJSON *root)
{
	struct conf	*c = l->c;
	int64_t		 w = 0;
	long		 n;

	if (conf_json_int(&l->ctx, root, "workers", 0, CONF_WORKERS_MAX,
	    &w) == -1)
		return -1;
	if (w == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		if (n < 1)
			n = 1;
		if (n > CONF_WORKERS_MAX)
			n = CONF_WORKERS_MAX;
		w = n;
	}
	c->workers = (int)w;
	return 0;
}

/* Sets every default that is not zero. */
static int
conf_defaults(struct conf *c, const char *file)
{
	c->refs = 1;
	c->peers_note_wait_ms = 250;
	c->limits.max_connections = 10000;
	c->limits.max_header_bytes = 32768;
	c->limits.max_body_bytes = 8388608;
	c->limits.header_timeout_ms = 10000;
	c->limits.http2.max_concurrent_streams = 128;
	c->limits.http2.max_header_fields = 100;
	c->limits.http2.max_control_frames = 200;
	c->limits.http2.reset_burst = 1000;
	c->limits.http2.reset_rate = 33;
	c->limits.http2.send_timeout_ms = 60000;
	c->limits.http2.max_connection_body_bytes = 67108864;
	c->shutdown_drain_ms = 30000;
	if ((c->path = strdup(file)) == NULL ||
	    (c->cancel_api_prefix = strdup("/v1/cancel/")) == NULL ||
	    (c->cluster_redis_channel = strdup("cancelproxy:cancel")) == NULL ||
	    (c->log_path = strdup("-")) == NULL ||
	    (c->log_level = strdup("info")) == NULL)
		return -1;
	return 0;
}

/*
 * Loads and validates FILE. On error returns -1 and writes one line to err
 * naming the file and the JSON path: "conf.json: upstreams.openai.url: ...".
 */
int
conf_load(const char *file, struct conf **out, char *err, size_t errlen)
{
	struct conf_load	 l;
	cJSON			*root = NULL;

	if (out != NULL)
		*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	memset(&l, 0, sizeof(l));
	l.ctx.file = file != NULL ? file : "(null)";
	l.ctx.err = err;
	l.ctx.errlen = errlen;
	if (file == NULL || out == NULL) {
		conf_err(&l.ctx, "no config file");
		return -1;
	}
	if ((l.c = calloc(1, sizeof(*l.c))) == NULL ||
	    conf_defaults(l.c, file) == -1) {
		conf_err(&l.ctx, "out of memory");
		goto fail;
	}
	if (conf_json_read(&l.ctx, &root) == -1 ||
	    conf_json_keys(&l.ctx, root, conf_top_keys) == -1 ||
	    conf_load_hop(&l, root) == -1 ||
	    conf_load_workers(&l, root) == -1 ||
	    conf_load_listen(&l, root) == -1 ||
	    conf_load_admin(&l, root) == -1 ||
	    conf_load_upstreams(&l, root) == -1 ||
	    conf_load_routes(&l, root) == -1 ||
	    conf_load_clients(&l, root) == -1 ||
	    conf_load_peers(&l, root) == -1 ||
	    conf_load_cancel_api(&l, root) == -1 ||
	    conf_load_cluster(&l, root) == -1 ||
	    conf_load_limits(&l, root) == -1 ||
	    conf_load_shutdown(&l, root) == -1 ||
	    conf_load_log(&l, root) == -1)
		goto fail;
	conf_secrets_finish(l.c);
	cJSON_Delete(root);
	free(l.byname);
	conf_ctx_clear(&l.ctx);
	*out = l.c;
	return 0;
fail:
	cJSON_Delete(root);
	free(l.byname);
	conf_ctx_clear(&l.ctx);
	conf_free(l.c);
	return -1;
}
