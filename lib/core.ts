/**
 * The engine both front ends share: it owns the native reader, decides which
 * kernel group each part of a mask goes to, places and removes marks, turns
 * native records into events, and answers permission events. Fanotify and
 * AsyncFanotify only add their way of handing events out.
 */
import * as fs from 'node:fs';
import { capability } from './capabilities';
import { EventClass, FAN, KNOWN_MASK_BITS } from './constants';
import { FanotifyError, closedError, errnoName, fromNative, invalidArgument } from './errors';
import { FanotifyEvent, type AnyEvent, type Responder } from './event';
import { unpackBatch } from './batch';
import { native, RecordKind, type NativeBatch, type NativePath, type NativeReader, type NativeRecord, type NativeScopeRule } from './native';
import type { Settings } from './options';
import type { MarkType, Response, WatchOptions } from './types';
import { directoriesUnder, entriesOf, isUnder, mountIdOf, mountsInside, realPath } from './tree';
import { checkBits, checkBoolean, checkOneOf, checkOptions, checkPath, checkInteger, describe } from './validate';

/** The kernel groups an instance may need; each is created on first use. */
type GroupKind = 'fd' | 'fid' | 'permission' | 'mnt' | 'exact';

const MARK_TYPE_FLAGS: Record<MarkType, number> = {
  inode: FAN.FAN_MARK_INODE,
  mount: FAN.FAN_MARK_MOUNT,
  filesystem: FAN.FAN_MARK_FILESYSTEM,
  mntns: FAN.FAN_MARK_MNTNS,
};

const WATCH_KEYS = ['mark', 'recursive', 'onChildren', 'onDir', 'dontFollow', 'onlyDir', 'ignore', 'ignoreSurviveModify', 'evictable'] as const;

/** What a native record became: an event to hand out, an error to report, or a warning. */
export type Delivery =
  | { type: 'event'; event: AnyEvent }
  | { type: 'error'; error: FanotifyError; event?: AnyEvent }
  | { type: 'warning'; message: string };

/**
 * One kernel mark a watch placed: in which group (after any fallback to the
 * fd-mode group), on which target, with the bits this watch asked for there.
 * Watches whose marks land on the same kernel object in the same group share
 * one kernel mark (the kernel ORs their masks): `object` says which.
 */
interface Placement {
  kind: GroupKind;
  target: string;
  object: string;
  /** Events plus ONDIR/EVENT_ON_CHILD. */
  bits: number;
  record: MarkRecord;
}

/**
 * One addWatch: the marks it placed. A plain watch marks one target; a
 * recursive one marks each filesystem in the tree (privileged) or each
 * directory (unprivileged), all with the same flags and masks.
 */
interface MarkRecord {
  path: string;
  /** `path` with symbolic links resolved, as event paths are. */
  real: string;
  type: MarkType;
  /** Mark flags other than ADD/REMOVE, to repeat on removal. */
  flags: number;
  /** Per routed group: the mask asked for (events plus ONDIR/EVENT_ON_CHILD), placed on every target. */
  masks: Map<GroupKind, number>;
  targets: Set<string>;
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

interface CheckedWatch {
  path: string;
  mask: number;
  type: MarkType;
  options: WatchOptions;
}

export class Core implements Responder {
  readonly settings: Settings;
  private readonly reader: NativeReader;
  private readonly groups = new Map<GroupKind, number>();
  private readonly marks = new Map<string, MarkRecord>();
  /** Every placement, by objectKey: who shares each kernel mark. */
  private readonly objects = new Map<string, Set<Placement>>();
  private readonly exactFlags: number | undefined;
  private isClosed = false;
  /** True while an unprivileged recursive watch must follow new directories (kept by updateScopes). */
  private followsDirectories = false;
  /** True while a privileged recursive watch must cover mounts attached inside it later. */
  private followsMounts = false;
  /** The internal mount-namespace mark that reports those attachments (Linux 6.15) is in place. */
  private mountsWatched = false;
  private mountsUnwatchable = false;
  /** The user has a mark: 'mntns' watch of their own (kept by updateScopes). */
  private watchesMounts = false;

