/* conf_route: where traffic goes: reading "routes" (paths, models,
 * fallbacks, drain, CORS) and choosing a route for a request, model
 * glob patterns, and the listen addresses, upstream URLs and host:port
 * pairs the config names. */
#include <arpa/inet.h>
#include <fnmatch.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_priv.h"

/* First route whose prefix matches path and, if it lists models, whose
 * patterns match model (model may be NULL: such routes do not match). */
const struct conf_route *
conf_route_find(const struct conf *c, const char *path, size_t pathlen,
    const char *model)
{
	const struct conf_route	*r;
	size_t			 i, j, plen;

	if (c == NULL)
		return NULL;
	if (path == NULL)
		pathlen = 0;
	for (i = 0; i < c->nroutes; i++) {
		r = &c->routes[i];
		plen = strlen(r->path_prefix);
		if (plen > pathlen || memcmp(path, r->path_prefix, plen) != 0)
			continue;
		if (r->nmodels == 0)
			return r;
		if (model == NULL)
			continue;
		for (j = 0; j < r->nmodels; j++)
			if (conf_glob_match(r->models[j], model))
				return r;
	}
	return NULL;
}

/* The CORS policy for a request that cannot be routed by model (a
 * preflight has no body): the first route with "cors" whose prefix matches
 * path; for the cancel API's path, else the first route with "cors". */
const struct conf_cors *
conf_cors_find(const struct conf *c, const char *path, size_t pathlen)
{
	const struct conf_route	*r;
	size_t			 i, plen;

	if (c == NULL || path == NULL)
		return NULL;
	for (i = 0; i < c->nroutes; i++) {
		r = &c->routes[i];
		plen = strlen(r->path_prefix);
		if (r->cors != NULL && plen <= pathlen &&
		    memcmp(path, r->path_prefix, plen) == 0)
			return r->cors;
	}
	plen = c->cancel_api_prefix != NULL ? strlen(c->cancel_api_prefix) : 0;
	if (plen == 0 || plen > pathlen ||
	    memcmp(path, c->cancel_api_prefix, plen) != 0)
		return NULL;
	for (i = 0; i < c->nroutes; i++)
		if (c->routes[i].cors != NULL)
			return c->routes[i].cors;
	return NULL;
}

/* Whether origin (origin_len bytes, as a browser sends it) is allowed by
 * cors; 1 or 0. Origins compare without regard to case: browsers send
 * them in lower case, and the config keeps its list in lower case. */
int
conf_cors_origin_allowed(const struct conf_cors *cors, const char *origin,
    size_t origin_len)
{
	size_t	 i;

	if (cors == NULL || origin == NULL || origin_len == 0)
		return 0;
	if (cors->any_origin) {
		/* Echoed back as it came: only printable bytes. */
		for (i = 0; i < origin_len; i++)
			if ((unsigned char)origin[i] <= 0x20 ||
			    (unsigned char)origin[i] >= 0x7f)
				return 0;
		return 1;
	}
	for (i = 0; i < cors->nallow_origins; i++)
		if (strlen(cors->allow_origins[i]) == origin_len &&
		    strncasecmp(cors->allow_origins[i], origin,
		    origin_len) == 0)
			return 1;
	return 0;
}

/* Glob match with '*', '?' and '[...]' (fnmatch semantics, no flags);
 * returns 1 on a match, 0 otherwise. */
int
conf_glob_match(const char *pattern, const char *s)
{
	if (pattern == NULL || s == NULL)
		return 0;
	return fnmatch(pattern, s, 0) == 0;
}

/* 0 if s is fit to compare with a request path: no blanks or controls. */
int
conf_path_text_check(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return -1;
	return 0;
}

/* Reads obj.key, an optional array of strings, into a new vector. */
int
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

/* 0 if s is an HTTP field name (RFC 9110 token); lower-cases it. */
static int
conf_token_lower(char *s)
{
	unsigned char	*p = (unsigned char *)s;

	if (*p == '\0')
		return -1;
	for (; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (unsigned char)(*p - 'A' + 'a');
		else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    strchr("!#$%&'*+-.^_`|~", *p) != NULL))
			return -1;
	}
	return 0;
}

