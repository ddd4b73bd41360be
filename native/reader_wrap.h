// The JavaScript face of a Reader: an ObjectWrap plus, for AsyncFanotify, a
// uv_async_t on the environment's own loop (so it works in worker threads).
//
// Lifetime: the Reader is shut down by whichever comes first of close() from
// JavaScript, garbage collection of the wrapper, or the environment's
// teardown (worker exit, process teardown). Shutdown stops and joins the
// reader thread before the uv handles are closed, so the thread can never
// send to a handle that is gone.
//
// The uv handles' close callbacks are code of this addon that libuv runs on
// a later turn of the loop. A worker that alone loaded the addon has it
// unloaded right after its environment's cleanup hooks; a close callback
// left for the loop's last run would then jump into unmapped memory. So
// teardown goes through an async cleanup hook (napi_add_async_cleanup_hook):
// it shuts the wrap down, and Node keeps running the loop until the hook is
// removed, which the last close callback does. The hook and the count of
// open handles live in a Teardown block of their own, since handles closed
// by GC or close() may outlive the wrap; the block goes when both the wrap
// and the hook are gone. All of it runs on the environment's own thread.
//
// Every Node-API entry runs through Guarded: no C++ exception reaches
// std::terminate; each becomes an error lib/errors.ts turns into a
// FanotifyError. uv callbacks catch theirs and report them as an 'error'
// (Reader::reportFailure).
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>
#include <vector>

#include "reader.h"

namespace fan {

class ReaderWrap : public Napi::ObjectWrap<ReaderWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ReaderWrap(const Napi::CallbackInfo& info);
  ~ReaderWrap() override;

 private:
  Napi::Value AddGroup(const Napi::CallbackInfo& info);
  Napi::Value Mark(const Napi::CallbackInfo& info);
  Napi::Value Take(const Napi::CallbackInfo& info);
  Napi::Value Respond(const Napi::CallbackInfo& info);
  Napi::Value DupFd(const Napi::CallbackInfo& info);
  Napi::Value SetBufferSize(const Napi::CallbackInfo& info);
  Napi::Value StartAsync(const Napi::CallbackInfo& info);
  Napi::Value SetDelivery(const Napi::CallbackInfo& info);
  Napi::Value SetRef(const Napi::CallbackInfo& info);
  Napi::Value SetScope(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value CloseAsync(const Napi::CallbackInfo& info);
  Napi::Value Dirs(const Napi::CallbackInfo& info);  // walker_wrap.cc

  // A method as Node-API calls it: exceptions rethrown as JS errors.
  template <Napi::Value (ReaderWrap::*Method)(const Napi::CallbackInfo&)>
  Napi::Value Guarded(const Napi::CallbackInfo& info);

  struct Teardown;
  static void OnAsync(uv_async_t* handle);
  static void OnPermissionReadable(uv_poll_t* handle, int status, int events);
  void PollPermissionGroups();
  void DeliverDirect(int fd);
  void Hand(const std::vector<Event>& events);
  // The numbers array of batchToJs, kept between batches; grown as needed.
  Napi::Float64Array NumbersFor(size_t events);
  void Deliver();
  // uv callbacks cannot throw: the failure goes to JavaScript as an 'error'.
  void ReportFailure(const char* what) noexcept;
  // `later`: see Reader::close.
  void Shutdown(std::vector<int>* later = nullptr);

  napi_env env_;
  std::unique_ptr<Reader> reader_;
  uv_async_t* async_ = nullptr;
  // One per permission group in async mode: JavaScript reads those groups
  // itself (Reader::readPermissionsDirect), a thread hop shorter.
  std::vector<uv_poll_t*> permissionPolls_;
  Napi::FunctionReference callback_;
  Napi::Reference<Napi::Float64Array> numbers_;
  bool delivering_ = true;  // false while the JavaScript side is paused
  bool buffers_ = false;    // paths and names as Buffers (encoding: 'buffer')
  bool failureReported_ = false;  // one report per run of failed deliveries
  Teardown* teardown_ = nullptr;  // see the comment at the top
};

}  // namespace fan
