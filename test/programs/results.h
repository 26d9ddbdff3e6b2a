/*
 * Check results that a task (a thread, or a process writing into memory
 * it shares with the root) stores for another one to print later: the
 * task's struct holds a `struct results res`, tcheck(t, ...) stores into
 * it like check() prints, results_print() prints what was stored.
 *
 * The sizes may be set before including: MAX_RESULTS (per task),
 * RESULT_NAME_LEN and RESULT_DETAIL_LEN (longer text is truncated).
 */
#ifndef CRM_TEST_RESULTS_H
#define CRM_TEST_RESULTS_H

#include "common.h"

#ifndef MAX_RESULTS
#define MAX_RESULTS 64
#endif
#ifndef RESULT_NAME_LEN
#define RESULT_NAME_LEN 96
#endif
#ifndef RESULT_DETAIL_LEN
#define RESULT_DETAIL_LEN 192
#endif

struct result {
	int ok; /* 1 ok, 0 not ok, 2 a "#" note */
	char name[RESULT_NAME_LEN];
	char detail[RESULT_DETAIL_LEN];
};

struct results {
	int n;        /* stored so far (__atomic: the printer may be another process) */
	int overflow; /* a result did not fit and was dropped */
	struct result r[MAX_RESULTS];
};

/* The next free slot, or NULL (and the overflow flag set) when full. */
__attribute__((unused))
static struct result *results_slot(struct results *rs)
{
	if (rs->n < MAX_RESULTS)
		return &rs->r[rs->n];
	rs->overflow = 1;
	return NULL;
}

/* Store one check. The printf-style details are only formatted when it
 * failed. Returns ok (as check()). */
__attribute__((format(printf, 4, 5), unused))
static int results_check(struct results *rs, int ok, const char *name, const char *fmt, ...)
{
	struct result *r = results_slot(rs);
	if (!r)
		return ok;
	r->ok = ok ? 1 : 0;
	snprintf(r->name, sizeof r->name, "%s", name);
	r->detail[0] = '\0';
	if (!ok)
		VFORMAT(r->detail, fmt);
	__atomic_store_n(&rs->n, rs->n + 1, __ATOMIC_RELEASE);
	return ok;
}

/* Store a "#" line (a check that could not be made meaningfully). */
__attribute__((format(printf, 2, 3), unused))
static void results_note(struct results *rs, const char *fmt, ...)
{
	struct result *r = results_slot(rs);
	if (!r)
		return;
	r->ok = 2;
	r->name[0] = '\0';
	VFORMAT(r->detail, fmt);
	__atomic_store_n(&rs->n, rs->n + 1, __ATOMIC_RELEASE);
}

#define tcheck(t, ...) results_check(&(t)->res, __VA_ARGS__)
#define tnote(t, ...) results_note(&(t)->res, __VA_ARGS__)

/* Prints the stored results as checks named "<who>: <name>" (notes as
 * "# <who>: <text>"). Returns 1 when some were dropped. */
__attribute__((unused))
static int results_print(struct results *rs, const char *who)
{
	int n = __atomic_load_n(&rs->n, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n && i < MAX_RESULTS; i++) {
		struct result *r = &rs->r[i];
		if (r->ok == 2) {
			say("# %s: %s", who, r->detail);
			continue;
		}
		char what[RESULT_NAME_LEN + 64];
		snprintf(what, sizeof what, "%s: %s", who, r->name);
		check(r->ok, what, "%s", r->detail);
	}
	return __atomic_load_n(&rs->overflow, __ATOMIC_ACQUIRE);
}

/* As results_print(); a dropped result is one more failed check. */
__attribute__((unused))
static void results_report(struct results *rs, const char *who)
{
	if (!results_print(rs, who))
		return;
	char what[96];
	snprintf(what, sizeof what, "%s: result buffer large enough", who);
	check(0, what, "results dropped");
}

#endif
