/*
 * crmigrate-restore: rebuilds one task from a restore plan and a page stream
 * read on standard input (see include/crm_plan.h), then holds it stopped
 * until crmigrate says go.
 *
 * Two halves: the parent stays crmigrate-restore; the child is created with
 * clone3(set_tid) so it has the task's original PID, turns itself into the
 * task (files, memory, signals) and ends in the restorer blob's rt_sigreturn.
 * The parent traces the child: it catches it after rt_sigreturn, reports
 * READY, and on 'G' unmaps the bootstrap region and detaches; on anything
 * else (or if it dies itself: PTRACE_O_EXITKILL) the child is killed, so a
 * half-restored task never runs.
 *
 * stdout carries status lines for crmigrate: "READY <pid>", "RUNNING <pid>".
 * Errors are one line on stderr, exit status 1 (2 for a taken PID).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "memory.h"
#include "plan.h"
#include "restorer.h"
#include "sigframe.h"
#include "tree.h"
#include "util.h"

extern const uint8_t restorer_blob_start[], restorer_blob_end[];

#define EXIT_DISCARDED 3
#define BOOT_STACK_SIZE (64 * 1024)

static int max_target_fd(const struct plan *p) {
  int m = 2;
  for (uint32_t i = 0; i < p->hdr->fd_count; i++)
    if (p->fds[i].fd > m) m = p->fds[i].fd;
  return m;
}

/* Bootstrap layout: [blob code | args | moves | siginfos | threads |
 * sigframe+fpu per thread | scratch for our [vvar]/[vdso] | thread stacks |
 * main stack]. */
struct boot_layout {
  uint64_t code, args, moves, siginfos, threads, frames, frame_size, scratch, thread_stacks, stack_top, len;
};
#define THREAD_STACK_SIZE 16384

static struct boot_layout layout_boot(const struct plan *p, uint64_t scratch_len) {
  struct boot_layout l;
  uint64_t o = 0;
  l.code = o;
  o = page_up(o + (uint64_t)(restorer_blob_end - restorer_blob_start) + 16);
  l.args = o;
  o = page_up(o + sizeof(struct restorer_args) + CRM_AUXV_WORDS * 8);
  l.moves = o;
  o = page_up(o + (p->hdr->vma_count + 1) * sizeof(struct rst_move));
  l.siginfos = o;
  o = page_up(o + (p->hdr->siginfo_count + 1) * sizeof(struct crm_siginfo));
  l.threads = o;
  o = page_up(o + (p->hdr->thread_count + 1) * sizeof(struct rst_thread));
  l.frames = o;
  l.frame_size = (sigframe_size(p) + 63) & ~63ULL;
  o = page_up(o + l.frame_size * (1 + p->hdr->thread_count));
  l.scratch = o;
  o = page_up(o + scratch_len);
  l.thread_stacks = o;
  o += (uint64_t)THREAD_STACK_SIZE * p->hdr->thread_count;
  o += BOOT_STACK_SIZE;
  l.stack_top = o - 64;
  l.len = o;
  return l;
}

/* This task's layout, made by load_memory (each task loads once, in its own process). */
static struct boot_layout g_boot;