  constructor(settings: Settings, exactFlags?: number) {
    this.settings = settings;
    this.exactFlags = exactFlags;
    try {
      this.reader = new (native().Reader)({
        permissionTimeout: settings.permissionTimeout,
        defaultResponse: settings.defaultResponse === 'deny' ? FAN.FAN_DENY : FAN.FAN_ALLOW,
        allowSelf: settings.allowSelf,
        queueLimit: settings.queueLimit,
        bufferSize: settings.bufferSize,
        processInfo: settings.processInfo,
        buffers: settings.encoding === 'buffer',
      });
    } catch (err) {
      throw fromNative(err, { action: 'starting the reader' });
    }
    if (exactFlags !== undefined) this.groups.set('exact', this.createGroup(exactFlags, 'exact'));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** True while at least one mark is in place. */
  get watching(): boolean {
    return this.marks.size > 0;
  }

  assertOpen(): void {
    if (this.isClosed) throw closedError();
  }

  /** Validates addWatch arguments without touching the kernel. */
  private checkWatch(rawPath: unknown, rawMask: unknown, rawOptions: unknown): CheckedWatch {
    const path = checkPath(rawPath);
    if (typeof rawMask === 'number' && Number.isInteger(rawMask) && rawMask & FAN.FAN_Q_OVERFLOW) {
      throw invalidArgument('mask must not contain Q_OVERFLOW: overflows are always reported');
    }
    const mask = checkBits(rawMask, 'mask', KNOWN_MASK_BITS, false);
    if ((mask & ~EventClass.FLAGS) === 0) throw invalidArgument('mask has only ONDIR/EVENT_ON_CHILD and no event');
    const options = checkWatchOptions(rawOptions);
    const type = options.mark ?? 'inode';
    if ((mask & EventClass.MOUNT) !== 0 !== (type === 'mntns')) {
      throw invalidArgument("MNT_ATTACH/MNT_DETACH go with mark: 'mntns' only, and a mntns mark takes only those");
    }
    if (options.ignoreSurviveModify && !options.ignore) throw invalidArgument('ignoreSurviveModify needs ignore: true');
    if (options.recursive && (type !== 'inode' || options.ignore)) {
      throw invalidArgument('recursive: true chooses its own marks: leave out mark and ignore');
    }
    return { path, mask, type, options };
  }

  addWatch(rawPath: unknown, rawMask: unknown, rawOptions?: unknown): void {
    this.assertOpen();
    const watch = this.checkWatch(rawPath, rawMask, rawOptions);
    const { path, type, options } = watch;
    const isDirectory = statIsDirectory(path, options);
    if ((options.onlyDir || options.recursive) && !isDirectory) {
      const why = options.recursive ? 'recursive: true' : 'onlyDir: true';
      throw new FanotifyError('InvalidPath', `'${path}' is not a directory (${why})`, { code: 'ENOTDIR', path });
    }


    let flags = MARK_TYPE_FLAGS[type];
    if (options.dontFollow) flags |= FAN.FAN_MARK_DONT_FOLLOW;
    if (options.onlyDir) flags |= FAN.FAN_MARK_ONLYDIR;
    if (options.evictable) {
      if (!capability('evictable')) {
        throw new FanotifyError('NotSupported', 'evictable: true needs FAN_MARK_EVICTABLE (Linux 5.19, or a kernel that backports it); this kernel does not know it');
      }
      flags |= FAN.FAN_MARK_EVICTABLE;
    }
    // The newest form this kernel accepts (probed, not read from its version).
    if (options.ignore) flags |= capability('markIgnore') ? FAN.FAN_MARK_IGNORE : FAN.FAN_MARK_IGNORED_MASK;
    if (options.ignore && !capability('markIgnore') && (options.onDir !== undefined || options.onChildren !== undefined)) {
      throw new FanotifyError('NotSupported', 'onDir/onChildren on an ignore mark need FAN_MARK_IGNORE (Linux 6.0, or a kernel that backports it); this kernel has only the legacy ignored mask, which cannot scope them');
    }
    if (options.ignoreSurviveModify) flags |= FAN.FAN_MARK_IGNORED_SURV_MODIFY;

    // A directory reports its children and itself unless asked not to. The
    // legacy ignored mask has no such bits, so they are left out there.
    let mask = watch.mask;
    const scopeBits = !options.ignore || capability('markIgnore');
    if (scopeBits && type !== 'mntns') {
      if (isDirectory && type === 'inode' && options.onChildren !== false) mask |= FAN.FAN_EVENT_ON_CHILD;
      if ((isDirectory || type !== 'inode') && options.onDir !== false) mask |= FAN.FAN_ONDIR;
    }

    const key = markKey(path, options.recursive ? 'recursive' : type, options.ignore === true);
    const real = realPath(path);
    const fresh: MarkRecord = { path, real, type, flags, masks: new Map(), targets: new Set([path]), placements: new Map(), pruneAt: PRUNE_MIN, scope: 'exact', requested: watch.mask };
    if (options.ignore) fresh.scope = 'ignore';
    else if (type === 'mount' || type === 'filesystem' || type === 'mntns') fresh.scope = 'everything';
    else if (isDirectory && mask & FAN.FAN_EVENT_ON_CHILD) fresh.scope = 'children';
    if (options.recursive) this.planRecursion(fresh, capability('filesystemMarks'));
    if (fresh.recursive === 'filesystem') mask &= ~FAN.FAN_EVENT_ON_CHILD;
    if (fresh.recursive === 'directory') mask |= RECURSION_BITS;

    const record = this.marks.get(key) ?? fresh;
    const routed = this.route(mask);
    const added: Array<[Placement, number]> = [];
    try {
      this.placeOn(record, routed, record.targets, added);
    } catch (err) {
      // Take back what this call placed; what other watches need stays.
      for (const [placement, bits] of added) this.release(placement, bits, true);
      throw err;
    }
    for (const [kind, part] of routed) record.masks.set(kind, (record.masks.get(kind) ?? 0) | part);
    record.requested |= watch.mask;
    this.marks.set(key, record);
    this.updateScopes();
  }

  /**
   * Recursive watches. Privileged: one filesystem mark per filesystem in the
   * tree (mounts inside it included), and the reader's scope filter drops
   * what lies outside. Unprivileged: an inode mark on every directory; new
   * directories are marked as their CREATE/MOVED_TO events arrive (see
   * followNewDirectory).
   */
  private planRecursion(record: MarkRecord, privileged: boolean): void {
    record.scope = 'subtree';
    if (privileged) {
      record.recursive = 'filesystem';
      record.flags = (record.flags & ~FAN.FAN_MARK_MNTNS) | FAN.FAN_MARK_FILESYSTEM;
      record.targets = new Set([record.real, ...mountsInside(record.real)]);
      this.watchMountAttachments();
    } else {
      record.recursive = 'directory';
      record.targets = new Set(directoriesUnder(record.real));
    }
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
      this.placeMark('mnt', FAN.FAN_MARK_ADD | FAN.FAN_MARK_MNTNS, FAN.FAN_MNT_ATTACH, '/proc/self/ns/mnt');
      this.mountsWatched = true;
    } catch {
      // Not allowed or not supported here: mounts present now are covered.
      this.mountsUnwatchable = true;
    }
  }

