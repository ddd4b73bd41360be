import { AsyncResource } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { Core, type Delivery } from './core';
import type { NativeBatch } from './native';
import { FanotifyError } from './errors';
import { FanotifyEvent } from './event';
import { readOptions } from './options';
import type { AllowOptions, DenyOptions, Encoding, FanotifyOptions, PathOf, Response, WatchOptions } from './types';
import { answerFor, checkInteger, checkOptions, checkRespondArgs, checkSignal } from './validate';

export interface AsyncFanotifyOptions<E extends Encoding = 'utf8'> extends FanotifyOptions<E> {
  /** Closes the instance when aborted. */
  signal?: AbortSignal;
}

export interface WaitOptions {
  signal?: AbortSignal;
  /** Milliseconds; rejects with kind 'Timeout' after that. */
  timeout?: number;
}

/** The typed event map of AsyncFanotify; `P` is the type of event paths (Buffer with encoding: 'buffer'). */
export interface AsyncFanotifyEvents<P extends string | Buffer = string> {
  /** Every event, permission and overflow events included. */
  event: [event: FanotifyEvent<P>];
  /** Permission events (also emitted as 'event'): answer with ev.allow() / ev.deny(). */
  permission: [event: FanotifyEvent<P>];
  /** The kernel queue overflowed and events were lost (also emitted as 'event'). */
  overflow: [event: FanotifyEvent<P>];
  /** Non-fatal: a listener failed, the reader hit EMFILE, or a permission queue overflowed. */
  error: [error: Error];
  /** A permission event was answered by its deadline (permissionTimeout). */
  warning: [message: string];
  close: [];
}

interface Waiter<T> {
  resolve(event: T): void;
  /** The instance closed while waiting. */
  closed(): void;
}

/**
 * The asynchronous API. A native thread reads the kernel queue and wakes the
 * event loop through a libuv async handle; nothing here blocks the loop.
 *
 * How the consumption styles combine:
 * - listeners ('event', 'permission', 'overflow') get every event while attached;
 * - nextEvent(), waitForEvent(), `for await` and stream() share one queue: each
 *   event goes to exactly one of them. Events are queued for them when there
 *   is no listener, or once any of them has been used;
 * - the queue is bounded by `queueLimit`: when full, the native reader stops
 *   reading and the kernel keeps the backlog (it reports an overflow if that
 *   fills too), so memory never grows without bound.
 *
 * Listeners run in the async context the instance was created in (so an
 * AsyncLocalStorage store set around `new AsyncFanotify()` is theirs), as
 * with fs.watch and sockets; a promise from nextEvent()/waitForEvent()
 * continues in the context of whoever awaits it.
 */
export class AsyncFanotify<E extends Encoding = 'utf8'> extends EventEmitter<AsyncFanotifyEvents<PathOf<E>>> implements AsyncDisposable {
  readonly #core: Core;
  readonly #queue: FanotifyEvent<PathOf<E>>[] = [];
  readonly #waiters: Waiter<FanotifyEvent<PathOf<E>>>[] = [];
  #held: Delivery[] = [];
  #pulling = false;
  #paused = false;
  #delivering = true;
  #refed = false;
  #wantRef = true;
  #stream: Readable | undefined;
  #closing: Promise<void> | undefined;
  #signal: AbortSignal | undefined;
  readonly #onAbort = () => void this.close();
  /** The creator's async context: every listener call runs in it. */
  readonly #context = new AsyncResource('Fanotify');

