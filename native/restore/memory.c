/* Premapping the target's memory and filling it from the page stream.
 *
 * Target VMAs cannot be mapped at their final addresses yet: crmigrate-restore
 * itself (its binary, libc, stack, heap) may sit there. So each one is mapped
 * in a free region first, filled in place (pages are written straight into
 * the memory they will live in), and later moved with mremap by the blob. */
#include "memory.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define REGION_FLOOR 0x10000000ULL /* keep clear of the low, legacy area */

uint32_t own_mappings(struct own_range *out, uint32_t max) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) die_errno("open /proc/self/maps");
  char line[4096];
  uint32_t n = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long long s, e;
    int pos = 0;
    if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &s, &e, &pos) < 2) continue;
    if (e > TASK_SIZE_LIMIT) continue; /* [vsyscall] */
    if (n == max) die("too many mappings of our own");
    out[n].start = s;
    out[n].end = e;
    out[n].name[0] = 0;
    if (pos > 0) {
      char *nm = line + pos;
      nm[strcspn(nm, "\n")] = 0;
      snprintf(out[n].name, sizeof out[n].name, "%s", nm);
    }
    n++;
  }
  fclose(f);
  return n;
}

static int overlaps(uint64_t s, uint64_t e, uint64_t s2, uint64_t e2) { return s < e2 && s2 < e; }

/* Finds a free range of len bytes above REGION_FLOOR not touching any of ours
 * or the target's mappings (with a guard page either side). */
static uint64_t find_region(const struct plan *p, const struct own_range *own, uint32_t nown, uint64_t len) {
  for (uint64_t cand = REGION_FLOOR; cand + len < TASK_SIZE_LIMIT;) {
    uint64_t lo = cand - PAGE_SIZE_BYTES, hi = cand + len + PAGE_SIZE_BYTES, bump = 0;
    for (uint32_t i = 0; i < nown; i++)
      if (overlaps(lo, hi, own[i].start, own[i].end) && own[i].end > bump) bump = own[i].end;
    for (uint32_t i = 0; i < p->hdr->vma_count; i++)
      if (overlaps(lo, hi, p->vmas[i].start, p->vmas[i].end) && p->vmas[i].end > bump) bump = p->vmas[i].end;
    if (!bump) return cand;
    cand = page_up(bump + PAGE_SIZE_BYTES);
  }
  die("no free address range of %llu MiB for premapping", (unsigned long long)(len >> 20));
}

static int is_special(uint32_t kind) { return kind == CRM_VMA_VDSO || kind == CRM_VMA_VVAR; }

static void apply_advice(uint64_t addr, uint64_t len, uint32_t vm_flags) {
  static const struct { uint32_t flag; int advice; } table[] = {
      {CRM_VM_DONTFORK, MADV_DONTFORK},   {CRM_VM_DONTDUMP, MADV_DONTDUMP},
      {CRM_VM_WIPEONFORK, MADV_WIPEONFORK}, {CRM_VM_HUGEPAGE, MADV_HUGEPAGE},
      {CRM_VM_NOHUGEPAGE, MADV_NOHUGEPAGE},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if ((vm_flags & table[i].flag) && madvise((void *)addr, len, table[i].advice) < 0)
      die_errno("madvise(%d) at premap %llx", table[i].advice, (unsigned long long)addr);
}

/* An anonymous shared mapping is a second view of the tree's object (made
 * before any task, inherited): mremap with old_size 0 duplicates a shared
 * mapping instead of moving it. */
static void map_shared_object(const struct tree *t, const struct crm_vma *v, uint64_t at) {
  uint64_t size = 0, len = v->end - v->start;
  uint64_t base = tree_object_map(t, v->object, &size);
  if (!base) die("mapping at %llx names shared memory %u, which the tree does not have", (unsigned long long)v->start, v->object);
  if (v->pgoff > size / PAGE_SIZE_BYTES || len > size - v->pgoff * PAGE_SIZE_BYTES)
    die("mapping at %llx reaches past the end of shared memory %u", (unsigned long long)v->start, v->object);
  void *r = mremap((void *)(base + v->pgoff * PAGE_SIZE_BYTES), 0, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)at);
  if (r == MAP_FAILED) die_errno("mapping shared memory %u at premap %llx", v->object, (unsigned long long)at);
  apply_advice(at, len, v->vm_flags);
}

