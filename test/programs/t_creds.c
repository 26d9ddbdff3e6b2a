/*
 * t_creds: the credentials of every task (user and group IDs, supplementary
 * groups, the five capability sets, securebits, no_new_privs, dumpable,
 * seccomp) must come back exactly after checkpoint/restore, per thread,
 * and must still have their effect: what the capabilities allow works,
 * what was dropped stays refused.
 *
 * The tree (names are also the tasks' comm):
 *
 *   R              started as root (uid/gid 0, effective = permitted =
 *   |              bounding set, no_new_privs 0; setup fails otherwise) and
 *   |              stays so
 *   +- D           "t_creds-D": forked by R as root, drops its credentials
 *      |           in this order:
 *      |             1. prctl(PR_CAPBSET_DROP) CAP_SYS_MODULE, CAP_SYS_BOOT,
 *      |                CAP_MKNOD
 *      |             2. setgroups({65534, 100})
 *      |             3. setresgid(65534, 100, 65534)  (fsgid follows: 100)
 *      |             4. PR_SET_SECUREBITS SECBIT_KEEP_CAPS, then
 *      |                setresuid(65534, 65534, 65534) (fsuid 65534)
 *      |             5. capset: permitted {NET_BIND_SERVICE, KILL, SETPCAP},
 *      |                effective {NET_BIND_SERVICE}, inheritable
 *      |                {NET_BIND_SERVICE, KILL}
 *      |             6. PR_CAP_AMBIENT_RAISE CAP_NET_BIND_SERVICE
 *      |             7. CAP_SETPCAP raised into effective, securebits set to
 *      |                exactly SECBIT_NO_SETUID_FIXUP | SECBIT_NOROOT (0x5,
 *      |                KEEP_CAPS cleared), CAP_SETPCAP dropped again
 *      |             8. PR_SET_NO_NEW_PRIVS 1
 *      |             9. PR_SET_DUMPABLE 1 (the ID changes cleared it)
 *      |           and checks that the result is exactly the expected state
 *      |           (setup fails otherwise)
 *      +- DT       "t_creds-DT": a second thread of D, created after the
 *                  drop (so with the same credentials); checks them too
 *
 * Expected after the restore, for D and DT alike (each reads its own,
 * with raw syscalls, so per thread):
 *   getresuid 65534/65534/65534, fsuid (setfsuid(-1)) 65534
 *   getresgid 65534/100/65534,   fsgid (setfsgid(-1)) 100
 *   getgroups {100, 65534}
 *   capget (pid 0): effective 0x400, permitted 0x520, inheritable 0x420
 *   bounding set (PR_CAPBSET_READ over 0..63): R's bounding set (as read by
 *     R after the trigger) minus bits 16, 22, 27
 *   ambient (PR_CAP_AMBIENT_IS_SET over 0..63): 0x400
 *   PR_GET_SECUREBITS 0x5, PR_GET_NO_NEW_PRIVS 1, PR_GET_DUMPABLE 1,
 *   PR_GET_SECCOMP 0
 *   /proc/self/status (DT: /proc/thread-self/status): "Uid: 65534 65534
 *     65534 65534", "Gid: 65534 100 65534 100", "Groups: 100 65534",
 *     CapInh 0x420, CapPrm 0x520, CapEff 0x400, CapBnd as above,
 *     CapAmb 0x400, "NoNewPrivs: 1", "Seccomp: 0"
 * and their effect (D tries ports 1023, 1021, ...; DT 1022, 1020, ...):
 *   bind(TCP, 127.0.0.1:port < 1024) with SO_REUSEADDR succeeds; with
 *     NET_BIND_SERVICE dropped from effective it fails EACCES (skipped with
 *     a "#" line when net.ipv4.ip_unprivileged_port_start <= port)
 *   kill(R, 0) fails EPERM (CAP_KILL only permitted); succeeds once CAP_KILL
 *     is raised from permitted into effective
 *   setuid(0), setgid(0), setgroups(0, NULL) fail EPERM
 *   capset adding CAP_SYS_ADMIN to permitted fails EPERM
 *   with CAP_SETPCAP effective: CAP_SYS_MODULE into inheritable fails EPERM
 *     (not in the bounding set), CAP_SYS_ADMIN into inheritable succeeds
 *   afterwards the credentials are exactly the expected ones again
 * R checks its own after the restore: exactly what it recorded at setup
 * (uid/gid 0/0/0/0, same groups, effective = permitted = bounding set =
 * setup value and holding the three caps D dropped, same inheritable,
 * ambient, securebits, dumpable, seccomp, no_new_privs 0), and D's and
 * DT's /proc/PID[/task/TID]/status lines from the outside (the list above)
 * and their state S before it lets them go.
 *
 * No pipes, sockets (until the checks), eventfd or SysV IPC: everything is
 * coordinated through one MAP_SHARED|MAP_ANONYMOUS region created by R
 * before the fork, and only R writes to stdout. D and DT wait for "go" in
 * 20 ms nanosleeps bounded by counting (10 minutes: CLOCK_MONOTONIC may
 * jump across a migration) and leave when R is gone; R polls its SIGUSR2
 * flag in 20 ms nanosleeps. After the trigger every wait uses the clock,
 * the verdict comes within about 14 s even if D never answers. D joins DT
 * and exits 0; R reaps it and SIGKILLs it by PID if it is still there.
 *
 * WORKDIR is accepted for the common protocol and not used. Groups 65534
 * and 100 must exist in /etc/group (nogroup and users on Debian).
 */
