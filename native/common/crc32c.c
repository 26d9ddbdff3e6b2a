// CRC-32C with the SSE4.2 crc32 instruction (8 bytes per step), with a table
// fallback for CPUs without it. crc is the value returned by a previous call
// (0 to start), so a long stream can be checksummed in pieces.
#include "crc32c.h"

#include <cpuid.h>
#include <string.h>

static uint32_t table[256];

static void make_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
}

static uint32_t crc_table(uint32_t c, const unsigned char *p, size_t n) {
  if (!table[1]) make_table();
  while (n--) c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
  return c;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const unsigned char *p, size_t n) {
  uint64_t c64 = c;
  while (n && ((uintptr_t)p & 7)) { c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++); n--; }
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c64 = __builtin_ia32_crc32di(c64, v);
    p += 8;
    n -= 8;
  }
  while (n--) c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
  return (uint32_t)c64;
}

static int have_sse42(void) {
  static int cached = -1;
  if (cached < 0) {
    unsigned a, b, c, d;
    cached = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
  }
  return cached;
}

uint32_t Crc32c(uint32_t crc, const void *data, size_t len) {
  uint32_t c = ~crc;
  c = have_sse42() ? crc_hw(c, data, len) : crc_table(c, data, len);
  return ~c;
}
