/*
 * t_threads: every thread of a multi-threaded process must come back with
 * its own state after checkpoint/restore.
 *
 * Six threads (main included), each with its own TID, __thread values,
 * thread name, blocked signal mask, rseq area and robust-list head; the
 * "sleep" thread also has a private sigaltstack and two queued RT signals
 * with payloads pending to it alone, the "join" thread a pending SIGALRM
 * sent with tgkill. When READY is printed the five other threads are
 * blocked in the kernel:
 *   cond   pthread_cond_wait() with a predicate (errorcheck mutex)
 *   sem    sem_wait() on an unnamed semaphore
 *   futex  raw FUTEX_WAIT on a word, no timeout
 *   sleep  a loop of 30 ms nanosleeps polling a stop word
 *   join   pthread_join() on the sleep thread (needs clear_child_tid)
 * Only the main thread does not block SIGUSR2, so the trigger lands there.
 *
 * After the trigger the main thread checks its own state, the TID list in
 * /proc/self/task and each blocked thread's kernel state from the outside
 * (/proc/self/task/TID/{status,comm,syscall}, get_robust_list(TID)), then
 * wakes the threads one by one with a fresh sequence token (predicate +
 * pthread_cond_signal, sem_post, FUTEX_WAKE, stop word). Each woken thread
 * checks it left its wait only because of that action, then checks its
 * TID, TLS, thread pointer / FS base, mask, pending signals (consuming
 * them with sigtimedwait), sigaltstack, rseq, robust list, name, a pattern
 * in a local array on its stack and a few register-held locals, and
 * stores the results; the main thread prints them in a fixed order.
 * Every wait in the main thread has a timeout, so a broken restore gives
 * FAIL, not a hang.
 *
 * The main thread waits for the trigger by polling with short nanosleeps
 * (like t_signals) so no blocked mask is ever temporarily replaced.
 */
#define MAX_RESULTS 48
#define RESULT_NAME_LEN 128
#define RESULT_DETAIL_LEN 384
#include "results.h"

#include <dirent.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/prctl.h>
#ifdef __x86_64__
#include <asm/prctl.h>
#endif

#define STACK_WORDS 512
#define TLS_WORDS 8
#define ALTSTACK_SIZE (64 * 1024)
#define SLEEP_NS 30000000L           /* one step of the sleep thread */
#define WAKE_TIMEOUT_NS 5000000000ULL /* per wait of the main thread */
#define POST_BUDGET_NS 10000000000ULL /* all waits after the trigger */
#define SETUP_TIMEOUT_NS 5000000000ULL

#define TLS_SEED 0x715ULL
#define STACK_SEED 0x57acULL
#define REG_SEED 0x4e65ULL
#define TOKEN_SEED 0x70cee1ULL
#define RT_VALUE_1 4242
#define RT_VALUE_2 4243

enum { T_MAIN, T_COND, T_SEM, T_FUTEX, T_SLEEP, T_JOIN, NTHREADS };
static const char *const tname[NTHREADS] = { "main", "cond", "sem", "futex", "sleep", "join" };

struct tinfo {
	int idx;
	const char *name;
	/* recorded by the thread itself before READY */
	pthread_t self;
	pid_t tid;
	void *tp;
	unsigned long fs, gs;
	uint64_t *tls_addr;
	void *robust_head;
	size_t robust_len;
	char comm[16];
	void *rseq_addr;
	/* expected state */
	uint64_t blocked;  /* bit n-1 = signal n */
	uint64_t pending;  /* thread-private pending */
	int has_altstack;
	stack_t altstack;
	/* handshake with the main thread (__atomic accesses) */
	int setup_done;
	int left_wait;
	int done;
	int wake_issued;
	uint64_t token; /* written by main before the wake-up action */
	uint64_t seen;  /* what the thread saw when it left its wait */
	/* wait statistics */
	unsigned long eintr, spurious, unexpected, early, iterations;
	int unexpected_err;
	struct results res; /* printed by the main thread */
};

static struct tinfo g_t[NTHREADS];
static int g_rt_private; /* SIGRTMIN+5, pending to the sleep thread */

/* wait objects */
static pthread_mutex_t g_mutex;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static uint64_t g_cond_pred;   /* under g_mutex */
static sem_t g_sem;
static uint64_t g_sem_token;
static uint32_t g_futex_word;  /* 0 while the futex thread must wait */
static uint64_t g_stop_word;   /* 0 while the sleep thread must loop */

/* signal bookkeeping */
static volatile pid_t g_trigger_tid;
static int g_stray_count, g_stray_sig, g_stray_tid;

static __thread uint64_t tls_value;
static __thread uint64_t tls_block[TLS_WORDS];
static __thread char *tls_alt_lo, *tls_alt_hi;
static __thread volatile int tls_urg_count, tls_urg_on_altstack, tls_urg_ss_flags;

static void bits_to_set(uint64_t bits, sigset_t *s)
{
	sigemptyset(s);
	for (int sig = 1; sig <= NSIG_KERNEL; sig++)
		if (bits & sig_bit(sig))
			sigaddset(s, sig);
}

/* Prints the results thread t stored ("thread NAME: ..."). */
static void report(struct tinfo *t)
{
	char who[32];
	snprintf(who, sizeof who, "thread %s", t->name);
	results_print(&t->res, who);
	if (t->res.n >= MAX_RESULTS)
		check(0, "thread result buffer large enough", "thread %s: results dropped", t->name);
}

/* ---- signal handlers ---- */

