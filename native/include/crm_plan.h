/*
 * The restore plan: what crmigrate (TypeScript) hands to crmigrate-restore
 * (C) on its standard input, followed by the page stream.
 *
 * Defined once here; src/restore/plan-codec.ts encodes exactly this layout
 * and test/vectors/plan-v1.bin is the shared test vector both sides check.
 * All integers are little-endian, all structs are naturally aligned with
 * explicit padding, and every offset/count is validated by the reader.
 *
 * Layout: header | task | vmas[] | fds[] | siginfos[] | xsave | strings | threads[] | inherited[]
 * The task's own fields describe its main thread; threads[] are the others.
 * The xsave section holds one area per thread: main thread first, then
 * threads[] in order, each xsave_size bytes.
 * Strings are referenced by byte offset into the string table and are
 * NUL-terminated inside it; offset 0 is the empty string.
 * inherited[] lists the pages the task still shares copy-on-write with its
 * parent: each VMA holding one takes the parent's restored VMA (inherited
 * by fork) instead of a fresh mapping, and keeps only those of its pages.
 *
 * After the plan, the page stream: a sequence of crm_chunk headers, each
 * followed by `len` bytes for CRM_CHUNK_PAGES (or by the file offset of
 * those bytes for CRM_CHUNK_FILE), ended by CRM_CHUNK_END.
 *
 * The whole input for a process tree:
 *   tree section (crm_tree_header | tasks[] | objects[] | strings)
 *   for every CRM_OBJ_SHMEM object, in order: its page chunks (address =
 *     byte offset in the object), CRM_CHUNK_END
 *   for every live task (not zombie, not helper), in tree order: its plan,
 *     its page chunks, CRM_CHUNK_END
 * Once every task is complete the restorer reports READY on stdout and
 * waits for one command byte: 'G' (let the tree run) or anything else / EOF
 * (discard it).
 */
#ifndef CRM_PLAN_H
#define CRM_PLAN_H
#include <stdint.h>

#define CRM_PLAN_MAGIC 0x504d5243u /* "CRMP" */
#define CRM_PLAN_VERSION 5u
#define CRM_PLAN_MAX_SIZE (64u << 20)
#define CRM_MAX_VMAS 65536u
#define CRM_MAX_FDS 65536u
#define CRM_MAX_SIGINFO 65536u
#define CRM_MAX_XSAVE 65536u
#define CRM_MAX_THREADS 4096u
#define CRM_AUXV_WORDS 128u
#define CRM_NSIG 64u
#define CRM_MAX_GROUPS 64u
#define CRM_MAX_INHERITED (1u << 20)

enum crm_vma_kind {
  CRM_VMA_ANON_PRIVATE = 1,
  CRM_VMA_ANON_SHARED = 2,
  CRM_VMA_FILE_PRIVATE = 3,
  CRM_VMA_FILE_SHARED = 4,
  CRM_VMA_VDSO = 5,  /* [vdso]: moved into place, not mapped */
  CRM_VMA_VVAR = 6,  /* [vvar], [vvar_vclock]: move with the vdso */
};

/* crm_vma.vm_flags: the VmFlags bits of smaps that change behaviour. */
#define CRM_VM_GROWSDOWN (1u << 0)
#define CRM_VM_NORESERVE (1u << 1)
#define CRM_VM_DONTFORK (1u << 2)
#define CRM_VM_DONTDUMP (1u << 3)
#define CRM_VM_WIPEONFORK (1u << 4)
#define CRM_VM_HUGEPAGE (1u << 5)
#define CRM_VM_NOHUGEPAGE (1u << 6)
#define CRM_VM_LOCKED (1u << 7)
#define CRM_VM_DONTEXPAND (1u << 8)
#define CRM_VM_ACCOUNT (1u << 9)   /* charged to the commit limit ("ac") */

enum crm_fd_kind {
  CRM_FD_FILE = 1, /* regular file or character device, reopened by path */
  CRM_FD_DIR = 2,
  CRM_FD_PATH = 3, /* O_PATH descriptor */
};

/* crm_task.flags */
#define CRM_TASK_RSEQ (1u << 0)         /* rseq registered: re-register */
#define CRM_TASK_SESSION_LEADER (1u << 1)
#define CRM_TASK_GROUP_LEADER (1u << 2)

struct crm_plan_header {
  uint32_t magic, version;
  uint32_t total_size;   /* whole plan, header included */
  uint32_t header_size;  /* sizeof(struct crm_plan_header) */
  uint32_t task_offset, task_size;
  uint32_t vma_offset, vma_count;
  uint32_t fd_offset, fd_count;
  uint32_t siginfo_offset, siginfo_count;
  uint32_t xsave_offset, xsave_size;
  uint32_t strings_offset, strings_size;
  uint32_t thread_offset, thread_count;
  uint32_t inherited_offset, inherited_count;
};

struct crm_sigaction {
  uint64_t handler, flags, restorer, mask;
};

struct crm_itimer {
  uint64_t interval_sec, interval_usec, value_sec, value_usec;
};

/* Credentials, the same in every thread; each thread takes them last. */
struct crm_creds {
  uint32_t uid[4], gid[4];  /* real, effective, saved, filesystem */
  uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
  uint32_t securebits, no_new_privs;
  uint32_t dumpable, ngroups;
  uint32_t groups[CRM_MAX_GROUPS];
};

