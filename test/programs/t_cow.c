/*
 * t_cow: private pages that a fork left shared copy-on-write must be
 * stored once and come back shared after checkpoint/restore (the same
 * physical page in every task that shared it), with every task still
 * seeing its own contents, and copy-on-write must still work afterwards.
 *
 * The tree (names are also the tasks' comm, "t_cow-X"; R keeps its own):
 *
 *   R            before any fork: maps M, 16 MiB MAP_PRIVATE|MAP_ANONYMOUS
 *   |            (N pages, N = 4096 with 4 KiB pages) and writes pattern
 *   |            'P' into every page; mallocs a 1 MiB heap buffer and fills
 *   |            it with 'H'; maps its own executable (/proc/self/exe, the
 *   |            whole file rounded down to whole pages, at least one)
 *   |            MAP_PRIVATE PROT_READ|PROT_WRITE and writes a 64-byte
 *   |            marker at the start of page 0 (which so becomes an
 *   |            anonymous copy-on-write copy of the file page)
 *   +- A         writes 'A' into pages [0, N/4) of M, MADV_DONTNEED on
 *      |         pages [N/4, N/4+16), then forks A1
 *      +- A1     writes 'a' into pages [N-8, N) of M
 *
 * Once A1 exists, R writes 'R' into pages [N/4+16, N/2) of M: R gets its
 * own copies there, A keeps the old 'P' pages (shared with A1). Nobody
 * writes pages [N/2, N-8) of M, the heap buffer or the executable mapping
 * after the forks: R, A and A1 share them. Every page holds a pattern made
 * of its tag and its index (word 0 says "COW", the tag and the index in
 * plain), so a page from a wrong place is recognised as such.
 *
 * All coordination goes through one MAP_SHARED|MAP_ANONYMOUS region
 * created by R before the first fork (flags, futex words, the recorded
 * addresses and each task's results); only R writes to stdout. A waits for
 * "go" in FUTEX_WAIT with a 40 ms timeout, A1 in 20 ms nanosleeps, both
 * bounded by counting their steps (10 minutes; CLOCK_MONOTONIC may jump
 * across a migration) and leaving when R is gone; R polls its SIGUSR2 flag
 * in 20 ms nanosleeps. READY is printed once all writes are done and A and
 * A1 sit in their wait (/proc/PID/stat state S).
 *
 * After the trigger (SIGUSR2 to R only), in this order:
 *  1. R checks itself and looks at A and A1 from outside (state S, parent,
 *     comm), then sets "go"; every task checks itself, reading only:
 *       getpid, getppid (A: R, A1: A), /proc/self/stat ppid, comm; the
 *       coordination region at the same address and size, rw-s;
 *       M: mapped at the recorded address, whole, rw-p, anonymous; the
 *       contents of every page:
 *         R   [0,N/4) P, [N/4,N/4+16) P, [N/4+16,N/2) R, [N/2,N) P
 *         A   [0,N/4) A, [N/4,N/4+16) zero, [N/4+16,N/2) P, [N/2,N) P
 *         A1  as A, but [N-8,N) a
 *       the heap buffer at the recorded address, rw-p, holding 'H'; the
 *       executable mapping at the recorded address and size, rw-p, named
 *       after the executable, the marker in its first 64 bytes and the
 *       file's own bytes in the rest of page 0.
 *  2. Once A and A1 reported, R reads /proc/PID/pagemap of R, A and A1
 *     (present bit 63, PFN bits 0-54; PFNs need CAP_SYS_ADMIN: a present
 *     page with PFN 0 is a failure saying they are not visible) and checks,
 *     counting the pages in "#" lines and naming the first mismatch:
 *       M [N/2,N-8)        present, the same PFN in R, A and A1
 *       M [0,N/4)          the same PFN in A and A1, not R's
 *       M [N/4+16,N/2)     the same PFN in A and A1, not R's
 *       M [N-8,N)          A1's PFN not A's; R and A share theirs
 *       heap buffer        every whole page inside it: the same PFN in all
 *       executable page 0  the same PFN in all, an anonymous page (bit 61
 *                          clear)
 *     No task writes anything before this check is done.
 *  3. Copy-on-write still works: A1 writes a token into page N/2 of M and
 *     reads it back (the rest of the page still 'P'); R and A still read
 *     'P' there, and R sees (pagemap) R and A still sharing that page,
 *     A1's its own. Then R writes a token into page N/2+1; A and A1 still
 *     read 'P' there, A and A1 still share it, R's is its own.
 * Then R sets "leave": A reaps A1 (exit 0, then ECHILD); R prints the
 * results in a fixed order (R, A, A1; "not ok - X: did not report" for a
 * silent task), reaps A and SIGKILLs by PID whatever of the tree is still
 * alive. Waits after the trigger use the clock; the verdict comes within
 * about 15 s even when the children never answer.
 *
 * WORKDIR is accepted for the common protocol and not used. Must run as
 * root (CAP_SYS_ADMIN) for the PFNs in pagemap.
 */
#define MAX_RESULTS 64
#define RESULT_NAME_LEN 96
#define RESULT_DETAIL_LEN 192
#include "coord.h"

#include <sys/prctl.h>
#include <sys/stat.h>

#define STEP_TIMEOUT_NS (4000 * MS) /* one handshake after the trigger */
#define LEAVE_TIMEOUT_NS (15000 * MS)
#define CHILD_REAP_TIMEOUT_NS (3000 * MS) /* A reaping A1 */
#define FINISH_TIMEOUT_NS (4500 * MS)     /* R waiting for that, longer */

