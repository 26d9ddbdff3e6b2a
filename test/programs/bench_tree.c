/*
 * bench_tree: process-tree workload for the crmigrate benchmark (src/bench,
 * suite "tree").
 *
 *   bench_tree [NPROC [NTHREADS_TOTAL [SHARED_MIB]]]     (defaults 50 200 1024)
 *
 *       The root maps SHARED_MIB of MAP_SHARED|MAP_ANONYMOUS memory and fills
 *       it like bench_mem: the first half with pseudo-random bytes
 *       (xorshift64*, incompressible), the rest with log-like text. It then
 *       forks NPROC-1 children (a flat tree). Every process, the root
 *       included, runs threads so that the tree holds NTHREADS_TOTAL threads
 *       in all, main threads included (process i gets NTHREADS_TOTAL/NPROC,
 *       the first NTHREADS_TOTAL%NPROC one more). Each child reads NTOUCH
 *       pages of the shared memory (so the region is mapped in every
 *       process) and records a sum of each.
 *
 *       All coordination goes through a second, small MAP_SHARED|
 *       MAP_ANONYMOUS control region made before the first fork: one slot
 *       per process and per thread (PID, TID, ready, answer) and the "phase"
 *       word. Every thread except the root's main one waits on that word in
 *       FUTEX_WAIT with a 50 ms timeout; the root's main thread polls its
 *       SIGUSR2 flag in 20 ms nanosleeps. No pipes, sockets or eventfds.
 *       "READY" is printed once every task has recorded itself and sleeps
 *       (/proc/PID/task/TID/stat state S).
 *
 *       On SIGUSR2 (to the root) the root
 *         1. re-verifies every byte of the shared memory ("FAIL <offset>"
 *            on the first difference; first half random, second half text),
 *         2. looks at the tree from outside: every child alive, not a
 *            zombie, its parent the root, and /proc/PID/task holding exactly
 *            the recorded TIDs of every process,
 *         3. writes a token into the first 8 bytes of one page per child and
 *            sets phase CHECK: every thread answers in its slot (its TID and
 *            PID unchanged); every child's main thread also re-reads its
 *            touched pages (same sums) and must see its token (the shared
 *            memory is still shared, not a private copy),
 *         4. sets phase LEAVE: threads return, each child joins its threads
 *            and exits 0; the root joins its own, reaps every child (exit
 *            status 0), SIGKILLs by PID whatever did not go,
 *       and prints "PASS" (exit 0) or "FAIL <why>" (exit 1) last. Problems
 *       are listed before it as "not ok - ..." lines.
 *
 * Every wait is bounded. Waits that can span a checkpoint (the children's
 * wait for the trigger, the root's wait for SIGUSR2) count their sleeps
 * (10 minutes) instead of reading a clock; a child also leaves when the root
 * is gone (its parent changed). Waits after the trigger use the clock; the
 * verdict comes within about a minute even when nobody answers.
 *
 * Only the root writes, through write(2) on fd 1 (nothing waits in a stdio
 * buffer). SIGUSR2 is blocked in every thread but the root's main thread.
 */
#include "common.h"
#include "pattern.h"

#include <dirent.h>
#include <pthread.h>

#define PAGE 4096UL
#define TOKEN_MIX 0xD1B54A32D192ED03ULL

#define DEF_NPROC 50
#define DEF_NTHREADS 200
#define DEF_SHARED_MIB 1024
#define MAX_PROCS 4096
#define MAX_THREADS 65536
#define MAX_SHARED_MIB (1UL << 20)
#define NTOUCH 4                     /* pages of the shared memory each child reads */
#define THREAD_STACK (64 * 1024)

