/**
 * What a privileged recursive watch's scope filter decides about, against
 * the real kernel: the filesystem mark reports the object, so membership in
 * the tree is decided by the object, not by the path the opener used.
 *
 * - a file inside the tree opened through a bind mount of the tree is asked
 *   about (and reported with the watched tree's path);
 * - a file nested deeper than PATH_MAX inside the tree, whose path cannot be
 *   read, is asked about (an event that cannot be placed is never allowed
 *   silently);
 * - a directory renamed in the same read does not make events that happened
 *   inside the tree disappear (nor ones from outside appear);
 * - a file outside the tree on the same filesystem still never reaches
 *   JavaScript, whichever way it is reached.
 *
 * Everything happens on a private tmpfs; the bind mounts live in the test
 * runner's private mount namespace. Opens come from child processes
 * (allowSelf answers the test's own).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AsyncFanotify, Fanotify, MaskFlags, type FanotifyEvent } from '../lib';
import { reapAll, startChild, startNode } from './helpers/child';
import { brief, collectFor, waitForMatch } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { finished } from './helpers/wait';

/**
 * A child that walks `levels` directories named 'd'*200 down from argv[2]
 * (creating them with 'build'), then makes 'f' (build), reads it (read) or
 * lists the directory it is in (list).
 */
const DEEP = `
const fs = require('fs');
const [mode, base, levels] = process.argv.slice(1);
process.chdir(base);
const name = 'd'.repeat(200);
for (let i = 0; i < Number(levels); i++) {
  if (mode === 'build') fs.mkdirSync(name);
  process.chdir(name);
}
if (mode === 'build') { fs.writeFileSync('f', 'deep\\n'); process.exit(0); }
try {
  if (mode === 'list') process.stdout.write(fs.readdirSync('.').join(','));
  else process.stdout.write(fs.readFileSync('f', 'utf8'));
} catch (e) { process.stderr.write(e.code); process.exit(1); }
`;
/** 24 levels of 201 bytes: a path of about 4.8 KiB, more than PATH_MAX (4096). */
const DEEP_LEVELS = 24;

interface Asked {
  pid: number;
  path: string | null;
}

