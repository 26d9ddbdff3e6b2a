#ifndef CRM_RESTORE_SIGFRAME_H
#define CRM_RESTORE_SIGFRAME_H
#include <stdint.h>

#include "plan.h"

/* Size of the frame plus its FPU area, with alignment slack. */
uint64_t sigframe_size(const struct plan *p);
/* Writes an rt_sigframe at or above `at` (64-byte aligned FPU area after it)
 * that makes rt_sigreturn resume the task with its registers, FPU/AVX state,
 * blocked mask and alternate stack. Returns the rsp to use for rt_sigreturn. */
uint64_t build_sigframe(const struct plan *p, uint64_t at);
#endif
