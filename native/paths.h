// Turns what an event carries (an fd, or file handles plus a name) into a
// path. Runs on the reader thread, so the JavaScript thread never pays for
// readlink or open_by_handle_at.
//
// The resolver never opens anything inside a watched tree: its own opens
// would show up as events, and a held fd would pin the inode (the kernel
// sends DELETE_SELF only when the last reference goes). Known paths are
// checked against the inode they were learnt for before each use, so a
// renamed or replaced directory is re-resolved instead of reported stale.
//
// Locking: the JavaScript thread adds marked paths while the reader thread
// resolves, so every public method takes mu_. Resolution is short (a map
// lookup and a stat, at most one open_by_handle_at and one readlink) and
// never waits on anything the other thread holds.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "decoder.h"
#include "lru.h"

namespace fan {

class PathResolver {
 public:
  PathResolver();
  ~PathResolver();
  PathResolver(const PathResolver&) = delete;
  PathResolver& operator=(const PathResolver&) = delete;

  // Learns a path about to be marked: its handle (FID events for it and its
  // children resolve even without privileges) and, where the process may use
  // open_by_handle_at, an fd on its filesystem. Call before fanotify_mark so
  // that nothing done here is reported.
  void rememberMarked(int dirfd, const std::string& path, bool followLinks);

  // "/proc/self/fd/N" -> path, with the " (deleted)" suffix removed.
  bool fromFd(int fd, std::string& out) const;

  // A directory or file handle (plus its name, if any) -> path.
  bool fromHandle(const FileIdRecord& fid, std::string& out);

  // Starts a read batch: a known path is checked against its inode once per
  // batch, not per event. That is as current as checking every event, since
  // the whole batch is resolved after all its events happened.
  void newBatch();

  // Closes the mount fds, or with `later`, hands them over to be closed by the caller.
  void closeAll(std::vector<int>* later = nullptr);

 private:
  // An fd on a detached clone of the mount, and where the original is
  // mounted: paths read through the clone are relative to its root.
  // /proc/self/fd, for readlinkat (see fromFd); closed by closeAll.
  int procFds_ = -1;
  struct MountFd {
    int fd;
    std::string root;
  };
  struct Known {
    std::string path;
    dev_t dev;
    ino_t ino;
    uint64_t checkedInBatch = 0;
  };
  static constexpr size_t kCacheLimit = 4096;
  // marked_ is checked for objects gone (or moved away) once it holds this
  // many, then at twice what is left: unwatched directories deleted since do
  // not pile up until close.
  static constexpr size_t kMarkedPruneMin = 1024;
  size_t markedPruneAt_ = kMarkedPruneMin;
  void pruneMarkedLocked();
  static uint64_t fsidKey(const int32_t fsid[2]);
  bool stillThere(Known& known);
  int checkLocked(Known* known, std::string& out);
  bool openByHandle(const FileIdRecord& fid, Known& out);
  static MountFd openMount(const std::string& path, dev_t dev);

  std::mutex mu_;
  uint64_t batch_ = 1;
  std::unordered_map<std::string, Known> marked_;  // handleKey -> marked object
  LruMap<Known> cache_{kCacheLimit};              // handleKey -> resolved directory
  std::unordered_map<uint64_t, MountFd> mountFds_;
};

}  // namespace fan
