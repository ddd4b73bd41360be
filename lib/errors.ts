import * as util from 'node:util';
import { EventClass, FAN } from './constants';
import { capability } from './capabilities';

/** What went wrong, for code to branch on. */
export type FanotifyErrorKind =
  | 'InvalidPath'
  | 'PermissionDenied'
  | 'NotSupported'
  | 'InvalidArgument'
  | 'Closed'
  | 'Timeout'
  | 'Aborted'
  | 'LimitReached'
  | 'Io';

export interface FanotifyErrorDetails {
  /** errno name, e.g. `'ENOENT'`, where a system call failed. */
  code?: string;
  /** Negative errno, as Node's own system errors carry it. */
  errno?: number;
  syscall?: string;
  path?: string;
  cause?: unknown;
}

/**
 * The only error this library throws. Built here in TypeScript (never in the
 * addon) so `instanceof FanotifyError` holds in every realm, jest's included.
 */
export class FanotifyError extends Error {
  readonly kind: FanotifyErrorKind;
  readonly code?: string;
  readonly errno?: number;
  readonly syscall?: string;
  readonly path?: string;

  constructor(kind: FanotifyErrorKind, message: string, details: FanotifyErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'FanotifyError';
    this.kind = kind;
    if (details.code !== undefined) this.code = details.code;
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.syscall !== undefined) this.syscall = details.syscall;
    if (details.path !== undefined) this.path = details.path;
  }

  static isInvalidPath(e: unknown): boolean { return isKind(e, 'InvalidPath'); }
  static isPermissionDenied(e: unknown): boolean { return isKind(e, 'PermissionDenied'); }
  static isNotSupported(e: unknown): boolean { return isKind(e, 'NotSupported'); }
  static isInvalidArgument(e: unknown): boolean { return isKind(e, 'InvalidArgument'); }
  static isClosed(e: unknown): boolean { return isKind(e, 'Closed'); }
  static isTimeout(e: unknown): boolean { return isKind(e, 'Timeout'); }
  static isAborted(e: unknown): boolean { return isKind(e, 'Aborted'); }
  static isLimitReached(e: unknown): boolean { return isKind(e, 'LimitReached'); }
  static isIo(e: unknown): boolean { return isKind(e, 'Io'); }
}

function isKind(e: unknown, kind: FanotifyErrorKind): boolean {
  return e instanceof FanotifyError && e.kind === kind;
}

export function invalidArgument(message: string): FanotifyError {
  return new FanotifyError('InvalidArgument', message);
}

export function closedError(what = 'this instance'): FanotifyError {
  return new FanotifyError('Closed', `${what} is closed`);
}

/**
 * errno's symbolic name, e.g. `'ENOENT'` for 2, from Node's own table (the
 * one its system errors use); undefined for a number no errno has. The only
 * errno-name table of the library: the addon reports numbers.
 */
export function errnoName(errno: number): string | undefined {
  if (!Number.isInteger(errno) || errno <= 0) return undefined;
  const name = util.getSystemErrorName(-errno);
  return name.startsWith('Unknown') ? undefined : name;
}

/** The shape of errors thrown by the addon (see native/errors.h): `code` is filled in here. */
interface NativeSystemError {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
}

/** What the failing call was trying to do, so the message can say what to do. */
export interface ErrorContext {
  path?: string;
  mask?: number;
  initFlags?: number;
  markFlags?: number;
  /** The response bits written, for a refused answer to a permission event. */
  response?: number;
  /** A sentence about the request, prefixed to the explanation. */
  action?: string;
}

const KIND_BY_CODE: Record<string, FanotifyErrorKind> = {
  ENOENT: 'InvalidPath',
  ENOTDIR: 'InvalidPath',
  ELOOP: 'InvalidPath',
  ENAMETOOLONG: 'InvalidPath',
  EPERM: 'PermissionDenied',
  EACCES: 'PermissionDenied',
  ENOSYS: 'NotSupported',
  ENODEV: 'NotSupported',
  EOPNOTSUPP: 'NotSupported',
  ENOTSUP: 'NotSupported',
  EXDEV: 'NotSupported',
  EINVAL: 'InvalidArgument',
  EMFILE: 'LimitReached',
  ENFILE: 'LimitReached',
  ENOSPC: 'LimitReached',
  ENOMEM: 'LimitReached',
  // std::thread in the addon: no thread could be started (RLIMIT_NPROC, pids.max).
  EAGAIN: 'LimitReached',
  EBADF: 'Closed',
};

