// Decoded C++ events -> plain JavaScript objects. lib/ wraps these in
// FanotifyEvent; keeping this layer flat keeps the boundary cheap.
#pragma once

#include <napi.h>

#include <vector>

#include "decoder.h"
#include "reader.h"

namespace fan {

// The low-level module's form: metadata plus every decoded info record.
Napi::Object rawEventToJs(Napi::Env env, const RawEvent& raw);

// The reader's form, one batch per hand-over: what FanotifyEvent needs,
// paths already resolved. Flat, because creating an object per event with a
// dozen named properties through Node-API cost more than everything else
// the reader does (see bench/). Layout, read by lib/batch.ts:
//   [0] Float64Array, kBatchNumbers per event, reused from batch to batch
//       (allocating one per hand-over was a tenth of a permission round
//       trip): only the first events * kBatchNumbers entries are this
//       batch's, and it is read before the next batch is made
//       kind, mask, pid, id, group,
//       flags (1: permission group, 2: directory, 4: process info read)
//       (no fd: the kernel's event fd stays in the reader's pending table;
//       JavaScript asks for a descriptor of its own by id, Reader::dupFd)
//   [1] Array, kBatchStrings per event: path, name, oldPath, newPath, comm,
//       exe (a string, or a hole where unknown); its length says how many events.
//       With `buffers` (the option encoding: 'buffer'), path, name, oldPath
//       and newPath are Buffers holding the kernel's exact bytes instead
//       (comm and exe stay strings)
//   [2] undefined, or { [index]: { errno, message, error, range, mountId } }
//       for the rare events that carry more
constexpr size_t kBatchNumbers = 6;
constexpr size_t kBatchStrings = 6;
// The bits of the flags number.
constexpr uint32_t kBatchPermissionGroup = 1;
constexpr uint32_t kBatchDirectory = 2;
constexpr uint32_t kBatchProcess = 4;
// This layout (sizes, flag bits, Event::Kind values) as an object, exported
// as `batchLayout`: lib/batch.ts checks its own copy against it.
Napi::Object batchLayout(Napi::Env env);
// `numbers` holds at least events.size() * kBatchNumbers entries.
Napi::Array batchToJs(Napi::Env env, const std::vector<Event>& events, Napi::Float64Array numbers, bool buffers);

}  // namespace fan
