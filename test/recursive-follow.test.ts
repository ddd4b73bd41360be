/**
 * recursive: true must not miss a directory: files created the moment after
 * their directory appears, deep chains made at once, trees moved in, and
 * directories moved inside the tree (their events keep full, current paths).
 * The same child program runs as root (filesystem marks) and as nobody (a
 * mark per directory, walked and followed natively: native/walker.h), with
 * Fanotify and with AsyncFanotify (whose unprivileged walk runs on a walker
 * thread). Also: a normal user out of fanotify marks gets LimitReached
 * naming the sysctl, with nothing left marked (a private user namespace
 * with its own lower limit, so no global sysctl changes).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { capabilities } from '../lib';
import { reapAll, runChild } from './helpers/child';
import { distForOthers, ensureDist } from './helpers/dist';
import { withTimeout } from './helpers/events';
import { describeKernel } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';

const NOBODY = 65534;
const FOR_OTHERS = distForOthers();

interface Outcome {
  privileged: boolean;
  error?: string;
  missing: string[];
  late: boolean;
  movedIn: boolean;
  movedInside: string[];
  marksAfterRemove?: number;
}

/** The child: argv root, outside, mode ('sync' | 'async'); prints one JSON line. */
const CHILD = `
const fs = require('fs');
const path = require('path');
const { Fanotify, AsyncFanotify, MaskFlags, capabilities } = require(${JSON.stringify(FOR_OTHERS.dist)});
const [root, outside, mode] = process.argv.slice(1);
const out = { privileged: capabilities().privileged, missing: [], movedInside: [] };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const seen = new Set();
let fan;
async function until(done, ms) {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) {
    if (mode === 'sync') for (const e of fan.readEvents({ timeout: 50 })) { if (e.isCreate()) seen.add(e.path); }
    else await sleep(20);
  }
  return done();
}
function marks() {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync('/proc/self/fd/' + fd) !== 'anon_inode:[fanotify]') continue;
      n += (fs.readFileSync('/proc/self/fdinfo/' + fd, 'latin1').match(/^fanotify ino:/gm) || []).length;
    } catch {}
  }
  return n;
}
(async () => {
  try {
    fan = mode === 'sync' ? new Fanotify() : new AsyncFanotify();
    if (mode === 'async') fan.on('event', (e) => { if (e.isCreate()) seen.add(e.path); });
    await fan.addWatch(root, MaskFlags.CREATE, { recursive: true });

    // A burst: each directory gets a file the moment after it is made, and a
    // chain 40 deep is made at once with a file at its bottom.
    const files = [];
    for (let i = 0; i < 50; i++) {
      const d = path.join(root, 'b' + i);
      fs.mkdirSync(d);
      const f = path.join(d, 'f');
      fs.writeFileSync(f, '');
      files.push(d, f);
    }
    const chain = path.join(root, 'deep', ...Array.from({ length: 40 }, (_, i) => 'd' + i));
    fs.mkdirSync(chain, { recursive: true });
    fs.writeFileSync(path.join(chain, 'bottom'), '');
    files.push(path.join(chain, 'bottom'));
    for (let p = chain; p !== root; p = path.dirname(p)) files.push(p);
    await until(() => files.every((f) => seen.has(f)), 5000);
    out.missing = files.filter((f) => !seen.has(f));

    // The bottom of the chain is watched itself now, not only scanned.
    const late = path.join(chain, 'late');
    fs.writeFileSync(late, '');
    out.late = await until(() => seen.has(late), 3000);

    // A tree moved in from outside: its deepest directory is followed.
    fs.renameSync(path.join(outside, 'ext'), path.join(root, 'movedin'));
    await sleep(100);
    const inMoved = path.join(root, 'movedin', 't0', 't1', 't2', 't3', 'new');
    fs.writeFileSync(inMoved, '');
    out.movedIn = await until(() => seen.has(inMoved), 3000);

    // A directory moved inside the tree: events below it name its new place.
    fs.renameSync(path.join(root, 'w'), path.join(root, 'z', 'w2'));
    await sleep(100);
    const inside = [path.join(root, 'z', 'w2', 'after'), path.join(root, 'z', 'w2', 'x', 'y', 'after')];
    for (const f of inside) fs.writeFileSync(f, '');
    await until(() => inside.every((f) => seen.has(f)), 3000);
    out.movedInside = inside.filter((f) => !seen.has(f));

    await fan.removeWatch(root, undefined, { recursive: true });
    if (!out.privileged) out.marksAfterRemove = marks();
  } catch (e) {
    out.error = String((e && e.stack) || e);
  } finally {
    await fan?.close();
  }
  console.log(JSON.stringify(out));
})();
`;

