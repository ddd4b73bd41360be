#include "walker.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200
#endif

namespace fan {

namespace {

constexpr size_t kMaxHandle = 128;  // MAX_HANDLE_SZ
struct HandleBuffer {
  struct file_handle fh;
  unsigned char bytes[kMaxHandle];
};

// getdents64's record, as the kernel writes it (musl names no struct
// dirent64, and glibc's is the same layout).
struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// Failures that mean "nothing to mark here": gone, not a directory any more,
// or not readable by this user. Everything else stops the walk.
// Events a walk's own reading of a directory makes.
constexpr uint64_t kSelfEvents = FAN_OPEN | FAN_ACCESS | FAN_CLOSE_NOWRITE | FAN_OPEN_EXEC;

bool skippable(int err) { return err == ENOENT || err == ENOTDIR || err == EACCES || err == EPERM || err == ELOOP; }

uint64_t hashOf(const char* p, size_t n, uint8_t fs) {
  uint64_t h = 1469598103934665603ull ^ fs;
  for (size_t i = 0; i < n; i++) h = (h ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
  return h;
}

// The handle as the kernel's events carry it: FID-only where the kernel
// has it (Linux 6.5), as PathResolver::rememberMarked asks for it.
size_t handleOf(int dirFd, const char* name, HandleBuffer& h, int flags = 0) {
  int mountId = 0;
  h.fh.handle_bytes = kMaxHandle;
  if (name_to_handle_at(dirFd, name, &h.fh, &mountId, flags | AT_HANDLE_FID) != 0) {
    h.fh.handle_bytes = kMaxHandle;
    if (name_to_handle_at(dirFd, name, &h.fh, &mountId, flags) != 0) return 0;
  }
  return sizeof(h.fh) + h.fh.handle_bytes;
}

}  // namespace

std::string DirSet::inodeKey(dev_t dev, ino_t ino) {
  uint64_t k[2] = {static_cast<uint64_t>(dev), static_cast<uint64_t>(ino)};
  return std::string(reinterpret_cast<const char*>(k), sizeof(k));
}

uint8_t DirSet::fsIndexLocked(dev_t dev, int dirFd) {
  for (size_t i = 0; i < fs_.size(); i++)
    if (fs_[i].dev == dev) return static_cast<uint8_t>(i);
  Fs f{dev, {0, 0}};
  struct statfs sfs;
  if (fstatfs(dirFd, &sfs) == 0) std::memcpy(f.fsid, &sfs.f_fsid, sizeof(f.fsid));
  if (fs_.size() >= 255) return 255;  // not resolvable by handle; still marked and removed
  fs_.push_back(f);
  return static_cast<uint8_t>(fs_.size() - 1);
}

int64_t DirSet::findLocked(const char* handle, size_t len, uint8_t fs) const {
  if (len == 0 || table_.empty()) return -1;
  size_t maskBits = table_.size() - 1;
  for (size_t slot = hashOf(handle, len, fs) & maskBits;; slot = (slot + 1) & maskBits) {
    uint32_t v = table_[slot];
    if (v == 0) return -1;
    const Dir& d = dirs_[v - 1];
    if (d.fs == fs && d.handleLen == len && std::memcmp(handles_.data() + d.handle, handle, len) == 0) return v - 1;
  }
}

void DirSet::rehashLocked(size_t capacity) {
  table_.assign(capacity, 0);
  for (uint32_t i = 0; i < dirs_.size(); i++) {
    const Dir& d = dirs_[i];
    if (d.handleLen == 0) continue;
    size_t slot = hashOf(handles_.data() + d.handle, d.handleLen, d.fs) & (capacity - 1);
    while (table_[slot] != 0) slot = (slot + 1) & (capacity - 1);
    table_[slot] = i + 1;
  }
}

uint32_t DirSet::addLocked(uint32_t parent, const std::string& name, const char* handle, size_t len, uint8_t fs, ino_t ino) {
  Dir d{};
  d.ino = ino;
  d.fs = fs;
  d.checked = 0;
  d.handle = static_cast<uint32_t>(handles_.size());
  d.handleLen = static_cast<uint8_t>(len <= 255 ? len : 0);
  if (d.handleLen) handles_.append(handle, len);
  dirs_.push_back(d);
  uint32_t index = static_cast<uint32_t>(dirs_.size() - 1);
  setNameLocked(index, parent, name);
  if (d.handleLen) {
    if ((dirs_.size() + 1) * 2 > table_.size()) {
      rehashLocked(std::max<size_t>(1024, table_.size() * 2));
    } else {
      size_t slot = hashOf(handle, len, fs) & (table_.size() - 1);
      while (table_[slot] != 0) slot = (slot + 1) & (table_.size() - 1);
      table_[slot] = index + 1;
    }
  }
  return index;
}

void DirSet::setNameLocked(uint32_t index, uint32_t parent, const std::string& name) {
  Dir& d = dirs_[index];
  if (d.nameLen == name.size() && d.parent == parent && names_.compare(d.name, d.nameLen, name) == 0) return;
  d.parent = parent;
  d.name = static_cast<uint32_t>(names_.size());
  d.nameLen = static_cast<uint16_t>(std::min<size_t>(name.size(), 0xffff));
  names_.append(name, 0, d.nameLen);
  d.checked = 0;
}

std::string DirSet::pathLocked(uint32_t index) const {
  uint32_t chain[4096];
  size_t n = 0;
  size_t len = 0;
  for (uint32_t i = index; i != kNone && n < 4096; i = dirs_[i].parent) {
    chain[n++] = i;
    len += dirs_[i].nameLen + 1;
  }
  std::string path;
  path.reserve(len);
  for (size_t k = n; k-- > 0;) {
    const Dir& d = dirs_[chain[k]];
    if (k != n - 1) path += '/';
    path.append(names_, d.name, d.nameLen);
  }
  return path;
}

bool DirSet::thereLocked(uint32_t index) const {
  const Dir& d = dirs_[index];
  struct stat st;
  std::string path = pathLocked(index);
  return lstat(path.c_str(), &st) == 0 && st.st_ino == d.ino && (d.fs >= fs_.size() || st.st_dev == fs_[d.fs].dev);
}

void DirSet::pruneLocked() {
  std::vector<uint32_t> remap(dirs_.size(), kNone);
  std::vector<Dir> kept;
  std::string names;
  std::string handles;
  // Parents may come after their children (a moved directory re-parented),
  // so decide first, then renumber.
  std::vector<char> there(dirs_.size());
  for (uint32_t i = 0; i < dirs_.size(); i++) there[i] = thereLocked(i);
  for (uint32_t i = 0; i < dirs_.size(); i++) {
    if (!there[i]) continue;
    remap[i] = static_cast<uint32_t>(kept.size());
    Dir d = dirs_[i];
    uint32_t name = static_cast<uint32_t>(names.size());
    names.append(names_, d.name, d.nameLen);
    d.name = name;
    uint32_t handle = static_cast<uint32_t>(handles.size());
    handles.append(handles_, d.handle, d.handleLen);
    d.handle = handle;
    kept.push_back(d);
  }
  for (Dir& d : kept) d.parent = d.parent == kNone ? kNone : remap[d.parent];
  dirs_ = std::move(kept);
  names_ = std::move(names);
  handles_ = std::move(handles);
  dirs_.shrink_to_fit();
  names_.shrink_to_fit();
  handles_.shrink_to_fit();
  size_t capacity = 1024;
  while (capacity < (dirs_.size() + 1) * 2) capacity *= 2;
  rehashLocked(capacity);
  pruneAt_ = std::max<size_t>(1024, dirs_.size() * 2);
}

bool DirSet::walkDir(int parentFd, const std::string& name, uint32_t parent, const std::string& path, const WalkOptions& o,
                     SysError& err) {
  if (cancelled_) {
    err = {ECANCELED, "fanotify_mark", path};
    return false;
  }
  Fd dir;
  dir.fd = openat(parentFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir.fd < 0) {
    if (skippable(errno)) return true;
    err = {errno, "open", path};
    return false;
  }
  struct stat st;
  if (fstat(dir.fd, &st) != 0) return true;
  HandleBuffer h;
  size_t len = handleOf(dir.fd, "", h, AT_EMPTY_PATH);
  const char* handle = reinterpret_cast<const char*>(&h.fh);
  bool known;
  uint32_t index;
  {
    std::lock_guard<std::mutex> lock(mu_);
    uint8_t fs = fsIndexLocked(st.st_dev, dir.fd);
    int64_t found = findLocked(handle, len, fs);
    known = found >= 0;
    if (known) {
      index = static_cast<uint32_t>(found);
      setNameLocked(index, parent, name);  // moved inside the tree: its new place
    } else {
      index = addLocked(parent, name, handle, len, fs, st.st_ino);
    }
  }
  // A new directory is marked before it is read (nothing made in it
  // meanwhile is missed). addWatch marks every directory the same way,
  // unless the mask asks for events the walk itself makes (its open, read
  // and close of each directory): then each is marked by name after its fd
  // is closed, and a directory made in it while it is read is missed, as it
  // would be just before addWatch.
  bool markFirst = o.follow ? !known : (o.mask & kSelfEvents) == 0;
  if (markFirst && fanotify_mark(o.groupFd, o.flags, o.mask, dir.fd, nullptr) != 0) {
    if (skippable(errno)) return true;
    err = {errno, "fanotify_mark", path};
    return false;
  }
  bool collect = o.follow && !known && o.found;
  std::vector<std::string> subdirs;
  alignas(8) char buf[32768];
  for (;;) {
    long n = syscall(SYS_getdents64, dir.fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* e = reinterpret_cast<LinuxDirent64*>(buf + off);
      off += e->d_reclen;
      const char* entry = e->d_name;
      if (entry[0] == '.' && (entry[1] == 0 || (entry[1] == '.' && entry[2] == 0))) continue;
      bool isDir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat est;
        isDir = fstatat(dir.fd, entry, &est, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(est.st_mode);
      }
      if (collect) o.found->push_back({path, entry, isDir});
      if (isDir) subdirs.emplace_back(entry);
    }
  }
  for (const std::string& sub : subdirs) {
    std::string subPath = path == "/" ? "/" + sub : path + "/" + sub;
    if (!walkDir(dir.fd, sub, index, subPath, o, err)) return false;
  }
  if (o.follow || markFirst) return true;
  close(dir.fd);
  dir.fd = -1;
  if (fanotify_mark(o.groupFd, o.flags, o.mask, parentFd, name.c_str()) != 0) {
    if (skippable(errno)) return true;
    err = {errno, "fanotify_mark", path};
    return false;
  }
  return true;
}

bool DirSet::walk(const std::string& root, const WalkOptions& options, SysError& err) {
  uint32_t parent = kNone;
  std::string name = root;
  Fd parentFd;
  parentFd.fd = AT_FDCWD;
  size_t slash = root.find_last_of('/');
  // A directory below one in the set (a new directory): linked to its parent,
  // so that a later move of the parent moves its path too.
  if (slash != std::string::npos && root.size() > 1) {
    std::string dir = slash == 0 ? "/" : root.substr(0, slash);
    struct stat st;
    HandleBuffer h;
    size_t len = handleOf(AT_FDCWD, dir.c_str(), h);
    if (len && stat(dir.c_str(), &st) == 0) {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < fs_.size(); i++) {
        if (fs_[i].dev != st.st_dev) continue;
        int64_t found = findLocked(reinterpret_cast<const char*>(&h.fh), len, static_cast<uint8_t>(i));
        if (found >= 0) parent = static_cast<uint32_t>(found);
      }
    }
    if (parent != kNone) {
      parentFd.fd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (parentFd.fd < 0) {
        parentFd.fd = AT_FDCWD;
        parent = kNone;
      } else {
        name = root.substr(slash + 1);
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    walks_++;
  }
  bool ok = walkDir(parentFd.fd, name, parent, root, options, err);
  if (parentFd.fd == AT_FDCWD) parentFd.fd = -1;
  std::lock_guard<std::mutex> lock(mu_);
  if (--walks_ == 0) walksDone_.notify_all();
  // Pruning renumbers the directories: never while another walk (an
  // AsyncFanotify's addWatch, on its walker thread) holds their numbers.
  if (options.follow && walks_ == 0 && dirs_.size() >= pruneAt_) pruneLocked();
  if (!options.follow) {
    pruneAt_ = std::max(pruneAt_, dirs_.size() * 2);  // a whole tree is no growth to prune
    // A whole tree was added: give back what the arrays reserved for growth.
    dirs_.shrink_to_fit();
    names_.shrink_to_fit();
    handles_.shrink_to_fit();
  }
  return ok;
}

int DirSet::pathOf(const std::string& key, uint64_t batch, std::string& out) {
  if (key.size() < 8 + sizeof(struct file_handle)) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < fs_.size(); i++) {
    if (std::memcmp(fs_[i].fsid, key.data(), 8) != 0) continue;
    int64_t found = findLocked(key.data() + 8, key.size() - 8, static_cast<uint8_t>(i));
    if (found < 0) continue;
    Dir& d = dirs_[found];
    uint32_t b = static_cast<uint32_t>(batch);
    out = pathLocked(static_cast<uint32_t>(found));
    if (d.checked != b) {
      if (!thereLocked(static_cast<uint32_t>(found))) return -1;
      d.checked = b;
    }
    return 1;
  }
  return 0;
}

void DirSet::moved(const std::string& parentKey, const std::string& name, uint64_t batch) {
  std::string parentPath;
  if (pathOf(parentKey, batch, parentPath) != 1) return;
  std::string path = parentPath == "/" ? "/" + name : parentPath + "/" + name;
  HandleBuffer h;
  size_t len = handleOf(AT_FDCWD, path.c_str(), h);
  if (len == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < fs_.size(); i++) {
    if (std::memcmp(fs_[i].fsid, parentKey.data(), 8) != 0) continue;
    int64_t parent = findLocked(parentKey.data() + 8, parentKey.size() - 8, static_cast<uint8_t>(i));
    int64_t child = findLocked(reinterpret_cast<const char*>(&h.fh), len, static_cast<uint8_t>(i));
    if (parent >= 0 && child >= 0 && parent != child) setNameLocked(static_cast<uint32_t>(child), static_cast<uint32_t>(parent), name);
    return;
  }
}

void DirSet::cancelAndWait() {
  cancelled_ = true;
  std::unique_lock<std::mutex> lock(mu_);
  walksDone_.wait(lock, [this] { return walks_ == 0; });
}

bool DirSet::has(dev_t dev, ino_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Dir& d : dirs_)
    if (d.ino == ino && d.fs < fs_.size() && fs_[d.fs].dev == dev) return true;
  return false;
}

size_t DirSet::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return dirs_.size();
}