#define MAX_RESULTS 96
#define RESULT_NAME_LEN 96
#define RESULT_DETAIL_LEN 192
#include "coord.h"

#include <arpa/inet.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#define JOIN_TIMEOUT_NS (6000 * MS)  /* D waiting for DT's report */

#define CAPB(c) (1ULL << (c))
#define NOBODY 65534U
#define NOGROUP 65534U
#define USERS 100U
#define D_PRM (CAPB(CAP_NET_BIND_SERVICE) | CAPB(CAP_KILL) | CAPB(CAP_SETPCAP))
#define D_EFF CAPB(CAP_NET_BIND_SERVICE)
#define D_INH (CAPB(CAP_NET_BIND_SERVICE) | CAPB(CAP_KILL))
#define D_AMB CAPB(CAP_NET_BIND_SERVICE)
#define D_DROPPED (CAPB(CAP_SYS_MODULE) | CAPB(CAP_SYS_BOOT) | CAPB(CAP_MKNOD))
#define D_SECBITS (SECBIT_NO_SETUID_FIXUP | SECBIT_NOROOT)
#define D_PORT 1023
#define DT_PORT 1022

#define EXIT_NOGO 6 /* D's exit code: "go" never came */

enum { T_R, T_D, T_DT, NT };
static const char *const tname[NT] = { "R", "D", "DT" };

struct task {
	pid_t pid, tid;
	int recorded; /* IDs written (__atomic) */
	int waiting;  /* about to enter the wait for "go" */
	int done;     /* checks after "go" written */
	struct results res; /* printed by R */
};

struct shared {
	struct coord c;       /* go, abort, R's PID, setup error */
	uint64_t r_bnd_setup; /* R's bounding set at setup */
	uint64_t r_bnd_now;   /* R's bounding set after the trigger */
	struct task t[NT];
};

static struct shared *sh;
static pid_t g_d; /* D as returned by fork */

/* ---- small helpers ---- */

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static int read_int_file(const char *path, long *v)
{
	char buf[64];
	if (read_file(path, buf, sizeof buf) <= 0)
		return -1;
	char *end;
	errno = 0;
	*v = strtol(buf, &end, 10);
	return errno || end == buf ? -1 : 0;
}

/* ---- credentials ---- */

struct caps {
	uint64_t eff, prm, inh;
};

static int cap_get(struct caps *c)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	if (syscall(SYS_capget, &h, d) != 0)
		return -1;
	c->eff = d[0].effective | (uint64_t)d[1].effective << 32;
	c->prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	c->inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

/* capset on the calling thread only (pid 0). */
static int cap_set(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	d[0].effective = (uint32_t)eff;
	d[1].effective = (uint32_t)(eff >> 32);
	d[0].permitted = (uint32_t)prm;
	d[1].permitted = (uint32_t)(prm >> 32);
	d[0].inheritable = (uint32_t)inh;
	d[1].inheritable = (uint32_t)(inh >> 32);
	return (int)syscall(SYS_capset, &h, d);
}

#define MAX_GROUPS 64

/* Everything the calling thread's credentials consist of. */
struct snap {
	int err; /* a syscall failed: what */
	char errwhat[64];
	unsigned uid[4], gid[4]; /* real, effective, saved, fs */
	int ngroups;
	unsigned groups[MAX_GROUPS]; /* sorted */
	uint64_t eff, prm, inh, bnd, amb;
	int secbits, nnp, dumpable, seccomp;
};

static int cmp_uint(const void *x, const void *y)
{
	unsigned a = *(const unsigned *)x, b = *(const unsigned *)y;
	return (a > b) - (a < b);
}

static void snap_fail(struct snap *s, const char *what)
{
	if (!s->err) {
		s->err = errno ? errno : -1;
		snprintf(s->errwhat, sizeof s->errwhat, "%s", what);
	}
}

