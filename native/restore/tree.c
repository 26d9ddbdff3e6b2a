/* The process tree: loading its section, the shared objects, and building
 * the tree with every PID, parent, session and process group in place.
 *
 * Every task descends from crmigrate-restore by fork, so objects made here
 * before the root is created (shared memory mappings, shared open files) are
 * inherited by all of them; each task takes what its plan names. */
#include "tree.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "memory.h"
#include "util.h"

#define FAIL(...)                            \
  do {                                       \
    snprintf(err, errlen, __VA_ARGS__);      \
    return -1;                               \
  } while (0)

#define TREE_FLAGS_ALL \
  (CRM_TREE_SESSION_LEADER | CRM_TREE_GROUP_LEADER | CRM_TREE_JOIN_GROUP | CRM_TREE_ZOMBIE | CRM_TREE_HELPER)

const char *tree_str(const struct tree *t, uint32_t off) { return t->strings + off; }

int tree_find(const struct tree *t, int32_t pid) {
  for (uint32_t i = 0; i < t->hdr->task_count; i++)
    if (t->tasks[i].pid == pid) return (int)i;
  return -1;
}

static int exits(const struct crm_tree_task *k) { return (k->flags & (CRM_TREE_ZOMBIE | CRM_TREE_HELPER)) != 0; }

int tree_is_live(const struct tree *t, uint32_t idx) { return !exits(&t->tasks[idx]); }

int tree_live_index(const struct tree *t, uint32_t idx) {
  if (idx >= t->hdr->task_count || exits(&t->tasks[idx])) return -1;
  int n = 0;
  for (uint32_t i = 0; i < idx; i++) n += !exits(&t->tasks[i]);
  return n;
}

