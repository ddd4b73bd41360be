#include "errors.h"

#include <uv.h>

#include <cerrno>
#include <cstring>
#include <new>

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

int errnoOf(const std::system_error& e) {
  const std::error_category& category = e.code().category();
  if ((category == std::generic_category() || category == std::system_category()) && e.code().value() > 0)
    return e.code().value();
  return EIO;
}

int currentExceptionErrno() {
  try {
    throw;
  } catch (const SysFailure& e) {
    return e.error.err;
  } catch (const std::system_error& e) {
    return errnoOf(e);
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  } catch (...) {
    return EIO;
  }
}

void rethrowAsJs(Napi::Env env, const char* syscall) {
  try {
    throw;
  } catch (const Napi::Error&) {
    throw;
  } catch (const SysFailure& e) {
    throwSysError(env, e.error);
  } catch (const std::system_error& e) {
    throwSysError(env, {errnoOf(e), syscall, ""});
  } catch (const std::bad_alloc&) {
    throwSysError(env, {ENOMEM, "malloc", ""});
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("fanotify: internal error in ") + syscall + ": " + e.what());
  } catch (...) {
    throw Napi::Error::New(env, std::string("fanotify: internal error in ") + syscall);
  }
}

void throwTypeError(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

}  // namespace fan