/* Raw syscalls only: every value is the calling thread's own. */
static void take_snap(struct snap *s)
{
	memset(s, 0, sizeof *s);
	uid_t u[3];
	gid_t g[3];
	if (syscall(SYS_getresuid, &u[0], &u[1], &u[2]) != 0)
		snap_fail(s, "getresuid");
	if (syscall(SYS_getresgid, &g[0], &g[1], &g[2]) != 0)
		snap_fail(s, "getresgid");
	for (int i = 0; i < 3; i++) {
		s->uid[i] = u[i];
		s->gid[i] = g[i];
	}
	/* An invalid ID changes nothing and returns the current one. */
	s->uid[3] = (unsigned)syscall(SYS_setfsuid, (uid_t)-1);
	s->gid[3] = (unsigned)syscall(SYS_setfsgid, (gid_t)-1);
	gid_t gl[MAX_GROUPS];
	long n = syscall(SYS_getgroups, MAX_GROUPS, gl);
	if (n < 0) {
		snap_fail(s, "getgroups");
		n = 0;
	}
	s->ngroups = (int)n;
	for (long i = 0; i < n; i++)
		s->groups[i] = gl[i];
	qsort(s->groups, (size_t)n, sizeof(unsigned), cmp_uint);
	struct caps c;
	if (cap_get(&c) != 0)
		snap_fail(s, "capget");
	else {
		s->eff = c.eff;
		s->prm = c.prm;
		s->inh = c.inh;
	}
	for (int cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
			s->bnd |= CAPB(cap);
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1)
			s->amb |= CAPB(cap);
	}
	s->secbits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	s->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	s->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	s->seccomp = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
}

/* What D and DT must hold (r_bnd: R's bounding set). */
static void d_expected(struct snap *w, uint64_t r_bnd)
{
	memset(w, 0, sizeof *w);
	for (int i = 0; i < 4; i++)
		w->uid[i] = NOBODY;
	w->gid[0] = NOGROUP;
	w->gid[1] = USERS;
	w->gid[2] = NOGROUP;
	w->gid[3] = USERS;
	w->ngroups = 2;
	w->groups[0] = USERS;
	w->groups[1] = NOGROUP;
	w->eff = D_EFF;
	w->prm = D_PRM;
	w->inh = D_INH;
	w->bnd = r_bnd & ~D_DROPPED;
	w->amb = D_AMB;
	w->secbits = D_SECBITS;
	w->nnp = 1;
	w->dumpable = 1;
	w->seccomp = 0;
}

