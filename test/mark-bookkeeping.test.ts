/**
 * Marks bookkeeping: which kernel marks each watch placed, in which group, on
 * which target, with which bits; so that removing one watch takes away
 * exactly what no other watch still needs, and a watch that partly fell back
 * to an fd-mode group is still scoped and removable. ramfs stands in for a
 * filesystem that cannot report file ids on mount and filesystem marks
 * (EOPNOTSUPP), which sends those marks to the fd-mode group.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Fanotify, MaskFlags } from '../lib';
import { runChild, reapAll } from './helpers/child';
import { ensureDist, readableDist } from './helpers/dist';
import { brief, collectFor, waitForMatch, withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';

const QUIET_MS = 300;
const NOBODY = 65534;

describeRoot('marks bookkeeping: per group and target, with the bits each watch asked for', () => {
  let scratch: Scratch;
  const mounts: string[] = [];

  beforeAll(() => {
    scratch = mountTmpfs();
  });
  afterEach(() => reapAll());
  afterAll(() => {
    for (const m of mounts.reverse()) {
      try {
        execFileSync('umount', ['-l', m]);
      } catch {
        // already gone
      }
    }
    scratch.cleanup();
  });

  /** A ramfs mounted at `dir` (created): its mount and filesystem marks cannot report file ids. */
  function mountRamfs(dir: string): string {
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-t', 'ramfs', '-o', 'mode=1777', 'fanotify-test-ramfs', dir]);
    mounts.push(dir);
    return dir;
  }

  test('a recursive watch whose submount fell back to fd mode stays scoped to its tree, and removing it removes every mark', () => {
    const base = scratch.freshDir();
    const tree = path.join(base, 'tree');
    fs.mkdirSync(tree);
    const ram = mountRamfs(path.join(tree, 'ram'));
    const outside = path.join(base, 'outside.txt');
    const inTree = path.join(tree, 'in-tree.txt');
    const inRam = path.join(ram, 'in-ram.txt');
    using fan = new Fanotify();
    fan.addWatch(tree, MaskFlags.CLOSE_WRITE, { recursive: true });

    fs.writeFileSync(outside, 'x'); // same tmpfs as the tree, outside it: not reported
    fs.writeFileSync(inTree, 'x');
    fs.writeFileSync(inRam, 'x');
    const seen = waitForMatch(fan, (e) => e.path === inRam, 'CLOSE_WRITE in the ramfs');
    const more = collectFor(fan, QUIET_MS);
    const paths = [...seen, ...more].filter((e) => e.isClose()).map((e) => e.path);
    expect(paths).toContain(inTree);
    expect(paths).toContain(inRam);
    expect(paths).not.toContain(outside);

    fan.removeWatch(tree, undefined, { recursive: true });
    fs.writeFileSync(inTree, 'y');
    fs.writeFileSync(inRam, 'y');
    expect(collectFor(fan, QUIET_MS).map(brief)).toEqual([]);
  });

  test('removeWatch(path, mask) removes those events from a mark that fell back to fd mode', () => {
    const ram = mountRamfs(path.join(scratch.freshDir(), 'ram'));
    const file = path.join(ram, 'file.txt');
    fs.writeFileSync(file, '');
    using fan = new Fanotify();
    fan.addWatch(ram, MaskFlags.OPEN | MaskFlags.CLOSE_WRITE, { mark: 'filesystem' });
    fan.removeWatch(ram, MaskFlags.OPEN, { mark: 'filesystem' });
    fs.writeFileSync(file, 'x');
    const events = waitForMatch(fan, (e) => e.isClose(), 'CLOSE_WRITE');
    expect(events.map(brief)).toEqual([['CLOSE_WRITE', file]]);
    // ... and without a mask, what is left goes too.
    fan.removeWatch(ram, undefined, { mark: 'filesystem' });
    fs.writeFileSync(file, 'y');
    expect(collectFor(fan, QUIET_MS).map(brief)).toEqual([]);
  });

  test('two filesystem-mark watches on one filesystem: removing one leaves the other its events', () => {
    const dir = scratch.freshDir('a', 'b');
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'a', 'b');
    const file = path.join(b, 'file.txt');
    using fan = new Fanotify();
    fan.addWatch(a, MaskFlags.CLOSE_WRITE, { mark: 'filesystem' });
    fan.addWatch(b, MaskFlags.CLOSE_WRITE | MaskFlags.CREATE, { mark: 'filesystem' });
    fan.removeWatch(b, undefined, { mark: 'filesystem' });
    fs.writeFileSync(file, 'x');
    const events = waitForMatch(fan, (e) => e.isClose() && e.path === file, 'CLOSE_WRITE');
    // CREATE went with the watch that asked for it; CLOSE_WRITE stays for the other.
    expect(events.filter((e) => e.path === file).map(brief)).toEqual([['CLOSE_WRITE', file]]);
    fan.removeWatch(a, undefined, { mark: 'filesystem' });
    fs.writeFileSync(file, 'y');
    expect(collectFor(fan, QUIET_MS).map(brief)).toEqual([]);
  });

  test('two inode watches on one directory (through a symbolic link): removing one leaves the other its events', () => {
    const dir = scratch.freshDir('d');
    const real = path.join(dir, 'd');
    const link = path.join(dir, 'link');
    fs.symlinkSync(real, link);
    const file = path.join(real, 'file.txt');
    using fan = new Fanotify();
    fan.addWatch(real, MaskFlags.CLOSE_WRITE);
    fan.addWatch(link, MaskFlags.CLOSE_WRITE | MaskFlags.OPEN);
    fan.removeWatch(link);
    fs.writeFileSync(file, 'x');
    const events = waitForMatch(fan, (e) => e.isClose(), 'CLOSE_WRITE');
    expect(events.map(brief)).toEqual([['CLOSE_WRITE', file]]);
  });

  test('removing a watch takes away ONDIR only when no other watch on the inode needs it', () => {
    const dir = scratch.freshDir('d');
    const real = path.join(dir, 'd');
    const link = path.join(dir, 'link');
    fs.symlinkSync(real, link);
    using fan = new Fanotify();
    fan.addWatch(real, MaskFlags.CREATE); // children and the directory itself
    fan.addWatch(link, MaskFlags.ATTRIB, { onChildren: false }); // the directory itself (ONDIR) only
    fan.removeWatch(real);
    fs.chmodSync(real, 0o750);
    const events = waitForMatch(fan, (e) => e.isAttrib(), 'ATTRIB');
    expect(events.map(brief)).toEqual([['ATTRIB|ONDIR', real]]);
    fs.writeFileSync(path.join(real, 'child.txt'), ''); // no CREATE any more, and no child ATTRIB
    fs.chmodSync(path.join(real, 'child.txt'), 0o600);
    expect(collectFor(fan, QUIET_MS).map(brief)).toEqual([]);
  });

  describe('unprivileged recursion (a child running as nobody)', () => {
    let tree: string;

    beforeAll(() => {
      ensureDist();
      tree = scratch.freshDir('sub');
      fs.chownSync(tree, NOBODY, NOBODY);
      fs.chownSync(path.join(tree, 'sub'), NOBODY, NOBODY);
    });

    /** Runs `body` as nobody with a Fanotify `fan` and `tree`; it sets `out`, printed as JSON. */
    async function asNobody(body: string): Promise<Record<string, unknown>> {
      const dist = readableDist();
      const code = `
        const fs = require('fs');
        const path = require('path');
        const { Fanotify, MaskFlags } = require(${JSON.stringify(dist)});
        const tree = process.argv[1];
        const out = {};
        function readFor(fan, ms) {
          const events = [];
          const deadline = Date.now() + ms;
          while (Date.now() < deadline) events.push(...fan.readEvents({ timeout: Math.max(1, deadline - Date.now()) }));
          return events.map((e) => [e.types().join('|'), e.path]);
        }
        const fan = new Fanotify();
        try { ${body} } catch (e) { out.error = String(e && e.message); }
        fan.close();
        console.log(JSON.stringify(out));
      `;
      const args = [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', code, tree];
      const r = await withTimeout(runChild('setpriv', args, 15000, { cwd: '/' }), 20000, 'the child running as nobody');
      const line = r.stdout.trim().split('\n').pop() ?? '';
      try {
        return JSON.parse(line);
      } catch {
        throw new Error(`the child printed no JSON (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      }
    }

    test('every watch that covers an event keeps the bits it asked for, not only the first one found', async () => {
      const out = await asNobody(`
        fan.addWatch(tree, MaskFlags.CLOSE_WRITE, { recursive: true });
        fan.addWatch(path.join(tree, 'sub'), MaskFlags.CREATE);
        fs.writeFileSync(path.join(tree, 'sub', 'one.txt'), '');
        out.events = readFor(fan, 1000);
      `);
      expect(out.error).toBeUndefined();
      const file = path.join(tree, 'sub', 'one.txt');
      expect(out.events).toEqual(expect.arrayContaining([['CREATE', file], ['CLOSE_WRITE', file]]));
    });

    test('directories created and deleted inside a recursive watch do not pile up in its bookkeeping', async () => {
      // White-box: the child reaches the engine (dist/core) to count targets.
      const out = await asNobody(`
        fan.close();
        const { Core } = require(${JSON.stringify(path.join(readableDist(), 'core'))});
        const { readOptions } = require(${JSON.stringify(path.join(readableDist(), 'options'))});
        const core = new Core(readOptions({}));
        const churn = path.join(tree, 'churn');
        fs.mkdirSync(churn);
        core.addWatch(churn, MaskFlags.CLOSE_WRITE, { recursive: true });
        const record = [...core.marks.records.values()][0];
        for (let i = 0; i < 3000; i++) {
          const dir = path.join(churn, 'd' + i);
          fs.mkdirSync(dir);
          core.convert(core.take(1000, 1000)); // follows the new directory: one more target
          fs.rmdirSync(dir);
        }
        out.targets = record.targets.size;
        out.placements = record.placements.size;
        out.objects = core.marks.objects.size;
        const last = path.join(churn, 'last');
        fs.mkdirSync(last);
        // Until 'last' is followed (a read may still hold the churn's events).
        for (const until = Date.now() + 5000; !record.targets.has(last) && Date.now() < until; ) core.convert(core.take(1000, 100));
        fs.writeFileSync(path.join(last, 'f.txt'), '');
        out.events = [];
        for (const until = Date.now() + 5000; out.events.length === 0 && Date.now() < until; ) {
          out.events.push(...core.convert(core.take(1000, 100)).map((d) => [d.event.types().join('|'), d.event.path]));
        }
        core.close();
      `);
      expect(out.error).toBeUndefined();
      expect(out.targets).toBeLessThanOrEqual(2048);
      expect(out.placements).toBeLessThanOrEqual(2048);
      expect(out.objects).toBeLessThanOrEqual(2048);
      // ... and following still works afterwards.
      expect(out.events).toEqual([['CLOSE_WRITE', path.join(tree, 'churn', 'last', 'f.txt')]]);
    });

    test('removing a recursive watch leaves a plain watch on one of its directories its events', async () => {
      const out = await asNobody(`
        fan.addWatch(path.join(tree, 'sub'), MaskFlags.CREATE);
        fan.addWatch(tree, MaskFlags.CREATE | MaskFlags.CLOSE_WRITE, { recursive: true });
        fan.removeWatch(tree, undefined, { recursive: true });
        fs.writeFileSync(path.join(tree, 'sub', 'two.txt'), '');
        out.events = readFor(fan, 1000);
      `);
      expect(out.error).toBeUndefined();
      expect(out.events).toEqual([['CREATE', path.join(tree, 'sub', 'two.txt')]]);
    });
  });
});
