// ptrace operations of the dump: freezing a task, reading and writing its
// registers, signal state and rseq registration, and running single system
// calls inside it. All of these must be called from the thread that attached
// (the JS main thread), which is why they are synchronous.
#include <elf.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "errors.h"

namespace crm {
namespace {

// Not in glibc 2.36's <sys/ptrace.h> (and <linux/ptrace.h> clashes with it).
constexpr int kPtraceGetRseqConfiguration = 0x420f;
struct RseqConfiguration {
  uint64_t rseq_abi_pointer;
  uint32_t rseq_abi_size, signature, flags, pad;
};

// glibc's C++ prototype takes an enum; every request goes through here.
inline long Pt(int req, pid_t pid, void *addr, void *data) {
  return ptrace(static_cast<__ptrace_request>(req), pid, addr, data);
}

constexpr int kUserRegsSize = sizeof(struct user_regs_struct);

// Waits for the next stop of a tracee; returns the raw status or -errno.
int WaitStop(pid_t pid, int *status) {
  for (;;) {
    pid_t r = waitpid(pid, status, __WALL);
    if (r == pid) return 0;
    if (r < 0 && errno == EINTR) continue;
    return r < 0 ? -errno : -ECHILD;
  }
}

// seize(pid): PTRACE_SEIZE + PTRACE_INTERRUPT, waits until the task sits in
// PTRACE_EVENT_STOP. Signals that arrive first are noted and re-injected
// later by the caller through the pending-signal path (they stay pending
// because the task is stopped before it delivers them).
Napi::Value Seize(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t pid = ToInt(info[0]);
  if (Pt(PTRACE_SEIZE, pid, nullptr, (void *)(long)PTRACE_O_TRACESYSGOOD)) {
    ThrowErrno(env, "ptrace(SEIZE, " + std::to_string(pid) + ")", errno);
    return env.Undefined();
  }
  if (Pt(PTRACE_INTERRUPT, pid, nullptr, nullptr)) {
    int e = errno;
    Pt(PTRACE_DETACH, pid, nullptr, nullptr);
    ThrowErrno(env, "ptrace(INTERRUPT, " + std::to_string(pid) + ")", e);
    return env.Undefined();
  }
  for (;;) {
    int st = 0;
    int r = WaitStop(pid, &st);
    if (r < 0) {
      ThrowErrno(env, "waitpid(" + std::to_string(pid) + ")", -r);
      return env.Undefined();
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      ThrowErrno(env, "task " + std::to_string(pid) + " exited while being frozen", ESRCH);
      return env.Undefined();
    }
    if (!WIFSTOPPED(st)) continue;
    int event = st >> 16;
    if (event == PTRACE_EVENT_STOP) {
      Napi::Object res = Napi::Object::New(env);
      res.Set("stopSignal", Napi::Number::New(env, WSTOPSIG(st)));
      return res;
    }
    // A signal-delivery stop came first: keep the signal by resuming with it
    // suppressed is wrong (it would be lost), so resume with it and wait for
    // the interrupt stop; the signal is then delivered as the task would have.
    if (Pt(PTRACE_CONT, pid, nullptr, (void *)(long)WSTOPSIG(st))) {
      ThrowErrno(env, "ptrace(CONT, " + std::to_string(pid) + ")", errno);
      return env.Undefined();
    }
    if (Pt(PTRACE_INTERRUPT, pid, nullptr, nullptr)) {
      ThrowErrno(env, "ptrace(INTERRUPT, " + std::to_string(pid) + ")", errno);
      return env.Undefined();
    }
  }
}

Napi::Value Detach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t pid = ToInt(info[0]);
  long sig = info.Length() > 1 && info[1].IsNumber() ? ToInt(info[1]) : 0;
  if (Pt(PTRACE_DETACH, pid, nullptr, (void *)sig)) {
    ThrowErrno(env, "ptrace(DETACH, " + std::to_string(pid) + ")", errno);
  }
  return env.Undefined();
}

// Kills a frozen process and waits until each of its traced threads is gone
// (as tracer we see every exit; the main thread's is reported last).
Napi::Value KillTraced(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t pid = ToInt(info[0]);
  Napi::Array tids = info[1].As<Napi::Array>();
  if (kill(pid, SIGKILL)) {
    ThrowErrno(env, "kill(" + std::to_string(pid) + ")", errno);
    return env.Undefined();
  }
  for (uint32_t i = tids.Length(); i-- > 0;) {
    pid_t tid = ToInt(tids.Get(i));
    for (;;) {
      int st = 0;
      int r = WaitStop(tid, &st);
      if (r < 0) break;  // no longer ours to wait for: it is gone
      if (WIFEXITED(st) || WIFSIGNALED(st)) break;
      if (WIFSTOPPED(st)) Pt(PTRACE_CONT, tid, nullptr, nullptr);
    }
  }
  return env.Undefined();
}

Napi::Value GetRobustList(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t tid = ToInt(info[0]);
  unsigned long head = 0;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, tid, &head, &len)) {
    ThrowErrno(env, "get_robust_list(" + std::to_string(tid) + ")", errno);
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::BigInt::New(env, (uint64_t)head));
  out.Set(1u, Napi::BigInt::New(env, (uint64_t)len));
  return out;
}

