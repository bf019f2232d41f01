/* conf_route: where traffic goes: choosing a route for a request, model
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