static int cmp_keep(const void *a, const void *b) {
  const uint64_t *x = a, *y = b;
  return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Matches our [vvar]/[vvar_vclock]/[vdso] with the target's, in address
 * order; the layout of one kernel is the same in every process. */
static void plan_specials(const struct plan *p, const struct premap *pm, struct restorer_args *a, uint64_t scratch) {
  const struct crm_vma *tgt[RST_MAX_SPECIAL];
  uint32_t nt = 0;
  for (uint32_t i = 0; i < p->hdr->vma_count; i++)
    if (p->vmas[i].kind == CRM_VMA_VDSO || p->vmas[i].kind == CRM_VMA_VVAR) {
      if (nt == RST_MAX_SPECIAL) die("image has too many [vdso]/[vvar] mappings");
      tgt[nt++] = &p->vmas[i];
    }
  if (nt == 0) return; /* the target had unmapped its vdso: ours goes away */
  if (2 * nt > RST_MAX_SPECIAL_MOVES) die("too many special mappings");
  if (nt != pm->nown_special) die("the image's vdso layout (%u mappings) differs from this kernel's (%u)", nt, pm->nown_special);
  /* Two moves per mapping: first all into scratch, then into place, so a
   * target address that overlaps one of ours never clobbers it. */
  uint64_t off = 0;
  for (uint32_t i = 0; i < nt; i++) {
    const struct own_range *o = &pm->own_special[i];
    uint64_t len = o->end - o->start;
    if (len != tgt[i]->end - tgt[i]->start) die("the image's vdso layout differs from this kernel's (sizes)");
    int is_vdso = strncmp(o->name, "[vdso]", 6) == 0;
    if (is_vdso != (tgt[i]->kind == CRM_VMA_VDSO)) die("the image's vdso layout differs from this kernel's (order)");
    a->special[i] = (struct rst_move){.from = o->start, .to = scratch + off, .len = len};
    a->special[nt + i] = (struct rst_move){.from = scratch + off, .to = tgt[i]->start, .len = len};
    off += len;
  }
  a->nspecial = 2 * nt;
}

/* Closes every descriptor except the rising, distinct ones in keep[]. */
static void close_all_but(const int *keep, int n) {
  unsigned lo = 0;
  for (int i = 0; i < n; i++) {
    if ((unsigned)keep[i] > lo) syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
    lo = (unsigned)keep[i] + 1;
  }
  syscall(SYS_close_range, lo, ~0U, 0);
}

/* Set in main before the root is made, inherited by every task. */
static struct tree *g_tree;
static struct tree_ctl *g_ctl;
static int g_in_fd = -1, g_task_err_fd = -1; /* stdin and stderr, above every task's descriptors */
/* The memory of the task this process is; in a child until it loads its
 * own, its parent's (fork copied the pointer with the memory). */
static struct task_memory *g_mem;

static uint64_t own_special_len(void) {
  static struct own_range own[4096];
  uint64_t len = 0;
  uint32_t n = own_mappings(own, 4096);
  for (uint32_t i = 0; i < n; i++)
    if (!strncmp(own[i].name, "[vdso]", 6) || !strncmp(own[i].name, "[vvar", 5)) len += own[i].end - own[i].start;
  return len;
}

/* tree_build's load step, in the task whose turn it is: reads its plan and
 * pages from stdin into premapped memory, then hands stdin on. */
static void load_memory(uint32_t idx) {
  struct tree *tr = g_tree;
  const struct task_memory *parent = g_mem;
  struct task_memory *m = calloc(1, sizeof *m);
  if (!m) die("out of memory");
  char err[256];
  struct plan *p = &m->plan;
  if (plan_load(g_in_fd, p, err, sizeof err)) die("%s", err);
  const struct crm_task *t = p->task;
  const struct crm_tree_task *k = &tr->tasks[idx];
  if (t->pid != k->pid || p->hdr->thread_count + 1 != k->nthreads)
    die("restore plan for task %d does not match the tree (task %d with %u threads)", t->pid, k->pid, k->nthreads);
  if (max_target_fd(p) > tr->hdr->max_fd) die("restore plan of task %d has descriptors above the tree's range", t->pid);
  g_boot = layout_boot(p, own_special_len());
  premap_memory(p, tr, g_boot.len, &m->pm, parent);
  fill_pages(p, &m->pm, g_in_fd);
  g_ctl->region[idx].start = m->pm.region_start;
  g_ctl->region[idx].len = m->pm.region_len;
  g_mem = m;
  tree_pass_turn(g_ctl); /* stdin is the next task's now */
}

/* A task of the tree, once the tree is built and its memory loaded:
 * becomes the task and jumps into the restorer blob. Never returns. */
static __attribute__((noreturn)) void become_task(struct tree *tr) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  const struct plan *p = &g_mem->plan;
  const struct crm_task *t = p->task;
  const struct premap *pmp = &g_mem->pm;

  /* Our control descriptors sit above every target and shared descriptor. */
  int base = tr->fd_base;
  int in_fd = g_in_fd, err_fd = g_task_err_fd;
  g_err_fd = err_fd;
  uint32_t nobj = tr->hdr->object_count;
  int *keep = calloc(nobj + 2, sizeof *keep);
  if (!keep) die("out of memory");
  /* in rising order: the object fds (made rising, below fd_base), then ours */
  int nkeep = 0;
  for (uint32_t i = 0; i < nobj; i++)
    if (tr->object_fd[i] >= 0) keep[nkeep++] = tr->object_fd[i];
  keep[nkeep++] = in_fd;
  keep[nkeep++] = err_fd;
  close_all_but(keep, nkeep);
  free(keep);

  umask(t->umask);
  if (personality(t->personality) < 0) die_errno("personality(0x%x)", t->personality);
  prctl(PR_SET_NAME, t->comm, 0, 0, 0);

  restore_fds(p, tr);
  for (uint32_t i = 0; i < nobj; i++)
    if (tr->object_fd[i] >= 0) close(tr->object_fd[i]);
  const char *exe = plan_str(p, t->exe_path);
  int exe_fd = exe[0] ? open(exe, O_RDONLY | O_CLOEXEC) : -1;
  if (exe[0] && exe_fd < 0) die_errno("cannot open the executable %s", exe);
  int exe_hi = exe_fd >= 0 ? fcntl(exe_fd, F_DUPFD_CLOEXEC, base) : -1;
  if (exe_fd >= 0) close(exe_fd);

  const struct boot_layout bl = g_boot;
  const struct premap pm = *pmp;
  uint8_t *boot = (uint8_t *)pm.boot_start;
  memcpy(boot + bl.code, restorer_blob_start, (size_t)(restorer_blob_end - restorer_blob_start));
  struct restorer_args *a = (void *)(boot + bl.args);
  memset(a, 0, sizeof *a);
  a->keep[a->nkeep][0] = pm.region_start;
  a->keep[a->nkeep++][1] = pm.region_start + pm.region_len;
  for (uint32_t i = 0; i < pm.nown_special; i++) {
    a->keep[a->nkeep][0] = pm.own_special[i].start;
    a->keep[a->nkeep++][1] = pm.own_special[i].end;
  }
  qsort(a->keep, a->nkeep, sizeof a->keep[0], cmp_keep);
  plan_specials(p, &pm, a, pm.boot_start + bl.scratch);

  if (__rseq_size > 0) {
    a->own_rseq = (uint64_t)((char *)__builtin_thread_pointer() + __rseq_offset);
    a->own_rseq_len = __rseq_size < 32 ? 32 : __rseq_size;
    a->own_rseq_sig = RSEQ_SIG;
  }
  memcpy(boot + bl.moves, pm.moves, pm.nmoves * sizeof(struct rst_move));
  a->moves = pm.boot_start + bl.moves;
  a->nmoves = pm.nmoves;

  a->mm = (struct rst_prctl_mm_map){
      .start_code = t->start_code, .end_code = t->end_code, .start_data = t->start_data, .end_data = t->end_data,
      .start_brk = t->start_brk, .brk = t->brk, .start_stack = t->start_stack, .arg_start = t->arg_start,
      .arg_end = t->arg_end, .env_start = t->env_start, .env_end = t->env_end,
      .exe_fd = (uint32_t)exe_hi};
  /* auxv sits right after the arguments, in the same pages */
  uint64_t *auxv = (uint64_t *)(boot + bl.args + sizeof(struct restorer_args));
  if (bl.moves - bl.args < sizeof(struct restorer_args) + t->auxv_words * 8) die("bootstrap layout too small for auxv");
  memcpy(auxv, t->auxv, t->auxv_words * 8);
  a->mm.auxv = (uint64_t)auxv;
  a->mm.auxv_size = t->auxv_words * 8;
  a->exe_fd = exe_hi;
  a->err_fd = err_fd;
  memcpy(a->sigactions, t->sigactions, sizeof a->sigactions);
  memcpy(boot + bl.siginfos, p->siginfos, p->hdr->siginfo_count * sizeof(struct crm_siginfo));
  a->siginfos = pm.boot_start + bl.siginfos;
  a->nsiginfo = p->hdr->siginfo_count;
  a->pid = t->pid;
  memcpy(a->itimers, t->itimers, sizeof a->itimers);
  a->creds = t->creds;
  struct rst_thread *mt = &a->main_thread;
  mt->tid = t->tid;
  if (t->flags & CRM_TASK_RSEQ) {
    mt->rseq_abi = t->rseq_abi;
    mt->rseq_len = t->rseq_len;
    mt->rseq_sig = t->rseq_sig;
  }
  mt->fs_base = t->regs[21];
  mt->gs_base = t->regs[22];
  mt->robust_list = t->robust_list;
  mt->robust_len = t->robust_len;
  mt->clear_child_tid = t->clear_child_tid;
  struct rst_thread *rth = (void *)(boot + bl.threads);
  for (uint32_t i = 0; i < p->hdr->thread_count; i++) {
    const struct crm_thread *th = &p->threads[i];
    struct frame_state fs = {th->regs, p->xsave + (uint64_t)(i + 1) * p->hdr->xsave_size, p->hdr->xsave_size, th->blocked,
                             th->altstack_sp, th->altstack_size, th->altstack_flags};
    rth[i] = (struct rst_thread){
        .stack_top = pm.boot_start + bl.thread_stacks + (uint64_t)THREAD_STACK_SIZE * (i + 1),
        .sigframe_sp = build_sigframe(&fs, pm.boot_start + bl.frames + bl.frame_size * (i + 1)),
        .fs_base = th->regs[21], .gs_base = th->regs[22], .rseq_abi = th->rseq_abi, .rseq_len = th->rseq_len,
        .rseq_sig = th->rseq_sig, .robust_list = th->robust_list, .robust_len = th->robust_len,
        .clear_child_tid = th->clear_child_tid, .tid = th->tid};
    memcpy(rth[i].comm, th->comm, sizeof rth[i].comm);
  }
  a->threads = pm.boot_start + bl.threads;
  a->nthreads = p->hdr->thread_count;
  a->close_fds[a->nclose++] = (uint64_t)in_fd;
  a->close_fds[a->nclose++] = (uint64_t)err_fd;
  struct frame_state main_fs = {t->regs, p->xsave, p->hdr->xsave_size, t->blocked, t->altstack_sp, t->altstack_size, t->altstack_flags};
  mt->sigframe_sp = build_sigframe(&main_fs, pm.boot_start + bl.frames);

  restore_fs_context(p);

  uint64_t entry = pm.boot_start + bl.code;
  __asm__ volatile("mov %0, %%rsp\n\t"
                   "mov %1, %%rdi\n\t"
                   "jmp *%2\n\t"
                   :
                   : "r"(pm.boot_start + bl.stack_top), "r"(a), "r"(entry)
                   : "memory");
  __builtin_unreachable();
}

