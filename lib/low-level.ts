/**
 * `fanotify/low-level`: the kernel's API verbatim. Every FAN_* constant, and
 * one function per system call; no groups chosen for you, no threads, no
 * permission safety nets. Errors are FanotifyError with code/errno/syscall.
 */
import { FAN } from './constants';
import { fileURLToPath } from 'node:url';
import { FanotifyError, fromNative, invalidArgument } from './errors';
import { native, type RawEvent } from './native';
import { checkBufferSize } from './options';
import { checkInteger, checkOptions, checkPath } from './validate';

export type { RawEvent, RawFileId } from './native';
export { FAN_DENY_ERRNO } from './constants';

export const FAN_ACCESS = FAN.FAN_ACCESS;
export const FAN_MODIFY = FAN.FAN_MODIFY;
export const FAN_ATTRIB = FAN.FAN_ATTRIB;
export const FAN_CLOSE_WRITE = FAN.FAN_CLOSE_WRITE;
export const FAN_CLOSE_NOWRITE = FAN.FAN_CLOSE_NOWRITE;
export const FAN_OPEN = FAN.FAN_OPEN;
export const FAN_MOVED_FROM = FAN.FAN_MOVED_FROM;
export const FAN_MOVED_TO = FAN.FAN_MOVED_TO;
export const FAN_CREATE = FAN.FAN_CREATE;
export const FAN_DELETE = FAN.FAN_DELETE;
export const FAN_DELETE_SELF = FAN.FAN_DELETE_SELF;
export const FAN_MOVE_SELF = FAN.FAN_MOVE_SELF;
export const FAN_OPEN_EXEC = FAN.FAN_OPEN_EXEC;
export const FAN_Q_OVERFLOW = FAN.FAN_Q_OVERFLOW;
export const FAN_FS_ERROR = FAN.FAN_FS_ERROR;
export const FAN_OPEN_PERM = FAN.FAN_OPEN_PERM;
export const FAN_ACCESS_PERM = FAN.FAN_ACCESS_PERM;
export const FAN_OPEN_EXEC_PERM = FAN.FAN_OPEN_EXEC_PERM;
export const FAN_PRE_ACCESS = FAN.FAN_PRE_ACCESS;
export const FAN_MNT_ATTACH = FAN.FAN_MNT_ATTACH;
export const FAN_MNT_DETACH = FAN.FAN_MNT_DETACH;
export const FAN_EVENT_ON_CHILD = FAN.FAN_EVENT_ON_CHILD;
export const FAN_RENAME = FAN.FAN_RENAME;
export const FAN_ONDIR = FAN.FAN_ONDIR;
export const FAN_CLOSE = FAN.FAN_CLOSE;
export const FAN_MOVE = FAN.FAN_MOVE;
export const FAN_CLOEXEC = FAN.FAN_CLOEXEC;
export const FAN_NONBLOCK = FAN.FAN_NONBLOCK;
export const FAN_CLASS_NOTIF = FAN.FAN_CLASS_NOTIF;
export const FAN_CLASS_CONTENT = FAN.FAN_CLASS_CONTENT;
export const FAN_CLASS_PRE_CONTENT = FAN.FAN_CLASS_PRE_CONTENT;
export const FAN_UNLIMITED_QUEUE = FAN.FAN_UNLIMITED_QUEUE;
export const FAN_UNLIMITED_MARKS = FAN.FAN_UNLIMITED_MARKS;
export const FAN_ENABLE_AUDIT = FAN.FAN_ENABLE_AUDIT;
export const FAN_REPORT_PIDFD = FAN.FAN_REPORT_PIDFD;
export const FAN_REPORT_TID = FAN.FAN_REPORT_TID;
export const FAN_REPORT_FID = FAN.FAN_REPORT_FID;
export const FAN_REPORT_DIR_FID = FAN.FAN_REPORT_DIR_FID;
export const FAN_REPORT_NAME = FAN.FAN_REPORT_NAME;
export const FAN_REPORT_TARGET_FID = FAN.FAN_REPORT_TARGET_FID;
export const FAN_REPORT_FD_ERROR = FAN.FAN_REPORT_FD_ERROR;
export const FAN_REPORT_MNT = FAN.FAN_REPORT_MNT;
export const FAN_REPORT_DFID_NAME = FAN.FAN_REPORT_DFID_NAME;
export const FAN_REPORT_DFID_NAME_TARGET = FAN.FAN_REPORT_DFID_NAME_TARGET;
export const FAN_MARK_ADD = FAN.FAN_MARK_ADD;
export const FAN_MARK_REMOVE = FAN.FAN_MARK_REMOVE;
export const FAN_MARK_DONT_FOLLOW = FAN.FAN_MARK_DONT_FOLLOW;
export const FAN_MARK_ONLYDIR = FAN.FAN_MARK_ONLYDIR;
export const FAN_MARK_MOUNT = FAN.FAN_MARK_MOUNT;
export const FAN_MARK_IGNORED_MASK = FAN.FAN_MARK_IGNORED_MASK;
export const FAN_MARK_IGNORED_SURV_MODIFY = FAN.FAN_MARK_IGNORED_SURV_MODIFY;
export const FAN_MARK_FLUSH = FAN.FAN_MARK_FLUSH;
export const FAN_MARK_FILESYSTEM = FAN.FAN_MARK_FILESYSTEM;
export const FAN_MARK_EVICTABLE = FAN.FAN_MARK_EVICTABLE;
export const FAN_MARK_IGNORE = FAN.FAN_MARK_IGNORE;
export const FAN_MARK_INODE = FAN.FAN_MARK_INODE;
export const FAN_MARK_MNTNS = FAN.FAN_MARK_MNTNS;
export const FAN_MARK_IGNORE_SURV = FAN.FAN_MARK_IGNORE_SURV;
export const FAN_ALL_CLASS_BITS = FAN.FAN_ALL_CLASS_BITS;
export const FAN_ALL_INIT_FLAGS = FAN.FAN_ALL_INIT_FLAGS;
export const FAN_ALL_MARK_FLAGS = FAN.FAN_ALL_MARK_FLAGS;
export const FAN_ALL_EVENTS = FAN.FAN_ALL_EVENTS;
export const FAN_ALL_PERM_EVENTS = FAN.FAN_ALL_PERM_EVENTS;
export const FAN_ALL_OUTGOING_EVENTS = FAN.FAN_ALL_OUTGOING_EVENTS;
export const FAN_ALLOW = FAN.FAN_ALLOW;
export const FAN_DENY = FAN.FAN_DENY;
export const FAN_AUDIT = FAN.FAN_AUDIT;
export const FAN_INFO = FAN.FAN_INFO;
export const FAN_ERRNO_BITS = FAN.FAN_ERRNO_BITS;
export const FAN_ERRNO_SHIFT = FAN.FAN_ERRNO_SHIFT;
export const FAN_ERRNO_MASK = FAN.FAN_ERRNO_MASK;
export const FAN_RESPONSE_INFO_NONE = FAN.FAN_RESPONSE_INFO_NONE;
export const FAN_RESPONSE_INFO_AUDIT_RULE = FAN.FAN_RESPONSE_INFO_AUDIT_RULE;
export const FAN_NOFD = FAN.FAN_NOFD;
export const FAN_NOPIDFD = FAN.FAN_NOPIDFD;
export const FAN_EPIDFD = FAN.FAN_EPIDFD;
export const FANOTIFY_METADATA_VERSION = FAN.FANOTIFY_METADATA_VERSION;
export const FAN_EVENT_METADATA_LEN = FAN.FAN_EVENT_METADATA_LEN;
export const FAN_EVENT_INFO_TYPE_FID = FAN.FAN_EVENT_INFO_TYPE_FID;
export const FAN_EVENT_INFO_TYPE_DFID_NAME = FAN.FAN_EVENT_INFO_TYPE_DFID_NAME;
export const FAN_EVENT_INFO_TYPE_DFID = FAN.FAN_EVENT_INFO_TYPE_DFID;
export const FAN_EVENT_INFO_TYPE_PIDFD = FAN.FAN_EVENT_INFO_TYPE_PIDFD;
export const FAN_EVENT_INFO_TYPE_ERROR = FAN.FAN_EVENT_INFO_TYPE_ERROR;
export const FAN_EVENT_INFO_TYPE_RANGE = FAN.FAN_EVENT_INFO_TYPE_RANGE;
export const FAN_EVENT_INFO_TYPE_MNT = FAN.FAN_EVENT_INFO_TYPE_MNT;
export const FAN_EVENT_INFO_TYPE_OLD_DFID_NAME = FAN.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME;
export const FAN_EVENT_INFO_TYPE_NEW_DFID_NAME = FAN.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME;
export const AT_FDCWD = FAN.AT_FDCWD;

