/**
 * The kernel decision cache: `allow({ cache: true })` puts an ignore mark on
 * the file in the reporting group, so the kernel answers later opens alone
 * until the file is modified. Every access that must reach JavaScript is
 * made by a child process (own-process events are answered natively); every
 * mark is on a private tmpfs; every wait has a timeout.
 */
import * as fs from 'node:fs';
import { AsyncFanotify, Fanotify, MaskFlags, type FanotifyEvent } from '../lib';
import { reapAll, runChild, startNode } from './helpers/child';
import { withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { thrown } from './helpers/errors';
import { sleep, waitUntil } from './helpers/wait';

/** Opens and reads each file given, `times` times; prints one result per read. */
const READ = `
const fs = require('fs');
const [times, ...files] = process.argv.slice(1);
const out = [];
for (let i = 0; i < Number(times); i++) for (const f of files) {
  try { fs.readFileSync(f); out.push('ok'); } catch (e) { out.push(e.code || String(e)); }
}
console.log(out.join(' '));
`;

async function readIn(times: number, ...files: string[]): Promise<string> {
  const r = await withTimeout(runChild(process.execPath, ['-e', READ, String(times), ...files], 10000), 12000, 'reader child');
  return r.stdout.trim();
}

describeRoot('decision cache: allow({ cache: true })', () => {
  let scratch: Scratch;
  beforeAll(() => {
    scratch = mountTmpfs();
  });
  afterEach(() => reapAll());
  afterAll(() => scratch.cleanup());

  /** An AsyncFanotify guarding `dir` that answers with `decide` and records what it was asked about. */
  async function guard(dir: string, decide: (ev: FanotifyEvent) => void, mark: 'inode' | 'mount' | 'filesystem' = 'inode') {
    const afan = new AsyncFanotify({ permissionTimeout: 8000 });
    const asked: string[] = [];
    afan.on('permission', (ev) => {
      if (ev.path !== null && ev.path.startsWith(dir + '/')) asked.push(ev.path);
      decide(ev);
    });
    afan.on('error', () => undefined);
    await afan.addWatch(mark === 'inode' ? dir : scratch.dir, MaskFlags.OPEN_PERM, { mark });
    return { afan, asked };
  }

  function files(dir: string, n: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      out.push(`${dir}/f${i}`);
      fs.writeFileSync(out[i], `content ${i}\n`);
    }
    return out;
  }

  test('repeated opens ask once; the kernel holds one entry per file', async () => {
    const dir = scratch.freshDir();
    const [a, b] = files(dir, 2);
    const { afan, asked } = await guard(dir, (ev) => ev.allow({ cache: true }));
    try {
      expect(await readIn(5, a, b)).toBe(Array(10).fill('ok').join(' '));
      expect(asked.sort()).toEqual([a, b]);
      expect(afan.cacheSize).toBe(2);
      expect(await readIn(3, a)).toBe('ok ok ok');
      expect(asked).toHaveLength(2);
    } finally {
      await afan.close();
    }
  });

  test('a filesystem mark with a cached allow: the inode ignore mark silences it too (sync front end, respond)', async () => {
    const dir = scratch.freshDir();
    const [a] = files(dir, 1);
    using fan = new Fanotify({ permissionTimeout: 8000 });
    fan.addWatch(scratch.dir, MaskFlags.OPEN_PERM, { mark: 'filesystem' });
    const child = startNode(READ, ['3', a]);
    const seen: FanotifyEvent[] = [];
    const deadline = Date.now() + 6000;
    while (Date.now() < deadline) {
      const evs = fan.readEvents({ timeout: 300 });
      for (const ev of evs) fan.respond(ev, { allow: true, cache: ev.path === a });
      seen.push(...evs);
      // A quiet spell after the child's event: it has done its reads.
      if (evs.length === 0 && seen.some((ev) => ev.pid === child.pid)) break;
    }
    const r = await withTimeout(child.done, 10000, 'reader child');
    expect(r.stdout.trim()).toBe('ok ok ok');
    const onA = seen.filter((ev) => ev.path === a && ev.pid === child.pid);
    expect(onA).toHaveLength(1);
    expect(fan.cacheSize).toBe(1);
  });

  test('under a mount mark too', async () => {
    const dir = scratch.freshDir();
    const [a, b] = files(dir, 2);
    const { afan, asked } = await guard(dir, (ev) => ev.allow({ cache: ev.path === a }), 'mount');
    try {
      expect(await readIn(3, a, b)).toBe(Array(6).fill('ok').join(' '));
      expect(asked.filter((p) => p === a)).toHaveLength(1);
      expect(asked.filter((p) => p === b)).toHaveLength(3);
      expect(afan.cacheSize).toBe(1);
    } finally {
      await afan.close();
    }
  });

  test('a write by another process empties the entry: the next open asks again', async () => {
    const dir = scratch.freshDir();
    const [a] = files(dir, 1);
    const { afan, asked } = await guard(dir, (ev) => ev.allow({ cache: true }));
    try {
      expect(await readIn(2, a)).toBe('ok ok');
      expect(asked).toEqual([a]);
      expect(afan.cacheSize).toBe(1);
      await withTimeout(runChild('sh', ['-c', `echo more >> ${a}`]), 8000, 'writer');
      expect(afan.cacheSize).toBe(0);
      expect(await readIn(2, a)).toBe('ok ok');
      expect(asked).toEqual([a, a]);
      expect(afan.cacheSize).toBe(1);
    } finally {
      await afan.close();
    }
  });

  test('a deny is never cached; deny with cache is InvalidArgument', async () => {
    const dir = scratch.freshDir();
    const [a] = files(dir, 1);
    let first = true;
    const kinds: string[] = [];
    const { afan, asked } = await guard(dir, (ev) => {
      kinds.push(thrown(() => afan.respond(ev, { allow: false, cache: true })).kind);
      if (first) ev.deny();
      else ev.allow({ cache: true });
      first = false;
    });
    try {
      expect(await readIn(1, a)).toBe('EPERM');
      expect(afan.cacheSize).toBe(0);
      expect(await readIn(2, a)).toBe('ok ok');
      expect(asked).toEqual([a, a]);
      expect(kinds).toEqual(['InvalidArgument', 'InvalidArgument']);
    } finally {
      await afan.close();
    }
  });

  test('a file open for writing elsewhere: the kernel makes no entry, and none is claimed', async () => {
    const dir = scratch.freshDir();
    const [a] = files(dir, 1);
    // A writer that holds the file open (its own open is allowed uncached).
    const holder = startNode(`const fd = require('fs').openSync(process.argv[1], 'r+'); console.log('open'); setTimeout(() => {}, 8000);`, [a], 10000);
    const { afan, asked } = await guard(dir, (ev) => ev.allow({ cache: ev.pid !== holder.pid }));
    try {
      await waitUntil(() => asked.length === 1, 5000, 'the writer opened');
      expect(await readIn(2, a)).toBe('ok ok');
      expect(afan.cacheSize).toBe(0);
      expect(asked).toHaveLength(3);
    } finally {
      holder.child.kill('SIGKILL');
      await holder.done;
      await afan.close();
    }
  });

  test('removing the watch removes its cache marks (a new watch asks again)', async () => {
    const dir = scratch.freshDir();
    const [a] = files(dir, 1);
    const { afan, asked } = await guard(dir, (ev) => ev.allow({ cache: true }));
    try {
      expect(await readIn(2, a)).toBe('ok ok');
      expect(afan.cacheSize).toBe(1);
      await afan.removeWatch(dir);
      expect(afan.cacheSize).toBe(0);
      await afan.addWatch(dir, MaskFlags.OPEN_PERM);
      expect(await readIn(1, a)).toBe('ok');
      expect(asked).toEqual([a, a]);
    } finally {
      await afan.close();
    }
  });

  test('clearCache(path) drops one entry, clearCache() all; cacheSize follows', async () => {
    const dir = scratch.freshDir();
    const [a, b, c] = files(dir, 3);
    const { afan, asked } = await guard(dir, (ev) => ev.allow({ cache: true }), 'filesystem');
    try {
      expect(await readIn(2, a, b, c)).toBe(Array(6).fill('ok').join(' '));
      expect(afan.cacheSize).toBe(3);
      await afan.clearCache(a);
      expect(afan.cacheSize).toBe(2);
      expect(await readIn(1, a, b, c)).toBe('ok ok ok');
      expect(asked.filter((p) => p === a)).toHaveLength(2);
      expect(asked.filter((p) => p === b)).toHaveLength(1);
      expect(afan.cacheSize).toBe(3);
      await afan.clearCache();
      expect(afan.cacheSize).toBe(0);
      expect(await readIn(1, b, c)).toBe('ok ok');
      expect(asked.filter((p) => p === b)).toHaveLength(2);
      expect(asked.filter((p) => p === c)).toHaveLength(2);
      await expect(afan.clearCache('')).rejects.toMatchObject({ kind: 'InvalidPath' });
      // A file renamed since it was cached cannot be found by its old path:
      // its entry stays, and cacheSize says so, until the file is modified.
      expect(await readIn(1, a)).toBe('ok');
      expect(afan.cacheSize).toBe(3); // b and c again, and a
      fs.renameSync(a, `${a}.moved`);
      await afan.clearCache();
      expect(afan.cacheSize).toBe(1);
      expect(await readIn(1, `${a}.moved`)).toBe('ok');
      expect(asked.filter((p) => p === a || p === `${a}.moved`)).toHaveLength(3);
      fs.appendFileSync(`${a}.moved`, 'more');
      expect(afan.cacheSize).toBe(0);
    } finally {
      await afan.close();
    }
    expect(afan.cacheSize).toBe(0);
    await sleep(0);
  });
});
