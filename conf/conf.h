/* conf: load, validate and hold the config file; nothing else sees cJSON
 * trees of the config. A loaded config is immutable and reference counted,
 * so live sessions keep the config they started with across a reload. */
#ifndef CANCELPROXY_CONF_H
#define CANCELPROXY_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum conf_disconnect {
	CONF_DISCONNECT_CANCEL,		/* close the upstream at once */
	CONF_DISCONNECT_DRAIN,		/* read on (bounded) to learn usage */
};

/* What an upstream's connections speak (upstreams.NAME.protocol). */
enum conf_protocol {
	CONF_PROTOCOL_AUTO,		/* TLS: ALPN h2,http/1.1; plain: 1.1 */
	CONF_PROTOCOL_HTTP1,		/* "http/1.1" */
	CONF_PROTOCOL_H2,		/* "h2": prior knowledge or ALPN h2 */
};
const char	*conf_protocol_name(enum conf_protocol p);

/* HTTP/2 connections to one upstream (upstreams.NAME.h2). */
struct conf_h2 {
	int64_t	 max_streams_per_conn;	/* default 100, also capped by the
					 * server's MAX_CONCURRENT_STREAMS */
	int64_t	 max_conns;		/* per worker, default 64 */
	int64_t	 queue_max;		/* streams waiting for a connection,
					 * per worker, default 1024 */
	int64_t	 ping_interval_ms;	/* idle PING, default 10000, 0 off */
	int64_t	 ping_timeout_ms;	/* no PING ACK: dead, default 5000 */
	int64_t	 idle_ms;		/* no streams this long: closed,
					 * default 60000 */
};

enum conf_stream_usage {
	CONF_STREAM_USAGE_PASS,		/* forward the request body as is */
	CONF_STREAM_USAGE_INJECT,	/* ask OpenAI-style upstreams for usage */
};

/* What a listener does with X-Forwarded-For and Forwarded. */
enum conf_forwarded {
	CONF_FORWARDED_APPEND,		/* keep the client's chain, add its address */
	CONF_FORWARDED_REPLACE,		/* drop the client's chain, add its address */
	CONF_FORWARDED_OFF,		/* pass the fields as they came */
};

/* "append", "replace" or "off", as in the config file. */
const char	*conf_forwarded_name(enum conf_forwarded f);

/* A listener: "127.0.0.1:8080", "[::]:8443", optionally with TLS. */
struct conf_listen {
	char			*address;	/* as written */
	struct sockaddr_storage	 addr;		/* parsed, numeric only */
	socklen_t		 addrlen;
	char			*tls_cert;	/* NULL: plain TCP */
	char			*tls_key;
	enum conf_forwarded	 forwarded;	/* default append */
	uint8_t			 protocols;	/* CONF_PROTO_* bits */
};

/* What a listener speaks ("protocols"); default both. */
#define CONF_PROTO_H1		0x01	/* "http/1.1" */
#define CONF_PROTO_H2		0x02	/* "h2" */

struct conf_header {
	char	*name;
	char	*value;
};

struct conf_timeouts {
	int64_t	 connect_ms;	/* resolve + connect + TLS handshake */
	int64_t	 first_byte_ms;	/* request sent -> first response body byte */
	int64_t	 idle_ms;	/* longest gap between body bytes */
	int64_t	 total_ms;	/* whole exchange; 0 = none */
};

struct conf_upstream {
	char			*name;
	char			*url;		/* as written */
	int			 tls;		/* https:// */
	char			*host;		/* host name or address, no brackets */
	uint16_t		 port;
	char			*host_header;	/* "host" or "host:port" for Host: */
	char			*base_path;	/* "" or "/base", never a trailing '/' */
	int			 tls_verify;	/* default 1 */
	char			*tls_ca_file;	/* NULL: system store */
	char			*tls_server_name; /* NULL: host */
	struct conf_header	*set_headers;
	size_t			 nset_headers;
	int			 peer;		/* upstream is another cancelproxy */
	struct conf_timeouts	 timeouts;	/* defaults 5000/120000/60000/0 */
	int			 keepalive;	/* idle conns per worker, default 32 */
	int			 billing_stops_on_cancel; /* 1, 0, -1 unknown */
	enum conf_protocol	 protocol;	/* default auto */
	struct conf_h2		 h2;
	char			*pool_key;	/* where its connections go: equal
						 * keys share pooled connections */
	uint64_t		 pool_hash;	/* FNV-1a of pool_key */
};

/* Browsers on other origins (DESIGN.md §8): who may call a route. The
 * header lists are kept both as lower-case names and as the one line the
 * answers carry. */
struct conf_cors {
	char			**allow_origins; /* "scheme://host[:port]", lower
						  * case; "*" is any_origin */
	size_t			 nallow_origins;
	int			 any_origin;
	int			 allow_credentials;
	char			**allow_headers; /* lower case; "*" any_header */
	size_t			 nallow_headers;
	int			 any_header;	/* echo what the preflight asks */
	char			*allow_headers_line;
	char			*expose_headers_line; /* always starts with
						 * "X-Request-Id, Proxy-Status" */
	int64_t			 max_age_s;	/* default 600 */
};