/* ---- the parent half: the tracer of every task ---- */

/* Per-thread progress of the tracer towards the end of the restore. */
struct traced {
  pid_t tid;
  int phase; /* 0 running, 1 stopped by the blob, 2 entered rt_sigreturn, 3 left it; -1 exited (zombie, helper) */
  uint64_t insn;
  uint64_t blocked;
  struct user_regs_struct regs;
};

static struct traced *g_traced;
static uint32_t g_ntraced, g_cap;
static pid_t g_root;

/* A fatal error once tasks exist: report it, then discard the tree. */
#define abandon(...) discard((report(__VA_ARGS__), 1))

/* Kills every task we know of (the rest die with us: PTRACE_O_EXITKILL)
 * and reaps what we can for a moment, so their PIDs are free again. */
static __attribute__((noreturn)) void discard(int code) {
  if (g_root > 0) kill(g_root, SIGKILL);
  for (uint32_t i = 0; i < g_ntraced; i++)
    if (g_traced[i].phase >= 0) kill(g_traced[i].tid, SIGKILL);
  for (int spins = 0; spins < 1000; spins++) {
    pid_t r = waitpid(-1, NULL, __WALL | WNOHANG);
    if (r < 0 && errno == ECHILD) break;
    if (r <= 0) usleep(1000);
  }
  _exit(code);
}

