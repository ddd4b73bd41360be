/**
 * Every notification event the sync Fanotify can provoke on a tmpfs, with the
 * exact path, name, pid and flags the kernel reports for it.
 *
 * The kernel merges events that are still queued and concern the same object
 * (OPEN then CLOSE of one file can become one OPEN|CLOSE_NOWRITE event), so
 * the tests do one operation, wait for its event, then do the next one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Fanotify, FanotifyEvent, MaskFlags } from '../lib';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { collectFor, collectUntil, brief, waitForMatch } from './helpers/events';
import { reapAll, startChild } from './helpers/child';

const WAIT_MS = 3000;

/** Whatever else is already available, without waiting. */
function remaining(fan: Fanotify): FanotifyEvent[] {
  return fan.readEvents({ timeout: 0 });
}

/** The fields a test pins for one event. */
function summary(ev: FanotifyEvent): Summary {
  return { types: ev.types(), path: ev.path, name: ev.name, isDirectory: ev.isDirectory, pid: ev.pid };
}

interface Summary {
  types: string[];
  path: string | null;
  /** Pinned for directory-entry events only; the contract leaves it open for others. */
  name?: string | null;
  isDirectory: boolean;
  pid: number;
}

/** The summary compared for events that are not directory-entry events. */
function contentSummary(ev: FanotifyEvent): Summary {
  const { name: _name, ...rest } = summary(ev);
  return rest;
}

/** Which is*() helpers say yes. */
function helpers(ev: FanotifyEvent): string[] {
  const all = {
    access: ev.isAccess(),
    modify: ev.isModify(),
    attrib: ev.isAttrib(),
    open: ev.isOpen(),
    close: ev.isClose(),
    create: ev.isCreate(),
    delete: ev.isDelete(),
    move: ev.isMove(),
    permission: ev.isPermission(),
    overflow: ev.isOverflow(),
    error: ev.isError(),
  };
  return Object.entries(all)
    .filter(([, yes]) => yes)
    .map(([name]) => name);
}

/** One operation, exactly one event: returns it. */
function expectOne(fan: Fanotify, match: (ev: FanotifyEvent) => boolean, what: string, expected: Summary): FanotifyEvent {
  const events = waitForMatch(fan, match, what);
  const pick = expected.name === undefined ? contentSummary : summary;
  // First the event under test, then: nothing else.
  expect(events.filter(match).map(pick)).toEqual([expected]);
  expect(events.map(pick)).toEqual([expected]);
  return events.filter(match)[0];
}

/**
 * Waits for the OPEN of directory `dir` and checks it is the only event: an
 * OPEN (ONDIR in types where the kernel reports it), isDirectory, our pid.
 */
function openOfDir(fan: Fanotify, dir: string): FanotifyEvent[] {
  const events = waitForMatch(fan, (e) => e.isOpen(), 'OPEN of the directory');
  expect(events.map(brief)).toEqual([[expect.stringMatching(/^OPEN(\|ONDIR)?$/), dir]]);
  expect(events[0].isDirectory).toBe(true);
  expect(events[0].pid).toBe(process.pid);
  expect(events[0].mask & ~MaskFlags.ONDIR).toBe(MaskFlags.OPEN);
  return events;
}

