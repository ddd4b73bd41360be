/**
 * AsyncLocalStorage across AsyncFanotify: listeners run in the async context
 * the instance was created in (as fs.watch and sockets do), whatever path
 * brought the event there (the reader's wake-up, a permission group read on
 * the loop, events held by pause() or queued before a listener existed);
 * promise consumers (nextEvent, waitForEvent, for await) continue in the
 * context of whoever awaited.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AsyncFanotify, MaskFlags, type FanotifyEvent } from '../lib';
import { reapAll, startChild } from './helpers/child';
import { withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';

const WAIT_MS = 3000;

describeRoot('async context: AsyncLocalStorage through AsyncFanotify', () => {
  let scratch: Scratch;
  const als = new AsyncLocalStorage<string>();
  beforeAll(() => (scratch = mountTmpfs()));
  afterAll(() => {
    reapAll();
    scratch?.cleanup();
  });

  /** An instance made inside als.run('creator'), watching CREATE in a fresh directory. */
  async function created(): Promise<{ afan: AsyncFanotify; dir: string }> {
    const dir = scratch.freshDir();
    const afan = als.run('creator', () => new AsyncFanotify());
    await afan.addWatch(dir, MaskFlags.CREATE);
    return { afan, dir };
  }

  /** The store seen by the first 'event' listener call for a file created in `dir`. */
  function storeInListener(afan: AsyncFanotify): Promise<string | undefined> {
    return withTimeout(new Promise((resolve) => afan.once('event', () => resolve(als.getStore()))), WAIT_MS, 'an event');
  }

  test("'event' listeners run in the creator's context, not the one they were added in", async () => {
    const { afan, dir } = await created();
    try {
      const seen = als.run('listener', () => storeInListener(afan));
      fs.writeFileSync(path.join(dir, 'a'), '');
      expect(await seen).toBe('creator');
      // And again with no store at all where the listener was added.
      const again = storeInListener(afan);
      fs.writeFileSync(path.join(dir, 'b'), '');
      expect(await again).toBe('creator');
    } finally {
      await afan.close();
    }
  });

  test("'permission' listeners (read on the loop itself) run in the creator's context", async () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'guarded');
    fs.writeFileSync(file, 'x');
    const afan = als.run('creator', () => new AsyncFanotify({ permissionTimeout: 2000 }));
    try {
      await afan.addWatch(dir, MaskFlags.OPEN_PERM);
      const seen = withTimeout(
        new Promise<string | undefined>((resolve) =>
          afan.on('permission', (ev) => {
            ev.allow();
            resolve(als.getStore());
          }),
        ),
        WAIT_MS,
        'a permission event',
      );
      // Another process: this one's own opens are allowed natively (allowSelf).
      const cat = startChild('cat', [file], 5000);
      expect(await seen).toBe('creator');
      expect((await cat.done).code).toBe(0);
    } finally {
      await afan.close();
    }
  });

  test('events held by pause() and queued before a listener existed reach listeners in the creator\'s context', async () => {
    const { afan, dir } = await created();
    try {
      afan.pause();
      fs.writeFileSync(path.join(dir, 'held'), '');
      await new Promise((r) => setTimeout(r, 100));
      const seen = storeInListener(afan);
      als.run('resumer', () => afan.resume());
      expect(await seen).toBe('creator');

      // No listener: the event is queued; adding one hands it over.
      fs.writeFileSync(path.join(dir, 'queued'), '');
      await new Promise((r) => setTimeout(r, 100));
      expect(await als.run('late', () => storeInListener(afan))).toBe('creator');

      // pause() inside a listener: the rest of that batch is held in
      // JavaScript and released by resume() on a later tick.
      const stores: Array<string | undefined> = [];
      const both = withTimeout(
        new Promise<void>((resolve) => {
          afan.on('event', (ev) => {
            if (!ev.path?.includes('/burst')) return;
            stores.push(als.getStore());
            if (stores.length === 1) afan.pause();
            if (stores.length === 2) resolve();
          });
        }),
        WAIT_MS,
        'two burst events',
      );
      fs.writeFileSync(path.join(dir, 'burst1'), '');
      fs.writeFileSync(path.join(dir, 'burst2'), '');
      while (!afan.isPaused()) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 50));
      als.run('resumer', () => afan.resume());
      await both;
      expect(stores).toEqual(['creator', 'creator']);
    } finally {
      await afan.close();
    }
  });

  test('nextEvent(), waitForEvent() and for await continue in the context of whoever awaits', async () => {
    const { afan, dir } = await created();
    try {
      const next = als.run('caller', async () => {
        const ev = await withTimeout(afan.nextEvent(), WAIT_MS, 'nextEvent');
        return [ev?.isCreate(), als.getStore()];
      });
      fs.writeFileSync(path.join(dir, 'n'), '');
      expect(await next).toEqual([true, 'caller']);

      const waited = als.run('waiter', async () => {
        const ev = await afan.waitForEvent({ timeout: WAIT_MS });
        return [ev.isCreate(), als.getStore()];
      });
      fs.writeFileSync(path.join(dir, 'w'), '');
      expect(await waited).toEqual([true, 'waiter']);

      const iterated = als.run('iterator', async () => {
        for await (const ev of afan) return [ev.isCreate(), als.getStore()];
        return [];
      });
      fs.writeFileSync(path.join(dir, 'i'), '');
      expect(await withTimeout(iterated, WAIT_MS, 'for await')).toEqual([true, 'iterator']);
    } finally {
      await afan.close();
    }
  });

  test("stream() 'data' handlers run in the context of the stream's consumer", async () => {
    const { afan, dir } = await created();
    try {
      const seen = als.run('consumer', () => {
        const stream = afan.stream();
        return withTimeout(
          new Promise<[FanotifyEvent, string | undefined]>((resolve) => stream.once('data', (ev: FanotifyEvent) => resolve([ev, als.getStore()]))),
          WAIT_MS,
          'stream data',
        );
      });
      fs.writeFileSync(path.join(dir, 's'), '');
      const [ev, store] = await seen;
      expect(ev.isCreate()).toBe(true);
      expect(store).toBe('consumer');
    } finally {
      await afan.close();
    }
  });
});
