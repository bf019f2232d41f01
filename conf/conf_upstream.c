/* conf_upstream: the "upstreams" section — each model API or next hop:
 * its URL, TLS, headers it sets, timeouts, keep-alive pool key — and
 * looking upstreams up by name while routes and keys are read. */
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

/* Header names the proxy writes itself; configuring them would corrupt
 * the framing of the request. */
static const char *const conf_reserved_headers[] = {
	"host", "content-length", "transfer-encoding", "connection",
	"keep-alive", "upgrade", "te", "trailer", "proxy-connection", NULL
};

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
struct conf_upstream *
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

static const struct conf_enum conf_protocol_names[] = {
	{ "auto", CONF_PROTOCOL_AUTO },
	{ "http/1.1", CONF_PROTOCOL_HTTP1 },
	{ "h2", CONF_PROTOCOL_H2 },
	{ NULL, 0 },
};

/* Names a protocol as the config and the records spell it. */
const char *
conf_protocol_name(enum conf_protocol p)
{
	return conf_enum_name(conf_protocol_names, (int)p);
}

/* upstreams.NAME.h2: the HTTP/2 connection set, with its defaults. */
static int
conf_load_upstream_h2(struct conf_load *l, const cJSON *obj,
    struct conf_upstream *u)
{
	static const char *const keys[] = {
		"max_streams_per_conn", "max_conns", "queue_max",
		"ping_interval_ms", "ping_timeout_ms", "idle_ms", NULL
	};
	struct conf_ctx	*ctx = &l->ctx;
	struct conf_h2	*h = &u->h2;
	const cJSON	*it;
	size_t		 mark;
	int		 r;

	h->max_streams_per_conn = 100;
	h->max_conns = 64;
	h->queue_max = 1024;
	h->ping_interval_ms = 10000;
	h->ping_timeout_ms = 5000;
	h->idle_ms = 60000;
	if ((it = conf_section(ctx, obj, "h2", keys, &mark, &r)) == NULL)
		return r;
	if (conf_json_int(ctx, it, "max_streams_per_conn", 1, 100000,
	    &h->max_streams_per_conn) == -1 ||
	    conf_json_int(ctx, it, "max_conns", 1, 1000, &h->max_conns) == -1 ||
	    conf_json_int(ctx, it, "queue_max", 0, 1000000,
	    &h->queue_max) == -1 ||
	    conf_json_int(ctx, it, "ping_interval_ms", 0, CONF_MS_MAX,
	    &h->ping_interval_ms) == -1 ||
	    conf_json_int(ctx, it, "ping_timeout_ms", 1, CONF_MS_MAX,
	    &h->ping_timeout_ms) == -1 ||
	    conf_json_int(ctx, it, "idle_ms", 0, CONF_MS_MAX, &h->idle_ms) == -1)
		return -1;
	conf_path_pop(ctx, mark);
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
		"keepalive", "billing_stops_on_cancel", "protocol", "h2", NULL
	};
	struct conf_ctx	*ctx = &l->ctx;
	const cJSON	*it;
	const char	*why;
	int		 proto;
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
	proto = (int)u->protocol;
	if (conf_json_enum(ctx, obj, "protocol", conf_protocol_names,
	    &proto) == -1)
		return -1;
	u->protocol = (enum conf_protocol)proto;
	if (conf_load_upstream_h2(l, obj, u) == -1)
		return -1;
	return conf_upstream_pool_key(ctx, u);
}

int
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
