// Enrichment: turns the decoded events of one read of a group into Events,
// the policy between the kernel's records and what JavaScript sees: paths
// resolved (PathResolver), directory renames later in the read undone, a
// scoped group's events judged against its watched trees (and rewritten to
// their paths), the own process's permission events allowed (allowSelf),
// process info read. Data flows one way: the reader calls it, and the
// permission events it decides itself (own process, outside every watched
// tree) are answered through PendingTable::answerNow; a kept permission
// event leaves with its fd in Event::fd, for the reader to register in its
// pending table. It calls nothing back in the reader.
//
// Threads: the reader thread and, in direct mode, the JavaScript thread may
// enrich reads at the same time. The Enricher holds only
// constants and the resolvers, which lock for themselves (paths.h,
// mounts.h); the scope
// is the caller's snapshot of the group's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "decoder.h"
#include "event.h"
#include "mounts.h"
#include "paths.h"
#include "scope.h"

namespace fan {

// The group a read came from, as enrichment needs it.
struct EnrichGroup {
  int index;           // becomes Event::group
  int fd;              // the group's fd: permission events decided here are answered on it
  unsigned flags;      // its fanotify_init flags (FAN_REPORT_TID)
  bool permission;     // a content or pre-content class group
  const Scope* scope;  // null: unfiltered
};

class Enricher {
 public:
  Enricher(PathResolver& paths, MountResolver& mounts, bool allowSelf, bool processInfo);
  Enricher(const Enricher&) = delete;
  Enricher& operator=(const Enricher&) = delete;

  // Appends the Events of `raws` (one read of `group`, in the kernel's
  // order) to `batch`; events it drops or decides leave no fd open.
  void enrich(std::vector<RawEvent>& raws, const EnrichGroup& group, std::vector<Event>& batch);

 private:
  void decorate(RawEvent&& raw, const EnrichGroup& group, std::vector<Event>& batch);
  bool finish(Event& ev, const EnrichGroup& group);
  uint64_t inScope(Event& ev, const Scope& scope, bool permission);
  bool isOwnProcess(int32_t pid, const EnrichGroup& group) const;

  PathResolver& paths_;
  MountResolver& mounts_;  // mount events' mount points
  const bool allowSelf_;
  const bool processInfo_;
  const pid_t self_;
};

}  // namespace fan
