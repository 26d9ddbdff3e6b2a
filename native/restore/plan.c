/* Reading the restore plan. Everything in it comes from an image that may be
 * corrupted or hostile, so each offset, count, string and value is checked
 * before use. */
#include <stdio.h>

#include "plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util.h"

#define FAIL(...)                            \
  do {                                       \
    snprintf(err, errlen, __VA_ARGS__);      \
    return -1;                               \
  } while (0)

static int section_ok(const struct plan *p, uint32_t off, uint64_t count, uint64_t elem) {
  uint64_t end = (uint64_t)off + count * elem;
  return off % 8 == 0 && off >= sizeof(struct crm_plan_header) && end <= p->size;
}

const char *plan_str(const struct plan *p, uint32_t off) {
  if (off >= p->hdr->strings_size) return NULL;
  return p->strings + off;
}

int plan_find_vma(const struct plan *p, uint64_t addr, uint64_t len) {
  uint32_t lo = 0, hi = p->hdr->vma_count;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    const struct crm_vma *v = &p->vmas[mid];
    if (addr >= v->end) lo = mid + 1;
    else if (addr < v->start) hi = mid;
    else return len <= v->end - addr ? (int)mid : -1;
  }
  return -1;
}

static int str_ok(const struct plan *p, uint32_t off) { return off < p->hdr->strings_size; }

