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
#include <linux/sched.h>
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
#include "util.h"

extern const uint8_t restorer_blob_start[], restorer_blob_end[];

#define EXIT_PID_TAKEN 2
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

/* The child: becomes the task, never returns. */
static __attribute__((noreturn)) void become_task(const struct plan *p, int sync_fd, int info_fd) {
  char c;
  if (read(sync_fd, &c, 1) != 1) die("parent went away before tracing us");
  close(sync_fd);
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);

  const struct crm_task *t = p->task;
  /* Our control descriptors move above every target descriptor. */
  int base = max_target_fd(p) + 1;
  int in_fd = fcntl(0, F_DUPFD_CLOEXEC, base);
  int err_fd = fcntl(2, F_DUPFD_CLOEXEC, base);
  int inf_fd = fcntl(info_fd, F_DUPFD_CLOEXEC, base);
  if (in_fd < 0 || err_fd < 0 || inf_fd < 0) die_errno("moving control descriptors above %d", base);
  g_err_fd = err_fd;
  /* in_fd < err_fd < inf_fd: close everything else */
  syscall(SYS_close_range, 0, in_fd - 1, 0);
  if (err_fd - in_fd > 1) syscall(SYS_close_range, in_fd + 1, err_fd - 1, 0);
  if (inf_fd - err_fd > 1) syscall(SYS_close_range, err_fd + 1, inf_fd - 1, 0);
  syscall(SYS_close_range, inf_fd + 1, ~0U, 0);

  if (t->flags & CRM_TASK_SESSION_LEADER) {
    if (setsid() < 0) die_errno("setsid");
  } else if (t->flags & CRM_TASK_GROUP_LEADER) {
    if (setpgid(0, 0) < 0) die_errno("setpgid");
  }
  umask(t->umask);
  if (personality(t->personality) < 0) die_errno("personality(0x%x)", t->personality);
  prctl(PR_SET_NAME, t->comm, 0, 0, 0);

  restore_fds(p);
  const char *exe = plan_str(p, t->exe_path);
  int exe_fd = exe[0] ? open(exe, O_RDONLY | O_CLOEXEC) : -1;
  if (exe[0] && exe_fd < 0) die_errno("cannot open the executable %s", exe);
  int exe_hi = exe_fd >= 0 ? fcntl(exe_fd, F_DUPFD_CLOEXEC, base) : -1;
  if (exe_fd >= 0) close(exe_fd);

  uint64_t scratch_len = 0;
  {
    struct own_range own[4096];
    uint32_t n = own_mappings(own, 4096);
    for (uint32_t i = 0; i < n; i++)
      if (!strncmp(own[i].name, "[vdso]", 6) || !strncmp(own[i].name, "[vvar", 5)) scratch_len += own[i].end - own[i].start;
  }
  struct boot_layout bl = layout_boot(p, scratch_len);
  struct premap pm;
  premap_memory(p, bl.len, &pm);
  fill_pages(p, &pm, in_fd);

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
  uint64_t region[2] = {pm.region_start, pm.region_len};
  if (write_full(inf_fd, region, sizeof region)) die_errno("reporting the bootstrap region");
  close(inf_fd);

  uint64_t entry = pm.boot_start + bl.code;
  __asm__ volatile("mov %0, %%rsp\n\t"
                   "mov %1, %%rdi\n\t"
                   "jmp *%2\n\t"
                   :
                   : "r"(pm.boot_start + bl.stack_top), "r"(a), "r"(entry)
                   : "memory");
  __builtin_unreachable();
}

/* ---- the parent half ---- */

static pid_t g_child;

/* Kills the new task and reaps every one of its threads: traced threads
 * report their exit to us, and the leader is not reaped before them. */
static __attribute__((noreturn)) void discard(int code) {
  if (g_child > 0) {
    kill(g_child, SIGKILL);
    while (waitpid(-1, NULL, __WALL) > 0 || errno == EINTR) {}
  }
  _exit(code);
}

static int wait_child(int *st) {
  for (;;) {
    pid_t r = waitpid(g_child, st, __WALL);
    if (r == g_child) return 0;
    if (r < 0 && errno == EINTR) continue;
    return -1;
  }
}

static void child_ended(int st) {
  if (WIFEXITED(st)) {
    int code = WEXITSTATUS(st);
    if (code >= 70) report("restorer blob failed (step %d)", code - 70);
    _exit(1);
  }
  report("restored task %d was killed by signal %d before it was complete", g_child, WTERMSIG(st));
  _exit(1);
}

