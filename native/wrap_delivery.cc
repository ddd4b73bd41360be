// Delivery to JavaScript for AsyncFanotify: the uv_async_t the reader thread
// signals and the uv_polls over permission groups that JavaScript reads
// itself (direct reads), both on the environment's own loop, and the
// batches they hand to JavaScript's callback.
//
// Locking: none here. These run on the environment's thread; the Reader
// takes its own lock in drain() and readPermissionsDirect() (see
// reader_consumer.cc), and the reader thread only calls uv_async_send,
// which libuv allows from any thread.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "convert.h"
#include "errors.h"
#include "wrap_lifetime.h"

namespace fan {

namespace {

// Events handed to JavaScript per wake-up. Bounded so one busy burst cannot
// hold the event loop; the rest goes in the next turn.
constexpr size_t kDeliveryBatch = 4096;
constexpr size_t kMinBatchCapacity = 64;  // events the first numbers array holds

}  // namespace

Napi::Value ReaderWrap::StartAsync(const Napi::CallbackInfo& info) {
  if (async_ || reader_->closed()) return info.Env().Undefined();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) != napi_ok || !loop) throwTypeError(info.Env(), "no event loop");
  callback_ = Napi::Persistent(info[0].As<Napi::Function>());
  auto* handle = new uv_async_t;
  if (int err = uv_async_init(loop, handle, &ReaderWrap::OnAsync)) {
    delete handle;
    throwSysError(info.Env(), {-err, "uv_async_init", ""});
  }
  handle->data = teardown_;
  teardown_->handlesOpen++;
  async_ = handle;
  reader_->setNotify([handle] { uv_async_send(handle); });
  reader_->setDirectPermissions(true);
  PollPermissionGroups();
  uv_async_send(handle);  // deliver anything queued before the notifier existed
  return info.Env().Undefined();
}

// setDelivery(false) while JavaScript is paused: events stay in the native
// queue, which bounds itself and then leaves the backlog to the kernel.
Napi::Value ReaderWrap::SetDelivery(const Napi::CallbackInfo& info) {
  delivering_ = info[0].As<Napi::Boolean>().Value();
  if (delivering_ && async_) uv_async_send(async_);
  return info.Env().Undefined();
}

Napi::Value ReaderWrap::SetRef(const Napi::CallbackInfo& info) {
  if (async_) {
    if (info[0].As<Napi::Boolean>().Value())
      uv_ref(reinterpret_cast<uv_handle_t*>(async_));
    else
      uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  }
  return info.Env().Undefined();
}

// Starts a poll for each permission group that has none yet.
void ReaderWrap::PollPermissionGroups() {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) != napi_ok || !loop) return;
  const std::vector<int> fds = reader_->directPermissionFds();
  permissionPolls_.reserve(permissionPolls_.size() + fds.size());
  for (int fd : fds) {
    bool polled = false;
    for (uv_poll_t* poll : permissionPolls_) {
      uv_os_fd_t watched;
      polled = polled || (uv_fileno(reinterpret_cast<uv_handle_t*>(poll), &watched) == 0 && watched == fd);
    }
    if (polled) continue;
    auto* poll = new uv_poll_t;
    if (uv_poll_init(loop, poll, fd) != 0) {
      delete poll;
      continue;  // the reader thread still reads it
    }
    poll->data = teardown_;
    teardown_->handlesOpen++;
    permissionPolls_.push_back(poll);  // reserved above: cannot throw
    uv_poll_start(poll, UV_READABLE, &ReaderWrap::OnPermissionReadable);
    // Polls never hold the process open: the async handle's ref decides.
    uv_unref(reinterpret_cast<uv_handle_t*>(poll));
  }
}

void ReaderWrap::OnPermissionReadable(uv_poll_t* handle, int status, int events) {
  ReaderWrap* wrap = static_cast<Teardown*>(handle->data)->wrap;
  uv_os_fd_t fd;
  if (wrap && status == 0 && uv_fileno(reinterpret_cast<uv_handle_t*>(handle), &fd) == 0) wrap->DeliverDirect(fd);
}

void ReaderWrap::DeliverDirect(int fd) {
  if (callback_.IsEmpty() || reader_->closed()) return;
  try {
    std::vector<Event> events;
    reader_->readPermissionsDirect(fd, events);
    if (!events.empty()) Hand(events);
    reader_->afterDirectDelivery();
    failureReported_ = false;
  } catch (...) {
    // Events read here are pending already: their deadlines answer them.
    reader_->afterDirectDelivery();
    ReportFailure("reading permission events");
  }
}

void ReaderWrap::OnAsync(uv_async_t* handle) {
  if (ReaderWrap* wrap = static_cast<Teardown*>(handle->data)->wrap) wrap->Deliver();
}

void ReaderWrap::Deliver() {
  if (!delivering_ || callback_.IsEmpty() || reader_->closed()) return;
  try {
    Napi::Env env(env_);
    Napi::HandleScope scope(env);
    std::vector<Event> events;
    reader_->drain(events, kDeliveryBatch);
    if (events.empty()) return;
    if (events.size() == kDeliveryBatch && async_) uv_async_send(async_);
    Hand(events);
    failureReported_ = false;
  } catch (...) {
    ReportFailure("delivering events");
  }
}

// Called inside a catch block. The report is one more event for the next
// delivery; if that fails too, nothing more is reported until one works,
// so a lasting failure (out of memory) cannot loop.
void ReaderWrap::ReportFailure(const char* what) noexcept {
  const int err = currentExceptionErrno();
  if (failureReported_) return;
  failureReported_ = true;
  try {
    reader_->reportFailure(err, std::string(what) + " failed (" + std::strerror(err) + "); some events were lost");
  } catch (...) {
  }
}

void ReaderWrap::Hand(const std::vector<Event>& events) {
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  napi_value batch = batchToJs(env, events, NumbersFor(events.size()), buffers_);
  napi_value result;
  // Raw napi_make_callback: node-addon-api's wrapper turns a failure into a
  // Napi::Error, and building one needs JavaScript, which is a fatal error
  // once the environment is stopping (a listener that called process.exit()
  // in a worker).
  if (napi_make_callback(env_, nullptr, Value(), callback_.Value(), 1, &batch, &result) == napi_ok) return;
  napi_value error;
  if (napi_get_and_clear_last_exception(env_, &error) != napi_ok || !canRunJs(env_)) return;
  // A listener threw and nothing on the stack can catch it: hand it to
  // process 'uncaughtException', as any callback's throw would go.
  napi_fatal_exception(env_, error);
}

Napi::Float64Array ReaderWrap::NumbersFor(size_t events) {
  const size_t needed = std::max<size_t>(events, kMinBatchCapacity) * kBatchNumbers;
  if (numbers_.IsEmpty() || numbers_.Value().ElementLength() < needed) {
    numbers_ = Napi::Persistent(Napi::Float64Array::New(Env(), needed));
  }
  return numbers_.Value();
}

}  // namespace fan
