/**
 * The engine both front ends share: it owns the native reader and orchestrates
 * watches (checked by watch.ts, placed by marks.ts, followed by recursion.ts)
 * and the reader's scope filter; it turns each native batch into deliveries
 * (kernel -> reader -> records -> recursion step -> deliveries), answers
 * permission events, and closes. Fanotify and AsyncFanotify only add their
 * way of handing events out.
 */
import { capability } from './capabilities';
import { EventClass, FAN, KNOWN_MASK_BITS } from './constants';
import { FanotifyError, closedError, errnoName, fromNative, invalidArgument } from './errors';
import { FanotifyEvent, type AnyEvent, type Responder } from './event';
import { unpackBatch } from './batch';
import { DecisionCache } from './cache';
import { ALL_BITS, DirectoryTargets, Marks, PRUNE_MIN, markKey, type GroupKind, type MarkRecord, type Placement } from './marks';
import { native, RecordKind, type NativeBatch, type NativeReader, type NativeRecord } from './native';
import type { Settings } from './options';
import type { AuditRule, Response } from './types';
import { Recursion } from './recursion';
import { realPath } from './tree';
import { checkBits, checkBoolean, checkOptions, checkPath, checkInteger, describe } from './validate';
import { checkKernelSupports, checkWatch, checkWatchOptions, markFlags, statIsDirectory, withScopeBits } from './watch';

/** What a native record became: an event to hand out, an error to report, or a warning. */
export type Delivery =
  | { type: 'event'; event: AnyEvent }
  | { type: 'error'; error: FanotifyError; event?: AnyEvent }
  | { type: 'warning'; message: string };

export class Core implements Responder {
  readonly settings: Settings;
  private readonly reader: NativeReader;
  private readonly marks: Marks;
  private readonly recursion: Recursion;
  private readonly cache: DecisionCache;
  private isClosed = false;
  /** Its groups have FAN_ENABLE_AUDIT: answers may ask for audit records. */
  private readonly auditEnabled: boolean;