static void fmt_groups(char *buf, size_t size, const unsigned *g, int n)
{
	size_t len = 0;
	buf[0] = '\0';
	for (int i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%u", i ? " " : "", g[i]);
}

static int same_groups(const struct snap *a, const struct snap *b)
{
	if (a->ngroups != b->ngroups)
		return 0;
	for (int i = 0; i < a->ngroups; i++)
		if (a->groups[i] != b->groups[i])
			return 0;
	return 1;
}

static int same_snap(const struct snap *a, const struct snap *b)
{
	return !a->err && !b->err && memcmp(a->uid, b->uid, sizeof a->uid) == 0 &&
	       memcmp(a->gid, b->gid, sizeof a->gid) == 0 && same_groups(a, b) && a->eff == b->eff &&
	       a->prm == b->prm && a->inh == b->inh && a->bnd == b->bnd && a->amb == b->amb &&
	       a->secbits == b->secbits && a->nnp == b->nnp && a->dumpable == b->dumpable &&
	       a->seccomp == b->seccomp;
}

/* One check per item; the names carry the expected values. */
static void compare_snap(struct task *t, const struct snap *g, const struct snap *w)
{
	char name[96];
	tcheck(t, !g->err, "credential syscalls succeed", "%s: %s", g->errwhat,
	       g->err > 0 ? strerror(g->err) : "failed");
	snprintf(name, sizeof name, "uid real/effective/saved/fs = %u/%u/%u/%u", w->uid[0],
		 w->uid[1], w->uid[2], w->uid[3]);
	tcheck(t, memcmp(g->uid, w->uid, sizeof w->uid) == 0, name, "got %u/%u/%u/%u", g->uid[0],
	       g->uid[1], g->uid[2], g->uid[3]);
	snprintf(name, sizeof name, "gid real/effective/saved/fs = %u/%u/%u/%u", w->gid[0],
		 w->gid[1], w->gid[2], w->gid[3]);
	tcheck(t, memcmp(g->gid, w->gid, sizeof w->gid) == 0, name, "got %u/%u/%u/%u", g->gid[0],
	       g->gid[1], g->gid[2], g->gid[3]);
	char wg[256], gg[256];
	fmt_groups(wg, sizeof wg, w->groups, w->ngroups);
	fmt_groups(gg, sizeof gg, g->groups, g->ngroups);
	snprintf(name, sizeof name, "getgroups() = {%.70s}", w->ngroups ? wg : "");
	tcheck(t, same_groups(g, w), name, "got %d {%s}", g->ngroups, gg);
	snprintf(name, sizeof name, "capget effective = %#llx", (unsigned long long)w->eff);
	tcheck(t, g->eff == w->eff, name, "got %#llx", (unsigned long long)g->eff);
	snprintf(name, sizeof name, "capget permitted = %#llx", (unsigned long long)w->prm);
	tcheck(t, g->prm == w->prm, name, "got %#llx", (unsigned long long)g->prm);
	snprintf(name, sizeof name, "capget inheritable = %#llx", (unsigned long long)w->inh);
	tcheck(t, g->inh == w->inh, name, "got %#llx", (unsigned long long)g->inh);
	snprintf(name, sizeof name, "bounding set (PR_CAPBSET_READ) = %#llx",
		 (unsigned long long)w->bnd);
	tcheck(t, g->bnd == w->bnd, name, "got %#llx (missing %#llx, extra %#llx)",
	       (unsigned long long)g->bnd, (unsigned long long)(w->bnd & ~g->bnd),
	       (unsigned long long)(g->bnd & ~w->bnd));
	snprintf(name, sizeof name, "ambient set (PR_CAP_AMBIENT_IS_SET) = %#llx",
		 (unsigned long long)w->amb);
	tcheck(t, g->amb == w->amb, name, "got %#llx", (unsigned long long)g->amb);
	snprintf(name, sizeof name, "PR_GET_SECUREBITS = %#x", (unsigned)w->secbits);
	tcheck(t, g->secbits == w->secbits, name, "got %#x", (unsigned)g->secbits);
	snprintf(name, sizeof name, "PR_GET_NO_NEW_PRIVS = %d", w->nnp);
	tcheck(t, g->nnp == w->nnp, name, "got %d", g->nnp);
	snprintf(name, sizeof name, "PR_GET_DUMPABLE = %d", w->dumpable);
	tcheck(t, g->dumpable == w->dumpable, name, "got %d", g->dumpable);
	snprintf(name, sizeof name, "PR_GET_SECCOMP = %d", w->seccomp);
	tcheck(t, g->seccomp == w->seccomp, name, "got %d", g->seccomp);
}

/* The value of "Key:" in a /proc status text, whitespace runs collapsed to
 * single spaces and trimmed. 0 if the key is missing. */
static int status_field(const char *buf, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);
	const char *p = buf;
	for (;;) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':')
			break;
		p = strchr(p, '\n');
		if (!p)
			return 0;
		p++;
	}
	p += klen + 1;
	size_t len = 0;
	int space = 0;
	for (; *p && *p != '\n'; p++) {
		if (*p == ' ' || *p == '\t') {
			space = len > 0;
			continue;
		}
		if (space && len + 1 < size)
			out[len++] = ' ';
		space = 0;
		if (len + 1 < size)
			out[len++] = *p;
	}
	out[len] = '\0';
	return 1;
}

/* The status lines that must show snapshot w. */
static void check_status(struct task *t, const char *path, const char *label,
			 const struct snap *w)
{
	char buf[8192], name[96];
	snprintf(name, sizeof name, "%s readable", label);
	if (!tcheck(t, read_file(path, buf, sizeof buf) > 0, name, "%s: %s", path, strerror(errno)))
		return;
	struct {
		const char *key;
		int hex;
		uint64_t v;
		char s[256];
	} want[] = {
		{ "Uid", 0, 0, "" },        { "Gid", 0, 0, "" },        { "Groups", 0, 0, "" },
		{ "CapInh", 1, w->inh, "" }, { "CapPrm", 1, w->prm, "" }, { "CapEff", 1, w->eff, "" },
		{ "CapBnd", 1, w->bnd, "" }, { "CapAmb", 1, w->amb, "" }, { "NoNewPrivs", 0, 0, "" },
		{ "Seccomp", 0, 0, "" },
	};
	const int nwant = (int)(sizeof want / sizeof want[0]);
	snprintf(want[0].s, sizeof want[0].s, "%u %u %u %u", w->uid[0], w->uid[1], w->uid[2],
		 w->uid[3]);
	snprintf(want[1].s, sizeof want[1].s, "%u %u %u %u", w->gid[0], w->gid[1], w->gid[2],
		 w->gid[3]);
	fmt_groups(want[2].s, sizeof want[2].s, w->groups, w->ngroups);
	const char *shown2 = w->ngroups ? want[2].s : "(none)";
	snprintf(want[8].s, sizeof want[8].s, "%d", w->nnp);
	snprintf(want[9].s, sizeof want[9].s, "%d", w->seccomp);
	for (int i = 0; i < nwant; i++) {
		char got[256] = "";
		int found = status_field(buf, want[i].key, got, sizeof got);
		if (want[i].hex) {
			char *end;
			unsigned long long v = strtoull(got, &end, 16);
			int ok = found && end != got && *end == '\0' && v == want[i].v;
			snprintf(name, sizeof name, "%.30s %.10s: %016llx", label, want[i].key,
				 (unsigned long long)want[i].v);
			tcheck(t, ok, name, "%s", found ? got : "line missing");
		} else {
			snprintf(name, sizeof name, "%.30s %.10s: %.40s", label, want[i].key,
				 i == 2 ? shown2 : want[i].s);
			tcheck(t, found && strcmp(got, want[i].s) == 0, name, "got '%s'",
			       found ? got : "(line missing)");
		}
	}
}