static void map_one(const struct plan *p, const struct tree *t, const struct crm_vma *v, uint64_t at) {
  uint64_t len = v->end - v->start;
  if (v->kind == CRM_VMA_ANON_SHARED) {
    map_shared_object(t, v, at);
    return;
  }
  int flags = MAP_FIXED;
  /* Private mappings are premapped writable only if the task's mapping is
   * charged to the commit limit ("ac"): making one writable sets VM_ACCOUNT
   * for good. Others keep their final protection and are filled through
   * /proc/self/mem, which writes past the protection without changing it. */
  int prot = (v->vm_flags & CRM_VM_ACCOUNT) ? PROT_READ | PROT_WRITE : (int)v->prot;
  int fd = -1;
  if (v->vm_flags & CRM_VM_NORESERVE) flags |= MAP_NORESERVE;
  if (v->vm_flags & CRM_VM_GROWSDOWN) flags |= MAP_GROWSDOWN;
  switch (v->kind) {
    case CRM_VMA_ANON_PRIVATE: flags |= MAP_PRIVATE | MAP_ANONYMOUS; break;
    case CRM_VMA_FILE_PRIVATE:
    case CRM_VMA_FILE_SHARED: {
      const char *path = plan_str(p, v->path);
      int oflags = v->kind == CRM_VMA_FILE_SHARED ? (int)(v->open_flags & O_ACCMODE) : O_RDONLY;
      fd = open(path, oflags | O_CLOEXEC);
      if (fd < 0) die_errno("cannot open %s to map it at %llx", path, (unsigned long long)v->start);
      if (v->kind == CRM_VMA_FILE_SHARED) {
        flags |= MAP_SHARED;
        prot = (int)v->prot; /* shared file pages come from the file itself */
      } else {
        flags |= MAP_PRIVATE;
      }
      break;
    }
    default: die("mapping at %llx has unexpected kind %u", (unsigned long long)v->start, v->kind);
  }
  void *r = mmap((void *)at, len, prot, flags, fd, (off_t)(v->pgoff * PAGE_SIZE_BYTES));
  if (r == MAP_FAILED)
    die_errno("mmap of %llx-%llx (%s)", (unsigned long long)v->start, (unsigned long long)v->end,
              fd >= 0 ? plan_str(p, v->path) : "anonymous");
  if (fd >= 0) close(fd);
  if ((v->vm_flags & CRM_VM_ACCOUNT) && v->kind == CRM_VMA_ANON_PRIVATE && !(v->prot & PROT_WRITE)) {
    /* mprotect() to read-only drops VM_ACCOUNT from an anonymous mapping
     * that never had a page; the task's mapping had one at some point. Give
     * ours its anon_vma with a page that is written and dropped again. */
    *(volatile char *)at = 0;
    if (madvise((void *)at, PAGE_SIZE_BYTES, MADV_DONTNEED) < 0) die_errno("madvise(MADV_DONTNEED)");
  }
  apply_advice(at, len, v->vm_flags);
}

/* A VMA whose pages are partly still shared with the parent, as fork left
 * them: the parent's premapped VMA, inherited by our fork, moves here
 * whole (it keeps the pages shared), then every page not inherited is
 * dropped, so it reads as the task has it (zero, or the file) until the
 * page stream writes the task's own. */
