/* headers: field storage and the hop-by-hop rules of RFC 9110 §7.6.1. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "proxy/headers.h"

void
headers_init(struct header_list *hl)
{
	memset(hl, 0, sizeof(*hl));
}

void
headers_free(struct header_list *hl)
{
	free(hl->arena);
	free(hl->h);
	memset(hl, 0, sizeof(*hl));
}

const char *
header_piece_name(enum header_piece p)
{
	switch (p) {
	case HEADER_PIECE_NONE:		return "none";
	case HEADER_PIECE_NAME:		return "name";
	case HEADER_PIECE_VALUE:	return "value";
	case HEADER_PIECE_NAME_DONE:	return "name_done";
	}
	return "unknown";
}

/* Forgets the fields but keeps the memory for the next message. */
void
headers_clear(struct header_list *hl)
{
	hl->len = 0;
	hl->n = 0;
	hl->last = HEADER_PIECE_NONE;
	hl->conns = 0;
}

static int
headers_append(struct header_list *hl, const char *p, size_t n)
{
	size_t	 ncap;
	char	*na;

	/* +1 keeps room for a NUL after the last piece. */
	if (hl->len + n + 1 > hl->cap) {
		ncap = hl->cap ? hl->cap : 512;
		while (ncap < hl->len + n + 1)
			ncap *= 2;
		if (ncap > UINT32_MAX || (na = realloc(hl->arena, ncap)) == NULL)
			return -1;
		hl->arena = na;
		hl->cap = ncap;
	}
	memcpy(hl->arena + hl->len, p, n);
	hl->len += n;
	return 0;
}

/*
 * Names and values are stored NUL-terminated: a NUL is appended after each
 * completed piece and overwritten when the same piece continues.
 */
int
headers_add_name(struct header_list *hl, const char *p, size_t n)
{
	struct header_ref	*r;

	if (hl->last != HEADER_PIECE_NAME) {
		if (hl->n == hl->hcap) {
			size_t ncap = hl->hcap ? hl->hcap * 2 : 16;
			struct header_ref *nh;

			nh = realloc(hl->h, ncap * sizeof(*nh));
			if (nh == NULL)
				return -1;
			hl->h = nh;
			hl->hcap = ncap;
		}
		r = &hl->h[hl->n++];
		r->name = (uint32_t)hl->len;
		r->nlen = 0;
		r->value = (uint32_t)hl->len;
		r->vlen = 0;
		hl->last = HEADER_PIECE_NAME;
	} else {
		r = &hl->h[hl->n - 1];
		hl->len--;		/* drop the NUL */
	}
	if (headers_append(hl, p, n) == -1 || headers_append(hl, "", 1) == -1)
		return -1;
	r->nlen += (uint32_t)n;
	/* Until a value arrives, the value is the empty string at the NUL. */
	r->value = r->name + r->nlen;
	return 0;
}

/* The name of the current field is complete (llhttp's
 * on_header_field_complete); what follows is its value or the next field. */
void
headers_name_done(struct header_list *hl)
{
	hl->last = HEADER_PIECE_NAME_DONE;
}

int
headers_add_value(struct header_list *hl, const char *p, size_t n)
{
	struct header_ref	*r;

	if (hl->n == 0)
		return -1;
	r = &hl->h[hl->n - 1];
	if (hl->last == HEADER_PIECE_VALUE)
		hl->len--;		/* continue the value: drop the NUL */
	else {
		r->value = (uint32_t)hl->len;
		/* The name is whole once its value starts. */
		if (headers_name_is(hl, hl->n - 1, "connection"))
			hl->conns++;
	}
	hl->last = HEADER_PIECE_VALUE;
	if (headers_append(hl, p, n) == -1 || headers_append(hl, "", 1) == -1)
		return -1;
	r->vlen += (uint32_t)n;
	return 0;
}

