import * as fs from 'node:fs';
import * as os from 'node:os';
import { FAN } from './constants';
import { kernelAtLeast } from './kernel';
import { native } from './native';

/** What this kernel and process can do, probed once (see `capabilities()`). */
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
  /** Mount-namespace marks and MNT_ATTACH/DETACH (Linux 6.15, privileged). */
  mntns: boolean;
  /** FAN_MARK_IGNORE (Linux 6.0); older kernels get FAN_MARK_IGNORED_MASK. */
  markIgnore: boolean;
  /** FAN_MARK_EVICTABLE (Linux 5.19). */
  evictable: boolean;
  /** FAN_REPORT_FD_ERROR (Linux 6.13). */
  fdError: boolean;
  /** Unprivileged use of inode marks with FID reporting (Linux 5.13). */
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
  const addon = native();
  try {
    addon.close(addon.fanotifyInit(flags | FAN.FAN_CLOEXEC, 0));
    return true;
  } catch {
    return false;
  }
}

let cached: Capabilities | undefined;

export function capabilities(): Capabilities {
  if (cached) return cached;
  const kernel = os.release();
  const at = (major: number, minor: number) => kernelAtLeast(kernel, major, minor);
  const privileged = hasSysAdmin();
  const fid = initWorks(FAN.FAN_REPORT_FID);
  const dfidName = initWorks(FAN.FAN_REPORT_DFID_NAME | FAN.FAN_REPORT_FID);
  cached = Object.freeze({
    kernel,
    privileged,
    fid,
    dfidName,
    rename: dfidName && initWorks(FAN.FAN_REPORT_DFID_NAME_TARGET),
    pidfd: privileged && initWorks(FAN.FAN_REPORT_PIDFD),
    filesystemMarks: privileged && at(4, 20),
    permission: privileged && initWorks(FAN.FAN_CLASS_CONTENT),
    preContent: privileged && at(6, 14) && initWorks(FAN.FAN_CLASS_PRE_CONTENT),
    denyErrno: privileged && at(6, 14) && initWorks(FAN.FAN_CLASS_PRE_CONTENT),
    mntns: privileged && initWorks(FAN.FAN_REPORT_MNT),
    markIgnore: at(6, 0),
    evictable: at(5, 19),
    fdError: privileged && initWorks(FAN.FAN_REPORT_FD_ERROR),
    unprivileged: at(5, 13),
  });
  return cached;
}
