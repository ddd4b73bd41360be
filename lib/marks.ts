/**
 * Kernel marks and their bookkeeping: the groups an instance creates on
 * first use, which group each part of a mask goes to, placing marks (with
 * the fd-mode fallback) and removing them, and which watches share each
 * kernel mark, so removing one watch takes away only what no other needs.
 */
import * as fs from 'node:fs';
import { capability } from './capabilities';
import { EventClass, FAN } from './constants';
import { FanotifyError, fromNative } from './errors';
import type { NativeReader, NativeScopeRule } from './native';
import type { Settings } from './options';
import type { MarkType } from './types';
import { isUnder, mountIdOf } from './tree';

/** The kernel groups an instance may need; each is created on first use. */
export type GroupKind = 'fd' | 'fid' | 'permission' | 'precontent' | 'mnt' | 'exact';

/**
 * One kernel mark a watch placed: in which group (after any fallback to the
 * fd-mode group), on which target, with the bits this watch asked for there.
 * Watches whose marks land on the same kernel object in the same group share
 * one kernel mark (the kernel ORs their masks): `object` says which.
 */
export interface Placement {
  kind: GroupKind;
  target: string;
  object: string;
  /** Events plus ONDIR/EVENT_ON_CHILD. */
  bits: number;
  record: MarkRecord;
  /** The one placement of an unprivileged recursive watch: a mark on every directory of its set. */
  dirs?: DirectoryTargets;
}

/**
 * The directories of an unprivileged recursive watch. The kernel holds
 * their marks and native code (native/walker.h) the set: per directory its
 * parent, name, inode and file handle, with no JavaScript object or string
 * per directory. Iterating yields the root the walks start from; size and
 * has() ask the native set (has: the directory at that path is in it).
 */
export class DirectoryTargets implements Iterable<string> {
  /** The native set's id, made at the first walk; -1 before and after. */
  id = -1;
  readonly root: string;
  private readonly reader: NativeReader;

  constructor(reader: NativeReader, root: string) {
    this.reader = reader;
    this.root = root;
  }

  get size(): number {
    return this.id < 0 ? 0 : this.reader.dirs('size', this.id);
  }

  has(path: string): boolean {
    return this.id >= 0 && this.reader.dirs('has', this.id, path);
  }

  *[Symbol.iterator](): Iterator<string> {
    yield this.root;
  }
}

/**
 * One addWatch: the marks it placed. A plain watch marks one target; a
 * recursive one marks each filesystem in the tree (privileged) or each
 * directory (unprivileged), all with the same flags and masks.
 */
export interface MarkRecord {
  path: string;
  /** `path` with symbolic links resolved, as event paths are. */
  real: string;
  type: MarkType;
  /** Mark flags other than ADD/REMOVE, to repeat on removal. */
  flags: number;
  /** Per routed group: the mask asked for (events plus ONDIR/EVENT_ON_CHILD), placed on every target. */
  masks: Map<GroupKind, number>;
  /** Paths marked; an unprivileged recursive watch's directories are held natively. */
  targets: Set<string> | DirectoryTargets;
  /** The marks in place, by placementKey(group, target). */
  placements: Map<string, Placement>;
  /** Directory recursion: prune `targets` of directories gone once it grows past this. */
  pruneAt: number;
  /** How the mark relates to event paths, for the reader's scope filter. */
  scope: 'subtree' | 'children' | 'exact' | 'everything' | 'ignore';
  /** Recursive: 'filesystem' marks (privileged) or one inode mark per 'directory'. */
  recursive?: 'filesystem' | 'directory';
  /** The events the user asked for (recursion adds CREATE/MOVED_TO internally). */
  requested: number;
}

/** Bits to remove everything a watch placed. */
export const ALL_BITS = 0xffffffff;

/** Directory recursion checks its targets for directories gone once it has this many. */
export const PRUNE_MIN = 1024;