static void h_trigger(int sig)
{
	(void)sig;
	int saved = errno;
	g_trigger_tid = gettid();
	g_triggered = 1;
	errno = saved;
}

/* Any signal of the per-thread masks reaching a handler is a bug. */
static void h_stray(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	int saved = errno;
	if (__atomic_fetch_add(&g_stray_count, 1, __ATOMIC_RELAXED) == 0) {
		g_stray_sig = sig;
		g_stray_tid = gettid();
	}
	errno = saved;
}

/* SIGURG, SA_ONSTACK: used to see the thread's own alternate stack. */
static void h_urg(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	int saved = errno;
	char local;
	stack_t ss;
	tls_urg_count++;
	tls_urg_on_altstack = tls_alt_lo && &local >= tls_alt_lo && &local < tls_alt_hi;
	if (sigaltstack(NULL, &ss) == 0)
		tls_urg_ss_flags = ss.ss_flags;
	errno = saved;
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) != 0)
		die("sigaction %d", sig);
}

/* ---- small helpers ---- */

/* A hex mask field (SigBlk, SigPnd, ShdPnd) of a status file; -1 if unreadable. */
static int status_field(const char *path, const char *field, uint64_t *out)
{
	char buf[8192];
	if (read_file(path, buf, sizeof buf) < 0)
		return -1;
	return hex_field(buf, field, out);
}

static void task_path(char *buf, size_t size, pid_t tid, const char *file)
{
	snprintf(buf, size, "/proc/self/task/%d/%s", (int)tid, file);
}

/*
 * Syscall number a thread is blocked in, from /proc/self/task/TID/syscall:
 * >= 0 the number, -1 in user space, -2 running, -3 file unreadable.
 */
static long blocked_syscall(pid_t tid)
{
	char path[64], buf[512];
	task_path(path, sizeof path, tid, "syscall");
	if (read_file(path, buf, sizeof buf) <= 0)
		return -3;
	if (strncmp(buf, "running", 7) == 0)
		return -2;
	return strtol(buf, NULL, 10);
}

static int syscall_expected(int idx, long nr)
{
	if (idx == T_SLEEP) {
#ifdef SYS_nanosleep
		if (nr == SYS_nanosleep)
			return 1;
#endif
		return nr == SYS_clock_nanosleep;
	}
	return nr == SYS_futex;
}

/* Set at the trigger: no wait of the main thread goes beyond it, so the
 * verdict comes well within the harness' 20 s even when threads hang. */
static uint64_t g_post_deadline;

static uint64_t deadline_in(uint64_t timeout_ns)
{
	uint64_t now = mono_ns(), end = now + timeout_ns;
	if (g_post_deadline && end > g_post_deadline)
		end = g_post_deadline > now ? g_post_deadline : now;
	return end;
}

/* Waits (bounded) until thread idx sits in its expected syscall. */
static long wait_in_syscall(int idx, uint64_t timeout_ns)
{
	uint64_t end = deadline_in(timeout_ns);
	long nr;
	for (;;) {
		nr = blocked_syscall(g_t[idx].tid);
		if (nr == -3 || syscall_expected(idx, nr) || mono_ns() >= end)
			return nr;
		sleep_ns(1000000);
	}
}

/* Sorted TIDs in /proc/self/task; returns the count or -1. */
static int list_tasks(pid_t *out, int max)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		if (n < max)
			out[n] = (pid_t)atoi(e->d_name);
		n++;
	}
	closedir(d);
	if (n > max)
		n = max + 1; /* more than expected: caller reports a mismatch */
	else
		qsort(out, (size_t)n, sizeof *out, cmp_pid);
	return n;
}

static int get_robust(pid_t tid, void **head, size_t *len)
{
	*head = NULL;
	*len = 0;
	return (int)syscall(SYS_get_robust_list, (int)tid, head, len);
}

/* ---- per-thread setup and self-verification ---- */

static void setup_self(struct tinfo *t)
{
	t->self = pthread_self();
	t->tid = gettid();
	t->tp = __builtin_thread_pointer();
#ifdef __x86_64__
	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &t->fs) != 0 ||
	    syscall(SYS_arch_prctl, ARCH_GET_GS, &t->gs) != 0)
		die("arch_prctl(ARCH_GET_FS/GS) in thread %s", t->name);
#endif
	tls_value = pattern64(TLS_SEED, (uint64_t)t->idx);
	for (int i = 0; i < TLS_WORDS; i++)
		tls_block[i] = pattern64(TLS_SEED + 1 + (uint64_t)t->idx, (uint64_t)i);
	t->tls_addr = &tls_value;

	if (t->idx != T_MAIN) {
		/* The main thread keeps the process name (/proc/PID/comm). */
		char name[16];
		snprintf(name, sizeof name, "tt-%s", t->name);
		if (prctl(PR_SET_NAME, name) != 0)
			die("PR_SET_NAME in thread %s", t->name);
	}
	if (prctl(PR_GET_NAME, t->comm) != 0)
		die("PR_GET_NAME in thread %s", t->name);

	sigset_t mask;
	bits_to_set(t->blocked, &mask);
	if (pthread_sigmask(SIG_SETMASK, &mask, NULL) != 0)
		die("pthread_sigmask in thread %s", t->name);

	if (get_robust(0, &t->robust_head, &t->robust_len) != 0)
		die("get_robust_list in thread %s", t->name);

	if (t->has_altstack) {
		t->altstack.ss_sp = malloc(ALTSTACK_SIZE);
		t->altstack.ss_size = ALTSTACK_SIZE;
		t->altstack.ss_flags = 0;
		if (!t->altstack.ss_sp || sigaltstack(&t->altstack, NULL) != 0)
			die("sigaltstack in thread %s", t->name);
		tls_alt_lo = t->altstack.ss_sp;
		tls_alt_hi = tls_alt_lo + ALTSTACK_SIZE;
	}
	t->rseq_addr = rseq_area();
}

