/*
 * crmigrate-check: probe the kernel features crmigrate depends on.
 *
 * Usage: crmigrate-check [feature-id...]      (no arguments: all features)
 *
 * Prints one line per feature, tab separated:
 *
 *     <id>\t<PASS|FAIL>\t<required|optional>\t<detail>
 *
 * Exit status: 0 if every required feature passed, 1 if one failed,
 * 2 on usage or internal errors.
 *
 * Isolation: every probe runs in its own forked process (its own process
 * group, PR_SET_PDEATHSIG) with a deadline; helper processes the probe forks
 * die with it (PDEATHSIG, PTRACE_O_EXITKILL, a kill of the probe's group) and
 * the checker is a child subreaper that kills and reaps anything reparented to
 * it. Namespaces are only ever created inside those disposable processes, so
 * nothing (netns, nft table, timens, ...) outlives a probe, even on failure.
 * Because the probe process is thrown away, error paths inside a probe may
 * return without unmapping memory or closing descriptors; helper processes are
 * always killed by PID and reaped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <linux/kcmp.h>
#include <linux/userfaultfd.h>

/* ---- definitions newer than the build machine's uapi headers ---------- */

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1ULL << 15)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#ifndef PAGEMAP_SCAN /* linux/fs.h, kernel 6.7+ */
#define PAGE_IS_PRESENT (1 << 3)
struct page_region {
	uint64_t start;
	uint64_t end;
	uint64_t categories;
};
struct pm_scan_arg {
	uint64_t size;
	uint64_t flags;
	uint64_t start;
	uint64_t end;
	uint64_t walk_end;
	uint64_t vec;
	uint64_t vec_len;
	uint64_t max_pages;
	uint64_t category_inverted;
	uint64_t category_mask;
	uint64_t category_anyof_mask;
	uint64_t return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

/* clone3() argument block up to and including set_tid (CLONE_ARGS_SIZE_VER1) */
struct clone_args_v1 {
	uint64_t flags;
	uint64_t pidfd;
	uint64_t child_tid;
	uint64_t parent_tid;
	uint64_t exit_signal;
	uint64_t stack;
	uint64_t stack_size;
	uint64_t tls;
	uint64_t set_tid;
	uint64_t set_tid_size;
};

/* kernel-internal restart codes visible to a tracer in rax */
#define K_ERESTARTSYS 512
#define K_ERESTARTNOINTR 513
#define K_ERESTARTNOHAND 514
#define K_ERESTART_RESTARTBLOCK 516

/* ---- limits ------------------------------------------------------------ */

#define TOTAL_BUDGET_MS 4500 /* whole run, below the 5 s promise */
#define PROBE_TIMEOUT_MS 1000 /* one probe (they take a few ms when healthy) */
#define NFT_PROBE_TIMEOUT_MS 2000 /* four nft invocations */
#define NFT_CMD_TIMEOUT_MS 450
#define MIN_PROBE_MS 50 /* below this a probe is skipped */
#define DETAIL_MAX 200

typedef int (*probe_fn)(char *detail, size_t len);

struct probe {
	const char *id;
	int required;
	probe_fn fn;
	int timeout_ms;
};

static pid_t checker_pid;

/* ---- small helpers ----------------------------------------------------- */

static const char *errname(int e)
{
	static char buf[32];
	const char *n = strerrorname_np(e);

	if (n)
		return n;
	snprintf(buf, sizeof buf, "errno %d", e);
	return buf;
}

/* Write a detail string and return `ok` (so probes can `return say(...)`). */
__attribute__((format(printf, 4, 5)))
static int say(char *d, size_t n, int ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d, n, fmt, ap);
	va_end(ap);
	return ok;
}