const char *
headers_get(const struct header_list *hl, const char *name, size_t *len)
{
	size_t	 i;

	for (i = 0; i < hl->n; i++)
		if (headers_name_is(hl, i, name)) {
			if (len != NULL)
				*len = hl->h[i].vlen;
			return headers_value(hl, i);
		}
	return NULL;
}

size_t
headers_count(const struct header_list *hl, const char *name)
{
	size_t	 i, c = 0;

	for (i = 0; i < hl->n; i++)
		if (headers_name_is(hl, i, name))
			c++;
	return c;
}

int
headers_list_has(const char *v, size_t len, const char *token)
{
	size_t	 tlen = strlen(token), i = 0, start, end;

	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == tlen &&
		    strncasecmp(v + start, token, tlen) == 0)
			return 1;
	}
	return 0;
}

int
headers_connection_has(const struct header_list *hl, const char *token)
{
	size_t	 i;

	if (hl->conns == 0)
		return 0;
	for (i = 0; i < hl->n; i++)
		if (headers_name_is(hl, i, "connection") &&
		    headers_list_has(headers_value(hl, i), hl->h[i].vlen, token))
			return 1;
	return 0;
}

int
headers_is_hop_by_hop(const struct header_list *hl, size_t i)
{
	const char	*name = headers_name(hl, i);
	char		 tok[128];

	/* Told apart by length first: most fields are none of these. */
	switch (hl->h[i].nlen) {
	case 2:
		if (strncasecmp(name, "te", 2) == 0)
			return 1;
		break;
	case 7:
		if (strncasecmp(name, "upgrade", 7) == 0 ||
		    strncasecmp(name, "trailer", 7) == 0)
			return 1;
		break;
	case 10:
		if (strncasecmp(name, "connection", 10) == 0 ||
		    strncasecmp(name, "keep-alive", 10) == 0)
			return 1;
		break;
	case 14:
		/* RFC 9113 §3.2.1: it belongs to the h2c upgrade only. */
		if (strncasecmp(name, "http2-settings", 14) == 0)
			return 1;
		break;
	case 17:
		if (strncasecmp(name, "transfer-encoding", 17) == 0)
			return 1;
		break;
	}
	if (hl->h[i].nlen >= 6 && (name[0] | 0x20) == 'p' &&
	    strncasecmp(name, "proxy-", 6) == 0)
		return 1;
	/* Fields the Connection header names are hop-by-hop too. */
	if (hl->conns == 0 || hl->h[i].nlen >= sizeof(tok))
		return 0;
	memcpy(tok, name, hl->h[i].nlen);
	tok[hl->h[i].nlen] = '\0';
	return headers_connection_has(hl, tok);
}

void
headbuf_init(struct headbuf *b, struct evbuffer *out)
{
	b->out = out;
	b->len = 0;
}

void
headbuf_flush(struct headbuf *b)
{
	if (b->len > 0)
		evbuffer_add(b->out, b->buf, b->len);
	b->len = 0;
}

void
headbuf_add(struct headbuf *b, const char *p, size_t n)
{
	if (b->len + n > sizeof(b->buf)) {
		headbuf_flush(b);
		if (n > sizeof(b->buf)) {	/* a long field goes as is */
			evbuffer_add(b->out, p, n);
			return;
		}
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

void
headbuf_str(struct headbuf *b, const char *s)
{
	headbuf_add(b, s, strlen(s));
}

void
headbuf_uint(struct headbuf *b, uint64_t v)
{
	char	 tmp[24];
	size_t	 i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	headbuf_add(b, tmp + i, sizeof(tmp) - i);
}

void
headbuf_field(struct headbuf *b, const struct header_list *hl, size_t i)
{
	headbuf_add(b, headers_name(hl, i), hl->h[i].nlen);
	headbuf_lit(b, ": ");
	headbuf_add(b, headers_value(hl, i), hl->h[i].vlen);
	headbuf_lit(b, "\r\n");
}

size_t
headers_hex(char *buf, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	char	 tmp[16];
	size_t	 n = 0, i;

	do {
		tmp[n++] = digits[v & 0xf];
		v >>= 4;
	} while (v != 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}
