import * as fs from 'node:fs';
import * as os from 'node:os';
import { FAN } from './constants';
import { native } from './native';

/**
 * What this kernel and process can do, probed once (see `capabilities()`):
 * each entry by trying the flag (fanotify_init / fanotify_mark, EINVAL means
 * unknown), never by the kernel's version number. Versions below say where
 * mainline gained a feature; distribution kernels may have it earlier.
 */
export interface Capabilities {
  /** `uname -r`. */
  kernel: string;
  /** CAP_SYS_ADMIN is in the effective set: permission events, fd mode, mount/filesystem marks. */
  privileged: boolean;
  /** FID reporting (Linux 5.1; unprivileged from 5.13). */
  fid: boolean;
  /** Directory fid + entry name reporting (Linux 5.9). */
  dfidName: boolean;
  /** FAN_RENAME with both directories (Linux 5.17). */
  rename: boolean;
  /** FAN_REPORT_PIDFD (Linux 5.15, privileged). */
  pidfd: boolean;
  /** Filesystem marks (Linux 4.20, privileged). */
  filesystemMarks: boolean;
  /** Permission events (privileged). */
  permission: boolean;
  /** FAN_PRE_ACCESS and the pre-content class (Linux 6.14, privileged). */
  preContent: boolean;
  /** FAN_DENY_ERRNO responses (Linux 6.14, from a pre-content group, so privileged). */
  denyErrno: boolean;
  /** Mount-namespace marks and MNT_ATTACH/DETACH events, with their mount ids (Linux 6.15, privileged). */
  mntns: boolean;
  /** FS_ERROR events on filesystem marks (Linux 5.16, privileged). */
  fsError: boolean;
  /** Audit-rule records in answers, `audit: { rule }` (FAN_INFO, Linux 6.3; permission groups, privileged). */
  auditRule: boolean;
  /** FAN_MARK_IGNORE (Linux 6.0, backported to 5.15.154 and 5.10.220); elsewhere ignore marks use FAN_MARK_IGNORED_MASK. */
  markIgnore: boolean;
  /** FAN_MARK_EVICTABLE (Linux 5.19, and where backported); without it `evictable: true` throws NotSupported. */
  evictable: boolean;
  /** FAN_REPORT_FD_ERROR (Linux 6.13). */
  fdError: boolean;
  /** Unprivileged use of inode marks with FID reporting (Linux 5.13, and where backported). */
  unprivileged: boolean;
}

const CAP_SYS_ADMIN = 21n;

function hasSysAdmin(): boolean {
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return hex !== undefined && ((BigInt('0x' + hex) >> CAP_SYS_ADMIN) & 1n) === 1n;
  } catch {
    return process.getuid?.() === 0;
  }
}

/** fanotify_init succeeds with these flags (the group is closed at once). */
function initWorks(flags: number): boolean {
  return withGroup(flags, () => true) ?? false;
}

/** Runs `fn` on a throwaway group; undefined when no such group can be made here. */
function withGroup<T>(flags: number, fn: (group: number) => T): T | undefined {
  const addon = native();
  let group: number;
  try {
    group = addon.fanotifyInit(flags | FAN.FAN_CLOEXEC, 0);
  } catch {
    return undefined;
  }
  try {
    return fn(group);
  } finally {
    addon.close(group);
  }
}

/**
 * The kernel knows these mark flags and mask bits: a fanotify_mark with them
 * on "/" gets anything but EINVAL (the way fapolicyd and fatrace probe). The
 * kernel checks unknown flags before anything else, so EISDIR, ENOENT,
 * ENODEV ... all mean "known". A mark that does get placed goes with the
 * throwaway group.
 */
function markKnown(group: number, flags: number, mask: number): boolean {
  try {
    native().fanotifyMark(group, flags, mask, FAN.AT_FDCWD, '/');
    return true;
  } catch (err) {
    // The addon's errors carry the negative errno (lib/errors.ts names it).
    return (err as { errno?: number }).errno !== -os.constants.errno.EINVAL;
  }
}

/** A group this process may create for probing mark flags: plain, or with FID reporting when unprivileged. */
function probeMark(flags: number, mask: number): boolean {
  const groupFlags = capability('privileged') ? FAN.FAN_CLASS_NOTIF : FAN.FAN_CLASS_NOTIF | FAN.FAN_REPORT_FID;
  return withGroup(groupFlags, (group) => markKnown(group, flags, mask)) ?? false;
}

