/*
 * t_tree: a whole process tree (sessions, process groups, a group whose
 * leader has exited, zombies, shared anonymous memory, a shared open file
 * description) must come back intact after checkpoint/restore, with every
 * PID, PPID, PGID and SID unchanged.
 *
 * The tree built by the root R (names are also the tasks' comm, "t_tree-X";
 * R keeps its own):
 *
 *   R            whatever session/group the harness gave it; blocks
 *   |            SIGRTMIN+0; opens WORKDIR/shared.txt O_RDWR|O_CREAT|O_TRUNC
 *   |            and writes 10 bytes (offset 10) before forking; every
 *   |            child but B closes its copy, so R and B alone share it
 *   +- A         setsid(): leader of a new session and group
 *   |  +- A1     in A's session and group; shares A's 1 MiB
 *   |  |         MAP_SHARED|MAP_ANONYMOUS region (pattern in it)
 *   |  +- A2     setpgid(0,0): new group in A's session
 *   |  +- A3     setpgid(0, A2): joins A2's group
 *   +- B         setpgid(0,0): own group in R's session; inherits R's
 *   |  |         shared.txt descriptor (same open file description)
 *   |  +- (B1)   setpgid(0,0), then exits (code 17) and is reaped by B
 *   |  +- B2     joined B1's group (setpgid by B2 and by B): sits in a
 *   |            group whose leader no longer exists
 *   +- C         stays in R's group; own open of shared.txt (O_RDONLY,
 *      |         3 bytes read, offset 3); SIGCHLD SIG_DFL and unblocked
 *      +- Z1     zombie: _exit(42), not reaped
 *      +- Z2     zombie: killed by its own SIGTERM (SIG_DFL), not reaped
 *
 * Each task blocks SIGRTMIN+<index> (a different mask per process). All
 * coordination goes through one MAP_SHARED|MAP_ANONYMOUS region created by
 * R before the first fork (flags, futex words, the recorded IDs and each
 * task's results); only R writes to stdout. While waiting, A's session
 * (A, A1, A2, A3) sleeps in FUTEX_WAIT with a 40 ms timeout on the "go"
 * word, B, B2 and C in 20 ms nanosleeps polling it, R in 20 ms nanosleeps
 * polling its SIGUSR2 flag. READY is printed once every task has recorded
 * its IDs and sits in its wait (/proc/PID/stat state S), the zombies are
 * zombies and B1 is gone.
 *
 * After the trigger (SIGUSR2 to R only), R first looks at the tree from
 * outside while everybody is still waiting: /proc/PID/stat (state S,
 * ppid, pgrp, session) and getpgid()/getsid() of every task, the zombies'
 * state Z and parent C, B1's PID gone but its group alive (kill(-B1, 0)),
 * the exact members of the groups/sessions created inside the tree (by a
 * scan of /proc), its shared.txt offset (10) and kcmp(KCMP_FILE): same
 * description in R and B, a different one in C (skipped with a "#" line
 * when kcmp is unavailable). Then it sets "go" and
 * every task checks itself:
 *   all    getpid, getppid (not R), getpgrp, getsid(0) equal to the
 *          recorded values, /proc/self/stat ppid/pgrp/session agree,
 *          comm, blocked mask, nothing pending, and the coordination
 *          region in /proc/self/maps (same address/size, rw-s,
 *          "/dev/zero (deleted)"; R checks all tasks see the same inode)
 *   A, A1  the 1 MiB region: same address/size, rw-s, "/dev/zero
 *          (deleted)", same inode in both, pattern intact; A1 writes a
 *          fresh token that A must see, then A one that A1 must see
 *   A2, A3 A's region is not mapped in them (forked before it existed)
 *   B      its shared.txt offset is 10, writes 5 bytes, offset 15; R
 *          then sees its own offset at 15 and the 15 bytes in the file
 *   B2     B1's PID does not exist, its group does
 *   C      its own shared.txt offset is still 3 after B's write, reading
 *          on gives the rest including B's bytes; SIGCHLD is SIG_DFL, not
 *          blocked, not pending; Z1/Z2 are zombies (state Z, parent C,
 *          recorded pgrp/session), waitid(WNOWAIT) and then waitpid()
 *          give exactly exit 42 / killed by SIGTERM, their /proc entries
 *          go away, and C has no other child
 * Then R sets "leave": A reaps A1..A3, B reaps B2 (exit status 0 each,
 * then ECHILD), R prints everything in a fixed order (R, A, A1, A2, A3,
 * B, B2, C; "not ok - X: did not report" for a silent task), reaps A, B
 * and C, and SIGKILLs by PID whatever of the tree is still alive.
 *
 * Every wait has a bound. The wait for "go" can span a checkpoint and a
 * migration, where CLOCK_MONOTONIC may jump, so it is bounded by counting
 * its sleeps (10 minutes) instead; it also ends (exit 3) when R is gone.
 * Waits after the trigger use the clock; the whole verdict comes within
 * about 15 s even when tasks never answer.
 *
 * R's own group and session are whatever it was started in (the e2e
 * harness spawns it detached, so R leads both); R, B, B2, C and the
 * zombies are checked to still be in them after the restore.
 */
#define MAX_RESULTS 64
#define RESULT_NAME_LEN 64
#define RESULT_DETAIL_LEN 128
#include "coord.h"

#include <dirent.h>
#include <linux/kcmp.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#define STEP_TIMEOUT_NS (4000 * MS)  /* one handshake after the trigger */
#define LEAVE_TIMEOUT_NS (15000 * MS)
#define CHILD_REAP_TIMEOUT_NS (3000 * MS) /* A, B reaping their children */
#define FINISH_TIMEOUT_NS (4500 * MS)     /* R waiting for that, longer */

#define REGION_SIZE (1UL << 20)
#define REGION_WORDS (REGION_SIZE / sizeof(uint64_t))
#define REGION_SEED 0xa11ce5eedULL
#define TOKEN_SEED 0x70ce17ULL
#define FILE_INIT "0123456789"
#define FILE_INIT_LEN 10
#define FILE_B "BBBBB"
#define FILE_B_LEN 5
#define C_READ_LEN 3
#define Z1_CODE 42
#define B1_CODE 17

