/**
 * File descriptors: none leak per event, none survive close(), none reach a
 * child process; and the lifecycle around close() (idempotent, dispose,
 * Closed errors afterwards).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Fanotify, FanotifyError, FanotifyEvent, MaskFlags } from '../lib';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { collectUntil } from './helpers/events';
import { reapAll, runChild, startChild } from './helpers/child';
import { thrown } from './helpers/errors';

/** This process's open fds, by number, with what each points to. */
function openFds(): Map<number, string> {
  const fds = new Map<number, string>();
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try {
      fds.set(Number(name), fs.readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      // the directory listing's own fd, closed by now
    }
  }
  return fds;
}

function fanotifyCount(fds: Map<number, string>): number {
  return [...fds.values()].filter((t) => t === 'anon_inode:[fanotify]').length;
}

/** What changed between two snapshots, for a readable failure. */
function diff(before: Map<number, string>, after: Map<number, string>): { opened: string[]; closed: string[] } {
  const opened = [...after].filter(([fd, t]) => before.get(fd) !== t).map(([fd, t]) => `${fd} -> ${t}`);
  const closed = [...before].filter(([fd, t]) => after.get(fd) !== t).map(([fd, t]) => `${fd} -> ${t}`);
  return { opened, closed };
}

describeRoot('fds and close()', () => {
  let scratch: Scratch;

  /** Every kind of group (fd and FID) on a directory, one round of events read. */
  function warmUp(): void {
    const dir = scratch.freshDir();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.OPEN | MaskFlags.CLOSE);
    fs.writeFileSync(path.join(dir, 'w'), '');
    collectUntil(fan, (evs) => evs.some((e) => e.isClose()), 3000);
  }

  beforeAll(() => {
    scratch = mountTmpfs();
    // Load everything lazily loaded (addon, capability probes) before counting.
    warmUp();
  });
  afterAll(() => {
    reapAll();
    scratch.cleanup();
  });

  test('2000+ events read: no fd left open per event; close() returns every fd', () => {
    const dir = scratch.freshDir();
    const before = openFds();
    const fan = new Fanotify();
    try {
      fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.DELETE | MaskFlags.OPEN | MaskFlags.CLOSE);
      // A read that waits once: a blocking read's wake-up eventfd is made at
      // the first wait and kept for the instance's life (not per event).
      expect(fan.readEvents({ timeout: 20 })).toEqual([]);
      const watching = openFds();
      // The instance holds its kernel group(s).
      expect(fanotifyCount(watching) - fanotifyCount(before)).toBeGreaterThanOrEqual(1);

      const n = 700;
      let events: FanotifyEvent[] = [];
      let marker = '';
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < n; i++) {
          const f = path.join(dir, `r${round}-${i}`);
          fs.writeFileSync(f, 'x');
          if (round === 1) fs.unlinkSync(f);
        }
        marker = path.join(dir, `marker-${round}`);
        fs.writeFileSync(marker, '');
        // The marker's CLOSE_WRITE and CREATE come last (in one queue, or each in its group's).
        const m = marker;
        const got = collectUntil(fan, (evs) => evs.some((e) => e.isClose() && e.path === m) && evs.some((e) => e.isCreate() && e.path === m), 10000);
        expect(got.filter((e) => e.path === m).length).toBeGreaterThanOrEqual(2);
        events = events.concat(got);
        // Mid-stream: the same fds as right after addWatch.
        expect(diff(watching, openFds())).toEqual({ opened: [], closed: [] });
      }
      expect(events.length).toBeGreaterThanOrEqual(2000);
      expect(events.some((e) => e.isOverflow())).toBe(false);
      expect(events.every((e) => e.fd === -1)).toBe(true);
      expect(diff(watching, openFds())).toEqual({ opened: [], closed: [] });
    } finally {
      fan.close();
    }
    expect(diff(before, openFds())).toEqual({ opened: [], closed: [] });
  });

  test('events read but never looked at, and events still queued at close(), leak nothing', () => {
    const dir = scratch.freshDir();
    const before = openFds();
    {
      using fan = new Fanotify();
      fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE | MaskFlags.CREATE);
      for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(dir, `q${i}`), 'x');
      fan.readEvents({ timeout: 1000 }); // some read, most still queued
    }
    expect(diff(before, openFds())).toEqual({ opened: [], closed: [] });
  });

  test('no fanotify fd (or any other of its fds) leaks into a spawned child', async () => {
    const dir = scratch.freshDir();
    const before = openFds();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.OPEN | MaskFlags.CLOSE);
    fs.writeFileSync(path.join(dir, 'x'), '');
    collectUntil(fan, (evs) => evs.some((e) => e.isClose()), 3000);
    const mine = diff(before, openFds()).opened;
    // The parent does hold fanotify fds: the check below can fail.
    expect(mine.some((t) => t.endsWith('anon_inode:[fanotify]'))).toBe(true);

    const result = await runChild('ls', ['-l', '/proc/self/fd/']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('/proc/'); // ls's own listing fd: the output is real
    expect(result.stdout).not.toContain('anon_inode:[fanotify]');
    expect(result.stdout).not.toContain('anon_inode:[eventfd]');
    expect(result.stdout).not.toContain(scratch.dir);
  });

  test('a child started while the instance watches has none of its fds in /proc/<pid>/fd', async () => {
    const dir = scratch.freshDir();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.OPEN);
    const child = startChild('sleep', ['5'], 10000);
    try {
      // Wait for the exec (the child's cmdline becomes sleep's).
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline && !fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').startsWith('sleep')) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').startsWith('sleep')).toBe(true);
      const targets = fs.readdirSync(`/proc/${child.pid}/fd`).map((fd) => {
        try {
          return fs.readlinkSync(`/proc/${child.pid}/fd/${fd}`);
        } catch {
          return '';
        }
      });
      expect(targets.length).toBeGreaterThanOrEqual(3); // stdio
      expect(targets.filter((t) => t.startsWith('anon_inode:') || t.startsWith(scratch.dir))).toEqual([]);
    } finally {
      child.child.kill('SIGKILL');
      await child.done;
    }
  });

  test('close() is idempotent and never throws; closed says so', () => {
    const dir = scratch.freshDir();
    const fan = new Fanotify();
    expect(fan.closed).toBe(false);
    fan.addWatch(dir, MaskFlags.OPEN);
    fan.close();
    expect(fan.closed).toBe(true);
    expect(() => fan.close()).not.toThrow();
    expect(() => fan[Symbol.dispose]()).not.toThrow();
    expect(() => fan.close()).not.toThrow();
    expect(fan.closed).toBe(true);
  });

  test('close() of an instance that never watched anything, and of a withFlags instance', () => {
    const before = openFds();
    const plain = new Fanotify();
    plain.close();
    plain.close();
    const exact = Fanotify.withFlags(0);
    exact.close();
    exact.close();
    expect(plain.closed && exact.closed).toBe(true);
    expect(diff(before, openFds())).toEqual({ opened: [], closed: [] });
  });

  test('close() after the watched directory is gone, and after the tmpfs is unmounted, never throws', () => {
    const own = mountTmpfs('size=1m');
    let fan: Fanotify | undefined;
    try {
      const dir = path.join(own.dir, 'gone');
      fs.mkdirSync(dir);
      fan = new Fanotify();
      fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.OPEN);
      fan.addWatch(own.dir, MaskFlags.CLOSE_WRITE, { mark: 'filesystem' });
      fs.rmdirSync(dir);
    } finally {
      own.cleanup();
    }
    expect(() => fan!.close()).not.toThrow();
    expect(fan!.closed).toBe(true);
  });

  test('Symbol.dispose: `using` closes the instance and returns its fds', () => {
    const dir = scratch.freshDir();
    const before = openFds();
    let kept: Fanotify;
    {
      using fan = new Fanotify();
      kept = fan;
      fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.CLOSE_WRITE);
      expect(fanotifyCount(openFds())).toBeGreaterThan(fanotifyCount(before));
      expect(kept.closed).toBe(false);
    }
    expect(kept.closed).toBe(true);
    expect(diff(before, openFds())).toEqual({ opened: [], closed: [] });
  });

  test('after close(): reads, watches and settings throw Closed; events() ends', () => {
    const dir = scratch.freshDir();
    const fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CREATE);
    fs.writeFileSync(path.join(dir, 'queued'), ''); // something queued at close
    fan.close();

    for (const call of [
      () => fan.readEvent({ timeout: 1000 }),
      () => fan.readEvent({ timeout: 0 }),
      () => fan.readEvents({ timeout: 1000 }),
      () => fan.readEvents({ timeout: 0 }),
      () => fan.addWatch(dir, MaskFlags.OPEN),
      () => fan.removeWatch(dir),
      () => fan.setBufferSize(65536),
    ]) {
      const err = thrown(call);
      expect(err.kind).toBe('Closed');
      expect(FanotifyError.isClosed(err)).toBe(true);
      expect(err.message).toMatch(/closed/i);
    }
    expect([...fan.events()]).toEqual([]);
    expect(fan.closed).toBe(true);
  });

  test('closing while events are queued leaves the same directory watchable by a new instance', () => {
    const dir = scratch.freshDir();
    {
      using first = new Fanotify();
      first.addWatch(dir, MaskFlags.CREATE);
      fs.writeFileSync(path.join(dir, 'one'), '');
    }
    using second = new Fanotify();
    second.addWatch(dir, MaskFlags.CREATE);
    const file = path.join(dir, 'two');
    fs.writeFileSync(file, '');
    const events = collectUntil(second, (evs) => evs.some((e) => e.path === file), 3000);
    expect(events.map((e) => [e.types().join('|'), e.path])).toEqual([['CREATE', file]]);
  });
});
