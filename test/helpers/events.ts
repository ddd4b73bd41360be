import type { Fanotify, FanotifyEvent } from '../../lib';

/**
 * Reads from a sync instance until `done(events)` is true or `timeoutMs`
 * passes; every read is itself time-limited, so this never hangs.
 */
export function collectUntil(fan: Fanotify, done: (events: FanotifyEvent[]) => boolean, timeoutMs = 3000): FanotifyEvent[] {
  const events: FanotifyEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!done(events)) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    events.push(...fan.readEvents({ timeout: left }));
  }
  return events;
}

/** Everything that arrives within `ms` (for asserting that something does NOT arrive). */
export function collectFor(fan: Fanotify, ms: number): FanotifyEvent[] {
  return collectUntil(fan, () => false, ms);
}

/** Gives up after `ms` with a rejection that names what was awaited. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}
