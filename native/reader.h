// The Reader owns an instance's fanotify groups and the one thread that reads
// them: it polls and reads the groups (reader.cc; what the JavaScript thread
// calls to take events, and its direct reads of permission groups, in
// reader_consumer.cc, which calls into reader.cc only), hands each read to
// the enrichment (enrich.h: paths, scope, allowSelf, rename undo), registers
// the permission events that come out of it in its pending table
// (pending.h: answers, fds, deadlines), and queues the result for the
// consumer, waking it (take, setNotify). Both front ends (sync Fanotify and
// AsyncFanotify) sit on it, so the permission-safety rules hold once:
//   - own-process permission events are allowed before JavaScript sees them
//     (Enricher);
//   - every permission event has a deadline, kept by this thread (it polls
//     with the table's next deadline as timeout);
//   - an answer names an event id, never an fd number, so a second answer or
//     one after close() is a no-op;
//   - one owner per event fd: the kernel's fd of a permission event belongs
//     to the pending table (PendingTable, pending.h), the only code that
//     answers and closes it, and its number never reaches JavaScript;
//     JavaScript gets a descriptor of its own (dupFd), which this code never
//     closes;
//   - close() answers everything pending, and what the kernel still holds
//     unread, with defaultResponse, then closes every fd.
//
// Locking: one mutex (mu_) guards the queue, the pending permission table,
// the group list and the flags below it. The thread holds it only to move a
// decoded batch in and to expire deadlines; it reads, decodes and enriches
// (resolves paths) without it, so a slow readlink never blocks the JavaScript thread.
//
// Lifetime: the thread and the eventfd that wakes it (wakeFd_) start with
// the first group; either failing fails that addGroup (nothing half-made
// stays). close() runs on the JavaScript thread that owns the instance (or
// its environment's teardown, on the same thread), never while that
// thread waits in take(): it stops and joins the thread, and only then
// closes wakeFd_ and takerFd_. No C++ exception leaves the thread: run()
// catches it, answers what the failed pass had read but not registered, and
// queues an Error event; callers on the JavaScript thread get exceptions
// (SysFailure, std::bad_alloc) that reader_wrap.cc turns into JS errors.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "decoder.h"
#include "enrich.h"
#include "errors.h"
#include "event.h"
#include "mounts.h"
#include "paths.h"
#include "pending.h"
#include "process_info.h"
#include "scope.h"

namespace fan {

struct ReaderOptions {
  int permissionTimeoutMs = 10000;
  uint32_t defaultResponse = 0x01;  // FAN_ALLOW
  bool allowSelf = true;
  size_t queueLimit = 16384;
  size_t bufferSize = 65536;
  bool processInfo = false;
};

class Reader {
 public:
  explicit Reader(const ReaderOptions& options);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Creates a group with exactly these fanotify_init flags; returns its index.
  int addGroup(unsigned flags, unsigned eventFlags, SysError& err);
  bool mark(int group, unsigned flags, uint64_t mask, int dirfd, const std::string& path, SysError& err);
  // The fd of a group (-1: no such group, or closing), for the walker of
  // unprivileged recursive watches (walker.h), which marks with it, and for
  // the decision cache's count (/proc/self/fdinfo). It stays the Reader's.
  int groupFd(int group);
  PathResolver& paths() { return paths_; }
  // Keeps only events inside these rules from this group (recursive watches);
  // no rules: everything the kernel reports.
  void setScope(int group, std::vector<ScopeRule> rules);

  // What may end a take() early, other than events: the environment of the
  // JavaScript thread that waits going away (worker.terminate(), or
  // process.exit() in the main thread stopping its workers). Nothing can be
  // signalled to a thread blocked in poll then, but the stopping Node
  // always wakes that environment's event loop: `fd` is the loop's epoll fd
  // (readable when the loop has work), and on readability take() asks
  // `stopping()`. While `fd` stays readable for other work the loop will do
  // once JavaScript runs again, take() asks every kInterruptCheckMs (100 ms)
  // instead.
  struct Interrupt {
    int fd = -1;
    std::function<bool()> stopping;
  };
  // Moves up to `max` queued events into `out`. timeoutMs: 0 returns at once
  // (after asking the thread to read what the kernel holds), < 0 waits until
  // an event arrives or the reader closes, > 0 waits at most that long. In
  // direct mode it reads permission groups itself meanwhile. Returns false
  // if `interrupt` said stop (out may hold events read before). Throws
  // SysFailure when it cannot wait (no fd left for its eventfd).
  bool take(std::vector<Event>& out, size_t max, int timeoutMs, const Interrupt* interrupt = nullptr);
  // Moves what is queued now, without waiting or asking the thread to read.
  void drain(std::vector<Event>& out, size_t max);

  // 1: answered; 0: not pending (already answered, expired or closed); < 0: -errno.
  int respond(uint64_t id, uint32_t response, const AuditRule* audit = nullptr);
  // A new descriptor (F_DUPFD_CLOEXEC) of a pending event's file, for
  // JavaScript to own and close: nothing here ever closes it. -1 when the
  // event is no longer pending (err = 0) or the dup failed (err = errno).
  int dupFd(uint64_t id, int& err);
  // See PendingTable::ignoreMark (the decision cache).
  int ignoreMark(uint64_t id, unsigned flags, uint64_t mask, struct stat& st);

  void setBufferSize(size_t bytes);
  // Called on the reader thread after it queues events; async front ends use
  // it to uv_async_send. Set before the first group, cleared in close().
  void setNotify(std::function<void()> notify);

