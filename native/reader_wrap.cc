// The wrap class as JavaScript sees it: its definition (Init), Guarded
// around every method, the constructor, and the methods that pass
// JavaScript's calls on to the Reader. Delivery (wrap_delivery.cc), closing
// (wrap_close.cc) and teardown (wrap_lifetime.cc) have files of their own.
//
// Locking: none here; the Reader locks inside each call (reader.h).
#include "reader_wrap.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "convert.h"
#include "errors.h"
#include "wrap_lifetime.h"
#include "wrap_options.h"

namespace fan {

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
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::IgnoreMark>>("ignoreMark"),
                         InstanceMethod<&ReaderWrap::Guarded<&ReaderWrap::GroupFd>>("groupFd"),
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
    buffers_ = parseBuffers(info[0]);
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
  // while it waits (reader_consumer.cc), as AsyncFanotify's loop does.
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

// respond(id, response, rule?, subjectTrust?, objectTrust?) -> true if this
// answered it, false if it was not pending. A rule number adds the FAN_INFO
// audit-rule record (the caller sets FAN_INFO in response).
Napi::Value ReaderWrap::Respond(const Napi::CallbackInfo& info) {
  uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  AuditRule audit;
  bool hasAudit = info.Length() > 4 && info[2].IsNumber();
  if (hasAudit) {
    audit.rule = info[2].As<Napi::Number>().Uint32Value();
    audit.subjectTrust = info[3].As<Napi::Number>().Uint32Value();
    audit.objectTrust = info[4].As<Napi::Number>().Uint32Value();
  }
  int result = reader_->respond(id, info[1].As<Napi::Number>().Uint32Value(), hasAudit ? &audit : nullptr);
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

// ignoreMark(id, flags, mask) -> the decision cache's mark on a pending
// event's file (PendingTable::ignoreMark): "ino:sdev" in hex as
// /proc/self/fdinfo writes them, -1 if not pending, or the errno.
Napi::Value ReaderWrap::IgnoreMark(const Napi::CallbackInfo& info) {
  uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  struct stat st;
  int r = reader_->ignoreMark(id, info[1].As<Napi::Number>().Uint32Value(),
                              static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value()), st);
  if (r != 0) return Napi::Number::New(info.Env(), r);
  char key[64];
  snprintf(key, sizeof(key), "%llx:%x", static_cast<unsigned long long>(st.st_ino),
           (major(st.st_dev) << 20) | minor(st.st_dev));
  return Napi::String::New(info.Env(), key);
}

// groupFd(group) -> the group's fd, -1 if none.
Napi::Value ReaderWrap::GroupFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), reader_->groupFd(info[0].As<Napi::Number>().Int32Value()));
}

Napi::Value ReaderWrap::SetBufferSize(const Napi::CallbackInfo& info) {
  reader_->setBufferSize(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

// setScope(group, [{ kind: 0 subtree | 1 children | 2 exact, path, mask }])
Napi::Value ReaderWrap::SetScope(const Napi::CallbackInfo& info) {
  reader_->setScope(info[0].As<Napi::Number>().Int32Value(), parseScopeRules(info[1].As<Napi::Array>()));
  return info.Env().Undefined();
}

}  // namespace fan