static int wait_tid(pid_t tid, int *st) {
  for (;;) {
    pid_t r = waitpid(tid, st, __WALL);
    if (r == tid) return 0;
    if (r < 0 && errno == EINTR) continue;
    return -1;
  }
}

/* Runs one syscall in the stopped thread through the `syscall` instruction
 * at insn; the registers are restored by the caller. */
static long inject(pid_t tid, const struct user_regs_struct *base, uint64_t insn, long nr, long a1, long a2) {
  struct user_regs_struct r = *base;
  r.rip = insn;
  r.rax = (unsigned long long)nr;
  r.orig_rax = (unsigned long long)-1;
  r.rdi = (unsigned long long)a1;
  r.rsi = (unsigned long long)a2;
  if (ptrace(PTRACE_SETREGS, tid, 0, &r)) abandon("ptrace(SETREGS) of %d: %s", tid, strerror(errno));
  for (int i = 0; i < 2; i++) {
    int st;
    if (ptrace(PTRACE_SYSCALL, tid, 0, 0)) abandon("ptrace(SYSCALL) of %d: %s", tid, strerror(errno));
    if (wait_tid(tid, &st)) abandon("waitpid(%d): %s", tid, strerror(errno));
    if (!WIFSTOPPED(st)) abandon("restored task %d ended while it was being finished", tid);
    if (WSTOPSIG(st) != (SIGTRAP | 0x80)) abandon("unexpected stop 0x%x while finishing the restore", st);
  }
  if (ptrace(PTRACE_GETREGS, tid, 0, &r)) abandon("ptrace(GETREGS) of %d: %s", tid, strerror(errno));
  return (long)r.rax;
}