export class Marks {
  /** Every watch, by markKey. */
  readonly records = new Map<string, MarkRecord>();
  /** The groups created so far. */
  readonly groups = new Map<GroupKind, number>();
  /** Every placement, by objectKey: who shares each kernel mark. */
  readonly objects = new Map<string, Set<Placement>>();
  private readonly reader: NativeReader;
  private readonly settings: Settings;
  private readonly exactFlags: number | undefined;

  constructor(reader: NativeReader, settings: Settings, exactFlags?: number) {
    this.reader = reader;
    this.settings = settings;
    this.exactFlags = exactFlags;
    if (exactFlags !== undefined) this.groups.set('exact', this.createGroup(exactFlags, 'exact'));
  }

  /** An empty directory set for an unprivileged recursive watch of `root`. */
  directoryTargets(root: string): DirectoryTargets {
    return new DirectoryTargets(this.reader, root);
  }

  /** Forgets every watch (the groups close with the reader). */
  clear(): void {
    // Stops tree walks under way (native/walker.h: DirSet::cancel).
    for (const record of this.records.values()) if (record.targets instanceof DirectoryTargets && record.targets.id >= 0) this.reader.dirs('drop', record.targets.id);
    this.records.clear();
    this.objects.clear();
  }

  /**
   * Places `masks` (routed group -> mask) with the record's flags on each
   * target and tracks where each landed; `added` collects the bits each
   * placement gained, for undoing.
   */
  placeOn(record: MarkRecord, masks: Iterable<[GroupKind, number]>, targets: Iterable<string>, added?: Array<[Placement, number]>): void {
    if (targets instanceof DirectoryTargets) {
      this.placeTree(record, targets, masks, added);
      return;
    }
    for (const [routed, mask] of masks) {
      for (const target of targets) {
        const kind = this.placeMark(routed, FAN.FAN_MARK_ADD | record.flags, mask, target);
        const key = placementKey(kind, target);
        let placement = record.placements.get(key);
        if (!placement) {
          placement = { kind, target, object: objectKey(kind, record.flags, target), bits: 0, record };
          record.placements.set(key, placement);
          let sharing = this.objects.get(placement.object);
          if (!sharing) this.objects.set(placement.object, (sharing = new Set()));
          sharing.add(placement);
        }
        added?.push([placement, mask & ~placement.bits]);
        placement.bits |= mask;
      }
    }
  }

  /**
   * An unprivileged recursive watch: a native walk of the tree marks every
   * directory (all of them, with this mask) and adds the new ones to the set.
   * One placement per group stands for all those marks; it is registered
   * before the walk, so that undoing `added` takes away what a walk that
   * failed half-way placed.
   */
  private placeTree(record: MarkRecord, dirs: DirectoryTargets, masks: Iterable<[GroupKind, number]>, added?: Array<[Placement, number]>): void {
    for (const [kind, mask] of masks) {
      const group = this.treeStep(record, dirs, kind, mask, added);
      try {
        this.reader.dirs('walk', dirs.id, group, FAN.FAN_MARK_ADD | record.flags, mask, dirs.root, false, false);
      } catch (err) {
        throw this.markError(err, FAN.FAN_MARK_ADD | record.flags, mask, dirs.root, kind);
      }
    }
  }

  /**
   * placeOn for an unprivileged recursive watch of AsyncFanotify: the same
   * walk on a walker thread (native/walker_wrap.cc), the JavaScript thread
   * free meanwhile; resolves when every directory is marked.
   */
  async placeTreeAsync(record: MarkRecord, dirs: DirectoryTargets, masks: Iterable<[GroupKind, number]>, added: Array<[Placement, number]>): Promise<void> {
    for (const [kind, mask] of masks) {
      const group = this.treeStep(record, dirs, kind, mask, added);
      await new Promise<void>((resolve, reject) => {
        this.reader.dirs('walkAsync', dirs.id, group, FAN.FAN_MARK_ADD | record.flags, mask, dirs.root, (err) => {
          if (err) reject(this.markError(err, FAN.FAN_MARK_ADD | record.flags, mask, dirs.root, kind));
          else resolve();
        });
      });
    }
  }