int tree_parse(uint8_t *buf, size_t size, struct tree *t, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  t->buf = buf;
  const struct crm_tree_header *h = (const void *)buf;
  if (size < sizeof *h) FAIL("restore tree section truncated");
  if (h->magic != CRM_TREE_MAGIC) FAIL("restore input does not start with a tree section");
  if (h->version != CRM_TREE_VERSION) FAIL("restore tree version %u is not supported (want %u)", h->version, CRM_TREE_VERSION);
  if (h->header_size != sizeof *h || h->total_size != size) FAIL("restore tree section has a bad size");
  if (h->task_count < 1 || h->task_count > CRM_MAX_TASKS) FAIL("restore tree has %u tasks", h->task_count);
  if (h->object_count > CRM_MAX_OBJECTS) FAIL("restore tree has too many shared objects");
  uint64_t need = sizeof *h + (uint64_t)h->task_count * sizeof(struct crm_tree_task) +
                  (uint64_t)h->object_count * sizeof(struct crm_object) + h->strings_size;
  if (need != size || h->strings_size < 1) FAIL("restore tree sections do not add up");
  if (h->max_fd < 2 || h->max_fd >= (1 << 20)) FAIL("restore tree descriptor range invalid");
  t->hdr = h;
  t->tasks = (const void *)(buf + sizeof *h);
  t->objects = (const void *)(buf + sizeof *h + (uint64_t)h->task_count * sizeof(struct crm_tree_task));
  t->strings = (const char *)(buf + size - h->strings_size);
  if (t->strings[0] || t->strings[h->strings_size - 1]) FAIL("restore tree string table not terminated");

  for (uint32_t i = 0; i < h->task_count; i++) {
    const struct crm_tree_task *k = &t->tasks[i];
    if (k->pid <= 0) FAIL("restore tree task %u has an invalid pid %d", i, k->pid);
    for (uint32_t j = 0; j < i; j++)
      if (t->tasks[j].pid == k->pid) FAIL("restore tree has PID %d twice", k->pid);
    if (k->flags & ~TREE_FLAGS_ALL) FAIL("restore tree task %d has unknown flags", k->pid);
    if ((k->flags & CRM_TREE_ZOMBIE) && (k->flags & CRM_TREE_HELPER)) FAIL("restore tree task %d is both zombie and helper", k->pid);
    if ((k->flags & CRM_TREE_SESSION_LEADER) && k->sid != k->pid) FAIL("restore tree task %d leads a session that is not its own", k->pid);
    if ((k->flags & CRM_TREE_GROUP_LEADER) && k->pgid != k->pid) FAIL("restore tree task %d leads a group that is not its own", k->pid);
    if ((k->flags & CRM_TREE_JOIN_GROUP) && (k->flags & (CRM_TREE_GROUP_LEADER | CRM_TREE_SESSION_LEADER)))
      FAIL("restore tree task %d both leads and joins a group", k->pid);
    if ((k->flags & CRM_TREE_HELPER) && !(k->flags & CRM_TREE_GROUP_LEADER)) FAIL("restore tree helper %d leads no group", k->pid);
    if (exits(k)) {
      if (k->nthreads != 0) FAIL("restore tree task %d exits but has threads", k->pid);
      if (k->exit_signal < 0 || k->exit_signal > 64 || k->exit_code < 0 || k->exit_code > 255)
        FAIL("restore tree zombie %d has an invalid exit status", k->pid);
      if (i == 0) FAIL("restore tree root cannot be a zombie or helper");
      t->nexiting++;
    } else if (k->nthreads < 1 || k->nthreads > CRM_MAX_THREADS + 1) {
      FAIL("restore tree task %d has %u threads", k->pid, k->nthreads);
    }
    if (i > 0) {
      int parent = -1;
      for (uint32_t j = 0; j < i; j++)
        if (t->tasks[j].pid == k->ppid) parent = (int)j;
      if (parent < 0) FAIL("restore tree task %d comes before its parent %d", k->pid, k->ppid);
      if (exits(&t->tasks[parent])) FAIL("restore tree task %d has a zombie or helper parent", k->pid);
    }
  }
  for (uint32_t i = 0; i < h->task_count; i++) {
    const struct crm_tree_task *k = &t->tasks[i];
    if (!(k->flags & CRM_TREE_JOIN_GROUP)) continue;
    int leader = tree_find(t, k->pgid);
    if (leader < 0 || !(t->tasks[leader].flags & (CRM_TREE_GROUP_LEADER | CRM_TREE_SESSION_LEADER)))
      FAIL("restore tree task %d joins group %d, which nobody leads", k->pid, k->pgid);
  }
  for (uint32_t i = 0; i < h->object_count; i++) {
    const struct crm_object *o = &t->objects[i];
    if (o->id == 0) FAIL("restore tree object %u has id 0", i);
    for (uint32_t j = 0; j < i; j++)
      if (t->objects[j].id == o->id && (t->objects[j].kind == CRM_OBJ_FILE) == (o->kind == CRM_OBJ_FILE))
        FAIL("restore tree has object %u twice", o->id);
    if (o->kind == CRM_OBJ_SHMEM || o->kind == CRM_OBJ_SYSV) {
      if (o->size == 0 || (o->kind == CRM_OBJ_SHMEM && o->size % PAGE_SIZE_BYTES) || o->size > (1ULL << 40))
        FAIL("restore tree shared memory %u has a bad size", o->id);
      if (o->kind == CRM_OBJ_SYSV && (o->shmid < 0 || o->flags > 0777)) FAIL("restore tree System V segment %u is invalid", o->id);
    } else if (o->kind == CRM_OBJ_FILE) {
      if (o->path >= h->strings_size || t->strings[o->path] != '/') FAIL("restore tree shared file %u has a bad path", o->id);
      if (o->fd_kind < CRM_FD_FILE || o->fd_kind > CRM_FD_PATH) FAIL("restore tree shared file %u has a bad kind", o->id);
    } else {
      FAIL("restore tree object %u has unknown kind %u", o->id, o->kind);
    }
  }
  return 0;
}

int tree_load(int fd, struct tree *t, char *err, size_t errlen) {
  struct crm_tree_header h;
  int r = read_full(fd, &h, sizeof h);
  if (r) FAIL(r > 0 ? "restore input is empty" : "restore tree section truncated");
  if (h.magic != CRM_TREE_MAGIC) FAIL("restore input does not start with a tree section");
  if (h.total_size < sizeof h || h.total_size > CRM_TREE_MAX_SIZE) FAIL("restore tree section size %u out of range", h.total_size);
  uint8_t *buf = read_section(fd, &h, sizeof h, h.total_size);
  if (!buf) FAIL(errno == ENOMEM ? "out of memory for the restore tree" : "restore tree section truncated");
  return tree_parse(buf, h.total_size, t, err, errlen);
}

uint64_t tree_object_map(const struct tree *t, uint32_t id, uint64_t *size) {
  for (uint32_t i = 0; i < t->hdr->object_count; i++)
    if (t->objects[i].id == id && (t->objects[i].kind == CRM_OBJ_SHMEM || t->objects[i].kind == CRM_OBJ_SYSV)) {
      *size = page_up(t->objects[i].size);
      return t->object_map[i];
    }
  return 0;
}