describeRoot('events: every notification event on a tmpfs, through the sync Fanotify', () => {
  let scratch: Scratch;
  const pid = process.pid;

  beforeAll(() => (scratch = mountTmpfs()));
  afterAll(() => {
    reapAll();
    scratch.cleanup();
  });

  test('OPEN, ACCESS and CLOSE_NOWRITE of a file in a watched directory', () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'read-me');
    fs.writeFileSync(file, 'some bytes');
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.ACCESS | MaskFlags.CLOSE_NOWRITE | MaskFlags.CLOSE_WRITE | MaskFlags.MODIFY);

    const fd = fs.openSync(file, 'r');
    let closed = false;
    try {
      const open = expectOne(fan, (e) => e.isOpen(), 'OPEN', { types: ['OPEN'], path: file, isDirectory: false, pid });
      expect(open.mask).toBe(MaskFlags.OPEN);
      expect(helpers(open)).toEqual(['open']);
      expect(open.info.pid).toBe(pid);
      expect(open.info.path).toBe(file);
      expect(open.info.isDirectory).toBe(false);
      expect(open.info.filename()).toBe('read-me');
      // Notification events hold no fd (closed by the reader, or never given).
      expect(open.fd).toBe(-1);

      const buf = Buffer.alloc(64);
      expect(fs.readSync(fd, buf, 0, 64, 0)).toBe(10);
      const access = expectOne(fan, (e) => e.isAccess(), 'ACCESS', { types: ['ACCESS'], path: file, isDirectory: false, pid });
      expect(access.mask).toBe(MaskFlags.ACCESS);
      expect(helpers(access)).toEqual(['access']);

      fs.closeSync(fd);
      closed = true;
      const close = expectOne(fan, (e) => e.isClose(), 'CLOSE_NOWRITE', { types: ['CLOSE_NOWRITE'], path: file, isDirectory: false, pid });
      expect(close.mask).toBe(MaskFlags.CLOSE_NOWRITE);
      expect(helpers(close)).toEqual(['close']);
    } finally {
      if (!closed) fs.closeSync(fd);
    }
    // Nothing else: no MODIFY or CLOSE_WRITE for a read-only open.
    expect(collectFor(fan, 200).map(brief)).toEqual([]);
  });

  test('a large batch then a small one: each read returns exactly its own events (the hand-over array is reused)', () => {
    const dir = scratch.freshDir();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.CREATE);
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, `big${i}`), '');
    const big = collectUntil(fan, (evs) => evs.length >= 300, WAIT_MS);
    expect(big.map((ev) => ev.name)).toEqual(Array.from({ length: 300 }, (_, i) => `big${i}`));
    fs.writeFileSync(path.join(dir, 'small'), '');
    const small = collectUntil(fan, (evs) => evs.length >= 1, WAIT_MS).concat(remaining(fan));
    expect(small.map((ev) => [ev.name, ev.path])).toEqual([['small', path.join(dir, 'small')]]);
  });

  test('OPEN, MODIFY and CLOSE_WRITE of a file opened for writing', () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'write-me');
    fs.writeFileSync(file, '');
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.ACCESS | MaskFlags.MODIFY | MaskFlags.CLOSE);

    const fd = fs.openSync(file, 'r+');
    let closed = false;
    try {
      expectOne(fan, (e) => e.isOpen(), 'OPEN', { types: ['OPEN'], path: file, isDirectory: false, pid });
      fs.writeSync(fd, 'written');
      const modify = expectOne(fan, (e) => e.isModify(), 'MODIFY', { types: ['MODIFY'], path: file, isDirectory: false, pid });
      expect(modify.mask).toBe(MaskFlags.MODIFY);
      expect(helpers(modify)).toEqual(['modify']);
      fs.closeSync(fd);
      closed = true;
      const close = expectOne(fan, (e) => e.isClose(), 'CLOSE_WRITE', { types: ['CLOSE_WRITE'], path: file, isDirectory: false, pid });
      expect(close.mask).toBe(MaskFlags.CLOSE_WRITE);
      expect(helpers(close)).toEqual(['close']);
    } finally {
      if (!closed) fs.closeSync(fd);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('written');
  });

  test('ATTRIB on a child file and on the watched directory itself (ONDIR)', () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'attr');
    fs.writeFileSync(file, '');
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.ATTRIB);

    fs.chmodSync(file, 0o600);
    const onFile = waitForMatch(fan, (e) => e.isAttrib(), 'ATTRIB on file');
    expect(onFile.map(brief)).toEqual([['ATTRIB', file]]);
    expect(onFile[0].mask).toBe(MaskFlags.ATTRIB);
    expect(onFile[0].isDirectory).toBe(false);
    expect(onFile[0].pid).toBe(pid);
    expect(helpers(onFile[0])).toEqual(['attrib']);

    fs.chmodSync(dir, 0o750);
    const onDir = waitForMatch(fan, (e) => e.isAttrib(), 'ATTRIB on dir');
    expect(onDir.map(brief)).toEqual([['ATTRIB|ONDIR', dir]]);
    expect(onDir[0].mask).toBe(MaskFlags.ATTRIB | MaskFlags.ONDIR);
    expect(onDir[0].isDirectory).toBe(true);
    expect(onDir[0].pid).toBe(pid);

    fs.utimesSync(file, new Date(1000), new Date(2000));
    expect(waitForMatch(fan, (e) => e.isAttrib(), 'ATTRIB after utimes').map(brief)).toEqual([['ATTRIB', file]]);
  });

  test('CREATE and DELETE of a file and of a directory (ONDIR), with the entry name', () => {
    const dir = scratch.freshDir();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.DELETE);

    const file = path.join(dir, 'new-file');
    fs.writeFileSync(file, 'x');
    const create = expectOne(fan, (e) => e.isCreate(), 'CREATE', { types: ['CREATE'], path: file, name: 'new-file', isDirectory: false, pid });
    expect(create.mask).toBe(MaskFlags.CREATE);
    expect(helpers(create)).toEqual(['create']);
    // FID-reporting events carry no fd.
    expect(create.fd).toBe(-1);
    expect(create.info.filename()).toBe('new-file');

    const sub = path.join(dir, 'new-dir');
    fs.mkdirSync(sub);
    const mkdir = expectOne(fan, (e) => e.isCreate(), 'CREATE|ONDIR', { types: ['CREATE', 'ONDIR'], path: sub, name: 'new-dir', isDirectory: true, pid });
    expect(mkdir.mask).toBe(MaskFlags.CREATE | MaskFlags.ONDIR);

    fs.unlinkSync(file);
    const del = expectOne(fan, (e) => e.isDelete(), 'DELETE', { types: ['DELETE'], path: file, name: 'new-file', isDirectory: false, pid });
    expect(del.mask).toBe(MaskFlags.DELETE);
    expect(helpers(del)).toEqual(['delete']);

    fs.rmdirSync(sub);
    const rmdir = expectOne(fan, (e) => e.isDelete(), 'DELETE|ONDIR', { types: ['DELETE', 'ONDIR'], path: sub, name: 'new-dir', isDirectory: true, pid });
    expect(rmdir.mask).toBe(MaskFlags.DELETE | MaskFlags.ONDIR);
  });

  test('a create from another process carries that process\'s pid', async () => {
    const dir = scratch.freshDir();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.CREATE);
    const file = path.join(dir, 'from-child');
    const child = startChild('touch', [file]);
    const result = await child.done;
    expect(result.code).toBe(0);
    const create = expectOne(fan, (e) => e.isCreate(), 'CREATE', { types: ['CREATE'], path: file, name: 'from-child', isDirectory: false, pid: child.pid });
    expect(create.pid).not.toBe(pid);
  });

  test('MOVED_FROM and MOVED_TO within one directory: old and new names and paths', () => {
    const dir = scratch.freshDir();
    const from = path.join(dir, 'before');
    const to = path.join(dir, 'after');
    fs.writeFileSync(from, '');
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.MOVED_FROM | MaskFlags.MOVED_TO);

    fs.renameSync(from, to);
    const events = waitForMatch(fan, (e) => (e.mask & MaskFlags.MOVED_TO) !== 0, 'MOVED_TO');
    expect(events.map(summary)).toEqual([
      { types: ['MOVED_FROM'], path: from, name: 'before', isDirectory: false, pid },
      { types: ['MOVED_TO'], path: to, name: 'after', isDirectory: false, pid },
    ]);
    const [movedFrom, movedTo] = events;
    expect(movedFrom.mask).toBe(MaskFlags.MOVED_FROM);
    expect(movedFrom.oldPath).toBe(from);
    expect(movedTo.mask).toBe(MaskFlags.MOVED_TO);
    expect(movedTo.newPath).toBe(to);
    expect(helpers(movedFrom)).toEqual(['move']);
    expect(helpers(movedTo)).toEqual(['move']);
  });

  test('MOVED_FROM and MOVED_TO across two watched directories, for a directory (ONDIR)', () => {
    const a = scratch.freshDir();
    const b = scratch.freshDir();
    const from = path.join(a, 'moving-dir');
    const to = path.join(b, 'moved-dir');
    fs.mkdirSync(from);
    using fan = new Fanotify();
    fan.addWatch(a, MaskFlags.MOVE);
    fan.addWatch(b, MaskFlags.MOVE);

    fs.renameSync(from, to);
    const events = waitForMatch(fan, (e) => (e.mask & MaskFlags.MOVED_TO) !== 0, 'MOVED_TO');
    expect(events.map(summary)).toEqual([
      { types: ['MOVED_FROM', 'ONDIR'], path: from, name: 'moving-dir', isDirectory: true, pid },
      { types: ['MOVED_TO', 'ONDIR'], path: to, name: 'moved-dir', isDirectory: true, pid },
    ]);
    expect(events[0].oldPath).toBe(from);
    expect(events[1].newPath).toBe(to);
  });

  test('RENAME: one event with oldPath, newPath and the new name', () => {
    const dir = scratch.freshDir();
    const from = path.join(dir, 'old-name');
    const to = path.join(dir, 'new-name');
    fs.writeFileSync(from, '');
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.RENAME);

    fs.renameSync(from, to);
    const events = waitForMatch(fan, (e) => (e.mask & MaskFlags.RENAME) !== 0, 'RENAME');
    expect(events).toHaveLength(1);
    const ev = events[0];
    expect(ev.mask).toBe(MaskFlags.RENAME);
    expect(ev.types()).toEqual(['RENAME']);
    expect(ev.oldPath).toBe(from);
    expect(ev.newPath).toBe(to);
    expect(ev.path).toBe(to);
    expect(ev.name).toBe('new-name');
    expect(ev.isDirectory).toBe(false);
    expect(ev.pid).toBe(pid);
    expect(helpers(ev)).toEqual(['move']);
    expect(ev.description()).toContain(`${from} -> ${to}`);
  });

  test('RENAME out of the watched directory: the kernel reports only the old side', () => {
    const watched = scratch.freshDir();
    const elsewhere = scratch.freshDir();
    const from = path.join(watched, 'sub');
    const to = path.join(elsewhere, 'sub-moved');
    fs.mkdirSync(from);
    using fan = new Fanotify();
    fan.addWatch(watched, MaskFlags.RENAME);

    fs.renameSync(from, to);
    const events = waitForMatch(fan, (e) => (e.mask & MaskFlags.RENAME) !== 0, 'RENAME');
    expect(events).toHaveLength(1);
    const ev = events[0];
    expect(ev.mask).toBe(MaskFlags.RENAME | MaskFlags.ONDIR);
    expect(ev.types()).toEqual(['RENAME', 'ONDIR']);
    expect(ev.isDirectory).toBe(true);
    // With only the source directory marked, the kernel sends the old
    // parent+name only (no NEW_DFID_NAME record): the new side is unknown.
    expect(ev.oldPath).toBe(from);
    expect(ev.newPath).toBeNull();
    expect(ev.path).toBe(from);
    expect(ev.name).toBe('sub');
  });

  test('RENAME into the watched directory: the kernel reports only the new side', () => {
    const watched = scratch.freshDir();
    const elsewhere = scratch.freshDir();
    const from = path.join(elsewhere, 'incoming');
    const to = path.join(watched, 'arrived');
    fs.writeFileSync(from, '');
    using fan = new Fanotify();
    fan.addWatch(watched, MaskFlags.RENAME);

    fs.renameSync(from, to);
    const events = waitForMatch(fan, (e) => (e.mask & MaskFlags.RENAME) !== 0, 'RENAME');
    expect(events).toHaveLength(1);
    const ev = events[0];
    expect(ev.mask).toBe(MaskFlags.RENAME);
    expect(ev.isDirectory).toBe(false);
    expect(ev.oldPath).toBeNull();
    expect(ev.newPath).toBe(to);
    expect(ev.path).toBe(to);
    expect(ev.name).toBe('arrived');
  });

  test('RENAME across two watched directories gives both full paths', () => {
    const a = scratch.freshDir();
    const b = scratch.freshDir();
    const from = path.join(a, 'travel');
    const to = path.join(b, 'travelled');
    fs.writeFileSync(from, '');
    using fan = new Fanotify();
    fan.addWatch(a, MaskFlags.RENAME);
    fan.addWatch(b, MaskFlags.RENAME);

    fs.renameSync(from, to);
    const events = waitForMatch(fan, (e) => (e.mask & MaskFlags.RENAME) !== 0, 'RENAME');
    expect(events).toHaveLength(1);
    expect(events[0].mask).toBe(MaskFlags.RENAME);
    expect(events[0].oldPath).toBe(from);
    expect(events[0].newPath).toBe(to);
    expect(events[0].path).toBe(to);
    expect(events[0].name).toBe('travelled');
    expect(events[0].description()).toContain(`${from} -> ${to}`);
  });

  test('DELETE_SELF of a watched file', () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'doomed');
    fs.writeFileSync(file, '');
    using fan = new Fanotify();
    fan.addWatch(file, MaskFlags.DELETE_SELF);

    fs.unlinkSync(file);
    const events = waitForMatch(fan, (e) => (e.mask & MaskFlags.DELETE_SELF) !== 0, 'DELETE_SELF');
    expect(events.map(brief)).toEqual([['DELETE_SELF', file]]);
    expect(events[0].mask).toBe(MaskFlags.DELETE_SELF);
    expect(events[0].isDirectory).toBe(false);
    expect(events[0].pid).toBe(pid);
    expect(helpers(events[0])).toEqual(['delete']);
  });

  test('DELETE_SELF of a watched directory (ONDIR)', () => {
    const parent = scratch.freshDir();
    const dir = path.join(parent, 'doomed-dir');
    fs.mkdirSync(dir);
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.DELETE_SELF);

    fs.rmdirSync(dir);
    const events = waitForMatch(fan, (e) => (e.mask & MaskFlags.DELETE_SELF) !== 0, 'DELETE_SELF');
    expect(events.map(brief)).toEqual([['DELETE_SELF|ONDIR', dir]]);
    expect(events[0].isDirectory).toBe(true);
  });

  test('MOVE_SELF of a watched file, and of a watched directory (ONDIR)', () => {
    const parent = scratch.freshDir();
    const file = path.join(parent, 'mover');
    const dir = path.join(parent, 'mover-dir');
    fs.writeFileSync(file, '');
    fs.mkdirSync(dir);
    using fan = new Fanotify();
    fan.addWatch(file, MaskFlags.MOVE_SELF);
    fan.addWatch(dir, MaskFlags.MOVE_SELF);

    fs.renameSync(file, path.join(parent, 'moved'));
    const onFile = waitForMatch(fan, (e) => (e.mask & MaskFlags.MOVE_SELF) !== 0, 'MOVE_SELF');
    expect(onFile).toHaveLength(1);
    expect(onFile[0].mask).toBe(MaskFlags.MOVE_SELF);
    expect(onFile[0].isDirectory).toBe(false);
    expect(onFile[0].pid).toBe(pid);
    expect(helpers(onFile[0])).toEqual(['move']);
    // The event names the watched object: where it was when watched, or
    // where it is now. Either is a real path of this object; never null.
    expect([file, path.join(parent, 'moved')]).toContain(onFile[0].path);

    fs.renameSync(dir, path.join(parent, 'moved-dir'));
    const onDir = waitForMatch(fan, (e) => (e.mask & MaskFlags.MOVE_SELF) !== 0, 'MOVE_SELF|ONDIR');
    expect(onDir).toHaveLength(1);
    expect(onDir[0].types()).toEqual(['MOVE_SELF', 'ONDIR']);
    expect(onDir[0].isDirectory).toBe(true);
    expect([dir, path.join(parent, 'moved-dir')]).toContain(onDir[0].path);
  });

  test('after a watched directory is renamed, events inside it report its new path', () => {
    const parent = scratch.freshDir();
    const dir = path.join(parent, 'was-here');
    const moved = path.join(parent, 'now-here');
    fs.mkdirSync(dir);
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.CLOSE_WRITE);

    fs.renameSync(dir, moved);
    const file = path.join(moved, 'inside');
    fs.writeFileSync(file, 'x');
    const events = waitForMatch(fan, (e) => e.isClose(), 'CLOSE_WRITE');
    expect(events.map(brief)).toEqual([
      ['CREATE', file],
      ['CLOSE_WRITE', file],
    ]);
  });

  test('OPEN_EXEC when a binary on the tmpfs is executed by a child', async () => {
    const dir = scratch.freshDir();
    const bin = path.join(dir, 'true-copy');
    fs.copyFileSync('/bin/true', bin);
    fs.chmodSync(bin, 0o755);
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN_EXEC);

    const child = startChild(bin, []);
    const result = await child.done;
    expect(result).toMatchObject({ code: 0, signal: null });
    const exec = expectOne(fan, (e) => (e.mask & MaskFlags.OPEN_EXEC) !== 0, 'OPEN_EXEC', {
      types: ['OPEN_EXEC'],
      path: bin,
      isDirectory: false,
      pid: child.pid,
    });
    expect(exec.mask).toBe(MaskFlags.OPEN_EXEC);
    expect(exec.isOpen()).toBe(true);

    // Reading the same file is not an exec.
    fs.readFileSync(bin);
    expect(collectFor(fan, 200).map(brief)).toEqual([]);
  });

  test('OPEN_EXEC and OPEN together: an exec is also an open', async () => {
    const dir = scratch.freshDir();
    const bin = path.join(dir, 'true-copy');
    fs.copyFileSync('/bin/true', bin);
    fs.chmodSync(bin, 0o755);
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN_EXEC | MaskFlags.OPEN);

    const child = startChild(bin, []);
    expect((await child.done).code).toBe(0);
    const events = waitForMatch(fan, (e) => (e.mask & MaskFlags.OPEN_EXEC) !== 0, 'OPEN_EXEC');
    expect(events.map(brief)).toEqual([['OPEN|OPEN_EXEC', bin]]);
    expect(events[0].pid).toBe(child.pid);
  });

  test('OPEN of the watched directory itself is reported with isDirectory', () => {
    const dir = scratch.freshDir();
    fs.writeFileSync(path.join(dir, 'entry'), '');
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN);

    expect(fs.readdirSync(dir)).toEqual(['entry']);
    expect(openOfDir(fan, dir)).toHaveLength(1);
  });

  test('adding watches reports nothing by itself (no open by the library shows up)', () => {
    const a = scratch.freshDir();
    const b = scratch.freshDir();
    const file = path.join(b, 'f');
    fs.writeFileSync(file, '');
    using fan = new Fanotify();
    fan.addWatch(a, MaskFlags.OPEN | MaskFlags.CLOSE_NOWRITE);
    fan.addWatch(b, MaskFlags.OPEN | MaskFlags.CLOSE_NOWRITE);
    // More events on the same directories, and a file inside a watched one:
    // whatever the library does to place these marks must not show up as
    // an OPEN or CLOSE_NOWRITE of the watched objects.
    fan.addWatch(a, MaskFlags.CREATE);
    fan.addWatch(b, MaskFlags.CREATE);
    fan.addWatch(file, MaskFlags.ATTRIB);
    expect(collectFor(fan, 300).map(brief)).toEqual([]);
  });

  test('onChildren: false reports the directory itself but not its children', () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'child');
    fs.writeFileSync(file, 'x');
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CREATE, { onChildren: false });

    // Opening a child: no event. Creating an entry is an event on the
    // directory itself, so it is still reported.
    fs.readFileSync(file);
    const created = path.join(dir, 'created');
    fs.writeFileSync(created, '');
    const events = waitForMatch(fan, (e) => e.isCreate(), 'CREATE');
    expect(events.map(brief)).toEqual([['CREATE', created]]);

    // Opening the directory itself is still reported (onDir defaults to true).
    fs.readdirSync(dir);
    expect(openOfDir(fan, dir)).toHaveLength(1);
    expect(collectFor(fan, 200).map(brief)).toEqual([]);
  });

  test('by default a directory watch reports its children (EVENT_ON_CHILD) but not grandchildren', () => {
    const dir = scratch.freshDir();
    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub);
    const deep = path.join(sub, 'deep');
    const child = path.join(dir, 'child');
    fs.writeFileSync(deep, 'x');
    fs.writeFileSync(child, 'x');
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.CLOSE_NOWRITE);

    fs.readFileSync(deep);
    fs.readFileSync(child);
    const events = waitForMatch(fan, (e) => e.path === child, 'CLOSE_NOWRITE on the child');
    expect(events.map(brief)).toEqual([['CLOSE_NOWRITE', child]]);
  });

  test('onDir: false leaves out events on directories; files are still reported', () => {
    const dir = scratch.freshDir();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CREATE, { onDir: false });

    fs.readdirSync(dir); // OPEN on the directory itself: not reported
    fs.mkdirSync(path.join(dir, 'subdir')); // CREATE|ONDIR: not reported
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, '');
    const events = waitForMatch(fan, (e) => e.isOpen() && e.path === file, 'OPEN of the file');
    expect(events.map(brief)).toEqual([
      ['CREATE', file],
      ['OPEN', file],
    ]);
  });

  test('by default (onDir) a directory watch reports mkdir as CREATE|ONDIR and opening itself as OPEN', () => {
    const dir = scratch.freshDir();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CREATE);

    const sub = path.join(dir, 'subdir');
    fs.mkdirSync(sub);
    expect(waitForMatch(fan, (e) => e.isCreate(), 'CREATE|ONDIR').map(summary)).toEqual([
      { types: ['CREATE', 'ONDIR'], path: sub, name: 'subdir', isDirectory: true, pid },
    ]);
    fs.readdirSync(dir);
    expect(openOfDir(fan, dir)).toHaveLength(1);
  });

  test('a watch on a file reports that file only, never its siblings', () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'watched');
    const sibling = path.join(dir, 'sibling');
    fs.writeFileSync(file, '');
    fs.writeFileSync(sibling, '');
    using fan = new Fanotify();
    fan.addWatch(file, MaskFlags.OPEN | MaskFlags.MODIFY | MaskFlags.CLOSE_WRITE | MaskFlags.ATTRIB);

    fs.writeFileSync(sibling, 'not me');
    fs.chmodSync(sibling, 0o600);
    const fd = fs.openSync(file, 'r+'); // not 'w': O_TRUNC would be a MODIFY too
    try {
      expect(waitForMatch(fan, (e) => e.isOpen(), 'OPEN').map(brief)).toEqual([['OPEN', file]]);
      fs.writeSync(fd, 'me');
      expect(waitForMatch(fan, (e) => e.isModify(), 'MODIFY').map(brief)).toEqual([['MODIFY', file]]);
    } finally {
      fs.closeSync(fd);
    }
    expect(waitForMatch(fan, (e) => e.isClose(), 'CLOSE_WRITE').map(brief)).toEqual([['CLOSE_WRITE', file]]);
    fs.chmodSync(file, 0o600);
    const attrib = waitForMatch(fan, (e) => e.isAttrib(), 'ATTRIB');
    expect(attrib.map(brief)).toEqual([['ATTRIB', file]]);
    expect(attrib[0].isDirectory).toBe(false);
    expect(collectFor(fan, 200).map(brief)).toEqual([]);
  });

  test('types(), description() and toJSON() of a CREATE|ONDIR event', () => {
    const dir = scratch.freshDir();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.CREATE);
    const sub = path.join(dir, 'json-dir');
    fs.mkdirSync(sub);
    const [ev] = waitForMatch(fan, (e) => e.isCreate(), 'CREATE');

    expect(ev.types()).toEqual(['CREATE', 'ONDIR']);
    const line = ev.description();
    expect(line).toContain('CREATE');
    expect(line).toContain('ONDIR');
    expect(line).toContain(sub);
    expect(line).toContain(String(pid));
    expect(line).not.toContain('\n');

    const json = ev.toJSON();
    const roundTrip = JSON.parse(JSON.stringify(ev));
    expect(roundTrip).toEqual(json);
    expect(roundTrip).toMatchObject({
      mask: MaskFlags.CREATE | MaskFlags.ONDIR,
      types: ['CREATE', 'ONDIR'],
      pid,
      path: sub,
      name: 'json-dir',
      isDirectory: true,
      fd: -1,
    });
  });

  test('toJSON() of a CLOSE_NOWRITE event with processInfo is JSON-serialisable too', () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'x');
    using fan = new Fanotify({ processInfo: true });
    fan.addWatch(dir, MaskFlags.CLOSE_NOWRITE);
    fs.readFileSync(file);
    const [ev] = waitForMatch(fan, (e) => e.isClose(), 'CLOSE_NOWRITE');
    const text = JSON.stringify(ev);
    const parsed = JSON.parse(text);
    expect(parsed).toEqual(ev.toJSON());
    expect(parsed).toMatchObject({ mask: MaskFlags.CLOSE_NOWRITE, types: ['CLOSE_NOWRITE'], pid, path: file, isDirectory: false });
    expect(parsed.process).toMatchObject({ pid });
    expect(ev.process?.pid).toBe(pid);
    expect(ev.process?.exe).toBe(fs.realpathSync(process.execPath));
  });
});
