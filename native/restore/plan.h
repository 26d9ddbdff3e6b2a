/* Loading and validating the restore plan (see include/crm_plan.h). */
#ifndef CRM_RESTORE_PLAN_H
#define CRM_RESTORE_PLAN_H
#include <stddef.h>
#include <stdio.h>

#include "../include/crm_plan.h"

struct plan {
  uint8_t *buf;
  size_t size;
  const struct crm_plan_header *hdr;
  const struct crm_task *task;
  const struct crm_vma *vmas;
  const struct crm_fd *fds;
  const struct crm_siginfo *siginfos;
  const uint8_t *xsave;
  const char *strings;
  const struct crm_thread *threads;
  const struct crm_range *inherited;
};

/* Reads the plan from fd and validates every field; on failure writes a
 * one-line reason into err and returns -1. */
int plan_load(int fd, struct plan *p, char *err, size_t errlen);
/* Validates an in-memory plan (takes ownership of buf). */
int plan_parse(uint8_t *buf, size_t size, struct plan *p, char *err, size_t errlen);
const char *plan_str(const struct plan *p, uint32_t off);
/* Index of the VMA holding [addr, addr + len), or -1. */
int plan_find_vma(const struct plan *p, uint64_t addr, uint64_t len);
/* Prints a canonical text form (used by the shared test vector). */
void plan_print(const struct plan *p, FILE *out);
#endif
