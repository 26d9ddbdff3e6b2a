// Turning a failed system call into a JavaScript exception with errno and code.
#pragma once
#include <napi.h>
#include <cerrno>
#include <cstring>
#include <string>

namespace crm {

// Throws Error("<what>: <strerror> (<ENAME>)") carrying .errno and .code.
/* "what: strerror (ENAME)" with .errno and .code, as JavaScript sees system errors. */
inline Napi::Error ErrnoError(Napi::Env env, const std::string &what, int err) {
  const char *name = strerrorname_np(err);
  Napi::Error e = Napi::Error::New(
      env, what + ": " + std::strerror(err) + " (" + (name ? name : "E?") + ")");
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  return e;
}

inline void ThrowErrno(Napi::Env env, const std::string &what, int err) {
  ErrnoError(env, what, err).ThrowAsJavaScriptException();
}

// A new descriptor for JavaScript, or (fd < 0) the exception for err.
inline Napi::Value FdOrThrow(Napi::Env env, int fd, const std::string &what, int err) {
  if (fd >= 0) return Napi::Number::New(env, fd);
  ThrowErrno(env, what, err);
  return env.Undefined();
}

inline uint64_t ToU64(const Napi::Value &v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  return static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
}

inline int ToInt(const Napi::Value &v) { return v.As<Napi::Number>().Int32Value(); }

}  // namespace crm
