// libFuzzer target for the decoder (native/decoder.cc), built by
// scripts/fuzz.sh with ASan and UBSan: `npm run fuzz -- --seconds 60`.
//
// libFuzzer hands over a heap copy of exactly `size` bytes, so any read past
// the buffer that read(2) would have returned is an ASan report. Beyond
// memory safety it checks what decoder.h promises: only whole events are
// consumed, each within the bytes given, and every record lies inside its
// event.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../decoder.h"
#include "../fan_constants.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();  // libFuzzer reports the input as a crash
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<fan::RawEvent> events;
  size_t used = fan::decodeEvents(data, size, events);
  check(used <= size);

  size_t total = 0;
  for (const auto& ev : events) {
    check(ev.eventLen >= sizeof(fanotify_event_metadata));
    check(ev.metadataLen >= sizeof(fanotify_event_metadata) && ev.metadataLen <= ev.eventLen);
    total += ev.eventLen;
    size_t recordBytes = ev.eventLen - ev.metadataLen;
    for (const auto& fid : ev.fids) {
      // The handle (with its 8-byte header) and the name come from inside the event.
      check(fid.handle.size() >= 8 && fid.handle.size() <= recordBytes);
      check(fid.name.size() <= recordBytes);
      uint32_t handleBytes;
      std::memcpy(&handleBytes, fid.handle.data(), sizeof(handleBytes));
      check(fid.handle.size() == 8 + static_cast<size_t>(handleBytes));
      (void)fid.handleType();
      check(fid.handleKey().size() == sizeof(fid.fsid) + fid.handle.size());
    }
    (void)ev.findFid(FAN_EVENT_INFO_TYPE_DFID_NAME);
  }
  check(total == used);
  // What is left is less than one event's worth of valid header, or malformed.
  return 0;
}
