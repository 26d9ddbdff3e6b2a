/*
 * t_precopy: memory that is written all the time, also while it is being
 * checkpointed, must come back as it was at the freeze. A pre-copy dump
 * copies the memory while the process runs and, once frozen, again only
 * the pages written since; a page it misses comes back as it was at the
 * pre-copy. Two writers keep rewriting their memory and check, page by
 * page, that what they are about to overwrite is exactly what they last
 * wrote there, so a stale page is found whenever a writer gets to it, also
 * after the restore.
 *
 * The tasks:
 *
 *   R            maps the coordination region, then (private, anonymous):
 *   |            M, 32 MiB (N pages), filled once ("the initial fill");
 *   |            S, 256 KiB, stamped once; Q, 4 MiB, untouched; a control
 *   |            page (the writer's done_gen, cursor and s_gen) and a
 *   |            scratch page. Forks C, writes its Q once, then starts its
 *   |            writer thread (SIGUSR2 blocked in it).
 *   +- C         "t_precopy-C": starts from R's pages of M and S, shared
 *                copy-on-write, writes its own Q once and runs the same
 *                writer loop in its main thread.
 *
 * The writer loop, forever until told to stop (gen = done_gen + 1, read
 * from the control page every pass):
 *   S            verify that every page holds pass s_gen's stamp (the
 *                setup's for s_gen 0), munmap S, map it again at the same
 *                address (MAP_FIXED), stamp every page with gen, s_gen = gen
 *   p = 0..N-1   1. verify page p holds what pass gen-1 left there: its
 *                   stamp of p, zeros if p was dropped in it (dropped(g, p):
 *                   (p * 7 + g) % 97 == 0), the initial fill for gen 1;
 *                   the first mismatch is recorded, all are counted
 *                2. write page p for gen: dropped(gen, p): MADV_DONTNEED,
 *                   then read one byte (the zero page: present, never
 *                   written); p % 13 == 5: through the kernel's
 *                   copy_to_user (process_vm_readv from our own scratch
 *                   page into p); p % 13 == 9: through get_user_pages
 *                   (process_vm_writev of the scratch page into p); other
 *                   pages stamped directly
 *                3. cursor = p + 1; a 25 ms nanosleep every 64 pages (a
 *                   pass takes about 3.5 s)
 *   then         done_gen = gen, cursor = 0
 * A stamp: word 0 is "pr", the tag ('I' initial, 'R' or 'C'), the region
 * (M, S, Q), gen and the page index, in plain; the other words a pattern
 * of all of them, so a stale or misplaced page is recognised (and named).
 * The kernel fills use no descriptor (crmigrate does not checkpoint pipes).
 *
 * Only R prints. The coordination region (shared) holds, per writer, a
 * mirror of gen, done_gen and cursor, the counters of the running check
 * (pages verified, mismatches, failed syscalls), the first error and the
 * results. READY is printed once both writers run.
 *
 * After the trigger (SIGUSR2 to R): R waits (at most 11 s by the clock)
 * until both writers have verified at least 2*N pages in total, counted
 * across a restore (the harness may trigger right after READY), then sets
 * "stop"; each writer stops at a page boundary and verifies, reading only:
 * all of M against (done_gen, cursor) (pages below cursor hold pass
 * done_gen+1's content, the others done_gen's, zeros where dropped), S
 * against s_gen, Q unchanged, and reports the counts, the first mismatch
 * and the running check. C then exits 0; R prints both reports, joins its
 * thread, reaps C and SIGKILLs (by PID) whatever is left.
 *
 * C polls "stop" between pages and leaves on its own when R is gone
 * (checked every 8 sleeps, counted, not timed: CLOCK_MONOTONIC may jump
 * across a migration). WORKDIR is accepted for the common protocol and not
 * used.
 */
#define MAX_RESULTS 16
#define RESULT_NAME_LEN 192
#define RESULT_DETAIL_LEN 320
#include "coord.h"

#include <pthread.h>
#include <sys/prctl.h>
#include <sys/uio.h>

#define MIB (1024UL * 1024UL)
#define M_SIZE (32 * MIB)
#define S_SIZE (256 * 1024UL)
#define Q_SIZE (4 * MIB)
#define MIN_PAGE 4096UL

