/* session_cors: browsers on other origins (DESIGN.md §8) — the proxy
 * answers a route's preflights itself, refuses origins the route does not
 * list before anything reaches the model, and puts the CORS fields on every
 * answer to an allowed origin, errors it makes itself included. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "downstream/downstream.h"
#include "proxy/log.h"
#include "proxy/session.h"

/* What a preflight may ask for: the methods of the LLM APIs. */
#define SESSION_CORS_METHODS	"GET, HEAD, POST, DELETE"

const char *
session_cors_result_name(enum session_cors_result r)
{
	switch (r) {
	case CORS_NONE:			return NULL;
	case CORS_ALLOWED:		return "allowed";
	case CORS_PREFLIGHT:		return "preflight";
	case CORS_ORIGIN_NOT_ALLOWED:	return "origin_not_allowed";
	case CORS_METHOD_NOT_ALLOWED:	return "method_not_allowed";
	case CORS_HEADER_NOT_ALLOWED:	return "header_not_allowed";
	}
	return NULL;
}

/* Whether m (n bytes) is a method a preflight may ask for. */
static int
session_cors_method_ok(const char *m, size_t n)
{
	static const char *const ok[] = { "GET", "HEAD", "POST", "DELETE",
	    NULL };
	size_t	 i;

	for (i = 0; ok[i] != NULL; i++)
		if (strlen(ok[i]) == n && memcmp(ok[i], m, n) == 0)
			return 1;
	return 0;
}

/*
 * Checks Access-Control-Request-Headers against the policy; 0 when every
 * name is allowed, else -1 with the first refused name in bad. Only token
 * characters pass, so the list can be echoed when the policy allows "*".
 */
static int
session_cors_headers_ok(const struct conf_cors *cors, const char *v,
    size_t n, char *bad, size_t badlen)
{
	size_t	 i = 0, start, end, k;
	char	 name[128];

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		end = i;
		if (end == start)
			continue;
		snprintf(bad, badlen, "%.*s", (int)(end - start > 64 ? 64 :
		    end - start), v + start);
		if (end - start >= sizeof(name))
			return -1;
		for (k = start; k < end; k++) {
			char ch = v[k];

			if (!((ch >= 'a' && ch <= 'z') ||
			    (ch >= 'A' && ch <= 'Z') ||
			    (ch >= '0' && ch <= '9') ||
			    strchr("!#$%&'*+-.^_`|~", ch) != NULL))
				return -1;
			name[k - start] = (char)(ch >= 'A' && ch <= 'Z' ?
			    ch - 'A' + 'a' : ch);
		}
		name[end - start] = '\0';
		if (cors->any_header)
			continue;
		for (k = 0; k < cors->nallow_headers; k++)
			if (strcmp(cors->allow_headers[k], name) == 0)
				break;
		if (k == cors->nallow_headers)
			return -1;
	}
	bad[0] = '\0';
	return 0;
}

/* Refuses a request or preflight from a browser, with no CORS fields. */
static void
session_cors_refuse(struct session *s, enum session_cors_result why,
    const char *message)
{
	s->cors_ok = 0;
	s->cors_result = why;
	session_refuse(s, 403, session_cors_result_name(why), message);
}

/* The 204 answer to an allowed preflight; the session then ends. */
static void
session_cors_preflight_answer(struct session *s, const char *req_headers)
{
	const struct conf_cors	*cors = s->cors;
	struct downstream_head	 h = { .status = 204, .content_length = -1 };
	struct session_end	 e = { .cancel = 0 };
	char			 max_age[24];

	session_cors_head(s, &h);
	downstream_head_add(&h, "Access-Control-Allow-Methods",
	    SESSION_CORS_METHODS);
	if (cors->any_header)
		downstream_head_add(&h, "Access-Control-Allow-Headers",
		    req_headers);	/* NULL: none asked, none added */
	else
		downstream_head_add(&h, "Access-Control-Allow-Headers",
		    cors->allow_headers_line);
	snprintf(max_age, sizeof(max_age), "%lld", (long long)cors->max_age_s);
	downstream_head_add(&h, "Access-Control-Max-Age", max_age);
	downstream_head_add(&h, "Vary", "Access-Control-Request-Method, "
	    "Access-Control-Request-Headers");
	downstream_head_add(&h, "X-Request-Id", s->request_id);
	downstream_answer(s, &h, NULL, 0);
	s->resp_done = 1;
	s->cors_result = CORS_PREFLIGHT;
	session_close(s, &e);
}