function advice(code: string | undefined, syscall: string | undefined, ctx: ErrorContext): string {
  switch (code) {
    case 'ENOENT':
      return 'the path does not exist';
    case 'ENOTDIR':
      return 'the path is not a directory (onlyDir was set, or a component is a file)';
    case 'EPERM':
    case 'EACCES':
      if (code === 'EACCES' && (syscall === 'fanotify_mark' || syscall === 'stat'))
        return 'this user may not read the path (watching needs read access to it; root may watch anything)';
      if (syscall === 'fanotify_init')
        return 'this needs CAP_SYS_ADMIN (run as root): permission events, fd-reporting groups and the REPORT_PIDFD/UNLIMITED_* flags are privileged; without it, use notification events on inode marks (Linux >= 5.13)';
      if (syscall === 'fanotify_mark')
        return 'mount and filesystem marks and permission events need CAP_SYS_ADMIN (run as root); unprivileged users may only watch paths they can read with inode marks';
      return 'permission denied';
    case 'EINVAL':
      return explainInvalid(syscall, ctx);
    case 'ENODEV':
    case 'EOPNOTSUPP':
    case 'ENOTSUP':
      if (syscall === 'fanotify_mark' && (ctx.mask ?? 0) & EventClass.PRE_CONTENT)
        return 'pre-content events (PRE_ACCESS) need a filesystem that supports them (ext4, xfs, btrfs; not tmpfs)';
      return 'this filesystem cannot report file ids (FID) to fanotify; watch it with fd-reporting events only (open, access, modify, close, attrib) as root';
    case 'EXDEV':
      return 'this path is on a filesystem or subvolume whose file ids fanotify cannot report; mark the filesystem root or use fd-reporting events';
    case 'ENOSYS':
      return 'this kernel was built without fanotify (CONFIG_FANOTIFY)';
    case 'EMFILE':
      return syscall === 'fanotify_init'
        ? 'too many fanotify groups: raise fs.fanotify.max_user_groups or close instances'
        : 'out of file descriptors: raise the fd limit (ulimit -n) or close instances';
    case 'ENOSPC':
      return 'too many marks: raise fs.fanotify.max_user_marks';
    case 'ENOMEM':
      return syscall === 'malloc' ? 'out of memory' : 'the kernel ran out of memory for marks or events';
    case 'EAGAIN':
      return syscall === 'pthread_create'
        ? "no thread could be started for the reader: this user or process is at its limit of threads (ulimit -u, a container's pids.max, kernel.threads-max)"
        : 'a resource is temporarily unavailable; try again';
    case 'EBADF':
      return 'the fanotify instance is closed';
    default:
      return 'the system call failed';
  }
}

