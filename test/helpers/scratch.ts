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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-test-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'fanotify-test', dir]);
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
          execFileSync('umount', ['-l', dir]);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
    },
  };
}
