#ifndef CRM_RESTORE_FILES_H
#define CRM_RESTORE_FILES_H
#include "plan.h"
#include "tree.h"
/* Opens one open file description as the image describes it (close-on-exec). */
int open_description(const char *path, uint32_t kind, uint32_t flags, uint64_t pos);
/* Opens every descriptor at its number with its flags, offset and sharing;
 * descriptions shared with other tasks come from the tree's objects. */
void restore_fds(const struct plan *p, const struct tree *t);
/* chdir/chroot as the task had them. */
void restore_fs_context(const struct plan *p);
#endif
