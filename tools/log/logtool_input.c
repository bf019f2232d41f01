/* logtool_input: the inputs of cancelproxy-log: plain files, gzip or zlib
 * compressed files (told apart by their first bytes, not their names) and
 * standard input, split into lines, scanned, and merged into one stream in
 * time order; when following, files are reopened after rotation. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/log/logtool.h"

/* Says why an input failed and marks it finished. */
static void
source_fail(struct logtool_input *in, struct logtool_source *s,
    const char *what)
{
	fprintf(stderr, "cancelproxy-log: %s: %s\n", s->name, what);
	in->errors++;
	s->done = 1;
	s->eof = 1;
}

/* Opens the file behind s->name and remembers which file it is. */
static int
source_open_file(struct logtool_source *s)
{
	struct stat	 st;
	int		 fd;

	if ((fd = open(s->name, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		errno = EISDIR;
		return -1;
	}
	s->fd = fd;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->off = 0;
	s->gz_checked = 0;
	s->raw_eof = 0;
	if (s->zs_init) {
		inflateEnd(&s->zs);
		s->zs_init = 0;
	}
	s->gz = 0;
	s->zs_member = 0;
	return 0;
}

/* A new source for a path ("-" is standard input). */
static struct logtool_source *
source_new(const char *name, int follow)
{
	struct logtool_source	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->fd = -1;
	if ((s->name = strdup(name)) == NULL ||
	    (s->buf = malloc(2 * LOGTOOL_READ_SIZE)) == NULL ||
	    (s->zin = malloc(LOGTOOL_READ_SIZE)) == NULL)
		goto fail;
	s->cap = 2 * LOGTOOL_READ_SIZE;
	s->follow = follow;
	if (strcmp(name, "-") == 0) {
		s->is_stdin = 1;
		s->fd = STDIN_FILENO;
		/* Following several inputs must not block on one of them;
		 * the flags are shared with whoever gave us the descriptor,
		 * so they are put back at the end. */
		s->fd_flags = fcntl(s->fd, F_GETFL);
		if (follow && s->fd_flags != -1)
			fcntl(s->fd, F_SETFL, s->fd_flags | O_NONBLOCK);
	} else if (source_open_file(s) == -1)
		goto fail;
	return s;

fail:
	if (s->name != NULL)
		fprintf(stderr, "cancelproxy-log: %s: %s\n", name,
		    strerror(errno));
	free(s->zin);
	free(s->buf);
	free(s->name);
	free(s);
	return NULL;
}

/* Closes an input and frees its buffers. */
static void
source_free(struct logtool_source *s)
{
	if (s == NULL)
		return;
	if (s->zs_init)
		inflateEnd(&s->zs);
	if (s->fd != -1 && !s->is_stdin)
		close(s->fd);
	if (s->is_stdin && s->follow && s->fd_flags != -1)
		fcntl(s->fd, F_SETFL, s->fd_flags);
	logtool_scratch_free(&s->scratch);
	free(s->zin);
	free(s->buf);
	free(s->name);
	free(s);
}

/* read(2) that retries on EINTR; EAGAIN (standard input while following)
 * counts as nothing for now. */
static ssize_t
source_read(struct logtool_source *s, void *buf, size_t len)
{
	ssize_t	 n;

	do
		n = read(s->fd, buf, len);
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return -2;
	if (n > 0)
		s->off += n;
	return n;
}

/* Switches a followed file to the file that now has its name, after the
 * old one was read to its end; an unfinished last line is ended. */
static int
source_switch(struct logtool_source *s)
{
	int	 oldfd = s->fd;

	if (s->end > s->start && s->buf[s->end - 1] != '\n' && s->end < s->cap)
		s->buf[s->end++] = '\n';
	if (source_open_file(s) == -1) {
		s->fd = oldfd;
		return -1;	/* not there yet: try at the next poll */
	}
	close(oldfd);
	s->reopen = 0;
	return 0;
}

/*
 * Reads more decoded bytes into buf[end, cap). Returns the count, 0 when
 * there is nothing more for now (s->eof, or s->done for good), -1 on an
 * error (already reported).
 */
static ssize_t
source_fill(struct logtool_input *in, struct logtool_source *s)
{
	ssize_t	 n;
	int	 zr;
	size_t	 before;

	for (;;) {
		if (!s->gz_checked) {
			/* No more than fits: a plain first chunk is copied. */
			n = source_read(s, s->zin, s->cap - s->end <
			    LOGTOOL_READ_SIZE ? s->cap - s->end :
			    LOGTOOL_READ_SIZE);
			if (n == -1) {
				source_fail(in, s, strerror(errno));
				return -1;
			}
			if (n == -2 || n == 0) {
				if (n == 0 && s->reopen && source_switch(s) == 0)
					continue;
				if (n == 0 && (!s->follow || s->is_stdin))
					s->done = 1;
				s->eof = 1;
				return 0;
			}
			s->gz_checked = 1;
			/* gzip's magic, or a zlib header (deflate, and a
			 * check that a '{' can never pass). */
			if (n >= 2 && ((s->zin[0] == 0x1f && s->zin[1] == 0x8b) ||
			    ((s->zin[0] & 0x0f) == 8 &&
			    ((s->zin[0] << 8) | s->zin[1]) % 31 == 0))) {
				memset(&s->zs, 0, sizeof(s->zs));
				/* 15 + 32: a gzip or a zlib header, found out
				 * from the stream itself. */
				if (inflateInit2(&s->zs, 15 + 32) != Z_OK) {
					source_fail(in, s, "cannot start zlib");
					return -1;
				}
				s->zs_init = 1;
				s->zs_member = 1;
				s->gz = 1;
				s->zs.next_in = s->zin;
				s->zs.avail_in = (uInt)n;
			} else {
				/* Plain text: the first chunk was read aside. */
				memcpy(s->buf + s->end, s->zin, (size_t)n);
				s->end += (size_t)n;
				return n;
			}
		}
		if (!s->gz) {
			n = source_read(s, s->buf + s->end, s->cap - s->end);
			if (n == -1) {
				source_fail(in, s, strerror(errno));
				return -1;
			}
			if (n > 0) {
				s->end += (size_t)n;
				return n;
			}
			if (n == 0 && s->reopen && source_switch(s) == 0)
				continue;
			if (n == 0 && (!s->follow || s->is_stdin))
				s->done = 1;
			s->eof = 1;
			return 0;
		}
		/* Compressed: inflate what was read, read more when empty. */
		if (s->zs.avail_in == 0 && !s->raw_eof) {
			n = source_read(s, s->zin, LOGTOOL_READ_SIZE);
			if (n == -1) {
				source_fail(in, s, strerror(errno));
				return -1;
			}
			if (n == -2) {
				s->eof = 1;
				return 0;
			}
			if (n == 0)
				s->raw_eof = 1;
			s->zs.next_in = s->zin;
			s->zs.avail_in = (uInt)n;
		}
		if (s->zs.avail_in == 0 && s->raw_eof) {
			if (s->zs_member) {
				source_fail(in, s, "compressed data ends early "
				    "(truncated file?)");
				return -1;
			}
			/* A compressed file is never followed: it was rotated
			 * away and is finished. */
			s->done = 1;
			s->eof = 1;
			return 0;
		}
		if (!s->zs_member) {
			/* Another gzip member follows the last one. */
			if (inflateReset(&s->zs) != Z_OK) {
				source_fail(in, s, "cannot restart zlib");
				return -1;
			}
			s->zs_member = 1;
		}
		before = s->end;
		s->zs.next_out = (Bytef *)s->buf + s->end;
		s->zs.avail_out = (uInt)(s->cap - s->end);
		zr = inflate(&s->zs, Z_NO_FLUSH);
		s->end = s->cap - s->zs.avail_out;
		if (zr == Z_STREAM_END)
			s->zs_member = 0;
		else if (zr != Z_OK && zr != Z_BUF_ERROR) {
			source_fail(in, s, s->zs.msg ? s->zs.msg :
			    "corrupt compressed data");
			return -1;
		}
		if (s->end > before)
			return (ssize_t)(s->end - before);
	}
}

/* Makes room in the buffer: drops what was read, grows for a long line. */
static int
source_room(struct logtool_source *s)
{
	char	*nbuf;
	size_t	 ncap;

	if (s->start > 0) {
		memmove(s->buf, s->buf + s->start, s->end - s->start);
		s->end -= s->start;
		s->start = 0;
	}
	if (s->end < s->cap)
		return 0;
	ncap = s->cap * 2;
	if ((nbuf = realloc(s->buf, ncap)) == NULL)
		return -1;
	s->buf = nbuf;
	s->cap = ncap;
	return 0;
}

/* Counts a line that is not a record and remembers where the first was. */
static void
input_junk(struct logtool_input *in, struct logtool_source *s)
{
	in->junk++;
	if (in->junk_first == NULL &&
	    asprintf(&in->junk_first, "%s:%llu", s->name,
	    (unsigned long long)s->lineno) == -1)
		in->junk_first = NULL;
}

/* The next complete line of s: 1 with *p and *n, 0 when there is none
 * for now, -1 when the source failed. */
static int
source_line(struct logtool_input *in, struct logtool_source *s,
    const char **p, size_t *n)
{
	char	*nl;
	ssize_t	 got;

	for (;;) {
		nl = memchr(s->buf + s->start, '\n', s->end - s->start);
		if (nl != NULL) {
			*p = s->buf + s->start;
			*n = (size_t)(nl - *p);
			s->start = (size_t)(nl + 1 - s->buf);
			if (s->skipping) {
				/* The end of a line too long to keep. */
				s->skipping = 0;
				continue;
			}
			s->lineno++;
			return 1;
		}
		if (s->done) {
			if (s->end > s->start && !s->skipping) {
				/* The last line had no newline. */
				*p = s->buf + s->start;
				*n = s->end - s->start;
				s->start = s->end;
				s->lineno++;
				return 1;
			}
			s->start = s->end = 0;
			return 0;
		}
		if (s->eof)
			return 0;
		if (s->skipping)
			s->start = s->end = 0;
		else if (s->end - s->start >= LOGTOOL_LINE_MAX) {
			/* Too long to be a record: count it, drop it. */
			s->lineno++;
			in->lines++;
			input_junk(in, s);
			s->skipping = 1;
			s->start = s->end = 0;
		}
		if (source_room(s) == -1) {
			source_fail(in, s, "out of memory");
			return -1;
		}
		if ((got = source_fill(in, s)) == -1)
			return -1;
	}
}

/* Reads lines of s until one is a record (kept as s->head). */
static void
source_advance(struct logtool_input *in, struct logtool_source *s)
{
	const char	*p;
	size_t		 n;

	while (!s->has_head && source_line(in, s, &p, &n) == 1) {
		in->lines++;
		if (logtool_scan(p, n, &s->head, &s->scratch) == -1) {
			input_junk(in, s);
			continue;
		}
		s->head.src_name = s->name;
		s->head.lineno = s->lineno;
		s->has_head = 1;
		in->records++;
	}
}

/* Opens every input; none means standard input. */
int
logtool_input_open(struct logtool_input *in, char **paths, int npaths,
    int follow)
{
	static char	*stdin_path[] = { "-" };
	int		 i, nstdin = 0;

	memset(in, 0, sizeof(*in));
	in->follow = follow;
	if (npaths == 0) {
		paths = stdin_path;
		npaths = 1;
	}
	if ((in->src = calloc((size_t)npaths, sizeof(*in->src))) == NULL) {
		fprintf(stderr, "cancelproxy-log: out of memory\n");
		return -1;
	}
	for (i = 0; i < npaths; i++) {
		if (strcmp(paths[i], "-") == 0 && nstdin++ > 0) {
			fprintf(stderr, "cancelproxy-log: standard input (-) "
			    "given twice\n");
			return -1;
		}
		if ((in->src[in->nsrc] = source_new(paths[i], follow)) == NULL)
			return -1;
		in->nsrc++;
	}
	return 0;
}

/* Closes every input. */
void
logtool_input_free(struct logtool_input *in)
{
	int	 i;

	for (i = 0; i < in->nsrc; i++)
		source_free(in->src[i]);
	free(in->src);
	free(in->junk_first);
	in->src = NULL;
	in->nsrc = 0;
	in->junk_first = NULL;
}

/* The next record in time order across all inputs. */
int
logtool_input_next(struct logtool_input *in, struct logtool_rec **out)
{
	struct logtool_source	*s, *best = NULL;
	int			 i;

	for (i = 0; i < in->nsrc; i++) {
		s = in->src[i];
		if (!s->has_head)
			source_advance(in, s);
		if (s->has_head && (best == NULL ||
		    s->head.ts_us < best->head.ts_us))
			best = s;
	}
	if (best == NULL)
		return 0;
	best->has_head = 0;
	*out = &best->head;
	return 1;
}

/* Following: waits, then notices new data, rotation and truncation. */
void
logtool_input_wait(struct logtool_input *in, int ms)
{
	struct logtool_source	*s;
	struct pollfd		 pfd;
	struct stat		 st;
	int			 i, nstdin = 0;

	for (i = 0; i < in->nsrc; i++)
		if (in->src[i]->is_stdin && !in->src[i]->done) {
			pfd.fd = in->src[i]->fd;
			pfd.events = POLLIN;
			nstdin = 1;
		}
	/* Standard input wakes us at once; files are polled. */
	if (poll(nstdin ? &pfd : NULL, (nfds_t)nstdin, ms) == -1 &&
	    errno != EINTR)
		return;
	for (i = 0; i < in->nsrc; i++) {
		s = in->src[i];
		if (s->done)
			continue;
		s->eof = 0;
		if (s->is_stdin || s->reopen)
			continue;
		if (stat(s->name, &st) == 0 &&
		    (st.st_ino != s->ino || st.st_dev != s->dev)) {
			/* Rotated: read the old file to its end first. */
			s->reopen = 1;
		} else if (!s->gz && fstat(s->fd, &st) == 0 &&
		    st.st_size < s->off) {
			/* Truncated in place (copytruncate): start over. */
			lseek(s->fd, 0, SEEK_SET);
			s->off = 0;
			s->start = s->end = 0;
		}
	}
}

/* Reports lines that were not records, on stderr. */
void
logtool_input_report(const struct logtool_input *in)
{
	if (in->junk > 0)
		fprintf(stderr, "cancelproxy-log: %llu of %llu line%s %s not "
		    "log records (the first at %s)\n",
		    (unsigned long long)in->junk, (unsigned long long)in->lines,
		    in->lines == 1 ? "" : "s", in->junk == 1 ? "was" : "were",
		    in->junk_first ? in->junk_first : "?");
}
