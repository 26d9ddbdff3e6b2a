// CRC-32C with the SSE4.2 crc32 instruction, with a table fallback for CPUs
// without it. crc is the value returned by a previous call (0 to start), so a
// long stream can be checksummed in pieces.
//
// One crc32 instruction has a latency of 3 cycles, so a single dependency
// chain leaves most of the CPU idle. Long buffers go one of two ways:
//  - with PCLMULQDQ (carry-less multiply): 128 bytes at a time are folded into
//    eight 128-bit accumulators (each is multiplied by x^1024 mod P and xored
//    into the data 1024 bits further on); the last accumulator, congruent to
//    everything before it, is then run through the crc32 instruction;
//  - without it: three equal blocks are checksummed side by side and joined:
//    the CRC register of a block is advanced over as many zero bytes as the
//    next block holds (a linear map over GF(2), applied with four byte-indexed
//    tables) and xored with the CRC of that block.
#include "crc32c.h"

#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

#define POLY 0x82F63B78u /* reflected Castagnoli polynomial */
#define LONG_BLOCK 8192  /* bytes per stream in the long loop */
#define SHORT_BLOCK 256  /* bytes per stream in the short loop */

static uint32_t table[256];
/* shift_long[k][b]: the CRC register holding byte value b in byte k, after
 * LONG_BLOCK zero bytes; shift_short likewise for SHORT_BLOCK. */
static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];
static int have_hw, have_clmul;
/* Folding constants (see fold()): for a distance of 1024 bits (8 blocks) and
 * 128 bits (1 block). */
static uint64_t fold8_k[2], fold1_k[2];

/* The raw register (no pre/post inversion) after n zero bytes. */
static uint32_t zeros_table(uint32_t c, size_t n) {
  while (n--) c = table[c & 0xff] ^ (c >> 8);
  return c;
}

static void make_shift(uint32_t out[4][256], size_t n) {
  uint32_t basis[32];
  for (int bit = 0; bit < 32; bit++) basis[bit] = zeros_table(1u << bit, n);
  for (int k = 0; k < 4; k++)
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t v = 0;
      for (int i = 0; i < 8; i++)
        if (b & (1u << i)) v ^= basis[8 * k + i];
      out[k][b] = v;
    }
}

/* x^e mod P as the 64-bit reflected register the data uses: the coefficient
 * of x^d in bit 63 - d. */
static uint64_t xpow_reflected(unsigned e) {
  uint64_t v = 1; /* normal form: bit d is x^d */
  for (unsigned i = 0; i < e; i++) {
    v <<= 1;
    if (v & (1ull << 32)) v ^= 0x11EDC6F41ull;
  }
  uint64_t r = 0;
  for (int d = 0; d < 32; d++)
    if (v & (1ull << d)) r |= 1ull << (63 - d);
  return r;
}

/* A 16-byte block a = H*x^64 + L (H: its first 8 bytes) moved D bits later
 * becomes H*(x^(D+64) mod P) + L*(x^D mod P). A carry-less product of two
 * reflected 64-bit values comes out one degree short, hence the -1. */
static void fold_constants(uint64_t k[2], unsigned d) {
  k[0] = xpow_reflected(d + 63);
  k[1] = xpow_reflected(d - 1);
}

__attribute__((constructor)) static void crc32c_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
    table[i] = c;
  }
  make_shift(shift_long, LONG_BLOCK);
  make_shift(shift_short, SHORT_BLOCK);
  unsigned a, b, c, d;
  int ok = __get_cpuid(1, &a, &b, &c, &d);
  have_hw = ok && (c & bit_SSE4_2);
  have_clmul = have_hw && (c & bit_PCLMUL);
  fold_constants(fold8_k, 1024);
  fold_constants(fold1_k, 128);
}

