/* The rt_sigreturn frame that ends the restore. Layout of the x86_64 kernel
 * ABI (arch/x86/include/uapi/asm/sigcontext.h, ucontext.h): the kernel reads
 * the frame at rsp - 8 (as if a handler had just returned into pretcode). */
#include "sigframe.h"

#include <string.h>

#include "util.h"

struct k_sigcontext {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2, fpstate, reserved1[8];
};
struct k_stack {
  uint64_t ss_sp;
  int32_t ss_flags, pad;
  uint64_t ss_size;
};
struct k_ucontext {
  uint64_t uc_flags, uc_link;
  struct k_stack uc_stack;
  struct k_sigcontext uc_mcontext;
  uint64_t uc_sigmask;
};
struct k_rt_sigframe {
  uint64_t pretcode;
  struct k_ucontext uc;
  uint8_t info[128];
};

#define UC_FP_XSTATE 0x1
#define UC_SIGCONTEXT_SS 0x2
#define UC_STRICT_RESTORE_SS 0x4
#define FP_XSTATE_MAGIC1 0x46505853u
#define FP_XSTATE_MAGIC2 0x46505845u
#define SW_BYTES_OFFSET 464

/* user_regs_struct indexes */
enum { R15, R14, R13, R12, RBP, RBX, R11, R10, R9, R8, RAX, RCX, RDX, RSI, RDI, ORIG_RAX, RIP, CS, EFLAGS, RSP, SS };

uint64_t sigframe_size(const struct plan *p) { return sizeof(struct k_rt_sigframe) + 128 + p->hdr->xsave_size + 4 + 64; }

uint64_t build_sigframe(const struct frame_state *st, uint64_t at) {
  const uint64_t *g = st->regs;
  uint64_t frame_addr = (at + 63) & ~63ULL;
  struct k_rt_sigframe *f = (void *)frame_addr;
  uint64_t fp_addr = (frame_addr + sizeof *f + 63) & ~63ULL;
  uint32_t xsize = st->xsave_size;
  memset(f, 0, sizeof *f);

  struct k_sigcontext *sc = &f->uc.uc_mcontext;
  sc->r8 = g[R8]; sc->r9 = g[R9]; sc->r10 = g[R10]; sc->r11 = g[R11];
  sc->r12 = g[R12]; sc->r13 = g[R13]; sc->r14 = g[R14]; sc->r15 = g[R15];
  sc->rdi = g[RDI]; sc->rsi = g[RSI]; sc->rbp = g[RBP]; sc->rbx = g[RBX];
  sc->rdx = g[RDX]; sc->rax = g[RAX]; sc->rcx = g[RCX]; sc->rsp = g[RSP];
  sc->rip = g[RIP]; sc->eflags = g[EFLAGS];
  sc->cs = (uint16_t)g[CS];
  sc->ss = (uint16_t)g[SS];
  sc->fpstate = fp_addr;
  f->uc.uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
  f->uc.uc_sigmask = st->blocked;
  f->uc.uc_stack.ss_sp = st->altstack_sp;
  f->uc.uc_stack.ss_size = st->altstack_size;
  f->uc.uc_stack.ss_flags = (int32_t)st->altstack_flags;

  /* The xsave image from PTRACE_GETREGSET, with the software-reserved bytes
   * that tell the kernel an extended (AVX...) state follows the legacy area. */
  uint8_t *fp = (void *)fp_addr;
  memcpy(fp, st->xsave, xsize);
  uint64_t xcr0;
  memcpy(&xcr0, st->xsave + SW_BYTES_OFFSET, 8); /* ptrace stores XCR0 here */
  uint32_t sw[12] = {0};
  sw[0] = FP_XSTATE_MAGIC1;
  sw[1] = xsize + 4;
  memcpy(&sw[2], &xcr0, 8);
  sw[4] = xsize;
  memcpy(fp + SW_BYTES_OFFSET, sw, sizeof sw);
  uint32_t magic2 = FP_XSTATE_MAGIC2;
  memcpy(fp + xsize, &magic2, 4);
  return frame_addr + 8;
}