  // Direct permission reads (reader_consumer.cc): the JavaScript thread reads
  // permission groups itself, AsyncFanotify as soon as they are readable,
  // Fanotify while it waits in take(). That saves the hand-over through this
  // thread on the path a blocked process waits on. This thread still polls
  // those groups, but leaves one that became readable to JavaScript for
  // kDirectGrace before reading it itself (checkDirectGroups), so a stalled
  // event loop or a program that stopped reading still gets every
  // deadline. It has a timeout only while a group is readable or an event
  // pending: an idle instance never wakes it.
  void setDirectPermissions(bool on);
  // The permission groups JavaScript may read (the non-blocking ones).
  std::vector<int> directPermissionFds();
  void readPermissionsDirect(int fd, std::vector<Event>& out);
  // After direct events went to JavaScript (and it had its chance to answer
  // them): if some are still unanswered and due before the thread looks
  // next, wake it so that it keeps their deadlines. Never more than once per
  // permissionTimeout while JavaScript keeps reading (see leaseUntil_).
  void afterDirectDelivery();

  // Queues an Error event (errno, message) for the consumer, as the thread
  // does when a pass fails: the JavaScript glue uses it when a delivery
  // failed. Never throws.
  void reportFailure(int err, const std::string& message) noexcept;

  // Stops the thread, answers every pending permission event and those the
  // permission groups still hold unread (answerUnread) with defaultResponse,
  // and closes the groups. With `later`, the group and mount fds are handed
  // over instead of closed (see ReaderWrap::CloseAsync): closing a group
  // that had marks waits in the kernel.
  void close(std::vector<int>* later = nullptr);
  bool closed() const { return closed_.load(); }

 private:
  struct Group {
    int fd;
    unsigned flags;
    bool permission;   // a content or pre-content class group
    bool nonblocking;  // may be read without poll (direct permission reads)
    ScopePtr scope;    // null: unfiltered
    // Direct mode (checkDirectGroups): while set, the group is JavaScript's
    // to read and this thread leaves it out of its poll until then; unset,
    // the thread polls it like any group. directReads counts the reads
    // JavaScript made (readPermissionsDirect), readsAtGrace its value when
    // the grace began.
    std::chrono::steady_clock::time_point graceUntil{};
    uint64_t directReads = 0, readsAtGrace = 0;
    // In direct mode, JavaScript reads this group (see setDirectPermissions).
    bool directReadable() const { return permission && nonblocking; }
  };

  // The thread: loop(), restarted after an exception (see failPass).
  void run() noexcept;
  void wake();
  void readGroup(int index, const Group& group, std::vector<uint8_t>& buf, std::vector<Event>& batch);
  void moveOutLocked(std::vector<Event>& out, size_t max);
  int pollTimeoutLocked(std::chrono::steady_clock::time_point now);
  bool handOverLocked(bool urgent, std::chrono::steady_clock::time_point now);
  enum class Direct { NotDirect, Done, Interrupted };
  Direct takeDirect(std::vector<Event>& out, size_t max, int timeoutMs, const Interrupt* interrupt);
  void loop();
  void failPass(std::vector<Event>& batch) noexcept;
  void registerLocked(std::vector<Event>& batch, std::chrono::steady_clock::time_point now);
  void checkDirectGroups(const std::vector<int>& readable, std::vector<uint8_t>& buf, std::vector<Event>& batch);
  void answerUnread(const std::vector<Group>& groups);

  ReaderOptions options_;
  PathResolver paths_;
  MountResolver mounts_;
  Enricher enricher_;  // uses paths_ and mounts_
  int wakeFd_ = -1;  // made with the thread (addGroup), closed after join
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Group> groups_;
  std::deque<Event> queue_;
  PendingTable pending_;  // guarded by mu_ (see pending.h)
  uint64_t flushRequested_ = 0, flushDone_ = 0;
  bool throttled_ = false;  // the thread left bounded groups unread: queue full
  // Waking the consumer thread costs more than reading a few events, so
  // under load notification events are handed over at most once per
  // kCoalesce; an idle consumer, permission events and errors go at once.
  bool handOverPending_ = false;
  std::chrono::steady_clock::time_point lastHandOver_{};
  // Likewise each poll wake-up costs a context switch: while notification
  // events keep coming, their groups are read at most once per kCoalesce
  // (the kernel queue holds them meanwhile). Permission groups are always
  // polled.
  std::chrono::steady_clock::time_point notificationsRestUntil_{};
  bool direct_ = false;
  // The thread learns the deadline of an event JavaScript read directly
  // only when it next computes its poll timeout. So afterDirectDelivery
  // looks at the events read since the last call (directIds_) that are
  // still pending, and wakes the thread only if one is due before
  // threadWakeAt_ (when the thread will look on its own; max: never).
  // While JavaScript keeps reading directly, the thread keeps a lease: it
  // looks at least once per permissionTimeout (leaseUntil_), so every later
  // deadline falls after its next look and deliveries do not wake it one by
  // one; the lease lapses after a permissionTimeout without direct reads.
  std::vector<uint64_t> directIds_;
  bool directActive_ = false;  // direct events since the thread last looked
  std::chrono::steady_clock::time_point threadWakeAt_ = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point leaseUntil_{};
  std::vector<uint8_t> directBuf_;  // used by the JavaScript thread only
  int takerFd_ = -1;  // eventfd: this thread queued events for a direct take()
  // The batch of the thread's current pass: a member so that run() can
  // answer what a failed pass read but did not register (failPass).
  std::vector<Event> inFlight_;
  bool stopping_ = false;
  std::function<void()> notify_;
  std::atomic<bool> closed_{false};
};

}  // namespace fan