static void map_inherited(const struct plan *p, const struct crm_vma *v, uint64_t at, const struct task_memory *parent,
                          const struct crm_range *r, uint32_t n) {
  unsigned long long start = v->start;
  if (!parent) die("mapping at %llx inherits pages, but its task has no parent in the tree", start);
  const struct plan *pp = &parent->plan;
  uint64_t len = v->end - v->start;
  int u = plan_find_vma(pp, v->start, len);
  const struct crm_vma *pv = u >= 0 ? &pp->vmas[u] : NULL;
  if (!pv || !parent->pm.addr[u] || pv->kind != v->kind || pv->prot != v->prot || pv->vm_flags != v->vm_flags ||
      (v->kind == CRM_VMA_FILE_PRIVATE &&
       (strcmp(plan_str(pp, pv->path), plan_str(p, v->path)) || pv->pgoff + (v->start - pv->start) / PAGE_SIZE_BYTES != v->pgoff)))
    die("mapping at %llx inherits pages from task %d, which has no such mapping", start, pp->task->pid);
  void *src = (void *)(parent->pm.addr[u] + (v->start - pv->start));
  if (mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)at) == MAP_FAILED)
    die_errno("taking the mapping at %llx from task %d", start, pp->task->pid);
  uint64_t cur = v->start;
  for (uint32_t i = 0; i <= n; i++) {
    uint64_t next = i < n ? r[i].start : v->end;
    if (next > cur && madvise((void *)(at + (cur - v->start)), next - cur, MADV_DONTNEED) < 0)
      die_errno("dropping pages not inherited at %llx", (unsigned long long)cur);
    if (i < n) cur = r[i].start + r[i].len;
  }
}

