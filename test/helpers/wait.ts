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

/**
 * Spins, keeping this thread busy (no event loop turn, no read), until `pid`
 * waits in the kernel for a fanotify permission answer.
 */
export function spinUntilWaitingForAnswer(pid: number, ms = 5000): void {
  const deadline = Date.now() + ms;
  let wchan = '';
  while (Date.now() < deadline) {
    try {
      wchan = fs.readFileSync(`/proc/${pid}/wchan`, 'utf8');
    } catch {
      wchan = 'gone';
    }
    if (/fanotify/.test(wchan)) return;
  }
  throw new Error(`pid ${pid} did not start waiting for a fanotify answer within ${ms} ms (wchan: ${wchan})`);
}
