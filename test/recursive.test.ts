/**
 * recursive: true against the real kernel.
 *
 * Privileged (as root): one filesystem mark per filesystem in the tree plus
 * the reader's scope filter. New directories are covered at once, events
 * outside the tree never reach JavaScript (permission events outside are
 * answered at once), mounts inside the tree are covered, removeWatch stops
 * it, and plain marks in the same instance keep their own scope.
 *
 * Unprivileged (a child running as nobody): a mark per directory, new
 * directories marked as they appear and scanned for what was created in
 * them before the mark.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AsyncFanotify, capabilities, Fanotify, FanotifyEvent, MaskFlags } from '../lib';
import { reapAll, runChild, startChild } from './helpers/child';
import { distForOthers, ensureDist } from './helpers/dist';
import { collectFor, collectUntil, withTimeout } from './helpers/events';
import { describeKernel, describeRoot, kernelLacks } from './helpers/kernel';
import { mountTmpfs, tmpfsReportsFids, type Scratch } from './helpers/scratch';
import { finished } from './helpers/wait';
import { thrown } from './helpers/errors';

const WAIT_MS = 3000;
const QUIET_MS = 300;
const NOBODY = 65534;
const ROOT = path.resolve(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
/** What the nobody child loads: a world-readable copy of dist/ and the addon (the checkout may be closed to nobody). */
const FOR_OTHERS = distForOthers();
const MASK = MaskFlags.CREATE | MaskFlags.DELETE | MaskFlags.MODIFY | MaskFlags.CLOSE_WRITE | MaskFlags.MOVED_FROM | MaskFlags.MOVED_TO | MaskFlags.RENAME;

function brief(e: FanotifyEvent): string {
  return `${e.types().join('|')} ${e.path}`;
}

/** Each event as 'TYPE path' pairs (one per type bit), ONDIR shown as a trailing '/'. */
function pairs(events: Array<FanotifyEvent | ChildEvent>): string[] {
  return events.flatMap((e) =>
    (Array.isArray(e.types) ? e.types : e.types())
      .filter((t) => t !== 'ONDIR')
      .map((t) => `${t} ${e.path}${e.isDirectory ? '/' : ''}`),
  );
}

/** Reads until `done`; fails naming what arrived if it never is. */
function expectEvents(fan: Fanotify, done: (evs: FanotifyEvent[]) => boolean, what: string): FanotifyEvent[] {
  const events = collectUntil(fan, done, WAIT_MS);
  if (!done(events)) throw new Error(`no ${what} within ${WAIT_MS} ms; saw: ${JSON.stringify(events.map(brief))}`);
  return events;
}

