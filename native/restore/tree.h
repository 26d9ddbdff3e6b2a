/* The process tree: its section of the restore input, the objects shared
 * between tasks, and the building of the tree (PIDs, parents, sessions,
 * process groups, zombies) before any task becomes itself. */
#ifndef CRM_RESTORE_TREE_H
#define CRM_RESTORE_TREE_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../include/crm_plan.h"

struct tree {
  uint8_t *buf;
  const struct crm_tree_header *hdr;
  const struct crm_tree_task *tasks;
  const struct crm_object *objects;
  const char *strings;
  uint32_t nexiting;  /* zombies and helpers: their exits are expected */
  /* Made by make_objects in the root task, inherited by every task. */
  int *object_fd;       /* FILE: descriptor number (same in every task) */
  uint64_t *object_map; /* SHMEM: address of our mapping */
  int fd_base;          /* first descriptor above every task's and object's (tree_fd_base) */
};

/* State shared by every task and the tracer (one MAP_SHARED page set). */
struct tree_ctl {
  uint32_t created;  /* tasks that exist (and made their children) */
  uint32_t joined;   /* tasks in their process group */
  uint32_t reaped;   /* zombie and helper exits seen by the tracer */
  uint32_t turn;     /* live task whose plan and pages come next on stdin */
  struct { uint64_t start, len; } region[CRM_MAX_TASKS]; /* each task's bootstrap region */
};

/* Reads and validates the tree section; on failure one line into err, -1. */
int tree_load(int fd, struct tree *t, char *err, size_t errlen);
int tree_parse(uint8_t *buf, size_t size, struct tree *t, char *err, size_t errlen);
const char *tree_str(const struct tree *t, uint32_t off);
/* The first descriptor above every task's and every shared file's. */
int tree_fd_base(const struct tree *t);
/* Opens the shared files (below fd_base) and maps and fills the shared
 * memory (from in_fd). Runs in the root task, before it makes any other:
 * the target's shared memory is never the tracer's. */
void make_objects(struct tree *t, int in_fd);
/* Index of a task by PID, or -1. */
int tree_find(const struct tree *t, int32_t pid);
/* Does task idx become itself (not a zombie or helper)? */
int tree_is_live(const struct tree *t, uint32_t idx);
/* Index among live tasks (the order of their plans), or -1. */
int tree_live_index(const struct tree *t, uint32_t idx);
uint64_t tree_object_map(const struct tree *t, uint32_t id, uint64_t *size);
int tree_object_fd(const struct tree *t, uint32_t id);

/* Runs in the root task, just created: every task takes its session or
 * group, loads its memory when it is its turn (load(idx): plan and pages
 * from stdin, then the turn passes on), and only then makes its children,
 * so they inherit the pages they share with it; then it waits for the rest
 * of the tree and exits (zombie, helper) or returns the index of the task
 * the calling process now is. */
uint32_t tree_build(const struct tree *t, struct tree_ctl *ctl, void (*load)(uint32_t idx));
/* Hands stdin to the next live task. */
void tree_pass_turn(struct tree_ctl *ctl);
/* Futex helpers on the shared page. */
void ctl_add(uint32_t *word);
void ctl_wait_at_least(uint32_t *word, uint32_t value);

void tree_print(const struct tree *t, FILE *out);
#endif
