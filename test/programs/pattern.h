/*
 * The memory contents of the benchmark workloads (bench_mem, bench_tree):
 * the first half of a region pseudo-random bytes (xorshift64*,
 * incompressible), the rest log-like text (compresses well). Both are
 * recomputed to verify the region byte for byte.
 */
#ifndef CRM_TEST_PATTERN_H
#define CRM_TEST_PATTERN_H

#include "common.h"

#define MIB (1024UL * 1024UL)
#define RAND_SEED 0x9E3779B97F4A7C15ULL

/* ---- random half: xorshift64* stream, one 64-bit word at a time ---- */

static inline uint64_t xorshift64s(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void fill_random(uint64_t *w, size_t words)
{
	uint64_t s = RAND_SEED;
	for (size_t i = 0; i < words; i++)
		w[i] = xorshift64s(&s);
}

/* Returns the byte offset of the first difference, or (size_t)-1. */
static size_t check_random(const uint64_t *w, size_t words)
{
	uint64_t s = RAND_SEED;
	for (size_t i = 0; i < words; i++) {
		uint64_t want = xorshift64s(&s);
		if (w[i] != want) {
			const unsigned char *a = (const unsigned char *)&w[i], *b = (const unsigned char *)&want;
			size_t j = 0;
			while (a[j] == b[j])
				j++;
			return i * 8 + j;
		}
	}
	return (size_t)-1;
}

/* ---- text half: a deterministic stream of log lines ---- */

struct textgen {
	uint64_t line;     /* index of the next line to make */
	char buf[256];     /* current line */
	size_t len, pos;   /* its length and how much of it was emitted */
};

static const char *const k_level[] = { "INFO ", "INFO ", "INFO ", "INFO ", "DEBUG", "WARN ", "ERROR" };
static const char *const k_verb[] = { "GET", "GET", "GET", "POST", "PUT", "DELETE" };
static const char *const k_path[] = {
	"/api/v1/items", "/api/v1/users", "/api/v1/orders", "/healthz", "/static/app.js", "/login", "/api/v2/search",
};
static const char *const k_msg[] = {
	"request completed", "request completed", "cache miss, fetched from upstream", "connection reused",
	"slow query detected on replica", "retrying after backoff", "session refreshed for user",
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

/* Decimal, zero-padded to at least `width` digits. */
static char *put_num(char *p, uint64_t v, int width)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n < width)
		tmp[n++] = '0';
	while (n)
		*p++ = tmp[--n];
	return p;
}

static void make_line(struct textgen *g)
{
	uint64_t k = g->line++;
	uint64_t h = k * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ULL;
	h ^= h >> 32;
	uint64_t ms = k * 7; /* a clock that moves forward */
	char *p = g->buf;
	p = put_str(p, "2024-05-17 ");
	p = put_num(p, (ms / 3600000) % 24, 2);
	*p++ = ':';
	p = put_num(p, (ms / 60000) % 60, 2);
	*p++ = ':';
	p = put_num(p, (ms / 1000) % 60, 2);
	*p++ = '.';
	p = put_num(p, ms % 1000, 3);
	*p++ = ' ';
	p = put_str(p, k_level[h % NELEM(k_level)]);
	p = put_str(p, " [worker-");
	p = put_num(p, (h >> 8) % 16, 1);
	p = put_str(p, "] ");
	p = put_str(p, k_verb[(h >> 12) % NELEM(k_verb)]);
	*p++ = ' ';
	p = put_str(p, k_path[(h >> 16) % NELEM(k_path)]);
	*p++ = '/';
	p = put_num(p, (h >> 20) % 5000, 1);
	p = put_str(p, " status=");
	p = put_num(p, ((h >> 33) % 10) ? 200 : 404, 3);
	p = put_str(p, " latency_ms=");
	p = put_num(p, (h >> 37) % 250, 1);
	p = put_str(p, ": ");
	p = put_str(p, k_msg[(h >> 45) % NELEM(k_msg)]);
	*p++ = '\n';
	g->len = (size_t)(p - g->buf);
	g->pos = 0;
}

/* Emits the next n bytes of the stream into dst. */
static void gen_text(struct textgen *g, char *dst, size_t n)
{
	while (n) {
		if (g->pos == g->len)
			make_line(g);
		size_t c = g->len - g->pos;
		if (c > n)
			c = n;
		memcpy(dst, g->buf + g->pos, c);
		g->pos += c;
		dst += c;
		n -= c;
	}
}

static size_t check_text(const char *t, size_t len)
{
	static char scratch[1 << 20];
	struct textgen g = { 0 };
	for (size_t off = 0; off < len;) {
		size_t c = len - off < sizeof scratch ? len - off : sizeof scratch;
		gen_text(&g, scratch, c);
		if (memcmp(t + off, scratch, c) != 0) {
			size_t j = 0;
			while (t[off + j] == scratch[j])
				j++;
			return off + j;
		}
		off += c;
	}
	return (size_t)-1;
}

/* ---- a whole region ---- */

/* The random part of a region of len bytes: the first half, in whole pages
 * (so whole words); the rest is text. */
static size_t pattern_rand_len(size_t len)
{
	return (len / 2) & ~(size_t)4095;
}

static void pattern_fill(char *mem, size_t len)
{
	size_t rand_len = pattern_rand_len(len);
	fill_random((uint64_t *)mem, rand_len / 8);
	struct textgen g = { 0 };
	gen_text(&g, mem + rand_len, len - rand_len);
}

/* Returns the byte offset of the first difference, or (size_t)-1. */
static size_t pattern_check(const char *mem, size_t len)
{
	size_t rand_len = pattern_rand_len(len);
	size_t bad = check_random((const uint64_t *)mem, rand_len / 8);
	if (bad == (size_t)-1) {
		bad = check_text(mem + rand_len, len - rand_len);
		if (bad != (size_t)-1)
			bad += rand_len;
	}
	return bad;
}

#endif
