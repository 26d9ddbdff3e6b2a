/*
 * bench_mem: memory workload for the crmigrate benchmark (src/bench).
 *
 *   bench_mem MiB
 *       Allocates MiB of anonymous memory; fills the first half with
 *       pseudo-random bytes (xorshift64*, incompressible) and the second half
 *       with log-like text (compresses well), prints "READY", then sleeps
 *       until SIGUSR2. On SIGUSR2 it recomputes both halves and compares every
 *       byte: prints "PASS" (exit 0) or "FAIL <first bad offset>" (exit 1).
 *       Uses no pipes, sockets or threads, so it can be checkpointed.
 *
 *   bench_mem --fill-rate MiB
 *       Measures the machine's raw rate of populating fresh anonymous memory
 *       (page faults + zeroing + writing): maps MiB, writes every byte,
 *       prints "fill_rate_mb_s=<MB/s>" (MB = 10^6 bytes) and exits.
 *
 * All output goes through write(2) on fd 1 (nothing waits in a stdio buffer).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024UL * 1024UL)
#define RAND_SEED 0x9E3779B97F4A7C15ULL

static volatile sig_atomic_t g_triggered;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(STDOUT_FILENO, line + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (int)w;
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int parse_mib(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > (1UL << 20))
		return -1;
	*out = (size_t)v;
	return 0;
}

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		say("FAIL mmap of %zu bytes: %s", len, strerror(errno));
		exit(1);
	}
	return p;
}

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

/* ---- modes ---- */

static int fill_rate(size_t mib)
{
	size_t len = mib * MIB;
	char *p = map_anon(len);
	uint64_t t0 = mono_ns();
	memset(p, 0x5A, len);
	uint64_t t1 = mono_ns();
	/* Keep the writes from being optimised away. */
	volatile char sink = p[len - 1];
	(void)sink;
	munmap(p, len);
	double secs = (double)(t1 - t0) / 1e9;
	say("fill_rate_mb_s=%.1f bytes=%zu seconds=%.6f", (double)len / 1e6 / secs, len, secs);
	return 0;
}

static void on_trigger(int sig)
{
	(void)sig;
	g_triggered = 1;
}

static int workload(size_t mib)
{
	size_t len = mib * MIB;
	/* First half (whole pages, whole words) random, the rest text. */
	size_t rand_len = (len / 2) & ~(size_t)4095;
	size_t text_len = len - rand_len;
	char *mem = map_anon(len);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_trigger;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL) != 0) {
		say("FAIL sigaction: %s", strerror(errno));
		return 1;
	}

	uint64_t t0 = mono_ns();
	fill_random((uint64_t *)mem, rand_len / 8);
	struct textgen g = { 0 };
	gen_text(&g, mem + rand_len, text_len);
	say("filled %zu MiB (%zu random bytes, %zu text bytes) in %.3f s", mib, rand_len, text_len,
	    (double)(mono_ns() - t0) / 1e9);
	say("READY");

	/* Race-free wait: SIGUSR2 is only unblocked inside sigsuspend(). */
	sigset_t block, old, during;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &old);
	during = old;
	sigdelset(&during, SIGUSR2);
	while (!g_triggered)
		sigsuspend(&during);
	sigprocmask(SIG_SETMASK, &old, NULL);

	t0 = mono_ns();
	size_t bad = check_random((const uint64_t *)mem, rand_len / 8);
	if (bad == (size_t)-1) {
		bad = check_text(mem + rand_len, text_len);
		if (bad != (size_t)-1)
			bad += rand_len;
	}
	if (bad != (size_t)-1) {
		say("FAIL %zu", bad);
		return 1;
	}
	say("verified %zu bytes in %.3f s", len, (double)(mono_ns() - t0) / 1e9);
	say("PASS");
	return 0;
}

int main(int argc, char **argv)
{
	size_t mib;
	if (argc == 3 && strcmp(argv[1], "--fill-rate") == 0 && parse_mib(argv[2], &mib) == 0)
		return fill_rate(mib);
	if (argc == 2 && parse_mib(argv[1], &mib) == 0)
		return workload(mib);
	say("usage: bench_mem MiB | bench_mem --fill-rate MiB");
	return 64;
}
