/**
 * The event types of `fanotify/watcher`, and the batch that coalesces changes
 * into one event per path with @parcel/watcher's rules (its EventList), plus
 * rename pairs and pids for the opt-in extensions.
 */

/** @parcel/watcher's event types. */
export type EventType = 'create' | 'update' | 'delete';

/** An event as @parcel/watcher gives it. */
export interface Event {
  /** The absolute path of the file or directory. */
  path: string;
  /** What happened to it: made, changed (contents or attributes), or removed. */
  type: EventType;
  /** With `reportPid: true`: the process that made the path's latest change in the batch (0 when unknown). */
  pid?: number;
}

/** With `reportRenames: true`: a path renamed inside the watched tree. */
export interface RenameEvent {
  type: 'rename';
  /** Where it was at the start of the batch. */
  oldPath: string;
  /** Where it is now. */
  path: string;
  /** With `reportPid: true`: the process that renamed it. */
  pid?: number;
}

/** What a subscription with `reportRenames: true` delivers. */
export type ExtendedEvent = Event | RenameEvent;

interface Entry {
  created: boolean;
  deleted: boolean;
  /** Set for a path renamed from `from` in this batch (reportRenames). */
  from?: string;
  pid: number;
}

/**
 * One batch of changes, one entry per path. Created then updated is a
 * create; created then deleted is nothing; deleted then created is an
 * update (as @parcel/watcher decides, its issue #72).
 */
export class EventList {
  private entries = new Map<string, Entry>();

  get size(): number {
    return this.entries.size;
  }

  create(path: string, pid = 0): void {
    const entry = this.entry(path, pid);
    if (entry.deleted) entry.deleted = false;
    else entry.created = true;
  }

  update(path: string, pid = 0): void {
    this.entry(path, pid);
  }

  remove(path: string, pid = 0): void {
    const entry = this.entries.get(path);
    if (entry?.from !== undefined) {
      // Renamed in this batch, then deleted: what the batch shows is the original path deleted.
      this.entries.delete(path);
      const origin = this.entries.get(entry.from);
      if (origin === undefined) this.entries.set(entry.from, { created: false, deleted: true, pid });
      else if (origin.created) origin.created = false; // deleted, then made again: an update
      return;
    }
    this.entry(path, pid).deleted = true;
  }

  /** A rename inside the tree, kept as a pair (reportRenames). */
  rename(oldPath: string, path: string, pid = 0): void {
    const old = this.entries.get(oldPath);
    if (old?.created) {
      // Made in this batch: it is simply made under its new name.
      this.remove(oldPath, pid);
      this.create(path, pid);
      return;
    }
    const origin = old?.from ?? oldPath;
    this.entries.delete(oldPath);
    if (origin === path) this.entries.set(path, { created: false, deleted: false, pid });
    else this.entries.set(path, { created: false, deleted: false, from: origin, pid });
  }

  /** The batch's events in path order (as @parcel/watcher's std::map gives them), and a fresh batch. */
  take(reportPid: boolean): ExtendedEvent[] {
    const events: ExtendedEvent[] = [];
    for (const [path, entry] of this.entries) {
      if (entry.created && entry.deleted) continue;
      const event: ExtendedEvent =
        entry.from !== undefined ? { type: 'rename', oldPath: entry.from, path } : { path, type: entry.created ? 'create' : entry.deleted ? 'delete' : 'update' };
      if (reportPid) event.pid = entry.pid;
      events.push(event);
    }
    this.entries = new Map();
    // Paths in the order of their UTF-8 bytes (std::string's order), each encoded once.
    const keyed = events.map((event) => ({ key: Buffer.from(event.path), event }));
    keyed.sort((a, b) => Buffer.compare(a.key, b.key));
    return keyed.map(({ event }) => event);
  }

  private entry(path: string, pid: number): Entry {
    let entry = this.entries.get(path);
    if (entry === undefined) {
      entry = { created: false, deleted: false, pid };
      this.entries.set(path, entry);
    } else if (pid !== 0) {
      entry.pid = pid;
    }
    return entry;
  }
}
