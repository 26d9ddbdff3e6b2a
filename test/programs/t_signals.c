/*
 * t_signals: signal state must survive checkpoint/restore.
 *
 * Covers dispositions (handler, flags, mask, restorer) with SA_SIGINFO,
 * SA_RESTART, SA_ONSTACK, SA_NODEFER, SA_RESETHAND and SIG_IGN; the blocked
 * mask; pending signals in the shared queue (kill, three sigqueue'd RT
 * signals with payloads) and the thread-private queue (tgkill,
 * rt_tgsigqueueinfo); sigaltstack with SS_AUTODISARM; the three itimers;
 * and the rseq registration glibc made at startup. After the trigger the
 * state is queried and then exercised (raise, sigtimedwait, timers ticking).
 *
 * The trigger wait polls with short nanosleeps instead of sigsuspend so the
 * blocked mask is never temporarily replaced while the process is dumped.
 */
#include "common.h"

#include <sys/time.h>

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000 /* set by glibc; not exported by <signal.h> */
#endif
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

#define RT_QUEUED (SIGRTMIN + 2)  /* blocked, three queued with values */
#define RT_PRIVATE (SIGRTMIN + 4) /* blocked, one thread-directed with value */
#define RT_PRIVATE_VALUE 555
#define ALTSTACK_SIZE (64 * 1024)

#define REAL_US 50000
#define VIRT_US 30000
#define PROF_US 40000
#define CPU_TIMER_SLACK_US 10000 /* one tick at HZ=100, see check_itimer() */

static volatile sig_atomic_t g_count[NSIG_KERNEL + 1];

/* What the SIGHUP / SIGTERM handlers observed (checked in main). */
static volatile int hup_on_altstack, hup_self_blocked, hup_mask_ok, hup_code, hup_ss_flags;
static volatile int term_code, term_pid, term_self_blocked, term_hup_blocked, term_on_altstack;
static stack_t g_altstack;

static int on_altstack(const void *addr)
{
	const char *p = addr, *base = g_altstack.ss_sp;
	return p >= base && p < base + g_altstack.ss_size;
}

static void h_count(int sig)
{
	if (sig > 0 && sig <= NSIG_KERNEL)
		g_count[sig]++;
}

static void h_info(int sig, siginfo_t *info, void *uc)
{
	(void)info;
	(void)uc;
	h_count(sig);
}

/* SA_ONSTACK | SA_NODEFER | SA_SIGINFO, mask {SIGTERM, SIGCONT} */
static void h_hup(int sig, siginfo_t *info, void *uc)
{
	(void)uc;
	int local;
	sigset_t cur;
	stack_t ss;
	h_count(sig);
	hup_on_altstack = on_altstack(&local);
	sigprocmask(SIG_BLOCK, NULL, &cur);
	hup_self_blocked = sigismember(&cur, SIGHUP);
	hup_mask_ok = sigismember(&cur, SIGTERM) && sigismember(&cur, SIGCONT);
	hup_code = info->si_code;
	sigaltstack(NULL, &ss);
	hup_ss_flags = ss.ss_flags;
}

/* SA_SIGINFO | SA_RESTART, mask {SIGHUP} */
static void h_term(int sig, siginfo_t *info, void *uc)
{
	(void)uc;
	int local;
	sigset_t cur;
	h_count(sig);
	term_code = info->si_code;
	term_pid = info->si_pid;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	term_self_blocked = sigismember(&cur, SIGTERM);
	term_hup_blocked = sigismember(&cur, SIGHUP);
	term_on_altstack = on_altstack(&local);
}

struct disposition {
	int sig;
	const char *name;
	void *handler; /* SIG_IGN / SIG_DFL or function */
	int siginfo;
	int flags;     /* without SA_RESTORER (glibc adds it) */
	int mask[3];   /* 0-terminated */
};

static struct disposition dispositions[12];
static int ndispositions;

