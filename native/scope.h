// Which events a group's marks asked for, by path. A recursive watch places
// a filesystem mark, which reports the whole filesystem; the scope keeps only
// events inside the watched trees (and inside the group's other marks), so
// events outside never reach JavaScript and permission events outside are
// answered at once. Pure logic: no locks, no system calls.
#pragma once

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
};

class Scope {
 public:
  explicit Scope(std::vector<ScopeRule> rules) : rules_(std::move(rules)) {}

  // The events of `mask` that rules covering `path` asked for (0: none).
  uint64_t covered(const std::string& path, uint64_t mask) const;

 private:
  std::vector<ScopeRule> rules_;
};

using ScopePtr = std::shared_ptr<const Scope>;

// `path` is `base` or lies below it (the one such test in native code);
// `restStart` gets where what follows "base/" starts.
bool below(const std::string& path, const std::string& base, std::string::size_type& restStart);

}  // namespace fan