static struct traced *find_traced(pid_t tid) {
  for (uint32_t i = 0; i < g_ntraced; i++)
    if (g_traced[i].tid == tid) return &g_traced[i];
  return NULL;
}

/* An exit the tree plans: a zombie with its status, or a helper. */
static int expected_exit(const struct tree *tr, pid_t tid, int st) {
  int i = tree_find(tr, tid);
  if (i < 0) return 0;
  const struct crm_tree_task *k = &tr->tasks[i];
  if (k->flags & CRM_TREE_HELPER) return WIFEXITED(st) && WEXITSTATUS(st) == 0;
  if (!(k->flags & CRM_TREE_ZOMBIE)) return 0;
  if (k->exit_signal) return WIFSIGNALED(st) && WTERMSIG(st) == k->exit_signal;
  return WIFEXITED(st) && WEXITSTATUS(st) == k->exit_code;
}

static void report_exit(pid_t tid, int st) {
  if (WIFEXITED(st) && WEXITSTATUS(st) >= 70) report("restorer blob of %d failed (step %d)", tid, WEXITSTATUS(st) - 70);
  else if (WIFSIGNALED(st)) report("restored task %d was killed by signal %d before it was complete", tid, WTERMSIG(st));
  else report("restored task %d ended before the tree was complete", tid);
}

/* Follows every thread of every live task to the exit of its final
 * rt_sigreturn (the registers read there are the task's own), lets zombies
 * and helpers exit, and lets every other stop through. `insn` (per thread)
 * is the `syscall` instruction in the bootstrap region that raised the
 * blob's SIGSTOP. New tasks and threads are traced automatically
 * (PTRACE_O_TRACEFORK, PTRACE_O_TRACECLONE). */
