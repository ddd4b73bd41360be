import type { Fanotify, FanotifyEvent } from '../../lib';
import { READ_FILE, startNode, type RunningChild } from './child';

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

/** An event as [types, path], for failure messages. */
export function brief(ev: FanotifyEvent): [string, string | null] {
  return [ev.types().join('|'), ev.path];
}

/**
 * Reads until an event matches (throwing, with what was seen, if none does
 * within `timeoutMs`); returns everything read, plus what is already available.
 */
export function waitForMatch(fan: Fanotify, match: (ev: FanotifyEvent) => boolean, what: string, timeoutMs = 3000): FanotifyEvent[] {
  const events = collectUntil(fan, (evs) => evs.some(match), timeoutMs);
  if (!events.some(match)) throw new Error(`no ${what} event within ${timeoutMs} ms; saw: ${JSON.stringify(events.map(brief))}`);
  return events.concat(fan.readEvents({ timeout: 0 }));
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

/** A pending permission event (OPEN_PERM on `fan`) from a new child reading `file`. */
export function pendingRead(fan: Fanotify, file: string): { ev: FanotifyEvent; child: RunningChild } {
  const child = startNode(READ_FILE, [file]);
  const events = collectUntil(fan, (evs) => evs.some((e) => e.pid === child.pid), 5000);
  const ev = events.find((e) => e.pid === child.pid);
  if (!ev) throw new Error('no permission event from the child');
  return { ev, child };
}
