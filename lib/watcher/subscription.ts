/**
 * A live watch of one tree for `subscribe`: an AsyncFanotify with a recursive
 * watch, the mapping of its events to @parcel/watcher's create/update/delete
 * (or rename pairs), and @parcel/watcher's throttle that delivers them in
 * batches to every callback subscribed with the same directory and options.
 */
import * as fs from 'node:fs';
import { AsyncFanotify } from '../async';
import { capabilities } from '../capabilities';
import { MaskFlags } from '../constants';
import { FanotifyError } from '../errors';
import type { FanotifyEvent } from '../event';
import { EventList, type ExtendedEvent } from './events';
import type { Normalized } from './options';

/** The callback of `subscribe`, as in @parcel/watcher. */
export type SubscribeCallback<E = ExtendedEvent> = (err: Error | null, events: E[]) => unknown;

/** @parcel/watcher's throttle (Debounce.hh): a batch waits for 50 ms of quiet, and no change waits more than 500 ms. */
const MIN_WAIT_MS = 50;
const MAX_WAIT_MS = 500;

/** How many directories moved out of the tree are remembered (see movedOut). */
const MOVED_OUT_LIMIT = 10000;

const BASE_MASK = MaskFlags.CREATE | MaskFlags.DELETE | MaskFlags.MODIFY | MaskFlags.ATTRIB | MaskFlags.DELETE_SELF | MaskFlags.MOVE_SELF | MaskFlags.ONDIR;

export class Subscription {
  readonly callbacks: SubscribeCallback[] = [];
  /** Resolves once the watch is in place. */
  readonly ready: Promise<void>;
  private readonly fan = new AsyncFanotify();
  private readonly batch = new EventList();
  /** The root as the kernel names it (symlinked ancestors resolved), to map event paths back to `root`. */
  private realRoot: string;
  private lastNotify = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private tick: NodeJS.Immediate | undefined;
  /** Directories moved into the tree in this read: what unprivileged recursion scans in them is not reported (as with @parcel/watcher). */
  private readonly movedIn = new Set<string>();
  /**
   * Directories moved out of the tree (or renamed inside it): events still
   * named below their old path are stale (a normal user's per-directory
   * marks stay on a directory moved out, and the library names its events by
   * the old path).
   */
  private readonly movedOut = new Set<string>();
  private rootGone = false;
  private closed = false;

  constructor(
    readonly root: string,
    private readonly options: Normalized,
  ) {
    this.realRoot = root;
    this.fan.on('event', (event) => this.handle(event));
    this.fan.on('error', (err) => this.fail(err));
    this.ready = this.start();
  }

  private async start(): Promise<void> {
    try {
      this.realRoot = await fs.promises.realpath(this.root);
      let mask = BASE_MASK;
      if (this.options.reportRenames) {
        if (!capabilities().rename) {
          throw new FanotifyError('NotSupported', `subscribe: reportRenames needs FAN_RENAME (Linux 5.17); this kernel (${capabilities().kernel}) lacks it: leave reportRenames off to get delete + create`);
        }
        mask |= MaskFlags.RENAME;
      } else {
        mask |= MaskFlags.MOVED_FROM | MaskFlags.MOVED_TO;
      }
      await this.fan.addWatch(this.root, mask, { recursive: true });
    } catch (err) {
      await this.fan.close();
      throw err;
    }
  }

  /** Stops watching (idempotent); pending changes are dropped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (this.tick) clearImmediate(this.tick);
    await this.fan.close();
  }

  /** The event's path in the caller's spelling of the root, or null when it lies outside the tree. */
  private local(p: string | null): string | null {
    if (p === null) return null;
    if (this.realRoot !== this.root) {
      if (p === this.realRoot) p = this.root;
      else if (p.startsWith(`${this.realRoot}/`)) p = this.root + p.slice(this.realRoot.length);
    }
    return p === this.root || p.startsWith(`${this.root}/`) ? p : null;
  }

  /** Whether changes to `p` are reported: not ignored, not below a directory moved out. */
  private wanted(p: string): boolean {
    if (this.options.ignore.isIgnored(p)) return false;
    if (this.movedOut.size > 0) {
      // p's ancestors inside the tree, nearest first: O(depth), however many directories moved out.
      for (let i = p.lastIndexOf('/'); i > this.root.length; i = p.lastIndexOf('/', i - 1)) {
        if (this.movedOut.has(p.slice(0, i))) return false;
      }
    }
    return true;
  }

