/*
 * Shared by the tests of several processes (t_tree, t_creds): the root R
 * maps one MAP_SHARED|MAP_ANONYMOUS region before its first fork and all
 * coordination goes through it. The region starts with a struct coord
 * (the "go" word, the setup abort flag, R's PID, the first setup error);
 * every task stores its results in it (results.h) and only R prints.
 *
 * Children wait for "go" (or another word) in steps bounded by counting
 * them, not by a clock (CLOCK_MONOTONIC may jump across a migration), and
 * leave when R is gone; R's waits after the trigger use the clock.
 *
 * The program defines, after including, the two functions declared at
 * the end of the definitions below: root_gone() and kill_leftovers().
 */
#ifndef CRM_TEST_COORD_H
#define CRM_TEST_COORD_H

#include "common.h"
#include "results.h"

#define POLL_NS (20 * MS)            /* one nanosleep step while waiting */
#define FUTEX_POLL_NS (40 * MS)      /* one FUTEX_WAIT timeout while waiting */
#define GO_MAX_NS (600000 * MS)      /* wait for "go": counted in steps */
#define SETUP_TIMEOUT_NS (10000 * MS)
#define STATE_TIMEOUT_NS (2000 * MS) /* until a task shows state S */
#define DONE_TIMEOUT_NS (8000 * MS)  /* all reports, from the trigger */
#define REAP_TIMEOUT_NS (3000 * MS)

/* Exit codes of the children (the programs add their own from 6 on). */
#define EXIT_OK 0
#define EXIT_ORPHAN 3 /* R disappeared while we waited */
#define EXIT_ABORT 4  /* R (or a sibling) gave up during setup */
#define EXIT_SETUP 5  /* our own setup failed */

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

struct coord {
	uint32_t go;    /* futex word: set by R after the trigger */
	uint32_t abort; /* setup failed: everybody leaves */
	pid_t root;
	int setup_err_set;
	char setup_err[512];
};

static struct coord *g_coord; /* the start of the shared region */
static int g_is_root = 1;
static const char *g_self = "R";

/* One line of /proc/self/maps. */
struct mapinfo {
	unsigned long start, end, ino;
	char perms[8];
	char path[PATH_MAX];
};