static void trace_tree(const struct tree *tr, struct tree_ctl *ctl, uint32_t nthreads) {
  uint32_t done = 0;
  while (done < nthreads || __atomic_load_n(&ctl->reaped, __ATOMIC_SEQ_CST) < tr->nexiting) {
    int st;
    pid_t tid = waitpid(-1, &st, __WALL);
    if (tid < 0) {
      if (errno == EINTR) continue;
      abandon("waitpid: %s", strerror(errno));
    }
    if (!WIFSTOPPED(st)) {
      if (expected_exit(tr, tid, st)) {
        struct traced *gone = find_traced(tid);
        if (gone) gone->phase = -1;
        ctl_add(&ctl->reaped);
        continue;
      }
      report_exit(tid, st);
      discard(1);
    }
    struct traced *t = find_traced(tid);
    if (!t) {
      if (g_ntraced == g_cap) abandon("restored tree made more tasks or threads than it had");
      t = &g_traced[g_ntraced++];
      memset(t, 0, sizeof *t);
      t->tid = tid;
    }
    int sig = WSTOPSIG(st), event = st >> 16;
    long resume = t->phase ? PTRACE_SYSCALL : PTRACE_CONT, deliver = 0;
    if (sig == (SIGTRAP | 0x80)) {
      if (t->phase == 2) {
        t->phase = 3;
        if (ptrace(PTRACE_GETREGS, tid, 0, &t->regs)) abandon("ptrace(GETREGS) of %d: %s", tid, strerror(errno));
        done++;
        continue; /* held here until the commit */
      }
      if (t->phase == 1) t->phase = 2;
    } else if (sig == SIGSTOP && event == 0 && t->phase == 0) {
      struct user_regs_struct r;
      if (ptrace(PTRACE_GETREGS, tid, 0, &r)) abandon("ptrace(GETREGS) of %d: %s", tid, strerror(errno));
      t->insn = r.rip - 2;
      errno = 0;
      long word = ptrace(PTRACE_PEEKTEXT, tid, (void *)t->insn, 0);
      if (errno || (word & 0xffff) != 0x050f) abandon("restorer of %d stopped at an unexpected place", tid);
      t->phase = 1;
      resume = PTRACE_SYSCALL; /* suppress SIGSTOP, stop at rt_sigreturn */
    } else if (event == 0) {
      deliver = sig; /* a signal for the task (SIGCHLD of a zombie): let it through */
    }
    if (ptrace((enum __ptrace_request)resume, tid, 0, (void *)deliver)) abandon("ptrace(resume %d): %s", tid, strerror(errno));
  }
}

/* Unmaps one task's premap+bootstrap region from inside it, through the
 * blob's own syscall instruction (execution never comes back to it). */
static void unmap_region(pid_t pid, const struct tree_ctl *ctl, uint32_t idx) {
  struct traced *t = find_traced(pid);
  if (!t || t->phase != 3) abandon("task %d has no stopped main thread", pid);
  long ur = inject(pid, &t->regs, t->insn, SYS_munmap, (long)ctl->region[idx].start, (long)ctl->region[idx].len);
  if (ur < 0) abandon("unmapping the bootstrap region of %d: %s", pid, strerror((int)-ur));
  if (ptrace(PTRACE_SETREGS, pid, 0, &t->regs)) abandon("ptrace(SETREGS) of %d", pid);
}

static void usage(void) {
  fprintf(stderr, "usage: crmigrate-restore [--commit-file FILE] [--image-fd FD | --staged-fd FD]\n"
                  "                         (tree, plans and pages on stdin; FD: the image file that\n"
                  "                         CRM_CHUNK_FILE chunks point into, or a memfd of staged pages,\n"
                  "                         each freed once placed)\n"
                  "       crmigrate-restore --print-plan           (decode a plan on stdin)\n"
                  "       crmigrate-restore --print-tree           (decode a tree section on stdin)\n");
  exit(64);
}

/* The migration agent's journal: if crmigrate went away after READY, the
 * tree runs only if the journal says the migration was committed. */
static int journal_says_committed(const char *path) {
  if (!path) return 0;
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return strstr(buf, "\"state\":\"committed\"") != NULL || strstr(buf, "\"state\":\"running\"") != NULL;
}