  constructor(settings: Settings, exactFlags?: number) {
    this.settings = settings;
    this.auditEnabled = ((exactFlags ?? settings.flags) & FAN.FAN_ENABLE_AUDIT) !== 0;
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
    this.recursion = new Recursion(this.marks, settings.encoding === 'buffer');
    this.cache = new DecisionCache(this.reader, this.marks);
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

  /**
   * `background` (AsyncFanotify): an unprivileged recursive watch walks and
   * marks its tree on a walker thread, and the returned promise settles when
   * it is done; everything else happens before this returns, as without it.
   */
  addWatch(rawPath: unknown, rawMask: unknown, rawOptions?: unknown): void;
  addWatch(rawPath: unknown, rawMask: unknown, rawOptions: unknown, background: true): void | Promise<void>;
  addWatch(rawPath: unknown, rawMask: unknown, rawOptions?: unknown, background = false): void | Promise<void> {
    this.assertOpen();
    const watch = checkWatch(rawPath, rawMask, rawOptions);
    const { path, type, options } = watch;
    checkKernelSupports(watch.mask);
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
    if (options.recursive) mask = this.recursion.plan(fresh, mask, capability('filesystemMarks'));

    const record = this.marks.records.get(key) ?? fresh;
    const routed = this.marks.route(mask);
    const added: Array<[Placement, number]> = [];
    if (background && record.targets instanceof DirectoryTargets) return this.addTreeInBackground(key, record, routed, added, watch.mask);
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
   * addWatch's background walk. The watch is registered before the walk
   * starts: events of directories already marked arrive meanwhile, and
   * recursion must follow the new directories they report. A failed walk
   * takes back what it placed and the registration.
   */
  private async addTreeInBackground(key: string, record: MarkRecord, routed: Map<GroupKind, number>, added: Array<[Placement, number]>, requested: number): Promise<void> {
    const before = { masks: new Map(record.masks), requested: record.requested, registered: this.marks.records.get(key) === record };
    for (const [kind, part] of routed) record.masks.set(kind, (record.masks.get(kind) ?? 0) | part);
    record.requested |= requested;
    this.marks.records.set(key, record);
    this.updateScopes();
    try {
      await this.marks.placeTreeAsync(record, record.targets as DirectoryTargets, routed, added);
    } catch (err) {
      if (this.isClosed) throw closedError();
      const removed = this.marks.records.get(key) !== record;
      for (const [placement, bits] of added) this.marks.release(placement, bits, true);
      record.masks = before.masks;
      record.requested = before.requested;
      if (!before.registered && !removed) this.marks.records.delete(key);
      this.updateScopes();
      if (removed) throw new FanotifyError('Aborted', `removeWatch('${record.path}') was called while this recursive addWatch was still marking the tree`);
      throw err;
    }
    if (this.isClosed) throw closedError();
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
    // Its decision-cache entries go with it (those of every group it used).
    const groups = new Set<number>();
    for (const placement of record.placements.values()) {
      const group = this.marks.groups.get(placement.kind);
      if (group !== undefined) groups.add(group);
    }
    let failure: unknown;
    for (const placement of [...record.placements.values()]) {
      try {
        if (record.masks.size === 0 || placement.bits & events) this.marks.release(placement, record.masks.size === 0 ? ALL_BITS : events);
      } catch (err) {
        failure ??= err;
      }
    }
    try {
      this.cache.clear(undefined, groups);
    } catch (err) {
      failure ??= err;
    }
    this.updateScopes();
    if (failure !== undefined) throw failure;
  }

  /**
   * After the watches changed: what recursion must follow, and which paths
   * each group's marks cover, for the reader's scope filter (Marks.scopeRules).
   */
  private updateScopes(): void {
    this.cache.watchesChanged();
    this.recursion.update();
    for (const [kind, group] of this.marks.groups) this.reader.setScope(group, this.marks.scopeRules(kind));
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
    const rule = typeof response.audit === 'object' ? auditRuleArgs(response.audit) : [];
    if (response.audit && !this.auditEnabled) {
      throw invalidArgument('response.audit needs the group flag FanotifyFlags.ENABLE_AUDIT (options.flags; it needs CAP_AUDIT_WRITE)');
    }
    if (rule.length > 0) {
      if (!capability('auditRule')) {
        throw new FanotifyError('NotSupported', 'response.audit: { rule } needs Linux 6.3 (FAN_INFO audit-rule records); this kernel does not know them: use audit: true');
      }
      bits |= FAN.FAN_INFO;
    }
    if (response.errno !== undefined) {
      if (!capability('denyErrno')) {
        throw new FanotifyError('NotSupported', 'a deny errno needs Linux 6.14 and CAP_SYS_ADMIN (FAN_DENY_ERRNO, pre-content groups)');
      }
      if (!this.marks.isPreContent(FanotifyEvent.groupOf(event))) {
        throw new FanotifyError('NotSupported', 'a deny errno needs a CLASS_PRE_CONTENT group (FAN_DENY_ERRNO); this event comes from a group made with other flags (withFlags): deny() without errno, or add FanotifyFlags.CLASS_PRE_CONTENT');
      }
      bits |= response.errno << FAN.FAN_ERRNO_SHIFT;
    }
    const id = FanotifyEvent.idOf(event);
    // The cache's ignore mark goes on while the event is pending (through
    // its fd), before the allow lets the process go on.
    if (response.cache) this.cache.add(id, FanotifyEvent.groupOf(event), event.mask, event.isDirectory, event.path);
    try {
      this.reader.respond(id, bits >>> 0, ...rule);
    } catch (err) {
      throw fromNative(err, { action: 'the kernel refused this answer', response: bits });
    }
    FanotifyEvent.markAnswered(event);
  }

  /** The decision cache's entries that the kernel holds now (see DecisionCache.size). */
  get cacheSize(): number {
    return this.isClosed ? 0 : this.cache.size();
  }

  /** Drops the decision cache: every entry, or those of the file at `path`. */
  clearCache(rawPath?: unknown): void {
    this.assertOpen();
    this.cache.clear(rawPath === undefined ? undefined : checkPath(rawPath));
  }

  openFd(id: number): number {
    if (this.isClosed) return -1;
    try {
      return this.reader.dupFd(id);
    } catch (err) {
      throw fromNative(err, { action: "could not open a descriptor of the permission event's file" });
    }
  }

  /**
   * Turns a native batch into deliveries, in order: the records as the
   * reader made them, then the recursion step over them (the only part that
   * touches the kernel: it marks what a recursive tree gained), then one
   * delivery per record.
   */
  convert(batch: NativeBatch): Delivery[] {
    return this.recursion.follow(unpackBatch(batch)).map((record) => this.deliveryFor(record));
  }

  private deliveryFor(record: NativeRecord): Delivery {
    switch (record.kind) {
      case RecordKind.Warning:
        return { type: 'warning', message: record.message ?? 'warning' };
      case RecordKind.Error: {
        const error = fromNative(
          { message: record.message, code: errnoName(record.errno ?? 0) ?? 'EIO', errno: -(record.errno ?? 0), syscall: 'read' },
          { action: 'reading the fanotify queue failed; an event was dropped (for a permission event, the kernel denied it)' },
        );
        return { type: 'error', error };
      }
    }
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
    this.cache.forget();
    return true;
  }

}

/** The native respond()'s record arguments: rule, subject trust, object trust (0 no, 1 yes, 2 unknown). */
function auditRuleArgs(audit: AuditRule): [number, number, number] {
  const trust = (t: boolean | undefined) => (t === undefined ? 2 : t ? 1 : 0);
  return [audit.rule, trust(audit.subjectTrust), trust(audit.objectTrust)];
}

function checkResponse(raw: unknown): Response {
  const r = checkOptions<Response>(raw, 'response', ['allow', 'audit', 'errno', 'cache']);
  if (r.allow === undefined) throw invalidArgument('response.allow is required (true or false)');
  checkBoolean(r.allow, 'response.allow');
  if (r.audit !== undefined && typeof r.audit !== 'boolean') {
    if (r.audit === null || typeof r.audit !== 'object' || Array.isArray(r.audit)) {
      throw invalidArgument(`response.audit must be a boolean or { rule }, got ${describe(r.audit)}`);
    }
    const a = checkOptions<AuditRule>(r.audit, 'response.audit', ['rule', 'subjectTrust', 'objectTrust']);
    if (a.rule === undefined) throw invalidArgument('response.audit.rule is required (the number of the rule that decided)');
    checkInteger(a.rule, 'response.audit.rule', 0, 0xffffffff);
    if (a.subjectTrust !== undefined) checkBoolean(a.subjectTrust, 'response.audit.subjectTrust');
    if (a.objectTrust !== undefined) checkBoolean(a.objectTrust, 'response.audit.objectTrust');
  }
  if (r.errno !== undefined) {
    checkInteger(r.errno, 'response.errno', 1, FAN.FAN_ERRNO_MASK);
    if (r.allow) throw invalidArgument('response.errno goes with allow: false');
  }
  if (r.cache !== undefined) {
    checkBoolean(r.cache, 'response.cache');
    if (r.cache && !r.allow) throw invalidArgument('response.cache goes with allow: true (a deny is never cached)');
  }
  return r as Response;
}