  constructor(options?: AsyncFanotifyOptions<E>) {
    const rawSignal = options && typeof options === 'object' ? options.signal : undefined;
    const signal = rawSignal === undefined ? undefined : checkSignal(rawSignal, 'options.signal');
    const settings = readOptions(options, ['signal']);
    super();
    this.#core = new Core(settings);
    // The native callback comes with no async context of its own.
    this.#core.startAsync((batch) => this.#context.runInAsyncScope(this.#receive, this, batch));
    // No watch yet: do not hold the process open (see #updateRef).
    this.#core.setRef(false);
    if (signal) {
      this.#signal = signal;
      if (signal.aborted) void this.close();
      else signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    // A listener added after events were queued for nobody gets those first.
    (this as EventEmitter).on('newListener', (name: string | symbol) => {
      if ((name === 'event' || name === 'permission') && !this.#pulling && this.#queue.length > 0) {
        queueMicrotask(() => this.#context.runInAsyncScope(this.#flushQueueToListeners, this));
      }
    });
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#core.closed;
  }

  /**
   * Starts reporting `mask` events (MaskFlags) for `path` (a string, a
   * file: URL, or a Buffer of UTF-8); rejects with a
   * FanotifyError on bad input or refusal by the kernel. The instance holds
   * the process open while it has a watch (see unref()).
   */
  async addWatch(path: string | Buffer | URL, mask: number, options?: WatchOptions): Promise<void> {
    await this.#core.addWatch(path, mask, options, true);
    this.#updateRef();
  }

  /**
   * Stops reporting `mask` (default: everything this instance marked there).
   * Give the same `mark`, `ignore` and `recursive` options as addWatch did.
   */
  async removeWatch(path: string | Buffer | URL, mask?: number, options?: WatchOptions): Promise<void> {
    this.#core.removeWatch(path, mask, options);
    this.#updateRef();
  }

  /** The next event, or null once the instance is closed. */
  nextEvent(): Promise<FanotifyEvent<PathOf<E>> | null> {
    this.#pulling = true;
    const ready = this.#shift();
    if (ready) return Promise.resolve(ready);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push({ resolve, closed: () => resolve(null) }));
  }

  /** The next event; rejects with kind 'Timeout', 'Aborted' or 'Closed'. */
  waitForEvent(options?: WaitOptions): Promise<FanotifyEvent<PathOf<E>>> {
    let timeout: number | undefined;
    let signal: AbortSignal | undefined;
    try {
      const o = checkOptions<WaitOptions>(options, 'waitForEvent options', ['signal', 'timeout']);
      if (o.timeout !== undefined) timeout = checkInteger(o.timeout, 'timeout', 0, 0x7fffffff);
      if (o.signal !== undefined) signal = checkSignal(o.signal, 'signal');
    } catch (err) {
      return Promise.reject(err);
    }
    this.#pulling = true;
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    const ready = this.#shift();
    if (ready) return Promise.resolve(ready);
    if (this.closed) return Promise.reject(new FanotifyError('Closed', 'the instance closed while waiting for an event'));

    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
      };
      const onAbort = () => {
        cleanup();
        reject(abortedError(signal!));
      };
      const waiter: Waiter<FanotifyEvent<PathOf<E>>> = {
        resolve: (event) => {
          cleanup();
          resolve(event);
        },
        closed: () => {
          cleanup();
          reject(new FanotifyError('Closed', 'the instance closed while waiting for an event'));
        },
      };
      this.#waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(new FanotifyError('Timeout', `no event within ${timeout} ms`));
        }, timeout);
      }
    });
  }

  /** `for await (const ev of afan)`: the pull queue, ending when the instance closes. */
  async *[Symbol.asyncIterator](): AsyncIterator<FanotifyEvent<PathOf<E>>> {
    for (;;) {
      const event = await this.nextEvent();
      if (event === null) return;
      yield event;
    }
  }

  /** An objectMode Readable of events; it ends when the instance closes. One per instance. */
  stream(): Readable {
    if (!this.#stream) {
      this.#pulling = true;
      const stream = new Readable({
        objectMode: true,
        highWaterMark: 64,
        read: () => {
          void this.nextEvent().then((event) => {
            if (!stream.destroyed) stream.push(event);
          });
        },
      });
      this.#stream = stream;
    }
    return this.#stream;
  }

  /** Stops emitting and reading; the kernel holds what arrives meanwhile. */
  pause(): this {
    this.#paused = true;
    this.#updateDelivery();
    return this;
  }

  resume(): this {
    if (!this.#paused) return this;
    this.#paused = false;
    // Held events go out on the next tick, as Readable.resume() does: callers
    // such as events.on() resume before they are ready to be re-entered.
    process.nextTick(() => this.#context.runInAsyncScope(this.#releaseHeld, this));
    return this;
  }

  #releaseHeld(): void {
    if (this.#paused || this.closed) return;
    const held = this.#held;
    this.#held = [];
    for (let i = 0; i < held.length; i++) {
      if (this.#paused) {
        this.#held = held.slice(i).concat(this.#held);
        break;
      }
      this.#dispatch(held[i]);
    }
    this.#updateDelivery();
  }

  /** True between pause() and resume(). */
  isPaused(): boolean {
    return this.#paused;
  }

  /** Lets the process exit while this instance is open (like timer.unref()). */
  unref(): this {
    this.#wantRef = false;
    this.#updateRef();
    return this;
  }

  /** Undoes unref(): the instance holds the process open again while it watches. */
  ref(): this {
    this.#wantRef = true;
    this.#updateRef();
    return this;
  }

  /** Allows the access a permission event asks about (options as ev.allow). A second answer is a no-op. */
  allow(event: FanotifyEvent<PathOf<E>>, options?: AllowOptions): void {
    this.#core.respond(event, answerFor(true, Array.prototype.slice.call(arguments, 1)));
  }

  /** Denies it: the process's call fails with EPERM, or `errno` (options as ev.deny). A second answer is a no-op. */
  deny(event: FanotifyEvent<PathOf<E>>, options?: DenyOptions): void {
    this.#core.respond(event, answerFor(false, Array.prototype.slice.call(arguments, 1)));
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
  async clearCache(path?: string | Buffer | URL): Promise<void> {
    this.#core.clearCache(path);
  }

  /** Answers with audit, errno and cache options (see Response). */
  respond(event: FanotifyEvent<PathOf<E>>, response: Response): void {
    checkRespondArgs(arguments.length);
    this.#core.respond(event, response);
  }

  /**
   * Closes the groups, ends every consumer, emits 'close'. Permission events
   * still pending, read or still in the kernel queue, get defaultResponse
   * before this returns (the promise waits for the fds to be closed).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#signal?.removeEventListener('abort', this.#onAbort);
    // Pending permission events are answered now; the kernel's teardown of
    // the groups (up to tens of ms) happens off this thread.
    const released = this.#core.closeAsync();
    this.#queue.length = 0;
    this.#held = [];
    for (const waiter of this.#waiters.splice(0)) waiter.closed();
    this.#stream?.push(null);
    await released;
    this.emit('close');
  }

  /** Same as close(), for `await using afan = new AsyncFanotify()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #receive(batch: NativeBatch): void {
    for (const delivery of this.#core.convert(batch)) {
      if (this.#paused) this.#held.push(delivery);
      else this.#dispatch(delivery);
    }
    this.#updateDelivery();
  }

  #dispatch(delivery: Delivery): void {
    switch (delivery.type) {
      case 'warning':
        if (this.listenerCount('warning') > 0) this.emit('warning', delivery.message);
        else process.emitWarning(delivery.message, 'FanotifyWarning');
        return;
      case 'error':
        this.#reportError(delivery.error);
        if (delivery.event) this.#dispatchEvent(delivery.event as FanotifyEvent<PathOf<E>>);
        return;
      case 'event':
        this.#dispatchEvent(delivery.event as FanotifyEvent<PathOf<E>>);
    }
  }

  #dispatchEvent(event: FanotifyEvent<PathOf<E>>): void {
    let heard = false;
    if (event.isOverflow()) heard = this.#callListeners('overflow', event) || heard;
    if (event.isPermission()) heard = this.#callListeners('permission', event) || heard;
    heard = this.#callListeners('event', event) || heard;
    if (!heard || this.#pulling) this.#push(event);
  }

  /**
   * Calls listeners one by one so that a throwing listener, or an async one
   * whose promise rejects, answers the permission event at once (rule 3)
   * instead of leaving it to its deadline.
   */
  #callListeners(name: 'event' | 'permission' | 'overflow', event: FanotifyEvent<PathOf<E>>): boolean {
    if (this.listenerCount(name) === 0) return false;
    const listeners = this.rawListeners(name) as Array<(event: FanotifyEvent<PathOf<E>>) => unknown>;
    for (const listener of listeners) {
      try {
        const result = listener.call(this, event);
        if (result && typeof (result as PromiseLike<unknown>).then === 'function') {
          (result as PromiseLike<unknown>).then(undefined, (err: unknown) => this.#listenerFailed(event, err));
        }
      } catch (err) {
        this.#listenerFailed(event, err);
      }
    }
    return true;
  }

  #listenerFailed(event: FanotifyEvent<PathOf<E>>, err: unknown): void {
    if (event.isPermission() && !this.closed) {
      this.#core.respond(event, { allow: this.#core.settings.defaultResponse === 'allow' });
    }
    this.#reportError(err instanceof Error ? err : new Error(String(err)));
  }

  /** 'error' is a report, never fatal: with no listener it becomes a process warning. */
  #reportError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else process.emitWarning(error);
  }

  #push(event: FanotifyEvent<PathOf<E>>): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(event);
    else this.#queue.push(event);
  }

  #shift(): FanotifyEvent<PathOf<E>> | undefined {
    const event = this.#queue.shift();
    if (event) this.#updateDelivery();
    return event;
  }

  #flushQueueToListeners(): void {
    if (this.#pulling) return;
    for (const event of this.#queue.splice(0)) this.#dispatchEvent(event);
    this.#updateDelivery();
  }

  /** Native delivery runs unless paused or the pull queue is full (backpressure). */
  #updateDelivery(): void {
    if (this.closed) return;
    const limit = this.#core.settings.queueLimit;
    const full = this.#queue.length >= limit;
    const roomAgain = this.#queue.length <= limit / 2;
    const on = !this.#paused && (this.#delivering ? !full : roomAgain);
    if (on !== this.#delivering) {
      this.#delivering = on;
      this.#core.setDelivery(on);
    }
  }

  #updateRef(): void {
    if (this.closed) return;
    const on = this.#wantRef && this.#core.watching;
    if (on !== this.#refed) {
      this.#refed = on;
      this.#core.setRef(on);
    }
  }
}

function abortedError(signal: AbortSignal): FanotifyError {
  return new FanotifyError('Aborted', 'the wait was aborted', { cause: signal.reason });
}