#define PAGES_PER_SLEEP 64
#define SLEEP_NS (25 * MS)
#define ROOT_CHECK_SLEEPS 8 /* C: is R still there, every 8 sleeps */

#define MIN_WAIT_NS (11000 * MS) /* after the trigger: until 2*N verified */
#define STOP_TIMEOUT_NS (4000 * MS)

#define MAGIC 0x7072ULL /* "pr" */
#define STAMP_SEED 0x9ec0b1e5eedULL
enum { REG_M = 1, REG_S = 2, REG_Q = 3 };
static const char *const reg_name[] = { "?", "M", "S", "Q" };

enum { W_R, W_C, NW };
static const char *const wname[NW] = { "R", "C" };
static const char wtag[NW] = { 'R', 'C' };

#define ERR_LEN 256

/* Per writer, in the coordination region. */
struct wrec {
	pid_t pid;
	int started;  /* the loop runs */
	int stopped;  /* saw "stop", at a page boundary */
	int reported; /* the final checks are in res */
	/* mirrors of the private control page, for reporting */
	uint64_t gen, done_gen, cursor;
	/* the running check */
	uint64_t m_verified, s_verified, mismatches, sys_errors;
	int err_set, sys_err_set;
	char first_err[ERR_LEN];     /* the first mismatch of the running check */
	char first_sys_err[ERR_LEN]; /* the first failed syscall */
	/* at the trigger, for a note */
	uint64_t trig_verified, trig_gen, trig_cursor;
	struct results res;
};

struct shared {
	struct coord c;
	uint32_t stop; /* set by R: writers stop at a page boundary */
	struct wrec w[NW];
};

/* The writer's own bookkeeping: in its private memory, tested with it. */
struct ctl {
	uint64_t done_gen; /* the last complete pass */
	uint64_t cursor;   /* pages [0, cursor) already hold pass done_gen+1 */
	uint64_t s_gen;    /* the pass whose stamp S holds */
	uint64_t s_lost;   /* S could not be mapped again */
};

static struct shared *sh;
static size_t g_coord_size;
static size_t g_pg, g_pgw, g_n, g_sn, g_qn;
static char *g_m, *g_s, *g_q;
static volatile struct ctl *g_ctl;
static char *g_scratch; /* a private page the kernel fills copy from */
static pid_t g_c;       /* C as returned by fork */
static int g_w;         /* this process's writer: W_R or W_C */
static pthread_t g_thread;

/* ---- small helpers ---- */

static int root_gone(void)
{
	return !running_as(sh->c.root, NULL);
}

static char g_killed[64];

/* SIGKILL C (by PID) if it still runs, reap it; how many were running. */
static int kill_leftovers(void)
{
	int left = 0;
	g_killed[0] = '\0';
	if (g_c > 0 && waitpid(g_c, NULL, WNOHANG) == 0) {
		left++;
		snprintf(g_killed, sizeof g_killed, "C(%d)", (int)g_c);
		kill(g_c, SIGKILL);
		reap_until(g_c, &(int){ 0 }, mono_ns() + REAP_TIMEOUT_NS);
	}
	g_c = 0;
	return left;
}

#define RELAXED_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define RELAXED_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static void bump(uint64_t *counter)
{
	RELAXED_STORE(counter, RELAXED_LOAD(counter) + 1);
}

/* ---- stamps ---- */

static int dropped(uint64_t g, size_t p)
{
	return ((uint64_t)p * 7 + g) % 97 == 0;
}

/* What a page should hold: zeros, or the stamp (region, tag, gen). */
struct want {
	int zero;
	int region, tag;
	uint64_t gen;
};

static uint64_t stamp_header(int region, int tag, uint64_t gen, size_t p)
{
	return MAGIC << 48 | (uint64_t)(unsigned char)tag << 40 | (uint64_t)region << 36 |
	       (gen & 0xfffffULL) << 16 | ((uint64_t)p & 0xffffULL);
}

static uint64_t stamp_seed(int region, int tag, uint64_t gen, size_t p)
{
	uint64_t s = pattern64(STAMP_SEED ^ (uint64_t)(unsigned char)tag << 8 ^ (uint64_t)region, gen);
	return pattern64(s, p);
}

