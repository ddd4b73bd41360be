/**
 * The low-level module: the same object from both entry points, the kernel's
 * constant values, faithful syscalls against a private tmpfs, and a decoder
 * that never reads past what it was given.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FanotifyError, FanotifyFlags, MaskFlags, lowLevel } from '../lib';
import { FAN } from '../lib/constants';
import * as ll from '../lib/low-level';
import { native, type RawEvent } from '../lib/native';
import { reapAll, startNode } from './helpers/child';
import { withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { thrown } from './helpers/errors';

const O_CLOEXEC = 0o2000000;
const EVENT_FLAGS = fs.constants.O_RDONLY | O_CLOEXEC;

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}


/** Reads a non-blocking group until `done` or the deadline; sleeps briefly between empty reads. */
function readUntil(fd: number, done: (evs: RawEvent[]) => boolean, timeoutMs = 3000): RawEvent[] {
  const events: RawEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!done(events) && Date.now() < deadline) {
    const batch = ll.readEvents(fd);
    if (batch.length === 0) sleep(10);
    events.push(...batch);
  }
  return events;
}

/** Closes the fds a low-level read handed us (event fds and pidfds). */
function closeEventFds(events: RawEvent[]): void {
  for (const ev of events) {
    if (ev.fd >= 0) ll.close(ev.fd);
    if (ev.pidfd !== undefined && ev.pidfd >= 0) ll.close(ev.pidfd);
  }
}

describe('lowLevel module identity and constants', () => {
  test('lowLevel from the root is the low-level module object itself', () => {
    expect(lowLevel).toBe(ll);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(require('../lib/low-level')).toBe(lowLevel);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(require('../lib').lowLevel).toBe(lowLevel);
  });

  test('every constant of the FAN table is exported by the low-level module with the same value', () => {
    const missing = Object.keys(FAN).filter((k) => (ll as Record<string, unknown>)[k] !== (FAN as Record<string, number>)[k]);
    expect(missing).toEqual([]);
  });

  test("every constant the addon was compiled with equals lib/constants.ts's value", () => {
    const compiled = native().compiledConstants;
    const keys = Object.keys(compiled);
    // Not a vacuous comparison: the addon exports the bulk of the table.
    expect(keys.length).toBeGreaterThanOrEqual(60);
    const table = FAN as Record<string, number>;
    const notInTable = keys.filter((k) => !(k in table));
    expect(notInTable).toEqual([]);
    const differ = keys.filter((k) => compiled[k] !== table[k]).map((k) => `${k}: addon ${compiled[k]}, lib ${table[k]}`);
    expect(differ).toEqual([]);
  });

  test('the newer constants have the kernel values', () => {
    expect({
      FAN_PRE_ACCESS: ll.FAN_PRE_ACCESS,
      FAN_MNT_ATTACH: ll.FAN_MNT_ATTACH,
      FAN_MNT_DETACH: ll.FAN_MNT_DETACH,
      FAN_REPORT_MNT: ll.FAN_REPORT_MNT,
      FAN_MARK_MNTNS: ll.FAN_MARK_MNTNS,
      FAN_REPORT_FD_ERROR: ll.FAN_REPORT_FD_ERROR,
      FAN_CLASS_PRE_CONTENT: ll.FAN_CLASS_PRE_CONTENT,
      FAN_EVENT_INFO_TYPE_RANGE: ll.FAN_EVENT_INFO_TYPE_RANGE,
      FAN_EVENT_INFO_TYPE_MNT: ll.FAN_EVENT_INFO_TYPE_MNT,
      FAN_ERRNO_BITS: ll.FAN_ERRNO_BITS,
      FAN_ERRNO_SHIFT: ll.FAN_ERRNO_SHIFT,
      FAN_ERRNO_MASK: ll.FAN_ERRNO_MASK,
      FAN_RENAME: ll.FAN_RENAME,
      FAN_FS_ERROR: ll.FAN_FS_ERROR,
      FAN_MARK_EVICTABLE: ll.FAN_MARK_EVICTABLE,
      FAN_MARK_IGNORE: ll.FAN_MARK_IGNORE,
      FAN_MARK_IGNORE_SURV: ll.FAN_MARK_IGNORE_SURV,
      FAN_REPORT_TARGET_FID: ll.FAN_REPORT_TARGET_FID,
      FAN_REPORT_DFID_NAME_TARGET: ll.FAN_REPORT_DFID_NAME_TARGET,
      FAN_REPORT_PIDFD: ll.FAN_REPORT_PIDFD,
      FAN_INFO: ll.FAN_INFO,
      FAN_EPIDFD: ll.FAN_EPIDFD,
      FAN_EVENT_INFO_TYPE_OLD_DFID_NAME: ll.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME,
      FAN_EVENT_INFO_TYPE_NEW_DFID_NAME: ll.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME,
      AT_FDCWD: ll.AT_FDCWD,
    }).toEqual({
      FAN_PRE_ACCESS: 0x00100000,
      FAN_MNT_ATTACH: 0x01000000,
      FAN_MNT_DETACH: 0x02000000,
      FAN_REPORT_MNT: 0x00004000,
      FAN_MARK_MNTNS: 0x00000110,
      FAN_REPORT_FD_ERROR: 0x00002000,
      FAN_CLASS_PRE_CONTENT: 0x00000008,
      FAN_EVENT_INFO_TYPE_RANGE: 6,
      FAN_EVENT_INFO_TYPE_MNT: 7,
      FAN_ERRNO_BITS: 8,
      FAN_ERRNO_SHIFT: 24,
      FAN_ERRNO_MASK: 0xff,
      FAN_RENAME: 0x10000000,
      FAN_FS_ERROR: 0x00008000,
      FAN_MARK_EVICTABLE: 0x00000200,
      FAN_MARK_IGNORE: 0x00000400,
      FAN_MARK_IGNORE_SURV: 0x00000440,
      FAN_REPORT_TARGET_FID: 0x00001000,
      FAN_REPORT_DFID_NAME_TARGET: 0x00001e00,
      FAN_REPORT_PIDFD: 0x00000080,
      FAN_INFO: 0x20,
      FAN_EPIDFD: -2,
      FAN_EVENT_INFO_TYPE_OLD_DFID_NAME: 10,
      FAN_EVENT_INFO_TYPE_NEW_DFID_NAME: 12,
      AT_FDCWD: -100,
    });
    expect(ll.FAN_DENY_ERRNO(5)).toBe(0x05000002);
    expect(ll.FAN_DENY_ERRNO(1)).toBe(0x01000002);
    expect(ll.FAN_DENY_ERRNO(255)).toBe(0xff000002);
  });

  test('MaskFlags and FanotifyFlags carry the same values as the low-level constants', () => {
    for (const [name, value] of Object.entries(MaskFlags)) {
      // The ALL_* unions are the library's own (the kernel's FAN_ALL_* are deprecated and narrower).
      if (name.startsWith('ALL_')) continue;
      const low = (ll as Record<string, unknown>)[`FAN_${name}`];
      if (low !== undefined) expect([name, value]).toEqual([name, low]);
    }
    for (const [name, value] of Object.entries(FanotifyFlags)) {
      expect([name, value]).toEqual([name, (ll as Record<string, unknown>)[`FAN_${name}`]]);
    }
  });
});

