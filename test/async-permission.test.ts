import { ensureDist } from './helpers/dist';
import { finished, running, sleep, spinUntilWaitingForAnswer, waitUntil } from './helpers/wait';
/**
 * Permission events with AsyncFanotify: the safety rules of DESIGN.md.
 *
 * The library answers permission events caused by its own process natively
 * (allowSelf), so every access that must reach JavaScript is made by a child
 * process. Every mark is on the private tmpfs; every wait is time-limited;
 * every child is reaped and every instance closed, so a broken rule shows as
 * a failed assertion or a timeout, never as a hung machine.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AsyncFanotify, MaskFlags, type AsyncFanotifyOptions, type FanotifyEvent } from '../lib';
import { READ_FILE, reapAll, startChild, startNode, type RunningChild } from './helpers/child';
import { withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';

const DIST = path.resolve(__dirname, '../dist');

const CONTENT = 'guarded contents\n';


/** Resolves when a line of the child's stdout matches. */
function lineFrom(child: RunningChild, pattern: RegExp, ms: number, what: string): Promise<string> {
  return withTimeout(
    new Promise<string>((resolve, reject) => {
      let buffered = '';
      const onData = (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        const hit = lines.find((line) => pattern.test(line));
        if (hit !== undefined) {
          child.child.stdout?.off('data', onData);
          resolve(hit);
        }
      };
      child.child.stdout?.on('data', onData);
      child.done.then((r) => reject(new Error(`child exited (${r.code ?? r.signal}) before printing ${pattern}: ${r.stdout}${r.stderr}`)), reject);
    }),
    ms,
    what,
  );
}


/** Reads from offset 0 through `fd` in the threadpool. */
function readThrough(fd: number): Promise<string> {
  return new Promise((resolve, reject) =>
    fs.read(fd, Buffer.alloc(256), 0, 256, 0, (err, n, buf) => (err ? reject(err) : resolve(buf.toString('utf8', 0, n)))),
  );
}

/** The fd links of a process, e.g. ['/dev/null', 'anon_inode:[fanotify]', ...]. */
function fdLinks(pid: number | 'self'): string[] {
  const dir = `/proc/${pid}/fd`;
  const links: string[] = [];
  for (const fd of fs.readdirSync(dir)) {
    try {
      links.push(fs.readlinkSync(path.join(dir, fd)));
    } catch {
      // closed meanwhile
    }
  }
  return links;
}

