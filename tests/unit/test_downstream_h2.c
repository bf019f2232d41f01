/* Unit tests for downstream_h2, the HTTP/2 client protocol: a real client
 * connection accepted with downstream_accept() on a socketpair, an nghttp2
 * client session in the test on the other end, and a fake upstream
 * protocol (the worker's upstream_proto seam), so the frames a session's
 * calls turn into, and the calls a client's frames turn into, are checked
 * without a process or a model server. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "downstream/downstream.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "upstream/upstream.h"
#include "tests/unit/unit_fake_up.h"
#include "tests/unit/unit_worker.h"


/* The test's HTTP/2 client and what it received. */
struct peer {
	int		 fd;
	nghttp2_session	*ng;
	int		 status[16];	/* by stream id / 2 */
	int		 ended[16];
	int		 rst[16];	/* error code + 1 */
	size_t		 body[16];
	char		 text[16][256];
	int		 goaway;	/* error code + 1 */
};

static struct worker	 w;
static struct client	*c;
static struct peer	 p;
static char		 logpath[] = "/tmp/cp-dh2-XXXXXX";
static char		 confpath[] = "/tmp/cp-dh2-conf-XXXXXX";

static const char conf_text[] =
    "{ \"hop\": \"unit\", \"workers\": 1,"
    "  \"listen\": [ { \"address\": \"127.0.0.1:0\" } ],"
    "  \"upstreams\": { \"main\": { \"url\": \"http://127.0.0.1:9\" } },"
    "  \"routes\": [ { \"path_prefix\": \"/\", \"upstream\": \"main\" } ],"
    "  \"limits\": { \"http2\": { \"max_concurrent_streams\": 4 } } }";

static int
peer_frame_cb(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	int	 i = f->hd.stream_id / 2;

	if (i >= 16)
		return 0;
	if (f->hd.type == NGHTTP2_RST_STREAM)
		p.rst[i] = (int)f->rst_stream.error_code + 1;
	if (f->hd.type == NGHTTP2_GOAWAY)
		p.goaway = (int)f->goaway.error_code + 1;
	if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		p.ended[i] = 1;
	return 0;
}

static int
peer_header_cb(nghttp2_session *ng, const nghttp2_frame *f,
    const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen,
    uint8_t flags, void *arg)
{
	if (nlen == 7 && memcmp(name, ":status", 7) == 0 &&
	    f->hd.stream_id / 2 < 16)
		p.status[f->hd.stream_id / 2] = atoi((const char *)value);
	return 0;
}

static int
peer_data_cb(nghttp2_session *ng, uint8_t flags, int32_t id,
    const uint8_t *data, size_t len, void *arg)
{
	int	 i = id / 2;
	size_t	 have;

	if (i >= 16)
		return 0;
	have = strlen(p.text[i]);
	if (have + len < sizeof(p.text[i]))
		memcpy(p.text[i] + have, data, len);
	p.body[i] += len;
	return 0;
}

/* Moves bytes both ways until neither side has anything to say. */
static void
pump(void)
{
	const uint8_t	*data;
	uint8_t		 buf[65536];
	ssize_t		 n;
	int		 round, moved;

	for (round = 0; round < 200; round++) {
		moved = 0;
		while ((n = nghttp2_session_mem_send(p.ng, &data)) > 0) {
			cr_assert_eq(write(p.fd, data, (size_t)n), n);
			moved = 1;
		}
		event_base_loop(w.base, EVLOOP_NONBLOCK);
		while ((n = read(p.fd, buf, sizeof(buf))) > 0) {
			cr_assert_geq(nghttp2_session_mem_recv(p.ng, buf,
			    (size_t)n), 0);
			moved = 1;
		}
		if (!moved && round > 3)
			break;
	}
}

static void
setup(void)
{
	nghttp2_session_callbacks *cbs;
	struct sockaddr_in sin;
	int		 sv[2];

	unit_worker_init(&w, conf_text, confpath, logpath);
	w.upstream_proto = &fake_up;
	calls[0] = '\0';
	memset(&p, 0, sizeof(p));

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(4242);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c = downstream_accept(&w, sv[0], (struct sockaddr *)&sin, 0);
	cr_assert_not_null(c);
	p.fd = sv[1];
	fcntl(p.fd, F_SETFL, O_NONBLOCK);
	cr_assert_eq(nghttp2_session_callbacks_new(&cbs), 0);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs,
	    peer_frame_cb);
	nghttp2_session_callbacks_set_on_header_callback(cbs, peer_header_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
	    peer_data_cb);
	cr_assert_eq(nghttp2_session_client_new(&p.ng, cbs, NULL), 0);
	nghttp2_session_callbacks_del(cbs);
}

