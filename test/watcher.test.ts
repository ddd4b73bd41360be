/**
 * `fanotify/watcher`, the drop-in for @parcel/watcher: every documented
 * behaviour, as root and as `nobody`, side by side with @parcel/watcher
 * itself in the same process where it is deterministic. Every mark goes on a
 * private tmpfs; every wait has a time limit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { capabilities, FanotifyError } from '../lib';
import * as watcher from '../lib/watcher';
import { EventList } from '../lib/watcher/events';
import { reapAll, runChild, startChild } from './helpers/child';
import { readableDist } from './helpers/dist';
import { withTimeout } from './helpers/events';
import { describeKernel, describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { sleep, waitUntil } from './helpers/wait';

const ROOT = path.resolve(__dirname, '..');
const NOBODY = 65534;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const parcel = require('@parcel/watcher') as typeof import('@parcel/watcher');

interface Ev {
  type: string;
  path: string;
  oldPath?: string;
  pid?: number;
}

/** Batches merged with @parcel/watcher's documented rules (written here independently of lib/). */
function coalesce(batches: Ev[][], base: string): string[] {
  const state = new Map<string, string>();
  for (const batch of batches) {
    for (const e of batch) {
      const prev = state.get(e.path);
      let type = e.type;
      if (prev === 'create' && type === 'delete') {
        state.delete(e.path);
        continue;
      }
      if (prev === 'create') type = 'create';
      else if (prev === 'delete' && type === 'create') type = 'update';
      state.set(e.path, type);
    }
  }
  return [...state].map(([p, type]) => `${type} ${path.relative(base, p)}`).sort();
}

describe('fanotify/watcher: the batch (EventList)', () => {
  const take = (list: EventList) => list.take(false).map((e) => `${e.type} ${e.path}${'oldPath' in e ? ` from ${e.oldPath}` : ''}`);

  test('created then updated is a create; created then deleted is nothing; deleted then created is an update', () => {
    const list = new EventList();
    list.create('/r/a');
    list.update('/r/a');
    list.create('/r/b');
    list.remove('/r/b');
    list.remove('/r/c');
    list.create('/r/c');
    list.update('/r/d');
    list.remove('/r/d');
    expect(take(list)).toEqual(['create /r/a', 'update /r/c', 'delete /r/d']);
    expect(list.size).toBe(0);
  });

  test('created, deleted and created again is a create (as @parcel/watcher)', () => {
    const list = new EventList();
    list.create('/r/a');
    list.remove('/r/a');
    list.create('/r/a');
    expect(take(list)).toEqual(['create /r/a']);
  });

  test('events come sorted by path bytes, as from a std::map', () => {
    const list = new EventList();
    for (const p of ['/r/b', '/r/a/z', '/r/a', '/r/B', '/r/é', '/r/z']) list.create(p);
    expect(take(list)).toEqual(['create /r/B', 'create /r/a', 'create /r/a/z', 'create /r/b', 'create /r/z', 'create /r/é']);
  });

  test('rename pairs: chained, undone, made in the batch, then deleted', () => {
    let list = new EventList();
    list.rename('/r/a', '/r/b');
    list.rename('/r/b', '/r/c');
    list.update('/r/c');
    expect(take(list)).toEqual(['rename /r/c from /r/a']);
    list.rename('/r/a', '/r/b');
    list.rename('/r/b', '/r/a');
    expect(take(list)).toEqual(['update /r/a']);
    list.create('/r/new');
    list.rename('/r/new', '/r/named');
    expect(take(list)).toEqual(['create /r/named']);
    list.rename('/r/a', '/r/b');
    list.remove('/r/b');
    expect(take(list)).toEqual(['delete /r/a']);
    list = new EventList();
    list.rename('/r/a', '/r/b');
    list.create('/r/a');
    list.remove('/r/b');
    expect(take(list)).toEqual(['update /r/a']);
  });

  test('pids: the latest change to the path', () => {
    const list = new EventList();
    list.create('/r/a', 10);
    list.update('/r/a', 11);
    list.update('/r/a', 0);
    expect(list.take(true)).toEqual([{ path: '/r/a', type: 'create', pid: 11 }]);
  });
});