static void add(int sig, const char *name, void *handler, int flags, int m0, int m1)
{
	struct disposition *d = &dispositions[ndispositions++];
	d->sig = sig;
	d->name = name;
	d->handler = handler;
	d->flags = flags;
	d->mask[0] = m0;
	d->mask[1] = m1;
	d->mask[2] = 0;
}

static void install(const struct disposition *d)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	if (d->flags & SA_SIGINFO)
		sa.sa_sigaction = (void (*)(int, siginfo_t *, void *))d->handler;
	else
		sa.sa_handler = (void (*)(int))d->handler;
	sa.sa_flags = d->flags;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; d->mask[i]; i++)
		sigaddset(&sa.sa_mask, d->mask[i]);
	if (sigaction(d->sig, &sa, NULL) != 0)
		die("sigaction %s", d->name);
}

/* A hex field of /proc/self/status (SigBlk, ShdPnd, ...). */
static uint64_t status_mask(const char *field)
{
	static char buf[8192];
	if (read_file("/proc/self/status", buf, sizeof buf) < 0)
		die("read /proc/self/status");
	uint64_t v;
	if (hex_field(buf, field, &v) != 0)
		die("no %s in /proc/self/status", field);
	return v;
}

struct sigaction_snapshot {
	int valid;
	struct sigaction sa;
};
static struct sigaction_snapshot sa_before[NSIG_KERNEL + 1];

static void snapshot_sigactions(struct sigaction_snapshot *out)
{
	for (int sig = 1; sig <= NSIG_KERNEL; sig++) {
		memset(&out[sig], 0, sizeof out[sig]);
		/* glibc rejects its internal signals (32, 33); skip them. */
		out[sig].valid = sigaction(sig, NULL, &out[sig].sa) == 0;
	}
}

static int same_sigaction(const struct sigaction *a, const struct sigaction *b)
{
	return (void *)a->sa_handler == (void *)b->sa_handler && a->sa_flags == b->sa_flags &&
	       (void *)a->sa_restorer == (void *)b->sa_restorer &&
	       sigset_bits(&a->sa_mask) == sigset_bits(&b->sa_mask);
}

static void burn_user_cpu(long ms)
{
	struct timespec start, now;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
	for (;;) {
		/* Mostly user time: ITIMER_VIRTUAL counts user time only. */
		for (volatile int i = 0; i < 200000; i++)
			;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
		long el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (el >= ms)
			return;
	}
}

static long tv_us(const struct timeval *tv)
{
	return tv->tv_sec * 1000000L + tv->tv_usec;
}

/*
 * The timer must still be armed with its interval. setitimer() on the CPU
 * timers (VIRTUAL/PROF) adds one scheduler tick to a nonzero value, so a
 * restore that re-arms them with the dumped remaining time legitimately
 * reads back up to one tick (<= 10 ms for HZ >= 100) above the interval.
 */
static void check_itimer(int which, const char *name, long interval_us, long slack_us)
{
	struct itimerval v;
	long value = 0;
	/* ITIMER_REAL reads 0 between expiry and SIGALRM delivery (when it is
	 * re-armed); retry briefly so that window cannot cause a false FAIL. */
	for (int tries = 0; tries < 5; tries++) {
		getitimer(which, &v);
		value = tv_us(&v.it_value);
		if (value > 0)
			break;
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
	}
	char what[96];
	snprintf(what, sizeof what, "%s interval unchanged", name);
	check(tv_us(&v.it_interval) == interval_us, what, "expected %ld us, got %ld us", interval_us,
	      tv_us(&v.it_interval));
	snprintf(what, sizeof what, "%s armed (0 < value <= interval%s)", name,
		 slack_us ? " + 1 tick" : "");
	check(value > 0 && value <= interval_us + slack_us, what, "value %ld us, interval %ld us", value,
	      interval_us);
}

