/*
 * t_memory: the address space must survive checkpoint/restore exactly.
 *
 * Sets up one mapping of each kind with known content (private and shared
 * anonymous, a 16 GiB sparse reservation, private and shared file mappings,
 * a PROT_NONE hole, a MAP_GROWSDOWN area, heap, MADV_DONTNEED'ed and
 * read-only regions, madvise flags), snapshots what the kernel reports
 * about the mm (/proc/self/maps, smaps VmFlags, stat, cmdline, environ,
 * exe, auxv), and after the trigger compares content, layout and
 * behaviour: COW pages stay private, untouched private file pages still
 * track the file, shared mappings still share, brk and growsdown still grow.
 */
#include "common.h"

#include <limits.h>
#include <setjmp.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define PAGE 4096UL
#define MiB (1UL << 20)
#define GiB (1UL << 30)

/* Seeds for the content of each region (any distinct values). */
enum {
	SEED_ANON = 0x1000, SEED_SPARSE = 0x2000, SEED_FILE = 0x3000, SEED_COW = 0x4000,
	SEED_FILE2 = 0x5000, SEED_SHFILE = 0x6000, SEED_SHFILE2 = 0x7000, SEED_GAP = 0x8000,
	SEED_GD = 0x9000, SEED_HEAP = 0xa000, SEED_SHANON = 0xb000, SEED_DN = 0xc000,
	SEED_RO = 0xd000, SEED_MADV = 0xe000, SEED_BRK = 0xf000,
};

static void fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i++)
		w[i] = pattern64(seed, i);
}

/* Byte offset of the first word that differs from the pattern, or -1. */
static long mismatch(const void *p, size_t len, uint64_t seed)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != pattern64(seed, i))
			return (long)(i * 8);
	return -1;
}

static long nonzero(const void *p, size_t len)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			return (long)(i * 8);
	return -1;
}

static void *map(void *addr, size_t len, int prot, int flags, int fd, const char *what)
{
	void *p = mmap(addr, len, prot, flags, fd, 0);
	if (p == MAP_FAILED)
		die("mmap %s", what);
	return p;
}

static const char *g_workdir;

static void path_in_workdir(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", g_workdir, name);
}

