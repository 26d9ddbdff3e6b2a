/*
 * Shared helpers for the checkpoint/restore test programs.
 *
 * Protocol (see Makefile for the list of programs):
 *   prog WORKDIR        set up state, print "READY", wait for SIGUSR2,
 *                       then print "ok - ..." / "not ok - ...: ..." lines
 *                       and finally "PASS" (exit 0) or "FAIL" (exit 1).
 *
 * All output goes through write(2) on fd 1 so nothing sits in a stdio
 * buffer when the harness reads the log (or when the process is dumped).
 */
#ifndef CRM_TEST_COMMON_H
#define CRM_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set by the SIGUSR2 handler. "used": t_regs polls it from assembly. */
static volatile sig_atomic_t g_triggered __attribute__((used));
static int g_failures __attribute__((unused));

/* Print one line (a newline is appended) directly to fd 1. */
__attribute__((format(printf, 1, 2), unused))
static void say(const char *fmt, ...)
{
	char line[4096];
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
		ssize_t w = write(STDOUT_FILENO, line + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += w;
	}
}

/*
 * Record one check. `what` names the item; the printf-style details are
 * only formatted and printed when the check fails ("expected X, got Y").
 * Returns `ok` so callers can skip dependent checks.
 */
__attribute__((format(printf, 3, 4), unused))
static int check(int ok, const char *what, const char *fmt, ...)
{
	if (ok) {
		say("ok - %s", what);
		return 1;
	}
	char raw[3072], details[3072];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	/* Keep the report on one line: escape newlines and tabs. */
	size_t j = 0;
	for (size_t i = 0; raw[i] && j + 3 < sizeof details; i++) {
		if (raw[i] == '\n' || raw[i] == '\t') {
			details[j++] = '\\';
			details[j++] = raw[i] == '\n' ? 'n' : 't';
		} else {
			details[j++] = raw[i];
		}
	}
	details[j] = '\0';
	say("not ok - %s: %s", what, details);
	g_failures++;
	return 0;
}

/* Print the verdict line and exit. */
__attribute__((noreturn, unused))
static void finish(void)
{
	say(g_failures ? "FAIL" : "PASS");
	exit(g_failures ? 1 : 0);
}

/* Setup could not be completed: the test cannot say anything, report FAIL. */
__attribute__((format(printf, 1, 2), noreturn, unused))
static void die(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	say("not ok - setup: %s (errno %d %s)", msg, errno, strerror(errno));
	say("FAIL");
	exit(1);
}

__attribute__((unused))
static void on_trigger(int sig)
{
	(void)sig;
	g_triggered = 1;
}

/* SIGUSR2 handler, no SA_RESTART: the trigger should interrupt waits. */
__attribute__((unused))
static void install_trigger(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_trigger;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL) != 0)
		die("sigaction(SIGUSR2)");
}

__attribute__((unused))
static void ready(void)
{
	say("READY");
}

/*
 * Race-free wait for the trigger: SIGUSR2 is blocked while the flag is
 * tested and only unblocked atomically inside sigsuspend(). The original
 * mask is put back afterwards.
 */
__attribute__((unused))
static void wait_trigger(void)
{
	sigset_t block, old, during;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &old);
	during = old;
	sigdelset(&during, SIGUSR2);
	while (!g_triggered)
		sigsuspend(&during);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* splitmix64: cheap deterministic patterns that differ in every word. */
__attribute__((unused))
static uint64_t pattern64(uint64_t seed, uint64_t index)
{
	uint64_t z = seed + (index + 1) * 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

__attribute__((unused))
static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Read a whole (small, e.g. /proc) file into buf; returns length or -1. */
__attribute__((unused))
static ssize_t read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return (ssize_t)len;
}

#endif
