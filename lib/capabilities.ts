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

type Probes = { [K in keyof Capabilities]: () => Capabilities[K] };

/** How each capability is found out: a kernel version, a capability bit, or a probe group. */
const probes: Probes = {
  kernel: () => os.release(),
  privileged: () => hasSysAdmin(),
  fid: () => initWorks(FAN.FAN_REPORT_FID),
  dfidName: () => initWorks(FAN.FAN_REPORT_DFID_NAME | FAN.FAN_REPORT_FID),
  rename: () => capability('dfidName') && initWorks(FAN.FAN_REPORT_DFID_NAME_TARGET),
  pidfd: () => capability('privileged') && initWorks(FAN.FAN_REPORT_PIDFD),
  filesystemMarks: () => capability('privileged') && at(4, 20),
  permission: () => capability('privileged') && initWorks(FAN.FAN_CLASS_CONTENT),
  preContent: () => capability('privileged') && at(6, 14) && initWorks(FAN.FAN_CLASS_PRE_CONTENT),
  denyErrno: () => capability('preContent'),
  mntns: () => capability('privileged') && initWorks(FAN.FAN_REPORT_MNT),
  markIgnore: () => at(6, 0),
  evictable: () => at(5, 19),
  fdError: () => capability('privileged') && initWorks(FAN.FAN_REPORT_FD_ERROR),
  unprivileged: () => at(5, 13),
};

function at(major: number, minor: number): boolean {
  return kernelAtLeast(capability('kernel'), major, minor);
}

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
