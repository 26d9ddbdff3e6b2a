/*
 * Shared helpers for the checkpoint/restore test programs.
 *
 * Protocol (see Makefile for the list of programs):
 *   prog WORKDIR        set up state, print "READY", wait for SIGUSR2,
 *                       then print "ok - ..." / "not ok - ...: ..." lines
 *                       and finally "PASS" (exit 0) or "FAIL" (exit 1).
 *
 * All output goes through write(2) on fd 1 so nothing sits in a stdio
 * buffer when the harness reads the log (or when the process is dumped).
 */
#ifndef CRM_TEST_COMMON_H
#define CRM_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000ULL  /* one millisecond, in ns */
#define NSIG_KERNEL 64 /* the signals the kernel knows: 1..64 */

/* Registered rseq length: glibc 2.36 exports __rseq_size 20 but registers 32. */
#define RSEQ_LEN 32

/*
 * In a variadic function whose last named parameter is fmt: format its
 * arguments into the array buf (truncated to fit).
 */
#define VFORMAT(buf, fmt)                             \
	do {                                          \
		va_list ap_;                          \
		va_start(ap_, fmt);                   \
		vsnprintf(buf, sizeof buf, fmt, ap_); \
		va_end(ap_);                          \
	} while (0)

/* Set by the SIGUSR2 handler. "used": t_regs polls it from assembly. */
static volatile sig_atomic_t g_triggered __attribute__((used));
static int g_failures __attribute__((unused));

/* Print one line (a newline is appended) directly to fd 1. */
__attribute__((format(printf, 1, 2), unused))
static void say(const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(STDOUT_FILENO, line + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += w;
	}
}

/*
 * Record one check. `what` names the item; the printf-style details are
 * only formatted and printed when the check fails ("expected X, got Y").
 * Returns `ok` so callers can skip dependent checks.
 */
__attribute__((format(printf, 3, 4), unused))
static int check(int ok, const char *what, const char *fmt, ...)
{
	if (ok) {
		say("ok - %s", what);
		return 1;
	}
	char raw[3072], details[3072];
	VFORMAT(raw, fmt);
	/* Keep the report on one line: escape newlines and tabs. */
	size_t j = 0;
	for (size_t i = 0; raw[i] && j + 3 < sizeof details; i++) {
		if (raw[i] == '\n' || raw[i] == '\t') {
			details[j++] = '\\';
			details[j++] = raw[i] == '\n' ? 'n' : 't';
		} else {
			details[j++] = raw[i];
		}
	}
	details[j] = '\0';
	say("not ok - %s: %s", what, details);
	g_failures++;
	return 0;
}

/* Print the verdict line and exit. */
__attribute__((noreturn, unused))
static void finish(void)
{
	say(g_failures ? "FAIL" : "PASS");
	exit(g_failures ? 1 : 0);
}

/* Setup could not be completed: the test cannot say anything, report FAIL. */
__attribute__((format(printf, 1, 2), noreturn, unused))
static void die(const char *fmt, ...)
{
	char msg[2048];
	VFORMAT(msg, fmt);
	say("not ok - setup: %s (errno %d %s)", msg, errno, strerror(errno));
	say("FAIL");
	exit(1);
}

__attribute__((unused))
static void on_trigger(int sig)
{
	(void)sig;
	g_triggered = 1;
}

/* sig handled by fn (or SIG_DFL, SIG_IGN): no flags, so no SA_RESTART, and
 * nothing more blocked while it runs. 0, or -1 with errno. */
__attribute__((unused))
static int set_handler(int sig, void (*fn)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

/* SIGUSR2 handler, no SA_RESTART: the trigger should interrupt waits. */
__attribute__((unused))
static void install_trigger(void)
{
	if (set_handler(SIGUSR2, on_trigger) != 0)
		die("sigaction(SIGUSR2)");
}

__attribute__((unused))
static void ready(void)
{
	say("READY");
}

/*
 * Race-free wait for the trigger: SIGUSR2 is blocked while the flag is
 * tested and only unblocked atomically inside sigsuspend(). The original
 * mask is put back afterwards.
 */
__attribute__((unused))
static void wait_trigger(void)
{
	sigset_t block, old, during;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &old);
	during = old;
	sigdelset(&during, SIGUSR2);
	while (!g_triggered)
		sigsuspend(&during);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* splitmix64: cheap deterministic patterns that differ in every word. */
__attribute__((unused))
static uint64_t pattern64(uint64_t seed, uint64_t index)
{
	uint64_t z = seed + (index + 1) * 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

__attribute__((unused))
static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

__attribute__((unused))
static struct timespec ns_to_ts(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL) };
	return ts;
}

