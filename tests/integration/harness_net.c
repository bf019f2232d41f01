/* harness_net: loopback sockets for integration tests: connect and listen
 * with timeouts, closing with FIN, RST or half-close on purpose, waiting
 * for the peer to go, and buffered client connections over TCP or TLS
 * (verified against a CA made at test time). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tests/integration/harness.h"

/*
 * A client connection. buf holds what was received and not consumed yet;
 * the HTTP reader (harness_http.c) keeps its parser in the http slot.
 * After a close_* the struct lives on (fd == -1) so its responses stay
 * readable until hconn_free() or exit.
 */
struct hconn {
	int		 fd;
	SSL_CTX		*ctx;
	SSL		*ssl;
	char		*buf;
	size_t		 len, cap;
	int		 peer;		/* 0, HCONN_PEER_FIN or _RST */
	void		*http;
	void		(*http_free)(void *);
	struct hconn	*next;
};

#define HCONN_PEER_FIN	1
#define HCONN_PEER_RST	2

static struct hconn	*conns;
static pid_t		 conns_owner;

static int
set_nonblock(int fd, int on)
{
	int	fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return -1;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl);
}

/* Waits for events on fd until an absolute deadline; 1 ready, 0 timeout,
 * -1 error. */
static int
wait_fd(int fd, short events, int64_t deadline_ms)
{
	struct pollfd	pfd;
	int64_t		left;
	int		r;

	for (;;) {
		left = deadline_ms - hnow_ms();
		if (left < 0)
			left = 0;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, (int)left);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == 0)
			errno = ETIMEDOUT;
		return r;
	}
}

int
hnet_connect(const char *host, int port)
{
	return hnet_connect_rcvbuf(host, port, 0);
}

int
hnet_connect_rcvbuf(const char *host, int port, int rcvbuf)
{
	struct addrinfo	 hints, *res, *ai;
	char		 serv[16];
	int64_t		 dl = hnow_ms() + hscaled(0);
	int		 fd = -1, r, soerr, one = 1;
	socklen_t	 sl;

	hcleanup_register_();
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(serv, sizeof(serv), "%d", port);
	if ((r = getaddrinfo(host, serv, &hints, &res)) != 0) {
		fprintf(stderr, "harness: connect %s: %s\n", host,
		    gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1)
			continue;
		if (rcvbuf > 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			    sizeof(rcvbuf));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, dl) == 1) {
			sl = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
			    &sl) == 0 && soerr == 0)
				break;
			errno = soerr;
		}
		r = errno;
		close(fd);
		fd = -1;
		errno = r;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		fprintf(stderr, "harness: connect %s:%d: %s\n", host, port,
		    strerror(errno));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	set_nonblock(fd, 0);
	return fd;
}

