// Reading a frozen task's memory: which pages are present (PAGEMAP_SCAN on
// /proc/PID/pagemap) and their bytes (pread of /proc/PID/mem). Reads of page
// data run on libuv worker threads: /proc/PID/mem does not need the tracer
// thread, and unlike process_vm_readv it does not un-share copy-on-write pages.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <vector>

#include "../common/crc32c.h"
#include "errors.h"
#include "pagemap_scan.h"

namespace crm {
namespace {

Napi::Value OpenProcFile(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t pid = ToInt(info[0]);
  std::string name = info[1].As<Napi::String>().Utf8Value();
  bool write = info.Length() > 2 && info[2].ToBoolean().Value();
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  int fd = open(path.c_str(), (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  int err = errno; // before the message is built
  return FdOrThrow(env, fd, "open(" + path + ")", err);
}

Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  close(ToInt(info[0]));
  return info.Env().Undefined();
}

// scanPages(pagemapFd, start, end, excludeFilePages, presentOnly) ->
// Float64Array of [start, end) pairs of pages holding data: present or
// swapped (only present with presentOnly: a write-protect marker of
// userfaultfd also counts as swapped), not the shared zero page, and (for
// private file mappings) not page-cache pages.
Napi::Value ScanPages(const Napi::CallbackInfo &info) {
  int fd = ToInt(info[0]);
  uint64_t start = ToU64(info[1]), end = ToU64(info[2]);
  bool exclude_file = info[3].ToBoolean().Value();
  bool present_only = info.Length() > 4 && info[4].ToBoolean().Value();
  PmScanArg q = {};
  q.category_inverted = kPageIsPfnZero | (exclude_file ? kPageIsFile : 0);
  q.category_mask = kPageIsPfnZero | (exclude_file ? kPageIsFile : 0);
  q.category_anyof_mask = kPageIsPresent | (present_only ? 0 : kPageIsSwapped);
  q.return_mask = kPageIsPresent | kPageIsSwapped;
  // (regions that differ only in present/swapped are merged)
  return ScanRegionsJs(info.Env(), fd, start, end, q, "ioctl(PAGEMAP_SCAN)");
}

// Reads a list of [addr, len] ranges of /proc/PID/mem back to back into one
// buffer, off the main thread; resolves to the CRC-32C of each range.
class ReadRangesWorker : public Napi::AsyncWorker {
 public:
  ReadRangesWorker(Napi::Env env, int fd, Napi::Buffer<uint8_t> dest, std::vector<uint64_t> ranges)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd),
        dest_ref_(Napi::Persistent(dest)), data_(dest.Data()), cap_(dest.Length()),
        ranges_(std::move(ranges)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  // Reads in pieces of at most kPiece bytes and checksums each piece right
  // after it is read, while it is still in the CPU cache.
  static constexpr uint64_t kPiece = 1 << 20;

  void Execute() override {
    size_t off = 0;
    for (size_t i = 0; i + 1 < ranges_.size(); i += 2) {
      uint64_t addr = ranges_[i], len = ranges_[i + 1];
      if (len > cap_ - off) { SetError("readRanges: ranges exceed the buffer"); return; }
      uint64_t done = 0;
      uint32_t crc = 0;
      while (done < len) {
        uint64_t want = len - done < kPiece ? len - done : kPiece;
        ssize_t r = pread(fd_, data_ + off + done, want, (off_t)(addr + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
          err_ = r < 0 ? errno : EIO;
          char msg[96];
          snprintf(msg, sizeof msg, "pread(/proc/PID/mem @0x%llx)", (unsigned long long)(addr + done));
          where_ = msg;
          SetError("x");
          return;
        }
        crc = Crc32c(crc, data_ + off + done, (size_t)r);
        done += (uint64_t)r;
      }
      crcs_.push_back(crc);
      off += len;
    }
  }

  void OnOK() override {
    auto arr = Napi::Uint32Array::New(Env(), crcs_.size());
    for (size_t i = 0; i < crcs_.size(); i++) arr[i] = crcs_[i];
    deferred_.Resolve(arr);
  }

  void OnError(const Napi::Error &e) override {
    if (err_) {
      deferred_.Reject(ErrnoError(Env(), where_, err_).Value());
    } else {
      deferred_.Reject(e.Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  Napi::Reference<Napi::Buffer<uint8_t>> dest_ref_;
  uint8_t *data_;
  size_t cap_;
  std::vector<uint64_t> ranges_;
  std::vector<uint32_t> crcs_;
  int err_ = 0;
  std::string where_;
};

Napi::Value ReadRanges(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = ToInt(info[0]);
  auto dest = info[1].As<Napi::Buffer<uint8_t>>();
  auto arr = info[2].As<Napi::Float64Array>();
  std::vector<uint64_t> ranges(arr.ElementLength());
  for (size_t i = 0; i < ranges.size(); i++) {
    double v = arr[i];
    if (!(v >= 0 && v <= 9007199254740992.0) || v != (double)(uint64_t)v) {
      Napi::TypeError::New(env, "readRanges: ranges must be non-negative integers").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    ranges[i] = (uint64_t)v;
  }
  auto *w = new ReadRangesWorker(env, fd, dest, std::move(ranges));
  auto p = w->Promise();
  w->Queue();
  return p;
}

// Image files are read through read-only shared mappings: a record is then a
// view of the page cache, checksummed in place (the restorer maps the same
// file and takes the page data from it itself). Pages we are done with
// are dropped from our address space (MADV_DONTNEED: they stay in the page
// cache and a later access reads them again), so our RSS stays flat.
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

struct Mapping {
  uintptr_t base;
  size_t len;
};
std::mutex g_maps_mu;
std::vector<Mapping> g_maps;  // the live mappings made by mapFile

bool InMapping(const uint8_t *p, size_t n) {
  uintptr_t a = (uintptr_t)p;
  std::lock_guard<std::mutex> lock(g_maps_mu);
  for (const Mapping &m : g_maps)
    if (a >= m.base && n <= m.len && a - m.base <= m.len - n) return true;
  return false;
}

// mapFile(fd, offset, length) -> Buffer over a read-only MAP_SHARED mapping
// (unmapped when the Buffer is collected). offset must be page aligned.
Napi::Value MapFile(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = ToInt(info[0]);
  uint64_t off = ToU64(info[1]), len = ToU64(info[2]);
  long page = sysconf(_SC_PAGESIZE);
  if (len == 0 || off % (uint64_t)page || off > (1ull << 62) || len > (1ull << 40)) {
    Napi::RangeError::New(env, "mapFile: bad offset or length").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  void *p = mmap(nullptr, (size_t)len, PROT_READ, MAP_SHARED, fd, (off_t)off);
  if (p == MAP_FAILED) {
    ThrowErrno(env, "mmap of the image file", errno);
    return env.Undefined();
  }
  {
    std::lock_guard<std::mutex> lock(g_maps_mu);
    g_maps.push_back({(uintptr_t)p, (size_t)len});
  }
  return Napi::Buffer<uint8_t>::New(
      env, (uint8_t *)p, (size_t)len,
      [](Napi::Env, uint8_t *data, size_t *hint) {
        size_t n = *hint;
        delete hint;
        {
          std::lock_guard<std::mutex> lock(g_maps_mu);
          for (size_t i = 0; i < g_maps.size(); i++)
            if (g_maps[i].base == (uintptr_t)data) {
              g_maps.erase(g_maps.begin() + (long)i);
              break;
            }
        }
        munmap(data, n);
      },
      new size_t((size_t)len));
}

// adviseMapped(view, what): view must lie in a mapping made by mapFile.
// 'release': drop its whole pages from our address space (MADV_DONTNEED);
// 'populate': map all its pages now (MADV_POPULATE_READ), so reading it takes
// no page faults; throws if the file no longer covers it.
Napi::Value AdviseMapped(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto view = info[0].As<Napi::Uint8Array>();
  std::string what = info[1].As<Napi::String>().Utf8Value();
  const uint8_t *p = view.Data();
  size_t n = view.ByteLength();
  if (n == 0) return env.Undefined();
  if (!InMapping(p, n)) {
    Napi::Error::New(env, "adviseMapped: not a view of a mapped image file").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t a = (uintptr_t)p, e = a + n;
  if (what == "release") {
    uintptr_t s = (a + page - 1) & ~(page - 1), t = e & ~(page - 1);  // whole pages inside only
    if (t > s) madvise((void *)s, t - s, MADV_DONTNEED);
  } else if (what == "populate") {
    uintptr_t s = a & ~(page - 1), t = (e + page - 1) & ~(page - 1);  // mappings are page aligned
    if (madvise((void *)s, t - s, MADV_POPULATE_READ) < 0 && errno != EINVAL) {
      ThrowErrno(env, "reading the mapped image file", errno);
      return env.Undefined();
    }
  } else {
    Napi::Error::New(env, "adviseMapped: unknown advice").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// The page stream to crmigrate-restore goes through a pipe of our own rather
// than a libuv stream: written with blocking write(2) on a worker thread, so
// the event loop never copies page data, and enlarged so that the restorer is woken once per megabyte
// rather than once per 64 KiB.

// makePipe(size) -> [readFd, writeFd], both close-on-exec and blocking; the
// pipe holds `size` bytes if the kernel allows it (else what it allows).
Napi::Value MakePipe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int size = info.Length() > 0 ? ToInt(info[0]) : 0;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    ThrowErrno(env, "pipe2", errno);
    return env.Undefined();
  }
  // Unprivileged callers are held to /proc/sys/fs/pipe-max-size: halve until it fits.
  for (int want = size; want >= (64 << 10); want /= 2)
    if (fcntl(fds[1], F_SETPIPE_SZ, want) >= 0) break;
  auto arr = Napi::Array::New(env, 2);
  arr.Set(0u, Napi::Number::New(env, fds[0]));
  arr.Set(1u, Napi::Number::New(env, fds[1]));
  return arr;
}

// memfdCreate(name) -> fd: an anonymous memory file (MFD_CLOEXEC) that can
// be handed to a child as a descriptor and mapped there.
Napi::Value MemfdCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  return FdOrThrow(env, fd, "memfd_create", errno);
}

// punchHole(fd, offset, len): frees that part of a file (memfd) that will
// never be read (fallocate PUNCH_HOLE, size kept).
Napi::Value PunchHole(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = ToInt(info[0]);
  double off = info[1].As<Napi::Number>().DoubleValue(), len = info[2].As<Napi::Number>().DoubleValue();
  if (off < 0 || len <= 0) {
    Napi::RangeError::New(env, "punchHole: bad offset or length").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0) ThrowErrno(env, "fallocate(PUNCH_HOLE)", errno);
  return env.Undefined();
}

// writeAll(fd, data) -> Promise<void>: writes every byte of data on a worker
// thread (blocking writes; EINTR and short writes retried, and a descriptor
// left non-blocking by whoever made it is waited on with poll).
class WriteAllWorker : public Napi::AsyncWorker {
 public:
  WriteAllWorker(Napi::Env env, int fd, Napi::Uint8Array data)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd),
        data_ref_(Napi::Persistent(data)), data_(data.Data()), len_(data.ByteLength()) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    size_t done = 0;
    while (done < len_) {
      ssize_t w = write(fd_, data_ + done, len_ - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) {
        struct pollfd p = {fd_, POLLOUT, 0};
        if (poll(&p, 1, -1) >= 0 || errno == EINTR) continue;
      }
      if (w <= 0) {
        err_ = w < 0 ? errno : EIO;
        SetError("x");
        return;
      }
      done += (size_t)w;
    }
  }

  void OnOK() override { deferred_.Resolve(Env().Undefined()); }

  void OnError(const Napi::Error &) override { deferred_.Reject(ErrnoError(Env(), "write", err_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  Napi::Reference<Napi::Uint8Array> data_ref_;
  const uint8_t *data_;
  size_t len_;
  int err_ = 0;
};

Napi::Value WriteAll(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = ToInt(info[0]);
  auto data = info[1].As<Napi::Uint8Array>();
  auto *w = new WriteAllWorker(env, fd, data);
  auto p = w->Promise();
  w->Queue();
  return p;
}

// startWriteback(fd, offset, len) -> Promise<void>: starts writing the dirty
// page cache of that file range to disk (sync_file_range WRITE, on a worker
// thread: it can wait for room in the device queue). A dump calls it as it
// goes, so the disk works while pages are still being read and the final
// fdatasync, inside the frozen window, has less left to do.
class WritebackWorker : public Napi::AsyncWorker {
 public:
  WritebackWorker(Napi::Env env, int fd, uint64_t offset, uint64_t len)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), offset_(offset), len_(len) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    while (sync_file_range(fd_, (off64_t)offset_, (off64_t)len_, SYNC_FILE_RANGE_WRITE) < 0) {
      if (errno == EINTR) continue;
      err_ = errno;
      SetError("x");
      return;
    }
  }

  void OnOK() override { deferred_.Resolve(Env().Undefined()); }

  void OnError(const Napi::Error &) override { deferred_.Reject(ErrnoError(Env(), "sync_file_range", err_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  uint64_t offset_, len_;
  int err_ = 0;
};

Napi::Value StartWriteback(const Napi::CallbackInfo &info) {
  auto *w = new WritebackWorker(info.Env(), ToInt(info[0]), ToU64(info[1]), ToU64(info[2]));
  auto p = w->Promise();
  w->Queue();
  return p;
}

// Small synchronous read of the task's memory (for the scratch page of
// injected syscalls). Returns a Buffer of exactly len bytes or throws.
Napi::Value ReadMem(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = ToInt(info[0]);
  uint64_t addr = ToU64(info[1]);
  size_t len = (size_t)ToU64(info[2]);
  std::vector<uint8_t> buf(len);
  ssize_t r = pread(fd, buf.data(), len, (off_t)addr);
  if (r != (ssize_t)len) {
    ThrowErrno(env, "pread(/proc/PID/mem)", r < 0 ? errno : EIO);
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, buf.data(), len);
}

Napi::Value Crc32cJs(const Napi::CallbackInfo &info) {
  uint32_t seed = info.Length() > 1 ? info[1].As<Napi::Number>().Uint32Value() : 0;
  auto buf = info[0].As<Napi::Uint8Array>();
  return Napi::Number::New(info.Env(), Crc32c(seed, buf.Data(), buf.ByteLength()));
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("openProcFile", Napi::Function::New(env, OpenProcFile));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("scanPages", Napi::Function::New(env, ScanPages));
  exports.Set("readRanges", Napi::Function::New(env, ReadRanges));
  exports.Set("readMem", Napi::Function::New(env, ReadMem));
  exports.Set("crc32c", Napi::Function::New(env, Crc32cJs));
  exports.Set("makePipe", Napi::Function::New(env, MakePipe));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate));
  exports.Set("punchHole", Napi::Function::New(env, PunchHole));
  exports.Set("writeAll", Napi::Function::New(env, WriteAll));
  exports.Set("startWriteback", Napi::Function::New(env, StartWriteback));
  exports.Set("mapFile", Napi::Function::New(env, MapFile));
  exports.Set("adviseMapped", Napi::Function::New(env, AdviseMapped));
}

}  // namespace crm