Napi::Value GetRegSet(pid_t pid, int type, size_t max, Napi::Env env, const char *what) {
  std::vector<uint8_t> buf(max);
  struct iovec iov = {buf.data(), buf.size()};
  if (Pt(PTRACE_GETREGSET, pid, (void *)(long)type, &iov)) {
    ThrowErrno(env, std::string("ptrace(GETREGSET ") + what + ", " + std::to_string(pid) + ")", errno);
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, buf.data(), iov.iov_len);
}

Napi::Value GetRegs(const Napi::CallbackInfo &info) {
  return GetRegSet(ToInt(info[0]), NT_PRSTATUS, kUserRegsSize, info.Env(), "NT_PRSTATUS");
}

Napi::Value GetXstate(const Napi::CallbackInfo &info) {
  return GetRegSet(ToInt(info[0]), NT_X86_XSTATE, 64 * 1024, info.Env(), "NT_X86_XSTATE");
}

Napi::Value SetRegs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t pid = ToInt(info[0]);
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  if (buf.Length() != kUserRegsSize) {
    Napi::RangeError::New(env, "setRegs: register buffer must be 216 bytes").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct iovec iov = {buf.Data(), buf.Length()};
  if (Pt(PTRACE_SETREGSET, pid, (void *)(long)NT_PRSTATUS, &iov)) {
    ThrowErrno(env, "ptrace(SETREGSET NT_PRSTATUS, " + std::to_string(pid) + ")", errno);
  }
  return env.Undefined();
}

Napi::Value GetSigmask(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t pid = ToInt(info[0]);
  uint64_t mask = 0;
  if (Pt(PTRACE_GETSIGMASK, pid, (void *)sizeof mask, &mask)) {
    ThrowErrno(env, "ptrace(GETSIGMASK, " + std::to_string(pid) + ")", errno);
    return env.Undefined();
  }
  return Napi::BigInt::New(env, mask);
}

Napi::Value SetSigmask(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t pid = ToInt(info[0]);
  uint64_t mask = ToU64(info[1]);
  if (Pt(PTRACE_SETSIGMASK, pid, (void *)sizeof mask, &mask)) {
    ThrowErrno(env, "ptrace(SETSIGMASK, " + std::to_string(pid) + ")", errno);
  }
  return env.Undefined();
}

// Pending signals with their siginfo, without dequeuing them.
Napi::Value PeekSiginfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t pid = ToInt(info[0]);
  bool shared = info[1].As<Napi::Boolean>().Value();
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (;;) {
    struct __ptrace_peeksiginfo_args args = {n, shared ? (uint32_t)PTRACE_PEEKSIGINFO_SHARED : 0u, 32};
    siginfo_t si[32];
    long r = Pt(PTRACE_PEEKSIGINFO, pid, &args, si);
    if (r < 0) {
      ThrowErrno(env, "ptrace(PEEKSIGINFO, " + std::to_string(pid) + ")", errno);
      return env.Undefined();
    }
    if (r == 0) break;
    for (long i = 0; i < r; i++) out.Set(n++, Napi::Buffer<uint8_t>::Copy(env, (uint8_t *)&si[i], sizeof si[i]));
    if (n > 100000) break;  // RLIMIT_SIGPENDING bounds this in practice
  }
  return out;
}

