#include "enrich.h"

#include <unistd.h>

#include <cstdio>
#include <utility>

#include "fan_constants.h"
#include "pending.h"

namespace fan {

namespace {

constexpr uint64_t kPermissionMask = FAN_OPEN_PERM | FAN_ACCESS_PERM | FAN_OPEN_EXEC_PERM | FAN_PRE_ACCESS;
constexpr uint64_t kEventFlags = FAN_ONDIR | FAN_EVENT_ON_CHILD;

void closeIfOpen(int fd) {
  if (fd >= 0) ::close(fd);
}

// `path` moved from `from` to `to`'s place: rewrite it as it was.
bool unmove(std::string& path, const std::string& to, const std::string& from) {
  std::string::size_type rest;
  if (to == "/" || !below(path, to, rest)) return false;
  path = from + path.substr(to.size());
  return true;
}

// Paths are resolved when a batch is read, after all of its events
// happened. A directory renamed later in the batch would give the events
// before it its new location, where they never were. Walking back from the
// end, undo each directory rename (FAN_RENAME, which names both sides) on the
// events before it, latest rename first.
void undoLaterDirectoryRenames(std::vector<Event>& batch, size_t start) {
  std::vector<std::pair<std::string, std::string>> renames;  // {to, from}, latest first
  for (size_t i = batch.size(); i-- > start;) {
    Event& ev = batch[i];
    for (const auto& [to, from] : renames) {
      if (ev.hasPath) unmove(ev.path, to, from);
      if (ev.hasOldPath) unmove(ev.oldPath, to, from);
      if (ev.hasNewPath) unmove(ev.newPath, to, from);
    }
    const uint64_t dirRename = FAN_RENAME | FAN_ONDIR;
    if ((ev.raw.mask & dirRename) == dirRename && ev.hasOldPath && ev.hasNewPath && ev.oldPath != ev.newPath)
      renames.emplace_back(ev.newPath, ev.oldPath);
  }
}

// The events of `mask` that the scope's rules asked for at any of the
// event's paths. Kernel-merged events can carry bits one watch asked for on
// a path that only another watch covers: those bits are not reported.
uint64_t scopedEvents(const Scope& scope, const Event& ev, uint64_t mask) {
  uint64_t asked = 0;
  if (ev.hasPath) asked |= scope.covered(ev.path, mask);
  if (ev.hasOldPath) asked |= scope.covered(ev.oldPath, mask);
  if (ev.hasNewPath) asked |= scope.covered(ev.newPath, mask);
  return asked;
}

// The pidfd only serves processInfo (in finish); every way out closes it.
struct PidfdCloser {
  RawEvent& raw;
  ~PidfdCloser() {
    if (raw.hasPidfd && raw.pidfd >= 0) ::close(raw.pidfd);
    raw.pidfd = -1;
  }
};

}  // namespace

Enricher::Enricher(PathResolver& paths, MountResolver& mounts, bool allowSelf, bool processInfo)
    : paths_(paths), mounts_(mounts), allowSelf_(allowSelf), processInfo_(processInfo), self_(getpid()) {}

void Enricher::enrich(std::vector<RawEvent>& raws, const EnrichGroup& group, std::vector<Event>& batch) {
  paths_.newBatch();
  // Directories moved inside an unprivileged recursive tree take their new
  // place first, so that every event of this read resolves to where things
  // are now (the renames are then undone on earlier events, as always).
  for (const auto& raw : raws)
    if ((raw.mask & (FAN_MOVED_TO | FAN_ONDIR)) == (FAN_MOVED_TO | FAN_ONDIR))
      if (const FileIdRecord* to = raw.findFid(FAN_EVENT_INFO_TYPE_DFID_NAME)) paths_.directoryMoved(*to);
  const size_t start = batch.size();
  batch.reserve(start + raws.size());
  for (auto& raw : raws) decorate(std::move(raw), group, batch);
  // Renames first, then the scope: an event is judged where it happened.
  undoLaterDirectoryRenames(batch, start);
  size_t kept = start;
  for (size_t i = start; i < batch.size(); i++) {
    if (batch[i].kind == Event::Kind::Normal && !finish(batch[i], group)) continue;
    if (kept != i) batch[kept] = std::move(batch[i]);
    kept++;
  }
  batch.resize(kept);
}

// Resolves an event's paths. Its fd and pidfd stay open in ev.raw for
// finish(), which runs once the whole read is resolved and its renames undone.
void Enricher::decorate(RawEvent&& raw, const EnrichGroup& group, std::vector<Event>& batch) {
  Event ev;
  ev.group = group.index;
  ev.permissionGroup = group.permission;
  closeDuplicatePidfds(raw);  // before raw is moved into ev

  if (raw.mask & FAN_Q_OVERFLOW) {
    PidfdCloser pidfdCloser{raw};
    closeIfOpen(raw.fd);
    ev.kind = Event::Kind::Overflow;
    ev.raw = std::move(raw);
    batch.push_back(std::move(ev));
    return;
  }

  bool permission = (raw.mask & kPermissionMask) != 0 && raw.fd >= 0;
  if (permission && allowSelf_ && isOwnProcess(raw.pid, group)) {
    PidfdCloser pidfdCloser{raw};
    PendingTable::answerNow(group.fd, raw.fd, FAN_ALLOW);
    return;
  }

  ev.isDirectory = (raw.mask & FAN_ONDIR) != 0;
  if (raw.fd >= 0) ev.hasPath = paths_.fromFd(raw.fd, ev.path);

  const FileIdRecord* dirName = raw.findFid(FAN_EVENT_INFO_TYPE_DFID_NAME);
  const FileIdRecord* oldName = raw.findFid(FAN_EVENT_INFO_TYPE_OLD_DFID_NAME);
  const FileIdRecord* newName = raw.findFid(FAN_EVENT_INFO_TYPE_NEW_DFID_NAME);
  const FileIdRecord* self = raw.findFid(FAN_EVENT_INFO_TYPE_FID);
  const FileIdRecord* dir = raw.findFid(FAN_EVENT_INFO_TYPE_DFID);

  if (oldName) ev.hasOldPath = paths_.fromHandle(*oldName, ev.oldPath);
  if (newName) ev.hasNewPath = paths_.fromHandle(*newName, ev.newPath);
  const FileIdRecord* named = dirName ? dirName : (newName ? newName : oldName);
  if (named && !named->name.empty() && named->name != ".") {
    ev.hasName = true;
    ev.name = named->name;
  }
  if (!ev.hasPath && dirName) ev.hasPath = paths_.fromHandle(*dirName, ev.path);
  if (!ev.hasPath && ev.hasNewPath) ev.hasPath = true, ev.path = ev.newPath;
  if (!ev.hasPath && ev.hasOldPath) ev.hasPath = true, ev.path = ev.oldPath;
  if ((raw.mask & FAN_FS_ERROR) && self) {
    // Not fromHandle: a corrupted object must not be looked up again and again.
    switch (paths_.errorObject(*self, isOwnProcess(raw.pid, group), ev.path)) {
      case PathResolver::ErrorObject::Resolved: ev.hasPath = true; break;
      case PathResolver::ErrorObject::Unresolved: ev.path.clear(); break;
      case PathResolver::ErrorObject::Echo: {  // our own lookup tripped it: not an event of the filesystem's users
        PidfdCloser pidfdCloser{raw};
        closeIfOpen(raw.fd);
        return;
      }
    }
  } else if (!ev.hasPath && self) {
    ev.hasPath = paths_.fromHandle(*self, ev.path);
  }
  if (!ev.hasPath && dir) ev.hasPath = paths_.fromHandle(*dir, ev.path);
  if (ev.hasPath && (raw.mask & FAN_MOVED_FROM) && !ev.hasOldPath) ev.hasOldPath = true, ev.oldPath = ev.path;
  if (ev.hasPath && (raw.mask & FAN_MOVED_TO) && !ev.hasNewPath) ev.hasNewPath = true, ev.newPath = ev.path;
  if (raw.hasMountId) {
    // A mount event: its path is the mount point; a move (both bits) also
    // says where the mount was.
    MountResolver::Place place = mounts_.mountPoint(raw.mountId, raw.mask);
    if (place.hasPath) ev.hasPath = true, ev.path = place.path;
    if (place.hasPrevious) {
      ev.hasOldPath = true, ev.oldPath = std::move(place.previous);
      ev.hasNewPath = true, ev.newPath = place.path;
    }
  }
  ev.raw = std::move(raw);
  batch.push_back(std::move(ev));
}

// Applies the group's scope to a resolved event, then takes its fds over:
// a kept permission event's fd becomes ev.fd (answered and closed through
// the pending table), every other fd is closed. False: dropped
// (outside every watched tree; a permission event is then allowed at once,
// since nobody asked to decide it).
bool Enricher::finish(Event& ev, const EnrichGroup& group) {
  RawEvent& raw = ev.raw;
  PidfdCloser pidfdCloser{raw};
  const bool permission = (raw.mask & kPermissionMask) != 0 && raw.fd >= 0;
  const uint64_t asked = group.scope ? inScope(ev, *group.scope, permission) : raw.mask;
  if (asked == 0) {
    if (permission) PendingTable::answerNow(group.fd, raw.fd, FAN_ALLOW);
    else closeIfOpen(raw.fd);
    return false;
  }

  if (group.scope) raw.mask = (raw.mask & kEventFlags) | asked;

  if (processInfo_) {
    ev.process = readProcessInfo(raw.pid, raw.hasPidfd ? raw.pidfd : kNoPidfdRecord);
    ev.hasProcess = true;
  }

  if (permission) {
    ev.fd = raw.fd;
  } else {
    closeIfOpen(raw.fd);
  }
  return true;
}

// The events of a scoped group's event that its rules asked for; 0: drop it.
// First by the paths the event carries: cheap, and enough for nearly every
// event. Only when no rule covers them is the object placed (a second look
// that costs system calls): an event reached through another mount (a bind
// mount of the tree, a container's view) is judged where its object is, and
// then carries the watched tree's path. A permission event that cannot be
// placed at all (deeper than PATH_MAX, a filesystem that has no file
// handles) goes to JavaScript: only a proven outsider is allowed here. A
// notification event that cannot be placed is dropped: nothing is decided
// on it, and a filesystem mark would otherwise flood JavaScript with them.
uint64_t Enricher::inScope(Event& ev, const Scope& scope, bool permission) {
  const uint64_t mask = ev.raw.mask;
  uint64_t asked = scopedEvents(scope, ev, mask);
  if (asked != 0) return asked;

  // A path that is the canonical one, under a rule's canonical path: report
  // it under the rule's own path.
  auto byCanonical = [&](bool has, std::string& path) {
    if (!has) return;
    std::string watched;
    uint64_t bits = scope.coveredCanonical(path, mask, &watched);
    if (bits != 0) path = std::move(watched);
    asked |= bits;
  };

  if (ev.raw.fd < 0) {
    // File-id events: their paths were resolved through the remembered
    // mount, so they are canonical already.
    if (scope.allCanonical()) return 0;
    byCanonical(ev.hasPath, ev.path);
    byCanonical(ev.hasOldPath, ev.oldPath);
    byCanonical(ev.hasNewPath, ev.newPath);
    return asked;
  }

  uint64_t walked = 0;
  PathResolver::Location where =
      paths_.locate(ev.raw.fd, ev.hasPath, [&](dev_t dev, ino_t ino) { walked |= scope.subtreeAt(dev, ino, mask); });
  switch (where.kind) {
    case PathResolver::Location::Kind::SeenPath:
      if (!scope.allCanonical()) byCanonical(ev.hasPath, ev.path);
      return asked;
    case PathResolver::Location::Kind::Found:
      byCanonical(true, where.path);
      if (asked != 0) {
        ev.hasPath = true;
        ev.path = std::move(where.path);
      }
      return asked;
    case PathResolver::Location::Kind::Walked:
      // The whole filesystem may be a mount inside a watched tree.
      if (walked == 0) walked = scope.covered(where.mountRoot, mask);
      return walked;
    case PathResolver::Location::Kind::Unknown:
      break;
  }
  return permission ? (mask & scope.anyMask()) : 0;
}

bool Enricher::isOwnProcess(int32_t pid, const EnrichGroup& group) const {
  if (pid == self_) return true;
  if (!(group.flags & FAN_REPORT_TID)) return false;
  // With FAN_REPORT_TID the pid is a thread id: one of ours if it is listed
  // under our own /proc entry.
  char task[64];
  snprintf(task, sizeof(task), "/proc/self/task/%d", pid);
  return access(task, F_OK) == 0;
}

}  // namespace fan
