// The reader thread's side of the Reader: groups and marks, the poll loop
// (timeouts from the pending table's deadlines, coalesced hand-over to the
// consumer, the safety net over direct permission groups), reading a group
// into enriched Events (readGroup) and registering their permission events
// (registerLocked), and close(). The JavaScript thread's side (take, drain,
// direct reads) is reader_consumer.cc, which calls into this file only.
//
// Locking: the Reader's one mutex (mu_, see reader.h) guards the queue, the
// pending table, the group list and the flags. The thread takes it to
// compute its poll timeout and expire deadlines, to move a decoded batch in
// (registerLocked, then the queue) and to hand over; it polls, reads,
// decodes and enriches without it, so a slow readlink never blocks the
// JavaScript thread. Calls from the JavaScript thread (addGroup, mark,
// respond, dupFd, close) take it for their own step only. Functions named
// ...Locked expect the caller to hold it. The consumer is signalled (notify_,
// takerFd_, both copied under mu_) after the lock is released. The path
// resolver (paths.h) locks for itself and is only called without mu_ held,
// so the two locks are never nested.
#include "reader.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "fan_constants.h"

namespace fan {

namespace {

// How long a readable permission group is left to the JavaScript thread in
// direct mode before the reader thread reads it itself.
constexpr auto kDirectGrace = std::chrono::milliseconds(20);
// The longest a notification event waits in the queue before the consumer
// is woken, while events keep coming (see handOverLocked).
constexpr auto kCoalesce = std::chrono::milliseconds(1);

void closeIfOpen(int fd) {
  if (fd >= 0) ::close(fd);
}

}  // namespace

Reader::Reader(const ReaderOptions& options)
    : options_(options),
      enricher_(paths_, mounts_, options.allowSelf, options.processInfo),
      pending_(options.permissionTimeoutMs, options.defaultResponse) {}

Reader::~Reader() { close(); }

int Reader::addGroup(unsigned flags, unsigned eventFlags, SysError& err) {
  int fd = fanotify_init(flags, eventFlags);
  if (fd < 0) {
    err = {errno, "fanotify_init", ""};
    return -1;
  }
  bool permission = (flags & (FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT)) != 0;
  bool nonblocking = (flags & FAN_NONBLOCK) != 0;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    ::close(fd);
    err = {EBADF, "fanotify_init", ""};
    return -1;
  }
  try {
    groups_.push_back({fd, flags, permission, nonblocking, nullptr});
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (thread_.joinable()) {
    wake();  // the thread's poll set is rebuilt on each pass
    return static_cast<int>(groups_.size() - 1);
  }
  // The first group starts the thread and its wake-up eventfd. Without
  // either, close() could not stop the thread (join would wait forever) or
  // there would be no thread to keep deadlines: fail this group cleanly.
  auto undo = [&](int code, const char* syscall) {
    groups_.pop_back();
    ::close(fd);
    err = {code, syscall, ""};
    return -1;
  };
  if (wakeFd_ < 0) wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeFd_ < 0) return undo(errno, "eventfd");
  try {
    thread_ = std::thread(&Reader::run, this);
  } catch (const std::system_error& e) {
    return undo(errnoOf(e), "pthread_create");  // EAGAIN: RLIMIT_NPROC, pids.max, threads-max
  } catch (...) {
    return undo(currentExceptionErrno(), "pthread_create");
  }
  return static_cast<int>(groups_.size() - 1);
}

void Reader::setScope(int group, std::vector<ScopeRule> rules) {
  // Each rule's object, for placing events by object (see Scope). O_PATH
  // opens are never reported, so this is safe inside a watched tree.
  for (ScopeRule& rule : rules) {
    int fd = open(rule.path.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    if (fstat(fd, &st) == 0) {
      rule.hasId = true;
      rule.dev = st.st_dev;
      rule.ino = st.st_ino;
    }
    PathResolver::Location where = paths_.locate(fd, true, [](dev_t, ino_t) {});
    if (where.kind == PathResolver::Location::Kind::Found) rule.canonical = where.path;
    ::close(fd);
  }
  ScopePtr scope = rules.empty() ? nullptr : std::make_shared<const Scope>(std::move(rules));
  std::lock_guard<std::mutex> lock(mu_);
  if (group >= 0 && static_cast<size_t>(group) < groups_.size()) groups_[group].scope = std::move(scope);
}
// Note: the kernel may already hold events from before the scope changed;
// they are judged by the new scope, which is what the caller just asked for.

int Reader::groupFd(int group) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || group < 0 || static_cast<size_t>(group) >= groups_.size()) return -1;
  return groups_[group].fd;
}

