/** Options shared by `Fanotify` and `AsyncFanotify`. */
export interface FanotifyOptions {
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
}

export type MarkType = 'inode' | 'mount' | 'filesystem' | 'mntns';

export interface WatchOptions {
  /** What the mark is attached to (default 'inode'). */
  mark?: MarkType;
  /** Watch the whole subtree, including directories created later. */
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

/** An answer to a permission event. */
export interface Response {
  allow: boolean;
  /** Ask the kernel to write an audit record (needs FanotifyFlags.ENABLE_AUDIT). */
  audit?: boolean;
  /** With allow: false, the errno the denied call fails with (Linux 6.14, FAN_DENY_ERRNO). */
  errno?: number;
}

export interface ProcessInfo {
  pid: number;
  comm: string | null;
  exe: string | null;
}

export interface EventInfo {
  pid: number;
  isDirectory: boolean;
  path: string | null;
  /** The last component of `path` (or the entry name), or null. */
  filename(): string | null;
}
