/*
 * t_syscall: a process frozen inside a blocking system call must resume
 * correctly after restore.
 *
 * The main loop alternates an absolute clock_nanosleep(CLOCK_MONOTONIC,
 * TIMER_ABSTIME) of 100 ms with a relative 200 ms nanosleep, so the process
 * is almost always inside one of the two when it is frozen. Interrupted
 * sleeps are continued the usual way (same deadline / remaining time).
 * A restore that resumes the syscall wrongly shows up as an unexpected
 * return value (e.g. a leaked -ERESTART_RESTARTBLOCK = errno 516), an early
 * wakeup, a stalled loop or late wakeups after the trigger. SIGUSR2 has no
 * SA_RESTART so the trigger itself interrupts a sleep too.
 */
#include "common.h"

#define ABS_TICK_NS 100000000ULL /* 100 ms */
#define REL_SLEEP_NS 200000000ULL /* 200 ms */
#define POST_TRIGGER_ITERATIONS 6 /* three of each kind, about 900 ms */
#define LATE_NS 100000000ULL      /* wakeup later than this counts as late */
#define DATA_SIZE 4096
#define READ_CHUNK 100

static volatile uint64_t g_iterations;

struct loop_stats {
	uint64_t early;            /* woke before the deadline / duration */
	uint64_t unexpected;       /* returns other than 0 / EINTR */
	int first_unexpected_errno;
	const char *first_unexpected_call;
	unsigned long eintr;
	uint64_t backwards;        /* CLOCK_MONOTONIC went backwards */
	uint64_t max_late_post;    /* worst lateness after the trigger */
};

static void unexpected(struct loop_stats *st, const char *call, int err)
{
	if (!st->unexpected++) {
		st->first_unexpected_errno = err;
		st->first_unexpected_call = call;
	}
}

/* One absolute sleep; returns how late it woke (ns). */
static uint64_t sleep_absolute(struct loop_stats *st)
{
	uint64_t deadline = mono_ns() + ABS_TICK_NS;
	struct timespec ts = ns_to_ts(deadline);
	int rc;
	/* Returns the error number directly (not via errno). */
	while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR)
		st->eintr++;
	if (rc != 0)
		unexpected(st, "clock_nanosleep(TIMER_ABSTIME)", rc);
	uint64_t now = mono_ns();
	if (now < deadline) {
		st->early++;
		return 0;
	}
	return now - deadline;
}

/* One relative sleep, continued with the remaining time after EINTR. */
static uint64_t sleep_relative(struct loop_stats *st)
{
	uint64_t start = mono_ns();
	int err = nanosleep_whole(ns_to_ts(REL_SLEEP_NS), &st->eintr);
	if (err)
		unexpected(st, "nanosleep", err);
	uint64_t elapsed = mono_ns() - start;
	if (elapsed < REL_SLEEP_NS) {
		st->early++;
		return 0;
	}
	return elapsed - REL_SLEEP_NS;
}

static unsigned char data_byte(size_t i)
{
	return (unsigned char)(pattern64(0xda7a, i / 8) >> (8 * (i % 8)));
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: %s WORKDIR", argv[0]);
	install_trigger();
	pid_t pid = getpid();

	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/data.dat", argv[1]);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("create %s", path);
	static unsigned char buf[DATA_SIZE];
	for (size_t i = 0; i < DATA_SIZE; i++)
		buf[i] = data_byte(i);
	if (write(fd, buf, DATA_SIZE) != DATA_SIZE || lseek(fd, 0, SEEK_SET) != 0)
		die("write %s", path);
	if (read(fd, buf, READ_CHUNK) != READ_CHUNK)
		die("read %s", path);

	struct loop_stats st;
	memset(&st, 0, sizeof st);
	uint64_t trigger_iteration = 0, trigger_time = 0, last_now = mono_ns();

	ready();
	for (;;) {
		uint64_t late = g_iterations % 2 == 0 ? sleep_absolute(&st) : sleep_relative(&st);
		g_iterations++;
		uint64_t now = mono_ns();
		if (now < last_now)
			st.backwards++;
		last_now = now;
		if (trigger_iteration) {
			/* Fully after the trigger: must be on time. */
			if (late > st.max_late_post)
				st.max_late_post = late;
			if (g_iterations - trigger_iteration >= POST_TRIGGER_ITERATIONS)
				break;
		} else if (g_triggered) {
			/* This sleep may have spanned a freeze: lateness not counted. */
			trigger_iteration = g_iterations;
			trigger_time = now;
		}
	}
	uint64_t post_ms = (mono_ns() - trigger_time) / 1000000;

	check(st.unexpected == 0, "sleeps only ever returned 0 or EINTR",
	      "%lu unexpected returns, first from %s: errno %d (%s)", (unsigned long)st.unexpected,
	      st.first_unexpected_call ? st.first_unexpected_call : "?", st.first_unexpected_errno,
	      strerror(st.first_unexpected_errno));
	check(st.early == 0, "no sleep ended before its deadline/duration", "%lu early wakeups",
	      (unsigned long)st.early);
	check(st.backwards == 0, "CLOCK_MONOTONIC never went backwards", "%lu times",
	      (unsigned long)st.backwards);
	/* 3 x 100 ms absolute + 3 x 200 ms relative */
	check(post_ms >= 850 && post_ms <= 1500, "loop kept its pace after the trigger (6 sleeps ~ 900 ms)",
	      "took %lu ms", (unsigned long)post_ms);
	check(st.max_late_post < LATE_NS, "sleeps after the trigger woke on time",
	      "worst wakeup %lu ms late", (unsigned long)(st.max_late_post / 1000000));
	check(g_iterations >= trigger_iteration + POST_TRIGGER_ITERATIONS,
	      "iteration counter kept increasing", "%lu iterations, trigger at %lu",
	      (unsigned long)g_iterations, (unsigned long)trigger_iteration);

	/* Plain syscalls after the restore. */
	check(getpid() == pid && syscall(SYS_getpid) == pid && gettid() == pid,
	      "getpid()/gettid() unchanged", "expected %d, got %d/%ld/%d", pid, getpid(),
	      syscall(SYS_getpid), gettid());
	{
		unsigned char chunk[READ_CHUNK];
		int ok = read(fd, chunk, READ_CHUNK) == READ_CHUNK;
		for (size_t i = 0; ok && i < READ_CHUNK; i++)
			ok = chunk[i] == data_byte(READ_CHUNK + i);
		check(ok, "read() on the regular file continues at its offset", "wrong data");
		ok = pread(fd, chunk, READ_CHUNK, 1000) == READ_CHUNK;
		for (size_t i = 0; ok && i < READ_CHUNK; i++)
			ok = chunk[i] == data_byte(1000 + i);
		check(ok, "pread() on the regular file", "wrong data");
	}
	{
		struct timespec past = ns_to_ts(mono_ns() - 1000000);
		uint64_t t0 = mono_ns();
		int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL);
		check(rc == 0 && mono_ns() - t0 < 50000000ULL,
		      "clock_nanosleep to a past deadline returns at once", "rc %d", rc);
	}
	close(fd);
	finish();
}