void premap_memory(const struct plan *p, const struct tree *t, uint64_t bootstrap_len, struct premap *pm,
                   const struct task_memory *parent) {
  static struct own_range own[4096];
  uint32_t nown = own_mappings(own, 4096);
  uint32_t nv = p->hdr->vma_count;
  memset(pm, 0, sizeof *pm);
  for (uint32_t i = 0; i < nown; i++) {
    if (strncmp(own[i].name, "[vdso]", 6) && strncmp(own[i].name, "[vvar", 5)) continue;
    if (pm->nown_special == RST_MAX_SPECIAL) die("too many special mappings of our own");
    pm->own_special[pm->nown_special++] = own[i];
  }
  uint64_t total = 0;
  for (uint32_t i = 0; i < nv; i++)
    if (!is_special(p->vmas[i].kind)) total += p->vmas[i].end - p->vmas[i].start + PAGE_SIZE_BYTES;
  bootstrap_len = page_up(bootstrap_len);
  pm->region_len = total + bootstrap_len;
  pm->region_start = find_region(p, own, nown, pm->region_len);
  if (mmap((void *)pm->region_start, pm->region_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0) ==
      MAP_FAILED)
    die_errno("reserving %llu bytes for premapping", (unsigned long long)pm->region_len);
  pm->addr = calloc(nv + 1, sizeof *pm->addr);
  pm->moves = calloc(nv + 1, sizeof *pm->moves);
  if (!pm->addr || !pm->moves) die("out of memory");
  uint64_t cursor = pm->region_start;
  uint32_t ri = 0, nr = p->hdr->inherited_count; /* inherited ranges, sorted like the VMAs */
  for (uint32_t i = 0; i < nv; i++) {
    const struct crm_vma *v = &p->vmas[i];
    if (is_special(v->kind)) continue;
    uint32_t first = ri;
    while (ri < nr && p->inherited[ri].start < v->end) ri++;
    if (ri > first) map_inherited(p, v, cursor, parent, &p->inherited[first], ri - first);
    else map_one(p, t, v, cursor);
    pm->addr[i] = cursor;
    struct rst_move *m = &pm->moves[pm->nmoves++];
    m->from = cursor;
    m->to = v->start;
    m->len = v->end - v->start;
    m->prot = v->prot;
    /* the page after each VMA stays PROT_NONE so neighbours never merge */
    cursor += m->len + PAGE_SIZE_BYTES;
  }
  pm->boot_start = cursor;
  pm->boot_len = bootstrap_len;
  if (mmap((void *)pm->boot_start, pm->boot_len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
      MAP_FAILED)
    die_errno("mapping the restorer bootstrap");
}

/* The image file, mapped read-only, when the page stream points into it;
 * or the staging memfd the migration agent put pre-copied pages in, mapped
 * writable so that each page can be freed once placed (MADV_REMOVE). */
static const uint8_t *g_image;
static uint64_t g_image_size;
static int g_image_staged;

void image_file_map(int fd, int staged) {
  struct stat st;
  if (fstat(fd, &st) < 0) die_errno("the image file (descriptor %d)", fd);
  if (!S_ISREG(st.st_mode) || st.st_size <= 0) die("descriptor %d is not an image file", fd);
  void *m = mmap(NULL, (size_t)st.st_size, staged ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) die_errno("mapping the image file");
  close(fd);
  g_image = m;
  g_image_size = (uint64_t)st.st_size;
  g_image_staged = staged;
}

void image_file_done(const uint8_t *src, uint32_t len) {
  uint64_t start = (uint64_t)src & ~(PAGE_SIZE_BYTES - 1), end = page_up((uint64_t)src + len);
  /* staged chunks start on page boundaries and each page is used once */
  (void)madvise((void *)start, end - start, g_image_staged ? MADV_REMOVE : MADV_DONTNEED);
}

int next_chunk(int in_fd, struct crm_chunk *c, const uint8_t **src) {
  int r = read_full(in_fd, c, sizeof *c);
  if (r == 1) die("page stream ended before its end marker (image incomplete)");
  if (r < 0) die_errno("reading the page stream");
  if (c->kind == CRM_CHUNK_END) return 0;
  if (c->kind != CRM_CHUNK_PAGES && c->kind != CRM_CHUNK_FILE) die("page stream has an unknown chunk kind %u", c->kind);
  if (c->len == 0 || c->len > CRM_CHUNK_MAX || c->len % PAGE_SIZE_BYTES || c->addr % PAGE_SIZE_BYTES)
    die("page stream chunk at %llx has a bad length %u", (unsigned long long)c->addr, c->len);
  *src = NULL;
  if (c->kind == CRM_CHUNK_FILE) {
    uint64_t off;
    if (read_full(in_fd, &off, sizeof off)) die("page stream truncated inside the chunk at %llx", (unsigned long long)c->addr);
    if (!g_image) die("page stream points into an image file the restorer was not given");
    if (off > g_image_size || c->len > g_image_size - off)
      die("page stream chunk at %llx lies outside the image file", (unsigned long long)c->addr);
    *src = g_image + off;
  }
  return 1;
}

/* Writes into premapped memory that is not writable (see map_one), from
 * the stream (src NULL) or the image file. */
static void write_protected(int *mem_fd, uint64_t dst, int in_fd, const uint8_t *src, uint32_t len) {
  static uint8_t bounce[1 << 20];
  if (*mem_fd < 0 && (*mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC)) < 0) die_errno("open /proc/self/mem");
  for (uint32_t done = 0; done < len;) {
    uint32_t n = len - done;
    const uint8_t *from = src ? src + done : bounce;
    if (!src) {
      if (n > sizeof bounce) n = sizeof bounce;
      if (read_full(in_fd, bounce, n)) die("page stream truncated inside the chunk at premap %llx", (unsigned long long)dst);
    }
    if (pwrite(*mem_fd, from, n, (off_t)(dst + done)) != (ssize_t)n) die_errno("writing pages at premap %llx", (unsigned long long)(dst + done));
    done += n;
  }
}

void copy_in(uint8_t *dst, const uint8_t *src, int in_fd, uint32_t len) {
  /* Fault the pages in at once (one call instead of a fault per page
   * inside the copy); without it the copy faults them in anyway. */
  (void)madvise(dst, len, MADV_POPULATE_WRITE);
  if (src) memcpy(dst, src, len);
  else if (read_full(in_fd, dst, len)) die("page stream truncated inside a chunk (image incomplete)");
}

