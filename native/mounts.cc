#include "mounts.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "fan_constants.h"

namespace fan {

namespace {

// statmount(2) and listmount(2), Linux 6.8: the same numbers on every
// architecture; the headers of the build machine may predate them.
#ifndef SYS_statmount
#define SYS_statmount 457
#endif
#ifndef SYS_listmount
#define SYS_listmount 458
#endif
// struct mnt_id_req: size, spare, mnt_id, param, and (Linux 6.11,
// MNT_ID_REQ_SIZE_VER1) mnt_ns_id.
struct MountIdRequest {
  uint32_t size;
  uint32_t spare;
  uint64_t mntId;
  uint64_t param;
  uint64_t mntNsId;
};
constexpr uint32_t kRequestSizeVer0 = 24;
constexpr uint32_t kRequestSizeVer1 = 32;
static_assert(sizeof(MountIdRequest) == kRequestSizeVer1, "struct mnt_id_req");
constexpr uint64_t kWantMntPoint = 0x10;  // STATMOUNT_MNT_POINT
constexpr uint64_t kListmountRoot = ~0ull;     // LSMT_ROOT
// struct statmount is 512 bytes in every version (its spare space shrinks
// as fields are added); the strings follow it. The fields read here:
constexpr size_t kStatmountMask = 8;       // __u64 mask: what was written
constexpr size_t kStatmountMntPoint = 108;  // __u32 mnt_point: offset into str
constexpr size_t kStatmountSize = 512;
// NS_GET_MNTNS_ID (Linux 6.11): _IOR(0xb7, 0x5, __u64).
constexpr unsigned long kNsGetMntnsId = 0x8008b705UL;
constexpr size_t kMaxListed = 65536;  // mounts listed per namespace at most

}  // namespace

bool MountResolver::statmountPoint(uint64_t mountId, uint64_t nsId, std::string& out) const {
  MountIdRequest req{nsId ? kRequestSizeVer1 : kRequestSizeVer0, 0, mountId, kWantMntPoint, nsId};
  std::vector<char> buf(kStatmountSize + 2 * PATH_MAX);
  if (syscall(SYS_statmount, &req, buf.data(), buf.size(), 0) != 0) return false;
  uint64_t mask;
  uint32_t offset;
  std::memcpy(&mask, buf.data() + kStatmountMask, sizeof mask);
  std::memcpy(&offset, buf.data() + kStatmountMntPoint, sizeof offset);
  if (!(mask & kWantMntPoint) || kStatmountSize + offset >= buf.size()) return false;
  const char* point = buf.data() + kStatmountSize + offset;
  out.assign(point, strnlen(point, buf.size() - kStatmountSize - offset));
  return !out.empty();
}

void MountResolver::learn(uint64_t mountId, std::string path) {
  if (places_.size() >= kPlacesLimit && places_.find(mountId) == places_.end()) places_.clear();
  places_[mountId] = std::move(path);
}

void MountResolver::rememberNamespace(int dirfd, const std::string& path) {
  int fd = openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  uint64_t nsId = 0;
  bool known = ioctl(fd, kNsGetMntnsId, &nsId) == 0 && nsId != 0;
  ::close(fd);
  if (!known) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (std::find(namespaces_.begin(), namespaces_.end(), nsId) != namespaces_.end()) return;
    namespaces_.push_back(nsId);
  }
  // Where each mount of the namespace is now: a mount detached later is no
  // longer found by statmount.
  std::vector<uint64_t> ids(1024);
  std::vector<std::pair<uint64_t, std::string>> found;
  MountIdRequest req{kRequestSizeVer1, 0, kListmountRoot, 0, nsId};
  for (size_t listed = 0; listed < kMaxListed;) {
    long n = syscall(SYS_listmount, &req, ids.data(), ids.size(), 0);
    if (n <= 0) break;
    for (long i = 0; i < n; i++) {
      std::string point;
      if (statmountPoint(ids[i], nsId, point)) found.emplace_back(ids[i], std::move(point));
    }
    listed += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < ids.size()) break;
    req.param = ids[n - 1];  // continue after the last id listed
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, point] : found) learn(id, std::move(point));
}

MountResolver::Place MountResolver::mountPoint(uint64_t mountId, uint64_t mask) {
  std::vector<uint64_t> namespaces;
  {
    std::lock_guard<std::mutex> lock(mu_);
    namespaces = namespaces_;
  }
  if (namespaces.empty()) namespaces.push_back(0);  // this process's own namespace
  std::string now;
  bool attached = false;
  for (uint64_t ns : namespaces)
    if ((attached = statmountPoint(mountId, ns, now))) break;

  Place place;
  std::lock_guard<std::mutex> lock(mu_);
  auto known = places_.find(mountId);
  if (attached) {
    if ((mask & FAN_MNT_DETACH) && known != places_.end() && known->second != now) {
      place.hasPrevious = true;
      place.previous = known->second;
    }
    place.hasPath = true;
    place.path = now;
    learn(mountId, std::move(now));
  } else if (known != places_.end()) {
    // Detached (or attached and gone again before this read): where it was.
    place.hasPath = true;
    place.path = known->second;
    if (!(mask & FAN_MNT_ATTACH)) places_.erase(known);
  }
  return place;
}

}  // namespace fan
