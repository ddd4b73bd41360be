#include "errors.h"

#include <cstring>

namespace fan {

Napi::Error makeSysError(Napi::Env env, const SysError& e) {
  std::string message = std::string(e.syscall) + ": " + std::strerror(e.err);
  if (!e.path.empty()) message += " '" + e.path + "'";
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object obj = error.Value();
  obj.Set("errno", -e.err);  // negative, as Node's own system errors do
  obj.Set("syscall", e.syscall);
  if (!e.path.empty()) obj.Set("path", e.path);
  return error;
}

void throwSysError(Napi::Env env, const SysError& e) { throw makeSysError(env, e); }

void throwTypeError(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

}  // namespace fan
