/**
 * Backpressure and overflow with AsyncFanotify.
 *
 * - A slow stream consumer: the library stops reading the kernel queue once
 *   `queueLimit` events wait in memory, so nothing is lost while the backlog
 *   fits the kernel's queue (16384 by default), and the heap holds a bounded
 *   number of events instead of all of them.
 * - Overflow in notification mode: paused, the library stops reading at
 *   `queueLimit`; with a small kernel queue the kernel drops events and
 *   reports one overflow; events flow again after.
 * - Overflow in permission mode: accesses went through unchecked, which must
 *   be reported as an 'error', not only as an 'overflow'.
 *
 * The small kernel queues come from lowering fs.fanotify.max_queued_events
 * while the group is created (the kernel copies it at fanotify_init) and
 * restoring it at once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { AsyncFanotify, FanotifyError, MaskFlags, type AsyncFanotifyOptions, type FanotifyEvent } from '../lib';
import { reapAll, startNode, type ChildResult, type RunningChild } from './helpers/child';
import { withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';

const SYSCTL = '/proc/sys/fs/fanotify/max_queued_events';
/** The kernel's default queue size (fs.fanotify.max_queued_events). */
const KERNEL_DEFAULT_QUEUE = 16384;

/** Creates argv[2] files named f0, f1, ... in argv[1]. */
const CREATE_FILES = `
const fs = require('fs'), path = require('path');
const dir = process.argv[1], n = Number(process.argv[2]);
for (let i = 0; i < n; i++) fs.closeSync(fs.openSync(path.join(dir, 'f' + i), 'w'));
`;

