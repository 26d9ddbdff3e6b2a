/*
 * t_files: the file descriptor table must survive checkpoint/restore.
 *
 * Regular files with different access modes, status flags (O_APPEND,
 * O_NONBLOCK, O_NOATIME, O_DSYNC) and offsets; close-on-exec set and clear;
 * dup()/dup2() sharing one open file description (shared offset) while the
 * per-descriptor close-on-exec flag differs; a partially read directory fd;
 * an O_PATH fd; a descriptor at a high number; stdin (/dev/null) and the
 * harness's log on stdout/stderr; cwd and umask. Each descriptor is checked
 * through fcntl, fstat, lseek, /proc/self/fd and /proc/self/fdinfo against
 * what it was before the checkpoint, then exercised.
 */
#include "common.h"

#include <dirent.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define HIGH_FD 200
#define DUP2_FD 150
#define RO_OFFSET 123
#define RW_OFFSET 4097
#define HIGH_OFFSET 77
#define FILE_SIZE (16 * 1024)
#define DIR_ENTRIES 24
#define UMASK 027

static char g_workdir[PATH_MAX];

static unsigned char content_byte(uint64_t seed, size_t i)
{
	return (unsigned char)(pattern64(seed, i / 8) >> (8 * (i % 8)));
}

static void make_file(const char *name, uint64_t seed, size_t size)
{
	static unsigned char buf[FILE_SIZE];
	for (size_t i = 0; i < size; i++)
		buf[i] = content_byte(seed, i);
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, size) != (ssize_t)size)
		die("create %s", name);
	close(fd);
}

static int open_or_die(const char *name, int flags)
{
	int fd = open(name, flags);
	if (fd < 0)
		die("open %s", name);
	return fd;
}

static long kcmp_files(int fd1, int fd2)
{
	pid_t pid = getpid();
	return syscall(SYS_kcmp, pid, pid, KCMP_FILE, fd1, fd2);
}

/* What one descriptor looks like from inside the process. */
struct fd_snap {
	int fd_flags, fd_flags_errno, fl;
	off_t pos; /* -1 for O_PATH */
	dev_t dev;
	ino_t ino;
	char link[PATH_MAX];
	char fdinfo[256]; /* "pos:" and "flags:" lines */
};

struct fd_state {
	int fd;
	const char *name;
	int want_cloexec;
	int want_acc;          /* O_RDONLY / O_WRONLY / O_RDWR, or -1 to skip */
	int want_fl;           /* flags that must be set in F_GETFL */
	const char *want_path; /* NULL: compare with before only */
	int pos_moves;         /* stdout/stderr: the log grows, offset moves */
	struct fd_snap before;
};

static struct fd_state fds[16];
static int nfds;

static struct fd_state *track(int fd, const char *name, int want_cloexec, int want_acc, int want_fl,
			      const char *want_path)
{
	struct fd_state *s = &fds[nfds++];
	memset(s, 0, sizeof *s);
	s->fd = fd;
	s->name = name;
	s->want_cloexec = want_cloexec;
	s->want_acc = want_acc;
	s->want_fl = want_fl;
	s->want_path = want_path;
	return s;
}

/* "pos: N flags: F" from /proc/self/fdinfo (mnt_id/ino may differ). */
static void fdinfo_summary(int fd, int with_pos, char *out, size_t size)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
	out[0] = '\0';
	if (read_file(path, buf, sizeof buf) < 0) {
		snprintf(out, size, "(unreadable: %s)", strerror(errno));
		return;
	}
	size_t len = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if ((with_pos && !strncmp(line, "pos:", 4)) || !strncmp(line, "flags:", 6))
			len += snprintf(out + len, size - len, "%s ", line);
}

