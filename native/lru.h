// A map with a size limit that forgets the least recently used entry first.
// Used for directories the path resolver learnt through open_by_handle_at:
// a busy tree keeps its hot directories, and memory stays bounded however
// many directories an event stream touches. Not thread-safe: the owner locks.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

namespace fan {

template <typename V>
class LruMap {
 public:
  explicit LruMap(size_t limit) : limit_(limit) {}

  // The entry for `key`, now the most recently used; null if absent.
  V* find(const std::string& key) {
    auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second.pos);
    return &it->second.value;
  }

  void put(const std::string& key, V value) {
    if (V* existing = find(key)) {
      *existing = std::move(value);
      return;
    }
    if (map_.size() >= limit_ && !order_.empty()) {
      map_.erase(order_.back());
      order_.pop_back();
    }
    order_.push_front(key);
    map_.emplace(key, Slot{std::move(value), order_.begin()});
  }

  void clear() {
    map_.clear();
    order_.clear();
  }

 private:
  using Order = std::list<std::string>;
  struct Slot {
    V value;
    typename Order::iterator pos;
  };
  size_t limit_;
  Order order_;  // front: most recently used
  std::unordered_map<std::string, Slot> map_;
};

}  // namespace fan
