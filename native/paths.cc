#include "paths.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>

namespace fan {

namespace {

#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200  // Linux 6.5: a handle for identification only
#endif
constexpr size_t kMaxHandle = 128;  // MAX_HANDLE_SZ

bool readLink(const char* link, std::string& out) {
  char buf[4096];
  ssize_t n = readlink(link, buf, sizeof(buf));
  if (n < 0 || static_cast<size_t>(n) >= sizeof(buf)) return false;
  out.assign(buf, static_cast<size_t>(n));
  return true;
}

void stripDeleted(std::string& path) {
  static const char kSuffix[] = " (deleted)";
  const size_t n = sizeof(kSuffix) - 1;
  if (path.size() > n && path.compare(path.size() - n, n, kSuffix) == 0) path.resize(path.size() - n);
}

std::string joinName(const std::string& dir, const std::string& name) {
  if (name.empty() || name == ".") return dir;
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace

PathResolver::~PathResolver() { closeAll(); }

uint64_t PathResolver::fsidKey(const int32_t fsid[2]) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(fsid[0])) << 32) | static_cast<uint32_t>(fsid[1]);
}

void PathResolver::rememberMarked(int dirfd, const std::string& path, bool followLinks) {
  struct {
    struct file_handle fh;
    unsigned char bytes[kMaxHandle];
  } h;
  int mountId = 0;
  int follow = followLinks ? AT_SYMLINK_FOLLOW : 0;
  h.fh.handle_bytes = kMaxHandle;
  // fanotify encodes FID-only handles where it can; ask for the same kind so
  // the bytes compare equal, and fall back for kernels before 6.5.
  if (name_to_handle_at(dirfd, path.c_str(), &h.fh, &mountId, follow | AT_HANDLE_FID) != 0) {
    h.fh.handle_bytes = kMaxHandle;
    if (name_to_handle_at(dirfd, path.c_str(), &h.fh, &mountId, follow) != 0) return;
  }
  // open_by_handle_at refuses O_PATH mount fds (fdget skips them), so try a
  // real read-only open first; O_PATH still serves the marked-path table.
  int nofollow = followLinks ? 0 : O_NOFOLLOW;
  int fd = openat(dirfd, path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | nofollow);
  if (fd < 0) fd = openat(dirfd, path.c_str(), O_PATH | O_CLOEXEC | nofollow);
  if (fd < 0) return;
  struct statfs sfs;
  std::string resolved;
  if (fstatfs(fd, &sfs) != 0 || !fromFd(fd, resolved)) {
    close(fd);
    return;
  }
  int32_t fsid[2];
  std::memcpy(fsid, &sfs.f_fsid, sizeof(fsid));
  std::string key(reinterpret_cast<const char*>(fsid), sizeof(fsid));
  key.append(reinterpret_cast<const char*>(&h.fh), sizeof(h.fh) + h.fh.handle_bytes);

  std::lock_guard<std::mutex> lock(mu_);
  marked_[key] = resolved;
  auto [it, inserted] = mountFds_.emplace(fsidKey(fsid), fd);
  if (!inserted) close(fd);
}

bool PathResolver::fromFd(int fd, std::string& out) {
  char link[64];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  if (!readLink(link, out)) return false;
  stripDeleted(out);
  return true;
}

bool PathResolver::fromHandle(const FileIdRecord& fid, std::string& out) {
  std::string key = fid.handleKey();
  int mountFd = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = marked_.find(key); it != marked_.end()) {
      out = joinName(it->second, fid.hasName ? fid.name : "");
      return true;
    }
    if (auto it = cache_.find(key); it != cache_.end()) {
      out = joinName(it->second, fid.hasName ? fid.name : "");
      return true;
    }
    if (auto it = mountFds_.find(fsidKey(fid.fsid)); it != mountFds_.end()) mountFd = it->second;
  }
  if (mountFd < 0 || fid.handle.size() < sizeof(struct file_handle)) return false;

  // open_by_handle_at wants a writable, suitably aligned struct file_handle.
  struct {
    struct file_handle fh;
    unsigned char bytes[kMaxHandle];
  } h;
  if (fid.handle.size() > sizeof(h)) return false;
  std::memcpy(&h, fid.handle.data(), fid.handle.size());
  int fd = open_by_handle_at(mountFd, &h.fh, O_PATH | O_CLOEXEC);
  if (fd < 0) return false;
  std::string dir;
  bool ok = fromFd(fd, dir);
  close(fd);
  if (!ok) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() >= kCacheLimit) cache_.clear();  // crude but bounded; see issue 4
    cache_[key] = dir;
  }
  out = joinName(dir, fid.hasName ? fid.name : "");
  return true;
}

void PathResolver::forget(const FileIdRecord& fid) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(fid.handleKey());
}

void PathResolver::closeAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [fsid, fd] : mountFds_) close(fd);
  mountFds_.clear();
  marked_.clear();
  cache_.clear();
}

}  // namespace fan
