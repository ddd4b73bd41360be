// The one decoder of kernel records. Turns the bytes that read(2) returned
// from a fanotify fd into plain C++ structs, validating every length first:
// a malformed or unknown record is skipped, never read past. Both the
// low-level module and the reader thread call this; nothing else parses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fan {

// One FID-type record: FID, DFID, DFID_NAME, OLD_DFID_NAME or NEW_DFID_NAME.
struct FileIdRecord {
  uint8_t type = 0;
  int32_t fsid[2] = {0, 0};
  // The struct file_handle exactly as the kernel wrote it (handle_bytes,
  // handle_type, f_handle), so it can be passed to open_by_handle_at as is.
  std::string handle;
  bool hasName = false;
  std::string name;

  // The f_handle bytes only, with the type: the key the path cache uses.
  uint32_t handleType() const;
  std::string handleKey() const;
};

struct RawEvent {
  uint32_t eventLen = 0;
  uint8_t version = 0;
  uint16_t metadataLen = 0;
  uint64_t mask = 0;
  int32_t fd = -1;
  int32_t pid = 0;

  std::vector<FileIdRecord> fids;
  bool hasPidfd = false;
  int32_t pidfd = -1;
  // The pidfds of further PIDFD records (the kernel writes one; a second one
  // keeps the first): a reader of a kernel fd must close these, see
  // closeDuplicatePidfds.
  std::vector<int32_t> duplicatePidfds;
  bool hasError = false;
  int32_t error = 0;
  uint32_t errorCount = 0;
  bool hasRange = false;
  uint64_t rangeOffset = 0;
  uint64_t rangeCount = 0;
  bool hasMountId = false;
  uint64_t mountId = 0;
  std::vector<uint8_t> skippedRecordTypes;  // unknown types, for the curious

  const FileIdRecord* findFid(uint8_t type) const;
};

// Decodes every complete event in buf[0, len). Returns the number of bytes
// consumed; a trailing partial event (which the kernel never produces) is
// left unconsumed rather than misread.
size_t decodeEvents(const uint8_t* buf, size_t len, std::vector<RawEvent>& out);

// Closes an event's duplicatePidfds: for events read from a kernel fd only
// (decoding caller-supplied bytes must never close the numbers in them).
void closeDuplicatePidfds(RawEvent& ev);

}  // namespace fan
