/**
 * Permission events with the synchronous Fanotify, against a private tmpfs.
 *
 * The library answers permission events caused by its own process natively
 * (allowSelf), so every access that must reach JavaScript is made by a child
 * process. The sync reads block the JS thread while waiting, which is fine:
 * the child runs on its own, and its output is collected after the answer.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { Fanotify, FanotifyError, FanotifyFlags, MaskFlags, capabilities, type FanotifyEvent } from '../lib';
import { reapAll, startChild, startNode, type ChildResult, type RunningChild } from './helpers/child';
import { collectFor, collectUntil, withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { spinUntilWaitingForAnswer } from './helpers/wait';
import { mountTmpfs, type Scratch } from './helpers/scratch';

/** Reads the file named by argv[1]; prints 'ok' or the error code. */
const READ_FILE = `
const fs = require('fs');
try { fs.readFileSync(process.argv[1]); console.log('ok'); }
catch (e) { console.log(e.code || String(e)); }
`;

/** Opens, then reads: prints 'opened' (or 'open:CODE'), then 'read:N' or 'read:CODE'. */
const OPEN_THEN_READ = `
const fs = require('fs');
let fd;
try { fd = fs.openSync(process.argv[1], 'r'); } catch (e) { console.log('open:' + e.code); process.exit(0); }
console.log('opened');
try { console.log('read:' + fs.readSync(fd, Buffer.alloc(64), 0, 64, 0)); } catch (e) { console.log('read:' + e.code); }
`;

const CONTENT = 'secret contents\n';

/** Waits (bounded) until an event from `pid` arrives; returns every event read meanwhile. */
function eventsFrom(fan: Fanotify, pid: number, timeoutMs = 5000): FanotifyEvent[] {
  return collectUntil(fan, (evs) => evs.some((e) => e.pid === pid), timeoutMs);
}

function only(events: FanotifyEvent[], pid: number): FanotifyEvent {
  expect(events.map((e) => ({ pid: e.pid, types: e.types() }))).toEqual([{ pid, types: expect.any(Array) }]);
  return events[0];
}

function finished(child: RunningChild, what = 'the child'): Promise<ChildResult> {
  return withTimeout(child.done, 8000, what);
}

