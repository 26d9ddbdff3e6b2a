#ifndef CRM_RESTORE_MEMORY_H
#define CRM_RESTORE_MEMORY_H
#include <stdint.h>

#include "plan.h"
#include "restorer.h"
#include "tree.h"

struct own_range {
  uint64_t start, end;
  char name[32];
};

struct premap {
  uint64_t region_start, region_len;  /* premap area + bootstrap, one range */
  uint64_t *addr;                      /* premap address of each plan vma (0: not mapped) */
  struct rst_move *moves;              /* final moves, in plan order */
  uint32_t nmoves;
  uint64_t boot_start, boot_len;       /* bootstrap part at the end of the region */
  struct own_range own_special[RST_MAX_SPECIAL];
  uint32_t nown_special;
};

/* A task's plan and premapped memory. A child forked once its parent's
 * memory is in place inherits it, and with it the pages they share. */
struct task_memory {
  struct plan plan;
  struct premap pm;
};

/* Reserves one region free of both our own and the target's mappings and
 * maps every target VMA in it; bootstrap_len bytes at its end are left for
 * the restorer. VMAs with inherited pages are taken from the parent's. */
void premap_memory(const struct plan *p, const struct tree *t, uint64_t bootstrap_len, struct premap *pm,
                   const struct task_memory *parent);
/* Maps the image file the page stream may point into (CRM_CHUNK_FILE);
 * staged: a memfd whose pages are freed as they are used. */
void image_file_map(int fd, int staged);
/* Done with image data at src: its pages leave our page tables (not the
 * page cache), so they are not counted in our memory; staged pages are
 * freed. */
void image_file_done(const uint8_t *src, uint32_t len);
/* The next chunk header of the page stream, checked: 0 for CRM_CHUNK_END,
 * else 1 with *src the page data in the image file, or NULL when the len
 * bytes follow in the stream; dies on anything else. */
int next_chunk(int in_fd, struct crm_chunk *c, const uint8_t **src);
/* Copies len bytes of a chunk into writable memory at dst: from the image
 * file (src) or from the stream (src NULL). */
void copy_in(uint8_t *dst, const uint8_t *src, int in_fd, uint32_t len);
/* Reads the page stream into the premapped memory until CRM_CHUNK_END. */
void fill_pages(const struct plan *p, const struct premap *pm, int in_fd);
/* Lists our own mappings, sorted. */
uint32_t own_mappings(struct own_range *out, uint32_t max);
#endif
