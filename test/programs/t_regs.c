/*
 * t_regs: CPU register state must survive checkpoint/restore exactly.
 *
 * An assembly routine loads known patterns into every general-purpose
 * register (except rsp), the vector registers (xmm/ymm, or zmm0-31 + k0-7
 * when AVX-512 is present), four x87 stack slots, a non-default MXCSR and
 * x87 control word, and sets DF. It then spins without entering the kernel
 * until the SIGUSR2 handler sets g_triggered (the kernel restores all of
 * that after the handler returns), and stores everything back to memory.
 * Whatever is frozen and restored mid-spin must come back bit for bit.
 * FS base (TLS) and GS base are checked through arch_prctl and through
 * segment-relative loads.
 */
#include "common.h"

#include <asm/prctl.h>
#include <cpuid.h>
#include <stddef.h>
#include <sys/syscall.h>

/* g_vec_mode values (macros: they are pasted into the assembly) */
#define VEC_SSE 0
#define VEC_AVX 1
#define VEC_AVX512 2

/* Offsets used by the assembly below; checked against the struct. */
#define OFF_RFLAGS 128
#define OFF_RSP 136
#define OFF_MXCSR 144
#define OFF_FCW 148
#define OFF_FSW 150
#define OFF_ST 160
#define OFF_VEC 256
#define OFF_K 2304

#define NGP 15
static const char *const gp_names[NGP] = {
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8",
	"r9", "r10", "r11", "r12", "r13", "r14", "r15",
};

struct regblock {
	uint64_t gp[16];          /* in gp_names order; [15] unused */
	uint64_t rflags;
	uint64_t rsp;
	uint32_t mxcsr;
	uint16_t fcw;
	uint16_t fsw;
	uint64_t unused;
	unsigned char st[4][16];  /* 80-bit x87 values in 16-byte slots */
	unsigned char pad[32];
	unsigned char vec[32][64]; /* xmm/ymm/zmm n at vec[n] */
	uint64_t k[8];            /* opmask registers (low 16 bits used) */
} __attribute__((aligned(64)));

_Static_assert(offsetof(struct regblock, rflags) == OFF_RFLAGS, "layout");
_Static_assert(offsetof(struct regblock, rsp) == OFF_RSP, "layout");
_Static_assert(offsetof(struct regblock, mxcsr) == OFF_MXCSR, "layout");
_Static_assert(offsetof(struct regblock, fcw) == OFF_FCW, "layout");
_Static_assert(offsetof(struct regblock, fsw) == OFF_FSW, "layout");
_Static_assert(offsetof(struct regblock, st) == OFF_ST, "layout");
_Static_assert(offsetof(struct regblock, vec) == OFF_VEC, "layout");
_Static_assert(offsetof(struct regblock, k) == OFF_K, "layout");

/* Referenced by name from the assembly, hence global. */
struct regblock g_in, g_out;
int g_vec_mode;
uint64_t g_rsp_before;
uint16_t g_fsw_before;
uint32_t g_saved_mxcsr;
uint16_t g_saved_fcw;
uint64_t g_gs_area[8];

void regs_spin(void);

#define STR_(x) #x
#define STR(x) STR_(x)
#define IRP16 ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
#define IRP32 ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
#define IN(off) "g_in+" STR(off) "(%rip)"
#define OUT(off) "g_out+" STR(off) "(%rip)"

/*
 * Top-level assembly (not inline asm in a C function) so that nothing the
 * compiler generates can run between loading the patterns and storing them
 * back. The AVX/AVX-512 instructions are only executed when g_vec_mode says
 * the CPU and OS support them, so the binary runs on any x86_64 CPU.
 */
