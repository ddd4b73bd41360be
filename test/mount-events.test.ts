/**
 * Mount events (Linux 6.15): a `mark: 'mntns'` watch on a mount namespace
 * file reports MNT_ATTACH / MNT_DETACH with `ev.mountId` (the unique 64-bit
 * mount id) and `ev.path`, the mount point (for a detach: where it was, also
 * for mounts that existed before the watch; for a move, both places). All
 * inside the private mount namespace scripts/run-tests.js runs jest in, and a
 * child namespace made here with unshare. On an older kernel addWatch throws
 * NotSupported (the kernel matrix runs this file on 5.10 and 6.12).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AsyncFanotify, capabilities, Fanotify, MaskFlags, type FanotifyEvent } from '../lib';
import { reapAll, startChild } from './helpers/child';
import { ensureDist } from './helpers/dist';
import { collectFor, collectUntil, withTimeout } from './helpers/events';
import { thrown } from './helpers/errors';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { finished, waitUntil } from './helpers/wait';

const MOUNTS = MaskFlags.MNT_ATTACH | MaskFlags.MNT_DETACH;
const CLI = path.join(__dirname, '..', 'dist', 'cli.js');

const mount = (point: string) => execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'fanotify-test-mnt', point], { stdio: 'pipe' });
const umount = (point: string) => execFileSync('umount', [point], { stdio: 'pipe' });

/** [types, path, oldPath, newPath] of each event. */
function brief(events: FanotifyEvent[]): Array<[string, string | null, string | null, string | null]> {
  return events.map((e) => [e.types().join('|'), e.path, e.oldPath, e.newPath]);
}