#define EXIT_NOLEAVE 6 /* a child's exit code: "leave" never came */

enum { T_R, T_A, T_A1, T_A2, T_A3, T_B, T_B2, T_C, NT };
static const char *const tname[NT] = { "R", "A", "A1", "A2", "A3", "B", "B2", "C" };
enum { Z1, Z2, NZ };

struct task {
	/* recorded by the task itself during setup */
	pid_t pid, ppid, pgid, sid;
	uint64_t sigmask;
	char comm[32];
	int recorded;
	/* handshake with R (__atomic) */
	int waiting;  /* about to enter the wait for "go" */
	int done;     /* checks after "go" written */
	int finished; /* A, B, C: children reaped, results complete */
	/* seen after the restore */
	unsigned long coord_ino;
	struct results res; /* printed by R */
};

struct shared {
	struct coord c; /* go, abort, R's PID, setup error */
	uint32_t leave; /* futex word: set by R when the reports are in */
	struct task t[NT];
	/* B1 (the group leader that exits) */
	pid_t b1;
	int b1_grouped, b1_may_exit;
	/* zombies, recorded by C */
	pid_t z[NZ], zpgid[NZ], zsid[NZ];
	/* shared.txt */
	int r_fd, c_fd;
	int b_wrote;
	/* A's 1 MiB region */
	uint64_t region_addr;
	uint64_t tok_a1, tok_a;
	unsigned long region_ino_a1;
	int a1_wrote, a_wrote;
};

static struct shared *sh;
static size_t g_coord_size;
static char g_path[PATH_MAX]; /* WORKDIR/shared.txt */
static uint64_t *g_region; /* A's region, in A and A1 */

/* ---- small helpers ---- */

/* R is gone (or a zombie): a waiting child must not wait forever. */
static int root_gone(void)
{
	return !running_as(sh->c.root, NULL);
}

/* ---- setup of the children ---- */

/* First thing in every child: name and signal mask. */
static void child_enter(const char *name, int idx)
{
	char comm[16];
	g_is_root = 0;
	g_self = name;
	snprintf(comm, sizeof comm, "t_tree-%s", name);
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	if (idx >= 0) {
		sigset_t m;
		sigemptyset(&m);
		sigaddset(&m, SIGRTMIN + idx);
		if (sigprocmask(SIG_SETMASK, &m, NULL) != 0)
			cfail("sigprocmask");
	}
}

/* A child forks one of its own, which runs run() (it does not return). */
static pid_t fork_child(void (*run)(void), const char *name)
{
	pid_t p = fork();
	if (p < 0)
		cfail("fork %s", name);
	if (p == 0)
		run();
	return p;
}

/* Record the task's own IDs, mask and name (after any setsid/setpgid). */
static void record_self(int idx)
{
	struct task *t = &sh->t[idx];
	t->pid = getpid();
	t->ppid = getppid();
	t->pgid = getpgrp();
	t->sid = getsid(0);
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	t->sigmask = sigset_bits(&cur);
	char comm[32] = "";
	read_line("/proc/self/comm", comm, sizeof comm);
	snprintf(t->comm, sizeof t->comm, "%s", comm);
	STORE(&t->recorded, 1);
}

static void wait_recorded(int idx)
{
	if (wait_flag(&sh->t[idx].recorded, mono_ns() + SETUP_TIMEOUT_NS) != 1)
		cfail("%s did not record its IDs", tname[idx]);
}

/* ---- checks every task makes on itself after "go" ---- */

static void check_identity(int idx)
{
	struct task *t = &sh->t[idx];
	pid_t v = getpid();
	tcheck(t, v == t->pid, "getpid() unchanged", "recorded %d, got %d", t->pid, v);
	if (idx != T_R) {
		v = getppid();
		tcheck(t, v == t->ppid, "getppid() unchanged", "recorded %d, got %d", t->ppid, v);
	}
	v = getpgrp();
	tcheck(t, v == t->pgid, "getpgrp() unchanged", "recorded %d, got %d", t->pgid, v);
	v = getsid(0);
	tcheck(t, v == t->sid, "getsid(0) unchanged", "recorded %d, got %d", t->sid, v);

	struct pstat ps;
	int rc = read_stat(0, 0, &ps);
	tcheck(t, rc == 0 && ps.pgrp == t->pgid && ps.sid == t->sid,
	       "/proc/self/stat pgrp and session agree",
	       "read rc %d, pgrp %d session %d, recorded %d %d", rc, rc ? 0 : ps.pgrp,
	       rc ? 0 : ps.sid, t->pgid, t->sid);
	if (idx != T_R)
		tcheck(t, rc == 0 && ps.ppid == t->ppid, "/proc/self/stat ppid agrees",
		       "read rc %d, ppid %d, recorded %d", rc, rc ? 0 : ps.ppid, t->ppid);

	char comm[32] = "";
	read_line("/proc/self/comm", comm, sizeof comm);
	tcheck(t, strcmp(comm, t->comm) == 0, "name (/proc/self/comm) unchanged",
	       "recorded '%s', got '%s'", t->comm, comm);

	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	uint64_t m = sigset_bits(&cur);
	tcheck(t, m == t->sigmask, "blocked signal mask unchanged", "recorded %#llx, got %#llx",
	       (unsigned long long)t->sigmask, (unsigned long long)m);
	sigpending(&cur);
	m = sigset_bits(&cur);
	tcheck(t, m == 0, "no signal pending", "pending %#llx", (unsigned long long)m);

	struct mapinfo mi;
	unsigned long a = (unsigned long)sh;
	rc = find_map(a, &mi);
	tcheck(t, rc == 1 && mi.start == a && mi.end - mi.start == g_coord_size,
	       "coordination region at the same address and size",
	       "rc %d, %#lx-%#lx, expected %#lx-%#lx", rc, rc == 1 ? mi.start : 0,
	       rc == 1 ? mi.end : 0, a, a + (unsigned long)g_coord_size);
	tcheck(t, rc == 1 && strcmp(mi.perms, "rw-s") == 0 &&
		  strcmp(mi.path, "/dev/zero (deleted)") == 0,
	       "coordination region rw-s /dev/zero (deleted) in maps", "'%s' '%s'",
	       rc == 1 ? mi.perms : "", rc == 1 ? mi.path : "");
	t->coord_ino = rc == 1 ? mi.ino : 0;
}

