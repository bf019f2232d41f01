/* harness_proc: child processes for integration tests: fork/exec with
 * stdout and stderr read by a thread into records, waits on records with
 * timeouts, stopping with SIGTERM then SIGKILL, and the two programs under
 * test (cancelproxy-mock and cancelproxy, optionally under valgrind). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#ifndef CP_SOURCE_DIR
#define CP_SOURCE_DIR "."
#endif

#define MAXARGS		64
#define MAXPAIRS	16

extern char	**environ;

/* One line the process wrote. */
struct hline {
	char	*raw;
	cJSON	*json;		/* a stdout line that is a JSON object */
	int	 from_err;	/* written to stderr */
	int	 taken;		/* returned by a record wait */
	int	 line_taken;	/* returned by hproc_wait_line */
};

/* A listener the process announced with a "listening" record. */
struct hport {
	int	 port;
	int	 tls;
};

/* Bytes of a line not yet ended by '\n'. */
struct partial {
	char	*buf;
	size_t	 len, cap;
};

/*
 * The reader thread owns the pipes and appends to lines and ports under
 * mu; the test thread only reads them under mu. Everything else belongs
 * to the test thread.
 */
struct hproc {
	char		 name[64];
	char		 conf_path[PATH_MAX];	/* proxies only */
	pid_t		 pid;
	int		 fds[2];		/* stdout, stderr; -1 at EOF */
	struct partial	 part[2];

	pthread_t	 reader;
	int		 reader_live;		/* started, not joined */
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct hline	*lines;
	int		 nlines, caplines;
	struct hport	*ports;
	int		 nports, capports;
	int		 eof;			/* both pipes ended */
	int		 quit;			/* the reader must stop */

	int		 reaped;		/* waitpid returned it */
	int		 status;		/* as hproc_stop returns it */
	int		 bad_lines;		/* stdout '{' lines not strict */
	struct hproc	*next;
};

static struct hproc	*procs;
static pid_t		 procs_owner;

static void
xappend(void **arr, int *n, int *cap, size_t size)
{
	void	*p;
	int	 ncap;

	if (*n < *cap)
		return;
	ncap = *cap ? *cap * 2 : 64;
	if ((p = realloc(*arr, (size_t)ncap * size)) == NULL)
		abort();
	*arr = p;
	*cap = ncap;
}

/* Records a "listening" record's port; called with mu held. */
static void
note_port(struct hproc *p, cJSON *rec)
{
	const char	*addr, *colon;
	const cJSON	*tls;

	if ((addr = hjson_str(rec, "address")) == NULL ||
	    (colon = strrchr(addr, ':')) == NULL)
		return;
	xappend((void **)&p->ports, &p->nports, &p->capports,
	    sizeof(*p->ports));
	p->ports[p->nports].port = atoi(colon + 1);
	tls = cJSON_GetObjectItemCaseSensitive(rec, "tls");
	p->ports[p->nports].tls = cJSON_IsTrue(tls) || cJSON_IsObject(tls);
	p->nports++;
}

/* Whether s is well-formed UTF-8 with no raw control byte: what a strict
 * reader (Python's json on bytes) needs of a record line, besides JSON. */
static int
strict_utf8(const unsigned char *s, size_t n)
{
	size_t	 i = 0, k, j;
	unsigned cp, min;

	while (i < n) {
		if (s[i] < 0x20)
			return 0;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xE0) == 0xC0) { k = 2; cp = s[i] & 0x1Fu; min = 0x80; }
		else if ((s[i] & 0xF0) == 0xE0) { k = 3; cp = s[i] & 0x0Fu; min = 0x800; }
		else if ((s[i] & 0xF8) == 0xF0) { k = 4; cp = s[i] & 0x07u; min = 0x10000; }
		else return 0;
		if (n - i < k)
			return 0;
		for (j = 1; j < k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3Fu);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += k;
	}
	return 1;
}