/* Runs one syscall in the stopped child through the `syscall` instruction at
 * insn; the registers are restored by the caller. */
static long inject(const struct user_regs_struct *base, uint64_t insn, long nr, long a1, long a2) {
  struct user_regs_struct r = *base;
  r.rip = insn;
  r.rax = (unsigned long long)nr;
  r.orig_rax = (unsigned long long)-1;
  r.rdi = (unsigned long long)a1;
  r.rsi = (unsigned long long)a2;
  if (ptrace(PTRACE_SETREGS, g_child, 0, &r)) die_errno("ptrace(SETREGS)");
  for (int i = 0; i < 2; i++) {
    int st;
    if (ptrace(PTRACE_SYSCALL, g_child, 0, 0)) die_errno("ptrace(SYSCALL)");
    if (wait_child(&st)) die_errno("waitpid");
    if (!WIFSTOPPED(st)) child_ended(st);
    if (WSTOPSIG(st) != (SIGTRAP | 0x80)) discard((report("unexpected stop 0x%x while finishing the restore", st), 1));
  }
  if (ptrace(PTRACE_GETREGS, g_child, 0, &r)) die_errno("ptrace(GETREGS)");
  return (long)r.rax;
}

/* Per-thread progress of the tracer towards the end of the restore. */
struct traced {
  pid_t tid;
  int phase; /* 0 running, 1 stopped by the blob, 2 entered rt_sigreturn, 3 left it */
  uint64_t insn;
  uint64_t blocked;
  struct user_regs_struct regs;
};

static struct traced *find_traced(struct traced *ts, uint32_t n, pid_t tid) {
  for (uint32_t i = 0; i < n; i++)
    if (ts[i].tid == tid) return &ts[i];
  return NULL;
}

/* Follows every thread to the exit of its final rt_sigreturn; the registers
 * read there are the task's own. `insn` (per thread) is a `syscall`
 * instruction inside the bootstrap region: the one that raised the blob's
 * SIGSTOP. New threads are traced automatically (PTRACE_O_TRACECLONE). */
static void wait_for_sigreturn(struct traced *ts, uint32_t n) {
  uint32_t known = 1, done = 0;
  ts[0].tid = g_child;
  while (done < n) {
    int st;
    pid_t tid = waitpid(-1, &st, __WALL);
    if (tid < 0) {
      if (errno == EINTR) continue;
      die_errno("waitpid");
    }
    if (!WIFSTOPPED(st)) {
      if (tid == g_child) child_ended(st);
      discard((report("restored thread %d ended before the task was complete", tid), 1));
    }
    struct traced *t = find_traced(ts, known, tid);
    if (!t) {
      if (known == n) discard((report("restored task made more threads than it had"), 1));
      t = &ts[known++];
      t->tid = tid;
    }
    int sig = WSTOPSIG(st), event = st >> 16;
    long resume = t->phase ? PTRACE_SYSCALL : PTRACE_CONT, deliver = 0;
    if (sig == (SIGTRAP | 0x80)) {
      if (t->phase == 2) {
        t->phase = 3;
        if (ptrace(PTRACE_GETREGS, tid, 0, &t->regs)) die_errno("ptrace(GETREGS)");
        done++;
        continue; /* held here until the commit */
      }
      if (t->phase == 1) t->phase = 2;
    } else if (sig == SIGSTOP && event == 0 && t->phase == 0) {
      struct user_regs_struct r;
      if (ptrace(PTRACE_GETREGS, tid, 0, &r)) die_errno("ptrace(GETREGS)");
      t->insn = r.rip - 2;
      errno = 0;
      long word = ptrace(PTRACE_PEEKTEXT, tid, (void *)t->insn, 0);
      if (errno || (word & 0xffff) != 0x050f) discard((report("restorer stopped at an unexpected place"), 1));
      t->phase = 1;
      resume = PTRACE_SYSCALL; /* suppress SIGSTOP, stop at rt_sigreturn */
    } else if (event == 0) {
      deliver = sig; /* a signal for the task: let it through */
    }
    if (ptrace((enum __ptrace_request)resume, tid, 0, (void *)deliver)) die_errno("ptrace(resume %d)", tid);
  }
}