int plan_parse(uint8_t *buf, size_t size, struct plan *p, char *err, size_t errlen) {
  memset(p, 0, sizeof *p);
  p->buf = buf;
  p->size = size;
  if (size < sizeof(struct crm_plan_header)) FAIL("restore plan truncated (%zu bytes)", size);
  const struct crm_plan_header *h = (const void *)buf;
  p->hdr = h;
  if (h->magic != CRM_PLAN_MAGIC) FAIL("restore plan has a bad magic number 0x%08x", h->magic);
  if (h->version != CRM_PLAN_VERSION) FAIL("restore plan version %u is not supported (want %u)", h->version, CRM_PLAN_VERSION);
  if (h->header_size != sizeof *h || h->total_size != size) FAIL("restore plan header sizes are inconsistent");
  if (h->task_size != sizeof(struct crm_task) || !section_ok(p, h->task_offset, 1, sizeof(struct crm_task)))
    FAIL("restore plan task section out of bounds");
  if (h->vma_count > CRM_MAX_VMAS || !section_ok(p, h->vma_offset, h->vma_count, sizeof(struct crm_vma)))
    FAIL("restore plan memory map section out of bounds");
  if (h->fd_count > CRM_MAX_FDS || !section_ok(p, h->fd_offset, h->fd_count, sizeof(struct crm_fd)))
    FAIL("restore plan file descriptor section out of bounds");
  if (h->siginfo_count > CRM_MAX_SIGINFO || !section_ok(p, h->siginfo_offset, h->siginfo_count, sizeof(struct crm_siginfo)))
    FAIL("restore plan pending signal section out of bounds");
  if (h->thread_count > CRM_MAX_THREADS || !section_ok(p, h->thread_offset, h->thread_count, sizeof(struct crm_thread)))
    FAIL("restore plan thread section out of bounds");
  if (h->inherited_count > CRM_MAX_INHERITED || !section_ok(p, h->inherited_offset, h->inherited_count, sizeof(struct crm_range)))
    FAIL("restore plan inherited page section out of bounds");
  if (h->xsave_size < 576 || h->xsave_size > CRM_MAX_XSAVE ||
      !section_ok(p, h->xsave_offset, (uint64_t)h->xsave_size * (1 + h->thread_count), 1))
    FAIL("restore plan FPU state section out of bounds (%u bytes)", h->xsave_size);
  if (h->strings_size == 0 || (uint64_t)h->strings_offset + h->strings_size > size)
    FAIL("restore plan string table out of bounds");
  /* sections must not overlap: they come in this order */
  uint64_t ends[8][2] = {
      {h->task_offset, (uint64_t)h->task_offset + h->task_size},
      {h->vma_offset, (uint64_t)h->vma_offset + (uint64_t)h->vma_count * sizeof(struct crm_vma)},
      {h->fd_offset, (uint64_t)h->fd_offset + (uint64_t)h->fd_count * sizeof(struct crm_fd)},
      {h->siginfo_offset, (uint64_t)h->siginfo_offset + (uint64_t)h->siginfo_count * sizeof(struct crm_siginfo)},
      {h->xsave_offset, (uint64_t)h->xsave_offset + (uint64_t)h->xsave_size * (1 + h->thread_count)},
      {h->strings_offset, (uint64_t)h->strings_offset + h->strings_size},
      {h->thread_offset, (uint64_t)h->thread_offset + (uint64_t)h->thread_count * sizeof(struct crm_thread)},
      {h->inherited_offset, (uint64_t)h->inherited_offset + (uint64_t)h->inherited_count * sizeof(struct crm_range)}};
  for (int i = 1; i < 8; i++)
    if (ends[i][0] < ends[i - 1][1]) FAIL("restore plan sections overlap or are out of order");
  p->task = (const void *)(buf + h->task_offset);
  p->vmas = (const void *)(buf + h->vma_offset);
  p->fds = (const void *)(buf + h->fd_offset);
  p->siginfos = (const void *)(buf + h->siginfo_offset);
  p->xsave = buf + h->xsave_offset;
  p->strings = (const char *)(buf + h->strings_offset);
  p->threads = (const void *)(buf + h->thread_offset);
  p->inherited = (const void *)(buf + h->inherited_offset);
  if (p->strings[h->strings_size - 1] != 0 || p->strings[0] != 0) FAIL("restore plan string table is not terminated");

  const struct crm_task *t = p->task;
  if (t->pid <= 0 || t->tid != t->pid) FAIL("restore plan has an invalid pid %d", t->pid);
  if (t->auxv_words > CRM_AUXV_WORDS || t->auxv_words % 2) FAIL("restore plan auxv size invalid");
  if (!str_ok(p, t->exe_path) || !str_ok(p, t->cwd_path) || !str_ok(p, t->root_path)) FAIL("restore plan task paths out of bounds");
  if (!memchr(t->comm, 0, sizeof t->comm)) FAIL("restore plan task name not terminated");
  if (t->rseq_len && (t->rseq_len < 32 || t->rseq_len > 4096 || t->rseq_abi % 32)) FAIL("restore plan rseq area invalid");
  if (t->robust_len != 0 && t->robust_len != 24) FAIL("restore plan robust list length %llu invalid", (unsigned long long)t->robust_len);
  if (t->creds.ngroups > CRM_MAX_GROUPS || t->creds.dumpable > 2 || t->creds.no_new_privs > 1) FAIL("restore plan credentials invalid");
  for (unsigned i = 0; i < 3; i++)
    if (t->itimers[i].interval_usec >= 1000000 || t->itimers[i].value_usec >= 1000000) FAIL("restore plan itimer %u invalid", i);
  if (t->start_code > t->end_code || t->start_data > t->end_data || t->start_brk > t->brk || t->arg_start > t->arg_end ||
      t->env_start > t->env_end || t->end_code > TASK_SIZE_LIMIT || t->end_data > TASK_SIZE_LIMIT || t->brk > TASK_SIZE_LIMIT ||
      t->start_stack > TASK_SIZE_LIMIT || t->arg_end > TASK_SIZE_LIMIT || t->env_end > TASK_SIZE_LIMIT)
    FAIL("restore plan task has an inconsistent memory layout");
  if (t->regs[17] != 0x33) FAIL("restore plan: only 64-bit tasks are supported (cs=0x%llx)", (unsigned long long)t->regs[17]);

  uint64_t prev_end = 0;
  for (uint32_t i = 0; i < h->vma_count; i++) {
    const struct crm_vma *v = &p->vmas[i];
    if (v->start % PAGE_SIZE_BYTES || v->end % PAGE_SIZE_BYTES || v->start >= v->end || v->end > TASK_SIZE_LIMIT)
      FAIL("restore plan mapping %u has a bad range", i);
    if (v->start < prev_end) FAIL("restore plan mappings overlap or are unsorted at %u", i);
    prev_end = v->end;
    if (v->kind < CRM_VMA_ANON_PRIVATE || v->kind > CRM_VMA_VVAR) FAIL("restore plan mapping %u has unknown kind %u", i, v->kind);
    if (v->prot & ~(unsigned)(PROT_READ | PROT_WRITE | PROT_EXEC)) FAIL("restore plan mapping %u has bad protection", i);
    if (!str_ok(p, v->path)) FAIL("restore plan mapping %u path out of bounds", i);
    if ((v->kind == CRM_VMA_FILE_PRIVATE || v->kind == CRM_VMA_FILE_SHARED) && p->strings[v->path] != '/')
      FAIL("restore plan mapping %u has no file path", i);
    if (v->pgoff > (1ULL << 40)) FAIL("restore plan mapping %u has a bad file offset", i);
    if (v->open_flags != 0 && v->open_flags != 2) FAIL("restore plan mapping %u has bad open flags", i);
    if ((v->kind == CRM_VMA_ANON_SHARED) != (v->object != 0)) FAIL("restore plan mapping %u has a bad shared memory object", i);
  }
  uint64_t prev = 0;
  for (uint32_t i = 0; i < h->inherited_count; i++) {
    const struct crm_range *r = &p->inherited[i];
    if (r->start % PAGE_SIZE_BYTES || r->len % PAGE_SIZE_BYTES || r->len == 0 || r->start < prev || r->len > TASK_SIZE_LIMIT)
      FAIL("restore plan inherited pages %u are misaligned or unsorted", i);
    prev = r->start + r->len;
    int v = plan_find_vma(p, r->start, r->len);
    if (v < 0 || (p->vmas[v].kind != CRM_VMA_ANON_PRIVATE && p->vmas[v].kind != CRM_VMA_FILE_PRIVATE))
      FAIL("restore plan inherited pages at %llx lie outside any one private mapping", (unsigned long long)r->start);
  }
  for (uint32_t i = 0; i < h->fd_count; i++) {
    const struct crm_fd *f = &p->fds[i];
    if (f->fd < 0 || f->fd >= (1 << 20)) FAIL("restore plan descriptor %u has bad number %d", i, f->fd);
    if (i && f->fd <= p->fds[i - 1].fd) FAIL("restore plan descriptors unsorted at %u", i);
    if (f->kind < CRM_FD_FILE || f->kind > CRM_FD_PATH) FAIL("restore plan descriptor %d has unknown kind %u", f->fd, f->kind);
    if (!str_ok(p, f->path) || p->strings[f->path] != '/') FAIL("restore plan descriptor %d has no path", f->fd);
    if (f->cloexec > 1) FAIL("restore plan descriptor %d has bad flags", f->fd);
  }
  for (uint32_t i = 0; i < h->thread_count; i++) {
    const struct crm_thread *th = &p->threads[i];
    if (th->tid <= 0 || th->tid == t->pid) FAIL("restore plan thread %u has an invalid tid %d", i, th->tid);
    for (uint32_t k = 0; k < i; k++)
      if (p->threads[k].tid == th->tid) FAIL("restore plan has thread %d twice", th->tid);
    if (th->regs[17] != 0x33) FAIL("restore plan thread %d is not 64-bit", th->tid);
    if (th->rseq_len && (th->rseq_len < 32 || th->rseq_len > 4096 || th->rseq_abi % 32)) FAIL("restore plan thread %d rseq invalid", th->tid);
    if (th->robust_len != 0 && th->robust_len != 24) FAIL("restore plan thread %d robust list length %llu invalid", th->tid, (unsigned long long)th->robust_len);
    if (!memchr(th->comm, 0, sizeof th->comm)) FAIL("restore plan thread %d name not terminated", th->tid);
  }
  for (uint32_t i = 0; i < h->siginfo_count; i++) {
    int32_t signo;
    memcpy(&signo, p->siginfos[i].raw, 4);
    if (signo < 1 || signo > 64 || p->siginfos[i].shared > 1) FAIL("restore plan pending signal %u invalid", i);
    const struct crm_siginfo *s = &p->siginfos[i];
    int known = s->shared || s->tid == t->pid;
    for (uint32_t k = 0; !known && k < h->thread_count; k++) known = p->threads[k].tid == s->tid;
    if (!known) FAIL("restore plan pending signal %u is for an unknown thread %d", i, s->tid);
  }
  return 0;
}

