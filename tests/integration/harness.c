/* harness: the common part of the integration-test harness: timeouts and
 * their scaling, the per-process temporary directory, harness-owned memory
 * and JSON look-ups, and the cleanup that runs at exit. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#ifndef CP_BIN_DIR
#define CP_BIN_DIR "."
#endif

/* Memory the harness handed out; freed by hcleanup(). */
struct keep {
	void	*p;
	int	 json;		/* a cJSON tree, freed with cJSON_Delete */
};

static struct keep	*keeps;
static size_t		 nkeeps, capkeeps;
static char		 tmp_dir[PATH_MAX];
static pid_t		 tmp_owner;	/* the process that made tmp_dir */
static pid_t		 exit_owner;	/* the process hcleanup runs in */
static int		 scale = -1;

static void
hcleanup_atexit(void)
{
	if (getpid() == exit_owner)
		hcleanup();
}

/* Registers hcleanup() at exit, once per process (a fork's child of a
 * test registers again for itself). */
void
hcleanup_register_(void)
{
	if (exit_owner == getpid())
		return;
	exit_owner = getpid();
	/* A test writing to a socket the peer reset must see EPIPE, not die;
	 * children get SIGPIPE back to the default before exec. */
	signal(SIGPIPE, SIG_IGN);
	atexit(hcleanup_atexit);
}

int
hscale(void)
{
	const char	*s;

	if (scale > 0)
		return scale;
	scale = 1;
	if ((s = getenv("CP_VALGRIND")) != NULL && *s != '\0' &&
	    strcmp(s, "0") != 0)
		scale = 10;
	if ((s = getenv("CP_TIMEOUT_SCALE")) != NULL && atoi(s) > 0)
		scale = atoi(s);
	return scale;
}

int
hscaled(int ms)
{
	if (ms <= 0)
		ms = HTIMEOUT_MS;
	return ms * hscale();
}

int64_t
hnow_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
hnow_ms(void)
{
	return hnow_us() / 1000;
}

void
hsleep_ms(int ms)
{
	struct timespec	ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

void *
hkeep(void *p)
{
	struct keep	*n;

	if (p == NULL)
		return NULL;
	hcleanup_register_();
	if (nkeeps == capkeeps) {
		capkeeps = capkeeps ? capkeeps * 2 : 64;
		if ((n = realloc(keeps, capkeeps * sizeof(*keeps))) == NULL)
			abort();
		keeps = n;
	}
	keeps[nkeeps].p = p;
	keeps[nkeeps].json = 0;
	nkeeps++;
	return p;
}

cJSON *
hkeep_json(cJSON *json)
{
	if (json == NULL)
		return NULL;
	hkeep(json);
	keeps[nkeeps - 1].json = 1;
	return json;
}

const char *
hstrf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		abort();
	va_end(ap);
	return hkeep(s);
}

static int
rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Removes directories left by test processes that were killed (a
 * Criterion timeout skips atexit): /tmp/cp-test.<pid>.XXXXXX whose pid is
 * gone. */
static void
tmp_sweep(void)
{
	DIR		*d;
	struct dirent	*e;
	char		 path[PATH_MAX];
	long		 pid;

	if ((d = opendir("/tmp")) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "cp-test.", 8) != 0)
			continue;
		pid = strtol(e->d_name + 8, NULL, 10);
		if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "/tmp/%s", e->d_name);
		nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	}
	closedir(d);
}

const char *
htmp_dir(void)
{
	if (tmp_owner == getpid() && tmp_dir[0] != '\0')
		return tmp_dir;
	hcleanup_register_();
	tmp_sweep();
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/cp-test.%ld.XXXXXX",
	    (long)getpid());
	if (mkdtemp(tmp_dir) == NULL) {
		fprintf(stderr, "harness: mkdtemp %s: %s\n", tmp_dir,
		    strerror(errno));
		abort();
	}
	tmp_owner = getpid();
	return tmp_dir;
}

const char *
htmp_path(const char *name)
{
	return hstrf("%s/%s", htmp_dir(), name);
}