static const char *signame(int sig)
{
	static char buf[32];
	const char *n = sigabbrev_np(sig);

	if (n)
		snprintf(buf, sizeof buf, "SIG%s", n);
	else
		snprintf(buf, sizeof buf, "signal %d", sig);
	return buf;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t r = write(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t r = read(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, len - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = 0;
	return (int)r;
}

static long read_long_file(const char *path, long dflt)
{
	char buf[64];

	if (read_file(path, buf, sizeof buf) < 0)
		return dflt;
	return strtol(buf, NULL, 10);
}

static long pt(int req, pid_t pid, unsigned long addr, void *data)
{
	return ptrace((enum __ptrace_request)req, pid, (void *)addr, data);
}

/*
 * fork() a helper that is SIGKILLed when its parent (the probe) dies.
 * Returns like fork().
 */
static pid_t fork_helper(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
	}
	return pid;
}

static void kill_helper(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
}

/* Find the first /proc/<pid>/maps line containing `needle`. */
static int find_mapping(pid_t pid, const char *needle, unsigned long *start, unsigned long *end)
{
	char path[64], line[512];
	FILE *f;
	int rc = -1;

	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (strstr(line, needle) && sscanf(line, "%lx-%lx", start, end) == 2) {
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

/*
 * Target for the ptrace probes: reports readiness on `ready_fd`, then bumps
 * *counter (shared memory, may be NULL) once per millisecond.
 */
static void __attribute__((noreturn)) target_loop(int ready_fd, volatile unsigned long *counter)
{
	struct timespec ts = { 0, 1000000 };
	char c = 'r';

	if (write_full(ready_fd, &c, 1))
		_exit(1);
	close(ready_fd);
	for (;;) {
		nanosleep(&ts, NULL);
		if (counter)
			(*counter)++;
	}
}

static pid_t start_target(volatile unsigned long *counter)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork_helper();
	if (pid == 0) {
		close(p[0]);
		target_loop(p[1], counter);
	}
	close(p[1]);
	if (pid > 0 && read_full(p[0], &c, 1)) {
		kill_helper(pid);
		errno = ECHILD;
		pid = -1;
	}
	close(p[0]);
	return pid;
}

/* PTRACE_SEIZE + PTRACE_INTERRUPT, wait for PTRACE_EVENT_STOP. */
static int seize_and_stop(pid_t pid, long options, char *d, size_t n)
{
	int st;

	if (pt(PTRACE_SEIZE, pid, 0, (void *)options))
		return say(d, n, 0, "PTRACE_SEIZE: %s", errname(errno));
	if (pt(PTRACE_INTERRUPT, pid, 0, NULL))
		return say(d, n, 0, "PTRACE_INTERRUPT: %s", errname(errno));
	if (waitpid(pid, &st, __WALL) != pid)
		return say(d, n, 0, "waitpid: %s", errname(errno));
	if (!WIFSTOPPED(st) || (st >> 16) != PTRACE_EVENT_STOP)
		return say(d, n, 0, "no PTRACE_EVENT_STOP (status 0x%x)", st);
	return 1;
}

/* ---- probe: ptrace-seize ----------------------------------------------- */

static int probe_ptrace_seize(char *d, size_t n)
{
	static unsigned char xsave[1 << 16] __attribute__((aligned(64)));
	struct user_regs_struct regs;
	struct iovec iov = { &regs, sizeof regs };
	struct iovec xiov = { xsave, sizeof xsave };
	pid_t pid = start_target(NULL);
	int ok = 0;

	if (pid < 0)
		return say(d, n, 0, "fork target: %s", errname(errno));
	if (!seize_and_stop(pid, PTRACE_O_EXITKILL, d, n))
		goto out;
	if (pt(PTRACE_GETREGSET, pid, NT_PRSTATUS, &iov)) {
		say(d, n, 0, "GETREGSET NT_PRSTATUS: %s", errname(errno));
		goto out;
	}
	if (pt(PTRACE_GETREGSET, pid, NT_X86_XSTATE, &xiov)) {
		say(d, n, 0, "GETREGSET NT_X86_XSTATE: %s", errname(errno));
		goto out;
	}
	ok = say(d, n, 1, "EVENT_STOP reached; NT_PRSTATUS %zu bytes; xsave %zu bytes",
		 iov.iov_len, xiov.iov_len);
out:
	kill_helper(pid);
	return ok;
}

/* ---- probe: syscall-injection ------------------------------------------ */

struct injector {
	pid_t pid;
	struct user_regs_struct saved; /* with syscall-restart fix-up applied */
	unsigned long sc_addr; /* a `syscall` instruction in the tracee */
};

/* Execute one syscall in the stopped tracee; the result is in *ret. */
static int inject(struct injector *in, long nr, long a1, long a2, long a3, long a4, long a5,
		  long a6, long *ret, char *d, size_t n)
{
	struct user_regs_struct r = in->saved;
	int st;

	r.rip = in->sc_addr;
	r.rax = (unsigned long)nr;
	r.orig_rax = (unsigned long)-1;
	r.rdi = (unsigned long)a1;
	r.rsi = (unsigned long)a2;
	r.rdx = (unsigned long)a3;
	r.r10 = (unsigned long)a4;
	r.r8 = (unsigned long)a5;
	r.r9 = (unsigned long)a6;
	if (pt(PTRACE_SETREGS, in->pid, 0, &r))
		return say(d, n, 0, "SETREGS: %s", errname(errno));
	for (int stop = 0; stop < 2; stop++) { /* syscall entry, then exit */
		if (pt(PTRACE_SYSCALL, in->pid, 0, NULL))
			return say(d, n, 0, "PTRACE_SYSCALL: %s", errname(errno));
		if (waitpid(in->pid, &st, __WALL) != in->pid)
			return say(d, n, 0, "waitpid: %s", errname(errno));
		if (!WIFSTOPPED(st) || WSTOPSIG(st) != (SIGTRAP | 0x80))
			return say(d, n, 0, "syscall %ld: unexpected status 0x%x", nr, st);
	}
	if (pt(PTRACE_GETREGS, in->pid, 0, &r))
		return say(d, n, 0, "GETREGS: %s", errname(errno));
	*ret = (long)r.rax;
	return 1;
}

static int find_vdso_syscall(pid_t pid, unsigned long *addr, char *d, size_t n)
{
	unsigned long start, end;
	unsigned char buf[65536];
	struct iovec l, r;
	size_t len;
	ssize_t got;

	if (find_mapping(pid, "[vdso]", &start, &end))
		return say(d, n, 0, "no [vdso] mapping");
	len = end - start;
	if (len > sizeof buf)
		len = sizeof buf;
	l = (struct iovec){ buf, len };
	r = (struct iovec){ (void *)start, len };
	got = process_vm_readv(pid, &l, 1, &r, 1, 0);
	if (got < 2)
		return say(d, n, 0, "read [vdso]: %s", got < 0 ? errname(errno) : "short read");
	for (ssize_t i = 0; i + 1 < got; i++) {
		if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
			*addr = start + (unsigned long)i;
			return 1;
		}
	}
	return say(d, n, 0, "no syscall instruction in [vdso]");
}

static int probe_syscall_injection(char *d, size_t n)
{
	volatile unsigned long *counter;
	struct injector in = { 0 };
	long ret, map = 0;
	int ok = 0;
	char pattern[16] = "crmigrate-check", back[16] = "";
	pid_t pid;

	counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (counter == MAP_FAILED)
		return say(d, n, 0, "mmap: %s", errname(errno));
	pid = start_target(counter);
	if (pid < 0)
		return say(d, n, 0, "fork target: %s", errname(errno));
	in.pid = pid;

	if (!seize_and_stop(pid, PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD, d, n))
		goto out;
	if (pt(PTRACE_GETREGS, pid, 0, &in.saved)) {
		say(d, n, 0, "GETREGS: %s", errname(errno));
		goto out;
	}
	/* Stopped inside an interrupted syscall: rewind so it restarts on resume. */
	if ((long)in.saved.orig_rax >= 0) {
		long ax = (long)in.saved.rax;

		if (ax == -K_ERESTARTNOHAND || ax == -K_ERESTARTSYS || ax == -K_ERESTARTNOINTR) {
			in.saved.rax = in.saved.orig_rax;
			in.saved.rip -= 2;
		} else if (ax == -K_ERESTART_RESTARTBLOCK) {
			in.saved.rax = SYS_restart_syscall;
			in.saved.rip -= 2;
		}
	}
	in.saved.orig_rax = (unsigned long)-1;

	if (!find_vdso_syscall(pid, &in.sc_addr, d, n))
		goto out;
	if (!inject(&in, SYS_getpid, 0, 0, 0, 0, 0, 0, &ret, d, n))
		goto out;
	if (ret != pid) {
		say(d, n, 0, "injected getpid returned %ld, expected %d", ret, (int)pid);
		goto out;
	}
	if (!inject(&in, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0,
		    &map, d, n))
		goto out;
	if (map < 0 && map > -4096) {
		say(d, n, 0, "injected mmap: %s", errname((int)-map));
		map = 0;
		goto out;
	}
	{
		struct iovec l = { pattern, sizeof pattern }, r = { (void *)map, sizeof pattern };
		struct iovec lb = { back, sizeof back };

		if (process_vm_writev(pid, &l, 1, &r, 1, 0) != (ssize_t)sizeof pattern ||
		    process_vm_readv(pid, &lb, 1, &r, 1, 0) != (ssize_t)sizeof back ||
		    memcmp(pattern, back, sizeof pattern)) {
			say(d, n, 0, "injected mmap 0x%lx not usable", (unsigned long)map);
			goto out;
		}
	}
	if (!inject(&in, SYS_munmap, map, 4096, 0, 0, 0, 0, &ret, d, n))
		goto out;
	map = 0;

	/* restore the original registers and let the target go */
	if (pt(PTRACE_SETREGS, pid, 0, &in.saved)) {
		say(d, n, 0, "SETREGS (restore): %s", errname(errno));
		goto out;
	}
	if (pt(PTRACE_DETACH, pid, 0, NULL)) {
		say(d, n, 0, "PTRACE_DETACH: %s", errname(errno));
		goto out;
	}
	{
		unsigned long c0 = *counter;
		long long until = now_ms() + 500;

		while (*counter == c0 && now_ms() < until)
			sleep_ms(2);
		if (waitpid(pid, NULL, WNOHANG | __WALL) != 0) {
			say(d, n, 0, "target died after detach");
			goto out;
		}
		if (*counter == c0) {
			say(d, n, 0, "target did not resume after detach");
			goto out;
		}
	}
	ok = say(d, n, 1, "[vdso] syscall @0x%lx: getpid, mmap, munmap ok; target resumed",
		 in.sc_addr);
out:
	kill_helper(pid); /* SIGKILL works whether or not it is still traced */
	return ok;
}

/* ---- probe: clone3-set-tid --------------------------------------------- */

static long clone3_set_tid(pid_t *tids, size_t ntids)
{
	struct clone_args_v1 a;

	memset(&a, 0, sizeof a);
	a.exit_signal = SIGCHLD;
	a.set_tid = (uintptr_t)tids;
	a.set_tid_size = ntids;
	return syscall(SYS_clone3, &a, sizeof a);
}

static int pid_is_free(pid_t p)
{
	char path[32];
	struct stat st;

	snprintf(path, sizeof path, "/proc/%d", (int)p);
	return stat(path, &st) < 0 && errno == ENOENT;
}

static int probe_clone3_set_tid(char *d, size_t n)
{
	long pid_max = read_long_file("/proc/sys/kernel/pid_max", 32768);
	long last = read_long_file("/proc/sys/kernel/ns_last_pid", 1000);
	long cand = last + 500 + getpid() % 97;
	int collisions = 0;
	const char *busy;

	/* sanity: a busy PID must be refused with EEXIST (reported, not required) */
	{
		pid_t self = getpid();
		long r = clone3_set_tid(&self, 1);
		int e = errno;

		if (r == 0)
			_exit(0);
		if (r < 0 && e == ENOSYS)
			return say(d, n, 0, "clone3: ENOSYS");
		if (r > 0) {
			waitpid((pid_t)r, NULL, 0);
			busy = "busy pid was accepted";
		} else {
			busy = e == EEXIST ? "busy pid -> EEXIST" : "busy pid -> unexpected error";
		}
	}

	for (int attempt = 0; attempt < 8; attempt++) {
		pid_t want = 0, got;
		int st = -1;
		long r;

		for (int scan = 0; scan < 10000 && !want; scan++, cand++) {
			if (cand >= pid_max)
				cand = 301;
			if (pid_is_free((pid_t)cand))
				want = (pid_t)cand;
		}
		cand++;
		if (!want)
			return say(d, n, 0, "no free pid found below pid_max %ld", pid_max);

		r = clone3_set_tid(&want, 1);
		if (r == 0)
			_exit(syscall(SYS_getpid) == want ? 0 : 1);
		if (r < 0) {
			if (errno == EEXIST) { /* raced with another fork, try another */
				collisions++;
				continue;
			}
			return say(d, n, 0, "clone3(set_tid=%d): %s", (int)want, errname(errno));
		}
		got = (pid_t)r;
		while (waitpid(got, &st, 0) < 0 && errno == EINTR)
			;
		if (got != want || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return say(d, n, 0, "asked pid %d, got %d (child saw %s)", (int)want, (int)got,
				   WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "it" : "another");
		return say(d, n, 1, "asked pid %d, got %d%s; %s", (int)want, (int)got,
			   collisions ? " after EEXIST retry" : "", busy);
	}
	return say(d, n, 0, "EEXIST on %d candidate pids", collisions);
}

/* ---- probe: pr-set-mm-map ---------------------------------------------- */

static int probe_pr_set_mm_map(char *d, size_t n)
{
	static __u64 auxv[256];
	struct prctl_mm_map map;
	unsigned long f[64] = { 0 };
	unsigned int size = 0;
	char stat[4096], *p;
	int fd, i;
	ssize_t auxv_len;

	/* this probe already runs in a forked child: changing its mm is harmless */
	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0))
		return say(d, n, 0, "PR_SET_MM_MAP_SIZE: %s", errname(errno));
	if (size != sizeof map)
		return say(d, n, 0, "PR_SET_MM_MAP_SIZE %u, expected %zu", size, sizeof map);

	if (read_file("/proc/self/stat", stat, sizeof stat) < 0)
		return say(d, n, 0, "read /proc/self/stat: %s", errname(errno));
	p = strrchr(stat, ')');
	if (!p)
		return say(d, n, 0, "unparsable /proc/self/stat");
	p += 2; /* field 3 (state) */
	for (i = 3; i < 64 && *p; i++) {
		char *endp;

		f[i] = strtoul(p, &endp, 10);
		if (endp == p) /* the state letter */
			endp = p + 1;
		p = endp;
		while (*p == ' ')
			p++;
	}
	if (i <= 51)
		return say(d, n, 0, "/proc/self/stat has only %d fields", i - 1);

	fd = open("/proc/self/auxv", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return say(d, n, 0, "open /proc/self/auxv: %s", errname(errno));
	auxv_len = read(fd, auxv, sizeof auxv);
	close(fd);
	if (auxv_len <= 0)
		return say(d, n, 0, "read /proc/self/auxv failed");

	memset(&map, 0, sizeof map);
	map.start_code = f[26];
	map.end_code = f[27];
	map.start_stack = f[28];
	map.start_data = f[45];
	map.end_data = f[46];
	map.start_brk = f[47];
	map.arg_start = f[48];
	map.arg_end = f[49];
	map.env_start = f[50];
	map.env_end = f[51];
	map.brk = (uint64_t)syscall(SYS_brk, 0);
	map.auxv = auxv;
	map.auxv_size = (uint32_t)auxv_len;
	map.exe_fd = (uint32_t)-1;

	if (prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map, 0))
		return say(d, n, 0, "PR_SET_MM_MAP: %s", errname(errno));
	return say(d, n, 1, "map size %u; PR_SET_MM_MAP with own values (exe_fd -1) ok", size);
}