/** The scheduler state of a process ('S' while it waits for our answer, 'Z' once it exited). */
function processState(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return 'gone';
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** True if the process is still alive (not exited, not a zombie) after `ms`. */
function stillBlocked(pid: number, ms = 150): boolean {
  sleep(ms);
  const state = processState(pid);
  return state !== 'Z' && state !== 'X' && state !== 'gone';
}

describeRoot('permission events (sync Fanotify)', () => {
  let scratch: Scratch;
  let file: string;

  beforeAll(() => {
    scratch = mountTmpfs();
    file = scratch.file('guarded.txt');
    fs.writeFileSync(file, CONTENT);
  });
  afterEach(() => reapAll());
  afterAll(() => scratch?.cleanup());

  test('OPEN_PERM: the event names the child, is a permission event with an open fd; allow lets it read', async () => {
    using fan = new Fanotify();
    fan.addWatch(file, MaskFlags.OPEN_PERM);
    const child = startNode(READ_FILE, [file]);
    const ev = only(eventsFrom(fan, child.pid), child.pid);

    expect(ev.pid).toBe(child.pid);
    expect(ev.isPermission()).toBe(true);
    expect(ev.isOpen()).toBe(true);
    expect(ev.mask & MaskFlags.OPEN_PERM).toBe(MaskFlags.OPEN_PERM);
    expect(ev.path).toBe(file);
    const fd = ev.fd;
    expect(fd).toBeGreaterThanOrEqual(0);
    // The fd is a real open file description of the guarded file.
    expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toBe(file);
    // Until we answer, the child waits in the kernel.
    expect(stillBlocked(child.pid)).toBe(true);

    fan.allow(ev);
    // Ours (see 'ev.fd: a descriptor JavaScript owns'): still open after the answer.
    expect(ev.fd).toBe(fd);
    fs.closeSync(fd);
    const r = await finished(child);
    expect(r.stdout.trim()).toBe('ok');
  });

  test('fan.deny makes the child fail with EPERM', async () => {
    using fan = new Fanotify();
    fan.addWatch(file, MaskFlags.OPEN_PERM);
    const child = startNode(READ_FILE, [file]);
    const ev = only(eventsFrom(fan, child.pid), child.pid);
    fan.deny(ev);
    expect(ev.fd).toBe(-1); // not taken before the answer: nothing to open any more
    const r = await finished(child);
    expect(r.stdout.trim()).toBe('EPERM');
  });

  test('ev.allow() and ev.deny() answer through the instance', async () => {
    using fan = new Fanotify();
    fan.addWatch(file, MaskFlags.OPEN_PERM);

    const allowed = startNode(READ_FILE, [file]);
    const ev1 = only(eventsFrom(fan, allowed.pid), allowed.pid);
    ev1.allow();
    expect(ev1.fd).toBe(-1);
    expect((await finished(allowed)).stdout.trim()).toBe('ok');

    const denied = startNode(READ_FILE, [file]);
    const ev2 = only(eventsFrom(fan, denied.pid), denied.pid);
    ev2.deny();
    expect(ev2.fd).toBe(-1);
    expect((await finished(denied)).stdout.trim()).toBe('EPERM');
  });

  test('answering twice is a no-op: no throw, and the second answer changes nothing', async () => {
    using fan = new Fanotify();
    fan.addWatch(file, MaskFlags.OPEN_PERM);

    const first = startNode(READ_FILE, [file]);
    const ev1 = only(eventsFrom(fan, first.pid), first.pid);
    fan.allow(ev1);
    expect(() => fan.deny(ev1)).not.toThrow();
    expect(() => ev1.deny()).not.toThrow();
    expect(() => fan.respond(ev1, { allow: false })).not.toThrow();
    expect(ev1.fd).toBe(-1);
    expect((await finished(first)).stdout.trim()).toBe('ok');

    // A second event may reuse the first one's fd number: a stale answer to
    // the first event must not reach it.
    const second = startNode(READ_FILE, [file]);
    const ev2 = only(eventsFrom(fan, second.pid), second.pid);
    fan.deny(ev1);
    ev1.deny();
    expect(stillBlocked(second.pid)).toBe(true);
    fan.allow(ev2);
    expect((await finished(second)).stdout.trim()).toBe('ok');
  });

  test('ACCESS_PERM: the open goes through, the read waits for the answer and deny fails it with EPERM', async () => {
    using fan = new Fanotify();
    fan.addWatch(file, MaskFlags.ACCESS_PERM);

    const denied = startNode(OPEN_THEN_READ, [file]);
    const ev = only(eventsFrom(fan, denied.pid), denied.pid);
    expect(ev.mask & MaskFlags.ACCESS_PERM).toBe(MaskFlags.ACCESS_PERM);
    expect(ev.isAccess()).toBe(true);
    expect(ev.isPermission()).toBe(true);
    expect(ev.path).toBe(file);
    expect(ev.fd).toBeGreaterThanOrEqual(0);
    fs.closeSync(ev.fd);
    ev.deny();
    expect((await finished(denied)).stdout.split('\n').filter(Boolean)).toEqual(['opened', 'read:EPERM']);

    const allowed = startNode(OPEN_THEN_READ, [file]);
    only(eventsFrom(fan, allowed.pid), allowed.pid).allow();
    expect((await finished(allowed)).stdout.split('\n').filter(Boolean)).toEqual(['opened', `read:${CONTENT.length}`]);
  });

  test('OPEN_EXEC_PERM: exec of a watched binary waits for the answer', async () => {
    const exe = scratch.file('true-copy');
    fs.copyFileSync('/bin/true', exe);
    fs.chmodSync(exe, 0o755);
    using fan = new Fanotify();
    fan.addWatch(exe, MaskFlags.OPEN_EXEC_PERM);

    // `exec` replaces the shell, so the execve comes from the child's own pid.
    const denied = startChild('sh', ['-c', 'exec "$0"', exe]);
    const ev = only(eventsFrom(fan, denied.pid), denied.pid);
    expect(ev.mask & MaskFlags.OPEN_EXEC_PERM).toBe(MaskFlags.OPEN_EXEC_PERM);
    expect(ev.isPermission()).toBe(true);
    expect(ev.isOpen()).toBe(true);
    expect(ev.path).toBe(exe);
    fan.deny(ev);
    const r = await finished(denied);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not permitted/i);

    const allowed = startChild('sh', ['-c', 'exec "$0"', exe]);
    fan.allow(only(eventsFrom(fan, allowed.pid), allowed.pid));
    expect((await finished(allowed)).code).toBe(0);
  });

  describe('deny with an errno (FAN_DENY_ERRNO)', () => {
    // Linux 6.14+ accepts FAN_DENY_ERRNO only from a CLASS_PRE_CONTENT group,
    // so new Fanotify() makes its permission group pre-content there.
    test('on the permission group of new Fanotify(): the child sees EIO', async () => {
      using fan = new Fanotify();
      fan.addWatch(file, MaskFlags.OPEN_PERM);
      const child = startNode(READ_FILE, [file]);
      const ev = only(eventsFrom(fan, child.pid), child.pid);
      if (!capabilities().denyErrno) {
        expect(() => fan.respond(ev, { allow: false, errno: 5 })).toThrow(expect.objectContaining({ kind: 'NotSupported' }));
        fan.deny(ev);
        expect((await finished(child)).stdout.trim()).toBe('EPERM');
        return;
      }
      fan.respond(ev, { allow: false, errno: 5 });
      expect(ev.fd).toBe(-1);
      expect((await finished(child)).stdout.trim()).toBe('EIO');
    });

    // A content-class group (withFlags) cannot (the kernel would say EINVAL):
    // the library says why (NotSupported) before writing, and the event
    // stays pending and answerable.
    test('on a CLASS_CONTENT group (withFlags): a FanotifyError that says why, and the event stays answerable', async () => {
      using fan = Fanotify.withFlags(FanotifyFlags.CLASS_CONTENT | FanotifyFlags.CLOEXEC);
      fan.addWatch(file, MaskFlags.OPEN_PERM);
      const child = startNode(READ_FILE, [file]);
      const ev = only(eventsFrom(fan, child.pid), child.pid);
      let err: unknown;
      try {
        fan.respond(ev, { allow: false, errno: 5 });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FanotifyError);
      const fe = err as FanotifyError;
      expect(fe.kind).toBe('NotSupported');
      expect(fe.message).toMatch(capabilities().denyErrno ? /CLASS_PRE_CONTENT group/ : /6\.14/);
      // Still pending: the child waits, its file can still be opened, a plain deny works.
      const fd = ev.fd;
      expect(fd).toBeGreaterThanOrEqual(0);
      expect(stillBlocked(child.pid)).toBe(true);
      fan.deny(ev);
      expect(ev.fd).toBe(fd);
      fs.closeSync(fd);
      expect((await finished(child)).stdout.trim()).toBe('EPERM');
      // The message is about the answer, not about a mark (no mark was involved).
      expect(fe.message).not.toMatch(/rejected this mark/);
    });

    test('on a CLASS_PRE_CONTENT group (withFlags): the child sees EIO', async () => {
      if (!capabilities().denyErrno) {
        console.warn('skipping the EIO check: FAN_DENY_ERRNO needs Linux 6.14');
        return;
      }
      using fan = Fanotify.withFlags(FanotifyFlags.CLASS_PRE_CONTENT | FanotifyFlags.CLOEXEC);
      fan.addWatch(file, MaskFlags.OPEN_PERM);
      const child = startNode(READ_FILE, [file]);
      const ev = only(eventsFrom(fan, child.pid), child.pid);
      fan.respond(ev, { allow: false, errno: 5 });
      expect(ev.fd).toBe(-1);
      expect((await finished(child)).stdout.trim()).toBe('EIO');
    });
  });

  test('answering a notification event throws InvalidArgument', () => {
    using fan = new Fanotify();
    fan.addWatch(scratch.dir, MaskFlags.CREATE);
    const created = scratch.file('notif-created.txt');
    fs.writeFileSync(created, '');
    try {
      const events = collectUntil(fan, (evs) => evs.some((e) => e.isCreate()));
      const ev = events.find((e) => e.isCreate());
      expect(ev).toBeDefined();
      expect(ev!.isPermission()).toBe(false);
      for (const answer of [() => fan.allow(ev!), () => fan.deny(ev!), () => fan.respond(ev!, { allow: true }), () => ev!.allow(), () => ev!.deny()]) {
        let err: unknown;
        try {
          answer();
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(FanotifyError);
        expect((err as FanotifyError).kind).toBe('InvalidArgument');
      }
    } finally {
      fs.unlinkSync(created);
    }
  });

  test("a permission event cannot be answered through another instance", async () => {
    using fan = new Fanotify();
    using other = new Fanotify();
    fan.addWatch(file, MaskFlags.OPEN_PERM);
    const child = startNode(READ_FILE, [file]);
    const ev = only(eventsFrom(fan, child.pid), child.pid);
    expect(() => other.deny(ev)).toThrow(expect.objectContaining({ kind: 'InvalidArgument' }));
    expect(ev.fd).toBeGreaterThanOrEqual(0); // still pending: its file can still be opened
    fs.closeSync(ev.fd);
    expect(stillBlocked(child.pid)).toBe(true);
    fan.allow(ev);
    expect((await finished(child)).stdout.trim()).toBe('ok');
  });

  describe('permissionTimeout', () => {
    // Jest gives each test file a copy of `process`; process.emitWarning still
    // emits 'warning' on the real one, so listen there (outside jest they are
    // the same object).
    const realProcess = vm.runInThisContext('process') as NodeJS.Process;
    let warnings: Error[];
    const onWarning = (w: Error) => warnings.push(w);
    beforeEach(() => {
      warnings = [];
      realProcess.on('warning', onWarning);
    });
    afterEach(() => {
      realProcess.off('warning', onWarning);
    });

    async function unanswered(defaultResponse: 'allow' | 'deny'): Promise<{ ev: FanotifyEvent; r: ChildResult; blockedMs: number; fan: Fanotify }> {
      const fan = new Fanotify({ permissionTimeout: 300, defaultResponse });
      fan.addWatch(file, MaskFlags.OPEN_PERM);
      const start = Date.now();
      const child = startNode(READ_FILE, [file]);
      const ev = only(eventsFrom(fan, child.pid), child.pid);
      const r = await finished(child);
      const blockedMs = Date.now() - start;
      // The expiry warning is handed out by the next read.
      expect(fan.readEvents({ timeout: 0 })).toEqual([]);
      await new Promise((resolve) => setImmediate(resolve));
      return { ev, r, blockedMs, fan };
    }

    test("an unanswered event gets defaultResponse 'deny' after the timeout, with a warning", async () => {
      const { ev, r, blockedMs, fan } = await unanswered('deny');
      try {
        expect(r.stdout.trim()).toBe('EPERM');
        expect(blockedMs).toBeGreaterThanOrEqual(300);
        expect(warnings.map((w) => w.message)).toEqual([expect.stringMatching(/not answered within 300 ms; answered deny/)]);
        // Answering after the deadline is a no-op.
        expect(() => fan.allow(ev)).not.toThrow();
      } finally {
        fan.close();
      }
    });

    test('a program that never reads still gets the deadline: the reader thread takes the event over', async () => {
      // readEvents() reads permission groups itself while it waits; when
      // nobody calls it, the reader thread must read them, or no deadline
      // would ever start.
      using fan = new Fanotify({ permissionTimeout: 300, defaultResponse: 'deny' });
      fan.addWatch(file, MaskFlags.OPEN_PERM);
      expect(fan.readEvents({ timeout: 0 })).toEqual([]); // a read first: the instance now reads directly
      const start = Date.now();
      const child = startNode(READ_FILE, [file]);
      const r = await finished(child);
      expect(r.stdout.trim()).toBe('EPERM');
      expect(Date.now() - start).toBeGreaterThanOrEqual(300);
      const later = fan.readEvents({ timeout: 0 });
      expect(later.map((ev) => [ev.pid, ev.fd])).toEqual([[child.pid, -1]]); // answered by the deadline
      await new Promise((resolve) => setImmediate(resolve)); // process warnings are emitted on the next tick
      expect(warnings.map((w) => w.message)).toEqual([expect.stringMatching(/not answered within 300 ms; answered deny/)]);
    });

    test("an unanswered event gets defaultResponse 'allow' after the timeout, with a warning", async () => {
      const { ev, r, blockedMs, fan } = await unanswered('allow');
      try {
        expect(r.stdout.trim()).toBe('ok');
        expect(blockedMs).toBeGreaterThanOrEqual(300);
        expect(warnings.map((w) => w.message)).toEqual([expect.stringMatching(/not answered within 300 ms; answered allow/)]);
        expect(() => fan.deny(ev)).not.toThrow();
      } finally {
        fan.close();
      }
    });
  });

  test('a blocking read waiting on a permission group also returns at once for a notification event', () => {
    // The calling thread polls the permission group itself; notification
    // events come from the reader thread, which must wake that poll.
    const dir = scratch.file('mixed');
    fs.mkdirSync(dir);
    using fan = new Fanotify({ permissionTimeout: 5000 });
    fan.addWatch(file, MaskFlags.OPEN_PERM);
    fan.addWatch(dir, MaskFlags.CREATE);
    expect(fan.readEvents({ timeout: 0 })).toEqual([]);
    // The writer lives on afterwards: its exit (SIGCHLD) would interrupt the wait too.
    startNode("setTimeout(() => { require('fs').writeFileSync(process.argv[1], ''); setTimeout(() => {}, 5000); }, 200)", [path.join(dir, 'new')]);
    const start = Date.now();
    const events = fan.readEvents({ timeout: 5000 });
    expect(Date.now() - start).toBeLessThan(2500);
    expect(events.map((ev) => [ev.types(), ev.path])).toEqual([[['CREATE'], path.join(dir, 'new')]]);
  });

  test('ev.fd read first after the library answered (deadline or close) is -1, like after an answer by hand', async () => {
    // The library closes the kernel's event fd when it answers: there is
    // nothing left to open a descriptor of.
    const fan = new Fanotify({ permissionTimeout: 300, defaultResponse: 'allow' });
    let expired: FanotifyEvent;
    try {
      fan.addWatch(file, MaskFlags.OPEN_PERM);
      const child = startNode(READ_FILE, [file]);
      expired = only(eventsFrom(fan, child.pid), child.pid);
      expect((await finished(child)).stdout.trim()).toBe('ok');
      fan.readEvents({ timeout: 0 }); // hands out the expiry warning
      const atClose = startNode(READ_FILE, [file]);
      const pendingAtClose = only(eventsFrom(fan, atClose.pid), atClose.pid);
      fan.close();
      expect((await finished(atClose)).stdout.trim()).toBe('ok');
      expect({ expired: expired.fd, pendingAtClose: pendingAtClose.fd }).toEqual({ expired: -1, pendingAtClose: -1 });
    } finally {
      fan.close();
    }
  });

  describe('close() with an event pending', () => {
    test.each([
      ['deny', 'EPERM'],
      ['allow', 'ok'],
    ] as const)("unblocks the child at once with defaultResponse '%s'", async (defaultResponse, expected) => {
      const fan = new Fanotify({ permissionTimeout: 20000, defaultResponse });
      let ev: FanotifyEvent;
      let child: RunningChild;
      try {
        fan.addWatch(file, MaskFlags.OPEN_PERM);
        child = startNode(READ_FILE, [file]);
        ev = only(eventsFrom(fan, child.pid), child.pid);
        expect(stillBlocked(child.pid)).toBe(true);
      } finally {
        fan.close();
      }
      const closedAt = Date.now();
      expect(fan.closed).toBe(true);
      const r = await finished(child!);
      expect(Date.now() - closedAt).toBeLessThan(5000);
      expect(r.stdout.trim()).toBe(expected);
      // Answering after close is a no-op, never a write to a reused fd.
      expect(() => fan.allow(ev!)).not.toThrow();
      expect(() => fan.close()).not.toThrow();
    });

    test("answers defaultResponse 'deny' also to an event still in the kernel queue, which nobody read yet", async () => {
      // Closing the group would make the kernel allow it, whatever
      // defaultResponse says: close() must read what the group still holds
      // and answer that too.
      const fan = new Fanotify({ permissionTimeout: 20000, defaultResponse: 'deny' });
      let child: RunningChild;
      try {
        fan.addWatch(file, MaskFlags.OPEN_PERM);
        // A read first: this thread now reads the permission group itself, and
        // the reader thread leaves it alone for a grace period (tens of ms).
        expect(fan.readEvents({ timeout: 0 })).toEqual([]);
        child = startNode(READ_FILE, [file]);
        spinUntilWaitingForAnswer(child.pid); // no read meanwhile
      } finally {
        fan.close();
      }
      const r = await finished(child!);
      expect(r.stdout.trim()).toBe('EPERM');
    });

    test("never denies at close an unread event that a recursive watch places outside its tree", async () => {
      // A privileged recursive watch is a filesystem mark: the kernel queues
      // opens anywhere on the filesystem. One outside the tree was never the
      // handler's to decide, so closing must allow it, not give it 'deny'.
      const tree = scratch.freshDir('inside');
      const outside = scratch.file('outside-the-tree.txt');
      fs.writeFileSync(outside, CONTENT);
      const fan = new Fanotify({ permissionTimeout: 20000, defaultResponse: 'deny' });
      let child: RunningChild;
      try {
        fan.addWatch(tree, MaskFlags.OPEN_PERM, { recursive: true });
        expect(fan.readEvents({ timeout: 0 })).toEqual([]);
        child = startNode(READ_FILE, [outside]);
        spinUntilWaitingForAnswer(child.pid); // no read meanwhile
      } finally {
        fan.close();
      }
      const r = await finished(child!);
      expect(r.stdout.trim()).toBe('ok');
    });
  });

  describe('ev.fd: a descriptor JavaScript owns', () => {
    const OTHER = 'another file, opened by the handler\n';
    let other: string;
    beforeAll(() => {
      other = scratch.file('other.txt');
      fs.writeFileSync(other, OTHER);
    });

    /** How many of this process's fds name `target`. */
    function fdsOn(target: string): number {
      let n = 0;
      for (const fd of fs.readdirSync('/proc/self/fd')) {
        try {
          if (fs.readlinkSync(`/proc/self/fd/${fd}`) === target) n++;
        } catch {
          // the listing's own fd
        }
      }
      return n;
    }

    test.each(['allow', 'deny'] as const)(
      'a handler that closes ev.fd (the C habit), opens a file and answers %s: its file stays open and valid, the opener is released at once',
      async (answer) => {
        using fan = new Fanotify({ permissionTimeout: 20000, defaultResponse: answer === 'allow' ? 'deny' : 'allow' });
        fan.addWatch(file, MaskFlags.OPEN_PERM);
        const child = startNode(READ_FILE, [file]);
        const ev = only(eventsFrom(fan, child.pid), child.pid);
        const closed = ev.fd;
        fs.closeSync(closed);
        // The lowest free number: the one just closed, now naming the handler's file.
        const mine = fs.openSync(other, 'r+');
        expect(mine).toBe(closed);
        const answeredAt = Date.now();
        if (answer === 'allow') ev.allow();
        else ev.deny();
        const r = await finished(child);
        expect(Date.now() - answeredAt).toBeLessThan(5000); // not the 20 s deadline
        expect(r.stdout.trim()).toBe(answer === 'allow' ? 'ok' : 'EPERM');
        // Answering neither closed the handler's file nor wrote into it.
        try {
          expect(fs.fstatSync(mine).ino).toBe(fs.statSync(other).ino);
          expect(fs.readlinkSync(`/proc/self/fd/${mine}`)).toBe(other);
          const buf = Buffer.alloc(256);
          expect(buf.toString('utf8', 0, fs.readSync(mine, buf, 0, buf.length, 0))).toBe(OTHER);
        } finally {
          fs.closeSync(mine);
        }
        expect(fs.readFileSync(other, 'utf8')).toBe(OTHER);
      },
    );

    test.each(['answer', 'deadline', 'close'] as const)(
      'a descriptor taken before the event is answered (%s) stays open on the file until JavaScript closes it, and a threadpool read through it reads the file',
      async (by) => {
        const fan = new Fanotify({ permissionTimeout: by === 'deadline' ? 300 : 20000, defaultResponse: 'deny' });
        const realProcess = vm.runInThisContext('process') as NodeJS.Process;
        const quiet = () => {};
        realProcess.on('warning', quiet);
        let fd = -1;
        try {
          fan.addWatch(file, MaskFlags.OPEN_PERM);
          const before = fdsOn(file);
          const child = startNode(READ_FILE, [file]);
          const ev = only(eventsFrom(fan, child.pid), child.pid);
          fd = ev.fd;
          expect(fd).toBeGreaterThanOrEqual(0);
          expect(ev.fd).toBe(fd); // read again: the same descriptor, not another one
          expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toBe(file);
          // The kernel's own event fd and ours: two descriptors.
          expect(fdsOn(file)).toBe(before + 2);
          if (by === 'answer') fan.deny(ev);
          if (by === 'close') fan.close();
          expect((await finished(child)).stdout.trim()).toBe('EPERM');
          if (by === 'deadline') fan.readEvents({ timeout: 0 }); // the expiry warning
          // The library closed the kernel's fd; ours is untouched.
          expect(ev.fd).toBe(fd);
          expect(fdsOn(file)).toBe(before + 1);
          const read = await new Promise<string>((resolve, reject) =>
            fs.read(fd, Buffer.alloc(256), 0, 256, 0, (err, n, buf) => (err ? reject(err) : resolve(buf.toString('utf8', 0, n)))),
          );
          expect(read).toBe(CONTENT);
          fs.closeSync(fd);
          fd = -1;
          expect(fdsOn(file)).toBe(before);
          expect(() => ev.allow()).not.toThrow(); // a no-op
        } finally {
          if (fd >= 0) fs.closeSync(fd);
          fan.close();
          realProcess.off('warning', quiet);
        }
      },
    );

    test('a handler that never reads ev.fd costs no descriptor; toJSON() opens none; ev.fd read first after the answer is -1', async () => {
      using fan = new Fanotify({ permissionTimeout: 20000 });
      fan.addWatch(file, MaskFlags.OPEN_PERM);
      const before = fdsOn(file);
      const child = startNode(READ_FILE, [file]);
      const ev = only(eventsFrom(fan, child.pid), child.pid);
      expect(fdsOn(file)).toBe(before + 1); // the kernel's fd, in the library
      expect(ev.toJSON().fd).toBe(-1);
      expect(fdsOn(file)).toBe(before + 1);
      ev.allow();
      expect((await finished(child)).stdout.trim()).toBe('ok');
      expect(fdsOn(file)).toBe(before);
      expect(ev.fd).toBe(-1);
      expect(ev.toJSON().fd).toBe(-1);
      expect(fdsOn(file)).toBe(before);
    });
  });

  describe('allowSelf', () => {
    test('our own reads of the watched file are not blocked and produce no event', async () => {
      using fan = new Fanotify({ permissionTimeout: 3000, defaultResponse: 'deny' });
      fan.addWatch(file, MaskFlags.OPEN_PERM | MaskFlags.ACCESS_PERM);
      const start = Date.now();
      expect(fs.readFileSync(file, 'utf8')).toBe(CONTENT);
      expect(Date.now() - start).toBeLessThan(1000);
      expect(collectFor(fan, 300)).toEqual([]);

      // The mark is live: a child's open (and then its read) does reach us.
      const child = startNode(READ_FILE, [file]);
      const seen: FanotifyEvent[] = [];
      const deadline = Date.now() + 5000;
      while (!seen.some((e) => e.mask & MaskFlags.ACCESS_PERM) && Date.now() < deadline) {
        const batch = fan.readEvents({ timeout: Math.max(1, deadline - Date.now()) });
        for (const e of batch) fan.allow(e);
        seen.push(...batch);
      }
      const r = await finished(child);
      expect(r.stdout.trim()).toBe('ok');
      expect(seen.every((e) => e.pid === child.pid)).toBe(true);
      expect(seen.some((e) => e.mask & MaskFlags.OPEN_PERM)).toBe(true);
      expect(seen.some((e) => e.mask & MaskFlags.ACCESS_PERM)).toBe(true);
    });

    test('allowSelf: false hands our own events to JavaScript (here answered by the timeout)', () => {
      using fan = new Fanotify({ allowSelf: false, permissionTimeout: 300, defaultResponse: 'deny' });
      fan.addWatch(file, MaskFlags.OPEN_PERM);
      const start = Date.now();
      let code: string | undefined;
      try {
        fs.readFileSync(file);
      } catch (e) {
        code = (e as NodeJS.ErrnoException).code;
      }
      expect(code).toBe('EPERM');
      expect(Date.now() - start).toBeGreaterThanOrEqual(250);
      const events = collectUntil(fan, (evs) => evs.some((e) => e.pid === process.pid), 2000);
      expect(events.map((e) => [e.pid, e.mask & MaskFlags.OPEN_PERM])).toEqual([[process.pid, MaskFlags.OPEN_PERM]]);
      expect(() => fan.allow(events[0])).not.toThrow();
    });
  });
});