  /** Before a tree walk: the group, the set and the placement that stands for the walk's marks. */
  private treeStep(record: MarkRecord, dirs: DirectoryTargets, kind: GroupKind, mask: number, added?: Array<[Placement, number]>): number {
    const group = this.ensureGroup(kind);
    if (dirs.id < 0) dirs.id = this.reader.dirs('new');
    const placement = this.treePlacement(record, dirs, kind);
    added?.push([placement, mask & ~placement.bits]);
    placement.bits |= mask;
    return group;
  }

  /**
   * A directory created or moved into an unprivileged recursive watch: the
   * native walk marks it and what lies below it that the set does not hold
   * yet, each before reading it, and returns what those directories already
   * held ([dir, name, isDirectory] flattened) when `collect`. A directory
   * the set holds (moved inside the tree) takes its new place in the set.
   */
  followDirectory(record: MarkRecord, path: string, collect: boolean): Array<string | Buffer | boolean> {
    const dirs = record.targets;
    if (!(dirs instanceof DirectoryTargets) || dirs.id < 0) return [];
    let found: Array<string | Buffer | boolean> = [];
    for (const [kind, mask] of record.masks) {
      const group = this.groups.get(kind);
      if (group === undefined) continue;
      try {
        found = this.reader.dirs('walk', dirs.id, group, FAN.FAN_MARK_ADD | record.flags, mask, path, true, collect && found.length === 0) ?? found;
      } catch (err) {
        throw this.markError(err, FAN.FAN_MARK_ADD | record.flags, mask, path, kind);
      }
    }
    return found;
  }

  private treePlacement(record: MarkRecord, dirs: DirectoryTargets, kind: GroupKind): Placement {
    const key = placementKey(kind, '\0dirs');
    let placement = record.placements.get(key);
    if (!placement) {
      placement = { kind, target: dirs.root, object: `${kind}\0dirs\0${dirs.id}`, bits: 0, record, dirs };
      record.placements.set(key, placement);
      this.objects.set(placement.object, new Set([placement]));
    }
    return placement;
  }

  /**
   * Takes `bits` away from a tree placement: from every directory's mark,
   * the bits no other watch needs on it (the other trees' directories and
   * plain marks in the same group). The set goes with its last bit.
   */
  private releaseTree(placement: Placement, dirs: DirectoryTargets, bits: number): void {
    const { record } = placement;
    const before = placement.bits;
    let left = before & ~bits;
    if ((left & ~EventClass.FLAGS) === 0) left = 0;
    placement.bits = left;
    const sets: number[] = [];
    const paths: Array<string | number> = [];
    for (const other of this.records.values()) {
      for (const p of other.placements.values()) {
        if (p === placement || p.kind !== placement.kind) continue;
        if (p.dirs) sets.push(p.dirs.id, p.bits);
        else paths.push(p.target, p.bits);
      }
    }
    const group = this.groups.get(placement.kind);
    // The last bits: a walk still under way (AsyncFanotify) stops first, so
    // that everything it marked is in the set released here.
    if (left === 0 && dirs.id >= 0) this.reader.dirs('cancel', dirs.id);
    if (group !== undefined && dirs.id >= 0 && before & ~left) {
      this.reader.dirs('release', dirs.id, group, record.flags, before & ~left, sets, paths);
    }
    if (left !== 0) return;
    record.placements.delete(placementKey(placement.kind, '\0dirs'));
    this.objects.delete(placement.object);
    if (dirs.id >= 0) this.reader.dirs('drop', dirs.id);
    dirs.id = -1;
  }

