/* recent: the last cancel records this process wrote, kept in memory for
 * the admin API's GET /cancels (the demo page shows the record of the
 * stream it stopped without reading the log file). Workers add under a
 * mutex once per cancel; nothing is kept unless the admin API is on. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "proxy/log.h"
#include "proxy/proxy.h"

#define RECENT_MAX	256	/* records kept, oldest dropped first */
#define RECENT_REC_MAX	8192	/* longer records are not kept */

static struct {
	pthread_mutex_t	 lock;
	int		 enabled;
	char		*rec[RECENT_MAX];
	size_t		 len[RECENT_MAX];
	char		 id[RECENT_MAX][72];
	size_t		 next;		/* slot the next record goes to */
} recent = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Starts keeping records (the admin API is on). */
void
recent_enable(void)
{
	__atomic_store_n(&recent.enabled, 1, __ATOMIC_RELEASE);
}

/* Keeps a copy of one cancel record (one JSON line) for request_id,
 * scrubbed of secrets as the log is. Called before the record is written,
 * so that whoever saw it in the log finds it here too. */
void
recent_cancel_add(const char *request_id, const char *rec, size_t len)
{
	char	*copy;
	size_t	 slot;

	if (!__atomic_load_n(&recent.enabled, __ATOMIC_ACQUIRE) ||
	    len == 0 || len > RECENT_REC_MAX || request_id == NULL)
		return;
	while (len > 0 && rec[len - 1] == '\n')
		len--;
	if ((copy = malloc(len)) == NULL)
		return;
	memcpy(copy, rec, len);
	log_scrub(copy, len);
	pthread_mutex_lock(&recent.lock);
	slot = recent.next;
	recent.next = (slot + 1) % RECENT_MAX;
	free(recent.rec[slot]);
	recent.rec[slot] = copy;
	recent.len[slot] = len;
	strncpy(recent.id[slot], request_id, sizeof(recent.id[slot]) - 1);
	recent.id[slot][sizeof(recent.id[slot]) - 1] = '\0';
	pthread_mutex_unlock(&recent.lock);
}

/* Appends the kept records for request_id (every record when NULL), oldest
 * first, as a JSON array. */
void
recent_cancel_list(const char *request_id, struct evbuffer *out)
{
	size_t	 i, slot;
	int	 first = 1;

	evbuffer_add(out, "[", 1);
	pthread_mutex_lock(&recent.lock);
	for (i = 0; i < RECENT_MAX; i++) {
		slot = (recent.next + i) % RECENT_MAX;
		if (recent.rec[slot] == NULL || (request_id != NULL &&
		    strcmp(recent.id[slot], request_id) != 0))
			continue;
		if (!first)
			evbuffer_add(out, ",", 1);
		evbuffer_add(out, recent.rec[slot], recent.len[slot]);
		first = 0;
	}
	pthread_mutex_unlock(&recent.lock);
	evbuffer_add(out, "]", 1);
}

/* Drops every kept record (at exit). */
void
recent_free(void)
{
	size_t	 i;

	pthread_mutex_lock(&recent.lock);
	for (i = 0; i < RECENT_MAX; i++) {
		free(recent.rec[i]);
		recent.rec[i] = NULL;
	}
	pthread_mutex_unlock(&recent.lock);
}
