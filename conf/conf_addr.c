/* conf_addr: addresses and URLs — listen and admin addresses, upstream
 * URLs and host names, and the "listen" and "admin" sections. */
#include <arpa/inet.h>
#include <net/if.h>
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

/* Reads a decimal port of 1 to 5 digits; -1 if it is not one. */
static long
conf_port_parse(const char *s, size_t len)
{
	long	 v = 0;
	size_t	 i;

	if (len == 0 || len > 5)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Parses "1.2.3.4:80", "[::1]:80", "*:80" or "localhost:80"; why says
 * what is wrong on failure. */
int
conf_address_parse(const char *s, struct sockaddr_storage *ss,
    socklen_t *len, const char **why)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	const char		*host, *hend, *port, *close, *colon;
	char			 buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	char			*scope;
	size_t			 hlen;
	long			 p;
	unsigned long		 idx;
	int			 v6 = 0;
	const char		*dummy;

	if (why == NULL)
		why = &dummy;
	if (s == NULL) {
		*why = "missing";
		return -1;
	}
	if (s[0] == '[') {
		if ((close = strchr(s, ']')) == NULL) {
			*why = "missing ']' after an IPv6 address";
			return -1;
		}
		host = s + 1;
		hend = close;
		if (close[1] != ':') {
			*why = "missing port (write [address]:port)";
			return -1;
		}
		port = close + 2;
		v6 = 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL) {
			*why = "missing port (write address:port)";
			return -1;
		}
		host = s;
		hend = colon;
		if (memchr(host, ':', (size_t)(hend - host)) != NULL) {
			*why = "an IPv6 address needs brackets: [::1]:80";
			return -1;
		}
		port = colon + 1;
	}
	if ((p = conf_port_parse(port, strlen(port))) == -1 || p > 65535) {
		*why = "port must be a number from 0 to 65535";
		return -1;
	}
	hlen = (size_t)(hend - host);
	if (hlen == 0) {
		*why = "missing host (write *:port for any address)";
		return -1;
	}
	if (hlen >= sizeof(buf)) {
		*why = v6 ? "bad IPv6 address" : "bad IPv4 address";
		return -1;
	}
	memcpy(buf, host, hlen);
	buf[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		if ((scope = strchr(buf, '%')) != NULL)
			*scope++ = '\0';
		if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1) {
			*why = "bad IPv6 address";
			return -1;
		}
		if (scope != NULL) {
			if (*scope >= '0' && *scope <= '9') {
				char	*end;

				idx = strtoul(scope, &end, 10);
				if (*end != '\0' || idx > UINT32_MAX)
					idx = 0;
			} else
				idx = if_nametoindex(scope);
			if (idx == 0) {
				*why = "unknown IPv6 scope (interface)";
				return -1;
			}
			sin6->sin6_scope_id = (uint32_t)idx;
		}
		*len = sizeof(*sin6);
		return 0;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)p);
	if (strcmp(buf, "*") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (strcasecmp(buf, "localhost") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1) {
		*why = "host must be an IPv4 address, [IPv6 address], '*' or "
		    "localhost";
		return -1;
	}
	*len = sizeof(*sin);
	return 0;
}

/* Parses "1.2.3.4:80", "[::1]:80", "*:80" (any IPv4), port 0 allowed. */
int
conf_parse_address(const char *s, struct sockaddr_storage *ss,
    socklen_t *len)
{
	return conf_address_parse(s, ss, len, NULL);
}

/* 0 if s[0..len) is a plausible DNS name or IPv4 address. */
int
conf_hostname_check(const char *s, size_t len)
{
	size_t	 i;
	char	 ch;

	if (len == 0 || len > 253)
		return -1;
	for (i = 0; i < len; i++) {
		ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_'))
			return -1;
	}
	if (s[0] == '.' || s[0] == '-')
		return -1;
	return 0;
}

/*
 * Splits "host:port" or "[v6]:port" (the port may be absent when dport is
 * not -1); the host is returned without brackets.
 */