function explainInvalid(syscall: string | undefined, ctx: ErrorContext): string {
  const hints: string[] = [];
  const initFlags = ctx.initFlags ?? 0;
  const mask = ctx.mask ?? 0;
  if (syscall === 'write') {
    const response = ctx.response ?? 0;
    if (response >>> FAN.FAN_ERRNO_SHIFT) hints.push('a deny errno needs a CLASS_PRE_CONTENT group (Linux 6.14; new Fanotify() uses one there) and one of EPERM, EIO, EBUSY, ETXTBSY, EAGAIN, ENOSPC, EDQUOT');
    if (response & FAN.FAN_AUDIT) hints.push('audit needs FanotifyFlags.ENABLE_AUDIT');
    if (response & FAN.FAN_INFO) hints.push('an audit rule record needs Linux 6.3 (FAN_INFO)');
    return `the kernel refused this response${hints.length ? ': ' + hints.join('; ') : ''}`;
  }
  if (syscall === 'fanotify_init') {
    if (initFlags & FAN.FAN_REPORT_MNT) hints.push('REPORT_MNT needs Linux 6.15 and cannot be combined with FID reporting');
    if (initFlags & FAN.FAN_REPORT_FD_ERROR) hints.push('REPORT_FD_ERROR needs Linux 6.13');
    if (initFlags & FAN.FAN_REPORT_TARGET_FID) hints.push('REPORT_TARGET_FID needs Linux 5.17 and REPORT_FID with REPORT_DFID_NAME');
    if (initFlags & FAN.FAN_REPORT_NAME && !(initFlags & FAN.FAN_REPORT_DIR_FID)) hints.push('REPORT_NAME needs REPORT_DIR_FID');
    if (initFlags & (FAN.FAN_REPORT_FID | FAN.FAN_REPORT_DIR_FID) && initFlags & FAN.FAN_ALL_CLASS_BITS)
      hints.push('FID reporting works with CLASS_NOTIF only on this kernel');
    if (initFlags & FAN.FAN_REPORT_PIDFD) hints.push('REPORT_PIDFD needs Linux 5.15 and no REPORT_TID');
  } else {
    if (mask & EventClass.NEEDS_FID && !(initFlags & (FAN.FAN_REPORT_FID | FAN.FAN_REPORT_DIR_FID)))
      hints.push('attrib/create/delete/move/rename/self events need a FID-reporting group (new Fanotify() makes one; with withFlags add REPORT_FID or REPORT_DFID_NAME)');
    if (mask & EventClass.NEEDS_FID && ctx.markFlags !== undefined && (ctx.markFlags & FAN.FAN_MARK_MNTNS) === FAN.FAN_MARK_MOUNT)
      hints.push('attrib/create/delete/move/rename/self events cannot be reported on a mount mark; use mark: "filesystem" or "inode"');
    if (mask & FAN.FAN_RENAME && !capability('rename')) hints.push('RENAME needs Linux 5.17 and REPORT_DFID_NAME');
    if (mask & EventClass.PERMISSION && !(initFlags & FAN.FAN_ALL_CLASS_BITS))
      hints.push('permission events need a CLASS_CONTENT or CLASS_PRE_CONTENT group');
    if (mask & EventClass.PRE_CONTENT) hints.push('PRE_ACCESS needs Linux 6.14, a CLASS_PRE_CONTENT group and a filesystem that supports it');
    if (mask & EventClass.MOUNT) hints.push('MNT_ATTACH/MNT_DETACH need Linux 6.15, REPORT_MNT and mark: "mntns"');
    if (mask & FAN.FAN_FS_ERROR) hints.push('FS_ERROR needs Linux 5.16, REPORT_FID and a filesystem mark');
    if (ctx.markFlags !== undefined && ctx.markFlags & FAN.FAN_MARK_IGNORE)
      hints.push('ignore marks on mounts and filesystems need ignoreSurviveModify');
    if (ctx.markFlags !== undefined && ctx.markFlags & FAN.FAN_MARK_EVICTABLE)
      hints.push('evictable marks need Linux 5.19 and an inode mark');
  }
  const base = syscall === 'fanotify_init' ? 'the kernel rejected these fanotify_init flags' : 'the kernel rejected this mark';
  return hints.length ? `${base}: ${hints.join('; ')}` : `${base} (a flag combination this kernel does not accept)`;
}

/** Turns an error thrown by the addon into a FanotifyError that says what to do. */
export function fromNative(err: unknown, ctx: ErrorContext = {}): FanotifyError {
  if (err instanceof FanotifyError) return err;
  const e = (err ?? {}) as NativeSystemError;
  const code = typeof e.code === 'string' ? e.code : typeof e.errno === 'number' ? errnoName(-e.errno) : undefined;
  if (code === undefined) {
    return new FanotifyError('Io', String(e.message ?? err), { cause: err });
  }
  const kind = KIND_BY_CODE[code] ?? 'Io';
  const path = ctx.path ?? e.path;
  const where = path ? ` '${path}'` : '';
  const action = ctx.action ? `${ctx.action}${where}: ` : `${e.syscall ?? 'system call'}${where}: `;
  const message = `${action}${advice(code, e.syscall, ctx)} (${code})`;
  return new FanotifyError(kind, message, { code, errno: e.errno, syscall: e.syscall, path, cause: err });
}