int plan_load(int fd, struct plan *p, char *err, size_t errlen) {
  struct crm_plan_header h;
  int r = read_full(fd, &h, sizeof h);
  if (r == 1) FAIL("no restore plan on standard input");
  if (r < 0) FAIL("reading the restore plan: %s", strerror(errno));
  if (h.magic != CRM_PLAN_MAGIC) FAIL("restore plan has a bad magic number 0x%08x", h.magic);
  if (h.total_size < sizeof h || h.total_size > CRM_PLAN_MAX_SIZE) FAIL("restore plan size %u out of range", h.total_size);
  uint8_t *buf = read_section(fd, &h, sizeof h, h.total_size);
  if (!buf) FAIL(errno == ENOMEM ? "out of memory for the restore plan" : "restore plan truncated");
  return plan_parse(buf, h.total_size, p, err, errlen);
}

void plan_print(const struct plan *p, FILE *out) {
  const struct crm_task *t = p->task;
  fprintf(out, "task pid=%d comm=%s flags=%u personality=%u umask=%o exe=%s cwd=%s root=%s\n", t->pid, t->comm, t->flags,
          t->personality, t->umask, plan_str(p, t->exe_path), plan_str(p, t->cwd_path), plan_str(p, t->root_path));
  fprintf(out, "mm code=%llx-%llx data=%llx-%llx brk=%llx/%llx stack=%llx arg=%llx-%llx env=%llx-%llx auxv=%u\n",
          (unsigned long long)t->start_code, (unsigned long long)t->end_code, (unsigned long long)t->start_data,
          (unsigned long long)t->end_data, (unsigned long long)t->start_brk, (unsigned long long)t->brk,
          (unsigned long long)t->start_stack, (unsigned long long)t->arg_start, (unsigned long long)t->arg_end,
          (unsigned long long)t->env_start, (unsigned long long)t->env_end, t->auxv_words);
  fprintf(out, "regs rip=%llx rsp=%llx rax=%llx fs_base=%llx blocked=%llx\n", (unsigned long long)t->regs[16],
          (unsigned long long)t->regs[19], (unsigned long long)t->regs[10], (unsigned long long)t->regs[21],
          (unsigned long long)t->blocked);
  for (unsigned s = 0; s < CRM_NSIG; s++)
    if (t->sigactions[s].handler)
      fprintf(out, "sigaction %u handler=%llx flags=%llx mask=%llx\n", s + 1, (unsigned long long)t->sigactions[s].handler,
              (unsigned long long)t->sigactions[s].flags, (unsigned long long)t->sigactions[s].mask);
  fprintf(out, "altstack sp=%llx size=%llu flags=%u\n", (unsigned long long)t->altstack_sp,
          (unsigned long long)t->altstack_size, t->altstack_flags);
  for (unsigned i = 0; i < 3; i++)
    fprintf(out, "itimer %u interval=%llu.%06llu value=%llu.%06llu\n", i, (unsigned long long)t->itimers[i].interval_sec,
            (unsigned long long)t->itimers[i].interval_usec, (unsigned long long)t->itimers[i].value_sec,
            (unsigned long long)t->itimers[i].value_usec);
  fprintf(out, "rseq abi=%llx len=%u sig=%x\n", (unsigned long long)t->rseq_abi, t->rseq_len, t->rseq_sig);
  for (uint32_t i = 0; i < p->hdr->vma_count; i++) {
    const struct crm_vma *v = &p->vmas[i];
    fprintf(out, "vma %llx-%llx kind=%u prot=%u vm_flags=%u pgoff=%llu open_flags=%u object=%u path=%s\n",
            (unsigned long long)v->start, (unsigned long long)v->end, v->kind, v->prot, v->vm_flags,
            (unsigned long long)v->pgoff, v->open_flags, v->object, plan_str(p, v->path));
  }
  for (uint32_t i = 0; i < p->hdr->fd_count; i++) {
    const struct crm_fd *f = &p->fds[i];
    fprintf(out, "fd %d kind=%u flags=%o cloexec=%u pos=%llu share=%u path=%s\n", f->fd, f->kind, f->flags, f->cloexec,
            (unsigned long long)f->pos, f->share_id, plan_str(p, f->path));
  }
  for (uint32_t i = 0; i < p->hdr->siginfo_count; i++) {
    int32_t signo;
    memcpy(&signo, p->siginfos[i].raw, 4);
    fprintf(out, "siginfo shared=%u tid=%d signo=%d\n", p->siginfos[i].shared, p->siginfos[i].tid, signo);
  }
  for (uint32_t i = 0; i < p->hdr->thread_count; i++) {
    const struct crm_thread *th = &p->threads[i];
    fprintf(out, "thread %d rip=%llx rsp=%llx fs_base=%llx blocked=%llx altstack=%llx/%llu rseq=%llx/%u robust=%llx/%llu ctid=%llx\n", th->tid,
            (unsigned long long)th->regs[16], (unsigned long long)th->regs[19], (unsigned long long)th->regs[21],
            (unsigned long long)th->blocked, (unsigned long long)th->altstack_sp, (unsigned long long)th->altstack_size,
            (unsigned long long)th->rseq_abi, th->rseq_len, (unsigned long long)th->robust_list,
            (unsigned long long)th->robust_len, (unsigned long long)th->clear_child_tid);
  }
  const struct crm_creds *c = &p->task->creds;
  fprintf(out, "creds uid=%u/%u/%u/%u gid=%u/%u/%u/%u caps=%llx/%llx/%llx/%llx/%llx securebits=%x nnp=%u dumpable=%u groups=%u\n",
          c->uid[0], c->uid[1], c->uid[2], c->uid[3], c->gid[0], c->gid[1], c->gid[2], c->gid[3], (unsigned long long)c->cap_inh,
          (unsigned long long)c->cap_prm, (unsigned long long)c->cap_eff, (unsigned long long)c->cap_bnd, (unsigned long long)c->cap_amb,
          c->securebits, c->no_new_privs, c->dumpable, c->ngroups);
  fprintf(out, "robust=%llx/%llu ctid=%llx\n", (unsigned long long)p->task->robust_list, (unsigned long long)p->task->robust_len,
          (unsigned long long)p->task->clear_child_tid);
  for (uint32_t i = 0; i < p->hdr->inherited_count; i++)
    fprintf(out, "inherited %llx+%llx\n", (unsigned long long)p->inherited[i].start, (unsigned long long)p->inherited[i].len);
  fprintf(out, "xsave %u bytes x %u\n", p->hdr->xsave_size, 1 + p->hdr->thread_count);
}
