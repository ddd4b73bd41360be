/**
 * A private tmpfs per test file: every mark in the tests goes on one of these,
 * never on the machine's own filesystems (a stalled permission handler on /
 * could freeze the machine).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Scratch {
  /** The tmpfs mount point. */
  dir: string;
  /** A path inside it. */
  file(...parts: string[]): string;
  /**
   * A new directory t1, t2, ... inside it (with `nested` directories below
   * it made too), so tests never see each other's events; returns tN.
   */
  freshDir(...nested: string[]): string;
  /** Unmounts and removes the mount point. */
  cleanup(): void;
}

export function mountTmpfs(options = 'size=64m,mode=1777'): Scratch {
  if (!tmpfsReportsFids()) return mountExt4(Math.max(16, Number(/size=(\d+)m/.exec(options)?.[1] ?? 64)));
  return mountPlainTmpfs(options);
}

let fidOnTmpfs: boolean | undefined;

/**
 * Whether a FID-reporting group can mark a tmpfs here (not before Linux 5.13's
 * tmpfs fsid, e.g. on 5.10). Where it cannot, mountTmpfs() gives an ext4 image
 * on a loop device instead (said once), so the same tests run on such kernels.
 */
export function tmpfsReportsFids(): boolean {
  if (fidOnTmpfs === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { lowLevel } = require('../../lib') as typeof import('../../lib');
    const probe = mountPlainTmpfs('size=1m');
    try {
      const group = lowLevel.fanotifyInit(lowLevel.FAN_REPORT_FID | lowLevel.FAN_CLOEXEC, 0);
      try {
        lowLevel.fanotifyMark(group, lowLevel.FAN_MARK_ADD, lowLevel.FAN_CREATE, lowLevel.AT_FDCWD, probe.dir);
        fidOnTmpfs = true;
      } catch (err) {
        fidOnTmpfs = !['ENODEV', 'EOPNOTSUPP', 'EXDEV'].includes((err as { code?: string }).code ?? '');
      } finally {
        lowLevel.close(group);
      }
    } catch {
      fidOnTmpfs = true; // no FID groups at all here: ext4 would not help
    } finally {
      probe.cleanup();
    }
    // eslint-disable-next-line no-console
    if (!fidOnTmpfs) console.warn(`scratch: tmpfs cannot report file ids on ${os.release()}; tests use ext4 images on loop devices instead`);
  }
  return fidOnTmpfs;
}

/** A Scratch over a mounted directory; `unmount` runs once, at cleanup(), before `dir` is removed. */
function scratchAt(dir: string, unmount: () => void, removeAlso: string[] = []): Scratch {
  let mounted = true;
  let dirs = 0;
  return {
    dir,
    file: (...parts) => path.join(dir, ...parts),
    freshDir(...nested) {
      const fresh = path.join(dir, `t${++dirs}`);
      fs.mkdirSync(path.join(fresh, ...nested), { recursive: true });
      return fresh;
    },
    cleanup() {
      if (mounted) {
        mounted = false;
        try {
          unmount();
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
          for (const p of removeAlso) fs.rmSync(p, { force: true });
        }
      }
    },
  };
}

function mountPlainTmpfs(options: string): Scratch {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-test-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'fanotify-test', dir]);
  return scratchAt(dir, () => execFileSync('umount', ['-l', dir]));
}

/**
 * An ext4 image on a loop device, for what tmpfs cannot do on every kernel
 * (file ids before Linux 5.13's tmpfs fsid, PRE_ACCESS). Same interface as
 * mountTmpfs; the image lives in os.tmpdir() and goes with cleanup().
 */
export function mountExt4(sizeMb = 32): Scratch {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-test-ext4-'));
  const image = `${dir}.img`;
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeMb * 1024 * 1024);
  try {
    execFileSync('mkfs.ext4', ['-q', '-F', image], { stdio: 'pipe' });
    execFileSync('mount', ['-t', 'ext4', '-o', 'loop', image, dir], { stdio: 'pipe' });
  } catch (err) {
    fs.rmSync(image, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  fs.chmodSync(dir, 0o1777);
  return scratchAt(dir, () => execFileSync('umount', [dir]), [image]);
}
