/**
 * The native reader's lifecycle, each case in a fresh child process: the
 * jest process keeps the addon loaded, which hides what happens when a
 * worker that alone loaded it ends.
 *  - A worker that alone loaded the addon ends (terminate(), process.exit()
 *    inside it, or by itself after unref()) and the process lives on.
 *  - A thread or an eventfd that cannot be made is a FanotifyError
 *    (LimitReached), never an abort or a hang.
 *  - A worker blocked in a synchronous readEvent() can be terminated.
 *  - An idle instance with a permission watch does not wake periodically.
 * The children print JSON or plain lines; the assertions are here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { reapAll, runChild, startNode, type ChildResult } from './helpers/child';
import { ensureDist, readableDist } from './helpers/dist';
import { withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';

const DIST = path.resolve(__dirname, '../dist');

/** The last line of stdout, parsed; fails with the child's output if there is none. */
function jsonOut(r: ChildResult): Record<string, Any> {
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`the child printed no JSON (exit ${r.code}, signal ${r.signal}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

/** `node -e code args...` to its end: a crash shows as signal, a hang as SIGKILL at timeoutMs. */
function runNode(code: string, args: string[], timeoutMs: number): Promise<ChildResult> {
  return withTimeout(startNode(code, args, timeoutMs).done, timeoutMs + 5000, 'the child');
}

/**
 * The main thread never loads the package: only the worker does. argv:
 * dist, watched path, how the worker ends, kind of watch.
 */
const WORKER_ENDS = `
const { Worker } = require('node:worker_threads');
const [dist, target, mode, kind] = process.argv.slice(1);
const code = \`
const { parentPort, workerData } = require('node:worker_threads');
const { AsyncFanotify, MaskFlags } = require(workerData.dist);
(async () => {
  const afan = new AsyncFanotify({ permissionTimeout: 60000 });
  afan.on('event', () => {});
  afan.on('permission', (ev) => ev.allow());
  await afan.addWatch(workerData.target, workerData.kind === 'permission' ? MaskFlags.OPEN_PERM : MaskFlags.CREATE);
  if (workerData.mode === 'exit') setTimeout(() => process.exit(0), 20);
  else if (workerData.mode === 'unref') afan.unref();
  else if (workerData.mode === 'close-exit') { void afan.close(); process.exit(0); }
  parentPort.postMessage('ready');
})().catch((e) => { parentPort.postMessage(String(e && e.stack || e)); });
\`;
const w = new Worker(code, { eval: true, workerData: { dist, target, mode, kind } });
w.on('message', (m) => {
  if (m !== 'ready') console.log('worker failed: ' + m);
  else if (mode === 'terminate') setTimeout(() => void w.terminate(), 20);
});
w.on('error', (e) => console.log('worker error: ' + e));
w.on('exit', (code) => console.log('worker exit ' + code));
`;

/**
 * A worker blocks in a synchronous readEvent() with no timeout; the main
 * thread (which never loads the package) ends it. argv: dist, watched path,
 * kind of watch, how: 'terminate', 'busy' (terminate while the worker's
 * event loop has other work pending: messages it cannot receive while
 * blocked, so the read asks on a timer), or 'exit' (process.exit() in the
 * main thread, which stops the worker first).
 */
const WORKER_BLOCKED = `
const { Worker } = require('node:worker_threads');
const [dist, target, kind, how] = process.argv.slice(1);
const code = \`
const { parentPort, workerData } = require('node:worker_threads');
const { Fanotify, MaskFlags } = require(workerData.dist);
const fan = new Fanotify({ permissionTimeout: 60000 });
fan.addWatch(workerData.target, workerData.kind === 'permission' ? MaskFlags.OPEN_PERM : MaskFlags.CREATE);
parentPort.on('message', () => {});
parentPort.postMessage('blocking');
const events = fan.readEvent();
parentPort.postMessage('returned ' + JSON.stringify(events));
\`;
const w = new Worker(code, { eval: true, workerData: { dist, target, kind } });
w.on('error', (e) => console.log('worker error: ' + e));
w.on('message', (m) => {
  if (m !== 'blocking') return console.log('worker said: ' + m);
  // 'busy': the messages wake the blocked read, which finds the worker
  // still running; the terminate() comes later, while they stay unread.
  if (how === 'busy') setTimeout(() => { for (let i = 0; i < 5; i++) w.postMessage(i); }, 50);
  setTimeout(() => {
    const start = Date.now();
    if (how === 'exit') {
      process.on('exit', () => console.log('exited'));
      process.exit(0);
    }
    w.terminate().then(() => console.log('terminated in ' + (Date.now() - start) + ' ms'));
  }, 200);
});
`;

/**
 * Voluntary context switches of every thread of this process over
 * argv[4] ms of idleness, with an instance of kind argv[3] watching argv[2].
 */
const IDLE = `
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const [dist, target, kind, ms] = process.argv.slice(1);
const { AsyncFanotify, Fanotify, MaskFlags } = require(dist);
function switches() {
  let sum = 0;
  for (const t of fs.readdirSync('/proc/self/task')) {
    try { sum += Number(/voluntary_ctxt_switches:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/task/' + t + '/status', 'utf8'))[1]); }
    catch {}  // a thread that ended meanwhile
  }
  return sum;
}
const sleep = (n) => new Promise((r) => setTimeout(r, n));
const opened = () => new Promise((r) => spawn('cat', [target], { stdio: 'ignore' }).on('exit', r));
(async () => {
  let instance;
  let during;
  if (kind === 'sync-reading') {
    const fan = (instance = new Fanotify());
    fan.addWatch(target, MaskFlags.OPEN_PERM);
    fan.readEvents({ timeout: 0 });
    const before = switches();
    fan.readEvents({ timeout: Number(ms) });
    during = switches() - before;
  } else {
    if (kind === 'sync') {
      instance = new Fanotify();
      instance.addWatch(target, MaskFlags.OPEN_PERM);
      instance.readEvents({ timeout: 0 });  // direct mode from now on
    } else {
      instance = new AsyncFanotify();
      instance.on('permission', (ev) => ev.allow());
      instance.on('event', () => {});
      await instance.addWatch(target, kind === 'notification' ? MaskFlags.CREATE : MaskFlags.OPEN_PERM);
      if (kind === 'after-activity') for (let i = 0; i < 20; i++) await opened();
    }
    await sleep(300);
    const before = switches();
    await sleep(Number(ms));
    during = switches() - before;
  }
  await instance.close();
  console.log(JSON.stringify({ kind, switches: during }));
})();
`;

/**
 * Runs as a uid of its own (RLIMIT_NPROC counts every thread of the user)
 * and lowers its thread limit below what it uses, so that no thread can be
 * started. argv: dist, watched directory.
 */
const NO_THREADS = `
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const [dist, dir] = process.argv.slice(1);
const { AsyncFanotify, Fanotify, MaskFlags, FanotifyError } = require(dist);
const threads = () => Number(/Threads:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
const outcome = (e) => e instanceof FanotifyError ? { kind: e.kind, code: e.code, syscall: e.syscall } : { other: String(e) };
async function attempt(fn) { try { await fn(); return 'ok'; } catch (e) { return outcome(e); } }
const sleep = (n) => new Promise((r) => setTimeout(r, n));
(async () => {
  await fs.promises.stat(dir);  // libuv's threadpool starts before the limit
  const ballast = new Worker('setInterval(() => {}, 1000)', { eval: true });  // a thread to give back later
  await new Promise((r) => ballast.once('online', r));
  const early = new AsyncFanotify();
  await early.addWatch(dir, MaskFlags.CREATE);
  const n = threads();
  // One below the threads in use: even after close() joins early's reader
  // thread, its closing thread cannot start.
  execFileSync('prlimit', ['--pid', String(process.pid), '--nproc=' + (n - 1) + ':' + (n - 1)]);
  const out = {};
  const afan = new AsyncFanotify();
  out.asyncWatch = await attempt(() => afan.addWatch(dir, MaskFlags.CREATE));
  const fan = new Fanotify();
  out.syncWatch = await attempt(() => fan.addWatch(dir, MaskFlags.CREATE));
  out.close = await attempt(() => early.close());
  await ballast.terminate();
  // Room for one thread again (the ended thread may take a moment to be released).
  for (let i = 0; i < 50; i++) {
    out.retry = await attempt(() => afan.addWatch(dir, MaskFlags.CREATE));
    if (out.retry === 'ok') break;
    await sleep(20);
  }
  fan.close();
  await afan.close();
  console.log(JSON.stringify(out));
})().catch((e) => console.log(JSON.stringify({ failed: String(e && e.stack || e) })));
`;

/** argv: dist, watched directory, case. Fills the fd table around each step. */
const NO_FDS = `
const fs = require('node:fs');
const [dist, dir, which] = process.argv.slice(1);
const { Fanotify, MaskFlags, FanotifyError } = require(dist);
const outcome = (e) => e instanceof FanotifyError ? { kind: e.kind, code: e.code, syscall: e.syscall } : { other: String(e) };
const attempt = (fn) => { try { fn(); return 'ok'; } catch (e) { return outcome(e); } };
function fill() {
  const fds = [];
  try { for (;;) fds.push(fs.openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }
  return fds;
}
const release = (fds) => { for (const fd of fds) fs.closeSync(fd); };
const out = {};
if (which === 'made-while-full') {
  // The reader is made while no fd is free; close() used to wait forever
  // for a thread it could not wake.
  const fds = fill();
  const fan = new Fanotify();
  release(fds);
  out.watch = attempt(() => fan.addWatch(dir, MaskFlags.CREATE));
  fan.close();
  out.closed = true;
} else if (which === 'one-free') {
  // The first group takes the last fd: no eventfd for its thread.
  const fan = new Fanotify();
  const fds = fill();
  fs.closeSync(fds.pop());
  out.watch = attempt(() => fan.addWatch(dir, MaskFlags.CREATE));
  release(fds);
  out.retry = attempt(() => fan.addWatch(dir, MaskFlags.CREATE));
  fs.writeFileSync(dir + '/after', '');
  out.read = attempt(() => { out.events = fan.readEvents({ timeout: 2000 }).map((e) => e.name); });
  fan.close();
} else if (which === 'read') {
  // The first read's eventfd cannot be made.
  const fan = new Fanotify();
  fan.addWatch(dir, MaskFlags.CREATE);
  const fds = fill();
  out.read = attempt(() => fan.readEvents({ timeout: 200 }));
  release(fds);
  fs.writeFileSync(dir + '/after', '');
  out.readAfter = attempt(() => { out.events = fan.readEvents({ timeout: 2000 }).map((e) => e.name); });
  fan.close();
}
console.log(JSON.stringify(out));
`;

/** A uid no other process uses: RLIMIT_NPROC counts every thread of the user. */
const LONE_UID = 47529;
const RUNS = 3;

describeRoot('the native reader lifecycle (fresh child processes)', () => {
  let scratch: Scratch;
  let guarded: string;

  beforeAll(() => {
    ensureDist();
    scratch = mountTmpfs();
    guarded = scratch.file('guarded.txt');
    fs.writeFileSync(guarded, 'contents');
  });
  afterAll(() => {
    reapAll();
    scratch.cleanup();
  });

  describe('a worker that alone loaded the addon ends without taking the process down', () => {
    const cases: Array<[string, 'notification' | 'permission', string]> = [
      ['terminate', 'notification', 'worker exit 1'],
      ['exit', 'notification', 'worker exit 0'],
      ['unref', 'notification', 'worker exit 0'],
      ['terminate', 'permission', 'worker exit 1'],
      ['exit', 'permission', 'worker exit 0'],
      ['unref', 'permission', 'worker exit 0'],
      ['close-exit', 'permission', 'worker exit 0'],
    ];
    test.each(cases)('%s, %s watch', async (mode, kind, expected) => {
      const target = kind === 'permission' ? guarded : scratch.freshDir();
      for (let run = 1; run <= RUNS; run++) {
        const r = await runNode(WORKER_ENDS, [DIST, target, mode, kind], 15000);
        expect({ run, signal: r.signal, code: r.code, stdout: r.stdout.trim(), stderr: r.stderr }).toEqual({
          run,
          signal: null,
          code: 0,
          stdout: expected,
          stderr: '',
        });
      }
    }, 90000);
  });

  describe('a worker blocked in a synchronous readEvent() can be ended', () => {
    const cases: Array<['notification' | 'permission', string]> = [
      ['notification', 'terminate'],
      ['permission', 'terminate'],
      ['notification', 'busy'],
      ['permission', 'exit'],
    ];
    test.each(cases)('%s watch, %s', async (kind, how) => {
      const target = kind === 'permission' ? guarded : scratch.freshDir();
      const r = await runNode(WORKER_BLOCKED, [DIST, target, kind, how], 10000);
      expect({ signal: r.signal, code: r.code, stderr: r.stderr }).toEqual({ signal: null, code: 0, stderr: '' });
      if (how === 'exit') {
        expect(r.stdout.trim()).toBe('exited');
      } else {
        const m = /^terminated in (\d+) ms$/.exec(r.stdout.trim());
        expect(m).not.toBeNull();
        // At once when the loop was idle; within the 100 ms check when busy. Generous for load.
        expect(Number(m![1])).toBeLessThan(2000);
      }
    }, 30000);
  });

  describe('no thread, no fd: a FanotifyError, never an abort or a hang', () => {
    test('no thread can be started (RLIMIT_NPROC): LimitReached, close() still closes, the instance recovers', async () => {
      const dir = scratch.freshDir();
      fs.chmodSync(dir, 0o777);
      const r = await withTimeout(
        runChild('setpriv', [`--reuid=${LONE_UID}`, `--regid=${LONE_UID}`, '--clear-groups', process.execPath, '-e', NO_THREADS, readableDist(), dir], 20000, { cwd: '/' }),
        25000,
        'the child without threads',
      );
      expect({ signal: r.signal, stderr: r.stderr }).toEqual({ signal: null, stderr: '' });
      const limit = { kind: 'LimitReached', code: 'EAGAIN', syscall: 'pthread_create' };
      expect(jsonOut(r)).toEqual({ asyncWatch: limit, syncWatch: limit, close: 'ok', retry: 'ok' });
    }, 40000);

    test('a reader made while no fd was free can watch and close', async () => {
      const r = await runNode(NO_FDS, [DIST, scratch.freshDir(), 'made-while-full'], 10000);
      expect({ signal: r.signal, stderr: r.stderr }).toEqual({ signal: null, stderr: '' });
      expect(jsonOut(r)).toEqual({ watch: 'ok', closed: true });
    }, 20000);

    test('no fd for the reader thread\'s eventfd: LimitReached, and the next watch works', async () => {
      const r = await runNode(NO_FDS, [DIST, scratch.freshDir(), 'one-free'], 10000);
      expect({ signal: r.signal, stderr: r.stderr }).toEqual({ signal: null, stderr: '' });
      expect(jsonOut(r)).toEqual({
        watch: { kind: 'LimitReached', code: 'EMFILE', syscall: 'eventfd' },
        retry: 'ok',
        read: 'ok',
        events: ['after'],
      });
    }, 20000);

    test('no fd for a blocking read\'s eventfd: LimitReached, not a read that never hears of events', async () => {
      const r = await runNode(NO_FDS, [DIST, scratch.freshDir(), 'read'], 10000);
      expect({ signal: r.signal, stderr: r.stderr }).toEqual({ signal: null, stderr: '' });
      expect(jsonOut(r)).toEqual({
        read: { kind: 'LimitReached', code: 'EMFILE', syscall: 'eventfd' },
        readAfter: 'ok',
        events: ['after'],
      });
    }, 20000);
  });

  describe('an idle instance does not wake up', () => {
    // 2 s idle: the process's own timer is 1 or 2 switches; a periodic
    // 20 ms check would be about 100. Generous for noise from the machine.
    const BOUND = 10;
    test.each(['permission', 'notification', 'after-activity', 'sync', 'sync-reading'])('%s', async (kind) => {
      const target = kind === 'notification' ? scratch.freshDir() : guarded;
      const r = await runNode(IDLE, [DIST, target, kind, '2000'], 15000);
      expect({ signal: r.signal, stderr: r.stderr }).toEqual({ signal: null, stderr: '' });
      const { switches } = jsonOut(r);
      expect(switches).toBeLessThanOrEqual(BOUND);
    }, 30000);
  });
});