/* ---- probe: pidfd-getfd ------------------------------------------------ */

static int probe_pidfd_getfd(char *d, size_t n)
{
	int p[2], child_fd = -1, pidfd = -1, fd = -1, ok = 0;
	char path[64];
	struct stat a, b;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return say(d, n, 0, "pipe: %s", errname(errno));
	pid = fork_helper();
	if (pid < 0)
		return say(d, n, 0, "fork: %s", errname(errno));
	if (pid == 0) { /* a file only the child has */
		int m = memfd_create("crmigrate-check", 0);

		close(p[0]);
		if (m < 0 || write_full(p[1], &m, sizeof m))
			_exit(1);
		close(p[1]);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (read_full(p[0], &child_fd, sizeof child_fd)) {
		say(d, n, 0, "child did not create its fd");
		goto out;
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		say(d, n, 0, "pidfd_open: %s", errname(errno));
		goto out;
	}
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, child_fd, 0);
	if (fd < 0) {
		say(d, n, 0, "pidfd_getfd: %s", errname(errno));
		goto out;
	}
	snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, child_fd);
	if (stat(path, &a) || fstat(fd, &b)) {
		say(d, n, 0, "stat: %s", errname(errno));
		goto out;
	}
	if (a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		say(d, n, 0, "stolen fd is a different file (ino %lu vs %lu)", (unsigned long)b.st_ino,
		    (unsigned long)a.st_ino);
		goto out;
	}
	ok = say(d, n, 1, "child fd %d -> fd %d, same inode %lu", child_fd, fd, (unsigned long)b.st_ino);