static void snap_fd(const struct fd_state *s, struct fd_snap *out)
{
	struct stat st;
	char path[64];
	memset(out, 0, sizeof *out);
	out->fd_flags = fcntl(s->fd, F_GETFD);
	out->fd_flags_errno = errno;
	out->fl = fcntl(s->fd, F_GETFL);
	out->pos = lseek(s->fd, 0, SEEK_CUR);
	if (fstat(s->fd, &st) == 0) {
		out->dev = st.st_dev;
		out->ino = st.st_ino;
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", s->fd);
	ssize_t n = readlink(path, out->link, sizeof out->link - 1);
	out->link[n < 0 ? 0 : n] = '\0';
	fdinfo_summary(s->fd, !s->pos_moves, out->fdinfo, sizeof out->fdinfo);
}

static void verify(const struct fd_state *s)
{
	const struct fd_snap *b = &s->before;
	struct fd_snap a;
	char what[160];

	snap_fd(s, &a);
	snprintf(what, sizeof what, "fd %d (%s) open", s->fd, s->name);
	if (!check(a.fd_flags >= 0, what, "fcntl(F_GETFD): %s", strerror(a.fd_flags_errno)))
		return;

	snprintf(what, sizeof what, "fd %d (%s) close-on-exec %s", s->fd, s->name,
		 s->want_cloexec ? "set" : "clear");
	check(!!(a.fd_flags & FD_CLOEXEC) == s->want_cloexec && a.fd_flags == b->fd_flags, what,
	      "F_GETFD expected %#x, got %#x", b->fd_flags, a.fd_flags);

	snprintf(what, sizeof what, "fd %d (%s) status flags (F_GETFL)", s->fd, s->name);
	int acc_ok = s->want_acc < 0 || (a.fl & O_ACCMODE) == s->want_acc;
	check(a.fl == b->fl && (a.fl & s->want_fl) == s->want_fl && acc_ok, what,
	      "expected %#o (must include %#o), got %#o", b->fl, s->want_fl, a.fl);

	snprintf(what, sizeof what, "fd %d (%s) path (/proc/self/fd)", s->fd, s->name);
	check(!strcmp(a.link, b->link) && (!s->want_path || !strcmp(a.link, s->want_path)), what,
	      "expected %s, got %s", s->want_path ? s->want_path : b->link, a.link);

	snprintf(what, sizeof what, "fd %d (%s) same file (fstat dev/inode)", s->fd, s->name);
	check(a.dev == b->dev && a.ino == b->ino, what, "expected %lu/%lu, got %lu/%lu",
	      (unsigned long)b->dev, (unsigned long)b->ino, (unsigned long)a.dev, (unsigned long)a.ino);

	if (!s->pos_moves) {
		snprintf(what, sizeof what, "fd %d (%s) offset", s->fd, s->name);
		check(a.pos == b->pos, what, "expected %ld, got %ld", (long)b->pos, (long)a.pos);
	}

	snprintf(what, sizeof what, "fd %d (%s) /proc/self/fdinfo %sflags", s->fd, s->name,
		 s->pos_moves ? "" : "pos and ");
	check(!strcmp(a.fdinfo, b->fdinfo), what, "expected '%s', got '%s'", b->fdinfo, a.fdinfo);
}

/* Open descriptor numbers, as a sorted comma-separated list. */
static void list_fds(char *out, size_t size)
{
	int present[1024] = { 0 };
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		die("opendir /proc/self/fd");
	int self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			int fd = atoi(e->d_name);
			if (fd != self && fd >= 0 && fd < 1024)
				present[fd] = 1;
		}
	closedir(d);
	size_t len = 0;
	out[0] = '\0';
	for (int fd = 0; fd < 1024; fd++)
		if (present[fd])
			len += snprintf(out + len, size - len, "%d,", fd);
}

