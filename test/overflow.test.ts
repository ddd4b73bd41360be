/**
 * Kernel queue overflow: when nobody reads, the library's bounded queue
 * (options.queueLimit) makes the reader thread stop reading, the kernel queue
 * fills up, and the kernel drops events and queues ONE overflow event. The
 * test lowers fs.fanotify.max_queued_events while the group is created (the
 * kernel copies it into the group at fanotify_init) so that takes a few
 * hundred events instead of 16384, and restores it at once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Fanotify, FanotifyEvent, MaskFlags } from '../lib';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { collectUntil } from './helpers/events';
import { reapAll, startNode } from './helpers/child';

const SYSCTL = '/proc/sys/fs/fanotify/max_queued_events';
// Larger than one read of BUFFER bytes can hold (fd-mode events are 24 bytes,
// FID ones more), so the reader's first read can never reach the overflow
// event: after it the reader is throttled, and exactly one overflow follows.
const BUFFER = 4096;
const KERNEL_QUEUE = 256;
const QUEUE_LIMIT = 16;
const OPERATIONS = 3000;

function readSysctl(): number {
  return Number(fs.readFileSync(SYSCTL, 'utf8').trim());
}

function writeSysctl(value: number): void {
  fs.writeFileSync(SYSCTL, `${value}\n`);
}

/** Reads until nothing more arrives for `quietMs` (with an overall limit). */
function drain(fan: Fanotify, quietMs = 300, limitMs = 10000): FanotifyEvent[] {
  const events: FanotifyEvent[] = [];
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const batch = fan.readEvents({ timeout: quietMs });
    if (batch.length === 0) break;
    events.push(...batch);
  }
  return events;
}

describeRoot('overflow: a full kernel queue is reported once, then events flow again', () => {
  let scratch: Scratch;
  let original: number;
  let counter = 0;

  /** A Fanotify whose groups were created with a small kernel queue. */
  function smallQueueInstance(dir: string, mask: number): Fanotify {
    const fan = new Fanotify({ queueLimit: QUEUE_LIMIT, bufferSize: BUFFER });
    try {
      writeSysctl(KERNEL_QUEUE);
      try {
        fan.addWatch(dir, mask); // creates the group: it takes max_events now
      } finally {
        writeSysctl(original);
      }
    } catch (err) {
      fan.close();
      throw err;
    }
    expect(readSysctl()).toBe(original);
    return fan;
  }

  beforeAll(() => {
    original = readSysctl();
    scratch = mountTmpfs();
  });
  afterAll(() => {
    reapAll();
    if (original !== undefined && readSysctl() !== original) writeSysctl(original);
    scratch.cleanup();
  });

  test('the sysctl is what we think it is', () => {
    expect(original).toBeGreaterThan(KERNEL_QUEUE);
  });

  test.each([
    // Every CREATE of a new name is a distinct event (the kernel merges only identical ones).
    ['CREATE of new files', MaskFlags.CREATE, 'create'],
    // OPEN of distinct files are distinct events.
    ['OPEN of existing files', MaskFlags.OPEN, 'open'],
  ])('%s: exactly one overflow event, path null, then new events arrive', async (_name, mask, mode) => {
    const dir = scratch.file(`t${++counter}`);
    fs.mkdirSync(dir);
    if (mode === 'open') {
      for (let i = 0; i < OPERATIONS; i++) fs.writeFileSync(path.join(dir, `f${i}`), '');
    }
    using fan = smallQueueInstance(dir, mask);

    // A child does the operations while this process reads nothing.
    const child = startNode(
      `const fs = require('fs'), path = require('path');
       const [dir, mode, n] = [process.argv[1], process.argv[2], Number(process.argv[3])];
       for (let i = 0; i < n; i++) {
         const f = path.join(dir, 'f' + i);
         if (mode === 'create') fs.writeFileSync(f, '');
         else fs.closeSync(fs.openSync(f, 'r'));
       }`,
      [dir, mode, String(OPERATIONS)],
      20000,
    );
    const result = await child.done;
    expect(result).toMatchObject({ code: 0, signal: null, stderr: '' });

    const events = drain(fan);
    const overflows = events.filter((e) => e.isOverflow());
    const normal = events.filter((e) => !e.isOverflow());
    expect(overflows).toHaveLength(1);
    const [overflow] = overflows;
    expect(overflow.mask).toBe(MaskFlags.Q_OVERFLOW);
    expect(overflow.types()).toEqual(['Q_OVERFLOW']);
    expect(overflow.path).toBeNull();
    expect(overflow.name).toBeNull();
    expect(overflow.fd).toBe(-1);
    expect(overflow.isCreate() || overflow.isOpen()).toBe(false);
    expect(JSON.parse(JSON.stringify(overflow))).toMatchObject({ types: ['Q_OVERFLOW'], path: null });

    // Events were lost, and what came through is real and from the child.
    expect(normal.length).toBeLessThan(OPERATIONS);
    expect(normal.length).toBeGreaterThan(0);
    // At most what the library held plus what the kernel held (and one read's worth).
    expect(normal.length).toBeLessThanOrEqual(KERNEL_QUEUE + QUEUE_LIMIT + BUFFER / 24);
    for (const e of normal) {
      expect(e.pid).toBe(child.pid);
      expect(e.path).toMatch(new RegExp(`^${dir}/f\\d+$`));
    }
    // (The overflow is not necessarily last: once the reader has taken some
    // events from a full kernel queue, the kernel queues new ones after it.)

    // Afterwards events flow again, with no second overflow.
    const after = path.join(dir, 'after-overflow');
    fs.writeFileSync(after, '');
    const again = collectUntil(fan, (evs) => evs.some((e) => e.path === after), 3000);
    expect(again.map((e) => [e.types().join('|'), e.path])).toEqual([[mode === 'create' ? 'CREATE' : 'OPEN', after]]);
  });

  test('with a reader that keeps up there is no overflow', async () => {
    const dir = scratch.file(`t${++counter}`);
    fs.mkdirSync(dir);
    // The library's queue is large: the reader thread drains the small kernel
    // queue while the child fills it, as long as it keeps up. The child
    // pauses 5 ms every 8 creates, so the kernel queue (128) would need a
    // reader stalled for ~150 ms to overflow.
    const fan = new Fanotify({ queueLimit: 100000 });
    try {
      writeSysctl(KERNEL_QUEUE);
      try {
        fan.addWatch(dir, MaskFlags.CREATE);
      } finally {
        writeSysctl(original);
      }
      const n = 500;
      const child = startNode(
        `const fs = require('fs'), path = require('path');
         const [dir, n] = [process.argv[1], Number(process.argv[2])];
         const pause = new Int32Array(new SharedArrayBuffer(4));
         for (let i = 0; i < n; i++) {
           fs.writeFileSync(path.join(dir, 'f' + i), '');
           if (i % 8 === 7) Atomics.wait(pause, 0, 0, 5);
         }`,
        [dir, String(n)],
        20000,
      );
      expect((await child.done).code).toBe(0);
      const events = drain(fan);
      expect(events.filter((e) => e.isOverflow())).toHaveLength(0);
      expect(events).toHaveLength(n);
      expect(new Set(events.map((e) => e.path)).size).toBe(n);
    } finally {
      fan.close();
    }
  });
});
