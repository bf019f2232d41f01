/* conf_json: the config file as text: read it, check its JSON syntax (with
 * line and column), blank out comments, parse it with cJSON, expand
 * ${NAME} in string values, and read typed values with errors that name
 * the JSON path. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf_priv.h"

/* The text being checked: the file as read (for line and column) and a
 * copy in which comments are overwritten with blanks for cJSON. */
struct conf_scan {
	struct conf_ctx	*ctx;
	const char	*orig;
	char		*text;
	size_t		 len;
	size_t		 pos;
};

/* Where the syntax checker is: what the next token may be. */
enum conf_scan_state {
	SCAN_TOP,		/* the one top-level value */
	SCAN_MEMBER_VALUE,	/* after "key": */
	SCAN_FIRST_ELEM,	/* after '[' */
	SCAN_NEXT_ELEM,		/* after ',' in an array */
	SCAN_FIRST_KEY,		/* after '{' */
	SCAN_NEXT_KEY,		/* after ',' in an object */
	SCAN_COLON,		/* after a key */
	SCAN_AFTER,		/* after a value */
};

/* A growing string for ${NAME} expansion. */
struct conf_buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

/* Name and key pair for sorting the members of an object. */
struct conf_member {
	const char	*name;
	size_t		 idx;
};

static void
conf_verr(struct conf_ctx *ctx, const char *where, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));

static void
conf_verr(struct conf_ctx *ctx, const char *where, const char *fmt,
    va_list ap)
{
	char	 msg[512];

	if (ctx->err == NULL || ctx->errlen == 0)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (where != NULL && *where != '\0')
		snprintf(ctx->err, ctx->errlen, "%s: %s: %s", ctx->file, where,
		    msg);
	else
		snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->file, msg);
}

/* Writes "FILE: PATH: message" (or "FILE: message" at no path); returns -1. */
int
conf_err(struct conf_ctx *ctx, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	conf_verr(ctx, ctx->path, fmt, ap);
	va_end(ap);
	return -1;
}

