/* mock: cancelproxy-mock's start-up: the command line, the listener, TLS,
 * signals and an orderly exit; the server itself is in mock_http.c. */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/log.h"
#include "tools/mock/mock.h"

#ifndef CANCELPROXY_VERSION
#define CANCELPROXY_VERSION "0.0.0"
#endif

#define MOCK_BACKLOG		8192
#define MOCK_ACCEPT_PAUSE_MS	100

/* The command line after parsing. */
struct mock_args {
	const char		*listen;
	const char		*log_path;
	const char		*tls_cert;
	const char		*tls_key;
	const char		*hop;
	struct mock_settings	 set;
	struct mock_h2_opts	 h2;
};

static const char mock_usage_text[] =
"usage: cancelproxy-mock [--listen ADDR] [--first-token-ms N] [--interval-ms N]\n"
"                        [--tokens N] [--log PATH] [--tls-cert FILE --tls-key FILE]\n"
"                        [--hop NAME] [--h2-alpn] [--h2-refuse-stream N]\n"
"                        [--h2-goaway-after N] [--h2-no-ping-ack]\n"
"\n"
"A streaming model server (OpenAI chat completions and Responses, Anthropic\n"
"Messages, a gRPC server-streaming method) for demos, tests and benchmarks.\n"
"It writes a JSON-lines record for every request and for how every answer\n"
"ended, including when and how the client went away (FIN or RST, and in\n"
"which phase).\n"
"\n"
"options:\n"
"  -l, --listen ADDR         address to listen on (default 127.0.0.1:0, a free port);\n"
"                            forms: 127.0.0.1:8000, [::1]:0, localhost:0, :8000 (all IPv4)\n"
"  -f, --first-token-ms N    delay from request to first token (default 200)\n"
"  -i, --interval-ms N       delay between tokens (default 50)\n"
"  -n, --tokens N            tokens per answer (default 20)\n"
"  -o, --log PATH            where records go, - for standard output (default -)\n"
"  -c, --tls-cert FILE       serve HTTPS with this certificate chain (PEM)\n"
"  -k, --tls-key FILE        ... and this private key (PEM)\n"
"  -H, --hop NAME            the hop name in every record (default mock)\n"
"      --h2-alpn             offer h2 by ALPN on TLS (HTTP/2 with prior\n"
"                            knowledge is always served on any port)\n"
"      --h2-refuse-stream N  HTTP/2: RST_STREAM(REFUSED_STREAM) the Nth stream\n"
"                            the mock receives (counted over all connections)\n"
"      --h2-goaway-after N   HTTP/2: GOAWAY once N streams came on a connection\n"
"      --h2-no-ping-ack      HTTP/2: never answer a PING\n"
"  -h, --help                show this help\n"
"  -V, --version             show the version\n"
"\n"
"endpoints:\n"
"  GET  /v1/models              a list with the model mock-1\n"
"  POST /v1/chat/completions    OpenAI chat: streaming (SSE) or not, per \"stream\"\n"
"  POST /v1/messages            Anthropic Messages: streaming or not, per \"stream\"\n"
"  POST /v1/responses           OpenAI Responses: streaming or not, per \"stream\"\n"
"  GET|POST /debug/echo         the request as received, as JSON\n"
"  POST /<pkg.Service>/<Method> gRPC (HTTP/2, application/grpc): one message\n"
"                               per token, then grpc-status; grpc-timeout honoured\n"
"\n"
"per-request headers:\n"
"  X-Mock-First-Token-Ms: N  X-Mock-Interval-Ms: N  X-Mock-Tokens: N\n"
"  X-Mock-Framing: chunked | close | length\n"
"  X-Mock-Fault: none | close_before_headers | reset_before_headers |\n"
"                close_after:N | reset_after:N | stall_after:N | status:CODE |\n"
"                garbage | content_length_lie | endless_header | sse_error_after:N |\n"
"                grpc_status_after:N\n"
"  X-Mock-Rst-Code: CODE (HTTP/2 reset_*)  X-Mock-Grpc-Status: N (gRPC)\n"
"\n"
"The first record is {\"event\":\"listening\",\"address\":\"HOST:PORT\",...} with the\n"
"bound port. SIGTERM or SIGINT exits 0. See cancelproxy-mock(1) for details.\n";

