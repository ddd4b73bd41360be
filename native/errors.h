// How a failed system call travels to JavaScript. Native code never builds
// the final FanotifyError: errors created here live in the addon's realm,
// which breaks `instanceof` under jest. Instead it throws a plain Error
// carrying { errno, syscall, path }, and lib/errors.ts turns that into a
// FanotifyError with a message that says what to do (and the errno's name,
// `code`, from Node's own table: there is no second copy here).
#pragma once

#include <napi.h>

#include <string>

namespace fan {

struct SysError {
  int err = 0;  // positive errno
  const char* syscall = "";
  std::string path;
};

Napi::Error makeSysError(Napi::Env env, const SysError& e);
[[noreturn]] void throwSysError(Napi::Env env, const SysError& e);

// A plain argument error from native code; lib/ validates first, so these
// only guard against calls that bypass it.
[[noreturn]] void throwTypeError(Napi::Env env, const std::string& message);

}  // namespace fan
