#include "decoder.h"

#include <unistd.h>

#include <cstring>

#include "fan_constants.h"

namespace fan {

namespace {

template <typename T>
T load(const uint8_t* p) {
  // Records are packed after variable-length names and handles, so they are
  // not guaranteed to be aligned: copy instead of casting.
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

bool isFileIdType(uint8_t type) {
  switch (type) {
    case FAN_EVENT_INFO_TYPE_FID:
    case FAN_EVENT_INFO_TYPE_DFID:
    case FAN_EVENT_INFO_TYPE_DFID_NAME:
    case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME:
    case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME:
      return true;
    default:
      return false;
  }
}

bool hasNameAfterHandle(uint8_t type) {
  return type == FAN_EVENT_INFO_TYPE_DFID_NAME ||
         type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME ||
         type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME;
}

// header(4) + fsid(8), then struct file_handle { u32 bytes; s32 type; u8 f_handle[bytes] }.
constexpr size_t kFidFixed = sizeof(fanotify_event_info_header) + 8;
constexpr size_t kHandleHeader = 8;

bool decodeFileId(const uint8_t* rec, size_t len, FileIdRecord& out) {
  if (len < kFidFixed + kHandleHeader) return false;
  out.type = rec[0];
  out.fsid[0] = load<int32_t>(rec + 4);
  out.fsid[1] = load<int32_t>(rec + 8);
  const uint8_t* handle = rec + kFidFixed;
  uint32_t handleBytes = load<uint32_t>(handle);
  size_t handleTotal = kHandleHeader + static_cast<size_t>(handleBytes);
  if (handleTotal > len - kFidFixed) return false;
  out.handle.assign(reinterpret_cast<const char*>(handle), handleTotal);
  if (hasNameAfterHandle(out.type)) {
    const char* name = reinterpret_cast<const char*>(handle + handleTotal);
    size_t room = len - kFidFixed - handleTotal;
    out.name.assign(name, strnlen(name, room));
    out.hasName = true;
  }
  return true;
}

void decodeRecord(const uint8_t* rec, size_t len, RawEvent& ev) {
  uint8_t type = rec[0];
  if (isFileIdType(type)) {
    FileIdRecord fid;
    if (decodeFileId(rec, len, fid)) ev.fids.push_back(std::move(fid));
    return;
  }
  switch (type) {
    case FAN_EVENT_INFO_TYPE_PIDFD:
      if (len >= 8) {
        int32_t pidfd = load<int32_t>(rec + 4);
        if (ev.hasPidfd) {
          ev.duplicatePidfds.push_back(pidfd);  // keep the first; the reader closes this one
        } else {
          ev.hasPidfd = true;
          ev.pidfd = pidfd;
        }
      }
      return;
    case FAN_EVENT_INFO_TYPE_ERROR:
      if (len >= 12) {
        ev.hasError = true;
        ev.error = load<int32_t>(rec + 4);
        ev.errorCount = load<uint32_t>(rec + 8);
      }
      return;
    case FAN_EVENT_INFO_TYPE_RANGE:  // header, u32 pad, u64 offset, u64 count
      if (len >= 24) {
        ev.hasRange = true;
        ev.rangeOffset = load<uint64_t>(rec + 8);
        ev.rangeCount = load<uint64_t>(rec + 16);
      }
      return;
    case FAN_EVENT_INFO_TYPE_MNT:  // header, then u64 mnt_id at its natural alignment
      if (len >= 16) {
        ev.hasMountId = true;
        ev.mountId = load<uint64_t>(rec + 8);
      }
      return;
    default:
      ev.skippedRecordTypes.push_back(type);
  }
}

}  // namespace

uint32_t FileIdRecord::handleType() const {
  return handle.size() >= kHandleHeader ? load<uint32_t>(reinterpret_cast<const uint8_t*>(handle.data()) + 4) : 0;
}

std::string FileIdRecord::handleKey() const {
  std::string key(reinterpret_cast<const char*>(fsid), sizeof(fsid));
  key.append(handle);
  return key;
}

const FileIdRecord* RawEvent::findFid(uint8_t type) const {
  for (const auto& fid : fids)
    if (fid.type == type) return &fid;
  return nullptr;
}

void closeDuplicatePidfds(RawEvent& ev) {
  for (int32_t fd : ev.duplicatePidfds)
    if (fd >= 0) ::close(fd);
  ev.duplicatePidfds.clear();
}

size_t decodeEvents(const uint8_t* buf, size_t len, std::vector<RawEvent>& out) {
  size_t offset = 0;
  while (len - offset >= sizeof(fanotify_event_metadata)) {
    const uint8_t* p = buf + offset;
    auto meta = load<fanotify_event_metadata>(p);
    if (meta.event_len < sizeof(fanotify_event_metadata) || meta.event_len > len - offset) break;
    if (meta.metadata_len < sizeof(fanotify_event_metadata) || meta.metadata_len > meta.event_len) break;

    RawEvent ev;
    ev.eventLen = meta.event_len;
    ev.version = meta.vers;
    ev.metadataLen = meta.metadata_len;
    ev.mask = meta.mask;
    ev.fd = meta.fd;
    ev.pid = meta.pid;

    size_t recordOffset = meta.metadata_len;
    const size_t header = sizeof(fanotify_event_info_header);
    while (meta.event_len - recordOffset >= header) {
      const uint8_t* rec = p + recordOffset;
      uint16_t recLen = load<uint16_t>(rec + 2);
      if (recLen < header || recLen > meta.event_len - recordOffset) break;
      decodeRecord(rec, recLen, ev);
      recordOffset += recLen;
    }
    out.push_back(std::move(ev));
    offset += meta.event_len;
  }
  return offset;
}

}  // namespace fan