/* Consume one thread-directed pending signal and check its siginfo. */
static void take_pending(struct tinfo *t, int sig, const char *what, int code, int value)
{
	char how[160], w[128];
	int rc = take_expected(sig, code, value, how, sizeof how);
	snprintf(w, sizeof w, "%.100s: siginfo", what);
	if (tcheck(t, rc >= 0, what, "%s", how))
		tcheck(t, rc == 1, w, "%s", how);
}

static void verify_rseq(struct tinfo *t)
{
	if (__rseq_size == 0) {
		tcheck(t, 1, "rseq not registered by glibc (skipped)", "-");
		return;
	}
	struct rseq *r = rseq_area();
	tcheck(t, (void *)r == t->rseq_addr, "rseq area address (thread pointer + __rseq_offset)",
	       "expected %p, got %p", t->rseq_addr, (void *)r);
	tcheck(t, (int32_t)r->cpu_id >= 0, "rseq cpu_id valid", "cpu_id %d", (int32_t)r->cpu_id);
	errno = 0;
	long rc = syscall(SYS_rseq, r, RSEQ_LEN, 0, RSEQ_SIG);
	int err = errno;
	tcheck(t, rc == -1 && err == EBUSY,
	       "rseq still registered at this thread's area (re-register: EBUSY)",
	       "rseq() returned %ld errno %s (EINVAL: other area/length, EPERM: other signature, "
	       "success: nothing was registered)", rc, strerror(err));
	/* The kernel rewrites cpu_id when it delivers a signal to this task;
	 * the SIGURG handler also shows which stack it ran on. */
	r->cpu_id = 0xdead0000u;
	int before = tls_urg_count;
	syscall(SYS_tgkill, getpid(), gettid(), SIGURG);
	tcheck(t, tls_urg_count == before + 1, "thread-directed SIGURG handled by this thread",
	       "handler count %d -> %d", before, tls_urg_count);
	tcheck(t, r->cpu_id < 0x10000u, "kernel updates this thread's rseq area (cpu_id rewritten)",
	       "cpu_id still %#x", r->cpu_id);
	if (t->has_altstack)
		tcheck(t, tls_urg_on_altstack && (tls_urg_ss_flags & SS_ONSTACK),
		       "SA_ONSTACK handler ran on this thread's alternate stack",
		       "on altstack %d, ss_flags %#x", tls_urg_on_altstack, tls_urg_ss_flags);
	else
		tcheck(t, !tls_urg_on_altstack && tls_urg_ss_flags == SS_DISABLE,
		       "SA_ONSTACK handler ran on the normal stack (no alternate stack)",
		       "on altstack %d, ss_flags %#x", tls_urg_on_altstack, tls_urg_ss_flags);
}