/* Private anonymous memory premapped writable gets its pages by
 * UFFDIO_COPY: each page is allocated with its data, instead of being zeroed
 * first and then copied over. A userfaultfd of our own is registered
 * (missing mode, user faults only) on those VMAs while they are filled;
 * closing it unregisters them. -1 if the kernel will not (the pages are
 * copied then). While registered, the kernel must not fault a missing page
 * of them in for us (it would fail: EFAULT), so stream data goes through a
 * bounce buffer (uffd_fill). */
static int uffd_fillable(const struct plan *p, const struct premap *pm, uint32_t i) {
  return pm->addr[i] && p->vmas[i].kind == CRM_VMA_ANON_PRIVATE && (p->vmas[i].vm_flags & CRM_VM_ACCOUNT);
}

static int uffd_for(const struct plan *p, const struct premap *pm) {
  int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
  if (u < 0) return -1;
  struct uffdio_api api = {.api = UFFD_API};
  if (ioctl(u, UFFDIO_API, &api) < 0) {
    close(u);
    return -1;
  }
  for (uint32_t i = 0; i < p->hdr->vma_count; i++) {
    const struct crm_vma *v = &p->vmas[i];
    if (!uffd_fillable(p, pm, i)) continue;
    struct uffdio_register r = {.range = {.start = pm->addr[i], .len = v->end - v->start}, .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (ioctl(u, UFFDIO_REGISTER, &r) < 0) {
      close(u);
      return -1;
    }
  }
  return u;
}

/* UFFDIO_COPY of [*done, len) of src to dst: 1 once all is placed, 0 when
 * it stops at a page (errno: EEXIST for a page already there), *done
 * saying how far it got. */
static int uffd_copy(int uffd, uint8_t *dst, const uint8_t *src, uint32_t len, uint32_t *done) {
  while (*done < len) {
    struct uffdio_copy c = {.dst = (uint64_t)(dst + *done), .src = (uint64_t)(src + *done), .len = len - *done};
    if (ioctl(uffd, UFFDIO_COPY, &c) == 0) {
      *done = len;
      return 1;
    }
    if (c.copy > 0) *done += (uint32_t)c.copy;
    else if (errno != EAGAIN) return 0;
  }
  return 1;
}

/* Places len bytes at dst (in a registered VMA) from src: UFFDIO_COPY for
 * missing pages; a page already there (one shared with the parent) is
 * written over by a plain copy, which faults only on a present page. */
static void uffd_place(int uffd, uint8_t *dst, const uint8_t *src, uint32_t len) {
  uint32_t done = 0;
  while (!uffd_copy(uffd, dst, src, len, &done)) {
    if (errno != EEXIST) die_errno("placing pages at premap %llx", (unsigned long long)(dst + done));
    memcpy(dst + done, src + done, PAGE_SIZE_BYTES);
    done += PAGE_SIZE_BYTES;
  }
}

/* Stream data for a registered VMA: read into a bounce buffer that stays
 * in the CPU caches, then placed. */
static void uffd_fill(int uffd, uint8_t *dst, int in_fd, uint32_t len) {
  static uint8_t bounce[1 << 20];
  for (uint32_t done = 0; done < len;) {
    uint32_t n = len - done < sizeof bounce ? len - done : (uint32_t)sizeof bounce;
    if (read_full(in_fd, bounce, n)) die("page stream truncated inside a chunk (image incomplete)");
    uffd_place(uffd, dst + done, bounce, n);
    done += n;
  }
}

/* Pages from the image (or staging) file for registered VMAs: placed once
 * the stream's chunk headers are all read, by this task and a helper at
 * once (the two cores each copy half). */
struct file_chunk {
  uint8_t *dst;
  const uint8_t *src;
  uint32_t len;
};
struct file_chunks {
  struct file_chunk *v;
  size_t n, cap;
  uint64_t bytes;
};

static void defer_chunk(struct file_chunks *fc, uint8_t *dst, const uint8_t *src, uint32_t len) {
  if (fc->n == fc->cap) {
    fc->cap = fc->cap ? 2 * fc->cap : 256;
    fc->v = realloc(fc->v, fc->cap * sizeof *fc->v);
    if (!fc->v) die("out of memory");
  }
  fc->v[fc->n++] = (struct file_chunk){dst, src, len};
  fc->bytes += len;
}

/* Below this, a helper costs more than it saves (a fork, about a ms). */
#define PARALLEL_PLACE_MIN (8ull << 20)

/* Chunk i goes to the helper when i is odd. The helper is a copy of this
 * process made with CLONE_UNTRACED (the tracer's TRACEFORK must not adopt
 * it): through our userfaultfd, which it inherits, its UFFDIO_COPYs fill
 * our memory, from the same shared mapping of the file. A page it finds
 * present (EEXIST) would have to be written in our memory, not its copy:
 * it flags the chunk and we place it after. It exits (and is reaped) before
 * the tree goes on, so its PID is free again for a task that wants it. */
static void place_file_chunks(int uffd, struct file_chunks *fc) {
  uint8_t *left = NULL;
  pid_t helper = -1;
  if (fc->bytes >= PARALLEL_PLACE_MIN && fc->n >= 2) {
    left = mmap(NULL, fc->n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (left == MAP_FAILED) left = NULL;
    else helper = (pid_t)syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0);
    if (helper == 0) {
      for (size_t i = 1; i < fc->n; i += 2) {
        const struct file_chunk *c = &fc->v[i];
        uint32_t done = 0;
        if (uffd_copy(uffd, c->dst, c->src, c->len, &done)) image_file_done(c->src, c->len);
        else left[i] = 1; /* the part it placed gives EEXIST to us: copied again, same bytes */
      }
      _exit(0);
    }
  }
  for (size_t i = 0; i < fc->n; i += helper > 0 ? 2 : 1) {
    uffd_place(uffd, fc->v[i].dst, fc->v[i].src, fc->v[i].len);
    image_file_done(fc->v[i].src, fc->v[i].len);
  }
  if (helper > 0) {
    int st = 0;
    while (waitpid(helper, &st, 0) < 0)
      if (errno != EINTR) die_errno("waiting for the page-placing helper");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("the page-placing helper failed (status %#x)", st);
    for (size_t i = 1; i < fc->n; i += 2)
      if (left[i]) {
        uffd_place(uffd, fc->v[i].dst, fc->v[i].src, fc->v[i].len);
        image_file_done(fc->v[i].src, fc->v[i].len);
      }
  }
  if (left) munmap(left, fc->n);
  free(fc->v);
}

void fill_pages(const struct plan *p, const struct premap *pm, int in_fd) {
  int mem_fd = -1;
  int uffd = uffd_for(p, pm);
  struct file_chunks deferred = {0};
  struct crm_chunk c;
  const uint8_t *src;
  while (next_chunk(in_fd, &c, &src)) {
    int i = plan_find_vma(p, c.addr, c.len);
    if (i < 0 || !pm->addr[i] || p->vmas[i].kind == CRM_VMA_FILE_SHARED || p->vmas[i].kind == CRM_VMA_ANON_SHARED)
      die("page stream chunk %llx+%u lies outside any private mapping", (unsigned long long)c.addr, c.len);
    uint8_t *dst = (uint8_t *)(pm->addr[i] + (c.addr - p->vmas[i].start));
    int by_uffd = uffd >= 0 && uffd_fillable(p, pm, (uint32_t)i);
    if (by_uffd && src) {
      defer_chunk(&deferred, dst, src, c.len);
      continue;
    }
    if (!(p->vmas[i].vm_flags & CRM_VM_ACCOUNT)) write_protected(&mem_fd, (uint64_t)dst, in_fd, src, c.len);
    else if (by_uffd) uffd_fill(uffd, dst, in_fd, c.len);
    else copy_in(dst, src, in_fd, c.len);
    if (src) image_file_done(src, c.len);
  }
  place_file_chunks(uffd, &deferred);
  if (uffd >= 0) close(uffd);
  if (mem_fd >= 0) close(mem_fd);
}