struct crm_task {
  int32_t pid, tid;
  uint32_t flags, personality;
  uint32_t umask, exe_path, cwd_path, root_path; /* paths: string offsets */
  char comm[16];
  /* prctl_mm_map fields, in its order */
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint32_t auxv_words, pad0;
  uint64_t auxv[CRM_AUXV_WORDS];
  uint64_t regs[27]; /* struct user_regs_struct, restart-adjusted */
  uint64_t blocked;
  struct crm_sigaction sigactions[CRM_NSIG]; /* index = signal - 1 */
  uint64_t altstack_sp, altstack_size;
  uint32_t altstack_flags, pad1;
  struct crm_itimer itimers[3]; /* ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF */
  uint64_t rseq_abi;
  uint32_t rseq_len, rseq_sig;
  uint64_t robust_list, robust_len, clear_child_tid;
  struct crm_creds creds;
};

/* Another thread of the task: what is per thread. */
struct crm_thread {
  int32_t tid;
  uint32_t pad;
  uint64_t regs[27];
  uint64_t blocked;
  uint64_t altstack_sp, altstack_size;
  uint32_t altstack_flags, rseq_len;
  uint64_t rseq_abi;
  uint32_t rseq_sig, pad2;
  uint64_t robust_list, robust_len, clear_child_tid;
  char comm[16];  /* thread name, NUL-terminated */
};

struct crm_vma {
  uint64_t start, end, pgoff;
  uint32_t kind, prot;       /* prot: PROT_* of the final mapping */
  uint32_t vm_flags, path;   /* path: string offset (file kinds) */
  uint32_t open_flags;       /* O_RDONLY / O_RDWR for the backing file */
  uint32_t object;           /* CRM_VMA_ANON_SHARED: id of its CRM_OBJ_SHMEM */
};

/* Pages [start, start + len) of a private VMA, taken from the parent. */
struct crm_range {
  uint64_t start, len;
};

struct crm_fd {
  int32_t fd;
  uint32_t kind;
  uint32_t flags;     /* open flags as in fdinfo, without O_CLOEXEC */
  uint32_t cloexec;   /* FD_CLOEXEC set */
  uint64_t pos;
  uint32_t path;      /* string offset */
  uint32_t share_id;  /* fds with the same nonzero id share one open file;
                         the id of a CRM_OBJ_FILE: shared with other tasks */
};

struct crm_siginfo {
  uint32_t shared; /* 1: process-wide queue, 0: the thread's own */
  int32_t tid;     /* for a thread's own: which thread */
  uint8_t raw[128];
};

/* CRM_CHUNK_PAGES: len bytes of page data follow. CRM_CHUNK_FILE: a u64
 * follows, the offset of the len bytes in the image file the restorer was
 * given (--image-fd); no page data in the stream. */
enum crm_chunk_kind { CRM_CHUNK_PAGES = 1, CRM_CHUNK_END = 2, CRM_CHUNK_FILE = 3 };

struct crm_chunk {
  uint64_t addr;
  uint32_t len;  /* bytes following, page aligned, at most CRM_CHUNK_MAX */
  uint32_t kind;
};
#define CRM_CHUNK_MAX (64u << 20)

/* ---- the tree section ---- */
#define CRM_TREE_MAGIC 0x54524d43u /* "CMRT" */
#define CRM_TREE_VERSION 1u
#define CRM_MAX_TASKS 4096u
#define CRM_MAX_OBJECTS 65536u
#define CRM_TREE_MAX_SIZE (16u << 20)

struct crm_tree_header {
  uint32_t magic, version;
  uint32_t total_size, header_size;
  uint32_t task_count, object_count;
  uint32_t strings_size;
  int32_t max_fd; /* highest descriptor number of any task */
};

/* crm_tree_task.flags: what the task does while the tree is built. */
#define CRM_TREE_SESSION_LEADER (1u << 0) /* setsid() when created */
#define CRM_TREE_GROUP_LEADER (1u << 1)   /* setpgid(0, 0) when created */
#define CRM_TREE_JOIN_GROUP (1u << 2)     /* setpgid(0, pgid) once every task exists */
#define CRM_TREE_ZOMBIE (1u << 3)         /* exits with its status once the tree is built */
#define CRM_TREE_HELPER (1u << 4)         /* holds a process group whose leader is gone; exits, reaped by its parent */

/* Tasks in tree order: every task after its parent; tasks[0] is the root. */
struct crm_tree_task {
  int32_t pid, ppid, pgid, sid;
  uint32_t flags, nthreads; /* nthreads: of a live task, main included */
  int32_t exit_code;        /* zombie: exit status code, or ... */
  int32_t exit_signal;      /* ... the signal that killed it (nonzero) */
};

enum crm_object_kind {
  CRM_OBJ_SHMEM = 1, /* anonymous shared memory (MAP_SHARED|MAP_ANONYMOUS) */
  CRM_OBJ_FILE = 2,  /* an open file description shared between tasks */
  CRM_OBJ_SYSV = 3,  /* a System V shared memory segment removed (IPC_RMID) but attached */
};

/* Objects shared between tasks: made once, before any task, inherited by all. */
struct crm_object {
  uint32_t id, kind;
  uint64_t size;     /* SHMEM, SYSV: bytes (SHMEM: page aligned) */
  uint64_t pos;      /* FILE: offset */
  uint32_t path;     /* FILE: tree string offset */
  uint32_t flags;    /* FILE: open flags; SYSV: permission bits */
  uint32_t fd_kind;  /* FILE: enum crm_fd_kind */
  int32_t shmid;     /* SYSV: its id, recreated as it was */
  uint32_t uid, gid; /* SYSV: owner */
};

#endif