/* The /proc/self/maps line containing addr: 1 found, 0 none, -1 error. */
__attribute__((unused))
static int find_map(unsigned long addr, struct mapinfo *mi)
{
	static char buf[256 * 1024];
	if (read_file("/proc/self/maps", buf, sizeof buf) <= 0)
		return -1;
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		int off = 0;
		if (sscanf(line, "%lx-%lx %7s %*x %*x:%*x %lu %n", &mi->start, &mi->end, mi->perms,
			   &mi->ino, &off) >= 4 &&
		    addr >= mi->start && addr < mi->end) {
			snprintf(mi->path, sizeof mi->path, "%s", off ? line + off : "");
			return 1;
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

/* Provided by the program: */
/* A waiting child: is R gone? */
static int root_gone(void);
/* R: SIGKILL (by PID) what is still running of the tree and reap its own
 * children; returns how many were still running. */
static int kill_leftovers(void);

/*
 * R, before the first fork: maps the region of *size bytes (rounded up to
 * whole pages in *size), which starts with the struct coord.
 */
__attribute__((unused))
static void *coord_map(size_t *size)
{
	*size = page_round(*size);
	void *p = map_anon(*size, MAP_SHARED);
	if (!p)
		die("mmap coordination region");
	g_coord = p;
	g_coord->root = getpid();
	return p;
}

/* Polls an int flag every ms until non-zero (1) or the deadline (0).
 * On abort, children _exit and R gets -1. */
__attribute__((unused))
static int wait_flag(int *f, uint64_t deadline)
{
	for (;;) {
		if (LOAD(f))
			return 1;
		if (LOAD(&g_coord->abort)) {
			if (!g_is_root)
				_exit(EXIT_ABORT);
			return -1;
		}
		if (mono_ns() >= deadline)
			return 0;
		sleep_ns(MS);
	}
}

/*
 * A child's wait for a word (go, leave) to become non-zero, in steps of
 * FUTEX_WAIT with a timeout (use_futex) or of nanosleep. max_ns bounds the
 * time by counting steps, not by reading a clock (it may jump across a
 * migration). Returns 1 when set, 0 after max_ns; _exits on abort or when
 * R is gone.
 */
__attribute__((unused))
static int wait_word(uint32_t *w, int use_futex, uint64_t max_ns)
{
	uint64_t step = use_futex ? FUTEX_POLL_NS : POLL_NS;
	uint64_t steps = max_ns / step;
	for (uint64_t n = 0;; n++) {
		if (LOAD(w))
			return 1;
		if (LOAD(&g_coord->abort))
			_exit(EXIT_ABORT);
		if (n % 25 == 24 && root_gone())
			_exit(EXIT_ORPHAN);
		if (n >= steps)
			return 0;
		if (use_futex)
			futex_step(w, 0, step);
		else
			sleep_ns(step);
	}
}

/* A child enters its wait for "go" (R prints READY once all are in it). */
__attribute__((unused))
static int wait_go(int *waiting, int use_futex)
{
	STORE(waiting, 1);
	return wait_word(&g_coord->go, use_futex, GO_MAX_NS);
}

/* R waits for a flag of a task; gives up early once its process is gone
 * (running_as(pid, comm)). */
__attribute__((unused))
static void wait_task(int *flag, uint64_t deadline, pid_t pid, const char *comm)
{
	for (int n = 0;; n++) {
		if (LOAD(flag) || mono_ns() >= deadline)
			return;
		if (n % 20 == 19 && !running_as(pid, comm))
			return;
		sleep_ns(MS);
	}
}

/* A child's setup failed: tell R (it prints the message) and leave. */
__attribute__((format(printf, 1, 2), noreturn, unused))
static void cfail(const char *fmt, ...)
{
	int e = errno;
	if (__atomic_exchange_n(&g_coord->setup_err_set, 1, __ATOMIC_ACQ_REL) == 0) {
		char msg[400];
		VFORMAT(msg, fmt);
		snprintf(g_coord->setup_err, sizeof g_coord->setup_err, "%s: %s (errno %d %s)", g_self, msg, e,
			 strerror(e));
	}
	STORE(&g_coord->abort, 1);
	_exit(EXIT_SETUP);
}

/* R's setup failed: everybody leaves, R reports (a child's message first)
 * and exits. */
__attribute__((format(printf, 1, 2), noreturn, unused))
static void setup_fail(const char *fmt, ...)
{
	char msg[512];
	VFORMAT(msg, fmt);
	STORE(&g_coord->abort, 1);
	futex_wake_all(&g_coord->go); /* the futex waiters see the abort */
	kill_leftovers();
	if (LOAD(&g_coord->setup_err_set))
		say("not ok - setup: %s", g_coord->setup_err);
	else
		say("not ok - setup: %s", msg);
	say("FAIL");
	exit(1);
}

/* waitpid(pid) until the deadline: 1 reaped, 0 timeout, -1 error. */
__attribute__((unused))
static int reap_until(pid_t pid, int *status, uint64_t deadline)
{
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
		if (mono_ns() >= deadline)
			return 0;
		sleep_ns(MS);
	}
}

/* What reap_until() returned (rc) and the status, in words. */
__attribute__((unused))
static void fmt_status(char *buf, size_t size, int rc, int st)
{
	if (rc == 1 && WIFEXITED(st))
		snprintf(buf, size, "exited %d", WEXITSTATUS(st));
	else if (rc == 1 && WIFSIGNALED(st))
		snprintf(buf, size, "killed by signal %d%s", WTERMSIG(st),
			 WCOREDUMP(st) ? " (core)" : "");
	else if (rc == 1)
		snprintf(buf, size, "status %#x", st);
	else if (rc == 0)
		snprintf(buf, size, "not reaped before the timeout");
	else
		snprintf(buf, size, "waitpid failed: %s", strerror(errno));
}

/* Nothing left to reap: the detail of a failure in buf, 1 when right. */
__attribute__((unused))
static int no_child_left(char *buf, size_t size)
{
	errno = 0;
	pid_t p = waitpid(-1, NULL, WNOHANG);
	int e = errno;
	snprintf(buf, size, "waitpid(-1) returned %d (%s)", (int)p, strerror(e));
	return p < 0 && e == ECHILD;
}

/* R's checks at the end: child (R's own) exited 0 and was reaped (*child
 * becomes 0 then: nothing left to kill); what names the check. */
__attribute__((unused))
static void check_reaped(pid_t *child, const char *what)
{
	int st = 0;
	int rc = reap_until(*child, &st, mono_ns() + REAP_TIMEOUT_NS);
	char how[64];
	fmt_status(how, sizeof how, rc, st);
	check(rc == 1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, what, "%s", how);
	if (rc == 1)
		*child = 0;
}

/* ... and nothing of the tree is left: what kill_leftovers() had to kill
 * (killed: its description) and what is left to reap. */
__attribute__((unused))
static void check_nothing_left(const char *killed)
{
	int left = kill_leftovers();
	check(left == 0, "R: no process of the tree left running", "killed %d: %s", left, killed);
	char how[64];
	check(no_child_left(how, sizeof how), "R: no child left", "%s", how);
}

/* One task R waits for at the end of the setup: its "waiting" flag, name,
 * and where it records its PID and thread ID (tid NULL or 0: the main
 * thread), read once the flag is set. */
struct waiter {
	int *waiting;
	const char *name;
	const pid_t *pid, *tid;
};

/* R, at the end of the setup: every waiter reached its wait (then
 * between(), if any, runs) and sleeps there, in state S. Anything else ends
 * the setup (setup_fail). */
__attribute__((unused))
static void waiters_asleep(const struct waiter *w, int n, void (*between)(void))
{
	uint64_t deadline = mono_ns() + SETUP_TIMEOUT_NS;
	for (int i = 0; i < n; i++) {
		int rc = wait_flag(w[i].waiting, deadline);
		if (rc < 0)
			setup_fail("a child gave up");
		if (rc == 0)
			setup_fail("%s did not reach its wait", w[i].name);
	}
	if (between)
		between();
	deadline = mono_ns() + STATE_TIMEOUT_NS;
	for (int i = 0; i < n; i++) {
		pid_t pid = LOAD(w[i].pid), tid = w[i].tid ? LOAD(w[i].tid) : 0;
		struct pstat ps;
		if (stat_sleeping(pid, tid, &ps, deadline) != 0 || ps.state != 'S')
			setup_fail("%s (%d) not sleeping in its wait", w[i].name, (int)(tid ? tid : pid));
	}
	if (LOAD(&g_coord->abort))
		setup_fail("a child gave up");
}

#endif
