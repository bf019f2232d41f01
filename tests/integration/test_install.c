/* test_install: what a package or an operator gets. `cmake --install`
 * puts exactly the expected files under a fresh prefix, with the systemd
 * unit pointing at the daemon it installed; every man page renders without
 * a single groff warning; every example config passes `cancelproxy -t`
 * with the variables it names set, and fails without them, so no example
 * carries a secret inline. */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"

TestSuite(install, .timeout = 300);

extern char	**environ;

#define UNIT_FILE	"lib/systemd/system/cancelproxy.service"

/* What `cmake --install` must put under the prefix, sorted. A path that
 * starts with "/" is absolute (DESTDIR-relative), the others are relative
 * to the prefix. The logrotate and unit directories are taken from the
 * build's cache when it sets them (CMAKE_INSTALL_SYSCONFDIR=/etc for a
 * package, say). */
static const char *const expected_files[] = {
	"bin/cancelproxy-log",
	"bin/cancelproxy-mock",
	"etc/logrotate.d/cancelproxy",
	UNIT_FILE,
	"sbin/cancelproxy",
	"share/doc/cancelproxy/examples/anthropic.json",
	"share/doc/cancelproxy/examples/chain-core.json",
	"share/doc/cancelproxy/examples/chain-edge.json",
	"share/doc/cancelproxy/examples/demo.json",
	"share/doc/cancelproxy/examples/ollama.json",
	"share/doc/cancelproxy/examples/openai.json",
	"share/doc/cancelproxy/examples/vllm.json",
	"share/man/man1/cancelproxy-log.1",
	"share/man/man1/cancelproxy-mock.1",
	"share/man/man5/cancelproxy.conf.5",
	"share/man/man8/cancelproxy.8",
	NULL
};

/* The man pages that must exist in the source tree. */
static const char *const expected_pages[] = {
	"cancelproxy-log.1", "cancelproxy-mock.1", "cancelproxy.conf.5",
	"cancelproxy.8", NULL
};

/* The example configs that must exist in the source tree. */
static const char *const expected_examples[] = {
	"anthropic.json", "chain-core.json", "chain-edge.json", "demo.json",
	"grpc.json", "ollama.json", "openai.json", "vllm.json", NULL
};

/* ---- helpers ---- */

/* What a finished command left behind. */
struct run {
	int		 status;	/* exit code, 128 + signal, or -1 */
	const char	*out;		/* standard output (harness-owned) */
	const char	*err;		/* standard error (harness-owned) */
};

/* A whole file as a NUL-terminated string (harness-owned), or NULL. */
static const char *
slurp(const char *path)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == -1 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1) {
		fclose(f);
		return NULL;
	}
	buf = hkeep(malloc((size_t)n + 1));
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The environment without the names in unset (NULL-ended, may be NULL),
 * plus extra ("NAME=value", NULL-ended, may be NULL). */
static char **
child_env(const char *const unset[], const char *const extra[])
{
	char	**env;
	size_t	  n = 0, k = 0, i, j, len;
	int	  drop;

	while (environ[n] != NULL)
		n++;
	for (i = 0; extra != NULL && extra[i] != NULL; i++)
		n++;
	env = hkeep(calloc(n + 1, sizeof(*env)));
	cr_assert(env != NULL);
	for (i = 0; environ[i] != NULL; i++) {
		drop = 0;
		for (j = 0; unset != NULL && unset[j] != NULL; j++) {
			len = strlen(unset[j]);
			if (strncmp(environ[i], unset[j], len) == 0 &&
			    environ[i][len] == '=')
				drop = 1;
		}
		for (j = 0; extra != NULL && extra[j] != NULL; j++) {
			len = strcspn(extra[j], "=");
			if (strncmp(environ[i], extra[j], len + 1) == 0)
				drop = 1;
		}
		if (!drop)
			env[k++] = environ[i];
	}
	for (j = 0; extra != NULL && extra[j] != NULL; j++)
		env[k++] = (char *)extra[j];
	env[k] = NULL;
	return env;
}

/* Runs argv (argv[0] looked up in PATH) to its end with stdin from
 * /dev/null and its output in two files; the environment as child_env()
 * makes it. */
