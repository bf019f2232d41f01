/* test_conf: the config loader: good files, every default, every class of
 * error with its exact message, routing, globs and addresses. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "conf/conf.h"

/* The smallest valid config, in pieces that tests swap out. Configs in
 * this file are written with ' for " (see conf_file_q()). */
#define LISTEN	"'listen': [{'address': '127.0.0.1:0'}]"
#define UPS	"'upstreams': {'u': {'url': 'http://127.0.0.1:9'}}"
#define ROUTES	"'routes': [{'upstream': 'u'}]"
#define ROUTES_A "'routes': [{'upstream': 'a'}]"
#define BASE	LISTEN ", " UPS ", " ROUTES
#define WITH(x)	"{" BASE ", " x "}"
/* A config whose one upstream "u" has the extra members x. */
#define UP(x)	"{" LISTEN ", 'upstreams': {'u': {'url': " \
		"'http://127.0.0.1:9', " x "}}, " ROUTES "}"
/* A config whose one route is {x} (upstreams "u" and "v" exist). */
#define ROUTE(x) "{" LISTEN ", 'upstreams': {'u': {'url': " \
		"'http://127.0.0.1:9'}, 'v': {'url': 'http://127.0.0.1:10'}}, " \
		"'routes': [{" x "}]}"

#define SHA_TEST "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_OTHER "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

static char	 tmp_path[64];

/* Writes text to a new file in /tmp; returns its name. */
static const char *
conf_file(const char *text)
{
	size_t	 len = strlen(text), off = 0;
	ssize_t	 n;
	int	 fd;

	strcpy(tmp_path, "/tmp/test_conf_XXXXXX");
	fd = mkstemp(tmp_path);
	cr_assert_neq(fd, -1, "mkstemp");
	while (off < len) {
		n = write(fd, text + off, len - off);
		cr_assert_gt(n, 0, "write");
		off += (size_t)n;
	}
	close(fd);
	return tmp_path;
}

