/**
 * AbortSignals are recognised by their shape, as Node's own APIs do: a
 * signal from another realm (a vm context) or another copy of the class (a
 * polyfill) works; something that is not a signal is InvalidArgument.
 */
import * as vm from 'node:vm';
import { AsyncFanotify, FanotifyError } from '../lib';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

/** A signal made in another realm: not an instance of this realm's AbortSignal. */
function foreignSignal(): { signal: AbortSignal; abort(): void } {
  const made = vm.runInNewContext(`
    const listeners = new Set();
    const signal = {
      aborted: false,
      reason: undefined,
      addEventListener(type, fn) { if (type === 'abort') listeners.add(fn); },
      removeEventListener(type, fn) { listeners.delete(fn); },
    };
    ({ signal, abort() { signal.aborted = true; signal.reason = new Error('stop'); for (const fn of listeners) fn(); } });
  `);
  expect(made.signal instanceof AbortSignal).toBe(false);
  return made;
}

/** A polyfill's signal: an EventTarget subclass, not this realm's AbortSignal class. */
class PolyfillSignal extends EventTarget {
  aborted = false;
  reason: unknown = undefined;
  abort(): void {
    this.aborted = true;
    this.dispatchEvent(new Event('abort'));
  }
}

describe('AbortSignal by shape', () => {
  test('waitForEvent({ signal }) takes a signal from another realm and rejects Aborted when it aborts', async () => {
    const afan = new AsyncFanotify();
    try {
      const foreign = foreignSignal();
      const wait = afan.waitForEvent({ signal: foreign.signal, timeout: 5000 });
      foreign.abort();
      await expect(wait).rejects.toMatchObject({ kind: 'Aborted' });

      const poly = new PolyfillSignal();
      const wait2 = afan.waitForEvent({ signal: poly as Any, timeout: 5000 });
      poly.abort();
      await expect(wait2).rejects.toMatchObject({ kind: 'Aborted' });
    } finally {
      await afan.close();
    }
  });

  test('new AsyncFanotify({ signal }) with a foreign signal closes when it aborts', async () => {
    const foreign = foreignSignal();
    const afan = new AsyncFanotify({ signal: foreign.signal });
    const closed = new Promise<void>((resolve) => afan.once('close', resolve));
    foreign.abort();
    await closed;
    expect(afan.closed).toBe(true);
  });

  test.each<[string, unknown]>([
    ['a plain object', {}],
    ['aborted not a boolean', { aborted: 'no', addEventListener() {}, removeEventListener() {} }],
    ['no addEventListener', { aborted: false, removeEventListener() {} }],
    ['null', null],
    ['a string', 'signal'],
  ])('%s is not a signal: InvalidArgument', async (_name, signal) => {
    let err: unknown;
    try {
      new AsyncFanotify({ signal: signal as Any });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FanotifyError);
    expect((err as FanotifyError).kind).toBe('InvalidArgument');
    const afan = new AsyncFanotify();
    try {
      await expect(afan.waitForEvent({ signal: signal as Any, timeout: 10 })).rejects.toMatchObject({ kind: 'InvalidArgument' });
    } finally {
      await afan.close();
    }
  });
});