static inline uint32_t shift(const uint32_t t[4][256], uint32_t c) {
  return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

static uint32_t crc_table(uint32_t c, const unsigned char *p, size_t n) {
  while (n--) c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
  return c;
}

static inline uint64_t load64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Three streams of `block` bytes each, joined; returns the register after
 * 3 * block bytes. */
__attribute__((target("sse4.2"))) static inline uint32_t crc_hw_3way(uint32_t c, const unsigned char *p, size_t block,
                                                                     const uint32_t t[4][256]) {
  uint64_t c0 = c, c1 = 0, c2 = 0;
  const unsigned char *p1 = p + block, *p2 = p + 2 * block;
  for (size_t i = 0; i < block; i += 8) {
    c0 = __builtin_ia32_crc32di(c0, load64(p + i));
    c1 = __builtin_ia32_crc32di(c1, load64(p1 + i));
    c2 = __builtin_ia32_crc32di(c2, load64(p2 + i));
  }
  uint32_t r = shift(t, (uint32_t)c0) ^ (uint32_t)c1;
  return shift(t, r) ^ (uint32_t)c2;
}

#define CLMUL_TARGET __attribute__((target("sse4.2,pclmul")))

CLMUL_TARGET static inline __m128i fold(__m128i acc, __m128i k, __m128i next) {
  __m128i hi = _mm_clmulepi64_si128(acc, k, 0x00); /* first 8 bytes * x^(D+64) */
  __m128i lo = _mm_clmulepi64_si128(acc, k, 0x11); /* last 8 bytes * x^D */
  return _mm_xor_si128(_mm_xor_si128(hi, lo), next);
}

/* n >= 256, a multiple of 16; c is the raw register before the data. */
CLMUL_TARGET static uint32_t crc_clmul(uint32_t c, const unsigned char *p, size_t n) {
  const __m128i k8 = _mm_set_epi64x((long long)fold8_k[1], (long long)fold8_k[0]);
  const __m128i k1 = _mm_set_epi64x((long long)fold1_k[1], (long long)fold1_k[0]);
  __m128i x[8];
  for (int i = 0; i < 8; i++) x[i] = _mm_loadu_si128((const __m128i *)(p + 16 * i));
  /* the register before the data is the same as xoring it into the first 4 bytes */
  x[0] = _mm_xor_si128(x[0], _mm_cvtsi32_si128((int)c));
  p += 128;
  n -= 128;
  while (n >= 128) {
    for (int i = 0; i < 8; i++) x[i] = fold(x[i], k8, _mm_loadu_si128((const __m128i *)(p + 16 * i)));
    p += 128;
    n -= 128;
  }
  __m128i acc = x[0];
  for (int i = 1; i < 8; i++) acc = fold(acc, k1, x[i]);
  while (n >= 16) {
    acc = fold(acc, k1, _mm_loadu_si128((const __m128i *)p));
    p += 16;
    n -= 16;
  }
  uint64_t r = __builtin_ia32_crc32di(0, (uint64_t)_mm_cvtsi128_si64(acc));
  r = __builtin_ia32_crc32di(r, (uint64_t)_mm_extract_epi64(acc, 1));
  return (uint32_t)r;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const unsigned char *p, size_t n) {
  uint64_t c64 = c;
  while (n && ((uintptr_t)p & 7)) {
    c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
    n--;
  }
  c = (uint32_t)c64;
  if (have_clmul && n >= 256) {
    size_t whole = n & ~(size_t)15;
    c = crc_clmul(c, p, whole);
    p += whole;
    n -= whole;
  }
  while (n >= 3 * LONG_BLOCK) {
    c = crc_hw_3way(c, p, LONG_BLOCK, shift_long);
    p += 3 * LONG_BLOCK;
    n -= 3 * LONG_BLOCK;
  }
  while (n >= 3 * SHORT_BLOCK) {
    c = crc_hw_3way(c, p, SHORT_BLOCK, shift_short);
    p += 3 * SHORT_BLOCK;
    n -= 3 * SHORT_BLOCK;
  }
  c64 = c;
  while (n >= 8) {
    c64 = __builtin_ia32_crc32di(c64, load64(p));
    p += 8;
    n -= 8;
  }
  while (n--) c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
  return (uint32_t)c64;
}

uint32_t Crc32c(uint32_t crc, const void *data, size_t len) {
  uint32_t c = ~crc;
  c = have_hw ? crc_hw(c, data, len) : crc_table(c, data, len);
  return ~c;
}
