// Turns what an event carries (an fd, or file handles plus a name) into a
// path. Runs on the reader thread, so the JavaScript thread never pays for
// readlink or open_by_handle_at.
//
// Locking: the JavaScript thread adds marked paths while the reader thread
// resolves, so every public method takes mu_. Resolution is short (a map
// lookup, at most one open_by_handle_at and one readlink) and never blocks
// on anything the other thread holds.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "decoder.h"

namespace fan {

class PathResolver {
 public:
  PathResolver() = default;
  ~PathResolver();
  PathResolver(const PathResolver&) = delete;
  PathResolver& operator=(const PathResolver&) = delete;

  // Remembers a marked object's handle and keeps an fd on its filesystem, so
  // FID events for it and its children resolve even without privileges.
  void rememberMarked(int dirfd, const std::string& path, bool followLinks);

  // "/proc/self/fd/N" -> path, with the " (deleted)" suffix removed.
  static bool fromFd(int fd, std::string& out);

  // A directory or file handle -> path: the marked-path table first, then
  // the bounded cache, then open_by_handle_at where a mount fd is known and
  // the process may (CAP_DAC_READ_SEARCH).
  bool fromHandle(const FileIdRecord& fid, std::string& out);

  // A directory moved or went away: its cached path is no longer true.
  void forget(const FileIdRecord& fid);

  void closeAll();

 private:
  static constexpr size_t kCacheLimit = 4096;
  static uint64_t fsidKey(const int32_t fsid[2]);

  std::mutex mu_;
  std::unordered_map<std::string, std::string> marked_;  // handleKey -> path
  std::unordered_map<std::string, std::string> cache_;   // handleKey -> path
  std::unordered_map<uint64_t, int> mountFds_;           // fsid -> O_PATH fd
};

}  // namespace fan