  /** Marks the filesystems newly mounted inside privileged recursive trees. */
  private followNewMounts(): void {
    for (const record of this.marks.values()) {
      if (record.recursive !== 'filesystem') continue;
      for (const mount of mountsInside(record.real)) {
        if (record.targets.has(mount)) continue;
        try {
          this.placeOn(record, record.masks, [mount]);
          record.targets.add(mount);
        } catch {
          // unmounted again, or a filesystem that cannot be marked: skip it
        }
      }
    }
  }

  removeWatch(rawPath: unknown, rawMask?: unknown, rawOptions?: unknown): void {
    this.assertOpen();
    const path = checkPath(rawPath);
    const options = checkWatchOptions(rawOptions);
    const mask = rawMask === undefined ? undefined : checkBits(rawMask, 'mask', KNOWN_MASK_BITS, false);
    const type = options.mark ?? 'inode';
    const key = markKey(path, options.recursive ? 'recursive' : type, options.ignore === true);
    const record = this.marks.get(key);
    if (!record) {
      const what = options.recursive ? 'recursive watch' : `${options.ignore ? 'ignore ' : ''}${type} mark`;
      throw invalidArgument(`'${path}' has no ${what} from this instance`);
    }

    // The events to take away, wherever they went (an fd-mode fallback
    // included); removing the last event of a mark removes it entirely.
    const events = mask === undefined ? ALL_BITS : mask & ~EventClass.FLAGS;
    for (const [kind, current] of record.masks) {
      const left = current & ~events;
      if (left & ~EventClass.FLAGS) record.masks.set(kind, left);
      else record.masks.delete(kind);
    }
    record.requested &= ~events;
    if (record.masks.size === 0) this.marks.delete(key);
    let failure: unknown;
    for (const placement of [...record.placements.values()]) {
      try {
        if (record.masks.size === 0 || placement.bits & events) this.release(placement, record.masks.size === 0 ? ALL_BITS : events);
      } catch (err) {
        failure ??= err;
      }
    }
    this.updateScopes();
    if (failure !== undefined) throw failure;
  }

