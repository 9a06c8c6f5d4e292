/*
 * tap: the in-house unit test harness (STYLE T2). Prints TAP for
 * automake's tap-driver.sh. t_run() runs each case function, then prints
 * the plan; the exit status is 0 only if every check passed.
 */
#ifndef SG_TAP_H
#define SG_TAP_H

#include <stdbool.h>
#include <stddef.h>

struct t_case {
	const char *name;
	void (*fn)(void);
};

bool t_ok(bool cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool t_str_eq(const char *got, const char *want, const char *what);
bool t_int_eq(long long got, long long want, const char *what);
void t_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The whole file $SMTPGATE_SRCDIR/rel (SMTPGATE_SRCDIR unset: "."),
 * NUL-terminated, its size in *len_r; NULL after a t_diag line if it
 * cannot be read. The caller frees it. */
char *t_read_src(const char *rel, size_t *len_r);
int   t_run(const struct t_case *, size_t n);
/*
 * Runs fn(arg) in a child with stderr on /dev/null; the child exits with
 * what fn returns (99 if /dev/null does not open). Returns its wait status,
 * or -1 if it did not run.
 */
int t_child(int (*fn)(void *), void *arg);
#define T_RUN(cases) t_run((cases), sizeof(cases) / sizeof((cases)[0]))

#endif