static void
teardown(void)
{
	/* The client may be closed and freed by the test already. */
	while (!TAILQ_EMPTY(&w.clients))
		downstream_close(TAILQ_FIRST(&w.clients), CANCEL_VIA_EOF);
	worker_free_dead(&w);
	nghttp2_session_del(p.ng);
	close(p.fd);
	unit_worker_fini(&w, confpath, logpath);
}

TestSuite(downstream_h2, .init = setup, .fini = teardown);

/* The client's SETTINGS, with the stream window given (-1: default). */
static void
peer_settings(int window)
{
	nghttp2_settings_entry iv = { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
	    (uint32_t)window };

	cr_assert_eq(nghttp2_submit_settings(p.ng, NGHTTP2_FLAG_NONE, &iv,
	    window >= 0 ? 1 : 0), 0);
}

static const char req_body[] = "{\"model\":\"m\",\"stream\":true}";

/* The request body for nghttp2, whole in one DATA frame with END_STREAM. */
static ssize_t
peer_body_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	size_t	 n = sizeof(req_body) - 1;

	cr_assert_geq(len, n);
	memcpy(buf, req_body, n);
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* A POST of a small JSON body on a new stream; its id. */
static int32_t
peer_request(const char *rid)
{
	nghttp2_data_provider dp = { .read_callback = peer_body_cb };
	nghttp2_nv	 nv[] = {
		{ (uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0 },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
		{ (uint8_t *)":authority", (uint8_t *)"unit", 10, 4, 0 },
		{ (uint8_t *)":path", (uint8_t *)"/v1/chat", 5, 8, 0 },
		{ (uint8_t *)"content-type", (uint8_t *)"application/json", 12,
		    16, 0 },
		{ (uint8_t *)"x-request-id", (uint8_t *)rid, 12, strlen(rid),
		    0 },
	};
	int32_t		 id;

	id = nghttp2_submit_request(p.ng, NULL, nv, sizeof(nv) / sizeof(nv[0]),
	    &dp, NULL);
	cr_assert_gt(id, 0);
	pump();
	return id;
}

/* The session of stream id. */
static struct session *
session_of(int32_t id)
{
	struct session	*s;

	TAILQ_FOREACH(s, &w.sessions, entry)
		if (s->stream_id == id)
			return s;
	return NULL;
}

static void
sse_head(struct session *s)
{
	cr_assert_eq(headers_add_name(&s->resp_headers, "Content-Type", 12), 0);
	headers_name_done(&s->resp_headers);
	cr_assert_eq(headers_add_value(&s->resp_headers, "text/event-stream",
	    17), 0);
	cr_assert_eq(session_on_response_head(s, 200, -1), 0);
}

static void
sse_bytes(struct session *s, const char *ev, size_t n)
{
	cr_assert_eq(session_on_body(s, ev, n), 0);
	session_flush_body(s);
}

/* The last record of this event in the log. */
static cJSON *
record(const char *event)
{
	FILE	*f = fopen(logpath, "r");
	char	 line[8192];
	cJSON	*found = NULL, *j, *e;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		cr_assert_not_null(j = cJSON_Parse(line), "not JSON: %s", line);
		e = cJSON_GetObjectItem(j, "event");
		if (cJSON_IsString(e) && strcmp(e->valuestring, event) == 0) {
			cJSON_Delete(found);
			found = j;
		} else
			cJSON_Delete(j);
	}
	fclose(f);
	return found;
}

static int
count(const char *event)
{
	FILE	*f = fopen(logpath, "r");
	char	 line[8192];
	int	 n = 0;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, event) != NULL)
			n++;
	fclose(f);
	return n;
}

static void
open_peer(int window)
{
	peer_settings(window);
	pump();
	cr_assert_eq(c->proto, &downstream_h2, "the preface did not pick h2");
}

/* A whole stream: head, body, end as HEADERS, DATA, END_STREAM, with the
 * request record naming the protocol and the stream. */
Test(downstream_h2, head_body_end)
{
	struct session	*s;
	int32_t		 id;
	cJSON		*r;

	open_peer(-1);
	id = peer_request("one");
	cr_assert_str_eq(calls, "start;");
	cr_assert_not_null(s = session_of(id));
	cr_assert_str_eq(s->protocol, "h2");
	cr_assert_str_eq(s->client_version, "2");
	session_upstream_connected(s);
	sse_head(s);
	sse_bytes(s, "data: a\n\n", 9);
	session_on_response_complete(s);
	pump();
	cr_assert_eq(p.status[id / 2], 200);
	cr_assert_str_eq(p.text[id / 2], "data: a\n\n");
	cr_assert_eq(p.ended[id / 2], 1);
	cr_assert_eq(p.rst[id / 2], 0);
	cr_assert_not_null(r = record("request"));
	cr_assert_str_eq(cJSON_GetObjectItem(r, "protocol")->valuestring, "h2");
	cr_assert_eq(cJSON_GetObjectItem(r, "stream_id")->valueint, id);
	cJSON_Delete(r);
}

