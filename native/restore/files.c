/* Restoring the task's file descriptors, working directory and root. */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* Flags that only matter at open time and must not be replayed. */
#define OPEN_ONLY_FLAGS (O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)

int open_description(const char *path, uint32_t kind, uint32_t oflags, uint64_t pos) {
  int flags = (int)oflags & ~OPEN_ONLY_FLAGS;
  if (kind == CRM_FD_PATH) flags = O_PATH | (flags & (O_NOFOLLOW | O_DIRECTORY));
  if (kind == CRM_FD_DIR) flags |= O_DIRECTORY;
  int fd = open(path, flags | O_CLOEXEC);
  if (fd < 0) die_errno("cannot reopen %s", path);
  if (kind != CRM_FD_PATH && pos) {
    struct stat st;
    if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) &&
        lseek(fd, (off_t)pos, SEEK_SET) < 0)
      die_errno("cannot seek %s to %llu", path, (unsigned long long)pos);
  }
  return fd;
}

void restore_fds(const struct plan *p, const struct tree *t) {
  uint32_t n = p->hdr->fd_count;
  /* share_id -> the target fd that already holds that open file */
  int *holder = calloc(n + 1, sizeof *holder);
  uint32_t *ids = calloc(n + 1, sizeof *ids);
  uint32_t nheld = 0;
  if (!holder || !ids) die("out of memory");
  for (uint32_t i = 0; i < n; i++) {
    const struct crm_fd *f = &p->fds[i];
    int src = -1;
    for (uint32_t k = 0; f->share_id && k < nheld; k++)
      if (ids[k] == f->share_id) src = holder[k];
    if (src < 0 && f->share_id) src = tree_object_fd(t, f->share_id); /* shared with other tasks */
    if (src >= 0) {
      if (dup2(src, f->fd) < 0) die_errno("dup2 to descriptor %d", f->fd);
    } else {
      int fd = open_description(plan_str(p, f->path), f->kind, f->flags, f->pos);
      if (fd != f->fd) {
        if (dup2(fd, f->fd) < 0) die_errno("dup2 to descriptor %d", f->fd);
        close(fd);
      }
      if (f->share_id) {
        ids[nheld] = f->share_id;
        holder[nheld++] = f->fd;
      }
    }
    if (fcntl(f->fd, F_SETFD, f->cloexec ? FD_CLOEXEC : 0) < 0) die_errno("fcntl(F_SETFD) on %d", f->fd);
  }
  free(holder);
  free(ids);
}

void restore_fs_context(const struct plan *p) {
  const char *root = plan_str(p, p->task->root_path);
  const char *cwd = plan_str(p, p->task->cwd_path);
  if (cwd[0] && chdir(cwd) < 0) die_errno("cannot enter working directory %s", cwd);
  if (root[0] && strcmp(root, "/") != 0 && chroot(root) < 0) die_errno("cannot chroot to %s", root);
}