struct conf_route {
	char			*path_prefix;	/* default "/" */
	char			**models;	/* glob patterns; NULL if none */
	size_t			 nmodels;
	char			*upstream_name;
	struct conf_upstream	*upstream;	/* resolved at load */
	struct conf_upstream	**fallback;	/* resolved at load */
	size_t			 nfallback;
	enum conf_disconnect	 on_client_disconnect;
	int64_t			 drain_max_ms;	/* drain: read on this long */
	int64_t			 drain_max_bytes;/* and at most this much */
	int64_t			 grpc_timeout_max_ms; /* caps a gRPC client's
						 * grpc-timeout; 0: no cap */
	enum conf_stream_usage	 stream_usage;
	struct conf_cors	*cors;		/* NULL: no CORS answers */
};

struct conf_client_key {
	char		*name;
	uint8_t		 key_sha256[32];
	char		**routes;	/* route upstream names or "*" */
	size_t		 nroutes;
	int		 max_streams;	/* 0 = unlimited */
};

struct conf_limits {
	int64_t	 max_connections;	/* default 10000 */
	int64_t	 max_header_bytes;	/* default 32768 */
	int64_t	 max_header_fields;	/* default 100, request and response */
	int64_t	 max_body_bytes;	/* default 8388608 */
	int64_t	 header_timeout_ms;	/* default 10000: whole request, a deadline */
	/* limits.http2: what one HTTP/2 client connection may cost. */
	struct conf_http2 {
		int64_t	 max_concurrent_streams; /* default 128, SETTINGS */
		int64_t	 max_header_fields;	/* default 100 per request */
		int64_t	 max_control_frames;	/* PING, SETTINGS, PRIORITY,
						 * empty DATA per second;
						 * default 200 */
		int64_t	 reset_burst;		/* RST_STREAM bucket: 1000 */
		int64_t	 reset_rate;		/* refilled per second: 33 */
		int64_t	 send_timeout_ms;	/* a stream with bytes queued
						 * and no window: 60000 */
		int64_t	 max_connection_body_bytes; /* request bodies held
						 * at once: 67108864 */
	}	 http2;
};

struct conf {
	int			 refs;		/* atomic; see conf_ref() */
	char			*path;		/* file it was loaded from */
	char			*hop;		/* default: host name */
	int			 workers;	/* resolved: >= 1 */
	struct conf_listen	*listen;
	size_t			 nlisten;

	int			 admin_enabled;
	struct conf_listen	 admin;		/* address only, no TLS */
	char			*admin_token;	/* NULL: no token */

	struct conf_upstream	*upstreams;
	size_t			 nupstreams;
	struct conf_route	*routes;
	size_t			 nroutes;

	struct conf_client_key	*client_keys;	/* NULL: any client may pass */
	size_t			 nclient_keys;
	int			 clients_enabled;

	char			*peers_secret;	/* NULL: address-checked notes */
	int64_t			 peers_note_wait_ms;	/* default 250 */

	char			*cancel_api_prefix;	/* default "/v1/cancel/" */

	int			 cluster_enabled;
	char			*cluster_redis_address;	/* "host:port" */
	char			*cluster_redis_password;
	char			*cluster_redis_channel;	/* default "cancelproxy:cancel" */

	struct conf_limits	 limits;
	int64_t			 shutdown_drain_ms;	/* default 30000 */

	char			*user;		/* drop to this user when root */
	char			*log_path;	/* default "-" */
	char			*log_level;	/* default "info" */

	/* Every secret value seen (set_headers values, tokens, passwords),
	 * for log redaction. */
	char			**secrets;
	size_t			 nsecrets;
};

/*
 * Loads and validates FILE. On error returns -1 and writes one line to err
 * naming the file and the JSON path: "conf.json: upstreams.openai.url: ...".
 */
int			 conf_load(const char *file, struct conf **out,
			    char *err, size_t errlen);
/* Takes a reference (thread safe). */
struct conf		*conf_ref(struct conf *c);
/* Drops a reference; the last one frees the config. */
void			 conf_unref(struct conf *c);

/* The upstream called name, or NULL. */
struct conf_upstream	*conf_upstream_find(const struct conf *c,
			    const char *name);
/* First route whose prefix matches path and, if it lists models, whose
 * patterns match model (model may be NULL: such routes do not match). */
const struct conf_route	*conf_route_find(const struct conf *c,
			    const char *path, size_t pathlen,
			    const char *model);
/* The CORS policy for a request that cannot be routed by model (a
 * preflight has no body): the first route with "cors" whose prefix matches
 * path; for the cancel API's path, else the first route with "cors". */
const struct conf_cors	*conf_cors_find(const struct conf *c,
			    const char *path, size_t pathlen);
/* Whether origin (origin_len bytes, as a browser sends it) is allowed by
 * cors; 1 or 0. */
int			 conf_cors_origin_allowed(const struct conf_cors *cors,
			    const char *origin, size_t origin_len);
/* Glob match with '*', '?' and '[...]' (fnmatch semantics, no flags);
 * returns 1 on a match, 0 otherwise. */
int			 conf_glob_match(const char *pattern, const char *s);
/* Parses "1.2.3.4:80", "[::1]:80", "*:80" (any IPv4), "localhost:80"
 * (127.0.0.1), port 0 allowed; returns 0 or -1. */
int			 conf_parse_address(const char *s,
			    struct sockaddr_storage *ss, socklen_t *len);

#endif