static void usage(void) {
  fprintf(stderr, "usage: crmigrate-restore [--commit-file FILE]  (plan and pages on stdin)\n"
                  "       crmigrate-restore --print-plan           (decode a plan on stdin)\n");
  exit(64);
}

/* The migration agent's journal: if crmigrate went away after READY, the
 * task runs only if the journal says the migration was committed. */
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
  struct plan p;
  const char *commit_file = NULL;
  int print = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--print-plan")) print = 1;
    else if (!strcmp(argv[i], "--commit-file") && i + 1 < argc) commit_file = argv[++i];
    else usage();
  }
  if (plan_load(0, &p, err, sizeof err)) die("%s", err);
  if (print) {
    plan_print(&p, stdout);
    return 0;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  pid_t pid = p.task->pid;
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/%d", pid);
  struct stat st;
  if (stat(proc, &st) == 0) {
    report("PID %d is already in use on this host", pid);
    return EXIT_PID_TAKEN;
  }

  int sync[2], info[2];
  if (pipe2(sync, O_CLOEXEC) || pipe2(info, O_CLOEXEC)) die_errno("pipe");
  pid_t tid = pid;
  struct clone_args ca = {0};
  ca.exit_signal = SIGCHLD;
  ca.set_tid = (uint64_t)&tid;
  ca.set_tid_size = 1;
  long r = syscall(SYS_clone3, &ca, sizeof ca);
  if (r < 0) {
    if (errno == EEXIST) {
      report("PID %d is already in use on this host", pid);
      return EXIT_PID_TAKEN;
    }
    die_errno("clone3 with PID %d", pid);
  }
  if (r == 0) {
    close(sync[1]);
    close(info[0]);
    become_task(&p, sync[0], info[1]);
  }
  g_child = (pid_t)r;
  close(sync[0]);
  close(info[1]);
  if (ptrace(PTRACE_SEIZE, g_child, 0, (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE)))
    discard((report("ptrace(SEIZE) of the new task: %s", strerror(errno)), 1));
  if (write(sync[1], "s", 1) != 1) discard((report("cannot wake the new task"), 1));
  close(sync[1]);

  uint32_t nthreads = 1 + p.hdr->thread_count;
  struct traced *ts = calloc(nthreads, sizeof *ts);
  if (!ts) discard((report("out of memory"), 1));
  wait_for_sigreturn(ts, nthreads);
  uint64_t region[2];
  if (read_full(info[0], region, sizeof region)) discard((report("the new task did not report its bootstrap region"), 1));
  close(info[0]);
  printf("READY %d\n", g_child);
  char cmd = 0;
  if (read_full(0, &cmd, 1) != 0) cmd = journal_says_committed(commit_file) ? 'G' : 0;
  if (cmd != 'G') {
    printf("DISCARDED %d\n", g_child);
    discard(EXIT_DISCARDED);
  }

  /* Unmap the premap+bootstrap region from inside the task, through the
   * blob's own syscall instruction (execution never comes back to it), with
   * every signal blocked in every thread so nothing is delivered meanwhile. */
  uint64_t all = ~0ULL;
  for (uint32_t i = 0; i < nthreads; i++) {
    if (ptrace(PTRACE_GETSIGMASK, ts[i].tid, (void *)8, &ts[i].blocked) || ptrace(PTRACE_SETSIGMASK, ts[i].tid, (void *)8, &all))
      discard((report("ptrace(SETSIGMASK) of thread %d: %s", ts[i].tid, strerror(errno)), 1));
  }
  long ur = inject(&ts[0].regs, ts[0].insn, SYS_munmap, (long)region[0], (long)region[1]);
  if (ur < 0) discard((report("unmapping the bootstrap region: %s", strerror((int)-ur)), 1));
  if (ptrace(PTRACE_SETREGS, g_child, 0, &ts[0].regs)) discard((report("ptrace(SETREGS)"), 1));
  for (uint32_t i = 0; i < nthreads; i++) {
    if (ptrace(PTRACE_SETSIGMASK, ts[i].tid, (void *)8, &ts[i].blocked)) discard((report("ptrace(SETSIGMASK)"), 1));
  }
  for (uint32_t i = 0; i < nthreads; i++) {
    if (ptrace(PTRACE_DETACH, ts[i].tid, 0, 0)) discard((report("ptrace(DETACH) of %d: %s", ts[i].tid, strerror(errno)), 1));
  }
  printf("RUNNING %d\n", g_child);
  return 0;
}