/* Names returned by the next getdents64() calls on fd until the end. */
static void read_names(int fd, char *out, size_t size)
{
	char buf[4096];
	size_t len = 0;
	out[0] = '\0';
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			len += snprintf(out + len, size - len, "%s,", d->d_name);
			off += d->d_reclen;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: %s WORKDIR", argv[0]);
	if (!realpath(argv[1], g_workdir))
		die("realpath %s", argv[1]);
	install_trigger();
	if (chdir(g_workdir) != 0)
		die("chdir");
	umask(UMASK);

	char p_ro[PATH_MAX + 16], p_app[PATH_MAX + 16], p_rw[PATH_MAX + 16], p_cx[PATH_MAX + 16];
	char p_nb[PATH_MAX + 16], p_path[PATH_MAX + 16], p_high[PATH_MAX + 16], p_dir[PATH_MAX + 16];
	snprintf(p_ro, sizeof p_ro, "%s/ro.dat", g_workdir);
	snprintf(p_app, sizeof p_app, "%s/append.log", g_workdir);
	snprintf(p_rw, sizeof p_rw, "%s/rw.dat", g_workdir);
	snprintf(p_cx, sizeof p_cx, "%s/cloexec.dat", g_workdir);
	snprintf(p_nb, sizeof p_nb, "%s/nonblock.dat", g_workdir);
	snprintf(p_path, sizeof p_path, "%s/opath.dat", g_workdir);
	snprintf(p_high, sizeof p_high, "%s/high.dat", g_workdir);
	snprintf(p_dir, sizeof p_dir, "%s/dir", g_workdir);

	make_file("ro.dat", 1, FILE_SIZE);
	make_file("rw.dat", 2, FILE_SIZE);
	make_file("cloexec.dat", 3, 100);
	make_file("nonblock.dat", 4, 100);
	make_file("opath.dat", 5, 100);
	make_file("high.dat", 6, FILE_SIZE);

	/* Directory with entries, read part-way through. */
	if (mkdir("dir", 0755) != 0)
		die("mkdir dir");
	for (int i = 0; i < DIR_ENTRIES; i++) {
		char name[64];
		snprintf(name, sizeof name, "dir/entry-%02d-with-a-longer-name", i);
		make_file(name, 7, 1);
	}

	int fd_ro = open_or_die("ro.dat", O_RDONLY);
	if (lseek(fd_ro, RO_OFFSET, SEEK_SET) != RO_OFFSET)
		die("lseek ro");

	int fd = open_or_die("append.log", O_WRONLY | O_CREAT | O_TRUNC);
	if (write(fd, "header\n", 7) != 7)
		die("write header");
	close(fd);
	int fd_app = open_or_die("append.log", O_WRONLY | O_APPEND | O_DSYNC);
	if (write(fd_app, "first\n", 6) != 6)
		die("write append");

	int fd_rw = open_or_die("rw.dat", O_RDWR);
	if (lseek(fd_rw, RW_OFFSET, SEEK_SET) != RW_OFFSET)
		die("lseek rw");
	int fd_dup = dup(fd_rw);
	if (fd_dup < 0 || dup2(fd_rw, DUP2_FD) != DUP2_FD)
		die("dup");
	/* Per-descriptor flag: set on the dup2 copy only. */
	if (fcntl(DUP2_FD, F_SETFD, FD_CLOEXEC) != 0)
		die("F_SETFD");

	int fd_cx = open_or_die("cloexec.dat", O_RDONLY | O_CLOEXEC);
	int fd_nb = open_or_die("nonblock.dat", O_RDONLY | O_NONBLOCK | O_NOATIME);
	int fd_wdir = open_or_die(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd_dir = open_or_die("dir", O_RDONLY | O_DIRECTORY);
	int fd_path = open_or_die("opath.dat", O_PATH);

	fd = open_or_die("high.dat", O_RDWR);
	if (dup2(fd, HIGH_FD) != HIGH_FD)
		die("dup2 high");
	close(fd);
	if (lseek(HIGH_FD, HIGH_OFFSET, SEEK_SET) != HIGH_OFFSET)
		die("lseek high");

	/* Read a few directory entries; the rest must come after restore. */
	char dirbuf[256];
	if (syscall(SYS_getdents64, fd_dir, dirbuf, sizeof dirbuf) <= 0)
		die("getdents64");
	off_t dir_pos = lseek(fd_dir, 0, SEEK_CUR);
	static char dir_rest_expected[8192], dir_rest_got[8192];
	{
		int ref = open_or_die("dir", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (lseek(ref, dir_pos, SEEK_SET) != dir_pos)
			die("lseek dir");
		read_names(ref, dir_rest_expected, sizeof dir_rest_expected);
		close(ref);
	}
	if (!dir_rest_expected[0])
		die("directory read completely by the first getdents64");

	struct stat devnull;
	if (stat("/dev/null", &devnull) != 0)
		die("stat /dev/null");

	track(0, "stdin", 0, -1, 0, "/dev/null");
	track(1, "stdout", 0, -1, 0, NULL)->pos_moves = 1;
	track(2, "stderr", 0, -1, 0, NULL)->pos_moves = 1;
	track(fd_ro, "O_RDONLY at 123", 0, O_RDONLY, 0, p_ro);
	track(fd_app, "O_WRONLY|O_APPEND|O_DSYNC", 0, O_WRONLY, O_APPEND | O_DSYNC, p_app);
	track(fd_rw, "O_RDWR at 4097", 0, O_RDWR, 0, p_rw);
	track(fd_dup, "dup() of O_RDWR", 0, O_RDWR, 0, p_rw);
	track(DUP2_FD, "dup2() of O_RDWR, cloexec", 1, O_RDWR, 0, p_rw);
	track(fd_cx, "O_CLOEXEC", 1, O_RDONLY, 0, p_cx);
	track(fd_nb, "O_NONBLOCK|O_NOATIME", 0, O_RDONLY, O_NONBLOCK | O_NOATIME, p_nb);
	track(fd_wdir, "WORKDIR directory", 1, O_RDONLY, O_DIRECTORY, g_workdir);
	track(fd_dir, "partly read directory", 0, O_RDONLY, O_DIRECTORY, p_dir);
	track(fd_path, "O_PATH", 0, -1, O_PATH, p_path);
	track(HIGH_FD, "high-numbered fd", 0, O_RDWR, 0, p_high);
	for (int i = 0; i < nfds; i++) {
		snap_fd(&fds[i], &fds[i].before);
		if (fds[i].before.fd_flags < 0)
			die("fd %d (%s) not open", fds[i].fd, fds[i].name);
	}

	static char fdlist_before[8192], fdlist_after[8192];
	list_fds(fdlist_before, sizeof fdlist_before);
	long stdout_is_stderr = kcmp_files(1, 2);
	mode_t umask_before = umask(UMASK);

	ready();
	wait_trigger();

	/* ---- the table as a whole, then each descriptor ---- */
	list_fds(fdlist_after, sizeof fdlist_after);
	check(!strcmp(fdlist_before, fdlist_after), "set of open descriptors unchanged",
	      "expected %s got %s", fdlist_before, fdlist_after);
	for (int i = 0; i < nfds; i++)
		verify(&fds[i]);

	{
		struct stat st;
		check(fstat(0, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == devnull.st_rdev,
		      "stdin is /dev/null (character device rdev)", "rdev %#lx, /dev/null %#lx",
		      (unsigned long)st.st_rdev, (unsigned long)devnull.st_rdev);
		long now = kcmp_files(1, 2);
		check(now == stdout_is_stderr, "stdout/stderr sharing (kcmp) unchanged",
		      "kcmp before %ld, after %ld", stdout_is_stderr, now);
	}

	/* ---- shared open file descriptions ---- */
	{
		check(kcmp_files(fd_rw, fd_dup) == 0 && kcmp_files(fd_rw, DUP2_FD) == 0,
		      "dup()/dup2() copies share one open file (kcmp)", "kcmp says different files");
		check(kcmp_files(fd_rw, fd_ro) != 0 && kcmp_files(fd_rw, HIGH_FD) != 0,
		      "separately opened files stay separate (kcmp)", "kcmp says same file");
		lseek(fd_rw, 777, SEEK_SET);
		off_t a = lseek(fd_dup, 0, SEEK_CUR), b = lseek(DUP2_FD, 0, SEEK_CUR);
		check(a == 777 && b == 777, "lseek on one dup moves the others (shared offset)",
		      "dup at %ld, dup2 at %ld, expected 777", (long)a, (long)b);
		check(lseek(fd_ro, 0, SEEK_CUR) == RO_OFFSET, "unrelated fd offset unaffected",
		      "fd_ro at %ld", (long)lseek(fd_ro, 0, SEEK_CUR));
		ssize_t w = write(fd_dup, "XYZ", 3);
		char buf[4] = "";
		int ref = open_or_die("rw.dat", O_RDONLY | O_CLOEXEC);
		check(w == 3 && pread(ref, buf, 3, 777) == 3 && !memcmp(buf, "XYZ", 3) &&
		      lseek(fd_rw, 0, SEEK_CUR) == 780,
		      "write through the dup lands at the shared offset and advances it for all",
		      "write returned %zd, file has '%.3s', fd_rw offset %ld", w, buf,
		      (long)lseek(fd_rw, 0, SEEK_CUR));
		close(ref);
	}

	/* ---- exercise each kind ---- */
	{
		unsigned char buf[10];
		int ok = read(fd_ro, buf, sizeof buf) == (ssize_t)sizeof buf;
		for (size_t i = 0; ok && i < sizeof buf; i++)
			ok = buf[i] == content_byte(1, RO_OFFSET + i);
		check(ok, "read from O_RDONLY fd continues at offset 123", "wrong bytes");
		errno = 0;
		check(write(fd_ro, "x", 1) < 0 && errno == EBADF, "O_RDONLY fd refuses writes (EBADF)",
		      "errno %d", errno);
	}
	{
		int other = open_or_die("append.log", O_WRONLY | O_CLOEXEC);
		if (pwrite(other, "other\n", 6, 13) != 6)
			die("pwrite append.log");
		close(other);
		ssize_t w = write(fd_app, "after\n", 6);
		char buf[64] = "";
		int ref = open_or_die("append.log", O_RDONLY | O_CLOEXEC);
		ssize_t n = read(ref, buf, sizeof buf - 1);
		close(ref);
		buf[n < 0 ? 0 : n] = '\0';
		check(w == 6 && !strcmp(buf, "header\nfirst\nother\nafter\n"),
		      "O_APPEND write goes to the end of file", "write returned %zd, file content '%s'", w, buf);
		errno = 0;
		char c;
		check(read(fd_app, &c, 1) < 0 && errno == EBADF, "O_WRONLY fd refuses reads (EBADF)",
		      "errno %d", errno);
	}
	{
		unsigned char buf[5];
		int ok = pread(HIGH_FD, buf, 5, 0) == 5 && read(HIGH_FD, buf, 5) == 5;
		for (size_t i = 0; ok && i < 5; i++)
			ok = buf[i] == content_byte(6, HIGH_OFFSET + i);
		check(ok, "high-numbered fd reads its file from offset 77", "wrong bytes");
	}
	{
		int sub = openat(fd_wdir, "ro.dat", O_RDONLY | O_CLOEXEC);
		struct stat a, b;
		check(sub >= 0 && fstat(sub, &a) == 0 && fstat(fd_ro, &b) == 0 && a.st_ino == b.st_ino,
		      "openat() relative to the directory fd", "%s", sub < 0 ? strerror(errno) : "other file");
		if (sub >= 0)
			close(sub);
		read_names(fd_dir, dir_rest_got, sizeof dir_rest_got);
		check(!strcmp(dir_rest_expected, dir_rest_got), "directory fd continues reading where it stopped",
		      "expected %s got %s", dir_rest_expected, dir_rest_got);
	}
	{
		struct stat st, ref;
		check(fstat(fd_path, &st) == 0 && stat("opath.dat", &ref) == 0 && st.st_ino == ref.st_ino,
		      "fstat through the O_PATH fd", "%s", strerror(errno));
		char c;
		errno = 0;
		check(read(fd_path, &c, 1) < 0 && errno == EBADF, "O_PATH fd cannot read (EBADF)",
		      "read returned data or errno %d", errno);
	}
	{
		char cwd[PATH_MAX];
		check(getcwd(cwd, sizeof cwd) && !strcmp(cwd, g_workdir), "cwd", "expected %s, got %s",
		      g_workdir, cwd);
		check(access("ro.dat", R_OK) == 0, "relative path resolves in cwd", "%s", strerror(errno));
		mode_t m = umask(UMASK);
		check(m == umask_before, "umask", "expected %#o, got %#o", umask_before, m);
	}
	finish();
}