/* The number of results so far that failed, and the first one. */
static int first_failure(struct task *t, char *buf, size_t size)
{
	int bad = 0;
	for (int i = 0; i < t->res.n; i++)
		if (t->res.r[i].ok == 0 && bad++ == 0)
			snprintf(buf, size, "%s: %s", t->res.r[i].name, t->res.r[i].detail);
	if (t->res.overflow && !bad++)
		snprintf(buf, size, "result buffer overflow");
	return bad;
}

static void reset_results(struct task *t)
{
	t->res.n = 0;
	t->res.overflow = 0;
}

/* ---- what the credentials allow and refuse (D and DT, after "go") ---- */

static int try_bind(int port, int *err)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		*err = errno;
		return -1;
	}
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int rc = bind(s, (struct sockaddr *)&a, sizeof a);
	*err = rc ? errno : 0;
	close(s);
	return rc;
}

static void probe(struct task *t, int port0, const struct snap *w)
{
	char name[96];

	/* NET_BIND_SERVICE: a port below 1024. */
	int port = port0, err = 0, rc = -1;
	for (int i = 0; i < 8; i++) {
		port = port0 - 2 * i;
		rc = try_bind(port, &err);
		if (rc == 0 || err != EADDRINUSE)
			break;
	}
	snprintf(name, sizeof name, "bind TCP 127.0.0.1:%d allowed (NET_BIND_SERVICE)", port);
	tcheck(t, rc == 0, name, "%s", strerror(err));
	long start = -1;
	if (read_int_file("/proc/sys/net/ipv4/ip_unprivileged_port_start", &start) != 0)
		start = -1;
	if (start >= 0 && start <= port) {
		tnote(t, "ip_unprivileged_port_start is %ld: bind to %d without the capability "
			 "not checked", start, port);
	} else if (rc == 0) {
		int crc = cap_set(0, D_PRM, D_INH);
		int cerr = errno;
		int brc = crc == 0 ? try_bind(port, &err) : 0;
		int back = cap_set(D_EFF, D_PRM, D_INH);
		snprintf(name, sizeof name,
			 "bind to %d refused (EACCES) with NET_BIND_SERVICE not effective", port);
		tcheck(t, crc == 0 && brc < 0 && err == EACCES, name, "%s",
		       crc ? strerror(cerr) : brc == 0 ? "bind succeeded" : strerror(err));
		tcheck(t, back == 0, "effective set restored after the bind probe", "capset: %s",
		       strerror(errno));
	}

	/* CAP_KILL is permitted, not effective. */
	pid_t r = sh->c.root;
	errno = 0;
	rc = kill(r, 0);
	err = errno;
	tcheck(t, rc < 0 && err == EPERM, "kill(R, 0) refused (EPERM): CAP_KILL not effective",
	       "kill returned %d (%s)", rc, rc ? strerror(err) : "allowed");
	int crc = cap_set(D_EFF | CAPB(CAP_KILL), D_PRM, D_INH);
	int cerr = errno;
	errno = 0;
	rc = crc == 0 ? kill(r, 0) : -1;
	err = errno;
	int back = cap_set(D_EFF, D_PRM, D_INH);
	tcheck(t, crc == 0 && rc == 0, "kill(R, 0) allowed with CAP_KILL raised from permitted",
	       "%s", crc ? strerror(cerr) : strerror(err));
	tcheck(t, back == 0, "effective set restored after the kill probe", "capset: %s",
	       strerror(errno));

	/* No way back to root. */
	errno = 0;
	long lrc = syscall(SYS_setuid, 0);
	err = errno;
	tcheck(t, lrc < 0 && err == EPERM, "setuid(0) refused (EPERM)", "returned %ld (%s)", lrc,
	       lrc ? strerror(err) : "succeeded");
	errno = 0;
	lrc = syscall(SYS_setgid, 0);
	err = errno;
	tcheck(t, lrc < 0 && err == EPERM, "setgid(0) refused (EPERM)", "returned %ld (%s)", lrc,
	       lrc ? strerror(err) : "succeeded");
	errno = 0;
	lrc = syscall(SYS_setgroups, 0, NULL);
	err = errno;
	tcheck(t, lrc < 0 && err == EPERM, "setgroups(0, NULL) refused (EPERM)", "returned %ld (%s)",
	       lrc, lrc ? strerror(err) : "succeeded");
	errno = 0;
	rc = cap_set(D_EFF, D_PRM | CAPB(CAP_SYS_ADMIN), D_INH);
	err = errno;
	tcheck(t, rc < 0 && err == EPERM, "capset adding CAP_SYS_ADMIN to permitted refused (EPERM)",
	       "returned %d (%s)", rc, rc ? strerror(err) : "succeeded");
	if (rc == 0)
		cap_set(D_EFF, D_PRM, D_INH);

	/* The bounding set, enforced: with CAP_SETPCAP effective the inheritable
	 * set may exceed permitted, but not the bounding set. */
	crc = cap_set(D_EFF | CAPB(CAP_SETPCAP), D_PRM, D_INH);
	cerr = errno;
	if (tcheck(t, crc == 0, "CAP_SETPCAP can be raised from permitted", "capset: %s",
		   strerror(cerr))) {
		errno = 0;
		rc = cap_set(D_EFF | CAPB(CAP_SETPCAP), D_PRM, D_INH | CAPB(CAP_SYS_MODULE));
		err = errno;
		tcheck(t, rc < 0 && err == EPERM,
		       "CAP_SYS_MODULE into inheritable refused (EPERM, not in bounding set)",
		       "returned %d (%s)", rc, rc ? strerror(err) : "succeeded");
		errno = 0;
		rc = cap_set(D_EFF | CAPB(CAP_SETPCAP), D_PRM, D_INH | CAPB(CAP_SYS_ADMIN));
		err = errno;
		tcheck(t, rc == 0, "CAP_SYS_ADMIN into inheritable allowed (in bounding set, SETPCAP)",
		       "%s", strerror(err));
	}
	back = cap_set(D_EFF, D_PRM, D_INH);
	tcheck(t, back == 0, "capabilities restored after the SETPCAP probe", "capset: %s",
	       strerror(errno));

	struct snap g;
	take_snap(&g);
	tcheck(t, same_snap(&g, w), "after the probes the credentials are exactly as expected",
	       "err %d, eff %#llx prm %#llx inh %#llx amb %#llx secbits %#x dumpable %d", g.err,
	       (unsigned long long)g.eff, (unsigned long long)g.prm, (unsigned long long)g.inh,
	       (unsigned long long)g.amb, (unsigned)g.secbits, g.dumpable);
}