#define FUTEX_STEP_NS (50 * MS)      /* one FUTEX_WAIT timeout */
#define TRIGGER_STEP_NS (20 * MS)    /* one nanosleep of the root polling SIGUSR2 */
#define WAIT_MAX_NS (600000 * MS)    /* waits that can span a checkpoint: counted in steps */
#define LEAVE_MAX_NS (60000 * MS)    /* a task's wait for LEAVE after its answer: steps */
#define SETUP_TIMEOUT_NS (120000 * MS)
#define STATE_TIMEOUT_NS (10000 * MS)  /* until every task sleeps (state S) */
#define ANSWER_TIMEOUT_NS (20000 * MS) /* all answers, from phase CHECK */
#define JOIN_TIMEOUT_NS (5000 * MS)    /* a process joining its threads */
#define REAP_TIMEOUT_NS (15000 * MS)   /* the root reaping its children */
#define MAX_PROBLEM_LINES 20

/* Exit codes of the children. */
#define EXIT_OK 0
#define EXIT_ORPHAN 3   /* the root disappeared while we waited */
#define EXIT_TIMEOUT 4  /* no phase change within the bound */
#define EXIT_SETUP 5    /* our own setup failed */
#define EXIT_JOIN 6     /* a thread did not finish */

#define LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

enum { PH_WAIT, PH_CHECK, PH_LEAVE };

/* A thread's answer to CHECK. */
enum { ANS_NONE, ANS_OK, ANS_BAD_TID, ANS_BAD_PID };
/* A child process's own check (its main thread). */
enum { PCHK_NONE, PCHK_OK, PCHK_BAD_SUM, PCHK_BAD_TOKEN, PCHK_BAD_PPID };

struct tslot {
	pid_t pid, tid;  /* recorded by the thread */
	int ready;       /* about to enter its wait */
	int answer;      /* ANS_* */
};

struct pslot {
	pid_t pid;
	int first, n;     /* its threads: tslots [first, first + n), main first */
	int ready;        /* 1 all threads created, -1 setup failed */
	int check;        /* PCHK_* */
	int bad_touch;    /* which touched page differed */
	uint64_t off[NTOUCH];
	uint64_t sum[NTOUCH];
	uint64_t token_seen;
};

struct ctl {
	uint32_t phase;   /* futex word: PH_* */
	pid_t root;
	int nproc, nthreads;
	uint64_t token;
	char setup_error[200];
};

static struct ctl *g_ctl;
static struct pslot *g_ps;
static struct tslot *g_ts;
static unsigned char *g_mem;
static size_t g_len;
static pid_t g_kids[MAX_PROCS];
static int g_problems;
static char g_first_problem[256];

/* The root records a problem: printed now (the first few), the first one again in the verdict. */
static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
	char msg[256];
	VFORMAT(msg, fmt);
	if (g_problems == 0)
		snprintf(g_first_problem, sizeof g_first_problem, "%s", msg);
	if (g_problems < MAX_PROBLEM_LINES)
		say("not ok - %s", msg);
	else if (g_problems == MAX_PROBLEM_LINES)
		say("not ok - (more problems not listed)");
	g_problems++;
}

static void set_phase(uint32_t ph)
{
	futex_set(&g_ctl->phase, ph);
}

static void *map_shared(size_t len, const char *what)
{
	void *p = map_anon(len, MAP_SHARED);
	if (!p) {
		say("FAIL setup: mmap of %zu bytes (%s): %s", len, what, strerror(errno));
		exit(1);
	}
	return p;
}

/* ---- the tasks' side ---- */