describe('fanotify/watcher: the package', () => {
  test('package.json exports ./watcher with types, and the module has parcel\'s four functions', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.exports['./watcher']).toEqual({ types: './dist/watcher.d.ts', default: './dist/watcher.js' });
    expect(pkg.dependencies).toHaveProperty('picomatch');
    expect(pkg.dependencies).toHaveProperty('is-glob');
    for (const name of ['subscribe', 'unsubscribe', 'writeSnapshot', 'getEventsSince'] as const) {
      expect(typeof watcher[name]).toBe('function');
      expect(typeof parcel[name]).toBe('function');
    }
  });
});

describe('fanotify/watcher: types', () => {
  test('the module type-checks where @parcel/watcher\'s is expected (tsc checks this file)', () => {
    const asParcel: typeof import('@parcel/watcher') = watcher;
    const fn: import('@parcel/watcher').SubscribeCallback = () => {};
    const opts: import('@parcel/watcher').Options = { ignore: ['node_modules', /x/], backend: 'inotify' };
    const calls = [() => watcher.subscribe('/x', fn, opts), () => watcher.unsubscribe('/x', fn, opts)];
    // With reportRenames the callback gets rename events too.
    const extended = () => watcher.subscribe('/x', (_err, events) => events.map((e) => (e.type === 'rename' ? e.oldPath : e.path)), { reportRenames: true });
    expect([typeof asParcel.subscribe, calls.length, typeof extended]).toEqual(['function', 2, 'function']);
  });
});

describe('fanotify/watcher: bad input', () => {
  const noop = () => {};
  test('a RegExp with flags is rejected with @parcel/watcher\'s message', async () => {
    let parcelMessage = '';
    try {
      await parcel.subscribe('/nonexistent', noop, { ignore: [/x/i] });
    } catch (e) {
      parcelMessage = (e as Error).message;
    }
    expect(parcelMessage).toMatch(/must not have flags/);
    for (const call of [
      () => watcher.subscribe('/nonexistent', noop, { ignore: [/x/i] }),
      () => watcher.writeSnapshot('/nonexistent', '/nonexistent.snap', { ignore: [/x/i] }),
      () => watcher.getEventsSince('/nonexistent', '/nonexistent.snap', { ignore: [/x/i] }),
      () => watcher.unsubscribe('/nonexistent', noop, { ignore: [/x/i] }),
    ]) {
      await expect(call()).rejects.toThrow(parcelMessage);
      await expect(call()).rejects.toMatchObject({ kind: 'InvalidArgument' });
    }
  });

  test('wrong types and unknown options reject with InvalidArgument', async () => {
    const bad: [() => Promise<unknown>, RegExp][] = [
      [() => watcher.subscribe(42 as never, noop), /dir must be a non-empty path/],
      [() => watcher.subscribe('', noop), /dir must be a non-empty path/],
      [() => watcher.subscribe('/x', 'nope' as never), /callback must be a function/],
      [() => watcher.subscribe('/x', noop, 'opts' as never), /options must be an object/],
      [() => watcher.subscribe('/x', noop, { ignore: 'node_modules' as never }), /ignore must be an array/],
      [() => watcher.subscribe('/x', noop, { ignore: [5 as never] }), /each ignore entry/],
      [() => watcher.subscribe('/x', noop, { backend: 'nope' as never }), /backend must be one of/],
      [() => watcher.subscribe('/x', noop, { reportPid: 'yes' as never }), /reportPid must be a boolean/],
      [() => watcher.subscribe('/x', noop, { recursive: true } as never), /unknown option 'recursive'/],
      [() => watcher.writeSnapshot('/x', 7 as never), /snapshotPath must be/],
      [() => watcher.getEventsSince('/x', '/s', { reportRenames: true } as never), /applies to subscribe only/],
    ];
    for (const [call, message] of bad) {
      const err = await call().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(FanotifyError);
      expect(err).toMatchObject({ kind: 'InvalidArgument' });
      expect((err as Error).message).toMatch(message);
    }
  });
});