/* Adds one complete line; called with mu held. */
static void
add_line(struct hproc *p, const char *s, size_t len, int from_err)
{
	struct hline	*l;
	const char	*ev;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	xappend((void **)&p->lines, &p->nlines, &p->caplines,
	    sizeof(*p->lines));
	l = &p->lines[p->nlines];
	memset(l, 0, sizeof(*l));
	if ((l->raw = strndup(s, len)) == NULL)
		abort();
	l->from_err = from_err;
	if (!from_err && len > 0 && s[0] == '{') {
		l->json = cJSON_ParseWithLengthOpts(l->raw, len + 1, NULL, 1);
		if (l->json != NULL && !cJSON_IsObject(l->json)) {
			cJSON_Delete(l->json);
			l->json = NULL;
		}
		/* Every record line must be strict JSON: valid UTF-8, no raw
		 * control byte, one object and nothing after it. */
		if (l->json == NULL || !strict_utf8((const unsigned char *)s,
		    len)) {
			p->bad_lines++;
			fprintf(stderr, "harness: %s: a stdout line is not "
			    "strict UTF-8 JSON: %s\n", p->name, l->raw);
		}
	}
	if (l->json != NULL && (ev = hjson_str(l->json, "event")) != NULL &&
	    strcmp(ev, "listening") == 0)
		note_port(p, l->json);
	p->nlines++;
}