type Probes = { [K in keyof Capabilities]: () => Capabilities[K] };

/**
 * How each capability is found out: by what this kernel does when asked, never
 * by its version number (distributions backport flags: Debian's 5.10 knows
 * FAN_MARK_IGNORE and FAN_MARK_EVICTABLE).
 */
const probes: Probes = {
  kernel: () => os.release(),
  privileged: () => hasSysAdmin(),
  fid: () => initWorks(FAN.FAN_REPORT_FID),
  dfidName: () => initWorks(FAN.FAN_REPORT_DFID_NAME | FAN.FAN_REPORT_FID),
  rename: () => capability('dfidName') && initWorks(FAN.FAN_REPORT_DFID_NAME_TARGET),
  pidfd: () => capability('privileged') && initWorks(FAN.FAN_REPORT_PIDFD),
  // Removing a filesystem mark that is not there: ENOENT where the mark type is known.
  filesystemMarks: () => capability('privileged') && probeMark(FAN.FAN_MARK_REMOVE | FAN.FAN_MARK_FILESYSTEM, FAN.FAN_OPEN),
  permission: () => capability('privileged') && initWorks(FAN.FAN_CLASS_CONTENT),
  // The pre-content class itself is old; FAN_PRE_ACCESS in a mask is what is new.
  preContent: () =>
    capability('privileged') &&
    (withGroup(FAN.FAN_CLASS_PRE_CONTENT, (group) => markKnown(group, FAN.FAN_MARK_REMOVE, FAN.FAN_PRE_ACCESS)) ?? false),
  // FAN_DENY_ERRNO came with FAN_PRE_ACCESS and is accepted only from pre-content groups.
  denyErrno: () => capability('preContent'),
  mntns: () => capability('privileged') && initWorks(FAN.FAN_REPORT_MNT),
  // A FAN_INFO response for FAN_NOFD: the kernel checks the record and stops
  // there (Linux 6.3); older kernels refuse the bit with EINVAL.
  auditRule: () =>
    capability('permission') &&
    (withGroup(FAN.FAN_CLASS_CONTENT, (group) => {
      try {
        native().writeResponse(group, FAN.FAN_NOFD, FAN.FAN_ALLOW | FAN.FAN_INFO, 0, 2, 2);
        return true;
      } catch {
        return false;
      }
    }) ?? false),
  // Removing an FS_ERROR filesystem mark that is not there: ENOENT where the event is known.
  fsError: () =>
    capability('privileged') &&
    (withGroup(FAN.FAN_CLASS_NOTIF | FAN.FAN_REPORT_FID, (group) => markKnown(group, FAN.FAN_MARK_REMOVE | FAN.FAN_MARK_FILESYSTEM, FAN.FAN_FS_ERROR)) ?? false),
  // A kernel that knows FAN_MARK_IGNORE refuses it on a directory without
  // IGNORED_SURV_MODIFY with EISDIR (no mark is placed); others say EINVAL.
  markIgnore: () => probeMark(FAN.FAN_MARK_ADD | FAN.FAN_MARK_IGNORE, FAN.FAN_OPEN),
  evictable: () => probeMark(FAN.FAN_MARK_ADD | FAN.FAN_MARK_EVICTABLE, FAN.FAN_OPEN),
  fdError: () => capability('privileged') && initWorks(FAN.FAN_REPORT_FD_ERROR),
  // Without CAP_SYS_ADMIN: the real thing. With it (a privileged process
  // cannot try as someone else): the per-user limits under
  // /proc/sys/fs/fanotify, which came with unprivileged fanotify (5.13).
  unprivileged: () => (capability('privileged') ? fs.existsSync('/proc/sys/fs/fanotify/max_user_marks') : capability('fid')),
};

const known: Partial<Capabilities> = {};

/**
 * One capability, probed on first use. The library asks only for what a
 * call needs, so the first addWatch does not pay for every probe.
 */
export function capability<K extends keyof Capabilities>(name: K): Capabilities[K] {
  if (!(name in known)) known[name] = probes[name]();
  return known[name] as Capabilities[K];
}

let cached: Capabilities | undefined;

/** Everything this kernel and process can do, probed once. */
export function capabilities(): Capabilities {
  if (!cached) {
    const all = {} as Record<keyof Capabilities, unknown>;
    for (const name of Object.keys(probes) as Array<keyof Capabilities>) all[name] = capability(name);
    cached = Object.freeze(all as unknown as Capabilities);
  }
  return cached;
}
