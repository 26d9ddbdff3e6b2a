/*
 * t_sysv: a System V shared memory segment, removed with IPC_RMID while
 * attached, shared by a parent and its child, must come back as one segment
 * with the same id, size, permissions and attachments.
 *
 * Setup: the parent creates a segment of 3 pages + 100 bytes with mode 0640,
 * attaches it twice (read-write, and read-only elsewhere), fills it with a
 * pattern, forks a child (which inherits both attachments), then removes the
 * segment (IPC_RMID): it lives on while attached. The child polls a word in
 * the segment; the parent prints READY and polls for SIGUSR2.
 *
 * Checks after the trigger: the segment id and both addresses are those of
 * /proc/self/maps (inode = shmid, "/SYSV" name, same protections) in both
 * processes; IPC_STAT by id gives the exact size, mode 0640 with SHM_DEST,
 * the owner and 4 attachments; the pattern is intact; a token the child
 * writes is seen by the parent through both attachments (one segment, not
 * copies); the child exits 0.
 */
#include "common.h"

#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>

#define SEG_SIZE (3 * 4096 + 100)
#define SEG_MODE 0640
#define TOKEN 0x5eed5eedU

struct seg_head {
	volatile uint32_t go, child_token, child_ok, child_done;
};

static unsigned char pattern_at(size_t i) { return (unsigned char)((i * 131u + 7u) & 0xff); }

/* The /proc/self/maps line of the mapping at addr: its inode and perms. */
static int maps_entry(void *addr, unsigned long *inode, char perms[5], char *name, size_t namelen)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	char line[512];
	int found = -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long s, e, off, ino;
		char p[5], dev[16];
		int pos = 0;
		if (sscanf(line, "%lx-%lx %4s %lx %15s %lu %n", &s, &e, p, &off, dev, &ino, &pos) < 6)
			continue;
		if (s != (unsigned long)addr)
			continue;
		*inode = ino;
		memcpy(perms, p, 5);
		snprintf(name, namelen, "%s", line + pos);
		name[strcspn(name, "\n")] = 0;
		found = 0;
		break;
	}
	fclose(f);
	return found;
}

static int check_maps(const char *who, int shmid, void *rw, void *ro)
{
	unsigned long ino = 0;
	char perms[5] = "", name[256] = "";
	char what[128];
	int ok = 1;
	snprintf(what, sizeof what, "%s: read-write attachment in maps (inode = shmid, /SYSV, rw-s)", who);
	ok &= check(maps_entry(rw, &ino, perms, name, sizeof name) == 0 && (int)ino == shmid && !strncmp(name, "/SYSV", 5) &&
			    !strcmp(perms, "rw-s"),
		    what, "inode %lu perms %s name %s, shmid %d", ino, perms, name, shmid);
	snprintf(what, sizeof what, "%s: read-only attachment in maps (inode = shmid, r--s)", who);
	ok &= check(maps_entry(ro, &ino, perms, name, sizeof name) == 0 && (int)ino == shmid && !strcmp(perms, "r--s"), what,
		    "inode %lu perms %s, shmid %d", ino, perms, shmid);
	return ok;
}

static int child_main(int shmid, unsigned char *rw, unsigned char *ro)
{
	struct seg_head *h = (struct seg_head *)rw;
	for (int i = 0; i < 30000 && !h->go; i++) {
		if (getppid() == 1)
			return 3;
		sleep_ns(20 * 1000000L);
	}
	if (!h->go)
		return 4;
	int ok = 1;
	unsigned long ino = 0;
	char perms[5] = "", name[256] = "";
	ok &= maps_entry(rw, &ino, perms, name, sizeof name) == 0 && (int)ino == shmid && !strcmp(perms, "rw-s");
	ok &= maps_entry(ro, &ino, perms, name, sizeof name) == 0 && (int)ino == shmid && !strcmp(perms, "r--s");
	for (size_t i = sizeof *h; i < SEG_SIZE; i++)
		ok &= ro[i] == pattern_at(i);
	h->child_ok = ok ? 1 : 2;
	h->child_token = TOKEN;
	h->child_done = 1;
	return 0;
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	int shmid = shmget(IPC_PRIVATE, SEG_SIZE, IPC_CREAT | SEG_MODE);
	if (shmid < 0)
		die("shmget");
	unsigned char *rw = shmat(shmid, NULL, 0);
	unsigned char *ro = shmat(shmid, NULL, SHM_RDONLY);
	if (rw == (void *)-1 || ro == (void *)-1)
		die("shmat");
	for (size_t i = sizeof(struct seg_head); i < SEG_SIZE; i++)
		rw[i] = pattern_at(i);
	struct seg_head *h = (struct seg_head *)rw;
	memset((void *)h, 0, sizeof *h);
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0)
		_exit(child_main(shmid, rw, ro));
	if (shmctl(shmid, IPC_RMID, NULL) < 0)
		die("shmctl(IPC_RMID)");
	install_trigger();
	say("READY");
	wait_trigger();

	check_maps("parent", shmid, rw, ro);
	struct shmid_ds ds;
	if (check(shmctl(shmid, IPC_STAT, &ds) == 0, "IPC_STAT by the same id", "errno %d", errno)) {
		check(ds.shm_segsz == SEG_SIZE, "segment size exact", "%zu", (size_t)ds.shm_segsz);
		check((ds.shm_perm.mode & 0777) == SEG_MODE, "segment mode 0640", "0%o", ds.shm_perm.mode & 0777);
		check((ds.shm_perm.mode & SHM_DEST) != 0, "segment still marked removed (SHM_DEST)", "mode 0%o", ds.shm_perm.mode);
		check(ds.shm_nattch == 4, "4 attachments (parent and child twice each)", "%lu", (unsigned long)ds.shm_nattch);
		check(ds.shm_perm.uid == getuid() && ds.shm_perm.gid == getgid(), "segment owner", "%u/%u", ds.shm_perm.uid,
		      ds.shm_perm.gid);
	}
	int same = 1;
	for (size_t i = sizeof *h; i < SEG_SIZE; i++)
		same &= ro[i] == pattern_at(i);
	check(same, "pattern intact through the read-only attachment", "differs");
	h->go = 1;
	for (int i = 0; i < 500 && !h->child_done; i++)
		sleep_ns(10 * 1000000L);
	check(h->child_done, "child reported", "no report");
	check(h->child_ok == 1, "child: both attachments in its maps, pattern intact", "child_ok %u", h->child_ok);
	check(((volatile struct seg_head *)ro)->child_token == TOKEN, "child's write seen through the parent's read-only attachment",
	      "token %x", h->child_token);
	int st = 0;
	check(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child exited 0", "status 0x%x", st);
	finish();
}
