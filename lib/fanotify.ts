import { FAN, KNOWN_INIT_FLAGS } from './constants';
import { Core, type Delivery } from './core';
import { invalidArgument } from './errors';
import { FanotifyEvent } from './event';
import { readOptions, checkBufferSize } from './options';
import type { FanotifyOptions, Response, WatchOptions } from './types';
import { checkBits, checkInteger, checkOptions } from './validate';

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
 */
export class Fanotify implements Disposable {
  readonly #core: Core;
  readonly #nonBlocking: boolean;
  #backlog: Delivery[] = [];

  constructor(options?: FanotifyOptions);
  /** @internal */
  constructor(options: FanotifyOptions | undefined, token: typeof EXACT, flags: number);
  constructor(options?: FanotifyOptions, token?: typeof EXACT, flags?: number) {
    const settings = readOptions(options);
    const exact = token === EXACT ? flags : undefined;
    this.#core = new Core(settings, exact);
    this.#nonBlocking = ((exact ?? settings.flags) & FAN.FAN_NONBLOCK) !== 0;
  }

  /** Exactly one kernel group with exactly these `fanotify_init` flags. */
  static withFlags(flags: number, options?: FanotifyOptions): Fanotify {
    const exact = checkBits(flags, 'flags', KNOWN_INIT_FLAGS, true);
    if (options && typeof options === 'object' && 'flags' in options && options.flags !== undefined) {
      throw invalidArgument('withFlags(flags, options): give the flags once, not also in options.flags');
    }
    return new Fanotify(options, EXACT, exact);
  }

  /** True once close() was called (or the instance was garbage-collected). */
  get closed(): boolean {
    return this.#core.closed;
  }

  /**
   * Starts reporting `mask` events (MaskFlags) for `path`. Creates the kernel
   * groups the mask needs on first use. Throws FanotifyError on bad input
   * (before any system call) and on refusal by the kernel.
   */
  addWatch(path: string, mask: number, options?: WatchOptions): void {
    this.#core.addWatch(path, mask, options);
  }

  /**
   * Stops reporting `mask` (default: everything this instance marked there).
   * Give the same `mark`, `ignore` and `recursive` options as addWatch did.
   */
  removeWatch(path: string, mask?: number, options?: WatchOptions): void {
    this.#core.removeWatch(path, mask, options);
  }

  /** The next event; null only when non-blocking (or timed out) and nothing is queued. */
  readEvent(options?: ReadOptions): FanotifyEvent | null {
    return this.#read(1, options)[0] ?? null;
  }

  /** Every event available now; waits for the first unless non-blocking. */
  readEvents(options?: ReadOptions): FanotifyEvent[] {
    return this.#read(this.#core.settings.queueLimit, options);
  }

  /** Iterates events; ends when the instance is closed (or, non-blocking, when none is queued). */
  *events(): IterableIterator<FanotifyEvent> {
    while (!this.closed) {
      const event = this.readEvent();
      if (event === null) return;
      yield event;
    }
  }

  /** Allows the access a permission event asks about. A second answer is a no-op. */
  allow(event: FanotifyEvent): void {
    this.#core.respond(event, { allow: true });
  }

  /** Denies it: the process's call fails with EPERM. A second answer is a no-op. */
  deny(event: FanotifyEvent): void {
    this.#core.respond(event, { allow: false });
  }

  /** Answers with audit and errno options (see Response). */
  respond(event: FanotifyEvent, response: Response): void {
    this.#core.respond(event, response);
  }

  /** Bytes per read(2) of the kernel queue, from 4096 to 16 MiB. */
  setBufferSize(bytes: number): void {
    this.#core.setBufferSize(checkBufferSize(bytes));
  }

  /** Closes every group; pending permission events get `defaultResponse`. Idempotent. */
  close(): void {
    this.#backlog = [];
    this.#core.close();
  }

  /** Same as close(), for `using fan = new Fanotify()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #read(max: number, options: ReadOptions | undefined): FanotifyEvent[] {
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
  #handOut(max: number): FanotifyEvent[] {
    const events: FanotifyEvent[] = [];
    while (this.#backlog.length > 0 && events.length < max) {
      const next = this.#backlog[0];
      if (next.type === 'error' && events.length > 0) break;
      this.#backlog.shift();
      if (next.type === 'error') throw next.error;
      if (next.type === 'warning') process.emitWarning(next.message, 'FanotifyWarning');
      else events.push(next.event);
    }
    return events;
  }
}