static void stamp_page(char *page, int region, int tag, uint64_t gen, size_t p)
{
	uint64_t *w = (uint64_t *)page;
	uint64_t seed = stamp_seed(region, tag, gen, p);
	w[0] = stamp_header(region, tag, gen, p);
	for (size_t i = 1; i < g_pgw; i++)
		w[i] = pattern64(seed, i);
}

/* The first word of page (index p) that differs from want, or -1. */
static long page_bad(const char *page, const struct want *want, size_t p)
{
	const uint64_t *w = (const uint64_t *)page;
	if (want->zero) {
		for (size_t i = 0; i < g_pgw; i++)
			if (w[i])
				return (long)i;
		return -1;
	}
	if (w[0] != stamp_header(want->region, want->tag, want->gen, p))
		return 0;
	uint64_t seed = stamp_seed(want->region, want->tag, want->gen, p);
	for (size_t i = 1; i < g_pgw; i++)
		if (w[i] != pattern64(seed, i))
			return (long)i;
	return -1;
}

/* M's page p after pass g. */
static struct want want_m(uint64_t g, size_t p)
{
	struct want w = { 0, REG_M, 'I', 0 };
	if (g == 0)
		return w;
	w.gen = g;
	w.tag = wtag[g_w];
	w.zero = dropped(g, p);
	return w;
}

/* S after pass s_gen stamped it (0: the setup). */
static struct want want_s(uint64_t s_gen)
{
	struct want w = { 0, REG_S, s_gen ? wtag[g_w] : 'I', s_gen };
	return w;
}

static struct want want_q(void)
{
	struct want w = { 0, REG_Q, wtag[g_w], 0 };
	return w;
}

static void describe_want(char *buf, size_t size, const struct want *w)
{
	if (w->zero)
		snprintf(buf, size, "zeros (dropped in pass %llu)", (unsigned long long)w->gen);
	else if (w->region == REG_Q)
		snprintf(buf, size, "the stamp written once before READY");
	else if (w->tag == 'I')
		snprintf(buf, size, "the setup's stamp (pass 0)");
	else
		snprintf(buf, size, "pass %llu's stamp", (unsigned long long)w->gen);
}

/* What a page holds, in words: zeros, a stamp (decoded), or garbage. */
static void describe_page(char *buf, size_t size, const char *page, long bad)
{
	const uint64_t *w = (const uint64_t *)page;
	int zero = 1;
	for (size_t i = 0; i < g_pgw && zero; i++)
		zero = w[i] == 0;
	if (zero) {
		snprintf(buf, size, "zeros");
		return;
	}
	if (w[0] >> 48 == MAGIC) {
		int tag = (int)(w[0] >> 40 & 0xff), region = (int)(w[0] >> 36 & 0xf);
		uint64_t gen = w[0] >> 16 & 0xfffff;
		size_t p = (size_t)(w[0] & 0xffff);
		struct want as = { 0, region, tag, gen };
		long b = page_bad(page, &as, p);
		snprintf(buf, size, "%s stamp of %s page %zu, pass %llu, tag '%c'%s",
			 b < 0 ? "the" : "a damaged", region <= REG_Q ? reg_name[region] : "?", p,
			 (unsigned long long)gen, tag >= 32 && tag < 127 ? tag : '?',
			 b < 0 ? "" : " (other words differ)");
		return;
	}
	snprintf(buf, size, "garbage (word 0 %#llx, first wrong word %ld)", (unsigned long long)w[0],
		 bad);
}

/* "expected X, holds Y" for a page that failed page_bad(). */
static void describe_mismatch(char *buf, size_t size, const char *page, const struct want *want,
			      long bad)
{
	char e[96], h[160];
	describe_want(e, sizeof e, want);
	describe_page(h, sizeof h, page, bad);
	snprintf(buf, size, "expected %s, holds %s", e, h);
}

/* ---- the writer ---- */