bool Reader::mark(int group, unsigned flags, uint64_t mask, int dirfd, const std::string& path, SysError& err) {
  int fd;
  unsigned groupFlags;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || group < 0 || static_cast<size_t>(group) >= groups_.size()) {
      err = {EBADF, "fanotify_mark", path};
      return false;
    }
    fd = groups_[group].fd;
    groupFlags = groups_[group].flags;
  }
  // Learn the path first: the resolver's own system calls must not become
  // events of the mark being placed.
  bool reportsFid = (groupFlags & (FAN_REPORT_FID | FAN_REPORT_DIR_FID)) != 0;
  if ((flags & FAN_MARK_ADD) && (flags & FAN_MARK_MNTNS) == FAN_MARK_MNTNS && !path.empty())
    mounts_.rememberNamespace(dirfd, path);  // (FAN_MARK_MNTNS shares a bit with FAN_MARK_FILESYSTEM)
  else if ((flags & FAN_MARK_ADD) && reportsFid && !path.empty())
    paths_.rememberMarked(dirfd, path, !(flags & FAN_MARK_DONT_FOLLOW));
  else if ((flags & FAN_MARK_ADD) && (flags & FAN_MARK_FILESYSTEM) && !path.empty())
    paths_.rememberFilesystem(dirfd, path, !(flags & FAN_MARK_DONT_FOLLOW));
  if (fanotify_mark(fd, flags, mask, dirfd, path.empty() ? nullptr : path.c_str()) != 0) {
    err = {errno, "fanotify_mark", path};
    return false;
  }
  return true;
}

void Reader::wake() {
  uint64_t one = 1;
  ssize_t ignored = write(wakeFd_, &one, sizeof(one));
  (void)ignored;  // EAGAIN means a wake-up is already pending
}

void Reader::setNotify(std::function<void()> notify) {
  std::lock_guard<std::mutex> lock(mu_);
  notify_ = std::move(notify);
}

void Reader::setBufferSize(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  options_.bufferSize = bytes;
}

int Reader::respond(uint64_t id, uint32_t response, const AuditRule* audit) {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.respond(id, response, audit);
}

int Reader::dupFd(uint64_t id, int& err) {
  std::lock_guard<std::mutex> lock(mu_);  // see pending.h: no deadline closes it meanwhile
  return pending_.dupFd(id, err);
}

int Reader::ignoreMark(uint64_t id, unsigned flags, uint64_t mask, struct stat& st) {
  std::lock_guard<std::mutex> lock(mu_);  // as dupFd: the event's fd stays open meanwhile
  return pending_.ignoreMark(id, flags, mask, st);
}

// At close(): the permission events the kernel still holds unread (the
// thread had not read them yet, or left them to JavaScript in direct mode)
// get defaultResponse too; closing the group would make the kernel allow
// them, whatever defaultResponse says. The marks go first, so that no new
// event arrives while the queue is drained; an access already on its way
// into the queue as this runs can still be allowed by the kernel. Only the
// closing thread reads the groups now (the reader thread is joined, and
// direct reads stop at stopping_).
void Reader::answerUnread(const std::vector<Group>& groups) {
  std::vector<uint8_t> buf(std::max<size_t>(options_.bufferSize, 4096));
  std::vector<Event> batch;
  for (size_t i = 0; i < groups.size(); i++) {
    const Group& g = groups[i];
    if (!g.permission) continue;
    for (unsigned type : {0u, unsigned(FAN_MARK_MOUNT), unsigned(FAN_MARK_FILESYSTEM)})
      fanotify_mark(g.fd, FAN_MARK_FLUSH | type, 0, AT_FDCWD, nullptr);  // EINVAL where a type is unknown
    // Bounded: the flush stops new events, this only guards against a kernel
    // that keeps some coming.
    for (int pass = 0; pass < 1024; pass++) {
      pollfd pfd{g.fd, POLLIN, 0};
      if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN)) break;
      // The same pipeline as a live read: own-process events are allowed and
      // events a scope places outside every watched tree are allowed (never
      // denied because their instance closed); what is left was the
      // handler's to decide, and gets defaultResponse.
      batch.clear();
      readGroup(static_cast<int>(i), g, buf, batch);
      for (Event& ev : batch) {
        if (ev.fd < 0) continue;
        PendingTable::answerNow(g.fd, ev.fd, options_.defaultResponse);
      }
    }
  }
}

