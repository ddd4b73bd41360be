// Decoded C++ events -> plain JavaScript objects. lib/ wraps these in
// FanotifyEvent; keeping this layer flat keeps the boundary cheap.
#pragma once

#include <napi.h>

#include "decoder.h"
#include "reader.h"

namespace fan {

// The low-level module's form: metadata plus every decoded info record.
Napi::Object rawEventToJs(Napi::Env env, const RawEvent& raw);

// The reader's form: what FanotifyEvent needs, paths already resolved.
Napi::Object eventToJs(Napi::Env env, const Event& ev);

}  // namespace fan
