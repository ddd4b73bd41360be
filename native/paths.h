// Turns what an event carries (an fd, or file handles plus a name) into a
// path. Runs on the reader thread, so the JavaScript thread never pays for
// readlink or open_by_handle_at.
//
// The resolver never opens anything inside a watched tree: its own opens
// would show up as events, and a held fd would pin the inode (the kernel
// sends DELETE_SELF only when the last reference goes). The exceptions are
// O_PATH fds (locate, open_by_handle_at), which fanotify never reports and
// which are closed before the call returns. Known paths are
// checked against the inode they were learnt for before each use, so a
// renamed or replaced directory is re-resolved instead of reported stale.
//
// Locking: the JavaScript thread adds marked paths while the reader thread
// resolves, so every public method takes mu_. Resolution is short (a map
// lookup and a stat, at most one open_by_handle_at and one readlink) and
// never waits on anything the other thread holds.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "decoder.h"
#include "lru.h"

namespace fan {

class DirSet;

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

  // Learns a filesystem about to be marked whole (FAN_MARK_FILESYSTEM) by a
  // group without file ids: an fd on a clone of its mount, for locate().
  // Call before fanotify_mark, as rememberMarked.
  void rememberFilesystem(int dirfd, const std::string& path, bool followLinks);

  // Where the object behind an event fd is, whichever mount it was reached
  // through (a bind mount, another mount namespace): the scope filter's
  // second look when the path the opener's mount shows is under no rule.
  // Opens only O_PATH fds (which fanotify never reports), through the clone
  // of a mount remembered for its filesystem.
  struct Location {
    enum class Kind : uint8_t {
      Unknown,   // no remembered mount for its filesystem, no handle, or no path and not a directory
      SeenPath,  // `seenPath` was read through the remembered mount itself: it already is canonical
      Found,     // `path`: where the object is through the remembered mount (the canonical path)
      Walked,    // no path could be read; `ancestor` was called for it and every directory above it
    };
    Kind kind = Kind::Unknown;
    std::string path;
    std::string mountRoot;  // where the remembered mount of its filesystem is
  };
  Location locate(int fd, bool seenPath, const std::function<void(dev_t, ino_t)>& ancestor);

  // "/proc/self/fd/N" -> path, with the " (deleted)" suffix removed.
  bool fromFd(int fd, std::string& out) const;

  // A directory or file handle (plus its name, if any) -> path.
  bool fromHandle(const FileIdRecord& fid, std::string& out);

  // The object of an FS_ERROR event -> path. Resolving the handle of a
  // corrupted object trips the filesystem's error check again, which the
  // kernel reports as a new FS_ERROR event caused by this process: so each
  // handle that fails is tried once only (later events about it get no
  // path), and the one echo of that try is recognised (Echo: drop it).
  // `fromSelf`: the event was caused by this process. A null handle (an
  // error of the whole filesystem) has no path and is never tried.
  enum class ErrorObject : uint8_t { Resolved, Unresolved, Echo };
  ErrorObject errorObject(const FileIdRecord& fid, bool fromSelf, std::string& out);

  // Starts a read batch: a known path is checked against its inode once per
  // batch, not per event. That is as current as checking every event, since
  // the whole batch is resolved after all its events happened.
  void newBatch();

  // The directory sets of unprivileged recursive watches (walker.h): their
  // directories resolve like marked ones. Ids are small integers.
  int addDirSet();
  std::shared_ptr<DirSet> dirSet(int id);
  void dropDirSet(int id);
  // A directory was moved to `to` (its new parent's handle and its name):
  // where a set holds both, the directory takes its new place there.
  void directoryMoved(const FileIdRecord& to);
  // Runs a walk of a set on a thread of its own; closeAll cancels the sets
  // and joins these threads, so none outlives the reader.
  void startWalker(std::function<void()> walk);

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
    dev_t dev = 0;
    uint64_t mountId = 0;  // of the original mount (statx STATX_MNT_ID), 0: unknown
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
  void ensureMount(const int32_t fsid[2], const std::string& resolved, dev_t dev);
  bool walkUp(int fd, const std::function<void(dev_t, ino_t)>& ancestor);

  // errorObject's handles that did not resolve: when, and whether the echo
  // of that try is still to come. Cleared whole when it grows past the limit.
  struct Unresolvable {
    std::chrono::steady_clock::time_point tried;
    bool echoPending;
  };
  static constexpr size_t kUnresolvableLimit = 1024;
  std::unordered_map<std::string, Unresolvable> unresolvable_;

  std::mutex mu_;
  uint64_t batch_ = 1;
  std::unordered_map<std::string, Known> marked_;  // handleKey -> marked object
  LruMap<Known> cache_{kCacheLimit};              // handleKey -> resolved directory
  std::unordered_map<uint64_t, MountFd> mountFds_;
  std::vector<std::shared_ptr<DirSet>> dirSets_;  // by id; null once dropped
  std::vector<std::thread> walkers_;
};

}  // namespace fan
