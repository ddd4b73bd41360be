#include "process_info.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

namespace fan {

namespace {

bool readComm(int32_t pid, std::string& out) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/comm", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[64];
  ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n <= 0) return false;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0')) n--;
  out.assign(buf, static_cast<size_t>(n));
  return true;
}

bool readExe(int32_t pid, std::string& out) {
  char path[64];
  char buf[PATH_MAX];
  snprintf(path, sizeof(path), "/proc/%d/exe", pid);
  ssize_t n = readlink(path, buf, sizeof(buf));
  if (n <= 0 || static_cast<size_t>(n) >= sizeof(buf)) return false;
  out.assign(buf, static_cast<size_t>(n));
  return true;
}

bool stillAlive(int pidfd) {
#ifdef SYS_pidfd_send_signal
  return syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0;
#else
  return true;
#endif
}

}  // namespace

ProcessInfo readProcessInfo(int32_t pid, int pidfd) {
  ProcessInfo info;
  if (pid <= 0 || (pidfd < 0 && pidfd != kNoPidfdRecord)) return info;  // already gone
  info.hasComm = readComm(pid, info.comm);
  info.hasExe = readExe(pid, info.exe);
  if (pidfd >= 0 && !stillAlive(pidfd)) info = ProcessInfo{};
  return info;
}

}  // namespace fan
