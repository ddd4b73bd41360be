#include "scope.h"

#include <cstring>

namespace fan {

namespace {

constexpr uint64_t kFlagBits = 0x40000000 | 0x08000000;  // FAN_ONDIR | FAN_EVENT_ON_CHILD

}  // namespace

bool below(const std::string& path, const std::string& base, std::string::size_type& restStart) {
  if (base == "/") {
    restStart = 1;
    return !path.empty() && path[0] == '/';
  }
  if (path.size() < base.size() || path.compare(0, base.size(), base) != 0) return false;
  if (path.size() == base.size()) {
    restStart = path.size();
    return true;
  }
  if (path[base.size()] != '/') return false;
  restStart = base.size() + 1;
  return true;
}

uint64_t Scope::covered(const std::string& path, uint64_t mask) const {
  const uint64_t events = mask & ~kFlagBits;
  uint64_t asked = 0;
  for (const ScopeRule& rule : rules_) {
    if ((rule.mask & events & ~asked) == 0) continue;
    std::string::size_type rest = 0;
    bool match = false;
    switch (rule.kind) {
      case ScopeRule::Kind::Subtree:
        match = below(path, rule.path, rest);
        break;
      case ScopeRule::Kind::Children:
        match = below(path, rule.path, rest) && path.find('/', rest) == std::string::npos;
        break;
      case ScopeRule::Kind::Exact:
        match = path == rule.path;
        break;
    }
    if (match) asked |= rule.mask & events;
  }
  return asked;
}

}  // namespace fan