function fd(value: unknown, what = 'fd'): number {
  return checkInteger(value, what, -100, 0x7fffffff);
}

function u32(value: unknown, what: string): number {
  return checkInteger(value, what, 0, 0xffffffff);
}

/** fanotify_init(2): returns the new group's fd. */
export function fanotifyInit(flags: number, eventFFlags: number): number {
  const f = u32(flags, 'flags');
  const e = u32(eventFFlags, 'eventFFlags');
  try {
    return native().fanotifyInit(f, e);
  } catch (err) {
    throw fromNative(err, { initFlags: f });
  }
}

/**
 * fanotify_mark(2). `path` may be omitted to mark `dirfd` itself; a Buffer
 * is passed as the exact bytes of the path (which need not be UTF-8).
 */
export function fanotifyMark(groupFd: number, flags: number, mask: number, dirfd: number, path?: string | Buffer | URL): void {
  const g = fd(groupFd, 'fd');
  const f = u32(flags, 'flags');
  const m = checkInteger(mask, 'mask', 0, Number.MAX_SAFE_INTEGER);
  const d = fd(dirfd, 'dirfd');
  // Relative paths stay relative: the kernel resolves them against dirfd.
  let p: string | Buffer | undefined;
  if (Buffer.isBuffer(path)) {
    if (path.length === 0) throw new FanotifyError('InvalidPath', 'path must not be empty');
    if (path.includes(0)) throw new FanotifyError('InvalidPath', 'path must not contain NUL bytes');
    p = path;
  } else if (path !== undefined) {
    checkPath(path);
    p = path instanceof URL ? fileURLToPath(path) : path;
  }
  try {
    native().fanotifyMark(g, f, m, d, p);
  } catch (err) {
    throw fromNative(err, { path: p === undefined ? undefined : p.toString(), mask: m, markFlags: f });
  }
}