  /**
   * Takes `bits` away from a placement (all of it once no event is left),
   * and from the kernel mark only the bits that no other watch on the same
   * object and group still needs.
   */
  release(placement: Placement, bits: number, quiet = false): void {
    if (placement.dirs) {
      this.releaseTree(placement, placement.dirs, bits);
      return;
    }
    const { record } = placement;
    const before = placement.bits;
    let left = before & ~bits;
    if ((left & ~EventClass.FLAGS) === 0) left = 0;
    placement.bits = left;
    const sharing = this.objects.get(placement.object);
    if (left === 0) {
      record.placements.delete(placementKey(placement.kind, placement.target));
      sharing?.delete(placement);
      if (sharing?.size === 0) this.objects.delete(placement.object);
    }
    let needed = 0;
    for (const other of sharing ?? []) needed |= other.bits;
    // Unprivileged recursive watches whose directories include this one.
    for (const other of this.records.values()) {
      if (!(before & ~needed)) break;
      for (const p of other.placements.values()) if (p.dirs && p.kind === placement.kind && p.dirs.has(placement.target)) needed |= p.bits;
    }
    const drop = before & ~needed;
    if (drop === 0) return;
    try {
      this.callMark(this.groups.get(placement.kind)!, FAN.FAN_MARK_REMOVE | record.flags, drop, placement.target, placement.kind);
    } catch (err) {
      // The kernel drops a mark by itself when its inode goes away: then
      // there is nothing left to remove, which is what the caller wanted.
      if (!quiet && !(err instanceof FanotifyError && err.code === 'ENOENT')) throw err;
    }
  }

  /**
   * Directory recursion adds a target per new directory; deleted (or moved
   * away) directories leave the bookkeeping here, amortised: the kernel has
   * dropped or keeps a mark that no path of the tree reaches.
   */
  pruneTargets(record: MarkRecord): void {
    // A DirectoryTargets set prunes itself (natively, as it grows).
    if (!(record.targets instanceof Set) || record.targets.size < record.pruneAt) return;
    const byTarget = new Map<string, Placement[]>();
    for (const p of record.placements.values()) byTarget.set(p.target, [...(byTarget.get(p.target) ?? []), p]);
    for (const target of record.targets) {
      const placements = byTarget.get(target) ?? [];
      const gone = placements.length === 0 || placements.some((p) => objectKey(p.kind, record.flags, target) !== p.object);
      if (!gone) continue;
      record.targets.delete(target);
      for (const p of placements) {
        record.placements.delete(placementKey(p.kind, p.target));
        const sharing = this.objects.get(p.object);
        sharing?.delete(p);
        if (sharing?.size === 0) this.objects.delete(p.object);
      }
    }
    record.pruneAt = Math.max(PRUNE_MIN, record.targets.size * 2);
  }

  /**
   * The reader's scope rules for one group: which paths its marks cover.
   * Only a group with a privileged recursive watch needs them (its
   * filesystem marks report far more than asked); a plain mount or
   * filesystem mark in the same group widens it to everything (no rules).
   */
  scopeRules(kind: GroupKind): NativeScopeRule[] {
    const rules: NativeScopeRule[] = [];
    let filtered = false;
    let everything = false;
    for (const record of this.records.values()) {
      let mask = 0;
      for (const placement of record.placements.values()) if (placement.kind === kind) mask |= placement.bits;
      if (mask === 0 || record.scope === 'ignore') continue;
      if (record.recursive === 'filesystem') filtered = true;
      if (record.scope === 'everything') everything = true;
      else if (record.scope === 'subtree') rules.push({ kind: 0, path: record.real, mask });
      else rules.push({ kind: record.scope === 'children' ? 1 : 2, path: record.real, mask });
    }
    return filtered && !everything ? rules : [];
  }

