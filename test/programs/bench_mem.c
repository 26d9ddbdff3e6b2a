/*
 * bench_mem: memory workload for the crmigrate benchmark (src/bench).
 *
 *   bench_mem MiB [--rewrite MiB_PER_S]
 *       Allocates MiB of anonymous memory; fills the first half with
 *       pseudo-random bytes (xorshift64*, incompressible) and the second half
 *       with log-like text (compresses well), prints "READY", then sleeps
 *       until SIGUSR2. On SIGUSR2 it recomputes both halves and compares every
 *       byte: prints "PASS" (exit 0) or "FAIL <first bad offset>" (exit 1).
 *       Uses no pipes or sockets, so it can be checkpointed.
 *       --rewrite: a thread writes pages at that rate, round and round, each
 *       with the bytes it already holds: a pre-copy sees them written (and
 *       must send them again) while the content to verify stays the same.
 *
 *   bench_mem --fill-rate MiB
 *       Measures the machine's raw rate of populating fresh anonymous memory
 *       (page faults + zeroing + writing): maps MiB, writes every byte,
 *       prints "fill_rate_mb_s=<MB/s>" (MB = 10^6 bytes) and exits.
 *
 * All output goes through write(2) on fd 1 (nothing waits in a stdio buffer).
 */
#include <pthread.h>

#include "common.h"
#include "pattern.h"

#define MAX_MIB (1UL << 20)

static void *map_private(size_t len)
{
	void *p = map_anon(len, MAP_PRIVATE);
	if (!p) {
		say("FAIL mmap of %zu bytes: %s", len, strerror(errno));
		exit(1);
	}
	return p;
}

/* ---- the rewriting thread ---- */

static char *g_mem;
static size_t g_len;
static unsigned long g_rewrite_mib_s;

static void *rewriter(void *arg)
{
	(void)arg;
	sigset_t usr2; /* the trigger is for the main thread's sigsuspend */
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
	const size_t page = 4096, tick_ns = 10 * 1000 * 1000;
	size_t per_tick = g_rewrite_mib_s * MIB / page / 100, at = 0;
	if (!per_tick) per_tick = 1;
	for (;;) {
		uint64_t t0 = mono_ns();
		for (size_t i = 0; i < per_tick; i++, at = (at + page) % g_len) {
			volatile uint64_t *q = (volatile uint64_t *)(g_mem + at);
			*q = *q;
		}
		uint64_t spent = mono_ns() - t0;
		if (spent < tick_ns) {
			struct timespec ts = {0, (long)(tick_ns - spent)};
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

/* ---- modes ---- */

static int fill_rate(size_t mib)
{
	size_t len = mib * MIB;
	char *p = map_private(len);
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

static int workload(size_t mib)
{
	size_t len = mib * MIB;
	size_t rand_len = pattern_rand_len(len);
	size_t text_len = len - rand_len;
	char *mem = map_private(len);

	if (set_handler(SIGUSR2, on_trigger) != 0) {
		say("FAIL sigaction: %s", strerror(errno));
		return 1;
	}

	uint64_t t0 = mono_ns();
	pattern_fill(mem, len);
	say("filled %zu MiB (%zu random bytes, %zu text bytes) in %.3f s", mib, rand_len, text_len,
	    (double)(mono_ns() - t0) / 1e9);
	if (g_rewrite_mib_s) {
		pthread_t th;
		g_mem = mem;
		g_len = len;
		if (pthread_create(&th, NULL, rewriter, NULL) != 0) {
			say("FAIL pthread_create");
			return 1;
		}
		say("rewriting %lu MiB/s", g_rewrite_mib_s);
	}
	ready();
	wait_trigger(); /* race-free: SIGUSR2 is only unblocked inside sigsuspend() */

	t0 = mono_ns();
	size_t bad = pattern_check(mem, len);
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
	unsigned long mib;
	if (argc == 3 && strcmp(argv[1], "--fill-rate") == 0 && parse_num(argv[2], MAX_MIB, &mib) == 0)
		return fill_rate(mib);
	if (argc == 2 && parse_num(argv[1], MAX_MIB, &mib) == 0)
		return workload(mib);
	if (argc == 4 && strcmp(argv[2], "--rewrite") == 0 && parse_num(argv[1], MAX_MIB, &mib) == 0 &&
	    parse_num(argv[3], MAX_MIB, &g_rewrite_mib_s) == 0)
		return workload(mib);
	say("usage: bench_mem MiB [--rewrite MiB_PER_S] | bench_mem --fill-rate MiB");
	return 64;
}