describeRoot('fanotify/watcher as root, in this process', () => {
  let scratch: Scratch;
  beforeAll(() => {
    scratch = mountTmpfs();
  });
  afterAll(() => scratch?.cleanup());

  /** Subscribes and collects batches; `stop()` unsubscribes. */
  async function collect(dir: string, opts?: watcher.SubscribeOptions) {
    const batches: Ev[][] = [];
    const errors: Error[] = [];
    const fn = (err: Error | null, events: Ev[]) => (err ? errors.push(err) : batches.push(events));
    const sub = await watcher.subscribe(dir, fn, opts);
    return { batches, errors, fn, stop: () => sub.unsubscribe() };
  }

  test('a missing root, a file and a symlink as the root reject like @parcel/watcher (an error, no watch)', async () => {
    const dir = scratch.freshDir();
    fs.writeFileSync(path.join(dir, 'file'), '');
    fs.symlinkSync(dir, path.join(dir, 'link'));
    const noop = () => {};
    for (const [p, code, parcelMessage] of [
      [path.join(dir, 'missing'), 'ENOENT', null],
      [path.join(dir, 'file'), 'ENOTDIR', 'Not a directory'],
      [path.join(dir, 'link'), 'ENOTDIR', 'Not a directory'],
    ] as const) {
      const theirs = await parcel.subscribe(p, noop).then(
        (s) => s.unsubscribe().then(() => null),
        (e: Error) => e,
      );
      // (another realm's Error inside jest: no instanceof)
      expect(theirs).toHaveProperty('message');
      if (parcelMessage) expect(theirs!.message).toContain(parcelMessage);
      for (const call of [() => watcher.subscribe(p, noop), () => watcher.writeSnapshot(p, path.join(dir, 'snap'))]) {
        const err = await call().then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(FanotifyError);
        expect(err).toMatchObject({ kind: 'InvalidPath', code, path: p });
        if (parcelMessage) expect((err as Error).message.startsWith(parcelMessage)).toBe(true);
      }
    }
    // getEventsSince reads the snapshot first, as @parcel/watcher does.
    await expect(watcher.getEventsSince(dir, path.join(dir, 'no-snapshot'))).rejects.toThrow(/^Unable to open snapshot file: No such file or directory/);
    await expect(parcel.getEventsSince(dir, path.join(dir, 'no-snapshot'))).rejects.toThrow(/^Unable to open snapshot file: No such file or directory/);
  });

  test('snapshots: creates, updates (files only) and deletes since, with ignores, the same as @parcel/watcher', async () => {
    const dir = scratch.freshDir('keep');
    fs.mkdirSync(path.join(dir, 'node_modules/pkg'), { recursive: true });
    const snaps = scratch.freshDir();
    fs.writeFileSync(path.join(dir, 'keep/old'), '1');
    fs.writeFileSync(path.join(dir, 'gone'), '1');
    fs.writeFileSync(path.join(dir, 'changed'), '1');
    fs.writeFileSync(path.join(dir, 'node_modules/pkg/x'), '1');
    const opts = { ignore: ['node_modules', '**/*.log'] };
    const ours = path.join(snaps, 'ours.snap');
    const theirs = path.join(snaps, 'theirs.snap');
    await expect(watcher.writeSnapshot(dir, ours, opts)).resolves.toBe(ours);
    await parcel.writeSnapshot(dir, theirs, opts);
    // The same format: the same entries (the order of parcel's hash map aside).
    const lines = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n');
    expect(lines(ours)[0]).toBe(lines(theirs)[0]);
    expect(lines(ours).slice(1).sort()).toEqual(lines(theirs).slice(1).sort());

    await sleep(20);
    fs.writeFileSync(path.join(dir, 'keep/new'), '1');
    fs.mkdirSync(path.join(dir, 'newdir'));
    fs.rmSync(path.join(dir, 'gone'));
    fs.appendFileSync(path.join(dir, 'changed'), '2');
    fs.writeFileSync(path.join(dir, 'x.log'), '1');
    fs.writeFileSync(path.join(dir, 'node_modules/pkg/y'), '1');
    const expected = [
      { path: path.join(dir, 'changed'), type: 'update' },
      { path: path.join(dir, 'gone'), type: 'delete' },
      { path: path.join(dir, 'keep/new'), type: 'create' },
      { path: path.join(dir, 'newdir'), type: 'create' },
    ];
    // keep/ changed its mtime too, but directories are not updates.
    expect(await watcher.getEventsSince(dir, ours, opts)).toEqual(expected);
    expect(await parcel.getEventsSince(dir, theirs, opts)).toEqual(expected);
    // Each reads the other's snapshot.
    expect(await watcher.getEventsSince(dir, theirs, opts)).toEqual(expected);
    expect(await parcel.getEventsSince(dir, ours, opts)).toEqual(expected);
    // Relative paths resolve against the working directory.
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      expect(await watcher.getEventsSince('.', path.relative(dir, ours), opts)).toEqual(expected);
    } finally {
      process.chdir(cwd);
    }
    // A file that is not a snapshot.
    fs.writeFileSync(path.join(snaps, 'bad'), 'hello');
    await expect(watcher.getEventsSince(dir, path.join(snaps, 'bad'))).rejects.toMatchObject({ kind: 'InvalidArgument' });
  });

  test('one callback per batch, throttled: a burst of 300 files arrives in a few batches with every create', async () => {
    const dir = scratch.freshDir();
    const c = await collect(dir);
    try {
      for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, `f${i}`), 'x');
      await waitUntil(() => c.batches.flat().length >= 300, 10000, 'the 300 creates');
      await sleep(200);
      expect(c.batches.length).toBeLessThanOrEqual(10);
      expect(coalesce(c.batches, dir)).toEqual(Array.from({ length: 300 }, (_, i) => `create f${i}`).sort());
      for (const batch of c.batches) expect(batch.map((e) => e.path)).toEqual([...batch.map((e) => e.path)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
      expect(c.errors).toEqual([]);
    } finally {
      await c.stop();
    }
  });

  test('the same function twice is one subscription; two functions both get each batch; unsubscribe stops delivery', async () => {
    const dir = scratch.freshDir();
    const a = await collect(dir);
    const again = await watcher.subscribe(dir, a.fn as never);
    const b = await collect(dir);
    try {
      fs.writeFileSync(path.join(dir, 'one'), '1');
      await waitUntil(() => a.batches.length > 0 && b.batches.length > 0, 5000, 'both callbacks');
      await sleep(200);
      expect(coalesce(a.batches, dir)).toEqual(['create one']);
      expect(a.batches).toEqual(b.batches);
      await a.stop();
      await again.unsubscribe(); // already gone: resolves
      fs.writeFileSync(path.join(dir, 'two'), '1');
      await waitUntil(() => b.batches.flat().some((e) => e.path.endsWith('two')), 5000, 'the second callback');
      await sleep(200);
      expect(coalesce(a.batches, dir)).toEqual(['create one']);
    } finally {
      await b.stop();
    }
    // With its last callback gone the watch is gone too: unsubscribing again resolves.
    await expect(watcher.unsubscribe(dir, b.fn)).resolves.toBeUndefined();
  });

  test('different options are different subscriptions', async () => {
    const dir = scratch.freshDir();
    const fnBatches: Ev[][] = [];
    const fn = (_err: Error | null, events: Ev[]) => fnBatches.push(events);
    const s1 = await watcher.subscribe(dir, fn);
    const s2 = await watcher.subscribe(dir, fn, { ignore: ['*.tmp'] });
    try {
      fs.writeFileSync(path.join(dir, 'a.tmp'), '1');
      await waitUntil(() => fnBatches.length > 0, 5000, 'a batch');
      await sleep(300);
      expect(coalesce(fnBatches, dir)).toEqual(['create a.tmp']);
    } finally {
      await s1.unsubscribe();
      await s2.unsubscribe();
    }
  });

  test('backend is accepted and ignored: fanotify watches whatever name is given', async () => {
    for (const backend of ['fanotify', 'inotify', 'watchman', 'brute-force'] as const) {
      const dir = scratch.freshDir();
      const c = await collect(dir, { backend });
      try {
        fs.writeFileSync(path.join(dir, 'f'), '1');
        await waitUntil(() => c.batches.length > 0, 5000, `a batch with backend ${backend}`);
        expect(coalesce(c.batches, dir)).toEqual(['create f']);
      } finally {
        await c.stop();
      }
    }
  });

  test('a root reached through a symlinked parent: paths are spelled as the caller spelled the root, as @parcel/watcher does', async () => {
    const real = scratch.freshDir('root');
    const link = path.join(scratch.freshDir(), 'link');
    fs.symlinkSync(real, link);
    const dir = path.join(link, 'root');
    const c = await collect(dir);
    const theirs: Ev[][] = [];
    const sub = await parcel.subscribe(dir, (_err, events) => theirs.push(events));
    try {
      fs.writeFileSync(path.join(real, 'root', 'f'), '1');
      await waitUntil(() => c.batches.length > 0 && theirs.length > 0, 5000, 'both batches');
      await sleep(200);
      expect(coalesce(c.batches, dir)).toEqual(['create f']);
      expect(c.batches.flat()[0]!.path).toBe(path.join(dir, 'f'));
      expect(coalesce(theirs, dir)).toEqual(['create f']);
    } finally {
      await c.stop();
      await sub.unsubscribe();
    }
  });

  test('moving the root away reports its delete, and nothing after', async () => {
    const parent = scratch.freshDir('root');
    const dir = path.join(parent, 'root');
    const c = await collect(dir);
    try {
      fs.renameSync(dir, path.join(parent, 'moved'));
      await waitUntil(() => c.batches.length > 0, 5000, 'the root\'s delete');
      fs.writeFileSync(path.join(parent, 'moved', 'after'), '1');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'new'), '1');
      await sleep(300);
      expect(c.batches).toEqual([[{ path: dir, type: 'delete' }]]);
    } finally {
      await c.stop();
    }
  });

  test('reportPid: the pid of the process that made the change', async () => {
    const dir = scratch.freshDir();
    const c = await collect(dir, { reportPid: true });
    try {
      const child = startChild('sh', ['-c', `echo hi > ${path.join(dir, 'by-child')}`]);
      await child.done;
      await waitUntil(() => c.batches.flat().length > 0, 5000, 'the child\'s create');
      for (const e of c.batches.flat()) expect(e).toEqual({ path: path.join(dir, 'by-child'), type: expect.stringMatching(/create|update/), pid: child.pid });
    } finally {
      await c.stop();
    }
  });

  test('a callback that throws is an uncaught exception, as with @parcel/watcher', async () => {
    const dir = scratch.freshDir();
    const r = await runChild(
      process.execPath,
      [
        '-e',
        `const w = require(process.argv[1]);
         process.on('uncaughtException', (e) => { console.log('uncaught: ' + e.message); process.exit(0); });
         w.subscribe(process.argv[2], () => { throw new Error('from the callback'); }).then(() => require('fs').writeFileSync(process.argv[2] + '/f', '1'));
         setTimeout(() => { console.log('no exception'); process.exit(1); }, 5000);`,
        path.join(readableDist(), 'watcher.js'),
        dir,
      ],
      10000,
    );
    expect(r.stdout.trim()).toBe('uncaught: from the callback');
    expect(r.code).toBe(0);
  });

  test('works in a worker thread', async () => {
    const dir = scratch.freshDir();
    const dist = readableDist();
    const worker = new Worker(
      `const { parentPort, workerData } = require('worker_threads');
       const w = require(workerData.module);
       let sub;
       w.subscribe(workerData.dir, (err, events) => parentPort.postMessage({ events })).then((s) => { sub = s; parentPort.postMessage('ready'); });
       parentPort.on('message', async () => { await sub.unsubscribe(); parentPort.postMessage('done'); });`,
      { eval: true, workerData: { module: path.join(dist, 'watcher.js'), dir } },
    );
    const messages: unknown[] = [];
    worker.on('message', (m) => messages.push(m));
    try {
      await waitUntil(() => messages.includes('ready'), 10000, 'the worker to subscribe');
      fs.writeFileSync(path.join(dir, 'from-main'), '1');
      await waitUntil(() => messages.some((m) => typeof m === 'object'), 5000, 'the worker\'s batch');
      expect(messages.find((m) => typeof m === 'object')).toEqual({ events: [{ path: path.join(dir, 'from-main'), type: 'create' }] });
      worker.postMessage('stop');
      await waitUntil(() => messages.includes('done'), 5000, 'the worker to unsubscribe');
    } finally {
      await withTimeout(worker.terminate(), 5000, 'worker.terminate()');
    }
  });
});

