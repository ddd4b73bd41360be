/**
 * processInfo: true fills ev.process = { pid, comm, exe } on the reader
 * thread while the process still runs; without the option ev.process is
 * null. An event read only after its process exited and was reaped must not
 * name whatever process has that pid now (the library checks against the
 * event's pidfd, FAN_REPORT_PIDFD, as root).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AsyncFanotify, Fanotify, FanotifyEvent, MaskFlags } from '../lib';
import { reapAll, startChild, startNode, type RunningChild } from './helpers/child';
import { collectFor, collectUntil, withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { finished, sleep } from './helpers/wait';

const WAIT_MS = 3000;
const SH = '/bin/sh';
const MASK = MaskFlags.CREATE | MaskFlags.MODIFY | MaskFlags.CLOSE_WRITE;

/** sh writes the file itself (echo is a builtin), then stays alive a little, then exits (no exec of sleep: exit follows). */
function shWrites(file: string, linger = '0.3'): RunningChild {
  return startChild(SH, ['-c', `echo x > "$1"; sleep ${linger}; exit 0`, 'sh', file], 10000);
}

function brief(e: FanotifyEvent) {
  return { types: e.types(), path: e.path, pid: e.pid, process: e.process };
}

function eventsFor(fan: Fanotify, file: string): FanotifyEvent[] {
  const events = collectUntil(fan, (evs) => evs.some((e) => e.isClose() && e.path === file), WAIT_MS);
  if (!events.some((e) => e.isClose() && e.path === file)) throw new Error(`no CLOSE_WRITE of ${file}; saw ${JSON.stringify(events.map(brief))}`);
  return events;
}