/** A tree where nobody may create and read everything; an outside tree to move in. */
function makeTrees(base: string): { root: string; outside: string } {
  const root = path.join(base, 'root');
  const outside = path.join(base, 'outside');
  for (const d of [path.join(root, 'w', 'x', 'y'), path.join(root, 'z'), path.join(outside, 'ext', 't0', 't1', 't2', 't3')]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(outside, 'ext', 't0', 't1', 't2', 't3', 'old'), '');
  execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, base]);
  return { root, outside };
}

async function run(asNobody: boolean, mode: 'sync' | 'async', base: string): Promise<Outcome> {
  const { root, outside } = makeTrees(base);
  const node = [process.execPath, '-e', CHILD, root, outside, mode];
  const [cmd, args] = asNobody ? ['setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...node]] : [node[0], node.slice(1)];
  const r = await withTimeout(runChild(cmd, args, 30000, { cwd: '/' }), 35000, 'the child');
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Outcome;
  } catch {
    throw new Error(`the child printed no JSON (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

describeKernel('recursive: true misses no directory (root and nobody, Fanotify and AsyncFanotify)',
  () => capabilities().unprivileged,
  'unprivileged fanotify (FID reporting for normal users, Linux 5.13)',
  () => {
  let scratch: Scratch;
  beforeAll(() => {
    ensureDist();
    FOR_OTHERS.stage();
    scratch = mountTmpfs();
  }, 120000);
  afterAll(() => {
    reapAll();
    scratch?.cleanup();
    FOR_OTHERS.remove();
  });

  for (const asNobody of [false, true]) {
    for (const mode of ['sync', 'async'] as const) {
      test(`${asNobody ? 'nobody' : 'root'}, ${mode}: new directories with files at once, a 40-deep chain, a tree moved in, a directory moved inside`, async () => {
        const out = await run(asNobody, mode, scratch.file(`${asNobody ? 'nobody' : 'root'}-${mode}`));
        expect(out.error).toBeUndefined();
        expect(out.privileged).toBe(!asNobody);
        expect(out.missing).toEqual([]);
        expect(out.late).toBe(true);
        expect(out.movedIn).toBe(true);
        expect(out.movedInside).toEqual([]);
        // removeWatch took every mark the walks placed.
        if (asNobody) expect(out.marksAfterRemove).toBe(0);
      }, 60000);
    }
  }

  test('nobody, async: directories made (and removed) while the walker thread is still marking the tree are followed, and every path stays right', async () => {
    const base = scratch.file('during');
    const root = path.join(base, 'root');
    for (let i = 0; i < 100; i++) for (let j = 0; j < 100; j++) fs.mkdirSync(path.join(root, `a${i}`, `b${j}`), { recursive: true });
    execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, base]);
    const program = `
      const fs = require('fs');
      const path = require('path');
      const { AsyncFanotify, MaskFlags } = require(${JSON.stringify(FOR_OTHERS.dist)});
      const root = process.argv[1];
      const seen = new Set();
      const afan = new AsyncFanotify();
      afan.on('event', (e) => { if (e.isCreate()) seen.add(e.path); });
      const made = [];
      // While the walk runs: a new directory every few milliseconds, all over the tree.
      // Some removed too (the set prunes what is gone, renumbering the rest).
      const timer = setInterval(() => {
        const d = path.join(root, 'a' + ((made.length * 37) % 100), 'new' + made.length);
        fs.mkdirSync(d);
        fs.rmdirSync(path.join(root, 'a' + ((made.length * 37) % 100), 'b' + (99 - Math.floor(made.length / 100))));
        made.push(d);
      }, 2);
      (async () => {
        const out = {};
        try {
          await afan.addWatch(root, MaskFlags.CREATE, { recursive: true });
          clearInterval(timer);
          out.madeDuring = made.length;
          await new Promise((r) => setTimeout(r, 200));
          // ... and every directory of the tree keeps its path: one file in each b0.
          const files = made.map((d) => path.join(d, 'f'));
          for (let i = 0; i < 100; i++) files.push(path.join(root, 'a' + i, 'b0', 'f'));
          for (const f of files) fs.writeFileSync(f, '');
          for (const until = Date.now() + 5000; Date.now() < until && !files.every((f) => seen.has(f)); ) await new Promise((r) => setTimeout(r, 20));
          out.missing = files.filter((f) => !seen.has(f));
        } catch (e) {
          out.error = String((e && e.stack) || e);
        }
        clearInterval(timer);
        await afan.close();
        console.log(JSON.stringify(out));
      })();
    `;
    const r = await withTimeout(runChild('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', program, root], 30000, { cwd: '/' }), 35000, 'the child');
    const out = JSON.parse(r.stdout.trim().split('\n').pop() || '{}');
    expect(out.error).toBeUndefined();
    expect(out.madeDuring).toBeGreaterThan(0);
    expect(out.missing).toEqual([]);
  }, 60000);

  test('nobody, async: removeWatch while addWatch is still walking stops the walk, rejects addWatch (Aborted) and leaves no mark', async () => {
    const base = scratch.file('removed');
    const root = path.join(base, 'root');
    for (let i = 0; i < 100; i++) for (let j = 0; j < 100; j++) fs.mkdirSync(path.join(root, `a${i}`, `b${j}`), { recursive: true });
    execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, base]);
    const program = `
      const fs = require('fs');
      const { AsyncFanotify, MaskFlags } = require(${JSON.stringify(FOR_OTHERS.dist)});
      const root = process.argv[1];
      const marks = () => fs.readdirSync('/proc/self/fd').filter((fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd) === 'anon_inode:[fanotify]'; } catch { return false; } })
        .reduce((n, fd) => n + (fs.readFileSync('/proc/self/fdinfo/' + fd, 'latin1').match(/^fanotify ino:/gm) || []).length, 0);
      (async () => {
        const out = {};
        const afan = new AsyncFanotify();
        const adding = afan.addWatch(root, MaskFlags.CREATE, { recursive: true });
        await new Promise((r) => setTimeout(r, 20));
        await afan.removeWatch(root, undefined, { recursive: true });
        try {
          await adding;
          out.added = true;
        } catch (e) {
          out.kind = e.kind;
          out.message = e.message;
        }
        out.marks = marks();
        // The instance still works.
        await afan.addWatch(root + '/a0', MaskFlags.CREATE, { recursive: true });
        out.marksAfter = marks();
        await afan.close();
        console.log(JSON.stringify(out));
      })();
    `;
    const r = await withTimeout(runChild('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', program, root], 30000, { cwd: '/' }), 35000, 'the child');
    const out = JSON.parse(r.stdout.trim().split('\n').pop() || '{}');
    // A walk that won the race finished first: then addWatch resolved and removeWatch took it all.
    if (!out.added) {
      expect(out.kind).toBe('Aborted');
      expect(out.message).toContain('removeWatch');
    }
    expect(out.marks).toBe(0);
    expect(out.marksAfter).toBe(101);
  }, 60000);

  test('a normal user out of fanotify marks: LimitReached naming fs.fanotify.max_user_marks, nothing left marked, a smaller tree still works; new directories past the limit are a warning', async () => {
    const base = scratch.file('limit');
    const tree = path.join(base, 'tree');
    for (let i = 0; i < 30; i++) fs.mkdirSync(path.join(tree, `a${i}`, 'b', 'c'), { recursive: true });
    fs.mkdirSync(path.join(base, 'small', 'one'), { recursive: true });
    fs.chmodSync(base, 0o755);
    // A user namespace of its own with a limit of 50 marks (checked along
    // the namespace chain): the limit a normal user meets, without touching
    // the global sysctl. Its root is no CAP_SYS_ADMIN of the initial
    // namespace: unprivileged fanotify, as for nobody.
    const program = `
      (async () => {
      const fs = require('fs');
      const { Fanotify, MaskFlags, capabilities } = require(${JSON.stringify(FOR_OTHERS.dist)});
      const out = { privileged: capabilities().privileged };
      const fan = new Fanotify();
      const marks = () => fs.readdirSync('/proc/self/fd').filter((fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd) === 'anon_inode:[fanotify]'; } catch { return false; } })
        .reduce((n, fd) => n + (fs.readFileSync('/proc/self/fdinfo/' + fd, 'latin1').match(/^fanotify ino:/gm) || []).length, 0);
      try {
        fan.addWatch(${JSON.stringify(tree)}, MaskFlags.CREATE, { recursive: true });
        out.added = true;
      } catch (e) {
        out.kind = e.kind;
        out.code = e.code;
        out.message = e.message;
      }
      out.marksAfter = marks();
      try {
        fan.addWatch(${JSON.stringify(path.join(base, 'small'))}, MaskFlags.CREATE, { recursive: true });
        out.smallMarks = marks();
        // New directories past the limit: not watched, and said so (a warning).
        out.warnings = [];
        process.on('warning', (w) => { if (w.name === 'FanotifyWarning') out.warnings.push(w.message); });
        for (let i = 0; i < 60; i++) fs.mkdirSync(${JSON.stringify(path.join(base, 'small', 'one'))} + '/n' + i);
        for (const until = Date.now() + 3000; Date.now() < until && out.warnings.length === 0; ) {
          fan.readEvents({ timeout: 100 });
          await new Promise((r) => setImmediate(r)); // process warnings are emitted on the next tick
        }
        out.marksAtLimit = marks();
      } catch (e) {
        out.smallError = e.message;
      }
      fan.close();
      console.log(JSON.stringify(out));
      })();
    `;
    // The namespace's root sets the limit, then runs the program with no capabilities.
    const shell = 'echo 50 > /proc/sys/user/max_fanotify_marks && exec setpriv --bounding-set=-all --inh-caps=-all "$0" -e "$1"';
    const r = await withTimeout(runChild('unshare', ['--user', '--map-root-user', 'sh', '-c', shell, process.execPath, program], 20000, { cwd: '/' }), 25000, 'the child');
    if (!r.stdout.trim()) throw new Error(`the child printed nothing (exit ${r.code}): ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() || '{}');
    expect(out.privileged).toBe(false);
    expect(out.added).toBeUndefined();
    expect(out.kind).toBe('LimitReached');
    expect(out.code).toBe('ENOSPC');
    expect(out.message).toContain('fs.fanotify.max_user_marks');
    expect(out.marksAfter).toBe(0);
    expect(out.smallError).toBeUndefined();
    expect(out.smallMarks).toBe(2);
    expect(out.marksAtLimit).toBe(50);
    expect(out.warnings.length).toBeGreaterThan(0);
    expect(out.warnings[0]).toContain('a new directory is not watched');
    expect(out.warnings[0]).toContain('fs.fanotify.max_user_marks');
  }, 30000);
});