/**
 * The side-by-side program: subscribes with fanotify/watcher and (when it
 * loads) @parcel/watcher to the same tree, plus a subscription with both
 * extensions, performs each step and prints what each saw.
 */
const SIDE_BY_SIDE = `
  const fs = require('fs');
  const path = require('path');
  const [moduleDir, parcelDir, base] = process.argv.slice(1);
  const ours = require(path.join(moduleDir, 'watcher.js'));
  let parcel = null;
  try { parcel = require(parcelDir); } catch (e) { console.error('no @parcel/watcher here: ' + e.message); }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const d = path.join(base, 'tree');
  const P = (...p) => path.join(d, ...p);
  fs.mkdirSync(d);
  fs.mkdirSync(path.join(base, 'outside/sub'), { recursive: true });
  fs.writeFileSync(path.join(base, 'outside/sub/f'), 'x');
  let got;
  let last = 0;
  const record = (k) => (err, events) => { last = Date.now(); got[k].push(err ? [{ type: 'error', path: err.message }] : events); };
  const steps = [
    ['write', () => fs.writeFileSync(P('a'), 'x')],
    ['append', () => fs.appendFileSync(P('a'), 'y')],
    ['chmod', () => fs.chmodSync(P('a'), 0o600)],
    ['rename', () => fs.renameSync(P('a'), P('b'))],
    ['mkdir -p', () => fs.mkdirSync(P('x/y/z'), { recursive: true })],
    ['file in a new directory', () => { fs.mkdirSync(P('n')); fs.writeFileSync(P('n/f'), '1'); }],
    ['created then deleted', () => { fs.writeFileSync(P('tmp'), '1'); fs.unlinkSync(P('tmp')); }, 'nothing'],
    ['deleted then created', () => { fs.unlinkSync(P('b')); fs.writeFileSync(P('b'), '1'); }],
    ['ignored', () => { fs.mkdirSync(P('ign')); fs.writeFileSync(P('ign/f'), '1'); fs.writeFileSync(P('n/x.log'), '1'); fs.writeFileSync(P('y.tmp'), '1'); fs.mkdirSync(P('abs')); fs.writeFileSync(P('abs/f'), '1'); fs.writeFileSync(P('kept'), '1'); }],
    ['move a directory in', () => fs.renameSync(path.join(base, 'outside'), P('in'))],
    ['write in the moved-in directory', () => fs.writeFileSync(P('in/sub/g'), '1'), 'parcel misses'],
    ['rename a directory', () => fs.renameSync(P('in'), P('in2'))],
    ['write in the renamed directory', () => fs.writeFileSync(P('in2/sub/h'), '1'), 'parcel misses'],
    ['move a directory out', () => fs.renameSync(P('in2'), path.join(base, 'out'))],
    ['write in the moved-out directory', () => fs.writeFileSync(path.join(base, 'out/sub/i'), '1'), 'nothing'],
    ['rm -rf', () => fs.rmSync(P('x'), { recursive: true })],
    ['touch a directory', () => fs.utimesSync(P('n'), new Date(), new Date())],
    ['touch the root', () => fs.utimesSync(d, new Date(), new Date())],
    ['symlink', () => fs.symlinkSync('b', P('lnk'))],
    ['truncate', () => fs.truncateSync(P('b'), 0)],
    ['rm -rf the root', () => fs.rmSync(d, { recursive: true })],
    ['recreate the root', () => { fs.mkdirSync(d); fs.writeFileSync(P('q'), '1'); }, 'nothing'],
  ];
  (async () => {
    const opts = { ignore: ['ign', '**/*.log', /\\.tmp$/, P('abs')] };
    got = { ours: [], parcel: [], ext: [] };
    const subs = [await ours.subscribe(d, record('ours'), opts), await ours.subscribe(d, record('ext'), { ...opts, reportRenames: true, reportPid: true })];
    if (parcel) subs.push(await parcel.subscribe(d, record('parcel'), opts));
    const results = [];
    for (const [name, run, kind] of steps) {
      got = { ours: [], parcel: [], ext: [] };
      const start = Date.now();
      run();
      // Until both have spoken and 300 ms passed quietly, or 1 s for steps where nothing is due (5 s otherwise).
      const deadline = start + (kind === 'nothing' ? 1000 : 5000);
      for (;;) {
        await sleep(20);
        const now = Date.now();
        if (now > deadline) break;
        const spoke = got.ours.length > 0 && got.ext.length > 0 && (!parcel || kind === 'parcel misses' || got.parcel.length > 0);
        if (spoke && now - last > 300) break;
      }
      results.push({ name, kind: kind || 'same', ...got });
    }
    for (const s of subs) await s.unsubscribe();
    console.log(JSON.stringify({ pid: process.pid, parcel: !!parcel, base, results }));
  })().catch((e) => { console.error(e); process.exit(1); });
`;

