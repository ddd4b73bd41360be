#include "convert.h"

#include "fan_constants.h"

namespace fan {

namespace {

const char* fidTypeName(uint8_t type) {
  switch (type) {
    case FAN_EVENT_INFO_TYPE_FID: return "fid";
    case FAN_EVENT_INFO_TYPE_DFID: return "dfid";
    case FAN_EVENT_INFO_TYPE_DFID_NAME: return "dfidName";
    case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME: return "oldDfidName";
    case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME: return "newDfidName";
    default: return "unknown";
  }
}

Napi::Value stringOrNull(Napi::Env env, bool has, const std::string& value) {
  return has ? Napi::String::New(env, value) : env.Null();
}

Napi::Object fidToJs(Napi::Env env, const FileIdRecord& fid) {
  Napi::Object obj = Napi::Object::New(env);
  obj.Set("type", fidTypeName(fid.type));
  obj.Set("infoType", fid.type);
  Napi::Array fsid = Napi::Array::New(env, 2);
  fsid.Set(0u, fid.fsid[0]);
  fsid.Set(1u, fid.fsid[1]);
  obj.Set("fsid", fsid);
  obj.Set("handleType", fid.handleType());
  obj.Set("handle", Napi::Buffer<char>::Copy(env, fid.handle.data(), fid.handle.size()));
  obj.Set("name", stringOrNull(env, fid.hasName, fid.name));
  return obj;
}

// Records other than file ids, shared by both forms.
void setExtraRecords(Napi::Object obj, const RawEvent& raw) {
  Napi::Env env = obj.Env();
  if (raw.hasError) {
    Napi::Object error = Napi::Object::New(env);
    error.Set("error", raw.error);
    error.Set("errorCount", raw.errorCount);
    obj.Set("fsError", error);
  }
  if (raw.hasRange) {
    Napi::Object range = Napi::Object::New(env);
    range.Set("offset", static_cast<double>(raw.rangeOffset));
    range.Set("count", static_cast<double>(raw.rangeCount));
    obj.Set("range", range);
  }
  if (raw.hasMountId) obj.Set("mountId", Napi::BigInt::New(env, raw.mountId));
}

}  // namespace

Napi::Object rawEventToJs(Napi::Env env, const RawEvent& raw) {
  Napi::Object obj = Napi::Object::New(env);
  obj.Set("eventLen", raw.eventLen);
  obj.Set("vers", raw.version);
  obj.Set("metadataLen", raw.metadataLen);
  obj.Set("mask", static_cast<double>(raw.mask));
  obj.Set("fd", raw.fd);
  obj.Set("pid", raw.pid);
  Napi::Array fids = Napi::Array::New(env, raw.fids.size());
  for (size_t i = 0; i < raw.fids.size(); i++) fids.Set(i, fidToJs(env, raw.fids[i]));
  obj.Set("fids", fids);
  if (raw.hasPidfd) obj.Set("pidfd", raw.pidfd);
  setExtraRecords(obj, raw);
  Napi::Array skipped = Napi::Array::New(env, raw.skippedRecordTypes.size());
  for (size_t i = 0; i < raw.skippedRecordTypes.size(); i++) skipped.Set(i, raw.skippedRecordTypes[i]);
  obj.Set("unknownRecords", skipped);
  return obj;
}

Napi::Object eventToJs(Napi::Env env, const Event& ev) {
  Napi::Object obj = Napi::Object::New(env);
  obj.Set("kind", static_cast<int>(ev.kind));
  obj.Set("mask", static_cast<double>(ev.raw.mask));
  obj.Set("pid", ev.raw.pid);
  obj.Set("fd", ev.fd);
  obj.Set("id", static_cast<double>(ev.id));
  obj.Set("group", ev.group);
  obj.Set("permissionGroup", ev.permissionGroup);
  obj.Set("isDirectory", ev.isDirectory);
  obj.Set("path", stringOrNull(env, ev.hasPath, ev.path));
  obj.Set("name", stringOrNull(env, ev.hasName, ev.name));
  obj.Set("oldPath", stringOrNull(env, ev.hasOldPath, ev.oldPath));
  obj.Set("newPath", stringOrNull(env, ev.hasNewPath, ev.newPath));
  if (ev.kind == Event::Kind::Error || ev.kind == Event::Kind::Warning) {
    obj.Set("errno", ev.err);
    obj.Set("message", ev.message);
  }
  setExtraRecords(obj, ev.raw);
  return obj;
}

}  // namespace fan