/* ---- D and its thread ---- */

/* D or DT right after setup: the drop gave exactly the expected state. */
static void verify_setup(int idx, const char *status_path, const char *label)
{
	struct task *t = &sh->t[idx];
	struct snap g, w;
	d_expected(&w, sh->r_bnd_setup);
	take_snap(&g);
	compare_snap(t, &g, &w);
	check_status(t, status_path, label, &w);
	char msg[300];
	int bad = first_failure(t, msg, sizeof msg);
	reset_results(t);
	if (bad) {
		errno = 0;
		cfail("after the drop, %d item(s) differ; first: %s", bad, msg);
	}
}

/* Checks of D or DT after "go". */
static void check_after(int idx, const char *status_path, const char *label, int port)
{
	struct task *t = &sh->t[idx];
	pid_t v = getpid();
	tcheck(t, v == t->pid, "getpid() unchanged", "recorded %d, got %d", t->pid, v);
	v = my_tid();
	tcheck(t, v == t->tid, "gettid() unchanged", "recorded %d, got %d", t->tid, v);
	struct snap g, w;
	d_expected(&w, LOAD(&sh->r_bnd_now));
	take_snap(&g);
	compare_snap(t, &g, &w);
	check_status(t, status_path, label, &w);
	probe(t, port, &w);
}

static void *run_dt(void *arg)
{
	(void)arg;
	g_self = "DT";
	prctl(PR_SET_NAME, "t_creds-DT", 0, 0, 0);
	struct task *t = &sh->t[T_DT];
	t->pid = getpid();
	t->tid = my_tid();
	verify_setup(T_DT, "/proc/thread-self/status", "/proc/thread-self/status");
	STORE(&t->recorded, 1);
	if (!wait_go(&t->waiting, 0))
		return NULL;
	check_after(T_DT, "/proc/thread-self/status", "/proc/thread-self/status", DT_PORT);
	STORE(&t->done, 1);
	return NULL;
}

