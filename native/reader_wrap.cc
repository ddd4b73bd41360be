#include "reader_wrap.h"

#include <algorithm>
#include <climits>
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

Napi::Function ReaderWrap::Init(Napi::Env env) {
  return DefineClass(env, "Reader",
                     {
                         InstanceMethod<&ReaderWrap::AddGroup>("addGroup"),
                         InstanceMethod<&ReaderWrap::Mark>("mark"),
                         InstanceMethod<&ReaderWrap::Take>("take"),
                         InstanceMethod<&ReaderWrap::Respond>("respond"),
                         InstanceMethod<&ReaderWrap::IsPending>("isPending"),
                         InstanceMethod<&ReaderWrap::SetBufferSize>("setBufferSize"),
                         InstanceMethod<&ReaderWrap::StartAsync>("startAsync"),
                         InstanceMethod<&ReaderWrap::SetDelivery>("setDelivery"),
                         InstanceMethod<&ReaderWrap::SetRef>("setRef"),
                         InstanceMethod<&ReaderWrap::GroupFd>("groupFd"),
                         InstanceMethod<&ReaderWrap::SetScope>("setScope"),
                         InstanceMethod<&ReaderWrap::Close>("close"),
                         InstanceMethod<&ReaderWrap::CloseAsync>("closeAsync"),
                     });
}

ReaderWrap::ReaderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReaderWrap>(info), env_(info.Env()) {
  ReaderOptions options = info[0].IsObject() ? parseOptions(info[0].As<Napi::Object>()) : ReaderOptions{};
  reader_ = std::make_unique<Reader>(options);
  napi_add_env_cleanup_hook(env_, &ReaderWrap::OnEnvCleanup, this);
  cleanupHookRegistered_ = true;
}

ReaderWrap::~ReaderWrap() { Shutdown(); }

void ReaderWrap::OnEnvCleanup(void* self) {
  auto* wrap = static_cast<ReaderWrap*>(self);
  wrap->cleanupHookRegistered_ = false;  // the environment is running it now
  wrap->Shutdown();
}

void ReaderWrap::Shutdown(std::vector<int>* later) {
  if (cleanupHookRegistered_) {
    napi_remove_env_cleanup_hook(env_, &ReaderWrap::OnEnvCleanup, this);
    cleanupHookRegistered_ = false;
  }
  // Stop polling before the reader closes the fds the polls watch.
  for (uv_poll_t* poll : permissionPolls_) {
    uv_poll_stop(poll);
    poll->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  }
  permissionPolls_.clear();
  // Joins the reader thread and answers every pending permission event.
  if (reader_) reader_->close(later);
  if (async_) {
    async_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
    async_ = nullptr;
  }
  if (!callback_.IsEmpty()) callback_.Reset();
  if (!numbers_.IsEmpty()) numbers_.Reset();
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
Napi::Value ReaderWrap::Take(const Napi::CallbackInfo& info) {
  size_t max = info[0].As<Napi::Number>().Uint32Value();
  int timeoutMs = info[1].As<Napi::Number>().Int32Value();
  std::vector<Event> events;
  // A synchronous reader waits here: let it read permission groups itself
  // while it waits (reader_direct.cc), as AsyncFanotify's loop does.
  if (!async_) reader_->setDirectPermissions(true);
  reader_->take(events, max, timeoutMs);
  return batchToJs(info.Env(), events, NumbersFor(events.size()));
}

// respond(id, response) -> true if this answered it, false if it was not pending.
Napi::Value ReaderWrap::Respond(const Napi::CallbackInfo& info) {
  uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  int result = reader_->respond(id, info[1].As<Napi::Number>().Uint32Value());
  if (result < 0) throwSysError(info.Env(), {-result, "write", ""});
  return Napi::Boolean::New(info.Env(), result == 1);
}

Napi::Value ReaderWrap::IsPending(const Napi::CallbackInfo& info) {
  uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  return Napi::Boolean::New(info.Env(), reader_->isPending(id));
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
  async_ = new uv_async_t;
  uv_async_init(loop, async_, &ReaderWrap::OnAsync);
  async_->data = this;
  uv_async_t* handle = async_;
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
  for (int fd : reader_->directPermissionFds()) {
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
    poll->data = this;
    uv_poll_start(poll, UV_READABLE, &ReaderWrap::OnPermissionReadable);
    // Polls never hold the process open: the async handle's ref decides.
    uv_unref(reinterpret_cast<uv_handle_t*>(poll));
    permissionPolls_.push_back(poll);
  }
}

void ReaderWrap::OnPermissionReadable(uv_poll_t* handle, int status, int events) {
  auto* wrap = static_cast<ReaderWrap*>(handle->data);
  uv_os_fd_t fd;
  if (wrap && status == 0 && uv_fileno(reinterpret_cast<uv_handle_t*>(handle), &fd) == 0) wrap->DeliverDirect(fd);
}

void ReaderWrap::DeliverDirect(int fd) {
  if (callback_.IsEmpty() || reader_->closed()) return;
  std::vector<Event> events;
  reader_->readPermissionsDirect(fd, events);
  if (!events.empty()) Hand(events);
  reader_->afterDirectDelivery();
}

void ReaderWrap::OnAsync(uv_async_t* handle) {
  if (auto* wrap = static_cast<ReaderWrap*>(handle->data)) wrap->Deliver();
}

void ReaderWrap::Deliver() {
  if (!delivering_ || callback_.IsEmpty() || reader_->closed()) return;
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  std::vector<Event> events;
  reader_->drain(events, kDeliveryBatch);
  if (events.empty()) return;
  if (events.size() == kDeliveryBatch && async_) uv_async_send(async_);
  Hand(events);
}

void ReaderWrap::Hand(const std::vector<Event>& events) {
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  napi_value batch = batchToJs(env, events, NumbersFor(events.size()));
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

Napi::Value ReaderWrap::GroupFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), reader_->groupFd(info[0].As<Napi::Number>().Int32Value()));
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
  Napi::Promise::Deferred deferred;

  // The environment goes away before the thread reported back: wait for the
  // thread here, while its thread-safe function is still valid (this hook is
  // added after the function's own, and hooks run in reverse order).
  static void OnEnvCleanup(void* self) {
    auto* closer = static_cast<FdCloser*>(self);
    closer->thread.join();
    delete closer;
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
  auto deferred = Napi::Promise::Deferred::New(env);
  std::vector<int> fds;
  Shutdown(&fds);
  if (fds.empty()) {
    deferred.Resolve(env.Undefined());
    return deferred.Promise();
  }
  auto done = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                            "fanotify close", 0, 1);
  auto* closer = new FdCloser{std::thread(), deferred};
  napi_add_env_cleanup_hook(env, &FdCloser::OnEnvCleanup, closer);
  closer->thread = std::thread([fds = std::move(fds), done, closer]() mutable {
    for (int fd : fds) ::close(fd);
    done.BlockingCall(closer, [](Napi::Env env, Napi::Function, FdCloser* c) {
      napi_remove_env_cleanup_hook(env, &FdCloser::OnEnvCleanup, c);
      c->thread.join();  // it is past this call already: only Release() is left
      c->deferred.Resolve(env.Undefined());
      delete c;
    });
    done.Release();
  });
  return deferred.Promise();
}

}  // namespace fan