const char *
htmp_write(const char *name, const char *text)
{
	const char	*path = htmp_path(name);
	FILE		*f;
	size_t		 len = strlen(text);

	if ((f = fopen(path, "w")) == NULL) {
		fprintf(stderr, "harness: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fwrite(text, 1, len, f) != len) {
		fprintf(stderr, "harness: %s: short write\n", path);
		fclose(f);
		return NULL;
	}
	if (fclose(f) == EOF) {
		fprintf(stderr, "harness: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	return path;
}

const char *
hbin_path(const char *name)
{
	return hstrf("%s/%s", CP_BIN_DIR, name);
}

const cJSON *
hjson_get(const cJSON *obj, const char *path)
{
	const cJSON	*cur = obj;
	const char	*p = path, *dot;
	char		 part[256];
	size_t		 n;
	char		*end;
	long		 idx;

	if (obj == NULL || path == NULL)
		return NULL;
	while (cur != NULL && *p != '\0') {
		dot = strchr(p, '.');
		n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(part))
			return NULL;
		memcpy(part, p, n);
		part[n] = '\0';
		if (cJSON_IsArray(cur)) {
			idx = strtol(part, &end, 10);
			if (*end != '\0' || idx < 0)
				return NULL;
			cur = cJSON_GetArrayItem(cur, (int)idx);
		} else if (cJSON_IsObject(cur))
			cur = cJSON_GetObjectItemCaseSensitive(cur, part);
		else
			return NULL;
		p += n;
		if (*p == '.')
			p++;
	}
	return cur;
}

const char *
hjson_str(const cJSON *obj, const char *path)
{
	const cJSON	*v = hjson_get(obj, path);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

double
hjson_num(const cJSON *obj, const char *path, double def)
{
	const cJSON	*v = hjson_get(obj, path);

	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* Writes the text form of a value into buf; NULL when there is none. */
const char *
hjson_text_r_(const cJSON *v, char *buf, size_t len)
{
	double	d;

	if (v == NULL)
		return NULL;
	if (cJSON_IsString(v))
		return v->valuestring;
	if (cJSON_IsNumber(v)) {
		d = v->valuedouble;
		if (d == floor(d) && fabs(d) < 9e15)
			snprintf(buf, len, "%.0f", d);
		else
			snprintf(buf, len, "%.17g", d);
		return buf;
	}
	if (cJSON_IsTrue(v))
		return "true";
	if (cJSON_IsFalse(v))
		return "false";
	if (cJSON_IsNull(v))
		return "null";
	return NULL;		/* objects and arrays have no text form */
}

const char *
hjson_text(const cJSON *obj, const char *path)
{
	char		 buf[64];
	const char	*t;

	if ((t = hjson_text_r_(hjson_get(obj, path), buf, sizeof(buf))) ==
	    NULL)
		return NULL;
	return hstrf("%s", t);
}

cJSON *
hjson_parse(const char *text)
{
	if (text == NULL)
		return NULL;
	return hkeep_json(cJSON_Parse(text));
}

const char *
hjson_print(const cJSON *obj)
{
	if (obj == NULL)
		return "(null)";
	return hkeep(cJSON_PrintUnformatted(obj));
}

void
hcleanup(void)
{
	const char	*keep;
	size_t		 i;

	hproc_cleanup_();
	hconn_cleanup_();
	for (i = nkeeps; i > 0; i--) {
		if (keeps[i - 1].json)
			cJSON_Delete(keeps[i - 1].p);
		else
			free(keeps[i - 1].p);
	}
	free(keeps);
	keeps = NULL;
	nkeeps = capkeeps = 0;
	if (tmp_owner == getpid() && tmp_dir[0] != '\0') {
		keep = getenv("CP_KEEP_TMP");
		if (keep != NULL && *keep != '\0' && strcmp(keep, "0") != 0)
			fprintf(stderr, "harness: kept %s\n", tmp_dir);
		else
			nftw(tmp_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		tmp_dir[0] = '\0';
	}
}

int
hecho_count(const cJSON *j, const char *name)
{
	const cJSON	*h;
	const char	*n;
	int		 count = 0;

	cJSON_ArrayForEach(h, hjson_get(j, "headers")) {
		n = cJSON_GetStringValue(cJSON_GetArrayItem(h, 0));
		if (n != NULL && strcasecmp(n, name) == 0)
			count++;
	}
	return count;
}

const char *
hecho_header(const cJSON *j, const char *name)
{
	const cJSON	*h;
	const char	*n;

	cJSON_ArrayForEach(h, hjson_get(j, "headers")) {
		n = cJSON_GetStringValue(cJSON_GetArrayItem(h, 0));
		if (n != NULL && strcasecmp(n, name) == 0)
			return cJSON_GetStringValue(cJSON_GetArrayItem(h, 1));
	}
	return NULL;
}

struct hproc *
hmock_fast(int *port)
{
	struct hproc	*m;

	m = hmock_start(port, "--first-token-ms", "5", "--interval-ms", "5",
	    "--tokens", "5", NULL);
	hassert(m != NULL, "the mock did not start");
	return m;
}
