/* metrics: counters and histograms kept per worker without locks (each
 * worker writes only its own), summed at scrape time into the Prometheus
 * text exposition format. */
#ifndef CANCELPROXY_METRICS_H
#define CANCELPROXY_METRICS_H

#include <stdint.h>

#include "cancel_chain/cancel_chain.h"

struct evbuffer;
struct worker;

#define METRICS_BUCKETS		14	/* histogram buckets, +Inf apart */
#define METRICS_REQ_SLOTS	256	/* distinct (route, upstream, status) */
#define METRICS_KINDS		(CANCEL_KIND_UNKNOWN + 1)
#define METRICS_PHASES		4

struct metrics_hist {
	uint64_t	 count[METRICS_BUCKETS + 1];	/* last: +Inf */
	uint64_t	 n;
	uint64_t	 sum_us;
};

struct metrics_req {
	char		 key[160];	/* "route\tupstream\tstatus"; "" free */
	uint64_t	 n;
};

struct metrics {
	struct metrics_req	 req[METRICS_REQ_SLOTS];
	uint64_t		 req_overflow;
	uint64_t		 cancels[METRICS_KINDS][METRICS_PHASES][2];
	struct metrics_hist	 detect_to_close;
	struct metrics_hist	 connect;
	struct metrics_hist	 first_byte;
	uint64_t		 bytes_out;
	uint64_t		 sse_events;
	int64_t			 live_streams;
	uint64_t		 streams[2];	/* started: [0] HTTP/1.1, [1] h2 */
};

/* Called on the worker's own thread. */
void	 metrics_request(struct metrics *m, const char *route,
	    const char *upstream, int status);
void	 metrics_cancel(struct metrics *m, const struct cancel_record *r);
void	 metrics_observe(struct metrics_hist *h, uint64_t us);
void	 metrics_add(uint64_t *counter, uint64_t n);
void	 metrics_live(struct metrics *m, int delta);
/* Counts a started session by its client's protocol ("h2" or not). */
void	 metrics_stream(struct metrics *m, const char *protocol);

/* Process-wide counters (main thread). */
void	 metrics_reload(int ok);

/* Writes every family, summed over the workers. */
void	 metrics_write(struct evbuffer *out, struct worker *workers, int n);

#endif
