// Unprivileged recursive watches: the walk that marks every directory of a
// tree (one inode mark each), and the compact record of what it marked.
//
// A DirSet is one recursive watch's directories: per directory its parent,
// its name, its inode and its file handle, in flat arrays (about 60 bytes
// a directory, no string per path). Paths are rebuilt from the parent
// chain when needed: to resolve an event's directory handle (the path
// resolver asks every set, see PathResolver::fromHandle), to remove the
// marks again, and to check that an entry still leads to its directory.
// A directory moved inside the tree is re-parented when it is followed, so
// everything below it resolves to its new place at once.
//
// Walks run on whichever thread calls them (the JavaScript thread for
// Fanotify, a walker thread for AsyncFanotify); the reader thread resolves
// paths meanwhile, so every public method takes the set's mutex.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "errors.h"

namespace fan {

class DirSet {
 public:
  // What a follow walk found in directories it marked: each becomes a
  // synthetic CREATE (the directory was marked after it was made).
  struct Found {
    std::string dir;
    std::string name;
    bool isDirectory;
  };
  struct WalkOptions {
    int groupFd = -1;
    unsigned flags = 0;  // FAN_MARK_ADD plus the watch's flags
    uint64_t mask = 0;
    // false (addWatch): every directory is marked (again, with this mask),
    // each after its entries were read, so the walk's own reads are not
    // events. true (a new directory): only directories not yet in the set
    // are marked, each before its entries are read, and what they hold is
    // collected into `found` (when not null).
    bool follow = false;
    std::vector<Found>* found = nullptr;
  };

  // Walks `root` (an absolute path, symbolic links resolved) and marks its
  // directories. Directories that vanish or cannot be read are skipped; any
  // other failure (ENOSPC: fs.fanotify.max_user_marks, EMFILE, ...) stops
  // the walk and returns false with `err` (marks placed so far stay, and are
  // in the set, so that a release takes them away).
  bool walk(const std::string& root, const WalkOptions& options, SysError& err);

  // The path of the directory with this key (fsid + struct file_handle, as
  // FileIdRecord::handleKey), as PathResolver::checkLocked answers: 1 in
  // the set and its path still leads to it (checked once per `batch`); -1
  // in the set but gone from that path (deleted, or moved out of the tree:
  // `out` is where it was last, the best answer for the events a deletion
  // leaves behind, e.g. rm -rf's DELETEs read after the directories went);
  // 0 not in the set.
  int pathOf(const std::string& key, uint64_t batch, std::string& out);

  // A directory moved to `name` in the directory with key `parentKey`: if
  // both are in the set, the moved one is re-parented (found by its handle,
  // looked up at its new path).
  void moved(const std::string& parentKey, const std::string& name, uint64_t batch);

  // Whether (dev, ino) is one of the set's directories.
  bool has(dev_t dev, ino_t ino);
  size_t size();
  // Stops a walk under way (it fails with ECANCELED at its next directory):
  // the watch was removed or the reader closed.
  void cancel() { cancelled_ = true; }
  // cancel(), then waits until no walk is under way (they stop at their next
  // directory): what the set holds then is all that was marked.
  void cancelAndWait();

  // Removes `bits` from the mark of every directory still at its place,
  // except what `keep` ((dev, ino) -> bits other watches need there) keeps.
  void release(int groupFd, unsigned flags, uint64_t bits, const std::unordered_map<std::string, uint64_t>& keep);
  // Adds every directory's (dev, ino) key with `bits` to `keep`.
  void collectKeys(uint64_t bits, std::unordered_map<std::string, uint64_t>& keep);
  static std::string inodeKey(dev_t dev, ino_t ino);

 private:
  static constexpr uint32_t kNone = 0xffffffff;
  struct Dir {
    uint64_t ino;
    uint32_t parent;     // index, or kNone: `name` is the full path
    uint32_t name;       // offset into names_
    uint32_t handle;     // offset into handles_ (struct file_handle as written)
    uint32_t checked;    // the batch its path was last found good in
    uint16_t nameLen;
    uint8_t handleLen;
    uint8_t fs;          // index into fs_
  };
  struct Fs {
    dev_t dev;
    int32_t fsid[2];
  };

  uint8_t fsIndexLocked(dev_t dev, int dirFd);
  int64_t findLocked(const char* handle, size_t len, uint8_t fs) const;
  uint32_t addLocked(uint32_t parent, const std::string& name, const char* handle, size_t len, uint8_t fs, ino_t ino);
  void setNameLocked(uint32_t index, uint32_t parent, const std::string& name);
  std::string pathLocked(uint32_t index) const;
  bool thereLocked(uint32_t index) const;
  void rehashLocked(size_t capacity);
  void pruneLocked();
  bool walkDir(int parentFd, const std::string& name, uint32_t parent, const std::string& path, const WalkOptions& o, SysError& err);

  std::mutex mu_;
  std::vector<Dir> dirs_;
  std::string names_;
  std::string handles_;
  std::vector<uint32_t> table_;  // open addressing: index + 1, 0 empty
  std::vector<Fs> fs_;
  size_t pruneAt_ = 1024;
  int walks_ = 0;  // walks under way
  std::condition_variable walksDone_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace fan
