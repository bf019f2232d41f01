/* conf_clients: who may use the proxy and whom it talks to besides the
 * model — "clients" (the proxy's own keys), "peers" (cancel notes between
 * hops), "cancel_api" and "cluster" (Redis). */
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

int
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

int
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

int
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

int
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