/**
 * One read(2) of the group, decoded: metadata plus every info record. The
 * returned fds (event fds, pidfds) are the caller's to close. A non-blocking
 * group with nothing queued gives []; a blocking one blocks.
 */
export function readEvents(groupFd: number, bufferSize = 65536): RawEvent[] {
  const g = fd(groupFd);
  const size = checkBufferSize(bufferSize);
  try {
    return native().readEvents(g, size);
  } catch (err) {
    throw fromNative(err);
  }
}

/** Decodes bytes in the kernel's event format (as read(2) returns them), without a kernel. */
export function decode(bytes: Uint8Array): { events: RawEvent[]; bytesUsed: number } {
  if (!(bytes instanceof Uint8Array)) throw invalidArgument('decode() takes a Uint8Array or Buffer');
  try {
    return native().decode(bytes);
  } catch (err) {
    throw fromNative(err);  // out of memory: LimitReached
  }
}

/** The FAN_INFO audit-rule record (struct fanotify_response_info_audit_rule, Linux 6.3). */
export interface AuditRuleRecord {
  rule: number;
  /** 0 not trusted, 1 trusted, 2 unknown (the default). */
  subjTrust?: number;
  objTrust?: number;
}

/**
 * Writes a struct fanotify_response for a permission event; with
 * `auditRule`, the FAN_RESPONSE_INFO_AUDIT_RULE record follows it (set
 * FAN_INFO, and FAN_AUDIT for the kernel to log it, in `response`). With a
 * record, `eventFd` may be FAN_NOFD: the kernel then only checks the record
 * (how to probe for FAN_INFO).
 */
export function writeResponse(groupFd: number, eventFd: number, response: number, auditRule?: AuditRuleRecord): void {
  const g = fd(groupFd);
  const e = checkInteger(eventFd, 'eventFd', auditRule === undefined ? 0 : FAN.FAN_NOFD, 0x7fffffff);
  const r = u32(response, 'response');
  let record: [number, number, number] | [] = [];
  if (auditRule !== undefined) {
    const a = checkOptions<AuditRuleRecord>(auditRule, 'auditRule', ['rule', 'subjTrust', 'objTrust']);
    record = [u32(a.rule, 'auditRule.rule'), u32(a.subjTrust ?? 2, 'auditRule.subjTrust'), u32(a.objTrust ?? 2, 'auditRule.objTrust')];
  }
  try {
    native().writeResponse(g, e, r, ...record);
  } catch (err) {
    throw fromNative(err);
  }
}

/** close(2). */
export function close(fdToClose: number): void {
  const f = checkInteger(fdToClose, 'fd', 0, 0x7fffffff);
  try {
    native().close(f);
  } catch (err) {
    throw fromNative(err);
  }
}