__asm__(
	".text\n"
	".globl regs_spin\n"
	".type regs_spin,@function\n"
	"regs_spin:\n"
	"push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
	"stmxcsr g_saved_mxcsr(%rip)\n"
	"fnstcw g_saved_fcw(%rip)\n"

	/* vector registers */
	"cmpl $" STR(VEC_AVX512) ", g_vec_mode(%rip)\n je 3f\n"
	"cmpl $" STR(VEC_AVX) ", g_vec_mode(%rip)\n je 2f\n"
	IRP16 "movdqu g_in+" STR(OFF_VEC) "+\\i*64(%rip), %xmm\\i\n .endr\n"
	"jmp 4f\n"
	"2:\n"
	IRP16 "vmovdqu g_in+" STR(OFF_VEC) "+\\i*64(%rip), %ymm\\i\n .endr\n"
	"jmp 4f\n"
	"3:\n"
	IRP32 "vmovdqu64 g_in+" STR(OFF_VEC) "+\\i*64(%rip), %zmm\\i\n .endr\n"
	".irp i,0,1,2,3,4,5,6,7\n kmovw g_in+" STR(OFF_K) "+\\i*8(%rip), %k\\i\n .endr\n"
	"4:\n"

	/* x87 / SSE control state and x87 stack */
	"ldmxcsr " IN(OFF_MXCSR) "\n"
	"fldcw " IN(OFF_FCW) "\n"
	"fldt g_in+" STR(OFF_ST) "+0(%rip)\n"
	"fldt g_in+" STR(OFF_ST) "+16(%rip)\n"
	"fldt g_in+" STR(OFF_ST) "+32(%rip)\n"
	"fldt g_in+" STR(OFF_ST) "+48(%rip)\n"
	"fnstsw g_fsw_before(%rip)\n"
	"movq %rsp, g_rsp_before(%rip)\n"
	"std\n"

	/* general-purpose registers, all addressing is rip-relative */
	"movq g_in+0(%rip), %rax\n"
	"movq g_in+8(%rip), %rbx\n"
	"movq g_in+16(%rip), %rcx\n"
	"movq g_in+24(%rip), %rdx\n"
	"movq g_in+32(%rip), %rsi\n"
	"movq g_in+40(%rip), %rdi\n"
	"movq g_in+48(%rip), %rbp\n"
	"movq g_in+56(%rip), %r8\n"
	"movq g_in+64(%rip), %r9\n"
	"movq g_in+72(%rip), %r10\n"
	"movq g_in+80(%rip), %r11\n"
	"movq g_in+88(%rip), %r12\n"
	"movq g_in+96(%rip), %r13\n"
	"movq g_in+104(%rip), %r14\n"
	"movq g_in+112(%rip), %r15\n"

	/* spin in user mode until the SIGUSR2 handler sets the flag */
	"1:\n pause\n cmpl $0, g_triggered(%rip)\n je 1b\n"

	"movq %rax, g_out+0(%rip)\n"
	"movq %rbx, g_out+8(%rip)\n"
	"movq %rcx, g_out+16(%rip)\n"
	"movq %rdx, g_out+24(%rip)\n"
	"movq %rsi, g_out+32(%rip)\n"
	"movq %rdi, g_out+40(%rip)\n"
	"movq %rbp, g_out+48(%rip)\n"
	"movq %r8, g_out+56(%rip)\n"
	"movq %r9, g_out+64(%rip)\n"
	"movq %r10, g_out+72(%rip)\n"
	"movq %r11, g_out+80(%rip)\n"
	"movq %r12, g_out+88(%rip)\n"
	"movq %r13, g_out+96(%rip)\n"
	"movq %r14, g_out+104(%rip)\n"
	"movq %r15, g_out+112(%rip)\n"
	"pushfq\n popq " OUT(OFF_RFLAGS) "\n"
	"cld\n"
	"movq %rsp, " OUT(OFF_RSP) "\n"
	"fnstsw " OUT(OFF_FSW) "\n"
	"fstpt g_out+" STR(OFF_ST) "+48(%rip)\n"
	"fstpt g_out+" STR(OFF_ST) "+32(%rip)\n"
	"fstpt g_out+" STR(OFF_ST) "+16(%rip)\n"
	"fstpt g_out+" STR(OFF_ST) "+0(%rip)\n"
	"fnstcw " OUT(OFF_FCW) "\n"
	"stmxcsr " OUT(OFF_MXCSR) "\n"
	"ldmxcsr g_saved_mxcsr(%rip)\n"
	"fldcw g_saved_fcw(%rip)\n"

	"cmpl $" STR(VEC_AVX512) ", g_vec_mode(%rip)\n je 7f\n"
	"cmpl $" STR(VEC_AVX) ", g_vec_mode(%rip)\n je 6f\n"
	IRP16 "movdqu %xmm\\i, g_out+" STR(OFF_VEC) "+\\i*64(%rip)\n .endr\n"
	"jmp 8f\n"
	"6:\n"
	IRP16 "vmovdqu %ymm\\i, g_out+" STR(OFF_VEC) "+\\i*64(%rip)\n .endr\n"
	"vzeroupper\n"
	"jmp 8f\n"
	"7:\n"
	IRP32 "vmovdqu64 %zmm\\i, g_out+" STR(OFF_VEC) "+\\i*64(%rip)\n .endr\n"
	".irp i,0,1,2,3,4,5,6,7\n kmovw %k\\i, g_out+" STR(OFF_K) "+\\i*8(%rip)\n .endr\n"
	"vzeroupper\n"
	"8:\n"
	"pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
	"ret\n"
	".size regs_spin, .-regs_spin\n");

