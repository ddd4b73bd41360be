/**
 * The engine both front ends share: it owns the native reader and orchestrates
 * watches (checked by watch.ts, placed by marks.ts), recursion, the reader's
 * scope filter, turning native batches into deliveries, answering permission
 * events, and closing. Fanotify and AsyncFanotify only add their way of
 * handing events out.
 */
import { capability } from './capabilities';
import { EventClass, FAN, KNOWN_MASK_BITS } from './constants';
import { FanotifyError, closedError, errnoName, fromNative, invalidArgument } from './errors';
import { FanotifyEvent, type AnyEvent, type Responder } from './event';
import { unpackBatch } from './batch';
import { ALL_BITS, Marks, PRUNE_MIN, coversPath, markKey, type MarkRecord, type Placement } from './marks';
import { native, RecordKind, type NativeBatch, type NativePath, type NativeReader, type NativeRecord } from './native';
import type { Settings } from './options';
import type { Response } from './types';
import { directoriesUnder, entriesOf, isUnder, mountsInside, realPath } from './tree';
import { checkBits, checkBoolean, checkOptions, checkPath, checkInteger, describe } from './validate';
import { checkWatch, checkWatchOptions, markFlags, statIsDirectory, withScopeBits } from './watch';

/** What a native record became: an event to hand out, an error to report, or a warning. */
export type Delivery =
  | { type: 'event'; event: AnyEvent }
  | { type: 'error'; error: FanotifyError; event?: AnyEvent }
  | { type: 'warning'; message: string };

export class Core implements Responder {
  readonly settings: Settings;
  private readonly reader: NativeReader;
  private readonly marks: Marks;
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
    this.marks = new Marks(this.reader, settings, exactFlags);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** True while at least one mark is in place. */
  get watching(): boolean {
    return this.marks.records.size > 0;
  }

  assertOpen(): void {
    if (this.isClosed) throw closedError();
  }

  addWatch(rawPath: unknown, rawMask: unknown, rawOptions?: unknown): void {
    this.assertOpen();
    const watch = checkWatch(rawPath, rawMask, rawOptions);
    const { path, type, options } = watch;
    const isDirectory = statIsDirectory(path, options);
    if ((options.onlyDir || options.recursive) && !isDirectory) {
      const why = options.recursive ? 'recursive: true' : 'onlyDir: true';
      throw new FanotifyError('InvalidPath', `'${path}' is not a directory (${why})`, { code: 'ENOTDIR', path });
    }

    const flags = markFlags(type, options);
    let mask = withScopeBits(watch, isDirectory);

    const key = markKey(path, options.recursive ? 'recursive' : type, options.ignore === true);
    const real = realPath(path);
    const fresh: MarkRecord = { path, real, type, flags, masks: new Map(), targets: new Set([path]), placements: new Map(), pruneAt: PRUNE_MIN, scope: 'exact', requested: watch.mask };
    if (options.ignore) fresh.scope = 'ignore';
    else if (type === 'mount' || type === 'filesystem' || type === 'mntns') fresh.scope = 'everything';
    else if (isDirectory && mask & FAN.FAN_EVENT_ON_CHILD) fresh.scope = 'children';
    if (options.recursive) this.planRecursion(fresh, capability('filesystemMarks'));
    if (fresh.recursive === 'filesystem') mask &= ~FAN.FAN_EVENT_ON_CHILD;
    if (fresh.recursive === 'directory') mask |= RECURSION_BITS;

    const record = this.marks.records.get(key) ?? fresh;
    const routed = this.marks.route(mask);
    const added: Array<[Placement, number]> = [];
    try {
      this.marks.placeOn(record, routed, record.targets, added);
    } catch (err) {
      // Take back what this call placed; what other watches need stays.
      for (const [placement, bits] of added) this.marks.release(placement, bits, true);
      throw err;
    }
    for (const [kind, part] of routed) record.masks.set(kind, (record.masks.get(kind) ?? 0) | part);
    record.requested |= watch.mask;
    this.marks.records.set(key, record);
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

  removeWatch(rawPath: unknown, rawMask?: unknown, rawOptions?: unknown): void {
    this.assertOpen();
    const path = checkPath(rawPath);
    const options = checkWatchOptions(rawOptions);
    const mask = rawMask === undefined ? undefined : checkBits(rawMask, 'mask', KNOWN_MASK_BITS, false);
    const type = options.mark ?? 'inode';
    const key = markKey(path, options.recursive ? 'recursive' : type, options.ignore === true);
    const record = this.marks.records.get(key);
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
    if (record.masks.size === 0) this.marks.records.delete(key);
    let failure: unknown;
    for (const placement of [...record.placements.values()]) {
      try {
        if (record.masks.size === 0 || placement.bits & events) this.marks.release(placement, record.masks.size === 0 ? ALL_BITS : events);
      } catch (err) {
        failure ??= err;
      }
    }
    this.updateScopes();
    if (failure !== undefined) throw failure;
  }

  /**
   * After the watches changed: what recursion must follow, and which paths
   * each group's marks cover, for the reader's scope filter (Marks.scopeRules).
   */
  private updateScopes(): void {
    const records = [...this.marks.records.values()];
    this.followsDirectories = records.some((record) => record.recursive === 'directory');
    this.followsMounts = records.some((record) => record.recursive === 'filesystem');
    this.watchesMounts = records.some((record) => record.type === 'mntns');
    for (const [kind, group] of this.marks.groups) this.reader.setScope(group, this.marks.scopeRules(kind));
  }

  /**
   * Unprivileged recursion: a directory created or moved into a watched tree
   * gets its marks, and whatever was created in it before they were in place
   * is reported from a scan (so a file made a moment after its directory is
   * not missed; it may be reported twice).
   */
  private followNewDirectory(path: string, out: Delivery[]): void {
    for (const record of this.marks.records.values()) {
      if (record.recursive !== 'directory' || !isUnder(path, record.real) || record.targets.has(path)) continue;
      for (const dir of directoriesUnder(path)) {
        if (record.targets.has(dir)) continue;
        try {
          this.marks.placeOn(record, record.masks, [dir]);
        } catch {
          continue; // gone again, or out of marks: nothing to follow there
        }
        record.targets.add(dir);
        if (!(record.requested & FAN.FAN_CREATE)) continue;
        for (const [name, isDirectory] of entriesOf(dir)) {
          out.push(this.deliveryFor(syntheticCreate(dir, name, isDirectory, this.settings.encoding === 'buffer')));
        }
      }
      this.marks.pruneTargets(record);
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
          if (this.mountsWatched && record.group === this.marks.groups.get('mnt') && record.mask & FAN.FAN_MNT_ATTACH) {
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
    return true;
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

/**
 * A record's path as a string, for following directories by name. With
 * encoding: 'buffer' that decodes the bytes as UTF-8, so a directory whose
 * name is not UTF-8 is not followed (README, Limits).
 */
function pathString(p: NativePath): string {
  return typeof p === 'string' ? p : p.toString('utf8');
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
