/*
 * The restorer blob. Compiled freestanding and position independent, linked
 * to a flat binary and embedded in crmigrate-restore; it is copied into the
 * bootstrap region and entered with a stack inside that region. From here on
 * none of crmigrate-restore's own memory (libc, its stack, its heap) may be
 * touched: it is unmapped in the first step. Only raw system calls.
 */
#include <stddef.h>
#include <stdint.h>

#include "../include/crm_plan.h"
#include "restorer.h"

#define NR_write 1
#define NR_close 3
#define NR_mprotect 10
#define NR_munmap 11
#define NR_rt_sigaction 13
#define NR_rt_sigreturn 15
#define NR_mremap 25
#define NR_setitimer 38
#define NR_kill 62
#define NR_prctl 157
#define NR_setresuid 117
#define NR_setresgid 119
#define NR_setfsuid 122
#define NR_setfsgid 123
#define NR_capset 126
#define NR_setgroups 116
#define NR_arch_prctl 158
#define NR_gettid 186
#define NR_exit_group 231
#define NR_tgkill 234
#define NR_rt_sigqueueinfo 129
#define NR_rt_tgsigqueueinfo 297
#define NR_rseq 334
#define NR_set_tid_address 218
#define NR_set_robust_list 273
#define NR_clone3 435
#define THREAD_CLONE_FLAGS 0x50f00UL /* VM|FS|FILES|SIGHAND|THREAD|SYSVSEM */

#define TASK_SIZE_MAX 0x7ffffffff000ULL
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define PR_SET_MM 35
#define PR_SET_NAME 15
#define PR_SET_DUMPABLE 4
#define PR_CAPBSET_DROP 24
#define PR_SET_SECUREBITS 28
#define PR_SET_NO_NEW_PRIVS 38
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define SECBIT_KEEP_CAPS 0x10
#define CAPS_V3 0x20080522
#define EINVAL_ 22
#define PR_SET_MM_MAP 14
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define RSEQ_FLAG_UNREGISTER 1
#define SIGSTOP 19

static inline long sys6(long nr, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define sys1(n, a) sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys5(n, a, b, c, d, e) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* Reports "restorer: <step> failed: errno <n>" on err_fd and exits 70+step. */
static __attribute__((noreturn)) void fail(struct restorer_args *a, int step, long ret) {
  char msg[64];
  const char pre[] = "crmigrate-restore: restorer step ";
  int n = 0;
  for (const char *p = pre; *p; p++) msg[n++] = *p;
  msg[n++] = (char)('0' + step / 10);
  msg[n++] = (char)('0' + step % 10);
  const char mid[] = " failed: errno ";
  for (const char *p = mid; *p; p++) msg[n++] = *p;
  long e = -ret;
  char digits[8];
  int d = 0;
  do { digits[d++] = (char)('0' + e % 10); e /= 10; } while (e && d < 8);
  while (d) msg[n++] = digits[--d];
  msg[n++] = '\n';
  sys3(NR_write, a->err_fd, msg, n);
  sys1(NR_exit_group, 70 + step);
  for (;;) {}
}

static void unmap_all_but_kept(struct restorer_args *a) {
  /* keep[] is sorted by the caller; unmap every gap between kept ranges. */
  uint64_t cursor = 0x1000;
  for (uint32_t i = 0; i <= a->nkeep; i++) {
    uint64_t end = i < a->nkeep ? a->keep[i][0] : TASK_SIZE_MAX;
    if (end > cursor) {
      long r = sys2(NR_munmap, cursor, end - cursor);
      if (r < 0) fail(a, 1, r);
    }
    if (i < a->nkeep) cursor = a->keep[i][1];
  }
}

static void move_range(struct restorer_args *a, const struct rst_move *m, int step) {
  if (m->from != m->to) {
    long r = sys5(NR_mremap, m->from, m->len, m->len, MREMAP_MAYMOVE | MREMAP_FIXED, m->to);
    if (r < 0) fail(a, step, r);
  }
}

struct cap_header {
  uint32_t version;
  int32_t pid;
};
struct cap_data {
  uint32_t effective, permitted, inheritable;
};

static long set_caps(uint64_t eff, uint64_t prm, uint64_t inh) {
  struct cap_header h = {CAPS_V3, 0};
  struct cap_data d[2] = {{(uint32_t)eff, (uint32_t)prm, (uint32_t)inh}, {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)}};
  return sys2(NR_capset, (long)&h, (long)d);
}

