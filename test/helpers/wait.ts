import * as fs from 'node:fs';
import type { ChildResult, RunningChild } from './child';
import { withTimeout } from './events';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `done` every 5 ms; rejects after `ms` naming what was awaited. */
export async function waitUntil(done: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function running(child: RunningChild): boolean {
  return child.child.exitCode === null && child.child.signalCode === null;
}

/** The child's result, or a rejection after `ms`. */
export function finished(child: RunningChild, ms = 5000, what = 'the child'): Promise<ChildResult> {
  return withTimeout(child.done, ms, what);
}

/** openat's system call number on this architecture (what /proc/PID/syscall shows first). */
const OPENAT = process.arch === 'arm64' ? 56 : 257;

/** What /proc/PID/FILE says, or '' once the process is gone. */
function proc(pid: number, file: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Spins, keeping this thread busy (no event loop turn, no read), until `pid`
 * waits in the kernel for a fanotify permission answer: its wait channel
 * names fanotify, or, on kernels that show no wait channel (Debian's cloud
 * kernels print 0), it sleeps inside openat for 3 looks in a row (quickly: a
 * reader thread takes an unread event over after 20 ms). The
 * 15 s limit allows for a node child starting in an emulated machine.
 */
export function spinUntilWaitingForAnswer(pid: number, ms = 15000): void {
  const deadline = Date.now() + ms;
  let wchan = '';
  let sleepingInOpen = 0;
  while (Date.now() < deadline) {
    wchan = proc(pid, 'wchan') || 'gone';
    if (/fanotify/.test(wchan)) return;
    const stat = proc(pid, 'stat');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    // A killable wait (fanotify's) shows as D, an interruptible one as S.
    const inOpen = (state === 'S' || state === 'D') && Number(proc(pid, 'syscall').split(' ')[0]) === OPENAT;
    sleepingInOpen = inOpen ? sleepingInOpen + 1 : 0;
    if (sleepingInOpen >= 3) return;
  }
  throw new Error(`pid ${pid} did not start waiting for a fanotify answer within ${ms} ms (wchan: ${wchan})`);
}