describeRoot('lowLevel syscalls against a tmpfs', () => {
  let scratch: Scratch;
  const groups: number[] = [];

  function init(flags: number, eventFlags = 0): number {
    const fd = ll.fanotifyInit(flags | ll.FAN_CLOEXEC | ll.FAN_NONBLOCK, eventFlags);
    groups.push(fd);
    return fd;
  }

  beforeAll(() => (scratch = mountTmpfs()));
  afterEach(() => {
    // Closing a group lets the kernel allow whatever it still has pending.
    for (const fd of groups.splice(0)) ll.close(fd);
    reapAll();
  });
  afterAll(() => scratch?.cleanup());

  test('fd mode: metadata with an open event fd that names the file (closed by us)', () => {
    const file = scratch.file('fdmode.txt');
    fs.writeFileSync(file, 'abc');
    const g = init(ll.FAN_CLASS_NOTIF, EVENT_FLAGS);
    expect(g).toBeGreaterThanOrEqual(0);
    ll.fanotifyMark(g, ll.FAN_MARK_ADD, ll.FAN_OPEN | ll.FAN_CLOSE_NOWRITE, ll.AT_FDCWD, file);
    fs.readFileSync(file);
    const events = readUntil(g, (evs) => evs.some((e) => e.mask & ll.FAN_CLOSE_NOWRITE));
    try {
      expect(events.length).toBeGreaterThanOrEqual(1);
      const union = events.reduce((m, e) => m | e.mask, 0);
      expect(union & (ll.FAN_OPEN | ll.FAN_CLOSE_NOWRITE)).toBe(ll.FAN_OPEN | ll.FAN_CLOSE_NOWRITE);
      for (const ev of events) {
        expect(ev).toMatchObject({ vers: ll.FANOTIFY_METADATA_VERSION, metadataLen: ll.FAN_EVENT_METADATA_LEN, eventLen: 24, pid: process.pid, fids: [], unknownRecords: [] });
        expect(ev.fd).toBeGreaterThanOrEqual(0);
        expect(fs.readlinkSync(`/proc/self/fd/${ev.fd}`)).toBe(file);
        expect(ev.pidfd).toBeUndefined();
      }
    } finally {
      closeEventFds(events);
    }
    // A second read of a drained non-blocking group gives [].
    expect(ll.readEvents(g)).toEqual([]);
  });

  test('FID + DFID_NAME records: name, fsid, handle Buffer; the directory handle matches its own FID', () => {
    const dir = scratch.file('fid-dir');
    fs.mkdirSync(dir);
    // The child's own FID comes with directory-entry events only with REPORT_TARGET_FID.
    const g = init(ll.FAN_CLASS_NOTIF | ll.FAN_REPORT_DFID_NAME_TARGET);
    ll.fanotifyMark(g, ll.FAN_MARK_ADD, ll.FAN_CREATE, ll.AT_FDCWD, dir);
    const self = init(ll.FAN_CLASS_NOTIF | ll.FAN_REPORT_FID);
    ll.fanotifyMark(self, ll.FAN_MARK_ADD, ll.FAN_ATTRIB | ll.FAN_ONDIR, ll.AT_FDCWD, dir);

    fs.writeFileSync(path.join(dir, 'entry.txt'), '');
    fs.chmodSync(dir, 0o750);

    const created = readUntil(g, (evs) => evs.length > 0);
    expect(created).toHaveLength(1);
    const ev = created[0];
    expect(ev.mask).toBe(ll.FAN_CREATE);
    expect(ev.fd).toBe(ll.FAN_NOFD);
    expect(ev.pid).toBe(process.pid);
    expect(ev.eventLen).toBeGreaterThan(ll.FAN_EVENT_METADATA_LEN);
    const dfidName = ev.fids.find((f) => f.type === 'dfidName');
    const fid = ev.fids.find((f) => f.type === 'fid');
    expect(dfidName).toBeDefined();
    expect(fid).toBeDefined();
    expect(dfidName!.infoType).toBe(ll.FAN_EVENT_INFO_TYPE_DFID_NAME);
    expect(dfidName!.name).toBe('entry.txt');
    expect(fid!.infoType).toBe(ll.FAN_EVENT_INFO_TYPE_FID);
    expect(fid!.name).toBeNull();
    for (const rec of [dfidName!, fid!]) {
      expect(Buffer.isBuffer(rec.handle)).toBe(true);
      // struct file_handle: u32 handle_bytes, s32 handle_type, f_handle[handle_bytes]
      expect(rec.handle.readUInt32LE(0)).toBe(rec.handle.length - 8);
      expect(rec.handle.length).toBeGreaterThan(8);
      expect(rec.handleType).toBe(rec.handle.readInt32LE(4));
      expect(rec.fsid).toHaveLength(2);
      expect(rec.fsid.every((n) => Number.isInteger(n))).toBe(true);
    }
    // Both records are on the same filesystem; the file and its directory differ.
    expect(fid!.fsid).toEqual(dfidName!.fsid);
    expect(fid!.handle.equals(dfidName!.handle)).toBe(false);

    const attrib = readUntil(self, (evs) => evs.length > 0);
    expect(attrib).toHaveLength(1);
    expect(attrib[0].mask).toBe(ll.FAN_ATTRIB | ll.FAN_ONDIR);
    expect(attrib[0].fids.map((f) => f.type)).toEqual(['fid']);
    // The directory's own FID is the DFID of the create.
    expect(attrib[0].fids[0].handle.equals(dfidName!.handle)).toBe(true);
    expect(attrib[0].fids[0].fsid).toEqual(dfidName!.fsid);
  });

  test('FAN_RENAME: OLD_DFID_NAME and NEW_DFID_NAME records with both names, and the target FID', () => {
    const from = scratch.file('rename-from');
    const to = scratch.file('rename-to');
    fs.mkdirSync(from);
    fs.mkdirSync(to);
    fs.writeFileSync(path.join(from, 'old-name'), '');
    const g = init(ll.FAN_CLASS_NOTIF | ll.FAN_REPORT_DFID_NAME_TARGET);
    // The kernel includes the NEW_DFID_NAME record only when the group also
    // watches the destination directory, so both are marked.
    ll.fanotifyMark(g, ll.FAN_MARK_ADD, ll.FAN_RENAME, ll.AT_FDCWD, from);
    ll.fanotifyMark(g, ll.FAN_MARK_ADD, ll.FAN_RENAME, ll.AT_FDCWD, to);
    fs.renameSync(path.join(from, 'old-name'), path.join(to, 'new-name'));
    const events = readUntil(g, (evs) => evs.length > 0);
    expect(events).toHaveLength(1);
    const ev = events[0];
    expect(ev.mask).toBe(ll.FAN_RENAME);
    const old = ev.fids.find((f) => f.type === 'oldDfidName');
    const neu = ev.fids.find((f) => f.type === 'newDfidName');
    expect(old).toMatchObject({ infoType: ll.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, name: 'old-name' });
    expect(neu).toMatchObject({ infoType: ll.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, name: 'new-name' });
    // Different directories: different handles.
    expect(old!.handle.equals(neu!.handle)).toBe(false);
    expect(ev.fids.map((f) => f.type).sort()).toEqual(['fid', 'newDfidName', 'oldDfidName']);
    expect(ev.unknownRecords).toEqual([]);
  });

  test('FAN_REPORT_PIDFD: a pidfd record for a live process (closed by us), FAN_NOPIDFD for one that is gone', async () => {
    const file = scratch.file('pidfd.txt');
    fs.writeFileSync(file, 'x');
    const g = init(ll.FAN_CLASS_NOTIF | ll.FAN_REPORT_PIDFD, EVENT_FLAGS);
    ll.fanotifyMark(g, ll.FAN_MARK_ADD, ll.FAN_OPEN, ll.AT_FDCWD, file);

    fs.readFileSync(file);
    const mine = readUntil(g, (evs) => evs.length > 0);
    try {
      expect(mine).toHaveLength(1);
      expect(mine[0].pid).toBe(process.pid);
      expect(mine[0].pidfd).toBeGreaterThanOrEqual(0);
      expect(fs.readlinkSync(`/proc/self/fd/${mine[0].pidfd}`)).toBe('anon_inode:[pidfd]');
      const fdinfo = fs.readFileSync(`/proc/self/fdinfo/${mine[0].pidfd}`, 'utf8');
      expect(fdinfo).toMatch(new RegExp(`^Pid:\\s*${process.pid}$`, 'm'));
    } finally {
      closeEventFds(mine);
    }

    // A child that opens the file and exits (and is reaped) before we read.
    const child = startNode("require('fs').readFileSync(process.argv[1])", [file]);
    await withTimeout(child.done, 8000, 'the child');
    const gone = readUntil(g, (evs) => evs.length > 0);
    try {
      expect(gone).toHaveLength(1);
      expect(gone[0].pid).toBe(child.pid);
      expect(gone[0].pidfd).toBe(ll.FAN_NOPIDFD);
    } finally {
      closeEventFds(gone);
    }
  });

  describe('permission events with writeResponse', () => {
    const READ_FILE = `
      const fs = require('fs');
      try { fs.readFileSync(process.argv[1]); console.log('ok'); } catch (e) { console.log(e.code); }
    `;

    /** Starts a reader child, answers its OPEN_PERM event with `response`, returns what the child saw. */
    async function answer(g: number, file: string, response: number | ((ev: RawEvent) => void)): Promise<{ seen: string; ev: RawEvent }> {
      const child = startNode(READ_FILE, [file]);
      const events = readUntil(g, (evs) => evs.some((e) => e.pid === child.pid), 5000);
      const ev = events.find((e) => e.pid === child.pid);
      if (!ev) throw new Error(`no permission event from the child (got ${JSON.stringify(events)})`);
      try {
        expect(ev.mask).toBe(ll.FAN_OPEN_PERM);
        expect(ev.fd).toBeGreaterThanOrEqual(0);
        if (typeof response === 'number') ll.writeResponse(g, ev.fd, response);
        else response(ev);
      } finally {
        // Our own reads of the file are blocked too while the mark exists:
        // nothing here touches it. Close the event fd whatever happened.
        closeEventFds(events);
      }
      const r = await withTimeout(child.done, 8000, 'the reader child');
      return { seen: r.stdout.trim(), ev };
    }

    test('FAN_ALLOW lets the child read, FAN_DENY fails it with EPERM; a second answer gets ENOENT', async () => {
      const file = scratch.file('perm.txt');
      fs.writeFileSync(file, 'guarded');
      const g = init(ll.FAN_CLASS_CONTENT, EVENT_FLAGS);
      ll.fanotifyMark(g, ll.FAN_MARK_ADD, ll.FAN_OPEN_PERM, ll.AT_FDCWD, file);
      expect((await answer(g, file, ll.FAN_ALLOW)).seen).toBe('ok');
      let again: FanotifyError | undefined;
      const denied = await answer(g, file, (ev) => {
        ll.writeResponse(g, ev.fd, ll.FAN_DENY);
        again = thrown(() => ll.writeResponse(g, ev.fd, ll.FAN_DENY));
      });
      expect(denied.seen).toBe('EPERM');
      expect(again).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'write' });
    });

    test('FAN_DENY_ERRNO(EIO): refused (EINVAL) by a CLASS_CONTENT group, delivered by a CLASS_PRE_CONTENT group', async () => {
      const file = scratch.file('perm-errno.txt');
      fs.writeFileSync(file, 'guarded');
      const content = init(ll.FAN_CLASS_CONTENT, EVENT_FLAGS);
      ll.fanotifyMark(content, ll.FAN_MARK_ADD, ll.FAN_OPEN_PERM, ll.AT_FDCWD, file);
      let refused: FanotifyError | undefined;
      const r1 = await answer(content, file, (ev) => {
        refused = thrown(() => ll.writeResponse(content, ev.fd, ll.FAN_DENY_ERRNO(5)));
        ll.writeResponse(content, ev.fd, ll.FAN_DENY);
      });
      expect(refused).toMatchObject({ kind: 'InvalidArgument', code: 'EINVAL', errno: -22, syscall: 'write' });
      expect(r1.seen).toBe('EPERM');
      ll.close(groups.splice(groups.indexOf(content), 1)[0]);

      const pre = init(ll.FAN_CLASS_PRE_CONTENT, EVENT_FLAGS);
      ll.fanotifyMark(pre, ll.FAN_MARK_ADD, ll.FAN_OPEN_PERM, ll.AT_FDCWD, file);
      expect((await answer(pre, file, ll.FAN_DENY_ERRNO(5))).seen).toBe('EIO');
    });
  });

  describe('errors carry code, errno and syscall', () => {
    test('fanotifyMark on a nonexistent path -> InvalidPath ENOENT', () => {
      const g = init(ll.FAN_CLASS_NOTIF, EVENT_FLAGS);
      const missing = scratch.file('missing', 'x');
      const err = thrown(() => ll.fanotifyMark(g, ll.FAN_MARK_ADD, ll.FAN_OPEN, ll.AT_FDCWD, missing));
      expect(err).toMatchObject({ kind: 'InvalidPath', code: 'ENOENT', errno: -2, syscall: 'fanotify_mark', path: missing });
    });

    test('fanotifyInit with garbage flags -> InvalidArgument EINVAL', () => {
      const err = thrown(() => ll.fanotifyInit(0x80000000, 0));
      expect(err).toMatchObject({ kind: 'InvalidArgument', code: 'EINVAL', errno: -22, syscall: 'fanotify_init' });
    });

    test('fanotifyMark with a mask the group cannot report -> EINVAL', () => {
      const g = init(ll.FAN_CLASS_NOTIF, EVENT_FLAGS);
      // CREATE needs a FID-reporting group.
      const err = thrown(() => ll.fanotifyMark(g, ll.FAN_MARK_ADD, ll.FAN_CREATE, ll.AT_FDCWD, scratch.dir));
      expect(err).toMatchObject({ code: 'EINVAL', errno: -22, syscall: 'fanotify_mark' });
    });

    test('syscalls on a closed fd -> EBADF', () => {
      const g = ll.fanotifyInit(ll.FAN_CLOEXEC | ll.FAN_NONBLOCK, EVENT_FLAGS);
      ll.close(g);
      expect(thrown(() => ll.close(g))).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'close' });
      expect(thrown(() => ll.readEvents(g))).toMatchObject({ code: 'EBADF', syscall: 'read' });
      expect(thrown(() => ll.fanotifyMark(g, ll.FAN_MARK_ADD, ll.FAN_OPEN, ll.AT_FDCWD, scratch.dir))).toMatchObject({ code: 'EBADF', syscall: 'fanotify_mark' });
    });

    test('argument checks before any syscall -> InvalidArgument', () => {
      for (const call of [
        () => ll.fanotifyInit('4' as never, 0),
        () => ll.fanotifyInit(-1, 0),
        () => ll.fanotifyInit(0, 1.5),
        () => ll.fanotifyMark(1.5, 0, 0, ll.AT_FDCWD),
        () => ll.readEvents(0, 100),
        () => ll.writeResponse(0, -1, ll.FAN_ALLOW),
        () => ll.close(-1),
        () => ll.decode('bytes' as never),
      ]) {
        expect(thrown(call).kind).toBe('InvalidArgument');
      }
    });
  });
});