__attribute__((noreturn))
static void run_d(void)
{
	g_is_root = 0;
	g_self = "D";
	prctl(PR_SET_NAME, "t_creds-D", 0, 0, 0);
	struct task *t = &sh->t[T_D];

	static const int dropped[] = { CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_MKNOD };
	for (int i = 0; i < 3; i++)
		if (prctl(PR_CAPBSET_DROP, dropped[i], 0, 0, 0) != 0)
			cfail("PR_CAPBSET_DROP %d", dropped[i]);
	/* Single-threaded here: the libc wrappers act on the only thread. */
	gid_t groups[] = { NOGROUP, USERS };
	if (setgroups(2, groups) != 0)
		cfail("setgroups(65534, 100)");
	if (setresgid(NOGROUP, USERS, NOGROUP) != 0)
		cfail("setresgid(65534, 100, 65534)");
	if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS, 0, 0, 0) != 0)
		cfail("PR_SET_SECUREBITS KEEP_CAPS");
	if (setresuid(NOBODY, NOBODY, NOBODY) != 0)
		cfail("setresuid(65534, 65534, 65534)");
	if (cap_set(D_EFF, D_PRM, D_INH) != 0)
		cfail("capset eff %#llx prm %#llx inh %#llx", (unsigned long long)D_EFF,
		      (unsigned long long)D_PRM, (unsigned long long)D_INH);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) != 0)
		cfail("PR_CAP_AMBIENT_RAISE CAP_NET_BIND_SERVICE");
	if (cap_set(D_EFF | CAPB(CAP_SETPCAP), D_PRM, D_INH) != 0)
		cfail("capset: raise CAP_SETPCAP");
	if (prctl(PR_SET_SECUREBITS, D_SECBITS, 0, 0, 0) != 0)
		cfail("PR_SET_SECUREBITS %#x", (unsigned)D_SECBITS);
	if (cap_set(D_EFF, D_PRM, D_INH) != 0)
		cfail("capset: drop CAP_SETPCAP from effective");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		cfail("PR_SET_NO_NEW_PRIVS");
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0)
		cfail("PR_SET_DUMPABLE");

	t->pid = getpid();
	t->tid = my_tid();
	verify_setup(T_D, "/proc/self/status", "/proc/self/status");
	STORE(&t->recorded, 1);

	pthread_t th;
	int e = pthread_create(&th, NULL, run_dt, NULL);
	if (e) {
		errno = e;
		cfail("pthread_create");
	}
	if (wait_flag(&sh->t[T_DT].recorded, mono_ns() + SETUP_TIMEOUT_NS) != 1)
		cfail("DT did not start");

	if (!wait_go(&t->waiting, 0))
		_exit(EXIT_NOGO);
	check_after(T_D, "/proc/self/status", "/proc/self/status", D_PORT);
	STORE(&t->done, 1);

	/* DT must be done before the process goes (its results are in sh). */
	if (wait_flag(&sh->t[T_DT].done, mono_ns() + JOIN_TIMEOUT_NS) == 1)
		pthread_join(th, NULL);
	_exit(EXIT_OK);
}

/* ---- R ---- */

/* D and DT wait for "go" as children of R: R is gone when it is no longer their parent. */
static int root_gone(void)
{
	return getppid() != sh->c.root;
}

/* SIGKILL D by PID if it still runs (recognised by its comm) and reap it.
 * 1 if it had to be killed. */
static int kill_leftovers(void)
{
	if (g_d <= 0)
		return 0;
	int left = running_as(g_d, "t_creds-D");
	if (left)
		kill(g_d, SIGKILL);
	if (reap_until(g_d, &(int){ 0 }, mono_ns() + REAP_TIMEOUT_NS) == 1)
		g_d = 0;
	return left;
}

