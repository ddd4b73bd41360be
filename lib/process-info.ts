import * as fs from 'node:fs';
import type { ProcessInfo } from './types';

/**
 * comm and exe of a process, read while it still exists. A process that has
 * already exited (or that this user may not inspect) gives nulls.
 */
export function readProcessInfo(pid: number): ProcessInfo {
  let comm: string | null = null;
  let exe: string | null = null;
  try {
    comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trimEnd();
  } catch {
    // gone or hidden
  }
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // gone, a kernel thread, or not ours to read
  }
  return { pid, comm, exe };
}
