// Event: what the reader hands to the JavaScript glue, one decoded kernel
// event with its paths resolved (enrich.h), or a report of the reader's own
// (overflow, error, deadline warning). Shared by the enrichment, the pending
// table (which makes the warnings) and the reader.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "decoder.h"
#include "process_info.h"

namespace fan {

struct Event {
  enum class Kind : uint8_t {
    Normal,    // a kernel event
    Overflow,  // the kernel dropped events (FAN_Q_OVERFLOW)
    Error,     // the reader could not read (EMFILE, ...); it keeps running
    Warning,   // a permission event was answered by its deadline
  };
  Kind kind = Kind::Normal;
  RawEvent raw;        // metadata and decoded records; raw.fd is not owned here
  int group = -1;      // index of the group it came from
  bool permissionGroup = false;
  uint64_t id = 0;     // non-zero for permission events: the answer's key
  int fd = -1;         // the kernel's fd, kept only for permission events: owned by the
                       // pending table from PendingTable::add on, never handed to JavaScript
  bool isDirectory = false;
  bool hasPath = false, hasName = false, hasOldPath = false, hasNewPath = false;
  std::string path, name, oldPath, newPath;
  int err = 0;         // Error / Warning
  std::string message;
  bool hasProcess = false;
  ProcessInfo process;

  // A report of the reader's own: it could not read or deliver (Kind::Error).
  static Event error(int err, std::string message) {
    Event ev;
    ev.kind = Kind::Error;
    ev.err = err;
    ev.message = std::move(message);
    return ev;
  }
};

}  // namespace fan