int tree_object_fd(const struct tree *t, uint32_t id) {
  for (uint32_t i = 0; i < t->hdr->object_count; i++)
    if (t->objects[i].id == id && t->objects[i].kind == CRM_OBJ_FILE) return t->object_fd[i];
  return -1;
}

/* The pages of one shared memory object, until CRM_CHUNK_END. */
static void fill_object(const struct crm_object *o, uint8_t *map, int in_fd) {
  uint64_t size = page_up(o->size);
  struct crm_chunk c;
  const uint8_t *src;
  while (next_chunk(in_fd, &c, &src)) {
    if (c.addr > size || c.len > size - c.addr)
      die("bad page chunk for shared memory %u (offset %llx, %u bytes)", o->id, (unsigned long long)c.addr, c.len);
    copy_in(map + c.addr, src, in_fd, c.len);
    if (src) image_file_done(src, c.len);
  }
}

static int set_shm_next_id(int id) {
  char v[16];
  int n = snprintf(v, sizeof v, "%d", id);
  int fd = open("/proc/sys/kernel/shm_next_id", O_WRONLY | O_CLOEXEC);
  int ok = fd >= 0 && write(fd, v, (size_t)n) == n;
  if (fd >= 0) close(fd);
  return ok ? 0 : -1;
}

/* A removed System V segment with its id, permissions and owner: created,
 * attached here (every task inherits the attachment) and removed at once,
 * as the original was: it goes away with its last attachment. */
static uint64_t make_sysv(const struct crm_object *o) {
  if (set_shm_next_id(o->shmid)) die_errno("setting the next System V shared memory id to %d", o->shmid);
  /* the kernel forgets shm_next_id once it has used it */
  int id = shmget(IPC_PRIVATE, o->size, IPC_CREAT | IPC_EXCL | (int)o->flags);
  if (id < 0) {
    int err = errno;
    set_shm_next_id(-1);
    errno = err;
    die_errno("recreating System V shared memory %d", o->shmid);
  }
  if (id != o->shmid) {
    shmctl(id, IPC_RMID, NULL);
    die("System V shared memory id %d is in use on this host", o->shmid);
  }
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) < 0) die_errno("shmctl(IPC_STAT) of %d", id);
  ds.shm_perm.uid = o->uid;
  ds.shm_perm.gid = o->gid;
  ds.shm_perm.mode = (unsigned short)o->flags;
  void *m = shmat(id, NULL, 0);
  if (m == (void *)-1 || shmctl(id, IPC_SET, &ds) < 0 || shmctl(id, IPC_RMID, NULL) < 0) {
    int e = errno;
    shmctl(id, IPC_RMID, NULL);
    errno = e;
    die_errno("setting up System V shared memory %d", id);
  }
  return (uint64_t)m;
}

int tree_fd_base(const struct tree *t) {
  int files = 0;
  for (uint32_t i = 0; i < t->hdr->object_count; i++) files += t->objects[i].kind == CRM_OBJ_FILE;
  return t->hdr->max_fd + 1 + files;
}

void make_objects(struct tree *t, int in_fd) {
  uint32_t n = t->hdr->object_count;
  t->object_fd = calloc(n + 1, sizeof *t->object_fd);
  t->object_map = calloc(n + 1, sizeof *t->object_map);
  if (!t->object_fd || !t->object_map) die("out of memory");
  int next = t->hdr->max_fd + 1;
  for (uint32_t i = 0; i < n; i++) {
    const struct crm_object *o = &t->objects[i];
    t->object_fd[i] = -1;
    if (o->kind == CRM_OBJ_FILE) {
      int fd = open_description(tree_str(t, o->path), o->fd_kind, o->flags, o->pos);
      /* the objects take the numbers from max_fd + 1 up, in order */
      int hi = fd == next ? fd : fcntl(fd, F_DUPFD, next);
      if (hi < 0) die_errno("placing shared file %s", tree_str(t, o->path));
      if (hi >= t->fd_base) die("no free descriptor below %d for shared file %s", t->fd_base, tree_str(t, o->path));
      if (hi != fd) close(fd);
      t->object_fd[i] = hi;
      next = hi + 1;
    } else if (o->kind == CRM_OBJ_SYSV) {
      t->object_map[i] = make_sysv(o);
    } else {
      /* MAP_SHARED|MAP_ANONYMOUS, like the original: the same kind of
       * object, named "/dev/zero (deleted)" in every task's maps. */
      void *m = mmap(NULL, o->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) die_errno("mapping %llu bytes of shared memory", (unsigned long long)o->size);
      t->object_map[i] = (uint64_t)m;
    }
  }
  for (uint32_t i = 0; i < n; i++)
    if (t->objects[i].kind == CRM_OBJ_SHMEM || t->objects[i].kind == CRM_OBJ_SYSV) fill_object(&t->objects[i], (uint8_t *)t->object_map[i], in_fd);
}

