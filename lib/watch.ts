/**
 * What one addWatch/removeWatch call asks for: its arguments checked before
 * any system call, and the kernel mark flags and mask they make.
 */
import * as fs from 'node:fs';
import { capability } from './capabilities';
import { EventClass, FAN, KNOWN_MASK_BITS } from './constants';
import { FanotifyError, fromNative, invalidArgument } from './errors';
import type { MarkType, WatchOptions } from './types';
import { checkBits, checkBoolean, checkOneOf, checkOptions, checkPath } from './validate';

const MARK_TYPE_FLAGS: Record<MarkType, number> = {
  inode: FAN.FAN_MARK_INODE,
  mount: FAN.FAN_MARK_MOUNT,
  filesystem: FAN.FAN_MARK_FILESYSTEM,
  mntns: FAN.FAN_MARK_MNTNS,
};

const WATCH_KEYS = ['mark', 'recursive', 'onChildren', 'onDir', 'dontFollow', 'onlyDir', 'ignore', 'ignoreSurviveModify', 'evictable'] as const;

export interface CheckedWatch {
  path: string;
  mask: number;
  type: MarkType;
  options: WatchOptions;
}

/** Validates addWatch arguments without touching the kernel. */
export function checkWatch(rawPath: unknown, rawMask: unknown, rawOptions: unknown): CheckedWatch {
  const path = checkPath(rawPath);
  if (typeof rawMask === 'number' && Number.isInteger(rawMask) && rawMask & FAN.FAN_Q_OVERFLOW) {
    throw invalidArgument('mask must not contain Q_OVERFLOW: overflows are always reported');
  }
  const mask = checkBits(rawMask, 'mask', KNOWN_MASK_BITS, false);
  if ((mask & ~EventClass.FLAGS) === 0) throw invalidArgument('mask has only ONDIR/EVENT_ON_CHILD and no event');
  const options = checkWatchOptions(rawOptions);
  const type = options.mark ?? 'inode';
  if ((mask & EventClass.MOUNT) !== 0 !== (type === 'mntns')) {
    throw invalidArgument("MNT_ATTACH/MNT_DETACH go with mark: 'mntns' only, and a mntns mark takes only those");
  }
  if (mask & FAN.FAN_FS_ERROR && type !== 'filesystem') {
    throw invalidArgument("FS_ERROR goes with mark: 'filesystem' only (the kernel reports errors per filesystem)");
  }
  if (options.ignoreSurviveModify && !options.ignore) throw invalidArgument('ignoreSurviveModify needs ignore: true');
  if (options.recursive && (type !== 'inode' || options.ignore)) {
    throw invalidArgument('recursive: true chooses its own marks: leave out mark and ignore');
  }
  return { path, mask, type, options };
}

export function checkWatchOptions(raw: unknown): WatchOptions {
  const o = checkOptions<WatchOptions>(raw, 'watch options', WATCH_KEYS);
  if (o.mark !== undefined) checkOneOf(o.mark, 'options.mark', ['inode', 'mount', 'filesystem', 'mntns']);
  for (const key of WATCH_KEYS) {
    if (key !== 'mark' && o[key] !== undefined) checkBoolean(o[key], `options.${key}`);
  }
  return o;
}

/**
 * Events this kernel cannot deliver at all: a typed NotSupported that names
 * what is needed, before any group is made (the kernel would only say
 * EINVAL). Probed, not read from the version; unprivileged callers get the
 * kernel's own PermissionDenied instead, since the probes need privileges.
 */
export function checkKernelSupports(mask: number): void {
  if (!capability('privileged')) return;
  if (mask & FAN.FAN_FS_ERROR && !capability('fsError')) {
    throw new FanotifyError('NotSupported', 'FS_ERROR (filesystem error events) needs Linux 5.16; this kernel does not know it');
  }
  if (mask & EventClass.MOUNT && !capability('mntns')) {
    throw new FanotifyError('NotSupported', "MNT_ATTACH/MNT_DETACH (mount events on a mark: 'mntns') need Linux 6.15; this kernel does not know them");
  }
}

/** Whether the path is a directory; a missing path is an InvalidPath error. */
export function statIsDirectory(path: string, options: WatchOptions): boolean {
  try {
    return (options.dontFollow ? fs.lstatSync(path) : fs.statSync(path)).isDirectory();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw fromNative({ message: e.message, code: e.code, errno: e.errno, syscall: 'stat' }, { path, action: 'cannot watch' });
  }
}

/** The fanotify_mark flags (other than ADD/REMOVE) a watch's options make, in the newest form this kernel accepts. */
export function markFlags(type: MarkType, options: WatchOptions): number {
  let flags = MARK_TYPE_FLAGS[type];
  if (options.dontFollow) flags |= FAN.FAN_MARK_DONT_FOLLOW;
  if (options.onlyDir) flags |= FAN.FAN_MARK_ONLYDIR;
  if (options.evictable) {
    if (!capability('evictable')) {
      throw new FanotifyError('NotSupported', 'evictable: true needs FAN_MARK_EVICTABLE (Linux 5.19, or a kernel that backports it); this kernel does not know it');
    }
    flags |= FAN.FAN_MARK_EVICTABLE;
  }
  // The newest form this kernel accepts (probed, not read from its version).
  if (options.ignore) flags |= capability('markIgnore') ? FAN.FAN_MARK_IGNORE : FAN.FAN_MARK_IGNORED_MASK;
  if (options.ignore && !capability('markIgnore') && (options.onDir !== undefined || options.onChildren !== undefined)) {
    throw new FanotifyError('NotSupported', 'onDir/onChildren on an ignore mark need FAN_MARK_IGNORE (Linux 6.0, or a kernel that backports it); this kernel has only the legacy ignored mask, which cannot scope them');
  }
  if (options.ignoreSurviveModify) flags |= FAN.FAN_MARK_IGNORED_SURV_MODIFY;
  return flags;
}

/**
 * The watch's mask with ONDIR/EVENT_ON_CHILD: a directory reports its
 * children and itself unless asked not to. The legacy ignored mask has no
 * such bits, so they are left out there.
 */
export function withScopeBits(watch: CheckedWatch, isDirectory: boolean): number {
  const { type, options } = watch;
  let mask = watch.mask;
  const scopeBits = !options.ignore || capability('markIgnore');
  if (scopeBits && type !== 'mntns') {
    if (isDirectory && type === 'inode' && options.onChildren !== false) mask |= FAN.FAN_EVENT_ON_CHILD;
    if ((isDirectory || type !== 'inode') && options.onDir !== false) mask |= FAN.FAN_ONDIR;
  }
  return mask;
}