#define MIB (1024UL * 1024UL)
#define M_SIZE (16 * MIB)
#define HEAP_SIZE (1 * MIB)
#define MIN_PAGE 4096UL
#define MAX_M_PAGES (M_SIZE / MIN_PAGE)
#define MAX_HEAP_PAGES (HEAP_SIZE / MIN_PAGE)
#define DONTNEED_PAGES 16
#define A1_PAGES 8 /* the last pages of M, written by A1 */
#define MARKER_LEN 64

#define PAGE_SEED 0xc0ffee5eedULL
#define MARKER_SEED 0x3a7e4e3ULL
#define TOKEN_SEED 0x70ce17ULL

/* pagemap entries */
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61) /* file page or shared anonymous */
#define PM_PFN_MASK ((1ULL << 55) - 1)

#define EXIT_NOLEAVE 6 /* a child's exit code: "leave" never came */

enum { T_R, T_A, T_A1, NT };
static const char *const tname[NT] = { "R", "A", "A1" };
static const char *const tcomm[NT] = { "", "t_cow-A", "t_cow-A1" };

struct task {
	/* recorded by the task itself during setup */
	pid_t pid, ppid;
	char comm[32];
	int recorded;
	/* handshake with R (__atomic) */
	int waiting;  /* about to enter the wait for "go" */
	int checked;  /* read-only checks after "go" written */
	int done;     /* all checks written */
	int finished; /* A: A1 reaped, results complete */
	struct results res; /* printed by R */
};

struct shared {
	struct coord c; /* go, abort, R's PID, setup error */
	uint32_t leave; /* futex word: set by R when the reports are in */
	struct task t[NT];
	pid_t a1_fork; /* A1 as A's fork returned it */
	/* recorded by R before the first fork */
	uint64_t m_addr, heap_addr, exe_addr, exe_len;
	char exe_path[PATH_MAX];
	/* the copy-on-write phase */
	int cow;      /* R: sharing checked, A1 may write */
	int a1_wrote; /* A1 wrote tok_a1 into page N/2 */
	int a_read;   /* A read page N/2 after A1's write */
	int r_wrote;  /* R wrote tok_r into page N/2+1 */
	uint64_t tok_a1, tok_r;
};

static struct shared *sh;
static size_t g_coord_size;
static size_t g_pg;         /* page size */
static size_t g_n;          /* pages in M */
static size_t g_pgw;        /* 64-bit words in a page */
static char *g_m;           /* M */
static char *g_heap;        /* the 1 MiB heap buffer */
static char *g_exe;         /* the private mapping of the executable */
static pid_t g_a;           /* A as returned by fork */

/* ---- small helpers ---- */

/* R is gone (or a zombie): a waiting child must not wait forever. */
static int root_gone(void)
{
	return !running_as(sh->c.root, NULL);
}

static uint64_t fresh_token(void)
{
	return pattern64(TOKEN_SEED ^ mono_ns(), (uint64_t)getpid()) | 1;
}

/* ---- page patterns ---- */

/* Word 0 of a page: "COW", the tag and the page index, in plain. */
static uint64_t page_header(int tag, size_t idx)
{
	return 0x434f57ULL << 40 | (uint64_t)(unsigned char)tag << 32 | (uint32_t)idx;
}

static uint64_t page_word(int tag, size_t idx, size_t w)
{
	if (w == 0)
		return page_header(tag, idx);
	return pattern64(PAGE_SEED ^ (uint64_t)(unsigned char)tag << 48 ^ (uint64_t)idx, w);
}

/* Page idx of a region gets pattern tag. */
static void page_fill(char *page, int tag, size_t idx)
{
	uint64_t *p = (uint64_t *)page;
	for (size_t w = 0; w < g_pgw; w++)
		p[w] = page_word(tag, idx, w);
}

static void fill_pages(char *base, size_t from, size_t to, int tag)
{
	for (size_t i = from; i < to; i++)
		page_fill(base + i * g_pg, tag, i);
}

/* The first word from `first` on that differs from pattern tag (0: all
 * zero) of page idx, or -1. */
static long page_bad(const char *page, int tag, size_t idx, size_t first)
{
	const uint64_t *p = (const uint64_t *)page;
	for (size_t w = first; w < g_pgw; w++)
		if (p[w] != (tag ? page_word(tag, idx, w) : 0))
			return (long)w;
	return -1;
}

/* What a page that failed page_bad() at word w holds, in words. */
static void describe_bad(char *buf, size_t size, const char *page, int tag, size_t idx, long w)
{
	const uint64_t *p = (const uint64_t *)page;
	uint64_t want = tag ? page_word(tag, idx, (size_t)w) : 0;
	int all_zero = 1;
	for (size_t i = 0; i < g_pgw && all_zero; i++)
		all_zero = p[i] == 0;
	if (all_zero) {
		snprintf(buf, size, "the page is all zero");
	} else if (p[0] >> 40 == 0x434f57ULL && p[0] != page_header(tag, idx)) {
		int t = (int)(p[0] >> 32 & 0xff);
		snprintf(buf, size, "the page holds '%c' of page %u", t >= 32 && t < 127 ? t : '?',
			 (unsigned)(uint32_t)p[0]);
	} else {
		snprintf(buf, size, "word %ld is %#llx, expected %#llx", w,
			 (unsigned long long)p[w], (unsigned long long)want);
	}
}

/* Every page [from, to) of region base (pages indexed from 0 at base)
 * holds pattern tag (0: all zero). */