/* A and A1: the 1 MiB region. Returns 1 if it is mapped (usable). */
static int check_region(struct task *t, unsigned long *ino)
{
	struct mapinfo mi;
	unsigned long a = (unsigned long)sh->region_addr;
	int rc = find_map(a, &mi);
	int whole = rc == 1 && mi.start <= a && mi.end >= a + REGION_SIZE;
	tcheck(t, rc == 1 && mi.start == a && mi.end - mi.start == REGION_SIZE,
	       "1 MiB region at the same address and size",
	       "rc %d, %#lx-%#lx, expected %#lx-%#lx", rc, rc == 1 ? mi.start : 0,
	       rc == 1 ? mi.end : 0, a, a + REGION_SIZE);
	tcheck(t, rc == 1 && strcmp(mi.perms, "rw-s") == 0, "1 MiB region mapped rw-s (shared)",
	       "perms '%s'", rc == 1 ? mi.perms : "");
	tcheck(t, rc == 1 && strcmp(mi.path, "/dev/zero (deleted)") == 0,
	       "1 MiB region shows as /dev/zero (deleted)", "path '%s'", rc == 1 ? mi.path : "");
	*ino = rc == 1 ? mi.ino : 0;
	tcheck(t, rc == 1 && mi.ino != t->coord_ino, "1 MiB region not the coordination region",
	       "both inode %lu", *ino);
	if (!whole) {
		tcheck(t, 0, "1 MiB region pattern intact", "skipped: region not mapped");
		return 0;
	}
	long bad = -1;
	for (size_t i = 2; i < REGION_WORDS; i++)
		if (g_region[i] != pattern64(REGION_SEED, i)) {
			bad = (long)i;
			break;
		}
	tcheck(t, bad < 0, "1 MiB region pattern intact", "word %ld is %#llx, expected %#llx", bad,
	       bad < 0 ? 0ULL : (unsigned long long)g_region[bad],
	       bad < 0 ? 0ULL : (unsigned long long)pattern64(REGION_SEED, (uint64_t)bad));
	return 1;
}

static uint64_t fresh_token(void)
{
	return pattern64(TOKEN_SEED ^ mono_ns(), (uint64_t)getpid()) | 1;
}

/* A child, set up and recorded: waits for "go" (leaves if it does not
 * come), then checks itself; the rest is up to the caller. */
static struct task *await_go(int idx, int use_futex)
{
	struct task *t = &sh->t[idx];
	if (!wait_go(&t->waiting, use_futex))
		_exit(EXIT_ORPHAN);
	check_identity(idx);
	return t;
}

/* Leaves of the tree, their checks done: wait for "leave", exit. */
__attribute__((noreturn))
static void leaf_leave(struct task *t, int use_futex)
{
	STORE(&t->done, 1);
	_exit(wait_word(&sh->leave, use_futex, LEAVE_TIMEOUT_NS) ? EXIT_OK : EXIT_NOLEAVE);
}

/* A, B: reap the listed children (exit 0 each), then no child left. */
static void reap_children(struct task *t, const int *idx, int n)
{
	uint64_t deadline = mono_ns() + CHILD_REAP_TIMEOUT_NS;
	for (int i = 0; i < n; i++) {
		int st = 0;
		int rc = reap_until(sh->t[idx[i]].pid, &st, deadline);
		char what[64], how[64];
		snprintf(what, sizeof what, "%s exited 0 and was reaped", tname[idx[i]]);
		fmt_status(how, sizeof how, rc, st);
		tcheck(t, rc == 1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, what, "%s", how);
	}
	char how[64];
	tcheck(t, no_child_left(how, sizeof how), "no other child left", "%s", how);
}

/* ---- A's session ---- */

__attribute__((noreturn))
static void run_a1(void)
{
	child_enter("A1", T_A1);
	record_self(T_A1);
	struct task *t = await_go(T_A1, 1);
	unsigned long ino = 0;
	if (check_region(t, &ino)) {
		tcheck(t, g_region[0] == 0 && g_region[1] == 0,
		       "token words still zero before the exchange", "%#llx %#llx",
		       (unsigned long long)g_region[0], (unsigned long long)g_region[1]);
		uint64_t tok = fresh_token();
		sh->tok_a1 = tok;
		sh->region_ino_a1 = ino;
		STORE(&g_region[0], tok);
		STORE(&sh->a1_wrote, 1);
		if (wait_flag(&sh->a_wrote, mono_ns() + STEP_TIMEOUT_NS) == 1) {
			uint64_t got = LOAD(&g_region[1]);
			tcheck(t, got == sh->tok_a, "sees the token A wrote into the region",
			       "word 1 is %#llx, A wrote %#llx", (unsigned long long)got,
			       (unsigned long long)sh->tok_a);
		} else {
			tcheck(t, 0, "sees the token A wrote into the region",
			       "A did not write it before the timeout");
		}
	}
	leaf_leave(t, 1);
}

/* A2 and A3, once in their group: A's region must not be mapped here. */
__attribute__((noreturn))
static void run_a2_a3(int idx)
{
	record_self(idx);
	struct task *t = await_go(idx, 1);
	struct mapinfo mi;
	int rc = find_map((unsigned long)sh->region_addr, &mi);
	tcheck(t, rc == 0, "A's 1 MiB region not mapped here (forked before it)",
	       "rc %d, %#lx-%#lx %s %s", rc, rc == 1 ? mi.start : 0, rc == 1 ? mi.end : 0,
	       rc == 1 ? mi.perms : "", rc == 1 ? mi.path : "");
	leaf_leave(t, 1);
}

__attribute__((noreturn))
static void run_a2(void)
{
	child_enter("A2", T_A2);
	if (setpgid(0, 0) != 0)
		cfail("setpgid(0, 0)");
	run_a2_a3(T_A2);
}

__attribute__((noreturn))
static void run_a3(void)
{
	child_enter("A3", T_A3);
	if (setpgid(0, sh->t[T_A2].pid) != 0)
		cfail("setpgid(0, A2=%d)", sh->t[T_A2].pid);
	run_a2_a3(T_A3);
}