static int
conf_err_at(struct conf_scan *sc, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "FILE: line L, column C: message" for offset off; returns -1. */
static int
conf_err_at(struct conf_scan *sc, size_t off, const char *fmt, ...)
{
	va_list		 ap;
	char		 where[64];
	size_t		 i = 0, line = 1, col = 1;
	const unsigned char *s = (const unsigned char *)sc->orig;

	if (sc->len >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf)
		i = 3;
	for (; i < off && i < sc->len; i++) {
		if (s[i] == '\n') {
			line++;
			col = 1;
		} else if ((s[i] & 0xc0) != 0x80)
			col++;	/* count characters, not UTF-8 bytes */
	}
	snprintf(where, sizeof(where), "line %zu, column %zu", line, col);
	va_start(ap, fmt);
	conf_verr(sc->ctx, where, fmt, ap);
	va_end(ap);
	return -1;
}

/* Copies s into buf in double quotes, escaped and shortened for a message. */
void
conf_quote(char *buf, size_t len, const char *s)
{
	size_t		 o = 0, n = 0;
	unsigned char	 ch;

	if (len < 16) {
		if (len > 0)
			buf[0] = '\0';
		return;
	}
	buf[o++] = '"';
	for (; *s != '\0' && o + 9 < len; s++, n++) {
		ch = (unsigned char)*s;
		if (n == 64) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			snprintf(buf + o, len - o, "\\x%02x", ch);
			o += 4;
		} else
			buf[o++] = (char)ch;
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

static void
conf_path_append(struct conf_ctx *ctx, const char *s)
{
	size_t	 n = strlen(s), room;

	room = sizeof(ctx->path) - 1 - ctx->pathlen;
	if (n <= room) {
		memcpy(ctx->path + ctx->pathlen, s, n);
		ctx->pathlen += n;
	} else {
		/* Too deep to print: keep what fits and mark the cut. */
		memcpy(ctx->path + ctx->pathlen, s, room);
		ctx->pathlen += room;
		memcpy(ctx->path + ctx->pathlen - 3, "...", 3);
	}
	ctx->path[ctx->pathlen] = '\0';
}

static int
conf_path_plain(const char *key)
{
	const unsigned char *p = (const unsigned char *)key;

	if (*p == '\0')
		return 0;
	for (; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '.' || *p == '[' ||
		    *p == ']' || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

/* Appends ".key" (or ["odd key"]) to the path; returns the mark to pop to. */
size_t
conf_path_key(struct conf_ctx *ctx, const char *key)
{
	size_t	 mark = ctx->pathlen;
	char	 q[96];

	if (key == NULL)
		key = "";
	if (conf_path_plain(key)) {
		if (ctx->pathlen > 0)
			conf_path_append(ctx, ".");
		conf_path_append(ctx, key);
	} else {
		conf_quote(q, sizeof(q), key);
		conf_path_append(ctx, "[");
		conf_path_append(ctx, q);
		conf_path_append(ctx, "]");
	}
	return mark;
}

/* Appends "[i]" to the path; returns the mark to pop to. */
size_t
conf_path_index(struct conf_ctx *ctx, size_t i)
{
	size_t	 mark = ctx->pathlen;
	char	 buf[32];

	snprintf(buf, sizeof(buf), "[%zu]", i);
	conf_path_append(ctx, buf);
	return mark;
}

/* Cuts the path back to a mark from conf_path_key() or conf_path_index(). */
void
conf_path_pop(struct conf_ctx *ctx, size_t mark)
{
	if (mark < sizeof(ctx->path)) {
		ctx->pathlen = mark;
		ctx->path[mark] = '\0';
	}
}

/* Frees what a load collected on the side (the ${NAME} values). */
void
conf_ctx_clear(struct conf_ctx *ctx)
{
	size_t	 i;

	for (i = 0; i < ctx->nsubst; i++)
		free(ctx->subst[i].value);
	free(ctx->subst);
	ctx->subst = NULL;
	ctx->nsubst = 0;
}

static int
conf_json_slurp(struct conf_ctx *ctx, char **textp, size_t *lenp)
{
	struct stat	 st;
	char		*buf = NULL, *nbuf;
	size_t		 len = 0, cap = 0, ncap;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(ctx->file, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return conf_err(ctx, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return conf_err(ctx, "is a directory");
	}
	for (;;) {
		if (len > CONF_FILE_MAX) {
			conf_err(ctx, "larger than %d MiB",
			    CONF_FILE_MAX / (1024 * 1024));
			goto fail;
		}
		if (cap - len < 2) {
			ncap = cap == 0 ? 65536 : cap * 2;
			if (ncap > CONF_FILE_MAX + 2)
				ncap = CONF_FILE_MAX + 2;
			if ((nbuf = realloc(buf, ncap)) == NULL) {
				conf_err(ctx, "out of memory");
				goto fail;
			}
			buf = nbuf;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			conf_err(ctx, "cannot read: %s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf == NULL && (buf = malloc(1)) == NULL)
		return conf_err(ctx, "out of memory");
	buf[len] = '\0';
	*textp = buf;
	*lenp = len;
	return 0;
fail:
	close(fd);
	free(buf);
	return -1;
}

/* Skips blanks and comments, overwriting the comments in the copy. */
static int
conf_scan_space(struct conf_scan *sc)
{
	char	*t = sc->text;
	size_t	 start;

	while (sc->pos < sc->len) {
		switch (t[sc->pos]) {
		case ' ':
		case '\t':
		case '\n':
		case '\r':
			sc->pos++;
			continue;
		case '/':
			break;
		default:
			return 0;
		}
		if (sc->pos + 1 < sc->len && t[sc->pos + 1] == '/') {
			while (sc->pos < sc->len && t[sc->pos] != '\n')
				t[sc->pos++] = ' ';
			continue;
		}
		if (sc->pos + 1 >= sc->len || t[sc->pos + 1] != '*')
			return 0;	/* a lone '/': not a value, reported later */
		start = sc->pos;
		t[sc->pos++] = ' ';
		t[sc->pos++] = ' ';
		for (;;) {
			if (sc->pos + 1 >= sc->len)
				return conf_err_at(sc, start,
				    "unterminated /* comment");
			if (t[sc->pos] == '*' && t[sc->pos + 1] == '/') {
				t[sc->pos++] = ' ';
				t[sc->pos++] = ' ';
				break;
			}
			if (t[sc->pos] != '\n')
				t[sc->pos] = ' ';	/* keep lines for cJSON */
			sc->pos++;
		}
	}
	return 0;
}

static int
conf_hex4(const char *s, size_t avail, unsigned *out)
{
	unsigned	 v = 0;
	size_t		 i;
	char		 ch;

	if (avail < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		ch = s[i];
		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (unsigned)(ch - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Checks a string token; sc->pos is on its opening quote. */
static int
conf_scan_string(struct conf_scan *sc)
{
	const char	*t = sc->text;
	size_t		 start = sc->pos;
	unsigned char	 ch;
	unsigned	 cp, lo;
	char		 esc;

	sc->pos++;
	for (;;) {
		if (sc->pos >= sc->len)
			return conf_err_at(sc, start, "unterminated string");
		ch = (unsigned char)t[sc->pos];
		if (ch == '"') {
			sc->pos++;
			return 0;
		}
		if (ch == '\n')
			return conf_err_at(sc, start, "unterminated string");
		if (ch < 0x20)
			return conf_err_at(sc, sc->pos,
			    "control character in a string (write it as an "
			    "escape)");
		if (ch != '\\') {
			sc->pos++;
			continue;
		}
		if (sc->pos + 1 >= sc->len)
			return conf_err_at(sc, start, "unterminated string");
		esc = t[sc->pos + 1];
		if (esc != '\0' && strchr("\"\\/bfnrt", esc) != NULL) {
			sc->pos += 2;
			continue;
		}
		if (esc != 'u')
			return conf_err_at(sc, sc->pos, "bad escape in a string");
		if (conf_hex4(t + sc->pos + 2, sc->len - sc->pos - 2, &cp) == -1)
			return conf_err_at(sc, sc->pos, "bad \\u escape");
		if (cp == 0)
			return conf_err_at(sc, sc->pos,
			    "\\u0000 is not allowed in a string");
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return conf_err_at(sc, sc->pos,
			    "unpaired UTF-16 surrogate in \\u escape");
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (sc->pos + 12 > sc->len || t[sc->pos + 6] != '\\' ||
			    t[sc->pos + 7] != 'u' ||
			    conf_hex4(t + sc->pos + 8, 4, &lo) == -1 ||
			    lo < 0xdc00 || lo > 0xdfff)
				return conf_err_at(sc, sc->pos,
				    "unpaired UTF-16 surrogate in \\u escape");
			sc->pos += 12;
			continue;
		}
		sc->pos += 6;
	}
}

static int
conf_scan_digits(struct conf_scan *sc)
{
	size_t	 start = sc->pos;

	while (sc->pos < sc->len && sc->text[sc->pos] >= '0' &&
	    sc->text[sc->pos] <= '9')
		sc->pos++;
	return sc->pos > start ? 0 : -1;
}

/* Checks a number token against the JSON grammar. */
static int
conf_scan_number(struct conf_scan *sc)
{
	const char	*t = sc->text;
	size_t		 start = sc->pos;

	if (t[sc->pos] == '-')
		sc->pos++;
	if (sc->pos < sc->len && t[sc->pos] == '0') {
		sc->pos++;
		if (sc->pos < sc->len && t[sc->pos] >= '0' && t[sc->pos] <= '9')
			return conf_err_at(sc, start,
			    "bad number (leading zero)");
	} else if (conf_scan_digits(sc) == -1)
		return conf_err_at(sc, start, "bad number");
	if (sc->pos < sc->len && t[sc->pos] == '.') {
		sc->pos++;
		if (conf_scan_digits(sc) == -1)
			return conf_err_at(sc, start, "bad number");
	}
	if (sc->pos < sc->len && (t[sc->pos] == 'e' || t[sc->pos] == 'E')) {
		sc->pos++;
		if (sc->pos < sc->len && (t[sc->pos] == '+' || t[sc->pos] == '-'))
			sc->pos++;
		if (conf_scan_digits(sc) == -1)
			return conf_err_at(sc, start, "bad number");
	}
	if (sc->pos - start > 63)	/* cJSON reads at most 63 characters */
		return conf_err_at(sc, start, "number too long");
	return 0;
}

static int
conf_scan_literal(struct conf_scan *sc)
{
	static const char *const words[] = { "true", "false", "null" };
	size_t	 i, n;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		n = strlen(words[i]);
		if (sc->len - sc->pos >= n &&
		    memcmp(sc->text + sc->pos, words[i], n) == 0) {
			sc->pos += n;
			return 0;
		}
	}
	return conf_err_at(sc, sc->pos, "expected a value");
}

/*
 * Checks the JSON grammar (RFC 8259 plus comments) without recursion, so
 * that an error names the exact line and column and cJSON only ever sees
 * text it will accept; blanks the comments out on the way.
 */
static int
conf_scan_check(struct conf_scan *sc)
{
	unsigned char		 stack[CONF_JSON_DEPTH];
	size_t			 depth = 0, comma = 0;
	enum conf_scan_state	 st = SCAN_TOP;
	char			 ch;

	/* A UTF-8 byte order mark is allowed and skipped. */
	if (sc->len >= 3 && memcmp(sc->text, "\xef\xbb\xbf", 3) == 0) {
		memset(sc->text, ' ', 3);
		sc->pos = 3;
	}
	for (;;) {
		if (conf_scan_space(sc) == -1)
			return -1;
		if (sc->pos >= sc->len) {
			if (st == SCAN_AFTER && depth == 0)
				return 0;
			if (st == SCAN_TOP)
				return conf_err_at(sc, sc->pos,
				    "no JSON value (the file is empty)");
			return conf_err_at(sc, sc->pos,
			    "unexpected end of file");
		}
		ch = sc->text[sc->pos];
		switch (st) {
		case SCAN_FIRST_KEY:
			if (ch == '}') {
				depth--;
				sc->pos++;
				st = SCAN_AFTER;
				continue;
			}
			/* FALLTHROUGH */
		case SCAN_NEXT_KEY:
			if (ch == '"') {
				if (conf_scan_string(sc) == -1)
					return -1;
				st = SCAN_COLON;
				continue;
			}
			if (ch == '}')
				return conf_err_at(sc, comma, "trailing comma");
			return conf_err_at(sc, sc->pos,
			    "expected a key in double quotes");
		case SCAN_COLON:
			if (ch != ':')
				return conf_err_at(sc, sc->pos, "expected ':'");
			sc->pos++;
			st = SCAN_MEMBER_VALUE;
			continue;
		case SCAN_AFTER:
			if (depth == 0)
				return conf_err_at(sc, sc->pos,
				    "unexpected text after the top-level value");
			if (ch == ',') {
				comma = sc->pos++;
				st = stack[depth - 1] == '{' ?
				    SCAN_NEXT_KEY : SCAN_NEXT_ELEM;
				continue;
			}
			if (ch == (stack[depth - 1] == '{' ? '}' : ']')) {
				depth--;
				sc->pos++;
				continue;
			}
			return conf_err_at(sc, sc->pos, "expected ',' or '%c'",
			    stack[depth - 1] == '{' ? '}' : ']');
		case SCAN_FIRST_ELEM:
			if (ch == ']') {
				depth--;
				sc->pos++;
				st = SCAN_AFTER;
				continue;
			}
			break;
		case SCAN_NEXT_ELEM:
			if (ch == ']')
				return conf_err_at(sc, comma, "trailing comma");
			break;
		case SCAN_TOP:
		case SCAN_MEMBER_VALUE:
			break;
		}

		/* A value. */
		if (ch == '{' || ch == '[') {
			if (depth == sizeof(stack))
				return conf_err_at(sc, sc->pos,
				    "nested more than %d deep",
				    CONF_JSON_DEPTH);
			stack[depth++] = (unsigned char)ch;
			sc->pos++;
			st = ch == '{' ? SCAN_FIRST_KEY : SCAN_FIRST_ELEM;
			continue;
		}
		if (ch == '"') {
			if (conf_scan_string(sc) == -1)
				return -1;
		} else if (ch == '-' || (ch >= '0' && ch <= '9')) {
			if (conf_scan_number(sc) == -1)
				return -1;
		} else if (conf_scan_literal(sc) == -1)
			return -1;
		st = SCAN_AFTER;
	}
}

static int
conf_buf_add(struct conf_buf *b, const char *s, size_t n)
{
	size_t	 ncap;
	char	*np;

	if (b->len + n + 1 > b->cap) {
		ncap = b->cap == 0 ? 64 : b->cap;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((np = realloc(b->p, ncap)) == NULL)
			return -1;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int
conf_subst_add(struct conf_ctx *ctx, const cJSON *item, const char *value)
{
	struct conf_subst	*ns;
	char			*v;

	if (*value == '\0')
		return 0;
	if ((v = strdup(value)) == NULL)
		return -1;
	ns = realloc(ctx->subst, (ctx->nsubst + 1) * sizeof(*ns));
	if (ns == NULL) {
		free(v);
		return -1;
	}
	ctx->subst = ns;
	ns[ctx->nsubst].item = item;
	ns[ctx->nsubst].value = v;
	ctx->nsubst++;
	return 0;
}

/* Replaces each ${NAME} in one string value; "$${" is a literal "${". */
static int
conf_expand_string(struct conf_ctx *ctx, cJSON *item)
{
	struct conf_buf	 b = { NULL, 0, 0 };
	const char	*p = item->valuestring, *close, *v, *n;
	char		 name[256], q[96];
	size_t		 nlen, vlen;

	if (p == NULL || strchr(p, '$') == NULL)
		return 0;
	while (*p != '\0') {
		if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
			v = "${";
			vlen = 2;
			p += 3;
		} else if (p[0] == '$' && p[1] == '{') {
			if ((close = strchr(p + 2, '}')) == NULL) {
				conf_err(ctx, "unterminated \"${\" (write "
				    "\"$${\" for a literal \"${\")");
				goto fail;
			}
			nlen = (size_t)(close - (p + 2));
			if (nlen == 0) {
				conf_err(ctx, "\"${}\" needs a variable name");
				goto fail;
			}
			if (nlen >= sizeof(name))
				nlen = sizeof(name) - 1;
			memcpy(name, p + 2, nlen);
			name[nlen] = '\0';
			for (n = name; *n != '\0'; n++)
				if (!((*n >= 'A' && *n <= 'Z') ||
				    (*n >= 'a' && *n <= 'z') || *n == '_' ||
				    (*n >= '0' && *n <= '9' && n != name)))
					break;
			if (*n != '\0' || (size_t)(close - (p + 2)) != nlen) {
				conf_quote(q, sizeof(q), name);
				conf_err(ctx, "bad environment variable name %s",
				    q);
				goto fail;
			}
			if ((v = getenv(name)) == NULL) {
				conf_err(ctx, "environment variable %s is not "
				    "set", name);
				goto fail;
			}
			vlen = strlen(v);
			if (conf_subst_add(ctx, item, v) == -1)
				goto oom;
			p = close + 1;
		} else {
			v = p;
			vlen = 1;
			p++;
		}
		if (b.len + vlen > CONF_EXPAND_MAX) {
			conf_err(ctx, "longer than %d bytes after ${} expansion",
			    CONF_EXPAND_MAX);
			goto fail;
		}
		if (conf_buf_add(&b, v, vlen) == -1)
			goto oom;
	}
	if (b.p == NULL && conf_buf_add(&b, "", 0) == -1)
		goto oom;
	if (cJSON_SetValuestring(item, b.p) == NULL)
		goto oom;
	free(b.p);
	return 0;
oom:
	conf_err(ctx, "out of memory");
fail:
	free(b.p);
	return -1;
}

static int
conf_expand_tree(struct conf_ctx *ctx, cJSON *node)
{
	cJSON	*it;
	size_t	 i = 0, mark;

	for (it = node->child; it != NULL; it = it->next, i++) {
		if (cJSON_IsObject(node))
			mark = conf_path_key(ctx, it->string);
		else
			mark = conf_path_index(ctx, i);
		if (cJSON_IsString(it)) {
			if (conf_expand_string(ctx, it) == -1)
				return -1;
		} else if (cJSON_IsArray(it) || cJSON_IsObject(it)) {
			if (conf_expand_tree(ctx, it) == -1)
				return -1;
		}
		conf_path_pop(ctx, mark);
	}
	return 0;
}

/* Reads ctx->file into a cJSON tree: an object, comments gone, ${} done. */
int
conf_json_read(struct conf_ctx *ctx, cJSON **rootp)
{
	struct conf_scan	 sc;
	char			*orig = NULL, *text = NULL;
	const char		*end = NULL;
	size_t			 len = 0;
	cJSON			*root = NULL;

	*rootp = NULL;
	if (conf_json_slurp(ctx, &orig, &len) == -1)
		return -1;
	if ((text = malloc(len + 1)) == NULL) {
		conf_err(ctx, "out of memory");
		goto fail;
	}
	memcpy(text, orig, len + 1);
	memset(&sc, 0, sizeof(sc));
	sc.ctx = ctx;
	sc.orig = orig;
	sc.text = text;
	sc.len = len;
	if (conf_scan_check(&sc) == -1)
		goto fail;
	if ((root = cJSON_ParseWithOpts(text, &end, 1)) == NULL) {
		/* The checker passed, so this is cJSON running out of memory. */
		conf_err_at(&sc, end != NULL && end >= text ?
		    (size_t)(end - text) : 0, "cannot parse (out of memory?)");
		goto fail;
	}
	free(text);
	free(orig);
	text = orig = NULL;
	if (!cJSON_IsObject(root)) {
		conf_err(ctx, "the top level must be an object, not %s",
		    conf_json_type(root));
		goto fail;
	}
	if (conf_expand_tree(ctx, root) == -1)
		goto fail;
	*rootp = root;
	return 0;
fail:
	cJSON_Delete(root);
	free(text);
	free(orig);
	return -1;
}

/* Names the JSON type of item for messages: "a string", "an array". */
const char *
conf_json_type(const cJSON *item)
{
	if (cJSON_IsNull(item))
		return "null";
	if (cJSON_IsBool(item))
		return "a boolean";
	if (cJSON_IsNumber(item))
		return "a number";
	if (cJSON_IsString(item))
		return "a string";
	if (cJSON_IsArray(item))
		return "an array";
	if (cJSON_IsObject(item))
		return "an object";
	return "an invalid value";
}

/* Edit distance between two short keys, ignoring case, for "did you mean". */
static size_t
conf_distance(const char *a, const char *b)
{
	size_t	 row[33], la = strlen(a), lb = strlen(b), i, j, diag, up, v;
	int	 ca, cb;

	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			ca = a[i - 1] >= 'A' && a[i - 1] <= 'Z' ?
			    a[i - 1] + 32 : a[i - 1];
			cb = b[j - 1] >= 'A' && b[j - 1] <= 'Z' ?
			    b[j - 1] + 32 : b[j - 1];
			v = diag + (ca == cb ? 0 : 1);
			if (up + 1 < v)
				v = up + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			row[j] = v;
			diag = up;
		}
	}
	return row[lb];
}

/* 1 if one of a and b (3 characters or more) begins the other. */
static int
conf_prefix_of(const char *a, const char *b)
{
	size_t	 la = strlen(a), lb = strlen(b);

	if (la < 3 || lb < 3)
		return 0;
	return strncasecmp(a, b, la < lb ? la : lb) == 0;
}

/* Fails on a key of obj that is not in allowed (NULL-ended), or twice. */
int
conf_json_keys(struct conf_ctx *ctx, const cJSON *obj,
    const char *const *allowed)
{
	const cJSON	*it;
	const char	*best;
	uint64_t	 seen = 0;
	size_t		 i, d, bestd;
	char		 hint[96];

	for (it = obj->child; it != NULL; it = it->next) {
		for (i = 0; i < 64 && allowed[i] != NULL; i++)
			if (it->string != NULL &&
			    strcmp(it->string, allowed[i]) == 0)
				break;
		if (i == 64 || allowed[i] == NULL) {
			conf_path_key(ctx, it->string);
			best = NULL;
			bestd = SIZE_MAX;
			for (i = 0; allowed[i] != NULL && it->string != NULL;
			    i++) {
				d = conf_distance(it->string, allowed[i]);
				if (conf_prefix_of(it->string, allowed[i]))
					d = 1;	/* "drain" for "drain_ms" */
				if (d < bestd) {
					bestd = d;
					best = allowed[i];
				}
			}
			hint[0] = '\0';
			if (best != NULL && bestd <= 2 &&
			    bestd < strlen(it->string))
				snprintf(hint, sizeof(hint),
				    " (did you mean \"%s\"?)", best);
			return conf_err(ctx, "unknown key%s", hint);
		}
		if (seen & ((uint64_t)1 << i)) {
			conf_path_key(ctx, it->string);
			return conf_err(ctx, "duplicate key");
		}
		seen |= (uint64_t)1 << i;
	}
	return 0;
}

static int
conf_member_cmp(const void *a, const void *b)
{
	const struct conf_member *x = a, *y = b;
	int	 r = strcmp(x->name, y->name);

	if (r != 0)
		return r;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int
conf_member_casecmp(const void *a, const void *b)
{
	const struct conf_member *x = a, *y = b;
	int	 r = strcasecmp(x->name, y->name);

	if (r != 0)
		return r;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Fails if two members of a free-form object share a name (any case). */
int
conf_json_unique(struct conf_ctx *ctx, const cJSON *obj, int nocase)
{
	struct conf_member	*m;
	const cJSON		*it;
	size_t			 n = 0, i;
	int			 (*cmp)(const void *, const void *);

	for (it = obj->child; it != NULL; it = it->next)
		n++;
	if (n < 2)
		return 0;
	if ((m = calloc(n, sizeof(*m))) == NULL)
		return conf_err(ctx, "out of memory");
	for (i = 0, it = obj->child; it != NULL; it = it->next, i++) {
		m[i].name = it->string != NULL ? it->string : "";
		m[i].idx = i;
	}
	cmp = nocase ? conf_member_casecmp : conf_member_cmp;
	qsort(m, n, sizeof(*m), cmp);
	for (i = 1; i < n; i++) {
		if ((nocase ? strcasecmp(m[i - 1].name, m[i].name) :
		    strcmp(m[i - 1].name, m[i].name)) == 0) {
			conf_path_key(ctx, m[i].name);
			free(m);
			return conf_err(ctx, nocase ?
			    "duplicate header (names ignore case)" :
			    "duplicate key");
		}
	}
	free(m);
	return 0;
}

/* 1 if item is an object, 0 if it is null and nullok, else -1 and an error. */
int
conf_json_is_object(struct conf_ctx *ctx, const cJSON *item, int nullok)
{
	if (cJSON_IsObject(item))
		return 1;
	if (nullok && cJSON_IsNull(item))
		return 0;
	return conf_err(ctx, "must be an object, not %s", conf_json_type(item));
}

/* Reads obj.key as an integer in [min, max]; leaves out alone if absent. */
int
conf_json_int(struct conf_ctx *ctx, const cJSON *obj, const char *key,
    int64_t min, int64_t max, int64_t *out)
{
	const cJSON	*it;
	size_t		 mark;
	double		 d;

	if ((it = cJSON_GetObjectItemCaseSensitive(obj, key)) == NULL)
		return 0;
	mark = conf_path_key(ctx, key);
	if (!cJSON_IsNumber(it))
		return conf_err(ctx, "must be an integer, not %s",
		    conf_json_type(it));
	d = it->valuedouble;
	if (isnan(d) || d != floor(d))
		return conf_err(ctx, "must be an integer");
	if (d < (double)min)
		return conf_err(ctx, "must be >= %" PRId64, min);
	if (d > (double)max)
		return conf_err(ctx, "must be <= %" PRId64, max);
	*out = (int64_t)d;
	conf_path_pop(ctx, mark);
	return 0;
}

/* Reads obj.key as true or false; leaves out alone if absent. */
int
conf_json_bool(struct conf_ctx *ctx, const cJSON *obj, const char *key,
    int *out)
{
	const cJSON	*it;
	size_t		 mark;

	if ((it = cJSON_GetObjectItemCaseSensitive(obj, key)) == NULL)
		return 0;
	mark = conf_path_key(ctx, key);
	if (!cJSON_IsBool(it))
		return conf_err(ctx, "must be true or false, not %s",
		    conf_json_type(it));
	*out = cJSON_IsTrue(it) ? 1 : 0;
	conf_path_pop(ctx, mark);
	return 0;
}

/* Copies a string item into *out (freeing the default there). */
int
conf_json_str_item(struct conf_ctx *ctx, const cJSON *item, int flags,
    char **out)
{
	char	*s;

	if ((flags & CONF_STR_NULL) && cJSON_IsNull(item))
		return 0;
	if (!cJSON_IsString(item) || item->valuestring == NULL)
		return conf_err(ctx, "must be a string, not %s",
		    conf_json_type(item));
	if ((flags & CONF_STR_NONEMPTY) && item->valuestring[0] == '\0')
		return conf_err(ctx, "must not be empty");
	if ((s = strdup(item->valuestring)) == NULL)
		return conf_err(ctx, "out of memory");
	free(*out);
	*out = s;
	return 0;
}

/* Reads obj.key as a string into *out; leaves *out alone if absent. */
int
conf_json_str(struct conf_ctx *ctx, const cJSON *obj, const char *key,
    int flags, char **out)
{
	const cJSON	*it;
	size_t		 mark;

	if ((it = cJSON_GetObjectItemCaseSensitive(obj, key)) == NULL)
		return 0;
	mark = conf_path_key(ctx, key);
	if (conf_json_str_item(ctx, it, flags, out) == -1)
		return -1;
	conf_path_pop(ctx, mark);
	return 0;
}

int
conf_json_enum(struct conf_ctx *ctx, const cJSON *obj, const char *key,
    const struct conf_enum *table, int *out)
{
	char		 msg[256];
	size_t		 i, n, len;
	char		*s = NULL;

	if (conf_json_str(ctx, obj, key, 0, &s) == -1)
		return -1;
	if (s == NULL)
		return 0;
	for (i = 0; table[i].name != NULL; i++)
		if (strcmp(s, table[i].name) == 0) {
			*out = table[i].value;
			free(s);
			return 0;
		}
	free(s);
	/* must be "a", "b" or "c" */
	for (n = 0; table[n].name != NULL; n++)
		;
	len = (size_t)snprintf(msg, sizeof(msg), "must be ");
	for (i = 0; i < n && len < sizeof(msg); i++)
		len += (size_t)snprintf(msg + len, sizeof(msg) - len,
		    "%s\"%s\"", i == 0 ? "" : (i + 1 == n ? " or " : ", "),
		    table[i].name);
	conf_path_key(ctx, key);
	return conf_err(ctx, "%s", msg);
}

const char *
conf_enum_name(const struct conf_enum *table, int value)
{
	size_t	 i;

	for (i = 0; table[i].name != NULL; i++)
		if (table[i].value == value)
			return table[i].name;
	return "unknown";
}