static void check_pages(struct task *t, const char *region, char *base, size_t from, size_t to,
			int tag)
{
	char name[RESULT_NAME_LEN];
	if (tag)
		snprintf(name, sizeof name, "%s pages [%zu,%zu) hold '%c'", region, from, to, tag);
	else
		snprintf(name, sizeof name, "%s pages [%zu,%zu) all zero (MADV_DONTNEED)", region, from,
			 to);
	size_t nbad = 0, first = 0;
	long w = -1;
	for (size_t i = from; i < to; i++) {
		long b = page_bad(base + i * g_pg, tag, i, 0);
		if (b >= 0 && nbad++ == 0) {
			first = i;
			w = b;
		}
	}
	char how[160] = "";
	if (nbad)
		describe_bad(how, sizeof how, base + first * g_pg, tag, first, w);
	tcheck(t, nbad == 0, name, "%zu of %zu pages wrong; first: page %zu: %s", nbad, to - from,
	       first, how);
}

/* ---- setup of the children ---- */

/* First thing in every child: its name. */
static void child_enter(int idx)
{
	g_is_root = 0;
	g_self = tname[idx];
	prctl(PR_SET_NAME, tcomm[idx], 0, 0, 0);
}

/* Record the task's own IDs and name. */
static void record_self(int idx)
{
	struct task *t = &sh->t[idx];
	t->pid = getpid();
	t->ppid = getppid();
	char comm[32] = "";
	read_line("/proc/self/comm", comm, sizeof comm);
	snprintf(t->comm, sizeof t->comm, "%s", comm);
	STORE(&t->recorded, 1);
}

/* ---- checks every task makes on itself after "go" (reading only) ---- */

static void check_identity(int idx)
{
	struct task *t = &sh->t[idx];
	pid_t v = getpid();
	tcheck(t, v == t->pid, "getpid() unchanged", "recorded %d, got %d", t->pid, v);
	if (idx != T_R) {
		v = getppid();
		tcheck(t, v == t->ppid, "getppid() unchanged", "recorded %d, got %d", t->ppid, v);
		struct pstat ps;
		int rc = read_stat(0, 0, &ps);
		tcheck(t, rc == 0 && ps.ppid == t->ppid, "/proc/self/stat ppid agrees",
		       "read rc %d, ppid %d, recorded %d", rc, rc ? 0 : ps.ppid, t->ppid);
	}
	char comm[32] = "";
	read_line("/proc/self/comm", comm, sizeof comm);
	tcheck(t, strcmp(comm, t->comm) == 0, "name (/proc/self/comm) unchanged",
	       "recorded '%s', got '%s'", t->comm, comm);

	struct mapinfo mi;
	unsigned long a = (unsigned long)sh;
	int rc = find_map(a, &mi);
	tcheck(t, rc == 1 && mi.start == a && mi.end - mi.start == g_coord_size &&
		  strcmp(mi.perms, "rw-s") == 0,
	       "coordination region at the same address and size, rw-s",
	       "rc %d, %#lx-%#lx %s, expected %#lx-%#lx rw-s", rc, rc == 1 ? mi.start : 0,
	       rc == 1 ? mi.end : 0, rc == 1 ? mi.perms : "", a, a + (unsigned long)g_coord_size);
}

/* The line of /proc/self/maps holding [addr, addr+len): whole in it,
 * perms as given, path as given (NULL: anything). */
static void check_mapped(struct task *t, const char *name, uint64_t addr, size_t len,
			 const char *perms, const char *path)
{
	struct mapinfo mi;
	int rc = find_map((unsigned long)addr, &mi);
	tcheck(t, rc == 1 && mi.start <= addr && mi.end >= addr + len &&
		  strcmp(mi.perms, perms) == 0 && (!path || strcmp(mi.path, path) == 0),
	       name, "rc %d: %#lx-%#lx %s '%s', expected %#llx-%#llx inside, %s '%s'", rc,
	       rc == 1 ? mi.start : 0, rc == 1 ? mi.end : 0, rc == 1 ? mi.perms : "",
	       rc == 1 ? mi.path : "", (unsigned long long)addr, (unsigned long long)(addr + len),
	       perms, path ? path : "*");
}

/* The 64-byte marker at the start of the executable's page 0. */
static uint64_t marker_word(size_t w)
{
	return pattern64(MARKER_SEED, w);
}