__attribute__((noreturn))
static void run_a(void)
{
	child_enter("A", T_A);
	close(sh->r_fd); /* R's description is shared with B only */
	if (setsid() < 0)
		cfail("setsid");
	record_self(T_A);

	fork_child(run_a2, "A2");
	wait_recorded(T_A2);
	fork_child(run_a3, "A3");
	wait_recorded(T_A3);

	g_region = map_anon(REGION_SIZE, MAP_SHARED);
	if (!g_region)
		cfail("mmap 1 MiB shared");
	g_region[0] = g_region[1] = 0; /* token words */
	for (size_t i = 2; i < REGION_WORDS; i++)
		g_region[i] = pattern64(REGION_SEED, i);
	sh->region_addr = (uint64_t)(uintptr_t)g_region;
	fork_child(run_a1, "A1");
	wait_recorded(T_A1);

	struct task *t = await_go(T_A, 1);
	unsigned long ino = 0;
	if (check_region(t, &ino)) {
		if (wait_flag(&sh->a1_wrote, mono_ns() + STEP_TIMEOUT_NS) == 1) {
			uint64_t got = LOAD(&g_region[0]);
			tcheck(t, got == sh->tok_a1, "sees the token A1 wrote into the region",
			       "word 0 is %#llx, A1 wrote %#llx", (unsigned long long)got,
			       (unsigned long long)sh->tok_a1);
			tcheck(t, ino != 0 && sh->region_ino_a1 == ino,
			       "A and A1 map the same object (inode in maps)",
			       "A sees inode %lu, A1 %lu", ino, sh->region_ino_a1);
		} else {
			tcheck(t, 0, "sees the token A1 wrote into the region",
			       "A1 did not write it before the timeout");
		}
		uint64_t tok = fresh_token();
		sh->tok_a = tok;
		STORE(&g_region[1], tok);
		STORE(&sh->a_wrote, 1);
	}
	STORE(&t->done, 1);

	if (!wait_word(&sh->leave, 1, LEAVE_TIMEOUT_NS))
		_exit(EXIT_NOLEAVE);
	static const int kids[] = { T_A1, T_A2, T_A3 };
	reap_children(t, kids, 3);
	STORE(&t->finished, 1);
	_exit(EXIT_OK);
}

/* ---- B's group ---- */

__attribute__((noreturn))
static void run_b1(void)
{
	child_enter("B1", -1);
	close(sh->r_fd); /* the description stays R's and B's only */
	if (setpgid(0, 0) != 0)
		cfail("setpgid(0, 0)");
	sh->b1 = getpid();
	STORE(&sh->b1_grouped, 1);
	if (wait_flag(&sh->b1_may_exit, mono_ns() + SETUP_TIMEOUT_NS) != 1)
		cfail("not told to exit");
	_exit(B1_CODE);
}

/* B2's group leader (B1) must be gone while the group lives on. */
static void check_b1_group(struct task *t)
{
	pid_t b1 = sh->b1;
	errno = 0;
	int r = kill(b1, 0);
	tcheck(t, r < 0 && errno == ESRCH, "no process with B1's PID (group leader gone)",
	       "kill(%d, 0) returned %d (%s)", b1, r, strerror(errno));
	errno = 0;
	r = kill(-b1, 0);
	tcheck(t, r == 0, "B1's process group still exists", "kill(-%d, 0): %s", b1,
	       strerror(errno));
}

__attribute__((noreturn))
static void run_b2(void)
{
	child_enter("B2", T_B2);
	close(sh->r_fd);
	if (setpgid(0, sh->b1) != 0)
		cfail("setpgid(0, B1=%d)", sh->b1);
	record_self(T_B2);
	struct task *t = await_go(T_B2, 0);
	tcheck(t, getpgrp() == sh->b1 && getpgrp() != getpid(), "still in B1's group",
	       "pgrp %d, B1 was %d", (int)getpgrp(), (int)sh->b1);
	check_b1_group(t);
	leaf_leave(t, 0);
}

__attribute__((noreturn))
static void run_b(void)
{
	child_enter("B", T_B);
	if (setpgid(0, 0) != 0)
		cfail("setpgid(0, 0)");
	record_self(T_B);

	pid_t b1 = fork_child(run_b1, "B1");
	if (wait_flag(&sh->b1_grouped, mono_ns() + SETUP_TIMEOUT_NS) != 1)
		cfail("B1 did not make its own group");
	pid_t b2 = fork_child(run_b2, "B2");
	/* Both the parent and the child set the group (the shell idiom). */
	if (setpgid(b2, b1) != 0)
		cfail("setpgid(B2=%d, B1=%d)", b2, b1);
	wait_recorded(T_B2);

	STORE(&sh->b1_may_exit, 1);
	int st = 0;
	int rc = reap_until(b1, &st, mono_ns() + SETUP_TIMEOUT_NS);
	if (rc != 1 || !WIFEXITED(st) || WEXITSTATUS(st) != B1_CODE) {
		char how[64];
		fmt_status(how, sizeof how, rc, st);
		cfail("B1 (%d): %s, expected exit %d", b1, how, B1_CODE);
	}
	if (getpgid(b2) != b1)
		cfail("B2 in group %d, expected B1's %d", getpgid(b2), b1);

	struct task *t = await_go(T_B, 0);
	check_b1_group(t);
	int fd = sh->r_fd;
	int fl = fcntl(fd, F_GETFL);
	tcheck(t, fl >= 0 && (fl & O_ACCMODE) == O_RDWR, "inherited shared.txt fd open O_RDWR",
	       "F_GETFL %#x (%s)", fl, fl < 0 ? strerror(errno) : "wrong mode");
	off_t off = lseek(fd, 0, SEEK_CUR);
	tcheck(t, off == FILE_INIT_LEN, "inherited shared.txt offset 10 before its write",
	       "offset %lld", (long long)off);
	ssize_t w = write(fd, FILE_B, FILE_B_LEN);
	tcheck(t, w == FILE_B_LEN, "write 5 bytes to the inherited shared.txt fd",
	       "write returned %zd (%s)", w, w < 0 ? strerror(errno) : "short");
	off = lseek(fd, 0, SEEK_CUR);
	tcheck(t, off == FILE_INIT_LEN + FILE_B_LEN, "inherited shared.txt offset 15 after it",
	       "offset %lld", (long long)off);
	STORE(&sh->b_wrote, 1);
	STORE(&t->done, 1);

	if (!wait_word(&sh->leave, 0, LEAVE_TIMEOUT_NS))
		_exit(EXIT_NOLEAVE);
	static const int kids[] = { T_B2 };
	reap_children(t, kids, 1);
	STORE(&t->finished, 1);
	_exit(EXIT_OK);
}

