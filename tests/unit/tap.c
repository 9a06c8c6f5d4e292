#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

static int	   t_count, t_failed;
static const char *t_current = "";

bool
t_ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	t_count++;
	if (!cond)
		t_failed++;
	printf("%s %d - %s: ", cond ? "ok" : "not ok", t_count, t_current);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

void
t_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

char *
t_read_src(const char *rel, size_t *len_r)
{
	const char *src = getenv("SMTPGATE_SRCDIR");
	char	    path[4096], *data = NULL;
	FILE	   *fp;
	long	    n;

	(void)snprintf(path, sizeof(path), "%s/%s", src ? src : ".", rel);
	if ((fp = fopen(path, "rb")) == NULL || fseek(fp, 0, SEEK_END) != 0 ||
	    (n = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0 ||
	    (data = malloc((size_t)n + 1)) == NULL ||
	    fread(data, 1, (size_t)n, fp) != (size_t)n) {
		t_diag("cannot read %s", path);
		free(data);
		if (fp != NULL)
			(void)fclose(fp);
		return NULL;
	}
	(void)fclose(fp);
	data[n] = '\0';
	*len_r = (size_t)n;
	return data;
}

bool
t_str_eq(const char *got, const char *want, const char *what)
{
	bool eq = (got == NULL && want == NULL) ||
	    (got != NULL && want != NULL && strcmp(got, want) == 0);

	if (!t_ok(eq, "%s", what))
		t_diag("got \"%s\", want \"%s\"", got ? got : "(null)",
		    want ? want : "(null)");
	return eq;
}

bool
t_int_eq(long long got, long long want, const char *what)
{
	if (!t_ok(got == want, "%s", what)) {
		t_diag("got %lld, want %lld", got, want);
		return false;
	}
	return true;
}

int
t_child(int (*fn)(void *), void *arg)
{
	pid_t pid;
	int   st;

	fflush(stdout);
	if ((pid = fork()) == 0) {
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(99);
		_exit(fn(arg));
	}
	if (pid == -1 || waitpid(pid, &st, 0) != pid)
		return -1;
	return st;
}

int
t_run(const struct t_case *cases, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		t_current = cases[i].name;
		cases[i].fn();
	}
	printf("1..%d\n", t_count);
	return t_failed == 0 ? 0 : 1;
}