static uint64_t read_xcr0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

/* AVX needs the CPU flag plus OS-enabled XMM|YMM state in XCR0. */
static int detect_vec_mode(int *avx512_cpu)
{
	unsigned a, b, c, d;
	*avx512_cpu = 0;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return VEC_SSE;
	if (!(c & bit_OSXSAVE) || !(c & bit_AVX))
		return VEC_SSE;
	uint64_t xcr0 = read_xcr0();
	if ((xcr0 & 0x6) != 0x6)
		return VEC_SSE;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX512F)) {
		*avx512_cpu = 1;
		/* opmask, ZMM_Hi256, Hi16_ZMM state enabled by the OS */
		if ((xcr0 & 0xe0) == 0xe0)
			return VEC_AVX512;
	}
	return VEC_AVX;
}

static __thread uint64_t t_tls_marker;

#define MXCSR_PATTERN 0xffe0 /* round toward zero, FTZ, DAZ, masks, PE flag */
#define FCW_PATTERN 0x0e7f   /* round toward zero, 53-bit precision, masks */
#define TLS_MARKER 0x7157c0ffee0715ULL
#define GS_MARKER 0x6565deadbeef6565ULL

static void hex(char *out, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: %s WORKDIR", argv[0]);
	install_trigger();

	int avx512_cpu;
	g_vec_mode = detect_vec_mode(&avx512_cpu);
	int nvec = g_vec_mode == VEC_AVX512 ? 32 : 16;
	int vec_bytes = g_vec_mode == VEC_AVX512 ? 64 : g_vec_mode == VEC_AVX ? 32 : 16;

	for (int i = 0; i < NGP; i++)
		g_in.gp[i] = pattern64(0x6770, i);
	for (int r = 0; r < 32; r++)
		for (int w = 0; w < 8; w++) {
			uint64_t v = pattern64(0x7665 + r, w);
			memcpy(&g_in.vec[r][w * 8], &v, 8);
		}
	for (int i = 0; i < 8; i++)
		g_in.k[i] = pattern64(0x6b, i) & 0xffff;
	g_in.mxcsr = MXCSR_PATTERN;
	g_in.fcw = FCW_PATTERN;
	const long double st_values[4] = {
		1.0L / 3.0L, -2.5e1000L, 3.14159265358979323846264338327950288L, 0x1.23456789abcdefp-16000L,
	};
	for (int i = 0; i < 4; i++)
		memcpy(g_in.st[i], &st_values[i], 10);

	/* TLS lives at %fs base; GS base is free on x86_64 so mark it too. */
	t_tls_marker = TLS_MARKER;
	unsigned long fs_before = 0, gs_before = 0;
	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_before) != 0)
		die("ARCH_GET_FS");
	g_gs_area[0] = GS_MARKER;
	if (syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)g_gs_area) != 0)
		die("ARCH_SET_GS");
	if (syscall(SYS_arch_prctl, ARCH_GET_GS, &gs_before) != 0)
		die("ARCH_GET_GS");

	ready();
	regs_spin();

	/* --- verification --- */
	for (int i = 0; i < NGP; i++)
		check(g_out.gp[i] == g_in.gp[i], gp_names[i], "expected 0x%016lx, got 0x%016lx",
		      (unsigned long)g_in.gp[i], (unsigned long)g_out.gp[i]);
	check(g_out.rsp == g_rsp_before, "rsp", "expected %#lx, got %#lx",
	      (unsigned long)g_rsp_before, (unsigned long)g_out.rsp);
	check(g_out.rflags & (1u << 10), "rflags.DF still set", "rflags=%#lx",
	      (unsigned long)g_out.rflags);

	const char *vname = g_vec_mode == VEC_AVX512 ? "zmm" : g_vec_mode == VEC_AVX ? "ymm" : "xmm";
	if (g_vec_mode == VEC_SSE)
		say("ok - AVX not usable on this CPU/OS (only xmm checked)");
	for (int r = 0; r < nvec; r++) {
		char what[32], exp[140], got[140];
		snprintf(what, sizeof what, "%s%d", vname, r);
		int same = memcmp(g_in.vec[r], g_out.vec[r], vec_bytes) == 0;
		if (!same) {
			hex(exp, g_in.vec[r], vec_bytes);
			hex(got, g_out.vec[r], vec_bytes);
		}
		check(same, what, "expected %s, got %s", same ? "" : exp, same ? "" : got);
	}
	if (g_vec_mode == VEC_AVX512) {
		for (int i = 0; i < 8; i++) {
			char what[16];
			snprintf(what, sizeof what, "k%d", i);
			check((g_out.k[i] & 0xffff) == g_in.k[i], what, "expected %#lx, got %#lx",
			      (unsigned long)g_in.k[i], (unsigned long)(g_out.k[i] & 0xffff));
		}
	} else if (avx512_cpu) {
		say("ok - avx512 present but not enabled by the OS (skipped)");
	} else {
		say("ok - avx512 not present on this CPU (skipped)");
	}

	check(g_out.mxcsr == MXCSR_PATTERN, "MXCSR (rounding, FTZ, DAZ, sticky flag)",
	      "expected %#x, got %#x", MXCSR_PATTERN, g_out.mxcsr);
	check(g_out.fcw == FCW_PATTERN, "x87 control word", "expected %#x, got %#x",
	      FCW_PATTERN, g_out.fcw);
	check(g_out.fsw == g_fsw_before, "x87 status word (stack top)", "expected %#x, got %#x",
	      g_fsw_before, g_out.fsw);
	for (int i = 0; i < 4; i++) {
		char what[32], exp[24], got[24];
		snprintf(what, sizeof what, "x87 stack value %d", i);
		hex(exp, g_in.st[i], 10);
		hex(got, g_out.st[i], 10);
		check(memcmp(g_in.st[i], g_out.st[i], 10) == 0, what, "expected %s, got %s", exp, got);
	}

	unsigned long fs_after = 0, gs_after = 0;
	syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_after);
	syscall(SYS_arch_prctl, ARCH_GET_GS, &gs_after);
	check(fs_after == fs_before, "fs base (arch_prctl)", "expected %#lx, got %#lx", fs_before, fs_after);
	check((unsigned long)__builtin_thread_pointer() == fs_before, "TCB self pointer at %fs:0",
	      "expected %#lx, got %p", fs_before, __builtin_thread_pointer());
	check(t_tls_marker == TLS_MARKER, "TLS variable", "expected %#llx, got %#lx",
	      TLS_MARKER, (unsigned long)t_tls_marker);
	check(gs_after == gs_before, "gs base (arch_prctl)", "expected %#lx, got %#lx", gs_before, gs_after);
	/* Only dereference %gs when its base is right, or this would fault. */
	if (gs_after == gs_before) {
		uint64_t gsword;
		__asm__ volatile("movq %%gs:0, %0" : "=r"(gsword));
		check(gsword == GS_MARKER, "load through %gs:0", "expected %#llx, got %#lx",
		      GS_MARKER, (unsigned long)gsword);
	}

	finish();
}