/* ---- C and its zombies ---- */

/* waitid(WNOWAIT) until child z is a zombie: 1 ok, 0 timeout, -1 error. */
static int wait_zombie(pid_t z, siginfo_t *si, uint64_t deadline)
{
	for (;;) {
		memset(si, 0, sizeof *si);
		if (waitid(P_PID, (id_t)z, si, WEXITED | WNOWAIT | WNOHANG) != 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (si->si_pid == z)
			return 1;
		if (mono_ns() >= deadline)
			return 0;
		sleep_ns(MS);
	}
}

static int zombie_info_ok(int zi, const siginfo_t *si)
{
	if (zi == Z1)
		return si->si_code == CLD_EXITED && si->si_status == Z1_CODE;
	return si->si_code == CLD_KILLED && si->si_status == SIGTERM;
}

static int zombie_status_ok(int zi, int st)
{
	if (zi == Z1)
		return WIFEXITED(st) && WEXITSTATUS(st) == Z1_CODE;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM && !WCOREDUMP(st);
}

static void check_zombies(struct task *t)
{
	struct sigaction sa;
	sigset_t cur;
	sigaction(SIGCHLD, NULL, &sa);
	tcheck(t, !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL, "SIGCHLD is SIG_DFL",
	       "handler %p, flags %#x", (void *)sa.sa_handler, sa.sa_flags);
	sigprocmask(SIG_BLOCK, NULL, &cur);
	tcheck(t, !sigismember(&cur, SIGCHLD), "SIGCHLD not blocked", "it is");
	sigpending(&cur);
	tcheck(t, !sigismember(&cur, SIGCHLD), "SIGCHLD not pending (zombies still there)",
	       "it is");

	for (int zi = 0; zi < NZ; zi++) {
		const char *zn = zi == Z1 ? "Z1" : "Z2";
		pid_t z = sh->z[zi];
		char what[64];
		struct pstat ps;
		int rc = read_stat(z, 0, &ps);
		snprintf(what, sizeof what, "%s is a zombie child with its pgrp/session", zn);
		tcheck(t, rc == 0 && ps.state == 'Z' && ps.ppid == t->pid && ps.pgrp == sh->zpgid[zi] &&
			  ps.sid == sh->zsid[zi],
		       what, "pid %d: rc %d, state %c ppid %d pgrp %d session %d, expected Z %d %d %d",
		       z, rc, rc ? '?' : ps.state, rc ? 0 : ps.ppid, rc ? 0 : ps.pgrp,
		       rc ? 0 : ps.sid, t->pid, sh->zpgid[zi], sh->zsid[zi]);

		siginfo_t si;
		memset(&si, 0, sizeof si);
		errno = 0;
		int wr = waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT | WNOHANG);
		snprintf(what, sizeof what, "%s: waitid(WNOWAIT) code and status", zn);
		tcheck(t, wr == 0 && si.si_pid == z && zombie_info_ok(zi, &si), what,
		       "rc %d (%s), si_pid %d si_code %d si_status %d", wr, strerror(errno),
		       (int)si.si_pid, si.si_code, si.si_status);

		int st = 0;
		errno = 0;
		pid_t r = waitpid(z, &st, WNOHANG);
		char how[64];
		fmt_status(how, sizeof how, r == z ? 1 : r == 0 ? 0 : -1, st);
		snprintf(what, sizeof what, "%s reaped: %s", zn,
			 zi == Z1 ? "exit status 42" : "killed by SIGTERM");
		tcheck(t, r == z && zombie_status_ok(zi, st), what, "waitpid returned %d: %s", (int)r,
		       how);
		if (r == z) {
			rc = read_stat(z, 0, &ps);
			snprintf(what, sizeof what, "%s gone from /proc once reaped", zn);
			tcheck(t, rc < 0, what, "state %c", rc ? '?' : ps.state);
		}
	}
	char how[64];
	tcheck(t, no_child_left(how, sizeof how), "no other child", "%s", how);
	sigpending(&cur);
	tcheck(t, !sigismember(&cur, SIGCHLD), "SIGCHLD still not pending after the reaping",
	       "it is");
}

