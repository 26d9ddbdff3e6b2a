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
	say("usage: bench_mem MiB | bench_mem --fill-rate MiB");
	return 64;
}
