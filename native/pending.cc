#include "pending.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "fan_constants.h"

namespace fan {

int writeResponse(int groupFd, int eventFd, uint32_t response, const AuditRule* audit) {
  struct Message {
    struct fanotify_response response;
    FanAuditRuleRecord info;
  } m{};
  static_assert(sizeof(Message) == sizeof(struct fanotify_response) + sizeof(FanAuditRuleRecord), "no padding");
  m.response = {eventFd, response};
  size_t size = sizeof(m.response);
  if (audit) {
    m.info.type = FAN_RESPONSE_INFO_AUDIT_RULE;
    m.info.len = sizeof(m.info);
    m.info.ruleNumber = audit->rule;
    m.info.subjectTrust = audit->subjectTrust;
    m.info.objectTrust = audit->objectTrust;
    size = sizeof(m);
  }
  ssize_t n = write(groupFd, &m, size);
  return n == static_cast<ssize_t>(size) ? 0 : (n < 0 ? errno : EIO);
}

namespace {

std::string describeExpired(int32_t pid, const std::string& path, int timeoutMs, uint32_t response) {
  return "permission event from pid " + std::to_string(pid) + (path.empty() ? "" : " on '" + path + "'") +
         " was not answered within " + std::to_string(timeoutMs) + " ms; answered " +
         ((response & FAN_DENY) ? "deny" : "allow") + " by permissionTimeout";
}

}  // namespace

void PendingTable::answerNow(int groupFd, int eventFd, uint32_t response) {
  writeResponse(groupFd, eventFd, response);  // the only failure left is "no longer pending"
  ::close(eventFd);
}

void PendingTable::add(Event& ev, int groupFd, Clock::time_point now) {
  const uint64_t id = nextId_++;
  pending_.emplace(id, Pending{groupFd, ev.fd, now + std::chrono::milliseconds(timeoutMs_), ev.raw.pid, ev.path});
  ev.id = id;
}

int PendingTable::respond(uint64_t id, uint32_t response, const AuditRule* audit) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return 0;
  Pending& p = it->second;
  // ENOENT: the kernel no longer waits for it; anything else (EINVAL for an
  // errno the kernel refuses) leaves it pending for the deadline to answer.
  int err = writeResponse(p.groupFd, p.eventFd, response, audit);
  if (err != 0 && err != ENOENT) return -err;
  ::close(p.eventFd);
  pending_.erase(it);
  return 1;
}

int PendingTable::dupFd(uint64_t id, int& err) {
  err = 0;
  auto it = pending_.find(id);
  if (it == pending_.end()) return -1;
  int fd = fcntl(it->second.eventFd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) err = errno;
  return fd;
}

int PendingTable::ignoreMark(uint64_t id, unsigned flags, uint64_t mask, struct stat& st) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return -1;
  if (fstat(it->second.eventFd, &st) != 0) return errno;
  if (fanotify_mark(it->second.groupFd, flags, mask, it->second.eventFd, nullptr) != 0) return errno;
  return 0;
}

void PendingTable::expire(std::vector<Event>& batch) {
  auto now = Clock::now();
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    answerNow(it->second.groupFd, it->second.eventFd, defaultResponse_);
    Event warning;
    warning.kind = Event::Kind::Warning;
    warning.id = it->first;
    warning.raw.pid = it->second.pid;
    warning.message = describeExpired(it->second.pid, it->second.path, timeoutMs_, defaultResponse_);
    batch.push_back(std::move(warning));
    it = pending_.erase(it);
  }
}

PendingTable::Clock::time_point PendingTable::nextDeadline() const {
  auto next = Clock::time_point::max();
  for (const auto& [id, p] : pending_)
    if (p.deadline < next) next = p.deadline;
  return next;
}

PendingTable::Clock::time_point PendingTable::deadlineOf(uint64_t id) const {
  auto it = pending_.find(id);
  return it == pending_.end() ? Clock::time_point::max() : it->second.deadline;
}

void PendingTable::answerAll() {
  for (auto& [id, p] : pending_) answerNow(p.groupFd, p.eventFd, defaultResponse_);
  pending_.clear();
}

}  // namespace fan
