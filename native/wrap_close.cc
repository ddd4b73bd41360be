// Closing from JavaScript: close() shuts the wrap down on the spot;
// closeAsync() shuts it down and leaves closing the group fds, which waits in
// the kernel, to a thread of its own that reports back through a thread-safe
// function.
//
// Locking: none. The closing thread gets its own copy of the fds, which
// nothing else holds any more (Shutdown handed them over), and touches
// nothing but them and its thread-safe function.
#include <unistd.h>

#include <new>
#include <thread>
#include <vector>

#include "reader_wrap.h"

namespace fan {

Napi::Value ReaderWrap::Close(const Napi::CallbackInfo& info) {
  Shutdown();
  return info.Env().Undefined();
}

namespace {

// One CloseAsync in progress: the thread that closes the fds, and the
// promise it resolves through a thread-safe function.
struct FdCloser {
  std::thread thread;

  // The environment goes away before the thread reported back: wait for the
  // thread here, while its thread-safe function is still valid (this hook is
  // added after the function's own, and hooks run in reverse order).
  static void OnEnvCleanup(void* self) {
    auto* closer = static_cast<FdCloser*>(self);
    closer->thread.join();
    delete closer;
  }

  // The thread's report, on the JavaScript thread: calls JavaScript's `done`.
  // Raw Node-API, and a callback rather than a promise, so that nothing is
  // left to free when the environment is torn down with the call still
  // queued (`env` is null then, and OnEnvCleanup has deleted the closer):
  // node-addon-api's BlockingCall wrapper and an unsettled napi deferred
  // both leaked there.
  static void Report(napi_env env, napi_value done, void*, void* self) {
    if (env == nullptr) return;
    auto* closer = static_cast<FdCloser*>(self);
    napi_remove_env_cleanup_hook(env, &FdCloser::OnEnvCleanup, closer);
    closer->thread.join();  // it is past its call already: only the release is left
    delete closer;
    napi_value global, result;
    if (napi_get_global(env, &global) == napi_ok) napi_call_function(env, global, done, 0, nullptr, &result);
  }
};

}  // namespace

// close() for AsyncFanotify, without blocking the event loop: closing a
// group that had marks waits for an SRCU grace period in the kernel
// (fsnotify_destroy_group; 0.5 to 35 ms measured here). Shutdown has joined
// the reader thread and answered every pending permission event; what is
// left, closing the group and mount fds, happens on a thread of its own and
// the promise resolves after it. A plain thread, not the libuv threadpool:
// queued behind slow fs work, a still-open group would keep holding the
// permission events nobody read yet.
Napi::Value ReaderWrap::CloseAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Function callback = info[0].As<Napi::Function>();
  std::vector<int> fds;
  Shutdown(&fds);
  if (fds.empty()) {
    callback.Call({});
    return env.Undefined();
  }
  napi_threadsafe_function done = nullptr;
  FdCloser* closer = nullptr;
  try {
    napi_value name = Napi::String::New(env, "fanotify close");
    if (napi_create_threadsafe_function(env, callback, nullptr, name, 0, 1, nullptr, nullptr, nullptr,
                                        &FdCloser::Report, &done) != napi_ok)
      throw std::bad_alloc();
    closer = new FdCloser{};
    napi_add_env_cleanup_hook(env, &FdCloser::OnEnvCleanup, closer);
    // The thread gets a copy: if it cannot start, the fds are still ours.
    closer->thread = std::thread([fds, done, closer] {
      for (int fd : fds) ::close(fd);
      napi_call_threadsafe_function(done, closer, napi_tsfn_blocking);
      napi_release_threadsafe_function(done, napi_tsfn_release);
    });
    return env.Undefined();
  } catch (...) {
    // No thread to spare (EAGAIN at a thread or pids limit) or no memory:
    // close them here instead. That blocks this thread for the kernel's
    // grace period, but close() must neither fail nor leak the groups.
    if (closer) {
      napi_remove_env_cleanup_hook(env, &FdCloser::OnEnvCleanup, closer);
      delete closer;
    }
    if (done) napi_release_threadsafe_function(done, napi_tsfn_release);
  }
  for (int fd : fds) ::close(fd);
  callback.Call({});
  return env.Undefined();
}

}  // namespace fan