async function asyncEventsFor(afan: AsyncFanotify, file: string): Promise<FanotifyEvent[]> {
  const events: FanotifyEvent[] = [];
  const deadline = Date.now() + WAIT_MS;
  while (!events.some((e) => e.isClose() && e.path === file)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no CLOSE_WRITE of ${file}; saw ${JSON.stringify(events.map(brief))}`);
    events.push(await afan.waitForEvent({ timeout: left }));
  }
  return events;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describeRoot('process info', () => {
  let scratch: Scratch;
  const shExe = fs.realpathSync(SH);
  const nodeExe = fs.realpathSync(process.execPath);


  beforeAll(() => (scratch = mountTmpfs()));
  afterEach(() => reapAll());
  afterAll(() => scratch?.cleanup());

  test("sync, processInfo: a shell child's events carry { pid, comm: 'sh', exe: realpath of /bin/sh }", async () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'by-sh');
    using fan = new Fanotify({ processInfo: true });
    fan.addWatch(dir, MASK);
    const child = shWrites(file);
    const events = eventsFor(fan, file);
    await finished(child);
    expect(events.length).toBeGreaterThanOrEqual(1);
    for (const e of events) {
      expect(brief(e)).toEqual({ types: expect.any(Array), path: file, pid: child.pid, process: { pid: child.pid, comm: 'sh', exe: shExe } });
    }
    expect(new Set(events.flatMap((e) => e.types()))).toEqual(new Set(['CREATE', 'MODIFY', 'CLOSE_WRITE']));
    expect(events[0].toJSON()).toMatchObject({ process: { pid: child.pid, comm: 'sh', exe: shExe } });
  });

  test("async, processInfo: a node child's events carry its comm (Node's main-thread name) and exe = realpath(process.execPath)", async () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'by-node');
    const afan = new AsyncFanotify({ processInfo: true });
    try {
      await afan.addWatch(dir, MASK);
      const child = startNode("require('fs').writeFileSync(process.argv[1], 'x'); setTimeout(() => {}, 300);", [file]);
      const events = await asyncEventsFor(afan, file);
      await finished(child);
      // The child is this same Node binary, so it has our process name: "node", or
      // the name Node gives its main thread ("MainThread" on 24, "node-MainThread" on 26).
      const comm = fs.readFileSync('/proc/self/comm', 'utf8').trim();
      expect(['node', 'MainThread', 'node-MainThread']).toContain(comm);
      for (const e of events) {
        expect(brief(e)).toEqual({ types: expect.any(Array), path: file, pid: child.pid, process: { pid: child.pid, comm, exe: nodeExe } });
      }
    } finally {
      await afan.close();
    }
  });

  test('async, processInfo: a shell child too (both front ends read it on the reader thread)', async () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'by-sh-async');
    const afan = new AsyncFanotify({ processInfo: true });
    try {
      await afan.addWatch(dir, MASK);
      const child = shWrites(file);
      const events = await asyncEventsFor(afan, file);
      await finished(child);
      for (const e of events) expect(e.process).toEqual({ pid: child.pid, comm: 'sh', exe: shExe });
    } finally {
      await afan.close();
    }
  });

  test('processInfo: our own events name this process', () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'by-us');
    using fan = new Fanotify({ processInfo: true });
    fan.addWatch(dir, MASK);
    const comm = fs.readFileSync('/proc/self/comm', 'utf8').trim();
    fs.writeFileSync(file, 'x');
    const events = eventsFor(fan, file);
    for (const e of events) expect(e.process).toEqual({ pid: process.pid, comm, exe: nodeExe });
  });

  test('processInfo on a permission event: the process that is waiting for the answer', async () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'guarded');
    fs.writeFileSync(file, 'guarded\n');
    const catExe = fs.realpathSync('/usr/bin/cat');
    const afan = new AsyncFanotify({ processInfo: true, permissionTimeout: 5000 });
    const seen: Array<{ pid: number; path: string | null; process: unknown }> = [];
    try {
      afan.on('permission', (ev) => {
        seen.push({ pid: ev.pid, path: ev.path, process: ev.process });
        afan.allow(ev);
      });
      await afan.addWatch(file, MaskFlags.OPEN_PERM);
      const child = startChild('/usr/bin/cat', [file], 10000);
      const out = await finished(child);
      expect(out.stdout).toBe('guarded\n');
      expect(seen).toEqual([{ pid: child.pid, path: file, process: { pid: child.pid, comm: 'cat', exe: catExe } }]);
    } finally {
      await afan.close();
    }
  });

  test.each(['sync', 'async'])('%s, without processInfo: ev.process is null', async (frontEnd) => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'plain');
    let events: FanotifyEvent[];
    let child: RunningChild;
    if (frontEnd === 'sync') {
      using fan = new Fanotify();
      fan.addWatch(dir, MASK);
      child = shWrites(file, '0');
      events = eventsFor(fan, file);
    } else {
      const afan = new AsyncFanotify();
      try {
        await afan.addWatch(dir, MASK);
        child = shWrites(file, '0');
        events = await asyncEventsFor(afan, file);
      } finally {
        await afan.close();
      }
    }
    await finished(child);
    expect(events.length).toBeGreaterThanOrEqual(1);
    for (const e of events) {
      expect(e.pid).toBe(child.pid);
      expect(e.process).toBeNull();
      expect(e.toJSON()).toMatchObject({ process: null });
    }
  });

  test('an event read after its process was reaped, and its pid reused, never names the new process', async () => {
    // queueLimit 1 and a plug event: the reader stops reading the kernel
    // queue, so the child's events stay there until after it exited, was
    // reaped, and (through ns_last_pid) its pid went to another process.
    const dir = scratch.freshDir();
    const file = path.join(dir, 'by-the-departed');
    using fan = new Fanotify({ processInfo: true, queueLimit: 1 });
    fan.addWatch(dir, MaskFlags.CREATE);
    const plug = path.join(dir, 'plug');
    fs.writeFileSync(plug, '');
    sleepSync(200);

    const child = startChild(SH, ['-c', 'echo x > "$1"', 'sh', file], 10000);
    await finished(child); // exited and reaped: 'close' comes after waitpid
    let impostor: RunningChild | undefined;
    for (let attempt = 0; attempt < 10 && impostor?.pid !== child.pid; attempt++) {
      if (impostor) impostor.child.kill('SIGKILL');
      fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(child.pid - 1));
      impostor = startChild('/usr/bin/sleep', ['5'], 10000);
    }
    try {
      expect(impostor!.pid).toBe(child.pid); // the pid now names a different program
      await sleep(50); // let it exec
      expect(fs.readlinkSync(`/proc/${child.pid}/exe`)).toBe(fs.realpathSync('/usr/bin/sleep'));

      const events = collectUntil(fan, (evs) => evs.some((e) => e.path === file), WAIT_MS);
      expect(events.map((e) => e.path)).toEqual([plug, file]);
      const ev = events[1];
      expect(ev.pid).toBe(child.pid);
      expect(ev.process).not.toBeNull();
      // Nothing, or the departed shell; never the impostor.
      const { pid, comm, exe } = ev.process!;
      expect(pid).toBe(child.pid);
      expect([null, 'sh']).toContain(comm);
      expect([null, shExe]).toContain(exe);
      expect(events[0].process).toMatchObject({ pid: process.pid, exe: nodeExe });
    } finally {
      impostor?.child.kill('SIGKILL');
      if (impostor) await withTimeout(impostor.done, 5000, 'the impostor');
    }
    expect(collectFor(fan, 50)).toEqual([]);
  });
});
