// Module entry: the low-level syscalls and the Reader class.
#include <napi.h>

#include "convert.h"
#include "low_level.h"
#include "reader_wrap.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  fan::initLowLevel(env, exports);
  exports.Set("Reader", fan::ReaderWrap::Init(env));
  exports.Set("batchLayout", fan::batchLayout(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(fanotify, Init)
