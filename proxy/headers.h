/* headers: a compact list of HTTP fields as llhttp delivers them (in
 * pieces), and the RFC 9110 rules a proxy applies when it forwards them. */
#ifndef CANCELPROXY_HEADERS_H
#define CANCELPROXY_HEADERS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

struct evbuffer;

/* Appends a string literal; its length is counted by the compiler. */
#define evbuffer_add_lit(buf, lit)	evbuffer_add((buf), "" lit "", sizeof(lit) - 1)

struct header_ref {
	uint32_t	 name;		/* offsets into the arena */
	uint32_t	 nlen;
	uint32_t	 value;
	uint32_t	 vlen;
};

/* Where the parser left the list: llhttp hands over names and values in
 * pieces, and a piece continues the one before unless the field moved on. */
enum header_piece {
	HEADER_PIECE_NONE,	/* no field yet */
	HEADER_PIECE_NAME,	/* a name is arriving */
	HEADER_PIECE_VALUE,	/* a value is arriving */
	HEADER_PIECE_NAME_DONE,	/* a name ended; its value or a field follows */
};
const char	*header_piece_name(enum header_piece p);

struct header_list {
	char			*arena;
	size_t			 len;
	size_t			 cap;
	struct header_ref	*h;
	size_t			 n;
	size_t			 hcap;
	enum header_piece	 last;	/* what the last piece added was */
	size_t			 conns;	/* Connection fields with a value */
};

void	 headers_init(struct header_list *hl);
void	 headers_free(struct header_list *hl);
void	 headers_clear(struct header_list *hl);
/* Appends a piece of a field name or value, as llhttp reports them. */
int	 headers_add_name(struct header_list *hl, const char *p, size_t n);
int	 headers_add_value(struct header_list *hl, const char *p, size_t n);
void	 headers_name_done(struct header_list *hl);

static inline const char *
headers_name(const struct header_list *hl, size_t i)
{
	return hl->arena + hl->h[i].name;
}

static inline const char *
headers_value(const struct header_list *hl, size_t i)
{
	return hl->arena + hl->h[i].value;
}

/* Case-insensitive name comparison against a NUL-terminated name. Inline,
 * so that the length of a literal name is known when compiling and most
 * fields are told apart by their length alone. */
static inline int
headers_name_is(const struct header_list *hl, size_t i, const char *name)
{
	size_t	 n = strlen(name);

	return hl->h[i].nlen == n &&
	    strncasecmp(hl->arena + hl->h[i].name, name, n) == 0;
}
/* First value of NAME, or NULL; *len gets its length. */
const char *headers_get(const struct header_list *hl, const char *name,
	    size_t *len);
size_t	 headers_count(const struct header_list *hl, const char *name);
/* Whether a Connection field lists token (case-insensitive). */
int	 headers_connection_has(const struct header_list *hl,
	    const char *token);
/* Whether field i must not be forwarded (RFC 9110 §7.6.1): Connection and
 * what it lists, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade,
 * HTTP2-Settings, Proxy-*. */
int	 headers_is_hop_by_hop(const struct header_list *hl, size_t i);
/* Case-insensitive token match inside a comma-separated list value. */
int	 headers_list_has(const char *value, size_t len, const char *token);

/*
 * A head (status or request line and fields) gathered on the stack and
 * handed to its evbuffer in one evbuffer_add: every add runs the buffer's
 * callbacks, and printf-style formatting costs more than the bytes.
 */
struct headbuf {
	struct evbuffer	*out;
	size_t		 len;
	char		 buf[2048];
};

void	 headbuf_init(struct headbuf *b, struct evbuffer *out);
void	 headbuf_add(struct headbuf *b, const char *p, size_t n);
void	 headbuf_str(struct headbuf *b, const char *s);
void	 headbuf_uint(struct headbuf *b, uint64_t v);
/* "Name: value\r\n" for field i of hl. */
void	 headbuf_field(struct headbuf *b, const struct header_list *hl,
	    size_t i);
/* Hands what is gathered to the evbuffer. */
void	 headbuf_flush(struct headbuf *b);
/* lit must be a string literal ("" lit "" refuses anything else). */
#define headbuf_lit(b, lit)	headbuf_add((b), "" lit "", sizeof(lit) - 1)

/* v in lower-case hex into buf (at least 17 bytes); the digits' count. */
size_t	 headers_hex(char *buf, uint64_t v);

#endif
