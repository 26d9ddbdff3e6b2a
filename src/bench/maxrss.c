/*
 * maxrss: runs a command and reports its peak resident set size, which
 * node's child_process cannot give (it does not expose wait4's rusage).
 * Compiled by the benchmark at start into its temp dir (src/bench/).
 *
 *   maxrss COMMAND [ARGS...]
 *
 * When the command ends, one line "maxrss_kb=N utime=U stime=T status=S"
 * goes to fd 3 if it is open, else to stderr. N is wait4()'s ru_maxrss for
 * the command: the largest RSS of the command itself or of any descendant it
 * waited for (the kernel folds RUSAGE_BOTH into it). U and T are the user and
 * system CPU seconds of the command and its waited-for descendants. S is the
 * command's exit status (128+sig if killed). SIGTERM, SIGINT and SIGHUP are passed on to the command. Exits
 * with S.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t g_child;

static void forward(int sig)
{
	if (g_child > 0)
		kill(g_child, sig);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: maxrss COMMAND [ARGS...]\n");
		return 64;
	}
	int out = fcntl(3, F_GETFD) >= 0 ? 3 : 2;
	if (out == 3)
		fcntl(3, F_SETFD, FD_CLOEXEC); /* not for the command */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "maxrss: fork: %s\n", strerror(errno));
		return 70;
	}
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		execvp(argv[1], argv + 1);
		fprintf(stderr, "maxrss: cannot run %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	g_child = pid;
	int st = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof ru);
	while (wait4(pid, &st, 0, &ru) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "maxrss: wait4: %s\n", strerror(errno));
			return 70;
		}
	}
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	dprintf(out, "maxrss_kb=%ld utime=%ld.%06ld stime=%ld.%06ld status=%d\n", ru.ru_maxrss, (long)ru.ru_utime.tv_sec,
		(long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, code);
	return code;
}
