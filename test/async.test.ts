/**
 * AsyncFanotify: each consumption style on its own, the Promise-returning
 * methods, waitForEvent's error kinds, options.signal, Symbol.asyncDispose
 * and the typed event map. Notification events only (made by this process);
 * permission events are in async-permission.test.ts.
 */
import { execFile } from 'node:child_process';
import { on as eventsOn, once as eventsOnce } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AsyncFanotify, FanotifyError, FanotifyEvent, MaskFlags } from '../lib';
import { reapAll, runChild } from './helpers/child';
import { ensureDist } from './helpers/dist';
import { withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `done` every 5 ms; rejects (naming `what`) after `ms`. */
async function waitUntil(done: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** The rejection of `promise` (fails the test if it resolves). */
async function rejectionOf(promise: Promise<unknown>, ms = 5000): Promise<FanotifyError> {
  const outcome = await withTimeout(
    promise.then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    ),
    ms,
    'a rejection',
  );
  if (outcome.ok) throw new Error(`expected a rejection, got ${String(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(FanotifyError);
  return outcome.error as FanotifyError;
}

/** Calls `fn` and checks that it returned a Promise instead of throwing. */
function noThrow<T>(fn: () => Promise<T>): Promise<T> {
  let result: Promise<T> | undefined;
  expect(() => {
    result = fn();
  }).not.toThrow();
  expect(result).toBeInstanceOf(Promise);
  return result!;
}

function creates(evs: FanotifyEvent[]): string[] {
  return evs.filter((e) => e.isCreate()).map((e) => path.basename(e.path ?? '?'));
}

describeRoot('AsyncFanotify: consumption styles, each on its own', () => {
  let scratch: Scratch;
  const open: AsyncFanotify[] = [];


  /** An instance closed after the test whatever happens. */
  function instance(options?: ConstructorParameters<typeof AsyncFanotify>[0]): AsyncFanotify {
    const afan = new AsyncFanotify(options);
    open.push(afan);
    return afan;
  }

  function makeFiles(dir: string, n: number, prefix = 'f'): string[] {
    const names: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = `${prefix}${i}`;
      fs.writeFileSync(path.join(dir, name), 'x');
      names.push(name);
    }
    return names;
  }

  beforeAll(() => (scratch = mountTmpfs()));
  afterEach(async () => {
    for (const afan of open.splice(0)) await afan.close();
  });
  afterAll(() => {
    reapAll();
    scratch?.cleanup();
  });

  test("'event' listener alone: every event, in order, with full paths", async () => {
    const dir = scratch.freshDir();
    const afan = instance();
    await afan.addWatch(dir, MaskFlags.CREATE | MaskFlags.CLOSE_WRITE);
    const seen: FanotifyEvent[] = [];
    afan.on('event', (ev) => seen.push(ev));
    const names = makeFiles(dir, 5);
    await waitUntil(() => seen.filter((e) => e.isClose()).length >= 5, 5000, 'five CLOSE_WRITE events');
    await sleep(50); // nothing extra trails behind
    expect(seen.every((e) => e instanceof FanotifyEvent)).toBe(true);
    // Notification events share one kernel group, so they keep the kernel's order.
    expect(seen.map((e) => [e.types().join('|'), e.path, e.pid])).toEqual(
      names.flatMap((n) => [
        ['CREATE', path.join(dir, n), process.pid],
        ['CLOSE_WRITE', path.join(dir, n), process.pid],
      ]),
    );
  });

  test('nextEvent() loop gets every event, and a pending nextEvent() resolves null on close', async () => {
    const dir = scratch.freshDir();
    const afan = instance();
    await afan.addWatch(dir, MaskFlags.CREATE);
    const names = makeFiles(dir, 5);
    const got: FanotifyEvent[] = [];
    let closeAt = 0;
    const loop = (async () => {
      let ev: FanotifyEvent | null;
      while ((ev = await afan.nextEvent()) !== null) {
        got.push(ev);
        if (got.length === names.length) {
          // Close from outside while the loop waits in nextEvent().
          setTimeout(() => {
            closeAt = Date.now();
            void afan.close();
          }, 100);
        }
      }
      return Date.now();
    })();
    const endedAt = await withTimeout(loop, 5000, 'the nextEvent() loop to end');
    expect(closeAt).toBeGreaterThan(0);
    expect(endedAt - closeAt).toBeLessThan(1000);
    expect(creates(got)).toEqual(names);
    expect(got.every((e) => e.path === path.join(dir, path.basename(e.path!)))).toBe(true);
    // Once closed it stays null, at once.
    await expect(withTimeout(afan.nextEvent(), 1000, 'nextEvent after close')).resolves.toBeNull();
  });

  test('for await ... of afan gets every event and ends when the instance closes', async () => {
    const dir = scratch.freshDir();
    const afan = instance();
    await afan.addWatch(dir, MaskFlags.CREATE);
    const names = makeFiles(dir, 4);
    const got: FanotifyEvent[] = [];
    const loop = (async () => {
      for await (const ev of afan) {
        got.push(ev);
        if (got.length === names.length) setTimeout(() => void afan.close(), 100);
      }
      return 'ended';
    })();
    await expect(withTimeout(loop, 5000, 'the for-await loop to end')).resolves.toBe('ended');
    expect(creates(got)).toEqual(names);
    // A loop started on a closed instance ends at once.
    const again: FanotifyEvent[] = [];
    await withTimeout(
      (async () => {
        for await (const ev of afan) again.push(ev);
      })(),
      1000,
      'for-await on a closed instance',
    );
    expect(again).toEqual([]);
  });

  test('stream(): an objectMode Readable of events; pipeline into a Writable ends on close', async () => {
    const dir = scratch.freshDir();
    const afan = instance();
    await afan.addWatch(dir, MaskFlags.CREATE);
    const readable = afan.stream();
    expect(readable.readableObjectMode).toBe(true);
    expect(afan.stream()).toBe(readable); // one per instance
    const names = makeFiles(dir, 6);
    const got: unknown[] = [];
    const sink = new Writable({
      objectMode: true,
      write(ev, _enc, cb) {
        got.push(ev);
        if (got.length === names.length) setTimeout(() => void afan.close(), 50);
        cb();
      },
    });
    let ended = false;
    readable.on('end', () => (ended = true));
    await withTimeout(pipeline(readable, sink), 5000, 'the pipeline to finish');
    expect(ended).toBe(true);
    expect(got.every((e) => e instanceof FanotifyEvent)).toBe(true);
    expect(creates(got as FanotifyEvent[])).toEqual(names);
  });

  test("events.on(afan, 'event', { highWaterMark: 4 }) pauses and resumes the instance and loses nothing", async () => {
    const dir = scratch.freshDir();
    const afan = instance();
    await afan.addWatch(dir, MaskFlags.CREATE);
    let emitted = 0;
    afan.on('event', () => emitted++);
    const iterator = eventsOn(afan, 'event', { highWaterMark: 4 });
    // All of them reach the native queue before the loop turns: one batch.
    const names = makeFiles(dir, 40);
    const got: FanotifyEvent[] = [];
    let sawPaused = false;
    let maxBacklog = 0;
    await withTimeout(
      (async () => {
        for await (const [ev] of iterator as AsyncIterableIterator<[FanotifyEvent]>) {
          got.push(ev);
          maxBacklog = Math.max(maxBacklog, emitted - got.length);
          if (afan.isPaused()) sawPaused = true;
          if (got.length === names.length) break;
          await sleep(3); // a slow consumer
        }
      })(),
      10000,
      'forty events through events.on',
    );
    expect(sawPaused).toBe(true);
    // The iterator drained below its low-water mark, so it resumed the instance.
    expect(afan.isPaused()).toBe(false);
    // While paused nothing was emitted: the iterator never buffered much more
    // than its high-water mark (all 40 arrive in one native batch otherwise).
    expect(maxBacklog).toBeLessThanOrEqual(6);
    expect(creates(got)).toEqual(names);
    // Nothing trails behind, and nothing was emitted twice.
    await sleep(100);
    expect(emitted).toBe(names.length);
  });

  test('pause() holds events and resume() delivers all of them', async () => {
    const dir = scratch.freshDir();
    const afan = instance();
    await afan.addWatch(dir, MaskFlags.CREATE);
    const got: FanotifyEvent[] = [];
    afan.on('event', (ev) => got.push(ev));
    expect(afan.pause()).toBe(afan);
    expect(afan.isPaused()).toBe(true);
    const names = makeFiles(dir, 10);
    await sleep(200);
    expect(got).toEqual([]);
    afan.resume();
    expect(afan.isPaused()).toBe(false);
    await waitUntil(() => got.length >= names.length, 5000, 'the held events');
    expect(creates(got)).toEqual(names);
  });

  test('addWatch/removeWatch return Promises that reject (never throw) with FanotifyError, and change no state', async () => {
    const dir = scratch.freshDir();
    const afan = instance();

    expect((await rejectionOf(noThrow(() => afan.addWatch('', MaskFlags.CREATE)))).kind).toBe('InvalidPath');
    const missing = await rejectionOf(noThrow(() => afan.addWatch(path.join(dir, 'missing'), MaskFlags.CREATE)));
    expect(missing.kind).toBe('InvalidPath');
    expect(missing.code).toBe('ENOENT');
    expect((await rejectionOf(noThrow(() => afan.addWatch(42 as unknown as string, MaskFlags.CREATE)))).kind).toMatch(/^Invalid(Path|Argument)$/);
    expect((await rejectionOf(noThrow(() => afan.addWatch(dir, 0)))).kind).toBe('InvalidArgument');
    expect((await rejectionOf(noThrow(() => afan.addWatch(dir, 0x00400000)))).kind).toBe('InvalidArgument'); // an unknown bit
    expect((await rejectionOf(noThrow(() => afan.addWatch(dir, MaskFlags.CREATE, { mark: 'bogus' as 'inode' })))).kind).toBe('InvalidArgument');
    expect((await rejectionOf(noThrow(() => afan.removeWatch(dir)))).kind).toBe('InvalidArgument'); // nothing to remove
    expect((await rejectionOf(noThrow(() => afan.removeWatch('')))).kind).toBe('InvalidPath');

    // None of that placed a mark: nothing arrives.
    fs.writeFileSync(path.join(dir, 'before'), '');
    expect((await rejectionOf(afan.waitForEvent({ timeout: 200 }))).kind).toBe('Timeout');

    // A good watch resolves undefined and events flow.
    await expect(noThrow(() => afan.addWatch(dir, MaskFlags.CREATE))).resolves.toBeUndefined();
    fs.writeFileSync(path.join(dir, 'watched'), '');
    const ev = await afan.waitForEvent({ timeout: 3000 });
    expect(ev.path).toBe(path.join(dir, 'watched'));

    // removeWatch resolves, and then nothing arrives.
    await expect(noThrow(() => afan.removeWatch(dir))).resolves.toBeUndefined();
    fs.writeFileSync(path.join(dir, 'unwatched'), '');
    expect((await rejectionOf(afan.waitForEvent({ timeout: 300 }))).kind).toBe('Timeout');

    await afan.close();
    expect((await rejectionOf(noThrow(() => afan.addWatch(dir, MaskFlags.CREATE)))).kind).toBe('Closed');
    expect((await rejectionOf(noThrow(() => afan.removeWatch(dir)))).kind).toBe('Closed');
  });

  describe('waitForEvent', () => {
    test('resolves with the next event', async () => {
      const dir = scratch.freshDir();
      const afan = instance();
      await afan.addWatch(dir, MaskFlags.CREATE);
      const waiting = afan.waitForEvent({ timeout: 5000 });
      setTimeout(() => fs.writeFileSync(path.join(dir, 'late'), ''), 50);
      const ev = await waiting;
      expect(ev).toBeInstanceOf(FanotifyEvent);
      expect(ev.path).toBe(path.join(dir, 'late'));
    });

    test("timeout rejects with kind 'Timeout' after about that long, and the dead waiter takes no event", async () => {
      const dir = scratch.freshDir();
      const afan = instance();
      await afan.addWatch(dir, MaskFlags.CREATE);
      const t0 = Date.now();
      const err = await rejectionOf(afan.waitForEvent({ timeout: 150 }));
      const elapsed = Date.now() - t0;
      expect(err.kind).toBe('Timeout');
      expect(elapsed).toBeGreaterThanOrEqual(140);
      expect(elapsed).toBeLessThan(2000);
      // The timed-out wait must not swallow the next event.
      fs.writeFileSync(path.join(dir, 'next'), '');
      const ev = await afan.waitForEvent({ timeout: 3000 });
      expect(ev.path).toBe(path.join(dir, 'next'));
    });

    test("abort rejects with kind 'Aborted' (already aborted, and aborted while waiting)", async () => {
      const dir = scratch.freshDir();
      const afan = instance();
      await afan.addWatch(dir, MaskFlags.CREATE);
      expect((await rejectionOf(afan.waitForEvent({ signal: AbortSignal.abort() }))).kind).toBe('Aborted');

      const controller = new AbortController();
      const t0 = Date.now();
      setTimeout(() => controller.abort(), 100);
      const err = await rejectionOf(afan.waitForEvent({ signal: controller.signal, timeout: 5000 }));
      expect(err.kind).toBe('Aborted');
      expect(Date.now() - t0).toBeLessThan(2000);

      // The aborted wait must not swallow the next event.
      fs.writeFileSync(path.join(dir, 'next'), '');
      expect((await afan.waitForEvent({ timeout: 3000 })).path).toBe(path.join(dir, 'next'));
    });

    test("close while waiting rejects with kind 'Closed'; so does waiting on a closed instance", async () => {
      const dir = scratch.freshDir();
      const afan = instance();
      await afan.addWatch(dir, MaskFlags.CREATE);
      const waiting = afan.waitForEvent({ timeout: 5000 });
      setTimeout(() => void afan.close(), 100);
      expect((await rejectionOf(waiting)).kind).toBe('Closed');
      expect((await rejectionOf(afan.waitForEvent({ timeout: 5000 }))).kind).toBe('Closed');
    });

    test('bad options reject with InvalidArgument instead of throwing', async () => {
      const afan = instance();
      expect((await rejectionOf(noThrow(() => afan.waitForEvent({ timeout: -1 })))).kind).toBe('InvalidArgument');
      expect((await rejectionOf(noThrow(() => afan.waitForEvent({ signal: {} as AbortSignal })))).kind).toBe('InvalidArgument');
    });
  });

  test("a throw that escapes every listener (from an 'error' listener) reaches process 'uncaughtException'", async () => {
    // In a child: jest has its own uncaughtException handling.
    ensureDist();
    const dir = scratch.freshDir();
    const code = `
      const { AsyncFanotify, MaskFlags } = require(process.argv[1]);
      process.on('uncaughtException', (e) => { console.log('uncaught: ' + e.message); process.exit(0); });
      (async () => {
        const afan = new AsyncFanotify();
        await afan.addWatch(process.argv[2], MaskFlags.CREATE);
        afan.on('event', () => { throw new Error('from the listener'); });
        afan.on('error', (e) => { throw new Error('from the error listener, after ' + e.message); });
        require('fs').writeFileSync(process.argv[2] + '/x', '');
      })();`;
    const r = await runChild(process.execPath, ['-e', code, path.resolve(__dirname, '../dist'), dir], 10000);
    expect(r.stdout.trim()).toBe('uncaught: from the error listener, after from the listener');
  });

  test("options.signal: aborting closes the instance, emits 'close' once and ends pending consumers", async () => {
    const dir = scratch.freshDir();
    const controller = new AbortController();
    const afan = instance({ signal: controller.signal });
    await afan.addWatch(dir, MaskFlags.CREATE);
    let closes = 0;
    afan.on('close', () => closes++);
    const pending = afan.nextEvent();
    const closed = eventsOnce(afan, 'close');
    setTimeout(() => controller.abort(), 50);
    await withTimeout(closed, 3000, "'close' after abort");
    expect(afan.closed).toBe(true);
    await expect(withTimeout(pending, 1000, 'the pending nextEvent')).resolves.toBeNull();
    await afan.close(); // idempotent: no second 'close'
    expect(closes).toBe(1);

    // Already aborted: closed from the start.
    const early = instance({ signal: AbortSignal.abort() });
    expect(early.closed).toBe(true);
    expect((await rejectionOf(early.addWatch(dir, MaskFlags.CREATE))).kind).toBe('Closed');

    expect(() => new AsyncFanotify({ signal: 'nope' as unknown as AbortSignal })).toThrow(FanotifyError);
  });

  test('Symbol.asyncDispose: `await using` closes the instance at the end of the block, even on a throw', async () => {
    const dir = scratch.freshDir();
    let kept: AsyncFanotify | undefined;
    let closes = 0;
    {
      await using afan = new AsyncFanotify();
      kept = afan;
      afan.on('close', () => closes++);
      await afan.addWatch(dir, MaskFlags.CREATE);
      expect(afan.closed).toBe(false);
    }
    expect(kept.closed).toBe(true);
    expect(closes).toBe(1);

    let thrownFrom: AsyncFanotify | undefined;
    await expect(
      (async () => {
        await using afan = new AsyncFanotify();
        thrownFrom = afan;
        await afan.addWatch(dir, MaskFlags.CREATE);
        throw new Error('inside the block');
      })(),
    ).rejects.toThrow('inside the block');
    expect(thrownFrom!.closed).toBe(true);
    await expect(thrownFrom![Symbol.asyncDispose]()).resolves.toBeUndefined(); // twice is fine
  });

  test('typed event map: listener parameters are typed (checked by tsc; the @ts-expect-error lines must be errors)', async () => {
    const afan = instance();
    const masks: number[] = [];
    afan.on('event', (ev) => {
      const typed: FanotifyEvent = ev;
      masks.push(typed.mask);
    });
    afan.on('permission', (ev) => ev.allow());
    afan.on('overflow', (ev) => masks.push(ev.mask));
    afan.on('error', (err) => masks.push(err.message.length));
    afan.on('warning', (message) => masks.push(message.length));
    afan.on('close', () => masks.push(0));
    // @ts-expect-error an 'event' listener receives a FanotifyEvent, not a string
    afan.on('event', (ev: string) => masks.push(ev.length));
    // @ts-expect-error FanotifyEvent has no such property
    afan.on('event', (ev) => masks.push(ev.noSuchProperty));
    // @ts-expect-error 'warning' carries a string, not a FanotifyEvent
    afan.once('warning', (ev: FanotifyEvent) => masks.push(ev.mask));
    expect(afan.listenerCount('event')).toBe(3);
    await afan.close();
    expect(masks).toEqual([0]);
  });

  test('typed event map, checked by the compiler from outside: good listeners compile, wrong ones do not', async () => {
    const root = path.resolve(__dirname, '..');
    const tsc = path.join(root, 'node_modules', '.bin', 'tsc');
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-types-'));
    try {
      const lib = JSON.stringify(path.join(root, 'lib'));
      const header = `import { AsyncFanotify, FanotifyEvent } from ${lib};\nconst afan = new AsyncFanotify();\n`;
      const cases: Record<string, string> = {
        good:
          "afan.on('event', (ev) => { const e: FanotifyEvent = ev; return e.mask; });\n" +
          "afan.on('overflow', (ev) => ev.isOverflow());\nafan.on('warning', (m) => m.toUpperCase());\n" +
          "afan.on('error', (e) => e.message);\nafan.on('close', () => undefined);\n",
        wrongParameter: "afan.on('event', (ev: string) => ev.length);\n",
        unknownEvent: "afan.on('evnt', () => undefined);\n",
        wrongProperty: "afan.on('permission', (ev) => ev.noSuchProperty);\n",
      };
      for (const [name, body] of Object.entries(cases)) fs.writeFileSync(path.join(work, `${name}.ts`), header + body);
      const check = (file: string) =>
        new Promise<string>((resolve) => {
          execFile(
            tsc,
            ['--noEmit', '--pretty', 'false', '--strict', '--skipLibCheck', '--target', 'ES2022', '--module', 'commonjs', '--lib', 'ES2022,ESNext.Disposable',
              '--typeRoots', path.join(root, 'node_modules', '@types'), '--types', 'node', path.join(work, file)],
            { cwd: work, timeout: 60000 },
            (_err, stdout, stderr) => resolve(String(stdout) + String(stderr)),
          );
        });
      const results = await Promise.all(Object.keys(cases).map(async (name) => [name, await check(`${name}.ts`)] as const));
      const errorsIn = (output: string, name: string) =>
        output.split('\n').filter((line) => line.includes(`${name}.ts(`) && line.includes('error TS'));
      for (const [name, output] of results) {
        const lines = errorsIn(output, name);
        if (name === 'good') {
          expect(lines).toEqual([]);
        } else {
          // An error on the listener line (3), and none on the import (1-2).
          expect(lines.length).toBeGreaterThan(0);
          expect(lines.every((line) => line.includes(`${name}.ts(3,`))).toBe(true);
        }
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
