/* conf: the config as the rest of the proxy sees it: load and validate the
 * file into an immutable struct conf (every key of DESIGN.md section 3)
 * and count references to it; each section is read in its own file. */
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

static const char *const conf_top_keys[] = {
	"hop", "workers", "listen", "admin", "upstreams", "routes", "clients",
	"peers", "cancel_api", "cluster", "limits", "shutdown", "log", "user",
	NULL
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

void
conf_strings_free(char **v, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
conf_cors_free(struct conf_cors *cors)
{
	if (cors == NULL)
		return;
	conf_strings_free(cors->allow_origins, cors->nallow_origins);
	conf_strings_free(cors->allow_headers, cors->nallow_headers);
	free(cors->allow_headers_line);
	free(cors->expose_headers_line);
	free(cors);
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
	conf_cors_free(r->cors);
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

/* 0 if s is a hop, upstream or client name: 1 to 63 of [A-Za-z0-9._:-]. */
int
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


/* The item obj.key, or NULL with a "missing" error. */
const cJSON *
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
const cJSON *
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
int
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
int
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
long
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
conf_load_limits(struct conf_load *l, const cJSON *root)
{
	static const char *const keys[] = {
		"max_connections", "max_header_bytes", "max_header_fields",
		"max_body_bytes", "header_timeout_ms", "http2", NULL
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
	    conf_json_int(ctx, obj, "max_header_fields", 1, 100000,
	    &lim->max_header_fields) == -1 ||
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
	static const struct conf_enum levels[] = {
		{ "debug", 0 }, { "info", 1 }, { "warn", 2 }, { "error", 3 },
		{ NULL, 0 },
	};
	struct conf_ctx	*ctx = &l->ctx;
	struct conf	*c = l->c;
	const cJSON	*obj;
	size_t		 mark = 0;
	int		 r, level = 1;

	if ((obj = conf_section(ctx, root, "log", keys, &mark,
	    &r)) == NULL)
		return r;
	if (conf_json_str(ctx, obj, "path", CONF_STR_NONEMPTY,
	    &c->log_path) == -1 ||
	    conf_json_enum(ctx, obj, "level", levels, &level) == -1)
		return -1;
	free(c->log_level);
	if ((c->log_level = strdup(levels[level].name)) == NULL)
		return conf_err(ctx, "out of memory");
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
	c->limits.max_header_fields = 100;
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