/* Splits what a pipe gave into lines. */
static void
take_bytes(struct hproc *p, int which, const char *buf, size_t n)
{
	struct partial	*pt = &p->part[which];
	const char	*nl;
	char		*nb;
	size_t		 k;

	pthread_mutex_lock(&p->mu);
	while (n > 0) {
		nl = memchr(buf, '\n', n);
		k = nl ? (size_t)(nl - buf) : n;
		if (pt->len + k + 1 > pt->cap) {
			pt->cap = (pt->len + k + 1) * 2;
			if ((nb = realloc(pt->buf, pt->cap)) == NULL)
				abort();
			pt->buf = nb;
		}
		memcpy(pt->buf + pt->len, buf, k);
		pt->len += k;
		if (nl == NULL)
			break;
		add_line(p, pt->buf, pt->len, which);
		pt->len = 0;
		buf += k + 1;
		n -= k + 1;
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* The reader thread: drains both pipes so the child never blocks on a
 * full pipe, until both end or the test thread says quit. */
static void *
reader_main(void *arg)
{
	struct hproc	*p = arg;
	struct pollfd	 pfd[2];
	char		 buf[16384];
	ssize_t		 n;
	int		 i, quit;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		quit = p->quit;
		pthread_mutex_unlock(&p->mu);
		if (quit || (p->fds[0] == -1 && p->fds[1] == -1))
			break;
		for (i = 0; i < 2; i++) {
			pfd[i].fd = p->fds[i];
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		if (poll(pfd, 2, 100) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < 2; i++) {
			if (p->fds[i] == -1 || pfd[i].revents == 0)
				continue;
			n = read(p->fds[i], buf, sizeof(buf));
			if (n > 0)
				take_bytes(p, i, buf, (size_t)n);
			else if (n == 0 || (errno != EINTR &&
			    errno != EAGAIN)) {
				close(p->fds[i]);
				p->fds[i] = -1;
			}
		}
	}
	pthread_mutex_lock(&p->mu);
	for (i = 0; i < 2; i++) {
		if (p->part[i].len > 0) {
			add_line(p, p->part[i].buf, p->part[i].len, i);
			p->part[i].len = 0;
		}
	}
	p->eof = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* A program name looked up in PATH, or the path itself. */
static const char *
resolve(const char *prog)
{
	const char	*path, *s, *e;
	const char	*cand;

	if (strchr(prog, '/') != NULL)
		return prog;
	if ((path = getenv("PATH")) == NULL)
		path = "/usr/bin:/bin";
	for (s = path; *s != '\0'; s = *e ? e + 1 : e) {
		e = strchrnul(s, ':');
		cand = hstrf("%.*s/%s", (int)(e - s), s, prog);
		if (access(cand, X_OK) == 0)
			return cand;
	}
	return prog;
}

/* The environment plus extras; an extra replaces a variable of its name. */
static char **
make_env(const char *const extra[])
{
	char		**env;
	size_t		 n = 0, m = 0, i, j, k, klen;
	const char	*eq;
	int		 replaced;

	while (environ[n] != NULL)
		n++;
	while (extra != NULL && extra[m] != NULL)
		m++;
	if ((env = calloc(n + m + 1, sizeof(*env))) == NULL)
		abort();
	for (i = 0, k = 0; i < n; i++) {
		replaced = 0;
		for (j = 0; j < m; j++) {
			eq = strchr(extra[j], '=');
			klen = eq ? (size_t)(eq - extra[j]) : strlen(extra[j]);
			if (strncmp(environ[i], extra[j], klen) == 0 &&
			    environ[i][klen] == '=')
				replaced = 1;
		}
		if (!replaced)
			env[k++] = environ[i];
	}
	for (j = 0; j < m; j++)
		env[k++] = (char *)extra[j];
	env[k] = NULL;
	return env;
}

/* The child's half of hproc_start(): only async-signal-safe calls. */
static void __attribute__((noreturn))
child_exec(pid_t parent, const char *path, char *const argv[],
    char *const envp[], int nullfd, int out, int err, int status_fd)
{
	struct sigaction	 sa;
	sigset_t		 none;
	int			 sig, e;

	/* Die with the test, even when it crashes or is killed. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(127);
	/* Its own group, so a SIGKILL to the group takes grandchildren too. */
	(void)setpgid(0, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(nullfd, 0) == -1 || dup2(out, 1) == -1 || dup2(err, 2) == -1)
		goto fail;
	/* Nothing of the test's (Criterion's sockets, other children's
	 * pipes) leaks into the child; the status pipe closes on exec. */
	(void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	execve(path, argv, envp);
 fail:
	e = errno;
	(void)write(status_fd, &e, sizeof(e));
	_exit(127);
}

struct hproc *
hproc_start(const char *const argv[], const char *const envp_extra[])
{
	struct hproc		*p;
	const char		*path;
	char			*args[MAXARGS + 1];
	char			**env;
	pthread_condattr_t	 ca;
	int			 out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int			 st[2] = { -1, -1 }, nullfd = -1, i, e;
	ssize_t			 n;
	pid_t			 pid, parent = getpid();

	hcleanup_register_();
	if (procs_owner != getpid()) {
		procs = NULL;		/* a fork's copy of the parent's list */
		procs_owner = getpid();
	}
	for (i = 0; argv[i] != NULL && i < MAXARGS; i++)
		args[i] = (char *)argv[i];
	args[i] = NULL;
	path = resolve(argv[0]);
	env = make_env(envp_extra);
	if ((p = calloc(1, sizeof(*p))) == NULL)
		abort();
	snprintf(p->name, sizeof(p->name), "%s",
	    strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0]);

	if (pipe2(out, O_CLOEXEC) == -1 || pipe2(err, O_CLOEXEC) == -1 ||
	    pipe2(st, O_CLOEXEC) == -1 ||
	    (nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "harness: %s: pipe: %s\n", p->name,
		    strerror(errno));
		goto fail;
	}
	fflush(NULL);
	if ((pid = fork()) == -1) {
		fprintf(stderr, "harness: %s: fork: %s\n", p->name,
		    strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child_exec(parent, path, args, env, nullfd, out[1], err[1],
		    st[1]);
	p->pid = pid;
	close(out[1]);
	close(err[1]);
	close(st[1]);
	close(nullfd);
	out[1] = err[1] = st[1] = nullfd = -1;
	while ((n = read(st[0], &e, sizeof(e))) == -1 && errno == EINTR)
		;
	close(st[0]);
	st[0] = -1;
	if (n > 0) {
		fprintf(stderr, "harness: exec %s: %s\n", path, strerror(e));
		while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
			;
		goto fail;
	}
	free(env);
	env = NULL;

	p->fds[0] = out[0];
	p->fds[1] = err[0];
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&p->reader, NULL, reader_main, p) != 0) {
		fprintf(stderr, "harness: %s: pthread_create failed\n",
		    p->name);
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
			;
		goto fail;
	}
	p->reader_live = 1;
	p->next = procs;
	procs = p;
	return p;

 fail:
	for (i = 0; i < 2; i++) {
		if (out[i] != -1)
			close(out[i]);
		if (err[i] != -1)
			close(err[i]);
		if (st[i] != -1)
			close(st[i]);
	}
	if (nullfd != -1)
		close(nullfd);
	free(env);
	free(p);
	return NULL;
}

void
hproc_set_name(struct hproc *p, const char *name)
{
	snprintf(p->name, sizeof(p->name), "%s", name);
}

const char *
hproc_name(const struct hproc *p)
{
	return p->name;
}

pid_t
hproc_pid(const struct hproc *p)
{
	return p->pid;
}

/* Does a record match all pairs? keys[i] NULL ends; vals[i] NULL means
 * "present". The key "event" is an ordinary key. */
static int
record_matches(const cJSON *rec, const char *const keys[],
    const char *const vals[], int n)
{
	char		 buf[64];
	const char	*t;
	const cJSON	*v;
	int		 i;

	if (rec == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		if ((v = hjson_get(rec, keys[i])) == NULL)
			return 0;
		if (vals[i] == NULL)
			continue;
		if ((t = hjson_text_r_(v, buf, sizeof(buf))) == NULL ||
		    strcmp(t, vals[i]) != 0)
			return 0;
	}
	return 1;
}

/* An absolute CLOCK_MONOTONIC deadline ms from now. */
static struct timespec
deadline_in(int ms)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

static const char *
pairs_text(const char *const keys[], const char *const vals[], int n)
{
	char	buf[1024];
	size_t	off = 0;
	int	i;

	buf[0] = '\0';
	for (i = 0; i < n && off < sizeof(buf); i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s=%s",
		    i ? " " : "", keys[i], vals[i] ? vals[i] : "*");
	return hstrf("%s", buf);
}

static cJSON *
wait_pairs(struct hproc *p, int timeout_ms, const char *const keys[],
    const char *const vals[], int n)
{
	struct timespec	 dl;
	cJSON		*found = NULL;
	int		 i, ms = hscaled(timeout_ms), from = 0;

	dl = deadline_in(ms);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		for (i = from; i < p->nlines; i++) {
			if (!p->lines[i].taken && record_matches(p->lines[i].json,
			    keys, vals, n)) {
				p->lines[i].taken = 1;
				found = p->lines[i].json;
				goto out;
			}
		}
		/* Earlier lines were all looked at; only new ones can match. */
		from = p->nlines;
		if (p->eof)
			break;
		if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT)
			break;
	}
 out:
	pthread_mutex_unlock(&p->mu);
	if (found == NULL)
		fprintf(stderr, "harness: %s: no record %s %s\n", p->name,
		    pairs_text(keys, vals, n), p->eof ? "before it exited" :
		    hstrf("within %d ms", ms));
	return found;
}

cJSON *
hproc_wait_record(struct hproc *p, const char *event, const char *key,
    const char *value, int timeout_ms)
{
	const char	*keys[2], *vals[2];
	int		 n = 0;

	if (event != NULL) {
		keys[n] = "event";
		vals[n++] = event;
	}
	if (key != NULL) {
		keys[n] = key;
		vals[n++] = value;
	}
	return wait_pairs(p, timeout_ms, keys, vals, n);
}

cJSON *
hproc_wait_match(struct hproc *p, int timeout_ms, ...)
{
	const char	*keys[MAXPAIRS], *vals[MAXPAIRS], *k;
	va_list		 ap;
	int		 n = 0;

	va_start(ap, timeout_ms);
	while ((k = va_arg(ap, const char *)) != NULL && n < MAXPAIRS) {
		keys[n] = k;
		vals[n++] = va_arg(ap, const char *);
	}
	va_end(ap);
	return wait_pairs(p, timeout_ms, keys, vals, n);
}

cJSON *
hproc_find_record(struct hproc *p, const char *event, const char *key,
    const char *value)
{
	const char	*keys[2], *vals[2];
	cJSON		*found = NULL;
	int		 i, n = 0;

	if (event != NULL) {
		keys[n] = "event";
		vals[n++] = event;
	}
	if (key != NULL) {
		keys[n] = key;
		vals[n++] = value;
	}
	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->nlines && found == NULL; i++)
		if (record_matches(p->lines[i].json, keys, vals, n))
			found = p->lines[i].json;
	pthread_mutex_unlock(&p->mu);
	return found;
}

