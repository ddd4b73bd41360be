/**
 * How an event's paths and names are handed out: `'utf8'` strings (the
 * default; bytes that are not UTF-8 become U+FFFD), or `'buffer'`: Buffers
 * with the kernel's exact bytes.
 */
export type Encoding = 'utf8' | 'buffer';

/** The type of an event's paths and names under an encoding: `string`, or `Buffer` for `'buffer'`. */
export type PathOf<E extends Encoding> = E extends 'buffer' ? Buffer : string;

/**
 * Options shared by `Fanotify` and `AsyncFanotify`. `E` is the `encoding`
 * (inferred from the literal given, so that `new Fanotify({ encoding:
 * 'buffer' })` is a `Fanotify<'buffer'>` whose events carry Buffers).
 */
export interface FanotifyOptions<E extends Encoding = 'utf8'> {
  /**
   * Extra `fanotify_init` flags for every group the instance creates:
   * NONBLOCK, CLOEXEC, UNLIMITED_QUEUE, UNLIMITED_MARKS, ENABLE_AUDIT,
   * REPORT_TID, REPORT_PIDFD. The class and the reporting mode of each group
   * are chosen from the marks; for exact flags use `Fanotify.withFlags`.
   */
  flags?: number;
  /** `fanotify_init` event_f_flags: how event fds are opened (default O_RDONLY | O_LARGEFILE | O_CLOEXEC). */
  eventFlags?: number;
  /** Bytes per read(2) of the kernel queue (default 65536, at least 4096). */
  bufferSize?: number;
  /** Milliseconds before an unanswered permission event gets `defaultResponse` (default 10000). */
  permissionTimeout?: number;
  /**
   * The answer for permission events not answered in time, whose handler
   * failed, or still pending when the instance is closed (default 'allow').
   * `close()` (also garbage collection of a sync instance, worker exit, and
   * the end of the event loop) gives it to the events already read and to
   * those the kernel still holds unread. When the process dies instead (a
   * signal, a crash, `process.exit()`, an uncaught exception) the kernel
   * allows everything still pending, whatever this says; close in a
   * `process.on('exit')` handler to have it apply on `process.exit()` too.
   */
  defaultResponse?: 'allow' | 'deny';
  /** Answer permission events caused by this process with allow, natively (default true). */
  allowSelf?: boolean;
  /** Events held in memory before the reader stops reading the kernel queue (default 16384). */
  queueLimit?: number;
  /** Fill `event.process` with pid, comm and exe. */
  processInfo?: boolean;
  /**
   * `'utf8'` (default): paths and names are strings, and a byte sequence
   * that is not UTF-8 reads as U+FFFD. `'buffer'` (as in `fs.watch`): every
   * path and name of an event (`path`, `name`, `oldPath`, `newPath`,
   * `info.path`, `info.filename()`) is a Buffer with the kernel's exact
   * bytes, which `fs` functions accept as a path. `process.comm` and
   * `process.exe` stay strings.
   */
  encoding?: E;
}

export type MarkType = 'inode' | 'mount' | 'filesystem' | 'mntns';

export interface WatchOptions {
  /** What the mark is attached to (default 'inode'). */
  mark?: MarkType;
  /**
   * Watch the whole subtree, including directories created later. As root:
   * a filesystem mark plus a native filter that judges each event by its
   * object, whatever mount it was reached through (a bind mount of the tree
   * reports the tree's path); a permission event it cannot place (deeper
   * than PATH_MAX) is asked about with `path` null. See the README on what
   * such a rule can promise (hard links). As a normal user: a mark per
   * directory, placed by a native walk (AsyncFanotify: on a walker thread,
   * addWatch resolves when all are placed); more directories than
   * `fs.fanotify.max_user_marks` allows fail with LimitReached, nothing left
   * marked.
   */
  recursive?: boolean;
  /** For a directory: also report events on its direct children (default true). */
  onChildren?: boolean;
  /** Also report events on directories themselves (default true). */
  onDir?: boolean;
  /** Mark a symbolic link itself, not its target. */
  dontFollow?: boolean;
  /** Fail with InvalidPath unless the path is a directory. */
  onlyDir?: boolean;
  /** Add `mask` as an ignore mask: matching events are not reported. */
  ignore?: boolean;
  /** With `ignore`: keep ignoring after the file is modified. */
  ignoreSurviveModify?: boolean;
  /** Let the kernel drop the mark when the inode is evicted from cache. */
  evictable?: boolean;
}

/**
 * The audit rule that decided a permission event (Linux 6.3, FAN_INFO): the
 * kernel's audit record of the answer names it, as fapolicyd's do.
 */
export interface AuditRule {
  /** The rule's number (0 to 2^32 - 1), as your policy numbers its rules. */
  rule: number;
  /** Whether the process (subject) is trusted; left out: unknown. */
  subjectTrust?: boolean;
  /** Whether the file (object) is trusted; left out: unknown. */
  objectTrust?: boolean;
}

/** An answer to a permission event. */
export interface Response {
  allow: boolean;
  /**
   * Ask the kernel to write an audit record of this answer (FAN_AUDIT);
   * `{ rule }` adds the rule that decided (FAN_INFO, Linux 6.3). Both need
   * the group flag FanotifyFlags.ENABLE_AUDIT (`flags` option; it needs
   * CAP_AUDIT_WRITE).
   */
  audit?: boolean | AuditRule;
  /** With allow: false, the errno the denied call fails with (Linux 6.14, FAN_DENY_ERRNO). */
  errno?: number;
  /**
   * With allow: true, stop asking about this file until it is modified (an
   * evictable ignore mark in the group that reported it; see the README,
   * "Decision cache"). On a PRE_ACCESS event: the file is filled, stop
   * asking (a later write does not undo it). Directories are not cached.
   */
  cache?: boolean;
}

/** The options of `allow()`: see Response. */
export interface AllowOptions {
  cache?: boolean;
}

/** The options of `deny()`: see Response. */
export interface DenyOptions {
  errno?: number;
}

export interface ProcessInfo {
  pid: number;
  comm: string | null;
  exe: string | null;
}

/** `P` is `string`, or `Buffer` with the option `encoding: 'buffer'`. */
export interface EventInfo<P extends string | Buffer = string> {
  pid: number;
  isDirectory: boolean;
  path: P | null;
  /** The last component of `path` (or the entry name), or null. */
  filename(): P | null;
}
