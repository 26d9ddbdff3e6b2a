/* Small helpers shared by the parts of crmigrate-restore. */
#ifndef CRM_RESTORE_UTIL_H
#define CRM_RESTORE_UTIL_H
#include <stddef.h>
#include <stdint.h>

#define PAGE_SIZE_BYTES 4096ULL
#define TASK_SIZE_LIMIT 0x7ffffffff000ULL
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* The descriptor error messages go to (stderr until the child moves it). */
extern int g_err_fd;

/* Prints "crmigrate-restore: <message>" on one line and exits 1. */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
/* Same, with ": <strerror(errno)>" appended. */
__attribute__((noreturn, format(printf, 1, 2))) void die_errno(const char *fmt, ...);
void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads exactly len bytes; returns 0, 1 on clean EOF before any byte, -1 on error/short read. */
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);

/* fork() with the given PID (clone3 set_tid, SIGCHLD on exit); as fork:
 * 0 in the child, the PID in the parent; on failure the process exits
 * (EXIT_PID_TAKEN when the PID is in use). */
#define EXIT_PID_TAKEN 2
long fork_with_pid(int pid);
/* Reads the rest of a sized section whose header (head_len bytes) is read:
 * returns the whole section in a new buffer (aligned), or NULL with errno
 * (ENOMEM, or EIO when it ends early). */
uint8_t *read_section(int fd, const void *head, size_t head_len, size_t total);

static inline uint64_t page_up(uint64_t v) { return (v + PAGE_SIZE_BYTES - 1) & ~(PAGE_SIZE_BYTES - 1); }
#endif