int
hproc_count_match(struct hproc *p, const char *event, const char *key,
    const char *value)
{
	const char	*keys[2], *vals[2];
	int		 i, n = 0, count = 0;

	if (event != NULL) {
		keys[n] = "event";
		vals[n++] = event;
	}
	if (key != NULL) {
		keys[n] = key;
		vals[n++] = value;
	}
	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->nlines; i++)
		if (record_matches(p->lines[i].json, keys, vals, n))
			count++;
	pthread_mutex_unlock(&p->mu);
	return count;
}

int
hproc_count(struct hproc *p, const char *event)
{
	return hproc_count_match(p, event, NULL, NULL);
}

int
hproc_nrecords(struct hproc *p)
{
	int	i, n = 0;

	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->nlines; i++)
		if (p->lines[i].json != NULL)
			n++;
	pthread_mutex_unlock(&p->mu);
	return n;
}

cJSON *
hproc_record(struct hproc *p, int idx)
{
	cJSON	*found = NULL;
	int	 i, n = 0;

	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->nlines && found == NULL; i++)
		if (p->lines[i].json != NULL && n++ == idx)
			found = p->lines[i].json;
	pthread_mutex_unlock(&p->mu);
	return found;
}

const char *
hproc_wait_line(struct hproc *p, const char *needle, int timeout_ms)
{
	struct timespec	 dl;
	const char	*found = NULL;
	int		 i, ms = hscaled(timeout_ms), from = 0;

	dl = deadline_in(ms);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		for (i = from; i < p->nlines; i++) {
			if (!p->lines[i].line_taken &&
			    strstr(p->lines[i].raw, needle) != NULL) {
				p->lines[i].line_taken = 1;
				found = p->lines[i].raw;
				goto out;
			}
		}
		from = p->nlines;
		if (p->eof)
			break;
		if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT)
			break;
	}
 out:
	pthread_mutex_unlock(&p->mu);
	if (found == NULL)
		fprintf(stderr, "harness: %s: no line with \"%s\" %s\n",
		    p->name, needle, p->eof ? "before it exited" :
		    hstrf("within %d ms", ms));
	return found;
}

