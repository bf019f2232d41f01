/* metrics: per-worker counters, relaxed atomics (one writer each), and
 * the exposition format with HELP and TYPE for every family. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "proxy/headers.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"

/* Upper bounds in microseconds: 10 µs .. 60 s. */
static const uint64_t bucket_us[METRICS_BUCKETS] = {
	10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000, 500000,
	1000000, 5000000, 30000000, 60000000,
};

static uint64_t	 reloads_ok, reloads_failed;

void
metrics_add(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) +
	    n, __ATOMIC_RELAXED);
}

static uint64_t
metrics_get(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

void
metrics_observe(struct metrics_hist *h, uint64_t us)
{
	int	 i;

	for (i = 0; i < METRICS_BUCKETS && us > bucket_us[i]; i++)
		;
	metrics_add(&h->count[i], 1);
	metrics_add(&h->n, 1);
	metrics_add(&h->sum_us, us);
}

void
metrics_live(struct metrics *m, int delta)
{
	__atomic_store_n(&m->live_streams, __atomic_load_n(&m->live_streams,
	    __ATOMIC_RELAXED) + delta, __ATOMIC_RELAXED);
}

void
metrics_stream(struct metrics *m, const char *protocol)
{
	metrics_add(&m->streams[protocol != NULL && protocol[0] == 'h' &&
	    protocol[1] == '2'], 1);
}

/* Counts a finished request under its (route, upstream, status). */
/* "route\tupstream\tstatus", cut short as snprintf would: per request,
 * so without printf. */
static void
metrics_request_key(char *key, size_t len, const char *route,
    const char *upstream, int status)
{
	const char	*parts[3];
	char		 num[16], *d = num + sizeof(num);
	unsigned	 v = status < 0 ? 0u - (unsigned)status : (unsigned)status;
	size_t		 o = 0, n, j;

	*--d = '\0';
	do {
		*--d = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (status < 0)
		*--d = '-';
	parts[0] = route ? route : "";
	parts[1] = upstream ? upstream : "";
	parts[2] = d;
	for (j = 0; j < 3; j++) {
		if (j > 0 && o + 1 < len)
			key[o++] = '\t';
		n = strlen(parts[j]);
		if (n > len - 1 - o)
			n = len - 1 - o;
		memcpy(key + o, parts[j], n);
		o += n;
	}
	key[o] = '\0';
}

void
metrics_request(struct metrics *m, const char *route, const char *upstream,
    int status)
{
	char		 key[160];
	uint32_t	 h = 2166136261u;
	size_t		 i, k;

	metrics_request_key(key, sizeof(key), route, upstream, status);
	for (i = 0; key[i]; i++)
		h = (h ^ (unsigned char)key[i]) * 16777619u;
	for (i = 0; i < METRICS_REQ_SLOTS; i++) {
		k = (h + i) % METRICS_REQ_SLOTS;
		if (m->req[k].key[0] == '\0') {
			/* Publish the key before the count can be read. */
			memcpy(m->req[k].key, key, sizeof(key));
			__atomic_thread_fence(__ATOMIC_RELEASE);
		}
		if (strcmp(m->req[k].key, key) == 0) {
			metrics_add(&m->req[k].n, 1);
			return;
		}
	}
	metrics_add(&m->req_overflow, 1);
}

void
metrics_cancel(struct metrics *m, const struct cancel_record *r)
{
	if ((unsigned)r->kind < METRICS_KINDS &&
	    (unsigned)r->phase < METRICS_PHASES)
		metrics_add(&m->cancels[r->kind][r->phase][r->direction ==
		    CANCEL_DIR_DOWNSTREAM], 1);
	if (r->detect_to_close_us >= 0)
		metrics_observe(&m->detect_to_close,
		    (uint64_t)r->detect_to_close_us);
}

void
metrics_reload(int ok)
{
	__atomic_add_fetch(ok ? &reloads_ok : &reloads_failed, 1,
	    __ATOMIC_RELAXED);
}

static void
metrics_head(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* Label values: backslash, quote and newline escaped. */
static void
metrics_label(struct evbuffer *out, const char *v, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (v[i] == '\\' || v[i] == '"')
			evbuffer_add_printf(out, "\\%c", v[i]);
		else if (v[i] == '\n')
			evbuffer_add_lit(out, "\\n");
		else
			evbuffer_add(out, &v[i], 1);
	}
}

static void
metrics_hist_write(struct evbuffer *out, const char *name, const char *help,
    struct worker *ws, int n, size_t off)
{
	uint64_t	 c[METRICS_BUCKETS + 1] = { 0 }, total = 0, sum = 0, cum;
	int		 k, i;

	for (k = 0; k < n; k++) {
		const struct metrics_hist *h = (const void *)
		    ((const char *)&ws[k].metrics + off);

		for (i = 0; i <= METRICS_BUCKETS; i++)
			c[i] += metrics_get(&h->count[i]);
		total += metrics_get(&h->n);
		sum += metrics_get(&h->sum_us);
	}
	metrics_head(out, name, "histogram", help);
	for (i = 0, cum = 0; i < METRICS_BUCKETS; i++) {
		cum += c[i];
		evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
		    (double)bucket_us[i] / 1e6, (unsigned long long)cum);
	}
	cum += c[METRICS_BUCKETS];
	evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n"
	    "%s_sum %.6f\n%s_count %llu\n", name, (unsigned long long)cum,
	    name, (double)sum / 1e6, name, (unsigned long long)total);
}