/*
 * Looks for a CORS policy by path (the only thing a preflight has) and
 * answers a preflight under one; -1 when the session was answered and
 * ended. Without a policy nothing changes: the request goes on as before.
 */
int
session_cors_request(struct session *s, size_t pathlen)
{
	const char	*acrm, *acrh;
	size_t		 acrm_len = 0, acrh_len = 0;
	char		 bad[72], msg[160];

	const char	*origin;

	s->cors = conf_cors_find(s->rt->conf, s->target, pathlen);
	origin = headers_get(&s->req_headers, "origin", &s->origin_len);
	if (origin != NULL && s->origin == NULL &&
	    (s->origin = strndup(origin, s->origin_len)) == NULL) {
		session_refuse(s, 503, "out_of_memory", "out of memory");
		return -1;
	}
	if (s->cors == NULL)
		return 0;
	s->cors_ok = conf_cors_origin_allowed(s->cors, s->origin,
	    s->origin_len);
	acrm = headers_get(&s->req_headers, "access-control-request-method",
	    &acrm_len);
	if (s->method != HTTP_OPTIONS || s->origin == NULL || acrm == NULL)
		return 0;
	if (!s->cors_ok) {
		session_cors_refuse(s, CORS_ORIGIN_NOT_ALLOWED,
		    "this origin may not call this proxy (cors.allow_origins)");
		return -1;
	}
	if (!session_cors_method_ok(acrm, acrm_len)) {
		session_cors_refuse(s, CORS_METHOD_NOT_ALLOWED, "this method "
		    "may not be used from a browser (GET, HEAD, POST, DELETE)");
		return -1;
	}
	acrh = headers_get(&s->req_headers, "access-control-request-headers",
	    &acrh_len);
	if (acrh != NULL && session_cors_headers_ok(s->cors, acrh, acrh_len,
	    bad, sizeof(bad)) == -1) {
		snprintf(msg, sizeof(msg), "request header \"%s\" is not in "
		    "cors.allow_headers", bad);
		session_cors_refuse(s, CORS_HEADER_NOT_ALLOWED, msg);
		return -1;
	}
	/* Field values are stored NUL-terminated: acrh can be passed on. */
	session_cors_preflight_answer(s, acrh != NULL && acrh_len > 0 ? acrh :
	    NULL);
	return -1;
}

/*
 * Takes the policy of the route the request was given (NULL: none, as
 * before) and refuses a browser whose origin it does not list, before
 * anything is sent upstream; -1 when the session was refused.
 */
int
session_cors_route(struct session *s, const struct conf_cors *cors)
{
	s->cors = cors;
	s->cors_ok = conf_cors_origin_allowed(cors, s->origin, s->origin_len);
	return session_cors_check(s);
}

/* Refuses a request from an origin that the policy in force does not
 * list; -1 when the session was refused. */
int
session_cors_check(struct session *s)
{
	if (s->cors == NULL || s->origin == NULL) {
		s->cors_result = CORS_NONE;
		return 0;
	}
	if (!s->cors_ok) {
		session_cors_refuse(s, CORS_ORIGIN_NOT_ALLOWED,
		    "this origin may not call this proxy (cors.allow_origins)");
		return -1;
	}
	s->cors_result = CORS_ALLOWED;
	return 0;
}

/*
 * Adds the CORS fields of an answer to s to its head. Vary: Origin goes
 * on every answer under a policy (a cache must not hand one origin's
 * answer to another); the rest only to an allowed origin, which is echoed
 * rather than answered with "*". The upstream's own Access-Control-*
 * fields are dropped.
 */
void
session_cors_head(const struct session *s, struct downstream_head *h)
{
	if (s->cors == NULL)
		return;
	h->drop_prefix = "access-control-";
	if (s->cors_ok && s->origin != NULL) {
		downstream_head_add(h, "Access-Control-Allow-Origin", s->origin);
		downstream_head_add(h, "Vary", "Origin");
		downstream_head_add(h, "Access-Control-Expose-Headers",
		    s->cors->expose_headers_line);
		if (s->cors->allow_credentials)
			downstream_head_add(h,
			    "Access-Control-Allow-Credentials", "true");
	} else
		downstream_head_add(h, "Vary", "Origin");
}