out:
	if (fd >= 0)
		close(fd);
	if (pidfd >= 0)
		close(pidfd);
	close(p[0]);
	kill_helper(pid);
	return ok;
}

/* ---- probe: userfaultfd-wp --------------------------------------------- */

/*
 * userfaultfd(2), falling back to /dev/userfaultfd (works for root even with
 * vm.unprivileged_userfaultfd=0 restrictions on the syscall). On failure a
 * description of both attempts is left in `why`.
 */
static int uffd_create(const char **via, char *why, size_t wlen)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int sys_err = errno, dev;

	*via = "syscall";
	if (fd >= 0)
		return fd;
	*via = "/dev/userfaultfd";
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		snprintf(why, wlen, "userfaultfd: %s; /dev/userfaultfd: %s", errname(sys_err),
			 errname(errno));
		return -1;
	}
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		snprintf(why, wlen, "userfaultfd: %s; USERFAULTFD_IOC_NEW: %s", errname(sys_err),
			 errname(errno));
	close(dev);
	return fd;
}

static int probe_userfaultfd_wp(char *d, size_t n)
{
	const uint64_t want = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
	struct uffdio_api api;
	struct uffdio_register reg;
	struct uffdio_writeprotect wp;
	const char *via;
	uint64_t avail;
	size_t len = 16 * 4096;
	char *mem;
	int fd;

	/* first descriptor: learn the available features (UFFDIO_API works once per fd) */
	fd = uffd_create(&via, d, n);
	if (fd < 0)
		return 0;
	memset(&api, 0, sizeof api);
	api.api = UFFD_API;
	if (ioctl(fd, UFFDIO_API, &api)) {
		int e = errno;

		close(fd);
		return say(d, n, 0, "UFFDIO_API: %s", errname(e));
	}
	avail = api.features;
	close(fd);
	if ((avail & want) != want)
		return say(d, n, 0, "features 0x%llx lack%s%s", (unsigned long long)avail,
			   avail & UFFD_FEATURE_WP_ASYNC ? "" : " WP_ASYNC",
			   avail & UFFD_FEATURE_WP_UNPOPULATED ? "" : " WP_UNPOPULATED");

	fd = uffd_create(&via, d, n);
	if (fd < 0)
		return 0;
	memset(&api, 0, sizeof api);
	api.api = UFFD_API;
	api.features = want;
	if (ioctl(fd, UFFDIO_API, &api))
		return say(d, n, 0, "UFFDIO_API(WP_ASYNC|WP_UNPOPULATED): %s", errname(errno));

	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return say(d, n, 0, "mmap: %s", errname(errno));
	memset(mem, 1, len);
	memset(&reg, 0, sizeof reg);
	reg.range.start = (uintptr_t)mem;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		return say(d, n, 0, "UFFDIO_REGISTER(MODE_WP): %s", errname(errno));
	if (!(reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT)))
		return say(d, n, 0, "UFFDIO_WRITEPROTECT not offered for the range");
	memset(&wp, 0, sizeof wp);
	wp.range = reg.range;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp))
		return say(d, n, 0, "UFFDIO_WRITEPROTECT: %s", errname(errno));
	close(fd);
	munmap(mem, len);
	return say(d, n, 1, "via %s; features 0x%llx; WP register + writeprotect ok", via,
		   (unsigned long long)avail);
}

