// The consumer's side of the Reader, what the JavaScript thread calls:
// taking what the reader thread queued (take, drain) and, in direct mode,
// reading permission groups itself. It calls into reader.cc (readGroup,
// registerLocked: the same enrichment and pending table as the thread's
// reads), never the reverse.
//
// Direct permission reads save a hand-over through the reader thread on the
// path a blocked process waits on. AsyncFanotify's loop reads them when a
// uv_poll says readable (ReaderWrap::DeliverDirect); the synchronous
// Fanotify reads them while it waits in take(). The reader thread stays the
// safety net (checkDirectGroups in reader.cc): it polls them too, and a
// group that becomes readable is JavaScript's for kDirectGrace; if it is
// still readable then and JavaScript read nothing from it meanwhile (a
// stalled loop, or a program not reading), the thread reads it, so
// deadlines hold. Idle, nothing is readable and nothing wakes.
//
// Locking: every function here runs on the JavaScript thread and takes the
// Reader's one mutex (mu_) only to look at or move shared state: the queue,
// the group list, the pending table (registerLocked), the direct-mode
// bookkeeping. It never holds mu_ across a blocking call: reads and path
// resolution (readGroup) and poll() in takeDirect run unlocked, so the
// reader thread is never kept from keeping deadlines. The one wait under
// mu_ is take()'s condition variable, which releases it while it waits.
// takerFd_ is made under mu_, where the thread copies it before it signals
// it, and read without mu_, since only this thread reads it.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "reader.h"

namespace fan {

namespace {

// How long take(0) waits for the thread to finish one read pass. A pass is a
// read and some readlinks, so this only bounds a pathological stall.
constexpr auto kFlushLimit = std::chrono::seconds(5);
// How often a take() that cannot watch its Interrupt fd (readable for
// other work of the event loop) asks whether its environment is stopping.
constexpr int kInterruptCheckMs = 100;

}  // namespace

void Reader::setDirectPermissions(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  if (direct_ == on) return;
  direct_ = on;
  // The thread's poll set and what it does with a readable permission
  // group change (checkDirectGroups, reader.cc): make it start over.
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

bool Reader::take(std::vector<Event>& out, size_t max, int timeoutMs, const Interrupt* interrupt) {
  switch (takeDirect(out, max, timeoutMs, interrupt)) {
    case Direct::Done: return true;
    case Direct::Interrupted: return false;
    case Direct::NotDirect: break;
  }
  // Not in direct mode (the synchronous front end always is, so this wait
  // is only the bounded one of timeoutMs == 0, or a timed one): interrupt
  // is not needed here.
  std::unique_lock<std::mutex> lock(mu_);
  if (queue_.empty() && !stopping_ && thread_.joinable()) {
    if (timeoutMs == 0) {
      // "Nothing queued" must mean nothing in the kernel either: ask the
      // thread for one read pass and wait for it.
      uint64_t ticket = ++flushRequested_;
      wake();
      cv_.wait_for(lock, kFlushLimit, [&] { return flushDone_ >= ticket || stopping_; });
    } else {
      auto ready = [&] { return !queue_.empty() || stopping_; };
      if (timeoutMs < 0)
        cv_.wait(lock, ready);
      else
        cv_.wait_for(lock, std::chrono::milliseconds(timeoutMs), ready);
    }
  }
  moveOutLocked(out, max);
  return true;
}

void Reader::drain(std::vector<Event>& out, size_t max) {
  std::lock_guard<std::mutex> lock(mu_);
  moveOutLocked(out, max);
}

void Reader::moveOutLocked(std::vector<Event>& out, size_t max) {
  out.reserve(out.size() + std::min(max - out.size(), queue_.size()));
  while (!queue_.empty() && out.size() < max) {
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  if (throttled_ && queue_.size() < options_.queueLimit) {
    throttled_ = false;
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

}  // namespace fan