/* Sum of a touched page, without its first 8 bytes (where the root writes the token). */
static uint64_t page_sum(const unsigned char *p)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	for (size_t i = 8; i < PAGE; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/*
 * A task's wait for the phase to move on from `cur`, in FUTEX_WAIT steps,
 * bounded by counting steps (max_ns). Returns the new phase, -1 after
 * max_ns, -2 when the root is gone (children only).
 */
static int wait_phase(uint32_t cur, uint64_t max_ns, int in_child)
{
	uint64_t steps = max_ns / FUTEX_STEP_NS;
	for (uint64_t n = 0;; n++) {
		uint32_t ph = LOAD(&g_ctl->phase);
		if (ph != cur)
			return (int)ph;
		if (in_child && getppid() != g_ctl->root)
			return -2;
		if (n >= steps)
			return -1;
		futex_step(&g_ctl->phase, cur, FUTEX_STEP_NS);
	}
}

static void answer(int idx)
{
	struct tslot *t = &g_ts[idx];
	int a = ANS_OK;
	if (gettid() != t->tid)
		a = ANS_BAD_TID;
	else if (getpid() != t->pid)
		a = ANS_BAD_PID;
	STORE(&t->answer, a);
}

/* A thread's life after its setup: wait, answer, wait for LEAVE. */
static int task_wait(int idx, int in_child)
{
	int ph = wait_phase(PH_WAIT, WAIT_MAX_NS, in_child);
	if (ph == PH_CHECK) {
		answer(idx);
		ph = wait_phase(PH_CHECK, LEAVE_MAX_NS, in_child);
	}
	return ph;
}

struct targ {
	int idx, in_child;
};

static void *thread_main(void *arg)
{
	struct targ *a = arg;
	struct tslot *t = &g_ts[a->idx];
	t->pid = getpid();
	t->tid = gettid();
	STORE(&t->ready, 1);
	task_wait(a->idx, a->in_child);
	return NULL;
}

/*
 * Starts the threads [first + 1, first + n) of this process (the caller is
 * `first`). Returns how many were started; *err is set on failure.
 */
static int start_threads(int first, int n, int in_child, pthread_t *th, struct targ *args, int *err)
{
	pthread_attr_t attr;
	*err = pthread_attr_init(&attr);
	if (*err)
		return 0;
	*err = pthread_attr_setstacksize(&attr, THREAD_STACK);
	if (*err)
		return 0;
	int started = 0;
	for (int i = 1; i < n; i++) {
		args[i].idx = first + i;
		args[i].in_child = in_child;
		*err = pthread_create(&th[i], &attr, thread_main, &args[i]);
		if (*err)
			break;
		started++;
	}
	pthread_attr_destroy(&attr);
	return started;
}

/* Joins threads 1..started with one deadline; returns how many did not finish. */
static int join_threads(pthread_t *th, int started)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += (time_t)(JOIN_TIMEOUT_NS / 1000000000ULL);
	int left = 0;
	for (int i = 1; i <= started; i++)
		if (pthread_clockjoin_np(th[i], NULL, CLOCK_MONOTONIC, &dl) != 0)
			left++;
	return left;
}

/* The touched pages of child k: one of its own (for the token), the others spread out. */
static void touch_offsets(int k, uint64_t *off)
{
	size_t npages = g_len / PAGE;
	size_t own = (size_t)k * npages / (size_t)g_ctl->nproc;
	for (int j = 0; j < NTOUCH; j++)
		off[j] = ((own + (size_t)j * (npages / NTOUCH) + (size_t)j * 7) % npages) * PAGE;
}

static int child_check(int k)
{
	struct pslot *p = &g_ps[k];
	if (getppid() != g_ctl->root)
		return PCHK_BAD_PPID;
	for (int j = 0; j < NTOUCH; j++) {
		if (page_sum(g_mem + p->off[j]) != p->sum[j]) {
			p->bad_touch = j;
			return PCHK_BAD_SUM;
		}
	}
	uint64_t seen;
	memcpy(&seen, g_mem + p->off[0], sizeof seen);
	p->token_seen = seen;
	if (seen != (LOAD(&g_ctl->token) ^ ((uint64_t)k * TOKEN_MIX)))
		return PCHK_BAD_TOKEN;
	return PCHK_OK;
}