  /** Which group each part of a mask goes to. */
  route(mask: number): Map<GroupKind, number> {
    const parts = new Map<GroupKind, number>();
    if (this.exactFlags !== undefined) {
      parts.set('exact', mask);
      return parts;
    }
    const scope = mask & EventClass.FLAGS;
    const add = (kind: GroupKind, bits: number, withScope = true) => {
      if (bits) parts.set(kind, (parts.get(kind) ?? 0) | bits | (withScope ? scope : 0));
    };
    add('permission', mask & EventClass.PERMISSION);
    // PRE_ACCESS goes to a group of its own whose event fds are open for
    // writing (to fill the file); the permission group's stay read-only
    // (an O_RDWR event fd could not be opened for an executable being run,
    // and would make every file look open for writing to the decision cache).
    // The kernel has no pre-content events on directories and refuses ONDIR
    // with them (EINVAL): a directory watch marks its children only.
    if (mask & EventClass.PRE_CONTENT) parts.set('precontent', (mask & EventClass.PRE_CONTENT) | (scope & ~FAN.FAN_ONDIR));
    add('mnt', mask & EventClass.MOUNT, false);
    // All notification events share one FID-reporting group, so they come out
    // in the order they happened (two groups are read independently). It is
    // also the cheap mode: no file is opened per event. Only a filesystem
    // that cannot report file ids sends them to an fd-mode group instead.
    add('fid', mask & (EventClass.NEEDS_FID | EventClass.FILE_CONTENT));
    return parts;
  }

  /**
   * Adds a mark in the routed group. A filesystem that cannot report file ids
   * (ENODEV, EOPNOTSUPP, EXDEV) can still report open/access/modify/close in
   * fd mode when privileged: that part goes to an fd-mode group instead.
   * Returns the group kind that took the mark.
   */
  placeMark(kind: GroupKind, flags: number, mask: number, path: string): GroupKind {
    try {
      this.callMark(this.ensureGroup(kind), flags, mask, path, kind);
      return kind;
    } catch (err) {
      const noFid = err instanceof FanotifyError && ['ENODEV', 'EOPNOTSUPP', 'ENOTSUP', 'EXDEV'].includes(err.code ?? '');
      const fdCapable = (mask & ~EventClass.FLAGS & ~EventClass.FILE_CONTENT) === 0;
      if (kind !== 'fid' || !noFid || !fdCapable || !capability('privileged')) throw err;
      this.callMark(this.ensureGroup('fd'), flags, mask, path, 'fd');
      return 'fd';
    }
  }

  /** The group at this index was made with FAN_CLASS_PRE_CONTENT (FAN_DENY_ERRNO needs one). */
  isPreContent(group: number): boolean {
    for (const [kind, index] of this.groups) {
      if (index === group) return (this.groupFlags(kind) & FAN.FAN_ALL_CLASS_BITS) === FAN.FAN_CLASS_PRE_CONTENT;
    }
    return false;
  }

  private groupFlags(kind: GroupKind): number {
    let base = FAN.FAN_CLOEXEC | FAN.FAN_NONBLOCK | (this.settings.flags & ~FAN.FAN_NONBLOCK);
    // With a pidfd the reader can tell that the process it read comm/exe of
    // is the one that caused the event, not a later one with the same pid.
    if (this.settings.processInfo && capability('pidfd') && !(base & FAN.FAN_REPORT_TID)) base |= FAN.FAN_REPORT_PIDFD;
    switch (kind) {
      case 'fd': return base | FAN.FAN_CLASS_NOTIF;
      case 'fid': return base | FAN.FAN_CLASS_NOTIF | FAN.FAN_REPORT_FID | FAN.FAN_REPORT_DFID_NAME;
      // The pre-content class takes every permission event, PRE_ACCESS, and
      // (Linux 6.14) answers with an errno; older kernels get the content class.
      case 'permission': return base | (capability('preContent') ? FAN.FAN_CLASS_PRE_CONTENT : FAN.FAN_CLASS_CONTENT);
      case 'precontent': return base | FAN.FAN_CLASS_PRE_CONTENT;
      case 'mnt': return (base & ~FAN.FAN_REPORT_PIDFD) | FAN.FAN_REPORT_MNT;
      case 'exact': return this.exactFlags ?? 0;
    }
  }