int Reader::pollTimeoutLocked(std::chrono::steady_clock::time_point now) {
  if (flushRequested_ != flushDone_) return 0;
  auto next = std::chrono::steady_clock::time_point::max();
  if (handOverPending_) next = lastHandOver_ + kCoalesce;
  next = std::min(next, pending_.nextDeadline());
  if (next == std::chrono::steady_clock::time_point::max()) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

// Decides whether to wake the consumer now. Waking costs a futex or eventfd
// wake-up and a context switch, more than handling a few events, so a burst
// is handed over at most once per kCoalesce; the first event after a quiet
// spell, permission events and errors go at once.
bool Reader::handOverLocked(bool urgent, std::chrono::steady_clock::time_point now) {
  if (!handOverPending_) return false;
  if (!urgent && now - lastHandOver_ < kCoalesce) return false;
  handOverPending_ = false;
  lastHandOver_ = now;
  return true;
}

// Gives each permission event its id (the key answers use) and deadline:
// from here on its fd is the pending table's.
void Reader::registerLocked(std::vector<Event>& batch, std::chrono::steady_clock::time_point now) {
  for (auto& ev : batch)
    if (ev.fd >= 0) pending_.add(ev, groups_[ev.group].fd, now);
}

void Reader::readGroup(int index, const Group& group, std::vector<uint8_t>& buf, std::vector<Event>& batch) {
  ssize_t n = read(group.fd, buf.data(), buf.size());
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    // EMFILE/ENFILE: the kernel could not open the event's fd; it dropped the
    // event (and denied it, for a permission event). Report, keep reading.
    const int err = errno;
    Event error = Event::error(err, std::string("read: ") + std::strerror(err));
    error.group = index;
    error.permissionGroup = group.permission;
    batch.push_back(std::move(error));
    return;
  }
  std::vector<RawEvent> raws;
  raws.reserve(static_cast<size_t>(n) / 64 + 1);  // FID events are 60 bytes and up
  decodeEvents(buf.data(), static_cast<size_t>(n), raws);
  enricher_.enrich(raws, EnrichGroup{index, group.fd, group.flags, group.permission, group.scope.get()}, batch);
}

void Reader::run() noexcept {
  for (;;) {
    try {
      loop();
      return;  // stopping
    } catch (...) {
      const int err = currentExceptionErrno();
      failPass(inFlight_);
      reportFailure(err, std::string("the reader thread failed (") + std::strerror(err) +
                             "); events it was reading may be lost; it keeps running");
    }
    // Not a tight loop if it fails again at once (out of memory): a pause
    // that close() cuts short through the wake-up eventfd.
    pollfd pfd{wakeFd_, POLLIN, 0};
    poll(&pfd, 1, 10);
  }
}

// Answers (defaultResponse) and closes the permission events of a failed
// pass that never reached the pending table: nobody else knows their fds.
// Registered ones keep their deadlines there.
void Reader::failPass(std::vector<Event>& batch) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& ev : batch) {
    if (ev.fd < 0 || ev.id != 0) continue;
    const bool known = ev.group >= 0 && static_cast<size_t>(ev.group) < groups_.size();
    PendingTable::answerNow(known ? groups_[ev.group].fd : -1, ev.fd, options_.defaultResponse);
    ev.fd = -1;
  }
  batch.clear();
}

