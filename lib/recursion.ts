/**
 * Recursive watches: the marks a recursive watch starts with (a filesystem
 * mark per filesystem in the tree when privileged, an inode mark per
 * directory otherwise), and the step that follows the tree as it grows. That
 * step consumes each converted batch of records after the reader: it marks
 * new directories (adding synthetic CREATEs for what they already hold) and
 * filesystems newly mounted inside the tree, and hides the events recursion
 * asked for only to follow.
 */
import { EventClass, FAN } from './constants';
import { coversPath, DirectoryTargets, type Marks, type MarkRecord } from './marks';
import { RecordKind, type NativePath, type NativeRecord } from './native';
import { isUnder, mountsInside } from './tree';

/** What unprivileged recursion adds to each directory's mark to see new directories. */
const RECURSION_BITS = FAN.FAN_CREATE | FAN.FAN_MOVED_TO | FAN.FAN_ONDIR | FAN.FAN_EVENT_ON_CHILD;

export class Recursion {
  private readonly marks: Marks;
  /** Synthetic CREATEs carry Buffers (encoding: 'buffer'). */
  private readonly buffers: boolean;
  /** True while an unprivileged recursive watch must follow new directories (kept by update). */
  private followsDirectories = false;
  /** True while a privileged recursive watch must cover mounts attached inside it later. */
  private followsMounts = false;
  /** The internal mount-namespace mark that reports those attachments (Linux 6.15) is in place. */
  private mountsWatched = false;
  private mountsUnwatchable = false;
  /** The user has a mark: 'mntns' watch of their own (kept by update). */
  private watchesMounts = false;

  constructor(marks: Marks, buffers: boolean) {
    this.marks = marks;
    this.buffers = buffers;
  }

  /**
   * Recursive watches. Privileged: one filesystem mark per filesystem in the
   * tree (mounts inside it included), and the reader's scope filter drops
   * what lies outside. Unprivileged: an inode mark on every directory; new
   * directories are marked as their CREATE/MOVED_TO events arrive (see
   * followNewDirectory). Returns the mask to place on each target.
   */
  plan(record: MarkRecord, mask: number, privileged: boolean): number {
    record.scope = 'subtree';
    if (privileged) {
      record.recursive = 'filesystem';
      record.flags = (record.flags & ~FAN.FAN_MARK_MNTNS) | FAN.FAN_MARK_FILESYSTEM;
      record.targets = new Set([record.real, ...mountsInside(record.real)]);
      this.watchMountAttachments();
      return mask & ~FAN.FAN_EVENT_ON_CHILD;
    }
    record.recursive = 'directory';
    // Walked and marked natively (Marks.placeOn), the set kept there.
    record.targets = this.marks.directoryTargets(record.real);
    return mask | RECURSION_BITS;
  }

  /** After the watches changed: what there is to follow. */
  update(): void {
    const records = [...this.marks.records.values()];
    this.followsDirectories = records.some((record) => record.recursive === 'directory');
    this.followsMounts = records.some((record) => record.recursive === 'filesystem');
    this.watchesMounts = records.some((record) => record.type === 'mntns');
  }

  /**
   * The step over a batch of records, in order: marks what the tree gained
   * and returns the records to deliver, each directory's synthetic CREATEs
   * right after the event that made it. The records themselves are not
   * changed; a record with bits dropped is a copy.
   */
  follow(records: NativeRecord[]): NativeRecord[] {
    if (!this.followsDirectories && !this.mountsWatched) return records;
    const out: NativeRecord[] = [];
    for (const record of records) {
      if (record.kind === RecordKind.Warning || record.kind === RecordKind.Error) {
        out.push(record);
        continue;
      }
      if (this.mountsWatched && record.group === this.marks.groups.get('mnt') && record.mask & FAN.FAN_MNT_ATTACH) {
        if (this.followsMounts) this.followNewMounts();
        // The internal mark's events are not the user's, unless they watch mounts too.
        if (!this.watchesMounts) continue;
      }
      const followed = this.followsDirectories && record.kind === RecordKind.Normal;
      const kept = followed ? this.withoutRecursionBits(record) : record;
      if (kept) out.push(kept);
      if (followed && record.isDirectory && record.path !== null && record.mask & (FAN.FAN_CREATE | FAN.FAN_MOVED_TO)) {
        this.followNewDirectory(pathString(record.path), out);
      }
    }
    return out;
  }

