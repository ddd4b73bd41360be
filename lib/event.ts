import * as path from 'node:path';
import { EVENT_BIT_NAMES, EventClass, FAN } from './constants';
import { invalidArgument } from './errors';
import type { NativeRecord } from './native';
import type { AllowOptions, DenyOptions, EventInfo, ProcessInfo, Response } from './types';
import { answerFor } from './validate';

/** An event of either encoding, for code that does not read its paths. */
export type AnyEvent = FanotifyEvent<string | Buffer>;

/** Whoever can answer an event's permission request: the instance it came from. */
export interface Responder {
  respond(event: AnyEvent, response: Response): void;
  /**
   * A new descriptor of the file of the permission event `id`, which the
   * caller owns; -1 once the event is answered, expired or closed.
   */
  openFd(id: number): number;
}

/** #fd of a pending permission event whose descriptor nobody asked for yet. */
const NOT_OPENED = -2;

class Info<P extends string | Buffer> implements EventInfo<P> {
  constructor(
    readonly pid: number,
    readonly isDirectory: boolean,
    readonly path: P | null,
    private readonly entryName: P | null,
  ) {}

  filename(): P | null {
    if (this.path === null) return this.entryName;
    if (typeof this.path === 'string') return (path.basename(this.path) || this.path) as P;
    return bufferBasename(this.path) as P;
  }
}

/** path.basename for a path held as bytes ('/' is one byte in every encoding Linux paths use). */
function bufferBasename(p: Buffer): Buffer {
  let end = p.length;
  while (end > 1 && p[end - 1] === 0x2f) end--;
  const start = p.lastIndexOf(0x2f, end - 1) + 1;
  return start < end ? p.subarray(start, end) : p;
}

/** Equal paths, whether strings or Buffers. */
function samePath(a: string | Buffer, b: string | Buffer): boolean {
  return typeof a === 'string' || typeof b === 'string' ? a.toString() === b.toString() : a.equals(b);
}

/** A path for toJSON(): strings as they are, Buffers in Node's own JSON form (Buffer.from() reads it back). */
function jsonPath(p: string | Buffer | null): string | { type: 'Buffer'; data: number[] } | null {
  return p === null || typeof p === 'string' ? p : p.toJSON();
}

/**
 * One event from the kernel, with its path resolved where the kernel allows.
 * `P` is the type of its paths and names: `string`, or `Buffer` when the
 * instance was made with `encoding: 'buffer'`.
 */
export class FanotifyEvent<P extends string | Buffer = string> {
  /** The kernel's event bits (see MaskFlags). */
  readonly mask: number;
  readonly info: EventInfo<P>;
  /** The entry's name, for directory-entry events (create, delete, move, rename). */
  readonly name: P | null;
  /** Where the entry was, for RENAME and MOVED_FROM. */
  readonly oldPath: P | null;
  /** Where the entry is now, for RENAME and MOVED_TO. */
  readonly newPath: P | null;
  /** The process that caused it, when the option `processInfo` is set. */
  readonly process: ProcessInfo | null;
  /**
   * For FS_ERROR events (see isError()): the error the filesystem reported
   * (`errno`, e.g. 117 EUCLEAN for a corrupted inode, 108 ESHUTDOWN for an
   * aborted filesystem) and `count`, how many errors the kernel merged into
   * this event since the last one was read (it keeps one per filesystem
   * queued and reports the first error's object). Undefined for other events.
   */
  readonly error?: { errno: number; count: number };
  /** For PRE_ACCESS events: the byte range about to be accessed. */
  readonly range?: { offset: number; count: number };
  /**
   * For MNT_ATTACH / MNT_DETACH events: the id of the mount attached or
   * detached (the kernel's unique 64-bit mount id, as statx() reports with
   * STATX_MNT_ID_UNIQUE and statmount()/listmount() use; not the 32-bit id
   * of /proc/self/mountinfo). `path` is its mount point where known. Null
   * for other events.
   */
  readonly mountId: bigint | null;
  /** True for an overflow from a permission group: accesses went through unchecked. */
  readonly permissionOverflow: boolean;
  #fd: number;
  // Private fields, not WeakMaps: a WeakMap entry per permission event cost
  // more than the rest of building the event.
  #responder: Responder | undefined;
  #id = 0;
  #group = -1;