describeRoot('recursive permission scope: membership by object', () => {
  let scratch: Scratch;
  const binds: string[] = [];

  beforeAll(() => {
    scratch = mountTmpfs();
  });
  afterEach(() => {
    reapAll();
    while (binds.length > 0) execFileSync('umount', ['-l', binds.pop()!]);
  });
  afterAll(() => scratch?.cleanup());

  function bind(from: string, to: string): void {
    fs.mkdirSync(to, { recursive: true });
    execFileSync('mount', ['--bind', from, to]);
    binds.push(to);
  }

  /** A permission watch that denies every child's open in the tree, and records what it was asked. */
  async function denyingWatch(tree: string): Promise<{ afan: AsyncFanotify; asked: Asked[] }> {
    const afan = new AsyncFanotify({ permissionTimeout: 20000 });
    const asked: Asked[] = [];
    afan.on('permission', (ev) => {
      asked.push({ pid: ev.pid, path: ev.path });
      afan.deny(ev);
    });
    await afan.addWatch(tree, MaskFlags.OPEN_PERM, { recursive: true });
    return { afan, asked };
  }

  test('a file in the tree opened through a bind mount of the tree is asked about, with the tree path', async () => {
    const top = scratch.freshDir('tree/sub');
    const tree = path.join(top, 'tree');
    const secret = path.join(tree, 'sub', 'secret');
    const outside = path.join(top, 'outside');
    fs.writeFileSync(secret, 'secret\n');
    fs.writeFileSync(outside, 'outside\n');
    const alias = path.join(top, 'alias');
    bind(tree, alias);
    const { afan, asked } = await denyingWatch(tree);
    try {
      const cat = startChild('cat', [path.join(alias, 'sub', 'secret')], 25000);
      const out = await finished(cat, 5000, 'cat through the bind mount');
      expect({ code: out.code, stdout: out.stdout }).toEqual({ code: 1, stdout: '' });
      expect(out.stderr).toMatch(/Operation not permitted/);
      expect(asked).toEqual([{ pid: cat.pid, path: secret }]);

      // A file outside the tree on the same filesystem is still allowed without asking.
      const other = startChild('cat', [outside], 25000);
      const otherOut = await finished(other, 5000, 'cat outside the tree');
      expect({ code: otherOut.code, stdout: otherOut.stdout }).toEqual({ code: 0, stdout: 'outside\n' });
      expect(asked).toHaveLength(1);
    } finally {
      await afan.close();
    }
  });

  test('a file outside the tree reached through a bind mount of its parent is allowed without asking', async () => {
    const top = scratch.freshDir('tree');
    const tree = path.join(top, 'tree');
    const outside = path.join(top, 'outside');
    fs.writeFileSync(outside, 'outside\n');
    fs.writeFileSync(path.join(tree, 'inside'), 'inside\n');
    // The whole tmpfs directory, tree included, seen a second time elsewhere.
    const alias = scratch.file(`alias-of-${path.basename(top)}`);
    bind(top, alias);
    const { afan, asked } = await denyingWatch(tree);
    try {
      const other = startChild('cat', [path.join(alias, 'outside')], 25000);
      const otherOut = await finished(other, 5000, 'cat outside the tree, through the bind mount');
      expect({ code: otherOut.code, stdout: otherOut.stdout }).toEqual({ code: 0, stdout: 'outside\n' });
      expect(asked).toEqual([]);
      const inside = startChild('cat', [path.join(alias, 'tree', 'inside')], 25000);
      const insideOut = await finished(inside, 5000, 'cat inside the tree, through the bind mount');
      expect(insideOut.code).toBe(1);
      expect(asked).toEqual([{ pid: inside.pid, path: path.join(tree, 'inside') }]);
    } finally {
      await afan.close();
    }
  });

  test('a watched directory that is itself a bind mount: its files opened by their other path are asked about, with the watched path', async () => {
    const top = scratch.freshDir('source');
    const source = path.join(top, 'source');
    fs.writeFileSync(path.join(source, 'f'), 'f\n');
    fs.writeFileSync(path.join(top, 'outside'), 'outside\n');
    const watched = path.join(top, 'watched');
    bind(source, watched);
    const { afan, asked } = await denyingWatch(watched);
    try {
      const other = startChild('cat', [path.join(top, 'outside')], 25000);
      expect((await finished(other, 5000, 'cat outside the tree')).code).toBe(0);
      expect(asked).toEqual([]);
      const cat = startChild('cat', [path.join(source, 'f')], 25000);
      expect((await finished(cat, 5000, 'cat by the source path')).code).toBe(1);
      expect(asked).toEqual([{ pid: cat.pid, path: path.join(watched, 'f') }]);
    } finally {
      await afan.close();
    }
  });

  test('a file deeper than PATH_MAX inside the tree is asked about (its path cannot be read: null)', async () => {
    const top = scratch.freshDir('tree');
    const tree = path.join(top, 'tree');
    const build = await finished(startNode(DEEP, ['build', tree, String(DEEP_LEVELS)]), 10000, 'building the deep tree');
    expect(build).toMatchObject({ code: 0, stderr: '' });
    const { afan, asked } = await denyingWatch(tree);
    try {
      const reader = startNode(DEEP, ['read', tree, String(DEEP_LEVELS)], 25000);
      const out = await finished(reader, 5000, 'reading the deep file');
      expect({ code: out.code, stdout: out.stdout, stderr: out.stderr }).toEqual({ code: 1, stdout: '', stderr: 'EPERM' });
      expect(asked).toEqual([{ pid: reader.pid, path: null }]);
    } finally {
      await afan.close();
    }
  });

  test('a directory deeper than PATH_MAX is placed by the directories above it: inside asked, outside not', async () => {
    const top = scratch.freshDir('tree');
    const tree = path.join(top, 'tree');
    const outside = path.join(top, 'outside');
    fs.mkdirSync(outside);
    for (const base of [tree, outside]) {
      const build = await finished(startNode(DEEP, ['build', base, String(DEEP_LEVELS)]), 10000, 'building a deep tree');
      expect(build).toMatchObject({ code: 0, stderr: '' });
    }
    const { afan, asked } = await denyingWatch(tree);
    try {
      const away = startNode(DEEP, ['list', outside, String(DEEP_LEVELS)], 25000);
      const awayOut = await finished(away, 5000, 'listing the deep directory outside the tree');
      expect({ code: awayOut.code, stdout: awayOut.stdout, stderr: awayOut.stderr }).toEqual({ code: 0, stdout: 'f', stderr: '' });
      expect(asked).toEqual([]);
      const lister = startNode(DEEP, ['list', tree, String(DEEP_LEVELS)], 25000);
      const out = await finished(lister, 5000, 'listing the deep directory inside the tree');
      expect({ code: out.code, stdout: out.stdout, stderr: out.stderr }).toEqual({ code: 1, stdout: '', stderr: 'EPERM' });
      expect(asked).toEqual([{ pid: lister.pid, path: null }]);
    } finally {
      await afan.close();
    }
  });

  test('notification events on the tree reached through a bind mount carry the tree path', async () => {
    const top = scratch.freshDir('tree');
    const tree = path.join(top, 'tree');
    const alias = path.join(top, 'alias');
    bind(tree, alias);
    using fan = new Fanotify();
    fan.addWatch(tree, MaskFlags.CREATE | MaskFlags.CLOSE_WRITE, { recursive: true });
    const made = await finished(startChild('sh', ['-c', `mkdir ${alias}/d && echo x > ${alias}/d/f && echo y > ${top}/outside`]), 5000, 'sh');
    expect(made.code).toBe(0);
    const events = waitForMatch(fan, (ev) => ev.types().includes('CLOSE_WRITE'), 'CLOSE_WRITE').concat(collectFor(fan, 100));
    expect(events.map(brief)).toEqual([
      ['CREATE|ONDIR', path.join(tree, 'd')],
      ['CREATE', path.join(tree, 'd', 'f')],
      ['CLOSE_WRITE', path.join(tree, 'd', 'f')],
    ]);
  });

  test('a directory renamed in the same read: events inside the tree are kept, events from outside are not', () => {
    const top = scratch.freshDir('tree');
    const tree = path.join(top, 'tree');
    fs.mkdirSync(path.join(top, 'elsewhere'));
    // queueLimit 1: once one event is queued, the reader leaves the rest in
    // the kernel, so everything below comes out of one read.
    using fan = new Fanotify({ queueLimit: 1 });
    fan.addWatch(tree, MaskFlags.CREATE | MaskFlags.RENAME, { recursive: true });
    const first = path.join(tree, 'first');
    fs.writeFileSync(first, '');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200); // the reader reads 'first' and stops

    const leaving = path.join(tree, 'leaving');
    fs.mkdirSync(leaving);
    fs.writeFileSync(path.join(leaving, 'made-inside'), '');
    fs.renameSync(leaving, path.join(top, 'elsewhere', 'left'));
    const arriving = path.join(top, 'elsewhere', 'arriving');
    fs.mkdirSync(arriving);
    fs.writeFileSync(path.join(arriving, 'made-outside'), '');
    fs.renameSync(arriving, path.join(tree, 'arrived'));

    const last = (ev: FanotifyEvent) => ev.types().includes('RENAME') && ev.newPath === path.join(tree, 'arrived');
    const events = waitForMatch(fan, last, 'RENAME into the tree').concat(collectFor(fan, 100));
    expect(events.map(brief)).toEqual([
      ['CREATE', first],
      ['CREATE|ONDIR', leaving],
      ['CREATE', path.join(leaving, 'made-inside')],
      ['RENAME|ONDIR', path.join(top, 'elsewhere', 'left')],
      ['RENAME|ONDIR', path.join(tree, 'arrived')],
    ]);
  });
});
