#include "paths.h"

#include "walker.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>

namespace fan {

namespace {

// Linux 5.8's mount id in a statx result. musl's struct statx has the
// kernel's 256-byte layout but names no stx_mnt_id (nor STATX_MNT_ID), so it
// is read at its place in that layout, a stable kernel ABI.
#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif
constexpr size_t kStatxMountIdOffset = 144;
static_assert(sizeof(struct statx) >= kStatxMountIdOffset + sizeof(uint64_t), "struct statx is the kernel's layout");

// statx(2) through syscall(): musl has the wrapper only from 1.2.5 (Alpine
// 3.20); older musl fails to load an addon that names it.
int statxCall(int dirfd, const char* path, int flags, unsigned mask, struct statx* sx) {
  return static_cast<int>(syscall(SYS_statx, dirfd, path, flags, mask, sx));
}

uint64_t statxMountId(const struct statx& sx) {
  uint64_t id;
  std::memcpy(&id, reinterpret_cast<const unsigned char*>(&sx) + kStatxMountIdOffset, sizeof id);
  return id;
}

#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200  // Linux 6.5: a handle for identification only
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
constexpr size_t kMaxHandle = 128;  // MAX_HANDLE_SZ

struct HandleBuffer {
  struct file_handle fh;
  unsigned char bytes[kMaxHandle];
};

void stripDeleted(std::string& path) {
  static const char kSuffix[] = " (deleted)";
  const size_t n = sizeof(kSuffix) - 1;
  if (path.size() > n && path.compare(path.size() - n, n, kSuffix) == 0) path.resize(path.size() - n);
}

std::string joinName(const std::string& dir, const FileIdRecord& fid) {
  if (!fid.hasName || fid.name.empty() || fid.name == ".") return dir;
  if (!dir.empty() && dir.back() == '/') return dir + fid.name;
  return dir + "/" + fid.name;
}

// The top of the mount that holds `path`: walk up while the device stays
// the same. Uses stat only, which fanotify does not report.
std::string mountRoot(std::string path, dev_t dev) {
  while (path.size() > 1) {
    std::string parent = path.substr(0, path.find_last_of('/'));
    if (parent.empty()) parent = "/";
    struct stat st;
    if (stat(parent.c_str(), &st) != 0 || st.st_dev != dev) break;
    path = parent;
  }
  return path;
}

}  // namespace

PathResolver::PathResolver() : procFds_(open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {}

PathResolver::~PathResolver() { closeAll(); }

uint64_t PathResolver::fsidKey(const int32_t fsid[2]) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(fsid[0])) << 32) | static_cast<uint32_t>(fsid[1]);
}

bool PathResolver::stillThere(Known& known) {
  if (known.checkedInBatch == batch_) return true;
  struct stat st;
  if (lstat(known.path.c_str(), &st) != 0 || st.st_dev != known.dev || st.st_ino != known.ino) return false;
  known.checkedInBatch = batch_;
  return true;
}

// An entry whose path no longer leads to its object is dropped: the object
// is gone (its marks with it), or moved, and then open_by_handle_at (where
// allowed) finds it again through the LRU cache. Only lstat: nothing opened.
void PathResolver::pruneMarkedLocked() {
  for (auto it = marked_.begin(); it != marked_.end();) {
    struct stat st;
    const Known& known = it->second;
    bool there = lstat(known.path.c_str(), &st) == 0 && st.st_dev == known.dev && st.st_ino == known.ino;
    it = there ? std::next(it) : marked_.erase(it);
  }
  markedPruneAt_ = std::max(kMarkedPruneMin, marked_.size() * 2);
}

void PathResolver::newBatch() {
  std::lock_guard<std::mutex> lock(mu_);
  batch_++;
}