static void check_exe(struct task *t)
{
	struct mapinfo mi;
	unsigned long a = (unsigned long)sh->exe_addr;
	int rc = find_map(a, &mi);
	tcheck(t, rc == 1 && mi.start == a && mi.end - mi.start == sh->exe_len &&
		  strcmp(mi.perms, "rw-p") == 0 && strcmp(mi.path, sh->exe_path) == 0,
	       "executable mapping at the same address and size, rw-p, named after the executable",
	       "rc %d: %#lx-%#lx %s '%s', expected %#lx-%#llx rw-p '%s'", rc, rc == 1 ? mi.start : 0,
	       rc == 1 ? mi.end : 0, rc == 1 ? mi.perms : "", rc == 1 ? mi.path : "", a,
	       (unsigned long long)(a + sh->exe_len), sh->exe_path);
	if (rc != 1 || mi.start > a || mi.end < a + g_pg) {
		tcheck(t, 0, "executable mapping: marker in page 0", "skipped: not mapped");
		return;
	}
	const uint64_t *p = (const uint64_t *)g_exe;
	long bad = -1;
	for (size_t w = 0; w < MARKER_LEN / 8; w++)
		if (p[w] != marker_word(w)) {
			bad = (long)w;
			break;
		}
	tcheck(t, bad < 0, "executable mapping: marker in the first 64 bytes of page 0",
	       "word %ld is %#llx, expected %#llx", bad, bad < 0 ? 0ULL : (unsigned long long)p[bad],
	       bad < 0 ? 0ULL : (unsigned long long)marker_word((size_t)bad));

	static char file[65536];
	int fd = open(sh->exe_path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : pread(fd, file, g_pg, 0);
	int e = errno;
	if (fd >= 0)
		close(fd);
	size_t diff = MARKER_LEN;
	while (n == (ssize_t)g_pg && diff < g_pg && g_exe[diff] == file[diff])
		diff++;
	if (n != (ssize_t)g_pg)
		tcheck(t, 0, "executable mapping: rest of page 0 is the file's bytes", "read %s: %s",
		       sh->exe_path, n < 0 ? strerror(e) : "short");
	else
		tcheck(t, diff == g_pg, "executable mapping: rest of page 0 is the file's bytes",
		       "differs from %s at byte %zu", sh->exe_path, diff);
}

/* Everything of the memory, reading only. */
static void check_memory(int idx)
{
	struct task *t = &sh->t[idx];
	size_t n = g_n, q = n / 4, d = q + DONTNEED_PAGES, h = n / 2;

	tcheck(t, (uint64_t)(uintptr_t)g_m == sh->m_addr, "M pointer as recorded", "%p vs %#llx",
	       (void *)g_m, (unsigned long long)sh->m_addr);
	check_mapped(t, "M (16 MiB) mapped at the same address, rw-p, anonymous", sh->m_addr, M_SIZE,
		     "rw-p", "");
	struct mapinfo mi;
	int rc = find_map((unsigned long)sh->m_addr, &mi);
	if (!(rc == 1 && mi.start <= sh->m_addr && mi.end >= sh->m_addr + M_SIZE)) {
		tcheck(t, 0, "M contents", "skipped: M not mapped");
	} else if (idx == T_R) {
		check_pages(t, "M", g_m, 0, q, 'P');
		check_pages(t, "M", g_m, q, d, 'P');
		check_pages(t, "M", g_m, d, h, 'R');
		check_pages(t, "M", g_m, h, n, 'P');
	} else {
		check_pages(t, "M", g_m, 0, q, 'A');
		check_pages(t, "M", g_m, q, d, 0);
		check_pages(t, "M", g_m, d, h, 'P');
		if (idx == T_A) {
			check_pages(t, "M", g_m, h, n, 'P');
		} else {
			check_pages(t, "M", g_m, h, n - A1_PAGES, 'P');
			check_pages(t, "M", g_m, n - A1_PAGES, n, 'a');
		}
	}

	check_mapped(t, "heap buffer (1 MiB) mapped at the same address, rw-p", sh->heap_addr,
		     HEAP_SIZE, "rw-p", NULL);
	rc = find_map((unsigned long)sh->heap_addr, &mi);
	if (rc == 1 && mi.start <= sh->heap_addr && mi.end >= sh->heap_addr + HEAP_SIZE)
		check_pages(t, "heap buffer", g_heap, 0, HEAP_SIZE / g_pg, 'H');
	else
		tcheck(t, 0, "heap buffer contents", "skipped: not mapped");

	check_exe(t);
}

/* Page pg of M holds 'P', except (tok != 0) word 0 holds tok. */
static void check_cow_page(struct task *t, const char *name, size_t pg, uint64_t tok)
{
	const char *page = g_m + pg * g_pg;
	const uint64_t *p = (const uint64_t *)page;
	char how[160] = "";
	int ok;
	if (tok && p[0] != tok) {
		ok = 0;
		snprintf(how, sizeof how, "word 0 is %#llx, the token written %#llx",
			 (unsigned long long)p[0], (unsigned long long)tok);
	} else {
		long bad = page_bad(page, 'P', pg, tok ? 1 : 0);
		ok = bad < 0;
		if (!ok)
			describe_bad(how, sizeof how, page, 'P', pg, bad);
	}
	tcheck(t, ok, name, "page %zu: %s", pg, how);
}

/* ---- A and A1 ---- */

/* A child, set up and recorded: waits for "go" (leaves if it does not
 * come), then makes the read-only checks. */
static struct task *await_go(int idx, int use_futex)
{
	struct task *t = &sh->t[idx];
	if (!wait_go(&t->waiting, use_futex))
		_exit(EXIT_ORPHAN);
	check_identity(idx);
	check_memory(idx);
	STORE(&t->checked, 1);
	return t;
}

/* Wait (after the trigger, by the clock) for flag; a failed check if it
 * does not come. */
static int step_wait(struct task *t, int *flag, const char *name, const char *who)
{
	if (wait_flag(flag, mono_ns() + STEP_TIMEOUT_NS) == 1)
		return 1;
	tcheck(t, 0, name, "%s did not get there before the timeout", who);
	return 0;
}

__attribute__((noreturn))
static void run_a1(void)
{
	child_enter(T_A1);
	record_self(T_A1);
	fill_pages(g_m, g_n - A1_PAGES, g_n, 'a');
	struct task *t = await_go(T_A1, 0);
	size_t h = g_n / 2;

	if (step_wait(t, &sh->cow, "own copy of page N/2 after writing a token into it",
		      "R (sharing check)")) {
		uint64_t tok = fresh_token();
		sh->tok_a1 = tok;
		STORE((uint64_t *)(g_m + h * g_pg), tok);
		STORE(&sh->a1_wrote, 1);
		check_cow_page(t, "own copy of page N/2 after writing a token into it", h, tok);
	}
	if (step_wait(t, &sh->r_wrote, "page N/2+1 still 'P' after R wrote into its copy", "R"))
		check_cow_page(t, "page N/2+1 still 'P' after R wrote into its copy", h + 1, 0);
	STORE(&t->done, 1);
	_exit(wait_word(&sh->leave, 0, LEAVE_TIMEOUT_NS) ? EXIT_OK : EXIT_NOLEAVE);
}

__attribute__((noreturn))
static void run_a(void)
{
	child_enter(T_A);
	record_self(T_A);
	size_t q = g_n / 4;
	fill_pages(g_m, 0, q, 'A');
	if (madvise(g_m + q * g_pg, DONTNEED_PAGES * g_pg, MADV_DONTNEED) != 0)
		cfail("madvise(MADV_DONTNEED)");
	pid_t p = fork();
	if (p < 0)
		cfail("fork A1");
	if (p == 0)
		run_a1();
	sh->a1_fork = p;
	if (wait_flag(&sh->t[T_A1].recorded, mono_ns() + SETUP_TIMEOUT_NS) != 1)
		cfail("A1 did not record its IDs");

	struct task *t = await_go(T_A, 1);
	size_t h = g_n / 2;
	if (step_wait(t, &sh->a1_wrote, "page N/2 still 'P' after A1 wrote into its copy", "A1"))
		check_cow_page(t, "page N/2 still 'P' after A1 wrote into its copy", h, 0);
	STORE(&sh->a_read, 1);
	if (step_wait(t, &sh->r_wrote, "page N/2+1 still 'P' after R wrote into its copy", "R"))
		check_cow_page(t, "page N/2+1 still 'P' after R wrote into its copy", h + 1, 0);
	STORE(&t->done, 1);

	if (!wait_word(&sh->leave, 1, LEAVE_TIMEOUT_NS))
		_exit(EXIT_NOLEAVE);
	int st = 0;
	int rc = reap_until(p, &st, mono_ns() + CHILD_REAP_TIMEOUT_NS);
	char how[64];
	fmt_status(how, sizeof how, rc, st);
	tcheck(t, rc == 1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "A1 exited 0 and was reaped",
	       "%s", how);
	tcheck(t, no_child_left(how, sizeof how), "no other child left", "%s", how);
	STORE(&t->finished, 1);
	_exit(EXIT_OK);
}

/* ---- R: pagemap ---- */

/* npages entries of /proc/PID/pagemap from addr: 0, or -1 with errno. */
static int read_pagemap(pid_t pid, uint64_t addr, size_t npages, uint64_t *out)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t want = npages * sizeof(uint64_t), got = 0;
	off_t off = (off_t)(addr / g_pg * sizeof(uint64_t));
	while (got < want) {
		ssize_t n = pread(fd, (char *)out + got, want - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			errno = e;
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	return 0;
}

static int present(uint64_t e)
{
	return (e & PM_PRESENT) != 0;
}

static uint64_t pfn(uint64_t e)
{
	return e & PM_PFN_MASK;
}

/* One pagemap entry in words. */
static const char *fmt_entry(char *buf, size_t size, uint64_t e)
{
	if (present(e))
		snprintf(buf, size, "pfn %#llx", (unsigned long long)pfn(e));
	else
		snprintf(buf, size, "%s", e & PM_SWAPPED ? "swapped" : "not present");
	return buf;
}

/* The pagemap of M, the heap buffer and the executable's page 0, per task. */
static uint64_t pm_m[NT][MAX_M_PAGES], pm_heap[NT][MAX_HEAP_PAGES], pm_exe[NT];
static uint64_t g_heap_start;  /* the first whole page inside the heap buffer */
static size_t g_heap_pages;    /* how many whole pages it holds */

enum rel {
	ALL_SAME,     /* R = A = A1 */
	A_A1_NOT_R,   /* A = A1, R its own */
	A1_NOT_A,     /* A1 its own (not A's) */
	R_A,          /* R = A */
};

static int rel_ok(enum rel rel, const uint64_t *e)
{
	if (!present(e[T_R]) || !present(e[T_A]) || !present(e[T_A1]))
		return 0;
	uint64_t r = pfn(e[T_R]), a = pfn(e[T_A]), a1 = pfn(e[T_A1]);
	switch (rel) {
	case ALL_SAME:
		return r == a && a == a1;
	case A_A1_NOT_R:
		return a == a1 && r != a;
	case A1_NOT_A:
		return a1 != a;
	case R_A:
		return r == a;
	}
	return 0;
}

/*
 * One relation over the pages [from, to) of a region (tab: the entries of
 * each task, indexed from 0): counted in a "#" line, the first mismatch
 * named.
 */
static void check_rel(struct task *r, const char *name, const char *count, enum rel rel,
		      uint64_t (*tab)[MAX_M_PAGES], const char *region, size_t from, size_t to)
{
	size_t good = 0, first = 0, nbad = 0;
	for (size_t i = from; i < to; i++) {
		uint64_t e[NT] = { tab[T_R][i], tab[T_A][i], tab[T_A1][i] };
		if (rel_ok(rel, e))
			good++;
		else if (nbad++ == 0)
			first = i;
	}
	tnote(r, "%s: %zu of %zu pages (%s pages [%zu,%zu))", count, good, to - from, region, from,
	      to);
	char b0[40], b1[40], b2[40];
	tcheck(r, nbad == 0, name, "%zu of %zu pages not; first: %s page %zu: R %s, A %s, A1 %s", nbad,
	       to - from, region, first, fmt_entry(b0, sizeof b0, tab[T_R][first]),
	       fmt_entry(b1, sizeof b1, tab[T_A][first]), fmt_entry(b2, sizeof b2, tab[T_A1][first]));
}

/* Same, for the heap table (a different row length). */
static void check_rel_heap(struct task *r)
{
	size_t good = 0, first = 0, nbad = 0;
	for (size_t i = 0; i < g_heap_pages; i++) {
		uint64_t e[NT] = { pm_heap[T_R][i], pm_heap[T_A][i], pm_heap[T_A1][i] };
		if (rel_ok(ALL_SAME, e))
			good++;
		else if (nbad++ == 0)
			first = i;
	}
	tnote(r, "shared R=A=A1: %zu of %zu pages (the whole pages of the heap buffer)", good,
	      g_heap_pages);
	char b0[40], b1[40], b2[40];
	tcheck(r, nbad == 0 && g_heap_pages > 0,
	       "heap buffer: every page present with the same PFN in R, A and A1",
	       "%zu of %zu pages not; first: the one at %#llx: R %s, A %s, A1 %s", nbad,
	       g_heap_pages, (unsigned long long)(g_heap_start + first * g_pg),
	       fmt_entry(b0, sizeof b0, pm_heap[T_R][first]),
	       fmt_entry(b1, sizeof b1, pm_heap[T_A][first]),
	       fmt_entry(b2, sizeof b2, pm_heap[T_A1][first]));
}

/* Reads the pagemaps of R, A and A1 for M, the heap buffer and the
 * executable's page 0. 1 if all were read and PFNs are visible. */
static int read_all_pagemaps(struct task *r)
{
	uint64_t heap_start = (sh->heap_addr + g_pg - 1) / g_pg * g_pg;
	uint64_t heap_end = (sh->heap_addr + HEAP_SIZE) / g_pg * g_pg;
	g_heap_start = heap_start;
	g_heap_pages = (size_t)((heap_end - heap_start) / g_pg);
	int all = 1;
	for (int i = 0; i < NT; i++) {
		pid_t pid = sh->t[i].pid;
		int rc = read_pagemap(pid, sh->m_addr, g_n, pm_m[i]);
		if (rc == 0)
			rc = read_pagemap(pid, heap_start, g_heap_pages, pm_heap[i]);
		if (rc == 0)
			rc = read_pagemap(pid, sh->exe_addr, 1, &pm_exe[i]);
		char name[64];
		snprintf(name, sizeof name, "/proc/%s/pagemap readable", tname[i]);
		if (!tcheck(r, rc == 0, name, "/proc/%d/pagemap: %s", (int)pid, strerror(errno)))
			all = 0;
	}
	if (!all)
		return 0;
	/* A present page with PFN 0: the PFNs are hidden from us. */
	const char *where = NULL;
	int who = 0;
	size_t at = 0;
	for (int i = 0; i < NT && !where; i++) {
		for (size_t k = 0; k < g_n && !where; k++)
			if (present(pm_m[i][k]) && pfn(pm_m[i][k]) == 0)
				where = "M", who = i, at = k;
		for (size_t k = 0; k < g_heap_pages && !where; k++)
			if (present(pm_heap[i][k]) && pfn(pm_heap[i][k]) == 0)
				where = "heap buffer", who = i, at = k;
		if (!where && present(pm_exe[i]) && pfn(pm_exe[i]) == 0)
			where = "executable mapping", who = i, at = 0;
	}
	return tcheck(r, !where, "PFNs visible in /proc/PID/pagemap",
		      "PFNs are not visible (needs CAP_SYS_ADMIN): %s page %zu of %s is present "
		      "with PFN 0", where ? where : "", at, tname[who]);
}

/* R, after A and A1 made their read-only checks and before anybody
 * writes: which pages are shared by whom. */
static void check_sharing(struct task *r)
{
	if (!read_all_pagemaps(r)) {
		tcheck(r, 0, "pages shared after fork stay shared (pagemap)",
		       "skipped: the PFNs could not be read");
		return;
	}
	size_t n = g_n, q = n / 4, d = q + DONTNEED_PAGES, h = n / 2;
	check_rel(r, "M pages [N/2,N-8): present with the same PFN in R, A and A1",
		  "shared R=A=A1", ALL_SAME, pm_m, "M", h, n - A1_PAGES);
	check_rel(r, "M pages [0,N/4): same PFN in A and A1, not R's", "shared A=A1, R own",
		  A_A1_NOT_R, pm_m, "M", 0, q);
	check_rel(r, "M pages [N/4+16,N/2): same PFN in A and A1, not R's", "shared A=A1, R own",
		  A_A1_NOT_R, pm_m, "M", d, h);
	check_rel(r, "M pages [N-8,N): A1's PFN not A's", "A1 own", A1_NOT_A, pm_m, "M",
		  n - A1_PAGES, n);
	check_rel(r, "M pages [N-8,N): same PFN in R and A", "shared R=A", R_A, pm_m, "M",
		  n - A1_PAGES, n);
	check_rel_heap(r);

	char b0[40], b1[40], b2[40];
	tcheck(r, rel_ok(ALL_SAME, pm_exe),
	       "executable mapping page 0: present with the same PFN in R, A and A1",
	       "R %s, A %s, A1 %s", fmt_entry(b0, sizeof b0, pm_exe[T_R]),
	       fmt_entry(b1, sizeof b1, pm_exe[T_A]), fmt_entry(b2, sizeof b2, pm_exe[T_A1]));
	tcheck(r, present(pm_exe[T_R]) && !(pm_exe[T_R] & PM_FILE),
	       "executable mapping page 0 is an anonymous page (pagemap bit 61 clear)",
	       "entry %#llx", (unsigned long long)pm_exe[T_R]);
}

/* R, in the copy-on-write phase: page pg of M as seen in the pagemaps
 * after the writer (A1: page N/2, R: page N/2+1) wrote into it. */
static void check_cow_pfns(struct task *r, size_t pg, int writer)
{
	uint64_t e[NT];
	int rc = 0;
	for (int i = 0; i < NT && rc == 0; i++)
		rc = read_pagemap(sh->t[i].pid, sh->m_addr + pg * g_pg, 1, &e[i]);
	char name[RESULT_NAME_LEN], b0[40], b1[40], b2[40];
	if (rc != 0) {
		snprintf(name, sizeof name, "page %s after %s's write: pagemap readable",
			 writer == T_A1 ? "N/2" : "N/2+1", tname[writer]);
		tcheck(r, 0, name, "%s", strerror(errno));
		return;
	}
	fmt_entry(b0, sizeof b0, e[T_R]);
	fmt_entry(b1, sizeof b1, e[T_A]);
	fmt_entry(b2, sizeof b2, e[T_A1]);
	if (writer == T_A1) {
		tcheck(r, rel_ok(R_A, e), "page N/2 after A1's write: R and A still share it",
		       "R %s, A %s, A1 %s", b0, b1, b2);
		tcheck(r, rel_ok(A1_NOT_A, e) && pfn(e[T_A1]) != pfn(e[T_R]),
		       "page N/2 after A1's write: A1 has its own copy", "R %s, A %s, A1 %s", b0, b1,
		       b2);
	} else {
		tcheck(r, present(e[T_A]) && present(e[T_A1]) && pfn(e[T_A]) == pfn(e[T_A1]),
		       "page N/2+1 after R's write: A and A1 still share it", "R %s, A %s, A1 %s", b0,
		       b1, b2);
		tcheck(r, present(e[T_R]) && present(e[T_A]) && present(e[T_A1]) &&
			  pfn(e[T_R]) != pfn(e[T_A]) && pfn(e[T_R]) != pfn(e[T_A1]),
		       "page N/2+1 after R's write: R has its own copy", "R %s, A %s, A1 %s", b0, b1,
		       b2);
	}
}

/* ---- R ---- */

static char g_killed[128]; /* what kill_leftovers() killed: "A1(124) A(123)" */

/* SIGKILL (by PID) what of the tree still runs (A1 first: it may still
 * carry A's name when it never got to rename itself), reap A. Returns how
 * many were still running. */
static int kill_leftovers(void)
{
	pid_t a = sh->t[T_A].pid ? sh->t[T_A].pid : g_a;
	pid_t a1 = sh->t[T_A1].pid ? sh->t[T_A1].pid : sh->a1_fork;
	int left = 0;
	size_t len = 0;
	g_killed[0] = '\0';
	if (a1 > 0 && (running_as(a1, "t_cow-A1") || running_as(a1, "t_cow-A"))) {
		left++;
		len += (size_t)snprintf(g_killed + len, sizeof g_killed - len, "A1(%d)", (int)a1);
		kill(a1, SIGKILL);
	}
	/* A is R's own child: its PID is ours until reaped. */
	if (g_a > 0 && waitpid(g_a, NULL, WNOHANG) == 0) {
		left++;
		snprintf(g_killed + len, sizeof g_killed - len, "%sA(%d)", len ? " " : "", (int)a);
		kill(g_a, SIGKILL);
		reap_until(g_a, &(int){ 0 }, mono_ns() + REAP_TIMEOUT_NS);
	}
	g_a = 0;
	return left;
}

/* R before "go": A and A1 seen from outside. */
static void outside_view(struct task *r)
{
	uint64_t deadline = mono_ns() + STATE_TIMEOUT_NS;
	for (int i = T_A; i < NT; i++) {
		struct task *t = &sh->t[i];
		char what[96];
		struct pstat ps;
		int rc = stat_sleeping(t->pid, 0, &ps, deadline);
		snprintf(what, sizeof what, "%s waiting: /proc/PID/stat S, ppid, comm", tname[i]);
		tcheck(r, rc == 0 && ps.state == 'S' && ps.ppid == t->ppid &&
			  strcmp(ps.comm, t->comm) == 0,
		       what, "pid %d: rc %d, %c ppid %d '%s', expected S %d '%s'", t->pid, rc,
		       rc ? '?' : ps.state, rc ? 0 : ps.ppid, rc ? "" : ps.comm, t->ppid, t->comm);
	}
}

/* R's setup before the first fork: M, the heap buffer, the executable. */
static void setup_memory(void)
{
	g_m = map_anon(M_SIZE, MAP_PRIVATE);
	if (!g_m)
		die("mmap M (16 MiB private anonymous)");
	fill_pages(g_m, 0, g_n, 'P');

	g_heap = malloc(HEAP_SIZE);
	if (!g_heap)
		die("malloc 1 MiB");
	fill_pages(g_heap, 0, HEAP_SIZE / g_pg, 'H');

	ssize_t l = readlink("/proc/self/exe", sh->exe_path, sizeof sh->exe_path - 1);
	if (l <= 0)
		die("readlink /proc/self/exe");
	sh->exe_path[l] = '\0';
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open /proc/self/exe");
	struct stat st;
	if (fstat(fd, &st) != 0)
		die("fstat /proc/self/exe");
	size_t len = (size_t)st.st_size / g_pg * g_pg;
	if (len < g_pg)
		len = g_pg;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		die("mmap /proc/self/exe MAP_PRIVATE rw");
	close(fd);
	g_exe = p;
	uint64_t *w = (uint64_t *)g_exe;
	for (size_t i = 0; i < MARKER_LEN / 8; i++)
		w[i] = marker_word(i);

	sh->m_addr = (uint64_t)(uintptr_t)g_m;
	sh->heap_addr = (uint64_t)(uintptr_t)g_heap;
	sh->exe_addr = (uint64_t)(uintptr_t)g_exe;
	sh->exe_len = len;
}

/* The tree is R -> A -> A1, as forked. */
static void check_parents(void)
{
	if (sh->t[T_A].ppid != sh->t[T_R].pid || sh->t[T_A1].ppid != sh->t[T_A].pid)
		setup_fail("unexpected parents: A's %d, A1's %d", sh->t[T_A].ppid, sh->t[T_A1].ppid);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: %s WORKDIR", argv[0]);
	g_pg = (size_t)sysconf(_SC_PAGESIZE);
	if (g_pg < MIN_PAGE || M_SIZE % g_pg || HEAP_SIZE % g_pg)
		die("page size %zu not supported", g_pg);
	g_n = M_SIZE / g_pg;
	g_pgw = g_pg / sizeof(uint64_t);

	g_coord_size = sizeof *sh;
	sh = coord_map(&g_coord_size);
	if (set_handler(SIGCHLD, SIG_DFL) != 0)
		die("sigaction(SIGCHLD)");
	install_trigger();
	record_self(T_R);
	setup_memory();

	g_a = fork();
	if (g_a < 0)
		setup_fail("fork A: %s", strerror(errno));
	if (g_a == 0)
		run_a();

	/* A has forked A1: only now R writes its own copies. */
	uint64_t deadline = mono_ns() + SETUP_TIMEOUT_NS;
	int rc = wait_flag(&sh->t[T_A1].recorded, deadline);
	if (rc < 0)
		setup_fail("a child gave up");
	if (rc == 0)
		setup_fail("A1 was not forked");
	fill_pages(g_m, g_n / 4 + DONTNEED_PAGES, g_n / 2, 'R');

	/* All writes done (A's and A1's come before their "waiting"), both
	 * waiting in state S. */
	struct waiter w[NT - T_A];
	for (int i = T_A; i < NT; i++)
		w[i - T_A] = (struct waiter){&sh->t[i].waiting, tname[i], &sh->t[i].pid, NULL};
	waiters_asleep(w, NT - T_A, check_parents);

	ready();
	poll_trigger();
	uint64_t t0 = mono_ns();

	/* 1. Everybody checks itself, reading only. */
	struct task *r = &sh->t[T_R];
	check_identity(T_R);
	check_memory(T_R);
	outside_view(r);
	futex_set(&sh->c.go, 1);

	/* 2. Sharing, before anybody writes. */
	int checked = 1;
	for (int i = T_A; i < NT; i++) {
		wait_task(&sh->t[i].checked, t0 + DONE_TIMEOUT_NS, sh->t[i].pid, NULL);
		checked &= LOAD(&sh->t[i].checked);
	}
	if (checked)
		check_sharing(r);
	else
		tcheck(r, 0, "pages shared after fork stay shared (pagemap)",
		       "skipped: A or A1 did not make its checks");
	STORE(&sh->cow, 1);

	/* 3. Copy-on-write: A1 writes page N/2, then R page N/2+1. */
	size_t h = g_n / 2;
	if (step_wait(r, &sh->a1_wrote, "page N/2 still 'P' after A1 wrote into its copy", "A1")) {
		check_cow_page(r, "page N/2 still 'P' after A1 wrote into its copy", h, 0);
		check_cow_pfns(r, h, T_A1);
	}
	wait_task(&sh->a_read, mono_ns() + STEP_TIMEOUT_NS, sh->t[T_A].pid, NULL);
	uint64_t tok = fresh_token();
	sh->tok_r = tok;
	STORE((uint64_t *)(g_m + (h + 1) * g_pg), tok);
	STORE(&sh->r_wrote, 1);
	check_cow_page(r, "own copy of page N/2+1 after writing a token into it", h + 1, tok);

	for (int i = T_A; i < NT; i++)
		wait_task(&sh->t[i].done, t0 + DONE_TIMEOUT_NS, sh->t[i].pid, NULL);
	if (LOAD(&sh->t[T_A].done) && LOAD(&sh->t[T_A1].done))
		check_cow_pfns(r, h + 1, T_R);

	futex_set(&sh->leave, 1);
	if (LOAD(&sh->t[T_A].done))
		wait_task(&sh->t[T_A].finished, mono_ns() + FINISH_TIMEOUT_NS, sh->t[T_A].pid, NULL);

	/* Report in a fixed order. */
	for (int i = 0; i < NT; i++) {
		struct task *t = &sh->t[i];
		char what[64];
		if (i != T_R && !LOAD(&t->done)) {
			results_report(&t->res, tname[i]); /* whatever it managed to store */
			snprintf(what, sizeof what, "%s: did not report", tname[i]);
			check(0, what, "no results (task gone, or silent for %llu s after the trigger)",
			      (unsigned long long)(DONE_TIMEOUT_NS / 1000000000ULL));
			continue;
		}
		results_report(&t->res, tname[i]);
		if (i == T_A && !LOAD(&t->finished))
			check(0, "A: did not finish (reaping A1)", "no final report");
	}

	check_reaped(&g_a, "R: A exited 0 and was reaped");
	check_nothing_left(g_killed);
	finish();
}