// ---------------------------------------------------------------------------
// The decoder, against hand-built buffers.

interface MetaFields {
  eventLen?: number;
  vers?: number;
  metadataLen?: number;
  mask?: number;
  fd?: number;
  pid?: number;
}

function meta(f: MetaFields = {}, records: Buffer[] = []): Buffer {
  const body = Buffer.concat(records);
  const b = Buffer.alloc(24);
  b.writeUInt32LE(f.eventLen ?? 24 + body.length, 0);
  b.writeUInt8(f.vers ?? 3, 4);
  b.writeUInt8(0, 5);
  b.writeUInt16LE(f.metadataLen ?? 24, 6);
  b.writeBigUInt64LE(BigInt(f.mask ?? ll.FAN_OPEN), 8);
  b.writeInt32LE(f.fd ?? -1, 16);
  b.writeInt32LE(f.pid ?? 4242, 20);
  return Buffer.concat([b, body]);
}

function header(type: number, len: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt8(type, 0);
  h.writeUInt8(0, 1);
  h.writeUInt16LE(len, 2);
  return h;
}

/** A FID-family record: header, fsid, struct file_handle, optional NUL-terminated name, padded to 4. */
function fidRecord(type: number, handle: Buffer, opts: { name?: string; handleBytes?: number; handleType?: number; fsid?: [number, number]; terminate?: boolean } = {}): Buffer {
  const fsid = Buffer.alloc(8);
  fsid.writeInt32LE(opts.fsid?.[0] ?? 0x1234, 0);
  fsid.writeInt32LE(opts.fsid?.[1] ?? -7, 4);
  const fh = Buffer.alloc(8);
  fh.writeUInt32LE(opts.handleBytes ?? handle.length, 0);
  fh.writeInt32LE(opts.handleType ?? 1, 4);
  const name = opts.name === undefined ? Buffer.alloc(0) : Buffer.from(opts.name + (opts.terminate === false ? '' : '\0'));
  let len = 4 + 8 + 8 + handle.length + name.length;
  const pad = Buffer.alloc((4 - (len % 4)) % 4);
  len += pad.length;
  return Buffer.concat([header(type, len), fsid, fh, handle, name, pad]);
}