/*
 * nanosleep for the whole of req: after a signal handler ran (EINTR,
 * counted in *eintr when given) it goes on with the remaining time.
 * Returns 0, or the errno of any other failure.
 */
__attribute__((unused))
static int nanosleep_whole(struct timespec req, unsigned long *eintr)
{
	for (;;) {
		struct timespec rem = { 0, 0 };
		if (nanosleep(&req, &rem) == 0)
			return 0;
		if (errno != EINTR)
			return errno;
		if (eintr)
			(*eintr)++;
		req = rem;
	}
}

__attribute__((unused))
static void sleep_ns(uint64_t ns)
{
	nanosleep_whole(ns_to_ts(ns), NULL);
}

/*
 * Wait for the trigger by polling in 20 ms nanosleeps: unlike
 * wait_trigger(), the blocked mask is never replaced, not even for a
 * moment while the process may be dumped.
 */
__attribute__((unused))
static void poll_trigger(void)
{
	while (!g_triggered)
		sleep_ns(20 * MS);
}

/*
 * One step of a bounded wait on a futex word: FUTEX_WAIT while *w holds
 * val, for at most ns (a plain sleep of ns if the futex call fails).
 */
__attribute__((unused))
static void futex_step(uint32_t *w, uint32_t val, uint64_t ns)
{
	struct timespec ts = ns_to_ts(ns);
	long rc = syscall(SYS_futex, w, FUTEX_WAIT, val, &ts, NULL, 0);
	if (rc != 0 && errno != ETIMEDOUT && errno != EAGAIN && errno != EINTR)
		sleep_ns(ns);
}

