/**
 * Mark types (inode, mount, filesystem), removing marks, and withFlags():
 * what each one sees on a private tmpfs, and what the kernel refuses.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Fanotify, FanotifyFlags, MaskFlags } from '../lib';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, tmpfsReportsFids, type Scratch } from './helpers/scratch';
import { collectFor, collectUntil, brief, waitForMatch } from './helpers/events';
import { thrown } from './helpers/errors';

const WAIT_MS = 3000;

/** How many fanotify groups this process holds open. */
function fanotifyFds(): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[fanotify]') n++;
    } catch {
      // the fd of the directory listing itself is gone by now
    }
  }
  return n;
}

describeRoot('marks: mount and filesystem marks, removeWatch, withFlags', () => {
  let scratch: Scratch;
  let inner: string;
  let counter = 0;
  const pid = process.pid;

  beforeAll(() => {
    scratch = mountTmpfs();
    // A second tmpfs mounted inside the first: another mount, another filesystem.
    inner = scratch.file('inner');
    fs.mkdirSync(inner);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=1777', 'fanotify-test-inner', inner]);
  });
  afterAll(() => {
    try {
      execFileSync('umount', ['-l', inner]);
    } finally {
      scratch.cleanup();
    }
  });

  describe("mark: 'mount'", () => {
    test.each([
      ['CREATE', MaskFlags.CREATE],
      ['ATTRIB', MaskFlags.ATTRIB],
      ['DELETE', MaskFlags.DELETE],
      ['MOVED_FROM|MOVED_TO', MaskFlags.MOVE],
      ['RENAME', MaskFlags.RENAME],
      ['DELETE_SELF', MaskFlags.DELETE_SELF],
      ['MOVE_SELF', MaskFlags.MOVE_SELF],
      ['OPEN|CREATE', MaskFlags.OPEN | MaskFlags.CREATE],
    ])('cannot carry %s: InvalidArgument, and nothing changes', (_name, mask) => {
      using fan = new Fanotify();
      const err = thrown(() => fan.addWatch(scratch.dir, mask, { mark: 'mount' }));
      expect(err.kind).toBe('InvalidArgument');
      expect(err.code).toBe('EINVAL');
      expect(err.syscall).toBe('fanotify_mark');
      // Nothing was left behind: there is no mount mark to remove.
      const again = thrown(() => fan.removeWatch(scratch.dir, undefined, { mark: 'mount' }));
      expect(again.kind).toBe('InvalidArgument');
      // ... and a mark that a mount can carry still goes on afterwards.
      fan.addWatch(scratch.dir, MaskFlags.CLOSE_WRITE, { mark: 'mount' });
      const file = scratch.file(`after-refusal-${counter++}`);
      fs.writeFileSync(file, '');
      expect(waitForMatch(fan, (e) => e.isClose(), 'CLOSE_WRITE').map(brief)).toEqual([['CLOSE_WRITE', file]]);
    });

    test('the refusal says that a mount mark cannot carry those events', () => {
      using fan = new Fanotify();
      const err = thrown(() => fan.addWatch(scratch.dir, MaskFlags.CREATE, { mark: 'mount' }));
      expect(err.kind).toBe('InvalidArgument');
      expect(err.message).toMatch(/mount mark/i);
    });

    test('OPEN, MODIFY and CLOSE_WRITE anywhere on the mount, with full paths', () => {
      const dir = scratch.freshDir();
      const nested = path.join(dir, 'a', 'b');
      fs.mkdirSync(nested, { recursive: true });
      const file = path.join(nested, 'deep-file');
      using fan = new Fanotify();
      fan.addWatch(scratch.dir, MaskFlags.OPEN | MaskFlags.MODIFY | MaskFlags.CLOSE_WRITE, { mark: 'mount' });

      const fd = fs.openSync(file, 'w');
      try {
        expect(waitForMatch(fan, (e) => e.isOpen(), 'OPEN').map(brief)).toEqual([['OPEN', file]]);
        fs.writeSync(fd, 'data');
        expect(waitForMatch(fan, (e) => e.isModify(), 'MODIFY').map(brief)).toEqual([['MODIFY', file]]);
      } finally {
        fs.closeSync(fd);
      }
      const close = waitForMatch(fan, (e) => e.isClose(), 'CLOSE_WRITE');
      expect(close.map(brief)).toEqual([['CLOSE_WRITE', file]]);
      expect(close[0].pid).toBe(pid);
      expect(close[0].isDirectory).toBe(false);
    });

    test('the mount mark on the outer tmpfs does not see the tmpfs mounted inside it', () => {
      const innerFile = path.join(inner, `mount-${counter++}`);
      const outerFile = scratch.file(`outer-${counter++}`);
      using fan = new Fanotify();
      fan.addWatch(scratch.dir, MaskFlags.CLOSE_WRITE, { mark: 'mount' });
      fs.writeFileSync(innerFile, 'inner');
      fs.writeFileSync(outerFile, 'outer');
      // Events of one group arrive in order: the inner write would come first.
      expect(waitForMatch(fan, (e) => e.path === outerFile, 'CLOSE_WRITE on the outer file').map(brief)).toEqual([['CLOSE_WRITE', outerFile]]);
    });
  });

  describe("mark: 'filesystem'", () => {
    test('sees CREATE, CLOSE_WRITE and DELETE in nested directories, with full paths', () => {
      const dir = scratch.freshDir();
      using fan = new Fanotify();
      fan.addWatch(scratch.dir, MaskFlags.CREATE | MaskFlags.DELETE | MaskFlags.CLOSE_WRITE, { mark: 'filesystem' });

      const a = path.join(dir, 'a');
      const b = path.join(a, 'b');
      fs.mkdirSync(a);
      expect(waitForMatch(fan, (e) => e.isCreate(), 'CREATE a').map(brief)).toEqual([['CREATE|ONDIR', a]]);
      fs.mkdirSync(b);
      const mkdir = waitForMatch(fan, (e) => e.isCreate(), 'CREATE b');
      expect(mkdir.map(brief)).toEqual([['CREATE|ONDIR', b]]);
      expect(mkdir[0]).toMatchObject({ name: 'b', isDirectory: true, pid });

      const file = path.join(b, 'leaf');
      fs.writeFileSync(file, 'x');
      const events = waitForMatch(fan, (e) => e.isClose(), 'CLOSE_WRITE');
      expect(events.map(brief)).toEqual([
        ['CREATE', file],
        ['CLOSE_WRITE', file],
      ]);
      expect(events[0]).toMatchObject({ name: 'leaf', isDirectory: false, pid });

      fs.unlinkSync(file);
      expect(waitForMatch(fan, (e) => e.isDelete(), 'DELETE').map(brief)).toEqual([['DELETE', file]]);
    });

    test('RENAME between two unwatched nested directories reports both sides', () => {
      const dir = scratch.freshDir();
      const from = path.join(dir, 'x', 'old');
      const to = path.join(dir, 'y', 'z', 'new');
      fs.mkdirSync(path.dirname(from), { recursive: true });
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.writeFileSync(from, '');
      using fan = new Fanotify();
      fan.addWatch(scratch.dir, MaskFlags.RENAME, { mark: 'filesystem' });
      fs.renameSync(from, to);
      const events = waitForMatch(fan, (e) => e.isMove(), 'RENAME');
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ mask: MaskFlags.RENAME, oldPath: from, newPath: to, path: to, name: 'new' });
    });

    test('a filesystem mark on the outer tmpfs does not see the tmpfs mounted inside it', () => {
      const innerDir = path.join(inner, `fs-${counter++}`);
      const outerDir = scratch.freshDir();
      using fan = new Fanotify();
      fan.addWatch(scratch.dir, MaskFlags.CREATE | MaskFlags.CLOSE_WRITE | MaskFlags.ACCESS, { mark: 'filesystem' });

      fs.mkdirSync(innerDir);
      fs.writeFileSync(path.join(innerDir, 'f'), 'inner');
      fs.readFileSync(path.join(innerDir, 'f'));
      const outerFile = path.join(outerDir, 'f');
      fs.writeFileSync(outerFile, 'outer');
      // Each kernel group delivers in order (and the library may use one or
      // two groups here): once both outer events are read, inner events
      // would have been read before them.
      const events = collectUntil(fan, (evs) => evs.some((e) => e.isCreate()) && evs.some((e) => e.isClose()), WAIT_MS);
      expect(events.map(brief).sort()).toEqual([
        ['CLOSE_WRITE', outerFile],
        ['CREATE', outerFile],
      ]);
    });

    test('a filesystem mark on the inner tmpfs sees it, and not the outer one', () => {
      const innerFile = path.join(inner, `only-inner-${counter++}`);
      const outerFile = scratch.file(`only-outer-${counter++}`);
      using fan = new Fanotify();
      // Where tmpfs cannot report file ids (5.10), CREATE cannot be watched
      // there; CLOSE_WRITE can (fd mode), and shows the same thing.
      const [mask, type] = tmpfsReportsFids() ? [MaskFlags.CREATE, 'CREATE'] : [MaskFlags.CLOSE_WRITE, 'CLOSE_WRITE'];
      fan.addWatch(inner, mask, { mark: 'filesystem' });
      fs.writeFileSync(outerFile, '');
      fs.writeFileSync(innerFile, '');
      expect(waitForMatch(fan, (e) => (e.mask & mask) !== 0, `${type} on the inner tmpfs`).map(brief)).toEqual([[type, innerFile]]);
    });
  });

  describe('removeWatch', () => {
    test('removing the whole mark stops every event', () => {
      const dir = scratch.freshDir();
      const file = path.join(dir, 'f');
      using fan = new Fanotify();
      fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.CLOSE_WRITE | MaskFlags.DELETE);
      fs.writeFileSync(file, 'one');
      expect(waitForMatch(fan, (e) => e.isClose(), 'CLOSE_WRITE').map(brief)).toEqual([
        ['CREATE', file],
        ['CLOSE_WRITE', file],
      ]);

      fan.removeWatch(dir);
      fs.writeFileSync(file, 'two');
      fs.unlinkSync(file);
      fs.writeFileSync(path.join(dir, 'g'), '');
      expect(collectFor(fan, 300).map(brief)).toEqual([]);
      // The mark is gone from the instance too.
      expect(thrown(() => fan.removeWatch(dir)).kind).toBe('InvalidArgument');
    });

    test('removing part of a mask keeps the rest', () => {
      const dir = scratch.freshDir();
      const file = path.join(dir, 'f');
      fs.writeFileSync(file, '');
      using fan = new Fanotify();
      fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE_WRITE | MaskFlags.CREATE | MaskFlags.DELETE);

      fan.removeWatch(dir, MaskFlags.OPEN | MaskFlags.CREATE);
      fs.writeFileSync(file, 'x'); // OPEN: removed; CLOSE_WRITE: kept
      const created = path.join(dir, 'new'); // CREATE: removed
      fs.writeFileSync(created, '');
      fs.unlinkSync(created); // DELETE: kept
      const events = waitForMatch(fan, (e) => e.isDelete(), 'DELETE');
      expect(events.map(brief)).toEqual(
        // The library may put CLOSE_WRITE and DELETE in two kernel groups,
        // read independently: compare as a set.
        expect.arrayContaining([
          ['CLOSE_WRITE', file],
          ['CLOSE_WRITE', created],
          ['DELETE', created],
        ]),
      );
      expect(events).toHaveLength(3);

      // Removing what is left removes the mark.
      fan.removeWatch(dir, MaskFlags.CLOSE_WRITE | MaskFlags.DELETE);
      fs.writeFileSync(file, 'y');
      fs.writeFileSync(path.join(dir, 'other'), '');
      expect(collectFor(fan, 300).map(brief)).toEqual([]);
      expect(thrown(() => fan.removeWatch(dir)).kind).toBe('InvalidArgument');
    });

    test('removing ONDIR-scoped events of a directory keeps its children reported', () => {
      const dir = scratch.freshDir();
      using fan = new Fanotify();
      fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.OPEN);
      fan.removeWatch(dir, MaskFlags.CREATE);
      fs.mkdirSync(path.join(dir, 'sub')); // CREATE|ONDIR: removed
      const file = path.join(dir, 'f');
      fs.writeFileSync(file, '');
      expect(waitForMatch(fan, (e) => e.isOpen() && e.path === file, 'OPEN of the child').map(brief)).toEqual([['OPEN', file]]);
    });

    test("removing a mount mark needs mark: 'mount' again", () => {
      const dir = scratch.freshDir();
      const file = path.join(dir, 'f');
      using fan = new Fanotify();
      fan.addWatch(scratch.dir, MaskFlags.CLOSE_WRITE, { mark: 'mount' });
      expect(thrown(() => fan.removeWatch(scratch.dir)).kind).toBe('InvalidArgument');
      fs.writeFileSync(file, '1');
      expect(waitForMatch(fan, (e) => e.isClose(), 'CLOSE_WRITE').map(brief)).toEqual([['CLOSE_WRITE', file]]);
      fan.removeWatch(scratch.dir, undefined, { mark: 'mount' });
      fs.writeFileSync(file, '2');
      expect(collectFor(fan, 300).map(brief)).toEqual([]);
    });

    test('removing a filesystem mark stops its events', () => {
      const dir = scratch.freshDir();
      using fan = new Fanotify();
      fan.addWatch(scratch.dir, MaskFlags.CREATE, { mark: 'filesystem' });
      const a = path.join(dir, 'a');
      fs.writeFileSync(a, '');
      expect(waitForMatch(fan, (e) => e.isCreate(), 'CREATE').map(brief)).toEqual([['CREATE', a]]);
      fan.removeWatch(scratch.dir, undefined, { mark: 'filesystem' });
      fs.writeFileSync(path.join(dir, 'b'), '');
      expect(collectFor(fan, 300).map(brief)).toEqual([]);
    });
  });

  describe('withFlags', () => {
    test('FID flags: exactly one group, and CREATE (which needs FID) works', () => {
      const before = fanotifyFds();
      const dir = scratch.freshDir();
      using fan = Fanotify.withFlags(FanotifyFlags.CLASS_NOTIF | FanotifyFlags.REPORT_DFID_NAME | FanotifyFlags.REPORT_FID);
      expect(fanotifyFds()).toBe(before + 1);
      // File-content events go to the same group (as FID events): still one.
      fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.DELETE | MaskFlags.CLOSE_WRITE);
      expect(fanotifyFds()).toBe(before + 1);

      const file = path.join(dir, 'made');
      fs.writeFileSync(file, 'x');
      const events = waitForMatch(fan, (e) => e.isClose(), 'CLOSE_WRITE');
      // One group, one queue: the kernel's order.
      expect(events.map(brief)).toEqual([
        ['CREATE', file],
        ['CLOSE_WRITE', file],
      ]);
      expect(events[0]).toMatchObject({ name: 'made', isDirectory: false, pid, fd: -1 });
      // A FID group gives no event fds.
      expect(events.every((e) => e.fd === -1)).toBe(true);

      fan.close();
      expect(fanotifyFds()).toBe(before);
    });

    test('CLASS_NOTIF alone: one fd-reporting group; CREATE throws InvalidArgument that mentions FID', () => {
      const before = fanotifyFds();
      const dir = scratch.freshDir();
      using fan = Fanotify.withFlags(FanotifyFlags.CLASS_NOTIF);
      expect(fanotifyFds()).toBe(before + 1);

      const err = thrown(() => fan.addWatch(dir, MaskFlags.CREATE));
      expect(err.kind).toBe('InvalidArgument');
      expect(err.code).toBe('EINVAL');
      expect(err.message).toMatch(/FID/);
      expect(fanotifyFds()).toBe(before + 1);

      // What the group can do still works, with the event's path.
      fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE_WRITE);
      expect(fanotifyFds()).toBe(before + 1);
      const file = path.join(dir, 'plain');
      fs.writeFileSync(file, 'x');
      const events = waitForMatch(fan, (e) => e.isClose(), 'CLOSE_WRITE');
      // OPEN and CLOSE_WRITE of one file may be merged by the kernel while queued.
      expect(events.map((e) => e.path)).toEqual(events.map(() => file));
      expect(events.reduce((m, e) => m | e.mask, 0)).toBe(MaskFlags.OPEN | MaskFlags.CLOSE_WRITE);
      // An fd-reporting group: the kernel gave an fd, which the reader closed.
      expect(events.every((e) => e.fd === -1)).toBe(true);
      fs.readdirSync(dir);
      expect(waitForMatch(fan, (e) => e.isOpen(), 'OPEN of the directory').map(brief)).toEqual([['OPEN', dir]]);
    });

    test('placing a FID mark on a directory watched for OPEN does not report an open by the library itself', () => {
      const dir = scratch.freshDir();
      using fan = Fanotify.withFlags(FanotifyFlags.CLASS_NOTIF | FanotifyFlags.REPORT_DFID_NAME | FanotifyFlags.REPORT_FID);
      fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE_NOWRITE);
      expect(collectFor(fan, 300).map(brief)).toEqual([]);
    });

    test('withFlags also rejects flags given twice (in options.flags)', () => {
      const err = thrown(() => Fanotify.withFlags(FanotifyFlags.CLASS_NOTIF, { flags: FanotifyFlags.NONBLOCK }));
      expect(err.kind).toBe('InvalidArgument');
    });
  });
});
