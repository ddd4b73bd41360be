// Direct permission reads: the JavaScript thread reads permission groups
// itself, which saves a hand-over through the reader thread on the path a
// blocked process waits on. AsyncFanotify's loop reads them when a uv_poll
// says readable (ReaderWrap::DeliverDirect); the synchronous Fanotify reads
// them while it waits in take(). The reader thread stays the safety net: it
// polls them too, and a group that becomes readable is JavaScript's for
// kDirectGrace; if it is still readable then and JavaScript read nothing
// from it meanwhile (a stalled loop, or a program not reading), the thread
// reads it, so deadlines hold. Idle, nothing is readable and nothing wakes.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "reader.h"

namespace fan {

namespace {

// How long a readable permission group is left to the JavaScript thread in
// direct mode before the reader thread reads it itself.
constexpr auto kDirectGrace = std::chrono::milliseconds(20);
// How often a take() that cannot watch its Interrupt fd (readable for
// other work of the event loop) asks whether its environment is stopping.
constexpr int kInterruptCheckMs = 100;

}  // namespace

void Reader::setDirectPermissions(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  if (direct_ == on) return;
  direct_ = on;
  // The thread's poll set and what it does with a readable permission
  // group change (checkDirectGroups): make it start over.
  for (auto& g : groups_) g.graceUntil = {};
  wake();
}

std::vector<int> Reader::directPermissionFds() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int> fds;
  for (const auto& g : groups_)
    if (g.directReadable()) fds.push_back(g.fd);
  return fds;
}

void Reader::readPermissionsDirect(int fd, std::vector<Event>& out) {
  int index = -1;
  Group group{};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    for (size_t i = 0; i < groups_.size(); i++)
      if (groups_[i].fd == fd && groups_[i].directReadable()) index = static_cast<int>(i);
    if (index < 0) return;
    groups_[index].directReads++;  // the reader thread's sign that JavaScript is not stalled
    group = groups_[index];
    if (directBuf_.size() != options_.bufferSize) directBuf_.resize(options_.bufferSize);
  }
  std::vector<Event> batch;
  readGroup(index, group, directBuf_, batch);
  if (batch.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  registerLocked(batch, std::chrono::steady_clock::now());
  for (auto& ev : batch) {
    if (ev.fd >= 0) directIds_.push_back(ev.id);
    out.push_back(std::move(ev));
  }
}

void Reader::afterDirectDelivery() {
  std::lock_guard<std::mutex> lock(mu_);
  if (directIds_.empty()) return;
  auto earliest = std::chrono::steady_clock::time_point::max();
  for (uint64_t id : directIds_) earliest = std::min(earliest, pending_.deadlineOf(id));
  directIds_.clear();
  directActive_ = true;
  if (earliest < threadWakeAt_) {
    threadWakeAt_ = std::chrono::steady_clock::time_point::min();  // woken: until it looks again
    wake();
  }
}