/** Reads the file named by argv[1]; prints 'ok' or the error code. */
const READ_FILE = `
const fs = require('fs');
try { fs.readFileSync(process.argv[1]); console.log('ok'); }
catch (e) { console.log(e.code || String(e)); }
`;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitUntil(done: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

function finished(child: RunningChild, ms = 10000, what = 'the child'): Promise<ChildResult> {
  return withTimeout(child.done, ms, what);
}

function readSysctl(): number {
  return Number(fs.readFileSync(SYSCTL, 'utf8').trim());
}

function writeSysctl(value: number): void {
  fs.writeFileSync(SYSCTL, `${value}\n`);
}

/** A full garbage collection (V8's gc, exposed at run time), then the heap in use. */
const collectGarbage: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();

function heapAfterGc(): number {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

describeRoot('AsyncFanotify backpressure and overflow', () => {
  let scratch: Scratch;
  let original: number;
  let counter = 0;
  const open: AsyncFanotify[] = [];


  function instance(options?: AsyncFanotifyOptions): AsyncFanotify {
    const afan = new AsyncFanotify(options);
    open.push(afan);
    return afan;
  }

  /** Places the first mark (which creates the kernel group) while the kernel queue size is `size`. */
  async function watchWithKernelQueue(afan: AsyncFanotify, size: number, target: string, mask: number): Promise<void> {
    writeSysctl(size);
    try {
      await afan.addWatch(target, mask);
    } finally {
      writeSysctl(original);
    }
    expect(readSysctl()).toBe(original);
  }

  beforeAll(() => {
    original = readSysctl();
    // Another suite lowering it at this very moment would hand us its
    // temporary value; never "restore" the machine to a tiny queue.
    if (original < 1024) original = KERNEL_DEFAULT_QUEUE;
    scratch = mountTmpfs();
  });
  afterEach(async () => {
    for (const afan of open.splice(0)) await afan.close();
    reapAll();
  });
  afterAll(() => {
    reapAll();
    if (original !== undefined && readSysctl() !== original) writeSysctl(original);
    scratch?.cleanup();
  });

  test(
    'a slow stream consumer: nothing lost below the kernel queue limit, and the heap stays bounded',
    async () => {
      // 10000 events: well below the kernel's 16384, so if the library stops
      // reading (queueLimit 256) the kernel holds the backlog without loss.
      const N = 10000;
      expect(readSysctl()).toBeGreaterThanOrEqual(KERNEL_DEFAULT_QUEUE);
      const dir = scratch.freshDir();
      const afan = instance({ queueLimit: 256, bufferSize: 4096 });
      await afan.addWatch(dir, MaskFlags.CREATE);
      const readable = afan.stream();

      const heap0 = heapAfterGc();
      let peakHeap = 0;
      let count = 0;
      let overflows = 0;
      const outOfOrder: string[] = [];
      const sink = new Writable({
        objectMode: true,
        highWaterMark: 1,
        write(ev: FanotifyEvent, _enc, done) {
          if (ev.isOverflow()) {
            overflows++;
          } else {
            if (ev.path !== path.join(dir, `f${count}`) && outOfOrder.length < 5) outOfOrder.push(`${count}: ${ev.path}`);
            count++;
          }
          if (count % 500 === 0) {
            peakHeap = Math.max(peakHeap, heapAfterGc() - heap0);
          }
          setTimeout(done, 1); // about 1 ms per event: far slower than the generator
        },
      });
      const flowing = pipeline(readable, sink);
      const generator = startNode(CREATE_FILES, [dir, String(N)], 60000);
      const generated = await finished(generator, 60000, 'the generator');
      expect(generated).toMatchObject({ code: 0, stderr: '' });
      const generatorDoneAt = count;

      // Close once everything arrived, or once nothing arrives for 3 s.
      let last = -1;
      while (count < N && count !== last) {
        last = count;
        await sleep(3000);
      }
      await afan.close();
      await withTimeout(flowing, 10000, 'the pipeline to end');

      expect(overflows).toBe(0);
      expect(count).toBe(N);
      expect(outOfOrder).toEqual([]);
      // The consumer really was slow: most events were still waiting (in
      // the kernel, if the library bounds itself) when the generator ended.
      expect(generatorDoneAt).toBeLessThan(N / 2);

      // What holding all N events would cost, measured the same way: keep
      // them in an array this time.
      const calibration = instance();
      const dir2 = scratch.freshDir();
      await calibration.addWatch(dir2, MaskFlags.CREATE);
      const heap1 = heapAfterGc();
      const kept: FanotifyEvent[] = [];
      const generator2 = startNode(CREATE_FILES, [dir2, String(N)], 60000);
      await withTimeout(
        (async () => {
          while (kept.length < N) {
            const ev = await calibration.nextEvent();
            if (ev === null) break;
            kept.push(ev);
          }
        })(),
        30000,
        'the calibration events',
      );
      await finished(generator2);
      const holdAll = heapAfterGc() - heap1;
      expect(kept).toHaveLength(N);

      // Bounded: at most queueLimit (256) events wait in the pull queue, plus
      // one native batch (the native queue is bounded by queueLimit too, and a
      // 4096-byte read adds under 100 events) and the stream's buffer (64):
      // some 600 events, about 6% of holding all N. Reading without bound
      // holds nearly all of them at the peak, since the generator is more than
      // 10x faster than the consumer: measured here, the peak is about 1.05x
      // holdAll with queueLimit 1e6, and 0.13-0.25x holdAll as configured
      // (jest's own heap adds noise). Half of holdAll sits between the two
      // with a factor of two on each side.
      expect(holdAll).toBeGreaterThan(N * 100); // the calibration saw real events (about 250 bytes each)
      expect(peakHeap).toBeLessThan(0.5 * holdAll);
    },
    120000,
  );

  test('notification overflow: paused, the library stops reading; the kernel drops events and reports one overflow; events flow again', async () => {
    // A kernel queue of 1024: a reader that kept reading would keep up with
    // the generator (measured: 3000 creates, no overflow, with queueLimit
    // 1e6); one that stops at queueLimit while paused cannot.
    const KERNEL_QUEUE = 1024;
    const QUEUE_LIMIT = 16;
    const OPERATIONS = 3000;
    const dir = scratch.freshDir();
    const afan = instance({ queueLimit: QUEUE_LIMIT, bufferSize: 4096 });
    await watchWithKernelQueue(afan, KERNEL_QUEUE, dir, MaskFlags.CREATE);
    const events: FanotifyEvent[] = [];
    const overflows: FanotifyEvent[] = [];
    const errors: Error[] = [];
    afan.on('event', (ev) => void events.push(ev));
    afan.on('overflow', (ev) => void overflows.push(ev));
    afan.on('error', (err) => void errors.push(err));

    afan.pause();
    const generator = startNode(CREATE_FILES, [dir, String(OPERATIONS)], 30000);
    expect(await finished(generator)).toMatchObject({ code: 0, stderr: '' });
    await sleep(200);
    expect(events).toEqual([]); // paused: nothing emitted

    afan.resume();
    await waitUntil(() => overflows.length > 0, 5000, "'overflow'");
    await sleep(300);
    expect(overflows).toHaveLength(1);
    expect(overflows[0].isOverflow()).toBe(true);
    expect(overflows[0].permissionOverflow).toBe(false);
    expect(events).toContain(overflows[0]); // also emitted as 'event'
    expect(errors).toEqual([]); // a notification overflow is not an error

    // What came through is the first k creates, in order, then the overflow:
    // the kernel's full queue, plus what the library held while paused
    // (queueLimit and at most one 4096-byte read, under 128 events).
    const creates = events.filter((e) => e.isCreate());
    expect(creates.length).toBeGreaterThanOrEqual(KERNEL_QUEUE);
    expect(creates.length).toBeLessThanOrEqual(KERNEL_QUEUE + QUEUE_LIMIT + 128);
    expect(creates.map((e) => e.path)).toEqual(creates.map((_, i) => path.join(dir, `f${i}`)));
    expect(events.indexOf(overflows[0])).toBe(events.length - 1);

    // And the next events flow again.
    const after = path.join(dir, 'after');
    fs.writeFileSync(after, '');
    await waitUntil(() => events.some((e) => e.path === after), 3000, 'an event after the overflow');
    expect(overflows).toHaveLength(1);
  });

  test("permission overflow: the kernel let accesses through unchecked, reported as an 'error' (permissionOverflow)", async () => {
    // With a kernel queue of 0 every permission event overflows at once: the
    // kernel allows the access and queues an overflow event instead. That is
    // a deterministic permission-queue overflow; a real one (more blocked
    // accessors than the queue holds) behaves the same per event.
    const file = scratch.file(`guarded-${++counter}.txt`);
    fs.writeFileSync(file, 'contents');
    const afan = instance({ permissionTimeout: 20000, defaultResponse: 'deny' });
    await watchWithKernelQueue(afan, 0, file, MaskFlags.OPEN_PERM);
    const permissions: FanotifyEvent[] = [];
    const overflows: FanotifyEvent[] = [];
    const errors: Error[] = [];
    afan.on('permission', (ev) => {
      permissions.push(ev);
      ev.deny();
    });
    afan.on('overflow', (ev) => void overflows.push(ev));
    afan.on('error', (err) => void errors.push(err));

    const child = startNode(READ_FILE, [file], 30000);
    const r = await finished(child);
    // Nobody was asked: the listener denies everything, yet the read worked.
    expect(r.stdout.trim()).toBe('ok');
    expect(permissions).toEqual([]);

    await waitUntil(() => errors.length > 0 && overflows.length > 0, 3000, "'error' and 'overflow'");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(FanotifyError);
    expect((errors[0] as FanotifyError).kind).toBe('LimitReached');
    expect(overflows).toHaveLength(1);
    expect(overflows[0].isOverflow()).toBe(true);
    expect(overflows[0].permissionOverflow).toBe(true);
  });
});
