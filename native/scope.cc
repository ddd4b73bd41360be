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

namespace {

bool matches(const ScopeRule& rule, const std::string& path, const std::string& base, std::string::size_type& rest) {
  switch (rule.kind) {
    case ScopeRule::Kind::Subtree:
      return below(path, base, rest);
    case ScopeRule::Kind::Children:
      return below(path, base, rest) && path.find('/', rest) == std::string::npos;
    case ScopeRule::Kind::Exact:
      rest = path.size();
      return path == base;
  }
  return false;
}

}  // namespace

Scope::Scope(std::vector<ScopeRule> rules) : rules_(std::move(rules)) {
  for (ScopeRule& rule : rules_) {
    if (rule.canonical.empty()) rule.canonical = rule.path;
    if (rule.canonical != rule.path) allCanonical_ = false;
    any_ |= rule.mask & ~kFlagBits;
  }
}

uint64_t Scope::covered(const std::string& path, uint64_t mask) const {
  const uint64_t events = mask & ~kFlagBits;
  uint64_t asked = 0;
  for (const ScopeRule& rule : rules_) {
    if ((rule.mask & events & ~asked) == 0) continue;
    std::string::size_type rest = 0;
    if (matches(rule, path, rule.path, rest)) asked |= rule.mask & events;
  }
  return asked;
}

uint64_t Scope::coveredCanonical(const std::string& canonical, uint64_t mask, std::string* asWatched) const {
  const uint64_t events = mask & ~kFlagBits;
  uint64_t asked = 0;
  bool translated = false;
  for (const ScopeRule& rule : rules_) {
    if ((rule.mask & events) == 0) continue;
    std::string::size_type rest = 0;
    if (!matches(rule, canonical, rule.canonical, rest)) continue;
    asked |= rule.mask & events;
    if (asWatched && !translated) {
      translated = true;
      *asWatched = rule.path;
      if (rest < canonical.size()) {
        if (asWatched->empty() || asWatched->back() != '/') asWatched->push_back('/');
        asWatched->append(canonical, rest, std::string::npos);
      }
    }
  }
  return asked;
}

uint64_t Scope::subtreeAt(dev_t dev, ino_t ino, uint64_t mask) const {
  const uint64_t events = mask & ~kFlagBits;
  uint64_t asked = 0;
  for (const ScopeRule& rule : rules_)
    if (rule.kind == ScopeRule::Kind::Subtree && rule.hasId && rule.dev == dev && rule.ino == ino)
      asked |= rule.mask & events;
  return asked;
}

}  // namespace fan