function pidfdRecord(pidfd: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(pidfd, 0);
  return Buffer.concat([header(ll.FAN_EVENT_INFO_TYPE_PIDFD, 8), b]);
}

function decode(bytes: Uint8Array) {
  const result = ll.decode(bytes);
  expect(Array.isArray(result.events)).toBe(true);
  expect(result.bytesUsed).toBeLessThanOrEqual(bytes.length);
  return result;
}

/** A small seeded PRNG (mulberry32), so a failing fuzz case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('lowLevel.decode against hand-built buffers', () => {
  const HANDLE = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

  test('an empty buffer and truncated metadata decode to nothing', () => {
    expect(decode(Buffer.alloc(0))).toEqual({ events: [], bytesUsed: 0 });
    expect(decode(meta().subarray(0, 23))).toEqual({ events: [], bytesUsed: 0 });
    expect(decode(meta().subarray(0, 1))).toEqual({ events: [], bytesUsed: 0 });
  });

  test('one plain event decodes every metadata field', () => {
    const { events, bytesUsed } = decode(meta({ mask: ll.FAN_CLOSE_WRITE | ll.FAN_ONDIR, fd: 17, pid: 99 }));
    expect(bytesUsed).toBe(24);
    expect(events).toEqual([
      { eventLen: 24, vers: 3, metadataLen: 24, mask: ll.FAN_CLOSE_WRITE | ll.FAN_ONDIR, fd: 17, pid: 99, fids: [], unknownRecords: [] },
    ]);
  });

  test('a view into a larger buffer decodes only its own bytes', () => {
    const two = Buffer.concat([Buffer.alloc(8, 0xff), meta({ pid: 1 }), meta({ pid: 2 }), Buffer.alloc(8, 0xff)]);
    const { events, bytesUsed } = decode(two.subarray(8, 8 + 48));
    expect(bytesUsed).toBe(48);
    expect(events.map((e) => e.pid)).toEqual([1, 2]);
  });

  test('event_len smaller than the metadata stops decoding', () => {
    expect(decode(meta({ eventLen: 10 }))).toEqual({ events: [], bytesUsed: 0 });
    expect(decode(meta({ eventLen: 0 }))).toEqual({ events: [], bytesUsed: 0 });
    // After a good event, a bad one is left unconsumed.
    const r = decode(Buffer.concat([meta({ pid: 5 }), meta({ eventLen: 3 })]));
    expect(r.events.map((e) => e.pid)).toEqual([5]);
    expect(r.bytesUsed).toBe(24);
  });

  test('event_len larger than the buffer stops decoding', () => {
    expect(decode(meta({ eventLen: 25 }))).toEqual({ events: [], bytesUsed: 0 });
    expect(decode(meta({ eventLen: 0xffffffff }))).toEqual({ events: [], bytesUsed: 0 });
    const r = decode(Buffer.concat([meta({ pid: 6 }), meta({ eventLen: 4096 })]));
    expect(r.events.map((e) => e.pid)).toEqual([6]);
    expect(r.bytesUsed).toBe(24);
  });

  test('metadata_len out of range stops decoding', () => {
    expect(decode(meta({ metadataLen: 8 })).events).toEqual([]);
    expect(decode(meta({ metadataLen: 100 })).events).toEqual([]);
  });

  test('a record with len 0 ends the record walk without looping', () => {
    const r = decode(meta({}, [header(ll.FAN_EVENT_INFO_TYPE_FID, 0), Buffer.alloc(12)]));
    expect(r.bytesUsed).toBe(40);
    expect(r.events).toHaveLength(1);
    expect(r.events[0].fids).toEqual([]);
    expect(r.events[0].unknownRecords).toEqual([]);
  });

  test('a record longer than its event is not read', () => {
    const r = decode(meta({}, [header(ll.FAN_EVENT_INFO_TYPE_PIDFD, 200), Buffer.alloc(4)]));
    expect(r.events).toHaveLength(1);
    expect(r.events[0].pidfd).toBeUndefined();
    expect(r.bytesUsed).toBe(32);
  });

  test('an unknown record type is skipped and listed; the records after it still decode', () => {
    const unknown = Buffer.concat([header(99, 12), Buffer.alloc(8, 0xab)]);
    const r = decode(meta({}, [unknown, pidfdRecord(77)]));
    expect(r.events).toHaveLength(1);
    expect(r.events[0].unknownRecords).toEqual([99]);
    expect(r.events[0].pidfd).toBe(77);
  });

  test('a FID record decodes fsid, handle type and the whole struct file_handle', () => {
    const r = decode(meta({ mask: ll.FAN_ATTRIB }, [fidRecord(ll.FAN_EVENT_INFO_TYPE_FID, HANDLE, { fsid: [11, -22], handleType: 0x81 })]));
    expect(r.events).toHaveLength(1);
    const [fid] = r.events[0].fids;
    expect(fid).toMatchObject({ type: 'fid', infoType: 1, fsid: [11, -22], handleType: 0x81, name: null });
    const expected = Buffer.alloc(8 + HANDLE.length);
    expected.writeUInt32LE(HANDLE.length, 0);
    expected.writeInt32LE(0x81, 4);
    HANDLE.copy(expected, 8);
    expect(Buffer.from(fid.handle)).toEqual(expected);
  });

  test('DFID_NAME, OLD_DFID_NAME and NEW_DFID_NAME records carry their names', () => {
    const r = decode(
      meta({ mask: ll.FAN_RENAME }, [
        fidRecord(ll.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, HANDLE, { name: 'before' }),
        fidRecord(ll.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, HANDLE, { name: 'after' }),
        fidRecord(ll.FAN_EVENT_INFO_TYPE_DFID_NAME, HANDLE, { name: 'x' }),
        fidRecord(ll.FAN_EVENT_INFO_TYPE_DFID, HANDLE),
      ]),
    );
    expect(r.events[0].fids.map((f) => [f.type, f.infoType, f.name])).toEqual([
      ['oldDfidName', 10, 'before'],
      ['newDfidName', 12, 'after'],
      ['dfidName', 2, 'x'],
      ['dfid', 3, null],
    ]);
  });

  test('a name without its NUL stops at the end of the record', () => {
    // 'abcd' fills the record exactly (4 + 8 + 8 + 12 + 4 = 36, already aligned).
    const rec = fidRecord(ll.FAN_EVENT_INFO_TYPE_DFID_NAME, HANDLE, { name: 'abcd', terminate: false });
    expect(rec.length).toBe(36);
    const r = decode(Buffer.concat([meta({}, [rec]), meta({ pid: 7 })]));
    expect(r.events[0].fids[0].name).toBe('abcd');
    expect(r.events[1].pid).toBe(7);
  });

  test('a FID record whose handle_bytes exceeds the record is dropped, not read past', () => {
    const r = decode(meta({}, [fidRecord(ll.FAN_EVENT_INFO_TYPE_FID, HANDLE, { handleBytes: 4000 }), pidfdRecord(3)]));
    expect(r.events).toHaveLength(1);
    expect(r.events[0].fids).toEqual([]);
    expect(r.events[0].pidfd).toBe(3);
    const huge = decode(meta({}, [fidRecord(ll.FAN_EVENT_INFO_TYPE_DFID_NAME, HANDLE, { handleBytes: 0xffffffff, name: 'n' })]));
    expect(huge.events[0].fids).toEqual([]);
  });

  test('records too short for their type are ignored', () => {
    const shortFid = Buffer.concat([header(ll.FAN_EVENT_INFO_TYPE_FID, 12), Buffer.alloc(8)]);
    const shortPidfd = header(ll.FAN_EVENT_INFO_TYPE_PIDFD, 4);
    const shortError = Buffer.concat([header(ll.FAN_EVENT_INFO_TYPE_ERROR, 8), Buffer.alloc(4)]);
    const shortRange = Buffer.concat([header(ll.FAN_EVENT_INFO_TYPE_RANGE, 16), Buffer.alloc(12)]);
    const shortMnt = Buffer.concat([header(ll.FAN_EVENT_INFO_TYPE_MNT, 8), Buffer.alloc(4)]);
    const r = decode(meta({}, [shortFid, shortPidfd, shortError, shortRange, shortMnt]));
    expect(r.events).toHaveLength(1);
    const ev = r.events[0];
    expect(ev.fids).toEqual([]);
    expect(ev.pidfd).toBeUndefined();
    expect(ev.error).toBeUndefined();
    expect(ev.range).toBeUndefined();
    expect(ev.mountId).toBeUndefined();
  });

  test('ERROR, RANGE and MNT records decode', () => {
    const error = Buffer.alloc(12);
    header(ll.FAN_EVENT_INFO_TYPE_ERROR, 12).copy(error);
    error.writeInt32LE(117, 4);
    error.writeUInt32LE(3, 8);
    const range = Buffer.alloc(24);
    header(ll.FAN_EVENT_INFO_TYPE_RANGE, 24).copy(range);
    range.writeBigUInt64LE(4096n, 8);
    range.writeBigUInt64LE(512n, 16);
    const mnt = Buffer.alloc(16);
    header(ll.FAN_EVENT_INFO_TYPE_MNT, 16).copy(mnt);
    mnt.writeBigUInt64LE(0x1_0000_0042n, 8);
    const r = decode(meta({ mask: ll.FAN_FS_ERROR }, [error, range, mnt]));
    expect(r.events[0]).toMatchObject({ error: { errno: 117, count: 3 }, range: { offset: 4096, count: 512 }, mountId: 0x1_0000_0042n });
  });

  test('fuzz: 2000 random buffers never crash, always an array and bytesUsed <= length', () => {
    const seed = 0x5eed1234;
    const rand = prng(seed);
    const byte = () => Math.floor(rand() * 256);
    for (let i = 0; i < 2000; i++) {
      let buf: Buffer;
      const shape = i % 3;
      if (shape === 0) {
        // Pure noise.
        buf = Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, byte));
      } else {
        // Plausible metadata (so the record walker runs) followed by noise records.
        const tail = Buffer.from(Array.from({ length: Math.floor(rand() * 200) }, byte));
        if (shape === 2) {
          // Sprinkle plausible record headers through the noise.
          for (let off = 0; off + 4 <= tail.length; off += 4 + Math.floor(rand() * 24)) {
            tail.writeUInt8(1 + Math.floor(rand() * 13), off);
            tail.writeUInt16LE(Math.floor(rand() * 64), off + 2);
          }
        }
        const lie = rand() < 0.2 ? Math.floor(rand() * 400) : undefined;
        buf = Buffer.concat([meta({ eventLen: lie ?? 24 + tail.length }, [tail]), Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, byte))]);
      }
      let result: ReturnType<typeof ll.decode>;
      try {
        result = ll.decode(buf);
      } catch (e) {
        throw new Error(`decode threw on case ${i} (seed ${seed}): ${buf.toString('hex')}: ${String(e)}`);
      }
      if (!Array.isArray(result.events) || !(result.bytesUsed >= 0 && result.bytesUsed <= buf.length)) {
        throw new Error(`bad result on case ${i} (seed ${seed}): ${buf.toString('hex')}`);
      }
      // What was consumed is exactly the events returned.
      const consumed = result.events.reduce((n, e) => n + e.eventLen, 0);
      if (consumed !== result.bytesUsed) throw new Error(`case ${i}: events cover ${consumed} bytes, bytesUsed ${result.bytesUsed}`);
      for (const ev of result.events) {
        if (ev.eventLen < 24 || !Array.isArray(ev.fids) || !Array.isArray(ev.unknownRecords)) throw new Error(`case ${i}: malformed event`);
        for (const f of ev.fids) if (!Buffer.isBuffer(f.handle) || f.handle.length < 8) throw new Error(`case ${i}: malformed fid`);
      }
    }
  });
});