int
hproc_listen_port(struct hproc *p, int i)
{
	int	port = -1;

	pthread_mutex_lock(&p->mu);
	if (i >= 0 && i < p->nports)
		port = p->ports[i].port;
	pthread_mutex_unlock(&p->mu);
	return port;
}

int
hproc_signal(struct hproc *p, int sig)
{
	if (p->reaped) {
		fprintf(stderr, "harness: %s: signal %d: already exited\n",
		    p->name, sig);
		return -1;
	}
	if (kill(p->pid, sig) == -1) {
		fprintf(stderr, "harness: %s: kill %d: %s\n", p->name, sig,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Stops the reader once the pipes ended (or after a grace period, in
 * case a grandchild holds them), so every line is in before return. */
static void
reader_join(struct hproc *p, int grace_ms)
{
	struct timespec	dl;

	if (!p->reader_live)
		return;
	dl = deadline_in(grace_ms);
	pthread_mutex_lock(&p->mu);
	while (!p->eof)
		if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT)
			break;
	p->quit = 1;
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->reader, NULL);
	p->reader_live = 0;
	if (p->fds[0] != -1)
		close(p->fds[0]);
	if (p->fds[1] != -1)
		close(p->fds[1]);
	p->fds[0] = p->fds[1] = -1;
}

/* Reaps the child if it exited; 1 when reaped. */
static int
try_reap(struct hproc *p, int block)
{
	int	st;
	pid_t	r;

	if (p->reaped)
		return 1;
	while ((r = waitpid(p->pid, &st, block ? 0 : WNOHANG)) == -1 &&
	    errno == EINTR)
		;
	if (r == 0)
		return 0;
	p->reaped = 1;
	if (r == -1)
		p->status = -1;
	else if (WIFEXITED(st))
		p->status = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		p->status = 128 + WTERMSIG(st);
	else
		p->status = -1;
	reader_join(p, 2000 * hscale());
	if (p->status == 0 && p->conf_path[0] != '\0' && p->bad_lines > 0)
		p->status = 97;	/* a proxy wrote a record no strict reader takes */
	return 1;
}

int
hproc_bad_lines(struct hproc *p)
{
	int	 n;

	pthread_mutex_lock(&p->mu);
	n = p->bad_lines;
	pthread_mutex_unlock(&p->mu);
	return n;
}

int
hproc_running(struct hproc *p)
{
	return !try_reap(p, 0);
}

int
hproc_wait_exit(struct hproc *p, int timeout_ms)
{
	int64_t	end = hnow_ms() + hscaled(timeout_ms);

	for (;;) {
		if (try_reap(p, 0))
			return p->status;
		if (hnow_ms() >= end)
			return -1;
		hsleep_ms(2);
	}
}

int
hproc_stop(struct hproc *p, int timeout_ms)
{
	if (p->reaped)
		return p->status;
	kill(p->pid, SIGTERM);
	if (hproc_wait_exit(p, timeout_ms) != -1 || p->reaped)
		return p->status;
	fprintf(stderr, "harness: %s: no exit %d ms after SIGTERM; "
	    "SIGKILL\n", p->name, hscaled(timeout_ms));
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
	try_reap(p, 1);
	return p->status;
}

void
hproc_dump(struct hproc *p)
{
	int	i;

	pthread_mutex_lock(&p->mu);
	fprintf(stderr, "---- %s (pid %ld%s): %d lines ----\n", p->name,
	    (long)p->pid, p->reaped ? hstrf(", exit %d", p->status) : "",
	    p->nlines);
	for (i = 0; i < p->nlines; i++)
		fprintf(stderr, "[%s %s] %s\n", p->name,
		    p->lines[i].from_err ? "err" : "out", p->lines[i].raw);
	for (i = 0; i < 2; i++)
		if (p->part[i].len > 0)
			fprintf(stderr, "[%s %s] %.*s (no newline yet)\n",
			    p->name, i ? "err" : "out", (int)p->part[i].len,
			    p->part[i].buf);
	fprintf(stderr, "---- end of %s ----\n", p->name);
	pthread_mutex_unlock(&p->mu);
}

void
hproc_dump_all(void)
{
	struct hproc	*p;

	if (procs_owner != getpid())
		return;
	for (p = procs; p != NULL; p = p->next)
		hproc_dump(p);
}

static void
proc_release(struct hproc *p)
{
	int	i;

	if (!p->reaped) {
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
		try_reap(p, 1);
	} else if (!p->eof)
		kill(-p->pid, SIGKILL);	/* a grandchild holds the pipes */
	reader_join(p, 0);
	for (i = 0; i < p->nlines; i++) {
		free(p->lines[i].raw);
		cJSON_Delete(p->lines[i].json);
	}
	free(p->lines);
	free(p->ports);
	free(p->part[0].buf);
	free(p->part[1].buf);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

void
hproc_free(struct hproc *p)
{
	struct hproc	**pp;

	if (p == NULL)
		return;
	for (pp = &procs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	proc_release(p);
}

/* At exit: every process still running is killed, not asked, so a test
 * that forgot to stop one does not wait out a drain. */
void
hproc_cleanup_(void)
{
	struct hproc	*p;
	const char	*dump;

	if (procs_owner != getpid())
		return;
	dump = getenv("CP_DUMP");
	while ((p = procs) != NULL) {
		procs = p->next;
		if (dump != NULL && *dump != '\0' && strcmp(dump, "0") != 0)
			hproc_dump(p);
		proc_release(p);
	}
}

/* ---- cancelproxy-mock and cancelproxy ---- */

struct hproc *
hmock_startv(const char *const args[], int *port)
{
	const char	*argv[MAXARGS + 1];
	struct hproc	*p;
	cJSON		*rec;
	int		 n = 0, i;

	argv[n++] = hbin_path("cancelproxy-mock");
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	for (i = 0; args != NULL && args[i] != NULL && n < MAXARGS; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if ((p = hproc_start(argv, NULL)) == NULL)
		return NULL;
	if ((rec = hproc_wait_record(p, "listening", NULL, NULL, 10000)) ==
	    NULL || hproc_listen_port(p, 0) <= 0) {
		fprintf(stderr, "harness: cancelproxy-mock did not start\n");
		hproc_dump(p);
		hproc_free(p);
		return NULL;
	}
	if (port != NULL)
		*port = hproc_listen_port(p, 0);
	return p;
}

struct hproc *
hmock_start(int *port, ...)
{
	const char	*args[MAXARGS + 1], *a;
	va_list		 ap;
	int		 n = 0;

	va_start(ap, port);
	while ((a = va_arg(ap, const char *)) != NULL && n < MAXARGS)
		args[n++] = a;
	va_end(ap);
	args[n] = NULL;
	return hmock_startv(args, port);
}

cJSON *
hmock_wait_closed(struct hproc *mock, const char *request_id)
{
	cJSON		*rec;
	const char	*o;

	for (;;) {
		rec = hproc_wait_record(mock, "mock_stream", request_id !=
		    NULL ? "request_id" : NULL, request_id, 0);
		if (rec == NULL)
			return NULL;
		o = hjson_text(rec, "outcome");
		if (o != NULL && (strcmp(o, "client_fin") == 0 ||
		    strcmp(o, "client_rst") == 0))
			return rec;
		if (request_id != NULL) {
			fprintf(stderr, "harness: %s: the stream ended "
			    "otherwise: %s\n", hproc_name(mock),
			    hjson_print(rec));
			return NULL;
		}
		/* An earlier stream that ended otherwise: not this one. */
	}
}

/* How many listeners a config declares, and its hop; comments allowed. */
static int
config_listens(const char *config, const char **hop)
{
	char	*copy;
	cJSON	*root;
	int	 n = 1;

	*hop = NULL;
	if ((copy = strdup(config)) == NULL)
		abort();
	cJSON_Minify(copy);
	if ((root = cJSON_Parse(copy)) != NULL) {
		if (cJSON_IsArray(cJSON_GetObjectItem(root, "listen")))
			n = cJSON_GetArraySize(cJSON_GetObjectItem(root,
			    "listen"));
		if (hjson_str(root, "hop") != NULL)
			*hop = hstrf("%s", hjson_str(root, "hop"));
		cJSON_Delete(root);
	}
	free(copy);
	return n;
}

/* Is the proxy to run under valgrind? */
static int
use_valgrind(void)
{
	const char	*s = getenv("CP_VALGRIND");

	return s != NULL && *s != '\0' && strcmp(s, "0") != 0;
}

struct hproc *
hproxy_start_opts(const char *config, const struct hproxy_opts *o)
{
	static int		 seq;
	struct hproxy_opts	 none;
	const char		*argv[MAXARGS + 1], *path, *hop, *supp;
	struct hproc		*p;
	int			 n = 0, i, nlisten;

	if (o == NULL) {
		memset(&none, 0, sizeof(none));
		o = &none;
	}
	nlisten = config_listens(config, &hop);
	if (o->nlisten > 0)
		nlisten = o->nlisten;
	if ((path = htmp_write(hstrf("proxy-%d.json", ++seq), config)) ==
	    NULL)
		return NULL;
	if (use_valgrind()) {
		argv[n++] = "valgrind";
		argv[n++] = "--quiet";
		argv[n++] = "--leak-check=full";
		argv[n++] = "--errors-for-leak-kinds=definite";
		argv[n++] = "--show-leak-kinds=definite";
		argv[n++] = "--error-exitcode=99";
		argv[n++] = "--num-callers=30";
		supp = CP_SOURCE_DIR "/tests/valgrind.supp";
		if (access(supp, R_OK) == 0)
			argv[n++] = hstrf("--suppressions=%s", supp);
	}
	argv[n++] = hbin_path("cancelproxy");
	argv[n++] = "-c";
	argv[n++] = path;
	for (i = 0; o->args != NULL && o->args[i] != NULL && n < MAXARGS; i++)
		argv[n++] = o->args[i];
	argv[n] = NULL;
	if ((p = hproc_start(argv, o->env)) == NULL)
		return NULL;
	snprintf(p->conf_path, sizeof(p->conf_path), "%s", path);
	if (o->name != NULL)
		hproc_set_name(p, o->name);
	else
		hproc_set_name(p, hop ? hstrf("cancelproxy[%s]", hop) :
		    "cancelproxy");
	if (o->no_wait)
		return p;
	for (i = 0; i < nlisten; i++) {
		if (hproc_wait_record(p, "listening", NULL, NULL, 10000) ==
		    NULL) {
			fprintf(stderr, "harness: %s: %d of %d listeners up\n",
			    p->name, i, nlisten);
			hproc_dump(p);
			hproc_free(p);
			return NULL;
		}
	}
	return p;
}

struct hproc *
hproxy_start(const char *config)
{
	return hproxy_start_opts(config, NULL);
}

struct hproc *
hproxy_startf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		abort();
	va_end(ap);
	return hproxy_start_opts(hkeep(s), NULL);
}

int
hproxy_port(struct hproc *p, int tls)
{
	int	i, port = -1;

	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->nports && port == -1; i++)
		if (!p->ports[i].tls == !tls)
			port = p->ports[i].port;
	pthread_mutex_unlock(&p->mu);
	return port;
}

const char *
hproxy_config_path(struct hproc *p)
{
	return p->conf_path;
}

int
hproxy_rewrite(struct hproc *p, const char *config)
{
	const char	*tmp;

	if (p->conf_path[0] == '\0') {
		fprintf(stderr, "harness: %s: not a proxy\n", p->name);
		return -1;
	}
	tmp = hstrf("%s.new", p->conf_path);
	if (htmp_write(strrchr(tmp, '/') + 1, config) == NULL)
		return -1;
	if (rename(tmp, p->conf_path) == -1) {
		fprintf(stderr, "harness: rename %s: %s\n", tmp,
		    strerror(errno));
		return -1;
	}
	return 0;
}