/* Prints the usage text; the only place besides --version that uses stdio. */
static void
mock_usage(FILE *f)
{
	fputs(mock_usage_text, f);
}

/* Parses a non-negative decimal integer no greater than max. */
static int
mock_parse_uint(const char *s, int max, int *out)
{
	char	*end;
	long	 v;

	if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

/* Reads the command line into a; exits on --help, --version or a mistake. */
static void
mock_args_parse(int argc, char **argv, struct mock_args *a)
{
	static const struct option longopts[] = {
		{ "listen",		required_argument,	NULL, 'l' },
		{ "first-token-ms",	required_argument,	NULL, 'f' },
		{ "interval-ms",	required_argument,	NULL, 'i' },
		{ "tokens",		required_argument,	NULL, 'n' },
		{ "log",		required_argument,	NULL, 'o' },
		{ "tls-cert",		required_argument,	NULL, 'c' },
		{ "tls-key",		required_argument,	NULL, 'k' },
		{ "hop",		required_argument,	NULL, 'H' },
		{ "h2-alpn",		no_argument,		NULL, 1001 },
		{ "h2-refuse-stream",	required_argument,	NULL, 1002 },
		{ "h2-goaway-after",	required_argument,	NULL, 1003 },
		{ "h2-no-ping-ack",	no_argument,		NULL, 1004 },
		{ "help",		no_argument,		NULL, 'h' },
		{ "version",		no_argument,		NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int	 ch;

	a->listen = "127.0.0.1:0";
	a->log_path = "-";
	a->tls_cert = a->tls_key = NULL;
	a->hop = "mock";
	a->set.first_token_ms = 200;
	a->set.interval_ms = 50;
	a->set.tokens = 20;
	memset(&a->h2, 0, sizeof(a->h2));

	while ((ch = getopt_long(argc, argv, "l:f:i:n:o:c:k:H:hV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'l':
			a->listen = optarg;
			break;
		case 'f':
			if (mock_parse_uint(optarg, MOCK_MAX_DELAY_MS,
			    &a->set.first_token_ms) == -1)
				goto bad_number;
			break;
		case 'i':
			if (mock_parse_uint(optarg, MOCK_MAX_DELAY_MS,
			    &a->set.interval_ms) == -1)
				goto bad_number;
			break;
		case 'n':
			if (mock_parse_uint(optarg, MOCK_MAX_TOKENS,
			    &a->set.tokens) == -1)
				goto bad_number;
			break;
		case 'o':
			a->log_path = optarg;
			break;
		case 'c':
			a->tls_cert = optarg;
			break;
		case 'k':
			a->tls_key = optarg;
			break;
		case 'H':
			a->hop = optarg;
			break;
		case 1001:
			a->h2.alpn = 1;
			break;
		case 1002:
			if (mock_parse_uint(optarg, INT_MAX, &a->h2.refuse_nth) ==
			    -1)
				goto bad_number;
			break;
		case 1003:
			if (mock_parse_uint(optarg, INT_MAX,
			    &a->h2.goaway_after) == -1)
				goto bad_number;
			break;
		case 1004:
			a->h2.no_ping_ack = 1;
			break;
		case 'h':
			mock_usage(stdout);
			exit(0);
		case 'V':
			printf("cancelproxy-mock %s\n", CANCELPROXY_VERSION);
			exit(0);
		default:
			mock_usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "cancelproxy-mock: unexpected argument: %s\n",
		    argv[optind]);
		exit(2);
	}
	if ((a->tls_cert == NULL) != (a->tls_key == NULL)) {
		fprintf(stderr, "cancelproxy-mock: --tls-cert and --tls-key "
		    "go together\n");
		exit(2);
	}
	return;

bad_number:
	fprintf(stderr, "cancelproxy-mock: --%s %s: expected a number in "
	    "0..%d\n", ch == 'f' ? "first-token-ms" : ch == 'i' ?
	    "interval-ms" : ch == 1002 ? "h2-refuse-stream" : ch == 1003 ?
	    "h2-goaway-after" : "tokens", optarg, ch == 'n' ? MOCK_MAX_TOKENS :
	    ch > 1000 ? INT_MAX : MOCK_MAX_DELAY_MS);
	exit(2);
}

/* Splits ADDR into host and port; host is NULL for ":PORT" and "*:PORT". */
static int
mock_addr_split(const char *addr, char *host, size_t hostlen, char *port,
    size_t portlen, int *any)
{
	const char	*colon, *h;
	size_t		 hl;

	*any = 0;
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');

		if (rb == NULL || rb[1] != ':')
			return -1;
		h = addr + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else if ((colon = strrchr(addr, ':')) == NULL) {
		/* A bare port. */
		h = "127.0.0.1";
		hl = strlen(h);
		colon = addr - 1;
	} else {
		h = addr;
		hl = (size_t)(colon - addr);
		if (memchr(h, ':', hl) != NULL)
			return -1;	/* IPv6 needs brackets */
	}
	if (hl == 0 || (hl == 1 && h[0] == '*')) {
		*any = 1;
		h = "0.0.0.0";
		hl = strlen(h);
	}
	if (hl >= hostlen || strlen(colon + 1) >= portlen || colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

/* Opens a listening socket on addr, IPv4 results first; -1 with a log. */
static evutil_socket_t
mock_listen_socket(const char *addr)
{
	struct addrinfo	 hints, *res, *ai;
	char		 host[256], port[32];
	int		 any, err, pass, one = 1, saved = 0;
	evutil_socket_t	 fd;

	if (mock_addr_split(addr, host, sizeof(host), port, sizeof(port),
	    &any) == -1) {
		log_msg(LOG_LEVEL_ERROR, "mock_error",
		    "--listen %s: expected HOST:PORT or [IPV6]:PORT", addr);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((err = getaddrinfo(host, port, &hints, &res)) != 0) {
		log_msg(LOG_LEVEL_ERROR, "mock_error", "--listen %s: %s", addr,
		    gai_strerror(err));
		return -1;
	}
	for (pass = 0; pass < 2; pass++) {
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			if ((ai->ai_family == AF_INET) != (pass == 0))
				continue;
			fd = socket(ai->ai_family, ai->ai_socktype |
			    SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
			if (fd == -1) {
				saved = errno;
				continue;
			}
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			    sizeof(one));
			if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
			    listen(fd, MOCK_BACKLOG) == 0) {
				freeaddrinfo(res);
				return fd;
			}
			saved = errno;
			close(fd);
		}
	}
	freeaddrinfo(res);
	log_msg(LOG_LEVEL_ERROR, "mock_error", "--listen %s: %s", addr,
	    strerror(saved));
	return -1;
}

/* Formats the bound address of fd as HOST:PORT or [HOST]:PORT. */
static int
mock_bound_address(evutil_socket_t fd, char *buf, size_t len, int *port)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sl = sizeof(ss);
	char			 host[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		return -1;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		*port = ntohs(s6->sin6_port);
		snprintf(buf, len, "[%s]:%d", host, *port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		*port = ntohs(s4->sin_port);
		snprintf(buf, len, "%s:%d", host, *port);
	}
	return 0;
}

/* Picks http/1.1 when the client offers ALPN; the mock speaks nothing else. */
static int
mock_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x08http/1.1";
	unsigned char	*sel;

	if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in,
	    inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* Logs the OpenSSL error queue under a context line. */
static void
mock_log_ssl_error(const char *what, const char *file)
{
	char	 buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	log_msg(LOG_LEVEL_ERROR, "mock_error", "%s %s: %s", what, file, buf);
	ERR_clear_error();
}

/* Builds the server TLS context: TLS 1.2+, tolerant of a missing close_notify. */
static SSL_CTX *
mock_tls_ctx(const char *cert, const char *key)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		mock_log_ssl_error("SSL_CTX_new", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_RENEGOTIATION);
	/* Ten thousand idle TLS streams should not hold 34 KiB buffers each. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(ctx, mock_alpn_cb, NULL);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		mock_log_ssl_error("--tls-cert", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		mock_log_ssl_error("--tls-key", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		mock_log_ssl_error("--tls-key does not match", cert);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Stops the loop on SIGTERM or SIGINT; main() then frees everything. */
static void
mock_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct mock_server	*srv = arg;

	log_msg(LOG_LEVEL_INFO, "mock_signal", "signal %d: stopping with %u "
	    "connections open", (int)sig, srv->nconns);
	event_base_loopbreak(srv->base);
}

/* Turns accepting back on after running out of descriptors. */
static void
mock_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mock_server	*srv = arg;

	evconnlistener_enable(srv->listener);
}

/* Pauses accepting briefly on EMFILE/ENFILE instead of spinning on it. */
static void
mock_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct mock_server	*srv = arg;
	struct timeval		 tv = { 0, MOCK_ACCEPT_PAUSE_MS * 1000 };
	int			 err = EVUTIL_SOCKET_ERROR();

	log_msg(LOG_LEVEL_WARN, "mock_accept_error", "accept: %s (%u "
	    "connections open)", strerror(err), srv->nconns);
	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		evconnlistener_disable(lev);
		evtimer_add(srv->accept_ev, &tv);
	}
}

/* Raises the descriptor limit to the hard limit: benchmarks open many. */
static void
mock_raise_nofile(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_msg(LOG_LEVEL_WARN, "mock_warning", "setrlimit NOFILE: %s",
		    strerror(errno));
}

/* Writes the record that tells tests where the mock listens. */
static void
mock_record_listening(const char *address, int port, const struct mock_args *a)
{
	struct jsonw	 w;
	char		 stack[512];

	jsonw_init(&w, stack, sizeof(stack));
	log_record_begin(&w, LOG_LEVEL_INFO, "listening");
	jsonw_kstr(&w, "address", address);
	jsonw_kint(&w, "port", port);
	jsonw_kbool(&w, "tls", a->tls_cert != NULL);
	jsonw_kint(&w, "pid", (int64_t)getpid());
	jsonw_kstr(&w, "version", CANCELPROXY_VERSION);
	jsonw_kint(&w, "first_token_ms", a->set.first_token_ms);
	jsonw_kint(&w, "interval_ms", a->set.interval_ms);
	jsonw_kint(&w, "tokens", a->set.tokens);
	log_record_end(&w);
	jsonw_free(&w);
}

/* Starts the mock, runs the loop until a signal, frees everything. */
int
main(int argc, char **argv)
{
	struct mock_server	 srv;
	struct mock_args	 a;
	struct event		*sigterm = NULL, *sigint = NULL;
	struct timeval		 tv;
	evutil_socket_t		 fd;
	char			 address[INET6_ADDRSTRLEN + 16];
	int			 port, rc = 1;

	mock_args_parse(argc, argv, &a);
	if (log_open(a.log_path, a.hop, LOG_LEVEL_INFO) == -1) {
		fprintf(stderr, "cancelproxy-mock: --log %s: %s\n", a.log_path,
		    strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	mock_raise_nofile();

	memset(&srv, 0, sizeof(srv));
	TAILQ_INIT(&srv.conns);
	TAILQ_INIT(&srv.dead);
	srv.defaults = a.set;
	srv.h2 = a.h2;
	srv.next_conn_id = 1;
	srv.next_resp_id = ((uint64_t)time(NULL) << 20) ^
	    ((uint64_t)getpid() << 40);

	if ((srv.base = event_base_new()) == NULL) {
		log_msg(LOG_LEVEL_ERROR, "mock_error", "event_base_new failed");
		goto out;
	}
	if (a.tls_cert != NULL &&
	    (srv.ssl_ctx = mock_tls_ctx(a.tls_cert, a.tls_key)) == NULL)
		goto out;
	if ((fd = mock_listen_socket(a.listen)) == -1)
		goto out;
	srv.listener = evconnlistener_new(srv.base, mock_http_accept_cb, &srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (srv.listener == NULL) {
		close(fd);
		log_msg(LOG_LEVEL_ERROR, "mock_error", "evconnlistener_new "
		    "failed");
		goto out;
	}
	if (srv.ssl_ctx != NULL && srv.h2.alpn)
		SSL_CTX_set_alpn_select_cb(srv.ssl_ctx, mock_h2_alpn_cb, NULL);
	evconnlistener_set_error_cb(srv.listener, mock_accept_error_cb);

	/*
	 * Streams that use the default timing share two common-timeout
	 * queues: O(1) timer inserts for the ten-thousand-stream benchmark.
	 */
	if (a.set.first_token_ms > 0) {
		tv.tv_sec = a.set.first_token_ms / 1000;
		tv.tv_usec = (a.set.first_token_ms % 1000) * 1000;
		srv.tv_first = event_base_init_common_timeout(srv.base, &tv);
	}
	if (a.set.interval_ms > 0) {
		tv.tv_sec = a.set.interval_ms / 1000;
		tv.tv_usec = (a.set.interval_ms % 1000) * 1000;
		srv.tv_interval = event_base_init_common_timeout(srv.base, &tv);
	}

	srv.reap_ev = event_new(srv.base, -1, 0, mock_http_reap_cb, &srv);
	srv.accept_ev = evtimer_new(srv.base, mock_accept_resume_cb, &srv);
	sigterm = evsignal_new(srv.base, SIGTERM, mock_signal_cb, &srv);
	sigint = evsignal_new(srv.base, SIGINT, mock_signal_cb, &srv);
	if (srv.reap_ev == NULL || srv.accept_ev == NULL || sigterm == NULL ||
	    sigint == NULL || evsignal_add(sigterm, NULL) == -1 ||
	    evsignal_add(sigint, NULL) == -1) {
		log_msg(LOG_LEVEL_ERROR, "mock_error", "event setup failed");
		goto out;
	}

	if (mock_bound_address(evconnlistener_get_fd(srv.listener), address,
	    sizeof(address), &port) == -1) {
		log_msg(LOG_LEVEL_ERROR, "mock_error", "getsockname: %s",
		    strerror(errno));
		goto out;
	}
	mock_record_listening(address, port, &a);

	if (event_base_dispatch(srv.base) == -1) {
		log_msg(LOG_LEVEL_ERROR, "mock_error", "event loop failed");
		goto out;
	}
	rc = 0;

out:
	mock_http_close_all(&srv);
	if (sigterm != NULL)
		event_free(sigterm);
	if (sigint != NULL)
		event_free(sigint);
	if (srv.accept_ev != NULL)
		event_free(srv.accept_ev);
	if (srv.reap_ev != NULL)
		event_free(srv.reap_ev);
	if (srv.listener != NULL)
		evconnlistener_free(srv.listener);
	if (srv.ssl_ctx != NULL)
		SSL_CTX_free(srv.ssl_ctx);
	if (srv.base != NULL)
		event_base_free(srv.base);
	if (rc == 0)
		log_msg(LOG_LEVEL_INFO, "mock_stopped", "stopped");
	log_close();
	libevent_global_shutdown();
	return rc;
}
