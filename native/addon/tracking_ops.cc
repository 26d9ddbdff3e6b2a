// Tracking the pages a running task writes, for a pre-copy dump: a
// userfaultfd made inside the task (injected; it binds to the caller's mm)
// is taken over with pidfd_getfd, registered write-protect with WP_ASYNC (the
// kernel resolves each first write itself and the page shows as written),
// and PAGEMAP_SCAN on /proc/PID/pagemap lists and re-protects written pages.
// The kernel has no soft-dirty bits here (CONFIG_MEM_SOFT_DIRTY is off).
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#include "errors.h"
#include "pagemap_scan.h"

namespace crm {
namespace {

// linux/userfaultfd.h of 6.7+, absent from Debian 12's headers.
constexpr uint64_t kWpAsync = 1 << 15;

// pidfdGetfd(pid, fd) -> our copy of the task's descriptor fd.
Napi::Value PidfdGetfd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int pidfd = (int)syscall(SYS_pidfd_open, ToInt(info[0]), 0);
  if (pidfd < 0) {
    ThrowErrno(env, "pidfd_open", errno);
    return env.Undefined();
  }
  int fd = (int)syscall(SYS_pidfd_getfd, pidfd, ToInt(info[1]), 0);
  int err = errno;
  close(pidfd);
  return FdOrThrow(env, fd, "pidfd_getfd", err);
}

// uffdEnableWpAsync(uffd): UFFDIO_API with asynchronous write-protect.
// Without WP_UNPOPULATED: a page populated after the protection is simply
// unprotected, so it shows as written, which is what a pre-copy needs (no
// marker is left in every empty slot of an anonymous mapping).
Napi::Value UffdEnableWpAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct uffdio_api api = {};
  api.api = UFFD_API;
  api.features = kWpAsync;
  if (ioctl(ToInt(info[0]), UFFDIO_API, &api) < 0) ThrowErrno(env, "ioctl(UFFDIO_API, WP_ASYNC)", errno);
  return env.Undefined();
}

// uffdRegisterWp(uffd, start, len) -> 0, or the errno why the kernel will
// not track that range (the caller then treats all of it as written).
Napi::Value UffdRegisterWp(const Napi::CallbackInfo &info) {
  struct uffdio_register r = {};
  r.range.start = ToU64(info[1]);
  r.range.len = ToU64(info[2]);
  r.mode = UFFDIO_REGISTER_MODE_WP;
  int rc = ioctl(ToInt(info[0]), UFFDIO_REGISTER, &r) < 0 ? errno : 0;
  return Napi::Number::New(info.Env(), rc);
}

// writtenPages(pagemapFd, start, end, reprotect) -> Float64Array of
// [start, end) pairs written since they were last protected; with
// reprotect, they are protected again in the same walk (PM_SCAN_WP_MATCHING).
Napi::Value WrittenPages(const Napi::CallbackInfo &info) {
  int fd = ToInt(info[0]);
  uint64_t start = ToU64(info[1]), end = ToU64(info[2]);
  bool reprotect = info[3].ToBoolean().Value();
  PmScanArg q = {};
  q.flags = kScanCheckWpAsync | (reprotect ? kScanWpMatching : 0);
  q.category_mask = kPageIsWritten;
  q.return_mask = kPageIsWritten;
  return ScanRegionsJs(info.Env(), fd, start, end, q, "ioctl(PAGEMAP_SCAN, written pages)");
}

}  // namespace

void InitTracking(Napi::Env env, Napi::Object exports) {
  exports.Set("pidfdGetfd", Napi::Function::New(env, PidfdGetfd));
  exports.Set("uffdEnableWpAsync", Napi::Function::New(env, UffdEnableWpAsync));
  exports.Set("uffdRegisterWp", Napi::Function::New(env, UffdRegisterWp));
  exports.Set("writtenPages", Napi::Function::New(env, WrittenPages));
}

}  // namespace crm