/* 0 if s is a serialized origin, "scheme://host[:port]" with an http or
 * https scheme and nothing after the port; lower-cases it. */
static int
conf_origin_lower(char *s, const char **why)
{
	char	*p, *host;

	for (p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else {
		*why = "must be \"*\" or an origin such as "
		    "\"https://chat.example\" (http:// or https://)";
		return -1;
	}
	if (*host == '\0' || strpbrk(host, "/?#@ \t\\") != NULL) {
		*why = "must be an origin: scheme://host[:port], no path and "
		    "no trailing '/'";
		return -1;
	}
	return 0;
}

/* Whether the ", "-separated list holds name. */
static int
conf_list_has(const char *list, const char *name)
{
	size_t	 n = strlen(name);
	const char *p = list;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == list || p[-1] == ' ') && (p[n] == ',' ||
		    p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

/* Joins names with ", " after lead (may be ""), leaving out repeats. */
static char *
conf_join(const char *lead, char **v, size_t n)
{
	size_t	 i, len = strlen(lead) + 1;
	char	*out;

	for (i = 0; i < n; i++)
		len += strlen(v[i]) + 2;
	if ((out = malloc(len)) == NULL)
		return NULL;
	strcpy(out, lead);
	for (i = 0; i < n; i++) {
		if (conf_list_has(out, v[i]))
			continue;
		if (out[0] != '\0')
			strcat(out, ", ");
		strcat(out, v[i]);
	}
	return out;
}

/*
 * routes[i].cors. "*" and allow_credentials together are an error: the
 * Fetch standard forbids a credentialed answer to any origin, and echoing
 * every origin back would let any web page spend the user's cookies.
 */
static int
conf_load_cors(struct conf_load *l, const cJSON *obj, struct conf_route *r)
{
	static const char *const keys[] = {
		"allow_origins", "allow_credentials", "allow_headers",
		"expose_headers", "max_age_s", NULL
	};
	static const char *const dflt_headers[] = {
		"authorization", "content-type", "x-api-key", "x-request-id",
		"traceparent", NULL
	};
	struct conf_ctx		*ctx = &l->ctx;
	struct conf_cors	*cors;
	char			**expose = NULL;
	size_t			 nexpose = 0, i, mark, mark2;
	const char		*why;

	if (conf_json_keys(ctx, obj, keys) == -1)
		return -1;
	if ((cors = r->cors = calloc(1, sizeof(*cors))) == NULL)
		return conf_err(ctx, "out of memory");
	cors->max_age_s = 600;
	if (cJSON_GetObjectItemCaseSensitive(obj, "allow_origins") == NULL)
		return conf_err(ctx, "missing \"allow_origins\" (the origins "
		    "of the pages that may call this route, or [\"*\"])");
	if (conf_load_strings(l, obj, "allow_origins", &cors->allow_origins,
	    &cors->nallow_origins) == -1)
		return -1;
	mark = conf_path_key(ctx, "allow_origins");
	for (i = 0; i < cors->nallow_origins; i++) {
		mark2 = conf_path_index(ctx, i);
		if (strcmp(cors->allow_origins[i], "*") == 0)
			cors->any_origin = 1;
		else if (conf_origin_lower(cors->allow_origins[i], &why) == -1)
			return conf_err(ctx, "%s", why);
		conf_path_pop(ctx, mark2);
	}
	conf_path_pop(ctx, mark);
	if (conf_json_bool(ctx, obj, "allow_credentials",
	    &cors->allow_credentials) == -1)
		return -1;
	if (cors->any_origin && cors->allow_credentials) {
		conf_path_key(ctx, "allow_credentials");
		return conf_err(ctx, "must be false when allow_origins has "
		    "\"*\" (browsers refuse credentials for any origin): "
		    "list the origins instead");
	}
	if (conf_load_strings(l, obj, "allow_headers", &cors->allow_headers,
	    &cors->nallow_headers) == -1)
		return -1;
	if (cors->allow_headers == NULL) {
		for (i = 0; dflt_headers[i] != NULL; i++)
			;
		if ((cors->allow_headers = calloc(i, sizeof(char *))) == NULL)
			return conf_err(ctx, "out of memory");
		for (i = 0; dflt_headers[i] != NULL; i++) {
			if ((cors->allow_headers[i] = strdup(dflt_headers[i])) ==
			    NULL)
				return conf_err(ctx, "out of memory");
			cors->nallow_headers++;
		}
	}
	mark = conf_path_key(ctx, "allow_headers");
	for (i = 0; i < cors->nallow_headers; i++) {
		mark2 = conf_path_index(ctx, i);
		if (strcmp(cors->allow_headers[i], "*") == 0)
			cors->any_header = 1;
		else if (conf_token_lower(cors->allow_headers[i]) == -1)
			return conf_err(ctx, "must be a header name or \"*\"");
		conf_path_pop(ctx, mark2);
	}
	conf_path_pop(ctx, mark);
	if (conf_load_strings(l, obj, "expose_headers", &expose,
	    &nexpose) == -1)
		goto fail;
	mark = conf_path_key(ctx, "expose_headers");
	for (i = 0; i < nexpose; i++) {
		mark2 = conf_path_index(ctx, i);
		if (conf_token_lower(expose[i]) == -1) {
			conf_err(ctx, "must be a header name");
			goto fail;
		}
		conf_path_pop(ctx, mark2);
	}
	conf_path_pop(ctx, mark);
	if ((cors->allow_headers_line = conf_join("", cors->allow_headers,
	    cors->nallow_headers)) == NULL ||
	    (cors->expose_headers_line = conf_join("x-request-id, "
	    "proxy-status", expose, nexpose)) == NULL) {
		conf_err(ctx, "out of memory");
		goto fail;
	}
	conf_strings_free(expose, nexpose);
	return conf_json_int(ctx, obj, "max_age_s", 0, 86400,
	    &cors->max_age_s);
fail:
	conf_strings_free(expose, nexpose);
	return -1;
}

static const struct conf_enum conf_disconnect_names[] = {
	{ "cancel", CONF_DISCONNECT_CANCEL },
	{ "drain", CONF_DISCONNECT_DRAIN },
	{ NULL, 0 },
};

static const struct conf_enum conf_stream_usage_names[] = {
	{ "pass", CONF_STREAM_USAGE_PASS },
	{ "inject", CONF_STREAM_USAGE_INJECT },
	{ NULL, 0 },
};

static int
conf_load_route(struct conf_load *l, const cJSON *obj, struct conf_route *r)
{
	static const char *const keys[] = {
		"path_prefix", "models", "upstream", "fallback",
		"on_client_disconnect", "drain", "stream_usage", "cors",
		"grpc_timeout_max_ms", NULL
	};
	static const char *const drain_keys[] = { "max_ms", "max_bytes", NULL };
	struct conf_ctx	*ctx = &l->ctx;
	const cJSON	*it, *fb;
	char		*s = NULL;
	size_t		 mark, mark2, i, n;
	int		 rr, v;

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

	v = r->on_client_disconnect;
	if (conf_json_enum(ctx, obj, "on_client_disconnect",
	    conf_disconnect_names, &v) == -1)
		goto fail;
	r->on_client_disconnect = (enum conf_disconnect)v;
	if (conf_json_int(ctx, obj, "grpc_timeout_max_ms", 0, CONF_MS_MAX,
	    &r->grpc_timeout_max_ms) == -1)
		goto fail;
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
	v = r->stream_usage;
	if (conf_json_enum(ctx, obj, "stream_usage", conf_stream_usage_names,
	    &v) == -1)
		goto fail;
	r->stream_usage = (enum conf_stream_usage)v;
	if ((it = conf_section(ctx, obj, "cors", NULL, &mark, &rr)) != NULL) {
		if (conf_load_cors(l, it, r) == -1)
			goto fail;
		conf_path_pop(ctx, mark);
	} else if (rr == -1)
		goto fail;
	return 0;
fail:
	free(s);
	return -1;
}

int
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
