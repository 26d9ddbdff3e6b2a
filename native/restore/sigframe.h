#ifndef CRM_RESTORE_SIGFRAME_H
#define CRM_RESTORE_SIGFRAME_H
#include <stdint.h>

#include "plan.h"

/* What one thread resumes with. */
struct frame_state {
  const uint64_t *regs; /* struct user_regs_struct */
  const uint8_t *xsave;
  uint32_t xsave_size;
  uint64_t blocked;
  uint64_t altstack_sp, altstack_size;
  uint32_t altstack_flags;
};

/* Size of one frame plus its FPU area, with alignment slack. */
uint64_t sigframe_size(const struct plan *p);
/* Writes an rt_sigframe at or above `at` (64-byte aligned FPU area after it)
 * that makes rt_sigreturn resume a thread with its registers, FPU/AVX state,
 * blocked mask and alternate stack. Returns the rsp to use for rt_sigreturn. */
uint64_t build_sigframe(const struct frame_state *s, uint64_t at);
#endif