int main(int argc, char **argv) {
  char err[256];
  const char *commit_file = NULL;
  int print_plan = 0, print_tree = 0, image_fd = -1, staged = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--print-plan")) print_plan = 1;
    else if (!strcmp(argv[i], "--print-tree")) print_tree = 1;
    else if (!strcmp(argv[i], "--commit-file") && i + 1 < argc) commit_file = argv[++i];
    else if (!strcmp(argv[i], "--image-fd") && i + 1 < argc) image_fd = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--staged-fd") && i + 1 < argc) image_fd = atoi(argv[++i]), staged = 1;
    else usage();
  }
  if (print_plan) {
    struct plan p;
    if (plan_load(0, &p, err, sizeof err)) die("%s", err);
    plan_print(&p, stdout);
    return 0;
  }
  if (image_fd >= 0) image_file_map(image_fd, staged);
  struct tree tr;
  if (tree_load(0, &tr, err, sizeof err)) die("%s", err);
  if (print_tree) {
    tree_print(&tr, stdout);
    return 0;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  /* Every PID before anything is made (System V ids, pages read from the
   * stream); clone3 checks each again when it takes it. */
  for (uint32_t i = 0; i < tr.hdr->task_count; i++) {
    char proc[64];
    struct stat st;
    snprintf(proc, sizeof proc, "/proc/%d", tr.tasks[i].pid);
    if (stat(proc, &st) == 0) {
      report("PID %d is already in use on this host", tr.tasks[i].pid);
      return EXIT_PID_TAKEN;
    }
  }
  tr.fd_base = tree_fd_base(&tr);
  struct tree_ctl *ctl = mmap(NULL, sizeof *ctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (ctl == MAP_FAILED) die_errno("mapping the tree control page");
  g_tree = &tr;
  g_ctl = ctl;
  g_in_fd = fcntl(0, F_DUPFD_CLOEXEC, tr.fd_base);
  g_task_err_fd = g_in_fd < 0 ? -1 : fcntl(2, F_DUPFD_CLOEXEC, g_in_fd + 1);
  if (g_in_fd < 0 || g_task_err_fd < 0) die_errno("moving control descriptors above %d", tr.fd_base);

  uint32_t nthreads = 0;
  for (uint32_t i = 0; i < tr.hdr->task_count; i++) nthreads += tr.tasks[i].nthreads;
  g_cap = nthreads + tr.nexiting;
  g_traced = calloc(g_cap + 1, sizeof *g_traced);
  if (!g_traced) die("out of memory");

  int sync[2];
  if (pipe2(sync, O_CLOEXEC)) die_errno("pipe");
  long r = fork_with_pid(tr.tasks[0].pid);
  if (r == 0) {
    char c;
    close(sync[1]);
    if (read(sync[0], &c, 1) != 1) die("parent went away before tracing us");
    close(sync[0]);
    make_objects(&tr, g_in_fd);
    tree_build(&tr, ctl, load_memory);
    become_task(&tr);
  }
  g_root = (pid_t)r;
  close(sync[0]);
  long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK;
  if (ptrace(PTRACE_SEIZE, g_root, 0, (void *)opts)) abandon("ptrace(SEIZE) of the new root: %s", strerror(errno));
  if (write(sync[1], "s", 1) != 1) abandon("cannot wake the new root");
  close(sync[1]);

  trace_tree(&tr, ctl, nthreads);
  printf("READY %d\n", g_root);
  char cmd = 0;
  if (read_full(0, &cmd, 1) != 0) cmd = journal_says_committed(commit_file) ? 'G' : 0;
  if (cmd != 'G') {
    printf("DISCARDED %d\n", g_root);
    discard(EXIT_DISCARDED);
  }

  /* Every signal blocked in every thread while the regions go, so nothing
   * is delivered meanwhile; then each thread's own mask back. */
  uint64_t all = ~0ULL;
  for (uint32_t i = 0; i < g_ntraced; i++) {
    struct traced *t = &g_traced[i];
    if (t->phase != 3) continue;
    if (ptrace(PTRACE_GETSIGMASK, t->tid, (void *)8, &t->blocked) || ptrace(PTRACE_SETSIGMASK, t->tid, (void *)8, &all))
      abandon("ptrace(SETSIGMASK) of thread %d: %s", t->tid, strerror(errno));
  }
  for (uint32_t i = 0; i < tr.hdr->task_count; i++)
    if (tree_is_live(&tr, i)) unmap_region(tr.tasks[i].pid, ctl, i);
  for (uint32_t i = 0; i < g_ntraced; i++)
    if (g_traced[i].phase == 3 && ptrace(PTRACE_SETSIGMASK, g_traced[i].tid, (void *)8, &g_traced[i].blocked)) abandon("ptrace(SETSIGMASK)");
  for (uint32_t i = 0; i < g_ntraced; i++)
    if (g_traced[i].phase == 3 && ptrace(PTRACE_DETACH, g_traced[i].tid, 0, 0)) abandon("ptrace(DETACH) of %d: %s", g_traced[i].tid, strerror(errno));
  printf("RUNNING %d\n", g_root);
  return 0;
}