__attribute__((noreturn))
static void run_c(void)
{
	child_enter("C", T_C);
	close(sh->r_fd); /* R's description is shared with B only */
	if (set_handler(SIGCHLD, SIG_DFL) != 0)
		cfail("sigaction(SIGCHLD, SIG_DFL)");

	int fd = open(g_path, O_RDONLY);
	if (fd < 0)
		cfail("open %s", g_path);
	char buf[C_READ_LEN];
	if (read(fd, buf, C_READ_LEN) != C_READ_LEN || memcmp(buf, FILE_INIT, C_READ_LEN) != 0)
		cfail("read 3 bytes of shared.txt");
	sh->c_fd = fd;

	for (int zi = 0; zi < NZ; zi++) {
		pid_t z = fork();
		if (z < 0)
			cfail("fork zombie");
		if (z == 0) {
			child_enter(zi == Z1 ? "Z1" : "Z2", -1);
			if (zi == Z1)
				_exit(Z1_CODE);
			signal(SIGTERM, SIG_DFL);
			sigset_t m;
			sigemptyset(&m);
			sigprocmask(SIG_SETMASK, &m, NULL);
			raise(SIGTERM);
			_exit(99);
		}
		sh->z[zi] = z;
		siginfo_t si;
		int rc = wait_zombie(z, &si, mono_ns() + SETUP_TIMEOUT_NS);
		if (rc != 1 || !zombie_info_ok(zi, &si))
			cfail("zombie %d: rc %d, si_code %d si_status %d", z, rc, si.si_code,
			      si.si_status);
		struct pstat ps;
		if (read_stat(z, 0, &ps) != 0 || ps.state != 'Z' || ps.ppid != getpid())
			cfail("zombie %d not in state Z under C", z);
		sh->zpgid[zi] = ps.pgrp;
		sh->zsid[zi] = ps.sid;
	}
	sigset_t pend;
	sigpending(&pend);
	if (sigismember(&pend, SIGCHLD))
		cfail("SIGCHLD pending although SIG_DFL");
	record_self(T_C);

	struct task *t = await_go(T_C, 0);
	int fl = fcntl(fd, F_GETFL);
	tcheck(t, fl >= 0 && (fl & O_ACCMODE) == O_RDONLY, "own shared.txt fd open O_RDONLY",
	       "F_GETFL %#x", fl);
	off_t off = lseek(fd, 0, SEEK_CUR);
	tcheck(t, off == C_READ_LEN, "own shared.txt offset still 3", "offset %lld",
	       (long long)off);
	if (wait_flag(&sh->b_wrote, mono_ns() + STEP_TIMEOUT_NS) == 1) {
		off = lseek(fd, 0, SEEK_CUR);
		tcheck(t, off == C_READ_LEN, "own offset still 3 after B wrote (own description)",
		       "offset %lld", (long long)off);
		char got[64] = "";
		ssize_t n = read(fd, got, sizeof got - 1);
		const char *want = FILE_INIT FILE_B;
		tcheck(t, n == FILE_INIT_LEN + FILE_B_LEN - C_READ_LEN &&
			  memcmp(got, want + C_READ_LEN, (size_t)n) == 0,
		       "reads on from 3: the rest of the file including B's bytes",
		       "read %zd bytes '%.*s'", n, n > 0 ? (int)n : 0, got);
		off = lseek(fd, 0, SEEK_CUR);
		tcheck(t, off == FILE_INIT_LEN + FILE_B_LEN, "own offset 15 after reading on",
		       "offset %lld", (long long)off);
	} else {
		tcheck(t, 0, "own offset still 3 after B wrote (own description)",
		       "B did not write before the timeout");
	}
	check_zombies(t);
	STORE(&t->done, 1);

	if (!wait_word(&sh->leave, 0, LEAVE_TIMEOUT_NS))
		_exit(EXIT_NOLEAVE);
	STORE(&t->finished, 1);
	_exit(EXIT_OK);
}

/* ---- R ---- */

static pid_t g_kids[3]; /* A, B, C as returned by fork */

/* Every PID of the tree R knows of, with its expected comm. */
static int tree_pids(pid_t *pids, const char **names)
{
	static const char *const comm[NT] = { "", "t_tree-A", "t_tree-A1", "t_tree-A2",
					      "t_tree-A3", "t_tree-B", "t_tree-B2", "t_tree-C" };
	int n = 0;
	for (int i = 1; i < NT; i++) {
		pid_t p = sh->t[i].pid;
		if (i == T_A && !p)
			p = g_kids[0];
		if (i == T_B && !p)
			p = g_kids[1];
		if (i == T_C && !p)
			p = g_kids[2];
		if (p > 0) {
			pids[n] = p;
			names[n++] = comm[i];
		}
	}
	for (int zi = 0; zi < NZ; zi++)
		if (sh->z[zi] > 0) {
			pids[n] = sh->z[zi];
			names[n++] = zi == Z1 ? "t_tree-Z1" : "t_tree-Z2";
		}
	if (sh->b1 > 0) {
		pids[n] = sh->b1;
		names[n++] = "t_tree-B1";
	}
	return n;
}

static char g_killed[256]; /* what kill_leftovers() killed: "A(123) B2(125)" */

/* SIGKILL (by PID) every process of the tree still running, reap R's own
 * children. Returns how many were still running. */
static int kill_leftovers(void)
{
	pid_t pids[NT + NZ + 1];
	const char *names[NT + NZ + 1];
	int n = tree_pids(pids, names), left = 0;
	size_t len = 0, size = sizeof g_killed;
	g_killed[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (!running_as(pids[i], names[i]))
			continue;
		left++;
		if (len < size)
			len += (size_t)snprintf(g_killed + len, size - len, "%s%s(%d)", len ? " " : "",
						names[i] + 7, pids[i]);
		kill(pids[i], SIGKILL);
	}
	uint64_t deadline = mono_ns() + REAP_TIMEOUT_NS;
	for (int i = 0; i < 3; i++)
		if (g_kids[i] > 0 && waitpid(g_kids[i], NULL, WNOHANG) == 0)
			reap_until(g_kids[i], &(int){ 0 }, deadline);
	return left;
}

/* The expected shape, checked once at setup (later only equality). */
static void validate_tree(void)
{
	struct task *t = sh->t;
	pid_t r = t[T_R].pid, a = t[T_A].pid, a2 = t[T_A2].pid, b = t[T_B].pid;
#define EXPECT(idx, pp, pg, sd)                                                                \
	do {                                                                                   \
		if (t[idx].ppid != (pp) || t[idx].pgid != (pg) || t[idx].sid != (sd))          \
			setup_fail("%s: ppid/pgid/sid %d/%d/%d, expected %d/%d/%d", tname[idx], \
				   t[idx].ppid, t[idx].pgid, t[idx].sid, (pp), (pg), (sd));    \
	} while (0)
	EXPECT(T_A, r, a, a);
	EXPECT(T_A1, a, a, a);
	EXPECT(T_A2, a, a2, a);
	EXPECT(T_A3, a, a2, a);
	EXPECT(T_B, r, b, t[T_R].sid);
	EXPECT(T_B2, b, sh->b1, t[T_R].sid);
	EXPECT(T_C, r, t[T_R].pgid, t[T_R].sid);
#undef EXPECT
	if (sh->b1 <= 0 || sh->b1 == t[T_B2].pid)
		setup_fail("B1 pid %d", sh->b1);
	errno = 0;
	if (kill(sh->b1, 0) == 0 || errno != ESRCH)
		setup_fail("B1 (%d) still exists", sh->b1);
	for (int zi = 0; zi < NZ; zi++) {
		struct pstat ps;
		if (read_stat(sh->z[zi], 0, &ps) != 0 || ps.state != 'Z' || ps.ppid != t[T_C].pid ||
		    ps.pgrp != t[T_R].pgid || ps.sid != t[T_R].sid)
			setup_fail("zombie %d not a zombie child of C in R's group", sh->z[zi]);
	}
}

