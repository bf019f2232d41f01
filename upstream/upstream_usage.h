/* upstream_usage: what a stream or an answer says it used — an SSE event
 * splitter fed as bytes pass (it never delays them) and the usage shapes
 * of OpenAI chat completions, the OpenAI Responses API and Anthropic
 * Messages. */
#ifndef CANCELPROXY_UPSTREAM_USAGE_H
#define CANCELPROXY_UPSTREAM_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/jsonw.h"

/* Token counts; -1 where the provider did not say. */
struct usage {
	int64_t	 prompt;
	int64_t	 completion;
	int64_t	 total;
	int64_t	 cached;
	int64_t	 reasoning;
	int	 seen;		/* some usage was reported */
};

void	 usage_init(struct usage *u);
/* Reads usage out of one JSON document (an SSE event's data or a whole
 * answer); returns 1 when it held usage, 0 otherwise. event may be NULL. */
int	 usage_from_json(struct usage *u, const char *event, const char *json,
	    size_t len);
/* Whether data is an OpenAI chunk with "choices":[] and a usage object. */
int	 usage_only_chunk(const char *json, size_t len);
/* "usage":{...} and "usage_source" members. */
void	 usage_members(struct jsonw *w, const struct usage *u);

#define SSE_SCAN_MAX	(256 * 1024)	/* longer events are not examined */

/* Splits an SSE body into events across reads. */
struct sse_scan {
	char	*data;		/* data: lines of the current event, joined */
	size_t	 dlen;
	size_t	 dcap;
	char	*line;		/* the current line so far */
	size_t	 llen;
	size_t	 lcap;
	char	 event[48];	/* event: field */
	int	 overflow;	/* the event is too big to examine */
	int	 nonempty;	/* the event had a field */
};

void	 sse_scan_init(struct sse_scan *sc);
void	 sse_scan_free(struct sse_scan *sc);
/* Feeds bytes until an event ends; returns the bytes used. *done is set
 * when they ended an event (read it, then sse_scan_next()). */
size_t	 sse_scan_feed(struct sse_scan *sc, const char *at, size_t n,
	    int *done);
void	 sse_scan_next(struct sse_scan *sc);

#endif
