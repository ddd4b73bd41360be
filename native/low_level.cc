#include "low_level.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "convert.h"
#include "decoder.h"
#include "errors.h"
#include "fan_constants.h"
#include "pending.h"

namespace fan {

namespace {

uint32_t u32(const Napi::Value& v) { return v.As<Napi::Number>().Uint32Value(); }
int32_t i32(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }

Napi::Value FanotifyInit(const Napi::CallbackInfo& info) {
  int fd = fanotify_init(u32(info[0]), u32(info[1]));
  if (fd < 0) throwSysError(info.Env(), {errno, "fanotify_init", ""});
  return Napi::Number::New(info.Env(), fd);
}

// fanotifyMark(fd, flags, mask, dirfd, path?)
Napi::Value FanotifyMark(const Napi::CallbackInfo& info) {
  std::string path;
  bool hasPath = info.Length() > 4 && (info[4].IsString() || info[4].IsBuffer());
  if (hasPath && info[4].IsBuffer()) {
    // A Buffer is the path's exact bytes (names need not be UTF-8).
    auto bytes = info[4].As<Napi::Buffer<char>>();
    path.assign(bytes.Data(), bytes.Length());
  } else if (hasPath) {
    path = info[4].As<Napi::String>().Utf8Value();
  }
  uint64_t mask = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  if (fanotify_mark(i32(info[0]), u32(info[1]), mask, i32(info[3]), hasPath ? path.c_str() : nullptr) != 0)
    throwSysError(info.Env(), {errno, "fanotify_mark", path});
  return info.Env().Undefined();
}

// readEvents(fd, bufferSize): one read(2), decoded. A non-blocking fd with
// nothing queued gives []; a blocking one blocks, as read(2) does.
Napi::Value ReadEvents(const Napi::CallbackInfo& info) {
  std::vector<uint8_t> buf(u32(info[1]));
  ssize_t n;
  do {
    n = read(i32(info[0]), buf.data(), buf.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return Napi::Array::New(info.Env(), 0);
    throwSysError(info.Env(), {errno, "read", ""});
  }
  std::vector<RawEvent> events;
  decodeEvents(buf.data(), static_cast<size_t>(n), events);
  for (RawEvent& ev : events) closeDuplicatePidfds(ev);  // the caller gets (and closes) the first
  Napi::Array array = Napi::Array::New(info.Env(), events.size());
  for (size_t i = 0; i < events.size(); i++) array.Set(i, rawEventToJs(info.Env(), events[i]));
  return array;
}

// decode(buffer): the same decoder over bytes the caller supplies, so the
// decoder can be tested against malformed input without a kernel.
Napi::Value Decode(const Napi::CallbackInfo& info) {
  auto bytes = info[0].As<Napi::Uint8Array>();
  std::vector<RawEvent> events;
  size_t used = decodeEvents(bytes.Data(), bytes.ByteLength(), events);
  Napi::Array array = Napi::Array::New(info.Env(), events.size());
  for (size_t i = 0; i < events.size(); i++) array.Set(i, rawEventToJs(info.Env(), events[i]));
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("events", array);
  result.Set("bytesUsed", static_cast<double>(used));
  return result;
}

// writeResponse(fd, eventFd, response, rule?, subjectTrust?, objectTrust?):
// with a rule number, the FAN_INFO audit-rule record follows the response.
Napi::Value WriteResponse(const Napi::CallbackInfo& info) {
  AuditRule audit;
  bool hasAudit = info.Length() > 5 && info[3].IsNumber();
  if (hasAudit) {
    audit.rule = u32(info[3]);
    audit.subjectTrust = u32(info[4]);
    audit.objectTrust = u32(info[5]);
  }
  int err = writeResponse(i32(info[0]), i32(info[1]), u32(info[2]), hasAudit ? &audit : nullptr);
  if (err != 0) throwSysError(info.Env(), {err, "write", ""});
  return info.Env().Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  if (::close(i32(info[0])) != 0) throwSysError(info.Env(), {errno, "close", ""});
  return info.Env().Undefined();
}

// The values this addon was compiled with, so a test can hold lib/'s
// constant table to the C headers (and our fallbacks) bit for bit.
Napi::Object CompiledConstants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
#define FAN_CONST(name) c.Set(#name, static_cast<double>(name))
  FAN_CONST(FAN_ACCESS); FAN_CONST(FAN_MODIFY); FAN_CONST(FAN_ATTRIB); FAN_CONST(FAN_CLOSE_WRITE);
  FAN_CONST(FAN_CLOSE_NOWRITE); FAN_CONST(FAN_OPEN); FAN_CONST(FAN_MOVED_FROM); FAN_CONST(FAN_MOVED_TO);
  FAN_CONST(FAN_CREATE); FAN_CONST(FAN_DELETE); FAN_CONST(FAN_DELETE_SELF); FAN_CONST(FAN_MOVE_SELF);
  FAN_CONST(FAN_OPEN_EXEC); FAN_CONST(FAN_Q_OVERFLOW); FAN_CONST(FAN_FS_ERROR); FAN_CONST(FAN_OPEN_PERM);
  FAN_CONST(FAN_ACCESS_PERM); FAN_CONST(FAN_OPEN_EXEC_PERM); FAN_CONST(FAN_PRE_ACCESS); FAN_CONST(FAN_RENAME);
  FAN_CONST(FAN_MNT_ATTACH); FAN_CONST(FAN_MNT_DETACH); FAN_CONST(FAN_ONDIR); FAN_CONST(FAN_EVENT_ON_CHILD);
  FAN_CONST(FAN_CLOEXEC); FAN_CONST(FAN_NONBLOCK); FAN_CONST(FAN_CLASS_NOTIF); FAN_CONST(FAN_CLASS_CONTENT);
  FAN_CONST(FAN_CLASS_PRE_CONTENT); FAN_CONST(FAN_UNLIMITED_QUEUE); FAN_CONST(FAN_UNLIMITED_MARKS);
  FAN_CONST(FAN_ENABLE_AUDIT); FAN_CONST(FAN_REPORT_PIDFD); FAN_CONST(FAN_REPORT_TID); FAN_CONST(FAN_REPORT_FID);
  FAN_CONST(FAN_REPORT_DIR_FID); FAN_CONST(FAN_REPORT_NAME); FAN_CONST(FAN_REPORT_TARGET_FID);
  FAN_CONST(FAN_REPORT_FD_ERROR); FAN_CONST(FAN_REPORT_MNT); FAN_CONST(FAN_MARK_ADD); FAN_CONST(FAN_MARK_REMOVE);
  FAN_CONST(FAN_MARK_DONT_FOLLOW); FAN_CONST(FAN_MARK_ONLYDIR); FAN_CONST(FAN_MARK_MOUNT);
  FAN_CONST(FAN_MARK_IGNORED_MASK); FAN_CONST(FAN_MARK_IGNORED_SURV_MODIFY); FAN_CONST(FAN_MARK_FLUSH);
  FAN_CONST(FAN_MARK_FILESYSTEM); FAN_CONST(FAN_MARK_EVICTABLE); FAN_CONST(FAN_MARK_IGNORE);
  FAN_CONST(FAN_MARK_INODE); FAN_CONST(FAN_MARK_MNTNS); FAN_CONST(FAN_ALLOW); FAN_CONST(FAN_DENY);
  FAN_CONST(FAN_AUDIT); FAN_CONST(FAN_INFO); FAN_CONST(FAN_NOFD); FAN_CONST(FAN_EPIDFD);
  FAN_CONST(FAN_EVENT_INFO_TYPE_FID); FAN_CONST(FAN_EVENT_INFO_TYPE_DFID_NAME); FAN_CONST(FAN_EVENT_INFO_TYPE_DFID);
  FAN_CONST(FAN_EVENT_INFO_TYPE_PIDFD); FAN_CONST(FAN_EVENT_INFO_TYPE_ERROR); FAN_CONST(FAN_EVENT_INFO_TYPE_RANGE);
  FAN_CONST(FAN_EVENT_INFO_TYPE_MNT); FAN_CONST(FAN_EVENT_INFO_TYPE_OLD_DFID_NAME);
  FAN_CONST(FAN_EVENT_INFO_TYPE_NEW_DFID_NAME); FAN_CONST(FANOTIFY_METADATA_VERSION);
  FAN_CONST(AT_FDCWD);
#undef FAN_CONST
  return c;
}

}  // namespace

void initLowLevel(Napi::Env env, Napi::Object exports) {
  exports.Set("fanotifyInit", Napi::Function::New<guarded<FanotifyInit>>(env, "fanotifyInit"));
  exports.Set("fanotifyMark", Napi::Function::New<guarded<FanotifyMark>>(env, "fanotifyMark"));
  exports.Set("readEvents", Napi::Function::New<guarded<ReadEvents>>(env, "readEvents"));
  exports.Set("decode", Napi::Function::New<guarded<Decode>>(env, "decode"));
  exports.Set("writeResponse", Napi::Function::New<guarded<WriteResponse>>(env, "writeResponse"));
  exports.Set("close", Napi::Function::New<guarded<Close>>(env, "close"));
  exports.Set("compiledConstants", CompiledConstants(env));
}

}  // namespace fan