// The synchronous front end's wait in direct mode: poll the permission
// groups and takerFd_, which the reader thread signals when it queues
// events (notification groups, and permission groups it took over).
// Returns false when the caller should wait the usual way: not in direct
// mode, or timeoutMs == 0 and nothing was read here (the caller then asks
// the thread for one read pass of the other groups).
//
// `interrupt` (see Reader::Interrupt): its fd joins the poll set; when it
// is readable and interrupt->stopping() says so, this returns Interrupted
// at once. Readable for other work (the loop cannot run while we block
// it), it leaves the poll set and stopping() is asked every
// kInterruptCheckMs instead, so it never spins.
Reader::Direct Reader::takeDirect(std::vector<Event>& out, size_t max, int timeoutMs, const Interrupt* interrupt) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!direct_) return Direct::NotDirect;
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs > 0 ? timeoutMs : 0);
  std::vector<pollfd> fds;
  bool watchInterrupt = interrupt && interrupt->fd >= 0;
  for (;;) {
    int taker;
    {
      // The queue check and the eventfd are one step with the thread's
      // hand-over (under mu_), so no signal can fall between them.
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || !queue_.empty()) {
        moveOutLocked(out, max);
        return Direct::Done;
      }
      // Without it a blocking take() would never hear of the thread's
      // events: fail instead (EMFILE is kind LimitReached).
      if (takerFd_ < 0) takerFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (takerFd_ < 0) throw SysFailure({errno, "eventfd", ""});
      taker = takerFd_;
    }
    fds.assign(1, pollfd{taker, POLLIN, 0});
    for (int fd : directPermissionFds()) fds.push_back(pollfd{fd, POLLIN, 0});
    const size_t permissionEnd = fds.size();
    if (watchInterrupt) fds.push_back(pollfd{interrupt->fd, POLLIN, 0});
    int wait = -1;
    if (timeoutMs >= 0) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
      wait = left > 0 ? static_cast<int>(left) : 0;
    }
    if (interrupt && !watchInterrupt && (wait < 0 || wait > kInterruptCheckMs)) wait = kInterruptCheckMs;
    int n = poll(fds.data(), fds.size(), wait);
    if (n < 0 && errno == EINTR) continue;
    if (interrupt && (watchInterrupt ? n > 0 && (fds[permissionEnd].revents & POLLIN) : n == 0)) {
      if (interrupt->stopping()) return Direct::Interrupted;
      if (watchInterrupt) watchInterrupt = false;  // other work of the loop: ask on a timer from now on
    }
    if (n > 0) {
      if (fds[0].revents & POLLIN) {
        uint64_t count;
        ssize_t ignored = read(fds[0].fd, &count, sizeof(count));
        (void)ignored;
      }
      for (size_t k = 1; k < permissionEnd; k++)
        if (fds[k].revents & POLLIN) readPermissionsDirect(fds[k].fd, out);
      if (out.empty()) continue;  // only the thread's signal: look again
      // The program may never call take() again: the thread must know
      // these deadlines now (rarely a wake-up: see leaseUntil_).
      afterDirectDelivery();
      return Direct::Done;
    }
    if (timeoutMs == 0) return Direct::NotDirect;
    if (n < 0 || std::chrono::steady_clock::now() >= until) return Direct::Done;
  }
}

// The reader thread's watch over permission groups in direct mode, after
// each poll. `readable`: the direct groups its poll found readable; each
// becomes JavaScript's to read for kDirectGrace (loop() leaves it out of
// the poll until then, which would otherwise return at once, and sleeps at
// most until graceUntil). When a grace ends the thread looks without
// waiting:
//   - readable, and JavaScript read nothing from it during the grace: it is
//     stalled (or a synchronous Fanotify is not in readEvent()); this
//     thread reads the group, so deadlines hold;
//   - JavaScript read from it: it is busy and keeping up; another grace
//     follows at once, so under load the thread looks once per kDirectGrace
//     instead of waking for every event;
//   - neither: back to polling it, with no timeout: an idle instance never
//     wakes this thread.
void Reader::checkDirectGroups(const std::vector<int>& readable, std::vector<uint8_t>& buf,
                               std::vector<Event>& batch) {
  std::vector<int> indices;
  std::vector<pollfd> fds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!direct_) return;
    const auto now = std::chrono::steady_clock::now();
    for (int i : readable) {
      groups_[i].graceUntil = now + kDirectGrace;
      groups_[i].readsAtGrace = groups_[i].directReads;
    }
    for (size_t i = 0; i < groups_.size(); i++) {
      const Group& g = groups_[i];
      if (!g.directReadable() || g.graceUntil == std::chrono::steady_clock::time_point{} || g.graceUntil > now) continue;
      indices.push_back(static_cast<int>(i));
      fds.push_back(pollfd{g.fd, POLLIN, 0});
    }
  }
  if (fds.empty()) return;
  if (poll(fds.data(), fds.size(), 0) < 0)
    for (auto& pfd : fds) pfd.revents = 0;
  for (size_t k = 0; k < fds.size(); k++) {
    Group group;
    bool stalled;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Group& g = groups_[indices[k]];
      const bool readNow = (fds[k].revents & POLLIN) != 0;
      const bool jsRead = g.directReads != g.readsAtGrace;
      stalled = readNow && !jsRead;
      if (jsRead) {
        g.graceUntil = std::chrono::steady_clock::now() + kDirectGrace;
        g.readsAtGrace = g.directReads;
      } else {
        g.graceUntil = {};
      }
      group = g;
    }
    if (stalled) readGroup(indices[k], group, buf, batch);
  }
}

}  // namespace fan