describeRoot('AsyncFanotify permission events: the safety rules', () => {
  let scratch: Scratch;
  let file: string;
  const open: AsyncFanotify[] = [];

  function instance(options?: AsyncFanotifyOptions): AsyncFanotify {
    const afan = new AsyncFanotify(options);
    open.push(afan);
    return afan;
  }

  async function guard(options?: AsyncFanotifyOptions, target = file): Promise<AsyncFanotify> {
    const afan = instance(options);
    await afan.addWatch(target, MaskFlags.OPEN_PERM);
    return afan;
  }

  beforeAll(() => {
    ensureDist();
    scratch = mountTmpfs();
    file = scratch.file('guarded.txt');
    fs.writeFileSync(file, CONTENT);
  });
  afterEach(async () => {
    // Closing answers whatever a failed test left pending; then no child can stay blocked.
    for (const afan of open.splice(0)) await afan.close();
    reapAll();
  });
  afterAll(() => {
    reapAll();
    scratch?.cleanup();
  });

  test.each([
    ['allow', 'ok'],
    ['deny', 'EPERM'],
  ] as const)("a 'permission' listener that answers %s: the child sees %s", async (answer, expected) => {
    const afan = await guard({ permissionTimeout: 20000 });
    const seen: FanotifyEvent[] = [];
    const asEvent: FanotifyEvent[] = [];
    afan.on('event', (ev) => asEvent.push(ev));
    afan.on('permission', (ev) => {
      seen.push(ev);
      if (answer === 'allow') ev.allow();
      else afan.deny(ev);
    });
    const child = startNode(READ_FILE, [file], 30000);
    const r = await finished(child);
    expect(r.stdout.trim()).toBe(expected);
    expect(seen).toHaveLength(1);
    expect(seen[0].pid).toBe(child.pid);
    expect(seen[0].path).toBe(file);
    expect(seen[0].isPermission()).toBe(true);
    expect(seen[0].fd).toBe(-1); // answered before anyone took a descriptor: none to open any more
    expect(asEvent).toEqual(seen); // also emitted as 'event'
  });

  test('pull consumers get permission events too: waitForEvent() then deny, nextEvent() then allow', async () => {
    const afan = await guard({ permissionTimeout: 20000 });
    const denied = startNode(READ_FILE, [file], 30000);
    const ev1 = await afan.waitForEvent({ timeout: 5000 });
    expect([ev1.pid, ev1.isPermission()]).toEqual([denied.pid, true]);
    ev1.deny();
    expect((await finished(denied)).stdout.trim()).toBe('EPERM');

    const allowed = startNode(READ_FILE, [file], 30000);
    const ev2 = await withTimeout(afan.nextEvent(), 5000, 'nextEvent');
    expect(ev2?.pid).toBe(allowed.pid);
    afan.allow(ev2!);
    expect((await finished(allowed)).stdout.trim()).toBe('ok');
  });

  test('with no consumer at all, permissionTimeout still answers', async () => {
    const afan = await guard({ permissionTimeout: 300, defaultResponse: 'deny' });
    const warnings: string[] = [];
    afan.on('warning', (message) => warnings.push(message));
    const t0 = Date.now();
    const child = startNode(READ_FILE, [file], 30000);
    const r = await finished(child);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(r.stdout.trim()).toBe('EPERM');
    await waitUntil(() => warnings.length > 0, 2000, "'warning'");
  });

  test.each(['deadline', 'close'] as const)('an event answered natively (%s): the descriptor JavaScript took stays valid, and answering it then is a no-op', async (by) => {
    const afan = await guard({ permissionTimeout: by === 'deadline' ? 300 : 20000, defaultResponse: 'deny' });
    afan.on('warning', () => {});
    const held: FanotifyEvent[] = [];
    afan.on('permission', (ev) => void held.push(ev));
    const child = startNode(READ_FILE, [file], 30000);
    await waitUntil(() => held.length === 1, 5000, 'a permission event');
    const fd = held[0].fd;
    expect(fd).toBeGreaterThanOrEqual(0);
    if (by === 'close') await afan.close();
    expect((await finished(child)).stdout.trim()).toBe('EPERM'); // both answer defaultResponse
    try {
      expect(held[0].fd).toBe(fd);
      expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toBe(file);
      expect(await readThrough(fd)).toBe(CONTENT); // in the threadpool, after the answer
    } finally {
      fs.closeSync(fd);
    }
    expect(() => held[0].allow()).not.toThrow();
  });

  test("a listener that closes ev.fd (the C habit), opens a file and allows: the library leaves the listener's file alone, the opener goes on at once", async () => {
    const other = scratch.file('listener-own.txt');
    fs.writeFileSync(other, 'the listener reads this\n');
    const afan = await guard({ permissionTimeout: 20000, defaultResponse: 'deny' });
    let mine = -1;
    let closed = -2;
    let answeredAt = 0;
    afan.on('permission', (ev) => {
      closed = ev.fd;
      fs.closeSync(closed);
      mine = fs.openSync(other, 'r');
      answeredAt = Date.now();
      ev.allow();
    });
    const child = startNode(READ_FILE, [file], 30000);
    const r = await finished(child);
    expect(Date.now() - answeredAt).toBeLessThan(5000); // not the 20 s deadline
    expect(r.stdout.trim()).toBe('ok');
    expect(mine).toBe(closed); // the number was reused: the case that matters
    try {
      expect(fs.fstatSync(mine).ino).toBe(fs.statSync(other).ino);
      expect(await readThrough(mine)).toBe('the listener reads this\n');
    } finally {
      fs.closeSync(mine);
    }
  });

  test('an async listener may answer later, and the child waits for that answer', async () => {
    const afan = await guard({ permissionTimeout: 20000 });
    let answeredAt = 0;
    afan.on('permission', async (ev) => {
      await sleep(300);
      answeredAt = Date.now();
      ev.deny();
    });
    const child = startNode(READ_FILE, [file], 30000);
    const r = await finished(child);
    expect(answeredAt).toBeGreaterThan(0);
    expect(r.stdout.trim()).toBe('EPERM');
  });

  describe('a failing listener answers defaultResponse at once and reports the error', () => {
    test.each([
      ['permission', 'throws', 'allow', 'ok'],
      ['permission', 'throws', 'deny', 'EPERM'],
      ['permission', 'rejects', 'allow', 'ok'],
      ['permission', 'rejects', 'deny', 'EPERM'],
      ['event', 'throws', 'deny', 'EPERM'],
      ['event', 'rejects', 'deny', 'EPERM'],
    ] as const)("an '%s' listener that %s, defaultResponse %s: child sees %s well before permissionTimeout", async (name, how, defaultResponse, expected) => {
      const afan = await guard({ permissionTimeout: 20000, defaultResponse });
      const errors: Error[] = [];
      afan.on('error', (err) => errors.push(err));
      const boom = new Error(`listener ${how}`);
      let event: FanotifyEvent | undefined;
      const listener =
        how === 'throws'
          ? (ev: FanotifyEvent) => {
              event = ev;
              throw boom;
            }
          : async (ev: FanotifyEvent) => {
              event = ev;
              await sleep(20);
              throw boom;
            };
      afan.on(name, listener);
      const t0 = Date.now();
      const child = startNode(READ_FILE, [file], 30000);
      const r = await finished(child, 5000, 'the child (a failed listener must answer at once, not after 20 s)');
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(r.stdout.trim()).toBe(expected);
      expect(event?.pid).toBe(child.pid);
      await waitUntil(() => errors.length > 0, 2000, "'error'");
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBe(boom);
      // The event is answered: answering again is a harmless no-op.
      expect(() => event!.allow()).not.toThrow();
    });
  });

  describe('a listener that never answers: permissionTimeout answers defaultResponse, with a warning', () => {
    test.each([
      ['allow', 'ok'],
      ['deny', 'EPERM'],
    ] as const)('defaultResponse %s: the child sees %s after about permissionTimeout', async (defaultResponse, expected) => {
      const afan = await guard({ permissionTimeout: 300, defaultResponse });
      const warnings: string[] = [];
      afan.on('warning', (message) => warnings.push(message));
      let seen: { ev: FanotifyEvent; at: number } | undefined;
      afan.on('permission', (ev) => {
        seen = { ev, at: Date.now() }; // and never answers
      });
      const child = startNode(READ_FILE, [file], 30000);
      const r = await finished(child, 5000);
      const doneAt = Date.now();
      expect(r.stdout.trim()).toBe(expected);
      expect(seen?.ev.pid).toBe(child.pid);
      // It waited for the deadline (300 ms from the read), not longer.
      expect(doneAt - seen!.at).toBeGreaterThanOrEqual(200);
      expect(doneAt - seen!.at).toBeLessThan(3000);
      await waitUntil(() => warnings.length > 0, 2000, "'warning'");
      expect(warnings).toHaveLength(1);
      expect(typeof warnings[0]).toBe('string');
      expect(warnings[0]).toContain(String(child.pid));
      // Answering after the deadline is a no-op.
      expect(() => seen!.ev.deny()).not.toThrow();
    });
  });

  test('allowSelf: a listener that reads several watched files at once (threadpool) does not deadlock', async () => {
    const dir = scratch.file('self');
    fs.mkdirSync(dir);
    const files = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => path.join(dir, n));
    files.forEach((f, i) => fs.writeFileSync(f, `content ${i}`));
    const afan = await guard({ permissionTimeout: 20000 }, dir);
    const pids: number[] = [];
    const reads: string[][] = [];
    afan.on('permission', async (ev) => {
      pids.push(ev.pid);
      // More parallel reads than threadpool threads: each open is a
      // permission event of this process, answered natively.
      reads.push(await Promise.all(files.map((f) => fs.promises.readFile(f, 'utf8'))));
      ev.allow();
    });
    const t0 = Date.now();
    const child = startNode(READ_FILE, [files[0]], 30000);
    const r = await finished(child, 5000, 'the child (a self-deadlock would hold it 20 s)');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(r.stdout.trim()).toBe('ok');
    expect(reads).toEqual([files.map((_, i) => `content ${i}`)]);
    // Only the child's access reached JavaScript; ours were answered natively.
    expect(pids).toEqual([child.pid]);
  });

  test('allowSelf: false lets own-process events reach the listener (what allowSelf keeps away)', async () => {
    const own = scratch.file('own.txt');
    fs.writeFileSync(own, 'mine');
    const afan = await guard({ allowSelf: false, permissionTimeout: 5000 }, own);
    const pids: number[] = [];
    afan.on('permission', (ev) => {
      pids.push(ev.pid);
      ev.allow();
    });
    // The open blocks a threadpool thread until the listener answers.
    await expect(withTimeout(fs.promises.readFile(own, 'utf8'), 4000, 'our own read')).resolves.toBe('mine');
    expect(pids).toContain(process.pid);
  });

  test("close() answers defaultResponse 'deny' also to an event the kernel still holds, read by nobody yet", async () => {
    // The event loop is busy when close() is called, so the permission
    // group's poll never fired; closing the group would make the kernel
    // allow the event, whatever defaultResponse says.
    const afan = await guard({ permissionTimeout: 20000, defaultResponse: 'deny' });
    const seen: FanotifyEvent[] = [];
    afan.on('permission', (ev) => void seen.push(ev));
    const child = startNode(READ_FILE, [file], 30000);
    spinUntilWaitingForAnswer(child.pid);
    const closing = afan.close();
    expect((await finished(child)).stdout.trim()).toBe('EPERM');
    await closing;
    expect(seen).toEqual([]);
  });

  test('close() answers pending events at once and resolves only after every group and mount fd is closed', async () => {
    // The fds are closed on another thread (the kernel's teardown of a group
    // with marks can take tens of ms); the promise must not resolve earlier.
    const before = fdLinks('self');
    const afan = await guard({ permissionTimeout: 20000, defaultResponse: 'deny' });
    await afan.addWatch(scratch.dir, MaskFlags.CREATE, { recursive: true }); // a filesystem mark and a mount clone
    const held: FanotifyEvent[] = [];
    afan.on('permission', (ev) => void held.push(ev)); // never answers
    const child = startNode(READ_FILE, [file], 30000);
    await waitUntil(() => held.length === 1, 5000, 'a permission event');
    expect(fdLinks('self').length).toBeGreaterThan(before.length);
    let closeEvents = 0;
    afan.on('close', () => closeEvents++);
    const closing = afan.close();
    expect(held[0].fd).toBe(-1); // answered before close() returned
    expect(afan.close()).toBe(closing); // a second call waits for the same teardown
    await closing;
    expect(fdLinks('self').filter((l) => l === 'anon_inode:[fanotify]')).toEqual([]);
    // The child's stdio (sockets, pipes) closes when node sees it exit, which
    // may be later: not the library's fds.
    const notStdio = (links: string[]) => links.filter((l) => !/^(socket|pipe):/.test(l));
    expect(notStdio(fdLinks('self'))).toEqual(notStdio(before));
    expect(closeEvents).toBe(1);
    expect((await finished(child)).stdout.trim()).toBe('EPERM');
  });

  test('close() while four children are blocked unblocks all four at once', async () => {
    const afan = await guard({ permissionTimeout: 20000 });
    const pending = new Map<number, FanotifyEvent>();
    afan.on('permission', (ev) => void pending.set(ev.pid, ev)); // never answers
    let closed = 0;
    afan.on('close', () => closed++);
    const children = [0, 1, 2, 3].map(() => startNode(READ_FILE, [file], 30000));
    await waitUntil(() => children.every((c) => pending.has(c.pid)), 8000, 'four permission events');
    await sleep(100);
    expect(children.map(running)).toEqual([true, true, true, true]);
    const t0 = Date.now();
    await afan.close();
    const results = await withTimeout(Promise.all(children.map((c) => c.done)), 5000, 'the four children after close()');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(results.map((r) => r.stdout.trim())).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(closed).toBe(1);
    // Answering after close is a no-op.
    for (const ev of pending.values()) {
      expect(() => ev.deny()).not.toThrow();
      expect(() => afan.allow(ev)).not.toThrow();
      expect(() => afan.respond(ev, { allow: false })).not.toThrow();
    }
  });

  test('answering twice is a no-op, and a stale answer never reaches a later event', async () => {
    const afan = await guard({ permissionTimeout: 20000 });
    const events: FanotifyEvent[] = [];
    afan.on('permission', (ev) => void events.push(ev));

    const first = startNode(READ_FILE, [file], 30000);
    await waitUntil(() => events.length === 1, 5000, 'the first event');
    const ev1 = events[0];
    afan.allow(ev1);
    expect(() => afan.deny(ev1)).not.toThrow();
    expect(() => ev1.deny()).not.toThrow();
    expect(() => afan.respond(ev1, { allow: false })).not.toThrow();
    expect((await finished(first)).stdout.trim()).toBe('ok');

    // The second event may get the first one's fd number: stale answers to
    // the first must not answer it.
    const second = startNode(READ_FILE, [file], 30000);
    await waitUntil(() => events.length === 2, 5000, 'the second event');
    const ev2 = events[1];
    expect(ev2.pid).toBe(second.pid);
    afan.deny(ev1);
    ev1.deny();
    await sleep(200);
    expect(running(second)).toBe(true);
    ev2.allow();
    expect((await finished(second)).stdout.trim()).toBe('ok');
  });

  test('a listener process killed with SIGKILL while holding permission events: the opener finishes promptly', async () => {
    const listenerCode = `
      const { AsyncFanotify, MaskFlags } = require(process.argv[1]);
      (async () => {
        const afan = new AsyncFanotify({ permissionTimeout: 60000 });
        await afan.addWatch(process.argv[2], MaskFlags.OPEN_PERM);
        afan.on('permission', (ev) => console.log('event ' + ev.pid)); // never answers
        console.log('ready');
      })().catch((e) => { console.error(e); process.exit(1); });
    `;
    const listener = startNode(listenerCode, [DIST, file], 60000);
    await lineFrom(listener, /^ready$/, 10000, "the listener's 'ready'");
    const opener = startNode(READ_FILE, [file], 60000);
    await lineFrom(listener, new RegExp(`^event ${opener.pid}$`), 10000, 'the listener to hold the event');
    await sleep(200);
    expect(running(opener)).toBe(true);
    listener.child.kill('SIGKILL');
    const killed = await finished(listener);
    expect(killed.signal).toBe('SIGKILL');
    const t0 = Date.now();
    const r = await finished(opener, 5000, 'the opener after its listener died');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(r.stdout.trim()).toBe('ok');
  });

  test('no fanotify fd (and no pending event fd) is inherited by a spawned child', async () => {
    const dir = scratch.file('inherit');
    fs.mkdirSync(dir);
    const afan = instance({ permissionTimeout: 20000 });
    await afan.addWatch(dir, MaskFlags.CREATE); // a FID group
    await afan.addWatch(dir, MaskFlags.CLOSE_WRITE); // an fd group
    await afan.addWatch(file, MaskFlags.OPEN_PERM); // a permission group
    const pending: FanotifyEvent[] = [];
    afan.on('permission', (ev) => void pending.push(ev));
    // Hold a permission event, so its fd is open in this process too.
    const blocked = startNode(READ_FILE, [file], 30000);
    await waitUntil(() => pending.length === 1, 5000, 'a pending permission event');
    // JavaScript's own descriptor of the file (close-on-exec too), besides the kernel's.
    expect(pending[0].fd).toBeGreaterThanOrEqual(0);
    const own = fdLinks('self');
    // The check below can see a group fd: this process has some.
    expect(own.filter((l) => l === 'anon_inode:[fanotify]').length).toBeGreaterThanOrEqual(1);
    expect(own).toContain(file);

    // A child that lists its own fds after exec.
    const lister = startNode("console.log(JSON.stringify(require('fs').readdirSync('/proc/self/fd').map((fd) => { try { return require('fs').readlinkSync('/proc/self/fd/' + fd); } catch { return null; } })))", [], 10000);
    const listed = JSON.parse((await finished(lister)).stdout) as Array<string | null>;
    expect(listed.length).toBeGreaterThanOrEqual(3);
    expect(listed).not.toContain('anon_inode:[fanotify]');
    expect(listed).not.toContain(file);

    // And one inspected from outside, through /proc/<pid>/fd.
    const sleeper = startChild('sleep', ['10'], 15000);
    await waitUntil(() => {
      try {
        return fs.readlinkSync(`/proc/${sleeper.pid}/exe`).endsWith('/sleep');
      } catch {
        return false;
      }
    }, 5000, 'sleep to exec');
    const theirs = fdLinks(sleeper.pid);
    expect(theirs.length).toBeGreaterThanOrEqual(3);
    expect(theirs).not.toContain('anon_inode:[fanotify]');
    expect(theirs).not.toContain(file);
    sleeper.child.kill('SIGKILL');
    await finished(sleeper);

    pending[0].allow();
    fs.closeSync(pending[0].fd);
    expect((await finished(blocked)).stdout.trim()).toBe('ok');
  });

  test('several instances in one process all receive their events', async () => {
    const dir = scratch.file('several');
    fs.mkdirSync(dir);
    const a = instance();
    const b = instance();
    const p1 = instance({ permissionTimeout: 20000 });
    const p2 = instance({ permissionTimeout: 20000 });
    await a.addWatch(dir, MaskFlags.CREATE);
    await b.addWatch(dir, MaskFlags.CREATE | MaskFlags.CLOSE_WRITE);
    await p1.addWatch(file, MaskFlags.OPEN_PERM);
    await p2.addWatch(file, MaskFlags.OPEN_PERM);
    const got = { a: [] as FanotifyEvent[], b: [] as FanotifyEvent[], p1: [] as FanotifyEvent[], p2: [] as FanotifyEvent[] };
    a.on('event', (ev) => void got.a.push(ev));
    b.on('event', (ev) => void got.b.push(ev));
    p1.on('permission', (ev) => {
      got.p1.push(ev);
      ev.allow();
    });
    p2.on('permission', (ev) => {
      got.p2.push(ev);
      ev.allow();
    });
    const made = path.join(dir, 'made.txt');
    const child = startNode(
      `const fs = require('fs'); fs.writeFileSync(process.argv[2], 'x'); try { fs.readFileSync(process.argv[1]); console.log('ok'); } catch (e) { console.log(e.code); }`,
      [file, made],
      30000,
    );
    const r = await finished(child);
    expect(r.stdout.trim()).toBe('ok');
    await waitUntil(() => got.a.length >= 1 && got.b.length >= 2, 3000, 'the notification events');
    expect(got.a.map((e) => [e.types().join('|'), e.path, e.pid])).toEqual([['CREATE', made, child.pid]]);
    expect(got.b.map((e) => [e.types().join('|'), e.path, e.pid]).sort()).toEqual(
      [
        ['CLOSE_WRITE', made, child.pid],
        ['CREATE', made, child.pid],
      ].sort(),
    );
    expect(got.p1.map((e) => [e.pid, e.path])).toEqual([[child.pid, file]]);
    expect(got.p2.map((e) => [e.pid, e.path])).toEqual([[child.pid, file]]);
  });
});