function created(p: string): (evs: FanotifyEvent[]) => boolean {
  return (evs) => evs.some((e) => e.isCreate() && e.path === p);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describeRoot('recursive watches, privileged (one filesystem mark + scope filter)', () => {
  let scratch: Scratch;
  let inner: string | undefined;
  let counter = 0;

  /** A fresh directory per test: `tN/tree` (+ nested dirs) and its parent `tN`. */
  function freshTree(...nested: string[]): { top: string; tree: string } {
    const top = scratch.file(`t${++counter}`);
    const tree = path.join(top, 'tree');
    fs.mkdirSync(path.join(tree, ...nested), { recursive: true });
    return { top, tree };
  }

  beforeAll(() => {
    scratch = mountTmpfs();
  });
  afterEach(() => reapAll());
  afterAll(() => {
    try {
      if (inner) execFileSync('umount', [inner]);
    } finally {
      scratch?.cleanup();
    }
  });

  test('a file created in a directory made a moment earlier is reported with its full path', () => {
    const { tree } = freshTree();
    using fan = new Fanotify();
    fan.addWatch(tree, MaskFlags.CREATE, { recursive: true });
    const expected: string[] = [];
    for (let i = 0; i < 10; i++) {
      const deep = path.join(tree, `d${i}`, 'e', 'f');
      fs.mkdirSync(deep, { recursive: true });
      const file = path.join(deep, 'new.txt');
      fs.writeFileSync(file, 'x');
      for (const p of [`d${i}`, `d${i}/e`, `d${i}/e/f`]) expected.push(`CREATE ${path.join(tree, p)}/`);
      expected.push(`CREATE ${file}`);
    }
    const last = path.join(tree, 'd9', 'e', 'f', 'new.txt');
    const events = expectEvents(fan, created(last), 'CREATE of the last file');
    events.push(...collectFor(fan, 50));
    expect(pairs(events).sort()).toEqual(expected.sort());
    for (const e of events) {
      expect(e.pid).toBe(process.pid);
      expect(e.name).toBe(path.basename(e.path!));
    }
  });

  test('events outside the tree (a sibling on the same tmpfs, a name-prefix sibling, the parent) are never delivered', () => {
    const { top, tree } = freshTree('in');
    const sibling = path.join(top, 'sibling');
    const prefixed = `${tree}-2`; // shares the tree's name as a prefix
    fs.mkdirSync(sibling);
    fs.mkdirSync(prefixed);
    fs.writeFileSync(path.join(sibling, 'existing'), 'x');
    using fan = new Fanotify();
    fan.addWatch(tree, MASK | MaskFlags.OPEN | MaskFlags.ATTRIB, { recursive: true });

    fs.mkdirSync(path.join(sibling, 'sub', 'deeper'), { recursive: true });
    fs.writeFileSync(path.join(sibling, 'sub', 'deeper', 'f'), 'x');
    fs.readFileSync(path.join(sibling, 'existing'));
    fs.chmodSync(path.join(sibling, 'existing'), 0o600);
    fs.renameSync(path.join(sibling, 'existing'), path.join(sibling, 'sub', 'moved'));
    fs.writeFileSync(path.join(prefixed, 'f'), 'x');
    fs.writeFileSync(path.join(top, 'in-parent'), 'x');
    fs.mkdirSync(path.join(top, 'dir-in-parent'));
    expect(collectFor(fan, QUIET_MS).map(brief)).toEqual([]);

    // The watch works: the same kind of operation inside is delivered.
    const inside = path.join(tree, 'in', 'f');
    fs.writeFileSync(inside, 'x');
    const events = expectEvents(fan, (evs) => evs.some((e) => e.isClose() && e.path === inside), 'CLOSE_WRITE inside the tree');
    expect(new Set(pairs(events))).toEqual(new Set([`CREATE ${inside}`, `OPEN ${inside}`, `MODIFY ${inside}`, `CLOSE_WRITE ${inside}`]));
  });

  test('events outside the tree whose place cannot be resolved are not delivered either (not as path null)', () => {
    const { top, tree } = freshTree();
    const sibling = path.join(top, 'sibling');
    fs.mkdirSync(path.join(sibling, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(sibling, 'doomed'), 'x');
    fs.writeFileSync(path.join(sibling, 'sub', 'existing'), 'x');
    const mask = MASK | MaskFlags.ATTRIB;

    // 1. rm of a file outside: the kernel reports ATTRIB (link count) on the
    //    deleted inode, with no directory or name to place it by.
    {
      using fan = new Fanotify();
      fan.addWatch(tree, mask, { recursive: true });
      fs.unlinkSync(path.join(sibling, 'doomed'));
      expect(collectFor(fan, QUIET_MS).map(brief)).toEqual([]);
    }

    // 2. queueLimit 1 and a plug event inside the tree: the reader stops
    //    reading the kernel queue, so the sibling's events are decoded only
    //    after the sibling was removed, when their paths cannot be resolved.
    using fan = new Fanotify({ queueLimit: 1 });
    fan.addWatch(tree, mask, { recursive: true });
    const plug = path.join(tree, 'plug');
    fs.mkdirSync(plug);
    sleepSync(200);
    fs.writeFileSync(path.join(sibling, 'sub', 'new'), 'x');
    fs.chmodSync(path.join(sibling, 'sub', 'existing'), 0o600);
    fs.rmSync(sibling, { recursive: true });
    const events = collectFor(fan, QUIET_MS);
    expect(events.map((e) => ({ types: e.types(), path: e.path, name: e.name }))).toEqual([{ types: ['CREATE', 'ONDIR'], path: plug, name: 'plug' }]);
  });

  test('a file moved in from outside: MOVED_TO and RENAME are delivered, the MOVED_FROM outside is not', () => {
    const { top, tree } = freshTree();
    const outside = path.join(top, 'outside');
    fs.mkdirSync(outside);
    const from = path.join(outside, 'f');
    const to = path.join(tree, 'f');
    fs.writeFileSync(from, 'x');
    using fan = new Fanotify();
    fan.addWatch(tree, MASK, { recursive: true });
    fs.renameSync(from, to);
    const events = expectEvents(fan, (evs) => evs.length >= 2, 'two events');
    events.push(...collectFor(fan, 100));
    expect(events.map((e) => ({ types: e.types(), path: e.path, oldPath: e.oldPath, newPath: e.newPath })).sort((a, b) => a.types[0].localeCompare(b.types[0]))).toEqual([
      { types: ['MOVED_TO'], path: to, oldPath: null, newPath: to },
      { types: ['RENAME'], path: to, oldPath: from, newPath: to },
    ]);
  });

  test('a second tmpfs mounted inside the tree is covered', () => {
    if (kernelLacks(tmpfsReportsFids(), 'a tmpfs that reports file ids (Linux 5.13) for CREATE events on it')) return;
    const { tree } = freshTree('mnt');
    inner = path.join(tree, 'mnt');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=1777', 'fanotify-test-recursive-inner', inner]);
    fs.mkdirSync(path.join(inner, 'a', 'b'), { recursive: true });
    using fan = new Fanotify();
    fan.addWatch(tree, MaskFlags.CREATE | MaskFlags.CLOSE_WRITE, { recursive: true });
    const file = path.join(inner, 'a', 'b', 'f');
    const later = path.join(inner, 'a', 'later');
    fs.writeFileSync(file, 'x');
    fs.mkdirSync(later);
    fs.writeFileSync(path.join(later, 'g'), 'y');
    const events = expectEvents(fan, (evs) => evs.some((e) => e.isClose() && e.path === path.join(later, 'g')), 'CLOSE_WRITE of later/g');
    expect(new Set(pairs(events))).toEqual(new Set([`CREATE ${file}`, `CLOSE_WRITE ${file}`, `CREATE ${later}/`, `CREATE ${later}/g`, `CLOSE_WRITE ${later}/g`]));

    // removeWatch takes the inner filesystem's mark away too.
    fan.removeWatch(tree, undefined, { recursive: true });
    fs.writeFileSync(path.join(inner, 'a', 'after'), 'x');
    fs.writeFileSync(path.join(tree, 'after'), 'x');
    expect(collectFor(fan, QUIET_MS).map(brief)).toEqual([]);
  });

  test('a tmpfs mounted inside the tree after the watch began is covered (mount-namespace mark, Linux 6.15)', () => {
    if (!capabilities().mntns) {
      console.warn('skipping: following later mounts needs MNT_ATTACH events (Linux 6.15)');
      return;
    }
    const { tree } = freshTree('later-mount');
    const mountPoint = path.join(tree, 'later-mount');
    using fan = new Fanotify();
    fan.addWatch(tree, MaskFlags.CREATE, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=1777', 'fanotify-test-recursive-later', mountPoint]);
    try {
      // The attachment is noticed when the reader hands events over: read once.
      expect(collectFor(fan, QUIET_MS).map(brief)).toEqual([]);
      const file = path.join(mountPoint, 'f');
      fs.writeFileSync(file, 'x');
      const events = expectEvents(fan, created(file), `CREATE of ${file}`);
      expect(pairs(events)).toContain(`CREATE ${file}`);
    } finally {
      execFileSync('umount', ['-l', mountPoint]);
    }
  });

  test('OPEN_PERM, recursive: a child outside the tree is allowed at once, one inside is asked and can be denied', async () => {
    const { top, tree } = freshTree('guarded');
    const outsideFile = path.join(top, 'outside.txt');
    const allowed = path.join(tree, 'guarded', 'allow-me');
    const denied = path.join(tree, 'guarded', 'deny-me');
    for (const f of [outsideFile, allowed, denied]) fs.writeFileSync(f, `contents of ${path.basename(f)}\n`);
    const afan = new AsyncFanotify({ permissionTimeout: 20000 });
    const asked: Array<{ pid: number; path: string | null; types: string[] }> = [];
    try {
      afan.on('permission', (ev) => {
        asked.push({ pid: ev.pid, path: ev.path, types: ev.types() });
        if (ev.path === denied) afan.deny(ev);
        else afan.allow(ev);
      });
      await afan.addWatch(tree, MaskFlags.OPEN_PERM, { recursive: true });

      const started = Date.now();
      const out = await finished(startChild('cat', [outsideFile], 25000), 5000, 'cat outside the tree');
      const took = Date.now() - started;
      expect({ code: out.code, stdout: out.stdout }).toEqual({ code: 0, stdout: 'contents of outside.txt\n' });
      expect(took).toBeLessThan(3000); // not held until the 20 s permissionTimeout
      await new Promise((r) => setTimeout(r, 100));
      expect(asked).toEqual([]);

      const allow = startChild('cat', [allowed], 10000);
      const allowOut = await finished(allow, 5000, 'cat of allow-me');
      expect({ code: allowOut.code, stdout: allowOut.stdout }).toEqual({ code: 0, stdout: 'contents of allow-me\n' });
      const deny = startChild('cat', [denied], 10000);
      const denyOut = await finished(deny, 5000, 'cat of deny-me');
      expect(denyOut.code).not.toBe(0);
      expect(denyOut.stderr).toMatch(/Operation not permitted/);
      expect(denyOut.stdout).toBe('');
      expect(asked).toEqual([
        { pid: allow.pid, path: allowed, types: ['OPEN_PERM'] },
        { pid: deny.pid, path: denied, types: ['OPEN_PERM'] },
      ]);
    } finally {
      await afan.close();
    }
  });

  test('removeWatch of a recursive watch stops its events', () => {
    const { tree } = freshTree('a', 'b');
    using fan = new Fanotify();
    fan.addWatch(tree, MaskFlags.CREATE, { recursive: true });
    const before = path.join(tree, 'a', 'b', 'before');
    fs.writeFileSync(before, '');
    expect(expectEvents(fan, created(before), 'CREATE before removal').map(brief)).toEqual([`CREATE ${before}`]);

    fan.removeWatch(tree, undefined, { recursive: true });
    fs.writeFileSync(path.join(tree, 'a', 'b', 'after'), '');
    fs.mkdirSync(path.join(tree, 'new', 'dir'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'new', 'dir', 'after'), '');
    expect(collectFor(fan, QUIET_MS).map(brief)).toEqual([]);
    // It is gone: removing it again is an error.
    expect(thrown(() => fan.removeWatch(tree, undefined, { recursive: true })).kind).toBe('InvalidArgument');
  });

  test('two recursive watches on one filesystem: each gets only its own events; removing one keeps the other', () => {
    const { top } = freshTree();
    const a = path.join(top, 'A');
    const b = path.join(top, 'B');
    for (const d of [a, b]) fs.mkdirSync(path.join(d, 'sub'), { recursive: true });
    using fan = new Fanotify();
    fan.addWatch(a, MaskFlags.CREATE | MaskFlags.DELETE, { recursive: true });
    fan.addWatch(b, MaskFlags.CREATE, { recursive: true });
    // One operation at a time, each read before the next (so the kernel merges nothing).
    const step = (op: () => void, last: string, quiet = 50) => {
      op();
      const evs = expectEvents(fan, (got) => got.some((e) => e.path === last), `an event for ${last}`);
      return evs.concat(collectFor(fan, quiet)).map(brief);
    };
    const a1 = path.join(a, 'sub', 'one');
    const b1 = path.join(b, 'sub', 'one');
    // A asked for CREATE and DELETE, B only for CREATE (the filesystem mark carries both).
    expect(step(() => fs.writeFileSync(a1, ''), a1)).toEqual([`CREATE ${a1}`]);
    expect(step(() => fs.writeFileSync(b1, ''), b1)).toEqual([`CREATE ${b1}`]);
    expect(step(() => (fs.unlinkSync(b1), fs.unlinkSync(a1)), a1)).toEqual([`DELETE ${a1}`]);

    fan.removeWatch(a, undefined, { recursive: true });
    const a2 = path.join(a, 'sub', 'two');
    const b2 = path.join(b, 'sub', 'two');
    expect(step(() => (fs.writeFileSync(a2, ''), fs.unlinkSync(a2), fs.writeFileSync(b2, '')), b2, QUIET_MS)).toEqual([`CREATE ${b2}`]);
  });

  test('events the kernel merged carry only the bits the covering recursive watch asked for', () => {
    // A asks for DELETE too; on B's side a CREATE and a DELETE of one name,
    // queued together, become one CREATE|DELETE event in the kernel (the
    // shared filesystem mark carries DELETE). B asked for CREATE only.
    const { top } = freshTree();
    const a = path.join(top, 'A');
    const b = path.join(top, 'B');
    for (const d of [a, b]) fs.mkdirSync(d);
    using fan = new Fanotify({ queueLimit: 1 });
    fan.addWatch(a, MaskFlags.CREATE | MaskFlags.DELETE, { recursive: true });
    fan.addWatch(b, MaskFlags.CREATE, { recursive: true });
    const plug = path.join(a, 'plug');
    fs.mkdirSync(plug);
    sleepSync(200); // the reader takes the plug and stops reading
    const f = path.join(b, 'brief');
    fs.writeFileSync(f, '');
    fs.unlinkSync(f);
    const events = expectEvents(fan, (evs) => evs.some((e) => e.path === f), 'the event for B');
    events.push(...collectFor(fan, 50));
    expect(events.map(brief)).toEqual([`CREATE|ONDIR ${plug}`, `CREATE ${f}`]);
  });

  test('a plain inode watch outside the recursive tree, in the same instance, keeps its own scope', () => {
    const { top, tree } = freshTree();
    const other = path.join(top, 'other');
    const lone = path.join(top, 'lone.txt');
    const unwatched = path.join(top, 'unwatched.txt');
    fs.mkdirSync(other);
    fs.writeFileSync(lone, '');
    fs.writeFileSync(unwatched, '');
    using fan = new Fanotify();
    fan.addWatch(tree, MaskFlags.CREATE, { recursive: true });
    fan.addWatch(other, MaskFlags.CREATE | MaskFlags.MODIFY);
    fan.addWatch(lone, MaskFlags.MODIFY);

    const child = path.join(other, 'child');
    const sub = path.join(other, 'sub');
    fs.writeFileSync(child, 'x'); // CREATE + MODIFY: a direct child of `other`
    fs.mkdirSync(sub); // CREATE|ONDIR: a direct child too
    fs.writeFileSync(path.join(sub, 'grandchild'), 'x'); // below `other`'s children: not watched
    fs.appendFileSync(lone, 'x'); // the watched file
    fs.appendFileSync(unwatched, 'x'); // not watched at all
    const inTree = path.join(tree, 'in-tree');
    fs.writeFileSync(inTree, 'x'); // the recursive watch asked for CREATE only
    const events = expectEvents(fan, created(inTree), 'CREATE in the tree');
    events.push(...collectFor(fan, 150));
    expect(new Set(pairs(events))).toEqual(new Set([`CREATE ${child}`, `MODIFY ${child}`, `CREATE ${sub}/`, `MODIFY ${lone}`, `CREATE ${inTree}`]));
  });

  describe('refused combinations', () => {
    test('recursive on a file: InvalidPath (sync throws, async rejects), nothing watched', async () => {
      const { tree } = freshTree();
      const file = path.join(tree, 'file');
      fs.writeFileSync(file, '');
      using fan = new Fanotify();
      const err = thrown(() => fan.addWatch(file, MaskFlags.CREATE, { recursive: true }));
      expect(err.kind).toBe('InvalidPath');
      expect(err.path).toBe(file);
      expect(thrown(() => fan.removeWatch(file, undefined, { recursive: true })).kind).toBe('InvalidArgument');
      const afan = new AsyncFanotify();
      try {
        await expect(afan.addWatch(file, MaskFlags.CREATE, { recursive: true })).rejects.toMatchObject({ kind: 'InvalidPath' });
      } finally {
        await afan.close();
      }
    });

    test.each([
      ["mark: 'filesystem'", { mark: 'filesystem' as const }],
      ["mark: 'mount'", { mark: 'mount' as const }],
      ['ignore: true', { ignore: true }],
    ])('recursive with %s: InvalidArgument, and the instance still works', async (_what, extra) => {
      const { tree } = freshTree();
      using fan = new Fanotify();
      expect(thrown(() => fan.addWatch(tree, MaskFlags.CREATE, { recursive: true, ...extra })).kind).toBe('InvalidArgument');
      const afan = new AsyncFanotify();
      try {
        await expect(afan.addWatch(tree, MaskFlags.CREATE, { recursive: true, ...extra })).rejects.toMatchObject({ kind: 'InvalidArgument' });
      } finally {
        await afan.close();
      }
      fan.addWatch(tree, MaskFlags.CREATE, { recursive: true });
      const f = path.join(tree, 'ok');
      fs.writeFileSync(f, '');
      expect(expectEvents(fan, created(f), 'CREATE after the refusal').map(brief)).toEqual([`CREATE ${f}`]);
    });
  });
});

/** What the nobody child prints per event. */
interface ChildEvent {
  types: string[];
  path: string | null;
  name: string | null;
  pid: number;
  isDirectory: boolean;
}

/** The child program: a recursive watch as nobody, in phases; prints one JSON line. */
const UNPRIVILEGED_CHILD = `
const fs = require('fs');
const path = require('path');
const { Fanotify, MaskFlags, capabilities } = require(${JSON.stringify(FOR_OTHERS.dist)});
const [root, outside] = process.argv.slice(1);
const out = { pid: process.pid, privileged: capabilities().privileged };
const show = (e) => ({ types: e.types(), path: e.path, name: e.name, pid: e.pid, isDirectory: e.isDirectory });
function readUntil(fan, done, ms) {
  const events = [];
  const deadline = Date.now() + ms;
  while (!done(events) && Date.now() < deadline) events.push(...fan.readEvents({ timeout: Math.max(1, deadline - Date.now()) }).map(show));
  return events;
}
const has = (evs, type, p) => evs.some((e) => e.types.includes(type) && e.path === p);
const fan = new Fanotify();
try {
  fan.addWatch(root, MaskFlags.CREATE | MaskFlags.MODIFY | MaskFlags.CLOSE_WRITE | MaskFlags.DELETE, { recursive: true });

  // Phase 1: outside first, then deep inside the existing tree.
  fs.mkdirSync(path.join(outside, 'od'), { recursive: true });
  fs.writeFileSync(path.join(outside, 'od', 'o.txt'), 'x');
  fs.writeFileSync(root + '-2/p.txt', 'x');
  fs.writeFileSync(path.join(path.dirname(root), 'beside.txt'), 'x');
  const deep = path.join(root, 'a', 'b', 'c', 'd', 'deep.txt');
  const shallow = path.join(root, 'a', 'x.txt');
  fs.writeFileSync(deep, 'x');
  fs.writeFileSync(shallow, 'x');
  out.existing = readUntil(fan, (evs) => has(evs, 'CLOSE_WRITE', deep) && has(evs, 'CLOSE_WRITE', shallow), 3000);
  out.existing.push(...readUntil(fan, () => false, 200));

  // Phase 2: directories made after the watch, with files in them at once.
  const n = path.join(root, 'n');
  out.made = [n, path.join(n, 'p'), path.join(n, 'p', 'q')];
  out.files = [path.join(n, '1'), path.join(n, 'p', '2'), path.join(n, 'p', 'q', '3')];
  fs.mkdirSync(out.made[2], { recursive: true });
  for (const f of out.files) fs.writeFileSync(f, 'x');
  const all = out.made.concat(out.files);
  out.later = readUntil(fan, (evs) => all.every((p) => has(evs, 'CREATE', p)), 3000);
  // ... and the new deepest directory is watched, not just scanned.
  fs.appendFileSync(out.files[2], 'y');
  fs.writeFileSync(path.join(out.made[2], '4'), 'x');
  out.afterFollow = readUntil(fan, (evs) => has(evs, 'MODIFY', out.files[2]) && has(evs, 'CLOSE_WRITE', path.join(out.made[2], '4')), 3000);

  // Phase 2b: a directory tree moved in from outside is followed too.
  const moved = path.join(root, 'moved');
  fs.renameSync(path.join(outside, 'tomove'), moved);
  out.movedIn = readUntil(fan, () => false, 100);
  out.movedFile = path.join(moved, 'inner', 'new.txt');
  fs.writeFileSync(out.movedFile, 'x');
  out.afterMove = readUntil(fan, (evs) => has(evs, 'CLOSE_WRITE', out.movedFile), 3000);

  // Phase 3: removeWatch stops all of it (followed directories included).
  fan.removeWatch(root, undefined, { recursive: true });
  fs.writeFileSync(path.join(root, 'a', 'b', 'c', 'd', 'after.txt'), 'x');
  fs.writeFileSync(path.join(out.made[2], 'after.txt'), 'x');
  fs.mkdirSync(path.join(root, 'm'));
  fs.writeFileSync(path.join(root, 'after.txt'), 'x');
  fs.writeFileSync(path.join(moved, 'inner', 'after.txt'), 'x');
  out.removed = readUntil(fan, () => false, ${QUIET_MS});
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  fan.close();
}
console.log(JSON.stringify(out));
`;

describeKernel('recursive watches, unprivileged (a child running as nobody: a mark per directory)',
  () => capabilities().unprivileged,
  'unprivileged fanotify (FID reporting for normal users, Linux 5.13)',
  () => {
  let scratch: Scratch;
  let root: string;
  let out: {
    pid: number;
    privileged: boolean;
    error?: string;
    existing: ChildEvent[];
    made: string[];
    files: string[];
    later: ChildEvent[];
    afterFollow: ChildEvent[];
    movedIn: ChildEvent[];
    movedFile: string;
    afterMove: ChildEvent[];
    removed: ChildEvent[];
  };

  beforeAll(async () => {
    try {
      ensureDist(); // the child loads dist/: build it from the current sources
    } catch (e) {
      // Type errors still emit; a missing dist/ is what matters.
      if (!fs.existsSync(path.join(DIST, 'index.js'))) throw e;
      console.warn(`tsc -p tsconfig.build.json reported errors; using the dist/ it emitted: ${String(e)}`);
    }
    FOR_OTHERS.stage();
    scratch = mountTmpfs();
    const base = scratch.file('nobodys');
    root = path.join(base, 'root');
    const outside = path.join(base, 'outside');
    for (const d of [path.join(root, 'a', 'b', 'c', 'd'), path.join(outside, 'tomove', 'inner'), `${root}-2`]) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(outside, 'tomove', 'inner', 'old.txt'), 'x');
    execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, base]);
    const r = await withTimeout(
      runChild('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', UNPRIVILEGED_CHILD, root, outside], 20000, { cwd: '/' }),
      25000,
      'the child running as nobody',
    );
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      out = JSON.parse(line);
    } catch {
      throw new Error(`the child printed no JSON (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    }
    if (out.error) throw new Error(`the child failed: ${out.error}\nstderr: ${r.stderr}`);
  }, 60000);
  afterAll(() => {
    reapAll();
    scratch?.cleanup();
    FOR_OTHERS.remove();
  });

  test('the child is unprivileged (the per-directory mode is what runs)', () => {
    expect(out.privileged).toBe(false);
  });

  test('an existing nested tree: events in deep directories, with paths and names; nothing from outside', () => {
    const deep = path.join(root, 'a', 'b', 'c', 'd', 'deep.txt');
    const shallow = path.join(root, 'a', 'x.txt');
    const expected = [deep, shallow].flatMap((f) => ['CREATE', 'MODIFY', 'CLOSE_WRITE'].map((t) => `${t} ${f}`));
    expect(new Set(pairs(out.existing))).toEqual(new Set(expected));
    for (const e of out.existing) {
      expect(e.pid).toBe(out.pid);
      expect(e.name).toBe(path.basename(e.path!));
    }
  });

  test('directories made later (mkdir -p, files at once): every created path is reported as CREATE', () => {
    const creates = out.later.filter((e) => e.types.includes('CREATE'));
    for (const p of out.made) {
      expect([p, creates.some((e) => e.path === p && e.isDirectory && e.types.includes('ONDIR'))]).toEqual([p, true]);
    }
    for (const p of out.files) {
      expect([p, creates.some((e) => e.path === p && !e.isDirectory)]).toEqual([p, true]);
    }
    // Some come from the scan of a directory marked after they were made (pid 0); duplicates are allowed.
    const allowed = new Set([...out.made, ...out.files]);
    for (const e of out.later) {
      expect([e.path, allowed.has(e.path!)]).toEqual([e.path, true]);
      expect([0, out.pid]).toContain(e.pid);
      expect(e.name).toBe(path.basename(e.path!));
    }
  });

  test('a directory made later is then watched itself: later events inside it arrive from the process', () => {
    const q = out.made[2];
    const three = out.files[2];
    const four = path.join(q, '4');
    const pairsSeen = new Set(pairs(out.afterFollow));
    expect(pairsSeen).toEqual(new Set([`MODIFY ${three}`, `CLOSE_WRITE ${three}`, `CREATE ${four}`, `MODIFY ${four}`, `CLOSE_WRITE ${four}`]));
    for (const e of out.afterFollow) expect(e.pid).toBe(out.pid);
  });

  test('a directory tree moved in from outside is followed: later events inside it arrive', () => {
    const moved = path.join(root, 'moved');
    // What the tree gained by the move may be reported from a scan (CREATE, pid 0); nothing else.
    const allowed = new Set([`MOVED_TO ${moved}/`, `CREATE ${moved}/inner/`, `CREATE ${moved}/inner/old.txt`]);
    for (const p of pairs(out.movedIn)) expect([p, allowed.has(p)]).toEqual([p, true]);
    expect(new Set(pairs(out.afterMove))).toEqual(new Set(['CREATE', 'MODIFY', 'CLOSE_WRITE'].map((t) => `${t} ${out.movedFile}`)));
    for (const e of out.afterMove) expect(e.pid).toBe(out.pid);
  });

  test('removeWatch stops it, in the directories followed later too', () => {
    expect(out.removed).toEqual([]);
  });
});
