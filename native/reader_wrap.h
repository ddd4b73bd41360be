// The JavaScript face of a Reader: an ObjectWrap plus, for AsyncFanotify, a
// uv_async_t on the environment's own loop (so it works in worker threads).
//
// Lifetime: the Reader is shut down by whichever comes first of close() from
// JavaScript, garbage collection of the wrapper, or the environment's
// cleanup hook (worker exit, process teardown). Shutdown stops and joins the
// reader thread before the uv handle is closed, so the thread can never send
// to a handle that is gone.
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

  static void OnAsync(uv_async_t* handle);
  static void OnPermissionReadable(uv_poll_t* handle, int status, int events);
  void PollPermissionGroups();
  void DeliverDirect(int fd);
  void Hand(const std::vector<Event>& events);
  // The numbers array of batchToJs, kept between batches; grown as needed.
  Napi::Float64Array NumbersFor(size_t events);
  static void OnEnvCleanup(void* self);
  void Deliver();
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
  bool cleanupHookRegistered_ = false;
};

}  // namespace fan
