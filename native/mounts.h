// Mount points of the mount ids that mount events carry (MNT_ATTACH /
// MNT_DETACH, Linux 6.15). The id is the kernel's unique 64-bit mount id
// (statx's STATX_MNT_ID_UNIQUE, statmount's and listmount's), not the reused
// 32-bit one of /proc/self/mountinfo. statmount(2) says where a mount is
// while it is attached; a detached one is no longer found, so every place
// learnt is remembered: from a listing of each marked namespace when its
// mark is placed (listmount), and from each attach or move read since.
//
// Runs on the reader thread (mountPoint) and the JavaScript thread
// (rememberNamespace, when a mark is placed): every public method locks.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace fan {

class MountResolver {
 public:
  // Learns the mount namespace behind an nsfs path about to be marked
  // (/proc/self/ns/mnt, /proc/PID/ns/mnt): its id, and where each of its
  // mounts is now. Best effort: a kernel without NS_GET_MNTNS_ID or
  // listmount leaves it to statmount in this process's own namespace.
  void rememberNamespace(int dirfd, const std::string& path);

  struct Place {
    bool hasPath = false;
    std::string path;      // where the mount is (attach, move) or was (detach)
    bool hasPrevious = false;
    std::string previous;  // a moved mount's former mount point
  };
  // The mount point of `mountId` as the event (`mask`: FAN_MNT_ATTACH and/or
  // FAN_MNT_DETACH) is read. Both bits: a move within the namespace.
  Place mountPoint(uint64_t mountId, uint64_t mask);

 private:
  bool statmountPoint(uint64_t mountId, uint64_t nsId, std::string& out) const;
  void learn(uint64_t mountId, std::string path);

  static constexpr size_t kPlacesLimit = 16384;
  std::mutex mu_;
  std::vector<uint64_t> namespaces_;                  // ids of the marked namespaces
  std::unordered_map<uint64_t, std::string> places_;  // mount id -> its last known mount point
};

}  // namespace fan