  private handle(event: FanotifyEvent): void {
    if (this.closed || this.rootGone) return;
    this.schedule();
    if (event.isOverflow()) {
      this.fail(new FanotifyError('LimitReached', `the kernel's event queue overflowed: changes under ${this.root} were lost (rescan the tree)`));
      return;
    }
    const mask = event.mask;
    const pid = event.pid;
    const p = this.local(event.path);
    if (mask & MaskFlags.RENAME) {
      const from = this.local(event.oldPath);
      const to = this.local(event.newPath);
      if (from === this.root) return this.endOfRoot(pid);
      const fromIn = from !== null && this.wanted(from);
      const toIn = to !== null && this.wanted(to);
      if (fromIn && toIn) {
        this.batch.rename(from, to, pid);
        if (event.isDirectory) {
          this.movedOut.add(from);
          this.added(to, true, true, -1);
        }
      }
      else if (fromIn) this.removed(from, event.isDirectory, pid);
      else if (toIn) this.added(to, event.isDirectory, true, pid);
      return;
    }
    if (p === null) return;
    if (p === this.root && mask & (MaskFlags.DELETE_SELF | MaskFlags.MOVE_SELF | MaskFlags.DELETE | MaskFlags.MOVED_FROM)) return this.endOfRoot(pid);
    // A file's own DELETE_SELF / MOVE_SELF repeat its parent's DELETE / MOVED_FROM.
    if (!this.wanted(p)) return;
    const appeared = mask & (MaskFlags.CREATE | MaskFlags.MOVED_TO);
    const vanished = mask & (MaskFlags.DELETE | MaskFlags.MOVED_FROM);
    // The kernel merges a path's queued events, and with them their order: a
    // record that says both is read as the path is now (there: it went,
    // then came; not there: it came, then went).
    if (appeared && vanished && exists(p)) {
      this.removed(p, event.isDirectory && (mask & MaskFlags.MOVED_FROM) !== 0, pid);
      this.added(p, event.isDirectory, (mask & MaskFlags.MOVED_TO) !== 0, pid);
      if (mask & (MaskFlags.MODIFY | MaskFlags.ATTRIB)) this.batch.update(p, pid);
      return;
    }
    if (appeared) {
      // pid 0: a CREATE found by scanning a directory just marked (unprivileged
      // recursion); below a directory moved in, @parcel/watcher reports nothing.
      const scanned = pid === 0 && !(mask & MaskFlags.MOVED_TO) && [...this.movedIn].some((dir) => p.startsWith(`${dir}/`));
      if (!scanned) this.added(p, event.isDirectory, (mask & MaskFlags.MOVED_TO) !== 0, pid);
    }
    if (mask & (MaskFlags.MODIFY | MaskFlags.ATTRIB)) this.batch.update(p, pid);
    if (vanished) this.removed(p, event.isDirectory && (mask & MaskFlags.MOVED_FROM) !== 0, pid);
  }

  /** `p` appeared (pid -1: already in the batch as a rename's target). */
  private added(p: string, isDirectory: boolean, moved: boolean, pid: number): void {
    if (pid >= 0) this.batch.create(p, pid);
    if (this.movedOut.delete(p) && isDirectory) {
      for (const dir of this.movedOut) if (dir.startsWith(`${p}/`)) this.movedOut.delete(dir);
    }
    if (moved && isDirectory) this.movedIn.add(p);
  }

  private removed(p: string, movedDirectory: boolean, pid: number): void {
    this.batch.remove(p, pid);
    if (movedDirectory) {
      this.movedOut.add(p);
      // Bounded: the oldest go first (their stale events, if any, are long past).
      if (this.movedOut.size > MOVED_OUT_LIMIT) this.movedOut.delete(this.movedOut.values().next().value as string);
    }
  }

  /**
   * The root was deleted or moved away: @parcel/watcher reports its deletion
   * and nothing after (the subscription stays until unsubscribed).
   */
  private endOfRoot(pid: number): void {
    this.batch.remove(this.root, pid);
    this.rootGone = true;
    void this.fan.close();
  }

  /** After the events of one read: clear what held for that read only, and throttle. */
  private schedule(): void {
    this.tick ??= setImmediate(() => {
      this.tick = undefined;
      this.movedIn.clear();
      if (this.batch.size === 0 || this.closed) return;
      if (performance.now() - this.lastNotify > MAX_WAIT_MS) {
        this.notify();
      } else {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.notify(), MIN_WAIT_MS);
      }
    });
  }

  private notify(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastNotify = performance.now();
    if (this.closed) return;
    const events = this.batch.take(this.options.reportPid);
    if (events.length === 0) return;
    for (const callback of [...this.callbacks]) this.call(callback, null, events.map((e) => ({ ...e })));
  }

  private fail(err: Error): void {
    for (const callback of [...this.callbacks]) this.call(callback, err, []);
  }

  /** A callback that throws is an uncaught exception, as with @parcel/watcher. */
  private call(callback: SubscribeCallback, err: Error | null, events: ExtendedEvent[]): void {
    try {
      callback(err, events);
    } catch (thrown) {
      process.nextTick(() => {
        throw thrown;
      });
    }
  }
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