/* ---- probe: pagemap-scan ----------------------------------------------- */

static int probe_pagemap_scan(char *d, size_t n)
{
	enum { NPAGES = 8 };
	const long psz = sysconf(_SC_PAGESIZE);
	const unsigned want = (1u << 1) | (1u << 3);
	struct page_region regions[NPAGES];
	struct pm_scan_arg arg;
	unsigned found = 0;
	char *mem, list[64] = "";
	size_t off = 0;
	long nr;
	int fd;

	mem = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return say(d, n, 0, "mmap: %s", errname(errno));
	madvise(mem, NPAGES * psz, MADV_NOHUGEPAGE);
	mem[1 * psz] = 1;
	mem[3 * psz] = 1;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return say(d, n, 0, "open /proc/self/pagemap: %s", errname(errno));
	memset(&arg, 0, sizeof arg);
	arg.size = sizeof arg;
	arg.start = (uintptr_t)mem;
	arg.end = (uintptr_t)mem + NPAGES * psz;
	arg.vec = (uintptr_t)regions;
	arg.vec_len = NPAGES;
	arg.category_mask = PAGE_IS_PRESENT;
	arg.return_mask = PAGE_IS_PRESENT;
	nr = ioctl(fd, PAGEMAP_SCAN, &arg);
	if (nr < 0) {
		int e = errno;

		close(fd);
		return say(d, n, 0, "PAGEMAP_SCAN: %s", errname(e));
	}
	close(fd);
	for (long r = 0; r < nr; r++) {
		for (uint64_t a = regions[r].start; a < regions[r].end; a += (uint64_t)psz) {
			uint64_t idx = (a - (uintptr_t)mem) / (uint64_t)psz;

			if (idx < NPAGES)
				found |= 1u << idx;
		}
	}
	munmap(mem, NPAGES * psz);
	for (int i = 0; i < NPAGES; i++)
		if (found & (1u << i))
			off += (size_t)snprintf(list + off, sizeof list - off, "%s%d", off ? "," : "", i);
	if (found != want)
		return say(d, n, 0, "present pages {%s}, expected {1,3} of %d", list, NPAGES);
	return say(d, n, 1, "present pages {%s} of %d found in %ld regions", list, NPAGES, nr);
}

/* ---- probe: tcp-repair ------------------------------------------------- */

/* Bring up "lo" in a private network namespace; 0 if we are in one. */
static int private_loopback(void)
{
	struct ifreq ifr;
	int s, rc = -1;

	if (unshare(CLONE_NEWNET))
		return -1;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) == 0)
			rc = 0;
	}
	close(s);
	return rc;
}

static int probe_tcp_repair(char *d, size_t n)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	struct tcp_repair_window win;
	uint32_t snd_seq = 0, rcv_seq = 0;
	socklen_t ol;
	int lsn = -1, cli = -1, srv = -1, ok = 0, on = 1, q, inq = 0;
	const char *where;
	struct pollfd pfd;
	char peek[16];
	ssize_t pk;

	/* a private netns keeps the host's socket tables untouched; fall back to the host's lo */
	where = private_loopback() == 0 ? "private netns" : "host netns";

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lsn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lsn < 0 || bind(lsn, (struct sockaddr *)&sa, sizeof sa) || listen(lsn, 1) ||
	    getsockname(lsn, (struct sockaddr *)&sa, &sl)) {
		say(d, n, 0, "listen on 127.0.0.1: %s", errname(errno));
		goto out;
	}
	cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cli < 0 || connect(cli, (struct sockaddr *)&sa, sizeof sa)) {
		say(d, n, 0, "connect: %s", errname(errno));
		goto out;
	}
	srv = accept4(lsn, NULL, NULL, SOCK_CLOEXEC);
	if (srv < 0) {
		say(d, n, 0, "accept: %s", errname(errno));
		goto out;
	}
	/* leave unread data in the client's receive queue */
	if (send(srv, "queued", 6, 0) != 6) {
		say(d, n, 0, "send: %s", errname(errno));
		goto out;
	}
	pfd = (struct pollfd){ .fd = cli, .events = POLLIN };
	if (poll(&pfd, 1, 500) != 1) {
		say(d, n, 0, "data did not arrive on loopback");
		goto out;
	}
	ioctl(cli, FIONREAD, &inq);

	if (setsockopt(cli, SOL_TCP, TCP_REPAIR, &on, sizeof on)) {
		say(d, n, 0, "TCP_REPAIR: %s", errname(errno));
		goto out;
	}
	q = TCP_SEND_QUEUE;
	ol = sizeof snd_seq;
	if (setsockopt(cli, SOL_TCP, TCP_REPAIR_QUEUE, &q, sizeof q) ||
	    getsockopt(cli, SOL_TCP, TCP_QUEUE_SEQ, &snd_seq, &ol)) {
		say(d, n, 0, "TCP_QUEUE_SEQ (send): %s", errname(errno));
		goto out;
	}
	q = TCP_RECV_QUEUE;
	ol = sizeof rcv_seq;
	if (setsockopt(cli, SOL_TCP, TCP_REPAIR_QUEUE, &q, sizeof q) ||
	    getsockopt(cli, SOL_TCP, TCP_QUEUE_SEQ, &rcv_seq, &ol)) {
		say(d, n, 0, "TCP_QUEUE_SEQ (recv): %s", errname(errno));
		goto out;
	}
	pk = recv(cli, peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
	if (pk != 6 || memcmp(peek, "queued", 6)) {
		say(d, n, 0, "peek of repair recv queue returned %zd bytes", pk);
		goto out;
	}
	q = TCP_NO_QUEUE;
	setsockopt(cli, SOL_TCP, TCP_REPAIR_QUEUE, &q, sizeof q);
	ol = sizeof win;
	if (getsockopt(cli, SOL_TCP, TCP_REPAIR_WINDOW, &win, &ol)) {
		say(d, n, 0, "TCP_REPAIR_WINDOW: %s", errname(errno));
		goto out;
	}
	ok = say(d, n, 1, "%s; snd_seq %u rcv_seq %u; recvq %d bytes; snd_wnd %u rcv_wnd %u", where,
		 snd_seq, rcv_seq, inq, win.snd_wnd, win.rcv_wnd);
out:
	if (cli >= 0)
		close(cli); /* still in repair mode when ok: vanishes without FIN/RST */
	if (srv >= 0)
		close(srv);
	if (lsn >= 0)
		close(lsn);
	return ok;
}