static void check_rseq(void)
{
	if (__rseq_size == 0) {
		say("ok - rseq not registered by glibc in this process (skipped)");
		return;
	}
	struct rseq *r = rseq_area();
	check((int32_t)r->cpu_id >= 0, "rseq cpu_id valid", "cpu_id %d", (int32_t)r->cpu_id);
	errno = 0;
	long rc = syscall(SYS_rseq, r, RSEQ_LEN, 0, RSEQ_SIG);
	int err = errno;
	check(rc == -1 && err == EBUSY,
	      "rseq still registered at the same area, length and signature (re-register: EBUSY)",
	      "rseq() returned %ld errno %s (EINVAL: other area/length, EPERM: other signature, "
	      "success: nothing was registered)", rc, strerror(err));
	/* The kernel rewrites cpu_id when it delivers a signal to a task with
	 * rseq registered: scribble on it and see the kernel fix it. */
	r->cpu_id = 0xdead0000u;
	raise(SIGURG);
	check(r->cpu_id < 0x10000u, "kernel updates this rseq area (cpu_id rewritten on signal delivery)",
	      "cpu_id still %#x", r->cpu_id);
}

/* Consume one pending instance of sig and check its siginfo (the value:
 * for SI_QUEUE only). */
static void take_pending(int sig, const char *what, int code, int value)
{
	char how[160], w[160];
	int rc = take_expected(sig, code, value, how, sizeof how);
	snprintf(w, sizeof w, "%s: siginfo", what);
	if (check(rc >= 0, what, "%s", how))
		check(rc == 1, w, "%s", how);
}

