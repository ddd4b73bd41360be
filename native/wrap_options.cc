// Reading JavaScript's arguments into the native types (see wrap_options.h).
#include "wrap_options.h"

namespace fan {

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

bool parseBuffers(const Napi::Value& options) {
  return options.IsObject() && options.As<Napi::Object>().Get("buffers").ToBoolean().Value();
}

std::vector<ScopeRule> parseScopeRules(const Napi::Array& list) {
  std::vector<ScopeRule> rules;
  rules.reserve(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Object r = list.Get(i).As<Napi::Object>();
    rules.push_back({static_cast<ScopeRule::Kind>(r.Get("kind").As<Napi::Number>().Uint32Value()),
                     r.Get("path").As<Napi::String>().Utf8Value(),
                     static_cast<uint64_t>(r.Get("mask").As<Napi::Number>().Int64Value())});
  }
  return rules;
}

}  // namespace fan
