#include "util.h"

#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int g_err_fd = 2;

static void vreport(const char *fmt, va_list ap, int err) {
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "crmigrate-restore: ");
  n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  if (err) n += snprintf(buf + n, sizeof buf - (size_t)n, ": %s", strerror(err));
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  write_full(g_err_fd, buf, (size_t)n);
}

void report(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(fmt, ap, 0);
  va_end(ap);
}

void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(fmt, ap, 0);
  va_end(ap);
  _exit(1);
}

void die_errno(const char *fmt, ...) {
  int e = errno;
  va_list ap;
  va_start(ap, fmt);
  vreport(fmt, ap, e);
  va_end(ap);
  _exit(1);
}

int read_full(int fd, void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t r = read(fd, (char *)buf + done, len - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) {
      if (done == 0) return 1;
      errno = EPIPE;
      return -1;
    }
    done += (size_t)r;
  }
  return 0;
}

int write_full(int fd, const void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t r = write(fd, (const char *)buf + done, len - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    done += (size_t)r;
  }
  return 0;
}

long fork_with_pid(int pid) {
  pid_t tid = pid;
  struct clone_args ca = {0};
  ca.exit_signal = SIGCHLD;
  ca.set_tid = (uint64_t)&tid;
  ca.set_tid_size = 1;
  long r = syscall(SYS_clone3, &ca, sizeof ca);
  if (r < 0 && errno == EEXIST) {
    report("PID %d is already in use on this host", pid);
    _exit(EXIT_PID_TAKEN);
  }
  if (r < 0) die_errno("clone3 with PID %d", pid);
  return r;
}

uint8_t *read_section(int fd, const void *head, size_t head_len, size_t total) {
  uint8_t *buf = aligned_alloc(64, page_up(total));
  if (!buf) return NULL;
  memcpy(buf, head, head_len);
  if (read_full(fd, buf + head_len, total - head_len)) {
    free(buf);
    errno = EIO;
    return NULL;
  }
  return buf;
}