interface StepResult {
  name: string;
  kind: 'same' | 'nothing' | 'parcel misses';
  ours: Ev[][];
  parcel: Ev[][];
  ext: Ev[][];
}

/** What each step must give (paths relative to the root). */
const EXPECTED: Record<string, string[]> = {
  write: ['create a'],
  append: ['update a'],
  chmod: ['update a'],
  rename: ['create b', 'delete a'],
  'mkdir -p': ['create x', 'create x/y', 'create x/y/z'],
  'file in a new directory': ['create n', 'create n/f'],
  'created then deleted': [],
  'deleted then created': ['update b'],
  ignored: ['create kept'],
  'move a directory in': ['create in'],
  'write in the moved-in directory': ['create in/sub/g'],
  'rename a directory': ['create in2', 'delete in'],
  'write in the renamed directory': ['create in2/sub/h'],
  'move a directory out': ['delete in2'],
  'write in the moved-out directory': [],
  'rm -rf': ['delete x', 'delete x/y', 'delete x/y/z'],
  'touch a directory': ['update n'],
  'touch the root': ['update '],
  symlink: ['create lnk'],
  truncate: ['update b'],
  'rm -rf the root': ['delete ', 'delete b', 'delete kept', 'delete lnk', 'delete n', 'delete n/f'],
  'recreate the root': [],
};