/* Is there a group with this GID in /etc/group? (no NSS: nothing cached) */
static int group_exists(unsigned gid)
{
	static char buf[1 << 16];
	if (read_file("/etc/group", buf, sizeof buf) <= 0)
		return 0;
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		/* name:passwd:GID:members */
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2) {
			char *end;
			unsigned long v = strtoul(c2 + 1, &end, 10);
			if (end != c2 + 1 && (*end == ':' || *end == '\0') && v == gid)
				return 1;
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

/* R after the trigger: its own credentials are the ones of the setup. */
static void check_root(const struct snap *setup)
{
	struct task *t = &sh->t[T_R];
	pid_t v = getpid();
	tcheck(t, v == t->pid, "getpid() unchanged", "recorded %d, got %d", t->pid, v);
	struct snap g;
	take_snap(&g);
	compare_snap(t, &g, setup);
	tcheck(t, g.eff == g.prm && g.prm == g.bnd,
	       "full capabilities: effective = permitted = bounding set",
	       "eff %#llx prm %#llx bnd %#llx", (unsigned long long)g.eff,
	       (unsigned long long)g.prm, (unsigned long long)g.bnd);
	tcheck(t, (g.bnd & D_DROPPED) == D_DROPPED,
	       "bounding set still holds SYS_MODULE, SYS_BOOT, MKNOD (D's drop is D's)",
	       "bnd %#llx", (unsigned long long)g.bnd);
	check_status(t, "/proc/self/status", "/proc/self/status", setup);
	STORE(&sh->r_bnd_now, g.bnd);
}

/* R before "go": D and DT seen from outside. */
static void outside_view(void)
{
	struct task *r = &sh->t[T_R];
	struct snap w;
	d_expected(&w, LOAD(&sh->r_bnd_now));
	uint64_t deadline = mono_ns() + STATE_TIMEOUT_NS;
	for (int i = T_D; i <= T_DT; i++) {
		struct task *t = &sh->t[i];
		char stat[96], status[96], what[96];
		const char *label = i == T_D ? "/proc/D/status" : "/proc/D/task/DT/status";
		pid_t tid = i == T_D ? 0 : t->tid; /* D: /proc/PID/stat, DT: /proc/PID/task/TID/stat */
		if (i == T_D) {
			snprintf(stat, sizeof stat, "/proc/%d/stat", (int)t->pid);
			snprintf(status, sizeof status, "/proc/%d/status", (int)t->pid);
		} else {
			snprintf(stat, sizeof stat, "/proc/%d/task/%d/stat", (int)t->pid, (int)t->tid);
			snprintf(status, sizeof status, "/proc/%d/task/%d/status", (int)t->pid,
				 (int)t->tid);
		}
		struct pstat ps;
		int rc = stat_sleeping(t->pid, tid, &ps, deadline);
		snprintf(what, sizeof what, "%s waiting: state S, parent R", tname[i]);
		tcheck(r, rc == 0 && ps.state == 'S' && ps.ppid == r->pid, what,
		       "%s: rc %d, state %c, ppid %d", stat, rc, rc ? '?' : ps.state, rc ? 0 : (int)ps.ppid);
		check_status(r, status, label, &w);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: %s WORKDIR", argv[0]);

	size_t size = sizeof *sh;
	sh = coord_map(&size);
	sh->t[T_R].pid = getpid();
	sh->t[T_R].tid = my_tid();

	if (set_handler(SIGCHLD, SIG_DFL) != 0)
		die("sigaction(SIGCHLD)");
	install_trigger();

	/* R: root with full capabilities, and the groups D needs exist. */
	struct snap setup;
	take_snap(&setup);
	errno = 0;
	if (setup.err)
		die("reading R's credentials: %s", setup.errwhat);
	for (int i = 0; i < 4; i++)
		if (setup.uid[i] != 0 || setup.gid[i] != 0)
			die("R must run as uid/gid 0 (uid %u/%u/%u/%u gid %u/%u/%u/%u)", setup.uid[0],
			    setup.uid[1], setup.uid[2], setup.uid[3], setup.gid[0], setup.gid[1],
			    setup.gid[2], setup.gid[3]);
	if (setup.eff != setup.prm || setup.prm != setup.bnd)
		die("R must have full capabilities (eff %#llx prm %#llx bnd %#llx)",
		    (unsigned long long)setup.eff, (unsigned long long)setup.prm,
		    (unsigned long long)setup.bnd);
	const uint64_t need = D_DROPPED | D_PRM | CAPB(CAP_SETUID) | CAPB(CAP_SETGID);
	if ((setup.eff & need) != need)
		die("R lacks capabilities %#llx", (unsigned long long)(need & ~setup.eff));
	if (setup.nnp != 0)
		die("R has no_new_privs set");
	if (!group_exists(NOGROUP) || !group_exists(USERS))
		die("groups %u and %u must exist in /etc/group", NOGROUP, USERS);
	sh->r_bnd_setup = setup.bnd;

	g_d = fork();
	if (g_d < 0)
		setup_fail("fork D: %s", strerror(errno));
	if (g_d == 0)
		run_d();

	/* D and DT set up, verified and waiting, in state S. */
	struct waiter w[2];
	for (int i = T_D; i <= T_DT; i++)
		w[i - T_D] = (struct waiter){&sh->t[i].waiting, tname[i], &sh->t[i].pid, &sh->t[i].tid};
	waiters_asleep(w, 2, NULL);

	ready();
	poll_trigger();
	uint64_t t0 = mono_ns();

	check_root(&setup);
	outside_view();
	STORE(&sh->c.go, 1);

	for (int i = T_D; i <= T_DT; i++)
		wait_task(&sh->t[i].done, t0 + DONE_TIMEOUT_NS, g_d, "t_creds-D");

	for (int i = 0; i < NT; i++) {
		if (i != T_R && !LOAD(&sh->t[i].done)) {
			char what[64];
			snprintf(what, sizeof what, "%s: did not report", tname[i]);
			results_report(&sh->t[i].res, tname[i]); /* whatever it managed to store */
			check(0, what, "no final report (task gone, or silent for %llu s after the trigger)",
			      (unsigned long long)(DONE_TIMEOUT_NS / 1000000000ULL));
			continue;
		}
		results_report(&sh->t[i].res, tname[i]);
	}

	check_reaped(&g_d, "R: D exited 0 and was reaped");
	char killed[32];
	snprintf(killed, sizeof killed, "D(%d)", (int)g_d);
	check_nothing_left(killed);
	finish();
}