/* The thread's credentials, last, since most of the restore needs root.
 * Order: the bounding set and groups while privileged; SECBIT_KEEP_CAPS so
 * the uid change keeps the permitted set; back to an effective set that can
 * set securebits and raise ambient capabilities; then the exact sets. */
static __attribute__((always_inline)) inline void apply_creds(struct restorer_args *a) {
  const struct crm_creds *c = &a->creds;
  long r;
  for (int cap = 0; cap < 64; cap++) {
    if ((c->cap_bnd >> cap) & 1) continue;
    r = sys5(NR_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (r < 0 && r != -EINVAL_) fail(a, 14, r);
  }
  r = sys2(NR_setgroups, c->ngroups, (long)c->groups);
  if (r < 0) fail(a, 14, r);
  r = sys3(NR_setresgid, c->gid[0], c->gid[1], c->gid[2]);
  if (r < 0) fail(a, 14, r);
  sys1(NR_setfsgid, c->gid[3]);
  r = sys5(NR_prctl, PR_SET_SECUREBITS, SECBIT_KEEP_CAPS, 0, 0, 0);
  if (r < 0) fail(a, 14, r);
  r = sys3(NR_setresuid, c->uid[0], c->uid[1], c->uid[2]);
  if (r < 0) fail(a, 14, r);
  sys1(NR_setfsuid, c->uid[3]);
  /* the task's permitted set plus CAP_SETPCAP (8), all effective */
  r = set_caps(c->cap_prm | (1ULL << 8), c->cap_prm | (1ULL << 8), c->cap_inh);
  if (r < 0) fail(a, 14, r);
  for (int cap = 0; cap < 64; cap++) {
    if (!((c->cap_amb >> cap) & 1)) continue;
    r = sys5(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
    if (r < 0) fail(a, 14, r);
  }
  r = sys5(NR_prctl, PR_SET_SECUREBITS, c->securebits, 0, 0, 0);
  if (r < 0) fail(a, 14, r);
  r = set_caps(c->cap_eff, c->cap_prm, c->cap_inh);
  if (r < 0) fail(a, 14, r);
  if (c->no_new_privs) {
    r = sys5(NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (r < 0) fail(a, 14, r);
  }
  sys5(NR_prctl, PR_SET_DUMPABLE, c->dumpable, 0, 0, 0);
}

/* What every thread does last: per-thread kernel state that rt_sigreturn
 * does not carry, its own pending signals (rt_tgsigqueueinfo with a kernel
 * or tkill si_code is only allowed to the calling thread itself), a stop for
 * the tracer, then rt_sigreturn. */
static __attribute__((noreturn, always_inline)) inline void finish_thread(struct restorer_args *a, const struct rst_thread *t) {
  long r;
  if (t->robust_len) {
    r = sys2(NR_set_robust_list, t->robust_list, t->robust_len);
    if (r < 0) fail(a, 12, r);
  }
  sys1(NR_set_tid_address, t->clear_child_tid);
  if (t->rseq_len) {
    r = sys4(NR_rseq, t->rseq_abi, t->rseq_len, 0, t->rseq_sig);
    if (r < 0) fail(a, 10, r);
  }
  r = sys2(NR_arch_prctl, ARCH_SET_FS, t->fs_base);
  if (r < 0) fail(a, 11, r);
  r = sys2(NR_arch_prctl, ARCH_SET_GS, t->gs_base);
  if (r < 0) fail(a, 11, r);
  if (t->comm[0]) sys5(NR_prctl, PR_SET_NAME, (long)t->comm, 0, 0, 0);
  const struct crm_siginfo *si = (const struct crm_siginfo *)a->siginfos;
  for (uint64_t i = 0; i < a->nsiginfo; i++) {
    if (si[i].shared || si[i].tid != t->tid) continue;
    r = sys4(NR_rt_tgsigqueueinfo, a->pid, t->tid, *(const int32_t *)si[i].raw, si[i].raw);
    if (r < 0) fail(a, 8, r);
  }
  apply_creds(a);
  /* Stop for the tracer (crmigrate-restore's parent half): it lets us run
   * into rt_sigreturn and unmaps the bootstrap region once the task is whole. */
  sys3(NR_tgkill, a->pid, t->tid, SIGSTOP);
  __asm__ volatile("mov %0, %%rsp\n\t"
                   "mov %1, %%eax\n\t"
                   "syscall\n\t"
                   "hlt\n\t"
                   :
                   : "r"(t->sigframe_sp), "i"(NR_rt_sigreturn)
                   : "memory");
  for (;;) {}
}

/* Entry of a thread made by spawn_thread, on its own stack. */
__attribute__((used, noinline, noclone, noreturn)) void restorer_thread(struct rst_thread *t, struct restorer_args *a) {
  finish_thread(a, t);
}

/* clone3 of one thread; the child starts on t->stack_top in restorer_thread. */
static long spawn_thread(struct rst_thread *t, struct restorer_args *a) {
  uint64_t *ca = t->clone_args;
  for (int i = 0; i < 11; i++) ca[i] = 0;
  ca[0] = THREAD_CLONE_FLAGS;
  ca[5] = t->stack_top - 16384; /* stack */
  ca[6] = 16384;                /* stack_size */
  ca[8] = (uint64_t)&t->tid;    /* set_tid */
  ca[9] = 1;                    /* set_tid_size */
  long ret;
  register long r12 __asm__("r12") = (long)t;
  register long r13 __asm__("r13") = (long)a;
  __asm__ volatile("syscall\n\t"
                   "test %%rax, %%rax\n\t"
                   "jnz 1f\n\t"
                   "mov %%r12, %%rdi\n\t"
                   "mov %%r13, %%rsi\n\t"
                   "call restorer_thread\n\t"
                   "hlt\n\t"
                   "1:\n\t"
                   : "=a"(ret)
                   : "a"(NR_clone3), "D"(ca), "S"(88L), "r"(r12), "r"(r13)
                   : "rcx", "r11", "memory");
  return ret;
}

__attribute__((section(".text.entry"), used)) void restorer_main(struct restorer_args *a) {
  long r;
  if (a->own_rseq_len) {
    r = sys4(NR_rseq, a->own_rseq, a->own_rseq_len, RSEQ_FLAG_UNREGISTER, a->own_rseq_sig);
    if (r < 0) fail(a, 2, r);
  }
  unmap_all_but_kept(a);
  for (uint32_t i = 0; i < a->nspecial; i++) move_range(a, &a->special[i], 3);

  const struct rst_move *moves = (const struct rst_move *)a->moves;
  for (uint64_t i = 0; i < a->nmoves; i++) {
    move_range(a, &moves[i], 4);
    r = sys3(NR_mprotect, moves[i].to, moves[i].len, moves[i].prot);
    if (r < 0) fail(a, 5, r);
  }

  r = sys5(NR_prctl, PR_SET_MM, PR_SET_MM_MAP, &a->mm, sizeof a->mm, 0);
  if (r < 0) fail(a, 6, r);
  if (a->exe_fd >= 0) sys1(NR_close, a->exe_fd);

  for (int sig = 1; sig <= 64; sig++) {
    if (sig == 9 || sig == 19) continue;
    r = sys4(NR_rt_sigaction, sig, &a->sigactions[sig - 1], 0, 8);
    if (r < 0 && !(sig == 32 || sig == 33)) fail(a, 7, r);
  }

  /* The other threads, with their TIDs; they inherit our all-blocked mask. */
  struct rst_thread *threads = (struct rst_thread *)a->threads;
  for (uint64_t i = 0; i < a->nthreads; i++) {
    r = spawn_thread(&threads[i], a);
    if (r < 0) fail(a, 13, r);
  }

  /* Process-wide pending signals go back on the shared queue (each thread
   * queues its own in finish_thread); all signals stay blocked until
   * rt_sigreturn installs each thread's own mask. */
  const struct crm_siginfo *si = (const struct crm_siginfo *)a->siginfos;
  for (uint64_t i = 0; i < a->nsiginfo; i++) {
    if (!si[i].shared) continue;
    r = sys3(NR_rt_sigqueueinfo, a->pid, *(const int32_t *)si[i].raw, si[i].raw);
    if (r < 0) fail(a, 8, r);
  }

  for (int w = 0; w < 3; w++) {
    r = sys3(NR_setitimer, w, &a->itimers[w], 0);
    if (r < 0) fail(a, 9, r);
  }

  for (uint32_t i = 0; i < a->nclose; i++) sys1(NR_close, a->close_fds[i]);

  finish_thread(a, &a->main_thread);
}
