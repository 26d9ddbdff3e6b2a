// PAGEMAP_SCAN (linux/fs.h of 6.7+, absent from the 6.1 uapi headers of
// Debian 12): the categories, the argument, and one walk over a range.
#ifndef CRM_ADDON_PAGEMAP_SCAN_H
#define CRM_ADDON_PAGEMAP_SCAN_H
#include <napi.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "errors.h"

namespace crm {

constexpr uint64_t kPageIsWritten = 1 << 1;  // bit 0 is PAGE_IS_WPALLOWED
constexpr uint64_t kPageIsFile = 1 << 2;
constexpr uint64_t kPageIsPresent = 1 << 3;
constexpr uint64_t kPageIsSwapped = 1 << 4;
constexpr uint64_t kPageIsPfnZero = 1 << 5;
constexpr uint64_t kScanWpMatching = 1 << 0;
constexpr uint64_t kScanCheckWpAsync = 1 << 1;

struct PageRegion { uint64_t start, end, categories; };
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define CRM_PAGEMAP_SCAN _IOWR('f', 16, struct crm::PmScanArg)

// Walks [start, end) with the flags and category masks of `query` (its
// range and output fields are set here), appending the matching regions to
// out as [start, end) pairs, adjacent ones merged. 0, or the errno.
inline int ScanRegions(int fd, uint64_t start, uint64_t end, const PmScanArg &query, std::vector<double> &out) {
  std::vector<PageRegion> vec(4096);
  while (start < end) {
    PmScanArg a = query;
    a.size = sizeof a;
    a.start = start;
    a.end = end;
    a.walk_end = 0;
    a.vec = (uintptr_t)vec.data();
    a.vec_len = vec.size();
    long n = ioctl(fd, CRM_PAGEMAP_SCAN, &a);
    if (n < 0) return errno;
    for (long i = 0; i < n; i++) {
      if (!out.empty() && out.back() == (double)vec[i].start) {
        out.back() = (double)vec[i].end;
      } else {
        out.push_back((double)vec[i].start);
        out.push_back((double)vec[i].end);
      }
    }
    if (a.walk_end <= start) break;
    start = a.walk_end;
  }
  return 0;
}

// ScanRegions for JavaScript: a Float64Array of the [start, end) pairs, or
// the exception naming `what`.
inline Napi::Value ScanRegionsJs(Napi::Env env, int fd, uint64_t start, uint64_t end, const PmScanArg &query, const char *what) {
  std::vector<double> out;
  if (int err = ScanRegions(fd, start, end, query, out)) {
    ThrowErrno(env, what, err);
    return env.Undefined();
  }
  auto arr = Napi::Float64Array::New(env, out.size());
  for (size_t i = 0; i < out.size(); i++) arr[i] = out[i];
  return arr;
}

}  // namespace crm
#endif