static int none_pending(int sig)
{
	siginfo_t si;
	return take_signal(sig, &si) < 0 && errno == EAGAIN;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: %s WORKDIR", argv[0]);
	install_trigger();
	pid_t pid = getpid();

	add(SIGUSR1, "SIGUSR1", h_info, SA_SIGINFO | SA_RESTART, SIGINT, 0);
	add(RT_QUEUED, "SIGRTMIN+2", h_info, SA_SIGINFO, SIGRTMIN + 3, 0);
	add(RT_PRIVATE, "SIGRTMIN+4", h_info, SA_SIGINFO | SA_RESTART, 0, 0);
	add(SIGQUIT, "SIGQUIT", h_count, SA_RESTART, 0, 0);
	add(SIGHUP, "SIGHUP", h_hup, SA_SIGINFO | SA_ONSTACK | SA_NODEFER, SIGTERM, SIGCONT);
	add(SIGTERM, "SIGTERM", h_term, SA_SIGINFO | SA_RESTART, SIGHUP, 0);
	add(SIGINT, "SIGINT", h_count, SA_RESETHAND | SA_RESTART, 0, 0);
	add(SIGPIPE, "SIGPIPE", SIG_IGN, 0, 0, 0);
	add(SIGALRM, "SIGALRM", h_count, SA_RESTART, 0, 0);
	add(SIGVTALRM, "SIGVTALRM", h_count, SA_RESTART, SIGPROF, 0);
	add(SIGPROF, "SIGPROF", h_count, SA_RESTART | SA_ONSTACK, SIGVTALRM, 0);
	add(SIGURG, "SIGURG", h_count, 0, 0, 0);
	for (int i = 0; i < ndispositions; i++)
		install(&dispositions[i]);

	g_altstack.ss_sp = malloc(ALTSTACK_SIZE);
	g_altstack.ss_size = ALTSTACK_SIZE;
	g_altstack.ss_flags = SS_AUTODISARM;
	if (!g_altstack.ss_sp || sigaltstack(&g_altstack, NULL) != 0)
		die("sigaltstack");

	/* Blocked mask, then pending signals in both queues. */
	/* SIGWINCH and SIGRTMAX are blocked with nothing pending. */
	sigset_t blocked;
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR1);
	sigaddset(&blocked, SIGQUIT);
	sigaddset(&blocked, SIGWINCH);
	sigaddset(&blocked, RT_QUEUED);
	sigaddset(&blocked, RT_PRIVATE);
	sigaddset(&blocked, SIGRTMAX);
	if (sigprocmask(SIG_SETMASK, &blocked, NULL) != 0)
		die("sigprocmask");
	uint64_t blocked_bits = sigset_bits(&blocked);

	if (kill(pid, SIGUSR1) != 0)
		die("kill SIGUSR1");
	for (int v = 100; v <= 102; v++)
		if (sigqueue(pid, RT_QUEUED, (union sigval){ .sival_int = v }) != 0)
			die("sigqueue");
	if (syscall(SYS_tgkill, pid, gettid(), SIGQUIT) != 0)
		die("tgkill SIGQUIT");
	siginfo_t qi;
	memset(&qi, 0, sizeof qi);
	qi.si_signo = RT_PRIVATE;
	qi.si_code = SI_QUEUE;
	qi.si_pid = pid;
	qi.si_uid = getuid();
	qi.si_value.sival_int = RT_PRIVATE_VALUE;
	if (syscall(SYS_rt_tgsigqueueinfo, pid, gettid(), RT_PRIVATE, &qi) != 0)
		die("rt_tgsigqueueinfo");
	const uint64_t shared_expected = sig_bit(SIGUSR1) | sig_bit(RT_QUEUED);
	const uint64_t private_expected = sig_bit(SIGQUIT) | sig_bit(RT_PRIVATE);

	struct itimerval it = { { 0, REAL_US }, { 0, REAL_US } };
	if (setitimer(ITIMER_REAL, &it, NULL) != 0)
		die("setitimer REAL");
	it = (struct itimerval){ { 0, VIRT_US }, { 0, VIRT_US } };
	if (setitimer(ITIMER_VIRTUAL, &it, NULL) != 0)
		die("setitimer VIRTUAL");
	it = (struct itimerval){ { 0, PROF_US }, { 0, PROF_US } };
	if (setitimer(ITIMER_PROF, &it, NULL) != 0)
		die("setitimer PROF");
	burn_user_cpu(100); /* let the CPU timers fire a few times */

	snapshot_sigactions(sa_before);
	uint64_t sigign_before = status_mask("SigIgn"), sigcgt_before = status_mask("SigCgt");

	ready();
	poll_trigger();

	/* ---- query the state before exercising anything ---- */
	static struct sigaction_snapshot sa_after[NSIG_KERNEL + 1];
	snapshot_sigactions(sa_after);
	for (int i = 0; i < ndispositions; i++) {
		const struct disposition *d = &dispositions[i];
		const struct sigaction *a = &sa_after[d->sig].sa;
		uint64_t want_mask = 0;
		for (int m = 0; d->mask[m]; m++)
			want_mask |= sig_bit(d->mask[m]);
		int ok = (void *)a->sa_handler == d->handler &&
			 (a->sa_flags & ~SA_RESTORER) == d->flags &&
			 sigset_bits(&a->sa_mask) == want_mask &&
			 same_sigaction(a, &sa_before[d->sig].sa);
		char what[96];
		snprintf(what, sizeof what, "sigaction %s (handler, flags, mask, restorer)", d->name);
		check(ok, what,
		      "expected handler %p flags %#x mask %#lx restorer %p, got handler %p flags %#x mask %#lx restorer %p",
		      d->handler, d->flags | (sa_before[d->sig].sa.sa_flags & SA_RESTORER), (unsigned long)want_mask,
		      (void *)sa_before[d->sig].sa.sa_restorer, (void *)a->sa_handler, a->sa_flags,
		      (unsigned long)sigset_bits(&a->sa_mask), (void *)a->sa_restorer);
	}
	{
		int bad = 0;
		for (int sig = 1; sig <= NSIG_KERNEL; sig++)
			if (sa_before[sig].valid != sa_after[sig].valid ||
			    (sa_before[sig].valid && !same_sigaction(&sa_before[sig].sa, &sa_after[sig].sa)))
				if (!bad)
					bad = sig;
		check(!bad, "sigaction of every other signal unchanged", "signal %d differs", bad);
		uint64_t ign = status_mask("SigIgn"), cgt = status_mask("SigCgt");
		check(ign == sigign_before && cgt == sigcgt_before, "/proc/self/status SigIgn and SigCgt unchanged",
		      "expected %#lx/%#lx, got %#lx/%#lx", (unsigned long)sigign_before,
		      (unsigned long)sigcgt_before, (unsigned long)ign, (unsigned long)cgt);
	}

	{
		sigset_t cur;
		sigprocmask(SIG_BLOCK, NULL, &cur);
		uint64_t got = sigset_bits(&cur), blk = status_mask("SigBlk");
		check(got == blocked_bits && blk == blocked_bits, "blocked mask (sigprocmask and SigBlk)",
		      "expected %#lx, got %#lx (SigBlk %#lx)", (unsigned long)blocked_bits,
		      (unsigned long)got, (unsigned long)blk);
	}

	{
		sigset_t pend;
		sigpending(&pend);
		uint64_t got = sigset_bits(&pend);
		check(got == (shared_expected | private_expected), "sigpending set",
		      "expected %#lx, got %#lx", (unsigned long)(shared_expected | private_expected),
		      (unsigned long)got);
		uint64_t shd = status_mask("ShdPnd") & blocked_bits, prv = status_mask("SigPnd") & blocked_bits;
		check(shd == shared_expected, "process-wide pending queue (ShdPnd)", "expected %#lx, got %#lx",
		      (unsigned long)shared_expected, (unsigned long)shd);
		check(prv == private_expected, "thread-private pending queue (SigPnd)",
		      "expected %#lx, got %#lx", (unsigned long)private_expected, (unsigned long)prv);
	}

	{
		stack_t ss;
		sigaltstack(NULL, &ss);
		check(ss.ss_sp == g_altstack.ss_sp && ss.ss_size == g_altstack.ss_size &&
		      ss.ss_flags == (int)SS_AUTODISARM,
		      "sigaltstack (sp, size, SS_AUTODISARM)", "expected %p/%zu/%#x, got %p/%zu/%#x",
		      g_altstack.ss_sp, g_altstack.ss_size, SS_AUTODISARM, ss.ss_sp, ss.ss_size,
		      (unsigned)ss.ss_flags);
	}

	check_itimer(ITIMER_REAL, "ITIMER_REAL", REAL_US, 0);
	check_itimer(ITIMER_VIRTUAL, "ITIMER_VIRTUAL", VIRT_US, CPU_TIMER_SLACK_US);
	check_itimer(ITIMER_PROF, "ITIMER_PROF", PROF_US, CPU_TIMER_SLACK_US);

	check_rseq();

	/* ---- consume the pending signals, checking each payload ---- */
	take_pending(SIGUSR1, "pending SIGUSR1 from kill()", SI_USER, 0);
	for (int v = 100; v <= 102; v++) {
		char what[64];
		snprintf(what, sizeof what, "queued SIGRTMIN+2 #%d (value %d)", v - 99, v);
		take_pending(RT_QUEUED, what, SI_QUEUE, v);
	}
	check(none_pending(RT_QUEUED), "exactly three SIGRTMIN+2 were queued", "a fourth one is pending");
	take_pending(SIGQUIT, "thread-directed SIGQUIT from tgkill()", SI_TKILL, 0);
	take_pending(RT_PRIVATE, "thread-directed SIGRTMIN+4 (rt_tgsigqueueinfo)", SI_QUEUE,
		     RT_PRIVATE_VALUE);
	{
		sigset_t pend;
		sigpending(&pend);
		check(sigset_bits(&pend) == 0, "nothing else pending", "pending %#lx",
		      (unsigned long)sigset_bits(&pend));
	}

	/* ---- exercise the handlers (only when the disposition is right,
	 * otherwise the default action could kill the process) ---- */
	if (sa_after[SIGHUP].sa.sa_sigaction == h_hup) {
		raise(SIGHUP);
		check(g_count[SIGHUP] == 1, "SIGHUP handler ran", "count %d", g_count[SIGHUP]);
		check(hup_on_altstack, "SA_ONSTACK: SIGHUP handler ran on the alternate stack", "it did not");
		check(hup_ss_flags & SS_DISABLE, "SS_AUTODISARM: alternate stack disarmed inside the handler",
		      "ss_flags %#x", hup_ss_flags);
		check(!hup_self_blocked, "SA_NODEFER: SIGHUP not blocked in its handler", "it was blocked");
		check(hup_mask_ok, "sa_mask: SIGTERM and SIGCONT blocked in SIGHUP handler", "they were not");
		check(hup_code == SI_TKILL, "SIGHUP siginfo from raise()", "si_code %d", hup_code);
		stack_t ss;
		sigaltstack(NULL, &ss);
		check(ss.ss_sp == g_altstack.ss_sp && ss.ss_flags == (int)SS_AUTODISARM,
		      "alternate stack re-armed after the handler", "sp %p flags %#x", ss.ss_sp,
		      (unsigned)ss.ss_flags);
	}
	if (sa_after[SIGTERM].sa.sa_sigaction == h_term) {
		raise(SIGTERM);
		check(g_count[SIGTERM] == 1 && term_code == SI_TKILL && term_pid == pid,
		      "SIGTERM SA_SIGINFO handler got siginfo", "count %d code %d pid %d", g_count[SIGTERM],
		      term_code, term_pid);
		check(term_self_blocked && term_hup_blocked, "SIGTERM handler mask: itself and SIGHUP blocked",
		      "SIGTERM %d SIGHUP %d", term_self_blocked, term_hup_blocked);
		check(!term_on_altstack, "SIGTERM handler (no SA_ONSTACK) ran on the normal stack",
		      "it ran on the alternate stack");
	}
	if ((void *)sa_after[SIGINT].sa.sa_handler == (void *)h_count) {
		raise(SIGINT);
		struct sigaction now;
		sigaction(SIGINT, NULL, &now);
		check(g_count[SIGINT] == 1 && now.sa_handler == SIG_DFL,
		      "SA_RESETHAND: SIGINT handler ran once and reset to SIG_DFL", "count %d handler %p",
		      g_count[SIGINT], (void *)now.sa_handler);
	}
	if (sa_after[SIGPIPE].sa.sa_handler == SIG_IGN) {
		raise(SIGPIPE); /* ignored: must neither kill us nor stay pending */
		sigset_t pend;
		sigpending(&pend);
		check(!sigismember(&pend, SIGPIPE), "SIG_IGN: raised SIGPIPE discarded", "it is pending");
	}

	/* ---- timers keep ticking ---- */
	{
		int before = g_count[SIGALRM];
		sleep_ns(300 * MS);
		int n = g_count[SIGALRM] - before;
		check(n >= 3 && n <= 12, "ITIMER_REAL delivers SIGALRM every 50 ms (300 ms wait)",
		      "%d SIGALRMs, expected about 6", n);
		int v0 = g_count[SIGVTALRM], p0 = g_count[SIGPROF];
		burn_user_cpu(250);
		int nv = g_count[SIGVTALRM] - v0, np = g_count[SIGPROF] - p0;
		check(nv >= 2, "ITIMER_VIRTUAL delivers SIGVTALRM while running (250 ms CPU)",
		      "%d SIGVTALRMs, expected about 8", nv);
		check(np >= 2, "ITIMER_PROF delivers SIGPROF while running (250 ms CPU)",
		      "%d SIGPROFs, expected about 6", np);
	}

	{
		sigset_t cur;
		sigprocmask(SIG_BLOCK, NULL, &cur);
		check(sigset_bits(&cur) == blocked_bits, "blocked mask intact after running the handlers",
		      "expected %#lx, got %#lx", (unsigned long)blocked_bits, (unsigned long)sigset_bits(&cur));
	}
	finish();
}