static void verify_self(struct tinfo *t)
{
	pid_t tid = gettid();
	long stid = syscall(SYS_gettid);
	tcheck(t, tid == t->tid && stid == t->tid, "gettid() unchanged", "expected %d, got %d / %ld",
	       t->tid, tid, stid);
	tcheck(t, pthread_equal(pthread_self(), t->self), "pthread_self() unchanged",
	       "expected %#lx, got %#lx", (unsigned long)t->self, (unsigned long)pthread_self());

	/* TLS */
	tcheck(t, __builtin_thread_pointer() == t->tp, "thread pointer unchanged", "expected %p, got %p",
	       t->tp, __builtin_thread_pointer());
#ifdef __x86_64__
	{
		unsigned long fs = 0, gs = 0;
		syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
		syscall(SYS_arch_prctl, ARCH_GET_GS, &gs);
		tcheck(t, fs == t->fs && fs == (unsigned long)t->tp, "FS base unchanged (ARCH_GET_FS)",
		       "expected %#lx, got %#lx", t->fs, fs);
		tcheck(t, gs == t->gs, "GS base unchanged (ARCH_GET_GS)", "expected %#lx, got %#lx", t->gs,
		       gs);
	}
#endif
	{
		uint64_t want = pattern64(TLS_SEED, (uint64_t)t->idx);
		tcheck(t, &tls_value == t->tls_addr && tls_value == want,
		       "__thread variable: same address, this thread's value",
		       "expected %p = %#llx, got %p = %#llx", (void *)t->tls_addr, (unsigned long long)want,
		       (void *)&tls_value, (unsigned long long)tls_value);
		int bad = -1;
		for (int i = 0; i < TLS_WORDS && bad < 0; i++)
			if (tls_block[i] != pattern64(TLS_SEED + 1 + (uint64_t)t->idx, (uint64_t)i))
				bad = i;
		tcheck(t, bad < 0, "__thread array holds this thread's pattern", "word %d differs", bad);
	}

	/* name */
	{
		char comm[16] = "";
		prctl(PR_GET_NAME, comm);
		tcheck(t, strcmp(comm, t->comm) == 0, "thread name unchanged (PR_GET_NAME)",
		       "expected '%s', got '%s'", t->comm, comm);
	}

	/* blocked mask and pending signals */
	{
		sigset_t cur;
		pthread_sigmask(SIG_BLOCK, NULL, &cur);
		tcheck(t, sigset_bits(&cur) == t->blocked, "blocked mask (pthread_sigmask)",
		       "expected %#llx, got %#llx", (unsigned long long)t->blocked,
		       (unsigned long long)sigset_bits(&cur));
		sigset_t pend;
		sigpending(&pend);
		tcheck(t, sigset_bits(&pend) == t->pending, "sigpending() of this thread",
		       "expected %#llx, got %#llx", (unsigned long long)t->pending,
		       (unsigned long long)sigset_bits(&pend));
		uint64_t prv = 0, shd = 0;
		int rc = status_field("/proc/thread-self/status", "SigPnd", &prv) |
			 status_field("/proc/thread-self/status", "ShdPnd", &shd);
		tcheck(t, rc == 0 && prv == t->pending && shd == 0,
		       "pending only in this thread's private queue (/proc/thread-self/status)",
		       "expected SigPnd %#llx ShdPnd 0, got SigPnd %#llx ShdPnd %#llx (read rc %d)",
		       (unsigned long long)t->pending, (unsigned long long)prv, (unsigned long long)shd, rc);
		if (t->idx == T_SLEEP) {
			take_pending(t, g_rt_private, "queued SIGRTMIN+5 #1 (pthread_sigqueue, value 4242)",
				     SI_QUEUE, RT_VALUE_1);
			take_pending(t, g_rt_private, "queued SIGRTMIN+5 #2 (pthread_sigqueue, value 4243)",
				     SI_QUEUE, RT_VALUE_2);
		}
		if (t->idx == T_JOIN)
			take_pending(t, SIGALRM, "thread-directed SIGALRM (tgkill)", SI_TKILL, 0);
		sigpending(&pend);
		tcheck(t, sigset_bits(&pend) == 0, "nothing pending after consuming", "pending %#llx",
		       (unsigned long long)sigset_bits(&pend));
	}

	/* sigaltstack */
	{
		stack_t ss;
		memset(&ss, 0, sizeof ss);
		sigaltstack(NULL, &ss);
		if (t->has_altstack)
			tcheck(t, ss.ss_sp == t->altstack.ss_sp && ss.ss_size == t->altstack.ss_size &&
				  ss.ss_flags == 0,
			       "own sigaltstack (sp, size, flags)", "expected %p/%zu/0, got %p/%zu/%#x",
			       t->altstack.ss_sp, t->altstack.ss_size, ss.ss_sp, ss.ss_size,
			       (unsigned)ss.ss_flags);
		else
			tcheck(t, ss.ss_flags == SS_DISABLE, "no sigaltstack (SS_DISABLE)",
			       "got sp %p size %zu flags %#x", ss.ss_sp, ss.ss_size, (unsigned)ss.ss_flags);
	}

	/* robust futex list head */
	{
		void *head;
		size_t len;
		int rc = get_robust(0, &head, &len);
		tcheck(t, rc == 0 && head == t->robust_head && len == t->robust_len,
		       "robust futex list head unchanged (get_robust_list)",
		       "expected %p/%zu, got rc %d %p/%zu", t->robust_head, t->robust_len, rc, head, len);
	}

	verify_rseq(t);
}

/* Stack pattern and register-held locals, checked after the wait. */
static void fill_stack(volatile uint64_t *a, int idx)
{
	for (int i = 0; i < STACK_WORDS; i++)
		a[i] = pattern64(STACK_SEED + (uint64_t)idx, (uint64_t)i);
}

static int stack_bad(volatile uint64_t *a, int idx)
{
	for (int i = 0; i < STACK_WORDS; i++)
		if (a[i] != pattern64(STACK_SEED + (uint64_t)idx, (uint64_t)i))
			return i;
	return -1;
}

/* The thread has left its wait, having seen `seen`: the main thread's token. */
static void after_wake(struct tinfo *t, uint64_t seen)
{
	t->seen = seen;
	__atomic_store_n(&t->left_wait, 1, __ATOMIC_RELEASE);
	int issued = __atomic_load_n(&t->wake_issued, __ATOMIC_ACQUIRE);
	tcheck(t, issued, "left its wait only after the main thread's wake-up",
	       "left it before (saw %#llx)", (unsigned long long)t->seen);
	tcheck(t, issued && t->seen == t->token, "woken by the main thread's action (sequence token)",
	       "saw %#llx, expected %#llx", (unsigned long long)t->seen, (unsigned long long)t->token);
}

/* The wait's call returned nothing but what it may (t->unexpected counts the rest). */
static void check_returns(struct tinfo *t, const char *what)
{
	tcheck(t, t->unexpected == 0, what, "%lu unexpected returns, first errno %d (%s)", t->unexpected,
	       t->unexpected_err, strerror(t->unexpected_err));
}

/* ---- the wait of each thread ---- */

static void wait_cond(struct tinfo *t)
{
	int rc = pthread_mutex_lock(&g_mutex);
	if (rc != 0) {
		t->unexpected++;
		t->unexpected_err = rc;
	}
	__atomic_store_n(&t->setup_done, 1, __ATOMIC_RELEASE);
	while (g_cond_pred == 0) {
		rc = pthread_cond_wait(&g_cond, &g_mutex);
		if (rc != 0) {
			t->unexpected++;
			t->unexpected_err = rc;
			break;
		}
		if (g_cond_pred == 0)
			t->spurious++; /* allowed by POSIX, reported only */
	}
	after_wake(t, g_cond_pred);
	tcheck(t, t->unexpected == 0, "pthread_mutex_lock/pthread_cond_wait returned 0",
	       "error %d (%s)", t->unexpected_err, strerror(t->unexpected_err));
	/* Errorcheck mutex: unlock succeeds only for the owner. */
	rc = pthread_mutex_unlock(&g_mutex);
	tcheck(t, rc == 0, "holds the mutex after pthread_cond_wait (errorcheck unlock)", "unlock: %s",
	       strerror(rc));
}