__attribute__((noreturn))
static void child_main(int k)
{
	struct pslot *p = &g_ps[k];
	p->pid = getpid();
	touch_offsets(k, p->off);
	for (int j = 0; j < NTOUCH; j++)
		p->sum[j] = page_sum(g_mem + p->off[j]);

	pthread_t *th = calloc((size_t)p->n, sizeof *th);
	struct targ *args = calloc((size_t)p->n, sizeof *args);
	if (!th || !args) {
		STORE(&p->ready, -1);
		_exit(EXIT_SETUP);
	}
	int err = 0;
	int started = start_threads(p->first, p->n, 1, th, args, &err);
	if (err) {
		snprintf(g_ctl->setup_error, sizeof g_ctl->setup_error, "process %d: pthread_create: %s", k, strerror(err));
		STORE(&p->ready, -1);
		/* The started threads leave when the root sets LEAVE (or is gone). */
		_exit(EXIT_SETUP);
	}
	struct tslot *t = &g_ts[p->first];
	t->pid = getpid();
	t->tid = gettid();
	STORE(&t->ready, 1);
	STORE(&p->ready, 1);

	int ph = wait_phase(PH_WAIT, WAIT_MAX_NS, 1);
	if (ph == -2)
		_exit(EXIT_ORPHAN);
	if (ph == -1)
		_exit(EXIT_TIMEOUT);
	if (ph == PH_CHECK) {
		STORE(&p->check, child_check(k));
		answer(p->first);
		ph = wait_phase(PH_CHECK, LEAVE_MAX_NS, 1);
		if (ph == -2)
			_exit(EXIT_ORPHAN);
		if (ph == -1)
			_exit(EXIT_TIMEOUT);
	}
	_exit(join_threads(th, started) ? EXIT_JOIN : EXIT_OK);
}

/* ---- the root's side ---- */

/* Kills the children still there by PID and reaps them; returns how many it killed. */
static int kill_leftovers(void)
{
	int killed = 0;
	for (int k = 1; k < g_ctl->nproc; k++) {
		if (g_kids[k] <= 0)
			continue;
		if (waitpid(g_kids[k], NULL, WNOHANG) == g_kids[k]) {
			g_kids[k] = 0;
			continue;
		}
		kill(g_kids[k], SIGKILL);
		killed++;
	}
	for (int k = 1; k < g_ctl->nproc; k++) {
		if (g_kids[k] <= 0)
			continue;
		while (waitpid(g_kids[k], NULL, 0) < 0 && errno == EINTR)
			;
		g_kids[k] = 0;
	}
	return killed;
}

/* Setup failed: everybody leaves, the root reports and exits. */
__attribute__((format(printf, 1, 2), noreturn))
static void setup_fail(const char *fmt, ...)
{
	char msg[256];
	VFORMAT(msg, fmt);
	set_phase(PH_LEAVE);
	sleep_ns(200 * MS);
	kill_leftovers();
	say("FAIL setup: %s", msg);
	exit(1);
}

/* A child gone during setup (reaped here, so its PID is known to be gone)? */
static int child_died(int *which, int *status)
{
	for (int k = 1; k < g_ctl->nproc; k++) {
		if (g_kids[k] > 0 && waitpid(g_kids[k], status, WNOHANG) == g_kids[k]) {
			g_kids[k] = 0;
			*which = k;
			return 1;
		}
	}
	return 0;
}

static void wait_ready(void)
{
	uint64_t deadline = mono_ns() + SETUP_TIMEOUT_NS;
	for (;;) {
		int all = 1;
		for (int k = 0; k < g_ctl->nproc && all; k++) {
			int r = LOAD(&g_ps[k].ready);
			if (r < 0)
				setup_fail("process %d: %s", k, g_ctl->setup_error[0] ? g_ctl->setup_error : "setup failed");
			all = r == 1;
		}
		for (int i = 0; i < g_ctl->nthreads && all; i++)
			all = LOAD(&g_ts[i].ready) == 1;
		if (all)
			return;
		int k, st;
		if (child_died(&k, &st))
			setup_fail("process %d exited during setup (status %#x)", k, st);
		if (mono_ns() >= deadline)
			setup_fail("not every process and thread was ready after %llu s",
				   (unsigned long long)(SETUP_TIMEOUT_NS / 1000000000ULL));
		sleep_ns(MS);
	}
}

/* Every task (but the root's main thread) asleep in its wait. */
static void wait_sleeping(void)
{
	uint64_t deadline = mono_ns() + STATE_TIMEOUT_NS;
	for (int i = 1; i < g_ctl->nthreads; i++) {
		struct pstat ps;
		int rc = stat_sleeping(g_ts[i].pid, g_ts[i].tid, &ps, deadline);
		if (rc || ps.state != 'S')
			setup_fail("thread %d (pid %d tid %d) not sleeping in its wait (state %c)", i,
				   (int)g_ts[i].pid, (int)g_ts[i].tid, rc ? '?' : ps.state);
	}
}

