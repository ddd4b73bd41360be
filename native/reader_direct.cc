// Direct permission reads: the JavaScript thread reads permission groups
// itself, which saves a hand-over through the reader thread on the path a
// blocked process waits on. AsyncFanotify's loop reads them when a uv_poll
// says readable (ReaderWrap::DeliverDirect); the synchronous Fanotify reads
// them while it waits in take(). The reader thread stays the safety net: it
// looks at them every kDirectGrace and reads a group that stayed readable
// that long (a stalled loop, or a program not reading), so deadlines hold.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "reader.h"

namespace fan {

namespace {

// How long a readable permission group is left to the JavaScript thread in
// direct mode before the reader thread reads it itself.
constexpr auto kDirectGrace = std::chrono::milliseconds(20);

}  // namespace

void Reader::setDirectPermissions(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  if (direct_ == on) return;
  direct_ = on;
  // The thread may sleep in a poll(-1) that includes the permission groups:
  // once JavaScript reads them first, that poll would never return, and the
  // thread would never look again (nor keep deadlines). Make it start over.
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
    group = groups_[index];
    if (directBuf_.size() != options_.bufferSize) directBuf_.resize(options_.bufferSize);
  }
  std::vector<Event> batch;
  readGroup(index, group, directBuf_, batch);
  if (batch.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  registerLocked(batch, std::chrono::steady_clock::now());
  for (auto& ev : batch) {
    if (ev.fd >= 0) directPendingAdded_ = true;
    out.push_back(std::move(ev));
  }
}

void Reader::afterDirectDelivery() {
  std::lock_guard<std::mutex> lock(mu_);
  if (directPendingAdded_ && !pending_.empty()) wake();
  directPendingAdded_ = false;
}

// The synchronous front end's wait in direct mode: poll the permission
// groups and takerFd_, which the reader thread signals when it queues
// events (notification groups, and permission groups it took over).
// Returns false when the caller should wait the usual way: not in direct
// mode, or timeoutMs == 0 and nothing was read here (the caller then asks
// the thread for one read pass of the other groups).
bool Reader::takeDirect(std::vector<Event>& out, size_t max, int timeoutMs) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!direct_) return false;
  }
  // Events handed out by the previous call and still unanswered: the thread
  // learns their deadlines now. (A loop that answers before reading again
  // leaves none, and costs the thread no wake-up per event.)
  afterDirectDelivery();
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs > 0 ? timeoutMs : 0);
  std::vector<pollfd> fds;
  for (;;) {
    int taker;
    {
      // The queue check and the eventfd are one step with the thread's
      // hand-over (under mu_), so no signal can fall between them.
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || !queue_.empty()) {
        moveOutLocked(out, max);
        return true;
      }
      if (takerFd_ < 0) takerFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      taker = takerFd_;
    }
    fds.assign(1, pollfd{taker, POLLIN, 0});
    for (int fd : directPermissionFds()) fds.push_back(pollfd{fd, POLLIN, 0});
    int wait = -1;
    if (timeoutMs >= 0) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
      wait = left > 0 ? static_cast<int>(left) : 0;
    }
    int n = poll(fds.data(), fds.size(), wait);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      if (fds[0].revents & POLLIN) {
        uint64_t count;
        ssize_t ignored = read(fds[0].fd, &count, sizeof(count));
        (void)ignored;
      }
      for (size_t k = 1; k < fds.size(); k++)
        if (fds[k].revents & POLLIN) readPermissionsDirect(fds[k].fd, out);
      if (out.empty()) continue;  // only the thread's signal: look again
      // A deadline sooner than the thread's next look must not wait for it.
      if (std::chrono::milliseconds(options_.permissionTimeoutMs) < kDirectGrace) afterDirectDelivery();
      return true;
    }
    if (timeoutMs == 0) return false;
    if (n < 0 || std::chrono::steady_clock::now() >= until) return true;
  }
}

// The reader thread's look at permission groups in direct mode: it does not
// wake for them; every kDirectGrace it looks without waiting. A group readable at two looks in a row has waited at least that
// long: JavaScript is stalled, and this thread reads it so that deadlines
// hold.
void Reader::checkDirectGroups(std::vector<uint8_t>& buf, std::vector<Event>& batch) {
  std::vector<int> indices;
  std::vector<pollfd> fds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (!direct_ || now < nextDirectCheck_) return;
    nextDirectCheck_ = now + kDirectGrace;
    for (size_t i = 0; i < groups_.size(); i++) {
      if (!groups_[i].directReadable()) continue;
      indices.push_back(static_cast<int>(i));
      fds.push_back(pollfd{groups_[i].fd, POLLIN, 0});
    }
  }
  if (fds.empty() || poll(fds.data(), fds.size(), 0) < 0) return;
  for (size_t k = 0; k < fds.size(); k++) {
    Group group;
    bool stalled;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Group& g = groups_[indices[k]];
      const bool readable = (fds[k].revents & POLLIN) != 0;
      stalled = readable && g.readableAtLastLook;
      g.readableAtLastLook = readable && !stalled;
      group = g;
    }
    if (stalled) readGroup(indices[k], group, buf, batch);
  }
}

}  // namespace fan