static struct run
run_env(const char *const argv[], const char *const unset[],
    const char *const extra[])
{
	static int	 seq;
	struct run	 r = { -1, "", "" };
	const char	*outp, *errp;
	char		**env = child_env(unset, extra);
	pid_t		 pid;
	int		 st, fd;

	seq++;
	outp = htmp_path(hstrf("run-%d.out", seq));
	errp = htmp_path(hstrf("run-%d.err", seq));
	if ((pid = fork()) == -1)
		cr_assert_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		if ((fd = open("/dev/null", O_RDONLY)) != -1)
			dup2(fd, 0);
		if ((fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1)
			dup2(fd, 1);
		if ((fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1)
			dup2(fd, 2);
		execvpe(argv[0], (char *const *)argv, env);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return r;
	if (WIFEXITED(st))
		r.status = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		r.status = 128 + WTERMSIG(st);
	if ((r.out = slurp(outp)) == NULL)
		r.out = "";
	if ((r.err = slurp(errp)) == NULL)
		r.err = "";
	return r;
}

static struct run
run(const char *const argv[])
{
	return run_env(argv, NULL, NULL);
}

/* Whether prog is an executable in PATH. */
static int
have_program(const char *prog)
{
	const char	*path = getenv("PATH"), *s, *e;

	if (path == NULL)
		path = "/usr/bin:/bin";
	for (s = path; *s != '\0'; s = *e ? e + 1 : e) {
		e = strchrnul(s, ':');
		if (access(hstrf("%.*s/%s", (int)(e - s), s, prog), X_OK) == 0)
			return 1;
	}
	return 0;
}

/* The value of a variable in CP_BIN_DIR/CMakeCache.txt (any type), or
 * NULL when it is not there. */
static const char *
cmake_cache(const char *name)
{
	const char	*cache = slurp(CP_BIN_DIR "/CMakeCache.txt");
	const char	*p, *colon, *eq, *nl;
	size_t		 n = strlen(name);

	if (cache == NULL)
		return NULL;
	for (p = cache; *p != '\0'; p = *nl ? nl + 1 : nl) {
		nl = strchrnul(p, '\n');
		colon = memchr(p, ':', (size_t)(nl - p));
		eq = memchr(p, '=', (size_t)(nl - p));
		if (colon != NULL && eq != NULL && colon < eq &&
		    (size_t)(colon - p) == n && strncmp(p, name, n) == 0)
			return hstrf("%.*s", (int)(nl - eq - 1), eq + 1);
	}
	return NULL;
}

/* Names (harness-owned, sorted) of the entries of dir that end in one of
 * the suffixes ("" for all), NULL-ended; *count gets how many. */
static char **
list_dir(const char *dir, const char *const suffixes[], int *count)
{
	DIR		*d;
	struct dirent	*de;
	char		**v;
	size_t		 cap = 64, nl, sl;
	int		 n = 0, i, j, ok;

	v = hkeep(calloc(cap + 1, sizeof(*v)));
	cr_assert(v != NULL);
	hassert((d = opendir(dir)) != NULL, "opendir %s: %s", dir,
	    strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		nl = strlen(de->d_name);
		for (ok = 0, i = 0; suffixes[i] != NULL; i++) {
			sl = strlen(suffixes[i]);
			if (nl > sl && strcmp(de->d_name + nl - sl,
			    suffixes[i]) == 0)
				ok = 1;
		}
		if (!ok)
			continue;
		cr_assert((size_t)n < cap, "too many files in %s", dir);
		v[n++] = (char *)hstrf("%s", de->d_name);
	}
	closedir(d);
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
			char *t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	*count = n;
	return v;
}

/* Every regular file and symlink under root, as paths relative to root,
 * appended to v (n entries so far, room for cap). */
static void
walk(const char *root, const char *rel, const char **v, int *n, int cap)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 sb;
	const char	*dir = *rel ? hstrf("%s/%s", root, rel) : root;
	const char	*sub;

	hassert((d = opendir(dir)) != NULL, "opendir %s: %s", dir,
	    strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		sub = *rel ? hstrf("%s/%s", rel, de->d_name) :
		    hstrf("%s", de->d_name);
		hassert(lstat(hstrf("%s/%s", root, sub), &sb) == 0);
		if (S_ISDIR(sb.st_mode))
			walk(root, sub, v, n, cap);
		else {
			hassert(*n < cap, "more than %d files installed", cap);
			v[(*n)++] = sub;
		}
	}
	closedir(d);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One list as text, a line each, for messages. */
static const char *
list_text(const char *const *v, int n)
{
	const char	*s = "";
	int		 i;

	for (i = 0; i < n; i++)
		s = hstrf("%s  %s\n", s, v[i]);
	return s;
}

/* The ${NAME} variables that the strings of a config file name
 * (harness-owned, NULL-ended, each once): comments are skipped, as the
 * loader skips them, and so is the $${ escape. */
static const char **
config_vars(const char *text, int *count)
{
	const char	**v;
	const char	 *p, *end, *name;
	int		  n = 0, i, dup, in_string = 0;

	v = hkeep(calloc(65, sizeof(*v)));
	cr_assert(v != NULL);
	for (p = text; *p != '\0'; p++) {
		if (!in_string) {
			if (p[0] == '"')
				in_string = 1;
			else if (p[0] == '/' && p[1] == '/')
				p = strchrnul(p, '\n') - 1;
			else if (p[0] == '/' && p[1] == '*') {
				if ((end = strstr(p + 2, "*/")) == NULL)
					break;
				p = end + 1;
			}
			continue;
		}
		if (p[0] == '\\' && p[1] != '\0')
			p++;
		else if (p[0] == '"')
			in_string = 0;
		else if (p[0] == '$' && p[1] == '$' && p[2] == '{')
			p += 2;
		else if (p[0] == '$' && p[1] == '{' &&
		    (end = strchr(p + 2, '}')) != NULL) {
			name = hstrf("%.*s", (int)(end - p - 2), p + 2);
			for (dup = 0, i = 0; i < n; i++)
				if (strcmp(v[i], name) == 0)
					dup = 1;
			if (!dup && n < 64)
				v[n++] = name;
			p = end;
		}
	}
	v[n] = NULL;
	*count = n;
	return v;
}

/* ---- tests ---- */

/*
 * Installs the build tree under a fresh prefix and compares the files
 * with the list above. DESTDIR keeps even an absolute destination (a
 * build configured with CMAKE_INSTALL_SYSCONFDIR=/etc) inside the temp
 * directory.
 */
Test(install, installs_exactly_the_expected_files)
{
	const char	*cmake = cmake_cache("CMAKE_COMMAND");
	const char	*sysconf = cmake_cache("CMAKE_INSTALL_SYSCONFDIR");
	const char	*logrotate = cmake_cache("CANCELPROXY_LOGROTATEDIR");
	const char	*unitdir = cmake_cache("CANCELPROXY_SYSTEMD_UNITDIR");
	const char	*destdir = htmp_path("destdir");
	const char	*prefix = htmp_path("prefix");
	const char	*root = hstrf("%s%s", destdir, prefix);
	const char	*got[256], *want[64], *unit, *line, *bin;
	const char	*extra[] = { hstrf("DESTDIR=%s", destdir), NULL };
	struct run	 r;
	struct stat	 sb;
	int		 ngot = 0, nwant = 0, i, ok;

	hassert(cmake != NULL, "no CMAKE_COMMAND in %s/CMakeCache.txt",
	    CP_BIN_DIR);
	{
		const char *argv[] = { cmake, "--install", CP_BIN_DIR,
		    "--prefix", prefix, NULL };

		r = run_env(argv, NULL, extra);
	}
	hassert(r.status == 0, "cmake --install exited %d:\n%s%s", r.status,
	    r.out, r.err);

	/* The files under DESTDIR: the prefix's relative to it, anything
	 * else (an absolute destination) as "/path". */
	walk(destdir, "", got, &ngot, 256);
	for (i = 0; i < ngot; i++) {
		const char *full = hstrf("/%s", got[i]);

		if (strncmp(full, prefix, strlen(prefix)) == 0 &&
		    full[strlen(prefix)] == '/')
			got[i] = full + strlen(prefix) + 1;
		else
			got[i] = full;
	}
	/* Two destinations follow the build's configuration. */
	if (logrotate == NULL && sysconf != NULL && *sysconf != '\0')
		logrotate = hstrf("%s/logrotate.d", sysconf);
	for (i = 0; expected_files[i] != NULL; i++) {
		want[nwant] = expected_files[i];
		if (strcmp(want[nwant], "etc/logrotate.d/cancelproxy") == 0 &&
		    logrotate != NULL)
			want[nwant] = hstrf("%s/cancelproxy", logrotate);
		if (strcmp(want[nwant], UNIT_FILE) == 0 && unitdir != NULL)
			want[nwant] = hstrf("%s/cancelproxy.service", unitdir);
		nwant++;
	}
	qsort(got, (size_t)ngot, sizeof(*got), cmp_str);
	qsort(want, (size_t)nwant, sizeof(*want), cmp_str);
	ok = ngot == nwant;
	for (i = 0; ok && i < ngot; i++)
		ok = strcmp(got[i], want[i]) == 0;
	hassert(ok, "installed files differ\ngot:\n%swant:\n%s",
	    list_text(got, ngot), list_text(want, nwant));

	/* Programs are executable, nothing is empty. */
	for (i = 0; i < nwant; i++) {
		const char *p = want[i][0] == '/' ?
		    hstrf("%s%s", destdir, want[i]) :
		    hstrf("%s/%s", root, want[i]);

		hassert(stat(p, &sb) == 0 && sb.st_size > 0, "%s is empty",
		    p);
		if (strncmp(want[i], "bin/", 4) == 0 ||
		    strncmp(want[i], "sbin/", 5) == 0)
			hassert(access(p, X_OK) == 0, "%s is not executable",
			    p);
	}

	/* The unit runs the daemon that was installed (the prefix path, not
	 * the staging DESTDIR), for the check, the start and the reload. */
	unit = slurp(unitdir != NULL && unitdir[0] == '/' ?
	    hstrf("%s%s/cancelproxy.service", destdir, unitdir) :
	    hstrf("%s/%s/cancelproxy.service", root, unitdir != NULL ?
	    unitdir : "lib/systemd/system"));
	hassert(unit != NULL, "cannot read the installed unit");
	bin = hstrf("%s/sbin/cancelproxy", prefix);
	line = hstrf("\nExecStart=%s -c /etc/cancelproxy/cancelproxy.json\n",
	    bin);
	hassert(strstr(unit, line) != NULL, "no%sin the unit:\n%s", line,
	    unit);
	line = hstrf("\nExecStartPre=%s -t -c /etc/cancelproxy/"
	    "cancelproxy.json\n", bin);
	hassert(strstr(unit, line) != NULL, "no%sin the unit", line);
	line = hstrf("\nExecReload=%s -t -c /etc/cancelproxy/"
	    "cancelproxy.json\n", bin);
	hassert(strstr(unit, line) != NULL, "no%sin the unit", line);
	hassert(strstr(unit, "/usr/sbin/cancelproxy") == NULL,
	    "the unit still names /usr/sbin/cancelproxy:\n%s", unit);
	hassert(strstr(unit, "\nExecReload=/bin/kill -HUP $MAINPID\n") !=
	    NULL);

	/* The installed daemon runs. */
	{
		const char *argv[] = { hstrf("%s%s", destdir, bin), "-V",
		    NULL };

		r = run(argv);
	}
	hassert(r.status == 0 && strncmp(r.out, "cancelproxy ", 12) == 0,
	    "installed cancelproxy -V: exit %d: %s%s", r.status, r.out,
	    r.err);
}

/* Every man page renders with groff's warnings all on, and through man(1)
 * too when it is installed, without a single line on standard error. */
Test(install, man_pages_render_without_warnings)
{
	static const char *const suffixes[] = { ".1", ".5", ".8", NULL };
	const char	*dir = CP_SOURCE_DIR "/man";
	const char	*extra[] = { "MANWIDTH=80", "MANPAGER=cat",
			    "PAGER=cat", "MAN_DISABLE_SECCOMP=1", NULL };
	char		**pages;
	int		 npages, i, j, found, have_groff, have_man;
	struct run	 r;

	have_groff = have_program("groff");
	/* --warnings is man-db's. */
	have_man = 0;
	if (have_program("man")) {
		const char *argv[] = { "man", "--version", NULL };

		r = run(argv);
		have_man = r.status == 0 && strstr(r.out, "man ") != NULL &&
		    strstr(r.err, "mandoc") == NULL;
	}
	if (!have_groff && !have_man)
		cr_skip("neither groff nor man is installed");

	pages = list_dir(dir, suffixes, &npages);
	for (i = 0; expected_pages[i] != NULL; i++) {
		for (found = 0, j = 0; j < npages; j++)
			if (strcmp(pages[j], expected_pages[i]) == 0)
				found = 1;
		hassert(found, "man/%s is missing", expected_pages[i]);
	}
	for (i = 0; i < npages; i++) {
		const char *path = hstrf("%s/%s", dir, pages[i]);
		const char *name = hstrf("%.*s",
		    (int)(strrchr(pages[i], '.') - pages[i]), pages[i]);

		if (have_groff) {
			const char *argv[] = { "groff", "-man", "-ww", "-z",
			    path, NULL };

			r = run_env(argv, NULL, extra);
			hassert(r.status == 0 && *r.err == '\0',
			    "groff -man -ww -z %s: exit %d:\n%s", path,
			    r.status, r.err);
			/* And it says something: the NAME line. */
			{
				const char *argv2[] = { "groff", "-man",
				    "-Tutf8", "-P-bcou", path, NULL };

				r = run_env(argv2, NULL, extra);
				hassert(r.status == 0 && strstr(r.out, "NAME")
				    != NULL && strstr(r.out, name) != NULL,
				    "groff rendered no NAME for %s:\n%s%s",
				    path, r.out, r.err);
			}
		}
		if (have_man) {
			const char *argv[] = { "man", "--warnings=w", "-l",
			    "-Tutf8", path, NULL };

			r = run_env(argv, NULL, extra);
			hassert(r.status == 0 && *r.err == '\0',
			    "man --warnings=w -l -Tutf8 %s: exit %d:\n%s",
			    path, r.status, r.err);
		}
	}
}

/*
 * Every example passes `cancelproxy -t` once the variables it names are
 * set, and fails naming the first one when they are not: the keys come
 * from the environment, never from the file.
 */
Test(install, examples_pass_the_config_check)
{
	static const char *const suffixes[] = { ".json", NULL };
	const char	*dir = CP_SOURCE_DIR "/examples";
	const char	*bin = hbin_path("cancelproxy");
	const char	**vars, *text, *extra[66];
	char		**files;
	int		 nfiles, nvars, i, j, found, with_vars = 0;
	struct run	 r;

	files = list_dir(dir, suffixes, &nfiles);
	for (i = 0; expected_examples[i] != NULL; i++) {
		for (found = 0, j = 0; j < nfiles; j++)
			if (strcmp(files[j], expected_examples[i]) == 0)
				found = 1;
		hassert(found, "examples/%s is missing", expected_examples[i]);
	}
	for (i = 0; i < nfiles; i++) {
		const char *path = hstrf("%s/%s", dir, files[i]);
		const char *argv[] = { bin, "-t", "-c", path, NULL };

		hassert((text = slurp(path)) != NULL, "cannot read %s", path);
		vars = config_vars(text, &nvars);
		for (j = 0; j < nvars; j++)
			extra[j] = hstrf("%s=test-%s-value", vars[j], vars[j]);
		extra[nvars] = NULL;

		r = run_env(argv, vars, extra);
		hassert(r.status == 0 && strstr(r.err, ": ok") != NULL,
		    "cancelproxy -t -c %s (with %d variables set): exit "
		    "%d:\n%s%s", path, nvars, r.status, r.out, r.err);

		if (nvars == 0)
			continue;
		with_vars++;
		r = run_env(argv, vars, NULL);
		hassert(r.status == 1 && strstr(r.err, "is not set") != NULL,
		    "cancelproxy -t -c %s without %s: exit %d:\n%s", path,
		    vars[0], r.status, r.err);
	}
	/* The provider examples all take their key from the environment. */
	hassert(with_vars >= 5, "only %d examples name a variable", with_vars);
}