  /**
   * A filesystem mounted inside a recursive tree after the watch began needs
   * its own filesystem mark. Where the kernel reports mount attachments
   * (Linux 6.15, mark: 'mntns'), an internal mark on this mount namespace
   * tells us; older kernels cover the mounts present when the watch began.
   */
  private watchMountAttachments(): void {
    if (this.mountsWatched || this.mountsUnwatchable) return;
    try {
      // No probe first: creating the group is the probe.
      this.marks.placeMark('mnt', FAN.FAN_MARK_ADD | FAN.FAN_MARK_MNTNS, FAN.FAN_MNT_ATTACH, '/proc/self/ns/mnt');
      this.mountsWatched = true;
    } catch {
      // Not allowed or not supported here: mounts present now are covered.
      this.mountsUnwatchable = true;
    }
  }

  /** Marks the filesystems newly mounted inside privileged recursive trees. */
  private followNewMounts(): void {
    for (const record of this.marks.records.values()) {
      if (record.recursive !== 'filesystem') continue;
      if (!(record.targets instanceof Set)) continue;
      for (const mount of mountsInside(record.real)) {
        if (record.targets.has(mount)) continue;
        try {
          this.marks.placeOn(record, record.masks, [mount]);
          record.targets.add(mount);
        } catch {
          // unmounted again, or a filesystem that cannot be marked: skip it
        }
      }
    }
  }

  /**
   * Unprivileged recursion: a directory created or moved into a watched tree
   * gets its marks, and whatever was created in it before they were in place
   * is reported from a scan (so a file made a moment after its directory is
   * not missed; it may be reported twice).
   */
  private followNewDirectory(path: string, out: NativeRecord[]): void {
    for (const record of this.marks.records.values()) {
      if (record.recursive !== 'directory' || !(record.targets instanceof DirectoryTargets) || !isUnder(path, record.real)) continue;
      let found: Array<string | Buffer | boolean>;
      try {
        // Natively: marks each new directory, then reads it (see Marks.followDirectory).
        found = this.marks.followDirectory(record, path, (record.requested & FAN.FAN_CREATE) !== 0);
      } catch (err) {
        // Out of marks (or fds): what lies below is not watched; say so.
        out.push({ kind: RecordKind.Warning, message: `a new directory is not watched: ${(err as Error).message}` } as NativeRecord);
        continue;
      }
      for (let i = 0; i + 2 < found.length; i += 3) out.push(syntheticCreate(found[i] as string, found[i + 1] as Buffer, found[i + 2] as boolean, this.buffers));
    }
  }

  /**
   * Drops the events that unprivileged recursion asked for only to follow
   * new directories: what no watch that covers the event's path asked for.
   */
  private withoutRecursionBits(record: NativeRecord): NativeRecord | null {
    if (record.path === null) return record;
    const path = pathString(record.path);
    let recursive = false;
    let wanted: number = EventClass.FLAGS;
    for (const r of this.marks.records.values()) {
      if (r.scope === 'ignore') continue;
      if (r.recursive === 'directory') {
        if (!isUnder(path, r.real)) continue;
        recursive = true;
      } else if (!coversPath(r, path)) {
        continue;
      }
      wanted |= r.requested;
    }
    if (!recursive) return record;
    const mask = record.mask & wanted;
    if ((mask & ~EventClass.FLAGS) === 0) return null;
    return mask === record.mask ? record : { ...record, mask };
  }
}

/** A CREATE found by scanning a directory that was marked after it was made. */
function syntheticCreate(dir: string, entry: Buffer, isDirectory: boolean, buffers: boolean): NativeRecord {
  const mask = FAN.FAN_CREATE | (isDirectory ? FAN.FAN_ONDIR : 0);
  // The entry's bytes as the kernel's events would give them, in either encoding.
  const name = buffers ? entry : entry.toString('utf8');
  const path = buffers ? Buffer.concat([Buffer.from(`${dir}/`), entry]) : `${dir}/${name as string}`;
  return { kind: RecordKind.Normal, mask, pid: 0, id: 0, group: -1, permissionGroup: false, isDirectory, path, name, oldPath: null, newPath: null };
}

/**
 * A record's path as a string, for following directories by name. With
 * encoding: 'buffer' that decodes the bytes as UTF-8, so a directory whose
 * name is not UTF-8 is not followed (README, Limits).
 */
function pathString(p: NativePath): string {
  return typeof p === 'string' ? p : p.toString('utf8');
}