/* Create WORKDIR/name with `pages` pages of pattern(seed + page). */
static void create_pattern_file(const char *name, size_t pages, uint64_t seed)
{
	char path[PATH_MAX];
	static unsigned char buf[PAGE];
	path_in_workdir(path, sizeof path, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("create %s", path);
	for (size_t i = 0; i < pages; i++) {
		fill(buf, PAGE, seed + i);
		if (pwrite(fd, buf, PAGE, i * PAGE) != (ssize_t)PAGE)
			die("write %s", path);
	}
	close(fd);
}

static int open_in_workdir(const char *name, int flags)
{
	char path[PATH_MAX];
	path_in_workdir(path, sizeof path, name);
	int fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open %s", path);
	return fd;
}

/* ---- the regions ---- */

#define ANON_PAGES 64
#define ANON_UNTOUCHED(i) ((i) % 7 == 3)
static unsigned char *anon_priv;

#define SPARSE_LEN (16 * GiB)
static const size_t sparse_touched[] = { 0, 3 * GiB + 5 * PAGE, 8 * GiB - PAGE, 16 * GiB - PAGE };
#define NSPARSE (sizeof sparse_touched / sizeof sparse_touched[0])
static unsigned char *sparse;

#define FPRIV_PAGES 16
#define FPRIV_COW(i) ((i) == 1 || (i) == 6 || (i) == 11)
#define FPRIV_TRACK_PAGE 3 /* clean page: must follow later writes to the file */
#define FPRIV_COW_PAGE 6   /* COW page: must not follow writes to the file */
static unsigned char *fpriv;

#define FSHARED_PAGES 8
static unsigned char *fshared;

static unsigned char *gap3; /* rw page, PROT_NONE page, rw page */

#define GD_PAGES 4
static unsigned char *gd; /* MAP_GROWSDOWN, with a free page below it */

#define HEAP_BYTES (64 * 1024) /* below the mmap threshold: comes from brk */
static unsigned char *heapbuf;
static unsigned long brk_before;

#define SHANON_PAGES 16
static unsigned char *shanon;

#define DN_PAGES 8
#define DN_DROPPED(i) ((i) >= 2 && (i) <= 5)
static unsigned char *dontneed;

#define RO_PAGES 4
static unsigned char *rdonly;

#define MADV_PAGES 4
static unsigned char *madv;

static void setup_regions(void)
{
	anon_priv = map(NULL, ANON_PAGES * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, "anon private");
	for (int i = 0; i < ANON_PAGES; i++)
		if (!ANON_UNTOUCHED(i))
			fill(anon_priv + i * PAGE, PAGE, SEED_ANON + i);

	sparse = map(NULL, SPARSE_LEN, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, "16 GiB sparse");
	for (size_t i = 0; i < NSPARSE; i++)
		fill(sparse + sparse_touched[i], PAGE, SEED_SPARSE + i);

	/* Private file mapping: some pages COW-written, the rest only read. */
	create_pattern_file("private.dat", FPRIV_PAGES, SEED_FILE);
	int fd = open_in_workdir("private.dat", O_RDWR);
	fpriv = map(NULL, FPRIV_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, "file private");
	close(fd);
	volatile uint64_t sink = 0;
	for (int i = 0; i < FPRIV_PAGES; i++) {
		if (FPRIV_COW(i))
			fill(fpriv + i * PAGE, PAGE, SEED_COW + i);
		else
			sink += *(volatile uint64_t *)(fpriv + i * PAGE);
	}
	(void)sink;

	/* Shared file mapping, content written through the mapping. */
	fd = open_in_workdir("shared.dat", O_RDWR | O_CREAT | O_TRUNC);
	if (ftruncate(fd, FSHARED_PAGES * PAGE) != 0)
		die("ftruncate shared.dat");
	fshared = map(NULL, FSHARED_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, "file shared");
	close(fd);
	for (int i = 0; i < FSHARED_PAGES; i++)
		fill(fshared + i * PAGE, PAGE, SEED_SHFILE + i);

	gap3 = map(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, "gap");
	fill(gap3, PAGE, SEED_GAP);
	fill(gap3 + 2 * PAGE, PAGE, SEED_GAP + 2);
	if (mprotect(gap3 + PAGE, PAGE, PROT_NONE) != 0)
		die("mprotect gap");

	/*
	 * Growsdown area: [PROT_NONE reservation][1 free page][GD_PAGES growsdown].
	 * The free page is where it can grow; the inaccessible reservation below
	 * does not count against the stack guard gap, and it keeps other
	 * mappings from being placed there.
	 */
	unsigned char *resv = map(NULL, (64 + 1 + GD_PAGES) * PAGE, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, "growsdown reservation");
	if (munmap(resv + 64 * PAGE, (1 + GD_PAGES) * PAGE) != 0)
		die("munmap reservation");
	gd = map(resv + 65 * PAGE, GD_PAGES * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE, -1, "growsdown");
	if (gd != resv + 65 * PAGE)
		die("growsdown placed at %p, wanted %p", (void *)gd, (void *)(resv + 65 * PAGE));
	fill(gd, GD_PAGES * PAGE, SEED_GD);

	heapbuf = malloc(HEAP_BYTES);
	if (!heapbuf)
		die("malloc");
	fill(heapbuf, HEAP_BYTES, SEED_HEAP);

	shanon = map(NULL, SHANON_PAGES * PAGE, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, "anon shared");
	fill(shanon, SHANON_PAGES * PAGE, SEED_SHANON);

	dontneed = map(NULL, DN_PAGES * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, "dontneed");
	for (int i = 0; i < DN_PAGES; i++)
		fill(dontneed + i * PAGE, PAGE, SEED_DN + i);
	if (madvise(dontneed + 2 * PAGE, 4 * PAGE, MADV_DONTNEED) != 0)
		die("madvise DONTNEED");

	rdonly = map(NULL, RO_PAGES * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, "read-only");
	fill(rdonly, RO_PAGES * PAGE, SEED_RO);
	if (mprotect(rdonly, RO_PAGES * PAGE, PROT_READ) != 0)
		die("mprotect read-only");

	madv = map(NULL, MADV_PAGES * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, "madvise flags");
	fill(madv, MADV_PAGES * PAGE, SEED_MADV);
	if (madvise(madv, MADV_PAGES * PAGE, MADV_DONTFORK) != 0 ||
	    madvise(madv, MADV_PAGES * PAGE, MADV_NOHUGEPAGE) != 0)
		die("madvise flags");
}

/* ---- what the kernel reports about the mm ---- */

struct snapshot {
	char maps[256 * 1024];
	char smaps[2 * 1024 * 1024];
	char stat[4096];
	char cmdline[64 * 1024];
	ssize_t cmdline_len;
	char environ[256 * 1024];
	ssize_t environ_len;
	char exe[PATH_MAX];
	unsigned char auxv[4096];
	ssize_t auxv_len;
};
static struct snapshot snap_before, snap_after;

static void must_read(const char *path, char *buf, size_t size, ssize_t *len_out)
{
	ssize_t n = read_file(path, buf, size);
	if (n < 0)
		die("read %s", path);
	if ((size_t)n >= size - 1)
		die("%s larger than %zu bytes", path, size);
	if (len_out)
		*len_out = n;
}

/* Only reads into static buffers: must not change the address space. */
static void take_snapshot(struct snapshot *s)
{
	must_read("/proc/self/maps", s->maps, sizeof s->maps, NULL);
	must_read("/proc/self/smaps", s->smaps, sizeof s->smaps, NULL);
	must_read("/proc/self/stat", s->stat, sizeof s->stat, NULL);
	must_read("/proc/self/cmdline", s->cmdline, sizeof s->cmdline, &s->cmdline_len);
	must_read("/proc/self/environ", s->environ, sizeof s->environ, &s->environ_len);
	must_read("/proc/self/auxv", (char *)s->auxv, sizeof s->auxv, &s->auxv_len);
	ssize_t n = readlink("/proc/self/exe", s->exe, sizeof s->exe - 1);
	if (n < 0)
		die("readlink /proc/self/exe");
	s->exe[n] = '\0';
}

/*
 * "start-end perms offset path" per maps line: the device and inode
 * columns are left out (a restore may legitimately get new inode numbers
 * for e.g. shared anonymous memory).
 */
static void normalize_maps(const char *raw, char *out, size_t size)
{
	size_t len = 0;
	out[0] = '\0';
	for (const char *line = raw; *line;) {
		const char *eol = strchr(line, '\n');
		if (!eol)
			eol = line + strlen(line);
		char range[64], perms[8], offset[32];
		int path_at = 0;
		char tmp[1024];
		size_t ll = (size_t)(eol - line) < sizeof tmp - 1 ? (size_t)(eol - line) : sizeof tmp - 1;
		memcpy(tmp, line, ll);
		tmp[ll] = '\0';
		if (sscanf(tmp, "%63s %7s %31s %*s %*s %n", range, perms, offset, &path_at) >= 3) {
			const char *path = path_at ? tmp + path_at : "";
			len += snprintf(out + len, size - len, "%s %s %s %s\n", range, perms, offset, path);
			if (len >= size)
				die("normalized maps too large");
		}
		line = *eol ? eol + 1 : eol;
	}
}

/* "start-end VmFlags..." per VMA from smaps. */
static void vmflags_lines(const char *smaps, char *out, size_t size)
{
	size_t len = 0;
	char range[64] = "";
	out[0] = '\0';
	for (const char *line = smaps; *line;) {
		const char *eol = strchr(line, '\n');
		if (!eol)
			eol = line + strlen(line);
		unsigned long a, b;
		char c;
		if (sscanf(line, "%lx-%lx%c", &a, &b, &c) == 3 && c == ' ') {
			snprintf(range, sizeof range, "%lx-%lx", a, b);
		} else if (!strncmp(line, "VmFlags:", 8)) {
			len += snprintf(out + len, size - len, "%s%.*s\n", range,
					(int)(eol - line - 8), line + 8);
			if (len >= size)
				die("vmflags list too large");
		}
		line = *eol ? eol + 1 : eol;
	}
}

/* Lines of `a` missing from `b`, appended to msg as "<tag> line; ". */
static int missing_lines(const char *a, const char *b, const char *tag, char *msg, size_t size)
{
	int count = 0;
	size_t len = strlen(msg);
	for (const char *line = a; *line;) {
		const char *eol = strchr(line, '\n');
		size_t ll = eol ? (size_t)(eol - line) : strlen(line);
		int found = 0;
		for (const char *l2 = b; *l2;) {
			const char *e2 = strchr(l2, '\n');
			size_t l2l = e2 ? (size_t)(e2 - l2) : strlen(l2);
			if (l2l == ll && !memcmp(line, l2, ll)) {
				found = 1;
				break;
			}
			l2 = e2 ? e2 + 1 : l2 + l2l;
		}
		if (!found) {
			count++;
			if (len + ll + 16 < size)
				len += snprintf(msg + len, size - len, "%s %.*s; ", tag, (int)ll, line);
		}
		line = eol ? eol + 1 : line + ll;
	}
	return count;
}

static void compare_line_sets(const char *what, const char *before, const char *after)
{
	static char msg[8192];
	msg[0] = '\0';
	int n = missing_lines(before, after, "lost:", msg, sizeof msg);
	n += missing_lines(after, before, "new:", msg, sizeof msg);
	check(n == 0, what, "%d lines differ: %s", n, msg);
}

/* The smaps block for the VMA starting at addr (NULL if none). */
static const char *smaps_block(const char *smaps, const void *addr)
{
	char head[40];
	int n = snprintf(head, sizeof head, "%08lx-", (unsigned long)addr);
	for (const char *line = smaps; *line;) {
		if (!strncmp(line, head, n))
			return line;
		const char *eol = strchr(line, '\n');
		if (!eol)
			break;
		line = eol + 1;
	}
	return NULL;
}

/* Value of "Field:" inside the smaps block (first occurrence), or -1. */
static long smaps_field_kb(const char *block, const char *field)
{
	if (!block)
		return -1;
	const char *p = strstr(block, field);
	if (!p)
		return -1;
	return strtol(p + strlen(field), NULL, 10);
}

/* Copy the VmFlags value of the VMA at addr into out (empty if not found). */
static void vma_flags(const char *smaps, const void *addr, char *out, size_t size)
{
	out[0] = '\0';
	const char *block = smaps_block(smaps, addr);
	if (!block)
		return;
	const char *p = strstr(block, "VmFlags:");
	if (!p)
		return;
	p += 8;
	const char *eol = strchr(p, '\n');
	snprintf(out, size, "%.*s", eol ? (int)(eol - p) : (int)strlen(p), p);
}

static int has_vmflag(const char *flags, const char *flag)
{
	char needle[8];
	snprintf(needle, sizeof needle, " %s", flag);
	const char *p = strstr(flags, needle);
	return p && (p[3] == ' ' || p[3] == '\0');
}

/* Find the normalized maps line for [start,end); returns perms+path or NULL. */
static const char *maps_entry(const char *maps, const void *start, const void *end)
{
	static char entry[512];
	char head[64];
	int n = snprintf(head, sizeof head, "%08lx-%08lx ", (unsigned long)start, (unsigned long)end);
	for (const char *line = maps; *line;) {
		const char *eol = strchr(line, '\n');
		size_t ll = eol ? (size_t)(eol - line) : strlen(line);
		if (!strncmp(line, head, n)) {
			snprintf(entry, sizeof entry, "%.*s", (int)(ll - n), line + n);
			return entry;
		}
		line = eol ? eol + 1 : line + ll;
	}
	return NULL;
}

/* /proc/self/stat: field numbers as in proc(5) (1-based). */
static int stat_field(const char *stat, int field, char *out, size_t size)
{
	if (field == 2) {
		const char *a = strchr(stat, '('), *b = strrchr(stat, ')');
		if (!a || !b)
			return -1;
		snprintf(out, size, "%.*s", (int)(b - a - 1), a + 1);
		return 0;
	}
	const char *p = strrchr(stat, ')');
	if (!p)
		return -1;
	p += 2; /* now at field 3 */
	for (int f = 3; f < field; f++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	size_t n = strcspn(p, " \n");
	snprintf(out, size, "%.*s", (int)n, p);
	return 0;
}

static unsigned long auxv_value(const unsigned char *auxv, ssize_t len, unsigned long type)
{
	const unsigned long *a = (const unsigned long *)auxv;
	for (ssize_t i = 0; (i + 2) * (ssize_t)sizeof(long) <= len && a[i]; i += 2)
		if (a[i] == type)
			return a[i + 1];
	return 0;
}

static uint64_t clock_ns(clockid_t clk, int raw_syscall)
{
	struct timespec ts;
	if (raw_syscall)
		syscall(SYS_clock_gettime, clk, &ts);
	else
		clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static sigjmp_buf segv_jmp;
static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jmp, 1);
}

/* Returns 1 if writing one byte at p works, 0 if it faults. */
static int try_write(volatile unsigned char *p, unsigned char v)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_segv;
	sigaction(SIGSEGV, &sa, &old);
	int ok = 0;
	if (!sigsetjmp(segv_jmp, 1)) {
		*p = v;
		ok = *p == v;
	}
	sigaction(SIGSEGV, &old, NULL);
	return ok;
}