/* Like conf_file(), with every ' turned into ". */
static const char *
conf_file_q(const char *text)
{
	char		*s = strdup(text), *p;
	const char	*path;

	cr_assert_not_null(s);
	for (p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	path = conf_file(s);
	free(s);
	return path;
}

static struct conf *
load_path(const char *path)
{
	struct conf	*c = NULL;
	char		 err[512];
	int		 r;

	err[0] = '\0';
	r = conf_load(path, &c, err, sizeof(err));
	unlink(path);
	cr_assert_eq(r, 0, "conf_load failed: %s", err);
	cr_assert_not_null(c);
	cr_assert_str_eq(err, "");
	return c;
}

static void
expect_path_error(const char *path, const char *msg)
{
	struct conf	*c = (struct conf *)0x1;
	char		 err[512], want[512];
	int		 r;

	r = conf_load(path, &c, err, sizeof(err));
	unlink(path);
	snprintf(want, sizeof(want), "%s: %s", path, msg);
	cr_assert_eq(r, -1, "loaded, but wanted \"%s\"", want);
	cr_assert_null(c, "out must be NULL on error");
	cr_assert_str_eq(err, want);
}

/* Loads a config written with ' for "; it must be valid. */
static struct conf *
load_q(const char *text)
{
	return load_path(conf_file_q(text));
}

/* Loads a config written with ' for "; it must fail with exactly msg. */
static void
expect_q(const char *text, const char *msg)
{
	expect_path_error(conf_file_q(text), msg);
}

/* Loads exactly text; it must fail with exactly msg. */
static void
expect_raw(const char *text, const char *msg)
{
	expect_path_error(conf_file(text), msg);
}

static int
has_secret(const struct conf *c, const char *s)
{
	size_t	 i;

	for (i = 0; i < c->nsecrets; i++)
		if (strcmp(c->secrets[i], s) == 0)
			return 1;
	return 0;
}

static char	 cert_path[64], key_path[64];

static void
make_tls_files(void)
{
	int	 fd;

	strcpy(cert_path, "/tmp/test_conf_cert_XXXXXX");
	strcpy(key_path, "/tmp/test_conf_key_XXXXXX");
	cr_assert_neq(fd = mkstemp(cert_path), -1);
	close(fd);
	cr_assert_neq(fd = mkstemp(key_path), -1);
	close(fd);
	setenv("CP_TEST_CERT", cert_path, 1);
	setenv("CP_TEST_KEY", key_path, 1);
}

static void
remove_tls_files(void)
{
	unlink(cert_path);
	unlink(key_path);
}

/* The example of DESIGN.md section 3, with the elided key completed, the
 * "backup" upstream it falls back to, and the TLS files in /tmp. */
static const char full_example[] =
"{\n"
"  \"hop\": \"edge\",                 // this proxy's name in cancel paths (default: host name)\n"
"  \"workers\": 0,                  // event-loop threads, 0 = one per core\n"
"  \"listen\": [\n"
"    { \"address\": \"127.0.0.1:8080\" },\n"
"    { \"address\": \"[::]:8443\", \"tls\": { \"cert\": \"${CP_TEST_CERT}\", \"key\": \"${CP_TEST_KEY}\" } }\n"
"  ],\n"
"  \"admin\": { \"address\": \"127.0.0.1:9901\", \"token\": \"${CANCELPROXY_ADMIN_TOKEN}\" },\n"
"  \"upstreams\": {\n"
"    \"openai\": {\n"
"      \"url\": \"https://api.openai.com\",          // scheme://host[:port][/base-path]\n"
"      \"tls\": { \"verify\": true, \"ca_file\": null, \"server_name\": null },\n"
"      \"set_headers\": { \"Authorization\": \"Bearer ${OPENAI_API_KEY}\" },\n"
"      \"peer\": false,                            // true: the upstream is another cancelproxy\n"
"      \"timeouts_ms\": { \"connect\": 5000, \"first_byte\": 120000, \"idle\": 60000, \"total\": 0 },\n"
"      \"keepalive\": 32                           // idle connections kept per worker\n"
"    },\n"
"    \"backup\": { \"url\": \"http://10.0.0.7:8000/openai/\", \"peer\": true,\n"
"                \"timeouts_ms\": { \"first_byte\": 30000 }, \"keepalive\": 4 }\n"
"  },\n"
"  \"routes\": [\n"
"    { \"path_prefix\": \"/v1/\", \"models\": [\"gpt-*\"], \"upstream\": \"openai\",\n"
"      \"fallback\": [\"backup\"],              // tried in order, only before any byte reached the client\n"
"      \"on_client_disconnect\": \"cancel\",    // or \"drain\": read on (bounded) to learn usage, then close\n"
"      \"stream_usage\": \"inject\" }           // ask OpenAI-style upstreams for usage; hide it from\n"
"  ],                                       // clients that did not ask for it\n"
"  \"clients\": {                             // optional: without it, any client may pass\n"
"    \"keys\": [ { \"name\": \"team-a\", \"key_sha256\": \"" SHA_TEST "\", \"routes\": [\"*\"], \"max_streams\": 20 } ]\n"
"  },\n"
"  \"peers\": { \"secret\": \"${CANCELPROXY_PEER_SECRET}\", \"note_wait_ms\": 250 },  // cancel notes between hops\n"
"  \"cancel_api\": { \"path_prefix\": \"/v1/cancel/\" },   // POST /v1/cancel/{request_id}\n"
"  \"cluster\": { \"redis\": { \"address\": \"127.0.0.1:6379\", \"password\": null,\n"
"                          \"channel\": \"cancelproxy:cancel\" } },   // optional\n"
"  \"limits\": { \"max_connections\": 10000, \"max_header_bytes\": 32768,\n"
"              \"max_body_bytes\": 8388608, \"header_timeout_ms\": 10000 },\n"
"  \"shutdown\": { \"drain_ms\": 30000 },   // SIGTERM: let streams finish this long, then cancel them\n"
"  \"log\": { \"path\": \"-\", \"level\": \"info\" }\n"
"}\n";

static long
expected_workers(void)
{
	long	 n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n > 64 ? 64 : n;
}

Test(conf, full_example)
{
	struct conf		*c;
	struct conf_upstream	*o, *b;
	const struct conf_route	*r;
	struct sockaddr_in6	*sin6;
	struct sockaddr_in	*sin;

	make_tls_files();
	setenv("CANCELPROXY_ADMIN_TOKEN", "admin-token-1", 1);
	setenv("OPENAI_API_KEY", "sk-test-123", 1);
	setenv("CANCELPROXY_PEER_SECRET", "peer-secret-1", 1);
	c = load_path(conf_file(full_example));
	remove_tls_files();

	cr_assert_eq(c->refs, 1);
	cr_assert_str_eq(c->hop, "edge");
	cr_assert_eq(c->workers, expected_workers());

	cr_assert_eq(c->nlisten, 2);
	cr_assert_str_eq(c->listen[0].address, "127.0.0.1:8080");
	sin = (struct sockaddr_in *)&c->listen[0].addr;
	cr_assert_eq(sin->sin_family, AF_INET);
	cr_assert_eq(ntohs(sin->sin_port), 8080);
	cr_assert_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	cr_assert_eq(c->listen[0].addrlen, sizeof(struct sockaddr_in));
	cr_assert_null(c->listen[0].tls_cert);
	cr_assert_null(c->listen[0].tls_key);
	sin6 = (struct sockaddr_in6 *)&c->listen[1].addr;
	cr_assert_eq(sin6->sin6_family, AF_INET6);
	cr_assert_eq(ntohs(sin6->sin6_port), 8443);
	cr_assert(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
	cr_assert_eq(c->listen[1].addrlen, sizeof(struct sockaddr_in6));
	cr_assert_str_eq(c->listen[1].tls_cert, cert_path);
	cr_assert_str_eq(c->listen[1].tls_key, key_path);

	cr_assert_eq(c->admin_enabled, 1);
	cr_assert_str_eq(c->admin.address, "127.0.0.1:9901");
	sin = (struct sockaddr_in *)&c->admin.addr;
	cr_assert_eq(ntohs(sin->sin_port), 9901);
	cr_assert_str_eq(c->admin_token, "admin-token-1");

	cr_assert_eq(c->nupstreams, 2);
	o = conf_upstream_find(c, "openai");
	b = conf_upstream_find(c, "backup");
	cr_assert_eq(o, &c->upstreams[0], "upstreams keep file order");
	cr_assert_eq(b, &c->upstreams[1]);
	cr_assert_null(conf_upstream_find(c, "OpenAI"));
	cr_assert_str_eq(o->name, "openai");
	cr_assert_str_eq(o->url, "https://api.openai.com");
	cr_assert_eq(o->tls, 1);
	cr_assert_str_eq(o->host, "api.openai.com");
	cr_assert_eq(o->port, 443);
	cr_assert_str_eq(o->host_header, "api.openai.com");
	cr_assert_str_eq(o->base_path, "");
	cr_assert_eq(o->tls_verify, 1);
	cr_assert_null(o->tls_ca_file);
	cr_assert_null(o->tls_server_name);
	cr_assert_eq(o->nset_headers, 1);
	cr_assert_str_eq(o->set_headers[0].name, "Authorization");
	cr_assert_str_eq(o->set_headers[0].value, "Bearer sk-test-123");
	cr_assert_eq(o->peer, 0);
	cr_assert_eq(o->timeouts.connect_ms, 5000);
	cr_assert_eq(o->timeouts.first_byte_ms, 120000);
	cr_assert_eq(o->timeouts.idle_ms, 60000);
	cr_assert_eq(o->timeouts.total_ms, 0);
	cr_assert_eq(o->keepalive, 32);

	cr_assert_eq(b->tls, 0);
	cr_assert_str_eq(b->host, "10.0.0.7");
	cr_assert_eq(b->port, 8000);
	cr_assert_str_eq(b->host_header, "10.0.0.7:8000");
	cr_assert_str_eq(b->base_path, "/openai");
	cr_assert_eq(b->peer, 1);
	cr_assert_eq(b->timeouts.connect_ms, 5000);
	cr_assert_eq(b->timeouts.first_byte_ms, 30000);
	cr_assert_eq(b->timeouts.idle_ms, 60000);
	cr_assert_eq(b->keepalive, 4);

	cr_assert_eq(c->nroutes, 1);
	r = &c->routes[0];
	cr_assert_str_eq(r->path_prefix, "/v1/");
	cr_assert_eq(r->nmodels, 1);
	cr_assert_str_eq(r->models[0], "gpt-*");
	cr_assert_str_eq(r->upstream_name, "openai");
	cr_assert_eq(r->upstream, o);
	cr_assert_eq(r->nfallback, 1);
	cr_assert_eq(r->fallback[0], b);
	cr_assert_eq(r->on_client_disconnect, CONF_DISCONNECT_CANCEL);
	cr_assert_eq(r->stream_usage, CONF_STREAM_USAGE_INJECT);

	cr_assert_eq(c->clients_enabled, 1);
	cr_assert_eq(c->nclient_keys, 1);
	cr_assert_str_eq(c->client_keys[0].name, "team-a");
	cr_assert_eq(c->client_keys[0].key_sha256[0], 0x9f);
	cr_assert_eq(c->client_keys[0].key_sha256[1], 0x86);
	cr_assert_eq(c->client_keys[0].key_sha256[31], 0x08);
	cr_assert_eq(c->client_keys[0].nroutes, 1);
	cr_assert_str_eq(c->client_keys[0].routes[0], "*");
	cr_assert_eq(c->client_keys[0].max_streams, 20);

	cr_assert_str_eq(c->peers_secret, "peer-secret-1");
	cr_assert_eq(c->peers_note_wait_ms, 250);
	cr_assert_str_eq(c->cancel_api_prefix, "/v1/cancel/");
	cr_assert_eq(c->cluster_enabled, 1);
	cr_assert_str_eq(c->cluster_redis_address, "127.0.0.1:6379");
	cr_assert_null(c->cluster_redis_password);
	cr_assert_str_eq(c->cluster_redis_channel, "cancelproxy:cancel");
	cr_assert_eq(c->limits.max_connections, 10000);
	cr_assert_eq(c->limits.max_header_bytes, 32768);
	cr_assert_eq(c->limits.max_header_fields, 100);
	cr_assert_eq(c->limits.max_body_bytes, 8388608);
	cr_assert_eq(c->limits.header_timeout_ms, 10000);
	cr_assert_eq(c->listen[0].forwarded, CONF_FORWARDED_APPEND);
	cr_assert_eq(c->limits.http2.max_concurrent_streams, 128);
	cr_assert_eq(c->limits.http2.max_header_fields, 100);
	cr_assert_eq(c->limits.http2.max_control_frames, 200);
	cr_assert_eq(c->limits.http2.reset_burst, 1000);
	cr_assert_eq(c->limits.http2.reset_rate, 33);
	cr_assert_eq(c->limits.http2.send_timeout_ms, 60000);
	cr_assert_eq(c->limits.http2.max_connection_body_bytes, 67108864);
	cr_assert_eq(c->listen[0].protocols, CONF_PROTO_H1 | CONF_PROTO_H2);
	cr_assert_eq(c->shutdown_drain_ms, 30000);
	cr_assert_str_eq(c->log_path, "-");
	cr_assert_str_eq(c->log_level, "info");

	cr_assert(has_secret(c, "Bearer sk-test-123"));
	cr_assert(has_secret(c, "sk-test-123"), "the bare ${} value too");
	cr_assert(has_secret(c, "admin-token-1"));
	cr_assert(has_secret(c, "peer-secret-1"));
	cr_assert_eq(c->nsecrets, 4);
	cr_assert(!has_secret(c, "https://api.openai.com"));

	r = conf_route_find(c, "/v1/chat/completions", 20, "gpt-4o");
	cr_assert_eq(r, &c->routes[0]);
	cr_assert_null(conf_route_find(c, "/v1/chat/completions", 20,
	    "claude-3"));
	conf_unref(c);
}

Test(conf, every_default)
{
	struct conf		*c;
	struct conf_upstream	*u;
	struct conf_route	*r;
	char			 host[256];
	size_t			 i;

	c = load_q("{" BASE "}");
	memset(host, 0, sizeof(host));
	cr_assert_eq(gethostname(host, sizeof(host) - 1), 0);
	for (i = 0; host[i] != '\0'; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789._:-", host[i]) == NULL)
			break;
	if (host[i] == '\0' && i > 0 && i <= 63)
		cr_assert_str_eq(c->hop, host);
	else
		cr_assert_gt(strlen(c->hop), 0);
	cr_assert_eq(c->workers, expected_workers());
	cr_assert_geq(c->workers, 1);
	cr_assert_leq(c->workers, 64);
	cr_assert_eq(c->nlisten, 1);
	cr_assert_null(c->listen[0].tls_cert);
	cr_assert_eq(c->admin_enabled, 0);
	cr_assert_null(c->admin.address);
	cr_assert_null(c->admin_token);

	u = &c->upstreams[0];
	cr_assert_str_eq(u->name, "u");
	cr_assert_eq(u->tls, 0);
	cr_assert_str_eq(u->host, "127.0.0.1");
	cr_assert_eq(u->port, 9);
	cr_assert_str_eq(u->host_header, "127.0.0.1:9");
	cr_assert_str_eq(u->base_path, "");
	cr_assert_eq(u->tls_verify, 1);
	cr_assert_null(u->tls_ca_file);
	cr_assert_null(u->tls_server_name);
	cr_assert_null(u->set_headers);
	cr_assert_eq(u->nset_headers, 0);
	cr_assert_eq(u->peer, 0);
	cr_assert_eq(u->timeouts.connect_ms, 5000);
	cr_assert_eq(u->timeouts.first_byte_ms, 120000);
	cr_assert_eq(u->timeouts.idle_ms, 60000);
	cr_assert_eq(u->timeouts.total_ms, 0);
	cr_assert_eq(u->keepalive, 32);

	r = &c->routes[0];
	cr_assert_str_eq(r->path_prefix, "/");
	cr_assert_null(r->models);
	cr_assert_eq(r->nmodels, 0);
	cr_assert_eq(r->upstream, u);
	cr_assert_null(r->fallback);
	cr_assert_eq(r->nfallback, 0);
	cr_assert_eq(r->on_client_disconnect, CONF_DISCONNECT_CANCEL);
	cr_assert_eq(r->stream_usage, CONF_STREAM_USAGE_PASS);

	cr_assert_eq(c->clients_enabled, 0);
	cr_assert_null(c->client_keys);
	cr_assert_eq(c->nclient_keys, 0);
	cr_assert_null(c->peers_secret);
	cr_assert_eq(c->peers_note_wait_ms, 250);
	cr_assert_str_eq(c->cancel_api_prefix, "/v1/cancel/");
	cr_assert_eq(c->cluster_enabled, 0);
	cr_assert_null(c->cluster_redis_address);
	cr_assert_null(c->cluster_redis_password);
	cr_assert_str_eq(c->cluster_redis_channel, "cancelproxy:cancel");
	cr_assert_eq(c->limits.max_connections, 10000);
	cr_assert_eq(c->limits.max_header_bytes, 32768);
	cr_assert_eq(c->limits.max_body_bytes, 8388608);
	cr_assert_eq(c->limits.header_timeout_ms, 10000);
	cr_assert_eq(c->shutdown_drain_ms, 30000);
	cr_assert_str_eq(c->log_path, "-");
	cr_assert_str_eq(c->log_level, "info");
	cr_assert_eq(c->nsecrets, 0);
	cr_assert_null(c->secrets);
	cr_assert_eq(c->refs, 1);
	conf_unref(c);
}

Test(conf, path_is_kept)
{
	struct conf	*c;
	const char	*p = conf_file_q("{" BASE "}");
	char		 want[64];

	strcpy(want, p);
	c = load_path(p);
	cr_assert_str_eq(c->path, want);
	conf_unref(c);
}

Test(conf, null_sections_are_absent)
{
	struct conf	*c;

	c = load_q(WITH("'admin': null, 'clients': null, 'peers': null, "
	    "'cancel_api': null, 'cluster': null, 'limits': null, "
	    "'shutdown': null, 'log': null"));
	cr_assert_eq(c->admin_enabled, 0);
	cr_assert_eq(c->clients_enabled, 0);
	cr_assert_eq(c->cluster_enabled, 0);
	cr_assert_eq(c->peers_note_wait_ms, 250);
	cr_assert_eq(c->limits.max_connections, 10000);
	cr_assert_str_eq(c->log_level, "info");
	conf_unref(c);

	c = load_q(UP("'tls': null, 'set_headers': null, 'timeouts_ms': null"));
	cr_assert_eq(c->upstreams[0].tls_verify, 1);
	cr_assert_eq(c->upstreams[0].timeouts.idle_ms, 60000);
	conf_unref(c);
}

Test(conf, explicit_values)
{
	struct conf		*c;
	struct conf_upstream	*u;

	c = load_q(WITH("'workers': 3, 'hop': 'core-1.eu:a_b', "
	    "'peers': {'note_wait_ms': 0}, "
	    "'cancel_api': {'path_prefix': '/cancel/'}, "
	    "'cluster': {'redis': {'address': 'redis.local:6380', "
	    "'password': 'pw-redis', 'channel': 'c1'}}, "
	    "'limits': {'max_connections': 1, 'max_header_bytes': 1024, "
	    "'max_body_bytes': 0, 'header_timeout_ms': 1, "
	    "'max_header_fields': 7}, "
	    "'shutdown': {'drain_ms': 0}, "
	    "'log': {'path': '/var/log/cp.log', 'level': 'debug'}"));
	cr_assert_eq(c->workers, 3);
	cr_assert_str_eq(c->hop, "core-1.eu:a_b");
	cr_assert_eq(c->peers_note_wait_ms, 0);
	cr_assert_str_eq(c->cancel_api_prefix, "/cancel/");
	cr_assert_eq(c->cluster_enabled, 1);
	cr_assert_str_eq(c->cluster_redis_address, "redis.local:6380");
	cr_assert_str_eq(c->cluster_redis_password, "pw-redis");
	cr_assert_str_eq(c->cluster_redis_channel, "c1");
	cr_assert(has_secret(c, "pw-redis"));
	cr_assert_eq(c->limits.max_connections, 1);
	cr_assert_eq(c->limits.max_header_bytes, 1024);
	cr_assert_eq(c->limits.max_body_bytes, 0);
	cr_assert_eq(c->limits.header_timeout_ms, 1);
	cr_assert_eq(c->limits.max_header_fields, 7);
	cr_assert_eq(c->shutdown_drain_ms, 0);
	cr_assert_str_eq(c->log_path, "/var/log/cp.log");
	cr_assert_str_eq(c->log_level, "debug");
	conf_unref(c);

	c = load_q(UP("'tls': {'verify': false, 'server_name': 'api.example'}, "
	    "'peer': true, 'keepalive': 0, 'timeouts_ms': {'connect': 1, "
	    "'first_byte': 2, 'idle': 3, 'total': 2147483647}"));
	u = &c->upstreams[0];
	cr_assert_eq(u->tls_verify, 0);
	cr_assert_str_eq(u->tls_server_name, "api.example");
	cr_assert_eq(u->peer, 1);
	cr_assert_eq(u->keepalive, 0);
	cr_assert_eq(u->timeouts.connect_ms, 1);
	cr_assert_eq(u->timeouts.first_byte_ms, 2);
	cr_assert_eq(u->timeouts.idle_ms, 3);
	cr_assert_eq(u->timeouts.total_ms, 2147483647);
	conf_unref(c);

	c = load_q(WITH("'workers': 64, 'limits': {'max_body_bytes': 1e6}"));
	cr_assert_eq(c->workers, 64);
	cr_assert_eq(c->limits.max_body_bytes, 1000000, "1e6 is an integer");
	conf_unref(c);
}

Test(conf, route_options)
{
	struct conf		*c;
	const struct conf_route	*r;

	c = load_q(ROUTE("'path_prefix': '/v1/', 'models': ['a*', 'b?'], "
	    "'upstream': 'u', 'fallback': ['v', 'u'], "
	    "'on_client_disconnect': 'drain', 'stream_usage': 'pass'"));
	r = &c->routes[0];
	cr_assert_eq(r->nmodels, 2);
	cr_assert_str_eq(r->models[1], "b?");
	cr_assert_eq(r->nfallback, 2);
	cr_assert_eq(r->fallback[0], conf_upstream_find(c, "v"));
	cr_assert_eq(r->fallback[1], conf_upstream_find(c, "u"));
	cr_assert_eq(r->on_client_disconnect, CONF_DISCONNECT_DRAIN);
	cr_assert_eq(r->stream_usage, CONF_STREAM_USAGE_PASS);
	conf_unref(c);

	c = load_q(ROUTE("'upstream': 'u', 'fallback': []"));
	cr_assert_eq(c->routes[0].nfallback, 0);
	conf_unref(c);
}

/* Upstreams that go to the same place share pooled connections; a
 * different address, port, scheme or TLS setting keeps them apart. */
Test(conf, pool_keys)
{
	struct conf		*c;
	const struct conf_upstream *a, *b, *d, *t, *n;

	c = load_q("{" LISTEN ", 'upstreams': {"
	    "'a': {'url': 'http://127.0.0.1:9/v1'},"
	    "'b': {'url': 'http://127.0.0.1:9/other', 'peer': true},"
	    "'d': {'url': 'http://127.0.0.1:10'},"
	    "'t': {'url': 'https://127.0.0.1:9'},"
	    "'n': {'url': 'https://127.0.0.1:9', 'tls': {'verify': false}}"
	    "}, " ROUTES_A "}");
	a = conf_upstream_find(c, "a");
	b = conf_upstream_find(c, "b");
	d = conf_upstream_find(c, "d");
	t = conf_upstream_find(c, "t");
	n = conf_upstream_find(c, "n");
	cr_assert_str_eq(a->pool_key, "http://127.0.0.1:9|||1");
	cr_expect_str_eq(a->pool_key, b->pool_key);
	cr_expect_eq(a->pool_hash, b->pool_hash);
	cr_expect_str_neq(a->pool_key, d->pool_key);
	cr_expect_neq(a->pool_hash, d->pool_hash);
	cr_expect_str_neq(a->pool_key, t->pool_key);
	cr_expect_str_neq(t->pool_key, n->pool_key);
	cr_expect_neq(t->pool_hash, n->pool_hash);
	conf_unref(c);
}

Test(conf, refcount)
{
	struct conf	*c = load_q("{" BASE "}");

	cr_assert_eq(conf_ref(c), c);
	cr_assert_eq(c->refs, 2);
	conf_ref(c);
	cr_assert_eq(c->refs, 3);
	conf_unref(c);
	conf_unref(c);
	cr_assert_eq(c->refs, 1);
	cr_assert_str_eq(c->upstreams[0].name, "u", "still alive");
	conf_unref(c);		/* freed: valgrind and ASan check this */
	conf_unref(NULL);
	cr_assert_null(conf_ref(NULL));
}

Test(conf, comments)
{
	struct conf	*c;

	c = load_path(conf_file(
	    "// leading comment\n"
	    "/* block\n   over lines { \" */ {\n"
	    "  \"listen\": [{\"address\": \"127.0.0.1:0\"}], // trailing\n"
	    "  \"upstreams\": {\"u\": {/**/\"url\": \"http://h.example//x//\",\n"
	    "    \"set_headers\": {\"X-A\": \"/* kept */ // kept\",\n"
	    "                    \"X-B\": \"a\\\"//b\"}}},\n"
	    "  \"routes\": [{\"upstream\": \"u\" /* , \"bogus\": 1 */}]\n"
	    "} // no newline at the end"));
	cr_assert_str_eq(c->upstreams[0].url, "http://h.example//x//");
	cr_assert_str_eq(c->upstreams[0].base_path, "//x");
	cr_assert_str_eq(c->upstreams[0].set_headers[0].value,
	    "/* kept */ // kept");
	cr_assert_str_eq(c->upstreams[0].set_headers[1].value, "a\"//b");
	conf_unref(c);
}

Test(conf, env_expansion)
{
	struct conf		*c;
	struct conf_upstream	*u;

	setenv("CP_T_HOST", "127.0.0.5", 1);
	setenv("CP_T_PORT", "8081", 1);
	setenv("CP_T_KEY", "k-123456", 1);
	setenv("CP_T_EMPTY", "", 1);
	setenv("CP_T_MODEL", "llama-*", 1);
	c = load_q("{'listen': [{'address': '${CP_T_HOST}:${CP_T_PORT}'}], "
	    "'upstreams': {'u': {'url': 'http://${CP_T_HOST}:${CP_T_PORT}/b', "
	    "'set_headers': {'X-Key': 'pre ${CP_T_KEY} post', "
	    "'X-Lit': '$${CP_T_KEY} $5 $ {x} $$ ${CP_T_EMPTY}end'}}}, "
	    "'routes': [{'upstream': 'u', 'models': ['${CP_T_MODEL}']}]}");
	cr_assert_str_eq(c->listen[0].address, "127.0.0.5:8081");
	u = &c->upstreams[0];
	cr_assert_str_eq(u->url, "http://127.0.0.5:8081/b");
	cr_assert_str_eq(u->host_header, "127.0.0.5:8081");
	cr_assert_str_eq(u->set_headers[0].value, "pre k-123456 post");
	cr_assert_str_eq(u->set_headers[1].value,
	    "${CP_T_KEY} $5 $ {x} $$ end");
	cr_assert_str_eq(c->routes[0].models[0], "llama-*");
	cr_assert(has_secret(c, "pre k-123456 post"));
	cr_assert(has_secret(c, "k-123456"));
	cr_assert(has_secret(c, "${CP_T_KEY} $5 $ {x} $$ end"));
	cr_assert_eq(c->nsecrets, 3);
	conf_unref(c);
}

Test(conf, env_errors)
{
	unsetenv("CP_T_MISSING");
	expect_q(UP("'set_headers': {'X-Key': 'Bearer ${CP_T_MISSING}'}"),
	    "upstreams.u.set_headers.X-Key: environment variable "
	    "CP_T_MISSING is not set");
	expect_q(ROUTE("'upstream': 'u', 'models': ['a', '${CP_T_MISSING}']"),
	    "routes[0].models[1]: environment variable CP_T_MISSING is not "
	    "set");
	expect_q(WITH("'hop': 'a${CP_T_MISSING'"),
	    "hop: unterminated \"${\" (write \"$${\" for a literal \"${\")");
	expect_q(WITH("'hop': '${A-B}'"),
	    "hop: bad environment variable name \"A-B\"");
	expect_q(WITH("'hop': '${1A}'"),
	    "hop: bad environment variable name \"1A\"");
	expect_q(WITH("'hop': '${}'"), "hop: \"${}\" needs a variable name");
	/* Only strings are expanded; a number from the environment is a
	 * string and so the wrong type. */
	setenv("CP_T_N", "4", 1);
	expect_q(WITH("'workers': '${CP_T_N}'"),
	    "workers: must be an integer, not a string");
}

Test(conf, syntax_errors)
{
	expect_raw("{\n  \"workers\": 1,\n}\n", "line 2, column 15: trailing comma");
	expect_raw("{\"listen\": [1, 2, ]}", "line 1, column 17: trailing comma");
	expect_raw("{\n  \"a\": 1\n  \"b\": 2\n}",
	    "line 3, column 3: expected ',' or '}'");
	expect_raw("{\"a\": [1 2]}", "line 1, column 10: expected ',' or ']'");
	expect_raw("{\"a\" 1}", "line 1, column 6: expected ':'");
	expect_raw("{a: 1}", "line 1, column 2: expected a key in double quotes");
	expect_raw("{\"a\": tru}", "line 1, column 7: expected a value");
	expect_raw("{\"a\": }", "line 1, column 7: expected a value");
	expect_raw("{\n\t\"a\": \"abc\n\"}", "line 2, column 7: unterminated string");
	expect_raw("{\"a\": \"abc", "line 1, column 7: unterminated string");
	expect_raw("{\n\n  /* open", "line 3, column 3: unterminated /* comment");
	expect_raw("{\"a\": [", "line 1, column 8: unexpected end of file");
	expect_raw("", "line 1, column 1: no JSON value (the file is empty)");
	expect_raw("// nothing\n", "line 2, column 1: no JSON value (the file "
	    "is empty)");
	expect_raw("{} {}", "line 1, column 4: unexpected text after the "
	    "top-level value");
	expect_raw("{\"a\": 01}", "line 1, column 7: bad number (leading zero)");
	expect_raw("{\"a\": 1.}", "line 1, column 7: bad number");
	expect_raw("{\"a\": -}", "line 1, column 7: bad number");
	expect_raw("{\"a\": 1e}", "line 1, column 7: bad number");
	expect_raw("{\"a\": \"x\\q\"}", "line 1, column 9: bad escape in a string");
	expect_raw("{\"a\": \"\\u12G4\"}", "line 1, column 8: bad \\u escape");
	expect_raw("{\"a\": \"x\\u0000\"}",
	    "line 1, column 9: \\u0000 is not allowed in a string");
	expect_raw("{\"a\": \"\\ud800x\"}",
	    "line 1, column 8: unpaired UTF-16 surrogate in \\u escape");
	expect_raw("{\"a\": \"\\udc00\"}",
	    "line 1, column 8: unpaired UTF-16 surrogate in \\u escape");
	expect_raw("{\"a\": \"\x01\"}", "line 1, column 8: control character "
	    "in a string (write it as an escape)");
	/* Columns count characters: "é" is two bytes, one column. */
	expect_raw("{\"\xc3\xa9\": x}", "line 1, column 7: expected a value");
	expect_raw("[]", "the top level must be an object, not an array");
	expect_raw("\"x\"", "the top level must be an object, not a string");
	expect_raw("{\"a\": 1 / 2}", "line 1, column 9: expected ',' or '}'");
	expect_raw("{\"a\": 123456789012345678901234567890123456789012345678901"
	    "234567890123456}", "line 1, column 7: number too long");
}

Test(conf, syntax_nesting_limit)
{
	char	 text[1024];
	size_t	 i, n = 0;

	n += (size_t)snprintf(text, sizeof(text), "{\"a\": ");
	for (i = 0; i < 128; i++)
		text[n++] = '[';
	text[n] = '\0';
	/* The 129th level (the object is the first) is one too many. */
	expect_raw(text, "line 1, column 134: nested more than 128 deep");
}

Test(conf, syntax_bom_and_valid_surrogates)
{
	struct conf	*c;

	c = load_path(conf_file("\xef\xbb\xbf{\"listen\": [{\"address\": "
	    "\"127.0.0.1:0\"}], \"upstreams\": {\"u\": {\"url\": \"http://h\", "
	    "\"set_headers\": {\"X-E\": \"\\ud83d\\ude00\\u00e9\\/\"}}}, "
	    "\"routes\": [{\"upstream\": \"u\"}]}"));
	cr_assert_str_eq(c->upstreams[0].set_headers[0].value,
	    "\xf0\x9f\x98\x80\xc3\xa9/");
	conf_unref(c);
	expect_raw("\xef\xbb\xbf{,}", "line 1, column 2: expected a key in "
	    "double quotes");
}

Test(conf, file_errors)
{
	expect_path_error("/nonexistent/conf.json",
	    "cannot open: No such file or directory");
	expect_path_error("/tmp", "is a directory");
}

Test(conf, unknown_keys)
{
	expect_q(WITH("'bogus': 1"), "bogus: unknown key");
	expect_q(WITH("'worker': 1"),
	    "worker: unknown key (did you mean \"workers\"?)");
	expect_q("{'listen': [{'address': '127.0.0.1:0', 'port': 80}], "
	    UPS ", " ROUTES "}", "listen[0].port: unknown key");
	expect_q("{'listen': [{'address': '127.0.0.1:0'}, {'address': "
	    "'127.0.0.1:0', 'tls': {'cert': '/dev/null', 'key': '/dev/null', "
	    "'ca': 'x'}}], " UPS ", " ROUTES "}",
	    "listen[1].tls.ca: unknown key");
	expect_q(WITH("'admin': {'address': '127.0.0.1:0', 'tls': {}}"),
	    "admin.tls: unknown key");
	expect_q(UP("'timeout': 1"),
	    "upstreams.u.timeout: unknown key (did you mean \"timeouts_ms\"?)");
	expect_q(UP("'headers': {}"), "upstreams.u.headers: unknown key");
	expect_q(UP("'timeouts_ms': {'idel': 1}"),
	    "upstreams.u.timeouts_ms.idel: unknown key (did you mean "
	    "\"idle\"?)");
	expect_q(UP("'tls': {'verfy': true}"),
	    "upstreams.u.tls.verfy: unknown key (did you mean \"verify\"?)");
	expect_q(ROUTE("'upstream': 'u', 'model': ['x']"),
	    "routes[0].model: unknown key (did you mean \"models\"?)");
	expect_q(WITH("'clients': {'keys': [{'name': 'a', 'key_sha256': '"
	    SHA_TEST "', 'nme': 1}]}"), "clients.keys[0].nme: unknown key "
	    "(did you mean \"name\"?)");
	expect_q(WITH("'clients': {'keys': [], 'x': 1}"),
	    "clients.x: unknown key");
	expect_q(WITH("'cluster': {'redis': {'address': 'r:1', 'db': 0}}"),
	    "cluster.redis.db: unknown key");
	expect_q(WITH("'peers': {'secret': 'abcd', 'Secret': 'x'}"),
	    "peers.Secret: unknown key (did you mean \"secret\"?)");
	expect_q(WITH("'cancel_api': {'prefix': '/c/'}"),
	    "cancel_api.prefix: unknown key");
	expect_q(WITH("'limits': {'max_conns': 1}"),
	    "limits.max_conns: unknown key");
	expect_q(WITH("'shutdown': {'drain': 1}"),
	    "shutdown.drain: unknown key (did you mean \"drain_ms\"?)");
	expect_q(WITH("'log': {'file': '-'}"), "log.file: unknown key");
	/* Keys that cannot be written plainly in a path are quoted. */
	expect_q(WITH("'a.b': 1"), "[\"a.b\"]: unknown key");
	expect_raw("{\"\\u0001 x\": 1}", "[\"\\x01 x\"]: unknown key");
}

Test(conf, duplicate_keys)
{
	expect_q(WITH("'workers': 1, 'workers': 2"), "workers: duplicate key");
	expect_q("{" LISTEN ", 'upstreams': {'u': {'url': 'http://a'}, "
	    "'u': {'url': 'http://b'}}, " ROUTES "}",
	    "upstreams.u: duplicate key");
	expect_q(UP("'set_headers': {'X-A': '1', 'x-a': '2'}"),
	    "upstreams.u.set_headers.x-a: duplicate header (names ignore "
	    "case)");
	expect_q(UP("'url': 'http://b'"), "upstreams.u.url: duplicate key");
}

Test(conf, wrong_types)
{
	expect_q(WITH("'workers': '4'"),
	    "workers: must be an integer, not a string");
	expect_q(WITH("'workers': 1.5"), "workers: must be an integer");
	expect_q(WITH("'hop': null"), "hop: must be a string, not null");
	expect_q(WITH("'hop': 7"), "hop: must be a string, not a number");
	expect_q("{'listen': {}, " UPS ", " ROUTES "}",
	    "listen: must be an array, not an object");
	expect_q("{'listen': ['127.0.0.1:0'], " UPS ", " ROUTES "}",
	    "listen[0]: must be an object, not a string");
	expect_q("{'listen': [{'address': 8080}], " UPS ", " ROUTES "}",
	    "listen[0].address: must be a string, not a number");
	expect_q("{" LISTEN ", 'upstreams': [], " ROUTES "}",
	    "upstreams: must be an object, not an array");
	expect_q("{" LISTEN ", 'upstreams': {'u': 'http://x'}, " ROUTES "}",
	    "upstreams.u: must be an object, not a string");
	expect_q(UP("'peer': 'yes'"),
	    "upstreams.u.peer: must be true or false, not a string");
	expect_q(UP("'tls': {'verify': 1}"),
	    "upstreams.u.tls.verify: must be true or false, not a number");
	expect_q(UP("'tls': true"),
	    "upstreams.u.tls: must be an object, not a boolean");
	expect_q(UP("'timeouts_ms': 5"),
	    "upstreams.u.timeouts_ms: must be an object, not a number");
	expect_q(UP("'set_headers': {'X-A': 1}"),
	    "upstreams.u.set_headers.X-A: must be a string, not a number");
	expect_q(UP("'set_headers': ['X-A']"),
	    "upstreams.u.set_headers: must be an object, not an array");
	expect_q(UP("'keepalive': true"),
	    "upstreams.u.keepalive: must be an integer, not a boolean");
	expect_q("{" LISTEN ", 'upstreams': {'u': {'url': 5}}, " ROUTES "}",
	    "upstreams.u.url: must be a string, not a number");
	expect_q("{" LISTEN ", " UPS ", 'routes': {}}",
	    "routes: must be an array, not an object");
	expect_q(ROUTE("'upstream': 'u', 'models': 'gpt'"),
	    "routes[0].models: must be an array, not a string");
	expect_q(ROUTE("'upstream': 'u', 'models': [1]"),
	    "routes[0].models[0]: must be a string, not a number");
	expect_q(ROUTE("'upstream': ['u']"),
	    "routes[0].upstream: must be a string, not an array");
	expect_q(ROUTE("'upstream': 'u', 'fallback': 'v'"),
	    "routes[0].fallback: must be an array, not a string");
	expect_q(ROUTE("'upstream': 'u', 'fallback': [null]"),
	    "routes[0].fallback[0]: must be a string, not null");
	expect_q(ROUTE("'upstream': 'u', 'stream_usage': true"),
	    "routes[0].stream_usage: must be a string, not a boolean");
	expect_q(WITH("'admin': '127.0.0.1:1'"),
	    "admin: must be an object, not a string");
	expect_q(WITH("'clients': {'keys': {}}"),
	    "clients.keys: must be an array, not an object");
	expect_q(WITH("'clients': {'keys': [{'name': 'a', 'key_sha256': 5}]}"),
	    "clients.keys[0].key_sha256: must be a string, not a number");
	expect_q(WITH("'peers': {'secret': 5}"),
	    "peers.secret: must be a string, not a number");
	expect_q(WITH("'cluster': {'redis': null}"),
	    "cluster.redis: must be an object, not null");
	expect_q(WITH("'limits': []"), "limits: must be an object, not an array");
	expect_q(WITH("'limits': {'max_body_bytes': '1'}"),
	    "limits.max_body_bytes: must be an integer, not a string");
	expect_q(WITH("'log': {'level': 1}"),
	    "log.level: must be a string, not a number");
}

Test(conf, bad_values)
{
	expect_q("{" LISTEN ", 'upstreams': {'openai': {'url': "
	    "'https://api.openai.com', 'timeouts_ms': {'idle': -1}}}, "
	    "'routes': [{'upstream': 'openai'}]}",
	    "upstreams.openai.timeouts_ms.idle: must be >= 0");
	expect_q(UP("'timeouts_ms': {'total': 2147483648}"),
	    "upstreams.u.timeouts_ms.total: must be <= 2147483647");
	expect_q(UP("'timeouts_ms': {'connect': 1e999}"),
	    "upstreams.u.timeouts_ms.connect: must be <= 2147483647");
	expect_q(UP("'keepalive': -1"), "upstreams.u.keepalive: must be >= 0");
	expect_q(UP("'keepalive': 10001"),
	    "upstreams.u.keepalive: must be <= 10000");
	expect_q(WITH("'workers': -1"), "workers: must be >= 0");
	expect_q(WITH("'workers': 65"), "workers: must be <= 64");
	expect_q(WITH("'hop': ''"), "hop: must be 1 to 63 characters of "
	    "A-Z a-z 0-9 . _ : -");
	expect_q(WITH("'hop': 'edge 1'"), "hop: must be 1 to 63 characters of "
	    "A-Z a-z 0-9 . _ : -");
	expect_q(WITH("'hop': 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaa'"),
	    "hop: must be 1 to 63 characters of A-Z a-z 0-9 . _ : -");
	expect_q(WITH("'limits': {'max_connections': 0}"),
	    "limits.max_connections: must be >= 1");
	expect_q(WITH("'limits': {'max_header_bytes': 16777217}"),
	    "limits.max_header_bytes: must be <= 16777216");
	expect_q(WITH("'limits': {'max_body_bytes': -5}"),
	    "limits.max_body_bytes: must be >= 0");
	expect_q(WITH("'limits': {'header_timeout_ms': 0}"),
	    "limits.header_timeout_ms: must be >= 1");
	expect_q(WITH("'limits': {'max_header_fields': 0}"),
	    "limits.max_header_fields: must be >= 1");
	expect_q(WITH("'limits': {'max_header_fields': 100001}"),
	    "limits.max_header_fields: must be <= 100000");
	expect_q(WITH("'peers': {'note_wait_ms': 60001}"),
	    "peers.note_wait_ms: must be <= 60000");
	expect_q(WITH("'peers': {'secret': ''}"),
	    "peers.secret: must not be empty");
	expect_q(WITH("'shutdown': {'drain_ms': -1}"),
	    "shutdown.drain_ms: must be >= 0");
	expect_q(WITH("'log': {'level': 'trace'}"),
	    "log.level: must be \"debug\", \"info\", \"warn\" or \"error\"");
	expect_q(WITH("'log': {'path': ''}"), "log.path: must not be empty");
	expect_q(WITH("'cancel_api': {'path_prefix': '/v1/cancel'}"),
	    "cancel_api.path_prefix: must start and end with '/'");
	expect_q(WITH("'cancel_api': {'path_prefix': 'v1/'}"),
	    "cancel_api.path_prefix: must start and end with '/'");
	expect_q(WITH("'cancel_api': {'path_prefix': '/a b/'}"),
	    "cancel_api.path_prefix: must not contain spaces or control "
	    "characters");
	expect_q(ROUTE("'upstream': 'u', 'path_prefix': 'v1/'"),
	    "routes[0].path_prefix: must start with '/'");
	expect_q(ROUTE("'upstream': 'u', 'path_prefix': ''"),
	    "routes[0].path_prefix: must not be empty");
	expect_q(ROUTE("'upstream': 'u', 'path_prefix': '/v1/\\t'"),
	    "routes[0].path_prefix: must not contain spaces or control "
	    "characters");
	expect_q(ROUTE("'upstream': 'u', 'on_client_disconnect': 'stop'"),
	    "routes[0].on_client_disconnect: must be \"cancel\" or \"drain\"");
	expect_q(ROUTE("'upstream': 'u', 'stream_usage': 'always'"),
	    "routes[0].stream_usage: must be \"pass\" or \"inject\"");
	expect_q(ROUTE("'upstream': 'u', 'models': []"),
	    "routes[0].models: must not be empty (leave it out instead)");
	expect_q(ROUTE("'upstream': 'u', 'models': ['']"),
	    "routes[0].models[0]: must not be empty");
	expect_q(WITH("'admin': {'address': '127.0.0.1:9901', 'token': ''}"),
	    "admin.token: must not be empty");
	expect_q(WITH("'admin': {'token': 'abcdef'}"), "admin.address: missing");
	expect_q(UP("'tls': {'server_name': 'bad name'}"),
	    "upstreams.u.tls.server_name: not a valid host name");
	expect_q(UP("'tls': {'ca_file': '/nonexistent/ca.pem'}"),
	    "upstreams.u.tls.ca_file: cannot read \"/nonexistent/ca.pem\": "
	    "No such file or directory");
	expect_q("{" LISTEN ", 'upstreams': {'bad name': {'url': 'http://a'}}, "
	    ROUTES "}", "upstreams[\"bad name\"]: bad upstream name: must be "
	    "1 to 63 characters of A-Z a-z 0-9 . _ : -");
}

Test(conf, required_and_empty)
{
	expect_q("{" UPS ", " ROUTES "}", "listen: missing");
	expect_q("{'listen': [], " UPS ", " ROUTES "}",
	    "listen: must have at least one listener");
	expect_q("{" LISTEN ", " ROUTES "}", "upstreams: missing");
	expect_q("{" LISTEN ", 'upstreams': {}, " ROUTES "}",
	    "upstreams: must have at least one upstream");
	expect_q("{" LISTEN ", " UPS "}", "routes: missing");
	expect_q("{" LISTEN ", " UPS ", 'routes': []}",
	    "routes: must have at least one route");
	expect_q("{" LISTEN ", 'upstreams': {'u': {}}, " ROUTES "}",
	    "upstreams.u.url: missing");
	expect_q("{" LISTEN ", 'upstreams': {'u': {'url': ''}}, " ROUTES "}",
	    "upstreams.u.url: must not be empty");
	expect_q(ROUTE("'path_prefix': '/'"), "routes[0].upstream: missing");
	expect_q("{'listen': [{}], " UPS ", " ROUTES "}",
	    "listen[0].address: missing");
	expect_q(WITH("'cluster': {}"), "cluster.redis: missing");
	expect_q(WITH("'cluster': {'redis': {'channel': 'x'}}"),
	    "cluster.redis.address: missing");
	expect_q(WITH("'clients': {}"), "clients.keys: missing");
	expect_q(WITH("'clients': {'keys': []}"),
	    "clients.keys: must have at least one key (leave clients out to "
	    "let any client pass)");
	expect_q(WITH("'clients': {'keys': [{'name': 'a'}]}"),
	    "clients.keys[0].key_sha256: missing");
	expect_q(WITH("'clients': {'keys': [{'key_sha256': '" SHA_TEST "'}]}"),
	    "clients.keys[0].name: missing");
}

Test(conf, unknown_upstreams)
{
	expect_q(ROUTE("'upstream': 'foo'"),
	    "routes[0].upstream: unknown upstream \"foo\"");
	expect_q(ROUTE("'upstream': 'u', 'fallback': ['v', 'nope']"),
	    "routes[0].fallback[1]: unknown upstream \"nope\"");
	expect_q(WITH("'clients': {'keys': [{'name': 'a', 'key_sha256': '"
	    SHA_TEST "', 'routes': ['*', 'x']}]}"),
	    "clients.keys[0].routes[1]: unknown upstream \"x\"");
	expect_q("{" LISTEN ", " UPS ", 'routes': [{'upstream': 'u'}, "
	    "{'upstream': 'U'}]}", "routes[1].upstream: unknown upstream \"U\"");
}

Test(conf, client_keys)
{
	struct conf	*c;

	c = load_q(WITH("'clients': {'keys': [{'name': 'a', 'key_sha256': '"
	    SHA_TEST "'}, {'name': 'b', 'key_sha256': '"
	    "60303AE22B998861BCE3B28F33EEC1BE758A213C86C93C076DBE9F558C11C752', "
	    "'routes': ['u'], 'max_streams': 3}]}"));
	cr_assert_eq(c->nclient_keys, 2);
	cr_assert_eq(c->client_keys[0].nroutes, 1);
	cr_assert_str_eq(c->client_keys[0].routes[0], "*", "default routes");
	cr_assert_eq(c->client_keys[0].max_streams, 0);
	cr_assert_eq(c->client_keys[1].key_sha256[0], 0x60);
	cr_assert_eq(c->client_keys[1].key_sha256[31], 0x52);
	cr_assert_str_eq(c->client_keys[1].routes[0], "u");
	cr_assert_eq(c->client_keys[1].max_streams, 3);
	conf_unref(c);

	expect_q(WITH("'clients': {'keys': [{'name': 'a', 'key_sha256': "
	    "'9f86d0'}]}"), "clients.keys[0].key_sha256: must be 64 hex digits "
	    "(the SHA-256 of the key)");
	expect_q(WITH("'clients': {'keys': [{'name': 'a', 'key_sha256': '"
	    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g'"
	    "}]}"), "clients.keys[0].key_sha256: must be 64 hex digits (the "
	    "SHA-256 of the key)");
	expect_q(WITH("'clients': {'keys': [{'name': 'a', 'key_sha256': '"
	    SHA_TEST "'}, {'name': 'b', 'key_sha256': '" SHA_OTHER "'}, "
	    "{'name': 'a', 'key_sha256': '" SHA_OTHER "'}]}"),
	    "clients.keys[2].name: duplicate name \"a\" (also keys[0])");
	expect_q(WITH("'clients': {'keys': [{'name': 'a', 'key_sha256': '"
	    SHA_TEST "'}, {'name': 'b', 'key_sha256': '" SHA_TEST "'}]}"),
	    "clients.keys[1].key_sha256: same key as keys[0]");
	expect_q(WITH("'clients': {'keys': [{'name': 'a b', 'key_sha256': '"
	    SHA_TEST "'}]}"), "clients.keys[0].name: must be 1 to 63 "
	    "characters of A-Z a-z 0-9 . _ : -");
	expect_q(WITH("'clients': {'keys': [{'name': 'a', 'key_sha256': '"
	    SHA_TEST "', 'routes': []}]}"),
	    "clients.keys[0].routes: must not be empty (leave it out instead)");
	expect_q(WITH("'clients': {'keys': [{'name': 'a', 'key_sha256': '"
	    SHA_TEST "', 'max_streams': -1}]}"),
	    "clients.keys[0].max_streams: must be >= 0");
}

Test(conf, set_headers)
{
	struct conf	*c;

	c = load_q(UP("'set_headers': {'x-api-key': 'k1', 'anthropic-version': "
	    "'2023-06-01', 'X-Tab': 'a\\tb', 'X-Empty': ''}"));
	cr_assert_eq(c->upstreams[0].nset_headers, 4);
	cr_assert_str_eq(c->upstreams[0].set_headers[1].name,
	    "anthropic-version");
	cr_assert_str_eq(c->upstreams[0].set_headers[2].value, "a\tb");
	cr_assert(has_secret(c, "2023-06-01"));
	cr_assert(has_secret(c, "k1"));
	cr_assert_eq(c->nsecrets, 3, "the empty value is no secret");
	conf_unref(c);

	expect_q(UP("'set_headers': {'Bad Header': 'x'}"),
	    "upstreams.u.set_headers[\"Bad Header\"]: not a valid header name");
	expect_q(UP("'set_headers': {'X(a)': 'x'}"),
	    "upstreams.u.set_headers.X(a): not a valid header name");
	expect_q(UP("'set_headers': {'': 'x'}"),
	    "upstreams.u.set_headers[\"\"]: not a valid header name");
	expect_q(UP("'set_headers': {'X-A': 'a\\r\\nX-Evil: 1'}"),
	    "upstreams.u.set_headers.X-A: must not contain CR, LF or other "
	    "control characters");
	expect_q(UP("'set_headers': {'X-A': 'a\\nb'}"),
	    "upstreams.u.set_headers.X-A: must not contain CR, LF or other "
	    "control characters");
	expect_q(UP("'set_headers': {'Content-Length': '5'}"),
	    "upstreams.u.set_headers.Content-Length: is set by the proxy and "
	    "cannot be configured");
	expect_q(UP("'set_headers': {'host': 'x'}"),
	    "upstreams.u.set_headers.host: is set by the proxy and cannot be "
	    "configured");
}

Test(conf, secrets)
{
	struct conf	*c;

	setenv("CP_T_TOK", "tok-abcdef", 1);
	c = load_q(WITH("'admin': {'address': '127.0.0.1:0', 'token': "
	    "'${CP_T_TOK}'}, 'peers': {'secret': 'tok-abcdef'}, "
	    "'cluster': {'redis': {'address': '[::1]:6379', 'password': 'rpw1'}}"));
	/* The token is both the expanded value and the variable: kept once. */
	cr_assert_eq(c->nsecrets, 2);
	cr_assert_str_eq(c->secrets[0], "tok-abcdef", "longest first");
	cr_assert_str_eq(c->secrets[1], "rpw1");
	conf_unref(c);
}

Test(conf, tls_files)
{
	struct conf	*c;
	char		 text[512];

	make_tls_files();
	c = load_q("{'listen': [{'address': '127.0.0.1:0', 'tls': {'cert': "
	    "'${CP_TEST_CERT}', 'key': '${CP_TEST_KEY}'}}, {'address': "
	    "'127.0.0.1:0', 'tls': null}], " UPS ", " ROUTES "}");
	cr_assert_str_eq(c->listen[0].tls_cert, cert_path);
	cr_assert_str_eq(c->listen[0].tls_key, key_path);
	cr_assert_null(c->listen[1].tls_cert);
	conf_unref(c);

	expect_q("{'listen': [{'address': '127.0.0.1:0', 'tls': {'cert': "
	    "'${CP_TEST_CERT}'}}], " UPS ", " ROUTES "}",
	    "listen[0].tls.key: missing");
	expect_q("{'listen': [{'address': '127.0.0.1:0', 'tls': {'key': "
	    "'${CP_TEST_KEY}'}}], " UPS ", " ROUTES "}",
	    "listen[0].tls.cert: missing");
	expect_q("{'listen': [{'address': '127.0.0.1:0', 'tls': {'cert': "
	    "'/nonexistent/cert.pem', 'key': '${CP_TEST_KEY}'}}], "
	    UPS ", " ROUTES "}", "listen[0].tls.cert: cannot read "
	    "\"/nonexistent/cert.pem\": No such file or directory");
	snprintf(text, sizeof(text), "listen[0].tls.key: cannot read "
	    "\"%s.gone\": No such file or directory", key_path);
	expect_q("{'listen': [{'address': '127.0.0.1:0', 'tls': {'cert': "
	    "'${CP_TEST_CERT}', 'key': '${CP_TEST_KEY}.gone'}}], "
	    UPS ", " ROUTES "}", text);
	expect_q("{'listen': [{'address': '127.0.0.1:0', 'tls': {'cert': "
	    "'/tmp', 'key': '${CP_TEST_KEY}'}}], " UPS ", " ROUTES "}",
	    "listen[0].tls.cert: cannot read \"/tmp\": is a directory");
	remove_tls_files();
}

Test(conf, listen_addresses)
{
	struct conf	*c;

	c = load_q("{'listen': [{'address': '*:8080'}, {'address': "
	    "'localhost:8080'}, {'address': '[::1]:8080'}, {'address': "
	    "'127.0.0.1:0'}, {'address': '127.0.0.1:0'}], " UPS ", " ROUTES
	    ", 'admin': {'address': '127.0.0.1:0'}}");
	cr_assert_eq(c->nlisten, 5, "port 0 may repeat");
	cr_assert_eq(c->admin_enabled, 1);
	conf_unref(c);

	expect_q("{'listen': [{'address': '127.0.0.1:80'}, {'address': "
	    "'1.2.3.4'}], " UPS ", " ROUTES "}",
	    "listen[1].address: missing port (write address:port)");
	expect_q("{'listen': [{'address': '127.0.0.1:65536'}], " UPS ", "
	    ROUTES "}", "listen[0].address: port must be a number from 0 to "
	    "65535");
	expect_q("{'listen': [{'address': 'example.com:80'}], " UPS ", "
	    ROUTES "}", "listen[0].address: host must be an IPv4 address, "
	    "[IPv6 address], '*' or localhost");
	expect_q("{'listen': [{'address': '::1:80'}], " UPS ", " ROUTES "}",
	    "listen[0].address: an IPv6 address needs brackets: [::1]:80");
	expect_q("{'listen': [{'address': '127.0.0.1:8080'}, {'address': "
	    "'localhost:8080'}], " UPS ", " ROUTES "}",
	    "listen[1].address: same address as listen[0]");
	expect_q(WITH("'admin': {'address': '127.0.0.1:0'}, 'listen': "
	    "[{'address': '127.0.0.1:9901'}]"), "listen: duplicate key");
	expect_q("{'listen': [{'address': '127.0.0.1:9901'}], " UPS ", "
	    ROUTES ", 'admin': {'address': 'localhost:9901'}}",
	    "admin.address: same address as listen[0]");
	expect_q(WITH("'admin': {'address': '[::1'}"),
	    "admin.address: missing ']' after an IPv6 address");
}

Test(conf, listen_forwarded)
{
	struct conf	*c;

	c = load_q("{'listen': [{'address': '127.0.0.1:0'}, {'address': "
	    "'127.0.0.1:0', 'forwarded': 'replace'}, {'address': "
	    "'127.0.0.1:0', 'forwarded': 'off'}, {'address': '127.0.0.1:0', "
	    "'forwarded': 'append'}], " UPS ", " ROUTES "}");
	cr_assert_eq(c->nlisten, 4);
	cr_assert_eq(c->listen[0].forwarded, CONF_FORWARDED_APPEND);
	cr_assert_eq(c->listen[1].forwarded, CONF_FORWARDED_REPLACE);
	cr_assert_eq(c->listen[2].forwarded, CONF_FORWARDED_OFF);
	cr_assert_eq(c->listen[3].forwarded, CONF_FORWARDED_APPEND);
	cr_assert_str_eq(conf_forwarded_name(CONF_FORWARDED_REPLACE),
	    "replace");
	cr_assert_str_eq(conf_forwarded_name(CONF_FORWARDED_OFF), "off");
	cr_assert_str_eq(conf_forwarded_name(CONF_FORWARDED_APPEND), "append");
	conf_unref(c);

	expect_q("{'listen': [{'address': '127.0.0.1:0', 'forwarded': "
	    "'keep'}], " UPS ", " ROUTES "}", "listen[0].forwarded: must be "
	    "\"append\", \"replace\" or \"off\"");
	expect_q("{'listen': [{'address': '127.0.0.1:0', 'forwarded': true}], "
	    UPS ", " ROUTES "}", "listen[0].forwarded: must be a string, not "
	    "a boolean");
}

Test(conf, redis_addresses)
{
	struct conf	*c;

	c = load_q(WITH("'cluster': {'redis': {'address': '[::1]:6379'}}"));
	cr_assert_str_eq(c->cluster_redis_address, "[::1]:6379");
	conf_unref(c);
	expect_q(WITH("'cluster': {'redis': {'address': 'redis'}}"),
	    "cluster.redis.address: missing port (write host:port)");
	expect_q(WITH("'cluster': {'redis': {'address': 'redis:0'}}"),
	    "cluster.redis.address: port must be a number from 1 to 65535");
	expect_q(WITH("'cluster': {'redis': {'address': 're dis:1'}}"),
	    "cluster.redis.address: bad host name");
	expect_q(WITH("'cluster': {'redis': {'address': '[nope]:1'}}"),
	    "cluster.redis.address: bad IPv6 address");
	expect_q(WITH("'cluster': {'redis': {'address': 'r:1', 'channel': ''}}"),
	    "cluster.redis.channel: must not be empty");
	expect_q(WITH("'cluster': {'redis': {'address': 'r:1', 'password': ''}}"),
	    "cluster.redis.password: must not be empty");
}

struct url_case {
	const char	*url;
	int		 tls;
	const char	*host;
	int		 port;
	const char	*host_header;
	const char	*base_path;
};

Test(conf, upstream_urls)
{
	static const struct url_case good[] = {
		{ "http://example.com", 0, "example.com", 80, "example.com", "" },
		{ "https://api.openai.com", 1, "api.openai.com", 443,
		    "api.openai.com", "" },
		{ "http://example.com:8080/v1/", 0, "example.com", 8080,
		    "example.com:8080", "/v1" },
		{ "https://example.com:443/a/b", 1, "example.com", 443,
		    "example.com", "/a/b" },
		{ "https://example.com:80/", 1, "example.com", 80,
		    "example.com:80", "" },
		{ "http://[::1]:8000", 0, "::1", 8000, "[::1]:8000", "" },
		{ "https://[2001:db8::1]/x", 1, "2001:db8::1", 443,
		    "[2001:db8::1]", "/x" },
		{ "HTTPS://Example.COM//", 1, "Example.COM", 443, "Example.COM",
		    "" },
		{ "http://127.0.0.1:80/api/v1%20x", 0, "127.0.0.1", 80,
		    "127.0.0.1", "/api/v1%20x" },
	};
	char		 text[512];
	struct conf	*c;
	size_t		 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "{" LISTEN ", 'upstreams': {'u': "
		    "{'url': '%s'}}, " ROUTES "}", good[i].url);
		c = load_q(text);
		cr_assert_str_eq(c->upstreams[0].url, good[i].url);
		cr_assert_eq(c->upstreams[0].tls, good[i].tls, "%s", good[i].url);
		cr_assert_str_eq(c->upstreams[0].host, good[i].host);
		cr_assert_eq(c->upstreams[0].port, good[i].port, "%s",
		    good[i].url);
		cr_assert_str_eq(c->upstreams[0].host_header,
		    good[i].host_header);
		cr_assert_str_eq(c->upstreams[0].base_path, good[i].base_path);
		conf_unref(c);
	}
}

Test(conf, bad_upstream_urls)
{
	static const char *const bad[][2] = {
		{ "ftp://x", "must start with http:// or https://" },
		{ "example.com", "must start with http:// or https://" },
		{ "http://", "must name a host" },
		{ "http:///v1", "must name a host" },
		{ "http://h?x=1", "must not have a query or fragment" },
		{ "http://h/#frag", "must not have a query or fragment" },
		{ "http://user:pw@h", "must not contain user info (put "
		    "credentials in set_headers)" },
		{ "http://h:0", "port must be a number from 1 to 65535" },
		{ "http://h:65536", "port must be a number from 1 to 65535" },
		{ "http://h:abc", "port must be a number from 1 to 65535" },
		{ "http://h:", "port must be a number from 1 to 65535" },
		{ "http://h:123456", "port must be a number from 1 to 65535" },
		{ "http://[::1", "bad IPv6 address" },
		{ "http://[zz]:80", "bad IPv6 address" },
		{ "http://[::1]x", "expected ':' and a port after ']'" },
		{ "http://::1:80", "missing host" },
		{ "http://ho st", "bad host name" },
		{ "http://-h", "bad host name" },
		{ "http://h/a b", "path must not contain spaces, control "
		    "characters or non-ASCII bytes (percent-encode them)" },
	};
	char	 text[512], msg[256];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{" LISTEN ", 'upstreams': {'u': "
		    "{'url': '%s'}}, " ROUTES "}", bad[i][0]);
		snprintf(msg, sizeof(msg), "upstreams.u.url: %s", bad[i][1]);
		expect_q(text, msg);
	}
}

Test(conf, parse_address)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	struct in6_addr		 lo6 = IN6ADDR_LOOPBACK_INIT;
	socklen_t		 len;
	static const char *const bad[] = {
		"1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1",
		"1.2.3.4:80x", "1.2.3.4:123456", ":80", "::1:80", "[::1]80",
		"[::1", "[::1]", "[]:80", "[1.2.3.4]:80", "example.com:80",
		"1.2.3:80", "300.1.1.1:80", " 1.2.3.4:80", "[::1]:99999",
		"[fe80::1%no-such-if9]:80", "",
	};
	size_t			 i;

	cr_assert_eq(conf_parse_address("1.2.3.4:80", &ss, &len), 0);
	cr_assert_eq(sin->sin_family, AF_INET);
	cr_assert_eq(len, sizeof(*sin));
	cr_assert_eq(ntohs(sin->sin_port), 80);
	cr_assert_eq(ntohl(sin->sin_addr.s_addr), 0x01020304);

	cr_assert_eq(conf_parse_address("*:443", &ss, &len), 0);
	cr_assert_eq(sin->sin_family, AF_INET);
	cr_assert_eq(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	cr_assert_eq(ntohs(sin->sin_port), 443);

	cr_assert_eq(conf_parse_address("localhost:0", &ss, &len), 0);
	cr_assert_eq(sin->sin_family, AF_INET);
	cr_assert_eq(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	cr_assert_eq(sin->sin_port, 0);

	cr_assert_eq(conf_parse_address("127.0.0.1:65535", &ss, &len), 0);
	cr_assert_eq(ntohs(sin->sin_port), 65535);

	cr_assert_eq(conf_parse_address("[::1]:80", &ss, &len), 0);
	cr_assert_eq(sin6->sin6_family, AF_INET6);
	cr_assert_eq(len, sizeof(*sin6));
	cr_assert_eq(ntohs(sin6->sin6_port), 80);
	cr_assert(IN6_ARE_ADDR_EQUAL(&sin6->sin6_addr, &lo6));
	cr_assert_eq(sin6->sin6_scope_id, 0);

	cr_assert_eq(conf_parse_address("[::]:8443", &ss, &len), 0);
	cr_assert(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));

	cr_assert_eq(conf_parse_address("[fe80::1%3]:80", &ss, &len), 0);
	cr_assert_eq(sin6->sin6_scope_id, 3);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(conf_parse_address(bad[i], &ss, &len), -1,
		    "\"%s\" must not parse", bad[i]);
	cr_assert_eq(conf_parse_address(NULL, &ss, &len), -1);
}

Test(conf, glob)
{
	cr_assert_eq(conf_glob_match("gpt-*", "gpt-4o"), 1);
	cr_assert_eq(conf_glob_match("gpt-*", "gpt-"), 1);
	cr_assert_eq(conf_glob_match("gpt-*", "gpt"), 0);
	cr_assert_eq(conf_glob_match("gpt-*", "xgpt-4"), 0);
	cr_assert_eq(conf_glob_match("GPT-*", "gpt-4"), 0, "case matters");
	cr_assert_eq(conf_glob_match("o?", "o1"), 1);
	cr_assert_eq(conf_glob_match("o?", "o12"), 0);
	cr_assert_eq(conf_glob_match("o[13]-*", "o3-mini"), 1);
	cr_assert_eq(conf_glob_match("o[13]-*", "o2-mini"), 0);
	cr_assert_eq(conf_glob_match("o[!1]", "o2"), 1);
	cr_assert_eq(conf_glob_match("o[!1]", "o1"), 0);
	cr_assert_eq(conf_glob_match("*", ""), 1);
	cr_assert_eq(conf_glob_match("meta-llama/*", "meta-llama/Llama-3-8B"), 1,
	    "'*' crosses '/'");
	cr_assert_eq(conf_glob_match("*-mini", "gpt-4o-mini"), 1);
	cr_assert_eq(conf_glob_match("gpt-4o", "gpt-4o"), 1);
	cr_assert_eq(conf_glob_match("gpt-4o", "gpt-4o-mini"), 0);
	cr_assert_eq(conf_glob_match("a\\*", "a*"), 1);
	cr_assert_eq(conf_glob_match("a\\*", "ab"), 0);
	cr_assert_eq(conf_glob_match(NULL, "a"), 0);
	cr_assert_eq(conf_glob_match("a", NULL), 0);
}

Test(conf, route_find)
{
	struct conf		*c;
	const struct conf_route	*r;

	c = load_q("{" LISTEN ", 'upstreams': {'a': {'url': 'http://a'}, "
	    "'b': {'url': 'http://b'}, 'c': {'url': 'http://c'}, "
	    "'d': {'url': 'http://d'}}, 'routes': ["
	    "{'path_prefix': '/v1/chat', 'models': ['gpt-4*', 'o1'], "
	    "'upstream': 'a'}, "
	    "{'path_prefix': '/v1/', 'models': ['claude-*'], 'upstream': 'b'}, "
	    "{'path_prefix': '/v1/', 'upstream': 'c'}, "
	    "{'upstream': 'd'}]}");
#define FIND(p, m)	conf_route_find(c, p, strlen(p), m)
	cr_assert_eq(FIND("/v1/chat/completions", "gpt-4o"), &c->routes[0]);
	cr_assert_eq(FIND("/v1/chat/completions", "o1"), &c->routes[0]);
	cr_assert_eq(FIND("/v1/chat/completions", "o1-mini"), &c->routes[2]);
	cr_assert_eq(FIND("/v1/chat/completions", "claude-3-opus"),
	    &c->routes[1]);
	cr_assert_eq(FIND("/v1/chat/completions", NULL), &c->routes[2],
	    "no model: routes with models do not match");
	cr_assert_eq(FIND("/v1/models", "gpt-4o"), &c->routes[2]);
	cr_assert_eq(FIND("/v1/messages", "claude-3"), &c->routes[1]);
	cr_assert_eq(FIND("/health", NULL), &c->routes[3]);
	cr_assert_eq(FIND("/", "gpt-4o"), &c->routes[3]);
	cr_assert_eq(FIND("/v1", "claude-3"), &c->routes[3],
	    "\"/v1\" is shorter than the prefix \"/v1/\"");
	/* Only pathlen bytes count: "/v1/chat..." cut to "/v1". */
	r = conf_route_find(c, "/v1/chat/completions", 3, "gpt-4o");
	cr_assert_eq(r, &c->routes[3]);
	cr_assert_eq(conf_route_find(c, NULL, 0, NULL), NULL);
	cr_assert_eq(r->upstream, conf_upstream_find(c, "d"));
#undef FIND
	conf_unref(c);

	c = load_q(ROUTE("'path_prefix': '/v1/', 'upstream': 'u'"));
	cr_assert_null(conf_route_find(c, "/v2/x", 5, NULL));
	cr_assert_null(conf_route_find(c, "", 0, NULL));
	cr_assert_eq(conf_route_find(c, "/v1/x", 5, NULL), &c->routes[0]);
	conf_unref(c);
	cr_assert_null(conf_route_find(NULL, "/", 1, NULL));
}

Test(conf, upstream_find)
{
	struct conf	*c;

	c = load_q("{" LISTEN ", 'upstreams': {'z': {'url': 'http://z'}, "
	    "'a': {'url': 'http://a'}, 'm': {'url': 'http://m'}}, "
	    "'routes': [{'upstream': 'a', 'fallback': ['m', 'z']}]}");
	cr_assert_eq(conf_upstream_find(c, "z"), &c->upstreams[0]);
	cr_assert_eq(conf_upstream_find(c, "a"), &c->upstreams[1]);
	cr_assert_eq(conf_upstream_find(c, "m"), &c->upstreams[2]);
	cr_assert_null(conf_upstream_find(c, "q"));
	cr_assert_null(conf_upstream_find(c, NULL));
	cr_assert_null(conf_upstream_find(NULL, "a"));
	cr_assert_eq(c->routes[0].upstream, &c->upstreams[1]);
	cr_assert_eq(c->routes[0].fallback[0], &c->upstreams[2]);
	cr_assert_eq(c->routes[0].fallback[1], &c->upstreams[0]);
	conf_unref(c);
}

Test(conf, small_error_buffer)
{
	struct conf	*c = NULL;
	const char	*path;
	char		 err[8];

	path = conf_file_q(WITH("'workers': -1"));
	memset(err, 'x', sizeof(err));
	cr_assert_eq(conf_load(path, &c, err, sizeof(err)), -1);
	cr_assert_eq(strlen(err), sizeof(err) - 1, "cut, NUL-terminated");
	cr_assert_eq(conf_load(path, &c, NULL, 0), -1, "no buffer is fine");
	cr_assert_null(c);
	unlink(path);
	cr_assert_eq(conf_load(NULL, &c, err, sizeof(err)), -1);
}

/* xorshift, so the mutations are the same on every run. */
static uint32_t
fuzz_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Mutates the full example many ways; every load must end in 0 or in -1
 * with a message, never a crash or a leak (run under ASan and valgrind). */
Test(conf, mutations_never_crash)
{
	static const char tokens[] = "{}[]\",:/*\\$ 0-9eE.\n\tnull";
	size_t		 len = strlen(full_example), n, j, pos;
	uint32_t	 seed = 0x9e3779b9u;
	struct conf	*c;
	char		*text, err[512], prefix[80];
	int		 i, r, ok = 0, bad = 0;

	make_tls_files();
	setenv("CANCELPROXY_ADMIN_TOKEN", "t", 1);
	setenv("OPENAI_API_KEY", "k", 1);
	setenv("CANCELPROXY_PEER_SECRET", "s", 1);
	text = malloc(len + 64);
	cr_assert_not_null(text);
	for (i = 0; i < 1500; i++) {
		memcpy(text, full_example, len + 1);
		n = 1 + fuzz_rand(&seed) % 4;
		for (j = 0; j < n; j++) {
			pos = fuzz_rand(&seed) % strlen(text);
			switch (fuzz_rand(&seed) % 3) {
			case 0:		/* overwrite a byte */
				text[pos] = tokens[fuzz_rand(&seed) %
				    (sizeof(tokens) - 1)];
				break;
			case 1:		/* delete a byte */
				memmove(text + pos, text + pos + 1,
				    strlen(text + pos));
				break;
			default:	/* cut the file */
				text[pos] = '\0';
				break;
			}
		}
		conf_file(text);
		snprintf(prefix, sizeof(prefix), "%s: ", tmp_path);
		c = NULL;
		err[0] = '\0';
		r = conf_load(tmp_path, &c, err, sizeof(err));
		unlink(tmp_path);
		if (r == 0) {
			cr_assert_not_null(c);
			ok++;
			conf_unref(c);
		} else {
			cr_assert_eq(r, -1);
			cr_assert_null(c);
			cr_assert_eq(strncmp(err, prefix, strlen(prefix)), 0,
			    "message names the file: %s", err);
			cr_assert_gt(strlen(err), strlen(prefix));
			bad++;
		}
	}
	free(text);
	remove_tls_files();
	cr_assert_gt(bad, 0);
	cr_assert_gt(ok, 0, "some mutations (in comments) stay valid");
}

/* ---- routes[].cors (browsers on other origins) ---- */

Test(conf, cors_defaults_and_lists)
{
	struct conf		*c;
	const struct conf_cors	*k;

	c = load_q(ROUTE("'upstream': 'u', 'cors': {'allow_origins': "
	    "['https://Chat.Example', 'http://127.0.0.1:8800']}"));
	k = c->routes[0].cors;
	cr_assert_not_null(k);
	cr_assert_eq(k->nallow_origins, 2);
	cr_assert_str_eq(k->allow_origins[0], "https://chat.example");
	cr_assert_eq(k->any_origin, 0);
	cr_assert_eq(k->allow_credentials, 0);
	cr_assert_eq(k->any_header, 0);
	cr_assert_str_eq(k->allow_headers_line, "authorization, content-type, "
	    "x-api-key, x-request-id, traceparent");
	cr_assert_str_eq(k->expose_headers_line, "x-request-id, proxy-status");
	cr_assert_eq(k->max_age_s, 600);
	cr_assert(conf_cors_origin_allowed(k, "https://chat.example", 20));
	cr_assert(conf_cors_origin_allowed(k, "HTTPS://CHAT.EXAMPLE", 20));
	cr_assert_not(conf_cors_origin_allowed(k, "https://chat.example.evil",
	    25));
	cr_assert_not(conf_cors_origin_allowed(k, "http://127.0.0.1:8801", 21));
	cr_assert_not(conf_cors_origin_allowed(k, NULL, 0));
	cr_assert_not(conf_cors_origin_allowed(NULL, "https://chat.example",
	    20));
	conf_unref(c);

	c = load_q(ROUTE("'upstream': 'u', 'cors': {'allow_origins': ['*'], "
	    "'allow_headers': ['Authorization', 'X-Custom', '*'], "
	    "'expose_headers': ['X-Trace', 'x-request-id'], 'max_age_s': 0}"));
	k = c->routes[0].cors;
	cr_assert_eq(k->any_origin, 1);
	cr_assert_eq(k->any_header, 1);
	cr_assert_str_eq(k->allow_headers_line, "authorization, x-custom, *");
	cr_assert_str_eq(k->expose_headers_line,
	    "x-request-id, proxy-status, x-trace");
	cr_assert_eq(k->max_age_s, 0);
	cr_assert(conf_cors_origin_allowed(k, "https://any.example", 19));
	cr_assert_not(conf_cors_origin_allowed(k, "https://a b", 11),
	    "an origin with a blank is echoed nowhere");
	conf_unref(c);

	c = load_q(ROUTE("'upstream': 'u'"));
	cr_assert_null(c->routes[0].cors, "no cors: no CORS answers");
	conf_unref(c);
}

Test(conf, cors_errors)
{
	expect_q(ROUTE("'upstream': 'u', 'cors': {}"),
	    "routes[0].cors: missing \"allow_origins\" (the origins of the "
	    "pages that may call this route, or [\"*\"])");
	expect_q(ROUTE("'upstream': 'u', 'cors': {'allow_origins': []}"),
	    "routes[0].cors.allow_origins: must not be empty (leave it out "
	    "instead)");
	expect_q(ROUTE("'upstream': 'u', 'cors': {'allow_origins': "
	    "['https://chat.example/']}"),
	    "routes[0].cors.allow_origins[0]: must be an origin: "
	    "scheme://host[:port], no path and no trailing '/'");
	expect_q(ROUTE("'upstream': 'u', 'cors': {'allow_origins': "
	    "['chat.example']}"),
	    "routes[0].cors.allow_origins[0]: must be \"*\" or an origin "
	    "such as \"https://chat.example\" (http:// or https://)");
	expect_q(ROUTE("'upstream': 'u', 'cors': {'allow_origins': ['*'], "
	    "'allow_credentials': true}"),
	    "routes[0].cors.allow_credentials: must be false when "
	    "allow_origins has \"*\" (browsers refuse credentials for any "
	    "origin): list the origins instead");
	expect_q(ROUTE("'upstream': 'u', 'cors': {'allow_origins': ['*'], "
	    "'allow_headers': ['bad header']}"),
	    "routes[0].cors.allow_headers[0]: must be a header name or \"*\"");
	expect_q(ROUTE("'upstream': 'u', 'cors': {'allow_origins': ['*'], "
	    "'expose_headers': ['a:b']}"),
	    "routes[0].cors.expose_headers[0]: must be a header name");
	expect_q(ROUTE("'upstream': 'u', 'cors': {'allow_origins': ['*'], "
	    "'max_age_s': 86401}"),
	    "routes[0].cors.max_age_s: must be <= 86400");
	expect_q(ROUTE("'upstream': 'u', 'cors': {'allow_origin': ['*']}"),
	    "routes[0].cors.allow_origin: unknown key (did you mean "
	    "\"allow_origins\"?)");
	expect_q(ROUTE("'upstream': 'u', 'cors': true"),
	    "routes[0].cors: must be an object, not a boolean");
}

/* A preflight has no body: its policy is found by path alone. */
Test(conf, cors_found_by_path)
{
	struct conf	*c;

	c = load_q("{" LISTEN ", " UPS ", 'routes': ["
	    "{'path_prefix': '/v1/chat/', 'upstream': 'u'},"
	    "{'path_prefix': '/v1/', 'models': ['gpt-*'], 'upstream': 'u', "
	    "'cors': {'allow_origins': ['https://a.example']}},"
	    "{'path_prefix': '/v1/', 'models': ['claude-*'], 'upstream': 'u', "
	    "'cors': {'allow_origins': ['https://b.example']}},"
	    "{'path_prefix': '/other/', 'upstream': 'u'}]}");
	cr_assert_eq(conf_cors_find(c, "/v1/chat/completions", 20),
	    c->routes[1].cors, "the first route with cors whose prefix "
	    "matches, models ignored");
	cr_assert_null(conf_cors_find(c, "/other/x", 8));
	cr_assert_eq(conf_cors_find(c, "/v1/cancel/abc", 14),
	    c->routes[1].cors);
	conf_unref(c);

	/* The cancel API outside every route's prefix: the first policy. */
	c = load_q("{" LISTEN ", " UPS ", 'routes': ["
	    "{'path_prefix': '/openai/', 'upstream': 'u', "
	    "'cors': {'allow_origins': ['https://a.example']}}]}");
	cr_assert_eq(conf_cors_find(c, "/v1/cancel/abc", 14),
	    c->routes[0].cors);
	cr_assert_null(conf_cors_find(c, "/v1/models", 10));
	conf_unref(c);
}

Test(conf, upstream_protocol)
{
	struct conf		*c;
	struct conf_upstream	*u;

	c = load_q("{" BASE "}");
	u = &c->upstreams[0];
	cr_assert_eq(u->protocol, CONF_PROTOCOL_AUTO);
	cr_assert_str_eq(conf_protocol_name(u->protocol), "auto");
	cr_assert_eq(u->h2.max_streams_per_conn, 100);
	cr_assert_eq(u->h2.max_conns, 64);
	cr_assert_eq(u->h2.queue_max, 1024);
	cr_assert_eq(u->h2.ping_interval_ms, 10000);
	cr_assert_eq(u->h2.ping_timeout_ms, 5000);
	cr_assert_eq(u->h2.idle_ms, 60000);
	conf_unref(c);

	c = load_q(UP("'protocol': 'h2', 'h2': {'max_streams_per_conn': 7, "
	    "'max_conns': 2, 'queue_max': 0, 'ping_interval_ms': 0, "
	    "'ping_timeout_ms': 300, 'idle_ms': 1500}"));
	u = &c->upstreams[0];
	cr_assert_eq(u->protocol, CONF_PROTOCOL_H2);
	cr_assert_str_eq(conf_protocol_name(u->protocol), "h2");
	cr_assert_eq(u->h2.max_streams_per_conn, 7);
	cr_assert_eq(u->h2.max_conns, 2);
	cr_assert_eq(u->h2.queue_max, 0);
	cr_assert_eq(u->h2.ping_interval_ms, 0);
	cr_assert_eq(u->h2.ping_timeout_ms, 300);
	cr_assert_eq(u->h2.idle_ms, 1500);
	conf_unref(c);

	c = load_q(UP("'protocol': 'http/1.1'"));
	cr_assert_eq(c->upstreams[0].protocol, CONF_PROTOCOL_HTTP1);
	cr_assert_str_eq(conf_protocol_name(c->upstreams[0].protocol),
	    "http/1.1");
	conf_unref(c);

	expect_q(UP("'protocol': 'h3'"),
	    "upstreams.u.protocol: must be \"auto\", \"http/1.1\" or \"h2\"");
	expect_q(UP("'protocol': 'HTTP/1.1'"),
	    "upstreams.u.protocol: must be \"auto\", \"http/1.1\" or \"h2\"");
	expect_q(UP("'h2': {'max_streams_per_conn': 0}"),
	    "upstreams.u.h2.max_streams_per_conn: must be >= 1");
	expect_q(UP("'h2': {'max_conns': 1001}"),
	    "upstreams.u.h2.max_conns: must be <= 1000");
	expect_q(UP("'h2': {'ping_timeout_ms': 0}"),
	    "upstreams.u.h2.ping_timeout_ms: must be >= 1");
	expect_q(UP("'h2': {'streams': 4}"),
	    "upstreams.u.h2.streams: unknown key");
	expect_q(UP("'h2': 4"),
	    "upstreams.u.h2: must be an object, not a number");
}

/* listen[].protocols: h2 and http/1.1, restricted, or refused with the
 * JSON path. */
Test(conf, listen_protocols)
{
	struct conf	*c;

	c = load_q("{'listen': [{'address': '127.0.0.1:0', 'protocols': "
	    "['h2']}, {'address': '127.0.0.1:0', 'protocols': ['http/1.1']}, "
	    "{'address': '127.0.0.1:0', 'protocols': ['http/1.1', 'h2']}], "
	    UPS ", " ROUTES "}");
	cr_assert_eq(c->listen[0].protocols, CONF_PROTO_H2);
	cr_assert_eq(c->listen[1].protocols, CONF_PROTO_H1);
	cr_assert_eq(c->listen[2].protocols, CONF_PROTO_H1 | CONF_PROTO_H2);
	conf_unref(c);
	expect_q("{'listen': [{'address': '127.0.0.1:0', 'protocols': []}], "
	    UPS ", " ROUTES "}", "listen[0].protocols: must name at least one "
	    "protocol");
	expect_q("{'listen': [{'address': '127.0.0.1:0', 'protocols': "
	    "['h3']}], " UPS ", " ROUTES "}", "listen[0].protocols[0]: unknown "
	    "protocol (\"h2\" or \"http/1.1\")");
	expect_q("{'listen': [{'address': '127.0.0.1:0', 'protocols': "
	    "['h2', 'h2']}], " UPS ", " ROUTES "}",
	    "listen[0].protocols[1]: listed twice");
	expect_q("{'listen': [{'address': '127.0.0.1:0', 'protocols': "
	    "'h2'}], " UPS ", " ROUTES "}",
	    "listen[0].protocols: must be an array, not a string");
	expect_q("{'listen': [{'address': '127.0.0.1:0', 'protocols': "
	    "[2]}], " UPS ", " ROUTES "}",
	    "listen[0].protocols[0]: must be a string, not a number");
}

/* limits.http2: every member read, ranges checked with the JSON path. */
Test(conf, limits_http2)
{
	struct conf	*c;

	c = load_q(WITH("'limits': {'http2': {'max_concurrent_streams': 10, "
	    "'max_header_fields': 50, 'max_control_frames_per_second': 7, "
	    "'reset_burst': 20, 'reset_rate_per_second': 2, "
	    "'send_timeout_ms': 1500, 'max_connection_body_bytes': 0}}"));
	cr_assert_eq(c->limits.http2.max_concurrent_streams, 10);
	cr_assert_eq(c->limits.http2.max_header_fields, 50);
	cr_assert_eq(c->limits.http2.max_control_frames, 7);
	cr_assert_eq(c->limits.http2.reset_burst, 20);
	cr_assert_eq(c->limits.http2.reset_rate, 2);
	cr_assert_eq(c->limits.http2.send_timeout_ms, 1500);
	cr_assert_eq(c->limits.http2.max_connection_body_bytes, 0);
	conf_unref(c);
	c = load_q(WITH("'limits': {'http2': null}"));
	cr_assert_eq(c->limits.http2.max_concurrent_streams, 128);
	conf_unref(c);
	expect_q(WITH("'limits': {'http2': {'max_concurrent_streams': 0}}"),
	    "limits.http2.max_concurrent_streams: must be >= 1");
	expect_q(WITH("'limits': {'http2': {'max_concurrent_streams': 10001}}"),
	    "limits.http2.max_concurrent_streams: must be <= 10000");
	expect_q(WITH("'limits': {'http2': {'max_connection_body_bytes': -1}}"),
	    "limits.http2.max_connection_body_bytes: must be >= 0");
	expect_q(WITH("'limits': {'http2': {'send_timeout_ms': 'x'}}"),
	    "limits.http2.send_timeout_ms: must be an integer, not a string");
	expect_q(WITH("'limits': {'http2': {'max_streams': 1}}"),
	    "limits.http2.max_streams: unknown key");
	expect_q(WITH("'limits': {'http2': []}"),
	    "limits.http2: must be an object, not an array");
}

/* routes[].grpc_timeout_max_ms: a cap on a gRPC client's deadline. */
Test(conf, route_grpc_timeout_max)
{
	struct conf	*c;

	c = load_q(ROUTE("'upstream': 'u'"));
	cr_assert_eq(c->routes[0].grpc_timeout_max_ms, 0, "no cap by default");
	conf_unref(c);
	c = load_q(ROUTE("'upstream': 'u', 'grpc_timeout_max_ms': 30000"));
	cr_assert_eq(c->routes[0].grpc_timeout_max_ms, 30000);
	conf_unref(c);
	expect_q(ROUTE("'upstream': 'u', 'grpc_timeout_max_ms': -1"),
	    "routes[0].grpc_timeout_max_ms: must be >= 0");
	expect_q(ROUTE("'upstream': 'u', 'grpc_timeout_max_ms': '5s'"),
	    "routes[0].grpc_timeout_max_ms: must be an integer, not a string");
}
