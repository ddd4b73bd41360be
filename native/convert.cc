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
    // FS_ERROR: the filesystem's errno and how many errors it merged.
    Napi::Object error = Napi::Object::New(env);
    error.Set("errno", raw.error);
    error.Set("count", raw.errorCount);
    obj.Set("error", error);
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

namespace {

// Sets strings[index] = value. Raw napi: per event, the C++ wrappers'
// checks and handle juggling showed in profiles.
void setString(napi_env env, napi_value strings, uint32_t index, const std::string& value) {
  napi_value str;
  napi_create_string_utf8(env, value.data(), value.size(), &str);
  napi_set_element(env, strings, index, str);
}

// Sets strings[index] to a Buffer with value's bytes: names are bytes on
// Linux, and a name that is not UTF-8 must survive to be opened again.
void setBytes(napi_env env, napi_value strings, uint32_t index, const std::string& value) {
  napi_value buf;
  napi_create_buffer_copy(env, value.size(), value.data(), nullptr, &buf);
  napi_set_element(env, strings, index, buf);
}

bool hasExtras(const Event& ev) {
  return ev.kind == Event::Kind::Error || ev.kind == Event::Kind::Warning || ev.raw.hasError || ev.raw.hasRange ||
         ev.raw.hasMountId;
}

}  // namespace

Napi::Array batchToJs(Napi::Env env, const std::vector<Event>& events, Napi::Float64Array numbers, bool buffers) {
  const size_t n = events.size();
  double* num = numbers.Data();
  napi_value strings;
  napi_create_array_with_length(env, n * kBatchStrings, &strings);
  Napi::Value extras = env.Undefined();
  // Chosen once per batch, not per string.
  auto* setPath = buffers ? &setBytes : &setString;

  for (size_t i = 0; i < n; i++) {
    const Event& ev = events[i];
    double* row = num + i * kBatchNumbers;
    row[0] = static_cast<double>(ev.kind);
    row[1] = static_cast<double>(ev.raw.mask);
    row[2] = ev.raw.pid;
    row[3] = static_cast<double>(ev.id);
    row[4] = ev.group;
    row[5] = (ev.permissionGroup ? kBatchPermissionGroup : 0) | (ev.isDirectory ? kBatchDirectory : 0) |
             (ev.hasProcess ? kBatchProcess : 0);

    const uint32_t base = static_cast<uint32_t>(i * kBatchStrings);
    // Unknown strings stay holes (read as null): a set per string is most of
    // this loop's cost.
    if (ev.hasPath) setPath(env, strings, base, ev.path);
    if (ev.hasName) setPath(env, strings, base + 1, ev.name);
    if (ev.hasOldPath) setPath(env, strings, base + 2, ev.oldPath);
    if (ev.hasNewPath) setPath(env, strings, base + 3, ev.newPath);
    if (ev.process.hasComm) setString(env, strings, base + 4, ev.process.comm);
    if (ev.process.hasExe) setString(env, strings, base + 5, ev.process.exe);

    if (hasExtras(ev)) {
      if (extras.IsUndefined()) extras = Napi::Object::New(env);
      Napi::Object extra = Napi::Object::New(env);
      if (ev.kind == Event::Kind::Error || ev.kind == Event::Kind::Warning) {
        extra.Set("errno", ev.err);
        extra.Set("message", ev.message);
      }
      setExtraRecords(extra, ev.raw);
      extras.As<Napi::Object>().Set(static_cast<uint32_t>(i), extra);
    }
  }
  Napi::Array batch = Napi::Array::New(env, 3);
  batch.Set(0u, numbers);
  batch.Set(1u, Napi::Value(env, strings));
  batch.Set(2u, extras);
  return batch;
}

Napi::Object batchLayout(Napi::Env env) {
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("numbers", static_cast<double>(kBatchNumbers));
  layout.Set("strings", static_cast<double>(kBatchStrings));
  layout.Set("permissionGroup", kBatchPermissionGroup);
  layout.Set("directory", kBatchDirectory);
  layout.Set("process", kBatchProcess);
  layout.Set("normal", static_cast<uint32_t>(Event::Kind::Normal));
  layout.Set("overflow", static_cast<uint32_t>(Event::Kind::Overflow));
  layout.Set("error", static_cast<uint32_t>(Event::Kind::Error));
  layout.Set("warning", static_cast<uint32_t>(Event::Kind::Warning));
  return layout;
}

}  // namespace fan
