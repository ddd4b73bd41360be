/**
 * `fanotify/watcher`: a drop-in for @parcel/watcher 2 (`subscribe`,
 * `unsubscribe`, `writeSnapshot`, `getEventsSince`, same options, events and
 * batching) on fanotify. This file owns the public functions and the
 * registry of live subscriptions; lib/watcher/ holds the parts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { invalidArgument } from './errors';
import { native } from './native';
import { normalizeOptions, type Options, type SubscribeOptions } from './watcher/options';
import { changes, checkRoot, formatSnapshot, readSnapshot, readTree, systemError } from './watcher/snapshot';
import { Subscription, type SubscribeCallback } from './watcher/subscription';
import type { Event, ExtendedEvent } from './watcher/events';

export type { Event, EventType, RenameEvent, ExtendedEvent } from './watcher/events';
export type { Options, SubscribeOptions, BackendType } from './watcher/options';
export type { SubscribeCallback } from './watcher/subscription';

// Load the addon now, as the root module does: no fanotify here fails at require().
native();

/** What `subscribe` resolves to. */
export interface AsyncSubscription {
  /** Same as `unsubscribe(dir, fn, opts)` with the arguments given to `subscribe`. */
  unsubscribe(): Promise<void>;
}

/** Live subscriptions of this thread by directory and options; each holds the callbacks subscribed to it. */
const subscriptions = new Map<string, Subscription>();

function keyOf(root: string, opts: ReturnType<typeof normalizeOptions>): string {
  return JSON.stringify([root, opts.ignore.key(), opts.reportRenames, opts.reportPid]);
}

function rootOf(fn: string, dir: unknown): string {
  if (typeof dir !== 'string' || dir === '') throw invalidArgument(`${fn}: dir must be a non-empty path string, got ${typeof dir === 'string' ? '""' : typeof dir}`);
  return path.resolve(dir);
}

function callbackOf(fn: string, callback: unknown): SubscribeCallback {
  if (typeof callback !== 'function') throw invalidArgument(`${fn}: the callback must be a function, got ${typeof callback}`);
  return callback as SubscribeCallback;
}

/**
 * Watches `dir` and everything below it: `fn(err, events)` gets each batch
 * of changes, one event per path (`create`, `update` or `delete`, absolute
 * paths, sorted). Resolves once the watch is in place. Subscribing the
 * same function to the same directory and options again changes nothing.
 * As root one filesystem mark covers the tree; as a normal user, a mark per
 * directory (Linux 5.13).
 */
export function subscribe(dir: string, fn: SubscribeCallback<ExtendedEvent>, opts: SubscribeOptions & { reportRenames: true }): Promise<AsyncSubscription>;
export function subscribe(dir: string, fn: SubscribeCallback<Event>, opts?: SubscribeOptions): Promise<AsyncSubscription>;
export async function subscribe(dir: string, fn: SubscribeCallback<never>, opts?: SubscribeOptions): Promise<AsyncSubscription> {
  const root = rootOf('subscribe', dir);
  const callback = callbackOf('subscribe', fn);
  const options = normalizeOptions('subscribe', dir, root, opts, true);
  const key = keyOf(root, options);
  let sub = subscriptions.get(key);
  if (sub === undefined) {
    await checkRoot(root);
    sub = subscriptions.get(key); // another subscribe may have started it meanwhile
    if (sub === undefined) {
      sub = new Subscription(root, options);
      subscriptions.set(key, sub);
      const started = sub;
      started.ready.catch(() => {
        if (subscriptions.get(key) === started) subscriptions.delete(key);
      });
    }
  }
  if (!sub.callbacks.includes(callback)) sub.callbacks.push(callback);
  try {
    await sub.ready;
  } catch (err) {
    const i = sub.callbacks.indexOf(callback);
    if (i >= 0) sub.callbacks.splice(i, 1);
    throw err;
  }
  return { unsubscribe: () => unsubscribe(dir, fn, opts) };
}

/**
 * Stops calling `fn` for changes under `dir` (with the options it was
 * subscribed with); the watch ends with its last callback. Resolves also
 * when there was no such subscription.
 */
export async function unsubscribe(dir: string, fn: SubscribeCallback<never>, opts?: SubscribeOptions): Promise<void> {
  const root = rootOf('unsubscribe', dir);
  const callback = callbackOf('unsubscribe', fn);
  const key = keyOf(root, normalizeOptions('unsubscribe', dir, root, opts, true));
  const sub = subscriptions.get(key);
  if (sub === undefined) return;
  const i = sub.callbacks.indexOf(callback);
  if (i < 0) return;
  sub.callbacks.splice(i, 1);
  if (sub.callbacks.length === 0) {
    subscriptions.delete(key);
    await sub.close();
  }
}

/**
 * Saves the state of the tree under `dir` (each path's modification time
 * and kind) to `snapshotPath`, in @parcel/watcher's snapshot format, and
 * resolves to the snapshot's absolute path (@parcel/watcher resolves null).
 */
export async function writeSnapshot(dir: string, snapshotPath: string, opts?: Options): Promise<string> {
  const root = rootOf('writeSnapshot', dir);
  const file = snapshotOf('writeSnapshot', snapshotPath);
  const { ignore } = normalizeOptions('writeSnapshot', dir, root, opts, false);
  const tree = await readTree(root, ignore);
  try {
    await fs.promises.writeFile(file, formatSnapshot(tree));
  } catch (err) {
    throw systemError(err, file);
  }
  return file;
}

/**
 * The changes under `dir` since `snapshotPath` was written (by this module
 * or by @parcel/watcher): paths that are new (`create`), gone (`delete`),
 * and files whose modification time changed (`update`), sorted by path.
 */
export async function getEventsSince(dir: string, snapshotPath: string, opts?: Options): Promise<Event[]> {
  const root = rootOf('getEventsSince', dir);
  const file = snapshotOf('getEventsSince', snapshotPath);
  const { ignore } = normalizeOptions('getEventsSince', dir, root, opts, false);
  const before = await readSnapshot(file);
  return changes(before, await readTree(root, ignore));
}

function snapshotOf(fn: string, snapshotPath: unknown): string {
  if (typeof snapshotPath !== 'string' || snapshotPath === '') throw invalidArgument(`${fn}: snapshotPath must be a non-empty path string, got ${typeof snapshotPath}`);
  return path.resolve(snapshotPath);
}