void Reader::reportFailure(int err, const std::string& message) noexcept {
  std::function<void()> notify;
  try {
    Event error = Event::error(err, message);
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    queue_.push_back(std::move(error));
    notify = notify_;
  } catch (...) {
    return;  // out of memory for the report too: nothing more to do
  }
  cv_.notify_all();
  if (notify) notify();
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

void Reader::loop() {
  std::vector<uint8_t> buf;
  std::vector<pollfd> fds;
  std::vector<int> fdGroup;
  std::vector<Group> groups;
  std::vector<int> readableDirect;
  using Clock = std::chrono::steady_clock;
  for (;;) {
    int timeout;
    uint64_t flushSeen;
    bool direct;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      // A full queue leaves notification groups unread, so the kernel keeps
      // the backlog and its overflow event stays truthful. Permission groups
      // are always read: their events are bounded by the threads they block,
      // and each needs its deadline.
      bool full = queue_.size() >= options_.queueLimit;
      const auto now = std::chrono::steady_clock::now();
      bool resting = now < notificationsRestUntil_;
      direct = direct_;
      throttled_ = false;
      flushSeen = flushRequested_;
      timeout = pollTimeoutLocked(now);
      auto wakeBy = [&](std::chrono::steady_clock::time_point until) {
        auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
        if (ms < 0) ms = 0;
        if (timeout < 0 || ms < timeout) timeout = static_cast<int>(ms);
      };
      fds.assign(1, pollfd{wakeFd_, POLLIN, 0});
      fdGroup.assign(1, -1);
      for (size_t i = 0; i < groups_.size(); i++) {
        if (full && !groups_[i].permission) {
          throttled_ = true;
          continue;
        }
        if (resting && !groups_[i].permission) continue;
        if (direct && groups_[i].directReadable() && groups_[i].graceUntil != Clock::time_point{}) {
          wakeBy(groups_[i].graceUntil);  // JavaScript's turn; see checkDirectGroups
          continue;
        }
        fds.push_back(pollfd{groups_[i].fd, POLLIN, 0});
        fdGroup.push_back(static_cast<int>(i));
      }
      groups = groups_;
      if (resting) wakeBy(notificationsRestUntil_);
      // JavaScript read permission events directly since the last look:
      // keep (or renew) the lease, see leaseUntil_.
      if (directActive_) leaseUntil_ = now + std::chrono::milliseconds(options_.permissionTimeoutMs);
      directActive_ = false;
      if (leaseUntil_ > now) wakeBy(leaseUntil_);
      threadWakeAt_ = timeout < 0 ? Clock::time_point::max() : now + std::chrono::milliseconds(timeout);
      if (buf.size() != options_.bufferSize) buf.resize(options_.bufferSize);
    }

    int n = poll(fds.data(), fds.size(), timeout);
    std::vector<Event>& batch = inFlight_;  // see failPass
    batch.clear();
    readableDirect.clear();
    if (n > 0) {
      {
        // Scopes may have changed while poll slept: enrich with the
        // current ones (indices are stable, groups are only appended).
        std::lock_guard<std::mutex> lock(mu_);
        groups = groups_;
      }
      if (fds[0].revents & POLLIN) {
        uint64_t count;
        ssize_t ignored = read(wakeFd_, &count, sizeof(count));
        (void)ignored;
      }
      bool readNotifications = false;
      for (size_t k = 1; k < fds.size(); k++) {
        const int g = fdGroup[k];
        if (!(fds[k].revents & POLLIN)) continue;
        if (direct && groups[g].directReadable()) {
          readableDirect.push_back(g);  // JavaScript reads it first: checkDirectGroups
          continue;
        }
        readGroup(g, groups[g], buf, batch);
        readNotifications = readNotifications || !groups[g].permission;
      }
      if (readNotifications) {
        std::lock_guard<std::mutex> lock(mu_);
        notificationsRestUntil_ = std::chrono::steady_clock::now() + kCoalesce;
      }
    }
    checkDirectGroups(readableDirect, buf, batch);

    std::function<void()> notify;
    bool wakeConsumer;
    bool flushAnswered;
    int takerFd;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto now = std::chrono::steady_clock::now();
      flushAnswered = flushSeen != flushDone_;
      bool urgent = flushAnswered;
      for (const auto& ev : batch)
        if (ev.fd >= 0 || ev.kind != Event::Kind::Normal) urgent = true;
      registerLocked(batch, now);
      pending_.expire(batch);
      if (!batch.empty()) handOverPending_ = true;
      for (auto& ev : batch) queue_.push_back(std::move(ev));
      flushDone_ = flushSeen;
      wakeConsumer = handOverLocked(urgent, now);
      if (wakeConsumer) notify = notify_;
      takerFd = takerFd_;
    }
    if (wakeConsumer || flushAnswered) {
      cv_.notify_all();
      if (takerFd >= 0) {
        uint64_t one = 1;
        ssize_t ignored = write(takerFd, &one, sizeof(one));
        (void)ignored;
      }
    }
    if (notify) notify();
  }
}

void Reader::close(std::vector<int>* later) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  std::vector<Group> groups;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.answerAll();
    queue_.clear();  // permission fds in it were closed through pending_
    groups.swap(groups_);
    notify_ = nullptr;
  }
  answerUnread(groups);
  for (const auto& g : groups) {
    if (later) later->push_back(g.fd);
    else ::close(g.fd);
  }
  paths_.closeAll(later);
  closeIfOpen(wakeFd_);
  wakeFd_ = -1;
  closeIfOpen(takerFd_);  // the thread that wrote it is joined; take() runs on the closing thread
  takerFd_ = -1;
  closed_ = true;
  cv_.notify_all();
}

}  // namespace fan
