/*
 * subreaper: runs a command as a child subreaper and reaps every orphan that
 * is reparented to it. PID 1 on the test machines does not reap, so restored
 * (daemonised) test processes would stay zombies without this.
 * Descriptors other than 0-2 are closed for the command. Exits with the
 * command's status.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t g_cmd;

static void forward(int sig) {
  if (g_cmd > 0) kill(g_cmd, sig);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: subreaper COMMAND [ARGS...]\n");
    return 64;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) {
    fprintf(stderr, "subreaper: prctl(PR_SET_CHILD_SUBREAPER): %s\n", strerror(errno));
    return 70;
  }
  g_cmd = fork();
  if (g_cmd < 0) {
    fprintf(stderr, "subreaper: fork: %s\n", strerror(errno));
    return 70;
  }
  if (g_cmd == 0) {
    /* Descriptors leaked by whoever started us must not reach the tests'
     * processes (they would be checkpointed along with them). */
    syscall(SYS_close_range, 3, ~0U, 0);
    execvp(argv[1], argv + 1);
    fprintf(stderr, "subreaper: cannot run %s: %s\n", argv[1], strerror(errno));
    _exit(127);
  }
  signal(SIGINT, forward);
  signal(SIGTERM, forward);
  signal(SIGHUP, forward);
  int code = 70;
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p < 0) {
      if (errno == EINTR) continue;
      break; /* no children left */
    }
    if (p == g_cmd) {
      code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      g_cmd = -1;
      break; /* orphans left behind are the command's to clean; they are reparented further up */
    }
  }
  return code;
}
