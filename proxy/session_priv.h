/* session_priv: what the session files share and nobody else calls. */
#ifndef CANCELPROXY_SESSION_PRIV_H
#define CANCELPROXY_SESSION_PRIV_H

#include "proxy/session.h"

struct jsonw;

/* Appends the "request" record, once per finished request, to w. */
void	 session_log_request(struct session *s, const struct session_end *e,
	    uint64_t now, struct jsonw *w);

#endif
