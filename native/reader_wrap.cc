#include "reader_wrap.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <new>
#include <cstring>
#include <thread>

#include <unistd.h>

#include "convert.h"
#include "errors.h"

namespace fan {

namespace {

// Whether JavaScript can still run in `env`: not once it is stopping
// (process.exit() or worker.terminate()). Setting a property is one of the
// calls Node-API refuses then.
bool canRunJs(napi_env env) {
  napi_value object;
  napi_value value;
  return napi_create_object(env, &object) == napi_ok && napi_get_boolean(env, true, &value) == napi_ok &&
         napi_set_named_property(env, object, "probe", value) == napi_ok;
}

// Whether `env` is stopping, asked on its own thread while JavaScript waits
// in a synchronous take() (see Reader::Interrupt). The probe's handles go
// with a scope of their own: a long wait asks many times.
bool envStopping(napi_env env) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return true;
  const bool running = canRunJs(env);
  napi_close_handle_scope(env, scope);
  return !running;
}

// Events handed to JavaScript per wake-up. Bounded so one busy burst cannot
// hold the event loop; the rest goes in the next turn.
constexpr size_t kDeliveryBatch = 4096;
constexpr size_t kMinBatchCapacity = 64;  // events the first numbers array holds

ReaderOptions parseOptions(const Napi::Object& o) {
  ReaderOptions options;
  if (o.Has("permissionTimeout")) options.permissionTimeoutMs = o.Get("permissionTimeout").As<Napi::Number>().Int32Value();
  if (o.Has("defaultResponse")) options.defaultResponse = o.Get("defaultResponse").As<Napi::Number>().Uint32Value();
  if (o.Has("allowSelf")) options.allowSelf = o.Get("allowSelf").As<Napi::Boolean>().Value();
  if (o.Has("queueLimit")) options.queueLimit = o.Get("queueLimit").As<Napi::Number>().Uint32Value();
  if (o.Has("bufferSize")) options.bufferSize = o.Get("bufferSize").As<Napi::Number>().Uint32Value();
  if (o.Has("processInfo")) options.processInfo = o.Get("processInfo").As<Napi::Boolean>().Value();
  return options;
}

}  // namespace

// The environment's teardown hook and the uv handles' count (see the header).
// Every uv handle's data points here, never at the wrap, which may be gone.
struct ReaderWrap::Teardown {
  napi_async_cleanup_hook_handle hook = nullptr;  // null once removed
  ReaderWrap* wrap = nullptr;                     // null once the wrap is destroyed
  int handlesOpen = 0;                            // made, close callback not yet run
  bool shutDown = false;                          // the wrap's Shutdown ran: no new handles

  // The environment is going away (worker exit, process teardown): shut
  // down; Node runs the loop until finishIfDone removes the hook.
  static void OnEnvTeardown(napi_async_cleanup_hook_handle, void* data) {
    auto* t = static_cast<Teardown*>(data);
    if (t->wrap)
      t->wrap->Shutdown();
    else
      t->finishIfDone();
  }

  template <typename Handle>
  static void Close(Handle* handle) {
    uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) {
      auto* t = static_cast<Teardown*>(h->data);
      delete reinterpret_cast<Handle*>(h);
      t->handlesOpen--;
      t->finishIfDone();
    });
  }

  // Removing the hook ends the environment's wait when it is tearing down,
  // and unregisters it otherwise. May delete this.
  void finishIfDone() {
    if (shutDown && handlesOpen == 0 && hook) {
      napi_async_cleanup_hook_handle h = hook;
      hook = nullptr;
      napi_remove_async_cleanup_hook(h);
    }
    if (!hook && !wrap) delete this;
  }
};

template <Napi::Value (ReaderWrap::*Method)(const Napi::CallbackInfo&)>
Napi::Value ReaderWrap::Guarded(const Napi::CallbackInfo& info) {
  try {
    return (this->*Method)(info);
  } catch (...) {
    // A stopping environment cannot take an exception: node-addon-api would
    // throw again from its catch block, which is std::terminate.
    if (envStopping(env_)) return info.Env().Undefined();
    rethrowAsJs(info.Env(), "fanotify reader");
  }
}