/* /proc/PID/task holds exactly the recorded TIDs of process k. */
static void check_tasks(int k)
{
	struct pslot *p = &g_ps[k];
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)p->pid);
	DIR *d = opendir(path);
	if (!d) {
		problem("process %d (pid %d): cannot list %s: %s", k, (int)p->pid, path, strerror(errno));
		return;
	}
	int count = 0, strangers = 0;
	pid_t stranger = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		pid_t tid = (pid_t)atoi(e->d_name);
		count++;
		int known = 0;
		for (int i = p->first; i < p->first + p->n && !known; i++)
			known = g_ts[i].tid == tid;
		if (!known) {
			strangers++;
			stranger = tid;
		}
	}
	closedir(d);
	if (count != p->n || strangers)
		problem("process %d (pid %d): %d threads in %s, expected %d (%d not recorded, e.g. %d)", k,
			(int)p->pid, count, path, p->n, strangers, (int)stranger);
}

/* After the trigger, before CHECK: the tree seen from outside. */
static void outside_view(void)
{
	check_tasks(0);
	for (int k = 1; k < g_ctl->nproc; k++) {
		struct pstat ps;
		int rc = read_stat(g_ps[k].pid, 0, &ps);
		if (rc || ps.state == 'Z' || ps.state == 'X') {
			problem("process %d (pid %d) is gone (state %c)", k, (int)g_ps[k].pid, rc ? '?' : ps.state);
			continue;
		}
		if (ps.ppid != g_ctl->root)
			problem("process %d (pid %d): parent %d, expected the root %d", k, (int)g_ps[k].pid,
				(int)ps.ppid, (int)g_ctl->root);
		check_tasks(k);
	}
}

/* Waits (by the clock) for every thread's answer and every child's own check. */
static void collect_answers(void)
{
	uint64_t deadline = mono_ns() + ANSWER_TIMEOUT_NS;
	for (;;) {
		int all = 1;
		for (int i = 0; i < g_ctl->nthreads && all; i++)
			all = LOAD(&g_ts[i].answer) != ANS_NONE;
		for (int k = 1; k < g_ctl->nproc && all; k++)
			all = LOAD(&g_ps[k].check) != PCHK_NONE;
		if (all || mono_ns() >= deadline)
			break;
		sleep_ns(MS);
	}
	for (int k = 0; k < g_ctl->nproc; k++) {
		struct pslot *p = &g_ps[k];
		if (k > 0) {
			switch (LOAD(&p->check)) {
			case PCHK_OK:
				break;
			case PCHK_NONE:
				problem("process %d (pid %d) did not answer within %llu s", k, (int)p->pid,
					(unsigned long long)(ANSWER_TIMEOUT_NS / 1000000000ULL));
				break;
			case PCHK_BAD_SUM:
				problem("process %d (pid %d): touched shared page at offset %llu changed", k, (int)p->pid,
					(unsigned long long)p->off[p->bad_touch]);
				break;
			case PCHK_BAD_TOKEN:
				problem("process %d (pid %d): does not see the root's write at shared offset %llu "
					"(got %#llx): the region is not shared any more",
					k, (int)p->pid, (unsigned long long)p->off[0], (unsigned long long)p->token_seen);
				break;
			case PCHK_BAD_PPID:
				problem("process %d (pid %d): getppid() is not the root", k, (int)p->pid);
				break;
			default:
				problem("process %d (pid %d): bad check code", k, (int)p->pid);
			}
		}
		for (int i = p->first; i < p->first + p->n; i++) {
			int a = LOAD(&g_ts[i].answer);
			if (a == ANS_OK)
				continue;
			if (a == ANS_NONE)
				problem("thread %d of process %d (pid %d tid %d) did not answer", i - p->first, k,
					(int)g_ts[i].pid, (int)g_ts[i].tid);
			else
				problem("thread %d of process %d (pid %d tid %d): %s changed", i - p->first, k,
					(int)g_ts[i].pid, (int)g_ts[i].tid, a == ANS_BAD_TID ? "gettid()" : "getpid()");
		}
	}
}