void DirSet::collectKeys(uint64_t bits, std::unordered_map<std::string, uint64_t>& keep) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Dir& d : dirs_)
    if (d.fs < fs_.size()) keep[inodeKey(fs_[d.fs].dev, d.ino)] |= bits;
}

void DirSet::release(int groupFd, unsigned flags, uint64_t bits, const std::unordered_map<std::string, uint64_t>& keep) {
  std::lock_guard<std::mutex> lock(mu_);
  for (uint32_t i = 0; i < dirs_.size(); i++) {
    const Dir& d = dirs_[i];
    if (d.fs >= fs_.size()) continue;
    uint64_t drop = bits;
    if (!keep.empty()) {
      auto it = keep.find(inodeKey(fs_[d.fs].dev, d.ino));
      if (it != keep.end()) drop &= ~it->second;
    }
    if (drop == 0) continue;
    // Only where the path still leads to the directory marked: a directory
    // gone took its mark with it, and one moved away keeps it (as today).
    struct stat st;
    std::string path = pathLocked(i);
    if (lstat(path.c_str(), &st) != 0 || st.st_ino != d.ino || st.st_dev != fs_[d.fs].dev) continue;
    fanotify_mark(groupFd, FAN_MARK_REMOVE | flags, drop, AT_FDCWD, path.c_str());
  }
}

}  // namespace fan
