// Which events a group's marks asked for, by path. A recursive watch places
// a filesystem mark, which reports the whole filesystem; the scope keeps only
// events inside the watched trees (and inside the group's other marks), so
// events outside never reach JavaScript and permission events outside are
// answered at once. Pure logic: no locks, no system calls.
//
// Each rule is known by two paths and by its object. `path` is where the
// user's process sees it; `canonical` is where it is through the mount the
// reader resolves file handles on (see PathResolver::locate): the two differ
// only when the watched path itself is reached through a bind mount. An
// event whose path (as the opener's mount shows it) is under no rule is
// placed again by its object: by its canonical path, or, when no path can
// be read (deeper than PATH_MAX), by the directories above it (dev, inode).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fan {

struct ScopeRule {
  enum class Kind : uint8_t {
    Subtree,   // the path and everything below it (recursive watches)
    Children,  // the path and its direct children (a directory's inode mark)
    Exact,     // the path only (a file, or a directory without onChildren)
  };
  Kind kind;
  std::string path;
  uint64_t mask;  // event bits the mark asked for
  // Filled by Reader::setScope from the object at `path` when the scope is set.
  std::string canonical = {};
  bool hasId = false;
  dev_t dev = 0;
  ino_t ino = 0;
};

class Scope {
 public:
  explicit Scope(std::vector<ScopeRule> rules);

  // The events of `mask` that rules covering `path` asked for (0: none).
  uint64_t covered(const std::string& path, uint64_t mask) const;
  // The same for a canonical path; `asWatched` (if given and something
  // matched) becomes the path under the first matching rule's `path`.
  uint64_t coveredCanonical(const std::string& canonical, uint64_t mask, std::string* asWatched) const;
  // The events of `mask` that subtree rules rooted at this object asked for.
  uint64_t subtreeAt(dev_t dev, ino_t ino, uint64_t mask) const;
  // Every event bit any rule asked for.
  uint64_t anyMask() const { return any_; }
  // Every rule's canonical path is its path: a path seen through the
  // canonical mount needs no second look.
  bool allCanonical() const { return allCanonical_; }

 private:
  std::vector<ScopeRule> rules_;
  uint64_t any_ = 0;
  bool allCanonical_ = true;
};

using ScopePtr = std::shared_ptr<const Scope>;

// `path` is `base` or lies below it (the one such test in native code);
// `restStart` gets where what follows "base/" starts.
bool below(const std::string& path, const std::string& base, std::string::size_type& restStart);

}  // namespace fan