static void futex_wake(uint32_t *w) { syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0); }

void ctl_add(uint32_t *word) {
  __atomic_add_fetch(word, 1, __ATOMIC_SEQ_CST);
  futex_wake(word);
}

void ctl_wait_at_least(uint32_t *word, uint32_t value) {
  for (;;) {
    uint32_t cur = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    if (cur >= value) return;
    syscall(SYS_futex, word, FUTEX_WAIT, cur, NULL, NULL, 0);
  }
}

void tree_pass_turn(struct tree_ctl *ctl) { ctl_add(&ctl->turn); }

static __attribute__((noreturn)) void exit_as_zombie(const struct crm_tree_task *k) {
  if (k->exit_signal) {
    /* Killed by a signal, as the original was; no core file. */
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(k->exit_signal, &dfl, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, k->exit_signal);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    kill(getpid(), k->exit_signal);
  }
  _exit(k->exit_code);
}

uint32_t tree_build(const struct tree *t, struct tree_ctl *ctl, void (*load)(uint32_t idx)) {
  uint32_t n = t->hdr->task_count, idx = 0;
  /* SIGCHLD at its default and unblocked while the tree is built: the exits
   * of zombies and helpers leave nothing pending in their parents. */
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  sigaction(SIGCHLD, &dfl, NULL);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_UNBLOCK, &chld, NULL);
again:;
  const struct crm_tree_task *me = &t->tasks[idx];
  if (me->flags & CRM_TREE_SESSION_LEADER) {
    if (setsid() < 0) die_errno("setsid in task %d", me->pid);
  } else if (me->flags & CRM_TREE_GROUP_LEADER) {
    if (setpgid(0, 0) < 0) die_errno("setpgid in task %d", me->pid);
  }
  if (!exits(me)) {
    ctl_wait_at_least(&ctl->turn, (uint32_t)tree_live_index(t, idx));
    load(idx);
  }
  for (uint32_t c = idx + 1; c < n; c++) {
    if (t->tasks[c].ppid != me->pid) continue;
    if (fork_with_pid(t->tasks[c].pid) == 0) {
      idx = c;
      goto again;
    }
  }
  ctl_add(&ctl->created);
  ctl_wait_at_least(&ctl->created, n);
  if ((me->flags & CRM_TREE_JOIN_GROUP) && setpgid(0, me->pgid) < 0) die_errno("task %d joining process group %d", me->pid, me->pgid);
  ctl_add(&ctl->joined);
  ctl_wait_at_least(&ctl->joined, n);
  if (me->flags & CRM_TREE_ZOMBIE) exit_as_zombie(me);
  if (me->flags & CRM_TREE_HELPER) _exit(0);
  for (uint32_t c = idx + 1; c < n; c++) {
    if (t->tasks[c].ppid != me->pid || !(t->tasks[c].flags & CRM_TREE_HELPER)) continue;
    while (waitpid(t->tasks[c].pid, NULL, 0) < 0 && errno == EINTR) {}
  }
  ctl_wait_at_least(&ctl->reaped, t->nexiting);
  return idx;
}

void tree_print(const struct tree *t, FILE *out) {
  fprintf(out, "tree tasks=%u objects=%u max_fd=%d\n", t->hdr->task_count, t->hdr->object_count, t->hdr->max_fd);
  for (uint32_t i = 0; i < t->hdr->task_count; i++) {
    const struct crm_tree_task *k = &t->tasks[i];
    fprintf(out, "task pid=%d ppid=%d pgid=%d sid=%d flags=%u threads=%u exit=%d/%d\n", k->pid, k->ppid, k->pgid, k->sid, k->flags,
            k->nthreads, k->exit_code, k->exit_signal);
  }
  for (uint32_t i = 0; i < t->hdr->object_count; i++) {
    const struct crm_object *o = &t->objects[i];
    fprintf(out, "object id=%u kind=%u size=%llu pos=%llu path=%s flags=%o shmid=%d uid=%u gid=%u\n", o->id, o->kind,
            (unsigned long long)o->size, (unsigned long long)o->pos, o->kind == CRM_OBJ_FILE ? tree_str(t, o->path) : "", o->flags,
            o->shmid, o->uid, o->gid);
  }
}
