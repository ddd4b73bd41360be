// How a failed system call travels to JavaScript. Native code never builds
// the final FanotifyError: errors created here live in the addon's realm,
// which breaks `instanceof` under jest. Instead it throws a plain Error
// carrying { errno, syscall, path }, and lib/errors.ts turns that into a
// FanotifyError with a message that says what to do (and the errno's name,
// `code`, from Node's own table: there is no second copy here).
#pragma once

#include <napi.h>

#include <exception>
#include <string>
#include <system_error>
#include <utility>

namespace fan {

struct SysError {
  int err = 0;  // positive errno
  const char* syscall = "";
  std::string path;
};

Napi::Error makeSysError(Napi::Env env, const SysError& e);
[[noreturn]] void throwSysError(Napi::Env env, const SysError& e);

// A failed system call deep in native code, away from any Node-API call
// (the reader, the start of its thread): thrown as a C++ exception and
// turned into the same plain error as throwSysError by the guard of the
// Node-API entry it passes through (rethrowAsJs).
struct SysFailure : std::exception {
  SysError error;
  explicit SysFailure(SysError e) : error(std::move(e)) {}
  const char* what() const noexcept override { return error.syscall; }
};

// The errno a standard library exception carries: std::thread's
// constructor throws std::system_error(EAGAIN) when no thread can be
// created. EIO when it carries none.
int errnoOf(const std::system_error& e);
// The errno for any C++ exception (call inside a catch block only):
// SysFailure and std::system_error their own, std::bad_alloc ENOMEM,
// anything else EIO.
int currentExceptionErrno();

// C++ exceptions must never reach std::terminate: every Node-API entry
// catches what it calls and rethrows it with this (inside a catch block
// only) as an error lib/errors.ts turns into a FanotifyError: Napi::Error
// as it is, SysFailure and std::system_error with their errno (EAGAIN is
// kind LimitReached), std::bad_alloc as ENOMEM, anything else as a plain
// error without a code (kind Io).
[[noreturn]] void rethrowAsJs(Napi::Env env, const char* syscall);

// A plain Node-API function run through rethrowAsJs:
// Napi::Function::New<guarded<F>>(env, name).
template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return Fn(info);
  } catch (...) {
    rethrowAsJs(info.Env(), "fanotify");
  }
}

// A plain argument error from native code; lib/ validates first, so these
// only guard against calls that bypass it.
[[noreturn]] void throwTypeError(Napi::Env env, const std::string& message);

}  // namespace fan
