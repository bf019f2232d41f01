/* conf_priv: what the files of conf/ share and nobody else sees: the load
 * context (file name, JSON path, error buffer) and the typed JSON readers. */
#ifndef CANCELPROXY_CONF_PRIV_H
#define CANCELPROXY_CONF_PRIV_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "conf/conf.h"

#define CONF_FILE_MAX		(16 * 1024 * 1024)	/* bytes of config */
#define CONF_JSON_DEPTH		128	/* nesting of objects and arrays */
#define CONF_PATH_MAX		256	/* longest JSON path in a message */
#define CONF_EXPAND_MAX		(1024 * 1024)	/* a string after ${} */
#define CONF_NAME_MAX		63	/* hop, upstream and client names */
#define CONF_NAME_RULE	"must be 1 to 63 characters of A-Z a-z 0-9 . _ : -"

/* A value that ${NAME} put into a string: the item it went into and the
 * text, kept so that secret strings can also redact the bare variable. */
struct conf_subst {
	const cJSON	*item;
	char		*value;
};

/*
 * One load in progress. The path is the JSON path of the value being
 * looked at; readers push a key or an index, and pop it when they are done
 * (an error leaves it where it failed, which is what the message needs).
 */
struct conf_ctx {
	const char		*file;
	char			*err;
	size_t			 errlen;
	char			 path[CONF_PATH_MAX];
	size_t			 pathlen;
	struct conf_subst	*subst;
	size_t			 nsubst;
};

/* Options of conf_json_str(). */
#define CONF_STR_NULL		0x01	/* null is the same as absent */
#define CONF_STR_NONEMPTY	0x02	/* "" is an error */

/* One spelling a string setting accepts and the value it stands for; a
 * table of them ends with a NULL name. */
struct conf_enum {
	const char	*name;
	int		 value;
};

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

/* conf.c */
void	 conf_strings_free(char **v, size_t n);
int	 conf_name_check(const char *s);
const cJSON *conf_need(struct conf_ctx *ctx, const cJSON *obj,
	    const char *key);
const cJSON *conf_section(struct conf_ctx *ctx, const cJSON *parent,
	    const char *key, const char *const *keys, size_t *mark, int *r);
int	 conf_check_readable(struct conf_ctx *ctx, const char *path);
int	 conf_secret_add(struct conf_load *l, const cJSON *item,
	    const char *value);
long	 conf_dup_find(struct conf_dup *d, size_t n, size_t *first);

/* conf_addr.c */
int	 conf_load_listen(struct conf_load *l, const cJSON *root);
int	 conf_load_admin(struct conf_load *l, const cJSON *root);

/* conf_upstream.c */
struct conf_upstream *conf_load_upstream_ref(struct conf_load *l,
	    const char *name);
int	 conf_load_upstreams(struct conf_load *l, const cJSON *root);

/* conf_route.c */
int	 conf_path_text_check(const char *s);
int	 conf_load_strings(struct conf_load *l, const cJSON *obj,
	    const char *key, char ***out, size_t *nout);
int	 conf_load_routes(struct conf_load *l, const cJSON *root);

/* conf_clients.c */
int	 conf_load_clients(struct conf_load *l, const cJSON *root);
int	 conf_load_peers(struct conf_load *l, const cJSON *root);
int	 conf_load_cancel_api(struct conf_load *l, const cJSON *root);
int	 conf_load_cluster(struct conf_load *l, const cJSON *root);

/* conf_json.c */
/* Reads obj.key, a string that must be one of table's names, into *out;
 * absent leaves *out as it was. The error lists what is accepted. */
int	 conf_json_enum(struct conf_ctx *ctx, const cJSON *obj,
	    const char *key, const struct conf_enum *table, int *out);
/* The name of value in table, or "unknown". */
const char *conf_enum_name(const struct conf_enum *table, int value);
int	 conf_json_read(struct conf_ctx *ctx, cJSON **root);
void	 conf_ctx_clear(struct conf_ctx *ctx);
int	 conf_err(struct conf_ctx *ctx, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
size_t	 conf_path_key(struct conf_ctx *ctx, const char *key);
size_t	 conf_path_index(struct conf_ctx *ctx, size_t i);
void	 conf_path_pop(struct conf_ctx *ctx, size_t mark);
void	 conf_quote(char *buf, size_t len, const char *s);
const char *conf_json_type(const cJSON *item);
int	 conf_json_keys(struct conf_ctx *ctx, const cJSON *obj,
	    const char *const *allowed);
int	 conf_json_unique(struct conf_ctx *ctx, const cJSON *obj, int nocase);
int	 conf_json_is_object(struct conf_ctx *ctx, const cJSON *item,
	    int nullok);
int	 conf_json_int(struct conf_ctx *ctx, const cJSON *obj, const char *key,
	    int64_t min, int64_t max, int64_t *out);
int	 conf_json_bool(struct conf_ctx *ctx, const cJSON *obj,
	    const char *key, int *out);
int	 conf_json_str(struct conf_ctx *ctx, const cJSON *obj, const char *key,
	    int flags, char **out);
int	 conf_json_str_item(struct conf_ctx *ctx, const cJSON *item, int flags,
	    char **out);

/* conf_addr.c: addresses, host names, URLs */
int	 conf_address_parse(const char *s, struct sockaddr_storage *ss,
	    socklen_t *len, const char **why);
int	 conf_hostport_check(const char *s, const char **why);
int	 conf_url_parse(struct conf_upstream *u, const char *url,
	    const char **why);
int	 conf_hostname_check(const char *s, size_t len);

#endif
