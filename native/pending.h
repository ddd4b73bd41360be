// The pending-permission table: the only code that answers a permission
// event or closes the kernel's fd of one, and the keeper of their deadlines.
// An event enters it (add) with the fd the kernel opened for it and leaves
// it answered, by id: respond() from JavaScript, expire() at its deadline,
// or answerAll() at close. Events that are decided before they ever enter
// it (the own process's, those outside every watched tree, those a failed
// read pass or close() answers with defaultResponse) go through answerNow,
// so the write of a response and the close of an event fd live here only.
//
// Locking: none of its own. The table belongs to one Reader, which calls
// every member under its mutex (Reader::mu_): that keeps registering a
// batch one step with queueing it, keeps respond() and expire() from racing,
// and keeps the deadline from closing an fd between dupFd's lookup and its
// dup (so the dup is of this event's file, never of a reused number).
// answerNow touches no table and needs no lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "event.h"

struct stat;

namespace fan {

// The FAN_INFO audit-rule record a response may carry (Linux 6.3): the rule
// that decided, and whether the subject (process) and object (file) are
// trusted (0 no, 1 yes, 2 unknown), for the audit log.
struct AuditRule {
  uint32_t rule = 0;
  uint32_t subjectTrust = 2;
  uint32_t objectTrust = 2;
};

// Writes one response to a group: struct fanotify_response, followed by the
// audit-rule record when `audit` is given (the caller sets FAN_INFO in
// `response`). 0, or the errno write(2) failed with.
int writeResponse(int groupFd, int eventFd, uint32_t response, const AuditRule* audit = nullptr);

class PendingTable {
 public:
  using Clock = std::chrono::steady_clock;

  PendingTable(int timeoutMs, uint32_t defaultResponse)
      : timeoutMs_(timeoutMs), defaultResponse_(defaultResponse) {}
  PendingTable(const PendingTable&) = delete;
  PendingTable& operator=(const PendingTable&) = delete;

  // Answers an event that is not (and will not be) in a table, and closes
  // its fd. The only failure left is "no longer pending": ignored.
  static void answerNow(int groupFd, int eventFd, uint32_t response);

  // Takes ev.fd over (a permission event of group `groupFd`): gives the
  // event its id, the key answers use, and a deadline timeoutMs from `now`.
  void add(Event& ev, int groupFd, Clock::time_point now);
  // 1: answered; 0: not pending (already answered, expired or closed); < 0: -errno.
  int respond(uint64_t id, uint32_t response, const AuditRule* audit = nullptr);
  // A new descriptor (F_DUPFD_CLOEXEC) of a pending event's file, for the
  // caller to own: -1 when not pending (err = 0) or the dup failed (err = errno).
  int dupFd(uint64_t id, int& err);
  // The decision cache: an ignore mark (`flags`: FAN_MARK_ADD and the ignore
  // flags) for `mask` on the file of a pending event, in the event's group,
  // through its fd. 0 (and `st`, the file's fstat), -1 when the event is
  // not pending, or the errno fanotify_mark failed with.
  int ignoreMark(uint64_t id, unsigned flags, uint64_t mask, struct stat& st);
  // Answers every event whose deadline passed with defaultResponse, and
  // appends a Warning event for each to `batch`.
  void expire(std::vector<Event>& batch);
  // The earliest deadline; Clock::time_point::max() when nothing is pending.
  Clock::time_point nextDeadline() const;
  // The deadline of one event; Clock::time_point::max() when not pending.
  Clock::time_point deadlineOf(uint64_t id) const;
  // At close: answers everything pending with defaultResponse.
  void answerAll();

 private:
  struct Pending {
    int groupFd;
    int eventFd;
    Clock::time_point deadline;
    int32_t pid;
    std::string path;
  };

  const int timeoutMs_;
  const uint32_t defaultResponse_;
  std::unordered_map<uint64_t, Pending> pending_;
  uint64_t nextId_ = 1;
};

}  // namespace fan
