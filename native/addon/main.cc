// Entry point of the crmigrate native addon: registers each group of
// operations (one file per concern).
#include <napi.h>

namespace crm {
void InitPtrace(Napi::Env env, Napi::Object exports);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitProcess(Napi::Env env, Napi::Object exports);
void InitTracking(Napi::Env env, Napi::Object exports);
}  // namespace crm

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  crm::InitPtrace(env, exports);
  crm::InitMemory(env, exports);
  crm::InitProcess(env, exports);
  crm::InitTracking(env, exports);
  return exports;
}

NODE_API_MODULE(crmigrate_native, Init)
