/*
 * Arguments of the restorer blob: the position-independent code that runs
 * after crmigrate-restore has premapped the target's memory. The blob, these
 * arguments, its stack and the signal frame live in one "bootstrap" region
 * chosen free of every target mapping; the parent unmaps that region through
 * ptrace after the final rt_sigreturn.
 */
#ifndef CRM_RESTORER_H
#define CRM_RESTORER_H
#include <stdint.h>

#include "../include/crm_plan.h"

#define RST_MAX_KEEP 4
#define RST_MAX_SPECIAL 4
#define RST_MAX_SPECIAL_MOVES (2 * RST_MAX_SPECIAL)

struct rst_move {
  uint64_t from, to, len;
  uint32_t prot, pad;
};

struct rst_prctl_mm_map {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint64_t auxv;
  uint32_t auxv_size, exe_fd;
};

/* The plan's layouts are the kernel's: struct crm_sigaction is what
 * rt_sigaction takes, struct crm_itimer is a struct itimerval. */

/* What each thread sets up for itself at the end; the main thread's is in
 * restorer_args, every other one is made by the blob with clone3(set_tid). */
struct rst_thread {
  uint64_t stack_top;   /* its stack in the bootstrap region */
  uint64_t sigframe_sp; /* its rt_sigreturn frame (frame + 8) */
  uint64_t fs_base, gs_base;
  uint64_t rseq_abi;
  uint32_t rseq_len, rseq_sig;
  uint64_t robust_list, robust_len, clear_child_tid;
  int32_t tid, pad;
  char comm[16];
  uint64_t clone_args[11]; /* struct clone_args, filled by the blob */
};

struct restorer_args {
  /* Everything outside these ranges (below TASK_SIZE) is unmapped first. */
  uint64_t keep[RST_MAX_KEEP][2];
  uint32_t nkeep;
  /* The restorer's own rseq area, unregistered before its memory goes. */
  uint32_t own_rseq_len;
  uint64_t own_rseq;
  uint32_t own_rseq_sig;
  uint32_t nspecial;
  /* [vvar]/[vvar_vclock]/[vdso] moved to where the target had them. */
  struct rst_move special[RST_MAX_SPECIAL_MOVES];
  /* Premapped target VMAs: moved to their final address, then protected. */
  uint64_t moves;  /* struct rst_move[nmoves] */
  uint64_t nmoves;
  struct rst_prctl_mm_map mm;
  int32_t exe_fd;
  int32_t err_fd;  /* where a failure is reported before exit_group */
  struct crm_sigaction sigactions[64];
  uint64_t siginfos;  /* struct crm_siginfo[nsiginfo] */
  uint64_t nsiginfo;
  int32_t pid, pad0;
  struct crm_itimer itimers[3];
  struct rst_thread main_thread; /* its comm is already set; clone_args unused */
  struct crm_creds creds;        /* taken by every thread at its end */
  uint64_t threads; /* struct rst_thread[nthreads] */
  uint64_t nthreads;
  uint64_t close_fds[4]; /* restorer descriptors closed before the end */
  uint32_t nclose, pad;
};

/* Entry of the blob: never returns. */
typedef void (*restorer_entry_fn)(struct restorer_args *args);

#endif