static void reap_children(void)
{
	uint64_t deadline = mono_ns() + REAP_TIMEOUT_NS;
	int left;
	do {
		left = 0;
		for (int k = 1; k < g_ctl->nproc; k++) {
			if (g_kids[k] <= 0)
				continue;
			int st = 0;
			pid_t r = waitpid(g_kids[k], &st, WNOHANG);
			if (r == g_kids[k]) {
				g_kids[k] = 0;
				if (!WIFEXITED(st) || WEXITSTATUS(st) != EXIT_OK)
					problem("process %d (pid %d) ended with status %#x (exit %d, signal %d), expected exit 0",
						k, (int)r, st, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
						WIFSIGNALED(st) ? WTERMSIG(st) : 0);
			} else if (r < 0 && errno != EINTR) {
				problem("process %d (pid %d): waitpid: %s", k, (int)g_kids[k], strerror(errno));
				g_kids[k] = 0;
			} else {
				left++;
			}
		}
		if (left)
			sleep_ns(MS);
	} while (left && mono_ns() < deadline);
	if (left) {
		int killed = kill_leftovers();
		problem("%d processes did not exit within %llu s after LEAVE (killed)", killed,
			(unsigned long long)(REAP_TIMEOUT_NS / 1000000000ULL));
	}
}

static int usage(void)
{
	say("usage: bench_tree [NPROC [NTHREADS_TOTAL [SHARED_MIB]]]   (defaults %d %d %d; "
	    "NPROC <= %d, NPROC <= NTHREADS_TOTAL <= %d, SHARED_MIB pages >= NPROC)",
	    DEF_NPROC, DEF_NTHREADS, DEF_SHARED_MIB, MAX_PROCS, MAX_THREADS);
	return 64;
}