static int
conf_split_hostport(const char *s, size_t slen, const char **host,
    size_t *hlen, long *port, long dport, int *v6, const char **why)
{
	const char	*close, *colon, *end = s + slen;
	char		 buf[INET6_ADDRSTRLEN];
	struct in6_addr	 a6;

	*v6 = 0;
	if (slen > 0 && s[0] == '[') {
		close = memchr(s, ']', slen);
		if (close == NULL || (size_t)(close - s - 1) >= sizeof(buf)) {
			*why = "bad IPv6 address";
			return -1;
		}
		memcpy(buf, s + 1, (size_t)(close - s - 1));
		buf[close - s - 1] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1) {
			*why = "bad IPv6 address";
			return -1;
		}
		*host = s + 1;
		*hlen = (size_t)(close - s - 1);
		*v6 = 1;
		colon = close + 1;
		if (colon < end && *colon != ':') {
			*why = "expected ':' and a port after ']'";
			return -1;
		}
	} else {
		colon = memchr(s, ':', slen);
		if (colon == NULL)
			colon = end;
		*host = s;
		*hlen = (size_t)(colon - s);
		if (*hlen == 0) {
			*why = "missing host";
			return -1;
		}
		if (conf_hostname_check(s, *hlen) == -1) {
			*why = "bad host name";
			return -1;
		}
	}
	if (colon >= end) {
		if (dport == -1) {
			*why = "missing port (write host:port)";
			return -1;
		}
		*port = dport;
		return 0;
	}
	*port = conf_port_parse(colon + 1, (size_t)(end - colon - 1));
	if (*port < 1 || *port > 65535) {
		*why = "port must be a number from 1 to 65535";
		return -1;
	}
	return 0;
}

/* Checks a "host:port" to connect to: a name, IPv4 or [IPv6], port 1+. */
int
conf_hostport_check(const char *s, const char **why)
{
	const char	*host;
	size_t		 hlen;
	long		 port;
	int		 v6;

	return conf_split_hostport(s, strlen(s), &host, &hlen, &port, -1, &v6,
	    why);
}

/* Fills the url-derived fields of u from "scheme://host[:port][/base]". */
int
conf_url_parse(struct conf_upstream *u, const char *url, const char **why)
{
	const char	*p, *aend, *host, *path, *c;
	size_t		 hlen, plen;
	long		 port, dport;
	int		 v6;
	char		 pbuf[16];

	if (strncasecmp(url, "http://", 7) == 0) {
		u->tls = 0;
		dport = 80;
		p = url + 7;
	} else if (strncasecmp(url, "https://", 8) == 0) {
		u->tls = 1;
		dport = 443;
		p = url + 8;
	} else {
		*why = "must start with http:// or https://";
		return -1;
	}
	if (strpbrk(url, "?#") != NULL) {
		*why = "must not have a query or fragment";
		return -1;
	}
	aend = p + strcspn(p, "/");
	if (aend == p) {
		*why = "must name a host";
		return -1;
	}
	if (memchr(p, '@', (size_t)(aend - p)) != NULL) {
		*why = "must not contain user info (put credentials in "
		    "set_headers)";
		return -1;
	}
	if (conf_split_hostport(p, (size_t)(aend - p), &host, &hlen, &port,
	    dport, &v6, why) == -1)
		return -1;
	path = aend;
	for (c = path; *c != '\0'; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
			*why = "path must not contain spaces, control "
			    "characters or non-ASCII bytes (percent-encode them)";
			return -1;
		}
	plen = strlen(path);
	while (plen > 0 && path[plen - 1] == '/')
		plen--;

	u->port = (uint16_t)port;
	if ((u->host = strndup(host, hlen)) == NULL ||
	    (u->base_path = strndup(path, plen)) == NULL)
		goto oom;
	pbuf[0] = '\0';
	if (port != dport)
		snprintf(pbuf, sizeof(pbuf), ":%ld", port);
	if ((u->host_header = malloc(hlen + 3 + strlen(pbuf))) == NULL)
		goto oom;
	snprintf(u->host_header, hlen + 3 + strlen(pbuf), "%s%.*s%s%s",
	    v6 ? "[" : "", (int)hlen, host, v6 ? "]" : "", pbuf);
	return 0;
oom:
	*why = "out of memory";
	return -1;
}

static const struct conf_enum conf_forwarded_names[] = {
	{ "append", CONF_FORWARDED_APPEND },
	{ "replace", CONF_FORWARDED_REPLACE },
	{ "off", CONF_FORWARDED_OFF },
	{ NULL, 0 },
};

const char *
conf_forwarded_name(enum conf_forwarded f)
{
	return conf_enum_name(conf_forwarded_names, (int)f);
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
	static const char *const keys[] = {
		"address", "tls", "forwarded", "protocols", NULL
	};
	static const char *const tls_keys[] = { "cert", "key", NULL };
	struct conf_ctx	*ctx = &l->ctx;
	const cJSON	*tls, *it;
	size_t		 mark = 0, mark2;
	int		 r, fw = CONF_FORWARDED_APPEND;

	if (conf_json_is_object(ctx, obj, 0) == -1 ||
	    conf_json_keys(ctx, obj, keys) == -1 ||
	    conf_load_address(l, obj, ls) == -1 ||
	    conf_load_protocols(ctx, obj, ls) == -1 ||
	    conf_json_enum(ctx, obj, "forwarded", conf_forwarded_names,
	    &fw) == -1)
		return -1;
	ls->forwarded = (enum conf_forwarded)fw;
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

int
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

int
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
