import * as path from 'node:path';
import { FanotifyError } from './errors';

/** A decoded info record of the FID family, as the low-level module returns it. */
export interface RawFileId {
  type: 'fid' | 'dfid' | 'dfidName' | 'oldDfidName' | 'newDfidName' | 'unknown';
  infoType: number;
  fsid: [number, number];
  handleType: number;
  /** The kernel's struct file_handle, usable with open_by_handle_at. */
  handle: Buffer;
  name: string | null;
}

export interface RawEvent {
  eventLen: number;
  vers: number;
  metadataLen: number;
  mask: number;
  fd: number;
  pid: number;
  fids: RawFileId[];
  pidfd?: number;
  /** FS_ERROR: the filesystem's errno and how many errors it merged into this event. */
  error?: { errno: number; count: number };
  range?: { offset: number; count: number };
  mountId?: bigint;
  unknownRecords: number[];
}

/** Kinds of records the reader queues (native/reader.h Event::Kind). */
export const enum RecordKind {
  Normal = 0,
  Overflow = 1,
  Error = 2,
  Warning = 3,
}

/** A path or name as the reader hands it over: a string, or a Buffer with the option encoding: 'buffer'. */
export type NativePath = string | Buffer;

/** One event as the native reader hands it over, paths already resolved. */
export interface NativeRecord {
  kind: RecordKind;
  mask: number;
  pid: number;
  /** Non-zero for a permission event still to be answered (its fd stays in native code). */
  id: number;
  group: number;
  permissionGroup: boolean;
  isDirectory: boolean;
  path: NativePath | null;
  name: NativePath | null;
  oldPath: NativePath | null;
  newPath: NativePath | null;
  errno?: number;
  message?: string;
  error?: { errno: number; count: number };
  range?: { offset: number; count: number };
  mountId?: bigint;
  /** Read by the reader thread when the option processInfo is set. */
  process?: { comm: string | null; exe: string | null };
}

/** What the reader hands over per wake-up; lib/batch.ts reads it. */
export type NativeBatch = [
  numbers: Float64Array,
  strings: Array<NativePath | null | undefined>,
  extras: Record<number, Pick<NativeRecord, 'errno' | 'message' | 'error' | 'range' | 'mountId'>> | undefined,
];

export interface NativeReaderOptions {
  permissionTimeout: number;
  defaultResponse: number;
  allowSelf: boolean;
  queueLimit: number;
  bufferSize: number;
  processInfo: boolean;
  /** Paths and names as Buffers of the kernel's bytes, not UTF-8 strings. */
  buffers: boolean;
}

/** A scope rule (native/scope.h): 0 subtree, 1 a directory and its children, 2 one path. */
export interface NativeScopeRule {
  kind: 0 | 1 | 2;
  path: string;
  mask: number;
}

export interface NativeReader {
  addGroup(flags: number, eventFlags: number): number;
  mark(group: number, flags: number, mask: number, dirfd: number, path: string | undefined): void;
  /** Waits as timeoutMs says; returns early (undefined, no JavaScript runs after) if this environment is stopping. */
  take(max: number, timeoutMs: number): NativeBatch;
  /** With a rule number, the FAN_INFO audit-rule record follows the response (FAN_INFO set in `response`). */
  respond(id: number, response: number, rule?: number, subjectTrust?: number, objectTrust?: number): boolean;
  /**
   * A new fd (F_DUPFD_CLOEXEC) of a pending permission event's file, which
   * the caller owns and the reader never closes; -1 once the event is
   * answered, expired or closed. Throws (EMFILE, ...) if the dup fails.
   */
  dupFd(id: number): number;
  /**
   * The decision cache (lib/cache.ts): fanotify_mark(flags, mask) through a
   * pending event's fd in its group. "ino:sdev" (hex, as fdinfo writes them)
   * once done, -1 if the event is not pending, else the errno.
   */
  ignoreMark(id: number, flags: number, mask: number): string | number;
  /** A group's fd, for /proc/self/fdinfo; -1 if none. */
  groupFd(group: number): number;
  setBufferSize(bytes: number): void;
  startAsync(deliver: (batch: NativeBatch) => void): void;
  setDelivery(on: boolean): void;
  setRef(on: boolean): void;
  setScope(group: number, rules: NativeScopeRule[]): void;
  /**
   * Directory sets of unprivileged recursive watches (native/walker.h): a
   * native walk marks every directory of a tree and keeps them compactly.
   * See native/walker_wrap.cc for the operations and their arguments.
   */
  dirs(op: 'new'): number;
  dirs(op: 'walk', id: number, group: number, flags: number, mask: number, path: string, follow: boolean, collect: boolean): Array<string | Buffer | boolean> | undefined;
  dirs(op: 'walkAsync', id: number, group: number, flags: number, mask: number, path: string, done: (err: Error | null) => void): void;
  dirs(op: 'size', id: number): number;
  dirs(op: 'has', id: number, path: string): boolean;
  dirs(op: 'release', id: number, group: number, flags: number, bits: number, sets: number[], paths: Array<string | number>): void;
  dirs(op: 'cancel', id: number): void;
  dirs(op: 'drop', id: number): void;
  close(): void;
  /** Shuts down like close(); `done` is called once every group and mount fd is closed (at once, or from a closing thread). */
  closeAsync(done: () => void): void;
}

export interface NativeAddon {
  Reader: new (options: NativeReaderOptions) => NativeReader;
  fanotifyInit(flags: number, eventFlags: number): number;
  fanotifyMark(fd: number, flags: number, mask: number, dirfd: number, path?: string | Buffer): void;
  readEvents(fd: number, bufferSize: number): RawEvent[];
  decode(bytes: Uint8Array): { events: RawEvent[]; bytesUsed: number };
  writeResponse(fd: number, eventFd: number, response: number, rule?: number, subjTrust?: number, objTrust?: number): void;
  close(fd: number): void;
  compiledConstants: Record<string, number>;
  /** The batch layout native/convert.h writes; lib/batch.ts checks its copy against it. */
  batchLayout: Record<string, number>;
}

function load(): NativeAddon {
  if (process.platform !== 'linux') {
    throw new FanotifyError('NotSupported', `fanotify is a Linux API; this is ${process.platform}`);
  }
  // FANOTIFY_ADDON=/path/to/fanotify.node loads that binary instead: how
  // `npm run test:sanitize` runs everything on its ASan/UBSan build.
  const override = process.env.FANOTIFY_ADDON;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    if (override) return require(path.resolve(override)) as NativeAddon;
    // node-gyp-build finds build/Release (a local build) or prebuilds/ (the
    // shipped binary for this platform and ABI), in that order.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('node-gyp-build')(path.join(__dirname, '..')) as NativeAddon;
  } catch (cause) {
    throw new FanotifyError(
      'NotSupported',
      `the fanotify native addon could not be loaded (${(cause as Error).message}); ` +
        'reinstall the package, or build it with a compiler present: npm rebuild fanotify',
      { cause },
    );
  }
}

let addon: NativeAddon | undefined;

/** The addon, loaded on first use so that importing never throws by itself. */
export function native(): NativeAddon {
  return (addon ??= load());
}