Napi::Function ReaderWrap::Init(Napi::Env env) {
  return DefineClass(env, "Reader",
                     {
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::AddGroup>>("addGroup"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::Mark>>("mark"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::Take>>("take"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::Respond>>("respond"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::DupFd>>("dupFd"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::SetBufferSize>>("setBufferSize"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::StartAsync>>("startAsync"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::SetDelivery>>("setDelivery"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::SetRef>>("setRef"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::SetScope>>("setScope"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::Close>>("close"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::CloseAsync>>("closeAsync"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::Dirs>>("dirs"),
                     });
}

ReaderWrap::ReaderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReaderWrap>(info), env_(info.Env()) {
  try {
    ReaderOptions options = info[0].IsObject() ? parseOptions(info[0].As<Napi::Object>()) : ReaderOptions{};
    buffers_ = info[0].IsObject() && info[0].As<Napi::Object>().Get("buffers").ToBoolean().Value();
    reader_ = std::make_unique<Reader>(options);
    auto teardown = std::make_unique<Teardown>();
    teardown->wrap = this;
    if (napi_add_async_cleanup_hook(env_, &Teardown::OnEnvTeardown, teardown.get(), &teardown->hook) != napi_ok)
      throw Napi::Error::New(env_, "fanotify: napi_add_async_cleanup_hook failed");
    teardown_ = teardown.release();
  } catch (...) {
    rethrowAsJs(info.Env(), "new Reader");
  }
}

ReaderWrap::~ReaderWrap() {
  Shutdown();
  if (!teardown_) return;
  teardown_->wrap = nullptr;
  teardown_->finishIfDone();  // deletes it unless handles are still closing
  teardown_ = nullptr;
}

void ReaderWrap::Shutdown(std::vector<int>* later) {
  // Stop polling before the reader closes the fds the polls watch.
  for (uv_poll_t* poll : permissionPolls_) {
    uv_poll_stop(poll);
    Teardown::Close(poll);
  }
  permissionPolls_.clear();
  // Joins the reader thread and answers every pending permission event.
  if (reader_) reader_->close(later);
  if (async_) {
    Teardown::Close(async_);
    async_ = nullptr;
  }
  if (!callback_.IsEmpty()) callback_.Reset();
  if (!numbers_.IsEmpty()) numbers_.Reset();
  if (!teardown_) return;
  teardown_->shutDown = true;
  teardown_->finishIfDone();  // the wrap is alive: this never deletes it
}

Napi::Value ReaderWrap::AddGroup(const Napi::CallbackInfo& info) {
  SysError err;
  int index = reader_->addGroup(info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Number>().Uint32Value(), err);
  if (index < 0) throwSysError(info.Env(), err);
  if (async_) PollPermissionGroups();
  return Napi::Number::New(info.Env(), index);
}

// mark(group, flags, mask, dirfd, path)
Napi::Value ReaderWrap::Mark(const Napi::CallbackInfo& info) {
  SysError err;
  std::string path = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : std::string();
  bool ok = reader_->mark(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Uint32Value(),
                          static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value()),
                          info[3].As<Napi::Number>().Int32Value(), path, err);
  if (!ok) throwSysError(info.Env(), err);
  return info.Env().Undefined();
}

// take(max, timeoutMs): timeoutMs 0 = only what is there now, -1 = wait.
// The wait ends early, with an empty batch, when this environment stops
// (worker.terminate(), process.exit() in the main thread): see
// Reader::Interrupt. JavaScript does not run on after that.
Napi::Value ReaderWrap::Take(const Napi::CallbackInfo& info) {
  size_t max = info[0].As<Napi::Number>().Uint32Value();
  int timeoutMs = info[1].As<Napi::Number>().Int32Value();
  std::vector<Event> events;
  // A synchronous reader waits here: let it read permission groups itself
  // while it waits (reader_direct.cc), as AsyncFanotify's loop does.
  if (!async_) reader_->setDirectPermissions(true);
  Reader::Interrupt interrupt;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) == napi_ok && loop) interrupt.fd = uv_backend_fd(loop);
  interrupt.stopping = [env = env_] { return envStopping(env); };
  // Interrupted: JavaScript will not run again here, and building a batch
  // would fail (a failure node-addon-api cannot report once stopping).
  if (!reader_->take(events, max, timeoutMs, &interrupt)) return info.Env().Undefined();
  return batchToJs(info.Env(), events, NumbersFor(events.size()), buffers_);
}

// respond(id, response) -> true if this answered it, false if it was not pending.
Napi::Value ReaderWrap::Respond(const Napi::CallbackInfo& info) {
  uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  int result = reader_->respond(id, info[1].As<Napi::Number>().Uint32Value());
  if (result < 0) throwSysError(info.Env(), {-result, "write", ""});
  return Napi::Boolean::New(info.Env(), result == 1);
}

// dupFd(id) -> a new fd of the pending event's file, owned by JavaScript; -1
// once the event is answered, expired or closed.
Napi::Value ReaderWrap::DupFd(const Napi::CallbackInfo& info) {
  uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  int err = 0;
  int fd = reader_->dupFd(id, err);
  if (fd < 0 && err != 0) throwSysError(info.Env(), {err, "fcntl", ""});
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value ReaderWrap::SetBufferSize(const Napi::CallbackInfo& info) {
  reader_->setBufferSize(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

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

// setScope(group, [{ kind: 0 subtree | 1 children | 2 exact, path, mask }])
Napi::Value ReaderWrap::SetScope(const Napi::CallbackInfo& info) {
  Napi::Array list = info[1].As<Napi::Array>();
  std::vector<ScopeRule> rules;
  rules.reserve(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Object r = list.Get(i).As<Napi::Object>();
    rules.push_back({static_cast<ScopeRule::Kind>(r.Get("kind").As<Napi::Number>().Uint32Value()),
                     r.Get("path").As<Napi::String>().Utf8Value(),
                     static_cast<uint64_t>(r.Get("mask").As<Napi::Number>().Int64Value())});
  }
  reader_->setScope(info[0].As<Napi::Number>().Int32Value(), std::move(rules));
  return info.Env().Undefined();
}

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