// An fd for open_by_handle_at. It must be a real open (the kernel refuses
// O_PATH fds there), so it is opened on a detached clone of the mount: that
// keeps the original unmountable, and it is opened before the first mark on
// this filesystem, so the open is never reported. Needs CAP_SYS_ADMIN, as
// open_by_handle_at needs CAP_DAC_READ_SEARCH: without them, paths come from
// the marked-object table only.
PathResolver::MountFd PathResolver::openMount(const std::string& path, dev_t dev) {
  std::string root = mountRoot(path, dev);
  int tree = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, root.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  if (tree < 0) return {-1, root};
  int fd = openat(tree, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  close(tree);
  MountFd mount{fd, root, dev, 0};
  struct statx sx;
  if (statxCall(AT_FDCWD, root.c_str(), 0, STATX_MNT_ID, &sx) == 0 && (sx.stx_mask & STATX_MNT_ID)) mount.mountId = statxMountId(sx);
  return mount;
}

namespace {

// The path a mark on (dirfd, path) lands on, as rememberMarked records it.
std::string markedPath(const std::string& path, bool followLinks) {
  if (!followLinks) return path;
  char* real = realpath(path.c_str(), nullptr);
  if (!real) return path;
  std::string resolved = real;
  free(real);
  return resolved;
}

bool fsidOf(const std::string& path, int32_t fsid[2]) {
  struct statfs sfs;
  if (statfs(path.c_str(), &sfs) != 0) return false;
  std::memcpy(fsid, &sfs.f_fsid, sizeof(int32_t) * 2);
  return true;
}

}  // namespace

void PathResolver::rememberMarked(int dirfd, const std::string& path, bool followLinks) {
  HandleBuffer h;
  int mountId = 0;
  int follow = followLinks ? AT_SYMLINK_FOLLOW : 0;
  h.fh.handle_bytes = kMaxHandle;
  // fanotify encodes FID-only handles where it can; ask for the same kind so
  // the bytes compare equal, and fall back for kernels before 6.5.
  if (name_to_handle_at(dirfd, path.c_str(), &h.fh, &mountId, follow | AT_HANDLE_FID) != 0) {
    h.fh.handle_bytes = kMaxHandle;
    if (name_to_handle_at(dirfd, path.c_str(), &h.fh, &mountId, follow) != 0) return;
  }
  struct stat st;
  if (fstatat(dirfd, path.c_str(), &st, followLinks ? 0 : AT_SYMLINK_NOFOLLOW) != 0) return;
  std::string resolved = markedPath(path, followLinks);
  int32_t fsid[2];
  if (!fsidOf(resolved, fsid)) return;
  std::string key(reinterpret_cast<const char*>(fsid), sizeof(fsid));
  key.append(reinterpret_cast<const char*>(&h.fh), sizeof(h.fh) + h.fh.handle_bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    marked_[key] = Known{resolved, st.st_dev, st.st_ino};
    if (marked_.size() >= markedPruneAt_) pruneMarkedLocked();
  }
  ensureMount(fsid, resolved, st.st_dev);
}

void PathResolver::rememberFilesystem(int dirfd, const std::string& path, bool followLinks) {
  struct stat st;
  if (fstatat(dirfd, path.c_str(), &st, followLinks ? 0 : AT_SYMLINK_NOFOLLOW) != 0) return;
  std::string resolved = markedPath(path, followLinks);
  int32_t fsid[2];
  if (fsidOf(resolved, fsid)) ensureMount(fsid, resolved, st.st_dev);
}

void PathResolver::ensureMount(const int32_t fsid[2], const std::string& resolved, dev_t dev) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (mountFds_.find(fsidKey(fsid)) != mountFds_.end()) return;
  }
  MountFd mount = openMount(resolved, dev);
  std::lock_guard<std::mutex> lock(mu_);
  if (!mountFds_.emplace(fsidKey(fsid), mount).second && mount.fd >= 0) close(mount.fd);
}

// "/proc/self/fd/N" costs a walk of three components and the magic "self"
// link per event; readlinkat against /proc/self/fd, opened once per reader,
// walks one. Permission events pay this on the critical path of the blocked
// open(). The directory is the fd table the process's threads share.
bool PathResolver::fromFd(int fd, std::string& out) const {
  const int fdDir = procFds_;
  char name[16];
  char* p = name + sizeof(name);
  *--p = '\0';
  unsigned value = static_cast<unsigned>(fd);
  do *--p = static_cast<char>('0' + value % 10); while (value /= 10);
  char buf[PATH_MAX];
  ssize_t n;
  if (fdDir >= 0) {
    n = readlinkat(fdDir, p, buf, sizeof(buf));
  } else {
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%s", p);
    n = readlink(link, buf, sizeof(buf));
  }
  if (n < 0 || static_cast<size_t>(n) >= sizeof(buf)) return false;
  out.assign(buf, static_cast<size_t>(n));
  stripDeleted(out);
  return true;
}

// 1: known and still there; 0: unknown; -1: known but moved or gone (out
// holds where it was last).
int PathResolver::checkLocked(Known* known, std::string& out) {
  if (!known) return 0;
  out = known->path;
  return stillThere(*known) ? 1 : -1;
}