static void record_mismatch(struct wrec *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void record_mismatch(struct wrec *w, const char *fmt, ...)
{
	bump(&w->mismatches);
	if (w->err_set)
		return;
	VFORMAT(w->first_err, fmt);
	STORE(&w->err_set, 1);
}

static void record_sys_error(struct wrec *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void record_sys_error(struct wrec *w, const char *fmt, ...)
{
	int e = errno;
	bump(&w->sys_errors);
	if (w->sys_err_set)
		return;
	char msg[160];
	VFORMAT(msg, fmt);
	snprintf(w->first_sys_err, sizeof w->first_sys_err, "%s: %s", msg, strerror(e));
	STORE(&w->sys_err_set, 1);
}

/* Start of pass gen: verify S (pass s_gen), map it again, stamp it. */
static void churn_s(struct wrec *w, uint64_t gen)
{
	if (g_ctl->s_lost)
		return;
	struct want want = want_s(g_ctl->s_gen);
	for (size_t i = 0; i < g_sn; i++) {
		const char *page = g_s + i * g_pg;
		long b = page_bad(page, &want, i);
		bump(&w->s_verified);
		if (b >= 0) {
			char how[300];
			describe_mismatch(how, sizeof how, page, &want, b);
			record_mismatch(w, "S page %zu at the start of pass %llu: %s", i,
					(unsigned long long)gen, how);
		}
	}
	if (munmap(g_s, S_SIZE) != 0)
		record_sys_error(w, "pass %llu: munmap S", (unsigned long long)gen);
	void *p = mmap(g_s, S_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		       -1, 0);
	if (p != g_s) {
		record_sys_error(w, "pass %llu: mmap S again at %p (got %p)", (unsigned long long)gen,
				 (void *)g_s, p);
		g_ctl->s_lost = 1;
		return;
	}
	for (size_t i = 0; i < g_sn; i++)
		stamp_page(g_s + i * g_pg, REG_S, wtag[g_w], gen, i);
	g_ctl->s_gen = gen;
}

/* Page p of M gets pass gen's content. */
static void write_page(struct wrec *w, uint64_t gen, size_t p)
{
	char *page = g_m + p * g_pg;
	if (dropped(gen, p)) {
		if (madvise(page, g_pg, MADV_DONTNEED) != 0) {
			record_sys_error(w, "pass %llu page %zu: madvise(MADV_DONTNEED)",
					 (unsigned long long)gen, p);
			memset(page, 0, g_pg);
		}
		(void)*(volatile char *)page; /* the zero page: present, never written */
		return;
	}
	if (p % 13 == 5 || p % 13 == 9) {
		stamp_page(g_scratch, REG_M, wtag[g_w], gen, p);
		struct iovec local = { page, g_pg }, remote = { g_scratch, g_pg };
		ssize_t n;
		const char *how;
		if (p % 13 == 5) {
			/* copy_to_user into page (the local side) */
			how = "process_vm_readv";
			n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
		} else {
			/* get_user_pages on page (the remote side), write */
			how = "process_vm_writev";
			local.iov_base = g_scratch;
			remote.iov_base = page;
			n = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
		}
		if (n == (ssize_t)g_pg)
			return;
		if (n >= 0)
			errno = EIO;
		record_sys_error(w, "pass %llu page %zu: %s returned %zd", (unsigned long long)gen, p, how,
				 n);
	}
	stamp_page(page, REG_M, wtag[g_w], gen, p);
}

/* Writes forever until "stop" (seen at a page boundary). */
static void writer_loop(struct wrec *w)
{
	uint64_t sleeps = 0;
	for (;;) {
		if (LOAD(&sh->stop))
			return;
		uint64_t gen = g_ctl->done_gen + 1;
		RELAXED_STORE(&w->gen, gen);
		churn_s(w, gen);
		for (size_t p = 0; p < g_n; p++) {
			if (LOAD(&sh->stop))
				return;
			char *page = g_m + p * g_pg;
			struct want want = want_m(gen - 1, p);
			long b = page_bad(page, &want, p);
			bump(&w->m_verified);
			if (b >= 0) {
				char how[300];
				describe_mismatch(how, sizeof how, page, &want, b);
				record_mismatch(w, "pass %llu, page %zu: %s", (unsigned long long)gen, p,
						how);
			}
			write_page(w, gen, p);
			g_ctl->cursor = p + 1;
			RELAXED_STORE(&w->cursor, (uint64_t)p + 1);
			if ((p + 1) % PAGES_PER_SLEEP == 0) {
				sleep_ns(SLEEP_NS);
				sleeps++;
				if (!g_is_root && sleeps % ROOT_CHECK_SLEEPS == 0) {
					if (LOAD(&sh->c.abort))
						_exit(EXIT_ABORT);
					if (root_gone())
						_exit(EXIT_ORPHAN);
				}
			}
		}
		g_ctl->done_gen = gen;
		g_ctl->cursor = 0;
		RELAXED_STORE(&w->done_gen, gen);
		RELAXED_STORE(&w->cursor, (uint64_t)0);
	}
}

/* After the stop: page p at page against want, counted in *nbad; the first
 * mismatch is described in how. */
static void count_bad(const char *page, const struct want *want, size_t p, size_t *nbad, char *how, size_t how_size)
{
	long b = page_bad(page, want, p);
	if (b >= 0 && (*nbad)++ == 0) {
		char d[300];
		describe_mismatch(d, sizeof d, page, want, b);
		snprintf(how, how_size, "page %zu: %s", p, d);
	}
}

/* After the stop: all of M, S and Q, reading only; then the running check. */
static void final_checks(struct wrec *w)
{
	uint64_t dg = g_ctl->done_gen, cur = g_ctl->cursor;
	char name[RESULT_NAME_LEN], how[336] = "";
	tnote(w, "stopped in pass %llu at page %llu of %zu (done_gen %llu, cursor %llu)",
	      (unsigned long long)(dg + 1), (unsigned long long)cur, g_n, (unsigned long long)dg,
	      (unsigned long long)cur);

	/* M */
	size_t nbad = 0;
	for (size_t p = 0; p < g_n; p++) {
		struct want want = want_m(p < cur ? dg + 1 : dg, p);
		count_bad(g_m + p * g_pg, &want, p, &nbad, how, sizeof how);
	}
	if (cur)
		snprintf(name, sizeof name,
			 "M after the stop: %zu pages verified (pages < %llu: pass %llu's content, "
			 "the rest pass %llu's; zeros where dropped)",
			 g_n, (unsigned long long)cur, (unsigned long long)(dg + 1),
			 (unsigned long long)dg);
	else
		snprintf(name, sizeof name,
			 "M after the stop: %zu pages verified (all pass %llu's content; zeros where "
			 "dropped)",
			 g_n, (unsigned long long)dg);
	tcheck(w, nbad == 0, name, "%zu of %zu pages wrong; first: %s", nbad, g_n, how);

	/* S */
	if (g_ctl->s_lost) {
		tcheck(w, 0, "S after the stop: mapped", "S could not be mapped again: %s",
		       w->first_sys_err);
	} else {
		struct want want = want_s(g_ctl->s_gen);
		nbad = 0;
		for (size_t i = 0; i < g_sn; i++)
			count_bad(g_s + i * g_pg, &want, i, &nbad, how, sizeof how);
		snprintf(name, sizeof name,
			 "S after the stop: %zu pages verified (pass %llu's stamp, mapped again at "
			 "the start of that pass)",
			 g_sn, (unsigned long long)g_ctl->s_gen);
		tcheck(w, nbad == 0, name, "%zu of %zu pages wrong; first: %s", nbad, g_sn, how);
	}

	/* Q */
	{
		struct want want = want_q();
		nbad = 0;
		for (size_t i = 0; i < g_qn; i++)
			count_bad(g_q + i * g_pg, &want, i, &nbad, how, sizeof how);
		snprintf(name, sizeof name,
			 "Q after the stop: %zu pages verified (unchanged since written once before "
			 "READY)",
			 g_qn);
		tcheck(w, nbad == 0, name, "%zu of %zu pages wrong; first: %s", nbad, g_qn, how);
	}

	/* The running check. */
	uint64_t mv = RELAXED_LOAD(&w->m_verified), sv = RELAXED_LOAD(&w->s_verified);
	uint64_t mm = RELAXED_LOAD(&w->mismatches), se = RELAXED_LOAD(&w->sys_errors);
	snprintf(name, sizeof name,
		 "running check while writing: %llu pages of M and %llu of S verified, no mismatch",
		 (unsigned long long)mv, (unsigned long long)sv);
	tcheck(w, mm == 0, name, "%llu mismatches; first: %s", (unsigned long long)mm,
	       w->err_set ? w->first_err : "(not recorded)");
	snprintf(name, sizeof name, "verified at least 2*N = %zu pages of M in total (%llu)",
		 2 * g_n, (unsigned long long)mv);
	tcheck(w, mv >= 2 * g_n, name, "only %llu pages verified (pass %llu, page %llu)",
	       (unsigned long long)mv, (unsigned long long)(dg + 1), (unsigned long long)cur);
	tcheck(w, se == 0, "no failed syscall while writing (madvise, process_vm_readv/writev, "
			   "munmap/mmap of S)",
	       "%llu failed; first: %s", (unsigned long long)se,
	       w->sys_err_set ? w->first_sys_err : "(not recorded)");
}

/* The writer: run until stopped, then check everything and report. */
static void writer_run(struct wrec *w)
{
	writer_loop(w);
	STORE(&w->stopped, 1);
	final_checks(w);
	STORE(&w->reported, 1);
}

static void *writer_thread(void *arg)
{
	prctl(PR_SET_NAME, "t_precopy-wR", 0, 0, 0);
	writer_run(arg);
	return NULL;
}

/* Q: written once, never again. */
static void fill_q(void)
{
	for (size_t i = 0; i < g_qn; i++)
		stamp_page(g_q + i * g_pg, REG_Q, wtag[g_w], 0, i);
}

/* ---- C ---- */

__attribute__((noreturn))
static void run_c(void)
{
	g_is_root = 0;
	g_self = "C";
	g_w = W_C;
	prctl(PR_SET_NAME, "t_precopy-C", 0, 0, 0);
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &m, NULL) != 0)
		cfail("sigprocmask");
	struct wrec *w = &sh->w[W_C];
	w->pid = getpid();
	fill_q();
	STORE(&w->started, 1);
	writer_run(w);
	_exit(EXIT_OK);
}

