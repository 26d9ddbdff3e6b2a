#ifndef CRM_RESTORE_FILES_H
#define CRM_RESTORE_FILES_H
#include "plan.h"
/* Opens every descriptor at its number with its flags, offset and sharing. */
void restore_fds(const struct plan *p);
/* chdir/chroot as the task had them. */
void restore_fs_context(const struct plan *p);
#endif
