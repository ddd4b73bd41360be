// The faithful syscall layer behind `fanotify/low-level`: no policy, no
// threads; each function is one system call and throws its errno.
#pragma once

#include <napi.h>

namespace fan {

void initLowLevel(Napi::Env env, Napi::Object exports);

}  // namespace fan