/* ---- R ---- */

static void setup_memory(void)
{
	g_m = map_anon(M_SIZE, MAP_PRIVATE);
	g_s = map_anon(S_SIZE, MAP_PRIVATE);
	g_q = map_anon(Q_SIZE, MAP_PRIVATE);
	void *c = map_anon(g_pg, MAP_PRIVATE);
	g_scratch = map_anon(g_pg, MAP_PRIVATE);
	if (!g_m || !g_s || !g_q || !c || !g_scratch)
		die("mmap M, S, Q and the control pages (private anonymous)");
	g_ctl = c;
	/* The initial fill, shared with C copy-on-write. */
	for (size_t p = 0; p < g_n; p++)
		stamp_page(g_m + p * g_pg, REG_M, 'I', 0, p);
	for (size_t i = 0; i < g_sn; i++)
		stamp_page(g_s + i * g_pg, REG_S, 'I', 0, i);
	g_ctl->done_gen = 0;
	g_ctl->cursor = 0;
	g_ctl->s_gen = 0;
	g_ctl->s_lost = 0;
}

/* Total of M pages verified by writer i. */
static uint64_t verified(int i)
{
	return RELAXED_LOAD(&sh->w[i].m_verified);
}

/* Writer i can still make progress (R's thread: has not reported yet). */
static int writer_alive(int i)
{
	if (i == W_C)
		return running_as(sh->w[W_C].pid ? sh->w[W_C].pid : g_c, NULL);
	return !LOAD(&sh->w[W_R].reported);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: %s WORKDIR", argv[0]);
	g_pg = (size_t)sysconf(_SC_PAGESIZE);
	if (g_pg < MIN_PAGE || M_SIZE % g_pg || S_SIZE % g_pg || Q_SIZE % g_pg)
		die("page size %zu not supported", g_pg);
	g_pgw = g_pg / sizeof(uint64_t);
	g_n = M_SIZE / g_pg;
	g_sn = S_SIZE / g_pg;
	g_qn = Q_SIZE / g_pg;

	g_coord_size = sizeof *sh;
	sh = coord_map(&g_coord_size);
	if (set_handler(SIGCHLD, SIG_DFL) != 0)
		die("sigaction(SIGCHLD)");
	install_trigger();
	setup_memory();

	g_c = fork();
	if (g_c < 0)
		setup_fail("fork C: %s", strerror(errno));
	if (g_c == 0)
		run_c();

	/* R's own writer: Q once, then the thread (SIGUSR2 blocked in it). */
	g_w = W_R;
	sh->w[W_R].pid = getpid();
	fill_q();
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	if (pthread_sigmask(SIG_BLOCK, &block, &old) != 0)
		setup_fail("pthread_sigmask");
	STORE(&sh->w[W_R].started, 1);
	int rc = pthread_create(&g_thread, NULL, writer_thread, &sh->w[W_R]);
	if (rc != 0)
		setup_fail("pthread_create: %s", strerror(rc));
	if (pthread_sigmask(SIG_SETMASK, &old, NULL) != 0)
		setup_fail("pthread_sigmask");

	rc = wait_flag(&sh->w[W_C].started, mono_ns() + SETUP_TIMEOUT_NS);
	if (rc < 0)
		setup_fail("C gave up");
	if (rc == 0)
		setup_fail("C did not start writing");

	ready();
	poll_trigger();
	uint64_t t0 = mono_ns();
	for (int i = 0; i < NW; i++) {
		struct wrec *w = &sh->w[i];
		w->trig_verified = verified(i);
		w->trig_gen = RELAXED_LOAD(&w->gen);
		w->trig_cursor = RELAXED_LOAD(&w->cursor);
	}

	/* Both writers verify at least 2*N pages in total before the stop. */
	for (int n = 0;; n++) {
		int enough = 1;
		for (int i = 0; i < NW; i++)
			if (verified(i) < 2 * g_n && (n % 10 || writer_alive(i)))
				enough = 0;
		if (enough || mono_ns() >= t0 + MIN_WAIT_NS)
			break;
		sleep_ns(10 * MS);
	}
	uint64_t t1 = mono_ns();
	STORE(&sh->stop, 1);
	uint64_t deadline = mono_ns() + STOP_TIMEOUT_NS;
	wait_flag(&sh->w[W_R].reported, deadline);
	wait_task(&sh->w[W_C].reported, deadline, sh->w[W_C].pid ? sh->w[W_C].pid : g_c, NULL);

	say("# at the trigger: R in pass %llu at page %llu (%llu pages verified), C in pass %llu "
	    "at page %llu (%llu); stopped %.1f s after it",
	    (unsigned long long)sh->w[W_R].trig_gen, (unsigned long long)sh->w[W_R].trig_cursor,
	    (unsigned long long)sh->w[W_R].trig_verified, (unsigned long long)sh->w[W_C].trig_gen,
	    (unsigned long long)sh->w[W_C].trig_cursor, (unsigned long long)sh->w[W_C].trig_verified,
	    (double)(t1 - t0) / 1e9);
	for (int i = 0; i < NW; i++) {
		struct wrec *w = &sh->w[i];
		results_report(&w->res, wname[i]);
		if (!LOAD(&w->reported)) {
			char what[64];
			snprintf(what, sizeof what, "%s: reported after the stop", wname[i]);
			check(0, what,
			      "no report (the writer is gone, or silent for %llu s after the stop; "
			      "%s, pass %llu, page %llu, %llu pages verified, %llu mismatches)",
			      (unsigned long long)(STOP_TIMEOUT_NS / 1000000000ULL),
			      LOAD(&w->stopped) ? "it saw the stop" : "it never saw the stop",
			      (unsigned long long)RELAXED_LOAD(&w->gen),
			      (unsigned long long)RELAXED_LOAD(&w->cursor),
			      (unsigned long long)verified(i),
			      (unsigned long long)RELAXED_LOAD(&w->mismatches));
			if (LOAD(&w->err_set))
				say("# %s: first mismatch of the running check: %s", wname[i],
				    w->first_err);
		}
	}

	if (LOAD(&sh->w[W_R].reported)) {
		rc = pthread_join(g_thread, NULL);
		check(rc == 0, "R: writer thread joined", "%s", strerror(rc));
	}
	check_reaped(&g_c, "R: C exited 0 and was reaped");
	check_nothing_left(g_killed);
	finish();
}