int main(int argc, char **argv)
{
	unsigned long nproc = DEF_NPROC, nthreads = DEF_NTHREADS, mib = DEF_SHARED_MIB;
	if (argc > 4 || (argc > 1 && parse_num(argv[1], MAX_PROCS, &nproc)) ||
	    (argc > 2 && parse_num(argv[2], MAX_THREADS, &nthreads)) ||
	    (argc > 3 && parse_num(argv[3], MAX_SHARED_MIB, &mib)))
		return usage();
	g_len = mib * MIB;
	if (nthreads < nproc || g_len / PAGE < nproc)
		return usage();

	/* The shared memory, filled before the first fork. */
	g_mem = map_shared(g_len, "shared memory");
	size_t rand_len = pattern_rand_len(g_len), text_len = g_len - rand_len;
	uint64_t t0 = mono_ns();
	pattern_fill((char *)g_mem, g_len);
	say("filled %lu MiB of shared memory (%zu random bytes, %zu text bytes) in %.3f s", mib, rand_len, text_len,
	    (double)(mono_ns() - t0) / 1e9);

	/* The control region: header, process slots, thread slots. */
	size_t ps_off = (sizeof(struct ctl) + 63) & ~(size_t)63;
	size_t ts_off = ps_off + nproc * sizeof(struct pslot);
	size_t ctl_len = (ts_off + nthreads * sizeof(struct tslot) + PAGE - 1) & ~(PAGE - 1);
	char *c = map_shared(ctl_len, "control region");
	g_ctl = (struct ctl *)c;
	g_ps = (struct pslot *)(c + ps_off);
	g_ts = (struct tslot *)(c + ts_off);
	g_ctl->root = getpid();
	g_ctl->nproc = (int)nproc;
	g_ctl->nthreads = (int)nthreads;
	int base = (int)(nthreads / nproc), extra = (int)(nthreads % nproc);
	for (int k = 0, first = 0; k < (int)nproc; k++) {
		g_ps[k].first = first;
		g_ps[k].n = base + (k < extra);
		first += g_ps[k].n;
	}
	g_ps[0].pid = getpid();

	/* SIGUSR2 caught, but blocked everywhere except in the root's main thread
	 * while it polls (children and threads inherit the blocked mask). */
	if (set_handler(SIGUSR2, on_trigger) != 0) {
		say("FAIL setup: sigaction: %s", strerror(errno));
		return 1;
	}
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL);

	t0 = mono_ns();
	for (int k = 1; k < (int)nproc; k++) {
		pid_t pid = fork();
		if (pid < 0)
			setup_fail("fork of process %d: %s", k, strerror(errno));
		if (pid == 0)
			child_main(k);
		g_kids[k] = pid;
	}
	pthread_t *th = calloc((size_t)g_ps[0].n, sizeof *th);
	struct targ *args = calloc((size_t)g_ps[0].n, sizeof *args);
	if (!th || !args)
		setup_fail("calloc");
	int err = 0;
	int started = start_threads(0, g_ps[0].n, 0, th, args, &err);
	if (err)
		setup_fail("root: pthread_create: %s", strerror(err));
	g_ts[0].pid = getpid();
	g_ts[0].tid = gettid();
	STORE(&g_ts[0].ready, 1);
	STORE(&g_ps[0].ready, 1);
	wait_ready();
	wait_sleeping();
	say("tree: %lu processes, %lu threads (%d to %d per process), %lu MiB shared, root %d, set up in %.3f s", nproc,
	    nthreads, base, base + (extra > 0), mib, (int)getpid(), (double)(mono_ns() - t0) / 1e9);
	say("READY");

	/* The trigger: polled, counted in steps (the clock may jump across a migration). */
	sigprocmask(SIG_UNBLOCK, &usr2, NULL);
	const struct timespec step = ns_to_ts(TRIGGER_STEP_NS);
	for (uint64_t n = 0; !g_triggered; n++) {
		if (n >= WAIT_MAX_NS / TRIGGER_STEP_NS) {
			set_phase(PH_LEAVE);
			join_threads(th, started);
			reap_children();
			say("FAIL no SIGUSR2 within %llu s", (unsigned long long)(WAIT_MAX_NS / 1000000000ULL));
			return 1;
		}
		nanosleep(&step, NULL); /* SIGUSR2 ends it at once */
	}
	sigprocmask(SIG_BLOCK, &usr2, NULL);

	/* 1. Every byte of the shared memory. */
	t0 = mono_ns();
	size_t bad = pattern_check((const char *)g_mem, g_len);
	if (bad != (size_t)-1) {
		/* The verdict is "FAIL <offset>" (as bench_mem's) when this is the first problem. */
		if (g_problems++ == 0)
			snprintf(g_first_problem, sizeof g_first_problem, "%zu", bad);
		say("not ok - shared memory: first difference at byte offset %zu (%s half)", bad,
		    bad < rand_len ? "random" : "text");
	} else
		say("verified %zu bytes of shared memory in %.3f s", g_len, (double)(mono_ns() - t0) / 1e9);

	/* 2. The tree from outside. */
	outside_view();

	/* 3. Tokens (only now: the bytes were verified), then every task answers. */
	t0 = mono_ns();
	uint64_t token = (mono_ns() * 0x9E3779B97F4A7C15ULL) | 1;
	STORE(&g_ctl->token, token);
	for (int k = 1; k < (int)nproc; k++) {
		uint64_t v = token ^ ((uint64_t)k * TOKEN_MIX);
		memcpy(g_mem + g_ps[k].off[0], &v, sizeof v);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	set_phase(PH_CHECK);
	answer(0);
	collect_answers();

	/* 4. Everybody leaves. */
	set_phase(PH_LEAVE);
	int unjoined = join_threads(th, started);
	if (unjoined)
		problem("root: %d of its threads did not finish", unjoined);
	reap_children();
	if (!g_problems)
		say("checked %lu processes and %lu threads, all exited, in %.3f s", nproc, nthreads,
		    (double)(mono_ns() - t0) / 1e9);

	if (g_problems) {
		say("FAIL %s", g_first_problem);
		return 1;
	}
	say("PASS");
	return 0;
}