struct member_set {
	const char *name;
	int by_sid;
	pid_t key;
	pid_t want[4];
	int nwant;
	pid_t got[8];
	int ngot;
};

/* The exact members of the groups and sessions created inside the tree. */
static void check_members(struct task *r)
{
	struct task *t = sh->t;
	struct member_set sets[] = {
		{ "members of A's session: A A1 A2 A3", 1, t[T_A].pid,
		  { t[T_A].pid, t[T_A1].pid, t[T_A2].pid, t[T_A3].pid }, 4, { 0 }, 0 },
		{ "members of A's group: A A1", 0, t[T_A].pid, { t[T_A].pid, t[T_A1].pid }, 2, { 0 }, 0 },
		{ "members of A2's group: A2 A3", 0, t[T_A2].pid, { t[T_A2].pid, t[T_A3].pid }, 2,
		  { 0 }, 0 },
		{ "members of B's group: B", 0, t[T_B].pid, { t[T_B].pid }, 1, { 0 }, 0 },
		{ "members of B1's (leaderless) group: B2", 0, sh->b1, { t[T_B2].pid }, 1, { 0 }, 0 },
	};
	const int nsets = (int)(sizeof sets / sizeof sets[0]);
	DIR *d = opendir("/proc");
	if (!d) {
		tcheck(r, 0, "scan /proc", "%s", strerror(errno));
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		struct pstat ps;
		if (read_stat((pid_t)pid, 0, &ps) != 0)
			continue;
		for (int i = 0; i < nsets; i++) {
			struct member_set *s = &sets[i];
			if ((s->by_sid ? ps.sid : ps.pgrp) != s->key)
				continue;
			if (s->ngot < 8)
				s->got[s->ngot] = (pid_t)pid;
			s->ngot++;
		}
	}
	closedir(d);
	for (int i = 0; i < nsets; i++) {
		struct member_set *s = &sets[i];
		int n = s->ngot < 8 ? s->ngot : 8;
		qsort(s->want, (size_t)s->nwant, sizeof(pid_t), cmp_pid);
		qsort(s->got, (size_t)n, sizeof(pid_t), cmp_pid);
		char w[64], g[96];
		fmt_pids(w, sizeof w, s->want, s->nwant);
		fmt_pids(g, sizeof g, s->got, n);
		tcheck(r, s->ngot == s->nwant && memcmp(s->want, s->got, sizeof(pid_t) * (size_t)n) == 0,
		       s->name, "%s %d: expected [%s], got %d [%s%s]", s->by_sid ? "session" : "group",
		       (int)s->key, w, s->ngot, g, s->ngot > 8 ? ",..." : "");
	}
}