  /** @internal Built by the library from what the native reader decoded. */
  constructor(record: NativeRecord, responder?: Responder, processInfo: ProcessInfo | null = null) {
    this.mask = record.mask;
    // The record's paths are strings or Buffers as the instance's encoding says.
    this.info = new Info(record.pid, record.isDirectory, record.path as P | null, record.name as P | null);
    this.name = record.name as P | null;
    this.oldPath = record.oldPath as P | null;
    this.newPath = record.newPath as P | null;
    this.process = processInfo;
    if (record.error) this.error = record.error;
    if (record.range) this.range = record.range;
    this.mountId = record.mountId ?? null;
    this.permissionOverflow = (record.mask & FAN.FAN_Q_OVERFLOW) !== 0 && record.permissionGroup;
    this.#fd = -1;
    if (record.id && responder) {
      this.#responder = responder;
      this.#id = record.id;
      this.#group = record.group;
      this.#fd = NOT_OPENED;
    }
  }

  /** The process (or, with FanotifyFlags.REPORT_TID, thread) that caused it; 0 for events found by a scan. */
  get pid(): number { return this.info.pid; }
  /**
   * The full path, or null where it cannot be known (see README, Event
   * handling). A Buffer of the kernel's bytes with `encoding: 'buffer'`.
   * For a mount event: the mount point (where the mount is, or for
   * MNT_DETACH was); a move (MNT_ATTACH|MNT_DETACH) also sets oldPath and
   * newPath where the former place is known.
   */
  get path(): P | null { return this.info.path; }
  /** The event is about a directory (ONDIR). */
  get isDirectory(): boolean { return this.info.isDirectory; }
  /**
   * For a permission event: a file descriptor of the file being accessed,
   * which belongs to you, as one from `fs.openSync` does: close it with
   * `fs.closeSync(ev.fd)` (or `fs.close`) when you are done. The library
   * never closes it, nor answers through it, so it stays valid after the
   * event is answered, and closing it early changes nothing for the answer.
   *
   * It is opened (a dup of the kernel's event fd, close-on-exec, sharing its
   * file offset and access mode) the first time `fd` is read, and later reads
   * return the same number: a handler that never reads `fd` costs no
   * descriptor. Read first after the event was answered (by you, its
   * deadline or `close()`), it is -1: the kernel's fd is gone. -1 for
   * notification events, whose fds the reader closes once it has the path,
   * and for FID-reporting events, which carry none. Throws a FanotifyError
   * (kind LimitReached, code EMFILE) if no descriptor is left.
   */
  get fd(): number {
    if (this.#fd === NOT_OPENED) this.#fd = this.#responder!.openFd(this.#id);
    return this.#fd;
  }

  /** ACCESS, ACCESS_PERM or PRE_ACCESS. */
  isAccess(): boolean { return this.has(FAN.FAN_ACCESS | FAN.FAN_ACCESS_PERM | FAN.FAN_PRE_ACCESS); }
  /** MODIFY. */
  isModify(): boolean { return this.has(FAN.FAN_MODIFY); }
  /** ATTRIB. */
  isAttrib(): boolean { return this.has(FAN.FAN_ATTRIB); }
  /** OPEN, OPEN_EXEC, OPEN_PERM or OPEN_EXEC_PERM. */
  isOpen(): boolean { return this.has(FAN.FAN_OPEN | FAN.FAN_OPEN_EXEC | FAN.FAN_OPEN_PERM | FAN.FAN_OPEN_EXEC_PERM); }
  /** CLOSE_WRITE or CLOSE_NOWRITE. */
  isClose(): boolean { return this.has(FAN.FAN_CLOSE); }
  /** CREATE. */
  isCreate(): boolean { return this.has(FAN.FAN_CREATE); }
  /** DELETE or DELETE_SELF. */
  isDelete(): boolean { return this.has(FAN.FAN_DELETE | FAN.FAN_DELETE_SELF); }
  /** MOVED_FROM, MOVED_TO, MOVE_SELF or RENAME. */
  isMove(): boolean { return this.has(FAN.FAN_MOVE | FAN.FAN_MOVE_SELF | FAN.FAN_RENAME); }
  /** A permission event: answer it with allow() or deny(). */
  isPermission(): boolean { return this.has(EventClass.PERMISSION | EventClass.PRE_CONTENT); }
  /** Q_OVERFLOW: the kernel dropped events. */
  isOverflow(): boolean { return this.has(FAN.FAN_Q_OVERFLOW); }
  /** FS_ERROR: the filesystem reported an error (see `error`; `path` is the object it concerns, where known). */
  isError(): boolean { return this.has(FAN.FAN_FS_ERROR); }

  /** The names of the bits in `mask`, e.g. `['CREATE', 'ONDIR']`. */
  types(): string[] {
    const names: string[] = [];
    for (const [bit, name] of EVENT_BIT_NAMES) if (this.mask & bit) names.push(name);
    return names;
  }

  /** One human line: types, path (or old -> new), pid. */
  description(): string {
    const where =
      this.oldPath !== null && this.newPath !== null && !samePath(this.oldPath, this.newPath)
        ? `${this.oldPath} -> ${this.newPath}`
        : (this.path ?? (this.name !== null ? `?/${this.name}` : '(no path)'));
    const who = this.process?.comm ? ` ${this.process.comm}` : '';
    return `${this.types().join('|')} ${where} (pid ${this.pid}${who})`;
  }

  /**
   * Allow the access this permission event is asking about. `cache: true`
   * also asks the kernel to stop asking about this file until it is modified
   * (an ignore mark; see the README, "Decision cache"); for a PRE_ACCESS
   * event it means "filled: stop asking".
   */
  allow(options?: AllowOptions): void { this.respond(answerFor(true, arguments)); }
  /** Deny it: the process's call fails with EPERM, or with `errno` (see Response). */
  deny(options?: DenyOptions): void { this.respond(answerFor(false, arguments)); }

  /** Answers this permission event (see Response); throws InvalidArgument for other events. */
  respond(response: Response): void {
    if (arguments.length > 1) throw invalidArgument(`respond() takes one response, got ${arguments.length} arguments`);
    const responder = this.#responder;
    if (!responder) throw invalidArgument(`only permission events can be answered; this is ${this.types().join('|') || 'an event'}`);
    responder.respond(this, response);
  }

  /**
   * Plain, JSON-serialisable data: mask, types, pid, paths, name,
   * isDirectory, fd, process, and where the event has them `error`,
   * `range` and `mountId` (as a decimal string: JSON has no bigint). With `encoding: 'buffer'` each path and name
   * is in Node's JSON form of a Buffer, `{ type: 'Buffer', data: [bytes] }`,
   * which `Buffer.from()` turns back into the Buffer. `fd` is the descriptor
   * `ev.fd` handed out, or -1: this never opens one.
   */
  toJSON(): Record<string, unknown> {
    return {
      mask: this.mask,
      types: this.types(),
      pid: this.pid,
      path: jsonPath(this.path),
      name: jsonPath(this.name),
      oldPath: jsonPath(this.oldPath),
      newPath: jsonPath(this.newPath),
      isDirectory: this.isDirectory,
      fd: this.#fd >= 0 ? this.#fd : -1,
      process: this.process,
      ...(this.error ? { error: this.error } : {}),
      ...(this.range ? { range: this.range } : {}),
      ...(this.mountId !== null ? { mountId: this.mountId.toString() } : {}),
    };
  }

  private has(bits: number): boolean {
    return (this.mask & bits) !== 0;
  }

  /** @internal The instance that can answer this event, if any. */
  static responderOf(event: AnyEvent): Responder | undefined {
    return event.#responder;
  }

  /** @internal The index of the native group that reported it. */
  static groupOf(event: AnyEvent): number {
    return event.#group;
  }

  /** @internal The id the native reader answers by, or 0. */
  static idOf(event: AnyEvent): number {
    return event.#id;
  }

  /**
   * @internal Called once the event is answered: the kernel's fd is closed,
   * so no descriptor can be opened any more; one already handed out stays
   * (it is JavaScript's).
   */
  static markAnswered(event: AnyEvent): void {
    if (event.#fd === NOT_OPENED) event.#fd = -1;
  }
}