  private ensureGroup(kind: GroupKind): number {
    let group = this.groups.get(kind);
    if (group === undefined) {
      if (kind === 'precontent' && !capability('preContent')) {
        throw new FanotifyError(
          'NotSupported',
          capability('privileged')
            ? `PRE_ACCESS (pre-content events) needs Linux 6.14 or later; this kernel (${capability('kernel')}) does not know it`
            : 'PRE_ACCESS (pre-content events) needs CAP_SYS_ADMIN (run as root) and Linux 6.14 or later',
        );
      }
      group = this.createGroup(this.groupFlags(kind), kind);
      this.groups.set(kind, group);
    }
    return group;
  }

  private createGroup(flags: number, kind: GroupKind): number {
    try {
      // A pre-content group's event fds are open for reading and writing.
      const eventFlags = kind === 'precontent' ? (this.settings.eventFlags & ~O_ACCMODE) | fs.constants.O_RDWR : this.settings.eventFlags;
      return this.reader.addGroup(flags, eventFlags);
    } catch (err) {
      const what = { fd: 'a notification group', fid: 'a file-id (FID) notification group', permission: 'a permission group', precontent: 'a pre-content group', mnt: 'a mount-event group', exact: 'a group with these flags' }[kind];
      throw fromNative(err, { action: `creating ${what}`, initFlags: flags });
    }
  }

  private callMark(group: number, flags: number, mask: number, path: string, kind: GroupKind): void {
    try {
      this.reader.mark(group, flags, mask, FAN.AT_FDCWD, path);
    } catch (err) {
      throw this.markError(err, flags, mask, path, kind);
    }
  }

  /** A failed mark (or walk that marks) as a FanotifyError; a walk's error names the directory it failed at. */
  private markError(err: unknown, flags: number, mask: number, path: string, kind: GroupKind): FanotifyError {
    const at = (err as { path?: unknown } | null)?.path;
    return fromNative(err, {
      action: flags & FAN.FAN_MARK_ADD ? 'adding a mark on' : 'removing a mark from',
      path: typeof at === 'string' && at ? at : path,
      mask,
      markFlags: flags,
      initFlags: this.groupFlags(kind),
    });
  }
}

const O_ACCMODE = 3;

export function markKey(path: string, type: MarkType | 'recursive', ignore: boolean): string {
  return `${type}\0${ignore ? 'ignore' : 'watch'}\0${path}`;
}

function placementKey(kind: GroupKind, target: string): string {
  return `${kind}\0${target}`;
}

/**
 * The kernel mark a placement lands on: one per group, object (inode,
 * mount, filesystem or mount namespace) and mask kind (events or ignore).
 * Watches on the same object share it, whatever path they named.
 */
function objectKey(kind: GroupKind, flags: number, target: string): string {
  const type = flags & FAN.FAN_MARK_MNTNS;
  const ignore = flags & (FAN.FAN_MARK_IGNORE | FAN.FAN_MARK_IGNORED_MASK) ? 'ignore' : 'mask';
  let object: string;
  try {
    const st = flags & FAN.FAN_MARK_DONT_FOLLOW ? fs.lstatSync(target, { bigint: true }) : fs.statSync(target, { bigint: true });
    if (type === FAN.FAN_MARK_FILESYSTEM) object = `fs:${st.dev}`;
    else if (type === FAN.FAN_MARK_MOUNT) object = `mount:${mountIdOf(target) ?? `${st.dev}:${target}`}`;
    else object = `${type}:${st.dev}:${st.ino}`;
  } catch {
    object = `path:${type}:${target}`;
  }
  return `${kind}\0${ignore}\0${object}`;
}

/** The watch's marks can report an event about `path` (directory recursion aside). */
export function coversPath(record: MarkRecord, path: string): boolean {
  switch (record.scope) {
    case 'everything':
      return true;
    case 'subtree':
      return isUnder(path, record.real);
    case 'children':
      return path === record.real || path.slice(0, path.lastIndexOf('/')) === record.real || (record.real === '/' && path.lastIndexOf('/') === 0);
    default:
      return path === record.real;
  }
}
