// The JavaScript face of a Reader: an ObjectWrap plus, for AsyncFanotify, a
// uv_async_t on the environment's own loop (so it works in worker threads).
// Its code is split by what each part owns, and calls the Reader, never
// the reverse (the Reader only runs the notifier set with setNotify):
//   reader_wrap.cc    the class as JavaScript sees it (Init, Guarded, the
//                     constructor) and the methods that pass calls on;
//   wrap_options.cc   JavaScript's arguments into native types;
//   wrap_delivery.cc  uv_async / uv_poll delivery of batches to JavaScript;
//   wrap_close.cc     close() and closeAsync() with its closing thread;
//   wrap_lifetime.cc  teardown: the environment's cleanup hook, uv handle
//                     closing, Shutdown (see wrap_lifetime.h).
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
  Napi::Value IgnoreMark(const Napi::CallbackInfo& info);
  Napi::Value GroupFd(const Napi::CallbackInfo& info);
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

  struct Teardown;  // wrap_lifetime.h
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
  Teardown* teardown_ = nullptr;  // see wrap_lifetime.h
};

}  // namespace fan