int
hnet_listen(const char *host, int *port)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 sl;
	int			 fd, one = 1;

	hcleanup_register_();
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sl = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sl = sizeof(*sin6);
	} else {
		fprintf(stderr, "harness: listen %s: not a numeric address\n",
		    host);
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) ==
	    -1)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) == -1 ||
	    listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		goto fail;
	if (port != NULL)
		*port = ntohs(ss.ss_family == AF_INET ? sin->sin_port :
		    sin6->sin6_port);
	return fd;
 fail:
	fprintf(stderr, "harness: listen %s: %s\n", host, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

int
hnet_accept(int lfd, int timeout_ms)
{
	int	fd, one = 1;
	int	ms = hscaled(timeout_ms);

	if (wait_fd(lfd, POLLIN, hnow_ms() + ms) != 1) {
		fprintf(stderr, "harness: no connection within %d ms\n", ms);
		return -1;
	}
	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
		fprintf(stderr, "harness: accept: %s\n", strerror(errno));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int
hnet_send_all(int fd, const void *buf, size_t len)
{
	const char	*p = buf;
	int64_t		 dl = hnow_ms() + hscaled(0);
	ssize_t		 n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    wait_fd(fd, POLLOUT, dl) == 1)
			continue;
		fprintf(stderr, "harness: send: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int
hnet_send_str(int fd, const char *s)
{
	return hnet_send_all(fd, s, strlen(s));
}

ssize_t
hnet_recv_until(int fd, char *buf, size_t cap, const char *needle,
    int timeout_ms)
{
	int64_t	dl = hnow_ms() + hscaled(timeout_ms);
	size_t	len = 0;
	ssize_t	n;

	if (cap == 0)
		return -1;
	buf[0] = '\0';
	for (;;) {
		if (needle != NULL && strstr(buf, needle) != NULL)
			return (ssize_t)len;
		if (len + 1 >= cap) {
			fprintf(stderr, "harness: recv: buffer full\n");
			return -1;
		}
		n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n > 0) {
			len += (size_t)n;
			buf[len] = '\0';
			continue;
		}
		if (n == 0)
			return needle == NULL ? (ssize_t)len : -1;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (wait_fd(fd, POLLIN, dl) != 1) {
			fprintf(stderr, "harness: recv: no \"%s\" within %d "
			    "ms\n", needle ? needle : "close",
			    hscaled(timeout_ms));
			return -1;
		}
	}
}

/* Discards what the kernel holds unread for fd. */
static void
drain_fd(int fd)
{
	char	buf[16384];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/*
 * Closing a socket with unread bytes sends an RST, not a FIN, so a FIN
 * close sends the FIN first (shutdown), then drops what is unread, then
 * closes; bytes still arriving after that are answered with an RST, but
 * the FIN is ahead of it.
 */
void
hnet_close_fin(int fd)
{
	if (fd == -1)
		return;
	(void)shutdown(fd, SHUT_WR);
	drain_fd(fd);
	close(fd);
}

void
hnet_close_rst(int fd)
{
	struct linger	l = { 1, 0 };

	if (fd == -1)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

int
hnet_shutdown_wr(int fd)
{
	if (shutdown(fd, SHUT_WR) == -1) {
		fprintf(stderr, "harness: shutdown: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int
hnet_wait_closed(int fd, int timeout_ms)
{
	int64_t	dl = hnow_ms() + hscaled(timeout_ms);
	char	buf[16384];
	ssize_t	n;

	for (;;) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n == 0)
			return HNET_FIN;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return HNET_RST;
		if (wait_fd(fd, POLLIN, dl) != 1)
			return HNET_TIMEOUT;
	}
}

/* ---- buffered connections ---- */

static struct hconn *
conn_new(int fd)
{
	struct hconn	*c;

	hcleanup_register_();
	if (conns_owner != getpid()) {
		conns = NULL;		/* a fork's copy of the parent's list */
		conns_owner = getpid();
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	c->fd = fd;
	c->cap = 16384;
	if ((c->buf = malloc(c->cap)) == NULL)
		abort();
	c->buf[0] = '\0';
	set_nonblock(fd, 1);
	c->next = conns;
	conns = c;
	return c;
}

struct hconn *
hconn_wrap(int fd)
{
	if (fd == -1)
		return NULL;
	return conn_new(fd);
}

struct hconn *
hconn_connect_rcvbuf(const char *host, int port, int rcvbuf)
{
	int	fd;

	if ((fd = hnet_connect_rcvbuf(host, port, rcvbuf)) == -1)
		return NULL;
	return conn_new(fd);
}

struct hconn *
hconn_connect(const char *host, int port)
{
	return hconn_connect_rcvbuf(host, port, 0);
}

static void
tls_errors(const char *what)
{
	unsigned long	e;
	char		buf[256];

	fprintf(stderr, "harness: %s\n", what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, "harness:   %s\n", buf);
	}
}

/* Drives a TLS operation that wants to read or write until an absolute
 * deadline; 1 to retry, 0 on timeout or failure. */
static int
tls_wait(struct hconn *c, int ret, int64_t deadline_ms)
{
	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(c->fd, POLLIN, deadline_ms) == 1;
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(c->fd, POLLOUT, deadline_ms) == 1;
	default:
		return 0;
	}
}

struct hconn *
hconn_connect_tls(const char *host, int port, const char *ca_path,
    const char *sni)
{
	static const unsigned char	 alpn[] = "\x08http/1.1";
	struct hconn			*c;
	struct in6_addr			 a6;
	int64_t				 dl;
	long				 vr;
	int				 r, is_ip;

	if ((c = hconn_connect(host, port)) == NULL)
		return NULL;
	dl = hnow_ms() + hscaled(0);
	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto ssl_fail;
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (ca_path != NULL) {
		if (SSL_CTX_load_verify_locations(c->ctx, ca_path, NULL) != 1)
			goto ssl_fail;
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	} else
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	if ((c->ssl = SSL_new(c->ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1)
		goto ssl_fail;
	SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_alpn_protos(c->ssl, alpn, sizeof(alpn) - 1);
	if (sni != NULL) {
		if (SSL_set_tlsext_host_name(c->ssl, sni) != 1 ||
		    SSL_set1_host(c->ssl, sni) != 1)
			goto ssl_fail;
	} else {
		is_ip = inet_pton(AF_INET, host, &a6) == 1 ||
		    inet_pton(AF_INET6, host, &a6) == 1;
		if (is_ip) {
			if (X509_VERIFY_PARAM_set1_ip_asc(
			    SSL_get0_param(c->ssl), host) != 1)
				goto ssl_fail;
		} else if (SSL_set1_host(c->ssl, host) != 1)
			goto ssl_fail;
	}
	while ((r = SSL_connect(c->ssl)) != 1) {
		if (!tls_wait(c, r, dl)) {
			vr = SSL_get_verify_result(c->ssl);
			fprintf(stderr, "harness: TLS handshake with %s:%d "
			    "failed%s%s\n", host, port,
			    vr != X509_V_OK ? ": " : "",
			    vr != X509_V_OK ?
			    X509_verify_cert_error_string(vr) : "");
			tls_errors("TLS errors:");
			hconn_free(c);
			return NULL;
		}
	}
	return c;

 ssl_fail:
	tls_errors("TLS set-up failed:");
	hconn_free(c);
	return NULL;
}

int
hconn_fd(struct hconn *c)
{
	return c->fd;
}

int
hconn_send(struct hconn *c, const void *buf, size_t len)
{
	const char	*p = buf;
	int64_t		 dl = hnow_ms() + hscaled(0);
	size_t		 w;
	ssize_t		 n;
	int		 r;

	if (c->fd == -1) {
		errno = EBADF;
		fprintf(stderr, "harness: send on a closed connection\n");
		return -1;
	}
	if (c->ssl == NULL) {
		while (len > 0) {
			n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0) {
				p += n;
				len -= (size_t)n;
			} else if (n == -1 && errno == EINTR)
				continue;
			else if (n == -1 && errno == EAGAIN &&
			    wait_fd(c->fd, POLLOUT, dl) == 1)
				continue;
			else {
				fprintf(stderr, "harness: send: %s\n",
				    strerror(errno));
				return -1;
			}
		}
		return 0;
	}
	while (len > 0) {
		if ((r = SSL_write_ex(c->ssl, p, len, &w)) == 1) {
			p += w;
			len -= w;
		} else if (!tls_wait(c, r, dl)) {
			if (errno == 0)
				errno = EPIPE;
			tls_errors("TLS send failed:");
			return -1;
		}
	}
	return 0;
}

int
hconn_send_str(struct hconn *c, const char *s)
{
	return hconn_send(c, s, strlen(s));
}

/* Makes room for n more bytes plus the NUL. */
static void
conn_reserve(struct hconn *c, size_t n)
{
	char	*nb;

	if (c->len + n + 1 <= c->cap)
		return;
	while (c->len + n + 1 > c->cap)
		c->cap *= 2;
	if ((nb = realloc(c->buf, c->cap)) == NULL)
		abort();
	c->buf = nb;
}

/* One read of whatever is there; bytes added, 0 at close, -1 with errno
 * (EAGAIN: nothing yet). */
static ssize_t
conn_read_once(struct hconn *c)
{
	ssize_t	n;
	size_t	got;
	int	r, e;

	conn_reserve(c, 16384);
	if (c->ssl == NULL) {
		n = recv(c->fd, c->buf + c->len, 16384, MSG_DONTWAIT);
		if (n > 0) {
			c->len += (size_t)n;
			c->buf[c->len] = '\0';
			return n;
		}
		if (n == 0) {
			c->peer = HCONN_PEER_FIN;
			return 0;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			c->peer = HCONN_PEER_RST;
		return -1;
	}
	errno = 0;
	if ((r = SSL_read_ex(c->ssl, c->buf + c->len, 16384, &got)) == 1) {
		c->len += got;
		c->buf[c->len] = '\0';
		return (ssize_t)got;
	}
	e = errno;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:	/* close_notify, or a bare FIN */
		c->peer = HCONN_PEER_FIN;
		return 0;
	case SSL_ERROR_SYSCALL:
		c->peer = e == 0 ? HCONN_PEER_FIN : HCONN_PEER_RST;
		ERR_clear_error();
		if (e == 0)
			return 0;
		errno = e;
		return -1;
	default:
		c->peer = HCONN_PEER_RST;
		tls_errors("TLS read failed:");
		errno = EPROTO;
		return -1;
	}
}

/* Reads once something arrives, until an absolute deadline: bytes added,
 * 0 at close, -1 on timeout (ETIMEDOUT) or error. */
int
hconn_fill_until_(struct hconn *c, int64_t deadline_ms)
{
	ssize_t	n;

	if (c->fd == -1) {
		errno = EBADF;
		return -1;
	}
	if (c->peer == HCONN_PEER_FIN)
		return 0;
	if (c->peer == HCONN_PEER_RST) {
		errno = ECONNRESET;
		return -1;
	}
	for (;;) {
		if ((n = conn_read_once(c)) >= 0)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (wait_fd(c->fd, POLLIN, deadline_ms) != 1)
			return -1;
	}
}

ssize_t
hconn_fill(struct hconn *c, int timeout_ms)
{
	return hconn_fill_until_(c, hnow_ms() + hscaled(timeout_ms));
}

const char *
hconn_data(struct hconn *c, size_t *len)
{
	if (len != NULL)
		*len = c->len;
	return c->buf;
}

void
hconn_consume(struct hconn *c, size_t n)
{
	if (n > c->len)
		n = c->len;
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	c->buf[c->len] = '\0';
}

ssize_t
hconn_read_until(struct hconn *c, const char *needle, int timeout_ms)
{
	int64_t		 dl = hnow_ms() + hscaled(timeout_ms);
	const char	*hit;
	size_t		 nl = strlen(needle);

	for (;;) {
		if ((hit = memmem(c->buf, c->len, needle, nl)) != NULL)
			return (ssize_t)(hit - c->buf) + (ssize_t)nl;
		if (hconn_fill_until_(c, dl) <= 0) {
			fprintf(stderr, "harness: no \"%s\" in %zu bytes read "
			    "(%s)\n", needle, c->len, c->peer ? "peer closed" :
			    strerror(errno));
			return -1;
		}
	}
}

int
hconn_wait_closed(struct hconn *c, int timeout_ms)
{
	int64_t	dl = hnow_ms() + hscaled(timeout_ms);
	int	n;

	for (;;) {
		n = hconn_fill_until_(c, dl);
		if (n == 0)
			return HNET_FIN;
		if (n > 0)
			continue;
		if (c->peer == HCONN_PEER_RST)
			return HNET_RST;
		if (errno == ETIMEDOUT)
			return HNET_TIMEOUT;
		return c->fd == -1 ? HNET_TIMEOUT : HNET_RST;
	}
}

int
hconn_peer_closed(struct hconn *c)
{
	return c->peer;
}

/* Drops the TLS state without sending anything. */
static void
conn_drop_tls(struct hconn *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	c->ssl = NULL;
	c->ctx = NULL;
}

void
hconn_close_fin(struct hconn *c)
{
	if (c->fd == -1)
		return;
	conn_drop_tls(c);
	hnet_close_fin(c->fd);
	c->fd = -1;
}

void
hconn_close_rst(struct hconn *c)
{
	if (c->fd == -1)
		return;
	conn_drop_tls(c);
	hnet_close_rst(c->fd);
	c->fd = -1;
}

void
hconn_close_notify(struct hconn *c)
{
	if (c->fd == -1)
		return;
	if (c->ssl != NULL)
		(void)SSL_shutdown(c->ssl);
	hconn_close_fin(c);
}

int
hconn_shutdown_wr(struct hconn *c)
{
	if (c->fd == -1)
		return -1;
	if (c->ssl != NULL)
		(void)SSL_shutdown(c->ssl);
	return hnet_shutdown_wr(c->fd);
}

/* The HTTP reader's state for this connection, made on first use. */
void *
hconn_http_(struct hconn *c, void *(*make)(void), void (*release)(void *))
{
	if (c->http == NULL) {
		c->http = make();
		c->http_free = release;
	}
	return c->http;
}

static void
conn_release(struct hconn *c)
{
	hconn_close_fin(c);
	if (c->http != NULL)
		c->http_free(c->http);
	free(c->buf);
	free(c);
}

void
hconn_free(struct hconn *c)
{
	struct hconn	**pp;

	if (c == NULL)
		return;
	for (pp = &conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	conn_release(c);
}

void
hconn_cleanup_(void)
{
	struct hconn	*c;

	if (conns_owner != getpid())
		return;
	while ((c = conns) != NULL) {
		conns = c->next;
		conn_release(c);
	}
}