static void wait_sem(struct tinfo *t)
{
	__atomic_store_n(&t->setup_done, 1, __ATOMIC_RELEASE);
	for (;;) {
		if (sem_wait(&g_sem) == 0)
			break;
		if (errno == EINTR) {
			t->eintr++;
			continue;
		}
		t->unexpected++;
		t->unexpected_err = errno;
		break;
	}
	after_wake(t, __atomic_load_n(&g_sem_token, __ATOMIC_ACQUIRE));
	tcheck(t, t->unexpected == 0, "sem_wait returned only 0 or EINTR", "errno %d (%s)",
	       t->unexpected_err, strerror(t->unexpected_err));
	int v = -1;
	sem_getvalue(&g_sem, &v);
	tcheck(t, v == 0, "semaphore consumed exactly one post (value 0)", "value %d", v);
}

static void wait_futex(struct tinfo *t)
{
	__atomic_store_n(&t->setup_done, 1, __ATOMIC_RELEASE);
	uint32_t w;
	while ((w = __atomic_load_n(&g_futex_word, __ATOMIC_ACQUIRE)) == 0) {
		long rc = syscall(SYS_futex, &g_futex_word, FUTEX_WAIT, 0, NULL, NULL, 0);
		int err = errno;
		if (rc == 0) {
			/* The kernel retries internally: 0 means a FUTEX_WAKE. */
			if (__atomic_load_n(&g_futex_word, __ATOMIC_ACQUIRE) == 0)
				t->spurious++;
		} else if (err == EINTR) {
			t->eintr++;
		} else if (err != EAGAIN) { /* EAGAIN: the word already changed */
			if (!t->unexpected++)
				t->unexpected_err = err;
			if (t->unexpected > 1000)
				break;
		}
	}
	after_wake(t, w);
	check_returns(t, "FUTEX_WAIT returned only 0, EAGAIN or EINTR");
	tcheck(t, t->spurious == 0, "FUTEX_WAIT never returned 0 while the word was unchanged",
	       "%lu spurious wakeups", t->spurious);
}

static void wait_sleep(struct tinfo *t)
{
	__atomic_store_n(&t->setup_done, 1, __ATOMIC_RELEASE);
	uint64_t w;
	while ((w = __atomic_load_n(&g_stop_word, __ATOMIC_ACQUIRE)) == 0) {
		uint64_t start = mono_ns();
		int err = nanosleep_whole(ns_to_ts(SLEEP_NS), &t->eintr);
		if (err && !t->unexpected++)
			t->unexpected_err = err;
		if (mono_ns() - start < (uint64_t)SLEEP_NS)
			t->early++;
		__atomic_add_fetch(&t->iterations, 1, __ATOMIC_RELEASE);
	}
	after_wake(t, w);
	check_returns(t, "nanosleep returned only 0 or EINTR");
	tcheck(t, t->early == 0, "no nanosleep ended before its duration", "%lu early wakeups",
	       t->early);
}

static void wait_join(struct tinfo *t)
{
	__atomic_store_n(&t->setup_done, 1, __ATOMIC_RELEASE);
	void *ret = NULL;
	int rc = pthread_join(g_t[T_SLEEP].self, &ret);
	struct tinfo *s = &g_t[T_SLEEP];
	after_wake(t, rc == 0 && ret == s ? __atomic_load_n(&s->seen, __ATOMIC_ACQUIRE) : 0);
	tcheck(t, rc == 0 && ret == s, "pthread_join(sleep thread) returned its value",
	       "rc %d (%s), value %p, expected %p", rc, strerror(rc), ret, (void *)s);
	tcheck(t, __atomic_load_n(&s->done, __ATOMIC_ACQUIRE),
	       "joined thread had finished when pthread_join returned", "it had not");
}

static void (*const wait_fn[NTHREADS])(struct tinfo *) = {
	NULL, wait_cond, wait_sem, wait_futex, wait_sleep, wait_join,
};