bool PathResolver::openByHandle(const FileIdRecord& fid, Known& out) {
  int mountFd = -1;
  std::string root;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = mountFds_.find(fsidKey(fid.fsid));
    if (it != mountFds_.end()) {
      mountFd = it->second.fd;
      root = it->second.root;
    }
  }
  HandleBuffer h;
  if (mountFd < 0 || fid.handle.size() < sizeof(struct file_handle) || fid.handle.size() > sizeof(h)) return false;
  std::memcpy(&h, fid.handle.data(), fid.handle.size());  // writable and aligned, as the syscall wants
  int fd = open_by_handle_at(mountFd, &h.fh, O_PATH | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  std::string inClone;
  bool ok = fstat(fd, &st) == 0 && fromFd(fd, inClone);
  close(fd);
  if (!ok || inClone.empty() || inClone[0] != '/') return false;
  out.path = root == "/" ? inClone : (inClone == "/" ? root : root + inClone);
  out.dev = st.st_dev;
  out.ino = st.st_ino;
  return true;
}

bool PathResolver::fromHandle(const FileIdRecord& fid, std::string& out) {
  std::string key = fid.handleKey();
  std::string base;
  int found;
  bool wasMarked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto marked = marked_.find(key);
    found = checkLocked(marked == marked_.end() ? nullptr : &marked->second, base);
    wasMarked = found != 0;
    for (const auto& set : dirSets_) {
      if (found != 0) break;
      if (set) found = set->pathOf(key, batch_, base);
    }
    if (found == 0) found = checkLocked(cache_.find(key), base);
  }
  if (found != 1) {
    // Unknown, moved or replaced: ask the kernel where the handle is now. If
    // it cannot say (deleted, or no CAP_DAC_READ_SEARCH), the last known
    // place is the best answer: where a deleted object was.
    Known fresh;
    fresh.checkedInBatch = 0;
    if (!openByHandle(fid, fresh)) {
      if (found == 0) return false;
      out = joinName(base, fid);
      return true;
    }
    base = fresh.path;
    std::lock_guard<std::mutex> lock(mu_);
    if (wasMarked) {
      marked_[key] = fresh;
    } else {
      cache_.put(key, std::move(fresh));
    }
  }
  out = joinName(base, fid);
  return true;
}

PathResolver::ErrorObject PathResolver::errorObject(const FileIdRecord& fid, bool fromSelf, std::string& out) {
  // The kernel's echo of our own try arrives within a read or two; a
  // window keeps a merged echo (none came) from hiding a later real error.
  constexpr auto kEchoWindow = std::chrono::seconds(2);
  // handle_bytes 0 (FILEID_INVALID): the error is the filesystem's, not an object's.
  if (fid.handle.size() <= sizeof(struct file_handle)) return ErrorObject::Unresolved;
  std::string key = fid.handleKey();
  auto now = std::chrono::steady_clock::now();
  bool tries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = unresolvable_.find(key);
    if (it != unresolvable_.end()) {
      bool echo = fromSelf && it->second.echoPending && now - it->second.tried < kEchoWindow;
      if (echo) it->second.echoPending = false;
      return echo ? ErrorObject::Echo : ErrorObject::Unresolved;
    }
    // Only a handle that reaches open_by_handle_at (a mount of its filesystem is known) can echo.
    tries = mountFds_.count(fsidKey(fid.fsid)) != 0;
  }
  if (fromHandle(fid, out)) return ErrorObject::Resolved;
  std::lock_guard<std::mutex> lock(mu_);
  if (unresolvable_.size() >= kUnresolvableLimit) unresolvable_.clear();
  unresolvable_[key] = {now, tries};
  return ErrorObject::Unresolved;
}

