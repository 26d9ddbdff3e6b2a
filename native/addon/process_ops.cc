// Process-level helpers the JS side cannot reach through Node's API: the
// child subreaper flag, reaping orphans, and pidfd polling of a non-child.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"

namespace crm {
namespace {

Napi::Value SetChildSubreaper(const Napi::CallbackInfo &info) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) ThrowErrno(info.Env(), "prctl(PR_SET_CHILD_SUBREAPER)", errno);
  return info.Env().Undefined();
}

// Reaps every exited child without blocking; returns [{pid, code, signal}].
Napi::Value ReapChildren(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (;;) {
    int st = 0;
    pid_t p = waitpid(-1, &st, WNOHANG | __WALL);
    if (p <= 0) break;
    Napi::Object o = Napi::Object::New(env);
    o.Set("pid", Napi::Number::New(env, p));
    if (WIFEXITED(st)) o.Set("code", Napi::Number::New(env, WEXITSTATUS(st)));
    if (WIFSIGNALED(st)) o.Set("signal", Napi::Number::New(env, WTERMSIG(st)));
    out.Set(n++, o);
  }
  return out;
}

Napi::Value IsAlive(const Napi::CallbackInfo &info) {
  pid_t pid = ToInt(info[0]);
  // A zombie is not alive for our purposes: look at the state letter.
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return Napi::Boolean::New(info.Env(), false);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *rp = strrchr(buf, ')');
  bool alive = rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
  return Napi::Boolean::New(info.Env(), alive);
}

Napi::Value SendSignal(const Napi::CallbackInfo &info) {
  if (kill(ToInt(info[0]), ToInt(info[1]))) ThrowErrno(info.Env(), "kill(" + std::to_string(ToInt(info[0])) + ")", errno);
  return info.Env().Undefined();
}

// kcmp(KCMP_FILE): do two descriptors refer to one open file description?
Napi::Value SameOpenFile(const Napi::CallbackInfo &info) {
  long r = syscall(SYS_kcmp, ToInt(info[0]), ToInt(info[2]), 0 /* KCMP_FILE */, ToInt(info[1]), ToInt(info[3]));
  if (r < 0) {
    ThrowErrno(info.Env(), "kcmp(KCMP_FILE)", errno);
    return info.Env().Undefined();
  }
  return Napi::Boolean::New(info.Env(), r == 0);
}

}  // namespace

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("setChildSubreaper", Napi::Function::New(env, SetChildSubreaper));
  exports.Set("reapChildren", Napi::Function::New(env, ReapChildren));
  exports.Set("isAlive", Napi::Function::New(env, IsAlive));
  exports.Set("sameOpenFile", Napi::Function::New(env, SameOpenFile));
  exports.Set("sendSignal", Napi::Function::New(env, SendSignal));
}

}  // namespace crm