/* Let the kernel write into [addr, addr+len) with pread(): 0 or the errno
 * (EFAULT when the range is not writable), without risking a SIGSEGV. */
static int errno_writing_into(int fd, void *addr, size_t len)
{
	return pread(fd, addr, len, 0) >= 0 ? 0 : errno;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: %s WORKDIR", argv[0]);
	g_workdir = argv[1];
	install_trigger();
	setup_regions();

	/* A file for the EFAULT probes (its content is only ever copied out). */
	int probe_fd = open_in_workdir("probe.dat", O_RDWR | O_CREAT | O_TRUNC);
	static unsigned char one_page[PAGE];
	if (write(probe_fd, one_page, PAGE) != (ssize_t)PAGE)
		die("write probe.dat");

	unsigned long at_vdso = getauxval(AT_SYSINFO_EHDR), at_phdr = getauxval(AT_PHDR);
	unsigned long at_entry = getauxval(AT_ENTRY), at_random = getauxval(AT_RANDOM);
	unsigned char random_before[16];
	memcpy(random_before, (void *)at_random, 16);
	brk_before = syscall(SYS_brk, 0);
	uint64_t mono_before = clock_ns(CLOCK_MONOTONIC, 0);

	take_snapshot(&snap_before);
	ready();
	wait_trigger();
	/* First thing: snapshot before any verification step can change the mm. */
	take_snapshot(&snap_after);

	/* ---- layout ---- */
	static char norm_before[256 * 1024], norm_after[256 * 1024];
	normalize_maps(snap_before.maps, norm_before, sizeof norm_before);
	normalize_maps(snap_after.maps, norm_after, sizeof norm_after);
	compare_line_sets("/proc/self/maps unchanged (start-end perms offset path)", norm_before, norm_after);

	static char vmf_before[256 * 1024], vmf_after[256 * 1024];
	vmflags_lines(snap_before.smaps, vmf_before, sizeof vmf_before);
	vmflags_lines(snap_after.smaps, vmf_after, sizeof vmf_after);
	compare_line_sets("smaps VmFlags unchanged for every VMA", vmf_before, vmf_after);

	/* ---- content and per-region properties ---- */
	{
		int bad = -1;
		long off = -1;
		for (int i = 0; i < ANON_PAGES && bad < 0; i++) {
			off = ANON_UNTOUCHED(i) ? nonzero(anon_priv + i * PAGE, PAGE)
						: mismatch(anon_priv + i * PAGE, PAGE, SEED_ANON + i);
			if (off >= 0)
				bad = i;
		}
		check(bad < 0, "anonymous private pages (written and never-touched)",
		      "page %d wrong at byte %ld", bad, off);
	}

	{
		const char *block = smaps_block(snap_after.smaps, sparse);
		long rss = smaps_field_kb(block, "\nRss:");
		check(rss >= 0 && rss <= 1024, "16 GiB sparse reservation still sparse (Rss <= 1 MiB)",
		      "Rss %ld kB", rss);
		char flags[256];
		vma_flags(snap_after.smaps, sparse, flags, sizeof flags);
		check(has_vmflag(flags, "nr"), "16 GiB reservation keeps MAP_NORESERVE (nr)",
		      "VmFlags:%s", flags);
		int bad = -1;
		for (size_t i = 0; i < NSPARSE && bad < 0; i++)
			if (mismatch(sparse + sparse_touched[i], PAGE, SEED_SPARSE + i) >= 0)
				bad = (int)i;
		check(bad < 0, "16 GiB sparse: touched pages keep their data",
		      "page at offset %#lx differs", bad >= 0 ? (unsigned long)sparse_touched[bad] : 0UL);
		size_t npages = SPARSE_LEN / PAGE, bad_page = 0;
		int zero_ok = 1;
		for (int s = 0; s < 256 && zero_ok; s++) {
			size_t pg = pattern64(0x5a5a, s) % npages;
			int touched = 0;
			for (size_t i = 0; i < NSPARSE; i++)
				touched |= sparse_touched[i] / PAGE == pg;
			if (!touched && nonzero(sparse + pg * PAGE, PAGE) >= 0) {
				zero_ok = 0;
				bad_page = pg;
			}
		}
		check(zero_ok, "16 GiB sparse: 256 sampled untouched pages read zero",
		      "page %zu (offset %#lx) not zero", bad_page, (unsigned long)(bad_page * PAGE));
	}

	{
		int fd = open_in_workdir("private.dat", O_RDWR);
		static unsigned char buf[PAGE];
		int bad = -1;
		const char *why = "";
		for (int i = 0; i < FPRIV_PAGES && bad < 0; i++) {
			if (FPRIV_COW(i)) {
				if (mismatch(fpriv + i * PAGE, PAGE, SEED_COW + i) >= 0)
					bad = i, why = "COW-modified page lost its private content";
			} else {
				if (pread(fd, buf, PAGE, i * PAGE) != (ssize_t)PAGE ||
				    memcmp(buf, fpriv + i * PAGE, PAGE) != 0 ||
				    mismatch(buf, PAGE, SEED_FILE + i) >= 0)
					bad = i, why = "read-only page differs from the file";
			}
		}
		check(bad < 0, "file MAP_PRIVATE: COW pages private, other pages match the file",
		      "page %d: %s", bad, why);
		bad = -1;
		for (int i = 0; i < FPRIV_PAGES && bad < 0; i++)
			if (FPRIV_COW(i) && (pread(fd, buf, PAGE, i * PAGE) != (ssize_t)PAGE ||
					     mismatch(buf, PAGE, SEED_FILE + i) >= 0))
				bad = i;
		check(bad < 0, "file MAP_PRIVATE: COW writes did not reach the file",
		      "file page %d changed", bad);
		/* Linux semantics: a clean page of a private file mapping is the
		 * page-cache page, so later file writes show through; a COW page
		 * does not. Catches a restore that copied clean pages into anon
		 * memory (or re-mapped the file while leaving COW pages shared). */
		fill(buf, PAGE, SEED_FILE2 + FPRIV_TRACK_PAGE);
		if (pwrite(fd, buf, PAGE, FPRIV_TRACK_PAGE * PAGE) != (ssize_t)PAGE)
			die("pwrite private.dat");
		check(mismatch(fpriv + FPRIV_TRACK_PAGE * PAGE, PAGE, SEED_FILE2 + FPRIV_TRACK_PAGE) < 0,
		      "file MAP_PRIVATE: clean page still backed by the file (sees a later pwrite)",
		      "mapping page %d does not show the new file content", FPRIV_TRACK_PAGE);
		fill(buf, PAGE, SEED_FILE2 + FPRIV_COW_PAGE);
		if (pwrite(fd, buf, PAGE, FPRIV_COW_PAGE * PAGE) != (ssize_t)PAGE)
			die("pwrite private.dat");
		check(mismatch(fpriv + FPRIV_COW_PAGE * PAGE, PAGE, SEED_COW + FPRIV_COW_PAGE) < 0,
		      "file MAP_PRIVATE: COW page does not see a later pwrite",
		      "mapping page %d changed with the file", FPRIV_COW_PAGE);
		close(fd);
	}

	{
		int fd = open_in_workdir("shared.dat", O_RDWR);
		static unsigned char buf[PAGE];
		int bad = -1;
		for (int i = 0; i < FSHARED_PAGES && bad < 0; i++)
			if (mismatch(fshared + i * PAGE, PAGE, SEED_SHFILE + i) >= 0)
				bad = i;
		check(bad < 0, "file MAP_SHARED: mapping content", "page %d differs", bad);
		bad = -1;
		for (int i = 0; i < FSHARED_PAGES && bad < 0; i++)
			if (pread(fd, buf, PAGE, i * PAGE) != (ssize_t)PAGE ||
			    mismatch(buf, PAGE, SEED_SHFILE + i) >= 0)
				bad = i;
		check(bad < 0, "file MAP_SHARED: data written before checkpoint is in the file",
		      "file page %d differs", bad);
		fill(fshared + 2 * PAGE, PAGE, SEED_SHFILE2 + 2);
		check(pread(fd, buf, PAGE, 2 * PAGE) == (ssize_t)PAGE && mismatch(buf, PAGE, SEED_SHFILE2 + 2) < 0,
		      "file MAP_SHARED: write through mapping visible to pread", "file page 2 not updated");
		fill(buf, PAGE, SEED_SHFILE2 + 5);
		if (pwrite(fd, buf, PAGE, 5 * PAGE) != (ssize_t)PAGE)
			die("pwrite shared.dat");
		check(mismatch(fshared + 5 * PAGE, PAGE, SEED_SHFILE2 + 5) < 0,
		      "file MAP_SHARED: pwrite to the file visible in mapping", "mapping page 5 not updated");
		close(fd);
	}

	{
		check(mismatch(gap3, PAGE, SEED_GAP) < 0 && mismatch(gap3 + 2 * PAGE, PAGE, SEED_GAP + 2) < 0,
		      "pages around the PROT_NONE hole", "content differs");
		const char *e = maps_entry(snap_after.maps, gap3 + PAGE, gap3 + 2 * PAGE);
		check(e && !strncmp(e, "---p ", 5), "PROT_NONE hole shown as ---p in maps",
		      "maps entry: %s", e ? e : "(none with that exact range)");
		int err = errno_writing_into(probe_fd, gap3 + PAGE, 16);
		check(err == EFAULT, "PROT_NONE hole inaccessible (read() into it fails with EFAULT)",
		      "got %s", err ? strerror(err) : "success");
	}

	{
		check(mismatch(gd, GD_PAGES * PAGE, SEED_GD) < 0, "MAP_GROWSDOWN area content", "differs");
		char flags[256];
		vma_flags(snap_after.smaps, gd, flags, sizeof flags);
		check(has_vmflag(flags, "gd"), "MAP_GROWSDOWN area flagged gd in smaps", "VmFlags:%s",
		      flags[0] ? flags : " (VMA not found at its old start)");
	}

	{
		check(mismatch(heapbuf, HEAP_BYTES, SEED_HEAP) < 0, "malloc'ed heap buffer", "differs");
		unsigned long brk_now = syscall(SYS_brk, 0);
		check(brk_now == brk_before, "kernel program break (brk(0)) unchanged",
		      "expected %#lx, got %#lx", brk_before, brk_now);
		check((unsigned long)sbrk(0) == brk_before, "sbrk(0) unchanged", "expected %#lx, got %p",
		      brk_before, sbrk(0));
		int has_heap = strstr(norm_after, "[heap]") != NULL;
		check(has_heap, "[heap] mapping present", "no [heap] line in maps");
	}

	{
		check(mismatch(shanon, SHANON_PAGES * PAGE, SEED_SHANON) < 0, "anonymous MAP_SHARED content", "differs");
		const char *e = maps_entry(snap_after.maps, shanon, shanon + SHANON_PAGES * PAGE);
		check(e && !strncmp(e, "rw-s", 4), "anonymous MAP_SHARED shown as rw-s", "maps entry: %s",
		      e ? e : "(none with that exact range)");
	}

	{
		int bad = -1;
		for (int i = 0; i < DN_PAGES && bad < 0; i++) {
			long off = DN_DROPPED(i) ? nonzero(dontneed + i * PAGE, PAGE)
						 : mismatch(dontneed + i * PAGE, PAGE, SEED_DN + i);
			if (off >= 0)
				bad = i;
		}
		check(bad < 0, "MADV_DONTNEED pages read zero, neighbours keep data", "page %d wrong", bad);
	}

	{
		check(mismatch(rdonly, RO_PAGES * PAGE, SEED_RO) < 0, "mprotect(PROT_READ) region content", "differs");
		const char *e = maps_entry(snap_after.maps, rdonly, rdonly + RO_PAGES * PAGE);
		check(e && !strncmp(e, "r--p", 4), "mprotect(PROT_READ) region shown as r--p",
		      "maps entry: %s", e ? e : "(none with that exact range)");
		int err = errno_writing_into(probe_fd, rdonly, 16);
		check(err == EFAULT, "mprotect(PROT_READ) region not writable (read() into it: EFAULT)",
		      "got %s", err ? strerror(err) : "success");
		check(mismatch(rdonly, RO_PAGES * PAGE, SEED_RO) < 0, "read-only region unchanged by the probe",
		      "differs");
	}

	{
		check(mismatch(madv, MADV_PAGES * PAGE, SEED_MADV) < 0, "madvise'd region content", "differs");
		char flags[256];
		vma_flags(snap_after.smaps, madv, flags, sizeof flags);
		check(has_vmflag(flags, "dc") && has_vmflag(flags, "nh"),
		      "MADV_DONTFORK (dc) and MADV_NOHUGEPAGE (nh) kept", "VmFlags:%s", flags);
	}

	/* ---- vdso, clocks ---- */
	{
		char want[32];
		snprintf(want, sizeof want, "%08lx-", at_vdso);
		const char *vd = strstr(norm_after, "[vdso]");
		const char *ls = vd;
		while (ls && ls > norm_after && ls[-1] != '\n')
			ls--;
		check(vd && !strncmp(ls, want, strlen(want)), "[vdso] mapped at AT_SYSINFO_EHDR",
		      "AT_SYSINFO_EHDR %#lx, maps line: %.*s", at_vdso,
		      vd ? (int)(vd - ls + 6) : 6, vd ? ls : "(none)");
		uint64_t mono_now = clock_ns(CLOCK_MONOTONIC, 0);
		check(mono_now >= mono_before, "CLOCK_MONOTONIC did not go backwards",
		      "before %lu ns, after %lu ns", (unsigned long)mono_before, (unsigned long)mono_now);
		uint64_t prev = 0;
		int mono_ok = 1;
		for (int i = 0; i < 10000; i++) {
			uint64_t t = clock_ns(CLOCK_MONOTONIC, 0);
			if (t < prev)
				mono_ok = 0;
			prev = t;
		}
		check(mono_ok, "CLOCK_MONOTONIC monotonic over 10000 reads", "went backwards");
		static const struct { clockid_t id; const char *name; } clocks[] = {
			{ CLOCK_MONOTONIC, "CLOCK_MONOTONIC" }, { CLOCK_REALTIME, "CLOCK_REALTIME" },
			{ CLOCK_BOOTTIME, "CLOCK_BOOTTIME" },
		};
		for (size_t c = 0; c < sizeof clocks / sizeof clocks[0]; c++) {
			uint64_t v1 = clock_ns(clocks[c].id, 0), s = clock_ns(clocks[c].id, 1);
			uint64_t v2 = clock_ns(clocks[c].id, 0);
			char what[96];
			snprintf(what, sizeof what, "%s via vdso agrees with the syscall", clocks[c].name);
			check(v1 <= s + 1000000 && s <= v2 + 1000000, what,
			      "vdso %lu / syscall %lu / vdso %lu ns", (unsigned long)v1, (unsigned long)s,
			      (unsigned long)v2);
		}
	}

	/* ---- mm fields, cmdline, environ, exe, auxv ---- */
	{
		static const struct { int field; const char *name; } fields[] = {
			{ 2, "comm" }, { 26, "start_code" }, { 27, "end_code" }, { 28, "start_stack" },
			{ 45, "start_data" }, { 46, "end_data" }, { 47, "start_brk" }, { 48, "arg_start" },
			{ 49, "arg_end" }, { 50, "env_start" }, { 51, "env_end" },
		};
		for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
			char a[128] = "?", b[128] = "?", what[64];
			stat_field(snap_before.stat, fields[i].field, a, sizeof a);
			stat_field(snap_after.stat, fields[i].field, b, sizeof b);
			snprintf(what, sizeof what, "/proc/self/stat %s", fields[i].name);
			check(!strcmp(a, b), what, "expected %s, got %s", a, b);
		}
		check(snap_before.cmdline_len == snap_after.cmdline_len &&
		      !memcmp(snap_before.cmdline, snap_after.cmdline, snap_after.cmdline_len),
		      "/proc/self/cmdline unchanged", "expected '%s' (%zd bytes), got '%s' (%zd bytes)",
		      snap_before.cmdline, snap_before.cmdline_len, snap_after.cmdline, snap_after.cmdline_len);
		check(snap_before.environ_len == snap_after.environ_len &&
		      !memcmp(snap_before.environ, snap_after.environ, snap_after.environ_len),
		      "/proc/self/environ unchanged", "expected %zd bytes, got %zd bytes",
		      snap_before.environ_len, snap_after.environ_len);
		check(!strcmp(snap_before.exe, snap_after.exe), "/proc/self/exe unchanged",
		      "expected %s, got %s", snap_before.exe, snap_after.exe);
		check(snap_before.auxv_len == snap_after.auxv_len &&
		      !memcmp(snap_before.auxv, snap_after.auxv, snap_after.auxv_len),
		      "/proc/self/auxv unchanged", "expected %zd bytes, got %zd bytes (or content differs)",
		      snap_before.auxv_len, snap_after.auxv_len);

		static const struct { unsigned long type; const char *name; } aux[] = {
			{ AT_PHDR, "AT_PHDR" }, { AT_ENTRY, "AT_ENTRY" }, { AT_RANDOM, "AT_RANDOM" },
			{ AT_SYSINFO_EHDR, "AT_SYSINFO_EHDR" },
		};
		const unsigned long before_vals[] = { at_phdr, at_entry, at_random, at_vdso };
		for (size_t i = 0; i < sizeof aux / sizeof aux[0]; i++) {
			char what[96];
			unsigned long now = getauxval(aux[i].type);
			unsigned long kern = auxv_value(snap_after.auxv, snap_after.auxv_len, aux[i].type);
			snprintf(what, sizeof what, "%s unchanged (getauxval and kernel auxv)", aux[i].name);
			check(now == before_vals[i] && kern == before_vals[i], what,
			      "expected %#lx, got getauxval %#lx, /proc/self/auxv %#lx", before_vals[i], now, kern);
		}
		check(!memcmp((void *)at_random, random_before, 16), "AT_RANDOM bytes unchanged", "differ");
	}

	/* ---- behaviour that changes the mm (after the maps comparison) ---- */
	{
		/* anon shared memory is shmem: dropping the PTEs must not lose the
		 * data. For a private anonymous mapping this would read zeros. */
		if (madvise(shanon, SHANON_PAGES * PAGE, MADV_DONTNEED) != 0)
			die("madvise shared");
		check(mismatch(shanon, SHANON_PAGES * PAGE, SEED_SHANON) < 0,
		      "anonymous MAP_SHARED still shared memory (data survives MADV_DONTNEED)",
		      "data lost: the mapping behaves as private");
		/* The same holds for the shared file mapping: data lives in the file. */
		if (madvise(fshared, FSHARED_PAGES * PAGE, MADV_DONTNEED) != 0)
			die("madvise shared file");
		check(mismatch(fshared, PAGE, SEED_SHFILE) < 0 &&
		      mismatch(fshared + 2 * PAGE, PAGE, SEED_SHFILE2 + 2) < 0,
		      "file MAP_SHARED data survives MADV_DONTNEED", "data lost");
	}

	{
		/* Touching the free page below a growsdown VMA must extend it. */
		int grew = try_write(gd - 1, 0x5a);
		char want[64];
		snprintf(want, sizeof want, "%08lx-", (unsigned long)(gd - PAGE));
		static char maps_now[256 * 1024];
		must_read("/proc/self/maps", maps_now, sizeof maps_now, NULL);
		check(grew && strstr(maps_now, want) != NULL, "MAP_GROWSDOWN area grows on access below it",
		      "%s", grew ? "no VMA starts one page lower" : "access faulted (SIGSEGV)");
	}

	{
		void *old = sbrk(0);
		void *p = sbrk(MiB);
		int ok = p != (void *)-1 && p == old;
		if (ok) {
			fill(p, MiB, SEED_BRK);
			ok = mismatch(p, MiB, SEED_BRK) < 0;
		}
		unsigned long brk_now = syscall(SYS_brk, 0);
		check(ok && brk_now == (unsigned long)old + MiB, "sbrk(+1 MiB) works and is writable",
		      "sbrk returned %p (break was %p), kernel brk now %#lx", p, old, brk_now);
	}

	{
		/* Program still intact: the heap allocator works. */
		char *m = malloc(300 * 1024); /* mmap'ed chunk */
		char *s = malloc(100);        /* brk chunk */
		check(m && s, "malloc still works", "malloc failed");
		free(m);
		free(s);
	}

	close(probe_fd);
	finish();
}