describeRoot('mount events: MNT_ATTACH / MNT_DETACH on a mntns mark', () => {
  let scratch: Scratch;
  beforeAll(() => (scratch = mountTmpfs('size=4m')));
  afterAll(() => scratch.cleanup());
  afterEach(() => reapAll());

  if (!capabilities().mntns) {
    test('a kernel without mount events: addWatch throws NotSupported naming Linux 6.15, in both front ends and the CLI', async () => {
      using fan = new Fanotify();
      const err = thrown(() => fan.addWatch('/proc/self/ns/mnt', MOUNTS, { mark: 'mntns' }));
      expect(err.kind).toBe('NotSupported');
      expect(err.message).toMatch(/MNT_ATTACH.*Linux 6\.15/);
      const afan = new AsyncFanotify();
      try {
        await expect(afan.addWatch('/proc/self/ns/mnt', MaskFlags.MNT_ATTACH, { mark: 'mntns' })).rejects.toMatchObject({ kind: 'NotSupported' });
      } finally {
        await afan.close();
      }
      ensureDist();
      const cli = await finished(startChild(process.execPath, [CLI, 'watch', '--mounts', '--duration', '1'], 10000), 10000, 'fanotify watch --mounts');
      expect(cli.code).toBe(4);
      expect(cli.stderr).toMatch(/Linux 6\.15/);
    });
    return;
  }

  test('attach then detach: one event each, the mount point as path, the same mount id', () => {
    const point = scratch.freshDir('point');
    const target = path.join(point, 'point');
    using fan = new Fanotify();
    fan.addWatch('/proc/self/ns/mnt', MOUNTS, { mark: 'mntns' });
    mount(target);
    const mountinfoId = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === target)?.split(' ')[0];
    umount(target);
    const events = collectUntil(fan, (evs) => evs.some((e) => e.types().includes('MNT_DETACH')));
    expect(brief(events)).toEqual([
      ['MNT_ATTACH', target, null, null],
      ['MNT_DETACH', target, null, null],
    ]);
    const [attach, detach] = events;
    expect(typeof attach.mountId).toBe('bigint');
    // The unique 64-bit id (statx's STATX_MNT_ID_UNIQUE, statmount's: they
    // start at 2^31), not /proc/self/mountinfo's reused 32-bit one.
    expect(attach.mountId! >= 0x80000000n).toBe(true);
    expect(mountinfoId).toBeDefined();
    expect(attach.mountId).not.toBe(BigInt(mountinfoId!));
    expect(detach.mountId).toBe(attach.mountId);
    expect(attach.toJSON()).toMatchObject({ types: ['MNT_ATTACH'], path: target, mountId: attach.mountId!.toString() });
    expect(attach.isError()).toBe(false);
    expect(attach.isPermission()).toBe(false);
  });

  test('a move is one MNT_ATTACH|MNT_DETACH event with both places; a mount from before the watch is named when detached', () => {
    const dir = scratch.freshDir();
    const [a, b, before] = ['a', 'b', 'before'].map((p) => path.join(dir, p));
    for (const p of [a, b, before]) fs.mkdirSync(p);
    mount(before);
    using fan = new Fanotify();
    fan.addWatch('/proc/self/ns/mnt', MOUNTS, { mark: 'mntns' });
    mount(a);
    // Read the attach before the move, so that it is resolved where it was.
    const attached = collectUntil(fan, (evs) => evs.length > 0);
    execFileSync('mount', ['--move', a, b], { stdio: 'pipe' });
    umount(b);
    umount(before);
    const events = attached.concat(collectUntil(fan, (evs) => evs.some((e) => e.path === before)));
    expect(brief(events)).toEqual([
      ['MNT_ATTACH', a, null, null],
      ['MNT_ATTACH|MNT_DETACH', b, a, b],
      ['MNT_DETACH', b, null, null],
      ['MNT_DETACH', before, null, null],
    ]);
    expect(new Set(events.slice(0, 3).map((e) => e.mountId)).size).toBe(1);
    expect(events[3].mountId).not.toBe(events[0].mountId);
    expect(events[1].description()).toContain(`${a} -> ${b}`);
  });

  test('a mount in a child namespace: not reported on ours; reported, with its path, on a mark on the child\'s (AsyncFanotify)', async () => {
    const point = path.join(scratch.freshDir('child'), 'child');
    // A child in a mount namespace of its own (private: nothing propagates back).
    const child = startChild('unshare', ['--mount', '--propagation', 'private', 'sleep', '30'], 40000);
    const nsFile = `/proc/${child.pid}/ns/mnt`;
    await waitUntil(() => {
      try {
        return fs.readlinkSync(nsFile) !== fs.readlinkSync('/proc/self/ns/mnt');
      } catch {
        return false;
      }
    }, 5000, 'the child to enter its own mount namespace');
    using ours = new Fanotify();
    ours.addWatch('/proc/self/ns/mnt', MOUNTS, { mark: 'mntns' });
    const afan = new AsyncFanotify();
    try {
      await afan.addWatch(nsFile, MOUNTS, { mark: 'mntns' });
      const seen: FanotifyEvent[] = [];
      afan.on('event', (ev) => seen.push(ev));
      execFileSync('nsenter', ['-t', String(child.pid), '-m', 'mount', '-t', 'tmpfs', '-o', 'size=1m', 'fanotify-test-child', point], { stdio: 'pipe' });
      execFileSync('nsenter', ['-t', String(child.pid), '-m', 'umount', point], { stdio: 'pipe' });
      await withTimeout(
        new Promise<void>((resolve) => {
          const poll = setInterval(() => seen.length >= 2 && (clearInterval(poll), resolve()), 20);
        }),
        5000,
        "the child namespace's mount events",
      );
      expect(brief(seen)).toEqual([
        ['MNT_ATTACH', point, null, null],
        ['MNT_DETACH', point, null, null],
      ]);
      expect(seen[0].mountId).toBe(seen[1].mountId);
      expect(brief(collectFor(ours, 300))).toEqual([]);
    } finally {
      await afan.close();
      child.child.kill('SIGKILL');
    }
  });

  test("the CLI: 'fanotify watch --mounts' prints a line per mount event", async () => {
    ensureDist();
    const point = path.join(scratch.freshDir('cli'), 'cli');
    const watch = startChild(process.execPath, [CLI, 'watch', '--mounts', '--count', '2', '--duration', '10'], 15000);
    await withTimeout(new Promise<void>((resolve) => watch.child.stderr?.on('data', (d: Buffer) => /watching mounts/.test(d.toString()) && resolve())), 10000, 'watch to start');
    mount(point);
    umount(point);
    const r = await finished(watch, 10000, 'fanotify watch --mounts');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    // The command name, or '?' when the process was gone before the event was read.
    expect(lines[0]).toMatch(new RegExp(`^\\S+\\s+MNT_ATTACH\\s+${point}\\s+mount \\d+\\s+pid \\d+ (mount|\\?)$`));
    expect(lines[1]).toMatch(new RegExp(`^\\S+\\s+MNT_DETACH\\s+${point}\\s+mount \\d+\\s+pid \\d+ (umount|\\?)$`));
  });
});