  /**
   * Places `masks` (routed group -> mask) with the record's flags on each
   * target and tracks where each landed; `added` collects the bits each
   * placement gained, for undoing.
   */
  private placeOn(record: MarkRecord, masks: Iterable<[GroupKind, number]>, targets: Iterable<string>, added?: Array<[Placement, number]>): void {
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
   * Takes `bits` away from a placement (all of it once no event is left),
   * and from the kernel mark only the bits that no other watch on the same
   * object and group still needs.
   */
  private release(placement: Placement, bits: number, quiet = false): void {
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
  private pruneTargets(record: MarkRecord): void {
    if (record.targets.size < record.pruneAt) return;
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
   * Tells the reader which paths each group's marks cover. Only a group with
   * a privileged recursive watch needs it (its filesystem marks report far
   * more than asked); a plain mount or filesystem mark in the same group
   * widens it to everything.
   */
  private updateScopes(): void {
    const records = [...this.marks.values()];
    this.followsDirectories = records.some((record) => record.recursive === 'directory');
    this.followsMounts = records.some((record) => record.recursive === 'filesystem');
    this.watchesMounts = records.some((record) => record.type === 'mntns');
    for (const [kind, group] of this.groups) {
      const rules: NativeScopeRule[] = [];
      let filtered = false;
      let everything = false;
      for (const record of this.marks.values()) {
        let mask = 0;
        for (const placement of record.placements.values()) if (placement.kind === kind) mask |= placement.bits;
        if (mask === 0 || record.scope === 'ignore') continue;
        if (record.recursive === 'filesystem') filtered = true;
        if (record.scope === 'everything') everything = true;
        else if (record.scope === 'subtree') rules.push({ kind: 0, path: record.real, mask });
        else rules.push({ kind: record.scope === 'children' ? 1 : 2, path: record.real, mask });
      }
      this.reader.setScope(group, filtered && !everything ? rules : []);
    }
  }

  /**
   * Unprivileged recursion: a directory created or moved into a watched tree
   * gets its marks, and whatever was created in it before they were in place
   * is reported from a scan (so a file made a moment after its directory is
   * not missed; it may be reported twice).
   */
  private followNewDirectory(path: string, out: Delivery[]): void {
    for (const record of this.marks.values()) {
      if (record.recursive !== 'directory' || !isUnder(path, record.real) || record.targets.has(path)) continue;
      for (const dir of directoriesUnder(path)) {
        if (record.targets.has(dir)) continue;
        try {
          this.placeOn(record, record.masks, [dir]);
        } catch {
          continue; // gone again, or out of marks: nothing to follow there
        }
        record.targets.add(dir);
        if (!(record.requested & FAN.FAN_CREATE)) continue;
        for (const [name, isDirectory] of entriesOf(dir)) {
          out.push(this.deliveryFor(syntheticCreate(dir, name, isDirectory, this.settings.encoding === 'buffer')));
        }
      }
      this.pruneTargets(record);
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
    for (const r of this.marks.values()) {
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

  /** Answers a permission event; a second answer, or one after close, is a no-op. */
  respond(event: AnyEvent, rawResponse: Response): void {
    const response = checkResponse(rawResponse);
    if (!(event instanceof FanotifyEvent)) throw invalidArgument(`expected a FanotifyEvent, got ${describe(event)}`);
    if (FanotifyEvent.responderOf(event) !== this) {
      throw invalidArgument(event.isPermission() ? 'this permission event belongs to another instance' : 'only permission events can be answered');
    }
    if (this.isClosed) return;
    let bits = response.allow ? FAN.FAN_ALLOW : FAN.FAN_DENY;
    if (response.audit) bits |= FAN.FAN_AUDIT;
    if (response.errno !== undefined) {
      if (!capability('denyErrno')) {
        throw new FanotifyError('NotSupported', 'a deny errno needs Linux 6.14 and CAP_SYS_ADMIN (FAN_DENY_ERRNO, pre-content groups)');
      }
      bits |= response.errno << FAN.FAN_ERRNO_SHIFT;
    }
    const id = FanotifyEvent.idOf(event);
    try {
      this.reader.respond(id, bits >>> 0);
    } catch (err) {
      throw fromNative(err, { action: 'the kernel refused this answer', response: bits });
    }
    FanotifyEvent.markAnswered(event);
  }

  openFd(id: number): number {
    if (this.isClosed) return -1;
    try {
      return this.reader.dupFd(id);
    } catch (err) {
      throw fromNative(err, { action: "could not open a descriptor of the permission event's file" });
    }
  }

  /** Turns a native batch into deliveries, in order. */
  convert(batch: NativeBatch): Delivery[] {
    const out: Delivery[] = [];
    for (const record of unpackBatch(batch)) {
      switch (record.kind) {
        case RecordKind.Warning:
          out.push({ type: 'warning', message: record.message ?? 'warning' });
          break;
        case RecordKind.Error: {
          const error = fromNative(
            { message: record.message, code: errnoName(record.errno ?? 0) ?? 'EIO', errno: -(record.errno ?? 0), syscall: 'read' },
            { action: 'reading the fanotify queue failed; an event was dropped (for a permission event, the kernel denied it)' },
          );
          out.push({ type: 'error', error });
          break;
        }
        default: {
          if (this.mountsWatched && record.group === this.groups.get('mnt') && record.mask & FAN.FAN_MNT_ATTACH) {
            if (this.followsMounts) this.followNewMounts();
            // The internal mark's events are not the user's, unless they watch mounts too.
            if (!this.watchesMounts) break;
          }
          const followed = this.followsDirectories && record.kind === RecordKind.Normal;
          const kept = followed ? this.withoutRecursionBits(record) : record;
          if (kept) out.push(this.deliveryFor(kept));
          if (followed && record.isDirectory && record.path !== null && record.mask & (FAN.FAN_CREATE | FAN.FAN_MOVED_TO)) {
            this.followNewDirectory(pathString(record.path), out);
          }
        }
      }
    }
    return out;
  }

  private deliveryFor(record: NativeRecord): Delivery {
    const processInfo = record.process ? { pid: record.pid, ...record.process } : null;
    const event = new FanotifyEvent(record, this, processInfo);
    if (event.permissionOverflow) {
      const error = new FanotifyError('LimitReached', 'the permission event queue overflowed: some accesses were not checked (raise queue limits or answer faster)');
      return { type: 'error', error, event };
    }
    return { type: 'event', event };
  }

  /**
   * The synchronous front end's wait (NativeReader.take). Its eventfd can
   * fail (EMFILE: LimitReached). In a stopping worker it returns undefined
   * instead of a batch; no JavaScript runs after that.
   */
  take(max: number, timeoutMs: number): NativeBatch {
    try {
      return this.reader.take(max, timeoutMs);
    } catch (err) {
      throw fromNative(err, { action: 'waiting for events' });
    }
  }

  /** The asynchronous front end's delivery (NativeReader.startAsync). */
  startAsync(deliver: (batch: NativeBatch) => void): void {
    try {
      this.reader.startAsync(deliver);
    } catch (err) {
      throw fromNative(err, { action: 'starting event delivery' });
    }
  }

  /** Whether native delivery (startAsync) runs: off while paused or the consumer is full. */
  setDelivery(on: boolean): void {
    this.reader.setDelivery(on);
  }

  /** Whether the native delivery holds the event loop open. */
  setRef(on: boolean): void {
    this.reader.setRef(on);
  }

  setBufferSize(bytes: number): void {
    this.assertOpen();
    this.reader.setBufferSize(bytes);
  }

  close(): void {
    if (this.beginClose()) this.reader.close();
  }

  /**
   * close() that leaves the kernel's teardown of the groups (up to tens of
   * ms) off the JavaScript thread; resolves once every fd is closed. Pending
   * permission events are answered before it returns, as with close().
   */
  closeAsync(): Promise<void> {
    return this.beginClose() ? new Promise<void>((resolve) => this.reader.closeAsync(resolve)) : Promise.resolve();
  }

  /** False if already closed. */
  private beginClose(): boolean {
    if (this.isClosed) return false;
    this.isClosed = true;
    this.marks.clear();
    this.objects.clear();
    return true;
  }

  /** Which group each part of a mask goes to. */
  private route(mask: number): Map<GroupKind, number> {
    const parts = new Map<GroupKind, number>();
    if (this.exactFlags !== undefined) {
      parts.set('exact', mask);
      return parts;
    }
    const scope = mask & EventClass.FLAGS;
    const add = (kind: GroupKind, bits: number, withScope = true) => {
      if (bits) parts.set(kind, (parts.get(kind) ?? 0) | bits | (withScope ? scope : 0));
    };
    add('permission', mask & (EventClass.PERMISSION | EventClass.PRE_CONTENT));
    add('mnt', mask & EventClass.MOUNT, false);
    // All notification events share one FID-reporting group, so they come out
    // in the order they happened (two groups are read independently). It is
    // also the cheap mode: no file is opened per event. Only a filesystem
    // that cannot report file ids sends them to an fd-mode group instead.
    add('fid', mask & (EventClass.NEEDS_FID | EventClass.FILE_CONTENT));
    return parts;
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
      case 'mnt': return (base & ~FAN.FAN_REPORT_PIDFD) | FAN.FAN_REPORT_MNT;
      case 'exact': return this.exactFlags ?? 0;
    }
  }

  private ensureGroup(kind: GroupKind): number {
    let group = this.groups.get(kind);
    if (group === undefined) {
      group = this.createGroup(this.groupFlags(kind), kind);
      this.groups.set(kind, group);
    }
    return group;
  }

  private createGroup(flags: number, kind: GroupKind): number {
    try {
      return this.reader.addGroup(flags, this.settings.eventFlags);
    } catch (err) {
      const what = { fd: 'a notification group', fid: 'a file-id (FID) notification group', permission: 'a permission group', mnt: 'a mount-event group', exact: 'a group with these flags' }[kind];
      throw fromNative(err, { action: `creating ${what}`, initFlags: flags });
    }
  }

  private callMark(group: number, flags: number, mask: number, path: string, kind: GroupKind): void {
    try {
      this.reader.mark(group, flags, mask, FAN.AT_FDCWD, path);
    } catch (err) {
      throw fromNative(err, {
        action: flags & FAN.FAN_MARK_ADD ? 'adding a mark on' : 'removing a mark from',
        path,
        mask,
        markFlags: flags,
        initFlags: this.groupFlags(kind),
      });
    }
  }

  /**
   * Adds a mark in the routed group. A filesystem that cannot report file ids
   * (ENODEV, EOPNOTSUPP, EXDEV) can still report open/access/modify/close in
   * fd mode when privileged: that part goes to an fd-mode group instead.
   * Returns the group kind that took the mark.
   */
  private placeMark(kind: GroupKind, flags: number, mask: number, path: string): GroupKind {
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
}

/** What unprivileged recursion adds to each directory's mark to see new directories. */
const RECURSION_BITS = FAN.FAN_CREATE | FAN.FAN_MOVED_TO | FAN.FAN_ONDIR | FAN.FAN_EVENT_ON_CHILD;

/** A CREATE found by scanning a directory that was marked after it was made. */
function syntheticCreate(dir: string, entry: Buffer, isDirectory: boolean, buffers: boolean): NativeRecord {
  const mask = FAN.FAN_CREATE | (isDirectory ? FAN.FAN_ONDIR : 0);
  // The entry's bytes as the kernel's events would give them, in either encoding.
  const name = buffers ? entry : entry.toString('utf8');
  const path = buffers ? Buffer.concat([Buffer.from(`${dir}/`), entry]) : `${dir}/${name as string}`;
  return { kind: RecordKind.Normal, mask, pid: 0, id: 0, group: -1, permissionGroup: false, isDirectory, path, name, oldPath: null, newPath: null };
}

/** Bits to remove everything a watch placed. */
const ALL_BITS = 0xffffffff;

/** Directory recursion checks its targets for directories gone once it has this many. */
const PRUNE_MIN = 1024;

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
function coversPath(record: MarkRecord, path: string): boolean {
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

/**
 * A record's path as a string, for following directories by name. With
 * encoding: 'buffer' that decodes the bytes as UTF-8, so a directory whose
 * name is not UTF-8 is not followed (README, Limits).
 */
function pathString(p: NativePath): string {
  return typeof p === 'string' ? p : p.toString('utf8');
}

function markKey(path: string, type: MarkType | 'recursive', ignore: boolean): string {
  return `${type}\0${ignore ? 'ignore' : 'watch'}\0${path}`;
}

function checkWatchOptions(raw: unknown): WatchOptions {
  const o = checkOptions<WatchOptions>(raw, 'watch options', WATCH_KEYS);
  if (o.mark !== undefined) checkOneOf(o.mark, 'options.mark', ['inode', 'mount', 'filesystem', 'mntns']);
  for (const key of WATCH_KEYS) {
    if (key !== 'mark' && o[key] !== undefined) checkBoolean(o[key], `options.${key}`);
  }
  return o;
}

function checkResponse(raw: unknown): Response {
  const r = checkOptions<Response>(raw, 'response', ['allow', 'audit', 'errno', 'cache']);
  if (r.allow === undefined) throw invalidArgument('response.allow is required (true or false)');
  checkBoolean(r.allow, 'response.allow');
  if (r.audit !== undefined) checkBoolean(r.audit, 'response.audit');
  if (r.errno !== undefined) {
    checkInteger(r.errno, 'response.errno', 1, FAN.FAN_ERRNO_MASK);
    if (r.allow) throw invalidArgument('response.errno goes with allow: false');
  }
  if (r.cache !== undefined) {
    checkBoolean(r.cache, 'response.cache');
    if (r.cache && !r.allow) throw invalidArgument('response.cache goes with allow: true');
    if (r.cache) throw new FanotifyError('NotSupported', 'response.cache: true (allow and stop asking about this file) is not implemented yet');
  }
  return r as Response;
}

/** Whether the path is a directory; a missing path is an InvalidPath error. */
function statIsDirectory(path: string, options: WatchOptions): boolean {
  try {
    return (options.dontFollow ? fs.lstatSync(path) : fs.statSync(path)).isDirectory();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw fromNative({ message: e.message, code: e.code, errno: e.errno, syscall: 'stat' }, { path, action: 'cannot watch' });
  }
}
