import { FAN, KNOWN_INIT_FLAGS } from './constants';
import { Core, type Delivery } from './core';
import { invalidArgument } from './errors';
import { FanotifyEvent } from './event';
import { readOptions, checkBufferSize } from './options';
import type { AllowOptions, DenyOptions, Encoding, FanotifyOptions, PathOf, Response, WatchOptions } from './types';
import { answerFor, checkBits, checkInteger, checkOptions, checkRespondArgs } from './validate';

/** Options for one synchronous read. */
export interface ReadOptions {
  /** Milliseconds to wait for the first event; 0 returns at once. Default: wait (or not, with NONBLOCK). */
  timeout?: number;
}

const EXACT = Symbol('withFlags');

/**
 * The synchronous API: reads block the calling thread (use AsyncFanotify in
 * servers). A native reader thread still reads the kernel queue and keeps
 * permission deadlines, so an instance nobody reads from never blocks others
 * longer than `permissionTimeout`.
 *
 * `E` is the option `encoding`: a `Fanotify<'buffer'>` hands out events whose
 * paths and names are Buffers (`FanotifyEvent<Buffer>`).
 */
export class Fanotify<E extends Encoding = 'utf8'> implements Disposable {
  readonly #core: Core;
  readonly #nonBlocking: boolean;
  #backlog: Delivery[] = [];

  constructor(options?: FanotifyOptions<E>);
  /** @internal */
  constructor(options: FanotifyOptions<E> | undefined, token: typeof EXACT, flags: number);
  constructor(options?: FanotifyOptions<E>, token?: typeof EXACT, flags?: number) {
    const settings = readOptions(options);
    const exact = token === EXACT ? flags : undefined;
    this.#core = new Core(settings, exact);
    this.#nonBlocking = ((exact ?? settings.flags) & FAN.FAN_NONBLOCK) !== 0;
  }

  /** Exactly one kernel group with exactly these `fanotify_init` flags. */
  static withFlags<E extends Encoding = 'utf8'>(flags: number, options?: FanotifyOptions<E>): Fanotify<E> {
    const exact = checkBits(flags, 'flags', KNOWN_INIT_FLAGS, true);
    if (options && typeof options === 'object' && 'flags' in options && options.flags !== undefined) {
      throw invalidArgument('withFlags(flags, options): give the flags once, not also in options.flags');
    }
    return new Fanotify<E>(options, EXACT, exact);
  }

  /** True once close() was called (or the instance was garbage-collected). */
  get closed(): boolean {
    return this.#core.closed;
  }

  /**
   * Starts reporting `mask` events (MaskFlags) for `path` (a string, a
   * file: URL, or a Buffer of UTF-8). Creates the kernel groups the mask
   * needs on first use. Throws FanotifyError on bad input (before any
   * system call) and on refusal by the kernel.
   */
  addWatch(path: string | Buffer | URL, mask: number, options?: WatchOptions): void {
    this.#core.addWatch(path, mask, options);
  }

  /**
   * Stops reporting `mask` (default: everything this instance marked there).
   * Give the same `mark`, `ignore` and `recursive` options as addWatch did.
   */
  removeWatch(path: string | Buffer | URL, mask?: number, options?: WatchOptions): void {
    this.#core.removeWatch(path, mask, options);
  }

  /** The next event; null only when non-blocking (or timed out) and nothing is queued. */
  readEvent(options?: ReadOptions): FanotifyEvent<PathOf<E>> | null {
    return this.#read(1, options)[0] ?? null;
  }

  /** Every event available now; waits for the first unless non-blocking. */
  readEvents(options?: ReadOptions): Array<FanotifyEvent<PathOf<E>>> {
    return this.#read(this.#core.settings.queueLimit, options);
  }

  /** Iterates events; ends when the instance is closed (or, non-blocking, when none is queued). */
  *events(): IterableIterator<FanotifyEvent<PathOf<E>>> {
    while (!this.closed) {
      const event = this.readEvent();
      if (event === null) return;
      yield event;
    }
  }

  /** Allows the access a permission event asks about (options as ev.allow). A second answer is a no-op. */
  allow(event: FanotifyEvent<PathOf<E>>, options?: AllowOptions): void {
    this.#core.respond(event, answerFor(true, Array.prototype.slice.call(arguments, 1)));
  }

  /** Denies it: the process's call fails with EPERM, or `errno` (options as ev.deny). A second answer is a no-op. */
  deny(event: FanotifyEvent<PathOf<E>>, options?: DenyOptions): void {
    this.#core.respond(event, answerFor(false, Array.prototype.slice.call(arguments, 1)));
  }

  /** Answers with audit, errno and cache options (see Response). */
  respond(event: FanotifyEvent<PathOf<E>>, response: Response): void {
    checkRespondArgs(arguments.length);
    this.#core.respond(event, response);
  }

  /**
   * How many files the decision cache (`allow({ cache: true })`) holds now,
   * as the kernel reports it: files modified or evicted since are not
   * counted. 0 once closed.
   */
  get cacheSize(): number {
    return this.#core.cacheSize;
  }

  /** Drops the decision cache: every entry, or only that of the file at `path`; the next access asks again. */
  clearCache(path?: string | Buffer | URL): void {
    this.#core.clearCache(path);
  }

  /** Bytes per read(2) of the kernel queue, from 4096 to 16 MiB. */
  setBufferSize(bytes: number): void {
    this.#core.setBufferSize(checkBufferSize(bytes));
  }

  /**
   * Closes every group; permission events still pending, read or still in
   * the kernel queue, get `defaultResponse` first. Idempotent.
   */
  close(): void {
    this.#backlog = [];
    this.#core.close();
  }

  /** Same as close(), for `using fan = new Fanotify()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #read(max: number, options: ReadOptions | undefined): Array<FanotifyEvent<PathOf<E>>> {
    const o = checkOptions<ReadOptions>(options, 'read options', ['timeout']);
    const timeout = o.timeout === undefined ? (this.#nonBlocking ? 0 : -1) : checkInteger(o.timeout, 'timeout', 0, 0x7fffffff);
    this.#core.assertOpen();
    if (timeout < 0 && !this.#core.watching && this.#backlog.length === 0) {
      throw invalidArgument('nothing is watched: a blocking read would never return; call addWatch() first');
    }
    const deadline = timeout > 0 ? Date.now() + timeout : 0;
    for (;;) {
      if (this.#backlog.length === 0) {
        const wait = timeout <= 0 ? timeout : Math.max(0, deadline - Date.now());
        this.#backlog = this.#core.convert(this.#core.take(max, wait));
      }
      const events = this.#handOut(max);
      // A batch of only warnings is no answer for a blocking read: wait on.
      if (events.length > 0 || timeout === 0 || (timeout > 0 && Date.now() >= deadline)) return events;
    }
  }

  /** Events from the backlog up to the first error, which is thrown once the events before it are out. */
  #handOut(max: number): Array<FanotifyEvent<PathOf<E>>> {
    const events: Array<FanotifyEvent<PathOf<E>>> = [];
    while (this.#backlog.length > 0 && events.length < max) {
      const next = this.#backlog[0];
      if (next.type === 'error' && events.length > 0) break;
      this.#backlog.shift();
      if (next.type === 'error') throw next.error;
      if (next.type === 'warning') process.emitWarning(next.message, 'FanotifyWarning');
      else events.push(next.event as FanotifyEvent<PathOf<E>>);
    }
    return events;
  }
}