/* RST_STREAM from the client cancels that session's upstream at once; a
 * sibling stream goes on. */
Test(downstream_h2, rst_stream_cancels_one)
{
	struct session	*a, *b;
	int32_t		 ia, ib;
	cJSON		*r;

	open_peer(-1);
	ia = peer_request("a");
	ib = peer_request("b");
	cr_assert_not_null(a = session_of(ia));
	cr_assert_not_null(b = session_of(ib));
	session_upstream_connected(a);
	session_upstream_connected(b);
	sse_head(a);
	sse_head(b);
	calls[0] = '\0';
	cr_assert_eq(nghttp2_submit_rst_stream(p.ng, NGHTTP2_FLAG_NONE, ia,
	    NGHTTP2_CANCEL), 0);
	pump();
	cr_assert_str_eq(calls, "cancel;");
	cr_assert_not_null(r = record("cancel"));
	cr_assert_str_eq(cJSON_GetObjectItem(r, "detected_via")->valuestring,
	    "rst_stream");
	cr_assert_eq(cJSON_GetObjectItem(r, "stream_id")->valueint, ia);
	cJSON_Delete(r);
	cr_assert_eq(session_of(ia), NULL);
	cr_assert_eq(session_of(ib), b);
	sse_bytes(b, "data: b\n\n", 9);
	pump();
	cr_assert_str_eq(p.text[ib / 2], "data: b\n\n");
}

/* A shut window: the body waits in the stream's buffer, queued() counts
 * it, the upstream is paused above the mark and resumed once the window
 * opens and the buffer drains. */
Test(downstream_h2, window_is_back_pressure)
{
	static char	 chunk[16384];
	struct session	*s;
	int32_t		 id;
	int		 i;

	memset(chunk, 'x', sizeof(chunk));
	chunk[sizeof(chunk) - 1] = '\n';
	open_peer(0);
	id = peer_request("slow");
	cr_assert_not_null(s = session_of(id));
	session_upstream_connected(s);
	sse_head(s);
	calls[0] = '\0';
	for (i = 0; i < 5; i++)
		sse_bytes(s, chunk, sizeof(chunk));
	pump();
	cr_assert_eq(p.body[id / 2], 0, "bytes passed a shut window");
	cr_assert_eq(c->proto->queued(s), 5 * sizeof(chunk));
	cr_assert_str_eq(calls, "pause;");
	cr_assert_eq(nghttp2_submit_window_update(p.ng, NGHTTP2_FLAG_NONE, id,
	    1 << 20), 0);
	pump();
	cr_assert_eq(p.body[id / 2], 5 * sizeof(chunk));
	cr_assert_eq(c->proto->queued(s), 0);
	cr_assert_str_eq(calls, "pause;resume;");
}

/* GOAWAY from the client: every open stream is cancelled, one record
 * each. */
Test(downstream_h2, goaway_cancels_every_stream)
{
	int32_t		 ia, ib;

	open_peer(-1);
	ia = peer_request("g1");
	ib = peer_request("g2");
	session_upstream_connected(session_of(ia));
	session_upstream_connected(session_of(ib));
	calls[0] = '\0';
	cr_assert_eq(nghttp2_submit_goaway(p.ng, NGHTTP2_FLAG_NONE, 0,
	    NGHTTP2_NO_ERROR, NULL, 0), 0);
	pump();
	cr_assert_str_eq(calls, "cancel;cancel;");
	cr_assert_eq(count("\"detected_via\":\"goaway\""), 2);
	cr_assert(TAILQ_EMPTY(&w.clients), "the connection is still open");
	c = NULL;
}

/* An error before the head is an HTTP/2 answer on the stream; a stream
 * the session cannot end cleanly is reset with INTERNAL_ERROR. */
Test(downstream_h2, refusal_and_reset)
{
	struct session	*s;
	int32_t		 ia, ib;

	open_peer(-1);
	ia = peer_request("r1");
	cr_assert_not_null(s = session_of(ia));
	session_refuse(s, 429, "slow_down", "too many");
	pump();
	cr_assert_eq(p.status[ia / 2], 429);
	cr_assert_not_null(strstr(p.text[ia / 2], "slow_down"));
	cr_assert_eq(p.ended[ia / 2], 1);
	ib = peer_request("r2");
	cr_assert_not_null(s = session_of(ib));
	session_upstream_connected(s);
	cr_assert_eq(headers_add_name(&s->resp_headers, "Content-Type", 12), 0);
	headers_name_done(&s->resp_headers);
	cr_assert_eq(headers_add_value(&s->resp_headers, "application/json",
	    16), 0);
	cr_assert_eq(session_on_response_head(s, 200, 100), 0);
	c->proto->reset(s);
	pump();
	cr_assert_eq(p.rst[ib / 2], NGHTTP2_INTERNAL_ERROR + 1);
}