/* ---- probe: nftables --------------------------------------------------- */

static int find_in_path(const char *name, char *out, size_t len)
{
	const char *env = getenv("PATH");
	char path[4096];
	char *save = NULL;

	/* root's sbin directories even if PATH lacks them */
	snprintf(path, sizeof path, "%s:/usr/local/sbin:/usr/sbin:/sbin", env ? env : "");
	for (char *dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		if (!*dir)
			continue;
		snprintf(out, len, "%s/%s", dir, name);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

/*
 * Run argv[0] (absolute path) with `input` on stdin, collecting stdout+stderr
 * into `out`. Returns the wait status, or -1 (errno set; ETIMEDOUT on timeout).
 */
static int run_cmd(char *const argv[], const char *input, char *out, size_t outlen, int timeout_ms)
{
	int in[2], o[2], st;
	size_t used = 0;
	long long until = now_ms() + timeout_ms;
	int timed_out = 0;
	pid_t pid;

	out[0] = 0;
	if (pipe2(in, O_CLOEXEC))
		return -1;
	if (pipe2(o, O_CLOEXEC)) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	pid = fork_helper();
	if (pid < 0) {
		close(in[0]);
		close(in[1]);
		close(o[0]);
		close(o[1]);
		return -1;
	}
	if (pid == 0) {
		if (dup2(in[0], 0) < 0 || dup2(o[1], 1) < 0 || dup2(o[1], 2) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(o[1]);
	if (input) /* small scripts fit in the pipe buffer */
		(void)!write_full(in[1], input, strlen(input));
	close(in[1]);
	for (;;) {
		long long left = until - now_ms();
		struct pollfd p = { .fd = o[0], .events = POLLIN };
		char buf[512];
		ssize_t r;

		if (left <= 0) {
			timed_out = 1;
			break;
		}
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		r = read(o[0], buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (used + 1 < outlen) {
			size_t take = (size_t)r < outlen - 1 - used ? (size_t)r : outlen - 1 - used;

			memcpy(out + used, buf, take);
			used += take;
			out[used] = 0;
		}
	}
	close(o[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (timed_out) {
		errno = ETIMEDOUT;
		return -1;
	}
	return st;
}

/* First line of a command's output, shortened, for details. */
static const char *first_line(char *s)
{
	s[strcspn(s, "\n")] = 0;
	if (strlen(s) > 80)
		s[80] = 0;
	return s;
}

static const char *describe_status(int st)
{
	static char buf[48];

	if (st < 0 && errno == ETIMEDOUT)
		snprintf(buf, sizeof buf, "timed out");
	else if (st < 0)
		snprintf(buf, sizeof buf, "%s", errname(errno));
	else if (WIFEXITED(st))
		snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, sizeof buf, "killed by %s", signame(WTERMSIG(st)));
	else
		snprintf(buf, sizeof buf, "status 0x%x", st);
	return buf;
}

static int probe_nftables(char *d, size_t n)
{
	char nft[4096], out[1024], version[64] = "unknown version", table[64], script[128];
	char *argv[6];
	int st;

	if (find_in_path("nft", nft, sizeof nft))
		return say(d, n, 0, "nft not installed");

	argv[0] = nft;
	argv[1] = "--version";
	argv[2] = NULL;
	st = run_cmd(argv, NULL, out, sizeof out, NFT_CMD_TIMEOUT_MS);
	if (st == 0) {
		char *v = strstr(out, " v");

		if (v)
			snprintf(version, sizeof version, "%.*s", (int)strcspn(v + 1, " \n"), v + 1);
	}

	/* this probe process is disposable: its private netns dies with it */
	if (unshare(CLONE_NEWNET))
		return say(d, n, 0, "nft %s; unshare(CLONE_NEWNET): %s", version, errname(errno));

	snprintf(table, sizeof table, "crmigrate_check_%d", (int)checker_pid);
	snprintf(script, sizeof script, "add table inet %s\n", table);
	argv[0] = nft;
	argv[1] = "-f";
	argv[2] = "-";
	argv[3] = NULL;
	st = run_cmd(argv, script, out, sizeof out, NFT_CMD_TIMEOUT_MS);
	if (st != 0)
		return say(d, n, 0, "nft %s; add table: %s%s%s", version, describe_status(st),
			   *out ? ": " : "", first_line(out));

	argv[1] = "list";
	argv[2] = "tables";
	argv[3] = NULL;
	st = run_cmd(argv, NULL, out, sizeof out, NFT_CMD_TIMEOUT_MS);
	if (st != 0 || !strstr(out, table))
		return say(d, n, 0, "nft %s; table not listed after add (%s)", version, describe_status(st));

	argv[1] = "delete";
	argv[2] = "table";
	argv[3] = "inet";
	argv[4] = table;
	argv[5] = NULL;
	st = run_cmd(argv, NULL, out, sizeof out, NFT_CMD_TIMEOUT_MS);
	if (st != 0)
		return say(d, n, 0, "nft %s; delete table: %s%s%s", version, describe_status(st),
			   *out ? ": " : "", first_line(out));
	return say(d, n, 1, "nft %s; add+delete table in a fresh netns ok", version);
}

/* ---- probe: time-namespace --------------------------------------------- */

static int probe_time_namespace(char *d, size_t n)
{
	const long offset = 7200;
	char offs[64];
	double mine0, mine1, theirs = 0, delta;
	int fd, p[2], ok = 0;
	ssize_t w;
	pid_t pid;

	/* unshare only affects children created afterwards; this probe process is one itself */
	if (unshare(CLONE_NEWTIME))
		return say(d, n, 0, "unshare(CLONE_NEWTIME): %s", errname(errno));
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return say(d, n, 0, "open timens_offsets: %s", errname(errno));
	snprintf(offs, sizeof offs, "monotonic %ld 0\n", offset);
	w = write(fd, offs, strlen(offs));
	if (w != (ssize_t)strlen(offs)) {
		int e = errno;

		close(fd);
		return say(d, n, 0, "write timens_offsets: %s", w < 0 ? errname(e) : "short write");
	}
	close(fd);

	if (pipe2(p, O_CLOEXEC))
		return say(d, n, 0, "pipe: %s", errname(errno));
	mine0 = now_s();
	pid = fork_helper();
	if (pid < 0)
		return say(d, n, 0, "fork: %s", errname(errno));
	if (pid == 0) { /* lives in the new time namespace */
		double t = now_s();

		_exit(write_full(p[1], &t, sizeof t) ? 1 : 0);
	}
	close(p[1]);
	if (read_full(p[0], &theirs, sizeof theirs)) {
		say(d, n, 0, "grandchild did not report its clock");
		goto out;
	}
	mine1 = now_s();
	delta = theirs - mine0;
	/* theirs was taken between mine0 and mine1 in the parent's clock, plus offset */
	if (theirs < mine0 + (double)offset - 0.001 || theirs > mine1 + (double)offset + 0.001) {
		say(d, n, 0, "grandchild monotonic delta %.3fs, expected %lds", delta, offset);
		goto out;
	}
	ok = say(d, n, 1, "grandchild sees monotonic offset +%.3fs (set %lds)", delta, offset);
out:
	close(p[0]);
	kill_helper(pid);
	return ok;
}

/* ---- probe: proc-pid-mem ----------------------------------------------- */

static volatile uint64_t mem_marker;

static int probe_proc_pid_mem(char *d, size_t n)
{
	const uint64_t magic = 0x63726d6967726174ULL ^ (uint64_t)getpid();
	uint64_t got = 0;
	char path[64];
	int p[2], fd = -1, ok = 0;
	ssize_t r;
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC))
		return say(d, n, 0, "pipe: %s", errname(errno));
	mem_marker = 0;
	pid = fork_helper();
	if (pid < 0)
		return say(d, n, 0, "fork: %s", errname(errno));
	if (pid == 0) { /* only the child's copy holds the value */
		mem_marker = magic;
		close(p[0]);
		if (write_full(p[1], "r", 1))
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (read_full(p[0], &c, 1)) {
		say(d, n, 0, "child did not start");
		goto out;
	}
	snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		say(d, n, 0, "open %s: %s", path, errname(errno));
		goto out;
	}
	r = pread(fd, &got, sizeof got, (off_t)(uintptr_t)&mem_marker);
	if (r != (ssize_t)sizeof got) {
		say(d, n, 0, "pread: %s", r < 0 ? errname(errno) : "short read");
		goto out;
	}
	if (got != magic) {
		say(d, n, 0, "read 0x%llx, expected 0x%llx", (unsigned long long)got,
		    (unsigned long long)magic);
		goto out;
	}
	ok = say(d, n, 1, "pread of child's 8-byte marker at %p ok", (void *)&mem_marker);
out:
	if (fd >= 0)
		close(fd);
	close(p[0]);
	kill_helper(pid);
	return ok;
}

/* ---- probe: kcmp ------------------------------------------------------- */

static int probe_kcmp(char *d, size_t n)
{
	int p[2], fd, fds[2], ok = 0;
	long same, other;
	pid_t pid;

	fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return say(d, n, 0, "open: %s", errname(errno));
	if (pipe2(p, O_CLOEXEC))
		return say(d, n, 0, "pipe: %s", errname(errno));
	pid = fork_helper();
	if (pid < 0)
		return say(d, n, 0, "fork: %s", errname(errno));
	if (pid == 0) {
		/* a dup of the inherited file, and a separate open of the same path */
		int mine[2] = { dup(fd), open("/proc/self/stat", O_RDONLY) };

		close(p[0]);
		if (mine[0] < 0 || mine[1] < 0 || write_full(p[1], mine, sizeof mine))
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (read_full(p[0], fds, sizeof fds)) {
		say(d, n, 0, "child did not open its fds");
		goto out;
	}
	same = syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, fd, fds[0]);
	if (same < 0) {
		say(d, n, 0, "kcmp(KCMP_FILE): %s", errname(errno));
		goto out;
	}
	other = syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, fd, fds[1]);
	if (other < 0) {
		say(d, n, 0, "kcmp(KCMP_FILE, other file): %s", errname(errno));
		goto out;
	}
	if (same != 0 || other == 0) {
		say(d, n, 0, "dup'ed fd -> %ld (want 0), separate open -> %ld (want != 0)", same, other);
		goto out;
	}
	ok = say(d, n, 1, "dup'ed fd in child -> 0 (same file); separate open -> %ld", other);
out:
	close(p[0]);
	close(fd);
	kill_helper(pid);
	return ok;
}

/* ---- runner ------------------------------------------------------------ */

static const struct probe probes[] = {
	{ "ptrace-seize", 1, probe_ptrace_seize, PROBE_TIMEOUT_MS },
	{ "syscall-injection", 1, probe_syscall_injection, PROBE_TIMEOUT_MS },
	{ "clone3-set-tid", 1, probe_clone3_set_tid, PROBE_TIMEOUT_MS },
	{ "pr-set-mm-map", 1, probe_pr_set_mm_map, PROBE_TIMEOUT_MS },
	{ "pidfd-getfd", 1, probe_pidfd_getfd, PROBE_TIMEOUT_MS },
	{ "userfaultfd-wp", 0, probe_userfaultfd_wp, PROBE_TIMEOUT_MS },
	{ "pagemap-scan", 1, probe_pagemap_scan, PROBE_TIMEOUT_MS },
	{ "tcp-repair", 0, probe_tcp_repair, PROBE_TIMEOUT_MS },
	{ "nftables", 0, probe_nftables, NFT_PROBE_TIMEOUT_MS },
	{ "time-namespace", 0, probe_time_namespace, PROBE_TIMEOUT_MS },
	{ "proc-pid-mem", 1, probe_proc_pid_mem, PROBE_TIMEOUT_MS },
	{ "kcmp", 0, probe_kcmp, PROBE_TIMEOUT_MS },
};
#define NPROBES (sizeof probes / sizeof probes[0])

static void sanitize(char *s)
{
	for (; *s; s++)
		if (*s == '\t' || *s == '\n' || *s == '\r')
			*s = ' ';
}

/* Body of the forked probe process. Writes "<0|1>\t<detail>\n" to fd. */
static void __attribute__((noreturn)) probe_main(const struct probe *p, int fd, int timeout_ms)
{
	char detail[DETAIL_MAX] = "";
	char line[DETAIL_MAX + 8];
	int ok, len;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != checker_pid)
		_exit(127);
	setpgid(0, 0);
	alarm((unsigned)(timeout_ms / 1000 + 2)); /* backstop; the checker kills us first */
	signal(SIGPIPE, SIG_IGN);

	ok = p->fn(detail, sizeof detail);
	sanitize(detail);
	len = snprintf(line, sizeof line, "%d\t%s\n", ok ? 1 : 0, detail);
	if (len < 0 || (size_t)len >= sizeof line)
		len = (int)strlen(line);
	(void)!write_full(fd, line, (size_t)len);
	_exit(0);
}

/* Kill and reap every process that was reparented to us (we are a subreaper). */
static void reap_orphans(void)
{
	char path[64], buf[4096];

	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)checker_pid);
	for (int round = 0; round < 50; round++) {
		int any = 0;

		if (read_file(path, buf, sizeof buf) > 0) {
			char *s = buf, *end;

			for (long pid = strtol(s, &end, 10); end != s; s = end, pid = strtol(s, &end, 10)) {
				if (pid > 0) {
					kill((pid_t)pid, SIGKILL);
					waitpid((pid_t)pid, NULL, __WALL);
					any = 1;
				}
			}
		}
		while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
			any = 1;
		if (!any)
			return;
		sleep_ms(1);
	}
}