/* R, after the trigger and before "go": the tree seen from outside. */
static void outside_view(void)
{
	struct task *r = &sh->t[T_R];
	uint64_t deadline = mono_ns() + STATE_TIMEOUT_NS;
	for (int i = 1; i < NT; i++) {
		struct task *t = &sh->t[i];
		char what[64];
		struct pstat ps;
		int rc = stat_sleeping(t->pid, 0, &ps, deadline);
		snprintf(what, sizeof what, "%s waiting: /proc/PID/stat S, ppid/pgrp/session", tname[i]);
		tcheck(r, rc == 0 && ps.state == 'S' && ps.ppid == t->ppid && ps.pgrp == t->pgid &&
			  ps.sid == t->sid,
		       what, "pid %d: rc %d, %c %d/%d/%d, expected S %d/%d/%d", t->pid, rc,
		       rc ? '?' : ps.state, rc ? 0 : ps.ppid, rc ? 0 : ps.pgrp, rc ? 0 : ps.sid,
		       t->ppid, t->pgid, t->sid);
		pid_t pg = getpgid(t->pid), sd = getsid(t->pid);
		snprintf(what, sizeof what, "getpgid/getsid(%s) unchanged", tname[i]);
		tcheck(r, pg == t->pgid && sd == t->sid, what, "got %d/%d, recorded %d/%d", pg, sd,
		       t->pgid, t->sid);
	}
	for (int zi = 0; zi < NZ; zi++) {
		struct pstat ps;
		pid_t z = sh->z[zi];
		int rc = read_stat(z, 0, &ps);
		tcheck(r, rc == 0 && ps.state == 'Z' && ps.ppid == sh->t[T_C].pid && ps.pgrp == sh->zpgid[zi] &&
			  ps.sid == sh->zsid[zi],
		       zi == Z1 ? "Z1 still a zombie child of C (/proc/PID/stat)"
				: "Z2 still a zombie child of C (/proc/PID/stat)",
		       "pid %d: rc %d, %c %d/%d/%d, expected Z %d/%d/%d", z, rc, rc ? '?' : ps.state,
		       rc ? 0 : ps.ppid, rc ? 0 : ps.pgrp, rc ? 0 : ps.sid, sh->t[T_C].pid,
		       sh->zpgid[zi], sh->zsid[zi]);
	}
	check_b1_group(r);
	check_members(r);

	/* shared.txt from R's side, before B writes. */
	int fd = sh->r_fd;
	off_t off = lseek(fd, 0, SEEK_CUR);
	tcheck(r, off == FILE_INIT_LEN, "shared.txt offset 10 before B's write", "offset %lld (%s)",
	       (long long)off, off < 0 ? strerror(errno) : "wrong");
	int fl = fcntl(fd, F_GETFL);
	tcheck(r, fl >= 0 && (fl & O_ACCMODE) == O_RDWR, "shared.txt fd open O_RDWR", "F_GETFL %#x",
	       fl);
	struct stat a, b;
	int s1 = fstat(fd, &a), s2 = stat(g_path, &b);
	tcheck(r, s1 == 0 && s2 == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino,
	       "shared.txt fd is WORKDIR/shared.txt (dev/inode)", "fstat %d, stat %d, %lu vs %lu",
	       s1, s2, s1 ? 0UL : (unsigned long)a.st_ino, s2 ? 0UL : (unsigned long)b.st_ino);
	errno = 0;
	long k = syscall(SYS_kcmp, r->pid, sh->t[T_B].pid, KCMP_FILE, fd, fd);
	if (k < 0 && (errno == ENOSYS || errno == EPERM || errno == EACCES)) {
		say("# kcmp unavailable (%s): description sharing checked by offsets only",
		    strerror(errno));
	} else {
		tcheck(r, k == 0, "kcmp: R and B share one shared.txt description",
		       "kcmp returned %ld (%s)", k, k < 0 ? strerror(errno) : "different");
		errno = 0;
		k = syscall(SYS_kcmp, r->pid, sh->t[T_C].pid, KCMP_FILE, fd, sh->c_fd);
		tcheck(r, k > 0, "kcmp: C's shared.txt description is its own",
		       "kcmp returned %ld (%s)", k, k < 0 ? strerror(errno) : "the same");
	}
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: %s WORKDIR", argv[0]);
	char workdir[PATH_MAX];
	if (!realpath(argv[1], workdir))
		die("realpath %s", argv[1]);
	if ((size_t)snprintf(g_path, sizeof g_path, "%s/shared.txt", workdir) >= sizeof g_path)
		die("path too long");

	g_coord_size = sizeof *sh;
	sh = coord_map(&g_coord_size);

	/* Known signal state: SIGCHLD default (children must become zombies),
	 * only SIGRTMIN+0 blocked, SIGUSR2 caught (children inherit it). */
	if (set_handler(SIGCHLD, SIG_DFL) != 0)
		die("sigaction(SIGCHLD)");
	{
		sigset_t m;
		sigemptyset(&m);
		sigaddset(&m, SIGRTMIN + T_R);
		if (sigprocmask(SIG_SETMASK, &m, NULL) != 0)
			die("sigprocmask");
	}
	install_trigger();
	record_self(T_R);

	int fd = open(g_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open %s", g_path);
	if (write(fd, FILE_INIT, FILE_INIT_LEN) != FILE_INIT_LEN)
		die("write %s", g_path);
	sh->r_fd = fd;

	void (*const run[3])(void) = { run_a, run_b, run_c };
	for (int i = 0; i < 3; i++) {
		pid_t p = fork();
		if (p < 0)
			setup_fail("fork %s: %s", tname[i == 0 ? T_A : i == 1 ? T_B : T_C],
				   strerror(errno));
		if (p == 0)
			run[i]();
		g_kids[i] = p;
	}

	/* Everybody recorded and waiting, in state S; zombies zombies. */
	struct waiter w[NT - 1];
	for (int i = 1; i < NT; i++)
		w[i - 1] = (struct waiter){&sh->t[i].waiting, tname[i], &sh->t[i].pid, NULL};
	waiters_asleep(w, NT - 1, validate_tree);

	ready();
	poll_trigger();
	uint64_t t0 = mono_ns();

	struct task *r = &sh->t[T_R];
	check_identity(T_R);
	outside_view();

	futex_set(&sh->c.go, 1);

	if (wait_flag(&sh->b_wrote, mono_ns() + STEP_TIMEOUT_NS) == 1) {
		off_t off = lseek(fd, 0, SEEK_CUR);
		tcheck(r, off == FILE_INIT_LEN + FILE_B_LEN,
		       "shared.txt offset 15 after B's write (shared)", "offset %lld",
		       (long long)off);
		char got[32] = "";
		ssize_t n = pread(fd, got, sizeof got - 1, 0);
		tcheck(r, n == FILE_INIT_LEN + FILE_B_LEN && memcmp(got, FILE_INIT FILE_B, (size_t)n) == 0,
		       "shared.txt holds the 10 + 5 bytes", "pread %zd bytes '%.*s'", n,
		       n > 0 ? (int)n : 0, got);
	} else {
		tcheck(r, 0, "shared.txt offset 15 after B's write (shared)",
		       "B did not write before the timeout");
	}

	for (int i = 1; i < NT; i++)
		wait_task(&sh->t[i].done, t0 + DONE_TIMEOUT_NS, sh->t[i].pid, NULL);
	{
		char bad[256] = "";
		size_t len = 0;
		for (int i = 1; i < NT; i++)
			if (LOAD(&sh->t[i].done) && sh->t[i].coord_ino != r->coord_ino && len < sizeof bad)
				len += (size_t)snprintf(bad + len, sizeof bad - len, " %s:%lu", tname[i],
							sh->t[i].coord_ino);
		tcheck(r, len == 0 && r->coord_ino != 0,
		       "every task maps the same coordination object (inode)", "R:%lu,%s",
		       r->coord_ino, bad);
	}

	futex_set(&sh->leave, 1);
	uint64_t deadline = mono_ns() + FINISH_TIMEOUT_NS;
	static const int parents[] = { T_A, T_B, T_C };
	for (int i = 0; i < 3; i++)
		if (LOAD(&sh->t[parents[i]].done))
			wait_task(&sh->t[parents[i]].finished, deadline, sh->t[parents[i]].pid, NULL);

	/* Report in a fixed order. */
	for (int i = 0; i < NT; i++) {
		struct task *t = &sh->t[i];
		char what[64];
		if (i != T_R && !LOAD(&t->done)) {
			snprintf(what, sizeof what, "%s: did not report", tname[i]);
			check(0, what, "no results (task gone, or silent for %llu s after the trigger)",
			      (unsigned long long)(DONE_TIMEOUT_NS / 1000000000ULL));
			continue;
		}
		results_report(&t->res, tname[i]);
		if ((i == T_A || i == T_B || i == T_C) && !LOAD(&t->finished)) {
			snprintf(what, sizeof what, "%s: did not finish (reaping its children)", tname[i]);
			check(0, what, "no final report");
		}
	}

	/* R reaps A, B and C. */
	deadline = mono_ns() + REAP_TIMEOUT_NS;
	for (int i = 0; i < 3; i++) {
		int st = 0;
		int rc = reap_until(g_kids[i], &st, deadline);
		char what[64], how[64];
		snprintf(what, sizeof what, "R: %s exited 0 and was reaped",
			 tname[parents[i]]);
		fmt_status(how, sizeof how, rc, st);
		check(rc == 1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, what, "%s", how);
		if (rc == 1)
			g_kids[i] = 0;
	}
	check_nothing_left(g_killed);
	close(fd);
	finish();
}