static void *thread_main(void *arg)
{
	struct tinfo *t = arg;
	volatile uint64_t stackpat[STACK_WORDS];
	fill_stack(stackpat, t->idx);
	uint64_t r1 = pattern64(REG_SEED, (uint64_t)t->idx), r2 = r1 ^ 0x5555aaaa5555aaaaULL,
		 r3 = r1 * 3 + (uint64_t)t->idx, r4 = ~r1;
	/* Make the compiler forget the values: they live across the wait. */
	__asm__ volatile("" : "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4));
	setup_self(t);
	wait_fn[t->idx](t); /* sets setup_done, then blocks */
	int bad = stack_bad(stackpat, t->idx);
	tcheck(t, bad < 0, "pattern in a local array on its stack intact", "word %d differs", bad);
	uint64_t e1 = pattern64(REG_SEED, (uint64_t)t->idx);
	tcheck(t, r1 == e1 && r2 == (e1 ^ 0x5555aaaa5555aaaaULL) && r3 == e1 * 3 + (uint64_t)t->idx &&
		  r4 == ~e1,
	       "locals live across the wait intact", "got %#llx %#llx %#llx %#llx",
	       (unsigned long long)r1, (unsigned long long)r2, (unsigned long long)r3,
	       (unsigned long long)r4);
	verify_self(t);
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return t;
}

/* ---- main thread ---- */

static int wait_flag(int *flag, uint64_t timeout_ns)
{
	uint64_t end = deadline_in(timeout_ns);
	for (;;) {
		if (__atomic_load_n(flag, __ATOMIC_ACQUIRE))
			return 1;
		if (mono_ns() >= end)
			return 0;
		sleep_ns(1000000);
	}
}

static uint64_t g_seq;

/* Sets a fresh token for thread idx and marks its wake-up as issued. */
static uint64_t issue_wake(int idx)
{
	struct tinfo *t = &g_t[idx];
	char what[128];
	snprintf(what, sizeof what, "thread %s still in its wait right before its wake-up", t->name);
	check(!__atomic_load_n(&t->left_wait, __ATOMIC_ACQUIRE), what, "it had already left it");
	uint64_t token = pattern64(TOKEN_SEED, ++g_seq) | 1;
	if (idx == T_FUTEX)
		token = (uint32_t)token | 1;
	t->token = token;
	__atomic_store_n(&t->wake_issued, 1, __ATOMIC_RELEASE);
	return token;
}

/* Waits for thread idx to finish its checks; prints them. */
static int collect(int idx)
{
	struct tinfo *t = &g_t[idx];
	char what[128];
	snprintf(what, sizeof what, "thread %s woke and finished its checks", t->name);
	int ok = wait_flag(&t->done, WAKE_TIMEOUT_NS);
	check(ok, what, "not done after the timeout (left its wait: %d)",
	      __atomic_load_n(&t->left_wait, __ATOMIC_ACQUIRE));
	if (ok) {
		report(t);
		if (t->eintr || t->spurious)
			say("# thread %s: %lu EINTR returns, %lu returns with the predicate unchanged",
			    t->name, t->eintr, t->spurious);
	}
	return ok;
}

/* What the main thread sees of a still-blocked thread from outside. */
static void check_from_outside(int idx)
{
	struct tinfo *t = &g_t[idx];
	char path[64], what[128];
	uint64_t blk = 0, pnd = 0, shd = 0;
	task_path(path, sizeof path, t->tid, "status");
	int rc = status_field(path, "SigBlk", &blk) | status_field(path, "SigPnd", &pnd) |
		 status_field(path, "ShdPnd", &shd);
	snprintf(what, sizeof what, "thread %s: SigBlk in /proc/self/task/TID/status", t->name);
	check(rc == 0 && blk == t->blocked, what, "expected %#llx, got %#llx (read rc %d)",
	      (unsigned long long)t->blocked, (unsigned long long)blk, rc);
	snprintf(what, sizeof what, "thread %s: SigPnd (thread-private pending) in its status",
		 t->name);
	check(rc == 0 && pnd == t->pending, what, "expected %#llx, got %#llx",
	      (unsigned long long)t->pending, (unsigned long long)pnd);
	snprintf(what, sizeof what, "thread %s: ShdPnd (process-wide pending) empty", t->name);
	check(rc == 0 && shd == 0, what, "got %#llx", (unsigned long long)shd);

	char comm[64] = "";
	task_path(path, sizeof path, t->tid, "comm");
	read_line(path, comm, sizeof comm);
	snprintf(what, sizeof what, "thread %s: name in /proc/self/task/TID/comm", t->name);
	check(strcmp(comm, t->comm) == 0, what, "expected '%s', got '%s'", t->comm, comm);

	void *head;
	size_t len;
	int r = get_robust(t->tid, &head, &len);
	snprintf(what, sizeof what, "thread %s: robust list head via get_robust_list(TID)", t->name);
	check(r == 0 && head == t->robust_head && len == t->robust_len, what,
	      "expected %p/%zu, got rc %d %p/%zu", t->robust_head, t->robust_len, r, head, len);

	long nr = wait_in_syscall(idx, 1000000000ULL);
	if (nr != -3) {
		snprintf(what, sizeof what, "thread %s: blocked in %s (/proc/self/task/TID/syscall)",
			 t->name, idx == T_SLEEP ? "nanosleep" : "futex");
		check(syscall_expected(idx, nr), what, "syscall %ld (-1: user space, -2: running)", nr);
	}
	snprintf(what, sizeof what, "thread %s: has not left its wait before the wake-up", t->name);
	check(!__atomic_load_n(&t->left_wait, __ATOMIC_ACQUIRE), what, "it left it early (saw %#llx)",
	      (unsigned long long)t->seen);
}

static void check_task_list(const char *what, const pid_t *want, int nwant)
{
	pid_t sorted[NTHREADS], got[NTHREADS + 1];
	memcpy(sorted, want, sizeof(pid_t) * (size_t)nwant);
	qsort(sorted, (size_t)nwant, sizeof *sorted, cmp_pid);
	int n = -1;
	/* A thread's /proc entry goes away a moment after pthread_join returns. */
	for (int tries = 0; tries < 100; tries++) {
		n = list_tasks(got, NTHREADS);
		if (n == nwant && memcmp(got, sorted, sizeof(pid_t) * (size_t)nwant) == 0)
			break;
		sleep_ns(10000000);
	}
	char a[256], b[256];
	fmt_pids(a, sizeof a, sorted, nwant);
	fmt_pids(b, sizeof b, got, n < 0 ? 0 : n > NTHREADS ? NTHREADS : n);
	check(n == nwant && memcmp(got, sorted, sizeof(pid_t) * (size_t)nwant) == 0, what,
	      "expected [%s], got %d entries [%s%s]", a, n, b, n > NTHREADS ? ",..." : "");
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: %s WORKDIR", argv[0]);
	pid_t pid = getpid();
	g_rt_private = SIGRTMIN + 5;

	/* Per-thread masks: all different, SIGUSR2 blocked everywhere but in main. */
	static const int base[NTHREADS][3] = {
		[T_MAIN] = { SIGUSR1, 0, 0 },
		[T_COND] = { SIGWINCH, 0, 0 },
		[T_SEM] = { SIGPROF, 0, 0 },
		[T_FUTEX] = { SIGVTALRM, SIGPWR, 0 },
		[T_SLEEP] = { SIGIO, 0, 0 },
		[T_JOIN] = { SIGALRM, SIGXCPU, 0 },
	};
	static const int rt[NTHREADS][2] = {
		[T_MAIN] = { 1, -1 }, [T_COND] = { 2, -1 }, [T_SEM] = { 3, 8 },
		[T_FUTEX] = { 4, -1 }, [T_SLEEP] = { 5, 6 }, [T_JOIN] = { 7, 30 },
	};
	uint64_t all_used = 0;
	for (int i = 0; i < NTHREADS; i++) {
		struct tinfo *t = &g_t[i];
		t->idx = i;
		t->name = tname[i];
		for (int k = 0; k < 3 && base[i][k]; k++)
			t->blocked |= sig_bit(base[i][k]);
		for (int k = 0; k < 2 && rt[i][k] >= 0; k++)
			t->blocked |= sig_bit(SIGRTMIN + rt[i][k]);
		if (i != T_MAIN)
			t->blocked |= sig_bit(SIGUSR2);
		all_used |= t->blocked;
	}
	g_t[T_SLEEP].pending = sig_bit(g_rt_private);
	g_t[T_JOIN].pending = sig_bit(SIGALRM);
	g_t[T_SLEEP].has_altstack = 1;
	if (!(g_t[T_SLEEP].blocked & sig_bit(g_rt_private)) || SIGRTMIN + 30 != SIGRTMAX)
		die("signal layout");

	/* Handlers: trigger, SIGURG (on the alternate stack), stray catchers. */
	if (set_handler(SIGUSR2, h_trigger) != 0)
		die("sigaction(SIGUSR2)");
	install(SIGURG, h_urg, SA_ONSTACK | SA_RESTART);
	for (int sig = 1; sig <= NSIG_KERNEL; sig++)
		if ((all_used & sig_bit(sig)) && sig != SIGUSR2)
			install(sig, h_stray, SA_RESTART);

	/* Wait objects. */
	{
		pthread_mutexattr_t ma;
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
		if (pthread_mutex_init(&g_mutex, &ma) != 0)
			die("pthread_mutex_init");
		pthread_mutexattr_destroy(&ma);
		if (sem_init(&g_sem, 0, 0) != 0)
			die("sem_init");
	}

	/* New threads start with everything blocked and then set their own mask. */
	sigset_t all;
	sigfillset(&all);
	if (pthread_sigmask(SIG_SETMASK, &all, NULL) != 0)
		die("pthread_sigmask");
	for (int i = 1; i < NTHREADS; i++) {
		pthread_t th;
		int rc = pthread_create(&th, NULL, thread_main, &g_t[i]);
		if (rc != 0) {
			errno = rc;
			die("pthread_create %s", tname[i]);
		}
		/* The join thread needs the sleep thread's handle. */
		if (!wait_flag(&g_t[i].setup_done, SETUP_TIMEOUT_NS))
			die("thread %s did not finish its setup", tname[i]);
	}

	volatile uint64_t stackpat[STACK_WORDS];
	fill_stack(stackpat, T_MAIN);
	struct tinfo *m = &g_t[T_MAIN];
	setup_self(m); /* sets the main thread's own mask (SIGUSR2 unblocked) */

	/* Thread-directed pending signals, blocked by their target only. */
	if (pthread_sigqueue(g_t[T_SLEEP].self, g_rt_private, (union sigval){ .sival_int = RT_VALUE_1 }) != 0 ||
	    pthread_sigqueue(g_t[T_SLEEP].self, g_rt_private, (union sigval){ .sival_int = RT_VALUE_2 }) != 0)
		die("pthread_sigqueue");
	if (syscall(SYS_tgkill, pid, g_t[T_JOIN].tid, SIGALRM) != 0)
		die("tgkill SIGALRM");

	/* Everybody must be blocked in the kernel before READY. */
	pid_t tids[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		tids[i] = g_t[i].tid;
	for (int i = 1; i < NTHREADS; i++) {
		long nr = wait_in_syscall(i, SETUP_TIMEOUT_NS);
		if (nr != -3 && !syscall_expected(i, nr))
			die("thread %s not blocked in its syscall (syscall %ld)", tname[i], nr);
		if (nr == -3) {
			/* No /proc/TID/syscall: settle for a short grace period. */
			sleep_ns(50000000);
		}
		char path[64];
		uint64_t blk, pnd, shd;
		task_path(path, sizeof path, g_t[i].tid, "status");
		if (status_field(path, "SigBlk", &blk) || status_field(path, "SigPnd", &pnd) ||
		    status_field(path, "ShdPnd", &shd))
			die("read %s", path);
		if (blk != g_t[i].blocked || pnd != g_t[i].pending || shd != 0)
			die("thread %s: SigBlk %#llx SigPnd %#llx ShdPnd %#llx, expected %#llx %#llx 0",
			    tname[i], (unsigned long long)blk, (unsigned long long)pnd,
			    (unsigned long long)shd, (unsigned long long)g_t[i].blocked,
			    (unsigned long long)g_t[i].pending);
		if (__atomic_load_n(&g_t[i].left_wait, __ATOMIC_ACQUIRE))
			die("thread %s left its wait before READY", tname[i]);
	}
	{
		pid_t got[NTHREADS + 1];
		if (list_tasks(got, NTHREADS) != NTHREADS)
			die("/proc/self/task does not list %d threads", NTHREADS);
	}
	uint64_t m1 = pattern64(REG_SEED, 0), m2 = ~m1;
	__asm__ volatile("" : "+r"(m1), "+r"(m2));

	ready();
	poll_trigger();
	g_post_deadline = mono_ns() + POST_BUDGET_NS;

	/* ---- the main thread itself ---- */
	{
		int bad = stack_bad(stackpat, T_MAIN);
		tcheck(m, bad < 0, "pattern in a local array on its stack intact", "word %d differs", bad);
		uint64_t e1 = pattern64(REG_SEED, 0);
		tcheck(m, m1 == e1 && m2 == ~e1, "locals live across the wait intact",
		       "got %#llx %#llx", (unsigned long long)m1, (unsigned long long)m2);
		tcheck(m, g_trigger_tid == m->tid,
		       "trigger SIGUSR2 handled by the main thread (the only one not blocking it)",
		       "handled by TID %d, main is %d", (int)g_trigger_tid, (int)m->tid);
		tcheck(m, getpid() == pid, "getpid() unchanged", "expected %d, got %d", pid, getpid());
		verify_self(m);
		report(m);
	}

	/* ---- the threads, seen from outside while still blocked ---- */
	check_task_list("/proc/self/task lists exactly the recorded TIDs", tids, NTHREADS);
	for (int i = 1; i < NTHREADS; i++)
		check_from_outside(i);
	{
		struct tinfo *s = &g_t[T_SLEEP];
		unsigned long it0 = __atomic_load_n(&s->iterations, __ATOMIC_ACQUIRE);
		sleep_ns(300000000);
		unsigned long n = __atomic_load_n(&s->iterations, __ATOMIC_ACQUIRE) - it0;
		check(n >= 3 && n <= 12, "thread sleep keeps looping after the trigger (300 ms)",
		      "%lu nanosleeps of 30 ms, expected about 10", n);
	}

	/* ---- wake them one by one ---- */
	{
		uint64_t token = issue_wake(T_COND);
		int rc = pthread_mutex_lock(&g_mutex);
		check(rc == 0, "main: lock the condition variable's mutex", "%s", strerror(rc));
		if (rc == 0) {
			g_cond_pred = token;
			pthread_cond_signal(&g_cond);
			pthread_mutex_unlock(&g_mutex);
		}
		collect(T_COND);
	}
	{
		uint64_t token = issue_wake(T_SEM);
		__atomic_store_n(&g_sem_token, token, __ATOMIC_RELEASE);
		check(sem_post(&g_sem) == 0, "main: sem_post", "%s", strerror(errno));
		collect(T_SEM);
	}
	{
		uint64_t token = issue_wake(T_FUTEX);
		__atomic_store_n(&g_futex_word, (uint32_t)token, __ATOMIC_RELEASE);
		long n = syscall(SYS_futex, &g_futex_word, FUTEX_WAKE, 1, NULL, NULL, 0);
		check(n == 1, "FUTEX_WAKE found the restored waiter on the word (woke 1)",
		      "returned %ld (%s)", n, n < 0 ? strerror(errno) : "no waiter queued");
		collect(T_FUTEX);
	}
	{
		uint64_t token = issue_wake(T_SLEEP);
		g_t[T_JOIN].token = token; /* the join thread sees what sleep saw */
		check(!__atomic_load_n(&g_t[T_JOIN].left_wait, __ATOMIC_ACQUIRE),
		      "thread join still in pthread_join right before the sleep thread ends",
		      "it had already left it");
		__atomic_store_n(&g_t[T_JOIN].wake_issued, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&g_stop_word, token, __ATOMIC_RELEASE);
		collect(T_SLEEP);
		collect(T_JOIN);
	}

	/* ---- join everybody (the join thread joined sleep) ---- */
	{
		int joined_all = 1;
		for (int i = 1; i < NTHREADS; i++) {
			if (i == T_SLEEP)
				continue;
			char what[96];
			snprintf(what, sizeof what, "pthread_timedjoin_np(thread %s)", tname[i]);
			if (!__atomic_load_n(&g_t[i].done, __ATOMIC_ACQUIRE)) {
				check(0, what, "skipped: the thread did not finish");
				joined_all = 0;
				continue;
			}
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_sec += 5;
			void *ret = NULL;
			int rc = pthread_timedjoin_np(g_t[i].self, &ret, &dl);
			if (!check(rc == 0 && ret == &g_t[i], what, "rc %d (%s), value %p", rc,
				   strerror(rc), ret))
				joined_all = 0;
		}
		if (joined_all)
			check_task_list("/proc/self/task lists only the main thread after the joins",
					&m->tid, 1);
	}

	check(__atomic_load_n(&g_stray_count, __ATOMIC_ACQUIRE) == 0,
	      "no blocked/pending signal ever reached a handler",
	      "%d deliveries, first signal %d in TID %d", g_stray_count, g_stray_sig, g_stray_tid);
	{
		sigset_t pend;
		sigpending(&pend);
		check(sigset_bits(&pend) == 0, "nothing pending in the main thread or process-wide",
		      "pending %#llx", (unsigned long long)sigset_bits(&pend));
	}
	finish();
}