// The scope filter's second look (see paths.h). Nearly every event it sees
// was read through the remembered mount (a file outside the tree): that
// costs one statx. Others pay a handle round trip through the clone, whose
// paths are the filesystem's own, and a check that the path found leads to
// the same inode (a handle can name an object outside the clone's root,
// whose path would then be wrong). Hard links: the handle names the inode,
// and the kernel gives back one of its names, not necessarily the one used.
PathResolver::Location PathResolver::locate(int fd, bool seenPath, const std::function<void(dev_t, ino_t)>& ancestor) {
  Location where;
  struct statx sx;
  if (statxCall(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO | STATX_MNT_ID, &sx) != 0) return where;
  const dev_t dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
  int mountFd = -1;
  uint64_t mountId = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, mount] : mountFds_) {
      if (mount.dev != dev || mount.fd < 0) continue;
      mountFd = mount.fd;
      mountId = mount.mountId;
      where.mountRoot = mount.root;
      break;
    }
  }
  if (mountFd < 0) return where;
  if (seenPath && mountId != 0 && (sx.stx_mask & STATX_MNT_ID) && statxMountId(sx) == mountId) {
    where.kind = Location::Kind::SeenPath;
    return where;
  }
  HandleBuffer h;
  int handleMount = 0;
  h.fh.handle_bytes = kMaxHandle;
  if (name_to_handle_at(fd, "", &h.fh, &handleMount, AT_EMPTY_PATH) != 0) return where;
  int object = open_by_handle_at(mountFd, &h.fh, O_PATH | O_CLOEXEC);
  if (object < 0) return where;
  std::string inClone;
  if (fromFd(object, inClone) && !inClone.empty() && inClone[0] == '/') {
    struct stat st;
    const char* relative = inClone.size() > 1 ? inClone.c_str() + 1 : ".";
    if (fstatat(mountFd, relative, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == dev && st.st_ino == sx.stx_ino) {
      close(object);
      const std::string& root = where.mountRoot;
      where.kind = Location::Kind::Found;
      where.path = root == "/" ? inClone : (inClone == "/" ? root : root + inClone);
      return where;
    }
  }
  // No path (deeper than PATH_MAX): a directory can still be placed by the
  // directories above it; a file cannot (Linux gives no way from a file to
  // its directory but its path).
  if (!S_ISDIR(sx.stx_mode)) {
    close(object);
    return where;
  }
  if (walkUp(object, ancestor)) where.kind = Location::Kind::Walked;
  return where;
}

// Calls `ancestor` for the directory `fd` and each one above it, up to the
// top of the clone; closes `fd`. False if the walk could not finish (a
// directory removed meanwhile, one outside the clone's root, or deeper than
// any real tree), in which case nothing may be concluded from the calls.
bool PathResolver::walkUp(int fd, const std::function<void(dev_t, ino_t)>& ancestor) {
  constexpr int kMaxWalk = 16384;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return false;
  }
  for (int steps = 0; steps < kMaxWalk; steps++) {
    ancestor(st.st_dev, st.st_ino);
    int up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    close(fd);
    if (up < 0) return false;
    struct stat parent;
    if (fstat(up, &parent) != 0) {
      close(up);
      return false;
    }
    if (parent.st_dev != st.st_dev || parent.st_ino == st.st_ino) {
      close(up);
      return true;  // the top of the clone
    }
    fd = up;
    st = parent;
  }
  close(fd);
  return false;
}

void PathResolver::closeAll(std::vector<int>* later) {
  std::vector<std::thread> walkers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& set : dirSets_)
      if (set) set->cancel();
    dirSets_.clear();
    walkers.swap(walkers_);
  }
  for (std::thread& walker : walkers) walker.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (procFds_ >= 0) close(procFds_);
  procFds_ = -1;
  for (auto& [fsid, mount] : mountFds_) {
    if (mount.fd < 0) continue;
    if (later) later->push_back(mount.fd);
    else close(mount.fd);
  }
  mountFds_.clear();
  marked_.clear();
  cache_.clear();
}

int PathResolver::addDirSet() {
  std::lock_guard<std::mutex> lock(mu_);
  dirSets_.push_back(std::make_shared<DirSet>());
  return static_cast<int>(dirSets_.size() - 1);
}

std::shared_ptr<DirSet> PathResolver::dirSet(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  return id >= 0 && static_cast<size_t>(id) < dirSets_.size() ? dirSets_[id] : nullptr;
}

void PathResolver::dropDirSet(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (id < 0 || static_cast<size_t>(id) >= dirSets_.size() || !dirSets_[id]) return;
  dirSets_[id]->cancel();
  dirSets_[id].reset();
}

void PathResolver::directoryMoved(const FileIdRecord& to) {
  if (!to.hasName || to.name.empty()) return;
  std::string parentKey = to.handleKey();
  std::vector<std::shared_ptr<DirSet>> sets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& set : dirSets_)
      if (set) sets.push_back(set);
  }
  for (const auto& set : sets) set->moved(parentKey, to.name, batch_);
}

void PathResolver::startWalker(std::function<void()> walk) {
  std::lock_guard<std::mutex> lock(mu_);
  walkers_.emplace_back(std::move(walk));  // throws std::system_error if no thread can be made
}

}  // namespace fan