/** With reportRenames, the rename steps are pairs. */
const EXPECTED_EXT: Record<string, string[]> = {
  rename: ['rename b from a'],
  'rename a directory': ['rename in2 from in'],
};

function checkSideBySide(out: { pid: number; parcel: boolean; base: string; results: StepResult[] }): void {
  const tree = path.join(out.base, 'tree');
  expect(out.results.map((r) => r.name)).toEqual(Object.keys(EXPECTED));
  for (const r of out.results) {
    const ours = coalesce(r.ours, tree);
    expect({ step: r.name, ours }).toEqual({ step: r.name, ours: EXPECTED[r.name] });
    // Nothing due, nothing delivered (not even an empty batch).
    if (EXPECTED[r.name]!.length === 0) expect({ step: r.name, batches: r.ours }).toEqual({ step: r.name, batches: [] });
    // Side by side with @parcel/watcher where it is deterministic; where it
    // races with new directories (mkdir -p, a file made at once in a new
    // directory, rm -rf) it sees a subset.
    if (out.parcel && r.kind !== 'parcel misses') {
      const theirs = coalesce(r.parcel, tree);
      if (r.name === 'mkdir -p' || r.name === 'rm -rf' || r.name === 'file in a new directory') {
        expect({ step: r.name, extra: theirs.filter((e) => !ours.includes(e)) }).toEqual({ step: r.name, extra: [] });
        expect(theirs).toContain(EXPECTED[r.name]![0]);
      } else {
        expect({ step: r.name, theirs }).toEqual({ step: r.name, theirs: ours });
      }
    }
    // The extensions: rename pairs, and the pid of the process that did it.
    const ext = r.ext.flat().map((e) => `${e.type} ${path.relative(tree, e.path)}${e.oldPath ? ` from ${path.relative(tree, e.oldPath)}` : ''}`).sort();
    if (EXPECTED_EXT[r.name]) expect({ step: r.name, ext }).toEqual({ step: r.name, ext: EXPECTED_EXT[r.name] });
    else expect({ step: r.name, ext: coalesce(r.ext, tree) }).toEqual({ step: r.name, ext: EXPECTED[r.name] });
    for (const e of r.ext.flat()) expect(typeof e.pid).toBe('number');
    for (const e of r.ours.flat()) expect(Object.keys(e).sort()).toEqual(['path', 'type']);
    if (['write', 'append', 'rename', 'rename a directory', 'truncate'].includes(r.name)) {
      for (const e of r.ext.flat()) expect({ step: r.name, pid: e.pid }).toEqual({ step: r.name, pid: out.pid });
    }
  }
}