static int run_probe(const struct probe *p, int timeout_ms, char *detail, size_t dlen)
{
	char buf[DETAIL_MAX + 16];
	size_t used = 0;
	long long until = now_ms() + timeout_ms;
	int fds[2], st = 0, timed_out = 0, ok = 0;
	siginfo_t si;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC))
		return say(detail, dlen, 0, "checker: pipe: %s", errname(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return say(detail, dlen, 0, "checker: fork: %s", errname(errno));
	}
	if (pid == 0) {
		close(fds[0]);
		probe_main(p, fds[1], timeout_ms);
	}
	setpgid(pid, pid); /* also done by the child; whichever runs first */
	close(fds[1]);

	/* Read the result line; stop at newline, EOF, or the probe's death. */
	buf[0] = 0;
	for (;;) {
		long long left = until - now_ms();
		struct pollfd pf = { .fd = fds[0], .events = POLLIN };
		int pr;

		if (left <= 0) {
			timed_out = 1;
			break;
		}
		pr = poll(&pf, 1, left < 20 ? (int)left : 20);
		if (pr > 0) {
			ssize_t r = read(fds[0], buf + used, sizeof buf - 1 - used);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			used += (size_t)r;
			buf[used] = 0;
			if (memchr(buf, '\n', used) || used >= sizeof buf - 1)
				break;
			continue;
		}
		/* helpers may hold the pipe open after the probe died */
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid) {
			/* drain whatever it wrote before dying */
			ssize_t r = read(fds[0], buf + used, sizeof buf - 1 - used);

			if (r > 0) {
				used += (size_t)r;
				buf[used] = 0;
			}
			break;
		}
	}
	close(fds[0]);

	/* Kill the probe's group while the probe (zombie or alive) still pins its pgid. */
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	kill(-pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	reap_orphans();

	if (timed_out)
		return say(detail, dlen, 0, "timeout after %d ms", timeout_ms);
	if (used >= 2 && (buf[0] == '0' || buf[0] == '1') && buf[1] == '\t') {
		buf[strcspn(buf, "\n")] = 0;
		ok = buf[0] == '1';
		size_t len = strlen(buf + 2);

		if (len >= dlen)
			len = dlen - 1;
		memcpy(detail, buf + 2, len);
		detail[len] = 0;
		return ok;
	}
	if (WIFSIGNALED(st))
		return say(detail, dlen, 0, "probe crashed: %s", signame(WTERMSIG(st)));
	return say(detail, dlen, 0, "probe exited with status %d and no result",
		   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

int main(int argc, char **argv)
{
	long long deadline = now_ms() + TOTAL_BUDGET_MS;
	int selected[NPROBES];
	int all_required_ok = 1;

	for (size_t i = 0; i < NPROBES; i++)
		selected[i] = argc < 2;
	for (int a = 1; a < argc; a++) {
		size_t i;

		for (i = 0; i < NPROBES; i++)
			if (!strcmp(argv[a], probes[i].id))
				break;
		if (i == NPROBES) {
			fprintf(stderr, "crmigrate-check: unknown feature '%s'\n", argv[a]);
			return 2;
		}
		selected[i] = 1;
	}

	checker_pid = getpid();
	signal(SIGPIPE, SIG_IGN);
	/* orphans of a probe come back to us and are killed in reap_orphans() */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		fprintf(stderr, "crmigrate-check: PR_SET_CHILD_SUBREAPER: %s\n", errname(errno));

	for (size_t i = 0; i < NPROBES; i++) {
		char detail[DETAIL_MAX];
		long long left = deadline - now_ms();
		int timeout = probes[i].timeout_ms;
		int ok;

		if (!selected[i])
			continue;
		if (left < MIN_PROBE_MS)
			ok = say(detail, sizeof detail, 0, "skipped: time budget exhausted");
		else
			ok = run_probe(&probes[i], left < timeout ? (int)left : timeout, detail,
				       sizeof detail);
		sanitize(detail);
		if (!ok && probes[i].required)
			all_required_ok = 0;
		printf("%s\t%s\t%s\t%s\n", probes[i].id, ok ? "PASS" : "FAIL",
		       probes[i].required ? "required" : "optional", detail);
		fflush(stdout);
	}
	return all_required_ok ? 0 : 1;
}
