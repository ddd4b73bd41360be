// comm and exe of the process that caused an event, read on the reader
// thread while it most likely still runs. With a pidfd (FAN_REPORT_PIDFD)
// the answer is checked against it: if the process exited while we read,
// its pid may already belong to another process, so nothing is reported.
#pragma once

#include <cstdint>
#include <string>

namespace fan {

struct ProcessInfo {
  bool hasComm = false;
  bool hasExe = false;
  std::string comm;
  std::string exe;
};

// pidfd: the event's pidfd, FAN_NOPIDFD (-1) if the process was already gone
// when the event was read, or kNoPidfdRecord when the group reports none.
constexpr int kNoPidfdRecord = -1000;
ProcessInfo readProcessInfo(int32_t pid, int pidfd);

}  // namespace fan