void
metrics_write(struct evbuffer *out, struct worker *ws, int n)
{
	struct metrics_req	*all;
	size_t			 nall = 0, i, j;
	uint64_t		 v, bytes = 0, events = 0;
	int64_t			 live = 0;
	int			 k, a, b, d;

	metrics_head(out, "cancelproxy_requests_total", "counter",
	    "Finished requests by route, upstream and status.");
	all = calloc((size_t)n * METRICS_REQ_SLOTS + 1, sizeof(*all));
	for (k = 0; all != NULL && k < n; k++)
		for (i = 0; i < METRICS_REQ_SLOTS; i++) {
			const struct metrics_req *r = &ws[k].metrics.req[i];

			if ((v = metrics_get(&r->n)) == 0)
				continue;
			for (j = 0; j < nall; j++)
				if (strcmp(all[j].key, r->key) == 0)
					break;
			if (j == nall)
				memcpy(all[nall++].key, r->key, sizeof(r->key));
			all[j].n += v;
		}
	for (j = 0; j < nall; j++) {
		const char *t1 = strchr(all[j].key, '\t');
		const char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;

		if (t2 == NULL)
			continue;
		evbuffer_add_lit(out, "cancelproxy_requests_total{route=\"");
		metrics_label(out, all[j].key, (size_t)(t1 - all[j].key));
		evbuffer_add_lit(out, "\",upstream=\"");
		metrics_label(out, t1 + 1, (size_t)(t2 - t1 - 1));
		evbuffer_add_printf(out, "\",status=\"%s\"} %llu\n", t2 + 1,
		    (unsigned long long)all[j].n);
	}
	free(all);

	metrics_head(out, "cancelproxy_cancels_total", "counter",
	    "Cancels by origin kind, phase and direction.");
	for (a = 0; a < METRICS_KINDS; a++)
		for (b = 0; b < METRICS_PHASES; b++)
			for (d = 0; d < 2; d++) {
				for (k = 0, v = 0; k < n; k++)
					v += metrics_get(
					    &ws[k].metrics.cancels[a][b][d]);
				if (v == 0)
					continue;
				evbuffer_add_printf(out, "cancelproxy_cancels_"
				    "total{kind=\"%s\",phase=\"%s\","
				    "direction=\"%s\"} %llu\n",
				    cancel_kind_name(a), cancel_phase_name(b),
				    cancel_direction_name(d),
				    (unsigned long long)v);
			}
	metrics_hist_write(out, "cancelproxy_detect_to_close_seconds",
	    "From noticing a cancel to the other side's socket being closed.",
	    ws, n, offsetof(struct metrics, detect_to_close));
	metrics_hist_write(out, "cancelproxy_upstream_connect_seconds",
	    "Upstream resolve, connect and TLS handshake.", ws, n,
	    offsetof(struct metrics, connect));
	metrics_hist_write(out, "cancelproxy_upstream_first_byte_seconds",
	    "From the request sent to the first response body byte.", ws, n,
	    offsetof(struct metrics, first_byte));
	for (k = 0; k < n; k++) {
		bytes += metrics_get(&ws[k].metrics.bytes_out);
		events += metrics_get(&ws[k].metrics.sse_events);
		live += __atomic_load_n(&ws[k].metrics.live_streams,
		    __ATOMIC_RELAXED);
	}
	metrics_head(out, "cancelproxy_live_streams", "gauge",
	    "Sessions in progress.");
	evbuffer_add_printf(out, "cancelproxy_live_streams %lld\n",
	    (long long)live);
	metrics_head(out, "cancelproxy_streams_total", "counter",
	    "Sessions started, by the client's protocol (one per HTTP/2 "
	    "stream).");
	for (d = 0; d < 2; d++) {
		for (k = 0, v = 0; k < n; k++)
			v += metrics_get(&ws[k].metrics.streams[d]);
		evbuffer_add_printf(out, "cancelproxy_streams_total{protocol="
		    "\"%s\"} %llu\n", d ? "h2" : "http/1.1",
		    (unsigned long long)v);
	}
	metrics_head(out, "cancelproxy_relayed_bytes_total", "counter",
	    "Response body bytes relayed to clients.");
	evbuffer_add_printf(out, "cancelproxy_relayed_bytes_total %llu\n",
	    (unsigned long long)bytes);
	metrics_head(out, "cancelproxy_relayed_sse_events_total", "counter",
	    "SSE events relayed to clients.");
	evbuffer_add_printf(out, "cancelproxy_relayed_sse_events_total %llu\n",
	    (unsigned long long)events);
	metrics_head(out, "cancelproxy_config_reloads_total", "counter",
	    "Config reloads by outcome.");
	evbuffer_add_printf(out, "cancelproxy_config_reloads_total{outcome="
	    "\"ok\"} %llu\ncancelproxy_config_reloads_total{outcome="
	    "\"refused\"} %llu\n", (unsigned long long)__atomic_load_n(
	    &reloads_ok, __ATOMIC_RELAXED), (unsigned long long)
	    __atomic_load_n(&reloads_failed, __ATOMIC_RELAXED));
}