Napi::Value GetRseq(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t pid = ToInt(info[0]);
  RseqConfiguration conf = {};
  if (Pt(kPtraceGetRseqConfiguration, pid, (void *)sizeof conf, &conf) < 0) {
    ThrowErrno(env, "ptrace(GET_RSEQ_CONFIGURATION, " + std::to_string(pid) + ")", errno);
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("abiPointer", Napi::BigInt::New(env, (uint64_t)conf.rseq_abi_pointer));
  o.Set("length", Napi::Number::New(env, conf.rseq_abi_size));
  o.Set("signature", Napi::Number::New(env, conf.signature));
  o.Set("flags", Napi::Number::New(env, conf.flags));
  return o;
}

// injectSyscall(pid, baseRegs, syscallInsnAddr, nr, [a1..a6]) -> bigint
// Runs one system call in the frozen task: the registers are set to baseRegs
// with rip at a `syscall` instruction, then the task is stepped from the
// entry stop to the exit stop. The caller restores the registers afterwards.
Napi::Value InjectSyscall(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t pid = ToInt(info[0]);
  auto base = info[1].As<Napi::Buffer<uint8_t>>();
  if (base.Length() != kUserRegsSize) {
    Napi::RangeError::New(env, "injectSyscall: register buffer must be 216 bytes").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct user_regs_struct r;
  memcpy(&r, base.Data(), sizeof r);
  r.rip = ToU64(info[2]);
  r.rax = ToU64(info[3]);
  r.orig_rax = (unsigned long long)-1;
  Napi::Array a = info[4].As<Napi::Array>();
  unsigned long long args[6] = {};
  for (uint32_t i = 0; i < 6 && i < a.Length(); i++) args[i] = ToU64(a.Get(i));
  r.rdi = args[0]; r.rsi = args[1]; r.rdx = args[2];
  r.r10 = args[3]; r.r8 = args[4]; r.r9 = args[5];
  if (Pt(PTRACE_SETREGS, pid, nullptr, &r)) {
    ThrowErrno(env, "ptrace(SETREGS, " + std::to_string(pid) + ")", errno);
    return env.Undefined();
  }
  for (int step = 0; step < 2; step++) {
    if (Pt(PTRACE_SYSCALL, pid, nullptr, nullptr)) {
      ThrowErrno(env, "ptrace(SYSCALL, " + std::to_string(pid) + ")", errno);
      return env.Undefined();
    }
    int st = 0;
    int w = WaitStop(pid, &st);
    if (w < 0) {
      ThrowErrno(env, "waitpid(" + std::to_string(pid) + ")", -w);
      return env.Undefined();
    }
    if (!WIFSTOPPED(st) || WSTOPSIG(st) != (SIGTRAP | 0x80)) {
      ThrowErrno(env, "injected syscall " + std::to_string((long)ToU64(info[3])) +
                          " in " + std::to_string(pid) + " stopped unexpectedly (status 0x" +
                          [&] { char b[16]; snprintf(b, sizeof b, "%x", st); return std::string(b); }() + ")",
                 EIO);
      return env.Undefined();
    }
  }
  if (Pt(PTRACE_GETREGS, pid, nullptr, &r)) {
    ThrowErrno(env, "ptrace(GETREGS, " + std::to_string(pid) + ")", errno);
    return env.Undefined();
  }
  return Napi::BigInt::New(env, (int64_t)r.rax);
}

}  // namespace

void InitPtrace(Napi::Env env, Napi::Object exports) {
  exports.Set("seize", Napi::Function::New(env, Seize));
  exports.Set("detach", Napi::Function::New(env, Detach));
  exports.Set("killTraced", Napi::Function::New(env, KillTraced));
  exports.Set("getRobustList", Napi::Function::New(env, GetRobustList));
  exports.Set("getRegs", Napi::Function::New(env, GetRegs));
  exports.Set("setRegs", Napi::Function::New(env, SetRegs));
  exports.Set("getXstate", Napi::Function::New(env, GetXstate));
  exports.Set("getSigmask", Napi::Function::New(env, GetSigmask));
  exports.Set("setSigmask", Napi::Function::New(env, SetSigmask));
  exports.Set("peekSiginfo", Napi::Function::New(env, PeekSiginfo));
  exports.Set("getRseq", Napi::Function::New(env, GetRseq));
  exports.Set("injectSyscall", Napi::Function::New(env, InjectSyscall));
}

}  // namespace crm