/** @parcel/watcher and its dependencies, next to the readable dist/ copy, for a child running as nobody. */
function parcelForOthers(dist: string): string {
  const modules = path.join(path.dirname(dist), 'node_modules');
  const parcelDir = path.join(ROOT, 'node_modules', '@parcel');
  for (const name of fs.readdirSync(parcelDir)) fs.cpSync(path.join(parcelDir, name), path.join(modules, '@parcel', name), { recursive: true });
  for (const name of ['detect-libc', 'picomatch', 'is-glob', 'is-extglob']) {
    if (fs.existsSync(path.join(ROOT, 'node_modules', name))) fs.cpSync(path.join(ROOT, 'node_modules', name), path.join(modules, name), { recursive: true });
  }
  fs.chmodSync(path.dirname(dist), 0o755);
  for (const p of fs.readdirSync(modules, { recursive: true }) as string[]) fs.chmodSync(path.join(modules, p), fs.statSync(path.join(modules, p)).isDirectory() ? 0o755 : 0o644);
  return path.join(modules, '@parcel', 'watcher');
}

describeRoot('fanotify/watcher side by side with @parcel/watcher', () => {
  let scratch: Scratch;
  let dist: string;
  let parcelPath: string;
  beforeAll(() => {
    scratch = mountTmpfs();
    dist = readableDist();
    parcelPath = parcelForOthers(dist);
  });
  afterAll(() => {
    reapAll();
    scratch?.cleanup();
  });

  async function run(asNobody: boolean) {
    const base = scratch.freshDir();
    fs.chmodSync(base, 0o777);
    const command = asNobody ? 'setpriv' : process.execPath;
    const args = [...(asNobody ? [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath] : []), '-e', SIDE_BY_SIDE, dist, parcelPath, base];
    const r = await withTimeout(runChild(command, args, 120000, { cwd: '/' }), 125000, 'the side-by-side child');
    const line = r.stdout.trim().split('\n').pop() ?? '';
    let out;
    try {
      out = JSON.parse(line);
    } catch {
      throw new Error(`the child printed no JSON (exit ${r.code}, signal ${r.signal}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    }
    expect(out.parcel).toBe(true);
    return out;
  }

  test('as root (one filesystem mark): every step as documented, and as @parcel/watcher gives it', async () => {
    checkSideBySide(await run(false));
  }, 130000);

  describeKernel('as a normal user', () => capabilities().unprivileged, 'unprivileged fanotify (Linux 5.13)', () => {
    test('as nobody (a mark per directory): the same events as root', async () => {
      checkSideBySide(await run(true));
    }, 130000);
  });
});
