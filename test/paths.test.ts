/**
 * Full paths and names of directory-entry and content events, through both
 * front ends (sync Fanotify, AsyncFanotify), under a filesystem mark and
 * under a recursive watch: nested directories, renames across directories,
 * deleted directories (including a path that cannot be resolved any more),
 * a watched directory that is renamed, and a second tmpfs mounted inside
 * the watched tree.
 *
 * The kernel merges queued events on the same object (CREATE and MODIFY of
 * a file can become one CREATE|MODIFY event), so most assertions compare
 * the set of (type, path) pairs that arrived with the exact expected set.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AsyncFanotify, Fanotify, FanotifyError, FanotifyEvent, MaskFlags } from '../lib';
import type { FanotifyOptions, WatchOptions } from '../lib';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { collectUntil } from './helpers/events';
import { sleep } from './helpers/wait';

const WAIT_MS = 3000;
const ENTRY = MaskFlags.CREATE | MaskFlags.DELETE | MaskFlags.MOVED_FROM | MaskFlags.MOVED_TO | MaskFlags.RENAME;
const MASK = ENTRY | MaskFlags.MODIFY;

type FrontEnd = 'sync' | 'async';
type Mode = 'filesystem' | 'recursive';

/** One instance of either front end behind one interface, so each scenario runs against both. */
interface Source {
  add(p: string, mask: number, options?: WatchOptions): Promise<void>;
  /** Events (under `prefix`) until `done` is true or `ms` passes. */
  collect(prefix: string, done: (events: FanotifyEvent[]) => boolean, ms?: number): Promise<FanotifyEvent[]>;
  /** AsyncFanotify: pause()/resume(); sync: nothing (not reading is its pause). */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

function under(ev: FanotifyEvent, prefix: string): boolean {
  return [ev.path, ev.oldPath, ev.newPath].some((p) => p !== null && (p === prefix || p.startsWith(prefix + '/'))) || ev.path === null;
}

function syncSource(options?: FanotifyOptions): Source {
  const fan = new Fanotify(options);
  return {
    add: async (p, mask, o) => fan.addWatch(p, mask, o),
    async collect(prefix, done, ms = WAIT_MS) {
      const mine: FanotifyEvent[] = [];
      collectUntil(
        fan,
        (evs) => {
          mine.push(...evs.splice(0).filter((e) => under(e, prefix)));
          return done(mine);
        },
        ms,
      );
      return mine;
    },
    pause() {},
    resume() {},
    close: async () => fan.close(),
  };
}

function asyncSource(options?: FanotifyOptions): Source {
  const afan = new AsyncFanotify(options);
  const seen: FanotifyEvent[] = [];
  afan.on('event', (e) => seen.push(e));
  return {
    add: (p, mask, o) => afan.addWatch(p, mask, o),
    async collect(prefix, done, ms = WAIT_MS) {
      const mine: FanotifyEvent[] = [];
      const deadline = Date.now() + ms;
      for (;;) {
        mine.push(...seen.splice(0).filter((e) => under(e, prefix)));
        if (done(mine) || Date.now() >= deadline) return mine;
        await sleep(5);
      }
    },
    pause: () => void afan.pause(),
    resume: () => void afan.resume(),
    close: () => afan.close(),
  };
}

function open(frontEnd: FrontEnd, options?: FanotifyOptions): Source {
  return frontEnd === 'sync' ? syncSource(options) : asyncSource(options);
}

/** Each event as 'TYPE path' pairs (one per type bit), ONDIR shown as a trailing '/'. */
function pairs(events: FanotifyEvent[]): string[] {
  return events.flatMap((e) =>
    e
      .types()
      .filter((t) => t !== 'ONDIR')
      .map((t) => `${t} ${e.path}${e.isDirectory ? '/' : ''}`),
  );
}

function has(type: string, p: string | null, dir = false): (evs: FanotifyEvent[]) => boolean {
  return (evs) => evs.some((e) => e.types().includes(type) && e.path === p && e.isDirectory === dir);
}

function show(events: FanotifyEvent[]): string {
  return JSON.stringify(events.map((e) => ({ types: e.types(), path: e.path, name: e.name, oldPath: e.oldPath, newPath: e.newPath })));
}

/** Fails with what did arrive when `done` is not met. */
async function expectEvents(src: Source, prefix: string, done: (evs: FanotifyEvent[]) => boolean, what: string): Promise<FanotifyEvent[]> {
  const events = await src.collect(prefix, done);
  if (!done(events)) throw new Error(`no ${what} within ${WAIT_MS} ms; saw: ${show(events)}`);
  return events;
}

describeRoot('paths: full paths, names, renames and deleted directories', () => {
  let scratch: Scratch;
  let inner: string;
  let innerMounted = false;
  const pid = process.pid;


  /** A watch that covers `dir` and everything below it, in the given mode. */
  async function watchTree(src: Source, dir: string, mode: Mode, mask = MASK): Promise<void> {
    await src.add(dir, mask, mode === 'filesystem' ? { mark: 'filesystem' } : { recursive: true });
  }

  beforeAll(() => {
    scratch = mountTmpfs();
    inner = scratch.file('inner-mount');
    fs.mkdirSync(inner);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=1777', 'fanotify-test-paths-inner', inner]);
    innerMounted = true;
  });
  afterAll(() => {
    try {
      if (innerMounted) execFileSync('umount', [inner]);
    } finally {
      scratch?.cleanup();
    }
  });

  const matrix: Array<[FrontEnd, Mode]> = [
    ['sync', 'filesystem'],
    ['sync', 'recursive'],
    ['async', 'filesystem'],
    ['async', 'recursive'],
  ];

  describe.each(matrix)('%s front end, %s watch', (frontEnd, mode) => {
    let src: Source;
    beforeEach(() => (src = open(frontEnd)));
    afterEach(() => src.close());

    test('create, modify and delete in nested directories: exact full paths and names', async () => {
      const dir = scratch.freshDir('a', 'b');
      await watchTree(src, dir, mode);
      const c = path.join(dir, 'a', 'b', 'c');
      const f = path.join(c, 'f.txt');
      fs.mkdirSync(c);
      fs.writeFileSync(f, 'one');
      fs.appendFileSync(f, 'two');
      // Read these while c exists (see the unresolvable-path test for what happens otherwise).
      const made = await expectEvents(src, dir, (evs) => has('CREATE', f)(evs) && has('MODIFY', f)(evs), 'CREATE and MODIFY of f.txt');
      fs.unlinkSync(f);
      fs.rmdirSync(c);

      const events = made.concat(await expectEvents(src, dir, has('DELETE', c, true), 'DELETE of the nested directory'));
      expect(new Set(pairs(events))).toEqual(new Set([`CREATE ${c}/`, `CREATE ${f}`, `MODIFY ${f}`, `DELETE ${f}`, `DELETE ${c}/`]));
      for (const e of events) {
        expect(e.name).toBe(path.basename(e.path!));
        expect(e.pid).toBe(pid);
        expect(e.info.filename()).toBe(path.basename(e.path!));
      }
      // The directory's own CREATE came before anything inside it, and its DELETE after.
      const dirCreate = events.findIndex((e) => e.isCreate() && e.path === c);
      const dirDelete = events.findIndex((e) => e.isDelete() && e.path === c);
      const fileEvents = events.flatMap((e, i) => (e.path === f ? [i] : []));
      expect(dirCreate).toBeLessThan(Math.min(...fileEvents));
      expect(dirDelete).toBeGreaterThan(Math.max(...fileEvents));
    });

    test('a rename across directories: RENAME with oldPath/newPath/name, MOVED_FROM and MOVED_TO', async () => {
      const dir = scratch.freshDir('x', 'deep', 'er');
      fs.mkdirSync(path.join(dir, 'y', 'z'), { recursive: true });
      const from = path.join(dir, 'x', 'deep', 'er', 'file');
      const to = path.join(dir, 'y', 'z', 'renamed');
      const dirFrom = path.join(dir, 'x', 'deep');
      const dirTo = path.join(dir, 'y', 'deep2');
      fs.writeFileSync(from, 'x');
      await watchTree(src, dir, mode, ENTRY);
      const view = (evs: FanotifyEvent[]) =>
        evs.map((e) => ({ types: e.types(), path: e.path, name: e.name, oldPath: e.oldPath, newPath: e.newPath, isDirectory: e.isDirectory }));
      const three = (evs: FanotifyEvent[]) => evs.length >= 3;

      fs.renameSync(from, to);
      const file = await expectEvents(src, dir, three, 'three events for the rename of a file');
      expect(view(file)).toEqual(
        expect.arrayContaining([
          { types: ['MOVED_FROM'], path: from, name: 'file', oldPath: from, newPath: null, isDirectory: false },
          { types: ['MOVED_TO'], path: to, name: 'renamed', oldPath: null, newPath: to, isDirectory: false },
          { types: ['RENAME'], path: to, name: 'renamed', oldPath: from, newPath: to, isDirectory: false },
        ]),
      );
      expect(file).toHaveLength(3);

      fs.renameSync(dirFrom, dirTo);
      const directory = await expectEvents(src, dir, three, 'three events for the rename of a directory');
      expect(view(directory)).toEqual(
        expect.arrayContaining([
          { types: ['MOVED_FROM', 'ONDIR'], path: dirFrom, name: 'deep', oldPath: dirFrom, newPath: null, isDirectory: true },
          { types: ['MOVED_TO', 'ONDIR'], path: dirTo, name: 'deep2', oldPath: null, newPath: dirTo, isDirectory: true },
          { types: ['RENAME', 'ONDIR'], path: dirTo, name: 'deep2', oldPath: dirFrom, newPath: dirTo, isDirectory: true },
        ]),
      );
      expect(directory).toHaveLength(3);
      expect(await src.collect(dir, () => false, 100)).toEqual([]);
    });

    test('events read after their directory was renamed keep the path they happened at (or null), never the later one', async () => {
      // queueLimit 1 + a plug event: everything below stays in the kernel
      // queue until both renames are done, then it is read in one batch.
      await src.close();
      src = open(frontEnd, { queueLimit: 1 });
      const dir = scratch.freshDir('x', 'deep', 'er');
      fs.mkdirSync(path.join(dir, 'y', 'z'), { recursive: true });
      const er = path.join(dir, 'x', 'deep', 'er');
      const from = path.join(er, 'file');
      const doomed = path.join(er, 'doomed');
      const to = path.join(dir, 'y', 'z', 'renamed');
      const dirFrom = path.join(dir, 'x', 'deep');
      const dirTo = path.join(dir, 'y', 'deep2');
      fs.writeFileSync(from, 'x');
      fs.writeFileSync(doomed, 'x');
      await watchTree(src, dir, mode, ENTRY);
      src.pause();
      const plug = path.join(dir, 'plug');
      fs.writeFileSync(plug, '');
      await sleep(200); // the reader takes the plug and stops reading

      fs.unlinkSync(doomed);
      fs.renameSync(from, to);
      fs.renameSync(dirFrom, dirTo);
      src.resume();
      // The kernel queues RENAME, then MOVED_FROM, then MOVED_TO: wait for the last.
      const events = await expectEvents(src, dir, (evs) => evs.some((e) => e.isDirectory && e.mask & MaskFlags.MOVED_TO), 'MOVED_TO of the directory');
      const one = (types: string, name: string) => {
        const found = events.filter((e) => e.types().join('|') === types && e.name === name);
        if (found.length !== 1) throw new Error(`expected one ${types} event named ${name}; saw: ${show(events)}`);
        return found[0];
      };
      // What happened inside x/deep/er happened there, not at y/deep2/er:
      // each path is the one at the time, or null if the library cannot
      // tell (a null is shown here as the right value, so only a wrong
      // path makes the comparison fail).
      const orRight = (got: string | null, right: string) => (got === null ? right : got);
      expect({
        deleted: orRight(one('DELETE', 'doomed').path, doomed),
        movedFrom: orRight(one('MOVED_FROM', 'file').path, from),
        movedFromOldPath: orRight(one('MOVED_FROM', 'file').oldPath, from),
        renameOldPath: orRight(one('RENAME', 'renamed').oldPath, from),
        renameNewPath: one('RENAME', 'renamed').newPath,
        movedTo: one('MOVED_TO', 'renamed').path,
      }).toEqual({ deleted: doomed, movedFrom: from, movedFromOldPath: from, renameOldPath: from, renameNewPath: to, movedTo: to });
      expect(one('RENAME|ONDIR', 'deep2')).toMatchObject({ oldPath: dirFrom, newPath: dirTo });
      expect(one('MOVED_FROM|ONDIR', 'deep').path).toBe(dirFrom);
    });

    test('a deleted directory: entries deleted before it and with it, then DELETE|ONDIR with its path', async () => {
      const dir = scratch.freshDir('gone', 'sub');
      const gone = path.join(dir, 'gone');
      const sub = path.join(gone, 'sub');
      for (const f of ['f1', 'f2']) fs.writeFileSync(path.join(gone, f), f);
      fs.writeFileSync(path.join(sub, 'f3'), 'f3');
      await watchTree(src, dir, mode, MaskFlags.DELETE);

      // Before: the directory is still there when this is read.
      fs.unlinkSync(path.join(gone, 'f1'));
      const before = await expectEvents(src, dir, has('DELETE', path.join(gone, 'f1')), 'DELETE of f1');
      expect(pairs(before)).toEqual([`DELETE ${gone}/f1`]);
      expect(before[0].name).toBe('f1');

      // With it: rm -r; the entries' events may be read after their directory is gone.
      fs.rmSync(gone, { recursive: true });
      const events = await expectEvents(src, dir, has('DELETE', gone, true), 'DELETE|ONDIR of the removed directory');
      const last = events.find((e) => e.path === gone)!;
      expect({ types: last.types(), name: last.name, isDirectory: last.isDirectory }).toEqual({ types: ['DELETE', 'ONDIR'], name: 'gone', isDirectory: true });
      // Every entry is reported once, by name, with its path or (if it could not be resolved) null: never a wrong one.
      const expected: Record<string, string> = { f2: path.join(gone, 'f2'), f3: path.join(sub, 'f3'), sub };
      const inside = events.filter((e) => e !== last);
      const names = inside.map((e) => e.name).sort();
      if (mode === 'filesystem') {
        expect(names).toEqual(['f2', 'f3', 'sub']);
      } else {
        // f2 and sub were in `gone`, whose path the watch has seen; f3 was in
        // `sub`, never seen: if it cannot be placed, a recursive watch may drop it.
        expect([['f2', 'f3', 'sub'], ['f2', 'sub']]).toContainEqual(names);
      }
      for (const e of inside) {
        expect([null, expected[e.name!]]).toContain(e.path);
        expect(e.types()).toEqual(e.name === 'sub' ? ['DELETE', 'ONDIR'] : ['DELETE']);
      }
    });

    test('a path that cannot be resolved any more is null, with the name still set', async () => {
      // Events queued in the kernel for a directory that is removed before
      // they are read. queueLimit 1 makes the reader stop reading the kernel
      // queue once one event waits (the plug), so the events below stay in
      // the kernel until after rm -r; the directory was never resolved before.
      await src.close();
      src = open(frontEnd, { queueLimit: 1 });
      const dir = scratch.freshDir('never', 'sub');
      const never = path.join(dir, 'never');
      const sub = path.join(never, 'sub');
      for (const f of ['a', 'b']) fs.writeFileSync(path.join(sub, f), f);
      await watchTree(src, dir, mode, MaskFlags.DELETE | MaskFlags.CREATE);
      src.pause();
      const plug = path.join(dir, 'plug');
      fs.writeFileSync(plug, '');
      await sleep(200); // the reader takes the plug and stops reading

      fs.unlinkSync(path.join(sub, 'a'));
      fs.rmSync(never, { recursive: true });
      src.resume();

      const events = await expectEvents(src, dir, has('DELETE', never, true), 'DELETE|ONDIR of the removed directory');
      expect(events[0].path).toBe(plug);
      const view = events.slice(1).map((e) => ({ types: e.types(), path: e.path, name: e.name }));
      const unresolvable = [
        { types: ['DELETE'], path: null, name: 'a' },
        { types: ['DELETE'], path: null, name: 'b' },
        { types: ['DELETE', 'ONDIR'], path: null, name: 'sub' },
      ];
      const removed = { types: ['DELETE', 'ONDIR'], path: never, name: 'never' };
      if (mode === 'filesystem') {
        // Nothing filters a filesystem mark: every event is delivered, the unplaceable ones with path null.
        expect(view).toEqual([...unresolvable, removed]);
      } else {
        // A recursive watch cannot tell whether an unplaceable event was in its
        // tree: it may drop them, or deliver them with path null and the name.
        expect(view[view.length - 1]).toEqual(removed);
        expect(unresolvable).toEqual(expect.arrayContaining(view.slice(0, -1)));
      }
      expect(events[events.length - 1].description()).toContain(never);
    });

    test('a renamed directory: events inside it afterwards report the new path', async () => {
      const dir = scratch.freshDir('w', 'sub');
      const w = path.join(dir, 'w');
      const w2 = path.join(dir, 'w2');
      await watchTree(src, dir, mode, MaskFlags.CREATE | MaskFlags.MOVED_TO);
      const one = path.join(w, 'sub', 'one');
      fs.writeFileSync(one, '');
      // Resolved (and cached) while the directory has its old name.
      expect(pairs(await expectEvents(src, dir, has('CREATE', one), 'CREATE of one'))).toEqual([`CREATE ${one}`]);

      fs.renameSync(w, w2);
      expect(pairs(await expectEvents(src, dir, has('MOVED_TO', w2, true), 'MOVED_TO of the directory'))).toEqual([`MOVED_TO ${w2}/`]);
      const two = path.join(w2, 'sub', 'two');
      fs.writeFileSync(two, '');
      fs.mkdirSync(path.join(w2, 'sub', 'dir3'));
      const after = await expectEvents(src, dir, has('CREATE', path.join(w2, 'sub', 'dir3'), true), 'CREATE of dir3');
      expect(pairs(after)).toEqual([`CREATE ${two}`, `CREATE ${w2}/sub/dir3/`]);
    });

    test('paths on a second tmpfs mounted inside the watched tree', async () => {
      // filesystem mode marks the inner filesystem itself; recursive mode
      // watches the outer tree, which the inner mount lies in.
      const base = fs.mkdtempSync(path.join(inner, 'p-'));
      const d = path.join(base, 'd1', 'd2');
      fs.mkdirSync(d, { recursive: true });
      if (mode === 'filesystem') await src.add(inner, MASK, { mark: 'filesystem' });
      else await src.add(scratch.dir, MASK, { recursive: true });
      const f = path.join(d, 'f');
      const g = path.join(base, 'g');
      fs.writeFileSync(f, 'x');
      fs.renameSync(f, g);
      const events = await expectEvents(src, base, (evs) => evs.some((e) => e.mask & MaskFlags.RENAME), 'RENAME on the inner tmpfs');
      expect(new Set(pairs(events))).toEqual(new Set([`CREATE ${f}`, `MODIFY ${f}`, `MOVED_FROM ${f}`, `MOVED_TO ${g}`, `RENAME ${g}`]));
      const rename = events.find((e) => e.mask & MaskFlags.RENAME)!;
      expect({ oldPath: rename.oldPath, newPath: rename.newPath, name: rename.name }).toEqual({ oldPath: f, newPath: g, name: 'g' });
      for (const e of events) expect(e.name).toBe(path.basename(e.path!));
    });
  });

  describe.each(['sync', 'async'] as FrontEnd[])('%s front end, plain inode watch', (frontEnd) => {
    test('the watched directory itself renamed: its children report the new path', async () => {
      const src = open(frontEnd);
      try {
        const dir = scratch.freshDir('m');
        const m = path.join(dir, 'm');
        const m2 = path.join(dir, 'm2');
        await src.add(m, MaskFlags.CREATE | MaskFlags.MOVE_SELF);
        fs.writeFileSync(path.join(m, 'one'), '');
        expect(pairs(await expectEvents(src, dir, has('CREATE', path.join(m, 'one')), 'CREATE of one'))).toEqual([`CREATE ${m}/one`]);
        fs.renameSync(m, m2);
        const moved = await expectEvents(src, dir, (evs) => evs.some((e) => e.mask & MaskFlags.MOVE_SELF), 'MOVE_SELF');
        expect(pairs(moved)).toEqual([`MOVE_SELF ${m2}/`]);
        fs.writeFileSync(path.join(m2, 'two'), '');
        expect(pairs(await expectEvents(src, dir, has('CREATE', path.join(m2, 'two')), 'CREATE of two'))).toEqual([`CREATE ${m2}/two`]);
      } finally {
        await src.close();
      }
    });
  });

  test('watching is refused for a path that does not exist, and the error names it', () => {
    using fan = new Fanotify();
    const missing = scratch.file('no', 'such');
    let err: unknown;
    try {
      fan.addWatch(missing, MaskFlags.CREATE, { recursive: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FanotifyError);
    expect((err as FanotifyError).kind).toBe('InvalidPath');
    expect((err as FanotifyError).path).toBe(missing);
  });
});