__attribute__((unused))
static void futex_wake_all(uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Sets a futex word and wakes everybody waiting on it. */
__attribute__((unused))
static void futex_set(uint32_t *w, uint32_t v)
{
	__atomic_store_n(w, v, __ATOMIC_SEQ_CST);
	futex_wake_all(w);
}

/* Rounds len up to whole pages. */
__attribute__((unused))
static size_t page_round(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return (len + page - 1) & ~(page - 1);
}

/* len bytes of anonymous memory, read/write; flags MAP_PRIVATE or
 * MAP_SHARED (shared with the children forked afterwards). NULL on failure. */
__attribute__((unused))
static void *map_anon(size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* A decimal number 1..max, the whole string; 0 ok, -1 not. */
__attribute__((unused))
static int parse_num(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Kernel-visible signals 1..64 as a 64-bit word: bit n-1 is signal n. */
__attribute__((unused))
static uint64_t sig_bit(int sig)
{
	return 1ULL << (sig - 1);
}

__attribute__((unused))
static uint64_t sigset_bits(const sigset_t *s)
{
	uint64_t bits = 0;
	for (int sig = 1; sig <= NSIG_KERNEL; sig++)
		if (sigismember(s, sig) == 1)
			bits |= sig_bit(sig);
	return bits;
}

/*
 * Takes one pending instance of sig, without waiting: returns the signal
 * taken, or -1 (errno EAGAIN: none pending). Raw syscall: glibc's
 * sigtimedwait() folds SI_TKILL into SI_USER.
 */
__attribute__((unused))
static int take_signal(int sig, siginfo_t *si)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	struct timespec zero = { 0, 0 };
	memset(si, 0, sizeof *si);
	return (int)syscall(SYS_rt_sigtimedwait, &s, si, &zero, NSIG_KERNEL / 8);
}

/*
 * Takes one pending sig (as take_signal) that this process sent with
 * si_code code and, for SI_QUEUE, the value. Returns -1 if none was taken,
 * 0 if its siginfo differs, 1 if right; what is wrong in buf.
 */
__attribute__((unused))
static int take_expected(int sig, int code, int value, char *buf, size_t size)
{
	siginfo_t si;
	int got = take_signal(sig, &si);
	if (got != sig) {
		snprintf(buf, size, "sigtimedwait returned %d (%s), expected signal %d", got,
			 got < 0 ? strerror(errno) : "other signal", sig);
		return -1;
	}
	snprintf(buf, size, "expected code %d pid %d uid %d value %d, got code %d pid %d uid %d value %d",
		 code, getpid(), getuid(), code == SI_QUEUE ? value : si.si_value.sival_int, si.si_code,
		 si.si_pid, si.si_uid, si.si_value.sival_int);
	return si.si_code == code && si.si_pid == getpid() && si.si_uid == getuid() &&
	       (code != SI_QUEUE || si.si_value.sival_int == value);
}

/* The calling thread's rseq area, as glibc registered it. */
__attribute__((unused))
static struct rseq *rseq_area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

__attribute__((unused))
static int cmp_pid(const void *x, const void *y)
{
	pid_t a = *(const pid_t *)x, b = *(const pid_t *)y;
	return (a > b) - (a < b);
}

/* "p0,p1,...", truncated to fit. */
__attribute__((unused))
static void fmt_pids(char *buf, size_t size, const pid_t *p, int n)
{
	size_t len = 0;
	buf[0] = '\0';
	for (int i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%d", i ? "," : "", (int)p[i]);
}

/* Read a whole (small, e.g. /proc) file into buf; returns length or -1. */
__attribute__((unused))
static ssize_t read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return (ssize_t)len;
}

/* The first line of a small file (e.g. /proc/self/comm), without its
 * newline; buf is left as it was if the file is unreadable. */
__attribute__((unused))
static void read_line(const char *path, char *buf, size_t size)
{
	if (read_file(path, buf, size) > 0)
		buf[strcspn(buf, "\n")] = '\0';
}

/* The hex value of "field:" (SigBlk, ShdPnd, ...) in the text of a /proc
 * status file; -1 if the field is missing. */
__attribute__((unused))
static int hex_field(const char *buf, const char *field, uint64_t *out)
{
	char key[32];
	snprintf(key, sizeof key, "\n%s:", field);
	const char *p = strstr(buf, key);
	if (!p)
		return -1;
	*out = strtoull(p + strlen(key), NULL, 16);
	return 0;
}

struct pstat {
	char state;
	pid_t ppid, pgrp, sid;
	char comm[32];
};

/*
 * Fields of /proc/PID/stat (pid 0: /proc/self/stat), or of
 * /proc/PID/task/TID/stat when tid is not 0; -1 if unreadable (gone).
 */
__attribute__((unused))
static int read_stat(pid_t pid, pid_t tid, struct pstat *ps)
{
	char path[64], buf[1024];
	if (tid)
		snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	else if (pid)
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	else
		snprintf(path, sizeof path, "/proc/self/stat");
	if (read_file(path, buf, sizeof buf) <= 0)
		return -1;
	char *l = strchr(buf, '('), *r = strrchr(buf, ')');
	if (!l || !r || r < l)
		return -1;
	size_t n = (size_t)(r - l - 1);
	if (n >= sizeof ps->comm)
		n = sizeof ps->comm - 1;
	memcpy(ps->comm, l + 1, n);
	ps->comm[n] = '\0';
	int ppid, pgrp, sid;
	if (sscanf(r + 1, " %c %d %d %d", &ps->state, &ppid, &pgrp, &sid) != 4)
		return -1;
	ps->ppid = ppid;
	ps->pgrp = pgrp;
	ps->sid = sid;
	return 0;
}

/* Reads the stat of pid/tid (as read_stat) until the task sleeps (state S)
 * or the deadline passes; returns the last read's result. */
__attribute__((unused))
static int stat_sleeping(pid_t pid, pid_t tid, struct pstat *ps, uint64_t deadline)
{
	for (;;) {
		int rc = read_stat(pid, tid, ps);
		if ((rc == 0 && ps->state == 'S') || mono_ns() >= deadline)
			return rc;
		sleep_ns(MS);
	}
}

/* Process pid is there and not a zombie, and (unless comm is NULL) it has
 * that name, so a reused PID is not taken for it. */
__attribute__((unused))
static int running_as(pid_t pid, const char *comm)
{
	struct pstat ps;
	return pid > 0 && read_stat(pid, 0, &ps) == 0 && (!comm || strcmp(ps.comm, comm) == 0) &&
	       ps.state != 'Z' && ps.state != 'X';
}

#endif
